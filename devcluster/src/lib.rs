//! Sutra's development and test cluster tooling: never part of the server.
//!
//! - [`runner`]: a three-node TLS cluster on loopback (`sutra local run|start|stop|status`),
//!   recorded in a [`ClusterFile`] (`cluster.json`) that the CLI, the drills, the
//!   benchmarks and the SDK examples read;
//! - [`linkproxy`]: a TCP proxy on one peer link with a network's faults (reset, black
//!   hole, delay, one-way cuts), used in process by the cluster-test harness and hosted
//!   for a local cluster by the proxy process ([`proxies`]), driven through its control
//!   socket ([`control`]);
//! - [`process`]: node processes and the signals that fault them, by their own PID.
//!
//! ```text
//!   sutra local start ──▶ runner ──spawn──▶ sutra-node ×3 ──peer links──▶ proxies (optional)
//!         │                  └── cluster.json (ClusterFile) ◀── sutra, drills, examples
//!   sutra drill ──signal(pid)──▶ node       ──control::request──▶ proxies.sock
//! ```

pub mod cluster_file;
pub mod control;
pub mod linkproxy;
pub mod process;
pub mod proxies;
pub mod runner;

pub use cluster_file::{
    CLUSTER_FILE, ClusterFile, ClusterFileError, LinkProxies, LocalNode, ProxyLink,
};
pub use linkproxy::{Direction, LinkFaults, LinkMode, LinkProxy, LinkStats};
pub use process::{NodeProcess, Signal};
pub use runner::{Binaries, LocalOptions};
