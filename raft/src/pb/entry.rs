//! `Entry` ⇄ openraft's log entry. A normal entry's command travels as the bytes of
//! [`encode_command`](super::encode_command).

use openraft::EntryPayload;
use sutra_proto::raft as pb;
use sutra_proto::raft::entry::Payload;

use super::{
    FromProto, IntoProto, ProtoError, TryIntoProto, decode_command, encode_command, required,
};
use crate::types::{Entry, Membership};

impl FromProto<pb::Entry> for Entry {
    fn from_proto(p: pb::Entry) -> Result<Self, ProtoError> {
        let log_id = required(p.log_id, "log_id")?;
        let payload = match p.payload {
            None => return Err(ProtoError::missing("payload")),
            Some(Payload::Blank(pb::Blank {})) => EntryPayload::Blank,
            Some(Payload::Normal(bytes)) => {
                EntryPayload::Normal(decode_command(&bytes).map_err(|e| e.within("normal"))?)
            }
            Some(Payload::Membership(m)) => {
                let m = Membership::from_proto(m).map_err(|e| e.within("membership"))?;
                if m.get_joint_config().is_empty() {
                    return Err(ProtoError::invalid(
                        "membership.configs",
                        "a membership entry has at least one voter configuration",
                    ));
                }
                EntryPayload::Membership(m)
            }
        };
        Ok(Entry { log_id, payload })
    }
}

impl TryIntoProto<pb::Entry> for Entry {
    fn try_into_proto(self) -> Result<pb::Entry, ProtoError> {
        let payload = match self.payload {
            EntryPayload::Blank => Payload::Blank(pb::Blank {}),
            EntryPayload::Normal(cmd) => Payload::Normal(encode_command(&cmd)?),
            EntryPayload::Membership(m) => Payload::Membership(m.into_proto()),
        };
        Ok(pb::Entry {
            log_id: Some(self.log_id.into_proto()),
            payload: Some(payload),
        })
    }
}

/// Decodes `entries`, naming the index of the first bad one.
pub(crate) fn entries_from_proto(entries: Vec<pb::Entry>) -> Result<Vec<Entry>, ProtoError> {
    entries
        .into_iter()
        .enumerate()
        .map(|(i, e)| Entry::from_proto(e).map_err(|err| err.within(&format!("entries[{i}]"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use sutra_engine::{Concept, WriteBatch, WriteOp};

    use super::*;
    use crate::command::Command;
    use crate::types::TypeConfig;

    #[test]
    fn every_payload_kind_round_trips() {
        let batch = WriteBatch {
            session: None,
            ops: vec![WriteOp::PutConcept {
                concept: Concept {
                    id: "a".into(),
                    content: b"x".to_vec(),
                    ..Concept::default()
                },
                expected_version: None,
            }],
        };
        let entries = [
            openraft::testing::blank_ent::<TypeConfig>(1, 1, 1),
            openraft::testing::membership_ent::<TypeConfig>(1, 1, 2, vec![BTreeSet::from([1, 2])]),
            Entry {
                log_id: openraft::testing::log_id::<TypeConfig>(1, 1, 3),
                payload: EntryPayload::Normal(Command::new(batch, 1234)),
            },
        ];
        for e in entries {
            let p = e.clone().try_into_proto().unwrap();
            assert_eq!(Entry::from_proto(p).unwrap(), e);
        }
    }

    #[test]
    fn bad_entries_name_the_field() {
        let no_payload = pb::Entry {
            log_id: Some(pb::LogId::default()),
            payload: None,
        };
        assert_eq!(
            entries_from_proto(vec![no_payload]).unwrap_err(),
            ProtoError::missing("entries[0].payload")
        );
        let garbage = pb::Entry {
            log_id: Some(pb::LogId::default()),
            payload: Some(Payload::Normal(vec![0xff; 3])),
        };
        let blank = openraft::testing::blank_ent::<TypeConfig>(1, 1, 1)
            .try_into_proto()
            .unwrap();
        assert!(matches!(
            entries_from_proto(vec![blank, garbage]),
            Err(ProtoError::Invalid { field, .. }) if field == "entries[1].normal"
        ));
    }
}
