//! Nodes whose data directories are made from a backup (`sutra-node restore`) before
//! their first start: a whole new cluster ([`ClusterOptions::restore_from`]) or one new
//! member of the backup's own cluster ([`Cluster::add_node_seeded`]).
//!
//! [`ClusterOptions::restore_from`]: super::ClusterOptions::restore_from

use std::path::Path;

use anyhow::{Context, Result};

use super::Cluster;

impl Cluster {
    /// As [`add_node`](Self::add_node), with the data directory seeded from `backup`
    /// first (`sutra-node restore --join`), as an operator does to spare the leader a
    /// whole snapshot.
    pub fn add_node_seeded(&mut self, id: u64, backup: &Path) -> Result<()> {
        let data_dir = self.root.join(format!("node-{id}"));
        run(&self.bin, backup, id, &data_dir, None)?;
        self.add_node(id)
    }
}

/// Runs `sutra-node restore` for node `id` into `data_dir`: for a new cluster of
/// `members`, or with `None` as a new member of the backup's own cluster (`--join`).
pub(super) fn run(
    bin: &Path,
    backup: &Path,
    id: u64,
    data_dir: &Path,
    members: Option<&str>,
) -> Result<()> {
    let mut cmd = std::process::Command::new(bin);
    cmd.arg("restore")
        .arg("--backup")
        .arg(backup)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--node-id", &id.to_string()]);
    match members {
        Some(m) => cmd.args(["--initial-members", m]),
        None => cmd.arg("--join"),
    };
    let out = cmd.output().context("running sutra-node restore")?;
    anyhow::ensure!(
        out.status.success(),
        "sutra-node restore for node {id}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    tracing::info!(id, report = %String::from_utf8_lossy(&out.stdout), "node restored from a backup");
    Ok(())
}
