//! The host's artifact store against real SQLite and real PostgreSQL (127.0.0.1:5432, database
//! `test`, user `postgres`): round trips, `last_used_ms`, caps, the granted table name,
//! concurrent table creation, the maintenance lock, and database faults through a `FaultProxy`
//! (refused, stalled, cut mid-query) with recovery after the proxy heals. PostgreSQL tests fail
//! loudly when the server is not there: CI starts it.

use crate::harness::{Harness, Options, logs_text};
use fake_openrouter::fault_proxy::{FaultMode, FaultProxy};
use responses_pipe_host::bindings::store::{Row, StoreError};
use responses_pipe_host::maintenance::{MaintenanceTask, PassOutcome, run_once};
use responses_pipe_host::metrics::Metrics;
use responses_pipe_host::store::{ArtifactStore, MAX_IDS, MAX_PUT_ROWS, StoreSettings};
use secrecy::SecretString;
use sqlx::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const PG_ADDR: &str = "127.0.0.1:5432";
const DSN_PASSWORD: &str = "dsn-Pw-7f3e9a-secret";

fn pg_url(addr: &str) -> String {
    format!("postgres://postgres@{addr}/test")
}

/// A table name no other test (or test run) uses.
fn unique_table(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("response_items_t{tag}_{}_{n}_{nanos:x}", std::process::id())
}

fn settings(table: &str, url: Option<String>, dir: &std::path::Path) -> StoreSettings {
    StoreSettings {
        table: table.to_string(),
        previous_table: None,
        database_url: url.map(SecretString::from),
        data_dir: dir.to_path_buf(),
        max_connections: 4,
        // Generous: healthy calls must not time out on a loaded CI machine.
        acquire_timeout: Duration::from_secs(10),
        statement_timeout: Duration::from_secs(10),
    }
}

/// Direct access to the database under the store, to look at and clean up what it wrote.
enum Inspect {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Inspect {
    async fn postgres() -> Inspect {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&pg_url(PG_ADDR))
            .await
            .expect("PostgreSQL must be running at 127.0.0.1:5432 (database test, user postgres)");
        Inspect::Postgres(pool)
    }

    async fn sqlite(dir: &std::path::Path) -> Inspect {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.join(responses_pipe_host::store::SQLITE_FILE_NAME))
            .create_if_missing(true);
        Inspect::Sqlite(sqlx::SqlitePool::connect_with(options).await.unwrap())
    }

    async fn exec(&self, sql: &str) {
        match self {
            Inspect::Sqlite(p) => {
                sqlx::query(sql).execute(p).await.unwrap();
            }
            Inspect::Postgres(p) => {
                sqlx::query(sql).execute(p).await.unwrap();
            }
        }
    }

    async fn scalar(&self, sql: &str) -> Option<i64> {
        match self {
            Inspect::Sqlite(p) => sqlx::query_scalar::<_, i64>(sql)
                .fetch_optional(p)
                .await
                .unwrap(),
            Inspect::Postgres(p) => sqlx::query_scalar::<_, i64>(sql)
                .fetch_optional(p)
                .await
                .unwrap(),
        }
    }

    async fn last_used(&self, table: &str, id: &str) -> i64 {
        self.scalar(&format!(
            "SELECT last_used_ms FROM {table} WHERE id = '{id}'"
        ))
        .await
        .unwrap()
    }

    async fn count(&self, table: &str) -> i64 {
        self.scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .await
            .unwrap()
    }

    async fn drop_table(&self, table: &str) {
        self.exec(&format!("DROP TABLE IF EXISTS {table}")).await;
    }
}

