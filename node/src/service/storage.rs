//! `sutra.storage.StorageService`: the client API. The caller's role was checked before
//! the request was decoded (`auth.rs`, `server/authorized.rs`: reads need the read role,
//! writes the write role, and `Flush` admin). Each handler converts and validates the
//! request (naming bad fields by the request's own path, `validate.rs`), binds a write's
//! session to the caller's certificate, goes through the node's write path or read
//! barrier, and maps errors in one place (`status.rs`). Searches and large scans take a
//! place among a bounded few first (`heavy_reads.rs`).

use std::sync::Arc;

use sutra_certs::Identity;
use sutra_engine::{Rejection, ScanRange, WriteBatch, WriteOp, WriteOutcome};
use sutra_proto::storage::storage_service_server::StorageService;
use sutra_proto::storage::*;
use tonic::{Request, Response, Status};

use super::heavy_reads::{self, HeavyReads};
use crate::auth;
use crate::node::Node;
use crate::status::ServiceError;
use crate::{convert, validate};
use sutra_raft::CommandResponse;

/// The client API of one node.
#[derive(Debug, Clone)]
pub struct StorageApi {
    node: Arc<Node>,
    heavy: HeavyReads,
}

impl StorageApi {
    /// Serves `node`, with at most its `max-concurrent-searches` heavy reads at once.
    /// Mount it behind the role check, which leaves the caller in each request.
    pub fn new(node: Arc<Node>) -> Self {
        let heavy = HeavyReads::new(node.config.max_concurrent_searches);
        Self { node, heavy }
    }

    /// Binds the header to the caller, validates, and writes through the node (which
    /// relays to the leader when it is not the leader); a refusal is counted by reason.
    /// `single` says whether fields are named as in a single-op request rather than as
    /// in a `Batch`.
    async fn write(
        &self,
        caller: Option<&Identity>,
        header: Option<WriteHeader>,
        ops: Result<Vec<WriteOp>, ServiceError>,
        single: bool,
    ) -> Result<CommandResponse, ServiceError> {
        self.checked_write(caller, header, ops, single)
            .await
            .inspect_err(|e| self.node.refused(e))
    }

    async fn checked_write(
        &self,
        caller: Option<&Identity>,
        header: Option<WriteHeader>,
        ops: Result<Vec<WriteOp>, ServiceError>,
        single: bool,
    ) -> Result<CommandResponse, ServiceError> {
        let owner = auth::session_owner(caller);
        // Writes are judged by the cluster's parameters, as the leader judges them.
        let params = self.node.cluster_params()?;
        let limits = &params.limits();
        let dimension = params.vector_dimension;
        let session = convert::session(header, owner.as_deref(), limits)?;
        let batch = WriteBatch {
            session: Some(session),
            ops: ops?,
        };
        if single {
            validate::single_write(&batch, limits, dimension)?;
        } else {
            validate::batch(&batch, limits, dimension)?;
        }
        self.node.write(batch).await.map_err(|e| match e {
            // The client named its session by the id it sent, not by the bound key.
            ServiceError::Rejected(Rejection::StaleSequence {
                client_id,
                sequence,
                last,
            }) => ServiceError::Rejected(Rejection::StaleSequence {
                client_id: convert::unbound_client_id(&client_id, owner.as_deref()).to_string(),
                sequence,
                last,
            }),
            other => other,
        })
    }

