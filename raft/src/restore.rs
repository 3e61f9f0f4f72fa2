//! Making a node of a new cluster out of a backup: the applied position its store takes
//! (the backup's last applied log id, the new membership, the backup's cluster state
//! with the new cluster id and no alarms) and a Raft log that starts right after that
//! entry. Every member restored from the same backup with the same members gets the
//! same state, so they elect a leader among themselves and go on from the backup's
//! index, with nothing to initialise.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use openraft::RaftLogReader;
use openraft::storage::{RaftLogStorage, RaftStateMachine};

use crate::cluster_state::ClusterState;
use crate::error::{Error, Result};
use crate::log_store::LogStore;
use crate::position::AppliedPosition;
use crate::state_machine::StateMachine;
use crate::types::{LogId, Membership, NodeId, NodeInfo, StoredMembership, Vote};

/// The applied position of a store restored into a new cluster of `members` (all
/// voters) named `cluster_id`, from a backup whose last applied entry is `last_applied`
/// and whose cluster state is `cluster`.
pub fn restored_position(
    last_applied: LogId,
    members: &BTreeMap<NodeId, NodeInfo>,
    mut cluster: ClusterState,
    cluster_id: &str,
) -> Result<Vec<u8>> {
    let Some(params) = cluster.params.as_mut() else {
        return Err(Error::Restore(
            "the backup was taken before the cluster's parameters were applied".into(),
        ));
    };
    params.cluster_id = cluster_id.to_string();
    // A new cluster on new disks: the old alarms and departed members do not carry over.
    cluster.alarms.clear();
    cluster.removed.clear();
    let voters: BTreeSet<NodeId> = members.keys().copied().collect();
    let membership = Membership::new(vec![voters], members.clone())
        .map_err(|e| Error::Restore(format!("the new membership: {e}")))?;
    AppliedPosition {
        last_applied: Some(last_applied),
        last_membership: StoredMembership::new(Some(last_applied), membership),
        cluster,
    }
    .encode()
}

/// Applies to `sm` every entry `log` holds past what `sm` has applied, committed or
/// not: what a lone survivor does before it becomes a new cluster on its own (etcd's
/// `--force-new-cluster` commits its whole WAL the same way). An entry no quorum
/// acknowledged may be among them; no acknowledged write is lost. Returns how many
/// entries were applied.
pub async fn apply_whole_log(sm: &mut StateMachine, log: &mut LogStore) -> Result<u64> {
    let applied = AppliedPosition::decode(&sm.engine().applied().1)?
        .last_applied
        .map_or(0, |id| id.index + 1);
    let last = log
        .get_log_state()
        .await
        .map_err(Error::restore)?
        .last_log_id;
    let Some(last) = last.filter(|l| l.index + 1 > applied) else {
        return Ok(0);
    };
    let entries = log
        .try_get_log_entries(applied..=last.index)
        .await
        .map_err(Error::restore)?;
    let n = entries.len() as u64;
    let first = entries.first().map(|e| e.log_id.index);
    if first != Some(applied) || n != last.index + 1 - applied {
        return Err(Error::Restore(format!(
            "the log does not hold every entry from {applied} to {} (it starts at {first:?} with {n})",
            last.index
        )));
    }
    let stream = futures_util::stream::iter(entries.into_iter().map(|e| Ok((e, None))));
    sm.apply(stream).await.map_err(Error::restore)?;
    Ok(n)
}

/// Makes the empty Raft log in `dir` one that starts right after `last_applied`
/// (purged up to it, committed at it). With `vote_as`, that node's vote in the entry's
/// term, so a member of a new cluster campaigns in the next term; without, no vote (a
/// learner joining a running cluster takes the leader's).
pub async fn start_log_after(
    dir: &Path,
    last_applied: LogId,
    vote_as: Option<NodeId>,
) -> Result<()> {
    let mut log = LogStore::open(dir)?;
    let state = log.get_log_state().await.map_err(Error::restore)?;
    if state.last_log_id.is_some() || state.last_purged_log_id.is_some() {
        return Err(Error::Restore(format!(
            "the Raft log in {} is not empty",
            dir.display()
        )));
    }
    let io = Error::restore;
    if let Some(node) = vote_as {
        log.save_vote(&Vote::new(last_applied.leader_id.term, node))
            .await
            .map_err(io)?;
    }
    log.save_committed(Some(last_applied)).await.map_err(io)?;
    log.purge(last_applied).await.map_err(io)?;
    // Neither of the last two is synced: make them durable before the caller puts the
    // restored store in place.
    log.sync().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster_state::ClusterParams;
    use openraft::RaftLogReader;

    fn log_id(term: u64, node: NodeId, index: u64) -> LogId {
        LogId::new(
            openraft::vote::leader_id_adv::LeaderId {
                term,
                node_id: node,
            },
            index,
        )
    }

    #[tokio::test]
    async fn a_restored_log_starts_after_the_backup() {
        let dir = tempfile::tempdir().unwrap();
        let id = log_id(4, 2, 90);
        start_log_after(dir.path(), id, Some(1)).await.unwrap();
        let mut log = LogStore::open(dir.path()).unwrap();
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(id));
        assert_eq!(state.last_log_id, Some(id));
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(4, 1)));
        drop(log);
        assert!(start_log_after(dir.path(), id, Some(1)).await.is_err());
    }

    #[test]
    fn the_position_names_the_new_cluster_and_members() {
        let cluster = ClusterState {
            params: Some(ClusterParams {
                cluster_id: "old".into(),
                vector_dimension: 8,
                max_content_bytes: 1,
                max_batch_ops: 1,
                session_ttl_ms: 1,
                max_sessions: 1,
                max_sessions_per_owner: 1,
                quota_bytes: 1,
            }),
            ..ClusterState::default()
        };
        let members: BTreeMap<_, _> = (1..=3)
            .map(|i| (i, NodeInfo::new(format!("r{i}"), format!("a{i}"))))
            .collect();
        let id = log_id(4, 2, 90);
        let pos = restored_position(id, &members, cluster, "new").unwrap();
        let pos = AppliedPosition::decode(&pos).unwrap();
        assert_eq!(pos.last_applied, Some(id));
        assert_eq!(pos.cluster.params.unwrap().cluster_id, "new");
        let voters: BTreeSet<_> = pos.last_membership.membership().voter_ids().collect();
        assert_eq!(voters, BTreeSet::from([1, 2, 3]));
    }
}
