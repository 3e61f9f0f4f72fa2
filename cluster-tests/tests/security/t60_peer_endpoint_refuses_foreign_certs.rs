//! t60: who may talk to a node: the peer (Raft) endpoint takes only the cluster's nodes,
//! the client API only certificates of the cluster's CA, each within its role.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use sutra_certs::{CertPaths, Role};
use sutra_cluster_tests::client::{SERVER_NAME, channel};
use sutra_cluster_tests::{ClientRole, Cluster, ClusterOptions, init_tracing, within};
use sutra_proto::cluster::AddLearnerRequest;
use sutra_proto::raft::raft_service_client::RaftServiceClient;
use sutra_proto::raft::{LeaderId, Vote, VoteRequest};
use sutra_proto::storage::storage_service_client::StorageServiceClient;
use sutra_proto::storage::{Concept, HealthCheckRequest, PutConceptRequest, WriteHeader};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};
use tonic::{Code, Status};

/// How long one refused call may take to be refused.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

fn pem(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Trusts `ca` and presents `identity` (none: no client certificate at all).
fn tls(ca: &Path, identity: Option<&CertPaths>) -> anyhow::Result<ClientTlsConfig> {
    let mut t = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pem(ca)?))
        .domain_name(SERVER_NAME);
    if let Some(id) = identity {
        t = t.identity(Identity::from_pem(pem(&id.cert)?, pem(&id.key)?));
    }
    Ok(t)
}

/// A PreVote from node 2 (term 1, empty log): changes nothing on the receiver.
fn pre_vote() -> VoteRequest {
    VoteRequest {
        vote: Some(Vote {
            leader_id: Some(LeaderId {
                term: 1,
                node_id: 2,
            }),
            committed: false,
        }),
        last_log_id: None,
        leadership_transfer: false,
    }
}

async fn raft_call(addr: &str, tls: ClientTlsConfig) -> Result<(), Status> {
    raft_call_as(addr, tls, None).await
}

/// A PreVote carrying `cluster_id` as its cluster (none if `None`).
async fn raft_call_as(
    addr: &str,
    tls: ClientTlsConfig,
    cluster_id: Option<&str>,
) -> Result<(), Status> {
    let ch = channel(addr, tls).map_err(|e| Status::internal(e.to_string()))?;
    let mut c = RaftServiceClient::new(ch);
    let mut request = tonic::Request::new(pre_vote());
    if let Some(id) = cluster_id {
        request.metadata_mut().insert(
            sutra_proto::CLUSTER_ID_METADATA_KEY,
            id.parse().expect("a cluster id is ASCII"),
        );
    }
    match tokio::time::timeout(CALL_TIMEOUT, c.pre_vote(request)).await {
        Ok(r) => r.map(|_| ()),
        Err(_) => Err(Status::deadline_exceeded("no answer")),
    }
}

