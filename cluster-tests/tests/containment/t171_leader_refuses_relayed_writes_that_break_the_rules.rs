//! t171: the leader judges every relayed write by the cluster's parameters, whoever
//! relays it.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use sutra_certs::CertPaths;
use sutra_cluster_tests::client::{SERVER_NAME, channel, stale};
use sutra_cluster_tests::{ClientRole, Cluster, ClusterOptions, init_tracing, within};
use sutra_engine::{Concept, SessionKey, WriteBatch, WriteOp};
use sutra_proto::raft::raft_service_client::RaftServiceClient;
use sutra_proto::raft::{ForwardWriteRequest, ForwardWritesRequest};
use sutra_proto::storage::{GetConceptRequest, GetStatsRequest};
use tonic::Code;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

fn pem(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// The peer service at `addr`, called with node `from`'s certificate.
fn peer_client(
    cluster: &Cluster,
    addr: &str,
    from: u64,
) -> anyhow::Result<RaftServiceClient<tonic::transport::Channel>> {
    let node = CertPaths::node(cluster.certs_dir(), from);
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pem(&cluster.certs().ca())?))
        .domain_name(SERVER_NAME)
        .identity(Identity::from_pem(pem(&node.cert)?, pem(&node.key)?));
    Ok(RaftServiceClient::new(channel(addr, tls)?))
}

/// A `ForwardWrite` of `batch` to `addr` as node `from`, of cluster `cluster_id`: what a
/// follower sends its leader, here sent straight by the test.
async fn forward(
    cluster: &Cluster,
    addr: &str,
    from: u64,
    cluster_id: &str,
    batch: WriteBatch,
) -> anyhow::Result<Result<(), tonic::Status>> {
    let mut c = peer_client(cluster, addr, from)?;
    let command = sutra_raft::pb::encode_command(&sutra_raft::Command::new(batch, 0))?;
    let mut request = tonic::Request::new(ForwardWriteRequest { command });
    request
        .metadata_mut()
        .insert(sutra_proto::CLUSTER_ID_METADATA_KEY, cluster_id.parse()?);
    Ok(c.forward_write(request).await.map(|_| ()))
}

