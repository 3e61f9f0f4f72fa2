//! Clients of a test cluster: TLS channels with the admin, writer or reader certificate,
//! read helpers, and [`Writer`], a writer that behaves as the design asks real clients
//! to: one `(client_id, sequence)` per logical write, kept across retries, following
//! not-leader hints with backoff, within a time budget.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sutra_proto::cluster::cluster_service_client::ClusterServiceClient;
use sutra_proto::storage::storage_service_client::StorageServiceClient;
use sutra_proto::storage::{
    Concept, Consistency, PutConceptRequest, ReadOptions, ScanRequest, WriteHeader, WriteResponse,
    scan_request,
};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

use sutra_checker::{History, OpKind, Outcome, Reply, Value};

/// Server name the clients check node certificates against; every node certificate
/// carries it.
pub const SERVER_NAME: &str = "localhost";

/// Longest a single RPC may take before the channel gives up on it (a paused node never
/// answers). Polling helpers use shorter bounds of their own.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// Which client certificate to present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientRole {
    /// `client-admin.pem`: membership changes, snapshots, Flush, everything.
    Admin,
    /// `client-writer.pem`: reads and writes.
    Writer,
    /// `client-reader.pem`: reads, health, status.
    Reader,
}

impl ClientRole {
    /// The certificate name in the dev set (`client-<name>.pem`).
    pub fn cert_name(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Writer => "writer",
            Self::Reader => "reader",
        }
    }
}

/// Where a cluster's CA and client certificates are.
#[derive(Debug, Clone)]
pub struct ClientCerts {
    /// The directory of the dev set.
    pub dir: PathBuf,
}

impl ClientCerts {
    /// The certificates in `dir` (made by `sutra_certs::generate_dev_set`).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    /// The CA file.
    pub fn ca(&self) -> PathBuf {
        sutra_certs::CertPaths::ca(&self.dir).cert
    }

    /// A TLS config that presents `role`'s certificate.
    pub fn tls(&self, role: ClientRole) -> Result<ClientTlsConfig> {
        let paths = sutra_certs::CertPaths::client(&self.dir, role.cert_name());
        sutra_certs::client_tls(&self.ca(), &paths.cert, &paths.key, SERVER_NAME)
            .with_context(|| format!("loading the {} client certificate", role.cert_name()))
    }
}

/// A channel to `addr` (`host:port`) that connects on first use and reconnects after a
/// node restarts.
pub fn channel(addr: &str, tls: ClientTlsConfig) -> Result<Channel> {
    Ok(Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(2))
        .timeout(RPC_TIMEOUT)
        .tcp_nodelay(true)
        .connect_lazy())
}

/// Both client-facing services of one node over one channel.
#[derive(Debug, Clone)]
pub struct NodeClient {
    /// The node's client API address.
    pub addr: String,
    /// `sutra.storage.StorageService`.
    pub storage: StorageServiceClient<Channel>,
    /// `sutra.cluster.ClusterService`.
    pub cluster: ClusterServiceClient<Channel>,
}

impl NodeClient {
    /// Clients over `channel` to the node at `addr`.
    pub fn new(addr: &str, channel: Channel) -> Self {
        Self {
            addr: addr.to_owned(),
            // Pages of large concepts pass the 4 MiB default.
            storage: StorageServiceClient::new(channel.clone())
                .max_decoding_message_size(64 << 20)
                .max_encoding_message_size(64 << 20),
            cluster: ClusterServiceClient::new(channel),
        }
    }
}

/// Read options for a linearizable read (leader only for now).
pub fn linearizable() -> Option<ReadOptions> {
    Some(ReadOptions {
        consistency: Consistency::Linearizable as i32,
        ..ReadOptions::default()
    })
}

/// Read options for a read that must observe the write that returned `version`.
pub fn session(version: u64) -> Option<ReadOptions> {
    Some(ReadOptions {
        consistency: Consistency::Session as i32,
        session_index: version,
        ..ReadOptions::default()
    })
}

/// Read options for a local read with no freshness guarantee.
pub fn stale() -> Option<ReadOptions> {
    Some(ReadOptions {
        consistency: Consistency::Stale as i32,
        ..ReadOptions::default()
    })
}

/// Every concept whose id starts with `prefix`, page by page, all pages read with `read`.
pub async fn scan_all(
    client: &mut StorageServiceClient<Channel>,
    prefix: &str,
    read: Option<ReadOptions>,
) -> Result<BTreeMap<String, Concept>> {
    const PAGE: u32 = 1000;
    const MAX_PAGES: usize = 10_000;
    let mut out = BTreeMap::new();
    let mut token = String::new();
    for _ in 0..MAX_PAGES {
        let page = client
            .scan(ScanRequest {
                read,
                range: Some(scan_request::Range::Prefix(prefix.to_owned())),
                limit: PAGE,
                page_token: token,
                keys_only: false,
            })
            .await
            .with_context(|| format!("scan of prefix {prefix:?}"))?
            .into_inner();
        for c in page.concepts {
            if out.insert(c.id.clone(), c).is_some() {
                bail!("scan of {prefix:?} returned an id twice");
            }
        }
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        token = page.next_page_token;
    }
    bail!("scan of {prefix:?} did not end within {MAX_PAGES} pages")
}

