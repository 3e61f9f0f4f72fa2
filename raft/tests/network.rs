//! The peer network end to end: in-process clusters whose nodes talk gRPC over loopback
//! through `PeerNetwork` and `RaftGrpcService`.

mod cluster;
mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cluster::{Cluster, TestNode, WAIT, key, raft_config};
use openraft::async_runtime::watch::WatchReceiver;
use openraft::error::RPCError;
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::VoteRequest;
use openraft::storage::RaftStateMachine;
use openraft::{RaftSnapshotBuilder, ServerState, SnapshotPolicy};
use sutra_proto::raft as pb;
use sutra_proto::raft::raft_service_client::RaftServiceClient;
use sutra_proto::raft::snapshot_chunk::Kind;
use sutra_raft::pb::{IntoProto, TryIntoProto, snapshot_meta_to_proto};
use sutra_raft::{
    NetworkConfig, NodeInfo, PeerIdentity, PeerNetwork, ServiceConfig, Vote, plaintext_endpoints,
};
use tokio::net::TcpListener;
use tonic::Code;

/// The cluster tests run one at a time: each runs several Raft nodes with 50 ms heartbeats,
/// and two of them at once on a small machine would only test the scheduler.
/// (An async mutex: it does not poison, so one failed test does not fail the others.)
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A three-node cluster replicates 200 writes to every engine; a follower whose server is
/// down misses the next writes (the other two still commit them) and catches up from the
/// log once it serves again. Each peer is reached over one cached channel throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t10_replicates_and_a_follower_catches_up_after_an_outage() {
    let _serial = SERIAL.lock().await;
    cluster::init_logging();
    let mut cluster = Cluster::start(3, raft_config(), NetworkConfig::default()).await;
    let leader = cluster.leader().await;

    tracing::info!("--- 200 writes reach every engine");
    let last = cluster.write(leader, 0..200).await;
    for n in &cluster.nodes {
        n.wait_applied(last, "first 200 writes").await;
        for i in [0, 57, 199] {
            assert_eq!(
                n.content(&key(i)),
                Some(format!("value {i}").into_bytes()),
                "node {} has {}",
                n.id,
                key(i)
            );
        }
    }

    tracing::info!("--- a follower's server goes down; writes go on without it");
    let follower = (1..=3).find(|&id| id != leader).expect("a follower");
    cluster.node_mut(follower).stop_server().await;
    let last = cluster.write(leader, 200..250).await;
    for n in cluster.nodes.iter().filter(|n| n.id != follower) {
        n.wait_applied(last, "writes during the outage").await;
    }
    assert_eq!(
        cluster.node(follower).content(&key(249)),
        None,
        "the follower cannot have writes made while it was unreachable"
    );

    tracing::info!("--- the follower serves again and catches up");
    let contacts_before = cluster
        .node(follower)
        .leader_contacts
        .load(Ordering::Relaxed);
    assert!(contacts_before > 0, "the contact hook saw the leader");
    cluster.node_mut(follower).restart_server().await;
    let f = cluster.node(follower);
    f.wait_applied(last, "catch up after the outage").await;
    assert_eq!(f.content(&key(249)), Some(b"value 249".to_vec()));
    assert!(f.leader_contacts.load(Ordering::Relaxed) > contacts_before);
    assert_eq!(
        cluster.leader().await,
        leader,
        "the outage did not move leadership"
    );

    tracing::info!("--- one channel per peer, kept across the outage");
    let net = &cluster.node(leader).network;
    let mut peers = net.cached_peers();
    peers.sort_unstable();
    let expected: Vec<u64> = (1..=3).filter(|&id| id != leader).collect();
    assert_eq!(peers, expected);
    assert_eq!(
        net.channels_created(),
        2,
        "one replication channel per peer"
    );

    cluster.shutdown().await;
}

