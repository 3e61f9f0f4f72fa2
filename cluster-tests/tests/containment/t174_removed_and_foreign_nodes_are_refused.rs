//! t174: the peer API admits only this cluster's nodes: a removed node's certificate is
//! refused on every peer RPC, and a second cluster under the same CA cannot exchange
//! messages with the first.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use sutra_certs::CertPaths;
use sutra_cluster_tests::client::{SERVER_NAME, channel};
use sutra_cluster_tests::{ClientRole, Cluster, ClusterOptions, init_tracing, wait_until, within};
use sutra_proto::cluster::{RemoveNodeRequest, TransferLeaderRequest as OperatorTransfer};
use sutra_proto::raft::raft_service_client::RaftServiceClient;
use sutra_proto::raft::{
    AppendEntriesRequest, ForwardWriteRequest, LeaderId, ReadIndexRequest, SnapshotChunk,
    TransferLeaderRequest, Vote, VoteRequest,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Code, Status};

fn pem(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// A peer client of `addr` presenting node `node`'s certificate from `certs`.
fn peer(certs: &Path, node: u64, addr: &str) -> anyhow::Result<RaftServiceClient<Channel>> {
    let cert = CertPaths::node(certs, node);
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pem(&CertPaths::ca(certs).cert)?))
        .domain_name(SERVER_NAME)
        .identity(Identity::from_pem(pem(&cert.cert)?, pem(&cert.key)?));
    Ok(RaftServiceClient::new(channel(addr, tls)?))
}

fn as_cluster<T>(message: T, cluster_id: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut().insert(
        sutra_proto::CLUSTER_ID_METADATA_KEY,
        cluster_id.parse().expect("a cluster id is ASCII"),
    );
    r
}

fn vote(node: u64) -> Option<Vote> {
    Some(Vote {
        leader_id: Some(LeaderId {
            term: 1,
            node_id: node,
        }),
        committed: false,
    })
}

/// Every peer RPC, sent as `node` of `cluster_id`: the status each one got.
async fn every_rpc(
    mut c: RaftServiceClient<Channel>,
    node: u64,
    cluster_id: &str,
) -> Vec<(&'static str, Result<(), Status>)> {
    let v = || VoteRequest {
        vote: vote(node),
        last_log_id: None,
        leadership_transfer: false,
    };
    let id = cluster_id;
    vec![
        ("PreVote", c.pre_vote(as_cluster(v(), id)).await.map(drop)),
        ("Vote", c.vote(as_cluster(v(), id)).await.map(drop)),
        (
            "AppendEntries",
            c.append_entries(as_cluster(
                AppendEntriesRequest {
                    vote: vote(node),
                    ..AppendEntriesRequest::default()
                },
                id,
            ))
            .await
            .map(drop),
        ),
        (
            "InstallSnapshot",
            c.install_snapshot(as_cluster(
                futures_util::stream::empty::<SnapshotChunk>(),
                id,
            ))
            .await
            .map(drop),
        ),
        (
            "TransferLeader",
            c.transfer_leader(as_cluster(
                TransferLeaderRequest {
                    from_leader: vote(node),
                    to_node_id: node,
                    last_log_id: None,
                },
                id,
            ))
            .await
            .map(drop),
        ),
        (
            "ForwardWrite",
            c.forward_write(as_cluster(
                ForwardWriteRequest {
                    command: Vec::new(),
                },
                id,
            ))
            .await
            .map(drop),
        ),
        (
            "ReadIndex",
            c.read_index(as_cluster(ReadIndexRequest {}, id))
                .await
                .map(drop),
        ),
    ]
}

fn all_refused(
    what: &str,
    answers: Vec<(&str, Result<(), Status>)>,
    says: &str,
) -> anyhow::Result<()> {
    for (rpc, r) in answers {
        match r {
            Err(s) if s.code() == Code::PermissionDenied && s.message().contains(says) => {}
            other => anyhow::bail!("{what}: {rpc} got {other:?}, not PERMISSION_DENIED ({says})"),
        }
    }
    Ok(())
}

/// Node 3 is removed from a three-node cluster; every peer RPC that carries its
/// certificate (and the cluster's id) is then refused by the remaining nodes, and node 3
/// restarted on its old data does not move the cluster's term. A second cluster made
/// under the same CA refuses the first cluster's nodes and the first refuses the
/// second's, on every peer RPC.
///
/// Why: a certificate stays valid after its node is removed, and several clusters may
/// share a CA; without these checks a removed node restarted from an old disk, or a node
/// of another cluster, could vote, append or relay writes here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t174_removed_and_foreign_nodes_are_refused() -> anyhow::Result<()> {
    init_tracing();
    within("t174", Duration::from_secs(120), run()).await
}

async fn run() -> anyhow::Result<()> {
    let a = Cluster::start(ClusterOptions::default()).await?;
    let a_id = a.cluster_id(1)?;

    tracing::info!("--- remove node 3 (handing leadership away first if it leads)");
    let leader = a.leader(Duration::from_secs(10)).await?;
    let mut admin = a.client(leader, ClientRole::Admin)?;
    if leader == 3 {
        admin
            .cluster
            .transfer_leader(OperatorTransfer {
                target_node_id: Some(1),
            })
            .await?;
    }
    let leader = a.leader(Duration::from_secs(10)).await?;
    a.client(leader, ClientRole::Admin)?
        .cluster
        .remove_node(RemoveNodeRequest { node_id: 3 })
        .await?;
    let term = a.health(leader).await?.term;

    tracing::info!("--- node 3's certificate is refused on every peer RPC, by both others");
    for id in [1, 2] {
        wait_until(
            &format!("node {id} knowing node 3 was removed"),
            Duration::from_secs(10),
            async || {
                let c = peer(a.certs_dir(), 3, &a.node(id)?.raft_addr)?;
                all_refused(
                    &format!("node 3 to node {id}"),
                    every_rpc(c, 3, &a_id).await,
                    "removed",
                )
            },
        )
        .await?;
    }

    tracing::info!("--- node 3 restarted on its old data does not disturb the cluster");
    a.kill(3)?;
    a.restart(3)?;
    // Several election timeouts (600 ms at most each) of watching the term.
    for _ in 0..40 {
        let now = a.health(leader).await?;
        anyhow::ensure!(
            now.term == term && now.leader_id == leader,
            "the cluster moved from term {term} (leader {leader}) to {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.write_many(
        &std::sync::Arc::new(sutra_checker::History::new()),
        "t174/",
        10,
        1,
    )
    .await?;

    tracing::info!("--- a second cluster under the same CA");
    let b = Cluster::start(ClusterOptions {
        ca_from: Some(a.certs_dir().to_path_buf()),
        ..ClusterOptions::default()
    })
    .await?;
    let b_id = b.cluster_id(1)?;
    anyhow::ensure!(a_id != b_id, "two clusters minted one id");
    let c = peer(b.certs_dir(), 2, &a.node(1)?.raft_addr)?;
    all_refused(
        "cluster B's node 2 to cluster A",
        every_rpc(c, 2, &b_id).await,
        "cluster",
    )?;
    let c = peer(a.certs_dir(), 2, &b.node(1)?.raft_addr)?;
    all_refused(
        "cluster A's node 2 to cluster B",
        every_rpc(c, 2, &a_id).await,
        "cluster",
    )?;

    b.finish();
    a.finish();
    Ok(())
}