/// The leader hint an UNAVAILABLE error carries: (`sutra-leader-id`, `sutra-leader-addr`),
/// decoded by the wire contract's one decoder.
pub fn leader_hint(status: &Status) -> (Option<u64>, Option<String>) {
    match sutra_proto::LeaderHint::from_status(status) {
        Some(hint) => (Some(hint.id), hint.addr),
        None => (None, None),
    }
}

/// Whether `status` is a node saying "not me, ask the leader": the request was refused
/// before it was proposed, so it cannot have been applied.
pub fn is_not_leader(status: &Status) -> bool {
    status.code() == Code::Unavailable
        && (leader_hint(status) != (None, None) || status.message().contains("not the leader"))
}

/// How a logical write ended, as a client can know it.
#[derive(Debug, Clone)]
pub enum WriteOutcome {
    /// Acknowledged: applied at `version` (possibly answered from the session table).
    Ok(WriteResponse),
    /// Definitely not applied: every attempt was refused before it was proposed, or the
    /// cluster rejected it.
    Failed(Status),
    /// Maybe applied: some attempt's fate is unknown (connection lost, timeout, leader
    /// changed before commit) and the retry budget ran out.
    Unknown(String),
}

impl WriteOutcome {
    /// The response if acknowledged, else an error naming the outcome.
    pub fn into_ok(self) -> Result<WriteResponse> {
        match self {
            Self::Ok(r) => Ok(r),
            Self::Failed(s) => bail!("write failed: {s:?}"),
            Self::Unknown(why) => bail!("write outcome unknown: {why}"),
        }
    }
}

/// Codes after which the same write is retried.
fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Unknown
            | Code::Cancelled
            | Code::Aborted
            | Code::ResourceExhausted
    )
}

static CLIENT_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A single logical writer: a `client_id` and a strictly increasing sequence.
///
/// Each write gets the next sequence and keeps it across every retry, so the state
/// machine's session table answers a retry of an applied write instead of applying it
/// again. It sends to the node it believes leads, follows `sutra-leader-addr` hints,
/// otherwise tries the known nodes in turn, and backs off between attempts; a write gives
/// up after its retry budget.
#[derive(Debug)]
pub struct Writer {
    client_id: String,
    last_sequence: u64,
    tls: ClientTlsConfig,
    endpoints: Vec<String>,
    channels: HashMap<String, Channel>,
    leader: Option<String>,
    next_endpoint: usize,
    budget: Duration,
    history: Option<Arc<History>>,
}

impl Writer {
    /// First backoff between attempts; doubled up to [`Self::MAX_BACKOFF`].
    pub const MIN_BACKOFF: Duration = Duration::from_millis(20);
    /// Longest backoff between attempts.
    pub const MAX_BACKOFF: Duration = Duration::from_millis(300);
    /// Longest one attempt may take.
    pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Most attempts per write, whatever the budget.
    pub const MAX_ATTEMPTS: u32 = 500;

    /// A writer named `name` (made unique per process and instance) that knows the nodes
    /// at `endpoints` and gives each write `budget` to succeed.
    pub fn new(name: &str, tls: ClientTlsConfig, endpoints: Vec<String>, budget: Duration) -> Self {
        let n = CLIENT_COUNTER.fetch_add(1, Ordering::Relaxed);
        Self {
            client_id: format!("{name}-{}-{n}", std::process::id()),
            last_sequence: 0,
            tls,
            endpoints,
            channels: HashMap::new(),
            leader: None,
            next_endpoint: 0,
            budget,
            history: None,
        }
    }

    /// Records every write of this writer in `history`: one operation per logical write
    /// (tagged with its sequence), invoked before the first attempt and completed after
    /// the last, with the answering node's [`Reply`].
    pub fn with_history(mut self, history: Arc<History>) -> Self {
        self.history = Some(history);
        self
    }

    /// The client id every write carries.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The sequence of the last write issued (0 before any).
    pub fn last_sequence(&self) -> u64 {
        self.last_sequence
    }

    /// Another node this writer may try (e.g. one added to the cluster).
    pub fn add_endpoint(&mut self, addr: String) {
        if !self.endpoints.contains(&addr) {
            self.endpoints.push(addr);
        }
    }

    /// Puts concept `id` with `content` as the next write of this client.
    pub async fn put(&mut self, id: &str, content: &[u8]) -> WriteOutcome {
        self.last_sequence += 1;
        let sequence = self.last_sequence;
        self.put_with_sequence(sequence, id, content).await
    }

