//! The audit trail: every call of a method that needs the admin role (membership,
//! leadership, snapshots, flushes, alarms, backups) leaves exactly one `audit` event in
//! the log, once its outcome is known, with the method, the caller's certificate
//! identity, the gRPC status and how long it took. Refused calls are audited too.
//!
//! The outcome of a gRPC call is in the response headers when the call failed before
//! answering (a trailers-only response) and otherwise in the trailers at the end of the
//! body, so [`Audited`] watches the body to its end. A body dropped before its end (the
//! caller went away) is audited as `CANCELLED`.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::Frame;
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::{Bytes, http};

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

    /// Audits `response`: at once if its headers carry the status, else when its body
    /// ends.
    pub(crate) fn watch(self, response: http::Response<Body>) -> http::Response<Body> {
        if let Some(status) = Status::from_header_map(response.headers()) {
            self.finish(status.code(), status.message());
            return response;
        }
        response.map(|body| {
            Body::new(Audited {
                inner: body,
                record: Some(self),
            })
        })
    }
}

/// A response body that audits its call when its trailers arrive, it ends, or it is
/// dropped.
#[derive(Debug)]
struct Audited {
    inner: Body,
    record: Option<AuditRecord>,
}

impl Audited {
    fn finish(&mut self, code: tonic::Code, message: &str) {
        if let Some(record) = self.record.take() {
            record.finish(code, message);
        }
    }
}

impl http_body::Body for Audited {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    match Status::from_header_map(trailers) {
                        Some(status) => self.finish(status.code(), status.message()),
                        None => self.finish(tonic::Code::Ok, ""),
                    }
                }
            }
            Poll::Ready(Some(Err(status))) => {
                let (code, message) = (status.code(), status.message().to_string());
                self.finish(code, &message);
            }
            Poll::Ready(None) => self.finish(tonic::Code::Ok, ""),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Audited {
    fn drop(&mut self) {
        self.finish(
            tonic::Code::Cancelled,
            "the caller went away before the answer ended",
        );
    }
}
