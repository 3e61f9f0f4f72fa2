//! Validation of the limits on work per caller and of where plaintext may listen, and
//! the limits as the servers take them.

use std::time::Duration;

use sutra_raft::ServiceConfig;

use super::{ConfigError, NodeConfig, ValidConfig, err};

impl NodeConfig {
    /// The limits on work per caller: each must allow some work, and the request deadline
    /// must leave room for what a call may legitimately wait for.
    pub(super) fn validate_limits(&self) -> Result<(), ConfigError> {
        for (field, value) in [
            ("max-client-connections", self.max_client_connections as u64),
            ("max-peer-connections", self.max_peer_connections as u64),
            (
                "max-streams-per-connection",
                u64::from(self.max_streams_per_connection),
            ),
            (
                "max-peer-streams-per-connection",
                u64::from(self.max_peer_streams_per_connection),
            ),
            (
                "max-concurrent-searches",
                self.max_concurrent_searches as u64,
            ),
            ("tls-handshake-timeout-ms", self.tls_handshake_timeout_ms),
            (
                "http2-keepalive-interval-ms",
                self.http2_keepalive_interval_ms,
            ),
            (
                "http2-keepalive-timeout-ms",
                self.http2_keepalive_timeout_ms,
            ),
            ("max-snapshot-bytes", self.max_snapshot_bytes),
        ] {
            if value == 0 {
                return Err(err(field, "must be at least 1"));
            }
        }
        // A write to a new leader waits up to one lease for its first quorum, and a
        // follower waits up to one election timeout to learn the leader's address.
        if self.request_timeout_ms < self.election_timeout_max_ms {
            return Err(err(
                "request-timeout-ms",
                format!(
                    "{} ms is less than election-timeout-max-ms ({} ms): writes around an election would time out",
                    self.request_timeout_ms, self.election_timeout_max_ms
                ),
            ));
        }
        if self.max_snapshot_bytes > self.data_file_limit_bytes {
            return Err(err(
                "max-snapshot-bytes",
                format!(
                    "must be at most data-file-limit-bytes ({} bytes): no snapshot can be larger",
                    self.data_file_limit_bytes
                ),
            ));
        }
        let chunk_ms = ServiceConfig::default().snapshot_chunk_timeout.as_millis() as u64;
        if self.snapshot_receive_timeout_ms < chunk_ms {
            return Err(err(
                "snapshot-receive-timeout-ms",
                format!("must be at least the per-chunk timeout ({chunk_ms} ms)"),
            ));
        }
        Ok(())
    }

    /// Plaintext without authentication is for one machine: refuse to offer it beyond
    /// loopback unless the operator says so in a second flag.
    pub(super) fn validate_insecure_listen(&self) -> Result<(), ConfigError> {
        if !self.insecure || self.insecure_listen_any {
            return Ok(());
        }
        for (field, addr) in [
            ("api-listen", self.api_listen),
            ("raft-listen", self.raft_listen),
        ] {
            if !addr.ip().is_loopback() {
                return Err(err(
                    field,
                    format!(
                        "{addr} is not a loopback address, and --insecure serves without TLS or authentication: \
                         listen on 127.0.0.1 or [::1], or add --insecure-listen-any to expose it anyway"
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl ValidConfig {
    /// The duration from which a client call is logged as slow (`None`: never).
    pub fn slow_request(&self) -> Option<Duration> {
        (self.slow_request_ms > 0).then(|| Duration::from_millis(self.slow_request_ms))
    }

    /// The deadline of a client call (`request-timeout-ms`).
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The deadline of a peer call. InstallSnapshot is one call that lasts the whole
    /// transfer and the install after it (which its sender allows
    /// `NetworkConfig::snapshot_install_timeout`), so the peer port allows that much;
    /// peers put a shorter `grpc-timeout` on every unary call, which wins.
    pub fn peer_request_timeout(&self) -> Duration {
        let install = sutra_raft::NetworkConfig::default().snapshot_install_timeout;
        self.request_timeout()
            .max(self.snapshot_receive_timeout() + install)
    }

    /// `tls-handshake-timeout-ms`.
    pub fn tls_handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.tls_handshake_timeout_ms)
    }

    /// `http2-keepalive-interval-ms`.
    pub fn http2_keepalive_interval(&self) -> Duration {
        Duration::from_millis(self.http2_keepalive_interval_ms)
    }

    /// `http2-keepalive-timeout-ms`.
    pub fn http2_keepalive_timeout(&self) -> Duration {
        Duration::from_millis(self.http2_keepalive_timeout_ms)
    }

    /// `snapshot-receive-timeout-ms`.
    pub fn snapshot_receive_timeout(&self) -> Duration {
        Duration::from_millis(self.snapshot_receive_timeout_ms)
    }
}
