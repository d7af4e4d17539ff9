//! A validated Chat Completions body → the body OpenRouter gets, for `/responses` or for
//! `/chat/completions`. Pure functions, no I/O.
//!
//! Both builders share one preparation stage (`prepare`): numeric strings coerced, blank
//! strings dropped, custom params (`model_fallback`, `openrouter_trace`,
//! `openrouter_provider_*`, `disable_native_websearch`, `zdr`) applied and removed, tools and
//! `tool_choice` normalised to the Responses shape, `response_format` folded into `text`,
//! reasoning / Gemini thinking / Claude verbosity configured, context trimming, ZDR, max output
//! tokens, server tools and identifiers decided, and the conversation cleaned (image policy,
//! orphaned tool calls and outputs dropped). Each endpoint then renders that prepared body in
//! its own shape and passes it through its allowlist, so the two never disagree about a
//! decision. Client-supplied `user`, `session_id` and `metadata` are always discarded and
//! rebuilt from the identity the host vouches for, so a caller cannot spoof another user's
//! attribution or ride another chat's provider-cache session.

mod anthropic;
mod content;
mod params;
mod pruning;
mod reasoning;
mod tools;

use crate::chat_body::{ChatRequest, InvalidBody};
use crate::model::ModelInfo;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The settings request translation reads (defaults: the settings table).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct RequestSettings {
    pub enable_reasoning: bool,
    /// none / minimal / low / medium / high / xhigh.
    pub reasoning_effort: String,
    /// auto / concise / detailed / disabled.
    pub reasoning_summary_mode: String,
    /// Base Gemini 2.5 thinking budget, scaled by effort; 0 turns thinking off.
    pub gemini_thinking_budget: i64,
    pub auto_context_trimming: bool,
    pub use_model_max_output_tokens: bool,
    pub zdr_enforce: bool,
    pub allow_user_zdr_override: bool,
    /// The user valve asking for ZDR routing (honoured only with `ALLOW_USER_ZDR_OVERRIDE`).
    /// Not a host setting: no document carries it, so it is off unless code sets it.
    #[serde(default)]
    pub request_zdr: bool,
    pub enable_web_search: bool,
    pub enable_web_fetch: bool,
    pub enable_datetime: bool,
    /// Attach the server tools to chats that do not say (`openrouter_web_search`) either way.
    pub auto_default_web_tools_filter: bool,
    pub enable_anthropic_prompt_caching: bool,
    /// `5m` or `1h`.
    pub anthropic_prompt_cache_ttl: String,
    pub enable_anthropic_interleaved_thinking: bool,
    pub send_end_user_id: bool,
    /// `id`, `email` or `name`.
    pub end_user_id_source: String,
    pub send_session_id: bool,
    pub send_chat_id: bool,
    pub send_message_id: bool,
    pub send_cache_session_id: bool,
    pub task_model_reasoning_effort: String,
    pub max_input_images_per_request: u32,
    /// Recent turns whose tool outputs are sent unshortened.
    pub tool_output_retention_turns: u32,
    /// `user_then_assistant` or `user_turn_only`.
    pub image_input_selection: String,
}

/// Who is asking, as the host established it (forwarded Open WebUI headers).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    pub user_id: Option<String>,
    pub user_email: Option<String>,
    pub user_name: Option<String>,
    pub chat_id: Option<String>,
    pub message_id: Option<String>,
    pub session_id: Option<String>,
    /// Hex HMAC-SHA256(`WEBUI_SECRET_KEY`, chat id), computed by the host: the guest never
    /// holds the secret.
    pub cache_session_id: Option<String>,
}

/// A request body ready to send, with what else the request needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Built {
    pub body: Value,
    /// Extra headers for the upstream request (e.g. `x-anthropic-beta`).
    pub headers: Vec<(String, String)>,
    /// Status lines to show the user (e.g. "Dropped 2 extra images; limit is 5.").
    pub notices: Vec<String>,
}

