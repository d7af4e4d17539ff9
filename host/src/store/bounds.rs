//! What one `store` call may carry, whatever the guest asks: rows per `put-many`, bytes per row
//! and per batch, ids per `get-many`/`delete`, bytes per answer, rows per `delete-older-than`
//! and per `scan` page, the length of every id and column; and the validation of rows and ids
//! against those bounds (control characters refused, duplicates collapsed). Pure functions.

use crate::bindings::store::{Row, StoreError};
use std::collections::{HashMap, HashSet};

/// Largest payload of one row.
pub const MAX_ROW_PAYLOAD_BYTES: usize = 4 << 20;
/// Most rows in one `put-many`.
pub const MAX_PUT_ROWS: usize = 256;
/// Most payload bytes in one `put-many`.
pub const MAX_PUT_BYTES: usize = 32 << 20;
/// Most ids in one `get-many` or `delete`.
pub const MAX_IDS: usize = 512;
/// Most payload bytes one `get-many` returns, whatever `max-bytes` says.
pub const MAX_GET_BYTES: u64 = 64 << 20;
/// Most rows one `delete-older-than` removes (a larger `limit` is clamped to this).
pub const MAX_DELETE_LIMIT: u32 = 10_000;
/// Rows per `scan` page.
pub const MAX_SCAN_ROWS: u32 = 500;
/// Longest id, chat id, message id, item type and owner, in bytes.
pub const MAX_TEXT_BYTES: usize = 64;

/// A row that passed validation, in the backends' column types.
pub(crate) struct ValidRow {
    pub id: String,
    pub chat_id: String,
    pub message_id: String,
    pub item_type: String,
    pub owner: String,
    pub payload: Vec<u8>,
    pub created_at_ms: i64,
}

/// A row as the backends return it.
pub(super) fn row_of(
    (id, chat_id, message_id, item_type, owner, payload, created): (
        String,
        String,
        String,
        String,
        String,
        Vec<u8>,
        i64,
    ),
) -> Row {
    Row {
        id,
        chat_id,
        message_id,
        item_type,
        owner,
        payload,
        created_at_ms: u64::try_from(created).unwrap_or(0),
    }
}

/// The leading rows whose payloads fit in `budget` bytes together; `too-large` when not even
/// the first one does.
pub(super) fn within_budget(
    rows: impl Iterator<Item = Row>,
    budget: u64,
) -> Result<Vec<Row>, StoreError> {
    let mut out = Vec::new();
    let mut total: u64 = 0;
    for row in rows {
        let size = row.payload.len() as u64;
        if total.saturating_add(size) > budget {
            if out.is_empty() {
                return Err(StoreError::TooLarge);
            }
            break;
        }
        total += size;
        out.push(row);
    }
    Ok(out)
}

pub(super) fn check_text(field: &str, value: &str, allow_empty: bool) -> Result<(), StoreError> {
    if value.len() > MAX_TEXT_BYTES {
        return Err(StoreError::InvalidArgument(format!(
            "{field} is longer than {MAX_TEXT_BYTES} bytes"
        )));
    }
    if value.is_empty() && !allow_empty {
        return Err(StoreError::InvalidArgument(format!("{field} is empty")));
    }
    if value.chars().any(char::is_control) {
        return Err(StoreError::InvalidArgument(format!(
            "{field} contains control characters"
        )));
    }
    Ok(())
}

/// Check and de-duplicate ids (first occurrence kept, order kept).
pub(super) fn check_ids(ids: Vec<String>) -> Result<Vec<String>, StoreError> {
    if ids.len() > MAX_IDS {
        return Err(StoreError::TooLarge);
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        check_text("id", &id, false)?;
        if seen.insert(id.clone()) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Check a batch: caps, then fields; a later row with the same id replaces an earlier one.
pub(super) fn check_rows(rows: Vec<Row>) -> Result<Vec<ValidRow>, StoreError> {
    if rows.len() > MAX_PUT_ROWS {
        return Err(StoreError::TooLarge);
    }
    let total: usize = rows.iter().map(|r| r.payload.len()).sum();
    if total > MAX_PUT_BYTES || rows.iter().any(|r| r.payload.len() > MAX_ROW_PAYLOAD_BYTES) {
        return Err(StoreError::TooLarge);
    }
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<ValidRow> = Vec::with_capacity(rows.len());
    for r in rows {
        check_text("id", &r.id, false)?;
        check_text("chat-id", &r.chat_id, true)?;
        check_text("message-id", &r.message_id, true)?;
        check_text("item-type", &r.item_type, false)?;
        check_text("owner", &r.owner, true)?;
        let created_at_ms = i64::try_from(r.created_at_ms)
            .map_err(|_| StoreError::InvalidArgument("created-at-ms is out of range".into()))?;
        let valid = ValidRow {
            id: r.id,
            chat_id: r.chat_id,
            message_id: r.message_id,
            item_type: r.item_type,
            owner: r.owner,
            payload: r.payload,
            created_at_ms,
        };
        match index.get(&valid.id) {
            Some(&at) => out[at] = valid,
            None => {
                index.insert(valid.id.clone(), out.len());
                out.push(valid);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, payload: usize) -> Row {
        Row {
            id: id.into(),
            chat_id: "chat".into(),
            message_id: "msg".into(),
            item_type: "reasoning".into(),
            owner: "owner".into(),
            payload: vec![7; payload],
            created_at_ms: 1,
        }
    }

    #[test]
    fn batches_are_capped_and_deduplicated() {
        assert!(matches!(
            check_rows((0..=MAX_PUT_ROWS).map(|i| row(&i.to_string(), 1)).collect()),
            Err(StoreError::TooLarge)
        ));
        assert!(matches!(
            check_rows(vec![row("a", MAX_ROW_PAYLOAD_BYTES + 1)]),
            Err(StoreError::TooLarge)
        ));
        let mut long = row("a", 1);
        long.chat_id = "c".repeat(65);
        assert!(matches!(
            check_rows(vec![long]),
            Err(StoreError::InvalidArgument(_))
        ));
        assert!(matches!(
            check_rows(vec![row("", 1)]),
            Err(StoreError::InvalidArgument(_))
        ));
        let mut late = row("a", 3);
        late.created_at_ms = u64::MAX;
        assert!(matches!(
            check_rows(vec![late]),
            Err(StoreError::InvalidArgument(_))
        ));
        let rows = check_rows(vec![row("a", 1), row("b", 1), row("a", 2)]).unwrap_or_default();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].id, "a");
        assert_eq!(
            rows[0].payload.len(),
            2,
            "the later row replaces the earlier"
        );
    }

    #[test]
    fn ids_are_capped_and_deduplicated() {
        assert!(matches!(
            check_ids((0..=MAX_IDS).map(|i| i.to_string()).collect()),
            Err(StoreError::TooLarge)
        ));
        assert!(matches!(
            check_ids(vec!["a\0b".into()]),
            Err(StoreError::InvalidArgument(_))
        ));
        assert_eq!(
            check_ids(vec!["b".into(), "a".into(), "b".into()]).unwrap_or_default(),
            vec!["b".to_string(), "a".to_string()]
        );
    }
}
