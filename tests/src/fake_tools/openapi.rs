//! A fake OpenAPI tool server: `GET /openapi.json` describes three operations, each answered for
//! real and recorded.
//!
//! - `get_weather`: `GET /weather/{city}?units=` → `{"city","units","temperature_c","source"}`
//! - `create_note`: `POST /notes` with a JSON body `{title, text}` → `201 {"id","title","text"}`
//! - `search`: `GET /search?q=&limit=` → `{"q","results":[...]}`

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{Behaviour, Recorder, Served, ToolCallRecord, header_list, serve, stalled_body};

/// A running fake OpenAPI tool server.
#[derive(Debug)]
pub struct FakeOpenApi {
    served: Served,
    recorder: Arc<Recorder>,
}

impl FakeOpenApi {
    /// Start on a free loopback port.
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(0).await
    }

    /// Start on a given loopback port (0: a free one).
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub async fn start_on(port: u16) -> std::io::Result<Self> {
        let recorder = Arc::new(Recorder::default());
        let app = Router::new()
            .route("/openapi.json", get(spec))
            .route("/weather/{city}", get(weather))
            .route("/notes", post(create_note))
            .route("/search", get(search))
            .with_state(Arc::clone(&recorder));
        Ok(Self {
            served: serve(app, port).await?,
            recorder,
        })
    }

    /// `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.served.addr)
    }

    /// The bound port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.served.addr.port()
    }

    /// Calls, concurrency and behaviours.
    #[must_use]
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Serve `doc` at `/openapi.json` from now on (the operations stay the built-in ones).
    pub fn serve_spec(&self, doc: Value) {
        self.recorder.set_spec(doc);
    }
}

/// The document served at `/openapi.json`.
#[must_use]
pub fn spec_document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {"title": "fake tools", "version": "1"},
        "paths": {
            "/weather/{city}": {
                "get": {
                    "operationId": "get_weather",
                    "summary": "Current weather for a city",
                    "parameters": [
                        {"name": "city", "in": "path", "required": true, "schema": {"type": "string"}},
                        {"name": "units", "in": "query", "schema": {"type": "string", "enum": ["metric", "imperial"]}}
                    ]
                }
            },
            "/notes": {
                "post": {
                    "operationId": "create_note",
                    "summary": "Store a note",
                    "requestBody": {
                        "required": true,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Note"}}}
                    }
                }
            },
            "/search": {
                "get": {
                    "operationId": "search",
                    "description": "Search the fake index",
                    "parameters": [
                        {"name": "q", "in": "query", "required": true, "schema": {"type": "string"}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer"}}
                    ]
                }
            }
        },
        "components": {
            "schemas": {
                "Note": {
                    "type": "object",
                    "required": ["title"],
                    "properties": {"title": {"type": "string"}, "text": {"type": "string"}}
                }
            }
        }
    })
}

async fn spec(State(rec): State<Arc<Recorder>>, headers: HeaderMap) -> Json<Value> {
    rec.record_request(&headers);
    Json(rec.spec().unwrap_or_else(spec_document))
}

/// Run a tool's behaviour around its normal answer.
async fn answer(
    rec: &Recorder,
    tool: &str,
    path: String,
    headers: &HeaderMap,
    arguments: Value,
    normal: impl FnOnce() -> Response,
) -> Response {
    rec.record_request(headers);
    let _running = rec.start_call(ToolCallRecord {
        tool: tool.to_owned(),
        path,
        headers: header_list(headers),
        arguments,
    });
    match rec.behaviour(tool) {
        Behaviour::Normal | Behaviour::CloseSession => normal(),
        Behaviour::Slow(delay) => {
            tokio::time::sleep(delay).await;
            normal()
        }
        Behaviour::Fail(status) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Json(json!({"error": format!("{tool} failed on purpose")})),
        )
            .into_response(),
        Behaviour::Hang => std::future::pending().await,
        Behaviour::Hold => {
            rec.held().await;
            normal()
        }
        Behaviour::Stall => {
            // The head and one byte go out, then the body never ends.
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(stalled_body())
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
    }
}

fn query_map(query: Option<&str>) -> serde_json::Map<String, Value> {
    url_pairs(query.unwrap_or(""))
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space).
fn decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi * 16 + lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn path_and_query(path: &str, query: Option<&str>) -> String {
    match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    }
}

async fn weather(
    State(rec): State<Arc<Recorder>>,
    Path(city): Path<String>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut args = query_map(query.as_deref());
    args.insert("city".into(), Value::String(city.clone()));
    let units = args
        .get("units")
        .and_then(Value::as_str)
        .unwrap_or("metric")
        .to_owned();
    // As sent: still percent-encoded.
    let path = uri
        .path_and_query()
        .map_or_else(String::new, ToString::to_string);
    answer(
        &rec,
        "get_weather",
        path,
        &headers,
        Value::Object(args),
        || {
            Json(json!({
                "city": city,
                "units": units,
                "temperature_c": 21,
                "source": "https://weather.example/report"
            }))
            .into_response()
        },
    )
    .await
}

async fn create_note(State(rec): State<Arc<Recorder>>, headers: HeaderMap, body: Body) -> Response {
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let args: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let reply = json!({"id": 1, "title": args.get("title"), "text": args.get("text")});
    let valid = args.get("title").and_then(Value::as_str).is_some();
    answer(
        &rec,
        "create_note",
        "/notes".into(),
        &headers,
        args,
        move || {
            if valid {
                (StatusCode::CREATED, Json(reply)).into_response()
            } else {
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Json(json!({"error": "title is required"})),
                )
                    .into_response()
            }
        },
    )
    .await
}

async fn search(
    State(rec): State<Arc<Recorder>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let args = query_map(query.as_deref());
    let q = args
        .get("q")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let path = path_and_query("/search", query.as_deref());
    answer(
        &rec,
        "search",
        path,
        &headers,
        Value::Object(args),
        move || Json(json!({"q": q, "results": [format!("result for {q}")]})).into_response(),
    )
    .await
}
