//! The snapshot receiver's bounds over a real InstallSnapshot stream: a header announcing
//! more than `max_snapshot_bytes` is refused before anything is written, and a stream
//! that keeps sending chunks, each well within the per-chunk deadline, is cut off when
//! the whole stream's deadline passes. Neither installs anything, and an intact stream
//! within both bounds installs afterwards (the refusals left the install slot free).

mod cluster;
mod common;

use std::sync::Arc;
use std::time::Duration;

use cluster::{TestNode, raft_config};
use openraft::RaftSnapshotBuilder;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::storage::RaftStateMachine;
use sutra_proto::raft as pb;
use sutra_proto::raft::raft_service_client::RaftServiceClient;
use sutra_proto::raft::snapshot_chunk::Kind;
use sutra_raft::pb::{IntoProto, snapshot_meta_to_proto};
use sutra_raft::{NetworkConfig, ServiceConfig, Vote};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_overlong_snapshot_streams_are_refused() {
    cluster::init_logging();

    tracing::info!("--- a snapshot built on another engine");
    let src_dir = common::temp_dir();
    let (_log, mut src) = common::open_pair(src_dir.path());
    let mut entries = vec![common::membership(1, 0, &[9])];
    entries.extend((1..=20).map(|i| common::put_entry(1, i, &format!("s{i:02}"), "snap")));
    common::apply(&mut src, entries).await.unwrap();
    let snap = src
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let local = snap.snapshot.as_local().expect("local snapshot");
    let (size, crc) = (local.meta().size, local.meta().crc32c);
    let chunks: Vec<(u64, Vec<u8>)> = local.chunks(512).collect();
    let header = |total: u64| pb::SnapshotChunk {
        kind: Some(Kind::Header(pb::SnapshotHeader {
            vote: Some(Vote::new_committed(1, 9).into_proto()),
            meta: Some(snapshot_meta_to_proto(&snap.meta, "bounded")),
            total_size_bytes: total,
            crc32c: crc,
        })),
    };
    let data = |offset: u64, bytes: Vec<u8>| pb::SnapshotChunk {
        kind: Some(Kind::Data(pb::SnapshotData {
            offset,
            data: bytes,
        })),
    };

    tracing::info!("--- a receiver that takes at most this snapshot's size, for at most 1 s");
    let receive_timeout = Duration::from_secs(1);
    let svc = ServiceConfig {
        max_snapshot_bytes: size,
        snapshot_receive_timeout: receive_timeout,
        snapshot_chunk_timeout: Duration::from_secs(10),
        ..ServiceConfig::default()
    };
    let node = TestNode::start(
        1,
        raft_config(),
        NetworkConfig::default(),
        svc,
        Arc::new(sutra_raft::AllowAll),
    )
    .await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", node.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = RaftServiceClient::new(channel);

    tracing::info!("--- a header announcing one byte more than the maximum");
    {
        let items = vec![header(size + 1), data(0, vec![0; 1])];
        let st = client
            .install_snapshot(futures_util::stream::iter(items))
            .await
            .expect_err("refused");
        assert_eq!(st.code(), Code::ResourceExhausted, "{st:?}");
        assert!(st.message().contains(&size.to_string()), "{st:?}");
        assert_eq!(node.service.stats().snapshot_bytes_received, 0);
    }

    tracing::info!("--- one byte at a time, every 50 ms: within the chunk deadline, not the total");
    {
        let trickle = futures_util::stream::unfold(0u64, move |offset| async move {
            if offset > 0 {
                // The slow sender this test is about, not a wait for anything.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Some((data(offset, vec![0; 1]), offset + 1))
        });
        let items =
            futures_util::StreamExt::chain(futures_util::stream::iter(vec![header(size)]), trickle);
        let started = std::time::Instant::now();
        let st = client.install_snapshot(items).await.expect_err("cut off");
        assert_eq!(st.code(), Code::DeadlineExceeded, "{st:?}");
        assert!(st.message().contains("receive timeout"), "{st:?}");
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "cut off by the whole-stream bound, not a chunk timeout: {:?}",
            started.elapsed()
        );
        assert!(node.service.stats().snapshot_bytes_received < size);
    }

    tracing::info!("--- nothing was installed; an intact stream within the bounds installs");
    {
        assert_eq!(node.service.stats().snapshots_received, 0);
        assert_eq!(node.content("s01"), None);
        let mut items = vec![header(size)];
        items.extend(chunks.iter().cloned().map(|(o, b)| data(o, b)));
        client
            .install_snapshot(futures_util::stream::iter(items))
            .await
            .expect("installs");
        assert_eq!(node.service.stats().snapshots_received, 1);
        assert_eq!(node.content("s20"), Some(b"snap".to_vec()));
        assert_eq!(
            node.raft.metrics().borrow_watched().snapshot,
            snap.meta.last_log_id
        );
    }
    node.shutdown().await;
}
