//! The client side of Sutra's API: TLS connections to nodes (the cluster CA and a client
//! certificate whose role — read, write or admin — the nodes check) and the leader hint a
//! node returns when it cannot serve a request itself.
//!
//! [`Client`] is the SDK: every storage call (concepts, edges, atomic [`Batch`]es, get,
//! [`Scan`], [`Neighbors`], k-NN [`Search`], health, stats, flush), writes that follow the
//! leader and retry safely through failovers (each carries its client id and sequence),
//! reads routed by their consistency ([`ReadOptions`]), per-call deadlines, and typed
//! errors ([`ClientError`]).
//!
//! ```no_run
//! # async fn demo(tls: sutra_client::TlsFiles) -> Result<(), sutra_client::ClientError> {
//! use sutra_client::{Client, ClientConfig, ReadOptions, Scan};
//! use sutra_proto::storage::Concept;
//!
//! let client = Client::new(ClientConfig::new(vec!["127.0.0.1:50051".into()], tls))?;
//! client.put(Concept { id: "a/1".into(), content: b"hi".to_vec(), ..Concept::default() }, None).await?;
//! // Read-your-writes on whichever node comes next.
//! let read = client.get_with("a/1", ReadOptions::session()).await?;
//! println!("served by node {}", read.meta.served_by);
//! let all = client.scan_all(&Scan::prefix("a/"), 1000, ReadOptions::stale()).await?;
//! # Ok(()) }
//! ```
//!
//! It depends only on the wire contract (`sutra-proto`), tonic and tokio's timers: no
//! CLI, drill or dev-cluster code (those sit on top of it, in `sutra-cli`,
//! `sutra-drill` and `sutra-devcluster`).

mod batch;
mod call;
mod client;
mod config;
mod connect;
mod error;
mod options;
mod query;
mod router;

pub use batch::{Batch, BatchOutcome};
pub use client::{Client, NodeResult};
pub use config::ClientConfig;
pub use connect::{Connector, Error, Result, TlsFiles};
pub use error::{ClientError, INVALID_FIELD_METADATA_KEY};
pub use options::{CallOptions, ReadOptions, Route};
pub use query::{Neighbors, Page, Read, Scan, ScanRange, Search};
pub use sutra_proto::LeaderHint;
