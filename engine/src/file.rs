//! The memory-mapped data file.
//!
//! The whole `max_file_bytes` range is mapped once, whatever the file's current size,
//! so the mapping never moves and readers hold no lock against growth (LMDB does the
//! same). Only bytes below the file's length may be touched: [`DataFile::bytes`]
//! checks that bound, because touching a mapped page past the end of the file raises
//! SIGBUS.
//!
//! Concurrency contract: bytes below the engine's published data length are immutable
//! while any reader can see them; the single writer (holding the engine's state lock
//! exclusively) writes only at or past that length.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use crate::error::{Error, Result};
use crate::record::{FileHeader, HEADER_LEN};

#[derive(Debug)]
pub(crate) struct DataFile {
    path: PathBuf,
    file: File,
    map: MmapRaw,
    reserved: u64,
    /// Current file length (allocated capacity).
    capacity: AtomicU64,
}

impl DataFile {
    /// Creates `path` (replacing any file there) with `header` and `capacity` bytes allocated.
    pub(crate) fn create(
        path: &Path,
        header: &FileHeader,
        reserved: u64,
        capacity: u64,
    ) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| Error::io("create data file", path, e))?;
        let data = Self::map(path.to_path_buf(), file, reserved)?;
        data.ensure_capacity(capacity.max(HEADER_LEN), 0)?;
        // SAFETY: a fresh file has no readers and the header region is within capacity.
        unsafe { data.write_at(0, &header.encode()) };
        Ok(data)
    }

    /// Opens an existing data file.
    pub(crate) fn open(path: &Path, reserved: u64) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io("open data file", path, e))?;
        Self::map(path.to_path_buf(), file, reserved)
    }

    fn map(path: PathBuf, file: File, reserved: u64) -> Result<Self> {
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat data file", &path, e))?
            .len();
        if len > reserved {
            return Err(Error::FileFull {
                needed: len,
                limit: reserved,
            });
        }
        let map_len = usize::try_from(reserved).map_err(|_| Error::FileFull {
            needed: reserved,
            limit: usize::MAX as u64,
        })?;
        let map = MmapOptions::new()
            .len(map_len)
            .map_raw(&file)
            .map_err(|e| Error::io("mmap data file", &path, e))?;
        Ok(Self {
            path,
            file,
            map,
            reserved,
            capacity: AtomicU64::new(len),
        })
    }

    /// Records the file's new name after a rename (the mapping is unaffected).
    pub(crate) fn set_path(&mut self, path: PathBuf) {
        self.path = path;
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity.load(Ordering::Acquire)
    }

    /// Bytes `[offset, offset + len)`. Panics if the range is past the end of the file.
    pub(crate) fn bytes(&self, offset: u64, len: u64) -> &[u8] {
        let end = offset.checked_add(len).expect("range end overflows");
        assert!(
            end <= self.capacity(),
            "read [{offset}, {end}) past data file capacity {}",
            self.capacity()
        );
        // SAFETY: the range lies inside the mapping and inside the file (checked above),
        // and the engine never writes below its published length, which bounds every
        // range handed out by the index (module contract).
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(offset as usize), len as usize) }
    }

    /// Copies `data` to `offset`.
    ///
    /// # Safety
    /// The caller is the only writer and no reader may be looking at
    /// `[offset, offset + data.len())` (it lies at or past the published length).
    pub(crate) unsafe fn write_at(&self, offset: u64, data: &[u8]) {
        let end = offset + data.len() as u64;
        assert!(
            end <= self.capacity(),
            "write [{offset}, {end}) past data file capacity {}",
            self.capacity()
        );
        // SAFETY: in bounds (checked above); exclusivity is the caller's contract.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.map.as_mut_ptr().add(offset as usize),
                data.len(),
            );
        }
    }

    /// Grows the file to hold at least `needed` bytes, by at least `step`. Space is
    /// allocated (not sparse) so that a full disk fails here, not as SIGBUS on a write.
    pub(crate) fn ensure_capacity(&self, needed: u64, step: u64) -> Result<()> {
        let cap = self.capacity();
        if needed <= cap {
            return Ok(());
        }
        if needed > self.reserved {
            return Err(Error::FileFull {
                needed,
                limit: self.reserved,
            });
        }
        let target = needed.max(cap.saturating_add(step)).min(self.reserved);
        let len = libc::off_t::try_from(target).map_err(|_| Error::FileFull {
            needed,
            limit: self.reserved,
        })?;
        // SAFETY: plain syscall on an owned, open descriptor.
        let rc = unsafe { libc::posix_fallocate(self.file.as_raw_fd(), 0, len) };
        if rc != 0 {
            return Err(Error::io(
                "allocate data file space",
                &self.path,
                std::io::Error::from_raw_os_error(rc),
            ));
        }
        self.capacity.store(target, Ordering::Release);
        Ok(())
    }

    /// Cuts the file to `len` bytes, dropping anything after it. Only during recovery,
    /// before any reader exists.
    pub(crate) fn truncate(&self, len: u64) -> Result<()> {
        self.file
            .set_len(len)
            .map_err(|e| Error::io("truncate data file", &self.path, e))?;
        self.capacity.store(len, Ordering::Release);
        Ok(())
    }

    /// Makes `[0, len)` durable: msync of the range, then fdatasync for the file size.
    pub(crate) fn sync(&self, len: u64) -> Result<()> {
        fail::fail_point!("engine::msync::err", |_| Err(Error::io(
            "msync",
            &self.path,
            std::io::Error::other("failpoint engine::msync::err")
        )));
        if len > 0 {
            self.map
                .flush_range(0, len as usize)
                .map_err(|e| Error::io("msync", &self.path, e))?;
        }
        self.file
            .sync_data()
            .map_err(|e| Error::io("fdatasync", &self.path, e))
    }
}
