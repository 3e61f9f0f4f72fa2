//! Errors of the Raft storage layer.
//!
//! openraft's storage traits speak `std::io::Error`; every [`Error`] crosses that boundary
//! through [`Error::into_io`], which keeps this enum as the source so callers (and tests)
//! can downcast it back. openraft turns any storage error into `Fatal::StorageError` and
//! stops the node: storage failures are fatal by design.

use std::io;

/// Result alias for Raft storage operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Failures of the log store and the state machine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A stored log entry does not check out (bad CRC32C, undecodable, or stored under the
    /// wrong index). The log is damaged: the node must not serve from it; re-seed it from a
    /// peer.
    #[error("log entry at index {index} is corrupted: {reason}")]
    CorruptedEntry {
        /// Raft log index of the damaged entry.
        index: u64,
        /// What failed to check out.
        reason: String,
    },

    /// A metadata record of the log store (vote, committed or purged log id) does not check
    /// out.
    #[error("log store record {key:?} is corrupted: {reason}")]
    CorruptedMeta {
        /// Key of the damaged record.
        key: &'static str,
        /// What failed to check out.
        reason: String,
    },

    /// The log has a hole: an entry is missing between two present ones.
    #[error("log entry at index {index} is missing inside the stored range")]
    MissingEntry {
        /// The first absent index.
        index: u64,
    },

    /// The applied position the engine returned cannot be decoded.
    #[error("applied position stored in the engine is corrupted: {reason}")]
    CorruptedPosition {
        /// What failed to decode.
        reason: String,
    },

    /// An earlier WAL fsync failed. The kernel may have dropped dirty pages, so the log
    /// store refuses every later write; restart the node to recover from what is on disk.
    #[error("log store is poisoned: an earlier WAL sync failed ({cause}); restart the node")]
    Poisoned {
        /// The first failure.
        cause: String,
    },

    /// A group-commit WAL fsync failed. The appends waiting on it are not durable and the
    /// store is now poisoned.
    #[error("WAL fsync failed: {cause}; the log store is poisoned")]
    SyncFailed {
        /// The failure.
        cause: String,
    },

    /// RocksDB failed.
    #[error("log store {op} failed: {source}")]
    LogStore {
        /// What the log store was doing.
        op: &'static str,
        /// The RocksDB error.
        #[source]
        source: rocksdb::Error,
    },

    /// The storage engine failed (poisoned, disk full, I/O). Nothing was applied.
    #[error("storage engine {op} failed: {source}")]
    Engine {
        /// What the state machine asked the engine to do.
        op: &'static str,
        /// The engine error.
        #[source]
        source: sutra_engine::Error,
    },

    /// A snapshot's metadata and its data disagree.
    #[error("snapshot does not match its metadata: {reason}")]
    SnapshotMismatch {
        /// What disagrees.
        reason: String,
    },

    /// Encoding a value for storage failed.
    #[error("encoding {what} failed: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The codec error.
        #[source]
        source: postcard::Error,
    },

    /// A blocking storage task panicked or was cancelled.
    #[error("storage task {op} did not finish: {reason}")]
    Task {
        /// What the task was doing.
        op: &'static str,
        /// Why it did not finish.
        reason: String,
    },
    /// A data directory could not be made from a backup.
    #[error("restore: {0}")]
    Restore(String),
}

impl Error {
    /// Wraps the error for openraft's storage traits, keeping `self` as the source.
    pub fn into_io(self) -> io::Error {
        io::Error::other(self)
    }

    /// The [`Error`] inside an `io::Error` made by [`Error::into_io`], if any.
    pub fn from_io(e: &io::Error) -> Option<&Error> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<Error>())
    }

    pub(crate) fn log_store(op: &'static str) -> impl FnOnce(rocksdb::Error) -> Self {
        move |source| Self::LogStore { op, source }
    }

    /// Whether the engine found the disk full (see `sutra_engine::Error::is_no_space`).
    pub fn is_no_space(&self) -> bool {
        matches!(self, Self::Engine { source, .. } if source.is_no_space())
    }

    pub(crate) fn restore(e: io::Error) -> Self {
        Self::Restore(e.to_string())
    }

    pub(crate) fn engine(op: &'static str) -> impl FnOnce(sutra_engine::Error) -> Self {
        move |source| Self::Engine { op, source }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        e.into_io()
    }
}
