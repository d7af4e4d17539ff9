//! One component instance per request: the store state that serves every import, the linker
//! (full WASI p2 denied by context, wasi:http behind the egress gate, our capabilities), the
//! per-instance bounds (memory limiter, CPU budget counted in epoch ticks spent executing), and
//! the calls into the exported `pipe` interface. A trap, a CPU overrun or a memory overrun ends
//! that call with a typed `GuestFailure`; the host carries on.

use crate::bindings::ResponsesPipePre;
use crate::bindings::exports::openwebui::responses_pipe::pipe::GuestFailure as WitGuestFailure;
use crate::bindings::types::{PipeError, RequestContext};
use crate::crypto::{ArtifactCrypto, CryptoView};
use crate::egress::hooks::GateHooks;
use crate::egress::policy::EgressPolicy;
use crate::emit::EmitSink;
use crate::engine::{EPOCH_TICK, PipeEngine};
use crate::kv::{KvBackend, KvView};
use crate::metrics::Metrics;
use crate::store::{ArtifactStore, StoreView};
use crate::tools::{ToolHost, ToolsView};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{HasData, HasSelf, Linker, ResourceTable};
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Why a call into the guest ended without a result of its own.
#[derive(Debug, thiserror::Error)]
pub enum GuestFailure {
    #[error("the request used more CPU time than the per-request budget")]
    CpuExceeded,
    #[error("the request needed more memory than the per-request limit")]
    MemoryExceeded,
    #[error("the pipe failed unexpectedly (trap: {0})")]
    Trap(String),
    #[error("the server is at capacity (no instance slot free)")]
    Capacity(String),
    #[error(
        "the request ran longer than {} s (REQUEST_TIMEOUT_SECONDS) and was stopped", .0.as_secs()
    )]
    TimedOut(Duration),
}

impl GuestFailure {
    /// A stable label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            GuestFailure::CpuExceeded => "guest_cpu_exceeded",
            GuestFailure::MemoryExceeded => "guest_memory_exceeded",
            GuestFailure::Trap(_) => "guest_trap",
            GuestFailure::Capacity(_) => "instance_capacity",
            GuestFailure::TimedOut(_) => "request_timeout",
        }
    }

    /// The failure as the component's `internal-error-text` names it; `None` for a full
    /// instance pool (nothing ran) and for the wall-clock cap (its own error says it all).
    pub fn as_wit(&self) -> Option<WitGuestFailure> {
        match self {
            GuestFailure::CpuExceeded => Some(WitGuestFailure::CpuExceeded),
            GuestFailure::MemoryExceeded => Some(WitGuestFailure::MemoryExceeded),
            GuestFailure::Trap(_) => Some(WitGuestFailure::Trap),
            GuestFailure::Capacity(_) | GuestFailure::TimedOut(_) => None,
        }
    }
}

/// Bounds applied to every instance.
#[derive(Clone, Debug)]
pub struct GuestLimits {
    pub memory_bytes: usize,
    pub cpu_budget: Duration,
}

/// Memory and table limiter that records why it refused.
#[derive(Debug)]
struct Limiter {
    memory_bytes: usize,
    memory_exceeded: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.memory_exceeded = true;
            return Err(wasmtime::Error::msg("memory limit exceeded"));
        }
        Ok(true)
    }
    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Everything one instance's imports need.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: GateHooks,
    policy: Arc<EgressPolicy>,
    metrics: Arc<Metrics>,
    limiter: Limiter,
    emit: EmitSink,
    kv: Arc<KvBackend>,
    store: Arc<ArtifactStore>,
    tools: ToolsView,
    crypto: CryptoView,
    cpu_ticks: u64,
    cpu_budget_ticks: u64,
    cpu_exceeded: bool,
    /// The guest's stderr: its diagnostic lines, logged under the request's span afterwards.
    stderr: wasmtime_wasi::p2::pipe::MemoryOutputPipe,
}

