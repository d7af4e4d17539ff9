//! The capabilities the pipe logic needs, as traits. `component.rs` implements them over the WIT
//! imports; unit tests implement them in memory. Nothing in here touches the network or a clock
//! directly, so every decision the pipe makes can be tested natively.

use crate::types::Event;

/// Failures of the kv capability (mirrors `kv-error`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    #[error("invalid kv argument: {0}")]
    InvalidArgument(String),
    #[error("kv value too large")]
    TooLarge,
    #[error("kv timed out")]
    Timeout,
    #[error("kv unavailable: {0}")]
    Unavailable(String),
    #[error("kv error: {0}")]
    Other(String),
}

/// Shared key-value state (host memory or Redis).
pub trait Kv {
    fn get(&self, key: &str, max_bytes: u32) -> Result<Option<Vec<u8>>, KvError>;
    fn set(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), KvError>;
    fn delete(&self, key: &str) -> Result<bool, KvError>;
    /// Take a named lock for `ttl_ms`; `Some(token)` when taken.
    fn lock(&self, name: &str, ttl_ms: u64) -> Result<Option<String>, KvError>;
    fn unlock(&self, name: &str, token: &str) -> Result<bool, KvError>;
}

/// Failures of the emit capability (mirrors `emit-error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    #[error("event too large")]
    TooLarge,
    #[error("caller went away")]
    Closed,
}

/// Events back to the caller.
pub trait Emit {
    fn send(&mut self, event: Event) -> Result<(), EmitError>;
}

/// Prefix of a guest log line the host logs at debug level (see [`Env::log_debug`]).
pub const DEBUG_LOG_PREFIX: &str = "[debug] ";

/// Wall clock and randomness (wasi:clocks, wasi:random in the component).
pub trait Env {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Random bytes from the host's CSPRNG.
    fn random_u64(&self) -> u64;
    /// A diagnostic line for the host's log (never user-visible; no secrets ever reach the guest).
    fn log(&self, line: &str);
    /// A diagnostic line the host logs at debug level only (routine skips that would flood the
    /// info log): the line is sent with [`DEBUG_LOG_PREFIX`], which the host strips.
    fn log_debug(&self, line: &str) {
        self.log(&format!("{DEBUG_LOG_PREFIX}{line}"));
    }
    /// Resolves after `ms` milliseconds (used to race a read against an idle timer).
    fn sleep_ms(&self, ms: u64) -> impl Future<Output = ()>;
}

/// HTTP method of an upstream request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// One request to OpenRouter. `url` is absolute; the host adds the API key itself.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// Why an upstream request did not produce a response (mirrors the wasi-http error codes we act on).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("the host refused the destination ({0})")]
    Denied(String),
    #[error("timed out {0}")]
    Timeout(String),
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("the response exceeded the host's size limit")]
    TooLarge,
    #[error("the connection failed: {0}")]
    Protocol(String),
}

/// A streamed response body.
pub trait BodyStream {
    /// The next chunk of bytes; `None` at a clean end.
    fn next_chunk(&mut self) -> impl Future<Output = Option<Result<Vec<u8>, TransportError>>>;
}

/// The response head plus its streaming body.
pub struct HttpResponse<B> {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: B,
}

