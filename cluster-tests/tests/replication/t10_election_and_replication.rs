//! t10: the basic promise of replication, on three real processes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sutra_checker::History;
use sutra_cluster_tests::client::{session, stale};
use sutra_cluster_tests::{ClientRole, Cluster, ClusterOptions, check_scan, init_tracing, within};
use sutra_proto::storage::GetConceptRequest;

/// Three nodes elect exactly one leader (one per term, and all three name it), and 100
/// writes acknowledged through it are on every node afterwards: first a SESSION read at
/// the last acknowledged version (read-your-writes on any node), then STALE local reads
/// of each id, which after that must see the same values and versions.
///
/// Why: this is the cluster's basic contract; every later test builds on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t10_election_and_replication() -> anyhow::Result<()> {
    init_tracing();
    within("t10", Duration::from_secs(50), run()).await
}

async fn run() -> anyhow::Result<()> {
    tracing::info!("--- start three nodes and wait for one leader");
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    {
        let mut leaders_by_term = BTreeMap::<u64, Vec<u64>>::new();
        for id in cluster.ids() {
            let h = cluster.health(id).await?;
            if h.role == "leader" {
                leaders_by_term.entry(h.term).or_default().push(id);
            }
        }
        assert!(
            leaders_by_term.values().all(|l| l.len() == 1),
            "two leaders in one term: {leaders_by_term:?}"
        );
        let status = cluster.status(leader).await?;
        assert_eq!(status.members.len(), 3, "members: {:?}", status.members);
        tracing::info!(leader, term = status.term, "one leader");
    }

    let history = Arc::new(History::new());
    let mut last_version = 0;
    {
        tracing::info!("--- 100 writes through the leader");
        let mut writer = cluster
            .writer("t10", Duration::from_secs(10))?
            .with_history(history.clone());
        for i in 0..100 {
            let r = writer
                .put(&format!("t10/{i:03}"), format!("value {i}").as_bytes())
                .await
                .into_ok()?;
            assert!(
                r.version > last_version,
                "versions must grow: {r:?} after {last_version}"
            );
            last_version = r.version;
        }
    }

    for id in cluster.ids() {
        tracing::info!(
            node = id,
            "--- SESSION read at the last version on node {id}"
        );
        let all = cluster
            .read_all(
                id,
                ClientRole::Reader,
                "t10/",
                session(last_version),
                Duration::from_secs(15),
            )
            .await?;
        let report = check_scan(&history.ops(), &all)?;
        assert_eq!(report.acknowledged, 100, "{report:?}");
    }

    tracing::info!("--- STALE point reads of every id on every node");
    for id in cluster.ids() {
        let mut c = cluster.client(id, ClientRole::Reader)?;
        for op in history.ops() {
            let got = c
                .storage
                .get_concept(GetConceptRequest {
                    read: stale(),
                    id: op.key.clone(),
                })
                .await?
                .into_inner();
            let concept = got
                .concept
                .ok_or_else(|| anyhow::anyhow!("node {id}: {} missing in a STALE read", op.key))?;
            let written = op.kind.written_value().map(|v| v.as_bytes());
            assert_eq!(Some(concept.content.as_slice()), written, "node {id}: {op}");
            let version = op
                .ok_version()
                .ok_or_else(|| anyhow::anyhow!("not acknowledged: {op}"))?;
            assert_eq!(concept.version, version, "node {id}: {op}");
        }
    }

    cluster.finish();
    Ok(())
}
