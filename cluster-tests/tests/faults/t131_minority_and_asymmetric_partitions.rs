//! t131: partitions that leave a majority with the leader: a follower cut off alone, a
//! one-way cut from the leader to a follower, and a slow link. The cluster keeps taking
//! writes through each, and the follower catches up once the link heals.

use std::time::{Duration, Instant};

use sutra_checker::{History, OpKind, Outcome, Value};
use sutra_cluster_tests::client::{linearizable, stale};
use sutra_cluster_tests::history;
use sutra_cluster_tests::{
    ClientRole, Cluster, ClusterOptions, Direction, Load, check_scan, init_tracing, wait_until,
    within,
};
use sutra_proto::storage::{Concept, GetConceptRequest, PutConceptRequest, WriteHeader};

/// Writers, the most writes each issues, and the longest the load runs.
const WRITERS: usize = 2;
const MAX_OPS: u64 = 5_000;
const MAX_LOAD: Duration = Duration::from_secs(40);
/// How long each fault is held: several election timeouts (300–600 ms), so a follower
/// that would disrupt the leader has every chance to.
const HOLD: Duration = Duration::from_secs(3);
/// Bound on the first acknowledged write after a fault starts.
const WRITES_GO_ON_BOUND: Duration = Duration::from_secs(5);
/// The delay on the slow link, each way.
const SLOW: Duration = Duration::from_millis(50);

/// A load of unique puts through every node runs throughout (the SDK-like `Writer`).
///
/// 1. A follower is isolated (every link to and from it a black hole) for a few election
///    timeouts: writes go on through the leader and the other follower; the cut-off
///    follower falls behind. After healing it catches up, and (pre-vote) nobody's term
///    moved: it never disrupted the leader.
/// 2. One-way cut: the leader's messages never reach a follower (its AppendEntries and
///    its answers to that follower's requests are discarded) while the follower's reach
///    the leader. The follower stops hearing a leader and tries to get elected, but its
///    pre-vote finds no majority: the other follower still hears the leader. So the
///    leader and term stay, and writes go on; the follower falls behind and catches up
///    once healed.
/// 3. 50 ms each way on both links between the leader and a follower: no election,
///    writes through that follower (relayed to the leader) and LINEARIZABLE reads on it
///    work and see the latest write.
///
/// Finally every node applies the same index, holds the same data, and every
/// acknowledged write is there exactly once (`check_scan`).
///
/// Why: §7 promises RPO = 0 and availability under a partition of any minority; an
/// asymmetric link is the classic way a follower disrupts a healthy leader without
/// pre-vote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t131_minority_and_asymmetric_partitions() -> anyhow::Result<()> {
    init_tracing();
    within("t131", Duration::from_secs(58), run()).await
}

