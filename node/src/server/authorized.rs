//! [`Authorized`]: a generated client-API server behind the role check.
//!
//! tonic decodes a request body (up to the service's message limit, tens of MiB) before
//! the handler runs, so a role check inside the handler comes after the cost. This
//! wrapper sits in front of the generated server, where the request is still HTTP: it
//! looks only at the path and the TLS connect info (`auth::authorize`), answers a refused
//! call with its status at once, dropping the body unread, and otherwise passes the call
//! on with the [`Caller`](crate::auth::Caller) in its extensions. Calls of admin methods,
//! let through or refused, are audited (`audit.rs`).

use std::convert::Infallible;
use std::task::{Context, Poll};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Either, Ready, ready};
use sutra_certs::Role;
use tonic::body::Body;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;

use super::audit::AuditRecord;
use crate::auth::{self, Caller, Identify};

/// `S` behind the role check of `I`.
#[derive(Debug, Clone)]
pub(crate) struct Authorized<S, I> {
    inner: S,
    identify: I,
}

impl<S, I> Authorized<S, I> {
    pub(crate) fn new(inner: S, identify: I) -> Self {
        Self { inner, identify }
    }
}

impl<S: NamedService, I> NamedService for Authorized<S, I> {
    const NAME: &'static str = S::NAME;
}

impl<S, I> Service<http::Request<Body>> for Authorized<S, I>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
    I: Identify,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Either<
        Either<S::Future, BoxFuture<'static, Result<http::Response<Body>, Infallible>>>,
        Ready<Result<http::Response<Body>, Infallible>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        let path = req.uri().path().to_owned();
        let admin = auth::required_role(&path) == Some(Role::Admin);
        match auth::authorize(&self.identify, &path, req.extensions_mut()) {
            Ok(caller) if admin => {
                let record = AuditRecord::start(&path, caller_name(&caller));
                req.extensions_mut().insert(caller);
                let call = self.inner.call(req);
                Either::Left(Either::Right(
                    call.map(|r| r.map(|resp| record.watch(resp))).boxed(),
                ))
            }
            Ok(caller) => {
                req.extensions_mut().insert(caller);
                Either::Left(Either::Left(self.inner.call(req)))
            }
            Err(status) => {
                tracing::debug!(path, code = ?status.code(), message = status.message(), "client call refused before decoding");
                if admin {
                    let who = match self.identify.identify(req.extensions_mut()) {
                        Ok(id) => caller_name(&Caller(id.map(std::sync::Arc::new))),
                        Err(_) => "unidentified".to_string(),
                    };
                    AuditRecord::start(&path, who).finish(status.code(), status.message());
                }
                Either::Right(ready(Ok(status.into_http())))
            }
        }
    }
}

/// How the audit trail names a caller: its certificate identity, or `anonymous` on an
/// endpoint without authentication.
fn caller_name(caller: &Caller) -> String {
    caller
        .0
        .as_ref()
        .map_or_else(|| "anonymous".to_string(), |id| id.uri())
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use sutra_certs::{Identity, Role};
    use tonic::Status;
    use tonic::codegen::Bytes;

    use super::*;
    use crate::auth::Caller;

    /// A request body that records being polled and would be 100 MiB if it were read.
    #[derive(Debug)]
    struct Untouched(Arc<AtomicBool>);

    impl tonic::codegen::Body for Untouched {
        type Data = Bytes;
        type Error = Status;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
            self.0.store(true, Ordering::SeqCst);
            Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(vec![
                0u8;
                100 << 20
            ])))))
        }
    }

    /// The generated server stand-in: counts calls and reads the whole body, as the
    /// codec would.
    #[derive(Debug, Clone, Default)]
    struct Decoder {
        calls: Arc<AtomicUsize>,
        saw_caller: Arc<AtomicBool>,
    }

    impl Service<http::Request<Body>> for Decoder {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = futures_util::future::BoxFuture<'static, Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: http::Request<Body>) -> Self::Future {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.saw_caller
                .store(req.extensions().get::<Caller>().is_some(), Ordering::SeqCst);
            Box::pin(async move {
                let mut body = req.into_body();
                let _ = std::future::poll_fn(|cx| {
                    tonic::codegen::Body::poll_frame(Pin::new(&mut body), cx)
                })
                .await;
                Ok(http::Response::new(Body::empty()))
            })
        }
    }

    #[derive(Debug, Clone)]
    struct Presents(Identity);

    impl Identify for Presents {
        fn identify(&self, _: &mut http::Extensions) -> Result<Option<Identity>, Status> {
            Ok(Some(self.0.clone()))
        }
    }

    fn put_concept(polled: &Arc<AtomicBool>) -> http::Request<Body> {
        http::Request::builder()
            .method("POST")
            .uri("/sutra.storage.StorageService/PutConcept")
            .header("content-type", "application/grpc")
            .body(Body::new(Untouched(polled.clone())))
            .expect("a valid request")
    }

    /// A read-only certificate's oversized PutConcept is answered PERMISSION_DENIED by the
    /// wrapper itself: the inner server (the codec) is never called and the body never
    /// polled. The same request from a writer does reach it, with the caller attached.
    #[tokio::test]
    async fn a_readers_oversized_write_is_refused_before_its_body_is_read() {
        let reader = Presents(Identity::Client {
            name: "r".into(),
            role: Role::Read,
        });
        let decoder = Decoder::default();
        let mut svc = Authorized::new(decoder.clone(), reader);
        let polled = Arc::new(AtomicBool::new(false));
        let resp = svc.call(put_concept(&polled)).await.unwrap();
        let status = Status::from_header_map(resp.headers()).expect("a trailers-only status");
        assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
        assert!(status.message().contains("write role"), "{status:?}");
        assert!(!polled.load(Ordering::SeqCst), "the body was polled");
        assert_eq!(decoder.calls.load(Ordering::SeqCst), 0);

        let writer = Presents(Identity::Client {
            name: "w".into(),
            role: Role::Write,
        });
        let mut svc = Authorized::new(decoder.clone(), writer);
        let polled = Arc::new(AtomicBool::new(false));
        svc.call(put_concept(&polled)).await.unwrap();
        assert_eq!(decoder.calls.load(Ordering::SeqCst), 1);
        assert!(decoder.saw_caller.load(Ordering::SeqCst));
        assert!(polled.load(Ordering::SeqCst), "the writer's body is read");
    }
}
