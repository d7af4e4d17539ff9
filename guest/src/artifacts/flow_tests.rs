//! Persistence and replay over the in-memory store and crypto, and through the chat path.

use super::*;
use crate::caps::StoreError;
use crate::chat::Pipe;
use crate::chat_body::ChatRequest;
use crate::request::test_support::model;
use crate::request::{
    Identity as ReqIdentity, RequestSettings, build_chat_completions_request,
    build_responses_request,
};
use crate::settings::Settings;
use crate::testing::{
    Canned, FixedEnv, MemCrypto, MemKv, MemStore, NoCrypto, ScriptedUpstream, VecEmit, block_on,
};
use crate::types::{Event, RequestContext};
use serde_json::{Value, json};

const TABLE: &str = "response_items_openrouter_responses_0badc0de";

fn settings() -> ArtifactSettings {
    ArtifactSettings {
        artifact_table: TABLE.into(),
        ..ArtifactSettings::default()
    }
}

fn ctx() -> RequestContext {
    RequestContext {
        chat_id: Some("chat-1".into()),
        message_id: Some("msg-1".into()),
        user_id: Some("user-1".into()),
        openwebui_caller: true,
        ..RequestContext::default()
    }
}

/// A parsed request around already-replayed messages (the chat path replays after parsing).
fn request(body: Value) -> ChatRequest {
    ChatRequest {
        model: body["model"].as_str().unwrap_or_default().to_string(),
        stream: true,
        body: body.as_object().cloned().unwrap_or_default(),
    }
}

fn reasoning(n: u32) -> Value {
    json!({"type": "reasoning", "id": format!("rs_{n}"), "summary": [], "encrypted_content": format!("gAAAA-secret-{n}"), "status": "completed"})
}

fn call(id: &str) -> Value {
    json!({"type": "function_call", "id": format!("fc_{id}"), "call_id": id, "name": "lookup", "arguments": "{\"q\":1}", "status": "completed"})
}

fn output(id: &str, text: &str) -> Value {
    json!({"type": "function_call_output", "call_id": id, "output": text})
}

struct World {
    store: MemStore,
    crypto: MemCrypto,
    kv: MemKv,
    env: FixedEnv,
}

impl World {
    fn new() -> Self {
        World {
            store: MemStore::default(),
            crypto: MemCrypto::default(),
            kv: MemKv::default(),
            env: FixedEnv::default(),
        }
    }
    fn caps(&self) -> Caps<'_> {
        Caps {
            store: &self.store,
            crypto: &self.crypto,
        }
    }
    fn persist(
        &self,
        s: &ArtifactSettings,
        c: &RequestContext,
        items: &[Value],
    ) -> persist::Outcome {
        persist::persist(
            self.caps(),
            s,
            &self.kv,
            &self.env,
            c,
            1,
            items,
            self.env.now.get(),
        )
    }
    fn replay(
        &self,
        s: &ArtifactSettings,
        c: &RequestContext,
        messages: &mut Vec<Value>,
    ) -> replay::Replayed {
        replay::apply(self.caps(), s, &self.kv, &self.env, c, messages)
    }
}

#[test]
fn reasoning_is_stored_sealed_with_one_marker_per_row() {
    let w = World::new();
    let items = [
        reasoning(1),
        json!({"type": "message", "role": "assistant", "content": []}),
        reasoning(2),
    ];
    let out = w.persist(&settings(), &ctx(), &items);
    assert_eq!(out.stored.len(), 2);
    assert_eq!(out.notice, None);
    assert_eq!(out.markers, markers::block(&out.stored));
    let rows = w.store.rows(TABLE);
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter().all(|r| r.chat_id == "chat-1"
            && r.message_id == "msg-1"
            && r.item_type == "reasoning")
    );
    assert!(rows.iter().all(|r| codec::is_sealed(&r.payload)));
    assert!(
        rows.iter()
            .all(|r| !String::from_utf8_lossy(&r.payload).contains("secret"))
    );
    assert_eq!(
        w.store
            .calls
            .borrow()
            .iter()
            .filter(|c| c.starts_with("put_many"))
            .count(),
        1,
        "one batch"
    );
}

