//! The caller's chat body: parsed and validated. A wrong type names the field; a user content
//! part of an unknown type is refused (it has no upstream form). Translation into what OpenRouter
//! gets is `request`'s job.

use serde_json::{Map, Value};

/// Why a chat body was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidBody(pub String);

fn invalid(msg: impl Into<String>) -> InvalidBody {
    InvalidBody(msg.into())
}

/// The parts of a chat request the pipe works with.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub stream: bool,
    pub body: Map<String, Value>,
}

/// Parse and validate a Chat Completions body.
pub fn parse_chat_body(bytes: &[u8]) -> Result<ChatRequest, InvalidBody> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("the request body is not valid JSON: {e}")))?;
    let Value::Object(body) = value else {
        return Err(invalid("the request body must be a JSON object"));
    };
    let model = match body.get("model") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(Value::String(_)) | None => return Err(invalid("`model` is required")),
        Some(_) => return Err(invalid("`model` must be a string")),
    };
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(invalid("`stream` must be a boolean")),
    };
    match body.get("messages") {
        Some(Value::Array(msgs)) if !msgs.is_empty() => {
            for (i, m) in msgs.iter().enumerate() {
                validate_message(i, m)?;
            }
        }
        Some(Value::Array(_)) => return Err(invalid("`messages` must not be empty")),
        Some(_) => return Err(invalid("`messages` must be an array")),
        None => return Err(invalid("`messages` is required")),
    }
    Ok(ChatRequest {
        model,
        stream,
        body,
    })
}

fn validate_message(i: usize, m: &Value) -> Result<(), InvalidBody> {
    let Value::Object(m) = m else {
        return Err(invalid(format!("`messages[{i}]` must be an object")));
    };
    let role = match m.get("role") {
        Some(Value::String(r))
            if matches!(
                r.as_str(),
                "system" | "developer" | "user" | "assistant" | "tool"
            ) =>
        {
            r.as_str()
        }
        Some(Value::String(r)) => {
            let shown: String = r.chars().take(40).collect();
            return Err(invalid(format!(
                "`messages[{i}].role` `{shown}` is not a known role"
            )));
        }
        _ => return Err(invalid(format!("`messages[{i}].role` must be a string"))),
    };
    match m.get("content") {
        None | Some(Value::Null) | Some(Value::String(_)) => Ok(()),
        Some(Value::Array(parts)) => {
            for (j, p) in parts.iter().enumerate() {
                if !p.is_object() && !p.is_string() {
                    return Err(invalid(format!(
                        "`messages[{i}].content[{j}]` must be an object"
                    )));
                }
                if role == "user" {
                    validate_user_part(i, j, p)?;
                }
            }
            Ok(())
        }
        Some(_) => Err(invalid(format!(
            "`messages[{i}].content` must be a string or an array of parts"
        ))),
    }
}

/// The content part types a user message can carry (chat names and their Responses names).
const USER_PART_TYPES: &[&str] = &[
    "text",
    "input_text",
    "image_url",
    "input_image",
    "file",
    "input_file",
    "input_audio",
    "audio",
    "video_url",
    "video",
    "input_video",
];

/// A user content part must be a string or a part of a known type: an unknown one has no
/// upstream form, and sent as it came it would only be refused there.
fn validate_user_part(i: usize, j: usize, part: &Value) -> Result<(), InvalidBody> {
    let Value::Object(o) = part else {
        return Ok(());
    };
    match o.get("type") {
        Some(Value::String(t)) if USER_PART_TYPES.contains(&t.as_str()) => Ok(()),
        Some(Value::String(t)) => {
            let shown: String = t.chars().take(40).collect();
            Err(invalid(format!(
                "`messages[{i}].content[{j}].type` `{shown}` is not a content part a user \
                 message can carry"
            )))
        }
        _ => Err(invalid(format!(
            "`messages[{i}].content[{j}].type` must be a string"
        ))),
    }
}

/// The text of a content value: a string, or the `text` of its text parts joined.
pub fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.as_str()),
                Value::Object(o) => match o.get("type").and_then(Value::as_str) {
                    Some("text" | "input_text" | "output_text") | None => {
                        o.get("text").and_then(Value::as_str)
                    }
                    _ => None,
                },
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_types_name_the_field() {
        let e = parse_chat_body(br#"{"model":1,"messages":[]}"#).unwrap_err();
        assert!(e.0.contains("`model`"));
        let e = parse_chat_body(br#"{"model":"a","messages":"hi"}"#).unwrap_err();
        assert!(e.0.contains("`messages`"));
        let e = parse_chat_body(br#"{"model":"a","messages":[{"role":"user","content":5}]}"#)
            .unwrap_err();
        assert!(e.0.contains("messages[0].content"));
        let e = parse_chat_body(br#"{"model":"a","stream":"yes","messages":[{"role":"user"}]}"#)
            .unwrap_err();
        assert!(e.0.contains("`stream`"));
        assert!(
            parse_chat_body(b"{nope")
                .unwrap_err()
                .0
                .contains("not valid JSON")
        );
    }

    #[test]
    fn user_parts_of_unknown_types_are_refused_naming_the_part() {
        let e = parse_chat_body(
            br#"{"model":"a","messages":[{"role":"user","content":[{"type":"text","text":"x"},{"type":"refusal","refusal":""}]}]}"#,
        )
        .unwrap_err();
        assert!(
            e.0.contains("`messages[0].content[1].type` `refusal`"),
            "{e}"
        );
        let e = parse_chat_body(
            br#"{"model":"a","messages":[{"role":"user","content":[{"text":"x"}]}]}"#,
        )
        .unwrap_err();
        assert!(
            e.0.contains("`messages[0].content[0].type` must be a string"),
            "{e}"
        );
        // Every known kind, and other roles' parts, are left to translation.
        assert!(parse_chat_body(
            br#"{"model":"a","messages":[{"role":"user","content":["s",{"type":"input_text","text":"x"},{"type":"image_url","image_url":{"url":"u"}},{"type":"input_audio","input_audio":{}},{"type":"file","file":{}},{"type":"video_url"}]},{"role":"assistant","content":[{"type":"refusal","refusal":"no"}]}]}"#,
        )
        .is_ok());
    }
}
