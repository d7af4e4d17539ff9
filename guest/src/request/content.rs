//! The conversation: chat messages cleaned once (image policy, tool-call pairing), then
//! rendered as Responses `input` items or kept as chat messages.
//!
//! Images are forwarded only on the latest user turn, only to vision models, and at most
//! `MAX_INPUT_IMAGES_PER_REQUEST` of them: history images would be re-sent (and billed) on
//! every turn, and a non-vision provider rejects the whole request. A tool call without its
//! output, or an output without its call, is rejected upstream, so both are dropped.

use super::RequestSettings;
use crate::chat_body::content_text;
use crate::model::ModelInfo;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// Which images may be sent.
pub(super) struct ImagePolicy {
    vision: bool,
    limit: usize,
    /// `IMAGE_INPUT_SELECTION=user_then_assistant`: without user images, reuse the images of
    /// the assistant reply just before (Markdown `![](url)`), e.g. to edit a generated image.
    assistant_fallback: bool,
}

impl ImagePolicy {
    pub(super) fn from_settings(settings: &RequestSettings, model: &ModelInfo) -> ImagePolicy {
        ImagePolicy {
            vision: model.capabilities.vision,
            limit: settings.max_input_images_per_request.clamp(1, 20) as usize,
            assistant_fallback: settings.image_input_selection.trim() == "user_then_assistant",
        }
    }
}

/// The cleaned conversation (chat shape) and the notices the cleaning produced.
pub(super) struct Conversation {
    pub messages: Vec<Value>,
    pub notices: Vec<String>,
}

impl Conversation {
    /// Whether anything is left for the model to answer: a user, assistant or tool message.
    /// Instructions alone (or nothing at all) are not a conversation.
    pub fn has_turns(&self) -> bool {
        self.messages
            .iter()
            .any(|m| matches!(role(m), "user" | "assistant" | "tool"))
    }
}

fn role(m: &Value) -> &str {
    m.get("role").and_then(Value::as_str).unwrap_or("")
}

