//! The answers of the data commands as views: what `put`, `get`, `delete`, `scan`,
//! `edge`, `neighbors`, `search` and `batch` print, as a table or as JSON.

use std::collections::BTreeMap;

use serde::Serialize;
use sutra_client::BatchOutcome;
use sutra_proto::storage::{Concept, Direction, Neighbor, ReadMeta, SearchHit, WriteResponse};

use crate::view::{Line, View, wide, wide_all};

/// A concept as `get`, `scan` and `search` show it.
#[derive(Debug, Serialize)]
pub struct ConceptView {
    pub id: String,
    pub version: u64,
    /// The content as text; bytes that are not UTF-8 show as U+FFFD.
    pub content: String,
    #[serde(serialize_with = "wide_all")]
    pub embedding: Vec<f32>,
    /// Sorted by key, so that the same concept always prints the same.
    pub attributes: BTreeMap<String, String>,
}

impl From<Concept> for ConceptView {
    fn from(c: Concept) -> Self {
        Self {
            id: c.id,
            version: c.version,
            content: String::from_utf8_lossy(&c.content).into_owned(),
            embedding: c.embedding,
            attributes: c.attributes.into_iter().collect(),
        }
    }
}

impl ConceptView {
    /// `id  version V  content  [k=v ...]  embedding[N]`, the last two only if present.
    pub fn line(&self) -> String {
        let mut line = format!("{}  version {}  {}", self.id, self.version, self.content);
        if !self.attributes.is_empty() {
            let attrs: Vec<_> = self
                .attributes
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            line.push_str(&format!("  [{}]", attrs.join(" ")));
        }
        if !self.embedding.is_empty() {
            line.push_str(&format!("  embedding[{}]", self.embedding.len()));
        }
        line
    }
}

/// `put`'s answer.
#[derive(Debug, Serialize)]
pub struct PutView {
    pub id: String,
    pub version: u64,
    pub leader_id: u64,
    pub deduplicated: bool,
}

impl PutView {
    pub fn new(id: String, w: &WriteResponse) -> Self {
        Self {
            id,
            version: w.version,
            leader_id: w.leader_id,
            deduplicated: w.deduplicated,
        }
    }
}

impl View for PutView {
    fn table(&self) -> String {
        format!(
            "put {}: version {} (leader {})",
            self.id, self.version, self.leader_id
        )
    }
}

/// Which node served a read, and at which index.
#[derive(Debug, Serialize)]
pub struct MetaView {
    pub served_by: u64,
    pub applied_index: u64,
    pub leader_id: u64,
}

impl From<&ReadMeta> for MetaView {
    fn from(m: &ReadMeta) -> Self {
        Self {
            served_by: m.served_by,
            applied_index: m.applied_index,
            leader_id: m.leader_id,
        }
    }
}

/// `get`'s answer: the concept, and in JSON also how the read was served.
#[derive(Debug, Serialize)]
pub struct GetView {
    #[serde(flatten)]
    pub concept: ConceptView,
    pub meta: MetaView,
}

impl View for GetView {
    fn table(&self) -> String {
        self.concept.line()
    }
}

/// `delete`'s answer.
#[derive(Debug, Serialize)]
pub struct DeleteView {
    pub id: String,
    pub existed: bool,
}

impl View for DeleteView {
    fn table(&self) -> String {
        format!("deleted {}: existed {}", self.id, self.existed)
    }
}

/// `scan`'s answer: the concepts in id order; JSON is an array of them.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct ScanView {
    pub concepts: Vec<ConceptView>,
    /// Only ids and versions were asked for, so the table shows only those.
    #[serde(skip)]
    pub keys_only: bool,
}

impl View for ScanView {
    fn table(&self) -> String {
        let lines: Vec<_> = self
            .concepts
            .iter()
            .map(|c| {
                if self.keys_only {
                    format!("{}  version {}", c.id, c.version)
                } else {
                    c.line()
                }
            })
            .collect();
        lines.join("\n")
    }
}

/// `edge put`'s answer.
#[derive(Debug, Serialize)]
pub struct EdgePutView {
    pub from: String,
    pub to: String,
    pub relation: String,
    #[serde(serialize_with = "wide")]
    pub weight: f32,
    pub version: u64,
}

