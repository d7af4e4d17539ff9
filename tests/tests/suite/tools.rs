//! Tool calls through the real host and component: pass-through to the client (Open WebUI's
//! native tool loop, any OpenAI SDK), and the pipeline loop over the host's tool servers.

use crate::harness::{Harness, Options, content_of, json_chunks, sse_data};
use serde_json::{Value, json};

/// The tools a client (Open WebUI) sends, in the Chat Completions shape.
fn client_tools() -> Value {
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
async fn stream(h: &Harness, body: &Value) -> Vec<Value> {
    let resp = h.post_chat(body).await;
    assert_eq!(resp.status().as_u16(), 200);
    let text = resp.text().await.unwrap();
    let chunks = sse_data(&text);
    assert_eq!(chunks.last().map(String::as_str), Some("[DONE]"), "{text}");
    json_chunks(&chunks)
}

/// The `delta.tool_calls` entries of a stream, merged by index: `(id, name, arguments)`.
fn tool_calls(chunks: &[Value]) -> Vec<(String, String, String)> {
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

fn finish_reason(chunks: &[Value]) -> String {
    chunks
        .iter()
        .find_map(|c| c["choices"][0]["finish_reason"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The bodies the host sent to `/responses`, in order.
fn responses_bodies(h: &Harness) -> Vec<Value> {
    h.fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/responses"))
        .filter_map(|r| r.json())
        .collect()
}

fn mode(mode: &str) -> Options {
    Options {
        env: vec![("TOOL_EXECUTION_MODE", mode.to_string())],
        ..Options::default()
    }
}

/// Open-WebUI mode: the model's call streams back as `delta.tool_calls` (arguments that came only
/// in `response.completed` included), the chunk ends with `tool_calls`, and the client's
/// follow-up with `role:"tool"` messages reaches the model as `function_call_output` items.
#[tokio::test]
async fn pass_through_round_trip_hands_calls_back_and_continues_with_the_tool_outputs() {
    let h = Harness::with(mode("Open-WebUI")).await;
    for model in ["fake/tool-call", "fake/tool-call-late"] {
        h.fake.clear_requests();
        let question = json!({"role": "user", "content": "What is the weather? use:get_weather"});
        let chunks = stream(
            &h,
            &json!({"model": model, "stream": true, "messages": [question], "tools": client_tools()}),
        )
        .await;
        let calls = tool_calls(&chunks);
        assert_eq!(calls.len(), 1, "{model}: {chunks:?}");
        let (id, name, args) = calls[0].clone();
        assert!(!id.is_empty());
        assert_eq!(name, "get_weather");
        let parsed: Value = serde_json::from_str(&args).unwrap();
        assert_eq!(parsed, json!({"city": "Paris"}), "{model}");
        assert_eq!(finish_reason(&chunks), "tool_calls");
        assert!(
            chunks.last().unwrap()["usage"]["total_tokens"]
                .as_u64()
                .unwrap()
                > 0
        );
        // The host offered the client's tools, nothing of its own.
        let first = &responses_bodies(&h)[0];
        let offered: Vec<&str> = first["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["type"] == "function")
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(offered, ["get_weather", "get_time"]);

        // The client ran the tool; its follow-up continues the conversation.
        let follow = json!({"model": model, "stream": true, "tools": client_tools(), "messages": [
            question,
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": id, "type": "function", "function": {"name": name, "arguments": args}}]},
            {"role": "tool", "tool_call_id": id, "content": "Sunny and 21C in Paris"},
        ]});
        let chunks = stream(&h, &follow).await;
        assert_eq!(
            content_of_json(&chunks),
            "tool results: Sunny and 21C in Paris"
        );
        assert_eq!(finish_reason(&chunks), "stop");
        let second = responses_bodies(&h).pop().unwrap();
        let input = second["input"].as_array().unwrap();
        let call = input.iter().find(|i| i["type"] == "function_call").unwrap();
        assert_eq!(call["call_id"], id.as_str());
        let output = input
            .iter()
            .find(|i| i["type"] == "function_call_output")
            .unwrap();
        assert_eq!(output["call_id"], id.as_str());
        assert_eq!(output["output"], "Sunny and 21C in Paris");
    }
}

/// A tool without required parameters whose call came with empty arguments gets `{}`.
#[tokio::test]
async fn pass_through_never_hands_back_empty_arguments() {
    let h = Harness::with(mode("Open-WebUI")).await;
    let body = json!({"model": "fake/tool-call-late", "stream": true, "tools": client_tools(),
        "messages": [{"role": "user", "content": "use:get_time now"}]});
    let chunks = stream(&h, &body).await;
    let calls = tool_calls(&chunks);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].1, "get_time");
    assert_eq!(calls[0].2, "{}");
    // Non-streamed: one completion with `tool_calls` and that finish.
    let mut body = body;
    body["stream"] = json!(false);
    let resp = h.post_chat(&body).await;
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let tc = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(tc["function"]["name"], "get_time");
    assert_eq!(tc["function"]["arguments"], "{}");
}

/// Pipeline mode (the default) with a request tool the host does not serve: the call is handed
/// back to the client as in pass-through mode, so Open WebUI's own tools keep working.
#[tokio::test]
async fn pipeline_mode_hands_back_calls_to_request_tools_the_host_does_not_serve() {
    let h = Harness::start().await;
    let body = json!({"model": "fake/tool-parallel", "stream": true, "tools": client_tools(),
        "messages": [{"role": "user", "content": "weather and time"}]});
    let chunks = stream(&h, &body).await;
    let calls = tool_calls(&chunks);
    let names: Vec<&str> = calls.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(names, ["get_weather", "get_time"]);
    assert_eq!(finish_reason(&chunks), "tool_calls");
    assert_eq!(responses_bodies(&h).len(), 1, "nothing was run by the pipe");
}

fn content_of_json(chunks: &[Value]) -> String {
    let raw: Vec<String> = chunks.iter().map(Value::to_string).collect();
    content_of(&raw)
}
