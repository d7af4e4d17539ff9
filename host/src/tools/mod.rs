//! The `tools` capability: tools the operator declared (`[[tool_servers]]`: OpenAPI servers and
//! MCP servers over streamable HTTP), served to the component through `available` and `invoke`.
//!
//! - [`ToolHost`] is built once per process: the declared servers, their tool lists (fetched at
//!   start-up; a failed fetch is logged and retried with backoff, 5 s doubling to 160 s, without
//!   failing start-up), the host-wide semaphore (`MAX_PARALLEL_TOOLS_GLOBAL`), the metrics and the
//!   shutdown deadline.
//! - [`ToolsView`] is the per-instance (per-request) side: it keeps the catalogue the request was
//!   shown, so names map back to the same tools even if a server's list changes meanwhile.
//!
//! Tool names are the servers' own (OpenAPI `operationId`, MCP tool name); a name served by more
//! than one server is prefixed with the server name (`weather__get_forecast`) on each of them.
//!
//! `invoke` runs a batch concurrently: at most `min(max-parallel, MAX_PARALLEL_TOOLS_PER_REQUEST)`
//! calls of the request at once and at most `MAX_PARALLEL_TOOLS_GLOBAL` in the whole host; each call
//! has its time budget (the guest's, never above `TOOL_TIMEOUT_SECONDS`), the batch has its budget
//! (never above `max(TOOL_TIMEOUT_SECONDS, TOOL_BATCH_TIMEOUT_SECONDS)`), and an optional idle
//! budget (no byte from the server for that long). Results come back in call order.
//!
//! Threats handled: tool calls may have side effects, so a call is never retried, except one that
//! provably never reached its server (connection refused, connect timeout), at most twice. Every
//! request goes through the egress gate (policy check, checked-address connector, refusal counter),
//! and a server's auth header is attached only to that server's requests and never logged. Call
//! arguments are never logged either.

pub mod mcp;
pub mod openapi;
pub mod transport;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::bindings::tools::{self as wit_tools, InvokeOptions};
use crate::bindings::types::{ToolCall, ToolError, ToolResult, ToolSpec};
use crate::config::{Config, OperationsSource, ToolServerDecl, ToolServerKind};
use crate::egress::client::EgressClient;
use openapi::{MAX_TOOL_NAME_CHARS, Operation};
use transport::{AuthHeader, Failure, Outgoing};

/// Retries of a call that provably never reached its server.
pub const MAX_UNREACHED_RETRIES: u32 = 2;
/// Pause before such a retry, multiplied by the attempt number.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// First wait after a failed tool-list fetch; doubles up to [`LOAD_BACKOFF_MAX`].
const LOAD_BACKOFF_START: Duration = Duration::from_secs(5);
const LOAD_BACKOFF_MAX: Duration = Duration::from_secs(160);
/// Largest OpenAPI document accepted.
const MAX_SPEC_BYTES: usize = 8 * 1024 * 1024;
/// What a tool server is asked to answer with.
const ACCEPT_ANY: &str = "application/json, text/plain;q=0.9, */*;q=0.1";

/// The host's bounds on tool calls, from the valves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolLimits {
    /// `MAX_PARALLEL_TOOLS_PER_REQUEST`.
    pub per_request: usize,
    /// `MAX_PARALLEL_TOOLS_GLOBAL`.
    pub global: usize,
    /// `TOOL_TIMEOUT_SECONDS`: the most one call may take.
    pub call_timeout: Duration,
    /// `max(TOOL_TIMEOUT_SECONDS, TOOL_BATCH_TIMEOUT_SECONDS)`: the most one batch may take.
    pub batch_timeout: Duration,
    /// `TOOL_IDLE_TIMEOUT_SECONDS`, when set.
    pub idle_timeout: Option<Duration>,
    /// `TOOL_SHUTDOWN_TIMEOUT_SECONDS`: what in-flight calls get once shutdown starts.
    pub shutdown_timeout: Duration,
}

