//! t80: a BOUNDED read on a follower cut off from every other node is refused once the
//! bound has passed, and served again once it hears from a leader.

use std::time::Duration;

use sutra_cluster_tests::{ClientRole, Cluster, ClusterOptions, init_tracing, wait_until, within};
use sutra_proto::storage::{
    Concept, Consistency, GetConceptRequest, PutConceptRequest, ReadOptions, WriteHeader,
};

fn bounded(ms: u64) -> Option<ReadOptions> {
    Some(ReadOptions {
        consistency: Consistency::Bounded as i32,
        session_index: 0,
        max_staleness_ms: ms,
    })
}

fn stale() -> Option<ReadOptions> {
    Some(ReadOptions {
        consistency: Consistency::Stale as i32,
        session_index: 0,
        max_staleness_ms: 0,
    })
}

/// A follower serves BOUNDED(300 ms) reads while the leader's appends reach it. Then both
/// other nodes are paused (SIGSTOP): within a few seconds the same read is refused with
/// UNAVAILABLE (its data may be older than the bound), while a STALE read still answers
/// with what it has. After SIGCONT, BOUNDED reads are served again.
///
/// Why: a client that asks for a staleness bound must never get older data as if it were
/// within it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t80_bounded_read_refused_when_cut_off() -> anyhow::Result<()> {
    init_tracing();
    within("t80", Duration::from_secs(50), run()).await
}

async fn run() -> anyhow::Result<()> {
    tracing::info!("--- start three nodes, one write");
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader(Duration::from_secs(15)).await?;
    let follower = *cluster
        .ids()
        .iter()
        .find(|&&id| id != leader)
        .expect("a follower");
    let others: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|&id| id != follower)
        .collect();
    let mut w = cluster.client(leader, ClientRole::Writer)?;
    w.storage
        .put_concept(PutConceptRequest {
            header: Some(WriteHeader {
                client_id: "t80".into(),
                sequence: 1,
            }),
            concept: Some(Concept {
                id: "t80/a".into(),
                content: b"a".to_vec(),
                ..Concept::default()
            }),
            expected_version: None,
        })
        .await?;
    let r = cluster.client(follower, ClientRole::Reader)?;
    let get = |read| GetConceptRequest {
        read,
        id: "t80/a".into(),
    };

    tracing::info!(
        follower,
        "--- BOUNDED(300 ms) reads are served while the leader is in touch"
    );
    wait_until(
        "a bounded read served with the write",
        Duration::from_secs(10),
        async || {
            let resp = r
                .storage
                .clone()
                .get_concept(get(bounded(300)))
                .await?
                .into_inner();
            anyhow::ensure!(resp.concept.is_some(), "not applied yet");
            Ok(())
        },
    )
    .await?;

    tracing::info!(
        ?others,
        "--- pause every other node: the follower is cut off"
    );
    for &id in &others {
        cluster.pause(id)?;
    }
    let refused = wait_until(
        "the bounded read refused",
        Duration::from_secs(10),
        async || match r.storage.clone().get_concept(get(bounded(300))).await {
            Ok(_) => anyhow::bail!("still served"),
            Err(s) => Ok(s),
        },
    )
    .await?;
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    let stale_read = r
        .storage
        .clone()
        .get_concept(get(stale()))
        .await?
        .into_inner();
    assert_eq!(
        stale_read.concept.map(|c| c.content),
        Some(b"a".to_vec()),
        "STALE reads what it has"
    );

    tracing::info!("--- resume: bounded reads are served again");
    for &id in &others {
        cluster.resume(id)?;
    }
    wait_until(
        "the bounded read served again",
        Duration::from_secs(15),
        async || {
            r.storage.clone().get_concept(get(bounded(300))).await?;
            Ok(())
        },
    )
    .await?;

    cluster.finish();
    Ok(())
}
