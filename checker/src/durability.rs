//! The durability check: compares what clients were told with what the cluster holds
//! after the run.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::history::validate;
use crate::{Op, OpId, OpKind, Outcome, Result, Value};

/// What the cluster holds for one key after the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// The stored content.
    pub value: Value,
    /// The concept's version (the log position of the write that stored it).
    pub version: u64,
}

/// The final state read back from the cluster, by key: every key that exists among those
/// the run owns (the keys its history touches, or everything under the run's prefix). A
/// key missing from the map is absent; a key in it that no operation touched holds a
/// value nobody wrote ([`DurabilityIssue::Unexplained`]).
pub type FinalState = BTreeMap<String, Stored>;

/// What [`check_durability_with`] may assume beyond the crate's recorder rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DurabilityOptions {
    /// Every operation of the history was its own log entry (no batches), so no two
    /// acknowledged operations, and no two values seen, share a version. Two that do mean
    /// a log position was acknowledged, lost and reused by another write
    /// ([`DurabilityIssue::VersionReused`]), which a later write to the first key would
    /// hide from the per-key checks. Off by default: a batch gives every concept it puts
    /// one version.
    pub versions_unique: bool,
}

/// One finding of the durability check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "issue", rename_all = "snake_case")]
pub enum DurabilityIssue {
    /// An acknowledged write (or delete) is not in the final state, and no operation
    /// that could have come after it explains why.
    Lost {
        /// The acknowledged operation.
        op: Op,
        /// What the key holds instead; `None`: absent.
        found: Option<Stored>,
    },
    /// A value was seen with more than one version: its write was applied twice.
    Duplicated {
        /// The key.
        key: String,
        /// The value.
        value: Value,
        /// The operation that wrote it, if it is in the history.
        writer: Option<OpId>,
        /// Every version it was seen with (returned by its write, by reads, stored).
        versions: BTreeSet<u64>,
    },
    /// A write that was reported failed is visible.
    FailedVisible {
        /// The failed operation.
        op: Op,
        /// Whether the final state holds its value.
        in_final_state: bool,
        /// Reads and compare-and-sets that saw its value.
        seen_by: Vec<OpId>,
    },
    /// The final state holds a value no operation in the history wrote (or a key no
    /// operation touched): a partial, corrupted or foreign write.
    Unexplained {
        /// The key.
        key: String,
        /// What it holds.
        found: Stored,
    },
    /// A read returned a value no operation in the history wrote to its key.
    UnwrittenRead {
        /// The read.
        op: Op,
    },
    /// Two different things were seen at one version although
    /// [`DurabilityOptions::versions_unique`] says every operation is its own log entry:
    /// one of them was acknowledged (or seen) and then lost.
    VersionReused {
        /// The version.
        version: u64,
        /// The first thing seen at it: `key` holding `value` (`None`: deleted).
        first: (String, Option<Value>),
        /// The second.
        second: (String, Option<Value>),
    },
}

/// Counts and findings of [`check_durability`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DurabilityReport {
    /// Acknowledged writes, compare-and-sets and deletes.
    pub acknowledged: usize,
    /// Acknowledged ones found lost, and versions found reused
    /// ([`DurabilityOptions::versions_unique`]).
    pub lost: usize,
    /// Values applied more than once.
    pub duplicated: usize,
    /// Writes with an unknown outcome whose value was seen (stored, read, or expected by
    /// a successful compare-and-set): they took effect.
    pub unknown_applied: usize,
    /// Writes with an unknown outcome whose value was never seen: absent, or
    /// overwritten before anyone looked.
    pub unknown_absent: usize,
    /// Failed writes whose value was seen.
    pub failed_visible: usize,
    /// Keys holding a value no operation wrote, and reads returning one.
    pub unexplained: usize,
    /// The details of every lost, duplicated, failed-visible and unexplained count.
    pub issues: Vec<DurabilityIssue>,
}

impl DurabilityReport {
    /// Whether nothing was lost, duplicated, wrongly visible or unexplained.
    pub fn is_ok(&self) -> bool {
        self.issues.is_empty()
    }
}

fn fmt_found(f: &mut fmt::Formatter<'_>, found: &Option<Stored>) -> fmt::Result {
    match found {
        Some(s) => write!(f, "{} at version {}", s.value, s.version),
        None => f.write_str("absent"),
    }
}

