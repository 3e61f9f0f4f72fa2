//! Who is on the other end of a TLS connection, read from its certificate.
//!
//! The identity lives in exactly one URI SAN with the `sutra` scheme:
//!
//! ```text
//! sutra://node/<id>                 a cluster node; <id> is its Raft node id (u64, decimal)
//! sutra://client/<role>/<name>      a client; <role> is read | write | admin
//! ```
//!
//! The URI SAN, not the CN, is authoritative: SANs are what X.509 tooling treats as
//! structured names, an operator's own CA can add one without touching the subject,
//! and a single place to look means a CN and a SAN can never disagree about who a
//! peer is. The CN only helps humans reading `openssl x509 -text`.
//!
//! # What an identity may do
//!
//! - `Client { role }` may call client RPCs that need `role` or less: Admin ⊇ Write ⊇
//!   Read ([`Role::allows`]).
//! - `Node(_)` may call every peer RPC (the caller still checks that the id is a
//!   member), and client RPCs up to **Write**, because a follower forwards client
//!   writes and reads to the leader under its own certificate. A node does *not*
//!   count as Admin on the client API: membership changes, leader transfer, snapshots
//!   and backups must come from an operator's admin certificate, so a stolen node key
//!   cannot reshape the cluster through the client API ([`Identity::allows_client_rpc`]).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use x509_parser::extensions::GeneralName;

use crate::error::{Error, Result};

/// The URI scheme that marks a SAN as a Sutra identity.
pub const SCHEME: &str = "sutra";

/// Longest client name accepted, so that names stay usable as file names and log fields.
pub const MAX_CLIENT_NAME_LEN: usize = 64;

/// A client's permission level. The order is meaningful: `Read < Write < Admin`, and a
/// higher role includes everything a lower one may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads at any consistency level.
    Read,
    /// Reads and writes.
    Write,
    /// Everything, including membership, leader transfer, snapshots and backups.
    Admin,
}

impl Role {
    /// All roles, lowest first.
    pub const ALL: [Role; 3] = [Role::Read, Role::Write, Role::Admin];

    /// Whether a holder of `self` may do what needs `required`.
    pub fn allows(self, required: Role) -> bool {
        self >= required
    }

    /// The lowercase name used in URIs, file names and config.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;

    /// Only the exact lowercase names parse, so that a certificate has one spelling
    /// for each role and a grep for `sutra://client/admin/` finds every admin.
    fn from_str(s: &str) -> Result<Self> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| Error::UnknownRole(s.to_owned()))
    }
}

/// The authenticated party behind a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A cluster node with this Raft node id.
    Node(u64),
    /// A client program or person.
    Client { name: String, role: Role },
}

impl Identity {
    /// The URI SAN that encodes this identity.
    pub fn uri(&self) -> String {
        match self {
            Identity::Node(id) => format!("{SCHEME}://node/{id}"),
            Identity::Client { name, role } => format!("{SCHEME}://client/{role}/{name}"),
        }
    }

    /// The node id, if this is a node. Peer services use it to check membership.
    pub fn node_id(&self) -> Option<u64> {
        match self {
            Identity::Node(id) => Some(*id),
            Identity::Client { .. } => None,
        }
    }

    /// Whether this identity may call a client-API RPC that needs `required`.
    ///
    /// Nodes get Write (and so Read) but never Admin; see the module docs for why.
    pub fn allows_client_rpc(&self, required: Role) -> bool {
        match self {
            Identity::Node(_) => Role::Write.allows(required),
            Identity::Client { role, .. } => role.allows(required),
        }
    }

    /// Whether this identity may call peer (Raft) RPCs at all. Only nodes may; the
    /// caller still has to check [`Identity::node_id`] against the membership.
    pub fn allows_peer_rpc(&self) -> bool {
        matches!(self, Identity::Node(_))
    }

