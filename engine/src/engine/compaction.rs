//! Compaction: rewriting the live records into a new data file and swapping it in,
//! on request or in the background once enough of the file is garbage.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use parking_lot::RwLockUpgradableReadGuard;

use super::open::new_file_id;
use super::{COMPACT_FILE, DATA_FILE, DurableState, Engine, State};
use crate::checkpoint;
use crate::config::EngineConfig;
use crate::error::{Error, Result};
use crate::file::DataFile;
use crate::index::{Extent, Index};
use crate::record::{self, FileHeader, HEADER_LEN};

/// What a compaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionReport {
    /// Data bytes before.
    pub bytes_before: u64,
    /// Data bytes after.
    pub bytes_after: u64,
    /// Records copied.
    pub records: u64,
}

impl Engine {
    /// Rewrites the live records into a new data file and swaps it in. Readers never
    /// wait on the copy; writers wait only for the final catch-up and the swap.
    pub fn compact(&self) -> Result<CompactionReport> {
        while self.inner.compacting.swap(true, Ordering::AcqRel) {
            self.wait_for_compactions(
                *self.inner.compactions.lock() + 1,
                Duration::from_secs(3600),
            );
        }
        let r = self.compact_now();
        self.inner.compacting.store(false, Ordering::Release);
        r
    }

    /// Blocks until at least `n` compactions have finished in this process, or
    /// `timeout` passes; returns the number finished.
    pub fn wait_for_compactions(&self, n: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let mut done = self.inner.compactions.lock();
        while *done < n {
            if self
                .inner
                .compaction_done
                .wait_until(&mut done, deadline)
                .timed_out()
            {
                break;
            }
        }
        *done
    }

    pub(super) fn wants_compaction(&self, st: &State) -> bool {
        let c = &self.inner.config.compaction;
        let used = st.data_len - HEADER_LEN;
        let garbage = used - st.index.live_bytes;
        c.background
            && garbage >= c.min_garbage_bytes
            && garbage as f64 >= c.garbage_ratio * used as f64
    }

    pub(super) fn spawn_compaction(&self) {
        if self.inner.compacting.swap(true, Ordering::AcqRel) {
            return;
        }
        let engine = self.clone();
        let spawned = std::thread::Builder::new()
            .name("sutra-compact".into())
            .spawn(move || {
                match engine.compact_now() {
                    Ok(r) => tracing::info!(
                        event = "compaction",
                        before = r.bytes_before,
                        after = r.bytes_after,
                        records = r.records,
                        "compaction done"
                    ),
                    Err(e) => tracing::error!(event = "compaction_failed", error = %e, "compaction failed"),
                }
                engine.inner.compacting.store(false, Ordering::Release);
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start compaction thread");
            self.inner.compacting.store(false, Ordering::Release);
        }
    }

    fn compact_now(&self) -> Result<CompactionReport> {
        self.check_poisoned()?;
        let _ck = self.inner.checkpoint_lock.lock();
        let (old, mut copied_to, params, (concepts, edges)) = {
            let st = self.inner.state.read();
            (
                st.data.clone(),
                st.data_len,
                st.params,
                st.index.live_records(),
            )
        };
        let bytes_before = copied_to;
        let live: u64 = concepts
            .iter()
            .chain(&edges)
            .map(|&(_, l)| u64::from(l))
            .sum();
        let path = self.inner.dir.join(COMPACT_FILE);
        let header = FileHeader {
            params,
            file_id: new_file_id(),
        };
        let mut rewrite = Rewrite::create(&path, &header, &old, live, &self.inner.config)?;
        rewrite.copy_live(&concepts, &edges)?;
        // Catch up with writes made meanwhile without blocking anyone, until little is left.
        loop {
            let now = self.inner.state.read().data_len;
            if now - copied_to < (1 << 20) {
                break;
            }
            rewrite.copy_tail(copied_to, now)?;
            copied_to = now;
        }
        // Final catch-up with writers held off (readers continue), then swap.
        let st = self.inner.state.upgradable_read();
        rewrite.copy_tail(copied_to, st.data_len)?;
        let (end, records) = (rewrite.end, rewrite.records);
        self.swap_in(st, rewrite, header.file_id, &path)?;
        *self.inner.compactions.lock() += 1;
        self.inner.compaction_done.notify_all();
        Ok(CompactionReport {
            bytes_before,
            bytes_after: end,
            records,
        })
    }

    /// Makes the rewritten file the store's: a checkpoint naming it, the rename into
    /// place, then the swap of file and index in `st` (writers are held off by `st`
    /// throughout; readers only while it is upgraded for the swap).
    fn swap_in(
        &self,
        st: RwLockUpgradableReadGuard<'_, State>,
        rewrite: Rewrite<'_>,
        file_id: u64,
        path: &Path,
    ) -> Result<()> {
        let Rewrite {
            mut new,
            index,
            end,
            ..
        } = rewrite;
        let mut ck = st.checkpoint_record();
        ck.file_id = file_id;
        ck.durable_len = end;
        self.persist(&new, &ck)?;
        let dst = self.inner.dir.join(DATA_FILE);
        if let Err(e) = fs::rename(path, &dst) {
            // The checkpoint already names the new file; recovery completes the rename,
            // but this process must not write on with the old one.
            let e = Error::io("rename compacted data file", &dst, e);
            self.poison("rename compacted data file", &e);
            return Err(e);
        }
        checkpoint::sync_dir(&self.inner.dir).map_err(|e| self.note_failure(e))?;
        new.set_path(dst);
        let mut st = RwLockUpgradableReadGuard::upgrade(st);
        st.data = Arc::new(new);
        st.file_id = file_id;
        st.index = index;
        st.data_len = end;
        st.durable = DurableState {
            data_len: end,
            version: ck.last_version,
            position: ck.position,
        };
        Ok(())
    }
}

/// The new data file a compaction writes, and the index of what it holds so far.
struct Rewrite<'a> {
    old: &'a DataFile,
    new: DataFile,
    grow_step: u64,
    index: Index,
    /// End of the records copied so far.
    end: u64,
    records: u64,
}

