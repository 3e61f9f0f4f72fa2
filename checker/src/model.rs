//! The sequential specification the checker linearizes against: one key as a register
//! with compare-and-set and versions.
//!
//! Values are interned per key as small integers so states hash and compare cheaply.
//! Besides the value the state carries what is known about versions: the version of the
//! current value (when some operation reported it) and the highest version applied so
//! far. Versions are log positions, so along the true order of a key's writes they only
//! grow; a linearization whose reported versions go down is not the cluster's order.

/// The register's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct State {
    /// The interned current value; `None`: absent.
    pub value: Option<u32>,
    /// The version of the current value, if known.
    pub version: Option<u64>,
    /// The highest version known to have been applied to the key so far.
    pub floor: u64,
}

/// What an operation did, as far as the model needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Stores `value`. `version`: the version the cluster reported.
    Put { value: u32, version: Option<u64> },
    /// Stores `value` if the key holds `expected`; required to match when `outcome` says
    /// it applied, required to differ when it says mismatch.
    Cas {
        expected: Option<u32>,
        value: u32,
        outcome: CasOutcome,
    },
    /// Removes the key.
    Delete { version: Option<u64> },
    /// Observes `observed` (and `version`, if reported).
    Read {
        observed: Option<u32>,
        version: Option<u64>,
    },
}

/// What the client learned about a compare-and-set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CasOutcome {
    /// It applied, at this version if reported.
    Applied(Option<u64>),
    /// The key did not hold the expected value.
    Mismatch,
    /// Either; where it is linearized it applies exactly when the key matches.
    Unknown,
}

/// A put at a reported version must come after every version seen before it.
fn advance(state: State, version: Option<u64>) -> Option<State> {
    match version {
        Some(v) if v <= state.floor => None,
        Some(v) => Some(State { floor: v, ..state }),
        None => Some(state),
    }
}

/// The state after applying `effect` to `state`, or `None` if the effect's reported
/// result is impossible in `state`.
pub(crate) fn step(state: State, effect: Effect) -> Option<State> {
    match effect {
        Effect::Put { value, version } => {
            let s = advance(state, version)?;
            Some(State {
                value: Some(value),
                version,
                ..s
            })
        }
        Effect::Cas {
            expected,
            value,
            outcome,
        } => {
            let matches = state.value == expected;
            match outcome {
                CasOutcome::Applied(version) if matches => {
                    step(state, Effect::Put { value, version })
                }
                CasOutcome::Applied(_) => None,
                CasOutcome::Mismatch => (!matches).then_some(state),
                CasOutcome::Unknown if matches => step(
                    state,
                    Effect::Put {
                        value,
                        version: None,
                    },
                ),
                CasOutcome::Unknown => Some(state),
            }
        }
        Effect::Delete { version } => {
            let s = advance(state, version)?;
            Some(State {
                value: None,
                version: None,
                ..s
            })
        }
        Effect::Read { observed, version } => {
            if observed != state.value {
                return None;
            }
            match (observed, version, state.version) {
                (Some(_), Some(seen), Some(known)) => (seen == known).then_some(state),
                // The current value came from a write whose version was not reported; it
                // was applied after every version known before it, and now its own
                // version is known.
                (Some(_), Some(seen), None) => (seen > state.floor).then_some(State {
                    version: Some(seen),
                    floor: seen,
                    ..state
                }),
                _ => Some(state),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_only_grow_along_the_order() {
        let s = State::default();
        let s = step(
            s,
            Effect::Put {
                value: 1,
                version: Some(5),
            },
        )
        .expect("first put");
        assert_eq!(
            step(
                s,
                Effect::Put {
                    value: 2,
                    version: Some(4)
                }
            ),
            None
        );
        assert_eq!(step(s, Effect::Delete { version: Some(5) }), None);
        let read = |version| Effect::Read {
            observed: Some(1),
            version,
        };
        assert_eq!(step(s, read(Some(5))), Some(s));
        assert_eq!(step(s, read(Some(6))), None);
        assert_eq!(step(s, read(None)), Some(s));
    }

    #[test]
    fn a_read_learns_the_version_of_an_unreported_write() {
        let s = step(
            State::default(),
            Effect::Put {
                value: 1,
                version: Some(5),
            },
        )
        .expect("put");
        let s = step(
            s,
            Effect::Put {
                value: 2,
                version: None,
            },
        )
        .expect("put");
        assert_eq!(
            step(
                s,
                Effect::Read {
                    observed: Some(2),
                    version: Some(5)
                }
            ),
            None
        );
        let s = step(
            s,
            Effect::Read {
                observed: Some(2),
                version: Some(9),
            },
        )
        .expect("read");
        assert_eq!((s.version, s.floor), (Some(9), 9));
        assert_eq!(
            step(
                s,
                Effect::Put {
                    value: 3,
                    version: Some(8)
                }
            ),
            None
        );
    }

    #[test]
    fn compare_and_set() {
        let empty = State::default();
        let cas = |expected, outcome| Effect::Cas {
            expected,
            value: 7,
            outcome,
        };
        let applied = step(empty, cas(None, CasOutcome::Applied(None))).expect("applies");
        assert_eq!(applied.value, Some(7));
        assert_eq!(step(empty, cas(Some(1), CasOutcome::Applied(None))), None);
        assert_eq!(step(empty, cas(None, CasOutcome::Mismatch)), None);
        assert_eq!(step(empty, cas(Some(1), CasOutcome::Mismatch)), Some(empty));
        assert_eq!(step(empty, cas(Some(1), CasOutcome::Unknown)), Some(empty));
        assert_eq!(
            step(empty, cas(None, CasOutcome::Unknown)).map(|s| s.value),
            Some(Some(7))
        );
    }
}
