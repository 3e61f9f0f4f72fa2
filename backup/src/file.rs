//! Writing and reading the backup file (layout in the crate docs).

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::manifest::{FORMAT_VERSION, Manifest};
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"SUTRABAK";
const END_MAGIC: &[u8; 8] = b"SUTRAEND";
const HEADER_LEN: u64 = 16;
/// Manifest length, its SHA-256, the end magic.
const TRAILER_LEN: u64 = 4 + 32 + 8;
/// Largest manifest accepted (a membership of many nodes is still a few KiB).
const MAX_MANIFEST: u64 = 1 << 20;

/// Payload bytes per frame: a flipped byte is located to within this.
pub const FRAME_BYTES: usize = 1 << 20;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a backup file: the payload as it arrives, then the manifest. Nothing is at
/// `path` until [`finish`](Self::finish) has renamed the complete, fsynced file there;
/// dropped before that, the temporary file is removed.
#[derive(Debug)]
pub struct BackupWriter {
    path: PathBuf,
    tmp: Option<PathBuf>,
    out: BufWriter<File>,
    frame: Vec<u8>,
    sha: Sha256,
    crc: u32,
    payload_bytes: u64,
}

impl BackupWriter {
    /// Starts a backup file at `path` (written as `path.partial` until finished).
    pub fn create(path: &Path) -> Result<Self> {
        let tmp = path.with_extension("partial");
        let io = |op, source| Error::Io {
            op,
            path: tmp.clone(),
            source,
        };
        let file = File::create(&tmp).map_err(|e| io("create", e))?;
        let mut out = BufWriter::with_capacity(FRAME_BYTES + 64, file);
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        header.extend_from_slice(&(FRAME_BYTES as u32).to_le_bytes());
        out.write_all(&header).map_err(|e| io("write", e))?;
        Ok(Self {
            path: path.to_path_buf(),
            tmp: Some(tmp),
            out,
            frame: Vec::with_capacity(FRAME_BYTES),
            sha: Sha256::new(),
            crc: 0,
            payload_bytes: 0,
        })
    }

    fn io(&self, op: &'static str, source: std::io::Error) -> Error {
        Error::Io {
            op,
            path: self.tmp.clone().unwrap_or_else(|| self.path.clone()),
            source,
        }
    }

    /// Appends payload bytes.
    pub fn write(&mut self, mut bytes: &[u8]) -> Result<()> {
        self.sha.update(bytes);
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        self.payload_bytes += bytes.len() as u64;
        while !bytes.is_empty() {
            let take = (FRAME_BYTES - self.frame.len()).min(bytes.len());
            self.frame.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.frame.len() == FRAME_BYTES {
                self.flush_frame()?;
            }
        }
        Ok(())
    }

    fn flush_frame(&mut self) -> Result<()> {
        if self.frame.is_empty() {
            return Ok(());
        }
        let crc = crc32c::crc32c(&self.frame);
        let frame = std::mem::take(&mut self.frame);
        let r = (|| {
            self.out.write_all(&(frame.len() as u32).to_le_bytes())?;
            self.out.write_all(&frame)?;
            self.out.write_all(&crc.to_le_bytes())
        })();
        self.frame = frame;
        self.frame.clear();
        r.map_err(|e| self.io("write", e))
    }

    /// Payload bytes written so far.
    pub fn payload_bytes(&self) -> u64 {
        self.payload_bytes
    }

    /// Ends the payload, checks it against `manifest` (length and the engine's CRC32C:
    /// what arrived is what the node sent), records its SHA-256 in the manifest, writes
    /// the manifest, fsyncs, and renames the file into place. Returns the manifest as
    /// written.
    pub fn finish(mut self, mut manifest: Manifest) -> Result<Manifest> {
        if self.payload_bytes != manifest.snapshot_bytes || self.crc != manifest.snapshot_crc32c {
            return Err(Error::Mismatch {
                path: self.path.clone(),
                what: format!(
                    "received {} payload bytes with CRC32C {:#010x}; the node announced {} bytes with {:#010x}",
                    self.payload_bytes, self.crc, manifest.snapshot_bytes, manifest.snapshot_crc32c
                ),
            });
        }
        self.flush_frame()?;
        manifest.payload_sha256 = hex(&std::mem::take(&mut self.sha).finalize());
        let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
        let r = (|| {
            self.out.write_all(&0u32.to_le_bytes())?;
            self.out.write_all(&json)?;
            self.out.write_all(&(json.len() as u32).to_le_bytes())?;
            self.out.write_all(&Sha256::digest(&json))?;
            self.out.write_all(END_MAGIC)?;
            self.out.flush()?;
            self.out.get_ref().sync_all()
        })();
        r.map_err(|e| self.io("write", e))?;
        let tmp = self.tmp.take().expect("set until finished");
        fs::rename(&tmp, &self.path).map_err(|e| Error::Io {
            op: "rename into place",
            path: self.path.clone(),
            source: e,
        })?;
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::Io {
                op: "fsync directory",
                path: dir.to_path_buf(),
                source: e,
            })?;
        Ok(manifest)
    }
}

