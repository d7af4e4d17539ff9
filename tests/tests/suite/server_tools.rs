//! OpenRouter's server-side tools and Fusion through the real host and component: web tools
//! attached only when the chat asks or the default is on, never to image models or when disabled;
//! the Fusion run's statuses and live panel, its endpoint pinned to `/responses`; the web search's
//! "Searched N sites" status and `SHOW_TOOL_CARDS` cards for finished server tools only.

use crate::harness::{
    Harness, OWUI, content_of, json_chunks, owui_events, status_lines, tool_types,
};
use fake_openrouter::scenarios::{FUSION_PANEL, FUSION_SOURCE, SERVER_TOOLS_SEARCH};
use serde_json::{Value, json};

/// The server tools OpenRouter offers a chat that asks for web tools.
const SERVER_TOOLS: [&str; 3] = [
    "openrouter:web_search",
    "openrouter:web_fetch",
    "openrouter:datetime",
];

fn fusion_body() -> Value {
    json!({
        "model": "fake/fusion",
        "stream": true,
        "messages": [{"role": "user", "content": "carbon taxes?"}],
        "tools": [{"type": "openrouter:fusion",
                   "parameters": {"analysis_models": [FUSION_PANEL.0, FUSION_PANEL.2]}}],
    })
}

#[tokio::test]
async fn server_tools_go_to_tool_models_but_never_to_image_models_or_when_disabled() {
    // The chat asks for web tools, as Open WebUI's per-chat switch does.
    let asks = || json!({"openrouter_web_search": true});
    let h = Harness::with_env(&[]).await;
    h.chat_ok("fake/echo", asks(), &[]).await;
    let types = tool_types(&h.last_responses());
    for tool in SERVER_TOOLS {
        assert!(types.contains(&tool.to_string()), "{tool}: {types:?}");
    }
    // An image-output model's providers fail on tool use: no server tool at all.
    let mut draw = Harness::chat_body("fake/image", "draw", true);
    draw["openrouter_web_search"] = json!(true);
    let (status, _) = h.post_with(&draw, &[]).await;
    assert_eq!(status, 200);
    let types = tool_types(&h.last_responses());
    assert!(
        !types.iter().any(|t| t.starts_with("openrouter:")),
        "{types:?}"
    );
    // `disable_native_websearch` strips the search tool and the legacy `web` plugin only.
    h.chat_ok(
        "fake/echo",
        json!({"disable_native_websearch": true, "plugins": [{"id": "web"}],
            "openrouter_web_search": true}),
        &[],
    )
    .await;
    let body = h.last_responses();
    let types = tool_types(&body);
    assert!(
        !types.contains(&"openrouter:web_search".to_string()),
        "{types:?}"
    );
    assert!(
        types.contains(&"openrouter:web_fetch".to_string()),
        "{types:?}"
    );
    assert!(
        !body.to_string().contains("\"web\""),
        "the web plugin is gone: {body}"
    );
    assert!(body.get("disable_native_websearch").is_none());

    let off = Harness::with_env(&[
        ("ENABLE_WEB_SEARCH", "false"),
        ("ENABLE_WEB_FETCH", "false"),
        ("ENABLE_DATETIME", "false"),
    ])
    .await;
    off.chat_ok("fake/echo", asks(), &[]).await;
    let types = tool_types(&off.last_responses());
    for tool in SERVER_TOOLS {
        assert!(!types.contains(&tool.to_string()), "{tool}: {types:?}");
    }
    let search_only =
        Harness::with_env(&[("ENABLE_WEB_FETCH", "false"), ("ENABLE_DATETIME", "false")]).await;
    search_only.chat_ok("fake/echo", asks(), &[]).await;
    let types = tool_types(&search_only.last_responses());
    assert!(
        types.contains(&"openrouter:web_search".to_string()),
        "{types:?}"
    );
    assert!(
        !types.contains(&"openrouter:datetime".to_string()),
        "{types:?}"
    );
    h.assert_spec_clean();
    off.assert_spec_clean();
    search_only.assert_spec_clean();
}

