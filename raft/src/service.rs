//! [`RaftGrpcService`]: the peer side of the network, serving `sutra.raft.RaftService`
//! over the local `openraft::Raft`.
//!
//! ```text
//!  peer ──gRPC──▶ authorize (PeerAuth: identity, membership)
//!                  ├─ AppendEntries / Vote / PreVote / TransferLeader
//!                  │     decode (INVALID_ARGUMENT if malformed, or if entries do not
//!                  │     follow prev_log_id consecutively), caller must be the
//!                  │     request's leader/candidate, then Raft::append_entries / vote / …
//!                  └─ InstallSnapshot stream
//!                        header → (lower vote: answer at once) → SnapshotReceiver::begin
//!                        size bound, data chunks, contiguous, per-chunk and whole-stream
//!                        deadlines → blocking writer
//!                        (bounded channel) → finish(size, crc32c) → check position
//!                        → Raft::install_full_snapshot(vote, snapshot)
//! ```
//!
//! Failures become gRPC statuses in one place, `service/status.rs`.

mod auth;
mod snapshot_receiver;
mod status;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sutra_engine::Engine;
use sutra_proto::raft as pb;
use sutra_proto::raft::raft_service_server::{RaftService, RaftServiceServer};
use tonic::{Request, Response, Status, Streaming};

pub use auth::{AllowAll, PeerAuth, PeerIdentity, PeerMembership, peer_membership};
use status::ServiceError;

use crate::pb::{FromProto, IntoProto};
use crate::types::{NodeId, Raft, TypeConfig};

/// Options of the peer service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// An InstallSnapshot stream fails with `DEADLINE_EXCEEDED` if the next chunk does not
    /// arrive within this time. Default: 10 s (match `NetworkConfig::snapshot_chunk_timeout`).
    pub snapshot_chunk_timeout: Duration,
    /// Largest gRPC message accepted or sent, in bytes. Default: 64 MiB (match
    /// `NetworkConfig::max_message_bytes`).
    pub max_message_bytes: usize,
    /// Largest snapshot accepted: a header announcing more fails with `RESOURCE_EXHAUSTED`
    /// before anything is written. Default: the engine's default `max_file_bytes` (a larger
    /// snapshot could not be opened anyway).
    pub max_snapshot_bytes: u64,
    /// An InstallSnapshot stream fails with `DEADLINE_EXCEEDED` if its last chunk has not
    /// arrived this long after the call began, however steadily chunks come. Default: 30 min.
    pub snapshot_receive_timeout: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            snapshot_chunk_timeout: Duration::from_secs(10),
            max_message_bytes: 64 << 20,
            max_snapshot_bytes: sutra_engine::EngineConfig::default().max_file_bytes,
            snapshot_receive_timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// Counters of the peer service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServiceStats {
    /// Calls refused by [`PeerAuth`] or for impersonation.
    pub rejected_calls: u64,
    /// Snapshots received in full and verified (length, checksum, position), counted as they
    /// are handed to openraft, which may still refuse one for a stale vote.
    pub snapshots_received: u64,
    /// Snapshot data bytes received (including transfers that failed).
    pub snapshot_bytes_received: u64,
}

#[derive(Debug, Default)]
struct Counters {
    rejected_calls: AtomicU64,
    snapshots_received: AtomicU64,
    snapshot_bytes_received: AtomicU64,
}

/// Called after this node accepted an AppendEntries (entries or a heartbeat) from the
/// current leader, with the leader's commit index it carried (a log index; `None` before
/// the leader committed anything).
pub type LeaderContactHook = Arc<dyn Fn(Option<u64>) + Send + Sync>;

/// Serves `sutra.raft.RaftService` for one node. Cheap to clone.
#[derive(Clone)]
pub struct RaftGrpcService {
    inner: Arc<Inner>,
    on_append_entries: Option<LeaderContactHook>,
}

struct Inner {
    raft: Raft,
    /// The engine the state machine runs on: snapshots are received into its directory.
    engine: Engine,
    /// The leader's gate for relayed writes; also the replicated cluster state (removed
    /// nodes).
    proposer: crate::Proposer,
    /// The cluster this node belongs to.
    identity: crate::ClusterIdentity,
    auth: Arc<dyn PeerAuth>,
    config: ServiceConfig,
    counters: Counters,
}

impl fmt::Debug for RaftGrpcService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaftGrpcService")
            .field("id", self.inner.raft.node_id())
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .field("on_append_entries", &self.on_append_entries.is_some())
            .finish()
    }
}

impl RaftGrpcService {
    /// One relayed write: decoded, judged by the cluster's parameters (not by what the
    /// relaying node believed) before it is ordered, proposed, and its response encoded.
    async fn relayed(&self, command: &[u8]) -> Result<Vec<u8>, Status> {
        let cmd = crate::pb::decode_command(command).map_err(ServiceError::from)?;
        let proposer = &self.inner.proposer;
        if let Some(batch) = cmd.batch() {
            proposer
                .validate(batch)
                .map_err(crate::ProposeError::into_status)?;
        }
        let resp = proposer
            .propose(cmd)
            .await
            .map_err(crate::ProposeError::into_status)?;
        Ok(crate::pb::encode_response(&resp).map_err(ServiceError::from)?)
    }

