//! [`PeerClient`]: the RPCs to one peer, as openraft's `RaftNetworkV2`.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use openraft::error::{RPCError, ReplicationClosed, StreamingError};
use openraft::network::{RPCOption, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::type_config::alias::SnapshotOf;
use openraft::{OptionalSend, RPCTypes};
use sutra_proto::raft::raft_service_client::RaftServiceClient;
use tonic::transport::Channel;
use tonic::{Response, Status};

use super::Shared;
use super::rpc_error::{self, RpcError};
use crate::cluster_id::ClusterIdStamp;
use crate::pb::{FromProto, IntoProto, TryIntoProto};
use crate::snapshot::SnapshotData;
use crate::types::{NodeId, TypeConfig, Vote};

/// A client of a peer's `RaftService`, stamping this node's cluster id on every call.
pub type PeerGrpcClient =
    RaftServiceClient<tonic::service::interceptor::InterceptedService<Channel, ClusterIdStamp>>;

pub(super) type Client = PeerGrpcClient;

/// Sends RPCs to one peer over its cached channel. Made by [`PeerNetwork`](super::PeerNetwork).
pub struct PeerClient {
    pub(super) shared: Arc<Shared>,
    pub(super) target: NodeId,
    /// The client, or why there is none (the endpoint could not be built): every RPC then
    /// fails as `Unreachable`, so openraft backs off and asks again later.
    pub(super) client: Result<Client, String>,
}

impl fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerClient")
            .field("id", &self.shared.id)
            .field("target", &self.target)
            .field("connected", &self.client.is_ok())
            .finish()
    }
}

impl PeerClient {
    pub(super) fn new(shared: Arc<Shared>, target: NodeId, client: Result<Client, String>) -> Self {
        Self {
            shared,
            target,
            client,
        }
    }

    pub(super) fn client(&self) -> Result<Client, RpcError> {
        self.client
            .clone()
            .map_err(|reason| rpc_error::no_channel(&reason))
    }

    /// One unary call with the deadline from `option`: sent as `grpc-timeout` so the server
    /// gives up too, and enforced here.
    async fn unary<Req, Resp, F, Fut>(
        &self,
        action: RPCTypes,
        option: &RPCOption,
        req: Req,
        call: F,
    ) -> Result<Resp, RpcError>
    where
        F: FnOnce(Client, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        let client = self.client()?;
        let timeout = self.shared.config.rpc_timeout(option);
        let mut request = tonic::Request::new(req);
        request.set_timeout(timeout);
        let (id, target) = (self.shared.id, self.target);
        match tokio::time::timeout(timeout, call(client, request)).await {
            Ok(Ok(resp)) => Ok(resp.into_inner()),
            Ok(Err(status)) => {
                tracing::debug!(target_node = target, %action, code = ?status.code(), message = status.message(), "peer rpc failed");
                Err(rpc_error::from_status(status, action, id, target, timeout))
            }
            Err(_elapsed) => Err(rpc_error::timeout(action, id, target, timeout)),
        }
    }

    async fn vote_rpc(
        &self,
        rpc: VoteRequest<TypeConfig>,
        option: &RPCOption,
        pre_vote: bool,
    ) -> Result<VoteResponse<TypeConfig>, RpcError> {
        let resp = self
            .unary(
                RPCTypes::Vote,
                option,
                rpc.into_proto(),
                |mut c, r| async move {
                    if pre_vote {
                        c.pre_vote(r).await
                    } else {
                        c.vote(r).await
                    }
                },
            )
            .await?;
        VoteResponse::from_proto(resp).map_err(|e| rpc_error::malformed(&e))
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = SnapshotData;

    #[tracing::instrument(level = "debug", skip_all, fields(target_node = self.target, entries = rpc.entries.len()))]
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let req = rpc.try_into_proto().map_err(|e| rpc_error::malformed(&e))?;
        let resp = self
            .unary(
                RPCTypes::AppendEntries,
                &option,
                req,
                |mut c, r| async move { c.append_entries(r).await },
            )
            .await?;
        AppendEntriesResponse::from_proto(resp).map_err(|e| rpc_error::malformed(&e))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(target_node = self.target))]
    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.vote_rpc(rpc, &option, false).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(target_node = self.target))]
    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.vote_rpc(rpc, &option, true).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(target_node = self.target, last_log_id = ?snapshot.meta.last_log_id))]
    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: SnapshotOf<TypeConfig, SnapshotData>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        self.send_snapshot(vote, snapshot, cancel, option).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(target_node = self.target))]
    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        let resp = self
            .unary(
                RPCTypes::TransferLeader,
                &option,
                req.into_proto(),
                |mut c, r| async move { c.transfer_leader(r).await },
            )
            .await?;
        TransferLeaderResponse::<TypeConfig>::from_proto(resp).map_err(|e| rpc_error::malformed(&e))
    }
}
