//! t94: `sutra bench` in both shapes against `sutra local`: pinned connections
//! (`--connections per-node`) and the SDK's, new keys and overwrites, and the nodes' CPU
//! per operation read from their `/proc`.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, ensure};
use sutra_cluster_tests::http::{request, sample};
use sutra_cluster_tests::init_tracing;
use sutra_cluster_tests::local::{LocalCluster, check_ok, log_tails, run_bounded};
use sutra_cluster_tests::process::{cli_binary, node_binary};

/// Runs `sutra --cluster-file … --output json ARGS` and parses its JSON answer.
fn sutra_json(cluster: &LocalCluster, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let out = run_bounded(
        &format!("sutra {}", args.join(" ")),
        Command::new(&cluster.cli)
            .arg("--cluster-file")
            .arg(cluster.dir.join("cluster.json"))
            .args(["--output", "json"])
            .args(args),
        Duration::from_secs(120),
    )?;
    check_ok(&args.join(" "), &out)?;
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "parsing the answer of {args:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Each node's count of writes it relayed to the leader, from its `/metrics`.
async fn relays(nodes: &[serde_json::Value]) -> anyhow::Result<Vec<(u64, f64)>> {
    let mut out = Vec::new();
    for n in nodes {
        let addr = n["metrics"].as_str().context("a node without metrics")?;
        let (code, body) = request(addr, "GET", "/metrics").await?;
        ensure!(code == 200, "{addr} /metrics answered {code}");
        let relayed = sample(
            &body,
            r#"sutra_write_stage_duration_seconds_count{stage="relay"}"#,
        )
        .unwrap_or(0.0);
        out.push((n["id"].as_u64().context("a node id")?, relayed));
    }
    Ok(out)
}

/// Checks a bench report: every request done, none failed, the shape asked for, and
/// the CPU of all three nodes, adding up to the total per operation (above zero when
/// `busy`: enough work for the kernel's 10 ms CPU clock to see).
fn check_report(
    r: &serde_json::Value,
    connections: &str,
    requests: u64,
    busy: bool,
) -> anyhow::Result<()> {
    ensure!(r["requests"] == requests, "requests: {r}");
    ensure!(r["errors"] == 0, "errors: {r}");
    ensure!(r["connections"] == connections, "connections: {r}");
    let nodes = r["server_cpu"].as_array().context("server_cpu")?;
    ensure!(nodes.len() == 3, "CPU of three nodes expected: {r}");
    let total = r["server_cpu_ms_per_op"]
        .as_f64()
        .context("server_cpu_ms_per_op")?;
    let sum: f64 = nodes.iter().filter_map(|n| n["ms_per_op"].as_f64()).sum();
    ensure!(!busy || total > 0.0, "no server CPU measured: {r}");
    ensure!(
        (total - sum).abs() < 1e-9,
        "total {total} is not the sum {sum}"
    );
    for n in nodes {
        ensure!(
            n["cpu_secs"].as_f64().is_some_and(|c| c >= 0.0) && n["cores"].as_f64().is_some(),
            "{n}"
        );
    }
    Ok(())
}

/// On `sutra local start --metrics`:
/// - `bench put --connections per-node --new-keys` (6 clients, 300 puts): every put
///   succeeds, 300 new ids exist afterwards, and each follower relayed writes (its
///   clients were pinned to it); the report has each node's CPU, summed per operation;
/// - `bench put` through the SDK overwriting 10 keys leaves 10 ids, and the followers
///   relayed at most one write per client (the SDK writes to the leader once it knows
///   it);
/// - `bench get --connections per-node --consistency linearizable` and `stale` read
///   every key without error;
/// - the table output names the shape and the server CPU line.
///
/// Why: the field's standard benchmark shape sends two thirds of the writes to
/// followers; the bench must be able to produce it, and CPU per operation is the figure
/// that holds still on a noisy machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t94_bench_shapes() -> anyhow::Result<()> {
    init_tracing();
    let tmp = tempfile::tempdir()?;
    let cluster = LocalCluster {
        cli: cli_binary()?,
        node_bin: node_binary()?,
        dir: tmp.path().join("local"),
    };
    let started = cluster.local("start", &["--metrics"])?;
    check_ok("local start --metrics", &started)?;
    let nodes = cluster.cluster_json()?["nodes"]
        .as_array()
        .context("nodes")?
        .clone();
    let outcome = run(&cluster, &nodes).await;
    if outcome.is_err() {
        eprintln!("{}", log_tails(&cluster.dir));
    }
    outcome
}

