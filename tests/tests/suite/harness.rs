//! Starts a fake OpenRouter and a host wired to it (also in Pipeline mode with a tool server, or
//! with its database behind a fault proxy); captures every log line of the process so tests can
//! check what was (and was not) logged; and holds the helpers every suite shares for sending
//! chats, reading what the fake recorded and reading answers.

use fake_openrouter::fake_tools::openapi::FakeOpenApi;
use fake_openrouter::fault_proxy::FaultProxy;
use fake_openrouter::{FakeConfig, FakeOpenRouter, RecordedRequest};
use responses_pipe_host::app::{App, AppBuilder};
use responses_pipe_host::config::Config;
use responses_pipe_host::egress::resolver::Resolver;
use serde_json::Value;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::oneshot;

/// The OpenRouter key every suite uses; it must never show up in logs or in the guest.
pub const API_KEY: &str = "sk-or-v1-test-SECRET-d9f8e7c6b5a4";

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);
impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Install the capturing subscriber once per test binary (TRACE for our crates).
pub fn logs() -> Arc<Mutex<Vec<u8>>> {
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = LogWriter(buf.clone());
        let _ = tracing_subscriber::fmt()
            .with_env_filter("trace,hyper=info,h2=info,cranelift_codegen=info,wasmtime_cranelift=info,regalloc2=info")
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .try_init();
        buf
    })
    .clone()
}

pub fn logs_text() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

