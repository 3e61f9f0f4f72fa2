//! `sutra health --check`: the cluster's health as a monitoring check. One line per node,
//! a verdict line, and the exit code of the monitoring-plugin convention (0 OK, 1
//! WARNING, 2 CRITICAL, 3 UNKNOWN), so cron, Nagios/Icinga, or a shell `if` can use it.
//! With `--backup-dir`, the age of the newest verified backup (`deploy/backup`'s
//! latest.json) joins the verdict: the worse of the two wins.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sutra_client::NodeResult;
use sutra_proto::storage::HealthCheckResponse;

use crate::view::View;

/// The cluster's state as the given endpoints report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    /// Every node serves, all name the same leader.
    Ok,
    /// A majority serves and agrees on the leader (writes go on), but a node is down,
    /// behind or without a leader.
    Warning,
    /// Fewer than a majority serve, or serving nodes name different leaders: writes may
    /// stop.
    Critical,
}

impl Verdict {
    /// The process exit code for this verdict.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Ok => 0,
            Verdict::Warning => 1,
            Verdict::Critical => 2,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::Warning => "WARNING",
            Verdict::Critical => "CRITICAL",
        }
    }
}

/// Exit code for a check that could not be run at all (bad flags, unreadable TLS files).
pub const UNKNOWN_EXIT: i32 = 3;

/// The check's result: a line per node (in endpoint order), then the verdict line.
#[derive(Debug, Serialize)]
pub struct Report {
    pub verdict: Verdict,
    /// The verdict line, `cluster OK: 3 of 3 nodes serving, leader 2`.
    pub summary: String,
    /// How many nodes serve.
    pub serving: usize,
    pub nodes: Vec<NodeCheck>,
    /// The newest verified backup, with `--backup-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupCheck>,
}

/// One node's part of the check.
#[derive(Debug, Serialize)]
pub struct NodeCheck {
    pub endpoint: String,
    /// The node serves: it knows a leader and is caught up.
    pub ok: bool,
    /// What the node said; absent if it could not be reached.
    #[serde(flatten)]
    pub answer: Option<Answer>,
    /// Why the node does not serve (as it says, or `unreachable: ...`); empty if it does.
    pub reason: String,
}

/// What a node that answered said about itself.
#[derive(Debug, Serialize)]
pub struct Answer {
    pub node_id: u64,
    pub role: String,
    pub status: String,
    pub leader_id: u64,
    pub term: u64,
    pub applied_index: u64,
    pub lag_entries: u64,
    /// Active replicated alarms (`NOSPACE@2`).
    pub alarms: Vec<String>,
    /// Bytes of the node's data file in use, and the cluster quota (0: not known yet).
    pub data_bytes: u64,
    pub quota_bytes: u64,
    /// The node's release version and the commit its binary was built from.
    pub version: String,
    pub commit: String,
}

impl NodeCheck {
    fn new(r: &NodeResult<HealthCheckResponse>) -> Self {
        match &r.result {
            Ok(h) => Self {
                endpoint: r.endpoint.clone(),
                ok: h.healthy,
                answer: Some(Answer {
                    node_id: h.node_id,
                    role: h.role.clone(),
                    status: h.status.clone(),
                    leader_id: h.leader_id,
                    term: h.term,
                    applied_index: h.applied_index,
                    lag_entries: h.lag_entries,
                    alarms: h.alarms.clone(),
                    data_bytes: h.data_bytes,
                    quota_bytes: h.quota_bytes,
                    version: h.version.clone(),
                    commit: h.commit.clone(),
                }),
                reason: h.reason.clone(),
            },
            Err(e) => Self {
                endpoint: r.endpoint.clone(),
                ok: false,
                answer: None,
                reason: format!("unreachable: {e}"),
            },
        }
    }

    /// `OK   node 1 host:port  leader  leader 1  term 2  applied 9  lag 0  v0.1.0 (commit)`;
    /// a node that does not serve starts with `FAIL` and ends with why.
    pub fn line(&self) -> String {
        let Some(a) = &self.answer else {
            return format!("FAIL node ? {}  {}", self.endpoint, self.reason);
        };
        let why = match (self.ok, self.reason.is_empty()) {
            (true, _) => String::new(),
            (false, true) => format!("  {}", a.status),
            (false, false) => format!("  {}", self.reason),
        };
        format!(
            "{} node {} {}  {}  leader {}  term {}  applied {}  lag {}  v{} ({}){why}",
            if self.ok { "OK  " } else { "FAIL" },
            a.node_id,
            self.endpoint,
            a.role,
            a.leader_id,
            a.term,
            a.applied_index,
            a.lag_entries,
            a.version,
            a.commit,
        )
    }
}

