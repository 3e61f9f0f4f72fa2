//! The local runner: a three-node TLS cluster on loopback for development, behind
//! `sutra local run|start|stop|status`.
//!
//! Everything lives under one directory (default `.sutra/local`): the dev CA and
//! certificates (`certs/`), each node's data (`node-N/`) and log (`node-N.log`), and
//! `cluster.json` ([`ClusterFile`]) with the endpoints, the CA and the admin client
//! certificate. Ports are chosen on the first start and kept, so data and membership
//! survive restarts.
//!
//! - [`run`]: start the nodes, print the endpoints, stop them cleanly on Ctrl-C.
//! - [`start`] / [`stop`] / [`status`]: the same, detached, for scripts.
//!
//! With link proxies, a third kind of process sits between the nodes: `sutra local
//! proxies` ([`crate::proxies`]) hosts a TCP proxy on every directed peer link and a
//! control socket through which a drill isolates and heals nodes. Its ports are kept in
//! `cluster.json` like the nodes', and once a cluster has link proxies it keeps them:
//! every later [`start`] (a drill's restart of a node included) launches nodes that dial
//! their peers through them, and starts the proxy process again on the same ports if it
//! is gone.

use std::fs::{self, File};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sutra_certs::Role;
use sutra_proto::storage::HealthCheckRequest;
use sutra_proto::storage::storage_service_client::StorageServiceClient;

use crate::cluster_file::{ClusterFile, LinkProxies, LocalNode, ProxyLink};
use crate::control::{self, Request};
use crate::process::{self, Signal, alive};

const NODES: u64 = 3;
const READY_WAIT: Duration = Duration::from_secs(60);
const STOP_WAIT: Duration = Duration::from_secs(30);
/// Longest the proxy process may take to answer on its control socket after it starts.
const PROXIES_READY_WAIT: Duration = Duration::from_secs(10);

/// Where and how the local cluster runs.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Directory holding certificates, data, logs and `cluster.json`.
    pub dir: PathBuf,
    /// Client API port of node 1 on first start (node N gets base+N-1, its Raft port
    /// base+100+N-1, link proxies base+200 onwards). `None`: free ports chosen by the OS.
    pub base_port: Option<u16>,
    /// Put a TCP proxy on every peer link (kept from then on).
    pub link_proxies: bool,
    /// Give every node a monitoring listener on a free port, when the cluster is made
    /// (kept from then on).
    pub metrics: bool,
}

/// The programs the runner starts.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `sutra-node`, for the nodes.
    pub node: PathBuf,
    /// `sutra`, whose `local proxies` hosts the link proxies (needed only with them).
    pub cli: Option<PathBuf>,
}

