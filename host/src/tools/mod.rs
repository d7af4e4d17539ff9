//! The `tools` capability: tools the operator declared (`[[tool_servers]]`: OpenAPI servers and
//! MCP servers over streamable HTTP), served to the component through `available` and `invoke`.
//!
//! - [`ToolHost`] is built once per process: the declared servers, their tool lists (fetched by
//!   one loader task per server at start-up; a failed fetch is logged and retried with backoff,
//!   5 s doubling to 160 s, without failing start-up; a request waits for a server's first fetch
//!   at most 10 s and never for a retry), the host-wide semaphore (`MAX_PARALLEL_TOOLS_GLOBAL`),
//!   the metrics and the shutdown deadline. Lists are fetched once; a server whose tools change
//!   needs a host restart.
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
/// How long a request waits for a server's first tool-list fetch before going on without it.
const FIRST_LOAD_WAIT: Duration = Duration::from_secs(10);
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
    /// `TOOL_SERVER_REFRESH_SECONDS`: how often a loaded server's tool list is fetched again
    /// (`None`: never after it first loads).
    pub refresh: Option<Duration>,
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
            refresh: Some(int("TOOL_SERVER_REFRESH_SECONDS", 300))
                .filter(|s| *s > 0)
                .map(Duration::from_secs),
        }
    }
}

/// The bounds of one `invoke`: the guest's options clamped to the host's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Calls of the batch running at once.
    pub parallel: usize,
    pub call_timeout: Duration,
    pub batch_timeout: Duration,
    pub idle: Option<Duration>,
}

