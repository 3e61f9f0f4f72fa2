//! [`LocalProcessDriver`]: faults for the cluster `sutra-node local start` runs, by
//! signals to the PIDs its `cluster.json` records, and partitions through its link
//! proxies' control socket when it was started with `--link-proxies`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::TlsFiles;
use crate::drill::{DrillError, FaultDriver, Scenario};

/// How long a killed node may take to disappear.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// How long a node may take to stop after SIGTERM (handover and final checkpoint).
const STOP_WAIT: Duration = Duration::from_secs(30);
/// How long a request to the link proxies' control socket may take.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// One node of `cluster.json`.
#[derive(Debug, Clone, serde::Deserialize)]
struct Node {
    id: u64,
    api: String,
    pid: Option<u32>,
}

/// The link proxies of `cluster.json` (`node/src/local_proxies.rs`).
#[derive(Debug, Clone, serde::Deserialize)]
struct LinkProxies {
    /// The control socket: one line per request (`isolate <id>`, `heal`, `status`), one
    /// line per reply (`ok ...` or `err <reason>`).
    control: PathBuf,
}

/// The parts of `cluster.json` (written by `node/src/local.rs`) the driver reads.
#[derive(Debug, Clone, serde::Deserialize)]
struct ClusterFile {
    ca: PathBuf,
    admin_cert: PathBuf,
    admin_key: PathBuf,
    nodes: Vec<Node>,
    #[serde(default)]
    link_proxies: Option<LinkProxies>,
}

/// Drives the detached local cluster of `sutra-node local start`.
///
/// - `kill`, `stop`, `pause`, `resume`: `SIGKILL`, `SIGTERM`, `SIGSTOP`, `SIGCONT` to the
///   node's PID from `cluster.json`, after checking that the PID is a `sutra-node run
///   --node-id <id>` process (a PID can be reused);
/// - `restart`: `sutra-node local start --dir <dir>`, which starts the nodes that do not
///   run on their ports and data and waits until the cluster is healthy; the PIDs are
///   read again afterwards;
/// - `isolate`/`heal`: `isolate <id>` and `heal` to the control socket of the link
///   proxies, when the cluster was started with `--link-proxies` (`cluster.json` lists
///   them); without them `partition-leader` is refused.
#[derive(Debug)]
pub struct LocalProcessDriver {
    file: PathBuf,
    dir: PathBuf,
    node_bin: PathBuf,
    cluster: Mutex<ClusterFile>,
}

impl LocalProcessDriver {
    /// A driver for the cluster described by `cluster_file` (`<dir>/cluster.json`),
    /// restarting nodes with `node_bin` (default: `$SUTRA_NODE_BIN`, else `sutra-node`
    /// next to the running executable, else `sutra-node` on the `PATH`).
    pub fn open(cluster_file: &Path, node_bin: Option<PathBuf>) -> Result<Self, DrillError> {
        let cluster = read_cluster(cluster_file)?;
        let dir = cluster_file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let node_bin = node_bin
            .or_else(|| std::env::var_os("SUTRA_NODE_BIN").map(PathBuf::from))
            .or_else(|| {
                let exe = std::env::current_exe().ok()?;
                let sibling = exe.parent()?.join("sutra-node");
                sibling.exists().then_some(sibling)
            })
            .unwrap_or_else(|| PathBuf::from("sutra-node"));
        Ok(Self {
            file: cluster_file.to_path_buf(),
            dir,
            node_bin,
            cluster: Mutex::new(cluster),
        })
    }

    /// The CA and admin certificate the cluster file names.
    pub fn tls(&self) -> TlsFiles {
        let c = self.cluster.lock().expect("cluster file lock");
        TlsFiles {
            ca: c.ca.clone(),
            cert: c.admin_cert.clone(),
            key: c.admin_key.clone(),
        }
    }

    fn pid(&self, id: u64) -> Result<u32, DrillError> {
        let c = self.cluster.lock().expect("cluster file lock");
        let node = c
            .nodes
            .iter()
            .find(|n| n.id == id)
            .ok_or_else(|| fault(id, format!("no node {id} in {}", self.file.display())))?;
        let pid = node
            .pid
            .ok_or_else(|| fault(id, "not running (no pid in the cluster file)".into()))?;
        if !is_node_process(pid, id) {
            return Err(fault(
                id,
                format!("process {pid} is not running sutra-node --node-id {id}"),
            ));
        }
        Ok(pid)
    }

    fn signal(&self, id: u64, sig: libc::c_int) -> Result<u32, DrillError> {
        let pid = self.pid(id)?;
        // SAFETY: sends a signal to a sutra-node process of this cluster (checked above).
        if unsafe { libc::kill(pid as libc::pid_t, sig) } != 0 {
            return Err(fault(
                id,
                format!(
                    "signal {sig} to process {pid}: {}",
                    std::io::Error::last_os_error()
                ),
            ));
        }
        Ok(pid)
    }

