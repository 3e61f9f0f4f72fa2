//! `VoteRequest` / `VoteResponse` ⇄ openraft's (used by Vote and PreVote alike).

use sutra_proto::raft as pb;

use super::{FromProto, IntoProto, ProtoError, optional, required};
use crate::types::TypeConfig;

type Request = openraft::raft::VoteRequest<TypeConfig>;
type Response = openraft::raft::VoteResponse<TypeConfig>;

impl FromProto<pb::VoteRequest> for Request {
    fn from_proto(p: pb::VoteRequest) -> Result<Self, ProtoError> {
        Ok(Request {
            vote: required(p.vote, "vote")?,
            last_log_id: optional(p.last_log_id, "last_log_id")?,
            leadership_transfer: p.leadership_transfer,
        })
    }
}

impl IntoProto<pb::VoteRequest> for Request {
    fn into_proto(self) -> pb::VoteRequest {
        pb::VoteRequest {
            vote: Some(self.vote.into_proto()),
            last_log_id: self.last_log_id.into_proto(),
            leadership_transfer: self.leadership_transfer,
        }
    }
}

impl FromProto<pb::VoteResponse> for Response {
    fn from_proto(p: pb::VoteResponse) -> Result<Self, ProtoError> {
        Ok(Response {
            vote: required(p.vote, "vote")?,
            vote_granted: p.vote_granted,
            last_log_id: optional(p.last_log_id, "last_log_id")?,
        })
    }
}

impl IntoProto<pb::VoteResponse> for Response {
    fn into_proto(self) -> pb::VoteResponse {
        pb::VoteResponse {
            vote: Some(self.vote.into_proto()),
            vote_granted: self.vote_granted,
            last_log_id: self.last_log_id.into_proto(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Vote;

    #[test]
    fn vote_messages_round_trip() {
        let mut req = Request::new(
            Vote::new(5, 3),
            Some(openraft::testing::log_id::<TypeConfig>(4, 1, 20)),
        );
        req.leadership_transfer = true;
        assert_eq!(Request::from_proto(req.clone().into_proto()).unwrap(), req);

        let resp = Response::new(Vote::new(5, 3), None, true);
        assert_eq!(
            Response::from_proto(resp.clone().into_proto()).unwrap(),
            resp
        );

        assert_eq!(
            Request::from_proto(pb::VoteRequest::default()).unwrap_err(),
            ProtoError::missing("vote")
        );
    }
}
