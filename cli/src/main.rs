//! `sutra`: the command line for a Sutra cluster.
//!
//! Endpoints and TLS files come from flags, `SUTRA_*` variables, or a `cluster.json`
//! written by `sutra local` (`--cluster-file`). Errors are one line on stderr and
//! exit code 1. The full reference is `docs/cli.md`.
//!
//! This file parses the command line, hands the command to its group's module and turns
//! the outcome into an exit code; every answer is printed by [`view::print`].

mod alarm;
mod args;
mod backup;
mod batch_file;
mod bench;
mod cluster;
mod connect;
mod data;
mod drill;
mod export;
mod health;
mod import;
mod jsonl;
mod local;
mod ops;
mod parse;
mod reference;
mod view;

use clap::Parser as _;
use sutra_client::ClientError;

use args::{Cli, Command};

/// Ends the command with this exit code; what it had to say is already printed.
#[derive(Debug, thiserror::Error)]
#[error("exit code {0}")]
struct Exit(i32);

async fn run(cli: Cli, command_line: String) -> anyhow::Result<()> {
    match &cli.command {
        Command::Completions(args) => {
            reference::completions(args);
            return Ok(());
        }
        Command::Man(args) => return reference::man(args),
        _ => {}
    }
    if let Command::Export(args) = &cli.command {
        return export::run(args, || connect::connect(&cli), cli.output).await;
    }
    // Verifying a backup file needs no cluster; saving one connects.
    if let Command::Backup(args) = &cli.command {
        let code = backup::run(args, || connect::connect(&cli), cli.output).await?;
        return exit(code);
    }
    if let Command::Local(args) = cli.command {
        // The runner blocks on processes and runs its own runtime.
        return tokio::task::spawn_blocking(move || local::run(args)).await?;
    }
    // A drill of a compose cluster finds its endpoints through docker, its TLS files in
    // --certs.
    if let Command::Drill(args) = &cli.command
        && args.docker.is_some()
    {
        let tls = drill::docker_tls(args, cli.ca.clone(), cli.cert.clone(), cli.key.clone());
        let setting = drill::Setting {
            tls,
            timeout: cli.timeout,
            output: cli.output,
            command_line,
        };
        return drill::run(args.clone(), None, setting).await;
    }
    let conn = connect::connect(&cli)?;
    let output = cli.output;
    match cli.command {
        Command::Data(command) => data::run(command, &conn.client, output).await,
        Command::Ops(command) => ops::run(command, &conn.client, output).await,
        Command::Import(args) => {
            import::run(args, &conn.config, &conn.client, &conn.connector, output).await
        }
        Command::Cluster(args) => {
            cluster::run(args, &conn.endpoints, &conn.connector, output).await
        }
        Command::Alarm(args) => alarm::run(args, &conn.endpoints, &conn.connector, output).await,
        Command::Bench(args) => {
            let report = bench::run(
                conn.config,
                args.params(),
                command_line,
                cli.cluster_file.as_deref(),
            )
            .await?;
            view::print(output, &report)
        }
        Command::Drill(args) => {
            let setting = drill::Setting {
                tls: conn.tls,
                timeout: cli.timeout,
                output,
                command_line,
            };
            drill::run(args, cli.cluster_file.as_deref(), setting).await
        }
        Command::Local(_)
        | Command::Completions(_)
        | Command::Man(_)
        | Command::Backup(_)
        | Command::Export(_) => {
            unreachable!("handled before the client is set up")
        }
    }
}

/// Ends the command with `code` (0: success).
fn exit(code: i32) -> anyhow::Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(Exit(code).into())
    }
}

/// The message of an error, on one line.
fn one_line(e: &anyhow::Error) -> String {
    let text = match e.downcast_ref::<ClientError>() {
        // The server's message already says what is wrong; the chain adds nothing.
        Some(c) => c.to_string(),
        None => format!("{e:#}"),
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses the command line. Help and version go to stdout with exit 0; a mistake is the
/// first line of clap's message on stderr, exit 1.
fn parse_or_exit(args: &[String]) -> Cli {
    match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("error: {first} (see sutra --help)");
            std::process::exit(refused_exit_code(args));
        }
    }
}

/// The exit code for a command line clap refused: UNKNOWN for a monitoring check
/// (`health --check`, `backup verify`), whose callers read 1 as WARNING; else 1.
fn refused_exit_code(args: &[String]) -> i32 {
    let has = |word: &str| args.iter().skip(1).any(|a| a == word);
    if (has("health") && has("--check")) || (has("backup") && has("verify")) {
        health::UNKNOWN_EXIT
    } else {
        1
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let cli = parse_or_exit(&args);
    // A check that cannot run says UNKNOWN, not WARNING.
    let failed = if cli.is_health_check() {
        health::UNKNOWN_EXIT
    } else {
        1
    };
    if let Err(e) = run(cli, parse::command_line(args)).await {
        if let Some(Exit(code)) = e.downcast_ref::<Exit>() {
            std::process::exit(*code);
        }
        eprintln!("error: {}", one_line(&e));
        std::process::exit(failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn a_refused_check_is_unknown_and_other_commands_fail_with_1() {
        let code = |line| refused_exit_code(&args(line));
        assert_eq!(
            code("sutra health --check --backup-warn-age-hours x"),
            health::UNKNOWN_EXIT
        );
        assert_eq!(
            code("sutra backup verify --warn-age-hours x f"),
            health::UNKNOWN_EXIT
        );
        assert_eq!(code("sutra health --serving --bogus"), 1);
        assert_eq!(code("sutra put --bogus"), 1);
    }
}
