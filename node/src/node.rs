//! [`Node`]: the handle every service shares: the Raft instance, the engine behind it,
//! and the policies that sit between a request and them (leadership, consistency,
//! limits).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use openraft::async_runtime::WatchReceiver;
use sutra_engine::{Engine, WriteBatch, WriteOutcome};
use sutra_proto::LeaderHint;
use sutra_proto::storage as pb;
use sutra_raft::{
    ClusterIdentity, ClusterParams, Command, CommandResponse, NodeInfo, PeerNetwork, ProposeError,
    Proposer, SharedClusterState, StateMachine, TypeConfig,
};

use crate::config::ValidConfig;
use crate::metrics::{Instruments, Refusal, WriteStage};
use crate::status::ServiceError;

/// The Raft instance of a node.
pub type Raft = openraft::Raft<TypeConfig, StateMachine>;
/// What openraft reports about a node.
pub type Metrics = openraft::RaftMetrics<TypeConfig>;

/// Longest a `SESSION` read waits for this node to catch up with the client's last write.
pub(crate) const SESSION_WAIT: Duration = Duration::from_secs(5);

/// Shared state of a running node.
#[derive(Debug)]
pub struct Node {
    /// This node's id.
    pub id: u64,
    /// The Raft instance.
    pub raft: Raft,
    /// The storage engine (the state machine's data).
    pub engine: Engine,
    /// The validated configuration.
    pub config: ValidConfig,
    /// Where the Raft log lives, for its size.
    pub log_dir: PathBuf,
    /// The peer network, for the calls a follower makes to its leader.
    pub(crate) network: PeerNetwork,
    /// The leader's gate into the log (also the replicated cluster state).
    pub proposer: Proposer,
    /// The cluster this node belongs to.
    pub identity: ClusterIdentity,
    /// Counters and histograms updated as work happens (also the Raft layer's observer).
    pub instruments: Arc<Instruments>,
    started: Instant,
    flushes: AtomicU64,
    /// When a leader's AppendEntries last reached this node (monotonic), and the leader's
    /// commit index it carried: what a BOUNDED read must have applied.
    pub(crate) leader_contact: Mutex<Option<(Instant, Option<u64>)>>,
    /// The batching queue of the writes this node relays, once started
    /// ([`crate::relay::Relay::start`]); without it each write is relayed on its own.
    pub(crate) relay: OnceLock<crate::relay::Relay>,
}

