//! Host configuration, loaded and fully validated before the listener binds.
//!
//! Two phases. First every setting of the valve table (`valves::VALVES`) is layered from its
//! built-in default, then the TOML file (`--config`, a flat table keyed by valve name, any case),
//! then the environment (the valve name or one of its aliases), each raw value checked against the
//! setting's kind as it arrives. Then the checked values are turned into the typed `Config` the
//! rest of the host reads, with the cross-field work (BASE_URL's authority, egress lists) done
//! once, and the JSON settings document for the guest built once.
//!
//! Threat handled: secret leakage. Secrets (`API_KEY`, `ARTIFACT_ENCRYPTION_KEY`,
//! `SESSION_LOG_ZIP_PASSWORD`, `WEBUI_SECRET_KEY`, `FORWARD_USER_INFO_HEADER_JWT_SECRET`,
//! `PIPE_API_KEYS`, `OPENWEBUI_API_KEYS`, `DATABASE_URL`) are accepted from the
//! environment only, so they never sit in a config file that gets committed or copied; a secret
//! key in the file stops start-up. They are held as `SecretString`, left out of `Debug`, of error
//! messages (an invalid value is shown as `<redacted>`) and of the guest's settings document, which
//! only learns whether an API key is configured. Not handled here: secrets read from the process
//! environment by other code, and what the egress layer does with the key.

pub mod client_keys;
pub mod doc;
mod parse;
pub mod tool_servers;
pub mod valves;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tracing::level_filters::LevelFilter;

pub use client_keys::{ClientKey, ClientKeyProblem, KeyKind};
pub use parse::HostPortProblem;
pub use tool_servers::{OperationsSource, ToolServerDecl, ToolServerKind, ToolServerProblem};
pub use valves::{DefaultValue, Scope, Side, Status, VALVES, ValveKind, ValveSpec};

use parse::{Input, Parsed};

/// Longest piece of an offending value quoted back in an error; templates can be kilobytes.
const SHOWN_VALUE_MAX_CHARS: usize = 80;

/// Shortest accepted `ARTIFACT_ENCRYPTION_KEY` / `ARTIFACT_ENCRYPTION_KEY_PREVIOUS`, in
/// characters: HKDF stretches whatever it is given, so a short (guessable) key would make every
/// sealed artifact only as strong as that guess.
pub const MIN_ARTIFACT_KEY_CHARS: usize = 32;

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The valve table's built-in default.
    Default,
    /// The TOML file at this path.
    File(PathBuf),
    /// This environment variable (the valve's own name or an alias).
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("built-in default"),
            Self::File(path) => write!(f, "config file {}", path.display()),
            Self::Env(var) => write!(f, "environment ({var})"),
        }
    }
}

/// What a refused value should have been.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Expected {
    /// The setting's kind (its range, spellings, or type).
    Kind(ValveKind),
    /// One entry of a `host:port` list was malformed.
    HostPort {
        entry: String,
        problem: HostPortProblem,
    },
    /// BASE_URL is joined with endpoint paths, so a query or fragment would be mangled.
    BaseUrlWithoutQuery,
    /// PIPE_ID names the artifact table.
    PipeId,
    /// One entry of `CORS_ALLOWED_ORIGINS` is not a browser origin.
    Origin { entry: String },
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Kind(kind) => kind.fmt(f),
            Self::HostPort { entry, problem } => write!(f, "entry `{entry}` {problem}"),
            Self::PipeId => f.write_str(
                "must be 1 to 32 characters of lower-case letters, digits and `_` (it names the artifact table)",
            ),
            Self::Origin { entry } => write!(
                f,
                "entry `{entry}` must be an origin as browsers send it: http:// or https://, a host and an optional port, nothing else (e.g. https://chat.example.com)"
            ),
            Self::BaseUrlWithoutQuery => {
                f.write_str("must not contain a query (?...) or fragment (#...)")
            }
        }
    }
}

/// Why the configuration could not be loaded. Every variant names the setting or the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {source}")]
    ParseFile {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("unknown setting `{key}` in config file {path}{}", suggestion_text(*.suggestion))]
    UnknownKey {
        key: String,
        path: PathBuf,
        suggestion: Option<&'static str>,
    },
    #[error(
        "setting {key} is given more than once in config file {path} (keys are case-insensitive)"
    )]
    DuplicateKey { key: &'static str, path: PathBuf },
    #[error("secret {key} must come from the environment, not the config file ({path})")]
    SecretInFile { key: &'static str, path: PathBuf },
    #[error("{key}={shown} from {origin}: {expected}")]
    Invalid {
        key: &'static str,
        shown: String,
        origin: Origin,
        expected: Expected,
    },
    /// A value that asks for a feature not built yet, which operators rely on for safety or
    /// compliance: the host does not start rather than run without it.
    #[error(
        "{key}={shown} from {origin} asks for something this release does not do, so the host does not start: {doc} Remove the setting or set it to its default ({default}); see docs/configuration.md"
    )]
    NotBuilt {
        key: &'static str,
        shown: String,
        origin: Origin,
        doc: &'static str,
        default: String,
    },
    /// A setting the host reads is missing from the valve table: a bug, caught by the tests.
    #[error("internal error: setting {0} is missing from the valve table or has the wrong type")]
    Table(&'static str),
    /// A `[[tool_servers]]` entry is unusable.
    #[error(transparent)]
    ToolServer(#[from] ToolServerProblem),
    /// An entry of `PIPE_API_KEYS` / `OPENWEBUI_API_KEYS` is unusable (named, never shown).
    #[error("client keys: {0}")]
    ClientKeys(#[from] ClientKeyProblem),
    /// An artifact key too short to be a random key; its value is never shown.
    #[error(
        "{key} is shorter than {MIN_ARTIFACT_KEY_CHARS} characters (its value is not shown); use a random key of at least {MIN_ARTIFACT_KEY_CHARS} characters, e.g. the output of `openssl rand -base64 32`"
    )]
    WeakKey { key: &'static str },
    /// The in-flight body budget could never hold one body of the largest allowed size.
    #[error(
        "MAX_INFLIGHT_BODY_BYTES={budget} is smaller than MAX_REQUEST_BODY_BYTES={body}: a body of the largest allowed size could never be read; raise MAX_INFLIGHT_BODY_BYTES or lower MAX_REQUEST_BODY_BYTES"
    )]
    BodyBudget { budget: usize, body: usize },
    /// Cost snapshots were asked for, but there is no Redis to write them to.
    #[error(
        "COSTS_REDIS_DUMP=true needs REDIS_URL: cost snapshots are written to Redis; set REDIS_URL or turn COSTS_REDIS_DUMP off"
    )]
    CostsWithoutRedis,
    #[error("{} configuration errors:{}", .0.len(), list_errors(.0))]
    Several(Vec<ConfigError>),
}

fn suggestion_text(suggestion: Option<&'static str>) -> String {
    suggestion
        .map(|s| format!("; did you mean {s}?"))
        .unwrap_or_default()
}

fn list_errors(errors: &[ConfigError]) -> String {
    errors.iter().map(|e| format!("\n  - {e}")).collect()
}

/// Whether the guest may emit Open WebUI `{"event": ...}` lines (`OPENWEBUI_EVENTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenWebUiEvents {
    /// Only when the request looks like it came from Open WebUI (forwarded user headers).
    Auto,
    Always,
    Never,
}

/// The validated configuration.
pub struct Config {
    /// Every non-secret setting, keyed by canonical name, in its typed JSON form.
    values: BTreeMap<&'static str, Value>,
    /// The secrets that are set (non-empty), except the client key lists, which are split below.
    secrets: BTreeMap<&'static str, SecretString>,
    client_keys: Vec<ClientKey>,
    base_url: url::Url,
    base_authority: (String, u16, bool),
    egress_allowed: Vec<(String, u16)>,
    egress_private_ok: Vec<(String, u16)>,
    tool_servers: Vec<ToolServerDecl>,
    cors_allowed_origins: Vec<String>,
    guest_settings_json: String,
    artifact_table: String,
    artifact_table_previous: Option<String>,
    pipe_id: String,
    typed: Typed,
    /// Settings given a value other than their default that have no effect here (the feature is
    /// not built, or the setting has no meaning here), for the start-up report.
    notes: Vec<StartUpNote>,
}

/// A setting the start-up report names: it was given a non-default value that has no effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartUpNote {
    pub key: &'static str,
    pub origin: Origin,
    pub kind: NoteKind,
}

/// Why a [`StartUpNote`]'s setting has no effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// The feature behind it is not built yet (logged as a warning).
    NotBuilt,
    /// It has no meaning in this server, for this reason (logged as information).
    Ignored(&'static str),
}

/// The settings the host itself reads, converted once.
#[derive(Debug, Clone, Copy)]
struct Typed {
    http_connect_timeout: Duration,
    http_total_timeout: Option<Duration>,
    http_sock_read_timeout: Duration,
    http_first_byte_timeout: Duration,
    http_max_response_bytes: u64,
    max_concurrent_requests: usize,
    max_queued_requests: usize,
    max_request_body_bytes: usize,
    guest_memory_limit_bytes: usize,
    guest_cpu_budget: Duration,
    shutdown_grace: Duration,
    max_queue_wait: Duration,
    request_timeout: Duration,
    client_write_timeout: Duration,
    client_header_timeout: Duration,
    client_body_timeout: Duration,
    max_connections: usize,
    max_inflight_body_bytes: usize,
    openwebui_events: OpenWebUiEvents,
    log_json: bool,
    model_catalog_refresh_seconds: u64,
    db_max_connections: u32,
    db_acquire_timeout: Duration,
    db_statement_timeout: Duration,
    redis_timeout: Duration,
    /// `COSTS_REDIS_TTL_SECONDS` when `COSTS_REDIS_DUMP` is on; `None` when it is off.
    costs_redis_ttl: Option<Duration>,
    artifact_cleanup_interval: Duration,
}

/// One layer's view while loading: each checked value and where it came from.
struct Layered {
    values: BTreeMap<&'static str, (Value, Origin)>,
    secrets: BTreeMap<&'static str, SecretString>,
}

