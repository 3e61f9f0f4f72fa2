//! `SnapshotMeta` ⇄ openraft's `SnapshotMeta` plus the transfer's snapshot id, and
//! `SnapshotResponse`.

use sutra_proto::raft as pb;

use super::{FromProto, IntoProto, ProtoError, optional, required};
use crate::types::{SnapshotMeta, TypeConfig};

/// Longest accepted `snapshot_id`, in bytes.
pub const MAX_SNAPSHOT_ID_BYTES: usize = 128;

/// The wire form of `meta`, labelled `snapshot_id` (1..=128 bytes) for logs.
pub fn snapshot_meta_to_proto(meta: &SnapshotMeta, snapshot_id: &str) -> pb::SnapshotMeta {
    pb::SnapshotMeta {
        last_log_id: meta.last_log_id.into_proto(),
        last_membership: Some(meta.last_membership.clone().into_proto()),
        snapshot_id: snapshot_id.to_string(),
    }
}

/// openraft's metadata and the snapshot id.
pub fn snapshot_meta_from_proto(p: pb::SnapshotMeta) -> Result<(SnapshotMeta, String), ProtoError> {
    if p.snapshot_id.is_empty() || p.snapshot_id.len() > MAX_SNAPSHOT_ID_BYTES {
        return Err(ProtoError::invalid(
            "snapshot_id",
            format!(
                "{} bytes; expected 1..={MAX_SNAPSHOT_ID_BYTES}",
                p.snapshot_id.len()
            ),
        ));
    }
    let meta = SnapshotMeta {
        last_log_id: optional(p.last_log_id, "last_log_id")?,
        last_membership: required(p.last_membership, "last_membership")?,
    };
    Ok((meta, p.snapshot_id))
}

type Response = openraft::raft::SnapshotResponse<TypeConfig>;

impl FromProto<pb::SnapshotResponse> for Response {
    fn from_proto(p: pb::SnapshotResponse) -> Result<Self, ProtoError> {
        Ok(Response::new(required(p.vote, "vote")?))
    }
}

impl IntoProto<pb::SnapshotResponse> for Response {
    fn into_proto(self) -> pb::SnapshotResponse {
        pb::SnapshotResponse {
            vote: Some(self.vote.into_proto()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::types::{Membership, NodeInfo, StoredMembership};

    #[test]
    fn snapshot_meta_round_trips_and_checks_the_id() {
        let log_id = openraft::testing::log_id::<TypeConfig>(3, 1, 77);
        let membership = Membership::new(
            vec![BTreeSet::from([1])],
            BTreeMap::from([(1, NodeInfo::new("a:1", "a:2"))]),
        )
        .unwrap();
        let meta = SnapshotMeta {
            last_log_id: Some(log_id),
            last_membership: StoredMembership::new(Some(log_id), membership),
        };
        let p = snapshot_meta_to_proto(&meta, "snap-1");
        assert_eq!(
            snapshot_meta_from_proto(p.clone()).unwrap(),
            (meta, "snap-1".to_string())
        );

        for bad in [String::new(), "x".repeat(MAX_SNAPSHOT_ID_BYTES + 1)] {
            let p = pb::SnapshotMeta {
                snapshot_id: bad,
                ..p.clone()
            };
            assert!(matches!(
                snapshot_meta_from_proto(p),
                Err(ProtoError::Invalid { field, .. }) if field == "snapshot_id"
            ));
        }
        let p = pb::SnapshotMeta {
            last_membership: None,
            ..p
        };
        assert_eq!(
            snapshot_meta_from_proto(p).unwrap_err(),
            ProtoError::missing("last_membership")
        );
    }
}
