//! Tests of the linearizability checker: histories it must accept, known-bad histories
//! it must reject, random histories of a linearizable register, and its limits.

use std::time::Duration;

use super::*;
use crate::Reply;
use crate::test_support::{Builder, OK, SimConfig, okv, simulate};

fn check(b: &Builder) -> LinearizabilityReport {
    check_linearizability(&b.ops(), &CheckOptions::default()).expect("well-formed history")
}

#[track_caller]
fn assert_accepted(b: &Builder) {
    let report = check(b);
    assert!(report.is_linearizable(), "expected linearizable:\n{report}");
}

/// Asserts the history is rejected and returns the one violation.
#[track_caller]
fn assert_rejected(b: &Builder) -> Violation {
    let report = check(b);
    assert_eq!(
        report.verdict,
        Verdict::NotLinearizable,
        "expected a violation:\n{report}"
    );
    let v: Vec<&Violation> = report.violations().collect();
    assert_eq!(v.len(), 1, "{report}");
    v[0].clone()
}

// --- Histories that must be accepted.

/// One operation at a time: writes, reads, delete, compare-and-set.
#[test]
fn sequential() {
    let b = Builder::new();
    b.read("c1", None, (0, 1));
    b.write("c1", "a", (2, 3), okv(10));
    b.read_v("c2", Some("a"), (4, 5), Some(10));
    b.write("c2", "b", (6, 7), okv(12));
    b.read("c1", Some("b"), (8, 9));
    b.delete("c1", (10, 11), okv(13));
    b.read("c2", None, (12, 13));
    b.cas("c1", None, "c", (14, 15), okv(20));
    b.cas("c2", Some("b"), "d", (16, 17), Outcome::Mismatch);
    b.cas("c2", Some("c"), "e", (18, 19), okv(21));
    b.read_v("c1", Some("e"), (20, 21), Some(21));
    assert_accepted(&b);
}

/// Two overlapping writes may take effect in either order; a later read settles which.
#[test]
fn concurrent_writes_either_order() {
    for last in ["a", "b"] {
        let b = Builder::new();
        b.write("c1", "a", (0, 100), OK);
        b.write("c2", "b", (10, 110), OK);
        b.read("c3", Some(last), (120, 130));
        assert_accepted(&b);
    }
}

/// A read overlapping a write may see the value before or after it.
#[test]
fn read_concurrent_with_write_sees_old_or_new() {
    for seen in ["a", "b"] {
        let b = Builder::new();
        b.write("c1", "a", (0, 10), OK);
        b.write("c1", "b", (20, 100), OK);
        b.read("c2", Some(seen), (30, 40));
        b.read("c3", Some("b"), (110, 120));
        assert_accepted(&b);
    }
}

/// Operations that touch at the same instant count as concurrent.
#[test]
fn equal_times_are_concurrent() {
    let b = Builder::new();
    b.write("c1", "a", (0, 10), OK);
    b.read("c2", None, (10, 20));
    assert_accepted(&b);
}

/// A write with an unknown outcome may have applied, at any time after its invocation,
/// or not at all.
#[test]
fn unknown_write_applied_or_not() {
    for (seen_first, seen_then) in [("a", "a"), ("b", "b"), ("a", "b")] {
        let b = Builder::new();
        b.write("c1", "a", (0, 10), OK);
        b.write_unknown("c1", "b", 20);
        b.read("c2", Some(seen_first), (1_000, 1_010));
        b.read("c2", Some(seen_then), (2_000, 2_010));
        assert_accepted(&b);
    }
}