/// A `ForwardWrites` of `batches` in one call, as a follower batches what its clients
/// send: each write's own outcome, in order.
async fn forward_many(
    cluster: &Cluster,
    addr: &str,
    from: u64,
    cluster_id: &str,
    batches: Vec<WriteBatch>,
) -> anyhow::Result<Vec<Result<sutra_raft::CommandResponse, tonic::Status>>> {
    let mut c = peer_client(cluster, addr, from)?;
    let commands = batches
        .into_iter()
        .map(|b| sutra_raft::pb::encode_command(&sutra_raft::Command::new(b, 0)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut request = tonic::Request::new(ForwardWritesRequest { commands });
    request
        .metadata_mut()
        .insert(sutra_proto::CLUSTER_ID_METADATA_KEY, cluster_id.parse()?);
    let results = c.forward_writes(request).await?.into_inner().results;
    results
        .into_iter()
        .map(|r| match sutra_raft::pb::forwarded_from_proto(r) {
            Ok(bytes) => Ok(Ok(sutra_raft::pb::decode_response(&bytes)?)),
            Err(status) => Ok(Err(status)),
        })
        .collect()
}

fn put(id: &str, content: Vec<u8>, embedding: Vec<f32>, sequence: u64) -> WriteBatch {
    WriteBatch {
        session: Some(SessionKey {
            client_id: "node:2/t171".into(),
            sequence,
        }),
        ops: vec![WriteOp::PutConcept {
            concept: Concept {
                id: id.into(),
                content,
                embedding,
                ..Concept::default()
            },
            expected_version: None,
        }],
    }
}

/// With a node certificate and the cluster's id, ForwardWrite calls go straight to the
/// leader, bypassing any follower's checks: a put whose embedding has 4 values (the
/// cluster's dimension is 8) and one whose content is over the cluster's 1 MiB limit.
/// The leader refuses both as INVALID_ARGUMENT naming the field, before ordering them:
/// no node applied anything (write counters and content hashes as before, the concepts
/// absent everywhere). A relayed write that keeps the rules is applied (the control).
/// The same three in one `ForwardWrites` batch: each gets its own answer, the two bad
/// ones INVALID_ARGUMENT naming their field, the good one applied.
///
/// Why: a write that is ordered must apply on every replica; a leader that proposed what
/// a follower had checked against its own, possibly different, rules could stop the
/// whole cluster at that entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t171_leader_refuses_relayed_writes_that_break_the_rules() -> anyhow::Result<()> {
    init_tracing();
    within("t171", Duration::from_secs(60), run()).await
}

async fn run() -> anyhow::Result<()> {
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let from = cluster
        .ids()
        .into_iter()
        .find(|&id| id != leader)
        .expect("a follower");
    let addr = cluster.node(leader)?.raft_addr.clone();
    let cluster_id = cluster.cluster_id(leader)?;
    let (_, before) = cluster
        .wait_converged(&cluster.ids(), Duration::from_secs(20))
        .await?;
    let written_before = written(&cluster).await?;

    tracing::info!("--- relayed writes that break the cluster's rules are refused by the leader");
    let bad = [
        (
            "t171/dim",
            put("t171/dim", b"x".to_vec(), vec![0.5; 4], 1),
            "ops[0].put_concept.concept.embedding",
        ),
        (
            "t171/big",
            put("t171/big", vec![b'x'; (1 << 20) + 1], Vec::new(), 2),
            "ops[0].put_concept.concept.content",
        ),
    ];
    for (id, batch, field) in bad {
        let s = forward(&cluster, &addr, from, &cluster_id, batch)
            .await?
            .expect_err("the leader accepted a write that breaks the rules");
        assert_eq!(s.code(), Code::InvalidArgument, "{id}: {s:?}");
        let named = s
            .metadata()
            .get(sutra_proto::INVALID_FIELD_METADATA_KEY)
            .and_then(|v| v.to_str().ok());
        assert_eq!(named, Some(field), "{id}: {s:?}");
    }

    tracing::info!("--- a relayed write that keeps the rules applies (control)");
    forward(
        &cluster,
        &addr,
        from,
        &cluster_id,
        put("t171/ok", b"fine".to_vec(), vec![0.5; 8], 3),
    )
    .await?
    .map_err(|s| anyhow::anyhow!("a good relayed write was refused: {s:?}"))?;

    tracing::info!("--- in one ForwardWrites batch, each write is judged on its own");
    let outcomes = forward_many(
        &cluster,
        &addr,
        from,
        &cluster_id,
        vec![
            put("t171/dim2", b"x".to_vec(), vec![0.5; 4], 4),
            put("t171/ok2", b"fine".to_vec(), vec![0.5; 8], 5),
            put("t171/big2", vec![b'x'; (1 << 20) + 1], Vec::new(), 6),
        ],
    )
    .await?;
    anyhow::ensure!(outcomes.len() == 3, "three answers expected: {outcomes:?}");
    for (i, field) in [
        (0, "ops[0].put_concept.concept.embedding"),
        (2, "ops[0].put_concept.concept.content"),
    ] {
        let s = outcomes[i]
            .as_ref()
            .expect_err("the leader accepted a batched write that breaks the rules");
        assert_eq!(s.code(), Code::InvalidArgument, "{i}: {s:?}");
        let named = s
            .metadata()
            .get(sutra_proto::INVALID_FIELD_METADATA_KEY)
            .and_then(|v| v.to_str().ok());
        assert_eq!(named, Some(field), "{i}: {s:?}");
    }
    outcomes[1]
        .as_ref()
        .map_err(|s| anyhow::anyhow!("a good batched write was refused: {s:?}"))?;

    tracing::info!("--- no replica applied the refused ones");
    let (_, after) = cluster
        .wait_converged(&cluster.ids(), Duration::from_secs(20))
        .await?;
    anyhow::ensure!(after != before, "the control write changed the content");
    let written_after = written(&cluster).await?;
    for (&(id, b), &(_, a)) in written_before.iter().zip(&written_after) {
        anyhow::ensure!(a == b + 2, "node {id} applied {} writes, expected 2", a - b);
    }
    for id in cluster.ids() {
        for key in ["t171/dim", "t171/big", "t171/dim2", "t171/big2"] {
            let r = cluster
                .client(id, ClientRole::Reader)?
                .storage
                .get_concept(GetConceptRequest {
                    read: stale(),
                    id: key.into(),
                })
                .await?
                .into_inner();
            anyhow::ensure!(r.concept.is_none(), "node {id} holds {key}");
        }
    }
    cluster.finish();
    Ok(())
}

/// Every node's count of applied writes, in id order.
async fn written(cluster: &Cluster) -> anyhow::Result<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    for id in cluster.ids() {
        let st = cluster
            .client(id, ClientRole::Reader)?
            .storage
            .get_stats(GetStatsRequest {
                include_content_hash: false,
            })
            .await?
            .into_inner();
        out.push((id, st.written));
    }
    Ok(out)
}
