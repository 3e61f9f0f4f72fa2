//! The drill engine: load, one fault per round, measurements and checks.
//!
//! A round goes:
//!
//! 1. find the leader (the node that says it leads in the highest term);
//! 2. start `writers` tasks putting unique values to a fresh set of `keys` keys and
//!    `readers` tasks reading them LINEARIZABLE, each task with its own [`Client`], every
//!    operation recorded with its invoke and completion instants and outcome;
//! 3. warm up until writes flow;
//! 4. inject the scenario's fault(s); poll `HealthCheck` on the survivors for a new
//!    leader; keep the load on for the load window; heal, resume or restart;
//! 5. keep the load on a little longer, stop it, wait until every node is healthy at one
//!    applied index;
//! 6. read every key back LINEARIZABLE and check the history ([`check_round`]).
//!
//! Every operation goes into one [`sutra_checker::History`] per round: invoked right
//! before its request, completed right after the answer with what the node said (served
//! by, leader); the RTO is measured on its completion times.

mod fault;
mod load;
mod observe;
mod restore;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use sutra_checker::{FinalState, History, OpId, OpKind, Outcome, Reply, Stored, Value};
use sutra_proto::storage::{
    Concept, Consistency, GetStatsRequest, GetStatsResponse, HealthCheckResponse,
};
use tokio::task::JoinHandle;

use crate::check::{FINAL_READ, PROBE_LEASE, PROBE_LINEARIZABLE, check_round};
use crate::rto::{Recovery, rto};
use load::{complete_read, process_name, read_kind};

use crate::{DrillError, DrillReport, FaultDriver, RoundReport, Scenario};
use sutra_client::{CallOptions, Client, ClientConfig, ClientError, Read, ReadOptions, TlsFiles};

/// How long one health poll may take (a paused node never answers).
const POLL_TIMEOUT: Duration = Duration::from_millis(500);
/// Pause between polls.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// What a drill does and how long each phase lasts.
#[derive(Debug, Clone)]
pub struct DrillConfig {
    /// The fault injected in each round.
    pub scenario: Scenario,
    /// Rounds to run.
    pub rounds: u32,
    /// Concurrent writer tasks.
    pub writers: u32,
    /// Concurrent LINEARIZABLE reader tasks.
    pub readers: u32,
    /// Keys written per round (a fresh set each round).
    pub keys: u32,
    /// CA and client certificate (write role or above).
    pub tls: TlsFiles,
    /// Name the nodes' certificates are checked against (default `localhost`).
    pub server_name: Option<String>,
    /// Deadline of each write and read, retries included.
    pub op_timeout: Duration,
    /// Least time the load runs before the fault.
    pub warmup: Duration,
    /// How long the fault lasts under load before it is healed.
    pub fault_window: Duration,
    /// restart-all and rolling-restart: how long a node stays down.
    pub down_time: Duration,
    /// How long the load goes on after healing.
    pub settle: Duration,
    /// Longest wait for a new leader, for warm-up and for each node to rejoin.
    pub leader_timeout: Duration,
    /// Longest wait for every node to be healthy at one applied index.
    pub catch_up_timeout: Duration,
    /// Prefix of every key the drill writes (a run id and the round follow).
    pub prefix: String,
    /// The `procedure` scenario: the shell command (`sh -c`) it runs each round.
    pub procedure: Option<String>,
    /// Longest a procedure may run before the round fails.
    pub procedure_timeout: Duration,
    /// The command line, for the report.
    pub command: String,
    /// The `restore` scenario: how backups are taken and restored.
    pub restore: Option<Arc<dyn crate::RestoreTarget>>,
    /// The `restore` scenario: where each round's backup and scratch cluster go (a
    /// directory per round, removed at its end).
    pub scratch_dir: PathBuf,
}

impl DrillConfig {
    /// Defaults: 3 rounds, 4 writers, 2 readers, 16 keys, 3 s load window.
    pub fn new(scenario: Scenario, tls: TlsFiles) -> Self {
        Self {
            scenario,
            rounds: 3,
            writers: 4,
            readers: 2,
            keys: 16,
            tls,
            server_name: None,
            op_timeout: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            fault_window: Duration::from_secs(3),
            down_time: Duration::from_secs(1),
            settle: Duration::from_secs(1),
            leader_timeout: Duration::from_secs(20),
            catch_up_timeout: Duration::from_secs(60),
            prefix: "drill/".into(),
            procedure: None,
            procedure_timeout: Duration::from_secs(600),
            command: String::new(),
            restore: None,
            scratch_dir: std::env::temp_dir(),
        }
    }
}

