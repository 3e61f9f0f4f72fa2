//! `sutra-node local`: a three-node TLS cluster on loopback for development.
//!
//! Everything lives under one directory (default `.sutra/local`): the dev CA and
//! certificates (`certs/`), each node's data (`node-N/`) and log (`node-N.log`), and
//! `cluster.json` with the endpoints, the CA and the admin client certificate. Ports are
//! chosen on the first start and kept, so data and membership survive restarts.
//!
//! - `run`: start the nodes, print the endpoints, stop them cleanly on Ctrl-C.
//! - `start` / `stop` / `status`: the same, detached, for scripts.
//!
//! With `--link-proxies`, a third kind of process sits between the nodes: `sutra-node
//! local proxies` ([`crate::local_proxies`]) hosts a TCP proxy on every directed peer link
//! and a control socket through which a drill isolates and heals nodes. Its ports are
//! kept in `cluster.json` like the nodes', and once a cluster has link proxies it keeps
//! them: every later `start` (a drill's restart of a node included) launches nodes that
//! dial their peers through them, and starts the proxy process again on the same ports if
//! it is gone.

use std::fs::{self, File};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use sutra_certs::Role;
use sutra_proto::storage::HealthCheckRequest;
use sutra_proto::storage::storage_service_client::StorageServiceClient;

use crate::local_proxies::{self, LinkProxies, ProxyLink, Request};

/// Arguments of `sutra-node local`.
#[derive(Debug, clap::Args)]
pub struct LocalArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
    /// Directory holding certificates, data, logs and `cluster.json`.
    #[arg(
        long,
        global = true,
        default_value = ".sutra/local",
        env = "SUTRA_LOCAL_DIR"
    )]
    pub dir: PathBuf,
    /// Client API port of node 1 on first start (node N gets base+N-1, its Raft port
    /// base+100+N-1). Default: free ports chosen by the OS.
    #[arg(long, global = true, env = "SUTRA_LOCAL_BASE_PORT")]
    pub base_port: Option<u16>,
    /// With `start` or `run`: put a TCP proxy on every peer link, hosted by one more
    /// process, so that `sutra drill --scenario partition-leader` can cut a node off. The
    /// proxies are recorded in `cluster.json` and kept from then on; a cluster whose
    /// nodes run without them must be stopped first. With `--base-port B` the proxies
    /// listen on B+200 onwards.
    #[arg(long, global = true)]
    pub link_proxies: bool,
}

/// `local` actions.
#[derive(Debug, Clone, Copy, clap::Subcommand)]
pub enum Action {
    /// Start the cluster in the foreground; Ctrl-C stops it.
    Run,
    /// Start the cluster in the background and return once it is healthy.
    Start,
    /// Stop a cluster started with `start`.
    Stop,
    /// Health of every node, as JSON.
    Status,
    /// Serve the link proxies recorded in `cluster.json` (started by `start` and `run`).
    #[command(hide = true)]
    Proxies,
}

const NODES: u64 = 3;
const READY_WAIT: Duration = Duration::from_secs(60);
const STOP_WAIT: Duration = Duration::from_secs(30);
/// Longest the proxy process may take to answer on its control socket after it starts.
const PROXIES_READY_WAIT: Duration = Duration::from_secs(10);

/// What `cluster.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterFile {
    /// The CA certificate clients must trust.
    pub ca: PathBuf,
    /// Admin client certificate and key.
    pub admin_cert: PathBuf,
    /// Admin client key.
    pub admin_key: PathBuf,
    /// The nodes.
    pub nodes: Vec<LocalNode>,
    /// The proxies on the peer links, if the cluster was started with `--link-proxies`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_proxies: Option<LinkProxies>,
}

/// One node of the local cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalNode {
    /// Node id.
    pub id: u64,
    /// Client API endpoint.
    pub api: String,
    /// Raft endpoint.
    pub raft: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Log file.
    pub log: PathBuf,
    /// Process id while running detached.
    pub pid: Option<u32>,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn cluster_path(dir: &Path) -> PathBuf {
    dir.join("cluster.json")
}

