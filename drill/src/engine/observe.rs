//! What the drill observes of the cluster: every node's health, the leader, a
//! rejoined node, catching up, and whether content diverged.

use super::*;

impl<D: FaultDriver> Engine<'_, D> {
    pub(super) async fn health(
        &self,
        ids: &[u64],
    ) -> Vec<(u64, Result<HealthCheckResponse, ClientError>)> {
        health_of(&self.ops, self.driver, ids).await
    }

    /// The node that says it leads in the highest term.
    pub(super) async fn find_leader(&self, timeout: Duration) -> Result<u64, DrillError> {
        let start = Instant::now();
        loop {
            let hs = self.health(&self.ids).await;
            if let Some(l) = leader_of(&hs) {
                return Ok(l);
            }
            if start.elapsed() > timeout {
                return Err(DrillError::NoLeader {
                    waited: timeout,
                    last: health_summary(&hs),
                });
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Polls `among` until one of them (not `old`) says it leads; the time from `since`.
    pub(super) fn poll_leader(
        &self,
        among: &[u64],
        old: Option<u64>,
        since: Instant,
    ) -> JoinHandle<Option<Duration>> {
        let nodes: Vec<(u64, String)> = among
            .iter()
            .map(|&id| (id, self.driver.api_endpoint(id)))
            .collect();
        let ops = self.ops.clone();
        let timeout = self.config.leader_timeout;
        tokio::spawn(async move {
            while since.elapsed() < timeout {
                let hs = join_all(
                    nodes
                        .iter()
                        .map(|(_, ep)| ops.health(ep, CallOptions::new().deadline(POLL_TIMEOUT))),
                )
                .await;
                if hs.iter().flatten().any(|h| {
                    h.role == "leader" && h.leader_id == h.node_id && Some(h.node_id) != old
                }) {
                    return Some(since.elapsed());
                }
                tokio::time::sleep(POLL_EVERY).await;
            }
            None
        })
    }

    /// Waits until node `id` is healthy and has applied what the leader had applied
    /// when the wait began.
    pub(super) async fn wait_rejoined(&self, id: u64) -> Result<(), DrillError> {
        let start = Instant::now();
        let target = self
            .health(&self.ids)
            .await
            .into_iter()
            .filter_map(|(_, h)| h.ok())
            .filter(|h| h.role == "leader")
            .map(|h| h.applied_index)
            .max()
            .unwrap_or(0);
        loop {
            let hs = self.health(&[id]).await;
            if let Some((_, Ok(h))) = hs.first()
                && h.healthy
                && h.applied_index >= target
            {
                return Ok(());
            }
            if start.elapsed() > self.config.catch_up_timeout {
                return Err(DrillError::NotCaughtUp {
                    waited: self.config.catch_up_timeout,
                    last: health_summary(&hs),
                });
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Waits until every node is healthy at one applied index; returns it and the leader.
    pub(super) async fn wait_caught_up(&self) -> Result<(u64, Option<u64>), DrillError> {
        let start = Instant::now();
        loop {
            let hs = self.health(&self.ids).await;
            let indexes: Vec<u64> = hs
                .iter()
                .filter_map(|(_, h)| h.as_ref().ok().filter(|h| h.healthy))
                .map(|h| h.applied_index)
                .collect();
            if indexes.len() == hs.len() && indexes.windows(2).all(|w| w[0] == w[1]) {
                return Ok((indexes[0], leader_of(&hs)));
            }
            if start.elapsed() > self.config.catch_up_timeout {
                return Err(DrillError::NotCaughtUp {
                    waited: self.config.catch_up_timeout,
                    last: health_summary(&hs),
                });
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Whether the nodes' content hashes differ at one applied index; `None` if some
    /// node does not report a hash or the nodes never report the same index.
    pub(super) async fn content_divergence(&self) -> Option<bool> {
        let req = GetStatsRequest {
            include_content_hash: true,
        };
        for _ in 0..20 {
            let stats = join_all(self.ids.iter().map(|&id| {
                let ep = self.driver.api_endpoint(id);
                async move {
                    self.ops
                        .stats_with(&ep, req, CallOptions::new().deadline(POLL_TIMEOUT * 4))
                        .await
                }
            }))
            .await;
            let stats: Vec<GetStatsResponse> = stats.into_iter().collect::<Result<_, _>>().ok()?;
            if stats.iter().any(|s| s.content_hash.is_empty()) {
                return None;
            }
            if stats
                .windows(2)
                .all(|w| w[0].content_hash_index == w[1].content_hash_index)
            {
                let diverged = stats
                    .windows(2)
                    .any(|w| w[0].content_hash != w[1].content_hash);
                if diverged {
                    tracing::error!(hashes = ?stats.iter().map(|s| (s.node_id, s.content_hash_index, s.content_hash.clone())).collect::<Vec<_>>(), "content hashes differ");
                }
                return Some(diverged);
            }
            tokio::time::sleep(POLL_EVERY * 5).await;
        }
        None
    }
}

pub(super) async fn health_of<D: FaultDriver>(
    ops: &Client,
    driver: &D,
    ids: &[u64],
) -> Vec<(u64, Result<HealthCheckResponse, ClientError>)> {
    let calls = ids.iter().map(|&id| {
        let ep = driver.api_endpoint(id);
        async move {
            (
                id,
                ops.health(&ep, CallOptions::new().deadline(POLL_TIMEOUT))
                    .await,
            )
        }
    });
    join_all(calls).await
}

/// The node that says it leads in the highest term, if any.
pub(super) fn leader_of(hs: &[(u64, Result<HealthCheckResponse, ClientError>)]) -> Option<u64> {
    hs.iter()
        .filter_map(|(_, h)| h.as_ref().ok())
        .filter(|h| h.role == "leader" && h.leader_id == h.node_id)
        .max_by_key(|h| h.term)
        .map(|h| h.node_id)
}

pub(super) fn health_summary(hs: &[(u64, Result<HealthCheckResponse, ClientError>)]) -> String {
    hs.iter()
        .map(|(id, h)| match h {
            Ok(h) => format!(
                "node {id}: {} term {} leader {} applied {}{}",
                h.role,
                h.term,
                h.leader_id,
                h.applied_index,
                if h.healthy {
                    String::new()
                } else {
                    format!(" ({})", h.reason)
                }
            ),
            Err(e) => format!("node {id}: {e}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}
