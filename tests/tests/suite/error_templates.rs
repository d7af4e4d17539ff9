//! What Open WebUI is shown when a chat fails, through the real host and component: the rendered
//! error template as the answer (plain callers get the HTTP status), one for each upstream status
//! with OpenRouter's details, the typed error shape, the stream-interrupted, connection and timeout
//! templates, the model-restricted template, and the internal error template for a chat the
//! component cannot finish. Every rendered template carries one error id (also in the host log), a
//! timestamp and no template syntax.

use crate::harness::{
    Harness, OWUI, Options, answer_text, content_of, error_ids, fake_config, has_template_syntax,
    json_chunks, message_content, owned, sse_data, wait_for_log,
};
use fake_openrouter::FakeOpenRouter;
use fake_openrouter::fault_proxy::{FaultMode, FaultProxy};
use fake_openrouter::scenarios::{PARTIAL_DELTAS, TYPED_ERROR_FALLBACKS};
use serde_json::Value;

/// A rendered error template as an Open WebUI answer: one error id, also in the host log
/// between brackets; a timestamp; no template syntax left.
async fn assert_rendered_template(content: &str) {
    let ids = error_ids(content);
    assert_eq!(ids.len(), 1, "one error id: {content}");
    assert!(
        content.contains(&format!("Error ID: `{}`", ids[0])),
        "{content}"
    );
    assert!(
        wait_for_log(&format!("[{}]", ids[0])).await,
        "the error id {} is in the host log",
        ids[0]
    );
    let time = content
        .lines()
        .find_map(|l| l.strip_prefix("- Time: "))
        .unwrap_or_else(|| panic!("a time line: {content}"));
    assert!(
        time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "{time}"
    );
    assert!(!has_template_syntax(content), "{content}");
}

