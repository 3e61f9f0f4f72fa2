//! `sutra.cluster.ClusterService`: what operators call. Status needs the read role;
//! everything that changes the cluster needs admin, checked before the request is decoded
//! (`auth.rs`). Requests are validated before the leadership check, so every node gives a
//! bad request the same answer.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use openraft::ChangeMembers;
use openraft::errors::{ClientWriteError, RaftError};
use sutra_proto::cluster::cluster_service_server::ClusterService;
use sutra_proto::cluster::*;
use sutra_raft::pb::IntoProto;
use sutra_raft::{AlarmKind, Command, NodeInfo, TypeConfig};
use tonic::{Request, Response, Status};

use crate::node::{Metrics, Node};
use crate::status::ServiceError;
use crate::validate;

/// How long a leader transfer may take before the call reports a timeout.
const TRANSFER_WAIT: Duration = Duration::from_secs(10);

/// The operator API of one node.
#[derive(Debug, Clone)]
pub struct ClusterApi {
    node: Arc<Node>,
}

impl ClusterApi {
    /// Serves `node`. Mount it behind the role check.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    fn require_leader(&self) -> Result<(), ServiceError> {
        if self.node.raft.is_leader() {
            Ok(())
        } else {
            Err(self.node.not_leader())
        }
    }
}

fn members(m: &Metrics) -> Vec<Member> {
    let membership = m.membership_config.membership();
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    membership
        .nodes()
        .map(|(id, n)| Member {
            node_id: *id,
            raft_addr: n.raft_addr.clone(),
            api_addr: n.api_addr.clone(),
            role: if voters.contains(id) {
                MemberRole::Voter
            } else {
                MemberRole::Learner
            } as i32,
        })
        .collect()
}

fn membership_error(
    node: u64,
    e: RaftError<TypeConfig, ClientWriteError<TypeConfig>>,
) -> ServiceError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            sutra_raft::ProposeError::forwarded(node, f).into()
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            ServiceError::FailedPrecondition(e.to_string())
        }
        RaftError::APIError(e) => ServiceError::Unavailable(e.to_string()),
        RaftError::Fatal(e) => ServiceError::Unavailable(format!("raft stopped: {e}")),
    }
}

