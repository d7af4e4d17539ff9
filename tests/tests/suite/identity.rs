//! Identity that cannot be spoofed, through the real host and component: the two kinds of client
//! keys (`PIPE_API_KEYS`, `OPENWEBUI_API_KEYS`) and the names they give callers; Open WebUI
//! headers believed only from Open WebUI keys; the signed user token; breakers per key and user;
//! the task fast path and the model filters for tasks; and the browser guard (Host, Origin,
//! Content-Type) that keeps web pages on the same machine out.

use crate::harness::{Harness, Options, content_of, logs_text, marker_ids, sse_data};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fake_openrouter::fault_proxy::{FaultMode, FaultProxy};
use hmac::{Hmac, Mac};
use responses_pipe_host::config::Config;
use serde_json::{Value, json};
use sha2::Sha256;

/// A request's answer: status, headers and body text.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    fn code(&self) -> Value {
        self.json()["error"]["code"].clone()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Send `method path` with an optional bearer key, extra headers and a JSON body.
async fn send(
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

async fn chat(h: &Harness, key: Option<&str>, headers: &[(&str, &str)], body: &Value) -> Answer {
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

async fn models(h: &Harness, key: Option<&str>, headers: &[(&str, &str)]) -> Answer {
    send(h, reqwest::Method::GET, "/v1/models", key, headers, None).await
}

fn streamed(text: &str) -> Value {
    Harness::chat_body("fake/echo", text, true)
}

/// The `/responses` bodies the fake received so far.
fn sent(h: &Harness) -> Vec<Value> {
    h.posted_bodies("/responses")
}

/// Open WebUI's forwarded identity for user `user` in chat `chat`.
fn owui_headers<'a>(user: &'a str, chat: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("X-OpenWebUI-User-Id", user),
        ("X-OpenWebUI-User-Email", "someone@example.org"),
        ("X-OpenWebUI-Chat-Id", chat),
        ("X-OpenWebUI-Message-Id", "msg-1"),
    ]
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HS256 token over `claims`, as Open WebUI signs its forwarded user token.
fn user_jwt(claims: &Value, secret: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{header}.{payload}").as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{header}.{payload}.{signature}")
}

