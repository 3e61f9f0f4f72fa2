//! `sutra`: the command line for a Sutra cluster.
//!
//! Endpoints and TLS files come from flags, `SUTRA_*` variables, or a `cluster.json`
//! written by `sutra local` (`--cluster-file`). Errors are one line on stderr and
//! exit code 1. The full reference is `docs/cli.md`.

mod args;
mod batch_file;
mod bench;
mod connect;
mod drill;
mod health;
mod local;
mod ops;
mod parse;
mod view;

use std::io::Read as _;

use anyhow::Context;
use clap::Parser as _;
use sutra_client::{ClientError, Neighbors, Scan, Search};
use sutra_proto::cluster::ClusterStatusRequest;
use sutra_proto::storage::{Concept, Direction, Edge, Metric, ReadMeta};

use args::{Cli, ClusterAction, Command, Dir, EdgeAction, MetricArg};
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

fn meta_json(m: &ReadMeta) -> serde_json::Value {
    serde_json::json!({"served_by": m.served_by, "applied_index": m.applied_index, "leader_id": m.leader_id})
}

fn concept_json(c: &Concept) -> serde_json::Value {
    serde_json::json!({
        "id": c.id,
        "version": c.version,
        "content": String::from_utf8_lossy(&c.content),
        "embedding": c.embedding,
        "attributes": c.attributes,
    })
}

fn concept_line(c: &Concept) -> String {
    let mut line = format!(
        "{}  version {}  {}",
        c.id,
        c.version,
        String::from_utf8_lossy(&c.content)
    );
    if !c.attributes.is_empty() {
        let mut attrs: Vec<_> = c
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        attrs.sort();
        line.push_str(&format!("  [{}]", attrs.join(" ")));
    }
    if !c.embedding.is_empty() {
        line.push_str(&format!("  embedding[{}]", c.embedding.len()));
    }
    line
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
        Command::Put {
            id,
            content,
            embedding,
            attrs,
            expected_version,
        } => {
            let concept = Concept {
                id: id.clone(),
                content: content.into_bytes(),
                embedding: embedding.map(|v| v.0).unwrap_or_default(),
                attributes: attrs.into_iter().collect(),
                version: 0,
            };
            let w = client.put(concept, expected_version).await?;
            print(
                cli.output,
                format!("put {id}: version {} (leader {})", w.version, w.leader_id),
                serde_json::json!({"id": id, "version": w.version, "leader_id": w.leader_id, "deduplicated": w.deduplicated}),
            );
        }
        Command::Get { id, read } => {
            let r = client.get_with(&id, read.options()).await?;
            let Some(c) = r.value else {
                anyhow::bail!("concept {id:?} not found");
            };
            let mut json = concept_json(&c);
            json["meta"] = meta_json(&r.meta);
            print(cli.output, concept_line(&c), json);
        }
        Command::Delete {
            id,
            expected_version,
        } => {
            let existed = client.delete(&id, expected_version).await?;
            print(
                cli.output,
                format!("deleted {id}: existed {existed}"),
                serde_json::json!({"id": id, "existed": existed}),
            );
        }
        Command::Scan {
            prefix,
            start,
            end,
            limit,
            page_size,
            keys_only,
            read,
        } => {
            let scan = match (prefix, start, end) {
                (Some(p), _, _) => Scan::prefix(p),
                (None, None, None) => Scan::all(),
                (None, start, end) => Scan::range(start.unwrap_or_default(), end),
            }
            .page_size(page_size)
            .keys_only(keys_only);
            let concepts = client.scan_all(&scan, limit, read.options()).await?;
            let table = if keys_only {
                concepts
                    .iter()
                    .map(|c| format!("{}  version {}", c.id, c.version))
                    .collect::<Vec<_>>()
            } else {
                concepts.iter().map(concept_line).collect()
            };
            print(
                cli.output,
                table.join("\n"),
                serde_json::Value::Array(concepts.iter().map(concept_json).collect()),
            );
        }
        Command::Edge {
            action:
                EdgeAction::Put {
                    from,
                    to,
                    relation,
                    weight,
                },
        } => {
            let w = client
                .put_edge(Edge {
                    from: from.clone(),
                    to: to.clone(),
                    relation: relation.clone(),
                    weight,
                })
                .await?;
            print(
                cli.output,
                format!("edge {from} -[{relation}]-> {to}: version {}", w.version),
                serde_json::json!({"from": from, "to": to, "relation": relation, "weight": weight, "version": w.version}),
            );
        }
        Command::Edge {
            action: EdgeAction::Delete { from, to, relation },
        } => {
            let existed = client.delete_edge(&from, &to, &relation).await?;
            print(
                cli.output,
                format!("deleted edge {from} -[{relation}]-> {to}: existed {existed}"),
                serde_json::json!({"from": from, "to": to, "relation": relation, "existed": existed}),
            );
        }
        Command::Neighbors {
            id,
            direction,
            relation,
            limit,
            read,
        } => {
            let mut q = Neighbors::of(id).direction(match direction {
                Dir::Out => Direction::Out,
                Dir::In => Direction::In,
                Dir::Both => Direction::Both,
            });
            if let Some(r) = relation {
                q = q.relation(r);
            }
            let ns = client.neighbors_all(&q, limit, read.options()).await?;
            let dir = |d: i32| {
                if d == Direction::In as i32 {
                    "in"
                } else {
                    "out"
                }
            };
            print(
                cli.output,
                ns.iter()
                    .map(|n| {
                        format!(
                            "{:<3}  {}  {}  weight {}",
                            dir(n.direction),
                            n.relation,
                            n.id,
                            n.weight
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                serde_json::Value::Array(
                    ns.iter()
                        .map(|n| serde_json::json!({"id": n.id, "relation": n.relation, "weight": n.weight, "direction": dir(n.direction)}))
                        .collect(),
                ),
            );
        }
        Command::Search {
            vector,
            k,
            metric,
            include_concepts,
            read,
        } => {
            let q = Search::new(vector.0, k)
                .metric(match metric {
                    MetricArg::Cosine => Metric::Cosine,
                    MetricArg::Dot => Metric::Dot,
                    MetricArg::L2 => Metric::L2,
                })
                .include_concepts(include_concepts);
            let hits = client.search(&q, read.options()).await?.value;
            let table = hits
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    let content = h
                        .concept
                        .as_ref()
                        .map(|c| format!("  {}", String::from_utf8_lossy(&c.content)))
                        .unwrap_or_default();
                    format!("{:>3}. {}  score {}{content}", i + 1, h.id, h.score)
                })
                .collect::<Vec<_>>();
            let json = hits
                .iter()
                .map(|h| {
                    let mut j = serde_json::json!({"id": h.id, "score": h.score});
                    if let Some(c) = &h.concept {
                        j["concept"] = concept_json(c);
                    }
                    j
                })
                .collect();
            print(cli.output, table.join("\n"), serde_json::Value::Array(json));
        }
        Command::Batch { file } => {
            let text = if file.as_os_str() == "-" {
                let mut t = String::new();
                std::io::stdin()
                    .read_to_string(&mut t)
                    .context("reading standard input")?;
                t
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let batch = batch_file::parse(&text).with_context(|| format!("{}", file.display()))?;
            let out = client.batch(&batch).await?;
            print(
                cli.output,
                format!(
                    "batch of {} ops applied at version {}",
                    out.existed.len(),
                    out.write.version
                ),
                serde_json::json!({"ops": out.existed.len(), "version": out.write.version, "existed": out.existed, "deduplicated": out.write.deduplicated}),
            );
        }
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
