//! Request translation against OpenRouter's spec, with arbitrary chat requests.
//!
//! Proptest builds OpenAI chat requests of every shape the pipe accepts: messages of every role,
//! content parts of every kind (text, images, audio, files, video, refusals, unknown parts),
//! assistant tool calls and tool results, tools, `tool_choice`, `response_format`, sampling
//! parameters as numbers, numeric strings and junk, the pipe's custom parameters, odd Unicode,
//! and empty or huge values. Each request goes through the component's own parsing and both
//! translations (`/responses` and `/chat/completions`, chats and tasks) under varied settings
//! and models. A request may be refused (the caller gets a 400 `invalid_body`), but what is
//! built must never panic and must validate against the request schemas of the spec kept in
//! `tests/spec/` — the same check the fake applies to everything the host sends.
//!
//! The default case count keeps this under a few seconds; `PROPTEST_CASES=100000` runs longer.

use fake_openrouter::spec::{validate_chat_request, validate_responses_request};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use responses_pipe_guest::chat_body::parse_chat_body;
use responses_pipe_guest::model::{Capabilities, ModelInfo};
use responses_pipe_guest::request::{
    Identity, RequestSettings, build_chat_completions_request, build_responses_request,
};
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------------
// Values

/// Text as clients send it and as they should not: plain, blank, every Unicode scalar, the
/// awkward ones (NUL, BOM, bidi overrides, lone combining marks, astral planes), JSON- and
/// template-looking text, and occasionally a very long value.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 .,!?]{0,24}",
        2 => any::<String>(),
        1 => Just(String::new()),
        1 => Just(" \t\n\r ".to_string()),
        1 => prop::sample::select(vec![
            "\u{0}",
            "\u{feff}hello",
            "\u{202e}evil\u{202c}",
            "\u{301}",
            "𝕏🦀👩‍👩‍👧",
            "\u{fffd}\u{fffe}",
            "{\"a\":1}",
            "{error_id}{{#if x}}",
            "[01ARZ3NDEKTSV4RRFFQ6]: #",
            "<script>alert(1)</script>",
            "data:image/png;base64,",
            "https://example.com/a.png",
        ])
        .prop_map(str::to_string),
        1 => (1usize..4).prop_map(|n| "é".repeat(n * 40_000)),
    ]
    .boxed()
}

/// A name for a tool or a function: often well-formed, sometimes not.
fn name() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-z_][a-z0-9_]{0,15}",
        1 => text(),
    ]
    .boxed()
}

/// Any JSON value, small.
fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// A number as a client might send one: in range, out of range, a numeric string, junk.
fn number(lo: f64, hi: f64) -> BoxedStrategy<Value> {
    prop_oneof![
        4 => (lo..=hi).prop_map(|f| json!(f)),
        2 => (lo as i64..=hi as i64).prop_map(|n| json!(n)),
        1 => any::<f64>().prop_map(|f| json!(f)),
        1 => (lo..=hi).prop_map(|f| json!(f.to_string())),
        1 => Just(Value::Null),
        1 => json_value(),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Messages

fn image_part() -> BoxedStrategy<Value> {
    let url = prop_oneof![
        Just("https://example.com/cat.png".to_string()),
        Just("data:image/png;base64,iVBORw0KGgo=".to_string()),
        text(),
    ];
    let detail = prop::option::of(prop::sample::select(vec!["auto", "low", "high", "weird"]));
    (url, detail, any::<bool>())
        .prop_map(|(url, detail, nested)| {
            if nested {
                let mut inner = json!({"url": url});
                if let Some(d) = detail {
                    inner["detail"] = json!(d);
                }
                json!({"type": "image_url", "image_url": inner})
            } else {
                json!({"type": "input_image", "image_url": url})
            }
        })
        .boxed()
}

fn content_part() -> BoxedStrategy<Value> {
    prop_oneof![
        6 => text().prop_map(|t| json!({"type": "text", "text": t})),
        1 => text().prop_map(|t| json!({"type": "input_text", "text": t})),
        1 => text().prop_map(Value::String),
        2 => image_part(),
        1 => (text(), prop::sample::select(vec!["wav", "mp3", "flac", ""]))
            .prop_map(|(d, f)| json!({"type": "input_audio", "input_audio": {"data": d, "format": f}})),
        1 => (text(), text(), prop::option::of(text())).prop_map(|(data, filename, id)| {
            let mut file = json!({"file_data": data, "filename": filename});
            if let Some(id) = id {
                file["file_id"] = json!(id);
            }
            json!({"type": "file", "file": file})
        }),
        1 => text().prop_map(|u| json!({"type": "video_url", "video_url": {"url": u}})),
        1 => text().prop_map(|t| json!({"type": "refusal", "refusal": t})),
        1 => (name(), json_value()).prop_map(|(kind, v)| json!({"type": kind, "value": v})),
    ]
    .boxed()
}

fn content() -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        4 => text().prop_map(|t| Some(Value::String(t))),
        3 => prop::collection::vec(content_part(), 0..4).prop_map(|p| Some(Value::Array(p))),
        1 => Just(Some(Value::Null)),
        1 => Just(None),
    ]
    .boxed()
}

