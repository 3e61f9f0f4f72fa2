//! A `sutra local` cluster driven through the real `sutra` binary: started in a test's
//! directory, stopped when the test ends whatever happened, and commands bounded in time.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};

/// Runs `cmd` to its end, killing it if it takes longer than `timeout`.
pub fn run_bounded(what: &str, cmd: &mut Command, timeout: Duration) -> anyhow::Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    // The pipes are drained by threads so a chatty child never blocks on a full pipe.
    let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|s| Box::new(s) as _));
    let err = drain(child.stderr.take().map(|s| Box::new(s) as _));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("{what}: no exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    })
}

/// Stops the local cluster when the test ends, whatever happened.
#[derive(Debug)]
pub struct LocalCluster {
    /// The `sutra` binary.
    pub cli: PathBuf,
    /// The `sutra-node` binary the cluster runs.
    pub node_bin: PathBuf,
    /// The cluster's directory (`--dir`).
    pub dir: PathBuf,
}

impl LocalCluster {
    /// Runs `sutra local ACTION --dir DIR EXTRA…` (at most a minute).
    pub fn local(&self, action: &str, extra: &[&str]) -> anyhow::Result<Output> {
        run_bounded(
            &format!("sutra local {action}"),
            Command::new(&self.cli)
                .args(["local", action, "--dir"])
                .arg(&self.dir)
                .args(extra)
                .env("SUTRA_NODE_BIN", &self.node_bin)
                .env_remove("SUTRA_LOCAL_DIR")
                .env_remove("SUTRA_LOCAL_BASE_PORT"),
            Duration::from_secs(60),
        )
    }

    /// The cluster's `cluster.json`.
    pub fn cluster_json(&self) -> anyhow::Result<serde_json::Value> {
        let path = self.dir.join("cluster.json");
        let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(serde_json::from_slice(&text)?)
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let _ = self.local("stop", &[]);
    }
}

/// Fails with the command's output unless it exited 0.
pub fn check_ok(what: &str, out: &Output) -> anyhow::Result<()> {
    ensure!(
        out.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The last lines of the local cluster's logs in `dir`.
pub fn log_tails(dir: &Path) -> String {
    let mut s = String::new();
    for name in ["proxies.log", "node-1.log", "node-2.log", "node-3.log"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        s.push_str(&format!("===== {name}\n{tail}\n"));
    }
    s
}