fn trimmed(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A tool call's id, when it is a usable function call (id and function name present).
fn call_id(call: &Value) -> Option<&str> {
    let named = trimmed(call.get("function").and_then(|f| f.get("name"))).is_some();
    let id = trimmed(call.get("id")).or_else(|| trimmed(call.get("call_id")));
    id.filter(|_| named)
}

/// The id a tool message answers.
fn output_id(m: &Value) -> Option<&str> {
    trimmed(m.get("tool_call_id"))
        .or_else(|| trimmed(m.get("call_id")))
        .or_else(|| trimmed(m.get("id")))
}

fn block_type(block: &Value) -> &str {
    block.get("type").and_then(Value::as_str).unwrap_or("")
}

fn is_image(block: &Value) -> bool {
    matches!(block_type(block), "image_url" | "input_image")
}

/// The URL of an image block (`image_url` as a string or `{url}`), if any.
fn image_url(block: &Value) -> Option<&str> {
    let v = block.get("image_url");
    trimmed(v)
        .or_else(|| trimmed(v.and_then(|u| u.get("url"))))
        .or_else(|| trimmed(block.get("url")))
}

fn image_detail(block: &Value) -> Option<&str> {
    block
        .get("detail")
        .or_else(|| block.get("image_url").and_then(|u| u.get("detail")))
        .and_then(Value::as_str)
        .filter(|d| matches!(*d, "auto" | "low" | "high" | "original"))
}

/// Image URLs in Markdown `![alt](url)`, for http(s) and `data:image/` URLs only (relative
/// Open WebUI file paths mean nothing upstream).
fn markdown_images(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("![") {
        rest = &rest[start + 2..];
        let Some(close) = rest.find("](") else { break };
        rest = &rest[close + 2..];
        let end = rest
            .find(|c: char| c == ')' || c.is_whitespace())
            .unwrap_or(rest.len());
        let url = &rest[..end];
        rest = &rest[end..];
        if url.starts_with("https://")
            || url.starts_with("http://")
            || url.starts_with("data:image/")
        {
            out.push(url.to_string());
        }
    }
    out
}

/// Applies the image policy and tool pairing; every kept message stays in chat shape.
pub(super) fn prepare_messages(raw: &[Value], policy: &ImagePolicy) -> Conversation {
    let answered: BTreeSet<&str> = raw
        .iter()
        .filter(|m| role(m) == "tool")
        .filter_map(output_id)
        .collect();
    let called: BTreeSet<&str> = raw
        .iter()
        .filter(|m| role(m) == "assistant")
        .filter_map(|m| m.get("tool_calls").and_then(Value::as_array))
        .flatten()
        .filter_map(call_id)
        .collect();
    let latest_user = raw.iter().rposition(|m| role(m) == "user");
    let mut notices = Vec::new();
    let mut messages = Vec::with_capacity(raw.len());

    for (index, message) in raw.iter().enumerate() {
        let Some(m) = message.as_object() else {
            continue;
        };
        match role(message) {
            "user" => {
                let latest = Some(index) == latest_user;
                let fallback = if latest && policy.assistant_fallback && policy.vision {
                    raw[..index]
                        .iter()
                        .rev()
                        .find(|m| role(m) == "assistant")
                        .map(|m| markdown_images(&content_text(m.get("content"))))
                        .unwrap_or_default()
                } else {
                    Vec::new()
                };
                if let Some(kept) = user_message(m, latest, policy, fallback, &mut notices) {
                    messages.push(kept);
                }
            }
            "assistant" => {
                let mut kept = m.clone();
                let calls: Vec<Value> = m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .map(|calls| {
                        calls
                            .iter()
                            .filter(|c| call_id(c).is_some_and(|id| answered.contains(id)))
                            .map(normalise_tool_call)
                            .collect()
                    })
                    .unwrap_or_default();
                if calls.is_empty() {
                    kept.remove("tool_calls");
                } else {
                    kept.insert("tool_calls".into(), Value::Array(calls));
                }
                match m.get("reasoning_details").map(clean_reasoning_details) {
                    Some(details) if !details.is_empty() => {
                        kept.insert("reasoning_details".into(), Value::Array(details));
                    }
                    _ => {
                        kept.remove("reasoning_details");
                    }
                }
                let has_text = !content_text(m.get("content")).trim().is_empty();
                if has_text || kept.contains_key("tool_calls") {
                    messages.push(Value::Object(kept));
                }
            }
            "tool" => {
                if let Some(id) = output_id(message).filter(|id| called.contains(id)) {
                    let mut kept = m.clone();
                    kept.insert("tool_call_id".into(), json!(id));
                    kept.remove("call_id");
                    // A tool result is text on both endpoints: a missing one is "", any other
                    // non-string content is sent as its JSON text.
                    let output = match m.get("content") {
                        Some(Value::String(_)) => None,
                        None | Some(Value::Null) => Some(String::new()),
                        Some(other) => Some(other.to_string()),
                    };
                    if let Some(output) = output {
                        kept.insert("content".into(), json!(output));
                    }
                    messages.push(Value::Object(kept));
                }
            }
            // An instruction without text says nothing; both endpoints would send an empty
            // message (which `/chat/completions` rejects), so it is left out.
            "system" | "developer" => {
                if !system_blocks(m.get("content")).is_empty() {
                    messages.push(message.clone());
                }
            }
            _ => messages.push(message.clone()),
        }
    }
    Conversation { messages, notices }
}

/// The reasoning formats OpenRouter names in `reasoning_details[].format`.
const REASONING_FORMATS: &[&str] = &[
    "unknown",
    "openai-responses-v1",
    "azure-openai-responses-v1",
    "bedrock-openai-responses-v1",
    "bedrock-xai-responses-v1",
    "xai-responses-v1",
    "meta-responses-v1",
    "anthropic-claude-v1",
    "google-gemini-v1",
];

/// The `reasoning_details` a caller sent back, reduced to entries OpenRouter can take: each a
/// known `reasoning.*` type with its required string fields, keeping only the fields whose type
/// is right. Anything else in the array is dropped.
fn clean_reasoning_details(details: &Value) -> Vec<Value> {
    let Some(entries) = details.as_array() else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| {
            let o = entry.as_object()?;
            let kind = o.get("type").and_then(Value::as_str)?;
            let (required, optional): (&[&str], &[&str]) = match kind {
                "reasoning.text" => (&[], &["text", "signature"]),
                "reasoning.summary" => (&["summary"], &[]),
                "reasoning.encrypted" => (&["data"], &[]),
                "reasoning.server_tool_call" => {
                    (&["tool_name", "arguments", "result"], &["tool_call_id"])
                }
                _ => return None,
            };
            let mut out = Map::new();
            out.insert("type".into(), json!(kind));
            for key in required {
                out.insert((*key).into(), json!(o.get(*key).and_then(Value::as_str)?));
            }
            for key in optional.iter().chain(&["id"]) {
                if let Some(v) = o.get(*key).filter(|v| v.is_string()) {
                    out.insert((*key).into(), v.clone());
                }
            }
            if let Some(index) = o.get("index").filter(|v| v.is_i64() || v.is_u64()) {
                out.insert("index".into(), index.clone());
            }
            if let Some(format) = o
                .get("format")
                .and_then(Value::as_str)
                .filter(|f| REASONING_FORMATS.contains(f))
            {
                out.insert("format".into(), json!(format));
            }
            Some(Value::Object(out))
        })
        .collect()
}

/// A tool call with its arguments as a JSON string (`"{}"` when missing or blank).
fn normalise_tool_call(call: &Value) -> Value {
    let mut out = call.as_object().cloned().unwrap_or_default();
    if let Some(id) = call_id(call) {
        out.insert("id".into(), json!(id));
    }
    out.remove("call_id");
    out.insert("type".into(), json!("function"));
    if let Some(Value::Object(function)) = out.get_mut("function") {
        let arguments = match function.get("arguments") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            None | Some(Value::Null) | Some(Value::String(_)) => "{}".to_string(),
            Some(other) => other.to_string(),
        };
        function.insert("arguments".into(), Value::String(arguments));
    }
    Value::Object(out)
}

