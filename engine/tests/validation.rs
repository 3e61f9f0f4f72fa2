//! Every validation error names its field, and a rejected write changes nothing.

mod common;

use std::collections::BTreeMap;

use common::*;
use sutra_engine::*;

fn field_of(b: &WriteBatch) -> String {
    b.validate(&Limits::default(), DIM, false)
        .expect_err("invalid")
        .field
}

#[test]
fn every_invalid_field_is_named() {
    let ok = concept("id", "content");
    let cases: Vec<(WriteOp, &str)> = vec![
        (put(concept("", "x")), "ops[0].put_concept.concept.id"),
        (
            put(concept(&"x".repeat(257), "x")),
            "ops[0].put_concept.concept.id",
        ),
        (put(concept("a\0b", "x")), "ops[0].put_concept.concept.id"),
        (
            put(Concept {
                content: vec![0; (1 << 20) + 1],
                ..ok.clone()
            }),
            "ops[0].put_concept.concept.content",
        ),
        (
            put(Concept {
                embedding: vec![1.0; 3],
                ..ok.clone()
            }),
            "ops[0].put_concept.concept.embedding",
        ),
        (
            put(Concept {
                embedding: vec![1.0, f32::NAN, 0.0, 0.0],
                ..ok.clone()
            }),
            "ops[0].put_concept.concept.embedding[1]",
        ),
        (
            put(Concept {
                embedding: vec![1.0, 0.0, f32::INFINITY, 0.0],
                ..ok.clone()
            }),
            "ops[0].put_concept.concept.embedding[2]",
        ),
        (
            put(Concept {
                attributes: (0..65).map(|i| (format!("k{i}"), String::new())).collect(),
                ..ok.clone()
            }),
            "ops[0].put_concept.concept.attributes",
        ),
        (
            put(Concept {
                attributes: BTreeMap::from([(String::new(), "v".into())]),
                ..ok.clone()
            }),
            "ops[0].put_concept.concept.attributes[\"\"].key",
        ),
        (
            put(Concept {
                attributes: BTreeMap::from([("k".into(), "v".repeat(4097))]),
                ..ok.clone()
            }),
            "ops[0].put_concept.concept.attributes[\"k\"].value",
        ),
        (
            WriteOp::DeleteConcept {
                id: String::new(),
                expected_version: None,
            },
            "ops[0].delete_concept.id",
        ),
        (edge("", "b", "r", 1.0), "ops[0].put_edge.edge.from"),
        (
            edge("a", &"t".repeat(300), "r", 1.0),
            "ops[0].put_edge.edge.to",
        ),
        (edge("a", "b", "", 1.0), "ops[0].put_edge.edge.relation"),
        (
            edge("a", "b", &"r".repeat(129), 1.0),
            "ops[0].put_edge.edge.relation",
        ),
        (edge("a", "b", "r", f32::NAN), "ops[0].put_edge.edge.weight"),
        (
            WriteOp::DeleteEdge {
                from: "a".into(),
                to: "b".into(),
                relation: String::new(),
            },
            "ops[0].delete_edge.relation",
        ),
        (
            WriteOp::CheckVersion {
                id: String::new(),
                expected_version: 1,
            },
            "ops[0].check.id",
        ),
    ];
    for (op, field) in cases {
        assert_eq!(field_of(&batch(vec![op.clone()])), field, "{op:?}");
    }
    // Position in the batch is part of the name.
    assert_eq!(
        field_of(&batch(vec![put(ok.clone()), put(concept("", ""))])),
        "ops[1].put_concept.concept.id"
    );
    assert_eq!(field_of(&batch(vec![])), "ops");
    assert_eq!(field_of(&batch(vec![put(ok.clone()); 1001])), "ops");
    let session = |client_id: &str, sequence| WriteBatch {
        session: Some(SessionKey {
            client_id: client_id.into(),
            sequence,
        }),
        ops: vec![put(ok.clone())],
    };
    assert_eq!(field_of(&session("", 1)), "client_id");
    assert_eq!(field_of(&session(&"c".repeat(257), 1)), "client_id");
    assert_eq!(field_of(&session("c", 0)), "sequence");
    assert!(
        session("c", 1)
            .validate(&Limits::default(), DIM, false)
            .is_ok()
    );
}

#[test]
fn apply_rejects_what_breaks_the_format_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    apply(&e, vec![put(concept("keep", "me"))]);
    let before = (all_concepts(&e), e.stats().data_bytes);
    let big = Concept {
        content: vec![0; (64 << 20) + 1],
        ..concept("big", "")
    };
    let r = apply(&e, vec![put(concept("new", "x")), put(big)]);
    let WriteOutcome::Rejected(Rejection::Invalid(v)) = r else {
        panic!("{r:?}")
    };
    assert_eq!(v.field, "ops[1].put_concept.concept.content");
    assert_eq!((all_concepts(&e), e.stats().data_bytes), before);
}

/// An embedding of another length than the store's dimension can reach apply only if
/// the proposer skipped its check. Apply must not fail on content: an error would stop
/// the replica, and a restart would replay the same entry and stop it again (on two
/// nodes of three, quorum lost). It is a deterministic rejection naming the field, so
/// every replica answers the same, nothing changes and the position advances.
#[test]
fn apply_of_a_foreign_dimension_is_a_rejection_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    apply(&e, vec![put(concept("keep", "me"))]);
    let before = (all_concepts(&e), e.stats().data_bytes);
    let bad = WriteBatch {
        session: Some(SessionKey {
            client_id: "c".into(),
            sequence: 1,
        }),
        ops: vec![
            put(concept("new", "x")),
            put(Concept {
                embedding: vec![1.0; 7],
                ..concept("bad", "")
            }),
        ],
    };
    let r = e
        .apply(
            &bad,
            ApplyContext {
                version: 2,
                position: b"p",
                time_ms: 0,
            },
        )
        .expect("content never makes apply fail");
    let WriteOutcome::Rejected(Rejection::Invalid(v)) = &r.outcome else {
        panic!("{r:?}")
    };
    assert_eq!(v.field, "ops[1].put_concept.concept.embedding");
    assert_eq!((all_concepts(&e), e.stats().data_bytes), before);
    assert_eq!(e.applied().0, 2, "the position advances past the entry");
    // A retry gets the same answer from the session table.
    let again = e
        .apply(
            &bad,
            ApplyContext {
                version: 3,
                position: b"q",
                time_ms: 0,
            },
        )
        .unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.outcome, r.outcome);
}

/// A session key that breaks the hard limits is rejected without entering the session
/// table (which could not encode it), so a later checkpoint still works.
#[test]
fn apply_rejects_a_malformed_session_key_without_remembering_it() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    for (client_id, sequence, field) in [
        ("x".repeat(70_000), 1, "client_id"),
        (String::new(), 1, "client_id"),
        ("c".to_string(), 0, "sequence"),
    ] {
        let b = WriteBatch {
            session: Some(SessionKey {
                client_id,
                sequence,
            }),
            ops: vec![put(concept("a", "x"))],
        };
        let r = apply_batch(&e, &b);
        let WriteOutcome::Rejected(Rejection::Invalid(v)) = &r.outcome else {
            panic!("{r:?}")
        };
        assert_eq!(v.field, field);
    }
    assert_eq!(e.stats().sessions, 0);
    assert!(e.get("a").unwrap().is_none());
    e.checkpoint().unwrap();
}