impl ToolLimits {
    /// Read the tool valves (their ranges were checked when the config was loaded).
    pub fn from_config(config: &Config) -> Self {
        let int = |name: &str, fallback: u64| {
            config.get(name).and_then(Value::as_u64).unwrap_or(fallback)
        };
        let call = Duration::from_secs(int("TOOL_TIMEOUT_SECONDS", 60));
        let batch = Duration::from_secs(int("TOOL_BATCH_TIMEOUT_SECONDS", 120)).max(call);
        let shutdown = config
            .get("TOOL_SHUTDOWN_TIMEOUT_SECONDS")
            .and_then(Value::as_f64)
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map_or(Duration::from_secs(10), |s| {
                Duration::try_from_secs_f64(s).unwrap_or(Duration::from_secs(10))
            });
        Self {
            per_request: usize::try_from(int("MAX_PARALLEL_TOOLS_PER_REQUEST", 5))
                .unwrap_or(5)
                .max(1),
            global: usize::try_from(int("MAX_PARALLEL_TOOLS_GLOBAL", 200))
                .unwrap_or(200)
                .max(1),
            call_timeout: call,
            batch_timeout: batch,
            idle_timeout: config
                .get("TOOL_IDLE_TIMEOUT_SECONDS")
                .and_then(Value::as_u64)
                .map(Duration::from_secs),
            shutdown_timeout: shutdown,
        }
    }
}

/// One tool a server offers.
#[derive(Debug)]
pub struct ServerTool {
    /// The server's own name for it (what a call sends).
    pub name: String,
    /// The name as a function name (`[A-Za-z0-9_-]`, at most 64 characters).
    pub base: String,
    pub description: String,
    /// JSON Schema of its arguments.
    pub schema: Value,
    kind: ToolKind,
}

#[derive(Debug)]
enum ToolKind {
    OpenApi(Operation),
    Mcp,
}

/// Where a server's tool list comes from.
enum Source {
    OpenApiSpec(url::Url),
    OpenApiInline(Value),
    Mcp(mcp::McpClient),
}

enum LoadState {
    Loaded(Arc<Vec<Arc<ServerTool>>>),
    Waiting {
        next_attempt: Instant,
        backoff: Duration,
    },
}

/// One declared server.
pub struct Server {
    name: String,
    kind: ToolServerKind,
    url: url::Url,
    auth: Option<AuthHeader>,
    source: Source,
    state: tokio::sync::Mutex<LoadState>,
}

impl Server {
    fn from_decl(decl: &ToolServerDecl) -> Self {
        let source = match (&decl.kind, &decl.operations) {
            (ToolServerKind::Mcp, _) => Source::Mcp(mcp::McpClient::new(decl.url.clone())),
            (ToolServerKind::OpenApi, Some(OperationsSource::Inline(paths))) => {
                Source::OpenApiInline(serde_json::json!({ "paths": paths }))
            }
            (ToolServerKind::OpenApi, Some(OperationsSource::SpecPath(path))) => {
                match decl.url.join(path) {
                    Ok(url) => Source::OpenApiSpec(url),
                    Err(_) => Source::OpenApiInline(Value::Null),
                }
            }
            (ToolServerKind::OpenApi, None) => Source::OpenApiInline(Value::Null),
        };
        let auth = AuthHeader::from_decl(decl.auth.as_ref());
        if decl.auth.is_some() && auth.is_none() {
            tracing::error!(
                tool.server = %decl.name,
                "the tool server's auth header cannot be built; its requests go without it"
            );
        }
        Self {
            name: decl.name.clone(),
            kind: decl.kind,
            url: decl.url.clone(),
            auth,
            source,
            state: tokio::sync::Mutex::new(LoadState::Waiting {
                next_attempt: Instant::now(),
                backoff: LOAD_BACKOFF_START,
            }),
        }
    }

