//! Artifact persistence and replay through the real host and component: the first
//! turn's reasoning item is stored at the end of the turn with a marker line in the answer; the
//! second turn, carrying that answer in its history, sends the item back to OpenRouter before the
//! answer it belongs to. SQLite (the embedded default, also across a host restart) and PostgreSQL
//! (127.0.0.1:5432, database `test`); encryption, `ENCRYPT_ALL` and the compression threshold are
//! checked on the rows the host stored; key rotation, retention, rows copied or planted behind the
//! host's back, another user claiming the chat, and a database outage or stall that never fails
//! the chat.

use crate::harness::{Harness, Options, content_of, fresh_chat, logs_text, marker_ids, sse_data};
use fake_openrouter::fault_proxy::FaultMode;
use serde_json::{Value, json};

const MODEL: &str = "fake/reasoning";
const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Stored payloads of these row ids, read through the host's own store.
async fn payloads(h: &Harness, ids: &[String]) -> Vec<Vec<u8>> {
    let table = h.app.store.table_name().to_string();
    h.app
        .store
        .get_many(&table, ids.to_vec(), u64::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.payload)
        .collect()
}

/// The stored payloads of one turn ("hi") as `user-persist` in a fresh chat tagged `tag`.
async fn stored_turn(h: &Harness, tag: &str) -> Vec<Vec<u8>> {
    let hi = json!([{"role": "user", "content": "hi"}]);
    let answer = h
        .chat_turn("user-persist", MODEL, &fresh_chat(tag), "msg-1", &hi)
        .await;
    payloads(h, &marker_ids(&answer)).await
}

/// First turn, then the second turn with the first answer in its history; returns the first
/// answer and checks what the fake received the second time.
async fn two_turns(first: &Harness, second: &Harness, chat: &str) -> String {
    let history = json!([{"role": "user", "content": "hello there"}]);
    let answer = first
        .chat_turn("user-persist", MODEL, chat, "msg-1", &history)
        .await;
    let ids = marker_ids(&answer);
    assert_eq!(
        ids.len(),
        1,
        "one stored reasoning row, one marker: {answer:?}"
    );
    assert!(answer.starts_with("echo"), "{answer:?}");
    let first_item = first.last_body("/responses");
    assert!(
        first_item["input"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["type"] != "reasoning"),
        "nothing to replay in the first turn"
    );

    let history = after(&answer);
    let second_answer = second
        .chat_turn("user-persist", MODEL, chat, "msg-2", &history)
        .await;
    assert_eq!(marker_ids(&second_answer).len(), 1);
    let body = second.last_body("/responses");
    let input = body["input"].as_array().unwrap();
    let kinds: Vec<String> = input
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i["type"].as_str().unwrap_or(""),
                i["role"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "message/user",
            "reasoning/",
            "message/assistant",
            "message/user"
        ],
        "{body}"
    );
    let reasoning = &input[1];
    assert!(
        reasoning["encrypted_content"]
            .as_str()
            .unwrap()
            .starts_with("gAAAA-fake-encrypted-rs"),
        "{reasoning}"
    );
    assert!(reasoning["summary"].is_array());
    let text = input[2]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("echo") && !text.contains("]: #"),
        "{text:?}"
    );
    assert!(
        !body.to_string().contains("]: #"),
        "no marker goes upstream"
    );
    answer
}

#[tokio::test]
async fn sqlite_two_turns_replay_the_first_turns_reasoning_before_its_answer() {
    let h = Harness::start().await;
    assert_eq!(h.app.store.backend_kind(), "sqlite");
    let chat = fresh_chat("sqlite");
    let answer = two_turns(&h, &h, &chat).await;
    // Without a key the row is stored plain (header 0).
    let stored = payloads(&h, &marker_ids(&answer)).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0][0], 0);
}

