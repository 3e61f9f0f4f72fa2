//! Sutra's storage engine: the state machine each node runs behind the Raft log.
//!
//! It owns the bytes of one store on one node: concepts (content, embedding,
//! attributes), the edges between them, and the client-session table that makes
//! writes exactly-once. It knows nothing of Raft, networks or gRPC; the applied
//! "position" it persists is opaque bytes chosen by the caller.
//!
//! ```text
//!   apply(batch, version, position)          reads: get · scan · neighbors · search
//!        │ validate, check CAS, dedup               │ (shared lock, zero-copy from the map)
//!        ▼                                          ▼
//!   ┌─────────────── RwLock<State> ─────────────────────────────────┐
//!   │ Index: BTreeMap id→record · out/in adjacency · live bytes     │
//!   │ SessionTable: client → (last sequence, outcome)               │
//!   └───────────────┬───────────────────────────────────────────────┘
//!                   │ append records (no fsync)
//!                   ▼
//!   storage.dat  [header | rec | rec | ... | durable_len | rec ... ]  (mmap, append-only)
//!   checkpoint   {file id, durable_len, version, position, sessions, crc}
//!        ▲ checkpoint(): msync + fdatasync data, then tmp + fsync + rename + fsync dir
//!        │ snapshot():   checkpoint + immutable prefix, streamed in chunks
//!        │ compact():    live records → storage.dat.compact → swap
//! ```
//!
//! Durability comes from the Raft log: records written after the last checkpoint
//! are cut away on open and re-applied from the log. See `docs/file-format.md` for the
//! byte layouts and the assumptions about the underlying media.

mod checkpoint;
mod codec;
mod config;
mod digest;
mod engine;
mod error;
mod file;
mod index;
mod knn;
mod prefix_crc;
mod record;
mod session;
mod snapshot;
mod types;
mod validate;

pub use config::{CompactionConfig, EngineConfig, Limits, StoreParams};
pub use digest::ContentDigest;
pub use engine::{CompactionReport, DurableState, Engine, EngineStats};
pub use error::{Error, Result, ValidationError};
pub use snapshot::{Snapshot, SnapshotInstaller, SnapshotMeta, StagedSnapshot};
pub use types::*;
pub use validate::{check_text, validate_concept, validate_vector};
