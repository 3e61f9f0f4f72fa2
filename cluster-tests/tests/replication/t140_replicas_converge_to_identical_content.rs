//! t140: after writes, a follower restart and a snapshot catch-up, every replica holds
//! the same content, proved by the content hash each node reports with its applied index.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sutra_client::{Batch, Client, ClientConfig, TlsFiles};
use sutra_cluster_tests::{ClientRole, Cluster, ClusterOptions, init_tracing, within};
use sutra_proto::storage::{Concept, Edge, FlushRequest, GetStatsRequest};

/// An SDK client (writer certificate) that knows only node `id`'s endpoint, so its
/// writes enter the cluster through that node (a follower relays them to the leader).
fn client_via(cluster: &Cluster, id: u64) -> anyhow::Result<Client> {
    let certs = cluster.certs_dir();
    let paths = sutra_certs::CertPaths::client(certs, "writer");
    let tls = TlsFiles {
        ca: sutra_certs::CertPaths::ca(certs).cert,
        cert: paths.cert,
        key: paths.key,
    };
    let mut config = ClientConfig::new(vec![cluster.node(id)?.api_addr.clone()], tls);
    config.request_timeout = Duration::from_secs(10);
    Ok(Client::new(config)?)
}

fn concept(id: &str, content: String) -> Concept {
    Concept {
        id: id.into(),
        content: content.into_bytes(),
        ..Concept::default()
    }
}

fn edge(from: &str, to: &str, weight: f32) -> Edge {
    Edge {
        from: from.into(),
        to: to.into(),
        relation: "next".into(),
        weight,
    }
}

/// What one writer expects its own key space to hold.
#[derive(Debug, Default)]
struct Model {
    concepts: BTreeSet<String>,
    edges: BTreeMap<(String, String), f32>,
}

impl Model {
    fn delete(&mut self, id: &str) {
        self.concepts.remove(id);
        self.edges.retain(|(f, t), _| f != id && t != id);
    }
}

/// One writer's rounds `from..to` under `prefix`: puts, overwrites, deletes (with their
/// edges), edge puts, weight changes and deletes, and atomic batches, all acknowledged.
async fn write_rounds(
    c: Client,
    prefix: String,
    from: usize,
    to: usize,
    mut m: Model,
) -> anyhow::Result<(Client, Model)> {
    let id = |i: usize| format!("{prefix}c{i:03}");
    for i in from..to {
        c.put(concept(&id(i), format!("v0 {i}")), None).await?;
        m.concepts.insert(id(i));
        if i % 3 == 1 && m.concepts.contains(&id(i - 1)) {
            c.put(concept(&id(i - 1), format!("v1 {i}")), None).await?;
        }
        if i % 4 == 2 && m.concepts.contains(&id(i - 1)) {
            c.put_edge(edge(&id(i), &id(i - 1), i as f32)).await?;
            m.edges.insert((id(i), id(i - 1)), i as f32);
        }
        if i % 4 == 3 && m.edges.contains_key(&(id(i - 1), id(i - 2))) {
            c.put_edge(edge(&id(i - 1), &id(i - 2), 0.5)).await?;
            m.edges.insert((id(i - 1), id(i - 2)), 0.5);
        }
        if i % 5 == 4 {
            c.delete(&id(i - 3), None).await?;
            m.delete(&id(i - 3));
        }
        if i % 6 == 5 {
            let side = format!("{}b", id(i));
            let mut b = Batch::new();
            b.put(concept(&side, format!("batch {i}")))
                .put_edge(edge(&side, &id(i), 1.0));
            m.concepts.insert(side.clone());
            m.edges.insert((side, id(i)), 1.0);
            if m.edges.remove(&(id(i - 3), id(i - 4))).is_some() {
                b.delete_edge(id(i - 3), id(i - 4), "next");
            }
            c.batch(&b).await?;
        }
        if i % 7 == 6
            && let Some(key) = m.edges.keys().next().cloned()
        {
            c.delete_edge(&key.0, &key.1, "next").await?;
            m.edges.remove(&key);
        }
    }
    Ok((c, m))
}

/// Runs one writer per `(client, prefix, model)` concurrently for rounds `from..to`.
async fn write_all(
    writers: Vec<(Client, String, Model)>,
    from: usize,
    to: usize,
) -> anyhow::Result<Vec<(Client, String, Model)>> {
    let mut tasks = tokio::task::JoinSet::new();
    for (c, prefix, m) in writers {
        tasks.spawn(async move {
            let (c, m) = write_rounds(c, prefix.clone(), from, to, m).await?;
            anyhow::Ok((c, prefix, m))
        });
    }
    let mut out = Vec::new();
    while let Some(r) = tasks.join_next().await {
        out.push(r??);
    }
    Ok(out)
}

/// Nodes snapshot every 50 entries and keep 10. Three SDK writers, each through a
/// different node, write a mix of puts, overwrites, deletes, edges and batches. A
/// follower is SIGKILLed while two of them keep writing and restarted mid-run; then the
/// other follower is killed, more writes land, `Flush` (admin) on the leader purges the
/// log past that follower's last entry, and it restarts, so it can only catch up by
/// installing a snapshot. `wait_converged` must then see one content hash at one applied
/// index on all three nodes, and every node's counts must match what the writers
/// expect. One more write must change the hash (a different content gives a different
/// hash) and the nodes must converge on the new one.
///
/// Why: replication bugs that leave a replica with different data (a lost delete, an
/// edge not cascaded, a snapshot installed wrong, a session table that diverged) are
/// invisible to reads of a few keys; the content hash compares everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t140_replicas_converge_to_identical_content() -> anyhow::Result<()> {
    init_tracing();
    within("t140", Duration::from_secs(110), run()).await
}

