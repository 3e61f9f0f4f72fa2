//! Crash recovery: what the log store and the engine keep across a restart, and how
//! openraft's startup re-applies the committed entries after the engine's checkpoint.

mod common;

use common::*;
use openraft::StorageHelper;
use openraft::storage::{RaftLogReader, RaftLogStorage, RaftStateMachine};
use sutra_raft::{Vote, position};

/// The vote, the entries and the committed id survive a restart; the state machine comes
/// back at the engine's last checkpoint (not at the last applied entry) and openraft's
/// startup re-applies the committed entries after it from the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_recovers_to_checkpoint_then_reapplies_from_log() {
    let dir = temp_dir();
    let vote = Vote::new_committed(1, 0);
    let mut entries = vec![membership(1, 0, &[0])];
    entries.extend((1..=6).map(|i| put_entry(1, i, &format!("c{i}"), &format!("v{i}"))));

    tracing::info!("--- append 0..=6, apply 0..=3, checkpoint, apply 4..=6, commit 6");
    {
        let (mut log, mut sm) = open_pair(dir.path());
        log.save_vote(&vote).await.unwrap();
        append(&mut log, entries.clone()).await.unwrap();
        apply(&mut sm, entries[..=3].to_vec()).await.unwrap();
        sm.engine().checkpoint().unwrap();
        apply(&mut sm, entries[4..].to_vec()).await.unwrap();
        log.save_committed(Some(log_id(1, 6))).await.unwrap();

        assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 6)));
        let c6 = sm.engine().get("c6").unwrap().expect("c6 applied");
        assert_eq!(c6.version, position(6));
        // Dropping both without a checkpoint is what a crash leaves behind for the engine.
    }

    tracing::info!("--- reopen: log state survives; the engine is back at its checkpoint");
    {
        let (mut log, mut sm) = open_pair(dir.path());
        assert_eq!(log.read_vote().await.unwrap(), Some(vote));
        assert_eq!(log.read_committed().await.unwrap(), Some(log_id(1, 6)));
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id(1, 6)));
        assert_eq!(state.last_purged_log_id, None);
        assert_eq!(log.try_get_log_entries(0..=6).await.unwrap(), entries);

        let (applied, mem) = sm.applied_state().await.unwrap();
        assert_eq!(
            applied,
            Some(log_id(1, 3)),
            "applied state is the checkpoint's"
        );
        assert_eq!(mem.log_id(), &Some(log_id(1, 0)));
        assert!(sm.engine().get("c3").unwrap().is_some());
        assert!(
            sm.engine().get("c4").unwrap().is_none(),
            "entries after the checkpoint are not in the engine until re-applied"
        );

        tracing::info!("--- openraft startup re-applies 4..=6 from the log");
        let initial = StorageHelper::new(&mut log, &mut sm)
            .with_id(0)
            .get_initial_state()
            .await
            .unwrap();
        assert_eq!(initial.local_committed(), Some(&log_id(1, 6)));
        assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 6)));
        for i in 4..=6 {
            let c = sm
                .engine()
                .get(&format!("c{i}"))
                .unwrap()
                .expect("re-applied");
            assert_eq!(c.content, format!("v{i}").into_bytes());
            assert_eq!(c.version, position(i));
        }
    }

    tracing::info!("--- purge behind a snapshot survives a restart too");
    {
        let (mut log, mut sm) = open_pair(dir.path());
        StorageHelper::new(&mut log, &mut sm)
            .with_id(0)
            .get_initial_state()
            .await
            .unwrap();
        let mut builder = sm.get_snapshot_builder().await;
        let snap = openraft::RaftSnapshotBuilder::build_snapshot(&mut builder)
            .await
            .unwrap();
        assert_eq!(snap.meta.last_log_id, Some(log_id(1, 6)));
        log.purge(log_id(1, 4)).await.unwrap();
    }
    {
        let (mut log, mut sm) = open_pair(dir.path());
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 4)));
        assert_eq!(state.last_log_id, Some(log_id(1, 6)));
        assert_eq!(log.try_get_log_entries(0..=6).await.unwrap(), entries[5..]);
        // The snapshot checkpointed the engine at 6, so nothing needs re-applying.
        assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 6)));
        assert!(sm.get_current_snapshot().await.unwrap().is_none());
        let initial = StorageHelper::new(&mut log, &mut sm)
            .with_id(0)
            .get_initial_state()
            .await
            .unwrap();
        // Logs were purged and no snapshot handle survives a restart: openraft builds one.
        assert_eq!(initial.snapshot_meta.last_log_id, Some(log_id(1, 6)));
        assert!(sm.get_current_snapshot().await.unwrap().is_some());
    }
}
