//! The `checkpoint` file: which data file, how much of it is durable, and the applied
//! state that goes with exactly those bytes.
//!
//! ```text
//! 0 magic "SUTRACKP" | 8 u32 format | 12 u32 zero | 16 u64 file_id | 24 u64 durable_len
//! 32 u64 last_version | 40 u64 last_time_ms | 48 u64 writes_applied | 56 u64 concepts
//! 64 u32 position_len | 68 u32 zero | 72 position | session table | u32 crc32c of all before
//! ```
//!
//! Written as `checkpoint.tmp`, fsynced, renamed over `checkpoint`, then the directory
//! is fsynced: a reader sees the old or the new checkpoint, never a mix.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::codec::{Put, Reader};
use crate::error::{Error, Result};
use crate::session::SessionTable;

pub(crate) const CHECKPOINT_FILE: &str = "checkpoint";
const MAGIC: &[u8; 8] = b"SUTRACKP";
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Checkpoint {
    pub file_id: u64,
    pub durable_len: u64,
    pub last_version: u64,
    pub last_time_ms: u64,
    pub writes_applied: u64,
    /// Live concepts at `durable_len`; sizes the index on recovery.
    pub concepts: u64,
    pub position: Vec<u8>,
    pub sessions: SessionTable,
}

impl Checkpoint {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(128 + self.position.len());
        b.extend_from_slice(MAGIC);
        b.put_u32(FORMAT_VERSION);
        b.put_u32(0);
        b.put_u64(self.file_id);
        b.put_u64(self.durable_len);
        b.put_u64(self.last_version);
        b.put_u64(self.last_time_ms);
        b.put_u64(self.writes_applied);
        b.put_u64(self.concepts);
        b.put_u32(u32::try_from(self.position.len()).expect("position is small"));
        b.put_u32(0);
        b.extend_from_slice(&self.position);
        self.sessions.encode(&mut b);
        let crc = crc32c::crc32c(&b);
        b.put_u32(crc);
        b
    }

    /// Decodes checkpoint bytes; errors carry the offset of the bad field.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, (u64, String)> {
        if bytes.len() < 76 {
            return Err((
                0,
                format!("{} bytes, too short for a checkpoint", bytes.len()),
            ));
        }
        let body = &bytes[..bytes.len() - 4];
        let crc = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().expect("4 bytes"));
        if crc != crc32c::crc32c(body) {
            return Err((
                (bytes.len() - 4) as u64,
                "checkpoint checksum mismatch".into(),
            ));
        }
        let mut r = Reader::new(body);
        let at = |r: &Reader<'_>, e: String| (r.pos as u64, e);
        let magic = r.take(8).map_err(|e| at(&r, e))?;
        if magic != MAGIC {
            return Err((0, "bad magic: not a Sutra checkpoint".into()));
        }
        let format = r.u32().map_err(|e| at(&r, e))?;
        if format != FORMAT_VERSION {
            return Err((8, format!("unknown checkpoint format {format}")));
        }
        let mut parse = || -> Result<Self, String> {
            r.u32()?;
            let file_id = r.u64()?;
            let durable_len = r.u64()?;
            let last_version = r.u64()?;
            let last_time_ms = r.u64()?;
            let writes_applied = r.u64()?;
            let concepts = r.u64()?;
            let position_len = r.u32()? as usize;
            r.u32()?;
            let position = r.take(position_len)?.to_vec();
            let sessions = SessionTable::decode(&mut r)?;
            if r.remaining() != 0 {
                return Err(format!("{} unexpected trailing bytes", r.remaining()));
            }
            Ok(Self {
                file_id,
                durable_len,
                last_version,
                last_time_ms,
                writes_applied,
                concepts,
                position,
                sessions,
            })
        };
        parse().map_err(|e| (0, e))
    }

    /// Reads `dir/checkpoint`; `Ok(None)` if there is none.
    pub(crate) fn load(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(CHECKPOINT_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read checkpoint", path, e)),
        };
        Self::decode(&bytes)
            .map(Some)
            .map_err(|(offset, reason)| Error::corrupted(path, offset, reason))
    }
}

/// Atomically replaces `dir/checkpoint` with `bytes`.
pub(crate) fn write_atomically(dir: &Path, bytes: &[u8]) -> Result<()> {
    fail::fail_point!("engine::checkpoint::fsync::err", |_| Err(Error::io(
        "fsync checkpoint",
        dir.join(CHECKPOINT_FILE),
        std::io::Error::other("failpoint engine::checkpoint::fsync::err")
    )));
    let tmp = dir.join("checkpoint.tmp");
    let mut f = File::create(&tmp).map_err(|e| Error::io("create checkpoint", &tmp, e))?;
    f.write_all(bytes)
        .map_err(|e| Error::io("write checkpoint", &tmp, e))?;
    f.sync_all()
        .map_err(|e| Error::io("fsync checkpoint", &tmp, e))?;
    drop(f);
    let dst = dir.join(CHECKPOINT_FILE);
    fs::rename(&tmp, &dst).map_err(|e| Error::io("rename checkpoint", &dst, e))?;
    sync_dir(dir)
}

/// fsyncs a directory so renames and creations in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync directory", dir, e))
}
