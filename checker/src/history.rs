//! The history model: [`Op`], [`OpKind`], [`Outcome`], [`Reply`], and the thread-safe
//! recorder [`History`] that client tasks write into while a fault run goes on, with the
//! questions a run asks of it while it goes on ([`Counts`], acknowledgments after an
//! instant).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{Error, Result, Value};

/// Identifies one operation of a history. [`History`] numbers operations 0, 1, 2, ...
/// in invocation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OpId(pub u64);

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What an operation asked of one key: a register with compare-and-set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OpKind {
    /// An unconditional put of `value`.
    Write {
        /// The content written; unique per key across the history.
        value: Value,
    },
    /// A conditional put: store `value` if the key currently holds `expected`
    /// (`None`: if the key is absent).
    ///
    /// Sutra's condition is on a version ("put if version == v", 0 = must not exist).
    /// The recorder states it as the value that version carries: the value of the write
    /// that returned `v`, or that a read saw with version `v`; `None` for version 0.
    /// Because values are unique per key, the key is at version `v` exactly when it holds
    /// that value.
    Cas {
        /// The value the key must hold for the put to apply; `None`: must be absent.
        expected: Option<Value>,
        /// The content written; unique per key across the history.
        value: Value,
    },
    /// A delete of the key.
    Delete,
    /// A linearizable read of the key.
    Read {
        /// What the read returned; `None`: the key was absent. Only meaningful once the
        /// read completed [`Outcome::Ok`].
        observed: Option<Value>,
    },
}

impl OpKind {
    /// The value this operation writes, if it writes one.
    pub fn written_value(&self) -> Option<&Value> {
        match self {
            Self::Write { value } | Self::Cas { value, .. } => Some(value),
            Self::Delete | Self::Read { .. } => None,
        }
    }

    /// Whether the operation can change the key (everything but a read).
    pub fn is_mutation(&self) -> bool {
        !matches!(self, Self::Read { .. })
    }
}

/// How an operation ended, as its client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outcome {
    /// Acknowledged: a write or compare-and-set applied, a delete applied, a read
    /// returned [`OpKind::Read::observed`].
    Ok {
        /// For a write, compare-and-set or delete: the version the cluster returned (the
        /// log position of the write). For a read that found the key: the version it saw.
        /// `None` when not recorded; versions only add checks.
        version: Option<u64>,
    },
    /// A compare-and-set that the cluster refused because the key did not hold the
    /// expected value (version). It took effect as a read of the key.
    Mismatch,
    /// Definitely not applied: the cluster refused it before ordering it, or the request
    /// never left the client.
    Failed,
    /// Maybe applied, at any time after invocation: a timeout, a lost connection, a
    /// crash of the client. An operation that was invoked and never completed counts as
    /// unknown too.
    Unknown,
}

/// What the answering node said besides the result, when the recorder has it: which
/// node served the request, which node it took for the leader, and whether it answered a
/// retry from its session table. For measurements and reports (a recovery time counts
/// only acknowledgments under a new leader); the checks do not look at it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The node that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_by: Option<u64>,
    /// The leader as the answering node knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_id: Option<u64>,
    /// The answer came from the session table: a retry of a write that had already
    /// applied, answered with that write's version.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deduplicated: bool,
}

impl Reply {
    /// Whether nothing is known about the answer.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One client operation on one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// The operation's id, unique in the history.
    pub id: OpId,
    /// The client (task, session) that issued it; shown in reports. The checks rely on
    /// times, not on clients, so one client may have several requests in flight.
    pub client: String,
    /// The key (concept id).
    pub key: String,
    /// What it asked.
    pub kind: OpKind,
    /// When it was sent, in nanoseconds from the history's start.
    pub invoke: u64,
    /// When its outcome came back, in nanoseconds from the history's start; `None` if it
    /// never did. Ignored for [`Outcome::Unknown`], which may take effect at any later
    /// time.
    pub complete: Option<u64>,
    /// How it ended.
    pub outcome: Outcome,
    /// What the answering node said about its answer, if the recorder kept it.
    #[serde(default, skip_serializing_if = "Reply::is_empty")]
    pub reply: Reply,
    /// Free text the recorder attaches (where the operation came from, the request's
    /// sequence number); shown in reports, never checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

impl Op {
    /// When the operation's effect can no longer happen: its completion, or never
    /// (`u64::MAX`) for an unknown outcome.
    pub fn effective_end(&self) -> u64 {
        match (self.outcome, self.complete) {
            (Outcome::Unknown, _) | (_, None) => u64::MAX,
            (_, Some(c)) => c,
        }
    }

    /// Whether this operation completed before `other` was invoked (real-time order).
    pub fn precedes(&self, other: &Op) -> bool {
        self.effective_end() < other.invoke
    }

