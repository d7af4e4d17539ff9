//! Every failure the chat path can meet, and the one table of what the caller sees of each: the
//! error (HTTP status, type, code, message), whether Open WebUI callers get it rendered from an
//! error template as the answer or as a plain error, whether it counts against the user's request
//! breaker, and what changes once the caller has seen output.
//!
//! Before any visible output a failure is returned as `PipeError` (the host answers with an HTTP
//! status), except for Open WebUI callers, who get the rendered error template as the answer, as
//! the reference pipe shows it. After output it becomes an in-stream error (or, for Open WebUI,
//! the stream-interrupted template appended to the partial answer).

use super::Pipe;
use crate::caps::{Emit, Env, Kv, TransportError, Upstream};
use crate::endpoint::Endpoint;
use crate::errors;
use crate::templates::{TemplateKind, TemplateSettings, Vars, vars_from_openrouter_error};
use crate::timefmt::iso8601;
use crate::types::{ErrorBody, Event, FinishReason, PipeError, RequestContext};

/// The status and notice shown when a user's request breaker is open.
pub(super) const BREAKER_NOTICE: &str =
    "Temporarily disabled due to repeated errors. Please wait a minute and try again.";

/// A failure of one chat, with what the caller may be told about it.
#[derive(Debug)]
pub(super) enum Failure {
    /// The body is not a chat request, or cannot be built for the chosen endpoint.
    InvalidBody(String),
    /// The catalog refused the model: by policy (`model_restricted`), or with its own error
    /// (an unknown model, an unreachable catalog).
    Catalog {
        error: Box<PipeError>,
        requested_model: String,
    },
    /// The model needs one endpoint and the configuration forces the other.
    EndpointConflict {
        model_id: String,
        required: Endpoint,
        forced: Endpoint,
    },
    /// OpenRouter refused this caller's key less than a minute ago (`auth_window`).
    AuthWindow {
        requested_model: String,
        detail: String,
        seconds_left: u64,
    },
    /// The user's request breaker is open.
    BreakerOpen,
    /// OpenRouter could not be reached, after the retries.
    Transport {
        endpoint: Endpoint,
        error: TransportError,
        timeout_seconds: u64,
    },
    /// OpenRouter answered with an HTTP error that no recovery or fallback could mend.
    Status {
        status: u16,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
        requested_model: String,
        model_id: String,
        /// The guest clock when the answer arrived (an HTTP-date `Retry-After` counts from it).
        now_ms: u64,
    },
    /// OpenRouter answered with success but not with an event stream (its content type,
    /// lowercased).
    NotEventStream { content_type: String },
    /// The stream ended or broke before the response completed.
    Interrupted { detail: String },
    /// A line or event passed `SSE_MAX_EVENT_BYTES`, or the stream passed the host's response
    /// cap.
    TooLarge { detail: String },
    /// The stream reported a failure (a `response.failed` or error event).
    Stream {
        error: Box<ErrorBody>,
        requested_model: String,
    },
}

/// When a failure happens, as far as the caller can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Moment {
    /// Nothing has reached the caller yet.
    BeforeOutput,
    /// The caller has seen output: this turn's, or an earlier tool-loop turn's.
    AfterOutput,
}

impl Moment {
    /// The moment after `output_seen` (any output of this answer has reached the caller).
    pub(super) fn of(output_seen: bool) -> Moment {
        if output_seen {
            Moment::AfterOutput
        } else {
            Moment::BeforeOutput
        }
    }
}

/// What the caller sees of one failure.
#[derive(Debug)]
pub(super) struct Shown {
    /// The error: HTTP status, type, code, message and id.
    pub body: ErrorBody,
    /// How it reaches the caller.
    pub how: How,
    /// Whether it counts against the user's request breaker (refusals by policy, configuration
    /// or a window do not: they are not failures of the service).
    pub counted: bool,
}

