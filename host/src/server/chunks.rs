//! Guest events → OpenAI wire format: `chat.completion.chunk` SSE lines for `stream:true`, one
//! `chat.completion` object for `stream:false`. Mid-stream errors are written as a bare
//! `{"error":{...}}` chunk without `choices` (Open WebUI's stream reader shows an error only when
//! the chunk has no `choices`; an error chunk that carries them is silently dropped). Open WebUI UI events are written as `{"event":{...}}` lines only for Open
//! WebUI callers, so other OpenAI clients get a clean stream.

use crate::bindings::types::{Citation, ErrorBody, Event, FinishReason, ToolCall, Usage};
use serde_json::{Value, json};

/// The OpenAI `finish_reason` string.
pub fn finish_str(f: FinishReason) -> &'static str {
    match f {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::Error => "error",
    }
}

/// OpenAI usage object plus OpenRouter's `cost`.
pub fn usage_json(u: &Usage) -> Value {
    let mut v = json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": { "cached_tokens": u.cached_tokens },
        "completion_tokens_details": { "reasoning_tokens": u.reasoning_tokens },
    });
    if let (Some(cost), Some(obj)) = (u.cost_usd, v.as_object_mut()) {
        obj.insert("cost".into(), json!(cost));
    }
    v
}

/// The OpenAI-style error object (`{"error":{...}}`).
pub fn error_json(e: &ErrorBody, request_id: &str) -> Value {
    json!({
        "error": {
            "message": e.message,
            "type": e.error_type,
            "code": e.code,
            "error_id": e.error_id,
            "request_id": request_id,
        }
    })
}

/// An OpenAI `url_citation` annotation.
fn annotation_json(c: &Citation) -> Value {
    json!({
        "type": "url_citation",
        "url_citation": { "url": c.url, "title": c.title, "content": c.content },
    })
}

/// OpenRouter's chat-completions image shape (`delta.images[]`, `message.images[]`).
fn image_json(url: &str) -> Value {
    json!({ "type": "image_url", "image_url": { "url": url } })
}

fn tool_calls_json(calls: &[ToolCall]) -> Value {
    Value::Array(
        calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                json!({
                    "index": i,
                    "id": c.call_id,
                    "type": "function",
                    "function": { "name": c.name, "arguments": c.arguments_json },
                })
            })
            .collect(),
    )
}

/// Encodes one streamed chat.
pub struct ChunkEncoder {
    id: String,
    created: u64,
    model: String,
    openwebui: bool,
    role_sent: bool,
    usage: Option<Usage>,
    finished: bool,
}

impl ChunkEncoder {
    pub fn new(request_id: &str, created: u64, model: &str, openwebui: bool) -> Self {
        ChunkEncoder {
            id: format!("chatcmpl-{request_id}"),
            created,
            model: model.to_string(),
            openwebui,
            role_sent: false,
            usage: None,
            finished: false,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
        })
    }

    fn delta(&mut self, key: &str, value: Value) -> Value {
        let mut delta = serde_json::Map::new();
        if !self.role_sent {
            delta.insert("role".into(), json!("assistant"));
            self.role_sent = true;
        }
        delta.insert(key.into(), value);
        self.chunk(Value::Object(delta), None)
    }

    /// The SSE `data:` payloads for one event (possibly none).
    pub fn encode(&mut self, event: Event, request_id: &str) -> Vec<String> {
        match event {
            Event::TextDelta(s) => vec![self.delta("content", json!(s)).to_string()],
            Event::ReasoningDelta(s) => vec![self.delta("reasoning", json!(s)).to_string()],
            Event::ToolCalls(calls) => vec![
                self.delta("tool_calls", tool_calls_json(&calls))
                    .to_string(),
            ],
            Event::Citation(c) => vec![
                self.delta("annotations", json!([annotation_json(&c)]))
                    .to_string(),
            ],
            Event::Image(url) => vec![self.delta("images", json!([image_json(&url)])).to_string()],
            Event::Usage(u) => {
                self.usage = Some(u);
                vec![]
            }
            Event::OpenwebuiEvent(e) => {
                if !self.openwebui {
                    return vec![];
                }
                match serde_json::from_str::<Value>(&e) {
                    Ok(v) if v.is_object() => vec![json!({ "event": v }).to_string()],
                    _ => vec![],
                }
            }
            Event::Finish(f) => self.finish(Some(f)),
            Event::Error(e) => vec![error_json(&e, request_id).to_string()],
        }
    }

    /// The closing chunks: the finish reason (once) and the usage chunk (`choices: []`).
    pub fn finish(&mut self, f: Option<FinishReason>) -> Vec<String> {
        let mut out = Vec::new();
        if !self.finished {
            self.finished = true;
            if let Some(f) = f {
                out.push(self.chunk(json!({}), Some(finish_str(f))).to_string());
            }
        }
        if let Some(u) = self.usage.take() {
            out.push(
                json!({
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "choices": [],
                    "usage": usage_json(&u),
                })
                .to_string(),
            );
        }
        out
    }
}

/// Collects a whole chat for `stream:false`.
#[derive(Default)]
pub struct Collector {
    pub content: String,
    pub reasoning: String,
    pub tool_calls: Vec<ToolCall>,
    pub citations: Vec<Citation>,
    pub images: Vec<String>,
    pub usage: Option<Usage>,
    pub finish: Option<FinishReason>,
    pub error: Option<ErrorBody>,
}

