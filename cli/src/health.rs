//! `sutra health --check`: the cluster's health as a monitoring check. One line per node,
//! a verdict line, and the exit code of the monitoring-plugin convention (0 OK, 1
//! WARNING, 2 CRITICAL, 3 UNKNOWN), so cron, Nagios/Icinga, or a shell `if` can use it.

use sutra_client::NodeResult;
use sutra_proto::storage::HealthCheckResponse;

/// The cluster's state as the given endpoints report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    fn word(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::Warning => "WARNING",
            Verdict::Critical => "CRITICAL",
        }
    }
}

/// Exit code for a check that could not be run at all (bad flags, unreadable TLS files).
pub const UNKNOWN_EXIT: i32 = 3;

/// The check's result: a line per node (in endpoint order), the verdict line, the JSON
/// form of both.
pub struct Report {
    pub verdict: Verdict,
    pub lines: Vec<String>,
    pub summary: String,
    pub json: serde_json::Value,
}

/// Judges the cluster from every node's `HealthCheck` answer (or failure to answer).
/// The endpoints are taken to be the whole membership: a majority of them must serve.
pub fn check(results: &[NodeResult<HealthCheckResponse>]) -> Report {
    let total = results.len();
    let mut lines = Vec::with_capacity(total);
    let mut nodes = Vec::with_capacity(total);
    let mut serving_leaders = Vec::new();
    for r in results {
        match &r.result {
            Ok(h) => {
                let ok = h.healthy;
                if ok {
                    serving_leaders.push(h.leader_id);
                }
                let why = if ok {
                    String::new()
                } else if h.reason.is_empty() {
                    format!("  {}", h.status)
                } else {
                    format!("  {}", h.reason)
                };
                lines.push(format!(
                    "{} node {} {}  {}  leader {}  term {}  applied {}  lag {}{why}",
                    if ok { "OK  " } else { "FAIL" },
                    h.node_id,
                    r.endpoint,
                    h.role,
                    h.leader_id,
                    h.term,
                    h.applied_index,
                    h.lag_entries,
                ));
                nodes.push(serde_json::json!({
                    "endpoint": r.endpoint, "ok": ok, "node_id": h.node_id, "role": h.role,
                    "leader_id": h.leader_id, "term": h.term, "applied_index": h.applied_index,
                    "lag_entries": h.lag_entries, "reason": h.reason,
                }));
            }
            Err(e) => {
                lines.push(format!("FAIL node ? {}  unreachable: {e}", r.endpoint));
                nodes.push(serde_json::json!({
                    "endpoint": r.endpoint, "ok": false, "reason": format!("unreachable: {e}"),
                }));
            }
        }
    }
    let serving = serving_leaders.len();
    let majority = total / 2 + 1;
    let mut leaders = serving_leaders;
    leaders.sort_unstable();
    leaders.dedup();
    let (verdict, summary) = if serving < majority {
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
    };
    let summary = format!("cluster {}: {summary}", verdict.word());
    let json = serde_json::json!({
        "verdict": verdict.word(), "summary": summary, "serving": serving, "nodes": nodes,
    });
    Report {
        verdict,
        lines,
        summary,
        json,
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
        assert_eq!(r.lines.len(), 3);
        assert!(
            r.lines.iter().all(|l| l.starts_with("OK   node ")),
            "{:?}",
            r.lines
        );
        assert_eq!(r.summary, "cluster OK: 3 of 3 nodes serving, leader 2");
    }

    #[test]
    fn one_node_down_is_a_warning_naming_it() {
        let r = check(&[node(1, 2, true), node(2, 2, true), down(3)]);
        assert_eq!(r.verdict, Verdict::Warning);
        assert_eq!(r.verdict.exit_code(), 1);
        assert!(
            r.lines[2].starts_with("FAIL node ? n3:50051  unreachable: "),
            "{}",
            r.lines[2]
        );
        let r = check(&[node(1, 2, true), node(2, 2, true), node(3, 0, false)]);
        assert_eq!(r.verdict, Verdict::Warning);
        assert!(r.lines[2].ends_with("no leader known"), "{}", r.lines[2]);
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
        assert_eq!(r.json["verdict"], "WARNING");
        assert_eq!(r.json["serving"], 2);
        assert_eq!(r.json["nodes"].as_array().map(Vec::len), Some(3));
        assert_eq!(r.json["nodes"][2]["ok"], false);
    }
}
