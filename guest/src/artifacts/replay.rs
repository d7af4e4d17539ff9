//! Replaying stored artifacts into a later turn. The markers in the
//! request's assistant messages are collected, resolved in one batched `get-many`, decoded, and
//! put back into the conversation where they were produced: the items of a marker run go before
//! the prose that precedes the run (a turn's reasoning and tool calls came before its answer).
//!
//! The conversation stays in chat shape so the existing rules apply to replayed items too:
//! function calls become assistant `tool_calls` and their outputs `role: "tool"` messages (tool
//! pairing drops orphans; `TOOL_OUTPUT_RETENTION_TURNS` pruning and the context budget shorten
//! old outputs), and a reasoning item rides in a pseudo message of role [`ROLE`] that the
//! Responses rendering turns back into the item (the chat-completions rendering drops it).
//! Marker lines are always removed from the text sent upstream. Rows of another chat, rows that
//! do not decode and types that cannot be replayed are skipped with a log line.
//!
//! Two rules keep a caller from replaying rows that are not theirs or were planted:
//! - a row is replayed only for its owner (the digest of the principal that wrote it, also bound
//!   into a sealed row's associated data): another principal claiming the same chat id gets
//!   nothing, and rows written before owners were recorded (empty owner) are never replayed;
//!   such rows are counted and logged at debug level;
//! - when the row's type is to be sealed (an artifact key is set, and `ENCRYPT_ALL` is on or it
//!   is reasoning), a plain row is refused, counted and logged: whoever can write to the table
//!   but does not hold the key cannot plant items.

use super::codec::{self, Identity};
use super::{ArtifactSettings, Caps, breaker, markers};
use crate::caps::{Env, Kv};
use crate::chat_body::content_text;
use crate::types::RequestContext;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Role of the pseudo message carrying one replayed Responses input item.
pub const ROLE: &str = "_replayed_item";
/// Most marker ids resolved per request, the host's `get-many` cap (a forged history cannot
/// make us read without bound; markers beyond it are stripped, not resolved).
pub const MAX_IDS: usize = 512;
/// Most payload bytes read back per request.
pub const MAX_BYTES: u64 = 32 << 20;
/// What the user is told when earlier artifacts could not be read.
pub const NOTICE_FAILED: &str = "Earlier reasoning and tool results could not be loaded (artifact storage failed); continuing without them.";

/// Whether a chat-shape message is a replayed item (only the Responses rendering keeps it).
pub fn is_replayed_item(m: &Value) -> bool {
    m.get("role").and_then(Value::as_str) == Some(ROLE)
}

/// The Responses input item a replayed pseudo message carries.
pub fn item_of(m: &Value) -> Option<&Value> {
    is_replayed_item(m).then(|| m.get("item")).flatten()
}

/// What replay did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Ids of replayed reasoning rows (deleted after the reply under `next_reply`).
    pub reasoning_ids: Vec<String>,
    /// How many items went back into the conversation.
    pub items: usize,
    /// Marker ids whose rows were missing or unreadable.
    pub missing: usize,
    /// Rows skipped because another principal (or nobody: rows older than owners) owns them.
    pub foreign: usize,
    /// Rows refused because they were stored plain although their type is to be sealed.
    pub unsealed: usize,
    /// A notice for the user when the store failed.
    pub notice: Option<&'static str>,
}

fn is_assistant(m: &Value) -> bool {
    m.get("role").and_then(Value::as_str) == Some("assistant")
}

/// The assistant text when it carries at least one marker line.
fn marked_text(m: &Value) -> Option<String> {
    if !is_assistant(m) {
        return None;
    }
    let text = content_text(m.get("content"));
    (!markers::ids(&text).is_empty()).then_some(text)
}

