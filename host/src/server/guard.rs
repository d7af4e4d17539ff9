//! The browser guard, in front of every route.
//!
//! Threat handled: web pages on the operator's machine. A keyless host listens on loopback only,
//! but a browser on that machine can still be made to call it: a page of another site can send
//! requests to `127.0.0.1`, and a site whose DNS name is re-pointed at `127.0.0.1` (DNS
//! rebinding) can even read the answers as its own. So:
//!
//! - without client keys, a request whose `Host` is not a loopback name or address (`localhost`,
//!   `*.localhost`, `127.0.0.0/8`, `[::1]`, any port) is refused with 421: a rebinding page
//!   always sends its own name. A request without `Host` (no browser sends one) passes;
//! - in every mode, a request carrying an `Origin` (browsers send it on cross-site requests and
//!   on every POST) not listed in `CORS_ALLOWED_ORIGINS` is refused with 403, preflights
//!   included; a listed origin gets CORS response headers and working `OPTIONS` preflights;
//! - a `POST` whose body is not declared `application/json` is refused with 415, so a page's
//!   "simple" cross-site form or `text/plain` post never reaches the pipe.
//!
//! API clients (SDKs, curl, Open WebUI's server) send no `Origin` and are not affected.

use super::{RequestId, error::ApiError};
use crate::app::App;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// Longest piece of a caller's `Host` or `Origin` quoted back in an error.
const SHOWN_MAX_CHARS: usize = 100;

/// Request headers a listed origin's page may send.
const ALLOWED_HEADERS: &str = "authorization, content-type, x-request-id";
/// Response headers a listed origin's page may read.
const EXPOSED_HEADERS: &str = "x-request-id, retry-after";
/// How long a browser may cache a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

/// Whether a `Host` value (name or address, optional port) names this machine's loopback.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        // `[v6]` or `[v6]:port`.
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(valid_port);
        return port_ok && inside.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    }
    let (name, port_ok) = match host.rsplit_once(':') {
        Some((name, port)) => (name, valid_port(port)),
        None => (host, true),
    };
    if !port_ok {
        return false;
    }
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.strip_suffix(".localhost").is_some_and(|labels| {
            labels
                .split('.')
                .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        })
        || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

fn valid_port(port: &str) -> bool {
    !port.is_empty() && port.len() <= 5 && port.parse::<u16>().is_ok()
}

/// Whether a `Content-Type` value is JSON (parameters such as `charset` allowed).
pub fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

fn shown(value: &str) -> String {
    value.chars().take(SHOWN_MAX_CHARS).collect()
}

fn refuse(req: &Request, e: ApiError) -> Response {
    let id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    e.into_response_for(&id)
}

/// The host a request is addressed to: its `Host` header, else the URI's authority (HTTP/2).
fn addressed_host(req: &Request) -> Option<String> {
    match req.headers().get(header::HOST) {
        Some(v) => Some(String::from_utf8_lossy(v.as_bytes()).into_owned()),
        None => req.uri().authority().map(|a| a.as_str().to_owned()),
    }
}

/// The CORS headers every answer to a listed origin carries.
fn allow_origin(headers: &mut HeaderMap, origin: &HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.append(header::VARY, HeaderValue::from_static("origin"));
}

/// The middleware (see the module documentation).
pub async fn browser_guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if app.keys.is_open()
        && let Some(host) = addressed_host(&req)
        && !is_loopback_host(&host)
    {
        app.metrics.incr("requests_refused", "host_not_allowed");
        return refuse(&req, ApiError::HostNotAllowed(shown(&host)));
    }
    let origin = req.headers().get(header::ORIGIN).cloned();
    if let Some(origin) = &origin {
        let text = String::from_utf8_lossy(origin.as_bytes());
        let listed = app
            .config
            .cors_allowed_origins()
            .iter()
            .any(|o| o.eq_ignore_ascii_case(&text));
        if !listed {
            app.metrics.incr("requests_refused", "origin_not_allowed");
            return refuse(&req, ApiError::OriginNotAllowed(shown(&text)));
        }
        if req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            let mut resp = StatusCode::NO_CONTENT.into_response();
            let h = resp.headers_mut();
            allow_origin(h, origin);
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOWED_HEADERS),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(PREFLIGHT_MAX_AGE),
            );
            h.append(
                header::VARY,
                HeaderValue::from_static("access-control-request-method"),
            );
            h.append(
                header::VARY,
                HeaderValue::from_static("access-control-request-headers"),
            );
            return resp;
        }
    }
    let mut resp = if req.method() == Method::POST
        && !req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json)
    {
        app.metrics
            .incr("requests_refused", "unsupported_media_type");
        refuse(&req, ApiError::UnsupportedMediaType)
    } else {
        next.run(req).await
    };
    if let Some(origin) = &origin {
        let h = resp.headers_mut();
        allow_origin(h, origin);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_addresses_with_any_port_are_loopback() {
        for ok in [
            "localhost",
            "LOCALHOST:8080",
            "app.localhost",
            "a-b.c.localhost:3000",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.1.2.3:1",
            "[::1]",
            "[::1]:8080",
            "[0:0:0:0:0:0:0:1]:80",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "evil-localhost",
            ".localhost",
            "a..localhost",
            "0.0.0.0:8080",
            "10.0.0.1",
            "128.0.0.1",
            "127.1",
            "[::]:8080",
            "[::ffff:127.0.0.1]",
            "[::1",
            "[::1]8080",
            "localhost:",
            "localhost:99999",
            "localhost:80:80",
            "::1",
            "",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn json_content_types_may_carry_parameters() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json(" application/json ;charset=UTF-8"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
        assert!(!is_json("multipart/form-data; boundary=x"));
        assert!(!is_json("application/jsonx"));
        assert!(!is_json(""));
    }
}
