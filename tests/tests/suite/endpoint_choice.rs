//! Which OpenRouter endpoint answers a chat, through the real host and component: `/responses` by
//! default, `/chat/completions` for models without it (the automatic fallback, before output but not
//! after, announced to Open WebUI) and for presets, the force lists and their precedence, and the
//! Chat Completions bridge relaying reasoning, citations, tool calls and usage with cost.

use crate::harness::{
    Harness, OWUI, content_of, error_ids, field_of, has_template_syntax, json_chunks, owui_events,
    sse_data, status_lines, usage_chunk,
};
use fake_openrouter::scenarios::{BRIDGE_CITATION, BRIDGE_REASONING, CHAT_REASONING};
use serde_json::{Value, json};

#[tokio::test]
async fn a_model_without_the_responses_api_is_answered_over_chat_completions() {
    let h = Harness::start().await;
    let (status, chunks) = h
        .stream_chat("fake/responses-unsupported", "hello there")
        .await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), "echo: hello there");
    assert_eq!(field_of(&chunks, "reasoning"), CHAT_REASONING);
    let usage = json_chunks(&chunks)
        .into_iter()
        .find(|c| c["choices"] == json!([]) && c.get("usage").is_some())
        .expect("a usage chunk");
    assert!(usage["usage"]["cost"].as_f64().unwrap() > 0.0, "{usage}");
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(chunks.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(h.posted_paths(), ["/responses", "/chat/completions"]);
}

#[tokio::test]
async fn forced_chat_completions_models_skip_the_responses_api() {
    let h = Harness::with_env(&[("FORCE_CHAT_COMPLETIONS_MODELS", "fake/echo")]).await;
    let (status, chunks) = h.stream_chat("fake/echo", "over chat").await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), "echo: over chat");
    assert_eq!(h.posted_paths(), ["/chat/completions"]);
}

#[tokio::test]
async fn forced_responses_models_win_over_forced_chat_completions() {
    let h = Harness::with_env(&[
        ("FORCE_CHAT_COMPLETIONS_MODELS", "fake/echo"),
        ("FORCE_RESPONSES_MODELS", "fake/echo"),
    ])
    .await;
    let (status, chunks) = h.stream_chat("fake/echo", "over responses").await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), "echo: over responses");
    assert_eq!(h.posted_paths(), ["/responses"]);
}

#[tokio::test]
async fn a_preset_goes_to_chat_completions_unless_pinned_to_responses_which_is_a_conflict() {
    let h = Harness::start().await;
    let mut body = Harness::chat_body("fake/echo", "with preset", true);
    body["preset"] = json!("my-preset");
    let (status, text) = h.post_with(&body, &[]).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(content_of(&sse_data(&text)), "echo: with preset");
    assert_eq!(h.posted_paths(), ["/chat/completions"]);

    let pinned = Harness::with_env(&[("FORCE_RESPONSES_MODELS", "fake/*")]).await;
    let (status, text) = pinned.post_with(&body, &[]).await;
    assert_eq!(status, 400, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "endpoint_override_conflict");
    let (status, text) = pinned.post_with(&body, &OWUI).await;
    assert_eq!(status, 200, "{text}");
    let content = content_of(&sse_data(&text));
    assert!(content.contains("/chat/completions"), "{content}");
    assert!(
        !error_ids(&content).is_empty() && !has_template_syntax(&content),
        "{content}"
    );
    assert!(
        pinned.posted_paths().is_empty(),
        "nothing was sent upstream"
    );
}

