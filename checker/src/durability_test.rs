//! Tests of the durability check: what must pass, what must be counted, and random
//! runs of a linearizable register.

use super::*;
use crate::test_support::{Builder, OK, SimConfig, okv, simulate};

fn stored(value: &str, version: u64) -> Stored {
    Stored {
        value: value.into(),
        version,
    }
}

fn final_k(s: Option<Stored>) -> FinalState {
    s.into_iter().map(|s| ("k".to_owned(), s)).collect()
}

fn check(b: &Builder, s: Option<Stored>) -> DurabilityReport {
    check_durability(&b.ops(), &final_k(s)).expect("well-formed history")
}

/// The last acknowledged write is stored; the earlier one is overwritten by it.
#[test]
fn acknowledged_writes_visible_or_superseded() {
    let b = Builder::new();
    b.write("c1", "a", (0, 10), okv(3));
    b.write("c1", "b", (20, 30), okv(7));
    let r = check(&b, Some(stored("b", 7)));
    assert!(r.is_ok(), "{r}");
    assert_eq!((r.acknowledged, r.lost), (2, 0));
}

/// Two overlapping writes: either may be the one stored.
#[test]
fn concurrent_writes_either_stored() {
    for last in ["a", "b"] {
        let b = Builder::new();
        b.write("c1", "a", (0, 100), OK);
        b.write("c2", "b", (10, 110), OK);
        let r = check(&b, Some(stored(last, 9)));
        assert!(r.is_ok(), "{last}: {r}");
    }
}

/// An acknowledged write overwritten by a write that completed before it started is
/// lost; so is one that is simply absent with no delete to explain it.
#[test]
fn lost_acknowledged_write() {
    let b = Builder::new();
    b.write("c1", "a", (0, 10), OK);
    let w = b.write("c1", "b", (20, 30), OK);
    let r = check(&b, Some(stored("a", 1)));
    assert_eq!((r.acknowledged, r.lost), (2, 1), "{r}");
    assert!(matches!(&r.issues[0], DurabilityIssue::Lost { op, .. } if op.id == w));
    assert!(r.to_string().contains("lost: #1"), "{r}");

    let r = check(&b, None);
    assert_eq!(r.lost, 2, "{r}");
}

/// By version: anything stored at or below an acknowledged write's version means the
/// write is gone, whatever the times say.
#[test]
fn lost_by_version() {
    let b = Builder::new();
    b.write("c1", "a", (0, 100), okv(5));
    b.write("c2", "b", (10, 110), okv(4));
    let r = check(&b, Some(stored("b", 4)));
    assert_eq!(r.lost, 1, "{r}");
    let r = check(&b, Some(stored("a", 5)));
    assert_eq!(r.lost, 0, "{r}");
}

/// An absent key is explained by any delete that may have come after the write,
/// including one with an unknown outcome; a failed delete explains nothing.
#[test]
fn absent_needs_a_later_delete() {
    for (outcome, lost) in [(OK, 0), (Outcome::Unknown, 0), (Outcome::Failed, 1)] {
        let b = Builder::new();
        b.write("c1", "a", (0, 10), OK);
        b.delete("c2", (20, 30), outcome);
        let r = check(&b, None);
        assert_eq!(r.lost, lost, "{outcome:?}: {r}");
    }
}

/// An acknowledged delete whose key holds a value written before it is lost.
#[test]
fn lost_delete() {
    let b = Builder::new();
    b.write("c1", "a", (0, 10), OK);
    b.delete("c1", (20, 30), OK);
    let r = check(&b, Some(stored("a", 1)));
    assert_eq!((r.acknowledged, r.lost), (2, 1), "{r}");
    assert!(check(&b, None).is_ok());
}

/// A value seen at two versions was applied twice: by the final state against the
/// write's version, or by two reads.
#[test]
fn duplicated_write() {
    let b = Builder::new();
    b.write("c1", "a", (0, 10), okv(5));
    let r = check(&b, Some(stored("a", 9)));
    assert_eq!(r.duplicated, 1, "{r}");
    assert!(matches!(
        &r.issues[0],
        DurabilityIssue::Duplicated { versions, writer: Some(_), .. } if versions.len() == 2
    ));

    let b = Builder::new();
    b.write_unknown("c1", "a", 0);
    b.read_v("c2", Some("a"), (10, 20), Some(5));
    b.read_v("c2", Some("a"), (30, 40), Some(7));
    let r = check(&b, Some(stored("a", 7)));
    assert_eq!(r.duplicated, 1, "{r}");
    assert_eq!(r.unknown_applied, 1, "{r}");
}

/// A failed write is visible in the final state or to a read.
#[test]
fn failed_write_visible() {
    let b = Builder::new();
    b.write("c1", "a", (0, 10), OK);
    b.write("c1", "b", (20, 30), Outcome::Failed);
    let r = check(&b, Some(stored("b", 2)));
    assert_eq!(r.failed_visible, 1, "{r}");
    assert!(!r.is_ok());

    let b = Builder::new();
    b.write("c1", "b", (0, 10), Outcome::Failed);
    let read = b.read("c2", Some("b"), (20, 30));
    let r = check(&b, None);
    assert!(
        matches!(
            &r.issues[..],
            [DurabilityIssue::FailedVisible { in_final_state: false, seen_by, .. }] if seen_by == &[read]
        ),
        "{r}"
    );

    let b = Builder::new();
    b.write("c1", "b", (0, 10), Outcome::Failed);
    assert!(check(&b, None).is_ok());
}

