//! The usage line Open WebUI gets at the end of an answer, through the real host and component: a
//! final status event with the time, the cost and the token counts, in the style and with the icons
//! its valves choose, or none at all (the usage itself still arrives).

use crate::harness::{Harness, OWUI, events_of_type, owui_events, status_lines, usage_chunk};

#[tokio::test]
async fn open_webui_gets_a_final_usage_status_line() {
    let h = Harness::start().await;
    let (status, chunks) = h.stream_chat_with("fake/echo", "count me", &OWUI).await;
    assert_eq!(status, 200, "{chunks:?}");
    let last = events_of_type(&chunks, "status")
        .pop()
        .expect("a status event");
    assert_eq!(last["data"]["done"], true, "{last}");
    assert!(
        last["data"]["description"]
            .as_str()
            .unwrap_or_default()
            .contains("tokens"),
        "{last}"
    );
}

#[tokio::test]
async fn the_final_usage_status_line_follows_its_valves() {
    let h = Harness::start().await;
    let (_, chunks) = h.stream_chat_with("fake/reasoning", "count", &OWUI).await;
    let usage = usage_chunk(&chunks);
    let last = status_lines(&chunks).pop().unwrap();
    let tokens = format!(
        "Total tokens: {} (Input: {}, Output: {}, Cached: 2, Reasoning: {})",
        usage["total_tokens"],
        usage["prompt_tokens"],
        usage["completion_tokens"],
        usage["completion_tokens_details"]["reasoning_tokens"]
    );
    assert!(last.starts_with("Time: "), "{last}");
    assert!(last.contains(" | Cost $0.0"), "{last}");
    assert!(last.ends_with(&tokens), "{last} vs {tokens}");
    let done = owui_events(&chunks)
        .into_iter()
        .rfind(|e| e["type"] == "status")
        .unwrap();
    assert_eq!(done["data"]["done"], true);

    let h = Harness::with_env(&[
        ("FINAL_USAGE_STATUS_STYLE", "icons"),
        ("USAGE_STATUS_ICON_SET", "T,C,Sum,In,Out,Hit,Think"),
    ])
    .await;
    let (_, chunks) = h.stream_chat_with("fake/reasoning", "count", &OWUI).await;
    let last = status_lines(&chunks).pop().unwrap();
    assert!(last.starts_with("T "), "{last}");
    assert!(last.contains(" | C 0.0"), "{last}");
    assert!(last.contains(" | Sum "), "{last}");
    for label in ["(In ", ", Out ", ", Hit 2", ", Think "] {
        assert!(last.contains(label), "{label} in {last}");
    }

    let h = Harness::with_env(&[("SHOW_FINAL_USAGE_STATUS", "false")]).await;
    let (_, chunks) = h.stream_chat_with("fake/reasoning", "count", &OWUI).await;
    assert!(
        !status_lines(&chunks).iter().any(|l| l.contains("tokens")),
        "{chunks:?}"
    );
    // The usage itself still reaches Open WebUI.
    assert!(usage_chunk(&chunks)["cost"].as_f64().unwrap() > 0.0);
}
