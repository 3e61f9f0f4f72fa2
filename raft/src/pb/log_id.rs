//! `LogId` ⇄ openraft's `LogId` (committed leader id `(term, node_id)` plus index).

use openraft::impls::leader_id_adv::LeaderId;
use sutra_proto::raft as pb;

use super::{FromProto, IntoProto, ProtoError};
use crate::types::LogId;

impl FromProto<pb::LogId> for LogId {
    fn from_proto(p: pb::LogId) -> Result<Self, ProtoError> {
        Ok(LogId::new(
            LeaderId {
                term: p.term,
                node_id: p.node_id,
            },
            p.index,
        ))
    }
}

impl IntoProto<pb::LogId> for LogId {
    fn into_proto(self) -> pb::LogId {
        pb::LogId {
            term: self.leader_id.term,
            node_id: self.leader_id.node_id,
            index: self.index,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TypeConfig;

    #[test]
    fn log_id_round_trips() {
        let id = openraft::testing::log_id::<TypeConfig>(4, 2, 99);
        let p: pb::LogId = id.into_proto();
        assert_eq!((p.term, p.node_id, p.index), (4, 2, 99));
        assert_eq!(LogId::from_proto(p).unwrap(), id);
    }
}
