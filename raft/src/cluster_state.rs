//! [`ClusterState`]: what every replica must agree on besides the data, replicated
//! through the log and kept in the engine's checkpoints and snapshots (inside the applied
//! position, `crate::position`).
//!
//! - [`ClusterParams`]: fixed when the cluster bootstraps (the first application entry,
//!   [`Command::SetParams`](crate::Command::SetParams)), never re-read from a node's
//!   flags: the vector dimension, the limits that decide whether a write is admitted,
//!   session bounds, the quota, and the cluster id that every peer call carries.
//! - Alarms ([`Alarm`]): raised and disarmed through the log, so every node refuses the
//!   same writes while one is active (etcd's NOSPACE alarm is the model).
//! - Removed nodes: every node id that left the membership; their certificates are
//!   refused on every peer RPC (etcd's `ErrMemberRemoved`). Ids are never reused.
//!
//! [`SharedClusterState`] is the copy the state machine keeps current for the rest of the
//! node (admission, peer authentication, health).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;
use sutra_engine::{Limits, StoreParams};

use crate::types::NodeId;

/// Parameters every replica applies the log with; fixed at bootstrap.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClusterParams {
    /// Minted at bootstrap (32 hex digits); every peer call carries it.
    pub cluster_id: String,
    /// Length of every embedding.
    pub vector_dimension: u32,
    /// Largest concept content in bytes.
    pub max_content_bytes: u64,
    /// Most operations in one batch.
    pub max_batch_ops: u32,
    /// A client session idle for longer than this (in log time) is forgotten.
    pub session_ttl_ms: u64,
    /// Most client sessions remembered.
    pub max_sessions: u32,
    /// Most client sessions one certificate name may hold (its fair share).
    pub max_sessions_per_owner: u32,
    /// The cluster quota: the leader refuses a write that would grow the data file past
    /// this many bytes.
    pub quota_bytes: u64,
}

impl ClusterParams {
    /// The engine's part of them.
    pub fn store_params(&self) -> StoreParams {
        StoreParams {
            vector_dimension: self.vector_dimension,
            session_ttl_ms: self.session_ttl_ms,
            max_sessions: self.max_sessions,
            max_sessions_per_owner: self.max_sessions_per_owner,
        }
    }

    /// The input limits every write is validated against.
    pub fn limits(&self) -> Limits {
        Limits {
            max_content_bytes: usize::try_from(self.max_content_bytes).unwrap_or(usize::MAX),
            max_batch_ops: self.max_batch_ops as usize,
            ..Limits::default()
        }
    }
}

/// What an alarm is about.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum AlarmKind {
    /// A node's free disk fell below its watermark: the cluster takes no writes that grow
    /// the data until it is disarmed.
    NoSpace,
}

impl AlarmKind {
    /// The name operators see (`NOSPACE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoSpace => "NOSPACE",
        }
    }
}

/// An active alarm: its kind and the node that raised it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Alarm {
    /// The node that raised it.
    pub node: NodeId,
    /// What it is about.
    pub kind: AlarmKind,
}

impl fmt::Display for Alarm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on node {}", self.kind.as_str(), self.node)
    }
}

/// The replicated cluster state at one applied entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ClusterState {
    /// `None` until the bootstrap entry is applied.
    pub params: Option<ClusterParams>,
    /// Active alarms.
    pub alarms: BTreeSet<Alarm>,
    /// Node ids that were members and left.
    pub removed: BTreeSet<NodeId>,
}

impl ClusterState {
    /// Applies a membership change from `before` to `after` (member ids, voters and
    /// learners): whoever left is removed for good.
    pub fn note_membership(
        &mut self,
        before: impl IntoIterator<Item = NodeId>,
        after: &BTreeSet<NodeId>,
    ) {
        self.removed
            .extend(before.into_iter().filter(|id| !after.contains(id)));
    }
}

/// The current [`ClusterState`], shared by the state machine (which writes it) and the
/// rest of the node. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct SharedClusterState(Arc<RwLock<ClusterState>>);

impl SharedClusterState {
    /// A copy of the current state.
    pub fn get(&self) -> ClusterState {
        self.0.read().clone()
    }

    /// The parameters, once the bootstrap entry is applied.
    pub fn params(&self) -> Option<ClusterParams> {
        self.0.read().params.clone()
    }

    /// The cluster id, once known from the log.
    pub fn cluster_id(&self) -> Option<String> {
        self.0.read().params.as_ref().map(|p| p.cluster_id.clone())
    }

    /// Whether `node` left the membership.
    pub fn is_removed(&self, node: NodeId) -> bool {
        self.0.read().removed.contains(&node)
    }

    /// The active alarms.
    pub fn alarms(&self) -> BTreeSet<Alarm> {
        self.0.read().alarms.clone()
    }

    pub(crate) fn set(&self, state: ClusterState) {
        *self.0.write() = state;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_that_leave_are_removed_for_good() {
        let mut s = ClusterState::default();
        s.note_membership([1, 2, 3], &BTreeSet::from([1, 2, 3, 4]));
        assert!(s.removed.is_empty());
        s.note_membership([1, 2, 3, 4], &BTreeSet::from([1, 2, 4]));
        assert_eq!(s.removed, BTreeSet::from([3]));
        s.note_membership([1, 2, 4], &BTreeSet::from([1, 2, 4, 5]));
        assert_eq!(
            s.removed,
            BTreeSet::from([3]),
            "a later change keeps it removed"
        );
    }
}
