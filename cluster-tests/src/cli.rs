//! The `sutra` CLI (or a deploy script) run against a test cluster, configured only
//! through `SUTRA_*` variables as an operator's shell would be.

use std::process::{Command, Output};

use anyhow::{Context, Result, ensure};

use crate::process::cli_binary;
use crate::{ClientRole, Cluster};

/// What one run of a program printed, and its exit code.
#[derive(Debug, Clone)]
pub struct CliRun {
    /// Exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CliRun {
    /// The run that produced `out`.
    pub fn of(out: Output) -> Self {
        Self {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Standard output's lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Exit 0, and standard output parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        ensure!(
            self.code == Some(0),
            "exit {:?}: {}{}",
            self.code,
            self.stdout,
            self.stderr
        );
        serde_json::from_str(self.stdout.trim())
            .with_context(|| format!("not JSON: {}", self.stdout))
    }
}

impl Cluster {
    /// `sutra ARGS` against this cluster with `role`'s certificate, given only through
    /// `SUTRA_ENDPOINTS`, `SUTRA_CA`, `SUTRA_CERT` and `SUTRA_KEY`; not started yet.
    pub fn sutra_command(&self, role: ClientRole, args: &[&str]) -> Result<Command> {
        let certs = self.certs_dir();
        let cert = sutra_certs::CertPaths::client(certs, role.cert_name());
        let mut c = Command::new(cli_binary()?);
        c.env_remove("SUTRA_CLUSTER_FILE")
            .env("SUTRA_ENDPOINTS", self.api_addrs().join(","))
            .env("SUTRA_CA", sutra_certs::CertPaths::ca(certs).cert)
            .env("SUTRA_CERT", &cert.cert)
            .env("SUTRA_KEY", &cert.key)
            .args(args);
        Ok(c)
    }

    /// Runs `sutra ARGS` (as [`sutra_command`](Self::sutra_command)) to its end.
    pub fn sutra(&self, role: ClientRole, args: &[&str]) -> Result<CliRun> {
        let out = self
            .sutra_command(role, args)?
            .output()
            .context("running sutra")?;
        Ok(CliRun::of(out))
    }
}