#[tokio::test]
async fn server_tools_are_attached_only_when_the_chat_asks_or_the_default_is_switched_on() {
    let server_tools = |body: &Value| -> Vec<String> {
        tool_types(body)
            .into_iter()
            .filter(|t| t.starts_with("openrouter:"))
            .collect()
    };
    let h = Harness::with_env(&[]).await;
    // Available (ENABLE_WEB_SEARCH and friends are on by default) but not attached unasked.
    for unasked in [json!({}), json!({"openrouter_web_search": false})] {
        h.chat_ok("fake/echo", unasked.clone(), &[]).await;
        let body = h.last_responses();
        assert!(server_tools(&body).is_empty(), "{unasked}: {body}");
        assert!(body.get("openrouter_web_search").is_none(), "{body}");
    }
    h.chat_ok("fake/echo", json!({"openrouter_web_search": true}), &OWUI)
        .await;
    let body = h.last_responses();
    assert_eq!(server_tools(&body), SERVER_TOOLS, "{body}");
    assert!(
        body.get("openrouter_web_search").is_none(),
        "never sent upstream: {body}"
    );

    // AUTO_DEFAULT_WEB_TOOLS_FILTER attaches them to every chat that does not say no.
    let default_on = Harness::with_env(&[("AUTO_DEFAULT_WEB_TOOLS_FILTER", "true")]).await;
    default_on.chat_ok("fake/echo", json!({}), &[]).await;
    assert_eq!(server_tools(&default_on.last_responses()), SERVER_TOOLS);
    default_on
        .chat_ok("fake/echo", json!({"openrouter_web_search": false}), &[])
        .await;
    assert!(server_tools(&default_on.last_responses()).is_empty());
    h.assert_spec_clean();
    default_on.assert_spec_clean();
}

#[tokio::test]
async fn a_fusion_run_is_narrated_live_and_its_panel_saved_once_for_open_webui() {
    // Even a force list that sends the model to /chat/completions cannot take Fusion there.
    let h = Harness::with_env(&[
        ("FORCE_CHAT_COMPLETIONS_MODELS", "fake/fusion"),
        ("PERSIST_REASONING_TOKENS", "disabled"),
    ])
    .await;
    let (status, chunks) = h.stream_with(&fusion_body(), &OWUI).await;
    assert_eq!(status, 200, "{chunks:?}");
    let paths = h.posted_paths();
    assert!(
        !paths.is_empty() && paths.iter().all(|p| p.ends_with("/responses")),
        "{paths:?}"
    );
    let sent = h.fake.requests();
    let body = sent
        .iter()
        .find(|r| r.method == "POST")
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(body["tools"][0]["type"], "openrouter:fusion", "{body}");

    assert_eq!(content_of(&chunks), "echo: carbon taxes?");
    let events = owui_events(&chunks);
    let lines = status_lines(&chunks);
    let (answering, _, failing) = FUSION_PANEL;
    for expected in [
        "Asking the Fusion panel…".to_string(),
        format!("Fusion: {answering} answered (1 of 2)"),
        format!("Fusion: {failing} failed: Upstream provider error (502)"),
        "Fusion: fake/fusion is comparing the answers…".to_string(),
        "Fusion panel finished".to_string(),
    ] {
        assert!(
            lines.contains(&expected),
            "{expected} missing from {lines:?}"
        );
    }
    let live = events
        .iter()
        .filter(|e| e["type"] == "chat:message:embeds")
        .count();
    let saved: Vec<&Value> = events.iter().filter(|e| e["type"] == "embeds").collect();
    assert!(live >= 3, "{live} live redraws");
    assert_eq!(saved.len(), 1, "the panel is saved once: {saved:?}");
    let html = saved[0]["data"]["embeds"][0].as_str().unwrap();
    assert!(html.contains("Carbon taxes &lt;work&gt;."), "{html}");
    assert!(!html.contains("<work>"), "model text is escaped");
    assert!(html.contains("Border adjustments matter."), "{html}");
    assert!(!html.to_ascii_lowercase().contains("<script"));
    let sources: Vec<&Value> = events.iter().filter(|e| e["type"] == "source").collect();
    assert_eq!(sources.len(), 1, "{sources:?}");
    assert_eq!(
        sources[0]["data"]["source"]["url"],
        FUSION_SOURCE.replace("?utm_source=openai", "")
    );
}

