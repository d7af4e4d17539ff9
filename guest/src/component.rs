//! The only wasm32-specific module: wit-bindgen glue that implements the capability traits of
//! `caps` over the WIT imports (wasi:http through wstd, emit, kv, clocks, random) and exports the
//! `pipe` interface by calling the plain-Rust logic.

use crate::caps::{
    self, BodyStream, EmitError, HttpRequest, HttpResponse, KvError, TransportError,
};
use crate::openrouter::OpenRouterSettings;
use crate::settings::Settings;
use crate::types as core;
use http_body_util::BodyExt;
use std::time::Duration;
use wstd::http::error::ErrorCode;

wit_bindgen::generate!({
    world: "responses-pipe",
    path: "../wit",
    with: {
        "wasi:http/types@0.2.12": wasip2::http::types,
        "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
    },
});

use exports::openwebui::responses_pipe::pipe::{Guest, GuestFailure};
use openwebui::responses_pipe::{crypto, emit, kv, store, tools, types as wit};

struct Component;
export!(Component);

// ---- conversions -------------------------------------------------------------------------

fn error_body(b: core::ErrorBody) -> wit::ErrorBody {
    wit::ErrorBody {
        message: b.message,
        error_type: b.error_type,
        code: b.code,
        http_status: b.http_status,
        retry_after_seconds: b.retry_after_seconds,
        error_id: b.error_id,
    }
}

fn pipe_error(e: core::PipeError) -> wit::PipeError {
    match e {
        core::PipeError::InvalidRequest(b) => wit::PipeError::InvalidRequest(error_body(b)),
        core::PipeError::Upstream(b) => wit::PipeError::Upstream(error_body(b)),
        core::PipeError::Unavailable(b) => wit::PipeError::Unavailable(error_body(b)),
        core::PipeError::Internal(b) => wit::PipeError::Internal(error_body(b)),
    }
}

fn finish(f: core::FinishReason) -> wit::FinishReason {
    match f {
        core::FinishReason::Stop => wit::FinishReason::Stop,
        core::FinishReason::Length => wit::FinishReason::Length,
        core::FinishReason::ToolCalls => wit::FinishReason::ToolCalls,
        core::FinishReason::ContentFilter => wit::FinishReason::ContentFilter,
        core::FinishReason::Error => wit::FinishReason::Error,
    }
}

fn event(e: core::Event) -> wit::Event {
    match e {
        core::Event::TextDelta(s) => wit::Event::TextDelta(s),
        core::Event::ReasoningDelta(s) => wit::Event::ReasoningDelta(s),
        core::Event::ToolCalls(calls) => wit::Event::ToolCalls(
            calls
                .into_iter()
                .map(|c| wit::ToolCall {
                    call_id: c.call_id,
                    name: c.name,
                    arguments_json: c.arguments_json,
                })
                .collect(),
        ),
        core::Event::Citation(c) => wit::Event::Citation(wit::Citation {
            url: c.url,
            title: c.title,
            content: c.content,
        }),
        core::Event::Usage(u) => wit::Event::Usage(wit::Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
            cached_tokens: u.cached_tokens,
            reasoning_tokens: u.reasoning_tokens,
            cost_usd: u.cost_usd,
        }),
        core::Event::OpenWebUiEvent(s) => wit::Event::OpenwebuiEvent(s),
        core::Event::Image(url) => wit::Event::Image(url),
        core::Event::Finish(f) => wit::Event::Finish(finish(f)),
        core::Event::Error(b) => wit::Event::Error(error_body(b)),
    }
}

fn context(c: wit::RequestContext) -> core::RequestContext {
    core::RequestContext {
        request_id: c.request_id,
        user_id: c.user_id,
        user_email: c.user_email,
        user_name: c.user_name,
        user_role: c.user_role,
        chat_id: c.chat_id,
        message_id: c.message_id,
        task: c.task,
        openwebui_caller: c.openwebui_caller,
        cache_session_id: c.cache_session_id,
        received_at_ms: c.received_at_ms,
        key_name: c.key_name,
        openwebui_key: c.openwebui_key,
    }
}