    /// The version in an [`Outcome::Ok`], if any.
    pub fn ok_version(&self) -> Option<u64> {
        match self.outcome {
            Outcome::Ok { version } => version,
            _ => None,
        }
    }

    /// Whether this is a write, compare-and-set or delete the cluster acknowledged.
    pub fn is_acknowledged_mutation(&self) -> bool {
        self.kind.is_mutation() && matches!(self.outcome, Outcome::Ok { .. })
    }
}

/// A time in the unit that keeps it short: `20ns`, `12.345µs`, `1.234ms`, `12.345678s`.
fn fmt_time(f: &mut fmt::Formatter<'_>, ns: u64) -> fmt::Result {
    match ns {
        0..1_000 => write!(f, "{ns}ns"),
        1_000..1_000_000 => write!(f, "{}.{:03}µs", ns / 1_000, ns % 1_000),
        1_000_000..1_000_000_000 => write!(f, "{}.{:03}ms", ns / 1_000_000, (ns / 1_000) % 1_000),
        _ => write!(f, "{}.{:06}s", ns / 1_000_000_000, (ns / 1_000) % 1_000_000),
    }
}

fn fmt_opt(f: &mut fmt::Formatter<'_>, v: &Option<Value>) -> fmt::Result {
    match v {
        Some(v) => write!(f, "{v}"),
        None => f.write_str("absent"),
    }
}

/// One line: `#12 client c2 key "k" read -> "x" [1.200ms, 1.500ms] ok v15 by node 2
/// (leader 1) [probe]` (reply and tag only when recorded).
impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} client {} key {:?} ", self.id, self.client, self.key)?;
        match &self.kind {
            OpKind::Write { value } => write!(f, "write {value}")?,
            OpKind::Cas { expected, value } => {
                f.write_str("cas ")?;
                fmt_opt(f, expected)?;
                write!(f, " -> {value}")?;
            }
            OpKind::Delete => f.write_str("delete")?,
            OpKind::Read { observed } => {
                f.write_str("read")?;
                if matches!(self.outcome, Outcome::Ok { .. }) {
                    f.write_str(" -> ")?;
                    fmt_opt(f, observed)?;
                }
            }
        }
        f.write_str(" [")?;
        fmt_time(f, self.invoke)?;
        f.write_str(", ")?;
        match (self.outcome, self.complete) {
            (Outcome::Unknown, _) | (_, None) => f.write_str("∞")?,
            (_, Some(c)) => fmt_time(f, c)?,
        }
        f.write_str("] ")?;
        match self.outcome {
            Outcome::Ok { version: Some(v) } => write!(f, "ok v{v}")?,
            Outcome::Ok { version: None } => f.write_str("ok")?,
            Outcome::Mismatch => f.write_str("mismatch")?,
            Outcome::Failed => f.write_str("failed")?,
            Outcome::Unknown => f.write_str("unknown")?,
        }
        if self.reply.deduplicated {
            f.write_str(" deduplicated")?;
        }
        if let Some(n) = self.reply.served_by {
            write!(f, " by node {n}")?;
        }
        if let Some(n) = self.reply.leader_id {
            write!(f, " (leader {n})")?;
        }
        match &self.tag {
            Some(t) => write!(f, " [{t}]"),
            None => Ok(()),
        }
    }
}

/// Checks that a history can be judged: unique ids, sane times, outcomes that fit their
/// kinds, values unique per key.
pub(crate) fn validate(ops: &[Op]) -> Result<()> {
    let mut ids = HashSet::with_capacity(ops.len());
    let mut writers: HashMap<(&str, &Value), OpId> = HashMap::new();
    for op in ops {
        if !ids.insert(op.id) {
            return Err(Error::DuplicateOpId(op.id));
        }
        if let Some(complete) = op.complete
            && complete < op.invoke
        {
            return Err(Error::CompletedBeforeInvoked {
                op: op.id,
                invoke: op.invoke,
                complete,
            });
        }
        let invalid = |reason| Err(Error::InvalidOp { op: op.id, reason });
        match op.outcome {
            Outcome::Ok { .. } | Outcome::Mismatch if op.complete.is_none() => {
                return invalid("an acknowledged or refused operation needs a completion time");
            }
            Outcome::Mismatch if !matches!(op.kind, OpKind::Cas { .. }) => {
                return invalid("only a compare-and-set can end in a mismatch");
            }
            _ => {}
        }
        if let Some(value) = op.kind.written_value()
            && let Some(first) = writers.insert((op.key.as_str(), value), op.id)
        {
            return Err(Error::DuplicateValue {
                key: op.key.clone(),
                value: value.clone(),
                first,
                second: op.id,
            });
        }
    }
    Ok(())
}

