//! The single-node server's environment variables. A node started with them (an old
//! unit file, an old compose file) says at start what replaces each, rather than
//! ignoring them in silence; none of them changes what the node does
//! (`docs/migration.md`).

/// Each old variable and what replaces it here.
pub const LEGACY_VARIABLES: &[(&str, &str)] = &[
    (
        "STORAGE_PATH",
        "use SUTRA_DATA_DIR (--data-dir): the node keeps its Raft log, data file and checkpoint there",
    ),
    (
        "STORAGE_PORT",
        "use SUTRA_API_LISTEN (--api-listen host:port) for the client API; peers use SUTRA_RAFT_LISTEN",
    ),
    (
        "VECTOR_DIMENSION",
        "use SUTRA_VECTOR_DIMENSION (--vector-dimension): a cluster parameter, set on the bootstrapping node and adopted by the others",
    ),
    (
        "RECONCILE_INTERVAL_MS",
        "no equivalent: a write is visible once applied, and each read chooses its consistency (--consistency)",
    ),
    (
        "MEMORY_THRESHOLD",
        "no equivalent: every write is durable in the Raft log before it is acknowledged; SUTRA_SNAPSHOT_EVERY_ENTRIES (--snapshot-every-entries) sets how often the engine checkpoints and the log is purged",
    ),
];

/// The old variables that `lookup` finds set, each with its value and its replacement.
pub fn found(lookup: impl Fn(&str) -> Option<String>) -> Vec<(&'static str, String, &'static str)> {
    LEGACY_VARIABLES
        .iter()
        .filter_map(|(name, instead)| lookup(name).map(|value| (*name, value, *instead)))
        .collect()
}

/// Logs one warning per old variable set in this process's environment.
pub fn warn_if_set() {
    for (name, value, instead) in found(|name| std::env::var(name).ok()) {
        tracing::warn!(
            event = "legacy_variable",
            variable = name,
            value,
            instead,
            "{name} is a variable of the single-node server and is ignored here: {instead}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_old_variable_set_is_named_with_its_replacement() {
        let env = |name: &str| match name {
            "STORAGE_PATH" => Some("/data".to_string()),
            "MEMORY_THRESHOLD" => Some("50000".to_string()),
            _ => None,
        };
        let set = found(env);
        assert_eq!(set.len(), 2, "{set:?}");
        assert_eq!(set[0].0, "STORAGE_PATH");
        assert_eq!(set[0].1, "/data");
        assert!(set[0].2.contains("SUTRA_DATA_DIR"), "{set:?}");
        assert_eq!(set[1].0, "MEMORY_THRESHOLD");
        assert!(found(|_| None).is_empty());
    }

    #[test]
    fn every_variable_of_the_old_guide_is_covered() {
        let names: Vec<&str> = LEGACY_VARIABLES.iter().map(|(n, _)| *n).collect();
        for old in [
            "STORAGE_PATH",
            "STORAGE_PORT",
            "VECTOR_DIMENSION",
            "RECONCILE_INTERVAL_MS",
            "MEMORY_THRESHOLD",
        ] {
            assert!(names.contains(&old), "{old}");
        }
    }
}
