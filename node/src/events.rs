//! The Raft events an operator looks for in the log, with stable names: `leader_changed`
//! (a new term or a new leader), `role_changed` (this node became leader, follower,
//! candidate, learner) and `membership_changed` (voters or learners changed). They are
//! derived from openraft's metrics stream, so each is logged once per change, on every
//! node, whatever caused it. The same watcher keeps the leader history of the metrics
//! and the status page (`metrics::LeaderWatch`).

use std::collections::BTreeSet;
use std::sync::Arc;

use openraft::ServerState;
use openraft::async_runtime::WatchReceiver;
use openraft::metrics::RaftServerMetrics;
use sutra_raft::TypeConfig;
use tokio::sync::watch;

use crate::node::Node;

/// What the watcher reads: openraft's vote, role, leader and membership.
type ServerMetrics = RaftServerMetrics<TypeConfig>;

/// What the events compare between two metrics snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    term: u64,
    leader: Option<u64>,
    state: ServerState,
    voters: BTreeSet<u64>,
    learners: BTreeSet<u64>,
}

impl Seen {
    fn of(m: &ServerMetrics) -> Self {
        let membership = m.membership_config.membership();
        Self {
            term: m.vote.leader_id.term,
            leader: m.current_leader,
            state: m.state,
            voters: membership.voter_ids().collect(),
            learners: membership.learner_ids().collect(),
        }
    }
}

/// Logs the events between `before` and `now`.
fn log_changes(before: &Seen, now: &Seen, m: &ServerMetrics) {
    if now.term != before.term || now.leader != before.leader {
        tracing::info!(
            event = "leader_changed",
            term = now.term,
            leader = now.leader,
            previous_term = before.term,
            previous_leader = before.leader,
            "leader or term changed"
        );
    }
    if now.state != before.state {
        tracing::info!(
            event = "role_changed",
            role = ?now.state,
            previous_role = ?before.state,
            term = now.term,
            "this node's role changed"
        );
    }
    if now.voters != before.voters || now.learners != before.learners {
        let log_index = m
            .membership_config
            .log_id()
            .as_ref()
            .map_or(0, |id| sutra_raft::position(id.index));
        tracing::info!(
            event = "membership_changed",
            voters = ids(&now.voters),
            learners = ids(&now.learners),
            previous_voters = ids(&before.voters),
            previous_learners = ids(&before.learners),
            log_index,
            "membership changed"
        );
    }
}

/// Node ids as `1,2,3`.
fn ids(set: &BTreeSet<u64>) -> String {
    set.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

/// Logs leader, role and membership changes until `stop` or until Raft stops. It wakes
/// on Raft's server metrics (vote, role, leader, membership), which change only with
/// what it reports, not with every write, and compares those same metrics: openraft
/// publishes them before its full metrics, so the full metrics read at that moment can
/// still hold the previous leader, and that change would never be seen.
pub async fn watch(node: Arc<Node>, mut stop: watch::Receiver<bool>) {
    let mut metrics = node.raft.server_metrics();
    let mut seen = Seen::of(&metrics.borrow_watched());
    let leaders = &node.instruments.leaders;
    leaders.note(seen.leader, seen.term);
    loop {
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
        let m = metrics.borrow_watched().clone();
        let now = Seen::of(&m);
        if now != seen {
            log_changes(&seen, &now, &m);
            leaders.note(now.leader, now.term);
            seen = now;
        }
    }
}
