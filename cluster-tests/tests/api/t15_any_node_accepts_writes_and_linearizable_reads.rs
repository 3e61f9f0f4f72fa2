//! t15: a client may write through any node and read linearizably from any node.

use std::time::Duration;

use sutra_cluster_tests::client::linearizable;
use sutra_cluster_tests::{ClientRole, Cluster, ClusterOptions, init_tracing, within};
use sutra_proto::storage::{Concept, GetConceptRequest, PutConceptRequest, WriteHeader};

/// A write sent to a follower is relayed to the leader over the peer channel and
/// answered once applied; a LINEARIZABLE read on the other follower, right after, sees it
/// (the follower asks the leader for a read index and waits until it has applied it),
/// and the answer names the follower that served it. A retry of the same relayed write
/// is answered from the session table, not applied again.
///
/// Why: naive clients talk to whichever node they know; they must neither fail nor read
/// anything older than what they just wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t15_any_node_accepts_writes_and_linearizable_reads() -> anyhow::Result<()> {
    init_tracing();
    within("t15", Duration::from_secs(50), run()).await
}

async fn run() -> anyhow::Result<()> {
    tracing::info!("--- start three nodes");
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    // Every node names the leader before the first relayed write: a follower that has
    // not heard from it yet answers "not the leader" (a client would retry; this test
    // checks the relay itself).
    let leader = cluster
        .wait_for_leader(&cluster.ids(), Duration::from_secs(15))
        .await?;
    let followers: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|&id| id != leader)
        .collect();
    let (via, reader) = (followers[0], followers[1]);

    tracing::info!(
        via,
        reader,
        leader,
        "--- 20 writes through follower {via}, each read on follower {reader}"
    );
    let mut writer = cluster.client(via, ClientRole::Writer)?;
    let mut read = cluster.client(reader, ClientRole::Reader)?;
    let mut last = None;
    for i in 1..=20u64 {
        let put = PutConceptRequest {
            header: Some(WriteHeader {
                client_id: "t15".into(),
                sequence: i,
            }),
            concept: Some(Concept {
                id: format!("t15/{i:03}"),
                content: format!("v{i}").into_bytes(),
                ..Concept::default()
            }),
            expected_version: None,
        };
        let w = writer.storage.put_concept(put.clone()).await?.into_inner();
        assert!(
            !w.deduplicated,
            "first attempt of write {i} was deduplicated"
        );
        assert_eq!(w.leader_id, leader, "{w:?}");
        let got = read
            .storage
            .get_concept(GetConceptRequest {
                read: linearizable(),
                id: format!("t15/{i:03}"),
            })
            .await?
            .into_inner();
        let concept = got.concept.ok_or_else(|| {
            anyhow::anyhow!("follower {reader} missed write {i} just acknowledged")
        })?;
        assert_eq!(concept.content, format!("v{i}").into_bytes());
        assert_eq!(concept.version, w.version);
        let meta = got.meta.expect("read metadata");
        assert_eq!(meta.served_by, reader, "{meta:?}");
        assert!(
            meta.applied_index + 1 >= w.version,
            "{meta:?} vs version {}",
            w.version
        );
        last = Some((put, w));
    }

    tracing::info!("--- the last write, retried through the other follower, is deduplicated");
    let (put, first) = last.expect("20 writes");
    let mut other = cluster.client(reader, ClientRole::Writer)?;
    let again = other.storage.put_concept(put).await?.into_inner();
    assert!(again.deduplicated, "{again:?}");
    assert_eq!(again.version, first.version);

    cluster.finish();
    Ok(())
}
