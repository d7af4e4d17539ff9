//! Errors at the front door and the one table that maps each to the outside world: HTTP status,
//! an OpenAI-style `{"error":{...}}` body with the request id, `Retry-After` where it helps, and
//! a log line at the request boundary. Internal detail (traps, backend messages) stays in logs.

use crate::bindings::types::{ErrorBody, PipeError};
use crate::instance::GuestFailure;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A request that failed before any streamed output.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("the request body exceeds {limit} bytes")]
    TooLarge { limit: usize },
    #[error("a valid API key is required (Authorization: Bearer <key>)")]
    Unauthorized,
    #[error("{0}")]
    UserToken(#[from] super::context::IdentityError),
    #[error(
        "this server runs without client keys and answers only requests addressed to a loopback name (localhost, 127.0.0.1, [::1]); the Host header names `{0}`"
    )]
    HostNotAllowed(String),
    #[error(
        "requests from the web page origin `{0}` are not allowed (CORS_ALLOWED_ORIGINS lists the origins that are)"
    )]
    OriginNotAllowed(String),
    #[error("the request body must be sent as `Content-Type: application/json`")]
    UnsupportedMediaType,
    #[error("{0}")]
    NotFound(String),
    #[error("the server is busy; retry shortly")]
    Busy,
    #[error(
        "the request waited {} s for a free slot (MAX_QUEUE_WAIT_SECONDS) and was not started; retry shortly", .0.as_secs()
    )]
    QueueTimeout(std::time::Duration),
    #[error("the request body did not arrive within {} s (CLIENT_BODY_TIMEOUT_SECONDS)", .0.as_secs())]
    BodyTimeout(std::time::Duration),
    #[error("too many request bodies are being received at once; retry shortly")]
    BodyBudget,
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("{}", .0.message)]
    Pipe(ErrorBody),
    #[error("{0}")]
    Guest(#[from] GuestFailure),
}

impl From<PipeError> for ApiError {
    fn from(e: PipeError) -> Self {
        match e {
            PipeError::InvalidRequest(b)
            | PipeError::Upstream(b)
            | PipeError::Unavailable(b)
            | PipeError::Internal(b) => ApiError::Pipe(b),
        }
    }
}

/// A fresh 16-hex-char error id for errors the host itself raises.
pub fn new_error_id() -> String {
    let id = uuid::Uuid::now_v7().as_u128();
    format!("{:016x}", (id as u64) ^ ((id >> 64) as u64))
}

impl ApiError {
    /// Status, OpenAI error type, code, retry-after.
    fn parts(&self) -> (StatusCode, &str, Option<&str>, Option<u32>) {
        match self {
            ApiError::BadRequest(_) => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some("invalid_body"),
                None,
            ),
            ApiError::TooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                Some("body_too_large"),
                None,
            ),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                Some("invalid_api_key"),
                None,
            ),
            ApiError::UserToken(_) => (
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                Some("invalid_user_token"),
                None,
            ),
            ApiError::HostNotAllowed(_) => (
                StatusCode::MISDIRECTED_REQUEST,
                "invalid_request_error",
                Some("host_not_allowed"),
                None,
            ),
            ApiError::OriginNotAllowed(_) => (
                StatusCode::FORBIDDEN,
                "permission_error",
                Some("origin_not_allowed"),
                None,
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request_error",
                Some("unsupported_media_type"),
                None,
            ),
            ApiError::NotFound(_) => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("not_found"),
                None,
            ),
            ApiError::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_busy",
                Some("server_busy"),
                Some(1),
            ),
            ApiError::QueueTimeout(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_busy",
                Some("queue_timeout"),
                Some(1),
            ),
            ApiError::BodyTimeout(_) => (
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request_error",
                Some("body_timeout"),
                None,
            ),
            ApiError::BodyBudget => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_busy",
                Some("body_budget"),
                Some(1),
            ),
            ApiError::ShuttingDown => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_busy",
                Some("shutting_down"),
                Some(5),
            ),
            ApiError::Pipe(b) => (
                StatusCode::from_u16(b.http_status).unwrap_or(StatusCode::BAD_GATEWAY),
                b.error_type.as_str(),
                b.code.as_deref(),
                b.retry_after_seconds,
            ),
            ApiError::Guest(g) => match g {
                GuestFailure::Capacity(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_busy",
                    Some(g.kind()),
                    Some(1),
                ),
                GuestFailure::TimedOut(_) => {
                    (StatusCode::GATEWAY_TIMEOUT, "timeout", Some(g.kind()), None)
                }
                _ => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    Some(g.kind()),
                    None,
                ),
            },
        }
    }

    /// The caller-facing error body for a request.
    pub fn to_body(&self) -> ErrorBody {
        let (status, error_type, code, retry) = self.parts();
        match self {
            ApiError::Pipe(b) => b.clone(),
            _ => {
                let id = new_error_id();
                ErrorBody {
                    message: format!("{self} (error id {id})"),
                    error_type: error_type.to_string(),
                    code: code.map(str::to_string),
                    http_status: status.as_u16(),
                    retry_after_seconds: retry,
                    error_id: id,
                }
            }
        }
    }

    /// Build the response for a request id, logging it once.
    pub fn into_response_for(self, request_id: &str) -> Response {
        let body = self.to_body();
        let status =
            StatusCode::from_u16(body.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(error_id = %body.error_id, status = status.as_u16(), code = body.code.as_deref().unwrap_or(""), detail = %crate::logsafe::escaped_to(&self.to_string(), 400), "request failed");
        } else {
            tracing::info!(error_id = %body.error_id, status = status.as_u16(), code = body.code.as_deref().unwrap_or(""), "request refused");
        }
        error_response(&body, request_id)
    }
}

/// An error response from an error body.
pub fn error_response(body: &ErrorBody, request_id: &str) -> Response {
    let status =
        StatusCode::from_u16(body.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let json = json!({
        "error": {
            "message": body.message,
            "type": body.error_type,
            "code": body.code,
            "error_id": body.error_id,
            "request_id": request_id,
        }
    });
    let mut resp = (status, axum::Json(json)).into_response();
    if let Some(secs) = body.retry_after_seconds
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}
