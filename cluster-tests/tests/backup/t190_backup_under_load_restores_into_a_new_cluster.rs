//! t190: a backup taken under a write load, verified offline, restored into a new
//! cluster; damaged copies refused; admin only.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use sutra_checker::History;
use sutra_cluster_tests::client::linearizable;
use sutra_cluster_tests::process::node_binary;
use sutra_cluster_tests::{
    CliRun, ClientRole, Cluster, ClusterOptions, check_scan, init_tracing, within,
};
use sutra_proto::cluster::BackupRequest;
use sutra_proto::storage::{
    BatchRequest, Concept, GetStatsRequest, PutConceptOp, WriteHeader, WriteOp, write_op,
};

const BEFORE: usize = 200;
const BATCH_OPS: usize = 5;

async fn content_hash(cluster: &Cluster, id: u64) -> Result<(String, u64)> {
    let s = cluster
        .client(id, ClientRole::Reader)?
        .storage
        .clone()
        .get_stats(GetStatsRequest {
            include_content_hash: true,
        })
        .await?
        .into_inner();
    Ok((s.content_hash, s.content_hash_index))
}

fn batch(client_id: &str, sequence: u64, n: u64) -> BatchRequest {
    BatchRequest {
        header: Some(WriteHeader {
            client_id: client_id.into(),
            sequence,
        }),
        ops: (0..BATCH_OPS)
            .map(|k| WriteOp {
                op: Some(write_op::Op::PutConcept(PutConceptOp {
                    concept: Some(Concept {
                        id: format!("t190/batch{n:05}/{k}"),
                        content: format!("batch {n} op {k}").into_bytes(),
                        ..Concept::default()
                    }),
                    expected_version: None,
                })),
            })
            .collect(),
    }
}

/// Flips one bit of `file` at `offset`, into a copy named `name`.
fn damaged_copy(file: &Path, name: &str, offset: usize) -> Result<std::path::PathBuf> {
    let mut bytes = std::fs::read(file)?;
    bytes[offset] ^= 0x10;
    let out = file.with_file_name(name);
    std::fs::write(&out, bytes)?;
    Ok(out)
}

/// 200 writes are acknowledged; then, while a writer keeps sending 5-op batches to the
/// leader, `sutra backup save` streams a backup from a follower. `sutra backup verify`
/// proves it (exit 0, every checksum, the content hash recomputed). Three new nodes are
/// restored from it (`sutra-node restore`) and started: they elect a leader, report the
/// manifest's content hash, hold every write acknowledged before the backup started,
/// and every batch wholly or not at all, take new writes, and carry a new cluster id.
/// A copy with one flipped payload byte and one with a flipped manifest byte fail
/// verification (exit 2, naming the offset or the manifest) and the restore refuses the
/// first; a backup asked for with a writer's certificate is refused.
///
/// Why: a backup is only worth what a restore makes of it; it must hold what was
/// acknowledged, be consistent at one index, and never be trusted when damaged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t190_backup_under_load_restores_into_a_new_cluster() -> Result<()> {
    init_tracing();
    within("t190", Duration::from_secs(180), run()).await
}

