//! Turning failures into what the caller sees: OpenRouter's HTTP error bodies (both shapes, with
//! `metadata.raw` possibly a JSON string), stream error events, transport failures. Every error
//! gets a 16-hex-char id that also appears in the message, so a user report can be matched to the
//! host's log line.

use crate::caps::TransportError;
use crate::types::ErrorBody;
use serde_json::Value;

/// A fresh error id (16 lowercase hex chars) from a random `u64`.
pub fn error_id(random: u64) -> String {
    format!("{random:016x}")
}

/// Build an error body; the message gets the error id appended.
pub fn body(
    error_id: &str,
    http_status: u16,
    error_type: &str,
    code: Option<&str>,
    message: &str,
) -> ErrorBody {
    ErrorBody {
        message: format!("{message} (error id {error_id})"),
        error_type: error_type.to_string(),
        code: code.map(str::to_string),
        http_status,
        retry_after_seconds: None,
        error_id: error_id.to_string(),
    }
}

/// What OpenRouter said in an error body, whichever shape it used.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpenRouterError {
    pub message: Option<String>,
    pub code: Option<String>,
    pub provider: Option<String>,
    /// The upstream provider's own message, dug out of `metadata.raw` when present.
    pub upstream_message: Option<String>,
}

fn value_to_code(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn message_in(v: &Value) -> Option<String> {
    v.pointer("/error/message")
        .or_else(|| v.get("message"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Parse `{"error":{"message","code","metadata":{"provider_name","raw"}}}` (or a bare
/// `{"message","code"}`); `raw` may be a JSON object or a JSON document inside a string.
pub fn parse_openrouter_error(bytes: &[u8]) -> OpenRouterError {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim();
        return OpenRouterError {
            message: (!text.is_empty()).then(|| truncate(text, 300)),
            ..OpenRouterError::default()
        };
    };
    let err = v.get("error").unwrap_or(&v);
    let metadata = err.get("metadata");
    let raw = metadata.and_then(|m| m.get("raw"));
    let upstream_message = raw.and_then(|raw| match raw {
        Value::String(s) => serde_json::from_str::<Value>(s)
            .ok()
            .and_then(|inner| message_in(&inner))
            .or_else(|| (!s.is_empty()).then(|| truncate(s, 300))),
        other => message_in(other),
    });
    OpenRouterError {
        message: err
            .get("message")
            .and_then(Value::as_str)
            .map(|s| truncate(s, 500)),
        code: err.get("code").and_then(value_to_code),
        provider: metadata
            .and_then(|m| m.get("provider_name"))
            .and_then(Value::as_str)
            .map(str::to_string),
        upstream_message,
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max_chars).collect();
        out.push('…');
        out
    }
}

/// Map an upstream HTTP error status (with its body and `Retry-After`) to the caller's error.
pub fn from_status(
    error_id: &str,
    status: u16,
    retry_after: Option<&str>,
    body_bytes: &[u8],
) -> ErrorBody {
    let parsed = parse_openrouter_error(body_bytes);
    let (error_type, code, heading) = match status {
        400 => (
            "invalid_request_error",
            "upstream_bad_request",
            "OpenRouter rejected the request",
        ),
        401 => (
            "authentication_error",
            "upstream_unauthorized",
            "OpenRouter did not accept the API key",
        ),
        402 => (
            "insufficient_quota",
            "insufficient_credits",
            "The OpenRouter account has insufficient credits",
        ),
        403 => (
            "permission_error",
            "upstream_forbidden",
            "OpenRouter refused the request",
        ),
        404 => (
            "invalid_request_error",
            "upstream_not_found",
            "OpenRouter could not find the model or route",
        ),
        408 => (
            "timeout_error",
            "upstream_timeout",
            "The model provider timed out",
        ),
        413 => (
            "invalid_request_error",
            "payload_too_large",
            "The request is too large for the model",
        ),
        429 => (
            "rate_limit_error",
            "rate_limited",
            "Rate limited by OpenRouter",
        ),
        s if s >= 500 => (
            "upstream_error",
            "upstream_unavailable",
            "OpenRouter or the model provider failed",
        ),
        _ => (
            "upstream_error",
            "upstream_error",
            "OpenRouter returned an error",
        ),
    };
    let mut message = format!("{heading} (HTTP {status})");
    if let Some(provider) = &parsed.provider {
        message.push_str(&format!(" via {provider}"));
    }
    if let Some(m) = &parsed.message {
        message.push_str(&format!(": {m}"));
    }
    if let Some(up) = &parsed.upstream_message
        && parsed.message.as_deref() != Some(up.as_str())
    {
        message.push_str(&format!(" (provider said: {up})"));
    }
    let retry_after_seconds = retry_after.and_then(parse_retry_after);
    if let Some(secs) = retry_after_seconds {
        message.push_str(&format!(". Retry after {secs} s"));
    }
    let mut out = body(error_id, status, error_type, Some(code), &message);
    out.retry_after_seconds = retry_after_seconds;
    out
}

/// `Retry-After` as delta-seconds (HTTP dates are not used by OpenRouter; ignored).
pub fn parse_retry_after(v: &str) -> Option<u32> {
    let v = v.trim();
    v.parse::<u32>().ok().or_else(|| {
        v.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f.ceil() as u32)
    })
}

/// A `response.failed` or `error` stream event, as the caller's error.
pub fn from_stream_event(error_id: &str, event: &Value) -> ErrorBody {
    let err = event
        .pointer("/response/error")
        .filter(|e| !e.is_null())
        .or_else(|| event.get("error").filter(|e| e.is_object()))
        .unwrap_or(event);
    let code = err.get("code").and_then(value_to_code);
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("no detail given");
    let status = match code.as_deref() {
        Some("rate_limit_exceeded") | Some("rate_limited") | Some("429") => 429,
        _ => 502,
    };
    body(
        error_id,
        status,
        "upstream_error",
        Some(code.as_deref().unwrap_or("upstream_stream_error")),
        &format!(
            "The model failed while answering: {}",
            truncate(message, 500)
        ),
    )
}

/// A transport failure reaching OpenRouter.
pub fn from_transport(error_id: &str, what: &str, err: &TransportError) -> ErrorBody {
    let (status, code) = match err {
        TransportError::Denied(_) => (502, "egress_denied"),
        TransportError::Timeout(_) => (504, "upstream_timeout"),
        TransportError::Connect(_) => (502, "upstream_unreachable"),
        TransportError::TooLarge => (502, "upstream_response_too_large"),
        TransportError::Protocol(_) => (502, "upstream_connection_failed"),
    };
    body(
        error_id,
        status,
        "upstream_error",
        Some(code),
        &format!("Could not {what}: {err}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_raw_as_a_json_string_yields_the_provider_message() {
        let b = br#"{"error":{"code":400,"message":"Provider returned error","metadata":{"provider_name":"Anthropic","raw":"{\"error\":{\"message\":\"thinking block cannot be modified\"}}"}}}"#;
        let e = parse_openrouter_error(b);
        assert_eq!(e.code.as_deref(), Some("400"));
        assert_eq!(e.provider.as_deref(), Some("Anthropic"));
        assert_eq!(
            e.upstream_message.as_deref(),
            Some("thinking block cannot be modified")
        );
    }

    #[test]
    fn rate_limits_carry_retry_after_and_a_clear_code() {
        let e = from_status(
            "00000000000000aa",
            429,
            Some("7"),
            br#"{"error":{"code":429,"message":"slow down"}}"#,
        );
        assert_eq!(e.http_status, 429);
        assert_eq!(e.retry_after_seconds, Some(7));
        assert_eq!(e.code.as_deref(), Some("rate_limited"));
        assert!(e.message.contains("slow down"));
        assert!(e.message.contains("00000000000000aa"));
    }

    #[test]
    fn a_non_json_error_body_is_kept_short() {
        let long = "x".repeat(5000);
        let e = parse_openrouter_error(long.as_bytes());
        assert!(e.message.unwrap().chars().count() <= 301);
    }

    #[test]
    fn stream_failure_events_of_both_shapes_are_understood() {
        let failed: Value = serde_json::json!({"type":"response.failed","response":{"status":"failed","error":{"code":"server_error","message":"boom"}}});
        let e = from_stream_event("id", &failed);
        assert_eq!(e.code.as_deref(), Some("server_error"));
        assert!(e.message.contains("boom"));
        let ev: Value =
            serde_json::json!({"type":"error","code":"rate_limit_exceeded","message":"slow"});
        let e = from_stream_event("id", &ev);
        assert_eq!(e.http_status, 429);
        assert!(e.message.contains("slow"));
    }
}
