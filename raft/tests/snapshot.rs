//! Snapshots as the network will move them: built on one node, streamed in bounded
//! chunks, received to disk on another, verified, installed.

mod common;

use common::*;
use openraft::RaftSnapshotBuilder;
use openraft::storage::RaftStateMachine;
use sutra_raft::{Error, SnapshotData, SnapshotReceiver};

/// A snapshot streamed chunk by chunk installs the leader's state on a follower, and the
/// follower then serves it as its current snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_snapshot_installs_on_follower() {
    let (dir_l, dir_f) = (temp_dir(), temp_dir());
    let (_log_l, mut leader) = open_pair(dir_l.path());
    let (_log_f, mut follower) = open_pair(dir_f.path());

    tracing::info!("--- leader applies membership and 20 writes, builds a snapshot");
    let mut entries = vec![membership(1, 0, &[0, 1, 2])];
    entries.extend((1..=20).map(|i| put_entry(1, i, &format!("c{i:02}"), "payload")));
    apply(&mut leader, entries).await.unwrap();
    let snap = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(snap.meta.last_log_id, Some(log_id(1, 20)));
    assert_eq!(snap.meta.last_membership.log_id(), &Some(log_id(1, 0)));
    let local = snap
        .snapshot
        .as_local()
        .expect("built snapshots are readable");
    let (size, crc) = (local.meta().size, local.meta().crc32c);

    tracing::info!("--- a corrupted chunk is refused at finish");
    {
        let mut rx = SnapshotReceiver::begin(follower.engine()).unwrap();
        for (offset, mut chunk) in local.chunks(4096) {
            if offset == 0 {
                let last = chunk.len() - 1;
                chunk[last] ^= 1;
            }
            rx.write(offset, &chunk).unwrap();
        }
        let err = rx.finish(size, crc).unwrap_err();
        assert!(matches!(err, Error::Engine { .. }), "error: {err}");
    }

    tracing::info!("--- metadata that disagrees with the data is refused");
    {
        let mut rx = SnapshotReceiver::begin(follower.engine()).unwrap();
        for (offset, chunk) in local.chunks(4096) {
            rx.write(offset, &chunk).unwrap();
        }
        let data = rx.finish(size, crc).unwrap();
        let mut wrong = snap.meta.clone();
        wrong.last_log_id = Some(log_id(1, 19));
        let err = follower.install_snapshot(&wrong, data).await.unwrap_err();
        assert!(
            matches!(Error::from_io(&err), Some(Error::SnapshotMismatch { .. })),
            "error: {err}"
        );
        assert_eq!(follower.applied_state().await.unwrap().0, None);
    }

    tracing::info!("--- the intact stream installs");
    {
        let mut rx = SnapshotReceiver::begin(follower.engine()).unwrap();
        for (offset, chunk) in local.chunks(4096) {
            rx.write(offset, &chunk).unwrap();
        }
        let data = rx.finish(size, crc).unwrap();
        assert!(matches!(data, SnapshotData::Received(_)));
        follower.install_snapshot(&snap.meta, data).await.unwrap();

        let (applied, mem) = follower.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(1, 20)));
        assert_eq!(mem, snap.meta.last_membership);
        assert_eq!(
            follower.engine().get("c20").unwrap().unwrap().content,
            b"payload"
        );
        let current = follower.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, snap.meta);
        let cur = current.snapshot.as_local().unwrap();
        assert_eq!((cur.meta().size, cur.meta().crc32c), (size, crc));
    }

    tracing::info!("--- the follower applies on top of the installed state");
    {
        apply(&mut follower, vec![put_entry(2, 21, "c21", "after")])
            .await
            .unwrap();
        assert_eq!(
            follower.applied_state().await.unwrap().0,
            Some(log_id(2, 21))
        );
    }
}
