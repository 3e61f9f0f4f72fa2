//! Waiting on what the cluster reports: health and status, the leader, an applied
//! index, convergence, and reads through the leader.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sutra_proto::cluster::{ClusterStatusRequest, ClusterStatusResponse};
use sutra_proto::storage::{Concept, HealthCheckRequest, HealthCheckResponse, ReadOptions};

use super::{Cluster, POLL_RPC_TIMEOUT};
use crate::client::{self, ClientRole, NodeClient};
use crate::wait_until;

impl Cluster {
    /// Waits until every node has applied the leader's first entries (the membership and
    /// the leader's entry of its term). A follower learns the leader's id from its first
    /// heartbeat, which can come before those entries: until they arrive it knows no
    /// address to relay to, and a test that froze the leader in that moment would test
    /// start-up, not what it means to.
    pub(super) async fn wait_all_applied_first_entries(
        &self,
        leader: u64,
        ids: &[u64],
    ) -> Result<()> {
        let timeout = self.opts.start_timeout;
        // Whatever the leader's log holds once it leads and the cluster's parameters are
        // applied (the membership, the entry of its term when it appended one, the
        // parameters), applied on the leader first.
        let index = wait_until(
            "the leader applying its first entries",
            timeout,
            async || {
                if self.health(leader).await?.quota_bytes == 0 {
                    bail!("leader {leader} has not applied the cluster's parameters");
                }
                let st = self.status(leader).await?;
                if st.last_log_index >= 1 && st.applied_index >= st.last_log_index {
                    Ok(st.applied_index)
                } else {
                    bail!(
                        "leader {leader} applied {} of {}",
                        st.applied_index,
                        st.last_log_index
                    )
                }
            },
        )
        .await?;
        for &id in ids {
            self.wait_applied(id, index, timeout).await?;
        }
        Ok(())
    }

    /// Node `id`'s `HealthCheck`, within a short deadline.
    pub async fn health(&self, id: u64) -> Result<HealthCheckResponse> {
        let mut c = self.client(id, ClientRole::Reader)?;
        let r = tokio::time::timeout(
            POLL_RPC_TIMEOUT,
            c.storage.health_check(HealthCheckRequest {}),
        )
        .await
        .with_context(|| format!("node {id}: HealthCheck timed out"))?
        .with_context(|| format!("node {id}: HealthCheck"))?;
        Ok(r.into_inner())
    }

    /// Node `id`'s `ClusterService/Status`, within a short deadline.
    pub async fn status(&self, id: u64) -> Result<ClusterStatusResponse> {
        let mut c = self.client(id, ClientRole::Reader)?;
        let r = tokio::time::timeout(POLL_RPC_TIMEOUT, c.cluster.status(ClusterStatusRequest {}))
            .await
            .with_context(|| format!("node {id}: Status timed out"))?
            .with_context(|| format!("node {id}: Status"))?;
        Ok(r.into_inner())
    }

    /// Fails if one of `ids` has exited, with its exit status and log tail.
    pub(super) fn check_alive(&self, ids: &[u64]) -> Result<()> {
        for &id in ids {
            let node = self.node(id)?;
            let mut p = node.process();
            if p.has_exited() {
                bail!(
                    "node {id} exited ({:?}); its log ends:\n{}",
                    p.last_exit(),
                    p.log_tail(30)
                );
            }
        }
        Ok(())
    }

    /// Waits until every node of `ids` names the same leader, that leader is one of
    /// `ids`, and it says it is the leader. Returns its id. Fails at once if one of them
    /// exits.
    pub async fn wait_for_leader(&self, ids: &[u64], timeout: Duration) -> Result<u64> {
        let what = format!("nodes {ids:?} agreeing on a leader");
        let leader = wait_until(&what, timeout, async || {
            self.check_alive(ids).map_err(crate::fatal)?;
            let mut leaders = BTreeMap::new();
            for &id in ids {
                let h = self.health(id).await?;
                leaders.insert(id, (h.leader_id, h.role.clone(), h.term));
            }
            let named: Vec<u64> = leaders.values().map(|l| l.0).collect();
            let first = named[0];
            if first == 0 || named.iter().any(|&l| l != first) {
                bail!("leaders as seen by each node: {leaders:?}");
            }
            match leaders.get(&first) {
                Some((_, role, _)) if role == "leader" => Ok(first),
                Some(_) => bail!("node {first} is named leader but does not say so: {leaders:?}"),
                None => bail!("the leader {first} is not among {ids:?}: {leaders:?}"),
            }
        })
        .await?;
        Ok(leader)
    }

    /// The leader as the running nodes see it: the node that says it leads in the highest
    /// term, named leader by most of the nodes that name one. Nodes that name no leader
    /// (one not yet added, one cut off) and nodes that do not answer are left out.
    pub async fn leader(&self, timeout: Duration) -> Result<u64> {
        wait_until("a leader among the running nodes", timeout, async || {
            let mut seen = BTreeMap::new();
            for id in self.running_ids() {
                if let Ok(h) = self.health(id).await {
                    seen.insert(id, (h.leader_id, h.role, h.term));
                }
            }
            let Some((&leader, &(_, _, term))) = seen
                .iter()
                .filter(|(_, (_, role, _))| role == "leader")
                .max_by_key(|(_, (_, _, term))| *term)
            else {
                bail!("no node says it leads: {seen:?}");
            };
            let naming: Vec<u64> = seen.values().map(|s| s.0).filter(|&l| l != 0).collect();
            let votes = naming.iter().filter(|&&l| l == leader).count();
            if 2 * votes <= naming.len() {
                bail!("node {leader} leads in term {term} but most nodes name another: {seen:?}");
            }
            Ok(leader)
        })
        .await
    }

