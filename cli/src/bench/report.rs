//! What a bench run measured: throughput, latency percentiles and, for a local cluster,
//! each node's CPU per operation; printed as a small table or as its JSON fields.

use std::time::Duration;

use super::cpu::NodeCpu;
use super::{Connections, Params, Workload};
use crate::view::View;

/// What a run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The command line that ran it.
    pub command: String,
    /// The workload.
    pub workload: Workload,
    /// How the clients reach the nodes.
    pub connections: Connections,
    /// Concurrent clients.
    pub clients: u32,
    /// Requests completed successfully.
    pub requests: u64,
    /// Requests that failed.
    pub errors: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// Length of the timed run in seconds.
    pub duration_secs: f64,
    /// Successful requests per second.
    pub ops_per_sec: f64,
    /// Latency percentiles of successful requests, in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// True if `--duration` ended the run before every request was sent.
    pub stopped_by_duration: bool,
    /// Milliseconds of server CPU per successful operation, summed over the nodes;
    /// `None` when the nodes' CPU time cannot be read (not a local cluster).
    pub server_cpu_ms_per_op: Option<f64>,
    /// Each node's CPU during the run (empty when it cannot be read).
    pub server_cpu: Vec<NodeCpu>,
}

/// Latencies and failures of a run, collected from its tasks.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Latency of each successful request.
    pub latencies: Vec<Duration>,
    /// Failed requests.
    pub errors: u64,
    /// The first failure.
    pub first_error: Option<String>,
}

impl Outcome {
    /// Adds another task's outcome to this one.
    pub fn merge(&mut self, other: Outcome) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
    }
}

impl View for Report {
    /// The report as a small table.
    fn table(&self) -> String {
        let mut out = format!(
            "command   {}\nworkload  {}  connections {}  clients {}  requests {}  errors {}\n",
            self.command,
            self.workload.name(),
            self.connections.name(),
            self.clients,
            self.requests,
            self.errors
        );
        out.push_str(&format!(
            "duration  {:.3} s  ops/s {:.1}{}\n",
            self.duration_secs,
            self.ops_per_sec,
            if self.stopped_by_duration {
                "  (stopped by --duration)"
            } else {
                ""
            }
        ));
        out.push_str(&format!(
            "latency   p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms
        ));
        if let Some(total) = self.server_cpu_ms_per_op {
            let nodes: Vec<String> = self
                .server_cpu
                .iter()
                .map(|n| {
                    format!(
                        "node {} {:.3} ms ({:.2} cores)",
                        n.node, n.ms_per_op, n.cores
                    )
                })
                .collect();
            out.push_str(&format!(
                "\nserver cpu  {total:.3} ms/op: {}",
                nodes.join(", ")
            ));
        }
        if let Some(e) = &self.first_error {
            out.push_str(&format!("\nfirst error  {e}"));
        }
        out
    }
}

