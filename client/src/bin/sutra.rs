//! `sutra`: the command line for a Sutra cluster.
//!
//! Endpoints and TLS files come from flags, `SUTRA_*` variables, or a `cluster.json`
//! written by `sutra-node local` (`--cluster-file`). Errors are one line on stderr and
//! exit code 1.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use sutra_client::{Client, ClientConfig, Connector, TlsFiles};
use sutra_proto::cluster::ClusterStatusRequest;
use sutra_proto::storage::{
    Concept, Consistency, FlushRequest, GetStatsRequest, HealthCheckRequest,
};

#[derive(Debug, Parser)]
#[command(name = "sutra", version, about = "Command line for a Sutra cluster")]
struct Cli {
    /// Client API endpoints, host:port, comma-separated.
    #[arg(long, env = "SUTRA_ENDPOINTS", value_delimiter = ',', global = true)]
    endpoints: Vec<String>,
    /// Cluster CA certificate (PEM).
    #[arg(long, env = "SUTRA_CA", global = true)]
    ca: Option<PathBuf>,
    /// Client certificate (PEM); its role (read, write, admin) decides what may be called.
    #[arg(long, env = "SUTRA_CERT", global = true)]
    cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long, env = "SUTRA_KEY", global = true)]
    key: Option<PathBuf>,
    /// A cluster.json from `sutra-node local` (endpoints, CA, and the admin certificate
    /// unless --cert/--key are given).
    #[arg(long, env = "SUTRA_CLUSTER_FILE", global = true)]
    cluster_file: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table", global = true)]
    output: Output,
    /// Per-call timeout in seconds, retries included.
    #[arg(long, default_value_t = 10, global = true)]
    timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Level {
    Linearizable,
    Lease,
    Session,
    Bounded,
    Stale,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Put a concept (content from --content).
    Put {
        /// Concept id.
        id: String,
        /// Content (UTF-8).
        #[arg(long, default_value = "")]
        content: String,
    },
    /// Get a concept.
    Get {
        /// Concept id.
        id: String,
        /// Consistency level.
        #[arg(long, value_enum, default_value = "linearizable")]
        consistency: Level,
    },
    /// Delete a concept and its edges.
    Delete {
        /// Concept id.
        id: String,
    },
    /// Health of every node.
    Health,
    /// Statistics of every node.
    Stats,
    /// Checkpoint and purge the log on every node.
    Flush,
    /// Cluster membership and replication, as the leader sees it; with a subcommand,
    /// change it (admin certificate).
    Cluster {
        #[command(subcommand)]
        action: Option<ClusterAction>,
    },
}

#[derive(Debug, Subcommand)]
enum ClusterAction {
    /// Add a node as a learner and wait until it caught up.
    AddLearner {
        /// Node id.
        node_id: u64,
        /// Its Raft endpoint, host:port.
        #[arg(long)]
        raft_addr: String,
        /// Its client API endpoint, host:port.
        #[arg(long)]
        api_addr: String,
    },
    /// Make these nodes the voters (learners become voters; voters not listed are removed).
    Promote {
        /// The full set of voters, comma-separated.
        #[arg(value_delimiter = ',', required = true)]
        voters: Vec<u64>,
    },
    /// Remove a voter or learner.
    Remove {
        /// Node id.
        node_id: u64,
    },
    /// Hand leadership to a node (default: the most up-to-date voter).
    TransferLeader {
        /// Target node id.
        node_id: Option<u64>,
    },
}

struct Setup {
    endpoints: Vec<String>,
    tls: TlsFiles,
}

