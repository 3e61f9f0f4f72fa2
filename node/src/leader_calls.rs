//! The calls a follower makes to its leader over the peer channel: relayed writes
//! (`ForwardWrite`, `ForwardWrites`) and read indexes, each only for as long as this node
//! still follows that leader, and the one mapping of the leader's answers to client
//! errors.

use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use sutra_proto::LeaderHint;
use sutra_raft::{Command, CommandResponse, NodeInfo, ProposeError};

use crate::node::Node;
use crate::status::ServiceError;

/// Whether a call to a peer failed in the connection (reset, closed, refused) rather than
/// with an answer from the peer: only the client side attaches a source error.
fn is_transport_failure(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Internal
    ) && std::error::Error::source(status).is_some()
}

/// A relayed write's response from `leader`.
fn decode_response(leader: u64, bytes: &[u8]) -> Result<CommandResponse, ServiceError> {
    sutra_raft::pb::decode_response(bytes).map_err(|e| {
        ServiceError::Internal(format!(
            "leader {leader} answered an undecodable response: {e}"
        ))
    })
}

impl Node {
    /// The leader's id and node record, if this node knows one other than itself.
    ///
    /// Right after the cluster is initialised a follower can know the leader's id (from
    /// its vote or first heartbeat) a moment before the log entry with the membership,
    /// which holds the leader's address, reaches it. That wait is short and bounded by
    /// one election timeout; after it, or if the leader changes meanwhile, the caller gets
    /// the usual not-leader answer.
    async fn remote_leader(&self) -> Result<(u64, NodeInfo), ServiceError> {
        let patience = Duration::from_millis(self.raft.config().election_timeout_max);
        let deadline = tokio::time::Instant::now() + patience;
        let mut metrics = self.raft.server_metrics();
        loop {
            let known = {
                let m = metrics.borrow_watched();
                match m.current_leader {
                    Some(id) if id != self.id => Some(
                        m.membership_config
                            .membership()
                            .get_node(&id)
                            .map(|node| (id, node.clone())),
                    ),
                    _ => None,
                }
            };
            match known {
                Some(Some(leader)) => return Ok(leader),
                Some(None) => {}
                None => return Err(self.not_leader()),
            }
            match tokio::time::timeout_at(deadline, metrics.changed()).await {
                Ok(Ok(())) => {}
                _ => return Err(self.not_leader()),
            }
        }
    }

    /// A peer-service client of the leader, over the cached peer channel.
    pub(crate) async fn leader_client(
        &self,
    ) -> Result<(u64, sutra_raft::PeerGrpcClient), ServiceError> {
        let (id, node) = self.remote_leader().await?;
        let client = self
            .network
            .leader_client(id, &node)
            .map_err(|e| ServiceError::Unavailable(format!("cannot reach leader {id}: {e}")))?;
        Ok((id, client))
    }

    /// The error for a failed call to the leader: its hint if it named another leader,
    /// otherwise unavailable.
    fn leader_call_failed(&self, leader: u64, status: tonic::Status) -> ServiceError {
        if let Some(hint) = LeaderHint::from_status(&status) {
            return ServiceError::NotLeader(Some(hint));
        }
        if let Some(refusal) = ProposeError::from_refusal(&status) {
            return refusal.into();
        }
        match status.code() {
            tonic::Code::InvalidArgument => ServiceError::Internal(format!(
                "leader {leader} refused a relayed request: {}",
                status.message()
            )),
            // The leader's own words: the alarm or quota that refused the write.
            tonic::Code::ResourceExhausted => {
                ServiceError::ResourceExhausted(status.message().to_string())
            }
            _ => ServiceError::Unavailable(format!("leader {leader}: {}", status.message())),
        }
    }

    /// Runs a call to `leader` for as long as this node still follows it. A leader that
    /// stops answering (paused, cut off) is replaced by an election; from then on waiting
    /// for it only delays the client, so the call is abandoned with UNAVAILABLE (and the
    /// new leader's address once known). A relayed write abandoned this way may still
    /// commit: the client's retry, with the same exactly-once identity, is answered from
    /// the session table.
    async fn while_leader<T>(
        &self,
        leader: u64,
        call: impl std::future::Future<Output = T>,
    ) -> Result<T, ServiceError> {
        // Server metrics change with the leader, not with every write: a relayed write in
        // flight is not woken by the others' progress.
        let mut metrics = self.raft.server_metrics();
        let deposed = async move {
            while metrics.borrow_watched().current_leader == Some(leader) {
                if metrics.changed().await.is_err() {
                    break;
                }
            }
        };
        tokio::select! {
            out = call => Ok(out),
            () = deposed => Err(self.not_leader()),
        }
    }

