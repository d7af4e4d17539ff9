use super::*;
use crate::testing::{FakeTools, MemKv};

const CITY: &str = r#"{"type":"object","properties":{"city":{"type":"string"},"units":{"type":"string"}},"required":["city"]}"#;
const NONE: &str = r#"{"type":"object","properties":{}}"#;

fn call(id: &str, name: &str, args: &str) -> ToolCall {
    ToolCall {
        call_id: id.into(),
        name: name.into(),
        arguments_json: args.into(),
    }
}

fn model(tools: bool, image_output: bool) -> ModelInfo {
    let mut m: ModelInfo = serde_json::from_value(json!({
        "id": "a/b", "name": "B", "created": null, "context_length": null,
        "max_completion_tokens": null,
        "capabilities": {"vision": false, "file_input": false, "audio_input": false,
            "video_input": false, "reasoning": false, "reasoning_summary": false, "tools": false,
            "web_search": false, "image_output": false},
        "pricing": {}, "supported_parameters": []
    }))
    .unwrap();
    m.capabilities.tools = tools;
    m.capabilities.image_output = image_output;
    m
}

fn set_of(tools: &FakeTools) -> ToolSet {
    let mut body = json!({"tools": []});
    offer_host_tools(
        &ToolSettings::default(),
        &model(true, false),
        tools.available(),
        Endpoint::Responses,
        &mut body,
        &mut |_| {},
    )
}

#[test]
fn host_tools_join_the_request_tools_strictly_and_only_for_tool_capable_text_models() {
    let tools = FakeTools::serving(&[("weather", CITY), ("mine", NONE)]);
    let mut body = json!({"tools": [{"type": "function", "name": "mine", "parameters": {}}]});
    let mut logs = Vec::new();
    let set = offer_host_tools(
        &ToolSettings::default(),
        &model(true, false),
        tools.available(),
        Endpoint::Responses,
        &mut body,
        &mut |l| logs.push(l.to_string()),
    );
    assert_eq!(set.host.len(), 1, "the request's `mine` keeps its name");
    assert!(logs[0].contains("mine"));
    let sent = &body["tools"][1];
    assert_eq!(sent["name"], "weather");
    assert_eq!(sent["strict"], true);
    assert_eq!(sent["parameters"]["additionalProperties"], false);
    assert_eq!(sent["parameters"]["required"], json!(["city", "units"]));
    // The original schema is what calls are validated against.
    assert_eq!(set.host[0].parameters["required"], json!(["city"]));

    // Chat shape for /chat/completions.
    let mut chat = json!({});
    offer_host_tools(
        &ToolSettings::default(),
        &model(true, false),
        tools.available(),
        Endpoint::ChatCompletions,
        &mut chat,
        &mut |_| {},
    );
    assert_eq!(chat["tools"][0]["function"]["name"], "weather");

    for (m, mode) in [
        (model(false, false), "Pipeline"),
        (model(true, true), "Pipeline"),
        (model(true, false), "Open-WebUI"),
    ] {
        let mut body = json!({});
        let s = ToolSettings {
            tool_execution_mode: mode.into(),
            ..ToolSettings::default()
        };
        let set = offer_host_tools(
            &s,
            &m,
            tools.available(),
            Endpoint::Responses,
            &mut body,
            &mut |_| {},
        );
        assert!(set.host.is_empty() && body.get("tools").is_none(), "{mode}");
    }
}

