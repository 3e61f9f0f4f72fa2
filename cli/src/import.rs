//! `sutra import FILE.jsonl`: loads a JSON Lines file of concepts and edges
//! ([`crate::jsonl`]) into the cluster, resumably and without applying anything twice.
//!
//! 1. The whole file is read and checked first: every line must parse, every record must
//!    fit the cluster's limits (its vector dimension and content limit, from the
//!    cluster's parameters), no concept or edge may appear twice, and every edge's ends
//!    must be concepts of the file or of the cluster. Any bad line is reported with its
//!    number and nothing is written (`--dry-run` stops here either way).
//! 2. The records are cut into batches, the same for the same file: every concept in
//!    file order, then every edge in file order (so an edge's ends exist when it is
//!    put), at most the cluster's batch limit (or `--batch-ops`) and [`BATCH_BYTES`] per
//!    batch. Batch `i` belongs to writer `i % parallel`, and is sent under client id
//!    `import-<file SHA-256>-<run>-<layout>-w<writer>` with sequence `i / parallel + 1`:
//!    an exactly-once identity that is the same on every run. The writers finish every
//!    concept batch before any sends an edge batch.
//! 3. `FILE.jsonl.import-progress` (beside the input, replaced atomically: temporary
//!    file, fsync, rename) records the run's identity and layout and how many batches each
//!    writer has had acknowledged. A writer records each batch before it sends its next,
//!    so on a rerun at most the one batch per writer that was in flight can have been
//!    applied without being recorded: it is sent again under the same identity and the
//!    cluster answers it from its session table instead of applying it again (counted
//!    as `deduplicated`). Batches recorded as done are skipped.
//! 4. At the end the progress file is kept with `complete: true`: running the same
//!    import again does nothing. Deleting it starts a new run (a new identity) that
//!    writes every record again.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use sutra_client::{Batch, CallOptions, Client, ClientConfig, ClientError, Connector};
use sutra_proto::cluster::ClusterStatusRequest;
use sutra_proto::storage::{Consistency, write_op};

use crate::batch_file::LineError;
use crate::jsonl::{self, Limits, Numbered, Record};
use crate::view::{Output, View, print};

/// Most bytes of ops in one batch (a single larger record gets a batch of its own): well
/// under the nodes' default message limit (64 MiB), so that a batch of large contents
/// is neither refused nor slow to replicate.
pub const BATCH_BYTES: usize = 4 << 20;

/// How often one batch is tried when the cluster is unavailable or slow (each try under
/// the same identity, so it applies at most once).
const TRIES: u32 = 5;

/// The layout version: bumped if the way batches are cut ever changes, so that a
/// progress file of another layout is never resumed.
const LAYOUT: u32 = 1;

/// Flags of `sutra import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The JSON Lines file (docs/migration.md).
    pub file: PathBuf,
    /// Read and check every record against the cluster's limits, report every bad line,
    /// and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Batches in flight at once (one writer each).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub parallel: u32,
    /// Most ops per batch; default and upper bound: the cluster's batch limit.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_ops: Option<u32>,
}

