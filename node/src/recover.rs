//! `sutra-node force-new-cluster`: brings a cluster back after it lost its quorum for
//! good, from the survivor with the furthest log (etcd's `--force-new-cluster`). Run it
//! on that node while it is stopped: every entry its log holds is applied (committed or
//! not, so no acknowledged write is lost), then its data directory becomes the only
//! member of a new cluster, with a cluster id of its own (the old members, should they
//! come back, are refused rather than mixed in). The directory as it was is kept beside
//! it as `DIR.before-force-new-cluster-<unix time>`. Start the node as usual; add the
//! other members back as new nodes (`sutra cluster add-learner`, then `sutra cluster
//! change-membership`).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use sutra_backup::BackupWriter;
use sutra_engine::{EngineConfig, StoreParams};
use sutra_raft::{LogStore, StateMachine};

use crate::config::MemberSpec;
use crate::restore::{RestoreArgs, RestoreError, Restored};

/// Flags of `sutra-node force-new-cluster`.
#[derive(Debug, clap::Args)]
pub struct ForceNewClusterArgs {
    /// The survivor's data directory (the node must be stopped).
    #[arg(long, env = "SUTRA_DATA_DIR")]
    pub data_dir: PathBuf,
    /// This node, `ID=RAFT_ADDR/API_ADDR`: the new cluster's only member.
    #[arg(long)]
    pub member: MemberSpec,
}

/// Makes the survivor in `args.data_dir` a new one-node cluster.
pub async fn run(args: &ForceNewClusterArgs) -> Result<Restored, RestoreError> {
    let dir = &args.data_dir;
    let io = |op: &'static str, path: PathBuf| move |source| RestoreError::Io { op, path, source };
    let config = EngineConfig {
        params: StoreParams::UNSET,
        ..EngineConfig::default()
    };
    let mut sm = StateMachine::open(dir.join("sm"), config)?;
    let mut log = LogStore::open(dir.join("raft"))?;
    let applied = sutra_raft::restore::apply_whole_log(&mut sm, &mut log).await?;
    drop(log);
    let engine = sm.engine().clone();
    let (snap, digest) = engine
        .snapshot_with_digest()
        .map_err(sutra_backup::Error::from)?;
    let identity = sutra_raft::ClusterIdentity::open(dir.join(crate::server::CLUSTER_ID_FILE))
        .map_err(io("read", dir.join(crate::server::CLUSTER_ID_FILE)))?;
    let manifest = crate::service::backup::manifest(
        args.member.id,
        identity.get().unwrap_or_default(),
        &snap,
        &digest,
    )
    .map_err(RestoreError::Invalid)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = dir
        .file_name()
        .map_or_else(|| "data".into(), |n| n.to_string_lossy().into_owned());
    let sibling = |suffix: String| dir.with_file_name(format!("{name}{suffix}"));
    let backup = sibling(format!(".force-new-cluster-{now}.sutra-backup"));
    let mut writer = BackupWriter::create(&backup)?;
    for (_, chunk) in snap.chunks(sutra_backup::FRAME_BYTES) {
        writer.write(&chunk)?;
    }
    writer.finish(manifest)?;
    drop((snap, engine, sm));

    let rebuilt = sibling(format!(".force-new-cluster-{now}"));
    let restored = crate::restore::run(&RestoreArgs {
        backup: backup.clone(),
        data_dir: rebuilt.clone(),
        node_id: args.member.id,
        initial_members: vec![args.member.clone()],
        cluster_id: None,
        join: false,
        force: false,
        dry_run: false,
    })
    .await;
    let _ = std::fs::remove_file(&backup);
    let restored = restored?;
    let kept = sibling(format!(".before-force-new-cluster-{now}"));
    std::fs::rename(dir, &kept).map_err(io("rename", dir.clone()))?;
    std::fs::rename(&rebuilt, dir).map_err(io("rename", rebuilt.clone()))?;
    tracing::warn!(
        event = "forced_new_cluster",
        data_dir = %dir.display(),
        node_id = args.member.id,
        entries_applied_from_log = applied,
        applied_index = restored.applied_index,
        cluster_id = restored.cluster_id,
        source_cluster_id = restored.source_cluster_id,
        kept = %kept.display(),
        "FORCED A NEW CLUSTER: this node is now the only member of a new cluster, holding every entry its log had; the old directory is kept; start it, then add the other members back as new nodes"
    );
    Ok(restored)
}
