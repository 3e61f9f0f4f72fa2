//! [`PrefixCrc`]: the CRC32C of a data file's records, kept as the file grows, so that a
//! snapshot's checksum costs what was written since the last one rather than the whole
//! store.
//!
//! Records are never rewritten in place (the file is append-only below its published
//! length), so the checksum of `[HEADER_LEN, len)` of one file, identified by its file
//! id, only ever needs extending. The header is left out: it is rewritten once, when a
//! new store adopts the cluster's parameters, so it is checksummed afresh each time.

use crate::file::DataFile;
use crate::record::HEADER_LEN;

/// How much is checksummed between two looks at the bound: keeps each step in cache.
const STEP: u64 = 1 << 20;

/// CRC32C of the records of one data file, up to some length.
#[derive(Debug)]
pub(crate) struct PrefixCrc {
    file_id: u64,
    /// End of the range covered, at least the header's end.
    len: u64,
    /// CRC32C of `[HEADER_LEN, len)`: 0 for the empty range.
    crc: u32,
}

impl Default for PrefixCrc {
    fn default() -> Self {
        Self::empty(0)
    }
}

impl PrefixCrc {
    /// Nothing checksummed yet of the file with id `file_id`.
    fn empty(file_id: u64) -> Self {
        Self {
            file_id,
            len: HEADER_LEN,
            crc: 0,
        }
    }

    /// CRC32C of `data`'s bytes `[0, len)`, where `data` is the file with id `file_id`
    /// and `len` is at least the header. Extends the running checksum when it is for
    /// the same file and not past `len`, and starts over for another file.
    pub(crate) fn of(&mut self, data: &DataFile, file_id: u64, len: u64) -> u32 {
        assert!(len >= HEADER_LEN, "a data file holds at least its header");
        if self.file_id != file_id {
            *self = Self::empty(file_id);
        }
        if self.len > len {
            // An older snapshot of this file, checksummed after a newer one: keep the
            // newer one's checksum for the next snapshot.
            return Self::empty(file_id).of(data, file_id, len);
        }
        while self.len < len {
            let n = (len - self.len).min(STEP);
            self.crc = crc32c::crc32c_append(self.crc, data.bytes(self.len, n));
            self.len += n;
        }
        let header = crc32c::crc32c(data.bytes(0, HEADER_LEN));
        crc32c::crc32c_combine(header, self.crc, (len - HEADER_LEN) as usize)
    }
}
