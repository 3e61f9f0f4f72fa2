//! The history of one round: every operation the drill's writers and readers invoked,
//! when it was invoked and completed, and what came of it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What an operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    /// A put of `value` (unique within the drill) to the key.
    Write {
        /// The content written.
        value: String,
    },
    /// A LINEARIZABLE (or LEASE) read of the key.
    Read {
        /// The content read; `None` if the key did not exist.
        value: Option<String>,
    },
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Acknowledged (a write) or answered (a read).
    Ok,
    /// Definitely not applied (refused, or never reached a node).
    Failed,
    /// A write that may or may not have been applied (its deadline passed after it
    /// reached a node).
    Unknown,
}

/// One operation of the history.
#[derive(Debug, Clone)]
pub struct OpRecord {
    /// The task that ran it (writers `0..W`, readers after them, probes last).
    pub process: u32,
    /// The concept id.
    pub key: String,
    /// What it did.
    pub kind: OpKind,
    /// When it was invoked.
    pub invoke: Instant,
    /// When its outcome was known.
    pub complete: Instant,
    /// Its outcome.
    pub outcome: Outcome,
    /// A write's acknowledged version, or the version a read saw (0: absent).
    pub version: u64,
    /// The node that answered.
    pub served_by: u64,
    /// The leader as the answering node knew it.
    pub leader_id: u64,
    /// Where the op came from when it is not plain load (`"probe-linearizable"`,
    /// `"probe-lease"`, `"final"`).
    pub tag: Option<&'static str>,
}

impl OpRecord {
    /// True for an acknowledged write.
    pub fn is_acked_write(&self) -> bool {
        self.outcome == Outcome::Ok && matches!(self.kind, OpKind::Write { .. })
    }

    /// The written value of a write.
    pub fn written(&self) -> Option<&str> {
        match &self.kind {
            OpKind::Write { value } => Some(value),
            OpKind::Read { .. } => None,
        }
    }
}

/// Collects the operations of concurrent tasks.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    ops: Arc<Mutex<Vec<OpRecord>>>,
}

impl Recorder {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a completed operation.
    pub fn push(&self, op: OpRecord) {
        self.ops.lock().expect("history lock").push(op);
    }

    /// Acknowledged writes so far.
    pub fn acked_writes(&self) -> usize {
        self.ops
            .lock()
            .expect("history lock")
            .iter()
            .filter(|o| o.is_acked_write())
            .count()
    }

    /// Every operation, in completion order.
    pub fn ops(&self) -> Vec<OpRecord> {
        self.ops.lock().expect("history lock").clone()
    }
}

/// Which acknowledgement ends an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Any write acknowledged after the fault (a follower fault, a restart of all).
    AnyAck,
    /// A write acknowledged after the fault under a leader other than this node: an
    /// answer the old leader sent before the fault and that arrives late does not count.
    NewLeader(u64),
    /// The longest stretch without an acknowledged write, from the fault until the first
    /// write acknowledged after this instant (a procedure that takes nodes down one at a
    /// time, at moments the drill does not know).
    LongestGapUntil(Instant),
}

/// The RTO of a fault at `fault_at`: from the fault to the completion of the first
/// write acknowledged after it that `recovery` accepts. `None` if there is none.
pub fn rto(ops: &[OpRecord], fault_at: Instant, recovery: Recovery) -> Option<Duration> {
    let old_leader = match recovery {
        Recovery::LongestGapUntil(end) => return longest_gap(ops, fault_at, end),
        Recovery::AnyAck => None,
        Recovery::NewLeader(old) => Some(old),
    };
    ops.iter()
        .filter(|o| o.is_acked_write() && o.complete >= fault_at)
        .filter(|o| old_leader.is_none_or(|old| o.leader_id != 0 && o.leader_id != old))
        .map(|o| o.complete - fault_at)
        .min()
}