/// A user message after the image policy; `None` when nothing is left to send.
fn user_message(
    m: &Map<String, Value>,
    latest: bool,
    policy: &ImagePolicy,
    fallback: Vec<String>,
    notices: &mut Vec<String>,
) -> Option<Value> {
    let mut out = m.clone();
    let mut blocks: Vec<Value> = match m.get("content") {
        Some(Value::Array(parts)) => parts.clone(),
        Some(Value::String(s)) if fallback.is_empty() || !latest => {
            return (!s.trim().is_empty()).then_some(Value::Object(out));
        }
        Some(Value::String(s)) => vec![json!({"type": "text", "text": s})],
        _ => Vec::new(),
    };
    let mut used = 0usize;
    let mut dropped = 0usize;
    let mut refused = false;
    blocks.retain(|block| {
        if !is_image(block) {
            return true;
        }
        if !latest {
            return false;
        }
        if !policy.vision {
            refused = true;
            return false;
        }
        if image_url(block).is_none() {
            return false;
        }
        if used >= policy.limit {
            dropped += 1;
            return false;
        }
        used += 1;
        true
    });
    if latest && used == 0 && policy.vision && !fallback.is_empty() {
        let reused = fallback
            .into_iter()
            .take(policy.limit)
            .map(|url| json!({"type": "image_url", "image_url": {"url": url}}));
        blocks.splice(0..0, reused);
    }
    if dropped > 0 {
        let plural = if dropped == 1 { "" } else { "s" };
        notices.push(format!(
            "Dropped {dropped} extra image{plural}; limit is {}.",
            policy.limit
        ));
    }
    if refused {
        notices.push("Model does not accept image inputs; skipping user attachments.".into());
    }
    blocks.retain(|b| match b {
        Value::String(s) => !s.is_empty(),
        _ if matches!(block_type(b), "text" | "input_text") => b
            .get("text")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty()),
        _ => true,
    });
    if blocks.is_empty() {
        return None;
    }
    out.insert("content".into(), Value::Array(blocks));
    Some(Value::Object(out))
}

// ---------------------------------------------------------------------------------------------
// Responses rendering

fn input_text(text: &str) -> Value {
    json!({"type": "input_text", "text": text})
}

/// Text blocks of a system/developer message.
fn system_blocks(content: Option<&Value>) -> Vec<Value> {
    match content {
        Some(Value::String(s)) if !s.is_empty() => vec![input_text(s)],
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.as_str()),
                _ => p.get("text").and_then(Value::as_str),
            })
            .filter(|t| !t.is_empty())
            .map(input_text)
            .collect(),
        _ => Vec::new(),
    }
}

/// The object a file block's fields live in: `file` for chat `{"type":"file","file":{…}}`,
/// the block itself for the flat Responses `input_file`.
fn file_fields(block: &Value) -> &Value {
    block.get("file").filter(|f| f.is_object()).unwrap_or(block)
}

/// The audio payload of `input_audio` / `audio` blocks: `(data, format)`, with a data URL
/// split into its base64 payload and the format its MIME type names.
fn audio_parts(block: &Value) -> Option<(String, Option<String>)> {
    let inner = block
        .get("input_audio")
        .or_else(|| block.get("audio"))
        .filter(|v| v.is_object())
        .unwrap_or(block);
    let data = trimmed(inner.get("data"))?;
    let mut format = trimmed(inner.get("format")).map(str::to_ascii_lowercase);
    let mut payload = data.to_string();
    if let Some(rest) = data.strip_prefix("data:")
        && let Some((header, b64)) = rest.split_once(',')
    {
        if format.is_none() {
            format = header
                .split(';')
                .next()
                .and_then(|mime| mime.strip_prefix("audio/"))
                .map(str::to_ascii_lowercase);
        }
        payload = b64.to_string();
    }
    let format = format.map(|f| match f.as_str() {
        "mpeg" | "mpga" | "mp3" => "mp3".to_string(),
        "wav" | "x-wav" | "wave" | "vnd.wave" => "wav".to_string(),
        _ => f,
    });
    Some((payload, format))
}

/// The video URL of `video_url` / `video` / `input_video` blocks.
fn video_url(block: &Value) -> Option<&str> {
    ["video_url", "video", "url"].iter().find_map(|key| {
        let v = block.get(*key);
        trimmed(v).or_else(|| trimmed(v.and_then(|v| v.get("url"))))
    })
}

/// One user content block → its Responses form; `None` drops it (empty or unusable).
fn user_block_to_responses(block: &Value) -> Option<Value> {
    if let Value::String(s) = block {
        return Some(input_text(s));
    }
    match block_type(block) {
        "text" | "input_text" => block.get("text").and_then(Value::as_str).map(input_text),
        "image_url" | "input_image" => Some(json!({
            "type": "input_image",
            "image_url": image_url(block)?,
            "detail": image_detail(block).unwrap_or("auto"),
        })),
        "file" | "input_file" => {
            let fields = file_fields(block);
            let mut out = Map::new();
            out.insert("type".into(), json!("input_file"));
            for key in ["file_id", "file_data", "file_url", "filename"] {
                if let Some(v) = trimmed(fields.get(key)) {
                    out.insert(key.into(), json!(v));
                }
            }
            ["file_id", "file_data", "file_url"]
                .iter()
                .any(|k| out.contains_key(*k))
                .then_some(Value::Object(out))
        }
        "input_audio" | "audio" => {
            let (data, format) = audio_parts(block)?;
            // `/responses` takes only these two formats (`/chat/completions` takes more).
            let format = format.filter(|f| matches!(f.as_str(), "mp3" | "wav"))?;
            Some(json!({
                "type": "input_audio",
                "input_audio": {"data": data, "format": format},
            }))
        }
        "video_url" | "video" | "input_video" => Some(json!({
            "type": "input_video",
            "video_url": video_url(block)?,
        })),
        // Unknown blocks are the caller's business; passed through as sent.
        _ => Some(block.clone()),
    }
}