/// Runs the import and prints its summary.
pub async fn run(
    args: ImportArgs,
    config: &ClientConfig,
    client: &Client,
    connector: &Connector,
    output: Output,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let read = jsonl::read(std::io::BufReader::new(file))
        .with_context(|| format!("reading {}", args.file.display()))?;
    let params = cluster_limits(&config.endpoints, connector, config.request_timeout).await?;
    let mut errors = read.errors;
    errors.extend(jsonl::validate(&read.records, params.limits));
    errors.extend(missing_edge_ends(client, &read.records).await?);
    errors.sort_by_key(|e| e.line);
    let concepts = read
        .records
        .iter()
        .filter(|n| matches!(n.record, Record::Concept(_)))
        .count() as u64;
    let mut summary = Summary {
        file: args.file.display().to_string(),
        dry_run: args.dry_run,
        records: read.records.len() as u64,
        concepts,
        edges: read.records.len() as u64 - concepts,
        ..Summary::default()
    };
    if !errors.is_empty() {
        let report = Refused {
            file: summary.file.clone(),
            errors: errors
                .into_iter()
                .map(|e| LineErrorView {
                    line: e.line,
                    reason: e.reason,
                })
                .collect(),
        };
        print(output, &report)?;
        anyhow::bail!(
            "{} bad line{} in {}; nothing was written",
            report.errors.len(),
            if report.errors.len() == 1 { "" } else { "s" },
            args.file.display()
        );
    }
    let progress_path = progress_path(&args.file);
    let mut progress = match Progress::load(&progress_path)? {
        Some(p) => {
            anyhow::ensure!(
                p.file_sha256 == read.sha256,
                "{} belongs to another version of {} (its SHA-256 differs); delete it to import this one",
                progress_path.display(),
                args.file.display()
            );
            p
        }
        None => Progress::new(&read.sha256, &args, params.max_batch_ops),
    };
    let batches = plan(read.records, progress.batch_ops as usize);
    summary.batches = batches.len() as u64;
    summary.parallel = progress.parallel;
    summary.batch_ops = progress.batch_ops;
    if args.dry_run {
        summary.finish(started);
        return print(output, &summary);
    }
    anyhow::ensure!(
        progress.batches == 0 || progress.batches == batches.len() as u64,
        "{} records {} batches where this file makes {}; delete it to start over",
        progress_path.display(),
        progress.batches,
        batches.len()
    );
    progress.batches = batches.len() as u64;
    if progress.complete {
        summary.skipped = summary.batches;
        summary.already_complete = true;
        summary.finish(started);
        return print(output, &summary);
    }
    progress.save(&progress_path)?;
    let bar = progress_bar(output, summary.records);
    let counts = Arc::new(Counts::default());
    let shared = Arc::new(Shared {
        progress: std::sync::Mutex::new(progress),
        path: progress_path.clone(),
        failed: AtomicBool::new(false),
        counts: counts.clone(),
        bar: bar.clone(),
    });
    let batches = Arc::new(batches);
    // Every concept batch before any edge batch.
    let first_edge = batches
        .iter()
        .position(|b| b.edges)
        .unwrap_or(batches.len());
    for phase in [0..first_edge, first_edge..batches.len()] {
        let mut writers = tokio::task::JoinSet::new();
        let parallel = shared.layout().1;
        for w in 0..parallel {
            let mut config = config.clone();
            config.client_id = Some(shared.client_id(w));
            let client = Client::new(config)?;
            let (shared, batches, phase) = (shared.clone(), batches.clone(), phase.clone());
            writers.spawn(async move { write(w, client, &shared, &batches, phase).await });
        }
        let mut first_error = None;
        while let Some(done) = writers.join_next().await {
            if let Err(e) = done.context("an import writer panicked").and_then(|r| r) {
                shared.failed.store(true, Ordering::Release);
                first_error.get_or_insert(e);
            }
        }
        if let Some(e) = first_error {
            bar.abandon();
            return Err(e.context(format!(
                "import stopped; what was acknowledged is recorded in {}: run the same command again to resume",
                progress_path.display()
            )));
        }
    }
    {
        let mut p = shared.progress.lock().unwrap_or_else(|p| p.into_inner());
        p.complete = true;
        p.save(&progress_path)?;
    }
    bar.finish_and_clear();
    summary.sent = counts.sent.load(Ordering::Acquire);
    summary.deduplicated = counts.deduplicated.load(Ordering::Acquire);
    summary.skipped = counts.skipped.load(Ordering::Acquire);
    summary.finish(started);
    print(output, &summary)
}

/// The cluster's parameters an import needs.
struct ClusterParams {
    limits: Limits,
    max_batch_ops: u32,
}

