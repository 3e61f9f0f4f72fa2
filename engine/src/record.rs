//! On-disk format of `storage.dat`: a 64-byte header, then 8-byte aligned records.
//! Every integer is fixed-width little-endian; every record carries a CRC32C.
//! `docs/file-format.md` draws the same layouts.
//!
//! ```text
//! header   0 magic "SUTRADAT" | 8 u32 format | 12 u32 dimension | 16 u64 file_id
//!         24 u64 session_ttl_ms | 32 u32 max_sessions | 36 u32 max_sessions_per_owner
//!         40 zero[20] | 60 u32 crc32c(0..60)
//! record   0 u32 crc32c(4..len) | 4 u32 len (multiple of 8) | 8 u8 kind | 9 zero[7]
//!         16 u64 version | 24 body ... | zero padding to len
//! ```

use std::collections::BTreeMap;

use crate::config::StoreParams;
use crate::types::{Concept, Edge};

/// Length of the file header.
pub const HEADER_LEN: u64 = 64;
/// Length of the common record prefix.
pub const RECORD_PREFIX: usize = 24;
/// Offset of the embedding inside a concept record (8-byte aligned).
pub const EMBEDDING_OFFSET: usize = 40;
const MAGIC: &[u8; 8] = b"SUTRADAT";
const FORMAT_VERSION: u32 = 1;

/// Record kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    PutConcept = 1,
    DeleteConcept = 2,
    PutEdge = 3,
    DeleteEdge = 4,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::PutConcept,
            2 => Self::DeleteConcept,
            3 => Self::PutEdge,
            4 => Self::DeleteEdge,
            _ => return None,
        })
    }
}

/// The data file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub params: StoreParams,
    /// Random identity of this file; the checkpoint names the file it describes.
    pub file_id: u64,
}

impl FileHeader {
    pub fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut b = [0u8; HEADER_LEN as usize];
        b[0..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.params.vector_dimension.to_le_bytes());
        b[16..24].copy_from_slice(&self.file_id.to_le_bytes());
        b[24..32].copy_from_slice(&self.params.session_ttl_ms.to_le_bytes());
        b[32..36].copy_from_slice(&self.params.max_sessions.to_le_bytes());
        b[36..40].copy_from_slice(&self.params.max_sessions_per_owner.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a header; the error says what is wrong and at which offset.
    pub fn decode(b: &[u8]) -> Result<Self, (u64, String)> {
        if b.len() < HEADER_LEN as usize {
            return Err((
                0,
                format!("file is {} bytes, shorter than its header", b.len()),
            ));
        }
        if &b[0..8] != MAGIC {
            return Err((0, "bad magic: not a Sutra data file".into()));
        }
        let crc = u32_at(b, 60);
        if crc != crc32c::crc32c(&b[0..60]) {
            return Err((60, "header checksum mismatch".into()));
        }
        let format = u32_at(b, 8);
        if format != FORMAT_VERSION {
            return Err((8, format!("unknown format version {format}")));
        }
        let max_sessions = u32_at(b, 32);
        Ok(Self {
            params: StoreParams {
                vector_dimension: u32_at(b, 12),
                session_ttl_ms: u64_at(b, 24),
                max_sessions,
                // Zero in a header written before the field existed (the bytes were
                // reserved as zero): such a store gets the default share.
                max_sessions_per_owner: match u32_at(b, 36) {
                    0 => StoreParams::default_share(max_sessions),
                    share => share,
                },
            },
            file_id: u64_at(b, 16),
        })
    }
}

pub fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("slice of 2"))
}
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("slice of 4"))
}
pub fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("slice of 8"))
}
fn f32_at(b: &[u8], at: usize) -> f32 {
    f32::from_le_bytes(b[at..at + 4].try_into().expect("slice of 4"))
}

fn padded(len: usize) -> usize {
    len.next_multiple_of(8)
}

/// Appends record bytes to a buffer, filling in length and checksum at the end.
struct Builder<'a> {
    buf: &'a mut Vec<u8>,
    start: usize,
}

impl<'a> Builder<'a> {
    fn new(buf: &'a mut Vec<u8>, kind: Kind, version: u64) -> Self {
        let start = buf.len();
        buf.extend_from_slice(&[0u8; 8]);
        buf.push(kind as u8);
        buf.extend_from_slice(&[0u8; 7]);
        buf.extend_from_slice(&version.to_le_bytes());
        Self { buf, start }
    }

