//! Writing a turn's artifacts: the items worth
//! replaying are encoded, written in one `put-many`, and the marker lines for exactly the rows
//! written are returned for the caller to append to the answer. A request without a chat id (a
//! plain API call) persists nothing. Any store or crypto failure skips persistence for this turn,
//! counts against the user's DB breaker, and yields a notice; the chat itself carries on.

use super::codec::{self, Identity};
use super::{ArtifactSettings, Caps, breaker, markers, ulid};
use crate::caps::{Env, Kv, Row};
use crate::types::RequestContext;
use serde_json::Value;

/// What the user is told when persistence was skipped.
pub const NOTICE_FAILED: &str = "This answer could not be saved for later turns (artifact storage failed); the answer itself is complete.";
/// What the user is told while the DB breaker is open.
pub const NOTICE_BREAKER: &str = "DB ops skipped: artifact storage failed repeatedly and is paused for a moment; this answer will not be replayed in later turns.";

/// Longest id, chat id, message id and item type the host stores (bytes).
pub const MAX_TEXT_BYTES: usize = 64;
/// Most rows the host takes in one `put-many`.
pub const MAX_ROWS: usize = 256;

fn truncate_bytes(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The message id rows are filed under: the forwarded one, else a stable id derived from the
/// chat id and the turn number (the count of user messages), so a retried turn files the same.
pub fn message_id(ctx: &RequestContext, chat_id: &str, turn: usize) -> String {
    if let Some(id) = ctx.message_id.as_deref().filter(|s| !s.trim().is_empty()) {
        return truncate_bytes(id, MAX_TEXT_BYTES).to_string();
    }
    // FNV-1a 64: stable across builds and hosts (the std hasher is not).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in chat_id.bytes().chain([0]).chain(turn.to_string().bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("turn-{turn}-{h:016x}")
}

/// Whether an output item is worth persisting under these settings.
pub fn worth_persisting(settings: &ArtifactSettings, item: &Value) -> bool {
    let text = |k: &str| {
        item.get(k)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    match item.get("type").and_then(Value::as_str) {
        // Only reasoning that a provider can verify again is worth replaying.
        Some("reasoning") => {
            settings.persists_reasoning() && (text("encrypted_content") || text("signature"))
        }
        Some("function_call") => settings.persist_tool_results && text("call_id"),
        // Failed or omitted outputs are never stored.
        Some("function_call_output") => {
            settings.persist_tool_results
                && text("call_id")
                && item.get("status").and_then(Value::as_str) != Some("failed")
        }
        _ => false,
    }
}

/// Only the fields an input item may carry (the stream's output items have more).
fn sanitise(item: &Value) -> Value {
    let keep: &[&str] = match item.get("type").and_then(Value::as_str) {
        Some("reasoning") => &[
            "type",
            "id",
            "summary",
            "encrypted_content",
            "content",
            "format",
            "signature",
            // A chat-path turn's original `reasoning_details` (see `chat_reasoning`).
            super::chat_reasoning::ORIGINAL_DETAILS,
        ],
        Some("function_call") => &["type", "id", "call_id", "name", "arguments"],
        Some("function_call_output") => &["type", "call_id", "output"],
        _ => &[],
    };
    let mut out = serde_json::Map::new();
    if let Some(o) = item.as_object() {
        for k in keep {
            if let Some(v) = o.get(*k).filter(|v| !v.is_null()) {
                out.insert((*k).to_string(), v.clone());
            }
        }
    }
    if out.get("type").and_then(Value::as_str) == Some("reasoning") && !out.contains_key("summary")
    {
        out.insert("summary".into(), Value::Array(Vec::new()));
    }
    Value::Object(out)
}

/// The result of one persistence attempt.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Ids of the rows written, in item order.
    pub stored: Vec<String>,
    /// Text to append to the answer (marker lines for the stored rows), empty when none.
    pub markers: String,
    /// A notice for the user when persistence was skipped because of a failure.
    pub notice: Option<&'static str>,
}

/// Persist `items` (output items of this turn, in order) for the chat in `ctx`.
#[expect(
    clippy::too_many_arguments,
    reason = "capabilities are passed explicitly"
)]
pub fn persist(
    caps: Caps<'_>,
    settings: &ArtifactSettings,
    kv: &impl Kv,
    env: &impl Env,
    ctx: &RequestContext,
    turn: usize,
    items: &[Value],
    now_ms: u64,
) -> Outcome {
    let Some(chat_id) = ctx.chat_id.as_deref().filter(|s| !s.trim().is_empty()) else {
        return Outcome::default();
    };
    let items: Vec<Value> = items
        .iter()
        .filter(|i| worth_persisting(settings, i))
        .map(sanitise)
        .collect();
    if items.is_empty() {
        return Outcome::default();
    }
    if chat_id.len() > MAX_TEXT_BYTES {
        env.log("artifacts: the chat id is longer than the store accepts; nothing persisted");
        return Outcome::default();
    }
    let mut items = items;
    if items.len() > MAX_ROWS {
        env.log(&format!(
            "artifacts: {} items in one turn; only the first {MAX_ROWS} are persisted",
            items.len()
        ));
        items.truncate(MAX_ROWS);
    }
    if settings.artifact_table.is_empty() {
        env.log("artifacts: the host grants no artifact table; nothing persisted");
        return Outcome::default();
    }
    // Keyed by the caller (client key and user), never by a user id alone.
    let user = ctx.principal();
    let user = user.as_str();
    if breaker::is_open(settings, kv, env, user) {
        env.log("artifacts: DB breaker open; persistence skipped");
        return Outcome {
            notice: Some(NOTICE_BREAKER),
            ..Outcome::default()
        };
    }
    let fail = |what: String| {
        env.log(&format!("artifacts: persistence skipped: {what}"));
        breaker::record_failure(settings, kv, env, user);
        Outcome {
            notice: Some(NOTICE_FAILED),
            ..Outcome::default()
        }
    };
    let message_id = message_id(ctx, chat_id, turn);
    let owner = ctx.owner();
    let mut rows: Vec<Row> = Vec::with_capacity(items.len());
    for item in &items {
        let item_type = item.get("type").and_then(Value::as_str).unwrap_or_default();
        let mut id = ulid::new(env);
        while rows.iter().any(|r| r.id == id) {
            id = ulid::new(env);
        }
        let identity = Identity {
            table: &settings.artifact_table,
            id: &id,
            chat_id,
            item_type,
            owner: &owner,
        };
        let payload = match codec::encode(settings, caps.crypto, &identity, item) {
            Ok(p) => p,
            Err(e) => return fail(format!("encoding a {item_type} item: {e}")),
        };
        rows.push(Row {
            owner: owner.clone(),
            ..super::row(&id, chat_id, &message_id, item_type, payload, now_ms)
        });
    }
    let written = caps
        .store
        .open(&settings.artifact_table)
        .and_then(|t| t.put_many(&rows));
    if let Err(e) = written {
        return fail(format!("writing {} rows: {e}", rows.len()));
    }
    breaker::record_success(kv, user);
    let stored: Vec<String> = rows.into_iter().map(|r| r.id).collect();
    Outcome {
        markers: markers::block(&stored),
        stored,
        notice: None,
    }
}
