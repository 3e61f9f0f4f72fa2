//! t160: a caller with a read-only certificate cannot stop another client's writes by
//! flooding the nodes. Three nodes run with low limits (24 client connections, 4 streams
//! per connection, 2 concurrent searches and large scans). A writer connects first; then
//! a bounded flood (in calls and in time) opens more reader connections to every node
//! than the limit allows, runs more concurrent large Scans and Searches on each than
//! the streams and the search places allow, and sends 60 MiB PutConcept bodies, while
//! the writer makes its writes.
//!
//! Checked: every write is acknowledged and readable afterwards; the flood did hit the
//! limits (connections closed by the node, RESOURCE_EXHAUSTED naming
//! `max-concurrent-searches`), so the test cannot pass without them; every oversized
//! reader write was PERMISSION_DENIED, i.e. refused before decoding (the same body from
//! the writer is refused by the decoder's size limit instead); and once the flood ends
//! the nodes take new connections again. Nothing is asserted on timing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use sutra_cluster_tests::client::stale;
use sutra_cluster_tests::{ClientRole, Cluster, ClusterOptions, init_tracing, wait_until};
use sutra_proto::storage::storage_service_client::StorageServiceClient;
use sutra_proto::storage::{
    BatchRequest, Concept, HealthCheckRequest, PutConceptOp, PutConceptRequest, ScanRequest,
    SearchRequest, WriteHeader, WriteOp, scan_request, write_op,
};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

const MAX_CONNECTIONS: usize = 24;
const MAX_STREAMS: u32 = 4;
const MAX_SEARCHES: usize = 2;
/// Reader connections the flood tries to open to each node: more than the limit.
const FLOOD_CONNECTIONS_PER_NODE: usize = 32;
/// Concurrent calls on each flood connection: more than the streams it may use.
const WORKERS_PER_CONNECTION: usize = 5;
/// Longest one flood call may take (the nodes share two cores with the flood).
const FLOOD_CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The flood's bounds: calls per worker, and time.
const CALLS_PER_WORKER: usize = 200;
const FLOOD_LIMIT: Duration = Duration::from_secs(90);
/// Concepts the flood reads (with embeddings, for Search).
const SEED: usize = 2000;
const DIMENSION: usize = 8;
/// Writes the other client makes during the flood.
const WRITES: usize = 60;
/// Above the client port's decoding limit (64 MiB peer messages less 8 MiB).
const OVERSIZED_BYTES: usize = 60 << 20;

/// What the flood saw.
#[derive(Debug, Default)]
struct FloodStats {
    connected: AtomicU64,
    refused_connections: AtomicU64,
    ok: AtomicU64,
    exhausted: AtomicU64,
    other: Mutex<BTreeMap<String, u64>>,
}

impl FloodStats {
    fn record(&self, r: Result<(), Status>) {
        match r {
            Ok(()) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(s)
                if s.code() == Code::ResourceExhausted
                    && s.message().contains("max-concurrent-searches") =>
            {
                self.exhausted.fetch_add(1, Ordering::Relaxed);
            }
            Err(s) => {
                let mut other = self.other.lock().unwrap_or_else(|p| p.into_inner());
                *other.entry(format!("{:?}", s.code())).or_default() += 1;
            }
        }
    }
}

fn embedding(i: usize) -> Vec<f32> {
    (0..DIMENSION)
        .map(|d| ((i * 7 + d * 3) % 11) as f32 + 1.0)
        .collect()
}

/// `SEED` concepts with 512-byte contents and embeddings, in batches through the leader.
async fn seed(cluster: &Cluster) -> anyhow::Result<()> {
    for (b, ids) in (0..SEED).collect::<Vec<_>>().chunks(500).enumerate() {
        let req = BatchRequest {
            header: Some(WriteHeader {
                client_id: "t160-seed".into(),
                sequence: b as u64 + 1,
            }),
            ops: ids
                .iter()
                .map(|&i| WriteOp {
                    op: Some(write_op::Op::PutConcept(PutConceptOp {
                        concept: Some(Concept {
                            id: format!("t160/seed-{i:05}"),
                            content: vec![b'x'; 512],
                            embedding: embedding(i),
                            ..Concept::default()
                        }),
                        expected_version: None,
                    })),
                })
                .collect(),
        };
        cluster
            .call_leader(
                ClientRole::Writer,
                "a seed batch",
                Duration::from_secs(30),
                async |mut c| c.storage.batch(req.clone()).await.map(drop),
            )
            .await?;
    }
    Ok(())
}

/// One connection to `addr` with `tls`, opened now (not lazily), so that a connection the
/// node closes is seen here.
async fn connect(addr: &str, tls: ClientTlsConfig) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?)
}

