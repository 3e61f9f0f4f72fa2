//! The data commands: `put`, `get`, `delete`, `scan`, `edge`, `neighbors`, `search` and
//! `batch`, their flags, and the calls they make through the SDK.

mod view;

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use sutra_client::{Client, Neighbors, Scan, Search};
use sutra_proto::storage::{Concept, Direction, Edge, Metric};

use crate::args::ReadArgs;
use crate::view::{Lines, Output, print};
use crate::{batch_file, parse};
use view::{
    BatchView, ConceptView, DeleteView, EdgeDeleteView, EdgePutView, GetView, HitView,
    NeighborView, PutView, ScanView,
};

const BATCH_HELP: &str = "\
The file holds one JSON op per line (JSON Lines); all lines are sent as one atomic batch:
  {\"op\":\"put\",\"id\":\"a\",\"content\":\"text\",\"embedding\":[0.1,0.2],\"attributes\":{\"k\":\"v\"},\"expected_version\":0}
  {\"op\":\"delete\",\"id\":\"a\",\"expected_version\":3}
  {\"op\":\"put_edge\",\"from\":\"a\",\"to\":\"b\",\"relation\":\"cites\",\"weight\":0.5}
  {\"op\":\"delete_edge\",\"from\":\"a\",\"to\":\"b\",\"relation\":\"cites\"}
  {\"op\":\"check\",\"id\":\"a\",\"expected_version\":0}
Only op and ids are required (check also needs expected_version); content defaults to \"\",
weight to 1.0, expected_version to none (unconditional; 0 = must not exist). Blank lines and
lines starting with # are skipped. A bad line is reported with its number and nothing is sent.";

/// The data commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Put a concept.
    Put(PutArgs),
    /// Get a concept.
    Get(GetArgs),
    /// Delete a concept and its edges.
    Delete(DeleteArgs),
    /// List concepts in id order, all pages up to --limit.
    Scan(ScanArgs),
    /// Put or delete an edge.
    Edge {
        #[command(subcommand)]
        action: EdgeAction,
    },
    /// List the edges of a concept (all pages up to --limit).
    Neighbors(NeighborsArgs),
    /// Exact k-nearest-neighbour search over embeddings.
    Search(SearchArgs),
    /// Apply the ops of a JSON Lines file as one atomic batch.
    #[command(after_help = BATCH_HELP)]
    Batch {
        /// The ops file; `-` reads standard input.
        #[arg(long)]
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct PutArgs {
    /// Concept id.
    pub id: String,
    /// Content (UTF-8).
    #[arg(long, default_value = "")]
    pub content: String,
    /// Embedding: comma-separated numbers or a JSON array.
    #[arg(long, value_parser = parse::vector, allow_hyphen_values = true)]
    pub embedding: Option<parse::Vector>,
    /// An attribute, key=value; repeat for more.
    #[arg(long = "attr", value_parser = parse::attribute)]
    pub attrs: Vec<(String, String)>,
    /// Only if the concept is at this version (0: only if it does not exist).
    #[arg(long)]
    pub expected_version: Option<u64>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Concept id.
    pub id: String,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Concept id.
    pub id: String,
    /// Only if the concept is at this version.
    #[arg(long)]
    pub expected_version: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Only ids starting with this prefix.
    #[arg(long, conflicts_with_all = ["start", "end"])]
    pub prefix: Option<String>,
    /// Only ids >= this (bytewise).
    #[arg(long)]
    pub start: Option<String>,
    /// Only ids < this (bytewise).
    #[arg(long)]
    pub end: Option<String>,
    /// At most this many concepts.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Concepts per request (1..=10000).
    #[arg(long, default_value_t = 100)]
    pub page_size: u32,
    /// Only ids and versions.
    #[arg(long)]
    pub keys_only: bool,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Subcommand)]
pub enum EdgeAction {
    /// Create an edge or replace its weight (both concepts must exist).
    Put {
        /// Source concept id.
        from: String,
        /// Target concept id.
        to: String,
        /// Relation label.
        relation: String,
        /// Weight.
        #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
        weight: f32,
    },
    /// Delete an edge.
    Delete {
        /// Source concept id.
        from: String,
        /// Target concept id.
        to: String,
        /// Relation label.
        relation: String,
    },
}

/// Which edges of a concept (`--direction`).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Dir {
    Out,
    In,
    Both,
}

#[derive(Debug, Args)]
pub struct NeighborsArgs {
    /// Concept id.
    pub id: String,
    /// Which edges.
    #[arg(long, value_enum, default_value = "out")]
    pub direction: Dir,
    /// Only edges with this relation.
    #[arg(long)]
    pub relation: Option<String>,
    /// At most this many edges.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
    #[command(flatten)]
    pub read: ReadArgs,
}

/// A search's score function (`--metric`).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MetricArg {
    Cosine,
    Dot,
    L2,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Query vector: comma-separated numbers or a JSON array.
    #[arg(long, value_parser = parse::vector, allow_hyphen_values = true)]
    pub vector: parse::Vector,
    /// Number of hits.
    #[arg(long, default_value_t = 10)]
    pub k: u32,
    /// Score function.
    #[arg(long, value_enum, default_value = "cosine")]
    pub metric: MetricArg,
    /// Print each hit's content too.
    #[arg(long)]
    pub include_concepts: bool,
    #[command(flatten)]
    pub read: ReadArgs,
}

/// Runs a data command and prints its answer.
pub async fn run(command: Command, client: &Client, output: Output) -> anyhow::Result<()> {
    match command {
        Command::Put(a) => print(output, &put(client, a).await?),
        Command::Get(a) => print(output, &get(client, a).await?),
        Command::Delete(a) => print(output, &delete(client, a).await?),
        Command::Scan(a) => print(output, &scan(client, a).await?),
        Command::Edge {
            action:
                EdgeAction::Put {
                    from,
                    to,
                    relation,
                    weight,
                },
        } => {
            let edge = Edge {
                from,
                to,
                relation,
                weight,
            };
            print(output, &put_edge(client, edge).await?)
        }
        Command::Edge {
            action: EdgeAction::Delete { from, to, relation },
        } => print(output, &delete_edge(client, from, to, relation).await?),
        Command::Neighbors(a) => print(output, &neighbors(client, a).await?),
        Command::Search(a) => print(output, &search(client, a).await?),
        Command::Batch { file } => print(output, &batch(client, &file).await?),
    }
}

async fn put(client: &Client, a: PutArgs) -> anyhow::Result<PutView> {
    let concept = Concept {
        id: a.id.clone(),
        content: a.content.into_bytes(),
        embedding: a.embedding.map(|v| v.0).unwrap_or_default(),
        attributes: a.attrs.into_iter().collect(),
        version: 0,
    };
    let w = client.put(concept, a.expected_version).await?;
    Ok(PutView::new(a.id, &w))
}

async fn get(client: &Client, a: GetArgs) -> anyhow::Result<GetView> {
    let r = client.get_with(&a.id, a.read.options()).await?;
    let Some(c) = r.value else {
        anyhow::bail!("concept {:?} not found", a.id);
    };
    Ok(GetView {
        concept: c.into(),
        meta: (&r.meta).into(),
    })
}

async fn delete(client: &Client, a: DeleteArgs) -> anyhow::Result<DeleteView> {
    let existed = client.delete(&a.id, a.expected_version).await?;
    Ok(DeleteView { id: a.id, existed })
}

async fn scan(client: &Client, a: ScanArgs) -> anyhow::Result<ScanView> {
    let scan = match (a.prefix, a.start, a.end) {
        (Some(p), _, _) => Scan::prefix(p),
        (None, None, None) => Scan::all(),
        (None, start, end) => Scan::range(start.unwrap_or_default(), end),
    }
    .page_size(a.page_size)
    .keys_only(a.keys_only);
    let concepts = client.scan_all(&scan, a.limit, a.read.options()).await?;
    Ok(ScanView {
        concepts: concepts.into_iter().map(ConceptView::from).collect(),
        keys_only: a.keys_only,
    })
}

async fn put_edge(client: &Client, edge: Edge) -> anyhow::Result<EdgePutView> {
    let w = client.put_edge(edge.clone()).await?;
    Ok(EdgePutView {
        from: edge.from,
        to: edge.to,
        relation: edge.relation,
        weight: edge.weight,
        version: w.version,
    })
}

async fn delete_edge(
    client: &Client,
    from: String,
    to: String,
    relation: String,
) -> anyhow::Result<EdgeDeleteView> {
    let existed = client.delete_edge(&from, &to, &relation).await?;
    Ok(EdgeDeleteView {
        from,
        to,
        relation,
        existed,
    })
}

async fn neighbors(client: &Client, a: NeighborsArgs) -> anyhow::Result<Lines<NeighborView>> {
    let mut q = Neighbors::of(a.id).direction(match a.direction {
        Dir::Out => Direction::Out,
        Dir::In => Direction::In,
        Dir::Both => Direction::Both,
    });
    if let Some(r) = a.relation {
        q = q.relation(r);
    }
    let edges = client.neighbors_all(&q, a.limit, a.read.options()).await?;
    Ok(Lines(edges.into_iter().map(NeighborView::from).collect()))
}

async fn search(client: &Client, a: SearchArgs) -> anyhow::Result<Lines<HitView>> {
    let q = Search::new(a.vector.0, a.k)
        .metric(match a.metric {
            MetricArg::Cosine => Metric::Cosine,
            MetricArg::Dot => Metric::Dot,
            MetricArg::L2 => Metric::L2,
        })
        .include_concepts(a.include_concepts);
    let hits = client.search(&q, a.read.options()).await?.value;
    Ok(Lines(hits.into_iter().map(HitView::from).collect()))
}

/// Parses the whole file before sending anything, so that a bad line applies nothing.
async fn batch(client: &Client, file: &Path) -> anyhow::Result<BatchView> {
    let text = if file.as_os_str() == "-" {
        let mut t = String::new();
        std::io::stdin()
            .read_to_string(&mut t)
            .context("reading standard input")?;
        t
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    let batch = batch_file::parse(&text).with_context(|| format!("{}", file.display()))?;
    Ok(client.batch(&batch).await?.into())
}
