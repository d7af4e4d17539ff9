//! Reasoning across endpoints through the real host and component: a turn answered over
//! `/chat/completions` stores its signed `reasoning_details` as one Responses `reasoning` item,
//! and the next user turn sends it back as `reasoning_details` on the assistant message when it
//! goes to `/chat/completions`, or as a `reasoning` input item when it goes to `/responses`; a
//! `/responses` turn's reasoning item goes back the same way. `fake/chat-bridge` answers
//! `/responses` as unsupported, so each of its turns tries `/responses` first (that body is
//! recorded and checked against the spec too) and is then answered over `/chat/completions`.
//! Every body the host sends is validated against OpenRouter's spec by the harness.

use crate::harness::{Harness, fresh_chat, marker_ids};
use fake_openrouter::scenarios::{BRIDGE_REASONING, BRIDGE_SIGNATURE, REASONING_SUMMARY};
use serde_json::{Value, json};

const BRIDGE: &str = "fake/chat-bridge";

/// The history of a second turn: the first answer (with its marker lines) in between.
fn second_history(answer: &str) -> Value {
    json!([
        {"role": "user", "content": "hello there"},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "and again"},
    ])
}

/// The detail `fake/chat-bridge` streams, as the pipe reassembles it.
fn bridge_detail() -> Value {
    json!({"type": "reasoning.text", "format": "anthropic-claude-v1", "index": 0,
           "text": BRIDGE_REASONING.concat(), "signature": BRIDGE_SIGNATURE})
}

/// First turn over `/chat/completions`; returns its answer, checked to carry one marker.
async fn first_bridge_turn(h: &Harness, chat: &str) -> String {
    let first = json!([{"role": "user", "content": "hello there"}]);
    let answer = h
        .chat_turn("user-reasoning-replay", BRIDGE, chat, "msg-1", &first)
        .await;
    assert!(answer.starts_with("echo: hello there"), "{answer:?}");
    assert_eq!(
        marker_ids(&answer).len(),
        1,
        "one stored reasoning row, one marker: {answer:?}"
    );
    let sent = h.last_body("/chat/completions");
    assert!(
        sent["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m.get("reasoning_details").is_none()),
        "nothing to replay in the first turn: {sent}"
    );
    answer
}

/// The second turn, with `answer` in its history, to the bridge model; its answer.
async fn second_bridge_turn(h: &Harness, chat: &str, answer: &str) -> String {
    h.chat_turn(
        "user-reasoning-replay",
        BRIDGE,
        chat,
        "msg-2",
        &second_history(answer),
    )
    .await
}

#[tokio::test]
async fn a_chat_path_turns_signed_reasoning_goes_back_on_both_endpoints() {
    let h = Harness::start().await;
    let chat = fresh_chat("both");
    let answer = first_bridge_turn(&h, &chat).await;
    h.fake.clear_requests();

    let second = second_bridge_turn(&h, &chat, &answer).await;
    assert!(second.starts_with("echo: and again"), "{second:?}");

    // The `/responses` attempt carries a spec-valid `reasoning` input item before the answer.
    let responses = h.last_body("/responses");
    let input = responses["input"].as_array().unwrap();
    let kinds: Vec<&str> = input.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["message", "reasoning", "message", "message"],
        "{responses}"
    );
    let item = &input[1];
    assert_eq!(item["signature"], BRIDGE_SIGNATURE, "{item}");
    assert_eq!(item["format"], "anthropic-claude-v1");
    assert_eq!(
        item["content"],
        json!([{"type": "reasoning_text", "text": BRIDGE_REASONING.concat()}])
    );
    assert_eq!(item["summary"], json!([]));
    assert!(item["id"].as_str().unwrap().starts_with("rs_"), "{item}");
    assert!(
        item.as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with('_')),
        "no private key goes upstream: {item}"
    );
    assert_eq!(input[2]["content"][0]["text"], "echo: hello there");

    // The `/chat/completions` fallback carries the signed details on the assistant message.
    let chat_body = h.last_body("/chat/completions");
    let messages = chat_body["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"], "{chat_body}");
    assert_eq!(messages[1]["content"], "echo: hello there");
    assert_eq!(messages[1]["reasoning_details"], json!([bridge_detail()]));
    assert!(messages[2].get("reasoning_details").is_none());
    assert!(
        !chat_body.to_string().contains("]: #"),
        "no marker upstream"
    );
}

