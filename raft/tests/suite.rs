//! openraft's storage conformance suite against the real RocksDB log store and the engine
//! state machine.

mod common;

use openraft::testing::log::{StoreBuilder, Suite};
use sutra_raft::{LogStore, StateMachine, StorageError, TypeConfig};
use tempfile::TempDir;

/// Builds each suite case in its own temp dir; the dir is the guard, removed after the case.
struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError> {
        let dir = common::temp_dir();
        let (log, sm) = common::open_pair(dir.path());
        Ok((dir, log, sm))
    }
}

/// Every case of `Suite::test_all`: log reads and purges, vote, committed, initial state
/// recovery, membership tracking, apply, and snapshot build/transfer/install.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite() -> Result<(), StorageError> {
    Suite::test_all(Builder).await
}
