//! t155: `sutra drill --scenario partition-leader` and `--scenario restore` against the
//! local cluster of `sutra local start --link-proxies`, with the real binaries.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, ensure};
use sutra_cluster_tests::init_tracing;
use sutra_cluster_tests::local::{LocalCluster, check_ok, log_tails, run_bounded};
use sutra_cluster_tests::process::{alive, cli_binary, node_binary};

/// `sutra local start --link-proxies` records a proxy process (pid, control socket)
/// in `cluster.json`; `sutra drill --scenario partition-leader` against that cluster cuts
/// the leader off through the control socket for two rounds, and every round recovers
/// within 5 s with nothing lost, nothing applied twice and a linearizable history; one
/// round of `--scenario restore` restores a backup taken under load into a scratch
/// cluster with the backup's content hash and every write acknowledged before it, reports
/// its times and recovery point, and leaves no process or file behind; `local stop` then
/// stops the proxy process with the nodes.
///
/// Why: the local cluster is where operators try drills; partitions were the one
/// scenario it could not run, and the proxy process must not outlive the cluster; a
/// backup is only worth what a restore of it shows.
#[test]
fn t155_local_drill_partition() -> anyhow::Result<()> {
    init_tracing();
    let node_bin = node_binary()?;
    let cli = cli_binary()?;
    let tmp = tempfile::tempdir()?;
    let cluster = LocalCluster {
        cli: cli.clone(),
        node_bin,
        dir: tmp.path().join("local"),
    };

    tracing::info!("--- start the local cluster with link proxies");
    let proxies_pid = {
        let out = cluster.local("start", &["--link-proxies"])?;
        check_ok("local start --link-proxies", &out)?;
        let c = cluster.cluster_json()?;
        let lp = &c["link_proxies"];
        ensure!(
            lp["links"].as_array().map(Vec::len) == Some(6),
            "six directed links expected: {lp}"
        );
        ensure!(
            lp["control"]
                .as_str()
                .is_some_and(|p| Path::new(p).exists()),
            "{lp}"
        );
        let pid = lp["pid"].as_u64().context("link_proxies.pid")? as u32;
        ensure!(alive(pid), "the proxy process {pid} does not run");
        pid
    };

    tracing::info!("--- a partition-leader drill through the proxies");
    {
        let out = run_bounded(
            "sutra drill",
            Command::new(&cli)
                .arg("--cluster-file")
                .arg(cluster.dir.join("cluster.json"))
                .args([
                    "--output",
                    "json",
                    "drill",
                    "--scenario",
                    "partition-leader",
                ])
                .args(["--rounds", "2", "--writers", "4"])
                .env("SUTRA_NODE_BIN", &cluster.node_bin),
            Duration::from_secs(60),
        )?;
        let logs = || log_tails(&cluster.dir);
        ensure!(
            out.status.success(),
            "sutra drill: {}\nstdout: {}\nstderr: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            logs()
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("drill JSON: {}", String::from_utf8_lossy(&out.stdout)))?;
        ensure!(report["passed"] == true, "{report}");
        ensure!(report["lost"] == 0, "{report}");
        ensure!(report["duplicates"] == 0, "{report}");
        let rounds = report["rounds"].as_array().context("rounds")?;
        ensure!(rounds.len() == 2, "{report}");
        for r in rounds {
            ensure!(r["scenario"] == "partition-leader", "{r}");
            ensure!(r["linearizability"] == "linearizable", "{r}");
            ensure!(r["lost"] == 0 && r["duplicates"] == 0, "{r}");
        }
        let rto_max = report["summary"]["rto_ms"]["max"]
            .as_f64()
            .with_context(|| format!("summary.rto_ms.max: {report}"))?;
        ensure!(rto_max < 5000.0, "RTO max {rto_max} ms: {report}");
        tracing::info!(rto_max, "drill passed");
    }

    tracing::info!("--- a restore drill: a backup under load restored into a scratch cluster");
    {
        let scratch = tmp.path().join("scratch");
        std::fs::create_dir_all(&scratch)?;
        let out = run_bounded(
            "sutra drill --scenario restore",
            Command::new(&cli)
                .arg("--cluster-file")
                .arg(cluster.dir.join("cluster.json"))
                .args(["--output", "json", "drill", "--scenario", "restore"])
                .args(["--rounds", "1", "--writers", "4"])
                .arg("--scratch-dir")
                .arg(&scratch)
                .env("SUTRA_NODE_BIN", &cluster.node_bin),
            Duration::from_secs(120),
        )?;
        ensure!(
            out.status.success(),
            "sutra drill --scenario restore: {}\nstdout: {}\nstderr: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            log_tails(&cluster.dir)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("drill JSON: {}", String::from_utf8_lossy(&out.stdout)))?;
        ensure!(report["passed"] == true, "{report}");
        ensure!(report["lost"] == 0, "{report}");
        let rounds = report["rounds"].as_array().context("rounds")?;
        ensure!(rounds.len() == 1, "{report}");
        let r = &rounds[0];
        ensure!(r["scenario"] == "restore", "{r}");
        let x = &r["restore"];
        let hash = x["backup_hash"].as_str().context("restore.backup_hash")?;
        ensure!(!hash.is_empty(), "{x}");
        ensure!(x["restored_hash"] == hash, "content differs: {x}");
        ensure!(x["content_equal"] == true, "{x}");
        let backup_index = x["backup_index"].as_u64().context("backup_index")?;
        let live_index = x["live_index"].as_u64().context("live_index")?;
        ensure!(backup_index > 0 && live_index >= backup_index, "{x}");
        ensure!(
            x["rpo_entries"].as_u64() == Some(live_index - backup_index),
            "{x}"
        );
        ensure!(x["rpo_secs"].as_f64().is_some_and(|s| s >= 0.0), "{x}");
        for field in ["backup_ms", "restore_ms"] {
            ensure!(
                x[field].as_f64().is_some_and(|v| v > 0.0),
                "restore.{field} not positive: {x}"
            );
        }
        ensure!(
            x["keys_checked"].as_u64().is_some_and(|k| k > 0),
            "nothing acknowledged before the backup: {x}"
        );
        ensure!(x["missing"] == 0, "{x}");
        ensure!(report["summary"]["restore_ms"]["count"] == 1, "{report}");
        // The scratch cluster is stopped and its directory gone.
        let left: Vec<_> = std::fs::read_dir(&scratch)?.collect();
        ensure!(left.is_empty(), "the scratch directory kept {left:?}");
        let needle = scratch.display().to_string();
        let running: Vec<String> = std::fs::read_dir("/proc")?
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains("sutra-node") && c.contains(&needle))
            .collect();
        ensure!(running.is_empty(), "scratch nodes still run: {running:?}");
        tracing::info!(restore = %x, "restore drill passed");
    }

    tracing::info!("--- local stop also stops the proxy process");
    {
        let out = cluster.local("stop", &[])?;
        check_ok("local stop", &out)?;
        ensure!(
            !alive(proxies_pid),
            "the proxy process {proxies_pid} outlived local stop"
        );
        let c = cluster.cluster_json()?;
        ensure!(c["link_proxies"]["pid"].is_null(), "{c}");
        // The ports stay recorded for the next start.
        ensure!(c["link_proxies"]["links"].as_array().map(Vec::len) == Some(6));
    }
    Ok(())
}