/// The cleaned conversation as Responses `input` items.
/// The `reasoning` input item for `reasoning_details` the caller sent back on an assistant
/// message (Open WebUI does so for the model that produced them), when they hold something a
/// provider can use again: a signature or an encrypted blob. Summary-only details are left out;
/// they carry nothing to continue from. Replayed artifacts already in front of the message win.
fn caller_reasoning(m: &Value, index: usize) -> Option<Value> {
    let details = m.get("reasoning_details").filter(|d| d.is_array())?;
    let item =
        crate::artifacts::chat_reasoning::item_from_details(details, &format!("rs_{index}"))?;
    let replayable = item.get("signature").is_some() || item.get("encrypted_content").is_some();
    replayable.then(|| crate::artifacts::chat_reasoning::for_responses(&item))
}

pub(super) fn to_responses_input(messages: &[Value]) -> Vec<Value> {
    let mut input = Vec::with_capacity(messages.len());
    for (index, m) in messages.iter().enumerate() {
        match role(m) {
            r @ ("system" | "developer") => {
                let blocks = system_blocks(m.get("content"));
                if !blocks.is_empty() {
                    input.push(json!({"type": "message", "role": r, "content": blocks}));
                }
            }
            "user" => {
                let blocks: Vec<Value> = match m.get("content") {
                    Some(Value::String(s)) => vec![input_text(s)],
                    Some(Value::Array(parts)) => {
                        parts.iter().filter_map(user_block_to_responses).collect()
                    }
                    _ => Vec::new(),
                };
                if !blocks.is_empty() {
                    input.push(json!({"type": "message", "role": "user", "content": blocks}));
                }
            }
            "assistant" => {
                if let Some(item) = caller_reasoning(m, index)
                    && input.last().and_then(|i| i.get("type")) != Some(&json!("reasoning"))
                {
                    input.push(item);
                }
                let text = content_text(m.get("content"));
                // One output message per phased segment (`phase` markers, GPT-5.x), so each
                // goes back with the phase it had.
                for (part, (segment, phase)) in crate::phase::split(&text).into_iter().enumerate() {
                    // The spec's output-message item requires an id and a status; the id only
                    // has to be unique within this request.
                    let mut item = json!({
                        "type": "message",
                        "role": "assistant",
                        "id": if part == 0 { format!("msg_{index}") } else { format!("msg_{index}_{part}") },
                        "status": "completed",
                        "content": [{"type": "output_text", "text": segment, "annotations": []}],
                    });
                    if let (Some(phase), Some(o)) = (phase, item.as_object_mut()) {
                        o.insert("phase".into(), json!(phase));
                    }
                    input.push(item);
                }
                for call in m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let function = call.get("function");
                    input.push(json!({
                        "type": "function_call",
                        "call_id": call.get("id").cloned().unwrap_or(Value::Null),
                        "name": function.and_then(|f| f.get("name")).cloned().unwrap_or(Value::Null),
                        "arguments": function
                            .and_then(|f| f.get("arguments"))
                            .cloned()
                            .unwrap_or_else(|| json!("{}")),
                    }));
                }
            }
            "tool" => {
                let output = match m.get("content") {
                    Some(Value::String(s)) => s.clone(),
                    None | Some(Value::Null) => String::new(),
                    Some(other) => other.to_string(),
                };
                input.push(json!({
                    "type": "function_call_output",
                    "call_id": m.get("tool_call_id").cloned().unwrap_or(Value::Null),
                    "output": output,
                }));
            }
            crate::artifacts::replay::ROLE => {
                if let Some(item) = crate::artifacts::replay::item_of(m) {
                    input.push(crate::artifacts::chat_reasoning::for_responses(item));
                }
            }
            _ => {}
        }
    }
    input
}

// ---------------------------------------------------------------------------------------------
// Chat rendering

