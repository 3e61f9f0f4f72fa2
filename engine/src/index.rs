//! The in-memory index over the data file: concepts by id (ordered, for scans) and
//! edge adjacency in both directions. Rebuilt from the data file on open; every
//! mutation goes through the same functions for apply, recovery and compaction.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

use crate::record::{Kind, Record};
use crate::types::{Direction, Neighbor};

/// Where a concept's current record lives, plus what search and CAS need without
/// touching the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ConceptEntry {
    pub offset: u64,
    pub version: u64,
    pub len: u32,
    /// Euclidean norm of the embedding; negative when the concept has none.
    pub norm: f32,
}

impl ConceptEntry {
    pub(crate) fn has_embedding(&self) -> bool {
        self.norm >= 0.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EdgeEntry {
    pub offset: u64,
    pub len: u32,
    pub weight: f32,
}

type EdgeKey = (Box<str>, Box<str>);

/// The index's hash maps. They resize incrementally (griddle): a table that doubles moves
/// a few entries with each later insert instead of all at once, so no single write holds
/// the state lock for the time it takes to rehash millions of ids (about a second at two
/// million, long enough for followers to call an election while reads wait). foldhash is
/// randomly seeded per process, so ids chosen by clients cannot be crafted to collide.
type Map<K, V> = griddle::HashMap<K, V, foldhash::fast::RandomState>;
/// (offset, length) of a record in the data file.
pub(crate) type Extent = (u64, u32);

#[derive(Debug, Default, Clone)]
pub(crate) struct Index {
    /// Point lookups: one hash probe instead of a walk down a tree of string compares.
    concepts: Map<Arc<str>, ConceptEntry>,
    /// The same ids in order, for scans; the key allocation is shared with `concepts`.
    order: BTreeSet<Arc<str>>,
    /// Concepts that have an embedding, by record offset with their norm, so k-NN
    /// reads the mapped file front to back instead of in hash order.
    embedded: BTreeMap<u64, (f32, Arc<str>)>,
    /// from -> (relation, to) -> edge.
    out: Map<Box<str>, BTreeMap<EdgeKey, EdgeEntry>>,
    /// to -> (relation, from).
    inn: Map<Box<str>, BTreeSet<EdgeKey>>,
    pub edge_count: u64,
    /// Bytes of records that are still current; everything else past the header is garbage.
    pub live_bytes: u64,
}

/// Norm of an embedding stored as little-endian f32 bytes; -1 when empty.
pub(crate) fn norm_of(embedding_bytes: &[u8]) -> f32 {
    if embedding_bytes.is_empty() {
        return -1.0;
    }
    let sum: f32 = embedding_bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("chunk of 4")))
        .map(|v| v * v)
        .sum();
    sum.sqrt()
}

impl Index {
    pub(crate) fn version_of(&self, id: &str) -> Option<u64> {
        self.concepts.get(id).map(|e| e.version)
    }

    pub(crate) fn get(&self, id: &str) -> Option<&ConceptEntry> {
        self.concepts.get(id)
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.concepts.contains_key(id)
    }

    pub(crate) fn concept_count(&self) -> usize {
        self.concepts.len()
    }

