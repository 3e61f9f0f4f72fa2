//! The one table from the peer service's failures to gRPC status codes.

use std::time::Duration;

use openraft::error::{Fatal, RaftError};
use tonic::Status;

use crate::pb::ProtoError;
use crate::types::{NodeId, TypeConfig};

/// Why the peer service refused or failed a call.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServiceError {
    /// The message does not make a valid openraft value.
    #[error("malformed request: {0}")]
    Malformed(#[from] ProtoError),
    /// The InstallSnapshot stream broke the protocol (order, offsets, chunk sizes).
    #[error("snapshot stream: {0}")]
    Protocol(String),
    /// An identified caller spoke for another node.
    #[error("caller is node {caller} but the request is from node {claimed}")]
    Impersonation { caller: NodeId, claimed: NodeId },
    /// No snapshot chunk arrived in time.
    #[error("no snapshot chunk within {0:?}")]
    ChunkTimeout(Duration),
    /// The whole snapshot stream took longer than its bound.
    #[error("snapshot stream not complete within {0:?} (snapshot receive timeout)")]
    ReceiveTimeout(Duration),
    /// The header announced a snapshot larger than this node accepts.
    #[error("snapshot of {announced} bytes is larger than the {max} bytes this node accepts")]
    SnapshotTooLarge { announced: u64, max: u64 },
    /// The engine cannot take a snapshot now (another one is being received or installed).
    #[error("cannot receive a snapshot now: {0}")]
    SnapshotBusy(crate::Error),
    /// The received bytes are not the snapshot the header described (length, checksum,
    /// format).
    #[error("snapshot data rejected: {0}")]
    BadSnapshot(String),
    /// The snapshot's data is not at the position its metadata claims.
    #[error("{0}")]
    SnapshotMismatch(crate::Error),
    /// Local storage failed while receiving.
    #[error("{0}")]
    Storage(crate::Error),
    /// The local Raft node has stopped.
    #[error("raft is not running: {0}")]
    RaftStopped(Fatal<TypeConfig>),
    /// Reading the request stream failed; passed on as it is.
    #[error("{0}")]
    Stream(Status),
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Self {
        let msg = e.to_string();
        match e {
            ServiceError::Malformed(_)
            | ServiceError::Protocol(_)
            | ServiceError::SnapshotMismatch(_) => Status::invalid_argument(msg),
            ServiceError::Impersonation { .. } => Status::permission_denied(msg),
            ServiceError::ChunkTimeout(_) | ServiceError::ReceiveTimeout(_) => {
                Status::deadline_exceeded(msg)
            }
            ServiceError::SnapshotTooLarge { .. } => Status::resource_exhausted(msg),
            ServiceError::SnapshotBusy(_) | ServiceError::RaftStopped(_) => {
                Status::unavailable(msg)
            }
            ServiceError::BadSnapshot(_) => Status::data_loss(msg),
            ServiceError::Storage(_) => Status::internal(msg),
            ServiceError::Stream(status) => status,
        }
    }
}

impl From<RaftError<TypeConfig>> for ServiceError {
    fn from(e: RaftError<TypeConfig>) -> Self {
        match e {
            RaftError::Fatal(f) => Self::RaftStopped(f),
            RaftError::APIError(never) => match never {},
        }
    }
}

impl From<Fatal<TypeConfig>> for ServiceError {
    fn from(f: Fatal<TypeConfig>) -> Self {
        Self::RaftStopped(f)
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn each_failure_has_its_code() {
        let code = |e: ServiceError| Status::from(e).code();
        assert_eq!(
            code(ServiceError::Malformed(ProtoError::missing("vote"))),
            Code::InvalidArgument
        );
        assert_eq!(
            code(ServiceError::Impersonation {
                caller: 1,
                claimed: 2
            }),
            Code::PermissionDenied
        );
        assert_eq!(
            code(ServiceError::ChunkTimeout(Duration::from_secs(1))),
            Code::DeadlineExceeded
        );
        assert_eq!(
            code(ServiceError::ReceiveTimeout(Duration::from_secs(1))),
            Code::DeadlineExceeded
        );
        assert_eq!(
            code(ServiceError::SnapshotTooLarge {
                announced: 2,
                max: 1
            }),
            Code::ResourceExhausted
        );
        assert_eq!(
            code(ServiceError::BadSnapshot("crc".into())),
            Code::DataLoss
        );
        assert_eq!(
            code(ServiceError::RaftStopped(Fatal::Stopped)),
            Code::Unavailable
        );
        assert_eq!(
            code(ServiceError::Stream(Status::cancelled("gone"))),
            Code::Cancelled
        );
    }
}