/// One user content block in the chat shape (Responses-style blocks converted back).
fn user_block_to_chat(block: &Value) -> Option<Value> {
    if let Value::String(s) = block {
        return Some(json!({"type": "text", "text": s}));
    }
    match block_type(block) {
        "input_text" => {
            let mut out = block.as_object().cloned().unwrap_or_default();
            out.insert("type".into(), json!("text"));
            Some(Value::Object(out))
        }
        "image_url" | "input_image" => {
            let mut image = Map::new();
            image.insert("url".into(), json!(image_url(block)?));
            if let Some(detail) = image_detail(block) {
                image.insert("detail".into(), json!(detail));
            }
            Some(json!({"type": "image_url", "image_url": image}))
        }
        "file" | "input_file" => {
            let fields = file_fields(block);
            let mut file = Map::new();
            if let Some(id) = trimmed(fields.get("file_id")) {
                file.insert("file_id".into(), json!(id));
            }
            // Chat files carry URLs in `file_data` too.
            if let Some(data) =
                trimmed(fields.get("file_data")).or_else(|| trimmed(fields.get("file_url")))
            {
                file.insert("file_data".into(), json!(data));
            }
            if let Some(name) = trimmed(fields.get("filename")) {
                file.insert("filename".into(), json!(name));
            }
            (!file.is_empty()).then(|| json!({"type": "file", "file": file}))
        }
        "input_audio" | "audio" => {
            let (data, format) = audio_parts(block)?;
            Some(json!({"type": "input_audio", "input_audio": {"data": data, "format": format?}}))
        }
        "video_url" | "video" | "input_video" => {
            Some(json!({"type": "video_url", "video_url": {"url": video_url(block)?}}))
        }
        _ => Some(block.clone()),
    }
}

/// Media parts an assistant message may carry back on `/chat/completions`.
const USER_PART_TYPES_WITH_CHAT_FORM: &[&str] = &["image_url", "input_image", "file", "input_file"];

