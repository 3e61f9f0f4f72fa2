//! [`Command`]: the application data of a Raft log entry, and [`CommandResponse`], what
//! applying it produced.

use std::fmt;

use sutra_engine::{ApplyOutcome, WriteBatch};

use crate::cluster_state::{Alarm, ClusterParams};

/// The application data of one Raft log entry.
///
/// A write's `time_ms` is log time, stamped by the leader when it proposes the write
/// ([`LogClock`](crate::LogClock)); session expiry in the engine runs on it, never on a
/// replica's clock, so every replica applies the entry identically.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Command {
    /// A client write: the operations, applied atomically, with the exactly-once key.
    Write {
        /// The operations and session key.
        batch: WriteBatch,
        /// Log time in milliseconds.
        time_ms: u64,
    },
    /// The cluster's parameters, proposed once by the node that bootstrapped it. The
    /// first one applied wins; later ones change nothing.
    SetParams(ClusterParams),
    /// Raises (`active`) or disarms an alarm.
    Alarm {
        /// Which alarm.
        alarm: Alarm,
        /// Raise or disarm.
        active: bool,
    },
}

impl Command {
    /// A write of `batch` at log time `time_ms`.
    pub fn new(batch: WriteBatch, time_ms: u64) -> Self {
        Self::Write { batch, time_ms }
    }

    /// The write batch, for a write.
    pub fn batch(&self) -> Option<&WriteBatch> {
        match self {
            Self::Write { batch, .. } => Some(batch),
            _ => None,
        }
    }
}

/// Logs shape, never content: values may hold user data.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Write { batch, time_ms } => {
                write!(f, "write(ops={}", batch.ops.len())?;
                if let Some(s) = &batch.session {
                    write!(f, ", client={}, seq={}", s.client_id, s.sequence)?;
                }
                write!(f, ", time_ms={time_ms})")
            }
            Self::SetParams(p) => write!(f, "set-params(cluster={})", p.cluster_id),
            Self::Alarm { alarm, active } => {
                write!(
                    f,
                    "alarm({alarm}, {})",
                    if *active { "raise" } else { "disarm" }
                )
            }
        }
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
    /// When the entry began to apply on the node that applied it for this response, and
    /// how long applying took: the write's commit and apply stages for metrics. Local to
    /// that node: a relayed response carries none.
    #[serde(skip)]
    pub applied: ApplyTiming,
}

/// When a log entry began to apply and how long it took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyTiming {
    /// When applying began (`None`: not known here, e.g. a relayed response).
    pub started: Option<std::time::Instant>,
    /// How long applying took.
    pub elapsed: std::time::Duration,
}
