//! Reasoning through the real host and component: what is asked for (from the valves, never over
//! the caller's own values), how it is shown (`delta.reasoning` before the answer, the thinking
//! output modes, staged "Thinking…" statuses), and the recoveries from provider refusals (an
//! unsupported effort, thoughts refused, a thinking signature from another key).

use crate::harness::{
    Harness, OWUI, content_of, events_of_type, field_of, json_chunks, owui_events, sse_data,
    status_lines,
};
use fake_openrouter::scenarios::REASONING_SUMMARY;
use serde_json::{Value, json};

/// Index of the first chunk with answer text.
fn first_content_at(chunks: &[String]) -> usize {
    chunks
        .iter()
        .position(|c| {
            serde_json::from_str::<Value>(c).is_ok_and(|v| {
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty())
            })
        })
        .expect("a content chunk")
}

#[tokio::test]
async fn reasoning_streams_as_delta_reasoning_before_the_answer() {
    let h = Harness::start().await;
    let (status, chunks) = h.stream_chat("fake/reasoning", "think").await;
    assert_eq!(status, 200);
    let reasoning = field_of(&chunks, "reasoning");
    assert!(!reasoning.is_empty());
    let first_reasoning = chunks
        .iter()
        .position(|c| c.contains("\"reasoning\""))
        .unwrap();
    let first_content = chunks
        .iter()
        .position(|c| c.contains("\"content\""))
        .unwrap();
    assert!(first_reasoning < first_content, "reasoning comes first");
    assert_eq!(content_of(&chunks), "echo: think");
    let json = json_chunks(&chunks);
    let usage = &json.last().unwrap()["usage"];
    assert!(
        usage["completion_tokens_details"]["reasoning_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn reasoning_is_requested_from_the_valves_without_overwriting_the_callers_values() {
    let h = Harness::start().await;
    h.stream_chat("fake/echo", "defaults").await;
    let sent = h.posted_bodies("/responses");
    assert_eq!(
        sent[0]["reasoning"],
        json!({"effort": "medium", "summary": "auto", "enabled": true})
    );

    let h = Harness::with_env(&[
        ("REASONING_EFFORT", "high"),
        ("REASONING_SUMMARY_MODE", "detailed"),
    ])
    .await;
    h.stream_chat("fake/echo", "valves").await;
    let mut body = Harness::chat_body("fake/echo", "caller", true);
    body["reasoning_effort"] = json!("low");
    h.post_with(&body, &[]).await;
    let mut body = Harness::chat_body("fake/echo", "caller summary", true);
    body["reasoning"] = json!({"summary": "concise"});
    h.post_with(&body, &[]).await;
    let sent = h.posted_bodies("/responses");
    assert_eq!(
        sent[0]["reasoning"],
        json!({"effort": "high", "summary": "detailed", "enabled": true})
    );
    assert_eq!(
        sent[1]["reasoning"],
        json!({"effort": "low", "summary": "detailed", "enabled": true})
    );
    assert_eq!(
        sent[2]["reasoning"],
        json!({"effort": "high", "summary": "concise", "enabled": true})
    );

    let h = Harness::with_env(&[("REASONING_SUMMARY_MODE", "disabled")]).await;
    h.stream_chat("fake/echo", "no summary").await;
    assert_eq!(
        h.posted_bodies("/responses")[0]["reasoning"],
        json!({"effort": "medium", "enabled": true})
    );

    let h = Harness::with_env(&[("ENABLE_REASONING", "false")]).await;
    h.stream_chat("fake/echo", "off").await;
    assert!(
        h.posted_bodies("/responses")[0].get("reasoning").is_none(),
        "nothing asked for"
    );
}

#[tokio::test]
async fn thinking_output_modes_route_reasoning_to_the_thinking_box_status_lines_or_both() {
    // (mode, reasoning deltas expected, reasoning status line expected)
    for (mode, as_delta, as_status) in [
        ("open_webui", true, false),
        ("status", false, true),
        ("both", true, true),
    ] {
        let h = Harness::with_env(&[
            ("THINKING_OUTPUT_MODE", mode),
            ("PERSIST_REASONING_TOKENS", "disabled"),
        ])
        .await;
        let (status, chunks) = h.stream_chat_with("fake/reasoning", "hi", &OWUI).await;
        assert_eq!(status, 200, "{mode}: {chunks:?}");
        assert_eq!(content_of(&chunks), "echo: hi", "{mode}");
        let reasoning = field_of(&chunks, "reasoning");
        assert_eq!(
            reasoning.contains(REASONING_SUMMARY),
            as_delta,
            "{mode}: {reasoning:?}"
        );
        let lines = status_lines(&chunks);
        assert_eq!(
            lines.iter().any(|l| l.contains("Planning an echo reply")),
            as_status,
            "{mode}: {lines:?}"
        );
        // Plain callers always get the reasoning as deltas, whatever the mode.
        let (_, plain) = h.stream_chat("fake/reasoning", "hi").await;
        assert!(
            field_of(&plain, "reasoning").contains(REASONING_SUMMARY),
            "{mode}"
        );
        assert!(owui_events(&plain).is_empty(), "{mode}: {plain:?}");
    }
}

#[tokio::test]
async fn status_thinking_mode_shows_reasoning_as_status_events_only() {
    // Persistence off: the answer is compared whole (no artifact marker line).
    let h = Harness::with_env(&[
        ("THINKING_OUTPUT_MODE", "status"),
        ("PERSIST_REASONING_TOKENS", "disabled"),
    ])
    .await;
    let (status, chunks) = h.stream_chat_with("fake/reasoning", "hi", &OWUI).await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), "echo: hi");
    assert_eq!(field_of(&chunks, "reasoning"), "");
    // The summary's `**heading**` is the status line for its step.
    let lines = crate::harness::status_lines(&chunks);
    assert!(
        lines.iter().any(|l| l == "Planning an echo reply"),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("**")), "{lines:?}");
}