/// The recorder: client tasks call [`invoke`](Self::invoke) right before sending a
/// request and [`complete`](Self::complete) right after its answer (or its failure)
/// comes back. Share it as `Arc<History>`; every method takes `&self`.
///
/// Times are nanoseconds of a monotonic clock since [`History::new`]; the `_at` variants
/// take explicit times instead, for recorders with their own clock and for tests.
#[derive(Debug)]
pub struct History {
    start: Instant,
    ops: Mutex<Vec<Op>>,
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

impl History {
    /// An empty history whose clock starts now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            ops: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Op>> {
        // A recording task that panicked left the list whole (every update is a single
        // push or field write); keep using it.
        self.ops.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Nanoseconds since the history started.
    pub fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Records that `client` is about to send `kind` for `key`. For a read pass
    /// `OpKind::Read { observed: None }` and give the result to
    /// [`complete_read`](Self::complete_read). The operation counts as
    /// [`Outcome::Unknown`] until completed.
    pub fn invoke(&self, client: impl Into<String>, key: impl Into<String>, kind: OpKind) -> OpId {
        let now = self.now();
        self.invoke_at(client, key, kind, now)
    }

    /// [`invoke`](Self::invoke) at an explicit time.
    pub fn invoke_at(
        &self,
        client: impl Into<String>,
        key: impl Into<String>,
        kind: OpKind,
        at: u64,
    ) -> OpId {
        self.push(client.into(), key.into(), kind, at, None)
    }

    /// [`invoke`](Self::invoke) with a [`tag`](Op::tag): free text shown in reports
    /// (`"probe-lease"`, `"seq 7"`).
    pub fn invoke_tagged(
        &self,
        client: impl Into<String>,
        key: impl Into<String>,
        kind: OpKind,
        tag: impl Into<String>,
    ) -> OpId {
        let now = self.now();
        self.push(client.into(), key.into(), kind, now, Some(tag.into()))
    }

    fn push(
        &self,
        client: String,
        key: String,
        kind: OpKind,
        at: u64,
        tag: Option<String>,
    ) -> OpId {
        let mut ops = self.lock();
        let id = OpId(ops.len() as u64);
        ops.push(Op {
            id,
            client,
            key,
            kind,
            invoke: at,
            complete: None,
            outcome: Outcome::Unknown,
            reply: Reply::default(),
            tag,
        });
        id
    }

    /// Records how an invoked operation ended. Recording [`Outcome::Unknown`] is allowed
    /// and keeps the operation open-ended.
    pub fn complete(&self, id: OpId, outcome: Outcome) -> Result<()> {
        let now = self.now();
        self.complete_at(id, outcome, now)
    }

    /// [`complete`](Self::complete) at an explicit time.
    pub fn complete_at(&self, id: OpId, outcome: Outcome, at: u64) -> Result<()> {
        self.finish(id, at, |op| {
            op.outcome = outcome;
            Ok(())
        })
    }

    /// [`complete`](Self::complete), keeping what the node said about its answer.
    pub fn complete_with(&self, id: OpId, outcome: Outcome, reply: Reply) -> Result<()> {
        let now = self.now();
        self.finish(id, now, |op| {
            op.outcome = outcome;
            op.reply = reply;
            Ok(())
        })
    }

    /// Records that a read returned: `observed` is the value (`None`: absent) and
    /// `version` the version it carried, if the recorder has it.
    pub fn complete_read(
        &self,
        id: OpId,
        observed: Option<Value>,
        version: Option<u64>,
    ) -> Result<()> {
        let now = self.now();
        self.complete_read_at(id, observed, version, now)
    }

    /// [`complete_read`](Self::complete_read), keeping what the node said about its
    /// answer.
    pub fn complete_read_with(
        &self,
        id: OpId,
        observed: Option<Value>,
        version: Option<u64>,
        reply: Reply,
    ) -> Result<()> {
        let now = self.now();
        self.complete_read_inner(id, observed, version, reply, now)
    }

    /// [`complete_read`](Self::complete_read) at an explicit time.
    pub fn complete_read_at(
        &self,
        id: OpId,
        observed: Option<Value>,
        version: Option<u64>,
        at: u64,
    ) -> Result<()> {
        self.complete_read_inner(id, observed, version, Reply::default(), at)
    }

    fn complete_read_inner(
        &self,
        id: OpId,
        observed: Option<Value>,
        version: Option<u64>,
        reply: Reply,
        at: u64,
    ) -> Result<()> {
        self.finish(id, at, |op| {
            let OpKind::Read { observed: slot } = &mut op.kind else {
                return Err(Error::InvalidOp {
                    op: id,
                    reason: "complete_read on an operation that is not a read",
                });
            };
            *slot = observed;
            op.outcome = Outcome::Ok { version };
            op.reply = reply;
            Ok(())
        })
    }

