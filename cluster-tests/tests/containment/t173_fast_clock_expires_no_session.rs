//! t173: a node whose clock is far ahead cannot expire other clients' exactly-once
//! sessions: log time is the leader's monotonic clock, restamped on every relayed write.

use std::sync::Arc;
use std::time::Duration;

use sutra_checker::History;
use sutra_cluster_tests::history::recorded_put;
use sutra_cluster_tests::{
    ClientRole, Cluster, ClusterOptions, check_final_scan, init_tracing, within,
};
use sutra_proto::cluster::TransferLeaderRequest;
use sutra_proto::storage::{Concept, PutConceptRequest, WriteHeader};

/// Two days, in milliseconds: far past the cluster's ten-minute session lifetime.
const AHEAD_MS: &str = "172800000";

fn put(client_id: &str, sequence: u64, id: &str) -> PutConceptRequest {
    PutConceptRequest {
        header: Some(WriteHeader {
            client_id: client_id.into(),
            sequence,
        }),
        concept: Some(Concept {
            id: id.into(),
            content: format!("{client_id} {sequence}").into_bytes(),
            ..Concept::default()
        }),
        expected_version: None,
    }
}

/// Sessions live ten minutes of log time. Client A writes through the leader (node 1).
/// Node 3's clock is two days ahead: client B writes 40 times through it as a follower
/// (it relays), then node 3 is made leader and B writes 40 more. A then retries its last
/// write with the same sequence: it is answered from the session table
/// (`deduplicated`), not applied again. With log time taken from the node that received
/// a write, or from a leader's wall clock, B's writes would have moved log time on by
/// days (at least a minute per entry: 80 minutes) and A's retry would have applied twice.
///
/// Why: exactly-once is what makes client retries after a failover safe; one node's
/// clock must not be able to switch it off for everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t173_fast_clock_expires_no_session() -> anyhow::Result<()> {
    init_tracing();
    within("t173", Duration::from_secs(90), run()).await
}

async fn run() -> anyhow::Result<()> {
    let mut opts = ClusterOptions::default();
    opts.node_args
        .insert(1, vec!["--session-ttl-ms".into(), "600000".into()]);
    opts.node_env.insert(
        3,
        vec![("SUTRA_TEST_CLOCK_OFFSET_MS".into(), AHEAD_MS.into())],
    );
    let cluster = Cluster::start(opts).await?;
    let history = Arc::new(History::new());
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    if leader == 3 {
        let mut admin = cluster.client(3, ClientRole::Admin)?;
        admin
            .cluster
            .transfer_leader(TransferLeaderRequest {
                target_node_id: Some(1),
            })
            .await?;
    }

    tracing::info!("--- client A writes through the leader");
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let mut on_leader = cluster.client(leader, ClientRole::Writer)?;
    let mut last_a = None;
    for seq in 1..=3 {
        let req = put("t173-a", seq, &format!("t173/a{seq}"));
        recorded_put(&history, &req, on_leader.storage.put_concept(req.clone()))
            .await
            .map_err(|s| anyhow::anyhow!("A {seq}: {s:?}"))?;
        last_a = Some(req);
    }
    let last_a = last_a.expect("three writes");

    tracing::info!("--- client B writes through node 3, whose clock is two days ahead");
    let mut on_three = cluster.client(3, ClientRole::Writer)?;
    for seq in 1..=40 {
        let req = put("t173-b", seq, &format!("t173/b{seq:02}"));
        recorded_put(&history, &req, on_three.storage.put_concept(req.clone()))
            .await
            .map_err(|s| anyhow::anyhow!("B {seq} through node 3: {s:?}"))?;
    }

    tracing::info!("--- node 3 leads; B writes 40 more");
    let mut admin = cluster.client(leader, ClientRole::Admin)?;
    let moved = admin
        .cluster
        .transfer_leader(TransferLeaderRequest {
            target_node_id: Some(3),
        })
        .await?
        .into_inner();
    anyhow::ensure!(moved.new_leader_id == 3, "{moved:?}");
    for seq in 41..=80 {
        let req = put("t173-b", seq, &format!("t173/b{seq:02}"));
        recorded_put(&history, &req, on_three.storage.put_concept(req.clone()))
            .await
            .map_err(|s| anyhow::anyhow!("B {seq} on node 3: {s:?}"))?;
    }

    tracing::info!("--- A's retry of its last write is answered from its session");
    let mut on_three_a = cluster.client(3, ClientRole::Writer)?;
    let w = on_three_a
        .storage
        .put_concept(last_a.clone())
        .await?
        .into_inner();
    anyhow::ensure!(
        w.deduplicated,
        "client A's session was expired by node 3's clock: its retry applied again ({w:?})"
    );

    check_final_scan(&cluster, &history, "t173/").await?;
    cluster.finish();
    Ok(())
}
