//! Apply: one replicated write batch, in order. Session dedup, then (in `State`)
//! validation, compare-and-set preconditions, record encoding and the index update.

use std::collections::HashMap;

use super::{Engine, State};
use crate::config::Limits;
use crate::error::{Error, Result};
use crate::index::{ConceptEntry, EdgeEntry, Index};
use crate::record;
use crate::session::Seen;
use crate::types::*;

impl Engine {
    /// Applies a write atomically at `ctx.version` (which must exceed the last one).
    ///
    /// Returns `Ok` with [`WriteOutcome::Rejected`] when the write's content or
    /// preconditions rule it out (nothing changes, the position still advances), and
    /// `Err` only when the engine cannot apply anything (poisoned, disk full); then no
    /// data changed (sessions older than the entry's log time may have expired, as they
    /// would on any replica at this entry). Records are written through the mapping
    /// without fsync:
    /// durability comes from the Raft log until the next checkpoint.
    pub fn apply(&self, batch: &WriteBatch, ctx: ApplyContext<'_>) -> Result<ApplyOutcome> {
        self.check_poisoned()?;
        let cfg = &self.inner.config;
        let mut guard = self.inner.state.write();
        let st = &mut *guard;
        if ctx.version <= st.last_version {
            return Err(Error::OutOfOrder {
                version: ctx.version,
                last: st.last_version,
            });
        }
        let now = next_log_time(st.last_time_ms, ctx.time_ms);
        let params = st.params;
        st.sessions.expire(now, &params);
        // A malformed session key is rejected before the table sees it: recording it
        // would keep a key the table cannot encode (the table stores ids of at most
        // the hard limit).
        let bad_session = batch
            .session
            .as_ref()
            .and_then(|s| s.validate(&Limits::hard()).err());
        let seen = batch
            .session
            .as_ref()
            .filter(|_| bad_session.is_none())
            .map(|s| (s, st.sessions.check(&s.client_id, s.sequence)));
        let (outcome, deduplicated) = match (bad_session, seen) {
            (Some(v), _) => (WriteOutcome::Rejected(Rejection::Invalid(v)), false),
            (None, Some((_, Seen::Duplicate(o)))) => (o.clone(), true),
            (None, Some((s, Seen::Stale { last }))) => {
                let r = Rejection::StaleSequence {
                    client_id: s.client_id.clone(),
                    sequence: s.sequence,
                    last,
                };
                (WriteOutcome::Rejected(r), false)
            }
            (None, _) => {
                let outcome = st.execute(batch, ctx.version, cfg.grow_step_bytes)?;
                if let Some(s) = &batch.session {
                    st.sessions
                        .record(&s.client_id, s.sequence, outcome.clone(), now, &params);
                }
                if matches!(outcome, WriteOutcome::Applied { .. }) && !batch.ops.is_empty() {
                    st.writes_applied += 1;
                }
                (outcome, false)
            }
        };
        st.last_version = ctx.version;
        st.last_time_ms = now;
        st.position.clear();
        st.position.extend_from_slice(ctx.position);
        let wants_compaction = self.wants_compaction(st);
        drop(guard);
        if wants_compaction {
            self.spawn_compaction();
        }
        Ok(ApplyOutcome {
            outcome,
            deduplicated,
        })
    }
}

/// Longest step log time takes in one entry. Log time is the leader's, but a leader with a
/// broken clock must not be able to expire every client session at once: it can move
/// time on by at most this much per entry (sessions then live longer, never shorter).
pub const MAX_LOG_TIME_STEP_MS: u64 = 60_000;

/// Log time after an entry stamped `stamped`: never backwards, at most
/// [`MAX_LOG_TIME_STEP_MS`] forwards (the first stamped entry sets where it starts).
fn next_log_time(last: u64, stamped: u64) -> u64 {
    if last == 0 {
        return stamped;
    }
    stamped.clamp(last, last.saturating_add(MAX_LOG_TIME_STEP_MS))
}

impl State {
    /// Checks preconditions, then writes records and updates the index. Either the
    /// whole batch applies or nothing changes.
    fn execute(
        &mut self,
        batch: &WriteBatch,
        version: u64,
        grow_step: u64,
    ) -> Result<WriteOutcome> {
        // Content is never an error here: an embedding of another length than this
        // store's dimension, like any other invalid field, is a rejection naming the
        // field, so every replica answers the same and none stops. (The proposer checks
        // first; a replica made with another dimension refuses to open instead.)
        if let Err(v) = batch.validate(&Limits::hard(), self.params.vector_dimension, true) {
            return Ok(WriteOutcome::Rejected(Rejection::Invalid(v)));
        }
        if let Err(r) = self.check_preconditions(batch, version) {
            return Ok(WriteOutcome::Rejected(r));
        }
        self.encode(batch, version);
        let start = self.data_len;
        self.data
            .ensure_capacity(start + self.scratch.len() as u64, grow_step)?;
        // SAFETY: we hold the state lock exclusively and write past the published length.
        unsafe { self.data.write_at(start, &self.scratch) };
        let mut offset = start;
        let mut results = Vec::with_capacity(batch.ops.len());
        for (op, &len) in batch.ops.iter().zip(&self.lens) {
            let at = usize::try_from(offset - start).expect("batch encoded in memory");
            let record = &self.scratch[at..at + len as usize];
            self.digest.apply_op(&self.index, &self.data, op, record);
            let existed = index_op(&mut self.index, op, offset, version, len);
            results.push(OpResult { existed });
            offset += u64::from(len);
        }
        self.data_len = offset;
        Ok(WriteOutcome::Applied { version, results })
    }

