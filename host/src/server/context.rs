//! Request identity: the request id (ours, or a well-formed `X-Request-Id` from the caller) and
//! the Open WebUI identity headers, turned into the guest's `request-context`. Header values are
//! length-capped and percent-decoded (Open WebUI URL-quotes the user name); the guest never sees
//! raw headers.
//!
//! Threat handled: identity spoofing. Only a caller that may assert Open WebUI identity (an
//! `OPENWEBUI_API_KEYS` key, or the keyless loopback host) has its `X-OpenWebUI-*` headers read.
//! From a plain API key they are ignored (counted, and logged once per key): the request is a
//! plain API call of that key, whatever it claims. With `FORWARD_USER_INFO_HEADER_JWT_SECRET`
//! set, a trusted caller's user comes only from a verified user token, and a chat without a valid
//! one is refused, never served under the plain user headers.

use super::auth::Caller;
use super::identity::{JwtError, cache_session_id, verify_user_jwt};
use crate::bindings::types::RequestContext;
use crate::config::OpenWebUiEvents;
use axum::http::HeaderMap;
use secrecy::SecretString;

/// The headers only a caller that may assert Open WebUI identity is believed on. `User-*` covers
/// the id, e-mail, name, role and the signed user token.
const USER_HEADER_PREFIX: &str = "x-openwebui-user-";
const SESSION_HEADERS: [&str; 3] = [
    "x-openwebui-chat-id",
    "x-openwebui-message-id",
    "x-openwebui-task",
];

/// Whether the request carries any Open WebUI identity header.
fn has_identity_headers(headers: &HeaderMap) -> bool {
    headers.keys().any(|name| {
        let name = name.as_str();
        name.starts_with(USER_HEADER_PREFIX) || SESSION_HEADERS.contains(&name)
    })
}

/// Why a trusted caller's identity was refused (a 401 for the caller).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "this server takes the user only from Open WebUI's signed user token, and the request has none (X-OpenWebUI-User-Jwt); set FORWARD_USER_INFO_HEADER_JWT_SECRET in Open WebUI to the same secret"
    )]
    MissingUserToken,
    #[error("the Open WebUI user token (X-OpenWebUI-User-Jwt) was refused: {0}")]
    InvalidUserToken(JwtError),
}

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
    // `%XY` becomes byte 0xXY, anything else is kept as is; bytes that are not UTF-8 become U+FFFD.
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    Some(decoded.chars().take(MAX_HEADER_CHARS).collect())
}

/// The host-held secrets identity handling needs.
#[derive(Default)]
pub struct IdentitySecrets {
    /// `WEBUI_SECRET_KEY`: keys the cache session id.
    pub webui_secret: Option<SecretString>,
    /// `FORWARD_USER_INFO_HEADER_JWT_SECRET`: when set, only a verified user JWT identifies the user.
    pub jwt_secret: Option<SecretString>,
}

/// The guest's request context, and whether Open WebUI headers were ignored on the way.
#[derive(Debug)]
pub struct Built {
    pub ctx: RequestContext,
    /// The caller may not assert Open WebUI identity but sent such headers.
    pub ignored_headers: bool,
}

