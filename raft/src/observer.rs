//! [`Observer`]: what the Raft layer reports as it works (WAL syncs, snapshots sent and
//! installed, the stages of a write), for the node's metrics. The log store, the state
//! machine, the proposer and the peer network each call the observer they were given; every method defaults to nothing, and
//! without one nothing is reported. Calls are made on the hot path (a WAL sync), so an
//! observer only bumps counters and never blocks.

use std::sync::Arc;
use std::time::Duration;

/// Receives what the Raft layer reports.
pub trait Observer: Send + Sync + std::fmt::Debug + 'static {
    /// A group-commit WAL fsync succeeded: how long it took and how many log entries it
    /// made durable (0 when it covered only empty appends).
    fn wal_synced(&self, _elapsed: Duration, _entries: u64) {}

    /// A write proposed on this node (the leader, for its own clients or relayed by a
    /// follower) was applied here: the time from its proposal to the start of its apply
    /// (append, replication to a quorum, fsync, commit), and the apply.
    fn write_applied(&self, _propose: Duration, _apply: Duration) {}

    /// A snapshot was streamed to a follower and the follower accepted it.
    fn snapshot_sent(&self) {}

    /// A snapshot (received from the leader) replaced this node's state machine.
    fn snapshot_installed(&self) {}
}

/// An observer shared by the parts of one node.
pub type SharedObserver = Arc<dyn Observer>;
