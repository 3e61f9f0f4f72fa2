//! [`AppliedPosition`]: the Raft side of the engine's opaque applied `position`.
//!
//! The engine persists `position` with every checkpoint and snapshot and returns it after
//! recovery, without interpreting it. Encoding the last applied log id, the membership
//! in force there and the replicated cluster state (`crate::cluster_state`) makes the
//! engine's checkpoint the state machine's whole durable state: `applied_state()`,
//! snapshot metadata and the cluster's parameters all come from it.
//!
//! Bytes: `[format u8 = 2][postcard(AppliedPosition)]`; empty means nothing applied yet.
//! The engine's checkpoint carries its own CRC32C, so none is added here.

use crate::cluster_state::ClusterState;
use crate::error::{Error, Result};
use crate::types::{LogId, StoredMembership};

const FORMAT: u8 = 2;

/// The last applied log id and the last applied membership.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct AppliedPosition {
    /// Id of the last applied entry; `None` before the first.
    pub last_applied: Option<LogId>,
    /// Membership of the last applied membership entry.
    pub last_membership: StoredMembership,
    /// The cluster state after the last applied entry.
    pub cluster: ClusterState,
}

impl AppliedPosition {
    /// Encodes for `ApplyContext::position`.
    pub fn encode(&self) -> Result<Vec<u8>> {
        postcard::to_extend(self, vec![FORMAT]).map_err(|source| Error::Encode {
            what: "applied position",
            source,
        })
    }

    /// Decodes what [`encode`](Self::encode) made; empty bytes are the initial position.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let Some((&format, rest)) = bytes.split_first() else {
            return Ok(Self::default());
        };
        let bad = |reason: String| Error::CorruptedPosition { reason };
        if format != FORMAT {
            return Err(bad(format!("unknown position format {format}")));
        }
        let (pos, trailing) = postcard::take_from_bytes::<Self>(rest)
            .map_err(|e| bad(format!("undecodable: {e}")))?;
        if !trailing.is_empty() {
            return Err(bad(format!("{} trailing bytes", trailing.len())));
        }
        Ok(pos)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::types::{Membership, NodeInfo, TypeConfig};

    #[test]
    fn position_round_trips() {
        assert_eq!(
            AppliedPosition::decode(&[]).unwrap(),
            AppliedPosition::default()
        );

        let log_id = openraft::testing::log_id::<TypeConfig>(3, 1, 42);
        let nodes = std::collections::BTreeMap::from([
            (1, NodeInfo::new("a:1", "a:2")),
            (2, NodeInfo::new("b:1", "b:2")),
        ]);
        let membership = Membership::new(vec![BTreeSet::from([1, 2])], nodes).unwrap();
        let pos = AppliedPosition {
            last_applied: Some(log_id),
            last_membership: StoredMembership::new(Some(log_id), membership),
            cluster: ClusterState {
                removed: BTreeSet::from([4]),
                ..ClusterState::default()
            },
        };
        let bytes = pos.encode().unwrap();
        assert_eq!(AppliedPosition::decode(&bytes).unwrap(), pos);

        let mut bad = bytes.clone();
        bad[0] = 9;
        assert!(matches!(
            AppliedPosition::decode(&bad),
            Err(Error::CorruptedPosition { .. })
        ));
        assert!(AppliedPosition::decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