/// Most bytes of guest diagnostics kept per request; writes beyond fail (the guest ignores that).
const GUEST_STDERR_BYTES: usize = 64 << 10;
/// Prefix of a guest stderr line meant for the debug log (the guest's `Env::log_debug`).
pub const GUEST_DEBUG_PREFIX: &str = "[debug] ";

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl crate::egress::handle::GatedHttpState for HostState {
    fn policy(&self) -> Arc<EgressPolicy> {
        Arc::clone(&self.policy)
    }
    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// `types` declares records only; its (empty) host trait is served by the state itself.
impl crate::bindings::types::Host for HostState {}

struct KvData;
impl HasData for KvData {
    type Data<'a> = KvView<'a>;
}
struct StoreData;
impl HasData for StoreData {
    type Data<'a> = StoreView<'a>;
}

/// Build the linker: full WASI p2 (the context grants nothing), wasi:http with the `handle`
/// gate shadowing the stock function, and our own interfaces.
fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::<HostState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    crate::bindings::emit::add_to_linker::<HostState, HasSelf<EmitSink>>(&mut linker, |s| {
        &mut s.emit
    })?;
    crate::bindings::kv::add_to_linker::<HostState, KvData>(&mut linker, |s| KvView {
        backend: &s.kv,
    })?;
    crate::bindings::store::add_to_linker::<HostState, StoreData>(&mut linker, |s| StoreView {
        table: &mut s.table,
        store: &s.store,
    })?;
    crate::bindings::tools::add_to_linker::<HostState, HasSelf<ToolsView>>(&mut linker, |s| {
        &mut s.tools
    })?;
    crate::bindings::crypto::add_to_linker::<HostState, HasSelf<CryptoView>>(&mut linker, |s| {
        &mut s.crypto
    })?;
    crate::bindings::types::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    crate::egress::handle::shadow_outgoing_handler(&mut linker)?;
    Ok(linker)
}

/// What the runner needs to build each instance.
pub struct RunnerParts {
    pub engine: Arc<PipeEngine>,
    pub policy: Arc<EgressPolicy>,
    pub hooks: Arc<dyn Fn(&str) -> GateHooks + Send + Sync>,
    pub kv: Arc<KvBackend>,
    /// The artifact store behind the `store` import.
    pub store: Arc<ArtifactStore>,
    pub metrics: Arc<Metrics>,
    /// The declared tool servers, served through the `tools` import.
    pub tools: Arc<ToolHost>,
    /// Artifact keys behind the `crypto` capability (never handed to the guest).
    pub crypto: Arc<ArtifactCrypto>,
    pub limits: GuestLimits,
    /// Host directory preopened as `/data` in the guest.
    pub guest_dir: PathBuf,
}

/// Instantiates the component per call and runs the exports.
pub struct Runner {
    parts: RunnerParts,
    pre: ResponsesPipePre<HostState>,
}

impl Runner {
    pub fn new(parts: RunnerParts) -> Result<Self, crate::engine::EngineError> {
        let map = |e: wasmtime::Error| crate::engine::EngineError::Config(format!("{e:#}"));
        let linker = linker(&parts.engine.engine).map_err(map)?;
        let instance_pre = linker
            .instantiate_pre(&parts.engine.component)
            .map_err(map)?;
        let pre = ResponsesPipePre::new(instance_pre).map_err(map)?;
        Ok(Runner { parts, pre })
    }

    fn store(&self, request_id: &str, emit: EmitSink) -> Store<HostState> {
        let stderr = wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(GUEST_STDERR_BYTES);
        let mut wasi = WasiCtx::builder();
        wasi.stderr(stderr.clone());
        if std::fs::create_dir_all(&self.parts.guest_dir).is_ok()
            && let Err(e) = wasi.preopened_dir(&self.parts.guest_dir, "/data", FsPerms::ReadWrite)
        {
            tracing::warn!(error = %e, "could not preopen the guest data directory");
        }
        let ticks =
            (self.parts.limits.cpu_budget.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        let state = HostState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: (self.parts.hooks)(request_id),
            policy: self.parts.policy.clone(),
            metrics: self.parts.metrics.clone(),
            limiter: Limiter {
                memory_bytes: self.parts.limits.memory_bytes,
                memory_exceeded: false,
            },
            emit,
            kv: self.parts.kv.clone(),
            store: self.parts.store.clone(),
            tools: ToolsView::new(self.parts.tools.clone()),
            crypto: CryptoView {
                keys: self.parts.crypto.clone(),
            },
            cpu_ticks: 0,
            cpu_budget_ticks: ticks,
            cpu_exceeded: false,
            stderr,
        };
        let mut store = Store::new(&self.parts.engine.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(1);
        // Called once per epoch tick in which wasm was executing; time spent waiting in async
        // host calls (upstream I/O) passes without a callback, so this counts CPU, not wall time.
        store.epoch_deadline_callback(|mut ctx| {
            let s = ctx.data_mut();
            s.cpu_ticks += 1;
            if s.cpu_ticks > s.cpu_budget_ticks {
                s.cpu_exceeded = true;
                return Err(wasmtime::Error::msg("CPU budget exceeded"));
            }
            Ok(UpdateDeadline::Yield(1))
        });
        store
    }

    /// Log what the guest wrote to stderr (one line each, under the current request span). A
    /// line starting with [`GUEST_DEBUG_PREFIX`] is logged at debug level, without the prefix.
    fn log_guest_output(store: &Store<HostState>) {
        let bytes = store.data().stderr.contents();
        for line in String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            match line.strip_prefix(GUEST_DEBUG_PREFIX) {
                Some(quiet) => {
                    tracing::debug!(target: "guest", "{}", crate::logsafe::escaped_to(quiet, 2000));
                }
                None => {
                    tracing::info!(target: "guest", "{}", crate::logsafe::escaped_to(line, 2000));
                }
            }
        }
    }

