//! Behaviour of the engine's write and read API: compare-and-set, batch atomicity,
//! exactly-once sessions, edges, pagination and k-NN.

mod common;

use common::*;
use sutra_engine::*;

fn version(o: &WriteOutcome) -> u64 {
    match o {
        WriteOutcome::Applied { version, .. } => *version,
        WriteOutcome::Rejected(r) => panic!("rejected: {r}"),
    }
}

#[test]
fn compare_and_set_on_versions() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let create = |ev| WriteOp::PutConcept {
        concept: concept("a", "1"),
        expected_version: ev,
    };
    let v1 = version(&apply(&e, vec![create(Some(0))]));
    assert_eq!(e.version_of("a"), Some(v1));
    // Must-not-exist fails now that it exists.
    let r = apply(&e, vec![create(Some(0))]);
    assert_eq!(
        r,
        WriteOutcome::Rejected(Rejection::VersionMismatch {
            op_index: 0,
            id: "a".into(),
            expected: 0,
            actual: v1
        })
    );
    // Stale version fails, current succeeds.
    assert!(matches!(
        apply(&e, vec![create(Some(v1 + 100))]),
        WriteOutcome::Rejected(_)
    ));
    let v2 = version(&apply(&e, vec![create(Some(v1))]));
    assert!(v2 > v1);
    assert_eq!(e.get("a").unwrap().unwrap().version, v2);
    // Conditional delete.
    let del = |ev| WriteOp::DeleteConcept {
        id: "a".into(),
        expected_version: ev,
    };
    assert!(matches!(
        apply(&e, vec![del(Some(v1))]),
        WriteOutcome::Rejected(_)
    ));
    assert!(e.get("a").unwrap().is_some());
    apply(&e, vec![del(Some(v2))]);
    assert!(e.get("a").unwrap().is_none());
}

#[test]
fn batch_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    apply(&e, vec![put(concept("a", "old"))]);
    let before = e.stats();
    let r = apply(
        &e,
        vec![
            put(concept("a", "new")),
            put(concept("b", "new")),
            edge("a", "b", "r", 1.0),
            WriteOp::CheckVersion {
                id: "zzz".into(),
                expected_version: 7,
            },
        ],
    );
    assert!(
        matches!(
            r,
            WriteOutcome::Rejected(Rejection::VersionMismatch { op_index: 3, .. })
        ),
        "{r:?}"
    );
    assert_eq!(e.get("a").unwrap().unwrap().content, b"old");
    assert!(e.get("b").unwrap().is_none());
    let after = e.stats();
    assert_eq!(
        (after.concepts, after.edges, after.data_bytes),
        (before.concepts, before.edges, before.data_bytes)
    );
    // Later ops see earlier ones in the same batch.
    let r = apply(
        &e,
        vec![
            put(concept("b", "x")),
            edge("a", "b", "r", 1.0),
            WriteOp::DeleteEdge {
                from: "a".into(),
                to: "b".into(),
                relation: "r".into(),
            },
        ],
    );
    let WriteOutcome::Applied { results, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        results.iter().map(|r| r.existed).collect::<Vec<_>>(),
        vec![false, false, true]
    );
    // An edge to a missing concept is refused.
    let r = apply(&e, vec![edge("a", "nope", "r", 1.0)]);
    assert_eq!(
        r,
        WriteOutcome::Rejected(Rejection::MissingConcept {
            op_index: 0,
            id: "nope".into()
        })
    );
}

#[test]
fn sessions_make_writes_exactly_once_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let write = |seq, id: &str| WriteBatch {
        session: Some(SessionKey {
            client_id: "client-1".into(),
            sequence: seq,
        }),
        ops: vec![put(concept(id, "v"))],
    };
    let first = apply_batch(&e, &write(1, "a"));
    assert!(!first.deduplicated);
    let retry = apply_batch(&e, &write(1, "a"));
    assert!(retry.deduplicated);
    assert_eq!(
        retry.outcome, first.outcome,
        "a retry gets the original outcome"
    );
    assert_eq!(e.stats().writes_applied, 1);
    // A rejected write is remembered too: its retry is rejected the same way, even
    // though it would now succeed.
    let cas = WriteBatch {
        session: Some(SessionKey {
            client_id: "client-1".into(),
            sequence: 2,
        }),
        ops: vec![WriteOp::PutConcept {
            concept: concept("b", "v"),
            expected_version: Some(5),
        }],
    };
    let rejected = apply_batch(&e, &cas).outcome;
    assert!(matches!(
        rejected,
        WriteOutcome::Rejected(Rejection::VersionMismatch { .. })
    ));
    e.checkpoint().unwrap();
    drop(e);
    let e = open(dir.path());
    let again = apply_batch(&e, &cas);
    assert!(again.deduplicated);
    assert_eq!(again.outcome, rejected);
    // An older sequence is refused outright.
    let old = apply_batch(&e, &write(1, "a"));
    assert!(
        matches!(
            old.outcome,
            WriteOutcome::Rejected(Rejection::StaleSequence { last: 2, .. })
        ),
        "{old:?}"
    );
    // Another client is independent.
    let other = WriteBatch {
        session: Some(SessionKey {
            client_id: "client-2".into(),
            sequence: 1,
        }),
        ..write(1, "c")
    };
    assert!(!apply_batch(&e, &other).deduplicated);
}

