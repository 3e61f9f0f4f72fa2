//! `TransferLeaderRequest` / `TransferLeaderResponse` ⇄ openraft's (the response is
//! `Result<(), TransferLeaderError>`).

use sutra_proto::raft as pb;
use sutra_proto::raft::transfer_leader_response::{LogNotFlushed, Rejection, VoteChanged};

use super::{FromProto, IntoProto, ProtoError, optional, required};
use crate::types::TypeConfig;

type Request = openraft::raft::TransferLeaderRequest<TypeConfig>;
type Response = openraft::raft::TransferLeaderResponse<TypeConfig>;
type TransferLeaderError = openraft::raft::TransferLeaderError<TypeConfig>;

impl FromProto<pb::TransferLeaderRequest> for Request {
    fn from_proto(p: pb::TransferLeaderRequest) -> Result<Self, ProtoError> {
        Ok(Request::new(
            required(p.from_leader, "from_leader")?,
            p.to_node_id,
            optional(p.last_log_id, "last_log_id")?,
        ))
    }
}

impl IntoProto<pb::TransferLeaderRequest> for Request {
    fn into_proto(self) -> pb::TransferLeaderRequest {
        pb::TransferLeaderRequest {
            from_leader: Some(self.from_leader().into_proto()),
            to_node_id: *self.to_node_id(),
            last_log_id: self.last_log_id().copied().into_proto(),
        }
    }
}

impl FromProto<pb::TransferLeaderResponse> for Response {
    fn from_proto(p: pb::TransferLeaderResponse) -> Result<Self, ProtoError> {
        Ok(match p.rejection {
            None => Ok(()),
            Some(Rejection::VoteChanged(r)) => Err(TransferLeaderError::VoteChanged {
                expected: required(r.expected, "vote_changed.expected")?,
                actual: required(r.actual, "vote_changed.actual")?,
            }),
            Some(Rejection::LogNotFlushed(r)) => Err(TransferLeaderError::LogNotFlushed {
                expected: optional(r.expected, "log_not_flushed.expected")?,
                actual: optional(r.actual, "log_not_flushed.actual")?,
            }),
        })
    }
}

impl IntoProto<pb::TransferLeaderResponse> for Response {
    fn into_proto(self) -> pb::TransferLeaderResponse {
        let rejection = match self {
            Ok(()) => None,
            Err(TransferLeaderError::VoteChanged { expected, actual }) => {
                Some(Rejection::VoteChanged(VoteChanged {
                    expected: Some(expected.into_proto()),
                    actual: Some(actual.into_proto()),
                }))
            }
            Err(TransferLeaderError::LogNotFlushed { expected, actual }) => {
                Some(Rejection::LogNotFlushed(LogNotFlushed {
                    expected: expected.into_proto(),
                    actual: actual.into_proto(),
                }))
            }
        };
        pb::TransferLeaderResponse { rejection }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Vote;

    #[test]
    fn transfer_leader_messages_round_trip() {
        let log_id = openraft::testing::log_id::<TypeConfig>(6, 1, 30);
        let req = Request::new(Vote::new_committed(6, 1), 3, Some(log_id));
        assert_eq!(Request::from_proto(req.clone().into_proto()).unwrap(), req);

        for resp in [
            Ok(()),
            Err(TransferLeaderError::VoteChanged {
                expected: Vote::new_committed(6, 1),
                actual: Vote::new(7, 2),
            }),
            Err(TransferLeaderError::LogNotFlushed {
                expected: Some(log_id),
                actual: None,
            }),
        ] {
            assert_eq!(
                Response::from_proto(resp.clone().into_proto()).unwrap(),
                resp
            );
        }
        assert_eq!(
            Request::from_proto(pb::TransferLeaderRequest::default()).unwrap_err(),
            ProtoError::missing("from_leader")
        );
    }
}