impl Config {
    /// Load defaults, then `file` (if given), then the environment as read by `env`, and validate
    /// everything. `env` returns a variable's value or `None`; empty values count as unset.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut layered = defaults()?;
        let default_values = layered.values.clone();
        let mut errors = Vec::new();
        let mut tool_servers_value = None;
        if let Some(path) = file {
            tool_servers_value = apply_file(&mut layered, path, &mut errors)?;
        }
        apply_env(&mut layered, env, &mut errors);
        let tool_servers = match tool_servers_value {
            None => Vec::new(),
            Some(value) => tool_servers::parse(&value, env).unwrap_or_else(|problems| {
                errors.extend(problems.into_iter().map(ConfigError::ToolServer));
                Vec::new()
            }),
        };
        let notes = unbuilt_settings(&layered, &default_values, &mut errors);
        if !errors.is_empty() {
            return Err(collapse(errors));
        }
        let mut config = Self::build(layered, tool_servers)?;
        config.notes = notes;
        tracing::debug!(
            file = file.map(|p| p.display().to_string()),
            base_url = %config.base_url,
            api_key_configured = config.api_key().is_some(),
            client_keys = config.client_keys.len(),
            "configuration loaded"
        );
        Ok(config)
    }

    /// `load(None, ...)` over the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::load(None, &process_env)
    }

    /// Phase two: typed fields, cross-field values and the guest document.
    fn build(layered: Layered, tool_servers: Vec<ToolServerDecl>) -> Result<Config, ConfigError> {
        let Layered {
            values,
            mut secrets,
        } = layered;
        let (base_url, base_authority) = base_url(&values)?;
        let pipe_id = pipe_id(&values)?;
        let weak: Vec<ConfigError> = [
            "ARTIFACT_ENCRYPTION_KEY",
            "ARTIFACT_ENCRYPTION_KEY_PREVIOUS",
        ]
        .into_iter()
        .filter(|key| {
            secrets
                .get(key)
                .is_some_and(|k| k.expose_secret().chars().count() < MIN_ARTIFACT_KEY_CHARS)
        })
        .map(|key| ConfigError::WeakKey { key })
        .collect();
        if !weak.is_empty() {
            return Err(collapse(weak));
        }
        // New rows go to the current key's table. During a key rotation the previous key's
        // table is granted too, for reading (and deleting) the rows written before it.
        let artifact_table = artifact_table_name(
            &pipe_id,
            secrets
                .get("ARTIFACT_ENCRYPTION_KEY")
                .map(|k| k.expose_secret()),
        );
        let artifact_table_previous = secrets
            .get("ARTIFACT_ENCRYPTION_KEY_PREVIOUS")
            .map(|k| artifact_table_name(&pipe_id, Some(k.expose_secret())))
            .filter(|t| *t != artifact_table);
        let base_pair = (base_authority.0.clone(), base_authority.1);

        let mut errors = Vec::new();
        let mut egress_allowed = host_list(&values, "EGRESS_ALLOWED_HOSTS", &mut errors);
        egress_allowed.push(base_pair.clone());
        // Declared tool servers are not on the component's list: it reaches them only through
        // the host's tool transport (see `host_egress_allowed`).
        dedup(&mut egress_allowed);
        let mut egress_private_ok = host_list(&values, "EGRESS_PRIVATE_HOSTS", &mut errors);
        let cors_allowed_origins = origin_list(&values, "CORS_ALLOWED_ORIGINS", &mut errors);
        // Only when the operator literally pointed BASE_URL at a local address: a domain that
        // resolves to a private address is exactly what DNS rebinding looks like.
        if matches!(
            base_url.host(),
            Some(url::Host::Ipv4(_) | url::Host::Ipv6(_))
        ) || base_authority.0 == "localhost"
        {
            egress_private_ok.push(base_pair);
        }
        dedup(&mut egress_private_ok);
        if !errors.is_empty() {
            return Err(collapse(errors));
        }

        let client_keys = client_keys::parse(
            secrets.remove("PIPE_API_KEYS").as_ref(),
            secrets.remove("OPENWEBUI_API_KEYS").as_ref(),
        )
        .map_err(|problems| {
            collapse(problems.into_iter().map(ConfigError::ClientKeys).collect())
        })?;

        let mut values: BTreeMap<&'static str, Value> =
            values.into_iter().map(|(k, (v, _))| (k, v)).collect();
        // One spelling of BASE_URL for host and guest alike: no trailing slash.
        values.insert("BASE_URL", Value::String(render_base_url(&base_url)));

        let typed = Typed::from_values(&values)?;
        if typed.costs_redis_ttl.is_some() && !secrets.contains_key("REDIS_URL") {
            return Err(ConfigError::CostsWithoutRedis);
        }
        if typed.max_inflight_body_bytes < typed.max_request_body_bytes {
            return Err(ConfigError::BodyBudget {
                budget: typed.max_inflight_body_bytes,
                body: typed.max_request_body_bytes,
            });
        }
        let guest_settings_json = guest_document(
            &values,
            secrets.contains_key("API_KEY"),
            &artifact_table,
            artifact_table_previous.as_deref(),
        );
        Ok(Config {
            values,
            secrets,
            client_keys,
            base_url,
            base_authority,
            egress_allowed,
            egress_private_ok,
            tool_servers,
            cors_allowed_origins,
            guest_settings_json,
            artifact_table,
            artifact_table_previous,
            pipe_id,
            typed,
            notes: Vec::new(),
        })
    }

    /// The declared tool servers (`[[tool_servers]]` in the config file), validated.
    pub fn tool_servers(&self) -> &[ToolServerDecl] {
        &self.tool_servers
    }

    /// The OpenRouter API root, with any trailing slash trimmed from its path (a bare host keeps
    /// the `/` a URL always has; `get("BASE_URL")` gives the string without it).
    pub fn base_url(&self) -> &url::Url {
        &self.base_url
    }

    /// BASE_URL's host (lower-case; IPv6 in brackets), port (scheme default if not given), and
    /// whether it is https.
    pub fn base_authority(&self) -> (String, u16, bool) {
        self.base_authority.clone()
    }

    /// The OpenRouter API key, if one is configured.
    pub fn api_key(&self) -> Option<&SecretString> {
        self.secrets.get("API_KEY")
    }

    /// `ARTIFACT_ENCRYPTION_KEY`, if set.
    pub fn artifact_encryption_key(&self) -> Option<&SecretString> {
        self.secrets.get("ARTIFACT_ENCRYPTION_KEY")
    }

    /// `ARTIFACT_ENCRYPTION_KEY_PREVIOUS` (the key before a rotation, read-only), if set.
    pub fn artifact_encryption_key_previous(&self) -> Option<&SecretString> {
        self.secrets.get("ARTIFACT_ENCRYPTION_KEY_PREVIOUS")
    }

    /// `WEBUI_SECRET_KEY`, if set.
    pub fn webui_secret_key(&self) -> Option<&SecretString> {
        self.secrets.get("WEBUI_SECRET_KEY")
    }

    /// `FORWARD_USER_INFO_HEADER_JWT_SECRET`, if set.
    pub fn user_jwt_secret(&self) -> Option<&SecretString> {
        self.secrets.get("FORWARD_USER_INFO_HEADER_JWT_SECRET")
    }

    /// Client keys accepted by the front door (`PIPE_API_KEYS` then `OPENWEBUI_API_KEYS`, named
    /// and checked); empty means no key is required (loopback only).
    pub fn client_keys(&self) -> &[ClientKey] {
        &self.client_keys
    }

    /// Browser origins allowed to call the API (`CORS_ALLOWED_ORIGINS`), exactly as browsers
    /// send them in `Origin` (lower-case scheme and host, default port left out).
    pub fn cors_allowed_origins(&self) -> &[String] {
        &self.cors_allowed_origins
    }

    /// Hosts the guest may reach: `EGRESS_ALLOWED_HOSTS` plus BASE_URL's authority, canonical
    /// (lower-case, IPv6 in brackets) and de-duplicated. Declared tool servers are not on it.
    pub fn egress_allowed(&self) -> Vec<(String, u16)> {
        self.egress_allowed.clone()
    }

    /// Hosts the host's own egress client may reach: the guest's list plus each declared tool
    /// server's authority, which only the tool transport sends to. A tool server on a private or
    /// loopback address still needs `EGRESS_PRIVATE_HOSTS` like any other entry.
    pub fn host_egress_allowed(&self) -> Vec<(String, u16)> {
        let mut all = self.egress_allowed.clone();
        all.extend(self.tool_servers.iter().map(|t| t.authority.clone()));
        dedup(&mut all);
        all
    }

    /// Allowed hosts that may resolve to private or loopback addresses: `EGRESS_PRIVATE_HOSTS`,
    /// plus BASE_URL's authority when BASE_URL names an IP literal or `localhost`.
    pub fn egress_private_ok(&self) -> Vec<(String, u16)> {
        self.egress_private_ok.clone()
    }

    pub fn http_connect_timeout(&self) -> Duration {
        self.typed.http_connect_timeout
    }

    /// `None` when `HTTP_TOTAL_TIMEOUT_SECONDS` is null (no total limit; streams may run long).
    pub fn http_total_timeout(&self) -> Option<Duration> {
        self.typed.http_total_timeout
    }

    pub fn http_sock_read_timeout(&self) -> Duration {
        self.typed.http_sock_read_timeout
    }

    pub fn http_first_byte_timeout(&self) -> Duration {
        self.typed.http_first_byte_timeout
    }

    pub fn http_max_response_bytes(&self) -> u64 {
        self.typed.http_max_response_bytes
    }

    pub fn max_concurrent_requests(&self) -> usize {
        self.typed.max_concurrent_requests
    }

    pub fn max_queued_requests(&self) -> usize {
        self.typed.max_queued_requests
    }

    pub fn max_request_body_bytes(&self) -> usize {
        self.typed.max_request_body_bytes
    }

    pub fn guest_memory_limit_bytes(&self) -> usize {
        self.typed.guest_memory_limit_bytes
    }

    /// CPU time one guest call may execute.
    pub fn guest_cpu_budget(&self) -> Duration {
        self.typed.guest_cpu_budget
    }

    pub fn shutdown_grace(&self) -> Duration {
        self.typed.shutdown_grace
    }

    /// Longest wait in the admission queue (`MAX_QUEUE_WAIT_SECONDS`).
    pub fn max_queue_wait(&self) -> Duration {
        self.typed.max_queue_wait
    }

    /// Wall-clock cap of one admitted request (`REQUEST_TIMEOUT_SECONDS`).
    pub fn request_timeout(&self) -> Duration {
        self.typed.request_timeout
    }

    /// A client write without progress for this long fails (`CLIENT_WRITE_TIMEOUT_SECONDS`).
    pub fn client_write_timeout(&self) -> Duration {
        self.typed.client_write_timeout
    }

    /// Time to send a request's headers (`CLIENT_HEADER_TIMEOUT_SECONDS`).
    pub fn client_header_timeout(&self) -> Duration {
        self.typed.client_header_timeout
    }

    /// Time to send a whole request body (`CLIENT_BODY_TIMEOUT_SECONDS`).
    pub fn client_body_timeout(&self) -> Duration {
        self.typed.client_body_timeout
    }

    /// Open client connections at once (`MAX_CONNECTIONS`).
    pub fn max_connections(&self) -> usize {
        self.typed.max_connections
    }

    /// Bytes of request bodies being read at once over all connections
    /// (`MAX_INFLIGHT_BODY_BYTES`).
    pub fn max_inflight_body_bytes(&self) -> usize {
        self.typed.max_inflight_body_bytes
    }

    pub fn openwebui_events(&self) -> OpenWebUiEvents {
        self.typed.openwebui_events
    }

    /// `LOG_LEVEL` in the reference's spelling: DEBUG, INFO, WARNING, ERROR or CRITICAL.
    pub fn log_level(&self) -> &str {
        self.values
            .get("LOG_LEVEL")
            .and_then(Value::as_str)
            .unwrap_or("INFO")
    }

    /// `LOG_LEVEL` as a `tracing` filter (CRITICAL has no tracing level and maps to ERROR).
    pub fn log_level_filter(&self) -> LevelFilter {
        match self.log_level() {
            "DEBUG" => LevelFilter::DEBUG,
            "WARNING" => LevelFilter::WARN,
            "ERROR" | "CRITICAL" => LevelFilter::ERROR,
            _ => LevelFilter::INFO,
        }
    }

    /// Whether logs are JSON lines (`LOG_FORMAT=json`).
    pub fn log_json(&self) -> bool {
        self.typed.log_json
    }

    pub fn model_catalog_refresh_seconds(&self) -> u64 {
        self.typed.model_catalog_refresh_seconds
    }

    /// `DATABASE_URL` (PostgreSQL), if set. A secret: it may carry a password.
    pub fn database_url(&self) -> Option<&SecretString> {
        self.secrets.get("DATABASE_URL")
    }

    /// `REDIS_URL`, if set: kv is shared through Redis. A secret: it may carry a password.
    pub fn redis_url(&self) -> Option<&SecretString> {
        self.secrets.get("REDIS_URL")
    }

    /// `REDIS_TIMEOUT_MS`: budget of one Redis command and of connecting.
    pub fn redis_timeout(&self) -> Duration {
        self.typed.redis_timeout
    }

    /// The lifetime of cost snapshots when `COSTS_REDIS_DUMP` is on (then `REDIS_URL` is set).
    pub fn costs_redis_ttl(&self) -> Option<Duration> {
        self.typed.costs_redis_ttl
    }

    /// `PIPE_ID`: names the artifact table and prefixes every shared kv key.
    pub fn pipe_id(&self) -> &str {
        &self.pipe_id
    }

    /// The artifact table new rows go to: `response_items_{PIPE_ID}_{hash8}`, where hash8 is the
    /// first 8 hex digits of SHA-256(`ARTIFACT_ENCRYPTION_KEY` + `PIPE_ID`) (an unset key counts
    /// as empty). A new key therefore means a new table, as in the reference.
    pub fn artifact_table(&self) -> &str {
        &self.artifact_table
    }

    /// During a key rotation (`ARTIFACT_ENCRYPTION_KEY_PREVIOUS` set), the previous key's table:
    /// granted for reading and deleting the rows written before the rotation, never for writes.
    /// Once the previous key is dropped, rows left there are stranded (and were unused for as
    /// long as the rotation lasted).
    pub fn artifact_table_previous(&self) -> Option<&str> {
        self.artifact_table_previous.as_deref()
    }

    pub fn db_max_connections(&self) -> u32 {
        self.typed.db_max_connections
    }

    pub fn db_acquire_timeout(&self) -> Duration {
        self.typed.db_acquire_timeout
    }

    pub fn db_statement_timeout(&self) -> Duration {
        self.typed.db_statement_timeout
    }

    /// `ARTIFACT_CLEANUP_INTERVAL_HOURS` as a duration.
    pub fn artifact_cleanup_interval(&self) -> Duration {
        self.typed.artifact_cleanup_interval
    }

    /// The settings document handed to the guest on every call: a JSON object of every setting
    /// the table says the component reads (never a secret), keyed by name, with typed values
    /// (bool/number/string/null; Csv as the string given), plus `"API_KEY_CONFIGURED": bool` and
    /// the artifact tables. Built once at load time.
    pub fn guest_settings_json(&self) -> &str {
        &self.guest_settings_json
    }

    /// Settings given a non-default value that has no effect here (not built, or ignored).
    pub fn start_up_notes(&self) -> &[StartUpNote] {
        &self.notes
    }

    /// Log the start-up report: one line per setting whose non-default value has no effect, a
    /// warning when the feature behind it is not built yet, information when the setting has no
    /// meaning here. Names and origins only: a value may be a secret.
    pub fn log_start_up_report(&self) {
        for note in &self.notes {
            match note.kind {
                NoteKind::NotBuilt => tracing::warn!(
                    setting = note.key,
                    source = %note.origin,
                    "setting {} has no effect: the feature behind it is not built yet (see docs/configuration.md)",
                    note.key
                ),
                NoteKind::Ignored(reason) => tracing::info!(
                    setting = note.key,
                    source = %note.origin,
                    "setting {} is accepted but has no meaning here: {reason}",
                    note.key
                ),
            }
        }
        if self.db_breaker_never_opens() {
            tracing::warn!(
                setting = "BREAKER_HISTORY_SIZE",
                "BREAKER_HISTORY_SIZE is below BREAKER_MAX_FAILURES: the artifact-database breaker remembers too few failures to ever open"
            );
        }
    }

    /// Whether the artifact-database breaker remembers fewer failures than it needs to open.
    pub fn db_breaker_never_opens(&self) -> bool {
        let int = |name: &str| self.get(name).and_then(Value::as_i64);
        matches!(
            (int("BREAKER_HISTORY_SIZE"), int("BREAKER_MAX_FAILURES")),
            (Some(history), Some(threshold)) if history < threshold
        )
    }

    /// Any non-secret setting's value by name (any case), host settings included.
    pub fn get(&self, name: &str) -> Option<&Value> {
        let spec = valves::find(name)?;
        self.values.get(spec.name)
    }
}