    /// Sends one request line to the link proxies' control socket; `Ok` with the reply
    /// after `ok`, or the reason.
    async fn control(&self, id: u64, request: &str) -> Result<String, DrillError> {
        let path = {
            let c = self.cluster.lock().expect("cluster file lock");
            c.link_proxies.as_ref().map(|lp| lp.control.clone())
        };
        let Some(path) = path else {
            return Err(DrillError::Unsupported {
                reason: self.unsupported_reason(Scenario::PartitionLeader),
            });
        };
        let exchange = async {
            let mut s = UnixStream::connect(&path).await?;
            s.write_all(format!("{request}\n").as_bytes()).await?;
            let mut line = String::new();
            BufReader::new(s).read_line(&mut line).await?;
            std::io::Result::Ok(line)
        };
        let line = match tokio::time::timeout(CONTROL_TIMEOUT, exchange).await {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => {
                return Err(fault(
                    id,
                    format!("link proxies' control socket {}: {e}", path.display()),
                ));
            }
            Err(_) => {
                return Err(fault(
                    id,
                    format!(
                        "link proxies' control socket {}: no answer to {request:?} within {CONTROL_TIMEOUT:?}",
                        path.display()
                    ),
                ));
            }
        };
        parse_reply(&line)
            .map(str::to_owned)
            .map_err(|e| fault(id, format!("link proxies refused {request:?}: {e}")))
    }

    async fn wait_gone(&self, id: u64, pid: u32, timeout: Duration) -> Result<(), DrillError> {
        let deadline = Instant::now() + timeout;
        while alive(pid) {
            if Instant::now() > deadline {
                return Err(fault(
                    id,
                    format!("process {pid} still runs after {timeout:?}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }
}

fn fault(node: u64, message: String) -> DrillError {
    DrillError::Fault { node, message }
}

/// A control socket reply: `ok [text]` → `Ok(text)`, `err <reason>` → `Err(reason)`.
fn parse_reply(line: &str) -> Result<&str, &str> {
    let line = line.trim_end();
    if let Some(rest) = line.strip_prefix("ok")
        && (rest.is_empty() || rest.starts_with(' '))
    {
        return Ok(rest.trim_start());
    }
    match line.strip_prefix("err ") {
        Some(reason) => Err(reason),
        None if line.is_empty() => Err("no reply"),
        None => Err(line),
    }
}

fn read_cluster(path: &Path) -> Result<ClusterFile, DrillError> {
    let bad = |message: String| DrillError::ClusterFile {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))
}

/// Whether `pid` exists and is not a zombie (a killed node stays one until its parent,
/// often init, reaps it).
fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let exists = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
    exists
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                let rest = &s[s.rfind(')')? + 1..];
                rest.split_whitespace().next().map(|state| state != "Z")
            })
            .unwrap_or(true)
}

/// Whether `pid` is a live `sutra-node run --node-id <id>`.
fn is_node_process(pid: u32, id: u64) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let id = id.to_string();
    alive(pid)
        && args.first().is_some_and(|a| a.ends_with(b"sutra-node"))
        && args.contains(&b"run".as_slice())
        && args
            .windows(2)
            .any(|w| w[0] == b"--node-id" && w[1] == id.as_bytes())
}

impl FaultDriver for LocalProcessDriver {
    fn describe(&self) -> String {
        format!("the local cluster in {}", self.dir.display())
    }

    fn node_ids(&self) -> Vec<u64> {
        let c = self.cluster.lock().expect("cluster file lock");
        c.nodes.iter().map(|n| n.id).collect()
    }

    fn api_endpoint(&self, id: u64) -> String {
        let c = self.cluster.lock().expect("cluster file lock");
        c.nodes
            .iter()
            .find(|n| n.id == id)
            .map(|n| n.api.clone())
            .unwrap_or_default()
    }

    fn supports(&self, scenario: Scenario) -> bool {
        !matches!(
            scenario,
            Scenario::PartitionLeader | Scenario::PartitionFollower
        ) || self
            .cluster
            .lock()
            .expect("cluster file lock")
            .link_proxies
            .is_some()
    }

    fn unsupported_reason(&self, scenario: Scenario) -> String {
        format!(
            "{scenario} needs link proxies between the nodes to cut a node's peer links, and {} has none: stop it and start it with `sutra-node local start --link-proxies`",
            self.describe()
        )
    }

    async fn kill(&self, id: u64) -> Result<(), DrillError> {
        let pid = self.signal(id, libc::SIGKILL)?;
        self.wait_gone(id, pid, KILL_WAIT).await
    }

    async fn stop(&self, id: u64) -> Result<(), DrillError> {
        let pid = self.signal(id, libc::SIGTERM)?;
        self.wait_gone(id, pid, STOP_WAIT).await
    }

