//! The content digest depends on the logical content only: the same content reached
//! through different histories, compactions, restarts or a snapshot install gives the
//! same digest; any single difference in a concept, an edge or a client session gives
//! another. The digest kept by `apply` must equal the one rebuilt from the index on open.

mod common;

use common::*;
use sutra_engine::*;

fn empty() -> Vec<WriteOp> {
    Vec::new()
}

fn del(id: &str) -> WriteOp {
    WriteOp::DeleteConcept {
        id: id.into(),
        expected_version: None,
    }
}

fn del_edge(from: &str, to: &str, relation: &str) -> WriteOp {
    WriteOp::DeleteEdge {
        from: from.into(),
        to: to.into(),
        relation: relation.into(),
    }
}

fn with_attr(mut c: Concept, k: &str, v: &str) -> Concept {
    c.attributes.insert(k.into(), v.into());
    c
}

/// Applies `writes` in order, one version each; returns the digest afterwards.
fn run(e: &Engine, writes: Vec<Vec<WriteOp>>) -> ContentDigest {
    for ops in writes {
        apply(e, ops);
    }
    e.content_digest()
}

/// Drops `e` (its directory stays) and opens the store again.
fn reopen(e: Engine, dir: &std::path::Path) -> Engine {
    drop(e);
    open(dir)
}

/// The final content of [`long_history`]: x (overwritten at version 4), y, and the edge
/// x -> y "r" with weight 2.
fn long_history() -> Vec<Vec<WriteOp>> {
    vec![
        vec![put(concept("x", "first"))],
        vec![put(with_attr(concept("y", "y"), "k", "v"))],
        vec![
            edge("x", "y", "r", 1.0),
            put(concept("q", "q")),
            edge("q", "x", "r", 1.0),
            edge("x", "q", "s", 3.0),
            edge("q", "q", "self", 1.0),
        ],
        vec![put(with_embedding(
            concept("x", "final"),
            [1.0, 2.0, 3.0, 4.0],
        ))],
        vec![edge("x", "y", "r", 2.0), del("q")],
        vec![
            put(concept("z", "z")),
            edge("z", "x", "r", 1.0),
            edge("y", "z", "t", 1.0),
            del_edge("z", "x", "r"),
        ],
        vec![del("z")],
        empty(),
    ]
}

/// The same final content as [`long_history`], written directly at the same versions.
fn short_history() -> Vec<Vec<WriteOp>> {
    vec![
        empty(),
        vec![put(with_attr(concept("y", "y"), "k", "v"))],
        empty(),
        vec![put(with_embedding(
            concept("x", "final"),
            [1.0, 2.0, 3.0, 4.0],
        ))],
        vec![edge("x", "y", "r", 2.0)],
        empty(),
        empty(),
        empty(),
    ]
}

#[test]
fn same_content_through_different_histories_gives_the_same_digest() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (open(da.path()), open(db.path()));
    let mut writes = long_history();
    let tail = writes.split_off(4);
    run(&a, writes);
    a.compact().unwrap();
    let got_a = run(&a, tail);
    let got_b = run(&b, short_history());
    assert_eq!(got_a, got_b);
    assert_eq!((got_a.version, got_a.concepts, got_a.edges), (8, 2, 1));
    assert_eq!(got_a.sessions, 0);
    assert_eq!(got_a.to_hex(), got_b.to_string());

    // Compaction rewrites the file, not the content.
    a.compact().unwrap();
    assert_eq!(a.content_digest(), got_a);

    // Rebuilt from the index on open: equal to the digest apply kept.
    let a = reopen(a, da.path());
    assert_eq!(a.content_digest(), got_a, "rebuilt on open");
    a.checkpoint().unwrap();
    let a = reopen(a, da.path());
    assert_eq!(a.content_digest(), got_a, "rebuilt after a checkpoint");
}