    /// Makes a call to `leader` for as long as this node follows it ([`while_leader`]).
    /// If the connection broke (reset, closed: not an answer from the leader) the channel
    /// reconnects and the call is made once more; callers only relay what is safe to
    /// repeat (a write carries its exactly-once identity).
    ///
    /// [`while_leader`]: Self::while_leader
    pub(crate) async fn call_leader<T, F, Fut>(
        &self,
        leader: u64,
        call: F,
    ) -> Result<T, ServiceError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.call_leader_raw(leader, call)
            .await?
            .map(tonic::Response::into_inner)
            .map_err(|s| self.leader_call_failed(leader, s))
    }

    /// [`call_leader`](Self::call_leader), with the leader's status left to the caller.
    async fn call_leader_raw<T, F, Fut>(
        &self,
        leader: u64,
        call: F,
    ) -> Result<Result<tonic::Response<T>, tonic::Status>, ServiceError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        Ok(match self.while_leader(leader, call()).await? {
            Err(s) if is_transport_failure(&s) => {
                tracing::debug!(leader, error = %s, "connection to the leader failed; one more try");
                self.while_leader(leader, call()).await?
            }
            other => other,
        })
    }

    /// Relays a write to the leader over the peer channel (a client may write through
    /// any node): with the next batch once relaying is started, else on its own. Safe to
    /// retry: the write carries its exactly-once identity.
    pub(crate) async fn forward_write(
        &self,
        cmd: &Command,
    ) -> Result<CommandResponse, ServiceError> {
        let command = sutra_raft::pb::encode_command(cmd)
            .map_err(|e| ServiceError::Internal(format!("encoding a write: {e}")))?;
        if let Some(relay) = self.relay.get() {
            return relay.relay(command).await;
        }
        let (leader, client) = self.leader_client().await?;
        self.forward_one(leader, &client, command).await
    }

    /// One encoded write relayed to `leader` with `ForwardWrite`.
    async fn forward_one(
        &self,
        leader: u64,
        client: &sutra_raft::PeerGrpcClient,
        command: Vec<u8>,
    ) -> Result<CommandResponse, ServiceError> {
        let request = sutra_proto::raft::ForwardWriteRequest { command };
        let resp = self
            .call_leader(leader, || {
                let (mut client, request) = (client.clone(), request.clone());
                async move { client.forward_write(request).await }
            })
            .await?;
        decode_response(leader, &resp.response)
    }

    /// Encoded writes relayed to the leader in one `ForwardWrites` call; each gets the
    /// answer a `ForwardWrite` of it alone would get. The outer error is the call's own
    /// (no leader, the leader replaced or unreachable): it is every write's answer. A
    /// leader without `ForwardWrites` (an older version) is sent each write on its own.
    pub(crate) async fn forward_writes(
        &self,
        commands: Vec<Vec<u8>>,
    ) -> Result<Vec<Result<CommandResponse, ServiceError>>, ServiceError> {
        let (leader, client) = self.leader_client().await?;
        let count = commands.len();
        let request = sutra_proto::raft::ForwardWritesRequest { commands };
        let answer = self
            .call_leader_raw(leader, || {
                let (mut client, request) = (client.clone(), request.clone());
                async move { client.forward_writes(request).await }
            })
            .await?;
        let results = match answer {
            Ok(resp) => resp.into_inner().results,
            Err(s) if s.code() == tonic::Code::Unimplemented => {
                let one_by_one = request
                    .commands
                    .into_iter()
                    .map(|command| self.forward_one(leader, &client, command));
                return Ok(futures_util::future::join_all(one_by_one).await);
            }
            Err(s) => return Err(self.leader_call_failed(leader, s)),
        };
        if results.len() != count {
            return Err(ServiceError::Internal(format!(
                "leader {leader} answered {} of {count} relayed writes",
                results.len()
            )));
        }
        Ok(results
            .into_iter()
            .map(|r| match sutra_raft::pb::forwarded_from_proto(r) {
                Ok(bytes) => decode_response(leader, &bytes),
                Err(status) => Err(self.leader_call_failed(leader, status)),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_connection_failures_count_as_transport_failures() {
        // What the leader itself answers: no source attached.
        assert!(!is_transport_failure(&tonic::Status::unavailable(
            "not the leader"
        )));
        assert!(!is_transport_failure(&tonic::Status::internal("bug")));
        // What the client side makes of a broken connection.
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let status = tonic::Status::from_error(Box::new(reset));
        assert!(is_transport_failure(&status), "{status:?}");
        // A source on a status that is an answer (not found, refused) does not count.
        let mut refused = tonic::Status::permission_denied("no");
        refused.set_source(std::sync::Arc::new(std::io::Error::other("x")));
        assert!(!is_transport_failure(&refused));
    }
}
