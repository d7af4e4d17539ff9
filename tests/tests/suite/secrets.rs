//! The OpenRouter key reaches OpenRouter, and nowhere else: not the guest, not the logs, not an
//! error body.

use crate::harness::{API_KEY, Harness, Options, logs_text};
use serde_json::Value;

#[tokio::test]
async fn the_key_reaches_the_upstream_but_not_the_guest_or_the_logs() {
    let h = Harness::start().await;
    let (status, _) = h.stream_chat("fake/echo", "hi").await;
    assert_eq!(status, 200);
    let (status, _) = h.stream_chat("fake/status-401", "hi").await;
    assert_eq!(status, 401);
    let reqs = h.fake.requests();
    assert!(!reqs.is_empty());
    for r in &reqs {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {API_KEY}").as_str()),
            "{}",
            r.path
        );
    }

    // What the guest can see: its settings, environment and arguments.
    let hostile = std::fs::read(env!("HOSTILE_WASM")).unwrap();
    let g = Harness::with(Options {
        component: Some(hostile),
        ..Options::default()
    })
    .await;
    let resp = g
        .post_chat(&Harness::chat_body("hostile/introspect", "", false))
        .await;
    let v: Value = resp.json().await.unwrap();
    let seen = v["error"]["message"].as_str().unwrap();
    assert!(seen.contains("BASE_URL"), "the introspection ran: {seen}");
    assert!(seen.contains("\"API_KEY_CONFIGURED\":true"), "{seen}");
    assert!(!seen.contains(API_KEY), "the guest saw the key");
    assert!(!seen.contains("SECRET"), "{seen}");

    let logs = logs_text();
    assert!(logs.contains("request"), "the log capture works");
    assert!(!logs.contains(API_KEY), "the key appears in the logs");
}
