//! [`Client`]: writes and reads against a cluster, whichever node leads.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sutra_proto::storage::storage_service_client::StorageServiceClient;
use sutra_proto::storage::{
    self as pb, BatchRequest, Concept, Consistency, DeleteConceptRequest, DeleteEdgeRequest, Edge,
    FlushRequest, FlushResponse, GetConceptRequest, GetStatsRequest, GetStatsResponse,
    HealthCheckRequest, HealthCheckResponse, IdRange, Neighbor, NeighborsRequest,
    PutConceptRequest, PutEdgeRequest, ReadMeta, ScanRequest, SearchHit, SearchRequest,
    WriteHeader, WriteResponse, scan_request,
};
use tonic::Status;
use tonic::transport::Channel;

use crate::batch::{Batch, BatchOutcome};
use crate::call::{self, request};
use crate::config::ClientConfig;
use crate::connect::{Connector, Error};
use crate::error::ClientError;
use crate::options::{CallOptions, ReadOptions};
use crate::query::{Neighbors, Page, Read, Scan, ScanRange, Search};
use crate::router::Router;

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
#[derive(Debug)]
pub struct Client {
    router: Router,
    request_timeout: Duration,
    attempt_timeout: Duration,
    client_id: String,
    sequence: AtomicU64,
    last_version: AtomicU64,
}

static INSTANCES: AtomicU64 = AtomicU64::new(0);

fn meta(m: Option<ReadMeta>) -> ReadMeta {
    m.unwrap_or_default()
}

