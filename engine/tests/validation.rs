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

/// An embedding of another length can only reach apply from a replica configured with
/// another dimension; rejecting it on this replica alone would make replicas diverge, so
/// apply refuses to apply anything at all.
#[test]
fn apply_of_a_foreign_dimension_is_an_error_not_a_rejection() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    apply(&e, vec![put(concept("keep", "me"))]);
    let before = (all_concepts(&e), e.stats().data_bytes, e.applied());
    let bad = batch(vec![
        put(concept("new", "x")),
        put(Concept {
            embedding: vec![1.0; 7],
            ..concept("bad", "")
        }),
    ]);
    let err = e
        .apply(
            &bad,
            ApplyContext {
                version: 2,
                position: b"p",
                time_ms: 0,
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::Incompatible { .. }), "{err}");
    assert_eq!(
        (all_concepts(&e), e.stats().data_bytes, e.applied()),
        before
    );
}
