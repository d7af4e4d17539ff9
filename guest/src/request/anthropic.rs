//! Anthropic specifics: prompt caching and the interleaved-thinking beta.
//!
//! On `/responses` OpenRouter honours one top-level `cache_control` (it places the breakpoint
//! itself); on `/chat/completions` breakpoints are per block, and Anthropic allows at most 4:
//! the last function tool, the last system message and the last 2 user texts with tools, or
//! the last system message and the last 3 user texts without.

use super::{RequestSettings, is_anthropic};
use crate::model::ModelInfo;
use serde_json::{Map, Value, json};

/// The beta header value enabling thinking between tool calls.
pub(super) const INTERLEAVED_THINKING_BETA: &str = "interleaved-thinking-2025-05-14";

/// Whether prompt caching applies to this model.
pub(super) fn caching_applies(model: &ModelInfo, settings: &RequestSettings) -> bool {
    settings.enable_anthropic_prompt_caching && is_anthropic(&model.id)
}

/// The TTL when it is one Anthropic accepts (`5m`, `1h`); anything else is left out so the
/// provider default applies.
fn ttl(settings: &RequestSettings) -> Option<&'static str> {
    match settings.anthropic_prompt_cache_ttl.trim() {
        "5m" => Some("5m"),
        "1h" => Some("1h"),
        _ => None,
    }
}

fn directive(settings: &RequestSettings) -> Value {
    match ttl(settings) {
        Some(ttl) => json!({"type": "ephemeral", "ttl": ttl}),
        None => json!({"type": "ephemeral"}),
    }
}

/// `/responses`: one top-level `cache_control`, unless the caller already sent one.
pub(super) fn apply_top_level_cache_control(
    body: &mut Map<String, Value>,
    settings: &RequestSettings,
) {
    // `cache_control` is not on the allowlist, so a caller's own directive never gets here:
    // the pipe's valves decide caching and its TTL.
    body.insert("cache_control".into(), directive(settings));
}

/// Marks a block (or tool): a new directive, or the TTL added to an existing one.
fn mark(target: &mut Map<String, Value>, settings: &RequestSettings) {
    match target.get_mut("cache_control") {
        Some(Value::Object(existing)) => {
            if let Some(ttl) = ttl(settings)
                && !existing.contains_key("ttl")
            {
                existing.insert("ttl".into(), json!(ttl));
            }
        }
        _ => {
            target.insert("cache_control".into(), directive(settings));
        }
    }
}

/// Marks the last non-empty text block of a chat message; a string content becomes one text
/// block so it can carry the marker. Returns whether a block was marked.
fn mark_last_text(message: &mut Value, settings: &RequestSettings) -> bool {
    let Some(m) = message.as_object_mut() else {
        return false;
    };
    if let Some(Value::String(text)) = m.get("content") {
        if text.is_empty() {
            return false;
        }
        let block = json!([{"type": "text", "text": text}]);
        m.insert("content".into(), block);
    }
    let Some(Value::Array(blocks)) = m.get_mut("content") else {
        return false;
    };
    for block in blocks.iter_mut().rev() {
        let is_text = block.get("type").and_then(Value::as_str) == Some("text")
            && block
                .get("text")
                .and_then(Value::as_str)
                .is_some_and(|t| !t.is_empty());
        if let (true, Some(b)) = (is_text, block.as_object_mut()) {
            mark(b, settings);
            return true;
        }
    }
    false
}

