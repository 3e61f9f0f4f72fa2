//! The linearizability checker: for each key, searches for a total order of the key's
//! operations that respects real time and the register model ([`crate::model`]).
//!
//! The search is Wing & Gong's, with Lowe's just-in-time linearization and memoization
//! as in Porcupine: calls and returns sit in one list ordered by time; the search
//! linearizes any pending call whose result the model accepts, backs up when it meets a
//! return whose call it could not linearize, and never revisits a (set of linearized
//! operations, model state) pair it has already explored. Keys are checked separately:
//! a history is linearizable exactly when each key's sub-history is (linearizability is
//! local; Herlihy & Wing).
//!
//! Operations with an unknown outcome have no return: they may be linearized at any
//! point after their invocation, or never (which is the same as last). A key is
//! accepted once every operation with a known outcome is linearized.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::history::validate;
use crate::model::{self, CasOutcome, Effect, State};
use crate::{Op, OpId, OpKind, Outcome, Result, Value};

/// Limits on the search, so a pathological history ends in
/// [`KeyResult::Unknown`] instead of running for hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckOptions {
    /// Model steps the search may take for one key before giving up on it.
    /// Each step may keep one memoized state (tens of bytes), so this also bounds the
    /// memory one key takes. Default: 2,000,000.
    pub max_steps_per_key: u64,
    /// Wall-clock time for the whole check; keys still unchecked when it runs out are
    /// reported as timed out. `None`: no limit. Default: 60 s.
    pub time_limit: Option<Duration>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            max_steps_per_key: 2_000_000,
            time_limit: Some(Duration::from_secs(60)),
        }
    }
}

/// The overall answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every key's history is linearizable.
    Linearizable,
    /// At least one key's history is not.
    NotLinearizable,
    /// No violation found, but at least one key was not fully checked.
    Unknown,
}

/// Why a key was not fully checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Incomplete {
    /// [`CheckOptions::time_limit`] ran out.
    TimedOut,
    /// [`CheckOptions::max_steps_per_key`] ran out.
    StepBudget,
}

/// The result for one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum KeyResult {
    /// The key's history is linearizable.
    Ok {
        /// Operations on the key (all outcomes).
        ops: usize,
        /// Model steps the search took.
        steps: u64,
    },
    /// The key's history is not linearizable.
    Violation(Box<Violation>),
    /// The search stopped before an answer.
    Unknown {
        /// Operations on the key (all outcomes).
        ops: usize,
        /// Model steps the search took.
        steps: u64,
        /// Which limit stopped it.
        reason: Incomplete,
    },
}

/// Why a key's history is not linearizable: the furthest the search got and the
/// operation it could not place there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The key.
    pub key: String,
    /// Operations on the key (all outcomes).
    pub ops: usize,
    /// Model steps the search took.
    pub steps: u64,
    /// The operation that could not be placed: it completed, and no order of the
    /// operations before it explains its result.
    pub stuck: OpId,
    /// The longest order of operations the search could explain, first to last.
    pub longest_prefix: Vec<OpId>,
    /// The key's value after that order; `None`: absent.
    pub value_after_prefix: Option<Value>,
    /// The version of that value, if known.
    pub version_after_prefix: Option<u64>,
    /// The operations that matter for the explanation: the stuck operation, those
    /// concurrent with it, the writer of the value after the prefix, the writer of the
    /// value the stuck operation expected or observed, and the last few of the prefix.
    pub involved: Vec<Op>,
    /// The same, in a sentence or two.
    pub explanation: String,
}

/// The linearizability check's report: usable as a test failure message
/// ([`Display`](fmt::Display)) and as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinearizabilityReport {
    /// The overall answer.
    pub verdict: Verdict,
    /// Operations in the history.
    pub ops: usize,
    /// One result per key, by key.
    pub keys: BTreeMap<String, KeyResult>,
}

impl LinearizabilityReport {
    /// Whether every key was found linearizable.
    pub fn is_linearizable(&self) -> bool {
        self.verdict == Verdict::Linearizable
    }

    /// The violations found, by key.
    pub fn violations(&self) -> impl Iterator<Item = &Violation> {
        self.keys.values().filter_map(|r| match r {
            KeyResult::Violation(v) => Some(&**v),
            _ => None,
        })
    }
}

/// How many operations of a violation's prefix [`Display`](fmt::Display) shows.
const PREFIX_SHOWN: usize = 5;
/// At most this many operations go into [`Violation::involved`].
const MAX_INVOLVED: usize = 24;