    /// Parses one URI. `Ok(None)` means the URI is not a Sutra URI at all (some other
    /// scheme), which a certificate may carry alongside its Sutra one.
    pub fn from_uri(uri: &str) -> Result<Option<Identity>> {
        // URI schemes are case-insensitive (RFC 3986 §3.1), so `SUTRA:` is still ours:
        // it must then be rejected as malformed rather than ignored as foreign.
        let Some((scheme, _)) = uri.split_once(':') else {
            return Ok(None);
        };
        if !scheme.eq_ignore_ascii_case(SCHEME) {
            return Ok(None);
        }
        let malformed = |reason| Error::MalformedIdentity {
            uri: uri.to_owned(),
            reason,
        };
        let rest = uri
            .strip_prefix("sutra://")
            .ok_or_else(|| malformed("must start with the lowercase prefix sutra://"))?;
        let mut parts = rest.split('/');
        let identity = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("node"), Some(id), None, None) => {
                Identity::Node(parse_node_id(id).ok_or_else(|| {
                    malformed("node id must be a decimal u64 without sign or leading zeros")
                })?)
            }
            (Some("client"), Some(role), Some(name), None) => {
                let role = role
                    .parse::<Role>()
                    .map_err(|_| malformed("role must be read, write or admin"))?;
                validate_client_name(name).map_err(|_| {
                    malformed("client name must be 1-64 characters of [A-Za-z0-9._-], not starting with . or -")
                })?;
                Identity::Client {
                    name: name.to_owned(),
                    role,
                }
            }
            _ => {
                return Err(malformed(
                    "expected sutra://node/<id> or sutra://client/<role>/<name>",
                ));
            }
        };
        Ok(Some(identity))
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri())
    }
}

/// A node id has one spelling, so two certificates for the same node always carry
/// byte-identical URIs.
fn parse_node_id(s: &str) -> Option<u64> {
    let id = s.parse::<u64>().ok()?;
    (id.to_string() == s).then_some(id)
}

/// Checks a client name. Names end up in URIs, file names (`client-<name>.pem`) and
/// log fields, so they are kept to a conservative character set.
pub fn validate_client_name(name: &str) -> Result<()> {
    let invalid = |reason| Error::InvalidInput {
        kind: "client name",
        value: name.to_owned(),
        reason,
    };
    if name.is_empty() || name.len() > MAX_CLIENT_NAME_LEN {
        return Err(invalid("must be 1 to 64 characters long"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(invalid("may only contain A-Z, a-z, 0-9, '.', '_' and '-'"));
    }
    if name.starts_with(['.', '-']) {
        return Err(invalid("must not start with '.' or '-'"));
    }
    Ok(())
}

/// Reads the identity from a DER-encoded X.509 certificate.
///
/// Exactly one `sutra:` URI SAN must be present. URIs with other schemes are ignored.
/// This does not check the signature, validity period or key usage: the TLS handshake
/// has done that before any caller sees a peer certificate.
pub fn identity_from_der(der: &[u8]) -> Result<Identity> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| Error::BadCertificate(e.to_string()))?;
    if !rest.is_empty() {
        return Err(Error::BadCertificate(format!(
            "{} trailing bytes after the certificate",
            rest.len()
        )));
    }
    let san = cert
        .subject_alternative_name()
        .map_err(|e| Error::BadCertificate(e.to_string()))?;
    let Some(san) = san else {
        return Err(Error::NoIdentity);
    };
    let mut found = Vec::new();
    for name in &san.value.general_names {
        if let GeneralName::URI(uri) = name
            && let Some(identity) = Identity::from_uri(uri)?
        {
            found.push(identity);
        }
    }
    match found.len() {
        0 => Err(Error::NoIdentity),
        1 => Ok(found.swap_remove(0)),
        count => Err(Error::AmbiguousIdentity { count }),
    }
}

/// Reads the identity of the first certificate in a PEM file: the leaf, when the file
/// holds a chain. Nodes use it at start-up to check that their certificate names the
/// node id they were configured with.
pub fn identity_from_pem_file(path: &Path) -> Result<Identity> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let leaf = first_cert(path, &bytes)?;
    identity_from_der(&leaf)
}

/// When the first certificate of a PEM file stops being valid, in seconds since the
/// Unix epoch.
pub fn not_after_from_pem_file(path: &Path) -> Result<i64> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let leaf = first_cert(path, &bytes)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf)
        .map_err(|e| Error::BadCertificate(e.to_string()))?;
    Ok(cert.validity().not_after.timestamp())
}

