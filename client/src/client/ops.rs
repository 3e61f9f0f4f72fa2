//! The operations calls of a [`Client`]: health, stats and flush of one node, not
//! retried, and their `_all` forms over every configured node.

use std::future::Future;
use std::time::Duration;

use sutra_proto::storage::storage_service_client::StorageServiceClient;
use sutra_proto::storage::{
    FlushRequest, FlushResponse, GetStatsRequest, GetStatsResponse, HealthCheckRequest,
    HealthCheckResponse,
};
use tonic::Status;
use tonic::transport::Channel;

use super::Client;
use crate::call::request;
use crate::error::ClientError;
use crate::options::CallOptions;

impl Client {
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
        let budget = self.calls.budget(opts.deadline);
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
