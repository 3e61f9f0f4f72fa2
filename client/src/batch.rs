//! [`Batch`]: several writes applied atomically, in order, in one log entry.

use sutra_proto::storage::{
    CheckVersionOp, Concept, DeleteConceptOp, DeleteEdgeOp, Edge, PutConceptOp, PutEdgeOp, WriteOp,
    WriteResponse, write_op,
};

/// An atomic batch of writes, built op by op and sent with
/// [`Client::batch`](crate::Client::batch). Either every op applies, in order, or none
/// does: a failed `check` or compare-and-set fails the whole batch with
/// [`ClientError::Conflict`](crate::ClientError::Conflict).
///
/// ```
/// # use sutra_client::Batch;
/// # use sutra_proto::storage::{Concept, Edge};
/// let mut batch = Batch::new();
/// batch
///     .check("a", 0)
///     .put(Concept { id: "a".into(), ..Concept::default() })
///     .put_edge(Edge { from: "a".into(), to: "b".into(), relation: "r".into(), weight: 1.0 });
/// assert_eq!(batch.len(), 3);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    ops: Vec<WriteOp>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an op as the wire defines it.
    pub fn push(&mut self, op: write_op::Op) -> &mut Self {
        self.ops.push(WriteOp { op: Some(op) });
        self
    }

    /// Puts a concept unconditionally.
    pub fn put(&mut self, concept: Concept) -> &mut Self {
        self.push(write_op::Op::PutConcept(PutConceptOp {
            concept: Some(concept),
            expected_version: None,
        }))
    }

    /// Puts a concept only if its version is `expected_version` (0: it must not exist).
    pub fn put_if(&mut self, concept: Concept, expected_version: u64) -> &mut Self {
        self.push(write_op::Op::PutConcept(PutConceptOp {
            concept: Some(concept),
            expected_version: Some(expected_version),
        }))
    }

    /// Deletes a concept and its edges.
    pub fn delete(&mut self, id: impl Into<String>) -> &mut Self {
        self.push(write_op::Op::DeleteConcept(DeleteConceptOp {
            id: id.into(),
            expected_version: None,
        }))
    }

    /// Deletes a concept only if its version is `expected_version`.
    pub fn delete_if(&mut self, id: impl Into<String>, expected_version: u64) -> &mut Self {
        self.push(write_op::Op::DeleteConcept(DeleteConceptOp {
            id: id.into(),
            expected_version: Some(expected_version),
        }))
    }

    /// Puts an edge (both ends must exist once the earlier ops have applied).
    pub fn put_edge(&mut self, edge: Edge) -> &mut Self {
        self.push(write_op::Op::PutEdge(PutEdgeOp { edge: Some(edge) }))
    }

    /// Deletes the edge `(from, relation, to)`.
    pub fn delete_edge(
        &mut self,
        from: impl Into<String>,
        to: impl Into<String>,
        relation: impl Into<String>,
    ) -> &mut Self {
        self.push(write_op::Op::DeleteEdge(DeleteEdgeOp {
            from: from.into(),
            to: to.into(),
            relation: relation.into(),
        }))
    }

    /// Requires concept `id` to be at `expected_version` (0: absent), changing nothing.
    pub fn check(&mut self, id: impl Into<String>, expected_version: u64) -> &mut Self {
        self.push(write_op::Op::Check(CheckVersionOp {
            id: id.into(),
            expected_version: Some(expected_version),
        }))
    }

    /// Number of ops.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True if there are no ops.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The ops, in order.
    pub fn ops(&self) -> &[WriteOp] {
        &self.ops
    }
}

/// The result of an applied batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOutcome {
    /// The write: its version is the version of every concept the batch put.
    pub write: WriteResponse,
    /// Per op, in order: whether its target existed before it applied (for `check`:
    /// whether the concept exists).
    pub existed: Vec<bool>,
}