/// Unknown writes are counted as applied when their value was seen anywhere (stored,
/// read, or expected by a successful compare-and-set) and as absent otherwise.
#[test]
fn unknown_writes_counted() {
    let b = Builder::new();
    b.write_unknown("c1", "a", 0);
    b.write_unknown("c2", "b", 0);
    b.write_unknown("c3", "c", 0);
    b.write_unknown("c4", "d", 0);
    b.read("c5", Some("a"), (10, 20));
    b.cas("c5", Some("b"), "e", (30, 40), OK);
    let r = check(&b, Some(stored("c", 9)));
    assert_eq!((r.unknown_applied, r.unknown_absent), (3, 1), "{r}");
    assert!(r.is_ok(), "{r}");
}

/// A stored value no operation wrote is reported.
#[test]
fn unexplained_value() {
    let b = Builder::new();
    b.write("c1", "a", (0, 10), OK);
    let r = check(&b, Some(stored("garbage", 4)));
    assert_eq!((r.unexplained, r.lost), (1, 0), "{r}");
    assert!(!r.is_ok());
    let json = serde_json::to_value(&r).expect("serializes");
    assert_eq!(json["issues"][0]["issue"], "unexplained");
}

/// A stored key no operation touched, and a read of a value nobody wrote, are
/// unexplained.
#[test]
fn untouched_key_and_unwritten_read() {
    let b = Builder::new();
    b.write("c1", "a", (0, 10), OK);
    let r = b.read("c2", Some("zzz"), (20, 30));
    let mut state = final_k(Some(stored("a", 1)));
    state.insert("other".into(), stored("x", 2));
    let report = check_durability(&b.ops(), &state).expect("valid");
    assert_eq!(report.unexplained, 2, "{report}");
    assert!(
        report
            .issues
            .iter()
            .any(|i| matches!(i, DurabilityIssue::Unexplained { key, .. } if key == "other"))
    );
    assert!(
        report
            .issues
            .iter()
            .any(|i| matches!(i, DurabilityIssue::UnwrittenRead { op } if op.id == r))
    );
    assert!(
        report.to_string().contains("no operation wrote"),
        "{report}"
    );
}

/// With one log entry per operation, two things seen at one version mean one of them
/// was lost, even when a later write hides it from the per-key checks.
#[test]
fn reused_version_is_a_loss() {
    let b = Builder::new();
    b.op_on(
        "k",
        "c1",
        OpKind::Write { value: "a".into() },
        (0, 10),
        okv(100),
    );
    b.op_on(
        "j",
        "c2",
        OpKind::Write { value: "x".into() },
        (20, 30),
        okv(100),
    );
    b.op_on(
        "k",
        "c1",
        OpKind::Write { value: "b".into() },
        (40, 50),
        okv(130),
    );
    let state: FinalState = [
        ("k".to_owned(), stored("b", 130)),
        ("j".to_owned(), stored("x", 100)),
    ]
    .into_iter()
    .collect();
    let plain = check_durability(&b.ops(), &state).expect("valid");
    assert!(plain.is_ok(), "batches may share a version: {plain}");
    let options = DurabilityOptions {
        versions_unique: true,
    };
    let r = check_durability_with(&b.ops(), &state, &options).expect("valid");
    assert_eq!(r.lost, 1, "{r}");
    assert!(r.to_string().contains("version 100 reused"), "{r}");

    // Stored at an acknowledged version, but another value.
    let b = Builder::new();
    b.write("c1", "a", (0, 10), okv(100));
    let r =
        check_durability_with(&b.ops(), &final_k(Some(stored("z", 100))), &options).expect("valid");
    assert!(r.lost >= 1, "{r}");
}

/// The final state of a simulated linearizable register passes, and unknown writes are
/// all counted one way or the other.
#[test]
fn random_runs_pass() {
    for versions in [true, false] {
        for seed in 0..200 {
            let sim = simulate(seed, SimConfig::concurrent(versions));
            let r = check_durability(&sim.ops, &sim.final_state).expect("valid");
            assert!(r.is_ok(), "seed {seed}:\n{r}");
            // The simulator gives every operation its own version.
            let options = DurabilityOptions {
                versions_unique: true,
            };
            let strict =
                check_durability_with(&sim.ops, &sim.final_state, &options).expect("valid");
            assert!(strict.is_ok(), "seed {seed}:\n{strict}");
            let unknown_writes = sim
                .ops
                .iter()
                .filter(|op| op.outcome == Outcome::Unknown && op.kind.written_value().is_some())
                .count();
            assert_eq!(r.unknown_applied + r.unknown_absent, unknown_writes);
        }
    }
}

/// Dropping the last acknowledged write of a key from a simulated final state is
/// reported as lost when no other operation could have followed it.
#[test]
fn random_runs_with_a_dropped_write_fail() {
    let mut caught = 0;
    for seed in 0..200 {
        let cfg = SimConfig {
            clients: 4,
            keys: 2,
            ops: 60,
            sequential: true,
            unknown_percent: 0,
            failed_percent: 5,
            versions: seed % 2 == 0,
        };
        let sim = simulate(seed, cfg);
        let mut state = sim.final_state.clone();
        let Some((key, _)) = state.pop_first() else {
            continue;
        };
        let r = check_durability(&sim.ops, &state).expect("valid");
        assert!(
            r.lost >= 1,
            "seed {seed}: dropping {key} went unnoticed:\n{r}"
        );
        caught += 1;
    }
    assert!(caught > 100);
}
