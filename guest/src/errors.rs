//! Turning failures into what the caller sees: OpenRouter's HTTP error bodies (both shapes, with
//! `metadata.raw` possibly a JSON string), stream error events, transport failures. Every error
//! gets a 16-hex-char id that also appears in the message, so a user report can be matched to the
//! host's log line.

use crate::caps::TransportError;
use crate::timefmt;
use crate::types::ErrorBody;
use serde_json::Value;

/// A fresh error id (16 lowercase hex chars) from a random `u64`.
pub fn error_id(random: u64) -> String {
    format!("{random:016x}")
}

/// Build an error body; the message gets the error id appended.
pub fn body(
    error_id: &str,
    http_status: u16,
    error_type: &str,
    code: Option<&str>,
    message: &str,
) -> ErrorBody {
    ErrorBody {
        message: format!("{message} (error id {error_id})"),
        error_type: error_type.to_string(),
        code: code.map(str::to_string),
        http_status,
        retry_after_seconds: None,
        error_id: error_id.to_string(),
    }
}

/// What OpenRouter said in an error body, whichever shape it used.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpenRouterError {
    pub message: Option<String>,
    pub code: Option<String>,
    pub provider: Option<String>,
    /// The upstream provider's own message, dug out of `metadata.raw` when present.
    pub upstream_message: Option<String>,
}

