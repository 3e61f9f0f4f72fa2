//! Snapshots: a consistent, immutable view of the store that can be streamed to another
//! node in chunks while writes go on, and installed there atomically.
//!
//! The data file is append-only, so the prefix a checkpoint covers never changes: a
//! snapshot is that checkpoint plus that prefix. The byte stream is
//!
//! ```text
//! 0 magic "SUTRASNP" | 8 u32 format | 12 u32 zero | 16 u64 checkpoint_len | 24 u64 data_len
//! 32 checkpoint bytes | data file bytes [0, data_len)
//! ```
//!
//! and [`SnapshotMeta::crc32c`] covers all of it. The receiver writes the data part
//! straight to disk (memory stays bounded by the chunk size), checks length and checksum,
//! and only then swaps the new files in.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;

use crate::checkpoint::{self, Checkpoint};
use crate::codec::{Put, Reader};
use crate::digest::ContentDigest;
use crate::engine::{
    DATA_FILE, Engine, INSTALL_FILE, Inner, State, check_params, load_index, new_file_id,
};
use crate::error::{Error, Result};
use crate::file::DataFile;
use crate::prefix_crc::PrefixCrc;
use crate::record::{FileHeader, HEADER_LEN};

const MAGIC: &[u8; 8] = b"SUTRASNP";
const FORMAT_VERSION: u32 = 1;
const PREAMBLE_LEN: usize = 32;

/// Identity and integrity of a snapshot stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMeta {
    /// Version of the last write the snapshot contains.
    pub version: u64,
    /// Opaque applied position stored with it.
    pub position: Vec<u8>,
    /// Length of the byte stream.
    pub size: u64,
    /// CRC32C of the byte stream.
    pub crc32c: u32,
}

/// A readable snapshot. Holding it keeps its data file mapped, even across a
/// compaction that replaces the file.
#[derive(Debug, Clone)]
pub struct Snapshot {
    data: Arc<DataFile>,
    /// Preamble and checkpoint bytes.
    head: Vec<u8>,
    data_len: u64,
    meta: SnapshotMeta,
}

impl Snapshot {
    /// Length, checksum and position of the stream.
    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    /// Copies stream bytes starting at `offset` into `buf`; returns how many (0 at the end).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> usize {
        let head_len = self.head.len() as u64;
        if offset >= self.meta.size {
            return 0;
        }
        let n = (self.meta.size - offset).min(buf.len() as u64) as usize;
        let mut done = 0;
        if offset < head_len {
            let take = ((head_len - offset) as usize).min(n);
            buf[..take].copy_from_slice(&self.head[offset as usize..offset as usize + take]);
            done = take;
        }
        if done < n {
            let data_off = offset + done as u64 - head_len;
            buf[done..n].copy_from_slice(self.data.bytes(data_off, (n - done) as u64));
        }
        n
    }

    /// Splits the stream into chunks of at most `chunk` bytes.
    pub fn chunks(&self, chunk: usize) -> impl Iterator<Item = (u64, Vec<u8>)> + '_ {
        assert!(chunk > 0, "chunk size must be positive");
        let mut offset = 0u64;
        std::iter::from_fn(move || {
            let mut buf = vec![0; chunk];
            let n = self.read_at(offset, &mut buf);
            if n == 0 {
                return None;
            }
            buf.truncate(n);
            let at = offset;
            offset += n as u64;
            Some((at, buf))
        })
    }

    /// The snapshot of `data` that `ck` covers; `prefix` keeps the checksum of the data
    /// part from one snapshot to the next, so only what was written since is read.
    fn new(data: Arc<DataFile>, ck: &Checkpoint, prefix: &Mutex<PrefixCrc>) -> Self {
        let ck_bytes = ck.encode();
        let mut head = Vec::with_capacity(PREAMBLE_LEN + ck_bytes.len());
        head.extend_from_slice(&preamble(ck_bytes.len() as u64, ck.durable_len));
        head.extend_from_slice(&ck_bytes);
        let data_crc = prefix.lock().of(&data, ck.file_id, ck.durable_len);
        let crc = crc32c::crc32c_combine(crc32c::crc32c(&head), data_crc, ck.durable_len as usize);
        let meta = SnapshotMeta {
            version: ck.last_version,
            position: ck.position.clone(),
            size: head.len() as u64 + ck.durable_len,
            crc32c: crc,
        };
        Self {
            data,
            head,
            data_len: ck.durable_len,
            meta,
        }
    }

    /// Bytes of data file content in the stream.
    pub fn data_len(&self) -> u64 {
        self.data_len
    }
}

