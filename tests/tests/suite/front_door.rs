//! Bad input at the front door: clear 4xx errors in OpenAI form (malformed and mistyped bodies, an
//! empty conversation, an unknown model, an oversized body), request ids on every response, JSON 404s
//! for unknown routes.

use crate::harness::Harness;
use serde_json::Value;

async fn post_raw(h: &Harness, body: Vec<u8>) -> (u16, Value) {
    let resp = h
        .client
        .post(format!("{}/v1/chat/completions", h.url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn malformed_and_mistyped_bodies_are_400_with_a_clear_message() {
    let h = Harness::start().await;
    for (body, needle) in [
        (b"{not json".to_vec(), "not valid JSON"),
        (b"[1,2]".to_vec(), "JSON object"),
        (br#"{"messages":[]}"#.to_vec(), "`model`"),
        (
            br#"{"model":5,"messages":[]}"#.to_vec(),
            "`model` must be a string",
        ),
        (
            br#"{"model":"fake/echo","stream":"yes","messages":[]}"#.to_vec(),
            "`stream`",
        ),
        (
            br#"{"model":"fake/echo","messages":"hi"}"#.to_vec(),
            "`messages`",
        ),
        (
            br#"{"model":"fake/echo","messages":[{"role":"wizard","content":"x"}]}"#.to_vec(),
            "role",
        ),
        (
            format!("{}1{}", "[".repeat(200), "]".repeat(200)).into_bytes(),
            "not valid JSON",
        ),
    ] {
        let (status, v) = post_raw(&h, body).await;
        assert_eq!(status, 400, "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg} should mention {needle}");
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
}

#[tokio::test]
async fn an_empty_conversation_is_400_invalid_body_and_nothing_is_sent_upstream() {
    let h = Harness::start().await;
    for (what, messages) in [
        ("no messages", serde_json::json!([])),
        (
            "only a system message",
            serde_json::json!([{"role": "system", "content": "be brief"}]),
        ),
        (
            "a system message without content",
            serde_json::json!([{"role": "system", "content": null}]),
        ),
        (
            "instructions and an empty user message",
            serde_json::json!([{"role": "developer", "content": "x"},
                               {"role": "user", "content": " "}]),
        ),
    ] {
        for stream in [true, false] {
            let body =
                serde_json::json!({"model": "fake/echo", "stream": stream, "messages": messages});
            let (status, v) = post_raw(&h, serde_json::to_vec(&body).unwrap()).await;
            assert_eq!(status, 400, "{what}: {v}");
            assert_eq!(v["error"]["type"], "invalid_request_error", "{what}: {v}");
            assert_eq!(v["error"]["code"], "invalid_body", "{what}: {v}");
            let msg = v["error"]["message"].as_str().unwrap();
            assert!(msg.contains("messages"), "{what}: {msg}");
        }
    }
    let sent: Vec<String> = h
        .posted_paths()
        .into_iter()
        .filter(|p| p.ends_with("/responses") || p.ends_with("/chat/completions"))
        .collect();
    assert!(sent.is_empty(), "nothing reaches OpenRouter: {sent:?}");
}

#[tokio::test]
async fn an_unknown_model_is_404() {
    let h = Harness::start().await;
    let (status, v) = post_raw(
        &h,
        serde_json::to_vec(&Harness::chat_body("nobody/nothing", "hi", true)).unwrap(),
    )
    .await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["error"]["code"], "model_not_found");
    assert!(
        h.fake
            .requests()
            .iter()
            .all(|r| !r.path.ends_with("/responses"))
    );
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let h = Harness::with_env(&[("MAX_REQUEST_BODY_BYTES", "4096")]).await;
    let big = Harness::chat_body("fake/echo", &"x".repeat(10_000), true);
    let (status, v) = post_raw(&h, serde_json::to_vec(&big).unwrap()).await;
    assert_eq!(status, 413, "{v}");
    assert_eq!(v["error"]["code"], "body_too_large");
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_unknown_routes_are_json_404() {
    let h = Harness::start().await;
    let resp = h
        .client
        .get(format!("{}/v1/nothing", h.url))
        .header("x-request-id", "my-req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(resp.headers().get("x-request-id").unwrap(), "my-req-42");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["request_id"], "my-req-42");
    let metrics = h.metrics().await;
    assert!(metrics.contains("responses_pipe_requests_running"));
}
