//! A `/chat/completions` turn's own words, kept for the tool loop: its text and its reassembled
//! `reasoning_details`, turned into output items and sent back with the turn's tool calls.

use crate::tool_loop::{self, CallOutcome};
use serde_json::Value;

/// A `/chat/completions` turn's own words: its text and its reassembled `reasoning_details`.
/// Both go back with the turn's tool calls on the next tool-loop turn, as they do on
/// `/responses` (the output items); providers such as Anthropic refuse a tool result whose call
/// lost its signed thinking.
#[derive(Default)]
pub(super) struct ChatTurn {
    pub text: String,
    pub reasoning_details: Value,
}

impl ChatTurn {
    /// The turn's output items in Responses shape: its `reasoning_details` as one `reasoning`
    /// item (persisted and replayed like a `/responses` turn's, see
    /// `artifacts::chat_reasoning`), then its tool calls.
    pub(super) fn output(&self, calls: Vec<Value>, random: u64) -> Vec<Value> {
        let id = format!(
            "{}{random:016x}",
            crate::artifacts::chat_reasoning::ID_PREFIX
        );
        crate::artifacts::chat_reasoning::item_from_details(&self.reasoning_details, &id)
            .into_iter()
            .chain(calls)
            .collect()
    }

    /// Append the tool round to a `/chat/completions` body: the assistant message carries the
    /// turn's text and, when there are any, its `reasoning_details`.
    pub(super) fn continue_body(&self, body: &mut Value, outcomes: &[CallOutcome]) {
        tool_loop::continue_chat(body, &self.text, outcomes);
        let has_details = self
            .reasoning_details
            .as_array()
            .is_some_and(|d| !d.is_empty());
        if !has_details {
            return;
        }
        let last_assistant = body
            .get_mut("messages")
            .and_then(Value::as_array_mut)
            .and_then(|m| {
                m.iter_mut()
                    .rfind(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
            })
            .and_then(Value::as_object_mut);
        if let Some(message) = last_assistant {
            message.insert("reasoning_details".into(), self.reasoning_details.clone());
        }
    }
}
