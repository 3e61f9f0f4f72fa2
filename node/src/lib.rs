//! `sutra-node`: one member of a Sutra cluster.
//!
//! It owns the wiring: configuration, TLS, the Raft instance over the RocksDB log store and
//! the engine state machine, the peer endpoint, the client and operator gRPC services,
//! health, and orderly shutdown. The storage engine (`sutra-engine`) and the Raft storage
//! and network (`sutra-raft`) know nothing of the client API.

pub mod auth;
pub mod build_info;
pub mod certs_cmd;
pub mod config;
pub mod convert;
pub mod disk;
pub mod events;
pub mod health;
mod leader_calls;
pub mod legacy_env;
pub mod logging;
pub mod metrics;
pub mod monitor;
pub mod node;
pub mod params;
mod read;
pub mod recover;
mod relay;
pub mod restore;
pub mod server;
pub mod service;
pub mod stages;
pub mod status;
pub mod validate;

pub use config::{ConfigError, MemberSpec, NodeConfig, ValidConfig};
pub use node::Node;
pub use server::{RunError, run};
pub use status::ServiceError;
