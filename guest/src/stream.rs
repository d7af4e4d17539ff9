//! The Responses SSE stream → caller events. One `ResponsesStream` per upstream response: each SSE
//! `data` payload is fed in as it arrives; text and reasoning deltas are emitted at once; the
//! terminal event (`response.completed`, `response.incomplete`, `response.failed`, `error`) ends
//! it. Unknown event types are skipped; malformed payloads are counted and skipped.

use crate::errors;
use crate::types::{Citation, ErrorBody, Event, FinishReason, Usage};
use serde_json::Value;

/// What feeding one payload did.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Keep reading.
    Continue,
    /// The response finished normally.
    Completed {
        finish: FinishReason,
        usage: Option<Usage>,
    },
    /// The upstream reported a failure.
    Failed(ErrorBody),
}

/// Translation state for one upstream response.
#[derive(Debug, Default)]
pub struct ResponsesStream {
    /// Whether any user-visible delta was produced (decides HTTP error vs in-stream error).
    pub visible_output: bool,
    /// Payloads that were not JSON.
    pub malformed: u32,
    /// Event types we did not act on.
    pub ignored: u32,
    /// The reasoning part the last reasoning text came from, to separate parts.
    last_reasoning_part: Option<ReasoningPart>,
    /// Cited URLs already emitted (cleaned), to emit each source once.
    cited: Vec<String>,
    /// Whether "Responding to the user…" was announced.
    responding: bool,
    /// The response's output items (reasoning with `encrypted_content`, messages, function
    /// calls, server-tool items): gathered from `response.output_item.done`, replaced by the
    /// terminal event's `response.output` when that is present (it is authoritative: some
    /// providers deliver function-call arguments only there). Read after `Step::Completed`.
    pub output: Vec<Value>,
    /// Append a `[P:<phase>]: #` line after each message that carries a GPT-5.x `phase`, so the
    /// phase comes back with the history (set for chats that have a history: a chat id).
    pub phase_markers: bool,
    /// Append Open WebUI's `<details>` card after each finished server-tool item (Open WebUI
    /// callers with `SHOW_TOOL_CARDS`).
    pub tool_cards: bool,
    /// The Fusion runs of this response, narrated from `response.fusion_call.*`.
    fusion: crate::fusion::Runs,
    /// The items whose answer text reached the caller ("" for deltas that named no item), so
    /// `.done` events and finished items only fill in what never streamed.
    streamed_text: Vec<String>,
    /// The same for reasoning parts.
    streamed_reasoning: Vec<ReasoningPart>,
    /// Function-call arguments gathered from `response.function_call_arguments.delta/.done`, by
    /// item id: some providers leave `arguments` empty in the item events and only stream them.
    call_args: Vec<(String, String)>,
}

fn item_id_of(event: &Value) -> &str {
    event.get("item_id").and_then(Value::as_str).unwrap_or("")
}