#[tokio::test]
async fn a_host_restart_between_turns_changes_nothing() {
    let data = tempfile::tempdir().unwrap();
    let key = || sealed_with("restart-key-0123456789abcdef-0123");
    let chat = fresh_chat("restart");
    let mut first = host_on(data.path(), key()).await;
    let history = json!([{"role": "user", "content": "hello there"}]);
    let answer = first
        .chat_turn("user-persist", MODEL, &chat, "msg-1", &history)
        .await;
    first.shutdown();
    if let Some(server) = first.server.take() {
        let _ = server.await;
    }
    drop(first);

    let second = host_on(data.path(), key()).await;
    let history = after(&answer);
    second
        .chat_turn("user-persist", MODEL, &chat, "msg-2", &history)
        .await;
    let input = second.last_body("/responses")["input"].clone();
    assert_eq!(input[1]["type"], "reasoning", "{input}");
    assert!(
        input[1]["encrypted_content"]
            .as_str()
            .unwrap()
            .starts_with("gAAAA-fake-encrypted-rs")
    );
}

#[tokio::test]
async fn a_plain_api_call_without_a_chat_id_persists_nothing() {
    let h = Harness::start().await;
    let (status, chunks) = h.stream_chat(MODEL, "hello there").await;
    assert_eq!(status, 200);
    let answer = content_of(&chunks);
    assert!(answer.starts_with("echo"));
    assert!(marker_ids(&answer).is_empty(), "{answer:?}");
}

#[tokio::test]
async fn with_a_key_rows_are_sealed_and_nonces_never_repeat_across_instances() {
    const KEY: &str = "artifact-key-for-the-e2e-suite-0123456789";
    let h = Harness::with_env(&[("ARTIFACT_ENCRYPTION_KEY", KEY)]).await;
    // Four separate requests: four fresh component instances.
    let mut ids = Vec::new();
    for i in 0..4 {
        let chat = fresh_chat(&format!("sealed{i}"));
        let history = json!([{"role": "user", "content": format!("hello {i}")}]);
        ids.extend(marker_ids(
            &h.chat_turn("user-persist", MODEL, &chat, "msg-1", &history)
                .await,
        ));
    }
    assert_eq!(ids.len(), 4);
    let stored = payloads(&h, &ids).await;
    assert_eq!(stored.len(), 4);
    let mut nonces = std::collections::HashSet::new();
    let mut key_ids = std::collections::HashSet::new();
    for p in &stored {
        // Guest header 1 (sealed), then the host record: version 1, key id, 96-bit nonce, ...
        assert_eq!(p[0], 1, "sealed");
        assert_eq!(p[1], 1, "record version");
        key_ids.insert(p[2..6].to_vec());
        assert!(nonces.insert(p[6..18].to_vec()), "a nonce repeated");
        let text = String::from_utf8_lossy(p);
        for plain in ["gAAAA", "reasoning", "echo", "Planning"] {
            assert!(!text.contains(plain), "{plain} readable in a sealed row");
        }
        assert!(!p.windows(KEY.len()).any(|w| w == KEY.as_bytes()));
    }
    assert_eq!(key_ids.len(), 1, "one current key");
    // Seals are counted per key id.
    let metrics = h.metrics().await;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("responses_pipe_artifact_seals_total"))
        .unwrap_or_default()
        .to_string();
    assert!(line.contains("key_") && line.ends_with(" 4"), "{metrics}");
    assert!(!metrics.contains(KEY));
    assert!(!logs_text().contains(KEY), "the key never reaches the logs");
}

#[tokio::test]
async fn encrypt_all_off_still_seals_reasoning_and_no_key_stores_plain() {
    let h = Harness::with_env(&[
        (
            "ARTIFACT_ENCRYPTION_KEY",
            "another-artifact-key-abcdef-0123456789",
        ),
        ("ENCRYPT_ALL", "false"),
    ])
    .await;
    let stored = stored_turn(&h, "encrypt-all-off").await;
    assert_eq!(
        stored[0][0], 1,
        "reasoning is always sealed when a key is set"
    );
}

