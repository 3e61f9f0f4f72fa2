//! The retry loop: a call's attempts on the nodes its route picks until one answers, one
//! fails for good, or the call's deadline passes; how long each attempt may take, the
//! pause between attempts, and which failures end a call with which error.

use std::future::Future;
use std::time::{Duration, Instant};

use sutra_proto::LeaderHint;
use sutra_proto::storage::storage_service_client::StorageServiceClient;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::error::{ClientError, retryable};
use crate::options::Route;
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

/// Runs a read RPC on the nodes `route` picks through [`call`]: each attempt gets the
/// time left.
pub(crate) async fn read<T, F, Fut>(
    router: &Router,
    attempt_timeout: Duration,
    route: Route,
    budget: Duration,
    attempt: F,
) -> Result<(T, String), ClientError>
where
    F: FnMut(StorageServiceClient<Channel>, Duration) -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    call(router, attempt_timeout, route, Kind::Read, budget, attempt).await
}

/// Runs a write RPC on the leader through [`call`]: every attempt sends the same request
/// (its exactly-once header included) with the time left.
pub(crate) async fn write<Req, Resp, F, Fut>(
    router: &Router,
    attempt_timeout: Duration,
    budget: Duration,
    req: Req,
    rpc: F,
) -> Result<(Resp, String), ClientError>
where
    Req: Clone,
    F: Fn(StorageServiceClient<Channel>, tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
{
    call(
        router,
        attempt_timeout,
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
    let deadline = Instant::now() + budget;
    let mut backoff = MIN_BACKOFF;
    let mut last = String::from("no attempt made");
    let mut sent = false;
    let mut first = true;
    let mut hinted: Option<String> = None;
    // Nodes that let an attempt of this call time out: avoided while others remain.
    let mut silent: Vec<String> = Vec::new();
    // Leader hints followed without a pause since the last backoff.
    let mut redirects = 0;
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let Some(endpoint) = router.next_endpoint(route, first, hinted.take(), &silent) else {
            break;
        };
        first = false;
        let remaining = deadline - now;
        // Doubles with every attempt that timed out, so a call that is slow but
        // progressing (a large batch, a stalled disk) still gets to finish.
        let for_attempt = remaining.min(attempt_timeout.saturating_mul(1 << silent.len().min(5)));
        let result = tokio::time::timeout(for_attempt, async {
            let client = match router.storage(&endpoint).await {
                Ok(c) => c,
                Err(e) => return Err((false, Status::unavailable(e.to_string()))),
            };
            attempt(client, for_attempt).await.map_err(|s| (true, s))
        })
        .await;
        let retried = sent;
        let status = match result {
            Ok(Ok(v)) => return Ok((v, endpoint)),
            Ok(Err((reached, status))) => {
                sent |= reached;
                status
            }
            Err(_) => {
                sent = true;
                last = format!("{endpoint}: no answer within {for_attempt:?}");
                router.forget_leader(&endpoint);
                router.drop_channel(&endpoint);
                silent.push(endpoint);
                continue;
            }
        };
        if let Some(e) = final_error(kind, retried, &endpoint, &status) {
            return Err(e);
        }
        tracing::debug!(%endpoint, code = ?status.code(), message = status.message(), "attempt failed; retrying");
        last = format!("{endpoint}: {}: {}", status.code(), status.message());
        let mut redirected = false;
        match LeaderHint::from_status(&status) {
            Some(LeaderHint {
                id,
                addr: Some(hint),
            }) => {
                let addr = router.follow_hint(id, hint);
                // Go straight there, unless it already let this call time out or
                // nodes keep pointing at each other (stale views mid-election).
                if addr != endpoint && !silent.contains(&addr) && redirects < 2 {
                    redirected = true;
                    redirects += 1;
                    hinted = Some(addr);
                }
            }
            _ => {
                router.forget_leader(&endpoint);
                if matches!(
                    status.code(),
                    Code::Unavailable | Code::Unknown | Code::Cancelled
                ) {
                    router.drop_channel(&endpoint);
                }
            }
        }
        if !redirected {
            redirects = 0;
            tokio::time::sleep(backoff.min(deadline.saturating_duration_since(Instant::now())))
                .await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
    Err(ClientError::DeadlineExceeded {
        deadline: budget,
        outcome_unknown: kind == Kind::Write && sent,
        last,
    })
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
