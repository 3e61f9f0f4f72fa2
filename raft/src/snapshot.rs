//! [`SnapshotData`]: what openraft carries around as a snapshot, and [`SnapshotReceiver`],
//! which turns a stream of chunks from the leader into one.
//!
//! openraft 0.10 puts no bound on snapshot data besides `Send + 'static` and moves whole
//! snapshots between the state machine and the network (`Raft::install_full_snapshot`,
//! `RaftNetworkV2::full_snapshot`). The engine already streams snapshots in bounded
//! chunks from its immutable data prefix, and receives them straight to disk, so the data
//! is a handle, never the bytes:
//!
//! ```text
//! leader                                         follower
//! build_snapshot / get_current_snapshot          SnapshotReceiver::begin(&engine)
//!   → SnapshotData::Local(engine Snapshot)         write(offset, chunk) …  (to disk)
//!   network: meta + size + crc32c + chunks  ───▶   finish(size, crc32c)
//!            (Snapshot::read_at / chunks)            → SnapshotData::Received(StagedSnapshot)
//!                                                Raft::install_full_snapshot(vote, snapshot)
//!                                                  → state machine install_snapshot
//! ```
//!
//! Memory stays bounded by the chunk size on both sides.

use sutra_engine::{Engine, SnapshotInstaller, StagedSnapshot};

use crate::error::{Error, Result};

/// Snapshot data for openraft: a readable local snapshot or a received, verified one.
#[derive(Debug)]
#[non_exhaustive]
pub enum SnapshotData {
    /// A snapshot of a local engine, readable in chunks. This is what building a snapshot
    /// and `get_current_snapshot` return, and what the network streams to a follower with
    /// [`Snapshot::read_at`](sutra_engine::Snapshot::read_at) or
    /// [`Snapshot::chunks`](sutra_engine::Snapshot::chunks), sending
    /// [`Snapshot::meta`](sutra_engine::Snapshot::meta)'s `size` and `crc32c` along.
    ///
    /// Installing one copies it chunk by chunk into the installing engine.
    Local(sutra_engine::Snapshot),
    /// A snapshot received from the leader through [`SnapshotReceiver`]: fully on disk,
    /// length and checksum verified, ready to swap in.
    Received(StagedSnapshot),
}

impl SnapshotData {
    /// The readable snapshot, if this is a local one.
    pub fn as_local(&self) -> Option<&sutra_engine::Snapshot> {
        match self {
            Self::Local(s) => Some(s),
            Self::Received(_) => None,
        }
    }
}

/// Receives a snapshot stream from the leader into the engine's directory.
///
/// The calls do blocking file I/O; call them from a blocking context
/// (`spawn_blocking`) in async code.
#[derive(Debug)]
pub struct SnapshotReceiver {
    installer: SnapshotInstaller,
}

impl SnapshotReceiver {
    /// Starts receiving into `engine`'s directory. The engine stages into one fixed file,
    /// so only one snapshot may be received at a time per engine (openraft sends at most one
    /// per follower at a time; a newer one replaces an abandoned one).
    pub fn begin(engine: &Engine) -> Result<Self> {
        Ok(Self {
            installer: engine
                .begin_install()
                .map_err(Error::engine("begin snapshot install"))?,
        })
    }

    /// Writes the chunk that starts at `offset`; chunks must arrive in order.
    pub fn write(&mut self, offset: u64, chunk: &[u8]) -> Result<()> {
        self.installer
            .write(offset, chunk)
            .map_err(Error::engine("write snapshot chunk"))
    }

    /// Checks the stream against the sender's `size` and `crc32c` and makes it durable.
    pub fn finish(self, size: u64, crc32c: u32) -> Result<SnapshotData> {
        self.finish_staged(size, crc32c).map(SnapshotData::Received)
    }

    fn finish_staged(self, size: u64, crc32c: u32) -> Result<StagedSnapshot> {
        self.installer
            .finish(size, crc32c)
            .map_err(Error::engine("finish snapshot install"))
    }
}

/// Copies a readable snapshot (possibly of another engine) into `engine`'s staging file,
/// one bounded chunk at a time.
pub(crate) fn stage_local(
    engine: &Engine,
    snap: &sutra_engine::Snapshot,
) -> Result<StagedSnapshot> {
    const CHUNK: usize = 1 << 20;
    let mut receiver = SnapshotReceiver::begin(engine)?;
    let mut buf = vec![0u8; CHUNK];
    let mut offset = 0u64;
    loop {
        let n = snap.read_at(offset, &mut buf);
        if n == 0 {
            break;
        }
        receiver.write(offset, &buf[..n])?;
        offset += n as u64;
    }
    let meta = snap.meta();
    receiver.finish_staged(meta.size, meta.crc32c)
}
