//! `AppendEntriesRequest` / `AppendEntriesResponse` ⇄ openraft's.

use sutra_proto::raft as pb;
use sutra_proto::raft::append_entries_response::{Conflict, Outcome, PartialSuccess, Success};

use super::entry::entries_from_proto;
use super::{FromProto, IntoProto, ProtoError, TryIntoProto, optional, required};
use crate::types::TypeConfig;

type Request = openraft::raft::AppendEntriesRequest<TypeConfig>;
type Response = openraft::raft::AppendEntriesResponse<TypeConfig>;

impl FromProto<pb::AppendEntriesRequest> for Request {
    fn from_proto(p: pb::AppendEntriesRequest) -> Result<Self, ProtoError> {
        Ok(Request {
            vote: required(p.vote, "vote")?,
            prev_log_id: optional(p.prev_log_id, "prev_log_id")?,
            entries: entries_from_proto(p.entries)?,
            leader_commit: optional(p.leader_commit, "leader_commit")?,
        })
    }
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
