//! The embedded backend: one SQLite file, `<data dir>/artifacts.sqlite3`, in WAL mode with a busy
//! timeout, behind a small pool (WAL allows concurrent readers and one writer).

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

crate::store::ops::table_ops!(sqlx::Sqlite, SqliteConnection);

/// The database file inside the data directory.
pub const FILE_NAME: &str = "artifacts.sqlite3";

/// At most this many SQLite connections, whatever `DB_MAX_CONNECTIONS` says.
const MAX_CONNECTIONS: u32 = 4;

/// Create the database file if it is missing, readable by its owner only (artifacts are
/// encrypted only when a key is set). SQLite gives its `-wal` and `-shm` files the same mode.
pub(super) fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// A lazily connecting pool over `<data_dir>/artifacts.sqlite3`.
pub(super) fn pool(
    data_dir: &Path,
    max_connections: u32,
    acquire_timeout: Duration,
    busy_timeout: Duration,
) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(data_dir.join(FILE_NAME))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(busy_timeout);
    SqlitePoolOptions::new()
        .max_connections(max_connections.clamp(1, MAX_CONNECTIONS))
        .acquire_timeout(acquire_timeout)
        .idle_timeout(Some(Duration::from_secs(600)))
        .connect_lazy_with(options)
}

/// Create the table and its indexes if missing, and add the `owner` column to a table created
/// before it existed. Each statement is idempotent and atomic, and the busy timeout waits out
/// another creator.
pub(super) async fn ensure_table(
    conn: &mut SqliteConnection,
    table: &str,
) -> Result<(), sqlx::Error> {
    let statements = [
        format!(
            "CREATE TABLE IF NOT EXISTS {table} (\
             id TEXT PRIMARY KEY NOT NULL, \
             chat_id TEXT NOT NULL, \
             message_id TEXT NOT NULL, \
             item_type TEXT NOT NULL, \
             owner TEXT NOT NULL DEFAULT '', \
             payload BLOB NOT NULL, \
             created_at_ms INTEGER NOT NULL, \
             last_used_ms INTEGER NOT NULL)"
        ),
        format!("CREATE INDEX IF NOT EXISTS {table}_chat ON {table} (chat_id)"),
        format!("CREATE INDEX IF NOT EXISTS {table}_msg ON {table} (message_id)"),
        format!("CREATE INDEX IF NOT EXISTS {table}_used ON {table} (last_used_ms)"),
    ];
    for sql in statements {
        sqlx::query(&sql).execute(&mut *conn).await?;
    }
    if !has_owner_column(conn, table).await? {
        // SQLite has no `ADD COLUMN IF NOT EXISTS`: another process may add it between the
        // check and the ALTER, so a failure counts only if the column is still missing.
        let added = sqlx::query(&format!(
            "ALTER TABLE {table} ADD COLUMN owner TEXT NOT NULL DEFAULT ''"
        ))
        .execute(&mut *conn)
        .await;
        if let Err(e) = added
            && !has_owner_column(conn, table).await?
        {
            return Err(e);
        }
    }
    Ok(())
}

async fn has_owner_column(conn: &mut SqliteConnection, table: &str) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT 1 FROM pragma_table_info('{table}') WHERE name = 'owner'"
    ))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(found.is_some())
}
