//! t105: a write retried with its `(client_id, sequence)` is answered from the session
//! table and never applied twice: through every node, across a leader kill, across a
//! whole-cluster restart (with and without a `Flush` that purges the log), with changed
//! content; and an older sequence is refused. Every test records its writes and
//! LINEARIZABLE reads (a retry is the same operation as the request it repeats; a retry
//! with other content is a write that did not apply) and ends with `sutra-checker`: the
//! nodes hold every acknowledged write once, nothing else, and the history is
//! linearizable.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use sutra_checker::{History, OpKind, Outcome, Value};
use sutra_cluster_tests::client::{linearizable, session};
use sutra_cluster_tests::history::{recorded_batch, recorded_get, recorded_put};
use sutra_cluster_tests::{
    ClientRole, Cluster, ClusterOptions, check_final_scan, init_tracing, within,
};
use sutra_proto::storage::{
    BatchRequest, BatchResponse, Concept, Edge, FlushRequest, GetConceptRequest,
    GetConceptResponse, GetStatsRequest, PutConceptOp, PutConceptRequest, PutEdgeOp, WriteHeader,
    WriteOp, WriteResponse, write_op,
};

const BUDGET: Duration = Duration::from_secs(20);

fn header(client_id: &str, sequence: u64) -> Option<WriteHeader> {
    Some(WriteHeader {
        client_id: client_id.to_owned(),
        sequence,
    })
}

fn put(client_id: &str, sequence: u64, id: &str, content: &[u8]) -> PutConceptRequest {
    PutConceptRequest {
        header: header(client_id, sequence),
        concept: Some(Concept {
            id: id.to_owned(),
            content: content.to_vec(),
            ..Concept::default()
        }),
        expected_version: None,
    }
}

/// A batch putting `<prefix>a` and `<prefix>b` and an edge a -> b.
fn batch(client_id: &str, sequence: u64, prefix: &str) -> BatchRequest {
    let put = |id: String| WriteOp {
        op: Some(write_op::Op::PutConcept(PutConceptOp {
            concept: Some(Concept {
                id,
                content: b"batched".to_vec(),
                ..Concept::default()
            }),
            expected_version: None,
        })),
    };
    BatchRequest {
        header: header(client_id, sequence),
        ops: vec![
            put(format!("{prefix}a")),
            put(format!("{prefix}b")),
            WriteOp {
                op: Some(write_op::Op::PutEdge(PutEdgeOp {
                    edge: Some(Edge {
                        from: format!("{prefix}a"),
                        to: format!("{prefix}b"),
                        relation: "next".into(),
                        weight: 1.0,
                    }),
                })),
            },
        ],
    }
}

/// `PutConcept` on the leader, looked up again while the answer is UNAVAILABLE.
async fn put_on_leader(cluster: &Cluster, req: &PutConceptRequest) -> Result<WriteResponse> {
    cluster
        .call_leader(
            ClientRole::Writer,
            "a put on the leader",
            BUDGET,
            async |mut c| {
                c.storage
                    .put_concept(req.clone())
                    .await
                    .map(|r| r.into_inner())
            },
        )
        .await
}

/// [`put_on_leader`], recorded in `history` as one write: invoked before the first
/// attempt, completed with the answer (retries on UNAVAILABLE are the same operation).
async fn put_recorded(
    cluster: &Cluster,
    history: &History,
    req: &PutConceptRequest,
) -> Result<WriteResponse> {
    let r = recorded_put(history, req, async {
        put_on_leader(cluster, req)
            .await
            .map(tonic::Response::new)
            .map_err(|e| tonic::Status::unknown(format!("{e:#}")))
    })
    .await?;
    Ok(r)
}

/// [`batch_on_leader`], recorded in `history`: the writes of its concepts, one version
/// for all (the edge is not a register).
async fn batch_recorded(
    cluster: &Cluster,
    history: &History,
    req: &BatchRequest,
) -> Result<BatchResponse> {
    let r = recorded_batch(history, req, async {
        batch_on_leader(cluster, req)
            .await
            .map(tonic::Response::new)
            .map_err(|e| tonic::Status::unknown(format!("{e:#}")))
    })
    .await?;
    Ok(r)
}

