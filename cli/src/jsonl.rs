//! The JSON Lines format of `sutra import` (and of exports): one record per line, a
//! concept or an edge, with every field the API stores (docs/migration.md).
//!
//! ```text
//! {"type":"concept","id":"doc/1","content":"text","embedding":[0.5,1.0],"attributes":{"lang":"en"}}
//! {"type":"concept","id":"blob/1","content_b64":"AAEC/w=="}
//! {"type":"edge","from":"doc/1","to":"blob/1","relation":"cites","weight":0.5}
//! ```
//!
//! A concept needs `type` and `id`; `content` (UTF-8 text) or `content_b64` (standard
//! base64, for bytes that are not UTF-8; never both) defaults to empty, `embedding` to
//! none, `attributes` to none. `version` is the concept's version where it was
//! exported from; it is accepted and ignored on import (the cluster gives new versions).
//! An edge needs `type`, `from`, `to` and `relation`; `weight` defaults to 1.0. Blank
//! lines and lines starting with `#` are skipped; an unknown field is an error.
//!
//! [`read`] parses a whole file and reports every bad line by its number; [`validate`]
//! checks records against the cluster's limits; [`write_jsonl`] writes records in this
//! format (content as text when it is UTF-8, else as base64), so that what it writes
//! reads back as the same records.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use sutra_proto::limits;
use sutra_proto::storage::{Concept, Edge};

use crate::batch_file::{LineError, json_reason};

/// One record of a JSON Lines file.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A concept (its `version` is where it came from, not what it will get).
    Concept(Concept),
    /// An edge.
    Edge(Edge),
}

/// A record and the line it was read from (1-based).
#[derive(Debug, Clone, PartialEq)]
pub struct Numbered {
    pub line: usize,
    pub record: Record,
}

/// A line as it is spelled in the file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Line {
    Concept {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content_b64: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        embedding: Vec<f32>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        attributes: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "is_zero")]
        version: u64,
    },
    Edge {
        from: String,
        to: String,
        relation: String,
        #[serde(default = "one")]
        weight: f32,
    },
}

fn one() -> f32 {
    1.0
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Line {
    fn into_record(self) -> Result<Record, String> {
        match self {
            Line::Concept {
                id,
                content,
                content_b64,
                embedding,
                attributes,
                version,
            } => {
                let content = match (content, content_b64) {
                    (Some(_), Some(_)) => {
                        return Err("give content or content_b64, not both".into());
                    }
                    (Some(text), None) => text.into_bytes(),
                    (None, Some(b64)) => BASE64
                        .decode(b64.as_bytes())
                        .map_err(|e| format!("content_b64 is not base64: {e}"))?,
                    (None, None) => Vec::new(),
                };
                Ok(Record::Concept(Concept {
                    id,
                    content,
                    embedding,
                    attributes: attributes.into_iter().collect(),
                    version,
                }))
            }
            Line::Edge {
                from,
                to,
                relation,
                weight,
            } => Ok(Record::Edge(Edge {
                from,
                to,
                relation,
                weight,
            })),
        }
    }

    fn of(record: &Record) -> Self {
        match record {
            Record::Concept(c) => {
                let (content, content_b64) = match std::str::from_utf8(&c.content) {
                    Ok("") => (None, None),
                    Ok(text) => (Some(text.to_string()), None),
                    Err(_) => (None, Some(BASE64.encode(&c.content))),
                };
                Line::Concept {
                    id: c.id.clone(),
                    content,
                    content_b64,
                    embedding: c.embedding.clone(),
                    attributes: c
                        .attributes
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    version: c.version,
                }
            }
            Record::Edge(e) => Line::Edge {
                from: e.from.clone(),
                to: e.to.clone(),
                relation: e.relation.clone(),
                weight: e.weight,
            },
        }
    }
}

/// Parses one line: `None` for a blank line or a comment.
pub fn parse_line(line: &str) -> Result<Option<Record>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let parsed: Line = serde_json::from_str(line).map_err(|e| json_reason(&e))?;
    parsed.into_record().map(Some)
}

/// What [`read`] made of a file.
#[derive(Debug, Default)]
pub struct File {
    /// Every record that parsed, in file order.
    pub records: Vec<Numbered>,
    /// Every line that did not parse, in file order.
    pub errors: Vec<LineError>,
    /// SHA-256 of the file's bytes, as 64 hex digits.
    pub sha256: String,
}

/// Reads a whole file: every record, every bad line (not only the first), and the
/// file's SHA-256.
pub fn read(mut input: impl BufRead) -> std::io::Result<File> {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    let mut file = File::default();
    let mut buf = Vec::new();
    for line in 1.. {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        hasher.update(&buf);
        let parsed = match std::str::from_utf8(&buf) {
            Ok(text) => parse_line(text),
            Err(e) => Err(format!("not UTF-8 (byte {})", e.valid_up_to() + 1)),
        };
        match parsed {
            Ok(Some(record)) => file.records.push(Numbered { line, record }),
            Ok(None) => {}
            Err(reason) => file.errors.push(LineError { line, reason }),
        }
    }
    file.sha256 = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(file)
}