impl Report {
    /// The table's lines: one per node, then the verdict.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<_> = self.nodes.iter().map(NodeCheck::line).collect();
        if let Some(b) = &self.backup {
            lines.push(b.summary.clone());
        }
        lines.push(self.summary.clone());
        lines
    }

    /// Adds the backup's verdict: a line before the verdict line, and the verdict the
    /// worse of the cluster's and the backup's (the verdict line then says why).
    pub fn with_backup(mut self, backup: BackupCheck) -> Self {
        if backup.verdict.exit_code() > self.verdict.exit_code() {
            let rest = self
                .summary
                .split_once(": ")
                .map_or(self.summary.as_str(), |(_, rest)| rest);
            self.summary = format!(
                "cluster {}: {rest}; {}",
                backup.verdict.word(),
                backup.reason
            );
            self.verdict = backup.verdict;
        }
        self.backup = Some(backup);
        self
    }
}

impl View for Report {
    fn table(&self) -> String {
        self.lines().join("\n")
    }
}

/// Judges the cluster from every node's `HealthCheck` answer (or failure to answer).
/// The endpoints are taken to be the whole membership: a majority of them must serve.
pub fn check(results: &[NodeResult<HealthCheckResponse>]) -> Report {
    let nodes: Vec<_> = results.iter().map(NodeCheck::new).collect();
    let mut leaders: Vec<u64> = nodes
        .iter()
        .filter(|n| n.ok)
        .filter_map(|n| n.answer.as_ref().map(|a| a.leader_id))
        .collect();
    let serving = leaders.len();
    leaders.sort_unstable();
    leaders.dedup();
    let (mut verdict, mut summary) = judge(serving, nodes.len(), &leaders);
    if let Some((space, why)) = space(&nodes)
        && space.exit_code() > verdict.exit_code()
    {
        verdict = space;
        summary = format!("{summary}; {why}");
    }
    Report {
        verdict,
        summary: format!("cluster {}: {summary}", verdict.word()),
        serving,
        nodes,
        backup: None,
    }
}

/// Hours after which the newest verified backup is a WARNING, by default: a daily
/// schedule with two hours' slack.
pub const BACKUP_WARN_AGE_HOURS: f64 = 26.0;

/// The newest verified backup as `deploy/backup` records it in `latest.json`.
#[derive(Debug, Deserialize)]
struct Latest {
    file: String,
    applied_index: u64,
    content_hash: String,
    created_unix_s: u64,
    verified_unix_s: u64,
    /// The last time the cluster was seen to hold exactly this backup's content: its
    /// creation, or a later run that found nothing changed and skipped.
    #[serde(default)]
    confirmed_unix_s: Option<u64>,
}

/// The newest verified backup's part of the check.
#[derive(Debug, Serialize)]
pub struct BackupCheck {
    pub verdict: Verdict,
    /// The backup line, `backup OK: sutra-...sutra-backup, index 42, 3h 5m old`.
    pub summary: String,
    /// What makes it a WARNING (empty when OK), for the verdict line.
    #[serde(skip)]
    reason: String,
    pub dir: String,
    /// The backup file (in `dir`), its applied index and content hash; absent when no
    /// verified backup is recorded.
    pub file: Option<String>,
    pub applied_index: Option<u64>,
    pub content_hash: Option<String>,
    /// Seconds since the backup was taken.
    pub age_s: Option<u64>,
    /// Seconds since the cluster was last seen to hold exactly its content (the age
    /// judged: an unchanged cluster's backup stays current).
    pub current_age_s: Option<u64>,
    pub verified_unix_s: Option<u64>,
    pub warn_age_hours: f64,
}