/// With a small snapshot policy the leader snapshots and purges its log; a fresh node added
/// as a learner can then only catch up through InstallSnapshot, streamed in many small
/// chunks, and afterwards follows the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t20_new_learner_catches_up_through_a_streamed_snapshot() {
    let _serial = SERIAL.lock().await;
    cluster::init_logging();
    let config = openraft::Config {
        snapshot_policy: SnapshotPolicy::LogsSinceLast(50),
        max_in_snapshot_log_to_keep: 0,
        purge_batch_size: 1,
        ..raft_config()
    };
    let net = NetworkConfig {
        snapshot_chunk_bytes: 4096,
        ..NetworkConfig::default()
    };
    let cluster = Cluster::start(3, config.clone(), net.clone()).await;
    let leader = cluster.leader().await;

    tracing::info!("--- 200 writes; the leader snapshots and purges");
    let last = cluster.write(leader, 0..200).await;
    let l = cluster.node(leader);
    l.wait_applied(last, "200 writes").await;
    let m = l
        .raft
        .wait(Some(WAIT))
        .metrics(
            |m| m.purged.is_some_and(|p| p.index >= 100),
            "leader purged its log past index 100",
        )
        .await
        .expect("the leader purges behind its snapshots");
    let purged = m.purged.expect("checked").index;

    tracing::info!("--- a fresh node joins as a learner");
    let mut newcomer = TestNode::start(
        4,
        config,
        net,
        ServiceConfig::default(),
        Arc::new(sutra_raft::AllowAll),
    )
    .await;
    l.raft
        .add_learner(4, newcomer.info(), true)
        .await
        .expect("add learner");
    newcomer.wait_applied(last, "learner catches up").await;

    tracing::info!("--- it got there through a snapshot");
    let stats = newcomer.service.stats();
    assert!(stats.snapshots_received >= 1, "stats: {stats:?}");
    assert!(
        stats.snapshot_bytes_received > 4096,
        "the snapshot came in more than one chunk: {stats:?}"
    );
    let snap = newcomer.raft.metrics().borrow_watched().snapshot;
    assert!(
        snap.is_some_and(|s| s.index >= purged),
        "learner's snapshot {snap:?} covers the purged log (purged up to {purged})"
    );
    for i in [0, 1, 150, 199] {
        assert_eq!(
            newcomer.content(&key(i)),
            Some(format!("value {i}").into_bytes())
        );
    }
    assert!(
        l.network.channels_created() >= 3,
        "the snapshot went over the learner's own snapshot channel"
    );

    tracing::info!("--- and then follows the log");
    let last = cluster.write(leader, 200..210).await;
    newcomer.wait_applied(last, "writes after joining").await;
    assert_eq!(newcomer.content(&key(209)), Some(b"value 209".to_vec()));

    newcomer.stop_server().await;
    newcomer.raft.shutdown().await.expect("shutdown");
    cluster.shutdown().await;
}

/// Leadership moves to the follower the leader names, over the TransferLeader RPC, and
/// writes then go through the new leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t30_transfer_leader_moves_leadership_to_the_chosen_node() {
    let _serial = SERIAL.lock().await;
    cluster::init_logging();
    let cluster = Cluster::start(3, raft_config(), NetworkConfig::default()).await;
    let leader = cluster.leader().await;
    let last = cluster.write(leader, 0..20).await;
    let target = (1..=3).find(|&id| id != leader).expect("a follower");
    cluster
        .node(target)
        .wait_applied(last, "before the transfer")
        .await;

    tracing::info!("--- transfer leadership from {leader} to {target}");
    cluster
        .node(leader)
        .raft
        .trigger()
        .transfer_leader(target)
        .await
        .expect("trigger transfer");
    cluster
        .node(target)
        .raft
        .wait(Some(WAIT))
        .state(ServerState::Leader, "target becomes leader")
        .await
        .expect("the target takes over");
    assert_eq!(cluster.leader().await, target);

    tracing::info!("--- writes go through the new leader");
    let last = cluster.write(target, 20..30).await;
    for n in &cluster.nodes {
        n.wait_applied(last, "writes after the transfer").await;
        assert_eq!(n.content(&key(29)), Some(b"value 29".to_vec()));
    }

    cluster.shutdown().await;
}

