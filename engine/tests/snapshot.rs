//! Snapshots stream while writes go on and install atomically into a fresh store.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use sutra_engine::*;

fn fill(e: &Engine, n: usize) {
    for i in 0..n {
        let c = with_embedding(
            concept(&format!("c{i:04}"), &"payload".repeat(i % 9)),
            [i as f32, 0.5, -1.0, 2.0],
        );
        apply(e, vec![put(c)]);
        if i > 0 {
            apply(
                e,
                vec![edge(
                    &format!("c{i:04}"),
                    &format!("c{:04}", i - 1),
                    "prev",
                    i as f32,
                )],
            );
        }
    }
    let b = WriteBatch {
        session: Some(SessionKey {
            client_id: "s".into(),
            sequence: 3,
        }),
        ops: vec![put(concept("s", ""))],
    };
    apply_batch(e, &b);
}

fn transfer(snap: &Snapshot, to: &Engine, chunk: usize) -> Result<StagedSnapshot> {
    let mut inst = to.begin_install()?;
    for (offset, bytes) in snap.chunks(chunk) {
        inst.write(offset, &bytes)?;
    }
    inst.finish(snap.meta().size, snap.meta().crc32c)
}

#[test]
fn round_trip_to_a_fresh_store_while_writes_continue() {
    let src_dir = tempfile::tempdir().unwrap();
    let src = open(src_dir.path());
    fill(&src, 300);
    let expected = all_concepts(&src);
    let snap = src.snapshot().unwrap();
    assert_eq!(snap.meta().version, src.applied().0);

    // Writes and a compaction go on while the snapshot is being read.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (src, stop) = (src.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 2_000 {
                apply(
                    &src,
                    vec![
                        put(concept(&format!("late{n}"), "x")),
                        WriteOp::DeleteConcept {
                            id: format!("c{:04}", n % 300),
                            expected_version: None,
                        },
                    ],
                );
                n += 1;
            }
        })
    };
    src.compact().unwrap();

    let dst_dir = tempfile::tempdir().unwrap();
    let dst = open(dst_dir.path());
    apply(&dst, vec![put(concept("replaced", "by the snapshot"))]);
    let staged = transfer(&snap, &dst, 777).unwrap();
    assert_eq!(staged.version(), snap.meta().version);
    assert!(
        matches!(dst.begin_install(), Err(Error::BadSnapshot { .. })),
        "one install at a time"
    );
    let installed = dst.install_snapshot(staged).unwrap();
    // The installed handle describes the same position and length; its bytes differ
    // only in the file id, which the receiver makes its own (docs/file-format.md), and
    // the CRCs over it. (The stream's CRC32C happens not to change: each changed block
    // carries its own CRC, and a block followed by its CRC adds nothing to a CRC.)
    assert_eq!(
        (
            installed.meta().version,
            &installed.meta().position,
            installed.meta().size
        ),
        (snap.meta().version, &snap.meta().position, snap.meta().size)
    );
    let differing: Vec<u64> = installed
        .chunks(1)
        .zip(snap.chunks(1))
        .filter(|(a, b)| a != b)
        .map(|((offset, _), _)| offset)
        .collect();
    assert!(
        differing.len() <= 2 * (8 + 4),
        "only the two file ids and the two CRCs differ: {differing:?}"
    );
    tracing::info!("--- the installed snapshot re-streams and installs elsewhere");
    {
        let third_dir = tempfile::tempdir().unwrap();
        let third = open(third_dir.path());
        third
            .install_snapshot(transfer(&installed, &third, 1000).unwrap())
            .unwrap();
        assert_eq!(all_concepts(&third), expected);
    }
    assert!(dst.begin_install().is_ok(), "free again after install");
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    assert_eq!(all_concepts(&dst), expected);
    assert_eq!(
        dst.applied(),
        (snap.meta().version, snap.meta().position.clone())
    );
    assert_eq!(dst.stats().edges, 299);
    // The session table came along: a retry is answered, not re-applied.
    let retry = WriteBatch {
        session: Some(SessionKey {
            client_id: "s".into(),
            sequence: 3,
        }),
        ops: vec![put(concept("s", ""))],
    };
    assert!(apply_batch(&dst, &retry).deduplicated);
    // And the installed store is durable as installed.
    drop(dst);
    let dst = open(dst_dir.path());
    assert_eq!(all_concepts(&dst), expected);
}