    /// The service for the Raft instance behind `proposer` (whose engine receives
    /// snapshots). Every call is first passed to `auth`.
    pub fn new(proposer: crate::Proposer, auth: Arc<dyn PeerAuth>, config: ServiceConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                raft: proposer.raft().clone(),
                engine: proposer.engine().clone(),
                proposer,
                identity: crate::ClusterIdentity::default(),
                auth,
                config,
                counters: Counters::default(),
            }),
            on_append_entries: None,
        }
    }

    /// Calls `hook` whenever an AppendEntries from the current leader was handled (any
    /// answer but "higher vote", which means the sender is a deposed leader): the node's
    /// "last leader contact" for staleness-bounded reads. Runs on the request path: keep it
    /// cheap.
    pub fn on_append_entries(mut self, hook: LeaderContactHook) -> Self {
        self.on_append_entries = Some(hook);
        self
    }

    /// The tonic service to mount (`Server::builder().add_service(...)`), with the message
    /// size limits applied.
    pub fn into_server(self) -> RaftServiceServer<Self> {
        let max = self.inner.config.max_message_bytes;
        RaftServiceServer::new(self)
            .max_decoding_message_size(max)
            .max_encoding_message_size(max)
    }

    /// A copy of the counters.
    pub fn stats(&self) -> ServiceStats {
        let c = &self.inner.counters;
        ServiceStats {
            rejected_calls: c.rejected_calls.load(Ordering::Relaxed),
            snapshots_received: c.snapshots_received.load(Ordering::Relaxed),
            snapshot_bytes_received: c.snapshot_bytes_received.load(Ordering::Relaxed),
        }
    }

    /// Checks every call against `identity`'s cluster id (set it right after
    /// [`new`](Self::new)).
    ///
    /// # Panics
    ///
    /// If the service was cloned already.
    pub fn with_cluster_identity(mut self, identity: crate::ClusterIdentity) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("the cluster identity is set before the service is shared")
            .identity = identity;
        self
    }

    /// Runs [`PeerAuth`] on the call's metadata and extensions, then checks that the
    /// caller belongs to this cluster ([`check_cluster`](Self::check_cluster)); returns
    /// the caller and the message. `adopt`: a leader's call (entries, snapshots) may give
    /// a node that belongs to no cluster yet its cluster id.
    fn authorize<T>(&self, request: Request<T>, adopt: bool) -> Result<(Caller, T), Status> {
        let (metadata, extensions, message) = request.into_parts();
        let probe = Request::from_parts(metadata, extensions, ());
        let checked = self
            .inner
            .auth
            .authorize(&probe, &self.inner.raft)
            .and_then(|identity| {
                self.check_cluster(&probe, identity, adopt)?;
                Ok(identity)
            });
        match checked {
            Ok(identity) => Ok((Caller(identity), message)),
            Err(status) => {
                self.inner
                    .counters
                    .rejected_calls
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(remote = ?probe.remote_addr(), code = ?status.code(), message = status.message(), "peer call refused");
                Err(status)
            }
        }
    }

    /// Refuses a request in which an identified caller speaks for another node.
    fn check_caller(&self, caller: Caller, claimed: NodeId) -> Result<(), ServiceError> {
        match caller.0 {
            PeerIdentity::Node(id) if id != claimed => {
                self.inner
                    .counters
                    .rejected_calls
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(caller = id, claimed, "peer call refused: impersonation");
                Err(ServiceError::Impersonation {
                    caller: id,
                    claimed,
                })
            }
            _ => Ok(()),
        }
    }
}

impl RaftGrpcService {
    /// Refuses a node that left this cluster (its certificate keeps no power here), and a
    /// caller of another cluster: both cluster ids known and different, or this node's
    /// known and the caller's missing. A node that belongs to no cluster yet takes the id
    /// of the first leader that replicates to it.
    fn check_cluster(
        &self,
        probe: &Request<()>,
        identity: PeerIdentity,
        adopt: bool,
    ) -> Result<(), Status> {
        if let PeerIdentity::Node(node) = identity
            && self.inner.proposer.cluster().is_removed(node)
        {
            return Err(Status::permission_denied(format!(
                "node {node} was removed from this cluster; its certificate is refused"
            )));
        }
        let theirs = crate::cluster_id::caller_cluster_id(probe.metadata());
        match (self.inner.identity.get(), theirs) {
            (Some(mine), Some(theirs)) if mine == theirs => Ok(()),
            (Some(mine), Some(theirs)) => Err(Status::permission_denied(format!(
                "this node belongs to cluster {mine}, the caller to cluster {theirs}"
            ))),
            (Some(mine), None) => Err(Status::permission_denied(format!(
                "this node belongs to cluster {mine} and the caller names none"
            ))),
            (None, Some(theirs)) if adopt => self
                .inner
                .identity
                .set(&theirs)
                .map_err(|e| Status::permission_denied(e.to_string())),
            (None, _) => Ok(()),
        }
    }
}

