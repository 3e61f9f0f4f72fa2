//! Starting and stopping a node: storage and Raft (`open.rs`), the peer and client
//! endpoints (`endpoints.rs`) with their bounds (`incoming.rs`: connections; the role
//! check before decoding, `authorized.rs`; call metrics, `measured.rs`), then bootstrap, health and the orderly
//! shutdown on SIGTERM (`lifecycle.rs`).

mod audit;
mod authorized;
mod endpoints;
mod incoming;
mod lifecycle;
mod measured;
mod open;
mod outcome;

use std::net::SocketAddr;

pub use open::{CLUSTER_ID_FILE, raft_config};

use crate::config::ValidConfig;

/// Why a node could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// Storage could not be opened.
    #[error("opening storage in {path}: {source}")]
    Storage {
        /// Directory.
        path: String,
        /// Cause.
        source: sutra_raft::Error,
    },
    /// TLS material could not be loaded.
    #[error("loading TLS material: {0}")]
    Tls(#[from] sutra_certs::Error),
    /// A listener could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The cluster id file could not be read or written.
    #[error("cluster id in {path}: {reason}")]
    Identity {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Raft refused to start or stopped.
    #[error("raft: {0}")]
    Raft(String),
    /// A server failed.
    #[error("server: {0}")]
    Server(#[from] tonic::transport::Error),
}

/// Runs a node until SIGTERM or SIGINT, then shuts it down in order.
pub async fn run(config: ValidConfig) -> Result<(), RunError> {
    tracing::info!(event = "node_starting", node_id = config.node_id, effective_config = %config.effective(), "starting sutra-node");
    if config.tls().is_none() {
        let reach = if config.insecure_listen_any {
            "anyone who can reach these addresses (--insecure-listen-any)"
        } else {
            "any process on this machine"
        };
        tracing::warn!(
            api = %config.api_listen,
            raft = %config.raft_listen,
            exposed_to = reach,
            "INSECURE MODE: no TLS and no authentication: the client API (read, write, membership, snapshots) and the Raft peer port are open to {reach}; never use this outside a sandbox"
        );
    }
    sutra_certs::install_crypto_provider();
    let node = open::open_node(&config).await?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let peer_task = endpoints::serve_peers(&node, stop_rx.clone()).await?;
    let (api_task, health_reporter) = endpoints::serve_clients(&node, stop_rx.clone()).await?;
    tracing::info!(event = "node_listening", api = %config.api_listen, raft = %config.raft_listen, tls = config.tls().is_some(), "listening");

    lifecycle::bootstrap(&node).await?;
    lifecycle::notify_supervisor(
        true,
        &format!("serving the client API on {}", config.api_listen),
    );
    let health_task = tokio::spawn(lifecycle::report_health(
        node.clone(),
        health_reporter,
        stop_rx.clone(),
    ));
    let events_task = tokio::spawn(crate::events::watch(node.clone(), stop_rx.clone()));
    let relay_task = crate::relay::Relay::start(&node);
    let monitor_task = match config.metrics_listen {
        Some(addr) => {
            let task = crate::monitor::serve(addr, node.clone(), stop_rx.clone())
                .await
                .map_err(|source| RunError::Bind { addr, source })?;
            tracing::info!(metrics = %addr, "monitoring listener up");
            Some(task)
        }
        None => None,
    };
    let disk_task = tokio::spawn(crate::disk::watch_free_space(node.clone(), stop_rx));

    let fatal = tokio::select! {
        _ = lifecycle::wait_for_signal() => None,
        reason = lifecycle::wait_for_fatal(&node) => Some(reason),
    };
    if let Some(reason) = &fatal {
        tracing::error!(event = "node_fatal", %reason, "stopping: storage failed; restart the node to recover from disk");
    }
    tracing::info!(event = "node_stopping", "shutting down");
    lifecycle::notify_supervisor(false, "shutting down");
    lifecycle::hand_over_leadership(&node).await;
    let _ = stop_tx.send(true);
    if let Err(e) = node.raft.shutdown().await {
        tracing::error!(error = %e, "raft shutdown");
    }
    endpoints::join([("peer", peer_task), ("api", api_task)]).await;
    health_task.abort();
    disk_task.abort();
    events_task.abort();
    relay_task.abort();
    if let Some(t) = monitor_task {
        t.abort();
    }
    if let Some(reason) = fatal {
        // Nothing more is written after a storage failure: the last good checkpoint and
        // the log are what a restart recovers from.
        return Err(RunError::Raft(reason));
    }
    match node.engine.checkpoint() {
        Ok(d) => tracing::info!(version = d.version, "final checkpoint written"),
        Err(e) => {
            tracing::error!(error = %e, "final checkpoint failed; the log replays on restart")
        }
    }
    tracing::info!(event = "node_stopped", "stopped");
    Ok(())
}
