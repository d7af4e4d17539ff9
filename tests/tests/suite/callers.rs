//! Requests as a given caller, for the identity, browser-guard, breaker and task suites: a client
//! key, extra headers (Open WebUI's forwarded identity, a signed user token) and a JSON body, answered
//! as status, headers and text; and the tokens and session ids such a caller's identity yields.

use crate::harness::Harness;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// A request's answer: status, headers and body text.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    pub fn code(&self) -> Value {
        self.json()["error"]["code"].clone()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Send `method path` with an optional bearer key, extra headers and a JSON body.
pub async fn send(
    h: &Harness,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Answer {
    let mut req = h.client.request(method, format!("{}{path}", h.url));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    if let Some(body) = body {
        req = req.json(body);
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    Answer {
        status,
        headers,
        text: resp.text().await.unwrap(),
    }
}

pub async fn chat(
    h: &Harness,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: &Value,
) -> Answer {
    send(
        h,
        reqwest::Method::POST,
        "/v1/chat/completions",
        key,
        headers,
        Some(body),
    )
    .await
}

pub async fn models(h: &Harness, key: Option<&str>, headers: &[(&str, &str)]) -> Answer {
    send(h, reqwest::Method::GET, "/v1/models", key, headers, None).await
}

pub fn streamed(text: &str) -> Value {
    Harness::chat_body("fake/echo", text, true)
}

/// The `/responses` bodies the fake received so far.
pub fn sent(h: &Harness) -> Vec<Value> {
    h.posted_bodies("/responses")
}

/// Open WebUI's forwarded identity for user `user` in chat `chat`.
pub fn owui_headers<'a>(user: &'a str, chat: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("X-OpenWebUI-User-Id", user),
        ("X-OpenWebUI-User-Email", "someone@example.org"),
        ("X-OpenWebUI-Chat-Id", chat),
        ("X-OpenWebUI-Message-Id", "msg-1"),
    ]
}

/// The value of one `/metrics` line that starts with `prefix` (read with `key`), or 0.
pub async fn metric(h: &Harness, key: &str, prefix: &str) -> u64 {
    let page = send(h, reqwest::Method::GET, "/metrics", Some(key), &[], None).await;
    assert_eq!(page.status, 200, "{}", page.text);
    page.text
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HS256 token over `claims`, as Open WebUI signs its forwarded user token.
pub fn user_jwt(claims: &Value, secret: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{header}.{payload}").as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{header}.{payload}.{signature}")
}

/// The `session_id` for a chat: HMAC-SHA256 under HKDF-SHA256(`WEBUI_SECRET_KEY`, info
/// `responses-pipe session-id v1`), never under the raw secret.
pub fn session_hex(secret: &str, chat: &str) -> String {
    let mut key = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(None, secret.as_bytes())
        .expand(b"responses-pipe session-id v1", &mut key)
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(chat.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}
