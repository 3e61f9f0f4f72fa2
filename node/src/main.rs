//! `sutra-node`: parses the command line, sets up logging, and hands over to the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sutra_node::NodeConfig;

#[derive(Debug, Parser)]
#[command(
    name = "sutra-node",
    version,
    about = "A node of a Sutra storage cluster"
)]
struct Cli {
    /// How log lines are written: `text` for people, `json` (one object per line) for a
    /// log pipeline.
    #[arg(
        long,
        global = true,
        env = "SUTRA_LOG_FORMAT",
        value_enum,
        default_value_t
    )]
    log_format: sutra_node::logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node.
    Run {
        /// TOML configuration file. When given, it is the whole configuration: other
        /// flags and SUTRA_* variables are ignored.
        #[arg(long, env = "SUTRA_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        node: Box<NodeConfig>,
    },
    /// Generate (or complete) a development CA with node and client certificates.
    Certs(sutra_node::certs_cmd::CertsArgs),
    /// Build this node's data directory for a new cluster from a backup file (restore
    /// every member from the same file, then `run` them with the same members).
    Restore(sutra_node::restore::RestoreArgs),
    /// After the cluster lost its quorum for good: make this stopped survivor (the one
    /// with the furthest log) the only member of a new cluster, keeping every entry its
    /// log holds; then start it and add members back (docs/backup.md).
    ForceNewCluster(sutra_node::recover::ForceNewClusterArgs),
}

/// A runtime for the one-shot commands.
fn current_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    sutra_node::logging::init(cli.log_format);
    sutra_node::legacy_env::warn_if_set();
    match cli.command {
        Command::Run { config, node } => {
            let node = match config {
                Some(path) => {
                    tracing::info!(path = %path.display(), "configuration file given: flags and SUTRA_* variables are ignored");
                    NodeConfig::from_file(&path)?
                }
                None => *node,
            };
            let config = node.validate()?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("sutra-node")
                .build()
                .context("starting the async runtime")?;
            runtime
                .block_on(sutra_node::run(config))
                .context("node failed")?;
            Ok(())
        }
        Command::Certs(args) => sutra_node::certs_cmd::run(args),
        Command::Restore(args) => {
            let restored = current_thread()?.block_on(sutra_node::restore::run(&args))?;
            println!("{}", serde_json::to_string_pretty(&restored)?);
            Ok(())
        }
        Command::ForceNewCluster(args) => {
            let restored = current_thread()?.block_on(sutra_node::recover::run(&args))?;
            println!("{}", serde_json::to_string_pretty(&restored)?);
            Ok(())
        }
    }
}
