//! Real-process cluster tests for Sutra.
//!
//! This crate owns the harness that the tests in `tests/` use: [`Cluster`] starts
//! `sutra-node` processes (built beforehand, found through `SUTRA_NODE_BIN` or next to the
//! test executable) on loopback ports chosen at run time, with TLS certificates from a dev
//! CA made per test; [`NodeProcess`] injects faults by signal (SIGKILL, SIGSTOP/SIGCONT,
//! SIGTERM) to the node's own PID; [`client`] has TLS clients and a retrying [`Writer`]
//! that records every write in a [`sutra_checker::History`]; [`history`] turns what the
//! nodes hold and what they answered into the checker's terms and its findings into test
//! failures ([`check_scan`], [`check_linearizable`]).
//!
//! It does not own the node (it only drives the binary through its flags and public
//! API), and it never builds anything: run `cargo build -p sutra-node` first.
//!
//! Waiting is always on observable state (health, status, applied index), polled with a
//! short interval and a deadline: [`wait_until`].
//!
//! ```text
//!   test ──TLS(admin|writer|reader)──▶ node 1 ◀──mTLS raft──▶ node 2 ◀──▶ node 3
//!    │                                   ▲ SIGKILL/SIGSTOP/SIGTERM by PID
//!    └── sutra_checker::History (ok/failed/unknown) ──▶ check_scan(scan of every node),
//!                                                        check_linearizable
//! ```

pub mod cli;
pub mod client;
pub mod harness;
pub mod history;
pub mod http;
pub mod load;
pub mod local;
/// Node processes and their signals (`sutra-devcluster`'s, shared with `sutra local`).
pub use sutra_devcluster::process;

use std::future::Future;
use std::time::{Duration, Instant};

pub use cli::CliRun;
pub use client::{ClientRole, NodeClient, WriteOutcome, Writer};
pub use harness::{Cluster, ClusterOptions};
pub use history::{check_final_scan, check_linearizable, check_scan};
pub use load::Load;
pub use sutra_devcluster::linkproxy::{Direction, LinkMode, LinkProxy};
pub use sutra_devcluster::process::NodeProcess;

/// Interval between two looks at the observed state in [`wait_until`].
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Marks an error of a polled condition as final: waiting longer cannot help (a node
/// exited, a request is refused for good), so [`wait_until`] returns it at once.
#[derive(Debug, Clone, Copy)]
pub struct Fatal;

impl std::fmt::Display for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped waiting")
    }
}

/// Marks `e` as [`Fatal`].
pub fn fatal(e: anyhow::Error) -> anyhow::Error {
    e.context(Fatal)
}

/// Polls `check` every [`POLL_INTERVAL`] until it returns `Ok`, for at most `timeout`
/// (and a bounded number of polls). An `Err` means "not yet, because ..."; the last one
/// is reported if time runs out. An error marked [`Fatal`] ends the wait at once.
pub async fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let start = Instant::now();
    let max_polls = timeout.as_millis() / POLL_INTERVAL.as_millis() + 2;
    let mut last: Option<anyhow::Error> = None;
    for _ in 0..max_polls {
        match check().await {
            Ok(v) => return Ok(v),
            Err(e) if e.downcast_ref::<Fatal>().is_some() => {
                return Err(e.context(format!("waiting for {what}")));
            }
            Err(e) => last = Some(e),
        }
        if start.elapsed() >= timeout {
            break;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let last = last.map_or_else(|| "never checked".to_string(), |e| format!("{e:#}"));
    anyhow::bail!(
        "{what}: not reached within {timeout:?} ({:?} elapsed); last observation: {last}",
        start.elapsed()
    )
}

/// Runs `fut`, failing with a message naming `what` if it takes longer than `timeout`.
pub async fn within<T>(
    what: &str,
    timeout: Duration,
    fut: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| anyhow::anyhow!("{what}: no result within {timeout:?}"))?
}

/// Sets up logging for a test: `RUST_LOG`, else `info` (certificate generation only
/// warns), through the test writer so that output is captured with the test's. Safe to
/// call from every test.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sutra_certs=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .with_ansi(false)
        .with_target(false)
        .try_init();
}