impl<'a> Rewrite<'a> {
    /// Creates the new file at `path` with room for `live` bytes of records.
    fn create(
        path: &Path,
        header: &FileHeader,
        old: &'a DataFile,
        live: u64,
        cfg: &EngineConfig,
    ) -> Result<Self> {
        let new = DataFile::create(
            path,
            header,
            cfg.max_file_bytes,
            HEADER_LEN + live + cfg.grow_step_bytes,
        )?;
        Ok(Self {
            old,
            new,
            grow_step: cfg.grow_step_bytes,
            index: Index::default(),
            end: HEADER_LEN,
            records: 0,
        })
    }

    /// Copies the live records, which fit the room the file was created with.
    fn copy_live(&mut self, concepts: &[Extent], edges: &[Extent]) -> Result<()> {
        let old = self.old;
        // Concepts first, then edges: the new file must replay with every edge after its ends.
        for &(offset, len) in concepts.iter().chain(edges) {
            let bytes = old.bytes(offset, u64::from(len));
            let rec = record::read(bytes).map_err(|r| Error::corrupted(old.path(), offset, r))?;
            // SAFETY: `new` is private to this compaction until it is swapped in.
            unsafe { self.new.write_at(self.end, bytes) };
            self.index
                .replay(&rec, self.end)
                .map_err(|r| Error::corrupted(old.path(), offset, r))?;
            self.end += u64::from(len);
            self.records += 1;
        }
        Ok(())
    }

    /// Copies the records in [from, to) of the old file, indexing them at their new offsets.
    fn copy_tail(&mut self, mut at: u64, to: u64) -> Result<()> {
        let old = self.old;
        while at < to {
            let bytes = old.bytes(at, to - at);
            let rec = record::read(bytes).map_err(|r| Error::corrupted(old.path(), at, r))?;
            let bytes = &bytes[..rec.len as usize];
            self.new
                .ensure_capacity(self.end + u64::from(rec.len), self.grow_step)?;
            // SAFETY: as above.
            unsafe { self.new.write_at(self.end, bytes) };
            self.index
                .replay(&rec, self.end)
                .map_err(|r| Error::corrupted(old.path(), at, r))?;
            self.end += u64::from(rec.len);
            at += u64::from(rec.len);
            self.records += 1;
        }
        Ok(())
    }
}
