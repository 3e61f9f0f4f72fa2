//! [`Command`]: the application data of a Raft log entry, and [`CommandResponse`], what
//! applying it produced.

use std::fmt;

use sutra_engine::{ApplyOutcome, WriteBatch};

/// One client write, as it travels through the Raft log.
///
/// `time_ms` is stamped by the leader when it proposes the write. Session expiry in the
/// engine runs on this log time, never on a replica's clock, so every replica applies the
/// entry identically.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Command {
    /// The operations, applied atomically, with the exactly-once session key.
    pub batch: WriteBatch,
    /// Leader wall-clock time at proposal, in milliseconds since the Unix epoch.
    pub time_ms: u64,
}

impl Command {
    /// A command for `batch`, proposed at `time_ms`.
    pub fn new(batch: WriteBatch, time_ms: u64) -> Self {
        Self { batch, time_ms }
    }
}

/// Logs shape, never content: values may hold user data.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "write(ops={}", self.batch.ops.len())?;
        if let Some(s) = &self.batch.session {
            write!(f, ", client={}, seq={}", s.client_id, s.sequence)?;
        }
        write!(f, ", time_ms={})", self.time_ms)
    }
}

/// What applying one log entry produced. Blank and membership entries answer too (with an
/// empty `Applied` outcome), because openraft answers membership changes through the same
/// responder.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CommandResponse {
    /// Raft log index of the entry.
    pub log_index: u64,
    /// The engine's outcome. Its version is [`position`](crate::position)`(log_index)`.
    pub outcome: ApplyOutcome,
}
