//! Moving rows to the current key after a key rotation. While `ARTIFACT_ENCRYPTION_KEY_PREVIOUS`
//! is set, the host grants the previous key's table for reads and deletes: replay finds older rows
//! there, but they would be stranded the moment the operator drops the previous key. Each
//! maintenance pass therefore moves a bounded number of rows across: read a page from the previous
//! table in id order, open each payload (the host tries both keys), encode it again for the current
//! table under the current settings (sealed with the current key, bound to the current table),
//! write the page, then delete what was written from the previous table. A row that cannot be
//! opened (sealed under a key the host no longer holds, or damaged) is left where it is and
//! counted; the next pass starts after it. Nothing moves unless a current key is configured, so
//! removing the key never turns sealed rows into plain ones.

use super::codec::{self, Identity};
use super::{ArtifactSettings, MaintainError};
use crate::caps::{Crypto, Env, Row, Store};

/// Rows read per page.
pub const MIGRATE_PAGE: u32 = 100;
/// Pages per pass (at most `MIGRATE_PAGE * MIGRATE_MAX_PAGES` rows move in one pass).
pub const MIGRATE_MAX_PAGES: u32 = 20;
/// Payload bytes read per page.
const MIGRATE_PAGE_BYTES: u64 = 16 << 20;

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    /// Rows written to the current table and deleted from the previous one.
    pub moved: u64,
    /// Rows left in the previous table because they could not be opened.
    pub skipped: u64,
    /// Whether the previous table was read to its end.
    pub done: bool,
}

/// Move up to `MIGRATE_PAGE * MIGRATE_MAX_PAGES` rows from the previous key's table to the
/// current one. Without a rotation in progress (no previous table) or without a current key it
/// does nothing.
pub fn migrate(
    settings: &ArtifactSettings,
    store: &dyn Store,
    crypto: &dyn Crypto,
    env: &impl Env,
) -> Result<Migrated, MaintainError> {
    let (current, previous) = (
        settings.artifact_table.as_str(),
        settings.artifact_table_previous.as_str(),
    );
    let mut out = Migrated::default();
    if previous.is_empty() || current.is_empty() || previous == current || !crypto.enabled() {
        out.done = true;
        return Ok(out);
    }
    let from = store.open(previous)?;
    let to = store.open(current)?;
    let mut after = String::new();
    for _ in 0..MIGRATE_MAX_PAGES {
        let page = from.scan(&after, MIGRATE_PAGE, MIGRATE_PAGE_BYTES)?;
        let Some(last) = page.last() else {
            out.done = true;
            break;
        };
        after = last.id.clone();
        let short = page.len() < MIGRATE_PAGE as usize;
        let mut moved: Vec<Row> = Vec::with_capacity(page.len());
        for row in page {
            match reencode(settings, crypto, previous, current, &row) {
                Some(payload) => moved.push(Row { payload, ..row }),
                None => out.skipped += 1,
            }
        }
        if !moved.is_empty() {
            to.put_many(&moved)?;
            let ids: Vec<String> = moved.iter().map(|r| r.id.clone()).collect();
            out.moved += from.delete(&ids)?;
        }
        if short {
            out.done = true;
            break;
        }
    }
    if out.moved > 0 || out.skipped > 0 {
        env.log(&format!(
            "artifact key rotation: {} rows moved to the current key, {} left (cannot be opened){}",
            out.moved,
            out.skipped,
            if out.done { "" } else { "; more next pass" }
        ));
    }
    Ok(out)
}

