//! Chat fidelity through the real host and component: the Chat Completions fallback and its
//! overrides, the recoveries from provider refusals, citations, incomplete answers, Open WebUI's
//! event lines and error templates, housekeeping tasks, the identifiers sent upstream, catalogue
//! filters and variants, and the provider-specific parameters for Anthropic and Gemini.

use crate::harness::{
    Harness, OWUI, Options, content_of, events_of_type, field_of, json_chunks, owui_events,
    sse_data,
};
use fake_openrouter::scenarios::{CHAT_REASONING, INCOMPLETE_DELTAS};
use serde_json::{Value, json};

fn finish_reasons(chunks: &[String]) -> Vec<String> {
    json_chunks(chunks)
        .iter()
        .filter_map(|c| {
            c["choices"][0]["finish_reason"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

/// Whether `text` still holds a `{name}` template placeholder.
fn has_placeholder(text: &str) -> bool {
    text.split('{').skip(1).any(|rest| {
        rest.split_once('}').is_some_and(|(name, _)| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        })
    })
}

/// Whether `text` holds a run of exactly 16 lowercase hex digits (an error id).
fn has_error_id(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| {
        w.len() == 16
            && w.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    })
}

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
    let h = Harness::with(Options {
        env: vec![("FORCE_CHAT_COMPLETIONS_MODELS", "fake/echo".into())],
        ..Options::default()
    })
    .await;
    let (status, chunks) = h.stream_chat("fake/echo", "over chat").await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), "echo: over chat");
    assert_eq!(h.posted_paths(), ["/chat/completions"]);
}

#[tokio::test]
async fn forced_responses_models_win_over_forced_chat_completions() {
    let h = Harness::with(Options {
        env: vec![
            ("FORCE_CHAT_COMPLETIONS_MODELS", "fake/echo".into()),
            ("FORCE_RESPONSES_MODELS", "fake/echo".into()),
        ],
        ..Options::default()
    })
    .await;
    let (status, chunks) = h.stream_chat("fake/echo", "over responses").await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), "echo: over responses");
    assert_eq!(h.posted_paths(), ["/responses"]);
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
async fn citations_reach_plain_callers_as_deduplicated_annotations_without_tracking_tags() {
    let h = Harness::start().await;
    let (status, chunks) = h.stream_chat("fake/citations", "cite").await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), "echo: cite");
    let urls: Vec<String> = json_chunks(&chunks)
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["annotations"].as_array().cloned())
        .flatten()
        .inspect(|a| assert_eq!(a["type"], "url_citation"))
        .filter_map(|a| a["url_citation"]["url"].as_str().map(str::to_string))
        .collect();
    assert_eq!(urls, ["https://a.example/page", "https://b.example/doc"]);
    assert!(
        owui_events(&chunks).is_empty(),
        "no Open WebUI events for a plain caller"
    );
}

#[tokio::test]
async fn citations_reach_open_webui_as_source_events_instead_of_annotations() {
    let h = Harness::start().await;
    let (status, chunks) = h.stream_chat_with("fake/citations", "cite", &OWUI).await;
    assert_eq!(status, 200, "{chunks:?}");
    assert!(
        !chunks.iter().any(|c| c.contains("\"annotations\"")),
        "{chunks:?}"
    );
    let sources = events_of_type(&chunks, "source");
    assert_eq!(sources.len(), 2, "{sources:?}");
    let text = serde_json::to_string(&sources).unwrap();
    assert!(text.contains("https://a.example/page"), "{text}");
    assert!(text.contains("https://b.example/doc"), "{text}");
    assert!(!text.contains("utm_source"), "{text}");
}

#[tokio::test]
async fn an_answer_cut_by_the_token_limit_finishes_with_length() {
    let h = Harness::start().await;
    let (status, chunks) = h.stream_chat("fake/incomplete", "long please").await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), INCOMPLETE_DELTAS.concat());
    assert_eq!(finish_reasons(&chunks), ["length"]);
    assert!(owui_events(&chunks).is_empty());
}

