//! Opening a node: the engine under the state machine, the RocksDB log, the peer network
//! and the Raft instance over them, with the configuration each takes from the node's.

use std::sync::Arc;

use openraft::{Config as RaftConfig, SnapshotPolicy};
use sutra_engine::{EngineConfig, Limits, StoreParams};
use sutra_raft::{
    ClusterIdentity, EndpointFactory, LogStore, NetworkConfig, PeerIdentity, PeerMembership,
    PeerNetwork, SharedObserver, StateMachine, peer_membership,
};
use tonic::Status;
use tonic::transport::Endpoint;

use super::RunError;

/// The file, in the data directory, that holds the id of the cluster this node belongs
/// to (`sutra_raft::cluster_id`).
pub const CLUSTER_ID_FILE: &str = "cluster-id";
use crate::config::ValidConfig;
use crate::metrics::Instruments;
use crate::node::{Node, NodeParts, Raft};

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

/// A new store takes its parameters from the cluster (the bootstrap entry, or a
/// snapshot), never from this node's flags.
fn engine_config(c: &ValidConfig) -> EngineConfig {
    EngineConfig {
        params: StoreParams::UNSET,
        limits: Limits::default(),
        max_file_bytes: c.data_file_limit_bytes,
        grow_step_bytes: c.data_file_grow_bytes,
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
pub(super) fn peer_auth(c: &ValidConfig) -> Arc<dyn sutra_raft::PeerAuth> {
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

/// Opens storage and Raft and wraps them in the node every service shares.
pub(super) async fn open_node(config: &ValidConfig) -> Result<Arc<Node>, RunError> {
    let sm_dir = config.data_dir.join("sm");
    let log_dir = config.data_dir.join("raft");
    let instruments = Arc::new(Instruments::default());
    let observer: SharedObserver = instruments.clone();
    let sm =
        StateMachine::open(&sm_dir, engine_config(config)).map_err(|source| RunError::Storage {
            path: sm_dir.display().to_string(),
            source,
        })?;
    let sm = sm.with_observer(observer.clone());
    let engine = sm.engine().clone();
    let cluster = sm.cluster_state();
    let id_path = config.data_dir.join(CLUSTER_ID_FILE);
    let identity = ClusterIdentity::open(&id_path).map_err(|e| RunError::Identity {
        path: id_path.display().to_string(),
        reason: e.to_string(),
    })?;
    let log = LogStore::open(&log_dir).map_err(|source| RunError::Storage {
        path: log_dir.display().to_string(),
        source,
    })?;
    log.observe(observer.clone());
    let net_config = NetworkConfig {
        max_message_bytes: config.max_message_bytes,
        peer_dial: config.peer_dial(),
        ..NetworkConfig::default()
    };
    let network = PeerNetwork::new(config.node_id, net_config, endpoints(config)?)
        .with_cluster_identity(identity.clone())
        .with_observer(observer);
    let raft = Raft::new(
        config.node_id,
        Arc::new(raft_config(config)?),
        network.clone(),
        log,
        sm,
    )
    .await
    .map_err(|e| RunError::Raft(e.to_string()))?;
    let parts = NodeParts {
        engine,
        cluster,
        log_dir,
        network,
        identity,
        instruments,
    };
    Ok(Arc::new(Node::new(raft, config.clone(), parts)))
}