/// Fields `/responses` accepts; everything else is dropped.
const RESPONSES_FIELDS: &[&str] = &[
    "model",
    "models",
    "input",
    "instructions",
    "metadata",
    "stream",
    "max_output_tokens",
    "temperature",
    "top_k",
    "top_p",
    "reasoning",
    "include_reasoning",
    "tools",
    "tool_choice",
    "plugins",
    "truncation",
    "preset",
    "text",
    "parallel_tool_calls",
    "user",
    "session_id",
    "transforms",
    "stop_server_tools_when",
    "trace",
    "background",
    "frequency_penalty",
    "image_config",
    "include",
    "max_tool_calls",
    "modalities",
    "presence_penalty",
    "previous_response_id",
    "prompt",
    "prompt_cache_key",
    "safety_identifier",
    "service_tier",
    "store",
    "top_logprobs",
    "provider",
    "route",
    "debug",
    "thinking_config",
];

/// Fields `/chat/completions` accepts.
const CHAT_FIELDS: &[&str] = &[
    "model",
    "models",
    "preset",
    "messages",
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "top_a",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "response_format",
    "structured_outputs",
    "reasoning",
    "include_reasoning",
    "reasoning_effort",
    "verbosity",
    "web_search_options",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "plugins",
    "user",
    "session_id",
    "metadata",
    "trace",
    "provider",
    "route",
    "debug",
    "image_config",
    "modalities",
    "transforms",
    "stop_server_tools_when",
    "thinking_config",
];

/// Chat parameters OpenRouter wants as integers; the reference rounds them.
const CHAT_INTEGER_FIELDS: &[&str] = &["top_k", "seed", "top_logprobs", "max_tokens"];

/// The endpoint-neutral result of the shared stage.
struct Prepared {
    /// Top-level fields in their Responses-flavoured form: `tools`/`tool_choice` flat,
    /// `text.format`/`text.verbosity`, `max_output_tokens`; no `messages`.
    body: Map<String, Value>,
    /// The conversation in chat shape after the image and tool-pairing policies.
    messages: Vec<Value>,
    headers: Vec<(String, String)>,
    notices: Vec<String>,
}

/// Build the `/responses` body.
///
/// # Errors
/// When a field has a type no coercion can fix (e.g. `temperature: "hot"`).
pub fn build_responses_request(
    req: &ChatRequest,
    model: &ModelInfo,
    settings: &RequestSettings,
    identity: &Identity,
    task: bool,
) -> Result<Built, InvalidBody> {
    let Prepared {
        mut body,
        messages,
        headers,
        notices,
    } = prepare(req, model, settings, identity, task)?;
    body.insert(
        "input".into(),
        Value::Array(content::to_responses_input(&messages)),
    );
    if let Some(Value::Object(text)) = body.get_mut("text") {
        text.retain(|k, v| matches!(k.as_str(), "format" | "verbosity") && !v.is_null());
    }
    if let Some(Value::Number(n)) = body.get("top_k")
        && let Some(f) = n.as_f64()
    {
        // The spec types `top_k` as an integer (the reference's float is accepted only while
        // it is whole), so it is rounded here as on `/chat/completions`.
        body.insert("top_k".into(), json!(f.round() as i64));
    }
    // `store` must be false (stateless API); anything else would be rejected.
    if body.get("store").is_some_and(|v| v != &Value::Bool(false)) {
        body.remove("store");
    }
    let mut out = params::allowlist(body, RESPONSES_FIELDS);
    // A task is a one-off prompt: a cache write (billed above the normal input price) would
    // never be read back.
    if !task && anthropic::caching_applies(model, settings) {
        anthropic::apply_top_level_cache_control(&mut out, settings);
    }
    Ok(Built {
        body: Value::Object(out),
        headers,
        notices,
    })
}

