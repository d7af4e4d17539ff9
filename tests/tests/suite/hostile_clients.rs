//! Clients that try to pin the host: they stop reading, disconnect mid-answer, trickle their
//! headers or bodies, open too many connections or upload too much at once, or hold every slot.
//! Each test drives the real host over real sockets and waits for a positive signal (a closed
//! connection, a refusal, the fake upstream seeing its stream closed, the running gauge at 0),
//! each within a bound so a host that is pinned fails the test instead of hanging it.

use crate::harness::{Harness, content_of, pipeline};
use fake_openrouter::fake_tools::Behaviour;
use std::future::Future;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// How long any awaited signal may take before the test fails (generous: the machine may be
/// busy; a pinned host never gives the signal at all).
const BOUND: Duration = Duration::from_secs(20);

/// Poll `check` every 20 ms until it holds; panic with `what` after `bound`.
async fn until<F, Fut>(bound: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {bound:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn addr(h: &Harness) -> String {
    h.url.trim_start_matches("http://").to_string()
}

/// A raw streamed-chat request for `model`.
fn raw_chat(h: &Harness, model: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    raw_post(h, &Harness::chat_body(model, "hi", true), headers)
}

/// A raw chat request carrying `body`.
fn raw_post(h: &Harness, body: &serde_json::Value, headers: &[(&str, &str)]) -> Vec<u8> {
    let body = body.to_string();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n{body}",
        addr(h),
        body.len()
    )
    .into_bytes()
}

/// Connect with a small receive buffer (a client that stops reading fills it quickly).
async fn connect_small(h: &Harness) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(addr(h).parse().unwrap()).await.unwrap()
}

/// Read until `needle` has arrived (or the connection ends); everything read.
async fn read_until(stream: &mut TcpStream, needle: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if String::from_utf8_lossy(&got).contains(needle) {
            break;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Read until the peer closes the connection; everything read.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got).await;
    String::from_utf8_lossy(&got).into_owned()
}

/// The running gauge drops back to 0 within 2 s (a client went away mid-answer).
async fn gauge_back_to_zero(h: &Harness) {
    until(
        Duration::from_secs(2),
        "the running gauge back to 0",
        || async { running(h) == 0 },
    )
    .await;
}

