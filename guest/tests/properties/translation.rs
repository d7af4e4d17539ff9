//! Chat body parsing and both translations on arbitrary JSON: refused or built, never a panic.

use proptest::prelude::*;
use responses_pipe_guest::chat_body::parse_chat_body;
use responses_pipe_guest::model::{Capabilities, ModelInfo};
use responses_pipe_guest::request::{
    Identity, RequestSettings, build_chat_completions_request, build_responses_request,
};
use serde_json::{Value, json};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::String),
        prop::sample::select(vec![
            "user",
            "assistant",
            "system",
            "developer",
            "tool",
            "text",
            "image_url",
            "input_audio",
            "file",
            "function",
            "json_schema",
            "auto",
            "high",
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop::sample::select(vec![
            "role",
            "content",
            "type",
            "text",
            "image_url",
            "url",
            "tool_calls",
            "id",
            "function",
            "name",
            "arguments",
            "tool_call_id",
            "input_audio",
            "data",
            "format",
            "file",
            "reasoning_details",
            "signature",
            "tools",
            "parameters",
            "tool_choice",
            "response_format",
            "json_schema",
            "schema",
            "max_tokens",
            "temperature",
            "reasoning_effort",
            "verbosity",
            "models",
            "stop",
            "metadata",
            "x",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..6).prop_map(|m| Value::Object(
                m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

/// A body with a model and messages whose parts are arbitrary JSON.
fn chat_body() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(json_value(), 1..6),
        prop::collection::btree_map("[a-z_]{1,12}", json_value(), 0..5),
    )
        .prop_map(|(messages, extra)| {
            let mut body: serde_json::Map<String, Value> = extra.into_iter().collect();
            body.insert("model".into(), json!("openai/gpt-4o"));
            body.insert("messages".into(), Value::Array(messages));
            Value::Object(body)
        })
}

fn model() -> ModelInfo {
    ModelInfo {
        id: "anthropic/claude-sonnet-4.5".into(),
        name: "Claude".into(),
        created: None,
        context_length: Some(200_000),
        max_completion_tokens: Some(64_000),
        capabilities: Capabilities {
            vision: true,
            file_input: true,
            audio_input: true,
            reasoning: true,
            tools: true,
            ..Capabilities::default()
        },
        pricing: Value::Null,
        supported_parameters: vec![],
    }
}

proptest! {
    #![proptest_config(crate::config())]

    #[test]
    fn arbitrary_bytes_are_refused_or_parsed_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_chat_body(&bytes);
    }

    #[test]
    fn arbitrary_json_is_refused_or_translated_never_a_panic(body in chat_body(), task in any::<bool>()) {
        let settings: RequestSettings = responses_pipe_guest::settings_document::from_document("")
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let identity = Identity {
            user_id: Some("u".into()),
            chat_id: Some("c".into()),
            ..Identity::default()
        };
        if let Ok(request) = parse_chat_body(body.to_string().as_bytes()) {
            let built = [
                build_responses_request(&request, &model(), &settings, &identity, task),
                build_chat_completions_request(&request, &model(), &settings, &identity, task),
            ];
            for built in built.into_iter().flatten() {
                // Always an object with the model and a stream flag.
                prop_assert!(built.body.get("model").is_some_and(Value::is_string));
                prop_assert!(built.body.get("stream").is_some_and(Value::is_boolean));
            }
        }
    }
}