async fn run() -> anyhow::Result<()> {
    tracing::info!("--- start three nodes that snapshot every 50 entries, keeping 10");
    let cluster = Cluster::start(ClusterOptions {
        snapshot_every_entries: Some(50),
        log_keep_entries: Some(10),
        ..ClusterOptions::default()
    })
    .await?;
    let leader = cluster.leader(Duration::from_secs(15)).await?;
    let followers: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|&id| id != leader)
        .collect();
    let (f1, f2) = (followers[0], followers[1]);
    let all = cluster.ids();

    tracing::info!(
        leader,
        f1,
        f2,
        "--- three writers, through the leader and both followers"
    );
    let writers = vec![
        (
            client_via(&cluster, leader)?,
            "t140/a/".to_string(),
            Model::default(),
        ),
        (
            client_via(&cluster, f1)?,
            "t140/b/".to_string(),
            Model::default(),
        ),
        (
            client_via(&cluster, f2)?,
            "t140/c/".to_string(),
            Model::default(),
        ),
    ];
    let mut writers = write_all(writers, 1, 25).await?;
    writers.sort_by(|a, b| a.1.cmp(&b.1));
    let writer_c = writers.pop().expect("three writers");

    tracing::info!(
        f2,
        "--- SIGKILL follower {f2} while two writers go on; restart it mid-run"
    );
    {
        let running = tokio::spawn(write_all(writers, 25, 60));
        cluster.kill(f2)?;
        let applied = cluster.health(leader).await?.applied_index;
        cluster
            .wait_applied(leader, applied + 40, Duration::from_secs(30))
            .await?;
        cluster.restart(f2)?;
        writers = running.await??;
        writers.push(writer_c);
        writers.sort_by(|a, b| a.1.cmp(&b.1));
    }

    tracing::info!(
        f1,
        "--- SIGKILL follower {f1}, write on, Flush the leader, restart it"
    );
    let leader_snapshot;
    {
        let applied = cluster.health(leader).await?.applied_index;
        cluster
            .wait_applied(f1, applied, Duration::from_secs(30))
            .await?;
        let f1_last_log = cluster.status(f1).await?.last_log_index;
        cluster.kill(f1)?;
        let (c, prefix, m) = writers.remove(0);
        let (c, m) = write_rounds(c, prefix.clone(), 60, 90, m).await?;
        writers.insert(0, (c, prefix, m));
        let flush = cluster
            .call_leader(
                ClientRole::Admin,
                "Flush on the leader",
                Duration::from_secs(30),
                async |mut c| {
                    c.storage
                        .flush(FlushRequest {})
                        .await
                        .map(|r| r.into_inner())
                },
            )
            .await?;
        anyhow::ensure!(
            flush.checkpoint_index > f1_last_log,
            "the log was purged up to {} only, follower {f1}'s last entry is {f1_last_log}: \
             it could catch up from the log",
            flush.checkpoint_index
        );
        leader_snapshot = cluster.status(leader).await?.snapshot_index;
        cluster.restart(f1)?;
    }

    tracing::info!("--- all three converge on one content hash");
    let (index, hash) = cluster
        .wait_converged(&all, Duration::from_secs(40))
        .await?;
    let installed = cluster.status(f1).await?.snapshot_index;
    assert!(
        installed >= leader_snapshot,
        "follower {f1} reports snapshot {installed}, the leader's was {leader_snapshot}: it did not install one"
    );
    let concepts: usize = writers.iter().map(|w| w.2.concepts.len()).sum();
    let edges: usize = writers.iter().map(|w| w.2.edges.len()).sum();
    for &id in &all {
        let s = cluster
            .client(id, ClientRole::Reader)?
            .storage
            .get_stats(GetStatsRequest {
                include_content_hash: true,
            })
            .await?
            .into_inner();
        assert_eq!(
            (s.concepts, s.edges),
            (concepts as u64, edges as u64),
            "node {id}: counts differ from what the writers acknowledged"
        );
    }
    let plain = cluster
        .client(leader, ClientRole::Reader)?
        .storage
        .get_stats(GetStatsRequest::default())
        .await?
        .into_inner();
    assert!(
        plain.content_hash.is_empty() && plain.content_hash_index == 0,
        "not asked for, not sent: {plain:?}"
    );
    tracing::info!(index, %hash, concepts, edges, "converged");

    tracing::info!("--- one more write: a different content, a different hash, converged again");
    {
        let c = &writers[0].0;
        c.put(concept("t140/last", "one more".into()), None).await?;
        let (index2, hash2) = cluster
            .wait_converged(&all, Duration::from_secs(20))
            .await?;
        assert!(index2 > index, "index {index2} after {index}");
        assert_ne!(hash2, hash, "a new concept must change the content hash");
        tracing::info!(index2, %hash2, "converged after one more write");
    }

    cluster.finish();
    Ok(())
}