#[test]
fn nothing_is_stored_without_a_chat_id_when_disabled_or_without_encrypted_content() {
    let w = World::new();
    let api = RequestContext {
        chat_id: None,
        ..ctx()
    };
    assert_eq!(
        w.persist(&settings(), &api, &[reasoning(1)]),
        persist::Outcome::default()
    );
    let disabled = ArtifactSettings {
        persist_reasoning_tokens: "disabled".into(),
        ..settings()
    };
    assert_eq!(
        w.persist(&disabled, &ctx(), &[reasoning(1)]),
        persist::Outcome::default()
    );
    let bare = json!({"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text", "text": "x"}]});
    assert_eq!(
        w.persist(&settings(), &ctx(), &[bare]),
        persist::Outcome::default()
    );
    let no_table = ArtifactSettings {
        artifact_table: String::new(),
        ..settings()
    };
    assert_eq!(
        w.persist(&no_table, &ctx(), &[reasoning(1)]),
        persist::Outcome::default()
    );
    assert!(w.store.calls.borrow().is_empty());
}

#[test]
fn tool_items_are_stored_only_when_enabled_and_failed_outputs_never() {
    let w = World::new();
    let items = [
        call("c1"),
        output("c1", "42"),
        json!({"type": "function_call_output", "call_id": "c2", "output": "x", "status": "failed"}),
    ];
    assert!(w.persist(&settings(), &ctx(), &items).stored.is_empty());
    let on = ArtifactSettings {
        persist_tool_results: true,
        encrypt_all: false,
        ..settings()
    };
    let out = w.persist(&on, &ctx(), &items);
    assert_eq!(out.stored.len(), 2);
    let rows = w.store.rows(TABLE);
    assert_eq!(
        rows.iter()
            .map(|r| r.item_type.as_str())
            .collect::<Vec<_>>(),
        ["function_call", "function_call_output"]
    );
    assert!(
        rows.iter().all(|r| !codec::is_sealed(&r.payload)),
        "ENCRYPT_ALL off: only reasoning is sealed"
    );
}

#[test]
fn a_missing_message_id_is_derived_stably_from_chat_and_turn() {
    let c = RequestContext {
        message_id: None,
        ..ctx()
    };
    let a = persist::message_id(&c, "chat-1", 3);
    assert_eq!(a, persist::message_id(&c, "chat-1", 3));
    assert_ne!(a, persist::message_id(&c, "chat-1", 4));
    assert_ne!(a, persist::message_id(&c, "chat-2", 3));
    assert!(a.len() <= 64);
    assert_eq!(persist::message_id(&ctx(), "chat-1", 3), "msg-1");
}

#[test]
fn a_store_or_crypto_failure_skips_persistence_with_a_notice_and_the_breaker_opens_then_closes() {
    let w = World::new();
    let s = ArtifactSettings {
        breaker_max_failures: 2,
        ..settings()
    };
    *w.store.fail.borrow_mut() = Some(StoreError::Unavailable("down".into()));
    for _ in 0..2 {
        let out = w.persist(&s, &ctx(), &[reasoning(1)]);
        assert!(out.stored.is_empty() && out.markers.is_empty());
        assert_eq!(out.notice, Some(persist::NOTICE_FAILED));
    }
    let calls = w.store.calls.borrow().len();
    let out = w.persist(&s, &ctx(), &[reasoning(1)]);
    assert_eq!(out.notice, Some(persist::NOTICE_BREAKER));
    assert_eq!(
        w.store.calls.borrow().len(),
        calls,
        "no store call while open"
    );
    // The database comes back and the window passes: persistence resumes by itself.
    *w.store.fail.borrow_mut() = None;
    w.env.now.set(w.env.now.get() + 61_000);
    assert_eq!(w.persist(&s, &ctx(), &[reasoning(1)]).stored.len(), 1);
    // A crypto failure is handled the same way.
    w.crypto.fail.set(true);
    let out = w.persist(&s, &ctx(), &[reasoning(2)]);
    assert_eq!(out.notice, Some(persist::NOTICE_FAILED));
    assert_eq!(w.store.len(TABLE), 1);
}

fn history(markers: &str) -> Vec<Value> {
    vec![
        json!({"role": "user", "content": "first"}),
        json!({"role": "assistant", "content": format!("The answer.{markers}")}),
        json!({"role": "user", "content": "second"}),
    ]
}