fn kv_error(e: kv::KvError) -> KvError {
    match e {
        kv::KvError::InvalidArgument(s) => KvError::InvalidArgument(s),
        kv::KvError::TooLarge => KvError::TooLarge,
        kv::KvError::Timeout => KvError::Timeout,
        kv::KvError::Unavailable(s) => KvError::Unavailable(s),
        kv::KvError::Other(s) => KvError::Other(s),
    }
}

fn transport_error(e: &wstd::http::Error) -> TransportError {
    match e.downcast_ref::<ErrorCode>() {
        Some(ErrorCode::HttpRequestDenied) => {
            TransportError::Denied("destination not allowed".into())
        }
        Some(ErrorCode::DestinationIpProhibited) => {
            TransportError::Denied("destination address prohibited".into())
        }
        Some(ErrorCode::ConnectionTimeout) => TransportError::Timeout("connecting".into()),
        Some(ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout) => {
            TransportError::Timeout("waiting for the response".into())
        }
        Some(ErrorCode::HttpResponseBodySize(_)) => TransportError::TooLarge,
        Some(
            code @ (ErrorCode::ConnectionRefused
            | ErrorCode::DestinationUnavailable
            | ErrorCode::DestinationNotFound
            | ErrorCode::DnsError(_)
            | ErrorCode::DnsTimeout),
        ) => TransportError::Connect(format!("{code:?}")),
        Some(code) => TransportError::Protocol(format!("{code:?}")),
        None => {
            // A failed body read reaches us only as the host's text (wstd keeps no error code),
            // which can carry a multi-line backtrace: keep its first line, shortened, and
            // recognise the response cap by the words wasmtime-wasi-http uses for it.
            let text = format!("{e:#}");
            let first = text.lines().next().unwrap_or_default();
            if first.contains("body size exceeds limit") {
                TransportError::TooLarge
            } else {
                TransportError::Protocol(first.chars().take(200).collect())
            }
        }
    }
}

// ---- capabilities ------------------------------------------------------------------------

struct HostKv;

impl caps::Kv for HostKv {
    fn get(&self, key: &str, max_bytes: u32) -> Result<Option<Vec<u8>>, KvError> {
        kv::get(key, max_bytes).map_err(kv_error)
    }
    fn set(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), KvError> {
        kv::set(key, value, ttl_ms).map_err(kv_error)
    }
    fn delete(&self, key: &str) -> Result<bool, KvError> {
        kv::delete(key).map_err(kv_error)
    }
    fn lock(&self, name: &str, ttl_ms: u64) -> Result<Option<String>, KvError> {
        kv::lock(name, ttl_ms).map_err(kv_error)
    }
    fn unlock(&self, name: &str, token: &str) -> Result<bool, KvError> {
        kv::unlock(name, token).map_err(kv_error)
    }
}

fn store_error(e: store::StoreError) -> caps::StoreError {
    match e {
        store::StoreError::NotFound => caps::StoreError::NotFound,
        store::StoreError::AccessDenied => caps::StoreError::AccessDenied,
        store::StoreError::InvalidArgument(s) => caps::StoreError::InvalidArgument(s),
        store::StoreError::TooLarge => caps::StoreError::TooLarge,
        store::StoreError::Timeout => caps::StoreError::Timeout,
        store::StoreError::Unavailable(s) => caps::StoreError::Unavailable(s),
        store::StoreError::Other(s) => caps::StoreError::Other(s),
    }
}

fn crypto_error(e: crypto::CryptoError) -> caps::CryptoError {
    match e {
        crypto::CryptoError::NotConfigured => caps::CryptoError::NotConfigured,
        crypto::CryptoError::InvalidRecord => caps::CryptoError::InvalidRecord,
        crypto::CryptoError::UnknownKey => caps::CryptoError::UnknownKey,
        crypto::CryptoError::TooLarge => caps::CryptoError::TooLarge,
    }
}