/// How a failure reaches the caller.
#[derive(Debug)]
pub(super) enum How {
    /// To every caller, the error made by this constructor: an HTTP error.
    Returned(fn(ErrorBody) -> PipeError),
    /// Open WebUI callers get the template rendered as the whole answer (Markdown); everyone
    /// else the HTTP error (`PipeError::Upstream`).
    Rendered { kind: TemplateKind, vars: Vars },
    /// Open WebUI callers get `text` as a warning notification and as the answer; everyone else
    /// the HTTP error (`PipeError::Upstream`). Logged as a refusal because of `why`.
    Notice {
        text: &'static str,
        why: &'static str,
    },
    /// After output: Open WebUI callers get the template appended to the partial answer;
    /// everyone else an in-stream error and an `error` finish.
    Appended { kind: TemplateKind },
}

/// The table: what the caller sees of `failure` at `moment`. `new_id` gives a fresh error id,
/// asked for only when the failure does not carry one already.
pub(super) fn shown(failure: Failure, moment: Moment, new_id: &mut dyn FnMut() -> String) -> Shown {
    let rendered = |kind, vars| How::Rendered { kind, vars };
    let (body, how, counted) = match failure {
        Failure::InvalidBody(message) => (
            errors::body(
                &new_id(),
                400,
                "invalid_request_error",
                Some("invalid_body"),
                &message,
            ),
            How::Returned(PipeError::InvalidRequest),
            false,
        ),
        Failure::Catalog {
            error,
            requested_model,
        } => {
            // A refusal by policy is shown like the chat's other refusals; any other catalog
            // error is returned as it is.
            let restricted = matches!(&*error, PipeError::InvalidRequest(b)
                if b.code.as_deref() == Some("model_restricted"));
            let (made, body) = parts(*error);
            if !restricted {
                (body, How::Returned(made), false)
            } else {
                let mut vars = Vars::new();
                vars.set("requested_model", requested_model);
                vars.set("restriction_reasons", body.message.as_str());
                vars.set("reason", body.message.as_str());
                (body, rendered(TemplateKind::ModelRestricted, vars), false)
            }
        }
        Failure::EndpointConflict {
            model_id,
            required,
            forced,
        } => {
            let body = errors::body(
                &new_id(),
                400,
                "invalid_request_error",
                Some("endpoint_override_conflict"),
                &format!(
                    "`{model_id}` needs {} but the configuration forces {}",
                    required.path(),
                    forced.path()
                ),
            );
            let mut vars = Vars::new();
            vars.set("requested_model", model_id);
            vars.set("required_endpoint", required.path());
            vars.set("forced_endpoint", forced.path());
            (
                body,
                rendered(TemplateKind::EndpointOverrideConflict, vars),
                false,
            )
        }
        Failure::AuthWindow {
            requested_model,
            detail,
            seconds_left,
        } => {
            let mut message = "OpenRouter did not accept the API key (HTTP 401)".to_string();
            if !detail.is_empty() {
                message.push_str(": ");
                message.push_str(&detail);
            }
            message.push_str(&format!(
                "; requests are not sent to OpenRouter again for {seconds_left} s"
            ));
            let body = errors::body(
                &new_id(),
                401,
                "authentication_error",
                Some("upstream_unauthorized"),
                &message,
            );
            let mut vars = Vars::new();
            vars.set("status_code", "401");
            vars.set("requested_model", requested_model);
            if !detail.is_empty() {
                vars.set("openrouter_message", detail.as_str());
                vars.set("detail", detail);
            }
            (body, rendered(TemplateKind::Authentication, vars), false)
        }
        Failure::BreakerOpen => (
            errors::body(
                &new_id(),
                429,
                "rate_limit_error",
                Some("breaker_open"),
                BREAKER_NOTICE,
            ),
            How::Notice {
                text: BREAKER_NOTICE,
                why: "the user's breaker is open",
            },
            false,
        ),
        Failure::Transport {
            endpoint,
            error,
            timeout_seconds,
        } => {
            let body = errors::from_transport(&new_id(), "reach OpenRouter", &error);
            let kind = if matches!(error, TransportError::Timeout(_)) {
                TemplateKind::NetworkTimeout
            } else {
                TemplateKind::ConnectionError
            };
            let mut vars = Vars::new();
            vars.set("endpoint", endpoint.path());
            vars.set("error_type", format!("{error}"));
            vars.set("timeout_seconds", timeout_seconds.to_string());
            (body, rendered(kind, vars), true)
        }
        Failure::Status {
            status,
            body: bytes,
            headers,
            requested_model,
            model_id,
            now_ms,
        } => {
            let body = errors::from_status(
                &new_id(),
                status,
                header(&headers, "retry-after"),
                &bytes,
                now_ms,
            );
            let mut vars = vars_from_openrouter_error(&bytes, status, &headers, now_ms);
            vars.set("requested_model", requested_model);
            vars.set("api_model_id", crate::model::api_model_id(&model_id));
            vars.set("status_code", status.to_string());
            (body, rendered(TemplateKind::for_status(status), vars), true)
        }
        Failure::NotEventStream { content_type } => {
            let shown: String = content_type.chars().take(80).collect();
            let body = bad_gateway(
                &new_id(),
                "unexpected_content_type",
                &format!("OpenRouter answered with `{shown}` instead of an event stream"),
            );
            (
                body,
                rendered(TemplateKind::ServiceError, Vars::new()),
                true,
            )
        }
        Failure::Interrupted { detail } => {
            let body = bad_gateway(
                &new_id(),
                "stream_interrupted",
                &format!("The answer was cut off: {detail}"),
            );
            (
                body,
                rendered(TemplateKind::StreamInterrupted, Vars::new()),
                true,
            )
        }
        Failure::TooLarge { detail } => {
            let body = bad_gateway(
                &new_id(),
                "upstream_response_too_large",
                &format!("The answer was stopped: {detail}"),
            );
            let mut vars = Vars::new();
            vars.set("reason", body.message.as_str());
            (body, rendered(TemplateKind::StreamInterrupted, vars), true)
        }
        Failure::Stream {
            error,
            requested_model,
        } => {
            let mut vars = Vars::new();
            vars.set("detail", error.message.as_str());
            vars.set_opt("openrouter_code", error.code.clone());
            vars.set("requested_model", requested_model);
            let kind = TemplateKind::for_status(error.http_status);
            (*error, rendered(kind, vars), true)
        }
    };
    match moment {
        Moment::BeforeOutput => Shown { body, how, counted },
        // Once the caller has seen output, every failure is the answer cut short.
        Moment::AfterOutput => Shown {
            body,
            how: How::Appended {
                kind: TemplateKind::StreamInterrupted,
            },
            counted: true,
        },
    }
}

