//! The log store's byte formats: entry keys (a big-endian log index) and the checksummed
//! envelope every stored value is sealed in (see the layout in the parent module).

use std::ops::{Bound, RangeBounds};

use openraft::entry::RaftEntry;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ENTRIES_CF;
use crate::error::{Error, Result};
use crate::types::Entry;

const ENVELOPE_FORMAT: u8 = 1;
const ENVELOPE_HEADER: usize = 5;

pub(super) fn decode_key(k: &[u8]) -> Result<u64> {
    let arr: [u8; 8] = k.try_into().map_err(|_| Error::CorruptedMeta {
        key: ENTRIES_CF,
        reason: format!("entry key of {} bytes, expected 8", k.len()),
    })?;
    Ok(u64::from_be_bytes(arr))
}

/// `[format][crc32c LE][postcard(value)]`.
pub(super) fn seal_envelope<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>> {
    let mut buf = vec![ENVELOPE_FORMAT, 0, 0, 0, 0];
    buf = postcard::to_extend(value, buf).map_err(|source| Error::Encode { what, source })?;
    let crc = crc32c::crc32c(&buf[ENVELOPE_HEADER..]);
    buf[1..ENVELOPE_HEADER].copy_from_slice(&crc.to_le_bytes());
    Ok(buf)
}

pub(super) fn open_envelope<T: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<T, String> {
    if bytes.len() < ENVELOPE_HEADER {
        return Err(format!(
            "{} bytes, shorter than the envelope header",
            bytes.len()
        ));
    }
    if bytes[0] != ENVELOPE_FORMAT {
        return Err(format!("unknown envelope format {}", bytes[0]));
    }
    let stored = u32::from_le_bytes(bytes[1..ENVELOPE_HEADER].try_into().expect("4 bytes"));
    let payload = &bytes[ENVELOPE_HEADER..];
    let actual = crc32c::crc32c(payload);
    if stored != actual {
        return Err(format!(
            "checksum mismatch: stored {stored:#010x}, computed {actual:#010x}"
        ));
    }
    let (value, rest) =
        postcard::take_from_bytes(payload).map_err(|e| format!("undecodable: {e}"))?;
    if !rest.is_empty() {
        return Err(format!("{} trailing bytes after the value", rest.len()));
    }
    Ok(value)
}

pub(super) fn decode_entry(index: u64, bytes: &[u8]) -> Result<Entry> {
    let entry: Entry =
        open_envelope(bytes).map_err(|reason| Error::CorruptedEntry { index, reason })?;
    if entry.index() != index {
        return Err(Error::CorruptedEntry {
            index,
            reason: format!(
                "stored under index {index} but holds log id {}",
                entry.log_id
            ),
        });
    }
    Ok(entry)
}

/// `(start, end)` of a range of indexes, `end` exclusive and `None` when unbounded.
pub(super) fn index_bounds(range: &impl RangeBounds<u64>) -> (u64, Option<u64>) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.checked_add(1),
        Bound::Excluded(&e) => Some(e),
        Bound::Unbounded => None,
    };
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_and_detects_damage() {
        let sealed = seal_envelope("test", &(7u64, "seven")).unwrap();
        assert_eq!(sealed[0], ENVELOPE_FORMAT);
        let back: (u64, String) = open_envelope(&sealed).unwrap();
        assert_eq!(back, (7, "seven".to_string()));

        for at in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[at] ^= 0x01;
            assert!(
                open_envelope::<(u64, String)>(&bad).is_err(),
                "flip at byte {at} went unnoticed"
            );
        }
        assert!(open_envelope::<(u64, String)>(&sealed[..3]).is_err());
        let mut longer = sealed.clone();
        longer.push(0);
        assert!(open_envelope::<(u64, String)>(&longer).is_err());
    }

    #[test]
    fn index_bounds_cover_every_range_shape() {
        assert_eq!(index_bounds(&(3..7)), (3, Some(7)));
        assert_eq!(index_bounds(&(3..=7)), (3, Some(8)));
        assert_eq!(index_bounds(&(3..)), (3, None));
        assert_eq!(index_bounds(&(..7)), (0, Some(7)));
        assert_eq!(index_bounds(&(..)), (0, None));
        assert_eq!(index_bounds(&(0..=u64::MAX)), (0, None));
        let excluded = (Bound::Excluded(3), Bound::Unbounded);
        assert_eq!(index_bounds(&excluded), (4, None));
    }
}
