//! Readiness (`GET /readyz`): ready once the start-up warm-up has loaded the catalog, without any
//! user traffic; not ready while the catalog cannot be fetched, while the database (PostgreSQL
//! behind the fault proxy) or Redis (behind the fault proxy) does not answer, and ready again
//! once they do. No client key is needed.

use crate::harness::Harness;
use crate::shared_kv::{REDIS, fresh_pipe_id};
use fake_openrouter::fault_proxy::{FaultMode, FaultProxy};
use responses_pipe_host::catalog_warm_up::CatalogWarmUp;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Poll `/readyz` (bounded) until it answers `status`; that answer's report.
async fn ready_becomes(h: &Harness, status: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (now, report) = h.ready().await;
        if now == status {
            return report;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz did not turn {status}: {now} {report}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait (bounded) until the fake has received `n` catalog requests.
async fn models_requests_reach(h: &Harness, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while h.fake.models_requests() < n {
        assert!(Instant::now() < deadline, "the catalog was not requested");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The report of a ready host with this kv state.
fn ready_report(kv: &str) -> Value {
    json!({
        "ready": true,
        "component": "ok",
        "catalog": "ok",
        "database": "ok",
        "kv": kv,
        "shutting_down": false,
    })
}

/// Ready after the warm-up; while `proxy` refuses, not ready with `field` down and everything
/// else as before; ready again once it passes.
async fn readiness_follows(h: &Harness, proxy: &FaultProxy, field: &str, kv: &str) {
    let _warm_up = CatalogWarmUp::spawn(h.app.clone());
    assert_eq!(ready_becomes(h, 200).await, ready_report(kv));
    proxy.set_mode(FaultMode::Refuse);
    let mut expected = ready_report(kv);
    expected["ready"] = json!(false);
    expected[field] = json!("down");
    assert_eq!(ready_becomes(h, 503).await, expected);
    proxy.set_mode(FaultMode::Pass);
    assert_eq!(ready_becomes(h, 200).await, ready_report(kv));
}

#[tokio::test]
async fn the_start_up_warm_up_makes_the_host_ready_without_any_chat_or_key() {
    let h = Harness::with_env(&[("PIPE_API_KEYS", "ready-key-SECRET-1")]).await;
    let (status, report) = h.ready().await;
    assert_eq!(status, 503, "{report}");
    assert_eq!(report["catalog"], "not_loaded");
    assert_eq!(report["database"], "ok");
    let _warm_up = CatalogWarmUp::spawn(h.app.clone());
    assert_eq!(ready_becomes(&h, 200).await, ready_report("memory"));
    assert_eq!(
        h.fake.models_requests(),
        1,
        "one listing warmed the catalog"
    );
    assert!(
        h.fake.requests().iter().all(
            |r| r.path.starts_with("/api/v1/models") || r.path.starts_with("/api/v1/endpoints")
        ),
        "only the catalog was fetched: {:?}",
        h.fake
            .requests()
            .iter()
            .map(|r| &r.path)
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_model_listing_by_a_client_also_marks_the_catalog_loaded() {
    let h = Harness::start().await;
    assert_eq!(h.ready().await.0, 503);
    assert_eq!(h.models().await.0, 200);
    assert_eq!(h.ready().await, (200, ready_report("memory")));
}

#[tokio::test]
async fn not_ready_while_the_catalog_fails_and_ready_once_it_answers() {
    let h = Harness::start().await;
    h.fake.set_models_failing(true);
    let _warm_up = CatalogWarmUp::spawn(h.app.clone());
    // Two attempts: the warm-up retries after a failure.
    models_requests_reach(&h, 2).await;
    let (status, report) = h.ready().await;
    assert_eq!(status, 503, "{report}");
    assert_eq!(report["catalog"], "not_loaded");
    assert_eq!(report["ready"], false);
    h.fake.set_models_failing(false);
    assert_eq!(ready_becomes(&h, 200).await, ready_report("memory"));
}

#[tokio::test]
async fn a_database_that_stops_answering_makes_the_host_not_ready_until_it_is_back() {
    let (proxy, h) = Harness::behind_postgres_proxy(&[]).await;
    readiness_follows(&h, &proxy, "database", "memory").await;
}

#[tokio::test]
async fn redis_that_stops_answering_makes_the_host_not_ready_until_it_is_back() {
    let proxy = FaultProxy::start(REDIS.parse().unwrap()).await.unwrap();
    let url = format!("redis://{}", proxy.addr());
    let pipe_id = fresh_pipe_id();
    let h = Harness::with_env(&[
        ("REDIS_URL", &url),
        ("PIPE_ID", &pipe_id),
        ("REDIS_TIMEOUT_MS", "500"),
    ])
    .await;
    readiness_follows(&h, &proxy, "kv", "ok").await;
}
