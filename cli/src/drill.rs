//! `sutra drill`: failover drills against the local cluster of `sutra local start` or,
//! with `--docker <project>`, the compose cluster of `deploy/docker-compose.yml`, through
//! the drill engine (`sutra_drill`). Each round's line is printed
//! as the round ends; a drill that loses or duplicates a write, reads a stale value or
//! does not recover exits 1 after printing its report.

use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sutra_client::{Connector, TlsFiles};
use sutra_devcluster::{Binaries, ClusterFile, runner};
use sutra_drill::{
    BackupTaken, DockerDriver, DrillConfig, DrillReport, FaultDriver, LocalProcessDriver,
    RestoreTarget, Scenario, ScratchCluster, run_drill,
};

use crate::parse;
use crate::view::{Output, View, print};

/// Flags of `sutra drill`.
#[derive(Debug, Clone, clap::Args)]
pub struct DrillArgs {
    /// kill-leader, pause-leader, partition-leader, kill-follower, pause-follower,
    /// partition-follower, restart-all, rolling-restart, procedure (runs --procedure
    /// under load), or restore (a backup under load restored into a scratch cluster and
    /// checked; local clusters only).
    #[arg(long, value_parser = scenario)]
    pub scenario: Scenario,
    /// Rounds to run.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Concurrent writers (each with its own client).
    #[arg(long, default_value_t = 4)]
    pub writers: u32,
    /// Concurrent LINEARIZABLE readers.
    #[arg(long, default_value_t = 2)]
    pub readers: u32,
    /// Keys written per round (a fresh set each round).
    #[arg(long, default_value_t = 16)]
    pub keys: u32,
    /// Seconds the fault lasts under load before it is healed.
    #[arg(long, default_value = "3", value_parser = parse::seconds)]
    pub window: Duration,
    /// The procedure scenario: a shell command run under load in each round, e.g.
    /// `deploy/rolling-upgrade --image sutra-node:next`; it must exit 0.
    #[arg(long, value_name = "COMMAND")]
    pub procedure: Option<String>,
    /// Longest the procedure may run, in seconds.
    #[arg(long, default_value = "600", value_parser = parse::seconds)]
    pub procedure_timeout: Duration,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// The sutra-node binary that restarts nodes (default: next to sutra, else PATH).
    #[arg(long, env = "SUTRA_NODE_BIN")]
    pub node_bin: Option<PathBuf>,
    /// Prefix of the ids the drill writes.
    #[arg(long, default_value = "drill/")]
    pub prefix: String,
    /// Drill the compose cluster of deploy/docker-compose.yml running as this compose
    /// project, through the docker CLI, instead of a local cluster.
    #[arg(long, visible_alias = "compose-project", value_name = "PROJECT")]
    pub docker: Option<String>,
    /// With --docker: the certificates the compose cluster uses (ca.pem,
    /// client-admin.pem, client-admin-key.pem); --ca/--cert/--key override each.
    #[arg(long, default_value = "deploy/certs", env = "SUTRA_CERTS_DIR")]
    pub certs: PathBuf,
    /// The restore scenario: where each round's backup file and scratch cluster go (a
    /// directory per round, removed when the round ends; default: the system's temporary
    /// directory).
    #[arg(long, value_name = "DIR")]
    pub scratch_dir: Option<PathBuf>,
}