/// Receives a snapshot stream chunk by chunk into the store's directory.
#[derive(Debug)]
pub struct SnapshotInstaller {
    _guard: InstallGuard,
    path: PathBuf,
    file: File,
    head: Vec<u8>,
    /// (checkpoint_len, data_len) once the preamble is in.
    lengths: Option<(u64, u64)>,
    received: u64,
    crc: u32,
    /// CRC32C of the data bytes after the data file header, on their own: the stream's
    /// checksum is recomputed from it once the header gets this store's file id.
    rest_crc: u32,
    /// The applied position to install instead of the stream's (a restore into a new
    /// cluster), if any.
    new_position: Option<Vec<u8>>,
}

/// A fully received, checked snapshot, ready for [`Engine::install_snapshot`].
#[derive(Debug)]
pub struct StagedSnapshot {
    _guard: InstallGuard,
    path: PathBuf,
    size: u64,
    crc32c: u32,
    /// Boxed: with its session table it is large, and callers keep a staged snapshot
    /// in enums beside small variants.
    checkpoint: Box<Checkpoint>,
    checkpoint_bytes: Vec<u8>,
}

impl StagedSnapshot {
    /// Version of the last write the snapshot contains.
    pub fn version(&self) -> u64 {
        self.checkpoint.last_version
    }
    /// Opaque applied position stored with it.
    pub fn position(&self) -> &[u8] {
        &self.checkpoint.position
    }
}

impl SnapshotInstaller {
    fn bad(reason: impl Into<String>) -> Error {
        Error::BadSnapshot {
            reason: reason.into(),
        }
    }

    /// Installs `position` as the store's applied position instead of the one the
    /// stream carries (a restore that makes the store part of a new cluster). The
    /// stream is still checked against its own size and checksum.
    pub fn replace_position(&mut self, position: Vec<u8>) {
        self.new_position = Some(position);
    }

    /// Appends the chunk that starts at `offset`; chunks must arrive in order.
    pub fn write(&mut self, offset: u64, mut chunk: &[u8]) -> Result<()> {
        if offset != self.received {
            return Err(Self::bad(format!(
                "chunk at offset {offset}, expected {}",
                self.received
            )));
        }
        self.crc = crc32c::crc32c_append(self.crc, chunk);
        self.received += chunk.len() as u64;
        while !chunk.is_empty() {
            let head_len = match self.lengths {
                Some((ck_len, _)) => PREAMBLE_LEN as u64 + ck_len,
                None => PREAMBLE_LEN as u64,
            };
            if (self.head.len() as u64) < head_len {
                let take = ((head_len - self.head.len() as u64) as usize).min(chunk.len());
                self.head.extend_from_slice(&chunk[..take]);
                chunk = &chunk[take..];
                if self.lengths.is_none() && self.head.len() == PREAMBLE_LEN {
                    self.lengths = Some(parse_preamble(&self.head)?);
                }
                continue;
            }
            let (_, data_len) = self.lengths.expect("preamble parsed before data");
            let written = self.received - chunk.len() as u64 - head_len;
            if written + chunk.len() as u64 > data_len {
                return Err(Self::bad("stream is longer than its preamble says"));
            }
            let past_header = usize::try_from(HEADER_LEN.saturating_sub(written))
                .map_or(chunk.len(), |n| n.min(chunk.len()));
            self.rest_crc = crc32c::crc32c_append(self.rest_crc, &chunk[past_header..]);
            self.file
                .write_all(chunk)
                .map_err(|e| Error::io("write snapshot data", &self.path, e))?;
            chunk = &[];
        }
        Ok(())
    }

    /// Checks the stream against `expected` size and checksum and makes the received
    /// data durable.
    pub fn finish(mut self, size: u64, crc32c: u32) -> Result<StagedSnapshot> {
        let (ck_len, data_len) = self
            .lengths
            .ok_or_else(|| Self::bad("stream ended inside its preamble"))?;
        let want = PREAMBLE_LEN as u64 + ck_len + data_len;
        if self.received != size || size != want {
            return Err(Self::bad(format!(
                "received {} bytes, expected {size} (preamble says {want})",
                self.received
            )));
        }
        if self.crc != crc32c {
            return Err(Self::bad(format!(
                "checksum {:#010x}, expected {crc32c:#010x}",
                self.crc
            )));
        }
        let checkpoint_bytes = self.head[PREAMBLE_LEN..].to_vec();
        let mut checkpoint = Checkpoint::decode(&checkpoint_bytes)
            .map_err(|(off, r)| Self::bad(format!("checkpoint at offset {off}: {r}")))?;
        if let Some(position) = self.new_position.take() {
            checkpoint.position = position;
        }
        if checkpoint.durable_len != data_len {
            return Err(Self::bad(
                "checkpoint and preamble disagree on the data length",
            ));
        }
        let (checkpoint, checkpoint_bytes, crc32c) = self.take_own_file_id(checkpoint)?;
        let size = PREAMBLE_LEN as u64 + checkpoint_bytes.len() as u64 + data_len;
        self.file
            .sync_all()
            .map_err(|e| Error::io("fsync snapshot data", &self.path, e))?;
        Ok(StagedSnapshot {
            _guard: self._guard,
            path: self.path,
            size,
            crc32c,
            checkpoint: Box::new(checkpoint),
            checkpoint_bytes,
        })
    }

