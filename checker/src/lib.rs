//! Checks the operation histories of Sutra fault runs.
//!
//! The cluster tests and `sutra drill` record every client operation (invoked, then ok,
//! failed or unknown) in a [`History`], read the final state back after the faults,
//! and hand both to the checks:
//!
//! - [`check_linearizability`]: is there one order of all operations, consistent with
//!   real time, in which every result is what a single register per key would give?
//! - [`check_durability`]: is every acknowledged write still there or overwritten, was
//!   nothing applied twice, and is nothing visible that failed or that nobody wrote?
//! - [`stale_reads`]: which reads returned an older state than one already visible when
//!   they began (per read, so it also takes reads that promise no more than that)?
//!
//! While a run goes on, the same [`History`] answers what the run waits for and measures:
//! [`Counts`] of outcomes, acknowledgments after an instant, the highest acknowledged
//! version, and per operation the [`Reply`] (served by, leader, deduplicated) and the
//! invoke and complete times.
//!
//! # The model
//!
//! Each key is a register holding a value or nothing, with put, delete, read and
//! compare-and-set ([`OpKind`]). Versions are the cluster's log positions, so they
//! grow along the order of writes; when the recorder reports them ([`Outcome::Ok`])
//! the checker also requires reported versions to grow and reads to see the version of
//! the value they return. A compare-and-set is recorded with the *value* its expected
//! version carries: since every write stores a value unique for its key, the key is at
//! that version exactly when it holds that value.
//!
//! An operation with an unknown outcome may take effect at any time after it was
//! invoked, or never; a failed one never did. Keys are checked one by one.
//!
//! # What the recorder must do
//!
//! - Give every write and compare-and-set a value unique for its key (for example
//!   `"<client>-<sequence>"`), so a value names the one write that produced it. A
//!   version 0 condition is recorded as `expected: None`.
//! - Call [`History::invoke`] right before sending and [`History::complete`] (or
//!   [`History::complete_read`]) right after the answer. Record [`Outcome::Failed`]
//!   only when the write certainly did not apply; when in doubt, [`Outcome::Unknown`].
//!   A compare-and-set refused for its condition is [`Outcome::Mismatch`].
//! - Start from keys that do not exist, or record the writes that created them: the
//!   model starts every key absent.
//! - Versions, when recorded, must be on one scale: what a write returns is what a read
//!   of that value reports and what the final state holds.
//! - Record only linearizable reads for [`check_linearizability`]; a read at a weaker
//!   consistency would be judged against a stronger promise than it made. A recorder that
//!   keeps such reads in the same history (tagged, see [`Op::tag`]) leaves them out of
//!   what it hands to that check.
//!
//! The crate owns the model and the checks; it knows nothing of gRPC or the client.

mod durability;
mod error;
mod history;
mod linearizability;
mod model;
mod stale;
#[cfg(test)]
mod test_support;
mod value;

pub use durability::{
    DurabilityIssue, DurabilityOptions, DurabilityReport, FinalState, Stored, check_durability,
    check_durability_with,
};
pub use error::{Error, Result};
pub use history::{Counts, History, Op, OpId, OpKind, Outcome, Reply};
pub use linearizability::{
    CheckOptions, Incomplete, KeyResult, LinearizabilityReport, Verdict, Violation,
    check_linearizability,
};
pub use stale::{StaleRead, stale_reads};
pub use value::Value;
