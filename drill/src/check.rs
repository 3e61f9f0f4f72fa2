//! A round's verdict: its history ([`sutra_checker::History`]) and the final state read
//! back, checked by `sutra-checker`, assembled into the counts and details of the round
//! report.
//!
//! - **durable** ([`sutra_checker::check_durability_with`]): every acknowledged write is
//!   in the final state or superseded by a later one; a value is seen at one version
//!   only (a retry applied twice shows it again at a later version); nothing failed or
//!   unwritten is visible; and, every drill write being a single put and so one log
//!   entry, no version is seen for two writes (a log position acknowledged, lost and
//!   reused);
//! - **linearizable** ([`sutra_checker::check_linearizability`]): one order of the
//!   round's writes and LINEARIZABLE reads, consistent with real time, explains every
//!   result;
//! - **no stale read** ([`sutra_checker::stale_reads`]): no read, the LEASE probes of a
//!   resumed leader included, returned less than was acknowledged or read before it began.
//!
//! An unknown write is *applied* if its value was seen (read or in the final state),
//! else *absent* (never applied, or applied and overwritten before anyone read it).

use sutra_checker::{
    CheckOptions, Counts, DurabilityOptions, FinalState, Op, Verdict, check_durability_with,
    check_linearizability, stale_reads,
};

/// The tag of a LINEARIZABLE read through a resumed old leader.
pub(crate) const PROBE_LINEARIZABLE: &str = "probe-linearizable";
/// The tag of a LEASE read through a resumed old leader: checked for staleness, left out
/// of the linearizability search (which takes LINEARIZABLE reads only).
pub(crate) const PROBE_LEASE: &str = "probe-lease";
/// The tag of the LINEARIZABLE reads of every key after the round.
pub(crate) const FINAL_READ: &str = "final";

/// How many problems a check describes in words; the counts cover all of them.
const MAX_DETAILS: usize = 10;

/// What the checks found in one round.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CheckResult {
    /// Writes acknowledged.
    pub acked: usize,
    /// Writes that definitely failed.
    pub failed: usize,
    /// Writes with an unknown outcome.
    pub unknown: usize,
    /// Unknown writes whose value was seen (read, or in the final state).
    pub unknown_applied: usize,
    /// Unknown writes whose value was never seen.
    pub unknown_absent: usize,
    /// Reads answered.
    pub reads: usize,
    /// Acknowledged writes missing from the final state (or whose version another write
    /// was seen at).
    pub lost: usize,
    /// Writes seen applied more than once.
    pub duplicates: usize,
    /// Violations: keys whose history is not linearizable, stale LEASE probe reads, and
    /// values seen that failed or that no write put (and a history the checker refused).
    pub violations: usize,
    /// Reads that returned less than a write acknowledged, or another read answered,
    /// before they began.
    pub stale_reads: usize,
    /// The verdict of `sutra-checker`'s linearizability search ("linearizable", "not
    /// linearizable", "unknown (search budget)", "not checked"); empty if it did not run.
    pub linearizability: String,
    /// The first problems, in words.
    pub details: Vec<String>,
}

impl CheckResult {
    /// True if nothing was lost, duplicated or out of order.
    pub fn passed(&self) -> bool {
        self.lost == 0 && self.duplicates == 0 && self.violations == 0
    }

    fn note(&mut self, what: String) {
        if self.details.len() < MAX_DETAILS {
            self.details.push(what);
        }
    }
}

