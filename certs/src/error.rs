//! The crate's error type.
//!
//! Variants are named after what the caller can do about them: pass `force`
//! ([`Error::AlreadyExists`]), restore a lost file ([`Error::IncompletePair`]), or fix
//! the certificate it was handed ([`Error::NoIdentity`] and friends).

use std::path::PathBuf;

use crate::identity::Identity;

/// Everything that can go wrong while generating, loading or interpreting certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// rcgen refused the parameters or a key (for example a CA key that is not PKCS#8).
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),

    /// The file is there already; pass `force` to replace it.
    #[error("{path} already exists; pass force to replace it")]
    AlreadyExists { path: PathBuf },

    /// One half of a certificate/key pair is missing, so the pair can be neither used
    /// nor silently completed (a new key would not match the old certificate).
    #[error("{present} exists but {missing} does not; restore it or pass force to regenerate both")]
    IncompletePair { present: PathBuf, missing: PathBuf },

    /// A leaf certificate in the directory was not signed by the directory's CA, so
    /// the cluster would reject it at the handshake.
    #[error("{path} was not issued by the CA in {ca}; pass force to reissue it")]
    NotIssuedByCa { path: PathBuf, ca: PathBuf },

    /// A leaf certificate exists but the CA it needs does not.
    #[error("{path} exists but its CA {ca} does not; restore the CA or pass force")]
    LeafWithoutCa { path: PathBuf, ca: PathBuf },

    /// No certificate in the CA file belongs to the CA key, so nothing can be issued.
    #[error("no certificate in {ca} matches the key in {key}")]
    CaKeyMismatch { ca: PathBuf, key: PathBuf },

    /// A certificate and the private key meant for it do not belong together.
    #[error("the key in {key} does not belong to the certificate in {cert}: {reason}")]
    KeyMismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },

    /// A PEM file holds no usable certificate or key.
    #[error("{path}: {reason}")]
    Pem { path: PathBuf, reason: String },

    /// A certificate exists under the expected name but names someone else.
    #[error("{path} carries identity {found}, expected {expected}; pass force to reissue it")]
    UnexpectedIdentity {
        path: PathBuf,
        expected: Identity,
        found: Identity,
    },

    /// A client name, host name or node list that cannot go into a certificate.
    #[error("invalid {kind} {value:?}: {reason}")]
    InvalidInput {
        kind: &'static str,
        value: String,
        reason: &'static str,
    },

    /// A role name other than `read`, `write` or `admin`.
    #[error("unknown role {0:?}; expected read, write or admin")]
    UnknownRole(String),

    /// The bytes are not a DER X.509 certificate.
    #[error("certificate could not be parsed: {0}")]
    BadCertificate(String),

    /// The certificate carries no `sutra://` URI SAN, so it names no Sutra identity.
    #[error("certificate carries no sutra:// URI SAN")]
    NoIdentity,

    /// More than one `sutra://` URI SAN: refusing to guess which one counts.
    #[error("certificate carries {count} sutra:// URI SANs; exactly one is allowed")]
    AmbiguousIdentity { count: usize },

    /// A `sutra:` URI SAN that does not follow the grammar in [`crate::identity`].
    #[error("malformed Sutra identity URI {uri:?}: {reason}")]
    MalformedIdentity { uri: String, reason: &'static str },
}

/// The crate-level result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
