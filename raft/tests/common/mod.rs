//! Helpers shared by the Raft storage integration tests.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io;
use std::path::Path;

use openraft::storage::{IOFlushed, RaftLogStorage, RaftStateMachine};
use openraft::type_config::TypeConfigExt;
use sutra_engine::{CompactionConfig, Concept, EngineConfig, StoreParams, WriteBatch, WriteOp};
use sutra_raft::*;
use tempfile::TempDir;

/// A temp dir on the target directory's disk rather than `/tmp`, so fsyncs are real.
pub fn temp_dir() -> TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("create temp dir")
}

/// A small engine: 4-dimensional vectors, small growth steps, no background compaction.
pub fn engine_config() -> EngineConfig {
    EngineConfig {
        params: StoreParams {
            vector_dimension: 4,
            ..StoreParams::default()
        },
        max_file_bytes: 1 << 30,
        grow_step_bytes: 64 << 10,
        compaction: CompactionConfig {
            background: false,
            ..CompactionConfig::default()
        },
        ..EngineConfig::default()
    }
}

/// Opens (or reopens) the log store and state machine kept under `dir`.
pub fn open_pair(dir: &Path) -> (LogStore, StateMachine) {
    let log = LogStore::open(dir.join("log")).expect("open log store");
    let sm = StateMachine::open(dir.join("engine"), engine_config()).expect("open state machine");
    (log, sm)
}

pub fn log_id(term: u64, index: u64) -> LogId {
    openraft::testing::log_id::<TypeConfig>(term, 0, index)
}

pub fn blank(term: u64, index: u64) -> Entry {
    openraft::testing::blank_ent::<TypeConfig>(term, 0, index)
}

pub fn membership(term: u64, index: u64, voters: &[u64]) -> Entry {
    let voters: BTreeSet<u64> = voters.iter().copied().collect();
    openraft::testing::membership_ent::<TypeConfig>(term, 0, index, vec![voters])
}

/// A normal entry that puts concept `id` with `content`.
pub fn put_entry(term: u64, index: u64, id: &str, content: &str) -> Entry {
    let batch = WriteBatch {
        session: None,
        ops: vec![WriteOp::PutConcept {
            concept: Concept {
                id: id.into(),
                content: content.as_bytes().to_vec(),
                ..Concept::default()
            },
            expected_version: None,
        }],
    };
    Entry {
        log_id: log_id(term, index),
        payload: openraft::EntryPayload::Normal(Command::new(batch, 1_700_000_000_000 + index)),
    }
}

/// Appends `entries` and waits until the log store reports them flushed.
pub async fn append(log: &mut LogStore, entries: Vec<Entry>) -> io::Result<()> {
    let (tx, rx) = TypeConfig::oneshot();
    log.append(entries, IOFlushed::signal(tx)).await?;
    rx.await.expect("flush callback dropped without completing")
}

/// Applies `entries` without responders, as openraft does when re-applying.
pub async fn apply(sm: &mut StateMachine, entries: Vec<Entry>) -> io::Result<()> {
    let items = entries.into_iter().map(|e| Ok((e, None)));
    sm.apply(futures_util::stream::iter(items)).await
}
