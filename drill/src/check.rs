//! The drill's own checks of a round's history: durability of acknowledged writes,
//! duplicates, and a version-based linearizability check of the per-key registers.
//!
//! Every write puts a value no other write puts, and every answer carries the version
//! (log index) it was applied at, so the versions give the order in which the cluster
//! applied the writes of a key. A round is correct when:
//!
//! - **durable**: the final value of each key (read LINEARIZABLE after the round) has a
//!   version at least that of every acknowledged write to the key (present, or
//!   superseded by a later write); a missing key after an acknowledged write is a loss;
//! - **no duplicates**: a value is only ever seen at one version, the one its write was
//!   acknowledged with (a retry applied twice shows the value again at a later version);
//! - **nothing invented**: every value seen was written, and no write reported failed
//!   is seen;
//! - **linearizable reads**: no read returns a version older than a write acknowledged
//!   before the read began (a stale read), or older than what a read that ended before
//!   it began saw (a read going back), or a write that began only after the read ended.
//!
//! An unknown write is *applied* if any read saw its value, else *absent* (never
//! applied, or applied and overwritten before anyone read it).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::history::{OpKind, OpRecord, Outcome};

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
    /// Unknown writes some read saw.
    pub unknown_applied: usize,
    /// Unknown writes no read saw.
    pub unknown_absent: usize,
    /// Reads answered.
    pub reads: usize,
    /// Acknowledged writes missing from the final state.
    pub lost: usize,
    /// Writes seen applied more than once.
    pub duplicates: usize,
    /// Linearizability violations (stale reads included).
    pub violations: usize,
    /// Reads that missed a write acknowledged before they began.
    pub stale_reads: usize,
    /// The verdict of `sutra-checker`'s linearizability search ("linearizable", "not
    /// linearizable", "unknown (search budget)"); empty if it did not run.
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

/// Checks a round with `sutra-checker` (a Porcupine-style linearizability search per
/// key and its durability check) and with [`check_round`]; the counts are the larger of
/// the two, the details come from both. `LEASE` probe reads are left to
/// [`check_round`], since the linearizability search takes only LINEARIZABLE reads.
pub fn check_history(
    ops: &[OpRecord],
    final_state: &BTreeMap<String, Option<(String, u64)>>,
) -> CheckResult {
    use sutra_checker as sc;
    let mut r = check_round(ops, final_state);
    let Some(base) = ops.iter().map(|o| o.invoke).min() else {
        return r;
    };
    let ns = |t: std::time::Instant| u64::try_from((t - base).as_nanos()).unwrap_or(u64::MAX);
    let history: Vec<sc::Op> = ops
        .iter()
        .filter(|o| o.tag != Some("probe-lease"))
        .enumerate()
        .map(|(i, o)| {
            let (kind, outcome) = match (&o.kind, o.outcome) {
                (OpKind::Write { value }, outcome) => (
                    sc::OpKind::Write {
                        value: value.as_str().into(),
                    },
                    match outcome {
                        Outcome::Ok => sc::Outcome::Ok {
                            version: Some(o.version),
                        },
                        Outcome::Failed => sc::Outcome::Failed,
                        Outcome::Unknown => sc::Outcome::Unknown,
                    },
                ),
                (OpKind::Read { value }, _) => (
                    sc::OpKind::Read {
                        observed: value.as_deref().map(sc::Value::from),
                    },
                    sc::Outcome::Ok {
                        version: value.is_some().then_some(o.version),
                    },
                ),
            };
            sc::Op {
                id: sc::OpId(i as u64),
                client: format!("p{}", o.process),
                key: o.key.clone(),
                kind,
                invoke: ns(o.invoke),
                complete: Some(ns(o.complete)),
                outcome,
            }
        })
        .collect();
    let stored: sc::FinalState = final_state
        .iter()
        .filter_map(|(k, s)| {
            s.as_ref().map(|(v, version)| {
                (
                    k.clone(),
                    sc::Stored {
                        value: v.as_str().into(),
                        version: *version,
                    },
                )
            })
        })
        .collect();
    let options = sc::CheckOptions {
        time_limit: Some(std::time::Duration::from_secs(30)),
        ..sc::CheckOptions::default()
    };
    match sc::check_linearizability(&history, &options) {
        Ok(lin) => {
            let violations: Vec<String> = lin
                .violations()
                .map(|v| format!("{}: {}", v.key, v.explanation))
                .collect();
            r.linearizability = match lin.verdict {
                sc::Verdict::Linearizable => "linearizable",
                sc::Verdict::NotLinearizable => "not linearizable",
                sc::Verdict::Unknown => "unknown (search budget)",
            }
            .to_string();
            let mine = r.violations;
            r.violations = r.violations.max(violations.len());
            if r.violations > mine {
                for v in violations {
                    r.note(v);
                }
            }
        }
        Err(e) => {
            r.linearizability = "not checked".into();
            r.note(format!("sutra-checker refused the history: {e}"));
        }
    }
    match sc::check_durability(&history, &stored) {
        Ok(d) => {
            let wrong = d.failed_visible + d.unexplained;
            if d.lost > r.lost || d.duplicated > r.duplicates || wrong > r.violations {
                for issue in &d.issues {
                    r.note(format!("{issue:?}"));
                }
            }
            r.lost = r.lost.max(d.lost);
            r.duplicates = r.duplicates.max(d.duplicated);
            r.violations = r.violations.max(wrong);
            r.unknown_applied = r.unknown_applied.max(d.unknown_applied);
            r.unknown_absent = r.unknown - r.unknown_applied;
        }
        Err(e) => r.note(format!("sutra-checker refused the history: {e}")),
    }
    r
}

