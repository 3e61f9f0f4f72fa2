//! Log positions: the one unit in which the client and operator APIs count log entries.
//!
//! openraft numbers its entries from 0 (index 0 is the initial membership), and the
//! engine requires write versions above 0. So everything the client and operator APIs
//! report about the log — a concept's `version`, `WriteResponse.version`, the SESSION
//! token, and every `*_index` field of `sutra.storage` and `sutra.cluster` — is a
//! **position**: the entry's openraft log index **+ 1**, so the n-th entry of the log has
//! position n, and 0 means "none yet". Versions and indexes therefore compare directly: a
//! read whose `applied_index` is at least v has seen every write of version v or below.
//!
//! The peer API (`sutra.raft`) mirrors openraft and carries log indexes. Convert with
//! these functions, nowhere else.

use crate::types::LogId;

/// The position of the entry at openraft log index `log_index`.
pub const fn position(log_index: u64) -> u64 {
    log_index + 1
}

/// The openraft log index of the entry at `position`; `None` for position 0 ("none").
pub const fn log_index(position: u64) -> Option<u64> {
    position.checked_sub(1)
}

/// The position of a log id, 0 for none.
pub fn position_of(log_id: Option<&LogId>) -> u64 {
    log_id.map_or(0, |l| position(l.index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_entries_from_one() {
        assert_eq!(position(0), 1);
        assert_eq!(log_index(1), Some(0));
        assert_eq!(log_index(0), None);
        for i in [0, 1, 41, u64::MAX - 1] {
            assert_eq!(log_index(position(i)), Some(i));
        }
        assert_eq!(position_of(None), 0);
    }
}