/// [`get_on_leader`], recorded in `history` as a LINEARIZABLE read.
async fn get_recorded(cluster: &Cluster, history: &History, id: &str) -> Result<Option<Concept>> {
    let got = recorded_get(history, "t105-reader", id, async {
        let concept = get_on_leader(cluster, id)
            .await
            .map_err(|e| tonic::Status::unknown(format!("{e:#}")))?;
        Ok(tonic::Response::new(GetConceptResponse {
            concept,
            meta: None,
        }))
    })
    .await?;
    Ok(got.concept)
}

/// `Batch` on the leader, looked up again while the answer is UNAVAILABLE.
async fn batch_on_leader(cluster: &Cluster, req: &BatchRequest) -> Result<BatchResponse> {
    cluster
        .call_leader(
            ClientRole::Writer,
            "a batch on the leader",
            BUDGET,
            async |mut c| c.storage.batch(req.clone()).await.map(|r| r.into_inner()),
        )
        .await
}

/// Concept `id` as the leader serves it LINEARIZABLE.
async fn get_on_leader(cluster: &Cluster, id: &str) -> Result<Option<Concept>> {
    cluster
        .call_leader(
            ClientRole::Reader,
            "a linearizable get on the leader",
            BUDGET,
            async |mut c| {
                c.storage
                    .get_concept(GetConceptRequest {
                        read: linearizable(),
                        id: id.to_owned(),
                    })
                    .await
                    .map(|r| r.into_inner().concept)
            },
        )
        .await
}

/// Node `id`'s `GetStats.written`: writes its state machine applied since it started,
/// deduplicated retries not counted.
async fn written(cluster: &Cluster, id: u64) -> Result<u64> {
    let mut c = cluster.client(id, ClientRole::Reader)?;
    Ok(c.storage
        .get_stats(GetStatsRequest::default())
        .await
        .with_context(|| format!("GetStats on node {id}"))?
        .into_inner()
        .written)
}

/// Waits until every running node has applied the leader's applied index.
async fn wait_all_applied(cluster: &Cluster) -> Result<u64> {
    let leader = cluster.leader(BUDGET).await?;
    let index = cluster.health(leader).await?.applied_index;
    for id in cluster.running_ids() {
        cluster.wait_applied(id, index, BUDGET).await?;
    }
    Ok(index)
}

/// A put whose answer the client "lost" is sent again, identical, to a follower (which
/// relays it) and to the other follower: every answer has the first answer's version,
/// the retries say `deduplicated`, the concept keeps the first version, and every node's
/// state machine counted one applied write (`GetStats.written` up by exactly one), not
/// three, although each retry went through the log.
///
/// Why: this is the client retry after a timeout, the commonest retry there is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t105_lost_answer_retried_through_every_node() -> Result<()> {
    init_tracing();
    within("t105 lost answer", Duration::from_secs(50), lost_answer()).await
}

async fn lost_answer() -> Result<()> {
    tracing::info!("--- start three nodes; note every node's applied-write count");
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader(BUDGET).await?;
    let followers: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|&id| id != leader)
        .collect();
    wait_all_applied(&cluster).await?;
    let mut before = Vec::new();
    for id in cluster.ids() {
        before.push((id, written(&cluster, id).await?));
    }

    tracing::info!(
        leader,
        "--- the write on the leader, then the same request on each follower"
    );
    let history = History::new();
    let req = put("t105-lost", 1, "t105/lost", b"first");
    let mut to_leader = cluster.client(leader, ClientRole::Writer)?;
    let first = recorded_put(&history, &req, to_leader.storage.put_concept(req.clone())).await?;
    ensure!(!first.deduplicated, "{first:?}");
    for &f in &followers {
        let again = cluster
            .client(f, ClientRole::Writer)?
            .storage
            .put_concept(req.clone())
            .await
            .with_context(|| format!("retry through follower {f}"))?
            .into_inner();
        assert!(again.deduplicated, "retry through {f}: {again:?}");
        assert_eq!(again.version, first.version, "retry through {f}: {again:?}");
        assert_eq!(again.served_by, f, "{again:?}");
    }

    tracing::info!("--- the concept has the first version; every node applied one write");
    let got = get_recorded(&cluster, &history, "t105/lost")
        .await?
        .context("the write is gone")?;
    assert_eq!(
        (got.version, got.content.as_slice()),
        (first.version, &b"first"[..])
    );
    wait_all_applied(&cluster).await?;
    for (id, was) in before {
        let now = written(&cluster, id).await?;
        assert_eq!(
            now - was,
            1,
            "node {id} applied {} writes, want 1",
            now - was
        );
    }
    check_final_scan(&cluster, &history, "t105/").await?;

    cluster.finish();
    Ok(())
}