/// Build the guest's request context from the front-door headers of `caller`'s request.
pub fn request_context(
    headers: &HeaderMap,
    request_id: &str,
    events: OpenWebUiEvents,
    received_at_ms: u64,
    secrets: &IdentitySecrets,
    caller: &Caller,
) -> Result<Built, IdentityError> {
    let plain = |openwebui_caller: bool| RequestContext {
        request_id: request_id.to_string(),
        user_id: None,
        user_email: None,
        user_name: None,
        user_role: None,
        chat_id: None,
        message_id: None,
        task: None,
        openwebui_caller,
        cache_session_id: None,
        received_at_ms,
        key_name: caller.name.clone(),
        openwebui_key: caller.openwebui,
    };
    if !caller.openwebui {
        return Ok(Built {
            ctx: plain(events == OpenWebUiEvents::Always),
            ignored_headers: has_identity_headers(headers),
        });
    }
    let (user_id, user_email, user_name, user_role) = match &secrets.jwt_secret {
        Some(secret) => {
            let token = headers
                .get("x-openwebui-user-jwt")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or(IdentityError::MissingUserToken)?;
            let c = verify_user_jwt(token, secret, received_at_ms / 1000)
                .map_err(IdentityError::InvalidUserToken)?;
            let cap =
                |v: Option<String>| v.map(|s| s.chars().take(MAX_HEADER_CHARS).collect::<String>());
            (cap(c.sub), cap(c.email), cap(c.name), cap(c.role))
        }
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
        || headers.contains_key("x-openwebui-chat-id");
    let chat_id = header(headers, "x-openwebui-chat-id");
    let cache_session_id = match (&secrets.webui_secret, &chat_id) {
        (Some(secret), Some(chat)) => cache_session_id(secret, chat),
        _ => None,
    };
    Ok(Built {
        ctx: RequestContext {
            user_id,
            user_email,
            user_name,
            user_role,
            chat_id,
            message_id: header(headers, "x-openwebui-message-id"),
            task: header(headers, "x-openwebui-task"),
            cache_session_id,
            ..plain(match events {
                OpenWebUiEvents::Always => true,
                OpenWebUiEvents::Never => false,
                OpenWebUiEvents::Auto => forwarded,
            })
        },
        ignored_headers: false,
    })
}

/// The context of a chat request of `caller`: [`request_context`] with the app's settings, the
/// ignored headers counted (`responses_pipe_identity_headers_ignored_total`) and logged once per
/// key, and a refused user token as the caller's 401.
pub fn for_chat(
    app: &crate::app::App,
    headers: &HeaderMap,
    request_id: &str,
    received_at_ms: u64,
    caller: &Caller,
) -> Result<RequestContext, super::error::ApiError> {
    let built = request_context(
        headers,
        request_id,
        app.config.openwebui_events(),
        received_at_ms,
        &app.identity,
        caller,
    )
    .inspect_err(|e| {
        app.metrics.incr("requests_refused", "invalid_user_token");
        tracing::info!(error.type = "invalid_user_token", reason = %crate::logsafe::escaped(&e.to_string()), "refusing the request's Open WebUI user");
    })?;
    if built.ignored_headers {
        app.metrics.incr("identity_headers_ignored", "plain_key");
        if caller.first_ignored_headers() {
            tracing::debug!(
                key = %caller.name,
                "ignoring Open WebUI identity headers (user, chat, message, task) from a plain API key: only OPENWEBUI_API_KEYS keys may send them; said once per key, counted in responses_pipe_identity_headers_ignored_total"
            );
        }
    }
    Ok(built.ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn caller(api: &str, owui: &str) -> std::sync::Arc<Caller> {
        let s = |v: &str| (!v.is_empty()).then(|| SecretString::from(v.to_owned()));
        let keys = crate::config::client_keys::parse(s(api).as_ref(), s(owui).as_ref()).unwrap();
        super::super::auth::ClientKeys::new(&keys)
            .authenticate(Some(if api.is_empty() && owui.is_empty() {
                ""
            } else if owui.is_empty() {
                "Bearer k"
            } else {
                "Bearer o"
            }))
            .unwrap()
    }

    fn owui_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "x-openwebui-user-name",
            HeaderValue::from_static("Ada%20Lovelace"),
        );
        h.insert("x-openwebui-user-id", HeaderValue::from_static("u1"));
        h.insert("x-openwebui-chat-id", HeaderValue::from_static("c1"));
        h.insert("x-openwebui-message-id", HeaderValue::from_static("m1"));
        h.insert("x-openwebui-task", HeaderValue::from_static(""));
        h
    }

    #[test]
    fn header_values_are_percent_decoded_leniently_and_capped() {
        let long = "%41".repeat(600);
        let table: &[(&str, Option<&str>)] = &[
            ("Ada%20Lovelace", Some("Ada Lovelace")),
            ("%C3%A9t%c3%a9", Some("été")),
            ("100%", Some("100%")),
            ("%2", Some("%2")),
            ("a%2", Some("a%2")),
            ("%zz%", Some("%zz%")),
            ("%%41", Some("%A")),
            ("%FF", Some("\u{FFFD}")),
            ("  %20x  ", Some(" x")),
            ("   ", None),
        ];
        for (raw, want) in table {
            let mut h = HeaderMap::new();
            h.insert("x-test", HeaderValue::from_str(raw).unwrap());
            assert_eq!(header(&h, "x-test").as_deref(), *want, "{raw:?}");
        }
        let mut h = HeaderMap::new();
        h.insert("x-test", HeaderValue::from_str(&long).unwrap());
        assert_eq!(header(&h, "x-test"), Some("A".repeat(MAX_HEADER_CHARS)));
    }

    fn build(h: &HeaderMap, events: OpenWebUiEvents, who: &Caller) -> Built {
        request_context(h, "r", events, 5, &IdentitySecrets::default(), who).unwrap()
    }

    #[test]
    fn forwarded_open_webui_headers_fill_the_context_of_a_trusted_caller() {
        for who in [caller("", ""), caller("", "owui=o")] {
            let b = build(&owui_headers(), OpenWebUiEvents::Auto, &who);
            let c = b.ctx;
            assert!(!b.ignored_headers);
            assert_eq!(c.user_name.as_deref(), Some("Ada Lovelace"));
            assert_eq!(c.chat_id.as_deref(), Some("c1"));
            assert_eq!(c.message_id.as_deref(), Some("m1"));
            assert_eq!(c.task, None, "an empty task header means no task");
            assert!(c.openwebui_caller);
            assert!(c.openwebui_key);
            assert_eq!(c.key_name, who.name);
        }
        assert_eq!(caller("", "").name, "local");
        let plain = build(&HeaderMap::new(), OpenWebUiEvents::Auto, &caller("", ""));
        assert!(!plain.ctx.openwebui_caller);
    }

    #[test]
    fn a_plain_key_cannot_assert_open_webui_identity() {
        let who = caller("alice=k", "");
        let mut h = owui_headers();
        h.insert(
            "x-openwebui-task",
            HeaderValue::from_static("title_generation"),
        );
        let b = build(&h, OpenWebUiEvents::Auto, &who);
        assert!(b.ignored_headers);
        let c = b.ctx;
        assert_eq!(
            (c.user_id, c.user_name, c.chat_id, c.message_id, c.task),
            (None, None, None, None, None)
        );
        assert!(!c.openwebui_caller, "auto follows trusted headers only");
        assert!(!c.openwebui_key);
        assert_eq!(c.key_name, "alice");
        assert!(
            build(&h, OpenWebUiEvents::Always, &who)
                .ctx
                .openwebui_caller,
            "`always` still forces events"
        );
        let clean = build(&HeaderMap::new(), OpenWebUiEvents::Auto, &who);
        assert!(!clean.ignored_headers);
        let mut jwt_only = HeaderMap::new();
        jwt_only.insert("x-openwebui-user-jwt", HeaderValue::from_static("a.b.c"));
        assert!(build(&jwt_only, OpenWebUiEvents::Auto, &who).ignored_headers);
    }

    #[test]
    fn with_a_jwt_secret_a_trusted_chat_needs_a_valid_token() {
        let secrets = IdentitySecrets {
            webui_secret: None,
            jwt_secret: Some(SecretString::from("jwt-secret")),
        };
        let who = caller("", "owui=o");
        let h = owui_headers();
        assert_eq!(
            request_context(&h, "r", OpenWebUiEvents::Auto, 5_000, &secrets, &who).unwrap_err(),
            IdentityError::MissingUserToken
        );
        let mut bad = owui_headers();
        bad.insert("x-openwebui-user-jwt", HeaderValue::from_static("x.y.z"));
        assert!(matches!(
            request_context(&bad, "r", OpenWebUiEvents::Auto, 5_000, &secrets, &who),
            Err(IdentityError::InvalidUserToken(_))
        ));
        // A plain key's request is a plain call: no token needed, none read.
        let plain = caller("alice=k", "");
        let b = request_context(&bad, "r", OpenWebUiEvents::Auto, 5_000, &secrets, &plain).unwrap();
        assert!(b.ignored_headers);
        assert_eq!(b.ctx.user_id, None);
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
