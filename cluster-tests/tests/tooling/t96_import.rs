//! t96: `sutra import FILE.jsonl` into fresh clusters: every record of a generated file
//! (concepts with 8-value embeddings, attributes, text and binary content; edges) is
//! stored as the file says, two clusters that imported it hold the same records, and
//! `--dry-run` on a file with one bad line names it, writes nothing, and a real import of
//! it is refused before any write. The helpers here are shared with t97.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sutra_client::{Client, ClientConfig, Neighbors, ReadOptions, Scan, TlsFiles};
use sutra_cluster_tests::{ClientRole, Cluster, ClusterOptions, init_tracing, within};
use sutra_proto::storage::Concept;

/// A concept as the tests compare it: content, embedding, attributes (no version: each
/// cluster gives its own).
pub type Stored = (Vec<u8>, Vec<f32>, BTreeMap<String, String>);

/// The records a generated file holds, as the cluster should store them.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    /// Concepts by id.
    pub concepts: BTreeMap<String, Stored>,
    /// Edges as (from, relation, to) → weight bits.
    pub edges: BTreeMap<(String, String, String), u32>,
}

/// Writes `concepts` concepts (ids `<prefix>NNNNN`) and `edges` edges between them to
/// `path` as JSON Lines, edges interleaved with concepts (the import puts every concept
/// first), with a comment and a blank line; returns what the cluster should hold.
pub fn generate(path: &Path, prefix: &str, concepts: usize, edges: usize) -> Content {
    let mut text = String::from("# generated for the import tests\n\n");
    let mut want = Content {
        concepts: BTreeMap::new(),
        edges: BTreeMap::new(),
    };
    for i in 0..concepts.max(edges) {
        if i < concepts {
            let id = format!("{prefix}{i:05}");
            let embedding: Vec<f32> = (0..8)
                .map(|j| ((i * 8 + j) % 97) as f32 / 7.0 - 3.0)
                .collect();
            let mut attributes = BTreeMap::new();
            attributes.insert("n".to_string(), i.to_string());
            if i % 3 == 0 {
                attributes.insert("kind".to_string(), "third".to_string());
            }
            let mut line = serde_json::json!({
                "type": "concept",
                "id": id,
                "embedding": embedding,
                "attributes": attributes,
            });
            let content = if i % 5 == 0 {
                // Bytes that are not UTF-8.
                let bytes = vec![0xff, 0x00, (i % 256) as u8, 0xfe];
                line["content_b64"] = base64(&bytes).into();
                bytes
            } else {
                let t = format!("concept {i}: ünïcödé \"quoted\"\nsecond line");
                line["content"] = t.clone().into();
                t.into_bytes()
            };
            if i % 11 == 0 {
                // An exported version: accepted and ignored.
                line["version"] = 1234.into();
            }
            text.push_str(&line.to_string());
            text.push('\n');
            want.concepts.insert(id, (content, embedding, attributes));
        }
        if i < edges {
            let from = format!("{prefix}{:05}", i % concepts);
            let to = format!("{prefix}{:05}", (i * 7 + 3) % concepts);
            let relation = format!("r{}", i % 3);
            let weight = (i % 10) as f32 / 10.0;
            let mut line = serde_json::json!({
                "type": "edge", "from": from, "to": to, "relation": relation,
            });
            if weight != 1.0 {
                line["weight"] = weight.into();
            }
            text.push_str(&line.to_string());
            text.push('\n');
            want.edges.insert((from, relation, to), weight.to_bits());
        }
    }
    std::fs::write(path, text).expect("writing the import file");
    want
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An SDK client with the reader certificate.
pub fn reader(cluster: &Cluster) -> anyhow::Result<Client> {
    let certs = cluster.certs_dir();
    let r = sutra_certs::CertPaths::client(certs, "reader");
    let tls = TlsFiles {
        ca: sutra_certs::CertPaths::ca(certs).cert,
        cert: r.cert,
        key: r.key,
    };
    Ok(Client::new(ClientConfig::new(cluster.api_addrs(), tls))?)
}

/// Everything the cluster holds once its nodes have converged: every concept (one
/// scan) and the outgoing edges of every concept, read with SESSION consistency at the
/// converged index (so any node serves them, each with all of it), 16 at a time.
pub async fn content(cluster: &Cluster) -> anyhow::Result<Content> {
    use futures_util::{StreamExt as _, TryStreamExt as _};
    let (index, _) = converged(cluster).await?;
    let c = reader(cluster)?;
    let read = ReadOptions::session()
        .session_index(index)
        .deadline(Duration::from_secs(10));
    let all: Vec<Concept> = c
        .scan_all(&Scan::all().page_size(1000), 1_000_000, read)
        .await?;
    let mut got = Content {
        concepts: BTreeMap::new(),
        edges: BTreeMap::new(),
    };
    let c = &c;
    let per_concept: Vec<_> = futures_util::stream::iter(&all)
        .map(|concept| async move {
            let q = Neighbors::of(concept.id.clone());
            c.neighbors_all(&q, 1_000_000, read)
                .await
                .map(|out| (concept.id.clone(), out))
        })
        .buffer_unordered(16)
        .try_collect()
        .await?;
    for (from, out) in per_concept {
        for n in out {
            got.edges
                .insert((from.clone(), n.relation, n.id), n.weight.to_bits());
        }
    }
    for concept in all {
        got.concepts.insert(
            concept.id,
            (
                concept.content,
                concept.embedding,
                concept.attributes.into_iter().collect(),
            ),
        );
    }
    Ok(got)
}

/// The (applied index, content hash) every node of `cluster` agrees on.
pub async fn converged(cluster: &Cluster) -> anyhow::Result<(u64, String)> {
    cluster
        .wait_converged(&cluster.ids(), Duration::from_secs(15))
        .await
}

/// Checks two contents are equal, naming the first difference instead of printing both.
pub fn assert_same(got: &Content, want: &Content, what: &str) {
    assert_eq!(got.concepts.len(), want.concepts.len(), "{what}: concepts");
    for (id, w) in &want.concepts {
        assert_eq!(got.concepts.get(id), Some(w), "{what}: concept {id}");
    }
    assert_eq!(got.edges.len(), want.edges.len(), "{what}: edges");
    for (k, w) in &want.edges {
        assert_eq!(got.edges.get(k), Some(w), "{what}: edge {k:?}");
    }
}

/// A temporary directory for import files.
pub fn files() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().to_owned();
    (dir, path)
}