fn setup(cli: &Cli) -> anyhow::Result<Setup> {
    let mut endpoints = cli.endpoints.clone();
    let (mut ca, mut cert, mut key) = (cli.ca.clone(), cli.cert.clone(), cli.key.clone());
    if let Some(path) = &cli.cluster_file {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let c: serde_json::Value =
            serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))?;
        if endpoints.is_empty() {
            endpoints = c["nodes"]
                .as_array()
                .map(|n| {
                    n.iter()
                        .filter_map(|n| n["api"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
        }
        let field = |name: &str| c[name].as_str().map(PathBuf::from);
        ca = ca.or(field("ca"));
        cert = cert.or(field("admin_cert"));
        key = key.or(field("admin_key"));
    }
    anyhow::ensure!(
        !endpoints.is_empty(),
        "no endpoints: give --endpoints, SUTRA_ENDPOINTS or --cluster-file"
    );
    let missing = |what: &str| {
        anyhow::anyhow!(
            "no {what}: give --{what}, SUTRA_{} or --cluster-file",
            what.to_uppercase()
        )
    };
    Ok(Setup {
        endpoints,
        tls: TlsFiles {
            ca: ca.ok_or_else(|| missing("ca"))?,
            cert: cert.ok_or_else(|| missing("cert"))?,
            key: key.ok_or_else(|| missing("key"))?,
        },
    })
}

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

fn consistency(l: Level) -> Consistency {
    match l {
        Level::Linearizable => Consistency::Linearizable,
        Level::Lease => Consistency::Lease,
        Level::Session => Consistency::Session,
        Level::Bounded => Consistency::Bounded,
        Level::Stale => Consistency::Stale,
    }
}

fn print(output: Output, table: String, json: serde_json::Value) {
    match output {
        Output::Table => println!("{table}"),
        Output::Json => println!("{json}"),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let s = setup(&cli)?;
    let timeout = Duration::from_secs(cli.timeout);
    let mut config = ClientConfig::new(s.endpoints.clone(), s.tls.clone());
    config.request_timeout = timeout;
    let client = Client::new(config)?;
    let connector = Connector::new(&s.tls, None)?;
    match cli.command {
        Command::Put { id, content } => {
            let w = client
                .put(
                    Concept {
                        id: id.clone(),
                        content: content.into_bytes(),
                        ..Concept::default()
                    },
                    None,
                )
                .await?;
            print(
                cli.output,
                format!("put {id}: version {} (leader {})", w.version, w.leader_id),
                serde_json::json!({"id": id, "version": w.version, "leader_id": w.leader_id, "deduplicated": w.deduplicated}),
            );
        }
        Command::Get {
            id,
            consistency: level,
        } => match client.get(&id, consistency(level)).await? {
            Some(c) => print(
                cli.output,
                format!(
                    "{}  version {}  {}",
                    c.id,
                    c.version,
                    String::from_utf8_lossy(&c.content)
                ),
                serde_json::json!({"id": c.id, "version": c.version, "content": String::from_utf8_lossy(&c.content), "attributes": c.attributes}),
            ),
            None => anyhow::bail!("concept {id:?} not found"),
        },
        Command::Delete { id } => {
            let existed = client.delete(&id, None).await?;
            print(
                cli.output,
                format!("deleted {id}: existed {existed}"),
                serde_json::json!({"id": id, "existed": existed}),
            );
        }
        Command::Health | Command::Stats | Command::Flush => {
            let mut rows = Vec::new();
            let mut json = Vec::new();
            for ep in &s.endpoints {
                let mut c = connector.storage(ep).await?;
                match cli.command {
                    Command::Health => {
                        let h = c.health_check(HealthCheckRequest {}).await?.into_inner();
                        rows.push(format!(
                            "{ep}  node {}  {}  {}  leader {}  term {}  applied {}  {}",
                            h.node_id,
                            h.status,
                            h.role,
                            h.leader_id,
                            h.term,
                            h.applied_index,
                            h.reason
                        ));
                        json.push(serde_json::json!({"endpoint": ep, "node_id": h.node_id, "healthy": h.healthy, "status": h.status, "role": h.role, "leader_id": h.leader_id, "term": h.term, "applied_index": h.applied_index, "reason": h.reason}));
                    }
                    Command::Stats => {
                        let st = c.get_stats(GetStatsRequest {}).await?.into_inner();
                        rows.push(format!(
                            "{ep}  node {}  concepts {}  edges {}  written {}  log {} B  data {} B  applied {}",
                            st.node_id, st.concepts, st.edges, st.written, st.log_size_bytes, st.data_file_bytes, st.applied_index
                        ));
                        json.push(serde_json::json!({"endpoint": ep, "node_id": st.node_id, "concepts": st.concepts, "edges": st.edges, "written": st.written, "log_size_bytes": st.log_size_bytes, "data_file_bytes": st.data_file_bytes, "applied_index": st.applied_index, "uptime_seconds": st.uptime_seconds}));
                    }
                    _ => {
                        let f = c.flush(FlushRequest {}).await?.into_inner();
                        rows.push(format!(
                            "{ep}  checkpoint {}  log {} B after",
                            f.checkpoint_index, f.log_size_bytes
                        ));
                        json.push(serde_json::json!({"endpoint": ep, "checkpoint_index": f.checkpoint_index, "log_size_bytes": f.log_size_bytes}));
                    }
                }
            }
            print(cli.output, rows.join("\n"), serde_json::Value::Array(json));
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
            for ep in &s.endpoints {
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
        Command::Cluster { action: None } => {
            let mut last = None;
            for ep in &s.endpoints {
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

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
