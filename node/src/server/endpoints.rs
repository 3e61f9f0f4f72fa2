//! The node's two gRPC endpoints: the peer endpoint (`sutra.raft.RaftService`, mutual TLS
//! between nodes) and the client endpoint (storage, cluster, standard health, reflection).

use std::net::SocketAddr;
use std::time::Duration;

use sutra_proto::cluster::cluster_service_server::ClusterServiceServer;
use sutra_proto::storage::storage_service_server::StorageServiceServer;
use sutra_raft::{RaftGrpcService, ServiceConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use super::RunError;
use crate::auth::Authorizer;
use crate::config::ValidConfig;
use crate::node::Node;
use crate::service::cluster::ClusterApi;
use crate::service::storage::StorageApi;

/// A running server task.
pub(super) type ServerTask = JoinHandle<Result<(), tonic::transport::Error>>;

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

/// A server builder with this node's TLS, if any.
fn server(config: &ValidConfig) -> Result<Server, RunError> {
    let mut server = Server::builder();
    if let Some(t) = config.tls() {
        server = server.tls_config(sutra_certs::server_tls(&t.ca, &t.cert, &t.key)?)?;
    }
    Ok(server)
}

/// Resolves once `stop` turns true.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Serves the peer endpoint until `stop`.
pub(super) async fn serve_peers(
    node: &std::sync::Arc<Node>,
    stop: watch::Receiver<bool>,
) -> Result<ServerTask, RunError> {
    let config = &node.config;
    let service_config = ServiceConfig {
        max_message_bytes: config.max_message_bytes,
        ..ServiceConfig::default()
    };
    let peer = RaftGrpcService::new(
        node.proposer.clone(),
        super::open::peer_auth(config),
        service_config,
    )
    .with_cluster_identity(node.identity.clone());
    let contact = node.clone();
    let peer = peer.on_append_entries(std::sync::Arc::new(move |commit| {
        contact.note_leader_contact(commit)
    }));
    let mut server = server(config)?;
    let listener = bind(config.raft_listen).await?;
    Ok(tokio::spawn(
        server
            .add_service(peer.into_server())
            .serve_with_incoming_shutdown(listener, stopped(stop)),
    ))
}

/// Serves the client endpoint until `stop`; returns the standard health reporter with it.
pub(super) async fn serve_clients(
    node: &std::sync::Arc<Node>,
    stop: watch::Receiver<bool>,
) -> Result<(ServerTask, tonic_health::server::HealthReporter), RunError> {
    let config = &node.config;
    let auth = if config.tls().is_some() {
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
    let mut server = server(config)?;
    let listener = bind(config.api_listen).await?;
    let task = tokio::spawn(
        server
            .add_service(storage)
            .add_service(cluster)
            .add_service(health_service)
            .add_service(reflection)
            .serve_with_incoming_shutdown(listener, stopped(stop)),
    );
    Ok((task, health_reporter))
}

/// Waits (at most 5 s each) for the servers to finish after `stop`, logging failures.
pub(super) async fn join(tasks: [(&str, ServerTask); 2]) {
    for (name, task) in tasks {
        match tokio::time::timeout(Duration::from_secs(5), task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::error!(server = name, error = %e, "server failed"),
            Ok(Err(e)) => tracing::error!(server = name, error = %e, "server task failed"),
            Err(_) => tracing::warn!(server = name, "server did not stop within 5 s"),
        }
    }
}
