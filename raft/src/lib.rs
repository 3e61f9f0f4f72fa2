//! Sutra's Raft layer: the RocksDB log store, which is the node's write-ahead log, the
//! openraft state machine over the storage engine, and the gRPC peer network.
//!
//! It owns what openraft stores: log entries, the vote, the committed and purged log ids
//! ([`LogStore`]), and how committed entries reach the engine, how snapshots are built
//! from it and installed into it ([`StateMachine`]). It owns how peers talk: the client side
//! ([`PeerNetwork`], openraft's network factory) and the server side ([`RaftGrpcService`],
//! `sutra.raft.RaftService`), with the wire conversions in [`pb`]. It does not own TLS (the
//! node hands in TLS-configured endpoints and a [`PeerAuth`] that checks peer certificates),
//! the Raft configuration, or anything about clients; the engine knows nothing of Raft.
//!
//! ## Peer network
//!
//! ```text
//!   node A (leader)                                   node B (follower)
//!   openraft ─ new_client ─▶ PeerNetwork               RaftGrpcService ◀─ tonic Server (mTLS)
//!                             │ cached Channel per peer   │ PeerAuth: identity + membership
//!                             ▼                           ▼
//!                           PeerClient ── AppendEntries ─▶ Raft::append_entries
//!                                      ── Vote/PreVote ──▶ Raft::vote / pre_vote
//!                                      ── TransferLeader ▶ Raft::handle_transfer_leader
//!       SnapshotData::Local ─ full_snapshot:
//!         read_at (blocking) → header + 1 MiB chunks ──▶ SnapshotReceiver (blocking, to disk)
//!                                                        → finish(size, crc32c), position check
//!                                                        → Raft::install_full_snapshot
//! ```
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
//!  StateMachine::apply ── Engine::apply(batch, version = position (index + 1),
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

pub mod cluster_id;
mod cluster_state;
mod command;
mod error;
pub mod log_position;
mod log_store;
mod network;
mod observer;
pub mod pb;
mod position;
mod propose;
pub mod restore;
mod service;
mod snapshot;
mod snapshot_builder;
mod state_machine;
mod types;

pub use cluster_id::{CLUSTER_ID_METADATA_KEY, ClusterIdentity};
pub use cluster_state::{Alarm, AlarmKind, ClusterParams, ClusterState, SharedClusterState};
pub use command::{ApplyTiming, Command, CommandResponse};
pub use error::{Error, Result};
pub use log_position::{log_index, position, position_of};
pub use log_store::{ENTRIES_CF, LogStore, LogStoreStats, META_CF};
pub use network::{
    EndpointFactory, NetworkConfig, PeerClient, PeerGrpcClient, PeerNetwork, plaintext_endpoints,
};
pub use observer::{Observer, SharedObserver};
pub use position::AppliedPosition;
pub use propose::{LogClock, ProposeError, Proposer, await_quorum_lease, read_index};
pub use service::{
    AllowAll, LeaderContactHook, PeerAuth, PeerIdentity, PeerMembership, RaftGrpcService,
    ServiceConfig, ServiceStats, peer_membership,
};
pub use snapshot::{SnapshotData, SnapshotReceiver};
pub use snapshot_builder::{Snapshot, SnapshotBuilder};
pub use state_machine::StateMachine;
pub use types::*;
