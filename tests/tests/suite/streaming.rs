//! What a caller receives while the answer streams, through the real host and component: text
//! relayed live, then usage with cost, then `[DONE]`; the same answer as one `chat.completion` when
//! not streamed; 40 concurrent streams apart; a graceful shutdown that lets a stream finish; deltas
//! coalesced by the streaming valves; citations as annotations or Open WebUI sources; answers cut by
//! the token limit; generated images; answers and reasoning sent without deltas or as a refusal.

use crate::harness::{
    Harness, OWUI, content_of, events_of_type, field_of, json_chunks, owui_events,
};
use fake_openrouter::scenarios::INCOMPLETE_DELTAS;
use serde_json::{Value, json};

/// A text of many short words, so coalescing has something to merge.
const LONG_TEXT: &str = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima";

/// The `delta.content` pieces, one per chunk that carries text.
fn content_chunks(chunks: &[String]) -> Vec<String> {
    json_chunks(chunks)
        .iter()
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .filter(|t| !t.is_empty())
        .collect()
}

fn finish_reasons(chunks: &[String]) -> Vec<String> {
    json_chunks(chunks)
        .iter()
        .filter_map(|c| {
            c["choices"][0]["finish_reason"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

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
async fn zero_limits_relay_each_upstream_delta_as_its_own_chunk() {
    let h = Harness::with_env(&[
        ("STREAMING_DELTA_CHAR_LIMIT", "0"),
        ("STREAMING_IDLE_FLUSH_MS", "0"),
    ])
    .await;
    let (status, chunks) = h.stream_chat("fake/echo", LONG_TEXT).await;
    assert_eq!(status, 200);
    let answer = format!("echo: {LONG_TEXT}");
    let upstream: Vec<&str> = answer.split_inclusive(' ').collect();
    assert_eq!(content_chunks(&chunks), upstream);
}

#[tokio::test]
async fn deltas_are_merged_up_to_the_char_limit_and_flushed_at_the_end() {
    // Idle and burst flushes out of the way: only the size limit and the end of the answer flush.
    let quiet = [
        ("STREAMING_IDLE_FLUSH_MS", "600000"),
        ("STREAMING_NAGLE_MIN_FLUSH_CHARS", "100000"),
    ];
    let answer = format!("echo: {LONG_TEXT}");

    let h =
        Harness::with_env(&[quiet[0], quiet[1], ("STREAMING_DELTA_CHAR_LIMIT", "100000")]).await;
    let (status, chunks) = h.stream_chat("fake/echo", LONG_TEXT).await;
    assert_eq!(status, 200);
    assert_eq!(content_chunks(&chunks), std::slice::from_ref(&answer));

    let h = Harness::with_env(&[quiet[0], quiet[1], ("STREAMING_DELTA_CHAR_LIMIT", "12")]).await;
    let (status, chunks) = h.stream_chat("fake/echo", LONG_TEXT).await;
    assert_eq!(status, 200);
    // What a 12-byte limit makes of the upstream words: flushed as soon as 12 are held.
    let mut expected = Vec::new();
    let mut held = String::new();
    for word in answer.split_inclusive(' ') {
        held.push_str(word);
        if held.len() >= 12 {
            expected.push(std::mem::take(&mut held));
        }
    }
    if !held.is_empty() {
        expected.push(held);
    }
    assert!(expected.len() > 1 && expected.len() < answer.split(' ').count());
    assert_eq!(content_chunks(&chunks), expected);
}

#[tokio::test]
async fn the_burst_and_idle_rules_flush_between_spaced_deltas() {
    let answer_chunks = |chunks: &[String]| {
        let pieces = content_chunks(chunks);
        assert_eq!(pieces.concat().matches("tok").count(), 20, "{pieces:?}");
        pieces.len()
    };
    let base = [
        ("STREAMING_DELTA_CHAR_LIMIT", "100000"),
        ("STREAMING_IDLE_FLUSH_MS", "600000"),
        ("STREAMING_NAGLE_MIN_FLUSH_CHARS", "100000"),
    ];
    // No rule fires: the 20 spaced deltas of `fake/slow` arrive as one chunk.
    let h = Harness::with_env(&base).await;
    let (_, chunks) = h.stream_chat("fake/slow", "x").await;
    assert_eq!(answer_chunks(&chunks), 1);
    // The burst rule: a drained burst holding ≥ 1 char is flushed; the deltas are 40 ms apart.
    let h = Harness::with_env(&[base[0], base[1], ("STREAMING_NAGLE_MIN_FLUSH_CHARS", "1")]).await;
    let (_, chunks) = h.stream_chat("fake/slow", "x").await;
    assert!(answer_chunks(&chunks) > 1);
    // The idle rule: held text is flushed after 1 ms without events.
    let h = Harness::with_env(&[base[0], ("STREAMING_IDLE_FLUSH_MS", "1"), base[2]]).await;
    let (_, chunks) = h.stream_chat("fake/slow", "x").await;
    assert!(answer_chunks(&chunks) > 1);
}

#[tokio::test]
async fn citations_reach_plain_callers_as_deduplicated_annotations_without_tracking_tags() {
    let h = Harness::start().await;
    let (status, chunks) = h.stream_chat("fake/citations", "cite").await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), "echo: cite");
    let urls: Vec<String> = json_chunks(&chunks)
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["annotations"].as_array().cloned())
        .flatten()
        .inspect(|a| assert_eq!(a["type"], "url_citation"))
        .filter_map(|a| a["url_citation"]["url"].as_str().map(str::to_string))
        .collect();
    assert_eq!(urls, ["https://a.example/page", "https://b.example/doc"]);
    assert!(
        owui_events(&chunks).is_empty(),
        "no Open WebUI events for a plain caller"
    );
}

#[tokio::test]
async fn citations_reach_open_webui_as_source_events_instead_of_annotations() {
    let h = Harness::start().await;
    let (status, chunks) = h.stream_chat_with("fake/citations", "cite", &OWUI).await;
    assert_eq!(status, 200, "{chunks:?}");
    assert!(
        !chunks.iter().any(|c| c.contains("\"annotations\"")),
        "{chunks:?}"
    );
    let sources = events_of_type(&chunks, "source");
    assert_eq!(sources.len(), 2, "{sources:?}");
    let text = serde_json::to_string(&sources).unwrap();
    assert!(text.contains("https://a.example/page"), "{text}");
    assert!(text.contains("https://b.example/doc"), "{text}");
    assert!(!text.contains("utm_source"), "{text}");
}

#[tokio::test]
async fn an_answer_cut_by_the_token_limit_finishes_with_length() {
    let h = Harness::start().await;
    let (status, chunks) = h.stream_chat("fake/incomplete", "long please").await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), INCOMPLETE_DELTAS.concat());
    assert_eq!(finish_reasons(&chunks), ["length"]);
    assert!(owui_events(&chunks).is_empty());
}

