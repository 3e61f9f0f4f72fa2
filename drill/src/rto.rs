//! The recovery time of a fault, measured on the round's history
//! ([`sutra_checker::History`]): from the fault to the first write acknowledged after it
//! that shows the cluster serving again.

use std::time::Duration;

use sutra_checker::Op;

/// Which acknowledgement ends an outage. Times are on the round history's clock
/// (nanoseconds since it started, [`sutra_checker::History::time_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Any write acknowledged after the fault (a follower fault, a restart of all).
    AnyAck,
    /// A write acknowledged after the fault under a leader other than this node: an
    /// answer the old leader sent before the fault and that arrives late does not count.
    NewLeader(u64),
    /// The longest stretch without an acknowledged write, from the fault until the first
    /// write acknowledged after this time (a procedure that takes nodes down one at a
    /// time, at moments the drill does not know).
    LongestGapUntil(u64),
}

/// When `op` completed, if it is an acknowledged write.
fn acked_at(op: &Op) -> Option<u64> {
    op.is_acknowledged_mutation()
        .then_some(op.complete)
        .flatten()
}

/// The RTO of a fault at `fault_at`: from the fault to the completion of the first
/// write acknowledged after it that `recovery` accepts. `None` if there is none.
pub fn rto(ops: &[Op], fault_at: u64, recovery: Recovery) -> Option<Duration> {
    let old_leader = match recovery {
        Recovery::LongestGapUntil(end) => return longest_gap(ops, fault_at, end),
        Recovery::AnyAck => None,
        Recovery::NewLeader(old) => Some(old),
    };
    ops.iter()
        .filter(|o| {
            old_leader.is_none_or(|old| o.reply.leader_id.is_some_and(|l| l != 0 && l != old))
        })
        .filter_map(acked_at)
        .filter(|&c| c >= fault_at)
        .map(|c| Duration::from_nanos(c - fault_at))
        .min()
}

/// The longest time without an acknowledged write between `from` and the first write
/// acknowledged at or after `end`; `None` if no write was acknowledged after `end`.
fn longest_gap(ops: &[Op], from: u64, end: u64) -> Option<Duration> {
    let mut acks: Vec<u64> = ops
        .iter()
        .filter_map(acked_at)
        .filter(|&c| c >= from)
        .collect();
    acks.sort_unstable();
    let last = acks.iter().position(|&t| t >= end)?;
    let mut longest = 0;
    let mut previous = from;
    for &t in &acks[..=last] {
        longest = longest.max(t - previous);
        previous = t;
    }
    Some(Duration::from_nanos(longest))
}

#[cfg(test)]
pub(crate) mod tests {
    use sutra_checker::{OpId, OpKind, Outcome, Reply, Value};

    use super::*;

    /// Milliseconds on the history clock.
    pub(crate) const MS: u64 = 1_000_000;

    /// An operation on `key`, invoked and completed `at` ms after the history began.
    pub(crate) fn op(
        id: u64,
        key: &str,
        kind: OpKind,
        at: (u64, u64),
        outcome: Outcome,
        leader_id: Option<u64>,
    ) -> Op {
        Op {
            id: OpId(id),
            client: format!("p{id}"),
            key: key.into(),
            kind,
            invoke: at.0 * MS,
            complete: Some(at.1 * MS),
            outcome,
            reply: Reply {
                served_by: leader_id,
                leader_id,
                deduplicated: false,
            },
            tag: None,
        }
    }

    /// A write of `value` to `key`: acknowledged at `version` by `leader` (`Some`), or
    /// ended as `outcome`.
    pub(crate) fn write(
        id: u64,
        key: &str,
        value: &str,
        at: (u64, u64),
        outcome: Outcome,
        leader_id: Option<u64>,
    ) -> Op {
        let kind = OpKind::Write {
            value: value.into(),
        };
        op(id, key, kind, at, outcome, leader_id)
    }

    /// A read of `key` that saw `value` at `version` (absent: no version).
    pub(crate) fn read(
        id: u64,
        key: &str,
        value: Option<&str>,
        at: (u64, u64),
        version: u64,
    ) -> Op {
        let kind = OpKind::Read {
            observed: value.map(Value::from),
        };
        let outcome = Outcome::Ok {
            version: value.map(|_| version),
        };
        op(id, key, kind, at, outcome, Some(1))
    }

    pub(crate) fn ok(version: u64) -> Outcome {
        Outcome::Ok {
            version: Some(version),
        }
    }

    #[test]
    fn rto_is_the_first_ack_after_the_fault_that_recovery_accepts() {
        let fault = 1000 * MS;
        let ops = vec![
            write(0, "k", "a", (900, 950), ok(10), Some(1)),
            // Invoked before the fault, answered by the old leader just after it.
            write(1, "k", "b", (990, 1005), ok(11), Some(1)),
            write(2, "k", "c", (995, 1700), Outcome::Unknown, None),
            // Retried through the failover, acknowledged by the new leader.
            write(3, "k", "d", (999, 1800), ok(14), Some(2)),
            write(4, "k", "e", (1801, 1850), ok(15), Some(2)),
        ];
        assert_eq!(
            rto(&ops, fault, Recovery::NewLeader(1)),
            Some(Duration::from_millis(800))
        );
        assert_eq!(
            rto(&ops, fault, Recovery::AnyAck),
            Some(Duration::from_millis(5))
        );
        assert_eq!(rto(&ops, 5000 * MS, Recovery::AnyAck), None);
        assert_eq!(rto(&ops[..3], fault, Recovery::NewLeader(1)), None);
    }

    #[test]
    fn a_procedure_rto_is_its_longest_stretch_without_an_ack() {
        let ops = vec![
            write(0, "k", "a", (0, 100), ok(1), Some(1)),
            // Node 1 goes down at 500: nothing acknowledged until 1300.
            write(1, "k", "b", (150, 1300), ok(2), Some(2)),
            write(2, "k", "c", (1300, 1320), ok(3), Some(2)),
            write(3, "k", "x", (1320, 1900), Outcome::Unknown, None),
            // The procedure ends at 2000; the next ack, at 2400, closes the last gap.
            write(4, "k", "d", (1330, 2400), ok(4), Some(2)),
            write(5, "k", "e", (2400, 2410), ok(5), Some(2)),
        ];
        let gap = |from: u64, end: u64| rto(&ops, from * MS, Recovery::LongestGapUntil(end * MS));
        assert_eq!(gap(0, 2000), Some(Duration::from_millis(1200)));
        assert_eq!(gap(1400, 2000), Some(Duration::from_millis(1000)));
        // No write acknowledged after the procedure: no recovery.
        assert_eq!(gap(0, 3000), None);
    }
}
