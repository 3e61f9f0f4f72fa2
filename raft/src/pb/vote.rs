//! `Vote` and `LeaderId` ⇄ openraft's `Vote` with the advanced (`(term, node_id)`) leader id.

use openraft::impls::leader_id_adv::LeaderId;
use sutra_proto::raft as pb;

use super::{FromProto, IntoProto, ProtoError, required};
use crate::types::{NodeId, Vote};

impl FromProto<pb::LeaderId> for LeaderId<u64, NodeId> {
    fn from_proto(p: pb::LeaderId) -> Result<Self, ProtoError> {
        Ok(LeaderId {
            term: p.term,
            node_id: p.node_id,
        })
    }
}

impl IntoProto<pb::LeaderId> for LeaderId<u64, NodeId> {
    fn into_proto(self) -> pb::LeaderId {
        pb::LeaderId {
            term: self.term,
            node_id: self.node_id,
        }
    }
}

impl FromProto<pb::Vote> for Vote {
    fn from_proto(p: pb::Vote) -> Result<Self, ProtoError> {
        Ok(Vote {
            leader_id: required(p.leader_id, "leader_id")?,
            committed: p.committed,
        })
    }
}

impl IntoProto<pb::Vote> for Vote {
    fn into_proto(self) -> pb::Vote {
        pb::Vote {
            leader_id: Some(self.leader_id.into_proto()),
            committed: self.committed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vote_round_trips_and_requires_leader_id() {
        for vote in [Vote::new(0, 0), Vote::new(3, 2), Vote::new_committed(7, 1)] {
            let p: pb::Vote = vote.into_proto();
            assert_eq!(Vote::from_proto(p).unwrap(), vote);
        }
        let err = Vote::from_proto(pb::Vote {
            leader_id: None,
            committed: true,
        })
        .unwrap_err();
        assert_eq!(err, ProtoError::missing("leader_id"));
    }
}
