//! The operations commands that ask every configured node: `health` (and its monitoring
//! form `health --check`), `stats` and `flush`, with a row per node.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sutra_client::{CallOptions, Client};
use sutra_proto::storage::{FlushResponse, GetStatsRequest, GetStatsResponse, HealthCheckResponse};

use crate::health;
use crate::view::{NodeRows, Output, Row, print};

const HEALTH_HELP: &str = "\
With --check, the endpoints are taken as the whole cluster. Each node's line starts with OK
(serving: it knows a leader and is caught up) or FAIL (with the reason or the connection
error); the last line is the verdict:
  0 OK        every node serves and all name the same leader
  1 WARNING   a majority serves and agrees on the leader (writes go on); a node is down or behind
  2 CRITICAL  fewer than a majority serve, or serving nodes name different leaders
  3 UNKNOWN   the check could not run (flags, TLS files)
With --backup-dir, a line on the newest verified backup that deploy/backup recorded in
DIR/latest.json comes before the verdict: WARNING when there is none or the cluster was
last seen to hold its content more than --backup-warn-age-hours ago; the worse of the
cluster's and the backup's verdict wins.
deploy/health-check wraps this for cron and monitoring.";

/// The commands that ask every node.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Health of every node.
    #[command(after_help = HEALTH_HELP)]
    Health {
        /// Judge the cluster as a monitoring check: a line per node, a verdict line,
        /// exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (the check could not run).
        #[arg(long, conflicts_with = "serving")]
        check: bool,
        /// Exit 0 only if every given node serves (knows a leader, is caught up), 1
        /// otherwise: a container's or load balancer's health probe of one node.
        #[arg(long)]
        serving: bool,
        /// With --check: judge the newest verified backup recorded in DIR/latest.json
        /// (deploy/backup): WARNING when there is none or it is too old.
        #[arg(long, value_name = "DIR", requires = "check")]
        backup_dir: Option<PathBuf>,
        /// With --backup-dir: hours (fractions allowed) after which the newest verified
        /// backup is a WARNING.
        #[arg(long, value_name = "HOURS", default_value_t = health::BACKUP_WARN_AGE_HOURS,
              value_parser = hours, requires = "backup_dir")]
        backup_warn_age_hours: f64,
    },
    /// Statistics of every node.
    Stats {
        /// Also print each node's content hash and the applied index it reflects
        /// (equal hashes at equal indexes: identical data).
        #[arg(long)]
        content_hash: bool,
    },
    /// Checkpoint and purge the log on every node.
    Flush,
}

impl Command {
    /// True for `health --check`.
    pub fn is_check(&self) -> bool {
        matches!(self, Command::Health { check: true, .. })
    }
}

/// Runs the command on every node and prints a row per node. A node that did not answer
/// fails the command after the rows are printed; a `health --check` verdict other than
/// OK ends it with the verdict's exit code.
pub async fn run(command: Command, client: &Client, output: Output) -> anyhow::Result<()> {
    let call = CallOptions::default();
    match command {
        Command::Health {
            check: true,
            backup_dir,
            backup_warn_age_hours,
            ..
        } => {
            let mut report = health::check(&client.health_all(call).await);
            if let Some(dir) = backup_dir {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                report = report.with_backup(health::backup_check(&dir, backup_warn_age_hours, now));
            }
            print(output, &report)?;
            match report.verdict.exit_code() {
                0 => Ok(()),
                code => Err(crate::Exit(code).into()),
            }
        }
        Command::Health { serving, .. } => {
            let results = client.health_all(call).await;
            let all_serving = results
                .iter()
                .all(|r| r.result.as_ref().is_ok_and(|h| h.healthy));
            print_rows(output, NodeRows::new(results, HealthRow::new))?;
            if serving && !all_serving {
                return Err(crate::Exit(1).into());
            }
            Ok(())
        }
        Command::Stats { content_hash } => {
            let req = GetStatsRequest {
                include_content_hash: content_hash,
            };
            let results = client.stats_all_with(req, call).await;
            let row = |endpoint, st| StatsRow::new(endpoint, st, content_hash);
            print_rows(output, NodeRows::new(results, row))
        }
        Command::Flush => {
            let results = client.flush_all(call).await;
            print_rows(output, NodeRows::new(results, FlushRow::new))
        }
    }
}

