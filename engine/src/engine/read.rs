//! Reads: get, scan, neighbors (with their page tokens), k-NN search, the content
//! digest and stats. All run under the shared state lock, zero-copy from the map.

use std::sync::atomic::Ordering;

use super::{DurableState, Engine, State};
use crate::config::StoreParams;
use crate::digest::ContentDigest;
use crate::error::{Error, Result, ValidationError};
use crate::index::ConceptEntry;
use crate::knn::{self, TopK};
use crate::record::{self, HEADER_LEN};
use crate::types::*;
use crate::validate::validate_vector;

/// Counters and sizes, for stats and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineStats {
    /// Live concepts.
    pub concepts: u64,
    /// Live edges.
    pub edges: u64,
    /// Bytes of the data file in use (header and records).
    pub data_bytes: u64,
    /// Bytes of current records.
    pub live_bytes: u64,
    /// Bytes of overwritten or deleted records, reclaimed by compaction.
    pub garbage_bytes: u64,
    /// Allocated size of the data file.
    pub file_bytes: u64,
    /// Writes applied (not counting rejected, duplicate or empty ones) since the store was made.
    pub writes_applied: u64,
    /// Version of the last applied write.
    pub applied_version: u64,
    /// What the last checkpoint covers.
    pub durable: DurableState,
    /// Checkpoints taken by this process.
    pub checkpoints: u64,
    /// Compactions finished by this process.
    pub compactions: u64,
    /// Client sessions remembered.
    pub sessions: u64,
    /// The store's parameters.
    pub params: StoreParams,
    /// Whether a failed sync has poisoned the engine.
    pub poisoned: bool,
}

/// The content digest of `st` at its last applied version.
pub(crate) fn digest_of(st: &State) -> ContentDigest {
    ContentDigest::new(
        st.last_version,
        &st.digest.concepts,
        &st.digest.edges,
        st.sessions.digest(),
    )
}

impl Engine {
    /// The digest of the live content (concepts, edges, client sessions) and the
    /// version of the last applied write it reflects, read together under the lock
    /// `apply` takes: O(1), the digest is kept current by every write.
    pub fn content_digest(&self) -> ContentDigest {
        digest_of(&self.inner.state.read())
    }

    /// Version and opaque position of the last applied write.
    pub fn applied(&self) -> (u64, Vec<u8>) {
        let st = self.inner.state.read();
        (st.last_version, st.position.clone())
    }

    /// Reads a concept.
    pub fn get(&self, id: &str) -> Result<Option<Concept>> {
        let st = self.inner.state.read();
        let Some(e) = st.index.get(id) else {
            return Ok(None);
        };
        st.read_concept(e).map(Some)
    }

    /// Current version of a concept, if it exists.
    pub fn version_of(&self, id: &str) -> Option<u64> {
        self.inner.state.read().index.version_of(id)
    }

