//! The `store` capability: artifact tables in SQLite (the embedded default, one file in the data
//! directory) or PostgreSQL (`DATABASE_URL`), pooled, behind one `ArtifactStore`.
//!
//! Policy, enforced here whatever the guest asks:
//! - the guest may open exactly one table, the name the host computed from `PIPE_ID` and the
//!   artifact key (`Config::artifact_table`); any other name is `access-denied`;
//! - every call is bounded: rows per `put-many` ([`MAX_PUT_ROWS`]), bytes per row
//!   ([`MAX_ROW_PAYLOAD_BYTES`]) and per batch ([`MAX_PUT_BYTES`]), ids per `get-many`/`delete`
//!   ([`MAX_IDS`]), bytes per `get-many` (the guest's `max-bytes`, at most [`MAX_GET_BYTES`]),
//!   rows per `delete-older-than` ([`MAX_DELETE_LIMIT`]); id and column lengths (≤ 64 bytes);
//! - `get-many` answers rows in the order their ids were asked, stopping before the first row that
//!   would take the total payload past `max-bytes` (so the answer is a prefix of the rows found;
//!   ask again for the rest); when not even the first row found fits, it answers `too-large`;
//! - `put-many` is one transaction (insert or replace): a failure leaves nothing half-written;
//! - a database that is down answers `unavailable` within the acquire timeout, a stalled one
//!   `timeout` within the statement timeout; both are logged with `error.type` and counted in
//!   `responses_pipe_store_errors_total`, and the pool replaces broken connections by itself.
//!
//! Each row carries `last_used_ms`, set on insert and refreshed by every `get-many` that returns
//! it; `delete-older-than` compares that, so retention counts from last use.
//!
//! Each row also carries `owner`, the digest of the principal the guest wrote it for (the guest
//! replays a row only for that principal). Tables created before the column existed get it on
//! open (`ALTER TABLE … ADD COLUMN`, empty for the old rows, which are then never replayed).
//!
//! Files: this one holds the policy of the shared [`ArtifactStore`] (the granted tables, the
//! maintenance lock, one call per operation); `bounds` the per-call limits and row validation;
//! `failure` the mapping of driver errors to the guest's errors; `capability` the WIT glue;
//! `ops`, `sqlite` and `postgres` the SQL of each backend.

mod bounds;
mod capability;
mod failure;
mod ops;
mod postgres;
mod sqlite;

use crate::bindings::store::{Row, StoreError};
use crate::metrics::Metrics;
use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) use bounds::ValidRow;
pub use bounds::{
    MAX_DELETE_LIMIT, MAX_GET_BYTES, MAX_IDS, MAX_PUT_BYTES, MAX_PUT_ROWS, MAX_ROW_PAYLOAD_BYTES,
    MAX_SCAN_ROWS, MAX_TEXT_BYTES,
};
use bounds::{check_ids, check_rows, check_text, row_of, within_budget};
pub use capability::{StoreView, TableHandle};
pub(crate) use failure::Breaks;
use failure::classify;
pub use failure::error_kind;
pub use sqlite::FILE_NAME as SQLITE_FILE_NAME;

/// Where the artifacts live and how long calls may take.
#[derive(Clone)]
pub struct StoreSettings {
    /// The table the guest writes to (and reads from).
    pub table: String,
    /// During a key rotation, the previous key's table: the guest may read and delete its rows,
    /// never write there.
    pub previous_table: Option<String>,
    /// PostgreSQL DSN; `None` = SQLite in `data_dir`.
    pub database_url: Option<SecretString>,
    pub data_dir: PathBuf,
    pub max_connections: u32,
    /// How long a call waits for a pooled connection (including connecting).
    pub acquire_timeout: Duration,
    /// How long one call's statements may take once it has a connection.
    pub statement_timeout: Duration,
}

impl StoreSettings {
    /// The settings `config` describes, with SQLite under `data_dir`.
    pub fn from_config(config: &crate::config::Config, data_dir: &std::path::Path) -> Self {
        StoreSettings {
            table: config.artifact_table().to_owned(),
            previous_table: config.artifact_table_previous().map(str::to_owned),
            database_url: config.database_url().cloned(),
            data_dir: data_dir.to_path_buf(),
            max_connections: config.db_max_connections(),
            acquire_timeout: config.db_acquire_timeout(),
            statement_timeout: config.db_statement_timeout(),
        }
    }
}