    /// The server's name as declared.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// One entry of a request's catalogue: the name the model sees and the tool behind it.
pub struct Entry {
    pub exposed: String,
    pub server: Arc<Server>,
    pub tool: Arc<ServerTool>,
}

/// The tools offered to one request.
#[derive(Default)]
pub struct Catalog {
    entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
}

impl Catalog {
    /// The specs the component sees.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.entries
            .iter()
            .map(|e| ToolSpec {
                name: e.exposed.clone(),
                description: e.tool.description.clone(),
                parameters_json: e.tool.schema.to_string(),
            })
            .collect()
    }

    fn get(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).and_then(|i| self.entries.get(*i))
    }

    /// Number of tools.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Counters and the concurrency gauge of tool calls.
#[derive(Debug, Default)]
pub struct ToolMetrics {
    calls: Mutex<BTreeMap<(String, &'static str), u64>>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

/// Holds one unit of the in-flight gauge.
struct InFlight<'a>(&'a ToolMetrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ToolMetrics {
    fn enter(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak.fetch_max(now, Ordering::AcqRel);
        InFlight(self)
    }

    fn record(&self, server: &str, outcome: &'static str) {
        if let Ok(mut map) = self.calls.lock() {
            *map.entry((server.to_owned(), outcome)).or_insert(0) += 1;
        }
    }

    /// Calls to `server` that ended with `outcome`.
    pub fn calls(&self, server: &str, outcome: &str) -> u64 {
        self.calls
            .lock()
            .map(|map| {
                map.iter()
                    .filter(|((s, o), _)| s == server && *o == outcome)
                    .map(|(_, v)| *v)
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Most calls that were running at once since start.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Acquire)
    }

    /// Calls running now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Prometheus text: `responses_pipe_tool_calls_total{server,outcome}` (outcomes `ok`,
    /// `error`, `http_error`, `timeout`, `unavailable`, `refused`, `invalid_argument`,
    /// `not_found`, `session_closed`, `shutdown`, and `retried` for each retry of a call that
    /// never reached its server), the in-flight gauge and its peak. Server names come from the
    /// config, so the label set is bounded.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Ok(map) = self.calls.lock() {
            for ((server, outcome), value) in map.iter() {
                let _ = writeln!(
                    out,
                    "responses_pipe_tool_calls_total{{server=\"{server}\",outcome=\"{outcome}\"}} {value}"
                );
            }
        }
        let _ = writeln!(
            out,
            "responses_pipe_tool_calls_in_flight {}",
            self.in_flight()
        );
        let _ = writeln!(
            out,
            "responses_pipe_tool_calls_peak_in_flight {}",
            self.peak()
        );
        out
    }
}

/// The process-wide tool service.
pub struct ToolHost {
    servers: Vec<Arc<Server>>,
    client: Arc<EgressClient>,
    limits: ToolLimits,
    global: Arc<Semaphore>,
    metrics: ToolMetrics,
    /// Set once shutdown starts: the moment in-flight calls are cut.
    shutdown: watch::Sender<Option<Instant>>,
}

impl ToolHost {
    /// The service for `decls`, sending through `client`. Nothing is fetched yet: see
    /// [`ToolHost::start`].
    pub fn new(
        decls: &[ToolServerDecl],
        limits: ToolLimits,
        client: Arc<EgressClient>,
    ) -> Arc<Self> {
        Arc::new(Self {
            servers: decls
                .iter()
                .map(|d| Arc::new(Server::from_decl(d)))
                .collect(),
            client,
            global: Arc::new(Semaphore::new(limits.global)),
            limits,
            metrics: ToolMetrics::default(),
            shutdown: watch::channel(None).0,
        })
    }