    fn finish(self) -> u32 {
        let len = padded(self.buf.len() - self.start);
        self.buf.resize(self.start + len, 0);
        let len32 = u32::try_from(len).expect("record length is bounded by Limits::hard");
        self.buf[self.start + 4..self.start + 8].copy_from_slice(&len32.to_le_bytes());
        let crc = crc32c::crc32c(&self.buf[self.start + 4..]);
        self.buf[self.start..self.start + 4].copy_from_slice(&crc.to_le_bytes());
        len32
    }
}

fn len_u16(n: usize) -> [u8; 2] {
    u16::try_from(n)
        .expect("length checked by validation")
        .to_le_bytes()
}
fn len_u32(n: usize) -> [u8; 4] {
    u32::try_from(n)
        .expect("length checked by validation")
        .to_le_bytes()
}

/// Longest record the `u32` length field can hold (a multiple of 8).
pub const MAX_RECORD_LEN: u64 = (u32::MAX as u64) & !7;

/// Length of `c`'s record before padding. The hard limits bound each field but not
/// their sum (65,535 attributes of 128 KiB fit them), so validation checks this
/// against [`MAX_RECORD_LEN`] rather than letting the encoder fail.
pub fn concept_len(c: &Concept) -> u64 {
    let attrs: u64 = c
        .attributes
        .iter()
        .map(|(k, v)| 4 + k.len() as u64 + v.len() as u64)
        .sum();
    EMBEDDING_OFFSET as u64
        + 4 * c.embedding.len() as u64
        + c.id.len() as u64
        + c.content.len() as u64
        + attrs
}

/// Encodes a concept; returns the record length.
pub fn put_concept(buf: &mut Vec<u8>, c: &Concept, version: u64) -> u32 {
    let b = Builder::new(buf, Kind::PutConcept, version);
    let attr_bytes: usize = c
        .attributes
        .iter()
        .map(|(k, v)| 4 + k.len() + v.len())
        .sum();
    b.buf.extend_from_slice(&len_u32(c.embedding.len()));
    b.buf.extend_from_slice(&len_u32(c.content.len()));
    b.buf.extend_from_slice(&len_u16(c.id.len()));
    b.buf.extend_from_slice(&len_u16(c.attributes.len()));
    b.buf.extend_from_slice(&len_u32(attr_bytes));
    for v in &c.embedding {
        b.buf.extend_from_slice(&v.to_le_bytes());
    }
    b.buf.extend_from_slice(c.id.as_bytes());
    b.buf.extend_from_slice(&c.content);
    for (k, v) in &c.attributes {
        b.buf.extend_from_slice(&len_u16(k.len()));
        b.buf.extend_from_slice(&len_u16(v.len()));
        b.buf.extend_from_slice(k.as_bytes());
        b.buf.extend_from_slice(v.as_bytes());
    }
    b.finish()
}

/// Encodes a concept deletion.
pub fn delete_concept(buf: &mut Vec<u8>, id: &str, version: u64) -> u32 {
    let b = Builder::new(buf, Kind::DeleteConcept, version);
    b.buf.extend_from_slice(&len_u16(id.len()));
    b.buf.extend_from_slice(&[0u8; 6]);
    b.buf.extend_from_slice(id.as_bytes());
    b.finish()
}

fn edge_record(
    buf: &mut Vec<u8>,
    kind: Kind,
    from: &str,
    to: &str,
    relation: &str,
    weight: f32,
    version: u64,
) -> u32 {
    let b = Builder::new(buf, kind, version);
    b.buf.extend_from_slice(&weight.to_le_bytes());
    b.buf.extend_from_slice(&len_u16(from.len()));
    b.buf.extend_from_slice(&len_u16(to.len()));
    b.buf.extend_from_slice(&len_u16(relation.len()));
    b.buf.extend_from_slice(&[0u8; 6]);
    b.buf.extend_from_slice(from.as_bytes());
    b.buf.extend_from_slice(to.as_bytes());
    b.buf.extend_from_slice(relation.as_bytes());
    b.finish()
}

/// Encodes an edge.
pub fn put_edge(buf: &mut Vec<u8>, e: &Edge, version: u64) -> u32 {
    edge_record(
        buf,
        Kind::PutEdge,
        &e.from,
        &e.to,
        &e.relation,
        e.weight,
        version,
    )
}

