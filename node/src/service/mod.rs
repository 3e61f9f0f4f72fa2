//! The gRPC services a node serves.

pub mod backup;
pub mod cluster;
pub mod heavy_reads;
pub mod storage;
