//! [`PeerNetwork`]: openraft's network over gRPC (`sutra.raft.RaftService`).
//!
//! ```text
//!  openraft RaftCore / replication tasks
//!     │ new_client(target, node)            one PeerClient per replication stream,
//!     ▼                                     heartbeat worker, vote or transfer broadcast
//!  PeerNetwork ── channel cache: (node id, kind) → (dial address, tonic Channel)
//!     │              dial address: NetworkConfig::peer_dial[id], else the node's raft_addr
//!     │              created lazily through the caller's EndpointFactory (TLS lives there),
//!     │              re-created only when the node's address changes
//!     ▼
//!  PeerClient (RaftNetworkV2)
//!     append_entries / vote / pre_vote / transfer_leader : unary, deadline from RPCOption
//!     full_snapshot : client stream  header(vote, meta, size, crc32c) → data chunks
//!                     (read from the engine snapshot by a blocking task, ≤ 2 chunks queued)
//! ```
//!
//! Errors reach openraft as it expects them: a peer that cannot be reached (connection
//! refused, server gone, not authorized) is `Unreachable`, so openraft backs off; a deadline
//! is `Timeout`; anything else is a `NetworkError`, retried at once.

mod client;
mod config;
mod rpc_error;
mod snapshot_sender;

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::RaftNetworkFactory;
use parking_lot::Mutex;
use sutra_proto::raft::raft_service_client::RaftServiceClient;
use tonic::transport::{Channel, Endpoint};

pub use client::{PeerClient, PeerGrpcClient};
pub use config::NetworkConfig;

use crate::cluster_id::{ClusterIdStamp, ClusterIdentity};
use crate::observer::SharedObserver;
use crate::types::{NodeId, NodeInfo, TypeConfig};

/// Builds the endpoint for a peer: `(node id, "host:port")` → a tonic [`Endpoint`].
///
/// This is where the node adds mutual TLS (`Endpoint::tls_config` with the cluster CA, its
/// own certificate, and the domain name the peer's certificate must carry); the network sets
/// the transport options on top. [`plaintext_endpoints`] is the insecure variant for tests
/// and `--insecure`.
pub type EndpointFactory =
    Arc<dyn Fn(NodeId, &str) -> Result<Endpoint, Box<dyn StdError + Send + Sync>> + Send + Sync>;

/// An [`EndpointFactory`] for plaintext HTTP/2 (`http://host:port`).
pub fn plaintext_endpoints() -> EndpointFactory {
    Arc::new(|_, addr| Ok(Endpoint::from_shared(format!("http://{addr}"))?))
}

/// Which connection to a peer: snapshots get their own, so a long transfer cannot hold up
/// replication and heartbeats in one HTTP/2 connection's flow-control window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ChannelKind {
    Replication,
    Snapshot,
}

/// openraft's network factory: hands out [`PeerClient`]s over cached, long-lived channels.
///
/// Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct PeerNetwork {
    shared: Arc<Shared>,
}

struct Shared {
    /// This node's id, for error reports.
    id: NodeId,
    config: NetworkConfig,
    endpoints: EndpointFactory,
    channels: Mutex<HashMap<(NodeId, ChannelKind), Cached>>,
    /// Channels created so far; one per peer and kind unless an address changed.
    channels_created: AtomicU64,
    /// Stamped on every call.
    identity: ClusterIdentity,
    /// Told of every snapshot a follower accepted.
    observer: Option<SharedObserver>,
}

struct Cached {
    addr: String,
    channel: Channel,
}

impl fmt::Debug for PeerNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let channels = self.shared.channels.lock();
        let mut peers: Vec<_> = channels
            .iter()
            .map(|((id, kind), c)| (*id, *kind, c.addr.clone()))
            .collect();
        peers.sort_by_key(|(id, kind, _)| (*id, *kind as u8));
        f.debug_struct("PeerNetwork")
            .field("id", &self.shared.id)
            .field("config", &self.shared.config)
            .field("channels", &peers)
            .finish()
    }
}

impl PeerNetwork {
    /// The network of node `id`, dialing peers through `endpoints`.
    ///
    /// # Panics
    ///
    /// If `config` is invalid (see [`NetworkConfig::validate`]).
    pub fn new(id: NodeId, config: NetworkConfig, endpoints: EndpointFactory) -> Self {
        if let Err(e) = config.validate() {
            panic!("invalid network config: {e}");
        }
        Self {
            shared: Arc::new(Shared {
                id,
                config,
                endpoints,
                channels: Mutex::new(HashMap::new()),
                channels_created: AtomicU64::new(0),
                identity: ClusterIdentity::default(),
                observer: None,
            }),
        }
    }

    /// Stamps `identity`'s cluster id on every call this network makes.
    ///
    /// # Panics
    ///
    /// If the network was cloned already (set it right after [`new`](Self::new)).
    pub fn with_cluster_identity(mut self, identity: ClusterIdentity) -> Self {
        Arc::get_mut(&mut self.shared)
            .expect("the cluster identity is set before the network is shared")
            .identity = identity;
        self
    }

    /// Tells `observer` of every snapshot sent and accepted.
    ///
    /// # Panics
    ///
    /// If the network was cloned already (set it right after [`new`](Self::new)).
    pub fn with_observer(mut self, observer: SharedObserver) -> Self {
        Arc::get_mut(&mut self.shared)
            .expect("the observer is set before the network is shared")
            .observer = Some(observer);
        self
    }

    fn grpc_client(&self, channel: Channel) -> PeerGrpcClient {
        RaftServiceClient::with_interceptor(channel, ClusterIdStamp(self.shared.identity.clone()))
            .max_decoding_message_size(self.shared.config.max_message_bytes)
            .max_encoding_message_size(self.shared.config.max_message_bytes)
    }