async fn run() -> anyhow::Result<()> {
    tracing::info!("--- start three nodes behind link proxies, and the writers");
    let cluster = Cluster::start(ClusterOptions {
        link_proxies: true,
        ..ClusterOptions::default()
    })
    .await?;
    let load = Load::start(&cluster, "t131", WRITERS, MAX_OPS, MAX_LOAD)?;
    let history = load.history().clone();
    wait_until(
        "20 acknowledged writes",
        Duration::from_secs(15),
        async || {
            let c = history.counts();
            anyhow::ensure!(c.acknowledged >= 20, "{c:?}");
            Ok(())
        },
    )
    .await?;
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let term = cluster.health(leader).await?.term;
    let followers: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|&id| id != leader)
        .collect();
    tracing::info!(leader, term, ?followers, "steady");

    {
        let f = followers[0];
        tracing::info!(f, "--- 1. isolate follower {f}");
        let at = Instant::now();
        cluster.isolate(f)?;
        hold_while_writes_go_on(&history, at).await?;
        let behind = cluster.health(f).await?.applied_index;
        let ahead = cluster.health(leader).await?.applied_index;
        tracing::info!(f, behind, ahead, "isolated follower fell behind");
        assert!(
            behind < ahead,
            "follower {f} applied {behind}, leader {ahead}"
        );

        tracing::info!(f, "--- heal: follower {f} catches up, nobody's term moved");
        cluster.heal();
        let target = cluster.health(leader).await?.applied_index;
        cluster
            .wait_applied(f, target, Duration::from_secs(10))
            .await?;
        assert_terms(&cluster, leader, term).await?;
    }

    {
        let f = followers[1];
        tracing::info!(
            leader,
            f,
            "--- 2. one-way cut: {leader}'s messages never reach {f}"
        );
        let at = Instant::now();
        cluster.cut_one_way(leader, f)?;
        let before = cluster.health(f).await?.applied_index;
        hold_while_writes_go_on(&history, at).await?;
        let h = cluster.health(f).await?;
        let ahead = cluster.health(leader).await?.applied_index;
        tracing::info!(f, role = %h.role, term = h.term, leader = h.leader_id, applied = h.applied_index, before, ahead, "the cut-off follower's view");
        assert!(
            h.applied_index < ahead,
            "follower {f} applied {} though nothing reaches it; leader {ahead}",
            h.applied_index
        );
        let link = cluster.link(leader, f)?.stats();
        tracing::info!(?link, "link {leader}->{f}");
        assert!(link.discarded_bytes > 0, "{link:?}");
        // Pre-vote: the follower could not get a majority to agree it may start an
        // election (the other follower hears the leader), so no term moved anywhere.
        assert_terms(&cluster, leader, term).await?;

        tracing::info!(f, "--- heal: follower {f} catches up");
        cluster.heal();
        let target = cluster.health(leader).await?.applied_index;
        cluster
            .wait_applied(f, target, Duration::from_secs(10))
            .await?;
        assert_terms(&cluster, leader, term).await?;
    }

    {
        let f = followers[0];
        tracing::info!(
            leader,
            f,
            ?SLOW,
            "--- 3. both links {leader}<->{f} slow, each way"
        );
        for (a, b) in [(leader, f), (f, leader)] {
            let link = cluster.link(a, b)?;
            link.delay(Direction::Upstream, SLOW);
            link.delay(Direction::Downstream, SLOW);
        }
        let at = Instant::now();
        hold_while_writes_go_on(&history, at).await?;
        // A write through the slow follower is relayed to the leader over the slow link,
        // and a LINEARIZABLE read there (ReadIndex from the leader over the same link)
        // sees it.
        let mut w = cluster.client(f, ClientRole::Writer)?;
        let (id, content) = ("t131/through-slow-follower", b"slow".to_vec());
        let kind = OpKind::Write {
            value: Value::from(content.as_slice()),
        };
        let op = history.invoke_tagged("t131-direct", id, kind, "seq 1");
        let started = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            w.storage.put_concept(put(id, content.clone())),
        )
        .await;
        let r = match r {
            Ok(Ok(r)) => r.into_inner(),
            other => {
                history.complete(op, Outcome::Unknown)?;
                anyhow::bail!("a write through the slow follower {f} failed: {other:?}");
            }
        };
        let version = Some(r.version);
        history.complete_with(op, Outcome::Ok { version }, history::reply(&r))?;
        let write_took = started.elapsed();
        let mut rd = cluster.client(f, ClientRole::Reader)?;
        let started = Instant::now();
        let got = tokio::time::timeout(
            Duration::from_secs(5),
            rd.storage.get_concept(GetConceptRequest {
                read: linearizable(),
                id: id.into(),
            }),
        )
        .await??
        .into_inner();
        let read_took = started.elapsed();
        tracing::info!(
            ?write_took,
            ?read_took,
            version = r.version,
            "write and LINEARIZABLE read through the slow follower"
        );
        assert_eq!(
            got.concept.map(|c| (c.content, c.version)),
            Some((content, r.version))
        );
        assert!(
            write_took >= 2 * SLOW && read_took >= 2 * SLOW,
            "the delay did not apply"
        );
        assert_terms(&cluster, leader, term).await?;
        cluster.heal();
    }

    tracing::info!("--- stop the writers; every node converges");
    let healed_at = Instant::now();
    wait_until(
        "10 acknowledged writes after healing",
        Duration::from_secs(10),
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
            leader,
            ClientRole::Reader,
            "t131/",
            stale(),
            Duration::from_secs(10),
        )
        .await?;
    let report = check_scan(&ops, &reference)?;
    tracing::info!(?report, "checked");
    assert_eq!(report.acknowledged, counts.acknowledged, "{report:?}");
    for id in cluster.ids() {
        let held = cluster
            .read_all(
                id,
                ClientRole::Reader,
                "t131/",
                stale(),
                Duration::from_secs(10),
            )
            .await?;
        assert!(
            held == reference,
            "node {id} holds other data than node {leader}"
        );
    }

    cluster.finish();
    Ok(())
}

/// Holds the fault started at `at` for [`HOLD`], requiring writes to go on: the first
/// acknowledgement within [`WRITES_GO_ON_BOUND`], and 20 in all.
async fn hold_while_writes_go_on(history: &History, at: Instant) -> anyhow::Result<()> {
    wait_until(
        "a write acknowledged under the fault",
        WRITES_GO_ON_BOUND,
        async || {
            anyhow::ensure!(history.acks_after(at) >= 1, "{:?}", history.counts());
            Ok(())
        },
    )
    .await?;
    let first = history
        .first_ack_after(at, |_| true)
        .and_then(|op| op.complete)
        .expect("one acknowledged");
    let after = history.instant_of(first).saturating_duration_since(at);
    tracing::info!(?after, "writes go on");
    wait_until(
        "the fault held, with 20 writes acknowledged under it",
        HOLD + Duration::from_secs(10),
        async || {
            let n = history.acks_after(at);
            anyhow::ensure!(
                n >= 20 && at.elapsed() >= HOLD,
                "{n} acks in {:?}",
                at.elapsed()
            );
            Ok(())
        },
    )
    .await
}

/// Every node is in `term`, and `leader` leads it.
async fn assert_terms(cluster: &Cluster, leader: u64, term: u64) -> anyhow::Result<()> {
    let now = cluster.leader(Duration::from_secs(5)).await?;
    let mut terms = Vec::new();
    for id in cluster.ids() {
        terms.push((id, cluster.health(id).await?.term));
    }
    tracing::info!(now, ?terms, "leader and terms");
    anyhow::ensure!(
        now == leader && terms.iter().all(|&(_, t)| t == term),
        "expected leader {leader} in term {term} on every node; leader {now}, terms {terms:?}"
    );
    Ok(())
}

fn put(id: &str, content: Vec<u8>) -> PutConceptRequest {
    PutConceptRequest {
        header: Some(WriteHeader {
            client_id: "t131-direct".into(),
            sequence: 1,
        }),
        concept: Some(Concept {
            id: id.into(),
            content,
            ..Concept::default()
        }),
        expected_version: None,
    }
}
