//! One chat completion, end to end: validate the body, recognise housekeeping tasks, find and
//! check the model, choose the endpoint, build the request, call OpenRouter and relay its SSE
//! stream as caller events, recovering where the reference pipe does (retries before the first
//! event, the `/chat/completions` fallback, the three reasoning recoveries).
//!
//! Failures before any visible output are returned as `PipeError` (the host answers with an HTTP
//! status) — except for Open WebUI callers, who get the rendered error template as the answer,
//! as the reference pipe shows it. Failures after output become an in-stream error (or, for Open
//! WebUI, the stream-interrupted template appended to the partial answer).

use crate::auth_window;
use crate::caps::{
    Emit, Env, HttpRequest, HttpResponse, Kv, Method, NoTools, Tools, TransportError, Upstream,
    read_body,
};
use crate::catalog::Catalog;
use crate::chat_body::{self, ChatRequest};
use crate::chat_bridge::ChatStream;
use crate::endpoint::{self, Choice, Endpoint};
use crate::errors;
use crate::model::ModelInfo;
use crate::owui_events;
use crate::request::{self, Built, Identity};
use crate::settings::Settings;
use crate::stream::{ResponsesStream, Step};
use crate::templates::{TemplateKind, Vars, vars_from_openrouter_error};
use crate::tool_loop::{self, CallOutcome, Executor, Outcome, ToolSet, breaker};
use crate::types::{ErrorBody, Event, FinishReason, PipeError, RequestContext, Usage};
use crate::usage_status;
use futures::{FutureExt, StreamExt};
use responses_pipe_sse::StreamError;
use serde_json::Value;

/// Largest upstream error body we read.
const MAX_ERROR_BODY_BYTES: usize = 1 << 20;
/// Largest non-streamed (task) response we read.
const MAX_TASK_BODY_BYTES: usize = 8 << 20;
/// Transport retries before the first event (the reference's ≤3, exponential from 0.5 s).
const MAX_TRANSPORT_RETRIES: u32 = 3;
/// Events drained without waiting before the coalescer decides to flush.
const MICRO_DRAIN_EVENTS: usize = 32;
/// When "Thinking…" statuses are shown before the first token (ms after the request started).
const THINKING_STAGES_MS: [u64; 5] = [0, 1_500, 4_000, 6_000, 7_000];
const THINKING_STAGES: [&str; 5] = [
    "Thinking…",
    "Still thinking…",
    "Thinking it through…",
    "Working on a careful answer…",
    "Almost there…",
];

/// The status line shown when a request moves to `/chat/completions`.
const FALLBACK_NOTICE: &str =
    "This model does not support the Responses API here; using Chat Completions instead";

/// The capabilities one chat needs.
pub struct Pipe<'a, U, K, E, V> {
    pub settings: &'a Settings,
    pub upstream: &'a U,
    pub kv: &'a K,
    pub emit: &'a mut E,
    pub env: &'a V,
    /// Artifact store and crypto (persistence and replay, `artifacts`).
    pub artifacts: crate::artifacts::Caps<'a>,
}

/// How one upstream stream ended.
enum RelayEnd {
    Completed {
        finish: FinishReason,
        usage: Option<Usage>,
        /// The response's output items in Responses shape (see `ResponsesStream::output`); for
        /// a `/chat/completions` stream, its tool calls as `function_call` items.
        output: Vec<Value>,
        /// Whether any answer text arrived.
        text: bool,
        /// For a `/chat/completions` stream, what goes back with its tool calls.
        chat: ChatTurn,
    },
    Failed {
        visible: bool,
        error: ErrorBody,
    },
    Interrupted {
        visible: bool,
        events: u32,
        detail: String,
    },
    /// A line or event passed `SSE_MAX_EVENT_BYTES`, or the stream passed the host's response
    /// cap: never retried (the same request would send the same bytes).
    TooLarge {
        visible: bool,
        detail: String,
    },
    CallerGone,
}

/// A `/chat/completions` turn's own words: its text and its reassembled `reasoning_details`.
/// Both go back with the turn's tool calls on the next tool-loop turn, as they do on
/// `/responses` (the output items); providers such as Anthropic refuse a tool result whose call
/// lost its signed thinking.
#[derive(Default)]
struct ChatTurn {
    text: String,
    reasoning_details: Value,
}

impl ChatTurn {
    /// The turn's output items in Responses shape: its `reasoning_details` as one `reasoning`
    /// item (persisted and replayed like a `/responses` turn's, see
    /// `artifacts::chat_reasoning`), then its tool calls.
    fn output(&self, calls: Vec<Value>, random: u64) -> Vec<Value> {
        let id = format!(
            "{}{random:016x}",
            crate::artifacts::chat_reasoning::ID_PREFIX
        );
        crate::artifacts::chat_reasoning::item_from_details(&self.reasoning_details, &id)
            .into_iter()
            .chain(calls)
            .collect()
    }

    /// Append the tool round to a `/chat/completions` body: the assistant message carries the
    /// turn's text and, when there are any, its `reasoning_details`.
    fn continue_body(&self, body: &mut Value, outcomes: &[CallOutcome]) {
        tool_loop::continue_chat(body, &self.text, outcomes);
        let has_details = self
            .reasoning_details
            .as_array()
            .is_some_and(|d| !d.is_empty());
        if !has_details {
            return;
        }
        let last_assistant = body
            .get_mut("messages")
            .and_then(Value::as_array_mut)
            .and_then(|m| {
                m.iter_mut()
                    .rfind(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
            })
            .and_then(Value::as_object_mut);
        if let Some(message) = last_assistant {
            message.insert("reasoning_details".into(), self.reasoning_details.clone());
        }
    }
}

/// What the tool loop carries from one model turn to the next.
#[derive(Default)]
struct Rounds {
    /// Model turns completed so far.
    turns: u32,
    /// Usage summed over the turns.
    usage: Option<Usage>,
    /// Whether any turn produced answer text.
    text: bool,
    /// The loop limit was reached: this turn is the synthesis turn.
    synthesis: bool,
    /// The items to persist when the answer is over, in order (see `collect_turn`).
    items: Vec<Value>,
    /// Whether anything can be persisted for this request (a chat id and a granted table);
    /// without it no item is gathered.
    persist: bool,
    /// The last `/chat/completions` turn's text and reasoning details.
    chat: ChatTurn,
    /// A turn had every call skipped by tool breakers (counted against the request breaker),
    /// so finishing this answer is not the success that clears it.
    degraded: bool,
}

/// Gather a finished turn's items for persistence at the end of the answer: its output items,
/// and each call that ran successfully followed by its output. Calls that did not run
/// successfully (failed, skipped, malformed) and calls handed back to the client are left out:
/// failed or omitted outputs are never persisted, and a handed-back call comes
/// back with the client's next request.
fn collect_turn(rounds: &mut Rounds, output: &[Value], outcomes: &[CallOutcome]) {
    if !rounds.persist {
        return;
    }
    for item in output {
        if item.get("type").and_then(Value::as_str) != Some("function_call") {
            rounds.items.push(item.clone());
            continue;
        }
        let id = item.get("call_id").and_then(Value::as_str).unwrap_or("");
        if let Some(done) = outcomes
            .iter()
            .find(|o| o.call.call_id == id && o.outcome == Outcome::Ok)
        {
            rounds.items.push(item.clone());
            rounds.items.push(done.item());
        }
    }
}

/// What follows a completed model turn.
enum Turn {
    /// The answer is over, with this finish.
    Done(FinishReason),
    /// The body was extended with tool outputs: call the model again.
    Again,
}

/// The status and notice shown when a user's request breaker is open.
const BREAKER_NOTICE: &str =
    "Temporarily disabled due to repeated errors. Please wait a minute and try again.";

/// The one-shot recoveries, each used at most once per request.
#[derive(Default)]
struct Recoveries {
    effort: bool,
    no_reasoning: bool,
    signature: bool,
    fallback: bool,
}

/// Text and reasoning deltas merged Nagle-style before they reach the caller.
struct Coalescer {
    limit: usize,
    min_flush: usize,
    text: String,
    reasoning: String,
}

impl Coalescer {
    fn pending(&self) -> usize {
        self.text.len() + self.reasoning.len()
    }
}

/// Reasoning shown as throttled status lines (`THINKING_OUTPUT_MODE=status|both`).
#[derive(Default)]
struct ReasoningStatus {
    buf: String,
    /// When reasoning text last arrived (ms), for the idle rule.
    last_ms: u64,
}

/// Buffered status-mode reasoning is shown once it is this long and nothing new came for
/// `REASONING_STATUS_IDLE_MS` (the reference's 12 chars / 0.75 s rule).
const REASONING_STATUS_IDLE_CHARS: usize = 12;
const REASONING_STATUS_IDLE_MS: u64 = 750;

fn is_sentence_end(s: &str) -> bool {
    s.trim_end().ends_with(['.', '!', '?', ':'])
}

/// Whose request breaker a request counts for: the caller's principal (key name and user).
fn breaker_user(ctx: &RequestContext) -> String {
    ctx.principal()
}

/// Longest status line made from reasoning text, in characters.
const REASONING_STATUS_MAX_CHARS: usize = 160;

/// The status line for a piece of reasoning: its last `**Title**` heading when it has one
/// (reasoning summaries head each step that way), else its last 160 characters.
fn reasoning_status_line(piece: &str) -> String {
    let mut title = None;
    let mut rest = piece;
    while let Some(start) = rest.find("**") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("**") else {
            break;
        };
        let t = after[..end].trim();
        if !t.is_empty() && t.chars().count() <= 80 && !t.contains('\n') {
            title = Some(t);
        }
        rest = &after[end + 2..];
    }
    if let Some(t) = title {
        return t.to_string();
    }
    let text = piece.trim();
    let skip = text
        .chars()
        .count()
        .saturating_sub(REASONING_STATUS_MAX_CHARS);
    text.chars().skip(skip).collect()
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
    templates: &crate::templates::TemplateSettings,
    ctx: &RequestContext,
    error_id: &str,
    failure: &str,
    now_ms: u64,
) -> String {
    let mut vars = request_vars(ctx, error_id, now_ms);
    vars.set("error_type", failure);
    templates.render(TemplateKind::InternalError, &vars)
}

