//! The one way into the log and the one read barrier, for writes and reads that arrive at
//! the leader directly and for those a follower relays (`RaftService/ForwardWrite`,
//! `/ReadIndex`), with the one mapping of openraft's errors ([`ProposeError`]).
//!
//! [`Proposer`] decides on the leader, right before ordering, whether a command may enter
//! the log at all (cluster parameters known, no alarm, quota), validates a relayed write
//! against the cluster's parameters, and stamps log time from the leader's own monotonic
//! clock ([`LogClock`]). What passes is applied by every replica the same way: nothing in
//! the log can fail to apply because of what it says.
//!
//! A leader accepts a proposal only while a quorum acknowledged it within one lease (the
//! maximum election timeout). A leader elected a moment ago has no acknowledgment until
//! its first round of AppendEntries comes back, so [`propose`] first waits for it, at
//! most one lease ([`await_quorum_lease`]), instead of refusing; past the lease the
//! refusal is the right answer: the leader is cut off. A read index needs no lease: it
//! confirms leadership with a quorum round of its own.

use std::time::{Duration, Instant};

use openraft::async_runtime::WatchReceiver;
use openraft::errors::{
    ClientWriteError, ForwardReason, ForwardToLeader, LinearizableReadError, RaftError,
};
use openraft::{ReadPolicy, ServerState};
use parking_lot::Mutex;
use sutra_engine::{Engine, ValidationError, WriteBatch, WriteOp};
use sutra_proto::{INVALID_FIELD_METADATA_KEY as INVALID_FIELD_KEY, LeaderHint};

use crate::cluster_state::{Alarm, SharedClusterState};
use crate::observer::SharedObserver;
use crate::{Command, CommandResponse, NodeId, Raft, TypeConfig};

/// Why a proposal or a read barrier did not go through, in terms a caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProposeError {
    /// This node does not lead; the leader, if known, can.
    #[error("{}", sutra_proto::not_leader_message(.0.as_ref()))]
    NotLeader(Option<LeaderHint>),
    /// This node leads, but no quorum acknowledged it within its lease: it may be cut
    /// off. Nothing reached the log.
    #[error("node {node} leads but no quorum acknowledged it within its lease: retry")]
    LeaseExpired {
        /// This node.
        node: NodeId,
    },
    /// The entry was in the log but a new leader replaced it before it committed. Its
    /// outcome is unknown to this node; a retry with the same exactly-once identity is
    /// safe.
    #[error(
        "leader changed before the write committed; its outcome is unknown: retry with the same \
         client_id and sequence (the leader is now {leader:?})"
    )]
    Discarded {
        /// The new leader, if known.
        leader: Option<NodeId>,
    },
    /// Leadership could not be confirmed with a quorum for a read.
    #[error("cannot confirm leadership: {0}")]
    Unconfirmed(String),
    /// The Raft node has stopped (a storage failure).
    #[error("raft stopped: {0}")]
    Stopped(String),
    /// The cluster's parameters are not applied yet (it is bootstrapping): no write can
    /// be judged.
    #[error("the cluster is starting: its parameters are not applied yet; retry")]
    NotConfigured,
    /// An alarm makes the cluster read-only for writes that grow the data.
    #[error(
        "the cluster is read-only: alarm {} active; free disk space on that node, then `sutra alarm disarm`",
        alarms_list(.alarms)
    )]
    ReadOnly {
        /// The active alarms.
        alarms: Vec<Alarm>,
    },
    /// The write would grow the data past the cluster quota.
    #[error(
        "the cluster quota of {quota} bytes is reached: {used} bytes in use and the write needs about {needed} more; delete data (compaction reclaims it)"
    )]
    Quota {
        /// The quota (`ClusterParams::quota_bytes`).
        quota: u64,
        /// Data file bytes in use on the leader.
        used: u64,
        /// What the write adds, estimated.
        needed: u64,
    },
    /// A relayed write breaks the cluster's parameters.
    #[error(transparent)]
    Invalid(ValidationError),
}

fn alarms_list(alarms: &[Alarm]) -> String {
    let names: Vec<String> = alarms.iter().map(Alarm::to_string).collect();
    names.join(", ")
}

impl ProposeError {
    /// openraft's "ask the leader" on `node`: a lease refusal, or the leader it names.
    pub fn forwarded(node: NodeId, f: ForwardToLeader<TypeConfig>) -> Self {
        if f.reason == ForwardReason::LeaseExpired {
            return Self::LeaseExpired { node };
        }
        Self::NotLeader(f.leader_id.map(|id| LeaderHint {
            id,
            addr: f.leader_node.map(|n| n.api_addr),
        }))
    }

    /// Whether the cluster refused the write for lack of room (an alarm or the quota):
    /// RESOURCE_EXHAUSTED for the client.
    pub fn is_exhausted(&self) -> bool {
        matches!(self, Self::ReadOnly { .. } | Self::Quota { .. })
    }