#[test]
fn damaged_or_misordered_streams_are_refused_and_change_nothing() {
    let src_dir = tempfile::tempdir().unwrap();
    let src = open(src_dir.path());
    fill(&src, 50);
    let snap = src.snapshot().unwrap();
    let dst_dir = tempfile::tempdir().unwrap();
    let dst = open(dst_dir.path());
    apply(&dst, vec![put(concept("mine", ""))]);

    // A flipped byte fails the checksum.
    let mut inst = dst.begin_install().unwrap();
    for (offset, mut bytes) in snap.chunks(1000) {
        if offset == 1000 {
            bytes[10] ^= 1;
        }
        inst.write(offset, &bytes).unwrap();
    }
    assert!(matches!(
        inst.finish(snap.meta().size, snap.meta().crc32c),
        Err(Error::BadSnapshot { .. })
    ));

    // A gap is refused at once.
    let mut inst = dst.begin_install().unwrap();
    let mut chunks = snap.chunks(1000);
    let (o, b) = chunks.next().unwrap();
    inst.write(o, &b).unwrap();
    chunks.next();
    let (o, b) = chunks.next().unwrap();
    assert!(matches!(inst.write(o, &b), Err(Error::BadSnapshot { .. })));

    // A truncated stream fails on finish.
    drop(inst);
    let mut inst = dst.begin_install().unwrap();
    for (offset, bytes) in snap.chunks(1000).take(2) {
        inst.write(offset, &bytes).unwrap();
    }
    assert!(matches!(
        inst.finish(snap.meta().size, snap.meta().crc32c),
        Err(Error::BadSnapshot { .. })
    ));

    assert!(dst.get("mine").unwrap().is_some());
    assert_eq!(dst.stats().concepts, 1);
}

#[test]
fn snapshot_of_another_dimension_is_refused() {
    let src_dir = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.params.vector_dimension = 8;
    let src = Engine::open(src_dir.path(), cfg).unwrap();
    apply(&src, vec![put(concept("a", ""))]);
    let snap = src.snapshot().unwrap();
    let dst_dir = tempfile::tempdir().unwrap();
    let dst = open(dst_dir.path());
    let staged = transfer(&snap, &dst, 4096).unwrap();
    assert!(matches!(
        dst.install_snapshot(staged),
        Err(Error::Incompatible { .. })
    ));
    drop(dst);
    assert!(open(dst_dir.path()).get("a").unwrap().is_none());
}

/// The checksum in a snapshot's meta is the CRC32C of its own stream for every snapshot
/// of a store that grows, adopts its parameters, compacts and installs one of its own
/// snapshots: the checksum kept from one snapshot to the next is never stale.
///
/// Why: a snapshot's checksum is extended from the last one's rather than recomputed
/// over the whole store, and a stale one would make every receiver refuse the snapshot.
#[test]
fn every_snapshot_checksum_is_its_streams_as_the_store_changes() {
    fn check(e: &Engine, what: &str) -> Snapshot {
        let snap = e.snapshot().unwrap();
        let streamed = snap
            .chunks(4096)
            .fold(0, |crc, (_, bytes)| crc32c::crc32c_append(crc, &bytes));
        assert_eq!(snap.meta().crc32c, streamed, "after {what}");
        snap
    }
    let dir = tempfile::tempdir().unwrap();
    let unset = EngineConfig {
        params: StoreParams::UNSET,
        ..config()
    };
    let e = Engine::open(dir.path(), unset).unwrap();
    check(&e, "opening an empty store");
    // The header is rewritten in place when the store adopts the cluster's parameters.
    e.adopt_params(config().params).unwrap();
    check(&e, "adopting parameters");
    fill(&e, 50);
    check(&e, "50 writes");
    check(&e, "no writes");
    // With no garbage the new file is as long as the old one, its records reordered.
    e.compact().unwrap();
    check(&e, "a compaction that frees nothing");
    for n in 0..40 {
        apply(
            &e,
            vec![WriteOp::DeleteConcept {
                id: format!("c{n:04}"),
                expected_version: None,
            }],
        );
    }
    check(&e, "deletes");
    e.compact().unwrap();
    let compacted = check(&e, "a compaction (a new data file)");
    fill(&e, 20);
    check(&e, "writes after the compaction");
    // Installing a snapshot swaps in a file with a new id again.
    let other = tempfile::tempdir().unwrap();
    let o = open(other.path());
    o.install_snapshot(transfer(&compacted, &o, 1000).unwrap())
        .unwrap();
    check(&o, "an install");
    apply(&o, vec![put(concept("after-install", "x"))]);
    check(&o, "writes on an installed store");
}
