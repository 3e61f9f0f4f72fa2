//! Concepts linked by edges: an atomic batch builds a small citation graph, `neighbors`
//! walks it both ways, and a batch whose `check` fails changes nothing. Runs against the
//! local cluster that `make run` (or `sutra local start`) starts.
//!
//! ```sh
//! sutra local start
//! cargo run -p sutra-client --example graph -- .sutra/local/cluster.json
//! ```

use sutra_client::{Batch, Client, ClientError, Neighbors, ReadOptions};
use sutra_proto::storage::{Concept, Direction, Edge};

fn client_from(path: &str) -> Result<Client, Box<dyn std::error::Error>> {
    let config = sutra_devcluster::ClusterFile::read(path.as_ref())?.client_config("writer");
    Ok(Client::new(config)?)
}

fn paper(id: &str, title: &str) -> Concept {
    Concept {
        id: id.into(),
        content: title.as_bytes().to_vec(),
        attributes: [("kind".to_string(), "paper".to_string())].into(),
        ..Concept::default()
    }
}

fn cites(from: &str, to: &str) -> Edge {
    Edge {
        from: from.into(),
        to: to.into(),
        relation: "cites".into(),
        weight: 1.0,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| ".sutra/local/cluster.json".to_string());
    let client = client_from(&path)?;

    // Three papers and their citations, all or nothing.
    let mut batch = Batch::new();
    batch
        .put(paper(
            "example/raft",
            "In Search of an Understandable Consensus Algorithm",
        ))
        .put(paper("example/paxos", "Paxos Made Simple"))
        .put(paper("example/vr", "Viewstamped Replication Revisited"))
        .put_edge(cites("example/raft", "example/paxos"))
        .put_edge(cites("example/raft", "example/vr"))
        .put_edge(cites("example/vr", "example/paxos"));
    let applied = client.batch(&batch).await?;
    println!(
        "batch of {} ops applied at version {}",
        applied.existed.len(),
        applied.write.version
    );

    // Read-your-writes on whichever node the read lands on.
    let read = ReadOptions::session();
    let out = client
        .neighbors_all(&Neighbors::of("example/raft"), 100, read)
        .await?;
    for n in &out {
        println!("example/raft -[{}]-> {}", n.relation, n.id);
    }
    let cited_by = client
        .neighbors(
            &Neighbors::of("example/paxos")
                .direction(Direction::In)
                .relation("cites"),
            None,
            read,
        )
        .await?;
    println!(
        "example/paxos is cited by {:?} (served by node {})",
        cited_by.items.iter().map(|n| &n.id).collect::<Vec<_>>(),
        cited_by.meta.served_by
    );

    // A batch guarded by a check that fails is refused as a whole.
    let mut guarded = Batch::new();
    guarded
        .check("example/paxos", 0) // "must not exist": it does
        .delete_edge("example/raft", "example/paxos", "cites");
    match client.batch(&guarded).await {
        Err(ClientError::Conflict { message }) => println!("refused as expected: {message}"),
        other => println!("unexpected: {other:?}"),
    }
    let still = client
        .neighbors_all(&Neighbors::of("example/raft"), 100, read)
        .await?;
    println!("example/raft still cites {} papers", still.len());
    Ok(())
}
