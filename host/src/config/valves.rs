//! The one table of every setting the host accepts: the system valves of the Python pipe we
//! replace (same names, defaults and ranges, so an operator can carry settings over) and the
//! host's own settings. Each entry says how a value is validated, what it defaults to, which extra
//! environment names feed it, and whether the guest gets to see it. Loading, layering and typed
//! access live in the parent module; this file is data plus the small types that describe it.
//!
//! Ranges and enum spellings come from the reference pipe's `core/config.py` (`Valves`) as
//! summarised in `REFERENCE.md` §3. Where the reference gives no bound the table says so with
//! `i64::MIN`/`i64::MAX` rather than inventing one. Defaults of the message templates and fusion
//! prompts are the empty string, meaning "use the pipe's built-in text" (the reference restores a
//! blanked template to its built-in default in the same way).

use std::fmt;

/// How the values of one setting are spelled and checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValveKind {
    /// `true`/`false`; strings `1/0`, `true/false`, `yes/no`, `on/off` (any case).
    Bool,
    /// A whole number in `min..=max`.
    Int { min: i64, max: i64 },
    /// A finite number in `min..=max`.
    Float { min: f64, max: f64 },
    /// Like `Int`, but `null` (the strings `null`/`none`, or an empty TOML string) is allowed.
    OptInt { min: i64, max: i64 },
    /// Like `Float`, but `null` is allowed.
    OptFloat { min: f64, max: f64 },
    /// Free text, passed on exactly as given.
    Str,
    /// One of a fixed set of spellings, matched case-insensitively and stored in the canonical
    /// spelling. `synonyms` maps extra accepted spellings onto a canonical one.
    Enum {
        values: &'static [&'static str],
        synonyms: &'static [(&'static str, &'static str)],
    },
    /// A comma-separated list kept as the string given (the config file may also use an array
    /// of strings, which is joined with commas).
    Csv,
    /// An absolute `http://` or `https://` URL without credentials; `allow_empty` lets the empty
    /// string mean "not set".
    Url { allow_empty: bool },
    /// A secret: environment only, held as `secrecy::SecretString`, never logged, never sent to
    /// the guest.
    Secret,
}

/// Who a setting is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A valve of the reference pipe: handed to the guest in the settings document (unless it is
    /// a secret).
    Reference,
    /// A host setting: used by the host only, never sent to the guest.
    Host,
}

/// A setting's default, typed so the table cannot hold a number where a flag belongs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DefaultValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Null,
    Str(&'static str),
}

impl DefaultValue {
    /// The default as a TOML value, so it goes through exactly the validation a file value does.
    pub(crate) fn to_toml(self) -> toml::Value {
        match self {
            Self::Bool(b) => toml::Value::Boolean(b),
            Self::Int(i) => toml::Value::Integer(i),
            Self::Float(f) => toml::Value::Float(f),
            // TOML has no null; the parser reads an empty string as null for the optional kinds.
            Self::Null => toml::Value::String(String::new()),
            Self::Str(s) => toml::Value::String(s.to_owned()),
        }
    }
}

/// One setting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValveSpec {
    /// Canonical name: the TOML key (case-insensitive) and the environment variable.
    pub name: &'static str,
    pub kind: ValveKind,
    pub default: DefaultValue,
    /// Further environment variables that set this value; the canonical name wins over these.
    pub env_aliases: &'static [&'static str],
    pub scope: Scope,
}

impl ValveSpec {
    /// The environment variables read for this setting, in order of precedence.
    pub fn env_names(&self) -> impl Iterator<Item = &'static str> + use<> {
        std::iter::once(self.name).chain(self.env_aliases.iter().copied())
    }

    /// Whether this setting may only come from the environment.
    pub fn is_secret(&self) -> bool {
        matches!(self.kind, ValveKind::Secret)
    }
}