/// This node's wall clock, in milliseconds since the Unix epoch, moved by
/// `SUTRA_TEST_CLOCK_OFFSET_MS` (tests only: a node whose clock is far off). Nothing the
/// cluster agrees on depends on it: log time is the leader's monotonic clock
/// (`sutra_raft::LogClock`), and a leader restamps every write it is relayed.
pub fn now_ms() -> u64 {
    let offset: i64 = std::env::var("SUTRA_TEST_CLOCK_OFFSET_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    wall.saturating_add_signed(offset)
}

/// What a node is made of besides its Raft instance and configuration: the parts opened
/// before Raft started.
#[derive(Debug)]
pub struct NodeParts {
    /// The engine under the state machine.
    pub engine: Engine,
    /// The state machine's cluster state.
    pub cluster: SharedClusterState,
    /// Where the Raft log lives.
    pub log_dir: PathBuf,
    /// The peer network Raft uses.
    pub network: PeerNetwork,
    /// The cluster this node belongs to.
    pub identity: ClusterIdentity,
    /// The instruments the Raft layer already reports into.
    pub instruments: Arc<Instruments>,
}

impl Node {
    /// Wraps a started Raft instance over `parts`.
    pub fn new(raft: Raft, config: ValidConfig, parts: NodeParts) -> Self {
        let NodeParts {
            engine,
            cluster,
            log_dir,
            network,
            identity,
            instruments,
        } = parts;
        Self {
            id: config.node_id,
            proposer: Proposer::new(raft.clone(), engine.clone(), cluster)
                .with_observer(instruments.clone()),
            raft,
            engine,
            config,
            log_dir,
            network,
            identity,
            instruments,
            started: Instant::now(),
            flushes: AtomicU64::new(0),
            leader_contact: Mutex::new(None),
            relay: OnceLock::new(),
        }
    }

    /// The replicated cluster state.
    pub fn cluster(&self) -> &SharedClusterState {
        self.proposer.cluster()
    }

    /// The cluster's parameters, or UNAVAILABLE while they are not applied here yet.
    pub fn cluster_params(&self) -> Result<ClusterParams, ServiceError> {
        self.cluster()
            .params()
            .ok_or_else(|| ProposeError::NotConfigured.into())
    }

    /// A copy of the current Raft metrics.
    pub fn metrics(&self) -> Metrics {
        self.raft.metrics().borrow_watched().clone()
    }

    /// The id of the leader as this node knows it, without copying the metrics.
    pub fn current_leader(&self) -> Option<u64> {
        self.raft.server_metrics().borrow_watched().current_leader
    }

    /// The leader as this node knows it: id and client API address.
    pub fn leader(&self) -> Option<LeaderHint> {
        let server = self.raft.server_metrics();
        let m = server.borrow_watched();
        let id = m.current_leader?;
        let addr = m
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n: &NodeInfo| n.api_addr.clone());
        Some(LeaderHint { id, addr })
    }

    /// The error for "ask the leader".
    pub fn not_leader(&self) -> ServiceError {
        ServiceError::NotLeader(self.leader())
    }

    /// Index of the last entry applied here (0 before any).
    pub fn applied_index(&self) -> u64 {
        let data = self.raft.data_metrics();
        let applied = data.borrow_watched().last_applied;
        sutra_raft::position_of(applied.as_ref())
    }

    /// Uptime in seconds.
    pub fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Records that a leader's AppendEntries (a heartbeat or entries) just arrived, with
    /// the leader's commit index (a log index) it carried.
    pub fn note_leader_contact(&self, leader_commit: Option<u64>) {
        *self.leader_contact.lock() = Some((Instant::now(), leader_commit));
    }

    /// Writes this node answered with RESOURCE_EXHAUSTED (an alarm or the quota).
    pub fn dropped(&self) -> u64 {
        self.instruments.writes_refused(Refusal::Alarm)
            + self.instruments.writes_refused(Refusal::Quota)
    }

    /// `Flush` calls served.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// Proposes a validated write (on the leader; a follower relays it) and waits until
    /// it is applied here.
    #[tracing::instrument(level = "debug", skip_all, fields(node_id = self.id, ops = batch.ops.len()))]
    pub async fn write(&self, batch: WriteBatch) -> Result<CommandResponse, ServiceError> {
        // A follower's stamp travels with the relayed write only to be replaced: the
        // leader stamps log time.
        let resp = self.submit(Command::new(batch, now_ms())).await?;
        if let WriteOutcome::Rejected(r) = &resp.outcome.outcome {
            return Err(r.clone().into());
        }
        Ok(resp)
    }

    /// Counts a client write this node answers with `e` (`sutra_writes_refused_total`).
    pub fn refused(&self, e: &ServiceError) {
        let why = match e {
            ServiceError::ResourceExhausted(_) => {
                if self.cluster().alarms().is_empty() {
                    Refusal::Quota
                } else {
                    Refusal::Alarm
                }
            }
            ServiceError::InvalidArgument(_) => Refusal::Invalid,
            ServiceError::Rejected(_) => Refusal::Rejected,
            ServiceError::NotLeader(_) | ServiceError::Unavailable(_) => Refusal::Unavailable,
            ServiceError::Deadline(_) => Refusal::Deadline,
            _ => Refusal::Other,
        };
        self.instruments.write_refused(why);
    }

    /// Proposes `cmd` through the leader's gate: here on the leader, relayed otherwise;
    /// waits until it is applied here. The stages it went through are timed: relaying
    /// here, proposing and applying by the proposer (`sutra_write_stage_duration_seconds`),
    /// and all of them noted for the call's slow-request line.
    pub async fn submit(&self, cmd: Command) -> Result<CommandResponse, ServiceError> {
        let started = Instant::now();
        if self.raft.is_leader() {
            let resp = self.proposer.propose(cmd).await?;
            if let Some(applying) = resp.applied.started {
                let propose = applying.saturating_duration_since(started);
                crate::stages::note(WriteStage::Propose, propose);
                crate::stages::note(WriteStage::Apply, resp.applied.elapsed);
            }
            Ok(resp)
        } else {
            let resp = self.forward_write(&cmd).await;
            let relay = started.elapsed();
            self.instruments.write_stage(WriteStage::Relay, relay);
            crate::stages::note(WriteStage::Relay, relay);
            resp
        }
    }

    /// On the leader: the other voter whose log matches furthest, which takes over with
    /// the least catching up. `None` on a follower or without another voter.
    pub fn most_up_to_date_voter(&self) -> Option<u64> {
        let m = self.metrics();
        let matched = m.replication.as_ref()?;
        m.membership_config
            .membership()
            .voter_ids()
            .filter(|v| *v != self.id)
            .max_by_key(|v| matched.get(v).cloned().flatten().map_or(0, |l| l.index))
    }

    /// The write response for an applied command.
    pub fn write_response(&self, resp: &CommandResponse) -> pb::WriteResponse {
        let version = match &resp.outcome.outcome {
            WriteOutcome::Applied { version, .. } => *version,
            WriteOutcome::Rejected(_) => 0,
        };
        pb::WriteResponse {
            version,
            deduplicated: resp.outcome.deduplicated,
            served_by: self.id,
            leader_id: self.current_leader().unwrap_or(0),
        }
    }

    /// Bytes of the Raft log on disk.
    pub fn log_size_bytes(&self) -> u64 {
        dir_size(&self.log_dir)
    }

    /// Builds a Raft snapshot (an engine checkpoint) covering everything applied so far
    /// and returns the log id it covers.
    pub async fn snapshot_now(&self) -> Result<sutra_raft::LogId, ServiceError> {
        let applied = self.applied_index();
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| ServiceError::Unavailable(format!("raft stopped: {e}")))?;
        let m = self
            .raft
            .wait(Some(Duration::from_secs(60)))
            .metrics(
                |m| m.snapshot.is_some() && sutra_raft::position_of(m.snapshot.as_ref()) >= applied,
                "snapshot",
            )
            .await
            .map_err(|e| ServiceError::Deadline(format!("snapshot did not finish: {e}")))?;
        Ok(m.snapshot.expect("the wait above saw a snapshot"))
    }

    /// Checkpoints the engine (through a Raft snapshot) and purges the log behind it.
    pub async fn flush(&self) -> Result<pb::FlushResponse, ServiceError> {
        let fatal = |e: openraft::errors::Fatal<TypeConfig>| {
            ServiceError::Unavailable(format!("raft stopped: {e}"))
        };
        let snapshot_index = self.snapshot_now().await?.index;
        self.raft
            .trigger()
            .purge_log(snapshot_index)
            .await
            .map_err(fatal)?;
        self.raft
            .wait(Some(Duration::from_secs(60)))
            .metrics(
                |m| m.purged.as_ref().is_some_and(|p| p.index >= snapshot_index),
                "flush purge",
            )
            .await
            .map_err(|e| ServiceError::Deadline(format!("log purge did not finish: {e}")))?;
        self.flushes.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            event = "flush",
            checkpoint_index = sutra_raft::position(snapshot_index),
            "flushed: engine checkpointed, log purged behind it"
        );
        Ok(pb::FlushResponse {
            checkpoint_index: sutra_raft::position(snapshot_index),
            log_size_bytes: self.log_size_bytes(),
            data_file_bytes: self.engine.stats().data_bytes,
        })
    }
}

fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
