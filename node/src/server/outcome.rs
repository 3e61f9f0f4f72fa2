//! When a gRPC call's outcome is known: in the response headers when the call failed
//! before answering (a trailers-only response), otherwise in the trailers at the end of
//! the body. [`on_outcome`] runs a callback once with the status code and message, at
//! whichever comes; a body dropped before its end (the caller went away) counts as
//! `CANCELLED`. The audit trail and the call metrics both hang on it.

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::Frame;
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::{Bytes, http};

/// Runs `done` with the call's code and message once `response` shows them: at once if
/// its headers carry the status, else when its body ends.
pub(crate) fn on_outcome<F>(response: http::Response<Body>, done: F) -> http::Response<Body>
where
    F: FnOnce(tonic::Code, &str) + Send + 'static,
{
    if let Some(status) = Status::from_header_map(response.headers()) {
        done(status.code(), status.message());
        return response;
    }
    response.map(|body| {
        Body::new(Watched {
            inner: body,
            done: Some(done),
        })
    })
}

/// A response body that reports its call's outcome when its trailers arrive, it ends,
/// or it is dropped.
struct Watched<F: FnOnce(tonic::Code, &str)> {
    inner: Body,
    done: Option<F>,
}

impl<F: FnOnce(tonic::Code, &str)> Watched<F> {
    fn finish(&mut self, code: tonic::Code, message: &str) {
        if let Some(done) = self.done.take() {
            done(code, message);
        }
    }
}

// The callback is never pinned: it is taken out and called by value.
impl<F: FnOnce(tonic::Code, &str)> Unpin for Watched<F> {}

impl<F: FnOnce(tonic::Code, &str) + Send + 'static> http_body::Body for Watched<F> {
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

impl<F: FnOnce(tonic::Code, &str)> Drop for Watched<F> {
    fn drop(&mut self) {
        self.finish(
            tonic::Code::Cancelled,
            "the caller went away before the answer ended",
        );
    }
}