async fn run() -> Result<()> {
    let source = Cluster::start(ClusterOptions::default()).await?;
    let history = Arc::new(History::new());
    source.write_many(&history, "t190/a", BEFORE, 4).await?;
    let leader = source.leader(Duration::from_secs(10)).await?;

    tracing::info!("--- batches go on while a backup is taken from a follower");
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let writer = source.client(leader, ClientRole::Writer)?;
    let load = {
        let (stop, acked) = (stop.clone(), acked.clone());
        tokio::spawn(async move {
            let mut storage = writer.storage.clone();
            for n in 1..=2_000u64 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if storage.batch(batch("t190-load", n, n)).await.is_ok() {
                    acked.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let file = source.dir().join("t190.sutra-backup");
    let file_s = file.display().to_string();
    let CliRun {
        code,
        stdout: out,
        stderr: err,
    } = source.sutra(
        ClientRole::Admin,
        &["--output", "json", "backup", "save", &file_s],
    )?;
    ensure!(code == Some(0), "backup save: {out}{err}");
    stop.store(true, Ordering::Relaxed);
    load.await?;
    let saved: serde_json::Value = serde_json::from_str(&out)?;
    ensure!(
        saved["source_node"].as_u64() != Some(leader),
        "the backup came from the leader: {saved}"
    );
    ensure!(
        acked.load(Ordering::Relaxed) > 0,
        "no batch was acknowledged"
    );
    tracing::info!(%saved, "backup saved");

    tracing::info!("--- verify proves it offline");
    let CliRun {
        code,
        stdout: out,
        stderr: err,
    } = source.sutra(
        ClientRole::Reader,
        &["--output", "json", "backup", "verify", &file_s],
    )?;
    ensure!(code == Some(0), "backup verify: {out}{err}");
    let verified: serde_json::Value = serde_json::from_str(&out)?;
    let manifest = &verified["manifest"];
    ensure!(
        manifest["content_hash"] == saved["content_hash"],
        "{verified}"
    );
    let index = manifest["applied_index"].as_u64().context("an index")?;

    tracing::info!("--- a writer may not take a backup");
    let refused = source
        .client(leader, ClientRole::Writer)?
        .cluster
        .clone()
        .backup(BackupRequest::default())
        .await;
    match refused {
        Err(s) => ensure!(s.code() == tonic::Code::PermissionDenied, "{s:?}"),
        Ok(_) => anyhow::bail!("a writer's backup call was accepted"),
    }

    tracing::info!("--- damaged copies are refused");
    let len = std::fs::metadata(&file)?.len() as usize;
    let bad_payload = damaged_copy(&file, "payload.bad", 16 + 8 + 100)?;
    let CliRun {
        code, stdout: out, ..
    } = source.sutra(
        ClientRole::Reader,
        &["backup", "verify", &bad_payload.display().to_string()],
    )?;
    ensure!(
        code == Some(2),
        "a flipped payload byte: exit {code:?}: {out}"
    );
    ensure!(out.contains("offset 16") && out.contains("CRC32C"), "{out}");
    let bad_manifest = damaged_copy(&file, "manifest.bad", len - 44 - 30)?;
    let CliRun {
        code, stdout: out, ..
    } = source.sutra(
        ClientRole::Reader,
        &["backup", "verify", &bad_manifest.display().to_string()],
    )?;
    ensure!(
        code == Some(2),
        "a flipped manifest byte: exit {code:?}: {out}"
    );
    ensure!(out.contains("manifest"), "{out}");
    let scratch = source.dir().join("refused");
    let restore = Command::new(node_binary()?)
        .args([
            "restore",
            "--node-id",
            "1",
            "--initial-members",
            "1=127.0.0.1:1/127.0.0.1:2",
        ])
        .arg("--backup")
        .arg(&bad_payload)
        .arg("--data-dir")
        .arg(&scratch)
        .output()?;
    ensure!(!restore.status.success(), "restore took a damaged backup");
    ensure!(
        !scratch.exists(),
        "a refused restore left {}",
        scratch.display()
    );

    tracing::info!(index, "--- three new nodes restored from the backup");
    let restored = Cluster::start(ClusterOptions {
        restore_from: Some(file.clone()),
        ..ClusterOptions::default()
    })
    .await?;
    let new_leader = restored.leader(Duration::from_secs(20)).await?;
    let (hash, at) = content_hash(&restored, new_leader).await?;
    ensure!(
        hash == manifest["content_hash"].as_str().unwrap_or_default(),
        "restored content {hash} at {at}, the backup's {} at {index}",
        manifest["content_hash"]
    );
    ensure!(
        at > index,
        "the restored cluster starts at {at}, the backup at {index}"
    );
    let all = restored
        .read_all(
            new_leader,
            ClientRole::Reader,
            "t190/",
            linearizable(),
            Duration::from_secs(20),
        )
        .await?;
    let report = check_scan(
        &history.ops(),
        &all.iter()
            .filter(|(k, _)| k.starts_with("t190/a"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )?;
    ensure!(report.acknowledged == BEFORE, "{report:?}");
    let mut per_batch = std::collections::BTreeMap::<String, usize>::new();
    for id in all.keys().filter(|k| k.starts_with("t190/batch")) {
        let b = id
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .unwrap_or_default();
        *per_batch.entry(b).or_default() += 1;
    }
    ensure!(
        per_batch.values().all(|&n| n == BATCH_OPS),
        "a batch half restored: {per_batch:?}"
    );
    restored
        .writer("t190-after", Duration::from_secs(10))?
        .put("t190/after", b"new cluster")
        .await
        .into_ok()?;
    let (old_id, new_id) = (source.cluster_id(1)?, restored.cluster_id(1)?);
    ensure!(
        old_id != new_id,
        "the restored cluster kept the id {old_id}"
    );
    restored.finish();
    source.finish();
    Ok(())
}
