//! Starting and stopping a node: storage, Raft, the peer endpoint, the client endpoint,
//! bootstrap, health, and the orderly shutdown on SIGTERM.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::{Config as RaftConfig, SnapshotPolicy};
use sutra_engine::{EngineConfig, Limits, StoreParams};
use sutra_proto::cluster::cluster_service_server::ClusterServiceServer;
use sutra_proto::storage::storage_service_server::StorageServiceServer;
use sutra_raft::{
    EndpointFactory, LogStore, NetworkConfig, NodeInfo, PeerIdentity, PeerMembership, PeerNetwork,
    RaftGrpcService, ServiceConfig, StateMachine, peer_membership,
};
use tokio::net::TcpListener;
use tonic::Status;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Endpoint, Server};

use crate::auth::Authorizer;
use crate::config::ValidConfig;
use crate::node::{Node, Raft};
use crate::service::cluster::ClusterApi;
use crate::service::storage::StorageApi;

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
    /// Raft refused to start or stopped.
    #[error("raft: {0}")]
    Raft(String),
    /// A server failed.
    #[error("server: {0}")]
    Server(#[from] tonic::transport::Error),
}

/// The openraft configuration for a node (see docs/operations.md for the timing choices).
pub fn raft_config(c: &ValidConfig) -> Result<RaftConfig, RunError> {
    let config = RaftConfig {
        cluster_name: "sutra".into(),
        heartbeat_interval: c.heartbeat_ms,
        election_timeout_min: c.election_timeout_min_ms,
        election_timeout_max: c.election_timeout_max_ms,
        enable_pre_vote: Some(true),
        snapshot_policy: SnapshotPolicy::LogsSinceLast(c.snapshot_every_entries),
        max_in_snapshot_log_to_keep: c.log_keep_entries,
        replication_lag_threshold: c.snapshot_every_entries + c.log_keep_entries,
        purge_batch_size: 256,
        install_snapshot_timeout: 10_000,
        ..RaftConfig::default()
    };
    config.validate().map_err(|e| RunError::Raft(e.to_string()))
}

fn engine_config(c: &ValidConfig) -> EngineConfig {
    EngineConfig {
        params: StoreParams {
            vector_dimension: c.vector_dimension,
            ..StoreParams::default()
        },
        limits: Limits {
            max_content_bytes: c.max_content_bytes,
            max_batch_ops: c.max_batch_ops,
            ..Limits::default()
        },
        ..EngineConfig::default()
    }
}

/// Dials peers: mutual TLS with this node's certificate, or plaintext when insecure.
fn endpoints(c: &ValidConfig) -> Result<EndpointFactory, RunError> {
    match c.tls() {
        None => Ok(sutra_raft::plaintext_endpoints()),
        Some(tls) => {
            // Check the files now, so a bad path fails at start-up, not at the first RPC.
            sutra_certs::client_tls(&tls.ca, &tls.cert, &tls.key, "localhost")?;
            Ok(Arc::new(move |peer, addr: &str| {
                // Peers are verified against the identity their certificate must carry:
                // the DNS name `sutra-node<id>`, which every node certificate has.
                let domain = format!("sutra-node{peer}");
                let tls = sutra_certs::client_tls(&tls.ca, &tls.cert, &tls.key, &domain)?;
                Ok(Endpoint::from_shared(format!("https://{addr}"))?.tls_config(tls)?)
            }))
        }
    }
}

/// Who may call the peer endpoint: with TLS, any node certificate from the cluster CA.
///
/// The CA is the trust boundary. Each caller's identity is then checked against what it
/// says in Raft terms: a node may only vote, append or send snapshots as itself (the peer
/// service refuses impersonation). Membership is deliberately not consulted here: a node
/// that missed a membership change would otherwise refuse the very leader that can tell
/// it about the change, and could cost the cluster its quorum. Client certificates are
/// refused: the peer API is for nodes.
fn peer_auth(c: &ValidConfig) -> Arc<dyn sutra_raft::PeerAuth> {
    if c.tls().is_none() {
        return Arc::new(sutra_raft::AllowAll);
    }
    Arc::new(
        |req: &tonic::Request<()>, raft: &Raft| -> Result<PeerIdentity, Status> {
            let id = sutra_certs::peer_identity(req)?;
            let Some(node) = id.node_id() else {
                return Err(Status::permission_denied(format!(
                    "{} is not a node: the peer API is for nodes",
                    id.uri()
                )));
            };
            if peer_membership(raft, node) == PeerMembership::NotMember {
                tracing::debug!(
                    node,
                    "peer call from a node outside this node's membership (it may be stale)"
                );
            }
            Ok(PeerIdentity::Node(node))
        },
    )
}

/// Listens on `addr`. Accepted connections get `TCP_NODELAY` (a small gRPC answer must
/// not wait for the peer's delayed ACK: Nagle's algorithm would hold it up to 40 ms) and
/// keepalive probes, so a peer that vanished without a FIN is noticed.
async fn bind(addr: SocketAddr) -> Result<TcpIncoming, RunError> {
    let l = TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Bind { addr, source })?;
    Ok(TcpIncoming::from(l)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(30))))
}