#[test]
fn sessions_expire_by_log_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.params.session_ttl_ms = 1000;
    let e = Engine::open(dir.path(), cfg).unwrap();
    let b = WriteBatch {
        session: Some(SessionKey {
            client_id: "c".into(),
            sequence: 1,
        }),
        ops: vec![put(concept("a", "v"))],
    };
    let at = |version: u64, time_ms| {
        e.apply(
            &b,
            ApplyContext {
                version,
                position: b"",
                time_ms,
            },
        )
        .unwrap()
    };
    assert!(!at(1, 0).deduplicated);
    assert!(at(2, 1000).deduplicated);
    assert_eq!(e.stats().sessions, 1);
    // Past the TTL the session is forgotten and the same sequence is new again.
    assert!(!at(3, 2001).deduplicated);
}

/// The exactly-once table is shared fairly between certificate owners: a writer with
/// ten times more client ids than the table holds cannot make another owner's retries
/// apply twice. The share is a store parameter: kept in the data file across reopening
/// (whatever the configuration says later) and carried by snapshots.
#[test]
fn sessions_are_shared_fairly_between_owners() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.params.max_sessions = 32;
    cfg.params.max_sessions_per_owner = 2;
    let e = Engine::open(dir.path(), cfg.clone()).unwrap();
    let write = |client: &str, id: &str| WriteBatch {
        session: Some(SessionKey {
            client_id: client.into(),
            sequence: 1,
        }),
        ops: vec![put(concept(id, "v"))],
    };
    for i in 0..2 {
        assert!(!apply_batch(&e, &write(&format!("alice/{i}"), "a")).deduplicated);
    }
    for i in 0..320 {
        apply_batch(&e, &write(&format!("mallory/{i}"), "m"));
    }
    assert_eq!(e.stats().sessions, 4, "mallory is held to its share");
    let retry_alice = |e: &Engine| {
        (0..2)
            .map(|i| apply_batch(e, &write(&format!("alice/{i}"), "a")).deduplicated)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        retry_alice(&e),
        [true, true],
        "alice's retries are answered"
    );

    tracing::info!("--- the share is the store's, also after reopening with another");
    e.checkpoint().unwrap();
    drop(e);
    cfg.params.max_sessions_per_owner = 30;
    let e = Engine::open(dir.path(), cfg.clone()).unwrap();
    assert_eq!(e.params().max_sessions_per_owner, 2);
    assert_eq!(retry_alice(&e), [true, true]);

    tracing::info!("--- and it travels with a snapshot");
    let snap = e.snapshot().unwrap();
    let dst_dir = tempfile::tempdir().unwrap();
    let dst = Engine::open(dst_dir.path(), cfg).unwrap();
    let mut inst = dst.begin_install().unwrap();
    for (offset, bytes) in snap.chunks(4096) {
        inst.write(offset, &bytes).unwrap();
    }
    let staged = inst.finish(snap.meta().size, snap.meta().crc32c).unwrap();
    dst.install_snapshot(staged).unwrap();
    assert_eq!(dst.params(), e.params());
}