/// Runs `config.rounds` rounds of `config.scenario` against the cluster `driver` reaches,
/// calling `on_round` after each. Fails if the driver cannot run the scenario, or a fault
/// cannot be injected or healed, or the cluster does not come back; a round that loses
/// or duplicates a write is *reported* (see [`DrillReport::passed`]), not an error.
pub async fn run_drill<D: FaultDriver>(
    driver: &D,
    config: &DrillConfig,
    mut on_round: impl FnMut(&RoundReport),
) -> Result<DrillReport, DrillError> {
    if config.rounds == 0 || config.writers == 0 || config.keys == 0 {
        return Err(DrillError::Config(
            "rounds, writers and keys must be at least 1".into(),
        ));
    }
    match (config.scenario, &config.procedure) {
        (Scenario::Procedure, None) => {
            return Err(DrillError::Config(
                "the procedure scenario needs the command to run (--procedure)".into(),
            ));
        }
        (Scenario::Procedure, Some(_)) | (_, None) => {}
        (other, Some(_)) => {
            return Err(DrillError::Config(format!(
                "a procedure runs only with the procedure scenario, not {other}"
            )));
        }
    }
    if config.scenario == Scenario::Restore && config.restore.is_none() {
        return Err(DrillError::Unsupported {
            reason: format!(
                "the restore scenario needs a way to take and restore backups, which {} does not give",
                driver.describe()
            ),
        });
    }
    if !driver.supports(config.scenario) {
        return Err(DrillError::Unsupported {
            reason: driver.unsupported_reason(config.scenario),
        });
    }
    let ids = driver.node_ids();
    if ids.len() < 2 {
        return Err(DrillError::Config(format!(
            "a drill needs at least 2 nodes, {} has {}",
            driver.describe(),
            ids.len()
        )));
    }
    let run_id = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );
    let engine = Engine {
        driver,
        config,
        ops: Arc::new(Client::new(client_config(driver, config, &ids))?),
        ids,
        run_id,
    };
    let mut rounds = Vec::new();
    for n in 1..=config.rounds {
        let report = match engine.round(n).await {
            Ok(r) => r,
            Err(e) => {
                engine.restore().await;
                return Err(e);
            }
        };
        on_round(&report);
        rounds.push(report);
    }
    Ok(DrillReport::new(
        config.command.clone(),
        config.scenario,
        config.writers,
        config.readers,
        rounds,
    ))
}

fn client_config<D: FaultDriver>(driver: &D, config: &DrillConfig, ids: &[u64]) -> ClientConfig {
    let endpoints = ids.iter().map(|&id| driver.api_endpoint(id)).collect();
    let mut c = ClientConfig::new(endpoints, config.tls.clone());
    c.server_name = config.server_name.clone();
    c.request_timeout = config.op_timeout;
    c
}

/// Runs an operator's procedure with `sh -c`, its output passed through; fails the round
/// if it exits non-zero or outlives `timeout` (it is then killed).
async fn run_procedure(command: &str, timeout: Duration) -> Result<(), DrillError> {
    let failed = |message: String| DrillError::Procedure {
        command: command.to_string(),
        message,
    };
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failed(format!("cannot start: {e}")))?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(failed(format!("exited with {status}"))),
        Ok(Err(e)) => Err(failed(format!("waiting for it: {e}"))),
        Err(_) => {
            let _ = child.kill().await;
            Err(failed(format!("still running after {timeout:?}; killed")))
        }
    }
}

/// One fault of a round and how its recovery is measured.
struct Step {
    fault_at: Instant,
    recovery: Recovery,
    leader_poll: Option<JoinHandle<Option<Duration>>>,
}

/// What a scenario did.
#[derive(Default)]
struct Injected {
    node: Option<u64>,
    nodes_hit: Vec<u64>,
    steps: Vec<Step>,
    probe_reads: usize,
    probe_served_by_old_leader: usize,
    restore: Option<crate::RestoreReport>,
}

/// The load of a round: writer and reader tasks recording into one history.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    rec: Arc<History>,
}

struct Engine<'a, D> {
    driver: &'a D,
    config: &'a DrillConfig,
    /// For health polls and the final reads.
    ops: Arc<Client>,
    ids: Vec<u64>,
    run_id: String,
}

