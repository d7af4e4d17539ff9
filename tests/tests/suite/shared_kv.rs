//! The shared kv on the real Redis (127.0.0.1:6379): the capability's operations, keys under
//! `PIPE_ID` with a TTL on every one, state shared by two hosts, and the fallback to memory
//! while Redis is cut (through the fault proxy) with the return to Redis once it answers. Each
//! test uses its own `PIPE_ID`, so tests never see each other's keys.

use crate::harness::{Harness, content_of};
use fake_openrouter::fault_proxy::{FaultMode, FaultProxy};
use responses_pipe_host::config::Config;
use responses_pipe_host::kv::KvBackend;
use responses_pipe_host::metrics::Metrics;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) const REDIS: &str = "127.0.0.1:6379";

/// A `PIPE_ID` no other test uses.
pub(crate) fn fresh_pipe_id() -> String {
    format!("t{}", &uuid::Uuid::now_v7().simple().to_string()[..24])
}

/// A kv backend built from settings, as the host builds it.
fn backend(env: &[(&str, String)]) -> (KvBackend, Arc<Metrics>) {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let config = Config::load(None, &|name| env.get(name).cloned()).unwrap();
    let metrics = Arc::new(Metrics::default());
    (
        KvBackend::from_config(&config, metrics.clone()).unwrap(),
        metrics,
    )
}

fn redis_env(url: &str, pipe_id: &str, timeout_ms: u64) -> Vec<(&'static str, String)> {
    vec![
        ("REDIS_URL", url.to_owned()),
        ("PIPE_ID", pipe_id.to_owned()),
        ("REDIS_TIMEOUT_MS", timeout_ms.to_string()),
    ]
}

async fn raw_redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://{REDIS}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Every key Redis holds under `pipe_id`, with its remaining TTL in ms.
async fn keys_with_ttl(pipe_id: &str) -> Vec<(String, i64)> {
    let mut conn = raw_redis().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{pipe_id}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut out = Vec::new();
    for key in keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        out.push((key, ttl));
    }
    out.sort();
    out
}

/// Wait (bounded) until `check` holds.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn without_redis_url_kv_stays_in_memory() {
    let (kv, _) = backend(&[]);
    assert_eq!(kv.kind(), "memory");
}

#[tokio::test]
async fn operations_on_redis_share_state_under_the_pipe_id_and_every_key_has_a_ttl() {
    let id = fresh_pipe_id();
    let url = format!("redis://{REDIS}");
    let (a, _) = backend(&redis_env(&url, &id, 1000));
    let (b, _) = backend(&redis_env(&url, &id, 1000));
    let (other, _) = backend(&redis_env(&url, &fresh_pipe_id(), 1000));
    assert_eq!(a.kind(), "redis");

    // Values: written by one host, read by the other; not by a pipe with another id.
    a.set("catalog", b"models".to_vec(), Some(60_000))
        .await
        .unwrap();
    a.set("forever", b"x".to_vec(), None).await.unwrap();
    assert_eq!(
        b.get("catalog", 100).await.unwrap(),
        Some(b"models".to_vec())
    );
    assert_eq!(other.get("catalog", 100).await.unwrap(), None);
    assert!(matches!(
        b.get("catalog", 3).await,
        Err(responses_pipe_host::bindings::kv::KvError::TooLarge)
    ));
    // Counters add up across hosts; a non-integer is refused, not turned into a fallback.
    assert_eq!(a.incr("failures", 2, Some(60_000)).await.unwrap(), 2);
    assert_eq!(b.incr("failures", 3, Some(60_000)).await.unwrap(), 5);
    assert!(b.incr("catalog", 1, None).await.is_err());
    // Locks: exclusive across hosts, released only by their token.
    let token = a.lock("refresh", 60_000).await.unwrap().unwrap();
    assert_eq!(b.lock("refresh", 60_000).await.unwrap(), None);
    assert!(!b.unlock("refresh", "not-the-token").await.unwrap());
    assert!(a.unlock("refresh", &token).await.unwrap());
    let again = b.lock("refresh", 60_000).await.unwrap().unwrap();
    assert_ne!(again, token);

    // Every key lives under the pipe id and has a TTL (none lives forever).
    let keys = keys_with_ttl(&id).await;
    let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("{id}:kv:catalog"),
            format!("{id}:kv:failures"),
            format!("{id}:kv:forever"),
            format!("{id}:lock:refresh"),
        ]
    );
    for (key, ttl) in &keys {
        assert!(*ttl > 0, "{key} has no TTL ({ttl})");
    }
    let forever = keys.iter().find(|(k, _)| k.ends_with(":forever")).unwrap();
    assert!(
        forever.1 > 23 * 3600 * 1000,
        "a value without a TTL gets the default one"
    );

    assert!(b.delete("catalog").await.unwrap());
    assert!(!a.delete("catalog").await.unwrap());
    assert_eq!(a.get("catalog", 100).await.unwrap(), None);
}

