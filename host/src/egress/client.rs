//! The pooled HTTP client that carries the component's outgoing requests, and connects only to
//! addresses the egress policy has judged.
//!
//! Threat: the component chooses URLs and can try to reach internal networks (DNS answers that
//! point at loopback or metadata, rebinding between a check and the connect, IP literals that
//! skip a resolver hook) or to pin host resources (a server that never answers, a body that never
//! ends or never stops). Defences, in order:
//! - `send` re-runs the policy on the URI and rewrites it to the canonical authority, so the pool
//!   key, the TLS server name and the `Host` the server sees are the destination that was judged;
//! - the connector ([`CheckedConnector`]) runs the policy again on the URI it is asked to dial,
//!   resolves names once through the injected [`Resolver`] (IP literals are not resolved but are
//!   judged by the same function), drops every answer `check_ip` refuses, and dials only the
//!   remaining socket addresses, so there is no second lookup to rebind;
//! - connect, first-byte, between-bytes and total timeouts are the host maxima, lowered (never
//!   raised) by the component's `request-options`; response bodies are capped in bytes;
//! - no proxy environment variables are read and redirects are never followed (hyper-util's
//!   legacy client does neither), and the pool is private to this client.
//!
//! The connector stack is in `connector`, the guarded response body and the GET/HEAD body race in
//! `body`, the mapping of failures to `wasi:http` errors in `wasi_error`.
//!
//! Not handled here: API-key injection and header policy (see `hooks.rs`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::capture_connection;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::Instant;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use super::body::{GuardedBody, drain_in_background, empty_body};
use super::connector::{CheckedConnector, TimedConnector};
use super::policy::{EgressPolicy, Target};
use super::refusal::{loggable_authority, record_refusal};
use super::resolver::Resolver;
use super::wasi_error::map_client_error;
use crate::metrics::Metrics;

/// How long an idle pooled connection is kept. 90 s is hyper-util's and Go's default; upstreams
/// such as OpenRouter keep connections at least that long, so a chat reuses its TLS session.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Idle connections kept per authority: enough for a burst of concurrent chats to one upstream
/// without a handshake each, bounded so one authority cannot hold unbounded sockets.
const POOL_MAX_IDLE_PER_HOST: usize = 32;

/// The host's maxima for one outgoing request. The component's `request-options` may lower the
/// three timeouts, never raise them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EgressLimits {
    /// Resolving, dialling and the TLS handshake (or checking out a pooled connection).
    pub connect_timeout: Duration,
    /// From having a connection to receiving the response head.
    pub first_byte_timeout: Duration,
    /// Longest silence between two response body frames.
    pub between_bytes_timeout: Duration,
    /// Whole exchange, head and body, when set.
    pub total_timeout: Option<Duration>,
    /// Response body cap; more bytes fail the body with `HttpResponseBodySize`.
    pub max_response_bytes: u64,
}

impl EgressLimits {
    /// These limits with the component's timeouts applied: each is the smaller of the two.
    pub fn clamped(&self, options: Option<RequestOptions>) -> Self {
        let pick = |host: Duration, guest: Option<Duration>| guest.map_or(host, |g| g.min(host));
        let options = options.unwrap_or_default();
        Self {
            connect_timeout: pick(self.connect_timeout, options.connect_timeout),
            first_byte_timeout: pick(self.first_byte_timeout, options.first_byte_timeout),
            between_bytes_timeout: pick(self.between_bytes_timeout, options.between_bytes_timeout),
            ..*self
        }
    }
}

/// Building the client failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EgressError {
    /// rustls refused the TLS configuration (protocol versions for the ring provider).
    #[error("building the TLS client configuration failed: {0}")]
    Tls(#[from] rustls::Error),
}

/// The connector stack: policy-checked TCP, then TLS (when https), bounded by the connect timeout.
type Connector = TimedConnector<HttpsConnector<CheckedConnector>>;

/// The egress client: one TLS configuration and one connection pool for the process.
pub struct EgressClient {
    policy: Arc<EgressPolicy>,
    metrics: Arc<Metrics>,
    limits: EgressLimits,
    client: Client<Connector, WasiBody>,
}

