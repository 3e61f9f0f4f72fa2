//! t110: every RPC of the client and operator APIs refuses bad input with
//! INVALID_ARGUMENT naming the request's own field, on the leader and on a follower, and
//! a refused request changes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use sutra_cluster_tests::client::linearizable;
use sutra_cluster_tests::{ClientRole, Cluster, ClusterOptions, NodeClient, init_tracing, within};
use sutra_proto::cluster::{
    AddLearnerRequest, ChangeMembershipRequest, RemoveNodeRequest, TransferLeaderRequest,
};
use sutra_proto::storage::{
    BatchRequest, CheckVersionOp, Concept, Consistency, DeleteConceptOp, DeleteConceptRequest,
    DeleteEdgeOp, DeleteEdgeRequest, Direction, Edge, GetConceptRequest, GetStatsRequest, IdRange,
    Metric, NeighborsRequest, PutConceptOp, PutConceptRequest, PutEdgeOp, PutEdgeRequest,
    ReadOptions, ScanRequest, SearchRequest, WriteHeader, WriteOp, scan_request, write_op,
};
use tonic::{Code, Status};

/// The vector dimension of the test cluster (`ClusterOptions::default()`).
const DIM: usize = 8;

/// One request of any RPC that takes input.
#[derive(Debug, Clone)]
enum Req {
    PutConcept(PutConceptRequest),
    DeleteConcept(DeleteConceptRequest),
    PutEdge(PutEdgeRequest),
    DeleteEdge(DeleteEdgeRequest),
    Batch(BatchRequest),
    GetConcept(GetConceptRequest),
    Neighbors(NeighborsRequest),
    Scan(ScanRequest),
    Search(SearchRequest),
    AddLearner(AddLearnerRequest),
    ChangeMembership(ChangeMembershipRequest),
    RemoveNode(RemoveNodeRequest),
    TransferLeader(TransferLeaderRequest),
}

impl Req {
    fn rpc(&self) -> &'static str {
        match self {
            Req::PutConcept(_) => "PutConcept",
            Req::DeleteConcept(_) => "DeleteConcept",
            Req::PutEdge(_) => "PutEdge",
            Req::DeleteEdge(_) => "DeleteEdge",
            Req::Batch(_) => "Batch",
            Req::GetConcept(_) => "GetConcept",
            Req::Neighbors(_) => "GetNeighbors",
            Req::Scan(_) => "Scan",
            Req::Search(_) => "Search",
            Req::AddLearner(_) => "AddLearner",
            Req::ChangeMembership(_) => "ChangeMembership",
            Req::RemoveNode(_) => "RemoveNode",
            Req::TransferLeader(_) => "TransferLeader",
        }
    }

    async fn send(self, c: &mut NodeClient) -> Result<(), Status> {
        let s = &mut c.storage;
        let k = &mut c.cluster;
        match self {
            Req::PutConcept(r) => s.put_concept(r).await.map(drop),
            Req::DeleteConcept(r) => s.delete_concept(r).await.map(drop),
            Req::PutEdge(r) => s.put_edge(r).await.map(drop),
            Req::DeleteEdge(r) => s.delete_edge(r).await.map(drop),
            Req::Batch(r) => s.batch(r).await.map(drop),
            Req::GetConcept(r) => s.get_concept(r).await.map(drop),
            Req::Neighbors(r) => s.get_neighbors(r).await.map(drop),
            Req::Scan(r) => s.scan(r).await.map(drop),
            Req::Search(r) => s.search(r).await.map(drop),
            Req::AddLearner(r) => k.add_learner(r).await.map(drop),
            Req::ChangeMembership(r) => k.change_membership(r).await.map(drop),
            Req::RemoveNode(r) => k.remove_node(r).await.map(drop),
            Req::TransferLeader(r) => k.transfer_leader(r).await.map(drop),
        }
    }
}

fn header(client_id: &str, sequence: u64) -> Option<WriteHeader> {
    Some(WriteHeader {
        client_id: client_id.into(),
        sequence,
    })
}

