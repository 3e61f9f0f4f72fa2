//! `Membership`, `Node` and `StoredMembership` ⇄ openraft's membership types.

use std::collections::{BTreeMap, BTreeSet};

use sutra_proto::raft as pb;

use super::{FromProto, IntoProto, ProtoError, optional, required};
use crate::types::{LogId, Membership, NodeId, NodeInfo, StoredMembership};

impl FromProto<pb::Node> for NodeInfo {
    fn from_proto(p: pb::Node) -> Result<Self, ProtoError> {
        Ok(NodeInfo {
            raft_addr: p.raft_addr,
            api_addr: p.api_addr,
        })
    }
}

impl IntoProto<pb::Node> for NodeInfo {
    fn into_proto(self) -> pb::Node {
        pb::Node {
            raft_addr: self.raft_addr,
            api_addr: self.api_addr,
        }
    }
}

/// A membership has one voter configuration (uniform) or two (joint). openraft's
/// `Membership::default()`, the "no membership yet" value, has none and no nodes; it appears
/// only in a `StoredMembership` without a log id, and is accepted there only.
impl FromProto<pb::Membership> for Membership {
    fn from_proto(p: pb::Membership) -> Result<Self, ProtoError> {
        if p.configs.is_empty() && p.nodes.is_empty() {
            return Ok(Membership::default());
        }
        if !(1..=2).contains(&p.configs.len()) {
            return Err(ProtoError::invalid(
                "configs",
                format!("{} voter configurations; expected 1 or 2", p.configs.len()),
            ));
        }
        let mut configs = Vec::with_capacity(p.configs.len());
        for (i, set) in p.configs.into_iter().enumerate() {
            let len = set.node_ids.len();
            let ids: BTreeSet<NodeId> = set.node_ids.into_iter().collect();
            if ids.len() != len {
                return Err(ProtoError::invalid(
                    format!("configs[{i}].node_ids"),
                    "duplicate node id",
                ));
            }
            if ids.is_empty() {
                return Err(ProtoError::invalid(
                    format!("configs[{i}].node_ids"),
                    "empty voter configuration",
                ));
            }
            configs.push(ids);
        }
        let mut nodes = BTreeMap::new();
        for (id, node) in p.nodes {
            nodes.insert(id, NodeInfo::from_proto(node)?);
        }
        Membership::new(configs, nodes).map_err(|e| ProtoError::invalid("nodes", e.to_string()))
    }
}

impl IntoProto<pb::Membership> for Membership {
    fn into_proto(self) -> pb::Membership {
        pb::Membership {
            configs: self
                .get_joint_config()
                .iter()
                .map(|set| pb::NodeIdSet {
                    node_ids: set.iter().copied().collect(),
                })
                .collect(),
            nodes: self
                .nodes()
                .map(|(id, node)| (*id, node.clone().into_proto()))
                .collect(),
        }
    }
}

impl FromProto<pb::StoredMembership> for StoredMembership {
    fn from_proto(p: pb::StoredMembership) -> Result<Self, ProtoError> {
        let log_id: Option<LogId> = optional(p.log_id, "log_id")?;
        let membership: Membership = required(p.membership, "membership")?;
        if log_id.is_some() && membership.get_joint_config().is_empty() {
            return Err(ProtoError::invalid(
                "membership.configs",
                "a membership set by a log entry has at least one voter configuration",
            ));
        }
        Ok(StoredMembership::new(log_id, membership))
    }
}

impl IntoProto<pb::StoredMembership> for StoredMembership {
    fn into_proto(self) -> pb::StoredMembership {
        pb::StoredMembership {
            log_id: (*self.log_id()).into_proto(),
            membership: Some(self.membership().clone().into_proto()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TypeConfig;

    fn node(i: u64) -> NodeInfo {
        NodeInfo::new(format!("10.0.0.{i}:7001"), format!("10.0.0.{i}:7000"))
    }

    #[test]
    fn membership_round_trips_uniform_joint_and_empty() {
        let nodes: BTreeMap<_, _> = (1..=4).map(|i| (i, node(i))).collect();
        let uniform = Membership::new(vec![BTreeSet::from([1, 2, 3])], nodes.clone()).unwrap();
        let joint = Membership::new(
            vec![BTreeSet::from([1, 2, 3]), BTreeSet::from([2, 3, 4])],
            nodes,
        )
        .unwrap();
        for m in [uniform.clone(), joint, Membership::default()] {
            let p: pb::Membership = m.clone().into_proto();
            assert_eq!(Membership::from_proto(p).unwrap(), m);
        }

        let log_id = openraft::testing::log_id::<TypeConfig>(2, 1, 10);
        for stored in [
            StoredMembership::new(Some(log_id), uniform),
            StoredMembership::default(),
        ] {
            let p: pb::StoredMembership = stored.clone().into_proto();
            assert_eq!(StoredMembership::from_proto(p).unwrap(), stored);
        }
    }

    #[test]
    fn malformed_memberships_are_refused_with_the_field() {
        let voter_without_node = pb::Membership {
            configs: vec![pb::NodeIdSet {
                node_ids: vec![1, 2],
            }],
            nodes: BTreeMap::from([(1, node(1).into_proto())]),
        };
        assert!(matches!(
            Membership::from_proto(voter_without_node),
            Err(ProtoError::Invalid { field, .. }) if field == "nodes"
        ));

        let duplicate = pb::Membership {
            configs: vec![pb::NodeIdSet {
                node_ids: vec![1, 1],
            }],
            nodes: BTreeMap::from([(1, node(1).into_proto())]),
        };
        assert!(matches!(
            Membership::from_proto(duplicate),
            Err(ProtoError::Invalid { field, .. }) if field == "configs[0].node_ids"
        ));

        let three_configs = pb::Membership {
            configs: vec![pb::NodeIdSet { node_ids: vec![1] }; 3],
            nodes: BTreeMap::from([(1, node(1).into_proto())]),
        };
        assert!(Membership::from_proto(three_configs).is_err());

        let missing = pb::StoredMembership {
            log_id: None,
            membership: None,
        };
        assert_eq!(
            StoredMembership::from_proto(missing).unwrap_err(),
            ProtoError::missing("membership")
        );
    }
}
