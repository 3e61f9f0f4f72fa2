//! t172: out of space means read-only with an alarm, not down: a node whose disk fills
//! raises the replicated NOSPACE alarm, the cluster refuses new data with
//! RESOURCE_EXHAUSTED, reads and deletes go on, no node exits, and writes resume once
//! there is room and the alarm is disarmed. The cluster quota refuses writes the same way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sutra_checker::History;
use sutra_cluster_tests::client::linearizable;
use sutra_cluster_tests::history::{recorded_delete, recorded_put};
use sutra_cluster_tests::{
    ClientRole, Cluster, ClusterOptions, check_final_scan, init_tracing, wait_until, within,
};
use sutra_proto::cluster::{DisarmAlarmRequest, ListAlarmsRequest};
use sutra_proto::storage::{
    Concept, DeleteConceptRequest, GetConceptRequest, PutConceptRequest, WriteHeader,
};
use tonic::Code;

/// Each node's disk when it is small.
const SMALL_DISK: u64 = 160 << 20;
/// What it grows to when space is freed.
const FREED_DISK: u64 = 1 << 30;
/// Content of each write: the disks fill after a few hundred.
const VALUE_BYTES: usize = 64 << 10;
/// Most writes a fill may take before the test gives up.
const MAX_FILL_WRITES: u64 = 4000;

fn options(small: &[u64]) -> ClusterOptions {
    ClusterOptions {
        tmpfs_bytes: small.iter().map(|&id| (id, SMALL_DISK)).collect(),
        extra_args: [
            "--min-free-disk-bytes",
            "56000000",
            "--data-file-grow-bytes",
            "4194304",
            "--snapshot-every-entries",
            "200",
            "--log-keep-entries",
            "50",
        ]
        .map(String::from)
        .to_vec(),
        ..ClusterOptions::default()
    }
}

fn put_request(client_id: &str, sequence: u64, id: &str) -> PutConceptRequest {
    PutConceptRequest {
        header: Some(WriteHeader {
            client_id: client_id.into(),
            sequence,
        }),
        concept: Some(Concept {
            id: id.into(),
            content: format!("{id}:").into_bytes().repeat(VALUE_BYTES / 16),
            ..Concept::default()
        }),
        expected_version: None,
    }
}

/// Puts concepts on the leader, one after another, until the cluster refuses one with
/// RESOURCE_EXHAUSTED; returns that refusal's message. Every write is recorded.
async fn fill(cluster: &Cluster, history: &History, prefix: &str) -> anyhow::Result<String> {
    let started = Instant::now();
    for seq in 1..=MAX_FILL_WRITES {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "the disks did not fill within two minutes ({seq} writes)"
        );
        let leader = cluster.leader(Duration::from_secs(10)).await?;
        let mut c = cluster.client(leader, ClientRole::Writer)?;
        let req = put_request(prefix, seq, &format!("{prefix}{seq:05}"));
        match recorded_put(history, &req, c.storage.put_concept(req.clone())).await {
            Ok(_) => {}
            Err(s) if s.code() == Code::ResourceExhausted => {
                tracing::info!(writes = seq - 1, message = s.message(), "refused for room");
                return Ok(s.message().to_string());
            }
            Err(s) if s.code() == Code::Unavailable => {}
            Err(s) => anyhow::bail!("write {seq}: {s:?}"),
        }
    }
    anyhow::bail!("{MAX_FILL_WRITES} writes and no refusal")
}

/// No node exited: each still answers HealthCheck.
async fn all_up(cluster: &Cluster) -> anyhow::Result<()> {
    for id in cluster.ids() {
        anyhow::ensure!(
            cluster.node(id)?.process().is_running(),
            "node {id} exited:\n{}",
            cluster.node(id)?.process().log_tail(30)
        );
        cluster.health(id).await?;
    }
    Ok(())
}

/// Reads (LINEARIZABLE, on every node) and deletes go on while the cluster is read-only.
async fn reads_and_deletes_go_on(
    cluster: &Cluster,
    history: &History,
    prefix: &str,
) -> anyhow::Result<()> {
    let first = format!("{prefix}00001");
    for id in cluster.ids() {
        let r = cluster
            .client(id, ClientRole::Reader)?
            .storage
            .get_concept(GetConceptRequest {
                read: linearizable(),
                id: first.clone(),
            })
            .await?
            .into_inner();
        anyhow::ensure!(r.concept.is_some(), "node {id} does not serve {first}");
    }
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let mut c = cluster.client(leader, ClientRole::Writer)?;
    let req = DeleteConceptRequest {
        header: Some(WriteHeader {
            client_id: format!("{prefix}delete"),
            sequence: 1,
        }),
        id: format!("{prefix}00002"),
        expected_version: None,
    };
    recorded_delete(history, &req, c.storage.delete_concept(req.clone()))
        .await
        .map_err(|s| anyhow::anyhow!("a delete while read-only: {s:?}"))?;
    Ok(())
}

