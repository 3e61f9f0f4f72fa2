//! The log store as the write-ahead log: group commit, checksums on every entry.

mod common;

use std::sync::Arc;

use common::*;
use openraft::storage::{IOFlushed, RaftLogReader, RaftLogStorage};
use openraft::type_config::TypeConfigExt;
use sutra_raft::{ENTRIES_CF, Error, LogStore, META_CF, TypeConfig};

/// Many appends in flight share one WAL fsync, and no append is acknowledged before an
/// fsync that started after it was queued. This is what keeps write throughput from being
/// bounded by one fsync per entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_shares_one_sync_among_many_appends() {
    const N: u64 = 64;
    let dir = temp_dir();
    let log = LogStore::open(dir.path().join("log")).unwrap();

    tracing::info!("--- 64 concurrent appends, released together");
    {
        let barrier = Arc::new(tokio::sync::Barrier::new(N as usize));
        let mut tasks = Vec::new();
        for i in 0..N {
            let mut log = log.clone();
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let started_before = log.stats().wal_syncs_started;
                let (tx, rx) = TypeConfig::oneshot();
                log.append(vec![blank(1, i)], IOFlushed::signal(tx))
                    .await
                    .unwrap();
                rx.await.unwrap().unwrap();
                // The sync that covers this append started after it was queued, so at
                // least one more sync than had started before has completed.
                let done_at_callback = log.stats().wal_syncs;
                assert!(
                    done_at_callback > started_before,
                    "append {i} acknowledged with {done_at_callback} syncs done, {started_before} started before it"
                );
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let s = log.stats();
        println!("concurrent: {s:?}");
        assert_eq!(s.appends, N);
        assert_eq!(s.entries_appended, N);
        assert_eq!(s.callbacks_flushed, N);
        assert!(s.wal_syncs >= 1);
        assert!(
            s.wal_syncs < s.appends,
            "group commit: {} syncs for {} appends",
            s.wal_syncs,
            s.appends
        );
    }

    tracing::info!("--- pipelined appends from one writer, as openraft issues them");
    {
        let mut log = log.clone();
        let before = log.stats();
        let mut pending = Vec::new();
        for i in N..2 * N {
            let (tx, rx) = TypeConfig::oneshot();
            log.append(vec![blank(1, i)], IOFlushed::signal(tx))
                .await
                .unwrap();
            pending.push(rx);
        }
        for rx in pending {
            rx.await.unwrap().unwrap();
        }
        let s = log.stats();
        println!("pipelined: {s:?}");
        let syncs = s.wal_syncs - before.wal_syncs;
        assert!(syncs < N, "group commit: {syncs} syncs for {N} appends");
    }

    tracing::info!("--- everything is readable and in order");
    {
        let mut reader = log.clone().get_log_reader().await;
        let entries = reader.try_get_log_entries(0..2 * N).await.unwrap();
        let indexes: Vec<u64> = entries.iter().map(|e| e.log_id.index).collect();
        assert_eq!(indexes, (0..2 * N).collect::<Vec<_>>());
    }
}

/// A damaged entry is reported with its index, never skipped: a flipped byte in a stored
/// value fails its CRC32C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_entry_is_reported_with_its_index() {
    let dir = temp_dir();
    let path = dir.path().join("log");

    tracing::info!("--- write ten entries");
    {
        let mut log = LogStore::open(&path).unwrap();
        let entries = (0..10)
            .map(|i| put_entry(1, i, &format!("c{i}"), "hello"))
            .collect();
        append(&mut log, entries).await.unwrap();
    }

    tracing::info!("--- flip one byte of entry 5 behind the store's back");
    {
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), &path, [ENTRIES_CF, META_CF])
            .unwrap();
        let cf = db.cf_handle(ENTRIES_CF).unwrap();
        let key = 5u64.to_be_bytes();
        let mut value = db.get_cf(cf, key).unwrap().expect("entry 5 stored");
        let last = value.len() - 1;
        value[last] ^= 0x40;
        db.put_cf(cf, key, value).unwrap();
    }

    tracing::info!("--- reads that touch entry 5 fail and name it; others still work");
    {
        let mut log = LogStore::open(&path).unwrap();
        let err = log.try_get_log_entries(0..10).await.unwrap_err();
        assert!(err.to_string().contains("index 5"), "error: {err}");
        match Error::from_io(&err) {
            Some(Error::CorruptedEntry { index: 5, reason }) => {
                assert!(reason.contains("checksum"), "reason: {reason}")
            }
            other => panic!("expected CorruptedEntry at 5, got {other:?}"),
        }
        let err = log.try_get_log_entries(5..=5).await.unwrap_err();
        assert!(err.to_string().contains("index 5"), "error: {err}");

        assert_eq!(log.try_get_log_entries(0..5).await.unwrap().len(), 5);
        assert_eq!(log.try_get_log_entries(6..10).await.unwrap().len(), 4);
    }
}

/// A hole inside the stored range is an error, not a short read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hole_in_the_log_is_an_error() {
    let dir = temp_dir();
    let path = dir.path().join("log");
    {
        let mut log = LogStore::open(&path).unwrap();
        append(&mut log, (0..6).map(|i| blank(1, i)).collect())
            .await
            .unwrap();
    }
    {
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), &path, [ENTRIES_CF, META_CF])
            .unwrap();
        db.delete_cf(db.cf_handle(ENTRIES_CF).unwrap(), 3u64.to_be_bytes())
            .unwrap();
    }
    let mut log = LogStore::open(&path).unwrap();
    let err = log.try_get_log_entries(0..6).await.unwrap_err();
    assert!(
        matches!(Error::from_io(&err), Some(Error::MissingEntry { index: 3 })),
        "error: {err}"
    );
}

/// Purging never waits for an fsync, and the log still reads as purged.
///
/// Why: openraft awaits `purge` on its core task, which also sends heartbeats and
/// handles votes; an fsync there, slow while the disk is busy, would stall the node for
/// as long and could cost an election. Losing the latest purge in a crash is safe: the
/// entries are covered by a durable snapshot and get purged again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_does_not_wait_for_an_fsync() {
    let dir = temp_dir();
    let mut log = LogStore::open(dir.path().join("log")).unwrap();
    let (tx, rx) = TypeConfig::oneshot();
    log.append((0..10).map(|i| blank(1, i)), IOFlushed::signal(tx))
        .await
        .unwrap();
    rx.await.unwrap().unwrap();
    let before = log.stats();
    log.purge(log_id(1, 5)).await.unwrap();
    let after = log.stats();
    assert_eq!(
        (after.sync_writes, after.wal_syncs_started),
        (before.sync_writes, before.wal_syncs_started),
        "purge waited for an fsync"
    );
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 5)));
    assert_eq!(state.last_log_id, Some(log_id(1, 9)));
    let mut reader = log.get_log_reader().await;
    let left: Vec<u64> = reader
        .try_get_log_entries(0..10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.log_id.index)
        .collect();
    assert_eq!(left, (6..10).collect::<Vec<_>>());
}
