//! What this binary is: its version and the commit it was built from.

/// The package version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit it was built from (`SUTRA_GIT_COMMIT` at build time, else git's short
/// hash, else "unknown").
pub const COMMIT: &str = env!("SUTRA_GIT_COMMIT");
