//! Helpers of the tool suites: the tools a client sends, streamed chats bounded in time (plain or as
//! an Open WebUI user), and what a stream's chunks and the recorded `/responses` bodies say about
//! tool calls.

use crate::harness::{Harness, content_of, json_chunks, sse_data};
use serde_json::{Value, json};
use std::time::Duration;

/// Every pipeline test is bounded, so a loop that never ends fails instead of hanging the suite.
pub const BOUND: Duration = Duration::from_secs(120);

/// The tools a client (Open WebUI) sends, in the Chat Completions shape.
pub fn client_tools() -> Value {
    json!([{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"]
            }
        }
    }, {
        "type": "function",
        "function": {"name": "get_time", "description": "The time now", "parameters": {"type": "object", "properties": {}}}
    }])
}

/// POST a streamed chat and return its parsed chunks.
pub async fn stream(h: &Harness, body: &Value) -> Vec<Value> {
    let resp = h.post_chat(body).await;
    assert_eq!(resp.status().as_u16(), 200);
    let text = resp.text().await.unwrap();
    let chunks = sse_data(&text);
    assert_eq!(chunks.last().map(String::as_str), Some("[DONE]"), "{text}");
    json_chunks(&chunks)
}

/// The `delta.tool_calls` entries of a stream, merged by index: `(id, name, arguments)`.
pub fn tool_calls(chunks: &[Value]) -> Vec<(String, String, String)> {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for c in chunks {
        for tc in c["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = tc["index"].as_u64().unwrap() as usize;
            if calls.len() <= i {
                calls.resize(i + 1, Default::default());
            }
            let slot = &mut calls[i];
            if let Some(id) = tc["id"].as_str() {
                slot.0 = id.into();
            }
            if let Some(n) = tc["function"]["name"].as_str() {
                slot.1 = n.into();
            }
            if let Some(a) = tc["function"]["arguments"].as_str() {
                slot.2.push_str(a);
            }
        }
    }
    calls
}

pub fn finish_reason(chunks: &[Value]) -> String {
    chunks
        .iter()
        .find_map(|c| c["choices"][0]["finish_reason"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The bodies the host sent to `/responses`, in order.
pub fn responses_bodies(h: &Harness) -> Vec<Value> {
    h.fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/responses"))
        .filter_map(|r| r.json())
        .collect()
}

pub fn content_of_json(chunks: &[Value]) -> String {
    let raw: Vec<String> = chunks.iter().map(Value::to_string).collect();
    content_of(&raw)
}

/// POST a streamed chat as Open WebUI user `user` (so status, source and notification events
/// are in the stream), bounded.
pub async fn owui_stream(h: &Harness, user: &str, model: &str, text: &str) -> Vec<Value> {
    let body =
        json!({"model": model, "stream": true, "messages": [{"role": "user", "content": text}]});
    bounded(h, &body, &[("X-OpenWebUI-User-Id", user)]).await
}

/// POST a chat with these headers; its parsed chunks, answered and streamed within the bound.
async fn bounded(h: &Harness, body: &Value, headers: &[(&str, &str)]) -> Vec<Value> {
    let (status, text) = tokio::time::timeout(BOUND, h.post_with(body, headers))
        .await
        .expect("answered within the bound");
    assert_eq!(status, 200, "{text}");
    json_chunks(&sse_data(&text))
}

pub async fn plain_stream(h: &Harness, model: &str, text: &str) -> Vec<Value> {
    let body =
        json!({"model": model, "stream": true, "messages": [{"role": "user", "content": text}]});
    tokio::time::timeout(BOUND, stream(h, &body))
        .await
        .expect("answered within the bound")
}

/// The Open WebUI events (`{"event":{...}}` lines) of a stream.
pub fn events_of(chunks: &[Value], kind: &str) -> Vec<Value> {
    chunks
        .iter()
        .filter(|c| c["event"]["type"] == kind)
        .map(|c| c["event"]["data"].clone())
        .collect()
}

/// The `output` of every `function_call_output` item of a `/responses` body, in order.
pub fn call_outputs(body: &Value) -> Vec<String> {
    body["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "function_call_output")
        .map(|i| i["output"].as_str().unwrap().to_string())
        .collect()
}

pub fn last_input(body: &Value) -> Value {
    body["input"].as_array().unwrap().last().cloned().unwrap()
}

/// One streamed Open WebUI chat turn with chat and message ids; the answer text (markers
/// included).
pub async fn chat_turn(h: &Harness, chat: &str, message: &str, messages: &Value) -> String {
    let headers = [
        ("X-OpenWebUI-User-Id", "user-tools-persist"),
        ("X-OpenWebUI-Chat-Id", chat),
        ("X-OpenWebUI-Message-Id", message),
    ];
    let body = json!({"model": "fake/tool-call", "stream": true, "messages": messages});
    content_of_json(&bounded(h, &body, &headers).await)
}