async fn run(cluster: &LocalCluster, nodes: &[serde_json::Value]) -> anyhow::Result<()> {
    let leader = sutra_json(cluster, &["health"])?
        .as_array()
        .and_then(|h| h.first().map(|n| n["leader_id"].clone()))
        .and_then(|l| l.as_u64())
        .context("a leader")?;

    // Counted from here: a node also relays its own proposal of the cluster's
    // parameters while it starts.
    let before = relays(nodes).await?;
    tracing::info!(leader, "--- pinned connections, new keys");
    let r = sutra_json(
        cluster,
        &[
            "bench",
            "put",
            "--connections",
            "per-node",
            "--new-keys",
            "--clients",
            "6",
            "--requests",
            "300",
            "--value-size",
            "64",
            "--prefix",
            "t94/new/",
        ],
    )?;
    check_report(&r, "per-node", 300, true)?;
    let scan = sutra_json(
        cluster,
        &[
            "scan",
            "--prefix",
            "t94/new/",
            "--keys-only",
            "--limit",
            "1000",
        ],
    )?;
    ensure!(
        scan.as_array().map(Vec::len) == Some(300),
        "300 new ids expected: {scan}"
    );
    let after_pinned = relays(nodes).await?;
    for ((id, relayed), (_, earlier)) in after_pinned.iter().zip(&before) {
        let relayed = relayed - earlier;
        if *id == leader {
            ensure!(relayed == 0.0, "the leader relayed {relayed} writes");
        } else {
            ensure!(
                relayed > 0.0,
                "follower {id} relayed nothing: {after_pinned:?}"
            );
        }
    }

    tracing::info!("--- the SDK's shape, overwrites");
    let r = sutra_json(
        cluster,
        &[
            "bench",
            "put",
            "--clients",
            "6",
            "--requests",
            "300",
            "--keys",
            "10",
            "--value-size",
            "64",
            "--prefix",
            "t94/over/",
        ],
    )?;
    check_report(&r, "sdk", 300, true)?;
    let scan = sutra_json(
        cluster,
        &[
            "scan",
            "--prefix",
            "t94/over/",
            "--keys-only",
            "--limit",
            "1000",
        ],
    )?;
    ensure!(
        scan.as_array().map(Vec::len) == Some(10),
        "10 ids expected: {scan}"
    );
    // A fresh SDK client may send its first write to a follower before it learns the
    // leader from the answer; after that it writes to the leader.
    let after_sdk = relays(nodes).await?;
    let more: f64 =
        after_sdk.iter().map(|n| n.1).sum::<f64>() - after_pinned.iter().map(|n| n.1).sum::<f64>();
    ensure!(
        more <= 6.0,
        "the SDK's writes were relayed: {after_pinned:?} then {after_sdk:?}"
    );

    for consistency in ["linearizable", "stale"] {
        tracing::info!(consistency, "--- pinned gets");
        let r = sutra_json(
            cluster,
            &[
                "bench",
                "get",
                "--connections",
                "per-node",
                "--consistency",
                consistency,
                "--clients",
                "6",
                "--requests",
                "120",
                "--keys",
                "20",
                "--prefix",
                "t94/get/",
            ],
        )?;
        check_report(&r, "per-node", 120, false)?;
    }

    tracing::info!("--- the table");
    let out = run_bounded(
        "sutra bench (table)",
        Command::new(&cluster.cli)
            .arg("--cluster-file")
            .arg(cluster.dir.join("cluster.json"))
            .args([
                "bench",
                "put",
                "--connections",
                "per-node",
                "--requests",
                "30",
            ]),
        Duration::from_secs(60),
    )?;
    check_ok("sutra bench (table)", &out)?;
    let table = String::from_utf8_lossy(&out.stdout);
    ensure!(table.contains("connections per-node"), "{table}");
    ensure!(table.contains("server cpu"), "{table}");
    Ok(())
}
