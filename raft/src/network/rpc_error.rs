//! How a failed call reaches openraft: the one mapping from a tonic [`Status`] (or an
//! elapsed deadline) to openraft's `RPCError`.

use std::time::Duration;

use openraft::RPCTypes;
use openraft::error::{NetworkError, RPCError, Timeout, Unreachable};
use tonic::{Code, Status};

use crate::pb::ProtoError;
use crate::types::{NodeId, TypeConfig};

/// openraft's error for one RPC.
pub(crate) type RpcError = RPCError<TypeConfig>;

/// What a failed call means to openraft.
///
/// - `Unreachable` (openraft backs off before retrying): the peer cannot be reached or will
///   not talk to us for now: `UNAVAILABLE` (connection refused or reset, server shutting
///   down, busy with another snapshot), `PERMISSION_DENIED` / `UNAUTHENTICATED` (not
///   authorized: retrying at once cannot help), `UNIMPLEMENTED` (a peer without this RPC).
/// - `Timeout`: `DEADLINE_EXCEEDED` and `CANCELLED` (tonic's own request timeout).
/// - `NetworkError` (retried at once): anything else, e.g. `INVALID_ARGUMENT`, `INTERNAL`,
///   `UNKNOWN` (an HTTP/2 error without a status).
pub(crate) fn from_status(
    status: Status,
    action: RPCTypes,
    id: NodeId,
    target: NodeId,
    timeout: Duration,
) -> RpcError {
    match status.code() {
        Code::Unavailable
        | Code::PermissionDenied
        | Code::Unauthenticated
        | Code::Unimplemented => RPCError::Unreachable(Unreachable::new(&status)),
        Code::DeadlineExceeded | Code::Cancelled => RPCError::Timeout(Timeout {
            action,
            id,
            target,
            timeout,
        }),
        _ => RPCError::Network(NetworkError::new(&status)),
    }
}

/// The deadline of a call elapsed on our side.
pub(crate) fn timeout(action: RPCTypes, id: NodeId, target: NodeId, timeout: Duration) -> RpcError {
    RPCError::Timeout(Timeout {
        action,
        id,
        target,
        timeout,
    })
}

/// A request we could not encode, or a response we could not decode.
pub(crate) fn malformed(e: &ProtoError) -> RpcError {
    RPCError::Network(NetworkError::new(e))
}

/// No channel to the peer (its endpoint could not be built).
pub(crate) fn no_channel(reason: &str) -> RpcError {
    RPCError::Unreachable(Unreachable::from_string(reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_map_to_openraft_errors() {
        let map = |code| from_status(Status::new(code, "x"), RPCTypes::Vote, 1, 2, Duration::ZERO);
        for code in [
            Code::Unavailable,
            Code::PermissionDenied,
            Code::Unauthenticated,
        ] {
            assert!(matches!(map(code), RPCError::Unreachable(_)), "{code:?}");
        }
        for code in [Code::DeadlineExceeded, Code::Cancelled] {
            assert!(matches!(map(code), RPCError::Timeout(_)), "{code:?}");
        }
        for code in [
            Code::InvalidArgument,
            Code::Internal,
            Code::Unknown,
            Code::DataLoss,
        ] {
            assert!(matches!(map(code), RPCError::Network(_)), "{code:?}");
        }
    }
}