    /// Puts concept `id` with an explicit `sequence`: a retry of an earlier write must
    /// reuse its sequence (the answer then says `deduplicated`).
    pub async fn put_with_sequence(
        &mut self,
        sequence: u64,
        id: &str,
        content: &[u8],
    ) -> WriteOutcome {
        let op = self.history.as_ref().map(|h| {
            let value = Value::from(content);
            h.invoke_tagged(
                &self.client_id,
                id,
                OpKind::Write { value },
                format!("seq {sequence}"),
            )
        });
        let req = PutConceptRequest {
            header: Some(WriteHeader {
                client_id: self.client_id.clone(),
                sequence,
            }),
            concept: Some(Concept {
                id: id.to_owned(),
                content: content.to_vec(),
                ..Concept::default()
            }),
            expected_version: None,
        };
        let outcome = self.send(req).await;
        if let (Some(h), Some(op)) = (&self.history, op) {
            let (recorded, reply) = match &outcome {
                WriteOutcome::Ok(r) => (
                    Outcome::Ok {
                        version: Some(r.version),
                    },
                    crate::history::reply(r),
                ),
                WriteOutcome::Failed(_) => (Outcome::Failed, Reply::default()),
                WriteOutcome::Unknown(_) => (Outcome::Unknown, Reply::default()),
            };
            if let Err(e) = h.complete_with(op, recorded, reply) {
                // Only a bug here (an operation completed twice) can get here.
                tracing::error!(error = %e, "recording a write");
            }
        }
        outcome
    }

    fn channel_to(&mut self, addr: &str) -> Result<Channel> {
        if let Some(c) = self.channels.get(addr) {
            return Ok(c.clone());
        }
        let c = channel(addr, self.tls.clone())?;
        self.channels.insert(addr.to_owned(), c.clone());
        Ok(c)
    }

    fn pick_target(&mut self) -> Option<String> {
        if let Some(l) = &self.leader {
            return Some(l.clone());
        }
        if self.endpoints.is_empty() {
            return None;
        }
        let addr = self.endpoints[self.next_endpoint % self.endpoints.len()].clone();
        self.next_endpoint += 1;
        Some(addr)
    }

    async fn send(&mut self, req: PutConceptRequest) -> WriteOutcome {
        let start = Instant::now();
        let mut backoff = Self::MIN_BACKOFF;
        // Whether some attempt may have been applied: then a give-up is "unknown", never
        // "failed".
        let mut ambiguous = false;
        let mut last = String::from("no attempt made");
        let mut last_status: Option<Status> = None;
        let mut just_followed_hint = false;
        for attempt in 1..=Self::MAX_ATTEMPTS {
            let Some(addr) = self.pick_target() else {
                return WriteOutcome::Failed(Status::failed_precondition("no endpoints"));
            };
            let channel = match self.channel_to(&addr) {
                Ok(c) => c,
                Err(e) => return WriteOutcome::Failed(Status::invalid_argument(e.to_string())),
            };
            let mut client = StorageServiceClient::new(channel);
            let remaining = self.budget.saturating_sub(start.elapsed());
            let attempt_timeout = remaining.min(Self::ATTEMPT_TIMEOUT);
            let mut follow_hint = false;
            match tokio::time::timeout(attempt_timeout, client.put_concept(req.clone())).await {
                Ok(Ok(resp)) => {
                    self.leader = Some(addr);
                    return WriteOutcome::Ok(resp.into_inner());
                }
                Ok(Err(status)) => {
                    last = format!("attempt {attempt} to {addr}: {status:?}");
                    if is_not_leader(&status) {
                        match leader_hint(&status).1 {
                            Some(hint) if hint != addr => {
                                self.leader = Some(hint);
                                follow_hint = true;
                            }
                            _ => self.leader = None,
                        }
                    } else if retryable(status.code()) {
                        ambiguous = true;
                        self.leader = None;
                    } else if ambiguous {
                        return WriteOutcome::Unknown(format!(
                            "{last} (after an earlier attempt with unknown outcome)"
                        ));
                    } else {
                        return WriteOutcome::Failed(status);
                    }
                    last_status = Some(status);
                }
                Err(_) => {
                    last = format!(
                        "attempt {attempt} to {addr}: no answer within {attempt_timeout:?}"
                    );
                    ambiguous = true;
                    self.leader = None;
                }
            }
            let elapsed = start.elapsed();
            if elapsed >= self.budget {
                break;
            }
            if follow_hint && !just_followed_hint {
                // A fresh hint is worth trying at once. Two nodes pointing at each other
                // (a leader change in progress) fall back to the backoff.
                just_followed_hint = true;
                continue;
            }
            just_followed_hint = false;
            tokio::time::sleep(backoff.min(self.budget - elapsed)).await;
            backoff = (backoff * 2).min(Self::MAX_BACKOFF);
        }
        let why = format!(
            "gave up after {:?}: {last}",
            start.elapsed().min(self.budget + Self::ATTEMPT_TIMEOUT)
        );
        if ambiguous {
            WriteOutcome::Unknown(why)
        } else {
            WriteOutcome::Failed(
                last_status
                    .map(|s| Status::new(s.code(), why.clone()))
                    .unwrap_or_else(|| Status::unavailable(why)),
            )
        }
    }
}
