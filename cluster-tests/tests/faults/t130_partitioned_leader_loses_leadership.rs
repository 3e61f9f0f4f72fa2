//! t130: a leader cut off from both followers (every link through a black hole) while
//! clients write: the majority elects a new leader and goes on, the old leader
//! acknowledges nothing, and after the partition heals it rejoins as a follower.

use std::time::{Duration, Instant};

use sutra_checker::{OpKind, Outcome, Value};
use sutra_cluster_tests::client::{linearizable, stale};
use sutra_cluster_tests::history;
use sutra_cluster_tests::{
    ClientRole, Cluster, ClusterOptions, Load, check_scan, init_tracing, wait_until, within,
};
use sutra_proto::storage::{Concept, GetConceptRequest, PutConceptRequest, WriteHeader};

/// Writers, the most writes each issues, and the longest the load runs.
const WRITERS: usize = 2;
const MAX_OPS: u64 = 3_000;
const MAX_LOAD: Duration = Duration::from_secs(30);
/// Bound on the majority electing a leader of its own after the cut.
const ELECTION_BOUND: Duration = Duration::from_secs(5);
/// Bound on the next acknowledged write after the cut: a writer whose attempt hangs on
/// the isolated leader gives up on it after `Writer::ATTEMPT_TIMEOUT` (5 s), then finds
/// the new leader.
const FAILOVER_BOUND: Duration = Duration::from_secs(12);
/// How long a direct call to the isolated leader may take before it counts as "no
/// answer" (which is a refusal: nothing was acknowledged).
const CALL_BOUND: Duration = Duration::from_secs(3);

/// Writer tasks put unique ids through every node (the SDK-like `Writer`: one sequence
/// per write kept across retries, following leader hints), recording each outcome.
/// The leader is isolated: every link to and from it becomes a black hole, so it and the
/// others see timeouts, not errors, while clients still reach it.
///
/// - The two others elect a leader among themselves within a few seconds and acknowledge
///   writes.
/// - The old leader acknowledges nothing: a LINEARIZABLE read and a write sent straight
///   to it fail or time out, repeatedly, while it is cut off.
/// - After healing, it is a follower of the new leader, every node applies the same
///   index and holds the same data, and every acknowledged write is there exactly once
///   (`check_scan`) on every node.
///
/// Why: RPO = 0 under a partition of the leader is a design promise (§7), and a cut-off
/// leader still believing it leads is where stale reads and lost writes come from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t130_partitioned_leader_loses_leadership() -> anyhow::Result<()> {
    init_tracing();
    within("t130", Duration::from_secs(58), run()).await
}

