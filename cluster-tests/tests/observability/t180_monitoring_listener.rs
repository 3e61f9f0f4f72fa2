//! t180: the monitoring listener (`--metrics-listen`) on a three-node cluster.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use sutra_checker::History;
use sutra_cluster_tests::{Cluster, ClusterOptions, init_tracing, wait_until, within};

use crate::http::{request, sample, scrape};

const WRITES: usize = 40;

fn metrics_addr(cluster: &Cluster, id: u64) -> Result<String> {
    cluster
        .node(id)?
        .metrics_addr
        .clone()
        .context("metrics_listen was asked for")
}

fn value(text: &str, name: &str) -> Result<f64> {
    sample(text, name).with_context(|| format!("no sample {name}"))
}

/// `promtool check metrics` on the exposition, when promtool is installed.
fn promtool_check(text: &str) -> Result<()> {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("promtool not installed: the exposition is checked by the parser here only");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    child
        .stdin
        .take()
        .context("promtool stdin")?
        .write_all(text.as_bytes())?;
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Every node's `/metrics` is a valid exposition that names its build and agrees with
/// the cluster: after a known number of writes each node's write counter rose by exactly
/// that many and its applied index by at least as many. `/livez` and `/readyz` answer 200
/// on a healthy cluster; the status page lists all three nodes and marks the leader.
/// The listener takes no method that could change state (POST, PUT, DELETE: 405) and
/// serves no concept data (any other path: 404). After the leader is killed (by PID),
/// each survivor counts another leader change and knows a leader again.
///
/// Why: monitors and load balancers trust these numbers and answers without client
/// certificates, so they must be true and the listener must be harmless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t180_monitoring_listener_reports_the_cluster() -> Result<()> {
    init_tracing();
    within("t180", Duration::from_secs(90), run()).await
}

async fn run() -> Result<()> {
    let cluster = Cluster::start(ClusterOptions {
        metrics_listen: true,
        ..ClusterOptions::default()
    })
    .await?;
    let ids = cluster.ids();

    tracing::info!("--- every node's exposition parses and knows a leader");
    let mut before = BTreeMap::new();
    for &id in &ids {
        let text = wait_until(
            "a leader in /metrics",
            Duration::from_secs(20),
            async || {
                let t = scrape(&cluster, id).await?;
                ensure!(value(&t, "sutra_raft_has_leader")? == 1.0, "no leader yet");
                Ok(t)
            },
        )
        .await?;
        promtool_check(&text)?;
        ensure!(
            text.contains("sutra_build_info{version=\""),
            "no build info"
        );
        for name in [
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            ensure!(
                value(&text, name)? > 0.0,
                "node {id}: {name} is not positive"
            );
        }
        value(&text, "process_cpu_seconds_total")?;
        for cert in ["node", "ca"] {
            let name = format!("sutra_tls_certificate_expiry_seconds{{cert=\"{cert}\"}}");
            ensure!(
                value(&text, &name)? > 86_400.0,
                "node {id}: {name} under a day"
            );
        }
        before.insert(
            id,
            (
                value(&text, "sutra_writes_applied_total")?,
                value(&text, "sutra_raft_applied_index")?,
            ),
        );
    }

    tracing::info!("--- {WRITES} writes show in every node's counters");
    let history = Arc::new(History::new());
    cluster.write_many(&history, "t180/", WRITES, 4).await?;
    for &id in &ids {
        let (w0, a0) = before[&id];
        wait_until(
            "the writes in /metrics",
            Duration::from_secs(20),
            async || {
                let t = scrape(&cluster, id).await?;
                let w = value(&t, "sutra_writes_applied_total")?;
                let a = value(&t, "sutra_raft_applied_index")?;
                ensure!(
                    w - w0 == WRITES as f64,
                    "node {id}: {} writes counted, not {WRITES}",
                    w - w0
                );
                ensure!(
                    a - a0 >= WRITES as f64,
                    "node {id}: applied index rose by {}",
                    a - a0
                );
                Ok(())
            },
        )
        .await?;
    }

    tracing::info!("--- health answers, the listener is read-only and holds no data");
    for &id in &ids {
        let addr = metrics_addr(&cluster, id)?;
        for path in ["/livez", "/readyz", "/health"] {
            let (code, body) = request(&addr, "GET", path).await?;
            ensure!(code == 200, "node {id} {path}: {code} {body}");
        }
        for method in ["POST", "PUT", "DELETE", "PATCH"] {
            for path in ["/metrics", "/", "/readyz"] {
                let (code, _) = request(&addr, method, path).await?;
                ensure!(code == 405, "node {id}: {method} {path} answered {code}");
            }
        }
        for path in ["/concepts/t180%2F0-00000", "/t180/0-00000", "/scan"] {
            let (code, body) = request(&addr, "GET", path).await?;
            ensure!(code == 404, "node {id}: GET {path} answered {code}");
            ensure!(!body.contains("value of"), "node {id}: {path} served data");
        }
    }

    tracing::info!("--- the status page lists the three nodes and marks the leader");
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    for &id in &ids {
        let (code, page) = request(&metrics_addr(&cluster, id)?, "GET", "/").await?;
        ensure!(code == 200, "node {id} status page: {code}");
        ensure!(page.contains("http-equiv=\"refresh\""), "no refresh");
        for n in &ids {
            ensure!(
                page.contains(&format!("<td>node {n}</td>")),
                "node {n} missing on node {id}'s page"
            );
        }
        ensure!(
            page.contains(&format!(
                "<tr class=\"leader\"><td>node {leader}</td><td>LEADER</td>"
            )),
            "node {id}'s page does not mark node {leader} as the leader"
        );
    }

    tracing::info!(
        leader,
        "--- kill the leader; the survivors count a leader change"
    );
    let survivors: Vec<u64> = ids.iter().copied().filter(|&i| i != leader).collect();
    let mut changes = BTreeMap::new();
    for &id in &survivors {
        changes.insert(
            id,
            value(
                &scrape(&cluster, id).await?,
                "sutra_raft_leader_changes_total",
            )?,
        );
    }
    cluster.kill(leader)?;
    for &id in &survivors {
        wait_until(
            "a new leader in /metrics",
            Duration::from_secs(20),
            async || {
                let t = scrape(&cluster, id).await?;
                let c = value(&t, "sutra_raft_leader_changes_total")?;
                if c <= changes[&id] {
                    bail!("node {id}: leader changes still {c}");
                }
                ensure!(
                    value(&t, "sutra_raft_has_leader")? == 1.0,
                    "node {id}: no leader"
                );
                Ok(())
            },
        )
        .await?;
    }
    cluster.finish();
    Ok(())
}
