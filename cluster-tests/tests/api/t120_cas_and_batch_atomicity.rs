//! t120: compare-and-set and atomic batches on a real cluster: a failed condition changes
//! nothing on any node, a batch is seen whole or not at all by readers on followers, and
//! concurrent CAS increments lose no update. Every test records its writes,
//! compare-and-sets, deletes, batches and LINEARIZABLE reads and ends with
//! `sutra-checker`: the nodes hold every acknowledged write and nothing else, and the
//! history, CAS and deletes included, is linearizable.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use sutra_checker::History;
use sutra_cluster_tests::client::{linearizable, stale};
use sutra_cluster_tests::history::{recorded_batch, recorded_delete, recorded_get, recorded_put};
use sutra_cluster_tests::{
    ClientRole, Cluster, ClusterOptions, NodeClient, check_final_scan, init_tracing, within,
};
use sutra_proto::storage::{
    BatchRequest, CheckVersionOp, Concept, DeleteConceptOp, DeleteConceptRequest, Direction, Edge,
    GetConceptRequest, NeighborsRequest, PutConceptOp, PutConceptRequest, PutEdgeOp, ScanRequest,
    WriteHeader, WriteOp, scan_request, write_op,
};
use tonic::Code;

const BUDGET: Duration = Duration::from_secs(20);

fn header(client_id: &str, sequence: u64) -> Option<WriteHeader> {
    Some(WriteHeader {
        client_id: client_id.to_owned(),
        sequence,
    })
}

fn concept(id: &str, content: &[u8]) -> Option<Concept> {
    Some(Concept {
        id: id.to_owned(),
        content: content.to_vec(),
        ..Concept::default()
    })
}

fn put(
    client_id: &str,
    sequence: u64,
    id: &str,
    content: &[u8],
    expected_version: Option<u64>,
) -> PutConceptRequest {
    PutConceptRequest {
        header: header(client_id, sequence),
        concept: concept(id, content),
        expected_version,
    }
}

fn put_op(id: &str, content: &[u8], expected_version: Option<u64>) -> WriteOp {
    WriteOp {
        op: Some(write_op::Op::PutConcept(PutConceptOp {
            concept: concept(id, content),
            expected_version,
        })),
    }
}

fn edge_op(from: &str, to: &str, weight: f32) -> WriteOp {
    WriteOp {
        op: Some(write_op::Op::PutEdge(PutEdgeOp {
            edge: Some(Edge {
                from: from.to_owned(),
                to: to.to_owned(),
                relation: "rel".into(),
                weight,
            }),
        })),
    }
}

fn check_op(id: &str, expected_version: u64) -> WriteOp {
    WriteOp {
        op: Some(write_op::Op::Check(CheckVersionOp {
            id: id.to_owned(),
            expected_version: Some(expected_version),
        })),
    }
}

fn delete_op(id: &str) -> WriteOp {
    WriteOp {
        op: Some(write_op::Op::DeleteConcept(DeleteConceptOp {
            id: id.to_owned(),
            expected_version: None,
        })),
    }
}

/// Waits until every node has applied what the leader has; returns that index.
async fn wait_all_applied(cluster: &Cluster) -> Result<u64> {
    let leader = cluster.leader(BUDGET).await?;
    let index = cluster.health(leader).await?.applied_index;
    for id in cluster.running_ids() {
        cluster.wait_applied(id, index, BUDGET).await?;
    }
    Ok(index)
}

/// One page (at most 1000) of concepts under `prefix` on `c` at `read`, id → (version,
/// content).
async fn scan_page(
    c: &mut NodeClient,
    prefix: &str,
    read: Option<sutra_proto::storage::ReadOptions>,
) -> Result<BTreeMap<String, (u64, Vec<u8>)>> {
    let page = c
        .storage
        .scan(ScanRequest {
            read,
            range: Some(scan_request::Range::Prefix(prefix.to_owned())),
            limit: 1000,
            page_token: String::new(),
            keys_only: false,
        })
        .await
        .with_context(|| format!("scan of {prefix:?} on {}", c.addr))?
        .into_inner();
    ensure!(page.next_page_token.is_empty(), "more than one page");
    Ok(page
        .concepts
        .into_iter()
        .map(|c| (c.id, (c.version, c.content)))
        .collect())
}

