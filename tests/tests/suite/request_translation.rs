//! What reaches OpenRouter for a chat, read from what the fake recorded (every body is also checked
//! against OpenRouter's OpenAPI schema): each kind of user content, tool history, `tools`,
//! `tool_choice` and `response_format` in each endpoint's shape; only allowlisted fields without
//! nulls; the output limit; custom parameters; context trimming; old tool outputs shortened; message
//! phases; attribution headers; bodies sent with a length; and the provider-specific parameters for
//! Anthropic, Gemini and Claude's verbosity.

use crate::harness::{Harness, content_of};
use serde_json::{Value, json};

/// The first function tool of a request body.
fn first_function(body: &Value) -> Value {
    body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "function")
        .unwrap()
        .clone()
}

#[tokio::test]
async fn every_user_content_block_reaches_each_endpoint_in_its_own_shape() {
    const IMAGE: &str = "data:image/png;base64,iVBORw0KGgo=";
    const PDF: &str = "data:application/pdf;base64,JVBERi0xLjQ=";
    const VIDEO: &str = "https://videos.example/clip.mp4";
    let content = json!([
        {"type": "text", "text": "look at all of this"},
        {"type": "image_url", "image_url": {"url": IMAGE, "detail": "high"}},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": PDF}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {"type": "video_url", "video_url": {"url": VIDEO}},
    ]);
    let messages = json!([{"role": "user", "content": content}]);
    let h = Harness::with_env(&[]).await;
    h.chat_ok(
        "google/gemini-2.5-flash",
        json!({"messages": messages}),
        &[],
    )
    .await;
    let body = h.last_responses();
    assert_eq!(
        body["input"],
        json!([{"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "look at all of this"},
            {"type": "input_image", "image_url": IMAGE, "detail": "high"},
            {"type": "input_file", "filename": "a.pdf", "file_data": PDF},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"type": "input_video", "video_url": VIDEO},
        ]}]),
        "{body:#}"
    );
    h.assert_spec_clean();

    let chat =
        Harness::with_env(&[("FORCE_CHAT_COMPLETIONS_MODELS", "google/gemini-2.5-flash")]).await;
    chat.chat_ok(
        "google/gemini-2.5-flash",
        json!({"messages": messages}),
        &[],
    )
    .await;
    let body = chat.posted_bodies("/chat/completions").pop().unwrap();
    assert_eq!(body["messages"], messages, "{body:#}");
    chat.assert_spec_clean();
}