/// A 502: OpenRouter's answer could not be used.
fn bad_gateway(error_id: &str, code: &str, message: &str) -> ErrorBody {
    errors::body(error_id, 502, "upstream_error", Some(code), message)
}

/// An error split into its constructor and its body.
fn parts(error: PipeError) -> (fn(ErrorBody) -> PipeError, ErrorBody) {
    match error {
        PipeError::InvalidRequest(b) => (PipeError::InvalidRequest, b),
        PipeError::Upstream(b) => (PipeError::Upstream, b),
        PipeError::Unavailable(b) => (PipeError::Unavailable, b),
        PipeError::Internal(b) => (PipeError::Internal, b),
    }
}

/// The template variables every error shows: its id, the time, and who asked in which chat.
pub fn request_vars(ctx: &RequestContext, error_id: &str, now_ms: u64) -> Vars {
    let mut v = Vars::new();
    v.set("error_id", error_id);
    v.set("timestamp", iso8601(now_ms));
    v.set("request_id", ctx.request_id.as_str());
    v.set_opt("user_id", ctx.user_id.clone());
    v.set_opt("session_id", ctx.chat_id.clone());
    v
}

/// The `INTERNAL_ERROR_TEMPLATE` answer for a chat the component could not finish (the host
/// asks a fresh instance for it after a trap or an exhausted budget).
pub fn internal_error_text(
    templates: &TemplateSettings,
    ctx: &RequestContext,
    error_id: &str,
    failure: &str,
    now_ms: u64,
) -> String {
    let mut vars = request_vars(ctx, error_id, now_ms);
    vars.set("error_type", failure);
    templates.render(TemplateKind::InternalError, &vars)
}

