//! The `/chat/completions` SSE stream → the same caller events the `/responses` path produces
//! (`stream::ResponsesStream`), so the chat fallback and forced-chat models look identical to the
//! caller. Each `data` payload (a `chat.completion.chunk`) is fed in as it arrives: text and
//! reasoning deltas are emitted at once; tool-call fragments, `reasoning_details` fragments and
//! URL citations are gathered; the answer completes at `[DONE]` or at the end of the body once a
//! `finish_reason` was seen, because usage may arrive in a chunk after the finish chunk.
//! Malformed payloads are counted and skipped; an `error` object in a chunk fails the stream.

use crate::errors;
use crate::stream::{Step, usage_from};
use crate::types::{Event, FinishReason, ToolCall, Usage};
use serde_json::{Map, Value, json};

/// A URL citation the model attached to its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Citation {
    pub url: String,
    pub title: Option<String>,
    /// The quoted excerpt, when the provider gave one.
    pub content: Option<String>,
}

/// Where a `reasoning_details` fragment belongs. Fragments of one detail share its `type` and
/// `index` (or, lacking an index, its `id`); the type is part of the key because providers number
/// summaries and encrypted blobs separately.
#[derive(Clone, Debug, PartialEq, Eq)]
enum DetailKey {
    Index(String, i64),
    Id(String, String),
    /// Neither index nor id: only merged with the directly preceding keyless detail of its type.
    Unkeyed(String),
}

/// A function call being assembled from `delta.tool_calls[]` fragments.
#[derive(Clone, Debug, Default)]
struct PendingCall {
    index: i64,
    id: String,
    name: String,
    arguments: String,
}

/// Translation state for one upstream `/chat/completions` stream.
#[derive(Debug, Default)]
pub struct ChatStream {
    /// Whether any user-visible delta was produced (decides HTTP error vs in-stream error).
    pub visible_output: bool,
    /// Payloads that were not JSON objects.
    pub malformed: u32,
    /// Things we could not use: tool calls without a function name, unknown annotation types.
    pub ignored: u32,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    done: bool,
    /// Whether any `delta` arrived (a later whole `message` then only repeats it).
    delta_seen: bool,
    calls: Vec<PendingCall>,
    details: Vec<(DetailKey, Map<String, Value>)>,
    /// The detail the last reasoning text came from, to separate parts with a blank line.
    last_reasoning_part: Option<DetailKey>,
    citations: Vec<Citation>,
}

/// `finish_reason` → ours. Providers behind OpenRouter sometimes leak their own names.
fn finish_of(reason: &str) -> FinishReason {
    match reason {
        "length" | "max_tokens" | "max_output_tokens" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        "error" => FinishReason::Error,
        _ => FinishReason::Stop,
    }
}

/// Text of a `content`/`refusal` field: a string, or an array of `{type:"text", text}` parts.
fn text_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

