//! Conformance: a hostile component tries every escape; each is refused or stopped with a typed
//! error, and the same host keeps serving.

use crate::harness::{Harness, Options, content_of};
use responses_pipe_host::egress::resolver::StaticResolver;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

fn hostile() -> Vec<u8> {
    std::fs::read(env!("HOSTILE_WASM")).unwrap()
}

/// A loopback listener that counts the connections it accepts.
async fn canary() -> (u16, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
        }
    });
    (port, count)
}

async fn attempt(h: &Harness, mode: &str, target: &str) -> (u16, String) {
    let resp = h.post_chat(&Harness::chat_body(mode, target, false)).await;
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    (
        status,
        v["error"]["message"].as_str().unwrap_or("").to_string(),
    )
}

/// The host still runs a well-behaved call after whatever came before.
async fn still_serving(h: &Harness) {
    let (status, chunks) = h.stream_chat("hostile/healthy", "").await;
    assert_eq!(status, 200);
    assert_eq!(content_of(&chunks), "reached: status 200");
    assert_eq!(h.health().await, 200);
}

#[tokio::test]
async fn network_escapes_are_refused_with_typed_errors_and_reach_nobody() {
    let (canary_port, canary_hits) = canary().await;
    let (named_port, named_hits) = canary().await;
    let resolver = StaticResolver::new([(
        "api.allowed.test".to_string(),
        vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
    )]);
    let h = Harness::with(Options {
        component: Some(hostile()),
        resolver: Some(Arc::new(resolver)),
        env: vec![(
            "EGRESS_ALLOWED_HOSTS",
            format!("api.allowed.test:{named_port}"),
        )],
        ..Options::default()
    })
    .await;

    // A loopback port that is not on the allowlist.
    let (status, msg) = attempt(
        &h,
        "hostile/fetch",
        &format!("http://127.0.0.1:{canary_port}/"),
    )
    .await;
    assert_eq!(status, 418);
    assert!(msg.contains("HttpRequestDenied"), "{msg}");
    // Alternative spellings of loopback and a metadata address.
    for url in [
        format!("http://2130706433:{canary_port}/"),
        format!("http://0x7f.1:{canary_port}/"),
        format!("http://[::ffff:127.0.0.1]:{canary_port}/"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://localhost/".to_string(),
    ] {
        let (_, msg) = attempt(&h, "hostile/fetch", &url).await;
        assert!(msg.contains("HttpRequestDenied"), "{url}: {msg}");
    }
    // A non-http scheme.
    let (_, msg) = attempt(&h, "hostile/fetch", "gopher://127.0.0.1:70/").await;
    assert!(msg.starts_with("refused"), "{msg}");
    // An allowlisted name that resolves to a private address.
    let (_, msg) = attempt(
        &h,
        "hostile/fetch",
        &format!("http://api.allowed.test:{named_port}/"),
    )
    .await;
    assert!(msg.contains("DestinationIpProhibited"), "{msg}");
    // Raw sockets.
    let (_, msg) = attempt(&h, "hostile/socket", &format!("127.0.0.1:{canary_port}")).await;
    assert!(msg.contains("socket refused"), "{msg}");

    assert_eq!(
        canary_hits.load(Ordering::SeqCst),
        0,
        "the canary saw no connection"
    );
    assert_eq!(
        named_hits.load(Ordering::SeqCst),
        0,
        "the private address behind the name saw no connection"
    );
    assert!(
        h.app.metrics.total("egress_refused") >= 7,
        "refusals are counted: {}",
        h.app.metrics.render()
    );
    still_serving(&h).await;
}

#[tokio::test]
async fn a_declared_tool_server_is_not_on_the_components_own_allowlist() {
    // The tool server is on loopback and allowed to be (EGRESS_PRIVATE_HOSTS), exactly what a
    // local tool server needs; the component still cannot reach it except through the host's
    // tool transport. Inline operations: the host itself does not call it at start-up.
    let (tool_port, tool_hits) = canary().await;
    let toml = format!(
        "[[tool_servers]]\nname = \"calc\"\nkind = \"openapi\"\nurl = \"http://127.0.0.1:{tool_port}\"\n\
         [tool_servers.operations.\"/add\".post]\noperationId = \"add\"\n"
    );
    let h = Harness::with(Options {
        component: Some(hostile()),
        config_toml: Some(toml),
        env: vec![("EGRESS_PRIVATE_HOSTS", format!("127.0.0.1:{tool_port}"))],
        ..Options::default()
    })
    .await;
    assert!(
        h.app
            .config
            .host_egress_allowed()
            .contains(&("127.0.0.1".to_string(), tool_port)),
        "the host's tool transport may reach it"
    );
    for url in [
        format!("http://127.0.0.1:{tool_port}/add"),
        format!("http://127.0.0.1:{tool_port}/"),
    ] {
        let (status, msg) = attempt(&h, "hostile/fetch", &url).await;
        assert_eq!(status, 418, "{url}: {msg}");
        assert!(msg.contains("HttpRequestDenied"), "{url}: {msg}");
    }
    assert_eq!(
        tool_hits.load(Ordering::SeqCst),
        0,
        "the tool server saw no connection from the component"
    );
    still_serving(&h).await;
}

#[tokio::test]
async fn files_outside_the_preopen_are_unreachable() {
    let h = Harness::with(Options {
        component: Some(hostile()),
        ..Options::default()
    })
    .await;
    for path in [
        "/etc/passwd",
        "/data/../etc/passwd",
        "../../etc/passwd",
        "/proc/self/environ",
    ] {
        let (_, msg) = attempt(&h, "hostile/read-file", path).await;
        assert!(msg.starts_with("file refused"), "{path}: {msg}");
    }
    still_serving(&h).await;
}

#[tokio::test]
async fn an_endless_loop_is_stopped_by_the_cpu_budget() {
    let h = Harness::with(Options {
        component: Some(hostile()),
        env: vec![("GUEST_CPU_BUDGET_MS", "300".into())],
        ..Options::default()
    })
    .await;
    let resp = h
        .post_chat(&Harness::chat_body("hostile/spin", "", false))
        .await;
    assert_eq!(resp.status().as_u16(), 500);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "guest_cpu_exceeded", "{v}");
    still_serving(&h).await;
}

