//! The Pipeline tool loop through the real host and component: the component runs the host's tools
//! (OpenAPI and MCP) and answers with their output and the turns' usage summed; statuses, cards and
//! sources for Open WebUI; per-request and global parallel limits; call order; the loop limit and
//! its synthesis turn; timeouts; the tool breaker and the request breaker it feeds; malformed calls
//! never reaching the server; a round over `/chat/completions`; tool calls persisted and replayed.

use crate::harness::{Harness, content_of, pipeline};
use crate::tool_chats::{
    BOUND, call_outputs, chat_turn, content_of_json, events_of, finish_reason, last_input,
    owui_stream, plain_stream, responses_bodies, tool_calls,
};
use fake_openrouter::fake_tools::mcp::FakeMcp;
use fake_openrouter::fake_tools::openapi::FakeOpenApi;
use fake_openrouter::fake_tools::{Behaviour, Recorder};
use fake_openrouter::scenarios::{
    BRIDGE_REASONING, BRIDGE_SIGNATURE, input_tokens, token_estimate,
};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn pipeline_runs_a_host_tool_and_answers_with_its_output_and_usage_summed() {
    let (h, fake) = pipeline(&[]).await;
    let chunks = plain_stream(&h, "fake/tool-call", "weather in Paris? use:get_weather").await;
    // The server saw one call with the model's arguments (the strict-mode null dropped).
    let calls = fake.recorder().calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].tool, "get_weather");
    assert_eq!(calls[0].arguments["city"], "Paris");
    let bodies = responses_bodies(&h);
    assert_eq!(bodies.len(), 2);
    // The host's tools were offered in strict form beside nothing else of the client's.
    let offered: Vec<&Value> = bodies[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["type"] == "function")
        .collect();
    assert_eq!(offered.len(), 3);
    assert!(
        offered
            .iter()
            .all(|t| t["strict"] == true && t["parameters"]["additionalProperties"] == false)
    );
    // The follow-up carries the call and its output after the prior output.
    let input = bodies[1]["input"].as_array().unwrap();
    let call = &input[input.len() - 2];
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["name"], "get_weather");
    let output = &input[input.len() - 1];
    assert_eq!(output["type"], "function_call_output");
    assert_eq!(output["call_id"], call["call_id"]);
    let tool_text = output["output"].as_str().unwrap();
    assert!(tool_text.contains("temperature_c"), "{tool_text}");
    // The answer is the model's second turn; no tool_calls reach the client.
    let answer = content_of_json(&chunks);
    assert_eq!(answer, format!("tool results: {tool_text}"));
    assert!(tool_calls(&chunks).is_empty());
    assert_eq!(finish_reason(&chunks), "stop");
    // The URL in the tool result is a citation.
    let cited: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["annotations"].as_array())
        .flatten()
        .collect();
    assert!(
        cited
            .iter()
            .any(|a| a["url_citation"]["url"] == "https://weather.example/report"),
        "{cited:?}"
    );
    // One usage object: both turns summed (the fake's estimates per turn).
    let usage = &chunks.last().unwrap()["usage"];
    let prompt: u64 = bodies.iter().map(input_tokens).sum();
    assert_eq!(usage["prompt_tokens"].as_u64().unwrap(), prompt);
    let first_args = bodies[1]["input"].as_array().unwrap()[input.len() - 2]["arguments"]
        .as_str()
        .unwrap()
        .to_string();
    let completion = token_estimate(&first_args)
        + token_estimate(fake_openrouter::scenarios::TOOL_REASONING)
        + token_estimate(&answer);
    // The turn's reasoning went back with its encrypted content, before the call.
    let reasoning = &input[input.len() - 3];
    assert_eq!(reasoning["type"], "reasoning");
    assert!(
        reasoning["encrypted_content"]
            .as_str()
            .unwrap()
            .starts_with("gAAAA-fake-encrypted-")
    );
    assert_eq!(usage["completion_tokens"].as_u64().unwrap(), completion);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 4);
    let usage_chunks = chunks
        .iter()
        .filter(|c| c.get("usage").is_some_and(|u| !u.is_null()))
        .count();
    assert_eq!(usage_chunks, 1);
}

