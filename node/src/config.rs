//! Node configuration: one struct, from flags and `SUTRA_*` environment, or from a TOML
//! file.
//!
//! Precedence (etcd's rule): when `--config FILE` is given, the file is the whole
//! configuration and other flags and environment variables are ignored (a warning
//! names them); otherwise flags override environment variables, which override the
//! defaults. Every field's doc ends with its default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `max-content-bytes` when the bootstrapping node gives none.
pub const DEFAULT_MAX_CONTENT_BYTES: usize = sutra_proto::limits::DEFAULT_MAX_CONTENT_BYTES;

/// One member of the initial cluster: `ID=RAFT_ADDR/API_ADDR`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MemberSpec {
    /// Node id (≥ 1).
    pub id: u64,
    /// host:port of its Raft (peer) endpoint.
    pub raft_addr: String,
    /// host:port of its client API endpoint.
    pub api_addr: String,
}

impl FromStr for MemberSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?}: expected ID=RAFT_HOST:PORT/API_HOST:PORT");
        let (id, addrs) = s.split_once('=').ok_or_else(bad)?;
        let (raft_addr, api_addr) = addrs.split_once('/').ok_or_else(bad)?;
        let id = id.trim().parse().map_err(|_| bad())?;
        Ok(Self {
            id,
            raft_addr: raft_addr.trim().to_string(),
            api_addr: api_addr.trim().to_string(),
        })
    }
}

impl std::fmt::Display for MemberSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}/{}", self.id, self.raft_addr, self.api_addr)
    }
}

/// Where to dial one peer instead of the Raft address the membership stores for it:
/// `ID=HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerDial {
    /// The peer's node id (≥ 1).
    pub id: u64,
    /// host:port this node dials to reach that peer's Raft endpoint.
    pub addr: String,
}

impl FromStr for PeerDial {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?}: expected ID=HOST:PORT");
        let (id, addr) = s.split_once('=').ok_or_else(bad)?;
        let id = id.trim().parse().map_err(|_| bad())?;
        Ok(Self {
            id,
            addr: addr.trim().to_string(),
        })
    }
}

impl std::fmt::Display for PeerDial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.id, self.addr)
    }
}

/// `peer-dial` in a file: a table `{ "2" = "host:port" }` or a list `["2=host:port"]`;
/// written back as the table.
mod peer_dial_serde {
    use std::collections::BTreeMap;
    use std::fmt;