impl fmt::Display for DurabilityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "durability: {} acknowledged, {} lost, {} duplicated, {} unknown applied, \
             {} unknown absent, {} failed visible, {} unexplained",
            self.acknowledged,
            self.lost,
            self.duplicated,
            self.unknown_applied,
            self.unknown_absent,
            self.failed_visible,
            self.unexplained
        )?;
        for issue in &self.issues {
            match issue {
                DurabilityIssue::Lost { op, found } => {
                    write!(f, "  lost: {op}; the key holds ")?;
                    fmt_found(f, found)?;
                    writeln!(f)?;
                }
                DurabilityIssue::Duplicated {
                    key,
                    value,
                    writer,
                    versions,
                } => {
                    write!(f, "  duplicated: key {key:?} value {value} ")?;
                    if let Some(w) = writer {
                        write!(f, "(written by {w}) ")?;
                    }
                    writeln!(f, "seen at versions {versions:?}")?;
                }
                DurabilityIssue::FailedVisible {
                    op,
                    in_final_state,
                    seen_by,
                } => {
                    writeln!(
                        f,
                        "  failed but visible: {op}; in the final state: {in_final_state}; seen by {seen_by:?}"
                    )?;
                }
                DurabilityIssue::Unexplained { key, found } => {
                    writeln!(
                        f,
                        "  unexplained: key {key:?} holds {} at version {}, which no operation wrote",
                        found.value, found.version
                    )?;
                }
                DurabilityIssue::UnwrittenRead { op } => {
                    writeln!(f, "  read of a value no operation wrote: {op}")?;
                }
                DurabilityIssue::VersionReused {
                    version,
                    first,
                    second,
                } => {
                    let show = |(k, v): &(String, Option<Value>)| match v {
                        Some(v) => format!("key {k:?} holding {v}"),
                        None => format!("key {k:?} deleted"),
                    };
                    writeln!(
                        f,
                        "  version {version} reused: {} and {}; one of them was lost",
                        show(first),
                        show(second)
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// Checks the history against the final state read back from the cluster:
///
/// - every acknowledged write is stored, or overwritten by an operation that could
///   have come after it (by real time and by version); an acknowledged delete is
///   absent or overwritten likewise;
/// - no value was seen with two versions (a write applied twice);
/// - no failed write's value is stored or was read;
/// - every stored value, and every value a read returned, was written by some operation
///   (a stored key no operation touched counts as unexplained);
/// - each write with an unknown outcome is counted as applied (its value was seen) or
///   absent.
///
/// Values must be unique per key, as for [`check_linearizability`](crate::check_linearizability).
///
/// # Errors
///
/// A malformed history: see [`Error`](crate::Error).
pub fn check_durability(ops: &[Op], final_state: &FinalState) -> Result<DurabilityReport> {
    check_durability_with(ops, final_state, &DurabilityOptions::default())
}

/// [`check_durability`], plus what `options` allow it to assume.
///
/// # Errors
///
/// A malformed history: see [`Error`](crate::Error).
pub fn check_durability_with(
    ops: &[Op],
    final_state: &FinalState,
    options: &DurabilityOptions,
) -> Result<DurabilityReport> {
    validate(ops)?;
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        by_key.entry(&op.key).or_default().push(op);
    }
    let mut report = DurabilityReport::default();
    for (key, key_ops) in &by_key {
        check_key(key, key_ops, final_state.get(*key), &mut report);
    }
    for (key, found) in final_state {
        if !by_key.contains_key(key.as_str()) {
            report.unexplained += 1;
            report.issues.push(DurabilityIssue::Unexplained {
                key: key.clone(),
                found: found.clone(),
            });
        }
    }
    if options.versions_unique {
        check_versions_unique(ops, final_state, &mut report);
    }
    Ok(report)
}

/// Every version names one log entry: one key holding one value (or deleted).
fn check_versions_unique(ops: &[Op], final_state: &FinalState, report: &mut DurabilityReport) {
    let mut seen: Vec<(u64, (&str, Option<&Value>))> = Vec::new();
    for op in ops {
        let Outcome::Ok {
            version: Some(version),
        } = op.outcome
        else {
            continue;
        };
        let what = match &op.kind {
            OpKind::Write { value } | OpKind::Cas { value, .. } => Some(value),
            OpKind::Delete => None,
            OpKind::Read { observed: Some(v) } => Some(v),
            // An absent key reports no version.
            OpKind::Read { observed: None } => continue,
        };
        seen.push((version, (op.key.as_str(), what)));
    }
    for (key, s) in final_state {
        seen.push((s.version, (key.as_str(), Some(&s.value))));
    }
    let mut first: BTreeMap<u64, (&str, Option<&Value>)> = BTreeMap::new();
    let mut reported: BTreeSet<u64> = BTreeSet::new();
    for (version, what) in seen {
        match first.get(&version) {
            None => {
                first.insert(version, what);
            }
            Some(&earlier) if earlier != what && reported.insert(version) => {
                let own = |(k, v): (&str, Option<&Value>)| (k.to_owned(), v.cloned());
                report.lost += 1;
                report.issues.push(DurabilityIssue::VersionReused {
                    version,
                    first: own(earlier),
                    second: own(what),
                });
            }
            Some(_) => {}
        }
    }
}

/// Whether `p` certainly took effect before `w`: it completed before `w` was invoked,
/// or both reported versions and `p`'s is lower.
fn known_before(p: &Op, w: &Op) -> bool {
    p.precedes(w) || matches!((p.ok_version(), w.ok_version()), (Some(a), Some(b)) if a < b)
}

/// Whether an operation may have changed the key.
fn may_have_applied(op: &Op) -> bool {
    op.kind.is_mutation() && matches!(op.outcome, Outcome::Ok { .. } | Outcome::Unknown)
}

fn check_key(key: &str, ops: &[&Op], stored: Option<&Stored>, report: &mut DurabilityReport) {
    let writer_of = |v: &Value| {
        ops.iter()
            .copied()
            .find(|op| op.kind.written_value() == Some(v))
    };
    // Who saw each value, and at which versions.
    let mut seen_by: HashMap<&Value, Vec<OpId>> = HashMap::new();
    let mut versions: HashMap<&Value, BTreeSet<u64>> = HashMap::new();
    for op in ops {
        let Outcome::Ok { version } = op.outcome else {
            continue;
        };
        match &op.kind {
            OpKind::Read { observed: Some(v) } => {
                seen_by.entry(v).or_default().push(op.id);
                versions.entry(v).or_default().extend(version);
                if writer_of(v).is_none() {
                    report.unexplained += 1;
                    report
                        .issues
                        .push(DurabilityIssue::UnwrittenRead { op: (*op).clone() });
                }
            }
            OpKind::Cas { expected, value } => {
                if let Some(e) = expected {
                    seen_by.entry(e).or_default().push(op.id);
                }
                versions.entry(value).or_default().extend(version);
            }
            OpKind::Write { value } => versions.entry(value).or_default().extend(version),
            OpKind::Read { observed: None } | OpKind::Delete => {}
        }
    }
    if let Some(s) = stored {
        versions.entry(&s.value).or_default().insert(s.version);
        if writer_of(&s.value).is_none() {
            report.unexplained += 1;
            report.issues.push(DurabilityIssue::Unexplained {
                key: key.to_owned(),
                found: s.clone(),
            });
        }
    }
    let visible = |v: &Value| stored.is_some_and(|s| &s.value == v) || seen_by.contains_key(v);

    for &op in ops {
        match op.outcome {
            Outcome::Ok { .. } if op.kind.is_mutation() => {
                report.acknowledged += 1;
                if is_lost(op, ops, stored, &writer_of) {
                    report.lost += 1;
                    report.issues.push(DurabilityIssue::Lost {
                        op: op.clone(),
                        found: stored.cloned(),
                    });
                }
            }
            Outcome::Unknown => {
                if let Some(v) = op.kind.written_value() {
                    if visible(v) {
                        report.unknown_applied += 1;
                    } else {
                        report.unknown_absent += 1;
                    }
                }
            }
            Outcome::Failed => {
                if let Some(v) = op.kind.written_value()
                    && visible(v)
                {
                    report.failed_visible += 1;
                    report.issues.push(DurabilityIssue::FailedVisible {
                        op: op.clone(),
                        in_final_state: stored.is_some_and(|s| &s.value == v),
                        seen_by: seen_by.get(v).cloned().unwrap_or_default(),
                    });
                }
            }
            Outcome::Ok { .. } | Outcome::Mismatch => {}
        }
    }

    let mut duplicated: Vec<(&Value, BTreeSet<u64>)> = versions
        .into_iter()
        .filter(|(_, vs)| vs.len() > 1)
        .collect();
    duplicated.sort();
    for (value, versions) in duplicated {
        report.duplicated += 1;
        report.issues.push(DurabilityIssue::Duplicated {
            key: key.to_owned(),
            value: value.clone(),
            writer: writer_of(value).map(|w| w.id),
            versions,
        });
    }
}

/// Whether the acknowledged mutation `w` is contradicted by the final state.
fn is_lost<'a>(
    w: &Op,
    ops: &[&'a Op],
    stored: Option<&Stored>,
    writer_of: &impl Fn(&Value) -> Option<&'a Op>,
) -> bool {
    let Some(s) = stored else {
        // Absent: fine for a delete; a write needs a delete that may have come after it.
        return w.kind.written_value().is_some()
            && !ops.iter().any(|d| {
                matches!(d.kind, OpKind::Delete)
                    && d.id != w.id
                    && may_have_applied(d)
                    && !known_before(d, w)
            });
    };
    if w.kind.written_value() == Some(&s.value) {
        return false;
    }
    if let Some(version) = w.ok_version() {
        // Versions grow with the log: anything stored at or below the write's version
        // was stored before it (or is not what it should be).
        return s.version <= version;
    }
    match writer_of(&s.value) {
        Some(p) => known_before(p, w),
        // Counted as unexplained.
        None => false,
    }
}

#[cfg(test)]
#[path = "durability_test.rs"]
mod tests;
