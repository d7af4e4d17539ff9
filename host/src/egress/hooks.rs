//! The per-instance `wasi:http` hooks: the second enforcement layer of the egress gate, and the
//! only place the OpenRouter API key is attached to a request.
//!
//! Threat: the component must never see or exfiltrate the API key, and must not reach anything
//! off the allowlist. The component cannot set `authorization`, `proxy-authorization`, `cookie`
//! or `host` (forbidden headers, refused by wasmtime when the component builds its headers); the
//! hook strips them again anyway, sets `Host` from the judged canonical authority, and adds
//! `Authorization: Bearer <key>` only when the request's scheme and canonical authority are
//! BASE_URL's, so a guest bug or a hostile URL cannot carry the key to another allowlisted host.
//! The key is held as a `SecretString` and a sensitive `HeaderValue`, and is never logged.
//!
//! The first enforcement layer, the shadowed `outgoing-handler.handle`, is in `handle`.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use http::header::{self, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;
use wasmtime_wasi_http::{
    DEFAULT_FORBIDDEN_HEADERS, Error, ForbiddenHeaderFilter, RequestOptions, WasiBody,
    WasiHttpHooks,
};

use super::client::EgressClient;
use super::policy::{Authority, Denial, EgressPolicy};
use super::refusal::{loggable_authority, record_refusal};
use crate::metrics::Metrics;

/// Headers the component may not set, on top of wasmtime's defaults: credentials belong to the
/// host, and `Host` is derived from the judged authority.
pub const EXTRA_FORBIDDEN_HEADERS: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
    header::HOST,
];

fn is_forbidden(name: &HeaderName) -> bool {
    DEFAULT_FORBIDDEN_HEADERS.contains(name) || EXTRA_FORBIDDEN_HEADERS.contains(name)
}

/// What to send as `Authorization` to the key authority.
enum KeyHeader {
    /// No key configured: nothing is added.
    Absent,
    /// `Bearer <key>`, marked sensitive.
    Ready(HeaderValue),
    /// The key has characters a header cannot carry; requests to the key authority fail.
    Unusable,
}

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), Error>> + Send>;

/// The hooks object one component instance's `WasiHttpCtxView` points at.
pub struct GateHooks {
    client: Arc<EgressClient>,
    policy: Arc<EgressPolicy>,
    metrics: Arc<Metrics>,
    key: KeyHeader,
    key_authority: Authority,
    key_https: bool,
    request_id: String,
}

impl fmt::Debug for GateHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = match self.key {
            KeyHeader::Absent => "absent",
            KeyHeader::Ready(_) => "[redacted]",
            KeyHeader::Unusable => "unusable",
        };
        f.debug_struct("GateHooks")
            .field("key", &key)
            .field("key_authority", &self.key_authority)
            .field("key_https", &self.key_https)
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

impl GateHooks {
    /// Hooks for one instance. `key_authority`/`key_https` are BASE_URL's canonical authority and
    /// scheme; `api_key` goes only there. `request_id` tags every egress log line.
    pub fn new(
        client: Arc<EgressClient>,
        api_key: Option<SecretString>,
        key_authority: Authority,
        key_https: bool,
        request_id: String,
    ) -> Self {
        let key = match api_key {
            None => KeyHeader::Absent,
            Some(secret) => {
                match HeaderValue::from_str(&format!("Bearer {}", secret.expose_secret())) {
                    Ok(mut value) => {
                        value.set_sensitive(true);
                        KeyHeader::Ready(value)
                    }
                    Err(_) => KeyHeader::Unusable,
                }
            }
        };
        Self {
            policy: Arc::clone(client.policy()),
            metrics: Arc::clone(client.metrics()),
            client,
            key,
            key_authority,
            key_https,
            request_id,
        }
    }

    /// Judge the component's requests by `policy` instead of the client's own (the component's
    /// allowlist is narrower than the host's: tool servers are reachable only through the tool
    /// transport). The client still checks its own policy and the addresses it dials.
    pub fn with_policy(mut self, policy: Arc<EgressPolicy>) -> Self {
        self.policy = policy;
        self
    }

    fn refuse(&self, denial: Denial, authority: &str) -> SendFuture {
        record_refusal(&self.metrics, &denial, authority);
        let err = denial.to_wasi_error();
        Box::new(async move { Err(err) })
    }
}

