//! t93: `deploy/backup`, the scheduled backup script, against a real cluster, and the
//! newest verified backup's age in `sutra health --check` and `deploy/health-check`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use sutra_cluster_tests::process::cli_binary;
use sutra_cluster_tests::{
    CliRun, ClientRole, Cluster, ClusterOptions, init_tracing, wait_until, within,
};
use sutra_proto::storage::GetStatsRequest;

fn deploy(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(name)
}

/// Runs `script` with only the given environment, as a timer or cron would.
fn run_script(script: &str, env: &[(&str, String)], args: &[&str]) -> Result<CliRun> {
    let out = Command::new(deploy(script))
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .with_context(|| format!("running deploy/{script}"))?;
    Ok(CliRun::of(out))
}

/// The backup files in `dir`, oldest first by name, and any other file but latest.json.
fn listing(dir: &Path) -> Result<(Vec<String>, Vec<String>)> {
    let mut backups = Vec::new();
    let mut other = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name.starts_with("sutra-") && name.ends_with(".sutra-backup") {
            backups.push(name);
        } else if !["latest.json", ".lock", "sutra_backup.prom"].contains(&name.as_str()) {
            other.push(name);
        }
    }
    backups.sort_by_key(|n| index_of(n));
    Ok((backups, other))
}

/// The applied index in a backup's name.
fn index_of(name: &str) -> u64 {
    name.trim_end_matches(".sutra-backup")
        .rsplit('-')
        .next()
        .and_then(|i| i.parse().ok())
        .unwrap_or(0)
}

fn latest(dir: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("latest.json"))?;
    Ok(serde_json::from_str(&text)?)
}

/// The name in the `backup OK: <name>: ...` line of a run that wrote one.
fn written(run: &CliRun) -> Result<String> {
    ensure!(
        run.code == Some(0),
        "backup run failed ({:?}): {}{}",
        run.code,
        run.stdout,
        run.stderr
    );
    let line = run
        .lines()
        .into_iter()
        .find(|l| l.starts_with("backup OK: "))
        .with_context(|| format!("no `backup OK` line: {run:?}"))?;
    Ok(line["backup OK: ".len()..]
        .split(':')
        .next()
        .unwrap_or_default()
        .to_string())
}

/// Waits until every node reports one content hash; returns it.
async fn converged(cluster: &Cluster) -> Result<String> {
    wait_until(
        "one content hash on every node",
        Duration::from_secs(10),
        async || {
            let mut hashes = Vec::new();
            for id in cluster.ids() {
                let s = cluster
                    .client(id, ClientRole::Reader)?
                    .storage
                    .clone()
                    .get_stats(GetStatsRequest {
                        include_content_hash: true,
                    })
                    .await?
                    .into_inner();
                hashes.push(s.content_hash);
            }
            hashes.dedup();
            ensure!(hashes.len() == 1, "hashes {hashes:?}");
            Ok(hashes.remove(0))
        },
    )
    .await
}

fn put(cluster: &Cluster, key: &str) -> Result<()> {
    let r = cluster.sutra(ClientRole::Writer, &["put", key, "--content", key])?;
    ensure!(r.code == Some(0), "put {key}: {r:?}");
    Ok(())
}

/// A `sutra` stand-in that runs the real one, logs its arguments, and after a `backup
/// save` flips the byte at offset 16 of the file it wrote (the payload's first bytes).
fn corrupting_cli(dir: &Path, real: &Path) -> Result<PathBuf> {
    let path = dir.join("sutra-corrupting");
    let script = format!(
        r#"#!/bin/sh
echo "$@" >>"{log}"
"{real}" "$@" || exit $?
case " $* " in
    *" backup save "*)
        for f in "$@"; do file=$f; done
        b=$(od -An -tu1 -j16 -N1 "$file" | tr -d ' ')
        printf "\\$(printf %03o $(( (b + 1) % 256 )))" |
            dd of="$file" bs=1 seek=16 count=1 conv=notrunc 2>/dev/null
        ;;
esac
"#,
        log = dir.join("sutra-args.log").display(),
        real = real.display()
    );
    std::fs::write(&path, script)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