/// Judges the newest verified backup recorded in `dir/latest.json` at `now` (Unix
/// seconds): WARNING when there is none, it is gone, or the cluster was last seen to
/// hold its content more than `warn_age_hours` ago; else OK.
pub fn backup_check(dir: &Path, warn_age_hours: f64, now: u64) -> BackupCheck {
    let mut c = BackupCheck {
        verdict: Verdict::Warning,
        summary: String::new(),
        reason: String::new(),
        dir: dir.display().to_string(),
        file: None,
        applied_index: None,
        content_hash: None,
        age_s: None,
        current_age_s: None,
        verified_unix_s: None,
        warn_age_hours,
    };
    let path = dir.join("latest.json");
    let latest = match std::fs::read_to_string(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "no verified backup in {} (no latest.json; deploy/backup writes it)",
            dir.display()
        )),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        Ok(text) => serde_json::from_str::<Latest>(&text)
            .map_err(|e| format!("{} is not a backup record: {e}", path.display())),
    };
    let l = match latest {
        Ok(l) => l,
        Err(why) => {
            c.summary = format!("backup WARNING: {why}");
            c.reason = why;
            return c;
        }
    };
    let age_s = now.saturating_sub(l.created_unix_s);
    let current_age_s = now.saturating_sub(l.confirmed_unix_s.unwrap_or(0).max(l.created_unix_s));
    let what = format!("{}, index {}", l.file, l.applied_index);
    let age = crate::backup::age(age_s);
    // A run after the one that made it found the cluster unchanged.
    let unchanged = if l.confirmed_unix_s.is_some_and(|t| t > l.verified_unix_s) {
        format!(
            ", the cluster unchanged since (seen {} ago)",
            crate::backup::age(current_age_s)
        )
    } else {
        String::new()
    };
    let gone = !dir.join(&l.file).is_file();
    c.file = Some(l.file.clone());
    c.applied_index = Some(l.applied_index);
    c.content_hash = Some(l.content_hash);
    c.age_s = Some(age_s);
    c.current_age_s = Some(current_age_s);
    c.verified_unix_s = Some(l.verified_unix_s);
    if gone {
        c.reason = format!(
            "the newest verified backup {} is no longer in {}",
            l.file,
            dir.display()
        );
    } else if current_age_s as f64 > warn_age_hours * 3600.0 {
        c.reason = format!(
            "the newest verified backup {what} is {age} old{unchanged}, past {warn_age_hours} h"
        );
    } else {
        c.verdict = Verdict::Ok;
        c.summary = format!("backup OK: {what}, {age} old{unchanged}");
        return c;
    }
    c.summary = format!("backup WARNING: {}", c.reason);
    c
}

/// Share of the cluster quota a node's data may use before the check warns.
pub const QUOTA_WARN_RATIO: f64 = 0.85;

/// What the nodes say about room: CRITICAL while an alarm makes the cluster read-only,
/// WARNING once a node's data uses [`QUOTA_WARN_RATIO`] of the quota.
fn space(nodes: &[NodeCheck]) -> Option<(Verdict, String)> {
    let answers: Vec<&Answer> = nodes.iter().filter_map(|n| n.answer.as_ref()).collect();
    let mut alarms: Vec<&str> = answers
        .iter()
        .flat_map(|a| a.alarms.iter().map(String::as_str))
        .collect();
    alarms.sort_unstable();
    alarms.dedup();
    if !alarms.is_empty() {
        return Some((
            Verdict::Critical,
            format!(
                "alarm {} active: the cluster takes no new data (sutra alarm list)",
                alarms.join(", ")
            ),
        ));
    }
    let fullest = answers
        .iter()
        .filter(|a| a.quota_bytes > 0)
        .map(|a| (a.data_bytes as f64 / a.quota_bytes as f64, a.node_id))
        .max_by(|x, y| x.0.total_cmp(&y.0))?;
    (fullest.0 >= QUOTA_WARN_RATIO).then(|| {
        (
            Verdict::Warning,
            format!(
                "node {} holds {:.0}% of the cluster quota",
                fullest.1,
                fullest.0 * 100.0
            ),
        )
    })
}