/// A put and a batch (each from its own client: the session table keeps a client's
/// last sequence only) are acknowledged, then the leader is SIGKILLed. Both, sent again
/// to the new leader, are answered `deduplicated` with their first version (the batch
/// with the same per-op results); the concepts keep those versions, and the new leader's
/// applied-write count does not move. The old leader, restarted, holds the same.
///
/// Why: after a failover the retry lands on a node that never answered the original;
/// only a replicated session table can recognise it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t105_retry_after_leader_kill_is_deduplicated() -> Result<()> {
    init_tracing();
    within(
        "t105 failover",
        Duration::from_secs(55),
        after_leader_kill(),
    )
    .await
}

async fn after_leader_kill() -> Result<()> {
    tracing::info!("--- start three nodes; a put and a batch acknowledged");
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let put_req = put("t105-failover-put", 7, "t105/failover", b"once");
    let batch_req = batch("t105-failover-batch", 3, "t105/fb-");
    let history = History::new();
    let first_put = put_recorded(&cluster, &history, &put_req).await?;
    let first_batch = batch_recorded(&cluster, &history, &batch_req).await?;
    let first_batch_write = first_batch.write.context("batch write")?;
    ensure!(!first_put.deduplicated && !first_batch_write.deduplicated);
    wait_all_applied(&cluster).await?;

    let old_leader = cluster.leader(BUDGET).await?;
    tracing::info!(
        old_leader,
        "--- SIGKILL the leader {old_leader}; wait for another"
    );
    let mut before = Vec::new();
    for id in cluster.ids().into_iter().filter(|&id| id != old_leader) {
        before.push((id, written(&cluster, id).await?));
    }
    cluster.kill(old_leader)?;
    let new_leader = cluster.leader(BUDGET).await?;
    ensure!(new_leader != old_leader);

    tracing::info!(
        new_leader,
        "--- both retried on the new leader: deduplicated, same versions"
    );
    let again_put = put_on_leader(&cluster, &put_req).await?;
    assert!(again_put.deduplicated, "{again_put:?}");
    assert_eq!(again_put.version, first_put.version, "{again_put:?}");
    let again_batch = batch_on_leader(&cluster, &batch_req).await?;
    let again_batch_write = again_batch.write.context("batch write")?;
    assert!(again_batch_write.deduplicated, "{again_batch:?}");
    assert_eq!(again_batch_write.version, first_batch_write.version);
    assert_eq!(again_batch.results, first_batch.results);

    tracing::info!("--- nothing applied twice");
    for (id, v) in [
        ("t105/failover", first_put.version),
        ("t105/fb-a", first_batch_write.version),
        ("t105/fb-b", first_batch_write.version),
    ] {
        let got = get_recorded(&cluster, &history, id)
            .await?
            .context("missing")?;
        assert_eq!(got.version, v, "{id}: {got:?}");
    }
    wait_all_applied(&cluster).await?;
    for (id, was) in before {
        let now = written(&cluster, id).await?;
        assert_eq!(now, was, "node {id} applied a retried write again");
    }

    tracing::info!(old_leader, "--- the old leader, restarted, holds the same");
    cluster.restart(old_leader)?;
    let all = cluster
        .read_all(
            old_leader,
            ClientRole::Reader,
            "t105/",
            session(again_batch_write.version),
            BUDGET,
        )
        .await?;
    assert_eq!(
        all.get("t105/failover").map(|c| c.version),
        Some(first_put.version)
    );
    assert_eq!(
        all.get("t105/fb-a").map(|c| c.version),
        Some(first_batch_write.version)
    );
    assert_eq!(all.len(), 3, "{:?}", all.keys());
    check_final_scan(&cluster, &history, "t105/").await?;

    cluster.finish();
    Ok(())
}

