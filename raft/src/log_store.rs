//! [`LogStore`]: the Raft log in RocksDB. It is the node's write-ahead log: an entry is
//! durable once its `IOFlushed` callback has fired, and the engine relies on that.
//!
//! ## Layout
//!
//! ```text
//! column family "logs":  key = log index, u64 big-endian (so RocksDB's byte order is index order)
//!                        value = envelope(postcard(Entry))
//! column family "meta":  "vote"          → envelope(postcard(Vote))
//!                        "committed"     → envelope(postcard(Option<LogId>))
//!                        "last_purged"   → envelope(postcard(LogId))
//! envelope(p) = [format u8 = 1][crc32c(p) u32 little-endian][p]
//! ```
//!
//! Keys are the one big-endian integer on disk: RocksDB orders keys bytewise, and only
//! big-endian makes that the numeric order.
//!
//! ## Group commit
//!
//! `append` writes the batch to RocksDB without sync (the entries are readable at once,
//! as openraft requires) and queues its callback for the sync thread. The sync thread
//! takes every callback queued so far, runs one `flush_wal(true)` (an fsync of the WAL
//! covering every write made before it started), then completes them all. Under load many
//! appends share one fsync; no callback fires before an fsync that covers its entries.
//!
//! A failed WAL sync poisons the store: the callbacks waiting on it fail, and every later
//! write is refused. The fsync is never retried: after a failed fsync the kernel may have
//! dropped the dirty pages, so a retry that "succeeds" would prove nothing.

use std::fmt;
use std::io;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::type_config::TypeConfigExt;
use openraft::{OptionalSend, RaftLogReader};
use parking_lot::{Condvar, Mutex};
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, ReadOptions,
    WriteBatch, WriteOptions,
};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::observer::SharedObserver;
use crate::types::{Entry, LogId, TypeConfig, Vote};

mod codec;
use codec::{decode_entry, decode_key, index_bounds, open_envelope, seal_envelope};

/// Column family of log entries.
pub const ENTRIES_CF: &str = "logs";
/// Column family of the vote, committed and purged log ids.
pub const META_CF: &str = "meta";

const KEY_VOTE: &str = "vote";
const KEY_COMMITTED: &str = "committed";
const KEY_LAST_PURGED: &str = "last_purged";

/// `limited_get_log_entries` stops adding entries past this many encoded bytes, so one
/// replication read does not pull an unbounded tail into memory.
const LIMITED_READ_BYTES: usize = 8 << 20;

/// Counters of a [`LogStore`], for metrics and the write benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStoreStats {
    /// `append` calls that wrote a batch.
    pub appends: u64,
    /// Entries written by `append`.
    pub entries_appended: u64,
    /// Encoded bytes written by `append`.
    pub bytes_appended: u64,
    /// Group-commit WAL syncs started.
    pub wal_syncs_started: u64,
    /// Group-commit WAL syncs that succeeded.
    pub wal_syncs: u64,
    /// Append callbacks completed successfully after a sync.
    pub callbacks_flushed: u64,
    /// Synchronous writes (vote, truncate).
    pub sync_writes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    appends: AtomicU64,
    entries_appended: AtomicU64,
    bytes_appended: AtomicU64,
    wal_syncs_started: AtomicU64,
    wal_syncs: AtomicU64,
    callbacks_flushed: AtomicU64,
    sync_writes: AtomicU64,
}

/// What the sync thread and the store handles share.
struct Core {
    db: DB,
    path: PathBuf,
    /// First sync failure; set once, never cleared.
    poisoned: OnceLock<String>,
    counters: Counters,
    /// Told of every successful group-commit sync.
    observer: OnceLock<SharedObserver>,
    queue: Mutex<SyncQueue>,
    wakeup: Condvar,
}

#[derive(Default)]
struct SyncQueue {
    pending: Vec<IOFlushed<TypeConfig>>,
    /// Entries written by the appends whose callbacks are pending.
    entries: u64,
    shutdown: bool,
}

/// Owns the sync thread; dropping the last store handle stops it after a final sync.
struct Syncer {
    core: Arc<Core>,
    thread: Option<JoinHandle<()>>,
}

/// The RocksDB-backed Raft log store. Cheap to clone: clones share one database and one
/// sync thread, and the log reader openraft asks for is such a clone.
#[derive(Clone)]
pub struct LogStore {
    core: Arc<Core>,
    _syncer: Arc<Syncer>,
}

impl fmt::Debug for LogStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogStore")
            .field("path", &self.core.path)
            .field("poisoned", &self.core.poisoned.get())
            .field("stats", &self.stats())
            .finish()
    }
}

