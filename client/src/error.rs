//! [`ClientError`]: why a call failed, and the one place a gRPC status becomes one.

use std::time::Duration;

use tonic::{Code, Status};

use crate::connect::Error;

pub use sutra_proto::INVALID_FIELD_METADATA_KEY;

/// Why a call failed.
///
/// Each variant names what the caller can do about it: fix the input
/// ([`InvalidArgument`](Self::InvalidArgument)), re-read and retry a conditional write
/// ([`Conflict`](Self::Conflict)), use another certificate
/// ([`PermissionDenied`](Self::PermissionDenied), [`Unauthenticated`](Self::Unauthenticated)),
/// or try again later ([`DeadlineExceeded`](Self::DeadlineExceeded),
/// [`Unavailable`](Self::Unavailable)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The request was refused as malformed or out of bounds; nothing was changed.
    #[error("invalid argument: {message}")]
    InvalidArgument {
        /// Path of the offending field as the server named it (for example
        /// `ops[1].put_concept.concept.embedding[2]`), if it did.
        field: Option<String>,
        /// The server's explanation.
        message: String,
    },
    /// A precondition failed: a compare-and-set version did not match, a batch `check`
    /// failed, an edge's endpoint does not exist. Nothing was changed.
    #[error("conflict: {message}")]
    Conflict {
        /// The server's explanation (it names the op and the versions).
        message: String,
    },
    /// The client certificate's role does not allow this call.
    #[error("permission denied: {message}")]
    PermissionDenied {
        /// The server's explanation.
        message: String,
    },
    /// The node saw no usable client certificate.
    #[error("unauthenticated: {message}")]
    Unauthenticated {
        /// The server's explanation.
        message: String,
    },
    /// The call's deadline passed before any node gave a definitive answer.
    ///
    /// For a write, `outcome_unknown` says whether it may nevertheless have been
    /// applied (some attempt reached a node). A read of the written data tells.
    #[error(
        "deadline of {deadline:?} exceeded{}; last error: {last}",
        if *outcome_unknown { " (the write may or may not have been applied)" } else { "" }
    )]
    DeadlineExceeded {
        /// The deadline the call had.
        deadline: Duration,
        /// True for a write that may have been applied.
        outcome_unknown: bool,
        /// The last failure seen.
        last: String,
    },
    /// A retried write may have been applied by an earlier attempt, but the cluster no
    /// longer keeps that attempt's result: this client sent a later write (a higher
    /// sequence) meanwhile, and the session table holds only a client's last result. A
    /// read of the written data tells. Give each concurrent writer its own [`Client`]
    /// (its own session) to make every retry answerable.
    ///
    /// [`Client`]: crate::Client
    #[error("the write's outcome is unknown: {message}")]
    OutcomeUnknown {
        /// What the cluster answered the retry.
        message: String,
    },
    /// The node asked could not serve the call (no leader, shutting down, not the
    /// leader for a leader-only request). Returned by calls addressed to one node; calls
    /// to the cluster retry elsewhere until their deadline instead.
    #[error("unavailable: {message}{}", leader_text(*leader_id, leader_addr.as_deref()))]
    Unavailable {
        /// The server's explanation.
        message: String,
        /// The leader the node named, if any.
        leader_id: Option<u64>,
        /// The leader's client API address, if the node named it.
        leader_addr: Option<String>,
    },
    /// Any other status (internal errors, data loss, resource limits, ...).
    #[error("{}: {}", .0.code(), .0.message())]
    Status(Status),
    /// A connection could not be set up (bad endpoint or TLS files).
    #[error(transparent)]
    Connect(#[from] Error),
}

fn leader_text(id: Option<u64>, addr: Option<&str>) -> String {
    match (id, addr) {
        (Some(id), Some(addr)) => format!(" (leader: node {id} at {addr})"),
        (Some(id), None) => format!(" (leader: node {id})"),
        _ => String::new(),
    }
}

