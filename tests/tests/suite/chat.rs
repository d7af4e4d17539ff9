//! Streamed and non-streamed chats, reasoning, usage and cost.

use crate::harness::{Harness, content_of, field_of, json_chunks};
use serde_json::Value;

#[tokio::test]
async fn a_streamed_chat_relays_text_then_usage_with_cost_then_done() {
    let h = Harness::start().await;
    let (status, chunks) = h.stream_chat("fake/echo", "hello there world").await;
    assert_eq!(status, 200);
    assert_eq!(content_of(&chunks), "echo: hello there world");
    assert_eq!(chunks.last().map(String::as_str), Some("[DONE]"));
    let json = json_chunks(&chunks);
    assert!(json.iter().all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(json[0]["choices"][0]["delta"]["role"], "assistant");
    let finish = json
        .iter()
        .find(|c| c["choices"][0]["finish_reason"].is_string())
        .unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = &json.last().unwrap()["usage"];
    assert_eq!(json.last().unwrap()["choices"], serde_json::json!([]));
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 2);
    assert!(usage["cost"].as_f64().unwrap() > 0.0);
    // What went upstream: a Responses request with stream:true and the user text as input_text.
    let req = h
        .fake
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/responses"))
        .unwrap();
    let body = req.json().unwrap();
    assert_eq!(body["stream"], true);
    assert_eq!(body["model"], "fake/echo");
    assert_eq!(body["input"][0]["content"][0]["type"], "input_text");
    assert_eq!(body["input"][0]["content"][0]["text"], "hello there world");
    assert_eq!(req.header("accept"), Some("text/event-stream"));
}

#[tokio::test]
async fn a_non_streamed_chat_is_one_completion_with_the_same_usage() {
    let h = Harness::start().await;
    let resp = h
        .post_chat(&Harness::chat_body("fake/echo", "one two", false))
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers().get("x-request-id").is_some());
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], "echo: one two");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(v["usage"]["cost"].as_f64().unwrap() > 0.0);
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn reasoning_streams_as_delta_reasoning_before_the_answer() {
    let h = Harness::start().await;
    let (status, chunks) = h.stream_chat("fake/reasoning", "think").await;
    assert_eq!(status, 200);
    let reasoning = field_of(&chunks, "reasoning");
    assert!(!reasoning.is_empty());
    let first_reasoning = chunks
        .iter()
        .position(|c| c.contains("\"reasoning\""))
        .unwrap();
    let first_content = chunks
        .iter()
        .position(|c| c.contains("\"content\""))
        .unwrap();
    assert!(first_reasoning < first_content, "reasoning comes first");
    assert_eq!(content_of(&chunks), "echo: think");
    let json = json_chunks(&chunks);
    let usage = &json.last().unwrap()["usage"];
    assert!(
        usage["completion_tokens_details"]["reasoning_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn a_slow_stream_is_relayed_live_not_buffered() {
    let h = Harness::start().await;
    let started = std::time::Instant::now();
    let mut resp = h
        .post_chat(&Harness::chat_body("fake/slow", "x", true))
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let mut first_content_at = None;
    let mut body = String::new();
    let mut last_content_at = started.elapsed();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        let text = String::from_utf8_lossy(&chunk);
        if text.contains("\"content\"") {
            last_content_at = started.elapsed();
            first_content_at.get_or_insert(last_content_at);
        }
        body.push_str(&text);
    }
    // The harness's fake spaces its 20 deltas 40 ms apart (760 ms from first to last). A relay that buffered
    // the stream would deliver them together; a live one spreads them over most of that time. Load
    // only widens the gaps, so this checks live delivery, not speed.
    let spread = last_content_at - first_content_at.unwrap();
    assert!(
        spread >= std::time::Duration::from_millis(300),
        "content arrived within {spread:?}: the stream was buffered"
    );
    assert_eq!(
        content_of(&crate::harness::sse_data(&body))
            .matches("tok")
            .count(),
        20
    );
}

#[tokio::test]
async fn concurrent_streams_each_get_their_own_answer() {
    let h = Harness::start().await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let client = h.client.clone();
        let url = format!("{}/v1/chat/completions", h.url);
        tasks.push(tokio::spawn(async move {
            let marker = format!("marker{i}");
            let resp = client
                .post(url)
                .json(&Harness::chat_body("fake/echo", &marker, true))
                .send()
                .await
                .unwrap();
            let text = resp.text().await.unwrap();
            (marker, content_of(&crate::harness::sse_data(&text)))
        }));
    }
    for t in tasks {
        let (marker, content) = t.await.unwrap();
        assert_eq!(content, format!("echo: {marker}"));
    }
}

#[tokio::test]
async fn graceful_shutdown_lets_an_in_flight_stream_finish() {
    let mut h = Harness::start().await;
    let mut resp = h
        .post_chat(&Harness::chat_body("fake/slow", "x", true))
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(!first.is_empty());
    h.shutdown();
    let mut body = String::from_utf8_lossy(&first).into_owned();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        body.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        body.trim_end().ends_with("data: [DONE]"),
        "the stream completed: {body}"
    );
    let server = h.server.take().unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn upstream_request_bodies_go_out_with_content_length_not_chunked() {
    let h = Harness::start().await;
    let (status, _) = h.stream_chat("fake/echo", "measure this body").await;
    assert_eq!(status, 200);
    let resp = h
        .post_chat(&Harness::chat_body("fake/echo", "and this one", false))
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let posts: Vec<_> = h
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 2);
    for r in &posts {
        assert_eq!(
            r.header("content-length"),
            Some(r.body.len().to_string().as_str()),
            "{}: {:?}",
            r.path,
            r.headers
        );
        assert!(
            r.header("transfer-encoding").is_none(),
            "{}: {:?}",
            r.path,
            r.headers
        );
    }
}
