//! Every error a client can see, and the one table that maps it to a gRPC status
//! (in the manner of etcd's `toGRPCErrorMap`).

use sutra_engine::{Rejection, ValidationError};
use sutra_proto::LeaderHint;
use sutra_raft::ProposeError;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// A request field is missing or out of bounds.
    #[error(transparent)]
    InvalidArgument(#[from] ValidationError),
    /// The write was ordered but its preconditions or content ruled it out.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// This node cannot serve the request; the leader, if known, can.
    #[error("{}", sutra_proto::not_leader_message(.0.as_ref()))]
    NotLeader(Option<LeaderHint>),
    /// The cluster cannot serve this now (no quorum, shutting down, lagging too far).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The request's deadline or a bounded wait ran out.
    #[error("deadline exceeded: {0}")]
    Deadline(String),
    /// Limits reached (back-pressure, quotas).
    #[error("resource exhausted: {0}")]
    ResourceExhausted(String),
    /// The caller presented no usable identity.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The caller's identity does not allow this call.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The operation conflicts with the cluster's state (e.g. removing the last voter).
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    /// Stored data failed its checksum.
    #[error("data loss: {0}")]
    DataLoss(String),
    /// Anything else; details are logged, not leaked.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ProposeError> for ServiceError {
    fn from(e: ProposeError) -> Self {
        match e {
            ProposeError::NotLeader(hint) => Self::NotLeader(hint),
            ProposeError::Invalid(v) => Self::InvalidArgument(v),
            e if e.is_exhausted() => Self::ResourceExhausted(e.to_string()),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl From<sutra_engine::Error> for ServiceError {
    fn from(e: sutra_engine::Error) -> Self {
        match e {
            sutra_engine::Error::InvalidArgument(v) => Self::InvalidArgument(v),
            sutra_engine::Error::Corrupted { .. } => Self::DataLoss(e.to_string()),
            sutra_engine::Error::Poisoned { .. } => Self::Unavailable(e.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl ServiceError {
    /// A missing or invalid field.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument(ValidationError {
            field: field.into(),
            reason: reason.into(),
        })
    }

    /// The gRPC status code this error is answered with.
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument(_) | Self::Rejected(Rejection::Invalid(_)) => {
                Code::InvalidArgument
            }
            Self::Rejected(_) | Self::FailedPrecondition(_) => Code::FailedPrecondition,
            Self::NotLeader(_) | Self::Unavailable(_) => Code::Unavailable,
            Self::Deadline(_) => Code::DeadlineExceeded,
            Self::ResourceExhausted(_) => Code::ResourceExhausted,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::DataLoss(_) => Code::DataLoss,
            Self::Internal(_) => Code::Internal,
        }
    }
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Self {
        let mut status = Status::new(e.code(), e.to_string());
        match &e {
            ServiceError::InvalidArgument(v) | ServiceError::Rejected(Rejection::Invalid(v)) => {
                if let Ok(field) = MetadataValue::try_from(v.field.as_str()) {
                    status
                        .metadata_mut()
                        .insert(sutra_proto::INVALID_FIELD_METADATA_KEY, field);
                }
            }
            ServiceError::Rejected(Rejection::StaleSequence { last, .. }) => {
                status.metadata_mut().insert(
                    sutra_proto::STALE_SEQUENCE_METADATA_KEY,
                    MetadataValue::from(*last),
                );
            }
            ServiceError::NotLeader(Some(hint)) => hint.attach(&mut status),
            _ => {}
        }
        if e.code() == Code::Internal {
            tracing::error!(error = %e, "internal error answered to a client");
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: Vec<(ServiceError, Code)> = vec![
            (
                ServiceError::invalid("id", "must not be empty"),
                Code::InvalidArgument,
            ),
            (
                Rejection::Invalid(ValidationError {
                    field: "x".into(),
                    reason: "y".into(),
                })
                .into(),
                Code::InvalidArgument,
            ),
            (
                Rejection::VersionMismatch {
                    op_index: 0,
                    id: "a".into(),
                    expected: 1,
                    actual: 2,
                }
                .into(),
                Code::FailedPrecondition,
            ),
            (
                Rejection::MissingConcept {
                    op_index: 0,
                    id: "a".into(),
                }
                .into(),
                Code::FailedPrecondition,
            ),
            (
                ServiceError::NotLeader(Some(LeaderHint {
                    id: 2,
                    addr: Some("h:1".into()),
                })),
                Code::Unavailable,
            ),
            (ServiceError::Deadline("x".into()), Code::DeadlineExceeded),
            (
                ServiceError::ResourceExhausted("x".into()),
                Code::ResourceExhausted,
            ),
            (
                ServiceError::PermissionDenied("x".into()),
                Code::PermissionDenied,
            ),
            (
                ServiceError::Unauthenticated("x".into()),
                Code::Unauthenticated,
            ),
            (ServiceError::DataLoss("x".into()), Code::DataLoss),
        ];
        for (e, code) in cases {
            assert_eq!(Status::from(e).code(), code);
        }
    }

    #[test]
    fn not_leader_carries_the_leader_in_metadata() {
        let s = Status::from(ServiceError::NotLeader(Some(LeaderHint {
            id: 3,
            addr: Some("node3:50051".into()),
        })));
        assert_eq!(
            s.metadata()
                .get(sutra_proto::LEADER_ID_METADATA_KEY)
                .unwrap(),
            "3"
        );
        assert_eq!(
            s.metadata()
                .get(sutra_proto::LEADER_ADDR_METADATA_KEY)
                .unwrap(),
            "node3:50051"
        );
        assert!(s.message().contains("node 3"));
    }

    #[test]
    fn invalid_argument_names_the_field() {
        let s = Status::from(ServiceError::invalid(
            "ops[2].put_concept.concept.id",
            "must not be empty",
        ));
        assert_eq!(
            s.metadata()
                .get(sutra_proto::INVALID_FIELD_METADATA_KEY)
                .unwrap(),
            "ops[2].put_concept.concept.id"
        );
        assert!(s.message().contains("ops[2].put_concept.concept.id"));
    }

    #[test]
    fn a_stale_sequence_names_the_last_one() {
        let s = Status::from(ServiceError::Rejected(Rejection::StaleSequence {
            client_id: "c".into(),
            sequence: 5,
            last: 6,
        }));
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert_eq!(
            s.metadata()
                .get(sutra_proto::STALE_SEQUENCE_METADATA_KEY)
                .unwrap(),
            "6"
        );
        let cas = Status::from(ServiceError::FailedPrecondition("version mismatch".into()));
        assert!(
            cas.metadata()
                .get(sutra_proto::STALE_SEQUENCE_METADATA_KEY)
                .is_none()
        );
    }
}
