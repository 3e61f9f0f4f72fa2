//! `sutra backup save FILE` and `sutra backup verify FILE`: an online, consistent backup
//! of the whole store streamed from one node (admin certificate; by default from a
//! follower, after a read-index barrier, so the leader is not loaded), and the offline
//! proof of a backup file (every checksum, then the content hash recomputed by a scratch
//! store). `verify` exits in the monitoring-plugin convention: 0 OK, 1 WARNING (older
//! than `--warn-age-hours`), 2 CRITICAL (damaged or not what its manifest says), 3
//! UNKNOWN (the file could not be read).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use sutra_backup::{BackupReader, BackupWriter, Error as BackupError, Manifest};
use sutra_client::Connector;
use sutra_proto::cluster::{BackupRequest, ClusterStatusRequest, backup_chunk};

use crate::connect::Connection;
use crate::health::{UNKNOWN_EXIT, Verdict};
use crate::view::{Output, View, print};

/// Flags of `sutra backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// `backup` actions.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Stream a consistent backup of the whole store into FILE (admin certificate):
    /// written to FILE.partial, fsynced, then renamed.
    Save {
        /// The backup file to write.
        file: PathBuf,
        /// Most bytes per second the node sends (0: no limit).
        #[arg(long, default_value_t = 0)]
        rate_limit: u64,
        /// Take it from the leader instead of a follower.
        #[arg(long)]
        from_leader: bool,
    },
    /// Prove a backup file offline: every checksum, the content hash recomputed from
    /// the payload against the manifest; index, counts, size and age.
    Verify {
        /// The backup file.
        file: PathBuf,
        /// WARNING (exit 1) when the backup is older than this many hours.
        #[arg(long)]
        warn_age_hours: Option<f64>,
        /// Where the scratch store is built (needs room for the payload; default: the
        /// backup file's directory).
        #[arg(long)]
        scratch_dir: Option<PathBuf>,
    },
}

/// Whether `action` is a monitoring check (UNKNOWN when it cannot run).
pub fn is_check(args: &BackupArgs) -> bool {
    matches!(args.action, Action::Verify { .. })
}

/// What `backup save` wrote.
#[derive(Debug, Serialize)]
pub struct Saved {
    pub file: String,
    pub source_node: u64,
    pub applied_index: u64,
    pub term: u64,
    pub concepts: u64,
    pub edges: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub mb_per_s: f64,
    pub content_hash: String,
    pub payload_sha256: String,
    /// When the node took the backup, seconds since the Unix epoch (the manifest's).
    pub created_unix_s: u64,
}

impl View for Saved {
    fn table(&self) -> String {
        format!(
            "backup {}: index {} (term {}) from node {}, {} concepts, {} edges, {} bytes in {:.1} s ({:.1} MB/s), content {}",
            self.file,
            self.applied_index,
            self.term,
            self.source_node,
            self.concepts,
            self.edges,
            self.bytes,
            self.seconds,
            self.mb_per_s,
            self.content_hash
        )
    }
}

/// What `backup verify` found.
#[derive(Debug, Serialize)]
pub struct Verified {
    pub verdict: Verdict,
    pub file: String,
    /// The one-line summary.
    pub summary: String,
    pub file_bytes: u64,
    pub age_s: u64,
    pub manifest: Option<Manifest>,
}

impl View for Verified {
    fn table(&self) -> String {
        self.summary.clone()
    }
}

/// Runs the action; the exit code. Only `save` connects (through `connect`).
pub async fn run(
    args: &BackupArgs,
    connect: impl FnOnce() -> anyhow::Result<Connection>,
    output: Output,
) -> anyhow::Result<i32> {
    match &args.action {
        Action::Save {
            file,
            rate_limit,
            from_leader,
        } => {
            let conn = connect()?;
            let saved = save(
                file,
                *rate_limit,
                *from_leader,
                &conn.endpoints,
                &conn.connector,
            )
            .await?;
            print(output, &saved)?;
            Ok(0)
        }
        Action::Verify {
            file,
            warn_age_hours,
            scratch_dir,
        } => {
            let (file, warn_age_hours, scratch_dir) =
                (file.clone(), *warn_age_hours, scratch_dir.clone());
            let (v, code) = tokio::task::spawn_blocking(move || {
                verify(&file, warn_age_hours, scratch_dir.as_deref())
            })
            .await?;
            print(output, &v)?;
            Ok(code)
        }
    }
}

/// The node to take the backup from: the first answering follower, else (or with
/// `from_leader`) the leader.
async fn source(
    endpoints: &[String],
    connector: &Connector,
    from_leader: bool,
) -> anyhow::Result<String> {
    let mut leader = None;
    let mut last = None;
    for ep in endpoints {
        let status = match connector.cluster(ep).await {
            Ok(mut c) => c.status(ClusterStatusRequest {}).await,
            Err(e) => {
                last = Some(anyhow::anyhow!("{ep}: {e}"));
                continue;
            }
        };
        match status {
            Ok(s) => {
                let s = s.into_inner();
                let is_leader = s.node_id == s.leader_id;
                if is_leader {
                    leader = leader.or(Some(ep.clone()));
                } else if !from_leader && s.leader_id != 0 {
                    return Ok(ep.clone());
                }
            }
            Err(s) => last = Some(anyhow::anyhow!("{ep}: {}: {}", s.code(), s.message())),
        }
    }
    leader.ok_or_else(|| last.unwrap_or_else(|| anyhow::anyhow!("no endpoint answered")))
}

