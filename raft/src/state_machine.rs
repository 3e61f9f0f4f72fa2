//! [`StateMachine`]: openraft's state machine over the storage engine.
//!
//! The engine is the state machine and its checkpoint is the state machine's durable
//! state: every applied entry passes its log id and the membership in force to the engine
//! as the opaque `position`, so after a restart `applied_state()` is exactly what the last
//! checkpoint covered and openraft re-applies the committed entries after it from the log.
//!
//! ## Versions
//!
//! The engine requires strictly increasing write versions starting above 0. The engine
//! version of every entry, of any kind, is its log position (`crate::log_position`: the
//! openraft log index + 1), which is also what clients see as a concept's `version`.
//!
//! ## Purging the log
//!
//! The log may only be purged up to what the engine has made durable, or a restart would
//! find neither the data nor the entries to rebuild it. openraft purges only entries that a
//! snapshot covers (`snapshot.last_log_id - max_in_snapshot_log_to_keep`), and building a
//! snapshot checkpoints the engine, so that bound holds by construction. The node should
//! configure:
//!
//! - `snapshot_policy = LogsSinceLast(n)`: how often to checkpoint-and-snapshot (each one
//!   syncs and checksums what was written since the last: e.g. 10 000–50 000 entries);
//! - `max_in_snapshot_log_to_keep`: the tail kept behind the snapshot so that a slow or
//!   restarting follower catches up from the log rather than a full snapshot (e.g. equal
//!   to `n`);
//! - `replication_lag_threshold` above `n`, as openraft advises, and `purge_batch_size`
//!   moderate (e.g. 256) so purges are few, large range deletes.
//!
//! Periodic or explicit engine checkpoints (`Flush`) only move the durable point forward,
//! so they never break the bound either.

use std::io;
use std::path::Path;
use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::type_config::TypeConfigExt;
use openraft::{EntryPayload, OptionalSend};
use parking_lot::Mutex;
use sutra_engine::{ApplyContext, Engine, EngineConfig, StagedSnapshot, WriteBatch};

use crate::cluster_state::{ClusterState, SharedClusterState};
use crate::command::{ApplyTiming, Command, CommandResponse};
use crate::error::{Error, Result};
use crate::log_position::{self, position_of};
use crate::observer::SharedObserver;
use crate::position::AppliedPosition;
use crate::snapshot::{SnapshotData, stage_local};
use crate::snapshot_builder::{CurrentSnapshot, Snapshot, SnapshotBuilder, meta_of};
use crate::types::{Entry, LogId, SnapshotMeta, StoredMembership, TypeConfig};

/// How long a stalled apply waits for room before it tries again.
const NO_SPACE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// The Raft state machine: applies committed entries to the engine, builds and installs
/// snapshots.
#[derive(Debug)]
pub struct StateMachine {
    engine: Engine,
    /// Membership as of the last applied entry; encoded into every position.
    last_membership: StoredMembership,
    /// Cluster state as of the last applied entry; encoded into every position.
    cluster: ClusterState,
    /// The same, for the rest of the node.
    shared: SharedClusterState,
    current: CurrentSnapshot,
    /// Told of every snapshot installed.
    observer: Option<SharedObserver>,
}

impl StateMachine {
    /// Opens the engine in `dir` (recovering it to its last checkpoint) and the state
    /// machine over it.
    pub fn open(dir: impl AsRef<Path>, config: EngineConfig) -> Result<Self> {
        let engine = Engine::open(dir, config).map_err(Error::engine("open"))?;
        Self::new(engine)
    }

    /// A state machine over an open engine.
    pub fn new(engine: Engine) -> Result<Self> {
        let pos = AppliedPosition::decode(&engine.applied().1)?;
        tracing::info!(last_applied = ?pos.last_applied, params = pos.cluster.params.is_some(), "raft state machine open");
        let shared = SharedClusterState::default();
        shared.set(pos.cluster.clone());
        Ok(Self {
            engine,
            last_membership: pos.last_membership,
            cluster: pos.cluster,
            shared,
            current: Arc::new(Mutex::new(None)),
            observer: None,
        })
    }

