//! The table operations, written once and instantiated for each backend by `table_ops!`. The SQL
//! is the common subset of SQLite and PostgreSQL (`ON CONFLICT … DO UPDATE`, `IN (…)`, `LIMIT` in
//! a subquery, `length(blob)`), and `QueryBuilder` writes each backend's placeholders. The table
//! name is interpolated, never a bind: it is always the host-computed, validated name.

/// Rows written per INSERT statement: 8 binds each stays far below both backends' bind limits.
pub(super) const ROWS_PER_STATEMENT: usize = 64;

macro_rules! table_ops {
    ($db:ty, $conn:ty) => {
        use $crate::store::ValidRow;
        use sqlx::Connection as _;

        /// Insert or replace `rows` (ids unique) in one transaction.
        pub(super) async fn put_rows(
            conn: &mut $conn,
            table: &str,
            rows: &[ValidRow],
            now_ms: i64,
        ) -> Result<(), sqlx::Error> {
            let mut tx = conn.begin().await?;
            for chunk in rows.chunks($crate::store::ops::ROWS_PER_STATEMENT) {
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "INSERT INTO {table} \
                     (id, chat_id, message_id, item_type, owner, payload, created_at_ms, \
                     last_used_ms) "
                ));
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(r.id.as_str())
                        .push_bind(r.chat_id.as_str())
                        .push_bind(r.message_id.as_str())
                        .push_bind(r.item_type.as_str())
                        .push_bind(r.owner.as_str())
                        .push_bind(r.payload.as_slice())
                        .push_bind(r.created_at_ms)
                        .push_bind(now_ms);
                });
                qb.push(
                    " ON CONFLICT (id) DO UPDATE SET chat_id = excluded.chat_id, \
                     message_id = excluded.message_id, item_type = excluded.item_type, \
                     owner = excluded.owner, payload = excluded.payload, created_at_ms = excluded.created_at_ms, \
                     last_used_ms = excluded.last_used_ms",
                );
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await
        }

        fn push_ids(qb: &mut sqlx::QueryBuilder<'_, $db>, ids: &[String]) {
            qb.push("(");
            let mut sep = qb.separated(", ");
            for id in ids {
                sep.push_bind(id.clone());
            }
            sep.push_unseparated(")");
        }

        /// Payload size of each present row among `ids`.
        pub(super) async fn sizes(
            conn: &mut $conn,
            table: &str,
            ids: &[String],
        ) -> Result<Vec<(String, i64)>, sqlx::Error> {
            let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                "SELECT id, CAST(length(payload) AS BIGINT) FROM {table} WHERE id IN "
            ));
            push_ids(&mut qb, ids);
            qb.build_query_as::<(String, i64)>().fetch_all(&mut *conn).await
        }

        pub(super) type RawRow = (String, String, String, String, String, Vec<u8>, i64);

        /// The rows among `ids`, and their `last_used_ms` set to `now_ms`.
        pub(super) async fn fetch_and_touch(
            conn: &mut $conn,
            table: &str,
            ids: &[String],
            now_ms: i64,
        ) -> Result<Vec<RawRow>, sqlx::Error> {
            let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                "SELECT id, chat_id, message_id, item_type, owner, payload, created_at_ms \
                 FROM {table} WHERE id IN "
            ));
            push_ids(&mut qb, ids);
            let rows = qb.build_query_as::<RawRow>().fetch_all(&mut *conn).await?;
            let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                "UPDATE {table} SET last_used_ms = "
            ));
            qb.push_bind(now_ms);
            qb.push(" WHERE id IN ");
            push_ids(&mut qb, ids);
            qb.build().execute(&mut *conn).await?;
            Ok(rows)
        }

        pub(super) async fn delete_ids(
            conn: &mut $conn,
            table: &str,
            ids: &[String],
        ) -> Result<u64, sqlx::Error> {
            let mut qb =
                sqlx::QueryBuilder::<$db>::new(format!("DELETE FROM {table} WHERE id IN "));
            push_ids(&mut qb, ids);
            Ok(qb.build().execute(&mut *conn).await?.rows_affected())
        }

        /// Up to `limit` rows with an id after `after`, in id order; `last_used_ms` untouched.
        pub(super) async fn scan_rows(
            conn: &mut $conn,
            table: &str,
            after: &str,
            limit: i64,
        ) -> Result<Vec<RawRow>, sqlx::Error> {
            let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                "SELECT id, chat_id, message_id, item_type, owner, payload, created_at_ms \
                 FROM {table} WHERE id > "
            ));
            qb.push_bind(after.to_owned());
            qb.push(" ORDER BY id LIMIT ");
            qb.push_bind(limit);
            qb.build_query_as::<RawRow>().fetch_all(&mut *conn).await
        }

        /// Delete up to `limit` rows with `last_used_ms < cutoff_ms`, least recently used first.
        pub(super) async fn delete_older(
            conn: &mut $conn,
            table: &str,
            cutoff_ms: i64,
            limit: i64,
        ) -> Result<u64, sqlx::Error> {
            let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE last_used_ms < "
            ));
            qb.push_bind(cutoff_ms);
            qb.push(" ORDER BY last_used_ms LIMIT ");
            qb.push_bind(limit);
            qb.push(")");
            Ok(qb.build().execute(&mut *conn).await?.rows_affected())
        }
    };
}

pub(super) use table_ops;