/// The verdict on `serving` of `total` nodes serving, naming the distinct `leaders`.
fn judge(serving: usize, total: usize, leaders: &[u64]) -> (Verdict, String) {
    let majority = total / 2 + 1;
    if serving < majority {
        (
            Verdict::Critical,
            format!("{serving} of {total} nodes serving, fewer than a majority ({majority})"),
        )
    } else if leaders.len() > 1 {
        (
            Verdict::Critical,
            format!("serving nodes name different leaders: {leaders:?}"),
        )
    } else if serving < total {
        (
            Verdict::Warning,
            format!("{serving} of {total} nodes serving, leader {}", leaders[0]),
        )
    } else {
        (
            Verdict::Ok,
            format!("{serving} of {total} nodes serving, leader {}", leaders[0]),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sutra_client::ClientError;

    fn node(id: u64, leader: u64, healthy: bool) -> NodeResult<HealthCheckResponse> {
        NodeResult {
            endpoint: format!("n{id}:50051"),
            result: Ok(HealthCheckResponse {
                healthy,
                status: if healthy { "SERVING" } else { "NOT_SERVING" }.into(),
                reason: if healthy { "" } else { "no leader known" }.into(),
                node_id: id,
                role: if id == leader { "leader" } else { "follower" }.into(),
                leader_id: leader,
                term: 4,
                applied_index: 10,
                commit_index: 10,
                lag_entries: 0,
                version: "0.1.0".into(),
                commit: "0123456789ab".into(),
                ..HealthCheckResponse::default()
            }),
        }
    }

    fn down(id: u64) -> NodeResult<HealthCheckResponse> {
        NodeResult {
            endpoint: format!("n{id}:50051"),
            result: Err(ClientError::Unavailable {
                message: "connection refused".into(),
                leader_id: None,
                leader_addr: None,
            }),
        }
    }

    #[test]
    fn all_serving_with_one_leader_is_ok() {
        let r = check(&[node(1, 2, true), node(2, 2, true), node(3, 2, true)]);
        assert_eq!(r.verdict, Verdict::Ok);
        assert_eq!(r.nodes.len(), 3);
        assert!(
            r.nodes.iter().all(|n| n.line().starts_with("OK   node ")),
            "{:?}",
            r.lines()
        );
        assert_eq!(r.summary, "cluster OK: 3 of 3 nodes serving, leader 2");
    }

    #[test]
    fn one_node_down_is_a_warning_naming_it() {
        let r = check(&[node(1, 2, true), node(2, 2, true), down(3)]);
        assert_eq!(r.verdict, Verdict::Warning);
        assert_eq!(r.verdict.exit_code(), 1);
        assert!(
            r.nodes[2]
                .line()
                .starts_with("FAIL node ? n3:50051  unreachable: "),
            "{}",
            r.nodes[2].line()
        );
        let r = check(&[node(1, 2, true), node(2, 2, true), node(3, 0, false)]);
        assert_eq!(r.verdict, Verdict::Warning);
        assert!(
            r.nodes[2].line().ends_with("no leader known"),
            "{}",
            r.nodes[2].line()
        );
    }

    fn with_space(
        mut r: NodeResult<HealthCheckResponse>,
        data: u64,
        quota: u64,
        alarms: &[&str],
    ) -> NodeResult<HealthCheckResponse> {
        if let Ok(h) = &mut r.result {
            h.data_bytes = data;
            h.quota_bytes = quota;
            h.alarms = alarms.iter().map(|a| a.to_string()).collect();
        }
        r
    }

    #[test]
    fn an_alarm_is_critical_and_a_nearly_full_quota_a_warning() {
        let full = |id| with_space(node(id, 1, true), 90, 100, &[]);
        let r = check(&[full(1), node(2, 1, true), node(3, 1, true)]);
        assert_eq!(r.verdict, Verdict::Warning);
        assert!(
            r.summary.ends_with("node 1 holds 90% of the cluster quota"),
            "{}",
            r.summary
        );
        let r = check(&[
            with_space(node(1, 1, true), 10, 100, &[]),
            node(2, 1, true),
            node(3, 1, true),
        ]);
        assert_eq!(r.verdict, Verdict::Ok);
        let alarmed = with_space(node(2, 1, true), 10, 100, &["NOSPACE@2"]);
        let r = check(&[node(1, 1, true), alarmed, node(3, 1, true)]);
        assert_eq!(r.verdict, Verdict::Critical);
        assert!(
            r.summary.contains("alarm NOSPACE@2 active"),
            "{}",
            r.summary
        );
    }

    #[test]
    fn no_serving_majority_is_critical() {
        let r = check(&[node(1, 1, true), down(2), down(3)]);
        assert_eq!(r.verdict, Verdict::Critical);
        assert_eq!(r.verdict.exit_code(), 2);
        let r = check(&[down(1), down(2), down(3)]);
        assert_eq!(r.verdict, Verdict::Critical);
        let r = check(&[]);
        assert_eq!(r.verdict, Verdict::Critical);
    }

    #[test]
    fn serving_nodes_naming_two_leaders_is_critical() {
        let r = check(&[node(1, 1, true), node(2, 2, true), node(3, 2, true)]);
        assert_eq!(r.verdict, Verdict::Critical);
        assert!(r.summary.contains("different leaders"), "{}", r.summary);
    }

    #[test]
    fn json_has_the_verdict_and_every_node() {
        let r = check(&[node(1, 2, true), node(2, 2, true), down(3)]);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["verdict"], "WARNING");
        assert_eq!(json["summary"], r.summary.as_str());
        assert_eq!(json["serving"], 2);
        assert_eq!(json["nodes"].as_array().map(Vec::len), Some(3));
        assert_eq!(json["nodes"][0]["ok"], true);
        assert_eq!(json["nodes"][0]["node_id"], 1);
        assert_eq!(json["nodes"][0]["role"], "follower");
        assert_eq!(json["nodes"][0]["leader_id"], 2);
        assert_eq!(json["nodes"][0]["term"], 4);
        assert_eq!(json["nodes"][0]["applied_index"], 10);
        assert_eq!(json["nodes"][0]["lag_entries"], 0);
        assert_eq!(json["nodes"][0]["reason"], "");
        assert_eq!(json["nodes"][2]["ok"], false);
        assert_eq!(json["nodes"][2]["endpoint"], "n3:50051");
        assert!(json["nodes"][2].get("node_id").is_none(), "{json}");
        let reason = json["nodes"][2]["reason"].as_str().unwrap();
        assert!(reason.starts_with("unreachable: "), "{reason}");
    }

    const NOW: u64 = 1_800_000_000;

    fn latest(dir: &Path, file: &str, created: u64, confirmed: u64) {
        std::fs::write(dir.join(file), b"backup").unwrap();
        let json = serde_json::json!({
            "file": file,
            "applied_index": 42,
            "content_hash": "ab".repeat(16),
            "created_unix_s": created,
            "created": "2027-01-15T08:00:00Z",
            "verified_unix_s": created + 1,
            "verified": "2027-01-15T08:00:01Z",
            "confirmed_unix_s": confirmed,
            "confirmed": "2027-01-15T08:00:01Z",
        });
        std::fs::write(dir.join("latest.json"), json.to_string()).unwrap();
    }

    #[test]
    fn a_backup_younger_than_the_threshold_is_ok_and_an_older_one_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let name = "sutra-20270115T080000Z-42.sutra-backup";
        latest(dir.path(), name, NOW - 3 * 3600 - 300, NOW - 3 * 3600 - 299);
        let b = backup_check(dir.path(), 26.0, NOW);
        assert_eq!(b.verdict, Verdict::Ok, "{}", b.summary);
        assert_eq!(b.summary, format!("backup OK: {name}, index 42, 3h 5m old"));
        assert_eq!(b.age_s, Some(3 * 3600 + 300));
        let b = backup_check(dir.path(), 2.5, NOW);
        assert_eq!(b.verdict, Verdict::Warning);
        assert_eq!(
            b.summary,
            format!(
                "backup WARNING: the newest verified backup {name}, index 42 is 3h 5m old, past 2.5 h"
            )
        );
        // Fractions of an hour: 0.0001 h is 0.36 s.
        latest(dir.path(), name, NOW - 1, NOW - 1);
        assert_eq!(
            backup_check(dir.path(), 0.0001, NOW).verdict,
            Verdict::Warning
        );
        assert_eq!(backup_check(dir.path(), 0.001, NOW).verdict, Verdict::Ok);
    }

    #[test]
    fn an_old_backup_of_an_unchanged_cluster_stays_current() {
        let dir = tempfile::tempdir().unwrap();
        let name = "sutra-20270112T080000Z-42.sutra-backup";
        latest(dir.path(), name, NOW - 3 * 86_400, NOW - 600);
        let b = backup_check(dir.path(), 26.0, NOW);
        assert_eq!(b.verdict, Verdict::Ok, "{}", b.summary);
        assert!(
            b.summary
                .ends_with("3d 0h old, the cluster unchanged since (seen 10m 0s ago)"),
            "{}",
            b.summary
        );
        assert_eq!(b.current_age_s, Some(600));
        // A confirmation an hour past the threshold is stale again.
        latest(dir.path(), name, NOW - 3 * 86_400, NOW - 27 * 3600);
        assert_eq!(
            backup_check(dir.path(), 26.0, NOW).verdict,
            Verdict::Warning
        );
    }

    #[test]
    fn no_record_a_bad_record_or_a_missing_file_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let b = backup_check(dir.path(), 26.0, NOW);
        assert_eq!(b.verdict, Verdict::Warning);
        assert!(
            b.summary.contains("no verified backup in "),
            "{}",
            b.summary
        );
        assert_eq!(b.file, None);
        std::fs::write(dir.path().join("latest.json"), "{\"file\": 3").unwrap();
        let b = backup_check(dir.path(), 26.0, NOW);
        assert_eq!(b.verdict, Verdict::Warning);
        assert!(
            b.summary.contains("is not a backup record"),
            "{}",
            b.summary
        );
        let name = "sutra-20270115T080000Z-42.sutra-backup";
        latest(dir.path(), name, NOW - 60, NOW - 60);
        std::fs::remove_file(dir.path().join(name)).unwrap();
        let b = backup_check(dir.path(), 26.0, NOW);
        assert_eq!(b.verdict, Verdict::Warning);
        assert!(b.summary.contains("is no longer in"), "{}", b.summary);
    }

    #[test]
    fn the_worse_of_the_cluster_and_the_backup_wins() {
        let dir = tempfile::tempdir().unwrap();
        let name = "sutra-20270115T080000Z-42.sutra-backup";
        latest(dir.path(), name, NOW - 30 * 3600, NOW - 30 * 3600);
        let healthy = || check(&[node(1, 1, true), node(2, 1, true), node(3, 1, true)]);
        let r = healthy().with_backup(backup_check(dir.path(), 26.0, NOW));
        assert_eq!(r.verdict, Verdict::Warning);
        assert_eq!(
            r.summary,
            format!(
                "cluster WARNING: 3 of 3 nodes serving, leader 1; the newest verified backup {name}, index 42 is 1d 6h old, past 26 h"
            )
        );
        let lines = r.lines();
        assert_eq!(lines.len(), 5);
        assert!(lines[3].starts_with("backup WARNING: "), "{lines:?}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["verdict"], "WARNING");
        assert_eq!(json["backup"]["verdict"], "WARNING");
        assert_eq!(json["backup"]["file"], name);
        assert_eq!(json["backup"]["applied_index"], 42);
        assert_eq!(json["backup"]["age_s"], 30 * 3600);
        let r = healthy().with_backup(backup_check(dir.path(), 48.0, NOW));
        assert_eq!(r.verdict, Verdict::Ok);
        assert_eq!(r.summary, "cluster OK: 3 of 3 nodes serving, leader 1");
        assert_eq!(
            r.lines()[3],
            format!("backup OK: {name}, index 42, 1d 6h old")
        );
        let critical = check(&[node(1, 1, true), down(2), down(3)]);
        let summary = critical.summary.clone();
        let r = critical.with_backup(backup_check(dir.path(), 26.0, NOW));
        assert_eq!(r.verdict, Verdict::Critical);
        assert_eq!(r.summary, summary);
        assert!(check(&[node(1, 1, true)]).lines().len() == 2);
        let json = serde_json::to_value(check(&[node(1, 1, true)])).unwrap();
        assert!(json.get("backup").is_none(), "{json}");
    }

    #[test]
    fn the_table_is_a_line_per_node_then_the_verdict() {
        let r = check(&[node(1, 1, true), node(2, 1, true), node(3, 0, false)]);
        assert_eq!(
            r.table(),
            "OK   node 1 n1:50051  leader  leader 1  term 4  applied 10  lag 0  v0.1.0 (0123456789ab)\n\
             OK   node 2 n2:50051  follower  leader 1  term 4  applied 10  lag 0  v0.1.0 (0123456789ab)\n\
             FAIL node 3 n3:50051  follower  leader 0  term 4  applied 10  lag 0  v0.1.0 (0123456789ab)  no leader known\n\
             cluster WARNING: 2 of 3 nodes serving, leader 1"
        );
    }
}