/// The row's payload for the current table, or `None` when it cannot be opened.
fn reencode(
    settings: &ArtifactSettings,
    crypto: &dyn Crypto,
    previous: &str,
    current: &str,
    row: &Row,
) -> Option<Vec<u8>> {
    let identity = |table| Identity {
        table,
        id: &row.id,
        chat_id: &row.chat_id,
        item_type: &row.item_type,
        owner: &row.owner,
    };
    let item = codec::decode(crypto, &identity(previous), &row.payload).ok()?;
    codec::encode(settings, crypto, &identity(current), &item).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::row;
    use crate::testing::{FixedEnv, MemCrypto, MemStore, NoCrypto};
    use serde_json::json;

    const CURRENT: &str = "response_items_x_11111111";
    const PREVIOUS: &str = "response_items_x_00000000";

    fn settings() -> ArtifactSettings {
        ArtifactSettings {
            artifact_table: CURRENT.into(),
            artifact_table_previous: PREVIOUS.into(),
            ..ArtifactSettings::default()
        }
    }

    fn stored(store: &MemStore, crypto: &MemCrypto, n: usize) {
        let s = ArtifactSettings {
            artifact_table: PREVIOUS.into(),
            ..settings()
        };
        let table = store.open(PREVIOUS).unwrap();
        let rows: Vec<Row> = (0..n)
            .map(|i| {
                let id = format!("{i:020}");
                let identity = Identity {
                    table: PREVIOUS,
                    id: &id,
                    chat_id: "chat-1",
                    item_type: "reasoning",
                    owner: "owner-1",
                };
                let payload =
                    codec::encode(&s, crypto, &identity, &json!({"type": "reasoning", "n": i}))
                        .unwrap();
                Row {
                    owner: "owner-1".into(),
                    ..row(&id, "chat-1", "msg-1", "reasoning", payload, 1)
                }
            })
            .collect();
        table.put_many(&rows).unwrap();
    }

    #[test]
    fn rows_move_to_the_current_table_bound_to_it_and_leave_the_previous_one() {
        let (store, crypto, env) = (
            MemStore::default(),
            MemCrypto::default(),
            FixedEnv::default(),
        );
        stored(&store, &crypto, 3);
        let done = migrate(&settings(), &store, &crypto, &env).unwrap();
        assert_eq!(
            done,
            Migrated {
                moved: 3,
                skipped: 0,
                done: true
            }
        );
        assert_eq!(store.len(PREVIOUS), 0);
        for r in store.rows(CURRENT) {
            assert!(codec::is_sealed(&r.payload));
            let identity = Identity {
                table: CURRENT,
                id: &r.id,
                chat_id: &r.chat_id,
                item_type: &r.item_type,
                owner: &r.owner,
            };
            let item = codec::decode(&crypto, &identity, &r.payload).unwrap();
            assert_eq!(item["type"], "reasoning");
            assert_eq!(r.owner, "owner-1", "the owner moves with the row");
            // Bound to the current table: the old identity no longer opens it.
            let old = Identity {
                table: PREVIOUS,
                ..identity
            };
            assert!(codec::decode(&crypto, &old, &r.payload).is_err());
        }
        // Nothing left: the next pass does nothing.
        assert_eq!(
            migrate(&settings(), &store, &crypto, &env).unwrap().moved,
            0
        );
    }

    #[test]
    fn rows_without_an_owner_move_too_and_stay_without_one() {
        let (store, crypto, env) = (
            MemStore::default(),
            MemCrypto::default(),
            FixedEnv::default(),
        );
        let legacy = Identity {
            table: PREVIOUS,
            id: "00000000000000000001",
            chat_id: "chat-1",
            item_type: "reasoning",
            owner: "",
        };
        let s = ArtifactSettings {
            artifact_table: PREVIOUS.into(),
            ..settings()
        };
        let payload = codec::encode(&s, &crypto, &legacy, &json!({"type": "reasoning"})).unwrap();
        store
            .open(PREVIOUS)
            .unwrap()
            .put_many(&[row(legacy.id, "chat-1", "m", "reasoning", payload, 1)])
            .unwrap();
        let done = migrate(&settings(), &store, &crypto, &env).unwrap();
        assert_eq!((done.moved, done.skipped), (1, 0));
        let moved = store.rows(CURRENT);
        assert_eq!(moved[0].owner, "");
        let identity = Identity {
            table: CURRENT,
            ..legacy
        };
        assert!(codec::decode(&crypto, &identity, &moved[0].payload).is_ok());
    }

    #[test]
    fn a_row_that_cannot_be_opened_stays_and_the_pass_goes_on_after_it() {
        let (store, crypto, env) = (
            MemStore::default(),
            MemCrypto::default(),
            FixedEnv::default(),
        );
        stored(&store, &crypto, 3);
        // Damage the middle row.
        {
            let mut tables = store.tables.borrow_mut();
            let rows = tables.get_mut(PREVIOUS).unwrap();
            if let Some(last) = rows[1].payload.last_mut() {
                *last ^= 0xff;
            }
        }
        let done = migrate(&settings(), &store, &crypto, &env).unwrap();
        assert_eq!((done.moved, done.skipped, done.done), (2, 1, true));
        assert_eq!(store.len(PREVIOUS), 1);
        assert_eq!(store.len(CURRENT), 2);
    }

    #[test]
    fn a_pass_is_bounded_and_the_next_one_carries_on() {
        let (store, crypto, env) = (
            MemStore::default(),
            MemCrypto::default(),
            FixedEnv::default(),
        );
        let total = (MIGRATE_PAGE * MIGRATE_MAX_PAGES) as usize + 5;
        stored(&store, &crypto, total);
        let first = migrate(&settings(), &store, &crypto, &env).unwrap();
        assert_eq!(first.moved, u64::from(MIGRATE_PAGE * MIGRATE_MAX_PAGES));
        assert!(!first.done);
        let second = migrate(&settings(), &store, &crypto, &env).unwrap();
        assert_eq!((second.moved, second.done), (5, true));
        assert_eq!(store.len(CURRENT), total);
    }

    #[test]
    fn nothing_moves_without_a_rotation_or_without_a_current_key() {
        let (store, crypto, env) = (
            MemStore::default(),
            MemCrypto::default(),
            FixedEnv::default(),
        );
        stored(&store, &crypto, 2);
        let no_rotation = ArtifactSettings {
            artifact_table_previous: String::new(),
            ..settings()
        };
        assert_eq!(
            migrate(&no_rotation, &store, &crypto, &env).unwrap().moved,
            0
        );
        assert_eq!(
            migrate(&settings(), &store, &NoCrypto, &env).unwrap().moved,
            0
        );
        assert_eq!(store.len(PREVIOUS), 2);
        assert!(!store.calls.borrow().iter().any(|c| c.starts_with("scan")));
    }
}
