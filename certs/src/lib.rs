//! Sutra's certificates: who may talk to whom, and how that is proven.
//!
//! This crate owns
//! - [`generate`]: a development cluster CA and the node and client certificates it
//!   signs, written as PEM files (and single certificates for adding a node or
//!   rotating one);
//! - [`identity`]: the [`Identity`] a certificate carries (`sutra://node/N` or
//!   `sutra://client/<role>/<name>` in a URI SAN) and what each [`Role`] may do;
//! - [`tls`]: tonic mutual-TLS configs for servers and clients (rustls with `ring`),
//!   and [`peer_identity`] to read the caller's identity inside a handler.
//!
//! It does not own authorization decisions of individual RPCs (the node's services
//! decide which [`Role`] each RPC needs, and check a peer's node id against the
//! membership), nor where certificates are configured (the node's config).
//!
//! ```text
//!   ca.pem ──signs──▶ node-N.pem   (serverAuth+clientAuth, URI sutra://node/N)
//!          └─signs──▶ client-X.pem (clientAuth, URI sutra://client/<role>/X)
//!
//!   server_tls(ca, node cert) ◀──mTLS──▶ client_tls(ca, node or client cert, domain)
//!            │
//!            └─ handler: peer_identity(&req) → Identity::Node(N) | Client{name, role}
//! ```

pub mod error;
pub mod generate;
pub mod identity;
pub mod tls;

pub use error::{Error, Result};
pub use generate::{
    Ca, CertPaths, DevCerts, Issued, generate_dev_set, issue_client_cert, issue_node_cert,
};
pub use identity::{
    Identity, Role, identity_from_der, identity_from_pem_file, not_after_from_pem_file,
};
pub use tls::{client_tls, install_crypto_provider, peer_identity, server_tls};
