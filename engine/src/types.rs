//! The data model: concepts, edges, writes and their outcomes.

use std::collections::BTreeMap;

use crate::error::ValidationError;

/// A concept: content, an optional embedding and a small attribute map.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Concept {
    /// UTF-8, 1..=256 bytes.
    pub id: String,
    /// Opaque bytes.
    pub content: Vec<u8>,
    /// Empty, or exactly the store's vector dimension of finite values.
    pub embedding: Vec<f32>,
    /// Small string map.
    pub attributes: BTreeMap<String, String>,
    /// Version of the write that last stored this concept (the Raft log index, for the
    /// replicated store). Output only: ignored by puts.
    pub version: u64,
}

/// A directed, labelled, weighted association between two concepts.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    /// Source concept id; must exist.
    pub from: String,
    /// Target concept id; must exist.
    pub to: String,
    /// Label, 1..=128 bytes.
    pub relation: String,
    /// Finite weight.
    pub weight: f32,
}

/// Compare-and-set precondition on a concept's version: `None` means unconditional,
/// `Some(0)` means "must not exist", `Some(n)` means "current version is n".
pub type ExpectedVersion = Option<u64>;

/// One operation of a write.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Create or replace a concept. Replacing keeps its edges.
    PutConcept {
        /// The new value (its `version` field is ignored).
        concept: Concept,
        /// Optional precondition.
        expected_version: ExpectedVersion,
    },
    /// Delete a concept and every edge into or out of it.
    DeleteConcept {
        /// Concept id.
        id: String,
        /// Optional precondition.
        expected_version: ExpectedVersion,
    },
    /// Create an edge or replace its weight. Both ends must exist.
    PutEdge(Edge),
    /// Delete one edge.
    DeleteEdge {
        /// Source id.
        from: String,
        /// Target id.
        to: String,
        /// Relation.
        relation: String,
    },
    /// A pure precondition: the write applies only if `id` is at `expected_version`
    /// (0 = absent).
    CheckVersion {
        /// Concept id.
        id: String,
        /// Required version.
        expected_version: u64,
    },
}

/// Identifies a write for exactly-once application: a retry with the same
/// `(client_id, sequence)` is answered from the session table instead of re-applied.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKey {
    /// Client identity, 1..=128 bytes.
    pub client_id: String,
    /// Per-client sequence, ≥ 1 and increasing.
    pub sequence: u64,
}

/// An atomic group of operations: all apply or none.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WriteBatch {
    /// Exactly-once identity; `None` for internal writes.
    pub session: Option<SessionKey>,
    /// The operations, applied in order. Empty is allowed (it only advances the
    /// applied position).
    pub ops: Vec<WriteOp>,
}

/// Where a write sits in the replicated order. The engine does not interpret
/// `position`; it stores it with the data and returns it after recovery.
#[derive(Debug, Clone, Copy)]
pub struct ApplyContext<'a> {
    /// Strictly increasing write version (the Raft log index). Stored as the version
    /// of every concept the write touches.
    pub version: u64,
    /// Opaque applied position (the Raft log id and membership), persisted in checkpoints.
    pub position: &'a [u8],
    /// Log time in milliseconds, chosen by the proposer; session expiry runs on it,
    /// never on the local clock.
    pub time_ms: u64,
}

/// What happened to one operation of an applied write.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpResult {
    /// The concept or edge existed before this operation (for a check: the concept exists).
    pub existed: bool,
}

/// Why a write was not applied. Deterministic: every replica reaches the same rejection.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The write breaks the store's format limits.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A compare-and-set precondition failed.
    #[error(
        "ops[{op_index}]: concept {id:?} is at version {actual}, expected {expected} (0 = absent)"
    )]
    VersionMismatch {
        /// Index of the failing operation.
        op_index: u32,
        /// Concept id.
        id: String,
        /// Expected version.
        expected: u64,
        /// Actual version, 0 if absent.
        actual: u64,
    },
    /// An edge names a concept that does not exist.
    #[error("ops[{op_index}]: concept {id:?} does not exist")]
    MissingConcept {
        /// Index of the failing operation.
        op_index: u32,
        /// The missing id.
        id: String,
    },
    /// The sequence is older than the client's last one; its result is no longer kept.
    #[error("sequence {sequence} of client {client_id:?} is older than its last ({last})")]
    StaleSequence {
        /// Client id.
        client_id: String,
        /// The sequence sent.
        sequence: u64,
        /// The last sequence seen from the client.
        last: u64,
    },
}

/// The result of a write.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOutcome {
    /// Applied at `version`; one result per operation.
    Applied {
        /// The write's version.
        version: u64,
        /// Per-operation results, in order.
        results: Vec<OpResult>,
    },
    /// Not applied; nothing changed.
    Rejected(Rejection),
}

/// [`WriteOutcome`] plus whether it came from the session table.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyOutcome {
    /// The write's outcome (for a duplicate: the original one).
    pub outcome: WriteOutcome,
    /// True when this was a retry answered from the session table.
    pub deduplicated: bool,
}

/// Which edges of a concept to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Edges from the concept.
    #[default]
    Out,
    /// Edges into the concept.
    In,
    /// Both, outgoing first.
    Both,
}

/// One edge seen from a concept.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbor {
    /// The concept at the other end.
    pub id: String,
    /// Relation of the edge.
    pub relation: String,
    /// Weight of the edge.
    pub weight: f32,
    /// `Out` if the edge leaves the queried concept, `In` if it enters it.
    pub direction: Direction,
}

/// A page of neighbours and where to continue.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NeighborPage {
    /// Neighbours ordered by (direction, relation, id).
    pub neighbors: Vec<Neighbor>,
    /// Pass back to continue; `None` at the end.
    pub next_page_token: Option<String>,
}

/// Which ids a scan covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanRange {
    /// Ids starting with this prefix (empty = all).
    Prefix(String),
    /// Ids in `[start, end)`; `end = None` is unbounded.
    Range {
        /// Inclusive lower bound.
        start: String,
        /// Exclusive upper bound.
        end: Option<String>,
    },
}

/// A page of a scan.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScanPage {
    /// Concepts in id order (only `id` and `version` filled when `keys_only`).
    pub concepts: Vec<Concept>,
    /// Pass back to continue; `None` at the end.
    pub next_page_token: Option<String>,
}

/// Similarity measure for k-NN search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Metric {
    /// Cosine similarity; higher is closer.
    #[default]
    Cosine,
    /// Dot product; higher is closer.
    Dot,
    /// Euclidean distance; lower is closer.
    L2,
}

/// One k-NN result.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// Concept id.
    pub id: String,
    /// Score under the metric.
    pub score: f32,
}
