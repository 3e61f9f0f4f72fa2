//! The audit trail: every call of a method that needs the admin role (membership,
//! leadership, snapshots, flushes, alarms, backups) leaves exactly one `audit` event in
//! the log, once its outcome is known, with the method, the caller's certificate
//! identity, the gRPC status and how long it took. Refused calls are audited too.
//! The outcome is taken from the response as it ends (`outcome.rs`); a call whose caller
//! went away first is audited as `CANCELLED`.

use std::time::Instant;

use tonic::body::Body;
use tonic::codegen::http;

use super::outcome::on_outcome;

/// One admin call whose outcome is still to be logged.
#[derive(Debug)]
pub(crate) struct AuditRecord {
    method: String,
    caller: String,
    started: Instant,
}

impl AuditRecord {
    /// Starts the record of a call of `method` by `caller` (a certificate identity URI,
    /// or `anonymous` on an endpoint without authentication).
    pub(crate) fn start(method: &str, caller: String) -> Self {
        Self {
            method: method.to_string(),
            caller,
            started: Instant::now(),
        }
    }

    /// Logs the call's outcome.
    pub(crate) fn finish(self, code: tonic::Code, message: &str) {
        let elapsed_ms = self.started.elapsed().as_secs_f64() * 1e3;
        tracing::info!(
            event = "audit",
            method = self.method,
            caller = self.caller,
            code = ?code,
            message,
            elapsed_ms,
            "admin call"
        );
    }

    /// Audits `response` once its outcome is known (`outcome.rs`).
    pub(crate) fn watch(self, response: http::Response<Body>) -> http::Response<Body> {
        on_outcome(response, move |code, message| self.finish(code, message))
    }
}
