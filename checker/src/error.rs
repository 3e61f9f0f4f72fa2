//! Errors of the checker: a history that cannot be checked as given.

use crate::{OpId, Value};

/// Result alias for the checker.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A history is malformed, so no verdict about the cluster can be drawn from it. These
/// are mistakes of the recorder, never findings about the cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// [`History::complete`](crate::History::complete) named an operation that was never
    /// invoked.
    #[error("operation {0} was never invoked")]
    UnknownOp(OpId),
    /// An operation was completed twice.
    #[error("operation {0} was already completed")]
    AlreadyCompleted(OpId),
    /// Two operations carry the same id.
    #[error("operation id {0} appears twice in the history")]
    DuplicateOpId(OpId),
    /// An operation completed before it was invoked.
    #[error("operation {op} completed at {complete} ns, before it was invoked at {invoke} ns")]
    CompletedBeforeInvoked {
        /// The operation.
        op: OpId,
        /// Its invocation time, in nanoseconds.
        invoke: u64,
        /// Its completion time, in nanoseconds.
        complete: u64,
    },
    /// Two writes to one key carry the same value. Values must be unique per key so a
    /// value identifies the one write that produced it (see the crate docs).
    #[error(
        "operations {first} and {second} both write {value:?} to key {key:?}; values must be unique per key"
    )]
    DuplicateValue {
        /// The key.
        key: String,
        /// The value written twice.
        value: Value,
        /// The first writer.
        first: OpId,
        /// The second writer.
        second: OpId,
    },
    /// An operation's outcome does not fit its kind or its times, e.g. a read completed
    /// as [`Outcome::Mismatch`](crate::Outcome::Mismatch) or an acknowledged operation
    /// without a completion time.
    #[error("operation {op}: {reason}")]
    InvalidOp {
        /// The operation.
        op: OpId,
        /// What is wrong with it.
        reason: &'static str,
    },
}