/// Why the store could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum StoreSetupError {
    /// The URL itself is never quoted: it may carry a password.
    #[error(
        "DATABASE_URL is not a valid PostgreSQL URL (postgres://user@host:port/database); its value is not shown because it may contain a password"
    )]
    DatabaseUrl,
    #[error("the artifact table name {0:?} is not valid")]
    TableName(String),
    #[error("the artifact database file {path} cannot be created: {source}")]
    DataFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The pools run background tasks on the tokio runtime.
    #[error("the artifact store must be set up inside a tokio runtime")]
    NoRuntime,
}

enum Backend {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// The artifact store shared by every instance.
pub struct ArtifactStore {
    backend: Backend,
    granted: String,
    /// The previous key's table during a rotation (read and delete only).
    previous: Option<String>,
    /// Set once the granted table exists (created on first use; retried after a failure).
    ready: tokio::sync::OnceCell<()>,
    /// The same for the previous key's table.
    ready_previous: tokio::sync::OnceCell<()>,
    statement_timeout: Duration,
    breaks: Breaks,
    metrics: Arc<Metrics>,
    /// One maintenance pass at a time in this process (all the lock SQLite needs).
    local_maintenance: Arc<tokio::sync::Mutex<()>>,
}

/// Only `[a-z0-9_]`, starting with a letter, at most 63 bytes: safe to interpolate as an
/// identifier in both backends.
fn is_safe_identifier(name: &str) -> bool {
    (1..=56).contains(&name.len())
        && name.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A 64-bit advisory-lock key for `purpose` on `table`.
fn lock_key(purpose: &str, table: &str) -> i64 {
    let digest = Sha256::new()
        .chain_update(b"responses-pipe:")
        .chain_update(purpose.as_bytes())
        .chain_update(b":")
        .chain_update(table.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Run `f` on a pooled connection within the statement timeout. A connection whose call timed
/// out or broke is detached and dropped (never handed to the next caller half-way through a
/// statement); the pool opens a replacement when needed.
async fn with_conn<DB, T, F>(
    pool: &sqlx::Pool<DB>,
    breaks: &Breaks,
    statement_timeout: Duration,
    f: F,
) -> Result<T, (StoreError, String)>
where
    DB: sqlx::Database,
    F: for<'c> FnOnce(&'c mut DB::Connection) -> BoxFuture<'c, Result<T, sqlx::Error>>,
{
    let mut conn = pool
        .acquire()
        .await
        .map_err(|e| (classify(&e).0, e.to_string()))?;
    match tokio::time::timeout(statement_timeout, f(&mut conn)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            let (kind, discard) = classify(&e);
            if discard {
                breaks.mark();
                drop(conn.detach());
            }
            Err((kind, e.to_string()))
        }
        Err(_) => {
            breaks.mark();
            drop(conn.detach());
            Err((
                StoreError::Timeout,
                format!(
                    "no answer within the statement timeout ({} ms)",
                    statement_timeout.as_millis()
                ),
            ))
        }
    }
}

/// Take a pooled connection and ping it, both within `timeout`.
async fn ping_pool<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
    breaks: &Breaks,
    timeout: Duration,
) -> bool {
    use sqlx::Connection as _;
    let deadline = tokio::time::Instant::now() + timeout;
    let Ok(Ok(mut conn)) = tokio::time::timeout_at(deadline, pool.acquire()).await else {
        return false;
    };
    match tokio::time::timeout_at(deadline, conn.ping()).await {
        Ok(Ok(())) => true,
        Ok(Err(_)) | Err(_) => {
            breaks.mark();
            drop(conn.detach());
            false
        }
    }
}

/// Dispatch one operation to the backend's instance of the `ops` functions.
macro_rules! on_backend {
    ($self:ident, |$conn:ident, $m:ident| $body:expr) => {
        match &$self.backend {
            Backend::Sqlite(pool) => {
                use sqlite as $m;
                with_conn(pool, &$self.breaks, $self.statement_timeout, move |$conn| {
                    Box::pin($body)
                })
                .await
            }
            Backend::Postgres(pool) => {
                use postgres as $m;
                with_conn(pool, &$self.breaks, $self.statement_timeout, move |$conn| {
                    Box::pin($body)
                })
                .await
            }
        }
    };
}

/// The maintenance lock: held while one maintenance pass runs.
pub enum MaintenanceLock {
    /// This process's lock (SQLite, or any backend in addition to the shared lock).
    Local(tokio::sync::OwnedMutexGuard<()>),
    /// A PostgreSQL session-level advisory lock held on a dedicated (detached) connection.
    Postgres {
        conn: sqlx::PgConnection,
        key: i64,
        _local: tokio::sync::OwnedMutexGuard<()>,
    },
}

impl MaintenanceLock {
    /// Release the lock. For PostgreSQL the advisory lock is unlocked and the connection closed;
    /// should that fail, closing the connection releases it anyway.
    pub async fn release(self, timeout: Duration) {
        if let MaintenanceLock::Postgres { mut conn, key, .. } = self {
            use sqlx::Connection as _;
            let done = tokio::time::timeout(timeout, async {
                let _ = postgres::unlock(&mut conn, key).await;
                let _ = conn.close().await;
            })
            .await;
            if done.is_err() {
                tracing::warn!(
                    error.type = "timeout",
                    "releasing the maintenance lock timed out; dropping its connection"
                );
            }
        }
    }
}

impl ArtifactStore {
    /// Set up the backend (no connection is made yet: a database that is down at start-up only
    /// makes store calls answer `unavailable` until it is back).
    pub fn new(settings: StoreSettings, metrics: Arc<Metrics>) -> Result<Self, StoreSetupError> {
        if !is_safe_identifier(&settings.table) {
            return Err(StoreSetupError::TableName(settings.table));
        }
        if let Some(previous) = settings.previous_table.as_ref()
            && !is_safe_identifier(previous)
        {
            return Err(StoreSetupError::TableName(previous.clone()));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreSetupError::NoRuntime);
        }
        let breaks = Breaks::default();
        let backend = match &settings.database_url {
            Some(url) => {
                let (pool, host) = postgres::pool(
                    url.expose_secret(),
                    settings.max_connections,
                    settings.acquire_timeout,
                    settings.statement_timeout,
                    breaks.clone(),
                )
                .ok_or(StoreSetupError::DatabaseUrl)?;
                tracing::info!(backend = "postgres", host = %host, table = %settings.table, "artifact store");
                Backend::Postgres(pool)
            }
            None => {
                let path = settings.data_dir.join(sqlite::FILE_NAME);
                sqlite::create_private_file(&path).map_err(|source| StoreSetupError::DataFile {
                    path: path.clone(),
                    source,
                })?;
                tracing::info!(backend = "sqlite", path = %path.display(), table = %settings.table, "artifact store");
                Backend::Sqlite(sqlite::pool(
                    &settings.data_dir,
                    settings.max_connections,
                    settings.acquire_timeout,
                    settings.statement_timeout,
                ))
            }
        };
        Ok(ArtifactStore {
            backend,
            granted: settings.table,
            previous: settings.previous_table,
            ready: tokio::sync::OnceCell::new(),
            ready_previous: tokio::sync::OnceCell::new(),
            statement_timeout: settings.statement_timeout,
            breaks,
            metrics,
            local_maintenance: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// `sqlite` or `postgres`.
    pub fn backend_kind(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The one table name the guest may open.
    pub fn table_name(&self) -> &str {
        &self.granted
    }

    /// Open connections and how many of them are idle (diagnostics and tests).
    pub fn pool_status(&self) -> (u32, usize) {
        match &self.backend {
            Backend::Sqlite(pool) => (pool.size(), pool.num_idle()),
            Backend::Postgres(pool) => (pool.size(), pool.num_idle()),
        }
    }

    /// Whether the database answers a ping within `timeout`, waiting for a connection included
    /// (readiness). A connection whose ping failed or timed out is dropped, like one whose call
    /// broke.
    pub async fn ping(&self, timeout: Duration) -> bool {
        match &self.backend {
            Backend::Sqlite(pool) => ping_pool(pool, &self.breaks, timeout).await,
            Backend::Postgres(pool) => ping_pool(pool, &self.breaks, timeout).await,
        }
    }

    /// Close every pooled connection (shutdown).
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(pool) => pool.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    /// Count, log and return a failed call's error.
    fn failed(&self, op: &'static str, (error, detail): (StoreError, String)) -> StoreError {
        let kind = error_kind(&error);
        self.metrics.incr("store_errors", kind);
        tracing::warn!(
            error.type = kind,
            op,
            backend = self.backend_kind(),
            detail = %crate::logsafe::escaped_to(&detail, 400),
            "artifact store call failed"
        );
        error
    }

    /// Whether `name` is granted for this kind of call: the current table for everything, the
    /// previous key's table (during a rotation) for reads and deletes only.
    fn check_name(&self, name: &str, write: bool) -> Result<(), StoreError> {
        let previous = !write && self.previous.as_deref() == Some(name);
        if name == self.granted || previous {
            Ok(())
        } else {
            self.metrics.incr("store_errors", "access_denied");
            tracing::warn!(
                error.type = "access_denied",
                requested = %crate::logsafe::escaped_to(name, 80),
                "the guest asked for an artifact table it is not granted"
            );
            Err(StoreError::AccessDenied)
        }
    }

    /// Create a granted table once per process (again after a failure).
    async fn ensure(&self, name: &str) -> Result<(), StoreError> {
        let ready = if name == self.granted {
            &self.ready
        } else {
            &self.ready_previous
        };
        ready
            .get_or_try_init(|| async {
                let table = name.to_owned();
                let key = lock_key("ddl", &table);
                let result: Result<(), (StoreError, String)> = match &self.backend {
                    Backend::Sqlite(pool) => {
                        with_conn(pool, &self.breaks, self.statement_timeout, move |c| {
                            Box::pin(async move { sqlite::ensure_table(c, &table).await })
                        })
                        .await
                    }
                    Backend::Postgres(pool) => {
                        with_conn(pool, &self.breaks, self.statement_timeout, move |c| {
                            Box::pin(async move { postgres::ensure_table(c, &table, key).await })
                        })
                        .await
                    }
                };
                result.map_err(|e| self.failed("open", e))
            })
            .await
            .map(|_| ())
    }

    /// `open`: grant only the computed name, and make sure its table exists.
    pub async fn open(&self, name: &str) -> Result<(), StoreError> {
        self.check_name(name, false)?;
        self.ensure(name).await
    }

    /// `put-many`: insert or replace, atomically.
    pub async fn put_many(&self, name: &str, rows: Vec<Row>) -> Result<(), StoreError> {
        self.check_name(name, true)?;
        let rows = check_rows(rows).map_err(|e| self.refused("put_many", e))?;
        if rows.is_empty() {
            return Ok(());
        }
        self.ensure(name).await?;
        let table = name.to_owned();
        let now = now_ms();
        on_backend!(self, |c, db| async move {
            db::put_rows(c, &table, &rows, now).await
        })
        .map_err(|e| self.failed("put_many", e))
    }

    /// `get-many`: the rows among `ids`, in the order asked, within `max_bytes` (see the module
    /// docs); their `last_used_ms` is refreshed.
    pub async fn get_many(
        &self,
        name: &str,
        ids: Vec<String>,
        max_bytes: u64,
    ) -> Result<Vec<Row>, StoreError> {
        self.check_name(name, false)?;
        let ids = check_ids(ids).map_err(|e| self.refused("get_many", e))?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.ensure(name).await?;
        let budget = max_bytes.min(MAX_GET_BYTES);
        let table = name.to_owned();
        let asked = ids.clone();
        let sizes: HashMap<String, i64> =
            on_backend!(
                self,
                |c, db| async move { db::sizes(c, &table, &asked).await }
            )
            .map_err(|e| self.failed("get_many", e))?
            .into_iter()
            .collect();
        let mut chosen = Vec::new();
        let mut total: u64 = 0;
        for id in &ids {
            let Some(&size) = sizes.get(id) else { continue };
            let size = u64::try_from(size).unwrap_or(0);
            if total.saturating_add(size) > budget {
                if chosen.is_empty() {
                    return Err(self.refused("get_many", StoreError::TooLarge));
                }
                break;
            }
            total += size;
            chosen.push(id.clone());
        }
        if chosen.is_empty() {
            return Ok(Vec::new());
        }
        let table = name.to_owned();
        let wanted = chosen.clone();
        let now = now_ms();
        let fetched = on_backend!(self, |c, db| async move {
            db::fetch_and_touch(c, &table, &wanted, now).await
        })
        .map_err(|e| self.failed("get_many", e))?;
        let mut by_id: HashMap<String, Row> = fetched
            .into_iter()
            .map(|raw| {
                let row = row_of(raw);
                (row.id.clone(), row)
            })
            .collect();
        // Rows may have been replaced between the two reads: enforce the budget on what came back.
        within_budget(
            chosen.into_iter().filter_map(|id| by_id.remove(&id)),
            budget,
        )
        .map_err(|e| self.refused("get_many", e))
    }

    /// `delete`: how many of `ids` were deleted.
    pub async fn delete(&self, name: &str, ids: Vec<String>) -> Result<u64, StoreError> {
        self.check_name(name, false)?;
        let ids = check_ids(ids).map_err(|e| self.refused("delete", e))?;
        if ids.is_empty() {
            return Ok(0);
        }
        self.ensure(name).await?;
        let table = name.to_owned();
        on_backend!(self, |c, db| async move {
            db::delete_ids(c, &table, &ids).await
        })
        .map_err(|e| self.failed("delete", e))
    }

    /// `scan`: up to `limit` (at most [`MAX_SCAN_ROWS`]) rows after `after_id` in id order,
    /// within `max_bytes` (at most [`MAX_GET_BYTES`]); `too-large` when the first row alone is
    /// over it. Rows are not marked as used.
    pub async fn scan(
        &self,
        name: &str,
        after_id: String,
        limit: u32,
        max_bytes: u64,
    ) -> Result<Vec<Row>, StoreError> {
        self.check_name(name, false)?;
        check_text("after-id", &after_id, true).map_err(|e| self.refused("scan", e))?;
        let limit = i64::from(limit.min(MAX_SCAN_ROWS));
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.ensure(name).await?;
        let budget = max_bytes.min(MAX_GET_BYTES);
        let table = name.to_owned();
        let fetched = on_backend!(self, |c, db| async move {
            db::scan_rows(c, &table, &after_id, limit).await
        })
        .map_err(|e| self.failed("scan", e))?;
        within_budget(fetched.into_iter().map(row_of), budget).map_err(|e| self.refused("scan", e))
    }

    /// `delete-older-than`: up to `limit` (at most [`MAX_DELETE_LIMIT`]) rows not read since
    /// `cutoff_ms`, least recently used first.
    pub async fn delete_older_than(
        &self,
        name: &str,
        cutoff_ms: u64,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.check_name(name, false)?;
        let limit = i64::from(limit.min(MAX_DELETE_LIMIT));
        if limit == 0 {
            return Ok(0);
        }
        self.ensure(name).await?;
        let cutoff = i64::try_from(cutoff_ms).unwrap_or(i64::MAX);
        let table = name.to_owned();
        on_backend!(self, |c, db| async move {
            db::delete_older(c, &table, cutoff, limit).await
        })
        .map_err(|e| self.failed("delete_older_than", e))
    }

    /// Count and log a call refused by a host cap or a validation rule.
    fn refused(&self, op: &'static str, error: StoreError) -> StoreError {
        let kind = error_kind(&error);
        self.metrics.incr("store_errors", kind);
        tracing::debug!(error.type = kind, op, "artifact store call refused");
        error
    }

    /// Try to become the one maintenance worker: this process's lock, plus (PostgreSQL) a
    /// session advisory lock keyed by the table name on a dedicated connection, so that only one
    /// of several hosts sharing the database runs a pass. `None` when another holds it.
    pub async fn try_maintenance_lock(&self) -> Result<Option<MaintenanceLock>, StoreError> {
        let Ok(local) = self.local_maintenance.clone().try_lock_owned() else {
            return Ok(None);
        };
        let pool = match &self.backend {
            Backend::Sqlite(_) => return Ok(Some(MaintenanceLock::Local(local))),
            Backend::Postgres(pool) => pool,
        };
        let key = lock_key("maintain", &self.granted);
        let attempt = async {
            let mut conn = pool.acquire().await?.detach();
            let taken = postgres::try_lock(&mut conn, key).await?;
            Ok::<_, sqlx::Error>((conn, taken))
        };
        match tokio::time::timeout(self.statement_timeout, attempt).await {
            Ok(Ok((conn, true))) => Ok(Some(MaintenanceLock::Postgres {
                conn,
                key,
                _local: local,
            })),
            Ok(Ok((conn, false))) => {
                use sqlx::Connection as _;
                let _ = tokio::time::timeout(self.statement_timeout, conn.close()).await;
                Ok(None)
            }
            Ok(Err(e)) => Err(self.failed("maintenance_lock", (classify(&e).0, e.to_string()))),
            Err(_) => Err(self.failed(
                "maintenance_lock",
                (
                    StoreError::Timeout,
                    "taking the advisory lock timed out".into(),
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked() {
        assert!(is_safe_identifier(
            "response_items_openrouter_responses_1a2b3c4d"
        ));
        assert!(!is_safe_identifier("Response_items"));
        assert!(!is_safe_identifier("x; drop table y"));
        assert!(!is_safe_identifier("1abc"));
        assert!(!is_safe_identifier(""));
    }

    #[tokio::test]
    async fn a_bad_database_url_is_refused_without_being_quoted() {
        let dir = std::env::temp_dir();
        let settings = StoreSettings {
            table: "response_items_x_00000000".into(),
            previous_table: None,
            database_url: Some(SecretString::from("mysql://root:pw-secret-42@db/x")),
            data_dir: dir,
            max_connections: 1,
            acquire_timeout: Duration::from_secs(1),
            statement_timeout: Duration::from_secs(1),
        };
        let err = ArtifactStore::new(settings.clone(), Arc::new(Metrics::default()))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("DATABASE_URL"), "{err}");
        assert!(!err.contains("pw-secret-42"), "{err}");
        let bad_table = StoreSettings {
            table: "x; drop table y".into(),
            previous_table: None,
            database_url: None,
            ..settings
        };
        assert!(matches!(
            ArtifactStore::new(bad_table, Arc::new(Metrics::default())),
            Err(StoreSetupError::TableName(_))
        ));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_sqlite_file_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let settings = StoreSettings {
            table: "response_items_x_00000000".into(),
            previous_table: None,
            database_url: None,
            data_dir: dir.path().to_path_buf(),
            max_connections: 1,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
        };
        let store = ArtifactStore::new(settings, Arc::new(Metrics::default()));
        assert!(store.is_ok());
        let mode = std::fs::metadata(dir.path().join(sqlite::FILE_NAME))
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_default();
        assert_eq!(mode, 0o600);
        if let Ok(store) = store {
            assert!(store.open("response_items_x_00000000").await.is_ok());
            store.close().await;
        }
    }

    #[tokio::test]
    async fn the_previous_keys_table_is_readable_and_deletable_but_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let (current, previous) = ("response_items_x_00000002", "response_items_x_00000001");
        let row = |id: &str| Row {
            id: id.into(),
            chat_id: "c".into(),
            message_id: "m".into(),
            item_type: "reasoning".into(),
            owner: "owner".into(),
            payload: vec![1, 2, 3],
            created_at_ms: 1,
        };
        // Written before the rotation, when it was the current table.
        let before = StoreSettings {
            table: previous.into(),
            previous_table: None,
            database_url: None,
            data_dir: dir.path().to_path_buf(),
            max_connections: 1,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
        };
        let store = ArtifactStore::new(before.clone(), Arc::new(Metrics::default())).unwrap();
        store.put_many(previous, vec![row("old")]).await.unwrap();
        store.close().await;
        let rotating = StoreSettings {
            table: current.into(),
            previous_table: Some(previous.into()),
            ..before
        };
        let store = ArtifactStore::new(rotating, Arc::new(Metrics::default())).unwrap();
        store.open(previous).await.unwrap();
        let got = store
            .get_many(previous, vec!["old".into()], 1 << 20)
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        assert!(matches!(
            store.put_many(previous, vec![row("new")]).await,
            Err(StoreError::AccessDenied)
        ));
        store.put_many(current, vec![row("new")]).await.unwrap();
        assert_eq!(store.delete(previous, vec!["old".into()]).await.unwrap(), 1);
        assert!(matches!(
            store.open("response_items_x_00000003").await,
            Err(StoreError::AccessDenied)
        ));
        store.close().await;
    }

    #[test]
    fn outside_a_runtime_set_up_is_an_error_not_a_panic() {
        let settings = StoreSettings {
            table: "response_items_x_00000000".into(),
            previous_table: None,
            database_url: None,
            data_dir: std::env::temp_dir(),
            max_connections: 1,
            acquire_timeout: Duration::from_secs(1),
            statement_timeout: Duration::from_secs(1),
        };
        assert!(matches!(
            ArtifactStore::new(settings, Arc::new(Metrics::default())),
            Err(StoreSetupError::NoRuntime)
        ));
    }

    #[test]
    fn lock_keys_differ_by_purpose_and_table() {
        assert_ne!(lock_key("ddl", "t"), lock_key("maintain", "t"));
        assert_ne!(lock_key("ddl", "t"), lock_key("ddl", "u"));
        assert_eq!(lock_key("ddl", "t"), lock_key("ddl", "t"));
    }
}
