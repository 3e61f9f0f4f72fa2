//! Embeddings and exact k-nearest-neighbour search: stores a few concepts with vectors of
//! the cluster's dimension, searches them by cosine similarity and L2 distance, and lists
//! them with a paginated scan. Runs against the local cluster that `make run` (or
//! `sutra local start`) starts.
//!
//! ```sh
//! sutra local start
//! cargo run -p sutra-client --example search -- .sutra/local/cluster.json [dimension]
//! ```
//!
//! The dimension must be the cluster's `--vector-dimension` (default 768).

use sutra_client::{Batch, Client, ReadOptions, Scan, Search};
use sutra_proto::storage::{Concept, Metric};

fn client_from(path: &str) -> Result<Client, Box<dyn std::error::Error>> {
    let config = sutra_devcluster::ClusterFile::read(path.as_ref())?.client_config("writer");
    Ok(Client::new(config)?)
}

/// A vector that points mostly along `axis`, with a little of the next axis.
fn embedding(dimension: usize, axis: usize) -> Vec<f32> {
    let mut v = vec![0.0; dimension];
    v[axis % dimension] = 1.0;
    v[(axis + 1) % dimension] = 0.2;
    v
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| ".sutra/local/cluster.json".to_string());
    let dimension: usize = args.next().map_or(Ok(768), |d| d.parse())?;
    let client = client_from(&path)?;

    let words = ["apple", "banana", "cherry", "date", "elderberry"];
    let mut batch = Batch::new();
    for (i, word) in words.iter().enumerate() {
        batch.put(Concept {
            id: format!("example/fruit/{word}"),
            content: word.as_bytes().to_vec(),
            embedding: embedding(dimension, i),
            ..Concept::default()
        });
    }
    let written = client.batch(&batch).await?;
    println!(
        "stored {} fruits at version {}",
        words.len(),
        written.write.version
    );

    // Nearest to "cherry"'s direction, by cosine similarity (higher is better).
    let query = embedding(dimension, 2);
    let hits = client
        .search(
            &Search::new(query.clone(), 3).include_concepts(true),
            ReadOptions::session(),
        )
        .await?;
    for h in &hits.value {
        let content = h
            .concept
            .as_ref()
            .map(|c| String::from_utf8_lossy(&c.content));
        println!("cosine {:.3}  {}  {:?}", h.score, h.id, content);
    }

    // The same by Euclidean distance (lower is better), on any sufficiently fresh node.
    let near = client
        .search(
            &Search::new(query, 2).metric(Metric::L2),
            ReadOptions::bounded(std::time::Duration::from_millis(500)),
        )
        .await?;
    println!(
        "L2 nearest: {:?} (served by node {})",
        near.value
            .iter()
            .map(|h| (&h.id, h.score))
            .collect::<Vec<_>>(),
        near.meta.served_by
    );

    // Every fruit, two ids per page.
    let scan = Scan::prefix("example/fruit/").page_size(2).keys_only(true);
    let mut token = None;
    loop {
        let page = client
            .scan(&scan, token.as_deref(), ReadOptions::session())
            .await?;
        println!(
            "page: {:?}",
            page.items.iter().map(|c| &c.id).collect::<Vec<_>>()
        );
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    Ok(())
}
