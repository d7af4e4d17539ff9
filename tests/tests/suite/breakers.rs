//! The breakers that stop a caller's repeated failures from reaching OpenRouter or the database,
//! through the real host and component: the request breaker opens per user until a success clears
//! it, an OpenRouter `401` fails that caller's requests fast for a minute, and both the request and
//! the database breaker keep one bucket per client key and user.

use crate::callers::{chat, owui_headers};
use crate::harness::{Harness, content_of, fresh_chat, marker_ids, sse_data};
use fake_openrouter::fault_proxy::FaultMode;

#[tokio::test]
async fn repeated_failures_open_the_users_request_breaker_until_a_success_clears_it() {
    let h = Harness::with_env(&[("BREAKER_MAX_FAILURES", "2")]).await;
    let owui = |user: &'static str| [("X-OpenWebUI-User-Id", user)];
    for _ in 0..2 {
        let (status, _) = h
            .stream_chat_with("fake/status-502", "hi", &owui("user-b1"))
            .await;
        assert_eq!(status, 200, "Open WebUI gets the template as the answer");
    }
    let asked = h.posted_bodies("/responses").len();
    // Open: refused without asking OpenRouter, for that user only.
    let (status, chunks) = h
        .stream_chat_with("fake/echo", "hi", &owui("user-b1"))
        .await;
    assert_eq!(status, 200);
    assert!(
        content_of(&chunks).contains("Temporarily disabled due to repeated errors"),
        "{chunks:?}"
    );
    assert!(
        crate::harness::events_of_type(&chunks, "notification")
            .iter()
            .any(|n| n["data"]["type"] == "warning" || n["data"]["type"] == "error"),
        "{chunks:?}"
    );
    assert_eq!(h.posted_bodies("/responses").len(), asked);
    let (status, chunks) = h
        .stream_chat_with("fake/echo", "hi", &owui("user-b2"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(content_of(&chunks), "echo: hi");
    // Plain clients are counted together and get a 429.
    for _ in 0..2 {
        let (status, _, _) = h.error_of("fake/status-500", false).await;
        assert_eq!(status, 500);
    }
    let (status, _, body) = h.error_of("fake/echo", false).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "breaker_open", "{body}");
}

#[tokio::test]
async fn after_a_401_that_callers_requests_fail_fast_with_the_auth_template_for_a_minute() {
    let h = Harness::with_env(&[("BREAKER_MAX_FAILURES", "50")]).await;
    let owui = |user: &'static str| [("X-OpenWebUI-User-Id", user)];
    let (status, chunks) = h
        .stream_chat_with("fake/status-401", "hi", &owui("user-a1"))
        .await;
    assert_eq!(status, 200, "{chunks:?}");
    assert!(
        content_of(&chunks).contains("API key not accepted"),
        "{chunks:?}"
    );
    let asked = h.posted_bodies("/responses").len();
    // The same user, any model: the authentication template at once, OpenRouter not asked.
    for model in ["fake/echo", "fake/reasoning"] {
        let (status, chunks) = h.stream_chat_with(model, "hi", &owui("user-a1")).await;
        assert_eq!(status, 200, "{chunks:?}");
        let answer = content_of(&chunks);
        assert!(answer.contains("API key not accepted"), "{answer}");
        assert!(answer.contains("User not found (fake)"), "{answer}");
    }
    assert_eq!(
        h.posted_bodies("/responses").len(),
        asked,
        "not sent upstream"
    );
    // Another user of the same key, and a plain client, are not affected.
    let (status, chunks) = h
        .stream_chat_with("fake/echo", "hi", &owui("user-a2"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(content_of(&chunks), "echo: hi");
    let (status, chunks) = h.stream_chat("fake/echo", "plain").await;
    assert_eq!(status, 200);
    assert_eq!(content_of(&chunks), "echo: plain");

    // A plain client refused once gets a 401 with OpenRouter's words, without a new request.
    let (status, _, _) = h.error_of("fake/status-401", true).await;
    assert_eq!(status, 401);
    let asked = h.posted_bodies("/responses").len();
    let (status, _, body) = h.error_of("fake/echo", false).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "upstream_unauthorized", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("User not found (fake)"), "{message}");
    assert!(
        message.contains("not sent to OpenRouter again for"),
        "{message}"
    );
    assert_eq!(h.posted_bodies("/responses").len(), asked);
}

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
    let (proxy, h) = Harness::behind_postgres_proxy(&[
        ("OPENWEBUI_API_KEYS", "db-a=db-key-a,db-b=db-key-b"),
        ("BREAKER_MAX_FAILURES", "2"),
        ("BREAKER_WINDOW_SECONDS", "60"),
        ("DB_ACQUIRE_TIMEOUT_MS", "500"),
    ])
    .await;
    let chat_id = fresh_chat("idbrk");
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