/// On a leader, each follower's replication progress: matched index, lag behind the
/// leader's last log entry and time since its last acknowledgment; empty elsewhere.
pub fn follower_progress(me: u64, m: &crate::node::Metrics) -> Vec<FollowerProgress> {
    let last_log = m.last_log_index.map_or(0, sutra_raft::position);
    match (&m.replication, &m.heartbeat) {
        (Some(rep), heartbeat) => rep
            .iter()
            .filter(|(id, _)| **id != me)
            .map(|(id, matched)| {
                let matched = sutra_raft::position_of(matched.as_ref());
                let last_ack_ms_ago = heartbeat
                    .as_ref()
                    .and_then(|h| h.get(id).cloned().flatten())
                    .map_or(u64::MAX, |t| {
                        openraft::async_runtime::Instant::elapsed(&*t).as_millis() as u64
                    });
                FollowerProgress {
                    node_id: *id,
                    matched_index: matched,
                    lag_entries: last_log.saturating_sub(matched),
                    last_ack_ms_ago,
                }
            })
            .collect(),
        (None, _) => Vec::new(),
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl ClusterService for ClusterApi {
    async fn status(&self, _req: Request<ClusterStatusRequest>) -> Reply<ClusterStatusResponse> {
        let m = self.node.metrics();
        let last_log = m.last_log_index.map_or(0, sutra_raft::position);
        let replication = follower_progress(self.node.id, &m);
        Ok(Response::new(ClusterStatusResponse {
            node_id: self.node.id,
            leader_id: m.current_leader.unwrap_or(0),
            term: m.current_term,
            commit_index: sutra_raft::position_of(m.cluster_committed.as_ref()),
            applied_index: sutra_raft::position_of(m.last_applied.as_ref()),
            last_log_index: last_log,
            snapshot_index: sutra_raft::position_of(m.snapshot.as_ref()),
            members: members(&m),
            replication,
            params: self.node.cluster().params().map(IntoProto::into_proto),
            removed: self.node.cluster().get().removed.into_iter().collect(),
            version: crate::build_info::VERSION.to_string(),
            commit: crate::build_info::COMMIT.to_string(),
        }))
    }

    async fn add_learner(&self, req: Request<AddLearnerRequest>) -> Reply<MembershipResponse> {
        let r = req.into_inner();
        validate::add_learner(&r)?;
        self.require_leader()?;
        // A removed node's certificate keeps no power in this cluster; a new node needs
        // a new id.
        if self.node.cluster().is_removed(r.node_id) {
            return Err(ServiceError::FailedPrecondition(format!(
                "node {} was removed from this cluster and its id is never reused: add the new node under a new id",
                r.node_id
            ))
            .into());
        }
        let resp = self
            .node
            .raft
            .add_learner(
                r.node_id,
                NodeInfo::new(r.raft_addr, r.api_addr),
                r.wait_caught_up,
            )
            .await
            .map_err(|e| membership_error(self.node.id, e))?;
        Ok(Response::new(MembershipResponse {
            members: members(&self.node.metrics()),
            log_index: sutra_raft::position(resp.log_id.index),
        }))
    }

    async fn change_membership(
        &self,
        req: Request<ChangeMembershipRequest>,
    ) -> Reply<MembershipResponse> {
        let r = req.into_inner();
        validate::change_membership(&r)?;
        let voters: BTreeSet<u64> = r.voters.into_iter().collect();
        self.require_leader()?;
        let known: BTreeSet<u64> = self
            .node
            .metrics()
            .membership_config
            .membership()
            .nodes()
            .map(|(id, _)| *id)
            .collect();
        if let Some(id) = voters.iter().find(|id| !known.contains(id)) {
            return Err(ServiceError::invalid(
                "voters",
                format!("node {id} is not a member; add it as a learner first"),
            )
            .into());
        }
        let resp = self
            .node
            .raft
            .change_membership(
                ChangeMembers::ReplaceAllVoters(voters),
                r.retain_removed_as_learners,
            )
            .await
            .map_err(|e| membership_error(self.node.id, e))?;
        Ok(Response::new(MembershipResponse {
            members: members(&self.node.metrics()),
            log_index: sutra_raft::position(resp.log_id.index),
        }))
    }

    async fn remove_node(&self, req: Request<RemoveNodeRequest>) -> Reply<MembershipResponse> {
        let r = req.into_inner();
        validate::remove_node(&r)?;
        let id = r.node_id;
        self.require_leader()?;
        let m = self.node.metrics();
        let membership = m.membership_config.membership();
        let change = if membership.voter_ids().any(|v| v == id) {
            if membership.voter_ids().count() == 1 {
                return Err(ServiceError::FailedPrecondition(
                    "cannot remove the last voter".into(),
                )
                .into());
            }
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else if membership.get_node(&id).is_some() {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        } else {
            return Err(
                ServiceError::invalid("node_id", format!("node {id} is not a member")).into(),
            );
        };
        let resp = self
            .node
            .raft
            .change_membership(change, false)
            .await
            .map_err(|e| membership_error(self.node.id, e))?;
        Ok(Response::new(MembershipResponse {
            members: members(&self.node.metrics()),
            log_index: sutra_raft::position(resp.log_id.index),
        }))
    }

    async fn transfer_leader(
        &self,
        req: Request<TransferLeaderRequest>,
    ) -> Reply<TransferLeaderResponse> {
        let r = req.into_inner();
        validate::transfer_leader(&r)?;
        let target = r.target_node_id;
        self.require_leader()?;
        let m = self.node.metrics();
        let voters: BTreeSet<u64> = m.membership_config.membership().voter_ids().collect();
        let to = match target {
            Some(t) if t == self.node.id => {
                return Ok(Response::new(TransferLeaderResponse { new_leader_id: t }));
            }
            Some(t) if voters.contains(&t) => t,
            Some(t) => {
                return Err(ServiceError::invalid(
                    "target_node_id",
                    format!("node {t} is not a voter"),
                )
                .into());
            }
            None => self.node.most_up_to_date_voter().ok_or_else(|| {
                ServiceError::FailedPrecondition("no other voter to hand leadership to".into())
            })?,
        };
        self.node
            .raft
            .trigger()
            .transfer_leader(to)
            .await
            .map_err(|e| ServiceError::Unavailable(format!("raft stopped: {e}")))?;
        let m = self
            .node
            .raft
            .wait(Some(TRANSFER_WAIT))
            .metrics(
                |m| m.current_leader.is_some_and(|l| l != self.node.id),
                "leader transfer",
            )
            .await
            .map_err(|e| ServiceError::Deadline(format!("leadership did not move: {e}")))?;
        Ok(Response::new(TransferLeaderResponse {
            new_leader_id: m.current_leader.unwrap_or(0),
        }))
    }

    async fn trigger_snapshot(
        &self,
        _req: Request<TriggerSnapshotRequest>,
    ) -> Reply<TriggerSnapshotResponse> {
        let snap = self.node.snapshot_now().await?;
        Ok(Response::new(TriggerSnapshotResponse {
            snapshot_index: sutra_raft::position(snap.index),
            snapshot_term: snap.leader_id.term,
            size_bytes: self.node.engine.stats().durable.data_len,
        }))
    }

    type BackupStream = super::backup::BackupStream;

    async fn backup(&self, req: Request<BackupRequest>) -> Reply<Self::BackupStream> {
        let rate = req.into_inner().rate_limit_bytes_per_sec;
        Ok(Response::new(
            super::backup::start(self.node.clone(), rate).await?,
        ))
    }

    async fn list_alarms(&self, _req: Request<ListAlarmsRequest>) -> Reply<AlarmsResponse> {
        Ok(Response::new(alarms_response(&self.node)))
    }

    async fn disarm_alarm(&self, req: Request<DisarmAlarmRequest>) -> Reply<AlarmsResponse> {
        let caller = crate::auth::caller(&req)?;
        let r = req.into_inner();
        let kind = match r.kind.as_str() {
            "" => None,
            k if k == AlarmKind::NoSpace.as_str() => Some(AlarmKind::NoSpace),
            other => {
                return Err(ServiceError::invalid(
                    "kind",
                    format!("unknown alarm kind {other:?} (NOSPACE, or empty for every kind)"),
                )
                .into());
            }
        };
        let chosen: Vec<_> = self
            .node
            .cluster()
            .alarms()
            .into_iter()
            .filter(|a| (r.node_id == 0 || a.node == r.node_id) && kind.is_none_or(|k| a.kind == k))
            .collect();
        for alarm in chosen {
            self.node
                .submit(Command::Alarm {
                    alarm,
                    active: false,
                })
                .await?;
            tracing::warn!(event = "alarm_disarmed", %alarm, caller = ?caller.as_deref().map(|c| c.uri()), "alarm disarmed");
        }
        Ok(Response::new(alarms_response(&self.node)))
    }
}

fn alarms_response(node: &Node) -> AlarmsResponse {
    AlarmsResponse {
        alarms: node
            .cluster()
            .alarms()
            .into_iter()
            .map(|a| Alarm {
                node_id: a.node,
                kind: a.kind.as_str().to_string(),
            })
            .collect(),
    }
}
