//! t21: a follower too far behind for the log catches up by installing a snapshot.

use std::sync::Arc;
use std::time::Duration;

use sutra_checker::History;
use sutra_cluster_tests::client::session;
use sutra_cluster_tests::{
    ClientRole, Cluster, ClusterOptions, check_scan, http, init_tracing, wait_until, within,
};
use sutra_proto::storage::FlushRequest;

/// Nodes snapshot every 50 entries and keep 10 behind. A follower is SIGKILLed, 300
/// writes are acknowledged, and `Flush` on the leader snapshots and purges the log; the
/// test asserts the purge went past the follower's last entry, so the log alone cannot
/// bring it back. Restarted, the follower must converge to every write (SESSION read at
/// the last version) and report a snapshot at least as recent as the leader's was when
/// it restarted: it installed one.
///
/// The follower counts the install in `sutra_snapshots_installed_total` and the nodes
/// that sent it in `sutra_snapshots_sent_total`.
///
/// Why: a node that was away long (or is new) can only rejoin through snapshot
/// transfer; the log is purged behind snapshots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t21_far_behind_follower_catches_up_by_snapshot() -> anyhow::Result<()> {
    init_tracing();
    within("t21", Duration::from_secs(55), run()).await
}

async fn run() -> anyhow::Result<()> {
    tracing::info!("--- start three nodes that snapshot every 50 entries, keeping 10");
    let cluster = Cluster::start(ClusterOptions {
        snapshot_every_entries: Some(50),
        log_keep_entries: Some(10),
        metrics_listen: true,
        ..ClusterOptions::default()
    })
    .await?;
    let history = Arc::new(History::new());
    let mut writer = cluster
        .writer("t21", Duration::from_secs(10))?
        .with_history(history.clone());
    let mut last = 0;
    for i in 0..20 {
        last = writer
            .put(&format!("t21/a{i:03}"), format!("before {i}").as_bytes())
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
    let follower_last_log = cluster.status(follower).await?.last_log_index;

    tracing::info!(
        follower,
        follower_last_log,
        "--- SIGKILL follower {follower}"
    );
    cluster.kill(follower)?;

    tracing::info!("--- 300 writes while it is down, from four writers at once");
    last = last.max(cluster.write_many(&history, "t21/b", 300, 4).await?);

    tracing::info!("--- Flush on the leader: snapshot, purge the log");
    let flush = cluster
        .call_leader(
            ClientRole::Admin,
            "Flush on the leader",
            Duration::from_secs(30),
            async |mut c| {
                c.storage
                    .flush(FlushRequest {})
                    .await
                    .map(|r| r.into_inner())
            },
        )
        .await?;
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let leader_status = cluster.status(leader).await?;
    tracing::info!(
        ?flush,
        snapshot_index = leader_status.snapshot_index,
        "flushed"
    );
    assert!(
        flush.checkpoint_index > follower_last_log,
        "the leader's log was purged up to {} only, the follower's last entry is {follower_last_log}: it could still catch up from the log",
        flush.checkpoint_index
    );
    assert!(
        leader_status.snapshot_index > follower_last_log,
        "leader snapshot {} does not cover the follower's gap after {follower_last_log}",
        leader_status.snapshot_index
    );
    let snapshot_at_restart = leader_status.snapshot_index;

    tracing::info!(
        follower,
        "--- restart follower {follower}; it must converge"
    );
    cluster.restart(follower)?;
    let all = cluster
        .read_all(
            follower,
            ClientRole::Reader,
            "t21/",
            session(last),
            Duration::from_secs(30),
        )
        .await?;
    let report = check_scan(&history.ops(), &all)?;
    assert_eq!(report.acknowledged, 320, "{report:?}");
    let installed = wait_until(
        "the follower reporting the installed snapshot",
        Duration::from_secs(10),
        async || {
            let s = cluster.status(follower).await?;
            anyhow::ensure!(
                s.snapshot_index >= snapshot_at_restart,
                "follower snapshot_index {} < leader's {snapshot_at_restart} at restart",
                s.snapshot_index
            );
            Ok(s.snapshot_index)
        },
    )
    .await?;
    tracing::info!(
        follower,
        installed,
        snapshot_at_restart,
        "caught up by snapshot"
    );
    let metric = |text: &str, name: &str| http::sample(text, name).unwrap_or(0.0);
    let installs = metric(
        &http::scrape(&cluster, follower).await?,
        "sutra_snapshots_installed_total",
    );
    anyhow::ensure!(installs >= 1.0, "the follower counted {installs} installs");
    let mut sent = 0.0;
    for id in cluster.ids().into_iter().filter(|&id| id != follower) {
        sent += metric(
            &http::scrape(&cluster, id).await?,
            "sutra_snapshots_sent_total",
        );
    }
    anyhow::ensure!(sent >= 1.0, "the other nodes counted {sent} snapshots sent");

    cluster.finish();
    Ok(())
}
