//! The CPU time the nodes spend during a bench run, read from `/proc/<pid>/stat` of
//! each node of a local cluster (the process ids its `cluster.json` records), so that a
//! run reports server CPU per operation next to its throughput.

use std::path::{Path, PathBuf};

use sutra_devcluster::ClusterFile;

/// Clock ticks per second of the times in `/proc/<pid>/stat` (`USER_HZ`, which the
/// kernel's ABI fixes at 100).
const TICKS_PER_SEC: f64 = 100.0;

/// One node whose CPU time can be read.
#[derive(Debug, Clone)]
struct Watched {
    id: u64,
    stat: PathBuf,
}

/// The nodes of a local cluster, for reading their CPU time before and after a run.
#[derive(Debug, Clone, Default)]
pub struct Nodes {
    nodes: Vec<Watched>,
}

/// CPU seconds (user + system) of each node at one moment, by node id.
#[derive(Debug, Clone)]
pub struct Sample(Vec<(u64, f64)>);

/// What one node spent during a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NodeCpu {
    /// Node id.
    pub node: u64,
    /// CPU seconds (user + system) spent during the run.
    pub cpu_secs: f64,
    /// Milliseconds of CPU per successful operation.
    pub ms_per_op: f64,
    /// Average cores busy: CPU seconds over the run's length.
    pub cores: f64,
}

impl Nodes {
    /// The running nodes of the local cluster described by `cluster_file`: those whose
    /// recorded process is still a `sutra-node`. Empty (no CPU figures) for a cluster
    /// that is not local, or not started detached.
    pub fn of_cluster_file(cluster_file: &Path) -> anyhow::Result<Self> {
        let c = ClusterFile::read(cluster_file)?;
        let nodes = c
            .nodes
            .iter()
            .filter_map(|n| {
                let proc = PathBuf::from(format!("/proc/{}", n.pid?));
                let comm = std::fs::read_to_string(proc.join("comm")).ok()?;
                comm.trim().starts_with("sutra-node").then(|| Watched {
                    id: n.id,
                    stat: proc.join("stat"),
                })
            })
            .collect();
        Ok(Self { nodes })
    }

    /// Every node's CPU time now; a node whose process is gone is left out.
    pub fn sample(&self) -> Sample {
        Sample(
            self.nodes
                .iter()
                .filter_map(|n| {
                    let text = std::fs::read_to_string(&n.stat).ok()?;
                    Some((n.id, cpu_secs(&text)?))
                })
                .collect(),
        )
    }
}

/// User + system CPU seconds from the text of `/proc/<pid>/stat`. The command name
/// (field 2) is in parentheses and may hold spaces, so fields are counted after its
/// closing parenthesis: utime and stime are fields 14 and 15.
fn cpu_secs(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SEC)
}

/// What each node spent between `before` and `after`, for `ops` operations in
/// `elapsed_secs`; nodes seen in both samples only.
pub fn spent(before: &Sample, after: &Sample, ops: u64, elapsed_secs: f64) -> Vec<NodeCpu> {
    after
        .0
        .iter()
        .filter_map(|&(node, end)| {
            let (_, start) = before.0.iter().find(|(id, _)| *id == node)?;
            let cpu_secs = (end - start).max(0.0);
            Some(NodeCpu {
                node,
                cpu_secs,
                ms_per_op: cpu_secs * 1000.0 / ops.max(1) as f64,
                cores: cpu_secs / elapsed_secs.max(1e-9),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_the_command_name() {
        // A command name with a space and a parenthesis must not shift the fields.
        let stat =
            "4242 (sutra node) x) S 1 4242 4242 0 -1 4194560 1 0 0 0 250 50 0 0 20 0 7 0 100 0";
        assert_eq!(cpu_secs(stat), Some(3.0));
        assert_eq!(cpu_secs("4242 (sutra-node"), None);
        assert_eq!(cpu_secs("garbage"), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(cpu_secs(&own).is_some());
    }

    #[test]
    fn spent_is_per_node_per_op_and_per_second() {
        let before = Sample(vec![(1, 10.0), (2, 5.0), (3, 1.0)]);
        let after = Sample(vec![(1, 12.0), (2, 5.5)]);
        let got = spent(&before, &after, 1000, 4.0);
        assert_eq!(
            got,
            vec![
                NodeCpu {
                    node: 1,
                    cpu_secs: 2.0,
                    ms_per_op: 2.0,
                    cores: 0.5
                },
                NodeCpu {
                    node: 2,
                    cpu_secs: 0.5,
                    ms_per_op: 0.5,
                    cores: 0.125
                },
            ]
        );
    }
}
