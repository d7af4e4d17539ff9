//! MCP tool servers over streamable HTTP: a small JSON-RPC 2.0 client.
//!
//! Why not a crate: the maintained Rust SDK (`rmcp`) brings its own HTTP client (reqwest) for
//! streamable HTTP; every tool-server request here must go through the egress gate's pooled
//! checked-address client (policy check, checked DNS answers, refusal counters, timeouts, byte
//! caps), and the part of MCP the host needs is four messages. So this module speaks them itself:
//!
//! - `initialize` (protocol version, client info), keeping the `Mcp-Session-Id` the server
//!   returns, then the `notifications/initialized` notification;
//! - `tools/list` (following `nextCursor`, bounded), and `tools/call`;
//! - every message is a POST with `Accept: application/json, text/event-stream`; the answer is
//!   read as one JSON document or as an SSE stream in which the response with our id is picked
//!   out from any notifications or requests the server interleaves;
//! - a 404 to a request that carried a session id means the server closed the session: the
//!   client initialises once more and resends (the server did not run a request it answered
//!   404); a second 404 reports the server as no longer available.
//!
//! Not supported: server-to-client requests (sampling, elicitation: ignored), the standalone GET
//! stream, resumption with `Last-Event-ID`, and batches.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use serde_json::{Map, Value, json};

use super::transport::{self, AuthHeader, Failure, MAX_TOOL_OUTPUT_BYTES, Outgoing};
use crate::bindings::types::ToolError;
use crate::egress::client::EgressClient;

/// The protocol revision the host asks for.
pub const PROTOCOL_VERSION: &str = "2025-06-18";
/// Most `tools/list` pages followed.
const MAX_LIST_PAGES: usize = 20;
/// Largest JSON-RPC answer read (an SSE stream counts all its bytes).
const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

/// One tool a server lists.
pub struct ListedTool {
    pub name: String,
    pub description: String,
    pub schema: Value,
}

#[derive(Clone, Default)]
struct Session {
    ready: bool,
    id: Option<String>,
    version: Option<String>,
    generation: u64,
}

/// What the transport needs for one exchange.
pub struct Link<'a> {
    pub client: &'a EgressClient,
    pub auth: Option<&'a AuthHeader>,
    pub idle: Option<Duration>,
}

/// Why a POST did not produce a result.
enum PostError {
    /// 404 to a request carrying a session id.
    SessionGone,
    Failed(Failure),
}

impl From<Failure> for PostError {
    fn from(f: Failure) -> Self {
        Self::Failed(f)
    }
}

/// The client of one MCP server (one session, shared by every request of the host).
pub struct McpClient {
    url: url::Url,
    session: tokio::sync::Mutex<Session>,
    next_id: AtomicU64,
}

impl McpClient {
    pub fn new(url: url::Url) -> Self {
        Self {
            url,
            session: tokio::sync::Mutex::new(Session::default()),
            next_id: AtomicU64::new(1),
        }
    }