/// SIGKILL of every node and a restart: a retry of a write acknowledged before is still
/// deduplicated (the session table rebuilt from the log). Then a `Flush` on every node
/// (checkpoint through a snapshot, log purged behind it), SIGKILL and restart again: both
/// retries are still deduplicated with their first versions, so the table came back from
/// the checkpoint, not from log entries that no longer exist.
///
/// Why: a client may retry minutes later, after the cluster went down and came back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t105_retry_after_whole_cluster_restart_is_deduplicated() -> Result<()> {
    init_tracing();
    within("t105 restart", Duration::from_secs(58), after_restart()).await
}

async fn kill_and_restart_all(cluster: &Cluster) -> Result<u64> {
    for id in cluster.ids() {
        cluster.kill(id)?;
    }
    for id in cluster.ids() {
        cluster.restart(id)?;
    }
    cluster.wait_for_leader(&cluster.ids(), BUDGET).await
}

async fn after_restart() -> Result<()> {
    tracing::info!("--- start three nodes; write A acknowledged");
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let history = History::new();
    let req_a = put("t105-restart-a", 1, "t105/restart-a", b"a");
    let first_a = put_recorded(&cluster, &history, &req_a).await?;
    ensure!(!first_a.deduplicated);

    tracing::info!("--- SIGKILL all three, restart: A retried is deduplicated");
    kill_and_restart_all(&cluster).await?;
    let again_a = put_on_leader(&cluster, &req_a).await?;
    assert!(
        again_a.deduplicated && again_a.version == first_a.version,
        "{again_a:?} vs {first_a:?}"
    );

    tracing::info!("--- write B, Flush every node (checkpoint, log purged)");
    let req_b = put("t105-restart-b", 1, "t105/restart-b", b"b");
    let first_b = put_recorded(&cluster, &history, &req_b).await?;
    ensure!(!first_b.deduplicated);
    wait_all_applied(&cluster).await?;
    for id in cluster.ids() {
        let f = cluster
            .client(id, ClientRole::Admin)?
            .storage
            .flush(FlushRequest {})
            .await
            .with_context(|| format!("Flush on node {id}"))?
            .into_inner();
        assert!(
            f.checkpoint_index + 1 >= first_b.version,
            "node {id}: checkpoint at {} does not cover write B (version {})",
            f.checkpoint_index,
            first_b.version
        );
    }

    // `written` comes back from the checkpoint (the engine keeps the count in it), so
    // after recovery it must equal the count now: nothing was applied again on recovery.
    let mut before = Vec::new();
    for id in cluster.ids() {
        before.push((id, written(&cluster, id).await?));
    }

    tracing::info!("--- SIGKILL all three, restart: A and B retried are deduplicated");
    kill_and_restart_all(&cluster).await?;
    wait_all_applied(&cluster).await?;
    for &(id, was) in &before {
        let now = written(&cluster, id).await?;
        assert_eq!(now, was, "node {id} re-applied writes on recovery");
    }
    let again_b = put_on_leader(&cluster, &req_b).await?;
    assert!(
        again_b.deduplicated && again_b.version == first_b.version,
        "{again_b:?} vs {first_b:?}"
    );
    let again_a = put_on_leader(&cluster, &req_a).await?;
    assert!(
        again_a.deduplicated && again_a.version == first_a.version,
        "{again_a:?} vs {first_a:?}"
    );
    wait_all_applied(&cluster).await?;
    for &(id, was) in &before {
        let now = written(&cluster, id).await?;
        assert_eq!(now, was, "node {id} applied a retry");
    }
    for (id, v) in [
        ("t105/restart-a", first_a.version),
        ("t105/restart-b", first_b.version),
    ] {
        let got = get_recorded(&cluster, &history, id)
            .await?
            .context("missing")?;
        assert_eq!(got.version, v, "{id}: {got:?}");
    }
    check_final_scan(&cluster, &history, "t105/").await?;

    cluster.finish();
    Ok(())
}