#[tokio::test]
async fn tool_history_becomes_function_items_and_orphaned_calls_and_outputs_are_dropped() {
    let messages = json!([
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_a", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_orphan", "type": "function",
             "function": {"name": "get_time", "arguments": "{}"}},
        ]},
        {"role": "tool", "tool_call_id": "call_a", "content": [{"type": "text", "text": "21 C"}]},
        {"role": "tool", "tool_call_id": "call_stray", "content": "from nowhere"},
        {"role": "assistant", "content": "It is 21 degrees."},
        {"role": "user", "content": "thanks"},
    ]);
    let h = Harness::with_env(&[]).await;
    // This model answers only over /chat/completions, so one chat shows both renderings.
    h.chat_ok(
        "fake/responses-unsupported",
        json!({"messages": messages}),
        &[],
    )
    .await;
    let input = h.last_responses()["input"].as_array().unwrap().clone();
    let calls: Vec<&Value> = input
        .iter()
        .filter(|i| i["type"] == "function_call")
        .collect();
    assert_eq!(
        calls,
        [
            &json!({"type": "function_call", "call_id": "call_a", "name": "get_weather",
                  "arguments": "{\"city\":\"Paris\"}"})
        ],
        "{input:#?}"
    );
    let outputs: Vec<&Value> = input
        .iter()
        .filter(|i| i["type"] == "function_call_output")
        .collect();
    assert_eq!(
        outputs,
        [&json!({"type": "function_call_output", "call_id": "call_a",
                  "output": r#"[{"text":"21 C","type":"text"}]"#})],
        "non-string tool content is sent as JSON text: {input:#?}"
    );
    let call_at = input.iter().position(|i| i["type"] == "function_call");
    let output_at = input
        .iter()
        .position(|i| i["type"] == "function_call_output");
    assert!(call_at < output_at, "{input:#?}");
    let text = serde_json::to_string(&input).unwrap();
    assert!(
        !text.contains("call_orphan") && !text.contains("call_stray"),
        "{text}"
    );

    let chat = h.posted_bodies("/chat/completions").pop().unwrap();
    let sent = chat["messages"].as_array().unwrap();
    let assistant = sent
        .iter()
        .find(|m| m["tool_calls"].is_array())
        .expect("the answered call stays");
    assert_eq!(assistant["tool_calls"].as_array().unwrap().len(), 1);
    assert_eq!(assistant["tool_calls"][0]["id"], "call_a");
    let tool_ids: Vec<&Value> = sent
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| &m["tool_call_id"])
        .collect();
    assert_eq!(tool_ids, [&json!("call_a")]);
    h.assert_spec_clean();
}

#[tokio::test]
async fn tools_tool_choice_and_response_format_take_each_endpoints_shape() {
    let parameters = json!({"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]});
    let schema = json!({"type": "object", "properties": {"answer": {"type": "string"}},
                        "required": ["answer"], "additionalProperties": false});
    let h = Harness::with_env(&[]).await;
    h.chat_ok("fake/responses-unsupported",
        json!({
            "tools": [{"type": "function", "function": {
                "name": "get_weather", "description": "Weather for a city", "parameters": parameters}}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "response_format": {"type": "json_schema", "json_schema": {
                "name": "reply", "schema": schema, "strict": true}},
        }),
        &[],
    )
    .await;
    let responses = h.last_responses();
    let function = first_function(&responses);
    assert_eq!(
        function,
        json!({"type": "function", "name": "get_weather", "description": "Weather for a city",
               "parameters": parameters})
    );
    assert_eq!(
        responses["tool_choice"],
        json!({"type": "function", "name": "get_weather"})
    );
    assert_eq!(
        responses["text"]["format"],
        json!({"type": "json_schema", "name": "reply", "schema": schema, "strict": true})
    );
    assert!(responses.get("response_format").is_none());

    let chat = h.posted_bodies("/chat/completions").pop().unwrap();
    let function = first_function(&chat);
    assert_eq!(
        function,
        json!({"type": "function", "function": {"name": "get_weather",
               "description": "Weather for a city", "parameters": parameters}})
    );
    assert_eq!(
        chat["tool_choice"],
        json!({"type": "function", "function": {"name": "get_weather"}})
    );
    assert_eq!(
        chat["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "reply", "schema": schema,
               "strict": true}})
    );
    assert!(chat.get("text").is_none());

    // Legacy `functions` / `function_call` become tools and a tool choice too.
    h.chat_ok(
        "fake/echo",
        json!({"functions": [{"name": "lookup", "parameters": parameters}],
               "function_call": {"name": "lookup"}}),
        &[],
    )
    .await;
    let legacy = h.last_responses();
    assert!(
        legacy["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["type"] == "function" && t["name"] == "lookup"),
        "{legacy}"
    );
    assert_eq!(
        legacy["tool_choice"],
        json!({"type": "function", "name": "lookup"})
    );
    assert!(legacy.get("functions").is_none() && legacy.get("function_call").is_none());
    h.assert_spec_clean();
}

#[tokio::test]
async fn only_allowlisted_fields_without_nulls_reach_each_endpoint() {
    let h = Harness::with_env(&[]).await;
    h.chat_ok(
        "fake/responses-unsupported",
        json!({
            "n": 2, "suffix": "s", "files": [{"type": "file", "id": "f1"}],
            "features": {"web_search": false}, "chat_id": "c1", "id": "msg-1",
            "variables": {"{{USER_NAME}}": "Ada"}, "background_tasks": {"title_generation": true},
            "temperature": null, "top_p": "0.5", "top_k": "40.4", "seed": 7.6,
            "stop": ["END"], "logit_bias": {"50256": -100},
            "provider": {"order": ["openai"], "sort": null},
        }),
        &[],
    )
    .await;
    let responses = h.last_responses();
    let chat = h.posted_bodies("/chat/completions").pop().unwrap();
    for body in [&responses, &chat] {
        for dropped in [
            "n",
            "suffix",
            "files",
            "features",
            "chat_id",
            "id",
            "variables",
            "background_tasks",
            "temperature",
        ] {
            assert!(body.get(dropped).is_none(), "{dropped} was sent: {body:#}");
        }
        assert_eq!(body["top_p"], json!(0.5), "{body:#}");
        assert_eq!(body["provider"], json!({"order": ["openai"]}), "{body:#}");
    }
    assert_eq!(responses["top_k"], json!(40));
    for chat_only in ["seed", "stop", "logit_bias", "messages"] {
        assert!(
            responses.get(chat_only).is_none(),
            "{chat_only}: {responses:#}"
        );
    }
    assert!(responses["input"].is_array());
    assert_eq!(chat["seed"], json!(8));
    assert_eq!(chat["top_k"], json!(40));
    assert_eq!(chat["stop"], json!(["END"]));
    assert_eq!(chat["logit_bias"], json!({"50256": -100}));
    for responses_only in ["input", "instructions", "truncation", "max_output_tokens"] {
        assert!(
            chat.get(responses_only).is_none(),
            "{responses_only}: {chat:#}"
        );
    }
    h.assert_spec_clean();
}

#[tokio::test]
async fn the_output_limit_is_cleared_unless_use_model_max_output_tokens_is_on() {
    let h = Harness::with_env(&[]).await;
    h.chat_ok(
        "fake/responses-unsupported",
        json!({"max_tokens": 300}),
        &[],
    )
    .await;
    let responses = h.last_responses();
    let chat = h.posted_bodies("/chat/completions").pop().unwrap();
    for body in [&responses, &chat] {
        for key in ["max_output_tokens", "max_tokens", "max_completion_tokens"] {
            assert!(body.get(key).is_none(), "{key}: {body:#}");
        }
    }

    let on = Harness::with_env(&[("USE_MODEL_MAX_OUTPUT_TOKENS", "true")]).await;
    on.chat_ok(
        "fake/responses-unsupported",
        json!({"max_tokens": 300}),
        &[],
    )
    .await;
    let responses = on.last_responses();
    assert_eq!(responses["max_output_tokens"], 300);
    assert!(responses.get("max_tokens").is_none());
    let chat = on.posted_bodies("/chat/completions").pop().unwrap();
    assert_eq!(chat["max_tokens"], 300);
    // Without a caller limit, the catalogue's maximum for the model is sent.
    on.chat_ok("fake/echo", json!({}), &[]).await;
    assert_eq!(on.last_responses()["max_output_tokens"], 8192);
    h.assert_spec_clean();
    on.assert_spec_clean();
}

#[tokio::test]
async fn custom_params_become_fallback_models_trace_and_provider_routing() {
    let h = Harness::with_env(&[]).await;
    h.chat_ok(
        "fake/echo",
        json!({
            "models": ["fake/slow"],
            "model_fallback": "fake/reasoning, fake/slow, fake/echo:nitro",
            "trace": {"trace_id": "caller", "span_name": "span"},
            "openrouter_trace": {"trace_id": "t-1", "generation_name": "gen"},
            "provider": {"order": ["fakeprovider"]},
            "openrouter_provider_order": "openai, Not A Slug!, fakeprovider, anthropic",
            "openrouter_provider_ignore": ["azure"],
            "openrouter_provider_only": "openai,anthropic",
        }),
        &[],
    )
    .await;
    let body = h.last_responses();
    assert_eq!(
        body["models"],
        json!(["fake/slow", "fake/reasoning", "fake/echo:nitro"])
    );
    assert_eq!(
        body["trace"],
        json!({"trace_id": "t-1", "span_name": "span", "generation_name": "gen"})
    );
    assert_eq!(
        body["provider"]["order"],
        json!(["fakeprovider", "openai", "anthropic"])
    );
    assert_eq!(body["provider"]["ignore"], json!(["azure"]));
    assert_eq!(body["provider"]["only"], json!(["openai", "anthropic"]));
    let text = body.to_string();
    for custom in ["model_fallback", "openrouter_trace", "openrouter_provider"] {
        assert!(!text.contains(custom), "{custom} leaked: {text}");
    }

    // A string `openrouter_trace` holding JSON is read; one that is not JSON is ignored.
    h.chat_ok(
        "fake/echo",
        json!({"openrouter_trace": "{\"trace_name\": \"from-string\"}"}),
        &[],
    )
    .await;
    assert_eq!(
        h.last_responses()["trace"],
        json!({"trace_name": "from-string"})
    );
    h.chat_ok("fake/echo", json!({"openrouter_trace": "not json"}), &[])
        .await;
    assert!(h.last_responses().get("trace").is_none());
    h.assert_spec_clean();
}

#[tokio::test]
async fn context_trimming_adds_the_compression_plugin_once_or_disables_truncation() {
    let h = Harness::with_env(&[]).await;
    h.chat_ok(
        "fake/responses-unsupported",
        json!({"plugins": [{"id": "context-compression"}]}),
        &[],
    )
    .await;
    let responses = h.last_responses();
    let compression = |body: &Value| {
        body["plugins"]
            .as_array()
            .map(|p| {
                p.iter()
                    .filter(|p| p["id"] == "context-compression")
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(compression(&responses), 1, "{responses}");
    assert!(responses.get("truncation").is_none());
    let chat = h.posted_bodies("/chat/completions").pop().unwrap();
    assert_eq!(compression(&chat), 1, "{chat}");

    let off = Harness::with_env(&[("AUTO_CONTEXT_TRIMMING", "false")]).await;
    off.chat_ok("fake/echo", json!({}), &[]).await;
    let body = off.last_responses();
    assert_eq!(body["truncation"], "disabled");
    assert_eq!(compression(&body), 0, "{body}");
    h.assert_spec_clean();
    off.assert_spec_clean();
}

#[tokio::test]
async fn old_long_tool_outputs_are_shortened_before_they_go_back_to_the_model() {
    let h = Harness::with_env(&[("TOOL_OUTPUT_RETENTION_TURNS", "2")]).await;
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
    let chat = h.last_body("/chat/completions");
    assert!(!chat.to_string().contains("[P:"), "{chat:#}");
    assert!(chat.to_string().contains("It is sunny."));
}

#[tokio::test]
async fn attribution_headers_go_with_every_openrouter_call_and_the_referer_can_be_overridden() {
    const REFERER: &str = "https://chat.example.org/";
    let h = Harness::with_env(&[("HTTP_REFERER_OVERRIDE", REFERER)]).await;
    h.chat_ok("fake/responses-unsupported", json!({}), &[])
        .await;
    let requests = h.fake.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    for path in [
        "/api/v1/models",
        "/api/v1/responses",
        "/api/v1/chat/completions",
    ] {
        assert!(paths.contains(&path), "{path}: {paths:?}");
    }
    for r in &requests {
        assert_eq!(r.header("http-referer"), Some(REFERER), "{}", r.path);
        assert_eq!(
            r.header("x-openrouter-title"),
            Some("Responses Pipe"),
            "{}",
            r.path
        );
        assert_eq!(
            r.header("x-openrouter-categories"),
            Some("general-chat"),
            "{}",
            r.path
        );
    }

    let default = Harness::with_env(&[]).await;
    default.chat_ok("fake/echo", json!({}), &[]).await;
    let referers: Vec<String> = default
        .fake
        .requests()
        .iter()
        .map(|r| r.header("http-referer").unwrap_or_default().to_string())
        .collect();
    assert!(
        referers
            .iter()
            .all(|r| r.starts_with("https://") && r != REFERER),
        "{referers:?}"
    );
    h.assert_spec_clean();
}

#[tokio::test]
async fn upstream_request_bodies_go_out_with_content_length_not_chunked() {
    let h = Harness::start().await;
    let (status, _) = h.stream_chat("fake/echo", "measure this body").await;
    assert_eq!(status, 200);
    let resp = h
        .post_chat(&Harness::chat_body("fake/echo", "and this one", false))
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let posts: Vec<_> = h
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 2);
    for r in &posts {
        assert_eq!(
            r.header("content-length"),
            Some(r.body.len().to_string().as_str()),
            "{}: {:?}",
            r.path,
            r.headers
        );
        assert!(
            r.header("transfer-encoding").is_none(),
            "{}: {:?}",
            r.path,
            r.headers
        );
    }
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
    let sent = h.first_post("/chat/completions");
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
    let sent = h.first_post("/responses");
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
async fn claude_at_xhigh_effort_asks_for_max_verbosity_within_the_spec() {
    let h = Harness::start().await;
    let body = json!({
        "model": "anthropic/claude-sonnet-4.5",
        "stream": true,
        "reasoning_effort": "xhigh",
        "messages": [{"role": "user", "content": "say it all"}],
    });
    let (status, chunks) = h.stream_with(&body, &[]).await;
    assert_eq!(status, 200, "{chunks:?}");
    let sent = h.first_post("/responses").json().unwrap();
    assert_eq!(sent["text"]["verbosity"], "max", "{sent}");
    assert_eq!(sent["reasoning"]["effort"], "xhigh", "{sent}");
    // The harness fails the test on drop if this body broke OpenRouter's schema.
}