/// How the client reports transport failures to openraft: nothing listening is
/// `Unreachable` (openraft backs off), a peer that accepts but never answers is a
/// `Timeout`, an address the endpoint factory refuses is `Unreachable`. Channels are
/// cached per node and address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t05_client_maps_transport_failures() {
    cluster::init_logging();
    let config = NetworkConfig {
        min_rpc_timeout: Duration::from_millis(300),
        ..NetworkConfig::default()
    };
    let mut net = PeerNetwork::new(1, config.clone(), plaintext_endpoints());
    let option = RPCOption::new(Duration::from_millis(100));
    let vote = || VoteRequest::new(Vote::new(1, 1), None);

    tracing::info!("--- nothing listening: Unreachable");
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let mut c = net
        .new_client(2, &NodeInfo::new(closed.to_string(), ""))
        .await;
    let err = c.vote(vote(), option.clone()).await.unwrap_err();
    assert!(matches!(err, RPCError::Unreachable(_)), "{err:?}");

    tracing::info!("--- accepts but never answers: Timeout after the deadline");
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            conns.push(s);
        }
    });
    let mut c = net
        .new_client(3, &NodeInfo::new(silent_addr.to_string(), ""))
        .await;
    let started = std::time::Instant::now();
    let err = c.vote(vote(), option.clone()).await.unwrap_err();
    assert!(matches!(err, RPCError::Timeout(_)), "{err:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the floor applies"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    hold.abort();

    tracing::info!("--- channels are cached per node and address");
    let created = net.channels_created();
    let _ = net
        .new_client(3, &NodeInfo::new(silent_addr.to_string(), ""))
        .await;
    assert_eq!(net.channels_created(), created, "same address: cached");
    let _ = net
        .new_client(3, &NodeInfo::new(closed.to_string(), ""))
        .await;
    assert_eq!(
        net.channels_created(),
        created + 1,
        "new address: new channel"
    );

    tracing::info!("--- the endpoint factory refuses: Unreachable, nothing cached");
    let mut refusing = PeerNetwork::new(
        1,
        config,
        Arc::new(|id, _: &str| Err(format!("no certificate for node {id}").into())),
    );
    let mut c = refusing.new_client(2, &NodeInfo::new("x:1", "")).await;
    let err = c.vote(vote(), option).await.unwrap_err();
    assert!(matches!(err, RPCError::Unreachable(_)), "{err:?}");
    assert!(refusing.cached_peers().is_empty());
}

fn status_of<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>) -> tonic::Status {
    r.expect_err("the call must fail")
}