/// ISO-8601 UTC timestamp (second precision) of a Unix time in milliseconds.
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), valid for the proleptic Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The housekeeping task a request is, if any (Open WebUI's `{{TASK}}` header, or the task
/// prompt shape of a non-streamed request). `moa_response_generation` is a normal chat. Only a
/// caller whose key may assert Open WebUI identity (`openwebui_key`) has tasks: from any other
/// key, a task-shaped body is an ordinary chat, so the task fast path (its own reasoning effort,
/// no tools, stubs instead of errors) cannot be chosen by a plain API client.
pub fn task_name(ctx: &RequestContext, req: &ChatRequest) -> Option<String> {
    if !ctx.openwebui_key {
        return None;
    }
    if let Some(t) = ctx.task.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        return (t != "moa_response_generation").then(|| t.to_string());
    }
    if req.stream {
        return None;
    }
    let last_user = req
        .body
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| {
            m.iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        })
        .map(|m| chat_body::content_text(m.get("content")))
        .unwrap_or_default();
    last_user
        .trim_start()
        .starts_with("### Task:")
        .then(|| "task".to_string())
}

/// Who is asking, as the host vouched for it. Open WebUI forwards no session id to model
/// connections, so there is none to send.
fn identity_of(ctx: &RequestContext) -> Identity {
    Identity {
        user_id: ctx.user_id.clone(),
        user_email: ctx.user_email.clone(),
        user_name: ctx.user_name.clone(),
        chat_id: ctx.chat_id.clone(),
        message_id: ctx.message_id.clone(),
        session_id: None,
        cache_session_id: ctx.cache_session_id.clone(),
    }
}

