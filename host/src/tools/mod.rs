//! The `tools` capability: tools the operator declared (`[[tool_servers]]`: OpenAPI servers and
//! MCP servers over streamable HTTP), served to the component through `available` and `invoke`.
//!
//! - [`ToolHost`] is built once per process: the declared servers, their tool lists (fetched by
//!   one loader task per server at start-up; a failed fetch is logged and retried with backoff,
//!   5 s doubling to 160 s, without failing start-up; a request waits for a server's first fetch
//!   at most 10 s and never for a retry), the host-wide semaphore (`MAX_PARALLEL_TOOLS_GLOBAL`),
//!   the metrics and the shutdown deadline. Loaded lists are fetched again every
//!   `TOOL_SERVER_REFRESH_SECONDS`; a failed refresh keeps the list the server had.
//! - [`ToolsView`] (`capability`) is the per-instance (per-request) side: it keeps the catalogue
//!   the request was shown, so names map back to the same tools even if a server's list changes
//!   meanwhile. Bounds are in `limits`, counters in `metrics`.
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

mod capability;
mod limits;
pub mod mcp;
mod metrics;
pub mod openapi;
pub mod transport;

pub use capability::ToolsView;
pub use limits::{Bounds, ToolLimits};
pub use metrics::ToolMetrics;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::bindings::tools::InvokeOptions;
use crate::bindings::types::{ToolCall, ToolError, ToolResult, ToolSpec};
use crate::config::{OperationsSource, ToolServerDecl, ToolServerKind};
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
