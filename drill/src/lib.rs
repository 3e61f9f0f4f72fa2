//! Failover drills: load a running cluster, inject one fault per round, measure how long
//! writes stop (RTO) and how long a new leader takes, and check that no acknowledged write
//! was lost, none applied twice and no read was stale (`docs/drills.md`).
//!
//! The engine ([`run_drill`]) knows nothing about processes: faults go through a
//! [`FaultDriver`], so the same drill runs against the local cluster of `sutra local`
//! ([`LocalProcessDriver`]), the cluster-test harness and the compose cluster
//! ([`DockerDriver`]). It owns the load (each writer and reader task with its own
//! [`Client`](sutra_client::Client)), the measurements and the round report; every
//! operation is recorded in a [`sutra_checker::History`] and checked by `sutra-checker`
//! ([`check_round`]). It does not own the cluster.
//!
//! ```text
//!   run_drill ──▶ round ──▶ writers/readers (Client) ──▶ sutra_checker::History
//!                   │                                        │
//!                   ├──▶ FaultDriver: kill/stop/pause/isolate, restart/resume/heal
//!                   ├──▶ HealthCheck polls: leader, new leader, caught up
//!                   └──▶ final LINEARIZABLE reads ──▶ check_round (sutra-checker) ──▶ RoundReport
//!                                                          rto (history times) ──▶
//! ```

mod check;
mod docker;
mod driver;
mod engine;
mod local;
mod report;
mod restore;
mod rto;
mod scenario;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

pub use check::{CheckResult, check_round};
pub use docker::DockerDriver;
pub use driver::FaultDriver;
pub use engine::{DrillConfig, run_drill};
pub use local::LocalProcessDriver;
pub use report::{DrillReport, RoundReport, Summaries, Targets};
pub use restore::{BackupTaken, RestoreReport, RestoreTarget, ScratchCluster};
pub use rto::{Recovery, rto};
pub use scenario::{Scenario, UnknownScenario};
pub use stats::{Summary, nearest_rank};

use sutra_client::ClientError;

/// Why a drill could not run (or not go on). A drill that runs and finds a lost write is
/// not an error: its [`DrillReport`] says so.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DrillError {
    /// The driver cannot inject what the scenario needs.
    #[error("{reason}")]
    Unsupported {
        /// Why, in one line.
        reason: String,
    },
    /// The drill's parameters make no sense.
    #[error("invalid drill: {0}")]
    Config(String),
    /// The cluster file could not be read.
    #[error("cluster file {}: {message}", path.display())]
    ClusterFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A fault could not be injected or healed.
    #[error("node {node}: {message}")]
    Fault {
        /// The node.
        node: u64,
        /// What went wrong.
        message: String,
    },
    /// The procedure of the `procedure` scenario failed.
    #[error("procedure `{command}`: {message}")]
    Procedure {
        /// The shell command.
        command: String,
        /// How it failed.
        message: String,
    },
    /// A step of the `restore` scenario failed (the backup, the restore, stopping the
    /// scratch cluster).
    #[error("restore drill, round {round}: {step}: {message}")]
    Restore {
        /// The round.
        round: u32,
        /// The step.
        step: String,
        /// How it failed.
        message: String,
    },
    /// No node said it leads.
    #[error("no leader within {waited:?}: {last}")]
    NoLeader {
        /// How long the drill waited.
        waited: Duration,
        /// What the nodes said last.
        last: String,
    },
    /// The writers got no write acknowledged before the fault.
    #[error("warm-up: {acked} writes acknowledged within {waited:?}")]
    NoWrites {
        /// How long the drill waited.
        waited: Duration,
        /// Writes acknowledged meanwhile.
        acked: usize,
    },
    /// The nodes did not all become healthy at one applied index.
    #[error("the cluster did not catch up within {waited:?}: {last}")]
    NotCaughtUp {
        /// How long the drill waited.
        waited: Duration,
        /// What the nodes said last.
        last: String,
    },
    /// A client call failed for good (a final read, a connection).
    #[error(transparent)]
    Client(#[from] ClientError),
}