fn load(dir: &Path) -> anyhow::Result<Option<ClusterFile>> {
    let path = cluster_path(dir);
    match fs::read(&path) {
        Ok(b) => Ok(Some(
            serde_json::from_slice(&b).with_context(|| format!("reading {}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn save(dir: &Path, c: &ClusterFile) -> anyhow::Result<()> {
    let path = cluster_path(dir);
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, serde_json::to_vec_pretty(c)?)?;
    fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
}

/// Creates certificates and the cluster file on first use; reuses them afterwards.
fn prepare(dir: &Path, base_port: Option<u16>) -> anyhow::Result<ClusterFile> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = fs::canonicalize(dir)?;
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
    if let Some(existing) = load(&dir)? {
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
    save(&dir, &c)?;
    Ok(c)
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

/// This `sutra-node` binary as a child process with its output appended to `log`, in a
/// process group of its own (Ctrl-C reaches the runner, which stops the children in
/// order). In the foreground, the child also gets SIGTERM if the runner dies without
/// stopping it (killed, or its output pipe closed).
fn self_command(log: &Path, foreground: bool) -> anyhow::Result<Command> {
    let log = File::options().create(true).append(true).open(log)?;
    let exe = std::env::current_exe().context("locating sutra-node")?;
    let mut cmd = Command::new(exe);
    if foreground {
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
    }
    cmd.stdout(log.try_clone()?).stderr(log).process_group(0);
    Ok(cmd)
}

/// Starts `sutra-node local proxies --dir <dir>`.
fn spawn_proxies(dir: &Path, lp: &LinkProxies, foreground: bool) -> anyhow::Result<Child> {
    self_command(&lp.log, foreground)?
        .args(["local", "proxies", "--dir"])
        .arg(dir)
        .env_remove("SUTRA_LOCAL_BASE_PORT")
        .spawn()
        .context("starting the link proxies")
}

/// Waits until the proxy process `child` answers on its control socket; fails at once if
/// it exits (a port taken, say).
async fn wait_proxies_ready(lp: &LinkProxies, child: &mut Child) -> anyhow::Result<()> {
    let deadline = Instant::now() + PROXIES_READY_WAIT;
    let mut interval = tokio::time::interval(Duration::from_millis(20));
    loop {
        interval.tick().await;
        let last = match local_proxies::control(&lp.control, Request::Status).await {
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
                "the link proxies did not answer within {PROXIES_READY_WAIT:?} ({last:#}); see {}",
                lp.log.display()
            );
        }
    }
}

/// Runs `sutra-node local proxies`: the proxies of the cluster in `dir`, until SIGTERM.
async fn serve_proxies(dir: &Path) -> anyhow::Result<()> {
    let Some(c) = load(dir)? else {
        bail!("no cluster in {}", dir.display())
    };
    let Some(lp) = &c.link_proxies else {
        bail!(
            "the cluster in {} has no link proxies (start it with --link-proxies)",
            dir.display()
        )
    };
    let raft = c.nodes.iter().map(|n| (n.id, n.raft.clone())).collect();
    local_proxies::serve(lp, &raft).await
}

fn spawn(c: &ClusterFile, n: &LocalNode, foreground: bool) -> anyhow::Result<Child> {
    let certs = c.ca.parent().context("CA path has no directory")?;
    let node_certs = sutra_certs::CertPaths::node(certs, n.id);
    let members: Vec<String> = c
        .nodes
        .iter()
        .map(|m| format!("{}={}/{}", m.id, m.raft, m.api))
        .collect();
    // Through the link proxies, if any: node i dials node j at the proxy of i→j.
    let peer_dial: Vec<String> = c
        .link_proxies
        .iter()
        .flat_map(|lp| &lp.links)
        .filter(|l| l.from == n.id)
        .flat_map(|l| ["--peer-dial".to_string(), format!("{}={}", l.to, l.addr)])
        .collect();
    let child = self_command(&n.log, foreground)?
        .arg("run")
        .args(["--node-id", &n.id.to_string()])
        .arg("--data-dir")
        .arg(&n.data_dir)
        .args(["--api-listen", &n.api, "--raft-listen", &n.raft])
        .args(["--initial-members", &members.join(",")])
        .arg("--tls-ca")
        .arg(&c.ca)
        .arg("--tls-cert")
        .arg(&node_certs.cert)
        .arg("--tls-key")
        .arg(&node_certs.key)
        .args(&peer_dial)
        .env_remove("SUTRA_CONFIG")
        .env_remove("SUTRA_PEER_DIAL")
        .spawn()
        .with_context(|| format!("starting node {}", n.id))?;
    Ok(child)
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
    println!("  endpoints:   {}", cluster_path(dir).display());
}

fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let exists = unsafe { libc::kill(pid as libc::pid_t, 0) == 0 };
    // A killed detached node is a zombie until its new parent reaps it, which can take
    // seconds; it must count as stopped so that `start` brings it back meanwhile.
    exists && !zombie(pid)
}

/// Whether `pid` has exited and waits to be reaped (state `Z` in `/proc/<pid>/stat`).
fn zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // The state follows the command name, which is in parentheses and may
            // itself contain spaces and parentheses.
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace().next().map(|state| state == "Z")
        })
        .unwrap_or(false)
}