    /// Every tool the server lists.
    pub async fn list_tools(&self, link: &Link<'_>) -> Result<Vec<ListedTool>, Failure> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let params = match &cursor {
                Some(c) => json!({ "cursor": c }),
                None => json!({}),
            };
            let result = self.request(link, "tools/list", params).await?;
            for tool in result
                .get("tools")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(name) = tool.get("name").and_then(Value::as_str) else {
                    continue;
                };
                let schema = tool
                    .get("inputSchema")
                    .filter(|s| s.is_object())
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
                tools.push(ListedTool {
                    name: name.to_owned(),
                    description: tool
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    schema,
                });
            }
            cursor = result
                .get("nextCursor")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        Ok(tools)
    }

    /// Call a tool; its text content is the output, `isError` a tool error.
    pub async fn call(
        &self,
        link: &Link<'_>,
        name: &str,
        args: &Map<String, Value>,
    ) -> Result<String, Failure> {
        let result = self
            .request(
                link,
                "tools/call",
                json!({ "name": name, "arguments": Value::Object(args.clone()) }),
            )
            .await?;
        let text = content_text(&result);
        if result.get("isError").and_then(Value::as_bool) == Some(true) {
            return Err(Failure::new(
                ToolError::Other(transport::excerpt(&text)),
                "error",
            ));
        }
        Ok(cut(text))
    }

    /// Send a request in the current session (initialising one first if needed); a session the
    /// server closed is re-initialised once.
    async fn request(
        &self,
        link: &Link<'_>,
        method: &str,
        params: Value,
    ) -> Result<Value, Failure> {
        let mut reinitialised = false;
        loop {
            let session = self.ensure_session(link).await?;
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
            match self.post(link, &session, &message, Some(id)).await {
                Ok(result) => return Ok(result),
                Err(PostError::Failed(f)) => return Err(f),
                Err(PostError::SessionGone) => {
                    self.invalidate(session.generation).await;
                    if reinitialised {
                        return Err(Failure::new(
                            ToolError::Unavailable(
                                "the MCP server closed the session; it is no longer available"
                                    .to_owned(),
                            ),
                            "session_closed",
                        ));
                    }
                    tracing::info!(url.host = ?self.url.host_str(), "MCP session closed by the server; initialising again");
                    reinitialised = true;
                }
            }
        }
    }

    async fn invalidate(&self, generation: u64) {
        let mut session = self.session.lock().await;
        if session.generation == generation {
            session.ready = false;
            session.id = None;
        }
    }

    /// The current session, initialising one if there is none. Concurrent callers wait for the
    /// same initialisation.
    async fn ensure_session(&self, link: &Link<'_>) -> Result<Session, Failure> {
        let mut session = self.session.lock().await;
        if session.ready {
            return Ok(session.clone());
        }
        let fresh = Session {
            generation: session.generation + 1,
            ..Session::default()
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let init = json!({
            "jsonrpc": "2.0",
            "id": id,
            "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "responses-pipe", "version": env!("CARGO_PKG_VERSION")}
            }
        });
        let (result, session_id) = match self.exchange(link, &fresh, &init, Some(id)).await {
            Ok(answer) => answer,
            Err(PostError::Failed(f)) => return Err(f),
            Err(PostError::SessionGone) => {
                return Err(Failure::new(
                    ToolError::Unavailable("the MCP server refused to initialise".to_owned()),
                    "unavailable",
                ));
            }
        };
        let mut next = Session {
            ready: true,
            id: session_id,
            version: result
                .get("protocolVersion")
                .and_then(Value::as_str)
                .map(str::to_owned),
            generation: fresh.generation,
        };
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        if let Err(PostError::Failed(f)) = self.exchange(link, &next, &note, None).await {
            return Err(f);
        }
        next.ready = true;
        *session = next.clone();
        Ok(next)
    }

    async fn post(
        &self,
        link: &Link<'_>,
        session: &Session,
        message: &Value,
        id: Option<u64>,
    ) -> Result<Value, PostError> {
        self.exchange(link, session, message, id)
            .await
            .map(|(result, _)| result)
    }

    /// One POST: the result of the response with `id` (for a notification, `Null`) and the
    /// session id the server returned, if any.
    async fn exchange(
        &self,
        link: &Link<'_>,
        session: &Session,
        message: &Value,
        id: Option<u64>,
    ) -> Result<(Value, Option<String>), PostError> {
        let mut headers = Vec::new();
        if let Some(sid) = session
            .id
            .as_deref()
            .and_then(|s| HeaderValue::from_str(s).ok())
        {
            headers.push((HeaderName::from_static(SESSION_HEADER), sid));
        }
        if let Some(v) = session
            .version
            .as_deref()
            .and_then(|s| HeaderValue::from_str(s).ok())
        {
            headers.push((HeaderName::from_static(VERSION_HEADER), v));
        }
        let answer = transport::send(
            link.client,
            link.auth,
            Outgoing {
                method: Method::POST,
                url: &self.url,
                headers,
                body: Some(message.to_string().into_bytes()),
                content_type: Some("application/json"),
                accept: "application/json, text/event-stream",
            },
            link.idle,
        )
        .await?;
        let session_id = answer
            .headers
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if answer.status == StatusCode::NOT_FOUND && session.id.is_some() {
            return Err(PostError::SessionGone);
        }
        if !answer.status.is_success() {
            let text = transport::read_text(answer.body).await.unwrap_or_default();
            return Err(transport::status_error(answer.status, &text).into());
        }
        let Some(id) = id else {
            // A notification: 202 Accepted, nothing to read.
            return Ok((Value::Null, session_id));
        };
        let is_sse = answer
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.trim_start().starts_with("text/event-stream"));
        let response = if is_sse {
            read_sse_response(answer.body, id).await?
        } else {
            let (bytes, truncated) = transport::read_capped(answer.body, MAX_MESSAGE_BYTES).await?;
            if truncated {
                return Err(protocol_error("the MCP answer is too large").into());
            }
            let value: Value = serde_json::from_slice(&bytes)
                .map_err(|_| protocol_error("the MCP answer is not JSON"))?;
            pick_response(value, id)
                .ok_or_else(|| protocol_error("the MCP answer has no response to the request"))?
        };
        rpc_result(response)
            .map(|r| (r, session_id))
            .map_err(PostError::Failed)
    }
}

fn protocol_error(text: &str) -> Failure {
    Failure::new(ToolError::Other(text.to_owned()), "error")
}

/// The response with `id` from a single message or a batch.
fn pick_response(value: Value, id: u64) -> Option<Value> {
    let matches = |m: &Value| {
        m.get("id").and_then(Value::as_u64) == Some(id)
            && (m.get("result").is_some() || m.get("error").is_some())
    };
    match value {
        Value::Array(items) => items.into_iter().find(matches),
        single if matches(&single) => Some(single),
        _ => None,
    }
}

