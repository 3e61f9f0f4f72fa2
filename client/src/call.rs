//! [`Calls`]: how a client runs a read or write, in the retry loop: attempts on the nodes
//! its route picks until one answers, one fails for good, or the call's deadline passes;
//! how long each attempt may take, the pause between attempts, and which failures end a
//! call with which error.

use std::future::Future;
use std::time::{Duration, Instant};

use sutra_proto::LeaderHint;
use sutra_proto::storage::storage_service_client::StorageServiceClient;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::error::{ClientError, retryable};
use crate::options::{CallOptions, ReadOptions, Route};
use crate::router::Router;

// Between attempts while no node can serve (e.g. during an election, which takes about
// a second): short enough that a call finds the new leader within ~100 ms of its election.
const MIN_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// Whether a call changes data: a write that times out may have been applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Write,
    Read,
}

/// `msg` as a request whose gRPC timeout is `timeout`.
pub(crate) fn request<T>(msg: T, timeout: Duration) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(timeout);
    r
}

/// How a client runs its calls: how long a call may take unless its options set a
/// deadline, and how long each attempt may take before the call moves on to another node
/// ([`ClientConfig`](crate::ClientConfig)'s timeouts).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Calls {
    request_timeout: Duration,
    attempt_timeout: Duration,
}

impl Calls {
    /// Calls that take at most `request_timeout` unless they set a deadline, whose
    /// attempts take at most `attempt_timeout` (twice that after each one that timed out).
    pub(crate) fn new(request_timeout: Duration, attempt_timeout: Duration) -> Self {
        Self {
            request_timeout,
            attempt_timeout,
        }
    }

    /// How long a call may take, retries included: its own `deadline`, else the request
    /// timeout.
    pub(crate) fn budget(self, deadline: Option<Duration>) -> Duration {
        deadline.unwrap_or(self.request_timeout)
    }

    /// Runs a read RPC on the nodes `opts` route it to through [`call`], within the
    /// read's deadline: each attempt gets the time left.
    pub(crate) async fn read<T, F, Fut>(
        self,
        router: &Router,
        opts: ReadOptions,
        attempt: F,
    ) -> Result<(T, String), ClientError>
    where
        F: FnMut(StorageServiceClient<Channel>, Duration) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let budget = self.budget(opts.deadline);
        call(
            router,
            self.attempt_timeout,
            opts.route(),
            Kind::Read,
            budget,
            attempt,
        )
        .await
    }

    /// Runs a write RPC on the leader through [`call`], within the deadline of `opts`:
    /// every attempt sends the same request (its exactly-once header included) with the
    /// time left.
    pub(crate) async fn write<Req, Resp, F, Fut>(
        self,
        router: &Router,
        req: Req,
        opts: CallOptions,
        rpc: F,
    ) -> Result<(Resp, String), ClientError>
    where
        Req: Clone,
        F: Fn(StorageServiceClient<Channel>, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let budget = self.budget(opts.deadline);
        call(
            router,
            self.attempt_timeout,
            Route::Leader,
            Kind::Write,
            budget,
            |c, t| {
                let sent = rpc(c, request(req.clone(), t));
                async move { sent.await.map(tonic::Response::into_inner) }
            },
        )
        .await
    }
}

/// Runs one call: attempts on the nodes `route` picks until one succeeds, one fails
/// for good, or `budget` passes. Returns the answer and the endpoint that gave it.
async fn call<T, F, Fut>(
    router: &Router,
    attempt_timeout: Duration,
    route: Route,
    kind: Kind,
    budget: Duration,
    mut attempt: F,
) -> Result<(T, String), ClientError>
where
    F: FnMut(StorageServiceClient<Channel>, Duration) -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let mut call = Call::new(router, attempt_timeout, kind, budget);
    while let Some((endpoint, for_attempt)) = call.next_attempt(route) {
        let result = tokio::time::timeout(
            for_attempt,
            attempt_on(router, &endpoint, for_attempt, &mut attempt),
        )
        .await;
        let retried = call.sent;
        let status = match result {
            Ok(Ok(v)) => return Ok((v, endpoint)),
            Ok(Err((reached, status))) => {
                call.sent |= reached;
                status
            }
            Err(_) => {
                call.timed_out(endpoint, for_attempt);
                continue;
            }
        };
        if let Some(e) = final_error(kind, retried, &endpoint, &status) {
            return Err(e);
        }
        call.refused(&endpoint, &status).await;
    }
    Err(call.deadline_exceeded())
}

