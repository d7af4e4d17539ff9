//! Open WebUI's housekeeping tasks (titles, tags, follow-ups) through the real host and component:
//! what makes a request a task (the header from an Open WebUI key, or the task prompt's shape), one
//! quiet non-streamed request at the task effort, retries and stubs instead of chat errors, no
//! OpenRouter call without a key, and the model filters and identifiers that apply to tasks too.

use crate::callers::{chat, sent, session_hex, streamed};
use crate::harness::{Harness, OWUI, message_content, tool_types};
use serde_json::{Value, json};

const TAGS_PROMPT: &str = "### Task:\nGenerate 1-3 broad tags categorizing the main themes.";

fn task_body(model: &str, stream: bool) -> Value {
    let mut body = Harness::chat_body(model, TAGS_PROMPT, stream);
    body["tools"] = json!([{"type": "function", "function": {"name": "lookup",
                           "parameters": {"type": "object", "properties": {}}}}]);
    body
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
async fn a_task_shaped_non_streamed_body_is_a_task_even_without_the_task_header() {
    let h = Harness::with_env(&[("TASK_MODEL_REASONING_EFFORT", "high")]).await;
    let (status, text) = h.post_with(&task_body("fake/echo", false), &OWUI).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(message_content(&text), format!("echo: {TAGS_PROMPT}"));
    let task = h.last_responses();
    assert_eq!(task["stream"], false);
    assert_eq!(task["reasoning"]["effort"], "high", "{task:#}");
    for key in ["tools", "tool_choice"] {
        assert!(task.get(key).is_none(), "{key}: {task:#}");
    }

    // The same text streamed is an ordinary chat turn.
    let (status, text) = h.post_with(&task_body("fake/echo", true), &OWUI).await;
    assert_eq!(status, 200, "{text}");
    let chat = h.last_responses();
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
    assert_eq!(h.last_responses()["stream"], false);
    let (status, text) = h
        .post_with(
            &Harness::chat_body("fake/echo", "Write a title", false),
            &[OWUI[0], OWUI[1], ("X-OpenWebUI-Task", "")],
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(h.last_responses()["stream"], true, "an ordinary turn");
    h.assert_spec_clean();
}

#[tokio::test]
async fn only_open_webui_keys_take_the_task_fast_path() {
    let h = Harness::with_env(&[
        ("PIPE_API_KEYS", "task-plain=task-plain-key"),
        ("OPENWEBUI_API_KEYS", "task-owui=task-owui-key"),
    ])
    .await;
    let task_header = [("X-OpenWebUI-Task", "title_generation")];
    let shaped = Harness::chat_body("fake/echo", "### Task:\nGenerate a title", false);
    for (key, is_task) in [("task-owui-key", true), ("task-plain-key", false)] {
        // The task header, on a streamed body.
        let a = chat(&h, Some(key), &task_header, &streamed("Write a title")).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(sent(&h).pop().unwrap()["stream"], !is_task, "{key}: header");
        // The task prompt shape, non-streamed, without the header.
        let a = chat(&h, Some(key), &[], &shaped).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let body = sent(&h).pop().unwrap();
        assert_eq!(body["stream"], !is_task, "{key}: shape: {body:#}");
        assert_eq!(
            body["reasoning"]["effort"],
            if is_task { "low" } else { "medium" },
            "{key}: the task effort only for a task"
        );
    }
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
    h.assert_spec_clean();
}

#[tokio::test]
async fn without_an_api_key_tasks_answer_stubs_without_calling_openrouter() {
    let h = Harness::with_env(&[("OPENROUTER_API_KEY", "")]).await;
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
    let task = h.last_responses();
    assert_eq!(task["user"], "user-42", "{task:#}");
    assert_eq!(
        task["metadata"],
        json!({"user_id": "user-42", "chat_id": "chat-7"})
    );
    assert_eq!(task["session_id"], session_hex("webui-secret-1", "chat-7"));
    // A task naming a model outside the allowlist is refused as a chat would be.
    let before = h.post_count();
    let (status, text) = h
        .post_with(
            &task_body("fake/reasoning", false),
            &[OWUI[0], OWUI[1], ("X-OpenWebUI-Task", "tags_generation")],
        )
        .await;
    assert_eq!(status, 404, "{text}");
    assert_eq!(h.post_count(), before, "OpenRouter was not asked");
    h.assert_spec_clean();
}

#[tokio::test]
async fn a_task_naming_a_filtered_model_is_refused_like_a_chat() {
    let h = Harness::with_env(&[
        ("OPENWEBUI_API_KEYS", "filt-owui=filt-owui-key"),
        ("FREE_MODEL_FILTER", "only"),
    ])
    .await;
    let body = Harness::chat_body("fake/echo", "### Task:\nGenerate a title", false);
    let headers = [
        ("X-OpenWebUI-Task", "title_generation"),
        ("X-OpenWebUI-Chat-Id", "chat-filt"),
    ];
    let task = chat(&h, Some("filt-owui-key"), &headers, &body).await;
    assert_eq!(task.status, 403, "{}", task.text);
    assert_eq!(task.code(), "model_restricted");
    let message = task.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("FREE_MODEL_FILTER=only"), "{message}");
    assert!(sent(&h).is_empty(), "OpenRouter was not asked");
    // A free model passes the same filter as a task.
    let free = Harness::chat_body(
        "meta-llama/llama-3.3-70b-instruct:free",
        "### Task:\nGenerate a title",
        false,
    );
    let ok = chat(&h, Some("filt-owui-key"), &headers, &free).await;
    assert_ne!(ok.code(), "model_restricted", "{}", ok.text);
}
