//! Reasoning across endpoints: a `/chat/completions` turn's `reasoning_details` ↔ one Responses
//! `reasoning` item (the `reasoning_details` of a turn are reassembled and stored with the message
//! for replay), so a turn's signed or encrypted thinking survives into the next
//! user turn whichever endpoint each turn used.
//!
//! Mapping (details → item), in detail order:
//! - `reasoning.summary` → one `summary_text` part each (`summary` is always present);
//! - `reasoning.text` → one `reasoning_text` part each in `content`; the first signature becomes
//!   the item's `signature`;
//! - `reasoning.encrypted` → its `data` becomes `encrypted_content` (the first one);
//! - the first non-empty detail `id` becomes the item id (OpenAI's `rs_…`), else a fresh
//!   `rs_…`; the first `format` becomes the item's `format`.
//!
//! Item → details is the inverse: summaries, then texts (the signature on the last one, or a
//! text detail holding only the signature), then the encrypted blob (with the item id), each
//! numbered by `index` within its type and carrying the item's `format`.
//!
//! One item cannot always hold every detail losslessly (several signed thinking blocks, two
//! encrypted blobs, ids on summaries, server-tool records). So the item keeps the reassembled
//! array under [`ORIGINAL_DETAILS`] exactly when the inverse mapping would not give it back;
//! that private key is preferred when converting back to chat form and is stripped from every
//! `/responses` rendering ([`for_responses`]), so nothing private goes upstream.

use super::replay;
use serde_json::{Map, Value, json};

/// Private key of a stored `reasoning` item holding the original `reasoning_details` array.
pub const ORIGINAL_DETAILS: &str = "_reasoning_details";

/// Prefix of the id given to an item whose details carried none.
pub const ID_PREFIX: &str = "rs_chat_";

fn non_empty<'a>(d: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    d.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn is_string(d: &Map<String, Value>, key: &str) -> bool {
    d.get(key).is_some_and(Value::is_string)
}

/// A detail as it may go upstream (OpenRouter's `ReasoningDetailUnion`): nulls dropped, a
/// non-integer `index` dropped, and `None` for unknown types or missing required fields.
fn clean_detail(detail: &Value) -> Option<Map<String, Value>> {
    let mut d: Map<String, Value> = detail
        .as_object()?
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if d.get("index").is_some_and(|i| !i.is_i64() && !i.is_u64()) {
        d.remove("index");
    }
    let valid = match d.get("type").and_then(Value::as_str)? {
        "reasoning.text" => ["text", "signature", "id"]
            .iter()
            .all(|k| d.get(*k).is_none_or(Value::is_string)),
        "reasoning.summary" => is_string(&d, "summary"),
        "reasoning.encrypted" => is_string(&d, "data"),
        "reasoning.server_tool_call" => ["tool_name", "arguments", "result"]
            .iter()
            .all(|k| is_string(&d, k)),
        _ => false,
    };
    valid.then_some(d)
}

/// The details the item's own fields stand for (see the module doc).
fn rebuilt(item: &Value) -> Vec<Map<String, Value>> {
    let format = item.get("format").filter(|f| f.is_string());
    let detail = |fields: Value, index: usize| {
        let mut d = fields.as_object().cloned().unwrap_or_default();
        d.insert("index".into(), json!(index));
        if let Some(f) = format {
            d.insert("format".into(), f.clone());
        }
        d
    };
    let texts_of = |key: &str, part_type: &str| -> Vec<String> {
        item.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some(part_type))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .map(str::to_string)
            .collect()
    };
    let mut out = Vec::new();
    for (i, text) in texts_of("summary", "summary_text").into_iter().enumerate() {
        out.push(detail(
            json!({"type": "reasoning.summary", "summary": text}),
            i,
        ));
    }
    let signature = item
        .get("signature")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let texts = texts_of("content", "reasoning_text");
    if texts.is_empty() {
        if let Some(sig) = signature {
            out.push(detail(
                json!({"type": "reasoning.text", "signature": sig}),
                0,
            ));
        }
    } else {
        let last = texts.len() - 1;
        for (i, text) in texts.into_iter().enumerate() {
            let mut d = detail(json!({"type": "reasoning.text", "text": text}), i);
            if let (true, Some(sig)) = (i == last, signature) {
                d.insert("signature".into(), json!(sig));
            }
            out.push(d);
        }
    }
    if let Some(data) = item.get("encrypted_content").and_then(Value::as_str) {
        let mut d = detail(json!({"type": "reasoning.encrypted", "data": data}), 0);
        if let Some(id) = item.get("id").filter(|i| i.is_string()) {
            d.insert("id".into(), id.clone());
        }
        out.push(d);
    }
    out
}

