//! `responses-pipe maintain`: one maintenance pass, then exit; a database that is down makes it
//! fail with a non-zero status; the PostgreSQL password never appears in its output.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::process::{Command, Output};

fn maintain(data_dir: &std::path::Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_responses-pipe"));
    cmd.arg("maintain")
        .arg("--data-dir")
        .arg(data_dir)
        .env_clear()
        .env("BASE_URL", "http://127.0.0.1:9/api/v1")
        .env("LOG_LEVEL", "INFO");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn maintain_runs_one_pass_on_sqlite_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let out = maintain(dir.path(), &[]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("backend=\"sqlite\"") || log.contains("backend=sqlite"),
        "{log}"
    );
    assert!(log.contains("maintenance done"), "{log}");
}

#[test]
fn maintain_with_postgres_never_logs_the_password() {
    let dir = tempfile::tempdir().unwrap();
    // Trust authentication ignores the password; it is there to be looked for in the output.
    let out = maintain(
        dir.path(),
        &[
            (
                "DATABASE_URL",
                "postgres://postgres:pw-Hunter2-secret@127.0.0.1:5432/test",
            ),
            ("PIPE_ID", "cli_maintain_test"),
        ],
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "PostgreSQL must be running at 127.0.0.1:5432: {log}"
    );
    assert!(log.contains("postgres"), "{log}");
    assert!(!log.contains("pw-Hunter2-secret"), "{log}");
    drop_table(&responses_pipe_host::config::artifact_table_name(
        "cli_maintain_test",
        None,
    ));

    // Nothing listens on port 1: the pass fails, with a non-zero exit and still no password.
    let out = maintain(
        dir.path(),
        &[
            (
                "DATABASE_URL",
                "postgres://postgres:pw-Hunter2-secret@127.0.0.1:1/test",
            ),
            ("DB_ACQUIRE_TIMEOUT_MS", "300"),
        ],
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("unavailable"), "{log}");
    assert!(!log.contains("pw-Hunter2-secret"), "{log}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("pw-Hunter2-secret"), "{stdout}");
}

/// Remove the table a pass may have created (the guest's cleanup opens it).
fn drop_table(table: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/test")
            .await
            .unwrap();
        sqlx::query(&format!("DROP TABLE IF EXISTS {table}"))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
}

#[test]
fn a_short_artifact_key_stops_the_start_up_naming_the_key_not_its_value() {
    let dir = tempfile::tempdir().unwrap();
    let short = "only-twenty-six-chars-long";
    let out = maintain(dir.path(), &[("ARTIFACT_ENCRYPTION_KEY_PREVIOUS", short)]);
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("ARTIFACT_ENCRYPTION_KEY_PREVIOUS"), "{log}");
    assert!(log.contains("openssl rand -base64 32"), "{log}");
    assert!(!log.contains(short), "{log}");
    // The same key at 32 characters starts.
    let good = "only-twenty-six-chars-long-plus6";
    let out = maintain(dir.path(), &[("ARTIFACT_ENCRYPTION_KEY", good)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
