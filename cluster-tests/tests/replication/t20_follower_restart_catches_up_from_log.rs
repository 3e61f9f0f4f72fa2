//! t20: a follower that was down catches up from the leader's log.

use std::sync::Arc;
use std::time::Duration;

use sutra_checker::History;
use sutra_cluster_tests::client::session;
use sutra_cluster_tests::{ClientRole, Cluster, ClusterOptions, check_scan, init_tracing, within};

/// A follower is SIGKILLed, the two others acknowledge 100 more writes, and the follower
/// is started again on its data directory: it must then serve every write, old and new
/// (SESSION read at the last acknowledged version). No snapshot exists anywhere (the
/// snapshot interval is far away), so the missing entries can only have come from the
/// leader's log, which is what this test is about.
///
/// Why: a restarted follower must rejoin without operator action and without losing
/// what it had (its own log and state machine) or missing what it did not see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t20_follower_restart_catches_up_from_log() -> anyhow::Result<()> {
    init_tracing();
    within("t20", Duration::from_secs(50), run()).await
}

async fn run() -> anyhow::Result<()> {
    tracing::info!("--- start three nodes, 20 writes everyone sees");
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let history = Arc::new(History::new());
    let mut writer = cluster
        .writer("t20", Duration::from_secs(10))?
        .with_history(history.clone());
    let mut last = 0;
    for i in 0..20 {
        last = writer
            .put(&format!("t20/a{i:03}"), format!("before {i}").as_bytes())
            .await
            .into_ok()?
            .version;
    }
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let follower = *cluster
        .ids()
        .iter()
        .find(|&&id| id != leader)
        .expect("three nodes have a follower");
    let applied = cluster.health(leader).await?.applied_index;
    cluster
        .wait_applied(follower, applied, Duration::from_secs(10))
        .await?;

    tracing::info!(follower, "--- SIGKILL follower {follower}");
    cluster.kill(follower)?;

    tracing::info!("--- 100 more writes while it is down");
    for i in 0..100 {
        last = writer
            .put(
                &format!("t20/b{i:03}"),
                format!("while down {i}").as_bytes(),
            )
            .await
            .into_ok()?
            .version;
    }
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let leader_status = cluster.status(leader).await?;
    assert_eq!(
        leader_status.snapshot_index, 0,
        "no snapshot was expected at this size; the test means log catch-up"
    );

    tracing::info!(
        follower,
        "--- restart follower {follower}; it must have everything"
    );
    cluster.restart(follower)?;
    let all = cluster
        .read_all(
            follower,
            ClientRole::Reader,
            "t20/",
            session(last),
            Duration::from_secs(20),
        )
        .await?;
    let report = check_scan(&history.ops(), &all)?;
    assert_eq!(report.acknowledged, 120, "{report:?}");
    let status = cluster.status(follower).await?;
    assert_eq!(
        status.snapshot_index, 0,
        "follower {follower} caught up by snapshot although the log was complete"
    );
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    tracing::info!(leader, follower, "caught up from the log");

    cluster.finish();
    Ok(())
}
