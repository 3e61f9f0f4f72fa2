//! [`History`]: every client operation of a test, as invoked and as it ended (ok, failed,
//! unknown), with timestamps; and [`check_writes`], the checker run after the faults:
//! every acknowledged write is readable with its value and version, nothing failed was
//! applied, and nothing was written that no client asked for.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use anyhow::{Result, bail};
use sutra_proto::storage::Concept;

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Invoked, not yet completed.
    Pending,
    /// Acknowledged.
    Ok {
        /// The `WriteResponse.version`: the concept's version from then on.
        version: u64,
        /// Answered from the session table (a retry of an applied write).
        deduplicated: bool,
        /// The node that answered.
        served_by: u64,
    },
    /// Definitely not applied.
    Failed(String),
    /// Maybe applied.
    Unknown(String),
}

/// One client write: put concept `id` with `content`.
#[derive(Debug, Clone)]
pub struct Op {
    /// The writing client.
    pub client_id: String,
    /// Its sequence for this write.
    pub sequence: u64,
    /// The concept id written (unique per operation in these tests).
    pub id: String,
    /// The content written.
    pub content: Vec<u8>,
    /// When the client issued it.
    pub invoked: Instant,
    /// When the client learned its outcome.
    pub completed: Option<Instant>,
    /// The outcome.
    pub outcome: Outcome,
}

/// Counts of outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Acknowledged.
    pub ok: usize,
    /// Acknowledged from the session table.
    pub deduplicated: usize,
    /// Definitely not applied.
    pub failed: usize,
    /// Maybe applied.
    pub unknown: usize,
    /// Not completed.
    pub pending: usize,
}

/// Handle of an invoked operation, to complete it.
#[derive(Debug, Clone, Copy)]
pub struct OpRef(usize);

/// The record of every client operation, shared between the writer tasks and the test.
#[derive(Debug, Default)]
pub struct History {
    ops: Mutex<Vec<Op>>,
}

impl History {
    /// An empty history.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Op>> {
        // A writer task that panicked leaves the record as it was; keep reading it.
        self.ops.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that a client issued a write.
    pub fn invoke(&self, client_id: &str, sequence: u64, id: &str, content: &[u8]) -> OpRef {
        let mut ops = self.lock();
        ops.push(Op {
            client_id: client_id.to_owned(),
            sequence,
            id: id.to_owned(),
            content: content.to_vec(),
            invoked: Instant::now(),
            completed: None,
            outcome: Outcome::Pending,
        });
        OpRef(ops.len() - 1)
    }

    /// Records how an invoked write ended.
    pub fn complete(&self, op: OpRef, outcome: Outcome) {
        let mut ops = self.lock();
        let o = &mut ops[op.0];
        o.completed = Some(Instant::now());
        o.outcome = outcome;
    }

    /// A copy of every operation, in invocation order.
    pub fn ops(&self) -> Vec<Op> {
        self.lock().clone()
    }

    /// Counts of outcomes so far.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for op in self.lock().iter() {
            match &op.outcome {
                Outcome::Pending => c.pending += 1,
                Outcome::Ok { deduplicated, .. } => {
                    c.ok += 1;
                    c.deduplicated += usize::from(*deduplicated);
                }
                Outcome::Failed(_) => c.failed += 1,
                Outcome::Unknown(_) => c.unknown += 1,
            }
        }
        c
    }

    /// The first acknowledged operation that completed after `t` and was served by a node
    /// other than `except`.
    pub fn first_ack_after(&self, t: Instant, except: u64) -> Option<Op> {
        self.lock()
            .iter()
            .filter(|op| op.completed.is_some_and(|c| c > t))
            .filter(|op| matches!(op.outcome, Outcome::Ok { served_by, .. } if served_by != except))
            .min_by_key(|op| op.completed)
            .cloned()
    }

    /// Acknowledged operations that completed after `t`.
    pub fn acks_after(&self, t: Instant) -> usize {
        self.lock()
            .iter()
            .filter(|op| op.completed.is_some_and(|c| c > t))
            .filter(|op| matches!(op.outcome, Outcome::Ok { .. }))
            .count()
    }

    /// The highest acknowledged version: a SESSION read at it sees every acknowledged write.
    pub fn max_acked_version(&self) -> u64 {
        self.lock()
            .iter()
            .filter_map(|op| match op.outcome {
                Outcome::Ok { version, .. } => Some(version),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }
}

/// What [`check_writes`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Acknowledged writes, all found with their value and version.
    pub acked: usize,
    /// Writes with unknown outcome that turned out applied.
    pub unknown_applied: usize,
    /// Writes with unknown outcome that were not applied.
    pub unknown_lost: usize,
    /// Writes that failed (none of them applied).
    pub failed: usize,
    /// Concepts stored under the checked prefix.
    pub stored: usize,
}

