//! Mutual-TLS configs for tonic, and reading the caller's identity in a handler.
//!
//! Both sides verify against the cluster CA only (no system roots): a server requires
//! a client certificate signed by the CA, and a client requires the server's
//! certificate to be signed by the CA and to name the host it dialled.
//!
//! The crypto provider is rustls's `ring` provider. [`install_crypto_provider`] makes
//! it the process default, because tonic builds its server config with
//! `ServerConfig::builder()`, which panics when the dependency graph enables more than
//! one provider (aws-lc-rs arrives easily through other crates' default features).
//!
//! # Seeing the peer's certificate
//!
//! [`peer_identity`] reads `Request::peer_certs()`, which tonic fills only when the
//! server's incoming connections are `TcpStream`s (`Server::serve`, or
//! `serve_with_incoming` over `TcpIncoming` / `TcpListenerStream`) and TLS is on. Any
//! other transport yields no certificates, and every call is then refused as
//! `UNAUTHENTICATED`: the check fails closed.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use tonic::transport::{Certificate, ClientTlsConfig, ServerTlsConfig};

use crate::error::{Error, Result};
use crate::identity::{Identity, identity_from_der};

/// Longest a TLS handshake may take. Without a limit a client that opens a
/// connection and then says nothing holds a server task forever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Makes rustls's `ring` provider the process-wide default, unless a provider is
/// already installed (then that one stays: whoever installed it chose on purpose).
/// Called by [`server_tls`] and [`client_tls`]; cheap to call again.
pub fn install_crypto_provider() {
    if ring_provider().install_default().is_err() {
        tracing::debug!("a rustls crypto provider was already installed; keeping it");
    }
}

/// rustls's `ring` provider, the one this project's TLS uses everywhere. rustls 0.23.48
/// deprecates it for lacking post-quantum key exchange; it stays until the project moves
/// to a provider that has it.
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// A server config that presents `cert`/`key` and requires every client to present a
/// certificate signed by a CA in `ca` (mutual TLS).
///
/// `ca` may be a bundle of several CA certificates; during a CA rotation it holds the
/// old and the new CA. The files are read and checked now (the key must match the
/// certificate), so a bad path fails at start-up with the path in the error.
pub fn server_tls(ca: &Path, cert: &Path, key: &Path) -> Result<ServerTlsConfig> {
    install_crypto_provider();
    let ca_pem = read_cert_pem(ca)?;
    let identity = read_identity(cert, key)?;
    Ok(ServerTlsConfig::new()
        .identity(identity)
        .client_ca_root(Certificate::from_pem(ca_pem))
        .client_auth_optional(false)
        .timeout(HANDSHAKE_TIMEOUT))
}

/// A client config that presents `cert`/`key` and accepts only a server whose
/// certificate is signed by a CA in `ca` and valid for `domain` (a DNS SAN such as
/// `node2`, or an IP SAN such as `127.0.0.1`), whatever address is dialled.
pub fn client_tls(ca: &Path, cert: &Path, key: &Path, domain: &str) -> Result<ClientTlsConfig> {
    install_crypto_provider();
    let ca_pem = read_cert_pem(ca)?;
    let identity = read_identity(cert, key)?;
    Ok(ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .identity(identity)
        .domain_name(domain)
        .timeout(HANDSHAKE_TIMEOUT))
}

/// The identity of the peer that sent `req`, from its TLS client certificate.
///
/// - no certificate (plaintext, or a transport that does not expose it):
///   `UNAUTHENTICATED`;
/// - a certificate that names no Sutra identity: `PERMISSION_DENIED`, since the CA
///   vouched for the peer but not for any role.
pub fn peer_identity<T>(req: &tonic::Request<T>) -> Result<Identity, tonic::Status> {
    let certs = req.peer_certs();
    let Some(leaf) = certs.as_deref().and_then(|certs| certs.first()) else {
        tracing::debug!(remote = ?req.remote_addr(), "request without a client certificate");
        return Err(tonic::Status::unauthenticated(
            "a client certificate signed by the cluster CA is required",
        ));
    };
    if let Some(id) = cached_identity(leaf) {
        return Ok(id);
    }
    let id = identity_from_der(leaf).map_err(|e| {
        tracing::warn!(remote = ?req.remote_addr(), error = %e, "client certificate names no Sutra identity");
        tonic::Status::permission_denied(format!(
            "client certificate names no Sutra identity: {e}"
        ))
    })?;
    remember_identity(leaf, &id);
    Ok(id)
}

/// Identities of the certificates seen lately, by DER bytes. Parsing X.509 costs more
/// than the rest of a small request, and a connection presents the same certificate on
/// every call. A certificate's bytes fix its identity, so an entry never goes stale;
/// validity and the CA were checked by the TLS handshake before any request arrives.
static IDENTITIES: LazyLock<Mutex<HashMap<Vec<u8>, Identity>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// At most this many certificates are remembered; the map starts afresh when full.
const MAX_REMEMBERED: usize = 1024;

fn cached_identity(der: &[u8]) -> Option<Identity> {
    IDENTITIES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(der)
        .cloned()
}

fn remember_identity(der: &[u8], id: &Identity) {
    let mut map = IDENTITIES.lock().unwrap_or_else(PoisonError::into_inner);
    if map.len() >= MAX_REMEMBERED {
        map.clear();
    }
    map.insert(der.to_vec(), id.clone());
}

/// Reads a PEM file of one or more certificates, refusing a file with none.
fn read_cert_pem(path: &Path) -> Result<Vec<u8>> {
    let pem = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_certs(path, &pem)?;
    Ok(pem)
}

/// Every certificate of a PEM text, refusing one with none.
pub(crate) fn parse_certs(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Pem {
            path: path.to_owned(),
            reason: format!("unreadable PEM certificate: {e}"),
        })?;
    if certs.is_empty() {
        return Err(Error::Pem {
            path: path.to_owned(),
            reason: "no CERTIFICATE block".to_owned(),
        });
    }
    Ok(certs)
}

/// Reads a certificate chain and its key, and checks that they belong together:
/// rustls would find out too, but only when tonic builds the config, with an error
/// that names neither file.
fn read_identity(cert: &Path, key: &Path) -> Result<tonic::transport::Identity> {
    let cert_pem = std::fs::read(cert).map_err(|e| Error::io(cert, e))?;
    let chain = parse_certs(cert, &cert_pem)?;
    let key_pem = std::fs::read(key).map_err(|e| Error::io(key, e))?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| Error::Pem {
        path: key.to_owned(),
        reason: format!("no usable PRIVATE KEY block: {e}"),
    })?;
    CertifiedKey::from_der(chain, key_der, &ring_provider()).map_err(|e| Error::KeyMismatch {
        cert: cert.to_owned(),
        key: key.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(tonic::transport::Identity::from_pem(cert_pem, key_pem))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request that did not come over TLS has no certificate and is refused as
    /// UNAUTHENTICATED, not let through.
    #[test]
    fn no_certificate_is_unauthenticated() {
        let status = peer_identity(&tonic::Request::new(())).expect_err("no TLS, no identity");
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
    }
}