/// One Responses `reasoning` item for a `/chat/completions` turn's reassembled
/// `reasoning_details` (see the module doc), or `None` when they hold no reasoning (no summary,
/// text, signature or encrypted blob). `fallback_id` names the item when no detail has an id.
pub fn item_from_details(details: &Value, fallback_id: &str) -> Option<Value> {
    let details: Vec<Map<String, Value>> = details
        .as_array()?
        .iter()
        .filter_map(clean_detail)
        .collect();
    let mut id = None;
    let mut format = None;
    let mut summary = Vec::new();
    let mut content = Vec::new();
    let mut signature = None;
    let mut encrypted = None;
    for d in &details {
        id = id.or_else(|| non_empty(d, "id"));
        format = format.or_else(|| d.get("format").filter(|f| f.is_string()));
        match d.get("type").and_then(Value::as_str) {
            Some("reasoning.summary") => {
                if let Some(text) = non_empty(d, "summary") {
                    summary.push(json!({"type": "summary_text", "text": text}));
                }
            }
            Some("reasoning.text") => {
                if let Some(text) = non_empty(d, "text") {
                    content.push(json!({"type": "reasoning_text", "text": text}));
                }
                signature = signature.or_else(|| non_empty(d, "signature"));
            }
            Some("reasoning.encrypted") => encrypted = encrypted.or_else(|| non_empty(d, "data")),
            _ => {}
        }
    }
    if summary.is_empty() && content.is_empty() && signature.is_none() && encrypted.is_none() {
        return None;
    }
    let mut item = Map::new();
    item.insert("type".into(), json!("reasoning"));
    item.insert("id".into(), json!(id.unwrap_or(fallback_id)));
    item.insert("summary".into(), Value::Array(summary));
    if !content.is_empty() {
        item.insert("content".into(), Value::Array(content));
    }
    if let Some(data) = encrypted {
        item.insert("encrypted_content".into(), json!(data));
    }
    if let Some(f) = format {
        item.insert("format".into(), f.clone());
    }
    if let Some(sig) = signature {
        item.insert("signature".into(), json!(sig));
    }
    let mut item = Value::Object(item);
    if rebuilt(&item) != details
        && let Some(o) = item.as_object_mut()
    {
        let original = details.into_iter().map(Value::Object).collect();
        o.insert(ORIGINAL_DETAILS.into(), Value::Array(original));
    }
    Some(item)
}

/// The `reasoning_details` a stored `reasoning` item stands for: its original array when it
/// kept one, else the details rebuilt from its fields. Every detail is spec-shaped.
pub fn details_from_item(item: &Value) -> Vec<Value> {
    let original: Vec<Value> = item
        .get(ORIGINAL_DETAILS)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(clean_detail)
        .map(Value::Object)
        .collect();
    if !original.is_empty() {
        return original;
    }
    rebuilt(item).into_iter().map(Value::Object).collect()
}

/// A replayed item as a `/responses` input item: the private key removed.
pub fn for_responses(item: &Value) -> Value {
    let mut item = item.clone();
    if let Some(o) = item.as_object_mut() {
        o.remove(ORIGINAL_DETAILS);
    }
    item
}

fn is_assistant(m: &Value) -> bool {
    m.get("role").and_then(Value::as_str) == Some("assistant")
}