impl<U: Upstream, K: Kv, E: Emit, V: Env> Pipe<'_, U, K, E, V> {
    /// Show `failure` to the caller as the table says, count it when it counts, and end the
    /// answer. `Ok` when the failure was delivered as (part of) the answer.
    pub(super) fn fail(
        &mut self,
        ctx: &RequestContext,
        failure: Failure,
        moment: Moment,
    ) -> Result<(), PipeError> {
        let env = self.env;
        let Shown { body, how, counted } =
            shown(failure, moment, &mut || errors::error_id(env.random_u64()));
        if counted {
            self.count_request_failure(ctx);
        }
        match how {
            How::Returned(made) => Err(made(body)),
            How::Rendered { kind, mut vars } => {
                self.env.log(&format!(
                    "[{}] {} (status {}, code {})",
                    body.error_id,
                    kind.valve(),
                    body.http_status,
                    body.code.as_deref().unwrap_or("-")
                ));
                if !ctx.openwebui_caller {
                    return Err(PipeError::Upstream(body));
                }
                vars.extend(request_vars(ctx, &body.error_id, self.env.now_ms()));
                let text = self.settings.templates.render(kind, &vars);
                let _ = self.emit.send(Event::TextDelta(text));
                let _ = self.emit.send(Event::Finish(FinishReason::Stop));
                Ok(())
            }
            How::Notice { text, why } => {
                self.env
                    .log(&format!("[{}] request refused: {why}", body.error_id));
                if !ctx.openwebui_caller {
                    return Err(PipeError::Upstream(body));
                }
                self.notify(ctx, text);
                let _ = self.emit.send(Event::TextDelta(text.into()));
                let _ = self.emit.send(Event::Finish(FinishReason::Stop));
                Ok(())
            }
            How::Appended { kind } => {
                self.env.log(&format!(
                    "[{}] failed after output: {}",
                    body.error_id,
                    body.code.as_deref().unwrap_or("-")
                ));
                if ctx.openwebui_caller {
                    let mut vars = request_vars(ctx, &body.error_id, self.env.now_ms());
                    vars.set("reason", body.message.as_str());
                    let text = self.settings.templates.render(kind, &vars);
                    let _ = self.emit.send(Event::TextDelta(format!("\n\n{text}")));
                    let _ = self.emit.send(Event::Finish(FinishReason::Stop));
                } else {
                    let _ = self.emit.send(Event::Error(body));
                    let _ = self.emit.send(Event::Finish(FinishReason::Error));
                }
                Ok(())
            }
        }
    }
}