    use serde::de::{self, MapAccess, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    use super::PeerDial;

    pub fn serialize<S: Serializer>(dials: &[PeerDial], s: S) -> Result<S::Ok, S::Error> {
        // Keys are strings: TOML table keys are.
        s.collect_map(dials.iter().map(|d| (d.id.to_string(), &d.addr)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<PeerDial>, D::Error> {
        d.deserialize_any(DialsVisitor)
    }

    struct DialsVisitor;

    impl<'de> Visitor<'de> for DialsVisitor {
        type Value = Vec<PeerDial>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(r#"a table { "ID" = "HOST:PORT" } or a list ["ID=HOST:PORT"]"#)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            // A BTreeMap first: ids in order, whatever order the file lists them in.
            let mut out = BTreeMap::new();
            while let Some((key, addr)) = map.next_entry::<String, String>()? {
                let id: u64 = key.trim().parse().map_err(|_| {
                    de::Error::custom(format!("peer-dial: key {key:?} is not a node id"))
                })?;
                if out.insert(id, addr).is_some() {
                    return Err(de::Error::custom(format!(
                        "peer-dial: node {id} listed twice"
                    )));
                }
            }
            Ok(out
                .into_iter()
                .map(|(id, addr)| PeerDial { id, addr })
                .collect())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                out.push(
                    item.parse::<PeerDial>()
                        .map_err(|e| de::Error::custom(format!("peer-dial: {e}")))?,
                );
            }
            Ok(out)
        }
    }
}

/// Whether `addr` looks like `host:port` (a name, an IPv4 address or a bracketed IPv6
/// address, and a port 1..=65535).
fn is_host_port(addr: &str) -> bool {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return false;
    };
    let host_ok = if let Some(v6) = host.strip_prefix('[') {
        v6.strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    };
    host_ok && port.parse::<u16>().is_ok_and(|p| p != 0)
}

/// Everything a node needs to start.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct NodeConfig {
    /// This node's id, unique in the cluster, ≥ 1. Default: 1.
    #[arg(long, env = "SUTRA_NODE_ID", default_value_t = 1)]
    pub node_id: u64,

    /// Directory for all state: `raft/` (the Raft log, RocksDB) and `sm/` (the storage
    /// engine). Created if missing. Default: `data`.
    #[arg(long, env = "SUTRA_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Listen address of the client API (`sutra.storage`, `sutra.cluster`, health,
    /// reflection). Default: `0.0.0.0:50051`, the original server's port.
    #[arg(long, env = "SUTRA_API_LISTEN", default_value = "0.0.0.0:50051")]
    pub api_listen: SocketAddr,

    /// host:port other nodes and clients use to reach the client API. Default: the
    /// listen address.
    #[arg(long, env = "SUTRA_API_ADVERTISE")]
    pub api_advertise: Option<String>,

    /// Listen address of the Raft peer endpoint (mutual TLS, nodes only).
    /// Default: `0.0.0.0:50052`.
    #[arg(long, env = "SUTRA_RAFT_LISTEN", default_value = "0.0.0.0:50052")]
    pub raft_listen: SocketAddr,

    /// host:port other nodes use to reach the Raft endpoint. Default: the listen address.
    #[arg(long, env = "SUTRA_RAFT_ADVERTISE")]
    pub raft_advertise: Option<String>,

    /// The initial voters, `ID=RAFT_ADDR/API_ADDR`, comma-separated. On first start the
    /// lowest id among them initialises the cluster; a node that has state never
    /// re-initialises, and a fresh node given the same list joins. Leave empty for a
    /// node that will be added later as a learner. Default: none.
    #[arg(long, env = "SUTRA_INITIAL_MEMBERS", value_delimiter = ',')]
    pub initial_members: Vec<MemberSpec>,

    /// Addresses to dial peers at instead of the Raft address the membership stores for
    /// them, `ID=HOST:PORT`: the flag repeated, or comma-separated; in a file a table
    /// `peer-dial = { "2" = "host:port" }` or a list `["2=host:port"]`. For NAT or overlay
    /// networks where a peer's advertised address does not reach it from here, and for
    /// test proxies. Forwarded writes and ReadIndex calls to the leader use it too. The
    /// peer's certificate is still checked for `sutra-node<ID>`, whatever the address.
    /// Default: none.
    #[arg(long, env = "SUTRA_PEER_DIAL", value_delimiter = ',')]
    #[serde(with = "peer_dial_serde")]
    pub peer_dial: Vec<PeerDial>,

    /// PEM file of the cluster CA that signs every node and client certificate.
    /// Required unless `insecure`. Default: none.
    #[arg(long, env = "SUTRA_TLS_CA")]
    pub tls_ca: Option<PathBuf>,

    /// PEM certificate of this node (URI SAN `sutra://node/<id>`). Default: none.
    #[arg(long, env = "SUTRA_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of this node's certificate. Default: none.
    #[arg(long, env = "SUTRA_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Serve and dial in plaintext, with no authentication at all. For local
    /// experiments only; the node warns loudly at start. Both listen addresses must then
    /// be loopback unless `insecure-listen-any` is set too. Default: false.
    #[arg(long, env = "SUTRA_INSECURE")]
    pub insecure: bool,

    /// With `insecure`, allow listen addresses other than loopback: anyone who can reach
    /// them may then read, write and reconfigure the cluster. Default: false.
    #[arg(long, env = "SUTRA_INSECURE_LISTEN_ANY")]
    pub insecure_listen_any: bool,

    /// Leader heartbeat interval in ms. Default: 50.
    #[arg(long, env = "SUTRA_HEARTBEAT_MS", default_value_t = 50)]
    pub heartbeat_ms: u64,

    /// Lower bound of the randomised election timeout in ms. Default: 150.
    #[arg(long, env = "SUTRA_ELECTION_TIMEOUT_MIN_MS", default_value_t = 150)]
    pub election_timeout_min_ms: u64,

    /// Upper bound of the randomised election timeout in ms. Default: 250.
    #[arg(long, env = "SUTRA_ELECTION_TIMEOUT_MAX_MS", default_value_t = 250)]
    pub election_timeout_max_ms: u64,

    /// Take a snapshot (engine checkpoint) after this many applied entries; the log is
    /// then purged behind it. Default: 20000.
    #[arg(long, env = "SUTRA_SNAPSHOT_EVERY_ENTRIES", default_value_t = 20_000)]
    pub snapshot_every_entries: u64,

    /// Log entries kept behind the last snapshot for slow followers. Default: 5000.
    #[arg(long, env = "SUTRA_LOG_KEEP_ENTRIES", default_value_t = 5_000)]
    pub log_keep_entries: u64,

    /// Cluster parameter: length of every embedding. Cluster parameters are fixed when
    /// the cluster bootstraps, from the bootstrapping node's values, and replicated; on
    /// any other node a value given here must equal the cluster's, or the node refuses to
    /// run (naming both), and an unset one adopts the cluster's. Default: 768 when this
    /// node bootstraps, else the cluster's.
    #[arg(long, env = "SUTRA_VECTOR_DIMENSION")]
    pub vector_dimension: Option<u32>,

    /// Cluster parameter: most exactly-once sessions one certificate name may hold in the
    /// session table: beyond it, a client's new session drops that caller's own least
    /// recently used one, so one writer cannot evict the others' sessions. Default: a
    /// sixteenth of `max-sessions` when this node bootstraps, else the cluster's.
    #[arg(long, env = "SUTRA_MAX_SESSIONS_PER_OWNER")]
    pub max_sessions_per_owner: Option<u32>,

    /// Cluster parameter: largest concept content in bytes. Default: 1048576 when this
    /// node bootstraps, else the cluster's.
    #[arg(long, env = "SUTRA_MAX_CONTENT_BYTES")]
    pub max_content_bytes: Option<usize>,

    /// Cluster parameter: most operations in one batch. Default: 1000 when this node
    /// bootstraps, else the cluster's.
    #[arg(long, env = "SUTRA_MAX_BATCH_OPS")]
    pub max_batch_ops: Option<usize>,

    /// Cluster parameter: a client session idle for longer than this, in log time, is
    /// forgotten. Default: 86400000 (24 h) when this node bootstraps, else the cluster's.
    #[arg(long, env = "SUTRA_SESSION_TTL_MS")]
    pub session_ttl_ms: Option<u64>,

    /// Cluster parameter: most client sessions remembered. Default: 100000 when this node
    /// bootstraps, else the cluster's.
    #[arg(long, env = "SUTRA_MAX_SESSIONS")]
    pub max_sessions: Option<u32>,

    /// Cluster parameter: the cluster quota in bytes of data file; the leader refuses
    /// writes that would grow the data past it (RESOURCE_EXHAUSTED). Default: 8589934592
    /// (8 GiB) when this node bootstraps, else the cluster's.
    #[arg(long, env = "SUTRA_QUOTA_BYTES")]
    pub quota_bytes: Option<u64>,

    /// This node's largest data file in bytes: the address space reserved for it. Must be
    /// at least the cluster quota. Default: 68719476736 (64 GiB).
    #[arg(long, env = "SUTRA_DATA_FILE_LIMIT_BYTES", default_value_t = MAX_DATA_FILE_BYTES)]
    pub data_file_limit_bytes: u64,

    /// The data file grows by at least this many bytes at a time (allocated, so a full
    /// disk fails the growth, not a write into the mapping). Default: 67108864 (64 MiB).
    #[arg(long, env = "SUTRA_DATA_FILE_GROW_BYTES", default_value_t = 64 << 20)]
    pub data_file_grow_bytes: u64,

    /// When the free space of the data directory's file system falls below this, the node
    /// raises the replicated NOSPACE alarm and the cluster takes no more writes that grow
    /// the data until an operator disarms it. Leave room for a compaction (a copy of the
    /// live data) and for the Raft log. Default: 1073741824 (1 GiB).
    #[arg(long, env = "SUTRA_MIN_FREE_DISK_BYTES", default_value_t = 1 << 30)]
    pub min_free_disk_bytes: u64,

    /// Largest peer gRPC message in bytes; client messages may use all but 9 MiB of it
    /// (entries ride in peer messages with others). Default: 67108864 (64 MiB).
    #[arg(long, env = "SUTRA_MAX_MESSAGE_BYTES", default_value_t = 64 << 20)]
    pub max_message_bytes: usize,

    /// Most connections open at once on the client port. A connection over the limit is
    /// closed as soon as it is accepted. Default: 1024.
    #[arg(long, env = "SUTRA_MAX_CLIENT_CONNECTIONS", default_value_t = 1024)]
    pub max_client_connections: usize,

    /// Most connections open at once on the peer port (each peer keeps a few). Default: 128.
    #[arg(long, env = "SUTRA_MAX_PEER_CONNECTIONS", default_value_t = 128)]
    pub max_peer_connections: usize,

    /// Most calls (HTTP/2 streams) in flight on one client connection; a client's further
    /// calls wait on its side. Default: 128.
    #[arg(long, env = "SUTRA_MAX_STREAMS_PER_CONNECTION", default_value_t = 128)]
    pub max_streams_per_connection: u32,

    /// Most calls in flight on one peer connection. A follower relays every write its
    /// clients send over one connection to the leader, so this is higher than the client
    /// port's. Default: 512.
    #[arg(
        long,
        env = "SUTRA_MAX_PEER_STREAMS_PER_CONNECTION",
        default_value_t = 512
    )]
    pub max_peer_streams_per_connection: u32,

    /// Deadline of every call on the client port, in ms, unless the call's own
    /// `grpc-timeout` is shorter: DEADLINE_EXCEEDED after it. The peer port allows the
    /// longer of this and a whole snapshot transfer. Default: 30000.
    #[arg(long, env = "SUTRA_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,

    /// Longest a TLS handshake may take on either port, in ms; the connection is closed
    /// after it. Default: 10000.
    #[arg(long, env = "SUTRA_TLS_HANDSHAKE_TIMEOUT_MS", default_value_t = 10_000)]
    pub tls_handshake_timeout_ms: u64,

    /// Interval of the HTTP/2 PINGs both ports send on a connection that has been quiet,
    /// in ms. Default: 10000.
    #[arg(
        long,
        env = "SUTRA_HTTP2_KEEPALIVE_INTERVAL_MS",
        default_value_t = 10_000
    )]
    pub http2_keepalive_interval_ms: u64,

    /// How long a PING may go unanswered before the connection is closed, in ms.
    /// Default: 10000.
    #[arg(
        long,
        env = "SUTRA_HTTP2_KEEPALIVE_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub http2_keepalive_timeout_ms: u64,

    /// Most `Search` calls and `Scan`s with a limit above 1000 running at once on this
    /// node; more are refused with RESOURCE_EXHAUSTED, not queued. Default: 16.
    #[arg(long, env = "SUTRA_MAX_CONCURRENT_SEARCHES", default_value_t = 16)]
    pub max_concurrent_searches: usize,

    /// Largest snapshot this node accepts from a leader, in bytes; a header announcing
    /// more is refused with RESOURCE_EXHAUSTED. At most `data-file-limit-bytes`.
    /// Default: 68719476736 (64 GiB, the data file's maximum).
    #[arg(long, env = "SUTRA_MAX_SNAPSHOT_BYTES", default_value_t = MAX_DATA_FILE_BYTES)]
    pub max_snapshot_bytes: u64,

    /// Longest one snapshot transfer may take from its header to its last chunk, in ms
    /// (each chunk must also come within 10 s); DEADLINE_EXCEEDED after it.
    /// Default: 1800000 (30 min).
    #[arg(
        long,
        env = "SUTRA_SNAPSHOT_RECEIVE_TIMEOUT_MS",
        default_value_t = 1_800_000
    )]
    pub snapshot_receive_timeout_ms: u64,

    /// Plain-HTTP monitoring listener (`/metrics`, `/livez`, `/readyz`, `/health`, `/`);
    /// off unless set. It serves no data and changes nothing.
    #[arg(long, env = "SUTRA_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// A client call that takes at least this long, in ms, leaves a `slow_request` line
    /// in the log: its method, status, duration and the time each stage of a write took
    /// (relay, propose, apply). 0 turns the line off. Default: 1000.
    #[arg(long, env = "SUTRA_SLOW_REQUEST_MS", default_value_t = 1000)]
    pub slow_request_ms: u64,
}

