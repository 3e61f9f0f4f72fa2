//! [`Measured`]: a client-API server whose calls are counted and timed by method and
//! status code (`sutra_grpc_requests_total`, `sutra_grpc_request_duration_seconds`), and
//! a call that took at least `slow-request-ms` leaves one `slow_request` line with the
//! stage timings its write path noted (`stages.rs`). It sits outside the role check, so
//! refused calls count too. Paths that name no method of the API count as `unknown`.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tonic::body::Body;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;

use super::outcome::on_outcome;
use crate::metrics::{Instruments, code_name};
use crate::stages::{self, SharedStages, Stages};

/// How calls to paths outside the API are labelled.
const UNKNOWN_METHOD: &str = "/unknown/unknown";

/// `S` with its calls measured.
#[derive(Debug, Clone)]
pub(crate) struct Measured<S> {
    inner: S,
    instruments: Arc<Instruments>,
    slow: Option<Duration>,
}

impl<S> Measured<S> {
    /// Measures `inner`'s calls into `instruments`; calls of at least `slow` are logged.
    pub(crate) fn new(inner: S, instruments: Arc<Instruments>, slow: Option<Duration>) -> Self {
        Self {
            inner,
            instruments,
            slow,
        }
    }
}

impl<S: NamedService> NamedService for Measured<S> {
    const NAME: &'static str = S::NAME;
}

/// One call being measured.
struct Call {
    method: &'static str,
    started: Instant,
    instruments: Arc<Instruments>,
    /// The slow-request threshold and the stage timings the call notes, when the line
    /// is on.
    slow: Option<(Duration, SharedStages)>,
}

impl Call {
    fn finish(self, code: tonic::Code, message: &str) {
        let elapsed = self.started.elapsed();
        self.instruments.call_finished(self.method, code, elapsed);
        if let Some((slow, stages)) = &self.slow
            && elapsed >= *slow
        {
            let s: Stages = *stages.lock();
            tracing::warn!(
                event = "slow_request",
                method = self.method,
                code = code_name(code),
                message,
                elapsed_ms = elapsed.as_secs_f64() * 1e3,
                relay_ms = Stages::ms(s.relay),
                propose_ms = Stages::ms(s.propose),
                apply_ms = Stages::ms(s.apply),
                "slow client call (stage times -1: not gone through)"
            );
        }
    }
}

impl<S> Service<http::Request<Body>> for Measured<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let call = Call {
            method: crate::auth::known_method(req.uri().path()).unwrap_or(UNKNOWN_METHOD),
            started: Instant::now(),
            instruments: self.instruments.clone(),
            slow: self.slow.map(|d| (d, SharedStages::default())),
        };
        let stages = call.slow.as_ref().map(|(_, s)| s.clone());
        let done = move |r: Result<http::Response<Body>, Infallible>| {
            r.map(|resp| on_outcome(resp, move |code, msg| call.finish(code, msg)))
        };
        // Stage timings are collected only for the slow-request line.
        match stages {
            Some(stages) => stages::scope(stages, self.inner.call(req))
                .map(done)
                .boxed(),
            None => self.inner.call(req).map(done).boxed(),
        }
    }
}
