//! t193: a new node seeded from a backup joins by the log, not by a whole snapshot.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, ensure};
use sutra_checker::History;
use sutra_cluster_tests::client::linearizable;
use sutra_cluster_tests::{ClientRole, Cluster, ClusterOptions, check_scan, init_tracing, within};
use sutra_proto::cluster::AddLearnerRequest;
use sutra_proto::storage::FlushRequest;

/// 100 writes, a `Flush` (the leader's log is purged up to them, so a new node could
/// only catch up from a snapshot), a backup, 100 more writes; node 4's directory is
/// seeded from the backup
/// (`sutra-node restore --join`: the cluster's own id and membership) and the node added
/// as a learner. It catches up with all 200 writes without installing a snapshot (its
/// log has no `snapshot_installed` event): the leader sent it only the entries after
/// the backup's index.
///
/// Why: a new replica of a large store should not cost the leader a full snapshot over
/// the network when a recent backup is at hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t193_a_learner_seeded_from_a_backup_catches_up_by_the_log() -> Result<()> {
    init_tracing();
    within("t193", Duration::from_secs(120), run()).await
}

async fn run() -> Result<()> {
    let mut cluster = Cluster::start(ClusterOptions::default()).await?;
    let history = Arc::new(History::new());
    cluster.write_many(&history, "t193/a", 100, 4).await?;
    let leader = cluster.leader(Duration::from_secs(10)).await?;

    tracing::info!("--- Flush purges the leader's log; then sutra backup save");
    cluster
        .client(leader, ClientRole::Admin)?
        .storage
        .clone()
        .flush(FlushRequest {})
        .await?;
    let file = cluster.dir().join("t193.sutra-backup");
    let saved = cluster
        .sutra(
            ClientRole::Admin,
            &[
                "--output",
                "json",
                "backup",
                "save",
                &file.display().to_string(),
            ],
        )?
        .json()?;
    tracing::info!(%saved, "backup saved");
    cluster.write_many(&history, "t193/b", 100, 4).await?;

    tracing::info!("--- node 4, seeded from the backup, joins as a learner");
    cluster.add_node_seeded(4, &file)?;
    let (raft_addr, api_addr) = {
        let n = cluster.node(4)?;
        (n.raft_addr.clone(), n.api_addr.clone())
    };
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    cluster
        .client(leader, ClientRole::Admin)?
        .cluster
        .clone()
        .add_learner(AddLearnerRequest {
            node_id: 4,
            raft_addr,
            api_addr,
            wait_caught_up: true,
        })
        .await?;
    let applied = cluster.health(leader).await?.applied_index;
    cluster
        .wait_applied(4, applied, Duration::from_secs(20))
        .await?;
    let all = cluster
        .read_all(
            4,
            ClientRole::Reader,
            "t193/",
            linearizable(),
            Duration::from_secs(20),
        )
        .await?;
    let report = check_scan(&history.ops(), &all)?;
    ensure!(report.acknowledged == 200, "{report:?}");
    ensure!(
        !cluster
            .node(4)?
            .process()
            .log_contains("snapshot_installed"),
        "node 4 installed a snapshot instead of catching up by the log"
    );
    cluster.finish();
    Ok(())
}