    /// Fetch every server's tool list in the background, retrying with backoff until it loads.
    /// Without a tokio runtime the lists are fetched on first use instead.
    pub fn start(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        for server in &self.servers {
            let host = Arc::downgrade(self);
            let server = Arc::clone(server);
            runtime.spawn(async move {
                loop {
                    let Some(host) = host.upgrade() else {
                        return;
                    };
                    let wait = match host.ensure_loaded(&server).await {
                        Ok(_) => return,
                        Err(at) => at,
                    };
                    drop(host);
                    tokio::time::sleep_until(wait).await;
                }
            });
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &ToolLimits {
        &self.limits
    }

    /// The call counters and the concurrency gauge.
    pub fn metrics(&self) -> &ToolMetrics {
        &self.metrics
    }

    /// Whether any server is declared.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// Start shutting down: calls still running after `TOOL_SHUTDOWN_TIMEOUT_SECONDS` end with
    /// `unavailable`.
    pub fn begin_shutdown(&self) {
        let deadline = Instant::now() + self.limits.shutdown_timeout;
        self.shutdown.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(deadline);
                true
            } else {
                false
            }
        });
    }

    /// The server's tools, fetching them if they are not loaded and an attempt is due. `Err`
    /// carries when the next attempt is due.
    async fn ensure_loaded(&self, server: &Server) -> Result<Arc<Vec<Arc<ServerTool>>>, Instant> {
        let mut state = server.state.lock().await;
        let backoff = match &*state {
            LoadState::Loaded(tools) => return Ok(Arc::clone(tools)),
            LoadState::Waiting {
                next_attempt,
                backoff,
            } => {
                if Instant::now() < *next_attempt {
                    return Err(*next_attempt);
                }
                *backoff
            }
        };
        let fetched = tokio::time::timeout(self.limits.call_timeout, self.fetch_tools(server))
            .await
            .unwrap_or_else(|_| Err("fetching the tool list timed out".to_owned()));
        match fetched {
            Ok(tools) => {
                tracing::info!(
                    tool.server = %server.name,
                    kind = server.kind.as_str(),
                    tools = tools.len(),
                    "tool server ready"
                );
                let tools = Arc::new(tools);
                *state = LoadState::Loaded(Arc::clone(&tools));
                Ok(tools)
            }
            Err(reason) => {
                let next_attempt = Instant::now() + backoff;
                tracing::warn!(
                    tool.server = %server.name,
                    kind = server.kind.as_str(),
                    error = %reason,
                    retry_in_seconds = backoff.as_secs(),
                    "could not load the tool server's tools; retrying later"
                );
                *state = LoadState::Waiting {
                    next_attempt,
                    backoff: (backoff * 2).min(LOAD_BACKOFF_MAX),
                };
                Err(next_attempt)
            }
        }
    }

    async fn fetch_tools(&self, server: &Server) -> Result<Vec<Arc<ServerTool>>, String> {
        let doc = match &server.source {
            Source::OpenApiInline(doc) => doc.clone(),
            Source::OpenApiSpec(url) => {
                let answer = transport::send(
                    &self.client,
                    server.auth.as_ref(),
                    Outgoing {
                        method: http::Method::GET,
                        url,
                        headers: Vec::new(),
                        body: None,
                        content_type: None,
                        accept: "application/json, application/yaml;q=0.9, */*;q=0.1",
                    },
                    self.limits.idle_timeout,
                )
                .await
                .map_err(|f| describe(&f.error))?;
                let (bytes, truncated) = transport::read_capped(answer.body, MAX_SPEC_BYTES)
                    .await
                    .map_err(|f| describe(&f.error))?;
                if !answer.status.is_success() {
                    return Err(format!(
                        "the spec request answered HTTP {}",
                        answer.status.as_u16()
                    ));
                }
                if truncated {
                    return Err(format!("the spec is larger than {MAX_SPEC_BYTES} bytes"));
                }
                openapi::parse_document(&bytes).map_err(|e| e.to_string())?
            }
            Source::Mcp(client) => {
                let link = mcp::Link {
                    client: &self.client,
                    auth: server.auth.as_ref(),
                    idle: self.limits.idle_timeout,
                };
                let listed = client
                    .list_tools(&link)
                    .await
                    .map_err(|f| describe(&f.error))?;
                return Ok(listed
                    .into_iter()
                    .map(|t| {
                        Arc::new(ServerTool {
                            base: openapi::sanitize_name(&t.name),
                            name: t.name,
                            description: t.description,
                            schema: t.schema,
                            kind: ToolKind::Mcp,
                        })
                    })
                    .collect());
            }
        };
        let ops = openapi::operations(&doc).map_err(|e| e.to_string())?;
        Ok(ops
            .into_iter()
            .map(|op| {
                Arc::new(ServerTool {
                    name: op.name.clone(),
                    base: op.name.clone(),
                    description: op.description.clone(),
                    schema: op.schema.clone(),
                    kind: ToolKind::OpenApi(op),
                })
            })
            .collect())
    }