    /// Concepts with ids within `bounds`, in id order.
    pub(crate) fn range<'a>(
        &'a self,
        bounds: (Bound<&'a str>, Bound<&'a str>),
    ) -> impl Iterator<Item = (&'a str, &'a ConceptEntry)> + 'a {
        self.order
            .range::<str, _>(bounds)
            .map(|k| (&**k, &self.concepts[k]))
    }

    /// An empty index sized for `concepts` concepts.
    pub(crate) fn with_capacity(concepts: usize) -> Self {
        Self {
            concepts: Map::with_capacity_and_hasher(concepts, Default::default()),
            ..Self::default()
        }
    }

    /// Concepts with an embedding, in data file order: (id, record offset, norm).
    pub(crate) fn embedded(&self) -> impl Iterator<Item = (&str, u64, f32)> {
        self.embedded
            .iter()
            .map(|(&offset, (norm, id))| (&**id, offset, *norm))
    }

    /// Inserts or replaces a concept; returns whether it existed.
    pub(crate) fn put_concept(&mut self, id: &str, entry: ConceptEntry) -> bool {
        self.live_bytes += u64::from(entry.len);
        let (key, existed) = match self.concepts.get_key_value(id) {
            Some((key, old)) => {
                self.live_bytes -= u64::from(old.len);
                if old.has_embedding() {
                    self.embedded.remove(&old.offset);
                }
                (key.clone(), true)
            }
            None => {
                let key: Arc<str> = id.into();
                self.order.insert(key.clone());
                (key, false)
            }
        };
        if entry.has_embedding() {
            self.embedded
                .insert(entry.offset, (entry.norm, key.clone()));
        }
        self.concepts.insert(key, entry);
        existed
    }

    /// Removes a concept and every edge touching it; returns whether it existed.
    pub(crate) fn delete_concept(&mut self, id: &str) -> bool {
        let Some(old) = self.concepts.remove(id) else {
            return false;
        };
        self.order.remove(id);
        if old.has_embedding() {
            self.embedded.remove(&old.offset);
        }
        self.live_bytes -= u64::from(old.len);
        if let Some(outs) = self.out.remove(id) {
            for ((relation, to), e) in outs {
                self.live_bytes -= u64::from(e.len);
                self.edge_count -= 1;
                let key = (relation, Box::<str>::from(id));
                if let Some(set) = self.inn.get_mut(&to) {
                    set.remove(&key);
                    if set.is_empty() {
                        self.inn.remove(&to);
                    }
                }
            }
        }
        if let Some(ins) = self.inn.remove(id) {
            for (relation, from) in ins {
                let key = (relation, Box::<str>::from(id));
                if let Some(map) = self.out.get_mut(&from) {
                    if let Some(e) = map.remove(&key) {
                        self.live_bytes -= u64::from(e.len);
                        self.edge_count -= 1;
                    }
                    if map.is_empty() {
                        self.out.remove(&from);
                    }
                }
            }
        }
        true
    }

    /// Inserts or replaces an edge; returns whether it existed.
    pub(crate) fn put_edge(
        &mut self,
        from: &str,
        to: &str,
        relation: &str,
        entry: EdgeEntry,
    ) -> bool {
        self.live_bytes += u64::from(entry.len);
        let map = self.out.entry(from.into()).or_default();
        match map.insert((relation.into(), to.into()), entry) {
            Some(old) => {
                self.live_bytes -= u64::from(old.len);
                true
            }
            None => {
                self.edge_count += 1;
                self.inn
                    .entry(to.into())
                    .or_default()
                    .insert((relation.into(), from.into()));
                false
            }
        }
    }

    /// Removes an edge; returns whether it existed.
    pub(crate) fn delete_edge(&mut self, from: &str, to: &str, relation: &str) -> bool {
        let key: EdgeKey = (relation.into(), to.into());
        let Some(map) = self.out.get_mut(from) else {
            return false;
        };
        let Some(old) = map.remove(&key) else {
            return false;
        };
        if map.is_empty() {
            self.out.remove(from);
        }
        self.live_bytes -= u64::from(old.len);
        self.edge_count -= 1;
        if let Some(set) = self.inn.get_mut(to) {
            set.remove(&(Box::from(relation), Box::from(from)));
            if set.is_empty() {
                self.inn.remove(to);
            }
        }
        true
    }

    /// Weight of the edge, if it exists.
    pub(crate) fn edge_weight(&self, from: &str, to: &str, relation: &str) -> Option<f32> {
        self.out
            .get(from)?
            .get(&(Box::from(relation), Box::from(to)))
            .map(|e| e.weight)
    }

    /// Calls `f(from, to, relation, weight)` once for every edge into or out of `id`
    /// (a self-loop once): the edges [`delete_concept`](Self::delete_concept) removes.
    pub(crate) fn incident_edges(&self, id: &str, mut f: impl FnMut(&str, &str, &str, f32)) {
        if let Some(outs) = self.out.get(id) {
            for ((rel, to), e) in outs {
                f(id, to, rel, e.weight);
            }
        }
        if let Some(ins) = self.inn.get(id) {
            for (rel, from) in ins.iter().filter(|(_, from)| &**from != id) {
                let weight = self
                    .edge_weight(from, id, rel)
                    .expect("in-edge has a matching out-edge");
                f(from, id, rel, weight);
            }
        }
    }

    /// Replays one record found at `offset` during recovery or compaction.
    pub(crate) fn replay(&mut self, rec: &Record<'_>, offset: u64) -> Result<(), String> {
        match rec.kind {
            Kind::PutConcept => {
                let c = rec.as_concept()?;
                let entry = ConceptEntry {
                    offset,
                    version: rec.version,
                    len: rec.len,
                    norm: norm_of(c.embedding_bytes),
                };
                self.put_concept(c.id, entry);
            }
            Kind::DeleteConcept => {
                self.delete_concept(rec.as_delete_concept()?);
            }
            Kind::PutEdge => {
                let e = rec.as_edge()?;
                for end in [e.from, e.to] {
                    if !self.concepts.contains_key(end) {
                        return Err(format!(
                            "edge names concept {end:?}, which does not exist at this point"
                        ));
                    }
                }
                self.put_edge(
                    e.from,
                    e.to,
                    e.relation,
                    EdgeEntry {
                        offset,
                        len: rec.len,
                        weight: e.weight,
                    },
                );
            }
            Kind::DeleteEdge => {
                let e = rec.as_edge()?;
                self.delete_edge(e.from, e.to, e.relation);
            }
        }
        Ok(())
    }

    /// Offsets and lengths of every live record: concepts first, then edges (so a
    /// file written in this order replays with every edge after its ends).
    pub(crate) fn live_records(&self) -> (Vec<Extent>, Vec<Extent>) {
        let mut concepts: Vec<_> = self.concepts.values().map(|e| (e.offset, e.len)).collect();
        let mut edges: Vec<_> = self
            .out
            .values()
            .flat_map(|m| m.values().map(|e| (e.offset, e.len)))
            .collect();
        concepts.sort_unstable();
        edges.sort_unstable();
        (concepts, edges)
    }

    /// Neighbours of `id` after `cursor` (exclusive), at most `limit`. Returns the
    /// page and whether more follow.
    pub(crate) fn neighbors(
        &self,
        id: &str,
        direction: Direction,
        relation: Option<&str>,
        cursor: Option<&(Direction, String, String)>,
        limit: usize,
    ) -> (Vec<Neighbor>, bool) {
        let mut out = Vec::new();
        let wanted = |rel: &str| relation.is_none_or(|r| r == rel);
        let start = |dir: Direction| -> Bound<EdgeKey> {
            match cursor {
                Some((d, rel, other)) if *d == dir => {
                    Bound::Excluded((rel.as_str().into(), other.as_str().into()))
                }
                _ => Bound::Unbounded,
            }
        };
        let skip_out = matches!(cursor, Some((Direction::In, ..)));
        if matches!(direction, Direction::Out | Direction::Both)
            && !skip_out
            && let Some(map) = self.out.get(id)
        {
            for ((rel, to), e) in map.range((start(Direction::Out), Bound::Unbounded)) {
                if !wanted(rel) {
                    continue;
                }
                if out.len() == limit {
                    return (out, true);
                }
                out.push(Neighbor {
                    id: to.to_string(),
                    relation: rel.to_string(),
                    weight: e.weight,
                    direction: Direction::Out,
                });
            }
        }
        if matches!(direction, Direction::In | Direction::Both)
            && let Some(set) = self.inn.get(id)
        {
            for (rel, from) in set.range((start(Direction::In), Bound::Unbounded)) {
                if !wanted(rel) {
                    continue;
                }
                if out.len() == limit {
                    return (out, true);
                }
                let weight = self
                    .out
                    .get(from)
                    .and_then(|m| m.get(&(rel.clone(), Box::from(id))))
                    .map(|e| e.weight)
                    .expect("in-edge has a matching out-edge");
                out.push(Neighbor {
                    id: from.to_string(),
                    relation: rel.to_string(),
                    weight,
                    direction: Direction::In,
                });
            }
        }
        (out, false)
    }
}