#[tokio::test]
async fn open_webui_sees_staged_thinking_statuses_while_waiting_for_the_first_token() {
    let h = Harness::start().await;
    // `fake/slow-start` is silent for 2.5 s before its answer: past the 1.5 s stage.
    let (status, chunks) = h.stream_chat_with("fake/slow-start", "wait", &OWUI).await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), "echo: wait");
    let first_content = first_content_at(&chunks);
    let stage_at = |stage: &str| {
        chunks.iter().position(|c| {
            serde_json::from_str::<Value>(c)
                .is_ok_and(|v| v["event"]["data"]["description"] == stage)
        })
    };
    let thinking = stage_at("Thinking…").expect("the first stage");
    let still = stage_at("Still thinking…").expect("the second stage");
    assert!(thinking < still && still < first_content, "{chunks:?}");

    // Without reasoning there is nothing to think about; plain callers get no events at all.
    let quiet = Harness::with_env(&[("ENABLE_REASONING", "false")]).await;
    let (_, chunks) = quiet.stream_chat_with("fake/echo", "now", &OWUI).await;
    assert!(
        !status_lines(&chunks).iter().any(|l| l.contains("hinking")),
        "{chunks:?}"
    );
    let (_, chunks) = h.stream_chat("fake/echo", "plain").await;
    assert!(owui_events(&chunks).is_empty(), "{chunks:?}");
}

#[tokio::test]
async fn an_unsupported_reasoning_effort_is_retried_with_a_supported_one() {
    let h = Harness::start().await;
    let (status, chunks) = h
        .stream_chat_with("fake/effort-picky", "think", &OWUI)
        .await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), "echo: think");
    let bodies = h.posted_bodies("/responses");
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(bodies[0]["reasoning"]["effort"], "medium");
    assert_eq!(bodies[1]["reasoning"]["effort"], "high");
    let statuses = events_of_type(&chunks, "status");
    assert!(
        statuses.iter().any(|e| {
            let d = e["data"]["description"].as_str().unwrap_or_default();
            d.contains("medium") && d.contains("high")
        }),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_provider_that_refuses_thoughts_is_asked_again_without_reasoning_and_open_webui_is_told()
{
    let h = Harness::start().await;
    let (status, chunks) = h.stream_chat_with("fake/no-thoughts", "think", &OWUI).await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), "echo: think");
    let sent = h.posted_bodies("/responses");
    assert_eq!(sent.len(), 2, "refused once, then retried");
    assert!(sent[0].get("reasoning").is_some(), "{}", sent[0]);
    for key in ["reasoning", "include_reasoning", "thinking_config"] {
        assert!(sent[1].get(key).is_none(), "{key} in {}", sent[1]);
    }
    let lines = status_lines(&chunks);
    assert!(
        lines.iter().any(|l| l.contains("retrying without it")),
        "{lines:?}"
    );

    // A plain caller gets the same recovery, without any event line.
    h.fake.clear_requests();
    let (status, chunks) = h.stream_chat("fake/no-thoughts", "quiet").await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), "echo: quiet");
    assert_eq!(h.posted_bodies("/responses").len(), 2);
    assert!(owui_events(&chunks).is_empty(), "{chunks:?}");
}

/// A `fake/signature` chat whose history replays the previous turn's `reasoning_details` (as Open
/// WebUI does) signed with `signature`, which the provider refuses.
fn replayed_foreign_signature(signature: &str) -> Value {
    json!({
        "model": "fake/signature",
        "stream": true,
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "earlier answer", "reasoning_details": [
                {"type": "reasoning.text", "text": "old thoughts", "signature": signature, "index": 0}
            ]},
            {"role": "user", "content": "second"},
        ],
    })
}

#[tokio::test]
async fn a_thinking_signature_refusal_is_retried_without_the_replayed_reasoning() {
    let h = Harness::with_env(&[("FORCE_CHAT_COMPLETIONS_MODELS", "fake/signature")]).await;
    let body = replayed_foreign_signature("sig-from-another-key");
    let (status, text) = h.post_with(&body, &[]).await;
    assert_eq!(status, 200, "{text}");
    let chunks = sse_data(&text);
    assert_eq!(content_of(&chunks), "echo: second");
    let sent = h.posted_bodies("/chat/completions");
    assert_eq!(sent.len(), 2, "refused once, then retried");
    assert!(
        sent[0].to_string().contains("reasoning_details"),
        "the first attempt replayed the reasoning"
    );
    assert!(
        !sent[1].to_string().contains("reasoning_details"),
        "the retry stripped it"
    );
}

#[tokio::test]
async fn open_webui_is_told_when_replayed_reasoning_is_stripped_and_the_request_retried() {
    let h = Harness::with_env(&[("FORCE_CHAT_COMPLETIONS_MODELS", "fake/signature")]).await;
    let body = replayed_foreign_signature("sig-other-key");
    let (status, text) = h.post_with(&body, &OWUI).await;
    assert_eq!(status, 200, "{text}");
    let chunks = sse_data(&text);
    assert_eq!(content_of(&chunks), "echo: second");
    assert_eq!(h.posted_bodies("/chat/completions").len(), 2);
    let lines = status_lines(&chunks);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Earlier reasoning could not be verified")),
        "{lines:?}"
    );
}
