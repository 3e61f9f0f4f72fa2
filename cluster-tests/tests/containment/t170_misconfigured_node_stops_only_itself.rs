//! t170: a node configured with another vector dimension than the cluster's refuses to
//! run, and the cluster goes on without it.

use std::sync::Arc;
use std::time::Duration;

use sutra_checker::History;
use sutra_cluster_tests::{Cluster, ClusterOptions, check_final_scan, init_tracing, wait_until, within};

/// Three nodes bootstrapped with dimension 8. Node 3 is then started on an empty data
/// directory with `--vector-dimension 4`: it joins, learns the cluster's parameters from
/// the log and exits naming both values; started again (now on a store that has the
/// cluster's dimension) with the same flag, it exits again. Meanwhile the two others
/// acknowledge writes, and once node 3 runs without the flag it adopts the cluster's
/// dimension and catches up. Nothing acknowledged is lost (sutra-checker).
///
/// Why: a replicated store exists so that one bad node cannot take the data offline;
/// before cluster parameters were cluster state, a write accepted by a node with another
/// dimension stopped every other replica at the same entry, for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t170_misconfigured_node_stops_only_itself() -> anyhow::Result<()> {
    init_tracing();
    within("t170", Duration::from_secs(90), run()).await
}

async fn exited(cluster: &Cluster, id: u64, needle: &str) -> anyhow::Result<()> {
    wait_until(&format!("node {id} exiting"), Duration::from_secs(30), async || {
        match cluster.node(id)?.process().try_exit() {
            Some(status) => Ok(status),
            None => anyhow::bail!("still running"),
        }
    })
    .await?;
    let node = cluster.node(id)?;
    anyhow::ensure!(
        node.process().log_contains(needle),
        "node {id} exited without saying {needle:?}:\n{}",
        node.process().log_tail(20)
    );
    Ok(())
}

async fn run() -> anyhow::Result<()> {
    tracing::info!("--- three nodes, dimension 8; writes");
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let history = Arc::new(History::new());
    cluster.write_many(&history, "t170/a", 20, 2).await?;

    tracing::info!("--- node 3 on a new disk with --vector-dimension 4: it refuses to run");
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let odd = if leader == 3 { 2 } else { 3 };
    cluster.kill(odd)?;
    cluster.restart_with_args(odd, &["--vector-dimension", "4"], true)?;
    let says = "vector-dimension: this node has 4, the cluster has 8";
    exited(&cluster, odd, says).await?;

    tracing::info!("--- the two others take writes meanwhile");
    cluster.write_many(&history, "t170/b", 20, 2).await?;

    tracing::info!("--- restarted on the store it made, with the same flag: refuses again");
    cluster.restart(odd)?;
    exited(&cluster, odd, says).await?;

    tracing::info!("--- without the flag it adopts the cluster's dimension and catches up");
    cluster.restart_with_args(odd, &[], false)?;
    let applied = cluster.health(leader).await?.applied_index;
    cluster.wait_applied(odd, applied, Duration::from_secs(30)).await?;
    let h = cluster.health(odd).await?;
    anyhow::ensure!(h.healthy, "node {odd} after adopting: {h:?}");

    check_final_scan(&cluster, &history, "t170/").await?;
    cluster.finish();
    Ok(())
}