/// A cleaned message in the chat shape `/chat/completions` expects.
pub(super) fn to_chat_message(m: &Value) -> Value {
    let Some(obj) = m.as_object() else {
        return m.clone();
    };
    let mut out = obj.clone();
    match (role(m), obj.get("content")) {
        ("system" | "developer", Some(Value::Array(parts))) => {
            let blocks: Vec<Value> = parts
                .iter()
                .filter_map(|p| match p {
                    Value::String(s) => Some(json!({"type": "text", "text": s})),
                    _ if matches!(block_type(p), "text" | "input_text") => {
                        let mut b = p.as_object().cloned().unwrap_or_default();
                        b.insert("type".into(), json!("text"));
                        Some(Value::Object(b))
                    }
                    _ => None,
                })
                .collect();
            out.insert("content".into(), Value::Array(blocks));
        }
        ("user", Some(Value::Array(parts))) => {
            let blocks: Vec<Value> = parts.iter().filter_map(user_block_to_chat).collect();
            out.insert("content".into(), Value::Array(blocks));
        }
        ("assistant", Some(Value::Array(parts))) => {
            // Replayed Responses-style `output_text` parts are plain text parts in chat; phase
            // markers have no place there. Other parts (a `refusal`, an unknown type) have no
            // chat form and are left out, as the Responses rendering reads only the text.
            let blocks: Vec<Value> = parts
                .iter()
                .filter_map(|p| match p {
                    Value::String(s) => {
                        Some(json!({"type": "text", "text": crate::phase::strip(s)}))
                    }
                    _ if matches!(block_type(p), "output_text" | "input_text") => {
                        let text = p.get("text").and_then(Value::as_str).unwrap_or("");
                        Some(json!({"type": "text", "text": crate::phase::strip(text)}))
                    }
                    _ if block_type(p) == "text" => {
                        let mut block = p.clone();
                        if let Some(text) = p.get("text").and_then(Value::as_str) {
                            block["text"] = json!(crate::phase::strip(text));
                        }
                        Some(block)
                    }
                    _ if USER_PART_TYPES_WITH_CHAT_FORM.contains(&block_type(p)) => {
                        user_block_to_chat(p)
                    }
                    _ => None,
                })
                .collect();
            out.insert("content".into(), Value::Array(blocks));
        }
        ("assistant", Some(Value::String(text))) if crate::phase::has_markers(text) => {
            out.insert("content".into(), json!(crate::phase::strip(text)));
        }
        _ => {}
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::test_support::{model, request};
    use crate::request::{
        Built, Identity, build_chat_completions_request, build_responses_request,
    };

    fn quiet() -> RequestSettings {
        RequestSettings {
            enable_web_search: false,
            enable_web_fetch: false,
            enable_datetime: false,
            ..RequestSettings::default()
        }
    }

    fn responses_built(messages: Value, m: &ModelInfo, s: &RequestSettings) -> Built {
        build_responses_request(
            &request(json!({"model": "x", "messages": messages})),
            m,
            s,
            &Identity::default(),
            false,
        )
        .unwrap()
    }

    fn input(messages: Value) -> Vec<Value> {
        responses_built(messages, &model("openai/gpt-4o"), &quiet()).body["input"]
            .as_array()
            .unwrap()
            .clone()
    }

    fn chat_messages(messages: Value, m: &ModelInfo) -> Vec<Value> {
        build_chat_completions_request(
            &request(json!({"model": "x", "messages": messages})),
            m,
            &quiet(),
            &Identity::default(),
            false,
        )
        .unwrap()
        .body["messages"]
            .as_array()
            .unwrap()
            .clone()
    }

    #[test]
    fn system_and_developer_messages_stay_separate_items() {
        let items = input(json!([
            {"role": "system", "content": "one"},
            {"role": "system", "content": [{"type": "text", "text": "two"}, "three"]},
            {"role": "developer", "content": "dev"},
            {"role": "system", "content": ""},
            {"role": "user", "content": "hi"}
        ]));
        assert_eq!(items.len(), 4);
        assert_eq!(
            items[0],
            json!({"type": "message", "role": "system", "content": [{"type": "input_text", "text": "one"}]})
        );
        assert_eq!(
            items[1]["content"],
            json!([{"type": "input_text", "text": "two"}, {"type": "input_text", "text": "three"}])
        );
        assert_eq!(items[2]["role"], "developer");
    }

    #[test]
    fn user_blocks_take_their_responses_shapes() {
        let cases = [
            (
                json!({"type": "text", "text": "t"}),
                Some(json!({"type": "input_text", "text": "t"})),
            ),
            (
                json!("plain"),
                Some(json!({"type": "input_text", "text": "plain"})),
            ),
            (
                json!({"type": "image_url", "image_url": {"url": "https://x/a.png", "detail": "high"}}),
                Some(
                    json!({"type": "input_image", "image_url": "https://x/a.png", "detail": "high"}),
                ),
            ),
            (
                json!({"type": "image_url", "image_url": "https://x/a.png"}),
                Some(
                    json!({"type": "input_image", "image_url": "https://x/a.png", "detail": "auto"}),
                ),
            ),
            (
                json!({"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "huge"}),
                Some(
                    json!({"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "auto"}),
                ),
            ),
            (
                json!({"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,AA"}}),
                Some(
                    json!({"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,AA"}),
                ),
            ),
            (
                json!({"type": "input_file", "file_id": "file-1", "file_url": "https://x/f.pdf"}),
                Some(
                    json!({"type": "input_file", "file_id": "file-1", "file_url": "https://x/f.pdf"}),
                ),
            ),
            (
                json!({"type": "file", "file": {"filename": "only-a-name"}}),
                None,
            ),
            (
                json!({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "WAV"}}),
                Some(
                    json!({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}),
                ),
            ),
            (
                json!({"type": "audio", "audio": {"data": "data:audio/mpeg;base64,BBBB"}}),
                Some(
                    json!({"type": "input_audio", "input_audio": {"data": "BBBB", "format": "mp3"}}),
                ),
            ),
            (
                json!({"type": "input_audio", "input_audio": {"data": "AAAA"}}),
                None,
            ),
            (
                json!({"type": "video_url", "video_url": {"url": "https://x/v.mp4"}}),
                Some(json!({"type": "input_video", "video_url": "https://x/v.mp4"})),
            ),
            (
                json!({"type": "video", "video": "https://x/v.mp4"}),
                Some(json!({"type": "input_video", "video_url": "https://x/v.mp4"})),
            ),
            (
                json!({"type": "mystery", "x": 1}),
                Some(json!({"type": "mystery", "x": 1})),
            ),
        ];
        for (block, expected) in cases {
            assert_eq!(user_block_to_responses(&block), expected, "{block}");
        }
    }

    #[test]
    fn user_blocks_are_converted_back_to_chat_shapes() {
        let cases = [
            (
                json!({"type": "input_text", "text": "t"}),
                json!({"type": "text", "text": "t"}),
            ),
            (
                json!({"type": "input_image", "image_url": "https://x/a.png"}),
                json!({"type": "image_url", "image_url": {"url": "https://x/a.png"}}),
            ),
            (
                json!({"type": "input_file", "filename": "f", "file_url": "https://x/f"}),
                json!({"type": "file", "file": {"file_data": "https://x/f", "filename": "f"}}),
            ),
            (
                json!({"type": "video", "video": {"url": "https://x/v"}}),
                json!({"type": "video_url", "video_url": {"url": "https://x/v"}}),
            ),
        ];
        for (block, expected) in cases {
            assert_eq!(user_block_to_chat(&block), Some(expected), "{block}");
        }
    }

    #[test]
    fn assistant_text_becomes_an_output_message_and_tool_calls_function_call_items() {
        let items = input(json!([
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                {"id": "call_2", "type": "function", "function": {"name": "get_time"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "12:00"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Sunny at noon."}]}
        ]));
        assert_eq!(
            items[1],
            json!({"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
                   "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]})
        );
        assert_eq!(
            items[2],
            json!({"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"})
        );
        assert_eq!(items[3]["arguments"], "{}");
        assert_eq!(
            items[4],
            json!({"type": "function_call_output", "call_id": "call_1", "output": "Sunny"})
        );
        assert_eq!(items[5]["output"], r#"[{"text":"12:00","type":"text"}]"#);
        assert_eq!(items[6]["content"][0]["text"], "Sunny at noon.");
        assert_eq!(items.len(), 7);
    }

    #[test]
    fn phase_markers_split_an_assistant_message_into_phased_messages() {
        let text = format!(
            "Let me check.{}It is sunny.{}",
            crate::phase::marker("commentary").unwrap(),
            crate::phase::marker("final_answer").unwrap()
        );
        let items = input(json!([
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": text},
            {"role": "user", "content": "thanks"}
        ]));
        assert_eq!(items.len(), 4);
        assert_eq!(items[1]["phase"], "commentary");
        assert_eq!(items[1]["content"][0]["text"], "Let me check.");
        assert_eq!(items[2]["phase"], "final_answer");
        assert_eq!(items[2]["content"][0]["text"], "It is sunny.");
        assert_ne!(items[1]["id"], items[2]["id"]);
        let plain = input(json!([{"role": "assistant", "content": "No phase."}]));
        assert!(plain[0].get("phase").is_none());
    }

    #[test]
    fn chat_messages_carry_only_chat_content_parts() {
        let messages = chat_messages(
            json!([
                {"role": "system", "content": ["plain", {"type": "input_text", "text": "t"}, {"type": "image_url"}]},
                {"role": "user", "content": [{"type": "input_text", "text": "hi"}, "there"]},
                {"role": "assistant", "content": [{"type": "output_text", "text": "yo", "annotations": []}, "!"]},
                {"role": "user", "content": "next"}
            ]),
            &model("openai/gpt-4o"),
        );
        assert_eq!(
            messages[0]["content"],
            json!([{"type": "text", "text": "plain"}, {"type": "text", "text": "t"}])
        );
        assert_eq!(
            messages[1]["content"],
            json!([{"type": "text", "text": "hi"}, {"type": "text", "text": "there"}])
        );
        assert_eq!(
            messages[2]["content"],
            json!([{"type": "text", "text": "yo"}, {"type": "text", "text": "!"}])
        );
    }

    #[test]
    fn orphaned_tool_calls_and_outputs_are_dropped() {
        let conversation = json!([
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_ok", "type": "function", "function": {"name": "a", "arguments": "{}"}},
                {"id": "call_lost", "type": "function", "function": {"name": "b", "arguments": "{}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_ok", "content": "done"},
            {"role": "tool", "tool_call_id": "call_stranger", "content": "who?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_pending", "type": "function", "function": {"name": "c", "arguments": "{}"}}]}
        ]);
        let items = input(conversation.clone());
        let ids: Vec<(&str, &str)> = items
            .iter()
            .filter_map(|i| Some((i["type"].as_str()?, i.get("call_id")?.as_str()?)))
            .collect();
        assert_eq!(
            ids,
            vec![
                ("function_call", "call_ok"),
                ("function_call_output", "call_ok")
            ]
        );
        let messages = chat_messages(conversation, &model("openai/gpt-4o"));
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert_eq!(messages[1]["tool_calls"].as_array().unwrap().len(), 1);
        assert_eq!(messages[2]["tool_call_id"], "call_ok");
    }

    fn image(n: usize) -> Value {
        json!({"type": "image_url", "image_url": {"url": format!("https://x/{n}.png")}})
    }

    #[test]
    fn images_are_kept_only_on_the_latest_user_turn_up_to_the_limit() {
        let mut latest = vec![json!({"type": "text", "text": "look"})];
        latest.extend((0..7).map(image));
        let built = responses_built(
            json!([
                {"role": "user", "content": [{"type": "text", "text": "old"}, image(100)]},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": latest}
            ]),
            &model("openai/gpt-4o"),
            &quiet(),
        );
        let items = built.body["input"].as_array().unwrap();
        assert_eq!(
            items[0]["content"],
            json!([{"type": "input_text", "text": "old"}])
        );
        let images: Vec<&Value> = items[2]["content"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "input_image")
            .collect();
        assert_eq!(images.len(), 5);
        assert_eq!(images[4]["image_url"], "https://x/4.png");
        assert_eq!(
            built.notices,
            vec!["Dropped 2 extra images; limit is 5.".to_string()]
        );
    }

    #[test]
    fn a_model_without_vision_gets_no_images_and_a_notice() {
        let mut blind = model("a/b");
        blind.capabilities.vision = false;
        let built = responses_built(
            json!([{"role": "user", "content": [{"type": "text", "text": "see?"}, image(1), image(2)]}]),
            &blind,
            &quiet(),
        );
        assert_eq!(
            built.body["input"][0]["content"],
            json!([{"type": "input_text", "text": "see?"}])
        );
        assert_eq!(
            built.notices,
            vec!["Model does not accept image inputs; skipping user attachments.".to_string()]
        );
        // An image-only message on a blind model is dropped, and then nothing is left to answer.
        let refused = build_chat_completions_request(
            &request(json!({"model": "x", "messages": [{"role": "user", "content": [image(1)]}]})),
            &blind,
            &quiet(),
            &Identity::default(),
            false,
        )
        .unwrap_err();
        assert!(refused.0.contains("the conversation is empty"), "{refused}");
    }

    #[test]
    fn without_user_images_the_previous_assistant_images_are_reused() {
        let conversation = json!([
            {"role": "user", "content": "draw a cat"},
            {"role": "assistant", "content": "Here: ![cat](https://img.example/cat.png) and ![x](/api/v1/files/1)"},
            {"role": "user", "content": "make it blue"}
        ]);
        let items = input(conversation.clone());
        assert_eq!(
            items[2]["content"],
            json!([{"type": "input_image", "image_url": "https://img.example/cat.png", "detail": "auto"},
                   {"type": "input_text", "text": "make it blue"}])
        );
        let only_user = RequestSettings {
            image_input_selection: "user_turn_only".into(),
            ..quiet()
        };
        let built = responses_built(conversation, &model("openai/gpt-4o"), &only_user);
        assert_eq!(
            built.body["input"][2]["content"],
            json!([{"type": "input_text", "text": "make it blue"}])
        );
    }

    #[test]
    fn markdown_image_urls_are_found_in_order() {
        assert_eq!(
            markdown_images(
                "a ![x](https://a/1.png) b ![](data:image/png;base64,AA) ![y](ftp://no) ![z](http://b/2.png \"t\")"
            ),
            vec![
                "https://a/1.png",
                "data:image/png;base64,AA",
                "http://b/2.png"
            ]
        );
        assert!(markdown_images("![broken](").is_empty());
    }

    #[test]
    fn instructions_without_text_are_dropped_and_instructions_alone_are_refused() {
        let messages = chat_messages(
            json!([{"role": "system", "content": null}, {"role": "developer", "content": []},
                   {"role": "user", "content": "hi"}]),
            &model("a/b"),
        );
        assert_eq!(messages, vec![json!({"role": "user", "content": "hi"})]);
        for messages in [
            json!([{"role": "system", "content": "be brief"}]),
            json!([{"role": "developer", "content": "x"}, {"role": "user", "content": " "}]),
            json!([{"role": "tool", "tool_call_id": "nobody", "content": "orphan"}]),
        ] {
            let err = build_responses_request(
                &request(json!({"model": "x", "messages": messages})),
                &model("a/b"),
                &quiet(),
                &Identity::default(),
                false,
            )
            .unwrap_err();
            assert!(
                err.0.contains("the conversation is empty"),
                "{messages}: {err}"
            );
        }
    }

    #[test]
    fn assistant_parts_without_a_chat_form_are_left_out() {
        let messages = chat_messages(
            json!([{"role": "assistant", "content": [{"type": "refusal", "refusal": "no"},
                                                      {"type": "text", "text": "ok"},
                                                      {"type": "mystery"}]},
                   {"role": "user", "content": "hi"}]),
            &model("a/b"),
        );
        assert_eq!(
            messages[0]["content"],
            json!([{"type": "text", "text": "ok"}])
        );
    }

    #[test]
    fn caller_reasoning_details_keep_only_well_formed_entries() {
        let messages = chat_messages(
            json!([{"role": "assistant", "content": "A", "reasoning_details": [
                       null, 5, {"type": "other"}, {"type": "reasoning.summary"},
                       {"type": "reasoning.text", "text": 5, "signature": "s", "format": "bogus",
                        "index": 0, "extra": true},
                       {"type": "reasoning.encrypted", "data": "e", "id": "r1"}]},
                   {"role": "assistant", "content": "B", "reasoning_details": [null]},
                   {"role": "user", "content": "more"}]),
            &model("a/b"),
        );
        assert_eq!(
            messages[0]["reasoning_details"],
            json!([{"type": "reasoning.text", "signature": "s", "index": 0},
                   {"type": "reasoning.encrypted", "data": "e", "id": "r1"}])
        );
        assert!(
            messages[1].get("reasoning_details").is_none(),
            "{}",
            messages[1]
        );
    }

    #[test]
    fn audio_in_a_format_responses_does_not_take_is_not_sent_there() {
        let items = input(json!([{"role": "user", "content": [
            {"type": "text", "text": "listen"},
            {"type": "input_audio", "input_audio": {"data": "AAA", "format": "flac"}},
            {"type": "input_audio", "input_audio": {"data": "data:audio/mpeg;base64,BBB"}}]}]));
        assert_eq!(
            items[0]["content"],
            json!([{"type": "input_text", "text": "listen"},
                   {"type": "input_audio", "input_audio": {"data": "BBB", "format": "mp3"}}])
        );
    }

    #[test]
    fn empty_user_messages_are_dropped_and_blank_assistant_turns_skipped() {
        let items = input(json!([
            {"role": "user", "content": [{"type": "text", "text": ""}]},
            {"role": "assistant", "content": "   "},
            {"role": "user", "content": "real"}
        ]));
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["content"][0]["text"], "real");
    }

    #[test]
    fn signed_reasoning_details_the_caller_sends_back_go_before_their_answer_on_responses() {
        let signed = json!([{"type": "reasoning.text", "text": "Let me think.", "signature": "sig==",
                             "format": "anthropic-claude-v1"}]);
        let messages = json!([
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello.", "reasoning_details": signed},
            {"role": "assistant", "content": "Again.",
             "reasoning_details": [{"type": "reasoning.summary", "summary": "only a summary"}]},
            {"role": "user", "content": "more"}
        ]);
        let built = responses_built(messages, &model("anthropic/claude-sonnet-4.5"), &quiet());
        let input = built.body["input"].as_array().unwrap();
        let kinds: Vec<&str> = input.iter().map(|i| i["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            ["message", "reasoning", "message", "message", "message"]
        );
        assert_eq!(input[1]["signature"], "sig==");
        assert_eq!(input[1]["content"][0]["text"], "Let me think.");
        assert_eq!(input[1]["format"], "anthropic-claude-v1");
    }
}