fn value_to_code(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn message_in(v: &Value) -> Option<String> {
    v.pointer("/error/message")
        .or_else(|| v.get("message"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Longest excerpt of an upstream body that is not OpenRouter's JSON error shape, in characters.
pub const EXCERPT_CHARS: usize = 200;

/// Whether a JSON document is OpenRouter's error shape: `{"error":{…"message" or "code"…}}`,
/// `{"error":"text"}`, or a bare `{"message": "…"}`.
pub fn is_openrouter_shape(v: &Value) -> bool {
    match v.get("error") {
        Some(Value::Object(e)) => {
            e.get("message").is_some_and(Value::is_string) || e.contains_key("code")
        }
        Some(Value::String(_)) => true,
        _ => v.get("message").is_some_and(Value::is_string),
    }
}

/// Whether text looks like markup (a tag, a closing tag, a comment or a doctype).
fn looks_like_markup(text: &str) -> bool {
    let b = text.as_bytes();
    b.windows(2)
        .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/' || w[1] == b'!'))
}

/// Upstream text that may be markup, as a short plain-text excerpt: tags removed (with the
/// contents of `script`, `style` and comments), a few entities decoded, control characters and
/// runs of whitespace collapsed to one space, at most `max_chars` characters (then `…`). One pass
/// over the text: an unclosed tag drops the rest instead of being searched for again.
pub fn plain_excerpt(text: &str, max_chars: usize) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::new();
    let mut chars = 0usize;
    let mut space = false;
    let mut i = 0usize;
    let push = |out: &mut String, chars: &mut usize, space: &mut bool, c: char| -> bool {
        if c.is_whitespace() || c.is_control() {
            *space = !out.is_empty();
            return true;
        }
        if *space {
            out.push(' ');
            *chars += 1;
            *space = false;
        }
        if *chars >= max_chars {
            out.push('…');
            return false;
        }
        out.push(c);
        *chars += 1;
        true
    };
    while i < text.len() {
        let rest = &lower[i..];
        if let Some(inside) = rest.strip_prefix('<') {
            let block_end = if rest.starts_with("<!--") {
                Some("-->")
            } else if rest.starts_with("<script") {
                Some("</script")
            } else if rest.starts_with("<style") {
                Some("</style")
            } else {
                None
            };
            let after = match block_end {
                Some(end) => inside
                    .find(end)
                    .map(|p| i + 1 + p + end.len())
                    .and_then(|p| {
                        if end == "-->" {
                            Some(p)
                        } else {
                            lower[p..].find('>').map(|q| p + q + 1)
                        }
                    }),
                None => rest.find('>').map(|p| i + p + 1),
            };
            if !is_inline_tag(rest) {
                space = !out.is_empty();
            }
            match after {
                Some(next) => {
                    i = next;
                    continue;
                }
                None => break,
            }
        }
        if rest.starts_with('&') {
            let entity = [
                ("&amp;", '&'),
                ("&nbsp;", ' '),
                ("&quot;", '"'),
                ("&#39;", '\''),
                ("&apos;", '\''),
            ]
            .into_iter()
            .find(|(name, _)| rest.starts_with(name));
            if let Some((name, c)) = entity {
                if !push(&mut out, &mut chars, &mut space, c) {
                    return out;
                }
                i += name.len();
                continue;
            }
        }
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        i += c.len_utf8();
        if c == '>' {
            continue;
        }
        if !push(&mut out, &mut chars, &mut space, c) {
            return out;
        }
    }
    out
}

/// Whether a (lowercased) tag starting `rest` is an inline one, which does not separate words.
fn is_inline_tag(rest: &str) -> bool {
    let name = rest
        .trim_start_matches('<')
        .trim_start_matches('/')
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or("");
    matches!(
        name,
        "a" | "b"
            | "i"
            | "u"
            | "em"
            | "strong"
            | "span"
            | "code"
            | "small"
            | "sup"
            | "sub"
            | "abbr"
    )
}

/// A message from an upstream JSON document: kept (shortened) when it is plain text, made a
/// plain-text excerpt when it carries markup.
fn upstream_text(s: &str, max_chars: usize) -> String {
    if looks_like_markup(s) {
        plain_excerpt(s, EXCERPT_CHARS)
    } else {
        truncate(s, max_chars)
    }
}

/// Parse `{"error":{"message","code","metadata":{"provider_name","raw"}}}` (or a bare
/// `{"message","code"}`, or `{"error":"text"}`); `raw` may be a JSON object or a JSON document
/// inside a string. Any other body (an HTML error page, text, JSON of another shape) is never
/// passed on as it is: it becomes a plain-text excerpt of at most [`EXCERPT_CHARS`] characters
/// with its markup removed.
pub fn parse_openrouter_error(bytes: &[u8]) -> OpenRouterError {
    let doc = serde_json::from_slice::<Value>(bytes)
        .ok()
        .filter(is_openrouter_shape);
    let Some(v) = doc else {
        let text = plain_excerpt(&String::from_utf8_lossy(bytes), EXCERPT_CHARS);
        return OpenRouterError {
            message: (!text.is_empty()).then_some(text),
            ..OpenRouterError::default()
        };
    };
    if let Some(Value::String(text)) = v.get("error") {
        let text = upstream_text(text.trim(), 500);
        return OpenRouterError {
            message: (!text.is_empty()).then_some(text),
            ..OpenRouterError::default()
        };
    }
    let err = v.get("error").unwrap_or(&v);
    let metadata = err.get("metadata");
    let raw = metadata.and_then(|m| m.get("raw"));
    let upstream_message = raw.and_then(|raw| match raw {
        Value::String(s) => serde_json::from_str::<Value>(s)
            .ok()
            .and_then(|inner| message_in(&inner))
            .map(|m| upstream_text(&m, 300))
            .or_else(|| Some(plain_excerpt(s, EXCERPT_CHARS)).filter(|e| !e.is_empty())),
        other => message_in(other).map(|m| upstream_text(&m, 300)),
    });
    OpenRouterError {
        message: err
            .get("message")
            .and_then(Value::as_str)
            .map(|s| upstream_text(s, 500)),
        code: err.get("code").and_then(value_to_code),
        provider: metadata
            .and_then(|m| m.get("provider_name"))
            .and_then(Value::as_str)
            .map(str::to_string),
        upstream_message,
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max_chars).collect();
        out.push('…');
        out
    }
}

/// Map an upstream HTTP error status (with its body and `Retry-After`) to the caller's error;
/// `now_ms` is the guest's clock, which an HTTP-date `Retry-After` is counted from.
pub fn from_status(
    error_id: &str,
    status: u16,
    retry_after: Option<&str>,
    body_bytes: &[u8],
    now_ms: u64,
) -> ErrorBody {
    let seconds = retry_after.and_then(|v| parse_retry_after(v, now_ms));
    with_retry_after(error_id, status, seconds, body_bytes)
}

fn with_retry_after(
    error_id: &str,
    status: u16,
    retry_after_seconds: Option<u32>,
    body_bytes: &[u8],
) -> ErrorBody {
    let parsed = parse_openrouter_error(body_bytes);
    let (error_type, code, heading) = match status {
        400 => (
            "invalid_request_error",
            "upstream_bad_request",
            "OpenRouter rejected the request",
        ),
        401 => (
            "authentication_error",
            "upstream_unauthorized",
            "OpenRouter did not accept the API key",
        ),
        402 => (
            "insufficient_quota",
            "insufficient_credits",
            "The OpenRouter account has insufficient credits",
        ),
        403 => (
            "permission_error",
            "upstream_forbidden",
            "OpenRouter refused the request",
        ),
        404 => (
            "invalid_request_error",
            "upstream_not_found",
            "OpenRouter could not find the model or route",
        ),
        408 => (
            "timeout_error",
            "upstream_timeout",
            "The model provider timed out",
        ),
        413 => (
            "invalid_request_error",
            "payload_too_large",
            "The request is too large for the model",
        ),
        429 => (
            "rate_limit_error",
            "rate_limited",
            "Rate limited by OpenRouter",
        ),
        s if s >= 500 => (
            "upstream_error",
            "upstream_unavailable",
            "OpenRouter or the model provider failed",
        ),
        _ => (
            "upstream_error",
            "upstream_error",
            "OpenRouter returned an error",
        ),
    };
    let mut message = format!("{heading} (HTTP {status})");
    if let Some(provider) = &parsed.provider {
        message.push_str(&format!(" via {provider}"));
    }
    if let Some(m) = &parsed.message {
        message.push_str(&format!(": {m}"));
    }
    if let Some(up) = &parsed.upstream_message
        && parsed.message.as_deref() != Some(up.as_str())
    {
        message.push_str(&format!(" (provider said: {up})"));
    }
    if let Some(secs) = retry_after_seconds {
        message.push_str(&format!(". Retry after {secs} s"));
    }
    let mut out = body(error_id, status, error_type, Some(code), &message);
    out.retry_after_seconds = retry_after_seconds;
    out
}

/// `Retry-After` in whole seconds from `now_ms`: delta-seconds, or an HTTP date (IMF-fixdate,
/// `Wed, 21 Oct 2015 07:28:00 GMT`) turned into the seconds left until it (a date in the past
/// is 0). Either form is capped at `u32::MAX`; anything else is `None`.
pub fn parse_retry_after(v: &str, now_ms: u64) -> Option<u32> {
    parse_retry_delta(v).or_else(|| {
        let left = timefmt::http_date_ms(v)?.saturating_sub(now_ms);
        Some(u32::try_from(left.div_ceil(1000)).unwrap_or(u32::MAX))
    })
}

/// `Retry-After` as delta-seconds only (a fraction rounds up, a huge value is `u32::MAX`).
fn parse_retry_delta(v: &str) -> Option<u32> {
    let v = v.trim();
    v.parse::<u32>().ok().or_else(|| {
        v.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f.ceil() as u32)
    })
}

/// A `response.failed` or `error` stream event, as the caller's error.
pub fn from_stream_event(error_id: &str, event: &Value) -> ErrorBody {
    let err = event
        .pointer("/response/error")
        .filter(|e| !e.is_null())
        .or_else(|| event.get("error").filter(|e| e.is_object()))
        .unwrap_or(event);
    let code = err.get("code").and_then(value_to_code);
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("no detail given");
    let status = match code.as_deref() {
        Some("rate_limit_exceeded") | Some("rate_limited") | Some("429") => 429,
        _ => 502,
    };
    body(
        error_id,
        status,
        "upstream_error",
        Some(code.as_deref().unwrap_or("upstream_stream_error")),
        &format!(
            "The model failed while answering: {}",
            truncate(message, 500)
        ),
    )
}

/// A transport failure reaching OpenRouter.
pub fn from_transport(error_id: &str, what: &str, err: &TransportError) -> ErrorBody {
    let (status, code) = match err {
        TransportError::Denied(_) => (502, "egress_denied"),
        TransportError::Timeout(_) => (504, "upstream_timeout"),
        TransportError::Connect(_) => (502, "upstream_unreachable"),
        TransportError::TooLarge => (502, "upstream_response_too_large"),
        TransportError::Protocol(_) => (502, "upstream_connection_failed"),
    };
    body(
        error_id,
        status,
        "upstream_error",
        Some(code),
        &format!("Could not {what}: {err}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_raw_as_a_json_string_yields_the_provider_message() {
        let b = br#"{"error":{"code":400,"message":"Provider returned error","metadata":{"provider_name":"Anthropic","raw":"{\"error\":{\"message\":\"thinking block cannot be modified\"}}"}}}"#;
        let e = parse_openrouter_error(b);
        assert_eq!(e.code.as_deref(), Some("400"));
        assert_eq!(e.provider.as_deref(), Some("Anthropic"));
        assert_eq!(
            e.upstream_message.as_deref(),
            Some("thinking block cannot be modified")
        );
    }

    #[test]
    fn rate_limits_carry_retry_after_and_a_clear_code() {
        let e = from_status(
            "00000000000000aa",
            429,
            Some("7"),
            br#"{"error":{"code":429,"message":"slow down"}}"#,
            0,
        );
        assert_eq!(e.http_status, 429);
        assert_eq!(e.retry_after_seconds, Some(7));
        assert_eq!(e.code.as_deref(), Some("rate_limited"));
        assert!(e.message.contains("slow down"));
        assert!(e.message.contains("00000000000000aa"));
    }

    /// `Wed, 21 Oct 2015 07:28:00 GMT` on the guest's clock.
    const OCT_21_MS: u64 = 1_445_412_480_000;

    #[test]
    fn retry_after_takes_delta_seconds_or_an_http_date() {
        let date = "Wed, 21 Oct 2015 07:28:00 GMT";
        let table: &[(&str, u64, Option<u32>)] = &[
            // Delta-seconds, whatever the clock says.
            ("7", OCT_21_MS, Some(7)),
            (" 0 ", 0, Some(0)),
            ("2.5", 0, Some(3)),
            ("4294967295", 0, Some(u32::MAX)),
            ("99999999999999999999", 0, Some(u32::MAX)),
            ("1e300", 0, Some(u32::MAX)),
            // A date in the future: the seconds left, rounded up.
            (date, OCT_21_MS - 120_000, Some(120)),
            (date, OCT_21_MS - 500, Some(1)),
            (date, 0, Some(1_445_412_480)),
            ("Fri, 31 Dec 9999 23:59:59 GMT", OCT_21_MS, Some(u32::MAX)),
            // Now or in the past: retry at once.
            (date, OCT_21_MS, Some(0)),
            (date, OCT_21_MS + 3_600_000, Some(0)),
            (date, u64::MAX, Some(0)),
            // Garbage.
            ("", 0, None),
            ("-1", 0, None),
            ("NaN", 0, None),
            ("inf", 0, None),
            ("soon", 0, None),
            ("Wed, 21 Oct 2015 07:28:00 PST", 0, None),
            ("2015-10-21T07:28:00Z", 0, None),
        ];
        for (value, now_ms, want) in table {
            assert_eq!(
                parse_retry_after(value, *now_ms),
                *want,
                "{value:?} at {now_ms}"
            );
        }
        assert_eq!(parse_retry_delta(date), None);
        assert_eq!(parse_retry_delta("7"), Some(7));
    }

    #[test]
    fn an_http_date_retry_after_is_counted_from_the_guest_clock() {
        let body = br#"{"error":{"code":429,"message":"slow down"}}"#;
        let e = from_status(
            "00000000000000aa",
            429,
            Some("Wed, 21 Oct 2015 07:28:00 GMT"),
            body,
            OCT_21_MS - 30_000,
        );
        assert_eq!(e.retry_after_seconds, Some(30));
        assert!(e.message.contains("Retry after 30 s"), "{}", e.message);
    }

    proptest::proptest! {
        #[test]
        fn any_retry_after_text_parses_without_panicking(v in ".{0,64}", now_ms: u64) {
            let _ = parse_retry_after(&v, now_ms);
        }

        #[test]
        fn any_date_shaped_retry_after_parses_without_panicking(
            day in "[A-Za-z]{0,4}",
            n in proptest::collection::vec(0u64..100_000, 6),
            month in "[A-Za-z]{0,4}",
            now_ms: u64,
        ) {
            let v = format!("{day}, {:02} {month} {} {:02}:{:02}:{:02} GMT", n[0], n[1], n[2], n[3], n[4]);
            let _ = parse_retry_after(&v, now_ms);
        }
    }

    #[test]
    fn a_non_json_error_body_is_kept_short() {
        let long = "x".repeat(5000);
        let e = parse_openrouter_error(long.as_bytes());
        assert!(e.message.unwrap().chars().count() <= EXCERPT_CHARS + 1);
    }

    const BAD_GATEWAY_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title>\n<style>body { color: red }</style><script>alert('x')</script></head>\n<body>\n  <h1>Bad   Gateway</h1>\n<!-- upstream pool 7 -->\n<p>The server returned an <b>invalid</b> response &amp; gave up.</p></body></html>";

    #[test]
    fn an_html_error_page_becomes_a_short_plain_excerpt() {
        let e = parse_openrouter_error(BAD_GATEWAY_PAGE.as_bytes());
        assert_eq!(
            e.message.as_deref(),
            Some("502 Bad Gateway Bad Gateway The server returned an invalid response & gave up.")
        );
        let body = from_status(
            "00000000000000aa",
            502,
            None,
            BAD_GATEWAY_PAGE.as_bytes(),
            0,
        );
        assert!(
            body.message
                .starts_with("OpenRouter or the model provider failed (HTTP 502): 502 Bad Gateway"),
            "{}",
            body.message
        );
        for bad in ['<', '>', '\n'] {
            assert!(!body.message.contains(bad), "{}", body.message);
        }
        assert!(!body.message.contains("alert") && !body.message.contains("color"));
    }

    #[test]
    fn plain_excerpts_are_bounded_and_survive_broken_markup() {
        let huge = format!("<p>{}</p>", "word ".repeat(10_000));
        let e = plain_excerpt(&huge, 200);
        assert_eq!(e.chars().count(), 201);
        assert!(e.ends_with('…'));
        assert_eq!(
            plain_excerpt("before <a href='x' never closed", 200),
            "before"
        );
        assert_eq!(plain_excerpt("<script>never closed", 200), "");
        assert_eq!(plain_excerpt("a\u{0}\u{7}b\t\r\n  c", 200), "a b c");
        assert_eq!(plain_excerpt("x > y and 3 &lt; 4", 200), "x y and 3 &lt; 4");
        let many_opens = "<".repeat(100_000);
        assert_eq!(plain_excerpt(&many_opens, 200), "");
    }

    #[test]
    fn json_of_another_shape_is_an_excerpt_and_markup_inside_openrouter_messages_is_removed() {
        let e = parse_openrouter_error(br#"{"detail": "<b>nope</b>"}"#);
        assert_eq!(e.message.as_deref(), Some(r#"{"detail": "nope"}"#));
        let e =
            parse_openrouter_error(br#"{"error": "<html><body>Gateway timeout</body></html>"}"#);
        assert_eq!(e.message.as_deref(), Some("Gateway timeout"));
        let e = parse_openrouter_error(
            br#"{"error":{"code":502,"message":"Provider returned error","metadata":{"raw":"<html><h1>503</h1> upstream down</html>"}}}"#,
        );
        assert_eq!(e.message.as_deref(), Some("Provider returned error"));
        assert_eq!(e.upstream_message.as_deref(), Some("503 upstream down"));
        let e = parse_openrouter_error(
            br#"{"error":{"code":400,"message":"max_tokens < 1 is invalid"}}"#,
        );
        assert_eq!(e.message.as_deref(), Some("max_tokens < 1 is invalid"));
    }

    #[test]
    fn stream_failure_events_of_both_shapes_are_understood() {
        let failed: Value = serde_json::json!({"type":"response.failed","response":{"status":"failed","error":{"code":"server_error","message":"boom"}}});
        let e = from_stream_event("id", &failed);
        assert_eq!(e.code.as_deref(), Some("server_error"));
        assert!(e.message.contains("boom"));
        let ev: Value =
            serde_json::json!({"type":"error","code":"rate_limit_exceeded","message":"slow"});
        let e = from_stream_event("id", &ev);
        assert_eq!(e.http_status, 429);
        assert!(e.message.contains("slow"));
    }
}
