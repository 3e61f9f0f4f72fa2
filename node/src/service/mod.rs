//! The gRPC services a node serves.

pub mod cluster;
pub mod storage;