    /// The status a relaying follower gets: the leader hint when this node names another
    /// leader, RESOURCE_EXHAUSTED for an alarm or the quota, INVALID_ARGUMENT naming the
    /// field for a write that breaks the cluster's parameters, otherwise UNAVAILABLE.
    pub fn into_status(self) -> tonic::Status {
        match &self {
            Self::NotLeader(hint) => sutra_proto::not_leader(hint.as_ref()),
            Self::Invalid(v) => {
                let mut status = tonic::Status::invalid_argument(v.to_string());
                if let Ok(field) = tonic::metadata::MetadataValue::try_from(v.field.as_str()) {
                    status.metadata_mut().insert(INVALID_FIELD_KEY, field);
                }
                status
            }
            e if e.is_exhausted() => tonic::Status::resource_exhausted(self.to_string()),
            _ => tonic::Status::unavailable(self.to_string()),
        }
    }

    /// Reads back what [`into_status`](Self::into_status) made of an admission refusal
    /// (the relaying node answers its client with the same error); `None` for any other
    /// status.
    pub fn from_refusal(status: &tonic::Status) -> Option<Self> {
        match status.code() {
            tonic::Code::InvalidArgument => {
                let field = status
                    .metadata()
                    .get(INVALID_FIELD_KEY)
                    .and_then(|v| v.to_str().ok())?;
                let message = status.message();
                let reason = message
                    .strip_prefix(&format!("invalid {field}: "))
                    .unwrap_or(message);
                Some(Self::Invalid(ValidationError {
                    field: field.to_string(),
                    reason: reason.to_string(),
                }))
            }
            _ => None,
        }
    }
}

/// Log time, stamped by the leader: the last stamp moved on by the leader's monotonic
/// clock, never behind what is applied. No wall clock enters: a node whose clock is a day
/// ahead stamps the same times as any other (and the engine bounds each entry's step,
/// `sutra_engine::MAX_LOG_TIME_STEP_MS`).
#[derive(Debug)]
pub struct LogClock {
    last: Mutex<(u64, Instant)>,
}

impl Default for LogClock {
    fn default() -> Self {
        Self {
            last: Mutex::new((0, Instant::now())),
        }
    }
}

impl LogClock {
    /// The log time for an entry proposed now, given the log time of the last applied
    /// entry (a new leader goes on from there).
    pub fn stamp(&self, applied_ms: u64) -> u64 {
        let mut last = self.last.lock();
        let elapsed = u64::try_from(last.1.elapsed().as_millis()).unwrap_or(u64::MAX);
        let now = last.0.saturating_add(elapsed).max(applied_ms);
        *last = (now, Instant::now());
        now
    }
}

/// Bytes a write adds to the data file, estimated from above (record headers and padding
/// included), for the quota.
fn estimated_bytes(batch: &WriteBatch) -> u64 {
    const RECORD_OVERHEAD: u64 = 64;
    batch
        .ops
        .iter()
        .map(|op| match op {
            WriteOp::PutConcept { concept, .. } => {
                let attrs: usize = concept
                    .attributes
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 8)
                    .sum();
                RECORD_OVERHEAD
                    + (concept.id.len()
                        + concept.content.len()
                        + 4 * concept.embedding.len()
                        + attrs) as u64
            }
            WriteOp::PutEdge(e) => {
                RECORD_OVERHEAD + (e.from.len() + e.to.len() + e.relation.len()) as u64
            }
            WriteOp::DeleteConcept { id, .. } => RECORD_OVERHEAD + id.len() as u64,
            WriteOp::DeleteEdge { from, to, relation } => {
                RECORD_OVERHEAD + (from.len() + to.len() + relation.len()) as u64
            }
            WriteOp::CheckVersion { .. } => 0,
        })
        .sum()
}

/// Whether a write stores anything new (puts); deletes and checks only shrink or keep
/// the live data, so they go on while the cluster is read-only.
fn grows_data(batch: &WriteBatch) -> bool {
    batch
        .ops
        .iter()
        .any(|op| matches!(op, WriteOp::PutConcept { .. } | WriteOp::PutEdge(_)))
}

/// The leader's gate into the log, shared by the client API and the peer service.
#[derive(Debug, Clone)]
pub struct Proposer {
    raft: Raft,
    engine: Engine,
    cluster: SharedClusterState,
    clock: std::sync::Arc<LogClock>,
    observer: Option<SharedObserver>,
}

impl Proposer {
    /// The gate of `raft`, whose state machine runs on `engine` and keeps `cluster`.
    pub fn new(raft: Raft, engine: Engine, cluster: SharedClusterState) -> Self {
        Self {
            raft,
            engine,
            cluster,
            clock: std::sync::Arc::default(),
            observer: None,
        }
    }

