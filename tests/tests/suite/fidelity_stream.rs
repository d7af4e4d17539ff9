//! Chat fidelity on the response side, through the real host and component against the fake:
//! the `/chat/completions` fallback and its bridge, reasoning requests, recoveries and display,
//! stream coalescing, retries before the first event, interrupted streams, the error templates
//! with OpenRouter's error details, and the final usage status line.

use crate::harness::{
    Harness, OWUI, Options, content_of, field_of, json_chunks, logs_text, owui_events, sse_data,
    status_lines,
};
use fake_openrouter::fake_tools::openapi::FakeOpenApi;
use fake_openrouter::fault_proxy::{FaultMode, FaultProxy};
use fake_openrouter::scenarios::{
    BRIDGE_CITATION, BRIDGE_REASONING, BRIDGE_SIGNATURE, FLAKY_START_CUTS, PARTIAL_DELTAS,
    REASONING_SUMMARY, TYPED_ERROR_FALLBACKS,
};
use serde_json::{Value, json};
use std::time::Duration;

/// A text of many short words, so coalescing has something to merge.
const LONG_TEXT: &str = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima";

/// Stream a chat as Open WebUI; the status and the SSE `data:` payloads.
async fn owui_stream(h: &Harness, model: &str, text: &str) -> (u16, Vec<String>) {
    let (status, body) = h
        .post_with(&Harness::chat_body(model, text, true), &OWUI)
        .await;
    (status, sse_data(&body))
}

/// The `delta.content` pieces, one per chunk that carries text.
fn content_chunks(chunks: &[String]) -> Vec<String> {
    json_chunks(chunks)
        .iter()
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .filter(|t| !t.is_empty())
        .collect()
}

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

fn usage_chunk(chunks: &[String]) -> Value {
    json_chunks(chunks)
        .into_iter()
        .rfind(|c| c.get("usage").is_some_and(|u| !u.is_null()))
        .map(|mut c| c["usage"].take())
        .expect("a usage chunk")
}

/// The distinct 16-hex-char error ids in a text.
fn error_ids(text: &str) -> Vec<String> {
    let mut ids: Vec<String> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| {
            w.len() == 16
                && w.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        })
        .map(str::to_string)
        .collect();
    ids.dedup();
    ids
}