#[tokio::test]
async fn a_responses_turns_reasoning_goes_back_as_details_on_the_chat_path() {
    let h = Harness::start().await;
    let chat = fresh_chat("resp-to-chat");
    let first = json!([{"role": "user", "content": "hello there"}]);
    let answer = h
        .chat_turn(
            "user-reasoning-replay",
            "fake/reasoning",
            &chat,
            "msg-1",
            &first,
        )
        .await;
    assert_eq!(marker_ids(&answer).len(), 1, "{answer:?}");
    h.fake.clear_requests();

    second_bridge_turn(&h, &chat, &answer).await;
    let chat_body = h.last_body("/chat/completions");
    let assistant = &chat_body["messages"][1];
    assert_eq!(assistant["role"], "assistant", "{chat_body}");
    let details = assistant["reasoning_details"].as_array().unwrap();
    let summary = details
        .iter()
        .find(|d| d["type"] == "reasoning.summary")
        .unwrap();
    assert_eq!(summary["summary"], REASONING_SUMMARY);
    let encrypted = details
        .iter()
        .find(|d| d["type"] == "reasoning.encrypted")
        .unwrap();
    let id = encrypted["id"].as_str().unwrap();
    assert!(id.starts_with("rs_"), "{encrypted}");
    assert_eq!(
        encrypted["data"],
        json!(format!("gAAAA-fake-encrypted-{id}"))
    );
}

#[tokio::test]
async fn next_reply_deletes_a_chat_path_turns_reasoning_once_it_was_replayed() {
    let h = Harness::with_env(&[("PERSIST_REASONING_TOKENS", "next_reply")]).await;
    let chat = fresh_chat("next-reply");
    let answer = first_bridge_turn(&h, &chat).await;
    let ids = marker_ids(&answer);
    let table = h.app.store.table_name().to_string();
    let stored = h
        .app
        .store
        .get_many(&table, ids.clone(), u64::MAX)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].item_type, "reasoning");

    second_bridge_turn(&h, &chat, &answer).await;
    let replayed = h.last_body("/chat/completions");
    assert_eq!(
        replayed["messages"][1]["reasoning_details"],
        json!([bridge_detail()])
    );
    let left = h.app.store.get_many(&table, ids, u64::MAX).await.unwrap();
    assert!(
        left.is_empty(),
        "the replayed row is deleted after the reply"
    );

    // The same history again: the row is gone, so nothing rides on the answer any more.
    h.chat_turn(
        "user-reasoning-replay",
        BRIDGE,
        &chat,
        "msg-3",
        &second_history(&answer),
    )
    .await;
    let again = h.last_body("/chat/completions");
    assert!(
        again["messages"][1].get("reasoning_details").is_none(),
        "{again}"
    );
}

#[tokio::test]
async fn signed_reasoning_details_a_caller_sends_back_reach_responses_as_a_reasoning_item() {
    let h = Harness::start().await;
    let body = json!({
        "model": "anthropic/claude-sonnet-4.5",
        "stream": true,
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "echo: first", "reasoning_details": [
                {"type": "reasoning.text", "text": "Thinking it over.", "signature": "c2lnbmVk",
                 "format": "anthropic-claude-v1"}]},
            {"role": "user", "content": "second"}
        ],
    });
    let (status, chunks) = h.stream_with(&body, &[]).await;
    assert_eq!(status, 200, "{chunks:?}");
    let sent = h.last_body("/responses");
    let input = sent["input"].as_array().unwrap();
    let reasoning: Vec<&Value> = input.iter().filter(|i| i["type"] == "reasoning").collect();
    assert_eq!(reasoning.len(), 1, "{sent}");
    assert_eq!(reasoning[0]["signature"], "c2lnbmVk");
    assert_eq!(reasoning[0]["content"][0]["text"], "Thinking it over.");
    // It stands right before the answer it belongs to; the harness checks the spec on drop.
    let at = input.iter().position(|i| i["type"] == "reasoning").unwrap();
    assert_eq!(input[at + 1]["role"], "assistant", "{sent}");
}