#[tokio::test]
async fn the_chat_completions_bridge_relays_reasoning_citations_tool_calls_and_usage_with_cost() {
    let h = Harness::start().await;
    let body = json!({
        "model": "fake/chat-bridge",
        "stream": true,
        "messages": [{"role": "user", "content": "weather in Paris"}],
        "tools": [{"type": "function", "function": {
            "name": "weather",
            "description": "Current weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }}],
    });
    let (status, text) = h.post_with(&body, &[]).await;
    assert_eq!(status, 200, "{text}");
    let chunks = sse_data(&text);
    assert_eq!(h.posted_paths(), ["/responses", "/chat/completions"]);
    let sent = h.posted_bodies("/chat/completions");
    assert_eq!(sent[0]["tools"][0]["function"]["name"], "weather");

    // The reasoning arrives both as `delta.reasoning` and as `reasoning_details` fragments: it is
    // shown once, in order.
    assert_eq!(field_of(&chunks, "reasoning"), BRIDGE_REASONING.concat());
    assert_eq!(content_of(&chunks), "echo: weather in Paris");
    let json = json_chunks(&chunks);
    let urls: Vec<&Value> = json
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["annotations"].as_array())
        .flatten()
        .map(|a| &a["url_citation"]["url"])
        .collect();
    assert_eq!(urls, [BRIDGE_CITATION]);

    // The call's three argument fragments are handed back as one call.
    let calls: Vec<&Value> = json
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
        .collect();
    assert!(!calls.is_empty(), "{chunks:?}");
    assert_eq!(calls[0]["function"]["name"], "weather");
    let arguments: String = calls
        .iter()
        .filter_map(|c| c["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"city": "Paris"})
    );
    let finishes: Vec<&str> = json
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
        .collect();
    assert_eq!(finishes, ["tool_calls"]);

    let usage = usage_chunk(&chunks);
    assert!(usage["cost"].as_f64().unwrap() > 0.0, "{usage}");
    assert_eq!(
        usage["prompt_tokens_details"]["cached_tokens"], 2,
        "{usage}"
    );
    assert!(
        usage["completion_tokens_details"]["reasoning_tokens"]
            .as_u64()
            .unwrap()
            > 0,
        "{usage}"
    );
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    assert_eq!(chunks.last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test]
async fn open_webui_sees_the_fallback_announced_and_the_bridged_citation_as_a_source() {
    let h = Harness::start().await;
    let (status, chunks) = h
        .stream_chat_with("fake/chat-bridge", "cite it", &OWUI)
        .await;
    assert_eq!(status, 200, "{chunks:?}");
    // The bridged signed reasoning is stored for the next turn: one invisible marker line follows.
    let content = content_of(&chunks);
    let (answer, marker) = content.split_once("\n\n").unwrap_or((content.as_str(), ""));
    assert_eq!(answer, "echo: cite it");
    assert!(
        marker
            .strip_prefix('[')
            .and_then(|m| m.strip_suffix("]: #"))
            .is_some_and(|id| id.len() == 20),
        "{content:?}"
    );
    let lines = status_lines(&chunks);
    assert!(
        lines.iter().any(|l| l.contains("using Chat Completions")),
        "{lines:?}"
    );
    let sources: Vec<Value> = owui_events(&chunks)
        .into_iter()
        .filter(|e| e["type"] == "source")
        .collect();
    assert_eq!(sources.len(), 1, "{sources:?}");
    assert!(sources[0].to_string().contains(BRIDGE_CITATION));
}

#[tokio::test]
async fn a_responses_stream_that_fails_as_unsupported_before_output_is_replayed_but_not_after() {
    let h = Harness::start().await;
    let (status, chunks) = h.stream_chat("fake/unsupported-stream", "early").await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), "echo: early");
    assert_eq!(h.posted_paths(), ["/responses", "/chat/completions"]);

    // After a visible delta the same failure is an error: the caller already saw a partial answer.
    h.fake.clear_requests();
    let (status, chunks) = h.stream_chat("fake/unsupported-stream", "late").await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), "echo: ");
    let error = json_chunks(&chunks)
        .into_iter()
        .find(|c| c.get("error").is_some())
        .unwrap_or_else(|| panic!("an error chunk: {chunks:?}"));
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not supported"),
        "{error}"
    );
    assert_eq!(h.posted_paths(), ["/responses"]);
}

#[tokio::test]
async fn with_the_automatic_fallback_off_an_unsupported_model_is_an_error() {
    let h = Harness::with_env(&[("AUTO_FALLBACK_CHAT_COMPLETIONS", "false")]).await;
    let resp = h
        .post_chat(&Harness::chat_body(
            "fake/responses-unsupported",
            "hi",
            true,
        ))
        .await;
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_bad_request", "{body}");
    assert_eq!(h.posted_paths(), ["/responses"]);
}
