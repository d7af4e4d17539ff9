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

/// Run `python/<name>.py` against the host; its standard output, once it exited successfully.
async fn run_script(h: &Harness, name: &str) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("python/{name}.py"));
    let out = tokio::process::Command::new(python())
        .arg(&script)
        .env("PIPE_URL", format!("{}/v1", h.url))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the SDK script failed:\n{stdout}\n{stderr}"
    );
    stdout
}

#[tokio::test]
async fn the_openai_python_sdk_lists_models_and_streams_a_chat() {
    let h = Harness::start().await;
    let stdout = run_script(&h, "openai_sdk_check").await;
    assert!(stdout.contains("models ok"), "{stdout}");
    assert!(
        stdout.contains("stream ok: echo: hello from the sdk"),
        "{stdout}"
    );
    assert!(stdout.contains("usage ok"), "{stdout}");
    assert!(stdout.contains("error ok: 429"), "{stdout}");
}

/// A client-side tool loop with the SDK (what Open WebUI's native tool calling and any OpenAI
/// client do), in pass-through mode: streamed `tool_calls`, a `tool` message back, the answer.
#[tokio::test]
async fn the_openai_python_sdk_runs_its_own_tool_loop_through_the_host() {
    let h = Harness::with_env(&[("TOOL_EXECUTION_MODE", "Open-WebUI")]).await;
    let stdout = run_script(&h, "openai_sdk_tools").await;
    for model in ["fake/tool-call", "fake/tool-call-late"] {
        assert!(
            stdout.contains(&format!("{model} call ok: get_weather(")),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!(
                "{model} answer ok: tool results: Sunny and 21C in Paris"
            )),
            "{stdout}"
        );
    }
    assert!(stdout.contains("non-streamed call ok"), "{stdout}");
    // Every round went to /responses; the follow-ups carried the tool output.
    let outputs = h
        .posted_bodies("/responses")
        .iter()
        .filter(|b| {
            b["input"]
                .as_array()
                .is_some_and(|i| i.iter().any(|x| x["type"] == "function_call_output"))
        })
        .count();
    assert_eq!(outputs, 2);
}
