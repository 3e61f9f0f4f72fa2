//! An in-process cluster for the network tests: each node has its own log store and engine
//! in a temp dir and serves `RaftService` on a loopback port chosen at run time; nodes talk
//! through the real `PeerNetwork` (plaintext gRPC).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::Config;
use openraft::error::{ClientWriteError, ForwardReason, RaftError};
use sutra_engine::{Concept, Engine, WriteBatch, WriteOp};
use sutra_raft::{
    AllowAll, Command, NetworkConfig, NodeInfo, PeerAuth, PeerNetwork, Raft, RaftGrpcService,
    ServiceConfig, plaintext_endpoints,
};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::common::{open_pair, temp_dir};

/// Upper bound of every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(20);

/// Sends the tests' logs to the test output, filtered by `RUST_LOG` (errors only if unset).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    // Several tests share the process; only the first installs the subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Short timers: heartbeat 50 ms, election timeout 150–300 ms, pre-vote on.
pub fn raft_config() -> Config {
    Config {
        cluster_name: "sutra-test".into(),
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        enable_pre_vote: Some(true),
        ..Config::default()
    }
}

/// A running test node.
pub struct TestNode {
    pub id: u64,
    pub raft: Raft,
    pub engine: Engine,
    pub network: PeerNetwork,
    pub service: RaftGrpcService,
    /// AppendEntries from the leader this node handled (the service's contact hook).
    pub leader_contacts: Arc<AtomicU64>,
    pub addr: SocketAddr,
    server: Option<ServerHandle>,
    _dir: TempDir,
}

struct ServerHandle {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

/// Serves `service` on `listener` until stopped.
fn serve(listener: TcpListener, service: RaftGrpcService) -> ServerHandle {
    let (stop, stopped) = oneshot::channel::<()>();
    let incoming = futures_util::stream::unfold(listener, |listener| async move {
        let conn = listener.accept().await.map(|(stream, _)| stream);
        Some((conn, listener))
    });
    let task = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service.into_server())
            .serve_with_incoming_shutdown(incoming, async {
                stopped.await.ok();
            }),
    );
    ServerHandle { stop, task }
}

impl TestNode {
    /// Opens a fresh node `id` and starts serving it.
    pub async fn start(
        id: u64,
        config: Config,
        net: NetworkConfig,
        svc: ServiceConfig,
        auth: Arc<dyn PeerAuth>,
    ) -> Self {
        let dir = temp_dir();
        let (log, sm) = open_pair(dir.path());
        let engine = sm.engine().clone();
        let cluster = sm.cluster_state();
        let network = PeerNetwork::new(id, net, plaintext_endpoints());
        let config = Arc::new(config.validate().expect("valid raft config"));
        let raft = Raft::new(id, config, network.clone(), log, sm)
            .await
            .expect("start raft");
        let leader_contacts = Arc::new(AtomicU64::new(0));
        let contacts = leader_contacts.clone();
        let proposer = sutra_raft::Proposer::new(raft.clone(), engine.clone(), cluster);
        let service =
            RaftGrpcService::new(proposer, auth, svc).on_append_entries(Arc::new(move |_| {
                contacts.fetch_add(1, Ordering::Relaxed);
            }));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let server = serve(listener, service.clone());
        Self {
            id,
            raft,
            engine,
            network,
            service,
            leader_contacts,
            addr,
            server: Some(server),
            _dir: dir,
        }
    }

    /// Opens and serves a node with the default network and service options.
    pub async fn start_default(id: u64, config: Config) -> Self {
        Self::start(
            id,
            config,
            NetworkConfig::default(),
            ServiceConfig::default(),
            Arc::new(AllowAll),
        )
        .await
    }

    pub fn info(&self) -> NodeInfo {
        NodeInfo::new(self.addr.to_string(), self.addr.to_string())
    }