#[tokio::test]
async fn a_cut_redis_sends_kv_to_memory_and_it_returns_to_redis_by_itself() {
    let proxy = FaultProxy::start(REDIS.parse().unwrap()).await.unwrap();
    let id = fresh_pipe_id();
    let (kv, metrics) = backend(&redis_env(&format!("redis://{}", proxy.addr()), &id, 200));
    kv.set("shared", b"on-redis".to_vec(), Some(60_000))
        .await
        .unwrap();
    assert_eq!(metrics.total("kv_fallbacks"), 0);

    // Redis goes away: commands keep working, on memory, and say so in the counters.
    proxy.set_mode(FaultMode::Refuse);
    let started = Instant::now();
    assert_eq!(kv.get("shared", 100).await.unwrap(), None);
    kv.set("local", b"in-memory".to_vec(), Some(60_000))
        .await
        .unwrap();
    assert_eq!(
        kv.get("local", 100).await.unwrap(),
        Some(b"in-memory".to_vec())
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(metrics.get("kv_fallbacks", "redis_unavailable") >= 3);
    assert_eq!(metrics.get("kv_redis_transitions", "down"), 1);

    // A Redis that hangs instead of refusing: each command gives up within its budget.
    proxy.set_mode(FaultMode::Stall);
    let started = Instant::now();
    assert!(kv.incr("n", 1, None).await.is_ok());
    assert!(started.elapsed() < Duration::from_secs(2));

    // Redis is back: the background probe notices and commands go to Redis again.
    proxy.set_mode(FaultMode::Pass);
    eventually("kv is back on Redis", async || {
        kv.get("shared", 100).await.ok().flatten() == Some(b"on-redis".to_vec())
    })
    .await;
    assert_eq!(metrics.get("kv_redis_transitions", "up"), 1);
    // What was written to memory meanwhile stays local; Redis never saw it.
    assert_eq!(kv.get("local", 100).await.unwrap(), None);
}

#[tokio::test]
async fn redis_down_at_start_up_does_not_stop_the_host() {
    // Nothing listens on this port (the proxy refuses every connection).
    let proxy = FaultProxy::start(REDIS.parse().unwrap()).await.unwrap();
    proxy.set_mode(FaultMode::Refuse);
    let (kv, metrics) = backend(&redis_env(
        &format!("redis://{}", proxy.addr()),
        &fresh_pipe_id(),
        200,
    ));
    kv.set("k", b"v".to_vec(), None).await.unwrap();
    assert_eq!(kv.get("k", 10).await.unwrap(), Some(b"v".to_vec()));
    assert!(metrics.total("kv_fallbacks") >= 1);
    proxy.set_mode(FaultMode::Pass);
    eventually("kv reaches Redis once it answers", async || {
        metrics.get("kv_redis_transitions", "up") == 1
    })
    .await;
    assert_eq!(kv.get("k", 10).await.unwrap(), None, "now served by Redis");
}

#[tokio::test]
async fn an_idle_connection_outlives_the_command_timeout() {
    // The client never times out an idle connection: after idling for many times the command
    // budget, the next command is still served by Redis (no fallback).
    let id = fresh_pipe_id();
    let (kv, metrics) = backend(&redis_env(&format!("redis://{REDIS}"), &id, 50));
    kv.set("k", b"v".to_vec(), Some(60_000)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(kv.get("k", 10).await.unwrap(), Some(b"v".to_vec()));
    assert_eq!(metrics.total("kv_fallbacks"), 0);
}

#[tokio::test]
async fn a_connection_the_server_closed_while_idle_is_redialled() {
    // As when Redis (or a proxy in front of it) closes idle client connections: the open
    // connection is cut while nothing is in flight; the host gets back onto Redis by itself.
    let proxy = FaultProxy::start(REDIS.parse().unwrap()).await.unwrap();
    let id = fresh_pipe_id();
    let (kv, _) = backend(&redis_env(&format!("redis://{}", proxy.addr()), &id, 200));
    kv.set("k", b"v".to_vec(), Some(60_000)).await.unwrap();
    let accepted = proxy.accepted();
    proxy.set_mode(FaultMode::Refuse);
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.set_mode(FaultMode::Pass);
    eventually("a new connection serves the value", async || {
        kv.get("k", 10).await.ok().flatten() == Some(b"v".to_vec())
    })
    .await;
    assert!(proxy.accepted() > accepted, "the host dialled again");
}

#[tokio::test]
async fn a_breaker_opened_through_one_host_refuses_on_another() {
    let id = fresh_pipe_id();
    let env = [
        ("REDIS_URL", format!("redis://{REDIS}")),
        ("PIPE_ID", id),
        ("BREAKER_MAX_FAILURES", "2".to_owned()),
    ];
    let env: Vec<(&'static str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = Harness::with_env(&env).await;
    let b = Harness::with_env(&env).await;
    let user = [("X-OpenWebUI-User-Id", "user-shared")];
    for _ in 0..2 {
        let (status, _) = a.stream_chat_with("fake/status-502", "hi", &user).await;
        assert_eq!(status, 200);
    }
    let (status, chunks) = b.stream_chat_with("fake/echo", "hi", &user).await;
    assert_eq!(status, 200);
    assert!(
        content_of(&chunks).contains("Temporarily disabled due to repeated errors"),
        "{chunks:?}"
    );
    assert!(
        b.posted_bodies("/responses").is_empty(),
        "host B refused without asking OpenRouter"
    );
    // Another user on host B is not affected.
    let (_, chunks) = b
        .stream_chat_with("fake/echo", "hi", &[("X-OpenWebUI-User-Id", "user-other")])
        .await;
    assert_eq!(content_of(&chunks), "echo: hi");
}

/// Every cost snapshot Redis holds for `pipe_id`: its TTL in seconds and its value.
async fn cost_snapshots(pipe_id: &str) -> Vec<(String, i64, serde_json::Value)> {
    let mut conn = raw_redis().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("costs:{pipe_id}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut out = Vec::new();
    for key in keys {
        let ttl: i64 = redis::cmd("TTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let value: String = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        out.push((key, ttl, serde_json::from_str(&value).unwrap()));
    }
    out
}

#[tokio::test]
async fn each_answer_with_usage_leaves_one_cost_snapshot_with_its_ttl() {
    let id = fresh_pipe_id();
    let env = [
        ("REDIS_URL", format!("redis://{REDIS}")),
        ("PIPE_ID", id.clone()),
        ("COSTS_REDIS_DUMP", "true".to_owned()),
        ("COSTS_REDIS_TTL_SECONDS", "120".to_owned()),
    ];
    let env: Vec<(&'static str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let h = Harness::with_env(&env).await;
    let user = [
        ("X-OpenWebUI-User-Id", "u-cost"),
        ("X-OpenWebUI-User-Email", "ada@example.com"),
        ("X-OpenWebUI-User-Name", "Ada"),
        ("X-OpenWebUI-Chat-Id", "chat-cost"),
    ];
    let (status, _) = h.stream_chat_with("fake/echo", "hi", &user).await;
    assert_eq!(status, 200);
    // Without an email (a required field) no snapshot is written; the skip is counted.
    let (status, _) = h
        .stream_chat_with("fake/echo", "hi", &[("X-OpenWebUI-User-Id", "u-anon")])
        .await;
    assert_eq!(status, 200);
    eventually("the snapshot is written", async || {
        h.app.metrics.get("cost_snapshots", "written") == 1
    })
    .await;
    assert_eq!(h.app.metrics.get("cost_snapshots", "missing_field"), 1);
    let snaps = cost_snapshots(&id).await;
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let (key, ttl, v) = &snaps[0];
    assert!(key.starts_with(&format!("costs:{id}:u-cost:")), "{key}");
    assert!(*ttl > 0 && *ttl <= 120, "{ttl}");
    assert_eq!(v["guid"], "u-cost");
    assert_eq!(v["email"], "ada@example.com");
    assert_eq!(v["name"], "Ada");
    assert_eq!(v["model"], "fake/echo");
    assert_eq!(v["kind"], "generation");
    assert_eq!(v["chat_id"], "chat-cost");
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0, "{v}");
    assert!(v["ts"].as_u64().unwrap() > 1_700_000_000);
}

#[tokio::test]
async fn cost_snapshots_without_redis_stop_the_start_up() {
    let env: HashMap<String, String> = [("COSTS_REDIS_DUMP".to_owned(), "true".to_owned())].into();
    let e = Config::load(None, &|name| env.get(name).cloned()).unwrap_err();
    assert!(
        e.to_string()
            .contains("COSTS_REDIS_DUMP=true needs REDIS_URL"),
        "{e}"
    );
}