fn call_id() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::sample::select(vec!["call_1", "call_2", "call_3"]).prop_map(str::to_string),
        1 => text(),
    ]
    .boxed()
}

fn tool_call() -> BoxedStrategy<Value> {
    let arguments = prop_oneof![
        Just(json!("{\"city\":\"Paris\"}")),
        Just(json!("")),
        text().prop_map(Value::String),
        json_value(),
    ];
    (call_id(), name(), arguments)
        .prop_map(|(id, name, arguments)| {
            json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
        })
        .boxed()
}

fn reasoning_details() -> BoxedStrategy<Value> {
    prop_oneof![
        text().prop_map(|t| json!([{"type": "reasoning.text", "text": t, "signature": "sig"}])),
        text().prop_map(|t| json!([{"type": "reasoning.encrypted", "data": t}])),
        text().prop_map(|t| json!([{"type": "reasoning.summary", "summary": t}])),
        json_value().prop_map(|v| json!([v])),
    ]
    .boxed()
}

fn message() -> BoxedStrategy<Value> {
    let role = prop::sample::select(vec!["system", "developer", "user", "assistant", "tool"]);
    (
        role,
        content(),
        prop::collection::vec(tool_call(), 0..3),
        call_id(),
        prop::option::of(reasoning_details()),
        prop::option::of(text()),
    )
        .prop_map(|(role, content, calls, tool_call_id, details, name)| {
            let mut m = Map::new();
            m.insert("role".into(), json!(role));
            if let Some(c) = content {
                m.insert("content".into(), c);
            }
            match role {
                "assistant" => {
                    if !calls.is_empty() {
                        m.insert("tool_calls".into(), Value::Array(calls));
                    }
                    if let Some(d) = details {
                        m.insert("reasoning_details".into(), d);
                    }
                }
                "tool" => {
                    m.insert("tool_call_id".into(), json!(tool_call_id));
                }
                _ => {
                    if let Some(n) = name {
                        m.insert("name".into(), json!(n));
                    }
                }
            }
            Value::Object(m)
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// Top-level fields

fn tool() -> BoxedStrategy<Value> {
    let parameters = prop_oneof![
        Just(
            json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
        ),
        Just(json!({})),
        json_value(),
    ];
    prop_oneof![
        4 => (name(), prop::option::of(text()), parameters, prop::option::of(any::<bool>()))
            .prop_map(|(name, description, parameters, strict)| {
                let mut f = json!({"name": name, "parameters": parameters});
                if let Some(d) = description {
                    f["description"] = json!(d);
                }
                if let Some(s) = strict {
                    f["strict"] = json!(s);
                }
                json!({"type": "function", "function": f})
            }),
        1 => name().prop_map(|n| json!({"type": "function", "name": n})),
        1 => Just(json!({"type": "web_search"})),
        1 => json_value(),
    ]
    .boxed()
}

fn tool_choice() -> BoxedStrategy<Value> {
    prop_oneof![
        prop::sample::select(vec!["auto", "none", "required", "AUTO", "sometimes"])
            .prop_map(|s| json!(s)),
        name().prop_map(|n| json!({"type": "function", "function": {"name": n}})),
        name().prop_map(|n| json!({"type": "function", "name": n})),
        json_value(),
    ]
    .boxed()
}

fn response_format() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(json!({"type": "text"})),
        Just(json!({"type": "json_object"})),
        (name(), json_value(), prop::option::of(any::<bool>())).prop_map(|(n, schema, strict)| {
            let mut s = json!({"name": n, "schema": schema});
            if let Some(strict) = strict {
                s["strict"] = json!(strict);
            }
            json!({"type": "json_schema", "json_schema": s})
        }),
        json_value(),
    ]
    .boxed()
}

/// Optional top-level fields, each present or absent.
fn params() -> BoxedStrategy<Map<String, Value>> {
    let numeric = (
        prop::option::of(number(0.0, 2.0)),
        prop::option::of(number(0.0, 1.0)),
        prop::option::of(number(0.0, 100.0)),
        prop::option::of(number(1.0, 100_000.0)),
        prop::option::of(number(1.0, 100_000.0)),
        prop::option::of(number(-2.0, 2.0)),
        prop::option::of(number(-2.0, 2.0)),
        prop::option::of(number(0.0, 1e9)),
    )
        .prop_map(
            |(temp, top_p, top_k, max_tokens, max_completion, fp, pp, seed)| {
                let mut m = Map::new();
                for (key, value) in [
                    ("temperature", temp),
                    ("top_p", top_p),
                    ("top_k", top_k),
                    ("max_tokens", max_tokens),
                    ("max_completion_tokens", max_completion),
                    ("frequency_penalty", fp),
                    ("presence_penalty", pp),
                    ("seed", seed),
                ] {
                    if let Some(v) = value {
                        m.insert(key.into(), v);
                    }
                }
                m
            },
        );
    let shaped = (
        prop::option::of(prop::collection::vec(tool(), 0..3)),
        prop::option::of(tool_choice()),
        prop::option::of(response_format()),
        prop::option::of(prop_oneof![
            prop::sample::select(vec!["none", "minimal", "low", "medium", "high", "xhigh"])
                .prop_map(|s| json!(s)),
            json_value(),
        ]),
        prop::option::of(prop_oneof![
            text().prop_map(Value::String),
            prop::collection::vec(text(), 0..3).prop_map(|v| json!(v)),
        ]),
        prop::option::of(any::<bool>()),
        prop::option::of(prop::sample::select(vec![
            "low", "medium", "high", "max", "loud",
        ])),
    )
        .prop_map(
            |(tools, choice, format, effort, stop, parallel, verbosity)| {
                let mut m = Map::new();
                if let Some(t) = tools {
                    m.insert("tools".into(), Value::Array(t));
                }
                if let Some(c) = choice {
                    m.insert("tool_choice".into(), c);
                }
                if let Some(f) = format {
                    m.insert("response_format".into(), f);
                }
                if let Some(e) = effort {
                    m.insert("reasoning_effort".into(), e);
                }
                if let Some(s) = stop {
                    m.insert("stop".into(), s);
                }
                if let Some(p) = parallel {
                    m.insert("parallel_tool_calls".into(), json!(p));
                }
                if let Some(v) = verbosity {
                    m.insert("verbosity".into(), json!(v));
                }
                m
            },
        );
    // The pipe's own custom parameters and the fields it reads or rewrites, with any value.
    // Structured OpenRouter fields the pipe forwards as sent (`provider`, `plugins`,
    // `reasoning`, `text`, `logit_bias`, `web_search_options`) are left out: their inner shape
    // is OpenRouter's to judge.
    let custom = prop::collection::btree_map(
        prop::sample::select(vec![
            "model_fallback",
            "openrouter_trace",
            "openrouter_provider_order",
            "openrouter_provider_only",
            "openrouter_provider_ignore",
            "disable_native_websearch",
            "zdr",
            "user",
            "session_id",
            "metadata",
            "instructions",
            "models",
            "preset",
            "store",
            "stream_options",
            "functions",
            "function_call",
            "n",
            "features",
        ]),
        json_value(),
        0..4,
    );
    (numeric, shaped, custom)
        .prop_map(|(mut a, b, c)| {
            a.extend(b);
            for (k, v) in c {
                a.insert(k.into(), v);
            }
            a
        })
        .boxed()
}

fn chat_body() -> BoxedStrategy<Value> {
    (
        prop::collection::vec(message(), 0..7),
        params(),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(messages, params, stream)| {
            let mut body = params;
            body.insert("model".into(), json!("openai/gpt-4o"));
            body.insert("messages".into(), Value::Array(messages));
            if let Some(s) = stream {
                body.insert("stream".into(), json!(s));
            }
            Value::Object(body)
        })
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// Models, settings, identity

fn model() -> BoxedStrategy<ModelInfo> {
    let id = prop::sample::select(vec![
        "openai/gpt-4o",
        "openai/gpt-5.1",
        "anthropic/claude-sonnet-4.5",
        "anthropic/claude-3.5-haiku",
        "google/gemini-2.5-pro",
        "google/gemini-3-pro-preview",
        "x-ai/grok-4",
        "openai/gpt-4o:online",
        "openai/gpt-4o:preset/fast",
    ]);
    (
        id,
        prop::collection::vec(any::<bool>(), 9),
        prop::option::of(1u64..2_000_000),
        prop::option::of(1u64..200_000),
    )
        .prop_map(|(id, caps, context, max_out)| ModelInfo {
            id: id.into(),
            name: id.into(),
            created: None,
            context_length: context,
            max_completion_tokens: max_out,
            capabilities: Capabilities {
                vision: caps[0],
                file_input: caps[1],
                audio_input: caps[2],
                video_input: caps[3],
                reasoning: caps[4],
                reasoning_summary: caps[5],
                tools: caps[6],
                web_search: caps[7],
                image_output: caps[8],
            },
            pricing: Value::Null,
            supported_parameters: vec![],
        })
        .boxed()
}

fn settings() -> BoxedStrategy<RequestSettings> {
    (
        prop::collection::vec(any::<bool>(), 12),
        prop::sample::select(vec!["none", "minimal", "low", "medium", "high", "xhigh"]),
        prop::sample::select(vec!["auto", "concise", "detailed", "disabled"]),
        prop::sample::select(vec!["id", "email", "name"]),
        0u32..6,
        0u32..4,
    )
        .prop_filter_map(
            "settings document",
            |(flags, effort, summary, source, images, turns)| {
                let doc = json!({
                    "ENABLE_REASONING": flags[0],
                    "AUTO_CONTEXT_TRIMMING": flags[1],
                    "USE_MODEL_MAX_OUTPUT_TOKENS": flags[2],
                    "ZDR_ENFORCE": flags[3],
                    "ENABLE_WEB_SEARCH": flags[4],
                    "ENABLE_WEB_FETCH": flags[5],
                    "ENABLE_DATETIME": flags[6],
                    "ENABLE_ANTHROPIC_PROMPT_CACHING": flags[7],
                    "ENABLE_ANTHROPIC_INTERLEAVED_THINKING": flags[8],
                    "SEND_END_USER_ID": flags[9],
                    "SEND_SESSION_ID": flags[10],
                    "ALLOW_USER_ZDR_OVERRIDE": flags[11],
                    "REASONING_EFFORT": effort,
                    "REASONING_SUMMARY_MODE": summary,
                    "END_USER_ID_SOURCE": source,
                    "MAX_INPUT_IMAGES_PER_REQUEST": images,
                    "TOOL_OUTPUT_RETENTION_TURNS": turns,
                });
                responses_pipe_guest::settings_document::from_document::<RequestSettings>(
                    &doc.to_string(),
                )
                .ok()
            },
        )
        .boxed()
}

fn identity() -> BoxedStrategy<Identity> {
    (
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of("[0-9a-f]{64}"),
    )
        .prop_map(
            |(user_id, user_email, user_name, chat_id, message_id, cache)| Identity {
                user_id,
                user_email,
                user_name,
                chat_id: chat_id.clone(),
                message_id,
                session_id: chat_id,
                cache_session_id: cache,
            },
        )
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// The property

fn spec_ok(
    what: &str,
    body: &Value,
    verdict: Result<(), Vec<String>>,
) -> Result<(), TestCaseError> {
    match verdict {
        Ok(()) => Ok(()),
        Err(violations) => {
            let mut shown = body.to_string();
            if shown.len() > 4000 {
                shown = shown.chars().take(4000).collect();
            }
            Err(TestCaseError::fail(format!(
                "{what} body breaks the spec: {violations:?}\nbody: {shown}"
            )))
        }
    }
}

/// Parse the body as the component does, then build every upstream body it could send.
fn check_translation(
    body: &Value,
    model: &ModelInfo,
    settings: &RequestSettings,
    identity: &Identity,
) -> Result<(), TestCaseError> {
    let Ok(request) = parse_chat_body(body.to_string().as_bytes()) else {
        return Ok(());
    };
    for task in [false, true] {
        if let Ok(built) = build_responses_request(&request, model, settings, identity, task) {
            spec_ok(
                "/responses",
                &built.body,
                validate_responses_request(&built.body),
            )?;
        }
        if let Ok(built) = build_chat_completions_request(&request, model, settings, identity, task)
        {
            spec_ok(
                "/chat/completions",
                &built.body,
                validate_chat_request(&built.body),
            )?;
        }
    }
    Ok(())
}

proptest! {
    // Failures are kept as named regression tests below, not in a side file.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_translated_chat_request_validates_against_the_spec(
        body in chat_body(),
        model in model(),
        settings in settings(),
        identity in identity(),
    ) {
        check_translation(&body, &model, &settings, &identity)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Regressions: the smallest requests the property found, each once a body that broke the spec
// (or a panic). Each must now be refused with a clear message or translate to a valid body.

/// What a request must come to.
enum Expect {
    /// Refused as `invalid_body`, the message containing this.
    Refused(&'static str),
    /// Translated, and every body valid.
    Valid,
}

fn plain_model() -> ModelInfo {
    ModelInfo {
        id: "openai/gpt-4o".into(),
        name: "GPT-4o".into(),
        created: None,
        context_length: Some(128_000),
        max_completion_tokens: Some(4096),
        capabilities: Capabilities {
            vision: true,
            file_input: true,
            audio_input: true,
            tools: true,
            ..Capabilities::default()
        },
        pricing: Value::Null,
        supported_parameters: vec![],
    }
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

fn call(id: &str) -> Value {
    json!({"role": "assistant", "content": "", "tool_calls": [
        {"id": id, "type": "function", "function": {"name": "a", "arguments": "{}"}}]})
}

#[test]
fn requests_the_property_found_are_refused_or_translate_to_valid_bodies() {
    let long = "é".repeat(65);
    let cases: Vec<(&str, Value, Expect)> = vec![
        (
            "a system message without content is the whole conversation",
            json!({"model": "m", "messages": [{"role": "system", "content": null}]}),
            Expect::Refused("the conversation is empty"),
        ),
        (
            "only instructions",
            json!({"model": "m", "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "dev"}]}]}),
            Expect::Refused("the conversation is empty"),
        ),
        (
            "an empty user message is all there is",
            json!({"model": "m", "messages": [{"role": "user", "content": "  "}]}),
            Expect::Refused("the conversation is empty"),
        ),
        (
            "an empty system message before a question",
            json!({"model": "m", "messages": [{"role": "system", "content": null}, user("hi")]}),
            Expect::Valid,
        ),
        (
            "a refusal part in a user message",
            json!({"model": "m", "messages": [
                {"role": "user", "content": [{"type": "refusal", "refusal": ""}]}]}),
            Expect::Refused("`messages[0].content[0].type` `refusal`"),
        ),
        (
            "an unknown verbosity",
            json!({"model": "m", "messages": [user("A")], "verbosity": "loud"}),
            Expect::Refused("`verbosity` must be one of"),
        ),
        (
            "an unknown reasoning effort",
            json!({"model": "m", "messages": [user("A")], "reasoning_effort": 3}),
            Expect::Refused("`reasoning_effort` must be one of"),
        ),
        (
            "an empty tool_choice object",
            json!({"model": "m", "messages": [user("0")], "tool_choice": {},
                   "tools": [{"type": "function", "function": {"name": "a"}}]}),
            Expect::Valid,
        ),
        (
            "instructions that are not a string",
            json!({"model": "m", "messages": [user("?")], "instructions": []}),
            Expect::Refused("`instructions` must be a string"),
        ),
        (
            "plugins that are not an array",
            json!({"model": "m", "messages": [user("?")], "plugins": {"id": "web"}}),
            Expect::Refused("`plugins` must be an array"),
        ),
        (
            "a refusal part in an assistant message",
            json!({"model": "m", "messages": [
                {"role": "assistant", "content": [
                    {"type": "refusal", "refusal": ""}, {"type": "input_text", "text": "\u{0}"}]},
                user("and?")]}),
            Expect::Valid,
        ),
        (
            "a tool result given as content parts",
            json!({"model": "m", "messages": [user("weather?"), call("call_3"),
                {"role": "tool", "tool_call_id": "call_3",
                 "content": [{"type": "input_text", "text": ""}]}]}),
            Expect::Valid,
        ),
        (
            "reasoning details with junk entries",
            json!({"model": "m", "messages": [
                {"role": "assistant", "content": "A", "reasoning_details": [null, 5,
                    {"type": "reasoning.text", "text": 5, "signature": "s"},
                    {"type": "reasoning.summary"}, {"type": "other"}]},
                user("more")]}),
            Expect::Valid,
        ),
        (
            "audio in a format /responses does not take",
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "listen"},
                {"type": "input_audio", "input_audio": {"data": "?", "format": "flac"}}]}]}),
            Expect::Valid,
        ),
        (
            "a function name over 64 characters",
            json!({"model": "m", "messages": [user("A")],
                   "tools": [{"type": "function", "function": {"name": long}}]}),
            Expect::Refused("longer than 64 characters"),
        ),
        (
            "a structured-output schema name over 64 characters",
            json!({"model": "m", "messages": [user("a")], "response_format":
                {"type": "json_schema", "json_schema": {"name": long, "schema": {}}}}),
            Expect::Valid,
        ),
    ];
    let model = plain_model();
    let settings: RequestSettings =
        responses_pipe_guest::settings_document::from_document("").expect("the default settings");
    let identity = Identity::default();
    let mut failures = Vec::new();
    for (what, body, expect) in cases {
        let request = match (parse_chat_body(body.to_string().as_bytes()), &expect) {
            (Ok(request), _) => request,
            (Err(e), Expect::Refused(needle)) if e.0.contains(needle) => continue,
            (Err(e), _) => {
                failures.push(format!("{what}: refused by parsing: {e}"));
                continue;
            }
        };
        let built = [
            build_responses_request(&request, &model, &settings, &identity, false)
                .map(|b| (b.body.clone(), validate_responses_request(&b.body))),
            build_chat_completions_request(&request, &model, &settings, &identity, false)
                .map(|b| (b.body.clone(), validate_chat_request(&b.body))),
        ];
        for result in built {
            match (&expect, result) {
                (Expect::Refused(needle), Err(e)) if e.0.contains(needle) => {}
                (Expect::Refused(needle), Err(e)) => {
                    failures.push(format!("{what}: refused with `{e}`, expected `{needle}`"));
                }
                (Expect::Refused(_), Ok((body, _))) => {
                    failures.push(format!("{what}: not refused, sent {body}"));
                }
                (Expect::Valid, Ok((_, Ok(())))) => {}
                (Expect::Valid, Ok((body, Err(violations)))) => {
                    failures.push(format!("{what}: {violations:?} in {body}"));
                }
                (Expect::Valid, Err(e)) => failures.push(format!("{what}: refused: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