    fn finish(&self, id: OpId, at: u64, set: impl FnOnce(&mut Op) -> Result<()>) -> Result<()> {
        let mut ops = self.lock();
        let op = usize::try_from(id.0)
            .ok()
            .and_then(|i| ops.get_mut(i))
            .ok_or(Error::UnknownOp(id))?;
        if op.complete.is_some() {
            return Err(Error::AlreadyCompleted(id));
        }
        if at < op.invoke {
            return Err(Error::CompletedBeforeInvoked {
                op: id,
                invoke: op.invoke,
                complete: at,
            });
        }
        set(op)?;
        op.complete = Some(at);
        Ok(())
    }

    /// A copy of every operation so far, in invocation order.
    pub fn ops(&self) -> Vec<Op> {
        self.lock().clone()
    }

    /// How many operations were invoked.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing was invoked yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `t` on this history's clock: nanoseconds since it started (0 for an earlier
    /// instant).
    pub fn time_of(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.start).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The instant `ns` nanoseconds after the history started.
    pub fn instant_of(&self, ns: u64) -> Instant {
        self.start + Duration::from_nanos(ns)
    }

    /// Outcomes so far.
    pub fn counts(&self) -> Counts {
        Counts::of(&self.lock())
    }

    /// Writes, compare-and-sets and deletes acknowledged after `t`.
    pub fn acks_after(&self, t: Instant) -> usize {
        let after = self.time_of(t);
        self.lock()
            .iter()
            .filter(|op| op.is_acknowledged_mutation() && op.complete.is_some_and(|c| c > after))
            .count()
    }

    /// The first write, compare-and-set or delete acknowledged after `t` that `accept`
    /// takes (e.g. one served by another node than the one just killed).
    pub fn first_ack_after(&self, t: Instant, accept: impl Fn(&Op) -> bool) -> Option<Op> {
        let after = self.time_of(t);
        self.lock()
            .iter()
            .filter(|op| op.is_acknowledged_mutation() && op.complete.is_some_and(|c| c > after))
            .filter(|op| accept(op))
            .min_by_key(|op| op.complete)
            .cloned()
    }

    /// The value `key` held at `version`, as far as this history knows: the value of the
    /// acknowledged write or compare-and-set that returned `version`, or that a read saw
    /// at it. This is what a compare-and-set on `version` expects ([`OpKind::Cas`]).
    pub fn value_at(&self, key: &str, version: u64) -> Option<Value> {
        self.lock()
            .iter()
            .filter(|op| op.key == key && op.ok_version() == Some(version))
            .find_map(|op| match &op.kind {
                OpKind::Write { value } | OpKind::Cas { value, .. } => Some(value.clone()),
                OpKind::Read { observed } => observed.clone(),
                OpKind::Delete => None,
            })
    }

    /// The highest version an acknowledged write, compare-and-set or delete returned: a
    /// SESSION read at it sees every acknowledged write.
    pub fn max_acked_version(&self) -> Option<u64> {
        self.lock()
            .iter()
            .filter(|op| op.kind.is_mutation())
            .filter_map(Op::ok_version)
            .max()
    }
}

/// How the operations of a history ended, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Writes, compare-and-sets and deletes acknowledged.
    pub acknowledged: usize,
    /// Of those, answered from the session table ([`Reply::deduplicated`]).
    pub deduplicated: usize,
    /// Compare-and-sets refused for their condition.
    pub mismatched: usize,
    /// Writes, compare-and-sets and deletes that certainly did not apply.
    pub failed: usize,
    /// Writes, compare-and-sets and deletes with an unknown outcome, `pending` included.
    pub unknown: usize,
    /// Operations of any kind invoked and not completed yet.
    pub pending: usize,
    /// Reads answered.
    pub reads: usize,
    /// Reads that failed or got no answer (they constrain nothing).
    pub reads_unanswered: usize,
}

impl Counts {
    /// The counts of `ops`.
    pub fn of(ops: &[Op]) -> Self {
        let mut c = Self::default();
        for op in ops {
            c.pending += usize::from(op.complete.is_none());
            match (op.kind.is_mutation(), op.outcome) {
                (true, Outcome::Ok { .. }) => {
                    c.acknowledged += 1;
                    c.deduplicated += usize::from(op.reply.deduplicated);
                }
                (true, Outcome::Mismatch) => c.mismatched += 1,
                (true, Outcome::Failed) => c.failed += 1,
                (true, Outcome::Unknown) => c.unknown += 1,
                (false, Outcome::Ok { .. }) => c.reads += 1,
                (false, _) => c.reads_unanswered += 1,
            }
        }
        c
    }
}

#[cfg(test)]
#[path = "history_test.rs"]
mod tests;