impl Collector {
    pub fn push(&mut self, event: Event) {
        match event {
            Event::TextDelta(s) => self.content.push_str(&s),
            Event::ReasoningDelta(s) => self.reasoning.push_str(&s),
            Event::ToolCalls(calls) => self.tool_calls.extend(calls),
            Event::Citation(c) => self.citations.push(c),
            Event::Image(url) => self.images.push(url),
            Event::Usage(u) => self.usage = Some(u),
            Event::OpenwebuiEvent(_) => {}
            Event::Finish(f) => self.finish = Some(f),
            Event::Error(e) => {
                if self.error.is_none() {
                    self.error = Some(e);
                }
            }
        }
    }

    /// The `chat.completion` object.
    pub fn completion(&self, request_id: &str, created: u64, model: &str) -> Value {
        let mut message = json!({ "role": "assistant", "content": self.content });
        if let Some(obj) = message.as_object_mut() {
            if !self.reasoning.is_empty() {
                obj.insert("reasoning".into(), json!(self.reasoning));
            }
            if !self.citations.is_empty() {
                obj.insert(
                    "annotations".into(),
                    Value::Array(self.citations.iter().map(annotation_json).collect()),
                );
            }
            if !self.tool_calls.is_empty() {
                obj.insert("tool_calls".into(), tool_calls_json(&self.tool_calls));
            }
            if !self.images.is_empty() {
                obj.insert(
                    "images".into(),
                    Value::Array(self.images.iter().map(|u| image_json(u)).collect()),
                );
            }
        }
        let mut v = json!({
            "id": format!("chatcmpl-{request_id}"),
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": message,
                "finish_reason": finish_str(self.finish.unwrap_or(FinishReason::Stop)),
            }],
        });
        if let (Some(u), Some(obj)) = (&self.usage, v.as_object_mut()) {
            obj.insert("usage".into(), usage_json(u));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage() -> Usage {
        Usage {
            prompt_tokens: 3,
            completion_tokens: 4,
            total_tokens: 7,
            cached_tokens: 1,
            reasoning_tokens: 2,
            cost_usd: Some(0.5),
        }
    }

    #[test]
    fn the_first_delta_carries_the_role_and_usage_comes_last_without_choices() {
        let mut enc = ChunkEncoder::new("r1", 1, "m", false);
        let a: Value =
            serde_json::from_str(&enc.encode(Event::TextDelta("hi".into()), "r1")[0]).unwrap();
        assert_eq!(a["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(a["choices"][0]["delta"]["content"], "hi");
        let b: Value =
            serde_json::from_str(&enc.encode(Event::ReasoningDelta("th".into()), "r1")[0]).unwrap();
        assert!(b["choices"][0]["delta"].get("role").is_none());
        assert_eq!(b["choices"][0]["delta"]["reasoning"], "th");
        assert!(enc.encode(Event::Usage(usage()), "r1").is_empty());
        let end = enc.encode(Event::Finish(FinishReason::Stop), "r1");
        assert_eq!(end.len(), 2);
        let fin: Value = serde_json::from_str(&end[0]).unwrap();
        assert_eq!(fin["choices"][0]["finish_reason"], "stop");
        let u: Value = serde_json::from_str(&end[1]).unwrap();
        assert_eq!(u["choices"], json!([]));
        assert_eq!(u["usage"]["prompt_tokens_details"]["cached_tokens"], 1);
        assert_eq!(
            u["usage"]["completion_tokens_details"]["reasoning_tokens"],
            2
        );
        assert_eq!(u["usage"]["cost"], 0.5);
    }

    #[test]
    fn images_become_delta_images_and_message_images() {
        let url = "data:image/png;base64,iVBORw0KGgo=";
        let mut enc = ChunkEncoder::new("r", 1, "m", false);
        let line: Value =
            serde_json::from_str(&enc.encode(Event::Image(url.into()), "r")[0]).unwrap();
        assert_eq!(
            line["choices"][0]["delta"]["images"],
            json!([{"type": "image_url", "image_url": {"url": url}}])
        );
        let mut all = Collector::default();
        all.push(Event::Image(url.into()));
        let done = all.completion("r", 1, "m");
        assert_eq!(
            done["choices"][0]["message"]["images"][0]["image_url"]["url"],
            url
        );
    }

    #[test]
    fn mid_stream_errors_are_bare_and_ui_events_only_reach_open_webui() {
        let err = ErrorBody {
            message: "m".into(),
            error_type: "t".into(),
            code: Some("c".into()),
            http_status: 502,
            retry_after_seconds: None,
            error_id: "e".into(),
        };
        let mut enc = ChunkEncoder::new("r", 1, "m", false);
        let line: Value = serde_json::from_str(&enc.encode(Event::Error(err), "r")[0]).unwrap();
        assert!(line.get("choices").is_none());
        assert_eq!(line["error"]["request_id"], "r");
        let ev = Event::OpenwebuiEvent(r#"{"type":"status","data":{"description":"x"}}"#.into());
        assert!(enc.encode(ev.clone(), "r").is_empty());
        let mut owui = ChunkEncoder::new("r", 1, "m", true);
        let line: Value = serde_json::from_str(&owui.encode(ev, "r")[0]).unwrap();
        assert_eq!(line["event"]["type"], "status");
    }
}
