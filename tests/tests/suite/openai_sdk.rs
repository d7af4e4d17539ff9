//! A real client: the official `openai` Python SDK lists models and streams a chat through the
//! host. The interpreter comes from `PIPE_TEST_PYTHON` or `.venv/bin/python` (the README's test
//! command creates that virtualenv and installs the SDK).

use crate::harness::Harness;
use std::path::PathBuf;

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("PIPE_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        venv.exists(),
        "the openai SDK test needs a Python with `openai` installed: run the README's test command \
         (scripts/test), or set PIPE_TEST_PYTHON"
    );
    venv
}

#[tokio::test]
async fn the_openai_python_sdk_lists_models_and_streams_a_chat() {
    let h = Harness::start().await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/openai_sdk_check.py");
    let out = tokio::process::Command::new(python())
        .arg(&script)
        .env("PIPE_URL", format!("{}/v1", h.url))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the SDK script failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("models ok"), "{stdout}");
    assert!(
        stdout.contains("stream ok: echo: hello from the sdk"),
        "{stdout}"
    );
    assert!(stdout.contains("usage ok"), "{stdout}");
    assert!(stdout.contains("error ok: 429"), "{stdout}");
}