#[tokio::test]
async fn compression_follows_the_switch_and_the_threshold() {
    async fn flag(env: &[(&'static str, &str)]) -> u8 {
        let stored = stored_turn(&Harness::with_env(env).await, "lz4").await;
        assert_eq!(stored[0][0], 0, "no key: plain");
        stored[0][1]
    }
    assert_eq!(flag(&[]).await, 1, "LZ4 by default when it shrinks");
    assert_eq!(
        flag(&[("MIN_COMPRESS_BYTES", "1000000")]).await,
        0,
        "below the threshold"
    );
    assert_eq!(
        flag(&[("ENABLE_LZ4_COMPRESSION", "false")]).await,
        0,
        "switched off"
    );
}

#[tokio::test]
async fn postgres_two_turns_replay_the_first_turns_reasoning() {
    let h = Harness::with(Options {
        env: vec![
            ("DATABASE_URL", PG_URL.to_string()),
            (
                "ARTIFACT_ENCRYPTION_KEY",
                "postgres-artifact-key-0123456789-abc".to_string(),
            ),
        ],
        ..Options::default()
    })
    .await;
    assert_eq!(h.app.store.backend_kind(), "postgres");
    let chat = fresh_chat("pg");
    let answer = two_turns(&h, &h, &chat).await;
    let stored = payloads(&h, &marker_ids(&answer)).await;
    assert_eq!(stored[0][0], 1);
}

/// One turn; returns the answer and the raw SSE payloads (for Open WebUI event lines).
async fn turn_chunks(h: &Harness, chat: &str, message: &str, messages: &Value) -> (String, String) {
    let resp = h
        .client
        .post(format!("{}/v1/chat/completions", h.url))
        .header("X-OpenWebUI-User-Id", "user-fault")
        .header("X-OpenWebUI-Chat-Id", chat)
        .header("X-OpenWebUI-Message-Id", message)
        .json(&json!({"model": MODEL, "stream": true, "messages": messages}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let raw = resp.text().await.unwrap();
    let chunks = sse_data(&raw);
    assert_eq!(chunks.last().map(String::as_str), Some("[DONE]"));
    (content_of(&chunks), raw)
}

#[tokio::test]
async fn a_database_outage_never_fails_the_chat_and_the_breaker_opens_and_closes() {
    let (proxy, h) = Harness::behind_postgres_proxy(&[
        ("BREAKER_MAX_FAILURES", "2"),
        ("BREAKER_WINDOW_SECONDS", "5"),
        ("DB_ACQUIRE_TIMEOUT_MS", "500"),
    ])
    .await;
    let chat = fresh_chat("fault");
    let hi = json!([{"role": "user", "content": "hello there"}]);
    let (answer, _) = turn_chunks(&h, &chat, "msg-0", &hi).await;
    assert_eq!(
        marker_ids(&answer).len(),
        1,
        "stored while the database is up"
    );

    proxy.set_mode(FaultMode::Refuse);
    for i in 1..=2 {
        let (answer, raw) = turn_chunks(&h, &chat, &format!("msg-{i}"), &hi).await;
        assert!(
            answer.starts_with("echo"),
            "the chat still streams: {answer:?}"
        );
        assert!(
            marker_ids(&answer).is_empty(),
            "no marker for a row not stored"
        );
        assert!(raw.contains("could not be saved"), "a notice: {raw}");
    }
    // Two failures within the window: the breaker is open and the database is left alone.
    let errors_before = h.app.metrics.total("store_errors");
    assert!(errors_before >= 2, "the failed writes were counted");
    let (answer, raw) = turn_chunks(&h, &chat, "msg-3", &hi).await;
    assert!(answer.starts_with("echo") && marker_ids(&answer).is_empty());
    assert!(raw.contains("DB ops skipped"), "{raw}");
    assert_eq!(h.app.metrics.total("store_errors"), errors_before);

    // The database comes back; once the window has passed, persistence resumes by itself.
    proxy.set_mode(FaultMode::Pass);
    let mut resumed = None;
    for i in 0..120 {
        let (answer, _) = turn_chunks(&h, &chat, &format!("msg-r{i}"), &hi).await;
        if !marker_ids(&answer).is_empty() {
            resumed = Some(answer);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let answer = resumed.expect("persistence resumed after the database came back");
    // And what was stored after recovery replays.
    let history = after(&answer);
    turn_chunks(&h, &chat, "msg-last", &history).await;
    assert_eq!(h.last_body("/responses")["input"][1]["type"], "reasoning");
}

/// `BREAKER_HISTORY_SIZE` bounds the failures the database breaker remembers: below
/// `BREAKER_MAX_FAILURES` it can never open, so every turn tries the database again (and the
/// start-up report says so).
#[tokio::test]
async fn a_breaker_history_shorter_than_the_threshold_never_skips_the_database() {
    let (proxy, h) = Harness::behind_postgres_proxy(&[
        ("BREAKER_MAX_FAILURES", "2"),
        ("BREAKER_HISTORY_SIZE", "1"),
        ("BREAKER_WINDOW_SECONDS", "60"),
        ("DB_ACQUIRE_TIMEOUT_MS", "500"),
    ])
    .await;
    assert!(logs_text().contains("BREAKER_HISTORY_SIZE is below BREAKER_MAX_FAILURES"));
    proxy.set_mode(FaultMode::Refuse);
    let chat = fresh_chat("history");
    let hi = json!([{"role": "user", "content": "hello there"}]);
    for i in 1..=3 {
        let before = h.app.metrics.total("store_errors");
        let (answer, raw) = turn_chunks(&h, &chat, &format!("msg-{i}"), &hi).await;
        assert!(answer.starts_with("echo"), "{answer:?}");
        assert!(!raw.contains("DB ops skipped"), "turn {i}: {raw}");
        assert!(
            h.app.metrics.total("store_errors") > before,
            "turn {i} tried the database again"
        );
    }
}

#[tokio::test]
async fn maintain_deletes_rows_unused_for_the_retention_and_keeps_fresh_ones() {
    let data = tempfile::tempdir().unwrap();
    let h = host_on(
        data.path(),
        vec![("ARTIFACT_CLEANUP_DAYS", "1".to_string())],
    )
    .await;
    let hi = json!([{"role": "user", "content": "hello there"}]);
    let old = marker_ids(
        &h.chat_turn("user-persist", MODEL, &fresh_chat("old"), "msg-1", &hi)
            .await,
    );
    let fresh = marker_ids(
        &h.chat_turn("user-persist", MODEL, &fresh_chat("fresh"), "msg-1", &hi)
            .await,
    );
    assert_eq!((old.len(), fresh.len()), (1, 1));
    // Age one row: last used two days ago.
    let db = sqlite_db(data.path()).await;
    let two_days_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 2 * 86_400_000;
    let sql = format!(
        "UPDATE {} SET last_used_ms = {two_days_ago}, created_at_ms = {two_days_ago} WHERE id = '{}'",
        h.app.store.table_name(),
        old[0]
    );
    sqlx::query(&sql).execute(&db).await.unwrap();
    db.close().await;

    responses_pipe_host::maintenance::run_once(&h.app)
        .await
        .unwrap();
    assert!(payloads(&h, &old).await.is_empty(), "the old row is gone");
    assert_eq!(payloads(&h, &fresh).await.len(), 1, "the fresh row stays");
}

/// The two keys of the rotation tests.
const KEY_A: &str = "rotation-key-A-0123456789abcdef-0";
const KEY_B: &str = "rotation-key-B-0123456789abcdef-0";

/// A host on the data directory `data` with these valves.
async fn host_on(data: &std::path::Path, env: Vec<(&'static str, String)>) -> Harness {
    Harness::with(Options {
        data_dir: Some(data.to_path_buf()),
        env,
        ..Options::default()
    })
    .await
}

/// What a first turn stored under key A: the answer, its row ids, their payloads, and the
/// table (the host that stored them is shut down).
async fn first_turn_under_key_a(
    data: &std::path::Path,
    chat: &str,
) -> (String, Vec<String>, Vec<Vec<u8>>, String) {
    let mut first = host_on(data, sealed_with(KEY_A)).await;
    let hi = json!([{"role": "user", "content": "hello there"}]);
    let answer = first
        .chat_turn("user-persist", MODEL, chat, "msg-1", &hi)
        .await;
    let ids = marker_ids(&answer);
    let stored = payloads(&first, &ids).await;
    let table = first.app.store.table_name().to_string();
    first.shutdown();
    (answer, ids, stored, table)
}

/// Valves that seal artifacts with `key`.
fn sealed_with(key: &str) -> Vec<(&'static str, String)> {
    vec![("ARTIFACT_ENCRYPTION_KEY", key.to_string())]
}

/// The rotation's valves: key B current, key A previous.
fn rotating() -> Vec<(&'static str, String)> {
    vec![
        ("ARTIFACT_ENCRYPTION_KEY", KEY_B.to_string()),
        ("ARTIFACT_ENCRYPTION_KEY_PREVIOUS", KEY_A.to_string()),
    ]
}

#[tokio::test]
async fn maintenance_moves_rows_to_the_new_key_so_dropping_the_old_key_strands_nothing() {
    let data = tempfile::tempdir().unwrap();
    let chat = fresh_chat("migrate");
    let (answer, ids, old, old_table) = first_turn_under_key_a(data.path(), &chat).await;

    // During the rotation one maintenance pass moves the row to the new key's table.
    let mut rotated = host_on(data.path(), rotating()).await;
    assert!(payloads(&rotated, &ids).await.is_empty(), "not moved yet");
    responses_pipe_host::maintenance::run_once(&rotated.app)
        .await
        .unwrap();
    let moved = payloads(&rotated, &ids).await;
    assert_eq!(moved.len(), 1, "the row is in the new key's table");
    assert_eq!(moved[0][0], 1, "still sealed");
    assert_ne!(old[0][2..6], moved[0][2..6], "sealed under the new key");
    assert!(
        rotated
            .app
            .store
            .get_many(&old_table, ids.clone(), u64::MAX)
            .await
            .unwrap()
            .is_empty(),
        "and gone from the old key's table"
    );
    assert!(logs_text().contains("rows moved to the current key"));
    rotated.shutdown();
    drop(rotated);

    // The previous key is dropped: the first turn's reasoning still replays.
    let later = host_on(data.path(), sealed_with(KEY_B)).await;
    assert_eq!(
        replayed_kind(&later, "user-persist", &chat, "msg-2", &answer).await,
        "reasoning",
        "the moved row replays without the old key"
    );
}

#[tokio::test]
async fn a_key_rotation_keeps_old_rows_readable_and_seals_new_ones_with_the_new_key() {
    let data = tempfile::tempdir().unwrap();
    let chat = fresh_chat("rotation");
    let (answer, _, old, _) = first_turn_under_key_a(data.path(), &chat).await;

    let rotated = host_on(data.path(), rotating()).await;
    let history = after(&answer);
    let second = rotated
        .chat_turn("user-persist", MODEL, &chat, "msg-2", &history)
        .await;
    assert_eq!(
        rotated.last_body("/responses")["input"][1]["type"],
        "reasoning",
        "the row sealed under the previous key still replays"
    );
    let new = payloads(&rotated, &marker_ids(&second)).await;
    assert_eq!((old.len(), new.len()), (1, 1));
    assert_eq!((old[0][0], new[0][0]), (1, 1), "both sealed");
    assert_ne!(old[0][2..6], new[0][2..6], "new rows use the new key id");
    let mut rotated = rotated;
    rotated.shutdown();
    drop(rotated);

    // The rotation is over: the previous key is dropped. Rows written since the rotation live in
    // the new key's table and keep replaying; rows of the retired key's table no longer do
    // (no maintenance pass moved them here).
    let later = host_on(data.path(), sealed_with(KEY_B)).await;
    let history = json!([
        {"role": "user", "content": "hello there"},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "and again"},
        {"role": "assistant", "content": second},
        {"role": "user", "content": "once more"},
    ]);
    later
        .chat_turn("user-persist", MODEL, &chat, "msg-3", &history)
        .await;
    let input = later.last_body("/responses")["input"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let reasoning: Vec<&Value> = input.iter().filter(|i| i["type"] == "reasoning").collect();
    assert_eq!(reasoning.len(), 1, "{input:#?}");
    let position = input.iter().position(|i| i["type"] == "reasoning").unwrap();
    assert_eq!(
        input[position - 1]["content"][0]["text"]
            .as_str()
            .or(input[position - 1]["content"].as_str()),
        Some("and again"),
        "the replayed row is the second turn's: {input:#?}"
    );
}

#[tokio::test]
async fn a_stalled_database_times_out_the_write_and_the_chat_still_streams() {
    let (proxy, h) = Harness::behind_postgres_proxy(&[
        ("DB_ACQUIRE_TIMEOUT_MS", "300"),
        ("DB_STATEMENT_TIMEOUT_MS", "300"),
    ])
    .await;
    let chat = fresh_chat("stall");
    let hi = json!([{"role": "user", "content": "hello there"}]);
    let (answer, _) = turn_chunks(&h, &chat, "msg-0", &hi).await;
    assert_eq!(marker_ids(&answer).len(), 1);
    proxy.set_mode(FaultMode::Stall);
    let (answer, raw) = turn_chunks(&h, &chat, "msg-1", &hi).await;
    assert!(
        answer.starts_with("echo") && marker_ids(&answer).is_empty(),
        "{answer:?}"
    );
    assert!(raw.contains("could not be saved"), "{raw}");
    proxy.set_mode(FaultMode::Pass);
}

#[tokio::test]
async fn a_sealed_payload_copied_onto_another_row_is_not_replayed() {
    let data = tempfile::tempdir().unwrap();
    let h = host_on(
        data.path(),
        sealed_with("copy-attack-key-0123456789abcdef-x"),
    )
    .await;
    let hi = json!([{"role": "user", "content": "hello there"}]);
    let (chat_a, chat_b) = (fresh_chat("copy-a"), fresh_chat("copy-b"));
    let a = marker_ids(
        &h.chat_turn("user-persist", MODEL, &chat_a, "msg-1", &hi)
            .await,
    );
    let answer_b = h
        .chat_turn("user-persist", MODEL, &chat_b, "msg-1", &hi)
        .await;
    let b = marker_ids(&answer_b);
    // Someone with database access puts chat A's sealed payload on chat B's row.
    let db = sqlite_db(data.path()).await;
    let table = h.app.store.table_name().to_string();
    let sql = format!(
        "UPDATE {table} SET payload = (SELECT payload FROM {table} WHERE id = '{}') WHERE id = '{}'",
        a[0], b[0]
    );
    sqlx::query(&sql).execute(&db).await.unwrap();
    db.close().await;

    let history = after(&answer_b);
    let answer = h
        .chat_turn("user-persist", MODEL, &chat_b, "msg-2", &history)
        .await;
    assert!(answer.starts_with("echo"), "the chat goes on: {answer:?}");
    let body = h.last_body("/responses");
    let input = body["input"].as_array().unwrap();
    assert!(
        input.iter().all(|i| i["type"] != "reasoning"),
        "the moved row does not open: {body}"
    );
    assert!(!body.to_string().contains("]: #"));
}

/// The SQLite file under a host's data directory, for editing rows behind the host's back.
async fn sqlite_db(data: &std::path::Path) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(data.join(responses_pipe_host::store::SQLITE_FILE_NAME));
    sqlx::SqlitePool::connect_with(options).await.unwrap()
}

/// A second turn after `answer` as `user` in `chat`; the type of the input item sent before that
/// answer (`reasoning` when the first turn's row replayed).
async fn replayed_kind(h: &Harness, user: &str, chat: &str, message: &str, answer: &str) -> Value {
    h.chat_turn(user, MODEL, chat, message, &after(answer))
        .await;
    h.last_body("/responses")["input"][1]["type"].clone()
}

/// The history of a second turn after `answer`.
fn after(answer: &str) -> Value {
    json!([
        {"role": "user", "content": "hello there"},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "and again"},
    ])
}

#[tokio::test]
async fn another_user_claiming_the_same_chat_id_gets_none_of_its_artifacts() {
    // No key: the rows are plain, so only their owner keeps them from another user.
    let h = Harness::start().await;
    let chat = fresh_chat("owner");
    let hi = json!([{"role": "user", "content": "hello there"}]);
    let answer = h.chat_turn("user-a", MODEL, &chat, "msg-1", &hi).await;
    let ids = marker_ids(&answer);
    assert_eq!(ids.len(), 1, "{answer:?}");
    let stored = h
        .app
        .store
        .get_many(h.app.store.table_name(), ids.clone(), u64::MAX)
        .await
        .unwrap();
    assert_eq!(stored[0].owner.len(), 32, "a fixed-length digest");
    assert!(!stored[0].owner.contains("user-a"));

    // User B replays A's marker in the same chat id.
    let answer_b = h
        .chat_turn("user-b", MODEL, &chat, "msg-2", &after(&answer))
        .await;
    assert!(
        answer_b.starts_with("echo"),
        "the chat goes on: {answer_b:?}"
    );
    let body = h.last_body("/responses");
    assert!(
        body["input"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["type"] != "reasoning"),
        "nothing of A's reaches the upstream: {body}"
    );
    assert!(!body.to_string().contains("gAAAA-fake-encrypted"), "{body}");
    assert!(!body.to_string().contains("]: #"));
    let logs = logs_text();
    assert!(
        logs.lines()
            .any(|l| l.contains("DEBUG") && l.contains("belong to another owner")),
        "counted and logged at debug"
    );

    // A gets the row back.
    assert_eq!(
        replayed_kind(&h, "user-a", &chat, "msg-3", &answer).await,
        "reasoning",
        "the owner still replays it"
    );
}

#[tokio::test]
async fn with_a_key_a_plain_row_planted_in_the_table_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let h = host_on(
        data.path(),
        sealed_with("plant-attack-key-0123456789abcdef-x"),
    )
    .await;
    let chat = fresh_chat("plant");
    let hi = json!([{"role": "user", "content": "hello there"}]);
    let answer = h.chat_turn("user-a", MODEL, &chat, "msg-1", &hi).await;
    let ids = marker_ids(&answer);
    assert_eq!(ids.len(), 1);
    // Someone with write access to the database but without the key replaces the sealed
    // payload with a plain one (guest header 0, JSON body flag 0), keeping id, chat and owner.
    let mut planted = vec![0u8, 0u8];
    planted.extend(
        json!({"type": "reasoning", "summary": [], "encrypted_content": "gAAAA-planted-by-db"})
            .to_string()
            .into_bytes(),
    );
    let db = sqlite_db(data.path()).await;
    let table = h.app.store.table_name().to_string();
    let updated = sqlx::query(&format!("UPDATE {table} SET payload = ? WHERE id = ?"))
        .bind(planted)
        .bind(&ids[0])
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 1);
    db.close().await;

    let answer_2 = h
        .chat_turn("user-a", MODEL, &chat, "msg-2", &after(&answer))
        .await;
    assert!(
        answer_2.starts_with("echo"),
        "the chat goes on: {answer_2:?}"
    );
    let body = h.last_body("/responses");
    assert!(
        !body.to_string().contains("planted-by-db"),
        "the planted row never reaches the upstream: {body}"
    );
    assert!(
        body["input"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["type"] != "reasoning"),
        "{body}"
    );
    assert!(
        logs_text().contains("refused 1 unsealed rows"),
        "refused, counted and logged"
    );
}