/// Frees space on the small disks, disarms every alarm, and waits for a write to go
/// through again.
async fn free_and_disarm(
    cluster: &Cluster,
    small: &[u64],
    history: &History,
    prefix: &str,
) -> anyhow::Result<()> {
    for &id in small {
        cluster.resize_tmpfs(id, FREED_DISK)?;
    }
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let alarms = cluster
        .client(leader, ClientRole::Admin)?
        .cluster
        .disarm_alarm(DisarmAlarmRequest::default())
        .await?
        .into_inner();
    anyhow::ensure!(alarms.alarms.is_empty(), "still active: {alarms:?}");
    let client_id = format!("{prefix}after");
    let mut seq = 0;
    wait_until(
        "a write after disarming",
        Duration::from_secs(20),
        async || {
            seq += 1;
            let leader = cluster.leader(Duration::from_secs(10)).await?;
            let mut c = cluster.client(leader, ClientRole::Writer)?;
            let req = put_request(&client_id, seq, &format!("{prefix}after{seq}"));
            recorded_put(history, &req, c.storage.put_concept(req.clone()))
                .await
                .map_err(|s| anyhow::anyhow!("{s:?}"))
        },
    )
    .await?;
    Ok(())
}

/// Fills the small disks of `small` and checks the whole read-only cycle.
async fn disk_full(small: &[u64], prefix: &str) -> anyhow::Result<()> {
    tracing::info!(
        ?small,
        "--- three nodes, the data directories of {small:?} on small disks"
    );
    let cluster = Cluster::start(options(small)).await?;
    let history = Arc::new(History::new());

    tracing::info!("--- write until the cluster refuses for room");
    let refusal = fill(&cluster, &history, prefix).await?;
    anyhow::ensure!(
        refusal.contains("NOSPACE"),
        "refused, but not for the alarm: {refusal}"
    );
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let alarms = cluster
        .client(leader, ClientRole::Reader)?
        .cluster
        .list_alarms(ListAlarmsRequest {})
        .await?
        .into_inner()
        .alarms;
    anyhow::ensure!(
        alarms
            .iter()
            .all(|a| a.kind == "NOSPACE" && small.contains(&a.node_id))
            && !alarms.is_empty(),
        "alarms {alarms:?}, small disks {small:?}"
    );
    let h = cluster.health(leader).await?;
    anyhow::ensure!(!h.alarms.is_empty(), "HealthCheck names no alarm: {h:?}");

    tracing::info!("--- no node exited; reads and deletes go on");
    all_up(&cluster).await?;
    reads_and_deletes_go_on(&cluster, &history, prefix).await?;

    tracing::info!("--- free space, disarm: writes resume");
    free_and_disarm(&cluster, small, &history, prefix).await?;
    all_up(&cluster).await?;

    tracing::info!("--- every acknowledged write is there (sutra-checker)");
    check_final_scan(&cluster, &history, prefix).await?;
    cluster.finish();
    Ok(())
}

/// Only node 3's disk is small: its alarm makes the whole cluster read-only, though the
/// leader has room.
///
/// Why: every replica must apply every entry; a cluster that went on writing while one
/// replica's disk was full would leave that replica behind for good, or stop it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t172_one_full_disk_makes_the_cluster_read_only() -> anyhow::Result<()> {
    init_tracing();
    within(
        "t172",
        Duration::from_secs(240),
        disk_full(&[3], "t172/one/"),
    )
    .await
}

/// Every node's disk is small: they fill together, and none exits.
///
/// Why: before, all three exited at the same entry ("No space left on device") and no
/// node served even reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t172_all_full_disks_keep_every_node_up() -> anyhow::Result<()> {
    init_tracing();
    within(
        "t172",
        Duration::from_secs(240),
        disk_full(&[1, 2, 3], "t172/all/"),
    )
    .await
}

/// A cluster bootstrapped with a 4 MB quota refuses the write that would cross it with
/// RESOURCE_EXHAUSTED naming the quota, counts it in `GetStats.dropped`, and still takes
/// deletes.
///
/// Why: the quota is how an operator keeps the data file within what every node's disk
/// holds, before any disk is full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t172_quota_refuses_writes_that_cross_it() -> anyhow::Result<()> {
    init_tracing();
    within("t172", Duration::from_secs(120), async {
        let mut opts = ClusterOptions::default();
        opts.node_args
            .insert(1, vec!["--quota-bytes".into(), "4000000".into()]);
        let cluster = Cluster::start(opts).await?;
        let history = Arc::new(History::new());
        let refusal = fill(&cluster, &history, "t172/quota/").await?;
        anyhow::ensure!(refusal.contains("quota of 4000000 bytes"), "{refusal}");
        let leader = cluster.leader(Duration::from_secs(10)).await?;
        let stats = cluster
            .client(leader, ClientRole::Reader)?
            .storage
            .get_stats(sutra_proto::storage::GetStatsRequest::default())
            .await?
            .into_inner();
        anyhow::ensure!(stats.dropped >= 1, "GetStats.dropped is {}", stats.dropped);
        reads_and_deletes_go_on(&cluster, &history, "t172/quota/").await?;
        all_up(&cluster).await?;
        check_final_scan(&cluster, &history, "t172/quota/").await?;
        cluster.finish();
        Ok(())
    })
    .await
}