/// The TLS files of a `--docker` drill: --ca/--cert/--key, else the admin client
/// certificate in `certs`.
pub fn docker_tls(
    args: &DrillArgs,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> TlsFiles {
    TlsFiles {
        ca: ca.unwrap_or_else(|| args.certs.join("ca.pem")),
        cert: cert.unwrap_or_else(|| args.certs.join("client-admin.pem")),
        key: key.unwrap_or_else(|| args.certs.join("client-admin-key.pem")),
    }
}

fn scenario(s: &str) -> Result<Scenario, String> {
    s.parse()
        .map_err(|e: sutra_drill::UnknownScenario| e.to_string())
}

/// What a drill runs with besides its flags.
#[derive(Debug)]
pub struct Setting {
    /// The TLS files of the drill's clients.
    pub tls: TlsFiles,
    /// Each write's and read's deadline (`--timeout`).
    pub timeout: Duration,
    pub output: Output,
    /// The command line, for the report.
    pub command_line: String,
}

/// Runs the drill and prints its report: with `--output table` a line per round as it
/// ends and a summary, with `--output json` one JSON value at the end.
pub async fn run(
    args: DrillArgs,
    cluster_file: Option<&Path>,
    setting: Setting,
) -> anyhow::Result<()> {
    if let Some(project) = &args.docker {
        let driver = DockerDriver::open(project, None).await?;
        return drive(&driver, args, setting, None).await;
    }
    let Some(cluster_file) = cluster_file else {
        anyhow::bail!(
            "sutra drill injects faults into the processes of a local cluster: give --cluster-file (the cluster.json of sutra local), or --docker <compose project>"
        );
    };
    // Nodes are restarted by this binary's `local start`.
    let cli = std::env::current_exe().context("locating the sutra binary")?;
    let driver = LocalProcessDriver::open(cluster_file, Some(cli), args.node_bin.clone())?;
    let restore = if args.scenario == Scenario::Restore {
        Some(Arc::new(LocalRestore::open(cluster_file, args.node_bin.clone())?) as _)
    } else {
        None
    };
    drive(&driver, args, setting, restore).await
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Backups of a local cluster and the scratch clusters they are restored into, for the
/// restore scenario: `sutra backup save`'s code with the cluster's admin certificate,
/// and the local runner's [`runner::restore_scratch`] (`sutra-node restore` for each
/// member, then the nodes on free loopback ports with the cluster's CA and node
/// certificates).
#[derive(Debug)]
struct LocalRestore {
    cluster: ClusterFile,
    connector: Connector,
    bins: Binaries,
}

impl LocalRestore {
    fn open(cluster_file: &Path, node_bin: Option<PathBuf>) -> anyhow::Result<Self> {
        let cluster = ClusterFile::read(cluster_file)?;
        let connector = Connector::new(&cluster.tls("admin"), None)?;
        let node = match node_bin {
            Some(bin) => bin,
            None => sutra_devcluster::process::node_binary()?,
        };
        Ok(Self {
            cluster,
            connector,
            bins: Binaries { node, cli: None },
        })
    }
}

impl RestoreTarget for LocalRestore {
    fn backup<'a>(&'a self, file: &'a Path) -> BoxFuture<'a, Result<BackupTaken, String>> {
        Box::pin(async move {
            let saved =
                crate::backup::save(file, 0, false, &self.cluster.endpoints(), &self.connector)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
            Ok(BackupTaken {
                applied_index: saved.applied_index,
                content_hash: saved.content_hash,
                bytes: saved.bytes,
                source_node: saved.source_node,
            })
        })
    }

    fn restore<'a>(
        &'a self,
        file: &'a Path,
        dir: &'a Path,
    ) -> BoxFuture<'a, Result<ScratchCluster, String>> {
        let (bins, cluster) = (self.bins.clone(), self.cluster.clone());
        let (file, dir) = (file.to_path_buf(), dir.to_path_buf());
        Box::pin(async move {
            let scratch_dir = dir.clone();
            let c = tokio::task::spawn_blocking(move || {
                runner::restore_scratch(&bins, &cluster, &file, &scratch_dir)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("{e:#}"))?;
            Ok(ScratchCluster {
                endpoints: c.endpoints(),
                pids: c.nodes.iter().filter_map(|n| n.pid).collect(),
                dir,
            })
        })
    }

    fn stop<'a>(&'a self, scratch: &'a ScratchCluster) -> BoxFuture<'a, Result<(), String>> {
        let dir = scratch.dir.clone();
        Box::pin(async move {
            if !ClusterFile::path_in(&dir).exists() {
                // Nothing of it started.
                return Ok(());
            }
            tokio::task::spawn_blocking(move || runner::stop_quietly(&dir))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("{e:#}"))?;
            Ok(())
        })
    }
}

async fn drive<D: FaultDriver>(
    driver: &D,
    args: DrillArgs,
    setting: Setting,
    restore: Option<Arc<dyn RestoreTarget>>,
) -> anyhow::Result<()> {
    // Refuse before printing anything.
    anyhow::ensure!(
        args.scenario != Scenario::Restore || restore.is_some(),
        "the restore scenario runs against a local cluster only (--cluster-file)"
    );
    anyhow::ensure!(
        driver.supports(args.scenario),
        "{}",
        driver.unsupported_reason(args.scenario)
    );
    let Setting {
        tls,
        timeout,
        output,
        command_line,
    } = setting;
    let table = output == Output::Table;
    let mut config = DrillConfig::new(args.scenario, tls);
    config.rounds = args.rounds;
    config.writers = args.writers;
    config.readers = args.readers;
    config.keys = args.keys;
    config.fault_window = args.window;
    config.op_timeout = timeout;
    config.prefix = args.prefix.clone();
    config.procedure = args.procedure.clone();
    config.procedure_timeout = args.procedure_timeout;
    config.command = command_line.clone();
    config.restore = restore;
    if let Some(dir) = &args.scratch_dir {
        config.scratch_dir = dir.clone();
    }
    // The table is printed as the drill goes: a drill can run for minutes.
    if table {
        println!("command    {command_line}\n{}", DrillReport::table_header());
    }
    let report = run_drill(driver, &config, |round| {
        if table {
            println!("{}", DrillReport::table_row(round));
            let _ = std::io::stdout().flush();
        }
    })
    .await?;
    print(output, &report)?;
    if let Some(path) = &args.report {
        let text = serde_json::to_vec_pretty(&report).context("encoding the report")?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    anyhow::ensure!(
        report.passed,
        "drill failed: {} acknowledged writes lost, {} duplicates, {} linearizability violations, {} rounds not recovered",
        report.lost,
        report.duplicates,
        report.violations,
        report.unrecovered_rounds
    );
    Ok(())
}

/// The end of a drill's report; its rounds were printed as they ended.
impl View for DrillReport {
    fn table(&self) -> String {
        self.summary_table()
    }
}