/// Through the `sutra` binary against two fresh three-node clusters:
/// - `import` of a generated file of 3000 concepts (8-value embeddings, attributes, text
///   content and `content_b64` bytes, some with an exported `version`) and 1500 edges,
///   edges interleaved with concepts in the file, with `--output json`: the summary
///   counts every record, concept, edge and batch, nothing skipped, a rate above zero;
///   a scan and the neighbors of every concept give exactly the file's records, and all
///   three nodes report one content hash;
/// - the same file into a second fresh cluster with other `--parallel` and
///   `--batch-ops`: the same records (the content hash itself cannot be compared across
///   clusters: it covers each cluster's own versions and session table);
/// - importing it again: the progress file says complete, nothing is sent, the content
///   hash does not move;
/// - `--dry-run` of a file whose line 3 has a 4-value embedding: names line 3, exits 1,
///   writes nothing; the real import of it is refused the same way, and the cluster's
///   applied index and content hash have not moved.
///
/// Why: migrating from the single-node server is a JSON Lines export and `sutra import`;
/// an import must store every record as written, and a bad file must change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t96_import_stores_every_record_and_refuses_bad_files() -> anyhow::Result<()> {
    init_tracing();
    within("t96", Duration::from_secs(55), run()).await
}

async fn run() -> anyhow::Result<()> {
    let (_dir, dir) = files();
    let file = dir.join("records.jsonl");
    let want = generate(&file, "m/", 3000, 1500);
    let path = file.to_str().expect("a UTF-8 path");

    let a = Cluster::start(ClusterOptions::default()).await?;
    a.leader(Duration::from_secs(15)).await?;
    tracing::info!("--- import into cluster A");
    let summary = a
        .sutra(
            ClientRole::Writer,
            &["--output", "json", "import", path, "--parallel", "4"],
        )?
        .json()?;
    assert_eq!(summary["records"], 4500, "{summary}");
    assert_eq!(summary["concepts"], 3000, "{summary}");
    assert_eq!(summary["edges"], 1500, "{summary}");
    assert_eq!(summary["dry_run"], false, "{summary}");
    let batches = summary["batches"].as_u64().expect("batches");
    assert!(batches >= 5, "{summary}");
    assert_eq!(summary["sent"], batches, "{summary}");
    assert_eq!(summary["skipped"], 0, "{summary}");
    assert_eq!(summary["deduplicated"], 0, "{summary}");
    assert!(
        summary["seconds"].as_f64().expect("seconds") > 0.0,
        "{summary}"
    );
    assert!(
        summary["records_per_second"].as_f64().expect("rate") > 0.0,
        "{summary}"
    );
    tracing::info!(%summary, "imported into cluster A");
    let progress: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        dir.join("records.jsonl.import-progress"),
    )?)?;
    assert_eq!(progress["complete"], true, "{progress}");
    let got_a = content(&a).await?;
    assert_same(&got_a, &want, "cluster A");
    let (index_a, hash_a) = converged(&a).await?;
    tracing::info!(index_a, hash_a, "cluster A converged");

    tracing::info!("--- importing again does nothing");
    let again = a
        .sutra(ClientRole::Writer, &["--output", "json", "import", path])?
        .json()?;
    assert_eq!(again["already_complete"], true, "{again}");
    assert_eq!(again["sent"], 0, "{again}");
    assert_eq!(converged(&a).await?, (index_a, hash_a.clone()));

    tracing::info!("--- a file with a bad line: dry run and real import refused");
    let bad = dir.join("bad.jsonl");
    std::fs::write(
        &bad,
        [
            r#"{"type":"concept","id":"bad/1","embedding":[1,2,3,4,5,6,7,8]}"#,
            r#"{"type":"concept","id":"bad/2"}"#,
            r#"{"type":"concept","id":"bad/3","embedding":[1,2,3,4]}"#,
            r#"{"type":"edge","from":"bad/1","to":"bad/2","relation":"r"}"#,
        ]
        .join("\n"),
    )?;
    let bad = bad.to_str().expect("a UTF-8 path");
    for args in [&["import", bad, "--dry-run"][..], &["import", bad][..]] {
        let r = a.sutra(ClientRole::Writer, args)?;
        assert_eq!(r.code, Some(1), "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stdout.contains("line 3: embedding: has 4 values"),
            "{args:?}: {}",
            r.stdout
        );
        assert!(
            r.stdout.contains("vector dimension is 8"),
            "{args:?}: {}",
            r.stdout
        );
        assert_eq!(r.stdout.trim().lines().count(), 1, "{args:?}: {}", r.stdout);
        assert!(
            r.stderr.starts_with("error: 1 bad line in "),
            "{args:?}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("nothing was written"),
            "{args:?}: {}",
            r.stderr
        );
        let json = a.sutra(
            ClientRole::Writer,
            &[&["--output", "json"][..], args].concat(),
        )?;
        assert_eq!(json.code, Some(1));
        let report: serde_json::Value = serde_json::from_str(json.stdout.trim())?;
        assert_eq!(report["errors"][0]["line"], 3, "{report}");
    }
    assert!(!dir.join("bad.jsonl.import-progress").exists());
    assert_eq!(
        converged(&a).await?,
        (index_a, hash_a.clone()),
        "the bad file changed the cluster"
    );

    tracing::info!("--- the valid file's dry run");
    let dry = a
        .sutra(
            ClientRole::Writer,
            &["--output", "json", "import", path, "--dry-run"],
        )?
        .json()?;
    assert_eq!(dry["dry_run"], true, "{dry}");
    assert_eq!(dry["records"], 4500, "{dry}");

    tracing::info!("--- the same file into a fresh cluster B, other parallelism and batches");
    let b = Cluster::start(ClusterOptions::default()).await?;
    b.leader(Duration::from_secs(15)).await?;
    std::fs::remove_file(dir.join("records.jsonl.import-progress"))?;
    let summary = b
        .sutra(
            ClientRole::Writer,
            &[
                "--output",
                "json",
                "import",
                path,
                "--parallel",
                "2",
                "--batch-ops",
                "250",
            ],
        )?
        .json()?;
    assert_eq!(summary["batch_ops"], 250, "{summary}");
    assert_eq!(summary["batches"], 18, "{summary}");
    let got_b = content(&b).await?;
    assert_eq!(got_b, got_a, "clusters A and B hold different records");
    let (index_b, hash_b) = converged(&b).await?;
    tracing::info!(index_b, hash_b, "cluster B converged");
    a.finish();
    b.finish();
    Ok(())
}