/// The header of every bad write: if a bad write reached the session table, a later
/// write of this client with a lower sequence would be refused as stale.
fn bad_header() -> Option<WriteHeader> {
    header("t110-bad", 5)
}

fn embedding(first: f32) -> Vec<f32> {
    let mut v = vec![0.5; DIM];
    v[0] = first;
    v
}

fn concept(id: &str) -> Concept {
    Concept {
        id: id.into(),
        content: b"c".to_vec(),
        embedding: embedding(1.0),
        ..Concept::default()
    }
}

fn put(c: Concept) -> Req {
    Req::PutConcept(PutConceptRequest {
        header: bad_header(),
        concept: Some(c),
        expected_version: None,
    })
}

fn edge(from: &str, to: &str, relation: &str, weight: f32) -> Edge {
    Edge {
        from: from.into(),
        to: to.into(),
        relation: relation.into(),
        weight,
    }
}

fn put_edge(e: Edge) -> Req {
    Req::PutEdge(PutEdgeRequest {
        header: bad_header(),
        edge: Some(e),
    })
}

fn delete_edge(from: &str, to: &str, relation: &str) -> Req {
    Req::DeleteEdge(DeleteEdgeRequest {
        header: bad_header(),
        from: from.into(),
        to: to.into(),
        relation: relation.into(),
    })
}

fn op(o: write_op::Op) -> WriteOp {
    WriteOp { op: Some(o) }
}

fn put_op(c: Concept) -> WriteOp {
    op(write_op::Op::PutConcept(PutConceptOp {
        concept: Some(c),
        expected_version: None,
    }))
}

fn batch(ops: Vec<WriteOp>) -> Req {
    Req::Batch(BatchRequest {
        header: bad_header(),
        ops,
    })
}

fn read(consistency: i32, max_staleness_ms: u64) -> Option<ReadOptions> {
    Some(ReadOptions {
        consistency,
        session_index: 0,
        max_staleness_ms,
    })
}

fn get(id: &str, read: Option<ReadOptions>) -> Req {
    Req::GetConcept(GetConceptRequest {
        read,
        id: id.into(),
    })
}

fn neighbors(id: &str) -> NeighborsRequest {
    NeighborsRequest {
        read: linearizable(),
        id: id.into(),
        direction: Direction::Out as i32,
        relation: None,
        limit: 0,
        page_token: String::new(),
    }
}

fn scan(range: Option<scan_request::Range>) -> ScanRequest {
    ScanRequest {
        read: linearizable(),
        range,
        limit: 0,
        page_token: String::new(),
        keys_only: false,
    }
}

fn search(vector: Vec<f32>, k: u32) -> SearchRequest {
    SearchRequest {
        read: linearizable(),
        vector,
        k,
        metric: Metric::Cosine as i32,
        include_concepts: false,
    }
}

fn add_learner(node_id: u64, raft_addr: &str, api_addr: &str) -> Req {
    Req::AddLearner(AddLearnerRequest {
        node_id,
        raft_addr: raft_addr.into(),
        api_addr: api_addr.into(),
        wait_caught_up: false,
    })
}