async fn run() -> anyhow::Result<()> {
    tracing::info!("--- start three nodes behind link proxies, and the writers");
    let cluster = Cluster::start(ClusterOptions {
        link_proxies: true,
        ..ClusterOptions::default()
    })
    .await?;
    let load = Load::start(&cluster, "t130", WRITERS, MAX_OPS, MAX_LOAD)?;
    let history = load.history().clone();
    wait_until(
        "30 acknowledged writes",
        Duration::from_secs(15),
        async || {
            let c = history.counts();
            anyhow::ensure!(c.acknowledged >= 30, "{c:?}");
            Ok(())
        },
    )
    .await?;

    let old = cluster.leader(Duration::from_secs(10)).await?;
    let others: Vec<u64> = cluster.ids().into_iter().filter(|&id| id != old).collect();
    let old_term = cluster.health(old).await?.term;
    tracing::info!(old, old_term, "--- isolate the leader {old}");
    let isolated_at = Instant::now();
    cluster.isolate(old)?;

    tracing::info!(?others, "--- the majority elects a leader of its own");
    let new = cluster.wait_for_leader(&others, ELECTION_BOUND).await?;
    let elected_after = isolated_at.elapsed();
    let new_term = cluster.health(new).await?.term;
    tracing::info!(new, new_term, ?elected_after, "new leader");
    assert!(new != old && new_term > old_term);

    tracing::info!("--- the new leader acknowledges writes");
    // At once when asked directly...
    let mut to_new = cluster.client(new, ClientRole::Writer)?;
    let (id, content) = ("t130/new-leader", b"majority".to_vec());
    let kind = OpKind::Write {
        value: Value::from(content.as_slice()),
    };
    let op = history.invoke_tagged("t130-new-leader", id, kind, "seq 1");
    let r = tokio::time::timeout(
        CALL_BOUND,
        to_new
            .storage
            .put_concept(put(id, "t130-new-leader", 1, content)),
    )
    .await;
    let r = match r {
        Ok(Ok(r)) => r.into_inner(),
        other => {
            history.complete(op, Outcome::Unknown)?;
            anyhow::bail!("the new leader {new} did not acknowledge a write: {other:?}");
        }
    };
    let version = Some(r.version);
    history.complete_with(op, Outcome::Ok { version }, history::reply(&r))?;
    tracing::info!(after = ?isolated_at.elapsed(), version = r.version, "the new leader acknowledged a write");
    // ...and the writers that were talking to the old leader move over.
    let first = wait_until(
        "a writer task's write acknowledged by the majority",
        FAILOVER_BOUND,
        async || {
            history
                .first_ack_after(isolated_at, |op| {
                    op.key.starts_with("t130/w") && op.reply.served_by != Some(old)
                })
                .ok_or_else(|| anyhow::anyhow!("{:?}", history.counts()))
        },
    )
    .await?;
    let completed = first.complete.expect("acknowledged ops are completed");
    let failover = history
        .instant_of(completed)
        .saturating_duration_since(isolated_at);
    tracing::info!(?failover, op = %first, "a writer task moved over to the new leader");

    tracing::info!(
        old,
        "--- the old leader refuses reads and writes while cut off"
    );
    let mut reader = cluster.client(old, ClientRole::Reader)?;
    let mut writer = cluster.client(old, ClientRole::Writer)?;
    for round in 0..3 {
        let h = cluster.health(old).await?;
        tracing::info!(round, role = %h.role, term = h.term, leader = h.leader_id, "the old leader's view");
        let read = tokio::time::timeout(
            CALL_BOUND,
            reader.storage.get_concept(GetConceptRequest {
                read: linearizable(),
                id: first.key.clone(),
            }),
        )
        .await;
        match read {
            Err(_) => tracing::info!(round, "LINEARIZABLE read on the old leader: no answer"),
            Ok(Err(s)) => {
                tracing::info!(round, code = ?s.code(), message = s.message(), "LINEARIZABLE read on the old leader refused");
                assert!(
                    matches!(
                        s.code(),
                        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
                    ),
                    "{s:?}"
                );
            }
            Ok(Ok(r)) => panic!("the isolated old leader served a LINEARIZABLE read: {r:?}"),
        }
        // A write straight to the old leader, recorded as any other (its outcome is
        // unknown to a client that gets no answer; it must never be acknowledged).
        let id = format!("t130/isolated-{round}");
        let content = b"written to the isolated leader".to_vec();
        let kind = OpKind::Write {
            value: Value::from(content.as_slice()),
        };
        let op = history.invoke_tagged(
            "t130-direct",
            id.as_str(),
            kind,
            format!("seq {}", round + 1),
        );
        let put = tokio::time::timeout(
            CALL_BOUND,
            writer
                .storage
                .put_concept(put(&id, "t130-direct", round + 1, content)),
        )
        .await;
        match put {
            Err(_) => {
                tracing::info!(round, "write to the old leader: no answer");
                history.complete(op, Outcome::Unknown)?;
            }
            Ok(Err(s)) => {
                tracing::info!(round, code = ?s.code(), message = s.message(), "write to the old leader refused");
                history.complete(op, Outcome::Unknown)?;
            }
            Ok(Ok(r)) => panic!("the isolated old leader acknowledged a write: {r:?}"),
        }
    }

    tracing::info!("--- heal; the old leader rejoins as a follower");
    cluster.heal();
    let healed_at = Instant::now();
    wait_until(
        "the old leader following the new one",
        Duration::from_secs(10),
        async || {
            let leader = cluster.leader(Duration::from_secs(2)).await?;
            let h = cluster.health(old).await?;
            anyhow::ensure!(
                h.role == "follower" && h.leader_id == leader && leader != old,
                "old leader {old}: role {}, leader {}, term {}; leader by majority {leader}",
                h.role,
                h.leader_id,
                h.term
            );
            Ok(())
        },
    )
    .await?;
    tracing::info!(after = ?healed_at.elapsed(), "old leader follows");
    wait_until(
        "10 acknowledged writes after healing",
        Duration::from_secs(15),
        async || {
            let n = history.acks_after(healed_at);
            anyhow::ensure!(n >= 10, "{n}; {:?}", history.counts());
            Ok(())
        },
    )
    .await?;
    load.stop().await?;
    let counts = history.counts();
    tracing::info!(?counts, "writers stopped");

    tracing::info!("--- every node applies the same index");
    let applied = wait_until(
        "every node at the same applied index",
        Duration::from_secs(15),
        async || {
            let mut seen = Vec::new();
            for id in cluster.ids() {
                seen.push(cluster.health(id).await?.applied_index);
            }
            anyhow::ensure!(seen.iter().all(|&a| a == seen[0]), "{seen:?}");
            Ok(seen[0])
        },
    )
    .await?;
    tracing::info!(applied, "converged");

    tracing::info!("--- same data everywhere, every acknowledged write there once");
    let ops = history.ops();
    let reference = cluster
        .read_all(
            new,
            ClientRole::Reader,
            "t130/",
            stale(),
            Duration::from_secs(10),
        )
        .await?;
    let report = check_scan(&ops, &reference)?;
    tracing::info!(?report, "checked on node {new}");
    assert_eq!(report.acknowledged, counts.acknowledged, "{report:?}");
    for id in cluster.ids() {
        let held = cluster
            .read_all(
                id,
                ClientRole::Reader,
                "t130/",
                stale(),
                Duration::from_secs(10),
            )
            .await?;
        assert!(
            held == reference,
            "node {id} holds other data than node {new} at the same applied index"
        );
    }
    assert!(
        (0..3).all(|r| !reference.contains_key(&format!("t130/isolated-{r}"))),
        "a write proposed on the isolated leader survived"
    );

    cluster.finish();
    Ok(())
}

fn put(id: &str, client_id: &str, sequence: u64, content: Vec<u8>) -> PutConceptRequest {
    PutConceptRequest {
        header: Some(WriteHeader {
            client_id: client_id.into(),
            sequence,
        }),
        concept: Some(Concept {
            id: id.into(),
            content,
            ..Concept::default()
        }),
        expected_version: None,
    }
}