#[test]
fn replay_puts_reasoning_before_the_answer_and_strips_the_markers() {
    let w = World::new();
    let stored = w.persist(&settings(), &ctx(), &[reasoning(1)]);
    let mut messages = history(&stored.markers);
    let r = w.replay(&settings(), &ctx(), &mut messages);
    assert_eq!(r.items, 1);
    assert_eq!(r.missing, 0);
    assert_eq!(r.reasoning_ids, stored.stored);
    assert_eq!(
        w.store
            .calls
            .borrow()
            .iter()
            .filter(|c| c.starts_with("get_many"))
            .count(),
        1
    );
    assert_eq!(messages.len(), 4);
    assert_eq!(
        replay::item_of(&messages[1]).unwrap()["encrypted_content"],
        "gAAAA-secret-1"
    );
    assert_eq!(
        messages[2],
        json!({"role": "assistant", "content": "The answer."})
    );

    // Through the real request builder: the item sits between the user turn and the answer.
    let m = model("openai/gpt-5");
    let req = request(json!({"model": "openai/gpt-5", "messages": messages}));
    let id = ReqIdentity::default();
    let built = build_responses_request(&req, &m, &RequestSettings::default(), &id, false).unwrap();
    let input = built.body["input"].as_array().unwrap();
    let types: Vec<&str> = input
        .iter()
        .map(|i| i["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(types, ["message", "reasoning", "message", "message"]);
    assert_eq!(input[1]["encrypted_content"], "gAAAA-secret-1");
    assert_eq!(input[1]["id"], "rs_1");
    assert!(input[1].get("status").is_none());
    assert_eq!(input[2]["content"][0]["text"], "The answer.");
    // The chat-completions rendering carries it as `reasoning_details` on the answer.
    let chat =
        build_chat_completions_request(&req, &m, &RequestSettings::default(), &id, false).unwrap();
    assert!(!chat.body.to_string().contains("_replayed_item"));
    let sent = chat.body["messages"].as_array().unwrap();
    assert_eq!(sent.len(), 3);
    assert_eq!(
        sent[1]["reasoning_details"],
        json!([{"type": "reasoning.encrypted", "data": "gAAAA-secret-1", "id": "rs_1", "index": 0}])
    );
    assert_eq!(sent[1]["content"], "The answer.");
}

#[test]
fn replayed_tool_calls_keep_their_order_and_orphans_are_dropped() {
    let w = World::new();
    let on = ArtifactSettings {
        persist_tool_results: true,
        ..settings()
    };
    let first = w.persist(
        &on,
        &ctx(),
        &[reasoning(1), call("c1"), output("c1", "42"), call("c2")],
    );
    assert_eq!(first.stored.len(), 4);
    let mut messages = vec![
        json!({"role": "user", "content": "q"}),
        json!({"role": "assistant", "content": format!("Looking it up.{}\nIt is 42.", first.markers)}),
        json!({"role": "user", "content": "thanks"}),
    ];
    w.replay(&on, &ctx(), &mut messages);
    let m = model("openai/gpt-5");
    let req = request(json!({"model": "openai/gpt-5", "messages": messages}));
    let built = build_responses_request(
        &req,
        &m,
        &RequestSettings::default(),
        &ReqIdentity::default(),
        false,
    )
    .unwrap();
    let input = built.body["input"].as_array().unwrap();
    let kinds: Vec<String> = input
        .iter()
        .map(|i| {
            format!(
                "{}:{}",
                i["type"].as_str().unwrap_or(""),
                i["call_id"].as_str().or(i["role"].as_str()).unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "message:user",
            "reasoning:",
            "function_call:c1",
            "function_call_output:c1",
            "message:assistant",
            "message:assistant",
            "message:user"
        ],
        "c2 has no output and is dropped"
    );
    assert_eq!(input[4]["content"][0]["text"], "Looking it up.");
    assert_eq!(input[5]["content"][0]["text"], "It is 42.");
}

#[test]
fn missing_foreign_and_unreadable_rows_are_skipped_and_markers_still_stripped() {
    let w = World::new();
    let stored = w.persist(
        &settings(),
        &ctx(),
        &[reasoning(1), reasoning(2), reasoning(3)],
    );
    let ids = stored.stored.clone();
    // Row 2 is moved to another chat, row 3 is deleted.
    {
        let mut tables = w.store.tables.borrow_mut();
        let t = tables.get_mut(TABLE).unwrap();
        t.iter_mut().find(|r| r.id == ids[1]).unwrap().chat_id = "chat-2".into();
        t.retain(|r| r.id != ids[2]);
    }
    let mut messages = history(&stored.markers);
    let r = w.replay(&settings(), &ctx(), &mut messages);
    assert_eq!((r.items, r.missing), (1, 2));
    assert_eq!(messages.len(), 4);
    assert!(!messages.iter().any(|m| m.to_string().contains("]: #")));
    assert!(
        w.env
            .logs
            .borrow()
            .iter()
            .any(|l| l.contains("another chat"))
    );
    // A payload copied onto another row's id does not open.
    {
        let mut tables = w.store.tables.borrow_mut();
        let t = tables.get_mut(TABLE).unwrap();
        let payload = t[0].payload.clone();
        t.push(Row {
            owner: ctx().owner(),
            ..row(&ids[2], "chat-1", "msg-1", "reasoning", payload, 0)
        });
    }
    let mut messages = history(&stored.markers);
    let r = w.replay(&settings(), &ctx(), &mut messages);
    assert_eq!((r.items, r.foreign), (1, 0));
}

#[test]
fn another_principal_claiming_the_same_chat_gets_nothing_replayed() {
    let w = World::new();
    // Unsealed too (no key): the owner check alone must keep the rows out.
    let plain = World {
        crypto: MemCrypto::disabled(),
        ..World::new()
    };
    for (world, sealed) in [(&w, true), (&plain, false)] {
        let stored = world.persist(&settings(), &ctx(), &[reasoning(1), reasoning(2)]);
        assert_eq!(stored.stored.len(), 2);
        for r in world.store.rows(TABLE) {
            assert_eq!(r.owner, ctx().owner());
            assert_eq!(codec::is_sealed(&r.payload), sealed);
        }
        let intruders = [
            RequestContext {
                user_id: Some("user-2".into()),
                ..ctx()
            },
            RequestContext {
                key_name: "another-key".into(),
                ..ctx()
            },
            RequestContext {
                user_id: None,
                ..ctx()
            },
        ];
        for intruder in &intruders {
            let mut messages = history(&stored.markers);
            let r = world.replay(&settings(), intruder, &mut messages);
            assert_eq!((r.items, r.foreign, r.missing), (0, 2, 2), "{intruder:?}");
            assert!(
                !messages
                    .iter()
                    .any(|m| m.to_string().contains("gAAAA-secret")),
                "{messages:?}"
            );
            assert!(!messages.iter().any(|m| m.to_string().contains("]: #")));
        }
        assert!(world.env.logs.borrow().iter().any(|l| {
            l.starts_with(crate::caps::DEBUG_LOG_PREFIX) && l.contains("another owner")
        }));
        // The owner still gets them back.
        let mut messages = history(&stored.markers);
        assert_eq!(world.replay(&settings(), &ctx(), &mut messages).items, 2);
    }
    // Relabelling a sealed row with the intruder's owner does not open it either: the owner is
    // in the associated data.
    let stored = w.persist(&settings(), &ctx(), &[reasoning(3)]);
    let intruder = RequestContext {
        user_id: Some("user-2".into()),
        ..ctx()
    };
    {
        let mut tables = w.store.tables.borrow_mut();
        let t = tables.get_mut(TABLE).unwrap();
        let r = t.iter_mut().find(|r| r.id == stored.stored[0]).unwrap();
        r.owner = intruder.owner();
    }
    let mut messages = history(&stored.markers);
    let r = w.replay(&settings(), &intruder, &mut messages);
    assert_eq!((r.items, r.foreign), (0, 0));
}

#[test]
fn rows_without_an_owner_are_never_replayed() {
    let w = World {
        crypto: MemCrypto::disabled(),
        ..World::new()
    };
    let stored = w.persist(&settings(), &ctx(), &[reasoning(1)]);
    {
        let mut tables = w.store.tables.borrow_mut();
        for r in tables.get_mut(TABLE).unwrap().iter_mut() {
            r.owner.clear();
        }
    }
    let mut messages = history(&stored.markers);
    let r = w.replay(&settings(), &ctx(), &mut messages);
    assert_eq!((r.items, r.foreign), (0, 1));
}

#[test]
fn a_plain_row_of_a_type_that_must_be_sealed_is_refused() {
    let w = World::new();
    let s = ArtifactSettings {
        persist_tool_results: true,
        ..settings()
    };
    let stored = w.persist(&s, &ctx(), &[reasoning(1), call("c1")]);
    assert_eq!(stored.stored.len(), 2);
    // Someone with write access to the table (but not the key) plants plain payloads with the
    // right owner, chat and types.
    {
        let plain = World {
            crypto: MemCrypto::disabled(),
            ..World::new()
        };
        let mut tables = w.store.tables.borrow_mut();
        for r in tables.get_mut(TABLE).unwrap().iter_mut() {
            let item = if r.item_type == "reasoning" {
                json!({"type": "reasoning", "summary": [], "encrypted_content": "gAAAA-planted"})
            } else {
                json!({"type": "function_call", "call_id": "c1", "name": "planted", "arguments": "{}"})
            };
            let identity = codec::Identity {
                table: TABLE,
                id: &r.id,
                chat_id: &r.chat_id,
                item_type: &r.item_type,
                owner: &r.owner,
            };
            r.payload = codec::encode(&s, &plain.crypto, &identity, &item).unwrap();
            assert!(!codec::is_sealed(&r.payload));
        }
    }
    let mut messages = history(&stored.markers);
    let r = w.replay(&s, &ctx(), &mut messages);
    assert_eq!((r.items, r.unsealed), (0, 2));
    assert!(!messages.iter().any(|m| m.to_string().contains("planted")));
    assert!(
        w.env
            .logs
            .borrow()
            .iter()
            .any(|l| l.contains("refused 2 unsealed rows"))
    );
    // Without ENCRYPT_ALL only reasoning must be sealed: the plain tool call is replayed.
    let only_reasoning = ArtifactSettings {
        encrypt_all: false,
        ..s.clone()
    };
    let mut messages = history(&stored.markers);
    let r = w.replay(&only_reasoning, &ctx(), &mut messages);
    assert_eq!((r.items, r.unsealed), (1, 1));
    // Without a key plain rows are what is expected.
    let mut messages = history(&stored.markers);
    let r = replay::apply(
        Caps {
            store: &w.store,
            crypto: &MemCrypto::disabled(),
        },
        &s,
        &w.kv,
        &w.env,
        &ctx(),
        &mut messages,
    );
    assert_eq!((r.items, r.unsealed), (2, 0));
}

#[test]
fn a_store_failure_during_replay_is_a_notice_and_the_text_is_still_clean() {
    let w = World::new();
    let stored = w.persist(&settings(), &ctx(), &[reasoning(1)]);
    *w.store.fail.borrow_mut() = Some(StoreError::Timeout);
    let mut messages = history(&stored.markers);
    let r = w.replay(&settings(), &ctx(), &mut messages);
    assert_eq!(r.notice, Some(replay::NOTICE_FAILED));
    assert_eq!(
        messages[1],
        json!({"role": "assistant", "content": "The answer."})
    );
    // Without a key, a sealed row is not readable (typed, skipped).
    *w.store.fail.borrow_mut() = None;
    let nokey = Caps {
        store: &w.store,
        crypto: &NoCrypto,
    };
    let mut messages = history(&stored.markers);
    let r = replay::apply(nokey, &settings(), &w.kv, &w.env, &ctx(), &mut messages);
    assert_eq!((r.items, r.missing), (0, 1));
}

// ---- through the chat path -----------------------------------------------------------------

const MODELS: &str = r#"{"data":[{"id":"fake/reasoner","supported_parameters":["reasoning"]}]}"#;

fn stream_with_reasoning() -> Canned {
    let item =
        r#"{"type":"reasoning","id":"rs_9","summary":[],"encrypted_content":"gAAAA-turn-one"}"#;
    Canned::sse(&[
        &format!("data: {{\"type\":\"response.output_item.done\",\"item\":{item}}}\n\n"),
        "data: {\"type\":\"response.output_text.delta\",\"delta\":\"Hello.\"}\n\n",
        &format!(
            "data: {{\"type\":\"response.completed\",\"response\":{{\"status\":\"completed\",\"output\":[{item},{{\"type\":\"message\",\"role\":\"assistant\",\"id\":\"m1\",\"content\":[{{\"type\":\"output_text\",\"text\":\"Hello.\"}}]}}],\"usage\":{{\"input_tokens\":1,\"output_tokens\":1,\"total_tokens\":2}}}}}}\n\n"
        ),
    ])
}

fn chat(
    w: &World,
    s: &Settings,
    c: &RequestContext,
    body: &Value,
) -> (Vec<Event>, ScriptedUpstream) {
    // Both endpoints answer: `/responses` with a reasoning item, `/chat/completions` (forced
    // models) with signed `reasoning_details`.
    let up = ScriptedUpstream::default()
        .on("/models", Ok(Canned::json(200, MODELS)))
        .on("/chat/completions", Ok(chat_stream_with_signed_details()))
        .on("/responses", Ok(stream_with_reasoning()));
    let mut emit = VecEmit::default();
    let mut pipe = Pipe {
        settings: s,
        upstream: &up,
        kv: &w.kv,
        emit: &mut emit,
        env: &w.env,
        artifacts: w.caps(),
    };
    block_on(pipe.chat(c, body.to_string().as_bytes())).unwrap();
    (emit.events, up)
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

fn pipe_settings() -> Settings {
    let mut s = Settings::default();
    s.openrouter.api_key_configured = true;
    s.streaming.streaming_delta_char_limit = 0;
    s.artifacts = settings();
    s
}

#[test]
fn two_turns_through_the_chat_path_replay_the_first_turns_reasoning() {
    let w = World::new();
    let s = pipe_settings();
    let turn1 = json!({"model": "fake/reasoner", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let (events, _) = chat(&w, &s, &ctx(), &turn1);
    let answer = text_of(&events);
    assert!(answer.starts_with("Hello.\n\n["), "{answer}");
    assert_eq!(markers::ids(&answer).len(), 1);
    assert!(matches!(events.last(), Some(Event::Finish(_))));
    assert_eq!(w.store.len(TABLE), 1);

    let turn2 = json!({"model": "fake/reasoner", "stream": true, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "again"},
    ]});
    let c2 = RequestContext {
        message_id: Some("msg-2".into()),
        ..ctx()
    };
    let (_, up) = chat(&w, &s, &c2, &turn2);
    let sent: Value = up
        .requests
        .borrow()
        .iter()
        .filter(|r| r.url.ends_with("/responses"))
        .map(|r| serde_json::from_slice(r.body.as_ref().unwrap()).unwrap())
        .next_back()
        .unwrap();
    let input = sent["input"].as_array().unwrap();
    assert_eq!(input[1]["type"], "reasoning");
    assert_eq!(input[1]["encrypted_content"], "gAAAA-turn-one");
    assert_eq!(input[2]["content"][0]["text"], "Hello.");
    assert!(!sent.to_string().contains("]: #"));
    // `conversation` keeps the row; the second turn stored its own.
    assert_eq!(w.store.len(TABLE), 2);
}

#[test]
fn next_reply_deletes_replayed_reasoning_after_the_reply() {
    let w = World::new();
    let mut s = pipe_settings();
    s.artifacts.persist_reasoning_tokens = "next_reply".into();
    let turn1 = json!({"model": "fake/reasoner", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let (events, _) = chat(&w, &s, &ctx(), &turn1);
    let first_ids = markers::ids(&text_of(&events));
    let turn2 = json!({"model": "fake/reasoner", "stream": true, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": text_of(&events)},
        {"role": "user", "content": "again"},
    ]});
    chat(&w, &s, &ctx(), &turn2);
    let left: Vec<String> = w.store.rows(TABLE).into_iter().map(|r| r.id).collect();
    assert_eq!(left.len(), 1);
    assert!(!left.contains(&first_ids[0]));
}

#[test]
fn a_broken_store_never_fails_the_chat_and_owui_callers_get_a_notice() {
    let w = World::new();
    *w.store.fail.borrow_mut() = Some(StoreError::Unavailable("connection refused".into()));
    let s = pipe_settings();
    let turn1 = json!({"model": "fake/reasoner", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let (events, _) = chat(&w, &s, &ctx(), &turn1);
    assert_eq!(text_of(&events), "Hello.");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::OpenWebUiEvent(j) if j.contains("could not be saved")))
    );
    assert!(matches!(events.last(), Some(Event::Finish(_))));
}

#[test]
fn a_forged_history_is_read_within_the_hosts_caps() {
    let w = World::new();
    let env = FixedEnv::default();
    let ids: Vec<String> = (0..600).map(|_| ulid::new(&env)).collect();
    let mut messages = history(&markers::block(&ids));
    let r = w.replay(&settings(), &ctx(), &mut messages);
    assert_eq!(r.missing, replay::MAX_IDS);
    assert_eq!(
        w.store
            .calls
            .borrow()
            .iter()
            .filter(|c| *c == "get_many 512")
            .count(),
        1
    );
    assert_eq!(
        messages[1],
        json!({"role": "assistant", "content": "The answer."})
    );
    // And a turn with more items than one batch may hold stores the first batch's worth.
    let many: Vec<Value> = (0..300).map(reasoning).collect();
    assert_eq!(
        w.persist(&settings(), &ctx(), &many).stored.len(),
        persist::MAX_ROWS
    );
    let long_chat = RequestContext {
        chat_id: Some("c".repeat(65)),
        ..ctx()
    };
    assert!(
        w.persist(&settings(), &long_chat, &[reasoning(1)])
            .stored
            .is_empty()
    );
}

#[test]
fn replayed_tool_outputs_are_pruned_like_live_ones() {
    let w = World::new();
    let on = ArtifactSettings {
        persist_tool_results: true,
        ..settings()
    };
    let long = "x".repeat(5_000);
    let first = w.persist(&on, &ctx(), &[call("c1"), output("c1", &long)]);
    let mut messages = vec![
        json!({"role": "user", "content": "q"}),
        json!({"role": "assistant", "content": format!("Done.{}", first.markers)}),
        json!({"role": "user", "content": "next"}),
        json!({"role": "assistant", "content": "ok"}),
        json!({"role": "user", "content": "and next"}),
    ];
    w.replay(&on, &ctx(), &mut messages);
    let m = model("openai/gpt-5");
    let req = request(json!({"model": "openai/gpt-5", "messages": messages}));
    let rs = RequestSettings {
        tool_output_retention_turns: 1,
        ..RequestSettings::default()
    };
    let built = build_responses_request(&req, &m, &rs, &ReqIdentity::default(), false).unwrap();
    let out = built.body["input"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call_output")
        .unwrap()
        .clone();
    let text = out["output"].as_str().unwrap();
    assert!(text.len() < 1_000 && text.contains("pruned"), "{text}");
    // Within the retention window it is sent whole.
    let rs = RequestSettings {
        tool_output_retention_turns: 10,
        ..RequestSettings::default()
    };
    let built = build_responses_request(&req, &m, &rs, &ReqIdentity::default(), false).unwrap();
    assert!(built.body.to_string().contains(&long));
}

#[test]
fn during_a_key_rotation_rows_of_the_previous_table_replay_and_are_cleaned_up() {
    const PREVIOUS: &str = "response_items_openrouter_responses_01d0c0de";
    let w = World::new();
    let before = ArtifactSettings {
        artifact_table: PREVIOUS.into(),
        ..ArtifactSettings::default()
    };
    let old = w.persist(&before, &ctx(), &[reasoning(1)]);
    let rotating = ArtifactSettings {
        artifact_table_previous: PREVIOUS.into(),
        ..settings()
    };
    let new = w.persist(&rotating, &ctx(), &[reasoning(2)]);
    assert_eq!((w.store.len(PREVIOUS), w.store.len(TABLE)), (1, 1));
    let mut messages = history(&format!("{}{}", old.markers, new.markers));
    w.store.calls.borrow_mut().clear();
    let r = w.replay(&rotating, &ctx(), &mut messages);
    assert_eq!((r.items, r.missing), (2, 0));
    // The current table is asked first; only what is missing there is asked of the previous one.
    let gets: Vec<String> = w
        .store
        .calls
        .borrow()
        .iter()
        .filter(|c| c.starts_with("get_many") || c.starts_with("open"))
        .cloned()
        .collect();
    assert_eq!(
        gets,
        [
            format!("open {TABLE}"),
            "get_many 2".to_string(),
            format!("open {PREVIOUS}"),
            "get_many 1".to_string()
        ]
    );
    // Retention covers both tables.
    w.env.now.set(w.env.now.get() + 400 * 24 * 3_600_000);
    let deleted = crate::artifacts::maintain(&rotating, &w.store, &w.env).unwrap();
    assert_eq!(deleted, 2);
    assert_eq!((w.store.len(PREVIOUS), w.store.len(TABLE)), (0, 0));
}

// ---- a `/chat/completions` turn's reasoning_details, across endpoints -----------------------

/// A chat stream with two signed thinking blocks (one `reasoning_details` item cannot hold both
/// losslessly) and the answer "Hi.".
fn chat_stream_with_signed_details() -> Canned {
    let d = |fields: &str| {
        format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"reasoning_details\":[{{\"type\":\"reasoning.text\",\"format\":\"anthropic-claude-v1\",{fields}}}]}}}}]}}\n\n"
        )
    };
    Canned::sse(&[
        &d(r#""index":0,"text":"First.""#),
        &d(r#""index":0,"signature":"sig-a""#),
        &d(r#""index":1,"text":"Second.","signature":"sig-b""#),
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi.\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    ])
}

fn last_body(up: &ScriptedUpstream, suffix: &str) -> Value {
    up.requests
        .borrow()
        .iter()
        .filter(|r| r.url.ends_with(suffix))
        .map(|r| serde_json::from_slice(r.body.as_ref().unwrap()).unwrap())
        .next_back()
        .unwrap()
}

#[test]
fn a_chat_path_turns_signed_details_are_stored_and_replayed_on_either_endpoint() {
    let w = World::new();
    let mut s = pipe_settings();
    s.artifacts.persist_reasoning_tokens = "next_reply".into();
    s.endpoint.force_chat_completions_models = "fake/reasoner".into();
    let turn1 = json!({"model": "fake/reasoner", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let (events, _) = chat(&w, &s, &ctx(), &turn1);
    let answer = text_of(&events);
    let ids = markers::ids(&answer);
    assert_eq!(ids.len(), 1, "{answer}");
    let rows = w.store.rows(TABLE);
    assert_eq!(rows[0].item_type, "reasoning");
    assert_ne!(rows[0].payload[0], 0, "sealed like any reasoning row");
    let original = json!([
        {"type": "reasoning.text", "format": "anthropic-claude-v1", "index": 0, "text": "First.", "signature": "sig-a"},
        {"type": "reasoning.text", "format": "anthropic-claude-v1", "index": 1, "text": "Second.", "signature": "sig-b"},
    ]);
    let history = json!({"model": "fake/reasoner", "stream": true, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "again"},
    ]});

    // Next turn on `/chat/completions`: the original details ride on the answer they belong to.
    let (_, up) = chat(&w, &s, &ctx(), &history);
    let sent = last_body(&up, "/chat/completions");
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["content"], "Hi.");
    assert_eq!(messages[1]["reasoning_details"], original);
    assert!(!sent.to_string().contains(chat_reasoning::ORIGINAL_DETAILS));
    // `next_reply`: the replayed row is gone once that reply is done (its own row stays).
    let left: Vec<String> = w.store.rows(TABLE).into_iter().map(|r| r.id).collect();
    assert!(!left.contains(&ids[0]), "{left:?}");

    // The same history on `/responses` (a fresh store with the first turn only).
    let w = World::new();
    let (events, _) = chat(&w, &s, &ctx(), &turn1);
    s.endpoint.force_chat_completions_models = "".into();
    let history = json!({"model": "fake/reasoner", "stream": true, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": text_of(&events)},
        {"role": "user", "content": "again"},
    ]});
    let (_, up) = chat(&w, &s, &ctx(), &history);
    let sent = last_body(&up, "/responses");
    let item = &sent["input"][1];
    assert_eq!(item["type"], "reasoning");
    assert!(
        item["id"]
            .as_str()
            .unwrap()
            .starts_with(chat_reasoning::ID_PREFIX)
    );
    assert_eq!(item["signature"], "sig-a");
    assert_eq!(item["format"], "anthropic-claude-v1");
    assert_eq!(
        item["content"],
        json!([{"type": "reasoning_text", "text": "First."}, {"type": "reasoning_text", "text": "Second."}])
    );
    assert!(
        item.get(chat_reasoning::ORIGINAL_DETAILS).is_none(),
        "{item}"
    );
    assert_eq!(sent["input"][2]["content"][0]["text"], "Hi.");
}
