//! `GET /v1/models` through the host and the component.

use crate::harness::{Harness, Options};
use serde_json::Value;

async fn models(h: &Harness) -> (u16, Value) {
    let resp = h
        .client
        .get(format!("{}/v1/models", h.url))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_catalog_is_listed_in_openai_form_with_capabilities() {
    let h = Harness::start().await;
    let (status, body) = models(&h).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "list");
    let data = body["data"].as_array().unwrap();
    let ids: Vec<&str> = data.iter().filter_map(|m| m["id"].as_str()).collect();
    assert!(ids.contains(&"fake/echo"), "{ids:?}");
    let gpt = data
        .iter()
        .find(|m| m["id"] == "openai/gpt-4o-2024-08-06")
        .unwrap();
    assert_eq!(gpt["object"], "model");
    assert_eq!(gpt["owned_by"], "openai");
    assert_eq!(gpt["capabilities"]["vision"], true);
    assert_eq!(gpt["capabilities"]["tools"], true);
    assert_eq!(gpt["capabilities"]["web_search"], true);
    assert!(gpt["context_length"].as_u64().unwrap() > 0);
    let claude = data
        .iter()
        .find(|m| m["id"] == "anthropic/claude-sonnet-4.5")
        .unwrap();
    assert_eq!(claude["capabilities"]["reasoning"], true);
    let image = data
        .iter()
        .find(|m| m["capabilities"]["image_output"] == true);
    assert!(image.is_some(), "the image-output model is detected");
    // The request to OpenRouter carried the key (added by the host) and attribution headers.
    let req = h
        .fake
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/models"))
        .unwrap();
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {}", crate::harness::API_KEY).as_str())
    );
    assert!(req.header("http-referer").is_some());
    assert_eq!(req.header("x-openrouter-title"), Some("Responses Pipe"));
}

#[tokio::test]
async fn the_catalog_is_cached_between_requests() {
    let h = Harness::start().await;
    for _ in 0..3 {
        assert_eq!(models(&h).await.0, 200);
    }
    let (status, _) = h.stream_chat("fake/echo", "hi").await;
    assert_eq!(status, 200);
    assert_eq!(
        h.fake.models_requests(),
        1,
        "one catalog fetch serves later listings and chats"
    );
}

#[tokio::test]
async fn the_model_id_allowlist_limits_the_list_and_the_chats() {
    let h = Harness::with(Options {
        env: vec![("MODEL_ID", "fake/echo, openai.gpt-4o".into())],
        ..Options::default()
    })
    .await;
    let (_, body) = models(&h).await;
    let mut ids: Vec<String> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![
            "fake/echo".to_string(),
            "openai/gpt-4o-2024-08-06".to_string()
        ]
    );
    let resp = h
        .post_chat(&Harness::chat_body("fake/reasoning", "hi", false))
        .await;
    assert_eq!(resp.status().as_u16(), 404);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "model_not_found");
}

#[tokio::test]
async fn an_unreachable_catalog_is_a_clear_503() {
    let h = Harness::start().await;
    h.fake.set_models_failing(true);
    let (status, body) = models(&h).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "catalog_unavailable");
    assert!(body["error"]["message"].as_str().unwrap().contains("503"));
    assert!(body["error"]["request_id"].as_str().is_some());
}

#[tokio::test]
async fn an_exact_catalog_id_wins_over_a_dated_version_of_the_same_model() {
    // The catalogue lists `mistralai/mistral-small-2024-09-18` before `mistralai/mistral-small`.
    let h = Harness::start().await;
    // Twice: the first round refreshes the catalogue, the second reads the cached one.
    for _ in 0..2 {
        for (requested, sent) in [
            ("mistralai/mistral-small", "mistralai/mistral-small"),
            (
                "mistralai/mistral-small-2024-09-18",
                "mistralai/mistral-small-2024-09-18",
            ),
            ("mistralai.mistral-small", "mistralai/mistral-small"),
            // No exact id: the date is ignored and the undated model is chosen.
            (
                "mistralai/mistral-small-2023-01-01",
                "mistralai/mistral-small",
            ),
        ] {
            let (status, chunks) = h.stream_chat(requested, "hi").await;
            assert_eq!(status, 200, "{requested}: {chunks:?}");
            assert_eq!(h.last_body("/responses")["model"], sent, "{requested}");
        }
    }
}
