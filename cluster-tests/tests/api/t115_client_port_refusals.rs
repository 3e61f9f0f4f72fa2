//! t115: what the client API port refuses, beyond t60's HealthCheck, PutConcept and
//! AddLearner checks: writes without a certificate or with another CA's, every write RPC
//! and Flush with the read role, every admin call with the write role, a node
//! certificate used as a client's, and exactly-once sessions bound to the caller.

use std::path::Path;
use std::time::Duration;

use sutra_certs::{CertPaths, Role};
use sutra_cluster_tests::client::{SERVER_NAME, channel, linearizable};
use sutra_cluster_tests::{ClientRole, Cluster, ClusterOptions, NodeClient, init_tracing, within};
use sutra_proto::cluster::{
    AddLearnerRequest, ChangeMembershipRequest, ClusterStatusRequest, RemoveNodeRequest,
    TransferLeaderRequest, TriggerSnapshotRequest,
};
use sutra_proto::storage::{
    BatchRequest, Concept, DeleteConceptRequest, DeleteEdgeRequest, Edge, FlushRequest,
    GetConceptRequest, GetStatsRequest, HealthCheckRequest, PutConceptOp, PutConceptRequest,
    PutEdgeRequest, WriteHeader, WriteOp, WriteResponse, write_op,
};
use tonic::{Code, Status};

/// How long one refused call may take to be refused.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

fn header(client_id: &str, sequence: u64) -> Option<WriteHeader> {
    Some(WriteHeader {
        client_id: client_id.into(),
        sequence,
    })
}

fn put(client_id: &str, sequence: u64, id: &str) -> PutConceptRequest {
    PutConceptRequest {
        header: header(client_id, sequence),
        concept: Some(Concept {
            id: id.into(),
            content: id.as_bytes().to_vec(),
            ..Concept::default()
        }),
        expected_version: None,
    }
}

/// A client of `addr` trusting `ca` and presenting `cert` (none: no certificate).
fn client_with(addr: &str, ca: &Path, cert: Option<&CertPaths>) -> anyhow::Result<NodeClient> {
    let ca_pem = std::fs::read_to_string(ca)?;
    let mut tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca_pem))
        .domain_name(SERVER_NAME);
    if let Some(c) = cert {
        tls = tls.identity(tonic::transport::Identity::from_pem(
            std::fs::read_to_string(&c.cert)?,
            std::fs::read_to_string(&c.key)?,
        ));
    }
    Ok(NodeClient::new(addr, channel(addr, tls)?))
}

/// Every write RPC and Flush, each with a request that would be valid and would change
/// something.
async fn writes_and_flush(
    c: &mut NodeClient,
    tag: &str,
) -> Vec<(&'static str, Result<(), Status>)> {
    let id = format!("t115/{tag}");
    let s = &mut c.storage;
    let mut out = Vec::new();
    out.push((
        "PutConcept",
        s.put_concept(put(tag, 1, &id)).await.map(drop),
    ));
    out.push((
        "DeleteConcept",
        s.delete_concept(DeleteConceptRequest {
            header: header(tag, 2),
            id: "t115/base".into(),
            expected_version: None,
        })
        .await
        .map(drop),
    ));
    out.push((
        "PutEdge",
        s.put_edge(PutEdgeRequest {
            header: header(tag, 3),
            edge: Some(Edge {
                from: "t115/base".into(),
                to: "t115/base".into(),
                relation: tag.into(),
                weight: 1.0,
            }),
        })
        .await
        .map(drop),
    ));
    out.push((
        "DeleteEdge",
        s.delete_edge(DeleteEdgeRequest {
            header: header(tag, 4),
            from: "t115/base".into(),
            to: "t115/base".into(),
            relation: "self".into(),
        })
        .await
        .map(drop),
    ));
    out.push((
        "Batch",
        s.batch(BatchRequest {
            header: header(tag, 5),
            ops: vec![WriteOp {
                op: Some(write_op::Op::PutConcept(PutConceptOp {
                    concept: Some(Concept {
                        id: format!("{id}-batch"),
                        ..Concept::default()
                    }),
                    expected_version: None,
                })),
            }],
        })
        .await
        .map(drop),
    ));
    out.push(("Flush", s.flush(FlushRequest {}).await.map(drop)));
    out
}