    /// The tools every server serves right now (servers whose list is not loaded are left out;
    /// a due retry is attempted first).
    pub async fn catalog(&self) -> Arc<Catalog> {
        // Concurrently, so servers still loading cost one fetch's time, not the sum.
        let loaded = futures::future::join_all(self.servers.iter().map(|server| async move {
            self.ensure_loaded(server)
                .await
                .ok()
                .map(|tools| (Arc::clone(server), tools))
        }))
        .await;
        let per_server: Vec<_> = loaded.into_iter().flatten().collect();
        let mut count: HashMap<&str, usize> = HashMap::new();
        for (_, tools) in &per_server {
            let mut seen = std::collections::HashSet::new();
            for t in tools.iter() {
                if seen.insert(t.base.as_str()) {
                    *count.entry(t.base.as_str()).or_insert(0) += 1;
                }
            }
        }
        let mut catalog = Catalog::default();
        for (server, tools) in &per_server {
            for tool in tools.iter() {
                let base = if count.get(tool.base.as_str()).copied().unwrap_or(0) > 1 {
                    prefixed(&server.name, &tool.base)
                } else {
                    tool.base.clone()
                };
                let mut exposed = base.clone();
                let mut n = 2;
                while catalog.by_name.contains_key(&exposed) {
                    let suffix = format!("_{n}");
                    let keep = MAX_TOOL_NAME_CHARS.saturating_sub(suffix.len());
                    exposed = format!("{}{suffix}", base.chars().take(keep).collect::<String>());
                    n += 1;
                }
                catalog
                    .by_name
                    .insert(exposed.clone(), catalog.entries.len());
                catalog.entries.push(Entry {
                    exposed,
                    server: Arc::clone(server),
                    tool: Arc::clone(tool),
                });
            }
        }
        Arc::new(catalog)
    }

    /// Run a batch against `catalog`; one result per call, in call order.
    pub async fn invoke(
        &self,
        catalog: &Catalog,
        calls: Vec<ToolCall>,
        options: &InvokeOptions,
    ) -> Vec<ToolResult> {
        let per_request = usize::try_from(options.max_parallel)
            .unwrap_or(usize::MAX)
            .clamp(1, self.limits.per_request);
        let gate = Semaphore::new(per_request);
        let clamp = |guest_ms: u64, host: Duration| {
            if guest_ms == 0 {
                host
            } else {
                Duration::from_millis(guest_ms).min(host)
            }
        };
        let call_timeout = clamp(options.call_timeout_ms, self.limits.call_timeout);
        let batch_timeout = clamp(options.batch_timeout_ms, self.limits.batch_timeout);
        let idle = match (options.idle_timeout_ms, self.limits.idle_timeout) {
            (Some(ms), host) if ms > 0 => Some(host.map_or(Duration::from_millis(ms), |h| {
                Duration::from_millis(ms).min(h)
            })),
            (_, host) => host,
        };
        let batch_deadline = Instant::now() + batch_timeout;
        let runs = calls.into_iter().map(|call| {
            let gate = &gate;
            async move {
                let started = Instant::now();
                let (server_name, tool_name, result, attempts) = match prepare(catalog, &call) {
                    Err((failure, server)) => (server, call.name.clone(), Err(failure), 0),
                    Ok((entry, args)) => {
                        let server = entry.server.name.clone();
                        let (result, attempts) = self
                            .run_bounded(gate, entry, &args, call_timeout, batch_deadline, idle)
                            .await;
                        (server, entry.tool.name.clone(), result, attempts)
                    }
                };
                let outcome = match &result {
                    Ok(_) => "ok",
                    Err(f) => f.outcome,
                };
                self.metrics.record(&server_name, outcome);
                tracing::info!(
                    tool.server = %server_name,
                    tool.name = %tool_name,
                    outcome,
                    attempts,
                    elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    "tool call"
                );
                ToolResult {
                    call_id: call.call_id,
                    output: result.map_err(|f| f.error),
                }
            }
        });
        futures::future::join_all(runs).await
    }

