//! The history model: [`Op`], [`OpKind`], [`Outcome`], and the thread-safe recorder
//! [`History`] that client tasks write into while a fault run goes on.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

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

/// One line: `#12 client c2 key "k" read -> "x" [1.200ms, 1.500ms] ok v15`.
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
            Outcome::Ok { version: Some(v) } => write!(f, "ok v{v}"),
            Outcome::Ok { version: None } => f.write_str("ok"),
            Outcome::Mismatch => f.write_str("mismatch"),
            Outcome::Failed => f.write_str("failed"),
            Outcome::Unknown => f.write_str("unknown"),
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
        let mut ops = self.lock();
        let id = OpId(ops.len() as u64);
        ops.push(Op {
            id,
            client: client.into(),
            key: key.into(),
            kind,
            invoke: at,
            complete: None,
            outcome: Outcome::Unknown,
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

    /// [`complete_read`](Self::complete_read) at an explicit time.
    pub fn complete_read_at(
        &self,
        id: OpId,
        observed: Option<Value>,
        version: Option<u64>,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many tasks record at once; every operation gets its own id and outcome.
    #[test]
    fn concurrent_recording() {
        let h = History::new();
        std::thread::scope(|s| {
            for c in 0..8 {
                let h = &h;
                s.spawn(move || {
                    for i in 0..100 {
                        let value = Value::from(format!("c{c}-{i}"));
                        let id = h.invoke(format!("c{c}"), "k", OpKind::Write { value });
                        h.complete(id, Outcome::Ok { version: None })
                            .expect("completes");
                    }
                });
            }
        });
        let ops = h.ops();
        assert_eq!(ops.len(), 800);
        assert!(
            ops.iter()
                .enumerate()
                .all(|(i, op)| op.id == OpId(i as u64))
        );
        assert!(
            ops.iter()
                .all(|op| op.complete.is_some_and(|c| c >= op.invoke))
        );
        validate(&ops).expect("valid");
    }

    /// A history saved as JSON reads back the same, so a run can be checked later.
    #[test]
    fn json_round_trip() {
        let h = History::new();
        let w = h.invoke_at("c1", "k", OpKind::Write { value: "a".into() }, 5);
        h.complete_at(w, Outcome::Ok { version: Some(3) }, 9)
            .expect("completes");
        let c = h.invoke_at(
            "c2",
            "k",
            OpKind::Cas {
                expected: None,
                value: "b".into(),
            },
            6,
        );
        h.complete_at(c, Outcome::Mismatch, 10).expect("completes");
        let r = h.invoke_at("c3", "k", OpKind::Read { observed: None }, 7);
        h.complete_read_at(r, Some("a".into()), Some(3), 11)
            .expect("completes");
        h.invoke_at("c4", "k", OpKind::Delete, 8);
        let ops = h.ops();
        let json = serde_json::to_string(&ops).expect("serializes");
        let back: Vec<Op> = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, ops);
        assert_eq!(
            ops[2].to_string(),
            "#2 client c3 key \"k\" read -> \"a\" [7ns, 11ns] ok v3"
        );
        assert_eq!(
            ops[3].to_string(),
            "#3 client c4 key \"k\" delete [8ns, ∞] unknown"
        );
    }

    /// Recorder mistakes are reported, not silently recorded.
    #[test]
    fn recorder_mistakes() {
        let h = History::new();
        let w = h.invoke_at("c", "k", OpKind::Write { value: "a".into() }, 10);
        assert_eq!(
            h.complete_at(w, Outcome::Failed, 5),
            Err(Error::CompletedBeforeInvoked {
                op: w,
                invoke: 10,
                complete: 5
            })
        );
        assert!(matches!(
            h.complete_read_at(w, None, None, 20),
            Err(Error::InvalidOp { .. })
        ));
        h.complete_at(w, Outcome::Failed, 20).expect("completes");
        assert_eq!(
            h.complete_at(w, Outcome::Failed, 30),
            Err(Error::AlreadyCompleted(w))
        );
        assert_eq!(
            h.complete_at(OpId(9), Outcome::Failed, 30),
            Err(Error::UnknownOp(OpId(9)))
        );

        h.invoke_at("c", "k", OpKind::Write { value: "a".into() }, 40);
        assert!(matches!(
            validate(&h.ops()),
            Err(Error::DuplicateValue { .. })
        ));
    }
}