struct HostStore;
struct HostTable(store::Table);

impl caps::Store for HostStore {
    fn open(&self, name: &str) -> Result<Box<dyn caps::StoreTable + '_>, caps::StoreError> {
        store::open(name)
            .map(|t| Box::new(HostTable(t)) as Box<dyn caps::StoreTable>)
            .map_err(store_error)
    }
}

fn rows_from_host(rows: Vec<store::Row>) -> Vec<caps::Row> {
    rows.into_iter()
        .map(|r| caps::Row {
            id: r.id,
            chat_id: r.chat_id,
            message_id: r.message_id,
            item_type: r.item_type,
            owner: r.owner,
            payload: r.payload,
            created_at_ms: r.created_at_ms,
        })
        .collect()
}

impl caps::StoreTable for HostTable {
    fn put_many(&self, rows: &[caps::Row]) -> Result<(), caps::StoreError> {
        let rows: Vec<store::Row> = rows
            .iter()
            .map(|r| store::Row {
                id: r.id.clone(),
                chat_id: r.chat_id.clone(),
                message_id: r.message_id.clone(),
                item_type: r.item_type.clone(),
                owner: r.owner.clone(),
                payload: r.payload.clone(),
                created_at_ms: r.created_at_ms,
            })
            .collect();
        self.0.put_many(&rows).map_err(store_error)
    }
    fn get_many(&self, ids: &[String], max_bytes: u64) -> Result<Vec<caps::Row>, caps::StoreError> {
        self.0
            .get_many(ids, max_bytes)
            .map(rows_from_host)
            .map_err(store_error)
    }
    fn scan(
        &self,
        after_id: &str,
        limit: u32,
        max_bytes: u64,
    ) -> Result<Vec<caps::Row>, caps::StoreError> {
        self.0
            .scan(after_id, limit, max_bytes)
            .map(rows_from_host)
            .map_err(store_error)
    }
    fn delete(&self, ids: &[String]) -> Result<u64, caps::StoreError> {
        self.0.delete(ids).map_err(store_error)
    }
    fn delete_older_than(&self, cutoff_ms: u64, limit: u32) -> Result<u64, caps::StoreError> {
        self.0
            .delete_older_than(cutoff_ms, limit)
            .map_err(store_error)
    }
}

struct HostCrypto;

impl caps::Crypto for HostCrypto {
    fn enabled(&self) -> bool {
        crypto::enabled()
    }
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, caps::CryptoError> {
        crypto::seal(aad, plaintext).map_err(crypto_error)
    }
    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, caps::CryptoError> {
        crypto::open(aad, sealed).map_err(crypto_error)
    }
}

const HOST_ARTIFACTS: crate::artifacts::Caps<'static> = crate::artifacts::Caps {
    store: &HostStore,
    crypto: &HostCrypto,
};

struct HostEmit;

impl caps::Emit for HostEmit {
    fn send(&mut self, e: core::Event) -> Result<(), EmitError> {
        emit::send(&event(e)).map_err(|e| match e {
            emit::EmitError::TooLarge => EmitError::TooLarge,
            emit::EmitError::Closed => EmitError::Closed,
        })
    }
}

struct HostTools;

fn tool_error(e: wit::ToolError) -> caps::ToolError {
    match e {
        wit::ToolError::NotFound => caps::ToolError::NotFound,
        wit::ToolError::Timeout => caps::ToolError::Timeout,
        wit::ToolError::Unavailable(s) => caps::ToolError::Unavailable(s),
        wit::ToolError::InvalidArgument(s) => caps::ToolError::InvalidArgument(s),
        wit::ToolError::Other(s) => caps::ToolError::Other(s),
    }
}