/// Encodes an edge deletion.
pub fn delete_edge(buf: &mut Vec<u8>, from: &str, to: &str, relation: &str, version: u64) -> u32 {
    edge_record(buf, Kind::DeleteEdge, from, to, relation, 0.0, version)
}

/// A checked view of one record.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub kind: Kind,
    pub version: u64,
    pub len: u32,
    body: &'a [u8],
}

/// Fields of a concept record, borrowed from the file.
#[derive(Debug, Clone, Copy)]
pub struct ConceptView<'a> {
    pub id: &'a str,
    pub content: &'a [u8],
    pub attr_count: u16,
    pub attrs: &'a [u8],
    pub embedding_bytes: &'a [u8],
}

/// Fields of an edge record.
#[derive(Debug, Clone, Copy)]
pub struct EdgeView<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub relation: &'a str,
    pub weight: f32,
}

/// Reads the record at the start of `bytes` (which may extend past it), checking
/// length, checksum and kind. Field layout is checked by the `as_*` accessors.
pub fn read(bytes: &[u8]) -> Result<Record<'_>, String> {
    if bytes.len() < RECORD_PREFIX {
        return Err(format!(
            "{} bytes left, a record needs at least {RECORD_PREFIX}",
            bytes.len()
        ));
    }
    let len = u32_at(bytes, 4);
    let ulen = len as usize;
    if ulen < RECORD_PREFIX || !ulen.is_multiple_of(8) {
        return Err(format!("bad record length {len}"));
    }
    if ulen > bytes.len() {
        return Err(format!(
            "record length {len} runs past the end ({} bytes left)",
            bytes.len()
        ));
    }
    let crc = u32_at(bytes, 0);
    if crc != crc32c::crc32c(&bytes[4..ulen]) {
        return Err("record checksum mismatch".into());
    }
    let kind =
        Kind::from_u8(bytes[8]).ok_or_else(|| format!("unknown record kind {}", bytes[8]))?;
    Ok(Record {
        kind,
        version: u64_at(bytes, 16),
        len,
        body: &bytes[..ulen],
    })
}

fn text(b: &[u8], at: usize, len: usize) -> Result<&str, String> {
    let raw = b
        .get(at..at + len)
        .ok_or("string field runs past the record")?;
    std::str::from_utf8(raw).map_err(|_| "string field is not UTF-8".to_string())
}

impl<'a> Record<'a> {
    pub fn as_concept(&self) -> Result<ConceptView<'a>, String> {
        let b = self.body;
        if b.len() < EMBEDDING_OFFSET {
            return Err("concept record too short".into());
        }
        let dimension = u32_at(b, 24);
        let content_len = u32_at(b, 28) as usize;
        let id_len = u16_at(b, 32) as usize;
        let attr_count = u16_at(b, 34);
        let attr_len = u32_at(b, 36) as usize;
        let emb_end = EMBEDDING_OFFSET + dimension as usize * 4;
        let id_end = emb_end + id_len;
        let content_end = id_end + content_len;
        let attr_end = content_end + attr_len;
        if attr_end > b.len() || padded(attr_end) != b.len() {
            return Err("concept record fields disagree with its length".into());
        }
        Ok(ConceptView {
            id: text(b, emb_end, id_len)?,
            content: &b[id_end..content_end],
            attr_count,
            attrs: &b[content_end..attr_end],
            embedding_bytes: &b[EMBEDDING_OFFSET..emb_end],
        })
    }

    pub fn as_delete_concept(&self) -> Result<&'a str, String> {
        let b = self.body;
        if b.len() < 32 {
            return Err("delete record too short".into());
        }
        let id_len = u16_at(b, 24) as usize;
        if padded(32 + id_len) != b.len() {
            return Err("delete record fields disagree with its length".into());
        }
        text(b, 32, id_len)
    }

    pub fn as_edge(&self) -> Result<EdgeView<'a>, String> {
        let b = self.body;
        if b.len() < 40 {
            return Err("edge record too short".into());
        }
        let (fl, tl, rl) = (
            u16_at(b, 28) as usize,
            u16_at(b, 30) as usize,
            u16_at(b, 32) as usize,
        );
        if padded(40 + fl + tl + rl) != b.len() {
            return Err("edge record fields disagree with its length".into());
        }
        Ok(EdgeView {
            weight: f32_at(b, 24),
            from: text(b, 40, fl)?,
            to: text(b, 40 + fl, tl)?,
            relation: text(b, 40 + fl + tl, rl)?,
        })
    }
}

