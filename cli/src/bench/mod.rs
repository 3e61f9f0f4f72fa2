//! `sutra bench`: a closed-loop load generator. C tasks, each with its own connections,
//! share N requests; the run stops after N requests or after `--duration`, whichever
//! comes first. Reads need data: `get` and `mixed` first store the keys they read (not
//! timed).
//!
//! Two shapes: through the SDK (`--connections sdk`: each task its own [`Client`], with
//! its leader following and read routing), or the field's standard benchmark shape
//! (`--connections per-node`: task i keeps one connection to node i mod N and sends
//! every request there, so a follower relays the writes it gets). For a local cluster
//! (`--cluster-file`) the report adds each node's CPU per operation.

mod cpu;
mod report;
mod task;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::Context;
use sutra_client::{Client, ClientConfig, Connector, ReadOptions};

use crate::args::ReadArgs;
use crate::parse;
use report::Outcome;
pub use report::Report;
use task::{Target, Task};

/// Flags of `sutra bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// put, get (preloads the keys it reads) or mixed.
    #[arg(value_enum)]
    pub workload: Workload,
    /// Concurrent clients, each with its own connections.
    #[arg(long, default_value_t = 4)]
    pub clients: u32,
    /// How clients reach the nodes: through the SDK (leader following, reads spread as
    /// their consistency allows), or per-node: client i pinned to endpoint i mod N.
    #[arg(long, value_enum, default_value = "sdk")]
    pub connections: Connections,
    /// Requests in total.
    #[arg(long, default_value_t = 1000)]
    pub requests: u64,
    /// Bytes of content per put.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Mixed: the share of gets, 0..=1.
    #[arg(long, default_value_t = 0.9)]
    pub read_ratio: f64,
    /// Distinct ids written and read.
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// Puts write a new id each (request number, in order) instead of overwriting the
    /// --keys ids in turn.
    #[arg(long)]
    pub new_keys: bool,
    /// Stop after this many seconds even if requests remain.
    #[arg(long, default_value = "60", value_parser = parse::seconds)]
    pub duration: Duration,
    /// Prefix of the ids used.
    #[arg(long, default_value = "bench/")]
    pub prefix: String,
    #[command(flatten)]
    pub read: ReadArgs,
}

impl BenchArgs {
    /// The bench's parameters for these flags.
    pub fn params(self) -> Params {
        Params {
            workload: self.workload,
            connections: self.connections,
            new_keys: self.new_keys,
            clients: self.clients,
            requests: self.requests,
            value_size: self.value_size,
            read: self.read.options(),
            read_ratio: self.read_ratio,
            keys: self.keys,
            duration: self.duration,
            prefix: self.prefix,
        }
    }
}

/// What the bench does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Put concepts (ids cycle over --keys, or new ones with --new-keys).
    Put,
    /// Get preloaded concepts.
    Get,
    /// Gets and puts, --read-ratio of them gets.
    Mixed,
}

impl Workload {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Put => "put",
            Self::Get => "get",
            Self::Mixed => "mixed",
        }
    }
}

/// How the bench's clients reach the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Connections {
    /// Each client an SDK `Client`: writes go to the leader it follows, reads to the
    /// nodes their consistency allows, failures are retried.
    Sdk,
    /// Client i keeps one connection to endpoint i mod N and sends everything there (a
    /// follower relays writes and asks the leader for linearizable reads); nothing is
    /// retried.
    PerNode,
}

impl Connections {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sdk => "sdk",
            Self::PerNode => "per-node",
        }
    }
}

/// The bench's parameters.
#[derive(Debug, Clone)]
pub struct Params {
    /// What to do.
    pub workload: Workload,
    /// How the clients reach the nodes.
    pub connections: Connections,
    /// Puts write new ids instead of overwriting.
    pub new_keys: bool,
    /// Concurrent tasks, each with its own connections.
    pub clients: u32,
    /// Requests in total.
    pub requests: u64,
    /// Bytes of content per put.
    pub value_size: usize,
    /// How reads are served.
    pub read: ReadOptions,
    /// Share of gets in `mixed`, 0..=1.
    pub read_ratio: f64,
    /// Distinct ids written and read.
    pub keys: u64,
    /// Longest the timed run may take.
    pub duration: Duration,
    /// Prefix of the ids.
    pub prefix: String,
}

/// Runs the bench. With the `cluster.json` of a local cluster, the nodes' CPU time is
/// read before and after the timed run.
pub async fn run(
    config: ClientConfig,
    p: Params,
    command: String,
    cluster_file: Option<&Path>,
) -> anyhow::Result<Report> {
    anyhow::ensure!(p.clients > 0, "--clients must be at least 1");
    anyhow::ensure!(p.keys > 0, "--keys must be at least 1");
    anyhow::ensure!(
        (0.0..=1.0).contains(&p.read_ratio),
        "--read-ratio must be within 0..=1"
    );
    if p.workload != Workload::Put {
        task::preload(&Client::new(config.clone())?, &p).await?;
    }
    let nodes = match cluster_file {
        Some(path) => cpu::Nodes::of_cluster_file(path)?,
        None => cpu::Nodes::default(),
    };
    let targets = targets(&config, &p).await?;
    let p = Arc::new(p);
    let issued = Arc::new(AtomicU64::new(0));
    let before = nodes.sample();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (t, target) in targets.into_iter().enumerate() {
        let task = Task::new(target, p.clone(), issued.clone(), started, t as u64);
        tasks.push(tokio::spawn(task.run()));
    }
    let mut all = Outcome::default();
    for t in tasks {
        all.merge(t.await.context("a bench task panicked")?);
    }
    let elapsed = started.elapsed();
    // Empty when no node's CPU can be read (the samples are empty then).
    let server_cpu = cpu::spent(
        &before,
        &nodes.sample(),
        all.latencies.len() as u64,
        elapsed.as_secs_f64(),
    );
    Ok(report::report(&p, command, all, elapsed, server_cpu))
}

/// One target per client, connected before the timed run starts.
async fn targets(config: &ClientConfig, p: &Params) -> anyhow::Result<Vec<Target>> {
    let mut targets = Vec::new();
    match p.connections {
        Connections::Sdk => {
            for _ in 0..p.clients {
                targets.push(Target::Sdk(Client::new(config.clone())?));
            }
        }
        Connections::PerNode => {
            let connector = Connector::new(&config.tls, config.server_name.as_deref())?;
            let run_id = format!("bench-{}-{}", std::process::id(), unix_millis());
            for t in 0..p.clients {
                let endpoint = &config.endpoints[t as usize % config.endpoints.len()];
                let storage = connector
                    .storage(endpoint)
                    .await
                    .with_context(|| format!("connecting to {endpoint}"))?;
                targets.push(Target::node(
                    storage,
                    format!("{run_id}-{t}"),
                    config.request_timeout,
                ));
            }
        }
    }
    Ok(targets)
}

/// Milliseconds since the Unix epoch, to tell one run's client ids from another's.
fn unix_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}
