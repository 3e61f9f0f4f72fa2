//! t36: a node takes writes the moment it says it leads, before its first round of
//! AppendEntries has come back from the followers, whether they are sent to it or relayed
//! to it by a follower.

use std::time::Duration;

use sutra_cluster_tests::client::NodeClient;
use sutra_cluster_tests::client::{linearizable, stale};
use sutra_cluster_tests::{ClientRole, Cluster, ClusterOptions, Direction, init_tracing, within};
use sutra_proto::cluster::TransferLeaderRequest;
use sutra_proto::storage::{Concept, GetConceptRequest, PutConceptRequest, WriteHeader};

const ROUNDS: u64 = 20;

fn put(client_id: &str, round: u64, key: &str) -> PutConceptRequest {
    PutConceptRequest {
        header: Some(WriteHeader {
            client_id: client_id.into(),
            sequence: round + 1,
        }),
        concept: Some(Concept {
            id: format!("t36/{key}{round}"),
            content: format!("round {round}").into_bytes(),
            ..Concept::default()
        }),
        expected_version: None,
    }
}

/// Writer clients of `target` and of `old`, with their connections open (a STALE read
/// each), so the writes after the transfer are not delayed by a TLS handshake.
async fn warm_writers(cluster: &Cluster, target: u64, old: u64) -> anyhow::Result<[NodeClient; 2]> {
    let mut clients = [
        cluster.client(target, ClientRole::Writer)?,
        cluster.client(old, ClientRole::Writer)?,
    ];
    for c in &mut clients {
        c.storage
            .get_concept(GetConceptRequest {
                read: stale(),
                id: "t36/warm".into(),
            })
            .await
            .ok();
    }
    Ok(clients)
}

/// Asks the leader `old` to hand leadership to `target`; returns once it has.
async fn transfer(cluster: &Cluster, old: u64, target: u64) -> anyhow::Result<()> {
    let moved = cluster
        .client(old, ClientRole::Admin)?
        .cluster
        .transfer_leader(TransferLeaderRequest {
            target_node_id: Some(target),
        })
        .await?
        .into_inner();
    anyhow::ensure!(
        moved.new_leader_id == target,
        "asked for {target}, got {}",
        moved.new_leader_id
    );
    Ok(())
}

/// Leadership is handed round the three nodes twenty times. Each time the transfer call
/// returns (the old leader has seen the new one win its election), a write goes straight
/// to the new leader and another through the old leader, which relays it, both with no
/// client-side retry: each must be acknowledged, not refused as "not the leader" by a
/// leader whose quorum lease has not started yet. The direct writes are then read back,
/// linearizably.
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
        let [mut to, mut via] = warm_writers(&cluster, target, leader).await?;
        transfer(&cluster, leader, target).await?;
        // One write straight to the new leader, one relayed to it by the old leader.
        let (direct, relayed) = tokio::join!(
            to.storage.put_concept(put("t36", round, "k")),
            via.storage.put_concept(put("t36-relay", round, "r")),
        );
        let put = match direct {
            Ok(r) => r.into_inner(),
            Err(s) => panic!("round {round}: new leader {target} refused a write: {s:?}"),
        };
        if let Err(s) = relayed {
            panic!("round {round}: a write relayed by {leader} to {target} was refused: {s:?}");
        }
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

/// How late the followers' answers reach the new leader in the slow-acknowledgment test:
/// many round trips on loopback, but under the harness's 50 ms heartbeat, which is also
/// how long a leader waits for a heartbeat's answer.
const SLOW_ACK: Duration = Duration::from_millis(40);

/// The answers to the next leader's messages (its votes, then its first AppendEntries
/// acknowledgments) are held 40 ms on both of its outgoing peer links, so once it has won
/// its election it goes 40 ms without a quorum acknowledgment. Leadership
/// is transferred to it; as soon as the transfer returns, a write is sent to it directly
/// and another through the old leader, which relays it. Both must be acknowledged (they
/// wait for the first acknowledgment instead of being refused), and both are then read
/// back.
///
/// Why: the first test hits that window only by chance; this one opens it wide, on both
/// the direct and the relayed write paths, so a refusal there cannot go unnoticed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t36_writes_wait_for_a_slow_first_acknowledgment() -> anyhow::Result<()> {
    init_tracing();
    within("t36 slow ack", Duration::from_secs(50), run_slow_ack()).await
}

async fn run_slow_ack() -> anyhow::Result<()> {
    let cluster = Cluster::start(ClusterOptions {
        link_proxies: true,
        ..ClusterOptions::default()
    })
    .await?;
    let old = cluster.leader(Duration::from_secs(15)).await?;
    let ids = cluster.ids();
    let target = ids
        .iter()
        .copied()
        .find(|&id| id != old)
        .expect("a follower");
    let [mut to, mut via] = warm_writers(&cluster, target, old).await?;
    for &peer in ids.iter().filter(|&&id| id != target) {
        cluster
            .link(target, peer)?
            .delay(Direction::Downstream, SLOW_ACK);
    }
    tracing::info!(
        old,
        target,
        "--- answers to {target} held {SLOW_ACK:?}; transfer"
    );
    transfer(&cluster, old, target).await?;
    let (direct, relayed) = tokio::join!(
        to.storage.put_concept(put("t36-slow", 0, "slow-k")),
        via.storage.put_concept(put("t36-slow-relay", 0, "slow-r")),
    );
    let direct = direct
        .unwrap_or_else(|s| panic!("new leader {target} refused a write: {s:?}"))
        .into_inner();
    let relayed = relayed
        .unwrap_or_else(|s| panic!("a write relayed by {old} to {target} was refused: {s:?}"))
        .into_inner();
    cluster.heal();
    let mut reader = cluster.client(target, ClientRole::Reader)?;
    for (key, version) in [
        ("t36/slow-k0", direct.version),
        ("t36/slow-r0", relayed.version),
    ] {
        let got = reader
            .storage
            .get_concept(GetConceptRequest {
                read: linearizable(),
                id: key.into(),
            })
            .await?
            .into_inner()
            .concept;
        assert!(
            got.as_ref().is_some_and(|c| c.version == version),
            "{key}: {got:?}"
        );
    }
    cluster.finish();
    Ok(())
}
