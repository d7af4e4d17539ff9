//! A fake MCP server over streamable HTTP (one endpoint, `POST /mcp`, JSON-RPC 2.0).
//!
//! `initialize` opens a session (`Mcp-Session-Id` header); every other message must carry a
//! known session id (400 without one, 404 for an unknown or closed one, as the spec says).
//! `notifications/initialized` gets 202. `tools/list` pages two tools at a time (`nextCursor`).
//! `tools/call` answers as JSON or, in SSE mode, as an event stream that first carries a
//! server notification and then the response. Tools:
//!
//! - `get_weather` `{city}` → text (the same name as the OpenAPI fake's operation, so a host
//!   serving both has to prefix them);
//! - `add` `{a, b}` → the sum as text;
//! - `fails_softly` → a tool result with `isError: true`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::{Behaviour, Recorder, Served, ToolCallRecord, header_list, serve};

/// The session header.
pub const SESSION_HEADER: &str = "mcp-session-id";

#[derive(Debug, Default)]
struct McpState {
    recorder: Recorder,
    sessions: Mutex<HashSet<String>>,
    next_session: AtomicU64,
    initializations: AtomicU64,
    sse: AtomicBool,
}

impl McpState {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running fake MCP server.
#[derive(Debug)]
pub struct FakeMcp {
    served: Served,
    state: Arc<McpState>,
}

impl FakeMcp {
    /// Start on a free loopback port; `sse` chooses event-stream answers over plain JSON.
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub async fn start(sse: bool) -> std::io::Result<Self> {
        let state = Arc::new(McpState::default());
        state.sse.store(sse, Ordering::Relaxed);
        let app = Router::new()
            .route("/mcp", post(handle).delete(end_session))
            .with_state(Arc::clone(&state));
        Ok(Self {
            served: serve(app, 0).await?,
            state,
        })
    }

    /// The endpoint URL, `http://127.0.0.1:PORT/mcp`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.served.addr)
    }

    #[must_use]
    pub fn port(&self) -> u16 {
        self.served.addr.port()
    }

    /// Calls, concurrency and behaviours.
    #[must_use]
    pub fn recorder(&self) -> &Recorder {
        &self.state.recorder
    }

    /// Forget every session, as a restarted server does.
    pub fn close_sessions(&self) {
        self.state.sessions().clear();
    }

    /// How many `initialize` requests arrived.
    #[must_use]
    pub fn initializations(&self) -> u64 {
        self.state.initializations.load(Ordering::Relaxed)
    }

    /// Answer with SSE (`true`) or JSON (`false`) from now on.
    pub fn set_sse(&self, sse: bool) {
        self.state.sse.store(sse, Ordering::Relaxed);
    }
}

