//! The table of every setting, one row each, in the Python pipe's order with the host's own
//! settings last. A row is built from a short constructor (`flag`, `int`, `choice`, …) and a few
//! builder calls: who reads it (`.read_by_guest()`, `.read_by_host()`, `.read_by_both()`, or
//! `host(...)` for a setting of this server), whether it is built (`.not_built()`,
//! `.safety_not_built()`, `.ignored("why")`), what it does (`.doc("…")`), and, when our default
//! differs from the Python pipe's, why (`.deviates("…")`). The tests below keep the table honest.
//!
//! Ranges and enum spellings are the Python pipe's. Where it gives no bound the table says so with
//! `i64::MIN`/`i64::MAX` rather than inventing one. Message templates and Fusion prompts default
//! to the empty string, meaning "the built-in text".

use crate::{DefaultValue, Scope, Side, ValveKind, ValveSpec};

// Short constructors keep each row compact.

const fn spec(name: &'static str, kind: ValveKind, default: DefaultValue) -> ValveSpec {
    ValveSpec::new(name, kind, default)
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
const fn aliased(s: ValveSpec, env_aliases: &'static [&'static str]) -> ValveSpec {
    s.aliases(env_aliases)
}
/// A setting of this server (not of the Python pipe), read by the host only.
const fn host(mut s: ValveSpec) -> ValveSpec {
    s.scope = Scope::Host;
    s.side = Side::Host;
    s
}

const MAX: i64 = i64::MAX;
const KIB: i64 = 1024;
const MIB: i64 = 1024 * 1024;

const EFFORTS: &[&str] = &["none", "minimal", "low", "medium", "high", "xhigh"];
const ALL_ONLY_EXCLUDE: &[&str] = &["all", "only", "exclude"];

/// The usage line's icons for time, cost, total, input, output, cached and reasoning.
pub const DEFAULT_ICON_SET: &str = "⧗,$,⇅,▲,▼,↺,▽";

// Why the settings that have no meaning here are ignored.
const OWUI_FILTERS: &str = "it installs or switches on Open WebUI filter functions, which only a pipe running inside Open WebUI can do; this server runs beside Open WebUI, and per-chat switches are request fields here";
const OWUI_STORAGE: &str = "it concerns Open WebUI's own file storage, which only a pipe running inside Open WebUI can use; files and URLs in a request go to OpenRouter as sent";
const OWUI_DATABASE: &str = "it writes model entries into Open WebUI's database, which this server cannot reach; it describes its models in /v1/models instead";
const PY_QUEUES: &str = "it sizes a queue inside the Python pipe; the component reads the upstream stream and writes the response in one pass, without such queues";
const PY_TIMING: &str = "it instruments the Python pipe's functions; here request timings are in the log lines and /metrics";