    /// Wait for the per-request and the host-wide permits, then run the call within its own
    /// budget, the batch deadline and the shutdown deadline.
    async fn run_bounded(
        &self,
        gate: &Semaphore,
        entry: &Entry,
        args: &Map<String, Value>,
        call_timeout: Duration,
        batch_deadline: Instant,
        idle: Option<Duration>,
    ) -> (Result<String, Failure>, u32) {
        let attempts = AtomicUsize::new(0);
        let run = async {
            let closed = || {
                Failure::new(
                    ToolError::Unavailable("the host is shutting down".into()),
                    "shutdown",
                )
            };
            let _request_permit = gate.acquire().await.map_err(|_| closed())?;
            let _global_permit = self.global.acquire().await.map_err(|_| closed())?;
            let _running = self.metrics.enter();
            match tokio::time::timeout(
                call_timeout,
                self.run_with_retries(entry, args, idle, &attempts),
            )
            .await
            {
                Ok(result) => result,
                Err(_) => Err(Failure::new(ToolError::Timeout, "timeout")),
            }
        };
        let mut shutdown = self.shutdown.subscribe();
        let cut = async move {
            let Ok(deadline) = shutdown.wait_for(Option::is_some).await.map(|d| *d) else {
                return std::future::pending::<()>().await;
            };
            if let Some(deadline) = deadline {
                tokio::time::sleep_until(deadline).await;
            }
        };
        let result = tokio::select! {
            r = tokio::time::timeout_at(batch_deadline, run) => {
                r.unwrap_or_else(|_| Err(Failure::new(ToolError::Timeout, "timeout")))
            }
            () = cut => Err(Failure::new(
                ToolError::Unavailable("the host is shutting down".into()),
                "shutdown",
            )),
        };
        let attempts = u32::try_from(attempts.load(Ordering::Acquire)).unwrap_or(u32::MAX);
        (result, attempts)
    }

    async fn run_with_retries(
        &self,
        entry: &Entry,
        args: &Map<String, Value>,
        idle: Option<Duration>,
        attempts: &AtomicUsize,
    ) -> Result<String, Failure> {
        let mut retries = 0;
        loop {
            attempts.fetch_add(1, Ordering::AcqRel);
            let result = match (&entry.tool.kind, &entry.server.source) {
                (ToolKind::OpenApi(op), _) => {
                    self.call_openapi(&entry.server, op, args, idle).await
                }
                (ToolKind::Mcp, Source::Mcp(client)) => {
                    let link = mcp::Link {
                        client: &self.client,
                        auth: entry.server.auth.as_ref(),
                        idle,
                    };
                    client.call(&link, &entry.tool.name, args).await
                }
                (ToolKind::Mcp, _) => Err(Failure::new(ToolError::NotFound, "not_found")),
            };
            match result {
                Err(f) if f.never_reached && retries < MAX_UNREACHED_RETRIES => {
                    retries += 1;
                    self.metrics.record(&entry.server.name, "retried");
                    tracing::debug!(
                        tool.server = %entry.server.name,
                        tool.name = %entry.tool.name,
                        retry = retries,
                        "tool server not reached; retrying"
                    );
                    tokio::time::sleep(RETRY_PAUSE * retries).await;
                }
                other => return other,
            }
        }
    }

