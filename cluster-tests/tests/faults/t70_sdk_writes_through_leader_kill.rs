//! t70: the client SDK keeps writing through a leader kill with no error surfaced.

use std::time::{Duration, Instant};

use sutra_client::{Client, ClientConfig, TlsFiles};
use sutra_cluster_tests::{Cluster, ClusterOptions, init_tracing, within};
use sutra_proto::storage::{Concept, Consistency};

/// A `sutra_client::Client` that knows all three nodes writes 150 concepts one after
/// another; after the 50th the leader is SIGKILLed. Every write must return `Ok` (the
/// failover shows only as latency), each applied exactly once (the retries carry the
/// same sequence), and a read-your-writes (`SESSION`) read of every concept through the
/// SDK sees it. The slowest write is reported, as a liveness check with a generous bound.
///
/// Why: this is what an application sees of a failover; it must not have to handle it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t70_sdk_writes_through_leader_kill() -> anyhow::Result<()> {
    init_tracing();
    within("t70", Duration::from_secs(55), run()).await
}

async fn run() -> anyhow::Result<()> {
    tracing::info!("--- start three nodes; an SDK client that knows all of them");
    let cluster = Cluster::start(ClusterOptions::default()).await?;
    let certs = cluster.certs_dir();
    let writer = sutra_certs::CertPaths::client(certs, "writer");
    let tls = TlsFiles {
        ca: sutra_certs::CertPaths::ca(certs).cert,
        cert: writer.cert,
        key: writer.key,
    };
    let mut config = ClientConfig::new(cluster.api_addrs(), tls);
    config.request_timeout = Duration::from_secs(15);
    let client = Client::new(config)?;
    let leader = cluster.leader(Duration::from_secs(15)).await?;

    tracing::info!(
        leader,
        "--- 150 writes; the leader is killed after the 50th"
    );
    let mut slowest = Duration::ZERO;
    let mut versions = Vec::new();
    for i in 0..150 {
        if i == 50 {
            cluster.kill(leader)?;
        }
        let started = Instant::now();
        let concept = Concept {
            id: format!("t70/{i:03}"),
            content: format!("v{i}").into_bytes(),
            ..Concept::default()
        };
        let w = client
            .put(concept, None)
            .await
            .map_err(|e| anyhow::anyhow!("write {i} surfaced an error: {e}"))?;
        slowest = slowest.max(started.elapsed());
        versions.push(w.version);
    }
    tracing::info!(?slowest, "slowest write (the failover)");
    assert!(
        slowest < Duration::from_secs(10),
        "a write took {slowest:?}"
    );
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "versions must increase: {versions:?}"
    );

    tracing::info!("--- every write readable (SESSION through the SDK), applied once");
    for (i, version) in versions.iter().enumerate() {
        let c = client
            .get(&format!("t70/{i:03}"), Consistency::Session)
            .await?
            .ok_or_else(|| anyhow::anyhow!("t70/{i:03} missing"))?;
        assert_eq!(c.content, format!("v{i}").into_bytes());
        assert_eq!(
            c.version, *version,
            "t70/{i:03} was applied again after its acknowledgement"
        );
    }
    assert_eq!(
        client.session_token(),
        *versions.last().expect("150 writes")
    );

    cluster.finish();
    Ok(())
}
