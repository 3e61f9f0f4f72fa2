//! t181: `/readyz` on a node cut off from the leader.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use sutra_cluster_tests::{Cluster, ClusterOptions, init_tracing, wait_until, within};

use crate::http::request;

async fn readyz(cluster: &Cluster, id: u64) -> Result<(u16, String)> {
    let addr = cluster
        .node(id)?
        .metrics_addr
        .clone()
        .context("metrics_listen was asked for")?;
    request(&addr, "GET", "/readyz").await
}

/// A follower isolated from both peers by its link proxies answers `/readyz` with 503
/// and a reason once it no longer knows a leader, while the leader's side stays 200;
/// after healing it answers 200 again.
///
/// Why: a load balancer must stop sending clients to a node that cannot serve them, and
/// take it back once it can, without a client certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t181_readyz_is_503_when_cut_off_from_the_leader() -> Result<()> {
    init_tracing();
    within("t181", Duration::from_secs(60), run()).await
}

async fn run() -> Result<()> {
    let cluster = Cluster::start(ClusterOptions {
        metrics_listen: true,
        link_proxies: true,
        ..ClusterOptions::default()
    })
    .await?;
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let cut = *cluster
        .ids()
        .iter()
        .find(|&&i| i != leader)
        .context("a follower")?;
    for id in cluster.ids() {
        wait_until("ready", Duration::from_secs(10), async || {
            let (code, body) = readyz(&cluster, id).await?;
            ensure!(code == 200, "node {id}: {code} {body}");
            Ok(())
        })
        .await?;
    }

    tracing::info!(cut, "--- isolate a follower");
    cluster.isolate(cut)?;
    wait_until(
        "503 on the cut-off node",
        Duration::from_secs(20),
        async || {
            let (code, body) = readyz(&cluster, cut).await?;
            ensure!(code == 503, "node {cut}: still {code}");
            ensure!(!body.trim().is_empty(), "503 without a reason");
            Ok(())
        },
    )
    .await?;
    let majority_leader = cluster.leader(Duration::from_secs(20)).await?;
    ensure!(majority_leader != cut, "the cut-off node leads");
    let (code, body) = readyz(&cluster, majority_leader).await?;
    ensure!(code == 200, "the leader's side: {code} {body}");

    tracing::info!("--- heal");
    cluster.heal();
    wait_until(
        "200 again after healing",
        Duration::from_secs(20),
        async || {
            let (code, body) = readyz(&cluster, cut).await?;
            ensure!(code == 200, "node {cut}: {code} {body}");
            Ok(())
        },
    )
    .await?;
    cluster.finish();
    Ok(())
}
