//! The node's Prometheus metrics. Gauges are read at scrape time from the state the node
//! keeps anyway (Raft metrics, engine statistics, the cluster state); the leader-change
//! counter and its recent history are kept by [`LeaderWatch`], fed by the event watcher
//! (`events.rs`). Instruments updated as work happens ([`Instruments`]) are registered
//! beside them.
//! Rendering takes short read locks only and never awaits.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::ServerState;
use parking_lot::Mutex;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::build_info;

mod instruments;
mod process;

pub use instruments::{Instruments, Refusal, WriteStage, code_name};

use crate::node::Node;

/// How many leader changes the status page remembers.
const RECENT_LEADER_CHANGES: usize = 16;

type Labels = Vec<(&'static str, String)>;

/// One change of the leader this node saw.
#[derive(Debug, Clone)]
pub struct LeaderChange {
    /// When, as seconds since the Unix epoch.
    pub at_unix_s: f64,
    /// The new leader (`None`: no leader known).
    pub leader: Option<u64>,
    /// The term.
    pub term: u64,
}

/// Leader changes as this node saw them: a counter and the last few.
#[derive(Debug, Default, Clone)]
pub struct LeaderWatch {
    changes: Counter,
    recent: Arc<Mutex<VecDeque<LeaderChange>>>,
}

impl LeaderWatch {
    /// Records what this node now knows of the leader: a change of leader (or of term)
    /// joins the recent history, and one to a known leader counts.
    pub fn note(&self, leader: Option<u64>, term: u64) {
        let mut recent = self.recent.lock();
        if recent
            .back()
            .is_some_and(|c| c.leader == leader && c.term == term)
        {
            return;
        }
        if leader.is_some() {
            self.changes.inc();
        }
        if recent.len() == RECENT_LEADER_CHANGES {
            recent.pop_front();
        }
        recent.push_back(LeaderChange {
            at_unix_s: now_unix_s(),
            leader,
            term,
        });
    }

    /// The counter of changes to a known leader.
    pub fn changes(&self) -> Counter {
        self.changes.clone()
    }

    /// The last leader changes, oldest first.
    pub fn recent(&self) -> Vec<LeaderChange> {
        self.recent.lock().iter().cloned().collect()
    }
}

fn now_unix_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g: Gauge = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

fn gauge_family(registry: &mut Registry, name: &str, help: &str, values: Vec<(Labels, i64)>) {
    let f: Family<Labels, Gauge> = Family::default();
    for (labels, v) in values {
        f.get_or_create(&labels).set(v);
    }
    registry.register(name, help, f);
}

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let c: Counter = Counter::default();
    c.inc_by(value);
    registry.register(name, help, c);
}

type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

