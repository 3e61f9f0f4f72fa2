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
        })
    }

    /// Injects the scenario's fault(s) and heals them, under load.
    async fn inject(
        &self,
        round: u32,
        leader: u64,
        keys: &[String],
        rec: &History,
    ) -> Result<Injected, DrillError> {
        let c = self.config;
        let d = self.driver;
        let others: Vec<u64> = self.ids.iter().copied().filter(|&i| i != leader).collect();
        let mut out = Injected::default();
        match c.scenario {
            Scenario::KillLeader | Scenario::PauseLeader | Scenario::PartitionLeader => {
                // From the moment the fault is sent: the leader stops serving at the
                // signal, not when the driver has seen the process go.
                let fault_at = Instant::now();
                match c.scenario {
                    Scenario::KillLeader => d.kill(leader).await?,
                    Scenario::PauseLeader => d.pause(leader).await?,
                    _ => d.isolate(leader).await?,
                }
                tracing::info!(round, node = leader, "fault injected");
                out.node = Some(leader);
                out.nodes_hit = vec![leader];
                out.steps.push(Step {
                    fault_at,
                    recovery: Recovery::NewLeader(leader),
                    leader_poll: Some(self.poll_leader(&others, Some(leader), fault_at)),
                });
                tokio::time::sleep(c.fault_window).await;
                match c.scenario {
                    Scenario::KillLeader => d.restart(leader).await?,
                    Scenario::PauseLeader => {
                        d.resume(leader).await?;
                        self.probe_old_leader(leader, keys, rec, &mut out).await?;
                    }
                    _ => d.heal().await?,
                }
            }
            Scenario::KillFollower | Scenario::PauseFollower | Scenario::PartitionFollower => {
                let node = others[(round as usize - 1) % others.len()];
                let fault_at = Instant::now();
                match c.scenario {
                    Scenario::KillFollower => d.kill(node).await?,
                    Scenario::PauseFollower => d.pause(node).await?,
                    _ => d.isolate(node).await?,
                }
                out.node = Some(node);
                out.nodes_hit = vec![node];
                out.steps.push(Step {
                    fault_at,
                    recovery: Recovery::AnyAck,
                    leader_poll: None,
                });
                tokio::time::sleep(c.fault_window).await;
                match c.scenario {
                    Scenario::KillFollower => d.restart(node).await?,
                    Scenario::PauseFollower => d.resume(node).await?,
                    _ => d.heal().await?,
                }
            }
            Scenario::RestartAll => {
                let killed = join_all(self.ids.iter().map(|&id| d.kill(id))).await;
                killed.into_iter().collect::<Result<Vec<()>, _>>()?;
                out.nodes_hit = self.ids.clone();
                tokio::time::sleep(c.down_time).await;
                // RTO runs from the moment the restarts begin: the cluster was down on
                // purpose until then.
                let restart_at = Instant::now();
                let poll = self.poll_leader(&self.ids, None, restart_at);
                for &id in &self.ids {
                    d.restart(id).await?;
                }
                out.steps.push(Step {
                    fault_at: restart_at,
                    recovery: Recovery::AnyAck,
                    leader_poll: Some(poll),
                });
            }
            Scenario::RollingRestart => {
                let mut order = others.clone();
                order.push(leader);
                for &id in &order {
                    let survivors: Vec<u64> =
                        self.ids.iter().copied().filter(|&i| i != id).collect();
                    let fault_at = Instant::now();
                    let leader_poll =
                        (id == leader).then(|| self.poll_leader(&survivors, Some(id), fault_at));
                    d.stop(id).await?;
                    tracing::info!(round, node = id, "node stopped");
                    out.steps.push(Step {
                        fault_at,
                        recovery: if id == leader {
                            Recovery::NewLeader(id)
                        } else {
                            Recovery::AnyAck
                        },
                        leader_poll,
                    });
                    tokio::time::sleep(c.down_time).await;
                    d.restart(id).await?;
                    self.wait_rejoined(id).await?;
                }
                out.node = Some(leader);
                out.nodes_hit = order;
            }
            Scenario::Procedure => {
                let command = c.procedure.as_deref().unwrap_or_default();
                let started = Instant::now();
                run_procedure(command, c.procedure_timeout).await?;
                tracing::info!(round, took = ?started.elapsed(), "procedure done");
                out.nodes_hit = self.ids.clone();
                out.steps.push(Step {
                    fault_at: started,
                    recovery: Recovery::LongestGapUntil(rec.time_of(Instant::now())),
                    leader_poll: None,
                });
            }
        }
        Ok(out)
    }

    /// Reads every key through the old leader right after it resumed, LINEARIZABLE and
    /// LEASE; the answers join the history, where a stale one is a violation.
    async fn probe_old_leader(
        &self,
        old: u64,
        keys: &[String],
        rec: &History,
        out: &mut Injected,
    ) -> Result<(), DrillError> {
        let mut cfg = client_config(self.driver, self.config, &[old]);
        cfg.endpoints = vec![self.driver.api_endpoint(old)];
        let pinned = Client::new(cfg)?;
        let process = self.config.writers + self.config.readers;
        for key in keys {
            for (consistency, tag) in [
                (Consistency::Linearizable, PROBE_LINEARIZABLE),
                (Consistency::Lease, PROBE_LEASE),
            ] {
                let op = rec.invoke_tagged(process_name(process), key, read_kind(), tag);
                let r = pinned
                    .get_with(
                        key,
                        ReadOptions::new(consistency).deadline(self.config.op_timeout),
                    )
                    .await;
                if let Ok(read) = &r
                    && read.meta.served_by == old
                {
                    out.probe_served_by_old_leader += 1;
                }
                out.probe_reads += usize::from(r.is_ok());
                complete_read(rec, op, r.ok());
            }
        }
        Ok(())
    }

    fn start_load(&self, round: u32, keys: &[String]) -> Result<Load, DrillError> {
        let c = self.config;
        let stop = Arc::new(AtomicBool::new(false));
        let rec = Arc::new(History::new());
        let keys: Arc<[String]> = keys.into();
        let mut tasks = Vec::new();
        for p in 0..c.writers + c.readers {
            let client = Client::new(client_config(self.driver, c, &self.ids))?;
            let (stop, rec, keys) = (stop.clone(), rec.clone(), keys.clone());
            let timeout = c.op_timeout;
            let writer = p < c.writers;
            let tag = format!("{}/r{round}/p{p}", self.run_id);
            tasks.push(tokio::spawn(async move {
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (u64::from(p) << 32 | u64::from(round));
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = &keys[(xorshift(&mut rng) % keys.len() as u64) as usize];
                    let ok = if writer {
                        let value = format!("{tag}/{n}");
                        n += 1;
                        write_once(&client, p, key, value, timeout, &rec).await
                    } else {
                        let op = rec.invoke(process_name(p), key.as_str(), read_kind());
                        let r = client
                            .get_with(key, ReadOptions::linearizable().deadline(timeout))
                            .await;
                        complete_read(&rec, op, r.ok())
                    };
                    if !ok {
                        // A refusal can come back at once; do not spin on it.
                        tokio::time::sleep(POLL_EVERY).await;
                    }
                }
            }));
        }
        Ok(Load { stop, tasks, rec })
    }

    async fn warm_up(&self, load: &Load) -> Result<(), DrillError> {
        let start = Instant::now();
        let want = (2 * self.config.writers as usize).max(10);
        loop {
            let acked = load.rec.counts().acknowledged;
            if acked >= want && start.elapsed() >= self.config.warmup {
                return Ok(());
            }
            if start.elapsed() > self.config.leader_timeout {
                return Err(DrillError::NoWrites {
                    waited: self.config.leader_timeout,
                    acked,
                });
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    async fn health(&self, ids: &[u64]) -> Vec<(u64, Result<HealthCheckResponse, ClientError>)> {
        health_of(&self.ops, self.driver, ids).await
    }

    /// The node that says it leads in the highest term.
    async fn find_leader(&self, timeout: Duration) -> Result<u64, DrillError> {
        let start = Instant::now();
        loop {
            let hs = self.health(&self.ids).await;
            if let Some(l) = leader_of(&hs) {
                return Ok(l);
            }
            if start.elapsed() > timeout {
                return Err(DrillError::NoLeader {
                    waited: timeout,
                    last: health_summary(&hs),
                });
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Polls `among` until one of them (not `old`) says it leads; the time from `since`.
    fn poll_leader(
        &self,
        among: &[u64],
        old: Option<u64>,
        since: Instant,
    ) -> JoinHandle<Option<Duration>> {
        let nodes: Vec<(u64, String)> = among
            .iter()
            .map(|&id| (id, self.driver.api_endpoint(id)))
            .collect();
        let ops = self.ops.clone();
        let timeout = self.config.leader_timeout;
        tokio::spawn(async move {
            while since.elapsed() < timeout {
                let hs = join_all(
                    nodes
                        .iter()
                        .map(|(_, ep)| ops.health(ep, CallOptions::new().deadline(POLL_TIMEOUT))),
                )
                .await;
                if hs.iter().flatten().any(|h| {
                    h.role == "leader" && h.leader_id == h.node_id && Some(h.node_id) != old
                }) {
                    return Some(since.elapsed());
                }
                tokio::time::sleep(POLL_EVERY).await;
            }
            None
        })
    }

    /// Waits until node `id` is healthy and has applied what the leader had applied
    /// when the wait began.
    async fn wait_rejoined(&self, id: u64) -> Result<(), DrillError> {
        let start = Instant::now();
        let target = self
            .health(&self.ids)
            .await
            .into_iter()
            .filter_map(|(_, h)| h.ok())
            .filter(|h| h.role == "leader")
            .map(|h| h.applied_index)
            .max()
            .unwrap_or(0);
        loop {
            let hs = self.health(&[id]).await;
            if let Some((_, Ok(h))) = hs.first()
                && h.healthy
                && h.applied_index >= target
            {
                return Ok(());
            }
            if start.elapsed() > self.config.catch_up_timeout {
                return Err(DrillError::NotCaughtUp {
                    waited: self.config.catch_up_timeout,
                    last: health_summary(&hs),
                });
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Waits until every node is healthy at one applied index; returns it and the leader.
    async fn wait_caught_up(&self) -> Result<(u64, Option<u64>), DrillError> {
        let start = Instant::now();
        loop {
            let hs = self.health(&self.ids).await;
            let indexes: Vec<u64> = hs
                .iter()
                .filter_map(|(_, h)| h.as_ref().ok().filter(|h| h.healthy))
                .map(|h| h.applied_index)
                .collect();
            if indexes.len() == hs.len() && indexes.windows(2).all(|w| w[0] == w[1]) {
                return Ok((indexes[0], leader_of(&hs)));
            }
            if start.elapsed() > self.config.catch_up_timeout {
                return Err(DrillError::NotCaughtUp {
                    waited: self.config.catch_up_timeout,
                    last: health_summary(&hs),
                });
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Whether the nodes' content hashes differ at one applied index; `None` if some
    /// node does not report a hash or the nodes never report the same index.
    async fn content_divergence(&self) -> Option<bool> {
        let req = GetStatsRequest {
            include_content_hash: true,
        };
        for _ in 0..20 {
            let stats = join_all(self.ids.iter().map(|&id| {
                let ep = self.driver.api_endpoint(id);
                async move {
                    self.ops
                        .stats_with(&ep, req, CallOptions::new().deadline(POLL_TIMEOUT * 4))
                        .await
                }
            }))
            .await;
            let stats: Vec<GetStatsResponse> = stats.into_iter().collect::<Result<_, _>>().ok()?;
            if stats.iter().any(|s| s.content_hash.is_empty()) {
                return None;
            }
            if stats
                .windows(2)
                .all(|w| w[0].content_hash_index == w[1].content_hash_index)
            {
                let diverged = stats
                    .windows(2)
                    .any(|w| w[0].content_hash != w[1].content_hash);
                if diverged {
                    tracing::error!(hashes = ?stats.iter().map(|s| (s.node_id, s.content_hash_index, s.content_hash.clone())).collect::<Vec<_>>(), "content hashes differ");
                }
                return Some(diverged);
            }
            tokio::time::sleep(POLL_EVERY * 5).await;
        }
        None
    }

    /// Reads every key LINEARIZABLE (retrying until the catch-up deadline): the keys
    /// that exist, with their values and versions. The reads join the history.
    async fn read_back(&self, keys: &[String], rec: &History) -> Result<FinalState, DrillError> {
        let mut out = FinalState::new();
        let deadline = Instant::now() + self.config.catch_up_timeout;
        let process = self.config.writers + self.config.readers + 1;
        for key in keys {
            loop {
                let op = rec.invoke_tagged(process_name(process), key, read_kind(), FINAL_READ);
                let r = self
                    .ops
                    .get_with(
                        key,
                        ReadOptions::linearizable().deadline(self.config.op_timeout),
                    )
                    .await;
                match r {
                    Ok(read) => {
                        if let Some(c) = &read.value {
                            let value = Value::from(c.content.as_slice());
                            let version = c.version;
                            out.insert(key.clone(), Stored { value, version });
                        }
                        complete_read(rec, op, Some(read));
                        break;
                    }
                    Err(e) => {
                        complete_read(rec, op, None);
                        if Instant::now() >= deadline {
                            return Err(e.into());
                        }
                        tracing::debug!(%key, error = %e, "final read failed; retrying");
                        tokio::time::sleep(POLL_EVERY).await;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Best effort after a failed round: every node resumed, healed and running.
    async fn restore(&self) {
        for &id in &self.ids {
            let _ = self.driver.resume(id).await;
        }
        let _ = self.driver.heal().await;
        for &id in &self.ids {
            if let Err(e) = self.driver.restart(id).await {
                tracing::warn!(node = id, error = %e, "could not restart after a failed round");
            }
        }
    }
}

/// One put of `value`, recorded.
async fn write_once(
    client: &Client,
    process: u32,
    key: &str,
    value: String,
    timeout: Duration,
    rec: &History,
) -> bool {
    let concept = Concept {
        id: key.to_string(),
        content: value.clone().into_bytes(),
        ..Concept::default()
    };
    let kind = OpKind::Write {
        value: Value::from(value),
    };
    let op = rec.invoke(process_name(process), key, kind);
    let r = client
        .put_with(concept, None, CallOptions::new().deadline(timeout))
        .await;
    let (outcome, reply) = match &r {
        Ok(w) => (
            Outcome::Ok {
                version: Some(w.version),
            },
            reply(w.served_by, w.leader_id, w.deduplicated),
        ),
        Err(e) => (write_outcome(e), Reply::default()),
    };
    record(rec.complete_with(op, outcome, reply));
    r.is_ok()
}

/// The [`Reply`] of an answer; node id 0 is "unknown".
fn reply(served_by: u64, leader_id: u64, deduplicated: bool) -> Reply {
    let known = |id: u64| (id != 0).then_some(id);
    Reply {
        served_by: known(served_by),
        leader_id: known(leader_id),
        deduplicated,
    }
}

/// A read of a key, as it is invoked.
fn read_kind() -> OpKind {
    OpKind::Read { observed: None }
}

/// The history's name of task `process` (writers `0..W`, readers after them, probes
/// and final reads last).
fn process_name(process: u32) -> String {
    format!("p{process}")
}

/// Completes the read `op` with its answer (`None`: no answer, the read constrains
/// nothing); returns whether it was answered.
fn complete_read(rec: &History, op: OpId, answer: Option<Read<Option<Concept>>>) -> bool {
    match answer {
        Some(read) => {
            let version = read.value.as_ref().map(|c| c.version);
            let observed = read.value.map(|c| Value::from(c.content));
            let reply = reply(read.meta.served_by, read.meta.leader_id, false);
            record(rec.complete_read_with(op, observed, version, reply));
            true
        }
        None => {
            record(rec.complete(op, Outcome::Unknown));
            false
        }
    }
}

/// A recording call can only fail for an operation this module did not invoke or
/// completed twice: a bug here, logged rather than ending the round.
fn record(r: sutra_checker::Result<()>) {
    if let Err(e) = r {
        tracing::error!(error = %e, "drill history");
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

async fn health_of<D: FaultDriver>(
    ops: &Client,
    driver: &D,
    ids: &[u64],
) -> Vec<(u64, Result<HealthCheckResponse, ClientError>)> {
    let calls = ids.iter().map(|&id| {
        let ep = driver.api_endpoint(id);
        async move {
            (
                id,
                ops.health(&ep, CallOptions::new().deadline(POLL_TIMEOUT))
                    .await,
            )
        }
    });
    join_all(calls).await
}

/// The node that says it leads in the highest term, if any.
fn leader_of(hs: &[(u64, Result<HealthCheckResponse, ClientError>)]) -> Option<u64> {
    hs.iter()
        .filter_map(|(_, h)| h.as_ref().ok())
        .filter(|h| h.role == "leader" && h.leader_id == h.node_id)
        .max_by_key(|h| h.term)
        .map(|h| h.node_id)
}

fn health_summary(hs: &[(u64, Result<HealthCheckResponse, ClientError>)]) -> String {
    hs.iter()
        .map(|(id, h)| match h {
            Ok(h) => format!(
                "node {id}: {} term {} leader {} applied {}{}",
                h.role,
                h.term,
                h.leader_id,
                h.applied_index,
                if h.healthy {
                    String::new()
                } else {
                    format!(" ({})", h.reason)
                }
            ),
            Err(e) => format!("node {id}: {e}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

#[cfg(test)]
mod tests {
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
