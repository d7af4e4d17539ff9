//! Hostile bytes from upstream: an HTML error page reaches the caller only as its status and a
//! short plain-text excerpt (never markup, for the JSON error and for Open WebUI's Markdown
//! answer alike); a line that never ends is refused with the size-cap error as soon as it passes
//! `SSE_MAX_EVENT_BYTES` or `HTTP_MAX_RESPONSE_BYTES`, instead of being buffered until the
//! component's CPU budget runs out.

use crate::harness::{Harness, OWUI, content_of};
use fake_openrouter::scenarios::EXCERPT_MARKERS;

/// Text a sanitised error may never contain: markup, and what the page's script and style say.
const NEVER_SHOWN: [&str; 8] = [
    "<",
    ">",
    "script",
    "document.cookie",
    "evil.example",
    "font-family",
    "pool-7",
    "&amp;",
];

#[tokio::test]
async fn an_html_502_page_reaches_the_caller_as_its_status_and_a_short_plain_excerpt() {
    let h = Harness::with_env(&[("BREAKER_MAX_FAILURES", "50")]).await;
    for stream in [true, false] {
        let (status, _, body) = h.error_of("fake/html-502", stream).await;
        assert_eq!(status, 502, "{body}");
        assert_eq!(body["error"]["code"], "upstream_unavailable", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        for bad in NEVER_SHOWN {
            assert!(!message.contains(bad), "{bad:?} in {message}");
        }
        for good in EXCERPT_MARKERS {
            assert!(message.contains(good), "{good:?} missing in {message}");
        }
        assert!(message.contains("HTTP 502"), "{message}");
        assert!(
            !message.contains("\n") && !message.contains("  "),
            "{message}"
        );
        assert!(message.chars().count() < 400, "{message}");
    }
    // Open WebUI: the service-error template, as Markdown, with the same excerpt.
    let (status, text) = h
        .post_with(&Harness::chat_body("fake/html-502", "hi", true), &OWUI)
        .await;
    assert_eq!(status, 200, "{text}");
    let answer = content_of(&crate::harness::sse_data(&text));
    assert!(answer.contains("HTTP 502"), "{answer}");
    for good in EXCERPT_MARKERS {
        assert!(answer.contains(good), "{good:?} missing in {answer}");
    }
    for bad in [
        "<script",
        "<html",
        "<style",
        "document.cookie",
        "evil.example",
        "font-family",
    ] {
        assert!(!answer.contains(bad), "{bad:?} in {answer}");
    }
}

#[tokio::test]
async fn an_endless_line_ends_the_answer_with_the_event_size_error() {
    // The default per-event cap (32 MiB) is crossed long before the 80 MiB line would end.
    let h = Harness::with_env(&[("BREAKER_MAX_FAILURES", "50")]).await;
    let (status, _, body) = h.error_of("fake/endless-line", true).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        body["error"]["code"], "upstream_response_too_large",
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("larger than 33554432 bytes"), "{message}");
    // Not retried: the fake saw the request once.
    assert_eq!(h.posted_bodies("/responses").len(), 1);
    // The host serves on.
    let (status, chunks) = h.stream_chat("fake/echo", "still here").await;
    assert_eq!(status, 200);
    assert_eq!(content_of(&chunks), "echo: still here");
}

#[tokio::test]
async fn an_endless_line_ends_the_answer_at_the_response_cap_when_that_is_smaller() {
    let h = Harness::with_env(&[
        ("BREAKER_MAX_FAILURES", "50"),
        ("SSE_MAX_EVENT_BYTES", "1073741824"),
        ("HTTP_MAX_RESPONSE_BYTES", "16777216"),
    ])
    .await;
    let (status, _, body) = h.error_of("fake/endless-line", false).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        body["error"]["code"], "upstream_response_too_large",
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("size limit"), "{message}");
    // Open WebUI gets the interrupted template as its answer, not the CPU-budget one.
    let (status, text) = h
        .post_with(&Harness::chat_body("fake/endless-line", "hi", true), &OWUI)
        .await;
    assert_eq!(status, 200, "{text}");
    let answer = content_of(&crate::harness::sse_data(&text));
    assert!(answer.contains("size limit"), "{answer}");
}
