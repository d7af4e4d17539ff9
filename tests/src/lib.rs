//! A fake OpenRouter API on loopback, for the end-to-end suites and the bench scripts.
//!
//! It speaks real HTTP/1.1 (and HTTP/2) and SSE through axum and hyper, so the host's real
//! client code is exercised: connection reuse, chunked streaming, cut connections, error
//! statuses. Behaviour is chosen by the request's `model` id (see [`scenarios`]); the model
//! list and ZDR endpoints come from [`catalog`]. Every request is recorded, in order, so a test
//! can assert on exactly what the host sent upstream (headers, body). Control routes under
//! `/__fake/` (also reachable below `/api/v1`) expose that log to scripts; they skip the API key
//! check and are not recorded themselves.

pub mod catalog;
pub mod fake_tools;
pub mod fault_proxy;
pub mod scenarios;
pub mod spec;

use std::{
    collections::HashMap,
    io,
    net::{Ipv4Addr, SocketAddr},
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, Query, Request, State, rejection::QueryRejection},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    serve::ListenerExt,
};
use futures::Stream;
use serde::Serialize;
use serde_json::Value;
use tokio::{net::TcpListener, sync::oneshot};

use crate::scenarios::{Reply, Scenario, Step, error_body};

/// Largest request body the fake buffers; above it the request gets 413. Big enough for any
/// realistic multimodal request (inline images, PDFs), small enough that a test cannot OOM it.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Path prefix of every OpenRouter route.
pub const API_PREFIX: &str = "/api/v1";

/// How the fake behaves; [`Default`] gives the values the briefs and bench scripts assume.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    /// When `Some`, every API request must carry `Authorization: Bearer <key>`, else 401.
    pub expected_api_key: Option<String>,
    /// Delay between deltas for the `fake/slow` model.
    pub slow_delay_ms: u64,
    /// Number of deltas for `fake/slow`.
    pub slow_deltas: usize,
    /// Validate generation request bodies against OpenRouter's OpenAPI spec before answering
    /// (tests); benchmarks turn it off so its cost does not count as the host's.
    pub validate_spec: bool,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            expected_api_key: None,
            slow_delay_ms: 50,
            slow_deltas: 20,
            validate_spec: true,
        }
    }
}

/// One request as the fake received it.
#[derive(Clone, Debug, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query, e.g. `/api/v1/models?output_modalities=image`.
    pub path: String,
    /// Header names are lowercase (as HTTP/2 and hyper normalise them); values are lossy UTF-8.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of a header, matched case-insensitively.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body parsed as JSON, if it is JSON.
    #[must_use]
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// The form `GET /__fake/requests` returns: the body as a (lossy) string, not a byte array.
#[derive(Serialize)]
struct RecordedRequestView<'a> {
    method: &'a str,
    path: &'a str,
    headers: &'a [(String, String)],
    body: String,
}

/// State shared by the handlers, the accept loop and the [`FakeOpenRouter`] handle.
#[derive(Debug)]
struct Shared {
    config: FakeConfig,
    requests: Mutex<Vec<RecordedRequest>>,
    connections: AtomicU64,
    models_failing: AtomicBool,
    models_requests: AtomicU64,
    zdr_failing: AtomicBool,
    /// Spec violations of the generation requests received, see [`spec`].
    spec_violations: Mutex<Vec<String>>,
    /// Scripted answers whose connection closed before the script ended.
    streams_abandoned: AtomicU64,
}

