//! [`Client`]: writes and reads against a cluster, whichever node leads.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sutra_proto::storage::storage_service_client::StorageServiceClient;
use sutra_proto::storage::{
    Concept, Consistency, DeleteConceptRequest, GetConceptRequest, PutConceptRequest, ReadOptions,
    WriteHeader, WriteResponse,
};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::{Connector, Error, TlsFiles, leader_hint};

/// How to reach a cluster.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Client API endpoints (`host:port`) of some or all nodes.
    pub endpoints: Vec<String>,
    /// CA and client certificate.
    pub tls: TlsFiles,
    /// Name the nodes' certificates are checked against. Default: `localhost`.
    pub server_name: Option<String>,
    /// Identity of this client's writes for exactly-once (with a sequence per write).
    /// Default: a fresh id per `Client`.
    pub client_id: Option<String>,
    /// Longest one call may take, retries included. Default: 10 s.
    pub request_timeout: Duration,
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
        }
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The cluster answered with an error that retrying cannot fix (invalid argument,
    /// failed precondition, permission denied, ...).
    #[error("{}: {}", .0.code(), .0.message())]
    Status(Status),
    /// No node answered successfully within the request timeout; the last error is kept.
    /// For a write the outcome is unknown: retrying it with the same sequence is safe.
    #[error("no answer within {timeout:?}; last error: {last}")]
    Timeout {
        /// The request timeout.
        timeout: Duration,
        /// The last failure seen.
        last: String,
    },
    /// A connection could not be set up (bad endpoint or TLS files).
    #[error(transparent)]
    Connect(#[from] Error),
}

const MIN_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// A client of a Sutra cluster.
///
/// Writes go to the node believed to lead; a not-leader answer names the leader and the
/// client goes there next. Every write carries this client's id and a fresh sequence,
/// kept across retries, so a retry after a lost answer or a failover is answered from the
/// cluster's session table instead of being applied twice: that is what makes retrying
/// writes safe. Reads retry on UNAVAILABLE. The version of the last write is kept as the
/// session token for read-your-writes ([`Consistency::Session`]).
#[derive(Debug)]
pub struct Client {
    connector: Connector,
    config: ClientConfig,
    client_id: String,
    sequence: AtomicU64,
    last_version: AtomicU64,
    leader: Mutex<Option<String>>,
    next: AtomicUsize,
    channels: Mutex<HashMap<String, Channel>>,
}

static INSTANCES: AtomicU64 = AtomicU64::new(0);

impl Client {
    /// A client for `config` (connections are made on first use).
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let connector = Connector::new(&config.tls, config.server_name.as_deref())?;
        let client_id = config.client_id.clone().unwrap_or_else(|| {
            let n = INSTANCES.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            format!("sdk-{}-{nanos:x}-{n}", std::process::id())
        });
        Ok(Self {
            connector,
            config,
            client_id,
            sequence: AtomicU64::new(0),
            last_version: AtomicU64::new(0),
            leader: Mutex::new(None),
            next: AtomicUsize::new(0),
            channels: Mutex::new(HashMap::new()),
        })
    }

    /// The id every write of this client carries.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The version of this client's last acknowledged write (0 before any): pass it as
    /// the session index of a `SESSION` read to read your own writes on any node.
    pub fn session_token(&self) -> u64 {
        self.last_version.load(Ordering::Acquire)
    }

    async fn storage(&self, endpoint: &str) -> Result<StorageServiceClient<Channel>, Error> {
        let cached = self
            .channels
            .lock()
            .expect("channel cache lock")
            .get(endpoint)
            .cloned();
        let channel = match cached {
            Some(c) => c,
            None => {
                let c = self.connector.channel(endpoint).await?;
                self.channels
                    .lock()
                    .expect("channel cache lock")
                    .insert(endpoint.to_string(), c.clone());
                c
            }
        };
        Ok(StorageServiceClient::new(channel))
    }

    fn target(&self) -> Option<String> {
        if let Some(l) = self.leader.lock().expect("leader lock").clone() {
            return Some(l);
        }
        let n = self.config.endpoints.len();
        (n > 0)
            .then(|| self.config.endpoints[self.next.fetch_add(1, Ordering::Relaxed) % n].clone())
    }

    /// Runs `call` against the leader until it succeeds, fails for good, or the request
    /// timeout passes.
    async fn with_retries<T, F, Fut>(&self, mut call: F) -> Result<T, ClientError>
    where
        F: FnMut(StorageServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let deadline = Instant::now() + self.config.request_timeout;
        let mut backoff = MIN_BACKOFF;
        let mut last = String::from("no endpoint configured");
        while Instant::now() < deadline {
            let Some(endpoint) = self.target() else { break };
            let remaining = deadline.saturating_duration_since(Instant::now());
            let attempt = async {
                let client = self
                    .storage(&endpoint)
                    .await
                    .map_err(|e| Status::unavailable(e.to_string()))?;
                call(client).await
            };
            match tokio_timeout(remaining, attempt).await {
                Ok(Ok(v)) => {
                    *self.leader.lock().expect("leader lock") = Some(endpoint);
                    return Ok(v);
                }
                Ok(Err(status)) if retryable(&status) => {
                    let hint = leader_hint(&status).and_then(|(_, addr)| addr);
                    *self.leader.lock().expect("leader lock") = hint;
                    if status.code() != Code::Unavailable
                        || !status.metadata().contains_key("sutra-leader-addr")
                    {
                        self.channels
                            .lock()
                            .expect("channel cache lock")
                            .remove(&endpoint);
                    }
                    last = format!("{endpoint}: {}: {}", status.code(), status.message());
                }
                Ok(Err(status)) => return Err(ClientError::Status(status)),
                Err(()) => last = format!("{endpoint}: attempt timed out"),
            }
            tokio_sleep(backoff.min(deadline.saturating_duration_since(Instant::now()))).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        Err(ClientError::Timeout {
            timeout: self.config.request_timeout,
            last,
        })
    }

    fn next_header(&self) -> WriteHeader {
        WriteHeader {
            client_id: self.client_id.clone(),
            sequence: self.sequence.fetch_add(1, Ordering::AcqRel) + 1,
        }
    }

    fn note_version(&self, v: u64) {
        self.last_version.fetch_max(v, Ordering::AcqRel);
    }

    /// Creates or replaces a concept, optionally only at `expected_version` (0 = must not
    /// exist). Retried through failovers; applied once.
    pub async fn put(
        &self,
        concept: Concept,
        expected_version: Option<u64>,
    ) -> Result<WriteResponse, ClientError> {
        let req = PutConceptRequest {
            header: Some(self.next_header()),
            concept: Some(concept),
            expected_version,
        };
        let resp = self
            .with_retries(|mut c| {
                let req = req.clone();
                async move { c.put_concept(req).await.map(|r| r.into_inner()) }
            })
            .await?;
        self.note_version(resp.version);
        Ok(resp)
    }

    /// Deletes a concept and its edges; returns whether it existed.
    pub async fn delete(
        &self,
        id: &str,
        expected_version: Option<u64>,
    ) -> Result<bool, ClientError> {
        let req = DeleteConceptRequest {
            header: Some(self.next_header()),
            id: id.to_string(),
            expected_version,
        };
        let resp = self
            .with_retries(|mut c| {
                let req = req.clone();
                async move { c.delete_concept(req).await.map(|r| r.into_inner()) }
            })
            .await?;
        if let Some(w) = &resp.write {
            self.note_version(w.version);
        }
        Ok(resp.existed)
    }

    /// Reads a concept at `consistency` (a `SESSION` read uses this client's token).
    pub async fn get(
        &self,
        id: &str,
        consistency: Consistency,
    ) -> Result<Option<Concept>, ClientError> {
        let read = ReadOptions {
            consistency: consistency as i32,
            session_index: self.session_token(),
            max_staleness_ms: 0,
        };
        let req = GetConceptRequest {
            read: Some(read),
            id: id.to_string(),
        };
        let resp = self
            .with_retries(|mut c| {
                let req = req.clone();
                async move { c.get_concept(req).await.map(|r| r.into_inner()) }
            })
            .await?;
        Ok(resp.concept)
    }
}

fn retryable(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
    )
}

async fn tokio_timeout<F: Future>(d: Duration, f: F) -> Result<F::Output, ()> {
    tokio::time::timeout(d, f).await.map_err(|_| ())
}

async fn tokio_sleep(d: Duration) {
    tokio::time::sleep(d).await
}