/// Every setting, in the Python pipe's order, host settings last.
pub static VALVES: &[ValveSpec] = &[
    // Connection and auth.
    aliased(
        spec(
            "BASE_URL",
            ValveKind::Url { allow_empty: false },
            DefaultValue::Str("https://openrouter.ai/api/v1"),
        ),
        &["OPENROUTER_API_BASE_URL"],
    )
    .read_by_both()
    .doc("OpenRouter API root (or a compatible gateway). Its `host:port` is always on the egress allowlist, and only requests to it carry the OpenRouter key."),
    choice(
        "DEFAULT_LLM_ENDPOINT",
        "responses",
        &["responses", "chat_completions"],
    )
    .read_by_guest()
    .doc("Endpoint a request goes to unless a force list, a preset or the automatic fallback decides otherwise."),
    csv("FORCE_CHAT_COMPLETIONS_MODELS", "")
        .read_by_guest()
        .doc("Comma-separated model id globs (`*`, `?`; slug or dotted form) always sent to `/chat/completions`."),
    csv("FORCE_RESPONSES_MODELS", "")
        .read_by_guest()
        .doc("Comma-separated model id globs always sent to `/responses`; wins over `FORCE_CHAT_COMPLETIONS_MODELS`."),
    flag("AUTO_FALLBACK_CHAT_COMPLETIONS", true)
        .read_by_guest()
        .doc("When `/responses` answers that it does not serve the model, replay the request on `/chat/completions` (only before any output reached the caller)."),
    aliased(secret("API_KEY"), &["OPENROUTER_API_KEY"])
        .read_by_host()
        .doc("OpenRouter API key. The host adds it to requests to `BASE_URL`'s host only; it never enters the component."),
    // The Python pipe accepts any string and ignores one without a scheme; refusing it at
    // start-up tells the operator instead of silently using the default referer.
    spec(
        "HTTP_REFERER_OVERRIDE",
        ValveKind::Url { allow_empty: true },
        DefaultValue::Str(""),
    )
    .read_by_guest()
    .doc("`HTTP-Referer` sent to OpenRouter for app attribution (a full http(s) URL); empty sends the project's URL."),
    int("HTTP_CONNECT_TIMEOUT_SECONDS", 10, 1, MAX)
        .read_by_both()
        .doc("Connect timeout (TCP and TLS) of upstream requests. The host enforces it; the component asks for it on each request."),
    opt_int("HTTP_TOTAL_TIMEOUT_SECONDS", 1, MAX)
        .read_by_host()
        .doc("Total time one upstream request may take; null means no total limit (long streams are bounded by `HTTP_SOCK_READ_SECONDS` instead)."),
    int("HTTP_SOCK_READ_SECONDS", 300, 1, MAX)
        .read_by_both()
        .doc("Longest wait between two bytes of an upstream response."),
    // Remote downloads.
    int("REMOTE_DOWNLOAD_MAX_RETRIES", 3, 0, 10)
        .not_built()
        .doc("Remote downloads (not built; URLs in messages go to OpenRouter as sent): retries of one download."),
    int("REMOTE_DOWNLOAD_INITIAL_RETRY_DELAY_SECONDS", 5, 1, 60)
        .not_built()
        .doc("Remote downloads (not built): first delay between retries, doubled after each."),
    int("REMOTE_DOWNLOAD_MAX_RETRY_TIME_SECONDS", 45, 5, 300)
        .not_built()
        .doc("Remote downloads (not built): total time spent retrying one download."),
    int("REMOTE_FILE_MAX_SIZE_MB", 50, 1, 500)
        .not_built()
        .doc("Remote downloads (not built): largest file downloaded."),
    flag("SAVE_REMOTE_FILE_URLS", true)
        .ignored(OWUI_STORAGE)
        .doc("Copy files a message references by URL into Open WebUI's file storage."),
    flag("SAVE_FILE_DATA_CONTENT", true)
        .ignored(OWUI_STORAGE)
        .doc("Copy inline file data of a message into Open WebUI's file storage."),
    int("BASE64_MAX_SIZE_MB", 50, 1, 500)
        .not_built()
        .doc("Largest inline base64 payload the pipe decodes (not built: inline data is passed on undecoded, bounded by `MAX_REQUEST_BODY_BYTES`)."),
    int("IMAGE_UPLOAD_CHUNK_BYTES", MIB, 64 * KIB, 8 * MIB)
        .ignored(OWUI_STORAGE)
        .doc("Read size when inlining images kept in Open WebUI's file storage."),
    int("VIDEO_MAX_SIZE_MB", 100, 1, 1000)
        .not_built()
        .doc("Video (not built): largest inline or stored video read."),
    aliased(
        text("FALLBACK_STORAGE_EMAIL", "openrouter-pipe@system.local"),
        &["OPENROUTER_STORAGE_USER_EMAIL"],
    )
    .ignored(OWUI_STORAGE)
    .doc("E-mail of the Open WebUI user that owns files uploaded without a chat user."),
    aliased(
        text("FALLBACK_STORAGE_NAME", "OpenRouter Pipe Storage"),
        &["OPENROUTER_STORAGE_USER_NAME"],
    )
    .ignored(OWUI_STORAGE)
    .doc("Display name of that Open WebUI user."),
    aliased(
        text("FALLBACK_STORAGE_ROLE", "pending"),
        &["OPENROUTER_STORAGE_USER_ROLE"],
    )
    .ignored(OWUI_STORAGE)
    .doc("Role given to that Open WebUI user when it is created."),
    flag("ENABLE_SSRF_PROTECTION", true)
        .safety_not_built()
        .doc("Refuse remote fetches to private and internal addresses. The host's egress gate always does so for every outgoing request (`EGRESS_PRIVATE_HOSTS` names exceptions), which the default describes; turning protection off is not built, so `false` stops the start-up."),
    flag("ALLOW_INSECURE_HTTP", false)
        .not_built()
        .doc("Remote downloads (not built): allow plain `http://` downloads. Which hosts the component may reach over http is decided by the egress allowlist."),
    csv("ALLOW_INSECURE_HTTP_HOSTS", "")
        .not_built()
        .doc("Remote downloads (not built): hosts allowed for plain `http://` downloads."),
    flag("ALLOW_UNKNOWN_SIZE_CLOUD_READS", false)
        .ignored(OWUI_STORAGE)
        .doc("Allow reads from Open WebUI's cloud file storage without a declared size."),
    // Models.
    csv("MODEL_ID", "auto")
        .read_by_guest()
        .doc("Comma-separated model allowlist (OpenRouter slugs or the dotted form), or `auto` for the whole catalog."),
    int("MODEL_CATALOG_REFRESH_SECONDS", 3600, 60, MAX)
        .read_by_guest()
        .doc("How long the model catalog is cached; a failed refresh serves the stale list and retries with backoff (5 s doubling, at most 160 s)."),
    choice("NEW_MODEL_ACCESS_CONTROL", "admins", &["public", "admins"])
        .ignored("it sets access on model entries the pipe writes into Open WebUI's database; Open WebUI itself decides who sees a connection's models (Admin Settings, Models)")
        .doc("Access given to model entries created for new models."),
    choice("FREE_MODEL_FILTER", "all", ALL_ONLY_EXCLUDE)
        .read_by_guest()
        .doc("List `all` models, `only` free ones, or `exclude` free ones; a filtered-out model is refused with the reason named."),
    choice("TOOL_CALLING_FILTER", "all", ALL_ONLY_EXCLUDE)
        .read_by_guest()
        .doc("List `all` models, `only` those that call tools, or `exclude` them; a filtered-out model is refused with the reason named."),
    flag("ZDR_MODELS_ONLY", false)
        .read_by_guest()
        .doc("List only models with a zero-data-retention endpoint (OpenRouter's ZDR list)."),
    flag("ZDR_ENFORCE", false)
        .read_by_guest()
        .doc("Send `provider.zdr=true` on every request and refuse models without a ZDR endpoint."),
    flag("ALLOW_USER_ZDR_OVERRIDE", true)
        .read_by_guest()
        .doc("Honour a request's `zdr` field asking for ZDR routing of that chat."),
    csv("VARIANT_MODELS", "")
        .read_by_guest()
        .doc("Comma-separated `base:variant` entries listed as extra models (`base:nitro`; `base:preset/slug` becomes `base@preset/slug`)."),
    // Reasoning and caching.
    flag("ENABLE_REASONING", true)
        .read_by_guest()
        .doc("Ask models that can reason for their reasoning."),
    choice(
        "THINKING_OUTPUT_MODE",
        "open_webui",
        &["open_webui", "status", "both"],
    )
    .read_by_guest()
    .doc("Where Open WebUI shows reasoning: `open_webui` (the reasoning box), `status` (status lines) or `both`."),
    flag("ENABLE_ANTHROPIC_INTERLEAVED_THINKING", true)
        .read_by_guest()
        .doc("Send Anthropic's interleaved-thinking beta header for Claude models."),
    flag("ENABLE_ANTHROPIC_PROMPT_CACHING", true)
        .read_by_guest()
        .doc("Mark Claude requests for prompt caching (`cache_control`)."),
    choice("ANTHROPIC_PROMPT_CACHE_TTL", "5m", &["5m", "1h"])
        .read_by_guest()
        .doc("Lifetime of Claude's prompt cache entries."),
    flag("SEND_CACHE_SESSION_ID", true)
        .read_by_guest()
        .doc("Send `session_id` = HMAC-SHA256(`WEBUI_SECRET_KEY`, chat id), computed by the host, so OpenRouter keeps a chat on one provider and its caches warm; needs the secret and a forwarded chat id."),
    flag("ENABLE_PLUGIN_SYSTEM", false)
        .ignored("it switches on the Python pipe's in-process plugins (such as its dashboard); this server has no plugin system")
        .doc("Master switch of the Python pipe's plugins."),
    flag("AUTO_CONTEXT_TRIMMING", true)
        .read_by_guest()
        .doc("Add OpenRouter's `context-compression` plugin so an over-long conversation is trimmed; off sends `truncation: disabled` unless the request chose."),
    choice("REASONING_EFFORT", "medium", EFFORTS)
        .read_by_guest()
        .doc("Default reasoning effort; a request's own `reasoning_effort` wins, and an effort the model rejects is lowered to the nearest one it takes."),
    choice(
        "REASONING_SUMMARY_MODE",
        "auto",
        &["auto", "concise", "detailed", "disabled"],
    )
    .read_by_guest()
    .doc("How detailed the reasoning summary is."),
    int("GEMINI_THINKING_BUDGET", 1024, 0, 65536)
        .read_by_guest()
        .doc("Base thinking-token budget of Gemini 2.5 models, scaled by the effort; 0 turns their thinking off."),
    choice(
        "PERSIST_REASONING_TOKENS",
        "conversation",
        &["disabled", "next_reply", "conversation"],
    )
    .read_by_guest()
    .doc("Store reasoning items of chats for replay: not at all, for the next reply only (deleted after it), or for the whole conversation."),
    choice("TASK_MODEL_REASONING_EFFORT", "low", EFFORTS)
        .read_by_guest()
        .doc("Reasoning effort of Open WebUI's housekeeping tasks (titles, tags, follow-ups)."),
    // Tools and artifacts.
    choice(
        "TOOL_EXECUTION_MODE",
        "Pipeline",
        &["Pipeline", "Open-WebUI"],
    )
    .read_by_guest()
    .doc("`Pipeline`: the component also offers the host's tool servers and runs their calls; `Open-WebUI`: every tool call is handed back to the caller."),
    flag("SHOW_TOOL_CARDS", false)
        .read_by_guest()
        .doc("Show Open WebUI a collapsible card per finished tool or server-tool call."),
    flag("PERSIST_TOOL_RESULTS", false)
        .read_by_guest()
        .doc("Store tool calls and their outputs with the chat so later turns replay them."),
    secret("ARTIFACT_ENCRYPTION_KEY")
        .read_by_host()
        .doc("Seals stored artifacts with AES-256-GCM under HKDF-SHA256(salt `responses-pipe/artifact-encryption/v1`, info `responses-pipe artifact aes-256-gcm key`); each record carries a version byte, a 4-byte key id (HKDF info `responses-pipe artifact key id`) and a random 96-bit nonce, and seals are counted per key id in `responses_pipe_artifact_seals_total`. The key is part of the artifact table's name: a new key starts a new table unless the old one is kept in `ARTIFACT_ENCRYPTION_KEY_PREVIOUS`."),
    flag("ENCRYPT_ALL", true)
        .read_by_guest()
        .doc("With `ARTIFACT_ENCRYPTION_KEY` set: seal every stored artifact; off seals reasoning only."),
    flag("ENABLE_LZ4_COMPRESSION", true)
        .read_by_guest()
        .doc("Compress stored payloads with LZ4 (kept only when shorter)."),
    int("MIN_COMPRESS_BYTES", 0, 0, MAX)
        .read_by_guest()
        .doc("Smallest payload that is compressed."),
    flag("ENABLE_STRICT_TOOL_CALLING", true)
        .read_by_guest()
        .doc("Offer the host's tools with strict JSON schemas (Pipeline mode)."),
    // The Python pipe sets no bound on this one.
    int("MAX_FUNCTION_CALL_LOOPS", 25, i64::MIN, MAX)
        .read_by_guest()
        .doc("Model turns of the tool loop (at least 1); then pending calls are skipped and the model is asked once more for an answer."),
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
    )
    .read_by_host()
    .doc("Log level (`WARN` and `FATAL` are accepted too; `CRITICAL` logs as errors). `RUST_LOG`, when set, wins."),
    flag("SESSION_LOG_STORE_ENABLED", false)
        .safety_not_built()
        .doc("Write an encrypted log archive per turn. Session-log archives are not built, so `true` stops the start-up: an operator who turns it on relies on those archives."),
    text("SESSION_LOG_DIR", "session_logs")
        .not_built()
        .doc("Session-log archives (not built): where archives are written."),
    secret("SESSION_LOG_ZIP_PASSWORD")
        .not_built()
        .doc("Session-log archives (not built): the archives' password."),
    int("SESSION_LOG_RETENTION_DAYS", 90, 1, MAX)
        .not_built()
        .doc("Session-log archives (not built): days an archive is kept."),
    int("SESSION_LOG_CLEANUP_INTERVAL_SECONDS", 3600, 60, MAX)
        .not_built()
        .doc("Session-log archives (not built): time between clean-ups of old archives."),
    choice(
        "SESSION_LOG_ZIP_COMPRESSION",
        "lzma",
        &["stored", "deflated", "bzip2", "lzma"],
    )
    .not_built()
    .doc("Session-log archives (not built): archive compression."),
    opt_int("SESSION_LOG_ZIP_COMPRESSLEVEL", 0, 9)
        .not_built()
        .doc("Session-log archives (not built): compression level for `deflated` and `bzip2`."),
    int("SESSION_LOG_MAX_LINES", 20000, 100, 200_000)
        .not_built()
        .doc("Session-log archives (not built): log records kept per request."),
    choice("SESSION_LOG_FORMAT", "jsonl", &["jsonl", "text", "both"])
        .not_built()
        .doc("Session-log archives (not built): format of the records."),
    int("SESSION_LOG_ASSEMBLER_INTERVAL_SECONDS", 30, 1, MAX)
        .not_built()
        .doc("Session-log archives (not built): time between assembler runs."),
    int("SESSION_LOG_ASSEMBLER_JITTER_SECONDS", 10, 0, MAX)
        .not_built()
        .doc("Session-log archives (not built): random delay added per worker."),
    int("SESSION_LOG_ASSEMBLER_BATCH_SIZE", 25, 1, 500)
        .not_built()
        .doc("Session-log archives (not built): turns assembled per run."),
    int("SESSION_LOG_STALE_FINALIZE_SECONDS", 43200, 60, MAX)
        .not_built()
        .doc("Session-log archives (not built): idle time after which an unfinished turn is archived."),
    int("SESSION_LOG_LOCK_STALE_SECONDS", 1800, 60, MAX)
        .not_built()
        .doc("Session-log archives (not built): age after which an assembler lock is taken over."),
    flag("ENABLE_TIMING_LOG", false)
        .ignored(PY_TIMING)
        .doc("Write function timings to a file."),
    text("TIMING_LOG_FILE", "logs/timing.jsonl")
        .ignored(PY_TIMING)
        .doc("Where those timings go."),
    // Concurrency and streaming.
    int("MAX_CONCURRENT_REQUESTS", 200, 1, 2000)
        .read_by_host()
        .doc("Requests running at once; `MAX_QUEUED_REQUESTS` more may wait, beyond that `503` with `Retry-After`."),
    int("SSE_WORKERS_PER_REQUEST", 4, 1, 8)
        .ignored(PY_QUEUES)
        .doc("Parser tasks per request."),
    int("STREAMING_CHUNK_QUEUE_MAXSIZE", 0, 0, MAX)
        .ignored(PY_QUEUES)
        .doc("Bound of the raw chunk queue (0: unbounded)."),
    int("STREAMING_EVENT_QUEUE_MAXSIZE", 0, 0, MAX)
        .ignored(PY_QUEUES)
        .doc("Bound of the parsed event queue (0: unbounded)."),
    int("STREAMING_CHUNK_QUEUE_WARN_SIZE", 1000, 100, MAX)
        .ignored(PY_QUEUES)
        .doc("Chunk backlog that logs a warning."),
    int("STREAMING_EVENT_QUEUE_WARN_SIZE", 1000, 100, MAX)
        .ignored(PY_QUEUES)
        .doc("Event backlog that logs a warning."),
    int("STREAMING_DELTA_CHAR_LIMIT", 256, 0, MAX)
        .read_by_guest()
        .doc("Above 0, text and reasoning deltas are merged up to this many bytes before they are sent; 0 sends each delta as it comes."),
    int("STREAMING_IDLE_FLUSH_MS", 30, 0, MAX)
        .read_by_guest()
        .doc("Merged deltas are sent after this long without a new event."),
    int("STREAMING_NAGLE_MIN_FLUSH_CHARS", 3, 1, MAX)
        .read_by_guest()
        .doc("At the end of a burst of events, send what is merged once it is at least this long."),
    int("MIDDLEWARE_STREAM_QUEUE_MAXSIZE", 0, 0, MAX)
        .ignored(PY_QUEUES)
        .doc("Bound of the queue to Open WebUI's middleware (0: unbounded)."),
    float(
        "MIDDLEWARE_STREAM_QUEUE_PUT_TIMEOUT_SECONDS",
        1.0,
        0.0,
        f64::MAX,
    )
    .ignored(PY_QUEUES)
    .doc("Wait for room in that queue before an item is dropped."),
    // Error templates.
    builtin("OPENROUTER_ERROR_TEMPLATE")
        .read_by_guest()
        .doc("Answer shown to Open WebUI for an OpenRouter rejection without a template of its own (400 and other 4xx); empty uses the built-in text. Templates are Markdown with `{variable}` placeholders and `{{#if variable}}…{{/if}}` blocks."),
    builtin("ENDPOINT_OVERRIDE_CONFLICT_TEMPLATE")
        .read_by_guest()
        .doc("Answer when a model needs one endpoint but a force list sends it to the other; empty uses the built-in text."),
    builtin("DIRECT_UPLOAD_FAILURE_TEMPLATE")
        .read_by_guest()
        .not_built()
        .doc("Answer when files uploaded directly to OpenRouter cannot be used. Direct uploads are not built, so no request can fail that way and this text is never shown; a non-empty value warns at start-up."),
    builtin("AUTHENTICATION_ERROR_TEMPLATE")
        .read_by_guest()
        .doc("Answer when OpenRouter refuses the key (401) or none is configured; empty uses the built-in text."),
    builtin("INSUFFICIENT_CREDITS_TEMPLATE")
        .read_by_guest()
        .doc("Answer when the OpenRouter account is out of credits (402); empty uses the built-in text."),
    builtin("RATE_LIMIT_TEMPLATE")
        .read_by_guest()
        .doc("Answer when OpenRouter rate-limits the request (429); empty uses the built-in text."),
    builtin("SERVER_TIMEOUT_TEMPLATE")
        .read_by_guest()
        .doc("Answer when OpenRouter reports a timeout (408); empty uses the built-in text."),
    builtin("PAYLOAD_TOO_LARGE_TEMPLATE")
        .read_by_guest()
        .doc("Answer when OpenRouter finds the request too large (413); empty uses the built-in text."),
    text("SUPPORT_EMAIL", "")
        .read_by_guest()
        .doc("Support address offered in error answers (`{support_email}`)."),
    text("SUPPORT_URL", "")
        .read_by_guest()
        .doc("Support link offered in error answers (`{support_url}`)."),
    builtin("NETWORK_TIMEOUT_TEMPLATE")
        .read_by_guest()
        .doc("Answer when an upstream request times out on our side; empty uses the built-in text."),
    builtin("CONNECTION_ERROR_TEMPLATE")
        .read_by_guest()
        .doc("Answer when OpenRouter cannot be reached; empty uses the built-in text."),
    builtin("SERVICE_ERROR_TEMPLATE")
        .read_by_guest()
        .doc("Answer when OpenRouter fails (5xx); empty uses the built-in text."),
    builtin("INTERNAL_ERROR_TEMPLATE")
        .read_by_guest()
        .doc("Answer when the pipe itself fails, including a component that runs out of CPU or memory; empty uses the built-in text."),
    builtin("MODEL_RESTRICTED_TEMPLATE")
        .read_by_guest()
        .doc("Answer when the allowlist, a filter or ZDR refuses the model; empty uses the built-in text."),
    builtin("STREAM_INTERRUPTED_TEMPLATE")
        .read_by_guest()
        .doc("Text appended when the stream ends before the model finished; empty uses the built-in text."),
    // Tool execution and breakers.
    int("MAX_PARALLEL_TOOLS_GLOBAL", 200, 1, 2000)
        .read_by_host()
        .doc("Tool calls running at once in the whole host."),
    int("MAX_PARALLEL_TOOLS_PER_REQUEST", 5, 1, 50)
        .read_by_both()
        .doc("Tool calls running at once per request (the component asks for this many; the host caps it)."),
    int("BREAKER_MAX_FAILURES", 5, 1, 50)
        .read_by_guest()
        .doc("Failures within `BREAKER_WINDOW_SECONDS` that open a breaker: per user and tool (the tool is skipped), per user for requests (refused with 429) and per user for the artifact database (persistence skipped)."),
    int("BREAKER_WINDOW_SECONDS", 60, 5, 900)
        .read_by_guest()
        .doc("Sliding window of the breakers; a breaker closes once its failures have left the window."),
    int("BREAKER_HISTORY_SIZE", 5, 1, 200)
        .read_by_guest()
        .doc("Failures the artifact-database breaker remembers per user (the latest ones). Keep it at least `BREAKER_MAX_FAILURES`: a shorter history never reaches the threshold, so that breaker never opens."),
    int("TOOL_BATCH_CAP", 4, 1, 32)
        .read_by_guest()
        .doc("Most calls of the same tool run together as one batch (a call that declares a dependency runs on its own)."),
    int("TOOL_OUTPUT_RETENTION_TURNS", 10, 0, MAX)
        .read_by_guest()
        .doc("Recent turns whose tool outputs are sent in full; older outputs are shortened when the conversation nears the model's context."),
    int("TOOL_TIMEOUT_SECONDS", 60, 1, 600)
        .read_by_both()
        .doc("Most one tool call may take."),
    int("TOOL_BATCH_TIMEOUT_SECONDS", 120, 1, MAX)
        .read_by_both()
        .doc("Most one batch of tool calls may take (never less than `TOOL_TIMEOUT_SECONDS`)."),
    opt_int("TOOL_IDLE_TIMEOUT_SECONDS", 1, MAX)
        .read_by_both()
        .doc("Cut a tool call when its server sends nothing for this long; null: no idle limit."),
    float("TOOL_SHUTDOWN_TIMEOUT_SECONDS", 10.0, 0.0, f64::MAX)
        .read_by_host()
        .doc("On shutdown, time running tool calls get to finish."),
    // Redis, costs, artifact cleanup.
    flag("ENABLE_REDIS_CACHE", false)
        .not_built()
        .deviates("the Python pipe defaults to `true`. Redis mode is not built, so our default says what happens; `true` warns at start-up.")
        .doc("Artifact write-behind through Redis (not built: end-of-turn rows go straight to the database). Shared kv between hosts is `REDIS_URL`."),
    int("REDIS_CACHE_TTL_SECONDS", 600, 60, 3600)
        .not_built()
        .doc("Redis mode (not built): lifetime of cached artifacts."),
    int("REDIS_PENDING_WARN_THRESHOLD", 100, 1, 10000)
        .not_built()
        .doc("Redis mode (not built): write-behind queue length that logs a warning."),
    int("REDIS_FLUSH_FAILURE_LIMIT", 5, 1, 50)
        .not_built()
        .doc("Redis mode (not built): failed flushes in a row before a critical alert."),
    flag("COSTS_REDIS_DUMP", false)
        .read_by_host()
        .doc("After each answer or task with usage, write one cost snapshot to Redis: key `costs:<PIPE_ID>:<user id>:<uuid4>:<epoch seconds>`, value `{guid, email, name, model, usage, ts, chat_id?, message_id?, kind: generation|task}`, expiring after `COSTS_REDIS_TTL_SECONDS`. Needs `REDIS_URL` (the host does not start without it). A request without a user id, email or name, or without usage, writes none (counted in `responses_pipe_cost_snapshots_total`)."),
    int("COSTS_REDIS_TTL_SECONDS", 900, 60, 3600)
        .read_by_host()
        .doc("Lifetime of a cost snapshot in Redis."),
    int("ARTIFACT_CLEANUP_DAYS", 90, 1, 365)
        .read_by_guest()
        .doc("Stored artifacts not read for this many days are deleted by maintenance."),
    float("ARTIFACT_CLEANUP_INTERVAL_HOURS", 1.0, 0.5, 24.0)
        .read_by_host()
        .doc("Time between maintenance passes, plus a random delay of up to 10 minutes or a quarter of the interval; the first pass runs 30 to 60 s after start."),
    int("DB_BATCH_SIZE", 10, 5, 20)
        .not_built()
        .doc("Redis write-behind (not built): rows per flush to the database. The component writes each turn's rows in one batch."),
    // Output shaping and identifiers.
    flag("USE_MODEL_MAX_OUTPUT_TOKENS", false)
        .read_by_guest()
        .doc("On: send the request's own output limit, else the model's maximum from the catalog. Off: send no limit, so the provider's maximum applies."),
    flag("SHOW_FINAL_USAGE_STATUS", true)
        .read_by_guest()
        .doc("Show Open WebUI a final status line with time, speed, cost and tokens."),
    choice("FINAL_USAGE_STATUS_STYLE", "text", &["text", "icons"])
        .read_by_guest()
        .doc("Text labels or icons in that line."),
    csv("USAGE_STATUS_ICON_SET", DEFAULT_ICON_SET)
        .read_by_guest()
        .doc("Seven comma-separated icons for time, cost, total, input, output, cached and reasoning tokens; a malformed set uses the default."),
    flag("SEND_END_USER_ID", false)
        .read_by_guest()
        .doc("Send the user to OpenRouter as `user` and `metadata.user_id`."),
    choice("END_USER_ID_SOURCE", "id", &["id", "email", "name"])
        .read_by_guest()
        .doc("What `user` carries: the Open WebUI user's id, e-mail or name."),
    flag("SEND_SESSION_ID", false)
        .read_by_guest()
        .not_built()
        .doc("Put the caller's session id into `metadata.session_id`. It can act only once a session id reaches the pipe, and none does: Open WebUI forwards no session id to model connections (no header, no custom-header placeholder), so nothing is sent and `true` warns at start-up. `SEND_CHAT_ID` and `SEND_CACHE_SESSION_ID` cover the chat."),
    flag("SEND_CHAT_ID", false)
        .read_by_guest()
        .doc("Put the forwarded chat id into `metadata.chat_id`."),
    flag("SEND_MESSAGE_ID", false)
        .read_by_guest()
        .doc("Put the message id (the `X-OpenWebUI-Message-Id` custom header) into `metadata.message_id`."),
    int("MAX_INPUT_IMAGES_PER_REQUEST", 5, 1, 20)
        .read_by_guest()
        .doc("Most images sent per request; extra ones are dropped with a notice."),
    choice(
        "IMAGE_INPUT_SELECTION",
        "user_then_assistant",
        &["user_turn_only", "user_then_assistant"],
    )
    .read_by_guest()
    .doc("`user_then_assistant`: when the latest user message has no image, reuse the images of the latest assistant message; `user_turn_only`: only the user's."),
    // Model metadata sync and server tools.
    flag("UPDATE_MODEL_IMAGES", true)
        .ignored(OWUI_DATABASE)
        .doc("Copy model icons into Open WebUI."),
    flag("UPDATE_MODEL_CAPABILITIES", true)
        .ignored(OWUI_DATABASE)
        .doc("Copy model capabilities into Open WebUI."),
    flag("UPDATE_MODEL_DESCRIPTIONS", false)
        .ignored(OWUI_DATABASE)
        .doc("Copy model descriptions into Open WebUI."),
    flag("ENABLE_WEB_SEARCH", true)
        .read_by_guest()
        .doc("Make OpenRouter's web-search server tool available to models that call tools; it is attached only to chats that ask for web tools (`\"openrouter_web_search\": true`) or, with `AUTO_DEFAULT_WEB_TOOLS_FILTER`, to every chat (a request's `disable_native_websearch` turns it off)."),
    flag("ENABLE_WEB_FETCH", true)
        .read_by_guest()
        .doc("Make OpenRouter's web-fetch server tool available to models that call tools; attached like the web-search tool."),
    flag("ENABLE_DATETIME", true)
        .read_by_guest()
        .doc("Make OpenRouter's date-and-time server tool available to models that call tools; attached like the web-search tool."),
    flag("ENABLE_ADVISOR", false)
        .not_built()
        .deviates("the Python pipe defaults to `true`. Offering the advisor tool is not built, so our default says what happens; `true` warns at start-up.")
        .doc("Offer OpenRouter's advisor server tool (a further paid model call)."),
    flag("ENABLE_SUBAGENT", false)
        .not_built()
        .deviates("the Python pipe defaults to `true`. Offering the subagent tool is not built, so our default says what happens; `true` warns at start-up.")
        .doc("Offer OpenRouter's subagent server tool (a further paid model call)."),
    flag("ENABLE_SEARCH_MODELS", false)
        .not_built()
        .deviates("the Python pipe defaults to `true`. Offering the model-search tool is not built, so our default says what happens; `true` warns at start-up.")
        .doc("Offer OpenRouter's model-catalog search server tool."),
    flag("ENABLE_IMAGE_GENERATION", false)
        .not_built()
        .deviates("the Python pipe defaults to `true`. Offering the image-generation tool is not built, so our default says what happens; `true` warns at start-up.")
        .doc("Offer OpenRouter's image-generation server tool (images a model produces are delivered either way)."),
    flag("ENABLE_VIDEO_GENERATION", false)
        .not_built()
        .deviates("the Python pipe defaults to `true`. Video generation is not built, so our default says what happens; `true` warns at start-up.")
        .doc("List video-generation models and run video jobs."),
    // Companion filters.
    flag("AUTO_INSTALL_WEB_TOOLS_FILTER", true)
        .ignored(OWUI_FILTERS)
        .doc("Install the web-tools filter in Open WebUI."),
    flag("AUTO_ATTACH_WEB_TOOLS_FILTER", true)
        .ignored(OWUI_FILTERS)
        .doc("Attach the web-tools filter to the pipe's models."),
    flag("AUTO_DEFAULT_WEB_TOOLS_FILTER", false)
        .read_by_guest()
        .doc("Attach the available web tools (`ENABLE_WEB_SEARCH`, `ENABLE_WEB_FETCH`, `ENABLE_DATETIME`) to every chat that does not send `\"openrouter_web_search\": false`; off, only chats sending `\"openrouter_web_search\": true` get them."),
    flag("AUTO_INSTALL_IMAGE_GEN_FILTER", true)
        .ignored(OWUI_FILTERS)
        .doc("Install the image-generation filter in Open WebUI."),
    flag("AUTO_ATTACH_IMAGE_GEN_FILTER", true)
        .ignored(OWUI_FILTERS)
        .doc("Attach the image-generation filter."),
    flag("ENABLE_OPENROUTER_IMAGE_GENERATION", true)
        .not_built()
        .doc("List models that output images. They are always listed and their images delivered; hiding them is not built, so `false` warns at start-up."),
    flag("AUTO_INSTALL_IMAGE_FILTERS", true)
        .ignored(OWUI_FILTERS)
        .doc("Install the per-family image filters in Open WebUI."),
    flag("AUTO_ATTACH_IMAGE_FILTERS", true)
        .ignored(OWUI_FILTERS)
        .doc("Attach the image filters to matching models."),
    flag("AUTO_DEFAULT_IMAGE_FILTERS", true)
        .ignored(OWUI_FILTERS)
        .doc("Switch the image filters on by default."),
    flag("AUTO_INSTALL_VIDEO_FILTERS", true)
        .ignored(OWUI_FILTERS)
        .doc("Install the per-model video filters in Open WebUI."),
    flag("AUTO_ATTACH_VIDEO_FILTERS", true)
        .ignored(OWUI_FILTERS)
        .doc("Attach the video filters."),
    flag("AUTO_DEFAULT_VIDEO_FILTERS", true)
        .ignored(OWUI_FILTERS)
        .doc("Switch the video filters on by default."),
    // Fusion.
    flag("ENABLE_OPENROUTER_FUSION", true)
        .safety_not_built()
        .doc("Master switch of OpenRouter Fusion. Fusion runs (the `openrouter:fusion` tool, the `fusion` plugin, the `openrouter/fusion` model) are always handled, which the default describes; switching Fusion off is not built, and `false` stops the start-up, since an operator uses it to keep users from starting multi-model runs."),
    flag("AUTO_INSTALL_FUSION_FILTER", true)
        .ignored(OWUI_FILTERS)
        .doc("Install the Fusion filter in Open WebUI."),
    flag("AUTO_ATTACH_FUSION_FILTER", true)
        .ignored(OWUI_FILTERS)
        .doc("Attach the Fusion filter to the Fusion model."),
    flag("AUTO_DEFAULT_FUSION_FILTER", true)
        .ignored(OWUI_FILTERS)
        .doc("Switch the Fusion filter on by default for the Fusion model."),
    choice("FUSION_BACKEND", "openrouter", &["openrouter", "internal"])
        .safety_not_built()
        .deviates("the Python pipe defaults to `internal`, its own Fusion engine, which is not built here. Our default is the engine OpenRouter hosts, the one this server uses, so a default start does not claim a local engine.")
        .doc("Fusion engine: `openrouter` (hosted by OpenRouter, the one built) or `internal` (the pipe's own panel, judge and synthesis: not built, so `internal` stops the start-up)."),
    builtin("FUSION_PANEL_SYSTEM_PROMPT")
        .not_built()
        .doc("Internal Fusion engine (not built): system prompt of each panel member."),
    builtin("FUSION_JUDGE_SYSTEM_PROMPT")
        .not_built()
        .doc("Internal Fusion engine (not built): system prompt of the judge."),
    builtin("FUSION_SYNTHESIS_SYSTEM_PROMPT")
        .not_built()
        .doc("Internal Fusion engine (not built): system prompt of the final synthesis."),
    // Video generation.
    float("VIDEO_INITIAL_POLL_DELAY_SECONDS", 5.0, 0.0, 60.0)
        .not_built()
        .doc("Video generation (not built): delay before a job is first polled."),
    float("VIDEO_POLL_INTERVAL_SECONDS", 5.0, 1.0, 60.0)
        .not_built()
        .doc("Video generation (not built): base time between polls."),
    float("VIDEO_POLL_BACKOFF_FACTOR", 1.2, 1.0, 4.0)
        .not_built()
        .doc("Video generation (not built): growth of the poll interval."),
    float("VIDEO_POLL_INTERVAL_MAX_SECONDS", 20.0, 1.0, 120.0)
        .not_built()
        .doc("Video generation (not built): longest time between polls."),
    int("VIDEO_MAX_POLL_TIME_SECONDS", 600, 30, 7200)
        .not_built()
        .doc("Video generation (not built): how long a job is polled before giving up."),
    int("VIDEO_STATUS_POLL_MAX_ERRORS", 5, 1, 25)
        .not_built()
        .doc("Video generation (not built): failed polls in a row before giving up."),
    int("REMOTE_VIDEO_MAX_SIZE_MB", 500, 1, 2048)
        .not_built()
        .doc("Video generation (not built): largest generated video downloaded."),
    // The Python pipe's field declarations give these three their ranges.
    int("VIDEO_DOWNLOAD_CHUNK_SIZE", MIB, 64 * KIB, 8 * MIB)
        .not_built()
        .doc("Video generation (not built): download read size in bytes."),
    int("MAX_CONCURRENT_VIDEO_GENS", 2, 1, 100)
        .not_built()
        .doc("Video generation (not built): jobs running at once per process."),
    int("MAX_CONCURRENT_VIDEO_GENS_PER_USER", 2, 1, 25)
        .not_built()
        .doc("Video generation (not built): jobs running at once per user."),
    int("VIDEO_FRAME_IMAGE_MAX_BYTES", 12 * MIB, 64 * KIB, 64 * MIB)
        .not_built()
        .doc("Video generation (not built): largest frame image."),
    int("VIDEO_FRAME_TOTAL_MAX_BYTES", 50 * MIB, 64 * KIB, 128 * MIB)
        .not_built()
        .doc("Video generation (not built): largest total of frame images."),
    csv(
        "VIDEO_FRAME_IMAGE_MIME_ALLOWLIST",
        "image/jpeg,image/png,image/webp",
    )
    .not_built()
    .doc("Video generation (not built): accepted frame image types."),
    csv("VIDEO_OUTPUT_MIME_ALLOWLIST", "video/mp4,video/webm")
        .not_built()
        .doc("Video generation (not built): accepted video types."),
    flag("VIDEO_INTENT_ENABLED", true)
        .not_built()
        .doc("Video generation (not built): classify whether a message asks for a video. Only matters once video generation exists, so the default does not warn."),
    choice(
        "VIDEO_INTENT_TASK_MODEL_MODE",
        "external",
        &["internal", "external"],
    )
    .not_built()
    .doc("Video generation (not built): which Open WebUI task model classifies."),
    choice(
        "VIDEO_INTENT_TASK_MODEL_FALLBACK",
        "other_task_model",
        &["none", "other_task_model"],
    )
    .not_built()
    .doc("Video generation (not built): what classifies when that model is unavailable."),
    flag("VIDEO_INTENT_SKIP_WHEN_EMPTY_CHAT", true)
        .not_built()
        .doc("Video generation (not built): skip classifying the first message of a chat. Only matters once video generation exists, so the default does not warn."),
    int("VIDEO_INTENT_MAX_CLARIFICATIONS", 1, 0, 3)
        .not_built()
        .doc("Video generation (not built): clarifying questions asked at most."),
    choice(
        "VIDEO_INTENT_FRAME_EXTRACTION_INDEX",
        "last",
        &["first", "last"],
    )
    .not_built()
    .doc("Video generation (not built): which frame is reused."),
    int("VIDEO_INTENT_TIMEOUT_S", 8, 1, 60)
        .not_built()
        .doc("Video generation (not built): classifier timeout."),
    choice(
        "VIDEO_INTENT_CONFIRM_MODE",
        "on_reference",
        &["always", "on_reference", "low_confidence", "never"],
    )
    .not_built()
    .doc("Video generation (not built): when a disclosure footer is shown."),
    int("VIDEO_INTENT_MAX_CALLS_PER_CHAT", 0, 0, MAX)
        .not_built()
        .doc("Video generation (not built): classifier calls per chat (0: unlimited)."),
    int("VIDEO_INTENT_MAX_CALLS_PER_USER_DAY", 0, 0, MAX)
        .not_built()
        .doc("Video generation (not built): classifier calls per user and day (0: unlimited)."),
    flag("VIDEO_INTENT_LOG_DECISIONS", false)
        .not_built()
        .doc("Video generation (not built): log each classification."),
    // Direct uploads and provider routing.
    flag("AUTO_ATTACH_DIRECT_UPLOADS_FILTER", true)
        .ignored(OWUI_FILTERS)
        .doc("Attach the direct-uploads filter to models that take files."),
    flag("AUTO_INSTALL_DIRECT_UPLOADS_FILTER", true)
        .ignored(OWUI_FILTERS)
        .doc("Install the direct-uploads filter in Open WebUI."),
    csv("ADMIN_PROVIDER_ROUTING_MODELS", "")
        .safety_not_built()
        .doc("Models whose provider routing the administrator enforces. Not built, so a non-empty list stops the start-up: an operator uses it to restrict which providers serve those models. (A request's own `openrouter_provider_*` fields work.)"),
    csv("USER_PROVIDER_ROUTING_MODELS", "")
        .not_built()
        .doc("Models whose users get a provider-routing filter. Not built as a filter (any caller may send `openrouter_provider_order`, `_only` and `_ignore` fields); a non-empty list warns at start-up."),
    flag("AUTO_DEFAULT_PROVIDER_ROUTING_FILTERS", true)
        .ignored(OWUI_FILTERS)
        .doc("Switch the provider-routing filters on in new chats."),
    // Open WebUI's own secret, which the Python pipe reads from the environment to derive its
    // valve encryption key and the HMAC behind `SEND_CACHE_SESSION_ID`. Not a valve there.
    host(secret("WEBUI_SECRET_KEY"))
        .doc("Open WebUI's secret: the host derives the `session_id` of `SEND_CACHE_SESSION_ID` from it. It never enters the component."),
    // Open WebUI's `FORWARD_USER_INFO_HEADER_JWT_SECRET`: when set, identity comes from a verified
    // `X-OpenWebUI-User-Jwt` (HS256) and the plain identity headers are ignored.
    host(secret("FORWARD_USER_INFO_HEADER_JWT_SECRET"))
        .doc("Open WebUI's secret for forwarded identity: when set, only a verified `X-OpenWebUI-User-Jwt` (HS256) identifies the user and the plain identity headers are ignored."),
    // Key rotation beyond the Python pipe: the key `ARTIFACT_ENCRYPTION_KEY` replaced. Rows sealed
    // under it stay readable; new rows use the current key.
    host(secret("ARTIFACT_ENCRYPTION_KEY_PREVIOUS"))
        .doc("Key rotation: the key `ARTIFACT_ENCRYPTION_KEY` replaced. Its table stays readable while it is set, and maintenance moves its rows to the current key's table; rows under a key the host no longer holds are skipped (`unknown-key`)."),
    // Host settings.
    // Client keys for the front door, comma-separated `name=key` or bare keys; with neither list
    // set the front door is open (loopback only).
    host(secret("PIPE_API_KEYS"))
        .doc("Keys of plain API clients, comma-separated `name=key` entries or bare keys (named `key-1`, `key-2`, …), sent as `Authorization: Bearer …`. Open WebUI identity headers from these keys are ignored. With neither this nor `OPENWEBUI_API_KEYS` set, the host listens on loopback only and every local caller is trusted."),
    host(secret("OPENWEBUI_API_KEYS"))
        .doc("Keys given only to Open WebUI instances (`name=key` or bare keys, named `openwebui-1`, …): only requests with one of these may assert the user, chat, message and task headers. A key in both lists stops the start-up."),
    host(csv("CORS_ALLOWED_ORIGINS", ""))
        .doc("Exact browser origins (`scheme://host[:port]`) allowed to call the API; a request carrying any other `Origin` is refused (403). Empty: no browser origin is allowed."),
    host(csv("EGRESS_ALLOWED_HOSTS", ""))
        .doc("Extra `host:port` entries the component may reach (public addresses only)."),
    host(csv("EGRESS_PRIVATE_HOSTS", ""))
        .doc("`host:port` entries that may resolve to private or loopback addresses; `BASE_URL` gets this by itself only when it names an IP literal or `localhost`."),
    // Front-door body cap. Open WebUI inlines images as base64 data URLs, so a chat body can be
    // tens of MiB; 32 MiB bounds per-request memory and an operator can raise it to 256 MiB.
    host(int("MAX_REQUEST_BODY_BYTES", 32 * MIB, KIB, 256 * MIB))
        .doc("Largest request body (`413` above). Open WebUI inlines images, so chat bodies can be tens of MiB."),
    host(int("MAX_QUEUED_REQUESTS", 1000, 0, 100_000))
        .doc("Requests that may wait for a free slot beyond `MAX_CONCURRENT_REQUESTS`; more are answered `503` with `Retry-After`."),
    // Front-door time and size bounds: no client, slow or hostile, can hold the host's
    // connections, memory, admission queue or instances longer than these allow.
    host(int("MAX_QUEUE_WAIT_SECONDS", 30, 1, 3600))
        .doc("Longest a request waits in the admission queue for a free slot; then `503` with `Retry-After`."),
    host(int("REQUEST_TIMEOUT_SECONDS", 900, 1, 86_400))
        .doc("Wall-clock cap of one request once admitted (the component's run, streaming included), independent of the CPU budget; beyond it the request ends with a `request_timeout` error."),
    host(int("CLIENT_WRITE_TIMEOUT_SECONDS", 30, 1, 3600))
        .doc("A write to a client that makes no progress for this long (a client that stopped reading) fails; the request then ends as if the client had disconnected."),
    host(int("CLIENT_HEADER_TIMEOUT_SECONDS", 30, 1, 3600))
        .doc("Time a client has to send a request's headers (slowloris); the connection is closed after it."),
    host(int("CLIENT_BODY_TIMEOUT_SECONDS", 60, 1, 3600))
        .doc("Time a client has to send a whole request body; `408` after it."),
    host(int("MAX_CONNECTIONS", 4096, 1, 1_000_000))
        .doc("Open client connections at once (streams and idle keep-alive connections); a connection beyond it is answered `503` and closed."),
    host(int("MAX_INFLIGHT_BODY_BYTES", 512 * MIB, KIB, 64 * 1024 * MIB))
        .doc("Total bytes of request bodies being read at once over all connections; a body that would go beyond it is answered `503` with `Retry-After`. At least `MAX_REQUEST_BODY_BYTES`."),
    host(int("GUEST_MEMORY_LIMIT_MB", 256, 16, 4096))
        .doc("Memory cap of the component, per request."),
    host(int("GUEST_CPU_BUDGET_MS", 30_000, 100, 600_000))
        .doc("CPU time the component may spend per call (time waiting on OpenRouter does not count)."),
    // How often a loaded tool server's tool list is fetched again (0: only at start-up).
    host(int("TOOL_SERVER_REFRESH_SECONDS", 300, 0, 86_400))
        .doc("How often a loaded tool server's tool list is fetched again; 0 fetches it only at start-up."),
    host(int("HTTP_FIRST_BYTE_TIMEOUT_SECONDS", 120, 1, 3600))
        .doc("Time allowed for the head of an upstream response."),
    host(int("HTTP_MAX_RESPONSE_BYTES", 64 * MIB, KIB, 1024 * MIB))
        .doc("Largest upstream response body."),
    // The parser refuses a longer line or event while it arrives (an endless line from upstream
    // would otherwise be buffered up to the response cap). 32 MiB leaves room for a finished
    // response that repeats several generated images.
    host(int("SSE_MAX_EVENT_BYTES", 32 * MIB, 64 * KIB, 1024 * MIB))
        .read_by_guest()
        .doc("Largest line or event of OpenRouter's event stream; a longer one ends the answer with a size error as soon as it passes this. `HTTP_MAX_RESPONSE_BYTES` still caps the whole stream."),
    host(int("SHUTDOWN_GRACE_SECONDS", 30, 0, 3600))
        .doc("On SIGTERM or Ctrl-C, time in-flight requests get to finish."),
    host(choice(
        "OPENWEBUI_EVENTS",
        "auto",
        &["auto", "always", "never"],
    ))
    .doc("Write Open WebUI `{\"event\":…}` lines into the stream: `auto` (when Open WebUI identity headers arrive), `always` or `never`."),
    host(choice("LOG_FORMAT", "text", &["text", "json"]))
        .doc("Log lines as text or as one JSON object each."),
    // Artifact store. The pipe id names the artifact table (`response_items_{PIPE_ID}_{hash8}`);
    // validated as 1 to 32 characters of `[a-z0-9_]` so every derived name fits PostgreSQL's
    // 63-byte identifiers.
    host(text("PIPE_ID", "openrouter_responses"))
        .doc("Names the artifact table (`response_items_{PIPE_ID}_{hash8}`): 1 to 32 characters of `a-z`, `0-9` and `_`. Pipes sharing a database need different ids."),
    // PostgreSQL DSN (may carry a password): environment only; unset = SQLite in the data dir.
    host(secret("DATABASE_URL"))
        .doc("PostgreSQL for artifacts (`postgres://user:password@host:5432/db`, add `?sslmode=require` for TLS); unset: SQLite in `<data dir>/artifacts.sqlite3`. Only the backend kind and host are logged."),
    host(int("DB_MAX_CONNECTIONS", 10, 1, 1000))
        .doc("Artifact database pool size (SQLite uses at most 4)."),
    // How long a store call waits for a pooled connection (a dead database answers this fast).
    host(int("DB_ACQUIRE_TIMEOUT_MS", 2000, 50, 60_000))
        .doc("How long a store call waits for a pooled connection; a database that is down answers `unavailable` after this."),
    // Per-statement budget of a store call; past it the call answers `timeout`.
    host(int("DB_STATEMENT_TIMEOUT_MS", 5000, 50, 600_000))
        .doc("Statement budget of one store call; past it the call answers `timeout`."),
    // Shared kv on Redis (URL may carry a password): environment only; unset = in-memory kv.
    host(secret("REDIS_URL"))
        .doc("Redis (or a Redis-compatible service) for the shared kv of many hosts: breakers, the catalog cache and its refresh lock, counters and locks (`redis://[:password@]host:6379/0`, `rediss://` for TLS). Keys start with `PIPE_ID`, every value has a TTL. Unset: kv in this process's memory. While Redis is unreachable the host serves kv from memory and returns to Redis by itself. Only the backend kind and host are logged."),
    host(int("REDIS_TIMEOUT_MS", 500, 10, 60_000))
        .doc("Budget of one Redis command and of connecting to Redis; past it the command is served from the in-memory kv and Redis is probed in the background until it answers."),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Status, find};
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
    fn every_valve_of_the_python_pipe_is_in_the_table() {
        // The Python pipe's system valves, BASE_URL .. AUTO_DEFAULT_PROVIDER_ROUTING_FILTERS; a
        // dropped or doubled row changes the count.
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
    fn every_row_says_what_it_does() {
        let missing: Vec<&str> = VALVES
            .iter()
            .filter(|s| s.doc.trim().is_empty())
            .map(|s| s.name)
            .collect();
        assert!(
            missing.is_empty(),
            "add `.doc(\"…\")` to these rows of settings/src/valves.rs: {missing:?}"
        );
        for spec in VALVES {
            if let Status::Ignored(reason) = spec.status {
                assert!(
                    !reason.trim().is_empty(),
                    "{}: ignored without a reason",
                    spec.name
                );
            }
            if let Some(why) = spec.deviation {
                assert!(!why.trim().is_empty(), "{}: empty deviation", spec.name);
            }
        }
    }

    #[test]
    fn every_row_says_who_reads_it_consistently_with_its_status() {
        for spec in VALVES {
            match spec.status {
                // A built setting is read by someone.
                Status::Built => assert_ne!(
                    spec.side,
                    Side::Neither,
                    "{}: built but read by nobody",
                    spec.name
                ),
                // Nothing reads a setting that has no meaning here.
                Status::Ignored(_) => assert_eq!(spec.side, Side::Neither, "{}", spec.name),
                // A setting of an unbuilt feature may already be read by the code that exists
                // (SEND_SESSION_ID, DIRECT_UPLOAD_FAILURE_TEMPLATE), but never by the host: the
                // host refuses or warns about it instead.
                Status::NotBuilt | Status::SafetyNotBuilt => {
                    assert!(!spec.side.host_reads(), "{}", spec.name);
                }
            }
            if spec.is_secret() {
                assert!(
                    !spec.side.guest_reads(),
                    "{}: a secret never reaches the component",
                    spec.name
                );
            }
            if spec.scope == Scope::Host {
                assert!(
                    spec.status.is_built(),
                    "{}: the host's own settings are built",
                    spec.name
                );
            }
        }
    }

    #[test]
    fn defaults_that_name_an_unbuilt_feature_are_recorded_deviations() {
        let deviations: Vec<&str> = VALVES
            .iter()
            .filter(|s| s.deviation.is_some())
            .map(|s| s.name)
            .collect();
        assert_eq!(
            deviations,
            [
                "ENABLE_REDIS_CACHE",
                "ENABLE_ADVISOR",
                "ENABLE_SUBAGENT",
                "ENABLE_SEARCH_MODELS",
                "ENABLE_IMAGE_GENERATION",
                "ENABLE_VIDEO_GENERATION",
                "FUSION_BACKEND",
            ]
        );
        assert_eq!(
            find("FUSION_BACKEND").map(|s| s.default),
            Some(DefaultValue::Str("openrouter"))
        );
        for name in &deviations[..6] {
            assert_eq!(
                find(name).map(|s| s.default),
                Some(DefaultValue::Bool(false)),
                "{name}"
            );
        }
    }

    #[test]
    fn the_unbuilt_settings_an_operator_relies_on_for_safety_stop_the_start_up() {
        let safety: Vec<&str> = VALVES
            .iter()
            .filter(|s| s.status == Status::SafetyNotBuilt)
            .map(|s| s.name)
            .collect();
        assert_eq!(
            safety,
            [
                "ENABLE_SSRF_PROTECTION",
                "SESSION_LOG_STORE_ENABLED",
                "ENABLE_OPENROUTER_FUSION",
                "FUSION_BACKEND",
                "ADMIN_PROVIDER_ROUTING_MODELS",
            ]
        );
    }

    #[test]
    fn the_icon_set_default_is_the_one_constant() {
        assert_eq!(
            find("USAGE_STATUS_ICON_SET").map(|s| s.default),
            Some(DefaultValue::Str(DEFAULT_ICON_SET))
        );
        assert_eq!(DEFAULT_ICON_SET.split(',').count(), 7);
    }
}
