//! The settings table as the `responses-pipe` binary applies it: a non-default value of an
//! unbuilt setting operators rely on stops `serve` and `maintain` with the setting named; other
//! unbuilt or ignored settings are named in the start-up report and the process carries on; and
//! `config-doc` prints exactly the committed `docs/configuration.md`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::process::{Command, Output};

fn run(args: &[&str], data_dir: &std::path::Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_responses-pipe"));
    cmd.args(args)
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
fn an_unbuilt_safety_setting_stops_serve_and_maintain_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (key, value) in [
        ("SESSION_LOG_STORE_ENABLED", "true"),
        ("FUSION_BACKEND", "internal"),
        ("ENABLE_SSRF_PROTECTION", "false"),
    ] {
        for command in ["serve", "maintain"] {
            let args: &[&str] = if command == "serve" {
                &["serve", "--listen", "127.0.0.1:0"]
            } else {
                &["maintain"]
            };
            let out = run(args, dir.path(), &[(key, value)]);
            let log = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{command} {key}={value}: {log}");
            assert!(log.contains(&format!("{key}={value}")), "{log}");
            assert!(log.contains("does not start"), "{log}");
            assert!(!log.contains("listening"), "{log}");
        }
    }
}

#[test]
fn cost_snapshots_without_redis_stop_serve_naming_both_settings() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &["serve", "--listen", "127.0.0.1:0"],
        dir.path(),
        &[("COSTS_REDIS_DUMP", "true")],
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("COSTS_REDIS_DUMP=true needs REDIS_URL"),
        "{log}"
    );
    assert!(!log.contains("listening"), "{log}");
}

#[test]
fn unbuilt_and_ignored_settings_are_named_at_start_up_and_the_process_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &["maintain"],
        dir.path(),
        &[
            ("REMOTE_DOWNLOAD_MAX_RETRIES", "5"),
            ("SESSION_LOG_ZIP_PASSWORD", "zip-Secret-4711"),
            ("MIDDLEWARE_STREAM_QUEUE_MAXSIZE", "64"),
            // At its default: not named.
            ("SSE_WORKERS_PER_REQUEST", "4"),
        ],
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("maintenance done"), "{log}");
    let line = |needle: &str| log.lines().find(|l| l.contains(needle)).map(str::to_owned);
    let retries = line("setting REMOTE_DOWNLOAD_MAX_RETRIES").unwrap_or_default();
    assert!(
        retries.contains("WARN") && retries.contains("not built"),
        "{log}"
    );
    let password = line("setting SESSION_LOG_ZIP_PASSWORD").unwrap_or_default();
    assert!(password.contains("WARN"), "{log}");
    let queue = line("setting MIDDLEWARE_STREAM_QUEUE_MAXSIZE").unwrap_or_default();
    assert!(
        queue.contains("INFO") && queue.contains("no meaning here"),
        "{log}"
    );
    assert!(!log.contains("SSE_WORKERS_PER_REQUEST"), "{log}");
    assert!(!log.contains("zip-Secret-4711"), "{log}");

    // A default start names nothing.
    let out = run(&["maintain"], dir.path(), &[]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(!log.contains("has no effect"), "{log}");
    assert!(!log.contains("no meaning here"), "{log}");
}

#[test]
fn config_doc_prints_the_committed_configuration_reference() {
    let out = Command::new(env!("CARGO_BIN_EXE_responses-pipe"))
        .arg("config-doc")
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md"),
    )
    .unwrap();
    assert!(
        printed == committed,
        "docs/configuration.md is stale; regenerate it with:\n  {}",
        responses_pipe_host::config::doc::REGENERATE
    );
    for name in [
        "BASE_URL",
        "FUSION_BACKEND",
        "MIDDLEWARE_STREAM_QUEUE_MAXSIZE",
    ] {
        assert!(printed.contains(&format!("| `{name}`")), "{name}");
    }
}