    fn failure(&self, store: &Store<HostState>, e: wasmtime::Error) -> GuestFailure {
        let s = store.data();
        let failure = if s.cpu_exceeded {
            GuestFailure::CpuExceeded
        } else if s.limiter.memory_exceeded {
            GuestFailure::MemoryExceeded
        } else {
            GuestFailure::Trap(
                format!("{e:#}")
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(300)
                    .collect(),
            )
        };
        self.parts.metrics.incr("guest_failures", failure.kind());
        failure
    }

    async fn instantiate(
        &self,
        store: &mut Store<HostState>,
    ) -> Result<crate::bindings::ResponsesPipe, GuestFailure> {
        self.pre.instantiate_async(&mut *store).await.map_err(|e| {
            let msg = format!("{e:#}");
            if msg.contains("concurrent limit") || msg.contains("maximum concurrent") {
                self.parts
                    .metrics
                    .incr("guest_failures", "instance_capacity");
                GuestFailure::Capacity(msg)
            } else {
                self.failure(store, e)
            }
        })
    }

    /// Run `chat`; events go to `emit`.
    pub async fn chat(
        &self,
        settings: &str,
        ctx: RequestContext,
        body: Vec<u8>,
        emit: EmitSink,
    ) -> Result<Result<(), PipeError>, GuestFailure> {
        let mut store = self.store(&ctx.request_id, emit);
        let pipe = self.instantiate(&mut store).await?;
        let result = pipe
            .openwebui_responses_pipe_pipe()
            .call_chat(&mut store, settings, &ctx, &body)
            .await;
        Self::log_guest_output(&store);
        result.map_err(|e| self.failure(&store, e))
    }

    /// Run `models`.
    pub async fn models(
        &self,
        settings: &str,
        request_id: &str,
    ) -> Result<Result<String, PipeError>, GuestFailure> {
        let mut store = self.store(request_id, EmitSink::closed());
        let pipe = self.instantiate(&mut store).await?;
        let result = pipe
            .openwebui_responses_pipe_pipe()
            .call_models(&mut store, settings)
            .await;
        Self::log_guest_output(&store);
        result.map_err(|e| self.failure(&store, e))
    }

    /// Ask a fresh instance for the `INTERNAL_ERROR_TEMPLATE` text of a chat another instance
    /// could not finish (`failure` says how it ended).
    pub async fn internal_error_text(
        &self,
        settings: &str,
        ctx: &RequestContext,
        error_id: &str,
        failure: WitGuestFailure,
    ) -> Result<String, GuestFailure> {
        let mut store = self.store(&ctx.request_id, EmitSink::closed());
        let pipe = self.instantiate(&mut store).await?;
        let result = pipe
            .openwebui_responses_pipe_pipe()
            .call_internal_error_text(&mut store, settings, ctx, error_id, failure)
            .await;
        result.map_err(|e| self.failure(&store, e))
    }

    /// Run `maintain`.
    pub async fn maintain(
        &self,
        settings: &str,
        request_id: &str,
    ) -> Result<Result<(), PipeError>, GuestFailure> {
        let mut store = self.store(request_id, EmitSink::closed());
        let pipe = self.instantiate(&mut store).await?;
        let result = pipe
            .openwebui_responses_pipe_pipe()
            .call_maintain(&mut store, settings)
            .await;
        Self::log_guest_output(&store);
        result.map_err(|e| self.failure(&store, e))
    }
}
