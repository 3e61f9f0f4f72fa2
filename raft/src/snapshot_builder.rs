//! [`SnapshotBuilder`]: builds snapshots from the engine on openraft's snapshot task.

use std::io;
use std::sync::Arc;

use openraft::RaftSnapshotBuilder;
use openraft::type_config::TypeConfigExt;
use parking_lot::Mutex;
use sutra_engine::Engine;

use crate::error::{Error, Result};
use crate::position::AppliedPosition;
use crate::snapshot::SnapshotData;
use crate::types::{SnapshotMeta, TypeConfig};

/// openraft's view of a snapshot with our data type.
pub type Snapshot = openraft::type_config::alias::SnapshotOf<TypeConfig, SnapshotData>;

/// The last snapshot built or installed, shared by the state machine and its builders.
pub(crate) type CurrentSnapshot = Arc<Mutex<Option<(SnapshotMeta, sutra_engine::Snapshot)>>>;

/// Builds a snapshot: an engine checkpoint plus the immutable data prefix it covers.
/// Writes go on while it is built and while it is streamed.
#[derive(Debug)]
pub struct SnapshotBuilder {
    pub(crate) engine: Engine,
    pub(crate) current: CurrentSnapshot,
}

/// Openraft metadata for an engine snapshot, from the position stored in it.
pub(crate) fn meta_of(snap: &sutra_engine::Snapshot) -> Result<SnapshotMeta> {
    let pos = AppliedPosition::decode(&snap.meta().position)?;
    Ok(SnapshotMeta {
        last_log_id: pos.last_applied,
        last_membership: pos.last_membership,
    })
}

impl SnapshotBuilder {
    async fn build(&mut self) -> Result<Snapshot> {
        let engine = self.engine.clone();
        let started = std::time::Instant::now();
        // Taking a snapshot checkpoints (msync + fsync) and checksums the data prefix:
        // keep it off the async workers.
        let snap = TypeConfig::spawn_blocking(move || engine.snapshot())
            .await
            .map_err(|e| Error::Task {
                op: "build snapshot",
                reason: e.to_string(),
            })?
            .map_err(Error::engine("snapshot"))?;
        let meta = meta_of(&snap)?;
        tracing::info!(
            event = "snapshot_built",
            last_log_id = ?meta.last_log_id,
            size = snap.meta().size,
            crc32c = snap.meta().crc32c,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "snapshot built"
        );
        {
            // A snapshot installed while this one was being built may be newer: keep the
            // newest, or followers could be sent a snapshot older than the purged log.
            let mut current = self.current.lock();
            if current
                .as_ref()
                .is_none_or(|(m, _)| m.last_log_id <= meta.last_log_id)
            {
                *current = Some((meta.clone(), snap.clone()));
            }
        }
        Ok(Snapshot {
            meta,
            snapshot: SnapshotData::Local(snap),
        })
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotData;

    #[tracing::instrument(level = "debug", skip_all)]
    async fn build_snapshot(&mut self) -> io::Result<Snapshot> {
        Ok(self.build().await?)
    }
}
