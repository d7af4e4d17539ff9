//! The browser guard that keeps web pages on the same machine out, through the real host: a keyless
//! host answers only requests addressed to loopback (`Host`), an `Origin` must be listed and a listed
//! one gets CORS, and a POST whose body is not declared JSON is 415.

use crate::callers::{chat, models, send, sent, streamed};
use crate::harness::{Harness, content_of, sse_data};
use serde_json::Value;

#[tokio::test]
async fn a_keyless_host_answers_only_requests_addressed_to_loopback() {
    let h = Harness::start().await;
    let port = h.url.rsplit(':').next().unwrap().to_string();
    for host in [
        format!("localhost:{port}"),
        "LOCALHOST".to_string(),
        format!("app.localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "127.9.9.9".to_string(),
        format!("[::1]:{port}"),
    ] {
        let a = models(&h, None, &[("host", host.as_str())]).await;
        assert_eq!(a.status, 200, "{host}: {}", a.text);
    }
    let before = sent(&h).len();
    for host in [
        format!("evil.example:{port}"),
        "rebind.attacker.test".to_string(),
        format!("0.0.0.0:{port}"),
        format!("192.168.1.5:{port}"),
    ] {
        let a = models(&h, None, &[("host", host.as_str())]).await;
        assert_eq!(a.status, 421, "{host}: {}", a.text);
        assert_eq!(a.code(), "host_not_allowed");
        assert!(a.header("x-request-id").is_some());
        let c = chat(&h, None, &[("host", host.as_str())], &streamed("hi")).await;
        assert_eq!(c.status, 421, "{host}: {}", c.text);
        let health = send(
            &h,
            reqwest::Method::GET,
            "/healthz",
            None,
            &[("host", host.as_str())],
            None,
        )
        .await;
        assert_eq!(health.status, 421, "{host}");
    }
    assert_eq!(sent(&h).len(), before, "nothing reached OpenRouter");
}

#[tokio::test]
async fn an_origin_must_be_listed_and_a_listed_one_gets_cors() {
    for keyed in [false, true] {
        let mut env = vec![("CORS_ALLOWED_ORIGINS", "https://app.example")];
        if keyed {
            env.push(("PIPE_API_KEYS", "cors-key"));
        }
        let h = Harness::with_env(&env).await;
        let key = keyed.then_some("cors-key");
        // An unlisted origin: refused, whatever the request.
        for origin in ["https://evil.example", "null", "http://localhost:3000"] {
            let a = models(&h, key, &[("origin", origin)]).await;
            assert_eq!(a.status, 403, "{origin}: {}", a.text);
            assert_eq!(a.code(), "origin_not_allowed");
            assert!(a.header("access-control-allow-origin").is_none());
            let c = chat(&h, key, &[("origin", origin)], &streamed("hi")).await;
            assert_eq!(c.status, 403, "{origin}");
            let pre = send(
                &h,
                reqwest::Method::OPTIONS,
                "/v1/chat/completions",
                None,
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                ],
                None,
            )
            .await;
            assert_eq!(pre.status, 403, "{origin}: preflight");
        }
        assert!(sent(&h).is_empty());
        // The listed origin: a working preflight, then CORS headers on the answer.
        let pre = send(
            &h,
            reqwest::Method::OPTIONS,
            "/v1/chat/completions",
            None,
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "authorization, content-type",
                ),
            ],
            None,
        )
        .await;
        assert_eq!(pre.status, 204, "{}", pre.text);
        assert_eq!(
            pre.header("access-control-allow-origin"),
            Some("https://app.example")
        );
        let methods = pre.header("access-control-allow-methods").unwrap();
        assert!(methods.contains("POST"), "{methods}");
        let allowed = pre.header("access-control-allow-headers").unwrap();
        assert!(
            allowed.contains("authorization") && allowed.contains("content-type"),
            "{allowed}"
        );
        let a = chat(
            &h,
            key,
            &[("origin", "https://app.example")],
            &streamed("hi"),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(
            a.header("access-control-allow-origin"),
            Some("https://app.example")
        );
        assert!(
            a.header("access-control-expose-headers")
                .is_some_and(|h| h.contains("x-request-id"))
        );
        assert_eq!(content_of(&sse_data(&a.text)), "echo: hi");
        // Without `Origin` (API clients) nothing changes.
        let plain = chat(&h, key, &[], &streamed("hi")).await;
        assert_eq!(plain.status, 200);
        assert!(plain.header("access-control-allow-origin").is_none());
    }
}

#[tokio::test]
async fn a_post_whose_body_is_not_declared_json_is_415() {
    let h = Harness::start().await;
    let body = serde_json::to_vec(&streamed("hi")).unwrap();
    let post = |content_type: Option<&'static str>| {
        let mut req = h
            .client
            .post(format!("{}/v1/chat/completions", h.url))
            .body(body.clone());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap())
        }
    };
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let (status, text) = post(ct).await;
        assert_eq!(status, 415, "{ct:?}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["code"], "unsupported_media_type");
    }
    assert!(sent(&h).is_empty());
    let (status, text) = post(Some("application/json; charset=utf-8")).await;
    assert_eq!(status, 200, "{text}");
}