/// Every kind of bad input, each with the field the answer must name.
fn cases() -> Vec<(Req, String)> {
    let long_id = "i".repeat(257);
    let long_rel = "r".repeat(129);
    let long_key = "k".repeat(129);
    let mut c: Vec<(Req, String)> = Vec::new();
    let mut add = |r: Req, field: &str| c.push((r, field.to_string()));

    // PutConcept: the header, then every part of the concept.
    let good = || concept("t110/new");
    add(
        Req::PutConcept(PutConceptRequest {
            header: None,
            concept: Some(good()),
            expected_version: None,
        }),
        "header",
    );
    for (h, field) in [
        (header("", 1), "header.client_id"),
        (header(&"c".repeat(129), 1), "header.client_id"),
        (header("t110-bad", 0), "header.sequence"),
    ] {
        add(
            Req::PutConcept(PutConceptRequest {
                header: h,
                concept: Some(good()),
                expected_version: None,
            }),
            field,
        );
    }
    add(
        Req::PutConcept(PutConceptRequest {
            header: bad_header(),
            concept: None,
            expected_version: None,
        }),
        "concept",
    );
    add(put(concept("")), "concept.id");
    add(put(concept(&long_id)), "concept.id");
    add(put(concept("a\0b")), "concept.id");
    add(
        put(Concept {
            content: vec![0; (1 << 20) + 1],
            ..good()
        }),
        "concept.content",
    );
    add(
        put(Concept {
            embedding: vec![0.5; DIM - 1],
            ..good()
        }),
        "concept.embedding",
    );
    let mut nan = embedding(1.0);
    nan[2] = f32::NAN;
    add(
        put(Concept {
            embedding: nan,
            ..good()
        }),
        "concept.embedding[2]",
    );
    let mut inf = embedding(1.0);
    inf[5] = f32::NEG_INFINITY;
    add(
        put(Concept {
            embedding: inf,
            ..good()
        }),
        "concept.embedding[5]",
    );
    add(
        put(Concept {
            attributes: (0..65).map(|i| (format!("k{i}"), "v".into())).collect(),
            ..good()
        }),
        "concept.attributes",
    );
    add(
        put(Concept {
            attributes: BTreeMap::from([(String::new(), "v".into())]),
            ..good()
        }),
        "concept.attributes[\"\"].key",
    );
    add(
        put(Concept {
            attributes: BTreeMap::from([(long_key.clone(), "v".into())]),
            ..good()
        }),
        &format!("concept.attributes[{long_key:?}].key"),
    );
    add(
        put(Concept {
            attributes: BTreeMap::from([("k".into(), "v".repeat(4097))]),
            ..good()
        }),
        "concept.attributes[\"k\"].value",
    );

    // DeleteConcept.
    for (h, id, field) in [
        (None, "t110/a", "header"),
        (header("t110-bad", 0), "t110/a", "header.sequence"),
        (bad_header(), "", "id"),
        (bad_header(), long_id.as_str(), "id"),
    ] {
        add(
            Req::DeleteConcept(DeleteConceptRequest {
                header: h,
                id: id.into(),
                expected_version: None,
            }),
            field,
        );
    }

    // PutEdge.
    add(
        Req::PutEdge(PutEdgeRequest {
            header: bad_header(),
            edge: None,
        }),
        "edge",
    );
    add(
        Req::PutEdge(PutEdgeRequest {
            header: header("", 1),
            edge: Some(edge("t110/a", "t110/b", "new", 1.0)),
        }),
        "header.client_id",
    );
    add(put_edge(edge("", "t110/b", "new", 1.0)), "edge.from");
    add(put_edge(edge("t110/a", &long_id, "new", 1.0)), "edge.to");
    add(put_edge(edge("t110/a", "t110/b", "", 1.0)), "edge.relation");
    add(
        put_edge(edge("t110/a", "t110/b", &long_rel, 1.0)),
        "edge.relation",
    );
    add(
        put_edge(edge("t110/a", "t110/b", "new", f32::NAN)),
        "edge.weight",
    );
    add(
        put_edge(edge("t110/a", "t110/b", "new", f32::INFINITY)),
        "edge.weight",
    );

    // DeleteEdge.
    add(delete_edge("", "t110/b", "rel"), "from");
    add(delete_edge("t110/a", "", "rel"), "to");
    add(delete_edge("t110/a", &long_id, "rel"), "to");
    add(delete_edge("t110/a", "t110/b", ""), "relation");
    add(delete_edge("t110/a", "t110/b", &long_rel), "relation");
    add(
        Req::DeleteEdge(DeleteEdgeRequest {
            header: None,
            from: "t110/a".into(),
            to: "t110/b".into(),
            relation: "rel".into(),
        }),
        "header",
    );

    // Batch: a bad op anywhere refuses the whole batch, including the good ops before it.
    add(
        Req::Batch(BatchRequest {
            header: None,
            ops: vec![put_op(good())],
        }),
        "header",
    );
    add(
        Req::Batch(BatchRequest {
            header: header("t110-bad", 0),
            ops: vec![put_op(good())],
        }),
        "header.sequence",
    );
    add(batch(vec![]), "ops");
    add(batch((0..1001).map(|_| put_op(good())).collect()), "ops");
    add(
        batch(vec![put_op(good()), WriteOp { op: None }]),
        "ops[1].op",
    );
    add(
        batch(vec![op(write_op::Op::PutConcept(PutConceptOp {
            concept: None,
            expected_version: None,
        }))]),
        "ops[0].put_concept.concept",
    );
    let mut nan = embedding(1.0);
    nan[3] = f32::NAN;
    add(
        batch(vec![
            put_op(good()),
            put_op(Concept {
                embedding: nan,
                ..concept("t110/new2")
            }),
        ]),
        "ops[1].put_concept.concept.embedding[3]",
    );
    add(
        batch(vec![op(write_op::Op::DeleteConcept(DeleteConceptOp {
            id: String::new(),
            expected_version: None,
        }))]),
        "ops[0].delete_concept.id",
    );
    add(
        batch(vec![
            put_op(good()),
            put_op(concept("t110/new2")),
            op(write_op::Op::PutEdge(PutEdgeOp {
                edge: Some(edge("t110/new", "t110/new2", "r", f32::INFINITY)),
            })),
        ]),
        "ops[2].put_edge.edge.weight",
    );
    add(
        batch(vec![op(write_op::Op::DeleteEdge(DeleteEdgeOp {
            from: "t110/a".into(),
            to: "t110/b".into(),
            relation: String::new(),
        }))]),
        "ops[0].delete_edge.relation",
    );
    add(
        batch(vec![op(write_op::Op::Check(CheckVersionOp {
            id: "t110/a".into(),
            expected_version: None,
        }))]),
        "ops[0].check.expected_version",
    );
    add(
        batch(vec![op(write_op::Op::Check(CheckVersionOp {
            id: String::new(),
            expected_version: Some(0),
        }))]),
        "ops[0].check.id",
    );

    // GetConcept and the read options every read carries.
    add(get("", linearizable()), "id");
    add(get(&long_id, linearizable()), "id");
    add(get("t110/a", read(99, 0)), "read.consistency");
    add(get("t110/a", read(-1, 0)), "read.consistency");
    add(
        get("t110/a", read(Consistency::Bounded as i32, 0)),
        "read.max_staleness_ms",
    );

    // GetNeighbors.
    add(Req::Neighbors(neighbors("")), "id");
    add(
        Req::Neighbors(NeighborsRequest {
            direction: 7,
            ..neighbors("t110/a")
        }),
        "direction",
    );
    add(
        Req::Neighbors(NeighborsRequest {
            relation: Some(String::new()),
            ..neighbors("t110/a")
        }),
        "relation",
    );
    add(
        Req::Neighbors(NeighborsRequest {
            limit: 10_001,
            ..neighbors("t110/a")
        }),
        "limit",
    );
    add(
        Req::Neighbors(NeighborsRequest {
            page_token: "garbage".into(),
            ..neighbors("t110/a")
        }),
        "page_token",
    );
    add(
        Req::Neighbors(NeighborsRequest {
            page_token: "i\0rel\0t110/b".into(),
            ..neighbors("t110/a")
        }),
        "page_token",
    );
    add(
        Req::Neighbors(NeighborsRequest {
            read: read(Consistency::Bounded as i32, 0),
            ..neighbors("t110/a")
        }),
        "read.max_staleness_ms",
    );

    // Scan.
    add(
        Req::Scan(scan(Some(scan_request::Range::Prefix(long_id.clone())))),
        "prefix",
    );
    add(
        Req::Scan(scan(Some(scan_request::Range::IdRange(IdRange {
            start: "a\0".into(),
            end: String::new(),
        })))),
        "id_range.start",
    );
    add(
        Req::Scan(scan(Some(scan_request::Range::IdRange(IdRange {
            start: "t110/b".into(),
            end: "t110/a".into(),
        })))),
        "id_range.end",
    );
    add(
        Req::Scan(ScanRequest {
            limit: 10_001,
            ..scan(None)
        }),
        "limit",
    );
    add(
        Req::Scan(ScanRequest {
            page_token: "other/x".into(),
            ..scan(Some(scan_request::Range::Prefix("t110/".into())))
        }),
        "page_token",
    );
    add(
        Req::Scan(ScanRequest {
            read: read(42, 0),
            ..scan(None)
        }),
        "read.consistency",
    );

    // Search.
    add(Req::Search(search(vec![0.5; DIM + 1], 3)), "vector");
    let mut nan = embedding(1.0);
    nan[1] = f32::NAN;
    add(Req::Search(search(nan, 3)), "vector[1]");
    add(Req::Search(search(vec![0.0; DIM], 3)), "vector");
    add(Req::Search(search(embedding(1.0), 0)), "k");
    add(Req::Search(search(embedding(1.0), 1001)), "k");
    add(
        Req::Search(SearchRequest {
            metric: 9,
            ..search(embedding(1.0), 3)
        }),
        "metric",
    );
    add(
        Req::Search(SearchRequest {
            read: read(Consistency::Bounded as i32, 0),
            ..search(embedding(1.0), 3)
        }),
        "read.max_staleness_ms",
    );

    // ClusterService.
    add(add_learner(0, "127.0.0.1:1", "127.0.0.1:2"), "node_id");
    add(add_learner(9, "no-port", "127.0.0.1:2"), "raft_addr");
    add(add_learner(9, ":1", "127.0.0.1:2"), "raft_addr");
    add(add_learner(9, "127.0.0.1:1", "127.0.0.1:http"), "api_addr");
    add(add_learner(9, "127.0.0.1:1", "127.0.0.1:0"), "api_addr");
    add(add_learner(9, "127.0.0.1:1", "127.0.0.1:70000"), "api_addr");
    for (voters, field) in [
        (vec![], "voters"),
        (vec![1, 0], "voters[1]"),
        (vec![1, 2, 1], "voters[2]"),
    ] {
        add(
            Req::ChangeMembership(ChangeMembershipRequest {
                voters,
                retain_removed_as_learners: false,
            }),
            field,
        );
    }
    add(Req::RemoveNode(RemoveNodeRequest { node_id: 0 }), "node_id");
    add(
        Req::TransferLeader(TransferLeaderRequest {
            target_node_id: Some(0),
        }),
        "target_node_id",
    );
    c
}

