//! Fake tool servers on loopback for the tools tests: an OpenAPI server ([`openapi`]) and an MCP
//! server over streamable HTTP ([`mcp`]). Both speak real HTTP through axum, record every tool call
//! (headers and arguments), track how many calls run at once (current and peak), and can be told
//! per tool to be slow, fail with a 5xx, hang, stall after the first byte, or (MCP) close the
//! session.

pub mod mcp;
pub mod openapi;

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot, watch};

/// How a tool answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behaviour {
    /// Answer at once.
    #[default]
    Normal,
    /// Answer after this long.
    Slow(Duration),
    /// Answer with this HTTP status (a 5xx) and a short error body.
    Fail(u16),
    /// Never answer (the head never comes).
    Hang,
    /// Send the response head and one byte, then nothing more.
    Stall,
    /// MCP: forget the session and answer 404, as a server that closed it does.
    CloseSession,
    /// Wait until [`Recorder::release`] is called, then answer.
    Hold,
}

/// One tool call as a fake received it.
#[derive(Debug, Clone)]
pub struct ToolCallRecord {
    /// The tool (operation id or MCP tool name).
    pub tool: String,
    /// Path and query of the HTTP request.
    pub path: String,
    /// Lowercase header names, lossy values.
    pub headers: Vec<(String, String)>,
    /// The call's arguments as the server saw them (OpenAPI: path/query/body merged).
    pub arguments: Value,
}

impl ToolCallRecord {
    /// First value of a header (case-insensitive name).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What both fakes share: the call log, the concurrency gauge and per-tool behaviours.
#[derive(Debug)]
pub struct Recorder {
    released: watch::Sender<bool>,
    calls: Mutex<Vec<ToolCallRecord>>,
    /// Every HTTP request's headers (spec fetches and protocol messages too).
    requests: Mutex<Vec<Vec<(String, String)>>>,
    behaviours: Mutex<HashMap<String, Behaviour>>,
    current: AtomicUsize,
    peak: AtomicUsize,
    changed: Notify,
    /// A tool list served instead of the built-in one (the OpenAPI document), to change a
    /// server's tools while it runs.
    spec: Mutex<Option<serde_json::Value>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Holds one unit of the concurrency gauge while a call runs (also when the client gives up
/// and the handler is dropped).
pub struct Running<'a>(&'a Recorder);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.current.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_waiters();
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            released: watch::channel(false).0,
            calls: Mutex::default(),
            requests: Mutex::default(),
            behaviours: Mutex::default(),
            current: AtomicUsize::default(),
            peak: AtomicUsize::default(),
            changed: Notify::default(),
            spec: Mutex::default(),
        }
    }
}

impl Recorder {
    /// The tool list to serve instead of the built-in one, if one was set.
    #[must_use]
    pub fn spec(&self) -> Option<serde_json::Value> {
        lock(&self.spec).clone()
    }

    /// Serve `doc` instead of the built-in tool list from now on.
    pub fn set_spec(&self, doc: serde_json::Value) {
        *lock(&self.spec) = Some(doc);
    }

    /// Let every held call (and every later one) answer.
    pub fn release(&self) {
        self.released.send_replace(true);
    }

    /// Wait (in a `Hold` call) until released.
    pub(crate) async fn held(&self) {
        let mut rx = self.released.subscribe();
        let _ = rx.wait_for(|released| *released).await;
    }

    /// Wait until exactly `n` calls are running at once (or more).
    pub async fn wait_running(&self, n: usize) {
        loop {
            let changed = self.changed.notified();
            if self.current() >= n {
                return;
            }
            changed.await;
        }
    }

    /// Every tool call so far.
    #[must_use]
    pub fn calls(&self) -> Vec<ToolCallRecord> {
        lock(&self.calls).clone()
    }

    /// Calls of one tool so far.
    #[must_use]
    pub fn calls_of(&self, tool: &str) -> usize {
        lock(&self.calls).iter().filter(|c| c.tool == tool).count()
    }

    /// Headers of every HTTP request received (including spec fetches and protocol messages).
    #[must_use]
    pub fn request_headers(&self) -> Vec<Vec<(String, String)>> {
        lock(&self.requests).clone()
    }

    /// Calls running right now.
    #[must_use]
    pub fn current(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }

    /// Most calls that ran at once.
    #[must_use]
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Acquire)
    }

    /// Set how `tool` answers from now on.
    pub fn set(&self, tool: &str, behaviour: Behaviour) {
        lock(&self.behaviours).insert(tool.to_owned(), behaviour);
    }

    /// How `tool` answers.
    #[must_use]
    pub fn behaviour(&self, tool: &str) -> Behaviour {
        lock(&self.behaviours)
            .get(tool)
            .copied()
            .unwrap_or_default()
    }

    /// Wait until no call is running (the client gave up on hanging ones).
    pub async fn wait_idle(&self) {
        loop {
            let changed = self.changed.notified();
            if self.current() == 0 {
                return;
            }
            changed.await;
        }
    }

    /// Wait until at least `n` calls have been recorded.
    pub async fn wait_calls(&self, n: usize) {
        loop {
            let changed = self.changed.notified();
            if lock(&self.calls).len() >= n {
                return;
            }
            changed.await;
        }
    }

    pub(crate) fn record_request(&self, headers: &axum::http::HeaderMap) {
        lock(&self.requests).push(header_list(headers));
    }

    /// Record a call and count it as running until the guard drops.
    pub(crate) fn start_call(&self, record: ToolCallRecord) -> Running<'_> {
        lock(&self.calls).push(record);
        let now = self.current.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak.fetch_max(now, Ordering::AcqRel);
        self.changed.notify_waiters();
        Running(self)
    }
}

pub(crate) fn header_list(headers: &axum::http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// A running fake's socket and its stop switch.
#[derive(Debug)]
pub(crate) struct Served {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
    }
}

/// Serve `app` on a loopback port (0: a free one).
pub(crate) async fn serve(app: Router, port: u16) -> io::Result<Served> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    let addr = listener.local_addr()?;
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    let (shutdown, signal) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = signal.await;
        });
        if let Err(error) = serve.await {
            tracing::error!(%error, "fake tool server stopped");
        }
    });
    Ok(Served {
        addr,
        shutdown: Some(shutdown),
    })
}

/// A body that sends one byte and then nothing, never ending.
pub(crate) fn stalled_body() -> axum::body::Body {
    use futures::StreamExt;
    let first = futures::stream::once(async {
        Ok::<_, std::convert::Infallible>(bytes::Bytes::from_static(b"{"))
    });
    axum::body::Body::from_stream(first.chain(futures::stream::pending()))
}
