//! Recovery: reopening a store from its checkpoint (finishing an interrupted data file
//! swap, cutting away what the checkpoint does not cover) and rebuilding the index by
//! replaying and checking every record.

use std::fs::{self, File};
use std::path::Path;
use std::sync::Arc;

use super::{COMPACT_FILE, DATA_FILE, INSTALL_FILE, State};
use crate::checkpoint::{self, Checkpoint};
use crate::config::{EngineConfig, StoreParams};
use crate::digest::DataDigest;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::record::{self, FileHeader, HEADER_LEN};

pub(super) fn recover(dir: &Path, config: &EngineConfig, ck: Checkpoint) -> Result<State> {
    let path = dir.join(DATA_FILE);
    let current = read_header(&path)?;
    if current.is_none_or(|h| h.file_id != ck.file_id) {
        // A crash between writing a checkpoint for a new data file and renaming that
        // file into place: finish the rename.
        let mut found = false;
        for name in [COMPACT_FILE, INSTALL_FILE] {
            let candidate = dir.join(name);
            if read_header(&candidate)
                .ok()
                .flatten()
                .is_some_and(|h| h.file_id == ck.file_id)
            {
                fs::rename(&candidate, &path)
                    .map_err(|e| Error::io("rename data file into place", &path, e))?;
                checkpoint::sync_dir(dir)?;
                found = true;
                break;
            }
        }
        if !found {
            return Err(Error::corrupted(
                &path,
                16,
                format!(
                    "data file id does not match the checkpoint's ({:#x})",
                    ck.file_id
                ),
            ));
        }
    }
    for name in [COMPACT_FILE, INSTALL_FILE] {
        let leftover = dir.join(name);
        if leftover.exists() {
            fs::remove_file(&leftover)
                .map_err(|e| Error::io("remove unfinished data file", &leftover, e))?;
        }
    }
    let data = crate::file::DataFile::open(&path, config.max_file_bytes)?;
    let header = FileHeader::decode(data.bytes(0, HEADER_LEN.min(data.capacity())))
        .map_err(|(offset, reason)| Error::corrupted(&path, offset, reason))?;
    check_params(&path, &header.params, &config.params)?;
    if data.capacity() < ck.durable_len {
        return Err(Error::corrupted(
            &path,
            data.capacity(),
            format!(
                "file is {} bytes but the checkpoint says {} are durable",
                data.capacity(),
                ck.durable_len
            ),
        ));
    }
    data.truncate(ck.durable_len)?;
    let loaded = load_index(&data, ck.durable_len, ck.concepts)?;
    Ok(State::new(Arc::new(data), header, loaded, Some(ck)))
}

pub(crate) fn check_params(path: &Path, stored: &StoreParams, wanted: &StoreParams) -> Result<()> {
    // Unset on either side: the store adopts (or has adopted) the cluster's parameters.
    if stored.is_unset() || wanted.is_unset() {
        return Ok(());
    }
    if stored.vector_dimension != wanted.vector_dimension {
        return Err(Error::Incompatible {
            path: path.to_path_buf(),
            reason: format!(
                "store has vector dimension {}, configuration says {}",
                stored.vector_dimension, wanted.vector_dimension
            ),
        });
    }
    if stored != wanted {
        tracing::warn!(?stored, configured = ?wanted, "store keeps the session parameters it was created with");
    }
    Ok(())
}

fn read_header(path: &Path) -> Result<Option<FileHeader>> {
    use std::io::Read;
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open data file", path, e)),
    };
    // Only the header: the file itself may be many gigabytes.
    let mut bytes = Vec::with_capacity(HEADER_LEN as usize);
    f.by_ref()
        .take(HEADER_LEN)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("read data file header", path, e))?;
    FileHeader::decode(&bytes)
        .map(Some)
        .map_err(|(offset, reason)| Error::corrupted(path, offset, reason))
}

/// Rebuilds the index and the content digest from `[HEADER_LEN, len)` of `data`,
/// checking every record.
pub(crate) fn load_index(
    data: &crate::file::DataFile,
    len: u64,
    concepts_hint: u64,
) -> Result<(Index, DataDigest)> {
    let mut index = Index::with_capacity(usize::try_from(concepts_hint).unwrap_or(0).min(1 << 28));
    let mut digest = DataDigest::default();
    replay_range(
        data,
        HEADER_LEN,
        len,
        &mut index,
        &mut digest,
        |_, _| Ok(()),
    )?;
    Ok((index, digest))
}

/// Replays the records in `[from, to)` of `data` into `index` and `digest`, calling
/// `each` with the bytes and offset of every record.
fn replay_range(
    data: &crate::file::DataFile,
    from: u64,
    to: u64,
    index: &mut Index,
    digest: &mut DataDigest,
    mut each: impl FnMut(&[u8], u64) -> Result<()>,
) -> Result<()> {
    let mut at = from;
    while at < to {
        let bytes = data.bytes(at, to - at);
        let rec = record::read(bytes).map_err(|r| Error::corrupted(data.path(), at, r))?;
        // The digest is updated while the record is still in cache from the checksum,
        // and before the index changes (it looks up what the record replaces).
        digest
            .replay(index, data, &rec, &bytes[..rec.len as usize])
            .and_then(|()| index.replay(&rec, at))
            .map_err(|r| Error::corrupted(data.path(), at, r))?;
        each(&bytes[..rec.len as usize], at)?;
        at += u64::from(rec.len);
    }
    Ok(())
}