/// An unknown compare-and-set applies only where the key matches.
#[test]
fn unknown_cas() {
    let b = Builder::new();
    b.write("c1", "a", (0, 10), OK);
    let cas = b.op(
        "c2",
        OpKind::Cas {
            expected: Some("a".into()),
            value: "b".into(),
        },
        (20, 20),
        OK,
    );
    // Rewrite it as unknown: recorded, never answered.
    let mut ops = b.ops();
    ops[cas.0 as usize].outcome = Outcome::Unknown;
    ops[cas.0 as usize].complete = None;
    ops.push(Op {
        id: OpId(99),
        client: "c3".into(),
        key: "k".into(),
        kind: OpKind::Read {
            observed: Some("b".into()),
        },
        invoke: 100,
        complete: Some(110),
        outcome: OK,
        reply: Reply::default(),
        tag: None,
    });
    let report = check_linearizability(&ops, &CheckOptions::default()).expect("valid");
    assert!(report.is_linearizable(), "{report}");
}

/// Compare-and-set success and failure, with concurrent contenders: one of two CAS from
/// the same value wins, the other sees a mismatch.
#[test]
fn cas_race_one_wins() {
    let b = Builder::new();
    b.write("c0", "a", (0, 10), okv(1));
    b.cas("c1", Some("a"), "b", (20, 50), okv(3));
    b.cas("c2", Some("a"), "c", (25, 45), Outcome::Mismatch);
    b.read_v("c3", Some("b"), (60, 70), Some(3));
    assert_accepted(&b);
}

/// A failed write constrains nothing.
#[test]
fn failed_write_is_ignored() {
    let b = Builder::new();
    b.write("c1", "a", (0, 10), Outcome::Failed);
    b.read("c2", None, (20, 30));
    assert_accepted(&b);
}

/// A read learns the version of a write whose version was never reported.
#[test]
fn read_reports_version_of_unknown_write() {
    let b = Builder::new();
    b.write("c1", "a", (0, 10), okv(5));
    b.write_unknown("c1", "b", 20);
    b.read_v("c2", Some("b"), (30, 40), Some(8));
    b.write("c2", "c", (50, 60), okv(9));
    assert_accepted(&b);
}

// --- Known-bad histories that must be rejected.

/// A read that starts after an acknowledged write completed returns the older value.
#[test]
fn stale_read_after_acknowledged_write() {
    let b = Builder::new();
    b.write("c1", "a", (0, 10), OK);
    b.write("c1", "b", (20, 30), OK);
    let r = b.read("c2", Some("a"), (40, 50));
    let v = assert_rejected(&b);
    assert_eq!(v.stuck, r);
    assert_eq!(v.value_after_prefix, Some("b".into()));
    assert!(v.explanation.contains("holding \"b\""), "{}", v.explanation);
    assert!(v.involved.iter().any(|op| op.id == r));
}

/// A read returns a value no operation wrote.
#[test]
fn read_of_value_never_written() {
    let b = Builder::new();
    b.write("c1", "a", (0, 10), OK);
    let r = b.read("c2", Some("zzz"), (5, 50));
    let v = assert_rejected(&b);
    assert_eq!(v.stuck, r);
    assert!(
        v.explanation.contains("No operation wrote \"zzz\""),
        "{}",
        v.explanation
    );
}

/// Client 2 sees the new value, then client 3, starting after client 2's read ended,
/// sees the old one: the register went back in time.
#[test]
fn read_goes_back_in_time_between_clients() {
    let b = Builder::new();
    b.write("c1", "a", (0, 10), OK);
    b.write("c1", "b", (20, 200), OK);
    b.read("c2", Some("b"), (30, 40));
    b.read("c3", Some("a"), (50, 60));
    assert_rejected(&b);
}

/// Two compare-and-sets from the same expected value both succeed.
#[test]
fn two_cas_from_same_value_both_succeed() {
    let b = Builder::new();
    b.write("c0", "a", (0, 10), OK);
    b.cas("c1", Some("a"), "b", (20, 50), OK);
    b.cas("c2", Some("a"), "c", (25, 45), OK);
    assert_rejected(&b);

    let b = Builder::new();
    b.cas("c1", None, "b", (0, 50), OK);
    b.cas("c2", None, "c", (5, 45), OK);
    assert_rejected(&b);
}

/// A compare-and-set reports a mismatch although nothing could have changed the key.
#[test]
fn cas_mismatch_that_should_have_matched() {
    let b = Builder::new();
    b.write("c0", "a", (0, 10), OK);
    b.cas("c1", Some("a"), "b", (20, 30), Outcome::Mismatch);
    assert_rejected(&b);
}