/// Checks a round: `ops` is its history (probe and final reads included), `final_state`
/// the value and version of every key the round wrote that exists, read LINEARIZABLE
/// after the load stopped.
pub fn check_round(ops: &[Op], final_state: &FinalState) -> CheckResult {
    let counts = Counts::of(ops);
    let mut r = CheckResult {
        acked: counts.acknowledged,
        failed: counts.failed,
        unknown: counts.unknown,
        reads: counts.reads,
        ..CheckResult::default()
    };

    let single_puts = DurabilityOptions {
        versions_unique: true,
    };
    match check_durability_with(ops, final_state, &single_puts) {
        Ok(d) => {
            r.lost = d.lost;
            r.duplicates = d.duplicated;
            r.violations += d.failed_visible + d.unexplained;
            r.unknown_applied = d.unknown_applied;
            r.unknown_absent = d.unknown_absent;
            // The report's lines after its summary: one per issue.
            for line in d.to_string().lines().skip(1) {
                r.note(line.trim().to_string());
            }
        }
        Err(e) => {
            r.violations += 1;
            r.note(format!("sutra-checker refused the history: {e}"));
        }
    }

    match stale_reads(ops) {
        Ok(stale) => {
            r.stale_reads = stale.len();
            // Stale LINEARIZABLE reads are violations of the search below already.
            r.violations += stale
                .iter()
                .filter(|s| s.read.tag.as_deref() == Some(PROBE_LEASE))
                .count();
            for s in &stale {
                r.note(s.to_string());
            }
        }
        Err(e) => r.note(format!("sutra-checker refused the history: {e}")),
    }

    let linearizable: Vec<Op> = ops
        .iter()
        .filter(|o| o.tag.as_deref() != Some(PROBE_LEASE))
        .cloned()
        .collect();
    let options = CheckOptions {
        time_limit: Some(std::time::Duration::from_secs(30)),
        ..CheckOptions::default()
    };
    match check_linearizability(&linearizable, &options) {
        Ok(lin) => {
            r.linearizability = match lin.verdict {
                Verdict::Linearizable => "linearizable",
                Verdict::NotLinearizable => "not linearizable",
                Verdict::Unknown => "unknown (search budget)",
            }
            .to_string();
            for v in lin.violations() {
                r.violations += 1;
                r.note(format!("{}: {}", v.key, v.explanation));
            }
        }
        Err(e) => {
            r.linearizability = "not checked".into();
            r.note(format!("sutra-checker refused the history: {e}"));
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use sutra_checker::{Outcome, Stored};

    use super::*;
    use crate::rto::tests::{ok, read, write};

    fn state(entries: &[(&str, &str, u64)]) -> FinalState {
        entries
            .iter()
            .map(|&(k, v, version)| {
                (
                    k.to_string(),
                    Stored {
                        value: v.into(),
                        version,
                    },
                )
            })
            .collect()
    }

    fn tagged(mut op: Op, tag: &str) -> Op {
        op.tag = Some(tag.into());
        op
    }

    #[test]
    fn a_clean_history_passes_and_unknown_writes_resolve() {
        let ops = vec![
            write(0, "k", "a", (0, 10), ok(5), Some(1)),
            write(1, "k", "b", (20, 30), Outcome::Unknown, None),
            write(2, "k", "c", (40, 50), Outcome::Unknown, None),
            write(3, "k", "d", (60, 70), Outcome::Failed, None),
            read(4, "k", Some("a"), (11, 12), 5),
            // The unknown write "b" was applied: a read saw it.
            read(5, "k", Some("b"), (31, 32), 7),
            // Concurrent with the write of "e": may or may not see it.
            write(6, "k", "e", (80, 100), ok(9), Some(1)),
            read(7, "k", Some("b"), (85, 90), 7),
            read(8, "k", Some("e"), (86, 91), 9),
            tagged(read(9, "k", Some("e"), (101, 102), 9), FINAL_READ),
        ];
        let r = check_round(&ops, &state(&[("k", "e", 9)]));
        assert!(r.passed(), "{r:?}");
        assert_eq!(r.linearizability, "linearizable");
        assert_eq!((r.acked, r.failed, r.unknown), (2, 1, 2));
        assert_eq!((r.unknown_applied, r.unknown_absent), (1, 1));
        assert_eq!((r.reads, r.stale_reads), (5, 0));
    }

    #[test]
    fn a_lost_acknowledged_write_is_found() {
        let ops = vec![
            write(0, "k", "a", (0, 10), ok(5), Some(1)),
            write(1, "k", "b", (20, 30), ok(8), Some(1)),
            write(2, "j", "c", (20, 30), ok(9), Some(1)),
        ];
        let r = check_round(&ops, &state(&[("k", "a", 5)]));
        assert_eq!(r.lost, 2, "{r:?}");
        assert!(!r.passed());
        assert!(
            r.details.iter().any(|d| d.starts_with("lost: #1")),
            "{:?}",
            r.details
        );
    }

    #[test]
    fn a_lost_write_hidden_by_a_later_one_is_found() {
        // "a" was acknowledged at version 100, then lost: the new leader reused index
        // 100 for "x" on another key, and "b" raised k's version past 100 afterwards.
        let ops = vec![
            write(0, "k", "a", (0, 10), ok(100), Some(1)),
            write(1, "j", "x", (20, 30), ok(100), Some(2)),
            write(2, "k", "b", (40, 50), ok(130), Some(2)),
        ];
        let r = check_round(&ops, &state(&[("k", "b", 130), ("j", "x", 100)]));
        assert_eq!(r.lost, 1, "{r:?}");
        assert!(
            r.details.iter().any(|d| d.contains("version 100 reused")),
            "{:?}",
            r.details
        );
        // The key ends at the acknowledged version but with another value.
        let ops = vec![write(0, "k", "a", (0, 10), ok(100), Some(1))];
        let r = check_round(&ops, &state(&[("k", "z", 100)]));
        assert!(r.lost >= 1, "{r:?}");
    }

    #[test]
    fn a_write_applied_twice_is_a_duplicate() {
        let ops = vec![
            write(0, "k", "a", (0, 10), ok(5), Some(1)),
            write(1, "k", "u", (20, 30), Outcome::Unknown, None),
            write(2, "k", "b", (40, 50), ok(8), Some(1)),
            read(3, "k", Some("u"), (31, 35), 6),
        ];
        // "a" seen again at version 9: its retry was applied a second time.
        let r = check_round(&ops, &state(&[("k", "a", 9)]));
        assert_eq!(r.duplicates, 1, "{r:?}");
        // An unknown write seen at two versions is a duplicate as well.
        let mut ops2 = ops.clone();
        ops2.push(read(4, "k", Some("u"), (36, 37), 7));
        let r = check_round(&ops2, &state(&[("k", "b", 8)]));
        assert_eq!(r.duplicates, 1, "{r:?}");
        assert_eq!(r.lost, 0);
    }

    #[test]
    fn stale_backward_future_and_invented_reads_are_violations() {
        let base = vec![
            write(0, "k", "a", (0, 10), ok(5), Some(1)),
            write(1, "k", "b", (20, 30), ok(8), Some(1)),
            write(2, "k", "f", (60, 70), Outcome::Failed, None),
        ];
        let fin = state(&[("k", "b", 8)]);
        let with = |extra: Vec<Op>| {
            let mut ops = base.clone();
            ops.extend(extra);
            check_round(&ops, &fin)
        };
        // Stale: "b" was acknowledged at 30, the read began at 40 and saw "a".
        let r = with(vec![read(3, "k", Some("a"), (40, 45), 5)]);
        assert_eq!((r.violations, r.stale_reads), (1, 1), "{r:?}");
        assert_eq!(r.linearizability, "not linearizable");
        // Absent after an acknowledged write is stale too.
        let r = with(vec![read(3, "k", None, (40, 45), 0)]);
        assert_eq!((r.violations, r.stale_reads), (1, 1), "{r:?}");
        // Backwards: a read concurrent with "b" saw it, a later one did not.
        let r = with(vec![
            read(3, "k", Some("b"), (21, 22), 8),
            read(4, "k", Some("a"), (23, 24), 5),
        ]);
        assert_eq!((r.violations, r.stale_reads), (1, 1), "{r:?}");
        // From the future: the read ended before "b" was invoked.
        let r = with(vec![read(3, "k", Some("b"), (12, 15), 8)]);
        assert_eq!(r.violations, 1, "{r:?}");
        // Invented, and a failed write seen.
        let r = with(vec![
            read(3, "k", Some("zzz"), (80, 81), 9),
            read(4, "k", Some("f"), (82, 83), 9),
        ]);
        assert!(r.violations >= 2, "{r:?}");
        assert!(!r.passed());
    }

    #[test]
    fn a_stale_lease_probe_fails_the_round_outside_the_search() {
        let ops = vec![
            write(0, "k", "a", (0, 10), ok(5), Some(1)),
            write(1, "k", "b", (20, 30), ok(8), Some(2)),
            tagged(read(2, "k", Some("a"), (40, 45), 5), PROBE_LEASE),
        ];
        let r = check_round(&ops, &state(&[("k", "b", 8)]));
        assert_eq!(r.linearizability, "linearizable", "{r:?}");
        assert_eq!((r.violations, r.stale_reads), (1, 1), "{r:?}");
        assert!(!r.passed());
    }

    #[test]
    fn a_malformed_history_fails_the_round() {
        // Two writes of one value to one key: the checker cannot tell them apart.
        let ops = vec![
            write(0, "k", "a", (0, 10), ok(5), Some(1)),
            write(1, "k", "a", (20, 30), ok(8), Some(1)),
        ];
        let r = check_round(&ops, &state(&[("k", "a", 8)]));
        assert_eq!(r.linearizability, "not checked");
        assert!(!r.passed(), "{r:?}");
    }
}