impl<'a> ConceptView<'a> {
    /// The embedding values.
    pub fn embedding(&self) -> Vec<f32> {
        self.embedding_bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("chunk of 4")))
            .collect()
    }

    /// Parses the attribute block.
    pub fn attributes(&self) -> Result<BTreeMap<String, String>, String> {
        let mut out = BTreeMap::new();
        let b = self.attrs;
        let mut at = 0;
        for _ in 0..self.attr_count {
            if at + 4 > b.len() {
                return Err("attribute block truncated".into());
            }
            let (kl, vl) = (u16_at(b, at) as usize, u16_at(b, at + 2) as usize);
            let key = text(b, at + 4, kl)?;
            let value = text(b, at + 4 + kl, vl)?;
            out.insert(key.to_string(), value.to_string());
            at += 4 + kl + vl;
        }
        if at != b.len() {
            return Err("attribute block length mismatch".into());
        }
        Ok(out)
    }

    /// Decodes the whole concept.
    pub fn into_concept(self, version: u64) -> Result<Concept, String> {
        Ok(Concept {
            id: self.id.to_string(),
            content: self.content.to_vec(),
            embedding: self.embedding(),
            attributes: self.attributes()?,
            version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Concept {
        Concept {
            id: "café".into(),
            content: b"hello".to_vec(),
            embedding: vec![1.0, -2.5, 3.25],
            attributes: [
                ("k".to_string(), "v".to_string()),
                ("lang".into(), "fr".into()),
            ]
            .into(),
            version: 0,
        }
    }

    #[test]
    fn concept_round_trip() {
        let mut buf = Vec::new();
        let len = put_concept(&mut buf, &sample(), 42);
        assert_eq!(len as usize, buf.len());
        assert_eq!(buf.len() % 8, 0);
        let rec = read(&buf).unwrap();
        assert_eq!((rec.kind, rec.version), (Kind::PutConcept, 42));
        let mut expected = sample();
        expected.version = 42;
        assert_eq!(
            rec.as_concept().unwrap().into_concept(42).unwrap(),
            expected
        );
    }

    #[test]
    fn edge_and_delete_round_trip() {
        let mut buf = Vec::new();
        let e = Edge {
            from: "a".into(),
            to: "bb".into(),
            relation: "rel".into(),
            weight: 0.5,
        };
        let l1 = put_edge(&mut buf, &e, 7) as usize;
        let l2 = delete_concept(&mut buf, "xyz", 8) as usize;
        let rec = read(&buf).unwrap();
        let v = rec.as_edge().unwrap();
        assert_eq!(
            (v.from, v.to, v.relation, v.weight),
            ("a", "bb", "rel", 0.5)
        );
        let rec = read(&buf[l1..]).unwrap();
        assert_eq!(rec.as_delete_concept().unwrap(), "xyz");
        assert_eq!(l1 + l2, buf.len());
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let mut buf = Vec::new();
        put_concept(&mut buf, &sample(), 1);
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            assert!(read(&bad).is_err(), "flip at {i} not detected");
        }
    }

    #[test]
    fn header_round_trip_and_checksum() {
        let h = FileHeader {
            params: StoreParams::default(),
            file_id: 99,
        };
        let b = h.encode();
        assert_eq!(FileHeader::decode(&b).unwrap(), h);
        let mut bad = b;
        bad[13] ^= 1;
        assert_eq!(FileHeader::decode(&bad).unwrap_err().0, 60);
    }

    /// A header written before the per-owner share existed has zero in its place (the
    /// bytes were reserved as zero); it decodes to the default share of its table size.
    #[test]
    fn header_without_a_share_gets_the_default_one() {
        let h = FileHeader {
            params: StoreParams {
                max_sessions: 320,
                max_sessions_per_owner: 7,
                ..StoreParams::default()
            },
            file_id: 5,
        };
        let mut b = h.encode();
        assert_eq!(u32_at(&b, 36), 7);
        assert_eq!(FileHeader::decode(&b).unwrap(), h);
        b[36..40].fill(0);
        let crc = crc32c::crc32c(&b[0..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        let old = FileHeader::decode(&b).unwrap();
        assert_eq!(old.params.max_sessions_per_owner, 20);
        assert_eq!(StoreParams::default().max_sessions_per_owner, 6_250);
    }
}