/// The cluster's limits a record is checked against before anything is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Length of every embedding (an embedding may also be absent).
    pub vector_dimension: u32,
    /// Largest content in bytes.
    pub max_content_bytes: u64,
}

/// Checks every record against `limits` and the API's fixed limits, and that no
/// concept or edge appears twice (the later line would silently replace the earlier
/// one). Returns every problem, by line.
pub fn validate(records: &[Numbered], limits: Limits) -> Vec<LineError> {
    let mut errors = Vec::new();
    let mut concepts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut edges: BTreeMap<(&str, &str, &str), usize> = BTreeMap::new();
    for n in records {
        let problem = match &n.record {
            Record::Concept(c) => check_concept(c, limits).or_else(|| {
                concepts
                    .insert(&c.id, n.line)
                    .map(|first| format!("concept {:?} already on line {first}", c.id))
            }),
            Record::Edge(e) => check_edge(e).or_else(|| {
                edges
                    .insert((&e.from, &e.relation, &e.to), n.line)
                    .map(|first| format!("the same edge is already on line {first}"))
            }),
        };
        if let Some(reason) = problem {
            errors.push(LineError {
                line: n.line,
                reason,
            });
        }
    }
    errors.sort_by_key(|e| e.line);
    errors
}

fn check_text(field: &str, value: &str, max: usize) -> Option<String> {
    if value.is_empty() {
        Some(format!("{field}: must not be empty"))
    } else if value.len() > max {
        Some(format!(
            "{field}: {} bytes, at most {max} allowed",
            value.len()
        ))
    } else if value.contains('\0') {
        Some(format!("{field}: must not contain NUL"))
    } else {
        None
    }
}

fn check_concept(c: &Concept, limits: Limits) -> Option<String> {
    if let Some(p) = check_text("id", &c.id, limits::MAX_ID_BYTES) {
        return Some(p);
    }
    if c.content.len() as u64 > limits.max_content_bytes {
        return Some(format!(
            "content: {} bytes, the cluster allows at most {}",
            c.content.len(),
            limits.max_content_bytes
        ));
    }
    if !c.embedding.is_empty() {
        if c.embedding.len() != limits.vector_dimension as usize {
            return Some(format!(
                "embedding: has {} values, the cluster's vector dimension is {}",
                c.embedding.len(),
                limits.vector_dimension
            ));
        }
        if let Some(i) = c.embedding.iter().position(|v| !v.is_finite()) {
            return Some(format!("embedding[{i}]: must be a finite number"));
        }
    }
    if c.attributes.len() > limits::MAX_ATTRIBUTES {
        return Some(format!(
            "attributes: {} entries, at most {} allowed",
            c.attributes.len(),
            limits::MAX_ATTRIBUTES
        ));
    }
    let mut attributes: Vec<_> = c.attributes.iter().collect();
    attributes.sort();
    for (key, value) in attributes {
        if let Some(p) = check_text("attribute key", key, limits::MAX_ATTRIBUTE_KEY_BYTES) {
            return Some(p);
        }
        if value.len() > limits::MAX_ATTRIBUTE_VALUE_BYTES {
            return Some(format!(
                "attributes[{key:?}]: {} bytes, at most {} allowed",
                value.len(),
                limits::MAX_ATTRIBUTE_VALUE_BYTES
            ));
        }
    }
    None
}

fn check_edge(e: &Edge) -> Option<String> {
    check_text("from", &e.from, limits::MAX_ID_BYTES)
        .or_else(|| check_text("to", &e.to, limits::MAX_ID_BYTES))
        .or_else(|| check_text("relation", &e.relation, limits::MAX_RELATION_BYTES))
        .or_else(|| (!e.weight.is_finite()).then(|| "weight: must be a finite number".into()))
}