    async fn call_openapi(
        &self,
        server: &Server,
        op: &Operation,
        args: &Map<String, Value>,
        idle: Option<Duration>,
    ) -> Result<String, Failure> {
        let built = op
            .build(&server.url, args)
            .map_err(|e| Failure::new(ToolError::InvalidArgument(e), "invalid_argument"))?;
        let content_type = built.body.is_some().then_some("application/json");
        let answer = transport::send(
            &self.client,
            server.auth.as_ref(),
            Outgoing {
                method: built.method,
                url: &built.url,
                headers: built.headers,
                body: built.body,
                content_type,
                accept: ACCEPT_ANY,
            },
            idle,
        )
        .await?;
        let text = transport::read_text(answer.body).await?;
        if answer.status.is_success() {
            Ok(text)
        } else {
            Err(transport::status_error(answer.status, &text))
        }
    }
}

/// `server__tool`, cut to the longest function name.
fn prefixed(server: &str, tool: &str) -> String {
    format!("{server}__{tool}")
        .chars()
        .take(MAX_TOOL_NAME_CHARS)
        .collect()
}

/// A call ready to run (its catalogue entry and arguments), or why not and the server label.
type Prepared<'a> = Result<(&'a Entry, Map<String, Value>), (Failure, String)>;

/// Look the call up and parse its arguments. The error carries the server label for metrics.
fn prepare<'a>(catalog: &'a Catalog, call: &ToolCall) -> Prepared<'a> {
    let Some(entry) = catalog.get(&call.name) else {
        return Err((
            Failure::new(ToolError::NotFound, "not_found"),
            "-".to_owned(),
        ));
    };
    let text = call.arguments_json.trim();
    let args = if text.is_empty() {
        Map::new()
    } else {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err((
                    Failure::new(
                        ToolError::InvalidArgument("the arguments must be a JSON object".into()),
                        "invalid_argument",
                    ),
                    entry.server.name.clone(),
                ));
            }
            Err(e) => {
                return Err((
                    Failure::new(
                        ToolError::InvalidArgument(format!(
                            "the arguments are not valid JSON: {e}"
                        )),
                        "invalid_argument",
                    ),
                    entry.server.name.clone(),
                ));
            }
        }
    };
    Ok((entry, args))
}

/// A tool error as text for logs.
fn describe(error: &ToolError) -> String {
    match error {
        ToolError::NotFound => "not found".to_owned(),
        ToolError::Timeout => "timed out".to_owned(),
        ToolError::Unavailable(s) | ToolError::InvalidArgument(s) | ToolError::Other(s) => {
            s.clone()
        }
    }
}

/// The per-instance view the component's `tools` calls land on.
pub struct ToolsView {
    host: Arc<ToolHost>,
    catalog: Option<Arc<Catalog>>,
}

impl ToolsView {
    pub fn new(host: Arc<ToolHost>) -> Self {
        Self {
            host,
            catalog: None,
        }
    }

    async fn catalog(&mut self) -> Arc<Catalog> {
        match &self.catalog {
            Some(c) => Arc::clone(c),
            None => {
                let c = self.host.catalog().await;
                self.catalog = Some(Arc::clone(&c));
                c
            }
        }
    }
}

impl wit_tools::Host for ToolsView {
    async fn available(&mut self) -> Result<Vec<ToolSpec>, ToolError> {
        if self.host.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.catalog().await.specs())
    }

    async fn invoke(&mut self, calls: Vec<ToolCall>, options: InvokeOptions) -> Vec<ToolResult> {
        let catalog = self.catalog().await;
        let host = Arc::clone(&self.host);
        host.invoke(&catalog, calls, &options).await
    }
}
