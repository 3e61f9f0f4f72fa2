//! t35: a leader stopped with SIGTERM hands leadership over before it exits.

use std::sync::Arc;
use std::time::Duration;

use sutra_checker::History;
use sutra_cluster_tests::client::session;
use sutra_cluster_tests::{ClientRole, Cluster, ClusterOptions, check_scan, init_tracing, within};

/// SIGTERM to the leader: it hands leadership to another voter (its log says so), stops,
/// writes its final checkpoint and exits 0; one of the two others leads, writes go on, and
/// the old leader, restarted on the same data, rejoins as a follower with every
/// acknowledged write.
///
/// Why: a rolling restart or upgrade stops every node in turn; a graceful stop of the
/// leader must cost clients a handover, not an election timeout, and lose nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t35_sigterm_leader_hands_over() -> anyhow::Result<()> {
    init_tracing();
    within("t35", Duration::from_secs(55), run()).await
}

async fn run() -> anyhow::Result<()> {
    tracing::info!("--- start three nodes, 30 writes");
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let history = Arc::new(History::new());
    let mut writer = cluster
        .writer("t35", Duration::from_secs(10))?
        .with_history(history.clone());
    for i in 0..30 {
        writer
            .put(&format!("t35/a{i:03}"), format!("before {i}").as_bytes())
            .await
            .into_ok()?;
    }

    let old = cluster.leader(Duration::from_secs(10)).await?;
    tracing::info!(old, "--- SIGTERM the leader");
    let exit = cluster.terminate(old, Duration::from_secs(20)).await?;
    assert!(
        exit.success(),
        "leader {old} exited with {exit:?} on SIGTERM"
    );
    {
        let node = cluster.node(old)?;
        let process = node.process();
        assert!(
            process.log_contains("leadership handed over"),
            "no handover in the log:\n{}",
            process.log_tail(40)
        );
        assert!(
            process.log_contains("final checkpoint written"),
            "no final checkpoint:\n{}",
            process.log_tail(40)
        );
    }
    let others: Vec<u64> = cluster.ids().into_iter().filter(|&id| id != old).collect();
    let new = cluster
        .wait_for_leader(&others, Duration::from_secs(10))
        .await?;
    tracing::info!(old, new, "--- writes go on under the new leader");
    let mut last = 0;
    for i in 0..30 {
        last = writer
            .put(&format!("t35/b{i:03}"), format!("after {i}").as_bytes())
            .await
            .into_ok()?
            .version;
    }

    tracing::info!(
        old,
        "--- restart the old leader; it rejoins with everything"
    );
    cluster.restart(old)?;
    let all = cluster
        .read_all(
            old,
            ClientRole::Reader,
            "t35/",
            session(last),
            Duration::from_secs(20),
        )
        .await?;
    let report = check_scan(&history.ops(), &all)?;
    assert_eq!(report.acknowledged, 60, "{report:?}");
    let health = cluster.health(old).await?;
    assert_ne!(
        health.role, "leader",
        "the restarted node should rejoin as a follower: {health:?}"
    );

    cluster.finish();
    Ok(())
}
