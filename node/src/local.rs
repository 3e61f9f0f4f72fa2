//! `sutra-node local`: a three-node TLS cluster on loopback for development.
//!
//! Everything lives under one directory (default `.sutra/local`): the dev CA and
//! certificates (`certs/`), each node's data (`node-N/`) and log (`node-N.log`), and
//! `cluster.json` with the endpoints, the CA and the admin client certificate. Ports are
//! chosen on the first start and kept, so data and membership survive restarts.
//!
//! - `run`: start the nodes, print the endpoints, stop them cleanly on Ctrl-C.
//! - `start` / `stop` / `status`: the same, detached, for scripts.

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
}

const NODES: u64 = 3;
const READY_WAIT: Duration = Duration::from_secs(60);
const STOP_WAIT: Duration = Duration::from_secs(30);

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
    };
    save(&dir, &c)?;
    Ok(c)
}

fn spawn(c: &ClusterFile, n: &LocalNode, foreground: bool) -> anyhow::Result<Child> {
    let certs = c.ca.parent().context("CA path has no directory")?;
    let node_certs = sutra_certs::CertPaths::node(certs, n.id);
    let members: Vec<String> = c
        .nodes
        .iter()
        .map(|m| format!("{}={}/{}", m.id, m.raft, m.api))
        .collect();
    let log = File::options().create(true).append(true).open(&n.log)?;
    let exe = std::env::current_exe().context("locating sutra-node")?;
    let mut cmd = Command::new(exe);
    if foreground {
        // SAFETY: prctl is async-signal-safe; it only marks the child to get SIGTERM if
        // the runner dies without stopping it (e.g. killed, or its output pipe closed).
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
    }
    let child = cmd
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
        .env_remove("SUTRA_CONFIG")
        .stdout(log.try_clone()?)
        .stderr(log)
        // Own process group: Ctrl-C reaches the runner, which stops the nodes in order.
        .process_group(0)
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
            let c = prepare(&args.dir, args.base_port)?;
            if c.nodes.iter().filter_map(|n| n.pid).any(alive) {
                bail!(
                    "a detached cluster is running in {}; `sutra-node local stop` it first",
                    args.dir.display()
                );
            }
            let mut children: Vec<Child> = c
                .nodes
                .iter()
                .map(|n| spawn(&c, n, true))
                .collect::<anyhow::Result<_>>()?;
            let ready = rt.block_on(wait_healthy(&c));
            if let Err(e) = ready {
                stop_children(&mut children);
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
                        }
                    }
                }
            });
            println!("stopping...");
            stop_children(&mut children);
            println!("stopped; data kept in {}", args.dir.display());
            Ok(())
        }
        Action::Start => {
            let mut c = prepare(&args.dir, args.base_port)?;
            // Nodes that stopped (killed, crashed) start again on their ports and data
            // while the others keep running: this is how a drill restarts a node.
            let stopped = stopped_nodes(&c, alive);
            if stopped.is_empty() {
                bail!("already running; `sutra-node local status` shows it");
            }
            let partial = stopped.len() < c.nodes.len();
            for &i in &stopped {
                let child = spawn(&c, &c.nodes[i], false)?;
                c.nodes[i].pid = Some(child.id());
            }
            save(&fs::canonicalize(&args.dir)?, &c)?;
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
            c.nodes.iter_mut().for_each(|n| n.pid = None);
            save(&fs::canonicalize(&args.dir)?, &c)?;
            println!("stopped {} nodes", pids.len());
            Ok(())
        }
        Action::Status => {
            let Some(c) = load(&args.dir)? else {
                bail!("no cluster in {}", args.dir.display())
            };
            let report: Vec<serde_json::Value> = rt.block_on(async {
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
                out
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "ca": c.ca, "nodes": report }))?
            );
            Ok(())
        }
    }
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
