//! Unit tests of tool calls through the chat orchestration: pass-through and the pipeline loop.

use super::*;
use crate::caps::ToolError;
use crate::testing::{Canned, FakeTools, FixedEnv, MemKv, ScriptedUpstream, VecEmit, block_on};
use crate::tool_loop::breaker;
use crate::types::{Event, FinishReason, Usage};
use serde_json::Value;

const MODELS: &str = r#"{"data":[{"id":"fake/tools","supported_parameters":["tools","tool_choice"],"pricing":{"prompt":"0.000001"}}]}"#;
const CITY: &str =
    r#"{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"#;

fn body(tools: &str) -> Vec<u8> {
    format!(
        r#"{{"model":"fake/tools","stream":true,"messages":[{{"role":"user","content":"weather?"}}],"tools":{tools}}}"#
    )
    .into_bytes()
}

fn completed(output: &str) -> String {
    format!(
        "data: {{\"type\":\"response.completed\",\"response\":{{\"status\":\"completed\",\"output\":{output},\"usage\":{{\"input_tokens\":10,\"output_tokens\":2,\"total_tokens\":12,\"cost\":0.5}}}}}}\n\n"
    )
}

/// A turn that calls `name` with `args` (arguments only in `response.completed`, the quirk).
fn calls_turn(calls: &[(&str, &str, &str)]) -> Canned {
    let items: Vec<Value> = calls
        .iter()
        .map(|(id, name, args)| {
            serde_json::json!({"type":"function_call","id":format!("fc_{id}"),"call_id":id,"name":name,"arguments":args})
        })
        .collect();
    let mut chunks = Vec::new();
    for i in &items {
        let mut empty = i.clone();
        empty["arguments"] = Value::String(String::new());
        chunks.push(format!(
            "data: {}\n\n",
            serde_json::json!({"type":"response.output_item.done","item":empty})
        ));
    }
    chunks.push(completed(&Value::Array(items).to_string()));
    let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
    Canned::sse(&refs)
}

fn text_turn(text: &str) -> Canned {
    Canned::sse(&[
        &format!("data: {{\"type\":\"response.output_text.delta\",\"delta\":\"{text}\"}}\n\n"),
        &completed("[]"),
    ])
}

fn settings(mode: &str) -> Settings {
    let mut s = Settings::default();
    s.openrouter.api_key_configured = true;
    s.streaming.streaming_delta_char_limit = 0;
    s.tools.tool_execution_mode = mode.into();
    s
}

struct Run {
    events: Vec<Event>,
    result: Result<(), PipeError>,
}

fn run(
    up: &ScriptedUpstream,
    s: &Settings,
    kv: &MemKv,
    tools: &FakeTools,
    ctx: &RequestContext,
    body: &[u8],
) -> Run {
    let env = FixedEnv::default();
    let mut emit = VecEmit::default();
    let mut pipe = Pipe {
        settings: s,
        upstream: up,
        kv,
        emit: &mut emit,
        env: &env,
        artifacts: crate::artifacts::Caps::none(),
    };
    let result = block_on(pipe.chat_with_tools(ctx, body, tools));
    Run {
        events: emit.events,
        result,
    }
}

/// A Pipeline run over `/chat/completions` (forced) with the host's `weather` tool answering
/// `-3C`: the first turn streams `call`, the second `answer`. The run, the tools, and the chat
/// bodies sent.
fn chat_path_weather_round(call: &str, answer: &str) -> (Run, FakeTools, Vec<Value>) {
    let up = upstream()
        .on("/chat/completions", Ok(Canned::sse(&[call])))
        .on("/chat/completions", Ok(Canned::sse(&[answer])));
    let tools = FakeTools::serving(&[("weather", CITY)]).answer("weather", Ok("-3C".into()));
    let mut s = settings("Pipeline");
    s.endpoint.force_chat_completions_models = "fake/*".into();
    let r = run(
        &up,
        &s,
        &MemKv::default(),
        &tools,
        &RequestContext::default(),
        &body("[]"),
    );
    r.result.as_ref().unwrap();
    let bodies = up
        .requests
        .borrow()
        .iter()
        .filter(|r| r.url.ends_with("/chat/completions"))
        .map(|r| serde_json::from_slice(r.body.as_deref().unwrap_or_default()).unwrap())
        .collect();
    (r, tools, bodies)
}

fn upstream() -> ScriptedUpstream {
    ScriptedUpstream::default().on("/models", Ok(Canned::json(200, MODELS)))
}