/// One replayed item in chat shape, or `None` for types that are not replayed.
fn to_chat(item: &Value) -> Option<Value> {
    let s = |k: &str| item.get(k).cloned().unwrap_or(Value::Null);
    match item.get("type").and_then(Value::as_str)? {
        "reasoning" => Some(json!({"role": ROLE, "item": item})),
        "function_call" => Some(json!({
            "role": "assistant",
            "content": "",
            "tool_calls": [{
                "id": s("call_id"),
                "type": "function",
                "function": {"name": s("name"), "arguments": item.get("arguments").cloned().unwrap_or_else(|| json!("{}"))},
            }],
        })),
        "function_call_output" => {
            let output = match item.get("output") {
                Some(Value::String(t)) => t.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            Some(json!({"role": "tool", "tool_call_id": s("call_id"), "content": output}))
        }
        _ => None,
    }
}

fn push_text(t: String, texts: &mut Vec<Value>, messages: &mut Vec<Value>) {
    let msg = json!({"role": "assistant", "content": t});
    texts.push(msg.clone());
    messages.push(msg);
}

/// Resolve the markers in `messages` and splice the stored items back in (see the module doc).
pub fn apply(
    caps: Caps<'_>,
    settings: &ArtifactSettings,
    kv: &impl Kv,
    env: &impl Env,
    ctx: &RequestContext,
    messages: &mut Vec<Value>,
) -> Replayed {
    let mut out = Replayed::default();
    let mut ids: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut marked = false;
    for m in messages.iter() {
        if let Some(text) = marked_text(m) {
            marked = true;
            for id in markers::ids(&text) {
                if ids.len() < MAX_IDS && seen.insert(id.clone()) {
                    ids.push(id);
                }
            }
        }
    }
    if !marked {
        return out;
    }
    let items = load(caps, settings, kv, env, ctx, &ids, &mut out);

    let old = std::mem::take(messages);
    for m in old {
        let Some(text) = marked_text(&m) else {
            messages.push(m);
            continue;
        };
        let mut texts: Vec<Value> = Vec::new();
        let mut pending: Option<String> = None;
        for piece in markers::split(&text) {
            match piece {
                markers::Piece::Text(t) => {
                    if let Some(p) = pending.take() {
                        push_text(p, &mut texts, messages);
                    }
                    pending = Some(t);
                }
                markers::Piece::Markers(run) => {
                    for id in run {
                        match items
                            .get(&id)
                            .and_then(|(kind, item)| Some((kind, to_chat(item)?)))
                        {
                            Some((kind, chat)) => {
                                if kind == "reasoning" {
                                    out.reasoning_ids.push(id.clone());
                                }
                                out.items += 1;
                                messages.push(chat);
                            }
                            None if items.contains_key(&id) => {
                                env.log(&format!(
                                    "artifacts: row {id} has a type that is not replayed"
                                ));
                            }
                            None => {}
                        }
                    }
                    if let Some(p) = pending.take() {
                        push_text(p, &mut texts, messages);
                    }
                }
            }
        }
        if let Some(p) = pending.take() {
            push_text(p, &mut texts, messages);
        }
        // The original's other fields (tool calls, names) stay on its last prose part, or on an
        // empty message that tool pairing keeps only if it still carries tool calls.
        let mut last: Map<String, Value> = m.as_object().cloned().unwrap_or_default();
        let content = texts
            .last()
            .and_then(|t| t.get("content").cloned())
            .unwrap_or_else(|| json!(""));
        last.insert("content".into(), content);
        if texts.is_empty() {
            messages.push(Value::Object(last));
        } else if let Some(slot) = messages
            .iter_mut()
            .rev()
            .find(|x| is_assistant(x) && x.get("tool_calls").is_none())
        {
            *slot = Value::Object(last);
        }
    }
    out
}

/// Read and decode the rows behind `ids`; failures leave the map short and are logged.
fn load(
    caps: Caps<'_>,
    settings: &ArtifactSettings,
    kv: &impl Kv,
    env: &impl Env,
    ctx: &RequestContext,
    ids: &[String],
    out: &mut Replayed,
) -> HashMap<String, (String, Value)> {
    let mut items = HashMap::new();
    let Some(chat_id) = ctx.chat_id.as_deref().filter(|s| !s.trim().is_empty()) else {
        env.log("artifacts: markers in a request without a chat id; not replayed");
        out.missing = ids.len();
        return items;
    };
    if settings.artifact_table.is_empty() {
        out.missing = ids.len();
        return items;
    }
    // Keyed by the caller (client key and user), never by a user id alone.
    let owner = ctx.owner();
    let user = ctx.principal();
    let user = user.as_str();
    if breaker::is_open(settings, kv, env, user) {
        env.log("artifacts: DB breaker open; replay skipped");
        out.missing = ids.len();
        out.notice = Some(super::persist::NOTICE_BREAKER);
        return items;
    }
    // The current table first; during a key rotation, what is missing there may be in the
    // previous key's table (rows written before the rotation).
    for table in settings.readable_tables() {
        let wanted: Vec<String> = ids
            .iter()
            .filter(|id| !items.contains_key(*id))
            .cloned()
            .collect();
        if wanted.is_empty() {
            break;
        }
        let rows = caps
            .store
            .open(table)
            .and_then(|t| t.get_many(&wanted, MAX_BYTES));
        let rows = match rows {
            Ok(rows) => {
                breaker::record_success(kv, user);
                rows
            }
            Err(e) => {
                env.log(&format!(
                    "artifacts: replay skipped: reading {} rows: {e}",
                    wanted.len()
                ));
                breaker::record_failure(settings, kv, env, user);
                out.missing = ids.len();
                out.notice = Some(NOTICE_FAILED);
                return items;
            }
        };
        let expect = Expected {
            table,
            chat_id,
            owner: &owner,
        };
        for row in rows {
            match decode_row(caps, settings, &expect, env, row, &mut items) {
                Skip::None => {}
                Skip::Foreign => out.foreign += 1,
                Skip::Unsealed => out.unsealed += 1,
            }
        }
    }
    if out.foreign > 0 {
        env.log_debug(&format!(
            "artifacts: {} marked rows belong to another owner (or predate owners); not replayed",
            out.foreign
        ));
    }
    if out.unsealed > 0 {
        env.log(&format!(
            "artifacts: refused {} unsealed rows whose type must be sealed (artifact_unsealed_refused={})",
            out.unsealed, out.unsealed
        ));
    }
    let missing = ids.iter().filter(|id| !items.contains_key(*id)).count();
    if missing > 0 {
        env.log(&format!(
            "artifacts: {missing} of {} marked rows missing or unreadable; skipped",
            ids.len()
        ));
    }
    out.missing = missing;
    items
}

/// Where fetched rows must come from to be replayed.
struct Expected<'a> {
    table: &'a str,
    chat_id: &'a str,
    owner: &'a str,
}