/// The server refuses what it must not act on, with the documented codes, and installs
/// nothing: malformed messages, snapshot streams out of order, with gaps, stalled, or whose
/// bytes do not match the header's checksum; callers the auth hook refuses or that speak
/// for another node. An intact stream afterwards installs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t40_service_refuses_bad_requests_and_installs_nothing() {
    let _serial = SERIAL.lock().await;
    cluster::init_logging();
    let svc = ServiceConfig {
        snapshot_chunk_timeout: Duration::from_millis(300),
        ..ServiceConfig::default()
    };
    let node = TestNode::start(
        1,
        raft_config(),
        NetworkConfig::default(),
        svc.clone(),
        Arc::new(sutra_raft::AllowAll),
    )
    .await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", node.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = RaftServiceClient::new(channel);

    tracing::info!("--- a snapshot built on another engine, for the stream tests");
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
    assert!(chunks.len() > 1);
    let header_for = |meta: &sutra_raft::SnapshotMeta, crc32c: u32| pb::SnapshotChunk {
        kind: Some(Kind::Header(pb::SnapshotHeader {
            vote: Some(Vote::new_committed(1, 9).into_proto()),
            meta: Some(snapshot_meta_to_proto(meta, "test-snapshot")),
            total_size_bytes: size,
            crc32c,
        })),
    };
    let header = |crc32c: u32| header_for(&snap.meta, crc32c);
    let data = |offset: u64, bytes: Vec<u8>| pb::SnapshotChunk {
        kind: Some(Kind::Data(pb::SnapshotData {
            offset,
            data: bytes,
        })),
    };
    let stream = |items: Vec<pb::SnapshotChunk>| futures_util::stream::iter(items);

    tracing::info!("--- malformed unary requests: INVALID_ARGUMENT naming the field");
    {
        let st = status_of(
            client
                .append_entries(pb::AppendEntriesRequest::default())
                .await,
        );
        assert_eq!(st.code(), Code::InvalidArgument, "{st:?}");
        assert!(st.message().contains("vote"), "{st:?}");
        let bad_entry = pb::AppendEntriesRequest {
            vote: Some(Vote::new_committed(1, 9).into_proto()),
            entries: vec![pb::Entry {
                log_id: Some(pb::LogId::default()),
                payload: None,
            }],
            ..Default::default()
        };
        let st = status_of(client.append_entries(bad_entry).await);
        assert_eq!(st.code(), Code::InvalidArgument, "{st:?}");
        assert!(st.message().contains("entries[0].payload"), "{st:?}");
        // Entries that skip an index: refused before openraft and the log store see them
        // (the log store asserts consecutive appends, so they would stop the node). The
        // rest of this test runs on the same node, so it also shows the node kept going.
        let gap = pb::AppendEntriesRequest {
            vote: Some(Vote::new_committed(1, 9).into_proto()),
            entries: [0, 2]
                .map(|i| {
                    openraft::testing::blank_ent::<sutra_raft::TypeConfig>(1, 9, i)
                        .try_into_proto()
                        .unwrap()
                })
                .to_vec(),
            ..Default::default()
        };
        let st = status_of(client.append_entries(gap).await);
        assert_eq!(st.code(), Code::InvalidArgument, "{st:?}");
        assert!(st.message().contains("entries[1].log_id.index"), "{st:?}");
        assert_eq!(node.raft.metrics().borrow_watched().last_log_index, None);
        let st = status_of(client.vote(pb::VoteRequest::default()).await);
        assert_eq!(st.code(), Code::InvalidArgument, "{st:?}");
    }

    tracing::info!("--- snapshot streams that break the protocol");
    {
        let st = status_of(
            client
                .install_snapshot(stream(vec![data(0, vec![1])]))
                .await,
        );
        assert_eq!(
            st.code(),
            Code::InvalidArgument,
            "data before header: {st:?}"
        );

        let gap = vec![
            header(crc),
            data(0, chunks[0].1.clone()),
            data(size, vec![1]),
        ];
        let st = status_of(client.install_snapshot(stream(gap)).await);
        assert_eq!(st.code(), Code::InvalidArgument, "offset gap: {st:?}");

        let mut corrupt: Vec<_> = vec![header(crc ^ 1)];
        corrupt.extend(chunks.iter().cloned().map(|(o, b)| data(o, b)));
        let st = status_of(client.install_snapshot(stream(corrupt)).await);
        assert_eq!(st.code(), Code::DataLoss, "checksum mismatch: {st:?}");

        // Intact bytes under metadata that claims another position: refused before openraft
        // sees it (openraft would stop the node on a snapshot that contradicts its meta).
        let mut wrong_meta = snap.meta.clone();
        wrong_meta.last_log_id = Some(common::log_id(1, 19));
        let mut mislabelled = vec![header_for(&wrong_meta, crc)];
        mislabelled.extend(chunks.iter().cloned().map(|(o, b)| data(o, b)));
        let st = status_of(client.install_snapshot(stream(mislabelled)).await);
        assert_eq!(st.code(), Code::InvalidArgument, "meta mismatch: {st:?}");

        let truncated = vec![header(crc), data(0, chunks[0].1.clone())];
        let st = status_of(client.install_snapshot(stream(truncated)).await);
        assert_eq!(st.code(), Code::DataLoss, "short stream: {st:?}");

        let stalled = futures_util::StreamExt::chain(
            stream(vec![header(crc)]),
            futures_util::stream::pending(),
        );
        let started = std::time::Instant::now();
        let st = status_of(client.install_snapshot(stalled).await);
        assert_eq!(st.code(), Code::DeadlineExceeded, "stalled stream: {st:?}");
        assert!(started.elapsed() < Duration::from_secs(5));

        assert_eq!(node.service.stats().snapshots_received, 0);
        assert_eq!(node.content("s01"), None, "nothing was installed");
        assert_eq!(node.raft.metrics().borrow_watched().snapshot, None);
    }

    tracing::info!("--- the intact stream installs");
    {
        let mut items = vec![header(crc)];
        items.extend(chunks.iter().cloned().map(|(o, b)| data(o, b)));
        let resp = client
            .install_snapshot(stream(items))
            .await
            .unwrap()
            .into_inner();
        assert!(resp.vote.is_some());
        assert_eq!(node.service.stats().snapshots_received, 1);
        assert_eq!(node.content("s20"), Some(b"snap".to_vec()));
        assert_eq!(
            node.raft.metrics().borrow_watched().snapshot,
            snap.meta.last_log_id
        );
    }

    tracing::info!("--- the auth hook: refused callers and impersonation");
    {
        let strict = TestNode::start(
            2,
            raft_config(),
            NetworkConfig::default(),
            svc,
            Arc::new(|req: &tonic::Request<()>, _: &sutra_raft::Raft| {
                match req
                    .metadata()
                    .get("test-peer")
                    .and_then(|v| v.to_str().ok())
                {
                    Some(id) => {
                        Ok(PeerIdentity::Node(id.parse().map_err(|_| {
                            tonic::Status::unauthenticated("bad peer id")
                        })?))
                    }
                    None => Err(tonic::Status::unauthenticated("no identity")),
                }
            }),
        )
        .await;
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", strict.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = RaftServiceClient::new(channel);
        let vote_from = |node: u64, caller: Option<&str>| {
            let mut req = tonic::Request::new(
                VoteRequest::<sutra_raft::TypeConfig>::new(Vote::new(5, node), None).into_proto(),
            );
            if let Some(c) = caller {
                req.metadata_mut().insert("test-peer", c.parse().unwrap());
            }
            req
        };
        let st = status_of(client.vote(vote_from(3, None)).await);
        assert_eq!(st.code(), Code::Unauthenticated, "{st:?}");
        let st = status_of(client.vote(vote_from(3, Some("7"))).await);
        assert_eq!(
            st.code(),
            Code::PermissionDenied,
            "node 7 voting as 3: {st:?}"
        );
        client
            .vote(vote_from(3, Some("3")))
            .await
            .expect("node 3 voting as itself is let in");
        assert_eq!(strict.service.stats().rejected_calls, 2);
        strict.shutdown().await;
    }

    node.shutdown().await;
}

