//! t97: a `sutra import` killed halfway and run again finishes the import without
//! applying any batch twice, and leaves the same records as an uninterrupted import into
//! another fresh cluster.

use std::process::Stdio;
use std::time::Duration;

use sutra_cluster_tests::{ClientRole, Cluster, ClusterOptions, init_tracing, wait_until, within};

use crate::t96_import::{assert_same, content, converged, files, generate};

/// Writes the nodes applied (`GetStats.written` on every node, once they converged; all
/// equal).
async fn written(cluster: &Cluster) -> anyhow::Result<u64> {
    converged(cluster).await?;
    let mut seen = Vec::new();
    for id in cluster.ids() {
        let mut c = cluster.client(id, ClientRole::Reader)?;
        let req = sutra_proto::storage::GetStatsRequest::default();
        seen.push(c.storage.get_stats(req).await?.into_inner().written);
    }
    anyhow::ensure!(
        seen.iter().all(|w| *w == seen[0]),
        "written per node: {seen:?}"
    );
    Ok(seen[0])
}

fn read_progress(path: &std::path::Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn done(p: &serde_json::Value) -> u64 {
    p["done"]
        .as_array()
        .map_or(0, |d| d.iter().filter_map(serde_json::Value::as_u64).sum())
}

/// With the real binaries against two fresh clusters, a file of 2000 concepts and 1000
/// edges imported with `--parallel 2 --batch-ops 10` (300 batches):
/// - into cluster C, the `sutra import` child process is SIGKILLed by its PID once its
///   progress file records at least 20 batches done and before it is complete;
/// - one writer's count in the progress file is then lowered by one, standing for a
///   process killed after the cluster applied a batch and before it was recorded
///   (which a kill by chance rarely hits);
/// - run again with the same command: it finishes; its JSON summary says batches were
///   skipped as done and at least one was already applied (answered by the cluster from
///   its session table, not applied again), and sent + skipped + already applied = 300;
/// - cluster D imports the same file (its own copy) uninterrupted;
/// - both hold exactly the file's records (scan, every concept's neighbors), each
///   cluster's nodes converge, and each applied exactly 300 writes (`GetStats.written`):
///   no batch twice.
///
/// Why: a migration of millions of records will be interrupted (a lost SSH session, a
/// restart); running the same command again must finish it, never double it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t97_killed_import_resumes_without_applying_twice() -> anyhow::Result<()> {
    init_tracing();
    within("t97", Duration::from_secs(55), run()).await
}

async fn run() -> anyhow::Result<()> {
    let (_dir, dir) = files();
    let file = dir.join("records.jsonl");
    let want = generate(&file, "k/", 2000, 1000);
    let path = file.to_str().expect("a UTF-8 path");
    let progress_path = dir.join("records.jsonl.import-progress");
    let flags = [
        "--output",
        "json",
        "import",
        path,
        "--parallel",
        "2",
        "--batch-ops",
        "10",
    ];

    let c = Cluster::start(ClusterOptions::default()).await?;
    c.leader(Duration::from_secs(15)).await?;
    let base_c = written(&c).await?;
    tracing::info!("--- import into cluster C, killed halfway");
    let mut child = c
        .sutra_command(ClientRole::Writer, &flags)?
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let seen = wait_until(
        "the import recording 20 batches done",
        Duration::from_secs(20),
        async || {
            if let Some(status) = child.try_wait()? {
                return Err(sutra_cluster_tests::fatal(anyhow::anyhow!(
                    "the import ended ({status}) before it was killed"
                )));
            }
            match read_progress(&progress_path) {
                Some(p) if done(&p) >= 20 => Ok(p),
                Some(p) => anyhow::bail!("{} done", done(&p)),
                None => anyhow::bail!("no progress file yet"),
            }
        },
    )
    .await?;
    child.kill()?;
    let status = child.wait()?;
    tracing::info!(%status, done = done(&seen), "import killed");
    let mut p = read_progress(&progress_path).expect("the progress file after the kill");
    assert_eq!(p["complete"], false, "{p}");
    assert_eq!(p["batches"], 300, "{p}");
    let recorded = done(&p);
    assert!(recorded < 300, "{p}");
    let w = (0..2)
        .find(|&w| p["done"][w].as_u64().unwrap_or(0) > 0)
        .expect("a writer with a batch done");
    let n = p["done"][w].as_u64().expect("a count");
    p["done"][w] = (n - 1).into();
    std::fs::write(&progress_path, p.to_string())?;

    tracing::info!("--- the same command again");
    let summary = c.sutra(ClientRole::Writer, &flags)?.json()?;
    tracing::info!(%summary, "resumed");
    let n = |k: &str| {
        summary[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k}: {summary}"))
    };
    assert_eq!(n("batches"), 300, "{summary}");
    assert_eq!(n("skipped"), recorded - 1, "{summary}");
    assert!(n("skipped") >= 19, "{summary}");
    assert!(n("deduplicated") >= 1, "{summary}");
    assert_eq!(
        n("sent") + n("skipped") + n("deduplicated"),
        300,
        "{summary}"
    );
    assert_eq!(
        read_progress(&progress_path).expect("progress")["complete"],
        true
    );

    tracing::info!("--- the same file into cluster D, uninterrupted");
    let d = Cluster::start(ClusterOptions::default()).await?;
    d.leader(Duration::from_secs(15)).await?;
    let base_d = written(&d).await?;
    let copy_dir = dir.join("copy");
    std::fs::create_dir(&copy_dir)?;
    let copy = copy_dir.join("records.jsonl");
    std::fs::copy(&file, &copy)?;
    let copy = copy.to_str().expect("a UTF-8 path");
    let summary = d
        .sutra(
            ClientRole::Writer,
            &[
                "--output",
                "json",
                "import",
                copy,
                "--parallel",
                "2",
                "--batch-ops",
                "10",
            ],
        )?
        .json()?;
    assert_eq!(summary["sent"], 300, "{summary}");

    let got_c = content(&c).await?;
    assert_same(&got_c, &want, "cluster C (killed and resumed)");
    let got_d = content(&d).await?;
    assert_eq!(got_c, got_d, "clusters C and D hold different records");
    assert_eq!(
        written(&c).await? - base_c,
        300,
        "cluster C applied a batch twice"
    );
    assert_eq!(written(&d).await? - base_d, 300);
    c.finish();
    d.finish();
    Ok(())
}
