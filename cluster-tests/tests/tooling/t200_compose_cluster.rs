//! t200: the three-node compose cluster (`deploy/docker-compose.yml`) on a real Docker
//! engine, through `scripts/compose-test.sh`: the image built without a registry
//! (`make docker`), three healthy members, a write and read from the host through the
//! published ports, the `monitoring` profile's Prometheus (image from `make docker`,
//! `deploy/monitoring/prometheus.yml`) scraping all three nodes' monitoring listeners
//! with every rule of the `sutra` group evaluated and `sutra_raft_has_leader` 1 on each
//! node, `docker kill` of the leader, a new leader taking writes, the killed
//! node rejoining, one round each of the kill-leader, partition-leader and pause-leader
//! drills through `sutra drill --docker` (no write lost or duplicated, no stale read),
//! `deploy/health-check` against the cluster, `deploy/rolling-upgrade` to another image
//! tag under a drill's write load (`--scenario procedure`: nothing lost, histories
//! linearizable, replicas equal), and everything it created (Prometheus's container
//! and volume too) removed again, on failure too.
//!
//! Without a Docker engine (none answered `docker info` when the tests were built, see
//! `cluster-tests/build.rs`) the test is ignored: the runner reports it as skipped.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, ensure};
use sutra_cluster_tests::init_tracing;

#[test]
#[cfg_attr(not(docker_engine), ignore = "no Docker engine")]
fn compose_cluster_elects_fails_over_and_cleans_up() -> anyhow::Result<()> {
    init_tracing();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("cluster-tests has no parent directory")?;
    let started = Instant::now();
    tracing::info!("--- scripts/compose-test.sh");
    // The script bounds each of its waits and tears the project down on every exit path.
    let status = Command::new("bash")
        .arg(repo.join("scripts/compose-test.sh"))
        .current_dir(repo)
        .status()
        .context("running scripts/compose-test.sh")?;
    ensure!(
        status.success(),
        "scripts/compose-test.sh failed ({status}) after {:?}; its output above has the node logs",
        started.elapsed()
    );
    Ok(())
}