/// What must not change: per node, the Raft log and applied index and the store's
/// counts, and the concepts themselves.
#[derive(Debug, PartialEq)]
struct Observed {
    per_node: Vec<(u64, u64, u64, u64, u64, u64)>,
    concepts: Vec<(String, u64, Vec<u8>)>,
}

async fn observe(cluster: &Cluster, leader: u64) -> anyhow::Result<Observed> {
    let mut per_node = Vec::new();
    for id in cluster.ids() {
        let status = cluster.status(id).await?;
        let stats = cluster
            .client(id, ClientRole::Reader)?
            .storage
            .get_stats(GetStatsRequest::default())
            .await?
            .into_inner();
        per_node.push((
            id,
            status.last_log_index,
            status.applied_index,
            stats.concepts,
            stats.edges,
            stats.written,
        ));
    }
    let mut c = cluster.client(leader, ClientRole::Reader)?;
    let concepts = c
        .storage
        .scan(scan(None))
        .await?
        .into_inner()
        .concepts
        .into_iter()
        .map(|c| (c.id, c.version, c.content))
        .collect();
    Ok(Observed { per_node, concepts })
}

/// Every bad request of the table, sent to the leader and to a follower, is answered
/// INVALID_ARGUMENT with `sutra-invalid-field` naming the field by the request's own path
/// (the single-op writes not as `ops[0]....`); afterwards no node's log, applied index or
/// counts moved and the concepts are as before, and the bad writes' client id has no
/// session (its first real write, with a lower sequence, is applied).
///
/// Why: a client must be told which field to fix, the same way by every node it may be
/// talking to, and a refused request must leave no trace (not even an empty log entry or
/// a session).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t110_validation_on_every_rpc() -> anyhow::Result<()> {
    init_tracing();
    within("t110", Duration::from_secs(100), run()).await
}