/// The `p`th percentile (0..=100) of `sorted` by the nearest-rank method; zero if empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The report of a run that took `elapsed`, with the nodes' CPU over it.
pub fn report(
    p: &Params,
    command: String,
    mut all: Outcome,
    elapsed: Duration,
    server_cpu: Vec<NodeCpu>,
) -> Report {
    all.latencies.sort_unstable();
    let latencies = &all.latencies;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let ok = latencies.len() as u64;
    Report {
        command,
        workload: p.workload,
        connections: p.connections,
        clients: p.clients,
        requests: ok,
        errors: all.errors,
        first_error: all.first_error,
        duration_secs: elapsed.as_secs_f64(),
        ops_per_sec: ok as f64 / elapsed.as_secs_f64().max(1e-9),
        p50_ms: ms(percentile(latencies, 50.0)),
        p90_ms: ms(percentile(latencies, 90.0)),
        p99_ms: ms(percentile(latencies, 99.0)),
        max_ms: ms(latencies.last().copied().unwrap_or_default()),
        stopped_by_duration: ok + all.errors < p.requests,
        server_cpu_ms_per_op: (!server_cpu.is_empty())
            .then(|| server_cpu.iter().map(|n| n.ms_per_op).sum()),
        server_cpu,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sutra_client::ReadOptions;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let d = ms(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&d, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&d, 90.0), Duration::from_millis(90));
        assert_eq!(percentile(&d, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&d, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&d, 0.0), Duration::from_millis(1));
        let few = ms(&[3, 7, 20]);
        assert_eq!(percentile(&few, 50.0), Duration::from_millis(7));
        assert_eq!(percentile(&few, 99.0), Duration::from_millis(20));
        assert_eq!(percentile(&ms(&[4]), 50.0), Duration::from_millis(4));
        assert_eq!(percentile(&[], 99.0), Duration::ZERO);
    }

    #[test]
    fn percentiles_are_ordered() {
        let d = ms(&[1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89]);
        let (p50, p90, p99) = (
            percentile(&d, 50.0),
            percentile(&d, 90.0),
            percentile(&d, 99.0),
        );
        assert!(p50 <= p90 && p90 <= p99 && p99 <= *d.last().unwrap());
    }

    fn params(connections: Connections) -> Params {
        Params {
            workload: Workload::Put,
            connections,
            new_keys: false,
            clients: 2,
            requests: 4,
            value_size: 10,
            read: ReadOptions::new(sutra_proto::storage::Consistency::Stale),
            read_ratio: 0.9,
            keys: 4,
            duration: Duration::from_secs(60),
            prefix: "b/".into(),
        }
    }

    fn outcome() -> Outcome {
        Outcome {
            latencies: ms(&[4, 1, 2]),
            errors: 1,
            first_error: Some("boom".into()),
        }
    }

    #[test]
    fn the_report_is_a_table_or_its_fields() {
        let report = report(
            &params(Connections::Sdk),
            "sutra bench put".into(),
            outcome(),
            Duration::from_secs(2),
            Vec::new(),
        );
        assert_eq!(
            report.table(),
            "command   sutra bench put\n\
             workload  put  connections sdk  clients 2  requests 3  errors 1\n\
             duration  2.000 s  ops/s 1.5\n\
             latency   p50 2.000 ms  p90 4.000 ms  p99 4.000 ms  max 4.000 ms\n\
             first error  boom"
        );
        let j = serde_json::to_value(&report).unwrap();
        assert_eq!(j["workload"], "put");
        assert_eq!(j["connections"], "sdk");
        assert_eq!(j["requests"], 3);
        assert_eq!(j["errors"], 1);
        assert_eq!(j["first_error"], "boom");
        assert_eq!(j["p50_ms"], 2.0);
        assert_eq!(j["max_ms"], 4.0);
        assert_eq!(j["stopped_by_duration"], false);
        assert!(j["server_cpu_ms_per_op"].is_null());
    }

    #[test]
    fn server_cpu_is_summed_over_the_nodes_and_shown_per_node() {
        let cpu = |node, ms_per_op, cores| NodeCpu {
            node,
            cpu_secs: 0.0,
            ms_per_op,
            cores,
        };
        let report = report(
            &params(Connections::PerNode),
            "sutra bench put".into(),
            Outcome::default(),
            Duration::from_secs(2),
            vec![cpu(1, 0.25, 0.5), cpu(2, 0.125, 0.25)],
        );
        assert_eq!(report.server_cpu_ms_per_op, Some(0.375));
        let table = report.table();
        assert!(table.contains("connections per-node"), "{table}");
        assert!(
            table.ends_with(
                "server cpu  0.375 ms/op: node 1 0.250 ms (0.50 cores), node 2 0.125 ms (0.25 cores)"
            ),
            "{table}"
        );
        let j = serde_json::to_value(&report).unwrap();
        assert_eq!(j["connections"], "per-node");
        assert_eq!(j["server_cpu"][1]["node"], 2);
    }
}
