//! The node's log: `--log-format text` (for people, the default) or `json` (one object
//! per line, for a log pipeline). Either way `RUST_LOG` filters it and it goes to stderr.
//!
//! Lines an operator or a pipeline acts on carry an `event` field with a stable name
//! (`docs/operations.md`, "Log events"); admin calls leave an `audit` event each
//! (`server/audit.rs`).

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields` (with
    /// `message` and `event`), and the spans.
    Json,
}

/// Installs the process-wide subscriber. The default filter is `info,openraft=warn`.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,openraft=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}
