//! A node's life after its endpoints are up: bootstrap on first start, keeping the
//! standard health service current, waiting for a signal or a storage failure, and the
//! leadership handover before it stops.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use sutra_raft::NodeInfo;

use super::RunError;
use crate::node::Node;

/// Resolves when Raft has stopped on a storage error or the engine is poisoned: the node
/// must not keep serving then (a failed fsync is never retried; a restart recovers).
pub(super) async fn wait_for_fatal(node: &Node) -> String {
    let mut metrics = node.raft.metrics();
    loop {
        if let Err(e) = &node.metrics().running_state {
            return format!("raft stopped: {e}");
        }
        if node.engine.stats().poisoned {
            return "storage engine poisoned after a failed sync".to_string();
        }
        tokio::select! {
            r = metrics.changed() => if r.is_err() { return "raft stopped".to_string() },
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// On first start, the lowest id of the initial members initialises the cluster. A node
/// with any state never does (openraft refuses), and other members wait to be contacted.
pub(super) async fn bootstrap(node: &Node) -> Result<(), RunError> {
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
        return Ok(());
    }
    let nodes: BTreeMap<u64, NodeInfo> = members
        .iter()
        .map(|m| (m.id, NodeInfo::new(m.raft_addr.clone(), m.api_addr.clone())))
        .collect();
    match node.raft.initialize(nodes).await {
        Ok(()) => tracing::info!(members = members.len(), "cluster initialised"),
        Err(e) => tracing::info!(reason = %e, "not initialising"),
    }
    Ok(())
}

/// Keeps `grpc.health.v1` in step with this node's health.
pub(super) async fn report_health(
    node: Arc<Node>,
    reporter: tonic_health::server::HealthReporter,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut metrics = node.raft.metrics();
    loop {
        let healthy = crate::health::report(&node).healthy;
        let status = if healthy {
            tonic_health::ServingStatus::Serving
        } else {
            tonic_health::ServingStatus::NotServing
        };
        reporter.set_service_status("", status).await;
        reporter
            .set_service_status("sutra.storage.StorageService", status)
            .await;
        tokio::select! {
            _ = stop.changed() => return,
            r = metrics.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
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
        Ok(m) => tracing::info!(new_leader = ?m.current_leader, "leadership handed over"),
        Err(e) => tracing::warn!(error = %e, "leadership did not move before shutdown"),
    }
}
