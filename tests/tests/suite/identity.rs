//! Identity that cannot be spoofed, through the real host and component: client keys required when
//! configured, the two kinds of client keys (`PIPE_API_KEYS`, `OPENWEBUI_API_KEYS`) and the names
//! they give callers; Open WebUI headers believed only from Open WebUI keys; the signed user token.

use crate::callers::{chat, metric, models, owui_headers, sent, streamed, unix_now, user_jwt};
use crate::harness::{Harness, content_of, logs_text, sse_data};
use responses_pipe_host::config::Config;
use serde_json::{Value, json};

#[tokio::test]
async fn client_keys_are_required_when_configured() {
    let h = Harness::with_env(&[("PIPE_API_KEYS", "client-key-1,client-key-2")]).await;
    let none = models(&h, None, &[]).await;
    assert_eq!(none.status, 401);
    assert!(none.header("x-request-id").is_some());
    assert_eq!(none.code(), "invalid_api_key");
    let wrong = models(&h, Some("client-key-3"), &[]).await;
    assert_eq!(wrong.status, 401);
    let right = models(&h, Some("client-key-2"), &[]).await;
    assert_eq!(right.status, 200);
    let chat = chat(&h, None, &[], &Harness::chat_body("fake/echo", "hi", false)).await;
    assert_eq!(chat.status, 401);
    assert_eq!(h.health().await, 200, "health needs no key");
}

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
