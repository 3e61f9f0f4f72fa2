//! [`Connector`]: TLS channels to nodes, from the cluster CA and a client certificate
//! ([`TlsFiles`]), and why a connection could not be made ([`Error`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sutra_proto::cluster::cluster_service_client::ClusterServiceClient;
use sutra_proto::storage::storage_service_client::StorageServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A TLS file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The endpoint is not `host:port`.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    Endpoint {
        /// What was given.
        endpoint: String,
        /// What is wrong.
        reason: String,
    },
    /// The transport failed (connection refused, TLS handshake, ...).
    #[error("connecting to {endpoint}: {source}")]
    Connect {
        /// The node.
        endpoint: String,
        /// The cause.
        source: tonic::transport::Error,
    },
}

/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;

/// TLS material of a client.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The cluster CA (PEM).
    pub ca: PathBuf,
    /// The client certificate (PEM), carrying `sutra://client/<role>/<name>`.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Opens TLS channels to nodes.
#[derive(Debug, Clone)]
pub struct Connector {
    tls: ClientTlsConfig,
    connect_timeout: Duration,
}

impl Connector {
    /// A connector presenting `files`' certificate and trusting their CA. Nodes are
    /// verified against the name `localhost` unless `server_name` is given (node
    /// certificates also carry `node<N>` and `sutra-node<N>`).
    pub fn new(files: &TlsFiles, server_name: Option<&str>) -> Result<Self> {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(&files.ca)?))
            .identity(Identity::from_pem(read(&files.cert)?, read(&files.key)?))
            .domain_name(server_name.unwrap_or("localhost"));
        Ok(Self {
            tls,
            connect_timeout: Duration::from_secs(3),
        })
    }

    /// Connects to the node at `host:port`.
    pub async fn channel(&self, endpoint: &str) -> Result<Channel> {
        let bad = |reason: String| Error::Endpoint {
            endpoint: endpoint.to_string(),
            reason,
        };
        if endpoint
            .rsplit_once(':')
            .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        {
            return Err(bad("expected host:port".into()));
        }
        let ep = Endpoint::from_shared(format!("https://{endpoint}"))
            .map_err(|e| bad(e.to_string()))?
            .tls_config(self.tls.clone())
            .map_err(|e| bad(e.to_string()))?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true);
        ep.connect().await.map_err(|source| Error::Connect {
            endpoint: endpoint.to_string(),
            source,
        })
    }

    /// The storage API of the node at `endpoint`.
    pub async fn storage(&self, endpoint: &str) -> Result<StorageServiceClient<Channel>> {
        Ok(StorageServiceClient::new(self.channel(endpoint).await?))
    }

    /// The cluster (operator) API of the node at `endpoint`.
    pub async fn cluster(&self, endpoint: &str) -> Result<ClusterServiceClient<Channel>> {
        Ok(ClusterServiceClient::new(self.channel(endpoint).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tls_files_name_the_file() {
        let files = TlsFiles {
            ca: "/nonexistent/ca.pem".into(),
            cert: "c.pem".into(),
            key: "k.pem".into(),
        };
        let err = Connector::new(&files, None).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[tokio::test]
    async fn bad_endpoints_are_refused_before_dialing() {
        let dir = std::env::temp_dir();
        let pem = dir.join(format!("sutra-client-test-{}.pem", std::process::id()));
        std::fs::write(&pem, b"").unwrap();
        let files = TlsFiles {
            ca: pem.clone(),
            cert: pem.clone(),
            key: pem.clone(),
        };
        let c = Connector::new(&files, None).unwrap();
        for bad in ["", "host", "host:", ":50051", "host:99999"] {
            assert!(
                matches!(c.channel(bad).await, Err(Error::Endpoint { .. })),
                "{bad:?}"
            );
        }
        std::fs::remove_file(pem).unwrap();
    }
}
