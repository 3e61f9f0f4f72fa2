//! [`NetworkConfig`]: transport options of the peer network.

use std::collections::BTreeMap;
use std::time::Duration;

use openraft::network::RPCOption;
use sutra_proto::limits::MAX_SNAPSHOT_CHUNK_BYTES;
use tonic::transport::Endpoint;

use crate::types::NodeId;

/// Transport options of the peer network. The defaults suit a LAN or one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// Time allowed to establish a TCP (and TLS) connection. Default: 1 s.
    pub connect_timeout: Duration,
    /// Interval of HTTP/2 PING frames on an open connection, idle or not, to notice a peer
    /// that went away without closing it (power loss, partition). Default: 5 s.
    pub keepalive_interval: Duration,
    /// How long to wait for a PING acknowledgement before closing the connection.
    /// Default: 5 s.
    pub keepalive_timeout: Duration,
    /// Largest gRPC message sent or accepted, in bytes. An AppendEntries batch must fit: the
    /// log store reads at most 8 MiB of entries per batch plus the one entry that crosses
    /// it, so this must exceed 8 MiB plus the largest single client write. Default: 64 MiB.
    pub max_message_bytes: usize,
    /// Lower bound of a unary RPC's deadline. openraft asks for `RPCOption::soft_ttl()`
    /// (¾ of the heartbeat interval for AppendEntries), which a follower's fsync on a slow
    /// disk can exceed; a timeout there would only make openraft resend the same entries at
    /// once. Heartbeats, votes and leader transfers are bounded by openraft itself anyway.
    /// Default: 1 s.
    pub min_rpc_timeout: Duration,
    /// Bytes of snapshot data per InstallSnapshot chunk, 1..=1 MiB. Default: 1 MiB.
    pub snapshot_chunk_bytes: usize,
    /// A snapshot transfer fails with a timeout if the receiver takes no chunk for this long
    /// (the per-chunk deadline; the receiver applies the same on its side). Default: 10 s.
    pub snapshot_chunk_timeout: Duration,
    /// How long the receiver may take, after the last chunk, to verify and install the
    /// snapshot and answer. Default: 120 s.
    pub snapshot_install_timeout: Duration,
    /// Addresses to dial peers at instead of the `raft_addr` the membership stores for
    /// them (NAT or overlay networks, test proxies), by node id. Every call to that peer
    /// uses it: replication, votes, snapshots, and a follower's calls to its leader. The
    /// endpoint factory still gets the peer's id, so TLS checks the same identity.
    /// Default: none.
    pub peer_dial: BTreeMap<NodeId, String>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            keepalive_interval: Duration::from_secs(5),
            keepalive_timeout: Duration::from_secs(5),
            max_message_bytes: 64 << 20,
            min_rpc_timeout: Duration::from_secs(1),
            snapshot_chunk_bytes: MAX_SNAPSHOT_CHUNK_BYTES,
            snapshot_chunk_timeout: Duration::from_secs(10),
            snapshot_install_timeout: Duration::from_secs(120),
            peer_dial: BTreeMap::new(),
        }
    }
}

impl NetworkConfig {
    /// Checks the values and their relations.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_SNAPSHOT_CHUNK_BYTES).contains(&self.snapshot_chunk_bytes) {
            return Err(format!(
                "snapshot_chunk_bytes is {}; expected 1..={MAX_SNAPSHOT_CHUNK_BYTES}",
                self.snapshot_chunk_bytes
            ));
        }
        // A chunk, its framing and the header must fit one message.
        if self.max_message_bytes < self.snapshot_chunk_bytes + (64 << 10) {
            return Err(format!(
                "max_message_bytes ({}) must exceed snapshot_chunk_bytes ({}) by 64 KiB",
                self.max_message_bytes, self.snapshot_chunk_bytes
            ));
        }
        for (name, d) in [
            ("connect_timeout", self.connect_timeout),
            ("keepalive_interval", self.keepalive_interval),
            ("keepalive_timeout", self.keepalive_timeout),
            ("snapshot_chunk_timeout", self.snapshot_chunk_timeout),
            ("snapshot_install_timeout", self.snapshot_install_timeout),
        ] {
            if d.is_zero() {
                return Err(format!("{name} must be positive"));
            }
        }
        if let Some((id, _)) = self.peer_dial.iter().find(|(_, a)| a.trim().is_empty()) {
            return Err(format!("peer_dial: empty address for node {id}"));
        }
        Ok(())
    }

    /// Transport options on top of the caller's endpoint (which may carry TLS).
    pub(crate) fn apply(&self, endpoint: Endpoint) -> Endpoint {
        endpoint
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(self.keepalive_interval)
            .keep_alive_timeout(self.keepalive_timeout)
            .keep_alive_while_idle(true)
    }

    /// The deadline of a unary RPC.
    pub(crate) fn rpc_timeout(&self, option: &RPCOption) -> Duration {
        option.soft_ttl().max(self.min_rpc_timeout)
    }

    /// How long a snapshot transfer may go without the receiver taking a chunk.
    pub(crate) fn snapshot_idle_timeout(&self, option: &RPCOption) -> Duration {
        option.soft_ttl().max(self.snapshot_chunk_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        NetworkConfig::default().validate().unwrap();
        let bad = NetworkConfig {
            snapshot_chunk_bytes: MAX_SNAPSHOT_CHUNK_BYTES + 1,
            ..NetworkConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("snapshot_chunk_bytes"));
        let bad = NetworkConfig {
            max_message_bytes: 1 << 20,
            ..NetworkConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("max_message_bytes"));
        let bad = NetworkConfig {
            peer_dial: BTreeMap::from([(2, " ".to_string())]),
            ..NetworkConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("peer_dial"));
    }

    #[test]
    fn rpc_deadline_is_soft_ttl_with_a_floor() {
        let cfg = NetworkConfig {
            min_rpc_timeout: Duration::from_millis(100),
            ..NetworkConfig::default()
        };
        let short = RPCOption::new(Duration::from_millis(40));
        let long = RPCOption::new(Duration::from_secs(4));
        assert_eq!(cfg.rpc_timeout(&short), Duration::from_millis(100));
        assert_eq!(cfg.rpc_timeout(&long), Duration::from_secs(3));
    }
}