/// The authorized caller of one call.
#[derive(Debug, Clone, Copy)]
struct Caller(PeerIdentity);

impl RaftGrpcService {
    /// Vote and PreVote: the same checks, then the matching openraft call.
    async fn handle_vote(
        &self,
        request: Request<pb::VoteRequest>,
        pre_vote: bool,
    ) -> Result<Response<pb::VoteResponse>, Status> {
        let (caller, msg) = self.authorize(request, false)?;
        let req = openraft::raft::VoteRequest::<TypeConfig>::from_proto(msg)
            .map_err(ServiceError::from)?;
        self.check_caller(caller, req.vote.leader_id.node_id)?;
        let raft = &self.inner.raft;
        let resp = if pre_vote {
            raft.pre_vote(req).await
        } else {
            raft.vote(req).await
        }
        .map_err(ServiceError::from)?;
        Ok(Response::new(resp.into_proto()))
    }
}

#[tonic::async_trait]
impl RaftService for RaftGrpcService {
    #[tracing::instrument(level = "debug", skip_all, fields(entries = request.get_ref().entries.len()))]
    async fn append_entries(
        &self,
        request: Request<pb::AppendEntriesRequest>,
    ) -> Result<Response<pb::AppendEntriesResponse>, Status> {
        let (caller, msg) = self.authorize(request, true)?;
        let req = openraft::raft::AppendEntriesRequest::<TypeConfig>::from_proto(msg)
            .map_err(ServiceError::from)?;
        self.check_caller(caller, req.vote.leader_id.node_id)?;
        let leader_commit = req.leader_commit.as_ref().map(|l| l.index);
        let resp = self
            .inner
            .raft
            .append_entries(req)
            .await
            .map_err(ServiceError::from)?;
        // Only a matching append means this node's log agrees with the leader's up to the
        // leader's entries: a conflict or a higher vote says nothing about freshness.
        if let Some(hook) = &self.on_append_entries
            && matches!(resp, openraft::raft::AppendEntriesResponse::Success)
        {
            hook(leader_commit);
        }
        Ok(Response::new(resp.into_proto()))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn vote(
        &self,
        request: Request<pb::VoteRequest>,
    ) -> Result<Response<pb::VoteResponse>, Status> {
        self.handle_vote(request, false).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn pre_vote(
        &self,
        request: Request<pb::VoteRequest>,
    ) -> Result<Response<pb::VoteResponse>, Status> {
        self.handle_vote(request, true).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn install_snapshot(
        &self,
        request: Request<Streaming<pb::SnapshotChunk>>,
    ) -> Result<Response<pb::SnapshotResponse>, Status> {
        let (caller, stream) = self.authorize(request, true)?;
        let resp = self.receive_snapshot(caller, stream).await?;
        Ok(Response::new(resp.into_proto()))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn transfer_leader(
        &self,
        request: Request<pb::TransferLeaderRequest>,
    ) -> Result<Response<pb::TransferLeaderResponse>, Status> {
        let (caller, msg) = self.authorize(request, false)?;
        let req = openraft::raft::TransferLeaderRequest::<TypeConfig>::from_proto(msg)
            .map_err(ServiceError::from)?;
        self.check_caller(caller, req.from_leader().leader_id.node_id)?;
        let resp = self
            .inner
            .raft
            .handle_transfer_leader(req)
            .await
            .map_err(ServiceError::from)?;
        Ok(Response::new(resp.into_proto()))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn forward_write(
        &self,
        request: Request<pb::ForwardWriteRequest>,
    ) -> Result<Response<pb::ForwardWriteResponse>, Status> {
        let (_caller, msg) = self.authorize(request, false)?;
        let response = self.relayed(&msg.command).await?;
        Ok(Response::new(pb::ForwardWriteResponse { response }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(writes = request.get_ref().commands.len()))]
    async fn forward_writes(
        &self,
        request: Request<pb::ForwardWritesRequest>,
    ) -> Result<Response<pb::ForwardWritesResponse>, Status> {
        let (_caller, msg) = self.authorize(request, false)?;
        // Proposed together, so they share the log's appends and syncs; each one is
        // answered as a ForwardWrite of it alone would be.
        let outcomes =
            futures_util::future::join_all(msg.commands.iter().map(|c| self.relayed(c))).await;
        let results = outcomes
            .into_iter()
            .map(crate::pb::forwarded_to_proto)
            .collect();
        Ok(Response::new(pb::ForwardWritesResponse { results }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn read_index(
        &self,
        request: Request<pb::ReadIndexRequest>,
    ) -> Result<Response<pb::ReadIndexResponse>, Status> {
        let (_caller, _msg) = self.authorize(request, false)?;
        let read_index = crate::read_index(&self.inner.raft)
            .await
            .map_err(crate::ProposeError::into_status)?;
        Ok(Response::new(pb::ReadIndexResponse { read_index }))
    }
}