impl caps::Tools for HostTools {
    fn available(&self) -> Result<Vec<caps::ToolSpec>, caps::ToolError> {
        tools::available()
            .map(|specs| {
                specs
                    .into_iter()
                    .map(|s| caps::ToolSpec {
                        name: s.name,
                        description: s.description,
                        parameters_json: s.parameters_json,
                    })
                    .collect()
            })
            .map_err(tool_error)
    }

    fn invoke(
        &self,
        calls: &[core::ToolCall],
        options: &caps::InvokeOptions,
    ) -> Vec<caps::ToolResult> {
        let wit_calls: Vec<wit::ToolCall> = calls
            .iter()
            .map(|c| wit::ToolCall {
                call_id: c.call_id.clone(),
                name: c.name.clone(),
                arguments_json: c.arguments_json.clone(),
            })
            .collect();
        let opts = tools::InvokeOptions {
            max_parallel: options.max_parallel,
            call_timeout_ms: options.call_timeout_ms,
            batch_timeout_ms: options.batch_timeout_ms,
            idle_timeout_ms: options.idle_timeout_ms,
        };
        tools::invoke(&wit_calls, opts)
            .into_iter()
            .map(|r| caps::ToolResult {
                call_id: r.call_id,
                output: r.output.map_err(tool_error),
            })
            .collect()
    }
}

struct HostEnv;

impl caps::Env for HostEnv {
    fn now_ms(&self) -> u64 {
        let now = wasip2::clocks::wall_clock::now();
        now.seconds.saturating_mul(1000) + u64::from(now.nanoseconds / 1_000_000)
    }
    fn random_u64(&self) -> u64 {
        wasip2::random::random::get_random_u64()
    }
    fn log(&self, line: &str) {
        use std::io::Write;
        // The host captures stderr with a size cap; a full buffer is not worth failing over.
        let _ = writeln!(std::io::stderr(), "{line}");
    }
    async fn sleep_ms(&self, ms: u64) {
        wstd::task::sleep(wstd::time::Duration::from_millis(ms)).await;
    }
}

struct HostUpstream {
    connect_timeout: Duration,
    read_timeout: Duration,
}

struct HostBody(http_body_util::combinators::UnsyncBoxBody<bytes_alias::Bytes, wstd::http::Error>);

mod bytes_alias {
    pub use wstd::http::body::Bytes;
}

impl BodyStream for HostBody {
    async fn next_chunk(&mut self) -> Option<Result<Vec<u8>, TransportError>> {
        loop {
            match self.0.frame().await? {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        return Some(Ok(data.to_vec()));
                    }
                    // Trailers: nothing to relay.
                }
                Err(e) => return Some(Err(transport_error(&e))),
            }
        }
    }
}

impl caps::Upstream for HostUpstream {
    type Body = HostBody;

    async fn send(&self, req: HttpRequest) -> Result<HttpResponse<HostBody>, TransportError> {
        let mut client = wstd::http::Client::new();
        client.set_connect_timeout(self.connect_timeout);
        client.set_first_byte_timeout(self.read_timeout);
        client.set_between_bytes_timeout(self.read_timeout);
        let method = match req.method {
            caps::Method::Get => wstd::http::Method::GET,
            caps::Method::Post => wstd::http::Method::POST,
        };
        let mut builder = wstd::http::Request::builder().method(method).uri(&req.url);
        for (k, v) in &req.headers {
            // The length is the body's own, set below; a caller's value could only disagree.
            if !k.eq_ignore_ascii_case("content-length") {
                builder = builder.header(k.as_str(), v.as_str());
            }
        }
        // The body is whole in memory: declare its length, so it goes out with `Content-Length`
        // instead of chunked (some proxies in front of OpenRouter refuse chunked request bodies;
        // wasi-http and the host's client keep a declared length and enforce it).
        let body = match req.body {
            Some(b) => {
                builder = builder.header("content-length", b.len().to_string());
                wstd::http::Body::from(b)
            }
            None => wstd::http::Body::empty(),
        };
        let request = builder
            .body(body)
            .map_err(|e| TransportError::Protocol(format!("invalid request: {e}")))?;
        let response = client
            .send(request)
            .await
            .map_err(|e| transport_error(&e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (k.as_str().to_string(), v.to_string()))
            })
            .collect();
        Ok(HttpResponse {
            status,
            headers,
            body: HostBody(response.into_body().into_boxed_body()),
        })
    }
}