/// Hours, a finite number 0 or more (`26`, `0.5`).
fn hours(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|h| h.is_finite() && *h >= 0.0)
        .ok_or_else(|| format!("{s:?} is not a number of hours"))
}

fn print_rows<R: Row>(output: Output, rows: NodeRows<R>) -> anyhow::Result<()> {
    print(output, &rows)?;
    rows.all_answered()
}

/// A node's `health` row.
#[derive(Debug, Serialize)]
pub struct HealthRow {
    endpoint: String,
    node_id: u64,
    healthy: bool,
    status: String,
    role: String,
    leader_id: u64,
    term: u64,
    applied_index: u64,
    reason: String,
}

impl HealthRow {
    fn new(endpoint: String, h: HealthCheckResponse) -> Self {
        Self {
            endpoint,
            node_id: h.node_id,
            healthy: h.healthy,
            status: h.status,
            role: h.role,
            leader_id: h.leader_id,
            term: h.term,
            applied_index: h.applied_index,
            reason: h.reason,
        }
    }
}

impl Row for HealthRow {
    fn line(&self) -> String {
        format!(
            "{}  node {}  {}  {}  leader {}  term {}  applied {}  {}",
            self.endpoint,
            self.node_id,
            self.status,
            self.role,
            self.leader_id,
            self.term,
            self.applied_index,
            self.reason
        )
    }
}

/// A node's `stats` row: every statistic the node reports. The content hash is there
/// only if asked for, since the node computes it only then.
#[derive(Debug, Serialize)]
pub struct StatsRow {
    endpoint: String,
    node_id: u64,
    concepts: u64,
    edges: u64,
    written: u64,
    dropped: u64,
    pending: u64,
    reconciliations: u64,
    uptime_seconds: u64,
    log_size_bytes: u64,
    data_file_bytes: u64,
    garbage_bytes: u64,
    last_checkpoint_index: u64,
    applied_index: u64,
    commit_index: u64,
    term: u64,
    flushes: u64,
    #[serde(flatten)]
    content: Option<ContentHash>,
}

/// A node's content hash and the applied index it reflects.
#[derive(Debug, Serialize)]
pub struct ContentHash {
    content_hash: String,
    content_hash_index: u64,
}

impl StatsRow {
    fn new(endpoint: String, st: GetStatsResponse, content_hash: bool) -> Self {
        Self {
            endpoint,
            node_id: st.node_id,
            concepts: st.concepts,
            edges: st.edges,
            written: st.written,
            dropped: st.dropped,
            pending: st.pending,
            reconciliations: st.reconciliations,
            uptime_seconds: st.uptime_seconds,
            log_size_bytes: st.log_size_bytes,
            data_file_bytes: st.data_file_bytes,
            garbage_bytes: st.garbage_bytes,
            last_checkpoint_index: st.last_checkpoint_index,
            applied_index: st.applied_index,
            commit_index: st.commit_index,
            term: st.term,
            flushes: st.flushes,
            content: content_hash.then_some(ContentHash {
                content_hash: st.content_hash,
                content_hash_index: st.content_hash_index,
            }),
        }
    }
}

impl Row for StatsRow {
    /// Every statistic, in the order of `GetStatsResponse`'s meaning: who and when,
    /// content, the write counters, sizes, then log positions.
    fn line(&self) -> String {
        let mut line = format!(
            "{}  node {}  term {}  up {} s  concepts {}  edges {}  written {}  dropped {}  pending {}  reconciliations {}  log {} B  data {} B  garbage {} B  flushes {}  checkpoint {}  commit {}  applied {}",
            self.endpoint,
            self.node_id,
            self.term,
            self.uptime_seconds,
            self.concepts,
            self.edges,
            self.written,
            self.dropped,
            self.pending,
            self.reconciliations,
            self.log_size_bytes,
            self.data_file_bytes,
            self.garbage_bytes,
            self.flushes,
            self.last_checkpoint_index,
            self.commit_index,
            self.applied_index
        );
        if let Some(c) = &self.content {
            line.push_str(&format!(
                "  content {} at index {}",
                c.content_hash, c.content_hash_index
            ));
        }
        line
    }
}

/// A node's `flush` row.
#[derive(Debug, Serialize)]
pub struct FlushRow {
    endpoint: String,
    checkpoint_index: u64,
    log_size_bytes: u64,
}