/// A peer whose InstallSnapshot never finishes: it either takes no data at all (`read`
/// false) or takes every chunk and never answers.
struct StuckPeer {
    read: bool,
}

#[tonic::async_trait]
impl pb::raft_service_server::RaftService for StuckPeer {
    async fn append_entries(
        &self,
        _: tonic::Request<pb::AppendEntriesRequest>,
    ) -> Result<tonic::Response<pb::AppendEntriesResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("stuck peer"))
    }
    async fn vote(
        &self,
        _: tonic::Request<pb::VoteRequest>,
    ) -> Result<tonic::Response<pb::VoteResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("stuck peer"))
    }
    async fn pre_vote(
        &self,
        _: tonic::Request<pb::VoteRequest>,
    ) -> Result<tonic::Response<pb::VoteResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("stuck peer"))
    }
    async fn install_snapshot(
        &self,
        request: tonic::Request<tonic::Streaming<pb::SnapshotChunk>>,
    ) -> Result<tonic::Response<pb::SnapshotResponse>, tonic::Status> {
        let mut stream = request.into_inner();
        if self.read {
            while stream.message().await?.is_some() {}
        }
        std::future::pending().await
    }
    async fn transfer_leader(
        &self,
        _: tonic::Request<pb::TransferLeaderRequest>,
    ) -> Result<tonic::Response<pb::TransferLeaderResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("stuck peer"))
    }
    async fn forward_write(
        &self,
        _: tonic::Request<pb::ForwardWriteRequest>,
    ) -> Result<tonic::Response<pb::ForwardWriteResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("stuck peer"))
    }
    async fn forward_writes(
        &self,
        _: tonic::Request<pb::ForwardWritesRequest>,
    ) -> Result<tonic::Response<pb::ForwardWritesResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("stuck peer"))
    }
    async fn read_index(
        &self,
        _: tonic::Request<pb::ReadIndexRequest>,
    ) -> Result<tonic::Response<pb::ReadIndexResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("stuck peer"))
    }
}

