//! Errors of the storage engine.
//!
//! Two kinds of failure are kept apart:
//! - [`Error`]: the engine could not do what was asked (I/O, corruption, poisoned,
//!   bad read arguments). A write that fails this way changed nothing in memory.
//! - [`Rejection`](crate::Rejection): a write was well-formed enough to order but its
//!   content or preconditions rule it out. Rejections are deterministic, so every replica
//!   reaches the same one; they are results, not errors.

use std::path::PathBuf;

/// Result alias for engine operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An input field failed validation. `field` names it the way a client wrote it,
/// e.g. `ops[2].put_concept.embedding[7]`.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct ValidationError {
    /// Path of the offending field.
    pub field: String,
    /// What is wrong with it, for people.
    pub reason: String,
}

impl ValidationError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Failures of the engine itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A read request carried a bad argument (wrong vector length, bad page token, ...).
    #[error(transparent)]
    InvalidArgument(#[from] ValidationError),

    /// Bytes inside the durable region do not check out. The node must not serve from
    /// this store; re-seed it from a peer snapshot.
    #[error("corruption in {} at offset {offset}: {reason}", file.display())]
    Corrupted {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the damaged record or field.
        offset: u64,
        /// What failed to check out.
        reason: String,
    },

    /// An earlier fsync/msync failed. The engine refuses every later write because the
    /// kernel may have dropped dirty pages; restart the node to recover from disk.
    #[error("storage engine is poisoned: an earlier {op} failed; restart the node")]
    Poisoned {
        /// The operation that failed first.
        op: &'static str,
    },

    /// An operating-system call failed.
    #[error("{op} failed on {}: {source}", path.display())]
    Io {
        /// What the engine was doing.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The store on disk was made with parameters this process cannot serve
    /// (another vector dimension, an unknown format version).
    #[error("incompatible store {}: {reason}", path.display())]
    Incompatible {
        /// The file whose header disagrees.
        path: PathBuf,
        /// What disagrees.
        reason: String,
    },

    /// Another process holds the store's lock file.
    #[error("store {} is in use by another process", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },

    /// The data file reached its configured maximum size.
    #[error("data file is full: {needed} bytes needed, limit is {limit} bytes")]
    FileFull {
        /// Size the data file would need.
        needed: u64,
        /// `max_file_bytes`.
        limit: u64,
    },

    /// `apply` was called with a version that does not follow the last applied one.
    #[error("apply out of order: version {version} after {last}")]
    OutOfOrder {
        /// Version passed in.
        version: u64,
        /// Last applied version.
        last: u64,
    },

    /// A snapshot stream is malformed, incomplete or fails its checksum.
    #[error("bad snapshot: {reason}")]
    BadSnapshot {
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    /// Whether the disk was full: the data file could not grow. Nothing changed (growing
    /// comes before any byte is written), so the same write may be tried again once
    /// there is room.
    pub fn is_no_space(&self) -> bool {
        matches!(self, Self::Io { op: "allocate data file space", source, .. }
            if source.raw_os_error() == Some(libc::ENOSPC))
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupted(
        file: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        Self::Corrupted {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }
}
