//! `sutra bench`: a closed-loop load generator. C tasks, each with its own [`Client`]
//! (its own connections), share N requests; the run stops after N requests or after
//! `--duration`, whichever comes first. Reads need data: `get` and `mixed` first store the
//! keys they read (not timed).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use sutra_client::{Batch, Client, ClientConfig, ReadOptions};
use sutra_proto::storage::Concept;

use crate::args::ReadArgs;
use crate::parse;
use crate::view::View;

/// Flags of `sutra bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// put, get (preloads the keys it reads) or mixed.
    #[arg(value_enum)]
    pub workload: Workload,
    /// Concurrent clients, each with its own connections.
    #[arg(long, default_value_t = 4)]
    pub clients: u32,
    /// Requests in total.
    #[arg(long, default_value_t = 1000)]
    pub requests: u64,
    /// Bytes of content per put.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Mixed: the share of gets, 0..=1.
    #[arg(long, default_value_t = 0.9)]
    pub read_ratio: f64,
    /// Distinct ids written and read.
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// Stop after this many seconds even if requests remain.
    #[arg(long, default_value = "60", value_parser = parse::seconds)]
    pub duration: Duration,
    /// Prefix of the ids used.
    #[arg(long, default_value = "bench/")]
    pub prefix: String,
    #[command(flatten)]
    pub read: ReadArgs,
}

impl BenchArgs {
    /// The bench's parameters for these flags.
    pub fn params(self) -> Params {
        Params {
            workload: self.workload,
            clients: self.clients,
            requests: self.requests,
            value_size: self.value_size,
            read: self.read.options(),
            read_ratio: self.read_ratio,
            keys: self.keys,
            duration: self.duration,
            prefix: self.prefix,
        }
    }
}

/// What the bench does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Put concepts (ids cycle over --keys).
    Put,
    /// Get preloaded concepts.
    Get,
    /// Gets and puts, --read-ratio of them gets.
    Mixed,
}

impl Workload {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Put => "put",
            Self::Get => "get",
            Self::Mixed => "mixed",
        }
    }
}

/// The bench's parameters.
#[derive(Debug, Clone)]
pub struct Params {
    /// What to do.
    pub workload: Workload,
    /// Concurrent tasks, each with its own client.
    pub clients: u32,
    /// Requests in total.
    pub requests: u64,
    /// Bytes of content per put.
    pub value_size: usize,
    /// How reads are served.
    pub read: ReadOptions,
    /// Share of gets in `mixed`, 0..=1.
    pub read_ratio: f64,
    /// Distinct ids written and read.
    pub keys: u64,
    /// Longest the timed run may take.
    pub duration: Duration,
    /// Prefix of the ids.
    pub prefix: String,
}

/// What a run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The command line that ran it.
    pub command: String,
    /// The workload.
    pub workload: Workload,
    /// Concurrent clients.
    pub clients: u32,
    /// Requests completed successfully.
    pub requests: u64,
    /// Requests that failed.
    pub errors: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// Length of the timed run in seconds.
    pub duration_secs: f64,
    /// Successful requests per second.
    pub ops_per_sec: f64,
    /// Latency percentiles of successful requests, in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// True if `--duration` ended the run before every request was sent.
    pub stopped_by_duration: bool,
}

impl View for Report {
    /// The report as a small table.
    fn table(&self) -> String {
        let mut out = format!(
            "command   {}\nworkload  {}  clients {}  requests {}  errors {}\n",
            self.command,
            self.workload.name(),
            self.clients,
            self.requests,
            self.errors
        );
        out.push_str(&format!(
            "duration  {:.3} s  ops/s {:.1}{}\n",
            self.duration_secs,
            self.ops_per_sec,
            if self.stopped_by_duration {
                "  (stopped by --duration)"
            } else {
                ""
            }
        ));
        out.push_str(&format!(
            "latency   p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms
        ));
        if let Some(e) = &self.first_error {
            out.push_str(&format!("\nfirst error  {e}"));
        }
        out
    }
}

/// The `p`th percentile (0..=100) of `sorted` by the nearest-rank method; zero if empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn key(prefix: &str, i: u64) -> String {
    format!("{prefix}{i:08}")
}

fn value(size: usize, i: u64) -> Vec<u8> {
    let seed = (i % 26) as u8;
    (0..size)
        .map(|j| b'a' + (seed + (j % 26) as u8) % 26)
        .collect()
}

/// A small deterministic generator, so that a mixed run's choices need no dependency.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Stores the keys that reads will read, in batches that stay well below the message
/// size limit.
async fn preload(client: &Client, p: &Params) -> anyhow::Result<()> {
    let per_batch = (1_000_000 / p.value_size.max(1)).clamp(1, 500) as u64;
    let mut i = 0;
    while i < p.keys {
        let mut batch = Batch::new();
        for k in i..(i + per_batch).min(p.keys) {
            batch.put(Concept {
                id: key(&p.prefix, k),
                content: value(p.value_size, k),
                ..Concept::default()
            });
        }
        client
            .batch(&batch)
            .await
            .with_context(|| format!("preloading keys {i}.."))?;
        i += per_batch;
    }
    Ok(())
}

