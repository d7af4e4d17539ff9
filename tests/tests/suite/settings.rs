//! The settings table through the real host and component: what reaches the component, what a
//! setting of an unbuilt feature does (named at start-up, never silently taken for working),
//! and the settings whose docs say exactly when they act.

use crate::harness::{Harness, OWUI, logs_text};
use serde_json::{Value, json};

/// The component's settings document carries exactly the settings the table says it reads.
#[tokio::test]
async fn the_component_gets_only_the_settings_it_reads() {
    let h = Harness::with_env(&[("SESSION_LOG_DIR", "elsewhere")]).await;
    let doc: serde_json::Map<String, Value> =
        serde_json::from_str(h.app.config.guest_settings_json()).unwrap();
    let expected: Vec<&str> = responses_pipe_host::config::VALVES
        .iter()
        .filter(|s| s.sent_to_guest())
        .map(|s| s.name)
        .chain([
            "API_KEY_CONFIGURED",
            "ARTIFACT_TABLE",
            "ARTIFACT_TABLE_PREVIOUS",
        ])
        .collect();
    let mut got: Vec<&str> = doc.keys().map(String::as_str).collect();
    let mut want = expected.clone();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
    assert!(!doc.contains_key("SESSION_LOG_DIR"), "an unbuilt setting");
    assert!(
        !doc.contains_key("MAX_CONCURRENT_REQUESTS"),
        "a host setting"
    );
    // And the component works from it.
    let (status, chunks) = h.stream_chat("fake/echo", "hello").await;
    assert_eq!(status, 200, "{chunks:?}");
}

/// `SEND_SESSION_ID` acts only when a session id reaches the pipe, and none does: the setting is
/// named at start-up, the chat id still goes out with `SEND_CHAT_ID`, and no session id is made
/// up. An unbuilt feature's setting (`REMOTE_FILE_MAX_SIZE_MB`) is named the same way.
#[tokio::test]
async fn send_session_id_and_unbuilt_settings_are_named_at_start_up_and_change_nothing() {
    let h = Harness::with_env(&[
        ("SEND_SESSION_ID", "true"),
        ("SEND_CHAT_ID", "true"),
        ("REMOTE_FILE_MAX_SIZE_MB", "10"),
        ("STREAMING_EVENT_QUEUE_MAXSIZE", "7"),
    ])
    .await;
    let logs = logs_text();
    for key in ["SEND_SESSION_ID", "REMOTE_FILE_MAX_SIZE_MB"] {
        assert!(
            logs.lines()
                .any(|l| l.contains("WARN") && l.contains(&format!("setting {key} has no effect"))),
            "{key} not named at start-up"
        );
    }
    assert!(
        logs.lines().any(|l| l.contains("INFO")
            && l.contains("setting STREAMING_EVENT_QUEUE_MAXSIZE is accepted but has no meaning")),
        "the ignored setting is noted"
    );
    let body = json!({"model": "fake/echo", "stream": true,
                      "messages": [{"role": "user", "content": "hi"}],
                      "session_id": "client-chosen"});
    let (status, chunks) = h.stream_with(&body, &OWUI).await;
    assert_eq!(status, 200, "{chunks:?}");
    let sent = h.last_body("/responses");
    assert_eq!(sent["metadata"], json!({"chat_id": "chat-7"}), "{sent}");
    assert!(sent.get("session_id").is_none(), "{sent}");
}

/// A start with default settings names nothing, and the unbuilt features' defaults describe what
/// the server does: no Redis, hosted Fusion, no advisor tool offered.
#[tokio::test]
async fn a_default_start_reports_nothing_and_offers_only_built_server_tools() {
    let h = Harness::start().await;
    let c = &h.app.config;
    assert!(c.start_up_notes().is_empty(), "{:?}", c.start_up_notes());
    assert_eq!(c.get("FUSION_BACKEND"), Some(&Value::from("openrouter")));
    assert_eq!(c.get("ENABLE_REDIS_CACHE"), Some(&Value::Bool(false)));
    // The chat asks for web tools, as Open WebUI's per-chat switch does.
    let mut body = Harness::chat_body("fake/echo", "hi", true);
    body["openrouter_web_search"] = serde_json::json!(true);
    let (status, chunks) = h.stream_with(&body, &OWUI).await;
    assert_eq!(status, 200, "{chunks:?}");
    let sent = h.last_body("/responses");
    let tools: Vec<&str> = sent["tools"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["type"].as_str()).collect())
        .unwrap_or_default();
    // The built server tools are offered; the unbuilt ones, off by default here, are not.
    assert!(tools.contains(&"openrouter:web_search"), "{sent}");
    assert!(tools.contains(&"openrouter:datetime"), "{sent}");
    assert!(!tools.contains(&"openrouter:advisor"), "{sent}");
    assert!(!tools.contains(&"openrouter:subagent"), "{sent}");
}