#[tokio::test]
async fn a_memory_bomb_is_stopped_by_the_memory_cap() {
    let h = Harness::with(Options {
        component: Some(hostile()),
        env: vec![("GUEST_MEMORY_LIMIT_MB", "64".into())],
        ..Options::default()
    })
    .await;
    let resp = h
        .post_chat(&Harness::chat_body("hostile/membomb", "", false))
        .await;
    assert_eq!(resp.status().as_u16(), 500);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "guest_memory_exceeded", "{v}");
    still_serving(&h).await;
}

#[tokio::test]
async fn oversized_events_and_traps_end_only_their_request() {
    let h = Harness::with(Options {
        component: Some(hostile()),
        ..Options::default()
    })
    .await;
    let (_, msg) = attempt(&h, "hostile/big-emit", "").await;
    assert!(msg.contains("TooLarge"), "{msg}");
    let resp = h
        .post_chat(&Harness::chat_body("hostile/trap", "", true))
        .await;
    assert_eq!(resp.status().as_u16(), 500);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "guest_trap", "{v}");
    still_serving(&h).await;
}

/// POST a chat as Open WebUI would (identity headers); the status and the body text.
async fn post_as_open_webui(h: &Harness, model: &str, stream: bool) -> (u16, String) {
    let resp = h
        .client
        .post(format!("{}/v1/chat/completions", h.url))
        .header("X-OpenWebUI-User-Id", "user-1")
        .header("X-OpenWebUI-Chat-Id", "chat-1")
        .json(&Harness::chat_body(model, "", stream))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// The error id in `hostile guest: <kind> (<id>)`, the hostile guest's rendering.
fn hostile_error_id(text: &str, kind: &str) -> String {
    let prefix = format!("hostile guest: {kind} (");
    let start = text.find(&prefix).unwrap_or_else(|| panic!("{text}")) + prefix.len();
    text[start..].chars().take_while(|c| *c != ')').collect()
}

#[tokio::test]
async fn open_webui_gets_the_internal_error_answer_from_a_fresh_instance_after_a_trap() {
    let h = Harness::with(Options {
        component: Some(hostile()),
        ..Options::default()
    })
    .await;
    // Before any output: a whole answer (streamed and not), not an HTTP error.
    let (status, body) = post_as_open_webui(&h, "hostile/trap", true).await;
    assert_eq!(status, 200, "{body}");
    let chunks = crate::harness::sse_data(&body);
    let content = content_of(&chunks);
    let id = hostile_error_id(&content, "guest_trap");
    assert_eq!(id.len(), 16, "{content}");
    assert_eq!(chunks.last().map(String::as_str), Some("[DONE]"));
    assert!(
        crate::harness::logs_text().contains(&id),
        "the error id is in the host log"
    );
    let (status, body) = post_as_open_webui(&h, "hostile/trap", false).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    hostile_error_id(text, "guest_trap");
    // After output: the partial answer, then the explanation, finishing normally.
    let (status, body) = post_as_open_webui(&h, "hostile/trap-midway", true).await;
    assert_eq!(status, 200, "{body}");
    let chunks = crate::harness::sse_data(&body);
    let content = content_of(&chunks);
    assert!(
        content.starts_with("partial answer\n\nhostile guest: guest_trap ("),
        "{content}"
    );
    assert!(!body.contains("\"error\""), "{body}");
    // Plain clients still get the error itself.
    let resp = h
        .post_chat(&Harness::chat_body("hostile/trap-midway", "", true))
        .await;
    let body = resp.text().await.unwrap();
    assert!(body.contains("\"guest_trap\""), "{body}");
    still_serving(&h).await;
}
