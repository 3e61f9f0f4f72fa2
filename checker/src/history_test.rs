//! Tests of the recorder: concurrent recording, JSON round trips, recorder mistakes,
//! counts and the queries a run makes while it goes on.
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

/// Counts by kind and outcome, acknowledgments after an instant, the highest version,
/// and what a reply adds to an operation's line.
#[test]
fn counts_and_queries() {
    let h = History::new();
    let at = |ns| h.instant_of(ns);
    let w1 = h.invoke_at("c1", "a", OpKind::Write { value: "1".into() }, 10);
    h.complete_at(w1, Outcome::Ok { version: Some(5) }, 20)
        .expect("completes");
    let w2 = h.invoke_tagged("c1", "b", OpKind::Write { value: "2".into() }, "seq 2");
    h.complete_with(
        w2,
        Outcome::Ok { version: Some(9) },
        Reply {
            served_by: Some(2),
            leader_id: Some(2),
            deduplicated: true,
        },
    )
    .expect("completes");
    let c = h.invoke_at(
        "c2",
        "a",
        OpKind::Cas {
            expected: None,
            value: "3".into(),
        },
        30,
    );
    h.complete_at(c, Outcome::Mismatch, 40).expect("completes");
    let f = h.invoke_at("c2", "a", OpKind::Delete, 30);
    h.complete_at(f, Outcome::Failed, 40).expect("completes");
    h.invoke_at("c3", "a", OpKind::Write { value: "4".into() }, 50);
    let r = h.invoke("c4", "a", OpKind::Read { observed: None });
    h.complete_read_with(r, Some("1".into()), Some(5), Reply::default())
        .expect("completes");
    let lost = h.invoke("c4", "a", OpKind::Read { observed: None });
    h.complete(lost, Outcome::Unknown).expect("completes");

    assert_eq!(
        h.counts(),
        Counts {
            acknowledged: 2,
            deduplicated: 1,
            mismatched: 1,
            failed: 1,
            unknown: 1,
            pending: 1,
            reads: 1,
            reads_unanswered: 1,
        }
    );
    assert_eq!(h.counts(), Counts::of(&h.ops()));
    assert_eq!(h.max_acked_version(), Some(9));
    assert_eq!(h.value_at("a", 5), Some("1".into()));
    assert_eq!(h.value_at("b", 9), Some("2".into()));
    assert_eq!((h.value_at("a", 9), h.value_at("a", 6)), (None, None));
    assert_eq!(h.acks_after(at(15)), 2);
    assert_eq!(h.acks_after(at(20)), 1, "strictly after");
    let first = h
        .first_ack_after(at(0), |op| op.reply.served_by != Some(2))
        .expect("w1");
    assert_eq!(first.id, w1);
    assert_eq!(h.time_of(at(12_345)), 12_345);
    let line = h.ops()[1].to_string();
    assert!(
        line.ends_with("ok v9 deduplicated by node 2 (leader 2) [seq 2]"),
        "{line}"
    );
    let json = serde_json::to_string(&h.ops()).expect("serializes");
    let back: Vec<Op> = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, h.ops());
}