#[tokio::test]
async fn open_webui_is_notified_when_the_answer_stopped_at_the_token_limit() {
    let h = Harness::start().await;
    let (status, chunks) = h
        .stream_chat_with("fake/incomplete", "long please", &OWUI)
        .await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(finish_reasons(&chunks), ["length"]);
    let notes = events_of_type(&chunks, "notification");
    assert_eq!(notes.len(), 1, "{chunks:?}");
    assert!(
        notes[0]["data"]["content"]
            .as_str()
            .unwrap_or_default()
            .contains("output limit"),
        "{notes:?}"
    );
}

#[tokio::test]
async fn open_webui_gets_the_rendered_error_template_as_the_answer_while_plain_callers_get_the_status()
 {
    let h = Harness::start().await;
    for stream in [true, false] {
        let body = Harness::chat_body("fake/status-402", "hi", stream);
        let (status, text) = h.post_with(&body, &OWUI).await;
        assert_eq!(status, 200, "stream={stream}: {text}");
        let content = if stream {
            content_of(&sse_data(&text))
        } else {
            let v: Value = serde_json::from_str(&text).unwrap();
            v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert!(content.to_lowercase().contains("credits"), "{content}");
        assert!(has_error_id(&content), "{content}");
        assert!(!has_placeholder(&content), "{content}");
    }
    let (status, text) = h
        .post_with(&Harness::chat_body("fake/status-402", "hi", true), &[])
        .await;
    assert_eq!(status, 402, "{text}");
}

#[tokio::test]
async fn open_webui_gets_a_final_usage_status_line() {
    let h = Harness::start().await;
    let (status, chunks) = h.stream_chat_with("fake/echo", "count me", &OWUI).await;
    assert_eq!(status, 200, "{chunks:?}");
    let last = events_of_type(&chunks, "status")
        .pop()
        .expect("a status event");
    assert_eq!(last["data"]["done"], true, "{last}");
    assert!(
        last["data"]["description"]
            .as_str()
            .unwrap_or_default()
            .contains("tokens"),
        "{last}"
    );
}

async fn task_answer(h: &Harness, model: &str) -> (u16, Value) {
    let body = Harness::chat_body(model, "### Task:\nGenerate a title", false);
    let (status, text) = h
        .post_with(
            &body,
            &[OWUI[0], OWUI[1], ("X-OpenWebUI-Task", "title_generation")],
        )
        .await;
    (status, serde_json::from_str(&text).unwrap())
}

#[tokio::test]
async fn a_task_is_one_quiet_low_effort_request_whose_output_is_the_answer() {
    let h = Harness::start().await;
    let (status, body) = task_answer(&h, "fake/echo").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "echo: ### Task:\nGenerate a title"
    );
    let sent = h.posted_bodies("/responses");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["stream"], false);
    assert_eq!(sent[0]["reasoning"]["effort"], "low");
}

#[tokio::test]
async fn a_failing_task_answers_a_task_error_or_the_stub_never_an_http_error() {
    let h = Harness::start().await;
    let (status, body) = task_answer(&h, "fake/status-500").await;
    assert_eq!(status, 200, "{body}");
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content.starts_with("[Task error]"), "{content}");
    let (status, body) = task_answer(&h, "fake/status-401").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        r#"{"title":"Chat"}"#
    );
}

