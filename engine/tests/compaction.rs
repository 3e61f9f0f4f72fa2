//! Compaction reclaims garbage while readers keep reading and writers keep writing.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use sutra_engine::*;

#[test]
fn compaction_under_concurrent_reads_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    // Every key is rewritten many times: most of the file is garbage.
    for round in 0..20 {
        let ops = (0..100)
            .map(|i| {
                put(with_embedding(
                    concept(&format!("k{i:03}"), &format!("{round}:{i}")),
                    [round as f32, i as f32, 1.0, 1.0],
                ))
            })
            .collect();
        apply(&e, ops);
    }
    apply(
        &e,
        (0..99)
            .map(|i| edge(&format!("k{i:03}"), &format!("k{:03}", i + 1), "next", 1.0))
            .collect(),
    );
    let before = e.stats();
    assert!(before.garbage_bytes > before.live_bytes * 10, "{before:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (e, stop, reads) = (e.clone(), stop.clone(), reads.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) && i < 1_000_000 {
                    let id = format!("k{:03}", i % 100);
                    let c = e.get(&id).unwrap().expect("every key stays readable");
                    // Content and version always belong together.
                    let round: u64 = std::str::from_utf8(&c.content)
                        .unwrap()
                        .split(':')
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap();
                    assert!(round >= 19, "{id} went back to round {round}");
                    assert_eq!(c.embedding[0], round as f32);
                    i += 1;
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let writer = {
        let (e, stop) = (e.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut round = 20;
            while !stop.load(Ordering::Relaxed) && round < 400 {
                let i = round % 100;
                apply(
                    &e,
                    vec![put(with_embedding(
                        concept(&format!("k{i:03}"), &format!("{round}:{i}")),
                        [round as f32, i as f32, 1.0, 1.0],
                    ))],
                );
                round += 1;
            }
        })
    };
    let report = e.compact().unwrap();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    assert!(reads.load(Ordering::Relaxed) > 0);
    assert!(report.bytes_after < report.bytes_before / 3, "{report:?}");
    let after = e.stats();
    assert_eq!(after.compactions, 1);
    assert_eq!((after.concepts, after.edges), (100, 99));
    e.checkpoint().unwrap();
    let live = all_concepts(&e);

    // The compacted store, plus the checkpointed writes made after it, is what a reopen finds.
    drop(e);
    let e = open(dir.path());
    assert!(all_concepts(&e) == live, "reopened store differs");
    assert_eq!(e.stats().edges, 99);
    assert!(!dir.path().join("storage.dat.compact").exists());
}

#[test]
fn background_compaction_starts_past_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.compaction = CompactionConfig {
        garbage_ratio: 0.5,
        min_garbage_bytes: 64 << 10,
        background: true,
    };
    let e = Engine::open(dir.path(), cfg).unwrap();
    // Overwrite until the write that crosses both thresholds, which starts the compactor.
    let mut n = 0;
    loop {
        apply(&e, vec![put(concept("same", &"x".repeat(200)))]);
        n += 1;
        let s = e.stats();
        let used = s.data_bytes - 64;
        if s.garbage_bytes >= 64 << 10 && s.garbage_bytes * 2 >= used {
            break;
        }
        assert!(n < 10_000, "thresholds never crossed: {s:?}");
    }
    assert!(
        e.wait_for_compactions(1, Duration::from_secs(30)) >= 1,
        "no compaction after {n} overwrites"
    );
    let s = e.stats();
    assert!(s.garbage_bytes < 64 << 10, "{s:?}");
    assert_eq!(e.get("same").unwrap().unwrap().content.len(), 200);
}

#[test]
fn interrupted_compaction_swap_is_completed_on_open() {
    // A crash after the checkpoint names the new file but before the rename: the
    // checkpoint's file id matches storage.dat.compact, and open finishes the rename.
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    for i in 0..50 {
        apply(&e, vec![put(concept("k", &i.to_string()))]);
    }
    let old = std::fs::read(dir.path().join("storage.dat")).unwrap();
    e.compact().unwrap();
    drop(e);
    std::fs::rename(
        dir.path().join("storage.dat"),
        dir.path().join("storage.dat.compact"),
    )
    .unwrap();
    std::fs::write(dir.path().join("storage.dat"), old).unwrap();
    let e = open(dir.path());
    assert_eq!(e.get("k").unwrap().unwrap().content, b"49");
    assert!(!dir.path().join("storage.dat.compact").exists());
}