/// Build the `/chat/completions` body (the forced, preset and fallback path).
///
/// # Errors
/// As [`build_responses_request`].
pub fn build_chat_completions_request(
    req: &ChatRequest,
    model: &ModelInfo,
    settings: &RequestSettings,
    identity: &Identity,
    task: bool,
) -> Result<Built, InvalidBody> {
    let Prepared {
        mut body,
        mut messages,
        headers,
        notices,
    } = prepare(req, model, settings, identity, task)?;
    if let Some(Value::String(instructions)) = body.remove("instructions")
        && !instructions.trim().is_empty()
    {
        messages.insert(0, json!({"role": "system", "content": instructions}));
    }
    // Replayed reasoning items ride as `reasoning_details` on the assistant message they belong
    // to; other replayed pseudo messages have no chat form.
    let mut chat_messages: Vec<Value> = crate::artifacts::chat_reasoning::fold_into_chat(&messages)
        .iter()
        .map(content::to_chat_message)
        .collect();
    if let Some(max) = body.remove("max_output_tokens") {
        body.insert("max_tokens".into(), max);
    }
    if let Some(Value::Object(text)) = body.remove("text") {
        if let Some(format) = text.get("format").and_then(tools::format_to_chat) {
            body.insert("response_format".into(), format);
        }
        if let Some(verbosity) = text.get("verbosity").filter(|v| v.is_string()) {
            body.insert("verbosity".into(), verbosity.clone());
        }
    }
    let mut chat_tools: Vec<Value> = match body.remove("tools") {
        Some(Value::Array(list)) => list.iter().map(tools::tool_to_chat).collect(),
        _ => Vec::new(),
    };
    if let Some(choice) = body.remove("tool_choice") {
        body.insert("tool_choice".into(), tools::tool_choice_to_chat(choice));
    }
    // As on `/responses`, tasks are not cached.
    if !task && anthropic::caching_applies(model, settings) {
        anthropic::apply_chat_breakpoints(&mut chat_messages, &mut chat_tools, settings);
    }
    if !chat_tools.is_empty() {
        body.insert("tools".into(), Value::Array(chat_tools));
    }
    body.insert("messages".into(), Value::Array(chat_messages));
    if body.get("stream") == Some(&Value::Bool(true)) {
        let mut options = match body.remove("stream_options") {
            Some(Value::Object(o)) => o,
            _ => Map::new(),
        };
        options.insert("include_usage".into(), Value::Bool(true));
        body.insert("stream_options".into(), Value::Object(options));
    } else {
        body.remove("stream_options");
    }
    for key in CHAT_INTEGER_FIELDS {
        if let Some(Value::Number(n)) = body.get(*key)
            && !n.is_i64()
            && !n.is_u64()
            && let Some(f) = n.as_f64()
        {
            body.insert((*key).into(), json!(f.round() as i64));
        }
    }
    Ok(Built {
        body: Value::Object(params::allowlist(body, CHAT_FIELDS)),
        headers,
        notices,
    })
}

/// The shared stage: every decision both endpoints make the same way.
fn prepare(
    req: &ChatRequest,
    model: &ModelInfo,
    settings: &RequestSettings,
    identity: &Identity,
    task: bool,
) -> Result<Prepared, InvalidBody> {
    // Messages can hold megabytes of inline media: borrowed, not copied with the rest.
    let mut body: Map<String, Value> = req
        .body
        .iter()
        .filter(|(key, _)| key.as_str() != "messages")
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let raw_messages = req
        .body
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    params::coerce_scalars(&mut body)?;
    params::check_enums(&body)?;
    params::check_types(&body)?;
    let custom = params::take_custom_params(&mut body);

    tools::normalise(&mut body)?;
    tools::normalise_text_format(&mut body);
    reasoning::fold_reasoning_effort(&mut body);
    params::resolve_max_output_tokens(&mut body, model, settings);

    params::apply_model_fallback(&mut body, custom.model_fallback.as_ref());
    params::apply_trace(&mut body, custom.trace);
    if task {
        // Housekeeping tasks (titles, tags, follow-ups) never call tools and get no provider
        // routing injected.
        for key in ["tools", "tool_choice", "parallel_tool_calls"] {
            body.remove(key);
        }
    } else {
        params::apply_provider_lists(&mut body, &custom.provider_lists);
        let wanted = custom
            .web_tools
            .unwrap_or(settings.auto_default_web_tools_filter);
        if wanted {
            tools::add_server_tools(&mut body, model, settings);
        }
    }
    if custom.disable_native_websearch {
        tools::strip_native_web_search(&mut body);
    }
    tools::drop_dangling_tool_choice(&mut body);

    reasoning::apply(&mut body, model, settings, task);
    params::apply_context_trimming(&mut body, settings);
    params::apply_zdr(&mut body, settings, custom.zdr);
    params::apply_identifiers(&mut body, settings, identity);

    // A `base:preset/slug` variant is sent as `base@preset/slug`.
    body.insert(
        "model".into(),
        Value::String(crate::model::api_model_id(&model.id)),
    );
    body.insert("stream".into(), Value::Bool(!task));

    let images = content::ImagePolicy::from_settings(settings, model);
    let mut conversation = content::prepare_messages(raw_messages, &images);
    if !conversation.has_turns() {
        return Err(InvalidBody(
            "the conversation is empty: `messages` needs a user, assistant or tool message with \
             content (system and developer instructions alone are not answered)"
                .into(),
        ));
    }
    pruning::prune_tool_outputs(
        &mut conversation.messages,
        settings.tool_output_retention_turns,
        pruning::budget_chars(model),
    );

    let mut headers = Vec::new();
    if settings.enable_anthropic_interleaved_thinking && is_anthropic(&model.id) {
        headers.push((
            "x-anthropic-beta".to_string(),
            anthropic::INTERLEAVED_THINKING_BETA.to_string(),
        ));
    }
    Ok(Prepared {
        body,
        messages: conversation.messages,
        headers,
        notices: conversation.notices,
    })
}

