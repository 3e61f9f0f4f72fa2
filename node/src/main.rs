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
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
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
    }
}