/// The default of `data-file-limit-bytes` (the engine's default mapping), and of the
/// largest snapshot accepted: no snapshot can be larger than the data file.
pub const MAX_DATA_FILE_BYTES: u64 = 64 << 30;

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            node_id: 1,
            data_dir: PathBuf::from("data"),
            api_listen: "0.0.0.0:50051".parse().expect("valid literal"),
            api_advertise: None,
            raft_listen: "0.0.0.0:50052".parse().expect("valid literal"),
            raft_advertise: None,
            initial_members: Vec::new(),
            peer_dial: Vec::new(),
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            insecure: false,
            insecure_listen_any: false,
            heartbeat_ms: 50,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 250,
            snapshot_every_entries: 20_000,
            log_keep_entries: 5_000,
            vector_dimension: None,
            max_sessions_per_owner: None,
            max_content_bytes: None,
            max_batch_ops: None,
            session_ttl_ms: None,
            max_sessions: None,
            quota_bytes: None,
            data_file_limit_bytes: MAX_DATA_FILE_BYTES,
            data_file_grow_bytes: 64 << 20,
            min_free_disk_bytes: 1 << 30,
            max_message_bytes: 64 << 20,
            max_client_connections: 1024,
            max_peer_connections: 128,
            max_streams_per_connection: 128,
            max_peer_streams_per_connection: 512,
            request_timeout_ms: 30_000,
            tls_handshake_timeout_ms: 10_000,
            http2_keepalive_interval_ms: 10_000,
            http2_keepalive_timeout_ms: 10_000,
            max_concurrent_searches: 16,
            max_snapshot_bytes: MAX_DATA_FILE_BYTES,
            snapshot_receive_timeout_ms: 1_800_000,
            metrics_listen: None,
            slow_request_ms: 1000,
        }
    }
}

