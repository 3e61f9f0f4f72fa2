//! [`Manifest`]: what a backup file says about itself.

use serde::{Deserialize, Serialize};

/// The backup file format this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// What a backup holds and where it came from. The node that streams a backup fills in
/// everything but [`payload_sha256`](Self::payload_sha256), which the writer computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Backup file format ([`FORMAT_VERSION`]).
    pub format: u32,
    /// The cluster the backup was taken from.
    pub cluster_id: String,
    /// The node that streamed it.
    pub source_node: u64,
    /// The applied log index the backup holds: every write acknowledged at or below it.
    pub applied_index: u64,
    /// The term of the entry at that index.
    pub term: u64,
    /// The Raft log id of that entry (a restored cluster's log starts after it).
    pub last_log_id: serde_json::Value,
    /// The membership as of that index (voters and learners with their addresses).
    pub membership: serde_json::Value,
    /// The replicated cluster state at that index: the cluster's parameters (vector
    /// dimension, limits, quota, cluster id), alarms, departed members.
    pub cluster_state: serde_json::Value,
    /// The release of the binary that made the backup.
    pub binary_version: String,
    /// The commit that binary was built from.
    pub binary_commit: String,
    /// When the backup was taken, seconds since the Unix epoch.
    pub created_unix_s: u64,
    /// Live concepts, edges and client sessions at that index.
    pub concepts: u64,
    /// Live edges.
    pub edges: u64,
    /// Client sessions.
    pub sessions: u64,
    /// The store's content hash at that index (`GetStats.content_hash`).
    pub content_hash: String,
    /// Length of the engine's snapshot stream, the payload.
    pub snapshot_bytes: u64,
    /// CRC32C of the snapshot stream as the engine computed it.
    pub snapshot_crc32c: u32,
    /// SHA-256 of the payload, lowercase hex.
    pub payload_sha256: String,
}

impl Manifest {
    /// Seconds since the backup was taken, at `now_unix_s`.
    pub fn age_s(&self, now_unix_s: u64) -> u64 {
        now_unix_s.saturating_sub(self.created_unix_s)
    }
}
