//! The `sutra batch --file` format: one JSON op per line (JSON Lines).
//!
//! ```text
//! {"op":"put","id":"a","content":"text","embedding":[0.1,0.2],"attributes":{"k":"v"},"expected_version":0}
//! {"op":"delete","id":"a","expected_version":3}
//! {"op":"put_edge","from":"a","to":"b","relation":"cites","weight":0.5}
//! {"op":"delete_edge","from":"a","to":"b","relation":"cites"}
//! {"op":"check","id":"a","expected_version":0}
//! ```
//!
//! Only `op` and the ids are required; `content` defaults to empty, `weight` to 1.0 and
//! `expected_version` to none (unconditional). `check` requires `expected_version`.
//! Blank lines and lines starting with `#` are skipped. Unknown fields are errors.

use std::collections::BTreeMap;

use serde::Deserialize;
use sutra_client::Batch;
use sutra_proto::storage::{Concept, Edge};

/// One line of a batch file.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Op {
    Put {
        id: String,
        #[serde(default)]
        content: String,
        #[serde(default)]
        embedding: Vec<f32>,
        #[serde(default)]
        attributes: BTreeMap<String, String>,
        expected_version: Option<u64>,
    },
    Delete {
        id: String,
        expected_version: Option<u64>,
    },
    PutEdge {
        from: String,
        to: String,
        relation: String,
        #[serde(default = "one")]
        weight: f32,
    },
    DeleteEdge {
        from: String,
        to: String,
        relation: String,
    },
    Check {
        id: String,
        expected_version: u64,
    },
}

fn one() -> f32 {
    1.0
}

/// A line of a batch file that is not a valid op.
#[derive(Debug, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for LineError {}

/// Parses a whole batch file into one batch; the first bad line is an error naming it.
pub fn parse(text: &str) -> Result<Batch, LineError> {
    let mut batch = Batch::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let op: Op = serde_json::from_str(line).map_err(|e| LineError {
            line: i + 1,
            reason: json_reason(&e),
        })?;
        match op {
            Op::Put {
                id,
                content,
                embedding,
                attributes,
                expected_version,
            } => {
                let concept = Concept {
                    id,
                    content: content.into_bytes(),
                    embedding,
                    attributes,
                    version: 0,
                };
                match expected_version {
                    Some(v) => batch.put_if(concept, v),
                    None => batch.put(concept),
                }
            }
            Op::Delete {
                id,
                expected_version: Some(v),
            } => batch.delete_if(id, v),
            Op::Delete {
                id,
                expected_version: None,
            } => batch.delete(id),
            Op::PutEdge {
                from,
                to,
                relation,
                weight,
            } => batch.put_edge(Edge {
                from,
                to,
                relation,
                weight,
            }),
            Op::DeleteEdge { from, to, relation } => batch.delete_edge(from, to, relation),
            Op::Check {
                id,
                expected_version,
            } => batch.check(id, expected_version),
        };
    }
    if batch.is_empty() {
        return Err(LineError {
            line: text.lines().count().max(1),
            reason: "the file holds no ops".into(),
        });
    }
    Ok(batch)
}

/// serde_json's message without its position (every line is parsed on its own, so the
/// line is always 1; the caller names the file's line).
pub(crate) fn json_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once(" at line ") {
        Some((reason, _)) => format!("{reason} (column {})", e.column()),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sutra_proto::storage::write_op::Op as Wire;

    #[test]
    fn every_op_kind_parses_in_order() {
        let text = r#"
# a comment, then a blank line

{"op":"put","id":"a","content":"hello","embedding":[1,2.5],"attributes":{"k":"v"}}
{"op":"put","id":"b","expected_version":0}
{"op":"put_edge","from":"a","to":"b","relation":"r"}
{"op":"put_edge","from":"a","to":"b","relation":"s","weight":0.25}
{"op":"delete_edge","from":"a","to":"b","relation":"s"}
{"op":"check","id":"a","expected_version":0}
{"op":"delete","id":"c"}
{"op":"delete","id":"d","expected_version":7}
"#;
        let batch = parse(text).unwrap();
        let ops: Vec<_> = batch.ops().iter().map(|o| o.op.clone().unwrap()).collect();
        assert_eq!(ops.len(), 8);
        match &ops[0] {
            Wire::PutConcept(p) => {
                let c = p.concept.as_ref().unwrap();
                assert_eq!(c.id, "a");
                assert_eq!(c.content, b"hello");
                assert_eq!(c.embedding, vec![1.0, 2.5]);
                assert_eq!(c.attributes["k"], "v");
                assert_eq!(p.expected_version, None);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&ops[1], Wire::PutConcept(p) if p.expected_version == Some(0)));
        assert!(matches!(&ops[2], Wire::PutEdge(e) if e.edge.as_ref().unwrap().weight == 1.0));
        assert!(matches!(&ops[3], Wire::PutEdge(e) if e.edge.as_ref().unwrap().weight == 0.25));
        assert!(matches!(&ops[4], Wire::DeleteEdge(d) if d.relation == "s"));
        assert!(matches!(&ops[5], Wire::Check(c) if c.expected_version == Some(0)));
        assert!(matches!(&ops[6], Wire::DeleteConcept(d) if d.expected_version.is_none()));
        assert!(matches!(&ops[7], Wire::DeleteConcept(d) if d.expected_version == Some(7)));
    }

    #[test]
    fn a_bad_line_is_named_by_its_number() {
        let cases = [
            ("{\"op\":\"put\",\"id\":\"a\"}\nnot json\n", 2, "expected"),
            (
                "{\"op\":\"put\",\"id\":\"a\"}\n\n{\"op\":\"frob\"}\n",
                3,
                "frob",
            ),
            ("{\"op\":\"put\"}", 1, "missing field `id`"),
            ("{\"op\":\"put\",\"id\":\"a\",\"colour\":1}", 1, "colour"),
            ("{\"op\":\"check\",\"id\":\"a\"}", 1, "expected_version"),
            (
                "{\"op\":\"put\",\"id\":\"a\",\"embedding\":[\"x\"]}",
                1,
                "invalid type",
            ),
        ];
        for (text, line, needle) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.reason.contains(needle), "{text}: {e}");
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn an_empty_file_is_an_error() {
        assert!(parse("").is_err());
        assert!(parse("\n# only a comment\n").is_err());
    }
}
