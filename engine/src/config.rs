//! Engine configuration.

/// Limits on client input. The node checks requests against these before they enter
/// the Raft log; `apply` re-checks only the store's hard format limits
/// ([`Limits::hard`]), so nodes with different soft limits still apply the same log
/// the same way.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Longest concept id in bytes. Default: 256 (also the hard limit).
    pub max_id_bytes: usize,
    /// Largest concept content in bytes. Default: 1 MiB.
    pub max_content_bytes: usize,
    /// Most attributes on one concept. Default: 64.
    pub max_attributes: usize,
    /// Longest attribute key in bytes. Default: 128.
    pub max_attribute_key_bytes: usize,
    /// Longest attribute value in bytes. Default: 4096.
    pub max_attribute_value_bytes: usize,
    /// Longest edge relation in bytes. Default: 128.
    pub max_relation_bytes: usize,
    /// Most operations in one batch. Default: 1000.
    pub max_batch_ops: usize,
    /// Longest session key (the caller's name, `/`, its client id) in bytes. Default: 256.
    pub max_client_id_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_id_bytes: 256,
            max_content_bytes: 1 << 20,
            max_attributes: 64,
            max_attribute_key_bytes: 128,
            max_attribute_value_bytes: 4096,
            max_relation_bytes: 128,
            max_batch_ops: 1000,
            max_client_id_bytes: 256,
        }
    }
}

impl Limits {
    /// The limits the record format itself imposes. `apply` checks these so that a
    /// log entry is accepted or rejected identically on every node.
    pub fn hard() -> Self {
        Self {
            max_id_bytes: 256,
            max_content_bytes: 64 << 20,
            max_attributes: u16::MAX as usize,
            max_attribute_key_bytes: u16::MAX as usize,
            max_attribute_value_bytes: u16::MAX as usize,
            max_relation_bytes: 256,
            max_batch_ops: 100_000,
            max_client_id_bytes: 256,
        }
    }
}

/// When the background compactor rewrites the data file.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactionConfig {
    /// Compact once garbage is at least this share of the data file. Default: 0.5.
    pub garbage_ratio: f64,
    /// ...and at least this many bytes. Default: 64 MiB.
    pub min_garbage_bytes: u64,
    /// Start compaction on a background thread when both thresholds pass. When off,
    /// only [`Engine::compact`](crate::Engine::compact) compacts. Default: true.
    pub background: bool,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        Self {
            garbage_ratio: 0.5,
            min_garbage_bytes: 64 << 20,
            background: true,
        }
    }
}

/// Parameters fixed when a store is created. They are written into the data file header
/// and travel with snapshots, because every replica must apply the log identically:
/// an existing store keeps its own values whatever the configuration says later (the
/// vector dimension must match, see [`Error::Incompatible`](crate::Error::Incompatible)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreParams {
    /// Length of every embedding. Default: 768.
    pub vector_dimension: u32,
    /// A client session idle for longer than this (in log time) is forgotten; a retry
    /// after that is treated as new. Default: 24 h.
    pub session_ttl_ms: u64,
    /// Most client sessions remembered (at least 1 is kept). Default: 100,000.
    pub max_sessions: u32,
    /// Most client sessions one owner (the certificate name a client id is bound to,
    /// `<owner>/<client_id>`) may hold; a new one beyond it drops that owner's least
    /// recently used session, and a full table drops the least recently used session of
    /// the owner holding the most (see `session.rs`). Clamped to `1..=max_sessions`.
    /// Default: `max_sessions / 16` (6,250), which is also what a store created before
    /// this parameter existed gets.
    pub max_sessions_per_owner: u32,
}

impl StoreParams {
    /// Parameters still to be adopted: a store created by a node that does not choose
    /// them (they come from the cluster, [`Engine::adopt_params`](crate::Engine::adopt_params)).
    /// Such a store takes no embeddings until then.
    pub const UNSET: Self = Self {
        vector_dimension: 0,
        session_ttl_ms: 0,
        max_sessions: 0,
        max_sessions_per_owner: 0,
    };

    /// Whether these are [`StoreParams::UNSET`].
    pub fn is_unset(&self) -> bool {
        self.vector_dimension == 0
    }
}

impl Default for StoreParams {
    fn default() -> Self {
        let max_sessions = 100_000;
        Self {
            vector_dimension: 768,
            session_ttl_ms: 24 * 60 * 60 * 1000,
            max_sessions,
            max_sessions_per_owner: Self::default_share(max_sessions),
        }
    }
}

impl StoreParams {
    /// The per-owner share a table of `max_sessions` gets unless told otherwise:
    /// a sixteenth, at least 1.
    pub fn default_share(max_sessions: u32) -> u32 {
        (max_sessions / 16).max(1)
    }

    /// `(max_sessions, max_sessions_per_owner)` as the session table applies them:
    /// the bound at least 1, the share within `1..=bound`.
    pub(crate) fn session_limits(&self) -> (u32, u32) {
        let max = self.max_sessions.max(1);
        (max, self.max_sessions_per_owner.clamp(1, max))
    }
}

/// Everything [`Engine::open`](crate::Engine::open) needs besides the directory.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Parameters for a new store (ignored, except the dimension check, when opening
    /// an existing one).
    pub params: StoreParams,
    /// Input limits checked by [`WriteBatch::validate`](crate::WriteBatch::validate).
    pub limits: Limits,
    /// Address space reserved for the data file mapping, which is also the largest the
    /// data file may grow. Reserving it up front means the mapping never moves, so
    /// readers need no lock against growth. Default: 64 GiB.
    pub max_file_bytes: u64,
    /// The data file grows by at least this much at a time (space is allocated, not
    /// sparse, so a full disk fails the write instead of faulting a page). Default: 64 MiB.
    pub grow_step_bytes: u64,
    /// Background compaction thresholds.
    pub compaction: CompactionConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            params: StoreParams::default(),
            limits: Limits::default(),
            max_file_bytes: 64 << 30,
            grow_step_bytes: 64 << 20,
            compaction: CompactionConfig::default(),
        }
    }
}
