//! [`Cluster`]: N `sutra-node` processes on loopback with TLS, each with its own data
//! directory, ports chosen at run time, certificates from a dev CA in the test's temp
//! directory, and the waits a test needs (leader elected, index applied) done by polling
//! what the nodes report, within a deadline.

mod faults;
mod restore;
mod waits;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sutra_certs::Role;
use sutra_devcluster::linkproxy::LinkProxy;
use tempfile::TempDir;
use tonic::transport::Channel;

use crate::client::{self, ClientCerts, ClientRole, NodeClient, Writer};
use crate::process::{self, NodeProcess};
use sutra_checker::History;

/// How long one status or health poll may take (a paused node never answers).
const POLL_RPC_TIMEOUT: Duration = Duration::from_secs(1);

/// How a test cluster is started.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Number of initial voters, ids `1..=nodes`.
    pub nodes: u64,
    /// `--heartbeat-ms`.
    pub heartbeat_ms: u64,
    /// `--election-timeout-min-ms`.
    pub election_timeout_min_ms: u64,
    /// `--election-timeout-max-ms`.
    pub election_timeout_max_ms: u64,
    /// `--snapshot-every-entries`, if not the node's default.
    pub snapshot_every_entries: Option<u64>,
    /// `--log-keep-entries`, if not the node's default.
    pub log_keep_entries: Option<u64>,
    /// `--vector-dimension` of node 1, which bootstraps the cluster (the others adopt
    /// the cluster's): small, the tests store no embeddings.
    pub vector_dimension: u32,
    /// More flags for every node.
    pub extra_args: Vec<String>,
    /// More flags for one node, after `extra_args`; [`Cluster::restart_with_args`]
    /// replaces them.
    pub node_args: BTreeMap<u64, Vec<String>>,
    /// Environment variables for one node.
    pub node_env: BTreeMap<u64, Vec<(String, String)>>,
    /// A tmpfs of this many bytes mounted as the node's data directory (a small disk to
    /// fill; needs root), unmounted when the cluster is dropped.
    pub tmpfs_bytes: BTreeMap<u64, u64>,
    /// Certificates from this directory's CA (`ca.pem`, `ca-key.pem`) instead of a new
    /// one: a second cluster under the same CA.
    pub ca_from: Option<PathBuf>,
    /// How long the first leader election may take.
    pub start_timeout: Duration,
    /// A [`LinkProxy`] on every directed link i→j between the initial nodes, each node
    /// dialing its peers through them (`--peer-dial`), for [`Cluster::isolate`],
    /// [`Cluster::partition`], [`Cluster::cut_one_way`] and [`Cluster::link`]. Links to
    /// nodes added later are direct.
    pub link_proxies: bool,
    /// `--metrics-listen` on a port picked at run time for every node
    /// ([`NodeSlot::metrics_addr`]).
    pub metrics_listen: bool,
    /// A backup file every initial node is restored from (`sutra-node restore` with
    /// the cluster's members) before its first start.
    pub restore_from: Option<PathBuf>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            nodes: 3,
            // Short timers make elections quick; the minimum is still six heartbeats so
            // that a loaded two-core machine does not depose healthy leaders.
            heartbeat_ms: 50,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            snapshot_every_entries: None,
            log_keep_entries: None,
            vector_dimension: 8,
            extra_args: Vec::new(),
            node_args: BTreeMap::new(),
            node_env: BTreeMap::new(),
            tmpfs_bytes: BTreeMap::new(),
            ca_from: None,
            start_timeout: Duration::from_secs(30),
            link_proxies: false,
            metrics_listen: false,
            restore_from: None,
        }
    }
}

/// One node of the cluster: its addresses, data directory and process.
#[derive(Debug)]
pub struct NodeSlot {
    /// Node id.
    pub id: u64,
    /// Client API address, `127.0.0.1:P`.
    pub api_addr: String,
    /// Raft peer address, `127.0.0.1:Q`.
    pub raft_addr: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Monitoring listener, `127.0.0.1:M`, when `metrics_listen` was asked for.
    pub metrics_addr: Option<String>,
    process: Mutex<NodeProcess>,
}