/// Outgoing edges of `id` on `c` at `read`: (to, weight), one page.
async fn out_edges(
    c: &mut NodeClient,
    id: &str,
    read: Option<sutra_proto::storage::ReadOptions>,
) -> Result<Vec<(String, f32)>> {
    let page = c
        .storage
        .get_neighbors(NeighborsRequest {
            read,
            id: id.to_owned(),
            direction: Direction::Out as i32,
            relation: None,
            limit: 1000,
            page_token: String::new(),
        })
        .await
        .with_context(|| format!("neighbors of {id:?} on {}", c.addr))?
        .into_inner();
    Ok(page
        .neighbors
        .into_iter()
        .map(|n| (n.id, n.weight))
        .collect())
}

/// Every node's STALE view of `prefix` and of the out-edges of each concept under it,
/// once every node has applied the same index: all nodes must agree, and it is returned.
type View = (
    BTreeMap<String, (u64, Vec<u8>)>,
    BTreeMap<String, Vec<(String, f32)>>,
);
async fn same_on_every_node(cluster: &Cluster, prefix: &str) -> Result<View> {
    wait_all_applied(cluster).await?;
    let mut views = Vec::new();
    for id in cluster.ids() {
        let mut c = cluster.client(id, ClientRole::Reader)?;
        let concepts = scan_page(&mut c, prefix, stale()).await?;
        let mut edges = BTreeMap::new();
        for k in concepts.keys() {
            edges.insert(k.clone(), out_edges(&mut c, k, stale()).await?);
        }
        views.push((id, (concepts, edges)));
    }
    let (first_id, first) = views[0].clone();
    for (id, view) in &views[1..] {
        ensure!(
            *view == first,
            "node {id} and node {first_id} differ at the same applied index: {view:?} vs {first:?}"
        );
    }
    Ok(first)
}

/// A put with a wrong `expected_version`, and one with 0 ("must not exist") on an
/// existing concept, fail with FAILED_PRECONDITION and change nothing; a delete with a
/// wrong version too. The right version succeeds, as does 0 on an absent concept. A
/// failed CAS retried with its `(client, sequence)` after the condition came true is
/// still answered with the stored FAILED_PRECONDITION (the proto's session-table rule),
/// not applied. Every node holds the same afterwards.
///
/// Why: CAS is how clients build read-modify-write; a failed condition that still wrote
/// would lose updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t120_cas_conflict_changes_nothing() -> Result<()> {
    init_tracing();
    within("t120 cas", Duration::from_secs(50), cas_conflict()).await
}