/// Asks the nodes in turn for the cluster's parameters (`ClusterService.Status`).
async fn cluster_limits(
    endpoints: &[String],
    connector: &Connector,
    timeout: Duration,
) -> anyhow::Result<ClusterParams> {
    let mut last = anyhow::anyhow!("no endpoints");
    for ep in endpoints {
        let asked = async {
            let mut c = connector.cluster(ep).await?;
            anyhow::Ok(c.status(ClusterStatusRequest {}).await?.into_inner())
        };
        match tokio::time::timeout(timeout, asked).await {
            Ok(Ok(st)) => match st.params {
                Some(p) => {
                    return Ok(ClusterParams {
                        limits: Limits {
                            vector_dimension: p.vector_dimension,
                            max_content_bytes: p.max_content_bytes,
                        },
                        max_batch_ops: p.max_batch_ops.max(1),
                    });
                }
                None => {
                    last = anyhow::anyhow!("{ep}: the cluster's parameters are not applied yet")
                }
            },
            Ok(Err(e)) => last = e.context(ep.clone()),
            Err(_) => last = anyhow::anyhow!("{ep}: no answer within {timeout:?}"),
        }
    }
    Err(last.context("asking the cluster for its parameters"))
}

/// Edges whose ends are neither concepts of the file nor in the cluster (each such id
/// is looked up once).
async fn missing_edge_ends(
    client: &Client,
    records: &[Numbered],
) -> anyhow::Result<Vec<LineError>> {
    let in_file: std::collections::HashSet<&str> = records
        .iter()
        .filter_map(|n| match &n.record {
            Record::Concept(c) => Some(c.id.as_str()),
            Record::Edge(_) => None,
        })
        .collect();
    let mut known: std::collections::HashMap<&str, bool> = std::collections::HashMap::new();
    let mut errors = Vec::new();
    for n in records {
        let Record::Edge(e) = &n.record else { continue };
        for (end, id) in [("from", e.from.as_str()), ("to", e.to.as_str())] {
            if id.is_empty() || in_file.contains(id) {
                continue;
            }
            let exists = match known.get(id) {
                Some(&x) => x,
                None => {
                    let x = client
                        .get(id, Consistency::Linearizable)
                        .await
                        .with_context(|| format!("looking up concept {id:?}"))?
                        .is_some();
                    known.insert(id, x);
                    x
                }
            };
            if !exists {
                errors.push(LineError {
                    line: n.line,
                    reason: format!(
                        "{end}: concept {id:?} is neither in the file nor in the cluster"
                    ),
                });
                break;
            }
        }
    }
    Ok(errors)
}

/// One batch of the import.
#[derive(Debug, Clone, PartialEq)]
struct Planned {
    batch: Batch,
    /// True for a batch of edges (they come after every concept batch).
    edges: bool,
    records: u64,
    /// First and last line of the file it holds.
    lines: (usize, usize),
}

/// Cuts the records into batches: every concept in file order, then every edge in file
/// order, at most `max_ops` ops and [`BATCH_BYTES`] each. Depends only on the records.
fn plan(records: Vec<Numbered>, max_ops: usize) -> Vec<Planned> {
    let (concepts, edges): (Vec<_>, Vec<_>) = records
        .into_iter()
        .partition(|n| matches!(n.record, Record::Concept(_)));
    let mut out = Vec::new();
    for (is_edges, records) in [(false, concepts), (true, edges)] {
        let mut current: Option<(Planned, usize)> = None;
        for n in records {
            let op = match n.record {
                Record::Concept(mut c) => {
                    c.version = 0;
                    write_op::Op::PutConcept(sutra_proto::storage::PutConceptOp {
                        concept: Some(c),
                        expected_version: None,
                    })
                }
                Record::Edge(e) => {
                    write_op::Op::PutEdge(sutra_proto::storage::PutEdgeOp { edge: Some(e) })
                }
            };
            // The op, and at most 6 bytes of its WriteOp's tag and length.
            let size = op.encoded_len() + 6;
            let full = current
                .as_ref()
                .is_some_and(|(p, bytes)| p.batch.len() >= max_ops || bytes + size > BATCH_BYTES);
            if full {
                out.extend(current.take().map(|(p, _)| p));
            }
            let (p, bytes) = current.get_or_insert_with(|| {
                (
                    Planned {
                        batch: Batch::new(),
                        edges: is_edges,
                        records: 0,
                        lines: (n.line, n.line),
                    },
                    0,
                )
            });
            p.batch.push(op);
            p.records += 1;
            p.lines.1 = n.line;
            *bytes += size;
        }
        out.extend(current.map(|(p, _)| p));
    }
    out
}

