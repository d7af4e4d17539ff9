//! The shared backend: PostgreSQL at `DATABASE_URL`, pooled. The DSN is a secret: it is parsed
//! here and never logged; only the backend kind and the host name are.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

crate::store::ops::table_ops!(sqlx::Postgres, PgConnection);

/// A lazily connecting pool; `None` when the URL does not parse (the caller reports that without
/// quoting it). Connections are not pinged before use (a stalled server would turn every acquire
/// into an acquire timeout); a broken one fails its statement and is discarded together with
/// every idle connection opened before it broke, and the next call opens a fresh one.
pub(super) fn pool(
    url: &str,
    max_connections: u32,
    acquire_timeout: Duration,
    statement_timeout: Duration,
    breaks: super::Breaks,
) -> Option<(PgPool, String)> {
    // sqlx does not look at the scheme; another database's URL must not be tried as PostgreSQL.
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return None;
    }
    let options = PgConnectOptions::from_str(url)
        .ok()?
        .application_name("responses-pipe")
        // The server gives up on a statement too (lock waits, slow plans), not only the client.
        .options([(
            "statement_timeout",
            statement_timeout.as_millis().to_string(),
        )]);
    let host = options.get_host().to_owned();
    let pool = PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(false)
        // Opened before the last broken connection: likely dead too; open a fresh one instead.
        .before_acquire(move |_conn, meta| {
            let keep = !breaks.predates(meta.age);
            Box::pin(async move { Ok(keep) })
        })
        .idle_timeout(Some(Duration::from_secs(600)))
        .connect_lazy_with(options);
    Some((pool, host))
}

/// Create the table and its indexes if missing, and add the `owner` column to a table created
/// before it existed. Concurrent creators (several hosts starting at
/// once) are serialised by a transaction-scoped advisory lock: `CREATE TABLE IF NOT EXISTS` alone
/// can still fail with a unique violation on the catalog when two sessions race.
pub(super) async fn ensure_table(
    conn: &mut PgConnection,
    table: &str,
    lock_key: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(lock_key)
        .execute(&mut *tx)
        .await?;
    let statements = [
        format!(
            "CREATE TABLE IF NOT EXISTS {table} (\
             id VARCHAR(64) PRIMARY KEY, \
             chat_id VARCHAR(64) NOT NULL, \
             message_id VARCHAR(64) NOT NULL, \
             item_type VARCHAR(64) NOT NULL, \
             owner VARCHAR(64) NOT NULL DEFAULT '', \
             payload BYTEA NOT NULL, \
             created_at_ms BIGINT NOT NULL, \
             last_used_ms BIGINT NOT NULL)"
        ),
        format!(
            "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS owner VARCHAR(64) NOT NULL DEFAULT ''"
        ),
        format!("CREATE INDEX IF NOT EXISTS {table}_chat ON {table} (chat_id)"),
        format!("CREATE INDEX IF NOT EXISTS {table}_msg ON {table} (message_id)"),
        format!("CREATE INDEX IF NOT EXISTS {table}_used ON {table} (last_used_ms)"),
    ];
    for sql in statements {
        sqlx::query(&sql).execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// Take the session-level advisory lock `key` on `conn`; false when another session holds it.
pub(super) async fn try_lock(conn: &mut PgConnection, key: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(&mut *conn)
        .await
}

pub(super) async fn unlock(conn: &mut PgConnection, key: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar::<_, bool>("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .fetch_one(&mut *conn)
        .await
}
