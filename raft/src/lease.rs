//! The leader's write lease as openraft enforces it: a leader accepts a proposal only
//! while a quorum acknowledged it within one lease (the maximum election timeout).

use std::time::Duration;

use openraft::ServerState;
use openraft::async_runtime::WatchReceiver;

use crate::Raft;

/// Waits, for at most one leader lease, until this node either leads with a quorum
/// acknowledgment inside its lease or stops leading. Returns at once on a follower and on
/// a leader whose lease holds, which is every write but the first few after an election:
/// a leader elected a moment ago has no acknowledgment until its first round of
/// AppendEntries comes back, and a proposal made before then is refused
/// (`ForwardReason::LeaseExpired`) although nothing is wrong. Past the lease, the
/// proposal's refusal is the right answer: the leader is cut off.
pub async fn await_quorum_lease(raft: &Raft) {
    let lease = Duration::from_millis(raft.config().election_timeout_max);
    let settled = |m: &openraft::RaftMetrics<crate::TypeConfig>| {
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

/// What a leader answers when it refuses a write because no quorum acknowledged it within
/// its lease (cut off, or elected a moment ago and still waiting past the lease).
pub fn lease_refusal(node_id: u64) -> String {
    format!("node {node_id} leads but no quorum acknowledged it within its lease: retry")
}