impl NodeSlot {
    /// The process, for signals and restarts.
    pub fn process(&self) -> MutexGuard<'_, NodeProcess> {
        self.process.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running test cluster. Dropping it kills every node; unless [`Cluster::finish`] was
/// called (the test got to its end), the tail of every node's log is printed first.
#[derive(Debug)]
pub struct Cluster {
    dir: Option<TempDir>,
    root: PathBuf,
    certs: ClientCerts,
    bin: PathBuf,
    opts: ClusterOptions,
    nodes: BTreeMap<u64, NodeSlot>,
    channels: Mutex<HashMap<(String, ClientRole), Channel>>,
    finished: bool,
    /// Link proxies by (from, to), when `opts.link_proxies`.
    proxies: BTreeMap<(u64, u64), LinkProxy>,
}

/// Client certificates every test cluster has.
const CLIENTS: [(&str, Role); 3] = [
    ("admin", Role::Admin),
    ("writer", Role::Write),
    ("reader", Role::Read),
];

/// How often starting the whole cluster is tried when a chosen port was taken meanwhile.
const START_ATTEMPTS: u32 = 3;

impl Cluster {
    /// Starts `opts.nodes` voters and waits until they agree on a leader.
    pub async fn start(opts: ClusterOptions) -> Result<Self> {
        let bin = process::node_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("sutra-cluster-test-")
            .tempdir()
            .context("creating the test directory")?;
        let root = dir.path().to_owned();
        let certs_dir = root.join("certs");
        let ids: Vec<u64> = (1..=opts.nodes).collect();
        if let Some(from) = &opts.ca_from {
            std::fs::create_dir_all(&certs_dir)?;
            for name in ["ca.pem", "ca-key.pem"] {
                std::fs::copy(from.join(name), certs_dir.join(name))
                    .with_context(|| format!("copying {name} from {}", from.display()))?;
            }
        }
        sutra_certs::generate_dev_set(&certs_dir, &ids, &[], &CLIENTS, false)
            .context("generating test certificates")?;
        std::fs::create_dir_all(root.join("logs"))?;
        tracing::info!(dir = %root.display(), bin = %bin.display(), nodes = opts.nodes, "starting a test cluster");
        let mut cluster = Self {
            dir: Some(dir),
            root,
            certs: ClientCerts::new(&certs_dir),
            bin,
            opts,
            nodes: BTreeMap::new(),
            channels: Mutex::new(HashMap::new()),
            finished: false,
            proxies: BTreeMap::new(),
        };
        for attempt in 1..=START_ATTEMPTS {
            cluster.launch_initial(&ids)?;
            match cluster
                .wait_for_leader(&ids, cluster.opts.start_timeout)
                .await
            {
                Ok(leader) => {
                    cluster.wait_all_applied_first_entries(leader, &ids).await?;
                    tracing::info!(leader, attempt, "cluster up");
                    return Ok(cluster);
                }
                Err(e) if attempt < START_ATTEMPTS && cluster.lost_a_port() => {
                    tracing::warn!(attempt, error = %format!("{e:#}"), "a port was taken meanwhile; starting again on new ports");
                    cluster.discard_nodes()?;
                }
                Err(e) => return Err(e.context("starting the cluster")),
            }
        }
        unreachable!("the last attempt returns")
    }

    fn launch_initial(&mut self, ids: &[u64]) -> Result<()> {
        let ports = free_ports(2 * ids.len())?;
        let addrs: BTreeMap<u64, (String, String)> = ids
            .iter()
            .zip(ports.chunks(2))
            .map(|(&id, p)| {
                (
                    id,
                    (format!("127.0.0.1:{}", p[0]), format!("127.0.0.1:{}", p[1])),
                )
            })
            .collect();
        let members = addrs
            .iter()
            .map(|(id, (api, raft))| format!("{id}={raft}/{api}"))
            .collect::<Vec<_>>()
            .join(",");
        self.proxies.clear();
        if self.opts.link_proxies {
            for &from in addrs.keys() {
                for (&to, (_, raft)) in &addrs {
                    if from != to {
                        self.proxies
                            .insert((from, to), LinkProxy::start(from, to, raft)?);
                    }
                }
            }
        }
        for (&id, (api, raft)) in &addrs {
            self.spawn_node(id, api.clone(), raft.clone(), Some(&members))?;
        }
        Ok(())
    }

