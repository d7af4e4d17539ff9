//! Tool calls handed back to the client, through the real host and component: in pass-through mode
//! (Open WebUI's native tool loop, any OpenAI SDK) the model's calls stream back as
//! `delta.tool_calls` and the client's `role:"tool"` follow-up reaches the model as
//! `function_call_output` items; in Pipeline mode a call to a request tool the host does not serve is
//! handed back the same way.

use crate::harness::{Harness, Options, pipeline};
use crate::tool_chats::{
    BOUND, client_tools, content_of_json, finish_reason, responses_bodies, stream, tool_calls,
};
use serde_json::{Value, json};

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

#[tokio::test]
async fn pipeline_hands_back_a_request_tool_even_with_host_tools_offered() {
    let (h, fake) = pipeline(&[]).await;
    let body = json!({"model": "fake/tool-call", "stream": true, "tools": client_tools(),
        "messages": [{"role": "user", "content": "use:get_time please"}]});
    let chunks = tokio::time::timeout(BOUND, stream(&h, &body))
        .await
        .unwrap();
    let calls = tool_calls(&chunks);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].1, "get_time");
    assert_eq!(calls[0].2, "{}");
    assert_eq!(finish_reason(&chunks), "tool_calls");
    assert!(fake.recorder().calls().is_empty());
    let offered: Vec<String> = responses_bodies(&h)[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["type"] == "function")
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    // The client's get_weather keeps its name; the host's get_weather is not offered twice.
    assert_eq!(
        offered,
        ["get_weather", "get_time", "create_note", "search"]
    );
}