/// Counters of the run, for the summary.
#[derive(Debug, Default)]
struct Counts {
    /// Batches sent and applied now.
    sent: AtomicU64,
    /// Batches sent again that the cluster had applied before (answered from its
    /// session table, or refused as older than the writer's last applied batch).
    deduplicated: AtomicU64,
    /// Batches the progress file recorded as done, not sent.
    skipped: AtomicU64,
}

/// What the writers share.
struct Shared {
    progress: std::sync::Mutex<Progress>,
    path: PathBuf,
    failed: AtomicBool,
    counts: Arc<Counts>,
    bar: indicatif::ProgressBar,
}

impl Shared {
    fn layout(&self) -> (u32, u32) {
        let p = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        (p.batch_ops, p.parallel)
    }

    fn client_id(&self, writer: u32) -> String {
        let p = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        p.client_id(writer)
    }

    /// How many of `writer`'s batches are recorded as done.
    fn done(&self, writer: u32) -> u64 {
        let p = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        p.done.get(writer as usize).copied().unwrap_or(0)
    }

    /// Records one more of `writer`'s batches as done, on disk.
    fn record(&self, writer: u32) -> anyhow::Result<()> {
        let mut p = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        p.done[writer as usize] += 1;
        p.save(&self.path)
    }
}

/// One writer: its batches of `phase` in order, each recorded before the next is sent.
async fn write(
    w: u32,
    client: Client,
    shared: &Shared,
    batches: &[Planned],
    phase: std::ops::Range<usize>,
) -> anyhow::Result<()> {
    let parallel = shared.layout().1 as usize;
    for i in phase.filter(|i| i % parallel == w as usize) {
        if shared.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        let b = &batches[i];
        let sequence = (i / parallel) as u64 + 1;
        if sequence <= shared.done(w) {
            shared.counts.skipped.fetch_add(1, Ordering::AcqRel);
            shared.bar.inc(b.records);
            continue;
        }
        let deduplicated = send(&client, b, sequence)
            .await
            .with_context(|| format!("batch {i} (lines {}-{})", b.lines.0, b.lines.1))?;
        shared.record(w)?;
        let counter = if deduplicated {
            &shared.counts.deduplicated
        } else {
            &shared.counts.sent
        };
        counter.fetch_add(1, Ordering::AcqRel);
        shared.bar.inc(b.records);
    }
    Ok(())
}

