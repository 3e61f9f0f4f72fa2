//! t90: the `sutra` command line against a real cluster.

use std::process::Command;
use std::time::Duration;

use sutra_cluster_tests::{Cluster, ClusterOptions, init_tracing, process::cli_binary, within};

/// `sutra put` then `sutra get --output json` round-trip a concept through whichever node
/// leads; `sutra health --output json` lists every node with one leader; `sutra cluster`
/// names the leader and `sutra cluster transfer-leader N` moves leadership to N; a user's
/// mistake (removing a node that is not a member, an empty id, a missing concept) is one line on
/// stderr with exit code 1, no backtrace; `sutra health --serving` on one node exits 0
/// while it serves and 1 once it is down, and every node reports its version and commit.
///
/// Why: operators script the CLI; its output and exit codes are an interface.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t90_cli() -> anyhow::Result<()> {
    init_tracing();
    within("t90", Duration::from_secs(50), run()).await
}

async fn run() -> anyhow::Result<()> {
    let cli = cli_binary()?;
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader(Duration::from_secs(15)).await?;
    let certs = cluster.certs_dir();
    let admin = sutra_certs::CertPaths::client(certs, "admin");
    let sutra = |args: &[&str]| {
        let out = Command::new(&cli)
            .arg("--endpoints")
            .arg(cluster.api_addrs().join(","))
            .arg("--ca")
            .arg(sutra_certs::CertPaths::ca(certs).cert)
            .arg("--cert")
            .arg(&admin.cert)
            .arg("--key")
            .arg(&admin.key)
            .args(args)
            .output()
            .expect("running sutra");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };

    tracing::info!("--- put and get");
    let (code, out, err) = sutra(&["put", "t90/a", "--content", "hello"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = sutra(&["--output", "json", "get", "t90/a"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let got: serde_json::Value = serde_json::from_str(out.trim())?;
    assert_eq!(got["content"], "hello");

    tracing::info!("--- health and cluster");
    let (code, out, err) = sutra(&["--output", "json", "health"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let health: serde_json::Value = serde_json::from_str(out.trim())?;
    let nodes = health.as_array().expect("an array");
    assert_eq!(nodes.len(), 3);
    assert_eq!(
        nodes.iter().filter(|n| n["role"] == "leader").count(),
        1,
        "{health}"
    );
    let (code, out, err) = sutra(&["cluster"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with(&format!("leader {leader}")), "{out}");

    tracing::info!("--- cluster transfer-leader moves leadership");
    let target = *cluster
        .ids()
        .iter()
        .find(|&&id| id != leader)
        .expect("a follower");
    let (code, out, err) = sutra(&["cluster", "transfer-leader", &target.to_string()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(
        out.trim(),
        format!("leader is now node {target}"),
        "{out}{err}"
    );
    let new = cluster.leader(Duration::from_secs(10)).await?;
    assert_eq!(new, target);

    tracing::info!("--- mistakes are one line and exit 1");
    let (code, _, err) = sutra(&["cluster", "remove", "99"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not a member"), "{err}");
    for args in [&["put", ""][..], &["get", "t90/missing"][..]] {
        let (code, out, err) = sutra(args);
        assert_eq!(code, Some(1), "{args:?}: {out}{err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{err}");
    }

    tracing::info!("--- health --serving: a probe of one node, exit 1 once it no longer serves");
    let probe = |id: u64| -> anyhow::Result<Option<i32>> {
        let addr = cluster.node(id)?.api_addr.clone();
        let out = Command::new(&cli)
            .args(["--endpoints", &addr, "--timeout", "2", "--ca"])
            .arg(sutra_certs::CertPaths::ca(certs).cert)
            .arg("--cert")
            .arg(&admin.cert)
            .arg("--key")
            .arg(&admin.key)
            .args(["health", "--serving"])
            .output()?;
        Ok(out.status.code())
    };
    let version = cluster.health(new).await?;
    assert!(
        !version.version.is_empty() && !version.commit.is_empty(),
        "{version:?}"
    );
    for id in cluster.ids() {
        assert_eq!(probe(id)?, Some(0), "node {id} serves");
    }
    let stopped = *cluster
        .ids()
        .iter()
        .find(|&&id| id != new)
        .expect("a follower");
    cluster.kill(stopped)?;
    assert_eq!(probe(stopped)?, Some(1), "node {stopped} is down");
    assert_eq!(probe(new)?, Some(0), "the leader still serves");

    cluster.finish();
    Ok(())
}