async fn health_call(addr: &str, tls: ClientTlsConfig) -> Result<(), Status> {
    let ch = channel(addr, tls).map_err(|e| Status::internal(e.to_string()))?;
    let mut c = StorageServiceClient::new(ch);
    match tokio::time::timeout(CALL_TIMEOUT, c.health_check(HealthCheckRequest {})).await {
        Ok(r) => r.map(|_| ()),
        Err(_) => Err(Status::deadline_exceeded("no answer")),
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

/// The peer endpoint, with a PreVote (which changes nothing), refuses (a) a node
/// certificate from another CA and (b) a caller without a certificate at the TLS
/// handshake, and (c) answers a client certificate of the right CA with
/// PERMISSION_DENIED; a real node's certificate is served (the control). The client API
/// refuses callers without a certificate or with another CA's at the handshake, answers
/// PutConcept with the reader certificate and AddLearner with the writer certificate
/// with PERMISSION_DENIED, and serves the writer's PutConcept.
///
/// Why: only nodes may drive Raft (a forged vote or append could corrupt the cluster),
/// and roles are the only access control clients have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t60_peer_endpoint_refuses_foreign_certs() -> anyhow::Result<()> {
    init_tracing();
    within("t60", Duration::from_secs(50), run()).await
}

async fn run() -> anyhow::Result<()> {
    tracing::info!("--- start three nodes; make a second, foreign CA with node and client certs");
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let foreign_dir = cluster.dir().join("foreign-certs");
    sutra_certs::generate_dev_set(&foreign_dir, &[2], &[], &[("admin", Role::Admin)], false)?;
    let ca = CertPaths::ca(cluster.certs_dir()).cert;
    let foreign_node = CertPaths::node(&foreign_dir, 2);
    let foreign_admin = CertPaths::client(&foreign_dir, "admin");
    let node1 = cluster.node(1)?;
    let (raft_addr, api_addr) = (node1.raft_addr.clone(), node1.api_addr.clone());

    tracing::info!(
        "--- peer endpoint: a real node certificate with the cluster's id is served (control)"
    );
    let real_node2 = CertPaths::node(cluster.certs_dir(), 2);
    let cluster_id = cluster.cluster_id(1)?;
    raft_call_as(&raft_addr, tls(&ca, Some(&real_node2))?, Some(&cluster_id))
        .await
        .map_err(|s| anyhow::anyhow!("node 2's certificate was refused: {s:?}"))?;

    tracing::info!(
        "--- peer endpoint: the same certificate without the cluster id, or with another, is refused"
    );
    for (what, id) in [
        ("no cluster id", None),
        (
            "another cluster's id",
            Some("0123456789abcdef0123456789abcdef"),
        ),
    ] {
        let s = raft_call_as(&raft_addr, tls(&ca, Some(&real_node2))?, id)
            .await
            .expect_err(what);
        assert_eq!(s.code(), tonic::Code::PermissionDenied, "{what}: {s:?}");
        assert!(s.message().contains("cluster"), "{what}: {s:?}");
    }

    tracing::info!("--- (a) peer endpoint: a node certificate from another CA");
    assert_refused_by_tls(
        "raft, foreign node cert",
        raft_call(&raft_addr, tls(&ca, Some(&foreign_node))?).await,
    );
    assert_refused_by_tls(
        "raft, foreign node cert and foreign CA trusted",
        raft_call(
            &raft_addr,
            tls(&CertPaths::ca(&foreign_dir).cert, Some(&foreign_node))?,
        )
        .await,
    );

    tracing::info!("--- (b) peer endpoint: no client certificate");
    assert_refused_by_tls(
        "raft, no cert",
        raft_call(&raft_addr, tls(&ca, None)?).await,
    );

    tracing::info!("--- (c) peer endpoint: a client (not node) certificate of the right CA");
    for role in [ClientRole::Admin, ClientRole::Writer, ClientRole::Reader] {
        let r = raft_call(&raft_addr, cluster.certs().tls(role)?).await;
        match r {
            Err(s) if s.code() == Code::PermissionDenied => {
                tracing::info!(?role, message = %s.message(), "permission denied");
            }
            other => panic!(
                "raft with the {role:?} client cert: expected PERMISSION_DENIED, got {other:?}"
            ),
        }
    }

    tracing::info!("--- client API: no certificate, another CA's certificate");
    assert_refused_by_tls(
        "api, no cert",
        health_call(&api_addr, tls(&ca, None)?).await,
    );
    assert_refused_by_tls(
        "api, foreign admin cert",
        health_call(&api_addr, tls(&ca, Some(&foreign_admin))?).await,
    );

    tracing::info!("--- client API: roles");
    let leader = cluster.leader(Duration::from_secs(10)).await?;
    let put = PutConceptRequest {
        header: Some(WriteHeader {
            client_id: "t60".into(),
            sequence: 1,
        }),
        concept: Some(Concept {
            id: "t60/x".into(),
            content: b"x".to_vec(),
            ..Concept::default()
        }),
        expected_version: None,
    };
    let mut reader = cluster.client(leader, ClientRole::Reader)?;
    match reader.storage.put_concept(put.clone()).await {
        Err(s) if s.code() == Code::PermissionDenied => {
            tracing::info!(message = %s.message(), "reader may not write")
        }
        other => {
            panic!("PutConcept with the reader cert: expected PERMISSION_DENIED, got {other:?}")
        }
    }
    let mut writer = cluster.client(leader, ClientRole::Writer)?;
    let add = AddLearnerRequest {
        node_id: 9,
        raft_addr: "127.0.0.1:1".into(),
        api_addr: "127.0.0.1:2".into(),
        wait_caught_up: false,
    };
    match writer.cluster.add_learner(add).await {
        Err(s) if s.code() == Code::PermissionDenied => {
            tracing::info!(message = %s.message(), "writer may not change membership")
        }
        other => {
            panic!("AddLearner with the writer cert: expected PERMISSION_DENIED, got {other:?}")
        }
    }
    let mut w = cluster.writer("t60", Duration::from_secs(10))?;
    w.put("t60/y", b"y").await.into_ok()?;

    cluster.finish();
    Ok(())
}
