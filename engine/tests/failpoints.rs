//! Fault injection: a failed msync or fsync poisons the engine. It is never retried,
//! later writes fail with `Poisoned`, and reads keep working. Runs with
//! `--features failpoints` (its own test binary, since the failpoint registry is global).

mod common;

use common::*;
use sutra_engine::*;

#[test]
fn failed_msync_poisons_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    apply(&e, vec![put(concept("a", "1"))]);
    e.checkpoint().unwrap();
    apply(&e, vec![put(concept("b", "2"))]);

    let scenario = fail::FailScenario::setup();
    fail::cfg("engine::msync::err", "return").unwrap();
    let err = e.checkpoint().unwrap_err();
    assert!(matches!(err, Error::Io { op: "msync", .. }), "{err}");
    fail::remove("engine::msync::err");

    // Even with the fault gone, nothing is retried: the engine stays poisoned.
    assert!(matches!(
        e.checkpoint(),
        Err(Error::Poisoned { op: "msync" })
    ));
    let v = e.applied().0 + 1;
    let err = e
        .apply(
            &batch(vec![put(concept("c", "3"))]),
            ApplyContext {
                version: v,
                position: b"",
                time_ms: 0,
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::Poisoned { .. }), "{err}");
    assert!(matches!(e.compact(), Err(Error::Poisoned { .. })));
    assert!(matches!(e.snapshot(), Err(Error::Poisoned { .. })));
    assert!(e.stats().poisoned);
    assert!(e.get("b").unwrap().is_some(), "reads still work");
    scenario.teardown();

    // After a restart only the last good checkpoint is there.
    drop(e);
    let e = open(dir.path());
    assert!(e.get("a").unwrap().is_some());
    assert!(e.get("b").unwrap().is_none());
}

#[test]
fn failed_checkpoint_fsync_poisons_and_keeps_the_old_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    apply(&e, vec![put(concept("a", "1"))]);
    e.checkpoint().unwrap();
    apply(&e, vec![put(concept("b", "2"))]);
    let scenario = fail::FailScenario::setup();
    fail::cfg("engine::checkpoint::fsync::err", "return").unwrap();
    assert!(e.checkpoint().is_err());
    fail::remove("engine::checkpoint::fsync::err");
    assert!(matches!(e.checkpoint(), Err(Error::Poisoned { .. })));
    scenario.teardown();
    drop(e);
    let e = open(dir.path());
    assert!(e.get("a").unwrap().is_some());
    assert!(e.get("b").unwrap().is_none());
}