impl ToolLimits {
    /// The guest may lower every limit, never raise one; `0` (or no idle timeout) means the
    /// host's own value.
    pub fn bounds(&self, options: &InvokeOptions) -> Bounds {
        let clamp = |guest_ms: u64, host: Duration| {
            if guest_ms == 0 {
                host
            } else {
                Duration::from_millis(guest_ms).min(host)
            }
        };
        let idle = match (options.idle_timeout_ms, self.idle_timeout) {
            (Some(ms), host) if ms > 0 => Some(host.map_or(Duration::from_millis(ms), |h| {
                Duration::from_millis(ms).min(h)
            })),
            (_, host) => host,
        };
        Bounds {
            parallel: usize::try_from(options.max_parallel)
                .unwrap_or(usize::MAX)
                .clamp(1, self.per_request),
            call_timeout: clamp(options.call_timeout_ms, self.call_timeout),
            batch_timeout: clamp(options.batch_timeout_ms, self.batch_timeout),
            idle,
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

/// Where a server's tool list stands. Only the server's loader task fetches; requests read.
#[derive(Clone)]
enum Phase {
    /// The first fetch has not finished yet.
    Pending,
    Ready(Arc<Vec<Arc<ServerTool>>>),
    /// The last fetch failed; the loader tries again after its backoff.
    Failed,
}

/// One declared server.
pub struct Server {
    name: String,
    kind: ToolServerKind,
    url: url::Url,
    auth: Option<AuthHeader>,
    source: Source,
    phase: watch::Sender<Phase>,
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
            phase: watch::channel(Phase::Pending).0,
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
    /// `error`, `http_error`, `timeout` (the call's budget), `batch_timeout`, `idle_timeout`,
    /// `unavailable`, `refused`, `invalid_argument`,
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
    /// Whether the loader tasks run.
    started: std::sync::atomic::AtomicBool,
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
            started: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Start one loader task per server: it fetches the tool list, and after a failure tries
    /// again with backoff until it loads; once loaded it fetches the list again every
    /// `TOOL_SERVER_REFRESH_SECONDS`, so tools a server adds, changes or drops show up without a
    /// restart (a failed refresh keeps the list it had). Idempotent; without a tokio runtime it
    /// does nothing (the first request's `available` starts the loaders then).
    pub fn start(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        for server in &self.servers {
            let host = Arc::downgrade(self);
            let server = Arc::clone(server);
            runtime.spawn(async move {
                let mut backoff = LOAD_BACKOFF_START;
                loop {
                    let Some(host) = host.upgrade() else {
                        return;
                    };
                    let wait = if host.load(&server, backoff).await {
                        backoff = LOAD_BACKOFF_START;
                        match host.limits.refresh {
                            Some(every) => every,
                            None => return,
                        }
                    } else {
                        let wait = backoff;
                        backoff = (backoff * 2).min(LOAD_BACKOFF_MAX);
                        wait
                    };
                    drop(host);
                    tokio::time::sleep(wait).await;
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

    /// One fetch of the server's tool list; `true` when it loaded. A failure is logged with
    /// when the next attempt comes.
    async fn load(&self, server: &Server, backoff: Duration) -> bool {
        let fetched = tokio::time::timeout(self.limits.call_timeout, self.fetch_tools(server))
            .await
            .unwrap_or_else(|_| Err("fetching the tool list timed out".to_owned()));
        match fetched {
            Ok(tools) => {
                let names = |p: &Phase| match p {
                    Phase::Ready(t) => t.iter().map(|t| t.base.clone()).collect::<Vec<_>>(),
                    Phase::Pending | Phase::Failed => Vec::new(),
                };
                let before = names(&server.phase.borrow());
                let tools = Arc::new(tools);
                let after = names(&Phase::Ready(Arc::clone(&tools)));
                if before != after {
                    tracing::info!(
                        tool.server = %server.name,
                        kind = server.kind.as_str(),
                        tools = after.len(),
                        "tool server ready"
                    );
                }
                server.phase.send_replace(Phase::Ready(tools));
                true
            }
            Err(reason) => {
                // A refresh that fails keeps serving the list the server had.
                let keep = matches!(*server.phase.borrow(), Phase::Ready(_));
                tracing::warn!(
                    tool.server = %server.name,
                    kind = server.kind.as_str(),
                    error = %crate::logsafe::escaped_to(&reason.to_string(), 400),
                    retry_in_seconds = backoff.as_secs(),
                    keeps_last_list = keep,
                    "could not load the tool server's tools; retrying later"
                );
                if !keep {
                    server.phase.send_replace(Phase::Failed);
                }
                false
            }
        }
    }

    /// The server's tools if loaded. While its first fetch is still running this waits for it,
    /// at most [`FIRST_LOAD_WAIT`], so the first requests after start-up see its tools.
    async fn loaded(&self, server: &Server) -> Option<Arc<Vec<Arc<ServerTool>>>> {
        let mut phase = server.phase.subscribe();
        let current = phase.borrow_and_update().clone();
        let current = match current {
            Phase::Pending => {
                match tokio::time::timeout(
                    FIRST_LOAD_WAIT,
                    phase.wait_for(|p| !matches!(p, Phase::Pending)),
                )
                .await
                {
                    Ok(Ok(p)) => p.clone(),
                    _ => Phase::Pending,
                }
            }
            other => other,
        };
        match current {
            Phase::Ready(tools) => Some(tools),
            Phase::Pending | Phase::Failed => None,
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

    /// The tools every server serves right now (servers whose list is not loaded are left out).
    pub async fn catalog(self: &Arc<Self>) -> Arc<Catalog> {
        self.start();
        // Concurrently, so servers still on their first fetch cost one wait, not the sum.
        let loaded = futures::future::join_all(self.servers.iter().map(|server| async move {
            self.loaded(server)
                .await
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
        let Bounds {
            parallel,
            call_timeout,
            batch_timeout,
            idle,
        } = self.limits.bounds(options);
        let gate = Semaphore::new(parallel);
        let batch_deadline = Instant::now() + batch_timeout;
        let runs = calls.into_iter().map(|call| {
            let gate = &gate;
            async move {
                let started = Instant::now();
                let (server_name, tool_name, result, attempts) = match prepare(catalog, &call) {
                    // The name came from the model: log a bounded piece of it.
                    Err((failure, server)) => (
                        server,
                        call.name.chars().take(MAX_TOOL_NAME_CHARS).collect(),
                        Err(failure),
                        0,
                    ),
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
                    tool.name = %crate::logsafe::escaped(&tool_name),
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
                r.unwrap_or_else(|_| Err(Failure::new(ToolError::Timeout, "batch_timeout")))
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
                        tool.name = %crate::logsafe::escaped(&entry.tool.name),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ToolLimits {
        ToolLimits {
            per_request: 5,
            global: 200,
            call_timeout: Duration::from_secs(60),
            batch_timeout: Duration::from_secs(120),
            idle_timeout: Some(Duration::from_secs(30)),
            shutdown_timeout: Duration::from_secs(10),
            refresh: Some(Duration::from_secs(300)),
        }
    }

    fn opts(max_parallel: u32, call: u64, batch: u64, idle: Option<u64>) -> InvokeOptions {
        InvokeOptions {
            max_parallel,
            call_timeout_ms: call,
            batch_timeout_ms: batch,
            idle_timeout_ms: idle,
        }
    }

    #[test]
    fn the_guest_may_lower_every_bound_but_never_raise_one() {
        let l = limits();
        let lower = l.bounds(&opts(2, 1_000, 5_000, Some(500)));
        assert_eq!(
            lower,
            Bounds {
                parallel: 2,
                call_timeout: Duration::from_secs(1),
                batch_timeout: Duration::from_secs(5),
                idle: Some(Duration::from_millis(500)),
            }
        );
        let higher = l.bounds(&opts(50, 600_000, 900_000, Some(90_000)));
        assert_eq!(
            higher,
            Bounds {
                parallel: 5,
                call_timeout: Duration::from_secs(60),
                batch_timeout: Duration::from_secs(120),
                idle: Some(Duration::from_secs(30)),
            }
        );
        let unset = l.bounds(&opts(0, 0, 0, None));
        assert_eq!(unset.parallel, 1);
        assert_eq!(unset.call_timeout, Duration::from_secs(60));
        assert_eq!(unset.idle, Some(Duration::from_secs(30)));
        let no_host_idle = ToolLimits {
            idle_timeout: None,
            ..l
        };
        assert_eq!(no_host_idle.bounds(&opts(1, 0, 0, None)).idle, None);
        assert_eq!(
            no_host_idle.bounds(&opts(1, 0, 0, Some(700))).idle,
            Some(Duration::from_millis(700))
        );
    }

    #[test]
    fn tool_limits_come_from_the_valves_and_the_batch_budget_covers_a_call() {
        let config = Config::load(None, &|name| match name {
            "TOOL_TIMEOUT_SECONDS" => Some("200".to_owned()),
            "TOOL_BATCH_TIMEOUT_SECONDS" => Some("30".to_owned()),
            "TOOL_IDLE_TIMEOUT_SECONDS" => Some("7".to_owned()),
            "TOOL_SHUTDOWN_TIMEOUT_SECONDS" => Some("2.5".to_owned()),
            "MAX_PARALLEL_TOOLS_PER_REQUEST" => Some("3".to_owned()),
            "MAX_PARALLEL_TOOLS_GLOBAL" => Some("9".to_owned()),
            "TOOL_SERVER_REFRESH_SECONDS" => Some("0".to_owned()),
            _ => None,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            ToolLimits::from_config(&config),
            ToolLimits {
                per_request: 3,
                global: 9,
                call_timeout: Duration::from_secs(200),
                batch_timeout: Duration::from_secs(200),
                idle_timeout: Some(Duration::from_secs(7)),
                shutdown_timeout: Duration::from_millis(2500),
                refresh: None,
            }
        );
    }
}
