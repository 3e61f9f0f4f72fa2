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
use super::authorized::Authorized;
use super::incoming::LimitedIncoming;
use super::measured::Measured;
use crate::auth::Authorizer;
use crate::config::ValidConfig;
use crate::node::Node;
use crate::service::cluster::ClusterApi;
use crate::service::storage::StorageApi;

/// A running server task.
pub(super) type ServerTask = JoinHandle<Result<(), tonic::transport::Error>>;

/// The bounds on one endpoint's work that differ between the two.
struct EndpointLimits {
    /// `client` or `peer`, for logs.
    name: &'static str,
    max_connections: usize,
    max_streams_per_connection: u32,
    request_timeout: Duration,
}

impl EndpointLimits {
    fn client(c: &ValidConfig) -> Self {
        Self {
            name: "client",
            max_connections: c.max_client_connections,
            max_streams_per_connection: c.max_streams_per_connection,
            request_timeout: c.request_timeout(),
        }
    }

    fn peer(c: &ValidConfig) -> Self {
        Self {
            name: "peer",
            max_connections: c.max_peer_connections,
            max_streams_per_connection: c.max_peer_streams_per_connection,
            request_timeout: c.peer_request_timeout(),
        }
    }
}

/// Listens on `addr`, at most `limits.max_connections` connections open at once.
/// Accepted connections get `TCP_NODELAY` (a small gRPC answer must not wait for the
/// peer's delayed ACK: Nagle's algorithm would hold it up to 40 ms) and keepalive
/// probes, so a peer that vanished without a FIN is noticed.
async fn bind(addr: SocketAddr, limits: &EndpointLimits) -> Result<LimitedIncoming, RunError> {
    let l = TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Bind { addr, source })?;
    let incoming = TcpIncoming::from(l)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(30)));
    Ok(LimitedIncoming::new(
        incoming,
        limits.max_connections,
        limits.name,
    ))
}

/// A server builder with this node's TLS, if any, and the endpoint's bounds: streams
/// per connection, the request deadline (tonic keeps a shorter `grpc-timeout` of the
/// call's own), the TLS handshake time, and HTTP/2 PINGs that drop a connection whose
/// peer stopped answering.
fn server(config: &ValidConfig, limits: &EndpointLimits) -> Result<Server, RunError> {
    let mut server = Server::builder()
        .max_concurrent_streams(limits.max_streams_per_connection)
        .timeout(limits.request_timeout)
        .http2_keepalive_interval(Some(config.http2_keepalive_interval()))
        .http2_keepalive_timeout(Some(config.http2_keepalive_timeout()));
    if let Some(t) = config.tls() {
        let tls = sutra_certs::server_tls(&t.ca, &t.cert, &t.key)?
            .timeout(config.tls_handshake_timeout());
        server = server.tls_config(tls)?;
    }
    tracing::debug!(
        endpoint = limits.name,
        max_connections = limits.max_connections,
        max_streams_per_connection = limits.max_streams_per_connection,
        request_timeout = ?limits.request_timeout,
        "endpoint limits"
    );
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
        max_snapshot_bytes: config.max_snapshot_bytes,
        snapshot_receive_timeout: config.snapshot_receive_timeout(),
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
    let limits = EndpointLimits::peer(config);
    let mut server = server(config, &limits)?;
    let listener = bind(config.raft_listen, &limits).await?;
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
    // The role check runs in front of each generated server, so a call is refused before
    // its body is decoded. Health and reflection stay open to any certificate of the CA.
    let storage = StorageServiceServer::new(StorageApi::new(node.clone()))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let storage = Authorized::new(storage, auth.clone());
    let cluster = Authorized::new(
        ClusterServiceServer::new(ClusterApi::new(node.clone())),
        auth,
    );
    // Outside the role check, so refused calls are counted too.
    let slow = config.slow_request();
    let storage = Measured::new(storage, node.instruments.clone(), slow);
    let cluster = Measured::new(cluster, node.instruments.clone(), slow);
    let limits = EndpointLimits::client(config);
    let mut server = server(config, &limits)?;
    let listener = bind(config.api_listen, &limits).await?;
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