/// The parseable stub Open WebUI accepts for a task when OpenRouter cannot be asked.
pub fn task_stub(task: &str) -> Option<&'static str> {
    let t = task.to_ascii_lowercase();
    if t.contains("title") {
        Some(r#"{"title":"Chat"}"#)
    } else if t.contains("tag") {
        Some(r#"{"tags":["General"]}"#)
    } else if t.contains("follow") {
        Some(r#"{"follow_ups":[]}"#)
    } else {
        None
    }
}

/// The output text of a non-streamed Responses object.
pub fn response_output_text(v: &Value) -> String {
    let mut out = String::new();
    for item in v
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if item.get("type").and_then(Value::as_str) != Some("message") {
            continue;
        }
        for part in item
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if part.get("type").and_then(Value::as_str) == Some("output_text")
                && let Some(t) = part.get("text").and_then(Value::as_str)
            {
                out.push_str(t);
            }
        }
    }
    if out.is_empty() {
        out = v
            .get("output_text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
    }
    out
}

/// The effort ladder the downgrade recovery walks.
const EFFORTS: [&str; 6] = ["none", "minimal", "low", "medium", "high", "xhigh"];

/// Parse "Supported values are: 'low', 'medium'" and pick the nearest supported effort: the next
/// higher one if the requested effort is inside the supported range, else the clamp.
pub fn downgraded_effort(message: &str, requested: &str) -> Option<String> {
    let lower = message.to_ascii_lowercase();
    let at = lower.find("supported values are")?;
    let tail = &message[at..];
    let supported: Vec<usize> = EFFORTS
        .iter()
        .enumerate()
        .filter(|(_, e)| tail.contains(&format!("'{e}'")) || tail.contains(&format!("\"{e}\"")))
        .map(|(i, _)| i)
        .collect();
    let (&lo, &hi) = (supported.first()?, supported.last()?);
    let want = EFFORTS.iter().position(|e| *e == requested).unwrap_or(3);
    let pick = if want < lo {
        lo
    } else if want > hi {
        hi
    } else {
        *supported.iter().find(|&&i| i >= want)?
    };
    (EFFORTS[pick] != requested).then(|| EFFORTS[pick].to_string())
}

impl<U: Upstream, K: Kv, E: Emit, V: Env> Pipe<'_, U, K, E, V> {
    fn new_error_id(&self) -> String {
        errors::error_id(self.env.random_u64())
    }

    fn status(&mut self, ctx: &RequestContext, text: &str, done: bool) {
        if ctx.openwebui_caller {
            let _ = self.emit.send(Event::OpenWebUiEvent(owui_events::status(
                text, done, false,
            )));
        }
    }

    fn base_vars(&self, ctx: &RequestContext, error_id: &str) -> Vars {
        request_vars(ctx, error_id, self.env.now_ms())
    }

    /// A failure before any visible output: Open WebUI callers get the rendered template as the
    /// answer; everyone else an HTTP error.
    fn fail_before_output(
        &mut self,
        ctx: &RequestContext,
        kind: TemplateKind,
        vars: Vars,
        body: ErrorBody,
    ) -> Result<(), PipeError> {
        // A refusal by policy or configuration is not a failure of the service.
        if !matches!(
            kind,
            TemplateKind::ModelRestricted | TemplateKind::EndpointOverrideConflict
        ) {
            self.count_request_failure(ctx);
        }
        self.answer_failure(ctx, kind, vars, body)
    }

    /// Show a failure before any output without counting it: Open WebUI callers get the
    /// rendered template as the answer, everyone else an HTTP error.
    fn answer_failure(
        &mut self,
        ctx: &RequestContext,
        kind: TemplateKind,
        mut vars: Vars,
        body: ErrorBody,
    ) -> Result<(), PipeError> {
        self.env.log(&format!(
            "[{}] {} (status {}, code {})",
            body.error_id,
            kind.valve(),
            body.http_status,
            body.code.as_deref().unwrap_or("-")
        ));
        if ctx.openwebui_caller {
            vars.extend(self.base_vars(ctx, &body.error_id));
            let text = self.settings.templates.render(kind, &vars);
            let _ = self.emit.send(Event::TextDelta(text));
            let _ = self.emit.send(Event::Finish(FinishReason::Stop));
            return Ok(());
        }
        Err(PipeError::Upstream(body))
    }

    /// Whether this request asks for ZDR providers (`REQUEST_ZDR`, or a per-chat `zdr` when
    /// `ALLOW_USER_ZDR_OVERRIDE` lets it).
    fn zdr_requested(&self, request: &ChatRequest) -> bool {
        self.settings.request.allow_user_zdr_override
            && (self.settings.request.request_zdr
                || request.body.get("zdr") == Some(&Value::Bool(true)))
    }

    /// Serve one chat completion request, without host tools.
    pub async fn chat(&mut self, ctx: &RequestContext, body: &[u8]) -> Result<(), PipeError> {
        self.chat_with_tools(ctx, body, &NoTools).await
    }

    /// Serve one chat completion request; in Pipeline mode the host's `tools` run the model's
    /// calls to them, round after round.
    pub async fn chat_with_tools<T: Tools>(
        &mut self,
        ctx: &RequestContext,
        body: &[u8],
        tools: &T,
    ) -> Result<(), PipeError> {
        let mut request = chat_body::parse_chat_body(body).map_err(|e| {
            PipeError::InvalidRequest(errors::body(
                &self.new_error_id(),
                400,
                "invalid_request_error",
                Some("invalid_body"),
                &e.0,
            ))
        })?;
        if let Some(task) = task_name(ctx, &request) {
            return self.task(ctx, &request, &task).await;
        }
        if let Some(refusal) = auth_window::open(self.kv, &ctx.principal(), self.env.now_ms()) {
            return self.auth_refusal(ctx, &request.model, &refusal);
        }
        let replayed = self.replay_artifacts(ctx, &mut request);
        let catalog = Catalog {
            settings: &self.settings.catalog,
            openrouter: &self.settings.openrouter,
            upstream: self.upstream,
            kv: self.kv,
            env: self.env,
        };
        let model = match catalog
            .find(&request.model, self.zdr_requested(&request))
            .await
        {
            Ok(m) => m,
            Err(PipeError::InvalidRequest(b)) if b.code.as_deref() == Some("model_restricted") => {
                let mut vars = Vars::new();
                vars.set("requested_model", request.model.as_str());
                vars.set("restriction_reasons", b.message.as_str());
                vars.set("reason", b.message.as_str());
                return self.fail_before_output(ctx, TemplateKind::ModelRestricted, vars, b);
            }
            Err(e) => return Err(e),
        };
        // Fusion exists only on /responses: no force list, preset or fallback
        // sends it elsewhere.
        let fusion = crate::fusion::requested(&model.id, &request.body);
        let mut endpoint = match endpoint::choose(
            &self.settings.endpoint,
            &model.id,
            // A preset (in the body, or a `:preset/` variant) only works on /chat/completions.
            request.body.contains_key("preset") || model.id.contains(":preset/"),
            false,
        ) {
            _ if fusion => Endpoint::Responses,
            Choice::Use(e) => e,
            Choice::Conflict { required, forced } => {
                let id = self.new_error_id();
                let body = errors::body(
                    &id,
                    400,
                    "invalid_request_error",
                    Some("endpoint_override_conflict"),
                    &format!(
                        "`{}` needs {} but the configuration forces {}",
                        model.id,
                        required.path(),
                        forced.path()
                    ),
                );
                let mut vars = Vars::new();
                vars.set("requested_model", model.id.as_str());
                vars.set("required_endpoint", required.path());
                vars.set("forced_endpoint", forced.path());
                return self.fail_before_output(
                    ctx,
                    TemplateKind::EndpointOverrideConflict,
                    vars,
                    body,
                );
            }
        };
        let identity = identity_of(ctx);
        let user = breaker_user(ctx);
        let breaker = self.request_breaker(&user);
        let recent_failures = breaker.failure_count(self.env.now_ms());
        if breaker.opens_at(recent_failures) {
            return self.breaker_refusal(ctx);
        }
        let mut built = self.build(endpoint, &request, &model, &identity)?;
        for notice in built.notices.clone() {
            self.status(ctx, &notice, false);
        }
        let mut set = self.offer_tools(endpoint, &model, tools, &mut built);
        let mut rounds = Rounds {
            persist: ctx.chat_id.is_some() && !self.settings.artifacts.artifact_table.is_empty(),
            ..Rounds::default()
        };
        let mut recoveries = Recoveries::default();
        let mut transport_retries = 0;
        loop {
            let later = rounds.turns > 0;
            let response = match self.post(endpoint, &built, "text/event-stream").await {
                Ok(r) => r,
                Err(e) => {
                    let retryable = matches!(
                        e,
                        TransportError::Connect(_)
                            | TransportError::Timeout(_)
                            | TransportError::Protocol(_)
                    );
                    if retryable && transport_retries < MAX_TRANSPORT_RETRIES {
                        transport_retries += 1;
                        self.env
                            .sleep_ms(500u64 << (transport_retries - 1).min(3))
                            .await;
                        continue;
                    }
                    let body = errors::from_transport(&self.new_error_id(), "reach OpenRouter", &e);
                    let kind = if matches!(e, TransportError::Timeout(_)) {
                        TemplateKind::NetworkTimeout
                    } else {
                        TemplateKind::ConnectionError
                    };
                    let mut vars = Vars::new();
                    vars.set("endpoint", endpoint.path());
                    vars.set("error_type", format!("{e}"));
                    vars.set(
                        "timeout_seconds",
                        self.settings.openrouter.http_sock_read_seconds.to_string(),
                    );
                    return self.fail_early(ctx, later, kind, vars, body);
                }
            };
            let mut response = response;
            if response.status >= 400 {
                let retry_after = response.header("retry-after").map(str::to_string);
                let bytes = read_body(&mut response.body, MAX_ERROR_BODY_BYTES)
                    .await
                    .unwrap_or_default();
                if let Some(note) = self.recover(
                    endpoint,
                    response.status,
                    &bytes,
                    &mut recoveries,
                    &mut built,
                ) {
                    self.status(ctx, &note, false);
                    continue;
                }
                if !later
                    && !fusion
                    && self.may_fall_back(endpoint, &mut recoveries, response.status, &bytes)
                {
                    endpoint = Endpoint::ChatCompletions;
                    built = self.build(endpoint, &request, &model, &identity)?;
                    set = self.offer_tools(endpoint, &model, tools, &mut built);
                    self.status(ctx, FALLBACK_NOTICE, false);
                    continue;
                }
                let body = errors::from_status(
                    &self.new_error_id(),
                    response.status,
                    retry_after.as_deref(),
                    &bytes,
                );
                if response.status == 401 {
                    let said = errors::parse_openrouter_error(&bytes).message;
                    auth_window::record(
                        self.kv,
                        &ctx.principal(),
                        self.env.now_ms(),
                        said.as_deref().unwrap_or(""),
                    );
                }
                let mut vars =
                    vars_from_openrouter_error(&bytes, response.status, &response.headers);
                vars.set("requested_model", request.model.as_str());
                vars.set("api_model_id", crate::model::api_model_id(&model.id));
                vars.set("status_code", response.status.to_string());
                return self.fail_early(
                    ctx,
                    later,
                    TemplateKind::for_status(response.status),
                    vars,
                    body,
                );
            }
            let content_type = response
                .header("content-type")
                .unwrap_or("")
                .to_ascii_lowercase();
            if !content_type.starts_with("text/event-stream") {
                let shown: String = content_type.chars().take(80).collect();
                let body = errors::body(
                    &self.new_error_id(),
                    502,
                    "upstream_error",
                    Some("unexpected_content_type"),
                    &format!("OpenRouter answered with `{shown}` instead of an event stream"),
                );
                return self.fail_early(ctx, later, TemplateKind::ServiceError, Vars::new(), body);
            }
            match self.relay(ctx, endpoint, response, !later).await {
                RelayEnd::CallerGone => return Ok(()),
                RelayEnd::Completed {
                    finish,
                    usage,
                    output,
                    text,
                    chat,
                } => {
                    rounds.usage = tool_loop::merge_usage(rounds.usage.take(), usage);
                    rounds.text |= text;
                    rounds.chat = chat;
                    let next = self.after_turn(
                        ctx,
                        endpoint,
                        tools,
                        &set,
                        &user,
                        &mut rounds,
                        &mut built,
                        finish,
                        output,
                    );
                    match next {
                        Turn::Done(finish) => {
                            let items = std::mem::take(&mut rounds.items);
                            self.persist_artifacts(ctx, &request, &items);
                            crate::artifacts::replay::after_reply(
                                self.artifacts,
                                &self.settings.artifacts,
                                self.env,
                                &replayed,
                            );
                            self.finish_ok(ctx, finish, rounds.usage.take());
                            // A successful answer clears the user's request breaker; read
                            // once above, so a user without failures costs no write.
                            if recent_failures > 0 && !rounds.degraded {
                                self.request_breaker(&user).clear();
                            }
                            return Ok(());
                        }
                        Turn::Again => {
                            transport_retries = 0;
                            continue;
                        }
                    }
                }
                RelayEnd::Interrupted {
                    visible: false,
                    events: 0,
                    detail,
                } if transport_retries < MAX_TRANSPORT_RETRIES => {
                    // Nothing at all arrived: safe to retry, as the reference does.
                    transport_retries += 1;
                    self.env
                        .log(&format!("retrying after an empty stream: {detail}"));
                    self.env
                        .sleep_ms(500u64 << (transport_retries - 1).min(3))
                        .await;
                }
                RelayEnd::Interrupted {
                    visible, detail, ..
                } => {
                    let visible = visible || later;
                    let body = errors::body(
                        &self.new_error_id(),
                        502,
                        "upstream_error",
                        Some("stream_interrupted"),
                        &format!("The answer was cut off: {detail}"),
                    );
                    return self.fail_midway(ctx, visible, body);
                }
                RelayEnd::TooLarge { visible, detail } => {
                    let body = errors::body(
                        &self.new_error_id(),
                        502,
                        "upstream_error",
                        Some("upstream_response_too_large"),
                        &format!("The answer was stopped: {detail}"),
                    );
                    if visible || later {
                        return self.fail_midway(ctx, true, body);
                    }
                    let mut vars = Vars::new();
                    vars.set("reason", body.message.as_str());
                    return self.fail_before_output(
                        ctx,
                        TemplateKind::StreamInterrupted,
                        vars,
                        body,
                    );
                }
                RelayEnd::Failed {
                    visible: false,
                    error,
                } if !later => {
                    let raw = serde_json::json!({"error": {"message": error.message, "code": error.code}}).to_string();
                    if !later
                        && !fusion
                        && self.may_fall_back(endpoint, &mut recoveries, 400, raw.as_bytes())
                    {
                        endpoint = Endpoint::ChatCompletions;
                        built = self.build(endpoint, &request, &model, &identity)?;
                        set = self.offer_tools(endpoint, &model, tools, &mut built);
                        self.status(ctx, FALLBACK_NOTICE, false);
                        continue;
                    }
                    let status = error.http_status;
                    let mut vars = Vars::new();
                    vars.set("detail", error.message.as_str());
                    vars.set_opt("openrouter_code", error.code.clone());
                    vars.set("requested_model", request.model.as_str());
                    return self.fail_early(
                        ctx,
                        later,
                        TemplateKind::for_status(status),
                        vars,
                        error,
                    );
                }
                RelayEnd::Failed { error, .. } => return self.fail_midway(ctx, true, error),
            }
        }
    }

    /// A failure before this turn's output: before any output at all it is
    /// `fail_before_output`; in a later tool-loop turn the caller has seen output already.
    fn fail_early(
        &mut self,
        ctx: &RequestContext,
        later: bool,
        kind: TemplateKind,
        vars: Vars,
        body: ErrorBody,
    ) -> Result<(), PipeError> {
        if later {
            return self.fail_midway(ctx, true, body);
        }
        self.fail_before_output(ctx, kind, vars, body)
    }

    /// A failed request counts against the user's request breaker.
    fn count_request_failure(&self, ctx: &RequestContext) {
        self.request_breaker(&breaker_user(ctx))
            .record_failure(self.env.now_ms());
    }

    fn request_breaker(&self, user: &str) -> breaker::Breaker<'_, K> {
        let t = &self.settings.tools;
        breaker::Breaker {
            kv: self.kv,
            key: breaker::request_key(user),
            max_failures: t.breaker_max_failures,
            window_ms: t.window_ms(),
        }
    }

    /// OpenRouter refused this caller's key less than a minute ago: refuse at once with the
    /// authentication template, without calling OpenRouter and without counting a failure.
    fn auth_refusal(
        &mut self,
        ctx: &RequestContext,
        requested_model: &str,
        refusal: &auth_window::Refusal,
    ) -> Result<(), PipeError> {
        let left = refusal.seconds_left(self.env.now_ms());
        let mut message = "OpenRouter did not accept the API key (HTTP 401)".to_string();
        if !refusal.detail.is_empty() {
            message.push_str(": ");
            message.push_str(&refusal.detail);
        }
        message.push_str(&format!(
            "; requests are not sent to OpenRouter again for {left} s"
        ));
        let body = errors::body(
            &self.new_error_id(),
            401,
            "authentication_error",
            Some("upstream_unauthorized"),
            &message,
        );
        let mut vars = Vars::new();
        vars.set("status_code", "401");
        vars.set("requested_model", requested_model);
        if !refusal.detail.is_empty() {
            vars.set("openrouter_message", refusal.detail.as_str());
            vars.set("detail", refusal.detail.as_str());
        }
        self.answer_failure(ctx, TemplateKind::Authentication, vars, body)
    }

    /// The user's request breaker is open: refuse without calling OpenRouter.
    fn breaker_refusal(&mut self, ctx: &RequestContext) -> Result<(), PipeError> {
        let body = errors::body(
            &self.new_error_id(),
            429,
            "rate_limit_error",
            Some("breaker_open"),
            BREAKER_NOTICE,
        );
        self.env.log(&format!(
            "[{}] request refused: the user's breaker is open",
            body.error_id
        ));
        if ctx.openwebui_caller {
            self.notify(ctx, BREAKER_NOTICE);
            let _ = self.emit.send(Event::TextDelta(BREAKER_NOTICE.into()));
            let _ = self.emit.send(Event::Finish(FinishReason::Stop));
            return Ok(());
        }
        Err(PipeError::Upstream(body))
    }

    /// Pipeline mode: offer the host's tools in a freshly built body.
    fn offer_tools<T: Tools>(
        &self,
        endpoint: Endpoint,
        model: &ModelInfo,
        tools: &T,
        built: &mut Built,
    ) -> ToolSet {
        let t = &self.settings.tools;
        if !t.pipeline() || !tool_loop::model_takes_tools(model) {
            return ToolSet::default();
        }
        let env = self.env;
        tool_loop::offer_host_tools(
            t,
            model,
            tools.available(),
            endpoint,
            &mut built.body,
            &mut |line| env.log(line),
        )
    }

    /// A completed model turn: answer, hand calls back to the client, or run the host's calls and
    /// go again.
    #[allow(
        clippy::too_many_arguments,
        reason = "the loop's state is spread over the request's locals"
    )]
    fn after_turn<T: Tools>(
        &mut self,
        ctx: &RequestContext,
        endpoint: Endpoint,
        tools: &T,
        set: &ToolSet,
        user: &str,
        rounds: &mut Rounds,
        built: &mut Built,
        finish: FinishReason,
        output: Vec<Value>,
    ) -> Turn {
        let calls = if matches!(finish, FinishReason::Stop | FinishReason::ToolCalls) {
            crate::stream::function_calls(&output)
        } else {
            Vec::new()
        };
        if calls.is_empty() {
            collect_turn(rounds, &output, &[]);
            return Turn::Done(self.final_finish(ctx, rounds, finish));
        }
        // Calls to tools the host does not serve go back to the client, and the turn ends.
        let (host, client): (Vec<_>, Vec<_>) = calls
            .into_iter()
            .partition(|c| set.serves(&c.name).is_some());
        if !client.is_empty() {
            if !host.is_empty() {
                self.env.log(&format!(
                    "{} host tool call(s) not run: the turn also calls client tools, which end it",
                    host.len()
                ));
            }
            let handed: Vec<_> = client.iter().map(tool_loop::pass_through_call).collect();
            collect_turn(rounds, &output, &[]);
            let _ = self.emit.send(Event::ToolCalls(handed));
            return Turn::Done(FinishReason::ToolCalls);
        }
        if rounds.synthesis {
            // The model called tools again in its synthesis turn: stop here.
            self.env
                .log("the synthesis turn called tools again; ending the answer");
            collect_turn(rounds, &output, &[]);
            return Turn::Done(self.final_finish(ctx, rounds, FinishReason::Stop));
        }
        let skip = rounds.turns + 1 >= self.settings.tools.max_loops();
        let now = self.env.now_ms();
        let kv = self.kv;
        let executor = Executor {
            settings: &self.settings.tools,
            kv,
            tools,
            set,
            user,
            now_ms: now,
        };
        let owui = ctx.openwebui_caller;
        let emit = &mut *self.emit;
        // Announced before each wave goes to the host (`invoke` blocks until the wave is done).
        let outcomes = executor.run(&host, skip, &mut |wave| {
            let line = match wave {
                [one] => format!("Running {}…", one.name),
                many => format!("Running {} tools…", many.len()),
            };
            if owui {
                let _ = emit.send(Event::OpenWebUiEvent(owui_events::status(
                    &line, false, false,
                )));
            }
        });
        self.report_outcomes(ctx, &outcomes, skip);
        if !outcomes.is_empty()
            && outcomes
                .iter()
                .all(|o| o.outcome == Outcome::BreakerSkipped)
        {
            self.request_breaker(user).record_failure(now);
            rounds.degraded = true;
        }
        collect_turn(rounds, &output, &outcomes);
        match endpoint {
            Endpoint::Responses => {
                tool_loop::continue_responses(&mut built.body, &output, &outcomes)
            }
            Endpoint::ChatCompletions => rounds.chat.continue_body(&mut built.body, &outcomes),
        }
        if skip {
            tool_loop::forbid_calls(&mut built.body);
            rounds.synthesis = true;
        }
        rounds.turns += 1;
        Turn::Again
    }

    /// The finish of the last turn; after tool rounds without any answer text, the fallback
    /// sentence is the answer.
    fn final_finish(
        &mut self,
        _ctx: &RequestContext,
        rounds: &Rounds,
        finish: FinishReason,
    ) -> FinishReason {
        if rounds.turns > 0 && !rounds.text {
            let _ = self
                .emit
                .send(Event::TextDelta(tool_loop::NO_ANSWER_FALLBACK.into()));
        }
        finish
    }

    /// Tell the caller what the round did: a status line per call, a notification for breaker
    /// skips, optional cards (Open WebUI), and the URLs in tool results as citations.
    fn report_outcomes(&mut self, ctx: &RequestContext, outcomes: &[CallOutcome], skipped: bool) {
        let ran = outcomes
            .iter()
            .filter(|o| matches!(o.outcome, Outcome::Ok | Outcome::Failed))
            .count();
        let failed = outcomes
            .iter()
            .filter(|o| o.outcome == Outcome::Failed)
            .count();
        if skipped {
            self.status(
                ctx,
                "Tool-call limit reached; answering with what was gathered",
                false,
            );
        } else if ran > 0 {
            let line = match failed {
                0 => format!("Ran {ran} tool call{}", if ran == 1 { "" } else { "s" }),
                f => format!(
                    "Ran {ran} tool call{}, {f} failed",
                    if ran == 1 { "" } else { "s" }
                ),
            };
            self.status(ctx, &line, false);
        }
        let mut paused: Vec<&str> = outcomes
            .iter()
            .filter(|o| o.outcome == Outcome::BreakerSkipped)
            .map(|o| o.call.name.as_str())
            .collect();
        paused.dedup();
        for name in paused {
            self.notify(
                ctx,
                &format!(
                    "`{name}` was skipped due to repeated failures; it is paused for a while."
                ),
            );
        }
        if ctx.openwebui_caller && self.settings.tools.show_tool_cards {
            // Failed and skipped calls are not shown as cards.
            for o in outcomes.iter().filter(|o| o.outcome == Outcome::Ok) {
                let _ = self.emit.send(Event::TextDelta(tool_loop::card(o)));
            }
        }
        for o in outcomes.iter().filter(|o| o.outcome == Outcome::Ok) {
            for url in tool_loop::urls_in(&o.output) {
                let title = crate::owui_events::host_of(&url);
                self.cite(
                    ctx,
                    crate::types::Citation {
                        url: crate::owui_events::clean_citation_url(&url),
                        title,
                        content: String::new(),
                    },
                );
            }
        }
    }

    /// Whether a `/responses` failure (before any output) should be replayed on
    /// `/chat/completions`; marks the one-shot fallback as used when it says yes.
    fn may_fall_back(
        &self,
        endpoint: Endpoint,
        rec: &mut Recoveries,
        status: u16,
        body: &[u8],
    ) -> bool {
        let yes = endpoint == Endpoint::Responses
            && self.settings.endpoint.auto_fallback_chat_completions
            && !rec.fallback
            && endpoint::looks_unsupported(status, body);
        rec.fallback |= yes;
        yes
    }

    /// After visible output: Open WebUI callers get the interrupted template appended to the
    /// answer; other clients a bare error chunk.
    fn fail_midway(
        &mut self,
        ctx: &RequestContext,
        visible: bool,
        body: ErrorBody,
    ) -> Result<(), PipeError> {
        if !visible {
            return self.fail_before_output(
                ctx,
                TemplateKind::StreamInterrupted,
                Vars::new(),
                body,
            );
        }
        self.count_request_failure(ctx);
        self.env.log(&format!(
            "[{}] failed after output: {}",
            body.error_id,
            body.code.as_deref().unwrap_or("-")
        ));
        if ctx.openwebui_caller {
            let mut vars = self.base_vars(ctx, &body.error_id);
            vars.set("reason", body.message.as_str());
            let text = self
                .settings
                .templates
                .render(TemplateKind::StreamInterrupted, &vars);
            let _ = self.emit.send(Event::TextDelta(format!("\n\n{text}")));
            let _ = self.emit.send(Event::Finish(FinishReason::Stop));
        } else {
            let _ = self.emit.send(Event::Error(body));
            let _ = self.emit.send(Event::Finish(FinishReason::Error));
        }
        Ok(())
    }

    fn finish_ok(&mut self, ctx: &RequestContext, finish: FinishReason, usage: Option<Usage>) {
        match finish {
            FinishReason::Length => self.notify(
                ctx,
                "The answer stopped early: the model reached its output limit.",
            ),
            FinishReason::ContentFilter => self.notify(
                ctx,
                "The answer was stopped by the provider's content filter.",
            ),
            _ => {}
        }
        if ctx.openwebui_caller {
            let now = self.env.now_ms();
            let elapsed = now.saturating_sub(ctx.received_at_ms);
            if let Some(line) = usage_status::final_status_line(
                &self.settings.usage_status,
                usage.as_ref(),
                elapsed,
                elapsed,
            ) {
                self.status(ctx, &line, true);
            }
        }
        if let Some(usage) = usage {
            let _ = self.emit.send(Event::Usage(usage));
        }
        let _ = self.emit.send(Event::Finish(finish));
    }

    /// Replay stored artifacts named by the markers in earlier assistant messages (in place).
    fn replay_artifacts(
        &mut self,
        ctx: &RequestContext,
        request: &mut ChatRequest,
    ) -> crate::artifacts::replay::Replayed {
        let Some(Value::Array(messages)) = request.body.get_mut("messages") else {
            return Default::default();
        };
        let replayed = crate::artifacts::replay::apply(
            self.artifacts,
            &self.settings.artifacts,
            self.kv,
            self.env,
            ctx,
            messages,
        );
        if let Some(notice) = replayed.notice {
            self.artifact_notice(ctx, notice);
        }
        replayed
    }

    /// Persist this turn's replayable output items and append the markers of the rows stored.
    /// The tool loop calls [`persist_items`](Self::persist_items) with its calls and outputs.
    fn persist_artifacts(&mut self, ctx: &RequestContext, request: &ChatRequest, output: &[Value]) {
        let turn = request
            .body
            .get("messages")
            .and_then(Value::as_array)
            .map_or(0, |m| {
                m.iter()
                    .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
                    .count()
            });
        self.persist_items(ctx, turn, output);
    }

    /// Persist `items` (Responses output items, in order) for turn `turn` of the chat and
    /// append one marker line per stored row to the answer. Never fails the chat.
    pub fn persist_items(&mut self, ctx: &RequestContext, turn: usize, items: &[Value]) {
        let outcome = crate::artifacts::persist::persist(
            self.artifacts,
            &self.settings.artifacts,
            self.kv,
            self.env,
            ctx,
            turn,
            items,
            self.env.now_ms(),
        );
        if !outcome.markers.is_empty() {
            let _ = self.emit.send(Event::TextDelta(outcome.markers));
        }
        if let Some(notice) = outcome.notice {
            self.artifact_notice(ctx, notice);
        }
    }

    /// A persistence problem: a warning notification for Open WebUI callers, a log line always.
    fn artifact_notice(&mut self, ctx: &RequestContext, text: &str) {
        self.env.log(&format!("artifacts notice: {text}"));
        self.notify(ctx, text);
    }

    fn notify(&mut self, ctx: &RequestContext, text: &str) {
        if ctx.openwebui_caller {
            let _ = self
                .emit
                .send(Event::OpenWebUiEvent(owui_events::notification(
                    owui_events::NotificationLevel::Warning,
                    text,
                )));
        }
    }

    fn build(
        &self,
        endpoint: Endpoint,
        request: &ChatRequest,
        model: &ModelInfo,
        identity: &Identity,
    ) -> Result<Built, PipeError> {
        let built = match endpoint {
            Endpoint::Responses => request::build_responses_request(
                request,
                model,
                &self.settings.request,
                identity,
                false,
            ),
            Endpoint::ChatCompletions => request::build_chat_completions_request(
                request,
                model,
                &self.settings.request,
                identity,
                false,
            ),
        };
        built.map_err(|e| {
            PipeError::InvalidRequest(errors::body(
                &self.new_error_id(),
                400,
                "invalid_request_error",
                Some("invalid_body"),
                &e.0,
            ))
        })
    }

    /// POST a built body to an endpoint, asking for `accept` (SSE, or JSON for tasks).
    async fn post(
        &self,
        endpoint: Endpoint,
        built: &Built,
        accept: &str,
    ) -> Result<HttpResponse<U::Body>, TransportError> {
        let bytes =
            serde_json::to_vec(&built.body).map_err(|e| TransportError::Protocol(e.to_string()))?;
        let mut headers = self.settings.openrouter.attribution_headers();
        headers.push(("Content-Type".into(), "application/json".into()));
        headers.push(("Accept".into(), accept.into()));
        headers.extend(built.headers.iter().cloned());
        self.upstream
            .send(HttpRequest {
                method: Method::Post,
                url: format!("{}{}", self.settings.openrouter.base(), endpoint.path()),
                headers,
                body: Some(bytes),
            })
            .await
    }

    /// The one-shot reasoning recoveries. Returns the status line to show when
    /// the request was changed and should be sent again.
    fn recover(
        &self,
        endpoint: Endpoint,
        status: u16,
        bytes: &[u8],
        rec: &mut Recoveries,
        built: &mut Built,
    ) -> Option<String> {
        if status != 400 {
            return None;
        }
        let parsed = errors::parse_openrouter_error(bytes);
        let text = format!(
            "{} {} {}",
            parsed.message.unwrap_or_default(),
            parsed.upstream_message.unwrap_or_default(),
            String::from_utf8_lossy(bytes)
        );
        let lower = text.to_ascii_lowercase();
        let body = built.body.as_object_mut()?;
        if !rec.effort
            && lower.contains("reasoning.effort")
            && lower.contains("supported values are")
        {
            rec.effort = true;
            let current = body
                .get("reasoning")
                .and_then(|r| r.get("effort"))
                .or_else(|| body.get("reasoning_effort"))
                .and_then(Value::as_str)
                .unwrap_or("medium")
                .to_string();
            let next = downgraded_effort(&text, &current)?;
            if let Some(Value::Object(r)) = body.get_mut("reasoning") {
                r.insert("effort".into(), Value::String(next.clone()));
            } else if endpoint == Endpoint::ChatCompletions && body.contains_key("reasoning_effort")
            {
                body.insert("reasoning_effort".into(), Value::String(next.clone()));
            } else {
                return None;
            }
            return Some(format!(
                "This model does not support `{current}` reasoning effort; retrying with `{next}`"
            ));
        }
        if !rec.no_reasoning
            && lower.contains("include_thoughts is only enabled when thinking is enabled")
        {
            rec.no_reasoning = true;
            for k in [
                "reasoning",
                "include_reasoning",
                "thinking_config",
                "reasoning_effort",
            ] {
                body.remove(k);
            }
            return Some(
                "The provider refused reasoning for this request; retrying without it".into(),
            );
        }
        let signature = lower.contains("thinking block cannot be modified")
            || (lower.contains("signature")
                && (lower.contains("thinking") || lower.contains("reasoning")));
        if !rec.signature && signature {
            rec.signature = true;
            let mut stripped = false;
            for key in ["input", "messages"] {
                if let Some(Value::Array(items)) = body.get_mut(key) {
                    let before = items.len();
                    items.retain(|i| i.get("type").and_then(Value::as_str) != Some("reasoning"));
                    stripped |= items.len() != before;
                    for i in items.iter_mut() {
                        if let Some(o) = i.as_object_mut() {
                            stripped |= o.remove("reasoning_details").is_some();
                        }
                    }
                }
            }
            return stripped.then(|| {
                "Earlier reasoning could not be verified by the provider; retrying without it"
                    .into()
            });
        }
        None
    }

    /// Relay one SSE body: coalesced deltas, citations, thinking statuses; until a terminal
    /// event, a failure, or the end of the body.
    async fn relay(
        &mut self,
        ctx: &RequestContext,
        endpoint: Endpoint,
        response: HttpResponse<U::Body>,
        first_turn: bool,
    ) -> RelayEnd {
        let chunks = futures::stream::unfold(response.body, |mut body| async move {
            crate::caps::BodyStream::next_chunk(&mut body)
                .await
                .map(|chunk| (chunk, body))
        });
        let cap =
            usize::try_from(self.settings.streaming.sse_max_event_bytes).unwrap_or(usize::MAX);
        let mut events = responses_pipe_sse::SseStream::new(Box::pin(chunks), cap);
        let mut responses = ResponsesStream::default();
        responses.phase_markers = ctx.chat_id.is_some();
        responses.tool_cards = ctx.openwebui_caller && self.settings.tools.show_tool_cards;
        let mut chat = ChatStream::default();
        let streaming = &self.settings.streaming;
        let mut co = Coalescer {
            limit: streaming.streaming_delta_char_limit as usize,
            min_flush: streaming.streaming_nagle_min_flush_chars.max(1) as usize,
            text: String::new(),
            reasoning: String::new(),
        };
        let idle_ms = streaming.streaming_idle_flush_ms;
        let mode = streaming.thinking_output_mode.to_ascii_lowercase();
        let owui = ctx.openwebui_caller;
        let reasoning_as_delta = !owui || mode != "status";
        let reasoning_as_status = owui && (mode == "status" || mode == "both");
        let mut rstatus = ReasoningStatus::default();
        // The staged "Thinking…" statuses belong to the wait for the first answer, not to the
        // turns after tool calls.
        let show_stages = owui && self.settings.request.enable_reasoning && first_turn;
        let mut stage = 0usize;
        let mut visible = false;
        let mut received = 0u32;
        let mut pending: Vec<Event> = Vec::new();
        let mut saw_text = false;
        // A `/chat/completions` turn's text, replayed with its tool calls (see `ChatTurn`).
        let mut chat_text = String::new();
        // `/chat/completions` tool calls, kept for the tool loop (which hands them back itself).
        let mut bridged_calls: Vec<Value> = Vec::new();
        loop {
            // Decide how long to wait for the next event: the idle flush of buffered deltas, and
            // the next "Thinking…" stage while nothing has been shown yet.
            let now = self.env.now_ms();
            let since_start = now.saturating_sub(ctx.received_at_ms);
            let mut wait: Option<u64> = None;
            if co.pending() > 0 {
                wait = Some(idle_ms);
            }
            if reasoning_as_status && rstatus.buf.len() >= REASONING_STATUS_IDLE_CHARS {
                let due = (rstatus.last_ms + REASONING_STATUS_IDLE_MS).saturating_sub(now);
                if due == 0 {
                    let line = reasoning_status_line(&std::mem::take(&mut rstatus.buf));
                    self.status(ctx, &line, false);
                    continue;
                }
                wait = Some(wait.map_or(due, |w| w.min(due)));
            }
            if show_stages && !visible && stage < THINKING_STAGES_MS.len() {
                let due = THINKING_STAGES_MS[stage].saturating_sub(since_start);
                if due == 0 {
                    self.status(ctx, THINKING_STAGES[stage], false);
                    stage += 1;
                    continue;
                }
                wait = Some(wait.map_or(due, |w| w.min(due)));
            }
            let next = match wait {
                Some(0) => {
                    if !self.flush(&mut co) {
                        return RelayEnd::CallerGone;
                    }
                    continue;
                }
                Some(ms) => {
                    let sleep = self.env.sleep_ms(ms);
                    let read = events.next();
                    futures::pin_mut!(sleep, read);
                    match futures::future::select(read, sleep).await {
                        futures::future::Either::Left((ev, _)) => ev,
                        futures::future::Either::Right(_) => {
                            if co.pending() > 0 && !self.flush(&mut co) {
                                return RelayEnd::CallerGone;
                            }
                            continue;
                        }
                    }
                }
                None => events.next().await,
            };
            let mut batch = vec![next];
            // Micro-drain: take what is already there without waiting.
            while batch.len() < MICRO_DRAIN_EVENTS {
                match events.next().now_or_never() {
                    Some(ev) => {
                        let end = ev.is_none();
                        batch.push(ev);
                        if end {
                            break;
                        }
                    }
                    None => break,
                }
            }
            for next in batch {
                let data = match next {
                    None => {
                        if endpoint == Endpoint::ChatCompletions
                            && let Step::Completed { finish, usage } = chat.end()
                        {
                            if !self.flush(&mut co) {
                                return RelayEnd::CallerGone;
                            }
                            self.emit_citations(ctx, &chat);
                            let turn = ChatTurn {
                                text: chat_text,
                                reasoning_details: chat.reasoning_details(),
                            };
                            return RelayEnd::Completed {
                                finish,
                                usage,
                                output: turn.output(bridged_calls, self.env.random_u64()),
                                text: saw_text,
                                chat: turn,
                            };
                        }
                        if !self.flush(&mut co) {
                            return RelayEnd::CallerGone;
                        }
                        return RelayEnd::Interrupted {
                            visible,
                            events: received,
                            detail: "the upstream stream ended before the response completed"
                                .into(),
                        };
                    }
                    Some(Ok(event)) => event.data,
                    Some(Err(StreamError::Transport(TransportError::TooLarge))) => {
                        if !self.flush(&mut co) {
                            return RelayEnd::CallerGone;
                        }
                        return RelayEnd::TooLarge {
                            visible,
                            detail: TransportError::TooLarge.to_string(),
                        };
                    }
                    Some(Err(StreamError::Sse(e))) => {
                        if !self.flush(&mut co) {
                            return RelayEnd::CallerGone;
                        }
                        return RelayEnd::TooLarge {
                            visible,
                            detail: e.to_string(),
                        };
                    }
                    Some(Err(StreamError::Transport(e))) => {
                        if !self.flush(&mut co) {
                            return RelayEnd::CallerGone;
                        }
                        return RelayEnd::Interrupted {
                            visible,
                            events: received,
                            detail: format!("the upstream stream failed ({e})"),
                        };
                    }
                };
                received += 1;
                let env = self.env;
                let step = match endpoint {
                    Endpoint::Responses => responses.feed(
                        &data,
                        &mut |e| {
                            pending.push(e);
                            true
                        },
                        &mut || errors::error_id(env.random_u64()),
                    ),
                    Endpoint::ChatCompletions => chat.feed(
                        &data,
                        &mut |e| {
                            pending.push(e);
                            true
                        },
                        &mut || errors::error_id(env.random_u64()),
                    ),
                };
                for ev in pending.drain(..) {
                    match ev {
                        Event::TextDelta(t) => {
                            visible = true;
                            saw_text |= !t.is_empty();
                            if endpoint == Endpoint::ChatCompletions {
                                chat_text.push_str(&t);
                            }
                            if !rstatus.buf.is_empty() {
                                let line = reasoning_status_line(&std::mem::take(&mut rstatus.buf));
                                self.status(ctx, &line, false);
                            }
                            if !co.reasoning.is_empty() && !self.flush(&mut co) {
                                return RelayEnd::CallerGone;
                            }
                            co.text.push_str(&t);
                            if (co.limit == 0 || co.text.len() >= co.limit) && !self.flush(&mut co)
                            {
                                return RelayEnd::CallerGone;
                            }
                        }
                        Event::ReasoningDelta(r) => {
                            visible = true;
                            if reasoning_as_status {
                                rstatus.buf.push_str(&r);
                                rstatus.last_ms = self.env.now_ms();
                                if is_sentence_end(&rstatus.buf)
                                    || rstatus.buf.len() >= REASONING_STATUS_MAX_CHARS
                                {
                                    let line =
                                        reasoning_status_line(&std::mem::take(&mut rstatus.buf));
                                    self.status(ctx, &line, false);
                                }
                            }
                            if reasoning_as_delta {
                                if !co.text.is_empty() && !self.flush(&mut co) {
                                    return RelayEnd::CallerGone;
                                }
                                co.reasoning.push_str(&r);
                                if (co.limit == 0 || co.reasoning.len() >= co.limit)
                                    && !self.flush(&mut co)
                                {
                                    return RelayEnd::CallerGone;
                                }
                            }
                        }
                        Event::Citation(c) => {
                            if !self.flush(&mut co) {
                                return RelayEnd::CallerGone;
                            }
                            self.cite(ctx, c);
                        }
                        Event::ToolCalls(calls) => {
                            bridged_calls.extend(calls.into_iter().map(|c| {
                                serde_json::json!({"type": "function_call", "call_id": c.call_id,
                                    "name": c.name, "arguments": c.arguments_json})
                            }));
                        }
                        other => {
                            if !self.flush(&mut co) || self.emit.send(other).is_err() {
                                return RelayEnd::CallerGone;
                            }
                        }
                    }
                }
                match step {
                    Step::Continue => {}
                    Step::Completed { finish, usage } => {
                        if !self.flush(&mut co) {
                            return RelayEnd::CallerGone;
                        }
                        if !rstatus.buf.is_empty() {
                            let line = std::mem::take(&mut rstatus.buf);
                            self.status(ctx, line.trim(), false);
                        }
                        let mut turn = ChatTurn::default();
                        if endpoint == Endpoint::ChatCompletions {
                            self.emit_citations(ctx, &chat);
                            turn = ChatTurn {
                                text: std::mem::take(&mut chat_text),
                                reasoning_details: chat.reasoning_details(),
                            };
                        }
                        let mut output = std::mem::take(&mut responses.output);
                        if endpoint == Endpoint::ChatCompletions {
                            let calls = std::mem::take(&mut bridged_calls);
                            output.extend(turn.output(calls, self.env.random_u64()));
                        }
                        return RelayEnd::Completed {
                            finish,
                            usage,
                            output,
                            text: saw_text,
                            chat: turn,
                        };
                    }
                    Step::Failed(error) => {
                        if !self.flush(&mut co) {
                            return RelayEnd::CallerGone;
                        }
                        return RelayEnd::Failed { visible, error };
                    }
                }
            }
            if co.pending() >= co.min_flush && !self.flush(&mut co) {
                return RelayEnd::CallerGone;
            }
        }
    }

    /// Send what the coalescer holds; false when the caller went away.
    fn flush(&mut self, co: &mut Coalescer) -> bool {
        if !co.reasoning.is_empty()
            && self
                .emit
                .send(Event::ReasoningDelta(std::mem::take(&mut co.reasoning)))
                .is_err()
        {
            return false;
        }
        if !co.text.is_empty()
            && self
                .emit
                .send(Event::TextDelta(std::mem::take(&mut co.text)))
                .is_err()
        {
            return false;
        }
        true
    }

    /// A citation: an Open WebUI `source` event for Open WebUI, an annotation for others.
    fn cite(&mut self, ctx: &RequestContext, c: crate::types::Citation) {
        let event = if ctx.openwebui_caller {
            Event::OpenWebUiEvent(owui_events::source(
                &c.url,
                &c.title,
                &c.content,
                &iso8601(self.env.now_ms()),
            ))
        } else {
            Event::Citation(c)
        };
        let _ = self.emit.send(event);
    }

    fn emit_citations(&mut self, ctx: &RequestContext, chat: &ChatStream) {
        for c in chat.citations() {
            self.cite(
                ctx,
                crate::types::Citation {
                    url: c.url,
                    title: c.title.unwrap_or_default(),
                    content: c.content.unwrap_or_default(),
                },
            );
        }
    }

    /// A housekeeping task (title, tags, follow-ups…): one non-streamed request, two attempts,
    /// never an error in the chat. The model must pass the same allowlist and
    /// filters as a chat: a task naming another model is refused with the chat's error (403
    /// `model_restricted` naming the reasons, or 404), as an HTTP error and not as a task answer,
    /// and OpenRouter is not asked. Open WebUI only logs a failed task, so nothing shows in the
    /// chat; the operator's policy is never bypassed by calling a model "a task".
    async fn task(
        &mut self,
        ctx: &RequestContext,
        request: &ChatRequest,
        task: &str,
    ) -> Result<(), PipeError> {
        let answer = |pipe: &mut Self, text: String, usage: Option<Usage>| {
            let _ = pipe.emit.send(Event::TextDelta(text));
            if let Some(u) = usage {
                let _ = pipe.emit.send(Event::Usage(u));
            }
            let _ = pipe.emit.send(Event::Finish(FinishReason::Stop));
            Ok(())
        };
        let failed = format!(
            "[Task error] Unable to generate {}. Please retry later.",
            task.replace('_', " ")
        );
        if !self.settings.openrouter.api_key_configured
            || auth_window::open(self.kv, &ctx.principal(), self.env.now_ms()).is_some()
        {
            let text = task_stub(task).map(str::to_string).unwrap_or(failed);
            return answer(self, text, None);
        }
        let catalog = Catalog {
            settings: &self.settings.catalog,
            openrouter: &self.settings.openrouter,
            upstream: self.upstream,
            kv: self.kv,
            env: self.env,
        };
        let model = match catalog
            .find(&request.model, self.zdr_requested(request))
            .await
        {
            Ok(m) => m,
            Err(PipeError::InvalidRequest(b)) => {
                // Refused by policy (restricted or unknown model): the chat's answer.
                self.env
                    .log(&format!("task {task}: refused: {}", b.message));
                return Err(PipeError::InvalidRequest(b));
            }
            Err(e) => {
                self.env.log(&format!("task {task}: {}", e.body().message));
                return answer(self, failed, None);
            }
        };
        // Tasks carry the same identifiers as the chat they belong to.
        let identity = identity_of(ctx);
        let mut built = match request::build_responses_request(
            request,
            &model,
            &self.settings.request,
            &identity,
            true,
        ) {
            Ok(b) => b,
            Err(e) => {
                self.env.log(&format!("task {task}: {}", e.0));
                return answer(self, failed, None);
            }
        };
        if let Some(o) = built.body.as_object_mut() {
            o.insert("stream".into(), Value::Bool(false));
        }
        for attempt in 0..2u32 {
            if attempt > 0 {
                self.env.sleep_ms(200).await;
            }
            let sent = self
                .post(Endpoint::Responses, &built, "application/json")
                .await;
            let mut resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    self.env
                        .log(&format!("task {task} attempt {}: {e}", attempt + 1));
                    continue;
                }
            };
            let body = read_body(&mut resp.body, MAX_TASK_BODY_BYTES)
                .await
                .unwrap_or_default();
            if resp.status == 401 {
                let said = errors::parse_openrouter_error(&body).message;
                auth_window::record(
                    self.kv,
                    &ctx.principal(),
                    self.env.now_ms(),
                    said.as_deref().unwrap_or(""),
                );
            }
            if matches!(resp.status, 401 | 403) {
                // Auth trouble will not fix itself: give Open WebUI something it can parse.
                self.env.log(&format!(
                    "task {task}: OpenRouter refused the key (HTTP {})",
                    resp.status
                ));
                let text = task_stub(task).map(str::to_string).unwrap_or(failed);
                return answer(self, text, None);
            }
            if resp.status >= 400 {
                self.env.log(&format!(
                    "task {task} attempt {}: HTTP {}",
                    attempt + 1,
                    resp.status
                ));
                continue;
            }
            let Ok(v) = serde_json::from_slice::<Value>(&body) else {
                continue;
            };
            let text = response_output_text(&v);
            if text.is_empty() {
                continue;
            }
            let usage = v.get("usage").and_then(crate::stream::usage_from);
            return answer(self, text, usage);
        }
        answer(self, failed, None)
    }

    /// The model list in OpenAI form.
    pub async fn models(&self) -> Result<String, PipeError> {
        let catalog = Catalog {
            settings: &self.settings.catalog,
            openrouter: &self.settings.openrouter,
            upstream: self.upstream,
            kv: self.kv,
            env: self.env,
        };
        let models = catalog.list().await?;
        Ok(crate::catalog::to_openai_list(&models).to_string())
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tool_tests;
