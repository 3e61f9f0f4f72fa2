//! [`State`], everything behind the engine's lock: the data file and its index, the
//! content digest, client sessions, and the applied and durable positions.

use std::sync::Arc;

use super::DurableState;
use crate::checkpoint::Checkpoint;
use crate::config::StoreParams;
use crate::digest::DataDigest;
use crate::index::Index;
use crate::record::{FileHeader, HEADER_LEN};
use crate::session::SessionTable;

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) data: Arc<crate::file::DataFile>,
    /// Identity of `data`, written into checkpoints.
    pub(crate) file_id: u64,
    pub(super) params: StoreParams,
    pub(super) data_len: u64,
    pub(super) index: Index,
    /// Hashes of the live concepts and edges, changed with the index by `execute`;
    /// compaction leaves it alone (the content does not change).
    pub(super) digest: DataDigest,
    pub(super) sessions: SessionTable,
    pub(super) last_version: u64,
    pub(super) last_time_ms: u64,
    pub(super) writes_applied: u64,
    pub(super) position: Vec<u8>,
    pub(crate) durable: DurableState,
    /// Encode buffers reused by every apply.
    pub(super) scratch: Vec<u8>,
    pub(super) lens: Vec<u32>,
}

impl State {
    pub(crate) fn new(
        data: Arc<crate::file::DataFile>,
        header: FileHeader,
        (index, digest): (Index, DataDigest),
        ck: Option<Checkpoint>,
    ) -> Self {
        let ck = ck.unwrap_or(Checkpoint {
            file_id: 0,
            durable_len: HEADER_LEN,
            last_version: 0,
            last_time_ms: 0,
            writes_applied: 0,
            concepts: 0,
            position: Vec::new(),
            sessions: SessionTable::default(),
        });
        Self {
            data,
            file_id: header.file_id,
            params: header.params,
            data_len: ck.durable_len,
            index,
            digest,
            sessions: ck.sessions,
            last_version: ck.last_version,
            last_time_ms: ck.last_time_ms,
            writes_applied: ck.writes_applied,
            durable: DurableState {
                data_len: ck.durable_len,
                version: ck.last_version,
                position: ck.position.clone(),
            },
            position: ck.position,
            scratch: Vec::new(),
            lens: Vec::new(),
        }
    }

    pub(crate) fn checkpoint_record(&self) -> Checkpoint {
        Checkpoint {
            file_id: self.file_id,
            durable_len: self.data_len,
            last_version: self.last_version,
            last_time_ms: self.last_time_ms,
            writes_applied: self.writes_applied,
            concepts: self.index.concept_count() as u64,
            position: self.position.clone(),
            sessions: self.sessions.clone(),
        }
    }
}