    fn spawn_node(
        &mut self,
        id: u64,
        api_addr: String,
        raft_addr: String,
        initial_members: Option<&str>,
    ) -> Result<()> {
        let data_dir = self.root.join(format!("node-{id}"));
        let node_cert = sutra_certs::CertPaths::node(self.certs_dir(), id);
        let mut args: Vec<OsString> = vec!["run".into()];
        let mut flag = |name: &str, value: OsString| {
            args.push(format!("--{name}").into());
            args.push(value);
        };
        flag("node-id", id.to_string().into());
        flag("data-dir", data_dir.clone().into());
        flag("api-listen", api_addr.clone().into());
        flag("raft-listen", raft_addr.clone().into());
        if let Some(m) = initial_members {
            flag("initial-members", m.into());
        }
        flag("tls-ca", self.certs.ca().into());
        flag("tls-cert", node_cert.cert.into());
        flag("tls-key", node_cert.key.into());
        let o = &self.opts;
        flag("heartbeat-ms", o.heartbeat_ms.to_string().into());
        flag(
            "election-timeout-min-ms",
            o.election_timeout_min_ms.to_string().into(),
        );
        flag(
            "election-timeout-max-ms",
            o.election_timeout_max_ms.to_string().into(),
        );
        // A cluster parameter: chosen by the node that bootstraps, adopted by the others.
        if initial_members.is_some() && id == 1 {
            flag("vector-dimension", o.vector_dimension.to_string().into());
        }
        if let Some(n) = o.snapshot_every_entries {
            flag("snapshot-every-entries", n.to_string().into());
        }
        if let Some(n) = o.log_keep_entries {
            flag("log-keep-entries", n.to_string().into());
        }
        let metrics_addr = if o.metrics_listen {
            let addr = format!("127.0.0.1:{}", free_ports(1)?[0]);
            flag("metrics-listen", addr.clone().into());
            Some(addr)
        } else {
            None
        };
        for ((_, to), proxy) in self.proxies.range((id, 0)..=(id, u64::MAX)) {
            flag("peer-dial", format!("{to}={}", proxy.addr()).into());
        }
        args.extend(o.extra_args.iter().map(OsString::from));
        let extra = o
            .node_args
            .get(&id)
            .into_iter()
            .flatten()
            .map(OsString::from)
            .collect();
        let env = o
            .node_env
            .get(&id)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        if let Some(&bytes) = o.tmpfs_bytes.get(&id) {
            faults::mount_tmpfs(&data_dir, bytes)?;
        }
        if let (Some(backup), Some(members)) = (&o.restore_from, initial_members)
            && !data_dir.join("sm").exists()
        {
            restore::run(&self.bin, backup, id, &data_dir, Some(members))?;
        }
        let log = self.root.join("logs").join(format!("node-{id}.log"));
        let process = NodeProcess::spawn_with(id, &self.bin, args, extra, env, log)?;
        self.nodes.insert(
            id,
            NodeSlot {
                id,
                api_addr,
                raft_addr,
                data_dir,
                metrics_addr,
                process: Mutex::new(process),
            },
        );
        Ok(())
    }

    /// Whether a node died because its port was taken between choosing and binding it.
    fn lost_a_port(&self) -> bool {
        self.nodes.values().any(|n| {
            let mut p = n.process();
            p.has_exited() && p.log_contains("Address already in use")
        })
    }

    fn discard_nodes(&mut self) -> Result<()> {
        for (_, node) in std::mem::take(&mut self.nodes) {
            drop(node.process);
            if node.data_dir.exists() {
                std::fs::remove_dir_all(&node.data_dir)
                    .with_context(|| format!("removing {}", node.data_dir.display()))?;
            }
        }
        Ok(())
    }

    /// Starts node `id` with a fresh certificate, fresh ports and no initial members, as
    /// an operator does before `AddLearner`.
    pub fn add_node(&mut self, id: u64) -> Result<()> {
        if self.nodes.contains_key(&id) {
            bail!("node {id} exists already");
        }
        sutra_certs::issue_node_cert(self.certs_dir(), id, &[], false)
            .with_context(|| format!("issuing a certificate for node {id}"))?;
        let ports = free_ports(2)?;
        let (api, raft) = (
            format!("127.0.0.1:{}", ports[0]),
            format!("127.0.0.1:{}", ports[1]),
        );
        self.spawn_node(id, api, raft, None)
    }

    /// The test's temporary directory.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// The id of this cluster, as node `id` keeps it (`<data dir>/cluster-id`): what a
    /// peer call must carry.
    pub fn cluster_id(&self, id: u64) -> Result<String> {
        let path = self.node(id)?.data_dir.join("cluster-id");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(text.trim().to_string())
    }

    /// The dev certificate directory (CA, node and client certificates).
    pub fn certs_dir(&self) -> &Path {
        &self.certs.dir
    }

    /// The client certificates.
    pub fn certs(&self) -> &ClientCerts {
        &self.certs
    }