#[tokio::test]
async fn open_webui_identifiers_are_sent_upstream_when_enabled() {
    let h = Harness::with(Options {
        env: vec![
            ("SEND_END_USER_ID", "true".into()),
            ("SEND_CHAT_ID", "true".into()),
            ("WEBUI_SECRET_KEY", "k".into()),
        ],
        ..Options::default()
    })
    .await;
    let mut body = Harness::chat_body("fake/echo", "who am i", true);
    body["user"] = json!("client-chosen");
    let (status, _) = h.post_with(&body, &OWUI).await;
    assert_eq!(status, 200);
    let sent = h.posted_bodies("/responses");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["user"], "user-42", "{}", sent[0]);
    assert_eq!(sent[0]["metadata"]["chat_id"], "chat-7", "{}", sent[0]);
    let session = sent[0]["session_id"].as_str().unwrap_or_default();
    assert_eq!(session.len(), 64, "{}", sent[0]);
    assert!(session.chars().all(|c| c.is_ascii_hexdigit()), "{session}");
}

async fn listed_ids(h: &Harness) -> Vec<String> {
    let body: Value = h
        .client
        .get(format!("{}/v1/models", h.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn the_free_model_filter_hides_paid_models_and_refuses_chats_to_them() {
    let h = Harness::with(Options {
        env: vec![("FREE_MODEL_FILTER", "only".into())],
        ..Options::default()
    })
    .await;
    let ids = listed_ids(&h).await;
    assert!(
        ids.contains(&"meta-llama/llama-3.3-70b-instruct:free".to_string()),
        "{ids:?}"
    );
    assert!(!ids.contains(&"fake/echo".to_string()), "{ids:?}");
    let (status, text) = h
        .post_with(&Harness::chat_body("fake/echo", "hi", false), &[])
        .await;
    assert_eq!(status, 403, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["code"], "model_restricted", "{body}");
    assert!(
        h.posted_bodies("/responses").is_empty(),
        "nothing was sent upstream"
    );
}

#[tokio::test]
async fn a_configured_variant_is_listed_and_sent_upstream_under_its_own_id() {
    let h = Harness::with(Options {
        env: vec![("VARIANT_MODELS", "fake/echo:nitro".into())],
        ..Options::default()
    })
    .await;
    let ids = listed_ids(&h).await;
    assert!(ids.contains(&"fake/echo:nitro".to_string()), "{ids:?}");
    let (status, chunks) = h.stream_chat("fake/echo:nitro", "fast").await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), "echo: fast");
    let sent = h.posted_bodies("/responses");
    assert_eq!(sent[0]["model"], "fake/echo:nitro");
}

#[tokio::test]
async fn anthropic_models_get_the_beta_header_and_cache_breakpoints_on_chat_completions_too() {
    let h = Harness::with_env(&[("FORCE_CHAT_COMPLETIONS_MODELS", "anthropic/*")]).await;
    let body = json!({
        "model": "anthropic/claude-sonnet-4.5",
        "stream": true,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "echo: first"},
            {"role": "user", "content": "cache me"}
        ],
    });
    let (status, chunks) = h.stream_with(&body, &[]).await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), "echo: cache me");
    let requests = h.fake.requests();
    let sent = requests
        .iter()
        .find(|r| r.method == "POST" && r.path.ends_with("/chat/completions"))
        .unwrap();
    let beta = sent.header("x-anthropic-beta").unwrap_or_default();
    assert!(beta.contains("interleaved-thinking"), "{:?}", sent.headers);
    let body = sent.json().unwrap();
    assert!(
        body.get("cache_control").is_none(),
        "per-block on this endpoint: {body}"
    );
    // Without tools: the last system message and the last three user texts (at most 4).
    let marked: Vec<&str> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            m["content"]
                .as_array()
                .is_some_and(|parts| parts.iter().any(|p| p.get("cache_control").is_some()))
        })
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(marked, ["system", "user", "user"], "{body}");
}

#[tokio::test]
async fn anthropic_models_get_interleaved_thinking_and_prompt_caching() {
    let h = Harness::start().await;
    let (status, chunks) = h
        .stream_chat("anthropic/claude-sonnet-4.5", "cache me")
        .await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), "echo: cache me");
    let requests = h.fake.requests();
    let sent = requests
        .iter()
        .find(|r| r.method == "POST" && r.path.ends_with("/responses"))
        .unwrap();
    let beta = sent.header("x-anthropic-beta").unwrap_or_default();
    assert!(beta.contains("interleaved-thinking"), "{:?}", sent.headers);
    let body = sent.json().unwrap();
    assert!(body.get("cache_control").is_some(), "{body}");
}

