//! `ClusterService/Backup`: an online, consistent backup streamed from this node. A
//! read-index barrier first (on a follower it asks the leader for the commit index and
//! waits to apply it), so the backup holds every write acknowledged before the call;
//! then one engine checkpoint, whose snapshot stream is sent while writes go on. The
//! manifest names the cluster, the applied index and term, the membership and cluster
//! state, this binary, and the content hash at exactly that index.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::Stream;
use sutra_backup::{FORMAT_VERSION, Manifest};
use sutra_engine::{ContentDigest, Snapshot};
use sutra_proto::cluster::{BackupChunk, backup_chunk};
use sutra_proto::storage as pb;
use tokio::sync::mpsc;
use tonic::Status;

use crate::node::Node;
use crate::status::ServiceError;

/// Payload bytes per message.
const CHUNK_BYTES: usize = 1 << 20;

/// The stream of a backup's messages.
pub type BackupStream = Pin<Box<dyn Stream<Item = Result<BackupChunk, Status>> + Send>>;

/// The manifest of a backup of `snap` (whose content digest is `digest`) taken on node
/// `node_id` of cluster `cluster_id`; the payload's SHA-256 is left to the writer.
pub fn manifest(
    node_id: u64,
    cluster_id: String,
    snap: &Snapshot,
    digest: &ContentDigest,
) -> Result<Manifest, String> {
    let position = sutra_raft::AppliedPosition::decode(&snap.meta().position)
        .map_err(|e| format!("the checkpoint's position: {e}"))?;
    let json = |what: &str, v: serde_json::Result<serde_json::Value>| {
        v.map_err(|e| format!("encoding the {what}: {e}"))
    };
    Ok(Manifest {
        format: FORMAT_VERSION,
        cluster_id,
        source_node: node_id,
        applied_index: digest.version,
        term: position.last_applied.map_or(0, |id| id.leader_id.term),
        last_log_id: json("log id", serde_json::to_value(position.last_applied))?,
        membership: json(
            "membership",
            serde_json::to_value(&position.last_membership),
        )?,
        cluster_state: json("cluster state", serde_json::to_value(&position.cluster))?,
        binary_version: crate::build_info::VERSION.to_string(),
        binary_commit: crate::build_info::COMMIT.to_string(),
        created_unix_s: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        concepts: digest.concepts,
        edges: digest.edges,
        sessions: digest.sessions,
        content_hash: digest.to_hex(),
        snapshot_bytes: snap.meta().size,
        snapshot_crc32c: snap.meta().crc32c,
        payload_sha256: String::new(),
    })
}

/// Takes the backup and starts streaming it: the manifest, then the payload at no more
/// than `rate` bytes per second (0: unlimited).
pub async fn start(node: Arc<Node>, rate: u64) -> Result<BackupStream, ServiceError> {
    node.read_barrier(Some(pb::ReadOptions {
        consistency: pb::Consistency::Linearizable as i32,
        ..Default::default()
    }))
    .await?;
    let engine = node.engine.clone();
    let (snap, digest) = tokio::task::spawn_blocking(move || engine.snapshot_with_digest())
        .await
        .map_err(|e| ServiceError::Internal(format!("backup checkpoint task: {e}")))??;
    let manifest = manifest(
        node.id,
        node.identity.get().unwrap_or_default(),
        &snap,
        &digest,
    )
    .map_err(ServiceError::Internal)?;
    tracing::info!(
        event = "backup_started",
        index = manifest.applied_index,
        bytes = manifest.snapshot_bytes,
        content_hash = manifest.content_hash,
        "streaming a backup"
    );
    let manifest_json = serde_json::to_string(&manifest)
        .map_err(|e| ServiceError::Internal(format!("encoding the manifest: {e}")))?;
    let (tx, rx) = mpsc::channel::<Result<BackupChunk, Status>>(4);
    let first = BackupChunk {
        kind: Some(backup_chunk::Kind::ManifestJson(manifest_json)),
    };
    tokio::task::spawn_blocking(move || {
        if tx.blocking_send(Ok(first)).is_err() {
            return;
        }
        let started = Instant::now();
        let mut sent = 0u64;
        for (_, data) in snap.chunks(CHUNK_BYTES) {
            sent += data.len() as u64;
            let chunk = BackupChunk {
                kind: Some(backup_chunk::Kind::Data(data)),
            };
            if tx.blocking_send(Ok(chunk)).is_err() {
                tracing::warn!(event = "backup_abandoned", sent, "the receiver went away");
                return;
            }
            if rate > 0 {
                // Pacing: at most `rate` bytes per second on average.
                let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        }
        tracing::info!(
            event = "backup_sent",
            bytes = sent,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "backup streamed"
        );
    });
    Ok(Box::pin(futures_util::stream::unfold(rx, |mut rx| async {
        rx.recv().await.map(|item| (item, rx))
    })))
}