#[tokio::test]
async fn pipeline_shows_statuses_cards_and_sources_to_open_webui() {
    let (h, _fake) = pipeline(&[("SHOW_TOOL_CARDS", "true")]).await;
    let chunks = owui_stream(&h, "u-cards", "fake/tool-call", "use:get_weather").await;
    let statuses: Vec<String> = events_of(&chunks, "status")
        .iter()
        .filter_map(|d| d["description"].as_str().map(str::to_string))
        .collect();
    assert!(
        statuses.iter().any(|s| s == "Running get_weather…"),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().any(|s| s == "Ran 1 tool call"),
        "{statuses:?}"
    );
    let sources = events_of(&chunks, "source");
    assert!(
        sources
            .iter()
            .any(|s| s.to_string().contains("https://weather.example/report")),
        "{sources:?}"
    );
    let text = content_of_json(&chunks);
    assert!(
        text.starts_with("\n<details type=\"tool_calls\" done=\"true\""),
        "{text}"
    );
    assert!(text.contains("name=\"get_weather\""), "{text}");
    assert!(text.contains("tool results: "), "{text}");
}

/// A Pipeline host allowing two tool calls at once per request and three in the whole host, whose
/// `search` holds every call until released.
async fn limited_pipeline() -> (Harness, FakeOpenApi) {
    let (h, fake) = pipeline(&[
        ("MAX_PARALLEL_TOOLS_PER_REQUEST", "2"),
        ("MAX_PARALLEL_TOOLS_GLOBAL", "3"),
    ])
    .await;
    fake.recorder().set("search", Behaviour::Hold);
    (h, fake)
}

/// Release the held calls once `running` of them run at once (bounded).
async fn release_at(rec: &Recorder, running: usize) {
    tokio::time::timeout(BOUND, rec.wait_running(running))
        .await
        .unwrap();
    rec.release();
}

#[tokio::test]
async fn parallel_calls_stay_within_the_per_request_and_global_limits() {
    let (h, fake) = limited_pipeline().await;
    let rec = fake.recorder();
    // One request, six calls of the same tool: at most two run at once.
    let one = plain_stream(&h, "fake/tool-many", "use:search times:6");
    let watch = release_at(rec, 2);
    let (chunks, ()) = tokio::join!(one, watch);
    assert_eq!(rec.calls_of("search"), 6);
    assert_eq!(rec.peak(), 2, "the per-request limit");
    let answer = content_of_json(&chunks);
    assert_eq!(answer.matches("result for").count(), 6, "{answer}");

    // Two requests at once, two calls each allowed, three in the whole host.
    let (h, fake) = limited_pipeline().await;
    let rec = fake.recorder();
    let a = plain_stream(&h, "fake/tool-many", "use:search times:4");
    let b = plain_stream(&h, "fake/tool-many", "use:search times:4");
    let watch = release_at(rec, 3);
    let (a, b, ()) = tokio::join!(a, b, watch);
    assert_eq!(rec.calls_of("search"), 8);
    assert_eq!(rec.peak(), 3, "the global limit");
    for chunks in [a, b] {
        assert_eq!(content_of_json(&chunks).matches("result for").count(), 4);
    }
}

