//! The cluster's parameters as this node's configuration sees them: what it proposes
//! when it bootstraps a cluster ([`bootstrap_params`]), and whether the values it was
//! given agree with the cluster it belongs to ([`disagreements`]).
//!
//! Cluster parameters are cluster state (`sutra_raft::ClusterParams`), fixed once and
//! replicated; a node's flags only choose them at bootstrap. Any other node may leave
//! them unset (it adopts the cluster's) or set them to the cluster's values; a node set
//! to other values refuses to run, so one misconfigured node stops only itself.

use sutra_engine::StoreParams;
use sutra_raft::ClusterParams;

use crate::config::{ConfigError, DEFAULT_MAX_CONTENT_BYTES, NodeConfig, err};

/// The cluster quota when the bootstrapping node gives none: 8 GiB.
pub const DEFAULT_QUOTA_BYTES: u64 = 8 << 30;

/// A fresh cluster id: 32 hex digits from the OS's random source.
pub fn mint_cluster_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The parameters this node proposes when it bootstraps a cluster: its values, defaults
/// for the rest.
pub fn bootstrap_params(c: &NodeConfig, cluster_id: String) -> ClusterParams {
    let store = StoreParams::default();
    ClusterParams {
        cluster_id,
        vector_dimension: c.vector_dimension.unwrap_or(store.vector_dimension),
        max_content_bytes: c.max_content_bytes.unwrap_or(DEFAULT_MAX_CONTENT_BYTES) as u64,
        max_batch_ops: c
            .max_batch_ops
            .unwrap_or(sutra_proto::limits::DEFAULT_MAX_BATCH_OPS) as u32,
        session_ttl_ms: c.session_ttl_ms.unwrap_or(store.session_ttl_ms),
        max_sessions: c.max_sessions.unwrap_or(store.max_sessions),
        max_sessions_per_owner: c.max_sessions_per_owner.unwrap_or_else(|| {
            StoreParams::default_share(c.max_sessions.unwrap_or(store.max_sessions))
        }),
        quota_bytes: c.quota_bytes.unwrap_or(DEFAULT_QUOTA_BYTES),
    }
}

/// Checks the cluster parameters and the data file settings this node was given, and the
/// relations between them.
pub(crate) fn validate(c: &NodeConfig) -> Result<(), ConfigError> {
    if c.vector_dimension.is_some_and(|d| d == 0 || d > 65_536) {
        return Err(err("vector-dimension", "must be within 1..=65536"));
    }
    if c.max_sessions_per_owner == Some(0) {
        return Err(err("max-sessions-per-owner", "must be at least 1"));
    }
    if let (Some(per_owner), Some(max)) = (c.max_sessions_per_owner, c.max_sessions)
        && per_owner > max
    {
        return Err(err(
            "max-sessions-per-owner",
            format!("{per_owner} is more than max-sessions ({max})"),
        ));
    }
    if c.max_batch_ops == Some(0) {
        return Err(err("max-batch-ops", "must be at least 1"));
    }
    if c.max_sessions == Some(0) {
        return Err(err("max-sessions", "must be at least 1"));
    }
    if c.data_file_grow_bytes == 0 {
        return Err(err("data-file-grow-bytes", "must be at least 1"));
    }
    if let Some(q) = c.quota_bytes
        && q > c.data_file_limit_bytes
    {
        return Err(err(
            "quota-bytes",
            format!(
                "{q} exceeds data-file-limit-bytes ({})",
                c.data_file_limit_bytes
            ),
        ));
    }
    Ok(())
}

/// Every value this node was given that differs from the cluster's, as
/// `flag: this node has X, the cluster has Y`; also a data file limit below the quota.
pub fn disagreements(c: &NodeConfig, p: &ClusterParams) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |flag: &str, mine: Option<u64>, theirs: u64| {
        if let Some(mine) = mine
            && mine != theirs
        {
            out.push(format!(
                "{flag}: this node has {mine}, the cluster has {theirs}"
            ));
        }
    };
    check(
        "vector-dimension",
        c.vector_dimension.map(u64::from),
        p.vector_dimension.into(),
    );
    check(
        "max-content-bytes",
        c.max_content_bytes.map(|v| v as u64),
        p.max_content_bytes,
    );
    check(
        "max-batch-ops",
        c.max_batch_ops.map(|v| v as u64),
        p.max_batch_ops.into(),
    );
    check("session-ttl-ms", c.session_ttl_ms, p.session_ttl_ms);
    check(
        "max-sessions",
        c.max_sessions.map(u64::from),
        p.max_sessions.into(),
    );
    check(
        "max-sessions-per-owner",
        c.max_sessions_per_owner.map(u64::from),
        p.max_sessions_per_owner.into(),
    );
    check("quota-bytes", c.quota_bytes, p.quota_bytes);
    if c.data_file_limit_bytes < p.quota_bytes {
        out.push(format!(
            "data-file-limit-bytes: this node has {}, below the cluster quota of {}",
            c.data_file_limit_bytes, p.quota_bytes
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_values_adopt_and_set_ones_must_agree() {
        let c = NodeConfig::default();
        let p = bootstrap_params(&c, mint_cluster_id());
        assert_eq!(p.cluster_id.len(), 32);
        assert_eq!(p.vector_dimension, 768);
        assert!(disagreements(&c, &p).is_empty());
        let odd = NodeConfig {
            vector_dimension: Some(4),
            quota_bytes: Some(p.quota_bytes),
            ..NodeConfig::default()
        };
        assert_eq!(
            disagreements(&odd, &p),
            ["vector-dimension: this node has 4, the cluster has 768"]
        );
        let small = NodeConfig {
            data_file_limit_bytes: 1 << 20,
            ..NodeConfig::default()
        };
        assert!(disagreements(&small, &p)[0].contains("below the cluster quota"));
        assert_ne!(mint_cluster_id(), mint_cluster_id());
    }
}