impl LogStore {
    /// Opens the log store in `dir`, creating it if needed.
    ///
    /// RocksDB replays its WAL on open. A torn last record (an append whose callback never
    /// fired) is dropped, which the Raft contract allows; damage anywhere else fails the
    /// open instead of silently dropping synced entries after it.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let path = dir.as_ref().to_path_buf();
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_paranoid_checks(true);
        opts.set_keep_log_file_num(4);
        // Not PointInTime (the default): it stops replaying at the first bad record and
        // opens anyway, losing acknowledged entries behind a damaged one without a word.
        opts.set_wal_recovery_mode(rocksdb::DBRecoveryMode::TolerateCorruptedTailRecords);
        // A WAL file is deleted only once every column family with data in it is flushed.
        // "meta" takes a few tiny writes per commit and would rarely fill a memtable on its
        // own, pinning every WAL file; this bound forces it out (default: 4 × memtables).
        opts.set_max_total_wal_size(128 << 20);
        let cfs =
            [ENTRIES_CF, META_CF].map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        let db = DB::open_cf_descriptors(&opts, &path, cfs).map_err(Error::log_store("open"))?;
        let core = Arc::new(Core {
            db,
            path,
            poisoned: OnceLock::new(),
            counters: Counters::default(),
            observer: OnceLock::new(),
            queue: Mutex::new(SyncQueue::default()),
            wakeup: Condvar::new(),
        });
        let thread = {
            let core = core.clone();
            std::thread::Builder::new()
                .name("sutra-raft-wal-sync".into())
                .spawn(move || core.run_sync_loop())
                .map_err(|e| Error::Task {
                    op: "start WAL sync thread",
                    reason: e.to_string(),
                })?
        };
        tracing::info!(path = %core.path.display(), "raft log store open");
        Ok(Self {
            _syncer: Arc::new(Syncer {
                core: core.clone(),
                thread: Some(thread),
            }),
            core,
        })
    }

    /// A copy of the counters.
    pub fn stats(&self) -> LogStoreStats {
        let c = &self.core.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Acquire);
        LogStoreStats {
            appends: get(&c.appends),
            entries_appended: get(&c.entries_appended),
            bytes_appended: get(&c.bytes_appended),
            wal_syncs_started: get(&c.wal_syncs_started),
            wal_syncs: get(&c.wal_syncs),
            callbacks_flushed: get(&c.callbacks_flushed),
            sync_writes: get(&c.sync_writes),
        }
    }

    /// Tells `observer` of every group-commit sync from now on (its duration and the
    /// entries it made durable). Only the first observer set is kept.
    pub fn observe(&self, observer: SharedObserver) {
        if self.core.observer.set(observer).is_err() {
            tracing::warn!("the log store already has an observer; keeping the first");
        }
    }

    /// Whether a failed sync has poisoned the store.
    pub fn is_poisoned(&self) -> bool {
        self.core.poisoned.get().is_some()
    }

    /// The directory of the RocksDB database.
    pub fn path(&self) -> &Path {
        &self.core.path
    }

    /// Makes every write made so far durable with one WAL fsync, for a caller that wrote
    /// without sync and must not go on before it is durable (a restore, before the new
    /// log is put in place). A failure poisons the store, as any failed sync does.
    pub async fn sync(&self) -> Result<()> {
        self.blocking("sync", Core::sync_or_poison).await
    }

    /// Runs a durable write on a blocking thread: a synced write waits for an fsync.
    async fn sync_write(&self, op: &'static str, batch: WriteBatch) -> Result<()> {
        self.blocking(op, move |core| core.write_synced(op, batch))
            .await
    }

    /// Runs `f` on a blocking thread, off the async workers.
    async fn blocking(
        &self,
        op: &'static str,
        f: impl FnOnce(&Core) -> Result<()> + Send + 'static,
    ) -> Result<()> {
        let core = self.core.clone();
        TypeConfig::spawn_blocking(move || f(&core))
            .await
            .map_err(|e| Error::Task {
                op,
                reason: e.to_string(),
            })?
    }
}

impl Core {
    fn cf(&self, name: &'static str) -> &ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column families are created on open")
    }