/// The longest time without an acknowledged write between `from` and the first write
/// acknowledged at or after `end`; `None` if no write was acknowledged after `end`.
fn longest_gap(ops: &[OpRecord], from: Instant, end: Instant) -> Option<Duration> {
    let mut acks: Vec<Instant> = ops
        .iter()
        .filter(|o| o.is_acked_write() && o.complete >= from)
        .map(|o| o.complete)
        .collect();
    acks.sort_unstable();
    let last = acks.iter().position(|&t| t >= end)?;
    let mut longest = Duration::ZERO;
    let mut previous = from;
    for &t in &acks[..=last] {
        longest = longest.max(t - previous);
        previous = t;
    }
    Some(longest)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A write of `value` to `key`, `(invoke, complete)` ms after `t0`.
    pub(crate) fn write(
        t0: Instant,
        key: &str,
        value: &str,
        at: (u64, u64),
        outcome: Outcome,
        version: u64,
        leader_id: u64,
    ) -> OpRecord {
        OpRecord {
            process: 0,
            key: key.into(),
            kind: OpKind::Write {
                value: value.into(),
            },
            invoke: t0 + Duration::from_millis(at.0),
            complete: t0 + Duration::from_millis(at.1),
            outcome,
            version,
            served_by: leader_id,
            leader_id,
            tag: None,
        }
    }

    /// A read of `key` seeing `value` at `version`.
    pub(crate) fn read(
        t0: Instant,
        key: &str,
        value: Option<&str>,
        at: (u64, u64),
        version: u64,
    ) -> OpRecord {
        OpRecord {
            process: 1,
            key: key.into(),
            kind: OpKind::Read {
                value: value.map(str::to_string),
            },
            invoke: t0 + Duration::from_millis(at.0),
            complete: t0 + Duration::from_millis(at.1),
            outcome: Outcome::Ok,
            version,
            served_by: 1,
            leader_id: 1,
            tag: None,
        }
    }

    #[test]
    fn rto_is_the_first_ack_after_the_fault_that_recovery_accepts() {
        let t0 = Instant::now();
        let fault = t0 + Duration::from_millis(1000);
        let ops = vec![
            write(t0, "k", "a", (900, 950), Outcome::Ok, 10, 1),
            // Invoked before the fault, answered by the old leader just after it.
            write(t0, "k", "b", (990, 1005), Outcome::Ok, 11, 1),
            write(t0, "k", "c", (995, 1700), Outcome::Unknown, 0, 0),
            // Retried through the failover, acknowledged by the new leader.
            write(t0, "k", "d", (999, 1800), Outcome::Ok, 14, 2),
            write(t0, "k", "e", (1801, 1850), Outcome::Ok, 15, 2),
        ];
        assert_eq!(
            rto(&ops, fault, Recovery::NewLeader(1)),
            Some(Duration::from_millis(800))
        );
        assert_eq!(
            rto(&ops, fault, Recovery::AnyAck),
            Some(Duration::from_millis(5))
        );
        assert_eq!(
            rto(&ops, t0 + Duration::from_secs(5), Recovery::AnyAck),
            None
        );
        assert_eq!(rto(&ops[..3], fault, Recovery::NewLeader(1)), None);
    }

    #[test]
    fn a_procedure_rto_is_its_longest_stretch_without_an_ack() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let ops = vec![
            write(t0, "k", "a", (0, 100), Outcome::Ok, 1, 1),
            // Node 1 goes down at 500: nothing acknowledged until 1300.
            write(t0, "k", "b", (150, 1300), Outcome::Ok, 2, 2),
            write(t0, "k", "c", (1300, 1320), Outcome::Ok, 3, 2),
            write(t0, "k", "x", (1320, 1900), Outcome::Unknown, 0, 0),
            // The procedure ends at 2000; the next ack, at 2400, closes the last gap.
            write(t0, "k", "d", (1330, 2400), Outcome::Ok, 4, 2),
            write(t0, "k", "e", (2400, 2410), Outcome::Ok, 5, 2),
        ];
        let gap = |from, end| rto(&ops, at(from), Recovery::LongestGapUntil(at(end)));
        assert_eq!(gap(0, 2000), Some(Duration::from_millis(1200)));
        assert_eq!(gap(1400, 2000), Some(Duration::from_millis(1000)));
        // No write acknowledged after the procedure: no recovery.
        assert_eq!(gap(0, 3000), None);
    }
}
