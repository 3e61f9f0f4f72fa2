//! t92: `deploy/health-check`, the script cron and monitoring run, against a real cluster.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sutra_cluster_tests::process::cli_binary;
use sutra_cluster_tests::{Cluster, ClusterOptions, init_tracing, wait_until, within};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/health-check")
}

struct Run {
    code: Option<i32>,
    lines: Vec<String>,
    stderr: String,
}

impl Run {
    /// The last line, the verdict, starts with `prefix`.
    fn assert_verdict(&self, prefix: &str) {
        assert!(
            self.lines.last().is_some_and(|l| l.starts_with(prefix)),
            "verdict not {prefix:?}: {:?}",
            self.lines
        );
    }
}

/// Runs the script with only the given environment (no settings leak in from the
/// caller's), as cron would.
fn health_check(env: &[(&str, String)], args: &[&str]) -> Run {
    let out = Command::new(script())
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("running deploy/health-check");
    Run {
        code: out.status.code(),
        lines: String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// With every node up the script prints an `OK` line per node and `cluster OK`, exit 0.
/// With one follower killed: that node's line says `FAIL ... unreachable`, the verdict is
/// WARNING, exit 1. With a second node killed: CRITICAL, exit 2. Settings read from an
/// env file give the same answer as the environment; a missing env file, unset
/// endpoints or an unreadable CA give UNKNOWN, exit 3, not a false WARNING.
///
/// Why: monitoring acts on the exit code and pages on the line; a check that says OK
/// while a node is down, or WARNING when it could not look at all, is worse than none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t92_health_check_script() -> anyhow::Result<()> {
    init_tracing();
    within("t92", Duration::from_secs(50), run()).await
}

async fn run() -> anyhow::Result<()> {
    let cli = cli_binary()?;
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader(Duration::from_secs(15)).await?;
    let reader = sutra_certs::CertPaths::client(cluster.certs_dir(), "reader");
    let endpoints = cluster.api_addrs();
    let env = vec![
        ("SUTRA_BIN", cli.display().to_string()),
        ("SUTRA_ENDPOINTS", endpoints.join(",")),
        (
            "SUTRA_CA",
            sutra_certs::CertPaths::ca(cluster.certs_dir())
                .cert
                .display()
                .to_string(),
        ),
        ("SUTRA_CERT", reader.cert.display().to_string()),
        ("SUTRA_KEY", reader.key.display().to_string()),
        ("SUTRA_HEALTH_TIMEOUT", "3".to_string()),
    ];

    tracing::info!("--- every node up: OK");
    // Followers report SERVING once they have heard from the leader.
    wait_until("the check saying OK", Duration::from_secs(10), async || {
        let r = health_check(&env, &[]);
        anyhow::ensure!(r.code == Some(0), "{:?} {:?}", r.lines, r.stderr);
        Ok(())
    })
    .await?;
    let r = health_check(&env, &[]);
    assert_eq!(r.lines.len(), 4, "{:?}", r.lines);
    for (line, ep) in r.lines.iter().zip(&endpoints) {
        assert!(line.starts_with("OK   node "), "{line}");
        assert!(line.contains(ep.as_str()), "{line} names {ep}");
        assert!(line.contains(&format!("leader {leader} ")), "{line}");
    }
    assert_eq!(
        r.lines[3],
        format!("cluster OK: 3 of 3 nodes serving, leader {leader}")
    );

    tracing::info!("--- the same settings from an env file");
    let env_file = cluster.dir().join("health-check.env");
    let text: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(&env_file, text)?;
    let from_file = health_check(&[], &[env_file.to_str().expect("utf-8 path")]);
    assert_eq!(
        from_file.code,
        Some(0),
        "{:?} {}",
        from_file.lines,
        from_file.stderr
    );
    assert_eq!(from_file.lines.len(), 4, "{:?}", from_file.lines);

    let followers: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|&id| id != leader)
        .collect();
    let down = followers[0];
    tracing::info!(down, "--- a follower killed: WARNING naming it");
    cluster.kill(down)?;
    let r = health_check(&env, &[]);
    assert_eq!(r.code, Some(1), "{:?} {}", r.lines, r.stderr);
    let down_addr = &cluster.node(down)?.api_addr;
    let line = r
        .lines
        .iter()
        .find(|l| l.contains(down_addr.as_str()))
        .unwrap_or_else(|| panic!("no line for {down_addr}: {:?}", r.lines));
    assert!(line.starts_with("FAIL node ? "), "{line}");
    assert!(line.contains("unreachable"), "{line}");
    assert_eq!(
        r.lines.iter().filter(|l| l.starts_with("OK   ")).count(),
        2,
        "{:?}",
        r.lines
    );
    r.assert_verdict("cluster WARNING: 2 of 3 nodes serving");

    tracing::info!("--- a second node killed: CRITICAL");
    cluster.kill(followers[1])?;
    let r = health_check(&env, &[]);
    assert_eq!(r.code, Some(2), "{:?} {}", r.lines, r.stderr);
    r.assert_verdict("cluster CRITICAL: ");

    tracing::info!("--- a check that cannot run: UNKNOWN");
    let missing = health_check(&env, &["/nonexistent/health-check.env"]);
    assert_eq!(missing.code, Some(3), "{:?}", missing.lines);
    let no_endpoints: Vec<_> = env
        .iter()
        .filter(|(k, _)| *k != "SUTRA_ENDPOINTS")
        .cloned()
        .collect();
    let r = health_check(&no_endpoints, &[]);
    assert_eq!(r.code, Some(3), "{:?}", r.lines);
    assert!(
        r.lines[0].starts_with("UNKNOWN: SUTRA_ENDPOINTS"),
        "{:?}",
        r.lines
    );
    let mut bad_ca = env.clone();
    bad_ca.retain(|(k, _)| *k != "SUTRA_CA");
    bad_ca.push(("SUTRA_CA", "/nonexistent/ca.pem".into()));
    let r = health_check(&bad_ca, &[]);
    assert_eq!(r.code, Some(3), "{:?} {}", r.lines, r.stderr);
    assert!(r.stderr.contains("ca.pem"), "{}", r.stderr);
    cluster.finish();
    Ok(())
}
