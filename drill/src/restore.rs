//! The `restore` scenario's reach beyond faults: a backup of the live cluster and a
//! scratch cluster restored from it ([`RestoreTarget`]), and what a round of it measured
//! ([`RestoreReport`]).

use std::fmt;
use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;

/// Takes backups of the cluster a drill runs against and restores them into scratch
/// clusters. `sutra drill` implements it for a local cluster with the code of `sutra
/// backup save`, `sutra-node restore` and the local runner.
pub trait RestoreTarget: fmt::Debug + Send + Sync {
    /// Streams a consistent backup of the live cluster into `file`.
    fn backup<'a>(&'a self, file: &'a Path) -> BoxFuture<'a, Result<BackupTaken, String>>;

    /// Restores every member of a new cluster from `file` under `dir` and starts them;
    /// returns once the processes run (not once they lead or serve).
    fn restore<'a>(
        &'a self,
        file: &'a Path,
        dir: &'a Path,
    ) -> BoxFuture<'a, Result<ScratchCluster, String>>;

    /// Stops every process of the scratch cluster in `scratch.dir` (by its process ids)
    /// and waits until they are gone; also called with only `dir` set after a `restore`
    /// that failed part way. The engine removes the directory afterwards.
    fn stop<'a>(&'a self, scratch: &'a ScratchCluster) -> BoxFuture<'a, Result<(), String>>;
}

/// What a backup call wrote.
#[derive(Debug, Clone)]
pub struct BackupTaken {
    /// The backup's point in time: the applied index its snapshot holds.
    pub applied_index: u64,
    /// The content hash its manifest records.
    pub content_hash: String,
    /// Bytes of its snapshot.
    pub bytes: u64,
    /// The node it was streamed from.
    pub source_node: u64,
}

/// A cluster restored from a backup, running for the drill's checks.
#[derive(Debug, Clone)]
pub struct ScratchCluster {
    /// Its client API endpoints.
    pub endpoints: Vec<String>,
    /// Its directory (data, logs, its cluster file).
    pub dir: PathBuf,
    /// Its node processes.
    pub pids: Vec<u32>,
}

/// What a round of the `restore` scenario measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RestoreReport {
    /// The node the backup was streamed from.
    pub source_node: u64,
    /// The backup's applied index.
    pub backup_index: u64,
    /// Bytes of the backup's snapshot.
    pub backup_bytes: u64,
    /// The backup call, start to end (file written and fsynced), milliseconds.
    pub backup_ms: f64,
    /// The live cluster's applied index (its leader's) right after the backup call.
    pub live_index: u64,
    /// Recovery point in log entries: `live_index - backup_index`.
    pub rpo_entries: u64,
    /// Recovery point in seconds: the backup's point in time lies after the start of the
    /// backup call (the source node's read-index barrier), so it was at most this long
    /// before the end of the call.
    pub rpo_secs: f64,
    /// From the first `sutra-node restore` until the scratch cluster had a leader and
    /// served a LINEARIZABLE read, milliseconds.
    pub restore_ms: f64,
    /// The scratch cluster's leader.
    pub scratch_leader: u64,
    /// The content hash of the backup's manifest.
    pub backup_hash: String,
    /// The scratch cluster leader's content hash.
    pub restored_hash: String,
    /// The applied index the scratch leader's hash is at.
    pub restored_hash_index: u64,
    /// Both hashes equal.
    pub content_equal: bool,
    /// Keys with a write acknowledged before the backup call started.
    pub keys_checked: usize,
    /// Of those, keys the scratch cluster lacks or holds at an older version than that
    /// write's: acknowledged writes the backup missed.
    pub missing: usize,
    /// The first missing keys, for the report.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_keys: Vec<String>,
}

impl RestoreReport {
    /// The backup restored to the same content and nothing acknowledged before it was
    /// missing.
    pub fn passed(&self) -> bool {
        self.content_equal && self.missing == 0
    }
}
