//! Compaction: rewriting the live records into a new data file and swapping it in,
//! on request or in the background once enough of the file is garbage.

use std::fs;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use parking_lot::RwLockUpgradableReadGuard;

use super::open::new_file_id;
use super::{COMPACT_FILE, DATA_FILE, DurableState, Engine, State};
use crate::checkpoint;
use crate::error::{Error, Result};
use crate::index::Index;
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
                        before = r.bytes_before,
                        after = r.bytes_after,
                        records = r.records,
                        "compaction done"
                    ),
                    Err(e) => tracing::error!(error = %e, "compaction failed"),
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
        let cfg = &self.inner.config;
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
        let mut new = crate::file::DataFile::create(
            &path,
            &header,
            cfg.max_file_bytes,
            HEADER_LEN + live + cfg.grow_step_bytes,
        )?;
        let mut index = Index::default();
        let mut end = HEADER_LEN;
        let mut records = 0u64;
        // Concepts first, then edges: the new file must replay with every edge after its ends.
        for &(offset, len) in concepts.iter().chain(&edges) {
            let bytes = old.bytes(offset, u64::from(len));
            let rec = record::read(bytes).map_err(|r| Error::corrupted(old.path(), offset, r))?;
            // SAFETY: `new` is private to this function until it is swapped in.
            unsafe { new.write_at(end, bytes) };
            index
                .replay(&rec, end)
                .map_err(|r| Error::corrupted(old.path(), offset, r))?;
            end += u64::from(len);
            records += 1;
        }
        // Copies the records in [from, to) of the old file, indexing them at their new offsets.
        let mut copy_tail =
            |mut at: u64, to: u64, index: &mut Index, end: &mut u64| -> Result<()> {
                while at < to {
                    let bytes = old.bytes(at, to - at);
                    let rec =
                        record::read(bytes).map_err(|r| Error::corrupted(old.path(), at, r))?;
                    let bytes = &bytes[..rec.len as usize];
                    new.ensure_capacity(*end + u64::from(rec.len), cfg.grow_step_bytes)?;
                    // SAFETY: as above.
                    unsafe { new.write_at(*end, bytes) };
                    index
                        .replay(&rec, *end)
                        .map_err(|r| Error::corrupted(old.path(), at, r))?;
                    *end += u64::from(rec.len);
                    at += u64::from(rec.len);
                    records += 1;
                }
                Ok(())
            };
        // Catch up with writes made meanwhile without blocking anyone, until little is left.
        loop {
            let now = self.inner.state.read().data_len;
            if now - copied_to < (1 << 20) {
                break;
            }
            copy_tail(copied_to, now, &mut index, &mut end)?;
            copied_to = now;
        }
        // Final catch-up with writers held off (readers continue), then swap.
        let st = self.inner.state.upgradable_read();
        copy_tail(copied_to, st.data_len, &mut index, &mut end)?;
        let mut ck = st.checkpoint_record();
        ck.file_id = header.file_id;
        ck.durable_len = end;
        self.persist(&new, &ck)?;
        let dst = self.inner.dir.join(DATA_FILE);
        if let Err(e) = fs::rename(&path, &dst) {
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
        st.file_id = header.file_id;
        st.index = index;
        st.data_len = end;
        st.durable = DurableState {
            data_len: end,
            version: ck.last_version,
            position: ck.position,
        };
        drop(st);
        *self.inner.compactions.lock() += 1;
        self.inner.compaction_done.notify_all();
        Ok(CompactionReport {
            bytes_before,
            bytes_after: end,
            records,
        })
    }
}
