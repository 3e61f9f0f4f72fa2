//! Checkpoints: making what was applied durable (sync the data file, then replace the
//! checkpoint file), and [`DurableState`], what the last one covers.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::Engine;
use crate::checkpoint::{self, Checkpoint};
use crate::config::StoreParams;
use crate::digest::ContentDigest;
use crate::error::Error;
use crate::error::Result;
use crate::file::DataFile;
use crate::record::{FileHeader, HEADER_LEN};

/// What the last checkpoint made durable.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DurableState {
    /// Data file bytes covered.
    pub data_len: u64,
    /// Version of the last write covered.
    pub version: u64,
    /// Applied position stored with it.
    pub position: Vec<u8>,
}

impl Engine {
    /// Makes everything applied so far durable: msync the data file, then atomically
    /// replace `checkpoint`. A failed sync poisons the engine (it is never retried).
    pub fn checkpoint(&self) -> Result<DurableState> {
        let (_, ck, _) = self.checkpoint_now()?;
        Ok(DurableState {
            data_len: ck.durable_len,
            version: ck.last_version,
            position: ck.position,
        })
    }

    /// Gives a store created with [`StoreParams::UNSET`] its parameters: they are written
    /// into the data file header and made durable at once (msync). Adopting the
    /// parameters the store already has changes nothing; a store that has other ones, or
    /// that already holds records, is [`Error::Incompatible`] naming both values.
    pub fn adopt_params(&self, params: StoreParams) -> Result<()> {
        self.check_poisoned()?;
        let _ck = self.inner.checkpoint_lock.lock();
        let mut st = self.inner.state.write();
        if st.params == params {
            return Ok(());
        }
        let path = st.data.path().to_path_buf();
        if !st.params.is_unset() || st.data_len != HEADER_LEN {
            return Err(Error::Incompatible {
                path,
                reason: format!(
                    "store has vector dimension {}, session ttl {} ms and {} sessions at most; \
                     the cluster has {}, {} ms and {}",
                    st.params.vector_dimension,
                    st.params.session_ttl_ms,
                    st.params.max_sessions,
                    params.vector_dimension,
                    params.session_ttl_ms,
                    params.max_sessions
                ),
            });
        }
        let header = FileHeader {
            params,
            file_id: st.file_id,
        };
        // SAFETY: we hold the state lock exclusively, and nothing reads the header through
        // this mapping but snapshot streaming: a snapshot taken before this moment (of a
        // store with no data yet) that is still being sent would carry the new header and
        // fail its checksum at the receiver, which then asks again.
        unsafe { st.data.write_at(0, &header.encode()) };
        st.data.sync(HEADER_LEN).map_err(|e| self.note_failure(e))?;
        st.params = params;
        tracing::info!(?params, "store adopted the cluster's parameters");
        Ok(())
    }

    /// Checkpoints under the checkpoint lock and returns the data file and the record
    /// written, for a snapshot of exactly what it covers.
    pub(crate) fn checkpoint_now(&self) -> Result<(Arc<DataFile>, Checkpoint, ContentDigest)> {
        self.check_poisoned()?;
        let _ck = self.inner.checkpoint_lock.lock();
        let (data, ck, digest) = {
            let st = self.inner.state.read();
            let digest = super::read::digest_of(&st);
            (st.data.clone(), st.checkpoint_record(), digest)
        };
        self.persist(&data, &ck)?;
        self.inner.state.write().durable = DurableState {
            data_len: ck.durable_len,
            version: ck.last_version,
            position: ck.position.clone(),
        };
        Ok((data, ck, digest))
    }

    /// Syncs `data` up to the checkpoint's durable length, then writes the checkpoint.
    pub(crate) fn persist(&self, data: &crate::file::DataFile, ck: &Checkpoint) -> Result<()> {
        let started = Instant::now();
        data.sync(ck.durable_len)
            .map_err(|e| self.note_failure(e))?;
        checkpoint::write_atomically(&self.inner.dir, &ck.encode())
            .map_err(|e| self.note_failure(e))?;
        self.inner.checkpoints.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            event = "checkpoint",
            version = ck.last_version,
            durable_len = ck.durable_len,
            elapsed_us = started.elapsed().as_micros() as u64,
            "checkpoint written"
        );
        Ok(())
    }
}