impl Drop for BackupWriter {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// Reads a backup file: the manifest at once (its checksum checked), the payload on
/// demand with every frame's checksum checked.
#[derive(Debug)]
pub struct BackupReader {
    path: PathBuf,
    manifest: Manifest,
    /// Where the frames end (the 0-length end frame).
    payload_end: u64,
    file_len: u64,
}

impl BackupReader {
    /// Opens `path` and reads and checks its manifest.
    pub fn open(path: &Path) -> Result<Self> {
        let io = |op, source| Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        };
        let corrupt = |offset: u64, what: String| Error::Corrupt {
            path: path.to_path_buf(),
            offset,
            what,
        };
        let mut f = File::open(path).map_err(|e| io("open", e))?;
        let file_len = f.metadata().map_err(|e| io("stat", e))?.len();
        if file_len < HEADER_LEN + 4 + TRAILER_LEN {
            return Err(corrupt(
                0,
                format!("{file_len} bytes: too short for a backup"),
            ));
        }
        let mut header = [0u8; HEADER_LEN as usize];
        f.read_exact(&mut header).map_err(|e| io("read", e))?;
        if &header[..8] != MAGIC {
            return Err(corrupt(0, "not a Sutra backup (bad magic)".into()));
        }
        let format = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
        if format != FORMAT_VERSION {
            return Err(corrupt(
                8,
                format!("backup format {format}; this binary reads {FORMAT_VERSION}"),
            ));
        }
        let trailer_at = file_len - TRAILER_LEN;
        let mut trailer = [0u8; TRAILER_LEN as usize];
        f.seek(SeekFrom::Start(trailer_at))
            .and_then(|_| f.read_exact(&mut trailer))
            .map_err(|e| io("read", e))?;
        if &trailer[36..] != END_MAGIC {
            return Err(corrupt(
                trailer_at + 36,
                "no end marker: the file is truncated or damaged".into(),
            ));
        }
        let json_len = u64::from(u32::from_le_bytes(trailer[..4].try_into().expect("4")));
        if json_len > MAX_MANIFEST || json_len + TRAILER_LEN + HEADER_LEN + 4 > file_len {
            return Err(corrupt(
                trailer_at,
                format!("manifest length {json_len} does not fit the file"),
            ));
        }
        let json_at = trailer_at - json_len;
        let mut json = vec![0u8; json_len as usize];
        f.seek(SeekFrom::Start(json_at))
            .and_then(|_| f.read_exact(&mut json))
            .map_err(|e| io("read", e))?;
        if Sha256::digest(&json)[..] != trailer[4..36] {
            return Err(corrupt(
                json_at,
                format!("the manifest ({json_len} bytes) does not match its SHA-256"),
            ));
        }
        let manifest: Manifest = serde_json::from_slice(&json)
            .map_err(|e| corrupt(json_at, format!("unreadable manifest: {e}")))?;
        Ok(Self {
            path: path.to_path_buf(),
            manifest,
            payload_end: json_at - 4,
            file_len,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The file's size in bytes.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Streams the payload to `sink` frame by frame, checking each frame's CRC32C, the
    /// frames' layout, and at the end the payload's length and SHA-256 against the
    /// manifest. A failed check names the file offset of the frame.
    pub fn read_payload(&self, mut sink: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        let corrupt = |offset: u64, what: String| Error::Corrupt {
            path: self.path.clone(),
            offset,
            what,
        };
        let io = |source| Error::Io {
            op: "read",
            path: self.path.clone(),
            source,
        };
        let mut f = BufReader::with_capacity(FRAME_BYTES + 64, File::open(&self.path).map_err(io)?);
        f.seek(SeekFrom::Start(HEADER_LEN)).map_err(io)?;
        let (mut at, mut sha, mut total) = (HEADER_LEN, Sha256::new(), 0u64);
        let mut buf = vec![0u8; FRAME_BYTES];
        loop {
            let mut len = [0u8; 4];
            f.read_exact(&mut len).map_err(io)?;
            let len = u32::from_le_bytes(len) as usize;
            if len == 0 {
                if at != self.payload_end {
                    return Err(corrupt(
                        at,
                        format!("payload ends at {at}, the manifest at {}", self.payload_end),
                    ));
                }
                break;
            }
            if len > FRAME_BYTES || at + 8 + len as u64 > self.payload_end {
                return Err(corrupt(
                    at,
                    format!("frame length {len} is impossible here"),
                ));
            }
            f.read_exact(&mut buf[..len]).map_err(io)?;
            let mut crc = [0u8; 4];
            f.read_exact(&mut crc).map_err(io)?;
            if crc32c::crc32c(&buf[..len]) != u32::from_le_bytes(crc) {
                return Err(corrupt(
                    at,
                    format!(
                        "the frame at offset {at} (payload bytes {total}..{}) fails its CRC32C",
                        total + len as u64
                    ),
                ));
            }
            sha.update(&buf[..len]);
            sink(&buf[..len])?;
            total += len as u64;
            at += 8 + len as u64;
        }
        let m = &self.manifest;
        if total != m.snapshot_bytes {
            return Err(Error::Mismatch {
                path: self.path.clone(),
                what: format!(
                    "payload of {total} bytes, the manifest says {}",
                    m.snapshot_bytes
                ),
            });
        }
        let got = hex(&sha.finalize());
        if got != m.payload_sha256 {
            return Err(Error::Mismatch {
                path: self.path.clone(),
                what: format!(
                    "payload SHA-256 {got}, the manifest says {}",
                    m.payload_sha256
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(payload: &[u8]) -> Manifest {
        Manifest {
            format: FORMAT_VERSION,
            cluster_id: "c".into(),
            source_node: 2,
            applied_index: 7,
            term: 3,
            membership: serde_json::json!({}),
            last_log_id: serde_json::json!(null),
            cluster_state: serde_json::json!({}),
            binary_version: "0.1.0".into(),
            binary_commit: "abc".into(),
            created_unix_s: 1,
            concepts: 1,
            edges: 0,
            sessions: 0,
            content_hash: "00".into(),
            snapshot_bytes: payload.len() as u64,
            snapshot_crc32c: crc32c::crc32c(payload),
            payload_sha256: String::new(),
        }
    }

    fn write(path: &Path, payload: &[u8]) -> Manifest {
        let mut w = BackupWriter::create(path).unwrap();
        for chunk in payload.chunks(300_000) {
            w.write(chunk).unwrap();
        }
        w.finish(manifest(payload)).unwrap()
    }

    fn read_all(path: &Path) -> Result<Vec<u8>> {
        let r = BackupReader::open(path)?;
        let mut out = Vec::new();
        r.read_payload(|b| {
            out.extend_from_slice(b);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn a_payload_round_trips_through_frames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.sutra-backup");
        let payload: Vec<u8> = (0..2_500_000u32).map(|i| (i % 251) as u8).collect();
        let m = write(&path, &payload);
        assert_eq!(m.payload_sha256.len(), 64);
        assert!(!path.with_extension("partial").exists());
        assert_eq!(read_all(&path).unwrap(), payload);
        assert_eq!(BackupReader::open(&path).unwrap().manifest(), &m);
    }

    #[test]
    fn a_flipped_byte_is_reported_with_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b");
        let payload = vec![7u8; 2 * FRAME_BYTES + 10];
        write(&path, &payload);
        let clean = fs::read(&path).unwrap();
        // In the second frame: the error names that frame's offset.
        let second = HEADER_LEN + 8 + FRAME_BYTES as u64;
        let mut bytes = clean.clone();
        bytes[(second + 4 + 1000) as usize] ^= 1;
        fs::write(&path, &bytes).unwrap();
        match read_all(&path) {
            Err(Error::Corrupt { offset, what, .. }) => {
                assert_eq!(offset, second, "{what}");
                assert!(what.contains("CRC32C"), "{what}");
            }
            other => panic!("{other:?}"),
        }
        // In the manifest: refused at open.
        let mut bytes = clean;
        let n = bytes.len();
        bytes[n - TRAILER_LEN as usize - 20] ^= 1;
        fs::write(&path, &bytes).unwrap();
        match BackupReader::open(&path) {
            Err(Error::Corrupt { what, .. }) => assert!(what.contains("manifest"), "{what}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_payload_that_is_not_what_the_node_announced_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b");
        let mut w = BackupWriter::create(&path).unwrap();
        w.write(b"abc").unwrap();
        let mut m = manifest(b"abd");
        m.snapshot_bytes = 3;
        assert!(matches!(w.finish(m), Err(Error::Mismatch { .. })));
        assert!(!path.exists());
        assert!(!path.with_extension("partial").exists());
    }
}
