//! Fault injection: a failed msync or fsync poisons the engine. It is never retried,
//! later writes fail with `Poisoned`, and reads keep working. A snapshot install stopped
//! at each of its crash points reopens as the old or the new store. Runs with
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

/// Streams `snap` into `to`'s staging file.
fn stage(snap: &Snapshot, to: &Engine) -> StagedSnapshot {
    let mut inst = to.begin_install().unwrap();
    for (offset, bytes) in snap.chunks(1000) {
        inst.write(offset, &bytes).unwrap();
    }
    inst.finish(snap.meta().size, snap.meta().crc32c).unwrap()
}

/// A follower installs a second snapshot of the same leader data file (the leader did
/// not compact in between, so both carry its file id) and the install stops at each
/// crash point. Reopening must give the old state (stopped before the checkpoint was
/// replaced) or the new one (after), never refuse to open: with both files carrying the
/// same id, recovery used to take the checkpoint of the second snapshot for a
/// description of the first one's file and refuse it as corrupted.
#[test]
fn interrupted_install_of_a_second_snapshot_from_one_leader_file_reopens() {
    let leader_dir = tempfile::tempdir().unwrap();
    let leader = open(leader_dir.path());
    for i in 0..20 {
        apply(&leader, vec![put(concept(&format!("first{i:02}"), "x"))]);
    }
    let first = leader.snapshot().unwrap();
    for i in 0..40 {
        apply(&leader, vec![put(concept(&format!("second{i:02}"), "y"))]);
    }
    let second = leader.snapshot().unwrap();
    let old_state = all_concepts(&{
        let d = tempfile::tempdir().unwrap();
        let e = open(d.path());
        e.install_snapshot(stage(&first, &e)).unwrap();
        e
    });
    let new_state = all_concepts(&leader);

    let scenario = fail::FailScenario::setup();
    for (crash_point, expect_new) in [
        (None, false),
        (Some("engine::snapshot::install::after_checkpoint"), true),
        (Some("engine::snapshot::install::after_rename"), true),
    ] {
        tracing::info!(
            ?crash_point,
            "--- install the first snapshot, then stage the second"
        );
        let dir = tempfile::tempdir().unwrap();
        let follower = open(dir.path());
        follower.install_snapshot(stage(&first, &follower)).unwrap();
        let staged = stage(&second, &follower);

        tracing::info!("--- the install stops at the crash point; the process dies");
        match crash_point {
            None => drop(staged),
            Some(fp) => {
                fail::cfg(fp, "return").unwrap();
                assert!(follower.install_snapshot(staged).is_err());
                fail::remove(fp);
                // The checkpoint on disk names the staged file: this process must not
                // go on (another install would truncate that file).
                assert!(matches!(
                    follower.begin_install(),
                    Err(Error::Poisoned { .. })
                ));
            }
        }
        drop(follower);

        tracing::info!("--- reopening gives the old or the new state");
        let follower = Engine::open(dir.path(), config())
            .unwrap_or_else(|e| panic!("{crash_point:?}: reopen refused: {e}"));
        let want = if expect_new { &new_state } else { &old_state };
        assert_eq!(&all_concepts(&follower), want, "{crash_point:?}");
        let version = if expect_new {
            second.meta()
        } else {
            first.meta()
        }
        .version;
        assert_eq!(follower.applied().0, version, "{crash_point:?}");
        assert!(!dir.path().join("storage.dat.install").exists());
    }
    scenario.teardown();
}