fn responses_bodies(up: &ScriptedUpstream) -> Vec<Value> {
    up.requests
        .borrow()
        .iter()
        .filter(|r| r.url.ends_with("/responses"))
        .map(|r| serde_json::from_slice(r.body.as_deref().unwrap_or_default()).unwrap())
        .collect()
}

/// The function tools of a sent body (server tools such as web search are left out).
fn functions(body: &Value) -> Vec<Value> {
    body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["type"] == "function")
        .cloned()
        .collect()
}

fn text_of(events: &[Event]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            Event::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn usage_of(events: &[Event]) -> Vec<&Usage> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Usage(u) => Some(u),
            _ => None,
        })
        .collect()
}

#[test]
fn pass_through_hands_calls_back_with_arguments_from_the_completed_event() {
    let up = upstream().on(
        "/responses",
        Ok(calls_turn(&[
            ("c1", "get_weather", r#"{"city":"Paris"}"#),
            ("c2", "get_time", ""),
        ])),
    );
    let tools = FakeTools::serving(&[("get_weather", CITY)]);
    let r = run(
        &up,
        &settings("Open-WebUI"),
        &MemKv::default(),
        &tools,
        &RequestContext::default(),
        &body(r#"[{"type":"function","function":{"name":"get_weather","parameters":{}}}]"#),
    );
    r.result.unwrap();
    let calls = r
        .events
        .iter()
        .find_map(|e| match e {
            Event::ToolCalls(c) => Some(c.clone()),
            _ => None,
        })
        .expect("tool calls");
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (
            calls[0].call_id.as_str(),
            calls[0].name.as_str(),
            calls[0].arguments_json.as_str()
        ),
        ("c1", "get_weather", r#"{"city":"Paris"}"#)
    );
    assert_eq!(calls[1].arguments_json, "{}", "never empty arguments");
    assert_eq!(
        r.events.last(),
        Some(&Event::Finish(FinishReason::ToolCalls))
    );
    assert_eq!(usage_of(&r.events).len(), 1);
    // Pass-through mode neither runs nor offers host tools.
    assert!(tools.invokes.borrow().is_empty());
    assert_eq!(functions(&responses_bodies(&up)[0]).len(), 1);
}

#[test]
fn pipeline_runs_host_calls_and_continues_with_their_outputs_summing_usage() {
    let up = upstream()
        .on(
            "/responses",
            Ok(calls_turn(&[("c1", "weather", r#"{"city":"Paris"}"#)])),
        )
        .on("/responses", Ok(text_turn("Sunny.")));
    let tools = FakeTools::serving(&[("weather", CITY)]).answer(
        "weather",
        Ok("Sunny, see https://weather.example/paris?utm_source=x".into()),
    );
    let ctx = RequestContext {
        openwebui_caller: true,
        ..RequestContext::default()
    };
    let mut s = settings("Pipeline");
    s.tools.show_tool_cards = true;
    let r = run(&up, &s, &MemKv::default(), &tools, &ctx, &body("[]"));
    r.result.unwrap();
    let ran = tools.calls();
    assert_eq!(ran.len(), 1);
    assert_eq!(ran[0].arguments_json, r#"{"city":"Paris"}"#);
    let bodies = responses_bodies(&up);
    assert_eq!(bodies.len(), 2);
    // The host tool was offered in strict form.
    let offered = functions(&bodies[0]);
    assert_eq!(offered[0]["name"], "weather");
    assert_eq!(offered[0]["strict"], true);
    let input = bodies[1]["input"].as_array().unwrap();
    let n = input.len();
    assert_eq!(input[n - 2]["type"], "function_call");
    assert_eq!(input[n - 2]["arguments"], r#"{"city":"Paris"}"#);
    assert_eq!(input[n - 1]["type"], "function_call_output");
    assert_eq!(input[n - 1]["call_id"], "c1");
    assert!(
        input[n - 1]["output"]
            .as_str()
            .unwrap()
            .starts_with("Sunny")
    );
    let text = text_of(&r.events);
    assert!(text.contains("<details type=\"tool_calls\""), "{text}");
    assert!(text.ends_with("Sunny."), "{text}");
    // One usage event, summed over both turns.
    let usage = usage_of(&r.events);
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].total_tokens, 24);
    assert_eq!(usage[0].cost_usd, Some(1.0));
    let owui: Vec<&String> = r
        .events
        .iter()
        .filter_map(|e| match e {
            Event::OpenWebUiEvent(s) => Some(s),
            _ => None,
        })
        .collect();
    assert!(
        owui.iter().any(|e| e.contains("Running weather")),
        "{owui:?}"
    );
    assert!(
        owui.iter()
            .any(|e| e.contains("\"source\"") && e.contains("weather.example/paris")),
        "{owui:?}"
    );
    assert_eq!(r.events.last(), Some(&Event::Finish(FinishReason::Stop)));
}

#[test]
fn the_loop_limit_skips_calls_and_asks_for_one_synthesis_turn() {
    let up = upstream()
        .on(
            "/responses",
            Ok(calls_turn(&[("c1", "weather", r#"{"city":"P"}"#)])),
        )
        .on("/responses", Ok(text_turn("Done.")));
    let tools = FakeTools::serving(&[("weather", CITY)]);
    let mut s = settings("Pipeline");
    s.tools.max_function_call_loops = 1;
    let r = run(
        &up,
        &s,
        &MemKv::default(),
        &tools,
        &RequestContext::default(),
        &body("[]"),
    );
    r.result.unwrap();
    assert!(tools.invokes.borrow().is_empty(), "the tool is not run");
    let bodies = responses_bodies(&up);
    assert_eq!(bodies.len(), 2, "exactly one synthesis turn");
    let last = bodies[1]["input"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert!(
        last["output"]
            .as_str()
            .unwrap()
            .starts_with("TOOL_CALL_SKIPPED")
    );
    assert_eq!(bodies[1]["tool_choice"], "none");
    assert_eq!(text_of(&r.events), "Done.");
}

#[test]
fn endless_calls_end_with_the_fallback_sentence() {
    // The model calls a tool on every turn, even in the synthesis turn.
    let up = upstream().on(
        "/responses",
        Ok(calls_turn(&[("c1", "weather", r#"{"city":"P"}"#)])),
    );
    let tools = FakeTools::serving(&[("weather", CITY)]);
    let mut s = settings("Pipeline");
    s.tools.max_function_call_loops = 3;
    let r = run(
        &up,
        &s,
        &MemKv::default(),
        &tools,
        &RequestContext::default(),
        &body("[]"),
    );
    r.result.unwrap();
    assert_eq!(
        tools.calls().len(),
        2,
        "turns 1 and 2 run, turn 3 is skipped"
    );
    assert_eq!(responses_bodies(&up).len(), 4);
    assert_eq!(text_of(&r.events), tool_loop::NO_ANSWER_FALLBACK);
    assert_eq!(usage_of(&r.events)[0].total_tokens, 48);
}

#[test]
fn a_request_tool_the_host_does_not_serve_is_handed_back_in_pipeline_mode() {
    let up = upstream().on(
        "/responses",
        Ok(calls_turn(&[("c9", "client_tool", r#"{"x":1}"#)])),
    );
    let tools = FakeTools::serving(&[("weather", CITY)]);
    let r = run(
        &up,
        &settings("Pipeline"),
        &MemKv::default(),
        &tools,
        &RequestContext::default(),
        &body(
            r#"[{"type":"function","function":{"name":"client_tool","parameters":{"type":"object","properties":{"x":{"type":"integer"}}}}}]"#,
        ),
    );
    r.result.unwrap();
    assert!(tools.invokes.borrow().is_empty());
    assert!(
        r.events
            .iter()
            .any(|e| matches!(e, Event::ToolCalls(c) if c[0].name == "client_tool"))
    );
    assert_eq!(
        r.events.last(),
        Some(&Event::Finish(FinishReason::ToolCalls))
    );
    // Both tools were offered: the client's as sent, the host's added.
    assert_eq!(functions(&responses_bodies(&up)[0]).len(), 2);
}

#[test]
fn a_turn_of_breaker_skipped_calls_trips_the_request_breaker() {
    let kv = MemKv::default();
    let tools = FakeTools::serving(&[("weather", CITY)])
        .answer("weather", Err(ToolError::Unavailable("down".into())));
    let mut s = settings("Pipeline");
    s.tools.breaker_max_failures = 1;
    let ctx = RequestContext {
        user_id: Some("u1".into()),
        openwebui_caller: true,
        ..RequestContext::default()
    };
    let script = || {
        upstream()
            .on(
                "/responses",
                Ok(calls_turn(&[("c1", "weather", r#"{"city":"P"}"#)])),
            )
            .on("/responses", Ok(text_turn("ok")))
    };
    // 1: the tool fails (its breaker opens). 2: the call is skipped, a whole turn of skips.
    let up = script();
    let first = run(&up, &s, &kv, &tools, &ctx, &body("[]"));
    first.result.unwrap();
    let out = responses_bodies(&up)[1]["input"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert!(out["output"].as_str().unwrap().contains("down"), "{out}");
    let up = script();
    let second = run(&up, &s, &kv, &tools, &ctx, &body("[]"));
    second.result.unwrap();
    assert_eq!(
        tools.invokes.borrow().len(),
        1,
        "the skipped call did not run"
    );
    let out = responses_bodies(&up)[1]["input"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert!(
        out["output"]
            .as_str()
            .unwrap()
            .contains("repeated failures")
    );
    assert!(
        second
            .events
            .iter()
            .any(|e| matches!(e, Event::OpenWebUiEvent(s) if s.contains("notification")))
    );
    // 3: the user's request breaker is open now: refused without calling OpenRouter.
    let up = script();
    let third = run(&up, &s, &kv, &tools, &ctx, &body("[]"));
    third.result.unwrap();
    assert!(responses_bodies(&up).is_empty());
    assert!(text_of(&third.events).contains("Temporarily disabled"));
    let anon = run(
        &up,
        &s,
        &kv,
        &tools,
        &RequestContext::default(),
        &body("[]"),
    );
    assert!(anon.result.is_ok(), "another user is not affected");
}

#[test]
fn tool_breakers_are_per_client_key_and_user() {
    let kv = MemKv::default();
    let tools = FakeTools::serving(&[("weather", CITY)])
        .answer("weather", Err(ToolError::Unavailable("down".into())));
    let mut s = settings("Pipeline");
    s.tools.breaker_max_failures = 1;
    let ctx = |key: &str, user: Option<&str>| RequestContext {
        key_name: key.into(),
        user_id: user.map(str::to_string),
        openwebui_key: true,
        ..RequestContext::default()
    };
    let script = || {
        upstream()
            .on(
                "/responses",
                Ok(calls_turn(&[("c1", "weather", r#"{"city":"P"}"#)])),
            )
            .on("/responses", Ok(text_turn("ok")))
    };
    // Key a's user u1: the tool fails once and its breaker opens for a:u1 only.
    run(
        &script(),
        &s,
        &kv,
        &tools,
        &ctx("a", Some("u1")),
        &body("[]"),
    )
    .result
    .unwrap();
    assert_eq!(tools.invokes.borrow().len(), 1);
    run(
        &script(),
        &s,
        &kv,
        &tools,
        &ctx("a", Some("u1")),
        &body("[]"),
    )
    .result
    .unwrap();
    assert_eq!(tools.invokes.borrow().len(), 1, "skipped for a:u1");
    // The same user id behind another key, and key a's own bucket, still run the tool.
    for (n, other) in [ctx("b", Some("u1")), ctx("a", None)].iter().enumerate() {
        run(&script(), &s, &kv, &tools, other, &body("[]"))
            .result
            .unwrap();
        assert_eq!(tools.invokes.borrow().len(), 2 + n, "{other:?}");
    }
}

#[test]
fn the_pipeline_loop_also_runs_over_chat_completions() {
    let call = r#"data: {"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Oslo\"}"}}]},"finish_reason":null}]}

data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}

data: [DONE]

"#;
    let answer = r#"data: {"choices":[{"index":0,"delta":{"content":"Cold."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}

data: [DONE]

"#;
    let (r, tools, bodies) = chat_path_weather_round(call, answer);
    assert_eq!(tools.calls()[0].arguments_json, r#"{"city":"Oslo"}"#);
    assert_eq!(bodies.len(), 2);
    assert_eq!(functions(&bodies[0])[0]["function"]["name"], "weather");
    let messages = bodies[1]["messages"].as_array().unwrap();
    let n = messages.len();
    assert_eq!(messages[n - 2]["tool_calls"][0]["id"], "c1");
    assert_eq!(
        messages[n - 1],
        serde_json::json!({"role": "tool", "tool_call_id": "c1", "content": "-3C"})
    );
    assert_eq!(text_of(&r.events), "Cold.");
    assert!(
        !r.events.iter().any(|e| matches!(e, Event::ToolCalls(_))),
        "nothing handed back"
    );
    assert_eq!(usage_of(&r.events)[0].total_tokens, 16);
}

#[test]
fn an_open_request_breaker_is_a_429_for_other_clients() {
    let kv = MemKv::default();
    let s = settings("Pipeline");
    let env = FixedEnv::default();
    let ctx = RequestContext {
        user_id: Some("u9".into()),
        ..RequestContext::default()
    };
    let b = breaker::Breaker {
        kv: &kv,
        key: breaker::request_key(&ctx.principal()),
        max_failures: s.tools.breaker_max_failures,
        window_ms: s.tools.window_ms(),
    };
    for _ in 0..s.tools.breaker_max_failures {
        b.record_failure(env.now_ms());
    }
    let up = upstream();
    let r = run(&up, &s, &kv, &FakeTools::default(), &ctx, &body("[]"));
    let e = r.result.unwrap_err();
    assert_eq!(e.body().http_status, 429);
    assert_eq!(e.body().code.as_deref(), Some("breaker_open"));
    assert!(r.events.is_empty());
    assert!(responses_bodies(&up).is_empty());
}

#[test]
fn pipeline_turns_are_persisted_with_executed_calls_and_their_outputs_only() {
    use crate::testing::{MemStore, NoCrypto};
    let up = upstream()
        .on(
            "/responses",
            Ok(calls_turn(&[
                ("c1", "weather", r#"{"city":"Paris"}"#),
                ("c2", "broken", r#"{}"#),
            ])),
        )
        .on("/responses", Ok(text_turn("Sunny.")));
    let tools = FakeTools::serving(&[("weather", CITY), ("broken", "{}")])
        .answer("broken", Err(ToolError::Other("boom".into())));
    let ctx = RequestContext {
        chat_id: Some("chat-1".into()),
        message_id: Some("msg-1".into()),
        ..RequestContext::default()
    };
    let mut s = settings("Pipeline");
    s.artifacts.persist_tool_results = true;
    s.artifacts.artifact_table = "response_items_openrouter_responses_0123abcd".into();
    let store = MemStore::default();
    let env = FixedEnv::default();
    let mut emit = VecEmit::default();
    let mut pipe = Pipe {
        settings: &s,
        upstream: &up,
        kv: &MemKv::default(),
        emit: &mut emit,
        env: &env,
        artifacts: crate::artifacts::Caps {
            store: &store,
            crypto: &NoCrypto,
        },
    };
    block_on(pipe.chat_with_tools(&ctx, &body("[]"), &tools)).unwrap();
    let rows = store.rows(&s.artifacts.artifact_table);
    let kinds: Vec<&str> = rows.iter().map(|r| r.item_type.as_str()).collect();
    assert_eq!(kinds, ["function_call", "function_call_output"], "{rows:?}");
    let text = text_of(&emit.events);
    for r in &rows {
        assert!(text.contains(&format!("[{}]: #", r.id)), "{text}");
    }
}

#[test]
fn a_chat_completions_tool_round_sends_back_the_turns_text_and_signed_reasoning_details() {
    let call = r#"data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":"Need ","reasoning_details":[{"type":"reasoning.text","text":"Need ","format":"anthropic-claude-v1","index":0}]}}]}

data: {"choices":[{"index":0,"delta":{"reasoning":"weather.","reasoning_details":[{"type":"reasoning.text","text":"weather.","index":0}]}}]}

data: {"choices":[{"index":0,"delta":{"reasoning_details":[{"type":"reasoning.text","signature":"sig==","index":0}]}}]}

data: {"choices":[{"index":0,"delta":{"content":"Checking."}}]}

data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Oslo\"}"}}]},"finish_reason":"tool_calls"}]}

data: [DONE]

"#;
    let answer = r#"data: {"choices":[{"index":0,"delta":{"content":"Cold."},"finish_reason":"stop"}]}

data: [DONE]

"#;
    let (r, _, bodies) = chat_path_weather_round(call, answer);
    assert_eq!(bodies.len(), 2);
    let messages = bodies[1]["messages"].as_array().unwrap();
    let assistant = &messages[messages.len() - 2];
    assert_eq!(assistant["role"], "assistant");
    assert_eq!(assistant["content"], "Checking.");
    assert_eq!(assistant["tool_calls"][0]["id"], "c1");
    assert_eq!(
        assistant["reasoning_details"],
        serde_json::json!([{"type": "reasoning.text", "text": "Need weather.",
            "format": "anthropic-claude-v1", "signature": "sig==", "index": 0}])
    );
    assert_eq!(text_of(&r.events), "Checking.Cold.");
}
