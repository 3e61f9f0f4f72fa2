//! The command line: the global flags, the list of commands (each group's own flags live
//! in its module) and the read flags several commands share.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sutra_client::ReadOptions;
use sutra_proto::storage::Consistency;

use crate::view::Output;
use crate::{
    alarm, backup, bench, cluster, data, drill, export, import, local, ops, parse, reference,
};

#[derive(Debug, Parser)]
#[command(name = "sutra", version, about = "Command line for a Sutra cluster")]
pub struct Cli {
    /// Client API endpoints, host:port, comma-separated.
    #[arg(long, env = "SUTRA_ENDPOINTS", value_delimiter = ',', global = true)]
    pub endpoints: Vec<String>,
    /// Cluster CA certificate (PEM).
    #[arg(long, env = "SUTRA_CA", global = true)]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM); its role (read, write, admin) decides what may be called.
    #[arg(long, env = "SUTRA_CERT", global = true)]
    pub cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long, env = "SUTRA_KEY", global = true)]
    pub key: Option<PathBuf>,
    /// The name the nodes' certificates must carry (default `localhost`, which the
    /// generated certificates carry); for certificates issued to the nodes' host names
    /// behind a load balancer or one DNS name, that name.
    #[arg(long, env = "SUTRA_SERVER_NAME", global = true)]
    pub server_name: Option<String>,
    /// A cluster.json from `sutra local` (endpoints, CA, and the admin certificate
    /// unless --cert/--key are given).
    #[arg(long, env = "SUTRA_CLUSTER_FILE", global = true)]
    pub cluster_file: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table", global = true)]
    pub output: Output,
    /// Per-call timeout in seconds (fractions allowed), retries included.
    #[arg(long, default_value = "10", value_parser = parse::seconds, global = true)]
    pub timeout: Duration,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// True for `health --check` and `backup verify`, whose failure to run at all is
    /// UNKNOWN (exit 3).
    pub fn is_health_check(&self) -> bool {
        match &self.command {
            Command::Ops(c) => c.is_check(),
            Command::Backup(b) => backup::is_check(b),
            _ => false,
        }
    }
}

/// The commands, in the order `sutra --help` lists them.
#[derive(Debug, Subcommand)]
pub enum Command {
    // put, get, delete, scan, edge, neighbors, search and batch.
    #[command(flatten)]
    Data(data::Command),
    // health, stats and flush.
    #[command(flatten)]
    Ops(ops::Command),
    /// Load a JSON Lines file of concepts and edges (docs/migration.md): checked whole
    /// first, then written in batches, resumable after an interruption
    /// (FILE.import-progress) without applying anything twice.
    Import(import::ImportArgs),
    /// Write every concept and edge at one point in time (a backup, taken now or
    /// given) as JSON Lines that `sutra import` reads.
    Export(export::ExportArgs),
    /// Load the cluster and report throughput and latency.
    Bench(bench::BenchArgs),
    /// Failover drill against a local cluster (--cluster-file) or a compose cluster
    /// (--docker <project>): a fault per round under load; RTO,
    /// time to a new leader, lost/duplicate writes and stale reads (docs/drills.md).
    Drill(drill::DrillArgs),
    /// Cluster membership and replication, as the leader sees it; with a subcommand,
    /// change it (admin certificate).
    Cluster(cluster::ClusterArgs),
    /// The cluster's alarms (NOSPACE: read-only until disarmed); list or disarm them.
    Alarm(alarm::AlarmArgs),
    /// Back up the whole store into a file (admin certificate), or prove a backup file
    /// offline.
    Backup(backup::BackupArgs),
    /// A local three-node TLS cluster on loopback, for development.
    Local(local::LocalArgs),
    /// Print the shell completion script (e.g. `sutra completions bash >
    /// /etc/bash_completion.d/sutra`).
    Completions(reference::CompletionsArgs),
    /// Write man pages for sutra and every subcommand into a directory.
    Man(reference::ManArgs),
}

/// A read's consistency level (`--consistency`).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Level {
    Linearizable,
    Lease,
    Session,
    Bounded,
    Stale,
}

/// How a read is served.
#[derive(Debug, Clone, Args)]
pub struct ReadArgs {
    /// Consistency: linearizable and lease reads go to the leader; session, bounded and
    /// stale reads may be served by any node.
    #[arg(long, value_enum, default_value = "linearizable")]
    pub consistency: Level,
    /// Bounded reads: the largest acceptable staleness in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub max_staleness_ms: u64,
}

impl ReadArgs {
    /// The SDK's read options for these flags.
    pub fn options(&self) -> ReadOptions {
        let level = match self.consistency {
            Level::Linearizable => Consistency::Linearizable,
            Level::Lease => Consistency::Lease,
            Level::Session => Consistency::Session,
            Level::Bounded => Consistency::Bounded,
            Level::Stale => Consistency::Stale,
        };
        ReadOptions::new(level).max_staleness(Duration::from_millis(self.max_staleness_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_parse_into_their_values() {
        let cli = Cli::try_parse_from([
            "sutra",
            "--timeout",
            "0.5",
            "put",
            "a",
            "--embedding",
            "-1,2",
            "--attr",
            "k=v",
        ])
        .unwrap();
        assert_eq!(cli.timeout, Duration::from_millis(500));
        match cli.command {
            Command::Data(data::Command::Put(put)) => {
                assert_eq!(put.embedding.unwrap().0, vec![-1.0, 2.0]);
                assert_eq!(put.attrs, vec![("k".to_string(), "v".to_string())]);
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from([
            "sutra",
            "bench",
            "mixed",
            "--read-ratio",
            "0.5",
            "--consistency",
            "stale",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Bench(bench::BenchArgs { workload: bench::Workload::Mixed, read_ratio, .. }) if read_ratio == 0.5
        ));
        assert!(Cli::try_parse_from(["sutra", "scan", "--prefix", "a", "--start", "b"]).is_err());
    }

    #[test]
    fn only_health_check_is_a_monitoring_check() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).unwrap();
        assert!(parse(&["sutra", "health", "--check"]).is_health_check());
        assert!(!parse(&["sutra", "health"]).is_health_check());
        assert!(!parse(&["sutra", "stats"]).is_health_check());
    }
}
