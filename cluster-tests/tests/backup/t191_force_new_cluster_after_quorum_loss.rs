//! t191: after two of three nodes' data is gone, the survivor becomes a new cluster of
//! its own (`sutra-node force-new-cluster`) with every write it had, and members are
//! added back.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use sutra_checker::History;
use sutra_cluster_tests::client::linearizable;
use sutra_cluster_tests::process::node_binary;
use sutra_cluster_tests::{ClientRole, Cluster, ClusterOptions, check_scan, init_tracing, within};
use sutra_proto::cluster::{AddLearnerRequest, ChangeMembershipRequest};

const WRITES: usize = 300;

/// 300 writes are acknowledged; both followers are killed and their data directories
/// deleted, then the leader is SIGKILLed too (what it applied but had not checkpointed
/// is only in its log). `sutra-node force-new-cluster` on the survivor's directory
/// says so loudly, keeps the old directory beside it, and the restarted node leads a
/// new one-member cluster (another cluster id) holding all 300 writes; it takes new
/// writes, and a new node added as a learner and made a voter catches up with all of
/// them.
///
/// Why: losing a quorum for good must not mean losing the data a survivor holds; the
/// way back has to be a command, not a surgery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t191_force_new_cluster_after_quorum_loss() -> Result<()> {
    init_tracing();
    within("t191", Duration::from_secs(150), run()).await
}

async fn run() -> Result<()> {
    let mut cluster = Cluster::start(ClusterOptions::default()).await?;
    let history = Arc::new(History::new());
    cluster.write_many(&history, "t191/", WRITES, 4).await?;
    let survivor = cluster.leader(Duration::from_secs(10)).await?;
    let old_id = cluster.cluster_id(survivor)?;

    tracing::info!(
        survivor,
        "--- the followers and their data are gone; then the survivor dies"
    );
    for id in cluster.ids().into_iter().filter(|&i| i != survivor) {
        cluster.kill(id)?;
        let dir = cluster.node(id)?.data_dir.clone();
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    cluster.kill(survivor)?;

    tracing::info!("--- force a new cluster from the survivor");
    let (dir, member) = {
        let n = cluster.node(survivor)?;
        (
            n.data_dir.clone(),
            format!("{survivor}={}/{}", n.raft_addr, n.api_addr),
        )
    };
    let out = Command::new(node_binary()?)
        .args(["force-new-cluster", "--member", &member])
        .arg("--data-dir")
        .arg(&dir)
        .output()?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    ensure!(out.status.success(), "force-new-cluster: {stdout}{stderr}");
    ensure!(
        stderr.contains("FORCED A NEW CLUSTER"),
        "not loud: {stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout)?;
    let parent = dir.parent().context("a parent")?;
    let kept = std::fs::read_dir(parent)?.flatten().any(|e| {
        e.file_name()
            .to_string_lossy()
            .contains(".before-force-new-cluster-")
    });
    ensure!(
        kept,
        "the old directory was not kept beside {}",
        dir.display()
    );

    cluster.restart(survivor)?;
    let leader = cluster
        .wait_for_leader(&[survivor], Duration::from_secs(20))
        .await?;
    ensure!(leader == survivor, "node {leader} leads");
    let all = cluster
        .read_all(
            survivor,
            ClientRole::Reader,
            "t191/",
            linearizable(),
            Duration::from_secs(20),
        )
        .await?;
    let checked = check_scan(&history.ops(), &all)?;
    ensure!(checked.acknowledged == WRITES, "{checked:?}");
    let new_id = cluster.cluster_id(survivor)?;
    ensure!(
        new_id != old_id && report["cluster_id"] == new_id.as_str(),
        "{report}"
    );
    cluster
        .writer("t191-after", Duration::from_secs(10))?
        .put("t191/after", b"the new cluster takes writes")
        .await
        .into_ok()?;

    tracing::info!("--- a new node joins as a learner and becomes a voter");
    cluster.add_node(4)?;
    let (raft_addr, api_addr) = {
        let n = cluster.node(4)?;
        (n.raft_addr.clone(), n.api_addr.clone())
    };
    let mut admin = cluster.client(survivor, ClientRole::Admin)?.cluster.clone();
    admin
        .add_learner(AddLearnerRequest {
            node_id: 4,
            raft_addr,
            api_addr,
            wait_caught_up: true,
        })
        .await?;
    admin
        .change_membership(ChangeMembershipRequest {
            voters: vec![survivor, 4],
            retain_removed_as_learners: false,
        })
        .await?;
    let on_4 = cluster
        .read_all(
            4,
            ClientRole::Reader,
            "t191/",
            linearizable(),
            Duration::from_secs(20),
        )
        .await?;
    ensure!(
        on_4.len() == WRITES + 1,
        "node 4 holds {} concepts",
        on_4.len()
    );
    cluster.finish();
    Ok(())
}
