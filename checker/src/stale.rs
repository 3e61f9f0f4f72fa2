//! The stale-read check: reads that returned an older state of their key than one already
//! visible when they were invoked.
//!
//! Unlike [`check_linearizability`](crate::check_linearizability) it judges each read on
//! its own, against what completed before it, so it also takes reads that promise only
//! that much (LEASE reads of a leader, probes of a node that was paused), and it counts
//! reads rather than keys.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::history::validate;
use crate::{Op, OpKind, Outcome, Result, Value};

/// A read that returned less than was visible when it began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleRead {
    /// The read.
    pub read: Op,
    /// What it missed: a write, compare-and-set or delete acknowledged, or a read
    /// answered, before the read was invoked, at a higher version than what it returned.
    pub missed: Op,
}

impl fmt::Display for StaleRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stale read {}; it missed {}", self.read, self.missed)
    }
}

/// What an operation showed of its key, at which version.
#[derive(Clone, Copy)]
struct Seen<'a> {
    op: &'a Op,
    version: u64,
    /// The key held a value (`false`: it was deleted).
    present: bool,
}

/// Finds the reads of `ops` that returned an older state of their key than one already
/// visible when they were invoked:
///
/// - a value at a version below that of a write, compare-and-set or delete acknowledged
///   before the read was invoked, or of a value another read returned before it;
/// - nothing, although a value was acknowledged or read before it was invoked at a
///   version no delete that may have applied in between could have followed.
///
/// Only what carries versions is compared: acknowledged operations that report one, and
/// reads that return one (a read without a version is judged by its value's writer).
/// Failed and unanswered reads are ignored. Values must be unique per key, as for the
/// other checks.
///
/// # Errors
///
/// A malformed history: see [`Error`](crate::Error).
pub fn stale_reads(ops: &[Op]) -> Result<Vec<StaleRead>> {
    validate(ops)?;
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        by_key.entry(&op.key).or_default().push(op);
    }
    let mut out = Vec::new();
    for key_ops in by_key.values() {
        stale_in_key(key_ops, &mut out);
    }
    out.sort_by_key(|s| s.read.id);
    Ok(out)
}