/// A compare-and-set expecting a value that an acknowledged delete removed before it was
/// invoked still applies; the read after it shows the impossible result.
#[test]
fn cas_applies_on_a_deleted_value() {
    let b = Builder::new();
    b.write("c0", "a", (0, 10), OK);
    b.delete("c1", (20, 30), OK);
    let cas = b.cas("c2", Some("a"), "b", (40, 50), OK);
    b.read("c3", Some("b"), (60, 70));
    let v = assert_rejected(&b);
    assert_eq!(v.stuck, cas, "{}", v.explanation);

    // The same with versions: the CAS reports a version, the reads agree with it.
    let b = Builder::new();
    b.write("c0", "a", (0, 10), okv(3));
    b.delete("c1", (20, 30), okv(4));
    b.cas("c2", Some("a"), "b", (40, 50), okv(5));
    b.read_v("c3", Some("b"), (60, 70), Some(5));
    assert_rejected(&b);
}

/// A compare-and-set "must not exist" refused after an acknowledged delete, with nothing
/// that could have recreated the key.
#[test]
fn cas_absent_refused_after_delete() {
    let b = Builder::new();
    b.write("c0", "a", (0, 10), OK);
    b.delete("c1", (20, 30), OK);
    b.cas("c2", None, "b", (40, 50), Outcome::Mismatch);
    assert_rejected(&b);
}

/// A read sees a deleted value again after another read saw the key absent.
#[test]
fn deleted_value_comes_back() {
    let b = Builder::new();
    b.write("c0", "a", (0, 10), OK);
    b.delete("c1", (20, 100), OK);
    b.read("c2", None, (30, 40));
    b.read("c3", Some("a"), (50, 60));
    assert_rejected(&b);
}

/// A delete racing a compare-and-set from the value it deletes: the CAS may apply first
/// (then the delete removes its value) or see a mismatch; either way the key ends
/// absent. The CAS applying and its value surviving the delete is impossible.
#[test]
fn delete_racing_cas() {
    for cas in [OK, Outcome::Mismatch] {
        let b = Builder::new();
        b.write("c0", "a", (0, 10), OK);
        b.delete("c1", (20, 50), OK);
        b.cas("c2", Some("a"), "b", (25, 45), cas);
        b.read("c3", None, (60, 70));
        assert_accepted(&b);
    }
    let b = Builder::new();
    b.write("c0", "a", (0, 10), OK);
    b.delete("c1", (20, 50), OK);
    b.cas("c2", Some("a"), "b", (25, 45), OK);
    let r = b.read("c3", Some("b"), (60, 70));
    assert_eq!(assert_rejected(&b).stuck, r);
}

/// What the recorder attaches (reply, tag) changes nothing in the verdict.
#[test]
fn reply_and_tag_are_not_checked() {
    let b = Builder::new();
    b.write("c1", "a", (0, 10), OK);
    b.read("c2", Some("a"), (20, 30));
    let mut ops = b.ops();
    ops[0].reply = Reply {
        served_by: Some(2),
        leader_id: Some(1),
        deduplicated: true,
    };
    ops[1].tag = Some("probe".into());
    let report = check_linearizability(&ops, &CheckOptions::default()).expect("valid");
    assert!(report.is_linearizable(), "{report}");
}

/// A write that failed is observed.
#[test]
fn failed_write_observed() {
    let b = Builder::new();
    let w = b.write("c1", "a", (0, 10), Outcome::Failed);
    b.read("c2", Some("a"), (20, 30));
    let v = assert_rejected(&b);
    assert!(v.explanation.contains("which failed"), "{}", v.explanation);
    assert!(v.involved.iter().any(|op| op.id == w));
}

/// An unknown write, once seen, cannot be un-applied.
#[test]
fn unknown_write_seen_then_gone() {
    let b = Builder::new();
    b.write("c1", "a", (0, 10), OK);
    b.write_unknown("c1", "b", 20);
    b.read("c2", Some("b"), (100, 110));
    b.read("c2", Some("a"), (200, 210));
    assert_rejected(&b);
}

