//! Test helpers: a terse builder for hand-written histories, and a simulator that
//! produces random histories of a linearizable register with random delays.

use std::collections::BTreeMap;

use crate::{FinalState, History, Op, OpId, OpKind, Outcome, Reply, Stored, Value};

/// Hand-written histories on key `"k"` unless a key is given, through the public
/// recorder with explicit times.
pub(crate) struct Builder {
    history: History,
}

pub(crate) const OK: Outcome = Outcome::Ok { version: None };

pub(crate) fn okv(version: u64) -> Outcome {
    Outcome::Ok {
        version: Some(version),
    }
}

impl Builder {
    pub(crate) fn new() -> Self {
        Self {
            history: History::new(),
        }
    }

    /// An operation with a known end.
    pub(crate) fn op_on(
        &self,
        key: &str,
        client: &str,
        kind: OpKind,
        (a, b): (u64, u64),
        outcome: Outcome,
    ) -> OpId {
        let id = self.history.invoke_at(client, key, kind, a);
        self.history
            .complete_at(id, outcome, b)
            .expect("valid completion");
        id
    }

    pub(crate) fn op(&self, client: &str, kind: OpKind, t: (u64, u64), outcome: Outcome) -> OpId {
        self.op_on("k", client, kind, t, outcome)
    }

    pub(crate) fn write(&self, client: &str, value: &str, t: (u64, u64), outcome: Outcome) -> OpId {
        self.op(
            client,
            OpKind::Write {
                value: value.into(),
            },
            t,
            outcome,
        )
    }

    /// A write that never completed: unknown outcome from `invoke` on.
    pub(crate) fn write_unknown(&self, client: &str, value: &str, invoke: u64) -> OpId {
        self.history.invoke_at(
            client,
            "k",
            OpKind::Write {
                value: value.into(),
            },
            invoke,
        )
    }

    pub(crate) fn read(&self, client: &str, observed: Option<&str>, (a, b): (u64, u64)) -> OpId {
        self.read_v(client, observed, (a, b), None)
    }

    pub(crate) fn read_v(
        &self,
        client: &str,
        observed: Option<&str>,
        (a, b): (u64, u64),
        version: Option<u64>,
    ) -> OpId {
        let id = self
            .history
            .invoke_at(client, "k", OpKind::Read { observed: None }, a);
        self.history
            .complete_read_at(id, observed.map(Value::from), version, b)
            .expect("valid completion");
        id
    }

    pub(crate) fn cas(
        &self,
        client: &str,
        expected: Option<&str>,
        value: &str,
        t: (u64, u64),
        outcome: Outcome,
    ) -> OpId {
        let kind = OpKind::Cas {
            expected: expected.map(Value::from),
            value: value.into(),
        };
        self.op(client, kind, t, outcome)
    }

    pub(crate) fn delete(&self, client: &str, t: (u64, u64), outcome: Outcome) -> OpId {
        self.op(client, OpKind::Delete, t, outcome)
    }

    pub(crate) fn ops(&self) -> Vec<Op> {
        self.history.ops()
    }
}

/// splitmix64: small, fast, and the same on every platform.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent`/100.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Shape of a simulated run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SimConfig {
    pub clients: usize,
    pub keys: usize,
    pub ops: usize,
    /// One operation at a time across all clients.
    pub sequential: bool,
    /// Percent of operations whose outcome the client never learns.
    pub unknown_percent: u64,
    /// Percent of operations refused before they were ordered.
    pub failed_percent: u64,
    /// Whether acknowledged writes and reads report versions.
    pub versions: bool,
}

impl SimConfig {
    /// Five concurrent clients on three keys, 150 operations, some unknown and failed:
    /// what the durability and stale-read checks run many seeds of.
    pub(crate) fn concurrent(versions: bool) -> Self {
        Self {
            clients: 5,
            keys: 3,
            ops: 150,
            sequential: false,
            unknown_percent: 10,
            failed_percent: 5,
            versions,
        }
    }
}

/// A simulated run: the history clients recorded and the state the register ended in.
pub(crate) struct Sim {
    pub ops: Vec<Op>,
    pub final_state: FinalState,
}