impl View for EdgePutView {
    fn table(&self) -> String {
        format!(
            "edge {} -[{}]-> {}: version {}",
            self.from, self.relation, self.to, self.version
        )
    }
}

/// `edge delete`'s answer.
#[derive(Debug, Serialize)]
pub struct EdgeDeleteView {
    pub from: String,
    pub to: String,
    pub relation: String,
    pub existed: bool,
}

impl View for EdgeDeleteView {
    fn table(&self) -> String {
        format!(
            "deleted edge {} -[{}]-> {}: existed {}",
            self.from, self.relation, self.to, self.existed
        )
    }
}

/// An edge as `neighbors` lists it: the concept at its other end.
#[derive(Debug, Serialize)]
pub struct NeighborView {
    pub id: String,
    pub relation: String,
    #[serde(serialize_with = "wide")]
    pub weight: f32,
    /// `in` or `out`, seen from the concept asked about.
    pub direction: &'static str,
}

impl From<Neighbor> for NeighborView {
    fn from(n: Neighbor) -> Self {
        Self {
            direction: if n.direction == Direction::In as i32 {
                "in"
            } else {
                "out"
            },
            id: n.id,
            relation: n.relation,
            weight: n.weight,
        }
    }
}

impl Line for NeighborView {
    fn line(&self, _: usize) -> String {
        format!(
            "{:<3}  {}  {}  weight {}",
            self.direction, self.relation, self.id, self.weight
        )
    }
}

/// A `search` hit; its concept only with `--include-concepts`.
#[derive(Debug, Serialize)]
pub struct HitView {
    pub id: String,
    #[serde(serialize_with = "wide")]
    pub score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concept: Option<ConceptView>,
}

impl From<SearchHit> for HitView {
    fn from(h: SearchHit) -> Self {
        Self {
            id: h.id,
            score: h.score,
            concept: h.concept.map(ConceptView::from),
        }
    }
}

impl Line for HitView {
    /// `  1. id  score S  content`, numbered from 1, best first.
    fn line(&self, index: usize) -> String {
        let content = self
            .concept
            .as_ref()
            .map(|c| format!("  {}", c.content))
            .unwrap_or_default();
        format!(
            "{:>3}. {}  score {}{content}",
            index + 1,
            self.id,
            self.score
        )
    }
}

/// `batch`'s answer.
#[derive(Debug, Serialize)]
pub struct BatchView {
    /// How many ops were applied.
    pub ops: usize,
    pub version: u64,
    /// Per op, whether its target existed before it applied.
    pub existed: Vec<bool>,
    pub deduplicated: bool,
}

impl From<BatchOutcome> for BatchView {
    fn from(out: BatchOutcome) -> Self {
        Self {
            ops: out.existed.len(),
            version: out.write.version,
            deduplicated: out.write.deduplicated,
            existed: out.existed,
        }
    }
}