/// Writes `records` as JSON Lines, one line each, in order. Content that is UTF-8 is
/// written as `content`, anything else as `content_b64`; empty fields are left out.
pub fn write_jsonl<'a>(
    records: impl IntoIterator<Item = &'a Record>,
    mut out: impl Write,
) -> std::io::Result<()> {
    for record in records {
        serde_json::to_writer(&mut out, &Line::of(record))?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn concept(id: &str, content: &[u8], embedding: Vec<f32>) -> Record {
        Record::Concept(Concept {
            id: id.into(),
            content: content.to_vec(),
            embedding,
            attributes: [("lang".to_string(), "en".to_string())].into(),
            version: 0,
        })
    }

    fn edge(from: &str, to: &str, weight: f32) -> Record {
        Record::Edge(Edge {
            from: from.into(),
            to: to.into(),
            relation: "cites".into(),
            weight,
        })
    }

    fn records(text: &str) -> File {
        read(text.as_bytes()).unwrap()
    }

    #[test]
    fn written_records_read_back_the_same() {
        let mut versioned = concept("v", b"", vec![]);
        if let Record::Concept(c) = &mut versioned {
            c.attributes.clear();
            c.version = 42;
        }
        let all = vec![
            concept(
                "a",
                "héllo \"quoted\"\nnew line".as_bytes(),
                vec![0.1, -2.5e-8, 3.0],
            ),
            concept("bytes", &[0, 1, 0xff, 0xfe, b'x'], vec![]),
            versioned,
            edge("a", "bytes", 0.3),
            edge("bytes", "bytes", -1.0),
        ];
        let mut out = Vec::new();
        write_jsonl(&all, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), all.len(), "{text}");
        assert!(text.contains("\"content_b64\":\"AAH//ng=\""), "{text}");
        assert!(!text.lines().nth(2).unwrap().contains("content"), "{text}");
        let back = records(&text);
        assert!(back.errors.is_empty(), "{:?}", back.errors);
        let got: Vec<_> = back.records.iter().map(|n| n.record.clone()).collect();
        assert_eq!(got, all);
        let lines: Vec<_> = back.records.iter().map(|n| n.line).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn defaults_and_comments() {
        let f = records(
            "# a comment\n\n{\"type\":\"concept\",\"id\":\"a\"}\n{\"type\":\"edge\",\"from\":\"a\",\"to\":\"a\",\"relation\":\"r\"}\n",
        );
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        assert_eq!(f.records[0].line, 3);
        assert_eq!(
            f.records[0].record,
            Record::Concept(Concept {
                id: "a".into(),
                ..Concept::default()
            })
        );
        assert_eq!(f.records[1].line, 4);
        assert!(matches!(&f.records[1].record, Record::Edge(e) if e.weight == 1.0));
    }

    #[test]
    fn every_bad_line_is_named_by_its_number() {
        let text = [
            r#"{"type":"concept","id":"a"}"#,
            r#"not json"#,
            r#"{"type":"vertex","id":"b"}"#,
            r#"{"type":"concept"}"#,
            r#"{"type":"concept","id":"c","colour":1}"#,
            r#"{"type":"concept","id":"d","content":"x","content_b64":"eA=="}"#,
            r#"{"type":"concept","id":"e","content_b64":"***"}"#,
            r#"{"type":"edge","from":"a","to":"a"}"#,
            r#"{"type":"concept","id":"f","embedding":["x"]}"#,
            r#"{"type":"concept","id":"g"}"#,
        ]
        .join("\n");
        let f = records(&text);
        let got: Vec<_> = f.errors.iter().map(|e| e.line).collect();
        assert_eq!(got, [2, 3, 4, 5, 6, 7, 8, 9], "{:?}", f.errors);
        let needles = [
            "expected",
            "vertex",
            "missing field `id`",
            "colour",
            "not both",
            "base64",
            "relation",
            "invalid type",
        ];
        for (e, needle) in f.errors.iter().zip(needles) {
            assert!(e.reason.contains(needle), "{e}");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
        assert_eq!(f.records.len(), 2);
        let bad_utf8 =
            read(&b"{\"type\":\"concept\",\"id\":\"a\"}\n{\"id\":\"\xff\"}\n"[..]).unwrap();
        assert_eq!(bad_utf8.errors.len(), 1);
        assert_eq!(bad_utf8.errors[0].line, 2);
        assert!(bad_utf8.errors[0].reason.contains("UTF-8"));
    }

    #[test]
    fn validation_names_each_line_against_the_limits() {
        let limits = Limits {
            vector_dimension: 3,
            max_content_bytes: 4,
        };
        let long_id = "x".repeat(limits::MAX_ID_BYTES + 1);
        let text = [
            r#"{"type":"concept","id":"a","embedding":[1,2,3]}"#.to_string(),
            r#"{"type":"concept","id":"b","embedding":[1,2]}"#.to_string(),
            r#"{"type":"concept","id":"c","content":"12345"}"#.to_string(),
            format!(r#"{{"type":"concept","id":"{long_id}"}}"#),
            r#"{"type":"concept","id":""}"#.to_string(),
            r#"{"type":"concept","id":"a"}"#.to_string(),
            r#"{"type":"edge","from":"a","to":"a","relation":""}"#.to_string(),
            r#"{"type":"edge","from":"a","to":"a","relation":"r"}"#.to_string(),
            r#"{"type":"edge","from":"a","to":"a","relation":"r","weight":2}"#.to_string(),
        ]
        .join("\n");
        let f = records(&text);
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        let errors = validate(&f.records, limits);
        let got: Vec<_> = errors.iter().map(|e| e.line).collect();
        assert_eq!(got, [2, 3, 4, 5, 6, 7, 9], "{errors:?}");
        assert!(
            errors[0].reason.contains("vector dimension is 3"),
            "{}",
            errors[0]
        );
        assert!(errors[1].reason.contains("at most 4"), "{}", errors[1]);
        assert!(
            errors[4].reason.contains("already on line 1"),
            "{}",
            errors[4]
        );
        assert!(
            errors[6].reason.contains("already on line 8"),
            "{}",
            errors[6]
        );
    }

    #[test]
    fn the_file_hash_is_sha256_of_its_bytes() {
        // SHA-256("abc\n").
        assert_eq!(
            records("abc\n").sha256,
            "edeaaff3f1774ad2888673770c6d64097e391bc362d7d6fb34982ddf0efd18cb"
        );
    }
}
