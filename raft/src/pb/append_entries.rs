//! `AppendEntriesRequest` / `AppendEntriesResponse` ⇄ openraft's.

use sutra_proto::raft as pb;
use sutra_proto::raft::append_entries_response::{Conflict, Outcome, PartialSuccess, Success};

use super::entry::entries_from_proto;
use super::{FromProto, IntoProto, ProtoError, TryIntoProto, optional, required};
use crate::types::{Entry, LogId, TypeConfig};

type Request = openraft::raft::AppendEntriesRequest<TypeConfig>;
type Response = openraft::raft::AppendEntriesResponse<TypeConfig>;

impl FromProto<pb::AppendEntriesRequest> for Request {
    fn from_proto(p: pb::AppendEntriesRequest) -> Result<Self, ProtoError> {
        let req = Request {
            vote: required(p.vote, "vote")?,
            prev_log_id: optional(p.prev_log_id, "prev_log_id")?,
            entries: entries_from_proto(p.entries)?,
            leader_commit: optional(p.leader_commit, "leader_commit")?,
        };
        check_follows(req.prev_log_id.as_ref(), &req.entries)?;
        Ok(req)
    }
}

/// Refuses entries that are not the continuation of `prev`: their indexes must be
/// consecutive, starting at `prev.index + 1` (at 0 without `prev`), and their leader ids
/// must not go down (a Raft log is ordered by log id).
///
/// openraft does not check this (0.10.0-alpha.37 only `debug_assert`s the first index),
/// and the log store asserts consecutive appends, so such a request from a peer would
/// otherwise stop this node, or leave a hole in its log in a build without the assertion.
fn check_follows(prev: Option<&LogId>, entries: &[Entry]) -> Result<(), ProtoError> {
    // Checked: the indexes come from the wire, and u64::MAX has no successor.
    let first = prev.map_or(Some(0), |p| p.index.checked_add(1));
    let mut last_leader = prev.map(|p| &p.leader_id);
    for (i, e) in entries.iter().enumerate() {
        let expected = first.and_then(|f| f.checked_add(i as u64));
        if expected != Some(e.log_id.index) {
            return Err(ProtoError::invalid(
                format!("entries[{i}].log_id.index"),
                format!(
                    "is {}, expected {}: entries must follow prev_log_id with consecutive indexes",
                    e.log_id.index,
                    expected.map_or("none".to_string(), |x| x.to_string()),
                ),
            ));
        }
        if last_leader.is_some_and(|l| e.log_id.leader_id < *l) {
            return Err(ProtoError::invalid(
                format!("entries[{i}].log_id.leader_id"),
                "is older than the entry before it: log ids must not go down",
            ));
        }
        last_leader = Some(&e.log_id.leader_id);
    }
    Ok(())
}

impl TryIntoProto<pb::AppendEntriesRequest> for Request {
    fn try_into_proto(self) -> Result<pb::AppendEntriesRequest, ProtoError> {
        Ok(pb::AppendEntriesRequest {
            vote: Some(self.vote.into_proto()),
            prev_log_id: self.prev_log_id.into_proto(),
            entries: self
                .entries
                .into_iter()
                .map(TryIntoProto::try_into_proto)
                .collect::<Result<_, _>>()?,
            leader_commit: self.leader_commit.into_proto(),
        })
    }
}

impl FromProto<pb::AppendEntriesResponse> for Response {
    fn from_proto(p: pb::AppendEntriesResponse) -> Result<Self, ProtoError> {
        Ok(match p.outcome {
            None => return Err(ProtoError::missing("outcome")),
            Some(Outcome::Success(Success {})) => Response::Success,
            Some(Outcome::PartialSuccess(ps)) => {
                Response::PartialSuccess(optional(ps.matching, "partial_success.matching")?)
            }
            Some(Outcome::Conflict(Conflict {})) => Response::Conflict,
            Some(Outcome::HigherVote(v)) => Response::HigherVote(required(Some(v), "higher_vote")?),
        })
    }
}