impl fmt::Display for ValveKind {
    /// The "what was expected" half of a validation error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Bool => f.write_str("must be a boolean (true/false, 1/0, yes/no, on/off)"),
            Self::Int { min, max } => {
                f.write_str("must be an integer")?;
                write_int_range(f, min, max)
            }
            Self::OptInt { min, max } => {
                f.write_str("must be null or an integer")?;
                write_int_range(f, min, max)
            }
            Self::Float { min, max } => {
                f.write_str("must be a number")?;
                write_float_range(f, min, max)
            }
            Self::OptFloat { min, max } => {
                f.write_str("must be null or a number")?;
                write_float_range(f, min, max)
            }
            Self::Str | Self::Secret => f.write_str("must be a string"),
            Self::Enum { values, .. } => write!(f, "must be one of: {}", values.join(", ")),
            Self::Csv => f.write_str(
                "must be a comma-separated string (or, in the config file, an array of strings)",
            ),
            Self::Url { allow_empty } => {
                f.write_str("must be an absolute http:// or https:// URL with a host and without a user name or password")?;
                if allow_empty {
                    f.write_str(", or empty")?;
                }
                Ok(())
            }
        }
    }
}

fn write_int_range(f: &mut fmt::Formatter<'_>, min: i64, max: i64) -> fmt::Result {
    match (min, max) {
        (i64::MIN, i64::MAX) => Ok(()),
        (min, i64::MAX) => write!(f, " >= {min}"),
        (i64::MIN, max) => write!(f, " <= {max}"),
        (min, max) => write!(f, " between {min} and {max}"),
    }
}

fn write_float_range(f: &mut fmt::Formatter<'_>, min: f64, max: f64) -> fmt::Result {
    if max == f64::MAX {
        write!(f, " >= {min}")
    } else {
        write!(f, " between {min} and {max}")
    }
}

// Short constructors keep the table one line per setting, like the reference's list.

const fn spec(name: &'static str, kind: ValveKind, default: DefaultValue) -> ValveSpec {
    ValveSpec {
        name,
        kind,
        default,
        env_aliases: &[],
        scope: Scope::Reference,
    }
}
const fn flag(name: &'static str, default: bool) -> ValveSpec {
    spec(name, ValveKind::Bool, DefaultValue::Bool(default))
}
const fn int(name: &'static str, default: i64, min: i64, max: i64) -> ValveSpec {
    spec(
        name,
        ValveKind::Int { min, max },
        DefaultValue::Int(default),
    )
}
const fn float(name: &'static str, default: f64, min: f64, max: f64) -> ValveSpec {
    spec(
        name,
        ValveKind::Float { min, max },
        DefaultValue::Float(default),
    )
}
const fn opt_int(name: &'static str, min: i64, max: i64) -> ValveSpec {
    spec(name, ValveKind::OptInt { min, max }, DefaultValue::Null)
}
const fn text(name: &'static str, default: &'static str) -> ValveSpec {
    spec(name, ValveKind::Str, DefaultValue::Str(default))
}
const fn csv(name: &'static str, default: &'static str) -> ValveSpec {
    spec(name, ValveKind::Csv, DefaultValue::Str(default))
}
const fn choice(
    name: &'static str,
    default: &'static str,
    values: &'static [&'static str],
) -> ValveSpec {
    spec(
        name,
        ValveKind::Enum {
            values,
            synonyms: &[],
        },
        DefaultValue::Str(default),
    )
}
const fn secret(name: &'static str) -> ValveSpec {
    spec(name, ValveKind::Secret, DefaultValue::Str(""))
}
/// A built-in message template or prompt: empty means "the pipe's built-in text".
const fn builtin(name: &'static str) -> ValveSpec {
    text(name, "")
}
const fn aliased(mut s: ValveSpec, env_aliases: &'static [&'static str]) -> ValveSpec {
    s.env_aliases = env_aliases;
    s
}
const fn host(mut s: ValveSpec) -> ValveSpec {
    s.scope = Scope::Host;
    s
}

const MAX: i64 = i64::MAX;
const KIB: i64 = 1024;
const MIB: i64 = 1024 * 1024;

const EFFORTS: &[&str] = &["none", "minimal", "low", "medium", "high", "xhigh"];
const ALL_ONLY_EXCLUDE: &[&str] = &["all", "only", "exclude"];