/// Which summary or content part of a reasoning item an event is about.
fn part_index_of(event: &Value) -> i64 {
    event
        .get("summary_index")
        .or_else(|| event.get("content_index"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// One part of a reasoning item: its summary parts and its raw text parts are counted apart.
#[derive(Debug, Default, Clone, PartialEq)]
struct ReasoningPart {
    item: String,
    summary: bool,
    index: i64,
}

impl ReasoningPart {
    fn is(&self, item: &str, summary: bool, index: i64) -> bool {
        self.item == item && self.summary == summary && self.index == index
    }
}

/// Whether an event kind is about summary text (else raw reasoning text).
fn is_summary(kind: &str) -> bool {
    kind.contains("summary")
}

/// A `url_citation` annotation in either shape (flat, or nested under `url_citation`).
pub fn citation_of(annotation: &Value) -> Option<Citation> {
    if annotation.get("type").and_then(Value::as_str) != Some("url_citation") {
        return None;
    }
    let a = annotation.get("url_citation").unwrap_or(annotation);
    let url = a.get("url").and_then(Value::as_str)?.trim();
    if url.is_empty() {
        return None;
    }
    let text = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    Some(Citation {
        url: crate::owui_events::clean_citation_url(url),
        title: text("title"),
        content: text("content"),
    })
}

/// OpenRouter usage (Responses names) → OpenAI chat usage.
pub fn usage_from(v: &Value) -> Option<Usage> {
    if !v.is_object() {
        return None;
    }
    let n = |p: &str| v.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let prompt = n("/input_tokens").max(n("/prompt_tokens"));
    let completion = n("/output_tokens").max(n("/completion_tokens"));
    let total = n("/total_tokens");
    Some(Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: if total == 0 {
            prompt + completion
        } else {
            total
        },
        cached_tokens: n("/input_tokens_details/cached_tokens")
            .max(n("/prompt_tokens_details/cached_tokens")),
        reasoning_tokens: n("/output_tokens_details/reasoning_tokens")
            .max(n("/completion_tokens_details/reasoning_tokens")),
        cost_usd: v.get("cost").and_then(Value::as_f64),
    })
}

fn finish_of(response: &Value) -> FinishReason {
    let reason = response
        .pointer("/incomplete_details/reason")
        .and_then(Value::as_str)
        .unwrap_or("");
    let incomplete = response.get("status").and_then(Value::as_str) == Some("incomplete");
    if reason == "content_filter" {
        FinishReason::ContentFilter
    } else if incomplete || reason == "max_output_tokens" {
        FinishReason::Length
    } else {
        FinishReason::Stop
    }
}

/// The function calls among a response's output items, in order (`arguments` as given; a call
/// without a name is kept with an empty name so the caller can answer it with an error).
pub fn function_calls(output: &[Value]) -> Vec<crate::types::ToolCall> {
    output
        .iter()
        .filter(|i| i.get("type").and_then(Value::as_str) == Some("function_call"))
        .enumerate()
        .map(|(n, i)| {
            let text = |k: &str| i.get(k).and_then(Value::as_str).unwrap_or("").trim();
            let call_id = [text("call_id"), text("id")]
                .into_iter()
                .find(|s| !s.is_empty())
                .map_or_else(|| format!("call_{n}"), str::to_string);
            let arguments_json = match i.get("arguments") {
                Some(Value::String(s)) => s.clone(),
                Some(v @ Value::Object(_)) => v.to_string(),
                _ => String::new(),
            };
            crate::types::ToolCall {
                call_id,
                name: text("name").to_string(),
                arguments_json,
            }
        })
        .collect()
}

impl ResponsesStream {
    /// Give a function-call item with empty `arguments` the arguments streamed for it (by item
    /// id), or those of the same call gathered earlier from `output_item.done`.
    fn fill_arguments(&self, item: &mut Value, gathered: &[Value]) {
        if item.get("type").and_then(Value::as_str) != Some("function_call") {
            return;
        }
        let empty = item
            .get("arguments")
            .and_then(Value::as_str)
            .is_none_or(|a| a.trim().is_empty());
        if !empty {
            return;
        }
        let id = item.get("id").and_then(Value::as_str).unwrap_or("");
        let call_id = item.get("call_id").and_then(Value::as_str).unwrap_or("");
        let streamed = self
            .call_args
            .iter()
            .find(|(i, a)| !i.is_empty() && i == id && !a.trim().is_empty())
            .map(|(_, a)| a.clone());
        let earlier = || {
            gathered
                .iter()
                .filter(|g| g.get("type").and_then(Value::as_str) == Some("function_call"))
                .find(|g| {
                    !call_id.is_empty() && g.get("call_id").and_then(Value::as_str) == Some(call_id)
                })
                .and_then(|g| g.get("arguments").and_then(Value::as_str))
                .filter(|a| !a.trim().is_empty())
                .map(str::to_string)
        };
        if let Some(args) = streamed.or_else(earlier)
            && let Some(o) = item.as_object_mut()
        {
            o.insert("arguments".into(), Value::String(args));
        }
    }

    /// What a finished server-tool item shows: statuses, the card (when on), and for Fusion its
    /// saved panel and the pages it read as citations.
    fn server_tool_done(&mut self, item: &Value, emit: &mut dyn FnMut(Event) -> bool) {
        if item.get("type").and_then(Value::as_str) == Some("openrouter:fusion") {
            for e in self.fusion.item_done(item) {
                emit(Event::OpenWebUiEvent(e));
            }
            for c in crate::fusion::sources(item) {
                self.cite(c, emit);
            }
            return;
        }
        let Some(done) = crate::server_tools::finished(item, self.tool_cards) else {
            return;
        };
        for s in done.statuses {
            emit(Event::OpenWebUiEvent(s));
        }
        if let Some(card) = done.card {
            emit(Event::TextDelta(card));
        }
    }

    /// Emit answer text of item `item_id` and note that it streamed.
    fn text(&mut self, item_id: &str, text: &str, emit: &mut dyn FnMut(Event) -> bool) {
        if text.is_empty() {
            return;
        }
        if !self.streamed_text.iter().any(|i| i == item_id) {
            self.streamed_text.push(item_id.to_string());
        }
        self.visible_output = true;
        emit(Event::TextDelta(text.to_string()));
    }

    /// Emit reasoning text of one part, separated from the previous part's by a blank line,
    /// and note that the part streamed.
    fn reasoning(
        &mut self,
        item: &str,
        summary: bool,
        index: i64,
        text: &str,
        emit: &mut dyn FnMut(Event) -> bool,
    ) {
        if text.is_empty() {
            return;
        }
        let mut out = String::new();
        let same = self
            .last_reasoning_part
            .as_ref()
            .map(|p| p.is(item, summary, index));
        if same == Some(false) {
            out.push_str("\n\n");
        }
        out.push_str(text);
        if same != Some(true) {
            let part = ReasoningPart {
                item: item.to_string(),
                summary,
                index,
            };
            if !self.streamed_reasoning.contains(&part) {
                self.streamed_reasoning.push(part.clone());
            }
            self.last_reasoning_part = Some(part);
        }
        self.visible_output = true;
        emit(Event::ReasoningDelta(out));
    }

    /// Reasoning text from a delta or `.done` event.
    fn reasoning_event(
        &mut self,
        kind: &str,
        event: &Value,
        text: &str,
        emit: &mut dyn FnMut(Event) -> bool,
    ) {
        self.reasoning(
            item_id_of(event),
            is_summary(kind),
            part_index_of(event),
            text,
            emit,
        );
    }

    /// Whether text of item `item_id` already reached the caller. Deltas that named no item
    /// cannot be attributed, so they count for every item (better no fill-in than a repeat).
    fn text_streamed(&self, item_id: &str) -> bool {
        self.streamed_text
            .iter()
            .any(|i| i.is_empty() || i == item_id)
    }

    /// Whether reasoning of `item` already streamed: one part (`Some((summary, index))`) or
    /// any; as for text, reasoning deltas without an item id count for every item.
    fn reasoning_streamed(&self, item: &str, part: Option<(bool, i64)>) -> bool {
        self.streamed_reasoning.iter().any(|p| {
            p.item.is_empty()
                || (p.item == item
                    && part.is_none_or(|(summary, index)| p.is(item, summary, index)))
        })
    }

    /// A finished message or reasoning item whose text never streamed (neither as deltas nor
    /// as `.done` events): its text goes out now, so no provider's answer is lost.
    fn unstreamed_item_text(&mut self, item: &Value, emit: &mut dyn FnMut(Event) -> bool) {
        let id = item.get("id").and_then(Value::as_str).unwrap_or("");
        let parts = |key: &str| -> Vec<String> {
            item.get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    p.get("text")
                        .or_else(|| p.get("refusal"))
                        .and_then(Value::as_str)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string)
                })
                .collect()
        };
        match item.get("type").and_then(Value::as_str) {
            Some("message") if !self.text_streamed(id) => {
                let text = parts("content").concat();
                self.text(id, &text, emit);
            }
            Some("reasoning") => {
                if self.reasoning_streamed(id, None) {
                    return;
                }
                let (summary, texts) = match parts("summary") {
                    t if !t.is_empty() => (true, t),
                    _ => (false, parts("content")),
                };
                for (i, t) in (0..).zip(&texts) {
                    self.reasoning(id, summary, i, t, emit);
                }
            }
            _ => {}
        }
    }

    /// Emit a citation unless its URL was already cited.
    fn cite(&mut self, c: Citation, emit: &mut dyn FnMut(Event) -> bool) {
        if !self.cited.contains(&c.url) {
            self.cited.push(c.url.clone());
            emit(Event::Citation(c));
        }
    }

    /// Feed one SSE `data` payload. `emit` receives the caller events it produces; `error_id`
    /// supplies an id when the payload is an upstream failure.
    pub fn feed(
        &mut self,
        data: &str,
        emit: &mut dyn FnMut(Event) -> bool,
        error_id: &mut dyn FnMut() -> String,
    ) -> Step {
        let data = data.trim();
        if data.is_empty() {
            return Step::Continue;
        }
        if data == "[DONE]" {
            return Step::Continue;
        }
        let Ok(event) = serde_json::from_str::<Value>(data) else {
            self.malformed += 1;
            return Step::Continue;
        };
        let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "response.output_text.delta" | "response.refusal.delta" => {
                if let Some(d) = event.get("delta").and_then(Value::as_str) {
                    self.text(item_id_of(&event), d, emit);
                }
                Step::Continue
            }
            // A `.done` event carries the whole text: it reaches the caller only when no delta
            // of it did (some providers send no deltas at all).
            "response.output_text.done" | "response.refusal.done" => {
                let item_id = item_id_of(&event);
                if !self.text_streamed(item_id)
                    && let Some(t) = event
                        .get("text")
                        .or_else(|| event.get("refusal"))
                        .and_then(Value::as_str)
                {
                    self.text(item_id, t, emit);
                }
                Step::Continue
            }
            "response.reasoning_text.delta"
            | "response.reasoning_summary_text.delta"
            | "response.reasoning.delta" => {
                if let Some(d) = event.get("delta").and_then(Value::as_str) {
                    self.reasoning_event(kind, &event, d, emit);
                }
                Step::Continue
            }
            "response.reasoning_text.done" | "response.reasoning_summary_text.done" => {
                let part = (is_summary(kind), part_index_of(&event));
                if !self.reasoning_streamed(item_id_of(&event), Some(part))
                    && let Some(t) = event.get("text").and_then(Value::as_str)
                {
                    self.reasoning_event(kind, &event, t, emit);
                }
                Step::Continue
            }
            "response.content_part.done" => {
                // Some providers only attach a part's annotations when the part is done.
                let annotations: Vec<Citation> = event
                    .pointer("/part/annotations")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(citation_of)
                    .collect();
                for c in annotations {
                    self.cite(c, emit);
                }
                Step::Continue
            }
            "response.output_text.annotation.added" => {
                if let Some(c) = event.get("annotation").and_then(citation_of) {
                    self.cite(c, emit);
                }
                Step::Continue
            }
            "response.output_item.added" => {
                let item_type = event
                    .pointer("/item/type")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if item_type == "message" && !self.responding {
                    self.responding = true;
                    emit(Event::OpenWebUiEvent(crate::owui_events::status(
                        "Responding to the user…",
                        false,
                        false,
                    )));
                } else if let Some(label) = crate::server_tools::label(item_type) {
                    emit(Event::OpenWebUiEvent(crate::owui_events::status(
                        label, false, false,
                    )));
                }
                Step::Continue
            }
            "response.function_call_arguments.delta" | "response.function_call_arguments.done" => {
                let id = event
                    .get("item_id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let slot = match self.call_args.iter().position(|(i, _)| *i == id) {
                    Some(i) => i,
                    None => {
                        self.call_args.push((id, String::new()));
                        self.call_args.len() - 1
                    }
                };
                if let Some((_, args)) = self.call_args.get_mut(slot) {
                    if kind.ends_with(".done") {
                        if let Some(a) = event.get("arguments").and_then(Value::as_str) {
                            *args = a.to_string();
                        }
                    } else if let Some(d) = event.get("delta").and_then(Value::as_str) {
                        args.push_str(d);
                    }
                }
                Step::Continue
            }
            "response.output_item.done" => {
                if let Some(item) = event.get("item").filter(|i| i.is_object()) {
                    self.unstreamed_item_text(item, emit);
                    if self.phase_markers
                        && item.get("type").and_then(Value::as_str) == Some("message")
                        && let Some(marker) = item
                            .get("phase")
                            .and_then(Value::as_str)
                            .and_then(crate::phase::marker)
                    {
                        emit(Event::TextDelta(marker));
                    }
                    if let Some(url) = crate::images::from_output_item(item) {
                        self.visible_output = true;
                        emit(Event::Image(url));
                    }
                    let mut item = item.clone();
                    self.fill_arguments(&mut item, &[]);
                    self.output.push(item);
                }
                if let Some(item) = event.get("item").filter(|i| i.is_object()) {
                    self.server_tool_done(item, emit);
                }
                let annotations = event
                    .pointer("/item/content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|part| part.get("annotations").and_then(Value::as_array))
                    .flatten()
                    .filter_map(citation_of)
                    .collect::<Vec<_>>();
                for c in annotations {
                    self.cite(c, emit);
                }
                Step::Continue
            }
            "response.completed" | "response.done" | "response.incomplete" => {
                let response = event.get("response").cloned().unwrap_or(Value::Null);
                if response.get("status").and_then(Value::as_str) == Some("failed") {
                    return Step::Failed(errors::from_stream_event(&error_id(), &event));
                }
                if let Some(items) = response
                    .get("output")
                    .and_then(Value::as_array)
                    .filter(|items| !items.is_empty())
                {
                    let gathered = std::mem::take(&mut self.output);
                    self.output = items.clone();
                    let mut output = std::mem::take(&mut self.output);
                    for item in &mut output {
                        self.fill_arguments(item, &gathered);
                    }
                    self.output = output;
                }
                let mut finish = finish_of(&response);
                if kind == "response.incomplete" {
                    finish = match finish {
                        FinishReason::ContentFilter => FinishReason::ContentFilter,
                        _ => FinishReason::Length,
                    };
                }
                Step::Completed {
                    finish,
                    usage: response.get("usage").and_then(usage_from),
                }
            }
            _ if kind.starts_with("response.fusion_call.") => {
                for e in self.fusion.feed(kind, &event) {
                    emit(Event::OpenWebUiEvent(e));
                }
                Step::Continue
            }
            "response.failed" | "error" | "response.error" => {
                Step::Failed(errors::from_stream_event(&error_id(), &event))
            }
            _ => {
                self.ignored += 1;
                Step::Continue
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(payloads: &[&str]) -> (Vec<Event>, Step, ResponsesStream) {
        let mut s = ResponsesStream::default();
        let mut out = Vec::new();
        let mut last = Step::Continue;
        for p in payloads {
            last = s.feed(
                p,
                &mut |e| {
                    out.push(e);
                    true
                },
                &mut || "e1".to_string(),
            );
            if last != Step::Continue {
                break;
            }
        }
        (out, last, s)
    }

    fn run_with(mut s: ResponsesStream, payloads: &[&str]) -> Vec<Event> {
        let mut out = Vec::new();
        for p in payloads {
            s.feed(
                p,
                &mut |e| {
                    out.push(e);
                    true
                },
                &mut || "e1".to_string(),
            );
        }
        out
    }

    fn texts(events: &[Event]) -> (String, String) {
        let mut text = String::new();
        let mut reasoning = String::new();
        for e in events {
            match e {
                Event::TextDelta(t) => text.push_str(t),
                Event::ReasoningDelta(t) => reasoning.push_str(t),
                _ => {}
            }
        }
        (text, reasoning)
    }

    #[test]
    fn text_that_never_streamed_comes_from_done_events_or_the_finished_item_once() {
        // Deltas, then the `.done` events and the finished items repeat the same text: once.
        let streamed = run_with(
            ResponsesStream::default(),
            &[
                r#"{"type":"response.reasoning_summary_text.delta","item_id":"rs","summary_index":0,"delta":"Plan"}"#,
                r#"{"type":"response.reasoning_summary_text.done","item_id":"rs","summary_index":0,"text":"Plan"}"#,
                r#"{"type":"response.output_item.done","item":{"type":"reasoning","id":"rs","summary":[{"type":"summary_text","text":"Plan"}]}}"#,
                r#"{"type":"response.output_text.delta","item_id":"m","delta":"Hi"}"#,
                r#"{"type":"response.output_text.done","item_id":"m","text":"Hi"}"#,
                r#"{"type":"response.output_item.done","item":{"type":"message","id":"m","content":[{"type":"output_text","text":"Hi"}]}}"#,
            ],
        );
        assert_eq!(texts(&streamed), ("Hi".into(), "Plan".into()));
        // No deltas at all: the `.done` events carry it.
        let done_only = run_with(
            ResponsesStream::default(),
            &[
                r#"{"type":"response.reasoning_summary_text.done","item_id":"rs","summary_index":0,"text":"Plan"}"#,
                r#"{"type":"response.output_text.done","item_id":"m","text":"Hi"}"#,
                r#"{"type":"response.output_item.done","item":{"type":"message","id":"m","content":[{"type":"output_text","text":"Hi"}]}}"#,
            ],
        );
        assert_eq!(texts(&done_only), ("Hi".into(), "Plan".into()));
        // Only finished items: their text, reasoning first as it came.
        let items_only = run_with(
            ResponsesStream {
                phase_markers: true,
                ..ResponsesStream::default()
            },
            &[
                r#"{"type":"response.output_item.done","item":{"type":"reasoning","id":"rs","summary":[{"type":"summary_text","text":"A"},{"type":"summary_text","text":"B"}]}}"#,
                r#"{"type":"response.output_item.done","item":{"type":"message","id":"m","phase":"final_answer","content":[{"type":"output_text","text":"Hi "},{"type":"output_text","text":"there"}]}}"#,
            ],
        );
        let (text, reasoning) = texts(&items_only);
        assert_eq!(reasoning, "A\n\nB");
        // The answer comes before the message's phase marker.
        assert!(text.starts_with("Hi there"), "{text:?}");
        assert!(text.contains("[P:final_answer]"), "{text:?}");
    }

    #[test]
    fn deltas_without_an_item_id_are_never_repeated_from_done_events() {
        let events = run_with(
            ResponsesStream::default(),
            &[
                r#"{"type":"response.reasoning_summary_text.delta","delta":"Plan"}"#,
                r#"{"type":"response.output_text.delta","delta":"Hi"}"#,
                r#"{"type":"response.output_text.done","item_id":"m","text":"Hi"}"#,
                r#"{"type":"response.output_item.done","item":{"type":"reasoning","id":"rs","summary":[{"type":"summary_text","text":"Plan"}]}}"#,
                r#"{"type":"response.output_item.done","item":{"type":"message","id":"m","content":[{"type":"output_text","text":"Hi"}]}}"#,
            ],
        );
        assert_eq!(texts(&events), ("Hi".into(), "Plan".into()));
    }

    #[test]
    fn a_refusal_is_the_answer() {
        let (events, step, s) = run(&[
            r#"{"type":"response.refusal.delta","item_id":"m","delta":"I can't "}"#,
            r#"{"type":"response.refusal.delta","item_id":"m","delta":"help with that."}"#,
            r#"{"type":"response.refusal.done","item_id":"m","refusal":"I can't help with that."}"#,
            r#"{"type":"response.output_item.done","item":{"type":"message","id":"m","content":[{"type":"refusal","refusal":"I can't help with that."}]}}"#,
            r#"{"type":"response.completed","response":{"status":"completed"}}"#,
        ]);
        assert_eq!(texts(&events).0, "I can't help with that.");
        assert!(s.visible_output);
        assert!(matches!(step, Step::Completed { .. }));
    }

    #[test]
    fn fusion_events_become_statuses_a_panel_and_citations() {
        let events = run_with(
            ResponsesStream::default(),
            &[
                r#"{"type":"response.output_item.added","item":{"type":"openrouter:fusion","id":"st_f"}}"#,
                r#"{"type":"response.fusion_call.in_progress","item_id":"st_f"}"#,
                r#"{"type":"response.fusion_call.panel.added","item_id":"st_f","model":"a/one"}"#,
                r#"{"type":"response.fusion_call.panel.completed","item_id":"st_f","model":"a/one","content":"42"}"#,
                r#"{"type":"response.fusion_call.completed","item_id":"st_f"}"#,
                r#"{"type":"response.output_item.done","item":{"type":"openrouter:fusion","id":"st_f","status":"completed","sources":[{"url":"https://s.example/p","title":"P"}]}}"#,
            ],
        );
        let owui: Vec<Value> = events
            .iter()
            .filter_map(|e| match e {
                Event::OpenWebUiEvent(s) => serde_json::from_str(s).ok(),
                _ => None,
            })
            .collect();
        assert_eq!(owui[0]["data"]["description"], "Asking the Fusion panel…");
        let saved: Vec<&Value> = owui.iter().filter(|e| e["type"] == "embeds").collect();
        assert_eq!(saved.len(), 1, "{owui:?}");
        assert!(
            saved[0]["data"]["embeds"][0]
                .as_str()
                .unwrap()
                .contains("a/one")
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Citation(c) if c.url == "https://s.example/p"))
        );
        // Nothing of the panel reaches the answer text.
        assert!(!events.iter().any(|e| matches!(e, Event::TextDelta(_))));
    }

    #[test]
    fn server_tool_cards_are_appended_only_when_asked_for() {
        let payloads = [
            r#"{"type":"response.output_item.done","item":{"type":"openrouter:datetime","id":"dt1","status":"completed","datetime":"2026-12-01T00:00:00Z","timezone":"UTC"}}"#,
        ];
        let cards = |events: &[Event]| {
            events
                .iter()
                .filter(|e| matches!(e, Event::TextDelta(t) if t.contains("<details type=\"tool_calls\"")))
                .count()
        };
        assert_eq!(cards(&run_with(ResponsesStream::default(), &payloads)), 0);
        let on = ResponsesStream {
            tool_cards: true,
            ..ResponsesStream::default()
        };
        assert_eq!(cards(&run_with(on, &payloads)), 1);
    }

    #[test]
    fn text_and_reasoning_deltas_are_emitted_and_usage_ends_it() {
        let (events, step, s) = run(&[
            r#"{"type":"response.created","response":{}}"#,
            r#"{"type":"response.reasoning_summary_text.delta","item_id":"rs1","summary_index":0,"delta":"Thinking"}"#,
            r#"{"type":"response.reasoning_text.delta","item_id":"rs1","content_index":0,"delta":"deeply"}"#,
            r#"{"type":"response.output_text.delta","delta":"Hi"}"#,
            r#"{"type":"response.completed","response":{"status":"completed","usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":2},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":3},"total_tokens":15,"cost":0.0012}}}"#,
        ]);
        assert_eq!(events[0], Event::ReasoningDelta("Thinking".into()));
        assert_eq!(events[1], Event::ReasoningDelta("\n\ndeeply".into()));
        assert_eq!(events[2], Event::TextDelta("Hi".into()));
        assert!(s.visible_output);
        let Step::Completed { finish, usage } = step else {
            panic!("{step:?}")
        };
        assert_eq!(finish, FinishReason::Stop);
        let u = usage.unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (10, 5, 15)
        );
        assert_eq!((u.cached_tokens, u.reasoning_tokens), (2, 3));
        assert_eq!(u.cost_usd, Some(0.0012));
    }

    #[test]
    fn output_items_are_gathered_and_the_terminal_output_wins() {
        let (_, _, s) = run(&[
            r#"{"type":"response.output_item.done","item":{"type":"reasoning","id":"rs1","encrypted_content":"gAAA"}}"#,
            r#"{"type":"response.output_item.done","item":{"type":"function_call","call_id":"c1","name":"f","arguments":""}}"#,
            r#"{"type":"response.completed","response":{"status":"completed"}}"#,
        ]);
        assert_eq!(s.output.len(), 2);
        assert_eq!(s.output[1]["call_id"], "c1");
        let (_, _, s) = run(&[
            r#"{"type":"response.output_item.done","item":{"type":"function_call","call_id":"c1","name":"f","arguments":""}}"#,
            r#"{"type":"response.completed","response":{"status":"completed","output":[{"type":"function_call","call_id":"c1","name":"f","arguments":"{\"a\":1}"}]}}"#,
        ]);
        assert_eq!(s.output.len(), 1);
        assert_eq!(s.output[0]["arguments"], "{\"a\":1}");
    }

    #[test]
    fn message_phases_become_marker_lines_after_their_text_when_asked() {
        let payloads = [
            r#"{"type":"response.output_text.delta","delta":"Checking."}"#,
            r#"{"type":"response.output_item.done","item":{"type":"message","role":"assistant","phase":"commentary","content":[]}}"#,
            r#"{"type":"response.output_text.delta","delta":"Four."}"#,
            r#"{"type":"response.output_item.done","item":{"type":"message","role":"assistant","phase":"final_answer","content":[]}}"#,
            r#"{"type":"response.completed","response":{"status":"completed"}}"#,
        ];
        let (events, _, _) = run(&payloads);
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, Event::TextDelta(t) if t.contains("[P:"))),
            "off by default"
        );
        let mut s = ResponsesStream {
            phase_markers: true,
            ..ResponsesStream::default()
        };
        let mut text = String::new();
        for p in payloads {
            s.feed(
                p,
                &mut |e| {
                    if let Event::TextDelta(t) = e {
                        text.push_str(&t);
                    }
                    true
                },
                &mut || "e1".to_string(),
            );
        }
        assert_eq!(
            crate::phase::split(&text),
            vec![
                ("Checking.".to_string(), Some("commentary")),
                ("Four.".to_string(), Some("final_answer"))
            ]
        );
    }

    #[test]
    fn annotations_of_a_finished_content_part_are_cited_once() {
        let (events, _, _) = run(&[
            r#"{"type":"response.output_text.annotation.added","annotation":{"type":"url_citation","url":"https://a.example/x","title":"A"}}"#,
            r#"{"type":"response.content_part.done","part":{"type":"output_text","text":"t","annotations":[{"type":"url_citation","url":"https://a.example/x","title":"A"},{"type":"url_citation","url":"https://b.example/y","title":"B"}]}}"#,
        ]);
        let urls: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                Event::Citation(c) => Some(c.url.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(urls, ["https://a.example/x", "https://b.example/y"]);
    }

    #[test]
    fn a_generated_image_item_becomes_an_image_event() {
        let (events, _, s) = run(&[
            r#"{"type":"response.output_item.added","item":{"type":"image_generation_call","id":"ig1","status":"in_progress"}}"#,
            r#"{"type":"response.output_item.done","item":{"type":"image_generation_call","id":"ig1","status":"completed","result":"iVBORw0KGgo="}}"#,
            r#"{"type":"response.completed","response":{"status":"completed"}}"#,
        ]);
        assert!(events.contains(&Event::Image("data:image/png;base64,iVBORw0KGgo=".into())));
        assert!(s.visible_output);
    }

    #[test]
    fn function_call_arguments_come_from_deltas_or_the_terminal_output() {
        // Arguments only in the argument deltas: the item events carry none.
        let (events, _, s) = run(&[
            r#"{"type":"response.output_item.added","item":{"type":"function_call","id":"fc1","call_id":"c1","name":"get_weather","arguments":""}}"#,
            r#"{"type":"response.function_call_arguments.delta","item_id":"fc1","delta":"{\"city\":"}"#,
            r#"{"type":"response.function_call_arguments.delta","item_id":"fc1","delta":"\"Paris\"}"}"#,
            r#"{"type":"response.output_item.done","item":{"type":"function_call","id":"fc1","call_id":"c1","name":"get_weather","arguments":""}}"#,
            r#"{"type":"response.completed","response":{"status":"completed","output":[{"type":"function_call","id":"fc1","call_id":"c1","name":"get_weather","arguments":""}]}}"#,
        ]);
        assert!(!events.iter().any(|e| matches!(e, Event::ToolCalls(_))));
        let calls = function_calls(&s.output);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].call_id, "c1");
        assert_eq!(calls[0].name, "get_weather");
        assert_eq!(calls[0].arguments_json, r#"{"city":"Paris"}"#);
        // Arguments only in `response.completed` (the quirk): the terminal output wins.
        let (_, _, s) = run(&[
            r#"{"type":"response.output_item.done","item":{"type":"function_call","call_id":"c2","name":"now","arguments":""}}"#,
            r#"{"type":"response.completed","response":{"status":"completed","output":[{"type":"function_call","call_id":"c2","name":"now","arguments":"{\"tz\":\"UTC\"}"}]}}"#,
        ]);
        assert_eq!(
            function_calls(&s.output)[0].arguments_json,
            r#"{"tz":"UTC"}"#
        );
    }

    #[test]
    fn url_citations_are_emitted_once_with_tracking_stripped() {
        let (events, _, _) = run(&[
            r#"{"type":"response.output_text.annotation.added","annotation":{"type":"url_citation","url":"https://ex.com/a?utm_source=openai","title":"A"}}"#,
            r#"{"type":"response.output_item.done","item":{"type":"message","content":[{"type":"output_text","annotations":[{"type":"url_citation","url":"https://ex.com/a?utm_source=openai"},{"type":"url_citation","url":"https://ex.com/b","title":"B"}]}]}}"#,
            r#"{"type":"response.completed","response":{"status":"completed"}}"#,
        ]);
        let cites: Vec<&Citation> = events
            .iter()
            .filter_map(|e| match e {
                Event::Citation(c) => Some(c),
                _ => None,
            })
            .collect();
        assert_eq!(cites.len(), 2);
        assert_eq!(cites[0].url, "https://ex.com/a");
        assert_eq!(cites[1].title, "B");
    }

    #[test]
    fn server_tools_and_the_answer_start_are_announced_as_statuses() {
        let (events, _, _) = run(&[
            r#"{"type":"response.output_item.added","item":{"type":"openrouter:web_search"}}"#,
            r#"{"type":"response.output_item.done","item":{"type":"web_search_call","action":{"type":"search","query":"rust wasm"}}}"#,
            r#"{"type":"response.output_item.added","item":{"type":"message"}}"#,
            r#"{"type":"response.output_item.added","item":{"type":"message"}}"#,
            r#"{"type":"response.completed","response":{"status":"completed"}}"#,
        ]);
        let statuses: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                Event::OpenWebUiEvent(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(statuses.len(), 3, "{statuses:?}");
        assert!(statuses[0].contains("Searching the web"));
        assert!(statuses[1].contains("rust wasm"));
        assert!(statuses[2].contains("Responding to the user"));
    }

    #[test]
    fn malformed_payloads_are_counted_and_skipped() {
        let (events, step, s) = run(&[
            r#"{"type":"response.output_text.delta","delta":"a"}"#,
            "{not json",
            r#"{"type":"response.output_text.delta","delta":"b"}"#,
            r#"{"type":"response.completed","response":{"status":"completed"}}"#,
        ]);
        assert_eq!(events.len(), 2);
        assert_eq!(s.malformed, 1);
        assert!(matches!(step, Step::Completed { .. }));
    }

    #[test]
    fn failures_and_incomplete_are_terminal() {
        let (_, step, s) = run(&[
            r#"{"type":"response.failed","response":{"status":"failed","error":{"code":"server_error","message":"x"}}}"#,
        ]);
        assert!(matches!(step, Step::Failed(ref e) if e.code.as_deref() == Some("server_error")));
        assert!(!s.visible_output);
        let (_, step, _) = run(&[
            r#"{"type":"response.incomplete","response":{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"}}}"#,
        ]);
        assert!(matches!(
            step,
            Step::Completed {
                finish: FinishReason::Length,
                ..
            }
        ));
    }
}
