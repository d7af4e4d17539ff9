//! The front doors (axum): `GET /v1/models`, `POST /v1/chat/completions`, `GET /healthz`
//! (liveness), `GET /readyz` (readiness, see `crate::readiness`), `GET /metrics`. Every request gets an id (returned as `X-Request-Id`, carried in its span and
//! error bodies); the browser guard (`guard`) and bearer auth are checked before any work, and
//! the authenticated key's name is the span's `key` field; sockets get `TCP_NODELAY` (Nagle would
//! delay small SSE writes by ~40 ms); shutdown lets in-flight streams finish. Connections are
//! served by `listener` under its bounds, bodies are read under `limits`.

pub mod auth;
mod chat;
pub mod chunks;
pub mod context;
pub mod error;
pub mod guard;
pub mod identity;
pub mod limits;
pub mod listener;
mod sse_frame;

use crate::app::App;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use error::ApiError;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tracing::Instrument;

/// The request id of the current request (set by the middleware).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// All routes.
pub fn router(app: Arc<App>) -> Router {
    let protected = Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(app.clone(), require_key));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(protected)
        .fallback(not_found)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .layer(middleware::from_fn_with_state(
            app.clone(),
            guard::browser_guard,
        ))
        .layer(middleware::from_fn(request_span))
        .with_state(app)
}

/// A handler panic (a bug) answers 500 in the usual error shape; the server keeps running.
fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!(error.type = "handler_panic", "a request handler panicked");
    let body = error::ApiError::Guest(crate::instance::GuestFailure::Trap("internal error".into()))
        .to_body();
    error::error_response(&body, "")
}

/// Give the request an id, a span, and the `X-Request-Id` response header.
async fn request_span(mut req: Request, next: Next) -> Response {
    let id = context::request_id(req.headers());
    req.extensions_mut().insert(RequestId(id.clone()));
    // `key` is filled in by `require_key` once the caller is known.
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %crate::logsafe::escaped(req.uri().path()), key = tracing::field::Empty);
    let started = std::time::Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            status = resp.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "response started"
        )
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// Authenticate the request; the caller (`auth::Caller`: key name, Open WebUI trust) goes into
/// the request's extensions and its name into the request span.
async fn require_key(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Some(caller) = app.keys.authenticate(auth) {
        tracing::Span::current().record("key", tracing::field::display(&caller.name));
        req.extensions_mut().insert(caller);
        return next.run(req).await;
    }
    app.metrics.incr("requests_refused", "unauthorized");
    let id = request_id_of(&req);
    let mut resp = ApiError::Unauthorized.into_response_for(&id);
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

fn request_id_of(req: &Request) -> String {
    req.extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default()
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    if app.shutting_down.load(Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "shutting_down"})),
        )
            .into_response();
    }
    axum::Json(serde_json::json!({
        "status": "ok",
        "running": app.admission.running(),
        "queued": app.admission.queued(),
    }))
    .into_response()
}

/// 200 when ready, else 503; the body names the state of each dependency.
async fn readyz(State(app): State<Arc<App>>) -> Response {
    let report = crate::readiness::check(&app).await;
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report)).into_response()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let mut body = app.metrics.render();
    body.push_str(&app.tools.metrics().render());
    body.push_str(&format!(
        "responses_pipe_requests_running {}\n",
        app.admission.running()
    ));
    body.push_str(&format!(
        "responses_pipe_requests_queued {}\n",
        app.admission.queued()
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn not_found(req: Request) -> Response {
    let id = request_id_of(&req);
    ApiError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
    .into_response_for(&id)
}

async fn models(State(app): State<Arc<App>>, req: Request) -> Response {
    let id = request_id_of(&req);
    let result = async {
        let _ticket = app
            .admission
            .admit()
            .await
            .map_err(|busy| chat::busy_error(&app, &busy))?;
        let out = crate::readiness::list_models(&app, &id).await??;
        Ok::<_, ApiError>(out)
    }
    .await;
    match result {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => e.into_response_for(&id),
    }
}

/// Serve until `shutdown` resolves, then let in-flight requests finish. Connections are bounded
/// by `listener` (count, header time, stalled writes).
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = listener::ConnectionLimits {
        max_connections: app.config.max_connections(),
        header_timeout: app.config.client_header_timeout(),
        write_timeout: app.config.client_write_timeout(),
    };
    let flag = app.clone();
    let metrics = app.metrics.clone();
    listener::serve(listener, router(app), limits, metrics, async move {
        shutdown.await;
        flag.shutting_down.store(true, Ordering::Relaxed);
        flag.tools.begin_shutdown();
        tracing::info!("shutting down: finishing in-flight requests");
    })
    .await
}
