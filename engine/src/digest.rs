//! [`ContentDigest`]: a hash of the store's logical content, so replicas can prove they
//! hold identical data without comparing files (replicas compact at different times, so
//! their files differ while their content does not).
//!
//! The digest is an order-independent multiset hash: every live item gets a 128-bit
//! SipHash-1-3, and the digest keeps, per kind, the sum of those hashes modulo 2^128 and
//! their count. Adding or removing one item is one hash and one addition, so `apply`
//! keeps the digest current under the same lock that advances the applied version, and
//! reading it is O(1) and always consistent with that version. Opening the store and
//! installing a snapshot rebuild the sums while they replay the data file into the index
//! (each record is hashed right after its checksum is checked, while it is in cache),
//! and the session part is rebuilt when the checkpoint's table is read.
//!
//! What is hashed, per item (each hash keyed by its kind, so kinds never mix):
//! - a concept: its current record's bytes (`docs/file-format.md`), a canonical
//!   encoding of id, content, embedding, attributes and version; offsets, file ids,
//!   garbage and the order of records do not enter it;
//! - an edge: from, to, relation and the weight's bits (edges carry no version in the
//!   data model, so two histories that end with the same edge give the same hash);
//! - a client session of the exactly-once table: client id, last sequence, log time
//!   last seen and the remembered outcome. Sessions are replicated state that decides
//!   how a retry is answered, so a replica whose table diverged is caught too.

use std::fmt;

use crate::codec::Put;
use crate::file::DataFile;
use crate::index::Index;
use crate::record::{Kind, Record};
use crate::types::WriteOp;

/// SipHash-1-3 with 128-bit output (the reference algorithm, one-shot).
pub(crate) fn siphash13_128(k0: u64, k1: u64, msg: &[u8]) -> u128 {
    #[inline(always)]
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d ^ 0xee,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let mut words = msg.chunks_exact(8);
    for w in &mut words {
        let m = u64::from_le_bytes(w.try_into().expect("chunk of 8"));
        v[3] ^= m;
        round(&mut v);
        v[0] ^= m;
    }
    let mut last = [0u8; 8];
    let tail = words.remainder();
    last[..tail.len()].copy_from_slice(tail);
    // The length goes in modulo 256, as the reference does.
    let b = u64::from_le_bytes(last) | ((msg.len() as u64) << 56);
    v[3] ^= b;
    round(&mut v);
    v[0] ^= b;
    v[2] ^= 0xee;
    for _ in 0..3 {
        round(&mut v);
    }
    let lo = v[0] ^ v[1] ^ v[2] ^ v[3];
    v[1] ^= 0xdd;
    for _ in 0..3 {
        round(&mut v);
    }
    let hi = v[0] ^ v[1] ^ v[2] ^ v[3];
    (u128::from(hi) << 64) | u128::from(lo)
}

/// Keys per item kind ("sutra/concept", "sutra/edge", ...), so equal bytes of
/// different kinds hash apart.
const CONCEPT_KEY: (u64, u64) = (0x7475_732f_6172_7475, 0x7470_6563_6e6f_632f);
const EDGE_KEY: (u64, u64) = (0x7475_732f_6172_7475, 0x0000_6567_6465_2f31);
const SESSION_KEY: (u64, u64) = (0x7475_732f_6172_7475, 0x6e6f_6973_7365_732f);
const FINAL_KEY: (u64, u64) = (0x7475_732f_6172_7475, 0x6c61_6e69_662f_3176);

/// Hash of one concept, from its current record's bytes.
pub(crate) fn concept_hash(record: &[u8]) -> u128 {
    siphash13_128(CONCEPT_KEY.0, CONCEPT_KEY.1, record)
}

/// Hash of one edge.
pub(crate) fn edge_hash(from: &str, to: &str, relation: &str, weight: f32) -> u128 {
    let mut b = Vec::with_capacity(10 + from.len() + to.len() + relation.len());
    b.put_str16(from);
    b.put_str16(to);
    b.put_str16(relation);
    b.put_u32(weight.to_bits());
    siphash13_128(EDGE_KEY.0, EDGE_KEY.1, &b)
}

