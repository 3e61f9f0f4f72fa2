//! Fault injection into the log store (needs `--features failpoints`). Its own test target
//! because the failpoint registry is global to the process.

mod common;

use common::*;
use openraft::storage::{IOFlushed, RaftLogReader, RaftLogStorage};
use openraft::type_config::TypeConfigExt;
use sutra_raft::{Error, LogStore, TypeConfig, Vote};

/// A failed WAL fsync fails the appends waiting on it and poisons the store: every later
/// write is refused and the fsync is never retried. Reads of what RocksDB holds still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_wal_sync_poisons_the_store() {
    let scenario = fail::FailScenario::setup();
    let dir = temp_dir();
    let mut log = LogStore::open(dir.path().join("log")).unwrap();

    tracing::info!("--- a healthy append");
    append(&mut log, vec![blank(1, 0)]).await.unwrap();

    tracing::info!("--- the next WAL sync fails: its callback gets the error");
    {
        fail::cfg("raft::log_store::sync::err", "return").unwrap();
        let (tx, rx) = TypeConfig::oneshot();
        log.append(vec![blank(1, 1)], IOFlushed::signal(tx))
            .await
            .unwrap();
        let err = rx.await.unwrap().unwrap_err();
        assert!(err.to_string().contains("WAL fsync failed"), "error: {err}");
        fail::remove("raft::log_store::sync::err");
        assert!(log.is_poisoned());
    }

    tracing::info!("--- everything that writes is refused from now on, even with the disk healthy");
    {
        let syncs = log.stats().wal_syncs_started;
        let (tx, _rx) = TypeConfig::oneshot();
        let err = log
            .append(vec![blank(1, 2)], IOFlushed::signal(tx))
            .await
            .unwrap_err();
        assert!(
            matches!(Error::from_io(&err), Some(Error::Poisoned { .. })),
            "error: {err}"
        );
        let err = log.save_vote(&Vote::new(2, 0)).await.unwrap_err();
        assert!(
            matches!(Error::from_io(&err), Some(Error::Poisoned { .. })),
            "error: {err}"
        );
        let err = log.save_committed(Some(log_id(1, 0))).await.unwrap_err();
        assert!(
            matches!(Error::from_io(&err), Some(Error::Poisoned { .. })),
            "error: {err}"
        );
        let err = log.truncate_after(None).await.unwrap_err();
        assert!(
            matches!(Error::from_io(&err), Some(Error::Poisoned { .. })),
            "error: {err}"
        );
        assert_eq!(log.stats().wal_syncs_started, syncs, "no sync was retried");
    }

    tracing::info!("--- reads still work");
    assert_eq!(log.try_get_log_entries(0..2).await.unwrap().len(), 2);
    scenario.teardown();
}

/// An explicit sync goes through the same WAL fsync: when it fails, the caller gets the
/// error and the store is poisoned, so a restore never puts an unsynced log in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_explicit_sync_is_an_error_and_poisons_the_store() {
    let scenario = fail::FailScenario::setup();
    let dir = temp_dir();
    let mut log = LogStore::open(dir.path().join("log")).unwrap();
    log.save_committed(Some(log_id(1, 0))).await.unwrap();
    log.sync().await.unwrap();
    fail::cfg("raft::log_store::sync::err", "return").unwrap();
    let err = log.sync().await.unwrap_err();
    assert!(err.to_string().contains("WAL fsync failed"), "error: {err}");
    fail::remove("raft::log_store::sync::err");
    assert!(log.is_poisoned());
    assert!(
        matches!(log.sync().await, Err(Error::Poisoned { .. })),
        "a poisoned store never syncs again"
    );
    scenario.teardown();
}
