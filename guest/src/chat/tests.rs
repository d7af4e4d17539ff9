//! Unit tests of the chat orchestration over in-memory capabilities.

use super::*;
use crate::caps::TransportError;
use crate::chat_body;
use crate::testing::{Canned, FixedEnv, MemKv, ScriptedUpstream, VecEmit, block_on};
use crate::types::{Event, FinishReason, Usage};
use serde_json::Value;

const MODELS: &str = r#"{"data":[{"id":"fake/echo","supported_parameters":["reasoning"],"pricing":{"prompt":"0.000001"}}]}"#;
const BODY: &[u8] =
    br#"{"model":"fake/echo","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
const COMPLETED: &str = "data: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\",\"usage\":{\"input_tokens\":1,\"output_tokens\":2,\"total_tokens\":3,\"cost\":0.5}}}\n\n";

fn settings() -> Settings {
    let mut s = Settings::default();
    s.openrouter.api_key_configured = true;
    // Relay deltas one by one so tests see them as sent.
    s.streaming.streaming_delta_char_limit = 0;
    s
}

fn run_with(
    up: &ScriptedUpstream,
    s: &Settings,
    ctx: &RequestContext,
    body: &[u8],
) -> (Result<(), PipeError>, Vec<Event>) {
    let (kv, env) = (MemKv::default(), FixedEnv::default());
    let mut emit = VecEmit::default();
    let mut pipe = Pipe {
        settings: s,
        upstream: up,
        kv: &kv,
        emit: &mut emit,
        env: &env,
        artifacts: crate::artifacts::Caps::none(),
    };
    let r = block_on(pipe.chat(ctx, body));
    (r, emit.events)
}

fn run(up: &ScriptedUpstream) -> (Result<(), PipeError>, Vec<Event>) {
    run_with(up, &settings(), &RequestContext::default(), BODY)
}

fn upstream() -> ScriptedUpstream {
    ScriptedUpstream::default().on("/models", Ok(Canned::json(200, MODELS)))
}

fn sent_bodies(up: &ScriptedUpstream, suffix: &str) -> Vec<Value> {
    up.requests
        .borrow()
        .iter()
        .filter(|r| r.url.ends_with(suffix))
        .map(|r| serde_json::from_slice(r.body.as_ref().unwrap()).unwrap())
        .collect()
}

#[test]
fn a_streamed_answer_ends_with_usage_and_finish() {
    let up = upstream().on(
        "/responses",
        Ok(Canned::sse(&[
            ": OPENROUTER PROCESSING\n\n",
            "data: {\"type\":\"response.output_text.delta\",\"delta\":\"he\"}\n\n",
            "data: {\"type\":\"response.output_text.delta\",",
            "\"delta\":\"llo\"}\n\n",
            COMPLETED,
        ])),
    );
    let (r, events) = run(&up);
    r.unwrap();
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            Event::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "hello");
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Usage(Usage {
            total_tokens: 3,
            ..
        })
    )));
    assert_eq!(events.last(), Some(&Event::Finish(FinishReason::Stop)));
    let req = &up.requests.borrow()[1];
    assert!(req.headers.iter().any(|(k, _)| k == "HTTP-Referer"));
    assert!(
        !req.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization")),
        "the key is the host's job"
    );
}

#[test]
fn coalescing_merges_deltas_that_arrive_together() {
    let up = upstream().on(
        "/responses",
        Ok(Canned::sse(&[&format!(
            "data: {{\"type\":\"response.output_text.delta\",\"delta\":\"a\"}}\n\ndata: {{\"type\":\"response.output_text.delta\",\"delta\":\"b\"}}\n\ndata: {{\"type\":\"response.output_text.delta\",\"delta\":\"c\"}}\n\n{COMPLETED}"
        )])),
    );
    let mut s = settings();
    s.streaming.streaming_delta_char_limit = 256;
    let (r, events) = run_with(&up, &s, &RequestContext::default(), BODY);
    r.unwrap();
    let deltas: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::TextDelta(_)))
        .collect();
    assert_eq!(deltas, vec![&Event::TextDelta("abc".into())]);
}

