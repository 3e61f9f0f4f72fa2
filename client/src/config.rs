//! [`ClientConfig`]: how a [`Client`](crate::Client) reaches a cluster, and how long its
//! calls and their attempts may take.

use std::time::Duration;

use crate::TlsFiles;

/// How to reach a cluster.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Client API endpoints (`host:port`) of some or all nodes. Reads that any node may
    /// serve are spread over all of them.
    pub endpoints: Vec<String>,
    /// CA and client certificate.
    pub tls: TlsFiles,
    /// Name the nodes' certificates are checked against. Default: `localhost`.
    pub server_name: Option<String>,
    /// Identity of this client's writes for exactly-once (with a sequence per write).
    /// Default: a fresh id per `Client`.
    pub client_id: Option<String>,
    /// Longest one call may take, retries included, unless the call's options set a
    /// deadline. Default: 10 s.
    pub request_timeout: Duration,
    /// Longest one attempt on one node may take before the call moves on to another
    /// node (a paused or cut-off leader accepts connections but never answers). A write
    /// retried this way keeps its exactly-once identity, so it is applied at most once.
    /// Each further attempt of the call that times out gets twice as long, so a call that
    /// is slow but progressing (a large batch, a stalled disk) still finishes within its
    /// deadline. Default: 1 s, far above a healthy cluster's write latency.
    pub attempt_timeout: Duration,
}

impl ClientConfig {
    /// Defaults for everything but the endpoints and TLS files.
    pub fn new(endpoints: Vec<String>, tls: TlsFiles) -> Self {
        Self {
            endpoints,
            tls,
            server_name: None,
            client_id: None,
            request_timeout: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(1),
        }
    }
}
