//! The connector stack of the egress client: [`CheckedConnector`] judges the URI it is asked to
//! dial, resolves the name once, drops every answer the policy refuses and dials only what is
//! left (so there is no second lookup to rebind); [`TimedConnector`] bounds the whole connect,
//! TCP and TLS, by the connect timeout.
//!
//! Threat: DNS answers pointing at loopback, private or metadata addresses, rebinding between a
//! check and the connect, IP literals that skip a resolver, and connects that never finish. Not
//! handled here: what happens after the connection exists (see `client` and `body`).

use std::error::Error as StdError;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http::Uri;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower::Service;
use wasmtime_wasi_http::Error;

use super::policy::{Authority, Denial, EgressPolicy, Target};
use super::refusal::{loggable_authority, record_refusal};
use super::resolver::Resolver;
use super::wasi_error::io_error_code;
use crate::metrics::Metrics;

pub(super) type BoxError = Box<dyn StdError + Send + Sync>;

/// Why the connector did not produce a connection.
#[derive(Debug, thiserror::Error)]
pub(super) enum ConnectError {
    #[error("egress refused: {0}")]
    Denied(#[from] Denial),
    #[error("connecting timed out")]
    Timeout,
    #[error("connecting to {authority} failed: {source}")]
    Io {
        authority: Authority,
        #[source]
        source: io::Error,
    },
}

impl ConnectError {
    pub(super) fn to_wasi_error(&self) -> Error {
        match self {
            Self::Denied(denial) => denial.to_wasi_error(),
            Self::Timeout => Error::ConnectionTimeout,
            Self::Io { source, .. } => io_error_code(source),
        }
    }
}

/// Judges the URI, resolves once, keeps only the addresses the policy accepts, and dials them in
/// order. Never reads proxy settings.
#[derive(Clone)]
pub(super) struct CheckedConnector {
    pub(super) policy: Arc<EgressPolicy>,
    pub(super) resolver: Arc<dyn Resolver>,
    pub(super) metrics: Arc<Metrics>,
}

impl Service<Uri> for CheckedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.connect(dst).await })
    }
}

impl CheckedConnector {
    async fn connect(self, dst: Uri) -> Result<TokioIo<TcpStream>, ConnectError> {
        let target = self.policy.check_uri(&dst).inspect_err(|denial| {
            record_refusal(&self.metrics, denial, &loggable_authority(&dst));
        })?;
        let port = target.authority.port;
        let answers = match target.ip_literal {
            // A literal never goes to a resolver; `check_uri` has judged it already and
            // `checked_addresses` judges it again below, through the same function.
            Some(ip) => vec![SocketAddr::new(ip, port)],
            None => self
                .resolver
                .resolve(&target.authority.host, port)
                .await
                .map_err(|err| {
                    let denial = Denial::DnsFailed {
                        authority: target.authority.clone(),
                        kind: err.kind(),
                    };
                    record_refusal(&self.metrics, &denial, &target.authority.to_string());
                    denial
                })?,
        };
        let addrs = checked_addresses(&self.policy, &target, &answers, &self.metrics)?;
        let mut last_error = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    // Small writes (SSE deltas, HTTP/2 frames) must not wait for Nagle.
                    if let Err(err) = stream.set_nodelay(true) {
                        tracing::debug!(%addr, error = %err, "could not set TCP_NODELAY");
                    }
                    return Ok(TokioIo::new(stream));
                }
                Err(err) => {
                    tracing::debug!(%addr, error = %err, "egress connect attempt failed");
                    last_error = Some(err);
                }
            }
        }
        Err(ConnectError::Io {
            authority: target.authority,
            source: last_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::NotConnected)),
        })
    }
}

/// The answers the policy accepts for `target`, on the target's port (a resolver cannot choose
/// the port). Each refused answer is counted and logged; if none is left the request fails with
/// the last refusal (`PrivateAddress`), or `NoAddress` when there were no answers at all.
pub(super) fn checked_addresses(
    policy: &EgressPolicy,
    target: &Target,
    answers: &[SocketAddr],
    metrics: &Metrics,
) -> Result<Vec<SocketAddr>, Denial> {
    let shown = target.authority.to_string();
    let mut kept = Vec::with_capacity(answers.len());
    let mut last_denial = None;
    for answer in answers {
        let addr = SocketAddr::new(answer.ip(), target.authority.port);
        match policy.check_ip(target, addr.ip()) {
            Ok(()) => kept.push(addr),
            Err(denial) => {
                record_refusal(metrics, &denial, &shown);
                last_denial = Some(denial);
            }
        }
    }
    if kept.is_empty() {
        let denial = match last_denial {
            Some(denial) => denial,
            None => {
                let denial = Denial::NoAddress {
                    authority: target.authority.clone(),
                };
                record_refusal(metrics, &denial, &shown);
                denial
            }
        };
        return Err(denial);
    }
    Ok(kept)
}

/// Bounds the whole connect (TCP and TLS) by the host's connect timeout, so a connect the pool
/// finishes in the background after its request gave up cannot hang forever either.
#[derive(Clone)]
pub(super) struct TimedConnector<C> {
    pub(super) inner: C,
    pub(super) timeout: Duration,
}

impl Service<Uri> for TimedConnector<HttpsConnector<CheckedConnector>> {
    type Response = MaybeHttpsStream<TokioIo<TcpStream>>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let connecting = self.inner.call(dst);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(result) => result,
                Err(_) => Err(Box::new(ConnectError::Timeout) as BoxError),
            }
        })
    }
}
