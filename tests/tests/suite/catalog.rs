//! The model catalog and model ids through the real host and component: `GET /v1/models` in OpenAI
//! form with capabilities, limits and prices; the catalog cached between requests; an exact id
//! winning over a dated version; the `MODEL_ID` allowlist; the free-model, tool-calling and ZDR
//! filters on the list and the chats; variants and preset variants; ZDR enforcement and per-chat
//! ZDR requests; an unreachable catalog or ZDR list.

use crate::harness::{Harness, content_of};
use serde_json::{Value, json};

/// A chat the filters refuse: 403 `model_restricted` naming `reason`, nothing sent upstream.
async fn assert_restricted(h: &Harness, model: &str, reason: &str) {
    let before = h.post_count();
    let (status, text) = h
        .post_with(&Harness::chat_body(model, "hi", false), &[])
        .await;
    assert_eq!(status, 403, "{model}: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "model_restricted", "{v}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(reason), "{model}: {message}");
    assert_eq!(
        h.post_count(),
        before,
        "nothing was sent upstream for {model}"
    );
}

#[tokio::test]
async fn the_catalog_is_listed_in_openai_form_with_capabilities() {
    let h = Harness::start().await;
    let (status, body) = h.models().await;
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
async fn the_model_list_carries_capabilities_limits_and_prices() {
    let h = Harness::start().await;
    let models = h.listed().await;
    let find = |id: &str| models.iter().find(|m| m["id"] == id).unwrap().clone();
    let gemini = find("google/gemini-2.5-flash");
    for flag in [
        "vision",
        "audio_input",
        "video_input",
        "file_input",
        "reasoning",
        "tools",
    ] {
        assert_eq!(gemini["capabilities"][flag], true, "{flag}: {gemini}");
    }
    assert_eq!(gemini["capabilities"]["image_output"], false);
    assert_eq!(gemini["context_length"], 1_048_576);
    assert_eq!(gemini["max_output_tokens"], 65_535);
    let llama = find("meta-llama/llama-3.3-70b-instruct:free");
    assert_eq!(llama["capabilities"]["tools"], false);
    assert_eq!(llama["capabilities"]["vision"], false);
    assert_eq!(llama["capabilities"]["reasoning"], false);
    assert_eq!(
        llama["capabilities"]["file_input"], true,
        "PDFs go through OpenRouter's parser for every model"
    );
    assert_eq!(llama["pricing"]["prompt"], "0");
    let image = find("fake/image");
    assert_eq!(image["capabilities"]["image_output"], true);
    assert_eq!(image["capabilities"]["tools"], true);
    let gpt = find("openai/gpt-4o-2024-08-06");
    assert_eq!(gpt["pricing"]["completion"], "0.00001");
    assert_eq!(gpt["max_output_tokens"], 16_384);
}

#[tokio::test]
async fn the_catalog_is_cached_between_requests() {
    let h = Harness::start().await;
    for _ in 0..3 {
        assert_eq!(h.models().await.0, 200);
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
async fn an_unreachable_catalog_is_a_clear_503() {
    let h = Harness::start().await;
    h.fake.set_models_failing(true);
    let (status, body) = h.models().await;
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

#[tokio::test]
async fn the_model_id_allowlist_limits_the_list_and_the_chats() {
    let h = Harness::with_env(&[("MODEL_ID", "fake/echo, openai.gpt-4o")]).await;
    let (_, body) = h.models().await;
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
async fn the_free_model_filter_hides_paid_models_and_refuses_chats_to_them() {
    let h = Harness::with_env(&[("FREE_MODEL_FILTER", "only")]).await;
    let ids = h.listed_ids().await;
    assert!(
        ids.contains(&"meta-llama/llama-3.3-70b-instruct:free".to_string()),
        "{ids:?}"
    );
    assert!(!ids.contains(&"fake/echo".to_string()), "{ids:?}");
    let (status, text) = h
        .post_with(&Harness::chat_body("fake/echo", "hi", false), &[])
        .await;
    assert_eq!(status, 403, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["code"], "model_restricted", "{body}");
    assert!(
        h.posted_bodies("/responses").is_empty(),
        "nothing was sent upstream"
    );
}

#[tokio::test]
async fn the_free_model_filter_exclude_hides_free_models_and_refuses_them() {
    let h = Harness::with_env(&[("FREE_MODEL_FILTER", "exclude")]).await;
    let ids = h.listed_ids().await;
    assert!(ids.contains(&"fake/echo".to_string()), "{ids:?}");
    assert!(
        !ids.iter().any(|id| id.ends_with(":free")),
        "free models are hidden: {ids:?}"
    );
    assert_restricted(
        &h,
        "meta-llama/llama-3.3-70b-instruct:free",
        "FREE_MODEL_FILTER=exclude",
    )
    .await;
}

#[tokio::test]
async fn the_tool_calling_filter_keeps_or_drops_tool_capable_models() {
    let only = Harness::with_env(&[("TOOL_CALLING_FILTER", "only")]).await;
    let ids = only.listed_ids().await;
    assert!(ids.contains(&"fake/echo".to_string()), "{ids:?}");
    for hidden in [
        "meta-llama/llama-3.3-70b-instruct:free",
        "openai/gpt-image-1",
    ] {
        assert!(!ids.contains(&hidden.to_string()), "{hidden}: {ids:?}");
    }
    assert_restricted(
        &only,
        "meta-llama/llama-3.3-70b-instruct:free",
        "TOOL_CALLING_FILTER=only",
    )
    .await;
    only.chat_ok("fake/echo", json!({}), &[]).await;

    let exclude = Harness::with_env(&[("TOOL_CALLING_FILTER", "exclude")]).await;
    let ids = exclude.listed_ids().await;
    assert!(
        ids.contains(&"meta-llama/llama-3.3-70b-instruct:free".to_string()),
        "{ids:?}"
    );
    assert!(!ids.contains(&"fake/echo".to_string()), "{ids:?}");
    assert_restricted(&exclude, "fake/echo", "TOOL_CALLING_FILTER=exclude").await;
    only.assert_spec_clean();
}

#[tokio::test]
async fn a_configured_variant_is_listed_and_sent_upstream_under_its_own_id() {
    let h = Harness::with_env(&[("VARIANT_MODELS", "fake/echo:nitro")]).await;
    let ids = h.listed_ids().await;
    assert!(ids.contains(&"fake/echo:nitro".to_string()), "{ids:?}");
    let (status, chunks) = h.stream_chat("fake/echo:nitro", "fast").await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), "echo: fast");
    let sent = h.posted_bodies("/responses");
    assert_eq!(sent[0]["model"], "fake/echo:nitro");
}

#[tokio::test]
async fn variants_inherit_their_base_and_preset_variants_go_to_chat_completions_as_at_preset() {
    let h = Harness::with_env(&[(
        "VARIANT_MODELS",
        "fake/echo:nitro, fake/echo@preset/fast, nobody/missing:nitro",
    )])
    .await;
    let models = h.listed().await;
    let find = |id: &str| models.iter().find(|m| m["id"] == id).cloned();
    let base = find("fake/echo").unwrap();
    let nitro = find("fake/echo:nitro").expect("the :nitro variant is listed");
    assert_eq!(nitro["capabilities"], base["capabilities"]);
    assert_eq!(nitro["context_length"], base["context_length"]);
    assert!(nitro["name"].as_str().unwrap().contains("nitro"), "{nitro}");
    let preset = find("fake/echo:preset/fast").expect("the preset variant is listed");
    assert_eq!(preset["capabilities"], base["capabilities"]);
    assert!(
        find("nobody/missing:nitro").is_none(),
        "a variant of an unknown base is not invented"
    );

    h.chat_ok("fake/echo:nitro", json!({}), &[]).await;
    assert_eq!(h.last_responses()["model"], "fake/echo:nitro");

    // A preset only works on /chat/completions, under OpenRouter's `base@preset/slug` spelling.
    h.chat_ok("fake/echo:preset/fast", json!({}), &[]).await;
    let chats = h.posted_bodies("/chat/completions");
    assert_eq!(chats.len(), 1, "{chats:?}");
    assert_eq!(chats[0]["model"], "fake/echo@preset/fast");
    assert_eq!(
        h.posted_bodies("/responses").len(),
        1,
        "only the nitro chat"
    );
    h.assert_spec_clean();
}

#[tokio::test]
async fn zdr_enforcement_routes_zdr_models_and_refuses_the_rest() {
    let h = Harness::with_env(&[("ZDR_ENFORCE", "true")]).await;
    let (status, chunks) = h.stream_chat("fake/echo", "private").await;
    assert_eq!(status, 200, "{chunks:?}");
    let sent = h.posted_bodies("/responses");
    assert_eq!(sent[0]["provider"]["zdr"], true);
    let resp = h
        .post_chat(&Harness::chat_body("fake/reasoning", "x", false))
        .await;
    assert_eq!(resp.status().as_u16(), 403);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_restricted");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ZDR_ENFORCE")
    );
    let ids = h.listed_ids().await;
    assert!(
        ids.contains(&"fake/echo".to_string()) && !ids.contains(&"fake/reasoning".to_string()),
        "{ids:?}"
    );
}

#[tokio::test]
async fn zdr_models_only_lists_and_serves_only_models_with_a_zdr_endpoint() {
    let h = Harness::with_env(&[("ZDR_MODELS_ONLY", "true")]).await;
    let mut ids = h.listed_ids().await;
    ids.sort();
    assert_eq!(ids, ["fake/echo", "openai/gpt-4o-2024-08-06"]);
    assert_restricted(&h, "fake/reasoning", "ZDR_MODELS_ONLY").await;
    h.chat_ok("fake/echo", json!({}), &[]).await;
    h.assert_spec_clean();
}

#[tokio::test]
async fn an_unreachable_zdr_list_leaves_zdr_unknown_so_only_enforcement_refuses() {
    // ZDR_MODELS_ONLY with an unknown list is skipped: every model stays listed and usable.
    let h = Harness::with_env(&[("ZDR_MODELS_ONLY", "true")]).await;
    h.fake.set_zdr_failing(true);
    let ids = h.listed_ids().await;
    assert!(
        ids.contains(&"fake/reasoning".to_string()) && ids.contains(&"fake/echo".to_string()),
        "{ids:?}"
    );
    h.chat_ok("fake/reasoning", json!({}), &[]).await;
    assert!(
        h.fake
            .requests()
            .iter()
            .any(|r| r.path == "/api/v1/endpoints/zdr"),
        "the ZDR list was asked for"
    );
    h.assert_spec_clean();

    // ZDR_ENFORCE cannot vouch for any model then, not even one that has a ZDR endpoint.
    let enforced = Harness::with_env(&[("ZDR_ENFORCE", "true")]).await;
    enforced.fake.set_zdr_failing(true);
    assert_restricted(&enforced, "fake/echo", "ZDR_ENFORCE_UNAVAILABLE").await;
    assert!(enforced.listed_ids().await.is_empty());
}

#[tokio::test]
async fn a_per_chat_zdr_request_routes_to_zdr_endpoints_when_users_may_ask() {
    let h = Harness::with_env(&[]).await;
    h.chat_ok("fake/echo", json!({"zdr": true}), &[]).await;
    let body = h.last_responses();
    assert_eq!(body["provider"]["zdr"], true, "{body}");
    assert!(body.get("zdr").is_none());
    // A model without a ZDR endpoint cannot honour the request.
    let (status, text) = h
        .post_with(
            &json!({"model": "fake/reasoning", "stream": false, "zdr": true,
                "messages": [{"role": "user", "content": "hi"}]}),
            &[],
        )
        .await;
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("model_restricted") && text.contains("ZDR_ENFORCE"),
        "{text}"
    );
    // Without the request nothing is pinned.
    h.chat_ok("fake/reasoning", json!({}), &[]).await;
    assert!(h.last_responses()["provider"].get("zdr").is_none());

    let locked = Harness::with_env(&[("ALLOW_USER_ZDR_OVERRIDE", "false")]).await;
    locked
        .chat_ok("fake/reasoning", json!({"zdr": true}), &[])
        .await;
    let body = locked.last_responses();
    assert!(body["provider"].get("zdr").is_none(), "{body}");
    h.assert_spec_clean();
    locked.assert_spec_clean();
}