impl View for BatchView {
    fn table(&self) -> String {
        format!(
            "batch of {} ops applied at version {}",
            self.ops, self.version
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::Lines;

    fn concept(id: &str, attrs: &[(&str, &str)], embedding: Vec<f32>) -> ConceptView {
        ConceptView::from(Concept {
            id: id.into(),
            content: b"hello".to_vec(),
            embedding,
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            version: 3,
        })
    }

    fn json(view: &impl Serialize) -> serde_json::Value {
        serde_json::to_value(view).unwrap()
    }

    #[test]
    fn a_concept_prints_sorted_attributes_and_its_embedding_size() {
        let view = GetView {
            concept: concept("a", &[("k", "v"), ("a", "b")], vec![1.0, 0.5]),
            meta: MetaView {
                served_by: 2,
                applied_index: 7,
                leader_id: 1,
            },
        };
        assert_eq!(view.table(), "a  version 3  hello  [a=b k=v]  embedding[2]");
        let j = json(&view);
        assert_eq!(j["id"], "a");
        assert_eq!(j["version"], 3);
        assert_eq!(j["content"], "hello");
        assert_eq!(j["embedding"], serde_json::json!([1.0, 0.5]));
        assert_eq!(j["attributes"]["k"], "v");
        assert_eq!(j["meta"]["served_by"], 2);
        assert_eq!(j["meta"]["applied_index"], 7);
        assert_eq!(j["meta"]["leader_id"], 1);
        let text = serde_json::to_string(&view).unwrap();
        assert!(text.contains(r#""attributes":{"a":"b","k":"v"}"#), "{text}");
        assert_eq!(concept("c", &[], vec![]).line(), "c  version 3  hello");
    }

    #[test]
    fn a_keys_only_scan_prints_ids_and_versions_but_json_keeps_every_field() {
        let mut view = ScanView {
            concepts: vec![
                concept("a", &[], vec![]),
                concept("b", &[("k", "v")], vec![]),
            ],
            keys_only: true,
        };
        assert_eq!(view.table(), "a  version 3\nb  version 3");
        let j = json(&view);
        assert_eq!(j.as_array().map(Vec::len), Some(2));
        assert_eq!(j[1]["id"], "b");
        assert_eq!(j[1]["content"], "hello");
        assert_eq!(j[1]["embedding"], serde_json::json!([]));
        view.keys_only = false;
        assert_eq!(
            view.table(),
            "a  version 3  hello\nb  version 3  hello  [k=v]"
        );
        view.concepts.clear();
        assert_eq!(view.table(), "");
        assert_eq!(serde_json::to_string(&view).unwrap(), "[]");
    }

    #[test]
    fn neighbors_align_the_direction_and_keep_wide_weights_in_json() {
        let view = Lines(vec![
            NeighborView::from(Neighbor {
                id: "b".into(),
                relation: "cites".into(),
                weight: 0.1,
                direction: Direction::Out as i32,
            }),
            NeighborView::from(Neighbor {
                id: "c".into(),
                relation: "links".into(),
                weight: -2.5,
                direction: Direction::In as i32,
            }),
        ]);
        assert_eq!(
            view.table(),
            "out  cites  b  weight 0.1\nin   links  c  weight -2.5"
        );
        assert_eq!(
            serde_json::to_string(&view).unwrap(),
            r#"[{"id":"b","relation":"cites","weight":0.10000000149011612,"direction":"out"},{"id":"c","relation":"links","weight":-2.5,"direction":"in"}]"#
        );
    }

    #[test]
    fn search_hits_are_numbered_and_carry_their_concept_only_if_asked() {
        let view = Lines(vec![
            HitView {
                id: "a".into(),
                score: 0.9,
                concept: Some(concept("a", &[], vec![])),
            },
            HitView {
                id: "b".into(),
                score: 0.1,
                concept: None,
            },
        ]);
        assert_eq!(view.table(), "  1. a  score 0.9  hello\n  2. b  score 0.1");
        let j = json(&view);
        assert_eq!(j[0]["concept"]["content"], "hello");
        assert_eq!(j[1]["score"], 0.10000000149011612);
        assert!(j[1].get("concept").is_none(), "{j}");
    }

    #[test]
    fn writes_print_their_version() {
        let put = PutView {
            id: "a".into(),
            version: 9,
            leader_id: 2,
            deduplicated: false,
        };
        assert_eq!(put.table(), "put a: version 9 (leader 2)");
        assert_eq!(json(&put)["deduplicated"], false);
        let edge = EdgePutView {
            from: "a".into(),
            to: "b".into(),
            relation: "cites".into(),
            weight: 0.5,
            version: 10,
        };
        assert_eq!(edge.table(), "edge a -[cites]-> b: version 10");
        assert_eq!(json(&edge)["weight"], 0.5);
        let gone = EdgeDeleteView {
            from: "a".into(),
            to: "b".into(),
            relation: "cites".into(),
            existed: true,
        };
        assert_eq!(gone.table(), "deleted edge a -[cites]-> b: existed true");
        let batch = BatchView {
            ops: 2,
            version: 11,
            existed: vec![false, true],
            deduplicated: false,
        };
        assert_eq!(batch.table(), "batch of 2 ops applied at version 11");
        assert_eq!(json(&batch)["existed"], serde_json::json!([false, true]));
        let deleted = DeleteView {
            id: "a".into(),
            existed: false,
        };
        assert_eq!(deleted.table(), "deleted a: existed false");
        assert_eq!(json(&deleted)["existed"], false);
    }
}