    async fn restart(&self, id: u64) -> Result<(), DrillError> {
        if self.pid(id).is_ok() {
            return Ok(());
        }
        let out = tokio::process::Command::new(&self.node_bin)
            .args(["local", "start", "--dir"])
            .arg(&self.dir)
            .env_remove("SUTRA_LOCAL_BASE_PORT")
            .output()
            .await
            .map_err(|e| fault(id, format!("running {}: {e}", self.node_bin.display())))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr.lines().last().unwrap_or("no output");
            return Err(fault(
                id,
                format!(
                    "{} local start --dir {} failed ({}): {last}",
                    self.node_bin.display(),
                    self.dir.display(),
                    out.status
                ),
            ));
        }
        *self.cluster.lock().expect("cluster file lock") = read_cluster(&self.file)?;
        self.pid(id).map(|_| ())
    }

    async fn pause(&self, id: u64) -> Result<(), DrillError> {
        self.signal(id, libc::SIGSTOP).map(|_| ())
    }

    async fn resume(&self, id: u64) -> Result<(), DrillError> {
        self.signal(id, libc::SIGCONT).map(|_| ())
    }

    async fn isolate(&self, id: u64) -> Result<(), DrillError> {
        self.control(id, &format!("isolate {id}")).await.map(|_| ())
    }

    async fn heal(&self) -> Result<(), DrillError> {
        // Nothing to heal without link proxies (nothing was isolated either).
        if self
            .cluster
            .lock()
            .expect("cluster file lock")
            .link_proxies
            .is_none()
        {
            return Ok(());
        }
        self.control(0, "heal").await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cluster_file_of_sutra_node_local() {
        let dir = std::env::temp_dir().join(format!("sutra-drill-local-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("cluster.json");
        std::fs::write(
            &file,
            r#"{"ca":"/c/ca.pem","admin_cert":"/c/a.pem","admin_key":"/c/a-key.pem","nodes":[
              {"id":1,"api":"127.0.0.1:7001","raft":"127.0.0.1:7101","data_dir":"/d/node-1","log":"/d/node-1.log","pid":4242},
              {"id":2,"api":"127.0.0.1:7002","raft":"127.0.0.1:7102","data_dir":"/d/node-2","log":"/d/node-2.log","pid":null}]}"#,
        )
        .unwrap();
        let d = LocalProcessDriver::open(&file, Some("/bin/true".into())).unwrap();
        assert_eq!(d.node_ids(), vec![1, 2]);
        assert_eq!(d.api_endpoint(2), "127.0.0.1:7002");
        assert_eq!(d.tls().cert, PathBuf::from("/c/a.pem"));
        assert!(!d.supports(Scenario::PartitionLeader));
        assert!(!d.supports(Scenario::PartitionFollower));
        assert!(d.supports(Scenario::RollingRestart));
        assert!(d.supports(Scenario::PauseFollower));
        let reason = d.unsupported_reason(Scenario::PartitionLeader);
        assert!(reason.contains("--link-proxies"), "{reason}");
        assert!(!reason.contains('\n'), "{reason}");
        // Node 2 has no process; node 1's PID is not a sutra-node (or not there).
        assert!(matches!(d.pid(2), Err(DrillError::Fault { node: 2, .. })));
        assert!(d.pid(1).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(
            LocalProcessDriver::open(&file, None),
            Err(DrillError::ClusterFile { .. })
        ));
    }

    #[test]
    fn partition_leader_needs_link_proxies_in_the_cluster_file() {
        let dir = std::env::temp_dir().join(format!("sutra-drill-proxies-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("cluster.json");
        std::fs::write(
            &file,
            r#"{"ca":"/c/ca.pem","admin_cert":"/c/a.pem","admin_key":"/c/a-key.pem","nodes":[
              {"id":1,"api":"127.0.0.1:7001","raft":"127.0.0.1:7101","data_dir":"/d/node-1","log":"/d/node-1.log","pid":null}],
              "link_proxies":{"pid":null,"control":"/nonexistent/proxies.sock","log":"/d/proxies.log","links":[]}}"#,
        )
        .unwrap();
        let d = LocalProcessDriver::open(&file, Some("/bin/true".into())).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(d.supports(Scenario::PartitionLeader));
        assert!(d.supports(Scenario::PartitionFollower));
        // The socket is not there: a fault naming it, not a hang.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let e = rt.block_on(d.isolate(1)).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/proxies.sock"), "{e}");
    }

    #[test]
    fn control_replies_parse() {
        assert_eq!(parse_reply("ok isolated=2\n"), Ok("isolated=2"));
        assert_eq!(parse_reply("ok\n"), Ok(""));
        assert_eq!(
            parse_reply("err no link of node 9\n"),
            Err("no link of node 9")
        );
        assert_eq!(parse_reply(""), Err("no reply"));
        assert_eq!(parse_reply("okay"), Err("okay"));
    }

    #[test]
    fn only_sutra_node_processes_are_signalled() {
        // This test binary is alive but not a sutra-node.
        assert!(alive(std::process::id()));
        assert!(!is_node_process(std::process::id(), 1));
    }
}