async fn cas_conflict() -> Result<()> {
    tracing::info!("--- start three nodes; put t120/k");
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader(BUDGET).await?;
    let mut w = cluster.client(leader, ClientRole::Writer)?;
    let history = History::new();
    let c = "t120-cas";
    let req = put(c, 1, "t120/k", b"one", None);
    let v1 = recorded_put(&history, &req, w.storage.put_concept(req.clone()))
        .await?
        .version;

    tracing::info!("--- wrong version, 0 on an existing concept, wrong delete: all refused");
    let req = put(c, 2, "t120/k", b"wrong", Some(v1 + 100));
    let wrong = recorded_put(&history, &req, w.storage.put_concept(req.clone()))
        .await
        .expect_err("a wrong expected_version must fail");
    assert_eq!(wrong.code(), Code::FailedPrecondition, "{wrong:?}");
    let req = put(c, 3, "t120/k", b"zero", Some(0));
    let exists = recorded_put(&history, &req, w.storage.put_concept(req.clone()))
        .await
        .expect_err("expected_version 0 on an existing concept must fail");
    assert_eq!(exists.code(), Code::FailedPrecondition, "{exists:?}");
    let req = DeleteConceptRequest {
        header: header(c, 4),
        id: "t120/k".into(),
        expected_version: Some(v1 + 1),
    };
    let del = recorded_delete(&history, &req, w.storage.delete_concept(req.clone()))
        .await
        .expect_err("a delete with a wrong version must fail");
    assert_eq!(del.code(), Code::FailedPrecondition, "{del:?}");
    let (concepts, _) = same_on_every_node(&cluster, "t120/").await?;
    assert_eq!(
        concepts.get("t120/k"),
        Some(&(v1, b"one".to_vec())),
        "{concepts:?}"
    );
    assert_eq!(concepts.len(), 1, "{concepts:?}");

    tracing::info!("--- the right version and 0 on an absent concept succeed");
    let req = put(c, 5, "t120/k", b"two", Some(v1));
    let v2 = recorded_put(&history, &req, w.storage.put_concept(req.clone()))
        .await?
        .version;
    assert!(v2 > v1);
    let req = put(c, 6, "t120/fresh", b"new", Some(0));
    let fresh = recorded_put(&history, &req, w.storage.put_concept(req.clone())).await?;

    tracing::info!(
        "--- a failed CAS whose condition now holds, retried with its sequence: still refused"
    );
    // "Must not exist" on a concept that exists: refused now, true once it is deleted.
    let gone = put(c, 7, "t120/fresh", b"again", Some(0));
    let refused = recorded_put(&history, &gone, w.storage.put_concept(gone.clone()))
        .await
        .expect_err("t120/fresh exists");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let other = "t120-cas-other";
    let req = DeleteConceptRequest {
        header: header(other, 1),
        id: "t120/fresh".into(),
        expected_version: Some(fresh.version),
    };
    recorded_delete(&history, &req, w.storage.delete_concept(req.clone())).await?;
    // The same request as the refused one, answered from the session table: the same
    // operation in the history, not a new one.
    let retried = w
        .storage
        .put_concept(gone)
        .await
        .expect_err("a retry is answered from the session table");
    assert_eq!(retried.code(), Code::FailedPrecondition, "{retried:?}");

    let (concepts, _) = same_on_every_node(&cluster, "t120/").await?;
    assert_eq!(
        concepts.get("t120/k"),
        Some(&(v2, b"two".to_vec())),
        "{concepts:?}"
    );
    assert!(
        !concepts.contains_key("t120/fresh"),
        "the retried CAS was applied: {concepts:?}"
    );
    check_final_scan(&cluster, &history, "t120/").await?;

    cluster.finish();
    Ok(())
}

/// Batches that fail (a CheckVersionOp with a wrong version as the last op, a CAS put
/// with 0 on an existing concept, an edge to a missing concept, a check after a delete)
/// fail with FAILED_PRECONDITION naming the op, and apply none of their ops: every
/// node, at the same applied index, holds exactly what it held before. A batch whose
/// checks hold applies everything, every concept at the batch's version.
///
/// Why: "all or nothing" is the batch's whole point; a partially applied batch is
/// worse than no batch API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t120_failing_batch_applies_nothing() -> Result<()> {
    init_tracing();
    within("t120 batch", Duration::from_secs(50), failing_batches()).await
}

