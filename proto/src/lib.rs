//! Sutra's wire contract: the protobuf messages and gRPC services that clients,
//! operators and Raft peers use to talk to a Sutra node.
//!
//! # What this crate owns
//!
//! - The `.proto` files under `proto/` (packages `sutra.storage`,
//!   `sutra.cluster`, `sutra.raft`). They are the contract: every message and
//!   field is documented there with its meaning and limits, and that
//!   documentation is carried into the generated rustdoc.
//! - The code generated from them at build time (prost messages, tonic clients
//!   and servers), exposed as [`storage`], [`cluster`] and [`raft`].
//! - [`FILE_DESCRIPTOR_SET`], the encoded descriptor set (with comments), for
//!   registering gRPC server reflection.
//! - The few constants every side must agree on: [`limits`] and the
//!   metadata keys of error statuses, with the one encoder and decoder of the
//!   leader hint ([`LeaderHint`]).
//!
//! The `.proto` files are compiled in `build.rs` with `protox`, so building
//! needs no `protoc`.
//!
//! # What it does not do
//!
//! No validation, no conversions to or from openraft or engine types, no
//! service implementations, no TLS or connection setup. Generated clients
//! have no `connect()` helper: build a `tonic::transport::Channel` (with the
//! "transport" feature, in the crate that dials) and pass it to
//! `XxxClient::new`. Servers are mounted by the crate that serves.
//!
//! # Stability
//!
//! Full method names are part of the contract; operators already call
//! `sutra.storage.StorageService/HealthCheck`, `/GetStats` and `/Flush`. Never
//! renumber or reuse a field tag; retire one with `reserved`.

#![deny(missing_docs)]

/// Client API: concepts, edges, batches, reads, vector search, health, stats.
pub mod storage {
    tonic::include_proto!("sutra.storage");
}

/// Operator API: cluster status and membership changes.
pub mod cluster {
    tonic::include_proto!("sutra.cluster");
}

/// Raft peer transport, mirroring openraft 0.10's network messages.
pub mod raft {
    tonic::include_proto!("sutra.raft");
}

/// The encoded `google.protobuf.FileDescriptorSet` of every Sutra `.proto`
/// file, including source comments. Register it with gRPC server reflection
/// (e.g. `tonic_reflection::server::Builder::register_encoded_file_descriptor_set`).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/sutra_descriptor.bin"));

/// ASCII metadata key, set on an UNAVAILABLE error caused by the answering
/// node not being the leader: the leader's node id in decimal. Absent if the
/// leader is unknown.
pub const LEADER_ID_METADATA_KEY: &str = "sutra-leader-id";

/// ASCII metadata key, set alongside [`LEADER_ID_METADATA_KEY`]: the leader's
/// client API address (`host:port`). Absent if unknown.
pub const LEADER_ADDR_METADATA_KEY: &str = "sutra-leader-addr";

mod leader_hint;
pub use leader_hint::{LeaderHint, not_leader, not_leader_message};

/// ASCII metadata key, set on an INVALID_ARGUMENT error: the path of the offending
/// field in the request (`concept.embedding[3]`, `ops[1].put_edge.edge.weight`).
pub const INVALID_FIELD_METADATA_KEY: &str = "sutra-invalid-field";

/// ASCII metadata key on every peer call (`sutra.raft.RaftService`): the id of the
/// cluster the calling node belongs to (32 hex digits, minted when the cluster
/// bootstrapped). A node refuses a call of another cluster.
pub const CLUSTER_ID_METADATA_KEY: &str = "sutra-cluster-id";

/// ASCII metadata key, set on the FAILED_PRECONDITION answering a write whose sequence
/// is older than the last one its client's session holds: that last sequence, in
/// decimal. The older write's own result is no longer kept, so a client that retried it
/// cannot tell whether it was applied.
pub const STALE_SEQUENCE_METADATA_KEY: &str = "sutra-stale-sequence";

/// Limits stated in the `.proto` files, as numbers. The server enforces them
/// (INVALID_ARGUMENT naming the field); `DEFAULT_*` values are server
/// configuration defaults.
pub mod limits {
    /// Concept id length in bytes (UTF-8), minimum.
    pub const MIN_ID_BYTES: usize = 1;
    /// Concept id length in bytes (UTF-8), maximum.
    pub const MAX_ID_BYTES: usize = 256;
    /// Default of the server configuration `max_content_bytes` (1 MiB).
    pub const DEFAULT_MAX_CONTENT_BYTES: usize = 1 << 20;
    /// Default of the cluster configuration `vector_dimension`.
    pub const DEFAULT_VECTOR_DIMENSION: usize = 768;
    /// Attribute entries per concept, maximum.
    pub const MAX_ATTRIBUTES: usize = 64;
    /// Attribute key length in bytes, maximum (minimum 1).
    pub const MAX_ATTRIBUTE_KEY_BYTES: usize = 128;
    /// Attribute value length in bytes, maximum.
    pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 4096;
    /// Relation length in bytes, maximum (minimum 1).
    pub const MAX_RELATION_BYTES: usize = 128;
    /// Default of the server configuration `max_batch_ops` (minimum 1).
    pub const DEFAULT_MAX_BATCH_OPS: usize = 1000;
    /// `WriteHeader.client_id` length in bytes, maximum (minimum 1).
    pub const MAX_CLIENT_ID_BYTES: usize = 128;
    /// Page size used when a scan or neighbors `limit` is 0.
    pub const DEFAULT_PAGE_LIMIT: u32 = 100;
    /// Scan and neighbors `limit`, maximum.
    pub const MAX_PAGE_LIMIT: u32 = 10_000;
    /// Search `k`, maximum (minimum 1).
    pub const MAX_SEARCH_K: u32 = 1000;
    /// `SnapshotData.data` length in bytes, maximum (1 MiB).
    pub const MAX_SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;
}
