//! [`LocalProcessDriver`]: faults for the cluster `sutra local start` runs, by signals to
//! the PIDs its `cluster.json` records, and partitions through its link proxies' control
//! socket when it was started with `--link-proxies`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use sutra_client::TlsFiles;
use sutra_devcluster::control::{self, Request};
use sutra_devcluster::process::{self, Signal};
use sutra_devcluster::{ClusterFile, ClusterFileError};

use crate::{DrillError, FaultDriver, Scenario};

/// How long a killed node may take to disappear.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// How long a node may take to stop after SIGTERM (handover and final checkpoint).
const STOP_WAIT: Duration = Duration::from_secs(30);

/// Drives the detached local cluster of `sutra local start`.
///
/// - `kill`, `stop`, `pause`, `resume`: `SIGKILL`, `SIGTERM`, `SIGSTOP`, `SIGCONT` to the
///   node's PID from `cluster.json`, after checking that the PID is a `sutra-node run
///   --node-id <id>` process (a PID can be reused);
/// - `restart`: `sutra local start --dir <dir>`, which starts the nodes that do not
///   run on their ports and data and waits until the cluster is healthy; the PIDs are
///   read again afterwards;
/// - `isolate`/`heal`: `isolate <id>` and `heal` to the control socket of the link
///   proxies, when the cluster was started with `--link-proxies` (`cluster.json` lists
///   them); without them `partition-leader` is refused.
#[derive(Debug)]
pub struct LocalProcessDriver {
    file: PathBuf,
    dir: PathBuf,
    cli_bin: PathBuf,
    node_bin: Option<PathBuf>,
    cluster: Mutex<ClusterFile>,
}

impl LocalProcessDriver {
    /// A driver for the cluster described by `cluster_file` (`<dir>/cluster.json`),
    /// restarting nodes with `cli_bin local start` (default: the `sutra` binary
    /// [`process::cli_binary`] finds), which runs `node_bin` (default: the `sutra-node`
    /// it finds).
    pub fn open(
        cluster_file: &Path,
        cli_bin: Option<PathBuf>,
        node_bin: Option<PathBuf>,
    ) -> Result<Self, DrillError> {
        let cluster = read_cluster(cluster_file)?;
        let dir = cluster_file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let cli_bin = match cli_bin {
            Some(bin) => bin,
            None => process::cli_binary().map_err(|e| DrillError::Config(format!("{e:#}")))?,
        };
        Ok(Self {
            file: cluster_file.to_path_buf(),
            dir,
            cli_bin,
            node_bin,
            cluster: Mutex::new(cluster),
        })
    }

    /// The CA and admin certificate the cluster file names.
    pub fn tls(&self) -> TlsFiles {
        self.cluster.lock().expect("cluster file lock").tls("admin")
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
        if !process::is_node_process(pid, id) {
            return Err(fault(
                id,
                format!("process {pid} is not running sutra-node --node-id {id}"),
            ));
        }
        Ok(pid)
    }

    fn signal(&self, id: u64, sig: Signal) -> Result<u32, DrillError> {
        let pid = self.pid(id)?;
        process::signal(pid, sig)
            .map_err(|e| fault(id, format!("{sig:?} to process {pid}: {e}")))?;
        Ok(pid)
    }

    /// Sends one request to the link proxies' control socket; the text of its `ok`.
    async fn control(&self, id: u64, request: Request) -> Result<String, DrillError> {
        let path = {
            let c = self.cluster.lock().expect("cluster file lock");
            c.link_proxies.as_ref().map(|lp| lp.control.clone())
        };
        let Some(path) = path else {
            return Err(DrillError::Unsupported {
                reason: self.unsupported_reason(Scenario::PartitionLeader),
            });
        };
        control::request(&path, request)
            .await
            .map_err(|e| fault(id, e.to_string()))
    }

    async fn wait_gone(&self, id: u64, pid: u32, timeout: Duration) -> Result<(), DrillError> {
        process::wait_gone(pid, timeout)
            .await
            .map_err(|e| fault(id, format!("{e:#}")))
    }
}

fn fault(node: u64, message: String) -> DrillError {
    DrillError::Fault { node, message }
}

fn read_cluster(path: &Path) -> Result<ClusterFile, DrillError> {
    ClusterFile::read(path)
        .map_err(|ClusterFileError { path, message }| DrillError::ClusterFile { path, message })
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
            "{scenario} needs link proxies between the nodes to cut a node's peer links, and {} has none: stop it and start it with `sutra local start --link-proxies`",
            self.describe()
        )
    }

    async fn kill(&self, id: u64) -> Result<(), DrillError> {
        let pid = self.signal(id, Signal::Kill)?;
        self.wait_gone(id, pid, KILL_WAIT).await
    }

    async fn stop(&self, id: u64) -> Result<(), DrillError> {
        let pid = self.signal(id, Signal::Term)?;
        self.wait_gone(id, pid, STOP_WAIT).await
    }

    async fn restart(&self, id: u64) -> Result<(), DrillError> {
        if self.pid(id).is_ok() {
            return Ok(());
        }
        let mut cmd = tokio::process::Command::new(&self.cli_bin);
        cmd.args(["local", "start", "--dir"])
            .arg(&self.dir)
            .env_remove("SUTRA_LOCAL_BASE_PORT");
        if let Some(node_bin) = &self.node_bin {
            cmd.env(process::NODE_BIN_ENV, node_bin);
        }
        let out = cmd
            .output()
            .await
            .map_err(|e| fault(id, format!("running {}: {e}", self.cli_bin.display())))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr.lines().last().unwrap_or("no output");
            return Err(fault(
                id,
                format!(
                    "{} local start --dir {} failed ({}): {last}",
                    self.cli_bin.display(),
                    self.dir.display(),
                    out.status
                ),
            ));
        }
        *self.cluster.lock().expect("cluster file lock") = read_cluster(&self.file)?;
        self.pid(id).map(|_| ())
    }

    async fn pause(&self, id: u64) -> Result<(), DrillError> {
        self.signal(id, Signal::Stop).map(|_| ())
    }

    async fn resume(&self, id: u64) -> Result<(), DrillError> {
        self.signal(id, Signal::Cont).map(|_| ())
    }

    async fn isolate(&self, id: u64) -> Result<(), DrillError> {
        self.control(id, Request::Isolate(id)).await.map(|_| ())
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
        self.control(0, Request::Heal).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cluster_file_of_sutra_local() {
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
        let d = LocalProcessDriver::open(&file, Some("/bin/true".into()), None).unwrap();
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
            LocalProcessDriver::open(&file, None, None),
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
        let d = LocalProcessDriver::open(&file, Some("/bin/true".into()), None).unwrap();
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
}