#[test]
fn digest_reflects_the_applied_version_across_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    run(&e, long_history());
    e.checkpoint().unwrap();
    let at_checkpoint = e.content_digest();
    // Applied but not checkpointed: recovery cuts it away (the Raft log re-applies it).
    let later = run(&e, vec![vec![put(concept("late", "x"))], vec![del("x")]]);
    assert_ne!(later.hash, at_checkpoint.hash);
    assert_eq!(later.version, at_checkpoint.version + 2);
    let e = reopen(e, dir.path());
    assert_eq!(e.content_digest(), at_checkpoint);
    // Re-applying the same writes reaches the same digest again.
    let again = run(&e, vec![vec![put(concept("late", "x"))], vec![del("x")]]);
    assert_eq!(again, later);
}

#[test]
fn snapshot_install_gives_the_source_digest() {
    let (src_dir, dst_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let src = open(src_dir.path());
    run(&src, long_history());
    let b = WriteBatch {
        session: Some(SessionKey {
            client_id: "client-1".into(),
            sequence: 7,
        }),
        ops: vec![put(concept("s", "with a session"))],
    };
    apply_batch(&src, &b);
    let snap = src.snapshot().unwrap();
    let want = src.content_digest();
    assert_eq!(want.version, snap.meta().version);
    assert_eq!(want.sessions, 1);

    // The source moves on; the snapshot still holds the old content.
    run(&src, vec![vec![put(concept("after", "snapshot"))]]);
    assert_ne!(src.content_digest(), want);

    let dst = open(dst_dir.path());
    run(&dst, vec![vec![put(concept("old", "content"))]]);
    let mut inst = dst.begin_install().unwrap();
    for (offset, bytes) in snap.chunks(100) {
        inst.write(offset, &bytes).unwrap();
    }
    let staged = inst.finish(snap.meta().size, snap.meta().crc32c).unwrap();
    dst.install_snapshot(staged).unwrap();
    assert_eq!(dst.content_digest(), want);
    let dst = reopen(dst, dst_dir.path());
    assert_eq!(dst.content_digest(), want, "after install and reopen");
}

/// A base content, and variants of it that each differ in exactly one thing. All reach
/// version 4.
fn variant(which: &str) -> Vec<Vec<WriteOp>> {
    let a = |content: &str| with_embedding(concept("a", content), [1.0, 0.0, 0.0, 0.0]);
    let mut w = vec![
        vec![
            put(with_attr(a("alpha"), "k", "v")),
            put(concept("b", "beta")),
        ],
        vec![edge("a", "b", "r", 1.0)],
        empty(),
        empty(),
    ];
    match which {
        "base" => {}
        "content" => w[0][0] = put(with_attr(a("alphb"), "k", "v")),
        "attribute" => w[0][0] = put(with_attr(a("alpha"), "k", "w")),
        "no attribute" => w[0][0] = put(a("alpha")),
        "embedding" => {
            w[0][0] = put(with_attr(
                with_embedding(concept("a", "alpha"), [1.0, 0.0, 0.0, 0.5]),
                "k",
                "v",
            ))
        }
        "no embedding" => w[0][0] = put(with_attr(concept("a", "alpha"), "k", "v")),
        "id" => w[0][1] = put(concept("c", "beta")),
        "version" => w[2] = vec![put(concept("b", "beta"))],
        "extra concept" => w[2] = vec![put(concept("c", ""))],
        "missing edge" => w[1] = empty(),
        "weight" => w[1] = vec![edge("a", "b", "r", 1.5)],
        "relation" => w[1] = vec![edge("a", "b", "s", 1.0)],
        "direction" => w[1] = vec![edge("b", "a", "r", 1.0)],
        "extra edge" => w[2] = vec![edge("b", "b", "r", 1.0)],
        _ => unreachable!("unknown variant {which}"),
    }
    w
}

#[test]
fn any_single_difference_gives_another_digest() {
    let digest_of = |which: &str| {
        let dir = tempfile::tempdir().unwrap();
        let e = open(dir.path());
        let d = run(&e, variant(which));
        assert_eq!(d.version, 4);
        d
    };
    let base = digest_of("base");
    assert_eq!(base, digest_of("base"), "deterministic");
    let mut seen = vec![("base", base.hash)];
    for which in [
        "content",
        "attribute",
        "no attribute",
        "embedding",
        "no embedding",
        "id",
        "version",
        "extra concept",
        "missing edge",
        "weight",
        "relation",
        "direction",
        "extra edge",
    ] {
        let d = digest_of(which);
        for (other, hash) in &seen {
            assert_ne!(d.hash, *hash, "{which} and {other} give the same digest");
        }
        seen.push((which, d.hash));
    }
}

#[test]
fn sessions_count_in_the_digest_and_expire_out_of_it() {
    let cfg = EngineConfig {
        params: StoreParams {
            vector_dimension: DIM,
            session_ttl_ms: 100,
            ..StoreParams::default()
        },
        ..config()
    };
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Engine::open(da.path(), cfg.clone()).unwrap();
    let b = Engine::open(db.path(), cfg.clone()).unwrap();
    let with_session = |client: &str, sequence: u64| WriteBatch {
        session: Some(SessionKey {
            client_id: client.into(),
            sequence,
        }),
        ops: vec![put(concept("x", "same"))],
    };
    // Same data, one write carried a session: the tables differ, so do the digests.
    apply_batch(&a, &with_session("c1", 1));
    apply_batch(&b, &batch(vec![put(concept("x", "same"))]));
    assert_ne!(a.content_digest().hash, b.content_digest().hash);
    assert_eq!(a.content_digest().sessions, 1);

    // Another sequence or another client: another digest.
    let (dc, dd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let c = Engine::open(dc.path(), cfg.clone()).unwrap();
    let d = Engine::open(dd.path(), cfg.clone()).unwrap();
    apply_batch(&c, &with_session("c1", 2));
    apply_batch(&d, &with_session("c2", 1));
    let hashes = [a.content_digest(), c.content_digest(), d.content_digest()].map(|d| d.hash);
    assert!(hashes[0] != hashes[1] && hashes[0] != hashes[2] && hashes[1] != hashes[2]);

    // The table is rebuilt from the checkpoint on open.
    a.checkpoint().unwrap();
    let before = a.content_digest();
    drop(a);
    let a = Engine::open(da.path(), cfg.clone()).unwrap();
    assert_eq!(a.content_digest(), before);

    // Past the TTL (log time is version * 10 ms) the session expires at the next
    // apply, and the digests meet again.
    for _ in 0..15 {
        apply(&a, empty());
        apply(&b, empty());
    }
    assert_eq!(a.content_digest().sessions, 0);
    assert_eq!(a.content_digest(), b.content_digest());
}

/// A cheap deterministic PRNG (xorshift).
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Random writes (overwrites, deletes with edges in and out, self-loops, batches that
/// touch one id twice, rejected writes) with compactions in between: the digest apply
/// keeps always equals the one rebuilt from the index on reopen.
#[test]
fn incremental_digest_equals_the_rebuilt_one_under_random_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = open(dir.path());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..8 {
        for _ in 0..150 {
            let n = 1 + rng.below(4);
            let ops = (0..n)
                .map(|_| {
                    let id = |rng: &mut Rng| format!("k{}", rng.below(12));
                    match rng.below(6) {
                        0 | 1 => put(concept(&id(&mut rng), &"v".repeat(rng.below(40) as usize))),
                        2 => del(&id(&mut rng)),
                        3 | 4 => edge(
                            &id(&mut rng),
                            &id(&mut rng),
                            ["r", "s"][rng.below(2) as usize],
                            rng.below(3) as f32,
                        ),
                        _ => del_edge(&id(&mut rng), &id(&mut rng), "r"),
                    }
                })
                .collect();
            apply(&e, ops);
        }
        if round % 2 == 0 {
            e.compact().unwrap();
        }
        e.checkpoint().unwrap();
        let kept = e.content_digest();
        assert!(
            kept.concepts > 0 && kept.edges > 0,
            "round {round}: {kept:?}"
        );
        e = reopen(e, dir.path());
        assert_eq!(e.content_digest(), kept, "round {round}");
    }
}