/// Indexes of the nodes `start` must launch: those without a live process. Empty if
/// every node runs.
fn stopped_nodes(c: &ClusterFile, alive: impl Fn(u32) -> bool) -> Vec<usize> {
    (0..c.nodes.len())
        .filter(|&i| !c.nodes[i].pid.is_some_and(&alive))
        .collect()
}

fn terminate(pid: u32) {
    // SAFETY: sends SIGTERM to a process this runner started.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
}

/// Runs `sutra-node local`.
pub fn run(args: LocalArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args.action {
        Action::Run => {
            let mut c = prepare(&args.dir, args.base_port)?;
            let dir = fs::canonicalize(&args.dir)?;
            let proxies_alive = c
                .link_proxies
                .as_ref()
                .and_then(|lp| lp.pid)
                .is_some_and(alive);
            if proxies_alive || c.nodes.iter().filter_map(|n| n.pid).any(alive) {
                bail!(
                    "a detached cluster is running in {}; `sutra-node local stop` it first",
                    args.dir.display()
                );
            }
            if args.link_proxies && c.link_proxies.is_none() {
                c.link_proxies = Some(new_link_proxies(&dir, &c, args.base_port)?);
                save(&dir, &c)?;
            }
            // The proxies go first (nodes dial through them) and stop last (a stopping
            // leader hands over through them).
            let mut proxies = match &c.link_proxies {
                Some(lp) => {
                    let mut child = spawn_proxies(&dir, lp, true)?;
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
                .map(|n| spawn(&c, n, true))
                .collect::<anyhow::Result<_>>()?;
            let ready = rt.block_on(wait_healthy(&c));
            if let Err(e) = ready {
                stop_children(&mut children);
                stop_children(&mut proxies);
                return Err(e);
            }
            print_endpoints(&c, &args.dir);
            println!("Ctrl-C stops the cluster.");
            rt.block_on(async {
                let mut interval = tokio::time::interval(Duration::from_millis(500));
                loop {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => break,
                        _ = interval.tick() => {
                            if let Some((i, status)) = children.iter_mut().enumerate().find_map(|(i, ch)| ch.try_wait().ok().flatten().map(|s| (i, s))) {
                                eprintln!("node {} exited ({status}); stopping the cluster", c.nodes[i].id);
                                break;
                            }
                            if let Some(status) = proxies.iter_mut().find_map(|ch| ch.try_wait().ok().flatten()) {
                                eprintln!("the link proxies exited ({status}); stopping the cluster");
                                break;
                            }
                        }
                    }
                }
            });
            println!("stopping...");
            stop_children(&mut children);
            stop_children(&mut proxies);
            println!("stopped; data kept in {}", args.dir.display());
            Ok(())
        }
        Action::Start => {
            let mut c = prepare(&args.dir, args.base_port)?;
            let dir = fs::canonicalize(&args.dir)?;
            if args.link_proxies && c.link_proxies.is_none() {
                if c.nodes.iter().filter_map(|n| n.pid).any(alive) {
                    bail!(
                        "the nodes in {} run without link proxies; `sutra-node local stop` them first, then start with --link-proxies",
                        args.dir.display()
                    );
                }
                c.link_proxies = Some(new_link_proxies(&dir, &c, args.base_port)?);
                save(&dir, &c)?;
            }
            // The proxy process comes back (same ports) before any node that would dial
            // through it.
            let mut proxies_restarted = false;
            if let Some(lp) = c.link_proxies.as_mut()
                && !lp.pid.is_some_and(alive)
            {
                let mut child = spawn_proxies(&dir, lp, false)?;
                lp.pid = Some(child.id());
                let lp = lp.clone();
                save(&dir, &c)?;
                rt.block_on(wait_proxies_ready(&lp, &mut child))?;
                proxies_restarted = true;
            }
            // Nodes that stopped (killed, crashed) start again on their ports and data
            // while the others keep running: this is how a drill restarts a node.
            let stopped = stopped_nodes(&c, alive);
            if stopped.is_empty() {
                if proxies_restarted {
                    println!("restarted the link proxies; the nodes were running");
                    return Ok(());
                }
                bail!("already running; `sutra-node local status` shows it");
            }
            let partial = stopped.len() < c.nodes.len();
            for &i in &stopped {
                let child = spawn(&c, &c.nodes[i], false)?;
                c.nodes[i].pid = Some(child.id());
            }
            save(&dir, &c)?;
            rt.block_on(wait_healthy(&c))?;
            if partial {
                let ids: Vec<String> = stopped.iter().map(|&i| c.nodes[i].id.to_string()).collect();
                println!(
                    "restarted node(s) {}; the others were running",
                    ids.join(",")
                );
            }
            print_endpoints(&c, &args.dir);
            Ok(())
        }
        Action::Stop => {
            let Some(mut c) = load(&args.dir)? else {
                bail!("no cluster in {}", args.dir.display())
            };
            let pids: Vec<u32> = c
                .nodes
                .iter()
                .filter_map(|n| n.pid)
                .filter(|p| alive(*p))
                .collect();
            // The nodes first: a leader stopping gracefully hands over through the links.
            stop_pids(&rt, &pids)?;
            let proxies: Vec<u32> = c
                .link_proxies
                .iter()
                .filter_map(|lp| lp.pid)
                .filter(|p| alive(*p))
                .collect();
            stop_pids(&rt, &proxies)?;
            c.nodes.iter_mut().for_each(|n| n.pid = None);
            if let Some(lp) = c.link_proxies.as_mut() {
                lp.pid = None;
            }
            save(&fs::canonicalize(&args.dir)?, &c)?;
            if proxies.is_empty() {
                println!("stopped {} nodes", pids.len());
            } else {
                println!("stopped {} nodes and the link proxies", pids.len());
            }
            Ok(())
        }
        Action::Status => {
            let Some(c) = load(&args.dir)? else {
                bail!("no cluster in {}", args.dir.display())
            };
            let (report, proxies): (Vec<serde_json::Value>, Option<serde_json::Value>) = rt.block_on(async {
                let mut out = Vec::new();
                for n in &c.nodes {
                    let h = health(&c, n).await;
                    out.push(serde_json::json!({
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
                let proxies = match &c.link_proxies {
                    Some(lp) => Some(serde_json::json!({
                        "pid": lp.pid.filter(|p| alive(*p)),
                        "control": lp.control,
                        "links": lp.links.len(),
                        "status": local_proxies::control(&lp.control, Request::Status)
                            .await
                            .unwrap_or_else(|e| format!("unreachable: {e:#}")),
                    })),
                    None => None,
                };
                (out, proxies)
            });
            let mut status = serde_json::json!({ "ca": c.ca, "nodes": report });
            if let Some(p) = proxies {
                status["link_proxies"] = p;
            }
            println!("{}", serde_json::to_string_pretty(&status)?);
            Ok(())
        }
        Action::Proxies => rt.block_on(serve_proxies(&fs::canonicalize(&args.dir)?)),
    }
}

/// Sends SIGTERM to `pids` and waits until they are gone.
fn stop_pids(rt: &tokio::runtime::Runtime, pids: &[u32]) -> anyhow::Result<()> {
    pids.iter().copied().for_each(terminate);
    let deadline = Instant::now() + STOP_WAIT;
    rt.block_on(async {
        let mut interval = tokio::time::interval(Duration::from_millis(100));
        while pids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
            interval.tick().await;
        }
    });
    if let Some(p) = pids.iter().find(|p| alive(**p)) {
        bail!("process {p} did not stop within {STOP_WAIT:?}");
    }
    Ok(())
}

fn stop_children(children: &mut [Child]) {
    for ch in children.iter() {
        terminate(ch.id());
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
    fn a_killed_child_not_yet_reaped_is_not_alive() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        assert!(alive(pid));
        // SAFETY: kills the child this test started.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !zombie(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(zombie(pid), "the unreaped child is a zombie");
        assert!(!alive(pid));
        child.wait().unwrap();
        assert!(!alive(pid));
    }
}