/// Read an SSE answer until the response with `id` arrives (notifications and server requests
/// before it are skipped). The stream's bytes are capped.
async fn read_sse_response(body: wasmtime_wasi_http::WasiBody, id: u64) -> Result<Value, Failure> {
    let mut seen = 0usize;
    let data = http_body_util::BodyDataStream::new(body).map(move |chunk| {
        let chunk = chunk?;
        seen = seen.saturating_add(chunk.len());
        if seen > MAX_MESSAGE_BYTES {
            return Err(wasmtime_wasi_http::Error::HttpResponseBodySize(Some(
                MAX_MESSAGE_BYTES as u64,
            )));
        }
        Ok(chunk)
    });
    // One event can be at most the whole capped message.
    let mut events = responses_pipe_sse::SseStream::new(Box::pin(data), MAX_MESSAGE_BYTES);
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| match e {
            responses_pipe_sse::StreamError::Transport(t) => transport::classify(&t),
            responses_pipe_sse::StreamError::Sse(other) => {
                protocol_error(&format!("the MCP event stream is malformed: {other}"))
            }
        })?;
        if event.data.trim().is_empty() {
            continue;
        }
        let Ok(value) = serde_json::from_str::<Value>(&event.data) else {
            continue;
        };
        if let Some(response) = pick_response(value, id) {
            return Ok(response);
        }
    }
    Err(Failure::new(
        ToolError::Unavailable("the MCP event stream ended without a response".to_owned()),
        "unavailable",
    ))
}

/// The `result` of a JSON-RPC response, or its `error` as a tool error.
fn rpc_result(response: Value) -> Result<Value, Failure> {
    if let Some(err) = response.get("error") {
        let code = err.get("code").and_then(Value::as_i64).unwrap_or(0);
        let message = err.get("message").and_then(Value::as_str).unwrap_or("");
        let error = if code == -32602 {
            ToolError::InvalidArgument(transport::excerpt(message))
        } else {
            ToolError::Other(format!("MCP error {code}: {}", transport::excerpt(message)))
        };
        return Err(Failure::new(error, "error"));
    }
    Ok(response.get("result").cloned().unwrap_or(Value::Null))
}

/// A `tools/call` result as text: text items joined; other items summarised as JSON without
/// their binary payloads; `structuredContent` when there is no content.
fn content_text(result: &Value) -> String {
    let items = result.get("content").and_then(Value::as_array);
    let mut parts = Vec::new();
    for item in items.into_iter().flatten() {
        match item.get("type").and_then(Value::as_str) {
            Some("text") => {
                parts.push(
                    item.get("text")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                );
            }
            _ => {
                let mut item = item.clone();
                if let Some(obj) = item.as_object_mut()
                    && let Some(Value::String(data)) = obj.get("data")
                {
                    let note = format!("[{} bytes of base64 data omitted]", data.len());
                    obj.insert("data".into(), Value::String(note));
                }
                parts.push(item.to_string());
            }
        }
    }
    if parts.is_empty()
        && let Some(structured) = result.get("structuredContent")
    {
        return structured.to_string();
    }
    parts.join("\n")
}

/// Cap a tool's text at [`MAX_TOOL_OUTPUT_BYTES`] on a character boundary.
fn cut(mut text: String) -> String {
    if text.len() <= MAX_TOOL_OUTPUT_BYTES {
        return text;
    }
    let mut end = MAX_TOOL_OUTPUT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str("\n[output truncated]");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_picked_by_id_from_single_messages_and_batches() {
        let single = json!({"jsonrpc": "2.0", "id": 3, "result": {"ok": true}});
        assert!(pick_response(single.clone(), 3).is_some());
        assert!(pick_response(single, 4).is_none());
        let batch = json!([
            {"jsonrpc": "2.0", "method": "notifications/message"},
            {"jsonrpc": "2.0", "id": 7, "error": {"code": -32602, "message": "bad"}}
        ]);
        let picked = pick_response(batch, 7).unwrap();
        match rpc_result(picked) {
            Err(f) => assert!(matches!(f.error, ToolError::InvalidArgument(_))),
            Ok(v) => panic!("{v}"),
        }
    }

    #[test]
    fn content_is_rendered_as_text_without_binary_payloads() {
        let result = json!({"content": [
            {"type": "text", "text": "line one"},
            {"type": "image", "mimeType": "image/png", "data": "aGVsbG8="}
        ]});
        let text = content_text(&result);
        assert!(text.starts_with("line one\n"), "{text}");
        assert!(text.contains("8 bytes of base64 data omitted"), "{text}");
        assert!(!text.contains("aGVsbG8="), "{text}");
        assert_eq!(
            content_text(&json!({"content": [], "structuredContent": {"a": 1}})),
            "{\"a\":1}"
        );
        let long = "é".repeat(MAX_TOOL_OUTPUT_BYTES);
        assert!(cut(long).ends_with("[output truncated]"));
    }
}