#[test]
fn deleting_a_concept_deletes_its_edges() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    apply(
        &e,
        vec![
            put(concept("a", "")),
            put(concept("b", "")),
            put(concept("c", "")),
        ],
    );
    apply(
        &e,
        vec![
            edge("a", "b", "r", 1.0),
            edge("b", "c", "r", 2.0),
            edge("c", "b", "s", 3.0),
            edge("b", "b", "self", 4.0),
        ],
    );
    assert_eq!(e.stats().edges, 4);
    apply(
        &e,
        vec![WriteOp::DeleteConcept {
            id: "b".into(),
            expected_version: None,
        }],
    );
    assert_eq!(e.stats().edges, 0);
    for id in ["a", "c"] {
        assert!(
            e.neighbors(id, Direction::Both, None, 10, None)
                .unwrap()
                .neighbors
                .is_empty()
        );
    }
    // Re-creating b does not resurrect its edges, also after reopen.
    apply(&e, vec![put(concept("b", ""))]);
    e.checkpoint().unwrap();
    drop(e);
    let e = open(dir.path());
    assert!(
        e.neighbors("b", Direction::Both, None, 10, None)
            .unwrap()
            .neighbors
            .is_empty()
    );
    assert_eq!(e.stats().edges, 0);
}

#[test]
fn neighbors_paginate_in_both_directions_with_relation_filter() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let ids: Vec<String> = (0..7).map(|i| format!("n{i}")).collect();
    let mut ops = vec![put(concept("hub", ""))];
    ops.extend(ids.iter().map(|id| put(concept(id, ""))));
    apply(&e, ops);
    let mut ops = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        ops.push(edge(
            "hub",
            id,
            if i % 2 == 0 { "even" } else { "odd" },
            i as f32,
        ));
        ops.push(edge(id, "hub", "back", -(i as f32)));
    }
    apply(&e, ops);
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let page = e
            .neighbors("hub", Direction::Both, None, 3, token.as_deref())
            .unwrap();
        assert!(page.neighbors.len() <= 3);
        all.extend(page.neighbors);
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(all.len(), 14);
    assert!(all[..7].iter().all(|n| n.direction == Direction::Out));
    assert!(
        all[7..]
            .iter()
            .all(|n| n.direction == Direction::In && n.relation == "back")
    );
    let n3 = all
        .iter()
        .find(|n| n.id == "n3" && n.direction == Direction::In)
        .unwrap();
    assert_eq!(n3.weight, -3.0);
    let odd = e
        .neighbors("hub", Direction::Out, Some("odd"), 100, None)
        .unwrap();
    assert_eq!(
        odd.neighbors
            .iter()
            .map(|n| n.id.as_str())
            .collect::<Vec<_>>(),
        vec!["n1", "n3", "n5"]
    );
    assert!(matches!(
        e.neighbors("hub", Direction::Out, None, 5, Some("garbage")),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn scans_by_prefix_and_range_paginate() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let ops = [
        "user/1", "user/2", "user/3", "user/4", "usex", "item/1", "zz",
    ]
    .iter()
    .map(|id| put(concept(id, id)))
    .collect();
    apply(&e, ops);
    let mut got = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = e
            .scan(
                &ScanRange::Prefix("user/".into()),
                2,
                token.as_deref(),
                false,
            )
            .unwrap();
        got.extend(page.concepts.iter().map(|c| c.id.clone()));
        assert!(page.concepts.iter().all(|c| c.content == c.id.as_bytes()));
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(got, vec!["user/1", "user/2", "user/3", "user/4"]);
    let range = ScanRange::Range {
        start: "item/".into(),
        end: Some("user/3".into()),
    };
    let page = e.scan(&range, 100, None, true).unwrap();
    assert_eq!(
        page.concepts
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>(),
        vec!["item/1", "user/1", "user/2"]
    );
    assert!(
        page.concepts
            .iter()
            .all(|c| c.content.is_empty() && c.version > 0),
        "keys_only"
    );
    let empty = ScanRange::Range {
        start: "z".into(),
        end: Some("a".into()),
    };
    assert!(e.scan(&empty, 10, None, false).unwrap().concepts.is_empty());
}

#[test]
fn knn_matches_brute_force_for_every_metric() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let mut vectors = Vec::new();
    let mut ops = Vec::new();
    for i in 0..200u32 {
        let v = [
            ((i * 37) % 11) as f32 - 5.0,
            ((i * 13) % 7) as f32 - 3.0,
            (i % 5) as f32,
            ((i * 7) % 3) as f32 + 0.5,
        ];
        vectors.push((format!("v{i:03}"), v));
        ops.push(put(with_embedding(concept(&format!("v{i:03}"), ""), v)));
    }
    ops.push(put(concept("no-embedding", "")));
    apply(&e, ops);
    let q = [1.0f32, -2.0, 0.5, 3.0];
    let qn = q.iter().map(|x| x * x).sum::<f32>().sqrt();
    for metric in [Metric::Cosine, Metric::Dot, Metric::L2] {
        let mut want: Vec<(String, f32)> = vectors
            .iter()
            .map(|(id, v)| {
                let dot: f32 = q.iter().zip(v).map(|(a, b)| a * b).sum();
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                let l2 = q
                    .iter()
                    .zip(v)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f32>()
                    .sqrt();
                let score = match metric {
                    Metric::Cosine => {
                        if n == 0.0 {
                            0.0
                        } else {
                            dot / (qn * n)
                        }
                    }
                    Metric::Dot => dot,
                    Metric::L2 => l2,
                };
                (id.clone(), score)
            })
            .collect();
        want.sort_by(|a, b| {
            let ord = if metric == Metric::L2 {
                a.1.total_cmp(&b.1)
            } else {
                b.1.total_cmp(&a.1)
            };
            ord.then_with(|| a.0.cmp(&b.0))
        });
        let got = e.search(&q, 10, metric).unwrap();
        assert_eq!(got.len(), 10);
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g.score - w.1).abs() < 1e-4,
                "{metric:?}: got {g:?}, want {w:?}"
            );
        }
        // Ids agree wherever scores are not tied.
        assert_eq!(got[0].id, want[0].0, "{metric:?}");
    }
    assert!(
        matches!(e.search(&[1.0, 2.0], 3, Metric::Dot), Err(Error::InvalidArgument(ref v)) if v.field == "vector")
    );
    assert!(matches!(
        e.search(&[0.0; 4], 3, Metric::Cosine),
        Err(Error::InvalidArgument(_))
    ));
    assert!(
        matches!(e.search(&q, 0, Metric::Dot), Err(Error::InvalidArgument(ref v)) if v.field == "k")
    );
}