/// A response header by name (names compare without case).
fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a row of the table says, in short: status, code, template (`None` when returned as
    /// an error to every caller, `Some("notice")` for the breaker notice), counted.
    fn row(failure: Failure, moment: Moment) -> (u16, Option<String>, Option<&'static str>, bool) {
        let mut ids = 0u64;
        let s = shown(failure, moment, &mut || {
            ids += 1;
            errors::error_id(ids)
        });
        let how = match s.how {
            How::Returned(_) => None,
            How::Rendered { kind, .. } | How::Appended { kind } => Some(kind.valve()),
            How::Notice { .. } => Some("notice"),
        };
        (s.body.http_status, s.body.code, how, s.counted)
    }

    fn status_failure(status: u16) -> Failure {
        Failure::Status {
            status,
            body: br#"{"error":{"message":"no"}}"#.to_vec(),
            headers: Vec::new(),
            requested_model: "a/b".into(),
            model_id: "a/b".into(),
            now_ms: 0,
        }
    }

    fn catalog(code: &str, status: u16) -> Failure {
        Failure::Catalog {
            error: Box::new(PipeError::InvalidRequest(errors::body(
                "1",
                status,
                "invalid_request_error",
                Some(code),
                "refused",
            ))),
            requested_model: "a/b".into(),
        }
    }

    #[test]
    fn each_failure_before_output_has_its_status_code_template_and_count() {
        use Moment::BeforeOutput as B;
        let code = |c: &str| Some(c.to_string());
        let table = [
            (
                Failure::InvalidBody("bad".into()),
                (400, code("invalid_body"), None, false),
            ),
            (
                catalog("model_restricted", 403),
                (
                    403,
                    code("model_restricted"),
                    Some(TemplateKind::ModelRestricted.valve()),
                    false,
                ),
            ),
            (
                catalog("model_not_found", 404),
                (404, code("model_not_found"), None, false),
            ),
            (
                Failure::EndpointConflict {
                    model_id: "a/b".into(),
                    required: Endpoint::ChatCompletions,
                    forced: Endpoint::Responses,
                },
                (
                    400,
                    code("endpoint_override_conflict"),
                    Some(TemplateKind::EndpointOverrideConflict.valve()),
                    false,
                ),
            ),
            (
                Failure::AuthWindow {
                    requested_model: "a/b".into(),
                    detail: String::new(),
                    seconds_left: 5,
                },
                (
                    401,
                    code("upstream_unauthorized"),
                    Some(TemplateKind::Authentication.valve()),
                    false,
                ),
            ),
            (
                Failure::BreakerOpen,
                (429, code("breaker_open"), Some("notice"), false),
            ),
            (
                Failure::Transport {
                    endpoint: Endpoint::Responses,
                    error: TransportError::Timeout("slow".into()),
                    timeout_seconds: 30,
                },
                (
                    504,
                    code("upstream_timeout"),
                    Some(TemplateKind::NetworkTimeout.valve()),
                    true,
                ),
            ),
            (
                Failure::Transport {
                    endpoint: Endpoint::Responses,
                    error: TransportError::Connect("refused".into()),
                    timeout_seconds: 30,
                },
                (
                    502,
                    code("upstream_unreachable"),
                    Some(TemplateKind::ConnectionError.valve()),
                    true,
                ),
            ),
            (
                status_failure(429),
                (
                    429,
                    code("rate_limited"),
                    Some(TemplateKind::RateLimit.valve()),
                    true,
                ),
            ),
            (
                Failure::NotEventStream {
                    content_type: "text/html".into(),
                },
                (
                    502,
                    code("unexpected_content_type"),
                    Some(TemplateKind::ServiceError.valve()),
                    true,
                ),
            ),
            (
                Failure::Interrupted {
                    detail: "cut".into(),
                },
                (
                    502,
                    code("stream_interrupted"),
                    Some(TemplateKind::StreamInterrupted.valve()),
                    true,
                ),
            ),
            (
                Failure::TooLarge {
                    detail: "big".into(),
                },
                (
                    502,
                    code("upstream_response_too_large"),
                    Some(TemplateKind::StreamInterrupted.valve()),
                    true,
                ),
            ),
            (
                Failure::Stream {
                    error: Box::new(errors::body("1", 402, "insufficient_quota", None, "pay")),
                    requested_model: "a/b".into(),
                },
                (
                    402,
                    None,
                    Some(TemplateKind::InsufficientCredits.valve()),
                    true,
                ),
            ),
        ];
        for (failure, want) in table {
            let name = format!("{failure:?}");
            assert_eq!(row(failure, B), want, "{name}");
        }
    }

    #[test]
    fn after_output_every_upstream_failure_is_the_answer_cut_short_and_counts() {
        let appended = Some(TemplateKind::StreamInterrupted.valve());
        for failure in [
            status_failure(500),
            Failure::NotEventStream {
                content_type: "text/html".into(),
            },
            Failure::Interrupted {
                detail: "cut".into(),
            },
            Failure::TooLarge {
                detail: "big".into(),
            },
        ] {
            let name = format!("{failure:?}");
            let (_, _, how, counted) = row(failure, Moment::AfterOutput);
            assert_eq!((how, counted), (appended, true), "{name}");
        }
    }

    #[test]
    fn a_failure_that_carries_its_error_keeps_its_id() {
        let mut asked = false;
        let s = shown(
            Failure::Stream {
                error: Box::new(errors::body("feed", 502, "upstream_error", None, "x")),
                requested_model: "a/b".into(),
            },
            Moment::BeforeOutput,
            &mut || {
                asked = true;
                "new".into()
            },
        );
        assert_eq!(s.body.error_id, "feed");
        assert!(!asked);
    }

    #[test]
    fn the_auth_window_message_names_what_openrouter_said_and_the_wait() {
        let s = shown(
            Failure::AuthWindow {
                requested_model: "a/b".into(),
                detail: "User not found.".into(),
                seconds_left: 42,
            },
            Moment::BeforeOutput,
            &mut || "0000000000000001".into(),
        );
        assert_eq!(
            s.body.message,
            "OpenRouter did not accept the API key (HTTP 401): User not found.; requests are not \
             sent to OpenRouter again for 42 s (error id 0000000000000001)"
        );
    }
}