fn float_gauge(registry: &mut Registry, name: &str, help: &str, value: f64) {
    let g: FloatGauge = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

fn float_counter(registry: &mut Registry, name: &str, help: &str, value: f64) {
    let c: Counter<f64, std::sync::atomic::AtomicU64> = Counter::default();
    c.inc_by(value);
    registry.register(name, help, c);
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The registry of everything this node reports, filled from its state now.
pub fn registry(node: &Node) -> Registry {
    let mut r = Registry::default();
    gauge_family(
        &mut r,
        "sutra_build_info",
        "Version and commit of this node's binary; always 1",
        vec![(
            vec![
                ("version", build_info::VERSION.to_string()),
                ("commit", build_info::COMMIT.to_string()),
            ],
            1,
        )],
    );
    raft_metrics(&mut r, node);
    engine_metrics(&mut r, node);
    disk_metrics(&mut r, node);
    node.instruments.register(&mut r);
    process::register(&mut r);
    tls_metrics(&mut r, node);
    r
}

/// The Raft log's size and the room on the file system holding the data directory.
fn disk_metrics(r: &mut Registry, node: &Node) {
    gauge(
        r,
        "sutra_log_bytes",
        "Bytes of the Raft log on disk",
        as_i64(node.log_size_bytes()),
    );
    match crate::disk::space(&node.config.data_dir) {
        Ok(space) => {
            gauge(
                r,
                "sutra_disk_free_bytes",
                "Bytes an unprivileged writer may still allocate on the data directory's file system",
                as_i64(space.free),
            );
            gauge(
                r,
                "sutra_disk_size_bytes",
                "Size of the data directory's file system",
                as_i64(space.size),
            );
        }
        Err(e) => tracing::debug!(error = %e, "free disk space not read"),
    }
    counter(
        r,
        "sutra_flushes",
        "Flush calls served by this process",
        node.flushes(),
    );
}

/// Seconds until the node's and the CA's certificates expire (negative once expired),
/// read from the files in use now, so a rotated certificate shows at the next scrape.
fn tls_metrics(r: &mut Registry, node: &Node) {
    let Some(tls) = node.config.tls() else {
        return;
    };
    let now = now_unix_s();
    let f: Family<Labels, FloatGauge> = Family::default();
    for (which, path) in [("node", &tls.cert), ("ca", &tls.ca)] {
        match sutra_certs::not_after_from_pem_file(path) {
            Ok(t) => {
                f.get_or_create(&vec![("cert", which.to_string())])
                    .set(t as f64 - now);
            }
            Err(e) => tracing::debug!(cert = which, error = %e, "certificate expiry not read"),
        }
    }
    r.register(
        "sutra_tls_certificate_expiry_seconds",
        "Seconds until the certificate expires",
        f,
    );
}

fn raft_metrics(r: &mut Registry, node: &Node) {
    let m = node.metrics();
    let leader = m.current_leader;
    gauge(
        r,
        "sutra_raft_has_leader",
        "1 if this node knows a leader",
        i64::from(leader.is_some()),
    );
    gauge(
        r,
        "sutra_raft_is_leader",
        "1 if this node is the leader",
        i64::from(m.state == ServerState::Leader),
    );
    gauge(
        r,
        "sutra_raft_term",
        "Current Raft term",
        as_i64(m.current_term),
    );
    gauge(
        r,
        "sutra_raft_commit_index",
        "Highest log index known committed",
        as_i64(sutra_raft::position_of(m.cluster_committed.as_ref())),
    );
    gauge(
        r,
        "sutra_raft_applied_index",
        "Highest log index applied to the storage engine",
        as_i64(sutra_raft::position_of(m.last_applied.as_ref())),
    );
    let progress = crate::service::cluster::follower_progress(node.id, &m);
    let per = |f: &dyn Fn(&sutra_proto::cluster::FollowerProgress) -> i64| {
        progress
            .iter()
            .map(|p| (vec![("follower", p.node_id.to_string())], f(p)))
            .collect::<Vec<_>>()
    };
    gauge_family(
        r,
        "sutra_raft_follower_matched_index",
        "On the leader: highest log index each follower holds",
        per(&|p| as_i64(p.matched_index)),
    );
    gauge_family(
        r,
        "sutra_raft_follower_lag_entries",
        "On the leader: entries each follower is behind the leader's log",
        per(&|p| as_i64(p.lag_entries)),
    );
    let f: Family<Labels, FloatGauge> = Family::default();
    for p in progress.iter().filter(|p| p.last_ack_ms_ago != u64::MAX) {
        f.get_or_create(&vec![("follower", p.node_id.to_string())])
            .set(p.last_ack_ms_ago as f64 / 1000.0);
    }
    r.register(
        "sutra_raft_follower_last_ack_seconds",
        "On the leader: seconds since each follower last acknowledged",
        f,
    );
}

fn engine_metrics(r: &mut Registry, node: &Node) {
    let s = node.engine.stats();
    gauge(r, "sutra_concepts", "Live concepts", as_i64(s.concepts));
    gauge(r, "sutra_edges", "Live edges", as_i64(s.edges));
    gauge(
        r,
        "sutra_data_bytes",
        "Bytes of the data file in use",
        as_i64(s.data_bytes),
    );
    gauge(
        r,
        "sutra_data_file_bytes",
        "Allocated size of the data file",
        as_i64(s.file_bytes),
    );
    gauge(
        r,
        "sutra_data_garbage_bytes",
        "Bytes of overwritten or deleted records, reclaimed by compaction",
        as_i64(s.garbage_bytes),
    );
    gauge(
        r,
        "sutra_sessions",
        "Client sessions remembered",
        as_i64(s.sessions),
    );
    counter(
        r,
        "sutra_writes_applied",
        "Writes applied to the storage engine",
        s.writes_applied,
    );
    counter(
        r,
        "sutra_checkpoints",
        "Checkpoints taken by this process",
        s.checkpoints,
    );
    counter(
        r,
        "sutra_compactions",
        "Compactions finished by this process",
        s.compactions,
    );
    gauge(
        r,
        "sutra_data_file_limit_bytes",
        "Largest the data file may grow",
        as_i64(node.config.data_file_limit_bytes),
    );
    let params = node.cluster().params();
    gauge(
        r,
        "sutra_quota_bytes",
        "The cluster's data quota in bytes (0: none)",
        as_i64(params.map_or(0, |p| p.quota_bytes)),
    );
    let alarms = node.cluster().alarms();
    let kinds = alarms
        .iter()
        .filter(|a| a.node == node.id)
        .map(|a| (vec![("kind", a.kind.as_str().to_string())], 1))
        .collect();
    gauge_family(
        r,
        "sutra_alarm_active",
        "1 for each alarm raised on this node",
        kinds,
    );
}

/// The metrics in the OpenMetrics text format (what Prometheus asks for).
pub fn render(node: &Node) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &registry(node));
    out
}

/// OpenMetrics text as the classic Prometheus text format (0.0.4), for scrapers and tools
/// that do not ask for OpenMetrics: a counter's `# HELP` and `# TYPE` name the `_total`
/// sample, and there is no `# UNIT` or `# EOF`.
pub fn to_classic_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_classic_text;

    #[test]
    fn classic_text_names_counters_by_their_samples() {
        let om = "# HELP a_b Things.\n# TYPE a_b counter\na_b_total 3\n# HELP g G.\n# TYPE g gauge\ng 1\n# EOF\n";
        assert_eq!(
            to_classic_text(om),
            "# HELP a_b_total Things.\n# TYPE a_b_total counter\na_b_total 3\n# HELP g G.\n# TYPE g gauge\ng 1\n"
        );
    }
}