/// The first certificate of a PEM buffer, with an error naming the file.
pub(crate) fn first_cert(path: &Path, pem: &[u8]) -> Result<CertificateDer<'static>> {
    match CertificateDer::pem_slice_iter(pem).next() {
        Some(Ok(cert)) => Ok(cert),
        Some(Err(e)) => Err(Error::Pem {
            path: path.to_owned(),
            reason: format!("unreadable PEM certificate: {e}"),
        }),
        None => Err(Error::Pem {
            path: path.to_owned(),
            reason: "no CERTIFICATE block".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate carrying the given URI SANs (and a DNS name, so the
    /// SAN extension exists even when `uris` is empty).
    fn cert_with_uris(uris: &[&str]) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().expect("P-256 key generation does not fail");
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("localhost is a valid DNS name");
        for uri in uris {
            params.subject_alt_names.push(rcgen::SanType::URI(
                (*uri).try_into().expect("test URIs are ASCII"),
            ));
        }
        params
            .self_signed(&key)
            .expect("signing succeeds")
            .der()
            .to_vec()
    }

    /// Admin ⊇ Write ⊇ Read, and nodes stop at Write on the client API.
    #[test]
    fn role_order_and_node_rights() {
        assert!(Role::Admin.allows(Role::Write));
        assert!(Role::Admin.allows(Role::Read));
        assert!(Role::Write.allows(Role::Read));
        assert!(!Role::Read.allows(Role::Write));
        assert!(!Role::Write.allows(Role::Admin));

        let node = Identity::Node(3);
        assert!(node.allows_client_rpc(Role::Read));
        assert!(node.allows_client_rpc(Role::Write));
        assert!(!node.allows_client_rpc(Role::Admin));
        assert!(node.allows_peer_rpc());

        let admin = Identity::Client {
            name: "ops".into(),
            role: Role::Admin,
        };
        assert!(admin.allows_client_rpc(Role::Admin));
        assert!(!admin.allows_peer_rpc(), "clients never act as Raft peers");

        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().expect("round trip"), role);
        }
        assert!("Admin".parse::<Role>().is_err(), "one spelling per role");
    }

    /// Every identity survives uri() → from_uri(), and bad URIs are rejected with the
    /// reason rather than ignored.
    #[test]
    fn uri_grammar() {
        for identity in [
            Identity::Node(0),
            Identity::Node(u64::MAX),
            Identity::Client {
                name: "alice.ops_1-x".into(),
                role: Role::Write,
            },
        ] {
            assert_eq!(
                Identity::from_uri(&identity.uri()).expect("well formed"),
                Some(identity)
            );
        }

        assert_eq!(Identity::from_uri("spiffe://x/y").expect("foreign"), None);
        assert_eq!(Identity::from_uri("no-scheme").expect("foreign"), None);
        for bad in [
            "SUTRA://node/1",
            "sutra:node/1",
            "sutra://node/01",
            "sutra://node/+1",
            "sutra://node/-1",
            "sutra://node/",
            "sutra://node/1/",
            "sutra://node/18446744073709551616",
            "sutra://client/root/alice",
            "sutra://client/read/",
            "sutra://client/read/a/b",
            "sutra://client/read/.hidden",
            "sutra://client/read/has%20space",
            "sutra://peer/1",
        ] {
            assert!(
                matches!(
                    Identity::from_uri(bad),
                    Err(Error::MalformedIdentity { .. })
                ),
                "{bad} must be rejected"
            );
        }
    }

    /// identity_from_der picks the single Sutra URI SAN, ignores foreign URIs, and
    /// refuses certificates with none, two, or a malformed one.
    #[test]
    fn identity_from_certificates() {
        let der = cert_with_uris(&["https://example.com/x", "sutra://node/7"]);
        assert_eq!(
            identity_from_der(&der).expect("one identity"),
            Identity::Node(7)
        );

        let der = cert_with_uris(&["sutra://client/read/bob"]);
        assert_eq!(
            identity_from_der(&der).expect("one identity"),
            Identity::Client {
                name: "bob".into(),
                role: Role::Read
            }
        );

        let der = cert_with_uris(&[]);
        assert!(matches!(identity_from_der(&der), Err(Error::NoIdentity)));
        let key = rcgen::KeyPair::generate().expect("P-256 key generation does not fail");
        let no_san_extension = rcgen::CertificateParams::default()
            .self_signed(&key)
            .expect("signing succeeds");
        assert!(matches!(
            identity_from_der(no_san_extension.der()),
            Err(Error::NoIdentity)
        ));

        let der = cert_with_uris(&["sutra://node/1", "sutra://client/admin/eve"]);
        assert!(matches!(
            identity_from_der(&der),
            Err(Error::AmbiguousIdentity { count: 2 })
        ));

        let der = cert_with_uris(&["sutra://node/one"]);
        assert!(matches!(
            identity_from_der(&der),
            Err(Error::MalformedIdentity { .. })
        ));

        assert!(matches!(
            identity_from_der(b"not a certificate"),
            Err(Error::BadCertificate(_))
        ));
        let mut trailing = cert_with_uris(&["sutra://node/1"]);
        trailing.push(0);
        assert!(matches!(
            identity_from_der(&trailing),
            Err(Error::BadCertificate(_))
        ));
    }
}
