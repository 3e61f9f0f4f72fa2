//! t185: `--log-format json` logs, the stable event names, and one audit event per admin
//! call.

use std::time::Duration;

use serde_json::Value;
use sutra_cluster_tests::{ClientRole, Cluster, ClusterOptions, init_tracing, wait_until, within};
use sutra_proto::cluster::TriggerSnapshotRequest;
use sutra_proto::storage::{FlushRequest, GetStatsRequest};

/// Every line a node writes with `--log-format json` (the harness's own start markers
/// aside) is one JSON object with a level and fields; every node logs a
/// `leader_changed` event naming the elected leader and a `membership_changed` event
/// with the three voters. Admin calls leave exactly one `audit` event on the node that
/// answered them, naming the caller's certificate and the status: a TriggerSnapshot by
/// the admin (OK; a `snapshot_built` event too), a Flush by a writer (refused,
/// PERMISSION_DENIED, still audited); calls that need no admin role (GetStats) leave
/// none. A node started with an old server's variable (`STORAGE_PORT`) names it and
/// its replacement in one `legacy_variable` event.
///
/// Why: operators and their pipelines find elections and changes by name, and an audit
/// trail must hold every admin action, including refused ones, with who did it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t185_json_logs_events_and_audit() -> anyhow::Result<()> {
    init_tracing();
    within("t185", Duration::from_secs(60), run()).await
}

/// The JSON log lines of node `id` (every line but the harness's markers must parse).
fn json_lines(cluster: &Cluster, id: u64) -> anyhow::Result<Vec<Value>> {
    let path = cluster.node(id)?.process().log_path().to_path_buf();
    let text = std::fs::read_to_string(&path)?;
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.starts_with("===== harness:") || line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| anyhow::anyhow!("node {id}: not a JSON log line ({e}): {line}"))?;
        anyhow::ensure!(v["level"].is_string(), "no level: {line}");
        anyhow::ensure!(v["fields"].is_object(), "no fields: {line}");
        lines.push(v);
    }
    Ok(lines)
}

fn events<'a>(lines: &'a [Value], name: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["fields"]["event"] == name)
        .collect()
}

async fn run() -> anyhow::Result<()> {
    let mut opts = ClusterOptions {
        extra_args: vec!["--log-format".into(), "json".into()],
        ..ClusterOptions::default()
    };
    // An old unit file's variable: named with its replacement, and changes nothing.
    opts.node_env
        .insert(3, vec![("STORAGE_PORT".into(), "50051".into())]);
    let cluster = Cluster::start(opts).await?;
    let leader = cluster.leader(Duration::from_secs(15)).await?;
    let legacy = json_lines(&cluster, 3)?;
    let legacy = events(&legacy, "legacy_variable");
    assert_eq!(legacy.len(), 1, "{legacy:?}");
    assert_eq!(legacy[0]["fields"]["variable"], "STORAGE_PORT");
    assert!(
        legacy[0]["fields"]["instead"]
            .as_str()
            .is_some_and(|i| i.contains("SUTRA_API_LISTEN")),
        "{legacy:?}"
    );
    for id in [1, 2] {
        assert!(events(&json_lines(&cluster, id)?, "legacy_variable").is_empty());
    }

    tracing::info!("--- every node logs the election and the membership by name");
    for id in cluster.ids() {
        wait_until(
            &format!("node {id} logging leader_changed to {leader}"),
            Duration::from_secs(10),
            async || {
                let lines = json_lines(&cluster, id)?;
                let elected = events(&lines, "leader_changed")
                    .iter()
                    .any(|e| e["fields"]["leader"] == leader);
                anyhow::ensure!(elected, "no leader_changed naming {leader}");
                let voters = events(&lines, "membership_changed")
                    .iter()
                    .any(|e| e["fields"]["voters"] == "1,2,3");
                anyhow::ensure!(voters, "no membership_changed with voters 1, 2, 3");
                Ok(())
            },
        )
        .await?;
    }

    let follower = *cluster
        .ids()
        .iter()
        .find(|&&id| id != leader)
        .expect("a follower");
    let other = *cluster
        .ids()
        .iter()
        .find(|&&id| id != leader && id != follower)
        .expect("a second follower");
    let audits_before: Vec<usize> = cluster
        .ids()
        .iter()
        .map(|&id| Ok(events(&json_lines(&cluster, id)?, "audit").len()))
        .collect::<anyhow::Result<_>>()?;

    tracing::info!("--- an admin's TriggerSnapshot, a writer's Flush, a reader's GetStats");
    cluster
        .client(follower, ClientRole::Admin)?
        .cluster
        .trigger_snapshot(TriggerSnapshotRequest {})
        .await?;
    let refused = cluster
        .client(other, ClientRole::Writer)?
        .storage
        .flush(FlushRequest {})
        .await
        .expect_err("a writer may not flush");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    cluster
        .client(leader, ClientRole::Reader)?
        .storage
        .get_stats(GetStatsRequest::default())
        .await?;

    let audits = |id: u64| -> anyhow::Result<Vec<Value>> {
        let lines = json_lines(&cluster, id)?;
        let index = cluster.ids().iter().position(|&i| i == id).expect("a node");
        Ok(events(&lines, "audit")
            .into_iter()
            .skip(audits_before[index])
            .cloned()
            .collect())
    };
    wait_until(
        "the admin's call audited on the follower",
        Duration::from_secs(10),
        async || {
            let a = audits(follower)?;
            anyhow::ensure!(a.len() == 1, "{} audit events: {a:?}", a.len());
            let f = &a[0]["fields"];
            assert_eq!(f["method"], "/sutra.cluster.ClusterService/TriggerSnapshot");
            assert!(
                f["caller"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("sutra://client/admin/")),
                "{f}"
            );
            assert_eq!(f["code"], "Ok", "{f}");
            Ok(())
        },
    )
    .await?;
    let a = audits(other)?;
    assert_eq!(a.len(), 1, "{a:?}");
    let f = &a[0]["fields"];
    assert_eq!(f["method"], "/sutra.storage.StorageService/Flush");
    assert!(
        f["caller"]
            .as_str()
            .is_some_and(|c| c.starts_with("sutra://client/write/")),
        "{f}"
    );
    assert_eq!(f["code"], "PermissionDenied", "{f}");
    assert_eq!(audits(leader)?.len(), 0, "GetStats is not an admin call");

    let lines = json_lines(&cluster, follower)?;
    assert!(
        !events(&lines, "snapshot_built").is_empty(),
        "no snapshot_built event on node {follower}"
    );
    cluster.finish();
    Ok(())
}