/// A read value written by a write invoked only after the read completed.
#[test]
fn read_from_the_future() {
    let b = Builder::new();
    b.read("c2", Some("a"), (0, 10));
    b.write("c1", "a", (20, 30), OK);
    let v = assert_rejected(&b);
    assert!(v.explanation.contains("invoked after"), "{}", v.explanation);
}

/// Versions that go backwards along real time, and a read whose version is not the
/// value's.
#[test]
fn versions_out_of_order() {
    let b = Builder::new();
    b.write("c1", "a", (0, 10), okv(5));
    b.write("c1", "b", (20, 30), okv(3));
    assert_rejected(&b);

    let b = Builder::new();
    b.write("c1", "a", (0, 10), okv(5));
    b.read_v("c2", Some("a"), (20, 30), Some(6));
    assert_rejected(&b);
}

/// Only the bad key is reported; the others are fine.
#[test]
fn keys_are_checked_separately() {
    let b = Builder::new();
    b.op_on("x", "c1", OpKind::Write { value: "a".into() }, (0, 10), OK);
    b.op_on("y", "c1", OpKind::Write { value: "a".into() }, (0, 10), OK);
    b.op_on("y", "c2", OpKind::Read { observed: None }, (20, 30), OK);
    let report = check(&b);
    assert_eq!(report.verdict, Verdict::NotLinearizable);
    assert!(matches!(report.keys["x"], KeyResult::Ok { .. }));
    assert!(matches!(report.keys["y"], KeyResult::Violation(_)));
}

// --- Reports.

/// The report reads as a failure message and serializes to JSON.
#[test]
fn report_renders_and_serializes() {
    let b = Builder::new();
    b.write("c1", "a", (0, 10), OK);
    b.write("c1", "b", (20, 30), OK);
    b.read("c2", Some("a"), (40, 50));
    let report = check(&b);
    let text = report.to_string();
    assert!(text.contains("NotLinearizable"), "{text}");
    assert!(
        text.contains("* #2 client c2 key \"k\" read -> \"a\""),
        "{text}"
    );
    let json = serde_json::to_value(&report).expect("serializes");
    assert_eq!(json["verdict"], "not_linearizable");
    assert_eq!(json["keys"]["k"]["result"], "violation");
    assert_eq!(json["keys"]["k"]["stuck"], 2);
    assert_eq!(json["keys"]["k"]["value_after_prefix"], "b");
}

/// A malformed history is an error, not a verdict.
#[test]
fn malformed_history_is_an_error() {
    let b = Builder::new();
    b.write("c1", "a", (0, 10), OK);
    b.write("c2", "a", (0, 10), OK);
    assert!(matches!(
        check_linearizability(&b.ops(), &CheckOptions::default()),
        Err(crate::Error::DuplicateValue { .. })
    ));
}

// --- Limits.

/// Many concurrent writes with unknown outcomes and reads that rule most orders out:
/// a tiny budget ends in `Unknown`, never in a hang or a false verdict.
#[test]
fn budget_ends_in_unknown() {
    let b = Builder::new();
    for i in 0..12 {
        b.write_unknown(&format!("w{i}"), &format!("v{i}"), 0);
    }
    for i in 0..12 {
        b.read(
            &format!("r{i}"),
            Some(&format!("v{i}")),
            (100 + 10 * i, 105 + 10 * i),
        );
    }
    let ops = b.ops();
    let steps = CheckOptions {
        max_steps_per_key: 50,
        time_limit: None,
    };
    let report = check_linearizability(&ops, &steps).expect("valid");
    assert_eq!(report.verdict, Verdict::Unknown, "{report}");
    assert!(matches!(
        report.keys["k"],
        KeyResult::Unknown {
            reason: Incomplete::StepBudget,
            ..
        }
    ));

    let time = CheckOptions {
        max_steps_per_key: u64::MAX,
        time_limit: Some(Duration::ZERO),
    };
    let report = check_linearizability(&ops, &time).expect("valid");
    assert!(matches!(
        report.keys["k"],
        KeyResult::Unknown {
            reason: Incomplete::TimedOut,
            ..
        }
    ));

    let report = check_linearizability(&ops, &CheckOptions::default()).expect("valid");
    assert!(report.is_linearizable(), "{report}");
}