/// Every ClusterService call that needs admin, each with a request that would be valid
/// (and, but for the membership ones, harmless).
async fn admin_calls(c: &mut NodeClient) -> Vec<(&'static str, Result<(), Status>)> {
    let k = &mut c.cluster;
    vec![
        (
            "AddLearner",
            k.add_learner(AddLearnerRequest {
                node_id: 9,
                raft_addr: "127.0.0.1:1".into(),
                api_addr: "127.0.0.1:2".into(),
                wait_caught_up: false,
            })
            .await
            .map(drop),
        ),
        (
            "ChangeMembership",
            k.change_membership(ChangeMembershipRequest {
                voters: vec![1],
                retain_removed_as_learners: false,
            })
            .await
            .map(drop),
        ),
        (
            "RemoveNode",
            k.remove_node(RemoveNodeRequest { node_id: 3 })
                .await
                .map(drop),
        ),
        (
            "TransferLeader",
            k.transfer_leader(TransferLeaderRequest {
                target_node_id: None,
            })
            .await
            .map(drop),
        ),
        (
            "TriggerSnapshot",
            k.trigger_snapshot(TriggerSnapshotRequest {})
                .await
                .map(drop),
        ),
    ]
}

fn assert_denied(who: &str, results: Vec<(&'static str, Result<(), Status>)>) {
    for (rpc, r) in results {
        match r {
            Err(s) if s.code() == Code::PermissionDenied => {
                tracing::info!(who, rpc, message = %s.message(), "permission denied")
            }
            other => panic!("{who}: {rpc}: expected PERMISSION_DENIED, got {other:?}"),
        }
    }
}

/// The call must fail in the transport (the TLS handshake refused), not be answered by a
/// service.
fn assert_refused_by_tls(what: &str, r: Result<(), Status>) {
    match r {
        Ok(()) => panic!("{what}: the call was served"),
        Err(s) => {
            tracing::info!(what, code = ?s.code(), message = %s.message(), "refused");
            assert!(
                matches!(
                    s.code(),
                    Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Internal
                ),
                "{what}: expected a transport failure (TLS handshake refused), got {s:?}"
            );
        }
    }
}

async fn timed<T>(
    f: impl std::future::Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<(), Status> {
    match tokio::time::timeout(CALL_TIMEOUT, f).await {
        Ok(r) => r.map(drop),
        Err(_) => Err(Status::deadline_exceeded("no answer")),
    }
}

/// Per node: Raft log index, applied index, concepts, edges, writes applied.
async fn footprint(cluster: &Cluster) -> anyhow::Result<Vec<(u64, u64, u64, u64, u64)>> {
    let mut out = Vec::new();
    for id in cluster.ids() {
        let st = cluster.status(id).await?;
        let stats = cluster
            .client(id, ClientRole::Reader)?
            .storage
            .get_stats(GetStatsRequest::default())
            .await?
            .into_inner();
        out.push((
            st.last_log_index,
            st.applied_index,
            stats.concepts,
            stats.edges,
            stats.written,
        ));
    }
    Ok(out)
}

async fn get(c: &mut NodeClient, id: &str) -> anyhow::Result<Option<Concept>> {
    Ok(c.storage
        .get_concept(GetConceptRequest {
            read: linearizable(),
            id: id.into(),
        })
        .await?
        .into_inner()
        .concept)
}

/// (a) Without a client certificate, or with a write certificate of another CA, a
/// PutConcept and a Batch never reach the service (refused at the TLS handshake) and
/// write nothing. (b) With the read role every write RPC and Flush, and with the write
/// role every admin ClusterService call and Flush, are PERMISSION_DENIED on the leader
/// and on a follower, and the cluster is unchanged (no log entry, no count moved, no
/// snapshot taken). (c) A node's certificate presented on the client port may read and
/// write (a node relays client requests) but gets PERMISSION_DENIED on admin calls and
/// Flush; a node certificate of another CA is refused at the handshake. (d) Two writers
/// with different certificates using the same client id and sequence each get their
/// write applied; each one's retry, through another node, is answered from its own
/// session with its own version; and an admin may Flush.
///
/// Why: roles are the only access control clients have, and the exactly-once session is
/// the caller's: another certificate must not be able to swallow or replay its writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t115_client_port_refusals() -> anyhow::Result<()> {
    init_tracing();
    within("t115", Duration::from_secs(100), run()).await
}

async fn run() -> anyhow::Result<()> {
    tracing::info!("--- start three nodes; a second writer certificate; a foreign CA");
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let certs = cluster.certs_dir().to_owned();
    let writer2 = sutra_certs::issue_client_cert(&certs, "writer2", Role::Write, false)?;
    let foreign_dir = cluster.dir().join("foreign-certs");
    sutra_certs::generate_dev_set(&foreign_dir, &[1], &[], &[("writer", Role::Write)], false)?;
    let foreign_writer = CertPaths::client(&foreign_dir, "writer");
    let foreign_node = CertPaths::node(&foreign_dir, 1);
    let ca = CertPaths::ca(&certs).cert;
    let leader = cluster.leader(Duration::from_secs(15)).await?;
    let followers: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|&id| id != leader)
        .collect();
    let follower = followers[0];
    let leader_addr = cluster.node(leader)?.api_addr.clone();

    {
        let mut w = cluster.client(leader, ClientRole::Writer)?;
        w.storage
            .put_concept(put("t115-base", 1, "t115/base"))
            .await?;
    }
    let base_index = cluster.status(leader).await?.applied_index;
    for id in cluster.ids() {
        cluster
            .wait_applied(id, base_index, Duration::from_secs(10))
            .await?;
    }
    let before = footprint(&cluster).await?;

    tracing::info!(
        "--- (a) no certificate, another CA's write certificate: refused at the handshake"
    );
    for (what, cert) in [
        ("no certificate", None),
        ("foreign write certificate", Some(&foreign_writer)),
    ] {
        let mut c = client_with(&leader_addr, &ca, cert)?;
        assert_refused_by_tls(
            &format!("PutConcept, {what}"),
            timed(c.storage.put_concept(put("t115-anon", 1, "t115/anon"))).await,
        );
        assert_refused_by_tls(
            &format!("Batch, {what}"),
            timed(c.storage.batch(BatchRequest {
                header: header("t115-anon", 2),
                ops: vec![WriteOp {
                    op: Some(write_op::Op::PutConcept(PutConceptOp {
                        concept: Some(Concept {
                            id: "t115/anon2".into(),
                            ..Concept::default()
                        }),
                        expected_version: None,
                    })),
                }],
            }))
            .await,
        );
        assert_refused_by_tls(
            &format!("Flush, {what}"),
            timed(c.storage.flush(FlushRequest {})).await,
        );
    }

    tracing::info!(
        "--- (b) read role: every write and Flush; write role: every admin call and Flush"
    );
    for node in [leader, follower] {
        let mut reader = cluster.client(node, ClientRole::Reader)?;
        assert_denied(
            &format!("reader on node {node}"),
            writes_and_flush(&mut reader, "t115-reader").await,
        );
        assert_denied(
            &format!("reader on node {node}"),
            admin_calls(&mut reader).await,
        );
        let mut writer = cluster.client(node, ClientRole::Writer)?;
        assert_denied(
            &format!("writer on node {node}"),
            admin_calls(&mut writer).await,
        );
        assert_denied(
            &format!("writer on node {node}"),
            vec![(
                "Flush",
                writer.storage.flush(FlushRequest {}).await.map(drop),
            )],
        );
        // Reads and status stay open to the read role.
        reader
            .cluster
            .status(ClusterStatusRequest {})
            .await
            .map_err(|s| anyhow::anyhow!("reader Status on node {node}: {s:?}"))?;
        reader
            .storage
            .health_check(HealthCheckRequest {})
            .await
            .map_err(|s| anyhow::anyhow!("reader HealthCheck on node {node}: {s:?}"))?;
    }
    let after = footprint(&cluster).await?;
    assert_eq!(before, after, "a refused call changed the cluster");
    {
        let mut r = cluster.client(leader, ClientRole::Reader)?;
        for id in [
            "t115/anon",
            "t115/anon2",
            "t115/t115-reader",
            "t115/t115-reader-batch",
        ] {
            assert!(
                get(&mut r, id).await?.is_none(),
                "{id} was written by a refused call"
            );
        }
        assert!(
            get(&mut r, "t115/base").await?.is_some(),
            "t115/base was deleted"
        );
        let status = cluster.status(leader).await?;
        assert_eq!(
            status.snapshot_index, 0,
            "a refused Flush took a snapshot: {status:?}"
        );
    }

    tracing::info!("--- (c) a node certificate on the client port: reads and writes, no admin");
    {
        let node2 = CertPaths::node(&certs, followers[1]);
        let mut n = client_with(&leader_addr, &ca, Some(&node2))?;
        n.storage
            .health_check(HealthCheckRequest {})
            .await
            .map_err(|s| anyhow::anyhow!("node certificate HealthCheck: {s:?}"))?;
        let w = n
            .storage
            .put_concept(put("t115-node", 1, "t115/by-node"))
            .await
            .map_err(|s| anyhow::anyhow!("node certificate PutConcept: {s:?}"))?
            .into_inner();
        assert!(!w.deduplicated, "{w:?}");
        assert!(get(&mut n, "t115/by-node").await?.is_some());
        assert_denied("node certificate", admin_calls(&mut n).await);
        assert_denied(
            "node certificate",
            vec![("Flush", n.storage.flush(FlushRequest {}).await.map(drop))],
        );
        let mut foreign = client_with(&leader_addr, &ca, Some(&foreign_node))?;
        assert_refused_by_tls(
            "PutConcept, foreign node certificate",
            timed(
                foreign
                    .storage
                    .put_concept(put("t115-fnode", 1, "t115/by-foreign-node")),
            )
            .await,
        );
        let mut r = cluster.client(leader, ClientRole::Reader)?;
        assert!(get(&mut r, "t115/by-foreign-node").await?.is_none());
    }

    tracing::info!("--- (d) two certificates, one client id and sequence: two sessions");
    {
        let mut w1 = cluster.client(leader, ClientRole::Writer)?;
        let mut w2 = client_with(&leader_addr, &ca, Some(&writer2))?;
        let a: WriteResponse = w1
            .storage
            .put_concept(put("shared", 1, "t115/from-writer"))
            .await?
            .into_inner();
        let b: WriteResponse = w2
            .storage
            .put_concept(put("shared", 1, "t115/from-writer2"))
            .await?
            .into_inner();
        assert!(!a.deduplicated, "writer's write was deduplicated: {a:?}");
        assert!(
            !b.deduplicated,
            "writer2's write was answered from writer's session: {b:?}"
        );
        assert_ne!(a.version, b.version, "{a:?} {b:?}");
        let mut r = cluster.client(leader, ClientRole::Reader)?;
        for id in ["t115/from-writer", "t115/from-writer2"] {
            assert!(get(&mut r, id).await?.is_some(), "{id} was not applied");
        }

        tracing::info!("--- each one's retry through a follower is answered from its own session");
        let follower_addr = cluster.node(follower)?.api_addr.clone();
        let mut w1f = cluster.client(follower, ClientRole::Writer)?;
        let mut w2f = client_with(&follower_addr, &ca, Some(&writer2))?;
        let a2 = w1f
            .storage
            .put_concept(put("shared", 1, "t115/from-writer"))
            .await?
            .into_inner();
        let b2 = w2f
            .storage
            .put_concept(put("shared", 1, "t115/from-writer2"))
            .await?
            .into_inner();
        assert!(
            a2.deduplicated && a2.version == a.version,
            "{a2:?} vs {a:?}"
        );
        assert!(
            b2.deduplicated && b2.version == b.version,
            "{b2:?} vs {b:?}"
        );

        tracing::info!("--- a higher sequence of one writer does not make the other's stale");
        w1.storage
            .put_concept(put("shared", 10, "t115/from-writer-10"))
            .await?;
        let b3 = w2
            .storage
            .put_concept(put("shared", 2, "t115/from-writer2-2"))
            .await?
            .into_inner();
        assert!(!b3.deduplicated, "{b3:?}");
        let stale = w1
            .storage
            .put_concept(put("shared", 2, "t115/from-writer-2"))
            .await;
        match stale {
            Err(s) if s.code() == Code::FailedPrecondition => {
                assert!(
                    s.message().contains("\"shared\"") && !s.message().contains("writer/"),
                    "the stale-sequence answer names the client id as the client sent it: {}",
                    s.message()
                );
            }
            other => {
                panic!("writer's sequence 2 after 10: expected FAILED_PRECONDITION, got {other:?}")
            }
        }
    }

    tracing::info!("--- an admin may Flush");
    let mut admin = cluster.client(leader, ClientRole::Admin)?;
    let flushed = admin.storage.flush(FlushRequest {}).await?.into_inner();
    assert!(flushed.checkpoint_index > base_index, "{flushed:?}");

    cluster.finish();
    Ok(())
}