fn tools() -> Vec<Value> {
    vec![
        json!({"name": "get_weather", "description": "Weather by MCP",
               "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}),
        json!({"name": "add", "description": "Add two numbers",
               "inputSchema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}}),
        json!({"name": "fails_softly", "description": "Always reports a tool error",
               "inputSchema": {"type": "object", "properties": {}}}),
    ]
}

fn rpc_result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn rpc_error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// A JSON-RPC answer as JSON or as SSE (with a notification first).
fn reply(state: &McpState, message: &Value, session: Option<&str>) -> Response {
    let mut response = if state.sse.load(Ordering::Relaxed) {
        let note = json!({"jsonrpc": "2.0", "method": "notifications/message",
                          "params": {"level": "info", "data": "working"}});
        let text =
            format!("event: message\ndata: {note}\n\nid: 1\nevent: message\ndata: {message}\n\n");
        let mut r = Response::new(Body::from(text));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        r
    } else {
        let mut r = Response::new(Body::from(message.to_string()));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    };
    if let Some(id) = session.and_then(|s| HeaderValue::from_str(s).ok()) {
        response.headers_mut().insert(SESSION_HEADER, id);
    }
    response
}

async fn end_session(State(state): State<Arc<McpState>>, headers: HeaderMap) -> StatusCode {
    match headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) {
        Some(id) if state.sessions().remove(id) => StatusCode::OK,
        _ => StatusCode::NOT_FOUND,
    }
}

async fn handle(State(state): State<Arc<McpState>>, headers: HeaderMap, body: Bytes) -> Response {
    state.recorder.record_request(&headers);
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let method = message.get("method").and_then(Value::as_str).unwrap_or("");
    if method == "initialize" {
        state.initializations.fetch_add(1, Ordering::Relaxed);
        let session = format!(
            "sess-{}",
            state.next_session.fetch_add(1, Ordering::Relaxed)
        );
        state.sessions().insert(session.clone());
        let version = message
            .pointer("/params/protocolVersion")
            .cloned()
            .unwrap_or_else(|| json!("2025-06-18"));
        let result = json!({
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": false}},
            "serverInfo": {"name": "fake-mcp", "version": "1"}
        });
        return reply(&state, &rpc_result(&id, result), Some(&session));
    }
    let Some(session) = headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return (StatusCode::BAD_REQUEST, "missing Mcp-Session-Id").into_response();
    };
    if !state.sessions().contains(&session) {
        return (StatusCode::NOT_FOUND, "unknown session").into_response();
    }
    match method {
        "notifications/initialized" => StatusCode::ACCEPTED.into_response(),
        "tools/list" => {
            let all = tools();
            let start = message
                .pointer("/params/cursor")
                .and_then(Value::as_str)
                .and_then(|c| c.parse::<usize>().ok())
                .unwrap_or(0);
            let page: Vec<Value> = all.iter().skip(start).take(2).cloned().collect();
            let mut result = json!({"tools": page});
            if start + 2 < all.len() {
                result["nextCursor"] = json!((start + 2).to_string());
            }
            reply(&state, &rpc_result(&id, result), None)
        }
        "tools/call" => call(&state, &headers, &id, &message, &session).await,
        _ => reply(&state, &rpc_error(&id, -32601, "method not found"), None),
    }
}

async fn call(
    state: &McpState,
    headers: &HeaderMap,
    id: &Value,
    message: &Value,
    session: &str,
) -> Response {
    let name = message
        .pointer("/params/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let args = message
        .pointer("/params/arguments")
        .cloned()
        .unwrap_or(Value::Null);
    let behaviour = state.recorder.behaviour(&name);
    if behaviour == Behaviour::CloseSession {
        state.sessions().remove(session);
        return (StatusCode::NOT_FOUND, "session closed").into_response();
    }
    let _running = state.recorder.start_call(ToolCallRecord {
        tool: name.clone(),
        path: "/mcp".into(),
        headers: header_list(headers),
        arguments: args.clone(),
    });
    match behaviour {
        Behaviour::Slow(delay) => tokio::time::sleep(delay).await,
        Behaviour::Fail(status) => {
            return (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "failed on purpose",
            )
                .into_response();
        }
        Behaviour::Hang => return std::future::pending().await,
        Behaviour::Hold => state.recorder.held().await,
        Behaviour::Stall => {
            let mut r = Response::new(super::stalled_body());
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            return r;
        }
        Behaviour::Normal | Behaviour::CloseSession => {}
    }
    let result = match name.as_str() {
        "get_weather" => {
            let city = args.get("city").and_then(Value::as_str).unwrap_or("?");
            json!({"content": [{"type": "text", "text": format!("MCP weather for {city}: sunny")}], "isError": false})
        }
        "add" => {
            let a = args.get("a").and_then(Value::as_f64).unwrap_or(0.0);
            let b = args.get("b").and_then(Value::as_f64).unwrap_or(0.0);
            json!({"content": [{"type": "text", "text": format!("{}", a + b)}], "isError": false})
        }
        "fails_softly" => {
            json!({"content": [{"type": "text", "text": "the tool could not do it"}], "isError": true})
        }
        _ => return reply(state, &rpc_error(id, -32602, "unknown tool"), None),
    };
    reply(state, &rpc_result(id, result), None)
}
