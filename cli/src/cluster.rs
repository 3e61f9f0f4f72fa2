//! `sutra cluster`: the membership and replication progress as the leader sees it, and
//! the membership changes (add a learner, promote, remove, transfer leadership).

use anyhow::Context as _;
use serde::Serialize;
use sutra_client::Connector;
use sutra_proto::cluster::cluster_service_client::ClusterServiceClient;
use sutra_proto::cluster::{
    AddLearnerRequest, ChangeMembershipRequest, ClusterStatusRequest, ClusterStatusResponse,
    MemberRole, MembershipResponse, RemoveNodeRequest, TransferLeaderRequest,
};
use tonic::transport::Channel;

use crate::view::{Output, View, print};

/// Flags of `sutra cluster`.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// A membership change; without one, the cluster's status.
    #[command(subcommand)]
    pub action: Option<Action>,
}

/// Membership changes (admin certificate).
#[derive(Debug, clap::Subcommand)]
pub enum Action {
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

/// Prints the cluster's status, or makes the change and prints its outcome.
pub async fn run(
    args: ClusterArgs,
    endpoints: &[String],
    connector: &Connector,
    output: Output,
) -> anyhow::Result<()> {
    match args.action {
        None => print(output, &status(endpoints, connector).await?),
        Some(action) => print(output, &change(&action, endpoints, connector).await?),
    }
}

/// The status as the leader reports it: the nodes are asked in turn until the leader
/// answers; if none is the leader, the last answer is shown.
async fn status(endpoints: &[String], connector: &Connector) -> anyhow::Result<StatusView> {
    let mut last = None;
    for ep in endpoints {
        let st = connector
            .cluster(ep)
            .await?
            .status(ClusterStatusRequest {})
            .await?
            .into_inner();
        let leads = st.leader_id == st.node_id;
        last = Some(st);
        if leads {
            break;
        }
    }
    Ok(last.context("no node answered")?.into())
}

/// Membership calls go to the leader: each node is asked until one accepts. A node that
/// is unavailable (not the leader, or down) passes the call on to the next; any other
/// refusal is the answer.
async fn change(
    action: &Action,
    endpoints: &[String],
    connector: &Connector,
) -> anyhow::Result<ChangeView> {
    let mut last = None;
    for ep in endpoints {
        let mut c = connector.cluster(ep).await?;
        match send(&mut c, action).await {
            Ok(result) => return Ok(ChangeView { result }),
            Err(status) if status.code() == tonic::Code::Unavailable => last = Some(status),
            Err(status) => anyhow::bail!("{}: {}", status.code(), status.message()),
        }
    }
    let status = last.context("no endpoint answered")?;
    anyhow::bail!("{}: {}", status.code(), status.message());
}

/// Sends the change to one node; the outcome as one line.
async fn send(
    c: &mut ClusterServiceClient<Channel>,
    action: &Action,
) -> Result<String, tonic::Status> {
    let members = match action {
        Action::AddLearner {
            node_id,
            raft_addr,
            api_addr,
        } => {
            let req = AddLearnerRequest {
                node_id: *node_id,
                raft_addr: raft_addr.clone(),
                api_addr: api_addr.clone(),
                wait_caught_up: true,
            };
            c.add_learner(req).await?
        }
        Action::Promote { voters } => {
            let req = ChangeMembershipRequest {
                voters: voters.clone(),
                retain_removed_as_learners: false,
            };
            c.change_membership(req).await?
        }
        Action::Remove { node_id } => {
            let req = RemoveNodeRequest { node_id: *node_id };
            c.remove_node(req).await?
        }
        Action::TransferLeader { node_id } => {
            let req = TransferLeaderRequest {
                target_node_id: *node_id,
            };
            let leader = c.transfer_leader(req).await?.into_inner().new_leader_id;
            return Ok(format!("leader is now node {leader}"));
        }
    };
    Ok(members_line(&members.into_inner()))
}

/// `members: 1,2,3` for a membership change's answer.
fn members_line(r: &MembershipResponse) -> String {
    let ids: Vec<String> = r.members.iter().map(|m| m.node_id.to_string()).collect();
    format!("members: {}", ids.join(","))
}

/// A membership change's outcome, one line: `members: 1,2,3` or `leader is now node 2`.
#[derive(Debug, Serialize)]
pub struct ChangeView {
    pub result: String,
}

impl View for ChangeView {
    fn table(&self) -> String {
        self.result.clone()
    }
}

/// `sutra cluster`'s answer: the leader's view of terms, indexes, members and how far
/// each follower has replicated.
#[derive(Debug, Serialize)]
pub struct StatusView {
    /// The node that answered, its release version and the commit it was built from.
    pub node_id: u64,
    pub version: String,
    pub commit: String,
    pub leader_id: u64,
    pub term: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub members: Vec<MemberView>,
    /// One entry per follower the leader replicates to; empty if the answer did not come
    /// from the leader.
    pub replication: Vec<ProgressView>,
    /// The cluster's parameters, once applied on the answering node.
    pub params: Option<ParamsView>,
    /// Node ids removed from the cluster.
    pub removed: Vec<u64>,
}

/// The cluster's parameters (fixed at bootstrap).
#[derive(Debug, Serialize)]
pub struct ParamsView {
    pub cluster_id: String,
    pub vector_dimension: u32,
    pub max_content_bytes: u64,
    pub max_batch_ops: u32,
    pub session_ttl_ms: u64,
    pub max_sessions: u32,
    pub max_sessions_per_owner: u32,
    pub quota_bytes: u64,
}

/// A member of the cluster.
#[derive(Debug, Serialize)]
pub struct MemberView {
    pub node_id: u64,
    pub api_addr: String,
    pub raft_addr: String,
    /// A voter (else a learner).
    pub voter: bool,
}

/// How far a follower has replicated the leader's log.
#[derive(Debug, Serialize)]
pub struct ProgressView {
    pub node_id: u64,
    pub matched_index: u64,
    pub lag_entries: u64,
    pub last_ack_ms_ago: u64,
}

impl From<ClusterStatusResponse> for StatusView {
    fn from(st: ClusterStatusResponse) -> Self {
        let members = st.members.into_iter().map(|m| MemberView {
            voter: m.role == MemberRole::Voter as i32,
            node_id: m.node_id,
            api_addr: m.api_addr,
            raft_addr: m.raft_addr,
        });
        let replication = st.replication.into_iter().map(|r| ProgressView {
            node_id: r.node_id,
            matched_index: r.matched_index,
            lag_entries: r.lag_entries,
            last_ack_ms_ago: r.last_ack_ms_ago,
        });
        Self {
            node_id: st.node_id,
            version: st.version,
            commit: st.commit,
            leader_id: st.leader_id,
            term: st.term,
            commit_index: st.commit_index,
            applied_index: st.applied_index,
            members: members.collect(),
            replication: replication.collect(),
            params: st.params.map(|p| ParamsView {
                cluster_id: p.cluster_id,
                vector_dimension: p.vector_dimension,
                max_content_bytes: p.max_content_bytes,
                max_batch_ops: p.max_batch_ops,
                session_ttl_ms: p.session_ttl_ms,
                max_sessions: p.max_sessions,
                max_sessions_per_owner: p.max_sessions_per_owner,
                quota_bytes: p.quota_bytes,
            }),
            removed: st.removed,
        }
    }
}

impl View for StatusView {
    /// `leader L  term T  commit C  applied A  (node N, vV commit)`, then a line per
    /// member with its role, addresses and, for a follower, how far it has replicated
    /// and when it last answered the leader.
    fn table(&self) -> String {
        let mut table = format!(
            "leader {}  term {}  commit {}  applied {}  (node {}, v{} {})\n",
            self.leader_id,
            self.term,
            self.commit_index,
            self.applied_index,
            self.node_id,
            self.version,
            self.commit
        );
        for m in &self.members {
            let lag = self
                .replication
                .iter()
                .find(|r| r.node_id == m.node_id)
                .map_or(String::new(), |r| {
                    let ack = if r.last_ack_ms_ago == u64::MAX {
                        "never".to_string()
                    } else {
                        format!("{} ms ago", r.last_ack_ms_ago)
                    };
                    format!(
                        "  matched {}  lag {}  ack {ack}",
                        r.matched_index, r.lag_entries
                    )
                });
            let role = if m.voter { "voter" } else { "learner" };
            table.push_str(&format!(
                "  node {}  {role}  api {}  raft {}{lag}\n",
                m.node_id, m.api_addr, m.raft_addr
            ));
        }
        if let Some(p) = &self.params {
            table.push_str(&format!(
                "cluster {}  dimension {}  quota {} B  content {} B  batch {} ops  sessions {} ({} per owner, ttl {} ms)\n",
                p.cluster_id,
                p.vector_dimension,
                p.quota_bytes,
                p.max_content_bytes,
                p.max_batch_ops,
                p.max_sessions,
                p.max_sessions_per_owner,
                p.session_ttl_ms
            ));
        }
        if !self.removed.is_empty() {
            let ids: Vec<String> = self.removed.iter().map(u64::to_string).collect();
            table.push_str(&format!("removed {}\n", ids.join(",")));
        }
        table.trim_end().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sutra_proto::cluster::{FollowerProgress, Member};

    fn member(id: u64, role: MemberRole) -> Member {
        Member {
            node_id: id,
            raft_addr: format!("h:{}", 200 + id),
            api_addr: format!("h:{}", 100 + id),
            role: role as i32,
        }
    }

    fn status() -> StatusView {
        StatusView::from(ClusterStatusResponse {
            node_id: 1,
            leader_id: 1,
            term: 3,
            commit_index: 14,
            applied_index: 13,
            last_log_index: 14,
            snapshot_index: 0,
            members: vec![
                member(1, MemberRole::Voter),
                member(2, MemberRole::Voter),
                member(4, MemberRole::Learner),
            ],
            replication: vec![
                FollowerProgress {
                    node_id: 2,
                    matched_index: 14,
                    lag_entries: 0,
                    last_ack_ms_ago: 12,
                },
                FollowerProgress {
                    node_id: 4,
                    matched_index: 9,
                    lag_entries: 5,
                    last_ack_ms_ago: 40,
                },
            ],
            params: Some(sutra_proto::cluster::ClusterParameters {
                cluster_id: "ab".into(),
                vector_dimension: 8,
                max_content_bytes: 1024,
                max_batch_ops: 10,
                session_ttl_ms: 600,
                max_sessions: 100,
                max_sessions_per_owner: 6,
                quota_bytes: 4096,
            }),
            removed: vec![3],
            version: "0.1.0".into(),
            commit: "0123456789ab".into(),
        })
    }

    #[test]
    fn the_status_table_shows_members_and_their_replication() {
        assert_eq!(
            status().table(),
            "leader 1  term 3  commit 14  applied 13  (node 1, v0.1.0 0123456789ab)\n\
             \x20 node 1  voter  api h:101  raft h:201\n\
             \x20 node 2  voter  api h:102  raft h:202  matched 14  lag 0  ack 12 ms ago\n\
             \x20 node 4  learner  api h:104  raft h:204  matched 9  lag 5  ack 40 ms ago\n\
             cluster ab  dimension 8  quota 4096 B  content 1024 B  batch 10 ops  sessions 100 (6 per owner, ttl 600 ms)\n\
             removed 3"
        );
    }

    #[test]
    fn the_status_json_has_members_applied_index_and_replication() {
        let j = serde_json::to_value(status()).unwrap();
        assert_eq!(j["leader_id"], 1);
        assert_eq!(j["term"], 3);
        assert_eq!(j["commit_index"], 14);
        assert_eq!(j["applied_index"], 13);
        assert_eq!(j["members"].as_array().map(Vec::len), Some(3));
        assert_eq!(j["members"][0]["node_id"], 1);
        assert_eq!(j["members"][0]["api_addr"], "h:101");
        assert_eq!(j["members"][0]["raft_addr"], "h:201");
        assert_eq!(j["members"][0]["voter"], true);
        assert_eq!(j["members"][2]["voter"], false);
        assert_eq!(j["params"]["cluster_id"], "ab");
        assert_eq!(j["params"]["quota_bytes"], 4096);
        assert_eq!(j["removed"], serde_json::json!([3]));
        assert_eq!(j["node_id"], 1);
        assert_eq!(j["version"], "0.1.0");
        assert_eq!(j["commit"], "0123456789ab");
        assert_eq!(
            j["replication"],
            serde_json::json!([
                {"node_id": 2, "matched_index": 14, "lag_entries": 0, "last_ack_ms_ago": 12},
                {"node_id": 4, "matched_index": 9, "lag_entries": 5, "last_ack_ms_ago": 40},
            ])
        );
    }

    #[test]
    fn a_change_is_one_line_or_one_field() {
        let view = ChangeView {
            result: members_line(&MembershipResponse {
                members: vec![member(1, MemberRole::Voter), member(3, MemberRole::Voter)],
                log_index: 20,
            }),
        };
        assert_eq!(view.table(), "members: 1,3");
        assert_eq!(
            serde_json::to_string(&view).unwrap(),
            r#"{"result":"members: 1,3"}"#
        );
    }
}