    /// Drops the cached client channels, so that the next [`Cluster::client`] call reads
    /// the CA and client certificate files again: for a test that replaced them (a
    /// certificate or CA rotation). Channels handed out earlier keep what they loaded.
    pub fn reload_client_certs(&self) {
        self.channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Every node id, started or not.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// Ids of the nodes whose process runs (paused ones included).
    pub fn running_ids(&self) -> Vec<u64> {
        self.nodes
            .values()
            .filter(|n| n.process().is_running())
            .map(|n| n.id)
            .collect()
    }

    /// Node `id`.
    pub fn node(&self, id: u64) -> Result<&NodeSlot> {
        self.nodes
            .get(&id)
            .ok_or_else(|| anyhow::anyhow!("no node {id} in this cluster"))
    }

    /// Client API addresses of every node.
    pub fn api_addrs(&self) -> Vec<String> {
        self.nodes.values().map(|n| n.api_addr.clone()).collect()
    }

    /// Clients of node `id` presenting `role`'s certificate. Channels are cached per node
    /// and role, and reconnect after a restart.
    pub fn client(&self, id: u64, role: ClientRole) -> Result<NodeClient> {
        let addr = self.node(id)?.api_addr.clone();
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        let key = (addr.clone(), role);
        let channel = match channels.get(&key) {
            Some(c) => c.clone(),
            None => {
                let c = client::channel(&addr, self.certs.tls(role)?)?;
                channels.insert(key, c.clone());
                c
            }
        };
        Ok(NodeClient::new(&addr, channel))
    }

    /// A [`Writer`] (writer certificate) that knows every node and gives each write
    /// `budget` to succeed.
    pub fn writer(&self, name: &str, budget: Duration) -> Result<Writer> {
        Ok(Writer::new(
            name,
            self.certs.tls(ClientRole::Writer)?,
            self.api_addrs(),
            budget,
        ))
    }

    /// Puts `count` concepts `<prefix><writer>-<i>` through `parallel` concurrent writers
    /// (so the leader's group commit batches their fsyncs), recording them in `history`.
    /// Every write must be acknowledged; returns the highest version acknowledged.
    pub async fn write_many(
        &self,
        history: &Arc<History>,
        prefix: &str,
        count: usize,
        parallel: usize,
    ) -> Result<u64> {
        let parallel = parallel.max(1);
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..parallel {
            let mut writer = self
                .writer(&format!("{prefix}{w}"), Duration::from_secs(10))?
                .with_history(history.clone());
            let ids: Vec<String> = (w..count)
                .step_by(parallel)
                .map(|i| format!("{prefix}{w}-{i:05}"))
                .collect();
            tasks.spawn(async move {
                let mut max = 0;
                for id in ids {
                    let content = format!("value of {id}");
                    let r = writer.put(&id, content.as_bytes()).await.into_ok()?;
                    max = max.max(r.version);
                }
                anyhow::Ok(max)
            });
        }
        let mut max = 0;
        while let Some(r) = tasks.join_next().await {
            max = max.max(r.context("writer task")??);
        }
        Ok(max)
    }

    /// Marks the test as having reached its end: the nodes are killed and the directory
    /// removed without printing logs.
    pub fn finish(mut self) {
        self.finished = true;
    }

    fn print_logs(&self) {
        eprintln!(
            "===== test cluster in {} did not finish; node logs follow",
            self.root.display()
        );
        for node in self.nodes.values() {
            let p = node.process();
            eprintln!(
                "----- node {} (api {}, raft {}), {} starts, log {} (last 80 lines):\n{}",
                node.id,
                node.api_addr,
                node.raft_addr,
                p.starts(),
                p.log_path().display(),
                p.log_tail(80)
            );
        }
        for (&(from, to), p) in &self.proxies {
            eprintln!("----- link {from}->{to}: {:?}, {:?}", p.faults(), p.stats());
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Kill every node first, so the logs are complete and nothing outlives the test.
        for node in self.nodes.values() {
            let mut p = node.process();
            if p.is_running() {
                let _ = p.kill();
            }
        }
        for &id in self.opts.tmpfs_bytes.keys() {
            if let Some(node) = self.nodes.get(&id) {
                let _ = std::process::Command::new("umount")
                    .arg(&node.data_dir)
                    .status();
            }
        }
        if !self.finished {
            self.print_logs();
            if std::env::var_os("SUTRA_TEST_KEEP_DIR").is_some()
                && let Some(dir) = self.dir.take()
            {
                eprintln!("===== keeping {}", dir.keep().display());
            }
        }
    }
}

/// `n` distinct free loopback ports: each is bound (all at once, so they differ), read
/// and released. Another process may take one before the node binds it; [`Cluster::start`]
/// then starts again.
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .context("binding 127.0.0.1:0 to pick a port")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let ports = super::free_ports(8).unwrap();
        let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), 8, "{ports:?}");
        assert!(ports.iter().all(|&p| p != 0));
        let _l = std::net::TcpListener::bind(("127.0.0.1", ports[0])).unwrap();
    }
}