/// Hash of one session entry, from its canonical encoding.
pub(crate) fn session_hash(encoded: &[u8]) -> u128 {
    siphash13_128(SESSION_KEY.0, SESSION_KEY.1, encoded)
}

/// An order-independent multiset hash: the sum of item hashes modulo 2^128, and the
/// number of items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MultisetHash {
    sum: u128,
    count: u64,
}

impl MultisetHash {
    pub(crate) fn add(&mut self, h: u128) {
        self.sum = self.sum.wrapping_add(h);
        self.count += 1;
    }

    pub(crate) fn remove(&mut self, h: u128) {
        self.sum = self.sum.wrapping_sub(h);
        self.count = self
            .count
            .checked_sub(1)
            .expect("digest removes only items it added");
    }
}

/// Multiset hashes of the live concepts and edges, kept next to the index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DataDigest {
    pub(crate) concepts: MultisetHash,
    pub(crate) edges: MultisetHash,
}

/// One change to the live content, as a write op or a replayed record states it.
enum Change<'a> {
    PutConcept {
        id: &'a str,
        record: &'a [u8],
    },
    DeleteConcept {
        id: &'a str,
    },
    PutEdge {
        from: &'a str,
        to: &'a str,
        relation: &'a str,
        weight: f32,
    },
    DeleteEdge {
        from: &'a str,
        to: &'a str,
        relation: &'a str,
    },
}

impl DataDigest {
    /// Accounts for `op` before it is applied to `index`. `record` is the record `op`
    /// writes (empty for a check); `data` holds the records `index` points to.
    pub(crate) fn apply_op(&mut self, index: &Index, data: &DataFile, op: &WriteOp, record: &[u8]) {
        let change = match op {
            WriteOp::PutConcept { concept, .. } => Change::PutConcept {
                id: &concept.id,
                record,
            },
            WriteOp::DeleteConcept { id, .. } => Change::DeleteConcept { id },
            WriteOp::PutEdge(e) => Change::PutEdge {
                from: &e.from,
                to: &e.to,
                relation: &e.relation,
                weight: e.weight,
            },
            WriteOp::DeleteEdge { from, to, relation } => Change::DeleteEdge { from, to, relation },
            WriteOp::CheckVersion { .. } => return,
        };
        self.change(index, data, change);
    }

    /// Accounts for the record `rec` (whose bytes are `bytes`) before it is replayed
    /// into `index`, on open and snapshot install.
    pub(crate) fn replay(
        &mut self,
        index: &Index,
        data: &DataFile,
        rec: &Record<'_>,
        bytes: &[u8],
    ) -> Result<(), String> {
        let change = match rec.kind {
            Kind::PutConcept => Change::PutConcept {
                id: rec.as_concept()?.id,
                record: bytes,
            },
            Kind::DeleteConcept => Change::DeleteConcept {
                id: rec.as_delete_concept()?,
            },
            Kind::PutEdge => {
                let e = rec.as_edge()?;
                Change::PutEdge {
                    from: e.from,
                    to: e.to,
                    relation: e.relation,
                    weight: e.weight,
                }
            }
            Kind::DeleteEdge => {
                let e = rec.as_edge()?;
                Change::DeleteEdge {
                    from: e.from,
                    to: e.to,
                    relation: e.relation,
                }
            }
        };
        self.change(index, data, change);
        Ok(())
    }

    /// Removes what `change` replaces or deletes, as `index` has it now, and adds what it
    /// puts. A put of an edge whose ends are missing is refused by the caller.
    fn change(&mut self, index: &Index, data: &DataFile, change: Change<'_>) {
        let old_concept = |id: &str| {
            index
                .get(id)
                .map(|old| concept_hash(data.bytes(old.offset, u64::from(old.len))))
        };
        match change {
            Change::PutConcept { id, record } => {
                if let Some(old) = old_concept(id) {
                    self.concepts.remove(old);
                }
                self.concepts.add(concept_hash(record));
            }
            Change::DeleteConcept { id } => {
                if let Some(old) = old_concept(id) {
                    self.concepts.remove(old);
                    index.incident_edges(id, |from, to, relation, weight| {
                        self.edges.remove(edge_hash(from, to, relation, weight));
                    });
                }
            }
            Change::PutEdge {
                from,
                to,
                relation,
                weight,
            } => {
                if let Some(old) = index.edge_weight(from, to, relation) {
                    self.edges.remove(edge_hash(from, to, relation, old));
                }
                self.edges.add(edge_hash(from, to, relation, weight));
            }
            Change::DeleteEdge { from, to, relation } => {
                if let Some(old) = index.edge_weight(from, to, relation) {
                    self.edges.remove(edge_hash(from, to, relation, old));
                }
            }
        }
    }
}

