//! Request identity: the request id (ours, or a well-formed `X-Request-Id` from the caller) and
//! the Open WebUI identity headers, turned into the guest's `request-context`. Header values are
//! length-capped and percent-decoded (Open WebUI URL-quotes the user name); the guest never sees
//! raw headers.

use super::identity::{cache_session_id, verify_user_jwt};
use crate::bindings::types::RequestContext;
use crate::config::OpenWebUiEvents;
use axum::http::HeaderMap;
use secrecy::SecretString;

/// Longest identity header value passed on.
const MAX_HEADER_CHARS: usize = 512;

/// The id for this request: the caller's `X-Request-Id` when it is short and plain, else new.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    let raw = headers.get(name)?.to_str().ok()?.trim();
    if raw.is_empty() {
        return None;
    }
    let decoded = percent_decode(raw);
    Some(decoded.chars().take(MAX_HEADER_CHARS).collect())
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The host-held secrets identity handling needs.
#[derive(Default)]
pub struct IdentitySecrets {
    /// `WEBUI_SECRET_KEY`: keys the cache session id.
    pub webui_secret: Option<SecretString>,
    /// `FORWARD_USER_INFO_HEADER_JWT_SECRET`: when set, only a verified user JWT identifies the user.
    pub jwt_secret: Option<SecretString>,
}

/// Build the guest's request context from the front-door headers.
pub fn request_context(
    headers: &HeaderMap,
    request_id: &str,
    events: OpenWebUiEvents,
    received_at_ms: u64,
    secrets: &IdentitySecrets,
) -> RequestContext {
    let (user_id, user_email, user_name, user_role) = match &secrets.jwt_secret {
        Some(secret) => match headers
            .get("x-openwebui-user-jwt")
            .and_then(|v| v.to_str().ok())
        {
            Some(token) => match verify_user_jwt(token, secret, received_at_ms / 1000) {
                Ok(c) => {
                    let cap = |v: Option<String>| {
                        v.map(|s| s.chars().take(MAX_HEADER_CHARS).collect::<String>())
                    };
                    (cap(c.sub), cap(c.email), cap(c.name), cap(c.role))
                }
                Err(e) => {
                    tracing::warn!(error.type = "user_jwt_rejected", reason = %e, "ignoring the forwarded user token");
                    (None, None, None, None)
                }
            },
            None => (None, None, None, None),
        },
        None => (
            header(headers, "x-openwebui-user-id"),
            header(headers, "x-openwebui-user-email"),
            header(headers, "x-openwebui-user-name"),
            header(headers, "x-openwebui-user-role"),
        ),
    };
    let forwarded = user_id.is_some()
        || user_email.is_some()
        || user_name.is_some()
        || headers.contains_key("x-openwebui-user-jwt")
        || headers.contains_key("x-openwebui-chat-id");
    let chat_id = header(headers, "x-openwebui-chat-id");
    let cache_session_id = match (&secrets.webui_secret, &chat_id) {
        (Some(secret), Some(chat)) => cache_session_id(secret, chat),
        _ => None,
    };
    RequestContext {
        request_id: request_id.to_string(),
        user_id,
        user_email,
        user_name,
        user_role,
        chat_id,
        message_id: header(headers, "x-openwebui-message-id"),
        task: header(headers, "x-openwebui-task"),
        openwebui_caller: match events {
            OpenWebUiEvents::Always => true,
            OpenWebUiEvents::Never => false,
            OpenWebUiEvents::Auto => forwarded,
        },
        cache_session_id,
        received_at_ms,
        key_name: "local".to_string(),
        openwebui_key: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn forwarded_open_webui_headers_fill_the_context() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-openwebui-user-name",
            HeaderValue::from_static("Ada%20Lovelace"),
        );
        h.insert("x-openwebui-user-id", HeaderValue::from_static("u1"));
        h.insert("x-openwebui-chat-id", HeaderValue::from_static("c1"));
        h.insert("x-openwebui-task", HeaderValue::from_static(""));
        let c = request_context(
            &h,
            "r",
            OpenWebUiEvents::Auto,
            5,
            &IdentitySecrets::default(),
        );
        assert_eq!(c.user_name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(c.chat_id.as_deref(), Some("c1"));
        assert_eq!(c.task, None, "an empty task header means no task");
        assert!(c.openwebui_caller);
        let plain = request_context(
            &HeaderMap::new(),
            "r",
            OpenWebUiEvents::Auto,
            5,
            &IdentitySecrets::default(),
        );
        assert!(!plain.openwebui_caller);
    }

    #[test]
    fn a_caller_request_id_is_kept_only_when_plain() {
        let mut h = HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
        h.insert("x-request-id", HeaderValue::from_static("bad id\"<script>"));
        assert_ne!(request_id(&h), "bad id\"<script>");
    }
}
