//! t150: the failover drill engine (`sutra_drill`, what `sutra drill`
//! runs) against a harness cluster with link proxies: two rounds of every scenario but
//! `restore` (t155 runs that one through `sutra drill` against a local cluster). The
//! `procedure` scenario runs an operator's maintenance step: `sutra cluster
//! transfer-leader` twice, moving leadership round under load.
//!
//! The same test runs longer drills (docs/drills.md), e.g. 20 rounds of partition-leader
//! on release binaries, writing JSON reports:
//!
//! ```sh
//! SUTRA_NODE_BIN=target/release/sutra-node SUTRA_DRILL_ROUNDS=20 \
//!   SUTRA_DRILL_SCENARIOS=partition-leader SUTRA_DRILL_REPORT_DIR=/tmp/drills \
//!   cargo nextest run -p sutra-cluster-tests --test t150_drills --no-capture
//! ```

use std::path::PathBuf;
use std::time::Duration;

use sutra_client::TlsFiles;
use sutra_cluster_tests::process::cli_binary;
use sutra_cluster_tests::{Cluster, ClusterOptions, init_tracing, within};
use sutra_drill::{DrillConfig, DrillError, FaultDriver, Scenario, run_drill};

/// The shell command of the procedure round: hand leadership to the most up-to-date
/// other voter, twice, through the `sutra` CLI.
fn transfer_twice(cluster: &Cluster, tls: &TlsFiles) -> anyhow::Result<String> {
    let sutra = format!(
        "'{}' --endpoints {} --ca '{}' --cert '{}' --key '{}' cluster transfer-leader",
        cli_binary()?.display(),
        cluster.api_addrs().join(","),
        tls.ca.display(),
        tls.cert.display(),
        tls.key.display()
    );
    Ok(format!("{sutra} && {sutra}"))
}

/// Faults through the harness: signals to the node processes it started, and its link
/// proxies for isolating a node.
struct HarnessDriver<'a> {
    cluster: &'a Cluster,
}

fn fault(node: u64, e: anyhow::Error) -> DrillError {
    DrillError::Fault {
        node,
        message: format!("{e:#}"),
    }
}

