//! Sutra's backup file: an online, consistent copy of a whole store at one applied log
//! index, as one self-checking file.
//!
//! ```text
//! 0  magic "SUTRABAK" | 8 u32 format | 12 u32 frame size
//! 16 frames: u32 length | bytes | u32 CRC32C of the bytes     (the engine's snapshot
//!    stream, cut into frames of at most the frame size; a frame of length 0 ends it)
//!    manifest JSON | u32 manifest length | SHA-256 of the manifest JSON | "SUTRAEND"
//! ```
//!
//! All integers are little-endian. The [`Manifest`] names the cluster, the applied index
//! and term, the membership and cluster parameters, the binary that made it, the
//! SHA-256 of the payload (the frames' bytes in order) and the content hash at that
//! index (the one `GetStats` reports), so a backup can be proven equal to the cluster,
//! not only intact. Every check names the file offset where it failed.
//!
//! [`BackupWriter`] writes a file (to a temporary name, fsynced, renamed);
//! [`BackupReader`] reads the manifest and streams the payload, checking every frame;
//! [`install`] turns a payload into a store, and [`verify`] proves a file end to end.

mod file;
mod install;
mod manifest;

pub use file::{BackupReader, BackupWriter, FRAME_BYTES};
pub use install::{InstallReport, install, verify};
pub use manifest::{FORMAT_VERSION, Manifest};

/// What is wrong with a backup file, or what failed while reading or writing it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read or written.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is damaged or not a backup: what and where.
    #[error("{}: corrupt at offset {offset}: {what}", path.display())]
    Corrupt {
        /// The file.
        path: std::path::PathBuf,
        /// Byte offset in the file where the check failed.
        offset: u64,
        /// What failed.
        what: String,
    },
    /// The payload is intact but does not hold what the manifest says.
    #[error("{}: {what}", path.display())]
    Mismatch {
        /// The file.
        path: std::path::PathBuf,
        /// What differs.
        what: String,
    },
    /// The store refused the payload.
    #[error("installing the backup: {0}")]
    Engine(#[from] sutra_engine::Error),
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
