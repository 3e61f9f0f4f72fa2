//! The one way into the log and the one read barrier, for writes and reads that arrive at
//! the leader directly and for those a follower relays (`RaftService/ForwardWrite`,
//! `/ReadIndex`), with the one mapping of openraft's errors ([`ProposeError`]).
//!
//! A leader accepts a proposal only while a quorum acknowledged it within one lease (the
//! maximum election timeout). A leader elected a moment ago has no acknowledgment until
//! its first round of AppendEntries comes back, so [`propose`] first waits for it, at
//! most one lease ([`await_quorum_lease`]), instead of refusing; past the lease the
//! refusal is the right answer: the leader is cut off. A read index needs no lease: it
//! confirms leadership with a quorum round of its own.

use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::errors::{
    ClientWriteError, ForwardReason, ForwardToLeader, LinearizableReadError, RaftError,
};
use openraft::{ReadPolicy, ServerState};
use sutra_proto::LeaderHint;

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

    /// The status a relaying follower gets: UNAVAILABLE, with the leader hint when this
    /// node names another leader.
    pub fn into_status(self) -> tonic::Status {
        match &self {
            Self::NotLeader(hint) => sutra_proto::not_leader(hint.as_ref()),
            _ => tonic::Status::unavailable(self.to_string()),
        }
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
/// already have passed the leader's checks: apply refuses nothing for what it says.
pub async fn propose(raft: &Raft, cmd: Command) -> Result<CommandResponse, ProposeError> {
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