impl fmt::Debug for Config {
    /// Non-secret values in full; secrets only by name, client keys only by count.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("values", &self.values)
            .field("secrets_set", &self.secrets.keys().collect::<Vec<_>>())
            .field("client_keys", &self.client_keys)
            .field("egress_allowed", &self.egress_allowed)
            .field("egress_private_ok", &self.egress_private_ok)
            .field("tool_servers", &self.tool_servers)
            .finish_non_exhaustive()
    }
}

impl Typed {
    fn from_values(values: &BTreeMap<&'static str, Value>) -> Result<Self, ConfigError> {
        let int = |name: &'static str| -> Result<u64, ConfigError> {
            values
                .get(name)
                .and_then(Value::as_i64)
                .and_then(|i| u64::try_from(i).ok())
                .ok_or(ConfigError::Table(name))
        };
        let size = |name: &'static str| -> Result<usize, ConfigError> {
            // Every range fits in usize on the 64-bit hosts we run on; saturate elsewhere.
            Ok(usize::try_from(int(name)?).unwrap_or(usize::MAX))
        };
        let text = |name: &'static str| -> Result<&str, ConfigError> {
            values
                .get(name)
                .and_then(Value::as_str)
                .ok_or(ConfigError::Table(name))
        };
        let total = match values.get("HTTP_TOTAL_TIMEOUT_SECONDS") {
            Some(Value::Null) => None,
            Some(_) => Some(Duration::from_secs(int("HTTP_TOTAL_TIMEOUT_SECONDS")?)),
            None => return Err(ConfigError::Table("HTTP_TOTAL_TIMEOUT_SECONDS")),
        };
        let openwebui_events = match text("OPENWEBUI_EVENTS")? {
            "always" => OpenWebUiEvents::Always,
            "never" => OpenWebUiEvents::Never,
            _ => OpenWebUiEvents::Auto,
        };
        Ok(Typed {
            http_connect_timeout: Duration::from_secs(int("HTTP_CONNECT_TIMEOUT_SECONDS")?),
            http_total_timeout: total,
            http_sock_read_timeout: Duration::from_secs(int("HTTP_SOCK_READ_SECONDS")?),
            http_first_byte_timeout: Duration::from_secs(int("HTTP_FIRST_BYTE_TIMEOUT_SECONDS")?),
            http_max_response_bytes: int("HTTP_MAX_RESPONSE_BYTES")?,
            max_concurrent_requests: size("MAX_CONCURRENT_REQUESTS")?,
            max_queued_requests: size("MAX_QUEUED_REQUESTS")?,
            max_request_body_bytes: size("MAX_REQUEST_BODY_BYTES")?,
            guest_memory_limit_bytes: size("GUEST_MEMORY_LIMIT_MB")?.saturating_mul(1024 * 1024),
            guest_cpu_budget: Duration::from_millis(int("GUEST_CPU_BUDGET_MS")?),
            shutdown_grace: Duration::from_secs(int("SHUTDOWN_GRACE_SECONDS")?),
            max_queue_wait: Duration::from_secs(int("MAX_QUEUE_WAIT_SECONDS")?),
            request_timeout: Duration::from_secs(int("REQUEST_TIMEOUT_SECONDS")?),
            client_write_timeout: Duration::from_secs(int("CLIENT_WRITE_TIMEOUT_SECONDS")?),
            client_header_timeout: Duration::from_secs(int("CLIENT_HEADER_TIMEOUT_SECONDS")?),
            client_body_timeout: Duration::from_secs(int("CLIENT_BODY_TIMEOUT_SECONDS")?),
            max_connections: size("MAX_CONNECTIONS")?,
            max_inflight_body_bytes: size("MAX_INFLIGHT_BODY_BYTES")?,
            openwebui_events,
            log_json: text("LOG_FORMAT")? == "json",
            model_catalog_refresh_seconds: int("MODEL_CATALOG_REFRESH_SECONDS")?,
            db_max_connections: u32::try_from(int("DB_MAX_CONNECTIONS")?).unwrap_or(u32::MAX),
            db_acquire_timeout: Duration::from_millis(int("DB_ACQUIRE_TIMEOUT_MS")?),
            db_statement_timeout: Duration::from_millis(int("DB_STATEMENT_TIMEOUT_MS")?),
            redis_timeout: Duration::from_millis(int("REDIS_TIMEOUT_MS")?),
            costs_redis_ttl: values
                .get("COSTS_REDIS_DUMP")
                .and_then(Value::as_bool)
                .ok_or(ConfigError::Table("COSTS_REDIS_DUMP"))?
                .then(|| int("COSTS_REDIS_TTL_SECONDS").map(Duration::from_secs))
                .transpose()?,
            artifact_cleanup_interval: Duration::from_secs_f64(
                values
                    .get("ARTIFACT_CLEANUP_INTERVAL_HOURS")
                    .and_then(Value::as_f64)
                    .filter(|h| h.is_finite() && *h > 0.0)
                    .ok_or(ConfigError::Table("ARTIFACT_CLEANUP_INTERVAL_HOURS"))?
                    * 3600.0,
            ),
        })
    }
}