/// 2,000 operations over 20 keys from 8 clients, with unknown and failed outcomes,
/// decide well inside a modest step budget.
#[test]
fn two_thousand_ops_within_budget() {
    let cfg = SimConfig {
        clients: 8,
        keys: 20,
        ops: 2_000,
        sequential: false,
        unknown_percent: 5,
        failed_percent: 3,
        versions: true,
    };
    let sim = simulate(7, cfg);
    let options = CheckOptions {
        max_steps_per_key: 100_000,
        time_limit: Some(Duration::from_secs(20)),
    };
    let report = check_linearizability(&sim.ops, &options).expect("valid");
    assert!(report.is_linearizable(), "{report}");
    assert_eq!(report.keys.len(), 20);
}

// --- Random histories.

fn configs() -> [SimConfig; 4] {
    let base = SimConfig {
        clients: 1,
        keys: 3,
        ops: 120,
        sequential: true,
        unknown_percent: 0,
        failed_percent: 5,
        versions: true,
    };
    [
        base,
        SimConfig {
            clients: 4,
            versions: false,
            ..base
        },
        SimConfig {
            clients: 5,
            sequential: false,
            unknown_percent: 8,
            ..base
        },
        SimConfig {
            clients: 6,
            keys: 2,
            sequential: false,
            unknown_percent: 10,
            versions: false,
            ..base
        },
    ]
}

/// Histories of a linearizable register, sequential or concurrent, with and without
/// versions and unknown outcomes, are all accepted.
#[test]
fn random_linearizable_histories_are_accepted() {
    for cfg in configs() {
        for seed in 0..150 {
            let sim = simulate(seed, cfg);
            let report = check_linearizability(&sim.ops, &CheckOptions::default()).expect("valid");
            assert!(report.is_linearizable(), "seed {seed} {cfg:?}:\n{report}");
        }
    }
}

/// Changing one acknowledged read to a value that was not writable at that point (never
/// written, or written only by an operation invoked after the read completed) is
/// rejected, and the checker points at that read or the key it reads.
#[test]
fn random_histories_with_a_wrong_read_are_rejected() {
    let mut mutated = 0;
    for cfg in configs() {
        for seed in 0..150 {
            let sim = simulate(seed, cfg);
            let reads: Vec<usize> = (0..sim.ops.len())
                .filter(|&i| {
                    matches!(sim.ops[i].kind, OpKind::Read { .. })
                        && matches!(sim.ops[i].outcome, Outcome::Ok { .. })
                })
                .collect();
            let Some(&r) = reads.get(seed as usize % reads.len().max(1)) else {
                continue;
            };
            let read = sim.ops[r].clone();
            let future = sim.ops.iter().find(|w| {
                w.key == read.key && read.precedes(w) && w.kind.written_value().is_some()
            });
            let mut wrong = vec![Value::from("never-written")];
            wrong.extend(future.and_then(|w| w.kind.written_value()).cloned());
            for value in wrong {
                let mut ops = sim.ops.clone();
                ops[r].kind = OpKind::Read {
                    observed: Some(value.clone()),
                };
                let report = check_linearizability(&ops, &CheckOptions::default()).expect("valid");
                assert_eq!(
                    report.verdict,
                    Verdict::NotLinearizable,
                    "seed {seed} {cfg:?}: read {} changed to {value} accepted",
                    read.id
                );
                let bad: Vec<&Violation> = report.violations().collect();
                assert_eq!(bad.len(), 1);
                assert_eq!(bad[0].key, read.key);
                mutated += 1;
            }
        }
    }
    assert!(mutated > 500, "only {mutated} mutations tried");
}
