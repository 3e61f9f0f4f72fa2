//! Sutra's Raft storage: the RocksDB log store, which is the node's write-ahead log, and
//! the openraft state machine over the storage engine.
//!
//! It owns what openraft stores: log entries, the vote, the committed and purged log ids
//! ([`LogStore`]), and how committed entries reach the engine, how snapshots are built
//! from it and installed into it ([`StateMachine`]). It does not own the network (peer RPC
//! and snapshot streaming live in `node`), the Raft configuration, or anything about
//! clients; the engine knows nothing of Raft.
//!
//! ## Write path
//!
//! ```text
//!  Raft::client_write(Command { batch, time_ms })        leader stamps time_ms
//!     │
//!     ▼
//!  LogStore::append ── RocksDB write, no sync ──▶ entries readable at once
//!     │                     │
//!     │                     └─ callback queued ─▶ sync thread: take all queued callbacks,
//!     │                                           ONE flush_wal(fsync), complete them all
//!     │                                           (group commit; a failed fsync poisons)
//!     ▼
//!  replicate to followers (each appends + fsyncs the same way)
//!     │
//!     ▼  quorum durable → committed
//!  LogStore::save_committed (synced)
//!     │
//!     ▼
//!  StateMachine::apply ── Engine::apply(batch, version = index + 1,
//!     │                                 position = {log id, membership}, time_ms)
//!     │                     records appended through the mmap, no fsync: the log is the WAL
//!     ▼
//!  CommandResponse { log_index, outcome } ─▶ client
//!
//!  SnapshotBuilder::build_snapshot ─▶ Engine::snapshot (checkpoint: msync + fsync)
//!     └─ only then may openraft purge the log up to it (keeping a tail)
//! ```
//!
//! After a crash the engine recovers to its last checkpoint, whose position says which
//! entry it covers; openraft re-applies the committed entries after it from the log.

mod command;
mod error;
mod log_store;
mod position;
mod snapshot;
mod snapshot_builder;
mod state_machine;
mod types;

pub use command::{Command, CommandResponse};
pub use error::{Error, Result};
pub use log_store::{ENTRIES_CF, LogStore, LogStoreStats, META_CF};
pub use position::AppliedPosition;
pub use snapshot::{SnapshotData, SnapshotReceiver};
pub use snapshot_builder::{Snapshot, SnapshotBuilder};
pub use state_machine::{StateMachine, engine_version, log_index_of_version};
pub use types::*;