#[tokio::test]
async fn gemini_models_get_a_thinking_config() {
    let h = Harness::start().await;
    let (status, chunks) = h.stream_chat("google/gemini-2.5-flash", "think").await;
    assert_eq!(status, 200, "{chunks:?}");
    let sent = h.posted_bodies("/responses");
    assert!(sent[0].get("thinking_config").is_some(), "{}", sent[0]);
}

#[tokio::test]
async fn status_thinking_mode_shows_reasoning_as_status_events_only() {
    let h = Harness::with(Options {
        // Persistence off: the answer is compared whole (no artifact marker line).
        env: vec![
            ("THINKING_OUTPUT_MODE", "status".into()),
            ("PERSIST_REASONING_TOKENS", "disabled".into()),
        ],
        ..Options::default()
    })
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
async fn a_thinking_signature_refusal_is_retried_without_the_replayed_reasoning() {
    let h = Harness::with(Options {
        env: vec![("FORCE_CHAT_COMPLETIONS_MODELS", "fake/signature".into())],
        ..Options::default()
    })
    .await;
    // Open WebUI replays the previous turn's `reasoning_details` on the assistant message.
    let body = serde_json::json!({
        "model": "fake/signature",
        "stream": true,
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "earlier answer", "reasoning_details": [
                {"type": "reasoning.text", "text": "old thoughts", "signature": "sig-from-another-key", "index": 0}
            ]},
            {"role": "user", "content": "second"},
        ],
    });
    let resp = h.post_chat(&body).await;
    assert_eq!(resp.status().as_u16(), 200);
    let chunks = crate::harness::sse_data(&resp.text().await.unwrap());
    assert_eq!(content_of(&chunks), "echo: second");
    let sent: Vec<serde_json::Value> = h
        .fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .filter_map(|r| r.json())
        .collect();
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
async fn a_preset_goes_to_chat_completions_unless_pinned_to_responses_which_is_a_conflict() {
    let h = Harness::start().await;
    let mut body = Harness::chat_body("fake/echo", "with preset", true);
    body["preset"] = json!("my-preset");
    let (status, text) = h.post_with(&body, &[]).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(content_of(&sse_data(&text)), "echo: with preset");
    assert_eq!(h.posted_paths(), ["/chat/completions"]);

    let pinned = Harness::with(Options {
        env: vec![("FORCE_RESPONSES_MODELS", "fake/*".into())],
        ..Options::default()
    })
    .await;
    let (status, text) = pinned.post_with(&body, &[]).await;
    assert_eq!(status, 400, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "endpoint_override_conflict");
    let (status, text) = pinned.post_with(&body, &OWUI).await;
    assert_eq!(status, 200, "{text}");
    let content = content_of(&sse_data(&text));
    assert!(content.contains("/chat/completions"), "{content}");
    assert!(
        has_error_id(&content) && !has_placeholder(&content),
        "{content}"
    );
    assert!(
        pinned.posted_paths().is_empty(),
        "nothing was sent upstream"
    );
}

#[tokio::test]
async fn zdr_enforcement_routes_zdr_models_and_refuses_the_rest() {
    let h = Harness::with(Options {
        env: vec![("ZDR_ENFORCE", "true".into())],
        ..Options::default()
    })
    .await;
    let (status, chunks) = h.stream_chat("fake/echo", "private").await;
    assert_eq!(status, 200, "{chunks:?}");
    let sent = h.posted_bodies("/responses");
    assert_eq!(sent[0]["provider"]["zdr"], true);
    let resp = h
        .post_chat(&Harness::chat_body("fake/reasoning", "x", false))
        .await;
    assert_eq!(resp.status().as_u16(), 403);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_restricted");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ZDR_ENFORCE")
    );
    let ids = listed_ids(&h).await;
    assert!(
        ids.contains(&"fake/echo".to_string()) && !ids.contains(&"fake/reasoning".to_string()),
        "{ids:?}"
    );
}

