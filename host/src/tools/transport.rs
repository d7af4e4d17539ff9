//! One HTTP exchange with a tool server, through the egress gate's pooled checked-address client
//! (the same policy check, resolver, refusal counter and log line as the component's requests).
//!
//! The server's auth header is added here, on that server's requests only, marked sensitive and
//! never logged. Failures are classified so the caller can tell a request that provably never
//! reached the server (connection refused, connect timeout: safe to retry) from everything else
//! (never retried: the tool may have side effects).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use secrecy::{ExposeSecret, SecretString};
use wasmtime_wasi_http::{Error as WasiError, RequestOptions, WasiBody};

use crate::bindings::types::ToolError;
use crate::egress::client::EgressClient;

/// Most bytes of a tool's answer kept; the rest is cut and the output says so.
pub const MAX_TOOL_OUTPUT_BYTES: usize = 256 * 1024;

/// Most bytes of an error body quoted back in a tool error.
const ERROR_EXCERPT_CHARS: usize = 300;

/// Why one exchange failed.
#[derive(Debug)]
pub struct Failure {
    pub error: ToolError,
    /// The request provably never reached the server (nothing was sent).
    pub never_reached: bool,
    /// Stable label for metrics and logs.
    pub outcome: &'static str,
}

impl Failure {
    pub fn new(error: ToolError, outcome: &'static str) -> Self {
        Self {
            error,
            never_reached: false,
            outcome,
        }
    }
}

/// The header a server's declaration asks for, ready to attach.
pub struct AuthHeader {
    name: http::HeaderName,
    value: HeaderValue,
}

impl AuthHeader {
    /// `None` when the declaration has no auth header. The config loader validated both parts,
    /// so a failure here means nothing is attached (and is logged without the value).
    pub fn from_decl(auth: Option<&(String, SecretString)>) -> Option<Self> {
        let (name, secret) = auth?;
        let name = http::HeaderName::from_bytes(name.as_bytes()).ok()?;
        let mut value = HeaderValue::from_str(secret.expose_secret()).ok()?;
        value.set_sensitive(true);
        Some(Self { name, value })
    }
}

/// A response head and its (capped) body text.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: WasiBody,
}

/// What to send.
pub struct Outgoing<'a> {
    pub method: Method,
    pub url: &'a url::Url,
    pub headers: Vec<(http::HeaderName, HeaderValue)>,
    pub body: Option<Vec<u8>>,
    pub content_type: Option<&'static str>,
    pub accept: &'static str,
}

/// Send one request. `idle` bounds the wait for the response head and every gap between body
/// bytes (it can only lower the host's own limits).
pub async fn send(
    client: &EgressClient,
    auth: Option<&AuthHeader>,
    out: Outgoing<'_>,
    idle: Option<Duration>,
) -> Result<Answer, Failure> {
    let uri: http::Uri = out.url.as_str().parse().map_err(|_| {
        Failure::new(
            ToolError::Other("the tool URL is not a valid URI".to_owned()),
            "invalid_argument",
        )
    })?;
    let body: WasiBody = Full::new(Bytes::from(out.body.unwrap_or_default()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut request = Request::builder()
        .method(out.method)
        .uri(uri)
        .body(body)
        .map_err(|e| {
            Failure::new(
                ToolError::InvalidArgument(format!("cannot build the request: {e}")),
                "invalid_argument",
            )
        })?;
    let headers = request.headers_mut();
    for (name, value) in out.headers {
        headers.append(name, value);
    }
    if let Some(ct) = out.content_type {
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    headers.insert(http::header::ACCEPT, HeaderValue::from_static(out.accept));
    if let Some(auth) = auth {
        headers.insert(auth.name.clone(), auth.value.clone());
    }
    let options = idle.map(|idle| RequestOptions {
        connect_timeout: None,
        first_byte_timeout: Some(idle),
        between_bytes_timeout: Some(idle),
    });
    let response = client
        .send(request, options)
        .await
        .map_err(|e| classify(&e))?;
    let (parts, body) = response.into_parts();
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// Map a transport failure to a tool error, noting whether the request never left the host.
pub fn classify(err: &WasiError) -> Failure {
    match err {
        WasiError::ConnectionRefused => Failure {
            error: ToolError::Unavailable("connection refused".to_owned()),
            never_reached: true,
            outcome: "unavailable",
        },
        WasiError::ConnectionTimeout => Failure {
            error: ToolError::Unavailable("connecting timed out".to_owned()),
            never_reached: true,
            outcome: "unavailable",
        },
        WasiError::HttpRequestDenied
        | WasiError::DestinationIpProhibited
        | WasiError::DnsError { .. }
        | WasiError::DnsTimeout => Failure::new(
            ToolError::Unavailable(format!("refused by the egress gate ({err})")),
            "refused",
        ),
        // No byte for the idle budget (or the host's first-byte / between-bytes limit).
        WasiError::ConnectionReadTimeout => Failure::new(ToolError::Timeout, "idle_timeout"),
        WasiError::HttpResponseTimeout => Failure::new(ToolError::Timeout, "timeout"),
        other => Failure::new(
            ToolError::Unavailable(format!("the tool server could not be reached: {other}")),
            "unavailable",
        ),
    }
}

/// Read a body up to `cap` bytes: the bytes and whether more were cut off.
pub async fn read_capped(mut body: WasiBody, cap: usize) -> Result<(Vec<u8>, bool), Failure> {
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| match e {
            WasiError::HttpResponseBodySize(_) => Failure::new(
                ToolError::Other("the tool's answer is too large".to_owned()),
                "error",
            ),
            other => classify(&other),
        })?;
        if let Some(data) = frame.data_ref() {
            let room = cap.saturating_sub(buf.len());
            if data.len() > room {
                buf.extend_from_slice(&data[..room]);
                return Ok((buf, true));
            }
            buf.extend_from_slice(data);
        }
    }
    Ok((buf, false))
}

/// A tool's answer as text, at most [`MAX_TOOL_OUTPUT_BYTES`]; a longer one is cut and says so.
pub async fn read_text(body: WasiBody) -> Result<String, Failure> {
    let (buf, truncated) = read_capped(body, MAX_TOOL_OUTPUT_BYTES).await?;
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    if truncated {
        // A cut inside a multi-byte character shows as U+FFFD; say why the text ends.
        text.push_str("\n[output truncated]");
    }
    Ok(text)
}

/// A short excerpt of an error body for a tool error.
pub fn excerpt(text: &str) -> String {
    let trimmed = text.trim();
    let mut out: String = trimmed.chars().take(ERROR_EXCERPT_CHARS).collect();
    if trimmed.chars().count() > ERROR_EXCERPT_CHARS {
        out.push('…');
    }
    out
}

/// The tool error for a non-2xx answer: status and a short excerpt of the body.
pub fn status_error(status: StatusCode, body: &str) -> Failure {
    let text = format!("HTTP {}: {}", status.as_u16(), excerpt(body));
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        Failure::new(ToolError::Unavailable(text), "http_error")
    } else if status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY {
        Failure::new(ToolError::InvalidArgument(text), "http_error")
    } else {
        Failure::new(ToolError::Other(text), "http_error")
    }
}
