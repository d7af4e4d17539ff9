//! Request translation: bytes → the component's chat body parsing → both upstream bodies (chat
//! and task). A refusal is fine; a panic or an abort is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use responses_pipe_guest::chat_body::parse_chat_body;
use responses_pipe_guest::model::{Capabilities, ModelInfo};
use responses_pipe_guest::request::{
    Identity, RequestSettings, build_chat_completions_request, build_responses_request,
};
use serde_json::Value;

fn model(reasoning: bool) -> ModelInfo {
    ModelInfo {
        id: if reasoning {
            "anthropic/claude-sonnet-4.5".into()
        } else {
            "openai/gpt-4o".into()
        },
        name: "model".into(),
        created: None,
        context_length: Some(128_000),
        max_completion_tokens: Some(4096),
        capabilities: Capabilities {
            vision: true,
            file_input: true,
            audio_input: true,
            reasoning,
            tools: true,
            ..Capabilities::default()
        },
        pricing: Value::Null,
        supported_parameters: vec![],
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(settings) =
        responses_pipe_guest::settings_document::from_document::<RequestSettings>("")
    else {
        return;
    };
    let Ok(request) = parse_chat_body(data) else {
        return;
    };
    let identity = Identity {
        user_id: Some("user".into()),
        chat_id: Some("chat".into()),
        ..Identity::default()
    };
    let reasoning = data.len() % 2 == 0;
    for task in [false, true] {
        if let Ok(built) =
            build_responses_request(&request, &model(reasoning), &settings, &identity, task)
        {
            assert!(built.body.is_object());
        }
        if let Ok(built) =
            build_chat_completions_request(&request, &model(reasoning), &settings, &identity, task)
        {
            assert!(built.body.is_object());
        }
    }
});