fn settings(json: &str) -> Result<Settings, wit::PipeError> {
    Settings::parse(json).map_err(|e| {
        let id = crate::errors::error_id(wasip2::random::random::get_random_u64());
        pipe_error(core::PipeError::Internal(crate::errors::body(
            &id,
            500,
            "internal_error",
            Some("bad_settings"),
            &format!("the host sent an unreadable settings document: {e}"),
        )))
    })
}

fn upstream(s: &OpenRouterSettings) -> HostUpstream {
    HostUpstream {
        connect_timeout: Duration::from_secs(s.http_connect_timeout_seconds.max(1)),
        read_timeout: Duration::from_secs(s.http_sock_read_seconds.max(1)),
    }
}

impl Guest for Component {
    fn models(settings_json: String) -> Result<String, wit::PipeError> {
        let s = settings(&settings_json)?;
        let up = upstream(&s.openrouter);
        let mut emit = HostEmit;
        let pipe = crate::chat::Pipe {
            settings: &s,
            upstream: &up,
            kv: &HostKv,
            emit: &mut emit,
            env: &HostEnv,
            artifacts: HOST_ARTIFACTS,
        };
        wstd::runtime::block_on(pipe.models()).map_err(pipe_error)
    }

    fn chat(
        settings_json: String,
        ctx: wit::RequestContext,
        body: Vec<u8>,
    ) -> Result<(), wit::PipeError> {
        let s = settings(&settings_json)?;
        let up = upstream(&s.openrouter);
        let ctx = context(ctx);
        let mut emit = HostEmit;
        let mut pipe = crate::chat::Pipe {
            settings: &s,
            upstream: &up,
            kv: &HostKv,
            emit: &mut emit,
            env: &HostEnv,
            artifacts: HOST_ARTIFACTS,
        };
        wstd::runtime::block_on(pipe.chat_with_tools(&ctx, &body, &HostTools)).map_err(pipe_error)
    }

    fn internal_error_text(
        settings_json: String,
        ctx: wit::RequestContext,
        error_id: String,
        failure: GuestFailure,
    ) -> String {
        let failure = match failure {
            GuestFailure::Trap => "guest_trap",
            GuestFailure::CpuExceeded => "guest_cpu_exceeded",
            GuestFailure::MemoryExceeded => "guest_memory_exceeded",
        };
        let ctx = context(ctx);
        let now_ms = caps::Env::now_ms(&HostEnv);
        match Settings::parse(&settings_json) {
            Ok(s) => {
                crate::chat::internal_error_text(&s.templates, &ctx, &error_id, failure, now_ms)
            }
            // The built-in template, when the document itself cannot be read.
            Err(_) => crate::chat::internal_error_text(
                &crate::templates::TemplateSettings::built_in(),
                &ctx,
                &error_id,
                failure,
                now_ms,
            ),
        }
    }

    fn maintain(settings_json: String) -> Result<(), wit::PipeError> {
        let s = settings(&settings_json)?;
        crate::artifacts::maintain(&s.artifacts, &HostStore, &HostEnv)
            .and_then(|_| {
                crate::artifacts::migrate::migrate(&s.artifacts, &HostStore, &HostCrypto, &HostEnv)
            })
            .map(|_| ())
            .map_err(|e| {
                let id = crate::errors::error_id(wasip2::random::random::get_random_u64());
                pipe_error(core::PipeError::Unavailable(crate::errors::body(
                    &id,
                    503,
                    "service_unavailable",
                    Some("artifact_store_unavailable"),
                    &format!("artifact cleanup failed: {e}"),
                )))
            })
    }
}
