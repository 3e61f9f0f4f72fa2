//! A node's life after its endpoints are up: bootstrap on first start, keeping the
//! standard health service current, waiting for a signal or a storage failure, and the
//! leadership handover before it stops.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use sutra_raft::{Command, NodeInfo};

use super::RunError;
use crate::node::Node;
use crate::params;

/// Resolves when Raft has stopped on a storage error or the engine is poisoned (a failed
/// fsync is never retried; a restart recovers), or when the cluster's parameters, once
/// applied here, disagree with this node's configuration or cluster id: the node must not
/// keep serving then. Only this node stops; the cluster goes on.
pub(super) async fn wait_for_fatal(node: &Node) -> String {
    // Server metrics change with the role, the leader and the membership, not with every
    // write; the second's tick covers the rest, and the channel closes when Raft stops.
    let mut metrics = node.raft.server_metrics();
    let mut raft_gone = false;
    loop {
        if let Err(e) = &node.metrics().running_state {
            return format!("raft stopped: {e}");
        }
        if raft_gone {
            return "raft stopped".to_string();
        }
        if node.engine.stats().poisoned {
            return "storage engine poisoned after a failed sync".to_string();
        }
        if let Some(reason) = disagreement(node) {
            return reason;
        }
        tokio::select! {
            r = metrics.changed() => raft_gone = r.is_err(),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Why this node cannot be a replica of the cluster whose parameters it applied: its
/// configuration or its cluster id says otherwise.
fn disagreement(node: &Node) -> Option<String> {
    let params = node.cluster().params()?;
    let mut problems = params::disagreements(&node.config, &params);
    match node.identity.get() {
        Some(mine) if mine != params.cluster_id => problems.push(format!(
            "cluster id: this node belongs to {mine}, the log to {}",
            params.cluster_id
        )),
        Some(_) => {}
        None => {
            if let Err(e) = node.identity.set(&params.cluster_id) {
                problems.push(e.to_string());
            }
        }
    }
    (!problems.is_empty()).then(|| {
        format!(
            "this node's configuration disagrees with the cluster's parameters; fix it (or leave the values unset to adopt the cluster's): {}",
            problems.join("; ")
        )
    })
}

/// On first start, the lowest id of the initial members initialises the cluster: it mints
/// the cluster id (kept before the first entry is written), writes the membership, then
/// proposes the cluster's parameters from its configuration ([`propose_params`]). A node
/// with any state never initialises again (openraft refuses), and other members wait to
/// be contacted.
pub(super) async fn bootstrap(node: &Arc<Node>) -> Result<(), RunError> {
    let members = &node.config.initial_members;
    let Some(first) = members.iter().map(|m| m.id).min() else {
        return Ok(());
    };
    if first != node.id {
        return Ok(());
    }
    if node
        .raft
        .is_initialized()
        .await
        .map_err(|e| RunError::Raft(e.to_string()))?
    {
        tracing::info!("cluster state found; not re-initialising");
        // A bootstrap interrupted before its parameters were applied goes on.
        if node.cluster().params().is_none() {
            tokio::spawn(propose_params(node.clone()));
        }
        return Ok(());
    }
    let cluster_id = match node.identity.get() {
        Some(id) => id,
        None => {
            let id = params::mint_cluster_id();
            node.identity.set(&id).map_err(|e| RunError::Identity {
                path: "cluster-id".into(),
                reason: e.to_string(),
            })?;
            id
        }
    };
    let nodes: BTreeMap<u64, NodeInfo> = members
        .iter()
        .map(|m| (m.id, NodeInfo::new(m.raft_addr.clone(), m.api_addr.clone())))
        .collect();
    match node.raft.initialize(nodes).await {
        Ok(()) => {
            tracing::info!(event = "cluster_initialised", members = members.len(), %cluster_id, "cluster initialised");
            tokio::spawn(propose_params(node.clone()));
        }
        Err(e) => tracing::info!(reason = %e, "not initialising"),
    }
    Ok(())
}

/// Proposes the cluster's parameters (from this node's configuration and its cluster id)
/// until they are applied here: the first thing the cluster orders after its membership.
/// Retried while there is no leader yet; the first one applied wins, so a repeat changes
/// nothing.
async fn propose_params(node: Arc<Node>) {
    let Some(cluster_id) = node.identity.get() else {
        return;
    };
    let proposal = params::bootstrap_params(&node.config, cluster_id);
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    while node.cluster().params().is_none() {
        interval.tick().await;
        match node.submit(Command::SetParams(proposal.clone())).await {
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "cluster parameters not proposed yet"),
        }
        if node.metrics().running_state.is_err() {
            return;
        }
    }
    tracing::info!("cluster parameters in force");
}

/// How often health is re-read between changes of role, leader or membership: what else
/// it depends on (catching up, leader contact, parameters applied) is seen this soon.
const HEALTH_RECHECK: Duration = Duration::from_millis(250);

/// Keeps `grpc.health.v1` in step with this node's health. It wakes on Raft's server
/// metrics (role, leader, membership) and every [`HEALTH_RECHECK`], not with every write,
/// and tells watchers only of a change.
pub(super) async fn report_health(
    node: Arc<Node>,
    reporter: tonic_health::server::HealthReporter,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut metrics = node.raft.server_metrics();
    let mut told = None;
    loop {
        let status = if crate::health::report(&node).healthy {
            tonic_health::ServingStatus::Serving
        } else {
            tonic_health::ServingStatus::NotServing
        };
        if told != Some(status) {
            reporter.set_service_status("", status).await;
            reporter
                .set_service_status("sutra.storage.StorageService", status)
                .await;
            told = Some(status);
        }
        tokio::select! {
            _ = stop.changed() => return,
            r = metrics.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(HEALTH_RECHECK) => {}
        }
    }
}

pub(super) async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
    }
}

/// A leader hands leadership to the most up-to-date voter before stopping, so clients
/// see a quick handover instead of an election timeout.
pub(super) async fn hand_over_leadership(node: &Node) {
    if !node.raft.is_leader() {
        return;
    }
    let target = node.most_up_to_date_voter();
    let Some(to) = target else { return };
    if node.raft.trigger().transfer_leader(to).await.is_err() {
        return;
    }
    let moved = node
        .raft
        .wait(Some(Duration::from_secs(3)))
        .metrics(
            |m| m.current_leader.is_some_and(|l| l != node.id),
            "hand over leadership",
        )
        .await;
    match moved {
        Ok(m) => {
            tracing::info!(event = "leadership_handed_over", new_leader = ?m.current_leader, "leadership handed over")
        }
        Err(e) => tracing::warn!(error = %e, "leadership did not move before shutdown"),
    }
}

/// Tells a supervisor that speaks the systemd notification protocol (`Type=notify`,
/// `NOTIFY_SOCKET` set) where the node is: `READY=1` once its endpoints listen and it
/// has bootstrapped (it serves then, or answers that it cannot yet, with the reason),
/// `STOPPING=1` when it starts shutting down. Without `NOTIFY_SOCKET` nothing is sent.
pub(super) fn notify_supervisor(ready: bool, status: &str) {
    let state = if ready {
        sd_notify::NotifyState::Ready
    } else {
        sd_notify::NotifyState::Stopping
    };
    if let Err(e) = sd_notify::notify(false, &[state, sd_notify::NotifyState::Status(status)]) {
        tracing::warn!(error = %e, "could not notify the service manager");
    }
}
