//! t36: a node takes writes the moment it says it leads, before its first round of
//! AppendEntries has come back from the followers.

use std::time::Duration;

use sutra_cluster_tests::client::linearizable;
use sutra_cluster_tests::{ClientRole, Cluster, ClusterOptions, init_tracing, within};
use sutra_proto::cluster::TransferLeaderRequest;
use sutra_proto::storage::{Concept, GetConceptRequest, PutConceptRequest, WriteHeader};

const ROUNDS: u64 = 20;

/// Leadership is handed round the three nodes twenty times. Each time the transfer call
/// returns (the old leader has seen the new one win its election), a write goes straight
/// to the new leader with no client-side retry: it must be acknowledged, not refused as
/// "not the leader" by a leader whose quorum lease has not started yet. Every write is
/// then read back, linearizably, once.
///
/// Why: a client that asks who leads and writes there must not be told the node it was
/// pointed at has no leader; the first writes after a failover are the ones that matter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t36_new_leader_takes_writes_at_once() -> anyhow::Result<()> {
    init_tracing();
    within("t36", Duration::from_secs(50), run()).await
}

async fn run() -> anyhow::Result<()> {
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let mut leader = cluster.leader(Duration::from_secs(15)).await?;
    let ids = cluster.ids();
    let mut versions = Vec::new();
    for round in 0..ROUNDS {
        let target = ids[(ids.iter().position(|&id| id == leader).unwrap_or(0) + 1) % ids.len()];
        // Connections to the target are open before the transfer, so the write is not
        // delayed by a TLS handshake.
        let mut to = cluster.client(target, ClientRole::Writer)?;
        to.storage
            .get_concept(GetConceptRequest {
                read: None,
                id: "t36/warm".into(),
            })
            .await
            .ok();
        let mut admin = cluster.client(leader, ClientRole::Admin)?;
        let moved = admin
            .cluster
            .transfer_leader(TransferLeaderRequest {
                target_node_id: Some(target),
            })
            .await?
            .into_inner();
        assert_eq!(moved.new_leader_id, target, "round {round}");
        let put = to
            .storage
            .put_concept(PutConceptRequest {
                header: Some(WriteHeader {
                    client_id: "t36".into(),
                    sequence: round + 1,
                }),
                concept: Some(Concept {
                    id: format!("t36/k{round}"),
                    content: format!("round {round}").into_bytes(),
                    ..Concept::default()
                }),
                expected_version: None,
            })
            .await;
        let put = match put {
            Ok(r) => r.into_inner(),
            Err(s) => panic!("round {round}: new leader {target} refused a write: {s:?}"),
        };
        tracing::info!(
            round,
            from = leader,
            to = target,
            version = put.version,
            "written on the new leader"
        );
        versions.push(put.version);
        leader = target;
    }
    let mut reader = cluster.client(leader, ClientRole::Reader)?;
    for (round, version) in versions.iter().enumerate() {
        let got = reader
            .storage
            .get_concept(GetConceptRequest {
                read: linearizable(),
                id: format!("t36/k{round}"),
            })
            .await?
            .into_inner()
            .concept;
        assert!(
            got.as_ref().is_some_and(
                |c| c.version == *version && c.content == format!("round {round}").into_bytes()
            ),
            "round {round}: {got:?}"
        );
    }
    cluster.finish();
    Ok(())
}
