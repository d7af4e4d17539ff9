//! Artifact persistence and replay: reasoning items (and, when enabled, tool
//! calls with their outputs) are stored at the end of a turn through the `store` capability, an
//! invisible marker line per stored row is appended to the answer, and later turns resolve the
//! markers they carry back into Responses `input` items.
//!
//! Threat handled: artifacts at rest. Payloads are sealed by the host's `crypto` capability (the
//! key never enters the guest), bound to their row identity, so a row moved or altered in the
//! database does not decode. A store or crypto failure never fails the chat: the turn is served
//! without persistence, the caller is told, and a per-user breaker stops hammering a sick
//! database. Not handled: a caller who forges marker lines in the history it sends can only name
//! rows of its own chat (every read checks the chat id), never read another chat's rows.

pub mod breaker;
pub mod chat_reasoning;
pub mod codec;
pub mod markers;
pub mod migrate;
pub mod persist;
pub mod replay;
pub mod ulid;

use crate::caps::{Crypto, CryptoError, Env, Row, Store, StoreError, StoreTable};
use serde::Deserialize;

/// The settings this module reads (defaults: the settings table).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct ArtifactSettings {
    /// `disabled`, `next_reply` (replayed reasoning deleted after the reply) or `conversation`.
    pub persist_reasoning_tokens: String,
    /// Persist tool calls and their outputs (the tool loop hands them over).
    pub persist_tool_results: bool,
    pub encrypt_all: bool,
    pub enable_lz4_compression: bool,
    pub min_compress_bytes: u64,
    /// Rows unused (not read) for this many days are deleted by `maintain`.
    pub artifact_cleanup_days: u64,
    /// `BREAKER_MAX_FAILURES` and `BREAKER_WINDOW_SECONDS` are shared with the tool breaker,
    /// whose settings group owns them for serde; `Settings::parse` copies them here.
    #[serde(skip)]
    pub breaker_max_failures: u32,
    #[serde(skip)]
    pub breaker_window_seconds: u64,
    pub breaker_history_size: u32,
    /// The artifact table the host grants (computed by the host from the pipe id and a hash of
    /// the key, as the Python pipe names it). Empty: the host offers no table and nothing is persisted. A
    /// fact the host adds to the document, not a setting.
    #[serde(default)]
    pub artifact_table: String,
    /// During a key rotation, the previous key's table (the host grants reads and deletes only):
    /// rows written before the rotation are replayed, expired and deleted from there.
    #[serde(default)]
    pub artifact_table_previous: String,
}

impl ArtifactSettings {
    /// The tables rows may be read from, newest first: the current one, then the previous
    /// key's during a rotation.
    pub fn readable_tables(&self) -> impl Iterator<Item = &str> {
        [
            self.artifact_table.as_str(),
            self.artifact_table_previous.as_str(),
        ]
        .into_iter()
        .filter(|t| !t.is_empty())
    }
}

impl ArtifactSettings {
    /// Whether reasoning items are stored at all.
    pub fn persists_reasoning(&self) -> bool {
        !self
            .persist_reasoning_tokens
            .eq_ignore_ascii_case("disabled")
    }
    /// Whether replayed reasoning rows are deleted once the reply is done.
    pub fn reasoning_for_next_reply_only(&self) -> bool {
        self.persist_reasoning_tokens
            .eq_ignore_ascii_case("next_reply")
    }
}

/// The two capabilities persistence needs.
#[derive(Clone, Copy)]
pub struct Caps<'a> {
    pub store: &'a dyn Store,
    pub crypto: &'a dyn Crypto,
}

/// A store and crypto that do nothing: the table cannot be opened, nothing is sealed.
pub struct Unavailable;

impl Store for Unavailable {
    fn open(&self, _name: &str) -> Result<Box<dyn StoreTable + '_>, StoreError> {
        Err(StoreError::Unavailable("no artifact store".into()))
    }
}

impl Crypto for Unavailable {
    fn enabled(&self) -> bool {
        false
    }
    fn seal(&self, _aad: &[u8], _plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Err(CryptoError::NotConfigured)
    }
    fn open(&self, _aad: &[u8], _sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Err(CryptoError::NotConfigured)
    }
}

impl Caps<'static> {
    /// No persistence at all (tests of other features, hosts without a store).
    pub fn none() -> Self {
        Caps {
            store: &Unavailable,
            crypto: &Unavailable,
        }
    }
}

/// Rows deleted per `delete-older-than` call in `maintain`.
pub const CLEANUP_PAGE: u32 = 500;
/// Most pages one `maintain` run deletes (bounds its time; the next run goes on).
pub const CLEANUP_MAX_PAGES: u32 = 200;
const DAY_MS: u64 = 86_400_000;

/// Why `maintain` could not finish.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MaintainError {
    #[error("artifact store: {0}")]
    Store(#[from] StoreError),
}