    async fn write_one(
        &self,
        caller: Option<&Identity>,
        header: Option<WriteHeader>,
        op: Result<WriteOp, ServiceError>,
    ) -> Result<(WriteResponse, bool), ServiceError> {
        let resp = self
            .write(caller, header, op.map(|op| vec![op]), true)
            .await?;
        let existed = match &resp.outcome.outcome {
            WriteOutcome::Applied { results, .. } => results.first().is_some_and(|r| r.existed),
            WriteOutcome::Rejected(_) => false,
        };
        Ok((self.node.write_response(&resp), existed))
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl StorageService for StorageApi {
    #[tracing::instrument(level = "debug", skip_all, fields(node_id = self.node.id))]
    async fn put_concept(&self, req: Request<PutConceptRequest>) -> Reply<WriteResponse> {
        let caller = auth::caller(&req)?;
        let r = req.into_inner();
        let op = convert::put_concept(r.concept, r.expected_version);
        Ok(Response::new(
            self.write_one(caller.as_deref(), r.header, op).await?.0,
        ))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(node_id = self.node.id))]
    async fn get_concept(&self, req: Request<GetConceptRequest>) -> Reply<GetConceptResponse> {
        let r = req.into_inner();
        validate::get_concept(&r, self.node.engine.limits())?;
        let meta = self.node.read_barrier(r.read).await?;
        let concept = self
            .node
            .engine
            .get(&r.id)
            .map_err(ServiceError::from)?
            .map(convert::concept_out);
        Ok(Response::new(GetConceptResponse {
            concept,
            meta: Some(meta),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(node_id = self.node.id))]
    async fn delete_concept(
        &self,
        req: Request<DeleteConceptRequest>,
    ) -> Reply<DeleteConceptResponse> {
        let caller = auth::caller(&req)?;
        let r = req.into_inner();
        let op = WriteOp::DeleteConcept {
            id: r.id,
            expected_version: r.expected_version,
        };
        let (write, existed) = self.write_one(caller.as_deref(), r.header, Ok(op)).await?;
        Ok(Response::new(DeleteConceptResponse {
            write: Some(write),
            existed,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(node_id = self.node.id))]
    async fn put_edge(&self, req: Request<PutEdgeRequest>) -> Reply<WriteResponse> {
        let caller = auth::caller(&req)?;
        let r = req.into_inner();
        let op = convert::put_edge(r.edge);
        Ok(Response::new(
            self.write_one(caller.as_deref(), r.header, op).await?.0,
        ))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(node_id = self.node.id))]
    async fn delete_edge(&self, req: Request<DeleteEdgeRequest>) -> Reply<DeleteEdgeResponse> {
        let caller = auth::caller(&req)?;
        let r = req.into_inner();
        let op = WriteOp::DeleteEdge {
            from: r.from,
            to: r.to,
            relation: r.relation,
        };
        let (write, existed) = self.write_one(caller.as_deref(), r.header, Ok(op)).await?;
        Ok(Response::new(DeleteEdgeResponse {
            write: Some(write),
            existed,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(node_id = self.node.id, ops = req.get_ref().ops.len()))]
    async fn batch(&self, req: Request<BatchRequest>) -> Reply<BatchResponse> {
        let caller = auth::caller(&req)?;
        let r = req.into_inner();
        let ops = convert::batch_ops(r.ops);
        let resp = self.write(caller.as_deref(), r.header, ops, false).await?;
        let results = match &resp.outcome.outcome {
            WriteOutcome::Applied { results, .. } => results
                .iter()
                .map(|r| OpResult { existed: r.existed })
                .collect(),
            WriteOutcome::Rejected(_) => Vec::new(),
        };
        Ok(Response::new(BatchResponse {
            write: Some(self.node.write_response(&resp)),
            results,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(node_id = self.node.id))]
    async fn get_neighbors(&self, req: Request<NeighborsRequest>) -> Reply<NeighborsResponse> {
        let r = req.into_inner();
        validate::neighbors(&r, self.node.engine.limits())?;
        let direction = convert::direction(r.direction)?;
        let limit = convert::limit(r.limit)?;
        let meta = self.node.read_barrier(r.read).await?;
        let token = (!r.page_token.is_empty()).then_some(r.page_token.as_str());
        let page = self
            .node
            .engine
            .neighbors(&r.id, direction, r.relation.as_deref(), limit, token)
            .map_err(ServiceError::from)?;
        let neighbors = page
            .neighbors
            .into_iter()
            .map(|n| Neighbor {
                id: n.id,
                relation: n.relation,
                weight: n.weight,
                direction: convert::direction_out(n.direction),
            })
            .collect();
        Ok(Response::new(NeighborsResponse {
            neighbors,
            next_page_token: page.next_page_token.unwrap_or_default(),
            meta: Some(meta),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(node_id = self.node.id))]
    async fn scan(&self, req: Request<ScanRequest>) -> Reply<ScanResponse> {
        let r = req.into_inner();
        validate::scan(&r, self.node.engine.limits())?;
        let limit = convert::limit(r.limit)?;
        let range = match r.range {
            None => ScanRange::Prefix(String::new()),
            Some(scan_request::Range::Prefix(p)) => ScanRange::Prefix(p),
            Some(scan_request::Range::IdRange(IdRange { start, end })) => ScanRange::Range {
                start,
                end: (!end.is_empty()).then_some(end),
            },
        };
        let meta = self.node.read_barrier(r.read).await?;
        let _place = heavy_reads::is_large_scan(r.limit)
            .then(|| self.heavy.start("Scan"))
            .transpose()?;
        let token = (!r.page_token.is_empty()).then_some(r.page_token.as_str());
        let page = self
            .node
            .engine
            .scan(&range, limit, token, r.keys_only)
            .map_err(ServiceError::from)?;
        Ok(Response::new(ScanResponse {
            concepts: page
                .concepts
                .into_iter()
                .map(convert::concept_out)
                .collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
            meta: Some(meta),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(node_id = self.node.id, k = req.get_ref().k))]
    async fn search(&self, req: Request<SearchRequest>) -> Reply<SearchResponse> {
        let r = req.into_inner();
        let metric = convert::metric(r.metric)?;
        validate::search(&r, self.node.cluster_params()?.vector_dimension)?;
        let meta = self.node.read_barrier(r.read).await?;
        // Held by the blocking task, so a call whose client went away keeps its place
        // until the search it started has finished.
        let place = self.heavy.start("Search")?;
        let engine = self.node.engine.clone();
        let (hits, concepts) = tokio::task::spawn_blocking(move || {
            let _place = place;
            let hits = engine.search(&r.vector, r.k as usize, metric)?;
            let concepts = if r.include_concepts {
                hits.iter()
                    .map(|h| engine.get(&h.id))
                    .collect::<Result<Vec<_>, _>>()?
            } else {
                Vec::new()
            };
            Ok::<_, sutra_engine::Error>((hits, concepts))
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("search task: {e}")))?
        .map_err(ServiceError::from)?;
        let mut concepts = concepts.into_iter();
        let hits = hits
            .into_iter()
            .map(|h| SearchHit {
                id: h.id,
                score: h.score,
                concept: concepts.next().flatten().map(convert::concept_out),
            })
            .collect();
        Ok(Response::new(SearchResponse {
            hits,
            meta: Some(meta),
        }))
    }

    async fn health_check(&self, _req: Request<HealthCheckRequest>) -> Reply<HealthCheckResponse> {
        Ok(Response::new(crate::health::report(&self.node)))
    }

    async fn get_stats(&self, req: Request<GetStatsRequest>) -> Reply<GetStatsResponse> {
        let n = &self.node;
        let m = n.metrics();
        let s = n.engine.stats();
        let applied = sutra_raft::position_of(m.last_applied.as_ref());
        let committed = sutra_raft::position_of(m.cluster_committed.as_ref());
        // The engine reads hash and version under one lock, so the index is exactly the
        // applied entry the hash reflects (which may be ahead of `applied` above).
        let (content_hash, content_hash_index) = if req.get_ref().include_content_hash {
            let d = n.engine.content_digest();
            // The engine's version is the log position of the last entry applied.
            (d.to_hex(), d.version)
        } else {
            (String::new(), 0)
        };
        Ok(Response::new(GetStatsResponse {
            concepts: s.concepts,
            edges: s.edges,
            written: s.writes_applied,
            dropped: n.dropped(),
            pending: committed.saturating_sub(applied),
            reconciliations: s.checkpoints,
            uptime_seconds: n.uptime_seconds(),
            node_id: n.id,
            log_size_bytes: n.log_size_bytes(),
            data_file_bytes: s.data_bytes,
            garbage_bytes: s.garbage_bytes,
            last_checkpoint_index: s.durable.version,
            applied_index: applied,
            commit_index: committed,
            term: m.current_term,
            flushes: n.flushes(),
            content_hash,
            content_hash_index,
        }))
    }

    /// Flush snapshots the engine and purges the Raft log, as `TriggerSnapshot` does, so
    /// it is an operator call and needs the admin role.
    async fn flush(&self, _req: Request<FlushRequest>) -> Reply<FlushResponse> {
        Ok(Response::new(self.node.flush().await?))
    }
}