async fn failing_batches() -> Result<()> {
    tracing::info!("--- start three nodes; put the base concept");
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader(BUDGET).await?;
    let follower = cluster
        .ids()
        .into_iter()
        .find(|&id| id != leader)
        .context("a follower")?;
    let mut w = cluster.client(leader, ClientRole::Writer)?;
    let history = History::new();
    let c = "t120-batch";
    let base = "t120/b/base";
    let req = put(c, 1, base, b"base", None);
    let vb = recorded_put(&history, &req, w.storage.put_concept(req.clone()))
        .await?
        .version;
    let before = same_on_every_node(&cluster, "t120/b/").await?;

    let x1 = "t120/b/x1";
    let x2 = "t120/b/x2";
    let failing: Vec<(&str, Vec<WriteOp>, &str)> = vec![
        (
            "a wrong CheckVersionOp last",
            vec![
                put_op(x1, b"x1 (wrong check)", None),
                put_op(x2, b"x2 (wrong check)", None),
                edge_op(x1, base, 1.0),
                edge_op(base, x2, 2.0),
                check_op(base, vb + 999),
            ],
            "ops[4]",
        ),
        (
            "a CAS put with 0 on an existing concept",
            vec![
                put_op(x1, b"x1 (CAS 0)", None),
                edge_op(x1, base, 1.0),
                put_op(base, b"replaced", Some(0)),
            ],
            "ops[2]",
        ),
        (
            "an edge to a missing concept",
            vec![
                put_op(x1, b"x1 (missing edge end)", None),
                edge_op(base, x1, 1.0),
                edge_op(x1, "t120/b/missing", 1.0),
            ],
            "ops[2]",
        ),
        (
            "a check failing after a delete",
            vec![
                delete_op(base),
                put_op(x1, b"x1 (check after delete)", None),
                check_op(x1, 12_345),
            ],
            "ops[2]",
        ),
    ];
    for (i, (what, ops, names)) in failing.into_iter().enumerate() {
        // Alternate between the leader and a follower (which relays the batch).
        let via = if i % 2 == 0 { leader } else { follower };
        tracing::info!(via, "--- a batch with {what} fails whole");
        let req = BatchRequest {
            header: header(c, 2 + i as u64),
            ops,
        };
        let mut to = cluster.client(via, ClientRole::Writer)?;
        let err = recorded_batch(&history, &req, to.storage.batch(req.clone()))
            .await
            .expect_err(what);
        assert_eq!(err.code(), Code::FailedPrecondition, "{what}: {err:?}");
        assert!(err.message().contains(names), "{what}: {err:?}");
        let after = same_on_every_node(&cluster, "t120/b/").await?;
        assert_eq!(after, before, "{what}: the failed batch changed something");
    }

    tracing::info!("--- a batch whose check holds applies every op");
    let req = BatchRequest {
        header: header(c, 10),
        ops: vec![
            check_op(base, vb),
            put_op(x1, b"x1", None),
            put_op(x2, b"x2", Some(0)),
            edge_op(x1, base, 1.0),
            edge_op(base, x2, 2.0),
        ],
    };
    let ok = recorded_batch(&history, &req, w.storage.batch(req.clone())).await?;
    let v = ok.write.context("write")?.version;
    let (concepts, edges) = same_on_every_node(&cluster, "t120/b/").await?;
    assert_eq!(concepts.get(base), Some(&(vb, b"base".to_vec())));
    assert_eq!(concepts.get(x1), Some(&(v, b"x1".to_vec())));
    assert_eq!(concepts.get(x2), Some(&(v, b"x2".to_vec())));
    assert_eq!(edges.get(x1), Some(&vec![(base.to_owned(), 1.0)]));
    assert_eq!(edges.get(base), Some(&vec![(x2.to_owned(), 2.0)]));
    check_final_scan(&cluster, &history, "t120/b/").await?;

    cluster.finish();
    Ok(())
}

/// Number of batches, and concepts each batch rewrites.
const BATCHES: u64 = 300;
const KEYS: usize = 5;
const HUB: &str = "t120/hub";
const MAX_SCANS_PER_SCANNER: usize = 20_000;

/// A writer applies a few hundred batches in a row; batch `i` rewrites the concepts
/// `t120/atom/k0..k4` with content `i` and the edges `hub -> k0..k4` with weight `i`.
/// Meanwhile a scanner per follower reads, at STALE on that follower, the five concepts
/// in one scan and the hub's edges in one neighbours call. Every answer must be whole:
/// all five concepts at one version with one content (or none, before the first batch),
/// all five edges with one weight (or none); and a scanner never sees an older batch
/// after a newer one. The scanners must have seen many different batches.
///
/// Why: a follower applies a batch's records one by one; a reader must not slip
/// between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t120_batch_is_seen_whole_on_followers() -> Result<()> {
    init_tracing();
    within("t120 atomic", Duration::from_secs(55), batch_seen_whole()).await
}