/// One attempt on the node at `endpoint`. A failure says whether the request was sent
/// (a write then may have been applied) and why it failed; a connection that cannot be
/// made is an UNAVAILABLE that sent nothing.
async fn attempt_on<T, F, Fut>(
    router: &Router,
    endpoint: &str,
    for_attempt: Duration,
    attempt: &mut F,
) -> Result<T, (bool, Status)>
where
    F: FnMut(StorageServiceClient<Channel>, Duration) -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let client = match router.storage(endpoint).await {
        Ok(c) => c,
        Err(e) => return Err((false, Status::unavailable(e.to_string()))),
    };
    attempt(client, for_attempt).await.map_err(|s| (true, s))
}

/// One call in progress: its deadline and what its attempts so far have shown.
struct Call<'a> {
    router: &'a Router,
    attempt_timeout: Duration,
    kind: Kind,
    budget: Duration,
    deadline: Instant,
    backoff: Duration,
    /// The last failure seen, named in the error if the deadline passes.
    last: String,
    /// Whether some attempt reached a node (or may have: it timed out).
    sent: bool,
    first: bool,
    /// Where a leader hint said to go next.
    hinted: Option<String>,
    /// Nodes that let an attempt of this call time out: avoided while others remain.
    silent: Vec<String>,
    /// Leader hints followed without a pause since the last backoff.
    redirects: u32,
}

impl<'a> Call<'a> {
    fn new(router: &'a Router, attempt_timeout: Duration, kind: Kind, budget: Duration) -> Self {
        Self {
            router,
            attempt_timeout,
            kind,
            budget,
            deadline: Instant::now() + budget,
            backoff: MIN_BACKOFF,
            last: String::from("no attempt made"),
            sent: false,
            first: true,
            hinted: None,
            silent: Vec::new(),
            redirects: 0,
        }
    }

    /// The endpoint of the next attempt and how long it may take, or `None` once the
    /// deadline has passed or there is no node to try.
    fn next_attempt(&mut self, route: Route) -> Option<(String, Duration)> {
        let now = Instant::now();
        if now >= self.deadline {
            return None;
        }
        let endpoint =
            self.router
                .next_endpoint(route, self.first, self.hinted.take(), &self.silent)?;
        self.first = false;
        let remaining = self.deadline - now;
        // Doubles with every attempt that timed out, so a call that is slow but
        // progressing (a large batch, a stalled disk) still gets to finish.
        let for_attempt = remaining.min(
            self.attempt_timeout
                .saturating_mul(1 << self.silent.len().min(5)),
        );
        Some((endpoint, for_attempt))
    }

    /// The attempt on `endpoint` got no answer within `waited`: it may have been applied,
    /// the node is no longer taken for the leader, its connection is dropped, and this
    /// call avoids it from now on. The next attempt follows at once.
    fn timed_out(&mut self, endpoint: String, waited: Duration) {
        self.sent = true;
        self.last = format!("{endpoint}: no answer within {waited:?}");
        self.router.forget_leader(&endpoint);
        self.router.drop_channel(&endpoint);
        self.silent.push(endpoint);
    }

