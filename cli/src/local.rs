//! `sutra local`: the local three-node TLS cluster of `sutra_devcluster::runner`.

use std::path::PathBuf;

use sutra_devcluster::runner::{self, Binaries, LocalOptions};

/// Arguments of `sutra local`.
#[derive(Debug, clap::Args)]
pub struct LocalArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
    /// Directory holding certificates, data, logs and `cluster.json`.
    #[arg(
        long,
        global = true,
        default_value = ".sutra/local",
        env = "SUTRA_LOCAL_DIR"
    )]
    pub dir: PathBuf,
    /// Client API port of node 1 on first start (node N gets base+N-1, its Raft port
    /// base+100+N-1). Default: free ports chosen by the OS.
    #[arg(long, global = true, env = "SUTRA_LOCAL_BASE_PORT")]
    pub base_port: Option<u16>,
    /// With `start` or `run`: put a TCP proxy on every peer link, hosted by one more
    /// process, so that `sutra drill --scenario partition-leader` can cut a node off. The
    /// proxies are recorded in `cluster.json` and kept from then on; a cluster whose
    /// nodes run without them must be stopped first. With `--base-port B` the proxies
    /// listen on B+200 onwards.
    #[arg(long, global = true)]
    pub link_proxies: bool,
    /// When the cluster is first made: give every node a monitoring listener
    /// (`--metrics-listen`) on a free loopback port, recorded in `cluster.json` as the
    /// node's `metrics` and kept from then on.
    #[arg(long, global = true)]
    pub metrics: bool,
    /// The sutra-node binary the nodes run (default: next to sutra, else on the PATH).
    #[arg(long, global = true, env = "SUTRA_NODE_BIN")]
    pub node_bin: Option<PathBuf>,
}

/// `local` actions.
#[derive(Debug, Clone, Copy, clap::Subcommand)]
pub enum Action {
    /// Start the cluster in the foreground; Ctrl-C stops it.
    Run,
    /// Start the cluster in the background and return once it is healthy.
    Start,
    /// Stop a cluster started with `start`.
    Stop,
    /// Health of every node, as JSON.
    Status,
    /// Serve the link proxies recorded in `cluster.json` (started by `start` and `run`).
    #[command(hide = true)]
    Proxies,
}

/// Runs `sutra local <action>`.
pub fn run(args: LocalArgs) -> anyhow::Result<()> {
    let opts = LocalOptions {
        dir: args.dir,
        base_port: args.base_port,
        link_proxies: args.link_proxies,
        metrics: args.metrics,
    };
    let bins = || -> anyhow::Result<Binaries> {
        Ok(Binaries {
            node: match &args.node_bin {
                Some(bin) => bin.clone(),
                None => sutra_devcluster::process::node_binary()?,
            },
            cli: Some(std::env::current_exe()?),
        })
    };
    match args.action {
        Action::Run => runner::run(&opts, &bins()?),
        Action::Start => runner::start(&opts, &bins()?),
        Action::Stop => runner::stop(&opts.dir),
        Action::Status => {
            println!(
                "{}",
                serde_json::to_string_pretty(&runner::status(&opts.dir)?)?
            );
            Ok(())
        }
        Action::Proxies => runner::serve_proxies(&opts.dir),
    }
}