#[tokio::test]
async fn several_tools_in_one_turn_all_run_and_their_outputs_keep_the_call_order() {
    let (h, fake) = pipeline(&[]).await;
    let chunks = plain_stream(&h, "fake/tool-parallel", "everything").await;
    let mut tools: Vec<String> = fake
        .recorder()
        .calls()
        .into_iter()
        .map(|c| c.tool)
        .collect();
    tools.sort();
    assert_eq!(tools, ["create_note", "get_weather", "search"]);
    let bodies = responses_bodies(&h);
    let input = bodies[1]["input"].as_array().unwrap();
    let calls: Vec<&Value> = input
        .iter()
        .filter(|i| i["type"] == "function_call")
        .collect();
    let outputs: Vec<&Value> = input
        .iter()
        .filter(|i| i["type"] == "function_call_output")
        .collect();
    assert_eq!(calls.len(), 3);
    let ids = |v: &[&Value]| v.iter().map(|i| i["call_id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&calls), ids(&outputs));
    assert_eq!(content_of_json(&chunks).matches(" | ").count(), 2);
}

#[tokio::test]
async fn the_loop_limit_skips_the_calls_and_the_model_gets_one_synthesis_turn() {
    let (h, fake) = pipeline(&[("MAX_FUNCTION_CALL_LOOPS", "2")]).await;
    let chunks = plain_stream(&h, "fake/tool-forever", "use:search again and again").await;
    assert_eq!(
        fake.recorder().calls_of("search"),
        1,
        "turn 1 runs, turn 2 is skipped"
    );
    let bodies = responses_bodies(&h);
    assert_eq!(bodies.len(), 3, "two tool turns and one synthesis turn");
    let skipped = last_input(&bodies[2]);
    assert_eq!(skipped["type"], "function_call_output");
    assert!(
        skipped["output"]
            .as_str()
            .unwrap()
            .starts_with("TOOL_CALL_SKIPPED")
    );
    assert_eq!(bodies[2]["tool_choice"], "none");
    assert!(bodies[1].get("tool_choice").is_none_or(|c| c != "none"));
    let answer = content_of_json(&chunks);
    assert!(answer.starts_with("tool results: "), "{answer}");
    assert!(answer.contains("TOOL_CALL_SKIPPED"), "{answer}");
    assert_eq!(finish_reason(&chunks), "stop");
}

#[tokio::test]
async fn a_hanging_tool_times_out_and_the_model_is_told() {
    let (h, fake) = pipeline(&[("TOOL_TIMEOUT_SECONDS", "1")]).await;
    fake.recorder().set("get_weather", Behaviour::Hang);
    let chunks = plain_stream(&h, "fake/tool-call", "use:get_weather").await;
    let bodies = responses_bodies(&h);
    let out = last_input(&bodies[1]);
    let text = out["output"].as_str().unwrap();
    assert!(
        text.contains("did not finish within its time limit (1 s)"),
        "{text}"
    );
    assert!(content_of_json(&chunks).contains("did not finish"));
    tokio::time::timeout(BOUND, fake.recorder().wait_idle())
        .await
        .expect("the host gave up on the hanging call");
}

#[tokio::test]
async fn the_tool_breaker_trips_skips_the_tool_then_closes_after_its_window() {
    let (h, fake) = pipeline(&[
        ("BREAKER_MAX_FAILURES", "2"),
        ("BREAKER_WINDOW_SECONDS", "5"),
    ])
    .await;
    let rec = fake.recorder();
    rec.set("get_weather", Behaviour::Fail(500));
    // Two failures open the breaker for this user and tool.
    for _ in 0..2 {
        let chunks = owui_stream(&h, "u-breaker", "fake/tool-call", "use:get_weather").await;
        assert!(content_of_json(&chunks).contains("failed"));
    }
    assert_eq!(rec.calls_of("get_weather"), 2);
    // Now the call is skipped with an explanation and a notification; the tool is not called.
    let chunks = owui_stream(&h, "u-breaker", "fake/tool-call", "use:get_weather").await;
    assert_eq!(rec.calls_of("get_weather"), 2);
    let answer = content_of_json(&chunks);
    assert!(
        answer.contains("skipped due to repeated failures"),
        "{answer}"
    );
    let notes = events_of(&chunks, "notification");
    assert!(
        notes
            .iter()
            .any(|n| n["content"].as_str().unwrap_or("").contains("get_weather")),
        "{chunks:?}"
    );
    // Another user is not affected.
    let other = owui_stream(&h, "u-other", "fake/tool-call", "use:get_weather").await;
    assert!(!content_of_json(&other).contains("skipped"));
    assert_eq!(rec.calls_of("get_weather"), 3);
    // The breaker closes once its failures leave the window: the tool is called again.
    rec.set("get_weather", Behaviour::Normal);
    let reopened = tokio::time::timeout(BOUND, async {
        loop {
            let chunks = owui_stream(&h, "u-breaker", "fake/tool-call", "use:get_weather").await;
            let text = content_of_json(&chunks);
            // Skipped turns also count against the user's request breaker, which may refuse
            // meanwhile; both close with the same window.
            if !text.contains("skipped") && !text.contains("Temporarily disabled") {
                return chunks;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await
    .expect("the breaker closed within the bound");
    assert!(content_of_json(&reopened).contains("temperature_c"));
    assert_eq!(rec.calls_of("get_weather"), 4);
}

#[tokio::test]
async fn a_turn_of_skipped_calls_counts_against_the_user_request_breaker() {
    let (h, fake) = pipeline(&[
        ("BREAKER_MAX_FAILURES", "1"),
        ("BREAKER_WINDOW_SECONDS", "60"),
    ])
    .await;
    fake.recorder().set("get_weather", Behaviour::Fail(503));
    // 1: the tool fails (its breaker opens at one failure). 2: the only call is skipped.
    owui_stream(&h, "u-req", "fake/tool-call", "use:get_weather").await;
    let skipped = owui_stream(&h, "u-req", "fake/tool-call", "use:get_weather").await;
    assert!(content_of_json(&skipped).contains("repeated failures"));
    // 3: the user's request breaker is open: refused before OpenRouter is asked.
    let before = responses_bodies(&h).len();
    let refused = owui_stream(&h, "u-req", "fake/echo", "hello").await;
    assert!(
        content_of_json(&refused).contains("Temporarily disabled"),
        "{refused:?}"
    );
    assert_eq!(responses_bodies(&h).len(), before);
    // The breaker is per user: an anonymous caller is someone else.
    let resp = h
        .post_chat(&Harness::chat_body("fake/echo", "hi", true))
        .await;
    assert_eq!(
        resp.status().as_u16(),
        200,
        "an anonymous caller is another user"
    );
}

#[tokio::test]
async fn pipeline_runs_mcp_tools_and_a_soft_tool_error_reaches_the_model() {
    let mcp = FakeMcp::start(true).await.unwrap();
    let declaration = format!(
        "[[tool_servers]]\nname = \"mcp\"\nkind = \"mcp\"\nurl = \"{}\"\n",
        mcp.url()
    );
    let h = Harness::with_tool_server(declaration, mcp.port(), 3, &[]).await;
    let chunks = plain_stream(&h, "fake/tool-parallel", "use:add use:fails_softly").await;
    let rec = mcp.recorder();
    assert_eq!(rec.calls_of("add"), 1);
    assert_eq!(rec.calls_of("fails_softly"), 1);
    let add = rec.calls().into_iter().find(|c| c.tool == "add").unwrap();
    assert_eq!(add.arguments, json!({"a": 2, "b": 2}));
    let bodies = responses_bodies(&h);
    let outputs = call_outputs(&bodies[1]);
    assert_eq!(outputs.len(), 2);
    assert!(outputs[0].contains('4'), "{outputs:?}");
    let answer = content_of_json(&chunks);
    assert_eq!(answer, format!("tool results: {}", outputs.join(" | ")));
}

#[tokio::test]
async fn a_non_streamed_pipeline_chat_returns_the_final_answer_with_summed_usage() {
    let (h, fake) = pipeline(&[]).await;
    let resp = tokio::time::timeout(
        BOUND,
        h.post_chat(&Harness::chat_body("fake/tool-call", "use:search", false)),
    )
    .await
    .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(fake.recorder().calls_of("search"), 1);
    let content = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        content.starts_with("tool results: ") && content.contains("result for"),
        "{content}"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(
        v["choices"][0]["message"]
            .get("tool_calls")
            .is_none_or(Value::is_null)
    );
    let prompt: u64 = responses_bodies(&h).iter().map(input_tokens).sum();
    assert_eq!(v["usage"]["prompt_tokens"].as_u64().unwrap(), prompt);
}

#[tokio::test]
async fn malformed_calls_get_error_outputs_and_never_reach_the_tool_server() {
    let (h, fake) = pipeline(&[]).await;
    let chunks = plain_stream(&h, "fake/tool-call-bad", "use:get_weather").await;
    assert!(fake.recorder().calls().is_empty());
    let bodies = responses_bodies(&h);
    let outputs = call_outputs(&bodies[1]);
    assert_eq!(outputs.len(), 3);
    assert!(outputs[0].contains("not valid JSON"), "{outputs:?}");
    assert!(outputs[1].contains("needs arguments (city)"), "{outputs:?}");
    assert!(
        outputs[2].contains("do not match its schema"),
        "{outputs:?}"
    );
    // The replayed calls carry a JSON document even when the model's was empty.
    let calls: Vec<&Value> = bodies[1]["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "function_call")
        .collect();
    assert_eq!(calls[1]["arguments"], "{}");
    assert!(content_of_json(&chunks).contains("not valid JSON"));
}

#[tokio::test]
async fn a_host_tool_round_over_chat_completions_sends_back_the_turns_text_and_signed_reasoning() {
    let (h, tools) = pipeline(&[]).await;
    let (status, chunks) = h.stream_chat("fake/chat-bridge", "weather in Paris").await;
    assert_eq!(status, 200, "{chunks:?}");
    assert!(
        content_of(&chunks).ends_with("echo: weather in Paris"),
        "{chunks:?}"
    );
    assert_eq!(tools.recorder().calls().len(), 1, "the host ran the call");
    let sent = h.posted_bodies("/chat/completions");
    assert_eq!(sent.len(), 2, "{sent:?}");
    let messages = sent[1]["messages"].as_array().unwrap();
    let assistant = &messages[messages.len() - 2];
    assert_eq!(
        assistant["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(assistant["content"], "echo: weather in Paris");
    assert_eq!(
        assistant["reasoning_details"],
        json!([{"type": "reasoning.text", "text": BRIDGE_REASONING.concat(),
                "format": "anthropic-claude-v1", "signature": BRIDGE_SIGNATURE, "index": 0}])
    );
    assert_eq!(messages[messages.len() - 1]["role"], "tool");
}

#[tokio::test]
async fn pipeline_tool_calls_and_outputs_are_persisted_and_replayed_in_the_next_turn() {
    let (h, fake) = pipeline(&[("PERSIST_TOOL_RESULTS", "true")]).await;
    let chat = format!(
        "chat-tools-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let ask = "weather in Paris? use:get_weather";
    let first = chat_turn(
        &h,
        &chat,
        "msg-1",
        &json!([{"role": "user", "content": ask}]),
    )
    .await;
    assert_eq!(fake.recorder().calls().len(), 1);
    let markers = first
        .lines()
        .filter(|l| l.starts_with('[') && l.ends_with("]: #"))
        .count();
    // The tool turn's reasoning, the call and its output, and the answer turn's reasoning.
    assert!(markers >= 3, "{first:?}");
    let first_call = responses_bodies(&h)[1]["input"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|i| i["type"] == "function_call")
        .cloned()
        .unwrap();

    let history = json!([
        {"role": "user", "content": ask},
        {"role": "assistant", "content": first},
        {"role": "user", "content": "thanks"},
    ]);
    chat_turn(&h, &chat, "msg-2", &history).await;
    // The tool ran once only: the second turn's model saw the stored output and answered.
    assert_eq!(fake.recorder().calls().len(), 1);
    let bodies = responses_bodies(&h);
    let input = bodies.last().unwrap()["input"].as_array().unwrap().clone();
    let types: Vec<&str> = input.iter().filter_map(|i| i["type"].as_str()).collect();
    let call = input
        .iter()
        .position(|i| i["type"] == "function_call")
        .unwrap_or_else(|| panic!("no replayed call in {types:?}"));
    assert_eq!(input[call]["call_id"], first_call["call_id"]);
    assert_eq!(input[call]["arguments"], first_call["arguments"]);
    assert_eq!(input[call + 1]["type"], "function_call_output", "{types:?}");
    assert_eq!(input[call + 1]["call_id"], first_call["call_id"]);
    assert!(
        input[call + 1]["output"]
            .as_str()
            .unwrap_or("")
            .contains("temperature_c")
    );
    // Replayed before the first answer's text, and no marker line goes upstream.
    let answer_at = input
        .iter()
        .position(|i| i["role"] == "assistant")
        .unwrap_or(usize::MAX);
    assert!(call < answer_at, "{types:?}");
    assert!(!serde_json::to_string(&input).unwrap().contains("]: #"));
}