    /// Tells `observer` of every snapshot this state machine installs.
    pub fn with_observer(mut self, observer: SharedObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The replicated cluster state as this state machine keeps it current (take it
    /// before the state machine moves into `Raft::new`).
    pub fn cluster_state(&self) -> SharedClusterState {
        self.shared.clone()
    }

    /// The engine, for reads. Clones share the store.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn applied_position(&self) -> Result<AppliedPosition> {
        AppliedPosition::decode(&self.engine.applied().1)
    }

    /// Applies one entry. Engine failures are storage errors: openraft stops the node.
    /// Nothing an entry says makes it fail: a write the engine refuses is a rejection in
    /// the response, and cluster-state entries always apply.
    fn apply_entry(&mut self, entry: &Entry) -> Result<CommandResponse> {
        let log_id = entry.log_id();
        let log_index = log_id.index;
        let empty = WriteBatch::default();
        // Entries other than writes go through the engine as empty writes so that the
        // applied position (with the membership and the cluster state) advances in the
        // same checkpoint as the data.
        // What the entry changes is computed first and kept only once the engine applied
        // it: an apply that waits for disk space runs again from the same state.
        let mut cluster = self.cluster.clone();
        let mut membership = self.last_membership.clone();
        let (batch, time_ms) = match &entry.payload {
            EntryPayload::Normal(Command::Write { batch, time_ms }) => (batch, *time_ms),
            EntryPayload::Normal(Command::SetParams(params)) => {
                if cluster.params.is_none() {
                    // A node whose own store was made with other parameters cannot be
                    // a replica of this cluster: it stops (a storage error), the others
                    // go on.
                    self.engine
                        .adopt_params(params.store_params())
                        .map_err(Error::engine("adopt the cluster's parameters"))?;
                    tracing::info!(event = "cluster_params_applied", cluster_id = %params.cluster_id, "cluster parameters applied");
                    cluster.params = Some(params.clone());
                }
                (&empty, 0)
            }
            EntryPayload::Normal(Command::Alarm { alarm, active }) => {
                let changed = if *active {
                    cluster.alarms.insert(*alarm)
                } else {
                    cluster.alarms.remove(alarm)
                };
                if changed {
                    tracing::warn!(event = if *active { "alarm_raised" } else { "alarm_cleared" }, %alarm, active, "alarm");
                }
                (&empty, 0)
            }
            EntryPayload::Blank => (&empty, 0),
            EntryPayload::Membership(m) => {
                let before: Vec<_> = self
                    .last_membership
                    .membership()
                    .nodes()
                    .map(|(id, _)| *id)
                    .collect();
                let after = m.nodes().map(|(id, _)| *id).collect();
                cluster.note_membership(before, &after);
                membership = StoredMembership::new(Some(log_id), m.clone());
                (&empty, 0)
            }
        };
        let position = AppliedPosition {
            last_applied: Some(log_id),
            last_membership: membership.clone(),
            cluster: cluster.clone(),
        }
        .encode()?;
        let outcome = self
            .engine
            .apply(
                batch,
                ApplyContext {
                    version: log_position::position(log_index),
                    position: &position,
                    time_ms,
                },
            )
            .map_err(Error::engine("apply"))?;
        self.last_membership = membership;
        if cluster != self.cluster {
            self.shared.set(cluster.clone());
            self.cluster = cluster;
        }
        Ok(CommandResponse {
            log_index,
            outcome,
            applied: Default::default(),
        })
    }

    /// Applies `entry`; while the disk is too full for the data file to grow, waits and
    /// tries again instead of stopping the node: nothing changed, the node keeps serving
    /// reads and its NOSPACE alarm makes the cluster read-only until space is freed.
    async fn apply_waiting_for_space(&mut self, entry: &Entry) -> Result<CommandResponse> {
        let mut waited = 0u32;
        loop {
            match self.apply_entry(entry) {
                Err(e) if e.is_no_space() => {
                    if waited.is_multiple_of(30) {
                        tracing::error!(error = %e, log_index = entry.log_id().index, "disk full: applying is stalled until there is room");
                    }
                    waited = waited.saturating_add(1);
                    tokio::time::sleep(NO_SPACE_RETRY).await;
                }
                other => return other,
            }
        }
    }

    async fn install(&mut self, meta: &SnapshotMeta, data: SnapshotData) -> Result<()> {
        let engine = self.engine.clone();
        let want = meta.clone();
        let installed = TypeConfig::spawn_blocking(move || -> Result<sutra_engine::Snapshot> {
            let staged = match data {
                SnapshotData::Local(snap) => stage_local(&engine, &snap)?,
                SnapshotData::Received(staged) => staged,
            };
            check_staged(&staged, &want)?;
            // The engine hands back a readable handle on what it installed, for
            // get_current_snapshot.
            engine
                .install_snapshot(staged)
                .map_err(Error::engine("install snapshot"))
        })
        .await
        .map_err(|e| Error::Task {
            op: "install snapshot",
            reason: e.to_string(),
        })??;
        let installed_meta = meta_of(&installed)?;
        assert_eq!(
            &installed_meta, meta,
            "engine state right after install differs from the installed snapshot"
        );
        self.last_membership = meta.last_membership.clone();
        self.cluster = self.applied_position()?.cluster;
        self.shared.set(self.cluster.clone());
        *self.current.lock() = Some((installed_meta, installed));
        if let Some(observer) = &self.observer {
            observer.snapshot_installed();
        }
        tracing::info!(event = "snapshot_installed", last_log_id = ?meta.last_log_id, "snapshot installed");
        Ok(())
    }
}

/// Checks that a staged snapshot's data is what `meta` describes: the last applied log id,
/// the membership and the engine version. The network checks a received snapshot with this
/// before handing it to openraft, so a bad one is refused instead of stopping the node.
pub(crate) fn check_staged(staged: &StagedSnapshot, meta: &SnapshotMeta) -> Result<()> {
    let pos = AppliedPosition::decode(staged.position())?;
    let want_version = position_of(meta.last_log_id.as_ref());
    if pos.last_applied != meta.last_log_id
        || pos.last_membership != meta.last_membership
        || staged.version() != want_version
    {
        return Err(Error::SnapshotMismatch {
            reason: format!(
                "data is at {:?} (version {}), metadata says {:?}",
                pos.last_applied,
                staged.version(),
                meta.last_log_id
            ),
        });
    }
    Ok(())
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> io::Result<(Option<LogId>, StoredMembership)> {
        let pos = self.applied_position()?;
        Ok((pos.last_applied, pos.last_membership))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn apply<S>(&mut self, mut entries: S) -> io::Result<()>
    where
        S: Stream<Item = io::Result<EntryResponder<TypeConfig>>> + Unpin + OptionalSend,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let started = std::time::Instant::now();
            let mut response = self.apply_waiting_for_space(&entry).await?;
            if let Some(responder) = responder {
                response.applied = ApplyTiming {
                    started: Some(started),
                    elapsed: started.elapsed(),
                };
                responder.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            engine: self.engine.clone(),
            current: self.current.clone(),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(last_log_id = ?meta.last_log_id))]
    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> io::Result<()> {
        Ok(self.install(meta, snapshot).await?)
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<Snapshot>> {
        Ok(self.current.lock().as_ref().map(|(meta, snap)| Snapshot {
            meta: meta.clone(),
            snapshot: SnapshotData::Local(snap.clone()),
        }))
    }
}