pub(crate) async fn save(
    file: &Path,
    rate_limit: u64,
    from_leader: bool,
    endpoints: &[String],
    connector: &Connector,
) -> anyhow::Result<Saved> {
    let ep = source(endpoints, connector, from_leader).await?;
    let started = Instant::now();
    let mut stream = connector
        .cluster(&ep)
        .await?
        .backup(BackupRequest {
            rate_limit_bytes_per_sec: rate_limit,
        })
        .await
        .map_err(|s| anyhow::anyhow!("{ep}: {}: {}", s.code(), s.message()))?
        .into_inner();
    let first = stream
        .message()
        .await?
        .and_then(|c| c.kind)
        .ok_or_else(|| anyhow::anyhow!("{ep} ended the backup before its manifest"))?;
    let backup_chunk::Kind::ManifestJson(json) = first else {
        anyhow::bail!("{ep} sent data before the backup's manifest");
    };
    let manifest: Manifest = serde_json::from_str(&json)?;
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(manifest.snapshot_bytes);
        bar.set_style(
            ProgressStyle::with_template(
                "{bytes}/{total_bytes} [{bar:30}] {bytes_per_sec}, {eta} left",
            )?
            .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut writer = BackupWriter::create(file)?;
    while let Some(chunk) = stream
        .message()
        .await
        .map_err(|s| anyhow::anyhow!("{ep}: {}: {}", s.code(), s.message()))?
    {
        match chunk.kind {
            Some(backup_chunk::Kind::Data(bytes)) => {
                writer.write(&bytes)?;
                bar.set_position(writer.payload_bytes());
            }
            _ => anyhow::bail!("{ep} sent a second manifest"),
        }
    }
    bar.finish_and_clear();
    let m = writer.finish(manifest)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(Saved {
        file: file.display().to_string(),
        source_node: m.source_node,
        applied_index: m.applied_index,
        term: m.term,
        concepts: m.concepts,
        edges: m.edges,
        bytes: m.snapshot_bytes,
        seconds,
        mb_per_s: m.snapshot_bytes as f64 / 1e6 / seconds.max(1e-9),
        content_hash: m.content_hash,
        payload_sha256: m.payload_sha256,
        created_unix_s: m.created_unix_s,
    })
}

/// Proves `file`; the report and the exit code.
pub fn verify(file: &Path, warn_age_hours: Option<f64>, scratch: Option<&Path>) -> (Verified, i32) {
    let name = file.display().to_string();
    // A file that cannot be read is UNKNOWN, one that fails a check CRITICAL; either
    // way the JSON verdict is CRITICAL (the check found no good backup).
    let failed = |code: i32, why: String, m: Option<Manifest>, len: u64| {
        let word = if code == UNKNOWN_EXIT {
            "UNKNOWN"
        } else {
            "CRITICAL"
        };
        (
            Verified {
                verdict: Verdict::Critical,
                file: name.clone(),
                summary: format!("backup {word}: {why}"),
                file_bytes: len,
                age_s: 0,
                manifest: m,
            },
            code,
        )
    };
    let reader = match BackupReader::open(file) {
        Ok(r) => r,
        Err(e @ BackupError::Io { .. }) => {
            return failed(UNKNOWN_EXIT, e.to_string(), None, 0);
        }
        Err(e) => return failed(2, e.to_string(), None, 0),
    };
    let dir = scratch
        .map(Path::to_path_buf)
        .or_else(|| file.parent().map(Path::to_path_buf))
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let m = reader.manifest().clone();
    if let Err(e) = sutra_backup::verify(&reader, &dir) {
        return failed(2, e.to_string(), Some(m), reader.file_len());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let age_s = m.age_s(now);
    let old = warn_age_hours.is_some_and(|h| age_s as f64 > h * 3600.0);
    let (verdict, word, code) = if old {
        (Verdict::Warning, "WARNING", 1)
    } else {
        (Verdict::Ok, "OK", 0)
    };
    let summary = format!(
        "backup {word}: {name}: cluster {} index {} term {}, {} concepts, {} edges, {} bytes, {} old{}; every checksum and the content hash {} hold",
        m.cluster_id,
        m.applied_index,
        m.term,
        m.concepts,
        m.edges,
        reader.file_len(),
        age(age_s),
        if old { " (past the warning age)" } else { "" },
        m.content_hash,
    );
    (
        Verified {
            verdict,
            file: name,
            summary,
            file_bytes: reader.file_len(),
            age_s,
            manifest: Some(m),
        },
        code,
    )
}

/// `3d 4h`, `2h 5m`, `40s`.
pub fn age(s: u64) -> String {
    match s {
        s if s >= 86_400 => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m {}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_at_a_glance() {
        assert_eq!(age(40), "40s");
        assert_eq!(age(3 * 3600 + 300), "3h 5m");
        assert_eq!(age(2 * 86_400 + 7200), "2d 2h");
    }

    #[test]
    fn a_missing_file_is_unknown_and_garbage_is_critical() {
        let dir = tempfile::tempdir().unwrap();
        let (v, code) = verify(&dir.path().join("none"), None, None);
        assert_eq!(code, UNKNOWN_EXIT, "{}", v.summary);
        let junk = dir.path().join("junk");
        std::fs::write(&junk, vec![1u8; 4096]).unwrap();
        let (v, code) = verify(&junk, None, None);
        assert_eq!(code, 2, "{}", v.summary);
        assert!(v.summary.contains("offset 0"), "{}", v.summary);
    }
}