/// Every setting, in the reference's order, host settings last.
pub static VALVES: &[ValveSpec] = &[
    // Connection and auth.
    aliased(
        spec(
            "BASE_URL",
            ValveKind::Url { allow_empty: false },
            DefaultValue::Str("https://openrouter.ai/api/v1"),
        ),
        &["OPENROUTER_API_BASE_URL"],
    ),
    choice(
        "DEFAULT_LLM_ENDPOINT",
        "responses",
        &["responses", "chat_completions"],
    ),
    csv("FORCE_CHAT_COMPLETIONS_MODELS", ""),
    csv("FORCE_RESPONSES_MODELS", ""),
    flag("AUTO_FALLBACK_CHAT_COMPLETIONS", true),
    aliased(secret("API_KEY"), &["OPENROUTER_API_KEY"]),
    // The reference accepts any string and ignores one without a scheme; refusing it at start-up
    // tells the operator instead of silently using the default referer.
    spec(
        "HTTP_REFERER_OVERRIDE",
        ValveKind::Url { allow_empty: true },
        DefaultValue::Str(""),
    ),
    int("HTTP_CONNECT_TIMEOUT_SECONDS", 10, 1, MAX),
    opt_int("HTTP_TOTAL_TIMEOUT_SECONDS", 1, MAX),
    int("HTTP_SOCK_READ_SECONDS", 300, 1, MAX),
    // Remote downloads.
    int("REMOTE_DOWNLOAD_MAX_RETRIES", 3, 0, 10),
    int("REMOTE_DOWNLOAD_INITIAL_RETRY_DELAY_SECONDS", 5, 1, 60),
    int("REMOTE_DOWNLOAD_MAX_RETRY_TIME_SECONDS", 45, 5, 300),
    int("REMOTE_FILE_MAX_SIZE_MB", 50, 1, 500),
    flag("SAVE_REMOTE_FILE_URLS", true),
    flag("SAVE_FILE_DATA_CONTENT", true),
    int("BASE64_MAX_SIZE_MB", 50, 1, 500),
    int("IMAGE_UPLOAD_CHUNK_BYTES", MIB, 64 * KIB, 8 * MIB),
    int("VIDEO_MAX_SIZE_MB", 100, 1, 1000),
    aliased(
        text("FALLBACK_STORAGE_EMAIL", "openrouter-pipe@system.local"),
        &["OPENROUTER_STORAGE_USER_EMAIL"],
    ),
    aliased(
        text("FALLBACK_STORAGE_NAME", "OpenRouter Pipe Storage"),
        &["OPENROUTER_STORAGE_USER_NAME"],
    ),
    aliased(
        text("FALLBACK_STORAGE_ROLE", "pending"),
        &["OPENROUTER_STORAGE_USER_ROLE"],
    ),
    flag("ENABLE_SSRF_PROTECTION", true),
    flag("ALLOW_INSECURE_HTTP", false),
    csv("ALLOW_INSECURE_HTTP_HOSTS", ""),
    flag("ALLOW_UNKNOWN_SIZE_CLOUD_READS", false),
    // Models.
    csv("MODEL_ID", "auto"),
    int("MODEL_CATALOG_REFRESH_SECONDS", 3600, 60, MAX),
    choice("NEW_MODEL_ACCESS_CONTROL", "admins", &["public", "admins"]),
    choice("FREE_MODEL_FILTER", "all", ALL_ONLY_EXCLUDE),
    choice("TOOL_CALLING_FILTER", "all", ALL_ONLY_EXCLUDE),
    flag("ZDR_MODELS_ONLY", false),
    flag("ZDR_ENFORCE", false),
    flag("ALLOW_USER_ZDR_OVERRIDE", true),
    csv("VARIANT_MODELS", ""),
    // Reasoning and caching.
    flag("ENABLE_REASONING", true),
    choice(
        "THINKING_OUTPUT_MODE",
        "open_webui",
        &["open_webui", "status", "both"],
    ),
    flag("ENABLE_ANTHROPIC_INTERLEAVED_THINKING", true),
    flag("ENABLE_ANTHROPIC_PROMPT_CACHING", true),
    choice("ANTHROPIC_PROMPT_CACHE_TTL", "5m", &["5m", "1h"]),
    flag("SEND_CACHE_SESSION_ID", true),
    flag("ENABLE_PLUGIN_SYSTEM", false),
    flag("AUTO_CONTEXT_TRIMMING", true),
    choice("REASONING_EFFORT", "medium", EFFORTS),
    choice(
        "REASONING_SUMMARY_MODE",
        "auto",
        &["auto", "concise", "detailed", "disabled"],
    ),
    int("GEMINI_THINKING_BUDGET", 1024, 0, 65536),
    choice(
        "PERSIST_REASONING_TOKENS",
        "conversation",
        &["disabled", "next_reply", "conversation"],
    ),
    choice("TASK_MODEL_REASONING_EFFORT", "low", EFFORTS),
    // Tools and artifacts.
    choice(
        "TOOL_EXECUTION_MODE",
        "Pipeline",
        &["Pipeline", "Open-WebUI"],
    ),
    flag("SHOW_TOOL_CARDS", false),
    flag("PERSIST_TOOL_RESULTS", false),
    secret("ARTIFACT_ENCRYPTION_KEY"),
    flag("ENCRYPT_ALL", true),
    flag("ENABLE_LZ4_COMPRESSION", true),
    int("MIN_COMPRESS_BYTES", 0, 0, MAX),
    flag("ENABLE_STRICT_TOOL_CALLING", true),
    // The reference sets no bound on this one.
    int("MAX_FUNCTION_CALL_LOOPS", 25, i64::MIN, MAX),
    // Logging and session logs.
    aliased(
        spec(
            "LOG_LEVEL",
            ValveKind::Enum {
                values: &["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                // Python's logging (and Open WebUI's GLOBAL_LOG_LEVEL) accept these spellings too.
                synonyms: &[("WARN", "WARNING"), ("FATAL", "CRITICAL")],
            },
            DefaultValue::Str("INFO"),
        ),
        &["GLOBAL_LOG_LEVEL"],
    ),
    flag("SESSION_LOG_STORE_ENABLED", false),
    text("SESSION_LOG_DIR", "session_logs"),
    secret("SESSION_LOG_ZIP_PASSWORD"),
    int("SESSION_LOG_RETENTION_DAYS", 90, 1, MAX),
    int("SESSION_LOG_CLEANUP_INTERVAL_SECONDS", 3600, 60, MAX),
    choice(
        "SESSION_LOG_ZIP_COMPRESSION",
        "lzma",
        &["stored", "deflated", "bzip2", "lzma"],
    ),
    opt_int("SESSION_LOG_ZIP_COMPRESSLEVEL", 0, 9),
    int("SESSION_LOG_MAX_LINES", 20000, 100, 200_000),
    choice("SESSION_LOG_FORMAT", "jsonl", &["jsonl", "text", "both"]),
    int("SESSION_LOG_ASSEMBLER_INTERVAL_SECONDS", 30, 1, MAX),
    int("SESSION_LOG_ASSEMBLER_JITTER_SECONDS", 10, 0, MAX),
    int("SESSION_LOG_ASSEMBLER_BATCH_SIZE", 25, 1, 500),
    int("SESSION_LOG_STALE_FINALIZE_SECONDS", 43200, 60, MAX),
    int("SESSION_LOG_LOCK_STALE_SECONDS", 1800, 60, MAX),
    flag("ENABLE_TIMING_LOG", false),
    text("TIMING_LOG_FILE", "logs/timing.jsonl"),
    // Concurrency and streaming.
    int("MAX_CONCURRENT_REQUESTS", 200, 1, 2000),
    int("SSE_WORKERS_PER_REQUEST", 4, 1, 8),
    int("STREAMING_CHUNK_QUEUE_MAXSIZE", 0, 0, MAX),
    int("STREAMING_EVENT_QUEUE_MAXSIZE", 0, 0, MAX),
    int("STREAMING_CHUNK_QUEUE_WARN_SIZE", 1000, 100, MAX),
    int("STREAMING_EVENT_QUEUE_WARN_SIZE", 1000, 100, MAX),
    int("STREAMING_DELTA_CHAR_LIMIT", 256, 0, MAX),
    int("STREAMING_IDLE_FLUSH_MS", 30, 0, MAX),
    int("STREAMING_NAGLE_MIN_FLUSH_CHARS", 3, 1, MAX),
    int("MIDDLEWARE_STREAM_QUEUE_MAXSIZE", 0, 0, MAX),
    float(
        "MIDDLEWARE_STREAM_QUEUE_PUT_TIMEOUT_SECONDS",
        1.0,
        0.0,
        f64::MAX,
    ),
    // Error templates.
    builtin("OPENROUTER_ERROR_TEMPLATE"),
    builtin("ENDPOINT_OVERRIDE_CONFLICT_TEMPLATE"),
    builtin("DIRECT_UPLOAD_FAILURE_TEMPLATE"),
    builtin("AUTHENTICATION_ERROR_TEMPLATE"),
    builtin("INSUFFICIENT_CREDITS_TEMPLATE"),
    builtin("RATE_LIMIT_TEMPLATE"),
    builtin("SERVER_TIMEOUT_TEMPLATE"),
    builtin("PAYLOAD_TOO_LARGE_TEMPLATE"),
    text("SUPPORT_EMAIL", ""),
    text("SUPPORT_URL", ""),
    builtin("NETWORK_TIMEOUT_TEMPLATE"),
    builtin("CONNECTION_ERROR_TEMPLATE"),
    builtin("SERVICE_ERROR_TEMPLATE"),
    builtin("INTERNAL_ERROR_TEMPLATE"),
    builtin("MODEL_RESTRICTED_TEMPLATE"),
    builtin("STREAM_INTERRUPTED_TEMPLATE"),
    // Tool execution and breakers.
    int("MAX_PARALLEL_TOOLS_GLOBAL", 200, 1, 2000),
    int("MAX_PARALLEL_TOOLS_PER_REQUEST", 5, 1, 50),
    int("BREAKER_MAX_FAILURES", 5, 1, 50),
    int("BREAKER_WINDOW_SECONDS", 60, 5, 900),
    int("BREAKER_HISTORY_SIZE", 5, 1, 200),
    int("TOOL_BATCH_CAP", 4, 1, 32),
    int("TOOL_OUTPUT_RETENTION_TURNS", 10, 0, MAX),
    int("TOOL_TIMEOUT_SECONDS", 60, 1, 600),
    int("TOOL_BATCH_TIMEOUT_SECONDS", 120, 1, MAX),
    opt_int("TOOL_IDLE_TIMEOUT_SECONDS", 1, MAX),
    float("TOOL_SHUTDOWN_TIMEOUT_SECONDS", 10.0, 0.0, f64::MAX),
    // Redis, costs, artifact cleanup.
    flag("ENABLE_REDIS_CACHE", true),
    int("REDIS_CACHE_TTL_SECONDS", 600, 60, 3600),
    int("REDIS_PENDING_WARN_THRESHOLD", 100, 1, 10000),
    int("REDIS_FLUSH_FAILURE_LIMIT", 5, 1, 50),
    flag("COSTS_REDIS_DUMP", false),
    int("COSTS_REDIS_TTL_SECONDS", 900, 60, 3600),
    int("ARTIFACT_CLEANUP_DAYS", 90, 1, 365),
    float("ARTIFACT_CLEANUP_INTERVAL_HOURS", 1.0, 0.5, 24.0),
    int("DB_BATCH_SIZE", 10, 5, 20),
    // Output shaping and identifiers.
    flag("USE_MODEL_MAX_OUTPUT_TOKENS", false),
    flag("SHOW_FINAL_USAGE_STATUS", true),
    choice("FINAL_USAGE_STATUS_STYLE", "text", &["text", "icons"]),
    csv("USAGE_STATUS_ICON_SET", "⧗,$,⇅,▲,▼,↺,▽"),
    flag("SEND_END_USER_ID", false),
    choice("END_USER_ID_SOURCE", "id", &["id", "email", "name"]),
    flag("SEND_SESSION_ID", false),
    flag("SEND_CHAT_ID", false),
    flag("SEND_MESSAGE_ID", false),
    int("MAX_INPUT_IMAGES_PER_REQUEST", 5, 1, 20),
    choice(
        "IMAGE_INPUT_SELECTION",
        "user_then_assistant",
        &["user_turn_only", "user_then_assistant"],
    ),
    // Model metadata sync and server tools.
    flag("UPDATE_MODEL_IMAGES", true),
    flag("UPDATE_MODEL_CAPABILITIES", true),
    flag("UPDATE_MODEL_DESCRIPTIONS", false),
    flag("ENABLE_WEB_SEARCH", true),
    flag("ENABLE_WEB_FETCH", true),
    flag("ENABLE_DATETIME", true),
    flag("ENABLE_ADVISOR", true),
    flag("ENABLE_SUBAGENT", true),
    flag("ENABLE_SEARCH_MODELS", true),
    flag("ENABLE_IMAGE_GENERATION", true),
    flag("ENABLE_VIDEO_GENERATION", true),
    // Companion filters.
    flag("AUTO_INSTALL_WEB_TOOLS_FILTER", true),
    flag("AUTO_ATTACH_WEB_TOOLS_FILTER", true),
    flag("AUTO_DEFAULT_WEB_TOOLS_FILTER", false),
    flag("AUTO_INSTALL_IMAGE_GEN_FILTER", true),
    flag("AUTO_ATTACH_IMAGE_GEN_FILTER", true),
    flag("ENABLE_OPENROUTER_IMAGE_GENERATION", true),
    flag("AUTO_INSTALL_IMAGE_FILTERS", true),
    flag("AUTO_ATTACH_IMAGE_FILTERS", true),
    flag("AUTO_DEFAULT_IMAGE_FILTERS", true),
    flag("AUTO_INSTALL_VIDEO_FILTERS", true),
    flag("AUTO_ATTACH_VIDEO_FILTERS", true),
    flag("AUTO_DEFAULT_VIDEO_FILTERS", true),
    // Fusion.
    flag("ENABLE_OPENROUTER_FUSION", true),
    flag("AUTO_INSTALL_FUSION_FILTER", true),
    flag("AUTO_ATTACH_FUSION_FILTER", true),
    flag("AUTO_DEFAULT_FUSION_FILTER", true),
    choice("FUSION_BACKEND", "internal", &["openrouter", "internal"]),
    builtin("FUSION_PANEL_SYSTEM_PROMPT"),
    builtin("FUSION_JUDGE_SYSTEM_PROMPT"),
    builtin("FUSION_SYNTHESIS_SYSTEM_PROMPT"),
    // Video generation.
    float("VIDEO_INITIAL_POLL_DELAY_SECONDS", 5.0, 0.0, 60.0),
    float("VIDEO_POLL_INTERVAL_SECONDS", 5.0, 1.0, 60.0),
    float("VIDEO_POLL_BACKOFF_FACTOR", 1.2, 1.0, 4.0),
    float("VIDEO_POLL_INTERVAL_MAX_SECONDS", 20.0, 1.0, 120.0),
    int("VIDEO_MAX_POLL_TIME_SECONDS", 600, 30, 7200),
    int("VIDEO_STATUS_POLL_MAX_ERRORS", 5, 1, 25),
    int("REMOTE_VIDEO_MAX_SIZE_MB", 500, 1, 2048),
    // REFERENCE.md lists no range for these three; the reference's `Field(ge=..., le=...)` does.
    int("VIDEO_DOWNLOAD_CHUNK_SIZE", MIB, 64 * KIB, 8 * MIB),
    int("MAX_CONCURRENT_VIDEO_GENS", 2, 1, 100),
    int("MAX_CONCURRENT_VIDEO_GENS_PER_USER", 2, 1, 25),
    int("VIDEO_FRAME_IMAGE_MAX_BYTES", 12 * MIB, 64 * KIB, 64 * MIB),
    int("VIDEO_FRAME_TOTAL_MAX_BYTES", 50 * MIB, 64 * KIB, 128 * MIB),
    csv(
        "VIDEO_FRAME_IMAGE_MIME_ALLOWLIST",
        "image/jpeg,image/png,image/webp",
    ),
    csv("VIDEO_OUTPUT_MIME_ALLOWLIST", "video/mp4,video/webm"),
    flag("VIDEO_INTENT_ENABLED", true),
    choice(
        "VIDEO_INTENT_TASK_MODEL_MODE",
        "external",
        &["internal", "external"],
    ),
    choice(
        "VIDEO_INTENT_TASK_MODEL_FALLBACK",
        "other_task_model",
        &["none", "other_task_model"],
    ),
    flag("VIDEO_INTENT_SKIP_WHEN_EMPTY_CHAT", true),
    int("VIDEO_INTENT_MAX_CLARIFICATIONS", 1, 0, 3),
    choice(
        "VIDEO_INTENT_FRAME_EXTRACTION_INDEX",
        "last",
        &["first", "last"],
    ),
    int("VIDEO_INTENT_TIMEOUT_S", 8, 1, 60),
    choice(
        "VIDEO_INTENT_CONFIRM_MODE",
        "on_reference",
        &["always", "on_reference", "low_confidence", "never"],
    ),
    int("VIDEO_INTENT_MAX_CALLS_PER_CHAT", 0, 0, MAX),
    int("VIDEO_INTENT_MAX_CALLS_PER_USER_DAY", 0, 0, MAX),
    flag("VIDEO_INTENT_LOG_DECISIONS", false),
    // Direct uploads and provider routing.
    flag("AUTO_ATTACH_DIRECT_UPLOADS_FILTER", true),
    flag("AUTO_INSTALL_DIRECT_UPLOADS_FILTER", true),
    csv("ADMIN_PROVIDER_ROUTING_MODELS", ""),
    csv("USER_PROVIDER_ROUTING_MODELS", ""),
    flag("AUTO_DEFAULT_PROVIDER_ROUTING_FILTERS", true),
    // Open WebUI's own secret, which the reference reads from the environment to derive its
    // valve encryption key and the HMAC behind `SEND_CACHE_SESSION_ID`. Not a valve there.
    host(secret("WEBUI_SECRET_KEY")),
    // Open WebUI's `FORWARD_USER_INFO_HEADER_JWT_SECRET`: when set, identity comes from a verified
    // `X-OpenWebUI-User-Jwt` (HS256) and the plain identity headers are ignored.
    host(secret("FORWARD_USER_INFO_HEADER_JWT_SECRET")),
    // Key rotation beyond the reference: the key `ARTIFACT_ENCRYPTION_KEY` replaced. Rows sealed
    // under it stay readable; new rows use the current key.
    host(secret("ARTIFACT_ENCRYPTION_KEY_PREVIOUS")),
    // Host settings.
    // Client keys for the front door, comma-separated `name=key` or bare keys; with neither list
    // set the front door is open (loopback only). Plain API clients:
    host(secret("PIPE_API_KEYS")),
    // Keys given only to Open WebUI instances: only requests with one of these may assert Open
    // WebUI identity (user, chat, message, task headers).
    host(secret("OPENWEBUI_API_KEYS")),
    // Exact browser origins (`scheme://host[:port]`) allowed to call the API; a request carrying
    // any other `Origin` is refused. Empty: no browser origin is allowed.
    host(csv("CORS_ALLOWED_ORIGINS", "")),
    host(csv("EGRESS_ALLOWED_HOSTS", "")),
    host(csv("EGRESS_PRIVATE_HOSTS", "")),
    // Front-door body cap. Open WebUI inlines images as base64 data URLs, so a chat body can be
    // tens of MiB; 32 MiB bounds per-request memory and an operator can raise it to 256 MiB.
    host(int("MAX_REQUEST_BODY_BYTES", 32 * MIB, KIB, 256 * MIB)),
    host(int("MAX_QUEUED_REQUESTS", 1000, 0, 100_000)),
    host(int("GUEST_MEMORY_LIMIT_MB", 256, 16, 4096)),
    host(int("GUEST_CPU_BUDGET_MS", 30_000, 100, 600_000)),
    // How often a loaded tool server's tool list is fetched again (0: only at start-up).
    host(int("TOOL_SERVER_REFRESH_SECONDS", 300, 0, 86_400)),
    host(int("HTTP_FIRST_BYTE_TIMEOUT_SECONDS", 120, 1, 3600)),
    host(int("HTTP_MAX_RESPONSE_BYTES", 64 * MIB, KIB, 1024 * MIB)),
    host(int("SHUTDOWN_GRACE_SECONDS", 30, 0, 3600)),
    host(choice(
        "OPENWEBUI_EVENTS",
        "auto",
        &["auto", "always", "never"],
    )),
    host(choice("LOG_FORMAT", "text", &["text", "json"])),
    // Artifact store. The pipe id names the artifact table (`response_items_{PIPE_ID}_{hash8}`);
    // validated as 1 to 32 characters of `[a-z0-9_]` so every derived name fits PostgreSQL's
    // 63-byte identifiers.
    host(text("PIPE_ID", "openrouter_responses")),
    // PostgreSQL DSN (may carry a password): environment only; unset = SQLite in the data dir.
    host(secret("DATABASE_URL")),
    host(int("DB_MAX_CONNECTIONS", 10, 1, 1000)),
    // How long a store call waits for a pooled connection (a dead database answers this fast).
    host(int("DB_ACQUIRE_TIMEOUT_MS", 2000, 50, 60_000)),
    // Per-statement budget of a store call; past it the call answers `timeout`.
    host(int("DB_STATEMENT_TIMEOUT_MS", 5000, 50, 600_000)),
];

/// The spec named `name` (exact canonical spelling, or any case).
pub fn find(name: &str) -> Option<&'static ValveSpec> {
    VALVES.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn valve_names_are_unique_upper_case_and_not_shadowed_by_aliases() {
        let mut seen = BTreeSet::new();
        for spec in VALVES {
            assert_eq!(spec.name, spec.name.to_ascii_uppercase(), "{}", spec.name);
            assert!(seen.insert(spec.name), "duplicate valve {}", spec.name);
        }
        for spec in VALVES {
            for alias in spec.env_aliases {
                assert!(find(alias).is_none(), "alias {alias} is also a valve name");
            }
        }
    }

    #[test]
    fn every_reference_valve_of_reference_md_section_3_is_in_the_table() {
        // The reference's system valve count in REFERENCE.md §3 (BASE_URL ..
        // AUTO_DEFAULT_PROVIDER_ROUTING_FILTERS); a dropped or doubled row changes it.
        let reference = VALVES
            .iter()
            .filter(|s| s.scope == Scope::Reference)
            .count();
        assert_eq!(reference, 193);
        assert_eq!(VALVES.first().map(|s| s.name), Some("BASE_URL"));
        let last_reference = VALVES.iter().rev().find(|s| s.scope == Scope::Reference);
        assert_eq!(
            last_reference.map(|s| s.name),
            Some("AUTO_DEFAULT_PROVIDER_ROUTING_FILTERS")
        );
    }

    #[test]
    fn ranges_are_not_empty_and_enum_defaults_are_canonical_members() {
        for spec in VALVES {
            match (spec.kind, spec.default) {
                (ValveKind::Int { min, max }, DefaultValue::Int(d))
                | (ValveKind::OptInt { min, max }, DefaultValue::Int(d)) => {
                    assert!(min <= d && d <= max, "{}", spec.name);
                }
                (ValveKind::OptInt { min, max }, DefaultValue::Null) => {
                    assert!(min <= max, "{}", spec.name);
                }
                (ValveKind::Float { min, max }, DefaultValue::Float(d)) => {
                    assert!(min <= d && d <= max, "{}", spec.name);
                }
                (ValveKind::Enum { values, synonyms }, DefaultValue::Str(d)) => {
                    assert!(values.contains(&d), "{}", spec.name);
                    for (_, canonical) in synonyms {
                        assert!(values.contains(canonical), "{}", spec.name);
                    }
                }
                (ValveKind::Bool, DefaultValue::Bool(_))
                | (
                    ValveKind::Str | ValveKind::Csv | ValveKind::Url { .. } | ValveKind::Secret,
                    DefaultValue::Str(_),
                ) => {}
                other => panic!("{}: default does not match kind: {other:?}", spec.name),
            }
        }
    }

    #[test]
    fn expectation_text_names_the_range_or_its_open_end() {
        assert_eq!(
            ValveKind::Int { min: 60, max: MAX }.to_string(),
            "must be an integer >= 60"
        );
        assert_eq!(
            ValveKind::Int { min: 1, max: 2000 }.to_string(),
            "must be an integer between 1 and 2000"
        );
        assert_eq!(
            ValveKind::Int {
                min: i64::MIN,
                max: MAX
            }
            .to_string(),
            "must be an integer"
        );
        assert_eq!(
            ValveKind::Float {
                min: 0.0,
                max: f64::MAX
            }
            .to_string(),
            "must be a number >= 0"
        );
        assert_eq!(
            ValveKind::Float {
                min: 0.5,
                max: 24.0
            }
            .to_string(),
            "must be a number between 0.5 and 24"
        );
        assert!(
            ValveKind::OptInt { min: 0, max: 9 }
                .to_string()
                .contains("null")
        );
    }
}
