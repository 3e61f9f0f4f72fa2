//! One of the bench's concurrent clients and what it sends: puts and gets of
//! deterministic ids and contents, through the SDK or straight to one node.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use sutra_client::{Batch, Client, ClientError};
use sutra_proto::storage::storage_service_client::StorageServiceClient;
use sutra_proto::storage::{Concept, GetConceptRequest, PutConceptRequest, WriteHeader};
use tonic::transport::Channel;

use super::Params;
use super::Workload;
use super::report::Outcome;

/// Where a client's requests go.
pub enum Target {
    /// An SDK client: leader following, read routing and retries.
    Sdk(Client),
    /// One connection to one node, every request sent there once.
    Node(Pinned),
}

/// A connection to one node with this client's exactly-once identity.
pub struct Pinned {
    storage: StorageServiceClient<Channel>,
    client_id: String,
    sequence: u64,
    timeout: Duration,
}

impl Target {
    /// A client pinned to the node behind `storage`, writing as `client_id`; each call
    /// may take `timeout`.
    pub fn node(
        storage: StorageServiceClient<Channel>,
        client_id: String,
        timeout: Duration,
    ) -> Self {
        Self::Node(Pinned {
            storage,
            client_id,
            sequence: 0,
            timeout,
        })
    }

    async fn put(&mut self, concept: Concept) -> Result<(), ClientError> {
        match self {
            Self::Sdk(client) => client.put(concept, None).await.map(|_| ()),
            Self::Node(n) => {
                n.sequence += 1;
                let req = PutConceptRequest {
                    header: Some(WriteHeader {
                        client_id: n.client_id.clone(),
                        sequence: n.sequence,
                    }),
                    concept: Some(concept),
                    expected_version: None,
                };
                let mut req = tonic::Request::new(req);
                req.set_timeout(n.timeout);
                n.storage.put_concept(req).await?;
                Ok(())
            }
        }
    }

    /// Whether the concept `id` was found.
    async fn get(&mut self, id: &str, p: &Params) -> Result<bool, ClientError> {
        match self {
            Self::Sdk(client) => Ok(client.get_with(id, p.read).await?.value.is_some()),
            Self::Node(n) => {
                let mut req = tonic::Request::new(GetConceptRequest {
                    read: Some(p.read.to_proto(0)),
                    id: id.to_string(),
                });
                req.set_timeout(n.timeout);
                Ok(n.storage
                    .get_concept(req)
                    .await?
                    .into_inner()
                    .concept
                    .is_some())
            }
        }
    }
}

/// The id of key number `i`.
pub fn key(prefix: &str, i: u64) -> String {
    format!("{prefix}{i:08}")
}

/// `size` bytes of lowercase content, varying with `i`.
pub fn value(size: usize, i: u64) -> Vec<u8> {
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
pub async fn preload(client: &Client, p: &Params) -> anyhow::Result<()> {
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

/// One of the concurrent clients: it takes request numbers from the shared counter
/// until every request is issued or the run's time is up.
pub struct Task {
    target: Target,
    p: Arc<Params>,
    issued: Arc<AtomicU64>,
    started: Instant,
    rng: u64,
}

impl Task {
    /// Client number `n` of a run that began at `started`.
    pub fn new(
        target: Target,
        p: Arc<Params>,
        issued: Arc<AtomicU64>,
        started: Instant,
        n: u64,
    ) -> Self {
        Self {
            target,
            p,
            issued,
            started,
            rng: 0x9E37_79B9_7F4A_7C15_u64 ^ (n + 1),
        }
    }

    /// Sends requests until none are left or the time is up.
    pub async fn run(mut self) -> Outcome {
        let mut r = Outcome::default();
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

    /// Request number `i`: a get of key `i % keys` or a put of that key (of key `i`
    /// with `--new-keys`), as the workload says.
    async fn request(&mut self, i: u64) -> Result<(), ClientError> {
        let p = self.p.clone();
        let read = match p.workload {
            Workload::Put => false,
            Workload::Get => true,
            Workload::Mixed => {
                (next_random(&mut self.rng) % 10_000) as f64 / 10_000.0 < p.read_ratio
            }
        };
        if !read {
            let n = if p.new_keys { i } else { i % p.keys };
            let concept = Concept {
                id: key(&p.prefix, n),
                content: value(p.value_size, i),
                ..Concept::default()
            };
            return self.target.put(concept).await;
        }
        let id = key(&p.prefix, i % p.keys);
        if self.target.get(&id, &p).await? {
            Ok(())
        } else {
            Err(ClientError::Status(tonic::Status::not_found(format!(
                "{id} is missing"
            ))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_have_the_asked_size() {
        assert_eq!(value(0, 3).len(), 0);
        assert_eq!(value(1000, 3).len(), 1000);
        assert!(value(50, 9).iter().all(u8::is_ascii_lowercase));
    }

    #[test]
    fn keys_sort_in_request_order() {
        assert_eq!(key("b/", 7), "b/00000007");
        assert!(key("b/", 99) < key("b/", 100));
    }
}
