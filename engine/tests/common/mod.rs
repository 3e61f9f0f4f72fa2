//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use sutra_engine::*;

pub const DIM: u32 = 4;

/// A small-footprint configuration: tiny growth steps (so crash images stay small),
/// no background compaction (tests compact explicitly).
pub fn config() -> EngineConfig {
    EngineConfig {
        params: StoreParams {
            vector_dimension: DIM,
            ..StoreParams::default()
        },
        max_file_bytes: 1 << 30,
        grow_step_bytes: 4096,
        compaction: CompactionConfig {
            background: false,
            ..CompactionConfig::default()
        },
        ..EngineConfig::default()
    }
}

pub fn open(dir: &Path) -> Engine {
    Engine::open(dir, config()).expect("open store")
}

pub fn concept(id: &str, content: &str) -> Concept {
    Concept {
        id: id.into(),
        content: content.as_bytes().to_vec(),
        ..Concept::default()
    }
}

pub fn with_embedding(mut c: Concept, v: [f32; DIM as usize]) -> Concept {
    c.embedding = v.to_vec();
    c
}

pub fn put(c: Concept) -> WriteOp {
    WriteOp::PutConcept {
        concept: c,
        expected_version: None,
    }
}

pub fn edge(from: &str, to: &str, relation: &str, weight: f32) -> WriteOp {
    WriteOp::PutEdge(Edge {
        from: from.into(),
        to: to.into(),
        relation: relation.into(),
        weight,
    })
}

pub fn batch(ops: Vec<WriteOp>) -> WriteBatch {
    WriteBatch { session: None, ops }
}

/// Applies `ops` as the next version (the engine's last version + 1).
pub fn apply(engine: &Engine, ops: Vec<WriteOp>) -> WriteOutcome {
    apply_batch(engine, &batch(ops)).outcome
}

pub fn apply_batch(engine: &Engine, b: &WriteBatch) -> ApplyOutcome {
    let version = engine.applied().0 + 1;
    let position = format!("pos-{version}");
    engine
        .apply(
            b,
            ApplyContext {
                version,
                position: position.as_bytes(),
                time_ms: version * 10,
            },
        )
        .expect("apply")
}

pub fn all_concepts(engine: &Engine) -> BTreeMap<String, Concept> {
    let page = engine
        .scan(&ScanRange::Prefix(String::new()), 1_000_000, None, false)
        .expect("scan");
    page.concepts
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect()
}