    /// `endpoint` refused the attempt with a `status` worth retrying: the next attempt
    /// goes where its leader hint points, or follows a pause.
    async fn refused(&mut self, endpoint: &str, status: &Status) {
        tracing::debug!(%endpoint, code = ?status.code(), message = status.message(), "attempt failed; retrying");
        self.last = format!("{endpoint}: {}: {}", status.code(), status.message());
        if !self.follow_hint(endpoint, status) {
            self.redirects = 0;
            self.pause().await;
        }
    }

    /// Learns from a refusal where the leader is; returns whether the next attempt goes
    /// straight there. A refusal naming no leader's address unseats `endpoint` as the
    /// known leader, and drops its connection if that looks broken.
    fn follow_hint(&mut self, endpoint: &str, status: &Status) -> bool {
        match LeaderHint::from_status(status) {
            Some(LeaderHint {
                id,
                addr: Some(hint),
            }) => {
                let addr = self.router.learn_leader(id, hint);
                // Go straight there, unless it already let this call time out or
                // nodes keep pointing at each other (stale views mid-election).
                if addr != endpoint && !self.silent.contains(&addr) && self.redirects < 2 {
                    self.redirects += 1;
                    self.hinted = Some(addr);
                    return true;
                }
            }
            _ => {
                self.router.forget_leader(endpoint);
                if matches!(
                    status.code(),
                    Code::Unavailable | Code::Unknown | Code::Cancelled
                ) {
                    self.router.drop_channel(endpoint);
                }
            }
        }
        false
    }

    /// Waits before the next attempt (never past the deadline), twice as long each time
    /// up to [`MAX_BACKOFF`].
    async fn pause(&mut self) {
        tokio::time::sleep(
            self.backoff
                .min(self.deadline.saturating_duration_since(Instant::now())),
        )
        .await;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// How the call ends when its deadline passes (or no node is left to try).
    fn deadline_exceeded(self) -> ClientError {
        ClientError::DeadlineExceeded {
            deadline: self.budget,
            outcome_unknown: self.kind == Kind::Write && self.sent,
            last: self.last,
        }
    }
}

/// The error a failed attempt ends its call with, or `None` to try again. A write that
/// was retried after an earlier attempt reached a node, and is now refused as older than
/// the client's last sequence, may have been applied by that earlier attempt: its outcome
/// is unknown, not a conflict.
fn final_error(kind: Kind, retried: bool, endpoint: &str, status: &Status) -> Option<ClientError> {
    if kind == Kind::Write
        && retried
        && status
            .metadata()
            .contains_key(sutra_proto::STALE_SEQUENCE_METADATA_KEY)
    {
        return Some(ClientError::OutcomeUnknown {
            message: format!("{endpoint}: {}", status.message()),
        });
    }
    (!retryable(status)).then(|| ClientError::from_status(status.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stale_sequence() -> Status {
        let mut s =
            Status::failed_precondition("sequence 5 of client \"c\" is older than its last (6)");
        s.metadata_mut().insert(
            sutra_proto::STALE_SEQUENCE_METADATA_KEY,
            "6".parse().unwrap(),
        );
        s
    }

    #[test]
    fn a_retried_write_refused_as_stale_has_an_unknown_outcome() {
        let e = final_error(Kind::Write, true, "n1:1", &stale_sequence());
        assert!(
            matches!(e, Some(ClientError::OutcomeUnknown { .. })),
            "{e:?}"
        );
        // Sent once only: nothing of this write was applied before, a plain refusal.
        let e = final_error(Kind::Write, false, "n1:1", &stale_sequence());
        assert!(matches!(e, Some(ClientError::Conflict { .. })), "{e:?}");
        // A CAS conflict on a retry stays a conflict: the session answered it.
        let cas = Status::failed_precondition("version mismatch");
        let e = final_error(Kind::Write, true, "n1:1", &cas);
        assert!(matches!(e, Some(ClientError::Conflict { .. })), "{e:?}");
        assert!(final_error(Kind::Write, true, "n1:1", &Status::unavailable("x")).is_none());
    }
}