impl IntoProto<pb::AppendEntriesResponse> for Response {
    fn into_proto(self) -> pb::AppendEntriesResponse {
        let outcome = match self {
            Response::Success => Outcome::Success(Success {}),
            Response::PartialSuccess(matching) => Outcome::PartialSuccess(PartialSuccess {
                matching: matching.into_proto(),
            }),
            Response::Conflict => Outcome::Conflict(Conflict {}),
            Response::HigherVote(v) => Outcome::HigherVote(v.into_proto()),
        };
        pb::AppendEntriesResponse {
            outcome: Some(outcome),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Vote;

    #[test]
    fn request_and_every_response_round_trip() {
        let log_id = |i| openraft::testing::log_id::<TypeConfig>(2, 1, i);
        let req = Request {
            vote: Vote::new_committed(2, 1),
            prev_log_id: Some(log_id(4)),
            entries: vec![openraft::testing::blank_ent::<TypeConfig>(2, 1, 5)],
            leader_commit: Some(log_id(3)),
        };
        let back = Request::from_proto(req.clone().try_into_proto().unwrap()).unwrap();
        assert_eq!(
            (
                back.vote,
                back.prev_log_id,
                back.entries,
                back.leader_commit
            ),
            (req.vote, req.prev_log_id, req.entries, req.leader_commit)
        );

        for resp in [
            Response::Success,
            Response::PartialSuccess(None),
            Response::PartialSuccess(Some(log_id(7))),
            Response::Conflict,
            Response::HigherVote(Vote::new(3, 2)),
        ] {
            assert_eq!(
                Response::from_proto(resp.clone().into_proto()).unwrap(),
                resp
            );
        }
    }

    /// Entries that skip an index, do not start right after `prev_log_id` (or at 0
    /// without one), or whose leader ids go down are refused at decoding, naming the
    /// entry; consecutive ones (and none at all) pass.
    #[test]
    fn entries_must_follow_prev_log_id_consecutively() {
        let ent = |term, node, i| openraft::testing::blank_ent::<TypeConfig>(term, node, i);
        let req = |prev: Option<u64>, entries: Vec<Entry>| {
            Request {
                vote: Vote::new_committed(2, 1),
                prev_log_id: prev.map(|i| openraft::testing::log_id::<TypeConfig>(2, 1, i)),
                entries,
                leader_commit: None,
            }
            .try_into_proto()
            .unwrap()
        };
        let field_of = |p| match Request::from_proto(p) {
            Err(ProtoError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        for ok in [
            req(None, vec![]),
            req(Some(4), vec![]),
            req(None, vec![ent(1, 1, 0), ent(1, 1, 1), ent(2, 1, 2)]),
            req(Some(4), vec![ent(2, 1, 5), ent(2, 1, 6)]),
        ] {
            Request::from_proto(ok).unwrap();
        }
        assert_eq!(
            field_of(req(Some(4), vec![ent(2, 1, 5), ent(2, 1, 7)])),
            "entries[1].log_id.index",
            "a gap"
        );
        assert_eq!(
            field_of(req(Some(4), vec![ent(2, 1, 6)])),
            "entries[0].log_id.index",
            "does not follow prev_log_id"
        );
        assert_eq!(
            field_of(req(Some(4), vec![ent(2, 1, 4)])),
            "entries[0].log_id.index",
            "overlaps prev_log_id"
        );
        assert_eq!(
            field_of(req(None, vec![ent(1, 1, 1)])),
            "entries[0].log_id.index",
            "without prev_log_id the first index is 0"
        );
        assert_eq!(
            field_of(req(Some(4), vec![ent(2, 1, 5), ent(2, 1, 5)])),
            "entries[1].log_id.index",
            "a repeated index"
        );
        assert_eq!(
            field_of(req(Some(4), vec![ent(2, 1, 5), ent(1, 1, 6)])),
            "entries[1].log_id.leader_id",
            "a leader id going down"
        );
        assert_eq!(
            field_of(req(Some(u64::MAX), vec![ent(2, 1, 0)])),
            "entries[0].log_id.index",
            "nothing follows the last possible index"
        );
        assert_eq!(
            field_of(req(Some(4), vec![ent(1, 3, 5)])),
            "entries[0].log_id.leader_id",
            "older than prev_log_id's leader"
        );
    }

    #[test]
    fn request_without_vote_is_refused() {
        let p = pb::AppendEntriesRequest::default();
        assert_eq!(
            Request::from_proto(p).unwrap_err(),
            ProtoError::missing("vote")
        );
        assert_eq!(
            Response::from_proto(pb::AppendEntriesResponse::default()).unwrap_err(),
            ProtoError::missing("outcome")
        );
    }
}