/// The digest of the store's content at one applied version: live concepts, edges and
/// client sessions. Equal digests at equal versions mean equal content (up to hash
/// collisions, odds 2^-128 for accidental differences).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentDigest {
    /// Version of the last applied write the digest reflects.
    pub version: u64,
    /// Live concepts counted in it.
    pub concepts: u64,
    /// Live edges counted in it.
    pub edges: u64,
    /// Client sessions counted in it.
    pub sessions: u64,
    /// The 128-bit digest.
    pub hash: [u8; 16],
}

impl ContentDigest {
    pub(crate) fn new(
        version: u64,
        concepts: &MultisetHash,
        edges: &MultisetHash,
        sessions: &MultisetHash,
    ) -> Self {
        let mut b = Vec::with_capacity(3 * 24 + 8);
        // Bumped if what is hashed ever changes, so digests of different schemes never match.
        b.put_u64(1);
        for m in [concepts, edges, sessions] {
            b.extend_from_slice(&m.sum.to_le_bytes());
            b.put_u64(m.count);
        }
        Self {
            version,
            concepts: concepts.count,
            edges: edges.count,
            sessions: sessions.count,
            hash: siphash13_128(FINAL_KEY.0, FINAL_KEY.1, &b).to_le_bytes(),
        }
    }

    /// The hash as 32 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        self.hash.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Display for ContentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outputs of the `siphasher` crate's `SipHasher13::new_with_keys(k0, k1)`
    /// `finish128().as_u128()` over the messages 0, 1, ..., n-1 (an independent
    /// implementation of the same reference algorithm).
    #[test]
    fn siphash13_128_matches_reference() {
        let (k0, k1) = (0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);
        let msg: Vec<u8> = (0..64).collect();
        for (n, want) in REFERENCE {
            assert_eq!(
                siphash13_128(k0, k1, &msg[..n]),
                want,
                "message of {n} bytes"
            );
        }
    }

    const REFERENCE: [(usize, u128); 8] = [
        (0, 0x013030dd6adb62fdbea58827b2bc7ee7),
        (1, 0x63f02f2bcc73055ea8edd36004376ffc),
        (7, 0x77ab4808c82e2fa6c3e0aaf223b98410),
        (8, 0x99c7f935ab164f72b4dae3d5e1fe12aa),
        (9, 0x427c1394000e72f49439f32c04b8dd81),
        (15, 0x09017e1eeccd21296c52bdb205557ec1),
        (16, 0x93179e3df8b013b5eb8e511557d9a8d0),
        (63, 0xad6052a70a6b9f076f42fe4ee300584c),
    ];

    #[test]
    fn multiset_is_order_independent_and_removes() {
        let (a, b, c) = (concept_hash(b"a"), concept_hash(b"b"), concept_hash(b"c"));
        let mut x = MultisetHash::default();
        let mut y = MultisetHash::default();
        x.add(a);
        x.add(b);
        y.add(b);
        y.add(c);
        y.add(a);
        y.remove(c);
        assert_eq!(x, y);
        let e = MultisetHash::default();
        let d1 = ContentDigest::new(3, &x, &e, &e);
        let d2 = ContentDigest::new(3, &e, &x, &e);
        assert_ne!(d1.hash, d2.hash, "kinds do not mix");
        assert_eq!(d1.to_hex().len(), 32);
    }

    #[test]
    fn edge_fields_do_not_run_together() {
        assert_ne!(
            edge_hash("ab", "c", "r", 1.0),
            edge_hash("a", "bc", "r", 1.0)
        );
        assert_ne!(
            edge_hash("a", "b", "r", 0.0),
            edge_hash("a", "b", "r", -0.0)
        );
    }
}