/// A configuration that passed [`NodeConfig::validate`].
#[derive(Debug, Clone)]
pub struct ValidConfig(NodeConfig);

impl std::ops::Deref for ValidConfig {
    type Target = NodeConfig;
    fn deref(&self) -> &NodeConfig {
        &self.0
    }
}

/// TLS material of a node.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Cluster CA.
    pub ca: PathBuf,
    /// This node's certificate.
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {field}: {reason}")]
pub struct ConfigError {
    /// The offending setting, as spelled in the file.
    pub field: &'static str,
    /// What is wrong.
    pub reason: String,
}

pub(crate) fn err(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field,
        reason: reason.into(),
    }
}

impl NodeConfig {
    /// Reads a TOML configuration file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err("config", format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| err("config", format!("{}: {e}", path.display())))
    }

    /// Checks values and the relations between them.
    pub fn validate(self) -> Result<ValidConfig, ConfigError> {
        if self.node_id == 0 {
            return Err(err("node-id", "must be at least 1"));
        }
        if self.heartbeat_ms == 0 {
            return Err(err("heartbeat-ms", "must be at least 1"));
        }
        if self.election_timeout_min_ms < 3 * self.heartbeat_ms {
            return Err(err(
                "election-timeout-min-ms",
                format!(
                    "{} ms is less than three heartbeats ({} ms): followers would call elections while the leader is fine",
                    self.election_timeout_min_ms,
                    3 * self.heartbeat_ms
                ),
            ));
        }
        if self.election_timeout_max_ms <= self.election_timeout_min_ms {
            return Err(err(
                "election-timeout-max-ms",
                "must be greater than election-timeout-min-ms",
            ));
        }
        crate::params::validate(&self)?;
        let content = self.max_content_bytes.unwrap_or(DEFAULT_MAX_CONTENT_BYTES);
        if self.max_message_bytes < content + (64 << 10) {
            return Err(err(
                "max-message-bytes",
                "must exceed max-content-bytes by at least 64 KiB",
            ));
        }
        self.validate_limits()?;
        self.validate_insecure_listen()?;
        let mut ids = std::collections::BTreeSet::new();
        for m in &self.initial_members {
            if m.id == 0 || !ids.insert(m.id) {
                return Err(err(
                    "initial-members",
                    format!("node id {} is zero or listed twice", m.id),
                ));
            }
        }
        if !self.initial_members.is_empty() && !ids.contains(&self.node_id) {
            return Err(err(
                "initial-members",
                format!("does not list this node ({})", self.node_id),
            ));
        }
        let mut dial_ids = std::collections::BTreeSet::new();
        for d in &self.peer_dial {
            if d.id == 0 || !dial_ids.insert(d.id) {
                return Err(err(
                    "peer-dial",
                    format!("node id {} is zero or listed twice", d.id),
                ));
            }
            if d.id == self.node_id {
                return Err(err(
                    "peer-dial",
                    format!("names this node ({}); a node never dials itself", d.id),
                ));
            }
            if !is_host_port(&d.addr) {
                return Err(err(
                    "peer-dial",
                    format!("node {}: {:?} is not HOST:PORT", d.id, d.addr),
                ));
            }
        }
        if !self.insecure {
            for (field, path) in [
                ("tls-ca", &self.tls_ca),
                ("tls-cert", &self.tls_cert),
                ("tls-key", &self.tls_key),
            ] {
                match path {
                    None => return Err(err(field, "required unless insecure = true")),
                    Some(p) if !p.is_file() => {
                        return Err(err(
                            field,
                            format!("{} is not a readable file", p.display()),
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(ValidConfig(self))
    }
}

impl ValidConfig {
    /// host:port of this node's client API as others reach it.
    pub fn api_advertise(&self) -> String {
        self.0
            .api_advertise
            .clone()
            .unwrap_or_else(|| self.0.api_listen.to_string())
    }

    /// host:port of this node's Raft endpoint as others reach it.
    pub fn raft_advertise(&self) -> String {
        self.0
            .raft_advertise
            .clone()
            .unwrap_or_else(|| self.0.raft_listen.to_string())
    }

    /// Dial overrides by peer id (`peer-dial`).
    pub fn peer_dial(&self) -> BTreeMap<u64, String> {
        self.0
            .peer_dial
            .iter()
            .map(|d| (d.id, d.addr.clone()))
            .collect()
    }

    /// TLS files, `None` in insecure mode.
    pub fn tls(&self) -> Option<TlsFiles> {
        match (
            &self.0.tls_ca,
            &self.0.tls_cert,
            &self.0.tls_key,
            self.0.insecure,
        ) {
            (Some(ca), Some(cert), Some(key), false) => Some(TlsFiles {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        }
    }

    /// Heartbeat interval.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.0.heartbeat_ms)
    }

    /// The configuration as TOML, for the start-up log. Holds paths, never key material.
    pub fn effective(&self) -> String {
        toml::to_string(&self.0).unwrap_or_else(|e| format!("<unprintable: {e}>"))
    }
}

#[path = "config_limits.rs"]
mod limits;

#[cfg(test)]
#[path = "config_test.rs"]
mod tests;
