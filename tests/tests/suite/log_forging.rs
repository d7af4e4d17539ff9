//! A caller cannot forge log lines: request-controlled values (here the model id) are escaped
//! and truncated before they reach the log, so a newline followed by a fake log line stays on
//! the line of the real entry, visibly escaped.

use crate::harness::{Harness, logs_text};
use std::time::Duration;

#[tokio::test]
async fn a_model_id_with_a_forged_log_line_stays_on_one_escaped_line() {
    let h = Harness::start().await;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let marker = format!("FORGED{nanos}");
    let forged =
        format!("1999-01-01T00:00:00.000000Z ERROR responses_pipe_host: {marker} key leaked");
    let model = format!("fake/echo\n{forged}\r\n\"quoted\" {}", "x".repeat(5000));
    let resp = h
        .post_chat(&serde_json::json!({"model": model, "stream": true,
            "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    let _ = resp.text().await;
    // The request was logged: wait for its line (the escaped newline keeps it on one line).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let logs = loop {
        let logs = logs_text();
        if logs.contains(&format!("fake/echo\\n{forged}")) {
            break logs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the chat request's escaped model id was never logged"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for line in logs.lines() {
        assert!(
            !line.starts_with("1999-01-01T00:00:00"),
            "a forged log line: {line}"
        );
        assert!(
            !line.starts_with("\"quoted\""),
            "a log line begins with request text: {line}"
        );
    }
    let request_line = logs
        .lines()
        .find(|l| l.contains(&marker) && l.contains("chat request"))
        .expect("the chat request line names the model");
    assert!(
        request_line.contains("\\r\\n\\\"quoted\\\""),
        "{request_line}"
    );
    assert!(
        request_line.len() < 1000,
        "the model id is truncated in the log: {} bytes",
        request_line.len()
    );
}