/// Checks a round: `ops` is its history (final reads included), `final_state` the value
/// and version of every key the round wrote, read LINEARIZABLE after the load stopped
/// (`None`: the key does not exist).
pub fn check_round(
    ops: &[OpRecord],
    final_state: &BTreeMap<String, Option<(String, u64)>>,
) -> CheckResult {
    let mut r = CheckResult::default();
    let writes: HashMap<&str, &OpRecord> = ops
        .iter()
        .filter_map(|o| o.written().map(|v| (v, o)))
        .collect();
    for o in ops {
        match (&o.kind, o.outcome) {
            (OpKind::Write { .. }, Outcome::Ok) => r.acked += 1,
            (OpKind::Write { .. }, Outcome::Failed) => r.failed += 1,
            (OpKind::Write { .. }, Outcome::Unknown) => r.unknown += 1,
            (OpKind::Read { .. }, Outcome::Ok) => r.reads += 1,
            (OpKind::Read { .. }, _) => {}
        }
    }

    // Durability: the final version of a key is at least every acknowledged one.
    let mut lost_keys = Vec::new();
    for w in ops.iter().filter(|o| o.is_acked_write()) {
        let lost = match final_state.get(&w.key) {
            None => continue,
            Some(None) => true,
            Some(Some((_, version))) => *version < w.version,
        };
        if lost {
            r.lost += 1;
            lost_keys.push(format!(
                "acknowledged write {:?} to {} (version {}) is lost; final state {:?}",
                w.written().unwrap_or_default(),
                w.key,
                w.version,
                final_state.get(&w.key)
            ));
        }
    }
    // Every drill write is a single put, one log entry, so a version names one write:
    // two acknowledged writes at one version mean a log index was acknowledged, lost and
    // reused (a later write to the key would hide that from the check above). Likewise a
    // key that ends at an acknowledged write's version must hold that write's value.
    let mut at_version: HashMap<u64, &OpRecord> = HashMap::new();
    for w in ops.iter().filter(|o| o.is_acked_write()) {
        if let Some(other) = at_version.insert(w.version, w)
            && other.written() != w.written()
        {
            r.lost += 1;
            lost_keys.push(format!(
                "acknowledged writes {:?} to {} and {:?} to {} both at version {}: one was lost",
                other.written().unwrap_or_default(),
                other.key,
                w.written().unwrap_or_default(),
                w.key,
                w.version
            ));
        }
        if let Some(Some((value, version))) = final_state.get(&w.key)
            && *version == w.version
            && Some(value.as_str()) != w.written()
        {
            r.lost += 1;
            lost_keys.push(format!(
                "acknowledged write {:?} to {} at version {} is lost: the key holds {value:?} at that version",
                w.written().unwrap_or_default(),
                w.key,
                w.version
            ));
        }
    }
    for d in lost_keys {
        r.note(d);
    }

    // Every value seen: written by someone, not by a failed write, at one version.
    let mut seen: HashMap<&str, HashSet<u64>> = HashMap::new();
    let mut observations: Vec<(&str, &str, u64)> = ops
        .iter()
        .filter(|o| o.outcome == Outcome::Ok)
        .filter_map(|o| match &o.kind {
            OpKind::Read { value: Some(v) } => Some((o.key.as_str(), v.as_str(), o.version)),
            _ => None,
        })
        .collect();
    for (key, state) in final_state {
        if let Some((v, version)) = state {
            observations.push((key.as_str(), v.as_str(), *version));
        }
    }
    let mut duplicated: HashSet<&str> = HashSet::new();
    let mut invented: HashSet<&str> = HashSet::new();
    for &(key, value, version) in &observations {
        let Some(w) = writes.get(value) else {
            if invented.insert(value) {
                r.violations += 1;
                r.note(format!("{key} held {value:?}, which no write put"));
            }
            continue;
        };
        if w.key != key {
            if invented.insert(value) {
                r.violations += 1;
                r.note(format!("{key} held {value:?}, written to {}", w.key));
            }
            continue;
        }
        match w.outcome {
            Outcome::Failed if invented.insert(value) => {
                r.violations += 1;
                r.note(format!(
                    "{key} held {value:?}, whose write was reported failed"
                ));
            }
            Outcome::Ok if version != w.version && duplicated.insert(value) => {
                r.duplicates += 1;
                r.note(format!(
                    "{value:?} on {key} acknowledged at version {} but seen at version {version}: applied twice",
                    w.version
                ));
            }
            _ => {}
        }
        seen.entry(value).or_default().insert(version);
    }
    for (value, versions) in &seen {
        if versions.len() > 1 && duplicated.insert(value) {
            r.duplicates += 1;
            r.note(format!(
                "{value:?} seen at versions {versions:?}: applied twice"
            ));
        }
    }
    for w in ops
        .iter()
        .filter(|o| o.outcome == Outcome::Unknown && o.written().is_some())
    {
        if seen.contains_key(w.written().unwrap_or_default()) {
            r.unknown_applied += 1;
        } else {
            r.unknown_absent += 1;
        }
    }

    // Linearizable reads, key by key.
    let mut by_key: BTreeMap<&str, Vec<&OpRecord>> = BTreeMap::new();
    for o in ops.iter().filter(|o| o.outcome == Outcome::Ok) {
        by_key.entry(o.key.as_str()).or_default().push(o);
    }
    for (key, key_ops) in by_key {
        // Acknowledged writes and answered reads by completion, with the highest version
        // among those completed so far.
        let prefix_max = |pred: &dyn Fn(&OpRecord) -> bool| {
            let mut v: Vec<&&OpRecord> = key_ops.iter().filter(|o| pred(o)).collect();
            v.sort_by_key(|o| o.complete);
            let mut max = 0;
            v.into_iter()
                .map(|o| {
                    max = max.max(o.version);
                    (o.complete, max)
                })
                .collect::<Vec<_>>()
        };
        let writes_done = prefix_max(&|o| matches!(o.kind, OpKind::Write { .. }));
        let reads_done = prefix_max(&|o| matches!(o.kind, OpKind::Read { .. }));
        let before = |done: &[(std::time::Instant, u64)], t| {
            let n = done.partition_point(|(c, _)| *c < t);
            if n == 0 { 0 } else { done[n - 1].1 }
        };
        for rd in key_ops
            .iter()
            .filter(|o| matches!(o.kind, OpKind::Read { .. }))
        {
            let OpKind::Read { value } = &rd.kind else {
                continue;
            };
            let acked_before = before(&writes_done, rd.invoke);
            if acked_before > rd.version {
                r.violations += 1;
                r.stale_reads += 1;
                r.note(format!(
                    "stale read of {key}{}: version {} served by node {} after version {acked_before} was acknowledged",
                    rd.tag.map(|t| format!(" ({t})")).unwrap_or_default(),
                    rd.version,
                    rd.served_by
                ));
                continue;
            }
            let read_before = before(&reads_done, rd.invoke);
            if read_before > rd.version {
                r.violations += 1;
                r.note(format!(
                    "read of {key} went back: version {} served by node {} after a read that ended before it saw version {read_before}",
                    rd.version, rd.served_by
                ));
                continue;
            }
            if let Some(w) = value.as_deref().and_then(|v| writes.get(v))
                && w.invoke > rd.complete
            {
                r.violations += 1;
                r.note(format!(
                    "read of {key} saw {:?}, written only after the read ended",
                    value.as_deref().unwrap_or_default()
                ));
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::history::tests::{read, write};

    fn state(entries: &[(&str, Option<(&str, u64)>)]) -> BTreeMap<String, Option<(String, u64)>> {
        entries
            .iter()
            .map(|(k, s)| (k.to_string(), s.map(|(v, n)| (v.to_string(), n))))
            .collect()
    }

    #[test]
    fn a_clean_history_passes_and_unknown_writes_resolve() {
        let t0 = Instant::now();
        let ops = vec![
            write(t0, "k", "a", (0, 10), Outcome::Ok, 5, 1),
            write(t0, "k", "b", (20, 30), Outcome::Unknown, 0, 0),
            write(t0, "k", "c", (40, 50), Outcome::Unknown, 0, 0),
            write(t0, "k", "d", (60, 70), Outcome::Failed, 0, 0),
            read(t0, "k", Some("a"), (11, 12), 5),
            // The unknown write "b" was applied: a read saw it.
            read(t0, "k", Some("b"), (31, 32), 7),
            // Concurrent with the write of "e": may or may not see it.
            write(t0, "k", "e", (80, 100), Outcome::Ok, 9, 1),
            read(t0, "k", Some("b"), (85, 90), 7),
            read(t0, "k", Some("e"), (86, 91), 9),
        ];
        let r = check_round(&ops, &state(&[("k", Some(("e", 9)))]));
        assert!(r.passed(), "{r:?}");
        assert_eq!((r.acked, r.failed, r.unknown), (2, 1, 2));
        assert_eq!((r.unknown_applied, r.unknown_absent), (1, 1));
        assert_eq!(r.reads, 4);
    }

    #[test]
    fn sutra_checker_agrees_on_clean_and_stale_histories() {
        let t0 = Instant::now();
        let clean = vec![
            write(t0, "k", "a", (0, 10), Outcome::Ok, 5, 1),
            write(t0, "k", "b", (20, 30), Outcome::Unknown, 0, 0),
            read(t0, "k", Some("a"), (11, 12), 5),
            read(t0, "k", Some("b"), (31, 32), 7),
            read(t0, "k", Some("b"), (40, 41), 7),
        ];
        let fin = state(&[("k", Some(("b", 7)))]);
        let r = check_history(&clean, &fin);
        assert!(r.passed(), "{r:?}");
        assert_eq!(r.linearizability, "linearizable");
        assert_eq!((r.unknown_applied, r.unknown_absent), (1, 0));
        let mut stale = clean.clone();
        stale.push(read(t0, "k", Some("a"), (50, 51), 5));
        let r = check_history(&stale, &fin);
        assert!(!r.passed(), "{r:?}");
        assert_eq!(r.linearizability, "not linearizable");
        let lost = vec![write(t0, "k", "a", (0, 10), Outcome::Ok, 5, 1)];
        assert_eq!(check_history(&lost, &state(&[("k", None)])).lost, 1);
    }

    #[test]
    fn a_lost_acknowledged_write_is_found() {
        let t0 = Instant::now();
        let ops = vec![
            write(t0, "k", "a", (0, 10), Outcome::Ok, 5, 1),
            write(t0, "k", "b", (20, 30), Outcome::Ok, 8, 1),
            write(t0, "j", "c", (20, 30), Outcome::Ok, 9, 1),
        ];
        let r = check_round(&ops, &state(&[("k", Some(("a", 5))), ("j", None)]));
        assert_eq!(r.lost, 2, "{r:?}");
        assert!(!r.passed());
        assert!(r.details[0].contains("\"b\""), "{:?}", r.details);
    }

    #[test]
    fn a_lost_write_hidden_by_a_later_one_is_found() {
        let t0 = Instant::now();
        // "a" was acknowledged at version 100, then lost: the new leader reused index
        // 100 for "x" on another key, and "b" raised k's version past 100 afterwards.
        let ops = vec![
            write(t0, "k", "a", (0, 10), Outcome::Ok, 100, 1),
            write(t0, "j", "x", (20, 30), Outcome::Ok, 100, 2),
            write(t0, "k", "b", (40, 50), Outcome::Ok, 130, 2),
        ];
        let fin = state(&[("k", Some(("b", 130))), ("j", Some(("x", 100)))]);
        let r = check_round(&ops, &fin);
        assert_eq!(r.lost, 1, "{r:?}");
        assert!(
            r.details[0].contains("both at version 100"),
            "{:?}",
            r.details
        );
        // The key ends at the acknowledged version but with another value.
        let ops = vec![write(t0, "k", "a", (0, 10), Outcome::Ok, 100, 1)];
        let r = check_round(&ops, &state(&[("k", Some(("z", 100)))]));
        assert!(r.lost >= 1, "{r:?}");
    }

    #[test]
    fn a_write_applied_twice_is_a_duplicate() {
        let t0 = Instant::now();
        let ops = vec![
            write(t0, "k", "a", (0, 10), Outcome::Ok, 5, 1),
            write(t0, "k", "u", (20, 30), Outcome::Unknown, 0, 0),
            write(t0, "k", "b", (40, 50), Outcome::Ok, 8, 1),
            read(t0, "k", Some("u"), (31, 35), 6),
        ];
        // "a" seen again at version 9: its retry was applied a second time.
        let r = check_round(&ops, &state(&[("k", Some(("a", 9)))]));
        assert_eq!(r.duplicates, 1, "{r:?}");
        // An unknown write seen at two versions is a duplicate as well.
        let mut ops2 = ops.clone();
        ops2.push(read(t0, "k", Some("u"), (36, 37), 7));
        let r = check_round(&ops2, &state(&[("k", Some(("b", 8)))]));
        assert_eq!(r.duplicates, 1, "{r:?}");
        assert_eq!(r.lost, 0);
    }

    #[test]
    fn stale_backward_future_and_invented_reads_are_violations() {
        let t0 = Instant::now();
        let base = vec![
            write(t0, "k", "a", (0, 10), Outcome::Ok, 5, 1),
            write(t0, "k", "b", (20, 30), Outcome::Ok, 8, 1),
            write(t0, "k", "f", (60, 70), Outcome::Failed, 0, 0),
        ];
        let fin = state(&[("k", Some(("b", 8)))]);
        // Stale: "b" was acknowledged at 30, the read began at 40 and saw "a".
        let mut ops = base.clone();
        ops.push(read(t0, "k", Some("a"), (40, 45), 5));
        let r = check_round(&ops, &fin);
        assert_eq!((r.violations, r.stale_reads), (1, 1), "{r:?}");
        // Absent after an acknowledged write is stale too.
        let mut ops = base.clone();
        ops.push(read(t0, "k", None, (40, 45), 0));
        assert_eq!(check_round(&ops, &fin).stale_reads, 1);
        // Backwards: a read concurrent with "b" saw it, a later one did not.
        let mut ops = base.clone();
        ops.push(read(t0, "k", Some("b"), (21, 22), 8));
        ops.push(read(t0, "k", Some("a"), (23, 24), 5));
        let r = check_round(&ops, &fin);
        assert_eq!((r.violations, r.stale_reads), (1, 0), "{r:?}");
        // From the future: the read ended before "b" was invoked.
        let mut ops = base.clone();
        ops.push(read(t0, "k", Some("b"), (12, 15), 8));
        assert_eq!(check_round(&ops, &fin).violations, 1);
        // Invented, and a failed write seen.
        let mut ops = base.clone();
        ops.push(read(t0, "k", Some("zzz"), (80, 81), 9));
        ops.push(read(t0, "k", Some("f"), (82, 83), 9));
        let r = check_round(&ops, &fin);
        assert!(r.violations >= 2, "{r:?}");
    }
}