    fn check_poisoned(&self) -> Result<()> {
        match self.poisoned.get() {
            Some(cause) => Err(Error::Poisoned {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    fn poison(&self, cause: String) {
        if self.poisoned.set(cause.clone()).is_ok() {
            tracing::error!(path = %self.path.display(), %cause, "raft log store poisoned, refusing further writes");
        }
    }

    /// A write made durable before returning. Any failure poisons the store: RocksDB
    /// cannot tell us whether the fsync inside it ran, so nothing after it is trusted.
    fn write_synced(&self, op: &'static str, batch: WriteBatch) -> Result<()> {
        self.check_poisoned()?;
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        if let Err(e) = self.db.write_opt(batch, &wo) {
            self.poison(format!("{op}: {e}"));
            return Err(Error::LogStore { op, source: e });
        }
        self.counters.sync_writes.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// A write readable at once and made durable by the sync thread's next fsync.
    fn write_unsynced(&self, op: &'static str, batch: WriteBatch) -> Result<()> {
        let mut wo = WriteOptions::default();
        wo.set_sync(false);
        self.db.write_opt(batch, &wo).map_err(Error::log_store(op))
    }

    fn read_meta<T: DeserializeOwned>(&self, key: &'static str) -> Result<Option<T>> {
        let Some(bytes) = self
            .db
            .get_pinned_cf(self.cf(META_CF), key)
            .map_err(Error::log_store("read meta"))?
        else {
            return Ok(None);
        };
        open_envelope(&bytes)
            .map(Some)
            .map_err(|reason| Error::CorruptedMeta { key, reason })
    }

    fn last_purged(&self) -> Result<Option<LogId>> {
        self.read_meta(KEY_LAST_PURGED)
    }

    /// Id of the last stored entry, if any.
    fn last_entry_id(&self) -> Result<Option<LogId>> {
        let mut it = self.db.iterator_cf(self.cf(ENTRIES_CF), IteratorMode::End);
        match it.next() {
            None => Ok(None),
            Some(kv) => {
                let (k, v) = kv.map_err(Error::log_store("read last entry"))?;
                let index = decode_key(&k)?;
                Ok(Some(decode_entry(index, &v)?.log_id))
            }
        }
    }

    /// Entries with index in `[start, end)` (`end = None`: to the last), stopping once more
    /// than `byte_budget` encoded bytes are read (never before the first entry). RocksDB
    /// iterators read from an implicit snapshot, so the result is one consistent view.
    fn read_entries(&self, start: u64, end: Option<u64>, byte_budget: usize) -> Result<Vec<Entry>> {
        if end.is_some_and(|end| end <= start) {
            return Ok(Vec::new());
        }
        let mut ro = ReadOptions::default();
        if let Some(end) = end {
            ro.set_iterate_upper_bound(end.to_be_bytes());
        }
        let start_key = start.to_be_bytes();
        let it = self.db.iterator_cf_opt(
            self.cf(ENTRIES_CF),
            ro,
            IteratorMode::From(&start_key, Direction::Forward),
        );
        let mut out: Vec<Entry> = Vec::new();
        let mut bytes = 0usize;
        for kv in it {
            let (k, v) = kv.map_err(Error::log_store("read entries"))?;
            let index = decode_key(&k)?;
            // Entries may be missing before the first one (purged), never between two.
            if let Some(prev) = out.last()
                && index != prev.index() + 1
            {
                return Err(Error::MissingEntry {
                    index: prev.index() + 1,
                });
            }
            out.push(decode_entry(index, &v)?);
            bytes += v.len();
            if bytes > byte_budget {
                break;
            }
        }
        Ok(out)
    }

    /// The sync thread: group commit.
    fn run_sync_loop(&self) {
        loop {
            let (batch, entries) = {
                let mut q = self.queue.lock();
                while q.pending.is_empty() && !q.shutdown {
                    self.wakeup.wait(&mut q);
                }
                if q.pending.is_empty() {
                    return;
                }
                // Counted under the lock: an append that queued before this point is
                // covered by this sync, one that queues after it waits for the next.
                self.counters
                    .wal_syncs_started
                    .fetch_add(1, Ordering::AcqRel);
                (
                    std::mem::take(&mut q.pending),
                    std::mem::take(&mut q.entries),
                )
            };
            let started = Instant::now();
            match self.sync_or_poison() {
                Ok(()) => {
                    if let Some(observer) = self.observer.get() {
                        observer.wal_synced(started.elapsed(), entries);
                    }
                    self.counters.wal_syncs.fetch_add(1, Ordering::AcqRel);
                    self.counters
                        .callbacks_flushed
                        .fetch_add(batch.len() as u64, Ordering::AcqRel);
                    tracing::trace!(callbacks = batch.len(), "WAL synced");
                    for cb in batch {
                        cb.io_completed(Ok(()));
                    }
                }
                Err(e) => {
                    for cb in batch {
                        cb.io_completed(Err(io::Error::other(e.to_string())));
                    }
                }
            }
        }
    }

    /// One WAL fsync. A failed one poisons the store, and a poisoned store never syncs
    /// again: a failed fsync is never retried, so whatever waits after it fails too.
    fn sync_or_poison(&self) -> Result<()> {
        self.check_poisoned()?;
        self.sync_wal().inspect_err(|e| self.poison(e.to_string()))
    }

    fn sync_wal(&self) -> Result<()> {
        fail::fail_point!("raft::log_store::sync::err", |_| Err(Error::SyncFailed {
            cause: "injected by failpoint raft::log_store::sync::err".into(),
        }));
        self.db.flush_wal(true).map_err(|e| Error::SyncFailed {
            cause: e.to_string(),
        })
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.core.queue.lock().shutdown = true;
        self.core.wakeup.notify_all();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("WAL sync thread panicked");
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<Entry>> {
        let (start, end) = index_bounds(&range);
        Ok(self.core.read_entries(start, end, usize::MAX)?)
    }

    async fn read_vote(&mut self) -> io::Result<Option<Vote>> {
        Ok(self.core.read_meta(KEY_VOTE)?)
    }

    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> io::Result<Vec<Entry>> {
        Ok(self
            .core
            .read_entries(start, Some(end), LIMITED_READ_BYTES)?)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> io::Result<LogState<TypeConfig>> {
        let last_purged_log_id = self.core.last_purged()?;
        let last_log_id = match self.core.last_entry_id()? {
            Some(id) => Some(id),
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(vote = %vote))]
    async fn save_vote(&mut self, vote: &Vote) -> io::Result<()> {
        self.core.check_poisoned()?;
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.core.cf(META_CF),
            KEY_VOTE,
            seal_envelope("vote", vote)?,
        );
        Ok(self.sync_write("save vote", batch).await?)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> io::Result<()> {
        self.core.check_poisoned()?;
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.core.cf(META_CF),
            KEY_COMMITTED,
            seal_envelope("committed log id", &committed)?,
        );
        // Not synced: the committed id is a hint that lets a restart re-apply up to it
        // sooner; losing the latest one is safe (openraft learns the commit index from the
        // leader again). The next WAL sync by the group-commit thread makes it durable.
        Ok(self.core.write_unsynced("save committed", batch)?)
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogId>> {
        let stored: Option<Option<LogId>> = self.core.read_meta(KEY_COMMITTED)?;
        Ok(stored.flatten())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(entries))]
    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> io::Result<()>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let core = &self.core;
        core.check_poisoned()?;
        let cf = core.cf(ENTRIES_CF);
        let mut batch = WriteBatch::default();
        let (mut n, mut bytes, mut prev) = (0u64, 0u64, None::<u64>);
        for entry in entries {
            let index = entry.index();
            // openraft hands over consecutive entries; a gap here would become a hole.
            assert!(
                prev.is_none_or(|p| p + 1 == index),
                "append: entry {index} does not follow {prev:?}"
            );
            let value = seal_envelope("log entry", &entry)?;
            bytes += value.len() as u64;
            batch.put_cf(cf, index.to_be_bytes(), value);
            n += 1;
            prev = Some(index);
        }
        tracing::Span::current().record("entries", n);
        if n > 0 {
            // Not synced here: the sync thread's fsync covers this write before the callback.
            core.write_unsynced("append", batch)?;
            let c = &core.counters;
            c.appends.fetch_add(1, Ordering::AcqRel);
            c.entries_appended.fetch_add(n, Ordering::AcqRel);
            c.bytes_appended.fetch_add(bytes, Ordering::AcqRel);
        }
        {
            let mut q = core.queue.lock();
            q.pending.push(callback);
            q.entries += n;
        }
        core.wakeup.notify_one();
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(after = ?last_log_id.as_ref().map(|l| l.index)))]
    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> io::Result<()> {
        self.core.check_poisoned()?;
        let from = last_log_id.map_or(0, |l| l.index + 1);
        let mut batch = WriteBatch::default();
        // One range tombstone removes the whole tail at once, so no hole can appear.
        batch.delete_range_cf(
            self.core.cf(ENTRIES_CF),
            from.to_be_bytes(),
            u64::MAX.to_be_bytes(),
        );
        batch.delete_cf(self.core.cf(ENTRIES_CF), u64::MAX.to_be_bytes());
        Ok(self.sync_write("truncate", batch).await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(upto = log_id.index))]
    async fn purge(&mut self, log_id: LogId) -> io::Result<()> {
        self.core.check_poisoned()?;
        if self.core.last_purged()?.is_some_and(|p| p >= log_id) {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        // The purged id and the deletion land atomically: the log never looks as if it
        // started later than `last_purged + 1`.
        batch.put_cf(
            self.core.cf(META_CF),
            KEY_LAST_PURGED,
            seal_envelope("purged log id", &log_id)?,
        );
        batch.delete_range_cf(
            self.core.cf(ENTRIES_CF),
            0u64.to_be_bytes(),
            log_id.index.saturating_add(1).to_be_bytes(),
        );
        // Not synced: openraft awaits `purge` on its core task, so an fsync here (slow
        // while a checkpoint's writeback fills the disk) would hold back heartbeats and
        // votes. Losing the latest purge is safe: the entries it removes are covered by a
        // durable snapshot and are simply purged again. The batch is atomic, so the log
        // never starts later than `last_purged + 1`; the next WAL sync makes it durable.
        Ok(self.core.write_unsynced("purge", batch)?)
    }
}
