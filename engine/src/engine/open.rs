//! Opening a store: locking its directory, then recovering it from its checkpoint or
//! creating it (data file header, first checkpoint).

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, OnceLock};

use parking_lot::{Condvar, Mutex, RwLock};

use super::recovery::recover;
use super::{DATA_FILE, Engine, Inner, State};
use crate::checkpoint::{self, Checkpoint};
use crate::config::EngineConfig;
use crate::digest::DataDigest;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::record::{FileHeader, HEADER_LEN};

const LOCK_FILE: &str = "LOCK";

impl Engine {
    /// Opens the store in `dir`, creating it if the directory holds none.
    ///
    /// Recovery: read `checkpoint`, cut `storage.dat` back to the durable length it
    /// names (anything after may be torn and is re-applied from the Raft log), check
    /// every record's CRC32C and rebuild the index. A bad record inside the durable
    /// region is [`Error::Corrupted`] with file and offset; nothing is skipped.
    pub fn open(dir: impl AsRef<Path>, config: EngineConfig) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| Error::io("create store directory", &dir, e))?;
        let lock = lock_dir(&dir)?;
        let state = match Checkpoint::load(&dir)? {
            None => create(&dir, &config)?,
            Some(ck) => recover(&dir, &config, ck)?,
        };
        tracing::info!(
            dir = %dir.display(),
            concepts = state.index.concept_count(),
            edges = state.index.edge_count,
            data_bytes = state.data_len,
            version = state.last_version,
            "storage engine open"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                dir,
                config,
                state: RwLock::new(state),
                checkpoint_lock: Mutex::new(()),
                poisoned: OnceLock::new(),
                compacting: AtomicBool::new(false),
                installing: AtomicBool::new(false),
                compactions: Mutex::new(0),
                compaction_done: Condvar::new(),
                checkpoints: AtomicU64::new(0),
                prefix_crc: Mutex::default(),
                _lock: lock,
            }),
        })
    }
}

fn create(dir: &Path, config: &EngineConfig) -> Result<State> {
    let path = dir.join(DATA_FILE);
    if let Ok(meta) = fs::metadata(&path)
        && meta.len() > HEADER_LEN
    {
        return Err(Error::corrupted(
            dir.join(checkpoint::CHECKPOINT_FILE),
            0,
            format!(
                "checkpoint is missing but {} holds {} bytes",
                path.display(),
                meta.len()
            ),
        ));
    }
    let header = FileHeader {
        params: config.params,
        file_id: new_file_id(),
    };
    // Only the header until the first checkpoint exists: a crash in between leaves a
    // file that open recognises as an unfinished creation, not as data without a checkpoint.
    let data = crate::file::DataFile::create(&path, &header, config.max_file_bytes, HEADER_LEN)?;
    data.sync(HEADER_LEN)?;
    checkpoint::sync_dir(dir)?;
    let state = State::new(
        Arc::new(data),
        header,
        (Index::default(), DataDigest::default()),
        None,
    );
    checkpoint::write_atomically(dir, &state.checkpoint_record().encode())?;
    Ok(state)
}

fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("open lock file", &path, e))?;
    // SAFETY: plain syscall on an owned, open descriptor.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(Error::Locked { path });
    }
    Ok(f)
}

pub(crate) fn new_file_id() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        // Only uniqueness among this store's files matters; time and pid suffice.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (t.as_nanos() as u64) ^ (u64::from(std::process::id()) << 32)
    })
}