    /// Gives the staged data file and its checkpoint a fresh file id, and returns them
    /// with the checksum of the stream they now make.
    ///
    /// The sender's file id names the sender's file. Two snapshots of one leader file
    /// carry the same id, so a second install would stage a file with the id of the
    /// live one (the first install), and a crash after its checkpoint is in place but
    /// before the rename would leave a checkpoint that recovery reads as describing
    /// the live file. With an id of its own, every data file in the directory has a
    /// distinct id and the checkpoint names exactly one of them (docs/file-format.md,
    /// "Installing a snapshot").
    fn take_own_file_id(&self, mut checkpoint: Checkpoint) -> Result<(Checkpoint, Vec<u8>, u32)> {
        use std::os::unix::fs::FileExt;
        let mut raw = [0u8; HEADER_LEN as usize];
        self.file
            .read_exact_at(&mut raw, 0)
            .map_err(|e| Error::io("read snapshot data header", &self.path, e))?;
        let mut header = FileHeader::decode(&raw)
            .map_err(|(off, r)| Self::bad(format!("data file header at offset {off}: {r}")))?;
        if header.file_id != checkpoint.file_id {
            return Err(Self::bad("data file and checkpoint do not belong together"));
        }
        let live = self._guard.0.state.read().file_id;
        header.file_id = loop {
            let id = new_file_id();
            if id != live && id != checkpoint.file_id {
                break id;
            }
        };
        let raw = header.encode();
        self.file
            .write_all_at(&raw, 0)
            .map_err(|e| Error::io("write snapshot data header", &self.path, e))?;
        checkpoint.file_id = header.file_id;
        let checkpoint_bytes = checkpoint.encode();
        let data_len = checkpoint.durable_len;
        let mut head = preamble(checkpoint_bytes.len() as u64, data_len);
        head.extend_from_slice(&checkpoint_bytes);
        let prefix = crc32c::crc32c_append(crc32c::crc32c(&head), &raw);
        let rest_len = usize::try_from(data_len - HEADER_LEN).expect("data file fits in memory");
        let crc = crc32c::crc32c_combine(prefix, self.rest_crc, rest_len);
        Ok((checkpoint, checkpoint_bytes, crc))
    }
}

fn preamble(checkpoint_len: u64, data_len: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(PREAMBLE_LEN);
    b.extend_from_slice(MAGIC);
    b.put_u32(FORMAT_VERSION);
    b.put_u32(0);
    b.put_u64(checkpoint_len);
    b.put_u64(data_len);
    b
}

/// Marks an install in progress; cleared on drop.
#[derive(Debug)]
struct InstallGuard(Arc<Inner>);

impl InstallGuard {
    fn acquire(inner: &Arc<Inner>) -> Result<Self> {
        if inner.installing.swap(true, Ordering::AcqRel) {
            return Err(SnapshotInstaller::bad(
                "another snapshot install is in progress",
            ));
        }
        Ok(Self(inner.clone()))
    }
}

impl Drop for InstallGuard {
    fn drop(&mut self) {
        self.0.installing.store(false, Ordering::Release);
    }
}

fn parse_preamble(b: &[u8]) -> Result<(u64, u64)> {
    let mut r = Reader::new(b);
    let bad = |e: String| SnapshotInstaller::bad(e);
    if r.take(8).map_err(bad)? != MAGIC {
        return Err(SnapshotInstaller::bad("bad magic: not a Sutra snapshot"));
    }
    let format = r.u32().map_err(bad)?;
    if format != FORMAT_VERSION {
        return Err(SnapshotInstaller::bad(format!(
            "unknown snapshot format {format}"
        )));
    }
    r.u32().map_err(bad)?;
    let ck_len = r.u64().map_err(bad)?;
    let data_len = r.u64().map_err(bad)?;
    if ck_len > 1 << 30 || data_len < HEADER_LEN {
        return Err(SnapshotInstaller::bad("implausible lengths in preamble"));
    }
    Ok((ck_len, data_len))
}