impl fmt::Display for LinearizabilityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |p: fn(&KeyResult) -> bool| self.keys.values().filter(|r| p(r)).count();
        writeln!(
            f,
            "linearizability: {:?}: {} operations over {} keys ({} ok, {} violated, {} unknown)",
            self.verdict,
            self.ops,
            self.keys.len(),
            count(|r| matches!(r, KeyResult::Ok { .. })),
            count(|r| matches!(r, KeyResult::Violation(_))),
            count(|r| matches!(r, KeyResult::Unknown { .. })),
        )?;
        for (key, result) in &self.keys {
            match result {
                KeyResult::Ok { .. } => {}
                KeyResult::Unknown { ops, steps, reason } => {
                    writeln!(
                        f,
                        "key {key:?}: not decided ({reason:?} after {steps} steps, {ops} ops)"
                    )?;
                }
                KeyResult::Violation(v) => {
                    writeln!(f, "{}", v.explanation)?;
                    let shown = v.longest_prefix.len().saturating_sub(PREFIX_SHOWN);
                    write!(f, "  prefix ({} ops): ", v.longest_prefix.len())?;
                    if shown > 0 {
                        f.write_str("... ")?;
                    }
                    for id in &v.longest_prefix[shown..] {
                        write!(f, "{id} ")?;
                    }
                    writeln!(f)?;
                    for op in &v.involved {
                        let mark = if op.id == v.stuck { "*" } else { " " };
                        writeln!(f, "  {mark} {op}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Checks that the history is linearizable for a per-key register with
/// compare-and-set (see [`OpKind`] and [`Outcome`] for what each operation claims).
///
/// Sound: it never reports a violation for a history some linearizable cluster could
/// have produced, provided the recorder followed the rules in the crate docs (values
/// unique per key, times taken around each request, reads linearizable).
///
/// # Errors
///
/// A malformed history: see [`Error`](crate::Error).
pub fn check_linearizability(ops: &[Op], options: &CheckOptions) -> Result<LinearizabilityReport> {
    validate(ops)?;
    let deadline = options
        .time_limit
        .and_then(|d| Instant::now().checked_add(d));
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        by_key.entry(&op.key).or_default().push(op);
    }
    let keys: BTreeMap<String, KeyResult> = by_key
        .into_iter()
        .map(|(key, key_ops)| (key.to_owned(), check_key(key, &key_ops, options, deadline)))
        .collect();
    let verdict = if keys.values().any(|r| matches!(r, KeyResult::Violation(_))) {
        Verdict::NotLinearizable
    } else if keys
        .values()
        .any(|r| matches!(r, KeyResult::Unknown { .. }))
    {
        Verdict::Unknown
    } else {
        Verdict::Linearizable
    };
    Ok(LinearizabilityReport {
        verdict,
        ops: ops.len(),
        keys,
    })
}

/// One key's operations that constrain the search, with their model effects.
struct Prepared<'a> {
    ops: Vec<&'a Op>,
    effects: Vec<Effect>,
    /// Whether the operation has a known outcome and so must be linearized.
    finite: Vec<bool>,
    /// Interned values, by index.
    values: Vec<Value>,
}

impl<'a> Prepared<'a> {
    fn new(key_ops: &[&'a Op]) -> Self {
        let mut p = Prepared {
            ops: Vec::new(),
            effects: Vec::new(),
            finite: Vec::new(),
            values: Vec::new(),
        };
        let mut index: HashMap<Value, u32> = HashMap::new();
        let mut intern = |v: &Value, values: &mut Vec<Value>| {
            *index.entry(v.clone()).or_insert_with(|| {
                values.push(v.clone());
                u32::try_from(values.len() - 1).expect("fewer than 2^32 values per key")
            })
        };
        for &op in key_ops {
            let effect = match (&op.kind, op.outcome) {
                // Not applied, or a read with no answer: no constraint.
                (_, Outcome::Failed) | (OpKind::Read { .. }, Outcome::Unknown) => continue,
                (OpKind::Read { observed }, Outcome::Ok { version }) => Effect::Read {
                    observed: observed.as_ref().map(|v| intern(v, &mut p.values)),
                    version,
                },
                (OpKind::Write { value }, outcome) => Effect::Put {
                    value: intern(value, &mut p.values),
                    version: version_of(outcome),
                },
                (OpKind::Cas { expected, value }, outcome) => Effect::Cas {
                    expected: expected.as_ref().map(|v| intern(v, &mut p.values)),
                    value: intern(value, &mut p.values),
                    outcome: match outcome {
                        Outcome::Ok { version } => CasOutcome::Applied(version),
                        Outcome::Mismatch => CasOutcome::Mismatch,
                        _ => CasOutcome::Unknown,
                    },
                },
                (OpKind::Delete, outcome) => Effect::Delete {
                    version: version_of(outcome),
                },
                // Rejected by `validate`.
                (OpKind::Read { .. }, Outcome::Mismatch) => continue,
            };
            p.ops.push(op);
            p.effects.push(effect);
            p.finite.push(op.outcome != Outcome::Unknown);
        }
        p
    }
}

fn version_of(outcome: Outcome) -> Option<u64> {
    match outcome {
        Outcome::Ok { version } => version,
        _ => None,
    }
}

/// Doubly linked list of call and return entries, in time order, between two sentinels.
struct Entries {
    prev: Vec<usize>,
    next: Vec<usize>,
    /// For each entry: the operation (index into `Prepared::ops`) and whether it is the
    /// call.
    op: Vec<(usize, bool)>,
    /// For each call entry: its return entry, if the operation has one.
    ret: Vec<Option<usize>>,
}

const HEAD: usize = 0;

impl Entries {
    fn new(p: &Prepared<'_>) -> (Self, usize) {
        // (time, return after call at equal times, op, is_call). Calls first at equal
        // times makes such operations concurrent, which only widens the orders allowed.
        let mut events: Vec<(u64, bool, usize, bool)> = Vec::new();
        for (i, op) in p.ops.iter().enumerate() {
            events.push((op.invoke, false, i, true));
            if p.finite[i] {
                events.push((op.effective_end(), true, i, false));
            }
        }
        events.sort_unstable();
        let n = events.len();
        let tail = n + 1;
        let mut e = Entries {
            prev: (0..n + 2).map(|i| i.saturating_sub(1)).collect(),
            next: (0..n + 2).map(|i| (i + 1).min(tail)).collect(),
            op: vec![(usize::MAX, false); n + 2],
            ret: vec![None; n + 2],
        };
        let mut call_entry = vec![0; p.ops.len()];
        for (k, &(_, _, op, is_call)) in events.iter().enumerate() {
            let entry = k + 1;
            e.op[entry] = (op, is_call);
            if is_call {
                call_entry[op] = entry;
            } else {
                e.ret[call_entry[op]] = Some(entry);
            }
        }
        (e, tail)
    }

    fn unlink(&mut self, i: usize) {
        let (p, n) = (self.prev[i], self.next[i]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn relink(&mut self, i: usize) {
        let (p, n) = (self.prev[i], self.next[i]);
        self.next[p] = i;
        self.prev[n] = i;
    }

    /// Takes a linearized call and its return out of the list.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        if let Some(r) = self.ret[call] {
            self.unlink(r);
        }
    }

    /// Undoes [`lift`](Self::lift); lifts are undone in reverse order.
    fn unlift(&mut self, call: usize) {
        if let Some(r) = self.ret[call] {
            self.relink(r);
        }
        self.relink(call);
    }
}

/// The set of linearized operations.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Box<[u64]>);

impl Bits {
    fn new(n: usize) -> Self {
        Self(vec![0; n.div_ceil(64)].into_boxed_slice())
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// The deepest point the search reached: the order so far, the state, and the
/// operation whose return stopped it.
struct Deepest {
    prefix: Vec<usize>,
    state: State,
    stuck: usize,
}

enum Search {
    Linearizable,
    Stuck(Deepest),
    Incomplete(Incomplete),
}

/// How often the search looks at the clock.
const CLOCK_EVERY_STEPS: u64 = 1024;

fn check_key(
    key: &str,
    key_ops: &[&Op],
    options: &CheckOptions,
    deadline: Option<Instant>,
) -> KeyResult {
    let p = Prepared::new(key_ops);
    let mut steps = 0;
    let result = search(&p, options, deadline, &mut steps);
    let ops = key_ops.len();
    match result {
        Search::Linearizable => KeyResult::Ok { ops, steps },
        Search::Incomplete(reason) => KeyResult::Unknown { ops, steps, reason },
        Search::Stuck(deepest) => {
            KeyResult::Violation(Box::new(explain(key, key_ops, &p, &deepest, steps)))
        }
    }
}

fn search(
    p: &Prepared<'_>,
    options: &CheckOptions,
    deadline: Option<Instant>,
    steps: &mut u64,
) -> Search {
    let must = p.finite.iter().filter(|&&f| f).count();
    if must == 0 {
        return Search::Linearizable;
    }
    if deadline.is_some_and(|d| Instant::now() >= d) {
        return Search::Incomplete(Incomplete::TimedOut);
    }
    let (mut list, tail) = Entries::new(p);
    let mut state = State::default();
    let mut bits = Bits::new(p.ops.len());
    let mut seen: HashSet<(Bits, State)> = HashSet::new();
    // The linearized calls, each with the state before it.
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut done = 0;
    let mut deepest: Option<Deepest> = None;
    let mut entry = list.next[HEAD];
    loop {
        if entry != tail && list.op[entry].1 {
            // A pending call: try to linearize it here.
            let op = list.op[entry].0;
            *steps += 1;
            if *steps >= options.max_steps_per_key {
                return Search::Incomplete(Incomplete::StepBudget);
            }
            if steps.is_multiple_of(CLOCK_EVERY_STEPS)
                && deadline.is_some_and(|d| Instant::now() >= d)
            {
                return Search::Incomplete(Incomplete::TimedOut);
            }
            if let Some(next) = model::step(state, p.effects[op]) {
                bits.set(op);
                if seen.insert((bits.clone(), next)) {
                    stack.push((entry, state));
                    state = next;
                    list.lift(entry);
                    if p.finite[op] {
                        done += 1;
                        if done == must {
                            return Search::Linearizable;
                        }
                    }
                    entry = list.next[HEAD];
                    continue;
                }
                bits.clear(op);
            }
            entry = list.next[entry];
            continue;
        }
        // A return whose call is not linearized (or, defensively, the end of the list):
        // the order so far cannot be extended. Back up.
        if entry != tail
            && deepest
                .as_ref()
                .is_none_or(|d| stack.len() > d.prefix.len())
        {
            deepest = Some(Deepest {
                prefix: stack.iter().map(|&(e, _)| list.op[e].0).collect(),
                state,
                stuck: list.op[entry].0,
            });
        }
        let Some((call, before)) = stack.pop() else {
            let deepest = deepest.expect("the search met a return before giving up");
            return Search::Stuck(deepest);
        };
        let op = list.op[call].0;
        state = before;
        bits.clear(op);
        list.unlift(call);
        if p.finite[op] {
            done -= 1;
        }
        entry = list.next[call];
    }
}

fn overlaps(a: &Op, b: &Op) -> bool {
    a.invoke <= b.effective_end() && b.invoke <= a.effective_end()
}

fn explain(key: &str, key_ops: &[&Op], p: &Prepared<'_>, d: &Deepest, steps: u64) -> Violation {
    let stuck = p.ops[d.stuck];
    let value_after = d.state.value.map(|v| p.values[v as usize].clone());
    let writer_of = |v: &Value| {
        key_ops
            .iter()
            .copied()
            .find(|op| op.kind.written_value() == Some(v))
    };
    let mut involved: Vec<&Op> = vec![stuck];
    let mut text = format!(
        "key {key:?}: no order of its operations explains {stuck}. The longest explainable \
         order places {} of {} operations and leaves the key ",
        d.prefix.len(),
        key_ops.len()
    );
    match (&value_after, d.state.version) {
        (None, _) => text.push_str("absent"),
        (Some(v), version) => {
            text.push_str(&format!("holding {v}"));
            if let Some(version) = version {
                text.push_str(&format!(" at version {version}"));
            }
            if let Some(w) = writer_of(v) {
                text.push_str(&format!(" (written by {})", w.id));
                involved.push(w);
            }
        }
    }
    text.push('.');
    let about = match &stuck.kind {
        OpKind::Read { observed: Some(v) }
        | OpKind::Cas {
            expected: Some(v), ..
        } => Some(v),
        _ => None,
    };
    if let Some(v) = about {
        match writer_of(v) {
            None => text.push_str(&format!(" No operation wrote {v}.")),
            Some(w) => {
                involved.push(w);
                if w.outcome == Outcome::Failed {
                    text.push_str(&format!(" {v} was written only by {}, which failed.", w.id));
                } else if stuck.precedes(w) {
                    text.push_str(&format!(
                        " {v} was written by {}, invoked after {} completed.",
                        w.id, stuck.id
                    ));
                } else {
                    text.push_str(&format!(
                        " {} needs the key to hold {v} (written by {}), but no order allowed \
                         by real time leaves it there while {} is in flight.",
                        stuck.id, w.id, stuck.id
                    ));
                }
            }
        }
    }
    involved.extend(
        key_ops
            .iter()
            .copied()
            .filter(|op| op.id != stuck.id && overlaps(op, stuck)),
    );
    let tail = d.prefix.len().saturating_sub(3);
    involved.extend(d.prefix[tail..].iter().map(|&i| p.ops[i]));
    let mut seen = HashSet::new();
    involved.retain(|op| seen.insert(op.id));
    // Keep the stuck operation and the writers; trim the concurrent ones beyond the cap.
    involved.truncate(MAX_INVOLVED);
    let mut involved: Vec<Op> = involved.into_iter().cloned().collect();
    involved.sort_by_key(|op| op.id);
    Violation {
        key: key.to_owned(),
        ops: key_ops.len(),
        steps,
        stuck: stuck.id,
        longest_prefix: d.prefix.iter().map(|&i| p.ops[i].id).collect(),
        value_after_prefix: value_after,
        version_after_prefix: d.state.version,
        involved,
        explanation: text,
    }
}

#[cfg(test)]
#[path = "linearizability_test.rs"]
mod tests;
