//! t170: a node configured with another vector dimension than the cluster's refuses to
//! run, and the cluster goes on without it.

use std::sync::Arc;
use std::time::Duration;

use sutra_checker::History;
use sutra_cluster_tests::{
    ClientRole, Cluster, ClusterOptions, check_final_scan, init_tracing, wait_until, within,
};
use sutra_proto::cluster::AddLearnerRequest;

/// Waits until node `id` has exited, and requires its log to say `needle`.
async fn exited(cluster: &Cluster, id: u64, needle: &str) -> anyhow::Result<()> {
    wait_until(
        &format!("node {id} exiting"),
        Duration::from_secs(30),
        async || match cluster.node(id)?.process().try_exit() {
            Some(status) => Ok(status),
            None => anyhow::bail!("still running"),
        },
    )
    .await?;
    let node = cluster.node(id)?;
    anyhow::ensure!(
        node.process().log_contains(needle),
        "node {id} exited without saying {needle:?}:\n{}",
        node.process().log_tail(20)
    );
    Ok(())
}

/// Three nodes bootstrapped with dimension 8 take writes. Node 4 is started with
/// `--vector-dimension 4` and added as a learner: it receives the log, learns the
/// cluster's parameters from it and exits naming both values; started again (now on a
/// store that has the cluster's dimension) with the same flag, it exits again at once.
/// The three voters acknowledge writes all along, and once node 4 runs without the flag
/// it adopts the cluster's dimension and catches up. Nothing acknowledged is lost
/// (sutra-checker).
///
/// Why: a replicated store exists so that one bad node cannot take the data offline.
/// Before cluster parameters were cluster state, a write accepted by a node with another
/// dimension stopped every other replica at the same entry, for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t170_misconfigured_node_stops_only_itself() -> anyhow::Result<()> {
    init_tracing();
    within("t170", Duration::from_secs(90), run()).await
}

async fn run() -> anyhow::Result<()> {
    tracing::info!("--- three nodes, dimension 8; writes");
    let mut opts = ClusterOptions::default();
    opts.node_args
        .insert(4, vec!["--vector-dimension".into(), "4".into()]);
    let mut cluster = Cluster::start(opts).await?;
    let history = Arc::new(History::new());
    cluster.write_many(&history, "t170/a", 20, 2).await?;

    tracing::info!("--- node 4 with --vector-dimension 4 joins as a learner: it refuses to run");
    cluster.add_node(4)?;
    let (raft_addr, api_addr) = {
        let n = cluster.node(4)?;
        (n.raft_addr.clone(), n.api_addr.clone())
    };
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    cluster
        .client(leader, ClientRole::Admin)?
        .cluster
        .add_learner(AddLearnerRequest {
            node_id: 4,
            raft_addr,
            api_addr,
            wait_caught_up: false,
        })
        .await?;
    let says = "vector-dimension: this node has 4, the cluster has 8";
    exited(&cluster, 4, says).await?;

    tracing::info!("--- the voters take writes meanwhile");
    cluster.write_many(&history, "t170/b", 20, 2).await?;

    tracing::info!("--- restarted on the store it made, with the same flag: refuses again");
    cluster.restart(4)?;
    exited(&cluster, 4, says).await?;

    tracing::info!("--- without the flag it adopts the cluster's dimension and catches up");
    cluster.restart_with_args(4, &[])?;
    let applied = cluster.health(leader).await?.applied_index;
    cluster
        .wait_applied(4, applied, Duration::from_secs(30))
        .await?;
    let h = cluster.health(4).await?;
    anyhow::ensure!(h.quota_bytes > 0, "node 4 after adopting: {h:?}");

    check_final_scan(&cluster, &history, "t170/").await?;
    cluster.finish();
    Ok(())
}