/// `/chat/completions`: per-block breakpoints within Anthropic's budget of 4.
pub(super) fn apply_chat_breakpoints(
    messages: &mut [Value],
    tools: &mut [Value],
    settings: &RequestSettings,
) {
    // Only function definitions are part of the provider's cached tool prefix; OpenRouter's
    // server tools (appended last) are not the provider's tools.
    let last_function = tools
        .iter()
        .rposition(|t| t.get("type").and_then(Value::as_str) == Some("function"));
    let has_tools = last_function.is_some();
    if let Some(tool) = last_function
        .and_then(|i| tools.get_mut(i))
        .and_then(Value::as_object_mut)
    {
        mark(tool, settings);
    }
    let role = |m: &Value| {
        m.get("role")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let last_system = messages
        .iter()
        .rposition(|m| matches!(role(m).as_str(), "system" | "developer"));
    let user_budget = if has_tools { 2 } else { 3 };
    let users: Vec<usize> = messages
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, m)| role(m) == "user")
        .map(|(i, _)| i)
        .take(user_budget)
        .collect();
    for index in last_system.into_iter().chain(users) {
        if let Some(message) = messages.get_mut(index) {
            mark_last_text(message, settings);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::test_support::{reasoning_model, request};
    use crate::request::{Identity, build_chat_completions_request, build_responses_request};

    fn settings() -> RequestSettings {
        RequestSettings {
            enable_web_search: false,
            enable_web_fetch: false,
            enable_datetime: false,
            ..RequestSettings::default()
        }
    }

    fn conversation() -> Value {
        json!([
            {"role": "system", "content": "sys one"},
            {"role": "system", "content": [{"type": "text", "text": "sys two"}]},
            {"role": "user", "content": "u1"},
            {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "u2"},
            {"role": "assistant", "content": "a2"},
            {"role": "user", "content": [{"type": "text", "text": "u3",
                "cache_control": {"type": "ephemeral"}}, {"type": "image_url", "image_url": {"url": "https://x/i.png"}}]},
            {"role": "assistant", "content": "a3"},
            {"role": "user", "content": "u4"}
        ])
    }

    fn marked(messages: &Value) -> Vec<usize> {
        messages
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .filter(|(_, m)| {
                m["content"]
                    .as_array()
                    .is_some_and(|b| b.iter().any(|b| b.get("cache_control").is_some()))
            })
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn responses_requests_to_claude_get_one_top_level_cache_control() {
        let m = reasoning_model("~anthropic/claude-sonnet-4.5");
        let req = request(
            json!({"model": "x", "messages": conversation(), "cache_control": {"type": "junk"}}),
        );
        let built =
            build_responses_request(&req, &m, &settings(), &Identity::default(), false).unwrap();
        assert_eq!(
            built.body["cache_control"],
            json!({"type": "ephemeral", "ttl": "5m"})
        );
        let items = built.body["input"].as_array().unwrap();
        assert!(
            items
                .iter()
                .all(|i| !i.to_string().contains("cache_control")),
            "no per-block markers on /responses"
        );
        let hour = RequestSettings {
            anthropic_prompt_cache_ttl: "1h".into(),
            ..settings()
        };
        let built = build_responses_request(&req, &m, &hour, &Identity::default(), false).unwrap();
        assert_eq!(built.body["cache_control"]["ttl"], "1h");
        let off = RequestSettings {
            enable_anthropic_prompt_caching: false,
            ..settings()
        };
        let built = build_responses_request(&req, &m, &off, &Identity::default(), false).unwrap();
        assert!(built.body.get("cache_control").is_none());
        let other = reasoning_model("openai/gpt-5");
        let built = build_responses_request(&req, &other, &settings(), &Identity::default(), false)
            .unwrap();
        assert!(
            built.body.get("cache_control").is_none(),
            "a caller's directive is not forwarded"
        );
    }

    #[test]
    fn chat_breakpoints_without_tools_mark_the_last_system_and_three_user_texts() {
        let m = reasoning_model("anthropic/claude-sonnet-4.5");
        let req = request(json!({"model": "x", "messages": conversation()}));
        let built =
            build_chat_completions_request(&req, &m, &settings(), &Identity::default(), false)
                .unwrap();
        let messages = &built.body["messages"];
        assert_eq!(marked(messages), vec![1, 4, 6, 8]);
        assert_eq!(
            messages[8]["content"],
            json!([{"type": "text", "text": "u4", "cache_control": {"type": "ephemeral", "ttl": "5m"}}])
        );
        assert_eq!(
            messages[6]["content"][0]["cache_control"],
            json!({"type": "ephemeral", "ttl": "5m"}),
            "an existing directive is kept and gets the ttl"
        );
        assert_eq!(
            messages[0]["content"], "sys one",
            "only the last system message"
        );
    }

    #[test]
    fn chat_breakpoints_with_tools_mark_the_last_function_tool_and_two_user_texts() {
        let m = reasoning_model("anthropic/claude-sonnet-4.5");
        let req = request(json!({"model": "x", "messages": conversation(),
            "openrouter_web_search": true, "tools": [
            {"type": "function", "function": {"name": "a"}},
            {"type": "function", "function": {"name": "b"}}]}));
        let with_server_tools = RequestSettings::default();
        let built = build_chat_completions_request(
            &req,
            &m,
            &with_server_tools,
            &Identity::default(),
            false,
        )
        .unwrap();
        assert_eq!(marked(&built.body["messages"]), vec![1, 6, 8]);
        let tools = built.body["tools"].as_array().unwrap();
        assert_eq!(tools.len(), 5, "two functions and three server tools");
        let marked_tools: Vec<usize> = (0..tools.len())
            .filter(|i| tools[*i].get("cache_control").is_some())
            .collect();
        assert_eq!(
            marked_tools,
            vec![1],
            "the last function tool, not a server tool"
        );
        assert_eq!(
            tools[1]["cache_control"],
            json!({"type": "ephemeral", "ttl": "5m"})
        );
        let server_only = build_chat_completions_request(
            &request(json!({"model": "x", "messages": conversation()})),
            &m,
            &with_server_tools,
            &Identity::default(),
            false,
        )
        .unwrap();
        assert_eq!(
            marked(&server_only.body["messages"]),
            vec![1, 4, 6, 8],
            "server tools alone leave 3 user breakpoints"
        );
    }

    #[test]
    fn chat_requests_to_other_models_get_no_breakpoints() {
        let m = reasoning_model("openai/gpt-5");
        let req = request(json!({"model": "x", "messages": conversation()}));
        let built =
            build_chat_completions_request(&req, &m, &settings(), &Identity::default(), false)
                .unwrap();
        assert_eq!(
            marked(&built.body["messages"]),
            vec![6],
            "only the caller's own marker"
        );
        assert_eq!(
            built.body["messages"][6]["content"][0]["cache_control"],
            json!({"type": "ephemeral"})
        );
    }
}