    /// Stops serving RPCs (the Raft node keeps running): to its peers it is gone.
    pub async fn stop_server(&mut self) {
        let server = self.server.take().expect("server is running");
        server.stop.send(()).ok();
        let mut task = server.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
            panic!("node {}: server did not stop within 5 s", self.id);
        }
    }

    /// Serves RPCs again on the same address.
    pub async fn restart_server(&mut self) {
        assert!(self.server.is_none(), "server is already running");
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("rebind same port");
        self.server = Some(serve(listener, self.service.clone()));
    }

    /// Waits until this node applied at least `index`.
    pub async fn wait_applied(&self, index: u64, what: &str) {
        self.raft
            .wait(Some(WAIT))
            .applied_index_at_least(Some(index), format!("node {}: {what}", self.id))
            .await
            .unwrap_or_else(|e| panic!("node {}: {what}: {e}", self.id));
    }

    /// Writes `cmd` through this node, which must be the leader; returns its log index.
    ///
    /// A write the leader refuses because its lease lapsed (a heartbeat round came late on
    /// a busy machine) was not appended, so it is retried once the lease is back, a bounded
    /// number of times.
    pub async fn write(&self, cmd: Command) -> u64 {
        for _ in 0..20 {
            match self.raft.client_write(cmd.clone()).await {
                Ok(resp) => return resp.log_id.index,
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))
                    if f.reason == ForwardReason::LeaseExpired =>
                {
                    self.raft
                        .wait(Some(WAIT))
                        .leader_with_quorum_acked(None, "lease back")
                        .await
                        .expect("the lease comes back");
                }
                Err(e) => panic!("node {}: client write: {e}", self.id),
            }
        }
        panic!(
            "node {}: write refused 20 times for an expired lease",
            self.id
        );
    }

    pub fn content(&self, id: &str) -> Option<Vec<u8>> {
        self.engine
            .get(id)
            .expect("engine read")
            .map(|c: Concept| c.content)
    }

    pub async fn shutdown(mut self) {
        if self.server.is_some() {
            self.stop_server().await;
        }
        self.raft.shutdown().await.expect("raft shutdown");
    }
}

/// A command that puts concept `id` with `content`.
pub fn put(id: &str, content: &str) -> Command {
    let batch = WriteBatch {
        session: None,
        ops: vec![WriteOp::PutConcept {
            concept: Concept {
                id: id.into(),
                content: content.as_bytes().to_vec(),
                ..Concept::default()
            },
            expected_version: None,
        }],
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64;
    Command::new(batch, now)
}

/// Concept id of the i-th test write.
pub fn key(i: usize) -> String {
    format!("c{i:04}")
}

/// A cluster of running nodes, indexed by node id - 1.
pub struct Cluster {
    pub nodes: Vec<TestNode>,
}

impl Cluster {
    /// Starts `n` nodes (ids 1..=n), initializes them as voters and waits for a leader.
    pub async fn start(n: u64, config: Config, net: NetworkConfig) -> Self {
        let mut nodes = Vec::new();
        for id in 1..=n {
            nodes.push(
                TestNode::start(
                    id,
                    config.clone(),
                    net.clone(),
                    ServiceConfig::default(),
                    Arc::new(AllowAll),
                )
                .await,
            );
        }
        let members: BTreeMap<u64, NodeInfo> = nodes.iter().map(|n| (n.id, n.info())).collect();
        nodes[0].raft.initialize(members).await.expect("initialize");
        let cluster = Self { nodes };
        cluster.leader().await;
        cluster
    }

    pub fn node(&self, id: u64) -> &TestNode {
        &self.nodes[(id - 1) as usize]
    }

    pub fn node_mut(&mut self, id: u64) -> &mut TestNode {
        &mut self.nodes[(id - 1) as usize]
    }

    /// Waits until some node is leader with a valid lease and every node whose server runs
    /// agrees on it.
    ///
    /// A node's view can be stale for a moment (right after a transfer, the old leader's
    /// own metrics may still say it leads), so a candidate that not everyone confirms within
    /// a short wait is dropped and the question asked again, until [`WAIT`] runs out.
    pub async fn leader(&self) -> u64 {
        let deadline = std::time::Instant::now() + WAIT;
        let short = Some(Duration::from_secs(2));
        loop {
            let m = self.nodes[0]
                .raft
                .wait(Some(WAIT))
                .metrics(|m| m.current_leader.is_some(), "a leader is known")
                .await
                .expect("a leader is elected");
            let candidate = m.current_leader.expect("checked");
            // openraft takes writes only while the leader's lease holds, which starts with
            // the first quorum acknowledgement after the election.
            let mut agreed = self
                .node(candidate)
                .raft
                .wait(short)
                .leader_with_quorum_acked(None, "leader with a quorum-acknowledged lease")
                .await
                .is_ok();
            for n in self.nodes.iter().filter(|n| n.server.is_some()) {
                agreed = agreed
                    && n.raft
                        .wait(short)
                        .current_leader(candidate, format!("node {} knows the leader", n.id))
                        .await
                        .is_ok();
            }
            if agreed {
                return candidate;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the nodes did not agree on a leader within {WAIT:?}"
            );
        }
    }

    /// Writes `keys` concurrently through `leader`; returns the highest log index written.
    pub async fn write(&self, leader: u64, keys: std::ops::Range<usize>) -> u64 {
        let node = self.node(leader);
        let writes = keys.map(|i| node.write(put(&key(i), &format!("value {i}"))));
        futures_util::future::join_all(writes)
            .await
            .into_iter()
            .max()
            .expect("at least one write")
    }

    pub async fn shutdown(self) {
        for n in self.nodes {
            n.shutdown().await;
        }
    }
}