#[test]
fn errors_before_output_are_results_and_after_output_are_events() {
    let up = upstream().on(
        "/responses",
        Ok(Canned {
            headers: vec![("retry-after".into(), "7".into())],
            ..Canned::json(429, r#"{"error":{"code":429,"message":"slow"}}"#)
        }),
    );
    let (r, events) = run(&up);
    let err = r.unwrap_err();
    assert_eq!(err.body().http_status, 429);
    assert_eq!(err.body().retry_after_seconds, Some(7));
    assert!(events.is_empty());

    let up = upstream().on(
        "/responses",
        Ok(Canned {
            chunks: vec![
                Ok(
                    b"data: {\"type\":\"response.output_text.delta\",\"delta\":\"par\"}\n\n"
                        .to_vec(),
                ),
                Err(TransportError::Protocol("connection reset".into())),
            ],
            ..Canned::sse(&[])
        }),
    );
    let (r, events) = run(&up);
    r.unwrap();
    assert_eq!(events[0], Event::TextDelta("par".into()));
    assert!(
        matches!(&events[1], Event::Error(e) if e.code.as_deref() == Some("stream_interrupted"))
    );
    assert_eq!(events[2], Event::Finish(FinishReason::Error));
}

#[test]
fn open_webui_callers_get_templates_instead_of_errors() {
    let up = upstream().on(
        "/responses",
        Ok(Canned::json(
            402,
            r#"{"error":{"code":402,"message":"Insufficient credits"}}"#,
        )),
    );
    let ctx = RequestContext {
        openwebui_caller: true,
        request_id: "req-1".into(),
        ..RequestContext::default()
    };
    let (r, events) = run_with(&up, &settings(), &ctx, BODY);
    r.unwrap();
    let Event::TextDelta(text) = &events[0] else {
        panic!("{events:?}")
    };
    assert!(text.contains("Insufficient credits"), "{text}");
    assert!(
        text.contains("Error ID") || text.contains("error id") || text.contains("`"),
        "{text}"
    );
    assert!(!text.contains('{'), "all placeholders rendered: {text}");
    assert_eq!(events.last(), Some(&Event::Finish(FinishReason::Stop)));
}

#[test]
fn a_stream_without_a_terminal_event_is_retried_only_when_nothing_arrived() {
    let up = upstream().on("/responses", Ok(Canned::sse(&[]))).on(
        "/responses",
        Ok(Canned::sse(&[
            "data: {\"type\":\"response.output_text.delta\",\"delta\":\"ok\"}\n\n",
            COMPLETED,
        ])),
    );
    let (r, events) = run(&up);
    r.unwrap();
    assert_eq!(up.count("/responses"), 2, "an empty stream is retried");
    assert_eq!(events[0], Event::TextDelta("ok".into()));

    let up = upstream().on(
        "/responses",
        Ok(Canned::sse(&[
            "data: {\"type\":\"response.created\",\"response\":{}}\n\n",
        ])),
    );
    let (r, _) = run(&up);
    assert_eq!(
        r.unwrap_err().body().code.as_deref(),
        Some("stream_interrupted")
    );
    assert_eq!(
        up.count("/responses"),
        1,
        "not retried once an event arrived"
    );
}

#[test]
fn transport_errors_before_the_first_event_are_retried_at_most_three_times() {
    let up = upstream().on("/responses", Err(TransportError::Connect("refused".into())));
    let (r, _) = run(&up);
    assert_eq!(
        r.unwrap_err().body().code.as_deref(),
        Some("upstream_unreachable")
    );
    assert_eq!(up.count("/responses"), 4);
}

#[test]
fn an_unsupported_responses_endpoint_falls_back_to_chat_completions() {
    let up = upstream()
        .on("/responses", Ok(Canned::json(400, r#"{"error":{"code":"unsupported_endpoint","message":"Responses API not supported for this model"}}"#)))
        .on(
            "/chat/completions",
            Ok(Canned::sse(&[
                "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"via chat\"}}]}\n\n",
                "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\n",
                "data: [DONE]\n\n",
            ])),
        );
    let (r, events) = run(&up);
    r.unwrap();
    assert_eq!(events[0], Event::TextDelta("via chat".into()));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Usage(Usage {
            total_tokens: 3,
            ..
        })
    )));
    let chat = sent_bodies(&up, "/chat/completions");
    assert!(chat[0].get("messages").is_some());
}

#[test]
fn a_rejected_reasoning_effort_is_downgraded_once() {
    assert_eq!(
        downgraded_effort("Supported values are: 'low', 'high'.", "medium").as_deref(),
        Some("high")
    );
    assert_eq!(
        downgraded_effort("Supported values are: 'low', 'medium'.", "xhigh").as_deref(),
        Some("medium")
    );
    assert_eq!(
        downgraded_effort("Supported values are: 'medium', 'high'.", "minimal").as_deref(),
        Some("medium")
    );
    assert_eq!(downgraded_effort("nothing here", "medium"), None);
    let up = upstream()
        .on("/responses", Ok(Canned::json(400, r#"{"error":{"code":400,"message":"Provider returned error","metadata":{"raw":"{\"error\":{\"param\":\"reasoning.effort\",\"code\":\"unsupported_value\",\"message\":\"Unsupported value. Supported values are: 'low', 'high'.\"}}"}}}"#)))
        .on("/responses", Ok(Canned::sse(&["data: {\"type\":\"response.output_text.delta\",\"delta\":\"ok\"}\n\n", COMPLETED])));
    let (r, _) = run(&up);
    r.unwrap();
    let bodies = sent_bodies(&up, "/responses");
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0]["reasoning"]["effort"], "medium");
    assert_eq!(bodies[1]["reasoning"]["effort"], "high");
}

#[test]
fn an_include_thoughts_rejection_retries_without_reasoning() {
    let up = upstream()
        .on("/responses", Ok(Canned::json(400, r#"{"error":{"message":"include_thoughts is only enabled when thinking is enabled"}}"#)))
        .on("/responses", Ok(Canned::sse(&["data: {\"type\":\"response.output_text.delta\",\"delta\":\"ok\"}\n\n", COMPLETED])));
    run(&up).0.unwrap();
    let bodies = sent_bodies(&up, "/responses");
    assert!(bodies[0].get("reasoning").is_some());
    assert!(bodies[1].get("reasoning").is_none());
}

#[test]
fn a_non_sse_success_is_refused_clearly() {
    let up = upstream().on(
        "/responses",
        Ok(Canned {
            headers: vec![("content-type".into(), "text/html".into())],
            ..Canned::json(200, "<html>")
        }),
    );
    let (r, _) = run(&up);
    assert_eq!(
        r.unwrap_err().body().code.as_deref(),
        Some("unexpected_content_type")
    );
}

#[test]
fn an_unknown_model_is_a_404_before_any_upstream_chat_call() {
    let up = upstream();
    let body = br#"{"model":"nope/x","messages":[{"role":"user","content":"hi"}]}"#;
    let (r, _) = run_with(&up, &settings(), &RequestContext::default(), body);
    assert_eq!(r.unwrap_err().body().http_status, 404);
    assert_eq!(up.count("/responses"), 0);
}

#[test]
fn tasks_take_the_non_streaming_path_and_never_error() {
    let ctx = RequestContext {
        task: Some("title_generation".into()),
        openwebui_key: true,
        ..RequestContext::default()
    };
    let body = br####"{"model":"fake/echo","stream":false,"messages":[{"role":"user","content":"### Task: title"}]}"####;
    let up = upstream().on(
        "/responses",
        Ok(Canned::json(200, r#"{"output":[{"type":"message","content":[{"type":"output_text","text":"{\"title\":\"Hi\"}"}]}],"usage":{"input_tokens":3,"output_tokens":2}}"#)),
    );
    let (r, events) = run_with(&up, &settings(), &ctx, body);
    r.unwrap();
    assert_eq!(events[0], Event::TextDelta(r#"{"title":"Hi"}"#.into()));
    let sent = sent_bodies(&up, "/responses");
    assert_eq!(sent[0]["stream"], false);
    assert_eq!(sent[0]["reasoning"]["effort"], "low");

    let up = upstream().on(
        "/responses",
        Ok(Canned::json(500, r#"{"error":{"message":"down"}}"#)),
    );
    let (r, events) = run_with(&up, &settings(), &ctx, body);
    r.unwrap();
    assert!(matches!(&events[0], Event::TextDelta(t) if t.starts_with("[Task error]")));
    assert_eq!(up.count("/responses"), 2, "two attempts");

    let up = upstream().on(
        "/responses",
        Ok(Canned::json(401, r#"{"error":{"message":"bad key"}}"#)),
    );
    let (_, events) = run_with(&up, &settings(), &ctx, body);
    assert_eq!(events[0], Event::TextDelta(r#"{"title":"Chat"}"#.into()));
    assert_eq!(up.count("/responses"), 1, "auth failures stop at once");

    let no_key = Settings::default();
    let (_, events) = run_with(
        &upstream(),
        &no_key,
        &RequestContext {
            task: Some("tags_generation".into()),
            ..ctx.clone()
        },
        body,
    );
    assert_eq!(
        events[0],
        Event::TextDelta(r#"{"tags":["General"]}"#.into())
    );
    // The task prompt shape alone marks a non-streamed request as a task.
    let trusted = RequestContext {
        openwebui_key: true,
        ..RequestContext::default()
    };
    let req = chat_body::parse_chat_body(body).unwrap();
    assert_eq!(task_name(&trusted, &req).as_deref(), Some("task"));
}

#[test]
fn only_a_key_that_may_assert_open_webui_identity_has_tasks() {
    let body = br####"{"model":"fake/echo","stream":false,"messages":[{"role":"user","content":"### Task: title"}]}"####;
    let req = chat_body::parse_chat_body(body).unwrap();
    let plain = RequestContext {
        key_name: "alice".into(),
        task: Some("title_generation".into()),
        ..RequestContext::default()
    };
    assert_eq!(
        task_name(&plain, &req),
        None,
        "neither the header nor the shape"
    );
    // Through the pipe: an ordinary streamed chat, not the task path.
    let up = upstream().on("/responses", Ok(Canned::sse(&[COMPLETED])));
    let (r, _) = run_with(&up, &settings(), &plain, body);
    r.unwrap();
    assert_eq!(sent_bodies(&up, "/responses")[0]["stream"], true);
}

#[test]
fn a_task_naming_a_model_outside_the_allowlist_or_filters_is_refused_like_a_chat() {
    let ctx = RequestContext {
        task: Some("title_generation".into()),
        openwebui_key: true,
        openwebui_caller: true,
        ..RequestContext::default()
    };
    let body = br####"{"model":"fake/echo","stream":false,"messages":[{"role":"user","content":"### Task: title"}]}"####;
    let mut s = settings();
    s.catalog.model_id = "fake/other".into();
    let up = ScriptedUpstream::default().on(
        "/models",
        Ok(Canned::json(
            200,
            r#"{"data":[{"id":"fake/echo","pricing":{"prompt":"0.000001"}},{"id":"fake/other"}]}"#,
        )),
    );
    let (r, events) = run_with(&up, &s, &ctx, body);
    let e = r.unwrap_err();
    assert_eq!(e.body().http_status, 404, "{e:?}");
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(up.count("/responses"), 0, "OpenRouter is not asked");
    let mut s = settings();
    s.catalog.free_model_filter = "only".into();
    let (r, _) = run_with(&up, &s, &ctx, body);
    let e = r.unwrap_err();
    assert_eq!(e.body().code.as_deref(), Some("model_restricted"));
    assert!(e.body().message.contains("FREE_MODEL_FILTER"), "{e:?}");
    assert_eq!(up.count("/responses"), 0);
}

#[test]
fn tasks_carry_the_identifiers_the_valves_enable() {
    let ctx = RequestContext {
        task: Some("title_generation".into()),
        openwebui_key: true,
        user_id: Some("u-1".into()),
        chat_id: Some("c-1".into()),
        cache_session_id: Some("ab12".into()),
        ..RequestContext::default()
    };
    let body = br####"{"model":"fake/echo","stream":false,"user":"spoofed","messages":[{"role":"user","content":"### Task: title"}]}"####;
    let up = upstream().on(
        "/responses",
        Ok(Canned::json(
            200,
            r#"{"output":[{"type":"message","content":[{"type":"output_text","text":"ok"}]}]}"#,
        )),
    );
    let mut s = settings();
    s.request.send_end_user_id = true;
    s.request.send_chat_id = true;
    let (r, _) = run_with(&up, &s, &ctx, body);
    r.unwrap();
    let sent = sent_bodies(&up, "/responses");
    assert_eq!(sent[0]["user"], "u-1");
    assert_eq!(
        sent[0]["metadata"],
        serde_json::json!({"user_id": "u-1", "chat_id": "c-1"})
    );
    assert_eq!(sent[0]["session_id"], "ab12");
}

#[test]
fn timestamps_are_iso_8601_utc() {
    assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
    assert_eq!(iso8601(1_795_000_000_000), "2026-11-18T11:06:40Z");
    assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00Z");
}

#[test]
fn the_internal_error_answer_names_the_failure_the_id_and_the_support_contact() {
    let ctx = RequestContext {
        request_id: "req-1".into(),
        chat_id: Some("chat-9".into()),
        ..RequestContext::default()
    };
    let templates = crate::templates::TemplateSettings {
        support_email: "help@example.test".into(),
        ..Default::default()
    };
    let text = crate::chat::internal_error_text(
        &templates,
        &ctx,
        "0123456789abcdef",
        "guest_trap",
        1_764_547_200_000,
    );
    assert!(text.contains("Unexpected error"), "{text}");
    assert!(text.contains("guest_trap"), "{text}");
    assert!(text.contains("0123456789abcdef"), "{text}");
    assert!(text.contains("help@example.test"), "{text}");
    let custom = crate::templates::TemplateSettings {
        internal_error_template: "Broke: {error_type} [{error_id}] at {timestamp}".into(),
        ..Default::default()
    };
    assert_eq!(
        crate::chat::internal_error_text(
            &custom,
            &ctx,
            "0123456789abcdef",
            "guest_trap",
            1_764_547_200_000
        ),
        "Broke: guest_trap [0123456789abcdef] at 2025-12-01T00:00:00Z"
    );
}

#[test]
fn failed_requests_open_the_users_request_breaker_and_a_success_clears_it() {
    let (kv, env) = (MemKv::default(), FixedEnv::default());
    let mut s = settings();
    s.tools.breaker_max_failures = 2;
    let user = |id: &str| RequestContext {
        user_id: Some(id.into()),
        ..RequestContext::default()
    };
    let failing = upstream().on(
        "/responses",
        Ok(Canned::json(
            500,
            r#"{"error":{"message":"boom","code":500}}"#,
        )),
    );
    let answering = upstream().on(
        "/responses",
        Ok(Canned::sse(&[
            "data: {\"type\":\"response.output_text.delta\",\"delta\":\"hi\"}\n\n",
            COMPLETED,
        ])),
    );
    let go_with = |s: &Settings, up: &ScriptedUpstream, ctx: &RequestContext, body: &[u8]| {
        let mut emit = VecEmit::default();
        let mut pipe = Pipe {
            settings: s,
            upstream: up,
            kv: &kv,
            emit: &mut emit,
            env: &env,
            artifacts: crate::artifacts::Caps::none(),
        };
        block_on(pipe.chat(ctx, body))
    };
    let go = |up: &ScriptedUpstream, ctx: &RequestContext| go_with(&s, up, ctx, BODY);
    let code = |r: Result<(), PipeError>| r.unwrap_err().body().code.clone().unwrap_or_default();
    let one = user("user-1");
    // One failure, then a success: cleared, so two more failures are needed to open it.
    assert!(go(&failing, &one).is_err());
    go(&answering, &one).unwrap();
    assert!(go(&failing, &one).is_err());
    go(&answering, &one).unwrap();
    assert!(go(&failing, &one).is_err());
    assert!(go(&failing, &one).is_err());
    let before = answering.count("/responses");
    assert_eq!(code(go(&answering, &one)), "breaker_open");
    assert_eq!(
        answering.count("/responses"),
        before,
        "OpenRouter is not asked"
    );
    // Another user is not affected.
    go(&answering, &user("user-2")).unwrap();
    // A refused request (a model not in the catalog) does not count.
    let mut strict = s.clone();
    strict.tools.breaker_max_failures = 1;
    let three = user("user-3");
    let unknown =
        br#"{"model":"not/listed","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    assert!(go_with(&strict, &answering, &three, unknown).is_err());
    go_with(&strict, &answering, &three, BODY).unwrap();
}
