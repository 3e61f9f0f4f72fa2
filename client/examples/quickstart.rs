//! Writes a concept through whichever node leads and reads it back, against the local
//! cluster that `make run` (or `sutra local start`) starts.
//!
//! ```sh
//! sutra local start                      # or: make run, in another terminal
//! cargo run -p sutra-client --example quickstart -- .sutra/local/cluster.json
//! ```

use sutra_client::Client;
use sutra_proto::storage::{Concept, Consistency};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| ".sutra/local/cluster.json".to_string());
    let client =
        Client::new(sutra_devcluster::ClusterFile::read(path.as_ref())?.client_config("writer"))?;

    let concept = Concept {
        id: "example/hello".into(),
        content: b"hello, cluster".to_vec(),
        attributes: [("lang".to_string(), "en".to_string())].into(),
        ..Concept::default()
    };
    let written = client.put(concept, None).await?;
    println!(
        "written at version {} by node {} (leader {})",
        written.version, written.served_by, written.leader_id
    );

    // Read-your-writes: any node answers once it has applied this client's last write.
    let read = client
        .get("example/hello", Consistency::Session)
        .await?
        .ok_or("not found")?;
    println!(
        "read back: {:?} (version {})",
        String::from_utf8_lossy(&read.content),
        read.version
    );
    Ok(())
}