fn token(t: String) -> Option<String> {
    (!t.is_empty()).then_some(t)
}

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
            request_timeout,
            attempt_timeout,
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
    pub fn session_token(&self) -> u64 {
        self.last_version.load(Ordering::Acquire)
    }

    /// Runs a read through the retry loop ([`call::read`]) on the nodes `opts` route it
    /// to, within its deadline.
    async fn read_call<T, F, Fut>(
        &self,
        opts: ReadOptions,
        attempt: F,
    ) -> Result<(T, String), ClientError>
    where
        F: FnMut(StorageServiceClient<Channel>, Duration) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let budget = self.budget(opts.deadline);
        call::read(
            &self.router,
            self.attempt_timeout,
            opts.route(),
            budget,
            attempt,
        )
        .await
    }

    /// Runs a write RPC on the leader through the retry loop ([`call::write`]), within
    /// the deadline of `opts`.
    async fn write_call<Req, Resp, F, Fut>(
        &self,
        req: Req,
        opts: CallOptions,
        rpc: F,
    ) -> Result<(Resp, String), ClientError>
    where
        Req: Clone,
        F: Fn(StorageServiceClient<Channel>, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let budget = self.budget(opts.deadline);
        call::write(&self.router, self.attempt_timeout, budget, req, rpc).await
    }

    fn budget(&self, deadline: Option<Duration>) -> Duration {
        deadline.unwrap_or(self.request_timeout)
    }

    fn next_header(&self) -> WriteHeader {
        WriteHeader {
            client_id: self.client_id.clone(),
            sequence: self.sequence.fetch_add(1, Ordering::AcqRel) + 1,
        }
    }

    fn note_write(&self, endpoint: &str, w: &WriteResponse) {
        self.last_version.fetch_max(w.version, Ordering::AcqRel);
        self.router.observe(endpoint, w.served_by, w.leader_id);
    }

    fn read_options(&self, opts: &ReadOptions) -> pb::ReadOptions {
        pb::ReadOptions {
            consistency: opts.consistency as i32,
            session_index: if opts.consistency == Consistency::Session {
                opts.session_index.unwrap_or_else(|| self.session_token())
            } else {
                0
            },
            max_staleness_ms: u64::try_from(opts.max_staleness.as_millis()).unwrap_or(u64::MAX),
        }
    }

    // ---------------------------------------------------------------- writes

    /// Creates or replaces a concept, optionally only at `expected_version` (0 = must not
    /// exist). Retried through failovers; applied once.
    pub async fn put(
        &self,
        concept: Concept,
        expected_version: Option<u64>,
    ) -> Result<WriteResponse, ClientError> {
        self.put_with(concept, expected_version, CallOptions::default())
            .await
    }

    /// [`put`](Self::put) with call options.
    pub async fn put_with(
        &self,
        concept: Concept,
        expected_version: Option<u64>,
        opts: CallOptions,
    ) -> Result<WriteResponse, ClientError> {
        let req = PutConceptRequest {
            header: Some(self.next_header()),
            concept: Some(concept),
            expected_version,
        };
        let (resp, ep) = self
            .write_call(req, opts, |mut c, r| async move { c.put_concept(r).await })
            .await?;
        self.note_write(&ep, &resp);
        Ok(resp)
    }

    /// Deletes a concept and its edges, optionally only at `expected_version`; returns
    /// whether it existed.
    pub async fn delete(
        &self,
        id: &str,
        expected_version: Option<u64>,
    ) -> Result<bool, ClientError> {
        self.delete_with(id, expected_version, CallOptions::default())
            .await
    }

    /// [`delete`](Self::delete) with call options.
    pub async fn delete_with(
        &self,
        id: &str,
        expected_version: Option<u64>,
        opts: CallOptions,
    ) -> Result<bool, ClientError> {
        let req = DeleteConceptRequest {
            header: Some(self.next_header()),
            id: id.to_string(),
            expected_version,
        };
        let (resp, ep) = self
            .write_call(
                req,
                opts,
                |mut c, r| async move { c.delete_concept(r).await },
            )
            .await?;
        if let Some(w) = &resp.write {
            self.note_write(&ep, w);
        }
        Ok(resp.existed)
    }

    /// Creates an edge or replaces its weight; both ends must exist
    /// ([`ClientError::Conflict`] otherwise).
    pub async fn put_edge(&self, edge: Edge) -> Result<WriteResponse, ClientError> {
        self.put_edge_with(edge, CallOptions::default()).await
    }

    /// [`put_edge`](Self::put_edge) with call options.
    pub async fn put_edge_with(
        &self,
        edge: Edge,
        opts: CallOptions,
    ) -> Result<WriteResponse, ClientError> {
        let req = PutEdgeRequest {
            header: Some(self.next_header()),
            edge: Some(edge),
        };
        let (resp, ep) = self
            .write_call(req, opts, |mut c, r| async move { c.put_edge(r).await })
            .await?;
        self.note_write(&ep, &resp);
        Ok(resp)
    }

    /// Deletes the edge `(from, relation, to)`; returns whether it existed.
    pub async fn delete_edge(
        &self,
        from: &str,
        to: &str,
        relation: &str,
    ) -> Result<bool, ClientError> {
        self.delete_edge_with(from, to, relation, CallOptions::default())
            .await
    }

    /// [`delete_edge`](Self::delete_edge) with call options.
    pub async fn delete_edge_with(
        &self,
        from: &str,
        to: &str,
        relation: &str,
        opts: CallOptions,
    ) -> Result<bool, ClientError> {
        let req = DeleteEdgeRequest {
            header: Some(self.next_header()),
            from: from.to_string(),
            to: to.to_string(),
            relation: relation.to_string(),
        };
        let (resp, ep) = self
            .write_call(req, opts, |mut c, r| async move { c.delete_edge(r).await })
            .await?;
        if let Some(w) = &resp.write {
            self.note_write(&ep, w);
        }
        Ok(resp.existed)
    }

    /// Applies `batch` atomically: every op in order, or none
    /// ([`ClientError::Conflict`] names the op whose precondition failed).
    pub async fn batch(&self, batch: &Batch) -> Result<BatchOutcome, ClientError> {
        self.batch_with(batch, CallOptions::default()).await
    }

    /// [`batch`](Self::batch) with call options.
    pub async fn batch_with(
        &self,
        batch: &Batch,
        opts: CallOptions,
    ) -> Result<BatchOutcome, ClientError> {
        let req = BatchRequest {
            header: Some(self.next_header()),
            ops: batch.ops().to_vec(),
        };
        let (resp, ep) = self
            .write_call(req, opts, |mut c, r| async move { c.batch(r).await })
            .await?;
        let write = resp.write.unwrap_or_default();
        self.note_write(&ep, &write);
        Ok(BatchOutcome {
            write,
            existed: resp.results.iter().map(|r| r.existed).collect(),
        })
    }

    // ----------------------------------------------------------------- reads

    /// Reads a concept at `consistency`; `None` if there is none.
    pub async fn get(
        &self,
        id: &str,
        consistency: Consistency,
    ) -> Result<Option<Concept>, ClientError> {
        Ok(self
            .get_with(id, ReadOptions::new(consistency))
            .await?
            .value)
    }

    /// Reads a concept with `opts`, with how the read was served.
    pub async fn get_with(
        &self,
        id: &str,
        opts: ReadOptions,
    ) -> Result<Read<Option<Concept>>, ClientError> {
        let req = GetConceptRequest {
            read: Some(self.read_options(&opts)),
            id: id.to_string(),
        };
        let (resp, ep) = self
            .read_call(opts, |mut c, t| {
                let req = request(req.clone(), t);
                async move { c.get_concept(req).await.map(|r| r.into_inner()) }
            })
            .await?;
        let meta = meta(resp.meta);
        self.router.observe(&ep, meta.served_by, meta.leader_id);
        Ok(Read {
            value: resp.concept,
            meta,
        })
    }

    /// One page of the edges of a concept; pass the previous page's
    /// `next_page_token` for the next one.
    pub async fn neighbors(
        &self,
        query: &Neighbors,
        page_token: Option<&str>,
        opts: ReadOptions,
    ) -> Result<Page<Neighbor>, ClientError> {
        self.neighbors_page(query, query.page_size, page_token, opts)
            .await
    }

    async fn neighbors_page(
        &self,
        query: &Neighbors,
        limit: u32,
        page_token: Option<&str>,
        opts: ReadOptions,
    ) -> Result<Page<Neighbor>, ClientError> {
        let req = NeighborsRequest {
            read: Some(self.read_options(&opts)),
            id: query.id.clone(),
            direction: query.direction as i32,
            relation: query.relation.clone(),
            limit,
            page_token: page_token.unwrap_or_default().to_string(),
        };
        let (resp, ep) = self
            .read_call(opts, |mut c, t| {
                let req = request(req.clone(), t);
                async move { c.get_neighbors(req).await.map(|r| r.into_inner()) }
            })
            .await?;
        let meta = meta(resp.meta);
        self.router.observe(&ep, meta.served_by, meta.leader_id);
        Ok(Page {
            items: resp.neighbors,
            next_page_token: token(resp.next_page_token),
            meta,
        })
    }

    /// Every edge of a concept, page after page, up to `max` of them. Each page is its
    /// own read (its own deadline and serving node).
    pub async fn neighbors_all(
        &self,
        query: &Neighbors,
        max: usize,
        opts: ReadOptions,
    ) -> Result<Vec<Neighbor>, ClientError> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        while out.len() < max {
            let limit = page_limit(query.page_size, max - out.len());
            let page = self
                .neighbors_page(query, limit, next.as_deref(), opts)
                .await?;
            out.extend(page.items);
            match page.next_page_token {
                Some(t) => next = Some(t),
                None => break,
            }
        }
        out.truncate(max);
        Ok(out)
    }

    /// One page of a scan; pass the previous page's `next_page_token` for the next one.
    pub async fn scan(
        &self,
        scan: &Scan,
        page_token: Option<&str>,
        opts: ReadOptions,
    ) -> Result<Page<Concept>, ClientError> {
        self.scan_page(scan, scan.page_size, page_token, opts).await
    }

    async fn scan_page(
        &self,
        scan: &Scan,
        limit: u32,
        page_token: Option<&str>,
        opts: ReadOptions,
    ) -> Result<Page<Concept>, ClientError> {
        let range = match &scan.range {
            ScanRange::All => None,
            ScanRange::Prefix(p) => Some(scan_request::Range::Prefix(p.clone())),
            ScanRange::Range { start, end } => Some(scan_request::Range::IdRange(IdRange {
                start: start.clone(),
                end: end.clone().unwrap_or_default(),
            })),
        };
        let req = ScanRequest {
            read: Some(self.read_options(&opts)),
            range,
            limit,
            page_token: page_token.unwrap_or_default().to_string(),
            keys_only: scan.keys_only,
        };
        let (resp, ep) = self
            .read_call(opts, |mut c, t| {
                let req = request(req.clone(), t);
                async move { c.scan(req).await.map(|r| r.into_inner()) }
            })
            .await?;
        let meta = meta(resp.meta);
        self.router.observe(&ep, meta.served_by, meta.leader_id);
        Ok(Page {
            items: resp.concepts,
            next_page_token: token(resp.next_page_token),
            meta,
        })
    }

    /// Every concept of a scan, page after page, up to `max` of them. Each page is its
    /// own read (its own deadline and serving node).
    pub async fn scan_all(
        &self,
        scan: &Scan,
        max: usize,
        opts: ReadOptions,
    ) -> Result<Vec<Concept>, ClientError> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        while out.len() < max {
            let limit = page_limit(scan.page_size, max - out.len());
            let page = self.scan_page(scan, limit, next.as_deref(), opts).await?;
            out.extend(page.items);
            match page.next_page_token {
                Some(t) => next = Some(t),
                None => break,
            }
        }
        out.truncate(max);
        Ok(out)
    }

    /// The `k` concepts nearest to a vector, best first.
    pub async fn search(
        &self,
        query: &Search,
        opts: ReadOptions,
    ) -> Result<Read<Vec<SearchHit>>, ClientError> {
        let req = SearchRequest {
            read: Some(self.read_options(&opts)),
            vector: query.vector.clone(),
            k: query.k,
            metric: query.metric as i32,
            include_concepts: query.include_concepts,
        };
        let (resp, ep) = self
            .read_call(opts, |mut c, t| {
                let req = request(req.clone(), t);
                async move { c.search(req).await.map(|r| r.into_inner()) }
            })
            .await?;
        let meta = meta(resp.meta);
        self.router.observe(&ep, meta.served_by, meta.leader_id);
        Ok(Read {
            value: resp.hits,
            meta,
        })
    }

    // ------------------------------------------------------------ operations

    /// One attempt on the node at `endpoint`, within the call's deadline.
    async fn on_node<T, F, Fut>(
        &self,
        endpoint: &str,
        opts: CallOptions,
        call: F,
    ) -> Result<T, ClientError>
    where
        F: FnOnce(StorageServiceClient<Channel>, Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let budget = self.budget(opts.deadline);
        let attempt = async {
            let client = self.router.storage(endpoint).await?;
            call(client, budget)
                .await
                .map(tonic::Response::into_inner)
                .map_err(ClientError::from_status)
        };
        match tokio::time::timeout(budget, attempt).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::DeadlineExceeded {
                deadline: budget,
                outcome_unknown: false,
                last: format!("{endpoint}: no answer before the deadline"),
            }),
        }
    }

    /// Health of the node at `endpoint`.
    pub async fn health(
        &self,
        endpoint: &str,
        opts: CallOptions,
    ) -> Result<HealthCheckResponse, ClientError> {
        self.on_node(endpoint, opts, |mut c, t| async move {
            c.health_check(request(HealthCheckRequest {}, t)).await
        })
        .await
    }

    /// Statistics of the node at `endpoint`.
    pub async fn stats(
        &self,
        endpoint: &str,
        opts: CallOptions,
    ) -> Result<GetStatsResponse, ClientError> {
        self.stats_with(endpoint, GetStatsRequest::default(), opts)
            .await
    }

    /// [`stats`](Self::stats) as `req` asks, e.g. with `include_content_hash` for the
    /// node's content hash and the applied index it reflects.
    pub async fn stats_with(
        &self,
        endpoint: &str,
        req: GetStatsRequest,
        opts: CallOptions,
    ) -> Result<GetStatsResponse, ClientError> {
        self.on_node(endpoint, opts, |mut c, t| async move {
            c.get_stats(request(req, t)).await
        })
        .await
    }

    /// Checkpoints the node at `endpoint` and purges its log behind the checkpoint.
    pub async fn flush(
        &self,
        endpoint: &str,
        opts: CallOptions,
    ) -> Result<FlushResponse, ClientError> {
        self.on_node(endpoint, opts, |mut c, t| async move {
            c.flush(request(FlushRequest {}, t)).await
        })
        .await
    }

    /// [`health`](Self::health) of every configured node, in endpoint order.
    pub async fn health_all(&self, opts: CallOptions) -> Vec<NodeResult<HealthCheckResponse>> {
        self.on_all(|ep| self.health(ep, opts)).await
    }

    /// [`stats`](Self::stats) of every configured node, in endpoint order.
    pub async fn stats_all(&self, opts: CallOptions) -> Vec<NodeResult<GetStatsResponse>> {
        self.on_all(|ep| self.stats(ep, opts)).await
    }

    /// [`stats_with`](Self::stats_with) of every configured node, in endpoint order.
    pub async fn stats_all_with(
        &self,
        req: GetStatsRequest,
        opts: CallOptions,
    ) -> Vec<NodeResult<GetStatsResponse>> {
        self.on_all(|ep| self.stats_with(ep, req, opts)).await
    }

    /// [`flush`](Self::flush) of every configured node, in endpoint order.
    pub async fn flush_all(&self, opts: CallOptions) -> Vec<NodeResult<FlushResponse>> {
        self.on_all(|ep| self.flush(ep, opts)).await
    }

    async fn on_all<'a, T, F, Fut>(&'a self, call: F) -> Vec<NodeResult<T>>
    where
        F: Fn(&'a str) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let calls = self.router.endpoints().iter().map(|ep| {
            let fut = call(ep.as_str());
            async move {
                NodeResult {
                    endpoint: ep.clone(),
                    result: fut.await,
                }
            }
        });
        futures_util::future::join_all(calls).await
    }
}

/// The answer of one node to an operations call sent to every node.
#[derive(Debug)]
pub struct NodeResult<T> {
    /// The node's endpoint.
    pub endpoint: String,
    /// Its answer.
    pub result: Result<T, ClientError>,
}

/// The page size to ask for when at most `remaining` more items are wanted.
fn page_limit(page_size: u32, remaining: usize) -> u32 {
    let size = if page_size == 0 { 100 } else { page_size };
    u32::try_from(remaining)
        .map_or(size, |r| size.min(r))
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_never_ask_for_more_than_wanted() {
        assert_eq!(page_limit(0, 1000), 100);
        assert_eq!(page_limit(0, 7), 7);
        assert_eq!(page_limit(50, 1000), 50);
        assert_eq!(page_limit(50, usize::MAX), 50);
        assert_eq!(page_limit(50, 0), 1);
    }
}
