//! [`LimitedIncoming`]: accepted connections, at most so many open at once.
//!
//! Each accepted connection holds a semaphore permit until it is closed (the stream that
//! carries it is dropped, which tonic does when the connection ends, TLS handshake
//! failures and timeouts included). A connection accepted while every permit is taken is
//! closed at once, before a TLS handshake costs anything, and a warning says so at most
//! once per [`WARN_EVERY`] with the number closed since the last one.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};

/// Refused connections are reported at most this often.
pub(super) const WARN_EVERY: Duration = Duration::from_secs(10);

/// A listener's accepted connections, at most `max` open at once.
#[derive(Debug)]
pub(super) struct LimitedIncoming {
    inner: TcpIncoming,
    permits: Arc<Semaphore>,
    max: usize,
    /// Which endpoint, for the warning.
    endpoint: &'static str,
    refused: Arc<AtomicU64>,
    refused_since_warning: u64,
    last_warning: Option<Instant>,
}

impl LimitedIncoming {
    /// Limits `inner` to `max` open connections (`max` ≥ 1, checked by the config).
    pub(super) fn new(inner: TcpIncoming, max: usize, endpoint: &'static str) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(max)),
            max,
            endpoint,
            refused: Arc::new(AtomicU64::new(0)),
            refused_since_warning: 0,
            last_warning: None,
        }
    }

    /// Connections closed at once so far because the limit was reached.
    #[cfg(test)]
    fn refused(&self) -> Arc<AtomicU64> {
        self.refused.clone()
    }

    fn note_refused(&mut self, remote: Option<std::net::SocketAddr>) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        self.refused_since_warning += 1;
        let now = Instant::now();
        if self
            .last_warning
            .is_none_or(|t| now.duration_since(t) >= WARN_EVERY)
        {
            tracing::warn!(
                endpoint = self.endpoint,
                max_connections = self.max,
                refused = self.refused_since_warning,
                last_remote = ?remote,
                "connection limit reached: closing new connections at once"
            );
            self.last_warning = Some(now);
            self.refused_since_warning = 0;
        }
    }
}

impl Stream for LimitedIncoming {
    type Item = Result<LimitedStream, io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let stream = match std::task::ready!(Pin::new(&mut this.inner).poll_next(cx)) {
                Some(Ok(stream)) => stream,
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => return Poll::Ready(None),
            };
            match this.permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    return Poll::Ready(Some(Ok(LimitedStream {
                        inner: stream,
                        _permit: permit,
                    })));
                }
                // Dropping the stream closes the connection; accept the next one.
                Err(_) => this.note_refused(stream.peer_addr().ok()),
            }
        }
    }
}

/// An accepted connection holding its place under the limit until it is dropped.
#[derive(Debug)]
pub(super) struct LimitedStream {
    inner: TcpStream,
    _permit: OwnedSemaphorePermit,
}

/// The same connection info as a bare `TcpStream`, so that tonic's `remote_addr()` and
/// `peer_certs()` (which look for `TcpConnectInfo` under TLS) keep working.
impl Connected for LimitedStream {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt as _;
    use tokio::io::AsyncReadExt as _;
    use tokio::net::TcpListener;

    use super::*;

    /// Two connections fit; a third is closed at once and counted; once one of the two
    /// closes, a new connection is accepted again.
    #[tokio::test]
    async fn connections_over_the_limit_are_closed_and_places_come_back() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = LimitedIncoming::new(TcpIncoming::from(listener), 2, "test");
        let refused = incoming.refused();
        let (tx, mut accepted) = tokio::sync::mpsc::unbounded_channel();
        let server = tokio::spawn(async move {
            let mut incoming = std::pin::pin!(incoming);
            while let Some(conn) = incoming.next().await {
                if tx.send(conn.unwrap()).is_err() {
                    return;
                }
            }
        });
        let wait = Duration::from_secs(5);
        let recv = async |rx: &mut tokio::sync::mpsc::UnboundedReceiver<LimitedStream>| {
            tokio::time::timeout(wait, rx.recv())
                .await
                .expect("accepted in time")
                .expect("server running")
        };

        let _a = TcpStream::connect(addr).await.unwrap();
        let _b = TcpStream::connect(addr).await.unwrap();
        let first = recv(&mut accepted).await;
        let _second = recv(&mut accepted).await;

        let mut c = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 1];
        // Closed by the server without a byte: end of stream, or a reset.
        let read = tokio::time::timeout(wait, c.read(&mut buf))
            .await
            .expect("the third connection is closed at once");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert_eq!(refused.load(Ordering::Relaxed), 1);
        assert!(accepted.try_recv().is_err(), "nothing else was accepted");

        drop(first);
        let _d = TcpStream::connect(addr).await.unwrap();
        let _fourth = recv(&mut accepted).await;
        assert_eq!(refused.load(Ordering::Relaxed), 1);
        server.abort();
    }
}