/// What one task measured.
#[derive(Default)]
struct TaskResult {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

/// Runs the bench.
pub async fn run(config: ClientConfig, p: Params, command: String) -> anyhow::Result<Report> {
    anyhow::ensure!(p.clients > 0, "--clients must be at least 1");
    anyhow::ensure!(p.keys > 0, "--keys must be at least 1");
    anyhow::ensure!(
        (0.0..=1.0).contains(&p.read_ratio),
        "--read-ratio must be within 0..=1"
    );
    if p.workload != Workload::Put {
        preload(&Client::new(config.clone())?, &p).await?;
    }
    let p = Arc::new(p);
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..p.clients {
        let client = Client::new(config.clone())?;
        let task = Task {
            client,
            p: p.clone(),
            issued: issued.clone(),
            started,
            rng: 0x9E37_79B9_7F4A_7C15_u64 ^ (u64::from(t) + 1),
        };
        tasks.push(tokio::spawn(task.run()));
    }
    let mut all = TaskResult::default();
    for t in tasks {
        let r = t.await.context("a bench task panicked")?;
        all.latencies.extend(r.latencies);
        all.errors += r.errors;
        all.first_error = all.first_error.or(r.first_error);
    }
    Ok(report(&p, command, all, started.elapsed()))
}

/// One of the concurrent clients: it takes request numbers from the shared counter
/// until every request is issued or the run's time is up.
struct Task {
    client: Client,
    p: Arc<Params>,
    issued: Arc<AtomicU64>,
    started: Instant,
    rng: u64,
}

impl Task {
    async fn run(mut self) -> TaskResult {
        let mut r = TaskResult::default();
        while self.started.elapsed() < self.p.duration {
            let i = self.issued.fetch_add(1, Ordering::Relaxed);
            if i >= self.p.requests {
                break;
            }
            let begun = Instant::now();
            match self.request(i).await {
                Ok(()) => r.latencies.push(begun.elapsed()),
                Err(e) => {
                    r.errors += 1;
                    r.first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        r
    }

    /// Request number `i`: a get or a put of key `i % keys`, as the workload says.
    async fn request(&mut self, i: u64) -> Result<(), sutra_client::ClientError> {
        let p = &*self.p;
        let id = key(&p.prefix, i % p.keys);
        let read = match p.workload {
            Workload::Put => false,
            Workload::Get => true,
            Workload::Mixed => {
                (next_random(&mut self.rng) % 10_000) as f64 / 10_000.0 < p.read_ratio
            }
        };
        if !read {
            let concept = Concept {
                id,
                content: value(p.value_size, i),
                ..Concept::default()
            };
            return self.client.put(concept, None).await.map(|_| ());
        }
        match self.client.get_with(&id, p.read).await?.value {
            Some(_) => Ok(()),
            None => Err(sutra_client::ClientError::Status(tonic::Status::not_found(
                format!("{id} is missing"),
            ))),
        }
    }
}

/// The report of a run that took `elapsed`.
fn report(p: &Params, command: String, mut all: TaskResult, elapsed: Duration) -> Report {
    all.latencies.sort_unstable();
    let latencies = &all.latencies;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let ok = latencies.len() as u64;
    Report {
        command,
        workload: p.workload,
        clients: p.clients,
        requests: ok,
        errors: all.errors,
        first_error: all.first_error,
        duration_secs: elapsed.as_secs_f64(),
        ops_per_sec: ok as f64 / elapsed.as_secs_f64().max(1e-9),
        p50_ms: ms(percentile(latencies, 50.0)),
        p90_ms: ms(percentile(latencies, 90.0)),
        p99_ms: ms(percentile(latencies, 99.0)),
        max_ms: ms(latencies.last().copied().unwrap_or_default()),
        stopped_by_duration: ok + all.errors < p.requests,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let d = ms(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&d, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&d, 90.0), Duration::from_millis(90));
        assert_eq!(percentile(&d, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&d, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&d, 0.0), Duration::from_millis(1));
        let few = ms(&[3, 7, 20]);
        assert_eq!(percentile(&few, 50.0), Duration::from_millis(7));
        assert_eq!(percentile(&few, 99.0), Duration::from_millis(20));
        assert_eq!(percentile(&ms(&[4]), 50.0), Duration::from_millis(4));
        assert_eq!(percentile(&[], 99.0), Duration::ZERO);
    }

    #[test]
    fn percentiles_are_ordered() {
        let d = ms(&[1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89]);
        let (p50, p90, p99) = (
            percentile(&d, 50.0),
            percentile(&d, 90.0),
            percentile(&d, 99.0),
        );
        assert!(p50 <= p90 && p90 <= p99 && p99 <= *d.last().unwrap());
    }

    #[test]
    fn the_report_is_a_table_or_its_fields() {
        let p = Params {
            workload: Workload::Put,
            clients: 2,
            requests: 4,
            value_size: 10,
            read: ReadOptions::new(sutra_proto::storage::Consistency::Stale),
            read_ratio: 0.9,
            keys: 4,
            duration: Duration::from_secs(60),
            prefix: "b/".into(),
        };
        let all = TaskResult {
            latencies: ms(&[4, 1, 2]),
            errors: 1,
            first_error: Some("boom".into()),
        };
        let report = report(&p, "sutra bench put".into(), all, Duration::from_secs(2));
        assert_eq!(
            report.table(),
            "command   sutra bench put\n\
             workload  put  clients 2  requests 3  errors 1\n\
             duration  2.000 s  ops/s 1.5\n\
             latency   p50 2.000 ms  p90 4.000 ms  p99 4.000 ms  max 4.000 ms\n\
             first error  boom"
        );
        let j = serde_json::to_value(&report).unwrap();
        assert_eq!(j["workload"], "put");
        assert_eq!(j["requests"], 3);
        assert_eq!(j["errors"], 1);
        assert_eq!(j["first_error"], "boom");
        assert_eq!(j["p50_ms"], 2.0);
        assert_eq!(j["max_ms"], 4.0);
        assert_eq!(j["stopped_by_duration"], false);
    }

    #[test]
    fn values_have_the_asked_size() {
        assert_eq!(value(0, 3).len(), 0);
        assert_eq!(value(1000, 3).len(), 1000);
        assert!(value(50, 9).iter().all(u8::is_ascii_lowercase));
    }
}
