//! `sutra export FILE.jsonl`: every concept and edge of the store at one point in time,
//! as the JSON Lines that `sutra import` reads (`jsonl.rs`). The point in time is a
//! backup: `--from-backup BACKUP` exports an existing one (offline, no cluster needed);
//! without it a backup is taken first (admin certificate) into a temporary file beside
//! the output, so the export is consistent at the backup's index while writes go on.
//! Concepts come first in id order, then every edge, so an import can replay them as
//! they are. Written to `FILE.jsonl.partial`, then renamed.

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sutra_backup::BackupReader;
use sutra_engine::{Direction, ScanRange};
use sutra_proto::storage::{Concept, Edge};

use crate::connect::Connection;
use crate::jsonl::{Record, write_jsonl};
use crate::view::{Output, View, print};

/// Concepts read from the store per page.
const PAGE: usize = 1000;

/// Flags of `sutra export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The JSON Lines file to write.
    pub file: PathBuf,
    /// Export this backup file instead of taking a backup of the cluster now.
    #[arg(long)]
    pub from_backup: Option<PathBuf>,
    /// Where the scratch store is built (needs room for the data; default: the output
    /// file's directory).
    #[arg(long)]
    pub scratch_dir: Option<PathBuf>,
}

/// What `export` wrote.
#[derive(Debug, Serialize)]
pub struct Exported {
    pub file: String,
    /// The backup's cluster and index: the point in time exported.
    pub cluster_id: String,
    pub applied_index: u64,
    pub concepts: u64,
    pub edges: u64,
}

impl View for Exported {
    fn table(&self) -> String {
        format!(
            "exported {} concepts and {} edges of cluster {} at index {} to {}",
            self.concepts, self.edges, self.cluster_id, self.applied_index, self.file
        )
    }
}

/// Runs the export; connects (through `connect`) only to take a backup.
pub async fn run(
    args: &ExportArgs,
    connect: impl FnOnce() -> anyhow::Result<Connection>,
    output: Output,
) -> anyhow::Result<()> {
    let dir = args
        .scratch_dir
        .clone()
        .or_else(|| args.file.parent().map(Path::to_path_buf))
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let taken = match &args.from_backup {
        Some(b) => (b.clone(), None),
        None => {
            let conn = connect()?;
            let tmp = tempfile::Builder::new()
                .prefix(".sutra-export-")
                .suffix(".sutra-backup")
                .tempfile_in(&dir)?
                .into_temp_path();
            crate::backup::save(&tmp, 0, false, &conn.endpoints, &conn.connector).await?;
            (tmp.to_path_buf(), Some(tmp))
        }
    };
    let (file, scratch) = (args.file.clone(), dir.clone());
    let exported = tokio::task::spawn_blocking(move || export(&taken.0, &file, &scratch)).await??;
    print(output, &exported)
}

/// Writes every record of the backup at `backup` into `file`.
fn export(backup: &Path, file: &Path, scratch: &Path) -> anyhow::Result<Exported> {
    let reader = BackupReader::open(backup)?;
    let store = tempfile::Builder::new()
        .prefix(".sutra-export-store-")
        .tempdir_in(scratch)?;
    let (engine, _) = sutra_backup::install(&reader, &store.path().join("store"), None)?;
    let partial = file.with_extension("jsonl.partial");
    let mut out = BufWriter::new(std::fs::File::create(&partial)?);
    let all = ScanRange::Prefix(String::new());
    let (mut concepts, mut edges) = (0u64, 0u64);
    each_page(
        |token| {
            let page = engine.scan(&all, PAGE, token, false)?;
            Ok((page.concepts, page.next_page_token))
        },
        |page| {
            concepts += page.len() as u64;
            let records: Vec<Record> = page.into_iter().map(concept_record).collect();
            Ok(write_jsonl(&records, &mut out)?)
        },
    )?;
    // Then every edge, once all concepts are written: an import replays them in order.
    each_page(
        |token| {
            let page = engine.scan(&all, PAGE, token, true)?;
            Ok((page.concepts, page.next_page_token))
        },
        |page| {
            for c in page {
                each_page(
                    |token| {
                        let page = engine.neighbors(&c.id, Direction::Out, None, PAGE, token)?;
                        Ok((page.neighbors, page.next_page_token))
                    },
                    |page| {
                        edges += page.len() as u64;
                        let records: Vec<Record> = page
                            .into_iter()
                            .map(|e| {
                                Record::Edge(Edge {
                                    from: c.id.clone(),
                                    to: e.id,
                                    relation: e.relation,
                                    weight: e.weight,
                                })
                            })
                            .collect();
                        Ok(write_jsonl(&records, &mut out)?)
                    },
                )?;
            }
            Ok(())
        },
    )?;
    let f = out.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    std::fs::rename(&partial, file)?;
    let m = reader.manifest();
    Ok(Exported {
        file: file.display().to_string(),
        cluster_id: m.cluster_id.clone(),
        applied_index: m.applied_index,
        concepts,
        edges,
    })
}

/// Reads pages from the first on (`page` gets the previous page's token) and hands each
/// page's items to `each`, until a page has no next token.
fn each_page<T>(
    mut page: impl FnMut(Option<&str>) -> anyhow::Result<(Vec<T>, Option<String>)>,
    mut each: impl FnMut(Vec<T>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut token = None::<String>;
    loop {
        let (items, next) = page(token.as_deref())?;
        each(items)?;
        match next {
            Some(t) => token = Some(t),
            None => return Ok(()),
        }
    }
}

/// The JSON Lines record of a stored concept.
fn concept_record(c: sutra_engine::Concept) -> Record {
    Record::Concept(Concept {
        id: c.id,
        content: c.content,
        embedding: c.embedding,
        attributes: c.attributes.into_iter().collect(),
        version: c.version,
    })
}
