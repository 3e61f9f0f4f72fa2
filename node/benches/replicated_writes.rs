//! Replicated writes through `Raft::client_write` on a local three-node TLS cluster:
//! ops/s and latency percentiles at 1, 16 and 64 concurrent writers, 256-byte concepts.
//!
//! Run: `cargo bench -p sutra-node --bench replicated_writes`
//! Env: `SUTRA_BENCH_SECONDS` per case (default 10), `SUTRA_BENCH_WRITERS` (default "1,16,64").
//!
//! Each writer is one client (its own client id and sequence) sending `PutConcept` to
//! the leader over TLS and waiting for the answer, which comes after the entry is fsynced
//! on a quorum and applied on the leader.

use std::path::Path;
use std::time::{Duration, Instant};

use sutra_devcluster::ClusterFile;
use sutra_devcluster::runner::{self, Binaries, LocalOptions};
use sutra_proto::storage::storage_service_client::StorageServiceClient;
use sutra_proto::storage::{Concept, HealthCheckRequest, PutConceptRequest, WriteHeader};
use tonic::transport::{Channel, Endpoint};

async fn channel(c: &ClusterFile, certs: &Path, api: &str) -> Channel {
    let tls = sutra_certs::client_tls(
        &c.ca,
        &certs.join("client-writer.pem"),
        &certs.join("client-writer-key.pem"),
        "localhost",
    )
    .expect("client TLS");
    Endpoint::from_shared(format!("https://{api}"))
        .expect("endpoint")
        .tls_config(tls)
        .expect("tls")
        .tcp_nodelay(true)
        .connect()
        .await
        .expect("connect")
}

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort_unstable();
    let p = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
    format!(
        "p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        p(0.5),
        p(0.9),
        p(0.99),
        v[v.len() - 1]
    )
}

fn main() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let opts = LocalOptions {
        dir: dir.path().to_path_buf(),
        base_port: None,
        link_proxies: false,
        metrics: false,
    };
    let bins = Binaries {
        node: env!("CARGO_BIN_EXE_sutra-node").into(),
        cli: None,
    };
    runner::start(&opts, &bins).expect("starting the local cluster");
    let c = ClusterFile::load(dir.path())
        .expect("cluster.json")
        .expect("a cluster");
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(bench(&c));
    runner::stop(dir.path()).expect("stopping the local cluster");
}

async fn bench(c: &ClusterFile) {
    let seconds: u64 = std::env::var("SUTRA_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let writers: Vec<usize> = std::env::var("SUTRA_BENCH_WRITERS")
        .unwrap_or_else(|_| "1,16,64".into())
        .split(',')
        .map(|s| s.trim().parse().expect("writer count"))
        .collect();
    println!(
        "command: cargo bench -p sutra-node --bench replicated_writes   (SUTRA_BENCH_SECONDS={seconds} SUTRA_BENCH_WRITERS={writers:?})"
    );
    sutra_certs::install_crypto_provider();
    let certs = c.ca.parent().expect("certs dir").to_path_buf();
    let mut leader = None;
    for n in &c.nodes {
        let mut client = StorageServiceClient::new(channel(c, &certs, &n.api).await);
        let h = client
            .health_check(HealthCheckRequest {})
            .await
            .expect("health")
            .into_inner();
        if h.role == "leader" {
            leader = Some(n.api.clone());
        }
    }
    let leader = leader.expect("a leader");
    let term_of = |api: String| {
        let certs = &certs;
        async move {
            let mut client = StorageServiceClient::new(channel(c, certs, &api).await);
            client
                .health_check(HealthCheckRequest {})
                .await
                .expect("health")
                .into_inner()
                .term
        }
    };
    let term_before = term_of(leader.clone()).await;
    let content = vec![b'x'; 256];
    for &w in &writers {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for t in 0..w {
            let mut client = StorageServiceClient::new(channel(c, &certs, &leader).await);
            let content = content.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let client_id = format!("bench-{w}-{t}");
                let mut seq = 0u64;
                while Instant::now() < deadline && seq < 10_000_000 {
                    seq += 1;
                    let req = PutConceptRequest {
                        header: Some(WriteHeader {
                            client_id: client_id.clone(),
                            sequence: seq,
                        }),
                        concept: Some(Concept {
                            id: format!("{client_id}-{seq}"),
                            content: content.clone(),
                            ..Concept::default()
                        }),
                        expected_version: None,
                    };
                    let t0 = Instant::now();
                    client.put_concept(req).await.expect("put");
                    lat.push(t0.elapsed());
                }
                lat
            }));
        }
        let mut lat = Vec::new();
        for task in tasks {
            lat.extend(task.await.expect("writer"));
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{w:>2} writer(s): {:.0} ops/s  {}  (n={})",
            lat.len() as f64 / secs,
            percentiles(lat.clone()),
            lat.len()
        );
    }
    let term_after = term_of(leader.clone()).await;
    println!(
        "term before {term_before}, after {term_after}: {} elections during the run",
        term_after - term_before
    );
}
