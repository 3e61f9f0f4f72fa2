//! [`Engine`]: the store's front door. This module holds the handle, what its clones
//! share, the data file names and poisoning after a failed sync; each job has its own
//! child: `open` (lock, create), `apply`, `read`, `persist` (checkpoints), `compaction`
//! and `recovery`, with `state` for what the lock guards. Snapshots live in
//! `snapshot.rs`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, OnceLock};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::config::{EngineConfig, Limits, StoreParams};
use crate::error::{Error, Result};

mod apply;
mod compaction;
mod open;
mod persist;
mod read;
mod recovery;
mod state;

pub use compaction::CompactionReport;
pub(crate) use open::new_file_id;
pub use persist::DurableState;
pub use read::EngineStats;
pub(crate) use recovery::{check_params, load_index};
pub(crate) use state::State;

pub(crate) const DATA_FILE: &str = "storage.dat";
const COMPACT_FILE: &str = "storage.dat.compact";
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
    /// Checksum of the data file's records, kept from one snapshot to the next.
    pub(crate) prefix_crc: Mutex<crate::prefix_crc::PrefixCrc>,
    _lock: File,
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

    pub(crate) fn poison(&self, op: &'static str, e: &Error) {
        if self.inner.poisoned.set(op).is_ok() {
            tracing::error!(event = "engine_poisoned", error = %e, "storage engine poisoned, refusing further writes");
        }
    }

    /// Poisons the engine if `e` is a failed sync; passes `e` through.
    pub(crate) fn note_failure(&self, e: Error) -> Error {
        if let Some(op) = is_sync_failure(&e)
            && self.inner.poisoned.set(op).is_ok()
        {
            tracing::error!(event = "engine_poisoned", error = %e, "sync failed; storage engine poisoned, refusing further writes");
        }
        e
    }
}