/// The model id lowercased, without a leading `~` (router aliases like `~anthropic/claude-…`)
/// or a `:variant` / `@preset` suffix (a variant is judged by its base).
fn bare_id(id: &str) -> String {
    let lower = crate::model::base_id(id.trim()).to_ascii_lowercase();
    lower.strip_prefix('~').unwrap_or(&lower).to_string()
}

/// `anthropic/…`, `anthropic.…` and their `~` router aliases.
fn is_anthropic(id: &str) -> bool {
    let id = bare_id(id);
    id.starts_with("anthropic/") || id.starts_with("anthropic.")
}

/// Claude Opus/Sonnet, which accept `verbosity: "max"`.
fn is_claude_opus_or_sonnet(id: &str) -> bool {
    let id = bare_id(id);
    let Some(rest) = id
        .strip_prefix("anthropic/")
        .or_else(|| id.strip_prefix("anthropic."))
    else {
        return false;
    };
    rest.starts_with("claude-opus-") || rest.starts_with("claude-sonnet-")
}

/// Gemini 2.5 (`~?google[./]gemini-2.5` followed by `-` or the end), which takes
/// `thinking_config` instead of `reasoning`.
fn is_gemini_25(id: &str) -> bool {
    let id = bare_id(id);
    let Some(rest) = id
        .strip_prefix("google/gemini-2.5")
        .or_else(|| id.strip_prefix("google.gemini-2.5"))
    else {
        return false;
    };
    rest.is_empty() || rest.starts_with('-')
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::chat_body::{ChatRequest, parse_chat_body};
    use crate::model::{Capabilities, ModelInfo};
    use serde_json::Value;

    pub fn model(id: &str) -> ModelInfo {
        ModelInfo {
            id: id.into(),
            name: id.into(),
            created: None,
            context_length: Some(128_000),
            max_completion_tokens: Some(4096),
            capabilities: Capabilities {
                vision: true,
                file_input: true,
                tools: true,
                ..Capabilities::default()
            },
            pricing: Value::Null,
            supported_parameters: vec![],
        }
    }

    pub fn reasoning_model(id: &str) -> ModelInfo {
        let mut m = model(id);
        m.capabilities.reasoning = true;
        m.capabilities.reasoning_summary = true;
        m
    }

    pub fn request(body: Value) -> ChatRequest {
        parse_chat_body(body.to_string().as_bytes()).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{model, reasoning_model, request};
    use super::*;

    fn responses(body: Value, m: &ModelInfo, s: &RequestSettings) -> Value {
        build_responses_request(&request(body), m, s, &Identity::default(), false)
            .unwrap()
            .body
    }

    fn chat(body: Value, m: &ModelInfo, s: &RequestSettings) -> Value {
        build_chat_completions_request(&request(body), m, s, &Identity::default(), false)
            .unwrap()
            .body
    }

    fn hello() -> Value {
        json!([{"role": "user", "content": "hello"}])
    }

    #[test]
    fn settings_take_the_reference_defaults_and_ignore_unknown_keys() {
        let s: RequestSettings = crate::settings_document::from_document(
            r#"{"REASONING_EFFORT":"high","BASE_URL":"x"}"#,
        )
        .unwrap();
        assert_eq!(s.reasoning_effort, "high");
        assert!(s.enable_reasoning && s.auto_context_trimming && s.send_cache_session_id);
        assert!(!s.use_model_max_output_tokens && !s.send_end_user_id);
        assert_eq!(s.gemini_thinking_budget, 1024);
        assert_eq!(s.task_model_reasoning_effort, "low");
        assert_eq!(s.max_input_images_per_request, 5);
        assert_eq!(s.anthropic_prompt_cache_ttl, "5m");
    }

    #[test]
    fn model_families_are_recognised_with_router_aliases_and_dotted_ids() {
        assert!(is_anthropic("anthropic/claude-3.5-haiku"));
        assert!(is_anthropic("~anthropic/claude-sonnet-4.5"));
        assert!(is_anthropic("anthropic.claude-opus-4"));
        assert!(!is_anthropic("openai/anthropic"));
        assert!(is_claude_opus_or_sonnet("anthropic/claude-opus-4.1"));
        assert!(is_claude_opus_or_sonnet("~anthropic/claude-sonnet-4.5"));
        assert!(!is_claude_opus_or_sonnet("anthropic/claude-3.5-haiku"));
        assert!(is_gemini_25("google/gemini-2.5-pro"));
        assert!(is_gemini_25("~google/gemini-2.5"));
        assert!(is_gemini_25("Google.Gemini-2.5-flash"));
        assert!(!is_gemini_25("google/gemini-2.0-flash"));
        assert!(!is_gemini_25("google/gemini-2.55"));
        assert!(is_gemini_25("google/gemini-2.5:nitro"));
        assert!(is_anthropic("anthropic/claude-opus-4@preset/fast"));
    }

    #[test]
    fn the_responses_body_keeps_only_allowlisted_fields_and_no_nulls() {
        let body = responses(
            json!({"model": "x", "messages": hello(), "n": 2, "suffix": "s", "files": [],
                   "features": {"web_search": true}, "temperature": null, "top_p": 0.5,
                   "chat_id": "c", "logit_bias": {"1": 2}, "instructions": "be nice"}),
            &model("openai/gpt-4o"),
            &RequestSettings::default(),
        );
        let keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for dropped in [
            "n",
            "suffix",
            "files",
            "features",
            "temperature",
            "chat_id",
            "logit_bias",
            "messages",
        ] {
            assert!(
                !keys.contains(&dropped),
                "{dropped} should be gone: {keys:?}"
            );
        }
        assert_eq!(body["top_p"], json!(0.5));
        assert_eq!(body["instructions"], "be nice");
        assert_eq!(body["model"], "openai/gpt-4o");
        assert_eq!(body["stream"], json!(true));
    }

    #[test]
    fn the_catalog_id_replaces_the_requested_one() {
        let body = responses(
            json!({"model": "openai.gpt-4o", "messages": hello()}),
            &model("openai/gpt-4o-2024-08-06"),
            &RequestSettings::default(),
        );
        assert_eq!(body["model"], "openai/gpt-4o-2024-08-06");
    }

    #[test]
    fn a_preset_variant_is_sent_with_its_at_suffix() {
        let body = responses(
            json!({"model": "x", "messages": hello()}),
            &model("openai/gpt-4o:preset/fast"),
            &RequestSettings::default(),
        );
        assert_eq!(body["model"], "openai/gpt-4o@preset/fast");
    }

    #[test]
    fn top_k_is_sent_as_a_whole_number_on_both_endpoints() {
        let s = RequestSettings::default();
        let m = model("openai/gpt-4o");
        let r = responses(
            json!({"model": "x", "messages": hello(), "top_k": "40.4"}),
            &m,
            &s,
        );
        assert_eq!(r["top_k"], json!(40));
        let c = chat(
            json!({"model": "x", "messages": hello(), "top_k": 39.6, "seed": "7"}),
            &m,
            &s,
        );
        assert_eq!(c["top_k"], json!(40));
        assert_eq!(c["seed"], json!(7));
    }

    #[test]
    fn store_other_than_false_is_not_forwarded() {
        let s = RequestSettings::default();
        let m = model("openai/gpt-4o");
        let r = responses(
            json!({"model": "x", "messages": hello(), "store": true}),
            &m,
            &s,
        );
        assert!(r.get("store").is_none());
        let r = responses(
            json!({"model": "x", "messages": hello(), "store": false}),
            &m,
            &s,
        );
        assert_eq!(r["store"], json!(false));
    }

    #[test]
    fn task_requests_do_not_stream_and_carry_no_tools() {
        let req = request(
            json!({"model": "x", "messages": hello(), "tool_choice": "auto",
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}),
        );
        let m = reasoning_model("openai/gpt-5");
        let s = RequestSettings::default();
        let built = build_responses_request(&req, &m, &s, &Identity::default(), true).unwrap();
        assert_eq!(built.body["stream"], json!(false));
        assert!(built.body.get("tools").is_none());
        assert!(built.body.get("tool_choice").is_none());
        assert_eq!(built.body["reasoning"]["effort"], "low");
        let built =
            build_chat_completions_request(&req, &m, &s, &Identity::default(), true).unwrap();
        assert_eq!(built.body["stream"], json!(false));
        assert!(built.body.get("stream_options").is_none());
        assert!(built.body.get("tools").is_none());
    }

    #[test]
    fn the_chat_body_streams_with_usage_and_keeps_messages_in_chat_shape() {
        let body = chat(
            json!({"model": "x", "instructions": "sys!", "max_completion_tokens": 99,
                   "messages": [{"role": "user", "content": "hi", "name": "bob"}],
                   "response_format": {"type": "json_object"}}),
            &model("openai/gpt-4o"),
            &RequestSettings {
                use_model_max_output_tokens: true,
                ..RequestSettings::default()
            },
        );
        assert_eq!(body["stream"], json!(true));
        assert_eq!(body["stream_options"], json!({"include_usage": true}));
        assert_eq!(
            body["messages"][0],
            json!({"role": "system", "content": "sys!"})
        );
        assert_eq!(
            body["messages"][1],
            json!({"role": "user", "content": "hi", "name": "bob"})
        );
        assert_eq!(body["max_tokens"], json!(99));
        assert!(body.get("max_completion_tokens").is_none());
        assert_eq!(body["response_format"], json!({"type": "json_object"}));
        assert!(body.get("instructions").is_none() && body.get("input").is_none());
        assert!(body.get("truncation").is_none(), "not a chat field");
        assert!(body.get("usage").is_none(), "not in the chat schema");
    }

    #[test]
    fn anthropic_models_get_the_interleaved_thinking_header() {
        let req = request(json!({"model": "x", "messages": hello()}));
        let s = RequestSettings::default();
        let built = build_responses_request(
            &req,
            &reasoning_model("anthropic/claude-sonnet-4.5"),
            &s,
            &Identity::default(),
            false,
        )
        .unwrap();
        assert_eq!(
            built.headers,
            vec![(
                "x-anthropic-beta".to_string(),
                "interleaved-thinking-2025-05-14".to_string()
            )]
        );
        let off = RequestSettings {
            enable_anthropic_interleaved_thinking: false,
            ..RequestSettings::default()
        };
        let built = build_chat_completions_request(
            &req,
            &reasoning_model("anthropic/claude-sonnet-4.5"),
            &off,
            &Identity::default(),
            false,
        )
        .unwrap();
        assert!(built.headers.is_empty());
        let built = build_responses_request(
            &req,
            &model("openai/gpt-4o"),
            &s,
            &Identity::default(),
            false,
        )
        .unwrap();
        assert!(built.headers.is_empty());
    }

    #[test]
    fn a_field_no_coercion_can_fix_is_refused_naming_it() {
        let req = request(json!({"model": "x", "messages": hello(), "temperature": "hot"}));
        let err = build_responses_request(
            &req,
            &model("openai/gpt-4o"),
            &RequestSettings::default(),
            &Identity::default(),
            false,
        )
        .unwrap_err();
        assert!(err.0.contains("`temperature`"), "{err}");
    }

    #[test]
    fn messages_become_input_items_in_order() {
        let s = RequestSettings {
            use_model_max_output_tokens: true,
            ..RequestSettings::default()
        };
        let body = responses(
            json!({"model": "fake/echo", "max_tokens": 50, "temperature": null, "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": "dev"},
                {"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "there"}]},
                {"role": "assistant", "content": "hi!"},
                {"role": "user", "content": "again"}]}),
            &model("fake/echo"),
            &s,
        );
        assert_eq!(body["stream"], json!(true));
        assert_eq!(body["max_output_tokens"], json!(50));
        assert!(body.get("temperature").is_none(), "nulls are dropped");
        let input = body["input"].as_array().unwrap();
        assert_eq!(input.len(), 5);
        assert_eq!(input[0]["role"], "system");
        assert_eq!(input[1]["role"], "developer");
        // The parts of a message stay separate parts, in order.
        assert_eq!(input[2]["content"][0]["text"], "hello");
        assert_eq!(input[2]["content"][1]["text"], "there");
        assert_eq!(input[3]["content"][0]["type"], "output_text");
        assert_eq!(input[4]["content"][0]["text"], "again");
    }
}