/// The value of one `/metrics` line that starts with `prefix` (read with `key`), or 0.
async fn metric(h: &Harness, key: &str, prefix: &str) -> u64 {
    let page = send(h, reqwest::Method::GET, "/metrics", Some(key), &[], None).await;
    assert_eq!(page.status, 200, "{}", page.text);
    page.text
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// 1. Two kinds of client keys, named callers

#[tokio::test]
async fn only_an_open_webui_key_may_assert_open_webui_identity() {
    const PLAIN: &str = "plain-key-SECRET-1a2b";
    const OWUI: &str = "owui-key-SECRET-3c4d";
    let h = Harness::with_env(&[
        ("PIPE_API_KEYS", "id-plain=plain-key-SECRET-1a2b"),
        ("OPENWEBUI_API_KEYS", "id-owui=owui-key-SECRET-3c4d"),
        ("SEND_END_USER_ID", "true"),
        ("SEND_CHAT_ID", "true"),
    ])
    .await;
    let forwarded = owui_headers("user-42", "chat-7");

    // An Open WebUI key: the user and the chat are believed, and events are on.
    let a = chat(&h, Some(OWUI), &forwarded, &streamed("hi")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let body = sent(&h).pop().unwrap();
    assert_eq!(body["user"], "user-42", "{body:#}");
    assert_eq!(body["metadata"]["chat_id"], "chat-7", "{body:#}");

    // A plain key sending the same headers is a plain API call of that key.
    let ignored = "responses_pipe_identity_headers_ignored_total{reason=\"plain_key\"} ";
    assert_eq!(metric(&h, OWUI, ignored).await, 0);
    for round in 1..=2 {
        let a = chat(&h, Some(PLAIN), &forwarded, &streamed("hi")).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(content_of(&sse_data(&a.text)), "echo: hi");
        assert!(
            !a.text.contains("\"event\""),
            "no Open WebUI events: {}",
            a.text
        );
        let body = sent(&h).pop().unwrap();
        assert!(body.get("user").is_none(), "{body:#}");
        assert!(body.get("metadata").is_none(), "{body:#}");
        assert_eq!(
            metric(&h, OWUI, ignored).await,
            round,
            "counted per request"
        );
    }
    let logs = logs_text();
    let said = logs
        .lines()
        .filter(|l| l.contains("ignoring Open WebUI identity headers") && l.contains("id-plain"))
        .count();
    assert_eq!(said, 1, "logged once per key, not per request");
    assert!(
        !logs.contains(PLAIN) && !logs.contains(OWUI),
        "keys are never logged"
    );

    // No key, or a wrong one: 401.
    for key in [None, Some("id-plain"), Some("nope")] {
        let a = chat(&h, key, &forwarded, &streamed("hi")).await;
        assert_eq!(a.status, 401, "{key:?}: {}", a.text);
        assert_eq!(a.code(), "invalid_api_key");
    }
}

#[tokio::test]
async fn the_key_name_is_the_request_spans_key_field() {
    let h = Harness::with_env(&[
        ("PIPE_API_KEYS", "span-plain=span-key-SECRET-77"),
        ("OPENWEBUI_API_KEYS", "span-owui-key-SECRET-88"),
    ])
    .await;
    for (key, name, id) in [
        ("span-key-SECRET-77", "span-plain", "span-req-plain-1"),
        ("span-owui-key-SECRET-88", "openwebui-1", "span-req-owui-1"),
    ] {
        let a = chat(&h, Some(key), &[("x-request-id", id)], &streamed("hi")).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let logs = logs_text();
        let line = logs
            .lines()
            .find(|l| l.contains(&format!("request_id={id}")) && l.contains("chat request"))
            .unwrap_or_else(|| panic!("a chat request line for {id}"));
        assert!(line.contains(&format!("key={name}")), "{line}");
        assert!(!logs.contains(key), "the key itself is never logged");
    }
}

#[tokio::test]
async fn with_only_open_webui_keys_the_host_is_not_keyless() {
    let h = Harness::with_env(&[("OPENWEBUI_API_KEYS", "only-owui-key-1")]).await;
    assert!(!h.app.keys.is_open());
    assert_eq!(models(&h, None, &[]).await.status, 401);
    assert_eq!(models(&h, Some("only-owui-key-1"), &[]).await.status, 200);
    // Not keyless, so not loopback-only either: a request addressed by another name passes.
    let a = models(
        &h,
        Some("only-owui-key-1"),
        &[("host", "pipe.internal.example:8080")],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
}

#[tokio::test]
async fn a_key_in_both_lists_stops_the_start_up_naming_the_entry() {
    let env = |name: &str| match name {
        "PIPE_API_KEYS" => Some("alice=both-lists-SECRET-9".to_string()),
        "OPENWEBUI_API_KEYS" => Some("owui=k-1,both-lists-SECRET-9".to_string()),
        _ => None,
    };
    let text = match Config::load(None, &env) {
        Ok(_) => panic!("a key in both lists must not load"),
        Err(e) => e.to_string(),
    };
    assert!(
        text.contains("OPENWEBUI_API_KEYS entry 2 (`openwebui-2`)")
            && text.contains("PIPE_API_KEYS entry 1 (`alice`)"),
        "{text}"
    );
    assert!(!text.contains("both-lists-SECRET-9"), "{text}");
    let dup_name = |name: &str| match name {
        "PIPE_API_KEYS" => Some("same=k-a".to_string()),
        "OPENWEBUI_API_KEYS" => Some("same=k-b".to_string()),
        _ => None,
    };
    let text = Config::load(None, &dup_name).err().unwrap().to_string();
    assert!(text.contains("the name is also used"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// 3. The signed user token

#[tokio::test]
async fn with_a_jwt_secret_an_open_webui_chat_needs_a_valid_user_token() {
    const SECRET: &str = "jwt-secret-SECRET-5e6f";
    let h = Harness::with_env(&[
        ("PIPE_API_KEYS", "jwt-plain=jwt-plain-key"),
        ("OPENWEBUI_API_KEYS", "jwt-owui=jwt-owui-key"),
        ("FORWARD_USER_INFO_HEADER_JWT_SECRET", SECRET),
        ("SEND_END_USER_ID", "true"),
    ])
    .await;
    let now = unix_now();
    let claims = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut c = json!({"sub": "jwt-user", "email": "j@example.org", "name": "Jay",
                           "role": "user", "iss": "open-webui", "iat": now, "exp": now + 300});
        f(c.as_object_mut().unwrap());
        user_jwt(&c, SECRET)
    };
    let chat_headers = [("X-OpenWebUI-Chat-Id", "chat-jwt")];
    let with = |token: &str| -> Vec<(&'static str, String)> {
        vec![
            ("X-OpenWebUI-Chat-Id", "chat-jwt".to_string()),
            ("X-OpenWebUI-User-Id", "spoofed-admin".to_string()),
            ("X-OpenWebUI-User-Jwt", token.to_string()),
        ]
    };
    let post = |headers: Vec<(&'static str, String)>| {
        let h = &h;
        async move {
            let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            chat(h, Some("jwt-owui-key"), &refs, &streamed("hi")).await
        }
    };

    // Valid (also 30 s past its expiry: within the minute of clock leeway).
    for token in [
        claims(&|_| {}),
        claims(&|c| {
            c.insert("exp".into(), json!(now - 30));
        }),
    ] {
        let a = post(with(&token)).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let body = sent(&h).pop().unwrap();
        assert_eq!(body["user"], "jwt-user", "{body:#}");
    }

    // Missing or invalid: 401 with a clear message, never served under the plain headers.
    let before = sent(&h).len();
    let missing = chat(
        &h,
        Some("jwt-owui-key"),
        &[chat_headers[0], ("X-OpenWebUI-User-Id", "spoofed-admin")],
        &streamed("hi"),
    )
    .await;
    assert_eq!(missing.status, 401, "{}", missing.text);
    assert_eq!(missing.code(), "invalid_user_token");
    assert_eq!(missing.json()["error"]["type"], "authentication_error");
    assert!(
        missing.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("X-OpenWebUI-User-Jwt"),
        "{}",
        missing.text
    );
    let bad = [
        (
            "no iss",
            claims(&|c| {
                c.remove("iss");
            }),
            "`iss`",
        ),
        (
            "no iat",
            claims(&|c| {
                c.remove("iat");
            }),
            "`iat`",
        ),
        (
            "no exp",
            claims(&|c| {
                c.remove("exp");
            }),
            "`exp`",
        ),
        (
            "other issuer",
            claims(&|c| {
                c.insert("iss".into(), json!("elsewhere"));
            }),
            "open-webui",
        ),
        (
            "expired",
            claims(&|c| {
                c.insert("exp".into(), json!(now - 120));
            }),
            "expired",
        ),
        (
            "from the future",
            claims(&|c| {
                c.insert("iat".into(), json!(now + 600));
            }),
            "not valid yet",
        ),
        (
            "forged",
            user_jwt(
                &json!({"sub": "x", "iss": "open-webui", "iat": now, "exp": now + 60}),
                "other",
            ),
            "signature",
        ),
    ];
    for (what, token, needle) in bad {
        let a = post(with(&token)).await;
        assert_eq!(a.status, 401, "{what}: {}", a.text);
        assert_eq!(a.code(), "invalid_user_token", "{what}");
        let message = a.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains(needle), "{what}: {message}");
        assert!(!a.text.contains(&token), "{what}: the token is not echoed");
    }
    assert_eq!(sent(&h).len(), before, "nothing was served");

    // A plain key's request is a plain call: no token asked for, no user taken.
    let a = chat(
        &h,
        Some("jwt-plain-key"),
        &[chat_headers[0], ("X-OpenWebUI-User-Id", "spoofed-admin")],
        &streamed("hi"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(sent(&h).pop().unwrap().get("user").is_none());
    // Only chats need the token.
    assert_eq!(models(&h, Some("jwt-owui-key"), &[]).await.status, 200);
    assert!(!logs_text().contains(SECRET));
}

// ---------------------------------------------------------------------------------------------
// 4. Breakers per (key, user)

#[tokio::test]
async fn a_request_breaker_opened_by_one_key_does_not_refuse_another() {
    let h = Harness::with_env(&[
        ("PIPE_API_KEYS", "brk-a=brk-key-a,brk-b=brk-key-b"),
        ("BREAKER_MAX_FAILURES", "2"),
    ])
    .await;
    let failing = Harness::chat_body("fake/status-500", "hi", false);
    let fine = Harness::chat_body("fake/echo", "hi", false);
    for _ in 0..2 {
        assert_eq!(chat(&h, Some("brk-key-a"), &[], &failing).await.status, 500);
    }
    let a = chat(&h, Some("brk-key-a"), &[], &fine).await;
    assert_eq!(a.status, 429, "{}", a.text);
    assert_eq!(a.code(), "breaker_open");
    let b = chat(&h, Some("brk-key-b"), &[], &fine).await;
    assert_eq!(b.status, 200, "key B has its own bucket: {}", b.text);
}

#[tokio::test]
async fn the_database_breaker_is_per_key_and_user() {
    let proxy = FaultProxy::start("127.0.0.1:5432".parse().unwrap())
        .await
        .unwrap();
    let h = Harness::with(Options {
        env: vec![
            ("OPENWEBUI_API_KEYS", "db-a=db-key-a,db-b=db-key-b".into()),
            ("BREAKER_MAX_FAILURES", "2".into()),
            ("BREAKER_WINDOW_SECONDS", "60".into()),
            ("DB_ACQUIRE_TIMEOUT_MS", "500".into()),
            (
                "DATABASE_URL",
                format!("postgres://postgres@{}/test", proxy.addr()),
            ),
        ],
        ..Options::default()
    })
    .await;
    let chat_id = crate::harness::fresh_chat("idbrk");
    let turn = |key: &'static str| {
        let h = &h;
        let chat_id = chat_id.clone();
        async move {
            let body = Harness::chat_body("fake/reasoning", "hello there", true);
            let a = chat(h, Some(key), &owui_headers("same-user", &chat_id), &body).await;
            assert_eq!(a.status, 200, "{}", a.text);
            a.text
        }
    };
    assert_eq!(
        marker_ids(&content_of(&sse_data(&turn("db-key-a").await))).len(),
        1
    );
    proxy.set_mode(FaultMode::Refuse);
    for _ in 0..2 {
        assert!(turn("db-key-a").await.contains("could not be saved"));
    }
    assert!(
        turn("db-key-a").await.contains("DB ops skipped"),
        "open for key A's user"
    );
    // The same user id behind another Open WebUI key is another principal: the database is
    // tried (and fails), not skipped.
    let other = turn("db-key-b").await;
    assert!(other.contains("could not be saved"), "{other}");
    assert!(!other.contains("DB ops skipped"), "{other}");
}

// ---------------------------------------------------------------------------------------------
// 5. Tasks

#[tokio::test]
async fn only_open_webui_keys_take_the_task_fast_path() {
    let h = Harness::with_env(&[
        ("PIPE_API_KEYS", "task-plain=task-plain-key"),
        ("OPENWEBUI_API_KEYS", "task-owui=task-owui-key"),
    ])
    .await;
    let task_header = [("X-OpenWebUI-Task", "title_generation")];
    let shaped = Harness::chat_body("fake/echo", "### Task:\nGenerate a title", false);
    for (key, is_task) in [("task-owui-key", true), ("task-plain-key", false)] {
        // The task header, on a streamed body.
        let a = chat(&h, Some(key), &task_header, &streamed("Write a title")).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(sent(&h).pop().unwrap()["stream"], !is_task, "{key}: header");
        // The task prompt shape, non-streamed, without the header.
        let a = chat(&h, Some(key), &[], &shaped).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let body = sent(&h).pop().unwrap();
        assert_eq!(body["stream"], !is_task, "{key}: shape: {body:#}");
        assert_eq!(
            body["reasoning"]["effort"],
            if is_task { "low" } else { "medium" },
            "{key}: the task effort only for a task"
        );
    }
}

#[tokio::test]
async fn a_task_naming_a_filtered_model_is_refused_like_a_chat() {
    let h = Harness::with_env(&[
        ("OPENWEBUI_API_KEYS", "filt-owui=filt-owui-key"),
        ("FREE_MODEL_FILTER", "only"),
    ])
    .await;
    let body = Harness::chat_body("fake/echo", "### Task:\nGenerate a title", false);
    let headers = [
        ("X-OpenWebUI-Task", "title_generation"),
        ("X-OpenWebUI-Chat-Id", "chat-filt"),
    ];
    let task = chat(&h, Some("filt-owui-key"), &headers, &body).await;
    assert_eq!(task.status, 403, "{}", task.text);
    assert_eq!(task.code(), "model_restricted");
    let message = task.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("FREE_MODEL_FILTER=only"), "{message}");
    assert!(sent(&h).is_empty(), "OpenRouter was not asked");
    // A free model passes the same filter as a task.
    let free = Harness::chat_body(
        "meta-llama/llama-3.3-70b-instruct:free",
        "### Task:\nGenerate a title",
        false,
    );
    let ok = chat(&h, Some("filt-owui-key"), &headers, &free).await;
    assert_ne!(ok.code(), "model_restricted", "{}", ok.text);
}

// ---------------------------------------------------------------------------------------------
// 6. The browser guard

#[tokio::test]
async fn a_keyless_host_answers_only_requests_addressed_to_loopback() {
    let h = Harness::start().await;
    let port = h.url.rsplit(':').next().unwrap().to_string();
    for host in [
        format!("localhost:{port}"),
        "LOCALHOST".to_string(),
        format!("app.localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "127.9.9.9".to_string(),
        format!("[::1]:{port}"),
    ] {
        let a = models(&h, None, &[("host", host.as_str())]).await;
        assert_eq!(a.status, 200, "{host}: {}", a.text);
    }
    let before = sent(&h).len();
    for host in [
        format!("evil.example:{port}"),
        "rebind.attacker.test".to_string(),
        format!("0.0.0.0:{port}"),
        format!("192.168.1.5:{port}"),
    ] {
        let a = models(&h, None, &[("host", host.as_str())]).await;
        assert_eq!(a.status, 421, "{host}: {}", a.text);
        assert_eq!(a.code(), "host_not_allowed");
        assert!(a.header("x-request-id").is_some());
        let c = chat(&h, None, &[("host", host.as_str())], &streamed("hi")).await;
        assert_eq!(c.status, 421, "{host}: {}", c.text);
        let health = send(
            &h,
            reqwest::Method::GET,
            "/healthz",
            None,
            &[("host", host.as_str())],
            None,
        )
        .await;
        assert_eq!(health.status, 421, "{host}");
    }
    assert_eq!(sent(&h).len(), before, "nothing reached OpenRouter");
}

#[tokio::test]
async fn an_origin_must_be_listed_and_a_listed_one_gets_cors() {
    for keyed in [false, true] {
        let mut env = vec![("CORS_ALLOWED_ORIGINS", "https://app.example".to_string())];
        if keyed {
            env.push(("PIPE_API_KEYS", "cors-key".to_string()));
        }
        let h = Harness::with(Options {
            env,
            ..Options::default()
        })
        .await;
        let key = keyed.then_some("cors-key");
        // An unlisted origin: refused, whatever the request.
        for origin in ["https://evil.example", "null", "http://localhost:3000"] {
            let a = models(&h, key, &[("origin", origin)]).await;
            assert_eq!(a.status, 403, "{origin}: {}", a.text);
            assert_eq!(a.code(), "origin_not_allowed");
            assert!(a.header("access-control-allow-origin").is_none());
            let c = chat(&h, key, &[("origin", origin)], &streamed("hi")).await;
            assert_eq!(c.status, 403, "{origin}");
            let pre = send(
                &h,
                reqwest::Method::OPTIONS,
                "/v1/chat/completions",
                None,
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                ],
                None,
            )
            .await;
            assert_eq!(pre.status, 403, "{origin}: preflight");
        }
        assert!(sent(&h).is_empty());
        // The listed origin: a working preflight, then CORS headers on the answer.
        let pre = send(
            &h,
            reqwest::Method::OPTIONS,
            "/v1/chat/completions",
            None,
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "authorization, content-type",
                ),
            ],
            None,
        )
        .await;
        assert_eq!(pre.status, 204, "{}", pre.text);
        assert_eq!(
            pre.header("access-control-allow-origin"),
            Some("https://app.example")
        );
        let methods = pre.header("access-control-allow-methods").unwrap();
        assert!(methods.contains("POST"), "{methods}");
        let allowed = pre.header("access-control-allow-headers").unwrap();
        assert!(
            allowed.contains("authorization") && allowed.contains("content-type"),
            "{allowed}"
        );
        let a = chat(
            &h,
            key,
            &[("origin", "https://app.example")],
            &streamed("hi"),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(
            a.header("access-control-allow-origin"),
            Some("https://app.example")
        );
        assert!(
            a.header("access-control-expose-headers")
                .is_some_and(|h| h.contains("x-request-id"))
        );
        assert_eq!(content_of(&sse_data(&a.text)), "echo: hi");
        // Without `Origin` (API clients) nothing changes.
        let plain = chat(&h, key, &[], &streamed("hi")).await;
        assert_eq!(plain.status, 200);
        assert!(plain.header("access-control-allow-origin").is_none());
    }
}

#[tokio::test]
async fn a_post_whose_body_is_not_declared_json_is_415() {
    let h = Harness::start().await;
    let body = serde_json::to_vec(&streamed("hi")).unwrap();
    let post = |content_type: Option<&'static str>| {
        let mut req = h
            .client
            .post(format!("{}/v1/chat/completions", h.url))
            .body(body.clone());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap())
        }
    };
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let (status, text) = post(ct).await;
        assert_eq!(status, 415, "{ct:?}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["code"], "unsupported_media_type");
    }
    assert!(sent(&h).is_empty());
    let (status, text) = post(Some("application/json; charset=utf-8")).await;
    assert_eq!(status, 200, "{text}");
}