/// Whether `text` still holds a `{name}` placeholder or a `{{…}}` tag.
fn has_template_syntax(text: &str) -> bool {
    text.contains("{{")
        || text.split('{').skip(1).any(|rest| {
            rest.split_once('}').is_some_and(|(name, _)| {
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
        })
}

/// The guest's log lines reach the host's log when the call ends, which can be just after the
/// caller read the last byte: wait (bounded) until `needle` shows up.
async fn wait_for_log(needle: &str) -> bool {
    for _ in 0..500 {
        if logs_text().contains(needle) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

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

// Endpoint fallback and the Chat Completions bridge.

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
async fn a_host_tool_round_over_chat_completions_sends_back_the_turns_text_and_signed_reasoning() {
    let tools = FakeOpenApi::start().await.unwrap();
    let h = Harness::with(Options {
        env: vec![
            ("TOOL_EXECUTION_MODE", "Pipeline".to_string()),
            ("EGRESS_PRIVATE_HOSTS", format!("127.0.0.1:{}", tools.port())),
        ],
        config_toml: Some(format!(
            "[[tool_servers]]\nname = \"fake\"\nkind = \"openapi\"\nurl = \"{}\"\nspec = \"/openapi.json\"\n",
            tools.url()
        )),
        ..Options::default()
    })
    .await;
    assert_eq!(h.app.tools.catalog().await.len(), 3);
    let (status, chunks) = h.stream_chat("fake/chat-bridge", "weather in Paris").await;
    assert_eq!(status, 200, "{chunks:?}");
    assert!(
        content_of(&chunks).ends_with("echo: weather in Paris"),
        "{chunks:?}"
    );
    assert_eq!(tools.recorder().calls().len(), 1, "the host ran the call");
    let sent = h.posted_bodies("/chat/completions");
    assert_eq!(sent.len(), 2, "{sent:?}");
    let messages = sent[1]["messages"].as_array().unwrap();
    let assistant = &messages[messages.len() - 2];
    assert_eq!(
        assistant["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(assistant["content"], "echo: weather in Paris");
    assert_eq!(
        assistant["reasoning_details"],
        json!([{"type": "reasoning.text", "text": BRIDGE_REASONING.concat(),
                "format": "anthropic-claude-v1", "signature": BRIDGE_SIGNATURE, "index": 0}])
    );
    assert_eq!(messages[messages.len() - 1]["role"], "tool");
}

#[tokio::test]
async fn open_webui_sees_the_fallback_announced_and_the_bridged_citation_as_a_source() {
    let h = Harness::start().await;
    let (status, chunks) = owui_stream(&h, "fake/chat-bridge", "cite it").await;
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

// Reasoning.

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
async fn a_provider_that_refuses_thoughts_is_asked_again_without_reasoning_and_open_webui_is_told()
{
    let h = Harness::start().await;
    let (status, chunks) = owui_stream(&h, "fake/no-thoughts", "think").await;
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

#[tokio::test]
async fn open_webui_is_told_when_replayed_reasoning_is_stripped_and_the_request_retried() {
    let h = Harness::with_env(&[("FORCE_CHAT_COMPLETIONS_MODELS", "fake/signature")]).await;
    let body = json!({
        "model": "fake/signature",
        "stream": true,
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "earlier answer", "reasoning_details": [
                {"type": "reasoning.text", "text": "old thoughts", "signature": "sig-other-key", "index": 0}
            ]},
            {"role": "user", "content": "second"},
        ],
    });
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
        let (status, chunks) = owui_stream(&h, "fake/reasoning", "hi").await;
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
async fn open_webui_sees_staged_thinking_statuses_while_waiting_for_the_first_token() {
    let h = Harness::start().await;
    // `fake/slow-start` is silent for 2.5 s before its answer: past the 1.5 s stage.
    let (status, chunks) = owui_stream(&h, "fake/slow-start", "wait").await;
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
    let (_, chunks) = owui_stream(&quiet, "fake/echo", "now").await;
    assert!(
        !status_lines(&chunks).iter().any(|l| l.contains("hinking")),
        "{chunks:?}"
    );
    let (_, chunks) = h.stream_chat("fake/echo", "plain").await;
    assert!(owui_events(&chunks).is_empty(), "{chunks:?}");
}

// Streaming.

#[tokio::test]
async fn zero_limits_relay_each_upstream_delta_as_its_own_chunk() {
    let h = Harness::with_env(&[
        ("STREAMING_DELTA_CHAR_LIMIT", "0"),
        ("STREAMING_IDLE_FLUSH_MS", "0"),
    ])
    .await;
    let (status, chunks) = h.stream_chat("fake/echo", LONG_TEXT).await;
    assert_eq!(status, 200);
    let answer = format!("echo: {LONG_TEXT}");
    let upstream: Vec<&str> = answer.split_inclusive(' ').collect();
    assert_eq!(content_chunks(&chunks), upstream);
}

#[tokio::test]
async fn deltas_are_merged_up_to_the_char_limit_and_flushed_at_the_end() {
    // Idle and burst flushes out of the way: only the size limit and the end of the answer flush.
    let quiet = [
        ("STREAMING_IDLE_FLUSH_MS", "600000"),
        ("STREAMING_NAGLE_MIN_FLUSH_CHARS", "100000"),
    ];
    let answer = format!("echo: {LONG_TEXT}");

    let h =
        Harness::with_env(&[quiet[0], quiet[1], ("STREAMING_DELTA_CHAR_LIMIT", "100000")]).await;
    let (status, chunks) = h.stream_chat("fake/echo", LONG_TEXT).await;
    assert_eq!(status, 200);
    assert_eq!(content_chunks(&chunks), std::slice::from_ref(&answer));

    let h = Harness::with_env(&[quiet[0], quiet[1], ("STREAMING_DELTA_CHAR_LIMIT", "12")]).await;
    let (status, chunks) = h.stream_chat("fake/echo", LONG_TEXT).await;
    assert_eq!(status, 200);
    // What a 12-byte limit makes of the upstream words: flushed as soon as 12 are held.
    let mut expected = Vec::new();
    let mut held = String::new();
    for word in answer.split_inclusive(' ') {
        held.push_str(word);
        if held.len() >= 12 {
            expected.push(std::mem::take(&mut held));
        }
    }
    if !held.is_empty() {
        expected.push(held);
    }
    assert!(expected.len() > 1 && expected.len() < answer.split(' ').count());
    assert_eq!(content_chunks(&chunks), expected);
}

#[tokio::test]
async fn the_burst_and_idle_rules_flush_between_spaced_deltas() {
    let answer_chunks = |chunks: &[String]| {
        let pieces = content_chunks(chunks);
        assert_eq!(pieces.concat().matches("tok").count(), 20, "{pieces:?}");
        pieces.len()
    };
    let base = [
        ("STREAMING_DELTA_CHAR_LIMIT", "100000"),
        ("STREAMING_IDLE_FLUSH_MS", "600000"),
        ("STREAMING_NAGLE_MIN_FLUSH_CHARS", "100000"),
    ];
    // No rule fires: the 20 spaced deltas of `fake/slow` arrive as one chunk.
    let h = Harness::with_env(&base).await;
    let (_, chunks) = h.stream_chat("fake/slow", "x").await;
    assert_eq!(answer_chunks(&chunks), 1);
    // The burst rule: a drained burst holding ≥ 1 char is flushed; the deltas are 40 ms apart.
    let h = Harness::with_env(&[base[0], base[1], ("STREAMING_NAGLE_MIN_FLUSH_CHARS", "1")]).await;
    let (_, chunks) = h.stream_chat("fake/slow", "x").await;
    assert!(answer_chunks(&chunks) > 1);
    // The idle rule: held text is flushed after 1 ms without events.
    let h = Harness::with_env(&[base[0], ("STREAMING_IDLE_FLUSH_MS", "1"), base[2]]).await;
    let (_, chunks) = h.stream_chat("fake/slow", "x").await;
    assert!(answer_chunks(&chunks) > 1);
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

#[tokio::test]
async fn open_webui_gets_the_stream_interrupted_template_after_the_partial_answer() {
    let h = Harness::with_env(&[("SUPPORT_EMAIL", "help@example.com")]).await;
    let (status, chunks) = owui_stream(&h, "fake/no-terminal", "go").await;
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
    let (_, chunks) = owui_stream(&h, "fake/no-terminal", "go").await;
    let content = content_of(&chunks);
    let notice = content.strip_prefix(&partial).unwrap();
    let lines: Vec<&str> = notice.trim().lines().collect();
    assert_eq!(lines.len(), 2, "{notice}");
    assert!(lines[0].starts_with("Cut off (") && error_ids(lines[0]).len() == 1);
    assert!(lines[1].starts_with("Because: "), "{notice}");
}

// Error templates and OpenRouter's error details.

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
            let content = if stream {
                content_of(&sse_data(&text))
            } else {
                let v: Value = serde_json::from_str(&text).unwrap();
                v["choices"][0]["message"]["content"]
                    .as_str()
                    .unwrap()
                    .to_string()
            };
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
    let (status, chunks) = owui_stream(&h, "fake/typed-error", "hi").await;
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

/// A harness whose OpenRouter is reached through a fault proxy; the catalogue is loaded (and
/// cached) by one good chat before the proxy misbehaves.
async fn behind_proxy(
    env: &[(&'static str, &str)],
) -> (Harness, FaultProxy, fake_openrouter::FakeOpenRouter) {
    let fake = fake_openrouter::FakeOpenRouter::start(fake_openrouter::FakeConfig {
        expected_api_key: Some(crate::harness::API_KEY.to_string()),
        slow_delay_ms: 40,
        slow_deltas: 20,
        validate_spec: true,
    })
    .await
    .unwrap();
    let proxy = FaultProxy::start(fake.addr()).await.unwrap();
    let mut all: Vec<(&'static str, String)> =
        env.iter().map(|(k, v)| (*k, (*v).to_string())).collect();
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
async fn an_unreachable_openrouter_gets_the_connection_error_template_after_the_retries() {
    let (h, proxy, fake) = behind_proxy(&[]).await;
    proxy.set_mode(FaultMode::Refuse);
    let before = proxy.accepted();
    let (status, chunks) = owui_stream(&h, "fake/echo", "anyone?").await;
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
    let (status, chunks) = owui_stream(&h, "fake/echo", "hello?").await;
    assert_eq!(status, 200, "{chunks:?}");
    let content = content_of(&chunks);
    assert!(content.starts_with("### ⚠️ No reply in time"), "{content}");
    assert!(content.contains("within 1 seconds"), "{content}");
    assert!(content.contains("- Waiting for: `/responses`"), "{content}");
    assert_rendered_template(&content).await;
    proxy.set_mode(FaultMode::Pass);
    assert!(fake.spec_violations().is_empty());
}

// The final usage status line.

#[tokio::test]
async fn the_final_usage_status_line_follows_its_valves() {
    let h = Harness::start().await;
    let (_, chunks) = owui_stream(&h, "fake/reasoning", "count").await;
    let usage = usage_chunk(&chunks);
    let last = status_lines(&chunks).pop().unwrap();
    let tokens = format!(
        "Total tokens: {} (Input: {}, Output: {}, Cached: 2, Reasoning: {})",
        usage["total_tokens"],
        usage["prompt_tokens"],
        usage["completion_tokens"],
        usage["completion_tokens_details"]["reasoning_tokens"]
    );
    assert!(last.starts_with("Time: "), "{last}");
    assert!(last.contains(" | Cost $0.0"), "{last}");
    assert!(last.ends_with(&tokens), "{last} vs {tokens}");
    let done = owui_events(&chunks)
        .into_iter()
        .rfind(|e| e["type"] == "status")
        .unwrap();
    assert_eq!(done["data"]["done"], true);

    let h = Harness::with_env(&[
        ("FINAL_USAGE_STATUS_STYLE", "icons"),
        ("USAGE_STATUS_ICON_SET", "T,C,Sum,In,Out,Hit,Think"),
    ])
    .await;
    let (_, chunks) = owui_stream(&h, "fake/reasoning", "count").await;
    let last = status_lines(&chunks).pop().unwrap();
    assert!(last.starts_with("T "), "{last}");
    assert!(last.contains(" | C 0.0"), "{last}");
    assert!(last.contains(" | Sum "), "{last}");
    for label in ["(In ", ", Out ", ", Hit 2", ", Think "] {
        assert!(last.contains(label), "{label} in {last}");
    }

    let h = Harness::with_env(&[("SHOW_FINAL_USAGE_STATUS", "false")]).await;
    let (_, chunks) = owui_stream(&h, "fake/reasoning", "count").await;
    assert!(
        !status_lines(&chunks).iter().any(|l| l.contains("tokens")),
        "{chunks:?}"
    );
    // The usage itself still reaches Open WebUI.
    assert!(usage_chunk(&chunks)["cost"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn answers_and_reasoning_sent_without_deltas_or_as_a_refusal_still_reach_the_caller_once() {
    let h = Harness::with(Options {
        env: vec![("PERSIST_REASONING_TOKENS", "disabled".into())],
        ..Options::default()
    })
    .await;
    let (status, chunks) = h.stream_chat("fake/no-deltas", "quietly").await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), "echo: quietly");
    assert_eq!(
        field_of(&chunks, "reasoning"),
        fake_openrouter::scenarios::REASONING_SUMMARY
    );
    let (status, chunks) = h.stream_chat("fake/refusal", "do it").await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), fake_openrouter::scenarios::REFUSAL);
    // Not streamed: the same, as one completion.
    let resp = h
        .post_chat(&Harness::chat_body("fake/no-deltas", "quietly", false))
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"], "echo: quietly",
        "{v}"
    );
}