async fn batch_seen_whole() -> Result<()> {
    tracing::info!("--- start three nodes; put the hub");
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader(BUDGET).await?;
    let mut w = cluster.client(leader, ClientRole::Writer)?;
    let history = History::new();
    let c = "t120-atom";
    let req = put(c, 1, HUB, b"hub", None);
    recorded_put(&history, &req, w.storage.put_concept(req.clone())).await?;
    let keys: Vec<String> = (0..KEYS).map(|k| format!("t120/atom/k{k}")).collect();

    tracing::info!(
        BATCHES,
        "--- batches on the leader, STALE scanners on both followers"
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mut scanners = tokio::task::JoinSet::new();
    for f in cluster.ids().into_iter().filter(|&id| id != leader) {
        let client = cluster.client(f, ClientRole::Reader)?;
        scanners.spawn(scan_loop(f, client, stop.clone()));
    }
    let writes = async {
        for i in 1..=BATCHES {
            let content = i.to_string().into_bytes();
            let mut ops: Vec<WriteOp> = keys.iter().map(|k| put_op(k, &content, None)).collect();
            ops.extend(keys.iter().map(|k| edge_op(HUB, k, i as f32)));
            let req = BatchRequest {
                header: header(c, 1 + i),
                ops,
            };
            recorded_batch(&history, &req, w.storage.batch(req.clone()))
                .await
                .with_context(|| format!("batch {i}"))?;
        }
        anyhow::Ok(())
    };
    let written = writes.await;
    stop.store(true, Ordering::Relaxed);
    let mut seen = Vec::new();
    while let Some(r) = scanners.join_next().await {
        seen.push(r??);
    }
    written?;

    tracing::info!(?seen, "--- every scanner saw whole batches only");
    for (node, scans, distinct) in &seen {
        ensure!(
            *distinct >= 10,
            "scanner on node {node} saw only {distinct} different batches in {scans} reads: too few to judge"
        );
    }
    let (concepts, _) = same_on_every_node(&cluster, "t120/atom/").await?;
    let last = BATCHES.to_string().into_bytes();
    ensure!(
        concepts.len() == KEYS && concepts.values().all(|(_, c)| *c == last),
        "{concepts:?}"
    );
    let hub_edges = out_edges(
        &mut cluster.client(leader, ClientRole::Reader)?,
        HUB,
        linearizable(),
    )
    .await?;
    ensure!(
        hub_edges.len() == KEYS && hub_edges.iter().all(|(_, wt)| *wt == BATCHES as f32),
        "{hub_edges:?}"
    );
    check_final_scan(&cluster, &history, "t120/").await?;

    cluster.finish();
    Ok(())
}

/// Reads the batch's concepts and the hub's edges on `node` at STALE until told to stop;
/// fails at the first partial view. Returns (node, reads, distinct batches seen).
async fn scan_loop(
    node: u64,
    mut c: NodeClient,
    stop: Arc<AtomicBool>,
) -> Result<(u64, usize, usize)> {
    let mut last_batch = 0u64;
    let mut last_weight = 0f32;
    let mut distinct = std::collections::BTreeSet::new();
    let mut reads = 0;
    for _ in 0..MAX_SCANS_PER_SCANNER {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let concepts = scan_page(&mut c, "t120/atom/", stale()).await?;
        reads += 1;
        if !concepts.is_empty() {
            let versions: std::collections::BTreeSet<u64> =
                concepts.values().map(|(v, _)| *v).collect();
            let contents: std::collections::BTreeSet<&Vec<u8>> =
                concepts.values().map(|(_, c)| c).collect();
            if concepts.len() != KEYS || versions.len() != 1 || contents.len() != 1 {
                bail!("node {node} served part of a batch: {concepts:?}");
            }
            let batch: u64 = String::from_utf8_lossy(contents.first().expect("one"))
                .parse()
                .context("content")?;
            ensure!(
                batch >= last_batch,
                "node {node} went back from batch {last_batch} to {batch}"
            );
            last_batch = batch;
            distinct.insert(batch);
        }
        let edges = out_edges(&mut c, HUB, stale()).await?;
        reads += 1;
        if !edges.is_empty() {
            let weights: std::collections::BTreeSet<u32> =
                edges.iter().map(|(_, w)| w.to_bits()).collect();
            if edges.len() != KEYS || weights.len() != 1 {
                bail!("node {node} served part of a batch's edges: {edges:?}");
            }
            let weight = edges[0].1;
            ensure!(
                weight >= last_weight,
                "node {node} went back from edge weight {last_weight} to {weight}"
            );
            last_weight = weight;
        }
    }
    Ok((node, reads, distinct.len()))
}

/// Four writers increment one counter by read (LINEARIZABLE) then CAS on the version
/// read, each through a different node (followers relay), retrying on
/// FAILED_PRECONDITION. At the end the counter equals the number of successful CAS
/// writes, each success wrote a distinct value, and every node agrees.
///
/// Why: lost updates under contention are the failure CAS exists to prevent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t120_concurrent_cas_increments_lose_nothing() -> Result<()> {
    init_tracing();
    within("t120 increments", Duration::from_secs(55), cas_increments()).await
}

const WRITERS: usize = 4;
const SUCCESSES_PER_WRITER: usize = 25;
const ATTEMPTS_PER_WRITER: usize = 500;
const COUNTER: &str = "t120/counter";

