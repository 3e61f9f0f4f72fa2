//! t30: membership changes on a live cluster: add a learner, promote it, remove a voter.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use sutra_checker::History;
use sutra_cluster_tests::client::session;
use sutra_cluster_tests::{
    ClientRole, Cluster, ClusterOptions, check_scan, init_tracing, wait_until, within,
};
use sutra_proto::cluster::{
    AddLearnerRequest, ChangeMembershipRequest, ClusterStatusResponse, MemberRole,
    RemoveNodeRequest,
};

fn voters(s: &ClusterStatusResponse) -> BTreeSet<u64> {
    s.members
        .iter()
        .filter(|m| m.role == MemberRole::Voter as i32)
        .map(|m| m.node_id)
        .collect()
}

fn learners(s: &ClusterStatusResponse) -> BTreeSet<u64> {
    s.members
        .iter()
        .filter(|m| m.role == MemberRole::Learner as i32)
        .map(|m| m.node_id)
        .collect()
}

/// Node 4 gets a certificate from the cluster CA and starts with no initial members;
/// `AddLearner` (waiting until it caught up) and `ChangeMembership` to {1,2,3,4} make it
/// a voter, which Status must show on the leader and on node 4. Then a follower (never
/// the leader) is removed with `RemoveNode` and stopped with SIGTERM (exit status 0), and
/// the remaining three keep accepting writes; every acknowledged write, from before and
/// after each change, is readable on every remaining node.
///
/// Why: replacing a machine is a routine operation; it must not stop writes or lose any.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t30_membership_add_learner_promote_remove() -> anyhow::Result<()> {
    init_tracing();
    within("t30", Duration::from_secs(55), run()).await
}

async fn run() -> anyhow::Result<()> {
    tracing::info!("--- start three nodes, 20 writes");
    let mut cluster = Cluster::start(ClusterOptions::default()).await?;
    let history = Arc::new(History::new());
    let mut writer = cluster
        .writer("t30", Duration::from_secs(10))?
        .with_history(history.clone());
    for i in 0..20 {
        writer
            .put(
                &format!("t30/a{i:03}"),
                format!("three voters {i}").as_bytes(),
            )
            .await
            .into_ok()?;
    }

    tracing::info!("--- start node 4 with its own certificate and no initial members");
    cluster.add_node(4)?;
    let (raft_addr, api_addr) = {
        let n = cluster.node(4)?;
        (n.raft_addr.clone(), n.api_addr.clone())
    };
    writer.add_endpoint(api_addr.clone());
    wait_until(
        "node 4 answering health checks",
        Duration::from_secs(15),
        async || cluster.health(4).await,
    )
    .await?;

    tracing::info!("--- AddLearner(4), waiting until it caught up");
    let add = AddLearnerRequest {
        node_id: 4,
        raft_addr,
        api_addr,
        wait_caught_up: true,
    };
    let resp = cluster
        .call_leader(
            ClientRole::Admin,
            "AddLearner(4)",
            Duration::from_secs(20),
            async |mut c| {
                c.cluster
                    .add_learner(add.clone())
                    .await
                    .map(|r| r.into_inner())
            },
        )
        .await?;
    tracing::info!(?resp, "learner added");
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let status = cluster.status(leader).await?;
    assert_eq!(voters(&status), BTreeSet::from([1, 2, 3]), "{status:?}");
    assert_eq!(learners(&status), BTreeSet::from([4]), "{status:?}");

    tracing::info!("--- ChangeMembership to voters {{1,2,3,4}}");
    let change = ChangeMembershipRequest {
        voters: vec![1, 2, 3, 4],
        retain_removed_as_learners: false,
    };
    cluster
        .call_leader(
            ClientRole::Admin,
            "ChangeMembership",
            Duration::from_secs(20),
            async |mut c| {
                c.cluster
                    .change_membership(change.clone())
                    .await
                    .map(|r| r.into_inner())
            },
        )
        .await?;
    for id in [cluster.leader(Duration::from_secs(10)).await?, 4] {
        wait_until(
            &format!("node {id} showing four voters"),
            Duration::from_secs(10),
            async || {
                let s = cluster.status(id).await?;
                anyhow::ensure!(
                    voters(&s) == BTreeSet::from([1, 2, 3, 4]) && learners(&s).is_empty(),
                    "members: {:?}",
                    s.members
                );
                Ok(())
            },
        )
        .await?;
    }
    for i in 0..20 {
        writer
            .put(
                &format!("t30/b{i:03}"),
                format!("four voters {i}").as_bytes(),
            )
            .await
            .into_ok()?;
    }

    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let removed = *[1, 2, 3]
        .iter()
        .find(|&&id| id != leader)
        .expect("two of 1..=3 are followers");
    tracing::info!(removed, leader, "--- RemoveNode({removed}), a follower");
    cluster
        .call_leader(
            ClientRole::Admin,
            "RemoveNode",
            Duration::from_secs(20),
            async |mut c| {
                c.cluster
                    .remove_node(RemoveNodeRequest { node_id: removed })
                    .await
                    .map(|r| r.into_inner())
            },
        )
        .await?;
    let remaining: Vec<u64> = [1, 2, 3, 4]
        .into_iter()
        .filter(|&id| id != removed)
        .collect();
    let leader = cluster
        .wait_for_leader(&remaining, Duration::from_secs(10))
        .await?;
    let status = cluster.status(leader).await?;
    assert_eq!(
        voters(&status),
        remaining.iter().copied().collect::<BTreeSet<_>>(),
        "{status:?}"
    );
    assert!(learners(&status).is_empty(), "{status:?}");

    tracing::info!(removed, "--- stop node {removed} (SIGTERM)");
    let exit = cluster.terminate(removed, Duration::from_secs(15)).await?;
    assert!(
        exit.success(),
        "node {removed} exited with {exit:?} on SIGTERM"
    );

    tracing::info!("--- keep writing and reading on the remaining three");
    let mut last = 0;
    for i in 0..30 {
        last = writer
            .put(
                &format!("t30/c{i:03}"),
                format!("after removal {i}").as_bytes(),
            )
            .await
            .into_ok()?
            .version;
    }
    for id in remaining {
        let all = cluster
            .read_all(
                id,
                ClientRole::Reader,
                "t30/",
                session(last),
                Duration::from_secs(15),
            )
            .await?;
        let report = check_scan(&history.ops(), &all)?;
        assert_eq!(report.acknowledged, 70, "node {id}: {report:?}");
    }

    cluster.finish();
    Ok(())
}