impl Engine {
    /// Takes a checkpoint and returns a snapshot of exactly what it covers. Writes go
    /// on while the snapshot is read.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let (data, ck, _) = self.checkpoint_now()?;
        Ok(Snapshot::new(data, &ck, &self.inner.prefix_crc))
    }

    /// A snapshot, as [`snapshot`](Self::snapshot), and the content digest at exactly
    /// the version it covers (read under the same lock): what a backup proves itself
    /// equal to.
    pub fn snapshot_with_digest(&self) -> Result<(Snapshot, ContentDigest)> {
        let (data, ck, digest) = self.checkpoint_now()?;
        Ok((Snapshot::new(data, &ck, &self.inner.prefix_crc), digest))
    }

    /// Starts receiving a snapshot into this store's directory. One install at a time:
    /// a second one fails until the first installer (or its staged snapshot) is dropped.
    pub fn begin_install(&self) -> Result<SnapshotInstaller> {
        // A poisoned engine may have a checkpoint naming the staging file (an install
        // that failed after replacing the checkpoint): it must not be truncated.
        self.check_poisoned()?;
        let guard = InstallGuard::acquire(&self.inner)?;
        let path = self.inner.dir.join(INSTALL_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| Error::io("create snapshot file", &path, e))?;
        Ok(SnapshotInstaller {
            _guard: guard,
            path,
            file,
            head: Vec::new(),
            lengths: None,
            received: 0,
            crc: 0,
            rest_crc: 0,
            new_position: None,
        })
    }

    /// Renames the staged data file into place and makes the rename durable.
    fn swap_in_staged(&self, staged: &std::path::Path, dst: &std::path::Path) -> Result<()> {
        fail::fail_point!("engine::snapshot::install::after_checkpoint", |_| Err(
            Error::io(
                "rename snapshot data file",
                dst,
                std::io::Error::other("failpoint engine::snapshot::install::after_checkpoint")
            )
        ));
        fs::rename(staged, dst).map_err(|e| Error::io("rename snapshot data file", dst, e))?;
        fail::fail_point!("engine::snapshot::install::after_rename", |_| Err(
            Error::io(
                "fsync directory",
                &self.inner.dir,
                std::io::Error::other("failpoint engine::snapshot::install::after_rename")
            )
        ));
        checkpoint::sync_dir(&self.inner.dir)
    }

    /// Replaces the whole store with a received snapshot and returns a readable handle
    /// on exactly what was installed. The new data file is checked record by record
    /// before anything is swapped; the swap itself is a checkpoint rename followed by a
    /// data file rename, which recovery completes if interrupted.
    pub fn install_snapshot(&self, staged: StagedSnapshot) -> Result<Snapshot> {
        self.check_poisoned()?;
        let _ck = self.inner.checkpoint_lock.lock();
        let cfg = &self.inner.config;
        let mut data = DataFile::open(&staged.path, cfg.max_file_bytes)?;
        let header = FileHeader::decode(data.bytes(0, HEADER_LEN.min(data.capacity())))
            .map_err(|(offset, reason)| Error::corrupted(&staged.path, offset, reason))?;
        if header.file_id != staged.checkpoint.file_id {
            return Err(SnapshotInstaller::bad(
                "data file and checkpoint do not belong together",
            ));
        }
        check_params(&staged.path, &header.params, &self.params())?;
        let loaded = load_index(
            &data,
            staged.checkpoint.durable_len,
            staged.checkpoint.concepts,
        )?;
        let live = self.inner.state.read().file_id;
        assert_ne!(
            header.file_id, live,
            "a staged snapshot has a file id of its own (SnapshotInstaller::finish)"
        );
        checkpoint::write_atomically(&self.inner.dir, &staged.checkpoint_bytes)
            .map_err(|e| self.note_failure(e))?;
        // The checkpoint now names the staged file while this process still serves the
        // old one. Recovery completes the swap; this process must not go on if it
        // fails (a later checkpoint or install would work against what is on disk).
        let dst = self.inner.dir.join(DATA_FILE);
        self.swap_in_staged(&staged.path, &dst).inspect_err(|e| {
            self.poison("install snapshot", e);
        })?;
        data.set_path(dst);
        let data = Arc::new(data);
        let mut head = preamble(
            staged.checkpoint_bytes.len() as u64,
            staged.checkpoint.durable_len,
        );
        head.extend_from_slice(&staged.checkpoint_bytes);
        let installed = Snapshot {
            data: data.clone(),
            head,
            data_len: staged.checkpoint.durable_len,
            meta: SnapshotMeta {
                version: staged.checkpoint.last_version,
                position: staged.checkpoint.position.clone(),
                size: staged.size,
                crc32c: staged.crc32c,
            },
        };
        debug_assert_eq!(
            Snapshot::new(
                installed.data.clone(),
                &staged.checkpoint,
                &Mutex::default()
            )
            .meta,
            installed.meta,
            "the checksum recomputed for this store's file id is the stream's"
        );
        let state = State::new(data, header, loaded, Some(*staged.checkpoint));
        *self.inner.state.write() = state;
        tracing::info!(version = installed.meta.version, "snapshot installed");
        Ok(installed)
    }
}