fn row(id: &str, payload: &[u8]) -> Row {
    Row {
        id: id.to_string(),
        chat_id: "chat-1".into(),
        message_id: "msg-1".into(),
        item_type: "reasoning".into(),
        owner: "owner-1".into(),
        payload: payload.to_vec(),
        created_at_ms: 1_700_000_000_000,
    }
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn ids_of(rows: &[Row]) -> Vec<&str> {
    rows.iter().map(|r| r.id.as_str()).collect()
}

/// Everything a backend must do, the same for SQLite and PostgreSQL.
async fn round_trip(store: &ArtifactStore, db: &Inspect) {
    let t = store.table_name().to_string();
    store.open(&t).await.unwrap();
    assert!(matches!(
        store.open("response_items_other_00000000").await,
        Err(StoreError::AccessDenied)
    ));
    assert!(matches!(
        store.get_many("sqlite_master", ids(&["a"]), 1 << 20).await,
        Err(StoreError::AccessDenied)
    ));

    store
        .put_many(
            &t,
            vec![row("a", b"alpha"), row("b", b"bravo"), row("c", b"charlie")],
        )
        .await
        .unwrap();
    let got = store
        .get_many(&t, ids(&["b", "a", "missing", "c"]), 1 << 20)
        .await
        .unwrap();
    assert_eq!(
        ids_of(&got),
        ["b", "a", "c"],
        "asked order, missing ids absent"
    );
    assert_eq!(got[0].payload, b"bravo");
    assert_eq!(got[0].chat_id, "chat-1");
    assert_eq!(got[0].message_id, "msg-1");
    assert_eq!(got[0].item_type, "reasoning");
    assert_eq!(got[0].owner, "owner-1");
    assert_eq!(got[0].created_at_ms, 1_700_000_000_000);

    // Insert-or-replace.
    store.put_many(&t, vec![row("b", b"BRAVO2")]).await.unwrap();
    let got = store.get_many(&t, ids(&["b"]), 1 << 20).await.unwrap();
    assert_eq!(got[0].payload, b"BRAVO2");

    assert_eq!(store.delete(&t, ids(&["a", "missing"])).await.unwrap(), 1);
    assert!(
        store
            .get_many(&t, ids(&["a"]), 1 << 20)
            .await
            .unwrap()
            .is_empty()
    );

    // Reads refresh last_used_ms; delete-older-than compares it.
    db.exec(&format!("UPDATE {t} SET last_used_ms = 1000"))
        .await;
    store.get_many(&t, ids(&["b"]), 1 << 20).await.unwrap();
    assert!(
        db.last_used(&t, "b").await > 1000,
        "a read refreshes last_used_ms"
    );
    assert_eq!(db.last_used(&t, "c").await, 1000, "an unread row keeps it");
    assert_eq!(store.delete_older_than(&t, 2000, 100).await.unwrap(), 1);
    assert_eq!(
        ids_of(&store.get_many(&t, ids(&["b", "c"]), 1 << 20).await.unwrap()),
        ["b"]
    );

    // The limit of delete-older-than is honoured.
    let many: Vec<Row> = (0..5).map(|i| row(&format!("old{i}"), b"x")).collect();
    store.put_many(&t, many).await.unwrap();
    db.exec(&format!(
        "UPDATE {t} SET last_used_ms = 5 WHERE id LIKE 'old%'"
    ))
    .await;
    assert_eq!(store.delete_older_than(&t, 10, 2).await.unwrap(), 2);
    assert_eq!(store.delete_older_than(&t, 10, 0).await.unwrap(), 0);
    assert_eq!(store.delete_older_than(&t, 10, 100).await.unwrap(), 3);
    assert_eq!(db.count(&t).await, 1);

    // max-bytes: a prefix of the rows found, or too-large when the first does not fit.
    store
        .put_many(
            &t,
            vec![
                row("p1", &[1; 100]),
                row("p2", &[2; 100]),
                row("p3", &[3; 100]),
            ],
        )
        .await
        .unwrap();
    let got = store
        .get_many(&t, ids(&["p1", "p2", "p3"]), 250)
        .await
        .unwrap();
    assert_eq!(ids_of(&got), ["p1", "p2"]);
    assert!(matches!(
        store.get_many(&t, ids(&["p1", "p2"]), 50).await,
        Err(StoreError::TooLarge)
    ));

    // Caps and validation are typed errors, and nothing of a refused batch is written.
    let too_many: Vec<Row> = (0..=MAX_PUT_ROWS)
        .map(|i| row(&format!("n{i}"), b"x"))
        .collect();
    assert!(matches!(
        store.put_many(&t, too_many).await,
        Err(StoreError::TooLarge)
    ));
    assert!(matches!(
        store
            .put_many(&t, vec![row("big", &vec![0; (4 << 20) + 1])])
            .await,
        Err(StoreError::TooLarge)
    ));
    assert!(matches!(
        store
            .put_many(&t, vec![row("ok1", b"x"), row(&"i".repeat(65), b"x")])
            .await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(
        store
            .get_many(&t, ids(&["ok1"]), 1 << 20)
            .await
            .unwrap()
            .is_empty()
    );
    let too_many_ids: Vec<String> = (0..=MAX_IDS).map(|i| i.to_string()).collect();
    assert!(matches!(
        store.get_many(&t, too_many_ids.clone(), 1 << 20).await,
        Err(StoreError::TooLarge)
    ));
    assert!(matches!(
        store.delete(&t, too_many_ids).await,
        Err(StoreError::TooLarge)
    ));
    assert!(matches!(
        store.get_many(&t, ids(&[""]), 1 << 20).await,
        Err(StoreError::InvalidArgument(_))
    ));

    // A full batch of maximal rows round-trips (one transaction over several statements).
    let full: Vec<Row> = (0..MAX_PUT_ROWS)
        .map(|i| row(&format!("f{i}"), &[9; 512]))
        .collect();
    store.put_many(&t, full).await.unwrap();
    let asked: Vec<String> = (0..MAX_PUT_ROWS).map(|i| format!("f{i}")).collect();
    assert_eq!(
        store.get_many(&t, asked, 1 << 20).await.unwrap().len(),
        MAX_PUT_ROWS
    );

    // `scan` pages through the rows in id order, within its row and byte budgets.
    store
        .put_many(
            &t,
            vec![
                row("s2", b"22"),
                row("s0", b"00"),
                row("s1", b"11"),
                row("s3", &[3; 300]),
            ],
        )
        .await
        .unwrap();
    let page = store.scan(&t, "s".into(), 2, 1 << 20).await.unwrap();
    assert_eq!(ids_of(&page), ["s0", "s1"]);
    let page = store.scan(&t, "s1".into(), 10, 1 << 20).await.unwrap();
    assert_eq!(ids_of(&page), ["s2", "s3"]);
    assert_eq!(page[1].payload, vec![3; 300]);
    // The byte budget ends a page early; a first row over it alone is `too-large`.
    let page = store.scan(&t, "s1".into(), 10, 100).await.unwrap();
    assert_eq!(ids_of(&page), ["s2"]);
    assert!(matches!(
        store.scan(&t, "s2".into(), 10, 100).await,
        Err(StoreError::TooLarge)
    ));
    assert!(
        store
            .scan(&t, "s3".into(), 10, 1 << 20)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store
            .scan("response_items_other_00000000", String::new(), 1, 1)
            .await,
        Err(StoreError::AccessDenied)
    ));
}

#[tokio::test]
async fn sqlite_round_trip_caps_and_last_used() {
    let dir = tempfile::tempdir().unwrap();
    let table = unique_table("s");
    let store = ArtifactStore::new(
        settings(&table, None, dir.path()),
        Arc::new(Metrics::default()),
    )
    .unwrap();
    assert_eq!(store.backend_kind(), "sqlite");
    let db = Inspect::sqlite(dir.path()).await;
    round_trip(&store, &db).await;
    let mode: String = match &db {
        Inspect::Sqlite(p) => sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(p)
            .await
            .unwrap(),
        Inspect::Postgres(_) => unreachable!(),
    };
    assert_eq!(mode, "wal");
    store.close().await;
}

#[tokio::test]
async fn postgres_round_trip_caps_and_last_used() {
    let db = Inspect::postgres().await;
    let table = unique_table("p");
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::new(
        settings(&table, Some(pg_url(PG_ADDR)), dir.path()),
        Arc::new(Metrics::default()),
    )
    .unwrap();
    assert_eq!(store.backend_kind(), "postgres");
    round_trip(&store, &db).await;
    store.close().await;
    db.drop_table(&table).await;
}

/// A table as hosts created it before rows carried an owner, with one row in it.
async fn legacy_table(db: &Inspect, table: &str, blob: &str, int: &str) {
    db.exec(&format!(
        "CREATE TABLE {table} (id VARCHAR(64) PRIMARY KEY, chat_id VARCHAR(64) NOT NULL, \
         message_id VARCHAR(64) NOT NULL, item_type VARCHAR(64) NOT NULL, payload {blob} NOT NULL, \
         created_at_ms {int} NOT NULL, last_used_ms {int} NOT NULL)"
    ))
    .await;
    db.exec(&format!(
        "INSERT INTO {table} (id, chat_id, message_id, item_type, payload, created_at_ms, \
         last_used_ms) VALUES ('old', 'chat-1', 'msg-1', 'reasoning', {}, 1, 1)",
        if blob == "BYTEA" {
            "'\\x01'::bytea"
        } else {
            "x'01'"
        }
    ))
    .await;
}

/// Opening a table made before the `owner` column adds it: old rows read back with an empty
/// owner (the component never replays those), new rows keep theirs, and opening again (another
/// host, a restart) changes nothing.
async fn legacy_table_gains_the_owner_column(db: &Inspect, settings: &StoreSettings) {
    let t = settings.table.clone();
    for _ in 0..2 {
        let store = ArtifactStore::new(settings.clone(), Arc::new(Metrics::default())).unwrap();
        store.open(&t).await.unwrap();
        store.put_many(&t, vec![row("new", b"n")]).await.unwrap();
        let got = store
            .get_many(&t, ids(&["old", "new"]), 1 << 20)
            .await
            .unwrap();
        assert_eq!(ids_of(&got), ["old", "new"]);
        assert_eq!(got[0].owner, "");
        assert_eq!(got[0].payload, [1]);
        assert_eq!(got[1].owner, "owner-1");
        store.close().await;
    }
    assert_eq!(db.count(&t).await, 2);
}

#[tokio::test]
async fn sqlite_a_table_without_owners_gains_the_column_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let table = unique_table("so");
    let db = Inspect::sqlite(dir.path()).await;
    legacy_table(&db, &table, "BLOB", "INTEGER").await;
    legacy_table_gains_the_owner_column(&db, &settings(&table, None, dir.path())).await;
}

#[tokio::test]
async fn postgres_a_table_without_owners_gains_the_column_on_open() {
    let db = Inspect::postgres().await;
    let table = unique_table("po");
    let dir = tempfile::tempdir().unwrap();
    legacy_table(&db, &table, "BYTEA", "BIGINT").await;
    legacy_table_gains_the_owner_column(&db, &settings(&table, Some(pg_url(PG_ADDR)), dir.path()))
        .await;
    db.drop_table(&table).await;
}

/// `hosts` stores (separate pools) built from `settings`, four tasks each opening the same
/// table at once; every open must succeed.
async fn open_concurrently(
    hosts: usize,
    settings: impl Fn() -> StoreSettings,
) -> Vec<Arc<ArtifactStore>> {
    let stores: Vec<Arc<ArtifactStore>> = (0..hosts)
        .map(|_| Arc::new(ArtifactStore::new(settings(), Arc::new(Metrics::default())).unwrap()))
        .collect();
    let table = stores[0].table_name().to_string();
    let mut tasks = Vec::new();
    for store in &stores {
        for _ in 0..4 {
            let store = store.clone();
            let t = table.clone();
            tasks.push(tokio::spawn(async move { store.open(&t).await }));
        }
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    stores
}

#[tokio::test]
async fn postgres_concurrent_open_of_a_new_table_succeeds_everywhere() {
    let db = Inspect::postgres().await;
    let table = unique_table("c");
    let dir = tempfile::tempdir().unwrap();
    // Eight "hosts" (separate pools), four tasks each, all creating the same new table at once.
    let stores = open_concurrently(8, || settings(&table, Some(pg_url(PG_ADDR)), dir.path())).await;
    stores[0]
        .put_many(&table, vec![row("x", b"1")])
        .await
        .unwrap();
    assert_eq!(db.count(&table).await, 1);
    for store in &stores {
        store.close().await;
    }
    db.drop_table(&table).await;
}

#[tokio::test]
async fn sqlite_concurrent_open_from_several_pools_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let table = unique_table("sc");
    let stores = open_concurrently(4, || settings(&table, None, dir.path())).await;
    for store in &stores {
        store.close().await;
    }
}

#[tokio::test]
async fn postgres_maintenance_lock_admits_one_worker_at_a_time() {
    let table = unique_table("m");
    let dir = tempfile::tempdir().unwrap();
    let _db = Inspect::postgres().await;
    let a = ArtifactStore::new(
        settings(&table, Some(pg_url(PG_ADDR)), dir.path()),
        Arc::new(Metrics::default()),
    )
    .unwrap();
    let b = ArtifactStore::new(
        settings(&table, Some(pg_url(PG_ADDR)), dir.path()),
        Arc::new(Metrics::default()),
    )
    .unwrap();
    let held = a
        .try_maintenance_lock()
        .await
        .unwrap()
        .expect("the first worker gets the lock");
    assert!(
        b.try_maintenance_lock().await.unwrap().is_none(),
        "another host must wait"
    );
    assert!(
        a.try_maintenance_lock().await.unwrap().is_none(),
        "and so must this host"
    );
    held.release(Duration::from_secs(5)).await;
    let again = b
        .try_maintenance_lock()
        .await
        .unwrap()
        .expect("free again after release");
    again.release(Duration::from_secs(5)).await;
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn sqlite_maintenance_lock_is_one_per_process() {
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::new(
        settings(&unique_table("sm"), None, dir.path()),
        Arc::new(Metrics::default()),
    )
    .unwrap();
    let held = store.try_maintenance_lock().await.unwrap().unwrap();
    assert!(store.try_maintenance_lock().await.unwrap().is_none());
    held.release(Duration::from_secs(1)).await;
    assert!(store.try_maintenance_lock().await.unwrap().is_some());
}

/// A PostgreSQL-backed store reached through a fault proxy.
struct Faulty {
    proxy: FaultProxy,
    store: ArtifactStore,
    metrics: Arc<Metrics>,
    db: Inspect,
    table: String,
    _dir: tempfile::TempDir,
}

impl Faulty {
    async fn start(tag: &str) -> Faulty {
        let db = Inspect::postgres().await;
        let proxy = FaultProxy::start(PG_ADDR.parse().unwrap()).await.unwrap();
        let table = unique_table(tag);
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::default());
        // Short enough for the stall test to wait out, long enough for healthy calls under load.
        let store = ArtifactStore::new(
            StoreSettings {
                acquire_timeout: Duration::from_secs(3),
                statement_timeout: Duration::from_secs(3),
                ..settings(&table, Some(pg_url(&proxy.addr().to_string())), dir.path())
            },
            metrics.clone(),
        )
        .unwrap();
        Faulty {
            proxy,
            store,
            metrics,
            db,
            table,
            _dir: dir,
        }
    }

    /// Wait (bounded, not timed) until every pooled connection is back in the pool, so the next
    /// call reuses one instead of dialling.
    async fn settle(&self) {
        for _ in 0..500 {
            let (size, idle) = self.store.pool_status();
            if size > 0 && idle == size as usize {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the pool never settled: {:?}", self.store.pool_status());
    }

    /// A call must come back on its own; this only guards against a hang.
    async fn bounded<T>(&self, fut: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(60), fut)
            .await
            .expect("a store call hung instead of answering")
    }

    async fn cleanup(self) {
        self.proxy.set_mode(FaultMode::Pass);
        self.store.close().await;
        self.db.drop_table(&self.table).await;
    }
}

#[tokio::test]
async fn postgres_unreachable_answers_unavailable_and_recovers_without_restart() {
    let f = Faulty::start("u").await;
    let t = f.table.clone();
    f.proxy.set_mode(FaultMode::Refuse);
    let err = f.bounded(f.store.open(&t)).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = f
        .bounded(f.store.put_many(&t, vec![row("a", b"1")]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(f.metrics.get("store_errors", "unavailable") >= 2);
    // The message never carries the DSN.
    if let StoreError::Unavailable(msg) = &err {
        assert!(!msg.contains("postgres://"), "{msg}");
    }

    f.proxy.set_mode(FaultMode::Pass);
    f.bounded(f.store.open(&t)).await.unwrap();
    f.bounded(f.store.put_many(&t, vec![row("a", b"1")]))
        .await
        .unwrap();
    assert_eq!(f.db.count(&t).await, 1);

    // Down again with connections already pooled: still typed, still recovers.
    f.settle().await;
    f.proxy.set_mode(FaultMode::Refuse);
    let err = f
        .bounded(f.store.get_many(&t, ids(&["a"]), 1 << 20))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    f.proxy.set_mode(FaultMode::Pass);
    let got = f
        .bounded(f.store.get_many(&t, ids(&["a"]), 1 << 20))
        .await
        .unwrap();
    assert_eq!(ids_of(&got), ["a"]);
    f.cleanup().await;
}

#[tokio::test]
async fn postgres_stall_times_out_writes_nothing_and_recovers() {
    let f = Faulty::start("st").await;
    let t = f.table.clone();
    f.bounded(f.store.put_many(&t, vec![row("warm", b"1")]))
        .await
        .unwrap();
    f.settle().await;

    f.proxy.set_mode(FaultMode::Stall);
    let err = f
        .bounded(f.store.put_many(&t, vec![row("s1", b"1"), row("s2", b"2")]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Timeout), "{err:?}");
    assert!(f.metrics.get("store_errors", "timeout") >= 1);

    // Heal: the held bytes reach the server on a connection the store abandoned, so the
    // transaction can never commit.
    f.proxy.set_mode(FaultMode::Pass);
    let got = f
        .bounded(f.store.get_many(&t, ids(&["warm", "s1", "s2"]), 1 << 20))
        .await
        .unwrap();
    assert_eq!(
        ids_of(&got),
        ["warm"],
        "a stalled put-many leaves nothing behind"
    );
    f.bounded(f.store.put_many(&t, vec![row("s3", b"3")]))
        .await
        .unwrap();
    assert_eq!(f.db.count(&t).await, 2);
    f.cleanup().await;
}

#[tokio::test]
async fn postgres_cut_mid_put_leaves_no_rows_and_recovers() {
    let f = Faulty::start("cut").await;
    let t = f.table.clone();
    f.bounded(f.store.put_many(&t, vec![row("warm", b"1")]))
        .await
        .unwrap();
    f.settle().await;

    // 16 rows of 64 KiB: one transaction of about 1 MiB, cut after its first 128 KiB.
    f.proxy.set_mode(FaultMode::CutAfter(128 * 1024));
    let batch: Vec<Row> = (0..16)
        .map(|i| row(&format!("c{i}"), &[i as u8; 64 * 1024]))
        .collect();
    let err = f.bounded(f.store.put_many(&t, batch)).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable(_)),
        "a cut connection is `unavailable`: {err:?}"
    );

    f.proxy.set_mode(FaultMode::Pass);
    assert_eq!(
        f.db.count(&t).await,
        1,
        "nothing of the cut batch was written"
    );
    let asked: Vec<String> = (0..16).map(|i| format!("c{i}")).collect();
    assert!(
        f.bounded(f.store.get_many(&t, asked, 8 << 20))
            .await
            .unwrap()
            .is_empty()
    );

    // A read cut mid-answer is typed too.
    f.settle().await;
    f.proxy.set_mode(FaultMode::CutAfter(8));
    let err = f
        .bounded(f.store.get_many(&t, ids(&["warm"]), 1 << 20))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");

    // Healed: the same store works again.
    f.proxy.set_mode(FaultMode::Pass);
    let batch: Vec<Row> = (0..16)
        .map(|i| row(&format!("c{i}"), &[i as u8; 64 * 1024]))
        .collect();
    f.bounded(f.store.put_many(&t, batch)).await.unwrap();
    assert_eq!(f.db.count(&t).await, 17);
    f.cleanup().await;
}

#[tokio::test]
async fn a_dead_database_at_start_up_does_not_stop_the_host() {
    // Nothing listens on the proxy's upstream side when it refuses: the store is built lazily.
    let proxy = FaultProxy::start(PG_ADDR.parse().unwrap()).await.unwrap();
    proxy.set_mode(FaultMode::Refuse);
    let dir = tempfile::tempdir().unwrap();
    let store = ArtifactStore::new(
        settings(
            &unique_table("d"),
            Some(pg_url(&proxy.addr().to_string())),
            dir.path(),
        ),
        Arc::new(Metrics::default()),
    )
    .unwrap();
    let t = store.table_name().to_string();
    assert!(matches!(
        store.open(&t).await,
        Err(StoreError::Unavailable(_))
    ));
    let conn = sqlx::PgConnection::connect(&pg_url(PG_ADDR))
        .await
        .expect("PostgreSQL must be running at 127.0.0.1:5432");
    let _ = conn.close().await;
}

/// Through the assembled host: the maintenance pass runs the real component's `maintain`, takes
/// turns with a worker that holds the lock, and store errors reach `/metrics` by kind.
#[tokio::test]
async fn maintenance_pass_through_the_host_with_sqlite() {
    let h = Harness::start().await;
    assert_eq!(h.app.store.backend_kind(), "sqlite");
    assert!(
        h.app
            .store
            .table_name()
            .starts_with("response_items_openrouter_responses_")
    );
    assert_eq!(run_once(&h.app).await.unwrap(), PassOutcome::Ran);

    let held = h.app.store.try_maintenance_lock().await.unwrap().unwrap();
    assert_eq!(run_once(&h.app).await.unwrap(), PassOutcome::Skipped);
    held.release(Duration::from_secs(1)).await;
    assert_eq!(run_once(&h.app).await.unwrap(), PassOutcome::Ran);
    assert_eq!(h.app.metrics.get("maintenance_runs", "ok"), 2);

    // A name the host did not grant is refused and counted by kind.
    assert!(matches!(
        h.app
            .store
            .open("response_items_someone_else_00000000")
            .await,
        Err(StoreError::AccessDenied)
    ));
    let metrics = h.metrics().await;
    assert!(
        metrics.contains("responses_pipe_store_errors_total{kind=\"access_denied\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn maintenance_takes_turns_between_hosts_sharing_postgres() {
    let db = Inspect::postgres().await;
    static N: AtomicU32 = AtomicU32::new(0);
    let pipe_id = format!(
        "mt_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let env = || Options {
        env: vec![
            ("DATABASE_URL", pg_url(PG_ADDR)),
            ("PIPE_ID", pipe_id.clone()),
            (
                "ARTIFACT_ENCRYPTION_KEY",
                "maintenance-test-key-0123456789abcdef".to_string(),
            ),
        ],
        ..Options::default()
    };
    let a = Harness::with(env()).await;
    let b = Harness::with(env()).await;
    assert_eq!(a.app.store.backend_kind(), "postgres");
    assert_eq!(a.app.store.table_name(), b.app.store.table_name());
    assert!(
        a.app
            .store
            .table_name()
            .starts_with(&format!("response_items_{pipe_id}_"))
    );
    let held = a.app.store.try_maintenance_lock().await.unwrap().unwrap();
    assert_eq!(run_once(&b.app).await.unwrap(), PassOutcome::Skipped);
    held.release(Duration::from_secs(5)).await;
    assert_eq!(run_once(&b.app).await.unwrap(), PassOutcome::Ran);
    let table = a.app.store.table_name().to_string();
    a.app.store.close().await;
    b.app.store.close().await;
    db.drop_table(&table).await;
}

/// The `store` import through the real wasm boundary (the conformance guest calls it): only the
/// granted table opens, caps come back as typed errors, rows round-trip.
async fn store_through_the_component(h: &Harness) {
    let hostile = |target: String| {
        let body = Harness::chat_body("hostile/store", &target, false);
        async move {
            let resp = h.post_chat(&body).await;
            let v: serde_json::Value = resp.json().await.unwrap();
            v["error"]["message"].as_str().unwrap().to_string()
        }
    };
    let denied = hostile("response_items_not_granted_00000000".into()).await;
    assert_eq!(denied, "open=StoreError::AccessDenied");
    let denied = hostile("sqlite_master".into()).await;
    assert_eq!(denied, "open=StoreError::AccessDenied");
    let report = hostile(h.app.store.table_name().to_string()).await;
    assert_eq!(
        report,
        "open=ok\nhuge=Err(StoreError::TooLarge)\nbad-id=Err(StoreError::InvalidArgument(\"id is longer than 64 bytes\"))\nput=Ok(())\nget=r1:payload-1\ndelete=Ok(1)"
    );
}

#[tokio::test]
async fn the_component_reaches_only_its_table_with_sqlite() {
    let h = Harness::with(Options {
        component: Some(std::fs::read(env!("HOSTILE_WASM")).unwrap()),
        ..Options::default()
    })
    .await;
    store_through_the_component(&h).await;
}

#[tokio::test]
async fn the_component_reaches_only_its_table_with_postgres() {
    let db = Inspect::postgres().await;
    static N: AtomicU32 = AtomicU32::new(0);
    let pipe_id = format!(
        "wit_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let h = Harness::with(Options {
        component: Some(std::fs::read(env!("HOSTILE_WASM")).unwrap()),
        // Trust authentication ignores the password; it is there to be looked for in the logs.
        env: vec![
            (
                "DATABASE_URL",
                format!("postgres://postgres:{DSN_PASSWORD}@{PG_ADDR}/test"),
            ),
            ("PIPE_ID", pipe_id),
        ],
        ..Options::default()
    })
    .await;
    store_through_the_component(&h).await;
    // Every log line of the process, at TRACE, sqlx's included.
    let logs = logs_text();
    assert!(
        logs.contains("backend=\"postgres\""),
        "the backend is logged"
    );
    assert!(
        !logs.contains(DSN_PASSWORD),
        "the DSN password leaked into the logs"
    );
    let table = h.app.store.table_name().to_string();
    assert_eq!(db.count(&table).await, 0);
    h.app.store.close().await;
    db.drop_table(&table).await;
}

/// The server's schedule: passes keep coming at the interval, and stopping ends the task.
#[tokio::test]
async fn the_maintenance_schedule_runs_passes_until_stopped() {
    let h = Harness::start().await;
    let task = MaintenanceTask::spawn(
        h.app.clone(),
        Duration::from_millis(1),
        Duration::from_millis(20),
    );
    let passes = || h.app.metrics.get("maintenance_runs", "ok");
    let wait_for = |n: u64| async move {
        for _ in 0..3000 {
            if passes() >= n {
                return std::time::Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("fewer than {n} maintenance passes");
    };
    let first = wait_for(1).await;
    let third = wait_for(3).await;
    // The running schedule's own pace on this machine, now.
    let pace = (third - first) / 2;
    tokio::time::timeout(Duration::from_secs(60), task.stop())
        .await
        .expect("the schedule stops when asked");
    let after = passes();
    // Wait for three passes at that pace: a schedule that kept going would have run at least one
    // more by then, however slow the machine.
    tokio::time::sleep(pace * 3).await;
    assert_eq!(passes(), after, "no pass after stop");
}