/// Delete rows not used for `ARTIFACT_CLEANUP_DAYS`, a page at a time until a page comes back
/// short. Returns how many rows were deleted. Without a table there is nothing to do.
pub fn maintain(
    settings: &ArtifactSettings,
    store: &dyn Store,
    env: &impl Env,
) -> Result<u64, MaintainError> {
    if settings.artifact_table.is_empty() {
        return Ok(0);
    }
    let cutoff = env
        .now_ms()
        .saturating_sub(settings.artifact_cleanup_days.max(1).saturating_mul(DAY_MS));
    let mut total = 0;
    for name in settings.readable_tables() {
        let table = store.open(name)?;
        for _ in 0..CLEANUP_MAX_PAGES {
            let n = table.delete_older_than(cutoff, CLEANUP_PAGE)?;
            total += n;
            if n < u64::from(CLEANUP_PAGE) {
                break;
            }
        }
    }
    env.log(&format!(
        "artifact cleanup: {total} rows older than {} days deleted",
        settings.artifact_cleanup_days
    ));
    Ok(total)
}

/// Rows are plain data; the tests build them by hand (without an owner; set `owner` on the
/// result where one is wanted).
pub fn row(
    id: &str,
    chat_id: &str,
    message_id: &str,
    item_type: &str,
    payload: Vec<u8>,
    now: u64,
) -> Row {
    Row {
        id: id.to_string(),
        chat_id: chat_id.to_string(),
        message_id: message_id.to_string(),
        item_type: item_type.to_string(),
        owner: String::new(),
        payload,
        created_at_ms: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FixedEnv, MemStore};

    #[test]
    fn maintain_deletes_old_rows_in_pages_and_keeps_fresh_ones() {
        let env = FixedEnv::default();
        let now = 400 * DAY_MS;
        env.now.set(now);
        let store = MemStore::default();
        let settings = ArtifactSettings {
            artifact_table: "response_items_x_00000000".into(),
            ..ArtifactSettings::default()
        };
        {
            let t = store.open(&settings.artifact_table).unwrap();
            let old: Vec<Row> = (0..1_234)
                .map(|i| {
                    row(
                        &format!("old{i}"),
                        "c",
                        "m",
                        "reasoning",
                        vec![0],
                        now - 91 * DAY_MS,
                    )
                })
                .collect();
            t.put_many(&old).unwrap();
            t.put_many(&[row(
                "fresh",
                "c",
                "m",
                "reasoning",
                vec![0],
                now - 89 * DAY_MS,
            )])
            .unwrap();
        }
        assert_eq!(maintain(&settings, &store, &env).unwrap(), 1_234);
        assert_eq!(store.len(&settings.artifact_table), 1);
        assert!(
            store
                .calls
                .borrow()
                .iter()
                .filter(|c| c.starts_with("delete_older_than"))
                .count()
                >= 3
        );
    }

    #[test]
    fn the_settings_document_reaches_the_artifact_group_including_shared_breaker_valves() {
        let s = crate::settings::Settings::parse(
            r#"{"PERSIST_REASONING_TOKENS":"next_reply","PERSIST_TOOL_RESULTS":true,"ENCRYPT_ALL":false,
                "ENABLE_LZ4_COMPRESSION":false,"MIN_COMPRESS_BYTES":100,"ARTIFACT_CLEANUP_DAYS":7,
                "BREAKER_MAX_FAILURES":9,"BREAKER_WINDOW_SECONDS":120,"BREAKER_HISTORY_SIZE":20,
                "ARTIFACT_TABLE":"response_items_x_0123abcd","TOOL_OUTPUT_RETENTION_TURNS":3}"#,
        )
        .unwrap();
        let a = &s.artifacts;
        assert!(a.reasoning_for_next_reply_only() && a.persists_reasoning());
        assert!(a.persist_tool_results && !a.encrypt_all && !a.enable_lz4_compression);
        assert_eq!(
            (
                a.min_compress_bytes,
                a.artifact_cleanup_days,
                a.breaker_history_size
            ),
            (100, 7, 20)
        );
        assert_eq!((a.breaker_max_failures, a.breaker_window_seconds), (9, 120));
        assert_eq!(a.artifact_table, "response_items_x_0123abcd");
        assert_eq!(s.request.tool_output_retention_turns, 3);
        let d = crate::settings::Settings::parse("{}").unwrap().artifacts;
        assert_eq!(d, ArtifactSettings::default());
    }

    #[test]
    fn maintain_without_a_table_does_nothing_and_a_store_failure_is_typed() {
        let env = FixedEnv::default();
        assert_eq!(
            maintain(&ArtifactSettings::default(), &Unavailable, &env),
            Ok(0)
        );
        let s = ArtifactSettings {
            artifact_table: "t".into(),
            ..ArtifactSettings::default()
        };
        assert!(matches!(
            maintain(&s, &Unavailable, &env),
            Err(MaintainError::Store(_))
        ));
    }
}

#[cfg(test)]
mod flow_tests;