    /// Waits until node `id` has applied at least log index `index`.
    pub async fn wait_applied(&self, id: u64, index: u64, timeout: Duration) -> Result<u64> {
        wait_until(
            &format!("node {id} applying index {index}"),
            timeout,
            async || {
                self.check_alive(&[id]).map_err(crate::fatal)?;
                let h = self.health(id).await?;
                if h.applied_index >= index {
                    Ok(h.applied_index)
                } else {
                    bail!("applied {} of {index}", h.applied_index)
                }
            },
        )
        .await
    }

    /// Every concept under `prefix` as node `id` serves it with `read`, retried while the
    /// node answers UNAVAILABLE or DEADLINE_EXCEEDED (catching up, no leader yet).
    pub async fn read_all(
        &self,
        id: u64,
        role: ClientRole,
        prefix: &str,
        read: Option<ReadOptions>,
        timeout: Duration,
    ) -> Result<BTreeMap<String, Concept>> {
        let c = self.client(id, role)?;
        wait_until(
            &format!("node {id} serving a scan of {prefix:?}"),
            timeout,
            async || {
                self.check_alive(&[id]).map_err(crate::fatal)?;
                let mut storage = c.storage.clone();
                match client::scan_all(&mut storage, prefix, read).await {
                    Ok(all) => Ok(all),
                    Err(e) => {
                        let retry = e.downcast_ref::<tonic::Status>().is_some_and(|s| {
                            matches!(
                                s.code(),
                                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
                            )
                        });
                        if retry { Err(e) } else { Err(crate::fatal(e)) }
                    }
                }
            },
        )
        .await
    }

    /// Calls the leader with `role`'s certificate: looks the leader up among the running
    /// nodes, calls it, and starts again while the answer is UNAVAILABLE (the leader
    /// changed, no quorum yet). Any other error ends the call.
    pub async fn call_leader<T>(
        &self,
        role: ClientRole,
        what: &str,
        timeout: Duration,
        mut call: impl AsyncFnMut(NodeClient) -> Result<T, tonic::Status>,
    ) -> Result<T> {
        wait_until(what, timeout, async || {
            let leader = self.leader(POLL_RPC_TIMEOUT * 5).await?;
            let c = self.client(leader, role)?;
            match call(c).await {
                Ok(v) => Ok(v),
                Err(s) if s.code() == tonic::Code::Unavailable => {
                    Err(anyhow::Error::new(s).context(format!("leader {leader}")))
                }
                Err(s) => Err(crate::fatal(
                    anyhow::Error::new(s).context(format!("leader {leader}")),
                )),
            }
        })
        .await
    }

    /// Every concept under `prefix`, read LINEARIZABLE from the leader (looked up again if
    /// leadership moves meanwhile).
    pub async fn read_all_on_leader(
        &self,
        prefix: &str,
        timeout: Duration,
    ) -> Result<BTreeMap<String, Concept>> {
        wait_until(
            &format!("a linearizable scan of {prefix:?} on the leader"),
            timeout,
            async || {
                let leader = self.leader(POLL_RPC_TIMEOUT * 5).await?;
                let mut c = self.client(leader, ClientRole::Reader)?;
                client::scan_all(&mut c.storage, prefix, client::linearizable())
                    .await
                    .with_context(|| format!("leader {leader}"))
            },
        )
        .await
    }

    /// Waits until every node of `ids` reports the same content hash at the same applied
    /// log index (`GetStats` with `include_content_hash`), and returns that index and
    /// hash. Two of them reporting one index with different hashes have diverged: that
    /// fails at once, as does one of them exiting.
    pub async fn wait_converged(&self, ids: &[u64], timeout: Duration) -> Result<(u64, String)> {
        anyhow::ensure!(!ids.is_empty(), "wait_converged needs at least one node");
        let what = format!("nodes {ids:?} reporting one content hash at one applied index");
        wait_until(&what, timeout, async || {
            self.check_alive(ids).map_err(crate::fatal)?;
            let mut seen = BTreeMap::new();
            for &id in ids {
                let mut c = self.client(id, ClientRole::Reader)?;
                let req = sutra_proto::storage::GetStatsRequest {
                    include_content_hash: true,
                };
                let r = tokio::time::timeout(POLL_RPC_TIMEOUT, c.storage.get_stats(req))
                    .await
                    .with_context(|| format!("node {id}: GetStats timed out"))?
                    .with_context(|| format!("node {id}: GetStats"))?
                    .into_inner();
                anyhow::ensure!(!r.content_hash.is_empty(), "node {id} sent no content hash");
                seen.insert(id, (r.content_hash_index, r.content_hash));
            }
            let mut by_index: BTreeMap<u64, Vec<&String>> = BTreeMap::new();
            for (index, hash) in seen.values() {
                by_index.entry(*index).or_default().push(hash);
            }
            if by_index.values().any(|h| h.iter().any(|x| *x != h[0])) {
                return Err(crate::fatal(anyhow::anyhow!(
                    "replicas diverged: different content at one applied index: {seen:?}"
                )));
            }
            match by_index.len() {
                1 => Ok(seen.into_values().next().expect("ids is not empty")),
                _ => bail!("(applied index, content hash) per node: {seen:?}"),
            }
        })
        .await
    }
}
