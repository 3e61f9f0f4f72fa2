//! [`Engine`]: the store's front door. Apply, reads, checkpoints, recovery and
//! compaction; snapshots live in `snapshot.rs`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, OnceLock};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::checkpoint::Checkpoint;
use crate::config::{EngineConfig, Limits, StoreParams};
use crate::digest::DataDigest;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::record::{FileHeader, HEADER_LEN};
use crate::session::SessionTable;

mod apply;
mod compaction;
mod open;
mod persist;
mod read;
mod recovery;

pub use compaction::CompactionReport;
pub use persist::DurableState;
pub use read::EngineStats;
pub(crate) use recovery::{check_params, load_index};

pub(crate) const DATA_FILE: &str = "storage.dat";
pub(crate) const COMPACT_FILE: &str = "storage.dat.compact";
pub(crate) const INSTALL_FILE: &str = "storage.dat.install";

/// The mmap storage engine. Cheap to clone; clones share one store.
///
/// Reads run concurrently with each other and with compaction; `apply` excludes
/// readers only while it updates the index.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) config: EngineConfig,
    pub(crate) state: RwLock<State>,
    /// Serialises everything that writes a checkpoint or swaps the data file.
    pub(crate) checkpoint_lock: Mutex<()>,
    poisoned: OnceLock<&'static str>,
    compacting: AtomicBool,
    /// A snapshot install is staging into `storage.dat.install`.
    pub(crate) installing: AtomicBool,
    compactions: Mutex<u64>,
    compaction_done: Condvar,
    checkpoints: AtomicU64,
    _lock: File,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) data: Arc<crate::file::DataFile>,
    /// Identity of `data`, written into checkpoints.
    pub(crate) file_id: u64,
    pub(crate) params: StoreParams,
    pub(crate) data_len: u64,
    pub(crate) index: Index,
    /// Hashes of the live concepts and edges, changed with the index by `execute`;
    /// compaction leaves it alone (the content does not change).
    pub(crate) digest: DataDigest,
    pub(crate) sessions: SessionTable,
    pub(crate) last_version: u64,
    pub(crate) last_time_ms: u64,
    pub(crate) writes_applied: u64,
    pub(crate) position: Vec<u8>,
    pub(crate) durable: DurableState,
    /// Encode buffers reused by every apply.
    scratch: Vec<u8>,
    lens: Vec<u32>,
}

fn is_sync_failure(e: &Error) -> Option<&'static str> {
    match e {
        Error::Io { op, .. } if op.contains("sync") => Some(op),
        _ => None,
    }
}

impl Engine {
    /// The directory holding the store.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The store's parameters (from its data file, not from the configuration).
    pub fn params(&self) -> StoreParams {
        self.inner.state.read().params
    }

    /// Input limits from the configuration, for validating requests at the edge.
    pub fn limits(&self) -> &Limits {
        &self.inner.config.limits
    }

    pub(crate) fn check_poisoned(&self) -> Result<()> {
        match self.inner.poisoned.get() {
            Some(op) => Err(Error::Poisoned { op }),
            None => Ok(()),
        }
    }

    fn poison(&self, op: &'static str, e: &Error) {
        if self.inner.poisoned.set(op).is_ok() {
            tracing::error!(error = %e, "storage engine poisoned, refusing further writes");
        }
    }

    /// Poisons the engine if `e` is a failed sync; passes `e` through.
    pub(crate) fn note_failure(&self, e: Error) -> Error {
        if let Some(op) = is_sync_failure(&e)
            && self.inner.poisoned.set(op).is_ok()
        {
            tracing::error!(error = %e, "sync failed; storage engine poisoned, refusing further writes");
        }
        e
    }
}

impl State {
    pub(crate) fn new(
        data: Arc<crate::file::DataFile>,
        header: FileHeader,
        (index, digest): (Index, DataDigest),
        ck: Option<Checkpoint>,
    ) -> Self {
        let ck = ck.unwrap_or(Checkpoint {
            file_id: 0,
            durable_len: HEADER_LEN,
            last_version: 0,
            last_time_ms: 0,
            writes_applied: 0,
            concepts: 0,
            position: Vec::new(),
            sessions: SessionTable::default(),
        });
        Self {
            data,
            file_id: header.file_id,
            params: header.params,
            data_len: ck.durable_len,
            index,
            digest,
            sessions: ck.sessions,
            last_version: ck.last_version,
            last_time_ms: ck.last_time_ms,
            writes_applied: ck.writes_applied,
            durable: DurableState {
                data_len: ck.durable_len,
                version: ck.last_version,
                position: ck.position.clone(),
            },
            position: ck.position,
            scratch: Vec::new(),
            lens: Vec::new(),
        }
    }

    pub(crate) fn checkpoint_record(&self) -> Checkpoint {
        Checkpoint {
            file_id: self.file_id,
            durable_len: self.data_len,
            last_version: self.last_version,
            last_time_ms: self.last_time_ms,
            writes_applied: self.writes_applied,
            concepts: self.index.concept_count() as u64,
            position: self.position.clone(),
            sessions: self.sessions.clone(),
        }
    }
}