/// `deploy/backup` with an admin certificate and an empty directory: the first run
/// writes `sutra-<time>-<index>.sutra-backup`, verifies it and records it in
/// latest.json (its file, index and the manifest's content hash); a second run with no
/// write in between says `unchanged, skipped` and writes nothing; after a write a third
/// run writes a new one at a higher index. With `--keep 2` after more backups two are
/// left, the newest among them; `--keep-days` removes an old one even on a skipped run.
/// A backup damaged between save and verify is deleted and the run exits 2, leaving
/// latest.json as it was; the rate limit is passed to `sutra backup save`. A flipped
/// byte in the newest backup is caught by `sutra backup verify` (exit 2). `sutra health
/// --check --backup-dir` says WARNING (exit 1) for a backup past the age threshold or
/// none at all while the cluster is healthy, OK with a large threshold; `deploy/health-check`
/// passes both settings through.
///
/// Why: a backup schedule is trusted unattended; it must never keep a backup it has not
/// proven, never delete the last good one, and monitoring must notice when backups stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t93_backup_script() -> Result<()> {
    init_tracing();
    within("t93", Duration::from_secs(120), run()).await
}

async fn run() -> Result<()> {
    let cli = cli_binary()?;
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    cluster.leader(Duration::from_secs(15)).await?;
    let certs = cluster.certs_dir();
    let admin = sutra_certs::CertPaths::client(certs, "admin");
    let ca = sutra_certs::CertPaths::ca(certs).cert;
    let dir = cluster.dir().join("backups");
    let env = vec![
        ("SUTRA_BIN", cli.display().to_string()),
        ("SUTRA_ENDPOINTS", cluster.api_addrs().join(",")),
        ("SUTRA_CA", ca.display().to_string()),
        ("SUTRA_CERT", admin.cert.display().to_string()),
        ("SUTRA_KEY", admin.key.display().to_string()),
        ("SUTRA_BACKUP_DIR", dir.display().to_string()),
    ];
    let backup = |args: &[&str]| run_script("backup", &env, args);

    tracing::info!("--- first run: a verified backup and latest.json");
    put(&cluster, "t93/a")?;
    let first = written(&backup(&[])?)?;
    let (files, other) = listing(&dir)?;
    assert_eq!(files, std::slice::from_ref(&first), "{other:?}");
    assert!(other.is_empty(), "left behind: {other:?}");
    let prom = std::fs::read_to_string(dir.join("sutra_backup.prom"))?;
    assert!(
        prom.contains("sutra_backup_last_verified_timestamp_seconds "),
        "{prom}"
    );
    assert!(
        first.starts_with("sutra-20") && first.ends_with(".sutra-backup"),
        "{first}"
    );
    let verified = cluster.sutra(
        ClientRole::Reader,
        &[
            "--output",
            "json",
            "backup",
            "verify",
            &dir.join(&first).display().to_string(),
        ],
    )?;
    assert_eq!(verified.code, Some(0), "{verified:?}");
    let manifest = serde_json::from_str::<serde_json::Value>(&verified.stdout)?["manifest"].clone();
    let l = latest(&dir)?;
    assert_eq!(l["file"], first.as_str(), "{l}");
    assert_eq!(l["applied_index"], manifest["applied_index"], "{l}");
    assert_eq!(
        index_of(&first),
        manifest["applied_index"].as_u64().unwrap_or(0)
    );
    assert_eq!(l["content_hash"], manifest["content_hash"], "{l}");
    assert_eq!(l["created_unix_s"], manifest["created_unix_s"], "{l}");
    assert!(
        l["verified_unix_s"].as_u64() >= l["created_unix_s"].as_u64(),
        "{l}"
    );
    assert!(
        l["created"].as_str().is_some_and(|s| s.ends_with('Z')),
        "{l}"
    );

    tracing::info!("--- second run, nothing written: skipped");
    assert_eq!(
        serde_json::Value::from(converged(&cluster).await?),
        l["content_hash"]
    );
    let r = backup(&[])?;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.lines()
            .first()
            .is_some_and(|l| l.starts_with("backup unchanged, skipped: ") && l.contains(&first)),
        "{r:?}"
    );
    assert_eq!(listing(&dir)?.0, std::slice::from_ref(&first));
    assert_eq!(latest(&dir)?["file"], first.as_str());

    tracing::info!("--- a write, then a third run: a new backup");
    put(&cluster, "t93/b")?;
    let second = written(&backup(&[])?)?;
    assert!(index_of(&second) > index_of(&first), "{first} {second}");
    assert_eq!(listing(&dir)?.0, [first.clone(), second.clone()]);
    assert_eq!(latest(&dir)?["file"], second.as_str());

    tracing::info!("--- retention: --keep 2 leaves the two newest");
    put(&cluster, "t93/c")?;
    let third = written(&backup(&[])?)?;
    assert_eq!(listing(&dir)?.0.len(), 3, "the default keeps 30 days");
    put(&cluster, "t93/d")?;
    let r = backup(&["--keep", "2"])?;
    let fourth = written(&r)?;
    assert_eq!(listing(&dir)?.0, [third.clone(), fourth.clone()], "{r:?}");
    for gone in [&first, &second] {
        assert!(r.stdout.contains(&format!("removed {gone}")), "{r:?}");
    }
    assert_eq!(latest(&dir)?["file"], fourth.as_str());

    tracing::info!("--- --keep-days removes an old backup on a skipped run too");
    let old = "sutra-20200101T000000Z-1.sutra-backup";
    std::fs::copy(dir.join(&third), dir.join(old))?;
    converged(&cluster).await?;
    let r = backup(&["--keep-days", "1", "--keep", "1"])?;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.starts_with("backup unchanged, skipped"), "{r:?}");
    assert!(r.stdout.contains(&format!("removed {old}")), "{r:?}");
    // Younger than a day: kept, whatever --keep says.
    assert_eq!(listing(&dir)?.0, [third.clone(), fourth.clone()], "{r:?}");

    tracing::info!("--- a backup damaged before verification: deleted, exit 2");
    let corrupting = corrupting_cli(cluster.dir(), &cli)?;
    let mut bad_env = env.clone();
    bad_env.retain(|(k, _)| *k != "SUTRA_BIN");
    bad_env.push(("SUTRA_BIN", corrupting.display().to_string()));
    bad_env.push(("SUTRA_BACKUP_RATE_LIMIT", "50000000".into()));
    put(&cluster, "t93/e")?;
    let r = run_script("backup", &bad_env, &[])?;
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stdout.starts_with("backup CRITICAL: "), "{r:?}");
    assert!(r.stdout.contains("deleted"), "{r:?}");
    let (files, other) = listing(&dir)?;
    assert_eq!(files, [third.clone(), fourth.clone()]);
    assert!(other.is_empty(), "left behind: {other:?}");
    assert_eq!(latest(&dir)?["file"], fourth.as_str());
    let args = std::fs::read_to_string(cluster.dir().join("sutra-args.log"))?;
    assert!(
        args.lines()
            .any(|l| l.contains("backup save --rate-limit 50000000 ")),
        "{args}"
    );

    tracing::info!("--- a flipped byte in the newest backup: sutra backup verify exit 2");
    let newest = dir.join(&fourth);
    let mut bytes = std::fs::read(&newest)?;
    bytes[16] ^= 0x10;
    std::fs::write(&newest, &bytes)?;
    let r = cluster.sutra(
        ClientRole::Reader,
        &["backup", "verify", &newest.display().to_string()],
    )?;
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stdout.starts_with("backup CRITICAL: "), "{r:?}");

    tracing::info!("--- the backup's age in sutra health --check");
    let dir_s = dir.display().to_string();
    let check = |hours: &str| {
        cluster.sutra(
            ClientRole::Reader,
            &[
                "health",
                "--check",
                "--backup-dir",
                &dir_s,
                "--backup-warn-age-hours",
                hours,
            ],
        )
    };
    // Followers serve once they have heard from the leader.
    let r = wait_until("the check saying OK", Duration::from_secs(10), async || {
        let r = check("1000")?;
        ensure!(r.code == Some(0), "{r:?}");
        Ok(r)
    })
    .await?;
    let lines = r.lines();
    assert_eq!(lines.len(), 5, "{r:?}");
    assert!(
        lines[3].starts_with(&format!(
            "backup OK: {fourth}, index {}, ",
            index_of(&fourth)
        )),
        "{r:?}"
    );
    assert!(
        lines[4].starts_with("cluster OK: 3 of 3 nodes serving"),
        "{r:?}"
    );
    // 0.0001 h is 0.36 s: past it once the clock has moved on a second.
    let r = wait_until(
        "the backup past 0.0001 h",
        Duration::from_secs(5),
        async || {
            let r = check("0.0001")?;
            ensure!(r.code == Some(1), "{r:?}");
            Ok(r)
        },
    )
    .await?;
    let verdict = r.lines().last().copied().unwrap_or_default().to_string();
    assert!(
        verdict.starts_with("cluster WARNING: 3 of 3 nodes serving, leader ")
            && verdict.contains(&format!("the newest verified backup {fourth}"))
            && verdict.ends_with("past 0.0001 h"),
        "{r:?}"
    );
    let r = cluster.sutra(
        ClientRole::Reader,
        &[
            "--output",
            "json",
            "health",
            "--check",
            "--backup-dir",
            &dir_s,
            "--backup-warn-age-hours",
            "0.0001",
        ],
    )?;
    assert_eq!(r.code, Some(1), "{r:?}");
    let j: serde_json::Value = serde_json::from_str(&r.stdout)?;
    assert_eq!(j["verdict"], "WARNING", "{j}");
    assert_eq!(j["backup"]["verdict"], "WARNING", "{j}");
    assert_eq!(j["backup"]["file"], fourth.as_str(), "{j}");
    assert_eq!(j["backup"]["applied_index"], index_of(&fourth), "{j}");
    assert!(j["backup"]["age_s"].as_u64().is_some(), "{j}");

    tracing::info!("--- a two-day-old latest.json, and none: WARNING at the default 26 h");
    let old_dir = cluster.dir().join("old-backups");
    std::fs::create_dir(&old_dir)?;
    std::fs::copy(dir.join(&fourth), old_dir.join(&fourth))?;
    let mut record = latest(&dir)?;
    let two_days_ago = record["created_unix_s"].as_u64().unwrap_or(0) - 2 * 86_400;
    for k in ["created_unix_s", "verified_unix_s", "confirmed_unix_s"] {
        record[k] = two_days_ago.into();
    }
    std::fs::write(old_dir.join("latest.json"), record.to_string())?;
    let old_s = old_dir.display().to_string();
    let r = cluster.sutra(
        ClientRole::Reader,
        &["health", "--check", "--backup-dir", &old_s],
    )?;
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stdout.contains(&format!(
            "backup WARNING: the newest verified backup {fourth}"
        )) && r.stdout.contains("2d 0h old, past 26 h"),
        "{r:?}"
    );
    let empty = cluster.dir().join("no-backups");
    std::fs::create_dir(&empty)?;
    let r = cluster.sutra(
        ClientRole::Reader,
        &[
            "health",
            "--check",
            "--backup-dir",
            &empty.display().to_string(),
        ],
    )?;
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stdout.contains("backup WARNING: no verified backup in "),
        "{r:?}"
    );

    tracing::info!("--- deploy/health-check passes SUTRA_BACKUP_DIR and the threshold through");
    let reader = sutra_certs::CertPaths::client(certs, "reader");
    let mut hc_env = vec![
        ("SUTRA_BIN", cli.display().to_string()),
        ("SUTRA_ENDPOINTS", cluster.api_addrs().join(",")),
        ("SUTRA_CA", ca.display().to_string()),
        ("SUTRA_CERT", reader.cert.display().to_string()),
        ("SUTRA_KEY", reader.key.display().to_string()),
        ("SUTRA_BACKUP_DIR", old_s.clone()),
    ];
    let r = run_script("health-check", &hc_env, &[])?;
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stdout.contains("past 26 h"), "{r:?}");
    hc_env.push(("SUTRA_BACKUP_WARN_AGE_HOURS", "100".into()));
    let r = run_script("health-check", &hc_env, &[])?;
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains(&format!("backup OK: {fourth}")), "{r:?}");
    hc_env.pop();
    hc_env.push(("SUTRA_BACKUP_WARN_AGE_HOURS", "a day".into()));
    let r = run_script("health-check", &hc_env, &[])?;
    assert_eq!(r.code, Some(3), "{r:?}");
    assert!(
        r.stdout.starts_with("UNKNOWN: SUTRA_BACKUP_WARN_AGE_HOURS"),
        "{r:?}"
    );

    tracing::info!("--- a backup run that cannot start: exit 3, nothing written");
    let unset: Vec<_> = env
        .iter()
        .filter(|(k, _)| *k != "SUTRA_BACKUP_DIR")
        .cloned()
        .collect();
    let r = run_script("backup", &unset, &[])?;
    assert_eq!(r.code, Some(3), "{r:?}");
    assert!(
        r.stdout.starts_with("UNKNOWN: SUTRA_BACKUP_DIR is not set"),
        "{r:?}"
    );
    for args in [&["--keep", "0"][..], &["--keep-days", "x"], &["--frequent"]] {
        let r = backup(args)?;
        assert_eq!(r.code, Some(3), "{args:?}: {r:?}");
    }
    let r = run_script("backup", &env, &["/nonexistent/backup.env"])?;
    assert_eq!(r.code, Some(3), "{r:?}");
    let mut no_admin = env.clone();
    no_admin.retain(|(k, _)| *k != "SUTRA_KEY");
    no_admin.push(("SUTRA_KEY", "/nonexistent/admin-key.pem".into()));
    let r = run_script("backup", &no_admin, &[])?;
    assert_eq!(r.code, Some(3), "{r:?}");
    assert!(r.stdout.contains("/nonexistent/admin-key.pem"), "{r:?}");
    tracing::info!("--- --force takes a backup of an unchanged cluster");
    let forced = written(&backup(&["--force"])?)?;
    converged(&cluster).await?;
    let r = backup(&[])?;
    assert!(r.stdout.starts_with("backup unchanged, skipped"), "{r:?}");
    let again = written(&backup(&["--force"])?)?;
    assert_eq!(latest(&dir)?["file"], again.as_str());
    assert!(listing(&dir)?.0.contains(&forced));

    tracing::info!("--- a run while another holds the directory's lock: exit 3");
    {
        let lock = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(dir.join(".lock"))?;
        // SAFETY: flock on a descriptor this function owns; released when it is closed.
        let held = unsafe {
            libc::flock(
                std::os::fd::AsRawFd::as_raw_fd(&lock),
                libc::LOCK_EX | libc::LOCK_NB,
            )
        };
        ensure!(held == 0, "flock: {}", std::io::Error::last_os_error());
        let r = backup(&["--force"])?;
        assert_eq!(r.code, Some(3), "{r:?}");
        assert!(r.stdout.contains("another backup run holds"), "{r:?}");
    }
    let r = backup(&[])?;
    assert_eq!(r.code, Some(0), "the lock is free again: {r:?}");

    tracing::info!("--- a writer's certificate: the save is refused, exit 1, nothing kept");
    let writer = sutra_certs::CertPaths::client(certs, "writer");
    let mut as_writer = env.clone();
    as_writer.retain(|(k, _)| *k != "SUTRA_CERT" && *k != "SUTRA_KEY");
    as_writer.push(("SUTRA_CERT", writer.cert.display().to_string()));
    as_writer.push(("SUTRA_KEY", writer.key.display().to_string()));
    let before = listing(&dir)?;
    let r = run_script("backup", &as_writer, &["--force"])?;
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stdout.starts_with("backup FAILED: "), "{r:?}");
    assert_eq!(listing(&dir)?, before);

    cluster.finish();
    Ok(())
}