    /// Encodes the batch's records into `scratch`, one length per op in `lens` (0 for
    /// an op that writes none).
    fn encode(&mut self, batch: &WriteBatch, version: u64) {
        self.scratch.clear();
        self.lens.clear();
        for op in &batch.ops {
            let buf = &mut self.scratch;
            self.lens.push(match op {
                WriteOp::PutConcept { concept, .. } => record::put_concept(buf, concept, version),
                WriteOp::DeleteConcept { id, .. } => record::delete_concept(buf, id, version),
                WriteOp::PutEdge(e) => record::put_edge(buf, e, version),
                WriteOp::DeleteEdge { from, to, relation } => {
                    record::delete_edge(buf, from, to, relation, version)
                }
                WriteOp::CheckVersion { .. } => 0,
            });
        }
    }

    fn check_preconditions(&self, batch: &WriteBatch, version: u64) -> Result<(), Rejection> {
        // Versions as the batch has left them so far, over the index.
        let mut overlay: HashMap<&str, Option<u64>> = HashMap::new();
        let current = |overlay: &HashMap<&str, Option<u64>>, id: &str| match overlay.get(id) {
            Some(v) => *v,
            None => self.index.version_of(id),
        };
        for (i, op) in batch.ops.iter().enumerate() {
            let op_index = u32::try_from(i).expect("batch size bounded by validation");
            let check = |overlay: &HashMap<&str, Option<u64>>, id: &str, expected: Option<u64>| {
                match expected {
                    None => Ok(()),
                    Some(expected) => {
                        let actual = current(overlay, id).unwrap_or(0);
                        if actual == expected {
                            Ok(())
                        } else {
                            Err(Rejection::VersionMismatch {
                                op_index,
                                id: id.to_string(),
                                expected,
                                actual,
                            })
                        }
                    }
                }
            };
            match op {
                WriteOp::PutConcept {
                    concept,
                    expected_version,
                } => {
                    check(&overlay, &concept.id, *expected_version)?;
                    if i + 1 < batch.ops.len() {
                        overlay.insert(&concept.id, Some(version));
                    }
                }
                WriteOp::DeleteConcept {
                    id,
                    expected_version,
                } => {
                    check(&overlay, id, *expected_version)?;
                    if i + 1 < batch.ops.len() {
                        overlay.insert(id, None);
                    }
                }
                WriteOp::PutEdge(e) => {
                    for end in [&e.from, &e.to] {
                        if current(&overlay, end).is_none() {
                            return Err(Rejection::MissingConcept {
                                op_index,
                                id: end.clone(),
                            });
                        }
                    }
                }
                WriteOp::DeleteEdge { .. } => {}
                WriteOp::CheckVersion {
                    id,
                    expected_version,
                } => check(&overlay, id, Some(*expected_version))?,
            }
        }
        Ok(())
    }
}

/// Updates `ix` for one op whose record (`len` bytes, none for a check) was written at
/// `offset`; returns whether its concept or edge existed before.
fn index_op(ix: &mut Index, op: &WriteOp, offset: u64, version: u64, len: u32) -> bool {
    match op {
        WriteOp::PutConcept { concept, .. } => {
            let norm = if concept.embedding.is_empty() {
                -1.0
            } else {
                concept.embedding.iter().map(|v| v * v).sum::<f32>().sqrt()
            };
            ix.put_concept(
                &concept.id,
                ConceptEntry {
                    offset,
                    version,
                    len,
                    norm,
                },
            )
        }
        WriteOp::DeleteConcept { id, .. } => ix.delete_concept(id),
        WriteOp::PutEdge(e) => ix.put_edge(
            &e.from,
            &e.to,
            &e.relation,
            EdgeEntry {
                offset,
                len,
                weight: e.weight,
            },
        ),
        WriteOp::DeleteEdge { from, to, relation } => ix.delete_edge(from, to, relation),
        WriteOp::CheckVersion { id, .. } => ix.contains(id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_time_never_goes_back_and_steps_at_most_a_minute_per_entry() {
        assert_eq!(next_log_time(0, 1_000), 1_000);
        assert_eq!(next_log_time(1_000, 500), 1_000);
        assert_eq!(next_log_time(1_000, 2_000), 2_000);
        let a_day = 24 * 60 * 60 * 1000;
        assert_eq!(next_log_time(1_000, a_day), 1_000 + MAX_LOG_TIME_STEP_MS);
    }
}