impl Shared {
    /// The log stays usable after a panicking test thread poisoned the lock: the data is a plain
    /// list that no half-finished update can corrupt.
    fn requests(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Same poisoning argument as [`Shared::requests`].
    fn spec_violations(&self) -> MutexGuard<'_, Vec<String>> {
        self.spec_violations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running fake; dropping it stops accepting connections and closes idle ones (responses
/// still streaming run to their end).
#[derive(Debug)]
pub struct FakeOpenRouter {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl FakeOpenRouter {
    /// Starts a fake on `127.0.0.1` with a free port chosen by the OS.
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub async fn start(config: FakeConfig) -> io::Result<FakeOpenRouter> {
        Self::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    /// Starts a fake on the given address (the binary's `--listen`).
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub async fn bind(listen: SocketAddr, config: FakeConfig) -> io::Result<FakeOpenRouter> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            requests: Mutex::new(Vec::new()),
            connections: AtomicU64::new(0),
            models_failing: AtomicBool::new(false),
            models_requests: AtomicU64::new(0),
            zdr_failing: AtomicBool::new(false),
            spec_violations: Mutex::new(Vec::new()),
            streams_abandoned: AtomicU64::new(0),
        });
        let counted = Arc::clone(&shared);
        let listener = listener.tap_io(move |stream| {
            counted.connections.fetch_add(1, Ordering::Relaxed);
            // Nagle would hold back small SSE frames for up to ~40 ms.
            if let Err(error) = stream.set_nodelay(true) {
                tracing::warn!(%error, "fake-openrouter could not set TCP_NODELAY");
            }
        });
        let (shutdown, signal) = oneshot::channel::<()>();
        let app = router(Arc::clone(&shared));
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                // Either an explicit send or the handle being dropped stops the server.
                let _ = signal.await;
            });
            if let Err(error) = serve.await {
                tracing::error!(%error, "fake-openrouter server stopped");
            }
        });
        tracing::info!(%addr, "fake-openrouter listening");
        Ok(FakeOpenRouter {
            addr,
            shared,
            shutdown: Some(shutdown),
        })
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/api/v1`, the value to configure as the OpenRouter base URL.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}{API_PREFIX}", self.addr)
    }

    /// Every request received so far, in arrival order.
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests().clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.requests().clear();
    }

    /// TCP connections accepted so far.
    #[must_use]
    pub fn connections_accepted(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Scripted answers (`/responses`, `/chat/completions`) whose connection the client closed
    /// before the script ended: the host gave up on the stream.
    #[must_use]
    pub fn streams_abandoned(&self) -> u64 {
        self.shared.streams_abandoned.load(Ordering::Relaxed)
    }

    /// When `true`, `GET /models` answers 503 with an OpenRouter error body.
    pub fn set_models_failing(&self, failing: bool) {
        self.shared.models_failing.store(failing, Ordering::Relaxed);
    }

    /// When `true`, `GET /endpoints/zdr` answers 503 with an OpenRouter error body.
    pub fn set_zdr_failing(&self, failing: bool) {
        self.shared.zdr_failing.store(failing, Ordering::Relaxed);
    }

    /// How many `GET /models` requests arrived, whatever their outcome.
    #[must_use]
    pub fn models_requests(&self) -> u64 {
        self.shared.models_requests.load(Ordering::Relaxed)
    }

    /// Every way a `POST /responses` or `/chat/completions` body received so far broke
    /// OpenRouter's OpenAPI request schema, as `"<METHOD> <path>: <instance path>: <reason>"`.
    /// Empty when every body conformed. Requests are checked whatever the fake answered them.
    #[must_use]
    pub fn spec_violations(&self) -> Vec<String> {
        self.shared.spec_violations().clone()
    }
}

impl Drop for FakeOpenRouter {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Connections still streaming finish on their own; only the accept loop stops here.
    }
}

fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/api/v1/models", get(models))
        .route("/api/v1/endpoints/zdr", get(zdr))
        .route("/api/v1/responses", post(responses))
        .route("/api/v1/chat/completions", post(chat_completions))
        .fallback(not_found)
        // The recording middleware already bounded and buffered the body.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            authenticate,
        ))
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), record));
    let control = Router::new()
        .route(
            "/__fake/requests",
            get(list_requests).delete(clear_requests),
        )
        .route(
            "/api/v1/__fake/requests",
            get(list_requests).delete(clear_requests),
        );
    control.merge(api).with_state(shared)
}

/// Records the request (before anything can reject it) with its body, bounded by
/// [`MAX_BODY_BYTES`].
async fn record(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let (body, too_large) = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => (bytes, false),
        Err(_) => (Bytes::new(), true),
    };
    if parts.method == Method::GET && parts.uri.path() == "/api/v1/models" {
        shared.models_requests.fetch_add(1, Ordering::Relaxed);
    }
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    tracing::debug!(method = %parts.method, %path, bytes = body.len(), "fake-openrouter request");
    shared.requests().push(RecordedRequest {
        method: parts.method.to_string(),
        path,
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    });
    if too_large {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body too large (fake)",
        );
    }
    if parts.method == Method::POST && shared.config.validate_spec {
        check_against_spec(&shared, &parts.method, parts.uri.path(), &body).await;
    }
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// Validates a generation request body against the OpenAPI spec and keeps the violations.
/// The first call compiles the spec (about a second in a debug build), so it runs on the
/// blocking pool rather than stalling a single-threaded test runtime.
async fn check_against_spec(shared: &Shared, method: &Method, path: &str, body: &Bytes) {
    let Some(validate) = spec::validator_for_path(path) else {
        return;
    };
    let owned = body.clone();
    let outcome =
        tokio::task::spawn_blocking(move || match serde_json::from_slice::<Value>(&owned) {
            Ok(value) => validate(&value),
            Err(parse) => Err(vec![format!("/: the body is not JSON: {parse}")]),
        })
        .await;
    let messages = match outcome {
        Ok(Ok(())) => return,
        Ok(Err(messages)) => messages,
        Err(join) => vec![format!("/: the validator did not finish: {join}")],
    };
    tracing::warn!(%path, count = messages.len(), "fake-openrouter: request breaks the OpenAPI spec");
    shared.spec_violations().extend(
        messages
            .into_iter()
            .map(|message| format!("{method} {path}: {message}")),
    );
}

/// OpenRouter's answers to a missing or wrong key.
async fn authenticate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    if let Some(expected) = &shared.config.expected_api_key {
        let Some(given) = request.headers().get(header::AUTHORIZATION) else {
            return error(StatusCode::UNAUTHORIZED, "No auth credentials found");
        };
        let key = given
            .to_str()
            .ok()
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim());
        if key != Some(expected.as_str()) {
            return error(StatusCode::UNAUTHORIZED, "User not found.");
        }
    }
    next.run(request).await
}

async fn models(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    if shared.models_failing.load(Ordering::Relaxed) {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service temporarily unavailable (fake)",
        );
    }
    // A query string that does not parse is ignored, like an absent one.
    let query = query.map(|Query(query)| query).unwrap_or_default();
    Json(catalog::models_body(&query)).into_response()
}

async fn zdr(State(shared): State<Arc<Shared>>) -> Response {
    if shared.zdr_failing.load(Ordering::Relaxed) {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service temporarily unavailable (fake)",
        );
    }
    Json(catalog::zdr_body()).into_response()
}

async fn responses(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(value @ Value::Object(_)) => value,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "Request body must be a JSON object (fake)",
            );
        }
        Err(parse) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid JSON in request body (fake): {parse}"),
            );
        }
    };
    let Some(model) = request.get("model").and_then(Value::as_str) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Missing required parameter: model (fake)",
        );
    };
    let Some(scenario) = Scenario::from_model(model) else {
        return error(StatusCode::NOT_FOUND, "Model not found");
    };
    if scenario == Scenario::FlakyStart {
        // The recorder has already logged this request: count the identical ones so far.
        let tries = shared
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/responses") && r.body[..] == body[..])
            .count();
        if tries <= scenarios::FLAKY_START_CUTS {
            return into_response(scenarios::cut_before_output_reply());
        }
    }
    let stream = request.get("stream").and_then(Value::as_bool) == Some(true);
    counted_response(
        scenarios::reply(scenario, &request, stream, &shared.config),
        &shared,
    )
}

/// `POST /chat/completions`: served for the scenarios that have a chat answer (see
/// [`scenarios::chat_reply`]); other models get 404, as if the route did not know them.
async fn chat_completions(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(request @ Value::Object(_)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Invalid JSON in request body (fake)",
        );
    };
    let reply = request
        .get("model")
        .and_then(Value::as_str)
        .and_then(Scenario::from_model)
        .and_then(|scenario| scenarios::chat_reply(scenario, &request));
    match reply {
        Some(reply) => counted_response(reply, &shared),
        None => error(StatusCode::NOT_FOUND, "Model not found"),
    }
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found")
}

async fn list_requests(State(shared): State<Arc<Shared>>) -> Response {
    let requests = shared.requests();
    let views: Vec<RecordedRequestView<'_>> = requests
        .iter()
        .map(|request| RecordedRequestView {
            method: &request.method,
            path: &request.path,
            headers: &request.headers,
            body: String::from_utf8_lossy(&request.body).into_owned(),
        })
        .collect();
    Json(views).into_response()
}

async fn clear_requests(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.requests().clear();
    StatusCode::NO_CONTENT
}

/// An OpenRouter-style error answer.
fn error(status: StatusCode, message: &str) -> Response {
    into_response(Reply::json(
        status.as_u16(),
        &error_body(status.as_u16(), message),
    ))
}

fn into_response(reply: Reply) -> Response {
    build_response(reply, None)
}

/// As [`into_response`], counting the answer in `streams_abandoned` when its connection closes
/// before the script ends.
fn counted_response(reply: Reply, shared: &Arc<Shared>) -> Response {
    build_response(reply, Some(Arc::clone(shared)))
}

/// Counts a scripted answer as abandoned when it is dropped before its last step.
struct Abandoned {
    shared: Option<Arc<Shared>>,
    finished: bool,
}

impl Abandoned {
    /// The script ran to its end (a method, so the closure owns the whole guard).
    fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        if let (Some(shared), false) = (&self.shared, self.finished) {
            shared.streams_abandoned.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("fake-openrouter: a scripted answer was abandoned by its client");
        }
    }
}

fn build_response(reply: Reply, counter: Option<Arc<Shared>>) -> Response {
    let single_body = match reply.steps.as_slice() {
        [Step::Raw(text)] => Some(text.clone()),
        _ => None,
    };
    // A complete body gets a Content-Length; anything scripted is streamed frame by frame.
    let body = match single_body {
        Some(text) => Body::from(text),
        None => {
            let mut guard = Abandoned {
                shared: counter,
                finished: false,
            };
            let mut inner = Box::pin(frames(reply.steps));
            Body::from_stream(futures::stream::poll_fn(move |cx| {
                let next = inner.as_mut().poll_next(cx);
                if let std::task::Poll::Ready(None) = next {
                    guard.finish();
                }
                next
            }))
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(reply.content_type),
    );
    for (name, value) in reply.headers {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    response
}

/// The body stream for scripted steps: one frame per step, each flushed before the next.
fn frames(steps: Vec<Step>) -> impl Stream<Item = io::Result<Bytes>> + Send {
    futures::stream::unfold(
        (steps.into_iter(), false),
        |(mut steps, wrote)| async move {
            if wrote {
                // Returning Pending once makes hyper flush the frame it just buffered, so every
                // event reaches the socket on its own instead of being coalesced with later ones.
                tokio::task::yield_now().await;
            }
            loop {
                let frame = match steps.next()? {
                    Step::Pause(pause) => {
                        tokio::time::sleep(pause).await;
                        continue;
                    }
                    Step::Event(event) => Ok(Bytes::from(format!("data: {event}\n\n"))),
                    Step::Raw(text) => Ok(Bytes::from(text)),
                    Step::Bytes(bytes) => Ok(bytes),
                    Step::Cut => Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "fake-openrouter cuts the connection on purpose",
                    )),
                };
                return Some((frame, (steps, true)));
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const POLL_INTERVAL: Duration = Duration::from_millis(10);

    /// A raw HTTP/1.1 exchange: headers as written, body de-chunked when complete.
    struct RawResponse {
        status: u16,
        head: String,
        body: Vec<u8>,
        /// The chunked body ended with its zero-length terminator.
        clean_end: bool,
    }

    impl RawResponse {
        fn header(&self, name: &str) -> Option<String> {
            self.head.lines().skip(1).find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
        }

        fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }

        fn events(&self) -> Vec<Value> {
            self.text()
                .split("\n\n")
                .filter_map(|block| block.strip_prefix("data: "))
                .filter_map(|data| serde_json::from_str(data).ok())
                .collect()
        }
    }

    /// Sends one request with `Connection: close` and reads until the server closes.
    async fn exchange(
        fake: &FakeOpenRouter,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> RawResponse {
        let mut stream = tokio::net::TcpStream::connect(fake.addr()).await.unwrap();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ncontent-length: {}\r\n",
            fake.addr(),
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw))
            .await
            .expect("the fake answers within 5 s")
            .expect("reading the answer");
        parse(&raw)
    }

    fn parse(raw: &[u8]) -> RawResponse {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a header block");
        let head = String::from_utf8(raw[..split].to_vec()).unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let mut rest = &raw[split + 4..];
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        if !chunked {
            return RawResponse {
                status,
                head,
                body: rest.to_vec(),
                clean_end: true,
            };
        }
        let mut body = Vec::new();
        loop {
            let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
                return RawResponse {
                    status,
                    head,
                    body,
                    clean_end: false,
                };
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16)
                    .unwrap();
            rest = &rest[line_end + 2..];
            if size == 0 {
                return RawResponse {
                    status,
                    head,
                    body,
                    clean_end: rest.starts_with(b"\r\n"),
                };
            }
            if rest.len() < size + 2 {
                body.extend_from_slice(&rest[..rest.len().min(size)]);
                return RawResponse {
                    status,
                    head,
                    body,
                    clean_end: false,
                };
            }
            body.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
    }

    fn responses_body(model: &str, text: &str, stream: bool) -> String {
        json!({
            "model": model,
            "stream": stream,
            "input": [{ "type": "message", "role": "user", "content": [{ "type": "input_text", "text": text }] }],
        })
        .to_string()
    }

    async fn post_responses(
        fake: &FakeOpenRouter,
        model: &str,
        text: &str,
        stream: bool,
    ) -> RawResponse {
        exchange(
            fake,
            "POST",
            "/api/v1/responses",
            &[("content-type", "application/json")],
            &responses_body(model, text, stream),
        )
        .await
    }

    #[tokio::test]
    async fn echo_stream_carries_the_echoed_text_and_a_completed_event_with_usage() {
        let fake = FakeOpenRouter::start(FakeConfig::default()).await.unwrap();
        let answer = post_responses(&fake, "fake/echo", "hello streaming world", true).await;
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.header("content-type").as_deref(),
            Some("text/event-stream")
        );
        assert!(answer.clean_end);
        assert!(answer.text().starts_with(": OPENROUTER PROCESSING\n\n"));
        let events = answer.events();
        assert_eq!(events[0]["type"], "response.created");
        assert!(
            events[0]["response"]["id"]
                .as_str()
                .unwrap()
                .starts_with("resp_")
        );
        let text: String = events
            .iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .map(|e| e["delta"].as_str().unwrap())
            .collect();
        assert_eq!(text, "echo: hello streaming world");
        let completed = events.last().unwrap();
        assert_eq!(completed["type"], "response.completed");
        assert_eq!(completed["response"]["status"], "completed");
        let usage = &completed["response"]["usage"];
        assert!(usage["input_tokens"].as_u64().unwrap() > 0);
        assert_eq!(usage["input_tokens_details"]["cached_tokens"], 2);
        assert!(usage["cost"].as_f64().unwrap() > 0.0);
    }

    #[tokio::test]
    async fn the_request_log_records_method_path_headers_and_body() {
        let fake = FakeOpenRouter::start(FakeConfig::default()).await.unwrap();
        let body = responses_body("fake/echo", "logged", false);
        exchange(
            &fake,
            "POST",
            "/api/v1/responses",
            &[("X-OpenRouter-Title", "Responses Pipe")],
            &body,
        )
        .await;
        exchange(
            &fake,
            "GET",
            "/api/v1/models?output_modalities=all",
            &[],
            "",
        )
        .await;
        let log = fake.requests();
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].method, "POST");
        assert_eq!(log[0].path, "/api/v1/responses");
        assert_eq!(log[0].header("x-openrouter-title"), Some("Responses Pipe"));
        assert_eq!(log[0].header("X-OPENROUTER-TITLE"), Some("Responses Pipe"));
        assert_eq!(log[0].body, body.as_bytes());
        assert_eq!(log[0].json().unwrap()["model"], "fake/echo");
        assert_eq!(log[1].path, "/api/v1/models?output_modalities=all");
        assert_eq!(fake.models_requests(), 1);

        let listed = exchange(&fake, "GET", "/__fake/requests", &[], "").await;
        let listed: Value = serde_json::from_slice(&listed.body).unwrap();
        assert_eq!(listed[0]["body"], json!(body));
        exchange(&fake, "DELETE", "/__fake/requests", &[], "").await;
        assert!(fake.requests().is_empty());
    }

    #[tokio::test]
    async fn a_wrong_or_missing_key_gets_401_with_an_openrouter_body() {
        let config = FakeConfig {
            expected_api_key: Some("sk-or-test".to_owned()),
            ..FakeConfig::default()
        };
        let fake = FakeOpenRouter::start(config).await.unwrap();
        let wrong = exchange(
            &fake,
            "GET",
            "/api/v1/models",
            &[("authorization", "Bearer sk-or-wrong")],
            "",
        )
        .await;
        assert_eq!(wrong.status, 401);
        let body: Value = serde_json::from_slice(&wrong.body).unwrap();
        assert_eq!(body["error"]["code"], 401);
        let missing = exchange(&fake, "GET", "/api/v1/models", &[], "").await;
        assert_eq!(missing.status, 401);
        let right = exchange(
            &fake,
            "GET",
            "/api/v1/models",
            &[("authorization", "Bearer sk-or-test")],
            "",
        )
        .await;
        assert_eq!(right.status, 200);
        // Refused requests are still recorded and counted.
        assert_eq!(fake.requests().len(), 3);
        assert_eq!(fake.models_requests(), 3);
    }

    #[tokio::test]
    async fn status_429_carries_retry_after_and_the_rate_limit_scope() {
        let fake = FakeOpenRouter::start(FakeConfig::default()).await.unwrap();
        let answer = post_responses(&fake, "fake/status-429", "x", true).await;
        assert_eq!(answer.status, 429);
        assert_eq!(answer.header("retry-after").as_deref(), Some("7"));
        assert_eq!(answer.header("x-ratelimit-scope").as_deref(), Some("user"));
        let body: Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(body["error"]["code"], 429);
        assert_eq!(body["error"]["metadata"]["provider_name"], "FakeProvider");
    }

    #[tokio::test]
    async fn the_drop_scenario_cuts_the_connection_after_three_deltas() {
        let fake = FakeOpenRouter::start(FakeConfig::default()).await.unwrap();
        let answer = post_responses(&fake, "fake/drop", "x", true).await;
        assert_eq!(answer.status, 200);
        assert!(!answer.clean_end, "the chunked body must not end cleanly");
        let events = answer.events();
        let deltas: Vec<&str> = events
            .iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .map(|e| e["delta"].as_str().unwrap())
            .collect();
        assert_eq!(deltas, vec!["one ", "two ", "three "]);
        assert!(!events.iter().any(|e| e["type"] == "response.completed"));
    }

    #[tokio::test]
    async fn no_terminal_ends_the_body_cleanly_without_a_terminal_event() {
        let fake = FakeOpenRouter::start(FakeConfig::default()).await.unwrap();
        let answer = post_responses(&fake, "fake/no-terminal", "x", true).await;
        assert!(answer.clean_end);
        let last = answer.events().pop().unwrap();
        assert_eq!(last["type"], "response.output_text.delta");
    }

    #[tokio::test]
    async fn malformed_stream_holds_one_event_that_is_not_json() {
        let fake = FakeOpenRouter::start(FakeConfig::default()).await.unwrap();
        let answer = post_responses(&fake, "fake/malformed", "a b", true).await;
        assert!(answer.text().contains("data: {not json\n\n"));
        assert_eq!(
            answer.events().last().unwrap()["type"],
            "response.completed"
        );
    }

    #[tokio::test]
    async fn non_streaming_echo_is_one_completed_response_object() {
        let fake = FakeOpenRouter::start(FakeConfig::default()).await.unwrap();
        let answer = post_responses(&fake, "fake/echo", "plain", false).await;
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.header("content-type").as_deref(),
            Some("application/json")
        );
        let body: Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(body["object"], "response");
        assert_eq!(body["status"], "completed");
        assert_eq!(body["output"][0]["content"][0]["text"], "echo: plain");
        assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);
    }

    #[tokio::test]
    async fn bad_json_gets_400_and_unknown_models_get_404_but_both_are_recorded() {
        let fake = FakeOpenRouter::start(FakeConfig::default()).await.unwrap();
        let bad = exchange(&fake, "POST", "/api/v1/responses", &[], "{oops").await;
        assert_eq!(bad.status, 400);
        let unknown = post_responses(&fake, "nobody/nothing", "x", true).await;
        assert_eq!(unknown.status, 404);
        let body: Value = serde_json::from_slice(&unknown.body).unwrap();
        assert_eq!(
            body,
            json!({ "error": { "code": 404, "message": "Model not found" } })
        );
        let log = fake.requests();
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].body, b"{oops");
    }

    #[tokio::test]
    async fn html_scenario_answers_200_with_an_html_page() {
        let fake = FakeOpenRouter::start(FakeConfig::default()).await.unwrap();
        let answer = post_responses(&fake, "fake/html", "x", true).await;
        assert_eq!(answer.status, 200);
        assert!(
            answer
                .header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
        assert!(answer.text().contains("<html>"));
    }

    #[tokio::test]
    async fn failing_models_answer_503_and_are_still_counted() {
        let fake = FakeOpenRouter::start(FakeConfig::default()).await.unwrap();
        fake.set_models_failing(true);
        let failing = exchange(&fake, "GET", "/api/v1/models", &[], "").await;
        assert_eq!(failing.status, 503);
        let body: Value = serde_json::from_slice(&failing.body).unwrap();
        assert_eq!(body["error"]["code"], 503);
        fake.set_models_failing(false);
        let ok = exchange(&fake, "GET", "/api/v1/models", &[], "").await;
        let body: Value = serde_json::from_slice(&ok.body).unwrap();
        assert!(
            body["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["id"] == "fake/echo")
        );
        assert_eq!(fake.models_requests(), 2);
    }

    #[tokio::test]
    async fn each_connection_is_counted_once_however_many_requests_it_carries() {
        let fake = FakeOpenRouter::start(FakeConfig::default()).await.unwrap();
        let mut stream = tokio::net::TcpStream::connect(fake.addr()).await.unwrap();
        // Two pipelined keep-alive requests on one connection, the second closing it.
        let request = format!(
            "GET /api/v1/endpoints/zdr HTTP/1.1\r\nhost: {0}\r\n\r\nGET /api/v1/endpoints/zdr HTTP/1.1\r\nhost: {0}\r\nconnection: close\r\n\r\n",
            fake.addr()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&raw)
                .matches("HTTP/1.1 200")
                .count(),
            2
        );
        exchange(&fake, "GET", "/api/v1/endpoints/zdr", &[], "").await;
        assert_eq!(fake.connections_accepted(), 2);
        assert_eq!(fake.requests().len(), 3);
    }

    #[tokio::test]
    async fn slow_stream_spaces_its_deltas_by_the_configured_delay() {
        let config = FakeConfig {
            slow_delay_ms: 30,
            slow_deltas: 4,
            ..FakeConfig::default()
        };
        let fake = FakeOpenRouter::start(config).await.unwrap();
        let started = std::time::Instant::now();
        let answer = post_responses(&fake, "fake/slow", "x", true).await;
        assert!(started.elapsed() >= Duration::from_millis(90));
        let text: String = answer
            .events()
            .iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .map(|e| e["delta"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(text, "tok0 tok1 tok2 tok3 ");
    }

    #[tokio::test]
    async fn dropping_the_handle_stops_accepting_connections() {
        let fake = FakeOpenRouter::start(FakeConfig::default()).await.unwrap();
        let addr = fake.addr();
        drop(fake);
        let mut refused = false;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        assert!(
            refused,
            "the listener should close after the handle is dropped"
        );
    }

    #[tokio::test]
    async fn conforming_generation_requests_leave_no_spec_violation() {
        let fake = FakeOpenRouter::start(FakeConfig::default()).await.unwrap();
        let answer = post_responses(&fake, "fake/echo", "fine", false).await;
        assert_eq!(answer.status, 200);
        // Not a generation request: never validated.
        exchange(&fake, "POST", "/api/v1/models", &[], "{").await;
        assert_eq!(fake.spec_violations(), Vec::<String>::new());
    }

    #[tokio::test]
    async fn spec_violations_name_the_request_path_and_the_offending_field() {
        let fake = FakeOpenRouter::start(FakeConfig::default()).await.unwrap();
        let body = json!({
            "model": "fake/echo",
            "user": null,
            "input": [{ "type": "message", "role": "user", "content": [{ "type": "input_text", "text": "x" }] }],
        });
        exchange(&fake, "POST", "/api/v1/responses", &[], &body.to_string()).await;
        // The chat route checks what was sent too, whatever it answers.
        let chat =
            json!({ "model": "fake/echo", "messages": [{ "role": "tool", "content": "x" }] });
        exchange(
            &fake,
            "POST",
            "/api/v1/chat/completions",
            &[],
            &chat.to_string(),
        )
        .await;
        exchange(&fake, "POST", "/api/v1/responses", &[], "{oops").await;
        let violations = fake.spec_violations();
        assert!(
            violations
                .iter()
                .any(|v| v.starts_with("POST /api/v1/responses: /user:")),
            "{violations:?}"
        );
        assert!(
            violations
                .iter()
                .any(|v| v.starts_with("POST /api/v1/chat/completions: /messages/0")),
            "{violations:?}"
        );
        assert!(
            violations
                .iter()
                .any(|v| v.contains("the body is not JSON")),
            "{violations:?}"
        );
    }
}