impl fmt::Debug for EgressClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EgressClient")
            .field("policy", &self.policy)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl EgressClient {
    /// Build the client: one rustls configuration (webpki roots, ring provider, ALPN h2 and
    /// http/1.1) and one pooled hyper-util client over the checked connector.
    pub fn new(
        policy: Arc<EgressPolicy>,
        resolver: Arc<dyn Resolver>,
        limits: EgressLimits,
        metrics: Arc<Metrics>,
    ) -> Result<Self, EgressError> {
        let checked = CheckedConnector {
            policy: Arc::clone(&policy),
            resolver,
            metrics: Arc::clone(&metrics),
        };
        let https = HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(checked);
        let connector = TimedConnector {
            inner: https,
            timeout: limits.connect_timeout,
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Ok(Self {
            policy,
            metrics,
            limits,
            client,
        })
    }

    /// The policy this client enforces.
    pub fn policy(&self) -> &Arc<EgressPolicy> {
        &self.policy
    }

    /// The counters refusals are recorded in.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The host maxima.
    pub fn limits(&self) -> &EgressLimits {
        &self.limits
    }

    /// Send one request (absolute URI) and return the response with a guarded body.
    ///
    /// Errors are `wasi:http` errors: `HttpRequestDenied` / `DestinationIpProhibited` / `DnsError`
    /// for refusals, `ConnectionTimeout` for the connect phase, `ConnectionReadTimeout` for the
    /// first-byte and between-bytes timeouts, `HttpResponseTimeout` for the total timeout,
    /// `HttpResponseBodySize` past the byte cap, `ConnectionRefused`, TLS errors, and
    /// `HttpProtocolError` for anything else hyper reports.
    pub async fn send(
        &self,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<Response<WasiBody>, Error> {
        let target = match self.policy.check_uri(request.uri()) {
            Ok(target) => target,
            Err(denial) => {
                record_refusal(&self.metrics, &denial, &loggable_authority(request.uri()));
                return Err(denial.to_wasi_error());
            }
        };
        let (mut parts, body) = request.into_parts();
        parts.uri = canonical_uri(&target, parts.uri.path_and_query())
            .map_err(|_| Error::HttpRequestUriInvalid)?;
        let body = if parts.method == Method::GET || parts.method == Method::HEAD {
            // hyper drops a GET/HEAD body as soon as the head is written, and the
            // component's body writer then fails with "connection reset". Keep the component's
            // body alive in a task and send hyper a body that is empty by construction.
            parts.headers.remove(http::header::CONTENT_LENGTH);
            parts.headers.remove(http::header::TRANSFER_ENCODING);
            drain_in_background(body);
            empty_body()
        } else {
            body
        };
        let limits = self.limits.clamped(options);
        let deadline = limits.total_timeout.map(|total| Instant::now() + total);
        let head = self.head(Request::from_parts(parts, body), &limits);
        let response = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, head)
                .await
                .map_err(|_| Error::HttpResponseTimeout)??,
            None => head.await?,
        };
        Ok(response.map(|incoming| {
            GuardedBody::new(
                incoming,
                limits.between_bytes_timeout,
                deadline,
                limits.max_response_bytes,
            )
            .boxed_unsync()
        }))
    }

    /// Obtain a connection within the connect timeout, then the response head within the
    /// first-byte timeout.
    async fn head(
        &self,
        mut request: Request<WasiBody>,
        limits: &EgressLimits,
    ) -> Result<Response<Incoming>, Error> {
        // The pool tells us when the request has a connection (new or reused); that splits the
        // connect phase from the wait for the response head without a timer inside the pool.
        let mut connection = capture_connection(&mut request);
        let mut response = self.client.request(request);
        let connected = tokio::select! {
            biased;
            result = &mut response => return result.map_err(|e| map_client_error(&e)),
            _ = connection.wait_for_connection_metadata() => true,
            () = tokio::time::sleep(limits.connect_timeout) => false,
        };
        if !connected {
            return Err(Error::ConnectionTimeout);
        }
        match tokio::time::timeout(limits.first_byte_timeout, response).await {
            Ok(result) => result.map_err(|e| map_client_error(&e)),
            Err(_) => Err(Error::ConnectionReadTimeout),
        }
    }
}

