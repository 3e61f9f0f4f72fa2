//! The read barrier: what a read must wait for (or be refused for) before the engine is
//! read, for each consistency level the request names.

use std::time::Duration;

use openraft::ServerState;
use sutra_proto::storage as pb;

use crate::node::{Node, SESSION_WAIT};
use crate::status::ServiceError;

impl Node {
    /// A LINEARIZABLE read barrier: the leader confirms its leadership with a quorum and
    /// names a read index (asked over the peer channel when this node follows); this
    /// node then waits until it has applied it.
    async fn linearizable_read(&self) -> Result<(), ServiceError> {
        let read_index = if self.raft.is_leader() {
            sutra_raft::read_index(&self.raft).await?
        } else {
            let (leader, client) = self.leader_client().await?;
            self.call_leader(leader, || {
                let mut client = client.clone();
                async move {
                    client
                        .read_index(sutra_proto::raft::ReadIndexRequest {})
                        .await
                }
            })
            .await?
            .read_index
        };
        self.raft
            .wait(Some(SESSION_WAIT))
            .applied_index_at_least(Some(read_index), "read index")
            .await
            .map_err(|_| {
                ServiceError::Deadline(format!(
                    "this node did not apply up to the leader's read index {read_index} within {SESSION_WAIT:?}"
                ))
            })?;
        Ok(())
    }

    /// Establishes the consistency a read asks for; returns the metadata to answer with.
    /// The options have passed `validate::read_options` at the edge.
    pub async fn read_barrier(
        &self,
        read: Option<pb::ReadOptions>,
    ) -> Result<pb::ReadMeta, ServiceError> {
        let read = read.unwrap_or_default();
        let consistency = read.consistency();
        match consistency {
            pb::Consistency::Unspecified | pb::Consistency::Linearizable => {
                self.linearizable_read().await?
            }
            // A leader lease is only safe with a configured clock-drift bound and a vote
            // delay after restart; until those exist, LEASE reads are served on the leader
            // with a ReadIndex round, which gives the same answer with a stronger guarantee.
            pb::Consistency::Lease if self.raft.is_leader() => self.linearizable_read().await?,
            pb::Consistency::Lease => return Err(self.not_leader()),
            pb::Consistency::Session => {
                if let Some(index) = sutra_raft::log_index(read.session_index) {
                    self.raft
                        .wait(Some(SESSION_WAIT))
                        .applied_index_at_least(Some(index), "session read")
                        .await
                        .map_err(|_| {
                            ServiceError::Deadline(format!(
                                "this node did not apply up to session index {} within {SESSION_WAIT:?}",
                                read.session_index
                            ))
                        })?;
                }
            }
            pb::Consistency::Bounded => self.bounded_read(read.max_staleness_ms).await?,
            pb::Consistency::Stale => {}
        }
        Ok(self.read_meta(consistency))
    }

    /// A read no staler than `max_staleness_ms`. The leader is fresh while a quorum
    /// acknowledged it within the bound. A follower is fresh once it has applied what the
    /// leader had committed at its last contact, if that contact is within the bound: the
    /// bound is on the age of the data, not only on the time since the leader was heard
    /// (a follower minutes behind in applying refuses, whenever it last heard a heartbeat).
    async fn bounded_read(&self, max_staleness_ms: u64) -> Result<(), ServiceError> {
        let m = self.metrics();
        if m.state == ServerState::Leader {
            // A leader cut off from the others keeps believing it leads: it is fresh only
            // while a quorum acknowledged it within the bound.
            let acked_ms_ago = m
                .last_quorum_acked
                .as_ref()
                .map(|t| openraft::async_runtime::Instant::elapsed(&**t).as_millis() as u64);
            return match acked_ms_ago {
                Some(ms) if ms <= max_staleness_ms => Ok(()),
                _ => Err(ServiceError::Unavailable(format!(
                    "this leader has not heard from a quorum within {max_staleness_ms} ms"
                ))),
            };
        }
        let bound = Duration::from_millis(max_staleness_ms);
        let contact = self.leader_contact.lock().map(|(at, c)| (at.elapsed(), c));
        let Some((leader_commit, left)) = bounded_target(contact, bound) else {
            return Err(self.not_leader());
        };
        self.raft
            .wait(Some(left))
            .applied_index_at_least(leader_commit, "bounded read")
            .await
            .map_err(|_| self.not_leader())?;
        Ok(())
    }

    /// Read metadata at this moment; `applied_index` is a log position, like versions
    /// and SESSION tokens (`sutra_raft::log_position`).
    pub fn read_meta(&self, consistency: pb::Consistency) -> pb::ReadMeta {
        pb::ReadMeta {
            served_by: self.id,
            applied_index: self.applied_index(),
            consistency: consistency as i32,
            leader_id: self.current_leader().unwrap_or(0),
        }
    }
}

/// What a follower's BOUNDED read must wait for, given its last leader contact (how long
/// ago, and the leader's commit index it carried): that commit applied here, within what
/// is left of the bound. `None` if no contact is within the bound: the data may be older.
fn bounded_target(
    contact: Option<(Duration, Option<u64>)>,
    bound: Duration,
) -> Option<(Option<u64>, Duration)> {
    let (ago, leader_commit) = contact?;
    (ago <= bound).then(|| (leader_commit, bound - ago))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_read_waits_for_what_the_leader_had_committed_within_the_bound() {
        let ms = Duration::from_millis;
        // Heard 100 ms ago, with the leader at commit 42: apply 42 within 900 ms.
        assert_eq!(
            bounded_target(Some((ms(100), Some(42))), ms(1000)),
            Some((Some(42), ms(900)))
        );
        // A follower far behind in applying still has a recent contact, but must catch up
        // with its commit: freshness is the data's age, not the heartbeat's.
        assert_eq!(
            bounded_target(Some((ms(5), Some(1_000_000))), ms(1000)).map(|t| t.0),
            Some(Some(1_000_000))
        );
        // No contact within the bound, or none at all: stale.
        assert_eq!(bounded_target(Some((ms(1500), Some(42))), ms(1000)), None);
        assert_eq!(bounded_target(None, ms(1000)), None);
    }
}
