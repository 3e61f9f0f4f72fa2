//! `sutra`: the command line for a Sutra cluster.
//!
//! Endpoints and TLS files come from flags, `SUTRA_*` variables, or a `cluster.json`
//! written by `sutra local` (`--cluster-file`). Errors are one line on stderr and
//! exit code 1. The full reference is `docs/cli.md`.

mod args;
mod batch_file;
mod bench;
mod connect;
mod data;
mod drill;
mod health;
mod local;
mod ops;
mod parse;
mod view;

use anyhow::Context;
use clap::Parser as _;
use sutra_client::ClientError;
use sutra_proto::cluster::ClusterStatusRequest;

use args::{Cli, ClusterAction, Command};
use view::Output;

/// `members: 1,2,3` for a membership change's answer.
fn members_line(r: tonic::Response<sutra_proto::cluster::MembershipResponse>) -> String {
    let ids: Vec<String> = r
        .into_inner()
        .members
        .iter()
        .map(|m| m.node_id.to_string())
        .collect();
    format!("members: {}", ids.join(","))
}

fn print(output: Output, table: String, json: serde_json::Value) {
    match output {
        Output::Table => println!("{table}"),
        Output::Json => println!("{json}"),
    }
}

async fn run(cli: Cli, command_line: String) -> anyhow::Result<()> {
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
        let json = matches!(cli.output, Output::Json);
        return drill::run(args.clone(), None, tls, cli.timeout, json, command_line).await;
    }
    let connect::Connection {
        endpoints,
        tls,
        config,
        client,
        connector,
    } = connect::connect(&cli)?;
    match cli.command {
        Command::Data(command) => data::run(command, &client, cli.output).await?,
        Command::Ops(command) => ops::run(command, &client, cli.output).await?,
        Command::Bench {
            workload,
            clients,
            requests,
            value_size,
            read_ratio,
            keys,
            duration,
            prefix,
            read,
        } => {
            let params = bench::Params {
                workload,
                clients,
                requests,
                value_size,
                read: read.options(),
                read_ratio,
                keys,
                duration,
                prefix,
            };
            let report = bench::run(config, params, command_line).await?;
            print(
                cli.output,
                report.table(),
                serde_json::to_value(&report).context("encoding the report")?,
            );
        }
        Command::Drill(args) => {
            let json = matches!(cli.output, Output::Json);
            let file = cli.cluster_file.as_deref();
            drill::run(args, file, tls, cli.timeout, json, command_line).await?;
        }
        Command::Cluster {
            action: Some(action),
        } => {
            use sutra_proto::cluster::{
                AddLearnerRequest, ChangeMembershipRequest, RemoveNodeRequest,
                TransferLeaderRequest,
            };
            // Membership calls go to the leader: ask each node until one accepts.
            let mut last = None;
            for ep in &endpoints {
                let mut c = connector.cluster(ep).await?;
                let result = match &action {
                    ClusterAction::AddLearner {
                        node_id,
                        raft_addr,
                        api_addr,
                    } => c
                        .add_learner(AddLearnerRequest {
                            node_id: *node_id,
                            raft_addr: raft_addr.clone(),
                            api_addr: api_addr.clone(),
                            wait_caught_up: true,
                        })
                        .await
                        .map(members_line),
                    ClusterAction::Promote { voters } => c
                        .change_membership(ChangeMembershipRequest {
                            voters: voters.clone(),
                            retain_removed_as_learners: false,
                        })
                        .await
                        .map(members_line),
                    ClusterAction::Remove { node_id } => c
                        .remove_node(RemoveNodeRequest { node_id: *node_id })
                        .await
                        .map(members_line),
                    ClusterAction::TransferLeader { node_id } => c
                        .transfer_leader(TransferLeaderRequest {
                            target_node_id: *node_id,
                        })
                        .await
                        .map(|r| format!("leader is now node {}", r.into_inner().new_leader_id)),
                };
                match result {
                    Ok(msg) => {
                        print(cli.output, msg.clone(), serde_json::json!({"result": msg}));
                        return Ok(());
                    }
                    Err(status) if status.code() == tonic::Code::Unavailable => last = Some(status),
                    Err(status) => anyhow::bail!("{}: {}", status.code(), status.message()),
                }
            }
            let status = last.context("no endpoint answered")?;
            anyhow::bail!("{}: {}", status.code(), status.message());
        }
        Command::Local(_) => unreachable!("handled before the client is set up"),
        Command::Cluster { action: None } => {
            let mut last = None;
            for ep in &endpoints {
                let st = connector
                    .cluster(ep)
                    .await?
                    .status(ClusterStatusRequest {})
                    .await?
                    .into_inner();
                if st.leader_id == st.node_id {
                    last = Some(st);
                    break;
                }
                last = Some(st);
            }
            let st = last.context("no node answered")?;
            let mut table = format!(
                "leader {}  term {}  commit {}  applied {}\n",
                st.leader_id, st.term, st.commit_index, st.applied_index
            );
            for m in &st.members {
                let lag = st
                    .replication
                    .iter()
                    .find(|r| r.node_id == m.node_id)
                    .map_or(String::new(), |r| {
                        format!("  matched {}  lag {}", r.matched_index, r.lag_entries)
                    });
                let role = if m.role == sutra_proto::cluster::MemberRole::Voter as i32 {
                    "voter"
                } else {
                    "learner"
                };
                table.push_str(&format!(
                    "  node {}  {role}  api {}  raft {}{lag}\n",
                    m.node_id, m.api_addr, m.raft_addr
                ));
            }
            let members: Vec<_> = st
                .members
                .iter()
                .map(|m| serde_json::json!({"node_id": m.node_id, "api_addr": m.api_addr, "raft_addr": m.raft_addr, "voter": m.role == sutra_proto::cluster::MemberRole::Voter as i32}))
                .collect();
            print(
                cli.output,
                table.trim_end().to_string(),
                serde_json::json!({"leader_id": st.leader_id, "term": st.term, "commit_index": st.commit_index, "members": members}),
            );
        }
    }
    Ok(())
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

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let cli = match Cli::try_parse_from(&args) {
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
            std::process::exit(1);
        }
    };
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

/// Ends the command with this exit code; what it had to say is already printed.
#[derive(Debug, thiserror::Error)]
#[error("exit code {0}")]
struct Exit(i32);
