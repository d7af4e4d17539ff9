//! Chat fidelity on the request side, through the real host and component against the fake
//! OpenRouter: the catalogue filters and variants, the translation of an Open
//! WebUI body into what each OpenRouter endpoint receives, the identifiers sent upstream
//! and housekeeping tasks. Every test reads what the fake recorded; every body
//! the host POSTed is also checked against OpenRouter's OpenAPI schema.

use crate::harness::{Harness, OWUI, Options, content_of, sse_data};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// A streamed chat to `model` with `extra` merged into the body; asserts it was answered.
async fn chat_ok(h: &Harness, model: &str, extra: Value, headers: &[(&str, &str)]) -> String {
    let mut body = Harness::chat_body(model, "hello", true);
    if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
        b.extend(extra);
    }
    let (status, text) = h.post_with(&body, headers).await;
    assert_eq!(status, 200, "{text}");
    let content = content_of(&sse_data(&text));
    assert!(content.starts_with("echo: "), "{text}");
    content
}

/// The answer text of a non-streamed chat completion.
fn message_content(text: &str) -> String {
    let v: Value = serde_json::from_str(text).unwrap();
    assert!(v.get("error").is_none(), "{v}");
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The only `/responses` body sent so far.
fn last_responses(h: &Harness) -> Value {
    h.posted_bodies("/responses")
        .pop()
        .expect("a /responses request")
}

fn post_count(h: &Harness) -> usize {
    h.fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count()
}

/// Every body the host sent upstream satisfied OpenRouter's OpenAPI request schema.
fn assert_spec_clean(h: &Harness) {
    let violations = h.fake.spec_violations();
    assert!(violations.is_empty(), "{violations:#?}");
}

/// The `/v1/models` entries.
async fn listed(h: &Harness) -> Vec<Value> {
    let resp = h
        .client
        .get(format!("{}/v1/models", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    body["data"].as_array().unwrap().clone()
}

async fn listed_ids(h: &Harness) -> Vec<String> {
    listed(h)
        .await
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_string))
        .collect()
}

/// A chat the filters refuse: 403 `model_restricted` naming `reason`, nothing sent upstream.
async fn assert_restricted(h: &Harness, model: &str, reason: &str) {
    let before = post_count(h);
    let (status, text) = h
        .post_with(&Harness::chat_body(model, "hi", false), &[])
        .await;
    assert_eq!(status, 403, "{model}: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "model_restricted", "{v}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(reason), "{model}: {message}");
    assert_eq!(
        post_count(h),
        before,
        "nothing was sent upstream for {model}"
    );
}

fn tool_types(body: &Value) -> Vec<String> {
    body["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["type"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

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

fn hmac_hex(secret: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The `session_id` for a chat: HMAC-SHA256 under HKDF-SHA256(`WEBUI_SECRET_KEY`, info
/// `responses-pipe session-id v1`), never under the raw secret.
fn session_hex(secret: &str, chat: &str) -> String {
    let mut key = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(None, secret.as_bytes())
        .expand(b"responses-pipe session-id v1", &mut key)
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(chat.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// An HS256 token as Open WebUI signs its forwarded user header.
fn user_jwt(claims: &Value, secret: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature = {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{header}.{payload}").as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    };
    format!("{header}.{payload}.{signature}")
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---------------------------------------------------------------------------------------------
// Catalogue

#[tokio::test]
async fn an_unreachable_zdr_list_leaves_zdr_unknown_so_only_enforcement_refuses() {
    // ZDR_MODELS_ONLY with an unknown list is skipped: every model stays listed and usable.
    let h = Harness::with_env(&[("ZDR_MODELS_ONLY", "true")]).await;
    h.fake.set_zdr_failing(true);
    let ids = listed_ids(&h).await;
    assert!(
        ids.contains(&"fake/reasoning".to_string()) && ids.contains(&"fake/echo".to_string()),
        "{ids:?}"
    );
    chat_ok(&h, "fake/reasoning", json!({}), &[]).await;
    assert!(
        h.fake
            .requests()
            .iter()
            .any(|r| r.path == "/api/v1/endpoints/zdr"),
        "the ZDR list was asked for"
    );
    assert_spec_clean(&h);

    // ZDR_ENFORCE cannot vouch for any model then, not even one that has a ZDR endpoint.
    let enforced = Harness::with_env(&[("ZDR_ENFORCE", "true")]).await;
    enforced.fake.set_zdr_failing(true);
    assert_restricted(&enforced, "fake/echo", "ZDR_ENFORCE_UNAVAILABLE").await;
    assert!(listed_ids(&enforced).await.is_empty());
}

#[tokio::test]
async fn zdr_models_only_lists_and_serves_only_models_with_a_zdr_endpoint() {
    let h = Harness::with_env(&[("ZDR_MODELS_ONLY", "true")]).await;
    let mut ids = listed_ids(&h).await;
    ids.sort();
    assert_eq!(ids, ["fake/echo", "openai/gpt-4o-2024-08-06"]);
    assert_restricted(&h, "fake/reasoning", "ZDR_MODELS_ONLY").await;
    chat_ok(&h, "fake/echo", json!({}), &[]).await;
    assert_spec_clean(&h);
}

#[tokio::test]
async fn the_free_model_filter_exclude_hides_free_models_and_refuses_them() {
    let h = Harness::with_env(&[("FREE_MODEL_FILTER", "exclude")]).await;
    let ids = listed_ids(&h).await;
    assert!(ids.contains(&"fake/echo".to_string()), "{ids:?}");
    assert!(
        !ids.iter().any(|id| id.ends_with(":free")),
        "free models are hidden: {ids:?}"
    );
    assert_restricted(
        &h,
        "meta-llama/llama-3.3-70b-instruct:free",
        "FREE_MODEL_FILTER=exclude",
    )
    .await;
}

#[tokio::test]
async fn the_tool_calling_filter_keeps_or_drops_tool_capable_models() {
    let only = Harness::with_env(&[("TOOL_CALLING_FILTER", "only")]).await;
    let ids = listed_ids(&only).await;
    assert!(ids.contains(&"fake/echo".to_string()), "{ids:?}");
    for hidden in [
        "meta-llama/llama-3.3-70b-instruct:free",
        "openai/gpt-image-1",
    ] {
        assert!(!ids.contains(&hidden.to_string()), "{hidden}: {ids:?}");
    }
    assert_restricted(
        &only,
        "meta-llama/llama-3.3-70b-instruct:free",
        "TOOL_CALLING_FILTER=only",
    )
    .await;
    chat_ok(&only, "fake/echo", json!({}), &[]).await;

    let exclude = Harness::with_env(&[("TOOL_CALLING_FILTER", "exclude")]).await;
    let ids = listed_ids(&exclude).await;
    assert!(
        ids.contains(&"meta-llama/llama-3.3-70b-instruct:free".to_string()),
        "{ids:?}"
    );
    assert!(!ids.contains(&"fake/echo".to_string()), "{ids:?}");
    assert_restricted(&exclude, "fake/echo", "TOOL_CALLING_FILTER=exclude").await;
    assert_spec_clean(&only);
}

#[tokio::test]
async fn variants_inherit_their_base_and_preset_variants_go_to_chat_completions_as_at_preset() {
    let h = Harness::with_env(&[(
        "VARIANT_MODELS",
        "fake/echo:nitro, fake/echo@preset/fast, nobody/missing:nitro",
    )])
    .await;
    let models = listed(&h).await;
    let find = |id: &str| models.iter().find(|m| m["id"] == id).cloned();
    let base = find("fake/echo").unwrap();
    let nitro = find("fake/echo:nitro").expect("the :nitro variant is listed");
    assert_eq!(nitro["capabilities"], base["capabilities"]);
    assert_eq!(nitro["context_length"], base["context_length"]);
    assert!(nitro["name"].as_str().unwrap().contains("nitro"), "{nitro}");
    let preset = find("fake/echo:preset/fast").expect("the preset variant is listed");
    assert_eq!(preset["capabilities"], base["capabilities"]);
    assert!(
        find("nobody/missing:nitro").is_none(),
        "a variant of an unknown base is not invented"
    );

    chat_ok(&h, "fake/echo:nitro", json!({}), &[]).await;
    assert_eq!(last_responses(&h)["model"], "fake/echo:nitro");

    // A preset only works on /chat/completions, under OpenRouter's `base@preset/slug` spelling.
    chat_ok(&h, "fake/echo:preset/fast", json!({}), &[]).await;
    let chats = h.posted_bodies("/chat/completions");
    assert_eq!(chats.len(), 1, "{chats:?}");
    assert_eq!(chats[0]["model"], "fake/echo@preset/fast");
    assert_eq!(
        h.posted_bodies("/responses").len(),
        1,
        "only the nitro chat"
    );
    assert_spec_clean(&h);
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
        post_count(&h) + post_count(&custom),
        0,
        "nothing sent upstream"
    );
}

#[tokio::test]
async fn the_model_list_carries_capabilities_limits_and_prices() {
    let h = Harness::start().await;
    let models = listed(&h).await;
    let find = |id: &str| models.iter().find(|m| m["id"] == id).unwrap().clone();
    let gemini = find("google/gemini-2.5-flash");
    for flag in [
        "vision",
        "audio_input",
        "video_input",
        "file_input",
        "reasoning",
        "tools",
    ] {
        assert_eq!(gemini["capabilities"][flag], true, "{flag}: {gemini}");
    }
    assert_eq!(gemini["capabilities"]["image_output"], false);
    assert_eq!(gemini["context_length"], 1_048_576);
    assert_eq!(gemini["max_output_tokens"], 65_535);
    let llama = find("meta-llama/llama-3.3-70b-instruct:free");
    assert_eq!(llama["capabilities"]["tools"], false);
    assert_eq!(llama["capabilities"]["vision"], false);
    assert_eq!(llama["capabilities"]["reasoning"], false);
    assert_eq!(
        llama["capabilities"]["file_input"], true,
        "PDFs go through OpenRouter's parser for every model"
    );
    assert_eq!(llama["pricing"]["prompt"], "0");
    let image = find("fake/image");
    assert_eq!(image["capabilities"]["image_output"], true);
    assert_eq!(image["capabilities"]["tools"], true);
    let gpt = find("openai/gpt-4o-2024-08-06");
    assert_eq!(gpt["pricing"]["completion"], "0.00001");
    assert_eq!(gpt["max_output_tokens"], 16_384);
}

// ---------------------------------------------------------------------------------------------
// Request translation

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
    chat_ok(
        &h,
        "google/gemini-2.5-flash",
        json!({"messages": messages}),
        &[],
    )
    .await;
    let body = last_responses(&h);
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
    assert_spec_clean(&h);

    let chat =
        Harness::with_env(&[("FORCE_CHAT_COMPLETIONS_MODELS", "google/gemini-2.5-flash")]).await;
    chat_ok(
        &chat,
        "google/gemini-2.5-flash",
        json!({"messages": messages}),
        &[],
    )
    .await;
    let body = chat.posted_bodies("/chat/completions").pop().unwrap();
    assert_eq!(body["messages"], messages, "{body:#}");
    assert_spec_clean(&chat);
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
    chat_ok(
        &h,
        "fake/responses-unsupported",
        json!({"messages": messages}),
        &[],
    )
    .await;
    let input = last_responses(&h)["input"].as_array().unwrap().clone();
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
    assert_spec_clean(&h);
}

#[tokio::test]
async fn tools_tool_choice_and_response_format_take_each_endpoints_shape() {
    let parameters = json!({"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]});
    let schema = json!({"type": "object", "properties": {"answer": {"type": "string"}},
                        "required": ["answer"], "additionalProperties": false});
    let h = Harness::with_env(&[]).await;
    chat_ok(
        &h,
        "fake/responses-unsupported",
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
    let responses = last_responses(&h);
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
    chat_ok(
        &h,
        "fake/echo",
        json!({"functions": [{"name": "lookup", "parameters": parameters}],
               "function_call": {"name": "lookup"}}),
        &[],
    )
    .await;
    let legacy = last_responses(&h);
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
    assert_spec_clean(&h);
}

#[tokio::test]
async fn only_allowlisted_fields_without_nulls_reach_each_endpoint() {
    let h = Harness::with_env(&[]).await;
    chat_ok(
        &h,
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
    let responses = last_responses(&h);
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
    assert_spec_clean(&h);
}

#[tokio::test]
async fn the_output_limit_is_cleared_unless_use_model_max_output_tokens_is_on() {
    let h = Harness::with_env(&[]).await;
    chat_ok(
        &h,
        "fake/responses-unsupported",
        json!({"max_tokens": 300}),
        &[],
    )
    .await;
    let responses = last_responses(&h);
    let chat = h.posted_bodies("/chat/completions").pop().unwrap();
    for body in [&responses, &chat] {
        for key in ["max_output_tokens", "max_tokens", "max_completion_tokens"] {
            assert!(body.get(key).is_none(), "{key}: {body:#}");
        }
    }

    let on = Harness::with_env(&[("USE_MODEL_MAX_OUTPUT_TOKENS", "true")]).await;
    chat_ok(
        &on,
        "fake/responses-unsupported",
        json!({"max_tokens": 300}),
        &[],
    )
    .await;
    let responses = last_responses(&on);
    assert_eq!(responses["max_output_tokens"], 300);
    assert!(responses.get("max_tokens").is_none());
    let chat = on.posted_bodies("/chat/completions").pop().unwrap();
    assert_eq!(chat["max_tokens"], 300);
    // Without a caller limit, the catalogue's maximum for the model is sent.
    chat_ok(&on, "fake/echo", json!({}), &[]).await;
    assert_eq!(last_responses(&on)["max_output_tokens"], 8192);
    assert_spec_clean(&h);
    assert_spec_clean(&on);
}

#[tokio::test]
async fn custom_params_become_fallback_models_trace_and_provider_routing() {
    let h = Harness::with_env(&[]).await;
    chat_ok(
        &h,
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
    let body = last_responses(&h);
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
    chat_ok(
        &h,
        "fake/echo",
        json!({"openrouter_trace": "{\"trace_name\": \"from-string\"}"}),
        &[],
    )
    .await;
    assert_eq!(
        last_responses(&h)["trace"],
        json!({"trace_name": "from-string"})
    );
    chat_ok(
        &h,
        "fake/echo",
        json!({"openrouter_trace": "not json"}),
        &[],
    )
    .await;
    assert!(last_responses(&h).get("trace").is_none());
    assert_spec_clean(&h);
}

#[tokio::test]
async fn a_per_chat_zdr_request_routes_to_zdr_endpoints_when_users_may_ask() {
    let h = Harness::with_env(&[]).await;
    chat_ok(&h, "fake/echo", json!({"zdr": true}), &[]).await;
    let body = last_responses(&h);
    assert_eq!(body["provider"]["zdr"], true, "{body}");
    assert!(body.get("zdr").is_none());
    // A model without a ZDR endpoint cannot honour the request.
    let (status, text) = h
        .post_with(
            &json!({"model": "fake/reasoning", "stream": false, "zdr": true,
                "messages": [{"role": "user", "content": "hi"}]}),
            &[],
        )
        .await;
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("model_restricted") && text.contains("ZDR_ENFORCE"),
        "{text}"
    );
    // Without the request nothing is pinned.
    chat_ok(&h, "fake/reasoning", json!({}), &[]).await;
    assert!(last_responses(&h)["provider"].get("zdr").is_none());

    let locked = Harness::with_env(&[("ALLOW_USER_ZDR_OVERRIDE", "false")]).await;
    chat_ok(&locked, "fake/reasoning", json!({"zdr": true}), &[]).await;
    let body = last_responses(&locked);
    assert!(body["provider"].get("zdr").is_none(), "{body}");
    assert_spec_clean(&h);
    assert_spec_clean(&locked);
}

#[tokio::test]
async fn context_trimming_adds_the_compression_plugin_once_or_disables_truncation() {
    let h = Harness::with_env(&[]).await;
    chat_ok(
        &h,
        "fake/responses-unsupported",
        json!({"plugins": [{"id": "context-compression"}]}),
        &[],
    )
    .await;
    let responses = last_responses(&h);
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
    chat_ok(&off, "fake/echo", json!({}), &[]).await;
    let body = last_responses(&off);
    assert_eq!(body["truncation"], "disabled");
    assert_eq!(compression(&body), 0, "{body}");
    assert_spec_clean(&h);
    assert_spec_clean(&off);
}

#[tokio::test]
async fn server_tools_go_to_tool_models_but_never_to_image_models_or_when_disabled() {
    const SERVER_TOOLS: [&str; 3] = [
        "openrouter:web_search",
        "openrouter:web_fetch",
        "openrouter:datetime",
    ];
    // The chat asks for web tools, as Open WebUI's per-chat switch does.
    let asks = || json!({"openrouter_web_search": true});
    let h = Harness::with_env(&[]).await;
    chat_ok(&h, "fake/echo", asks(), &[]).await;
    let types = tool_types(&last_responses(&h));
    for tool in SERVER_TOOLS {
        assert!(types.contains(&tool.to_string()), "{tool}: {types:?}");
    }
    // An image-output model's providers fail on tool use: no server tool at all.
    let mut draw = Harness::chat_body("fake/image", "draw", true);
    draw["openrouter_web_search"] = json!(true);
    let (status, _) = h.post_with(&draw, &[]).await;
    assert_eq!(status, 200);
    let types = tool_types(&last_responses(&h));
    assert!(
        !types.iter().any(|t| t.starts_with("openrouter:")),
        "{types:?}"
    );
    // `disable_native_websearch` strips the search tool and the legacy `web` plugin only.
    chat_ok(
        &h,
        "fake/echo",
        json!({"disable_native_websearch": true, "plugins": [{"id": "web"}],
            "openrouter_web_search": true}),
        &[],
    )
    .await;
    let body = last_responses(&h);
    let types = tool_types(&body);
    assert!(
        !types.contains(&"openrouter:web_search".to_string()),
        "{types:?}"
    );
    assert!(
        types.contains(&"openrouter:web_fetch".to_string()),
        "{types:?}"
    );
    assert!(
        !body.to_string().contains("\"web\""),
        "the web plugin is gone: {body}"
    );
    assert!(body.get("disable_native_websearch").is_none());

    let off = Harness::with_env(&[
        ("ENABLE_WEB_SEARCH", "false"),
        ("ENABLE_WEB_FETCH", "false"),
        ("ENABLE_DATETIME", "false"),
    ])
    .await;
    chat_ok(&off, "fake/echo", asks(), &[]).await;
    let types = tool_types(&last_responses(&off));
    for tool in SERVER_TOOLS {
        assert!(!types.contains(&tool.to_string()), "{tool}: {types:?}");
    }
    let search_only =
        Harness::with_env(&[("ENABLE_WEB_FETCH", "false"), ("ENABLE_DATETIME", "false")]).await;
    chat_ok(&search_only, "fake/echo", asks(), &[]).await;
    let types = tool_types(&last_responses(&search_only));
    assert!(
        types.contains(&"openrouter:web_search".to_string()),
        "{types:?}"
    );
    assert!(
        !types.contains(&"openrouter:datetime".to_string()),
        "{types:?}"
    );
    assert_spec_clean(&h);
    assert_spec_clean(&off);
    assert_spec_clean(&search_only);
}

#[tokio::test]
async fn server_tools_are_attached_only_when_the_chat_asks_or_the_default_is_switched_on() {
    const SERVER_TOOLS: [&str; 3] = [
        "openrouter:web_search",
        "openrouter:web_fetch",
        "openrouter:datetime",
    ];
    let server_tools = |body: &Value| -> Vec<String> {
        tool_types(body)
            .into_iter()
            .filter(|t| t.starts_with("openrouter:"))
            .collect()
    };
    let h = Harness::with_env(&[]).await;
    // Available (ENABLE_WEB_SEARCH and friends are on by default) but not attached unasked.
    for unasked in [json!({}), json!({"openrouter_web_search": false})] {
        chat_ok(&h, "fake/echo", unasked.clone(), &[]).await;
        let body = last_responses(&h);
        assert!(server_tools(&body).is_empty(), "{unasked}: {body}");
        assert!(body.get("openrouter_web_search").is_none(), "{body}");
    }
    chat_ok(
        &h,
        "fake/echo",
        json!({"openrouter_web_search": true}),
        &OWUI,
    )
    .await;
    let body = last_responses(&h);
    assert_eq!(server_tools(&body), SERVER_TOOLS, "{body}");
    assert!(
        body.get("openrouter_web_search").is_none(),
        "never sent upstream: {body}"
    );

    // AUTO_DEFAULT_WEB_TOOLS_FILTER attaches them to every chat that does not say no.
    let default_on = Harness::with_env(&[("AUTO_DEFAULT_WEB_TOOLS_FILTER", "true")]).await;
    chat_ok(&default_on, "fake/echo", json!({}), &[]).await;
    assert_eq!(server_tools(&last_responses(&default_on)), SERVER_TOOLS);
    chat_ok(
        &default_on,
        "fake/echo",
        json!({"openrouter_web_search": false}),
        &[],
    )
    .await;
    assert!(server_tools(&last_responses(&default_on)).is_empty());
    assert_spec_clean(&h);
    assert_spec_clean(&default_on);
}

#[tokio::test]
async fn attribution_headers_go_with_every_openrouter_call_and_the_referer_can_be_overridden() {
    const REFERER: &str = "https://chat.example.org/";
    let h = Harness::with_env(&[("HTTP_REFERER_OVERRIDE", REFERER)]).await;
    chat_ok(&h, "fake/responses-unsupported", json!({}), &[]).await;
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
    chat_ok(&default, "fake/echo", json!({}), &[]).await;
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
    assert_spec_clean(&h);
}

// ---------------------------------------------------------------------------------------------
// Request identifiers

#[tokio::test]
async fn client_identifiers_are_never_forwarded_and_nothing_is_sent_by_default() {
    let h = Harness::with_env(&[]).await;
    chat_ok(
        &h,
        "fake/echo",
        json!({"user": "someone-else", "session_id": "steal-their-cache",
               "metadata": {"chat_id": "not-mine", "note": "x"}}),
        &[OWUI[0], OWUI[1], ("X-OpenWebUI-Message-Id", "msg-9")],
    )
    .await;
    let body = last_responses(&h);
    for key in ["user", "session_id", "metadata"] {
        assert!(body.get(key).is_none(), "{key}: {body:#}");
    }
    assert_spec_clean(&h);
}

#[tokio::test]
async fn the_end_user_id_follows_its_source_and_falls_back_to_the_user_guid() {
    let headers = [
        ("X-OpenWebUI-User-Id", "user-42"),
        ("X-OpenWebUI-User-Email", "ada@example.org"),
        ("X-OpenWebUI-User-Name", "Ada%20Lovelace"),
    ];
    for (source, expected) in [
        ("id", "user-42"),
        ("email", "ada@example.org"),
        ("name", "Ada Lovelace"),
    ] {
        let h = Harness::with_env(&[("SEND_END_USER_ID", "true"), ("END_USER_ID_SOURCE", source)])
            .await;
        chat_ok(&h, "fake/echo", json!({"user": "spoofed"}), &headers).await;
        let body = last_responses(&h);
        assert_eq!(body["user"], expected, "{source}: {body:#}");
        assert_eq!(
            body["metadata"],
            json!({"user_id": "user-42"}),
            "{source}: {body:#}"
        );
        // Without the chosen field, the GUID is used.
        chat_ok(&h, "fake/echo", json!({}), &headers[..1]).await;
        assert_eq!(last_responses(&h)["user"], "user-42", "{source}");
        assert_spec_clean(&h);
    }
}

#[tokio::test]
async fn chat_and_message_ids_go_to_metadata_each_when_enabled_and_capped() {
    let long_chat = "c".repeat(700);
    let headers = [
        ("X-OpenWebUI-User-Id", "user-42"),
        ("X-OpenWebUI-Chat-Id", long_chat.as_str()),
        ("X-OpenWebUI-Message-Id", "msg-9"),
    ];
    let messages_only = Harness::with_env(&[("SEND_MESSAGE_ID", "true")]).await;
    chat_ok(&messages_only, "fake/echo", json!({}), &headers).await;
    assert_eq!(
        last_responses(&messages_only)["metadata"],
        json!({"message_id": "msg-9"})
    );

    let both = Harness::with_env(&[("SEND_MESSAGE_ID", "true"), ("SEND_CHAT_ID", "true")]).await;
    // Client metadata, however malformed, is replaced by the identity's.
    let junk: serde_json::Map<String, Value> = (0..20)
        .map(|i| (format!("k{i}"), json!(format!("v{i}"))))
        .chain([
            ("[bad]".to_string(), json!("x")),
            ("nested".to_string(), json!({"a": 1})),
        ])
        .collect();
    chat_ok(&both, "fake/echo", json!({"metadata": junk}), &headers).await;
    let metadata = last_responses(&both)["metadata"].clone();
    let object = metadata.as_object().unwrap();
    assert_eq!(object.len(), 2, "{metadata}");
    assert_eq!(metadata["message_id"], "msg-9");
    let chat = metadata["chat_id"].as_str().unwrap();
    assert_eq!(chat.chars().count(), 512, "OpenRouter's value limit");
    assert!(chat.chars().all(|c| c == 'c'));
    assert_spec_clean(&messages_only);
    assert_spec_clean(&both);
}

#[tokio::test]
async fn the_cache_session_id_is_the_hmac_of_the_chat_id_under_a_key_derived_from_the_webui_secret()
{
    let h = Harness::with_env(&[("WEBUI_SECRET_KEY", "webui-secret-1")]).await;
    chat_ok(
        &h,
        "fake/echo",
        json!({"session_id": "client-chosen"}),
        &OWUI,
    )
    .await;
    assert_eq!(
        last_responses(&h)["session_id"],
        session_hex("webui-secret-1", "chat-7")
    );
    // The raw secret also signs Open WebUI's own tokens: it is never the MAC key.
    assert_ne!(
        last_responses(&h)["session_id"],
        hmac_hex("webui-secret-1", "chat-7")
    );
    // Another chat, another session; no chat, no session.
    chat_ok(
        &h,
        "fake/echo",
        json!({}),
        &[OWUI[0], ("X-OpenWebUI-Chat-Id", "chat-8")],
    )
    .await;
    assert_eq!(
        last_responses(&h)["session_id"],
        session_hex("webui-secret-1", "chat-8")
    );
    chat_ok(&h, "fake/echo", json!({"session_id": "client"}), &OWUI[..1]).await;
    assert!(last_responses(&h).get("session_id").is_none());

    let off = Harness::with_env(&[
        ("WEBUI_SECRET_KEY", "webui-secret-1"),
        ("SEND_CACHE_SESSION_ID", "false"),
    ])
    .await;
    chat_ok(&off, "fake/echo", json!({}), &OWUI).await;
    assert!(last_responses(&off).get("session_id").is_none());
    assert_spec_clean(&h);
    assert_spec_clean(&off);
}

#[tokio::test]
async fn a_verified_user_jwt_is_the_identity_and_a_forged_or_unsigned_one_is_refused() {
    const SECRET: &str = "owui-jwt-secret";
    let h = Harness::with_env(&[
        ("FORWARD_USER_INFO_HEADER_JWT_SECRET", SECRET),
        ("SEND_END_USER_ID", "true"),
        ("END_USER_ID_SOURCE", "email"),
    ])
    .await;
    let now = unix_now();
    let claims = json!({"sub": "user-jwt", "email": "jwt@example.org", "name": "Jay",
                        "role": "user", "iss": "open-webui", "iat": now, "exp": now + 300});
    let good = user_jwt(&claims, SECRET);
    // Plain identity headers are not trusted once tokens are expected.
    let spoof = ("X-OpenWebUI-User-Id", "spoofed-admin");
    chat_ok(
        &h,
        "fake/echo",
        json!({}),
        &[("X-OpenWebUI-User-Jwt", good.as_str()), spoof],
    )
    .await;
    let body = last_responses(&h);
    assert_eq!(body["user"], "jwt@example.org", "{body:#}");
    assert_eq!(body["metadata"]["user_id"], "user-jwt");

    let forged = user_jwt(&claims, "someone-elses-secret");
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let expired = user_jwt(
        &json!({"sub": "user-jwt", "email": "jwt@example.org", "iss": "open-webui",
                "iat": 1, "exp": 2}),
        SECRET,
    );
    let sent = h.posted_bodies("/responses").len();
    for token in [&forged, &unsigned, &expired] {
        let (status, text) = h
            .post_with(
                &Harness::chat_body("fake/echo", "hello", true),
                &[("X-OpenWebUI-User-Jwt", token.as_str()), spoof],
            )
            .await;
        assert_eq!(status, 401, "{token}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["code"], "invalid_user_token", "{v}");
        assert!(
            !text.contains(token.as_str()),
            "the token is not echoed: {text}"
        );
    }
    assert_eq!(h.posted_bodies("/responses").len(), sent, "never served");
    assert!(!crate::harness::logs_text().contains(SECRET));
    assert_spec_clean(&h);
}

// ---------------------------------------------------------------------------------------------
// Housekeeping tasks

const TAGS_PROMPT: &str = "### Task:\nGenerate 1-3 broad tags categorizing the main themes.";

fn task_body(model: &str, stream: bool) -> Value {
    let mut body = Harness::chat_body(model, TAGS_PROMPT, stream);
    body["tools"] = json!([{"type": "function", "function": {"name": "lookup",
                           "parameters": {"type": "object", "properties": {}}}}]);
    body
}

#[tokio::test]
async fn a_task_shaped_non_streamed_body_is_a_task_even_without_the_task_header() {
    let h = Harness::with_env(&[("TASK_MODEL_REASONING_EFFORT", "high")]).await;
    let (status, text) = h.post_with(&task_body("fake/echo", false), &OWUI).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(message_content(&text), format!("echo: {TAGS_PROMPT}"));
    let task = last_responses(&h);
    assert_eq!(task["stream"], false);
    assert_eq!(task["reasoning"]["effort"], "high", "{task:#}");
    for key in ["tools", "tool_choice"] {
        assert!(task.get(key).is_none(), "{key}: {task:#}");
    }

    // The same text streamed is an ordinary chat turn.
    let (status, text) = h.post_with(&task_body("fake/echo", true), &OWUI).await;
    assert_eq!(status, 200, "{text}");
    let chat = last_responses(&h);
    assert_eq!(chat["stream"], true);
    assert_eq!(chat["reasoning"]["effort"], "medium");
    assert!(tool_types(&chat).contains(&"function".to_string()));

    // A non-empty task header makes even a streamed request a task; an empty one does not.
    let (status, text) = h
        .post_with(
            &Harness::chat_body("fake/echo", "Write a title", true),
            &[OWUI[0], OWUI[1], ("X-OpenWebUI-Task", "title_generation")],
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("echo: Write a title"), "{text}");
    assert_eq!(last_responses(&h)["stream"], false);
    let (status, text) = h
        .post_with(
            &Harness::chat_body("fake/echo", "Write a title", false),
            &[OWUI[0], OWUI[1], ("X-OpenWebUI-Task", "")],
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(last_responses(&h)["stream"], true, "an ordinary turn");
    assert_spec_clean(&h);
}

#[tokio::test]
async fn a_failing_task_is_tried_twice_and_never_answers_with_a_chat_error() {
    let h = Harness::start().await;
    let task = |name: &'static str| [OWUI[0], OWUI[1], ("X-OpenWebUI-Task", name)];
    let (status, text) = h
        .post_with(
            &task_body("fake/status-500", false),
            &task("tags_generation"),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let content = message_content(&text);
    assert_eq!(
        content,
        "[Task error] Unable to generate tags generation. Please retry later."
    );
    assert_eq!(h.posted_bodies("/responses").len(), 2, "two attempts");
    assert!(
        !text.contains("\"event\""),
        "no Open WebUI error event: {text}"
    );

    // A refused key will not fix itself: one attempt, then a stub Open WebUI can parse.
    for (name, stub) in [
        ("tags_generation", r#"{"tags":["General"]}"#),
        ("follow_up_generation", r#"{"follow_ups":[]}"#),
        ("title_generation", r#"{"title":"Chat"}"#),
    ] {
        let before = h.posted_bodies("/responses").len();
        let (status, text) = h
            .post_with(&task_body("fake/status-401", false), &task(name))
            .await;
        assert_eq!(status, 200, "{name}: {text}");
        let content = message_content(&text);
        assert_eq!(content, stub, "{name}");
        assert!(serde_json::from_str::<Value>(&content).is_ok());
        // The first refusal opens the caller's auth-failure window: the later tasks get their
        // stub without asking OpenRouter again.
        let expected = if name == "tags_generation" {
            before + 1
        } else {
            before
        };
        assert_eq!(h.posted_bodies("/responses").len(), expected, "{name}");
    }
    assert_spec_clean(&h);
}

#[tokio::test]
async fn without_an_api_key_tasks_answer_stubs_without_calling_openrouter() {
    let h = Harness::with(Options {
        env: vec![("OPENROUTER_API_KEY", String::new())],
        ..Options::default()
    })
    .await;
    let (status, text) = h
        .post_with(
            &task_body("fake/echo", false),
            &[OWUI[0], OWUI[1], ("X-OpenWebUI-Task", "title_generation")],
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(message_content(&text), r#"{"title":"Chat"}"#);
    // Body-shape detection too; a task Open WebUI did not name has no stub to fall back on.
    let (status, text) = h.post_with(&task_body("fake/echo", false), &OWUI).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        message_content(&text).starts_with("[Task error]"),
        "an unnamed task has no stub: {text}"
    );
    assert!(h.fake.requests().is_empty(), "{:?}", h.fake.requests());
}

#[tokio::test]
async fn tasks_obey_the_model_allowlist_and_carry_the_configured_identifiers() {
    let h = Harness::with_env(&[
        ("MODEL_ID", "fake/echo"),
        ("SEND_END_USER_ID", "true"),
        ("SEND_CHAT_ID", "true"),
        ("WEBUI_SECRET_KEY", "webui-secret-1"),
    ])
    .await;
    let (status, text) = h
        .post_with(
            &task_body("fake/echo", false),
            &[OWUI[0], OWUI[1], ("X-OpenWebUI-Task", "tags_generation")],
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(message_content(&text), format!("echo: {TAGS_PROMPT}"));
    let task = last_responses(&h);
    assert_eq!(task["user"], "user-42", "{task:#}");
    assert_eq!(
        task["metadata"],
        json!({"user_id": "user-42", "chat_id": "chat-7"})
    );
    assert_eq!(task["session_id"], session_hex("webui-secret-1", "chat-7"));
    // A task naming a model outside the allowlist is refused as a chat would be.
    let before = post_count(&h);
    let (status, text) = h
        .post_with(
            &task_body("fake/reasoning", false),
            &[OWUI[0], OWUI[1], ("X-OpenWebUI-Task", "tags_generation")],
        )
        .await;
    assert_eq!(status, 404, "{text}");
    assert_eq!(post_count(&h), before, "OpenRouter was not asked");
    assert_spec_clean(&h);
}
