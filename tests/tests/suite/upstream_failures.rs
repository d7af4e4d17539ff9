//! Every upstream failure a plain caller sees is a clear error: before output an HTTP status with an
//! OpenAI-style body, after output a bare `{"error":{...}}` chunk (no `choices`); a malformed event
//! is skipped; an unreachable upstream is a clear error; a stream cut before its first event is
//! retried (at most three times), one cut after output is not.

use crate::harness::{Harness, content_of, json_chunks, wait_for_log};
use fake_openrouter::scenarios::{FLAKY_START_CUTS, PARTIAL_DELTAS};
use serde_json::Value;

#[tokio::test]
async fn upstream_statuses_before_output_become_http_errors() {
    // Every request here fails on purpose; the request breaker (tested below) stays out of it.
    let h = Harness::with_env(&[("BREAKER_MAX_FAILURES", "50")]).await;
    let (_, _, body) = h.error_of("fake/status-402", true).await;
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
            let (got, retry, body) = h.error_of(model, stream).await;
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
    let (status, _, body) = h.error_of("fake/failed", true).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "server_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("The model provider failed (fake)")
    );
    let (status, _, body) = h.error_of("fake/error-event", true).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    let (status, _, body) = h.error_of("fake/html", true).await;
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
    let (status, _, body) = h.error_of("fake/drop", false).await;
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
    let h = Harness::with_env(&[("BASE_URL", &format!("http://127.0.0.1:{port}/api/v1"))]).await;
    let (status, _, body) = h.error_of("fake/echo", true).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "catalog_unavailable");
}

#[tokio::test]
async fn a_stream_cut_before_its_first_event_is_retried_at_most_three_times() {
    let h = Harness::start().await;
    let (status, chunks) = h.stream_chat("fake/flaky-start", "again").await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), "echo: again");
    assert!(
        json_chunks(&chunks)
            .iter()
            .all(|c| c.get("error").is_none())
    );
    assert_eq!(h.posted_bodies("/responses").len(), FLAKY_START_CUTS + 1);
    assert!(wait_for_log("retrying after an empty stream").await);

    // A stream that never gets going: the first attempt and three retries, then a clear error.
    let resp = h
        .post_chat(&Harness::chat_body("fake/cut-start", "never", true))
        .await;
    assert_eq!(resp.status().as_u16(), 502);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "stream_interrupted", "{body}");
    let cut = h
        .fake
        .requests()
        .iter()
        .filter(|r| {
            r.path.ends_with("/responses") && r.json().unwrap()["model"] == "fake/cut-start"
        })
        .count();
    assert_eq!(cut, 4);
}

#[tokio::test]
async fn a_stream_cut_after_output_is_not_retried() {
    let h = Harness::start().await;
    let (status, chunks) = h.stream_chat("fake/drop", "once").await;
    assert_eq!(status, 200);
    assert_eq!(content_of(&chunks), PARTIAL_DELTAS.concat());
    assert!(
        json_chunks(&chunks)
            .iter()
            .any(|c| c.get("error").is_some())
    );
    assert_eq!(h.posted_paths(), ["/responses"], "sent once");
}