/// Runs a linearizable register (one per key, versions from one global counter): each
/// operation takes effect at a random instant between its invocation and completion
/// (an unknown one possibly later, or never), and reports what the register said.
pub(crate) fn simulate(seed: u64, cfg: SimConfig) -> Sim {
    let mut rng = Rng::new(seed);
    let mut free_at = vec![0u64; cfg.clients];
    let mut clock = 0u64;
    // (effect time, op index, applies)
    let mut effects: Vec<(u64, usize, bool)> = Vec::new();
    let mut ops: Vec<Op> = Vec::new();
    for i in 0..cfg.ops {
        let client = rng.below(cfg.clients as u64) as usize;
        let key = format!("k{}", rng.below(cfg.keys as u64));
        let start = if cfg.sequential {
            clock
        } else {
            free_at[client]
        };
        let invoke = start + rng.below(50);
        let duration = 1 + rng.below(200);
        let complete = invoke + duration;
        free_at[client] = complete + 1;
        clock = complete + 1;
        let value = Value::from(format!("{key}-c{client}-{i}"));
        let kind = match rng.below(100) {
            0..35 => OpKind::Write { value },
            35..50 => OpKind::Cas {
                expected: None,
                value,
            },
            50..56 => OpKind::Delete,
            _ => OpKind::Read { observed: None },
        };
        let roll = rng.below(100);
        let (outcome, applies, at) = if roll < cfg.unknown_percent {
            let applies = !cfg.sequential && rng.chance(50);
            (Outcome::Unknown, applies, invoke + rng.below(3 * duration))
        } else if roll < cfg.unknown_percent + cfg.failed_percent {
            (Outcome::Failed, false, invoke)
        } else {
            (OK, true, invoke + rng.below(duration + 1))
        };
        let unknown = outcome == Outcome::Unknown;
        ops.push(Op {
            id: OpId(i as u64),
            client: format!("c{client}"),
            key,
            kind,
            invoke,
            complete: (!unknown).then_some(complete),
            outcome,
            reply: Reply::default(),
            tag: None,
        });
        effects.push((at, i, applies));
    }
    effects.sort_unstable();

    let mut state: BTreeMap<String, Stored> = BTreeMap::new();
    let mut written: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut version = 0u64;
    for (_, i, applies) in effects {
        let op = &mut ops[i];
        let current = state.get(&op.key).cloned();
        let report = |v: u64| Outcome::Ok {
            version: cfg.versions.then_some(v),
        };
        match &mut op.kind {
            OpKind::Read { observed } => {
                if applies && op.outcome != Outcome::Unknown {
                    *observed = current.as_ref().map(|s| s.value.clone());
                    op.outcome = Outcome::Ok {
                        version: current.as_ref().filter(|_| cfg.versions).map(|s| s.version),
                    };
                }
            }
            OpKind::Cas { expected, value } => {
                // Usually the current value (as a recorder that just read it would);
                // otherwise an older value of the key or "absent".
                let older = written
                    .get(&op.key)
                    .filter(|w| !w.is_empty() && rng.chance(70));
                *expected = if rng.chance(60) {
                    current.as_ref().map(|s| s.value.clone())
                } else {
                    older.map(|w| w[rng.below(w.len() as u64) as usize].clone())
                };
                let matches = current.as_ref().map(|s| &s.value) == expected.as_ref();
                if applies && matches {
                    version += 1;
                    state.insert(
                        op.key.clone(),
                        Stored {
                            value: value.clone(),
                            version,
                        },
                    );
                    written
                        .entry(op.key.clone())
                        .or_default()
                        .push(value.clone());
                    if op.outcome != Outcome::Unknown {
                        op.outcome = report(version);
                    }
                } else if applies && op.outcome != Outcome::Unknown {
                    op.outcome = Outcome::Mismatch;
                }
            }
            OpKind::Write { value } => {
                if applies {
                    version += 1;
                    state.insert(
                        op.key.clone(),
                        Stored {
                            value: value.clone(),
                            version,
                        },
                    );
                    written
                        .entry(op.key.clone())
                        .or_default()
                        .push(value.clone());
                    if op.outcome != Outcome::Unknown {
                        op.outcome = report(version);
                    }
                }
            }
            OpKind::Delete => {
                if applies {
                    version += 1;
                    state.remove(&op.key);
                    if op.outcome != Outcome::Unknown {
                        op.outcome = report(version);
                    }
                }
            }
        }
    }
    Sim {
        ops,
        final_state: state,
    }
}