impl<D: FaultDriver> Engine<'_, D> {
    async fn round(&self, n: u32) -> Result<RoundReport, DrillError> {
        let c = self.config;
        let started = Instant::now();
        let leader = self.find_leader(c.leader_timeout).await?;
        let keys: Vec<String> = (0..c.keys)
            .map(|k| format!("{}{}/r{n}/k{k:03}", c.prefix, self.run_id))
            .collect();
        tracing::info!(round = n, scenario = %c.scenario, leader, "round starts");
        let load = self.start_load(n, &keys)?;
        let warm = self.warm_up(&load).await;
        let injected = match warm {
            Ok(()) => self.inject(n, leader, &keys, &load.rec).await,
            Err(e) => Err(e),
        };
        if injected.is_ok() {
            tokio::time::sleep(c.settle).await;
        }
        load.stop.store(true, Ordering::Relaxed);
        for t in load.tasks {
            let _ = t.await;
        }
        let injected = injected?;
        let load_stopped = Instant::now();
        let (applied_index, leader_after) = self.wait_caught_up().await?;
        let catch_up_ms = ms(load_stopped.elapsed());
        let diverged = self.content_divergence().await;
        let final_state = self.read_back(&keys, &load.rec).await?;
        let ops = load.rec.ops();
        let check = check_round(&ops, &final_state);
        let mut rto_ms = Some(0.0f64);
        let mut leader_ms: Option<f64> = None;
        for step in injected.steps {
            let r = rto(&ops, load.rec.time_of(step.fault_at), step.recovery).map(ms);
            rto_ms = match (rto_ms, r) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
            if let Some(poll) = step.leader_poll
                && let Ok(Some(d)) = poll.await
            {
                leader_ms = Some(leader_ms.unwrap_or(0.0).max(ms(d)));
            }
        }
        Ok(RoundReport {
            round: n,
            scenario: c.scenario,
            node: injected.node,
            nodes_hit: injected.nodes_hit,
            leader_before: leader,
            leader_after,
            rto_ms,
            leader_ms,
            catch_up_ms,
            applied_index,
            diverged,
            probe_reads: injected.probe_reads,
            probe_served_by_old_leader: injected.probe_served_by_old_leader,
            duration_secs: started.elapsed().as_secs_f64(),
            check,
            restore: injected.restore,
        })
    }
}

/// Whether a failed write may have been applied.
pub(crate) fn write_outcome(e: &ClientError) -> Outcome {
    match e {
        ClientError::DeadlineExceeded {
            outcome_unknown: false,
            ..
        }
        | ClientError::InvalidArgument { .. }
        | ClientError::Conflict { .. }
        | ClientError::PermissionDenied { .. }
        | ClientError::Unauthenticated { .. }
        | ClientError::Connect(_) => Outcome::Failed,
        _ => Outcome::Unknown,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::load::xorshift;
    use super::observe::{health_summary, leader_of};
    use super::*;

    #[test]
    fn only_refused_or_unsent_writes_count_as_failed() {
        let dl = |unknown| ClientError::DeadlineExceeded {
            deadline: Duration::from_secs(1),
            outcome_unknown: unknown,
            last: String::new(),
        };
        assert_eq!(write_outcome(&dl(false)), Outcome::Failed);
        assert_eq!(write_outcome(&dl(true)), Outcome::Unknown);
        assert_eq!(
            write_outcome(&ClientError::Conflict {
                message: String::new()
            }),
            Outcome::Failed
        );
        assert_eq!(
            write_outcome(&ClientError::Status(tonic::Status::internal("x"))),
            Outcome::Unknown
        );
    }

    #[test]
    fn the_leader_is_the_self_declared_one_of_the_highest_term() {
        let h = |id: u64, role: &str, leader: u64, term: u64| {
            (
                id,
                Ok(HealthCheckResponse {
                    node_id: id,
                    role: role.into(),
                    leader_id: leader,
                    term,
                    healthy: true,
                    ..HealthCheckResponse::default()
                }),
            )
        };
        let stale_leader = vec![
            h(1, "leader", 1, 3),
            h(2, "leader", 2, 4),
            h(3, "follower", 2, 4),
        ];
        assert_eq!(leader_of(&stale_leader), Some(2));
        let none = vec![
            h(1, "candidate", 0, 5),
            (
                2,
                Err(ClientError::Unavailable {
                    message: "down".into(),
                    leader_id: None,
                    leader_addr: None,
                }),
            ),
        ];
        assert_eq!(leader_of(&none), None);
        assert!(health_summary(&none).contains("node 2: unavailable: down"));
    }

    #[test]
    fn keys_are_spread_by_the_generator() {
        let mut s = 42;
        let mut hits = [0u32; 16];
        for _ in 0..1600 {
            hits[(xorshift(&mut s) % 16) as usize] += 1;
        }
        assert!(hits.iter().all(|&h| h > 50), "{hits:?}");
    }
}