async fn run() -> anyhow::Result<()> {
    tracing::info!("--- start three nodes; store two concepts and an edge");
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader(Duration::from_secs(15)).await?;
    let follower = cluster
        .ids()
        .into_iter()
        .find(|&id| id != leader)
        .expect("three nodes");
    {
        let mut w = cluster.client(leader, ClientRole::Writer)?;
        for (i, id) in ["t110/a", "t110/b"].into_iter().enumerate() {
            w.storage
                .put_concept(PutConceptRequest {
                    header: header("t110-seed", i as u64 + 1),
                    concept: Some(concept(id)),
                    expected_version: None,
                })
                .await?;
        }
        w.storage
            .put_edge(PutEdgeRequest {
                header: header("t110-seed", 3),
                edge: Some(edge("t110/a", "t110/b", "rel", 0.5)),
            })
            .await?;
        let applied = cluster.status(leader).await?.applied_index;
        for id in cluster.ids() {
            cluster
                .wait_applied(id, applied, Duration::from_secs(10))
                .await?;
        }
    }
    let before = observe(&cluster, leader).await?;
    tracing::info!(?before.per_node, "observed");

    let cases = cases();
    for node in [leader, follower] {
        tracing::info!(
            node,
            cases = cases.len(),
            "--- every bad request to node {node}"
        );
        let mut c = cluster.client(node, ClientRole::Admin)?;
        for (req, field) in &cases {
            let rpc = req.rpc();
            match req.clone().send(&mut c).await {
                Ok(()) => panic!("node {node}: {rpc} expecting a bad {field} was served"),
                Err(s) => {
                    assert_eq!(
                        s.code(),
                        Code::InvalidArgument,
                        "node {node}: {rpc} with a bad {field}: {s:?}"
                    );
                    let named = s
                        .metadata()
                        .get("sutra-invalid-field")
                        .and_then(|v| v.to_str().ok());
                    assert_eq!(
                        named,
                        Some(field.as_str()),
                        "node {node}: {rpc}: wrong field named: {s:?}"
                    );
                    assert!(
                        s.message().contains(field.as_str()),
                        "node {node}: {rpc}: the message does not name {field}: {}",
                        s.message()
                    );
                }
            }
        }
    }

    tracing::info!("--- nothing changed on any node");
    let after = observe(&cluster, leader).await?;
    assert_eq!(before, after, "a refused request changed the cluster");
    let mut c = cluster.client(leader, ClientRole::Reader)?;
    for id in ["t110/new", "t110/new2"] {
        let got = c
            .storage
            .get_concept(GetConceptRequest {
                read: linearizable(),
                id: id.into(),
            })
            .await?
            .into_inner();
        assert!(
            got.concept.is_none(),
            "{id} was written by a refused request"
        );
    }

    tracing::info!("--- the bad writes' client id has no session: sequence 1 is applied");
    let mut w = cluster.client(follower, ClientRole::Writer)?;
    let ok = w
        .storage
        .put_concept(PutConceptRequest {
            header: header("t110-bad", 1),
            concept: Some(concept("t110/c")),
            expected_version: None,
        })
        .await?
        .into_inner();
    assert!(!ok.deduplicated, "{ok:?}");
    assert!(ok.version > before.per_node[0].2, "{ok:?}");

    cluster.finish();
    Ok(())
}