impl FlushRow {
    fn new(endpoint: String, f: FlushResponse) -> Self {
        Self {
            endpoint,
            checkpoint_index: f.checkpoint_index,
            log_size_bytes: f.log_size_bytes,
        }
    }
}

impl Row for FlushRow {
    fn line(&self) -> String {
        format!(
            "{}  checkpoint {}  log {} B after",
            self.endpoint, self.checkpoint_index, self.log_size_bytes
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{NodeRow, View};

    fn stats() -> GetStatsResponse {
        GetStatsResponse {
            concepts: 5,
            edges: 2,
            written: 12,
            dropped: 1,
            pending: 3,
            reconciliations: 4,
            uptime_seconds: 60,
            node_id: 2,
            log_size_bytes: 8000,
            data_file_bytes: 9000,
            garbage_bytes: 360,
            last_checkpoint_index: 10,
            applied_index: 14,
            commit_index: 15,
            term: 3,
            flushes: 6,
            content_hash: "ab".repeat(16),
            content_hash_index: 14,
        }
    }

    #[test]
    fn stats_print_every_statistic_in_the_line_and_in_json() {
        let rows = NodeRows(vec![NodeRow::Answered(StatsRow::new(
            "h:1".into(),
            stats(),
            false,
        ))]);
        assert_eq!(
            rows.table(),
            "h:1  node 2  term 3  up 60 s  concepts 5  edges 2  written 12  dropped 1  pending 3  reconciliations 4  log 8000 B  data 9000 B  garbage 360 B  flushes 6  checkpoint 10  commit 15  applied 14"
        );
        let j = serde_json::to_value(&rows).unwrap();
        let want = [
            ("node_id", 2),
            ("concepts", 5),
            ("edges", 2),
            ("written", 12),
            ("dropped", 1),
            ("pending", 3),
            ("reconciliations", 4),
            ("uptime_seconds", 60),
            ("log_size_bytes", 8000),
            ("data_file_bytes", 9000),
            ("garbage_bytes", 360),
            ("last_checkpoint_index", 10),
            ("applied_index", 14),
            ("commit_index", 15),
            ("term", 3),
            ("flushes", 6),
        ];
        for (field, value) in want {
            assert_eq!(j[0][field], value, "{field}: {j}");
        }
        assert_eq!(j[0]["endpoint"], "h:1");
        assert!(j[0].get("content_hash").is_none(), "{j}");
    }

    #[test]
    fn stats_with_the_content_hash_add_it_to_the_line_and_the_json() {
        let row = StatsRow::new("h:1".into(), stats(), true);
        let hash = "ab".repeat(16);
        assert!(
            row.line()
                .ends_with(&format!("applied 14  content {hash} at index 14")),
            "{}",
            row.line()
        );
        let j = serde_json::to_value(&row).unwrap();
        assert_eq!(j["content_hash"], hash.as_str());
        assert_eq!(j["content_hash_index"], 14);
    }

    #[test]
    fn health_and_flush_rows() {
        let health = HealthRow::new(
            "h:1".into(),
            HealthCheckResponse {
                healthy: true,
                status: "SERVING".into(),
                reason: String::new(),
                node_id: 1,
                role: "leader".into(),
                leader_id: 1,
                term: 2,
                applied_index: 9,
                commit_index: 9,
                lag_entries: 0,
                ..HealthCheckResponse::default()
            },
        );
        // The reason comes last, so a serving node's line ends in two spaces.
        assert_eq!(
            health.line(),
            "h:1  node 1  SERVING  leader  leader 1  term 2  applied 9  "
        );
        let j = serde_json::to_value(&health).unwrap();
        assert_eq!(j["healthy"], true);
        assert_eq!(j["status"], "SERVING");
        assert_eq!(j["role"], "leader");
        assert_eq!(j["reason"], "");
        let flush = FlushRow::new(
            "h:1".into(),
            FlushResponse {
                checkpoint_index: 14,
                log_size_bytes: 88,
                data_file_bytes: 99,
            },
        );
        assert_eq!(flush.line(), "h:1  checkpoint 14  log 88 B after");
        let j = serde_json::to_value(&flush).unwrap();
        assert_eq!(j["checkpoint_index"], 14);
        assert_eq!(j["log_size_bytes"], 88);
    }
}