/// A running fake + host pair.
pub struct Harness {
    pub fake: FakeOpenRouter,
    pub app: Arc<App>,
    pub url: String,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    pub server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Every body the host sent to OpenRouter must satisfy OpenRouter's own OpenAPI schema.
        let violations = self.fake.spec_violations();
        if !violations.is_empty() && !std::thread::panicking() {
            panic!(
                "request bodies that break OpenRouter's spec:\n{}",
                violations.join("\n")
            );
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// How to build a harness.
#[derive(Default)]
pub struct Options {
    pub env: Vec<(&'static str, String)>,
    pub component: Option<Vec<u8>>,
    pub resolver: Option<Arc<dyn Resolver>>,
    pub fake: Option<FakeConfig>,
    /// Text of a config file (`--config`), e.g. `[[tool_servers]]` declarations.
    pub config_toml: Option<String>,
    /// Use this data directory (kept by the caller, e.g. to restart a host on the same data)
    /// instead of a fresh temporary one.
    pub data_dir: Option<std::path::PathBuf>,
}

impl Harness {
    pub async fn start() -> Harness {
        Self::with(Options::default()).await
    }

    pub async fn with(opts: Options) -> Harness {
        logs();
        let fake = FakeOpenRouter::start(opts.fake.unwrap_or_else(fake_config))
            .await
            .unwrap();
        let mut env: HashMap<String, String> = HashMap::new();
        env.insert("BASE_URL".into(), fake.base_url());
        env.insert("OPENROUTER_API_KEY".into(), API_KEY.into());
        env.insert("STREAMING_IDLE_FLUSH_MS".into(), "0".into());
        for (k, v) in opts.env {
            env.insert(k.to_string(), v);
        }
        let dir = tempfile::tempdir().unwrap();
        let config_file = opts.config_toml.map(|text| {
            let path = dir.path().join("settings.toml");
            std::fs::write(&path, text).unwrap();
            path
        });
        let config = Config::load(config_file.as_deref(), &|name| env.get(name).cloned()).unwrap();
        let data_dir = opts.data_dir.unwrap_or_else(|| dir.path().to_path_buf());
        let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        let mut builder = AppBuilder::new(config, &data_dir)
            .cache_dir(&tmp.join("component-cache"))
            .cache_key(&tmp.join("component-cache.key"));
        if let Some(c) = opts.component {
            builder = builder.component(c);
        }
        if let Some(r) = opts.resolver {
            builder = builder.resolver(r);
        }
        let app = builder.build().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(responses_pipe_host::server::serve(
            app.clone(),
            listener,
            async move {
                let _ = rx.await;
            },
        ));
        Harness {
            fake,
            app,
            url,
            client: reqwest::Client::new(),
            _dir: dir,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Ask the server to shut down gracefully (in-flight requests finish).
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub fn chat_body(model: &str, text: &str, stream: bool) -> serde_json::Value {
        serde_json::json!({
            "model": model,
            "stream": stream,
            "messages": [{"role": "user", "content": text}],
        })
    }

    pub async fn post_chat(&self, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/chat/completions", self.url))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// The status of `GET /healthz`.
    pub async fn health(&self) -> u16 {
        self.client
            .get(format!("{}/healthz", self.url))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// `GET /readyz` without a key: the status and the JSON report.
    pub async fn ready(&self) -> (u16, Value) {
        self.get_json("/readyz").await
    }

    /// `GET path` without a key: the status and the JSON body (`null` when not JSON).
    async fn get_json(&self, path: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// The `/metrics` page as text.
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Start with these valves set (as environment variables).
    pub async fn with_env(env: &[(&'static str, &str)]) -> Harness {
        Harness::with(Options {
            env: owned(env),
            ..Options::default()
        })
        .await
    }

    /// Start in Pipeline mode with one declared tool server (`declaration`, a `[[tool_servers]]`
    /// entry) listening on loopback `port`, once its `tools` tools are listed, and these valves.
    pub async fn with_tool_server(
        declaration: String,
        port: u16,
        tools: usize,
        env: &[(&'static str, &str)],
    ) -> Harness {
        let mut all = vec![
            ("TOOL_EXECUTION_MODE", "Pipeline".to_string()),
            ("EGRESS_PRIVATE_HOSTS", format!("127.0.0.1:{port}")),
        ];
        all.extend(owned(env));
        let h = Harness::with(Options {
            env: all,
            config_toml: Some(declaration),
            ..Options::default()
        })
        .await;
        // The tool list is fetched at start-up; wait for it rather than race it.
        assert_eq!(h.app.tools.catalog().await.len(), tools);
        h
    }

    /// Start with artifacts stored in the local PostgreSQL through a fault proxy, and these valves.
    pub async fn behind_postgres_proxy(env: &[(&'static str, &str)]) -> (FaultProxy, Harness) {
        let proxy = FaultProxy::start(PG_ADDR.parse().unwrap()).await.unwrap();
        let mut env = owned(env);
        env.push((
            "DATABASE_URL",
            format!("postgres://postgres@{}/test", proxy.addr()),
        ));
        let h = Harness::with(Options {
            env,
            ..Options::default()
        })
        .await;
        (proxy, h)
    }

    /// POST a chat body with extra headers; the status and the body text.
    pub async fn post_with(
        &self,
        body: &serde_json::Value,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let mut request = self
            .client
            .post(format!("{}/v1/chat/completions", self.url))
            .json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let resp = request.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }

    /// POST a chat body with extra headers; the status and the SSE `data:` payloads.
    pub async fn stream_with(
        &self,
        body: &serde_json::Value,
        headers: &[(&str, &str)],
    ) -> (u16, Vec<String>) {
        let (status, text) = self.post_with(body, headers).await;
        (status, sse_data(&text))
    }

    /// Stream a one-message chat with extra headers; the status and the SSE payloads.
    pub async fn stream_chat_with(
        &self,
        model: &str,
        text: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Vec<String>) {
        self.stream_with(&Self::chat_body(model, text, true), headers)
            .await
    }

    /// The paths of the POSTs the fake received, without the `/api/v1` prefix.
    pub fn posted_paths(&self) -> Vec<String> {
        self.fake
            .requests()
            .iter()
            .filter(|r| r.method == "POST")
            .map(|r| r.path.trim_start_matches("/api/v1").to_string())
            .collect()
    }

    /// The JSON bodies of the POSTs to a path ending in `suffix` (`/responses`,
    /// `/chat/completions`), in order.
    pub fn posted_bodies(&self, suffix: &str) -> Vec<serde_json::Value> {
        self.fake
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with(suffix))
            .map(|r| r.json().unwrap())
            .collect()
    }

    /// One streamed chat turn as Open WebUI sends it for `user` in `chat` (with a message id);
    /// the answer text, invisible marker lines included.
    pub async fn chat_turn(
        &self,
        user: &str,
        model: &str,
        chat: &str,
        message: &str,
        messages: &serde_json::Value,
    ) -> String {
        let headers = [
            ("X-OpenWebUI-User-Id", user),
            ("X-OpenWebUI-Chat-Id", chat),
            ("X-OpenWebUI-Message-Id", message),
        ];
        let body = serde_json::json!({"model": model, "stream": true, "messages": messages});
        let (status, chunks) = self.stream_with(&body, &headers).await;
        assert_eq!(status, 200, "{chunks:?}");
        assert_eq!(chunks.last().map(String::as_str), Some("[DONE]"));
        content_of(&chunks)
    }

    /// A streamed chat to `model` with `extra` merged into the body; asserts it was answered.
    pub async fn chat_ok(&self, model: &str, extra: Value, headers: &[(&str, &str)]) -> String {
        let mut body = Self::chat_body(model, "hello", true);
        if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
            b.extend(extra);
        }
        let (status, text) = self.post_with(&body, headers).await;
        assert_eq!(status, 200, "{text}");
        let content = content_of(&sse_data(&text));
        assert!(content.starts_with("echo: "), "{text}");
        content
    }

    /// A one-message chat's status, `Retry-After` header and JSON body (`null` when not JSON).
    pub async fn error_of(&self, model: &str, stream: bool) -> (u16, Option<String>, Value) {
        let resp = self.post_chat(&Self::chat_body(model, "hi", stream)).await;
        let status = resp.status().as_u16();
        let retry = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        (status, retry, resp.json().await.unwrap_or(Value::Null))
    }

    /// `GET /v1/models`: the status and the JSON body (`null` when not JSON).
    pub async fn models(&self) -> (u16, Value) {
        self.get_json("/v1/models").await
    }

    /// The `/v1/models` entries.
    pub async fn listed(&self) -> Vec<Value> {
        let (status, body) = self.models().await;
        assert_eq!(status, 200, "{body}");
        body["data"].as_array().unwrap().clone()
    }

    /// The ids `/v1/models` lists.
    pub async fn listed_ids(&self) -> Vec<String> {
        self.listed()
            .await
            .iter()
            .filter_map(|m| m["id"].as_str().map(str::to_string))
            .collect()
    }

    /// The last `/responses` body sent so far.
    pub fn last_responses(&self) -> Value {
        self.posted_bodies("/responses")
            .pop()
            .expect("a /responses request")
    }

    /// How many POSTs the fake received.
    pub fn post_count(&self) -> usize {
        self.fake
            .requests()
            .iter()
            .filter(|r| r.method == "POST")
            .count()
    }

    /// The first POST the fake received on a path ending with `suffix`, headers included.
    pub fn first_post(&self, suffix: &str) -> RecordedRequest {
        self.fake
            .requests()
            .into_iter()
            .find(|r| r.method == "POST" && r.path.ends_with(suffix))
            .unwrap_or_else(|| panic!("a POST to {suffix}"))
    }

    /// Every body the host sent upstream so far satisfied OpenRouter's OpenAPI request schema.
    pub fn assert_spec_clean(&self) {
        let violations = self.fake.spec_violations();
        assert!(violations.is_empty(), "{violations:#?}");
    }

    /// The body of the last request the fake received on a path ending with `suffix`.
    pub fn last_body(&self, suffix: &str) -> serde_json::Value {
        let req = self
            .fake
            .requests()
            .into_iter()
            .rfind(|r| r.path.ends_with(suffix))
            .unwrap_or_else(|| panic!("a {suffix} request"));
        serde_json::from_slice(&req.body).unwrap()
    }

    /// POST a streaming chat and collect its SSE `data:` payloads.
    pub async fn stream_chat(&self, model: &str, text: &str) -> (u16, Vec<String>) {
        let resp = self.post_chat(&Self::chat_body(model, text, true)).await;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, sse_data(&text))
    }
}

/// The fake OpenRouter every harness starts unless told otherwise: it requires [`API_KEY`],
/// paces `fake/slow` at 20 deltas 40 ms apart, and checks every body against the spec.
pub fn fake_config() -> FakeConfig {
    FakeConfig {
        expected_api_key: Some(API_KEY.to_string()),
        slow_delay_ms: 40,
        slow_deltas: 20,
        validate_spec: true,
    }
}

/// Valves as the owned pairs [`Options::env`] takes.
pub fn owned(env: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    env.iter().map(|(k, v)| (*k, (*v).to_string())).collect()
}

/// The local PostgreSQL (database `test`, user `postgres`) the store suites use.
pub const PG_ADDR: &str = "127.0.0.1:5432";

/// The `[[tool_servers]]` entry for the fake OpenAPI tool server at `url`, named `fake`.
pub fn openapi_server(url: &str) -> String {
    format!(
        "[[tool_servers]]\nname = \"fake\"\nkind = \"openapi\"\nurl = \"{url}\"\nspec = \"/openapi.json\"\n"
    )
}

/// A host in Pipeline mode serving the fake OpenAPI tool server's three tools, with these valves.
pub async fn pipeline(env: &[(&'static str, &str)]) -> (Harness, FakeOpenApi) {
    let fake = FakeOpenApi::start().await.unwrap();
    let h = Harness::with_tool_server(openapi_server(&fake.url()), fake.port(), 3, env).await;
    (h, fake)
}

/// Headers that make the host treat the caller as Open WebUI.
pub const OWUI: [(&str, &str); 2] = [
    ("X-OpenWebUI-User-Id", "user-42"),
    ("X-OpenWebUI-Chat-Id", "chat-7"),
];

/// A chat id no other test (or earlier run against the shared PostgreSQL) uses.
pub fn fresh_chat(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("chat-{tag}-{nanos}")
}

/// The artifact marker ids in an answer (lines `[<20 Crockford chars>]: #`).
pub fn marker_ids(answer: &str) -> Vec<String> {
    answer
        .lines()
        .filter_map(|l| l.strip_prefix('[')?.strip_suffix("]: #"))
        .filter(|id| {
            id.len() == 20
                && id
                    .bytes()
                    .all(|b| b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&b))
        })
        .map(str::to_string)
        .collect()
}

/// The inner objects of the `{"event":{...}}` lines (Open WebUI events).
pub fn owui_events(chunks: &[String]) -> Vec<serde_json::Value> {
    json_chunks(chunks)
        .into_iter()
        .filter_map(|mut c| c.get_mut("event").map(serde_json::Value::take))
        .collect()
}

/// The Open WebUI events of one type.
pub fn events_of_type(chunks: &[String], kind: &str) -> Vec<serde_json::Value> {
    owui_events(chunks)
        .into_iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

/// The descriptions of the status events, in order.
pub fn status_lines(chunks: &[String]) -> Vec<String> {
    events_of_type(chunks, "status")
        .iter()
        .filter_map(|e| e["data"]["description"].as_str().map(str::to_string))
        .collect()
}

/// The `data:` payloads of an SSE body.
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect();
            (!data.is_empty()).then(|| data.join("\n"))
        })
        .collect()
}

/// The answer text of a non-streamed chat completion (which must not be an error).
pub fn message_content(text: &str) -> String {
    let v: Value = serde_json::from_str(text).unwrap();
    assert!(v.get("error").is_none(), "{v}");
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The answer text of a chat body: the joined deltas when streamed, the message when not.
pub fn answer_text(stream: bool, text: &str) -> String {
    if stream {
        content_of(&sse_data(text))
    } else {
        message_content(text)
    }
}

/// The last non-null `usage` object of a stream.
pub fn usage_chunk(chunks: &[String]) -> Value {
    json_chunks(chunks)
        .into_iter()
        .rfind(|c| c.get("usage").is_some_and(|u| !u.is_null()))
        .map(|mut c| c["usage"].take())
        .expect("a usage chunk")
}

/// The `type` of every tool in a request body.
pub fn tool_types(body: &Value) -> Vec<String> {
    body["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["type"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The distinct error ids (runs of exactly 16 lowercase hex digits) in a text.
pub fn error_ids(text: &str) -> Vec<String> {
    let mut ids: Vec<String> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| {
            w.len() == 16
                && w.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        })
        .map(str::to_string)
        .collect();
    ids.dedup();
    ids
}

/// Whether `text` still holds a `{{…}}` tag or a `{name}` placeholder (letters, digits, `_`, `.`).
pub fn has_template_syntax(text: &str) -> bool {
    text.contains("{{")
        || text.split('{').skip(1).any(|rest| {
            rest.split_once('}').is_some_and(|(name, _)| {
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            })
        })
}

/// The guest's log lines reach the host's log when the call ends, which can be just after the
/// caller read the last byte: wait (bounded) until `needle` shows up.
pub async fn wait_for_log(needle: &str) -> bool {
    for _ in 0..500 {
        if logs_text().contains(needle) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

/// Join the `delta.content` of chunks.
pub fn content_of(chunks: &[String]) -> String {
    field_of(chunks, "content")
}

pub fn field_of(chunks: &[String], field: &str) -> String {
    chunks
        .iter()
        .filter_map(|c| serde_json::from_str::<serde_json::Value>(c).ok())
        .filter_map(|v| v["choices"][0]["delta"][field].as_str().map(str::to_string))
        .collect()
}

/// The parsed JSON chunks (without `[DONE]`).
pub fn json_chunks(chunks: &[String]) -> Vec<serde_json::Value> {
    chunks
        .iter()
        .filter_map(|c| serde_json::from_str(c).ok())
        .collect()
}
