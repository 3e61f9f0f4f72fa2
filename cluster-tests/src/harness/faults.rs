//! Faults a test injects: signals to a node's own process, restarts with other flags,
//! a tmpfs disk that fills and is grown, and the link proxies' partitions.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sutra_devcluster::linkproxy::{Direction, LinkProxy};

use super::Cluster;
use crate::wait_until;

impl Cluster {
    /// SIGKILL node `id` and reap it.
    pub fn kill(&self, id: u64) -> Result<()> {
        self.node(id)?.process().kill().map(|_| ())
    }

    /// Starts node `id` again with the same flags, data directory and ports.
    pub fn restart(&self, id: u64) -> Result<()> {
        self.node(id)?.process().restart()
    }

    /// Restarts node `id` (stopped) with `extra` flags added, for this start and later
    /// ones (replacing those of an earlier call).
    pub fn restart_with_args(&self, id: u64, extra: &[&str]) -> Result<()> {
        self.node(id)?.process().restart_with_args(extra)
    }

    /// Gives node `id`'s tmpfs data directory ([`ClusterOptions::tmpfs_bytes`]) a new
    /// size, as an operator frees disk space.
    pub fn resize_tmpfs(&self, id: u64, bytes: u64) -> Result<()> {
        let dir = &self.node(id)?.data_dir;
        run_mount(&[
            "-o",
            &format!("remount,size={bytes}"),
            &dir.display().to_string(),
        ])
    }

    /// SIGTERM node `id` (a graceful stop) and wait up to `timeout` for it to exit;
    /// returns its exit status. A node still there after `timeout` is killed and the
    /// call fails.
    pub async fn terminate(&self, id: u64, timeout: Duration) -> Result<std::process::ExitStatus> {
        let node = self.node(id)?;
        node.process().send_terminate()?;
        let waited = wait_until(
            &format!("node {id} exiting after SIGTERM"),
            timeout,
            async || {
                node.process()
                    .try_exit()
                    .ok_or_else(|| anyhow::anyhow!("still running"))
            },
        )
        .await;
        match waited {
            Ok(status) => {
                tracing::info!(node = id, ?status, "node stopped (SIGTERM)");
                Ok(status)
            }
            Err(e) => {
                let _ = node.process().kill();
                Err(e.context(format!("node {id} ignored SIGTERM; killed it")))
            }
        }
    }

    /// SIGSTOP node `id`.
    pub fn pause(&self, id: u64) -> Result<()> {
        self.node(id)?.process().pause()
    }

    /// SIGCONT node `id`.
    pub fn resume(&self, id: u64) -> Result<()> {
        self.node(id)?.process().resume()
    }

    /// The proxy on link `from → to` (node `from`'s connections to node `to`'s Raft
    /// port). Fails unless the cluster was started with `link_proxies`.
    pub fn link(&self, from: u64, to: u64) -> Result<&LinkProxy> {
        self.proxies.get(&(from, to)).ok_or_else(|| {
            anyhow::anyhow!(
                "no proxy on link {from}->{to} (link_proxies: {})",
                self.opts.link_proxies
            )
        })
    }

    /// Every link proxy, by (from, to).
    pub fn links(&self) -> &BTreeMap<(u64, u64), LinkProxy> {
        &self.proxies
    }

    fn require_proxies(&self) -> Result<()> {
        if self.proxies.is_empty() {
            bail!("this cluster has no link proxies: start it with link_proxies: true");
        }
        Ok(())
    }

    /// Cuts node `id` off from every other node: every link to and from it becomes a
    /// black hole (connections held open, nothing forwarded: the nodes see timeouts).
    /// Clients still reach it.
    pub fn isolate(&self, id: u64) -> Result<()> {
        self.require_proxies()?;
        self.node(id)?;
        tracing::info!(node = id, "isolating node");
        for (&(from, to), p) in &self.proxies {
            if from == id || to == id {
                p.blackhole();
            }
        }
        Ok(())
    }

    /// Splits the proxied nodes into `groups`: links within a group pass, links between
    /// groups are black holes. A node in no group is a group of its own. Replaces every
    /// earlier fault.
    pub fn partition(&self, groups: &[&[u64]]) -> Result<()> {
        self.require_proxies()?;
        let mut group_of = BTreeMap::new();
        for (g, ids) in groups.iter().enumerate() {
            for &id in *ids {
                self.node(id)?;
                if group_of.insert(id, g).is_some() {
                    bail!("node {id} is in two groups of {groups:?}");
                }
            }
        }
        tracing::info!(?groups, "partitioning the cluster");
        for (&(from, to), p) in &self.proxies {
            match (group_of.get(&from), group_of.get(&to)) {
                (Some(a), Some(b)) if a == b => p.pass(),
                _ => p.blackhole(),
            }
        }
        Ok(())
    }

    /// Makes node `from`'s messages never reach node `to`, while `to`'s reach `from`:
    /// the requests on link `from → to` and the answers on link `to → from` are
    /// discarded.
    pub fn cut_one_way(&self, from: u64, to: u64) -> Result<()> {
        tracing::info!(from, to, "cutting one way");
        self.link(from, to)?.cut(Direction::Upstream);
        self.link(to, from)?.cut(Direction::Downstream);
        Ok(())
    }

    /// Lifts every link fault (cuts, black holes, drops, delays).
    pub fn heal(&self) {
        tracing::info!("healing every link");
        for p in self.proxies.values() {
            p.pass();
        }
    }
}

/// Runs `mount args...`, failing with its output.
fn run_mount(args: &[&str]) -> Result<()> {
    let out = std::process::Command::new("mount")
        .args(args)
        .output()
        .context("running mount")?;
    if !out.status.success() {
        bail!(
            "mount {}: {} (tmpfs data directories need root)",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Mounts a tmpfs of `bytes` at `dir` (created), unless one is mounted there already.
pub(super) fn mount_tmpfs(dir: &Path, bytes: u64) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let shown = dir.display().to_string();
    if mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(shown.as_str()))
    {
        return Ok(());
    }
    run_mount(&[
        "-t",
        "tmpfs",
        "-o",
        &format!("size={bytes}"),
        "tmpfs",
        &shown,
    ])
}