/// Why a fetched row was not decoded, when that is counted.
enum Skip {
    None,
    Foreign,
    Unsealed,
}

/// Decode one fetched row into `items` (keyed by row id) when it belongs to this chat and this
/// owner, is sealed if its type must be, opens under its identity and holds the type it says.
fn decode_row(
    caps: Caps<'_>,
    settings: &ArtifactSettings,
    expect: &Expected<'_>,
    env: &impl Env,
    row: crate::caps::Row,
    items: &mut HashMap<String, (String, Value)>,
) -> Skip {
    if row.chat_id != expect.chat_id {
        env.log(&format!(
            "artifacts: row {} belongs to another chat; ignored",
            row.id
        ));
        return Skip::None;
    }
    if row.owner.is_empty() || row.owner != expect.owner {
        return Skip::Foreign;
    }
    if codec::should_seal(settings, caps.crypto, &row.item_type) && !codec::is_sealed(&row.payload)
    {
        env.log(&format!(
            "artifacts: row {} is stored unsealed but {} rows must be sealed; refused",
            row.id, row.item_type
        ));
        return Skip::Unsealed;
    }
    let identity = Identity {
        table: expect.table,
        id: &row.id,
        chat_id: expect.chat_id,
        item_type: &row.item_type,
        owner: &row.owner,
    };
    match codec::decode(caps.crypto, &identity, &row.payload) {
        Ok(item) if item.get("type").and_then(Value::as_str) == Some(row.item_type.as_str()) => {
            items.insert(row.id.clone(), (row.item_type.clone(), item));
        }
        Ok(_) => env.log(&format!(
            "artifacts: row {} holds another type than it says; ignored",
            row.id
        )),
        Err(e) => env.log(&format!("artifacts: row {} not replayed: {e}", row.id)),
    }
    Skip::None
}

/// Under `next_reply`, delete the reasoning rows that were replayed once the reply is done.
pub fn after_reply(
    caps: Caps<'_>,
    settings: &ArtifactSettings,
    env: &impl Env,
    replayed: &Replayed,
) {
    if !settings.reasoning_for_next_reply_only() || replayed.reasoning_ids.is_empty() {
        return;
    }
    for table in settings.readable_tables() {
        let deleted = caps
            .store
            .open(table)
            .and_then(|t| t.delete(&replayed.reasoning_ids));
        if let Err(e) = deleted {
            env.log(&format!("artifacts: replayed reasoning not deleted: {e}"));
        }
    }
}