/// The process environment as an `env` source. A set but non-UTF-8 variable is reported and
/// treated as unset (it cannot be any valid setting value).
fn process_env(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) => Some(v),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            tracing::warn!(
                variable = name,
                "environment variable is not valid UTF-8; ignoring it"
            );
            None
        }
    }
}

fn collapse(mut errors: Vec<ConfigError>) -> ConfigError {
    if errors.len() == 1
        && let Some(only) = errors.pop()
    {
        return only;
    }
    ConfigError::Several(errors)
}

/// Layer zero: every default, checked by the same code as file and environment values.
fn defaults() -> Result<Layered, ConfigError> {
    let mut layered = Layered {
        values: BTreeMap::new(),
        secrets: BTreeMap::new(),
    };
    let mut errors = Vec::new();
    for spec in VALVES {
        let default = valves::default_to_toml(spec.default);
        set(
            &mut layered,
            spec,
            Input::Toml(&default),
            Origin::Default,
            &mut errors,
        );
    }
    if errors.is_empty() {
        Ok(layered)
    } else {
        Err(collapse(errors))
    }
}

/// The settings whose value differs from their default although nothing here acts on it: an
/// error for each safety-relevant one (the start-up stops), a note for the others.
fn unbuilt_settings(
    layered: &Layered,
    defaults: &BTreeMap<&'static str, (Value, Origin)>,
    errors: &mut Vec<ConfigError>,
) -> Vec<StartUpNote> {
    let mut notes = Vec::new();
    for spec in VALVES.iter().filter(|s| !s.status.is_built()) {
        // A secret differs from its (empty) default when it is set; its origin is the
        // environment, the only place a secret may come from.
        let changed: Option<(String, Origin)> = if spec.is_secret() {
            layered
                .secrets
                .contains_key(spec.name)
                .then(|| ("<redacted>".to_owned(), Origin::Env(spec.name.to_owned())))
        } else {
            match (layered.values.get(spec.name), defaults.get(spec.name)) {
                (Some((value, origin)), Some((default, _))) if value != default => {
                    Some((shown_value(value), origin.clone()))
                }
                _ => None,
            }
        };
        let Some((shown, origin)) = changed else {
            continue;
        };
        match spec.status {
            Status::SafetyNotBuilt => errors.push(ConfigError::NotBuilt {
                key: spec.name,
                shown,
                origin,
                doc: spec.doc,
                default: match spec.default {
                    DefaultValue::Str("") => "empty".to_owned(),
                    other => other.to_string(),
                },
            }),
            Status::NotBuilt => notes.push(StartUpNote {
                key: spec.name,
                origin,
                kind: NoteKind::NotBuilt,
            }),
            Status::Ignored(reason) => notes.push(StartUpNote {
                key: spec.name,
                origin,
                kind: NoteKind::Ignored(reason),
            }),
            Status::Built => {}
        }
    }
    notes
}

/// A checked value as quoted in an error, long values cut.
fn shown_value(value: &Value) -> String {
    let full = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    cut(full)
}

/// Check one raw value and, if good, make it the setting's current value.
fn set(
    layered: &mut Layered,
    spec: &'static ValveSpec,
    input: Input<'_>,
    origin: Origin,
    errors: &mut Vec<ConfigError>,
) {
    match parse::parse(spec.kind, input) {
        Ok(Parsed::Value(v)) => {
            layered.values.insert(spec.name, (v, origin));
        }
        Ok(Parsed::Secret(Some(s))) => {
            layered.secrets.insert(spec.name, s);
        }
        Ok(Parsed::Secret(None)) => {
            layered.secrets.remove(spec.name);
        }
        Err(parse::Refused) => errors.push(ConfigError::Invalid {
            key: spec.name,
            shown: show(spec, input),
            origin,
            expected: Expected::Kind(spec.kind),
        }),
    }
}

/// The offending value as quoted in an error: secrets redacted, long values cut.
fn show(spec: &ValveSpec, input: Input<'_>) -> String {
    if spec.is_secret() {
        return "<redacted>".to_owned();
    }
    let full = match input {
        Input::Text(s) => s.to_owned(),
        Input::Toml(toml::Value::String(s)) => s.clone(),
        Input::Toml(other) => other.to_string(),
    };
    cut(full)
}

/// At most `SHOWN_VALUE_MAX_CHARS` characters of `full`, with `…` when cut.
fn cut(full: String) -> String {
    if full.chars().count() <= SHOWN_VALUE_MAX_CHARS {
        return full;
    }
    let mut cut: String = full.chars().take(SHOWN_VALUE_MAX_CHARS).collect();
    cut.push('…');
    cut
}

/// Layer one: the TOML file. Read and parse errors stop at once; per-key errors are collected.
/// The `tool_servers` array of tables is not a valve: it is returned for its own parser.
fn apply_file(
    layered: &mut Layered,
    path: &Path,
    errors: &mut Vec<ConfigError>,
) -> Result<Option<toml::Value>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    let mut table: toml::Table =
        toml::from_str(&text).map_err(|source| ConfigError::ParseFile {
            path: path.to_owned(),
            source,
        })?;
    // Any case, like the valve keys.
    let tool_servers_key = table
        .keys()
        .find(|k| k.eq_ignore_ascii_case(TOOL_SERVERS_KEY))
        .cloned();
    let tool_servers = tool_servers_key.and_then(|k| table.remove(&k));
    let mut seen = BTreeSet::new();
    for (key, value) in &table {
        let Some(spec) = valves::find(key) else {
            errors.push(unknown_key(key, path));
            continue;
        };
        if spec.is_secret() {
            errors.push(ConfigError::SecretInFile {
                key: spec.name,
                path: path.to_owned(),
            });
            continue;
        }
        if !seen.insert(spec.name) {
            errors.push(ConfigError::DuplicateKey {
                key: spec.name,
                path: path.to_owned(),
            });
            continue;
        }
        set(
            layered,
            spec,
            Input::Toml(value),
            Origin::File(path.to_owned()),
            errors,
        );
    }
    Ok(tool_servers)
}

/// The config-file key of the tool-server declarations.
const TOOL_SERVERS_KEY: &str = "tool_servers";

/// The error for a key that names no setting: a secret's environment alias is still a secret;
/// another alias points at its valve; otherwise suggest the nearest name within two edits.
fn unknown_key(key: &str, path: &Path) -> ConfigError {
    let alias_of = VALVES
        .iter()
        .find(|s| s.env_aliases.iter().any(|a| a.eq_ignore_ascii_case(key)));
    if let Some(spec) = alias_of {
        if spec.is_secret() {
            return ConfigError::SecretInFile {
                key: spec.name,
                path: path.to_owned(),
            };
        }
        return ConfigError::UnknownKey {
            key: key.to_owned(),
            path: path.to_owned(),
            suggestion: Some(spec.name),
        };
    }
    let upper = key.to_ascii_uppercase();
    let suggestion = VALVES
        .iter()
        .map(|s| (parse::edit_distance(&upper, s.name), s.name))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name);
    ConfigError::UnknownKey {
        key: key.to_owned(),
        path: path.to_owned(),
        suggestion,
    }
}

/// Layer two: the environment. The valve's own name wins over its aliases.
fn apply_env(
    layered: &mut Layered,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) {
    for spec in VALVES {
        let mut chosen: Option<(&'static str, String)> = None;
        for var in spec.env_names() {
            let Some(value) = env(var).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            match &chosen {
                None => chosen = Some((var, value)),
                Some((winner, kept)) if *kept != value => {
                    // Names only: the values may be secrets.
                    tracing::warn!(
                        setting = spec.name,
                        used = *winner,
                        ignored = var,
                        "two environment variables set this setting differently; using the first"
                    );
                }
                Some(_) => {}
            }
        }
        if let Some((var, value)) = chosen {
            set(
                layered,
                spec,
                Input::Text(&value),
                Origin::Env(var.to_owned()),
                errors,
            );
        }
    }
}

/// BASE_URL as a URL with its path's trailing slashes trimmed, and its authority.
fn base_url(
    values: &BTreeMap<&'static str, (Value, Origin)>,
) -> Result<(url::Url, (String, u16, bool)), ConfigError> {
    let (value, origin) = values
        .get("BASE_URL")
        .ok_or(ConfigError::Table("BASE_URL"))?;
    let text = value.as_str().ok_or(ConfigError::Table("BASE_URL"))?;
    let invalid = |expected| ConfigError::Invalid {
        key: "BASE_URL",
        shown: text.to_owned(),
        origin: origin.clone(),
        expected,
    };
    let mut url = parse::http_url(text)
        .ok_or_else(|| invalid(Expected::Kind(ValveKind::Url { allow_empty: false })))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(Expected::BaseUrlWithoutQuery));
    }
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(&trimmed);
    let host = url
        .host()
        .ok_or_else(|| invalid(Expected::Kind(ValveKind::Url { allow_empty: false })))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| invalid(Expected::Kind(ValveKind::Url { allow_empty: false })))?;
    let authority = (host.to_string(), port, url.scheme() == "https");
    Ok((url, authority))
}