impl Binaries {
    /// `sutra-node` and `sutra` where [`process::find_binary`] finds them.
    pub fn find() -> anyhow::Result<Self> {
        Ok(Self {
            node: process::node_binary()?,
            cli: Some(process::cli_binary()?),
        })
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn load(dir: &Path) -> anyhow::Result<ClusterFile> {
    ClusterFile::load(dir)?.with_context(|| format!("no cluster in {}", dir.display()))
}

/// Creates certificates and the cluster file on first use; reuses them afterwards.
fn prepare(dir: &Path, base_port: Option<u16>, metrics: bool) -> anyhow::Result<ClusterFile> {
    let certs = dir.join("certs");
    let ids: Vec<u64> = (1..=NODES).collect();
    let set = sutra_certs::generate_dev_set(
        &certs,
        &ids,
        &[],
        &[
            ("admin", Role::Admin),
            ("writer", Role::Write),
            ("reader", Role::Read),
        ],
        false,
    )?;
    if let Some(existing) = ClusterFile::load(dir)? {
        return Ok(existing);
    }
    let mut nodes = Vec::new();
    for id in ids {
        let (api, raft) = match base_port {
            Some(b) => (b + id as u16 - 1, b + 100 + id as u16 - 1),
            None => (free_port()?, free_port()?),
        };
        nodes.push(LocalNode {
            id,
            api: format!("127.0.0.1:{api}"),
            raft: format!("127.0.0.1:{raft}"),
            data_dir: dir.join(format!("node-{id}")),
            log: dir.join(format!("node-{id}.log")),
            pid: None,
            metrics: if metrics {
                Some(format!("127.0.0.1:{}", free_port()?))
            } else {
                None
            },
        });
    }
    let admin = &set.clients["admin"];
    let c = ClusterFile {
        ca: set.ca.cert.clone(),
        admin_cert: admin.cert.clone(),
        admin_key: admin.key.clone(),
        nodes,
        link_proxies: None,
    };
    c.save(dir)?;
    Ok(c)
}

/// The cluster directory, created and made absolute (the nodes and the proxy process run
/// elsewhere).
fn cluster_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(fs::canonicalize(dir)?)
}

/// Chooses the ports of a proxy on every directed link of `c`: free ones, or from
/// `base_port + 200` on.
fn new_link_proxies(
    dir: &Path,
    c: &ClusterFile,
    base_port: Option<u16>,
) -> anyhow::Result<LinkProxies> {
    let mut links = Vec::new();
    for from in &c.nodes {
        for to in c.nodes.iter().filter(|n| n.id != from.id) {
            let port = match base_port {
                Some(b) => b + 200 + links.len() as u16,
                None => free_port()?,
            };
            links.push(ProxyLink {
                from: from.id,
                to: to.id,
                addr: format!("127.0.0.1:{port}"),
            });
        }
    }
    Ok(LinkProxies {
        pid: None,
        control: dir.join("proxies.sock"),
        log: dir.join("proxies.log"),
        links,
    })
}

/// `bin` as a child process with its output appended to `log`, in a process group of its
/// own (Ctrl-C reaches the runner, which stops the children in order). In the
/// foreground, the child also gets SIGTERM if the runner dies without stopping it
/// (killed, or its output pipe closed).
fn child_command(bin: &Path, log: &Path, foreground: bool) -> anyhow::Result<Command> {
    let log = File::options().create(true).append(true).open(log)?;
    let mut cmd = Command::new(bin);
    if foreground {
        process::die_with_parent(&mut cmd, Signal::Term);
    }
    cmd.stdout(log.try_clone()?).stderr(log).process_group(0);
    Ok(cmd)
}

/// Starts `sutra local proxies --dir <dir>`.
fn spawn_proxies(
    bins: &Binaries,
    dir: &Path,
    lp: &LinkProxies,
    foreground: bool,
) -> anyhow::Result<Child> {
    let cli = bins
        .cli
        .as_deref()
        .context("link proxies run in the sutra binary, and none was given")?;
    child_command(cli, &lp.log, foreground)?
        .args(["local", "proxies", "--dir"])
        .arg(dir)
        .env_remove("SUTRA_LOCAL_BASE_PORT")
        .spawn()
        .with_context(|| format!("starting the link proxies ({})", cli.display()))
}

/// Waits until the proxy process `child` answers on its control socket; fails at once if
/// it exits (a port taken, say).
async fn wait_proxies_ready(lp: &LinkProxies, child: &mut Child) -> anyhow::Result<()> {
    let deadline = Instant::now() + PROXIES_READY_WAIT;
    let mut interval = tokio::time::interval(Duration::from_millis(20));
    loop {
        interval.tick().await;
        let last = match control::request(&lp.control, Request::Status).await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        if let Some(status) = child.try_wait()? {
            bail!(
                "the link proxy process exited ({status}); see {}",
                lp.log.display()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the link proxies did not answer within {PROXIES_READY_WAIT:?} ({last}); see {}",
                lp.log.display()
            );
        }
    }
}

/// Serves the link proxies of the cluster in `dir` until SIGTERM (`sutra local proxies`,
/// started by [`run`] and [`start`]).
pub fn serve_proxies(dir: &Path) -> anyhow::Result<()> {
    let dir = fs::canonicalize(dir)?;
    let c = load(&dir)?;
    let Some(lp) = &c.link_proxies else {
        bail!(
            "the cluster in {} has no link proxies (start it with --link-proxies)",
            dir.display()
        )
    };
    let raft = c.nodes.iter().map(|n| (n.id, n.raft.clone())).collect();
    runtime()?.block_on(crate::proxies::serve(lp, &raft))
}

fn spawn_node(
    bins: &Binaries,
    c: &ClusterFile,
    n: &LocalNode,
    foreground: bool,
) -> anyhow::Result<Child> {
    let certs = c.ca.parent().context("CA path has no directory")?;
    let node_certs = sutra_certs::CertPaths::node(certs, n.id);
    // Through the link proxies, if any: node i dials node j at the proxy of i→j.
    let peer_dial: Vec<String> = c
        .link_proxies
        .iter()
        .flat_map(|lp| &lp.links)
        .filter(|l| l.from == n.id)
        .flat_map(|l| ["--peer-dial".to_string(), format!("{}={}", l.to, l.addr)])
        .collect();
    let child = child_command(&bins.node, &n.log, foreground)?
        .arg("run")
        .args(["--node-id", &n.id.to_string()])
        .arg("--data-dir")
        .arg(&n.data_dir)
        .args(["--api-listen", &n.api, "--raft-listen", &n.raft])
        .args(["--initial-members", &initial_members(c)])
        .arg("--tls-ca")
        .arg(&c.ca)
        .arg("--tls-cert")
        .arg(&node_certs.cert)
        .arg("--tls-key")
        .arg(&node_certs.key)
        .args(&peer_dial)
        .args(
            n.metrics
                .iter()
                .flat_map(|m| ["--metrics-listen", m.as_str()]),
        )
        .env_remove("SUTRA_CONFIG")
        .env_remove("SUTRA_PEER_DIAL")
        .spawn()
        .with_context(|| format!("starting node {} ({})", n.id, bins.node.display()))?;
    Ok(child)
}

/// `--initial-members` of the nodes of `c`: `ID=RAFT/API,...`.
fn initial_members(c: &ClusterFile) -> String {
    c.nodes
        .iter()
        .map(|m| format!("{}={}/{}", m.id, m.raft, m.api))
        .collect::<Vec<_>>()
        .join(",")
}

/// Restores a new cluster with the node ids of `source` from `backup` into `dir`
/// (`sutra-node restore` for each member, on free loopback ports) and starts its nodes
/// detached with the certificates of `source` (the same CA); returns its cluster file
/// (also saved in `dir`) with their process ids, without waiting for a leader. Stop it
/// with [`stop_quietly`].
pub fn restore_scratch(
    bins: &Binaries,
    source: &ClusterFile,
    backup: &Path,
    dir: &Path,
) -> anyhow::Result<ClusterFile> {
    let dir = cluster_dir(dir)?;
    // Bound all at once, so the ports differ.
    let listeners = (0..2 * source.nodes.len())
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ports = Vec::new();
    for l in &listeners {
        ports.push(l.local_addr()?.port());
    }
    drop(listeners);
    let nodes = source
        .nodes
        .iter()
        .zip(ports.chunks(2))
        .map(|(n, p)| LocalNode {
            id: n.id,
            api: format!("127.0.0.1:{}", p[0]),
            raft: format!("127.0.0.1:{}", p[1]),
            data_dir: dir.join(format!("node-{}", n.id)),
            log: dir.join(format!("node-{}.log", n.id)),
            pid: None,
            metrics: None,
        })
        .collect();
    let mut c = ClusterFile {
        ca: source.ca.clone(),
        admin_cert: source.admin_cert.clone(),
        admin_key: source.admin_key.clone(),
        nodes,
        link_proxies: None,
    };
    c.save(&dir)?;
    let members = initial_members(&c);
    for n in &c.nodes {
        let out = Command::new(&bins.node)
            .arg("restore")
            .arg("--backup")
            .arg(backup)
            .arg("--data-dir")
            .arg(&n.data_dir)
            .args([
                "--node-id",
                &n.id.to_string(),
                "--initial-members",
                &members,
            ])
            .env_remove("SUTRA_CONFIG")
            .output()
            .with_context(|| format!("running {} restore", bins.node.display()))?;
        fs::write(
            &n.log,
            [out.stdout.as_slice(), out.stderr.as_slice()].concat(),
        )?;
        if !out.status.success() {
            bail!(
                "sutra-node restore for node {}: {}: {}",
                n.id,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    // Each PID is recorded as soon as its node runs, so a failure part way leaves a
    // cluster file that stops what did start.
    for i in 0..c.nodes.len() {
        let child = spawn_node(bins, &c, &c.nodes[i], false)?;
        c.nodes[i].pid = Some(child.id());
        c.save(&dir)?;
    }
    Ok(c)
}

async fn health(
    c: &ClusterFile,
    n: &LocalNode,
) -> anyhow::Result<sutra_proto::storage::HealthCheckResponse> {
    let tls = sutra_certs::client_tls(&c.ca, &c.admin_cert, &c.admin_key, "localhost")?;
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{}", n.api))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(2))
        .connect()
        .await?;
    Ok(StorageServiceClient::new(channel)
        .health_check(HealthCheckRequest {})
        .await?
        .into_inner())
}

async fn wait_healthy(c: &ClusterFile) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_WAIT;
    let mut interval = tokio::time::interval(Duration::from_millis(200));
    loop {
        interval.tick().await;
        let mut healthy = 0;
        for n in &c.nodes {
            if health(c, n).await.is_ok_and(|h| h.healthy) {
                healthy += 1;
            }
        }
        if healthy == c.nodes.len() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the cluster did not become healthy within {READY_WAIT:?}; see the node logs");
        }
    }
}

fn print_endpoints(c: &ClusterFile, dir: &Path) {
    println!("Sutra local cluster ({} nodes, TLS)", c.nodes.len());
    for n in &c.nodes {
        println!(
            "  node {}: https://{}  (raft {}, log {})",
            n.id,
            n.api,
            n.raft,
            n.log.display()
        );
    }
    println!("  CA:          {}", c.ca.display());
    println!("  admin cert:  {}", c.admin_cert.display());
    println!("  admin key:   {}", c.admin_key.display());
    if let Some(lp) = &c.link_proxies {
        println!(
            "  link proxies: {} links, control {}  (log {})",
            lp.links.len(),
            lp.control.display(),
            lp.log.display()
        );
    }
    println!("  endpoints:   {}", ClusterFile::path_in(dir).display());
}

/// Indexes of the nodes `start` must launch: those without a live process. Empty if
/// every node runs.
fn stopped_nodes(c: &ClusterFile, alive: impl Fn(u32) -> bool) -> Vec<usize> {
    (0..c.nodes.len())
        .filter(|&i| !c.nodes[i].pid.is_some_and(&alive))
        .collect()
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Records link proxies in `c` if they are asked for and it has none yet (nothing of the
/// cluster may run then: running nodes do not dial through proxies).
fn add_link_proxies(opts: &LocalOptions, dir: &Path, c: &mut ClusterFile) -> anyhow::Result<()> {
    if !opts.link_proxies || c.link_proxies.is_some() {
        return Ok(());
    }
    if c.nodes.iter().filter_map(|n| n.pid).any(alive) {
        bail!(
            "the nodes in {} run without link proxies; `sutra local stop` them first, then start with --link-proxies",
            opts.dir.display()
        );
    }
    c.link_proxies = Some(new_link_proxies(dir, c, opts.base_port)?);
    c.save(dir)?;
    Ok(())
}

/// Runs the cluster in the foreground until Ctrl-C or until a process exits, then stops
/// it (`sutra local run`).
pub fn run(opts: &LocalOptions, bins: &Binaries) -> anyhow::Result<()> {
    let rt = runtime()?;
    let dir = cluster_dir(&opts.dir)?;
    let mut c = prepare(&dir, opts.base_port, opts.metrics)?;
    let proxies_alive = c
        .link_proxies
        .as_ref()
        .and_then(|lp| lp.pid)
        .is_some_and(alive);
    if proxies_alive || c.nodes.iter().filter_map(|n| n.pid).any(alive) {
        bail!(
            "a detached cluster is running in {}; `sutra local stop` it first",
            opts.dir.display()
        );
    }
    add_link_proxies(opts, &dir, &mut c)?;
    // The proxies go first (nodes dial through them) and stop last (a stopping leader
    // hands over through them).
    let mut proxies = match &c.link_proxies {
        Some(lp) => {
            let mut child = spawn_proxies(bins, &dir, lp, true)?;
            if let Err(e) = rt.block_on(wait_proxies_ready(lp, &mut child)) {
                stop_children(std::slice::from_mut(&mut child));
                return Err(e);
            }
            vec![child]
        }
        None => Vec::new(),
    };
    let mut children: Vec<Child> = c
        .nodes
        .iter()
        .map(|n| spawn_node(bins, &c, n, true))
        .collect::<anyhow::Result<_>>()?;
    if let Err(e) = rt.block_on(wait_healthy(&c)) {
        stop_children(&mut children);
        stop_children(&mut proxies);
        return Err(e);
    }
    print_endpoints(&c, &opts.dir);
    println!("Ctrl-C stops the cluster.");
    rt.block_on(until_interrupted_or_exit(&c, &mut children, &mut proxies));
    println!("stopping...");
    stop_children(&mut children);
    stop_children(&mut proxies);
    println!("stopped; data kept in {}", opts.dir.display());
    Ok(())
}

/// Returns on Ctrl-C, or as soon as a node or the proxy process exits (saying which).
async fn until_interrupted_or_exit(c: &ClusterFile, nodes: &mut [Child], proxies: &mut [Child]) {
    let mut interval = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = interval.tick() => {
                let exited = nodes
                    .iter_mut()
                    .enumerate()
                    .find_map(|(i, ch)| ch.try_wait().ok().flatten().map(|s| (i, s)));
                if let Some((i, status)) = exited {
                    eprintln!("node {} exited ({status}); stopping the cluster", c.nodes[i].id);
                    return;
                }
                if let Some(status) = proxies.iter_mut().find_map(|ch| ch.try_wait().ok().flatten()) {
                    eprintln!("the link proxies exited ({status}); stopping the cluster");
                    return;
                }
            }
        }
    }
}

/// Starts the cluster detached and returns once it is healthy (`sutra local start`).
/// Nodes that stopped (killed, crashed) start again on their ports and data while the
/// others keep running: this is how a drill restarts a node.
pub fn start(opts: &LocalOptions, bins: &Binaries) -> anyhow::Result<()> {
    let rt = runtime()?;
    let dir = cluster_dir(&opts.dir)?;
    let mut c = prepare(&dir, opts.base_port, opts.metrics)?;
    add_link_proxies(opts, &dir, &mut c)?;
    // The proxy process comes back (same ports) before any node that would dial through
    // it.
    let mut proxies_restarted = false;
    if let Some(lp) = c.link_proxies.as_mut()
        && !lp.pid.is_some_and(alive)
    {
        let mut child = spawn_proxies(bins, &dir, lp, false)?;
        lp.pid = Some(child.id());
        let lp = lp.clone();
        c.save(&dir)?;
        rt.block_on(wait_proxies_ready(&lp, &mut child))?;
        proxies_restarted = true;
    }
    let stopped = stopped_nodes(&c, alive);
    if stopped.is_empty() {
        if proxies_restarted {
            println!("restarted the link proxies; the nodes were running");
            return Ok(());
        }
        bail!("already running; `sutra local status` shows it");
    }
    let partial = stopped.len() < c.nodes.len();
    for &i in &stopped {
        let child = spawn_node(bins, &c, &c.nodes[i], false)?;
        c.nodes[i].pid = Some(child.id());
    }
    c.save(&dir)?;
    rt.block_on(wait_healthy(&c))?;
    if partial {
        let ids: Vec<String> = stopped.iter().map(|&i| c.nodes[i].id.to_string()).collect();
        println!(
            "restarted node(s) {}; the others were running",
            ids.join(",")
        );
    }
    print_endpoints(&c, &opts.dir);
    Ok(())
}

/// Stops a cluster started with [`start`]: the nodes first (a leader stopping gracefully
/// hands over through the links), then the proxy process (`sutra local stop`).
pub fn stop(dir: &Path) -> anyhow::Result<()> {
    let (nodes, proxies) = stop_quietly(dir)?;
    if proxies {
        println!("stopped {nodes} nodes and the link proxies");
    } else {
        println!("stopped {nodes} nodes");
    }
    Ok(())
}

/// [`stop`] without printing: stops the processes of the cluster in `dir` by the process
/// ids its cluster file records and waits until they are gone; how many nodes it
/// stopped and whether it stopped link proxies too.
pub fn stop_quietly(dir: &Path) -> anyhow::Result<(usize, bool)> {
    let dir = fs::canonicalize(dir).with_context(|| format!("no cluster in {}", dir.display()))?;
    let mut c = load(&dir)?;
    let pids: Vec<u32> = c
        .nodes
        .iter()
        .filter_map(|n| n.pid)
        .filter(|p| alive(*p))
        .collect();
    stop_pids(&pids)?;
    let proxies: Vec<u32> = c
        .link_proxies
        .iter()
        .filter_map(|lp| lp.pid)
        .filter(|p| alive(*p))
        .collect();
    stop_pids(&proxies)?;
    c.nodes.iter_mut().for_each(|n| n.pid = None);
    if let Some(lp) = c.link_proxies.as_mut() {
        lp.pid = None;
    }
    c.save(&dir)?;
    Ok((pids.len(), !proxies.is_empty()))
}

/// Health of every node of the cluster in `dir`, and of its link proxies, as JSON
/// (`sutra local status`).
pub fn status(dir: &Path) -> anyhow::Result<serde_json::Value> {
    let c = load(dir)?;
    runtime()?.block_on(async {
        let mut nodes = Vec::new();
        for n in &c.nodes {
            let h = health(&c, n).await;
            nodes.push(serde_json::json!({
                "id": n.id,
                "api": n.api,
                "raft": n.raft,
                "pid": n.pid.filter(|p| alive(*p)),
                "healthy": h.as_ref().is_ok_and(|h| h.healthy),
                "role": h.as_ref().map(|h| h.role.clone()).unwrap_or_else(|e| format!("unreachable: {e}")),
                "leader_id": h.as_ref().map(|h| h.leader_id).unwrap_or(0),
                "applied_index": h.as_ref().map(|h| h.applied_index).unwrap_or(0),
            }));
        }
        let mut status = serde_json::json!({ "ca": c.ca, "nodes": nodes });
        if let Some(lp) = &c.link_proxies {
            status["link_proxies"] = serde_json::json!({
                "pid": lp.pid.filter(|p| alive(*p)),
                "control": lp.control,
                "links": lp.links.len(),
                "status": control::request(&lp.control, Request::Status)
                    .await
                    .unwrap_or_else(|e| format!("unreachable: {e}")),
            });
        }
        Ok(status)
    })
}

/// Sends SIGTERM to `pids` and waits until they are gone.
fn stop_pids(pids: &[u32]) -> anyhow::Result<()> {
    for &pid in pids {
        // A process that is already gone needs no stopping.
        let _ = process::signal(pid, Signal::Term);
    }
    let deadline = Instant::now() + STOP_WAIT;
    while pids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Some(p) = pids.iter().find(|p| alive(**p)) {
        bail!("process {p} did not stop within {STOP_WAIT:?}");
    }
    Ok(())
}

fn stop_children(children: &mut [Child]) {
    for ch in children.iter() {
        let _ = process::signal(ch.id(), Signal::Term);
    }
    let deadline = Instant::now() + STOP_WAIT;
    for ch in children.iter_mut() {
        loop {
            match ch.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    let _ = ch.kill();
                    let _ = ch.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(pids: &[Option<u32>]) -> ClusterFile {
        ClusterFile {
            ca: "ca.pem".into(),
            admin_cert: "a.pem".into(),
            admin_key: "a-key.pem".into(),
            link_proxies: None,
            nodes: pids
                .iter()
                .enumerate()
                .map(|(i, &pid)| LocalNode {
                    id: i as u64 + 1,
                    api: format!("127.0.0.1:{}", 1000 + i),
                    raft: format!("127.0.0.1:{}", 2000 + i),
                    data_dir: format!("node-{}", i + 1).into(),
                    log: format!("node-{}.log", i + 1).into(),
                    pid,
                    metrics: None,
                })
                .collect(),
        }
    }

    #[test]
    fn start_launches_only_the_nodes_without_a_live_process() {
        let c = cluster(&[Some(10), None, Some(30)]);
        assert_eq!(stopped_nodes(&c, |p| p == 10 || p == 30), vec![1]);
        assert_eq!(stopped_nodes(&c, |p| p == 10), vec![1, 2]);
        assert_eq!(stopped_nodes(&c, |_| false), vec![0, 1, 2]);
        let all = cluster(&[Some(10), Some(20), Some(30)]);
        assert!(stopped_nodes(&all, |_| true).is_empty());
    }

    #[test]
    fn a_first_start_writes_certificates_and_keeps_its_ports() {
        let dir = tempfile::tempdir().unwrap();
        let dir = cluster_dir(dir.path()).unwrap();
        let c = prepare(&dir, Some(41000), false).unwrap();
        assert_eq!(
            c.endpoints(),
            ["127.0.0.1:41000", "127.0.0.1:41001", "127.0.0.1:41002"]
        );
        assert!(c.ca.is_file() && c.admin_cert.is_file() && c.admin_key.is_file());
        assert!(c.tls("writer").cert.is_file());
        // A second prepare keeps what the first recorded, whatever it is asked.
        assert_eq!(prepare(&dir, None, false).unwrap(), c);
        let mut with_proxies = c.clone();
        let opts = LocalOptions {
            dir: dir.clone(),
            base_port: Some(41000),
            link_proxies: true,
            metrics: false,
        };
        add_link_proxies(&opts, &dir, &mut with_proxies).unwrap();
        let lp = with_proxies.link_proxies.as_ref().unwrap();
        assert_eq!(lp.links.len(), 6);
        assert_eq!(lp.links[0].addr, "127.0.0.1:41200");
        assert_eq!(ClusterFile::load(&dir).unwrap(), Some(with_proxies));
    }
}
