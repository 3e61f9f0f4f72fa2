//! The Raft type configuration: which types openraft uses for ids, nodes, entries and
//! application data.

use std::fmt;

use crate::command::{Command, CommandResponse};

openraft::declare_raft_types!(
    /// Sutra's openraft type configuration.
    ///
    /// Everything not named here keeps openraft's default: `Term = u64`, the "advanced"
    /// leader id (`(term, node_id)`, so a log id names the leader that wrote it), the
    /// standard `Entry`/`EntryPayload` (serialized into the log store with postcard), the
    /// Tokio runtime and `ProgressResponder`. Snapshot data is not part of the type config
    /// in openraft 0.10; it is [`SnapshotData`](crate::SnapshotData), the state machine's
    /// associated type.
    pub TypeConfig:
        D = Command,
        R = CommandResponse,
        NodeId = u64,
        Node = NodeInfo,
);

/// A node's id in the cluster.
pub type NodeId = u64;
/// A Raft log id: the leader that proposed the entry and its index.
pub type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
/// A stored vote.
pub type Vote = openraft::type_config::alias::VoteOf<TypeConfig>;
/// A log entry.
pub type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
/// The membership config together with the log id of the entry that carried it.
pub type StoredMembership = openraft::type_config::alias::StoredMembershipOf<TypeConfig>;
/// A membership config.
pub type Membership = openraft::Membership<NodeId, NodeInfo>;
/// Snapshot metadata: last included log id and membership.
pub type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;
/// A storage error as openraft reports it.
pub type StorageError = openraft::StorageError<TypeConfig>;

/// Where to reach a node. Stored in membership entries, so in the Raft log and in every
/// snapshot: keep it small and stable.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct NodeInfo {
    /// Address of the peer (Raft) gRPC service, `host:port`.
    pub raft_addr: String,
    /// Address of the client API gRPC service, `host:port`.
    pub api_addr: String,
}

impl NodeInfo {
    /// A node reachable at these addresses.
    pub fn new(raft_addr: impl Into<String>, api_addr: impl Into<String>) -> Self {
        Self {
            raft_addr: raft_addr.into(),
            api_addr: api_addr.into(),
        }
    }
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "raft={} api={}", self.raft_addr, self.api_addr)
    }
}

/// A Raft node over Sutra's state machine.
pub type Raft = openraft::Raft<TypeConfig, crate::state_machine::StateMachine>;
