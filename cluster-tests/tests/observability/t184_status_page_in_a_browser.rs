//! t184: the status page as a browser renders it (headless Chromium, no JavaScript).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use sutra_cluster_tests::{Cluster, ClusterOptions, init_tracing, within};

/// The browser Debian's `chromium` package installs.
const CHROMIUM: &str = "chromium";

/// Runs headless Chromium with JavaScript off, a profile of its own in `profile`, and
/// `args`; its output. The browser is stopped by its PID if it takes longer than 60 s.
async fn chromium(profile: &Path, args: &[String]) -> Result<std::process::Output> {
    let child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-javascript",
            "--window-size=1200,800",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{CHROMIUM} is not installed (scripts/deps.sh installs it)")
        }
        Err(e) => return Err(e.into()),
    };
    let pid = child.id();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output());
    match tokio::time::timeout(Duration::from_secs(60), out).await {
        Ok(out) => {
            let out = out??;
            ensure!(out.status.success(), "{CHROMIUM} {args:?}: {}", out.status);
            Ok(out)
        }
        Err(_) => {
            // SAFETY: kill(2) on the PID of the child this test started.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            bail!("{CHROMIUM} {args:?} did not finish within 60 s")
        }
    }
}

/// Headless Chromium, with JavaScript disabled, renders every node's status page into a
/// DOM that lists all three nodes and marks the leader the cluster reports, with the
/// page's self-refresh in place; the screenshot command of docs/metrics.md writes a
/// non-empty PNG.
///
/// Why: the page is for people at a browser, and must work without scripts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t184_the_status_page_renders_in_a_browser() -> Result<()> {
    init_tracing();
    within("t184", Duration::from_secs(150), run()).await
}

async fn run() -> Result<()> {
    let cluster = Cluster::start(ClusterOptions {
        metrics_listen: true,
        ..ClusterOptions::default()
    })
    .await?;
    let leader = cluster.leader(Duration::from_secs(20)).await?;
    let ids = cluster.ids();
    for &id in &ids {
        let addr = cluster.node(id)?.metrics_addr.clone().context("metrics")?;
        let profile = cluster.dir().join(format!("chromium-{id}"));
        let shot = cluster.dir().join(format!("status-{id}.png"));
        let url = format!("http://{addr}/");
        let dom = chromium(&profile, &["--dump-dom".into(), url.clone()]).await?;
        let dom = String::from_utf8(dom.stdout)?;
        ensure!(
            dom.contains("http-equiv=\"refresh\""),
            "node {id}: no refresh in {dom}"
        );
        ensure!(!dom.contains("<script"), "node {id}'s page has a script");
        for n in &ids {
            ensure!(
                dom.contains(&format!("<td>node {n}</td>")),
                "node {n} missing from node {id}'s rendered page: {dom}"
            );
        }
        ensure!(
            dom.contains(&format!(
                "<tr class=\"leader\"><td>node {leader}</td><td>LEADER</td>"
            )),
            "node {id}'s rendered page does not mark node {leader} as the leader: {dom}"
        );
        chromium(&profile, &[format!("--screenshot={}", shot.display()), url]).await?;
        let png = std::fs::metadata(&shot).with_context(|| format!("no {}", shot.display()))?;
        ensure!(png.len() > 1000, "screenshot of {} bytes", png.len());
    }
    cluster.finish();
    Ok(())
}