/// Runs a node until SIGTERM or SIGINT, then shuts it down in order.
pub async fn run(config: ValidConfig) -> Result<(), RunError> {
    tracing::info!(node_id = config.node_id, effective_config = %config.effective(), "starting sutra-node");
    let tls = config.tls();
    if tls.is_none() {
        tracing::warn!(
            "INSECURE MODE: no TLS and no authentication on any endpoint; never use this outside a sandbox"
        );
    }
    sutra_certs::install_crypto_provider();

    let sm_dir = config.data_dir.join("sm");
    let log_dir = config.data_dir.join("raft");
    let sm = StateMachine::open(&sm_dir, engine_config(&config)).map_err(|source| {
        RunError::Storage {
            path: sm_dir.display().to_string(),
            source,
        }
    })?;
    let engine = sm.engine().clone();
    let log = LogStore::open(&log_dir).map_err(|source| RunError::Storage {
        path: log_dir.display().to_string(),
        source,
    })?;
    let net_config = NetworkConfig {
        max_message_bytes: config.max_message_bytes,
        peer_dial: config.peer_dial(),
        ..NetworkConfig::default()
    };
    let network = PeerNetwork::new(config.node_id, net_config, endpoints(&config)?);
    let raft = Raft::new(
        config.node_id,
        Arc::new(raft_config(&config)?),
        network.clone(),
        log,
        sm,
    )
    .await
    .map_err(|e| RunError::Raft(e.to_string()))?;
    let node = Arc::new(Node::new(
        raft.clone(),
        engine.clone(),
        config.clone(),
        log_dir,
        network,
    ));

    // Peer endpoint.
    let service_config = ServiceConfig {
        max_message_bytes: config.max_message_bytes,
        ..ServiceConfig::default()
    };
    let peer = RaftGrpcService::new(
        raft.clone(),
        engine.clone(),
        peer_auth(&config),
        service_config,
    );
    let contact = node.clone();
    let peer = peer.on_append_entries(Arc::new(move || contact.note_leader_contact()));
    let mut peer_server = Server::builder();
    if let Some(t) = &tls {
        peer_server = peer_server.tls_config(sutra_certs::server_tls(&t.ca, &t.cert, &t.key)?)?;
    }
    let peer_listener = bind(config.raft_listen).await?;

    // Client endpoint: storage, cluster, standard health, reflection.
    let auth = if tls.is_some() {
        Authorizer::Tls
    } else {
        Authorizer::Insecure
    };
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(sutra_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| RunError::Raft(format!("reflection: {e}")))?;
    // A client write becomes one log entry, and the peer network ships entries in
    // messages of at most `max_message_bytes` with up to 8 MiB of other entries batched
    // alongside, plus framing: keep client messages 9 MiB below that.
    let max = config
        .max_message_bytes
        .saturating_sub(8 << 20)
        .max(2 << 20);
    let storage = StorageServiceServer::new(StorageApi::new(node.clone(), auth.clone()))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let cluster = ClusterServiceServer::new(ClusterApi::new(node.clone(), auth));
    let mut api_server = Server::builder();
    if let Some(t) = &tls {
        api_server = api_server.tls_config(sutra_certs::server_tls(&t.ca, &t.cert, &t.key)?)?;
    }
    let api_listener = bind(config.api_listen).await?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let peer_task = tokio::spawn(
        peer_server
            .add_service(peer.into_server())
            .serve_with_incoming_shutdown(peer_listener, stopped(stop_rx.clone())),
    );
    let api_task = tokio::spawn(
        api_server
            .add_service(storage)
            .add_service(cluster)
            .add_service(health_service)
            .add_service(reflection)
            .serve_with_incoming_shutdown(api_listener, stopped(stop_rx.clone())),
    );
    tracing::info!(api = %config.api_listen, raft = %config.raft_listen, tls = tls.is_some(), "listening");

    bootstrap(&node).await?;
    let health_task = tokio::spawn(report_health(
        node.clone(),
        health_reporter,
        stop_rx.clone(),
    ));

    let fatal = tokio::select! {
        _ = wait_for_signal() => None,
        reason = wait_for_fatal(&node) => Some(reason),
    };
    if let Some(reason) = &fatal {
        tracing::error!(%reason, "stopping: storage failed; restart the node to recover from disk");
    }
    tracing::info!("shutting down");
    hand_over_leadership(&node).await;
    let _ = stop_tx.send(true);
    if let Err(e) = raft.shutdown().await {
        tracing::error!(error = %e, "raft shutdown");
    }
    for (name, task) in [("peer", peer_task), ("api", api_task)] {
        match tokio::time::timeout(Duration::from_secs(5), task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::error!(server = name, error = %e, "server failed"),
            Ok(Err(e)) => tracing::error!(server = name, error = %e, "server task failed"),
            Err(_) => tracing::warn!(server = name, "server did not stop within 5 s"),
        }
    }
    health_task.abort();
    if let Some(reason) = fatal {
        // Nothing more is written after a storage failure: the last good checkpoint and
        // the log are what a restart recovers from.
        return Err(RunError::Raft(reason));
    }
    match engine.checkpoint() {
        Ok(d) => tracing::info!(version = d.version, "final checkpoint written"),
        Err(e) => {
            tracing::error!(error = %e, "final checkpoint failed; the log replays on restart")
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Resolves when Raft has stopped on a storage error or the engine is poisoned: the node
/// must not keep serving then (a failed fsync is never retried; a restart recovers).
async fn wait_for_fatal(node: &Node) -> String {
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
async fn bootstrap(node: &Node) -> Result<(), RunError> {
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
async fn report_health(
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

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
    }
}

/// A leader hands leadership to the most up-to-date voter before stopping, so clients
/// see a quick handover instead of an election timeout.
async fn hand_over_leadership(node: &Node) {
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
