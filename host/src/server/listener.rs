//! The accept loop: every client connection is served by hyper (HTTP/1.1 and HTTP/2) under the
//! front door's connection-level bounds, so no client can pin the host by being slow.
//!
//! Threats handled here: a client that trickles its request headers (slowloris), or connects and
//! sends nothing, is cut off after `CLIENT_HEADER_TIMEOUT_SECONDS`; a client that stops reading its answer makes writes stall,
//! and a write that makes no progress for `CLIENT_WRITE_TIMEOUT_SECONDS` fails, which ends the
//! connection and drops the response (its request then ends like a disconnect); more than
//! `MAX_CONNECTIONS` open connections are answered `503` and closed at once instead of queuing
//! without bound. Not handled here: slow request bodies and the total bytes of bodies being read
//! (see `limits`), and floods that exhaust the kernel's accept backlog before a connection is
//! accepted.

use crate::metrics::Metrics;
use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// The connection-level bounds of the listener.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Open connections at once (`MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// Time to send a request's headers (`CLIENT_HEADER_TIMEOUT_SECONDS`).
    pub header_timeout: Duration,
    /// A write that makes no progress for this long fails (`CLIENT_WRITE_TIMEOUT_SECONDS`).
    pub write_timeout: Duration,
}

/// What a client over `MAX_CONNECTIONS` gets before its connection is closed.
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 100\r\n\r\n{\"error\":{\"message\":\"too many open connections\",\"type\":\"server_busy\",\"code\":\"too_many_connections\"}}";

/// How long the refusal above may take to write; a client that does not take it is dropped.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Serve `router` on `listener` until `shutdown` resolves; then stop accepting and wait for the
/// open connections to finish their in-flight requests (idle ones are closed at once).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Per-connection failures (reset before accept) and running out of file
                    // descriptors: log, back off briefly, keep serving.
                    tracing::debug!(error = %e, "accept failed");
                    if !is_connection_error(&e) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            metrics.incr("connections_refused", "max_connections");
            tracing::warn!(
                error.type = "too_many_connections",
                max_connections = limits.max_connections,
                "connection refused: too many open connections"
            );
            tokio::spawn(refuse(tcp));
            continue;
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let io = TokioIo::new(ClientIo::new(
            tcp,
            limits.header_timeout,
            limits.write_timeout,
            metrics.clone(),
        ));
        let service = TowerToHyperService::new(
            router
                .clone()
                .map_request(|req: Request<Incoming>| req.map(axum::body::Body::new)),
        );
        let conn = builder
            .serve_connection_with_upgrades(io, service)
            .into_owned();
        let conn = graceful.watch(conn);
        let metrics = metrics.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                // hyper's own timer fired: the request head did not arrive in time.
                if e.downcast_ref::<hyper::Error>()
                    .is_some_and(hyper::Error::is_timeout)
                {
                    metrics.incr("client_timeouts", "header");
                    tracing::info!(
                        error.type = "client_header_timeout",
                        "the client did not send its request headers in time; connection closed"
                    );
                } else {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Errors of one incoming connection, not of the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Answer `503` to a connection over the limit and close it.
async fn refuse(mut tcp: TcpStream) {
    let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, async {
        tcp.write_all(OVER_CAPACITY).await?;
        tcp.shutdown().await
    })
    .await;
}

/// Bytes a client must send within `CLIENT_HEADER_TIMEOUT_SECONDS` of connecting: the HTTP/2
/// connection preface is this long, and so is the start of any HTTP/1.1 request line we serve.
/// Until they arrive hyper is still choosing the protocol, before its own header timer runs.
const OPENING_BYTES: usize = 24;

/// A client connection under two clocks. Its opening bytes must arrive within the header
/// timeout (a connection that sends nothing is closed; hyper's header timer covers the rest of
/// the head). Its writes fail when they make no progress for the write timeout: a client that
/// stops reading fills its socket buffer, every further write waits, and after the timeout the
/// write errors instead of waiting forever. Any progress restarts the write clock.
pub struct ClientIo<T> {
    inner: T,
    opening: Option<Pin<Box<tokio::time::Sleep>>>,
    read_so_far: usize,
    write_timeout: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
    metrics: Arc<Metrics>,
}

impl<T> ClientIo<T> {
    /// Must be called inside the tokio runtime (the opening clock starts now).
    pub fn new(
        inner: T,
        header_timeout: Duration,
        write_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        ClientIo {
            inner,
            opening: Some(Box::pin(tokio::time::sleep(header_timeout))),
            read_so_far: 0,
            write_timeout,
            stalled: None,
            metrics,
        }
    }

    /// Turn a pending write into a timeout error once it has been pending for the timeout.
    fn on_pending_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let timeout = self.write_timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(sleep.as_mut().poll(cx));
        self.stalled = None;
        self.metrics.incr("client_timeouts", "write");
        tracing::info!(
            error.type = "client_write_timeout",
            timeout_seconds = timeout.as_secs(),
            "the client stopped reading; closing its connection"
        );
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client read nothing for CLIENT_WRITE_TIMEOUT_SECONDS",
        ))
    }

    fn progress<R>(
        &mut self,
        out: Poll<io::Result<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<R>> {
        match out {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => self.on_pending_write(cx).map(Err),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ClientIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let out = Pin::new(&mut this.inner).poll_read(cx, buf);
        let Some(opening) = this.opening.as_mut() else {
            return out;
        };
        match out {
            Poll::Ready(r) => {
                this.read_so_far += buf.filled().len().saturating_sub(before);
                if this.read_so_far >= OPENING_BYTES {
                    this.opening = None;
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                ready!(opening.as_mut().poll(cx));
                this.opening = None;
                this.metrics.incr("client_timeouts", "header");
                tracing::info!(
                    error.type = "client_header_timeout",
                    "the client sent no request in time; closing its connection"
                );
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no request within CLIENT_HEADER_TIMEOUT_SECONDS",
                )))
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ClientIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let out = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(out, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let out = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progress(out, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let out = Pin::new(&mut this.inner).poll_flush(cx);
        this.progress(out, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let out = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.progress(out, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    const LONG: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn a_client_that_sends_too_little_in_time_is_cut_off_and_one_that_sends_enough_is_not() {
        let metrics = Arc::new(Metrics::default());
        let (a, mut peer) = tokio::io::duplex(1024);
        let mut io = ClientIo::new(a, Duration::from_millis(50), LONG, metrics.clone());
        peer.write_all(b"GET / HT").await.unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(io.read(&mut buf).await.unwrap(), 8);
        let err = io.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(metrics.get("client_timeouts", "header"), 1);

        let (a, mut peer) = tokio::io::duplex(1024);
        let mut io = ClientIo::new(a, Duration::from_millis(50), LONG, metrics.clone());
        peer.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        assert!(io.read(&mut buf).await.unwrap() >= OPENING_BYTES);
        // Past the opening bytes the clock is hyper's: a quiet client is no longer cut here.
        let quiet = tokio::time::timeout(Duration::from_millis(150), io.read(&mut buf)).await;
        assert!(quiet.is_err(), "the read is still waiting");
        assert_eq!(metrics.get("client_timeouts", "header"), 1);
    }

    #[tokio::test]
    async fn a_write_the_reader_never_takes_fails_after_the_timeout() {
        let (a, _b) = tokio::io::duplex(64);
        let metrics = Arc::new(Metrics::default());
        let mut w = ClientIo::new(a, LONG, Duration::from_millis(50), metrics.clone());
        let err = w.write_all(&[0u8; 1024]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(metrics.get("client_timeouts", "write"), 1);
        // A reader that keeps reading keeps the writer going however long the whole takes.
        let (a, mut b2) = tokio::io::duplex(64);
        let mut w = ClientIo::new(a, LONG, Duration::from_millis(200), metrics.clone());
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut chunk = [0u8; 16];
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                match b2.read(&mut chunk).await {
                    Ok(0) | Err(_) => break got,
                    Ok(n) => got.extend_from_slice(&chunk[..n]),
                }
            }
        });
        w.write_all(&[7u8; 2048]).await.unwrap();
        drop(w);
        assert_eq!(reader.await.unwrap().len(), 2048);
    }
}