impl WasiHttpHooks for GateHooks {
    fn is_forbidden_header(&mut self, name: &HeaderName) -> bool {
        is_forbidden(name)
    }

    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        Arc::new(is_forbidden)
    }

    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        let target = match self.policy.check_uri(request.uri()) {
            Ok(target) => target,
            Err(denial) => {
                let shown = loggable_authority(request.uri());
                return self.refuse(denial, &shown);
            }
        };
        let headers = request.headers_mut();
        // wasmtime already refused these from the component; strip them again so nothing the
        // component chose (including the `Host` wasmtime copies from its authority) goes out.
        for name in DEFAULT_FORBIDDEN_HEADERS
            .iter()
            .chain(EXTRA_FORBIDDEN_HEADERS.iter())
        {
            headers.remove(name);
        }
        match HeaderValue::from_str(&target.request_authority()) {
            Ok(host) => {
                headers.insert(header::HOST, host);
            }
            Err(_) => return Box::new(async { Err(Error::HttpRequestUriInvalid) }),
        }
        if target.scheme_https == self.key_https && target.authority == self.key_authority {
            match &self.key {
                KeyHeader::Absent => {}
                KeyHeader::Ready(value) => {
                    headers.insert(header::AUTHORIZATION, value.clone());
                }
                KeyHeader::Unusable => {
                    tracing::error!(
                        "error.type" = "api_key_unusable",
                        "the API key cannot be sent as a header value"
                    );
                    return Box::new(async { Err(Error::ConfigurationError) });
                }
            }
        }
        let client = Arc::clone(&self.client);
        let span = tracing::debug_span!(
            "egress",
            request_id = %self.request_id,
            authority = %target.authority,
        );
        Box::new(
            async move {
                let response = client.send(request, options).await?;
                // The pooled client drives the connection itself; there is no per-request I/O
                // future to hand back.
                let io: IoFuture = Box::new(async { Ok(()) });
                Ok((response, io))
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::client::EgressLimits;
    use crate::egress::resolver::StaticResolver;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty, Full};
    use hyper::body::Incoming;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use std::convert::Infallible;
    use std::pin::Pin;
    use std::sync::Mutex;
    use std::time::Duration;
    use tokio::net::TcpListener;

    const KEY: &str = "sk-or-v1-test-secret";

    /// A loopback HTTP server that records the headers of every request it receives.
    async fn recording_server() -> (u16, Arc<Mutex<Vec<http::HeaderMap>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let record = Arc::clone(&record);
                tokio::spawn(async move {
                    let service = service_fn(move |req: http::Request<Incoming>| {
                        record.lock().unwrap().push(req.headers().clone());
                        async {
                            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                                b"ok",
                            ))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (port, seen)
    }

    fn loopback(port: u16) -> Authority {
        Authority::new("127.0.0.1", port).unwrap()
    }

    fn client_for(authorities: Vec<Authority>) -> Arc<EgressClient> {
        let limits = EgressLimits {
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(5),
            between_bytes_timeout: Duration::from_secs(5),
            total_timeout: None,
            max_response_bytes: 1 << 20,
        };
        Arc::new(
            EgressClient::new(
                Arc::new(EgressPolicy::new(authorities.clone(), authorities)),
                Arc::new(StaticResolver::default()),
                limits,
                Arc::new(Metrics::default()),
            )
            .unwrap(),
        )
    }

    /// A request as wasmtime's `handle` builds it: absolute URI plus a `Host` header; here the
    /// component also smuggled credentials in, as if the forbidden-header check had a hole.
    fn guest_request(uri: &str) -> http::Request<WasiBody> {
        http::Request::get(uri)
            .header(header::HOST, "evil.example")
            .header(header::AUTHORIZATION, "Bearer guest-chosen")
            .header(header::COOKIE, "session=stolen")
            .header("x-guest", "kept")
            .body(
                Empty::<Bytes>::new()
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .unwrap()
    }

    async fn send(
        hooks: &mut GateHooks,
        request: http::Request<WasiBody>,
    ) -> Result<http::Response<WasiBody>, Error> {
        let future = hooks.send_request(request, None, Box::new(async { Ok(()) }));
        let (response, io) = Pin::from(future).await?;
        Pin::from(io).await?;
        Ok(response)
    }

    #[tokio::test]
    async fn the_api_key_reaches_only_the_key_authority() {
        let (key_port, key_seen) = recording_server().await;
        let (other_port, other_seen) = recording_server().await;
        let client = client_for(vec![loopback(key_port), loopback(other_port)]);
        let mut hooks = GateHooks::new(
            client,
            Some(SecretString::from(KEY)),
            loopback(key_port),
            false,
            "req-1".to_string(),
        );

        let to_key = guest_request(&format!("http://127.0.0.1:{key_port}/api/v1/responses"));
        let response = send(&mut hooks, to_key).await.unwrap();
        assert_eq!(
            response.into_body().collect().await.unwrap().to_bytes(),
            "ok"
        );
        // Another spelling of the key authority still gets the key: it is the same destination.
        let spelled = guest_request(&format!("http://2130706433:{key_port}/"));
        send(&mut hooks, spelled).await.unwrap();

        let to_other = guest_request(&format!("http://127.0.0.1:{other_port}/download"));
        send(&mut hooks, to_other).await.unwrap();

        let key_seen = key_seen.lock().unwrap().clone();
        assert_eq!(key_seen.len(), 2);
        for headers in &key_seen {
            let auth: Vec<_> = headers.get_all(header::AUTHORIZATION).iter().collect();
            assert_eq!(auth, [format!("Bearer {KEY}").as_str()]);
            assert_eq!(
                headers[header::HOST],
                format!("127.0.0.1:{key_port}").as_str()
            );
            assert!(headers.get(header::COOKIE).is_none());
            assert_eq!(headers["x-guest"], "kept");
        }
        let other_seen = other_seen.lock().unwrap().clone();
        assert_eq!(other_seen.len(), 1);
        assert!(other_seen[0].get(header::AUTHORIZATION).is_none());
        assert!(other_seen[0].get(header::COOKIE).is_none());
        assert_eq!(
            other_seen[0][header::HOST],
            format!("127.0.0.1:{other_port}").as_str()
        );
    }

    #[tokio::test]
    async fn the_key_is_not_sent_over_a_different_scheme_to_the_same_authority() {
        let (port, seen) = recording_server().await;
        let client = client_for(vec![loopback(port)]);
        // The key is configured for https on this authority; a plain-http request must not get it.
        let mut hooks = GateHooks::new(
            client,
            Some(SecretString::from(KEY)),
            loopback(port),
            true,
            "req-2".to_string(),
        );
        send(
            &mut hooks,
            guest_request(&format!("http://127.0.0.1:{port}/")),
        )
        .await
        .unwrap();
        assert!(seen.lock().unwrap()[0].get(header::AUTHORIZATION).is_none());
    }

    #[tokio::test]
    async fn a_refused_request_fails_in_the_hook_and_is_counted() {
        let (port, seen) = recording_server().await;
        let client = client_for(vec![]);
        let metrics = Arc::clone(client.metrics());
        let mut hooks = GateHooks::new(client, None, loopback(port), false, "req-3".to_string());
        let err = send(
            &mut hooks,
            guest_request(&format!("http://127.0.0.1:{port}/")),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::HttpRequestDenied), "{err:?}");
        assert_eq!(metrics.get("egress_refused", "not_allowlisted"), 1);
        assert!(seen.lock().unwrap().is_empty());
    }

    #[test]
    fn credentials_and_host_are_forbidden_to_the_component() {
        let mut hooks = GateHooks::new(
            client_for(vec![]),
            Some(SecretString::from(KEY)),
            loopback(1),
            true,
            "req-4".to_string(),
        );
        let filter = hooks.forbidden_header_filter();
        for name in [
            header::AUTHORIZATION,
            header::PROXY_AUTHORIZATION,
            header::COOKIE,
            header::HOST,
            header::CONNECTION,
            header::TRANSFER_ENCODING,
        ] {
            assert!(hooks.is_forbidden_header(&name), "{name}");
            assert!(filter(&name), "{name}");
        }
        assert!(!hooks.is_forbidden_header(&header::CONTENT_TYPE));
        assert!(!filter(&HeaderName::from_static("x-title")));
        assert!(!format!("{hooks:?}").contains(KEY));
    }
}
