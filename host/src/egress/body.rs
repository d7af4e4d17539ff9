//! The bodies the egress client hands to hyper and back to the component: the upstream
//! response body with its between-bytes timeout, overall deadline and byte cap
//! ([`GuardedBody`]); and, for a GET/HEAD, an empty body while the component's own body is
//! drained in a task (hyper drops a GET/HEAD body once the head is written, which would fail the
//! component's body writer).
//!
//! Threat: an upstream that stalls, trickles or never ends its body. Not handled here: timeouts
//! before the response head (see `client`).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};
use wasmtime_wasi_http::{Error, WasiBody};

use super::wasi_error::hyper_error;

pub(super) fn empty_body() -> WasiBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Read and discard the component's request body in a task so its writer never sees a closed
/// stream. Frames are dropped as they arrive, so a large body is not buffered.
pub(super) fn drain_in_background(mut body: WasiBody) {
    if body.is_end_stream() {
        return;
    }
    tokio::spawn(async move {
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                break;
            }
        }
    });
}

/// The upstream body with a between-bytes timeout, an optional overall deadline and a byte cap.
/// After the first error it reports end of stream.
pub(super) struct GuardedBody {
    inner: Incoming,
    between_bytes: Duration,
    idle: Pin<Box<Sleep>>,
    deadline: Option<Pin<Box<Sleep>>>,
    limit: u64,
    seen: u64,
    done: bool,
}

impl GuardedBody {
    pub(super) fn new(
        inner: Incoming,
        between_bytes: Duration,
        deadline: Option<Instant>,
        limit: u64,
    ) -> Self {
        Self {
            inner,
            between_bytes,
            idle: Box::pin(tokio::time::sleep(between_bytes)),
            deadline: deadline.map(|at| Box::pin(tokio::time::sleep_until(at))),
            limit,
            seen: 0,
            done: false,
        }
    }

    fn fail(&mut self, err: Error) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.done = true;
        Poll::Ready(Some(Err(err)))
    }
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(deadline) = this.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return this.fail(Error::HttpResponseTimeout);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen = this.seen.saturating_add(data.len() as u64);
                    if this.seen > this.limit {
                        return this.fail(Error::HttpResponseBodySize(Some(this.limit)));
                    }
                }
                let next = Instant::now() + this.between_bytes;
                this.idle.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => this.fail(hyper_error(&err)),
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.idle.as_mut().poll(cx).is_ready() {
                    return this.fail(Error::ConnectionReadTimeout);
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