fn render_base_url(url: &url::Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

/// A checked `host:port` list setting; a bad entry is recorded against the setting's origin.
fn host_list(
    values: &BTreeMap<&'static str, (Value, Origin)>,
    name: &'static str,
    errors: &mut Vec<ConfigError>,
) -> Vec<(String, u16)> {
    let Some((value, origin)) = values.get(name) else {
        errors.push(ConfigError::Table(name));
        return Vec::new();
    };
    let text = value.as_str().unwrap_or_default();
    match parse::host_ports(text) {
        Ok(list) => list,
        Err((entry, problem)) => {
            errors.push(ConfigError::Invalid {
                key: name,
                shown: text.to_owned(),
                origin: origin.clone(),
                expected: Expected::HostPort { entry, problem },
            });
            Vec::new()
        }
    }
}

/// A checked origin list setting; each entry in the form browsers send (`https://host[:port]`).
fn origin_list(
    values: &BTreeMap<&'static str, (Value, Origin)>,
    name: &'static str,
    errors: &mut Vec<ConfigError>,
) -> Vec<String> {
    let Some((value, origin)) = values.get(name) else {
        errors.push(ConfigError::Table(name));
        return Vec::new();
    };
    let text = value.as_str().unwrap_or_default();
    let mut list = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        match parse::browser_origin(entry) {
            Some(o) => {
                if !list.contains(&o) {
                    list.push(o);
                }
            }
            None => errors.push(ConfigError::Invalid {
                key: name,
                shown: text.chars().take(SHOWN_VALUE_MAX_CHARS).collect(),
                origin: origin.clone(),
                expected: Expected::Origin {
                    entry: entry.chars().take(SHOWN_VALUE_MAX_CHARS).collect(),
                },
            }),
        }
    }
    list
}

/// Remove later duplicates, keeping first-seen order.
fn dedup(list: &mut Vec<(String, u16)>) {
    let mut seen = BTreeSet::new();
    list.retain(|pair| seen.insert(pair.clone()));
}

/// The checked `PIPE_ID`.
fn pipe_id(values: &BTreeMap<&'static str, (Value, Origin)>) -> Result<String, ConfigError> {
    let (value, origin) = values.get("PIPE_ID").ok_or(ConfigError::Table("PIPE_ID"))?;
    let text = value.as_str().ok_or(ConfigError::Table("PIPE_ID"))?;
    let ok = (1..=32).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        return Err(ConfigError::Invalid {
            key: "PIPE_ID",
            shown: text.chars().take(SHOWN_VALUE_MAX_CHARS).collect(),
            origin: origin.clone(),
            expected: Expected::PipeId,
        });
    }
    Ok(text.to_owned())
}

/// `response_items_{pipe_id}_{hash8}` (the Python pipe's table name, so a
/// migrated database keeps its rows); `pipe_id` is already `[a-z0-9_]`.
pub fn artifact_table_name(pipe_id: &str, encryption_key: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(encryption_key.unwrap_or("").as_bytes());
    hasher.update(pipe_id.as_bytes());
    let digest = hex::encode(hasher.finalize());
    format!("response_items_{pipe_id}_{}", &digest[..8])
}

