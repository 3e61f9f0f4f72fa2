//! t40: every node dies at once, without a graceful stop; nothing acknowledged is lost.

use std::sync::Arc;
use std::time::Duration;

use sutra_checker::History;
use sutra_cluster_tests::{Cluster, ClusterOptions, check_scan, init_tracing, within};

/// 100 writes are acknowledged, then all three nodes are SIGKILLed (no checkpoint, no
/// leader hand-over) and started again on their data directories. Once they elect a
/// leader, a LINEARIZABLE scan on it must return every acknowledged write with its value
/// and version.
///
/// Why: RPO = 0. A write is acknowledged only once it is fsynced in a quorum's Raft
/// logs; the log, replayed on restart, is the write-ahead log, so a power cut of the
/// whole cluster loses nothing acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t40_whole_cluster_restart_keeps_acknowledged_writes() -> anyhow::Result<()> {
    init_tracing();
    within("t40", Duration::from_secs(50), run()).await
}

async fn run() -> anyhow::Result<()> {
    tracing::info!("--- start three nodes, 100 acknowledged writes");
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let history = Arc::new(History::new());
    {
        let mut writer = cluster
            .writer("t40", Duration::from_secs(10))?
            .with_history(history.clone());
        for i in 0..100 {
            writer
                .put(&format!("t40/{i:03}"), format!("survives {i}").as_bytes())
                .await
                .into_ok()?;
        }
    }

    tracing::info!("--- SIGKILL all three");
    for id in cluster.ids() {
        cluster.kill(id)?;
    }

    tracing::info!("--- restart all three on their data");
    for id in cluster.ids() {
        cluster.restart(id)?;
    }
    let leader = cluster
        .wait_for_leader(&cluster.ids(), Duration::from_secs(20))
        .await?;
    tracing::info!(leader, "new leader");

    tracing::info!("--- LINEARIZABLE read of everything on the leader");
    let all = cluster
        .read_all_on_leader("t40/", Duration::from_secs(15))
        .await?;
    let report = check_scan(&history.ops(), &all)?;
    assert_eq!(report.acknowledged, 100, "{report:?}");

    cluster.finish();
    Ok(())
}
