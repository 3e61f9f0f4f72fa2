//! [`Client`]: writes and reads against a cluster, whichever node leads. The type and
//! what its calls share are here; its API is in `write.rs` (concepts, edges, batches),
//! `read.rs` (get, scan, neighbors, search) and `ops.rs` (health, stats, flush).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::call::Calls;
use crate::config::ClientConfig;
use crate::connect::{Connector, Error};
use crate::error::ClientError;
use crate::router::Router;

mod ops;
mod read;
mod write;

pub use ops::NodeResult;

/// A client of a Sutra cluster.
///
/// **Writes** ([`put`](Self::put), [`delete`](Self::delete), [`put_edge`](Self::put_edge),
/// [`delete_edge`](Self::delete_edge), [`batch`](Self::batch)) go to the node believed to
/// lead; a not-leader answer names the leader and the client goes there next. Every write
/// carries this client's id and a fresh sequence, kept across retries, so a retry after a
/// lost answer or a failover is answered from the cluster's session table instead of
/// being applied twice: that is what makes retrying writes safe. The version of the last
/// write is kept as the session token for read-your-writes (`SESSION`).
///
/// **Reads** ([`get`](Self::get), [`scan`](Self::scan), [`neighbors`](Self::neighbors),
/// [`search`](Self::search)) take [`ReadOptions`]: `LINEARIZABLE` and `LEASE` reads go to
/// the leader, `SESSION`, `BOUNDED` and `STALE` reads go to every configured node in turn
/// and move to the leader when a node refuses. Results carry the [`ReadMeta`] saying
/// which node served them. Reads retry on UNAVAILABLE.
///
/// **Deadlines.** Every call ends within its deadline ([`CallOptions::deadline`],
/// [`ReadOptions::deadline`], else [`ClientConfig::request_timeout`]), retries included;
/// each attempt sends the time left to the node as its gRPC timeout. An attempt that gets
/// no answer within [`ClientConfig::attempt_timeout`] moves on to another node. Running out
/// yields [`ClientError::DeadlineExceeded`].
///
/// **Operations** ([`health`](Self::health), [`stats`](Self::stats),
/// [`flush`](Self::flush) and their `_all` forms) concern one node and are not retried.
///
/// [`CallOptions::deadline`]: crate::CallOptions::deadline
/// [`ReadMeta`]: sutra_proto::storage::ReadMeta
/// [`ReadOptions`]: crate::ReadOptions
/// [`ReadOptions::deadline`]: crate::ReadOptions::deadline
#[derive(Debug)]
pub struct Client {
    router: Router,
    calls: Calls,
    client_id: String,
    sequence: AtomicU64,
    last_version: AtomicU64,
}

static INSTANCES: AtomicU64 = AtomicU64::new(0);

impl Client {
    /// A client for `config` (connections are made on first use).
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        if config.endpoints.is_empty() {
            return Err(Error::Endpoint {
                endpoint: String::new(),
                reason: "no endpoints configured".into(),
            }
            .into());
        }
        let ClientConfig {
            endpoints,
            tls,
            server_name,
            client_id,
            request_timeout,
            attempt_timeout,
        } = config;
        let connector = Connector::new(&tls, server_name.as_deref())?;
        let client_id = client_id.unwrap_or_else(|| {
            let n = INSTANCES.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            format!("sdk-{}-{nanos:x}-{n}", std::process::id())
        });
        Ok(Self {
            router: Router::new(connector, endpoints),
            calls: Calls::new(request_timeout, attempt_timeout),
            client_id,
            sequence: AtomicU64::new(0),
            last_version: AtomicU64::new(0),
        })
    }

    /// The id every write of this client carries.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The configured endpoints.
    pub fn endpoints(&self) -> &[String] {
        self.router.endpoints()
    }

    /// The version of this client's last acknowledged write (0 before any). `SESSION`
    /// reads of this client wait for it automatically; another client can pass it as
    /// [`ReadOptions::session_index`] to read this client's writes.
    ///
    /// [`ReadOptions::session_index`]: crate::ReadOptions::session_index
    pub fn session_token(&self) -> u64 {
        self.last_version.load(Ordering::Acquire)
    }
}