#[tokio::test]
async fn a_plain_client_gets_the_answer_and_the_sources_of_a_fusion_run_without_ui_events() {
    let h = Harness::start().await;
    let (status, chunks) = h.stream_with(&fusion_body(), &[]).await;
    assert_eq!(status, 200, "{chunks:?}");
    assert!(owui_events(&chunks).is_empty(), "{chunks:?}");
    let content = content_of(&chunks);
    assert!(content.starts_with("echo: carbon taxes?"), "{content}");
    assert!(!content.contains("Fusion"), "{content}");
    let annotated: Vec<Value> = json_chunks(&chunks)
        .into_iter()
        .flat_map(|c| {
            c["choices"][0]["delta"]["annotations"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    assert!(
        annotated
            .iter()
            .any(|a| a["url_citation"]["url"] == "https://fusion.example/carbon"),
        "{annotated:?}"
    );
}

#[tokio::test]
async fn server_tools_show_searched_n_sites_and_cards_for_finished_calls_only() {
    let h = Harness::with_env(&[
        ("SHOW_TOOL_CARDS", "true"),
        ("PERSIST_REASONING_TOKENS", "disabled"),
    ])
    .await;
    let body = Harness::chat_body("fake/server-tools", "look it up", true);
    let (status, chunks) = h.stream_with(&body, &OWUI).await;
    assert_eq!(status, 200, "{chunks:?}");
    let events = owui_events(&chunks);
    let (query, urls) = SERVER_TOOLS_SEARCH;
    let search = events
        .iter()
        .find(|e| e["type"] == "status" && e["data"]["action"] == "web_search")
        .unwrap_or_else(|| panic!("no web-search status in {events:?}"));
    assert_eq!(search["data"]["description"], "Searched {{count}} sites");
    assert_eq!(search["data"]["query"], query);
    assert_eq!(
        search["data"]["urls"],
        json!([urls[0].replace("?utm_source=openai", ""), urls[1]])
    );
    let lines = status_lines(&chunks);
    assert!(
        lines.contains(&"Searching the web…".to_string()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"Read docs.example".to_string()),
        "{lines:?}"
    );
    assert!(
        lines.contains(
            &"Consulting an advisor model did not work: Advisor unavailable (fake)".to_string()
        ),
        "{lines:?}"
    );
    let content = content_of(&chunks);
    assert_eq!(
        content.matches("<details type=\"tool_calls\"").count(),
        4,
        "{content}"
    );
    for name in [
        "openrouter:web_search",
        "openrouter:web_fetch",
        "openrouter:datetime",
        "file_search_call",
    ] {
        assert!(
            content.contains(&format!("name=\"{name}\"")),
            "{name}: {content}"
        );
    }
    assert!(
        !content.contains("openrouter:advisor"),
        "a failed call gets no card"
    );
    assert!(
        content.contains("2026-12-01T00:00:00.000Z UTC"),
        "{content}"
    );
    assert!(content.ends_with("echo: look it up"), "{content}");
}

#[tokio::test]
async fn without_show_tool_cards_or_for_plain_clients_there_are_no_cards() {
    let h = Harness::with_env(&[("PERSIST_REASONING_TOKENS", "disabled")]).await;
    let body = Harness::chat_body("fake/server-tools", "look it up", true);
    let (status, chunks) = h.stream_with(&body, &OWUI).await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), "echo: look it up");
    assert!(!owui_events(&chunks).is_empty());

    let h = Harness::with_env(&[("SHOW_TOOL_CARDS", "true")]).await;
    let (status, chunks) = h.stream_with(&body, &[]).await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), "echo: look it up");
    assert!(owui_events(&chunks).is_empty(), "{chunks:?}");
}