fn running(h: &Harness) -> usize {
    h.app.admission.running()
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_and_its_request_ends() {
    let h = Harness::with_env(&[("CLIENT_WRITE_TIMEOUT_SECONDS", "1")]).await;
    let mut client = connect_small(&h).await;
    client
        .write_all(&raw_chat(&h, "fake/flood", &[]))
        .await
        .unwrap();
    let head = read_until(&mut client, "\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // From here on the client reads nothing: the host's writes stall and must time out.
    until(BOUND, "the stalled write timed out", || async {
        h.app.metrics.get("client_timeouts", "write") >= 1
    })
    .await;
    until(BOUND, "the fake saw its stream closed", || async {
        h.fake.streams_abandoned() >= 1
    })
    .await;
    until(BOUND, "the request released its slot", || async {
        running(&h) == 0
    })
    .await;
    assert!(
        h.metrics()
            .await
            .contains("responses_pipe_client_timeouts_total{reason=\"write\"} 1")
    );
    drop(client);
}

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_stops_its_guest_and_upstream_at_once() {
    let h = Harness::start().await;
    let mut client = TcpStream::connect(addr(&h)).await.unwrap();
    client
        .write_all(&raw_chat(&h, "fake/stall", &[]))
        .await
        .unwrap();
    let seen = read_until(&mut client, "three").await;
    assert!(seen.contains("stalled"), "{seen}");
    assert_eq!(running(&h), 1);
    // The fake now holds its stream open and silent; the client goes away.
    drop(client);
    gauge_back_to_zero(&h).await;
    until(BOUND, "the fake saw its stream closed", || async {
        h.fake.streams_abandoned() >= 1
    })
    .await;
    assert_eq!(h.app.metrics.get("requests_abandoned", "client_gone"), 1);
    assert!(
        h.metrics()
            .await
            .contains("responses_pipe_requests_running 0")
    );
}

#[tokio::test]
async fn a_client_that_disconnects_mid_tool_call_closes_the_tool_request() {
    let (h, tools) = pipeline(&[]).await;
    tools.recorder().set("get_weather", Behaviour::Hang);
    let mut client = TcpStream::connect(addr(&h)).await.unwrap();
    let body = serde_json::json!({"model": "fake/tool-call", "stream": true,
        "messages": [{"role": "user", "content": "use:get_weather"}]});
    client.write_all(&raw_post(&h, &body, &[])).await.unwrap();
    until(BOUND, "the tool call reached the tool server", || async {
        tools.recorder().current() == 1
    })
    .await;
    drop(client);
    gauge_back_to_zero(&h).await;
    until(BOUND, "the tool server saw its request closed", || async {
        tools.recorder().current() == 0
    })
    .await;
}

#[tokio::test]
async fn a_request_that_runs_past_its_wall_clock_cap_ends_with_a_clear_error() {
    let h = Harness::with_env(&[("REQUEST_TIMEOUT_SECONDS", "1")]).await;
    let (status, chunks) = tokio::time::timeout(BOUND, h.stream_chat("fake/stall", "hi"))
        .await
        .expect("the capped request ended");
    assert_eq!(status, 200);
    let error = chunks
        .iter()
        .filter_map(|c| serde_json::from_str::<serde_json::Value>(c).ok())
        .find(|c| c.get("error").is_some())
        .unwrap_or_else(|| panic!("an error chunk in {chunks:?}"));
    assert_eq!(error["error"]["code"], "request_timeout", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("REQUEST_TIMEOUT_SECONDS"),
        "{error}"
    );
    assert_eq!(chunks.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(h.app.metrics.get("request_timeouts", "wall_clock"), 1);
    until(BOUND, "the fake saw its stream closed", || async {
        h.fake.streams_abandoned() >= 1
    })
    .await;
}

#[tokio::test]
async fn a_request_that_waits_too_long_for_a_slot_is_503_with_retry_after() {
    let h = Harness::with_env(&[
        ("MAX_CONCURRENT_REQUESTS", "1"),
        ("MAX_QUEUE_WAIT_SECONDS", "1"),
    ])
    .await;
    let mut holder = TcpStream::connect(addr(&h)).await.unwrap();
    holder
        .write_all(&raw_chat(&h, "fake/stall", &[]))
        .await
        .unwrap();
    read_until(&mut holder, "three").await;
    let resp = tokio::time::timeout(
        BOUND,
        h.post_chat(&Harness::chat_body("fake/echo", "hi", true)),
    )
    .await
    .expect("the queued request was answered");
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "queue_timeout", "{body}");
    assert_eq!(h.app.metrics.get("requests_refused", "queue_timeout"), 1);
    drop(holder);
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_disconnected() {
    let h = Harness::with_env(&[("CLIENT_HEADER_TIMEOUT_SECONDS", "1")]).await;
    let mut slow = TcpStream::connect(addr(&h)).await.unwrap();
    slow.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\n")
        .await
        .unwrap();
    let trickle = async {
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if slow
                .write_all(format!("x-slow-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    };
    tokio::time::timeout(BOUND, trickle)
        .await
        .expect("the host closed the trickling connection");
    // A connection that sends nothing at all is closed too.
    let mut silent = TcpStream::connect(addr(&h)).await.unwrap();
    tokio::time::timeout(BOUND, read_to_close(&mut silent))
        .await
        .expect("the host closed the silent connection");
    until(BOUND, "both were counted", || async {
        h.app.metrics.get("client_timeouts", "header") >= 2
    })
    .await;
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_408() {
    let h = Harness::with_env(&[("CLIENT_BODY_TIMEOUT_SECONDS", "1")]).await;
    let mut slow = TcpStream::connect(addr(&h)).await.unwrap();
    slow.write_all(
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{{\"model\":",
            addr(&h)
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let answer = tokio::time::timeout(BOUND, read_until(&mut slow, "}}"))
        .await
        .expect("the host answered the slow body");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    assert_eq!(h.app.metrics.get("client_timeouts", "body"), 1);
}

#[tokio::test]
async fn bodies_beyond_the_in_flight_byte_budget_are_refused() {
    let h = Harness::with_env(&[
        ("MAX_REQUEST_BODY_BYTES", "2048"),
        ("MAX_INFLIGHT_BODY_BYTES", "2048"),
    ])
    .await;
    // An upload that sends 1,500 of its 2,000 bytes, then waits.
    let mut upload = TcpStream::connect(addr(&h)).await.unwrap();
    upload
        .write_all(
            format!(
                "POST /v1/chat/completions HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: 2000\r\n\r\n",
                addr(&h)
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    upload.write_all(&[b' '; 1500]).await.unwrap();
    until(BOUND, "the upload's bytes are charged", || async {
        h.app.body_budget.in_use() >= 1500
    })
    .await;
    let padded = Harness::chat_body("fake/echo", &"a".repeat(900), true);
    let resp = h.post_chat(&padded).await;
    assert_eq!(resp.status().as_u16(), 503);
    assert!(resp.headers().get("retry-after").is_some());
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "body_budget", "{body}");
    assert_eq!(h.app.metrics.get("requests_refused", "body_budget"), 1);
    // Once the upload is gone its bytes are free again.
    drop(upload);
    until(BOUND, "the budget is free again", || async {
        h.app.body_budget.in_use() == 0
    })
    .await;
    let (status, chunks) = h.stream_chat("fake/echo", &"a".repeat(900)).await;
    assert_eq!(status, 200, "{chunks:?}");
}

#[tokio::test]
async fn connections_beyond_max_connections_are_answered_503_and_closed() {
    let h = Harness::with_env(&[("MAX_CONNECTIONS", "3")]).await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(addr(&h)).await.unwrap());
    }
    let mut extra = TcpStream::connect(addr(&h)).await.unwrap();
    let answer = tokio::time::timeout(BOUND, read_to_close(&mut extra))
        .await
        .expect("the extra connection was answered and closed");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("too_many_connections"), "{answer}");
    assert_eq!(
        h.app.metrics.get("connections_refused", "max_connections"),
        1
    );
    // A freed connection slot serves again.
    drop(idle.pop());
    until(BOUND, "a new connection is served", || async {
        let mut c = TcpStream::connect(addr(&h)).await.unwrap();
        let _ = c
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .await;
        read_to_close(&mut c).await.starts_with("HTTP/1.1 200")
    })
    .await;
}

#[tokio::test]
async fn three_hundred_stalled_readers_and_three_hundred_slowloris_connections_do_not_stop_a_chat()
{
    let h = Harness::with_env(&[
        ("MAX_CONCURRENT_REQUESTS", "1000"),
        ("CLIENT_HEADER_TIMEOUT_SECONDS", "2"),
        ("CLIENT_WRITE_TIMEOUT_SECONDS", "1"),
    ])
    .await;
    // 300 clients that open a stream, take its head, then stop reading.
    let mut readers = Vec::new();
    for _ in 0..300 {
        let request = raw_chat(&h, "fake/stall", &[]);
        let a = addr(&h);
        readers.push(tokio::spawn(async move {
            let mut c = TcpStream::connect(a).await.unwrap();
            c.write_all(&request).await.unwrap();
            let mut buf = [0u8; 64];
            let _ = c.read(&mut buf).await;
            c
        }));
    }
    // 300 connections that start a request and never finish its headers.
    let mut slowloris = Vec::new();
    for _ in 0..300 {
        let mut c = TcpStream::connect(addr(&h)).await.unwrap();
        c.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\nx-slow: ")
            .await
            .unwrap();
        slowloris.push(c);
    }
    let (status, chunks) = tokio::time::timeout(BOUND, h.stream_chat("fake/echo", "still here"))
        .await
        .expect("a normal chat completes while the hostile clients hold their connections");
    assert_eq!(status, 200);
    assert_eq!(content_of(&chunks), "echo: still here");
    // Every slowloris connection is closed by the host.
    let closed = async {
        for mut c in slowloris {
            let mut buf = [0u8; 256];
            loop {
                match c.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
    };
    tokio::time::timeout(BOUND, closed)
        .await
        .expect("the host closed every slowloris connection");
    until(BOUND, "every slowloris connection was counted", || async {
        h.app.metrics.get("client_timeouts", "header") >= 300
    })
    .await;
    let mut held = Vec::new();
    for r in readers {
        held.push(r.await.unwrap());
    }
    drop(held);
    until(BOUND, "every stalled stream ended", || async {
        running(&h) == 0
    })
    .await;
}