fn non_empty_str(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Remove the `utm_source=openai` tag some providers append, so the same page de-duplicates.
fn clean_url(url: &str) -> String {
    let url = url.trim();
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && *p != "utm_source=openai")
        .collect();
    let mut out = base.to_string();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

impl ChatStream {
    /// Feed one SSE `data` payload. `emit` receives the caller events it produces (it returns
    /// false once the caller is gone); `error_id` supplies an id when the payload is a failure.
    pub fn feed(
        &mut self,
        data: &str,
        emit: &mut dyn FnMut(Event) -> bool,
        error_id: &mut dyn FnMut() -> String,
    ) -> Step {
        let data = data.trim();
        if data.is_empty() || self.done {
            return Step::Continue;
        }
        if data == "[DONE]" {
            self.done = true;
            if self.finish.is_none() {
                // No finish chunk, but the server says the answer is complete: whatever tool
                // calls were streamed are all there is.
                let finish = self.finish_tool_calls(FinishReason::Stop, emit);
                self.finish = Some(finish);
            }
            return self.completed();
        }
        let chunk = match serde_json::from_str::<Value>(data) {
            Ok(v) if v.is_object() => v,
            _ => {
                self.malformed += 1;
                return Step::Continue;
            }
        };
        if let Some(err) = chunk.get("error").filter(|e| !e.is_null()) {
            let event = if err.is_object() {
                chunk.clone()
            } else {
                // A bare string error: give `errors` the usual object shape.
                json!({"error": {"message": text_of(Some(err))}})
            };
            return Step::Failed(errors::from_stream_event(&error_id(), &event));
        }
        if let Some(usage) = chunk.get("usage").and_then(usage_from) {
            self.usage = Some(usage);
        }
        let choices = chunk.get("choices").and_then(Value::as_array);
        // Only the first choice is relayed (`n` is never above 1 on this path).
        let choice = choices.and_then(|cs| {
            cs.iter()
                .find(|c| c.get("index").and_then(Value::as_i64) == Some(0))
                .or_else(|| cs.first())
        });
        let Some(choice) = choice else {
            return Step::Continue;
        };
        let delta = choice.get("delta").filter(|d| d.is_object());
        let message = choice.get("message").filter(|m| m.is_object());
        match (delta, message) {
            (Some(delta), message) => {
                self.delta_seen = true;
                if !self.apply_delta(delta, emit) {
                    return Step::Continue;
                }
                // OpenRouter may attach the final annotations to a `message` next to the delta.
                if let Some(message) = message {
                    self.collect_annotations(message.get("annotations"));
                }
            }
            // Some providers answer with one whole `message` instead of deltas.
            (None, Some(message)) if !self.delta_seen => {
                if !self.apply_delta(message, emit) {
                    return Step::Continue;
                }
            }
            // After deltas, a whole `message` repeats what was streamed; only its annotations
            // can be new.
            (None, Some(message)) => self.collect_annotations(message.get("annotations")),
            (None, None) => {}
        }
        if let Some(reason) = non_empty_str(choice.get("finish_reason"))
            && self.finish.is_none()
        {
            let finish = finish_of(reason);
            if finish == FinishReason::Error {
                let event = json!({"error": {
                    "message": "the provider ended the answer with finish_reason \"error\"",
                }});
                return Step::Failed(errors::from_stream_event(&error_id(), &event));
            }
            let finish = self.finish_tool_calls(finish, emit);
            self.finish = Some(finish);
        }
        Step::Continue
    }

    /// Called when the body ends: Completed if a finish_reason (and/or `[DONE]`) was seen, else
    /// Continue (the caller treats that as an interrupted stream).
    pub fn end(&mut self) -> Step {
        if self.done || self.finish.is_some() {
            self.completed()
        } else {
            Step::Continue
        }
    }

    /// Reasoning details reassembled across deltas (by type and index/id), for replay: a JSON
    /// array in the order the details first appeared.
    pub fn reasoning_details(&self) -> Value {
        Value::Array(
            self.details
                .iter()
                .map(|(_, d)| Value::Object(d.clone()))
                .collect(),
        )
    }

    /// URL citations seen (from `delta.annotations` / `message.annotations`), de-duplicated by
    /// URL, in order of first appearance.
    pub fn citations(&self) -> Vec<Citation> {
        self.citations.clone()
    }

    fn completed(&self) -> Step {
        Step::Completed {
            finish: self.finish.unwrap_or(FinishReason::Stop),
            usage: self.usage.clone(),
        }
    }

    /// Apply one delta (or whole message). Returns false when the caller went away.
    fn apply_delta(&mut self, delta: &Value, emit: &mut dyn FnMut(Event) -> bool) -> bool {
        let reasoning = non_empty_str(delta.get("reasoning"))
            .or_else(|| non_empty_str(delta.get("reasoning_content")));
        let detail_text = self.merge_details(delta.get("reasoning_details"));
        if let Some(r) = reasoning {
            // The same thinking also arrives in `reasoning_details`; emitting both would double it.
            if let Some((key, _)) = detail_text.last() {
                self.last_reasoning_part = Some(key.clone());
            }
            if !self.emit_visible(emit, Event::ReasoningDelta(r.to_string())) {
                return false;
            }
        } else {
            for (key, piece) in detail_text {
                let mut text = String::new();
                if self.last_reasoning_part.as_ref().is_some_and(|k| *k != key) {
                    text.push_str("\n\n");
                }
                text.push_str(&piece);
                self.last_reasoning_part = Some(key);
                if !self.emit_visible(emit, Event::ReasoningDelta(text)) {
                    return false;
                }
            }
        }
        for field in ["content", "refusal"] {
            // A refusal is the model's answer in words; show it like content.
            let text = text_of(delta.get(field));
            if !text.is_empty() && !self.emit_visible(emit, Event::TextDelta(text)) {
                return false;
            }
        }
        for url in crate::images::from_chat_images(delta.get("images")) {
            if !self.emit_visible(emit, Event::Image(url)) {
                return false;
            }
        }
        self.merge_tool_calls(delta.get("tool_calls"));
        self.collect_annotations(delta.get("annotations"));
        true
    }

    fn emit_visible(&mut self, emit: &mut dyn FnMut(Event) -> bool, event: Event) -> bool {
        self.visible_output = true;
        emit(event)
    }

    /// Merge `reasoning_details` fragments into their details; returns the reasoning text the
    /// fragments carried (`text` of `reasoning.text`, `summary` of `reasoning.summary`), per detail.
    fn merge_details(&mut self, details: Option<&Value>) -> Vec<(DetailKey, String)> {
        let mut texts = Vec::new();
        let Some(details) = details.and_then(Value::as_array) else {
            return texts;
        };
        for fragment in details {
            let Some(fragment) = fragment.as_object() else {
                continue;
            };
            let kind = fragment
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let key = if let Some(i) = fragment.get("index").and_then(Value::as_i64) {
                DetailKey::Index(kind.clone(), i)
            } else if let Some(id) = non_empty_str(fragment.get("id")) {
                DetailKey::Id(kind.clone(), id.to_string())
            } else {
                DetailKey::Unkeyed(kind.clone())
            };
            let existing = match &key {
                // A keyless encrypted blob is a whole detail; gluing two together would corrupt both.
                DetailKey::Unkeyed(k) if k == "reasoning.encrypted" => None,
                DetailKey::Unkeyed(_) => self
                    .details
                    .last()
                    .filter(|(k, _)| *k == key)
                    .map(|_| self.details.len() - 1),
                _ => self.details.iter().position(|(k, _)| *k == key),
            };
            let slot = match existing {
                Some(i) => i,
                None => {
                    self.details.push((key.clone(), Map::new()));
                    self.details.len() - 1
                }
            };
            let Some((_, merged)) = self.details.get_mut(slot) else {
                continue;
            };
            for (field, value) in fragment {
                match (field.as_str(), value) {
                    // Streamed pieces of one string.
                    ("text" | "summary" | "data", Value::String(piece)) => {
                        match merged.get_mut(field) {
                            Some(Value::String(so_far)) => so_far.push_str(piece),
                            _ => {
                                merged.insert(field.clone(), value.clone());
                            }
                        }
                    }
                    // A null never erases what an earlier fragment said (signatures come last).
                    (_, Value::Null) => {
                        merged.entry(field.clone()).or_insert(Value::Null);
                    }
                    _ => {
                        merged.insert(field.clone(), value.clone());
                    }
                }
            }
            let text_field = match kind.as_str() {
                "reasoning.text" => Some("text"),
                "reasoning.summary" => Some("summary"),
                _ => None,
            };
            if let Some(piece) = text_field.and_then(|f| non_empty_str(fragment.get(f))) {
                texts.push((key, piece.to_string()));
            }
        }
        texts
    }

    /// Gather `tool_calls[]` fragments: the first fragment of a call carries its id and name,
    /// later ones (same `index`) carry pieces of the arguments string.
    fn merge_tool_calls(&mut self, calls: Option<&Value>) {
        let Some(calls) = calls.and_then(Value::as_array) else {
            return;
        };
        for (position, fragment) in calls.iter().enumerate() {
            let id = non_empty_str(fragment.get("id"));
            let index = fragment.get("index").and_then(Value::as_i64);
            let existing = match (index, id) {
                (Some(i), _) => self.calls.iter().position(|c| c.index == i),
                (None, Some(id)) => self.calls.iter().position(|c| c.id == id),
                // A whole `message.tool_calls` list has no indexes: its position is the index.
                (None, None) => {
                    let i = position as i64;
                    self.calls.iter().position(|c| c.index == i)
                }
            };
            let slot = match existing {
                Some(i) => i,
                None => {
                    let next_index = index.unwrap_or(match id {
                        Some(_) => self.calls.len() as i64,
                        None => position as i64,
                    });
                    self.calls.push(PendingCall {
                        index: next_index,
                        ..PendingCall::default()
                    });
                    self.calls.len() - 1
                }
            };
            let Some(call) = self.calls.get_mut(slot) else {
                continue;
            };
            if call.id.is_empty()
                && let Some(id) = id
            {
                call.id = id.to_string();
            }
            let function = fragment.get("function");
            // Some providers repeat the name on every fragment; the first one is the name.
            if call.name.is_empty()
                && let Some(name) = non_empty_str(function.and_then(|f| f.get("name")))
            {
                call.name = name.to_string();
            }
            match function.and_then(|f| f.get("arguments")) {
                Some(Value::String(piece)) => call.arguments.push_str(piece),
                // Arguments as a JSON object are complete, not a piece.
                Some(v @ Value::Object(_)) => call.arguments = v.to_string(),
                _ => {}
            }
        }
    }

    /// At the finish: hand over the gathered tool calls as one event. Streamed calls are
    /// delivered even under a `stop` finish (some providers report that), and a `tool_calls`
    /// finish without any call is a plain stop, so the caller never waits on calls that do not exist.
    fn finish_tool_calls(
        &mut self,
        finish: FinishReason,
        emit: &mut dyn FnMut(Event) -> bool,
    ) -> FinishReason {
        if !matches!(finish, FinishReason::ToolCalls | FinishReason::Stop) {
            return finish;
        }
        let pending = std::mem::take(&mut self.calls);
        let mut calls = Vec::with_capacity(pending.len());
        for call in pending {
            if call.name.is_empty() {
                self.ignored += 1;
                continue;
            }
            let arguments = if call.arguments.trim().is_empty() {
                // Never hand a tool empty arguments: `{}` is the empty call.
                "{}".to_string()
            } else {
                call.arguments
            };
            let call_id = if call.id.is_empty() {
                format!("call_{}", call.index)
            } else {
                call.id
            };
            calls.push(ToolCall {
                call_id,
                name: call.name,
                arguments_json: arguments,
            });
        }
        if calls.is_empty() {
            return FinishReason::Stop;
        }
        self.emit_visible(emit, Event::ToolCalls(calls));
        FinishReason::ToolCalls
    }

    /// Collect `url_citation` annotations, nested (`{type, url_citation:{url,title,content}}`)
    /// or flat (`{type, url, title, content}`).
    fn collect_annotations(&mut self, annotations: Option<&Value>) {
        let Some(annotations) = annotations.and_then(Value::as_array) else {
            return;
        };
        for a in annotations {
            if a.get("type").and_then(Value::as_str) != Some("url_citation") {
                self.ignored += 1;
                continue;
            }
            let body = a.get("url_citation").filter(|c| c.is_object()).unwrap_or(a);
            let Some(url) = non_empty_str(body.get("url")).map(clean_url) else {
                self.ignored += 1;
                continue;
            };
            let title = non_empty_str(body.get("title")).map(str::to_string);
            let content = non_empty_str(body.get("content")).map(str::to_string);
            match self.citations.iter_mut().find(|c| c.url == url) {
                Some(seen) => {
                    // A later mention of the same page may carry what the first one lacked.
                    if seen.title.is_none() {
                        seen.title = title;
                    }
                    if seen.content.is_none() {
                        seen.content = content;
                    }
                }
                None => self.citations.push(Citation {
                    url,
                    title,
                    content,
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed payloads until a non-Continue step; then, if the body "ends", call `end`.
    fn run(payloads: &[&str]) -> (Vec<Event>, Step, ChatStream) {
        let mut s = ChatStream::default();
        let mut out = Vec::new();
        for p in payloads {
            let step = s.feed(
                p,
                &mut |e| {
                    out.push(e);
                    true
                },
                &mut || "e1".to_string(),
            );
            if step != Step::Continue {
                return (out, step, s);
            }
        }
        let step = s.end();
        (out, step, s)
    }

    fn chunk(delta: Value, finish: Option<&str>) -> String {
        json!({
            "id": "gen-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
        .to_string()
    }

    #[test]
    fn generated_images_are_relayed() {
        let payloads = [
            chunk(
                json!({"role": "assistant", "content": "Here:", "images": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
                ]}),
                None,
            ),
            chunk(json!({}), Some("stop")),
        ];
        let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
        let (events, _, s) = run(&refs);
        assert_eq!(
            events,
            vec![
                Event::TextDelta("Here:".into()),
                Event::Image("data:image/png;base64,iVBORw0KGgo=".into())
            ]
        );
        assert!(s.visible_output);
    }

    #[test]
    fn content_deltas_become_text_and_done_completes() {
        let payloads = [
            chunk(json!({"role": "assistant", "content": ""}), None),
            chunk(json!({"content": "Hel"}), None),
            chunk(json!({"content": "lo"}), None),
            chunk(json!({}), Some("stop")),
            "[DONE]".to_string(),
        ];
        let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
        let (events, step, s) = run(&refs);
        assert_eq!(
            events,
            vec![
                Event::TextDelta("Hel".into()),
                Event::TextDelta("lo".into())
            ]
        );
        assert_eq!(
            step,
            Step::Completed {
                finish: FinishReason::Stop,
                usage: None
            }
        );
        assert!(s.visible_output);
    }

    #[test]
    fn usage_after_the_finish_chunk_is_included_in_completed() {
        let payloads = [
            chunk(json!({"content": "Hi"}), None),
            chunk(json!({}), Some("length")),
            json!({"id": "gen-1", "object": "chat.completion.chunk", "choices": [],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                    "prompt_tokens_details": {"cached_tokens": 2},
                    "completion_tokens_details": {"reasoning_tokens": 3},
                    "cost": 0.0012}})
            .to_string(),
            "[DONE]".to_string(),
        ];
        let mut s = ChatStream::default();
        let mut steps = Vec::new();
        for p in &payloads {
            steps.push(s.feed(p, &mut |_| true, &mut || "e1".to_string()));
        }
        // Nothing completes at the finish chunk: the usage is still to come.
        assert_eq!(steps[1], Step::Continue);
        assert_eq!(steps[2], Step::Continue);
        let Step::Completed { finish, usage } = &steps[3] else {
            panic!("{:?}", steps[3])
        };
        assert_eq!(*finish, FinishReason::Length);
        assert_eq!(
            usage.clone(),
            Some(Usage {
                prompt_tokens: 10,
                completion_tokens: 5,
                total_tokens: 15,
                cached_tokens: 2,
                reasoning_tokens: 3,
                cost_usd: Some(0.0012),
            })
        );
    }

    #[test]
    fn a_body_ending_after_the_finish_without_done_still_completes() {
        let payloads = [
            chunk(json!({"content": "Hi"}), None),
            chunk(json!({}), Some("content_filter")),
        ];
        let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
        let (_, step, _) = run(&refs);
        assert_eq!(
            step,
            Step::Completed {
                finish: FinishReason::ContentFilter,
                usage: None
            }
        );
    }

    #[test]
    fn a_body_ending_without_finish_or_done_is_not_completed() {
        let payloads = [chunk(json!({"content": "Hi"}), None)];
        let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
        let (events, step, s) = run(&refs);
        assert_eq!(events.len(), 1);
        assert_eq!(step, Step::Continue);
        assert!(s.visible_output);
    }

    #[test]
    fn a_tool_call_whose_arguments_arrive_in_three_pieces_is_emitted_once_at_the_finish() {
        let payloads = [
            chunk(
                json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0,
                    "id": "call_abc", "type": "function",
                    "function": {"name": "get_weather", "arguments": ""}}]}),
                None,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"loc"}}]}),
                None,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "ation\": \"Par"}}]}),
                None,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "is\"}"}}]}),
                None,
            ),
            chunk(json!({}), Some("tool_calls")),
            "[DONE]".to_string(),
        ];
        let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
        let (events, step, s) = run(&refs);
        assert_eq!(
            events,
            vec![Event::ToolCalls(vec![ToolCall {
                call_id: "call_abc".into(),
                name: "get_weather".into(),
                arguments_json: r#"{"location": "Paris"}"#.into(),
            }])]
        );
        assert_eq!(
            step,
            Step::Completed {
                finish: FinishReason::ToolCalls,
                usage: None
            }
        );
        assert!(s.visible_output);
    }

    #[test]
    fn parallel_tool_calls_keep_their_order_and_empty_arguments_become_an_empty_object() {
        let payloads = [
            chunk(
                json!({"tool_calls": [
                    {"index": 0, "id": "c0", "function": {"name": "now", "arguments": ""}},
                    {"index": 1, "id": "c1", "function": {"name": "search", "arguments": "{\"q\":"}},
                ]}),
                None,
            ),
            chunk(
                json!({"tool_calls": [{"index": 1, "function": {"arguments": "\"rust\"}"}}]}),
                None,
            ),
            // A fragment with no name ever is not a callable tool.
            chunk(
                json!({"tool_calls": [{"index": 2, "function": {"arguments": "{}"}}]}),
                None,
            ),
            chunk(json!({}), Some("tool_calls")),
        ];
        let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
        let (events, step, s) = run(&refs);
        let [Event::ToolCalls(calls)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(calls.len(), 2);
        assert_eq!(
            (calls[0].call_id.as_str(), calls[0].arguments_json.as_str()),
            ("c0", "{}")
        );
        assert_eq!(
            (calls[1].name.as_str(), calls[1].arguments_json.as_str()),
            ("search", r#"{"q":"rust"}"#)
        );
        assert_eq!(s.ignored, 1);
        assert!(matches!(
            step,
            Step::Completed {
                finish: FinishReason::ToolCalls,
                ..
            }
        ));
    }

    #[test]
    fn object_arguments_and_missing_ids_are_normalised() {
        let payloads = [
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": {"a": 1}}}]}),
                None,
            ),
            // A provider that says `stop` after streaming a call still gets the call delivered.
            chunk(json!({}), Some("stop")),
        ];
        let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
        let (events, step, _) = run(&refs);
        assert_eq!(
            events,
            vec![Event::ToolCalls(vec![ToolCall {
                call_id: "call_0".into(),
                name: "f".into(),
                arguments_json: r#"{"a":1}"#.into(),
            }])]
        );
        assert!(matches!(
            step,
            Step::Completed {
                finish: FinishReason::ToolCalls,
                ..
            }
        ));
    }

    #[test]
    fn a_tool_calls_finish_without_any_call_is_a_plain_stop() {
        let payloads = [chunk(json!({"content": "ok"}), Some("tool_calls"))];
        let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
        let (events, step, _) = run(&refs);
        assert_eq!(events, vec![Event::TextDelta("ok".into())]);
        assert!(matches!(
            step,
            Step::Completed {
                finish: FinishReason::Stop,
                ..
            }
        ));
    }

    #[test]
    fn reasoning_is_emitted_once_when_both_reasoning_and_details_arrive() {
        let payloads = [
            chunk(
                json!({"reasoning": "Let me ", "reasoning_details": [{"type": "reasoning.text",
                    "text": "Let me ", "index": 0, "format": "anthropic-claude-v1"}]}),
                None,
            ),
            chunk(
                json!({"reasoning": "think.", "reasoning_details": [{"type": "reasoning.text",
                    "text": "think.", "index": 0, "format": "anthropic-claude-v1"}]}),
                None,
            ),
            // The signature arrives last, with no text.
            chunk(
                json!({"reasoning_details": [{"type": "reasoning.text", "signature": "sig==",
                    "index": 0, "format": "anthropic-claude-v1"}]}),
                None,
            ),
            chunk(json!({"content": "Answer"}), None),
            chunk(json!({}), Some("stop")),
            "[DONE]".to_string(),
        ];
        let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
        let (events, _, s) = run(&refs);
        assert_eq!(
            events,
            vec![
                Event::ReasoningDelta("Let me ".into()),
                Event::ReasoningDelta("think.".into()),
                Event::TextDelta("Answer".into()),
            ]
        );
        assert_eq!(
            s.reasoning_details(),
            json!([{"type": "reasoning.text", "text": "Let me think.", "index": 0,
                "format": "anthropic-claude-v1", "signature": "sig=="}])
        );
    }

    #[test]
    fn details_alone_supply_the_reasoning_text_and_parts_are_separated() {
        let payloads = [
            chunk(
                json!({"reasoning_details": [{"type": "reasoning.summary", "summary": "**Plan**",
                    "index": 0, "format": "openai-responses-v1"}]}),
                None,
            ),
            chunk(
                json!({"reasoning_details": [{"type": "reasoning.summary", "summary": " first",
                    "index": 0}]}),
                None,
            ),
            chunk(
                json!({"reasoning_details": [
                    {"type": "reasoning.summary", "summary": "Then", "index": 1},
                    {"type": "reasoning.encrypted", "data": "gAAA", "index": 0, "id": "rs_1"},
                ]}),
                None,
            ),
            chunk(
                json!({"reasoning_details": [{"type": "reasoning.encrypted", "data": "BBB",
                    "index": 0, "id": null}]}),
                None,
            ),
            chunk(json!({"content": "Hi"}), Some("stop")),
        ];
        let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
        let (events, _, s) = run(&refs);
        assert_eq!(
            events,
            vec![
                Event::ReasoningDelta("**Plan**".into()),
                Event::ReasoningDelta(" first".into()),
                Event::ReasoningDelta("\n\nThen".into()),
                Event::TextDelta("Hi".into()),
            ]
        );
        assert_eq!(
            s.reasoning_details(),
            json!([
                {"type": "reasoning.summary", "summary": "**Plan** first", "index": 0,
                    "format": "openai-responses-v1"},
                {"type": "reasoning.summary", "summary": "Then", "index": 1},
                {"type": "reasoning.encrypted", "data": "gAAABBB", "index": 0, "id": "rs_1"},
            ])
        );
    }

    #[test]
    fn reasoning_content_is_accepted_as_reasoning() {
        let payloads = [chunk(json!({"reasoning_content": "hmm"}), Some("stop"))];
        let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
        let (events, _, _) = run(&refs);
        assert_eq!(events, vec![Event::ReasoningDelta("hmm".into())]);
    }

    #[test]
    fn url_citations_are_collected_nested_or_flat_and_deduplicated() {
        let payloads = [
            chunk(
                json!({"content": "See [1].", "annotations": [
                    {"type": "url_citation", "url_citation": {"url": "https://a.example/x?utm_source=openai",
                        "title": "A", "content": "excerpt", "start_index": 4, "end_index": 7}},
                    {"type": "file_citation", "file_id": "f1"},
                ]}),
                None,
            ),
            chunk(
                json!({"annotations": [
                    {"type": "url_citation", "url": "https://b.example/?q=1&utm_source=openai", "title": "B"},
                    {"type": "url_citation", "url_citation": {"url": "https://a.example/x", "title": "A again"}},
                ]}),
                None,
            ),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop",
                "message": {"role": "assistant", "annotations": [
                    {"type": "url_citation", "url_citation": {"url": "https://c.example/"}}]}}]})
            .to_string(),
        ];
        let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
        let (_, _, s) = run(&refs);
        assert_eq!(
            s.citations(),
            vec![
                Citation {
                    url: "https://a.example/x".into(),
                    title: Some("A".into()),
                    content: Some("excerpt".into()),
                },
                Citation {
                    url: "https://b.example/?q=1".into(),
                    title: Some("B".into()),
                    content: None,
                },
                Citation {
                    url: "https://c.example/".into(),
                    title: None,
                    content: None,
                },
            ]
        );
        assert_eq!(s.ignored, 1);
    }

    #[test]
    fn a_whole_message_counts_only_when_nothing_was_streamed() {
        let message_chunk = json!({"choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "Full answer"}}]})
        .to_string();
        let (events, step, _) = run(&[message_chunk.as_str()]);
        assert_eq!(events, vec![Event::TextDelta("Full answer".into())]);
        assert!(matches!(step, Step::Completed { .. }));

        let streamed = chunk(json!({"content": "Full answer"}), None);
        let (events, _, _) = run(&[streamed.as_str(), message_chunk.as_str()]);
        assert_eq!(events, vec![Event::TextDelta("Full answer".into())]);
    }

    #[test]
    fn a_refusal_is_shown_as_text() {
        let payloads = [chunk(
            json!({"refusal": "I can't help with that."}),
            Some("stop"),
        )];
        let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
        let (events, _, _) = run(&refs);
        assert_eq!(
            events,
            vec![Event::TextDelta("I can't help with that.".into())]
        );
    }

    #[test]
    fn an_error_chunk_fails_the_stream_through_the_error_mapping() {
        let payloads = [
            chunk(json!({"content": "Partial"}), None),
            json!({"id": "gen-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "error": {"code": 429, "message": "Rate limit exceeded",
                    "metadata": {"error_type": "rate_limit_exceeded"}},
                "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]})
            .to_string(),
            chunk(json!({"content": "never"}), None),
        ];
        let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
        let (events, step, s) = run(&refs);
        assert_eq!(events, vec![Event::TextDelta("Partial".into())]);
        let Step::Failed(err) = step else {
            panic!("{step:?}")
        };
        assert_eq!(err.http_status, 429);
        assert_eq!(err.code.as_deref(), Some("429"));
        assert!(err.message.contains("Rate limit exceeded"));
        assert_eq!(err.error_id, "e1");
        assert!(s.visible_output);
    }

    #[test]
    fn an_error_finish_without_an_error_object_still_fails() {
        let payloads = [chunk(json!({}), Some("error"))];
        let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
        let (events, step, s) = run(&refs);
        assert!(events.is_empty());
        assert!(matches!(step, Step::Failed(ref e) if e.http_status == 502));
        assert!(!s.visible_output);
        let (_, step, _) = run(&[r#"{"error":"upstream exploded"}"#]);
        assert!(matches!(step, Step::Failed(ref e) if e.message.contains("upstream exploded")));
    }

    #[test]
    fn malformed_payloads_are_counted_and_skipped() {
        let payloads = [
            chunk(json!({"content": "a"}), None),
            "{not json".to_string(),
            "[1,2]".to_string(),
            chunk(json!({"content": "b"}), Some("stop")),
            "[DONE]".to_string(),
        ];
        let refs: Vec<&str> = payloads.iter().map(String::as_str).collect();
        let (events, step, s) = run(&refs);
        assert_eq!(events.len(), 2);
        assert_eq!(s.malformed, 2);
        assert!(matches!(step, Step::Completed { .. }));
    }

    #[test]
    fn emission_stops_when_the_caller_is_gone() {
        let mut s = ChatStream::default();
        let mut seen = 0;
        let payload = chunk(
            json!({"reasoning": "r", "content": "c", "annotations": []}),
            None,
        );
        s.feed(
            &payload,
            &mut |_| {
                seen += 1;
                false
            },
            &mut || "e1".to_string(),
        );
        assert_eq!(seen, 1);
    }
}