#[tokio::test]
async fn old_long_tool_outputs_are_shortened_before_they_go_back_to_the_model() {
    let h = Harness::with(Options {
        env: vec![("TOOL_OUTPUT_RETENTION_TURNS", "2".into())],
        ..Options::default()
    })
    .await;
    let long = "0123456789".repeat(200);
    let mut messages = vec![
        json!({"role": "user", "content": "look it up"}),
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
        ]}),
        json!({"role": "tool", "tool_call_id": "call_1", "content": long}),
        json!({"role": "assistant", "content": "found it"}),
    ];
    for turn in ["and then?", "ok", "last"] {
        messages.push(json!({"role": "user", "content": turn}));
    }
    let body = json!({"model": "fake/echo", "stream": true, "messages": messages});
    let (status, text) = h.post_with(&body, &[]).await;
    assert_eq!(status, 200, "{text}");
    let sent = h.posted_bodies("/responses");
    let output = sent[0]["input"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call_output")
        .unwrap()["output"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(output.contains("pruned"), "{output}");
    assert!(output.len() < 600);
    assert!(output.starts_with("0123456789"));
}

#[tokio::test]
async fn generated_images_reach_the_caller_as_delta_images_and_message_images() {
    use fake_openrouter::scenarios::FAKE_IMAGE_PNG_B64;
    let h = Harness::start().await;
    let expected = format!("data:image/png;base64,{FAKE_IMAGE_PNG_B64}");
    let (status, chunks) = h.stream_chat("fake/image", "draw").await;
    assert_eq!(status, 200, "{chunks:?}");
    let images: Vec<Value> = json_chunks(&chunks)
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["images"].as_array().cloned())
        .flatten()
        .collect();
    assert_eq!(
        images,
        vec![json!({"type": "image_url", "image_url": {"url": expected}})]
    );
    assert_eq!(content_of(&chunks), "echo: draw");

    let resp = h
        .post_chat(&Harness::chat_body("fake/image", "draw", false))
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["images"][0]["image_url"]["url"],
        expected
    );
    assert_eq!(body["choices"][0]["message"]["content"], "echo: draw");
}

#[tokio::test]
async fn message_phases_in_the_history_go_back_upstream_and_never_as_text() {
    let h = Harness::start().await;
    let history = json!([
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "Let me check.\n\n[P:commentary]: #\n\nIt is sunny.\n\n[P:final_answer]: #"},
        {"role": "user", "content": "thanks"},
    ]);
    let (status, text) = h
        .post_with(
            &json!({"model": "fake/echo", "stream": true, "messages": history}),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let body = h.posted_bodies("/responses").pop().unwrap();
    let assistant: Vec<&Value> = body["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["role"] == "assistant")
        .collect();
    assert_eq!(assistant.len(), 2, "{body:#}");
    assert_eq!(assistant[0]["phase"], "commentary");
    assert_eq!(assistant[1]["phase"], "final_answer");
    assert_eq!(assistant[1]["content"][0]["text"], "It is sunny.");
    assert!(!body.to_string().contains("[P:"));

    // Over /chat/completions the markers are simply removed.
    let (status, _) = h
        .post_with(
            &json!({"model": "fake/responses-unsupported", "stream": true, "messages": history}),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    let chat = h
        .fake
        .requests()
        .into_iter()
        .rfind(|r| r.path.ends_with("/chat/completions"))
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .unwrap();
    assert!(!chat.to_string().contains("[P:"), "{chat:#}");
    assert!(chat.to_string().contains("It is sunny."));
}