fn guest_document(
    values: &BTreeMap<&'static str, Value>,
    api_key_configured: bool,
    artifact_table: &str,
    artifact_table_previous: Option<&str>,
) -> String {
    let mut doc = serde_json::Map::new();
    for spec in VALVES.iter().filter(|s| s.sent_to_guest()) {
        if let Some(v) = values.get(spec.name) {
            doc.insert(spec.name.to_owned(), v.clone());
        }
    }
    doc.insert(
        "API_KEY_CONFIGURED".to_owned(),
        Value::Bool(api_key_configured),
    );
    doc.insert(
        "ARTIFACT_TABLE".to_owned(),
        Value::String(artifact_table.to_owned()),
    );
    doc.insert(
        "ARTIFACT_TABLE_PREVIOUS".to_owned(),
        Value::String(artifact_table_previous.unwrap_or_default().to_owned()),
    );
    Value::Object(doc).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;
    use std::collections::HashMap;
    use std::io::Write;

    const KEY: &str = "sk-or-v1-0123456789abcdef-secret";

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn load(file: Option<&str>, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let tmp = file.map(|text| {
            let mut f = tempfile::NamedTempFile::new().unwrap();
            f.write_all(text.as_bytes()).unwrap();
            f
        });
        Config::load(tmp.as_ref().map(|f| f.path()), &env_of(env))
    }

    fn err(file: Option<&str>, env: &[(&str, &str)]) -> ConfigError {
        match load(file, env) {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn front_door_limits_have_their_defaults_and_accept_one_second_up() {
        let c = load(None, &[]).unwrap();
        assert_eq!(c.max_queue_wait(), Duration::from_secs(30));
        assert_eq!(c.request_timeout(), Duration::from_secs(900));
        assert_eq!(c.client_write_timeout(), Duration::from_secs(30));
        assert_eq!(c.client_header_timeout(), Duration::from_secs(30));
        assert_eq!(c.client_body_timeout(), Duration::from_secs(60));
        assert_eq!(c.max_connections(), 4096);
        assert_eq!(c.max_inflight_body_bytes(), 512 * 1024 * 1024);
        let names = [
            "MAX_QUEUE_WAIT_SECONDS",
            "REQUEST_TIMEOUT_SECONDS",
            "CLIENT_WRITE_TIMEOUT_SECONDS",
            "CLIENT_HEADER_TIMEOUT_SECONDS",
            "CLIENT_BODY_TIMEOUT_SECONDS",
        ];
        let ones: Vec<(&str, &str)> = names.iter().map(|n| (*n, "1")).collect();
        let c = load(None, &ones).unwrap();
        assert_eq!(c.max_queue_wait(), Duration::from_secs(1));
        assert_eq!(c.request_timeout(), Duration::from_secs(1));
        assert_eq!(c.client_write_timeout(), Duration::from_secs(1));
        assert_eq!(c.client_header_timeout(), Duration::from_secs(1));
        assert_eq!(c.client_body_timeout(), Duration::from_secs(1));
        for name in names {
            let text = err(None, &[(name, "0")]).to_string();
            assert!(text.contains(name), "{text}");
        }
    }

    #[test]
    fn an_inflight_body_budget_below_the_largest_body_stops_the_start_up() {
        let text = err(
            None,
            &[
                ("MAX_REQUEST_BODY_BYTES", "4096"),
                ("MAX_INFLIGHT_BODY_BYTES", "2048"),
            ],
        )
        .to_string();
        assert!(text.contains("MAX_INFLIGHT_BODY_BYTES=2048"), "{text}");
        assert!(text.contains("MAX_REQUEST_BODY_BYTES=4096"), "{text}");
        let ok = load(
            None,
            &[
                ("MAX_REQUEST_BODY_BYTES", "2048"),
                ("MAX_INFLIGHT_BODY_BYTES", "2048"),
            ],
        )
        .unwrap();
        assert_eq!(ok.max_inflight_body_bytes(), 2048);
    }

    #[test]
    fn defaults_match_the_reference_valve_list() {
        let c = load(None, &[]).unwrap();
        assert_eq!(
            c.get("BASE_URL"),
            Some(&Value::from("https://openrouter.ai/api/v1"))
        );
        assert_eq!(c.base_url().as_str(), "https://openrouter.ai/api/v1");
        assert_eq!(
            c.get("MODEL_CATALOG_REFRESH_SECONDS"),
            Some(&Value::from(3600))
        );
        assert_eq!(c.model_catalog_refresh_seconds(), 3600);
        assert_eq!(c.get("MAX_CONCURRENT_REQUESTS"), Some(&Value::from(200)));
        assert_eq!(c.max_concurrent_requests(), 200);
        assert_eq!(c.get("HTTP_SOCK_READ_SECONDS"), Some(&Value::from(300)));
        assert_eq!(c.http_sock_read_timeout(), Duration::from_secs(300));
        assert_eq!(c.get("REASONING_EFFORT"), Some(&Value::from("medium")));
        assert_eq!(c.get("STREAMING_IDLE_FLUSH_MS"), Some(&Value::from(30)));
        assert_eq!(c.get("MAX_FUNCTION_CALL_LOOPS"), Some(&Value::from(25)));
        assert_eq!(c.get("HTTP_TOTAL_TIMEOUT_SECONDS"), Some(&Value::Null));
        assert_eq!(c.http_total_timeout(), None);
        assert_eq!(c.get("TOOL_EXECUTION_MODE"), Some(&Value::from("Pipeline")));
        assert_eq!(
            c.get("ARTIFACT_CLEANUP_INTERVAL_HOURS"),
            Some(&Value::from(1.0))
        );
        assert_eq!(
            c.get("USAGE_STATUS_ICON_SET"),
            Some(&Value::from("⧗,$,⇅,▲,▼,↺,▽"))
        );
        assert_eq!(c.get("RATE_LIMIT_TEMPLATE"), Some(&Value::from("")));
        assert_eq!(c.log_level(), "INFO");
        assert!(c.api_key().is_none());
        assert!(c.client_keys().is_empty());
    }

    #[test]
    fn host_settings_have_their_documented_defaults() {
        let c = load(None, &[]).unwrap();
        assert_eq!(c.max_request_body_bytes(), 32 * 1024 * 1024);
        assert_eq!(c.max_queued_requests(), 1000);
        assert_eq!(c.guest_memory_limit_bytes(), 256 * 1024 * 1024);
        assert_eq!(c.guest_cpu_budget(), Duration::from_millis(30_000));
        assert_eq!(c.http_first_byte_timeout(), Duration::from_secs(120));
        assert_eq!(c.http_connect_timeout(), Duration::from_secs(10));
        assert_eq!(c.http_max_response_bytes(), 64 * 1024 * 1024);
        assert_eq!(c.shutdown_grace(), Duration::from_secs(30));
        assert_eq!(c.openwebui_events(), OpenWebUiEvents::Auto);
        assert!(!c.log_json());
        assert_eq!(c.log_level_filter(), LevelFilter::INFO);
    }

    #[test]
    fn the_file_overrides_defaults_and_the_environment_overrides_the_file() {
        let file = "MODEL_ID = \"openai/gpt-4o\"\nmax_concurrent_requests = 50\nReasoning_Effort = \"HIGH\"\nLOG_FORMAT = \"json\"\nHTTP_TOTAL_TIMEOUT_SECONDS = 600\n";
        let c = load(Some(file), &[]).unwrap();
        assert_eq!(c.get("MODEL_ID"), Some(&Value::from("openai/gpt-4o")));
        assert_eq!(c.max_concurrent_requests(), 50);
        assert_eq!(c.get("REASONING_EFFORT"), Some(&Value::from("high")));
        assert!(c.log_json());
        assert_eq!(c.http_total_timeout(), Some(Duration::from_secs(600)));

        let c = load(
            Some(file),
            &[
                ("MAX_CONCURRENT_REQUESTS", "7"),
                ("HTTP_TOTAL_TIMEOUT_SECONDS", "null"),
                ("LOG_LEVEL", "warn"),
            ],
        )
        .unwrap();
        assert_eq!(c.max_concurrent_requests(), 7);
        assert_eq!(c.get("MODEL_ID"), Some(&Value::from("openai/gpt-4o")));
        assert_eq!(c.http_total_timeout(), None);
        assert_eq!(c.log_level(), "WARNING");
        assert_eq!(c.log_level_filter(), LevelFilter::WARN);
    }

    #[test]
    fn toml_values_may_be_strings_and_empty_environment_values_count_as_unset() {
        let c = load(
            Some("ENABLE_REASONING = \"false\"\nMAX_CONCURRENT_REQUESTS = \"30\"\n"),
            &[("ENABLE_REASONING", ""), ("MAX_CONCURRENT_REQUESTS", "  ")],
        )
        .unwrap();
        assert_eq!(c.get("ENABLE_REASONING"), Some(&Value::Bool(false)));
        assert_eq!(c.max_concurrent_requests(), 30);
    }

    #[test]
    fn environment_aliases_set_their_valves() {
        let c = load(
            None,
            &[
                ("OPENROUTER_API_BASE_URL", "http://127.0.0.1:9999/api/v1/"),
                ("OPENROUTER_API_KEY", KEY),
                ("GLOBAL_LOG_LEVEL", "DEBUG"),
            ],
        )
        .unwrap();
        assert_eq!(c.base_url().as_str(), "http://127.0.0.1:9999/api/v1");
        assert_eq!(
            c.get("BASE_URL"),
            Some(&Value::from("http://127.0.0.1:9999/api/v1"))
        );
        assert_eq!(c.api_key().map(|k| k.expose_secret()), Some(KEY));
        assert_eq!(c.log_level(), "DEBUG");

        let c = load(None, &[("API_KEY", KEY)]).unwrap();
        assert_eq!(c.api_key().map(|k| k.expose_secret()), Some(KEY));
    }

    #[test]
    fn the_valve_name_wins_over_its_alias() {
        let c = load(
            None,
            &[
                ("BASE_URL", "https://gw.example/v1"),
                ("OPENROUTER_API_BASE_URL", "https://other.example/v1"),
            ],
        )
        .unwrap();
        assert_eq!(c.base_url().as_str(), "https://gw.example/v1");
    }

    #[test]
    fn an_unknown_file_key_is_named_with_the_nearest_valve() {
        match err(Some("MODEL_IDS = \"x\"\n"), &[]) {
            ConfigError::UnknownKey {
                key, suggestion, ..
            } => {
                assert_eq!(key, "MODEL_IDS");
                assert_eq!(suggestion, Some("MODEL_ID"));
            }
            other => panic!("{other}"),
        }
        let e = err(Some("TOTALLY_UNRELATED = 1\n"), &[]);
        let text = e.to_string();
        assert!(text.contains("TOTALLY_UNRELATED"), "{text}");
        assert!(!text.contains("did you mean"), "{text}");
        let text = err(Some("reasoning_efort = \"low\"\n"), &[]).to_string();
        assert!(
            text.contains("reasoning_efort") && text.contains("did you mean REASONING_EFFORT?"),
            "{text}"
        );
    }

    #[test]
    fn an_environment_alias_used_as_a_file_key_points_at_its_valve() {
        match err(
            Some("OPENROUTER_API_BASE_URL = \"https://x.example\"\n"),
            &[],
        ) {
            ConfigError::UnknownKey { suggestion, .. } => assert_eq!(suggestion, Some("BASE_URL")),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn out_of_range_values_name_the_key_the_source_and_the_range() {
        let text = err(None, &[("MODEL_CATALOG_REFRESH_SECONDS", "30")]).to_string();
        assert!(
            text.starts_with("MODEL_CATALOG_REFRESH_SECONDS=30 from environment"),
            "{text}"
        );
        assert!(text.contains("must be an integer >= 60"), "{text}");

        let text = err(Some("MAX_CONCURRENT_REQUESTS = 5000\n"), &[]).to_string();
        assert!(
            text.contains("MAX_CONCURRENT_REQUESTS=5000 from config file"),
            "{text}"
        );
        assert!(text.contains("between 1 and 2000"), "{text}");
    }

    #[test]
    fn wrong_types_name_the_key_the_source_and_the_expected_type() {
        match err(Some("ENABLE_REASONING = 3\n"), &[]) {
            ConfigError::Invalid {
                key,
                origin,
                expected,
                ..
            } => {
                assert_eq!(key, "ENABLE_REASONING");
                assert!(matches!(origin, Origin::File(_)));
                assert_eq!(expected, Expected::Kind(ValveKind::Bool));
            }
            other => panic!("{other}"),
        }
        let text = err(None, &[("REASONING_EFFORT", "extreme")]).to_string();
        assert!(
            text.contains("REASONING_EFFORT=extreme from environment"),
            "{text}"
        );
        assert!(
            text.contains("none, minimal, low, medium, high, xhigh"),
            "{text}"
        );
        let text = err(None, &[("OPENROUTER_API_BASE_URL", "ftp://x")]).to_string();
        assert!(
            text.contains("BASE_URL=ftp://x from environment (OPENROUTER_API_BASE_URL)"),
            "{text}"
        );
    }

    #[test]
    fn several_bad_values_are_reported_together() {
        match err(
            Some("MAX_CONCURRENT_REQUESTS = 0\nNOPE = 1\n"),
            &[("SSE_WORKERS_PER_REQUEST", "99")],
        ) {
            ConfigError::Several(all) => assert_eq!(all.len(), 3),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_secret_in_the_file_is_refused_by_name() {
        let e = err(Some(&format!("API_KEY = \"{KEY}\"\n")), &[]);
        let text = e.to_string();
        assert!(
            text.starts_with("secret API_KEY must come from the environment, not the config file"),
            "{text}"
        );
        assert!(!text.contains(KEY), "{text}");
        for key in [
            "openrouter_api_key",
            "ARTIFACT_ENCRYPTION_KEY",
            "ARTIFACT_ENCRYPTION_KEY_PREVIOUS",
            "SESSION_LOG_ZIP_PASSWORD",
            "WEBUI_SECRET_KEY",
            "PIPE_API_KEYS",
        ] {
            assert!(
                matches!(
                    err(Some(&format!("{key} = \"x\"\n")), &[]),
                    ConfigError::SecretInFile { .. }
                ),
                "{key}"
            );
        }
    }

    #[test]
    fn a_duplicate_key_in_another_case_is_refused() {
        assert!(matches!(
            err(Some("MODEL_ID = \"a\"\nmodel_id = \"b\"\n"), &[]),
            ConfigError::DuplicateKey {
                key: "MODEL_ID",
                ..
            }
        ));
    }

    #[test]
    fn unreadable_and_malformed_files_name_the_path() {
        let missing = Path::new("/nonexistent/responses-pipe.toml");
        let e = Config::load(Some(missing), &env_of(&[])).unwrap_err();
        assert!(
            e.to_string().contains("/nonexistent/responses-pipe.toml"),
            "{e}"
        );
        let e = err(Some("this is not toml ="), &[]);
        assert!(matches!(e, ConfigError::ParseFile { .. }), "{e}");
        let e = err(Some("[section]\nMODEL_ID = \"x\"\n"), &[]);
        assert!(
            matches!(e, ConfigError::UnknownKey { ref key, .. } if key == "section"),
            "{e}"
        );
    }

    #[test]
    fn the_artifact_table_follows_the_reference_rule() {
        const K1: &str = "first-artifact-key-0123456789abcdef";
        const K2: &str = "second-artifact-key-0123456789abcdef";
        // hash8 = first 8 hex of SHA-256(key + pipe id); no key counts as the empty string.
        let c = load(None, &[]).unwrap();
        let digest = hex::encode(sha2::Sha256::digest(b"openrouter_responses"));
        assert_eq!(
            c.artifact_table(),
            format!("response_items_openrouter_responses_{}", &digest[..8])
        );
        let keyed = load(
            Some("PIPE_ID = \"team_a\"\n"),
            &[("ARTIFACT_ENCRYPTION_KEY", K1)],
        )
        .unwrap();
        let digest = hex::encode(sha2::Sha256::digest(format!("{K1}team_a").as_bytes()));
        assert_eq!(
            keyed.artifact_table(),
            format!("response_items_team_a_{}", &digest[..8])
        );
        // A key change switches tables.
        let rotated = load(
            Some("PIPE_ID = \"team_a\"\n"),
            &[("ARTIFACT_ENCRYPTION_KEY", K2)],
        )
        .unwrap();
        assert_ne!(keyed.artifact_table(), rotated.artifact_table());
        assert!(!keyed.guest_settings_json().contains(K1));
        // A rotation (K2 current, K1 kept for reading) writes to K2's table and may read K1's.
        let rotating = load(
            Some("PIPE_ID = \"team_a\"\n"),
            &[
                ("ARTIFACT_ENCRYPTION_KEY", K2),
                ("ARTIFACT_ENCRYPTION_KEY_PREVIOUS", K1),
            ],
        )
        .unwrap();
        assert_eq!(rotating.artifact_table(), rotated.artifact_table());
        assert_eq!(
            rotating.artifact_table_previous(),
            Some(keyed.artifact_table())
        );
        assert_eq!(keyed.artifact_table_previous(), None);
        assert!(rotating.guest_settings_json().contains(&format!(
            "\"ARTIFACT_TABLE_PREVIOUS\":\"{}\"",
            keyed.artifact_table()
        )));
        assert!(!rotating.guest_settings_json().contains(K1));
        assert!(!rotating.guest_settings_json().contains(K2));
    }

    #[test]
    fn a_short_artifact_key_is_refused_by_name_without_its_value() {
        let short = "short-key-0123456789abcdef-xyz1"; // 31 characters
        assert_eq!(short.chars().count(), MIN_ARTIFACT_KEY_CHARS - 1);
        for name in [
            "ARTIFACT_ENCRYPTION_KEY",
            "ARTIFACT_ENCRYPTION_KEY_PREVIOUS",
        ] {
            let e = err(None, &[(name, short)]);
            let text = e.to_string();
            assert!(
                matches!(e, ConfigError::WeakKey { key } if key == name),
                "{text}"
            );
            assert!(text.starts_with(name), "{text}");
            assert!(text.contains("openssl rand -base64 32"), "{text}");
            assert!(!text.contains(short), "{text}");
        }
        // Both short: both named.
        let both = err(
            None,
            &[
                ("ARTIFACT_ENCRYPTION_KEY", "k1"),
                ("ARTIFACT_ENCRYPTION_KEY_PREVIOUS", "k2"),
            ],
        )
        .to_string();
        assert!(
            both.contains("ARTIFACT_ENCRYPTION_KEY is")
                && both.contains("ARTIFACT_ENCRYPTION_KEY_PREVIOUS is"),
            "{both}"
        );
        // 32 characters (multi-byte ones count once each) are enough.
        let ok = "é".repeat(MIN_ARTIFACT_KEY_CHARS);
        assert!(load(None, &[("ARTIFACT_ENCRYPTION_KEY", ok.as_str())]).is_ok());
    }

    #[test]
    fn pipe_id_must_be_a_short_lower_case_identifier() {
        for bad in ["Upper", "has-dash", "sp ace", &"x".repeat(33)] {
            let text = err(None, &[("PIPE_ID", bad)]).to_string();
            assert!(text.contains("PIPE_ID"), "{text}");
            assert!(
                text.contains("a-z") || text.contains("lower-case"),
                "{text}"
            );
        }
        assert!(load(None, &[("PIPE_ID", "ok_123")]).is_ok());
    }

    #[test]
    fn database_url_is_a_secret_and_store_settings_have_defaults() {
        let e = err(Some("DATABASE_URL = \"postgres://u:pw@h/db\"\n"), &[]).to_string();
        assert!(e.contains("secret DATABASE_URL"), "{e}");
        assert!(!e.contains("pw@h"), "{e}");
        let c = load(None, &[("DATABASE_URL", "postgres://u:hunter2@db/x")]).unwrap();
        assert!(c.database_url().is_some());
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!c.guest_settings_json().contains("hunter2"));
        let d = load(None, &[]).unwrap();
        assert!(d.database_url().is_none());
        assert_eq!(d.db_acquire_timeout(), Duration::from_millis(2000));
        assert_eq!(d.db_statement_timeout(), Duration::from_millis(5000));
        assert_eq!(d.artifact_cleanup_interval(), Duration::from_secs(3600));
    }

    #[test]
    fn the_guest_document_has_reference_valves_and_no_secrets() {
        let c = load(
            Some("MODEL_ID = \"openai/gpt-4o,anthropic/claude\"\n"),
            &[
                ("OPENROUTER_API_KEY", KEY),
                (
                    "ARTIFACT_ENCRYPTION_KEY",
                    "artifact-secret-0123456789abcdef-xyz",
                ),
                ("SESSION_LOG_ZIP_PASSWORD", "zip-secret-654321"),
                ("WEBUI_SECRET_KEY", "webui-secret-abcdef"),
                ("PIPE_API_KEYS", "client-key-1,client-key-2"),
            ],
        )
        .unwrap();
        let json = c.guest_settings_json();
        for secret in [
            KEY,
            "artifact-secret-0123456789abcdef-xyz",
            "zip-secret-654321",
            "webui-secret-abcdef",
            "client-key-1",
            "client-key-2",
        ] {
            assert!(!json.contains(secret), "guest document leaks {secret}");
        }
        let doc: serde_json::Map<String, Value> = serde_json::from_str(json).unwrap();
        assert_eq!(
            doc.get("MODEL_ID"),
            Some(&Value::from("openai/gpt-4o,anthropic/claude"))
        );
        assert_eq!(doc.get("API_KEY_CONFIGURED"), Some(&Value::Bool(true)));
        assert_eq!(
            doc.get("BASE_URL"),
            Some(&Value::from("https://openrouter.ai/api/v1"))
        );
        // An optional setting the component reads arrives as null.
        assert_eq!(doc.get("TOOL_IDLE_TIMEOUT_SECONDS"), Some(&Value::Null));
        assert_eq!(doc.get("ENABLE_REASONING"), Some(&Value::Bool(true)));
        for absent in [
            "API_KEY",
            "PIPE_API_KEYS",
            "WEBUI_SECRET_KEY",
            "ARTIFACT_ENCRYPTION_KEY",
            "ARTIFACT_ENCRYPTION_KEY_PREVIOUS",
            "EGRESS_ALLOWED_HOSTS",
            "GUEST_MEMORY_LIMIT_MB",
            "LOG_FORMAT",
            // Settings of the Python pipe that only the host reads, or nobody.
            "HTTP_TOTAL_TIMEOUT_SECONDS",
            "LOG_LEVEL",
            "SESSION_LOG_DIR",
            "MIDDLEWARE_STREAM_QUEUE_MAXSIZE",
        ] {
            assert!(
                !doc.contains_key(absent),
                "{absent} must not reach the guest"
            );
        }
        // Every setting the component reads (never a secret), plus the flag and the two artifact
        // tables (the previous one empty outside a key rotation).
        let expected = VALVES.iter().filter(|s| s.sent_to_guest()).count();
        assert_eq!(doc.len(), expected + 3);
        assert_eq!(
            doc.get("ARTIFACT_TABLE"),
            Some(&Value::from(c.artifact_table()))
        );
        assert_eq!(doc.get("ARTIFACT_TABLE_PREVIOUS"), Some(&Value::from("")));

        let without = load(None, &[]).unwrap();
        assert!(
            without
                .guest_settings_json()
                .contains("\"API_KEY_CONFIGURED\":false")
        );
    }

    #[test]
    fn debug_output_never_contains_a_secret() {
        let c = load(
            None,
            &[
                ("OPENROUTER_API_KEY", KEY),
                (
                    "ARTIFACT_ENCRYPTION_KEY",
                    "artifact-secret-0123456789abcdef-xyz",
                ),
                ("PIPE_API_KEYS", "client-key-1"),
                ("OPENWEBUI_API_KEYS", "owui=client-key-2"),
            ],
        )
        .unwrap();
        let debug = format!("{c:?}");
        for secret in [
            KEY,
            "artifact-secret-0123456789abcdef-xyz",
            "client-key-1",
            "client-key-2",
        ] {
            assert!(!debug.contains(secret), "Debug leaks {secret}");
        }
        assert!(debug.contains("API_KEY"), "{debug}");
    }

    #[test]
    fn an_invalid_secret_value_is_never_quoted_in_the_error() {
        // Only reachable through the spec itself, since any text is a valid secret today.
        let spec = valves::find("API_KEY").unwrap();
        assert_eq!(show(spec, Input::Text(KEY)), "<redacted>");
    }

    #[test]
    fn long_offending_values_are_cut_in_errors() {
        let long = "x".repeat(500);
        let text = err(None, &[("REASONING_EFFORT", &long)]).to_string();
        assert!(text.len() < 300, "{text}");
        assert!(text.contains('…'), "{text}");
    }

    #[test]
    fn client_keys_of_both_kinds_are_named_and_split_on_commas() {
        let c = load(
            None,
            &[
                ("PIPE_API_KEYS", " a-key , ,alice=b-key,"),
                ("OPENWEBUI_API_KEYS", "owui-key"),
            ],
        )
        .unwrap();
        let keys: Vec<(&str, KeyKind, &str)> = c
            .client_keys()
            .iter()
            .map(|k| (k.name.as_str(), k.kind, k.key.expose_secret()))
            .collect();
        assert_eq!(
            keys,
            [
                ("key-1", KeyKind::Api, "a-key"),
                ("alice", KeyKind::Api, "b-key"),
                ("openwebui-1", KeyKind::OpenWebUi, "owui-key"),
            ]
        );
        let only_owui = load(None, &[("OPENWEBUI_API_KEYS", "owui-key")]).unwrap();
        assert_eq!(only_owui.client_keys().len(), 1, "not keyless");
    }

    #[test]
    fn a_client_key_in_both_lists_stops_start_up_naming_the_entry_not_the_key() {
        let text = err(
            None,
            &[
                ("PIPE_API_KEYS", "alice=the-shared-key"),
                ("OPENWEBUI_API_KEYS", "k-other,the-shared-key"),
            ],
        )
        .to_string();
        assert!(
            text.contains("OPENWEBUI_API_KEYS entry 2 (`openwebui-2`)")
                && text.contains("PIPE_API_KEYS entry 1 (`alice`)"),
            "{text}"
        );
        assert!(!text.contains("the-shared-key"), "{text}");
        let text = err(None, &[("OPENWEBUI_API_KEYS", "bad name=k")]).to_string();
        assert!(text.contains("OPENWEBUI_API_KEYS entry 1"), "{text}");
        let file = err(Some("OPENWEBUI_API_KEYS = \"k\""), &[]);
        assert!(
            matches!(
                file,
                ConfigError::SecretInFile {
                    key: "OPENWEBUI_API_KEYS",
                    ..
                }
            ),
            "{file}"
        );
    }

    #[test]
    fn cors_origins_are_checked_and_kept_as_browsers_send_them() {
        assert!(load(None, &[]).unwrap().cors_allowed_origins().is_empty());
        let c = load(
            None,
            &[(
                "CORS_ALLOWED_ORIGINS",
                "https://Chat.Example.com, http://localhost:3000/,https://chat.example.com",
            )],
        )
        .unwrap();
        assert_eq!(
            c.cors_allowed_origins(),
            ["https://chat.example.com", "http://localhost:3000"]
        );
        let text = err(
            None,
            &[(
                "CORS_ALLOWED_ORIGINS",
                "https://ok.example,https://bad.example/app",
            )],
        )
        .to_string();
        assert!(
            text.contains("CORS_ALLOWED_ORIGINS") && text.contains("`https://bad.example/app`"),
            "{text}"
        );
    }

    #[test]
    fn egress_allows_base_url_authority_with_the_default_port() {
        let c = load(None, &[]).unwrap();
        assert_eq!(c.base_authority(), ("openrouter.ai".to_owned(), 443, true));
        assert_eq!(c.egress_allowed(), vec![("openrouter.ai".to_owned(), 443)]);
        assert!(c.egress_private_ok().is_empty());

        let c = load(
            None,
            &[
                ("BASE_URL", "http://Gateway.Example/v1"),
                (
                    "EGRESS_ALLOWED_HOSTS",
                    "cdn.example.com:443, gateway.example:80,CDN.example.com:443",
                ),
            ],
        )
        .unwrap();
        assert_eq!(
            c.base_authority(),
            ("gateway.example".to_owned(), 80, false)
        );
        assert_eq!(
            c.egress_allowed(),
            vec![
                ("cdn.example.com".to_owned(), 443),
                ("gateway.example".to_owned(), 80)
            ]
        );
        assert!(c.egress_private_ok().is_empty());
    }

    #[test]
    fn only_a_literal_local_base_url_is_allowed_to_resolve_privately() {
        for (base, host, port) in [
            ("http://127.0.0.1:8081/api/v1", "127.0.0.1", 8081),
            ("http://localhost:3000", "localhost", 3000),
            ("http://[::1]:9000/v1", "[::1]", 9000),
        ] {
            let c = load(None, &[("BASE_URL", base)]).unwrap();
            assert_eq!(
                c.egress_private_ok(),
                vec![(host.to_owned(), port)],
                "{base}"
            );
            assert!(
                c.egress_allowed().contains(&(host.to_owned(), port)),
                "{base}"
            );
        }
        let c = load(
            None,
            &[
                ("BASE_URL", "https://internal.corp.example/v1"),
                ("EGRESS_PRIVATE_HOSTS", "redis.internal:6379"),
            ],
        )
        .unwrap();
        assert_eq!(
            c.egress_private_ok(),
            vec![("redis.internal".to_owned(), 6379)]
        );
    }

    #[test]
    fn malformed_egress_entries_name_the_setting_and_the_entry() {
        let text = err(
            None,
            &[("EGRESS_ALLOWED_HOSTS", "ok.example:443,bad.example")],
        )
        .to_string();
        assert!(text.contains("EGRESS_ALLOWED_HOSTS="), "{text}");
        assert!(text.contains("from environment"), "{text}");
        assert!(
            text.contains("`bad.example` needs an explicit port"),
            "{text}"
        );
    }

    #[test]
    fn base_url_with_a_query_or_credentials_is_refused() {
        let text = err(None, &[("BASE_URL", "https://x.example/v1?key=1")]).to_string();
        assert!(text.contains("must not contain a query"), "{text}");
        assert!(matches!(
            err(None, &[("BASE_URL", "https://u:p@x.example/v1")]),
            ConfigError::Invalid {
                key: "BASE_URL",
                ..
            }
        ));
    }

    #[test]
    fn a_bare_host_base_url_renders_without_a_trailing_slash() {
        let c = load(None, &[("BASE_URL", "https://gw.example/")]).unwrap();
        assert_eq!(c.get("BASE_URL"), Some(&Value::from("https://gw.example")));
        assert_eq!(c.base_url().path(), "/");
    }

    #[test]
    fn every_setting_can_be_set_from_the_environment_in_its_default_spelling() {
        // Round trip: each non-secret default, written as environment text, loads unchanged.
        let defaults = load(None, &[]).unwrap();
        let pairs: Vec<(String, String)> = VALVES
            .iter()
            .filter(|s| !s.is_secret())
            .filter_map(|s| {
                let text = match defaults.get(s.name)? {
                    Value::String(t) => t.clone(),
                    Value::Null => "null".to_owned(),
                    other => other.to_string(),
                };
                Some((s.name.to_owned(), text))
            })
            .collect();
        let borrowed: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let again = load(None, &borrowed).unwrap();
        assert_eq!(again.guest_settings_json(), defaults.guest_settings_json());
    }

    #[test]
    fn a_non_default_value_of_an_unbuilt_safety_setting_stops_the_start_up_by_name() {
        for (key, value) in [
            ("SESSION_LOG_STORE_ENABLED", "true"),
            ("ENABLE_SSRF_PROTECTION", "false"),
            ("FUSION_BACKEND", "internal"),
            ("ENABLE_OPENROUTER_FUSION", "off"),
            ("ADMIN_PROVIDER_ROUTING_MODELS", "openai/*"),
        ] {
            match err(None, &[(key, value)]) {
                ConfigError::NotBuilt {
                    key: named, origin, ..
                } => {
                    assert_eq!(named, key);
                    assert_eq!(origin, Origin::Env(key.to_owned()));
                }
                other => panic!("{key}: {other}"),
            }
            let text = err(None, &[(key, value)]).to_string();
            assert!(text.contains(key), "{text}");
            assert!(text.contains("does not start"), "{text}");
        }
        // From the file too, and several at once are all named.
        let text = err(
            Some("SESSION_LOG_STORE_ENABLED = true\nFUSION_BACKEND = \"internal\"\n"),
            &[],
        )
        .to_string();
        assert!(
            text.contains("SESSION_LOG_STORE_ENABLED=true from config file"),
            "{text}"
        );
        assert!(text.contains("FUSION_BACKEND=internal"), "{text}");
        // Their defaults, written out, start normally.
        let c = load(
            None,
            &[
                ("SESSION_LOG_STORE_ENABLED", "false"),
                ("ENABLE_SSRF_PROTECTION", "true"),
                ("FUSION_BACKEND", "openrouter"),
                ("ENABLE_OPENROUTER_FUSION", "true"),
            ],
        )
        .unwrap();
        assert!(c.start_up_notes().is_empty(), "{:?}", c.start_up_notes());
    }

    #[test]
    fn a_non_default_value_of_an_unbuilt_or_ignored_setting_is_noted_by_name() {
        let c = load(
            Some("REMOTE_DOWNLOAD_MAX_RETRIES = 5\n"),
            &[
                ("ENABLE_REDIS_CACHE", "true"),
                ("SEND_SESSION_ID", "true"),
                ("SESSION_LOG_ZIP_PASSWORD", "zip-secret-654321"),
                ("MIDDLEWARE_STREAM_QUEUE_MAXSIZE", "100"),
                // Set to their defaults: nothing to report.
                ("VIDEO_INTENT_ENABLED", "true"),
                ("SSE_WORKERS_PER_REQUEST", "4"),
            ],
        )
        .unwrap();
        let notes = c.start_up_notes();
        let named = |key: &str| notes.iter().find(|n| n.key == key).map(|n| n.kind);
        assert_eq!(
            named("REMOTE_DOWNLOAD_MAX_RETRIES"),
            Some(NoteKind::NotBuilt)
        );
        assert_eq!(named("ENABLE_REDIS_CACHE"), Some(NoteKind::NotBuilt));
        assert_eq!(named("SEND_SESSION_ID"), Some(NoteKind::NotBuilt));
        assert_eq!(named("SESSION_LOG_ZIP_PASSWORD"), Some(NoteKind::NotBuilt));
        assert!(matches!(
            named("MIDDLEWARE_STREAM_QUEUE_MAXSIZE"),
            Some(NoteKind::Ignored(reason)) if !reason.is_empty()
        ));
        assert_eq!(notes.len(), 5, "{notes:?}");
        assert!(
            notes
                .iter()
                .any(|n| n.key == "REMOTE_DOWNLOAD_MAX_RETRIES"
                    && matches!(n.origin, Origin::File(_)))
        );
        assert!(!format!("{notes:?}").contains("zip-secret"));
        // A default start reports nothing.
        assert!(load(None, &[]).unwrap().start_up_notes().is_empty());
    }

    #[test]
    fn a_breaker_history_shorter_than_the_threshold_is_flagged() {
        assert!(!load(None, &[]).unwrap().db_breaker_never_opens());
        let short = load(
            None,
            &[("BREAKER_HISTORY_SIZE", "2"), ("BREAKER_MAX_FAILURES", "3")],
        )
        .unwrap();
        assert!(short.db_breaker_never_opens());
        let raised = load(None, &[("BREAKER_MAX_FAILURES", "6")]).unwrap();
        assert!(raised.db_breaker_never_opens(), "default history 5 < 6");
    }

    #[test]
    fn unbuilt_settings_are_still_validated() {
        assert!(matches!(
            err(None, &[("SESSION_LOG_MAX_LINES", "5")]),
            ConfigError::Invalid {
                key: "SESSION_LOG_MAX_LINES",
                ..
            }
        ));
        assert!(matches!(
            err(None, &[("FUSION_BACKEND", "local")]),
            ConfigError::Invalid {
                key: "FUSION_BACKEND",
                ..
            }
        ));
    }

    #[test]
    fn defaults_that_name_an_unbuilt_feature_follow_what_this_server_does() {
        let c = load(None, &[]).unwrap();
        assert_eq!(c.get("FUSION_BACKEND"), Some(&Value::from("openrouter")));
        for key in [
            "ENABLE_REDIS_CACHE",
            "ENABLE_ADVISOR",
            "ENABLE_VIDEO_GENERATION",
        ] {
            assert_eq!(c.get(key), Some(&Value::Bool(false)), "{key}");
        }
    }

    #[test]
    fn the_guest_document_holds_exactly_the_table_defaults_of_the_guest_side() {
        // The component fills keys missing from a document with the same table defaults, so
        // a default host document and the component's own defaults cannot disagree.
        let c = load(None, &[]).unwrap();
        let doc: serde_json::Map<String, Value> =
            serde_json::from_str(c.guest_settings_json()).unwrap();
        for spec in responses_pipe_settings::guest_valves() {
            assert_eq!(
                doc.get(spec.name),
                Some(&spec.default.to_json()),
                "{}",
                spec.name
            );
        }
    }

    #[test]
    fn openwebui_events_and_log_format_are_read() {
        let c = load(
            Some("OPENWEBUI_EVENTS = \"Never\"\n"),
            &[("LOG_FORMAT", "JSON")],
        )
        .unwrap();
        assert_eq!(c.openwebui_events(), OpenWebUiEvents::Never);
        assert!(c.log_json());
        assert!(load(None, &[("OPENWEBUI_EVENTS", "sometimes")]).is_err());
    }
}
