//! Health as operators see it: `sutra.storage.StorageService/HealthCheck` and the
//! standard `grpc.health.v1` service (SERVING only while the node knows a leader and is
//! caught up, and on a follower heard from the leader lately).

use std::time::Duration;

use openraft::ServerState;
use sutra_proto::storage::HealthCheckResponse;

use crate::node::Node;

/// A follower further behind the commit index than this is reported unhealthy.
const MAX_HEALTHY_LAG: u64 = 1000;

/// On a node other than the leader: why the leader it believes in is not to be trusted,
/// when no AppendEntries (entries or heartbeat) came from it for twice the longest
/// election timeout: the node is cut off, whatever leader it last heard of.
fn leader_silent(node: &Node, state: ServerState) -> Option<String> {
    if state == ServerState::Leader {
        return None;
    }
    let bound = Duration::from_millis(2 * node.config.election_timeout_max_ms);
    match *node.leader_contact.lock() {
        Some((at, _)) if at.elapsed() <= bound => None,
        Some((at, _)) => Some(format!(
            "no word from the leader for {} ms",
            at.elapsed().as_millis()
        )),
        None => Some("no word from the leader yet".to_string()),
    }
}

/// This node's health right now.
pub fn report(node: &Node) -> HealthCheckResponse {
    let m = node.metrics();
    let applied = sutra_raft::position_of(m.last_applied.as_ref());
    let committed = sutra_raft::position_of(m.cluster_committed.as_ref());
    let lag = committed.saturating_sub(applied);
    let role = match m.state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        _ => "shutdown",
    };
    let reason = if let Err(e) = &m.running_state {
        format!("raft stopped: {e}")
    } else if node.engine.stats().poisoned {
        "storage engine poisoned after a failed sync".to_string()
    } else if m.current_leader.is_none() {
        "no leader known".to_string()
    } else if let Some(silent) = leader_silent(node, m.state) {
        silent
    } else if node.cluster().params().is_none() {
        "the cluster's parameters are not applied here yet".to_string()
    } else if lag > MAX_HEALTHY_LAG {
        format!("{lag} committed entries not yet applied")
    } else {
        String::new()
    };
    HealthCheckResponse {
        healthy: reason.is_empty(),
        status: if reason.is_empty() {
            "SERVING"
        } else {
            "NOT_SERVING"
        }
        .to_string(),
        reason,
        node_id: node.id,
        role: role.to_string(),
        leader_id: m.current_leader.unwrap_or(0),
        term: m.current_term,
        applied_index: applied,
        commit_index: committed,
        lag_entries: lag,
        alarms: node
            .cluster()
            .alarms()
            .iter()
            .map(|a| format!("{}@{}", a.kind.as_str(), a.node))
            .collect(),
        data_bytes: node.engine.usage().0,
        quota_bytes: node.cluster().params().map_or(0, |p| p.quota_bytes),
        version: crate::build_info::VERSION.to_string(),
        commit: crate::build_info::COMMIT.to_string(),
    }
}