    /// Tells `observer` the stages of every write proposed through this gate.
    pub fn with_observer(mut self, observer: SharedObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The Raft instance.
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// The engine the state machine runs on.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The replicated cluster state this gate judges by.
    pub fn cluster(&self) -> &SharedClusterState {
        &self.cluster
    }

    /// Checks a write's content against the cluster's parameters (a relayed write: the
    /// node that received it checked it against what it knew, which the leader does not
    /// take on trust).
    pub fn validate(&self, batch: &WriteBatch) -> Result<(), ProposeError> {
        let params = self.cluster.params().ok_or(ProposeError::NotConfigured)?;
        batch
            .validate(&params.limits(), params.vector_dimension, false)
            .map_err(ProposeError::Invalid)
    }

    /// Whether `cmd` may enter the log now: writes need the cluster's parameters, no
    /// alarm (for writes that store anything new) and room under the quota. Cluster-state
    /// commands always may.
    pub fn admit(&self, cmd: &Command) -> Result<(), ProposeError> {
        let Command::Write { batch, .. } = cmd else {
            return Ok(());
        };
        let state = self.cluster.get();
        let params = state.params.ok_or(ProposeError::NotConfigured)?;
        if !grows_data(batch) {
            return Ok(());
        }
        if !state.alarms.is_empty() {
            return Err(ProposeError::ReadOnly {
                alarms: state.alarms.into_iter().collect(),
            });
        }
        let (used, _) = self.engine.usage();
        let needed = estimated_bytes(batch);
        if used.saturating_add(needed) > params.quota_bytes {
            return Err(ProposeError::Quota {
                quota: params.quota_bytes,
                used,
                needed,
            });
        }
        Ok(())
    }

    /// Admits `cmd`, stamps a write with log time, proposes it on this node (the leader)
    /// and waits until it is applied here.
    pub async fn propose(&self, mut cmd: Command) -> Result<CommandResponse, ProposeError> {
        let proposed = Instant::now();
        self.admit(&cmd)?;
        let write = if let Command::Write { time_ms, .. } = &mut cmd {
            *time_ms = self.clock.stamp(self.engine.usage().1);
            true
        } else {
            false
        };
        let resp = propose(&self.raft, cmd).await?;
        if let (true, Some(observer), Some(applying)) =
            (write, &self.observer, resp.applied.started)
        {
            observer.write_applied(
                applying.saturating_duration_since(proposed),
                resp.applied.elapsed,
            );
        }
        Ok(resp)
    }
}

/// Waits, for at most one leader lease, until this node either leads with a quorum
/// acknowledgment inside its lease or stops leading. Returns at once on a follower and on
/// a leader whose lease holds, which is every write but the first few after an election.
pub async fn await_quorum_lease(raft: &Raft) {
    let lease = Duration::from_millis(raft.config().election_timeout_max);
    let settled = |m: &openraft::RaftMetrics<TypeConfig>| {
        m.state != ServerState::Leader
            || m.last_quorum_acked
                .as_ref()
                .is_some_and(|t| openraft::async_runtime::Instant::elapsed(&**t) < lease)
    };
    let mut metrics = raft.metrics();
    if settled(&metrics.borrow_watched()) {
        return;
    }
    let changed = async {
        while !settled(&metrics.borrow_watched()) {
            if metrics.changed().await.is_err() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(lease, changed).await;
}

/// Proposes `cmd` on this node and waits until it is applied here. The command must
/// already have passed the leader's checks ([`Proposer`]): apply refuses nothing for what
/// it says.
async fn propose(raft: &Raft, cmd: Command) -> Result<CommandResponse, ProposeError> {
    await_quorum_lease(raft).await;
    let node = *raft.node_id();
    match raft.client_write(cmd).await {
        Ok(resp) => Ok(resp.data),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            Err(ProposeError::forwarded(node, f))
        }
        Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(f))) => {
            Err(ProposeError::Discarded {
                leader: f.leader_id,
            })
        }
        Err(RaftError::APIError(e)) => Err(ProposeError::Stopped(e.to_string())),
        Err(RaftError::Fatal(e)) => Err(ProposeError::Stopped(e.to_string())),
    }
}

/// On the leader: confirms leadership with a quorum (ReadIndex) and returns the log
/// index a linearizable read must wait for (this node's or a follower's applied index
/// at least this).
pub async fn read_index(raft: &Raft) -> Result<u64, ProposeError> {
    let node = *raft.node_id();
    match raft.get_read_linearizer(ReadPolicy::ReadIndex).await {
        Ok(linearizer) => Ok(linearizer.read_log_id().index()),
        Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f))) => {
            Err(ProposeError::forwarded(node, f))
        }
        Err(RaftError::APIError(e)) => Err(ProposeError::Unconfirmed(e.to_string())),
        Err(RaftError::Fatal(e)) => Err(ProposeError::Stopped(e.to_string())),
    }
}