impl<B> HttpResponse<B> {
    /// First header value of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Outbound HTTP through the host's egress gate.
pub trait Upstream {
    type Body: BodyStream;
    fn send(
        &self,
        request: HttpRequest,
    ) -> impl Future<Output = Result<HttpResponse<Self::Body>, TransportError>>;
}

/// Read a whole body, refusing more than `max_bytes`.
pub async fn read_body<B: BodyStream>(
    body: &mut B,
    max_bytes: usize,
) -> Result<Vec<u8>, TransportError> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next_chunk().await {
        let chunk = chunk?;
        if out.len() + chunk.len() > max_bytes {
            return Err(TransportError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A tool the host can execute (mirrors `tool-spec`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the parameters, as text.
    pub parameters_json: String,
}

/// What went wrong running one tool call (mirrors `tool-error`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    #[error("no tool of that name is served")]
    NotFound,
    #[error("the tool did not finish in time")]
    Timeout,
    #[error("the tool server is unavailable: {0}")]
    Unavailable(String),
    #[error("the arguments were refused: {0}")]
    InvalidArgument(String),
    #[error("the tool failed: {0}")]
    Other(String),
}

/// The result of one call (mirrors `tool-result`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolResult {
    pub call_id: String,
    pub output: Result<String, ToolError>,
}

/// Bounds of one `invoke` (mirrors `invoke-options`); the host clamps each to its own maxima.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvokeOptions {
    pub max_parallel: u32,
    pub call_timeout_ms: u64,
    pub batch_timeout_ms: u64,
    pub idle_timeout_ms: Option<u64>,
}

/// Tools the host executes on the guest's behalf (operator-declared OpenAPI and MCP servers).
pub trait Tools {
    /// The tools the host serves for this request.
    fn available(&self) -> Result<Vec<ToolSpec>, ToolError>;
    /// Run calls; one result per call, in the same order. Never retried by the guest.
    fn invoke(&self, calls: &[crate::types::ToolCall], options: &InvokeOptions) -> Vec<ToolResult>;
}

/// No host tools at all (callers that have no `tools` import wired, and unit tests).
pub struct NoTools;

impl Tools for NoTools {
    fn available(&self) -> Result<Vec<ToolSpec>, ToolError> {
        Ok(Vec::new())
    }
    fn invoke(
        &self,
        calls: &[crate::types::ToolCall],
        _options: &InvokeOptions,
    ) -> Vec<ToolResult> {
        calls
            .iter()
            .map(|c| ToolResult {
                call_id: c.call_id.clone(),
                output: Err(ToolError::NotFound),
            })
            .collect()
    }
}

/// Failures of the store capability (mirrors `store-error`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("the host does not grant this table")]
    AccessDenied,
    #[error("invalid store argument: {0}")]
    InvalidArgument(String),
    #[error("a row or batch exceeds the host's cap")]
    TooLarge,
    #[error("the database timed out")]
    Timeout,
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Other(String),
}

/// One artifact row (mirrors the WIT `row`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub id: String,
    pub chat_id: String,
    pub message_id: String,
    pub item_type: String,
    /// Digest of the principal the row belongs to ([`crate::types::RequestContext::owner`]);
    /// empty for rows written before owners were recorded.
    pub owner: String,
    pub payload: Vec<u8>,
    pub created_at_ms: u64,
}

/// One artifact table, opened through [`Store::open`].
pub trait StoreTable {
    /// Insert or replace rows, atomically as one batch.
    fn put_many(&self, rows: &[Row]) -> Result<(), StoreError>;
    /// Rows by id (missing ids are absent); `max_bytes` caps the total payload.
    fn get_many(&self, ids: &[String], max_bytes: u64) -> Result<Vec<Row>, StoreError>;
    /// Delete rows by id; how many were deleted.
    fn delete(&self, ids: &[String]) -> Result<u64, StoreError>;
    /// Delete up to `limit` rows not read since `cutoff_ms`; how many were deleted.
    fn delete_older_than(&self, cutoff_ms: u64, limit: u32) -> Result<u64, StoreError>;
    /// Up to `limit` rows with an id after `after_id` ("" for the first), in id order, within
    /// `max_bytes` of payload; not counted as use.
    fn scan(&self, after_id: &str, limit: u32, max_bytes: u64) -> Result<Vec<Row>, StoreError>;
}

/// Artifact tables (SQLite or PostgreSQL in the host).
pub trait Store {
    /// Open (creating if needed) a table the host grants.
    fn open(&self, name: &str) -> Result<Box<dyn StoreTable + '_>, StoreError>;
}

/// Failures of the crypto capability (mirrors `crypto-error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("no artifact key is configured")]
    NotConfigured,
    #[error("the sealed record is invalid, altered or bound to another row")]
    InvalidRecord,
    #[error("the record names an unknown key")]
    UnknownKey,
    #[error("the record exceeds the host's cap")]
    TooLarge,
}

/// Artifact encryption with keys only the host holds.
pub trait Crypto {
    /// Whether an artifact key is configured.
    fn enabled(&self) -> bool;
    /// Seal under the current key, binding `aad`.
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// Open a sealed record (current or previous key).
    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError>;
}