    /// Concepts in id order within `range`, after `page_token` (the last id of the
    /// previous page), at most `limit`.
    pub fn scan(
        &self,
        range: &ScanRange,
        limit: usize,
        page_token: Option<&str>,
        keys_only: bool,
    ) -> Result<ScanPage> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        if limit == 0 {
            return Err(ValidationError::new("limit", "must be at least 1").into());
        }
        let st = self.inner.state.read();
        let (start, end, prefix) = match range {
            ScanRange::Prefix(p) => (p.as_str(), None, Some(p.as_str())),
            ScanRange::Range { start, end } => (start.as_str(), end.as_deref(), None),
        };
        let lower = match page_token {
            Some(after) if after >= start => Excluded(after),
            _ => Included(start),
        };
        let upper = end.map_or(Unbounded, Excluded);
        if let (Included(l) | Excluded(l), Excluded(u)) = (lower, upper)
            && l >= u
        {
            return Ok(ScanPage::default());
        }
        let mut page = ScanPage::default();
        let iter = st
            .index
            .range((lower, upper))
            .take_while(|(id, _)| prefix.is_none_or(|p| id.starts_with(p)));
        for (id, e) in iter {
            if page.concepts.len() == limit {
                page.next_page_token = page.concepts.last().map(|c| c.id.clone());
                break;
            }
            page.concepts.push(if keys_only {
                Concept {
                    id: id.to_string(),
                    version: e.version,
                    ..Concept::default()
                }
            } else {
                st.read_concept(e)?
            });
        }
        Ok(page)
    }

    /// Edges of `id`, optionally only `relation`, ordered by (direction, relation, id).
    pub fn neighbors(
        &self,
        id: &str,
        direction: Direction,
        relation: Option<&str>,
        limit: usize,
        page_token: Option<&str>,
    ) -> Result<NeighborPage> {
        if limit == 0 {
            return Err(ValidationError::new("limit", "must be at least 1").into());
        }
        let cursor = page_token.map(decode_neighbor_token).transpose()?;
        let st = self.inner.state.read();
        let (neighbors, more) = st
            .index
            .neighbors(id, direction, relation, cursor.as_ref(), limit);
        let next_page_token = if more {
            neighbors.last().map(encode_neighbor_token)
        } else {
            None
        };
        Ok(NeighborPage {
            neighbors,
            next_page_token,
        })
    }

    /// Exact k-NN over every concept with an embedding, best first. Scores: cosine
    /// similarity, dot product, or Euclidean distance (lower is closer).
    pub fn search(&self, query: &[f32], k: usize, metric: Metric) -> Result<Vec<SearchHit>> {
        let st = self.inner.state.read();
        let dim = st.params.vector_dimension;
        validate_vector(query, "vector", dim)?;
        if k == 0 {
            return Err(ValidationError::new("k", "must be at least 1").into());
        }
        let query_norm = knn::dot(query, query).sqrt();
        if metric == Metric::Cosine && query_norm == 0.0 {
            return Err(
                ValidationError::new("vector", "cosine search needs a non-zero vector").into(),
            );
        }
        let emb_len = u64::from(dim) * 4;
        let mut top = TopK::new(k);
        for (id, offset, norm) in st.index.embedded() {
            let bytes = st
                .data
                .bytes(offset + record::EMBEDDING_OFFSET as u64, emb_len);
            let key = knn::with_f32s(bytes, |v| knn::rank_key(metric, query, query_norm, v, norm));
            top.offer(id, key);
        }
        Ok(top
            .into_sorted()
            .into_iter()
            .map(|(id, key)| SearchHit {
                id: id.to_string(),
                score: if metric == Metric::L2 { -key } else { key },
            })
            .collect())
    }

    /// Bytes of the data file in use (what the cluster quota counts), and the log time of
    /// the last applied entry: cheap, for the leader's admission of every write.
    pub fn usage(&self) -> (u64, u64) {
        let st = self.inner.state.read();
        (st.data_len, st.last_time_ms)
    }

    /// Sizes and counters.
    pub fn stats(&self) -> EngineStats {
        let st = self.inner.state.read();
        EngineStats {
            concepts: st.index.concept_count() as u64,
            edges: st.index.edge_count,
            data_bytes: st.data_len,
            live_bytes: st.index.live_bytes,
            garbage_bytes: st.data_len - HEADER_LEN - st.index.live_bytes,
            file_bytes: st.data.capacity(),
            writes_applied: st.writes_applied,
            applied_version: st.last_version,
            durable: st.durable.clone(),
            checkpoints: self.inner.checkpoints.load(Ordering::Relaxed),
            compactions: *self.inner.compactions.lock(),
            sessions: st.sessions.len() as u64,
            params: st.params,
            poisoned: self.inner.poisoned.get().is_some(),
        }
    }
}

fn encode_neighbor_token(n: &Neighbor) -> String {
    let d = if n.direction == Direction::In {
        'i'
    } else {
        'o'
    };
    format!("{d}\0{}\0{}", n.relation, n.id)
}

fn decode_neighbor_token(token: &str) -> Result<(Direction, String, String)> {
    let bad = || {
        Error::from(ValidationError::new(
            "page_token",
            "not a token returned by this call",
        ))
    };
    let mut parts = token.splitn(3, '\0');
    let d = match parts.next() {
        Some("o") => Direction::Out,
        Some("i") => Direction::In,
        _ => return Err(bad()),
    };
    let rel = parts.next().ok_or_else(bad)?;
    let id = parts.next().ok_or_else(bad)?;
    Ok((d, rel.to_string(), id.to_string()))
}

impl State {
    fn read_concept(&self, e: &ConceptEntry) -> Result<Concept> {
        let bytes = self.data.bytes(e.offset, u64::from(e.len));
        let corrupt = |r: String| Error::corrupted(self.data.path(), e.offset, r);
        let rec = record::read(bytes).map_err(corrupt)?;
        rec.as_concept()
            .and_then(|v| v.into_concept(rec.version))
            .map_err(corrupt)
    }
}