/// Checks a write history against `stored`, everything a node holds under the ids the
/// history wrote (one scan of their common prefix):
///
/// - every acknowledged write is there with its content and with the version it was
///   acknowledged at: a write applied twice would carry the later version, so this is
///   also the exactly-once check;
/// - no failed write is there;
/// - nothing is there that no write asked for, so the number of concepts is the number
///   of acknowledged writes plus at most the unknown ones.
///
/// Every operation must write its own id; a pending operation is an error (the writers
/// must have stopped).
pub fn check_writes(ops: &[Op], stored: &BTreeMap<String, Concept>) -> Result<CheckReport> {
    let mut report = CheckReport {
        stored: stored.len(),
        ..CheckReport::default()
    };
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    for op in ops {
        if !seen.insert(op.id.as_str()) {
            bail!(
                "the history writes {} twice; every write needs its own id",
                op.id
            );
        }
        let found = stored.get(&op.id);
        match (&op.outcome, found) {
            (Outcome::Pending, _) => bail!(
                "{} (client {} seq {}) is still pending; stop the writers before checking",
                op.id,
                op.client_id,
                op.sequence
            ),
            (Outcome::Ok { version, .. }, Some(c)) => {
                report.acked += 1;
                if c.content != op.content {
                    problems.push(format!(
                        "{}: acknowledged content {:?}, read {:?}",
                        op.id,
                        String::from_utf8_lossy(&op.content),
                        String::from_utf8_lossy(&c.content)
                    ));
                } else if c.version != *version {
                    problems.push(format!(
                        "{}: acknowledged at version {version}, read version {} (applied twice?)",
                        op.id, c.version
                    ));
                }
            }
            (Outcome::Ok { version, served_by, .. }, None) => problems.push(format!(
                "{}: acknowledged at version {version} by node {served_by} (client {} seq {}), not found: an acknowledged write was lost",
                op.id, op.client_id, op.sequence
            )),
            (Outcome::Failed(why), Some(c)) => problems.push(format!(
                "{}: reported failed ({why}) but stored at version {}",
                op.id, c.version
            )),
            (Outcome::Failed(_), None) => report.failed += 1,
            (Outcome::Unknown(_), Some(c)) => {
                report.unknown_applied += 1;
                if c.content != op.content {
                    problems.push(format!("{}: stored content differs from the write", op.id));
                }
            }
            (Outcome::Unknown(_), None) => report.unknown_lost += 1,
        }
    }
    let phantoms: Vec<&String> = stored
        .keys()
        .filter(|id| !seen.contains(id.as_str()))
        .collect();
    if !phantoms.is_empty() {
        problems.push(format!(
            "{} concepts stored that no write asked for, e.g. {:?}",
            phantoms.len(),
            &phantoms[..phantoms.len().min(5)]
        ));
    }
    if report.stored != report.acked + report.unknown_applied && problems.is_empty() {
        problems.push(format!(
            "{} concepts stored, expected {} acknowledged + {} unknown-but-applied",
            report.stored, report.acked, report.unknown_applied
        ));
    }
    if !problems.is_empty() {
        let shown = problems.len().min(20);
        bail!(
            "history check failed ({} problems, first {shown}):\n  {}\n{report:?}",
            problems.len(),
            problems[..shown].join("\n  ")
        );
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history() -> Arc<History> {
        let h = History::new();
        for (i, outcome) in [
            Outcome::Ok {
                version: 10,
                deduplicated: false,
                served_by: 1,
            },
            Outcome::Ok {
                version: 11,
                deduplicated: true,
                served_by: 2,
            },
            Outcome::Failed("refused".into()),
            Outcome::Unknown("connection lost".into()),
            Outcome::Unknown("timeout".into()),
        ]
        .into_iter()
        .enumerate()
        {
            let op = h.invoke(
                "c",
                i as u64 + 1,
                &format!("k{i}"),
                format!("v{i}").as_bytes(),
            );
            h.complete(op, outcome);
        }
        h
    }

    fn concept(id: &str, content: &str, version: u64) -> (String, Concept) {
        (
            id.to_owned(),
            Concept {
                id: id.to_owned(),
                content: content.as_bytes().to_vec(),
                version,
                ..Concept::default()
            },
        )
    }

    fn good() -> BTreeMap<String, Concept> {
        BTreeMap::from([
            concept("k0", "v0", 10),
            concept("k1", "v1", 11),
            concept("k3", "v3", 12),
        ])
    }

    #[test]
    fn a_consistent_store_passes_and_is_counted() {
        let h = history();
        let report = check_writes(&h.ops(), &good()).unwrap();
        assert_eq!(
            report,
            CheckReport {
                acked: 2,
                unknown_applied: 1,
                unknown_lost: 1,
                failed: 1,
                stored: 3,
            }
        );
        assert_eq!(h.max_acked_version(), 11);
        let c = h.counts();
        assert_eq!(
            (c.ok, c.deduplicated, c.failed, c.unknown, c.pending),
            (2, 1, 1, 2, 0)
        );
    }

    #[test]
    fn every_kind_of_violation_is_reported() {
        let ops = history().ops();
        let mut lost = good();
        lost.remove("k1");
        let mut changed = good();
        changed.insert("k0".into(), concept("k0", "other", 10).1);
        let mut twice = good();
        twice.insert("k0".into(), concept("k0", "v0", 13).1);
        let mut failed_applied = good();
        failed_applied.extend([concept("k2", "v2", 14)]);
        let mut phantom = good();
        phantom.extend([concept("k9", "v9", 15)]);
        for (name, stored, needle) in [
            ("lost", lost, "was lost"),
            ("changed", changed, "acknowledged content"),
            ("twice", twice, "applied twice"),
            ("failed applied", failed_applied, "reported failed"),
            ("phantom", phantom, "no write asked for"),
        ] {
            let err = check_writes(&ops, &stored).unwrap_err().to_string();
            assert!(err.contains(needle), "{name}: {err}");
        }
    }

    #[test]
    fn pending_operations_and_reused_ids_are_refused() {
        let h = history();
        h.invoke("c", 99, "k5", b"v5");
        assert!(
            check_writes(&h.ops(), &good())
                .unwrap_err()
                .to_string()
                .contains("pending")
        );
        let h = history();
        let op = h.invoke("c", 100, "k0", b"again");
        h.complete(op, Outcome::Failed("x".into()));
        assert!(
            check_writes(&h.ops(), &good())
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
    }
}
