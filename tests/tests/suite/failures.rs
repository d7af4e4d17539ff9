//! Every upstream failure becomes a clear error: before output as an HTTP status with an
//! OpenAI-style body, after output as a bare `{"error":{...}}` chunk (no `choices`).

use crate::harness::{Harness, Options, content_of, json_chunks, sse_data};
use serde_json::Value;

async fn error_of(h: &Harness, model: &str, stream: bool) -> (u16, Option<String>, Value) {
    let resp = h.post_chat(&Harness::chat_body(model, "hi", stream)).await;
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn upstream_statuses_before_output_become_http_errors() {
    // Every request here fails on purpose; the request breaker (tested below) stays out of it.
    let h = Harness::with_env(&[("BREAKER_MAX_FAILURES", "50")]).await;
    let (_, _, body) = error_of(&h, "fake/status-402", true).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Insufficient credits")
    );
    for (model, status, code) in [
        ("fake/status-402", 402, "insufficient_credits"),
        ("fake/status-429", 429, "rate_limited"),
        ("fake/status-500", 500, "upstream_unavailable"),
        ("fake/status-502", 502, "upstream_unavailable"),
        ("fake/status-503", 503, "upstream_unavailable"),
        // Last: a 401 refuses this caller's further requests for a minute (the non-streamed
        // request gets the same error without reaching OpenRouter).
        ("fake/status-401", 401, "upstream_unauthorized"),
    ] {
        for stream in [true, false] {
            let (got, retry, body) = error_of(&h, model, stream).await;
            assert_eq!(got, status, "{model} stream={stream}: {body}");
            assert_eq!(body["error"]["code"], code, "{model}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("(fake)"),
                "OpenRouter's message is shown: {message}"
            );
            let error_id = body["error"]["error_id"].as_str().unwrap();
            assert_eq!(error_id.len(), 16);
            assert!(message.contains(error_id));
            assert!(body["error"]["request_id"].as_str().is_some());
            if status == 429 {
                assert_eq!(retry.as_deref(), Some("7"), "Retry-After is passed on");
            }
        }
    }
}

#[tokio::test]
async fn failure_events_before_output_become_http_errors() {
    let h = Harness::start().await;
    let (status, _, body) = error_of(&h, "fake/failed", true).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "server_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("The model provider failed (fake)")
    );
    let (status, _, body) = error_of(&h, "fake/error-event", true).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    let (status, _, body) = error_of(&h, "fake/html", true).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "unexpected_content_type");
}

/// The bare error chunk after some output, and the stream still ends with `[DONE]`.
fn assert_mid_stream_error(chunks: &[String], code: &str) {
    assert!(
        !content_of(chunks).is_empty(),
        "the partial answer was streamed"
    );
    let json = json_chunks(chunks);
    let err = json
        .iter()
        .find(|c| c.get("error").is_some())
        .unwrap_or_else(|| panic!("no error chunk in {chunks:?}"));
    assert!(
        err.get("choices").is_none(),
        "Open WebUI ignores errors that carry choices"
    );
    assert_eq!(err["error"]["code"], code);
    assert!(err["error"]["message"].as_str().unwrap().len() > 10);
    assert_eq!(chunks.last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test]
async fn failures_after_output_become_bare_error_chunks() {
    let h = Harness::start().await;
    let (status, chunks) = h.stream_chat("fake/mid-failure", "hi").await;
    assert_eq!(status, 200);
    assert_mid_stream_error(&chunks, "server_error");
    let (status, chunks) = h.stream_chat("fake/drop", "hi").await;
    assert_eq!(status, 200);
    assert_mid_stream_error(&chunks, "stream_interrupted");
    let (status, chunks) = h.stream_chat("fake/no-terminal", "hi").await;
    assert_eq!(status, 200);
    assert_mid_stream_error(&chunks, "stream_interrupted");
}

#[tokio::test]
async fn a_non_streamed_chat_that_fails_midway_is_an_error_status() {
    let h = Harness::start().await;
    let (status, _, body) = error_of(&h, "fake/drop", false).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "stream_interrupted");
}

#[tokio::test]
async fn a_malformed_event_is_skipped_and_the_answer_completes() {
    let h = Harness::start().await;
    let (status, chunks) = h.stream_chat("fake/malformed", "still fine").await;
    assert_eq!(status, 200);
    assert_eq!(content_of(&chunks), "echo: still fine");
    assert!(
        json_chunks(&chunks)
            .iter()
            .all(|c| c.get("error").is_none())
    );
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_clear_error() {
    // A BASE_URL whose port nobody listens on (bound then dropped).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let h = Harness::with(crate::harness::Options {
        env: vec![("BASE_URL", format!("http://127.0.0.1:{port}/api/v1"))],
        ..Default::default()
    })
    .await;
    let (status, _, body) = error_of(&h, "fake/echo", true).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "catalog_unavailable");
}

#[tokio::test]
async fn a_chat_the_pipe_cannot_finish_shows_open_webui_the_internal_error_template() {
    // A body far larger than the component's memory cap ends that instance; a fresh one
    // renders INTERNAL_ERROR_TEMPLATE with the operator's support address.
    let h = Harness::with(Options {
        env: vec![
            ("GUEST_MEMORY_LIMIT_MB", "16".into()),
            ("SUPPORT_EMAIL", "help@example.test".into()),
        ],
        ..Options::default()
    })
    .await;
    let huge = "x".repeat(10 << 20);
    let resp = h
        .client
        .post(format!("{}/v1/chat/completions", h.url))
        .header("X-OpenWebUI-User-Id", "user-1")
        .header("X-OpenWebUI-Chat-Id", "chat-1")
        .json(&Harness::chat_body("fake/echo", &huge, true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let chunks = sse_data(&resp.text().await.unwrap());
    let content = content_of(&chunks);
    assert!(content.contains("Unexpected error"), "{content}");
    assert!(content.contains("guest_memory_exceeded"), "{content}");
    assert!(content.contains("help@example.test"), "{content}");
    let logs = crate::harness::logs_text();
    let id = content
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| w.len() == 16 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no error id in {content}"));
    assert!(logs.contains(id), "the error id {id} is in the host log");

    // A plain client gets the HTTP error, and the host keeps serving.
    let resp = h
        .post_chat(&Harness::chat_body("fake/echo", &huge, false))
        .await;
    assert_eq!(resp.status().as_u16(), 500);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "guest_memory_exceeded", "{v}");
    let (status, chunks) = h.stream_chat("fake/echo", "still here").await;
    assert_eq!(status, 200);
    assert_eq!(content_of(&chunks), "echo: still here");
}

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
        let (status, _, _) = error_of(&h, "fake/status-500", false).await;
        assert_eq!(status, 500);
    }
    let (status, _, body) = error_of(&h, "fake/echo", false).await;
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
    let (status, _, _) = error_of(&h, "fake/status-401", true).await;
    assert_eq!(status, 401);
    let asked = h.posted_bodies("/responses").len();
    let (status, _, body) = error_of(&h, "fake/echo", false).await;
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