impl ClientError {
    /// The error a status answered by a node stands for. This is the only place
    /// statuses are interpreted.
    pub fn from_status(status: Status) -> Self {
        let message = status.message().to_string();
        match status.code() {
            Code::InvalidArgument => Self::InvalidArgument {
                field: status
                    .metadata()
                    .get(INVALID_FIELD_METADATA_KEY)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                message,
            },
            Code::FailedPrecondition | Code::Aborted => Self::Conflict { message },
            Code::PermissionDenied => Self::PermissionDenied { message },
            Code::Unauthenticated => Self::Unauthenticated { message },
            Code::Unavailable => {
                let (leader_id, leader_addr) = match sutra_proto::LeaderHint::from_status(&status) {
                    Some(hint) => (Some(hint.id), hint.addr),
                    None => (None, None),
                };
                Self::Unavailable {
                    message,
                    leader_id,
                    leader_addr,
                }
            }
            _ => Self::Status(status),
        }
    }

    /// True if trying again later (or elsewhere) may succeed without changing the
    /// request.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::DeadlineExceeded { .. } | Self::Unavailable { .. }
        )
    }
}

impl From<Status> for ClientError {
    fn from(status: Status) -> Self {
        Self::from_status(status)
    }
}

/// Whether a call should be tried again (on this or another node) after `status`.
///
/// UNAVAILABLE is a node refusing (not the leader, no leader, a BOUNDED read too stale)
/// or a transport failure; DEADLINE_EXCEEDED from a node is a bounded wait on that node
/// running out (a SESSION read on a lagging follower); CANCELLED and UNKNOWN are what a
/// broken connection looks like. Writes are safe to retry because each carries its
/// client id and sequence, which the cluster deduplicates.
pub(crate) fn retryable(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_md(mut s: Status, key: &'static str, value: &str) -> Status {
        s.metadata_mut().insert(key, value.parse().unwrap());
        s
    }

    #[test]
    fn statuses_map_to_distinct_variants() {
        let invalid = with_md(
            Status::invalid_argument("invalid concept.id: must not be empty"),
            INVALID_FIELD_METADATA_KEY,
            "concept.id",
        );
        match ClientError::from(invalid) {
            ClientError::InvalidArgument { field, message } => {
                assert_eq!(field.as_deref(), Some("concept.id"));
                assert!(message.contains("must not be empty"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            ClientError::from(Status::invalid_argument("no field")),
            ClientError::InvalidArgument { field: None, .. }
        ));
        assert!(matches!(
            ClientError::from(Status::failed_precondition("version 3 != 4")),
            ClientError::Conflict { .. }
        ));
        assert!(matches!(
            ClientError::from(Status::permission_denied("reader")),
            ClientError::PermissionDenied { .. }
        ));
        assert!(matches!(
            ClientError::from(Status::unauthenticated("no cert")),
            ClientError::Unauthenticated { .. }
        ));
        let not_leader = with_md(
            with_md(
                Status::unavailable("not the leader"),
                sutra_proto::LEADER_ID_METADATA_KEY,
                "2",
            ),
            sutra_proto::LEADER_ADDR_METADATA_KEY,
            "h:1",
        );
        match ClientError::from(not_leader) {
            e @ ClientError::Unavailable { .. } => {
                assert!(e.is_transient());
                assert!(e.to_string().contains("node 2 at h:1"), "{e}");
                let ClientError::Unavailable {
                    leader_id,
                    leader_addr,
                    ..
                } = e
                else {
                    unreachable!()
                };
                assert_eq!((leader_id, leader_addr.as_deref()), (Some(2), Some("h:1")));
            }
            other => panic!("{other:?}"),
        }
        match ClientError::from(Status::internal("boom")) {
            ClientError::Status(s) => assert_eq!(s.code(), Code::Internal),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_refusals_and_transport_failures_are_retried() {
        for s in [
            Status::unavailable("x"),
            Status::deadline_exceeded("x"),
            Status::cancelled("x"),
            Status::unknown("x"),
        ] {
            assert!(retryable(&s), "{s:?}");
        }
        for s in [
            Status::invalid_argument("x"),
            Status::failed_precondition("x"),
            Status::permission_denied("x"),
            Status::unauthenticated("x"),
            Status::internal("x"),
        ] {
            assert!(!retryable(&s), "{s:?}");
        }
    }

    #[test]
    fn errors_print_on_one_line() {
        let e = ClientError::DeadlineExceeded {
            deadline: Duration::from_secs(1),
            outcome_unknown: true,
            last: "127.0.0.1:1: attempt timed out".into(),
        };
        let text = e.to_string();
        assert!(!text.contains('\n'));
        assert!(text.contains("may or may not have been applied"), "{text}");
    }
}