#[test]
fn malformed_calls_get_error_outputs_and_good_ones_run_with_clean_arguments() {
    let tools = FakeTools::serving(&[("weather", CITY), ("now", NONE)]);
    let set = set_of(&tools);
    let kv = MemKv::default();
    let settings = ToolSettings::default();
    let ex = Executor {
        settings: &settings,
        kv: &kv,
        tools: &tools,
        set: &set,
        user: "u1",
        now_ms: 1_000,
    };
    let calls = [
        call("c1", "weather", r#"{"city":"Paris","units":null}"#),
        call("c2", "weather", ""),
        call("c3", "weather", "{oops"),
        call("c4", "", "{}"),
        call("c5", "now", ""),
        call("c6", "weather", r#"{"town":"Paris"}"#),
    ];
    let out = ex.run(&calls, false, &mut |_| {});
    let kinds: Vec<Outcome> = out.iter().map(|o| o.outcome).collect();
    assert_eq!(
        kinds,
        [
            Outcome::Ok,
            Outcome::Malformed,
            Outcome::Malformed,
            Outcome::Malformed,
            Outcome::Ok,
            Outcome::Malformed
        ]
    );
    assert!(
        out[1].output.contains("needs arguments (city)"),
        "{}",
        out[1].output
    );
    assert!(out[2].output.contains("not valid JSON"));
    assert!(out[3].output.contains("no tool name"));
    assert!(
        out[5].output.contains("\"city\" is a required property"),
        "{}",
        out[5].output
    );
    let ran = tools.calls();
    assert_eq!(ran.len(), 2);
    // The strict-mode null for an optional parameter is gone; empty arguments became `{}`.
    assert_eq!(ran[0].arguments_json, r#"{"city":"Paris"}"#);
    assert_eq!(ran[1].arguments_json, "{}");
    assert_eq!(out[0].item()["type"], "function_call_output");
    assert_eq!(out[0].item()["call_id"], "c1");
}

#[test]
fn same_tool_calls_batch_up_to_the_cap_and_dependent_calls_run_alone_afterwards() {
    let a = |id: &str| call(id, "search", r#"{"q":"x"}"#);
    let calls = [
        a("1"),
        a("2"),
        call("3", "weather", r#"{"city":"P"}"#),
        a("4"),
        a("5"),
        call("6", "search", r#"{"q":"y","depends_on":"1"}"#),
        call("7", "weather", r#"{"city":"use 3","after":"3"}"#),
    ];
    let refs: Vec<&ToolCall> = calls.iter().collect();
    let (independent, dependent) = plan_batches(&refs, 3);
    assert_eq!(independent, vec![vec![0, 1, 3], vec![2], vec![4]]);
    assert_eq!(dependent, vec![vec![5], vec![6]]);

    // Waves: MAX_PARALLEL_TOOLS_PER_REQUEST batches per invoke, dependent calls one by one, and
    // the timeouts travel with every invoke.
    let tools = FakeTools::serving(&[
        (
            "search",
            r#"{"type":"object","properties":{"q":{"type":"string"}}}"#,
        ),
        ("weather", NONE),
    ]);
    let set = set_of(&tools);
    let settings = ToolSettings {
        tool_batch_cap: 3,
        max_parallel_tools_per_request: 2,
        enable_strict_tool_calling: false,
        tool_timeout_seconds: 7,
        tool_batch_timeout_seconds: 3,
        tool_idle_timeout_seconds: Some(2),
        ..ToolSettings::default()
    };
    let kv = MemKv::default();
    let ex = Executor {
        settings: &settings,
        kv: &kv,
        tools: &tools,
        set: &set,
        user: "u",
        now_ms: 0,
    };
    let mut waves = Vec::new();
    let out = ex.run(&calls, false, &mut |w| waves.push(w.len()));
    assert!(out.iter().all(|o| o.outcome == Outcome::Ok), "{out:?}");
    assert_eq!(waves, vec![4, 1, 1, 1]);
    let invokes = tools.invokes.borrow();
    let o = invokes[0].1;
    assert_eq!(
        (
            o.max_parallel,
            o.call_timeout_ms,
            o.batch_timeout_ms,
            o.idle_timeout_ms
        ),
        (2, 7_000, 7_000, Some(2_000))
    );
    // Outputs keep the order of the calls.
    let ids: Vec<&str> = out.iter().map(|o| o.call.call_id.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3", "4", "5", "6", "7"]);
}

#[test]
fn the_breaker_skips_a_failing_tool_per_user_and_the_loop_limit_skips_everything() {
    let tools = FakeTools::serving(&[("flaky", NONE), ("ok", NONE)])
        .answer("flaky", Err(ToolError::Unavailable("refused".into())));
    let set = set_of(&tools);
    let kv = MemKv::default();
    let settings = ToolSettings {
        breaker_max_failures: 2,
        ..ToolSettings::default()
    };
    let ex = |user, now_ms| Executor {
        settings: &settings,
        kv: &kv,
        tools: &tools,
        set: &set,
        user,
        now_ms,
    };
    let calls = [call("a", "flaky", "{}"), call("b", "ok", "{}")];
    for _ in 0..2 {
        let out = ex("u1", 1_000).run(&calls, false, &mut |_| {});
        assert_eq!(out[0].outcome, Outcome::Failed);
        assert!(out[0].output.contains("refused"));
    }
    let out = ex("u1", 2_000).run(&calls, false, &mut |_| {});
    assert_eq!(out[0].outcome, Outcome::BreakerSkipped);
    assert!(out[0].output.contains("repeated failures"));
    assert_eq!(out[1].outcome, Outcome::Ok);
    // Another user still gets the tool; after the window the breaker lets it through again.
    assert_eq!(
        ex("u2", 2_000).run(&calls, false, &mut |_| {})[0].outcome,
        Outcome::Failed
    );
    assert_eq!(
        ex("u1", 62_000).run(&calls, false, &mut |_| {})[0].outcome,
        Outcome::Failed
    );

    let before = tools.invokes.borrow().len();
    let out = ex("u3", 0).run(&calls, true, &mut |_| {});
    assert!(out.iter().all(|o| o.outcome == Outcome::LoopSkipped && o.output.starts_with("TOOL_CALL_SKIPPED")));
    assert_eq!(
        tools.invokes.borrow().len(),
        before,
        "nothing runs at the limit"
    );
}

#[test]
fn more_than_fifty_calls_overflow_the_queue() {
    let tools = FakeTools::serving(&[("t", NONE)]);
    let set = set_of(&tools);
    let kv = MemKv::default();
    let settings = ToolSettings::default();
    let ex = Executor {
        settings: &settings,
        kv: &kv,
        tools: &tools,
        set: &set,
        user: "u",
        now_ms: 0,
    };
    let calls: Vec<ToolCall> = (0..55).map(|i| call(&format!("c{i}"), "t", "{}")).collect();
    let out = ex.run(&calls, false, &mut |_| {});
    assert_eq!(out.iter().filter(|o| o.outcome == Outcome::Ok).count(), 50);
    assert_eq!(out[54].outcome, Outcome::QueueFull);
}

#[test]
fn rounds_continue_with_the_prior_output_then_the_outputs() {
    let mut body = json!({"input": [{"type": "message", "role": "user", "content": "hi"}]});
    let output = vec![
        json!({"type": "reasoning", "id": "rs1", "summary": [], "encrypted_content": "gAAA"}),
        json!({"type": "function_call", "id": "fc1", "call_id": "c1", "name": "t", "arguments": "", "status": "in_progress"}),
        json!({"type": "web_search_call", "id": "ws1"}),
    ];
    let outcomes = vec![CallOutcome {
        call: call("c1", "t", "{}"),
        output: "done".into(),
        outcome: Outcome::Ok,
    }];
    continue_responses(&mut body, &output, &outcomes);
    let input = body["input"].as_array().unwrap();
    assert_eq!(input.len(), 4);
    assert_eq!(input[1]["encrypted_content"], "gAAA");
    assert_eq!(input[2]["arguments"], "{}");
    assert_eq!(input[2]["status"], "completed");
    assert_eq!(
        input[3],
        json!({"type": "function_call_output", "call_id": "c1", "output": "done"})
    );

    let mut chat = json!({"messages": [{"role": "user", "content": "hi"}]});
    continue_chat(&mut chat, "", &outcomes);
    assert_eq!(
        chat["messages"][1]["tool_calls"][0]["function"]["name"],
        "t"
    );
    assert_eq!(chat["messages"][2]["tool_call_id"], "c1");

    let mut synth = json!({"tools": [{"type": "function", "name": "t"}]});
    forbid_calls(&mut synth);
    assert_eq!(synth["tool_choice"], "none");
}

#[test]
fn usage_is_summed_over_rounds_and_urls_are_harvested() {
    let u = |p, c, cost| {
        Some(Usage {
            prompt_tokens: p,
            completion_tokens: c,
            total_tokens: p + c,
            cached_tokens: 1,
            reasoning_tokens: 0,
            cost_usd: cost,
        })
    };
    let total = merge_usage(merge_usage(None, u(10, 2, Some(0.5))), u(20, 3, Some(0.25))).unwrap();
    assert_eq!(
        (
            total.prompt_tokens,
            total.completion_tokens,
            total.total_tokens
        ),
        (30, 5, 35)
    );
    assert_eq!(total.cached_tokens, 2);
    assert_eq!(total.cost_usd, Some(0.75));
    let urls = urls_in(
        "See https://ex.com/a, and (https://ex.com/b?x=1). Again https://ex.com/a! Not http:// nor httpx://y",
    );
    assert_eq!(urls, vec!["https://ex.com/a", "https://ex.com/b?x=1"]);
    let urls =
        urls_in("http://? https://[::1 https://a.com:99999/x http://%zz https://B.com/Path.");
    assert_eq!(urls, vec!["https://B.com/Path"]);
}

#[test]
fn a_card_escapes_its_attributes() {
    let c = CallOutcome {
        call: call("c1", "t", r#"{"q":"<b>"}"#),
        output: "a \"quote\"".into(),
        outcome: Outcome::Ok,
    };
    let html = card(&c);
    assert!(
        html.contains(r#"type="tool_calls" done="true" id="c1" name="t""#),
        "{html}"
    );
    assert!(
        html.contains("arguments=\"{&quot;q&quot;:&quot;&lt;b&gt;&quot;}\""),
        "{html}"
    );
    assert!(!html.contains("<b>"));
}

#[test]
fn refused_arguments_and_vanished_tools_do_not_trip_the_breaker() {
    let tools = FakeTools::serving(&[("picky", NONE), ("gone", NONE)])
        .answer("picky", Err(ToolError::InvalidArgument("422".into())))
        .answer("gone", Err(ToolError::NotFound));
    let set = set_of(&tools);
    let kv = MemKv::default();
    let settings = ToolSettings {
        breaker_max_failures: 1,
        ..ToolSettings::default()
    };
    let ex = Executor {
        settings: &settings,
        kv: &kv,
        tools: &tools,
        set: &set,
        user: "u",
        now_ms: 0,
    };
    let calls = [call("a", "picky", "{}"), call("b", "gone", "{}")];
    for _ in 0..3 {
        let out = ex.run(&calls, false, &mut |_| {});
        assert!(out.iter().all(|o| o.outcome == Outcome::Failed), "{out:?}");
    }
    assert!(
        ex.run(&calls, false, &mut |_| {})[1]
            .output
            .contains("no longer available")
    );
}
