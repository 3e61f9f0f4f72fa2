//! Raft log store benchmark: appended entries/s and WAL syncs/s with 1 and 64 concurrent
//! proposers, against the disk's own fdatasync rate measured the same way.
//!
//! Run: `cargo bench -p sutra-raft --bench log_store`
//! Env: `SUTRA_BENCH_DIR` (default: the cargo target dir's tmp, i.e. the project's disk),
//! `SUTRA_BENCH_SECONDS` per case (default 5).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::type_config::TypeConfigExt;
use sutra_engine::{Concept, WriteBatch, WriteOp};
use sutra_raft::{Command, Entry, LogStore, TypeConfig};

fn entry(index: u64) -> Entry {
    let batch = WriteBatch {
        session: None,
        ops: vec![WriteOp::PutConcept {
            concept: Concept {
                id: format!("concept-{index:010}"),
                content: vec![7; 256],
                ..Concept::default()
            },
            expected_version: None,
        }],
    };
    Entry {
        log_id: openraft::testing::log_id::<TypeConfig>(1, 1, index),
        payload: openraft::EntryPayload::Normal(Command::new(batch, 0)),
    }
}

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort_unstable();
    let p = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
    format!(
        "p50 {:?}  p99 {:?}  max {:?}",
        p(0.5),
        p(0.99),
        v[v.len() - 1]
    )
}

fn fdatasync_rate(dir: &std::path::Path, seconds: u64) {
    let path = dir.join("fdatasync.bench");
    let mut f = std::fs::File::create(&path).expect("create");
    let block = vec![1u8; 4096];
    let mut lat = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(seconds) && lat.len() < 100_000 {
        let t = Instant::now();
        f.write_all(&block).expect("write");
        f.sync_data().expect("fdatasync");
        lat.push(t.elapsed());
    }
    let n = lat.len();
    println!(
        "disk: 4 KiB append + fdatasync: {:.0} syncs/s  ({})",
        n as f64 / start.elapsed().as_secs_f64(),
        percentiles(lat)
    );
    let _ = std::fs::remove_file(path);
}

async fn proposers(log: &LogStore, tasks: u64, seconds: u64) {
    let next = Arc::new(AtomicU64::new(0));
    let before = log.stats();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (mut log, next) = (log.clone(), next.clone());
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline && lat.len() < 1_000_000 {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                let (tx, rx) = TypeConfig::oneshot();
                log.append(vec![entry(i)], IOFlushed::signal(tx))
                    .await
                    .expect("append");
                rx.await.expect("callback").expect("flushed");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for h in handles {
        lat.extend(h.await.expect("task"));
    }
    let secs = start.elapsed().as_secs_f64();
    let s = log.stats();
    let entries = s.entries_appended - before.entries_appended;
    let syncs = s.wal_syncs - before.wal_syncs;
    println!(
        "log store, {tasks:>2} proposer(s): {:.0} entries/s, {:.0} WAL syncs/s, {:.1} entries per sync; append-to-durable {}",
        entries as f64 / secs,
        syncs as f64 / secs,
        entries as f64 / syncs.max(1) as f64,
        percentiles(lat)
    );
}

fn main() {
    let seconds: u64 = std::env::var("SUTRA_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let base = std::env::var("SUTRA_BENCH_DIR")
        .unwrap_or_else(|_| env!("CARGO_TARGET_TMPDIR").to_string());
    println!(
        "command: cargo bench -p sutra-raft --bench log_store   (SUTRA_BENCH_SECONDS={seconds}, dir {base})"
    );
    let dir = tempfile::tempdir_in(&base).expect("temp dir");
    fdatasync_rate(dir.path(), seconds);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for tasks in [1, 64] {
            let sub = tempfile::tempdir_in(dir.path()).expect("temp dir");
            let log = LogStore::open(sub.path()).expect("open log store");
            proposers(&log, tasks, seconds).await;
        }
    });
}