/// Alternating large Scans and Searches on `channel` until `stop`, the deadline or the
/// call budget.
async fn flood_worker(
    channel: Channel,
    worker: usize,
    stats: Arc<FloodStats>,
    stop: Arc<AtomicBool>,
    deadline: Instant,
) {
    let mut storage = StorageServiceClient::new(channel);
    for n in 0..CALLS_PER_WORKER {
        if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
            return;
        }
        let call = async {
            if (n + worker).is_multiple_of(2) {
                storage
                    .scan(ScanRequest {
                        read: stale(),
                        range: Some(scan_request::Range::Prefix("t160/seed-".into())),
                        limit: 5000,
                        page_token: String::new(),
                        keys_only: false,
                    })
                    .await
                    .map(drop)
            } else {
                storage
                    .search(SearchRequest {
                        read: stale(),
                        vector: embedding(n),
                        k: 200,
                        metric: 0,
                        include_concepts: true,
                    })
                    .await
                    .map(drop)
            }
        };
        let r = tokio::time::timeout(FLOOD_CALL_TIMEOUT, call)
            .await
            .unwrap_or_else(|_| Err(Status::deadline_exceeded("flood call timed out")));
        stats.record(r);
    }
}

/// The flood: its connections and workers run on a runtime of their own, so that the
/// thousands of calls it makes do not starve the writer's task in this process (a real
/// flood comes from other machines); the nodes share the cores either way.
struct Flood {
    runtime: Option<tokio::runtime::Runtime>,
    stats: Arc<FloodStats>,
    stop: Arc<AtomicBool>,
    channels: Vec<Channel>,
    /// One more reader connection per node, opened first and used for nothing but the
    /// oversized writes, so that they do not wait behind the workers for a stream.
    oversize: Vec<Channel>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Flood {
    /// Opens up to `FLOOD_CONNECTIONS_PER_NODE` connections to each of `addrs` and starts
    /// `WORKERS_PER_CONNECTION` workers on each one opened.
    async fn start(addrs: Vec<String>, tls: ClientTlsConfig) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("t160-flood")
            .enable_all()
            .build()?;
        let stats = Arc::new(FloodStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + FLOOD_LIMIT;
        let mut oversize = Vec::new();
        for addr in &addrs {
            let (addr, tls) = (addr.clone(), tls.clone());
            oversize.push(
                runtime
                    .spawn(async move { connect(&addr, tls).await })
                    .await??,
            );
        }
        let mut channels = Vec::new();
        for addr in addrs {
            for _ in 0..FLOOD_CONNECTIONS_PER_NODE {
                let (addr, tls) = (addr.clone(), tls.clone());
                match runtime
                    .spawn(async move { connect(&addr, tls).await })
                    .await?
                {
                    Ok(channel) => {
                        stats.connected.fetch_add(1, Ordering::Relaxed);
                        channels.push(channel);
                    }
                    Err(e) => {
                        tracing::debug!(error = %format!("{e:#}"), "flood connection refused");
                        stats.refused_connections.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        let mut workers = Vec::new();
        for channel in &channels {
            for worker in 0..WORKERS_PER_CONNECTION {
                workers.push(runtime.spawn(flood_worker(
                    channel.clone(),
                    worker,
                    stats.clone(),
                    stop.clone(),
                    deadline,
                )));
            }
        }
        Ok(Self {
            runtime: Some(runtime),
            stats,
            stop,
            channels,
            oversize,
            workers,
        })
    }

    /// Stops every worker, closes the connections and returns what the flood saw.
    async fn stop(mut self) -> anyhow::Result<Arc<FloodStats>> {
        self.stop.store(true, Ordering::Relaxed);
        for w in std::mem::take(&mut self.workers) {
            w.await.context("flood worker")?;
        }
        self.channels.clear();
        self.oversize.clear();
        Ok(self.stats.clone())
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        // Dropping a runtime blocks; from async code it must be let go in the background.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn oversized_put(client_id: &str) -> PutConceptRequest {
    PutConceptRequest {
        header: Some(WriteHeader {
            client_id: client_id.into(),
            sequence: 1,
        }),
        concept: Some(Concept {
            id: "t160/oversized".into(),
            content: vec![b'o'; OVERSIZED_BYTES],
            ..Concept::default()
        }),
        expected_version: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn t160_bounded_work_per_caller() -> anyhow::Result<()> {
    init_tracing();
    let cluster = Cluster::start(ClusterOptions {
        vector_dimension: DIMENSION as u32,
        extra_args: [
            "--max-client-connections",
            &MAX_CONNECTIONS.to_string(),
            "--max-streams-per-connection",
            &MAX_STREAMS.to_string(),
            "--max-concurrent-searches",
            &MAX_SEARCHES.to_string(),
        ]
        .map(String::from)
        .to_vec(),
        ..ClusterOptions::default()
    })
    .await?;
    let reader_tls = cluster.certs().tls(ClientRole::Reader)?;

    tracing::info!("--- seed {SEED} concepts for the flood to read");
    seed(&cluster).await?;

    tracing::info!("--- the writer connects before the flood, with its first write");
    let mut writer = cluster.writer("t160", Duration::from_secs(60))?;
    let mut expected = BTreeMap::new();
    let put = async |writer: &mut sutra_cluster_tests::Writer,
                     expected: &mut BTreeMap<String, Vec<u8>>,
                     i: usize| {
        let id = format!("t160/w-{i:03}");
        let content = format!("written during the flood: {i}").into_bytes();
        writer
            .put(&id, &content)
            .await
            .into_ok()
            .with_context(|| format!("write {id}"))?;
        expected.insert(id, content);
        anyhow::Ok(())
    };
    put(&mut writer, &mut expected, 0).await?;

    tracing::info!(
        "--- flood: {FLOOD_CONNECTIONS_PER_NODE} reader connections to each node, {WORKERS_PER_CONNECTION} calls at once on each"
    );
    let flood = Flood::start(cluster.api_addrs(), reader_tls.clone()).await?;
    let stats = flood.stats.clone();
    wait_until(
        "the flood meeting the search limit",
        Duration::from_secs(30),
        async || {
            let n = stats.exhausted.load(Ordering::Relaxed);
            ensure!(n > 0, "no RESOURCE_EXHAUSTED yet: {stats:?}");
            Ok(n)
        },
    )
    .await?;

    tracing::info!("--- oversized PutConcept bodies from the reader, during the flood");
    {
        // One per node, at once. The bound is generous: the flood keeps the cores busy.
        let mut puts = tokio::task::JoinSet::new();
        for channel in &flood.oversize {
            let mut storage = StorageServiceClient::new(channel.clone());
            puts.spawn(async move {
                let call = storage.put_concept(oversized_put("t160-reader"));
                match tokio::time::timeout(Duration::from_secs(60), call).await {
                    Ok(r) => r.map(drop).map_err(|s| (s.code(), s.message().to_owned())),
                    Err(_) => Err((Code::DeadlineExceeded, "no answer within 60 s".into())),
                }
            });
        }
        let refusals = puts.join_all().await;
        ensure!(!refusals.is_empty());
        for r in &refusals {
            ensure!(
                matches!(r, Err((Code::PermissionDenied, m)) if m.contains("write role")),
                "a reader's oversized write must be refused by role, before decoding: {r:?}"
            );
        }
        tracing::info!(
            refused = refusals.len(),
            "every oversized reader write was PERMISSION_DENIED"
        );
    }

    tracing::info!("--- the writer's {WRITES} writes while the flood goes on");
    for i in 1..=WRITES {
        put(&mut writer, &mut expected, i).await?;
        if i.is_multiple_of(20) {
            tracing::info!(written = i, flood = ?stats, "writes going on");
        }
    }
    let stats = flood.stop().await?;
    tracing::info!(?stats, "flood over");

    tracing::info!("--- the flood met every limit it was meant to");
    {
        ensure!(
            stats.refused_connections.load(Ordering::Relaxed) > 0,
            "no flood connection was refused: {stats:?}"
        );
        ensure!(stats.exhausted.load(Ordering::Relaxed) > 0, "{stats:?}");
        for id in cluster.ids() {
            ensure!(
                cluster
                    .node(id)?
                    .process()
                    .log_contains("connection limit reached"),
                "node {id} did not log its connection limit"
            );
        }
        // The writer's own oversized body reaches the decoder, which refuses it for size:
        // the reader's PERMISSION_DENIED above came before decoding.
        let tls = cluster.certs().tls(ClientRole::Writer)?;
        let leader = cluster.leader(Duration::from_secs(10)).await?;
        let channel = connect(&cluster.node(leader)?.api_addr, tls).await?;
        let mut storage = StorageServiceClient::new(channel);
        let call = storage.put_concept(oversized_put("t160-writer"));
        let st = tokio::time::timeout(Duration::from_secs(60), call)
            .await
            .context("the writer's oversized put: no answer within 60 s")?
            .expect_err("too large to decode");
        ensure!(st.code() == Code::OutOfRange, "{st:?}");
    }

    tracing::info!("--- every write is readable, and the nodes take new connections again");
    {
        let all = cluster
            .read_all_on_leader("t160/w-", Duration::from_secs(30))
            .await?;
        let got: BTreeMap<String, Vec<u8>> =
            all.into_iter().map(|(id, c)| (id, c.content)).collect();
        ensure!(
            got == expected,
            "{} of {} writes read back",
            got.len(),
            expected.len()
        );
        for addr in cluster.api_addrs() {
            let mut storage = StorageServiceClient::new(connect(&addr, reader_tls.clone()).await?);
            storage
                .health_check(HealthCheckRequest {})
                .await
                .with_context(|| format!("a new connection to {addr} after the flood"))?;
        }
    }
    cluster.finish();
    Ok(())
}