/// The snapshot sender gives up on a receiver that stops taking chunks (per-chunk
/// deadline, not a whole-transfer one) or that never answers after the last chunk, and
/// stops at once when openraft cancels the transfer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t06_snapshot_sender_gives_up_on_a_stuck_receiver() {
    cluster::init_logging();
    tracing::info!("--- a snapshot of a few MiB: more than HTTP/2 buffers in flight");
    let dir = common::temp_dir();
    let (_log, mut sm) = common::open_pair(dir.path());
    let big = "x".repeat(900 << 10);
    let mut entries = vec![common::membership(1, 0, &[1])];
    entries.extend((1..=6).map(|i| common::put_entry(1, i, &format!("big{i}"), &big)));
    common::apply(&mut sm, entries).await.unwrap();
    let built = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let local = built.snapshot.as_local().expect("local snapshot").clone();
    assert!(
        local.meta().size > 5 << 20,
        "the snapshot must exceed the flow-control windows"
    );
    let snapshot = || sutra_raft::Snapshot {
        meta: built.meta.clone(),
        snapshot: sutra_raft::SnapshotData::Local(local.clone()),
    };

    let serve_stuck = |read: bool| async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = futures_util::stream::unfold(listener, |l| async move {
            Some((l.accept().await.map(|(s, _)| s), l))
        });
        let task = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(pb::raft_service_server::RaftServiceServer::new(StuckPeer {
                    read,
                }))
                .serve_with_incoming(incoming),
        );
        (addr, task)
    };
    let config = NetworkConfig {
        snapshot_chunk_bytes: 64 << 10,
        snapshot_chunk_timeout: Duration::from_millis(500),
        snapshot_install_timeout: Duration::from_millis(500),
        ..NetworkConfig::default()
    };
    let mut net = PeerNetwork::new(1, config, plaintext_endpoints());
    let option = RPCOption::new(Duration::from_millis(200));
    let vote = Vote::new_committed(1, 1);
    let never = std::future::pending::<openraft::error::ReplicationClosed>;

    for read in [false, true] {
        tracing::info!("--- receiver that reads the data: {read}");
        let (addr, server) = serve_stuck(read).await;
        let mut c = net
            .new_snapshot_client(2, &NodeInfo::new(addr.to_string(), ""))
            .await;
        let started = std::time::Instant::now();
        let err = c
            .full_snapshot(vote, snapshot(), never(), option.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(err, openraft::error::StreamingError::Timeout(_)),
            "{err:?}"
        );
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(500), "gave up after {took:?}");
        assert!(took < Duration::from_secs(10), "gave up after {took:?}");
        server.abort();
    }

    tracing::info!("--- openraft cancels the transfer");
    let (addr, server) = serve_stuck(false).await;
    let mut c = net
        .new_snapshot_client(2, &NodeInfo::new(addr.to_string(), ""))
        .await;
    let cancel = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        openraft::error::ReplicationClosed::new("test cancels")
    };
    let err = c
        .full_snapshot(vote, snapshot(), cancel, option)
        .await
        .unwrap_err();
    assert!(
        matches!(err, openraft::error::StreamingError::Closed(_)),
        "{err:?}"
    );
    server.abort();
}