/// The request URI rebuilt on the canonical authority the policy judged.
fn canonical_uri(
    target: &Target,
    path_and_query: Option<&http::uri::PathAndQuery>,
) -> Result<Uri, http::Error> {
    Uri::builder()
        .scheme(target.scheme_str())
        .authority(target.request_authority())
        .path_and_query(path_and_query.map_or("/", |pq| pq.as_str()))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::connector::{ConnectError, checked_addresses};
    use crate::egress::policy::{Authority, Denial};
    use crate::egress::refusal::REFUSED_COUNTER;
    use crate::egress::resolver::StaticResolver;
    use bytes::Bytes;
    use futures::SinkExt;
    use http_body::Frame;
    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tower::Service;

    /// Every test is bounded so a broken timeout fails instead of hanging the suite.
    const TEST_BOUND: Duration = Duration::from_secs(20);

    fn limits() -> EgressLimits {
        EgressLimits {
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(5),
            between_bytes_timeout: Duration::from_secs(5),
            total_timeout: None,
            max_response_bytes: 1 << 20,
        }
    }

    fn loopback(port: u16) -> Authority {
        Authority::new("127.0.0.1", port).unwrap()
    }

    fn client_with(
        allowed: Vec<Authority>,
        private_ok: Vec<Authority>,
        resolver: StaticResolver,
        limits: EgressLimits,
    ) -> (EgressClient, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::default());
        let client = EgressClient::new(
            Arc::new(EgressPolicy::new(allowed, private_ok)),
            Arc::new(resolver),
            limits,
            Arc::clone(&metrics),
        )
        .unwrap();
        (client, metrics)
    }

    /// A client allowed (and private_ok) to reach exactly `port` on loopback.
    fn loopback_client(port: u16, limits: EgressLimits) -> (EgressClient, Arc<Metrics>) {
        client_with(
            vec![loopback(port)],
            vec![loopback(port)],
            StaticResolver::default(),
            limits,
        )
    }

    fn get(uri: &str) -> Request<WasiBody> {
        Request::get(uri).body(empty_body()).unwrap()
    }

    /// A hyper HTTP/1.1 server that counts accepted connections and answers every request with
    /// `body` (or echoes the request body for POST).
    struct TestServer {
        port: u16,
        accepts: Arc<AtomicUsize>,
    }

    async fn hyper_server(body: &'static [u8]) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepts = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepts);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| async move {
                        let reply = if req.method() == Method::POST {
                            req.into_body().collect().await.unwrap().to_bytes()
                        } else {
                            Bytes::from_static(body)
                        };
                        Ok::<_, Infallible>(Response::new(Full::new(reply)))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TestServer { port, accepts }
    }

    /// A raw server: reads the request head, then writes `reply` and keeps the socket open
    /// without writing anything else.
    async fn raw_server(reply: &'static [u8]) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepts = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepts);
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut head = Vec::new();
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = stream.write_all(reply).await;
                    tokio::time::sleep(Duration::from_secs(60)).await;
                });
            }
        });
        TestServer { port, accepts }
    }

    async fn bounded<F: Future>(f: F) -> F::Output {
        tokio::time::timeout(TEST_BOUND, f)
            .await
            .expect("test bound exceeded")
    }

    /// Assert that nothing connected to `canary` before now, without a pause that a slow machine
    /// could outlast: connect once ourselves and wait until the server has accepted that
    /// connection. Accepts are taken in arrival order, so any earlier connection (one the client
    /// should not have made) was counted before ours: the counter then reads exactly one.
    async fn assert_no_connection(canary: &TestServer) {
        let _probe = tokio::net::TcpStream::connect(("127.0.0.1", canary.port))
            .await
            .unwrap();
        while canary.accepts.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            canary.accepts.load(Ordering::SeqCst),
            1,
            "only the probe's own connection reached the canary"
        );
    }

    async fn body_text(response: Response<WasiBody>) -> Result<Bytes, Error> {
        Ok(response.into_body().collect().await?.to_bytes())
    }

    #[tokio::test]
    async fn two_sequential_requests_to_an_allowed_loopback_authority_share_one_connection() {
        bounded(async {
            let server = hyper_server(b"hello").await;
            let (client, metrics) = loopback_client(server.port, limits());
            let uri = format!("http://127.0.0.1:{}/one?q=1", server.port);
            for _ in 0..2 {
                let response = client.send(get(&uri), None).await.unwrap();
                assert_eq!(response.status(), 200);
                assert_eq!(body_text(response).await.unwrap(), "hello");
            }
            assert_eq!(server.accepts.load(Ordering::SeqCst), 1);
            assert_eq!(metrics.total(REFUSED_COUNTER), 0);
        })
        .await;
    }

    #[tokio::test]
    async fn a_post_body_reaches_the_upstream() {
        bounded(async {
            let server = hyper_server(b"unused").await;
            let (client, _) = loopback_client(server.port, limits());
            let request = Request::post(format!("http://127.0.0.1:{}/echo", server.port))
                .body(
                    Full::new(Bytes::from_static(b"payload"))
                        .map_err(|never| match never {})
                        .boxed_unsync(),
                )
                .unwrap();
            let response = client.send(request, None).await.unwrap();
            assert_eq!(body_text(response).await.unwrap(), "payload");
        })
        .await;
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_without_private_ok_is_refused_before_any_connect() {
        bounded(async {
            let canary = hyper_server(b"canary").await;
            let name = Authority::new("public.test", canary.port).unwrap();
            let resolver = StaticResolver::new([(
                "public.test".to_string(),
                vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            )]);
            let (client, metrics) = client_with(vec![name], vec![], resolver, limits());
            let uri = format!("http://public.test:{}/", canary.port);
            let err = client.send(get(&uri), None).await.unwrap_err();
            assert!(matches!(err, Error::DestinationIpProhibited), "{err:?}");
            assert_no_connection(&canary).await;
            assert_eq!(metrics.get(REFUSED_COUNTER, "private_address"), 1);
        })
        .await;
    }

    #[tokio::test]
    async fn a_port_that_is_not_allowlisted_is_refused_before_any_connect() {
        bounded(async {
            let canary = hyper_server(b"canary").await;
            let other = hyper_server(b"other").await;
            let (client, metrics) = loopback_client(other.port, limits());
            let uri = format!("http://127.0.0.1:{}/", canary.port);
            let err = client.send(get(&uri), None).await.unwrap_err();
            assert!(matches!(err, Error::HttpRequestDenied), "{err:?}");
            assert_no_connection(&canary).await;
            assert_eq!(metrics.get(REFUSED_COUNTER, "not_allowlisted"), 1);
        })
        .await;
    }

    #[tokio::test]
    async fn an_alternative_spelling_of_loopback_is_refused_when_only_a_name_is_allowed() {
        bounded(async {
            let canary = hyper_server(b"canary").await;
            let name = Authority::new("public.test", canary.port).unwrap();
            let (client, _) = client_with(vec![name], vec![], StaticResolver::default(), limits());
            for host in ["2130706433", "0x7f.1", "127.1", "[::ffff:7f00:1]"] {
                let uri = format!("http://{host}:{}/", canary.port);
                let err = client.send(get(&uri), None).await.unwrap_err();
                assert!(matches!(err, Error::HttpRequestDenied), "{host}: {err:?}");
            }
            assert_no_connection(&canary).await;
        })
        .await;
    }

    #[tokio::test]
    async fn the_connector_judges_uris_on_its_own_too() {
        bounded(async {
            let canary = hyper_server(b"canary").await;
            let metrics = Arc::new(Metrics::default());
            let mut connector = CheckedConnector {
                policy: Arc::new(EgressPolicy::new(vec![], vec![])),
                resolver: Arc::new(StaticResolver::default()),
                metrics: Arc::clone(&metrics),
            };
            let dst: Uri = format!("http://127.0.0.1:{}/", canary.port)
                .parse()
                .unwrap();
            let err = connector.call(dst).await.unwrap_err();
            assert!(matches!(
                err,
                ConnectError::Denied(Denial::NotAllowlisted { .. })
            ));
            assert_no_connection(&canary).await;
            assert_eq!(metrics.get(REFUSED_COUNTER, "not_allowlisted"), 1);
        })
        .await;
    }

    #[test]
    fn mixed_dns_answers_keep_only_public_addresses_on_the_target_port() {
        let name = Authority::new("mixed.test", 443).unwrap();
        let policy = EgressPolicy::new(vec![name.clone()], vec![]);
        let target = policy.check_url("https://mixed.test/").unwrap();
        let metrics = Metrics::default();
        let public = IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34));
        let answers = [
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 443),
            SocketAddr::new(public, 8443),
            SocketAddr::new("fd00:ec2::254".parse().unwrap(), 443),
        ];
        let kept = checked_addresses(&policy, &target, &answers, &metrics).unwrap();
        assert_eq!(kept, vec![SocketAddr::new(public, 443)]);
        assert_eq!(metrics.get(REFUSED_COUNTER, "private_address"), 2);
        let none = checked_addresses(&policy, &target, &[], &metrics).unwrap_err();
        assert_eq!(none.reason(), "no_address");
    }

    #[tokio::test]
    async fn an_unknown_name_fails_with_a_dns_error() {
        bounded(async {
            let name = Authority::new("nowhere.test", 80).unwrap();
            let (client, metrics) =
                client_with(vec![name], vec![], StaticResolver::default(), limits());
            let err = client
                .send(get("http://nowhere.test/"), None)
                .await
                .unwrap_err();
            assert!(matches!(err, Error::DnsError { .. }), "{err:?}");
            assert_eq!(metrics.get(REFUSED_COUNTER, "dns_failed"), 1);
        })
        .await;
    }

    #[tokio::test]
    async fn a_closed_port_gives_connection_refused() {
        bounded(async {
            let port = {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                listener.local_addr().unwrap().port()
            };
            let (client, _) = loopback_client(port, limits());
            let err = client
                .send(get(&format!("http://127.0.0.1:{port}/")), None)
                .await
                .unwrap_err();
            assert!(matches!(err, Error::ConnectionRefused), "{err:?}");
        })
        .await;
    }

    #[tokio::test]
    async fn https_to_a_plain_http_server_is_a_tls_protocol_error() {
        bounded(async {
            let server = hyper_server(b"plain").await;
            let (client, _) = loopback_client(server.port, limits());
            let err = client
                .send(get(&format!("https://127.0.0.1:{}/", server.port)), None)
                .await
                .unwrap_err();
            assert!(matches!(err, Error::TlsProtocolError), "{err:?}");
        })
        .await;
    }

    #[tokio::test]
    async fn the_first_byte_timeout_fires_when_the_server_never_answers() {
        bounded(async {
            let server = raw_server(b"").await;
            let host_limits = EgressLimits {
                first_byte_timeout: Duration::from_millis(200),
                ..limits()
            };
            let (client, _) = loopback_client(server.port, host_limits);
            let uri = format!("http://127.0.0.1:{}/", server.port);
            let err = client.send(get(&uri), None).await.unwrap_err();
            assert!(matches!(err, Error::ConnectionReadTimeout), "{err:?}");
        })
        .await;
    }

    #[tokio::test]
    async fn a_shorter_guest_first_byte_timeout_is_honoured() {
        bounded(async {
            let server = raw_server(b"").await;
            // Host maximum far above the test bound: only the guest's 200 ms can fire in time.
            let host_limits = EgressLimits {
                first_byte_timeout: Duration::from_secs(600),
                ..limits()
            };
            let (client, _) = loopback_client(server.port, host_limits);
            let options = RequestOptions {
                first_byte_timeout: Some(Duration::from_millis(200)),
                ..RequestOptions::default()
            };
            let uri = format!("http://127.0.0.1:{}/", server.port);
            let err = client.send(get(&uri), Some(options)).await.unwrap_err();
            assert!(matches!(err, Error::ConnectionReadTimeout), "{err:?}");
        })
        .await;
    }

    #[test]
    fn guest_timeouts_are_clamped_to_the_host_maxima() {
        let host = limits();
        let guest = RequestOptions {
            connect_timeout: Some(Duration::from_secs(600)),
            first_byte_timeout: Some(Duration::from_millis(10)),
            between_bytes_timeout: None,
        };
        let clamped = host.clamped(Some(guest));
        assert_eq!(clamped.connect_timeout, host.connect_timeout);
        assert_eq!(clamped.first_byte_timeout, Duration::from_millis(10));
        assert_eq!(clamped.between_bytes_timeout, host.between_bytes_timeout);
        assert_eq!(host.clamped(None), host);
    }

    #[tokio::test]
    async fn the_between_bytes_timeout_fires_when_the_body_stalls() {
        bounded(async {
            let server =
                raw_server(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
                    .await;
            let host_limits = EgressLimits {
                between_bytes_timeout: Duration::from_millis(200),
                ..limits()
            };
            let (client, _) = loopback_client(server.port, host_limits);
            let uri = format!("http://127.0.0.1:{}/", server.port);
            let response = client.send(get(&uri), None).await.unwrap();
            let mut body = response.into_body();
            let first = body.frame().await.unwrap().unwrap();
            assert_eq!(first.into_data().unwrap(), "hello");
            let err = body.frame().await.unwrap().unwrap_err();
            assert!(matches!(err, Error::ConnectionReadTimeout), "{err:?}");
            assert!(body.frame().await.is_none());
        })
        .await;
    }

    #[tokio::test]
    async fn the_total_timeout_also_bounds_the_body() {
        bounded(async {
            let server =
                raw_server(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n")
                    .await;
            let host_limits = EgressLimits {
                total_timeout: Some(Duration::from_millis(300)),
                ..limits()
            };
            let (client, _) = loopback_client(server.port, host_limits);
            let uri = format!("http://127.0.0.1:{}/", server.port);
            let response = client.send(get(&uri), None).await.unwrap();
            let err = body_text(response).await.unwrap_err();
            assert!(matches!(err, Error::HttpResponseTimeout), "{err:?}");
        })
        .await;
    }

    #[tokio::test]
    async fn a_body_over_the_cap_fails_with_http_response_body_size() {
        bounded(async {
            static BIG: [u8; 4096] = [b'x'; 4096];
            let server = hyper_server(&BIG).await;
            let host_limits = EgressLimits {
                max_response_bytes: 1000,
                ..limits()
            };
            let (client, _) = loopback_client(server.port, host_limits);
            let uri = format!("http://127.0.0.1:{}/", server.port);
            let response = client.send(get(&uri), None).await.unwrap();
            let err = body_text(response).await.unwrap_err();
            assert!(
                matches!(err, Error::HttpResponseBodySize(Some(1000))),
                "{err:?}"
            );

            // A body exactly at the cap passes.
            let at_cap = EgressLimits {
                max_response_bytes: 4096,
                ..limits()
            };
            let (client, _) = loopback_client(server.port, at_cap);
            let response = client.send(get(&uri), None).await.unwrap();
            assert_eq!(body_text(response).await.unwrap().len(), 4096);
        })
        .await;
    }

    #[tokio::test]
    async fn a_get_succeeds_while_the_guest_body_writer_is_still_open() {
        bounded(async {
            let server = hyper_server(b"fine").await;
            let (client, _) = loopback_client(server.port, limits());
            let (mut writer, frames) =
                futures::channel::mpsc::channel::<Result<Frame<Bytes>, Error>>(1);
            let request = Request::get(format!("http://127.0.0.1:{}/", server.port))
                .body(http_body_util::StreamBody::new(frames).boxed_unsync())
                .unwrap();
            let response = client.send(request, None).await.unwrap();
            assert_eq!(body_text(response).await.unwrap(), "fine");
            // The component writes its (empty) body after the response arrived: the stream is
            // still being read, so the write succeeds instead of "connection reset".
            for _ in 0..3 {
                writer
                    .send(Ok(Frame::data(Bytes::from_static(b"late"))))
                    .await
                    .unwrap();
            }
        })
        .await;
    }
}