fn stale_in_key(ops: &[&Op], out: &mut Vec<StaleRead>) {
    let version_of_value = |v: &Value| {
        ops.iter()
            .find(|op| op.kind.written_value() == Some(v))
            .and_then(|w| w.ok_version())
    };
    // What each read returned, as a version (`None`: unknown) and presence.
    let read_state = |op: &Op| -> Option<(Option<u64>, bool)> {
        let (OpKind::Read { observed }, Outcome::Ok { version }) = (&op.kind, op.outcome) else {
            return None;
        };
        Some(match observed {
            Some(v) => (version.or_else(|| version_of_value(v)), true),
            None => (None, false),
        })
    };
    // Everything that showed a versioned state, by completion.
    let mut seen: Vec<(u64, Seen)> = Vec::new();
    for &op in ops {
        let Some(complete) = op.complete.filter(|_| op.outcome != Outcome::Unknown) else {
            continue;
        };
        let shown = match (&op.kind, op.outcome) {
            (OpKind::Write { .. } | OpKind::Cas { .. }, Outcome::Ok { version }) => {
                version.map(|v| (v, true))
            }
            (OpKind::Delete, Outcome::Ok { version }) => version.map(|v| (v, false)),
            (OpKind::Read { .. }, _) => {
                read_state(op).and_then(|(v, present)| v.map(|v| (v, present)))
            }
            _ => None,
        };
        if let Some((version, present)) = shown {
            seen.push((
                complete,
                Seen {
                    op,
                    version,
                    present,
                },
            ));
        }
    }
    seen.sort_by_key(|(c, s)| (*c, s.op.id));
    // The highest version seen among those completed so far, by completion.
    let mut best: Vec<(u64, Seen)> = Vec::with_capacity(seen.len());
    for (complete, s) in seen {
        let top = match best.last() {
            Some((_, b)) if b.version >= s.version => *b,
            _ => s,
        };
        best.push((complete, top));
    }
    let deletes: Vec<&Op> = ops
        .iter()
        .copied()
        .filter(|op| {
            matches!(op.kind, OpKind::Delete)
                && matches!(op.outcome, Outcome::Ok { .. } | Outcome::Unknown)
        })
        .collect();
    for &read in ops {
        let Some((version, present)) = read_state(read) else {
            continue;
        };
        let before = best.partition_point(|(c, _)| *c < read.invoke);
        let Some(&(_, top)) = before.checked_sub(1).and_then(|i| best.get(i)) else {
            continue;
        };
        let stale = match (present, version) {
            (true, Some(v)) => v < top.version,
            (true, None) => false,
            // Absent: fine after a delete, or if a delete may have applied after `top`.
            (false, _) => {
                top.present
                    && !deletes.iter().any(|d| {
                        d.invoke < read.effective_end()
                            && d.ok_version().is_none_or(|dv| dv > top.version)
                    })
            }
        };
        if stale {
            out.push(StaleRead {
                read: read.clone(),
                missed: top.op.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{Builder, OK, SimConfig, okv, simulate};

    fn stale(b: &Builder) -> Vec<StaleRead> {
        stale_reads(&b.ops()).expect("well-formed history")
    }

    /// Reads that see the latest acknowledged state, or a write still in flight, pass.
    #[test]
    fn fresh_reads_pass() {
        let b = Builder::new();
        b.write("c1", "a", (0, 10), okv(5));
        b.read_v("c2", Some("a"), (11, 12), Some(5));
        b.write("c1", "b", (20, 40), okv(8));
        // Concurrent with "b": either is fine.
        b.read_v("c2", Some("a"), (25, 30), Some(5));
        b.read_v("c3", Some("b"), (26, 31), Some(8));
        b.delete("c1", (50, 60), okv(9));
        b.read("c2", None, (61, 62));
        b.write("c1", "c", (70, 80), okv(12));
        // No version reported: judged by its writer's.
        b.read("c2", Some("c"), (81, 82));
        assert!(stale(&b).is_empty(), "{:?}", stale(&b));
    }

    /// A read older than an acknowledged write, than an earlier read, or absent after a
    /// write with no delete to explain it, is stale.
    #[test]
    fn stale_reads_are_found() {
        let b = Builder::new();
        b.write("c1", "a", (0, 10), okv(5));
        let w = b.write("c1", "b", (20, 30), okv(8));
        let r1 = b.read_v("c2", Some("a"), (40, 45), Some(5));
        let r2 = b.read("c2", None, (46, 47));
        let found = stale(&b);
        assert_eq!(
            found
                .iter()
                .map(|s| (s.read.id, s.missed.id))
                .collect::<Vec<_>>(),
            vec![(r1, w), (r2, w)]
        );
        assert!(
            found[0].to_string().contains("it missed #1"),
            "{}",
            found[0]
        );

        // Back in time after another read saw the newer value.
        let b = Builder::new();
        b.write("c1", "a", (0, 10), okv(5));
        b.write("c1", "b", (20, 100), okv(8));
        let seen = b.read_v("c2", Some("b"), (21, 22), Some(8));
        let back = b.read_v("c3", Some("a"), (23, 24), Some(5));
        let found = stale(&b);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].read.id, found[0].missed.id), (back, seen));
    }

    /// Absent is fine when a delete, even one with an unknown outcome, may have applied
    /// after the last value seen.
    #[test]
    fn absent_after_a_possible_delete() {
        let b = Builder::new();
        b.write("c1", "a", (0, 10), okv(5));
        b.delete("c2", (15, 100), Outcome::Unknown);
        b.read("c3", None, (20, 30));
        assert!(stale(&b).is_empty());

        let b = Builder::new();
        b.write("c1", "a", (0, 10), okv(5));
        b.delete("c2", (15, 18), okv(4));
        b.read("c3", None, (20, 30));
        assert_eq!(
            stale(&b).len(),
            1,
            "a delete ordered before the write explains nothing"
        );
    }

    /// Simulated linearizable registers never read stale; unknown outcomes included.
    #[test]
    fn random_linearizable_runs_have_no_stale_reads() {
        for seed in 0..200 {
            let sim = simulate(seed, SimConfig::concurrent(true));
            let found = stale_reads(&sim.ops).expect("valid");
            assert!(found.is_empty(), "seed {seed}: {found:?}");
        }
        let b = Builder::new();
        b.write("c1", "a", (0, 10), OK);
        b.read("c2", Some("a"), (20, 30));
        assert!(stale(&b).is_empty());
    }
}