/// The chat rendering of replayed items: each replayed `reasoning` item becomes
/// `reasoning_details` on the assistant message that follows it (replay puts a turn's items
/// right before the message they belong to; consecutive items join, in order). Items followed
/// by anything else (a user message, a tool output, the end) are dropped, as are other replayed
/// types. An assistant message that already carries `reasoning_details` (the caller replayed
/// its own) keeps them and the replayed ones are dropped, so nothing is sent twice.
pub fn fold_into_chat(messages: &[Value]) -> Vec<Value> {
    let mut out = Vec::with_capacity(messages.len());
    let mut pending: Vec<Value> = Vec::new();
    for m in messages {
        if let Some(item) = replay::item_of(m) {
            if item.get("type").and_then(Value::as_str) == Some("reasoning") {
                pending.extend(details_from_item(item));
            }
            continue;
        }
        if replay::is_replayed_item(m) {
            continue;
        }
        let details = std::mem::take(&mut pending);
        let has_own = m
            .get("reasoning_details")
            .and_then(Value::as_array)
            .is_some_and(|d| !d.is_empty());
        match m.as_object() {
            Some(o) if is_assistant(m) && !details.is_empty() && !has_own => {
                let mut o = o.clone();
                o.insert("reasoning_details".into(), Value::Array(details));
                out.push(Value::Object(o));
            }
            _ => out.push(m.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(text: &str, sig: &str) -> Value {
        json!({"type": "reasoning.text", "text": text, "signature": sig,
               "format": "anthropic-claude-v1", "index": 0})
    }

    #[test]
    fn one_signed_text_detail_is_one_lossless_item_and_comes_back_unchanged() {
        let details = json!([signed("Weighing the sources.", "sig-1")]);
        let item = item_from_details(&details, "rs_chat_1").unwrap();
        assert_eq!(
            item,
            json!({"type": "reasoning", "id": "rs_chat_1", "summary": [],
                   "content": [{"type": "reasoning_text", "text": "Weighing the sources."}],
                   "format": "anthropic-claude-v1", "signature": "sig-1"})
        );
        assert_eq!(Value::Array(details_from_item(&item)), details);
    }

    #[test]
    fn summaries_and_an_encrypted_blob_map_to_summary_and_encrypted_content() {
        let details = json!([
            {"type": "reasoning.summary", "summary": "**Plan** first", "index": 0,
             "format": "openai-responses-v1"},
            {"type": "reasoning.summary", "summary": "Then", "index": 1,
             "format": "openai-responses-v1"},
            {"type": "reasoning.encrypted", "data": "gAAABBB", "index": 0, "id": "rs_1",
             "format": "openai-responses-v1"},
        ]);
        let item = item_from_details(&details, "rs_chat_x").unwrap();
        assert_eq!(
            item["id"], "rs_1",
            "the provider's id wins over the fallback"
        );
        assert_eq!(
            item["summary"],
            json!([{"type": "summary_text", "text": "**Plan** first"},
                   {"type": "summary_text", "text": "Then"}])
        );
        assert_eq!(item["encrypted_content"], "gAAABBB");
        assert_eq!(item["format"], "openai-responses-v1");
        assert!(item.get("content").is_none() && item.get("signature").is_none());
        assert!(item.get(ORIGINAL_DETAILS).is_none(), "lossless: {item}");
        assert_eq!(Value::Array(details_from_item(&item)), details);
    }

    #[test]
    fn several_signed_blocks_keep_the_original_array_which_wins_on_the_way_back() {
        let details = json!([
            signed("First thought.", "sig-a"),
            {"type": "reasoning.text", "text": "Second thought.", "signature": "sig-b",
             "format": "anthropic-claude-v1", "index": 1},
            {"type": "reasoning.encrypted", "data": "redacted", "format": "anthropic-claude-v1",
             "index": 0},
        ]);
        let item = item_from_details(&details, "rs_chat_2").unwrap();
        assert_eq!(item["signature"], "sig-a");
        assert_eq!(item["encrypted_content"], "redacted");
        assert_eq!(item["content"].as_array().map(Vec::len), Some(2));
        assert_eq!(item[ORIGINAL_DETAILS], details);
        assert_eq!(Value::Array(details_from_item(&item)), details);
        // The `/responses` form drops the private copy and keeps the spec fields.
        let upstream = for_responses(&item);
        assert!(upstream.get(ORIGINAL_DETAILS).is_none());
        assert_eq!(upstream["signature"], "sig-a");
        assert_eq!(upstream["encrypted_content"], "redacted");
    }

    #[test]
    fn details_without_reasoning_give_no_item() {
        assert_eq!(item_from_details(&json!([]), "rs"), None);
        assert_eq!(item_from_details(&Value::Null, "rs"), None);
        // Only broken or empty fragments: a summary without text, an unknown type.
        let junk = json!([{"type": "reasoning.summary"}, {"type": "reasoning.text", "text": ""},
                          {"type": "reasoning.future", "x": 1}, "not an object"]);
        assert_eq!(item_from_details(&junk, "rs"), None);
    }

    #[test]
    fn nulls_and_invalid_details_never_reach_the_stored_copy() {
        let details = json!([
            {"type": "reasoning.text", "text": "a", "signature": null, "id": null, "index": 0},
            {"type": "reasoning.text", "text": "b", "signature": "s", "index": 0.5},
            {"type": "reasoning.summary"},
        ]);
        let item = item_from_details(&details, "rs_chat_3").unwrap();
        assert_eq!(
            item[ORIGINAL_DETAILS],
            json!([{"type": "reasoning.text", "text": "a", "index": 0},
                   {"type": "reasoning.text", "text": "b", "signature": "s"}])
        );
    }

    #[test]
    fn a_responses_item_becomes_details_with_the_signature_on_the_last_text() {
        let anthropic = json!({"type": "reasoning", "id": "rs_9", "summary": [],
            "content": [{"type": "reasoning_text", "text": "x"}, {"type": "reasoning_text", "text": "y"}],
            "signature": "sig", "format": "anthropic-claude-v1"});
        assert_eq!(
            Value::Array(details_from_item(&anthropic)),
            json!([
                {"type": "reasoning.text", "text": "x", "index": 0, "format": "anthropic-claude-v1"},
                {"type": "reasoning.text", "text": "y", "index": 1, "format": "anthropic-claude-v1",
                 "signature": "sig"},
            ])
        );
        let signature_only =
            json!({"type": "reasoning", "id": "rs_9", "summary": [], "signature": "sig"});
        assert_eq!(
            Value::Array(details_from_item(&signature_only)),
            json!([{"type": "reasoning.text", "signature": "sig", "index": 0}])
        );
        let openai = json!({"type": "reasoning", "id": "rs_7", "summary": [],
                            "encrypted_content": "gAAAA"});
        assert_eq!(
            Value::Array(details_from_item(&openai)),
            json!([{"type": "reasoning.encrypted", "data": "gAAAA", "id": "rs_7", "index": 0}])
        );
    }

    fn replayed(item: Value) -> Value {
        json!({"role": replay::ROLE, "item": item})
    }

    #[test]
    fn replayed_reasoning_rides_on_the_following_assistant_message() {
        let item = item_from_details(&json!([signed("t", "sig-1")]), "rs_chat_1").unwrap();
        let second =
            json!({"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "E"});
        let messages = vec![
            json!({"role": "user", "content": "hi"}),
            replayed(item),
            json!({"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
                   "function": {"name": "f", "arguments": "{}"}}]}),
            json!({"role": "tool", "tool_call_id": "c1", "content": "ok"}),
            replayed(second),
            json!({"role": "assistant", "content": "answer"}),
            json!({"role": "user", "content": "again"}),
        ];
        let out = fold_into_chat(&messages);
        assert_eq!(out.len(), 5);
        assert!(out.iter().all(|m| !replay::is_replayed_item(m)));
        assert_eq!(out[1]["reasoning_details"], json!([signed("t", "sig-1")]));
        assert_eq!(out[1]["tool_calls"][0]["id"], "c1");
        assert_eq!(
            out[3]["reasoning_details"],
            json!([{"type": "reasoning.encrypted", "data": "E", "id": "rs_2", "index": 0}])
        );
        assert!(out[0].get("reasoning_details").is_none());
    }

    #[test]
    fn reasoning_without_a_following_assistant_is_dropped_and_own_details_are_kept() {
        let item =
            json!({"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "E"});
        let own = json!([{"type": "reasoning.text", "text": "own", "signature": "o"}]);
        let messages = vec![
            replayed(item.clone()),
            json!({"role": "user", "content": "hi"}),
            replayed(item.clone()),
            json!({"role": "assistant", "content": "a", "reasoning_details": own}),
            json!({"role": "user", "content": "next"}),
            replayed(item),
        ];
        let out = fold_into_chat(&messages);
        assert_eq!(out.len(), 3);
        assert!(out[0].get("reasoning_details").is_none());
        assert_eq!(out[1]["reasoning_details"], own);
        assert!(out[2].get("reasoning_details").is_none());
    }

    #[test]
    fn two_consecutive_items_join_in_order() {
        let a = json!({"type": "reasoning", "id": "rs_a", "summary": [], "encrypted_content": "A"});
        let b = json!({"type": "reasoning", "id": "rs_b", "summary": [], "encrypted_content": "B"});
        let out = fold_into_chat(&[
            replayed(a),
            replayed(b),
            json!({"role": "assistant", "content": "x"}),
        ]);
        let data: Vec<&str> = out[0]["reasoning_details"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["data"].as_str())
            .collect();
        assert_eq!(data, ["A", "B"]);
    }
}