impl FaultDriver for HarnessDriver<'_> {
    fn describe(&self) -> String {
        format!("the test cluster in {}", self.cluster.dir().display())
    }

    fn node_ids(&self) -> Vec<u64> {
        self.cluster.ids()
    }

    fn api_endpoint(&self, id: u64) -> String {
        self.cluster
            .node(id)
            .map(|n| n.api_addr.clone())
            .unwrap_or_default()
    }

    fn supports(&self, _scenario: Scenario) -> bool {
        true
    }

    async fn kill(&self, id: u64) -> Result<(), DrillError> {
        self.cluster.kill(id).map_err(|e| fault(id, e))
    }

    async fn stop(&self, id: u64) -> Result<(), DrillError> {
        // SIGTERM and wait for the exit here: `Cluster::terminate`'s future is not `Send`.
        let node = self.cluster.node(id).map_err(|e| fault(id, e))?;
        node.process().send_terminate().map_err(|e| fault(id, e))?;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if node.process().try_exit().is_some() {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                let _ = node.process().kill();
                return Err(fault(
                    id,
                    anyhow::anyhow!("ignored SIGTERM for 30 s; killed"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn restart(&self, id: u64) -> Result<(), DrillError> {
        if self.cluster.running_ids().contains(&id) {
            return Ok(());
        }
        self.cluster.restart(id).map_err(|e| fault(id, e))
    }

    async fn pause(&self, id: u64) -> Result<(), DrillError> {
        self.cluster.pause(id).map_err(|e| fault(id, e))
    }

    async fn resume(&self, id: u64) -> Result<(), DrillError> {
        self.cluster.resume(id).map_err(|e| fault(id, e))
    }

    async fn isolate(&self, id: u64) -> Result<(), DrillError> {
        self.cluster.isolate(id).map_err(|e| fault(id, e))
    }

    async fn heal(&self) -> Result<(), DrillError> {
        self.cluster.heal();
        Ok(())
    }
}

/// Two rounds of each scenario (kill, pause and partition of the leader and of a
/// follower, restart of all nodes, rolling restart, a procedure) with 4 writers and 2 LINEARIZABLE
/// readers on one three-node cluster with a proxy on every peer link. Every round must
/// lose no acknowledged write, apply none twice, pass the linearizability and durability
/// checks of `sutra-checker`, leave the nodes with equal content at one applied index,
/// and acknowledge a write within 5 s of the fault (a loose bound: debug build, short
/// test timers, a busy machine; the targets of `docs/drills.md` are for release builds).
///
/// Why: the drill is how operators come to trust a cluster; this keeps the engine and
/// the cluster honest with each other in CI.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn t150_drills() -> anyhow::Result<()> {
    init_tracing();
    let plan = Plan::from_env()?;
    // About 10 s a round at most, plus start-up.
    let bound = Duration::from_secs(60 + 10 * u64::from(plan.rounds) * plan.scenarios.len() as u64);
    within("t150", bound, run(plan)).await
}

/// What to drill: by default two rounds of every scenario; `SUTRA_DRILL_ROUNDS`,
/// `SUTRA_DRILL_SCENARIOS` (comma-separated names) and `SUTRA_DRILL_REPORT_DIR` (a JSON
/// report per scenario) make it a longer drill.
struct Plan {
    rounds: u32,
    scenarios: Vec<Scenario>,
    report_dir: Option<PathBuf>,
}

impl Plan {
    fn from_env() -> anyhow::Result<Self> {
        let rounds = match std::env::var("SUTRA_DRILL_ROUNDS") {
            Ok(v) => v.parse()?,
            Err(_) => 2,
        };
        let scenarios = match std::env::var("SUTRA_DRILL_SCENARIOS") {
            Ok(v) => v
                .split(',')
                .map(|s| s.trim().parse())
                .collect::<Result<_, _>>()?,
            // The restore scenario takes its backups with the CLI's code: t155 runs it
            // through `sutra drill` against a local cluster.
            Err(_) => Scenario::ALL
                .into_iter()
                .filter(|&s| s != Scenario::Restore)
                .collect(),
        };
        let report_dir = std::env::var_os("SUTRA_DRILL_REPORT_DIR").map(PathBuf::from);
        Ok(Self {
            rounds,
            scenarios,
            report_dir,
        })
    }
}

async fn run(plan: Plan) -> anyhow::Result<()> {
    tracing::info!("--- three nodes with link proxies");
    let cluster = Cluster::start(ClusterOptions {
        link_proxies: true,
        ..ClusterOptions::default()
    })
    .await?;
    let certs = cluster.certs_dir();
    let admin = sutra_certs::CertPaths::client(certs, "admin");
    let tls = TlsFiles {
        ca: sutra_certs::CertPaths::ca(certs).cert,
        cert: admin.cert,
        key: admin.key,
    };
    let driver = HarnessDriver { cluster: &cluster };
    for &scenario in &plan.scenarios {
        tracing::info!(%scenario, rounds = plan.rounds, "--- drill");
        let mut config = DrillConfig::new(scenario, tls.clone());
        config.rounds = plan.rounds;
        config.writers = 4;
        config.readers = 2;
        config.warmup = Duration::from_millis(500);
        config.fault_window = Duration::from_millis(1500);
        config.down_time = Duration::from_millis(500);
        config.settle = Duration::from_millis(500);
        config.leader_timeout = Duration::from_secs(15);
        config.catch_up_timeout = Duration::from_secs(30);
        config.prefix = format!("t150/{scenario}/");
        config.command = format!("t150 {scenario}");
        if scenario == Scenario::Procedure {
            config.procedure = Some(transfer_twice(&cluster, &tls)?);
        }
        let report = run_drill(&driver, &config, |r| {
            tracing::info!(
                round = r.round,
                node = ?r.node,
                rto_ms = ?r.rto_ms,
                leader_ms = ?r.leader_ms,
                acked = r.check.acked,
                unknown = r.check.unknown,
                reads = r.check.reads,
                linearizability = %r.check.linearizability,
                "round done"
            );
        })
        .await?;
        eprintln!("{}", report.table());
        if let Some(dir) = &plan.report_dir {
            std::fs::create_dir_all(dir)?;
            std::fs::write(
                dir.join(format!("{scenario}.json")),
                serde_json::to_vec_pretty(&report)?,
            )?;
        }
        anyhow::ensure!(
            report.lost == 0,
            "{scenario}: lost writes\n{}",
            report.table()
        );
        anyhow::ensure!(
            report.duplicates == 0,
            "{scenario}: duplicates\n{}",
            report.table()
        );
        anyhow::ensure!(
            report.violations == 0,
            "{scenario}: violations\n{}",
            report.table()
        );
        anyhow::ensure!(report.passed, "{scenario}: failed\n{}", report.table());
        for r in &report.rounds {
            anyhow::ensure!(
                r.check.linearizability == "linearizable",
                "{scenario} round {}: sutra-checker says {}",
                r.round,
                r.check.linearizability
            );
            anyhow::ensure!(r.check.acked > 0, "{scenario} round {}: no writes", r.round);
            anyhow::ensure!(
                r.diverged != Some(true),
                "{scenario} round {}: content hashes differ",
                r.round
            );
        }
        let max = report.summary.rto_ms.map_or(f64::INFINITY, |s| s.max);
        anyhow::ensure!(
            max < 5000.0,
            "{scenario}: RTO max {max:.0} ms >= 5000 ms\n{}",
            report.table()
        );
    }
    cluster.finish();
    Ok(())
}
