//! `sutra-node restore`: builds a node's data directory for a new cluster from a backup
//! file. Restore every member from the same file with the same `--initial-members`, then
//! start them as usual (`sutra-node run` with the same members): they hold the backup's
//! content at its index, elect a leader and take writes from there.
//!
//! The new cluster gets a cluster id of its own, so its nodes and the old cluster's
//! refuse each other: by default derived from the backup's payload hash and the member
//! list (every member restored with the same flags gets the same id, and a second
//! cluster restored elsewhere from the same file with other addresses gets another), or
//! `--cluster-id`. The backup is checked end to end before the directory is touched:
//! every checksum, then the content hash the new store recomputes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};
use sutra_backup::BackupReader;
use sutra_raft::{ClusterState, LogId, NodeInfo};

use crate::config::MemberSpec;

/// Flags of `sutra-node restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The backup file (`sutra backup save`).
    #[arg(long)]
    pub backup: PathBuf,
    /// The data directory to build; it must be empty or absent unless --force.
    #[arg(long, env = "SUTRA_DATA_DIR")]
    pub data_dir: PathBuf,
    /// This node's id in the new cluster.
    #[arg(long, env = "SUTRA_NODE_ID")]
    pub node_id: u64,
    /// The new cluster's voters, `ID=RAFT_ADDR/API_ADDR`, comma-separated: the same list
    /// on every member, and the same as their `run --initial-members`.
    #[arg(
        long,
        env = "SUTRA_INITIAL_MEMBERS",
        value_delimiter = ',',
        required_unless_present = "join"
    )]
    pub initial_members: Vec<MemberSpec>,
    /// Seed a new member of the backup's own cluster instead: the directory keeps the
    /// backup's cluster id and membership, so the node, started without
    /// --initial-members and added with `sutra cluster add-learner`, catches up from the
    /// backup's index through the log instead of a whole snapshot over the network.
    #[arg(long, conflicts_with_all = ["initial_members", "cluster_id"])]
    pub join: bool,
    /// The new cluster's id (32 hex digits); default: derived from the backup and the
    /// member list.
    #[arg(long)]
    pub cluster_id: Option<String>,
    /// Replace whatever the data directory holds.
    #[arg(long)]
    pub force: bool,
    /// Check the backup and the flags and say what would be done; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Why a restore did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The flags do not describe a restore that can be done.
    #[error("{0}")]
    Invalid(String),
    /// The backup file is damaged or not what its manifest says.
    #[error(transparent)]
    Backup(#[from] sutra_backup::Error),
    /// The Raft side of the new directory could not be made.
    #[error(transparent)]
    Raft(#[from] sutra_raft::Error),
    /// A file or directory could not be handled.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// Where.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// What a restore did (or, with `--dry-run`, would do).
#[derive(Debug, Serialize)]
pub struct Restored {
    /// The data directory.
    pub data_dir: String,
    /// This node.
    pub node_id: u64,
    /// The new cluster's id.
    pub cluster_id: String,
    /// The cluster the backup came from.
    pub source_cluster_id: String,
    /// The backup's applied index, where the new cluster starts.
    pub applied_index: u64,
    /// Live concepts and edges restored.
    pub concepts: u64,
    /// Edges.
    pub edges: u64,
    /// The content hash the new store computed (equal to the backup's).
    pub content_hash: String,
    /// Whether anything was written.
    pub dry_run: bool,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RestoreError + 'a {
    move |source| RestoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The cluster id a restore gives the new cluster by default.
fn derived_cluster_id(payload_sha256: &str, members: &[MemberSpec]) -> String {
    let mut h = Sha256::new();
    h.update(b"sutra restore\0");
    h.update(payload_sha256.as_bytes());
    for m in members {
        h.update(format!("\0{m}").as_bytes());
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn is_empty_dir(dir: &Path) -> Result<bool, RestoreError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io("read", dir)(e)),
    }
}

/// Restores per `args`.
pub async fn run(args: &RestoreArgs) -> Result<Restored, RestoreError> {
    let members: BTreeMap<u64, NodeInfo> = args
        .initial_members
        .iter()
        .map(|m| (m.id, NodeInfo::new(m.raft_addr.clone(), m.api_addr.clone())))
        .collect();
    if members.len() != args.initial_members.len() {
        return Err(RestoreError::Invalid(
            "--initial-members names a node id twice".into(),
        ));
    }
    if !args.join && !members.contains_key(&args.node_id) {
        return Err(RestoreError::Invalid(format!(
            "--node-id {} is not among --initial-members",
            args.node_id
        )));
    }
    if let Some(id) = &args.cluster_id
        && (id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(RestoreError::Invalid(format!(
            "--cluster-id {id:?}: expected 32 hex digits"
        )));
    }
    let reader = BackupReader::open(&args.backup)?;
    let m = reader.manifest().clone();
    let last_applied: LogId = serde_json::from_value(m.last_log_id.clone()).map_err(|e| {
        RestoreError::Invalid(format!("the backup's manifest has no usable log id: {e}"))
    })?;
    let cluster: ClusterState = serde_json::from_value(m.cluster_state.clone()).map_err(|e| {
        RestoreError::Invalid(format!(
            "the backup's manifest has no usable cluster state: {e}"
        ))
    })?;
    let (cluster_id, position) = if args.join {
        (m.cluster_id.clone(), None)
    } else {
        let id = args
            .cluster_id
            .clone()
            .unwrap_or_else(|| derived_cluster_id(&m.payload_sha256, &args.initial_members));
        let position =
            sutra_raft::restore::restored_position(last_applied, &members, cluster, &id)?;
        (id, Some(position))
    };
    let dir = &args.data_dir;
    if !is_empty_dir(dir)? && !args.force {
        return Err(RestoreError::Invalid(format!(
            "{} is not empty: restore into an empty directory, or give --force to replace what it holds",
            dir.display()
        )));
    }
    let report = |content_hash: String, dry_run| Restored {
        data_dir: dir.display().to_string(),
        node_id: args.node_id,
        cluster_id: cluster_id.clone(),
        source_cluster_id: m.cluster_id.clone(),
        applied_index: m.applied_index,
        concepts: m.concepts,
        edges: m.edges,
        content_hash,
        dry_run,
    };
    if args.dry_run {
        // The whole proof, into a scratch store beside the data directory.
        let scratch = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(scratch).map_err(io("create", scratch))?;
        let r = sutra_backup::verify(&reader, scratch)?;
        return Ok(report(r.digest.to_hex(), true));
    }
    // Checked before anything in the directory changes: the manifest above, every
    // frame and the content hash while installing into a staging directory beside it.
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io("create", parent))?;
    let staging = tempfile::Builder::new()
        .prefix(".sutra-restore-")
        .tempdir_in(parent)
        .map_err(io("create a staging directory in", parent))?;
    let (engine, installed) = sutra_backup::install(&reader, &staging.path().join("sm"), position)?;
    drop(engine);
    let vote_as = (!args.join).then_some(args.node_id);
    sutra_raft::restore::start_log_after(&staging.path().join("raft"), last_applied, vote_as)
        .await?;
    let id_file = staging.path().join(crate::server::CLUSTER_ID_FILE);
    sutra_raft::ClusterIdentity::open(&id_file)
        .and_then(|id| {
            id.set(&cluster_id).map_err(std::io::Error::other)?;
            Ok(())
        })
        .map_err(io("write", &id_file))?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io("remove", dir))?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, dir).map_err(io("rename the restored directory to", dir))?;
    std::fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync", parent))?;
    tracing::warn!(
        event = "restored",
        data_dir = %dir.display(),
        node_id = args.node_id,
        cluster_id,
        source_cluster_id = m.cluster_id,
        applied_index = m.applied_index,
        join = args.join,
        "data directory restored from a backup; a new cluster: start every member with the same --initial-members; --join: start it without and add it as a learner"
    );
    Ok(report(installed.digest.to_hex(), false))
}
