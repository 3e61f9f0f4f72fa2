//! Conversions between the `sutra.raft` wire messages ([`sutra_proto::raft`]) and
//! openraft's types, one small file per type (and the cluster's parameters as the
//! operator API shows them).
//!
//! Decoding is fallible: a message from the wire may lack a required field or carry
//! values openraft could not hold (a voter without a node entry, a duplicate node id), and
//! every such case is a [`ProtoError`] naming the field, which the server answers with
//! `INVALID_ARGUMENT`. Encoding cannot fail except for a command payload
//! ([`encode_command`]), so only the conversions that carry entries are fallible.
//!
//! Both traits are local so they can be implemented for foreign types on both sides.

mod append_entries;
mod cluster_params;
mod command;
mod entry;
mod forwarded;
mod log_id;
mod membership;
mod snapshot_meta;
mod transfer_leader;
mod vote;
mod vote_request;

pub use command::{decode_command, decode_response, encode_command, encode_response};
pub use forwarded::{forwarded_from_proto, forwarded_to_proto};
pub use snapshot_meta::{snapshot_meta_from_proto, snapshot_meta_to_proto};

/// A wire message that does not make a valid openraft value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// A required field is absent.
    #[error("{field}: required field is missing")]
    Missing {
        /// Path of the field, e.g. `entries[3].log_id`.
        field: String,
    },
    /// A field is present but its value is not acceptable.
    #[error("{field}: {reason}")]
    Invalid {
        /// Path of the field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A command payload could not be encoded (sender side) for the wire.
    #[error("encoding {what} failed: {reason}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The codec's message.
        reason: String,
    },
}

impl ProtoError {
    pub(crate) fn missing(field: impl Into<String>) -> Self {
        Self::Missing {
            field: field.into(),
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Prefixes the field path with `parent` (`vote` + `leader_id` → `vote.leader_id`), so a
    /// nested conversion reports where in the message it failed.
    pub(crate) fn within(self, parent: &str) -> Self {
        let join = |field: String| {
            if field.is_empty() {
                parent.to_string()
            } else if field.starts_with('[') {
                format!("{parent}{field}")
            } else {
                format!("{parent}.{field}")
            }
        };
        match self {
            Self::Missing { field } => Self::Missing { field: join(field) },
            Self::Invalid { field, reason } => Self::Invalid {
                field: join(field),
                reason,
            },
            e @ Self::Encode { .. } => e,
        }
    }
}

/// Decodes a wire message into an openraft value.
pub trait FromProto<P>: Sized {
    /// The value `p` stands for, or what is wrong with it.
    fn from_proto(p: P) -> Result<Self, ProtoError>;
}

/// Encodes an openraft value as a wire message.
pub trait IntoProto<P> {
    /// The wire form.
    fn into_proto(self) -> P;
}

/// Encodes an openraft value that carries command payloads; encoding them can fail.
pub trait TryIntoProto<P> {
    /// The wire form, or why a payload could not be encoded.
    fn try_into_proto(self) -> Result<P, ProtoError>;
}

/// Decodes a required message field: absent is [`ProtoError::Missing`], and errors inside
/// it are reported under `field`.
pub(crate) fn required<P, T: FromProto<P>>(p: Option<P>, field: &str) -> Result<T, ProtoError> {
    let p = p.ok_or_else(|| ProtoError::missing(field))?;
    T::from_proto(p).map_err(|e| e.within(field))
}

/// Decodes an optional message field: absent is `None`.
pub(crate) fn optional<P, T: FromProto<P>>(
    p: Option<P>,
    field: &str,
) -> Result<Option<T>, ProtoError> {
    p.map(|p| T::from_proto(p).map_err(|e| e.within(field)))
        .transpose()
}

impl<P, T: IntoProto<P>> IntoProto<Option<P>> for Option<T> {
    fn into_proto(self) -> Option<P> {
        self.map(IntoProto::into_proto)
    }
}