#[test]
fn apply_refuses_out_of_order_versions() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    apply(&e, vec![put(concept("a", ""))]);
    let err = e
        .apply(
            &batch(vec![put(concept("b", ""))]),
            ApplyContext {
                version: 1,
                position: b"",
                time_ms: 0,
            },
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::OutOfOrder {
                version: 1,
                last: 1
            }
        ),
        "{err}"
    );
    assert!(e.get("b").unwrap().is_none());
}

#[test]
fn applied_position_survives_checkpoint_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    apply(&e, vec![put(concept("a", ""))]);
    apply(&e, vec![]);
    assert_eq!(e.applied(), (2, b"pos-2".to_vec()));
    let durable = e.checkpoint().unwrap();
    assert_eq!(
        (durable.version, durable.position.as_slice()),
        (2, &b"pos-2"[..])
    );
    apply(&e, vec![put(concept("b", ""))]);
    drop(e);
    let e = open(dir.path());
    assert_eq!(
        e.applied(),
        (2, b"pos-2".to_vec()),
        "position of the checkpoint, not of later writes"
    );
}

/// A store made with [`StoreParams::UNSET`] takes the cluster's parameters once, before it
/// holds any record, and keeps them across a reopen (a node opened with no parameters of
/// its own accepts them); adopting the same ones again changes nothing, and a store that
/// already has others refuses new ones, naming both.
///
/// Why: the cluster's parameters are cluster state, fixed at bootstrap; a store must
/// never change them under records written with other ones.
#[test]
fn a_store_adopts_the_clusters_parameters_once() {
    let dir = tempfile::tempdir().unwrap();
    let unset = EngineConfig {
        params: StoreParams::UNSET,
        ..config()
    };
    let e = Engine::open(dir.path(), unset.clone()).unwrap();
    assert!(e.params().is_unset());
    let cluster = config().params;
    e.adopt_params(cluster).unwrap();
    e.adopt_params(cluster).unwrap();
    assert_eq!(e.params(), cluster);
    apply(
        &e,
        vec![put(with_embedding(concept("a", "1"), [0.5; DIM as usize]))],
    );
    e.checkpoint().unwrap();
    drop(e);
    let e = Engine::open(dir.path(), unset).unwrap();
    assert_eq!(
        e.params(),
        cluster,
        "the adopted parameters are in the data file"
    );
    let other = StoreParams {
        vector_dimension: DIM + 1,
        ..cluster
    };
    let err = e.adopt_params(other).unwrap_err();
    assert!(matches!(err, Error::Incompatible { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("vector dimension {DIM}")),
        "{err}"
    );
    assert_eq!(e.params(), cluster);
}
