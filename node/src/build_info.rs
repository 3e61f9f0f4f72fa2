//! What this binary is: the release version and the source commit it was built from
//! (`build.rs`). Reported by `HealthCheck`, cluster status and the monitoring listener.

/// The release version (the workspace's package version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The source commit (12 hex digits), or `unknown` for a build outside a git checkout.
pub const COMMIT: &str = env!("SUTRA_GIT_COMMIT");
