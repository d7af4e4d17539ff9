//! The assembled host: configuration, engine and component, egress gate, kv backend, admission
//! and metrics, built once at start-up and shared by every request. Everything that can be wrong
//! with the configuration is found here, before the listener binds.

use crate::admission::Admission;
use crate::config::Config;
use crate::crypto::ArtifactCrypto;
use crate::egress::client::{EgressClient, EgressLimits};
use crate::egress::hooks::GateHooks;
use crate::egress::policy::{Authority, EgressPolicy};
use crate::egress::resolver::{Resolver, SystemResolver};
use crate::engine::{CacheSettings, EngineSizing, PipeEngine};
use crate::instance::{GuestLimits, Runner, RunnerParts};
use crate::kv::KvBackend;
use crate::metrics::Metrics;
use crate::server::auth::ClientKeys;
use crate::store::{ArtifactStore, StoreSettings};
use crate::tools::{ToolHost, ToolLimits};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// The component embedded in this binary (built by `build.rs`).
pub const EMBEDDED_COMPONENT: &[u8] = include_bytes!(env!("GUEST_WASM"));

/// Why the host could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error("the egress client could not be built: {0}")]
    Egress(String),
    #[error("the artifact store could not be set up: {0}")]
    Store(#[from] crate::store::StoreSetupError),
    #[error("the shared kv could not be set up: {0}")]
    Kv(#[from] crate::kv::KvSetupError),
    #[error("the data directory {path} is unusable: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Shared state of the running host.
pub struct App {
    pub config: Arc<Config>,
    pub runner: Runner,
    pub metrics: Arc<Metrics>,
    /// The declared tool servers (shared by every request's `tools` import).
    pub tools: Arc<ToolHost>,
    /// The artifact store (also reachable by the guest through `store`).
    pub store: Arc<ArtifactStore>,
    /// Cost snapshots to Redis, when `COSTS_REDIS_DUMP` is on.
    pub costs: Option<crate::costs::CostSnapshots>,
    /// The kv backend (also reachable by the guest through `kv`); readiness pings it.
    pub kv: Arc<KvBackend>,
    /// Set once a model listing through the component succeeded (readiness).
    pub catalog_loaded: AtomicBool,
    pub admission: Admission,
    /// The budget of request-body bytes being read at once (`MAX_INFLIGHT_BODY_BYTES`).
    pub body_budget: crate::server::limits::BodyBudget,
    pub keys: ClientKeys,
    pub identity: crate::server::context::IdentitySecrets,
    pub shutting_down: AtomicBool,
}

/// Builds an `App`; tests swap the resolver and the component.
pub struct AppBuilder {
    config: Config,
    data_dir: PathBuf,
    resolver: Arc<dyn Resolver>,
    component: Vec<u8>,
    cache_dir: Option<PathBuf>,
    cache_key: Option<PathBuf>,
}

impl AppBuilder {
    pub fn new(config: Config, data_dir: &Path) -> Self {
        AppBuilder {
            config,
            data_dir: data_dir.to_path_buf(),
            resolver: Arc::new(SystemResolver),
            component: EMBEDDED_COMPONENT.to_vec(),
            cache_dir: None,
            cache_key: None,
        }
    }

    /// Keep the compiled-component cache somewhere other than `<data dir>/cache` (tests share
    /// one across hosts).
    pub fn cache_dir(mut self, dir: &Path) -> Self {
        self.cache_dir = Some(dir.to_path_buf());
        self
    }

    /// Keep the cache's HMAC key somewhere other than `<data dir>/cache.key` (hosts sharing a
    /// cache directory must share its key, or each would recompile).
    pub fn cache_key(mut self, path: &Path) -> Self {
        self.cache_key = Some(path.to_path_buf());
        self
    }

    /// Use another DNS resolver (tests map names to chosen addresses).
    pub fn resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// Run another component (the conformance suite's hostile guests).
    pub fn component(mut self, wasm: Vec<u8>) -> Self {
        self.component = wasm;
        self
    }

    pub fn build(self) -> Result<Arc<App>, StartError> {
        let AppBuilder {
            config,
            data_dir,
            resolver,
            component,
            cache_dir,
            cache_key,
        } = self;
        // Settings that were given a value but have no effect here are named once, up front.
        config.log_start_up_report();
        std::fs::create_dir_all(&data_dir).map_err(|source| StartError::DataDir {
            path: data_dir.clone(),
            source,
        })?;
        let metrics = Arc::new(Metrics::default());
        let to_auth = |v: Vec<(String, u16)>| {
            v.into_iter()
                .map(|(host, port)| Authority { host, port })
                .collect()
        };
        // Two lists: the component's (BASE_URL and EGRESS_ALLOWED_HOSTS), checked first on every
        // request it makes, and the host client's, which adds the declared tool servers for the
        // tool transport. The component never reaches a tool server on its own.
        let policy = Arc::new(EgressPolicy::new(
            to_auth(config.egress_allowed()),
            to_auth(config.egress_private_ok()),
        ));
        let host_policy = Arc::new(EgressPolicy::new(
            to_auth(config.host_egress_allowed()),
            to_auth(config.egress_private_ok()),
        ));
        let limits = EgressLimits {
            connect_timeout: config.http_connect_timeout(),
            first_byte_timeout: config.http_first_byte_timeout(),
            between_bytes_timeout: config.http_sock_read_timeout(),
            total_timeout: config.http_total_timeout(),
            max_response_bytes: config.http_max_response_bytes(),
        };
        let client = Arc::new(
            EgressClient::new(host_policy, resolver, limits, metrics.clone())
                .map_err(|e| StartError::Egress(e.to_string()))?,
        );
        let tools = ToolHost::new(
            config.tool_servers(),
            ToolLimits::from_config(&config),
            client.clone(),
        );
        tools.start();
        let max_running = config.max_concurrent_requests();
        let sizing = EngineSizing {
            // Running chats, plus model listings and housekeeping that bypass the chat queue.
            max_instances: u32::try_from(max_running + 16).unwrap_or(u32::MAX),
            memory_limit_bytes: config.guest_memory_limit_bytes(),
        };
        let cache = CacheSettings {
            dir: cache_dir.unwrap_or_else(|| data_dir.join("cache")),
            key_path: cache_key.unwrap_or_else(|| data_dir.join("cache.key")),
        };
        let engine = Arc::new(PipeEngine::new(&component, Some(&cache), &sizing)?);
        tracing::info!(component = &engine.component_hash[..12], "component ready");
        let (host, port, https) = config.base_authority();
        let key_authority = Authority { host, port };
        let api_key = config.api_key().cloned();
        let hooks_client = client.clone();
        let guest_policy = policy.clone();
        let hooks = Arc::new(move |request_id: &str| {
            GateHooks::new(
                hooks_client.clone(),
                api_key.clone(),
                key_authority.clone(),
                https,
                request_id.to_string(),
            )
            .with_policy(guest_policy.clone())
        });
        let store = Arc::new(ArtifactStore::new(
            StoreSettings::from_config(&config, &data_dir),
            metrics.clone(),
        )?);
        let kv = Arc::new(KvBackend::from_config(&config, metrics.clone())?);
        let costs = crate::costs::CostSnapshots::from_config(&config, &kv, metrics.clone());
        let runner = Runner::new(RunnerParts {
            engine,
            policy,
            hooks,
            kv: kv.clone(),
            store: store.clone(),
            metrics: metrics.clone(),
            tools: tools.clone(),
            crypto: Arc::new(ArtifactCrypto::new(
                config.artifact_encryption_key(),
                config.artifact_encryption_key_previous(),
                metrics.clone(),
            )),
            limits: GuestLimits {
                memory_bytes: config.guest_memory_limit_bytes(),
                cpu_budget: config.guest_cpu_budget(),
            },
            guest_dir: data_dir.join("guest"),
        })?;
        Ok(Arc::new(App {
            keys: ClientKeys::new(config.client_keys()),
            identity: crate::server::context::IdentitySecrets {
                webui_secret: config.webui_secret_key().cloned(),
                jwt_secret: config.user_jwt_secret().cloned(),
            },
            admission: Admission::new(
                max_running,
                config.max_queued_requests(),
                config.max_queue_wait(),
            ),
            body_budget: crate::server::limits::BodyBudget::new(config.max_inflight_body_bytes()),
            config: Arc::new(config),
            runner,
            metrics,
            tools,
            store,
            costs,
            kv,
            catalog_loaded: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
        }))
    }
}