/// Sends one batch under its identity, trying again while the cluster is unavailable.
/// Returns whether the cluster had applied it before.
async fn send(client: &Client, b: &Planned, sequence: u64) -> anyhow::Result<bool> {
    let mut tries = 0;
    loop {
        tries += 1;
        match client
            .batch_at(&b.batch, sequence, CallOptions::new())
            .await
        {
            Ok(outcome) => return Ok(outcome.write.deduplicated),
            // This writer's later batch was applied, which it sends only after this one
            // was acknowledged: this one was applied too.
            Err(e) if applied_before(&e) => return Ok(true),
            Err(e) if e.is_transient() && tries < TRIES => {
                tokio::time::sleep(Duration::from_millis(200 * u64::from(tries))).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// True if the cluster refused the batch as older than its writer's last applied one.
fn applied_before(e: &ClientError) -> bool {
    match e {
        ClientError::OutcomeUnknown { .. } => true,
        ClientError::Conflict { message } => message.contains("is older than its last"),
        _ => false,
    }
}

/// A bar on a terminal (table output only); hidden otherwise.
fn progress_bar(output: Output, records: u64) -> indicatif::ProgressBar {
    if output != Output::Table || !std::io::stdout().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(records);
    let style = indicatif::ProgressStyle::with_template(
        "{bar:40} {pos}/{len} records  {per_sec}  eta {eta}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// `FILE.import-progress` beside `FILE`.
pub fn progress_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".import-progress");
    PathBuf::from(name)
}

/// The progress file: the run's identity and layout, and what is done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Progress {
    /// SHA-256 of the input file.
    file_sha256: String,
    /// Chosen when the run began; part of every writer's client id.
    run: String,
    /// How batches were cut ([`LAYOUT`]).
    layout: u32,
    batch_ops: u32,
    parallel: u32,
    /// Batches in all.
    batches: u64,
    /// Per writer: how many of its batches (in order) the cluster has acknowledged.
    done: Vec<u64>,
    /// Every batch is done.
    complete: bool,
}

impl Progress {
    fn new(sha256: &str, args: &ImportArgs, max_batch_ops: u32) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let run = format!("{:x}", nanos ^ (u128::from(std::process::id()) << 64));
        let batch_ops = args.batch_ops.unwrap_or(max_batch_ops).min(max_batch_ops);
        Self {
            file_sha256: sha256.to_string(),
            run,
            layout: LAYOUT,
            batch_ops,
            parallel: args.parallel,
            batches: 0,
            done: vec![0; args.parallel as usize],
            complete: false,
        }
    }

    fn client_id(&self, writer: u32) -> String {
        format!(
            "import-{}-{}-l{}b{}p{}-w{writer}",
            &self.file_sha256[..32.min(self.file_sha256.len())],
            self.run,
            self.layout,
            self.batch_ops,
            self.parallel
        )
    }

    fn load(path: &Path) -> anyhow::Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let p: Self = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a progress file of this version; delete it to start over",
                path.display()
            )
        })?;
        anyhow::ensure!(
            p.layout == LAYOUT && p.done.len() == p.parallel as usize && p.batch_ops >= 1,
            "{} was written by another version of sutra; delete it to start over",
            path.display()
        );
        Ok(Some(p))
    }

    /// Replaces the file atomically: a temporary file beside it, fsync, rename, fsync of
    /// the directory.
    fn save(&self, path: &Path) -> anyhow::Result<()> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            serde_json::to_writer(&mut f, self)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            std::fs::File::open(dir)?.sync_all()
        };
        write().with_context(|| format!("writing {}", path.display()))
    }
}

/// The summary of an import (or of a dry run).
#[derive(Debug, Default, Serialize)]
struct Summary {
    file: String,
    dry_run: bool,
    records: u64,
    concepts: u64,
    edges: u64,
    /// Batches in all.
    batches: u64,
    batch_ops: u32,
    parallel: u32,
    /// Batches applied by this run.
    sent: u64,
    /// Batches recorded as done by an earlier run, not sent.
    skipped: u64,
    /// Batches an earlier run had applied without recording them, sent again and not
    /// applied again.
    deduplicated: u64,
    /// The progress file said the import was complete already; nothing was sent.
    already_complete: bool,
    seconds: f64,
    records_per_second: f64,
}

impl Summary {
    /// Sets the time taken and the rate (records written, or checked, per second).
    fn finish(&mut self, started: Instant) {
        let seconds = started.elapsed().as_secs_f64();
        self.seconds = (seconds * 1000.0).round() / 1000.0;
        if seconds > 0.0 {
            self.records_per_second = (self.records as f64 / seconds).round();
        }
    }
}

impl View for Summary {
    fn table(&self) -> String {
        if self.dry_run {
            return format!(
                "{}: {} records ({} concepts, {} edges) are valid; {} batches of at most {} ops; nothing was written",
                self.file, self.records, self.concepts, self.edges, self.batches, self.batch_ops
            );
        }
        if self.already_complete {
            return format!(
                "{}: already imported (its progress file says complete); nothing was sent",
                self.file
            );
        }
        format!(
            "{}: {} records ({} concepts, {} edges) in {} batches: {} sent, {} skipped as done, {} already applied; {:.1} s, {:.0} records/s",
            self.file,
            self.records,
            self.concepts,
            self.edges,
            self.batches,
            self.sent,
            self.skipped,
            self.deduplicated,
            self.seconds,
            self.records_per_second
        )
    }
}

/// Bad lines: the import was refused before anything was written.
#[derive(Debug, Serialize)]
struct Refused {
    file: String,
    errors: Vec<LineErrorView>,
}

#[derive(Debug, Serialize)]
struct LineErrorView {
    line: usize,
    reason: String,
}