/// A harness whose OpenRouter is reached through a fault proxy; the catalogue is loaded (and
/// cached) by one good chat before the proxy misbehaves.
async fn behind_proxy(env: &[(&'static str, &str)]) -> (Harness, FaultProxy, FakeOpenRouter) {
    let fake = FakeOpenRouter::start(fake_config()).await.unwrap();
    let proxy = FaultProxy::start(fake.addr()).await.unwrap();
    let mut all = owned(env);
    all.push(("BASE_URL", format!("http://{}/api/v1", proxy.addr())));
    let h = Harness::with(Options {
        env: all,
        ..Options::default()
    })
    .await;
    let (status, chunks) = h.stream_chat("fake/echo", "warm up").await;
    assert_eq!(status, 200, "{chunks:?}");
    (h, proxy, fake)
}

#[tokio::test]
async fn open_webui_gets_the_rendered_error_template_as_the_answer_while_plain_callers_get_the_status()
 {
    let h = Harness::start().await;
    for stream in [true, false] {
        let body = Harness::chat_body("fake/status-402", "hi", stream);
        let (status, text) = h.post_with(&body, &OWUI).await;
        assert_eq!(status, 200, "stream={stream}: {text}");
        let content = answer_text(stream, &text);
        assert!(content.to_lowercase().contains("credits"), "{content}");
        assert!(!error_ids(&content).is_empty(), "{content}");
        assert!(!has_template_syntax(&content), "{content}");
    }
    let (status, text) = h
        .post_with(&Harness::chat_body("fake/status-402", "hi", true), &[])
        .await;
    assert_eq!(status, 402, "{text}");
}

#[tokio::test]
async fn open_webui_gets_the_template_of_each_upstream_status_with_openrouters_details() {
    let h = Harness::with_env(&[
        ("SUPPORT_EMAIL", "help@example.com"),
        ("SUPPORT_URL", "https://help.example/pipe"),
        // Every request fails on purpose; the request breaker stays out of it.
        ("BREAKER_MAX_FAILURES", "50"),
    ])
    .await;
    // (model, expected lines): `metadata.raw` is a JSON string holding the provider's own error.
    let cases: [(&str, &[&str]); 8] = [
        (
            "fake/status-403",
            &[
                "### ⚠️ OpenRouter could not handle this request",
                "The request was refused (HTTP 403).",
                "- Model: `fake/status-403` via FakeProvider",
                "- Message: upstream said no",
            ],
        ),
        (
            "fake/status-408",
            &[
                "### ⚠️ The model took too long",
                "- OpenRouter said: upstream said no",
            ],
        ),
        (
            "fake/status-413",
            &[
                "### ⚠️ Request too large",
                "- OpenRouter said: upstream said no",
            ],
        ),
        (
            "fake/status-429",
            &[
                "### ⚠️ Rate limited",
                "FakeProvider through OpenRouter",
                "(limit scope: user)",
                "- Try again in: 7 s",
                "- Requests left: 0 of 20",
            ],
        ),
        (
            "fake/status-500",
            &[
                "### ⚠️ OpenRouter service problem",
                "(HTTP 500 Internal Server Error)",
                "- Provider: FakeProvider",
            ],
        ),
        ("fake/status-502", &["(HTTP 502 Bad Gateway)"]),
        ("fake/status-503", &["(HTTP 503 Service Unavailable)"]),
        // Last: a 401 refuses this caller's further requests for a minute (the second, non-streamed
        // request gets the same template without reaching OpenRouter).
        (
            "fake/status-401",
            &[
                "### ⚠️ API key not accepted",
                "- OpenRouter said: User not found (fake)",
            ],
        ),
    ];
    for (model, expected) in cases {
        for stream in [true, false] {
            let (status, text) = h
                .post_with(&Harness::chat_body(model, "hi", stream), &OWUI)
                .await;
            assert_eq!(status, 200, "{model}: {text}");
            let content = answer_text(stream, &text);
            for line in expected {
                assert!(content.contains(line), "{model}: no {line:?} in\n{content}");
            }
            assert!(
                content.contains("- Need help? Email help@example.com and quote the error ID")
                    && content.contains("- Help page: https://help.example/pipe"),
                "{model}: {content}"
            );
            assert_rendered_template(&content).await;
        }
    }
    // The 413 template's model limits are not known here: those lines are dropped whole.
    let (_, text) = h
        .post_with(&Harness::chat_body("fake/status-413", "hi", false), &OWUI)
        .await;
    assert!(!text.contains("Context window"), "{text}");
}

#[tokio::test]
async fn the_typed_error_shape_fills_error_type_availability_and_retry_in_an_operator_template() {
    let template = "Overloaded: {error_type}\n\
                    {{#if availability}}Availability: {availability}{{/if}}\n\
                    Try instead: {fallback_models}\n\
                    Retry in {retry_after_seconds} s\n\
                    Provider said: {upstream_message}\n\
                    {{#if upstream_type}}Upstream type shown{{/if}}\n\
                    Ref {error_id}";
    let h = Harness::with_env(&[("SERVICE_ERROR_TEMPLATE", template)]).await;
    let (status, chunks) = h.stream_chat_with("fake/typed-error", "hi", &OWUI).await;
    assert_eq!(status, 200, "{chunks:?}");
    let content = content_of(&chunks);
    let lines: Vec<&str> = content.lines().collect();
    assert_eq!(lines.len(), 5, "{content}");
    assert_eq!(lines[0], "Overloaded: provider_overloaded");
    assert_eq!(lines[1], "Availability: capacity_exhausted");
    assert_eq!(
        lines[2],
        format!("Try instead: {}", TYPED_ERROR_FALLBACKS.join(", "))
    );
    assert_eq!(lines[3], "Retry in 3 s", "2.5 s rounded up");
    assert!(lines[4].starts_with("Ref ") && error_ids(lines[4]).len() == 1);

    // A plain caller gets the status and OpenRouter's message.
    let resp = h
        .post_chat(&Harness::chat_body("fake/typed-error", "hi", true))
        .await;
    assert_eq!(resp.status().as_u16(), 503);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("All providers for this model are overloaded (fake)"),
        "{body}"
    );
}

#[tokio::test]
async fn open_webui_gets_the_stream_interrupted_template_after_the_partial_answer() {
    let h = Harness::with_env(&[("SUPPORT_EMAIL", "help@example.com")]).await;
    let (status, chunks) = h.stream_chat_with("fake/no-terminal", "go", &OWUI).await;
    assert_eq!(status, 200, "{chunks:?}");
    let content = content_of(&chunks);
    let partial = PARTIAL_DELTAS.concat();
    let notice = content
        .strip_prefix(&partial)
        .unwrap_or_else(|| panic!("the partial answer comes first: {content}"));
    assert!(notice.starts_with("\n\n### ⚠️ Reply cut short"), "{notice}");
    assert!(notice.contains("- What happened: "), "{notice}");
    // No provider is known for a cut stream: that line is left out, not left blank.
    assert!(!notice.contains("Provider:"), "{notice}");
    assert!(
        notice.contains("Email help@example.com and quote the error ID"),
        "{notice}"
    );
    assert_rendered_template(notice).await;
    assert!(
        json_chunks(&chunks)
            .iter()
            .all(|c| c.get("error").is_none())
    );

    // An operator's own template replaces it; lines whose placeholder is empty are dropped.
    let h = Harness::with_env(&[(
        "STREAM_INTERRUPTED_TEMPLATE",
        "Cut off ({error_id}).\nProvider: {provider}\n{{#if reason}}Because: {reason}{{/if}}",
    )])
    .await;
    let (_, chunks) = h.stream_chat_with("fake/no-terminal", "go", &OWUI).await;
    let content = content_of(&chunks);
    let notice = content.strip_prefix(&partial).unwrap();
    let lines: Vec<&str> = notice.trim().lines().collect();
    assert_eq!(lines.len(), 2, "{notice}");
    assert!(lines[0].starts_with("Cut off (") && error_ids(lines[0]).len() == 1);
    assert!(lines[1].starts_with("Because: "), "{notice}");
}

#[tokio::test]
async fn an_unreachable_openrouter_gets_the_connection_error_template_after_the_retries() {
    let (h, proxy, fake) = behind_proxy(&[]).await;
    proxy.set_mode(FaultMode::Refuse);
    let before = proxy.accepted();
    let (status, chunks) = h.stream_chat_with("fake/echo", "anyone?", &OWUI).await;
    assert_eq!(status, 200, "{chunks:?}");
    let content = content_of(&chunks);
    assert!(
        content.starts_with("### ⚠️ Could not reach OpenRouter"),
        "{content}"
    );
    assert!(
        content.contains("- Connecting to: `/responses`"),
        "{content}"
    );
    assert!(content.contains("- Failure: "), "{content}");
    assert_rendered_template(&content).await;
    // The first attempt may still find a pooled connection; each retry needs a new one.
    assert!(proxy.accepted() - before >= 3, "three retries");
    assert!(fake.spec_violations().is_empty());
}

#[tokio::test]
async fn an_openrouter_that_never_answers_gets_the_network_timeout_template() {
    let (h, proxy, fake) = behind_proxy(&[("HTTP_SOCK_READ_SECONDS", "1")]).await;
    proxy.set_mode(FaultMode::Stall);
    let (status, chunks) = h.stream_chat_with("fake/echo", "hello?", &OWUI).await;
    assert_eq!(status, 200, "{chunks:?}");
    let content = content_of(&chunks);
    assert!(content.starts_with("### ⚠️ No reply in time"), "{content}");
    assert!(content.contains("within 1 seconds"), "{content}");
    assert!(content.contains("- Waiting for: `/responses`"), "{content}");
    assert_rendered_template(&content).await;
    proxy.set_mode(FaultMode::Pass);
    assert!(fake.spec_violations().is_empty());
}

#[tokio::test]
async fn open_webui_gets_the_model_restricted_template_with_the_reasons() {
    let h = Harness::with_env(&[("FREE_MODEL_FILTER", "only")]).await;
    let (status, text) = h
        .post_with(&Harness::chat_body("fake/echo", "hi", true), &OWUI)
        .await;
    assert_eq!(status, 200, "{text}");
    let content = content_of(&sse_data(&text));
    assert!(content.contains("fake/echo"), "{content}");
    assert!(content.contains("FREE_MODEL_FILTER=only"), "{content}");

    let custom = Harness::with_env(&[
        ("FREE_MODEL_FILTER", "only"),
        (
            "MODEL_RESTRICTED_TEMPLATE",
            "Blocked {requested_model}: {restriction_reasons}",
        ),
    ])
    .await;
    let (status, text) = custom
        .post_with(&Harness::chat_body("fake/echo", "hi", false), &OWUI)
        .await;
    assert_eq!(status, 200, "{text}");
    let content = message_content(&text);
    assert!(content.starts_with("Blocked fake/echo: "), "{content}");
    assert!(content.contains("FREE_MODEL_FILTER=only"), "{content}");
    assert_eq!(
        h.post_count() + custom.post_count(),
        0,
        "nothing sent upstream"
    );
}

#[tokio::test]
async fn a_chat_the_pipe_cannot_finish_shows_open_webui_the_internal_error_template() {
    // A body far larger than the component's memory cap ends that instance; a fresh one
    // renders INTERNAL_ERROR_TEMPLATE with the operator's support address.
    let h = Harness::with_env(&[
        ("GUEST_MEMORY_LIMIT_MB", "16"),
        ("SUPPORT_EMAIL", "help@example.test"),
    ])
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
