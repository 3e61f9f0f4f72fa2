//! t183: call counts and latencies by method and code, write stages, WAL syncs, log and
//! disk sizes, refused writes, and the slow-request line, on a real cluster.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use sutra_cluster_tests::{ClientRole, Cluster, ClusterOptions, init_tracing, wait_until, within};
use sutra_proto::storage::{Concept, FlushRequest, PutConceptRequest, WriteHeader};

use crate::http::{sample, scrape};

const WRITES: u64 = 12;
const PUT: &str = r#"service="sutra.storage.StorageService",method="PutConcept""#;

fn value(text: &str, name: &str) -> f64 {
    sample(text, name).unwrap_or(0.0)
}

fn put(id: &str, sequence: u64, embedding: Vec<f32>) -> PutConceptRequest {
    PutConceptRequest {
        header: Some(WriteHeader {
            client_id: "t183".into(),
            sequence,
        }),
        concept: Some(Concept {
            id: id.into(),
            content: b"t183".to_vec(),
            embedding,
            ..Concept::default()
        }),
        expected_version: None,
    }
}

/// Writes sent straight to a follower (no leader following) show on that follower as
/// PutConcept calls with code OK and as relay stages, and on the leader as propose and
/// apply stages, group-commit fsyncs and the entries they covered; one write with a
/// vector of the wrong dimension counts as an INVALID_ARGUMENT call and a write refused
/// for `invalid`; a Flush counts in `sutra_flushes_total`. The log and disk gauges are
/// positive and the disk's free bytes within its size. With `--slow-request-ms 1`, the
/// follower logs a `slow_request` line for a PutConcept naming its relay time.
///
/// Why: these are the numbers an operator reads to find where a write spends its time
/// and why writes fail; each must count what happened, on the node where it happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t183_calls_and_write_stages_are_measured() -> Result<()> {
    init_tracing();
    within("t183", Duration::from_secs(60), run()).await
}

async fn run() -> Result<()> {
    let cluster = Cluster::start(ClusterOptions {
        metrics_listen: true,
        extra_args: vec!["--slow-request-ms".into(), "1".into()],
        ..ClusterOptions::default()
    })
    .await?;
    let leader = cluster.leader(Duration::from_secs(20)).await?;
    let follower = cluster
        .ids()
        .into_iter()
        .find(|&i| i != leader)
        .context("a follower")?;
    let f = cluster.client(follower, ClientRole::Writer)?;
    for seq in 1..=WRITES {
        f.storage
            .clone()
            .put_concept(put(&format!("t183/{seq}"), seq, vec![0.5; 8]))
            .await
            .with_context(|| format!("write {seq} through node {follower}"))?;
    }
    let bad = f
        .storage
        .clone()
        .put_concept(put("t183/bad", WRITES + 1, vec![0.5; 3]))
        .await
        .expect_err("a 3-dimensional vector in an 8-dimensional cluster");
    ensure!(bad.code() == tonic::Code::InvalidArgument, "{bad:?}");
    cluster
        .client(leader, ClientRole::Admin)?
        .storage
        .clone()
        .flush(FlushRequest {})
        .await?;

    tracing::info!(follower, "--- the follower counted the calls and relays");
    let t = scrape(&cluster, follower).await?;
    let ok = value(
        &t,
        &format!("sutra_grpc_requests_total{{{PUT},code=\"OK\"}}"),
    );
    ensure!(
        ok == WRITES as f64,
        "follower counted {ok} OK PutConcept calls"
    );
    let invalid = value(
        &t,
        &format!("sutra_grpc_requests_total{{{PUT},code=\"InvalidArgument\"}}"),
    );
    ensure!(invalid == 1.0, "follower counted {invalid} invalid calls");
    let refused = value(&t, r#"sutra_writes_refused_total{reason="invalid"}"#);
    ensure!(refused == 1.0, "follower counted {refused} refused writes");
    let timed = value(
        &t,
        &format!("sutra_grpc_request_duration_seconds_count{{{PUT}}}"),
    );
    ensure!(timed == (WRITES + 1) as f64, "follower timed {timed} calls");
    let relays = value(
        &t,
        r#"sutra_write_stage_duration_seconds_count{stage="relay"}"#,
    );
    ensure!(relays >= WRITES as f64, "follower timed {relays} relays");

    tracing::info!(leader, "--- the leader timed the stages and its WAL syncs");
    let t = scrape(&cluster, leader).await?;
    for stage in ["propose", "apply"] {
        let n = value(
            &t,
            &format!("sutra_write_stage_duration_seconds_count{{stage=\"{stage}\"}}"),
        );
        ensure!(n >= WRITES as f64, "leader timed {n} {stage} stages");
    }
    ensure!(
        value(&t, "sutra_log_fsync_duration_seconds_count") >= 1.0,
        "no fsync timed"
    );
    let entries = value(&t, "sutra_log_entries_per_sync_sum");
    ensure!(entries >= WRITES as f64, "syncs covered {entries} entries");
    ensure!(value(&t, "sutra_flushes_total") == 1.0, "flush not counted");
    for id in cluster.ids() {
        let t = scrape(&cluster, id).await?;
        let (log, free, size) = (
            value(&t, "sutra_log_bytes"),
            value(&t, "sutra_disk_free_bytes"),
            value(&t, "sutra_disk_size_bytes"),
        );
        ensure!(
            log > 0.0 && free > 0.0 && size >= free,
            "node {id}: log {log}, disk free {free} of {size}"
        );
    }

    tracing::info!("--- the follower logged a slow PutConcept with its relay time");
    let log = cluster.node(follower)?.process().log_path().to_path_buf();
    wait_until("a slow_request line", Duration::from_secs(10), async || {
        let text = std::fs::read_to_string(&log)?;
        let line = text
            .lines()
            .find(|l| l.contains("slow_request") && l.contains("PutConcept"))
            .context("no slow_request line for PutConcept")?;
        let relay: f64 = line
            .split("relay_ms=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no relay_ms in {line}"))?;
        ensure!(relay >= 0.0, "relay_ms {relay} in {line}");
        ensure!(
            line.contains("propose_ms=-1"),
            "a follower proposed: {line}"
        );
        Ok(())
    })
    .await?;
    cluster.finish();
    Ok(())
}