impl View for Refused {
    fn table(&self) -> String {
        let lines: Vec<_> = self
            .errors
            .iter()
            .map(|e| format!("{}: line {}: {}", self.file, e.line, e.reason))
            .collect();
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sutra_proto::storage::{Concept, Edge};

    fn records(concepts: usize, edges: usize, content: usize) -> Vec<Numbered> {
        let mut out = Vec::new();
        // Edges and concepts interleaved in the file: the plan still puts concepts first.
        for i in 0..concepts.max(edges) {
            if i < edges {
                out.push(Record::Edge(Edge {
                    from: format!("c{}", i % concepts),
                    to: "c0".into(),
                    relation: "r".into(),
                    weight: 1.0,
                }));
            }
            if i < concepts {
                out.push(Record::Concept(Concept {
                    id: format!("c{i}"),
                    content: vec![b'x'; content],
                    version: 9,
                    ..Concept::default()
                }));
            }
        }
        out.into_iter()
            .enumerate()
            .map(|(i, record)| Numbered {
                line: i + 1,
                record,
            })
            .collect()
    }

    #[test]
    fn batches_hold_concepts_then_edges_within_the_limits_and_are_the_same_every_time() {
        let r = records(25, 12, 10);
        let p = plan(r.clone(), 10);
        assert_eq!(p, plan(r, 10));
        let sizes: Vec<_> = p.iter().map(|b| (b.edges, b.batch.len())).collect();
        assert_eq!(
            sizes,
            [(false, 10), (false, 10), (false, 5), (true, 10), (true, 2)]
        );
        assert_eq!(p.iter().map(|b| b.records).sum::<u64>(), 37);
        // The source's version is not sent.
        for b in &p {
            for op in b.batch.ops() {
                if let Some(write_op::Op::PutConcept(c)) = &op.op {
                    assert_eq!(c.concept.as_ref().unwrap().version, 0);
                }
            }
        }
        // Large contents: BATCH_BYTES bounds a batch before the op count does.
        let big = records(5, 0, BATCH_BYTES / 2 + 1);
        let sizes: Vec<_> = plan(big, 1000).iter().map(|b| b.batch.len()).collect();
        assert_eq!(sizes, [1, 1, 1, 1, 1]);
    }

    #[test]
    fn a_refusal_as_older_than_the_last_batch_means_applied_before() {
        // The cluster's message for a sequence below the session's last.
        let stale = ClientError::Conflict {
            message: "sequence 3 of client \"w/import-x-w0\" is older than its last (4)".into(),
        };
        assert!(applied_before(&stale));
        let missing_end = ClientError::Conflict {
            message: "ops[0]: edge end \"x\" does not exist".into(),
        };
        assert!(!applied_before(&missing_end));
        assert!(applied_before(&ClientError::OutcomeUnknown {
            message: "retry refused as stale".into()
        }));
    }

    #[test]
    fn the_progress_file_is_replaced_whole_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("data.jsonl");
        let path = progress_path(&input);
        assert_eq!(path, dir.path().join("data.jsonl.import-progress"));
        assert_eq!(Progress::load(&path).unwrap(), None);
        let args = ImportArgs {
            file: input,
            dry_run: false,
            parallel: 3,
            batch_ops: Some(5000),
        };
        let mut p = Progress::new(&"ab".repeat(32), &args, 1000);
        assert_eq!(p.batch_ops, 1000, "never above the cluster's limit");
        p.done[2] = 7;
        p.save(&path).unwrap();
        assert_eq!(Progress::load(&path).unwrap(), Some(p.clone()));
        assert!(!dir.path().join("data.jsonl.import-progress.tmp").exists());
        let ids: Vec<_> = (0..3).map(|w| p.client_id(w)).collect();
        assert!(
            ids.iter()
                .all(|id| id.len() <= sutra_proto::limits::MAX_CLIENT_ID_BYTES)
        );
        assert_ne!(ids[0], ids[1]);
        std::fs::write(&path, "{\"not\":1}").unwrap();
        assert!(Progress::load(&path).is_err());
    }
}