async fn cas_increments() -> Result<()> {
    tracing::info!("--- start three nodes; the counter at 0");
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader(BUDGET).await?;
    let history = Arc::new(History::new());
    let req = put("t120-inc-init", 1, COUNTER, b"0", None);
    let mut init = cluster.client(leader, ClientRole::Writer)?;
    recorded_put(&history, &req, init.storage.put_concept(req.clone())).await?;

    tracing::info!(WRITERS, "--- concurrent read-then-CAS increments");
    let ids = cluster.ids();
    let mut tasks = tokio::task::JoinSet::new();
    for wr in 0..WRITERS {
        let via = ids[wr % ids.len()];
        let reader = cluster.client(via, ClientRole::Reader)?;
        let writer = cluster.client(via, ClientRole::Writer)?;
        tasks.spawn(increment_loop(wr, reader, writer, history.clone()));
    }
    let mut wins: Vec<(u64, u64)> = Vec::new();
    let mut conflicts = 0;
    while let Some(r) = tasks.join_next().await {
        let (w, c) = r??;
        wins.extend(w);
        conflicts += c;
    }
    tracing::info!(successes = wins.len(), conflicts, "increments done");
    ensure!(
        conflicts > 0,
        "no CAS ever conflicted: the test did not contend"
    );

    let (concepts, _) = same_on_every_node(&cluster, COUNTER).await?;
    let (version, content) = concepts.get(COUNTER).context("the counter is gone")?;
    let value = counter_value(content)?;
    assert_eq!(
        value as usize,
        wins.len(),
        "the counter is {value} after {} successful increments",
        wins.len()
    );
    let mut values: Vec<u64> = wins.iter().map(|(v, _)| *v).collect();
    values.sort_unstable();
    assert_eq!(values, (1..=wins.len() as u64).collect::<Vec<_>>());
    let last_version = wins.iter().map(|(_, v)| *v).max().unwrap_or(0);
    assert_eq!(*version, last_version);
    check_final_scan(&cluster, &history, COUNTER).await?;

    cluster.finish();
    Ok(())
}

/// The counter's value: the first word of its content (`"<n> by <client> seq <s>"`, so
/// that every write's content is its own, as the checker needs).
fn counter_value(content: &[u8]) -> Result<u64> {
    let text = String::from_utf8_lossy(content);
    let n = text.split_whitespace().next().unwrap_or_default();
    n.parse()
        .with_context(|| format!("counter content {text:?}"))
}

/// One increment writer: returns its successes as (value written, version) and its
/// conflicts. Its reads and compare-and-sets go into `history`.
async fn increment_loop(
    wr: usize,
    mut reader: NodeClient,
    mut writer: NodeClient,
    history: Arc<History>,
) -> Result<(Vec<(u64, u64)>, usize)> {
    let client_id = format!("t120-inc-{wr}");
    let mut wins = Vec::new();
    let mut conflicts = 0;
    for seq in 1..=ATTEMPTS_PER_WRITER as u64 {
        if wins.len() >= SUCCESSES_PER_WRITER {
            break;
        }
        let read = GetConceptRequest {
            read: linearizable(),
            id: COUNTER.into(),
        };
        let got = recorded_get(
            &history,
            &client_id,
            COUNTER,
            reader.storage.get_concept(read),
        )
        .await
        .context("reading the counter")?
        .concept
        .context("the counter is gone")?;
        let value = counter_value(&got.content)?;
        let next = format!("{} by {client_id} seq {seq}", value + 1).into_bytes();
        // Expects the value just read: the history knows it at `got.version`.
        let req = put(&client_id, seq, COUNTER, &next, Some(got.version));
        match recorded_put(&history, &req, writer.storage.put_concept(req.clone())).await {
            Ok(r) => {
                ensure!(!r.deduplicated, "{r:?}");
                wins.push((value + 1, r.version));
            }
            Err(s) if s.code() == Code::FailedPrecondition => conflicts += 1,
            Err(s) => bail!("writer {wr}: increment failed: {s:?}"),
        }
    }
    ensure!(
        wins.len() >= SUCCESSES_PER_WRITER,
        "writer {wr}: {} successes in {ATTEMPTS_PER_WRITER} attempts",
        wins.len()
    );
    Ok((wins, conflicts))
}