/// The same `(client, sequence)` with other content (or even another concept) is
/// answered from the session table: `deduplicated`, the first version, and the new
/// content is not applied. The next sequence applies. An older sequence than the
/// client's last is refused with FAILED_PRECONDITION naming the sequence (proto
/// `WriteHeader`), on the leader and relayed by a follower, and changes nothing.
///
/// Why: the session table is keyed by identity, not content; a client bug that reuses
/// a sequence must not overwrite data, and a delayed old request must not resurrect an
/// old value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t105_reused_and_old_sequences() -> Result<()> {
    init_tracing();
    within("t105 sequences", Duration::from_secs(50), sequences()).await
}

async fn sequences() -> Result<()> {
    tracing::info!("--- start three nodes; write (c, 5)");
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader(BUDGET).await?;
    let follower = cluster
        .ids()
        .into_iter()
        .find(|&id| id != leader)
        .context("a follower")?;
    let mut on_leader = cluster.client(leader, ClientRole::Writer)?;
    let mut on_follower = cluster.client(follower, ClientRole::Writer)?;
    let c = "t105-seq";
    let history = History::new();
    let req = put(c, 5, "t105/x", b"original");
    let first = recorded_put(&history, &req, on_leader.storage.put_concept(req.clone())).await?;
    ensure!(!first.deduplicated);
    // A request answered from the session table for another write: its own content
    // certainly did not apply, so the history has it as a failed write.
    let not_applied = |id: &str, content: &[u8], tag: &str| {
        let value = Value::from(content);
        history.invoke_tagged(c, id, OpKind::Write { value }, tag)
    };

    tracing::info!("--- (c, 5) again with other content, and for another concept: not applied");
    let op = not_applied("t105/x", b"changed", "seq 5 again");
    let changed = on_leader
        .storage
        .put_concept(put(c, 5, "t105/x", b"changed"))
        .await?
        .into_inner();
    history.complete(op, Outcome::Failed)?;
    assert!(
        changed.deduplicated && changed.version == first.version,
        "{changed:?}"
    );
    let op = not_applied("t105/y", b"other", "seq 5 again");
    let other = on_follower
        .storage
        .put_concept(put(c, 5, "t105/y", b"other"))
        .await?
        .into_inner();
    history.complete(op, Outcome::Failed)?;
    assert!(
        other.deduplicated && other.version == first.version,
        "{other:?}"
    );
    let x = get_recorded(&cluster, &history, "t105/x")
        .await?
        .context("x")?;
    assert_eq!(
        (x.content.as_slice(), x.version),
        (&b"original"[..], first.version)
    );
    assert!(
        get_recorded(&cluster, &history, "t105/y").await?.is_none(),
        "t105/y was applied"
    );

    tracing::info!("--- (c, 6) applies");
    let req = put(c, 6, "t105/x", b"six");
    let six = recorded_put(&history, &req, on_leader.storage.put_concept(req.clone())).await?;
    assert!(!six.deduplicated && six.version > first.version, "{six:?}");

    tracing::info!("--- (c, 5) and (c, 1) now are older than the last: refused, nothing changes");
    for (via, client) in [(leader, &mut on_leader), (follower, &mut on_follower)] {
        for seq in [5, 1] {
            // Each attempt with its own content, so the history tells them apart.
            let content = format!("resurrected by seq {seq} via node {via}");
            let req = put(c, seq, "t105/x", content.as_bytes());
            let err = recorded_put(&history, &req, client.storage.put_concept(req.clone()))
                .await
                .expect_err("an older sequence must be refused");
            assert_eq!(
                err.code(),
                tonic::Code::FailedPrecondition,
                "seq {seq} via {via}: {err:?}"
            );
            assert!(
                err.message().contains("sequence"),
                "seq {seq} via {via}: {err:?}"
            );
        }
    }
    let x = get_recorded(&cluster, &history, "t105/x")
        .await?
        .context("x")?;
    assert_eq!(
        (x.content.as_slice(), x.version),
        (&b"six"[..], six.version)
    );

    tracing::info!("--- (c, 6) is still the one remembered");
    let six_again = on_follower
        .storage
        .put_concept(put(c, 6, "t105/x", b"six"))
        .await?
        .into_inner();
    assert!(
        six_again.deduplicated && six_again.version == six.version,
        "{six_again:?}"
    );
    check_final_scan(&cluster, &history, "t105/").await?;

    cluster.finish();
    Ok(())
}