    /// The configuration in use.
    pub fn config(&self) -> &NetworkConfig {
        &self.shared.config
    }

    /// Drops the cached channels to `node` (e.g. after it left the membership); its
    /// connections close once in-flight calls finish. A later client re-dials.
    pub fn forget(&self, node: NodeId) {
        self.shared.channels.lock().retain(|(id, _), _| *id != node);
    }

    /// Channels created so far (for metrics and tests): one per peer for replication and
    /// one for snapshots once one was sent, plus one per address change.
    pub fn channels_created(&self) -> u64 {
        self.shared.channels_created.load(Ordering::Relaxed)
    }

    /// Node ids with a cached channel.
    pub fn cached_peers(&self) -> Vec<NodeId> {
        let mut ids: Vec<_> = self
            .shared
            .channels
            .lock()
            .keys()
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The address to dial `target` at: its override in [`NetworkConfig::peer_dial`] if
    /// there is one, else the `raft_addr` the membership stores for it.
    pub fn dial_addr<'a>(&'a self, target: NodeId, node: &'a NodeInfo) -> &'a str {
        self.shared
            .config
            .peer_dial
            .get(&target)
            .map_or(node.raft_addr.as_str(), String::as_str)
    }

    /// The cached channel to `target` at `addr`, created (lazily: no connection yet) if there
    /// is none or the address changed.
    fn channel(&self, target: NodeId, addr: &str, kind: ChannelKind) -> Result<Channel, String> {
        let mut channels = self.shared.channels.lock();
        if let Some(c) = channels.get(&(target, kind))
            && c.addr == addr
        {
            return Ok(c.channel.clone());
        }
        let endpoint = (self.shared.endpoints)(target, addr)
            .map_err(|e| format!("no endpoint for node {target} at {addr:?}: {e}"))?;
        let channel = self.shared.config.apply(endpoint).connect_lazy();
        self.shared.channels_created.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            target_node = target,
            addr,
            ?kind,
            overridden = self.shared.config.peer_dial.contains_key(&target),
            "peer channel created"
        );
        channels.insert(
            (target, kind),
            Cached {
                addr: addr.to_string(),
                channel: channel.clone(),
            },
        );
        Ok(channel)
    }

    /// A client of `target`'s peer service over the cached replication channel, for the
    /// calls a follower makes to its leader (`ForwardWrite`, `ReadIndex`).
    pub fn leader_client(&self, target: NodeId, node: &NodeInfo) -> Result<PeerGrpcClient, String> {
        self.channel(
            target,
            self.dial_addr(target, node),
            ChannelKind::Replication,
        )
        .map(|channel| self.grpc_client(channel))
    }

    fn client(&self, target: NodeId, node: &NodeInfo, kind: ChannelKind) -> PeerClient {
        let client = self
            .channel(target, self.dial_addr(target, node), kind)
            .map(|channel| self.grpc_client(channel))
            .inspect_err(|e| tracing::warn!(target_node = target, error = %e, "peer unreachable"));
        PeerClient::new(self.shared.clone(), target, client)
    }
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> PeerClient {
        self.client(target, node, ChannelKind::Replication)
    }

    async fn new_snapshot_client(&mut self, target: NodeId, node: &NodeInfo) -> PeerClient {
        self.client(target, node, ChannelKind::Snapshot)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;

    fn network(peer_dial: BTreeMap<NodeId, String>) -> PeerNetwork {
        let config = NetworkConfig {
            connect_timeout: Duration::from_secs(2),
            peer_dial,
            ..NetworkConfig::default()
        };
        PeerNetwork::new(1, config, plaintext_endpoints())
    }

    #[test]
    fn dial_address_is_the_override_else_the_membership_address() {
        let net = network(BTreeMap::from([(2, "proxy:7002".to_string())]));
        let two = NodeInfo::new("node2:50052", "node2:50051");
        let three = NodeInfo::new("node3:50052", "node3:50051");
        assert_eq!(net.dial_addr(2, &two), "proxy:7002");
        assert_eq!(net.dial_addr(3, &three), "node3:50052");
    }

    /// The override is what gets dialed, for openraft's clients and for the calls a
    /// follower makes to its leader: the membership address here refuses connections,
    /// the override is a listener that sees them arrive.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn override_is_dialed_by_peer_and_leader_clients() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let over = listener.local_addr().unwrap().to_string();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let unreachable = closed.local_addr().unwrap().to_string();
        drop(closed);
        let mut net = network(BTreeMap::from([(2, over.clone())]));
        let node = NodeInfo::new(unreachable, "unused:1");

        let mut leader = net.leader_client(2, &node).unwrap();
        let call = tokio::spawn(async move {
            leader
                .read_index(sutra_proto::raft::ReadIndexRequest {})
                .await
        });
        let accepted = tokio::time::timeout(Duration::from_secs(5), listener.accept()).await;
        assert!(accepted.is_ok(), "the leader client did not dial {over}");
        call.abort();

        let mut peer = net.new_snapshot_client(2, &node).await;
        let rpc = openraft::network::RPCOption::new(Duration::from_millis(500));
        let vote = tokio::spawn(async move {
            use openraft::network::RaftNetworkV2 as _;
            let _ = peer
                .vote(
                    openraft::raft::VoteRequest::new(crate::types::Vote::new(1, 1), None),
                    rpc,
                )
                .await;
        });
        let accepted = tokio::time::timeout(Duration::from_secs(5), listener.accept()).await;
        assert!(accepted.is_ok(), "the peer client did not dial {over}");
        vote.abort();
        assert_eq!(net.cached_peers(), vec![2]);
        assert!(format!("{net:?}").contains(&over), "{net:?}");
    }
}
