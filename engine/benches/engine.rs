//! Storage engine benchmarks: apply throughput, checkpoint cost, point-get latency,
//! exact k-NN latency, reopen time and index memory per record.
//!
//! Run: `cargo bench -p sutra-engine --bench engine`
//! Sizes: `SUTRA_BENCH_RECORDS` (default 1,000,000), `SUTRA_BENCH_VECTORS` (default 100,000),
//! `SUTRA_BENCH_DIR` (default: a temporary directory under /tmp).
//! Single-threaded throughout; numbers are medians or percentiles of many samples.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use sutra_engine::*;

/// Counts live heap bytes so the index's memory per record can be reported.
struct Counting;
static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as i64 - l.size() as i64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort_unstable();
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    format!(
        "p50 {:?}  p90 {:?}  p99 {:?}  max {:?}  (n={})",
        p(0.50),
        p(0.90),
        p(0.99),
        samples[samples.len() - 1],
        samples.len()
    )
}

fn config(dim: u32) -> EngineConfig {
    EngineConfig {
        params: StoreParams {
            vector_dimension: dim,
            ..StoreParams::default()
        },
        compaction: CompactionConfig {
            background: false,
            ..CompactionConfig::default()
        },
        ..EngineConfig::default()
    }
}

/// A cheap deterministic PRNG (xorshift) so runs are comparable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn f32(&mut self) -> f32 {
        (self.next() % 2_000_000) as f32 / 1_000_000.0 - 1.0
    }
}

fn main() {
    let records = env_usize("SUTRA_BENCH_RECORDS", 1_000_000);
    let vectors = env_usize("SUTRA_BENCH_VECTORS", 100_000);
    let base = std::env::var("SUTRA_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir());
    println!(
        "command: cargo bench -p sutra-engine --bench engine   (SUTRA_BENCH_RECORDS={records} SUTRA_BENCH_VECTORS={vectors})"
    );
    println!(
        "cores: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // --- apply: one 256-byte concept per write, as Raft applies single-put entries.
    let dir = tempfile::tempdir_in(&base).expect("temp dir");
    let engine = Engine::open(dir.path(), config(768)).expect("open");
    let batches: Vec<WriteBatch> = (0..records)
        .map(|i| WriteBatch {
            session: None,
            ops: vec![WriteOp::PutConcept {
                concept: Concept {
                    id: format!("concept-{i:08}"),
                    content: vec![(i % 251) as u8; 256],
                    ..Concept::default()
                },
                expected_version: None,
            }],
        })
        .collect();
    let mut samples = Vec::with_capacity(records);
    let started = Instant::now();
    for (i, b) in batches.iter().enumerate() {
        let v = i as u64 + 1;
        let one = Instant::now();
        engine
            .apply(
                b,
                ApplyContext {
                    version: v,
                    position: &v.to_le_bytes(),
                    time_ms: v,
                },
            )
            .expect("apply");
        samples.push(one.elapsed());
    }
    let elapsed = started.elapsed();
    drop(batches);
    println!(
        "apply 256-byte concepts: {records} records in {elapsed:.2?} = {:.0} records/s ({:.2} µs/record, no fsync)",
        records as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / records as f64
    );
    // The max is the longest the state lock was held by one write (readers wait on it).
    println!("apply, one write: {}", percentiles(samples));
    let stats = engine.stats();
    let started = Instant::now();
    engine.checkpoint().expect("checkpoint");
    let ck = started.elapsed();
    println!(
        "checkpoint after apply: {ck:.2?} for {:.1} MiB of data ({:.0} MiB/s msync+fsync)",
        stats.data_bytes as f64 / (1 << 20) as f64,
        stats.data_bytes as f64 / (1 << 20) as f64 / ck.as_secs_f64()
    );
    let started = Instant::now();
    engine.checkpoint().expect("checkpoint");
    println!("checkpoint with nothing new: {:.2?}", started.elapsed());

    // --- point gets on the full store.
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let ids: Vec<String> = (0..200_000)
        .map(|_| format!("concept-{:08}", rng.next() as usize % records))
        .collect();
    for id in ids.iter().take(10_000) {
        black_box(engine.get(id).expect("get"));
    }
    let mut samples = Vec::with_capacity(ids.len());
    for id in &ids {
        let t = Instant::now();
        let c = engine.get(id).expect("get");
        samples.push(t.elapsed());
        black_box(c);
    }
    println!("point get on {records} records: {}", percentiles(samples));

    // --- reopen and index memory.
    drop(engine);
    let before = LIVE.load(Ordering::Relaxed);
    let started = Instant::now();
    let engine = Engine::open(dir.path(), config(768)).expect("reopen");
    let reopen = started.elapsed();
    let heap = LIVE.load(Ordering::Relaxed) - before;
    println!("reopen with {records} records: {reopen:.2?} (rebuilds the index, checks every CRC)");
    println!(
        "index heap per record: {:.0} bytes ({:.1} MiB total)",
        heap as f64 / records as f64,
        heap as f64 / (1 << 20) as f64
    );
    drop(engine);
    drop(dir);

    // --- exact k-NN.
    let dir = tempfile::tempdir_in(&base).expect("temp dir");
    let engine = Engine::open(dir.path(), config(768)).expect("open");
    for (v, chunk) in (0..vectors).collect::<Vec<_>>().chunks(1000).enumerate() {
        let v = v as u64 + 1;
        let ops = chunk
            .iter()
            .map(|i| WriteOp::PutConcept {
                concept: Concept {
                    id: format!("vec-{i:07}"),
                    embedding: (0..768).map(|_| rng.f32()).collect(),
                    ..Concept::default()
                },
                expected_version: None,
            })
            .collect();
        engine
            .apply(
                &WriteBatch { session: None, ops },
                ApplyContext {
                    version: v,
                    position: b"",
                    time_ms: v,
                },
            )
            .expect("apply");
    }
    let query: Vec<f32> = (0..768).map(|_| rng.f32()).collect();
    let bytes = vectors as f64 * 768.0 * 4.0;
    for metric in [Metric::Cosine, Metric::Dot, Metric::L2] {
        black_box(engine.search(&query, 10, metric).expect("search"));
        let samples: Vec<Duration> = (0..20)
            .map(|_| {
                let t = Instant::now();
                black_box(engine.search(&query, 10, metric).expect("search"));
                t.elapsed()
            })
            .collect();
        let mut sorted = samples.clone();
        sorted.sort_unstable();
        let median = sorted[sorted.len() / 2];
        println!(
            "k-NN {metric:?} k=10 over {vectors} x 768: {}  = {:.1} GB/s scanned at the median",
            percentiles(samples),
            bytes / median.as_secs_f64() / 1e9
        );
    }

    // --- this machine's single-core read bandwidth, for comparison.
    let buf: Vec<f32> = (0..(256 << 20)).map(|i| (i % 7) as f32).collect();
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let s: f32 = buf.chunks_exact(16).map(|c| c.iter().sum::<f32>()).sum();
        black_box(s);
        best = best.min(t.elapsed());
    }
    println!(
        "memory read bandwidth (one core, 1 GiB sum): {:.1} GB/s",
        (buf.len() * 4) as f64 / best.as_secs_f64() / 1e9
    );
}
