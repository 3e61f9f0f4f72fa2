//! Model test: random operation sequences against a simple in-memory reference,
//! with clean reopens, crashes (reopen without checkpoint) and compactions in between.
//! The reference applies a batch to a copy and keeps the copy only if every
//! precondition held, an independent way of getting atomicity right.

mod common;

use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;
use sutra_engine::*;

const IDS: &[&str] = &["a", "b", "c", "d", "e", "f"];
const RELS: &[&str] = &["is", "has"];

#[derive(Debug, Clone, Default, PartialEq)]
struct Model {
    concepts: BTreeMap<String, Concept>,
    /// (from, relation, to) -> weight
    edges: BTreeMap<(String, String, String), f32>,
}

impl Model {
    fn version(&self, id: &str) -> u64 {
        self.concepts.get(id).map_or(0, |c| c.version)
    }

    /// Applies a batch; returns false (and leaves self unchanged) if any precondition fails.
    fn apply(&mut self, ops: &[WriteOp], version: u64) -> bool {
        let mut next = self.clone();
        for op in ops {
            match op {
                WriteOp::PutConcept {
                    concept,
                    expected_version,
                } => {
                    if expected_version.is_some_and(|e| e != next.version(&concept.id)) {
                        return false;
                    }
                    let mut c = concept.clone();
                    c.version = version;
                    next.concepts.insert(c.id.clone(), c);
                }
                WriteOp::DeleteConcept {
                    id,
                    expected_version,
                } => {
                    if expected_version.is_some_and(|e| e != next.version(id)) {
                        return false;
                    }
                    next.concepts.remove(id);
                    next.edges.retain(|(f, _, t), _| f != id && t != id);
                }
                WriteOp::PutEdge(e) => {
                    if !next.concepts.contains_key(&e.from) || !next.concepts.contains_key(&e.to) {
                        return false;
                    }
                    next.edges
                        .insert((e.from.clone(), e.relation.clone(), e.to.clone()), e.weight);
                }
                WriteOp::DeleteEdge { from, to, relation } => {
                    next.edges
                        .remove(&(from.clone(), relation.clone(), to.clone()));
                }
                WriteOp::CheckVersion {
                    id,
                    expected_version,
                } => {
                    if *expected_version != next.version(id) {
                        return false;
                    }
                }
            }
        }
        *self = next;
        true
    }
}

#[derive(Debug, Clone)]
enum Step {
    Write(Vec<WriteOp>),
    Checkpoint,
    Reopen,
    Crash,
    Compact,
}

fn id() -> impl Strategy<Value = String> {
    prop::sample::select(IDS).prop_map(str::to_string)
}

fn op() -> impl Strategy<Value = WriteOp> {
    let expected = prop_oneof![Just(None), Just(Some(0)), (1u64..40).prop_map(Some)];
    prop_oneof![
        4 => (id(), "[a-z]{0,12}", any::<bool>(), expected.clone(), prop::collection::btree_map("[a-z]{1,3}", "[a-z]{0,3}", 0..3))
            .prop_map(|(id, content, emb, expected_version, attributes)| {
                let mut c = concept(&id, &content);
                c.attributes = attributes;
                if emb {
                    c.embedding = vec![content.len() as f32, 1.0, -0.5, 2.0];
                }
                WriteOp::PutConcept { concept: c, expected_version }
            }),
        1 => (id(), expected.clone()).prop_map(|(id, expected_version)| WriteOp::DeleteConcept { id, expected_version }),
        3 => (id(), id(), prop::sample::select(RELS), -5.0f32..5.0).prop_map(|(f, t, r, w)| edge(&f, &t, r, w)),
        1 => (id(), id(), prop::sample::select(RELS))
            .prop_map(|(from, to, r)| WriteOp::DeleteEdge { from, to, relation: r.to_string() }),
        1 => (id(), 0u64..40).prop_map(|(id, expected_version)| WriteOp::CheckVersion { id, expected_version }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        20 => prop::collection::vec(op(), 1..4).prop_map(Step::Write),
        2 => Just(Step::Checkpoint),
        1 => Just(Step::Reopen),
        1 => Just(Step::Crash),
        1 => Just(Step::Compact),
    ]
}

fn check(engine: &Engine, model: &Model) {
    assert_eq!(all_concepts(engine), model.concepts, "concepts differ");
    for id in IDS {
        assert_eq!(
            engine.get(id).unwrap().as_ref(),
            model.concepts.get(*id),
            "get({id})"
        );
        let out = engine
            .neighbors(id, Direction::Out, None, 1000, None)
            .unwrap();
        // Both sides order out-edges by (relation, target).
        let want: Vec<_> = model
            .edges
            .iter()
            .filter(|((f, _, _), _)| f == id)
            .map(|((_, r, t), w)| (t.clone(), r.clone(), *w))
            .collect();
        let got: Vec<_> = out
            .neighbors
            .iter()
            .map(|n| (n.id.clone(), n.relation.clone(), n.weight))
            .collect();
        assert_eq!(got, want, "out-edges of {id}");
        let inn = engine
            .neighbors(id, Direction::In, None, 1000, None)
            .unwrap();
        assert_eq!(
            inn.neighbors.len(),
            model.edges.keys().filter(|(_, _, t)| t == id).count(),
            "in-edges of {id}"
        );
    }
    // k-NN sees exactly the live concepts that have an embedding.
    let hits = engine
        .search(&[1.0, 0.0, 0.0, 0.0], 100, Metric::Dot)
        .unwrap();
    let mut got: Vec<_> = hits.iter().map(|h| h.id.clone()).collect();
    got.sort();
    let want: Vec<_> = model
        .concepts
        .values()
        .filter(|c| !c.embedding.is_empty())
        .map(|c| c.id.clone())
        .collect();
    assert_eq!(got, want, "k-NN candidates");
    let stats = engine.stats();
    assert_eq!(stats.concepts as usize, model.concepts.len());
    assert_eq!(stats.edges as usize, model.edges.len());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_model(steps in prop::collection::vec(step(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let mut engine = open(dir.path());
        let mut model = Model::default();
        let mut durable = Model::default();
        for step in steps {
            match step {
                Step::Write(ops) => {
                    let version = engine.applied().0 + 1;
                    let applied = model.apply(&ops, version);
                    let outcome = apply(&engine, ops);
                    prop_assert_eq!(matches!(outcome, WriteOutcome::Applied { .. }), applied, "outcome {:?}", outcome);
                }
                Step::Checkpoint => {
                    engine.checkpoint().unwrap();
                    durable = model.clone();
                }
                Step::Reopen => {
                    engine.checkpoint().unwrap();
                    durable = model.clone();
                    drop(engine);
                    engine = open(dir.path());
                }
                Step::Crash => {
                    drop(engine);
                    engine = open(dir.path());
                    model = durable.clone();
                }
                Step::Compact => {
                    engine.compact().unwrap();
                    // Compaction checkpoints what it copied.
                    durable = model.clone();
                }
            }
            check(&engine, &model);
        }
    }
}