#[tokio::test]
async fn open_webui_is_notified_when_the_answer_stopped_at_the_token_limit() {
    let h = Harness::start().await;
    let (status, chunks) = h
        .stream_chat_with("fake/incomplete", "long please", &OWUI)
        .await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(finish_reasons(&chunks), ["length"]);
    let notes = events_of_type(&chunks, "notification");
    assert_eq!(notes.len(), 1, "{chunks:?}");
    assert!(
        notes[0]["data"]["content"]
            .as_str()
            .unwrap_or_default()
            .contains("output limit"),
        "{notes:?}"
    );
}

#[tokio::test]
async fn generated_images_reach_the_caller_as_delta_images_and_message_images() {
    use fake_openrouter::scenarios::FAKE_IMAGE_PNG_B64;
    let h = Harness::start().await;
    let expected = format!("data:image/png;base64,{FAKE_IMAGE_PNG_B64}");
    let (status, chunks) = h.stream_chat("fake/image", "draw").await;
    assert_eq!(status, 200, "{chunks:?}");
    let images: Vec<Value> = json_chunks(&chunks)
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["images"].as_array().cloned())
        .flatten()
        .collect();
    assert_eq!(
        images,
        vec![json!({"type": "image_url", "image_url": {"url": expected}})]
    );
    assert_eq!(content_of(&chunks), "echo: draw");

    let resp = h
        .post_chat(&Harness::chat_body("fake/image", "draw", false))
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["images"][0]["image_url"]["url"],
        expected
    );
    assert_eq!(body["choices"][0]["message"]["content"], "echo: draw");
}

#[tokio::test]
async fn answers_and_reasoning_sent_without_deltas_or_as_a_refusal_still_reach_the_caller_once() {
    let h = Harness::with_env(&[("PERSIST_REASONING_TOKENS", "disabled")]).await;
    let (status, chunks) = h.stream_chat("fake/no-deltas", "quietly").await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), "echo: quietly");
    assert_eq!(
        field_of(&chunks, "reasoning"),
        fake_openrouter::scenarios::REASONING_SUMMARY
    );
    let (status, chunks) = h.stream_chat("fake/refusal", "do it").await;
    assert_eq!(status, 200, "{chunks:?}");
    assert_eq!(content_of(&chunks), fake_openrouter::scenarios::REFUSAL);
    // Not streamed: the same, as one completion.
    let resp = h
        .post_chat(&Harness::chat_body("fake/no-deltas", "quietly", false))
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"], "echo: quietly",
        "{v}"
    );
}
