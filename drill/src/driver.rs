//! [`FaultDriver`]: how a drill reaches the nodes it hurts.

use std::future::Future;

use crate::{DrillError, Scenario};

/// Injects faults into the nodes of one cluster. The drill engine runs against any
/// implementation: local processes ([`LocalProcessDriver`](crate::LocalProcessDriver)),
/// the cluster-test harness (with TCP link proxies), containers.
///
/// To ensure correctness:
/// - every method acts on the node `id` names and no other (except `restart`, see there);
/// - `kill` returns once the process is gone, `stop` once it exited after a graceful
///   shutdown (SIGTERM: leadership handed over, checkpoint written), `pause` once the
///   process is stopped (SIGSTOP); none of them waits for the cluster to react;
/// - `restart` starts a killed or stopped node again with its data directory, ports and
///   identity; it is a no-op for a node that runs. It may start other stopped nodes with
///   it (a local cluster's `start` brings back every missing node) and may wait until the
///   cluster is healthy;
/// - `isolate` cuts every peer link of the node both ways (clients still reach it);
///   `heal` restores every link;
/// - the drill only calls what [`supports`](Self::supports) allows for its scenario.
pub trait FaultDriver: Send + Sync {
    /// What this driver drives, for messages (`"local processes in .sutra/local"`).
    fn describe(&self) -> String;

    /// Ids of every node.
    fn node_ids(&self) -> Vec<u64>;

    /// The client API endpoint (`host:port`) of node `id`.
    fn api_endpoint(&self, id: u64) -> String;

    /// Whether this driver can inject what `scenario` needs.
    fn supports(&self, scenario: Scenario) -> bool;

    /// Why `scenario` is not supported, in one line.
    fn unsupported_reason(&self, scenario: Scenario) -> String {
        format!("{} cannot run {scenario}", self.describe())
    }

    /// SIGKILL node `id`.
    fn kill(&self, id: u64) -> impl Future<Output = Result<(), DrillError>> + Send;

    /// Stop node `id` gracefully (SIGTERM) and wait for it to exit.
    fn stop(&self, id: u64) -> impl Future<Output = Result<(), DrillError>> + Send;

    /// Start node `id` again on its data after `kill` or `stop`.
    fn restart(&self, id: u64) -> impl Future<Output = Result<(), DrillError>> + Send;

    /// SIGSTOP node `id`.
    fn pause(&self, id: u64) -> impl Future<Output = Result<(), DrillError>> + Send;

    /// SIGCONT node `id`.
    fn resume(&self, id: u64) -> impl Future<Output = Result<(), DrillError>> + Send;

    /// Cut node `id`'s peer links both ways.
    fn isolate(&self, id: u64) -> impl Future<Output = Result<(), DrillError>> + Send;

    /// Restore every link.
    fn heal(&self) -> impl Future<Output = Result<(), DrillError>> + Send;
}
