//! `POST /v1/chat/completions`: read the body within its limit, check it is a JSON object with a
//! string `model`, admit it, run the guest in its own task and relay its events. The response
//! status is decided by whichever comes first: the guest's first event (→ 200 and a stream) or the
//! guest finishing without output (→ its error as an HTTP status). After that, failures travel
//! inside the stream as bare `{"error":{...}}` chunks.

use super::RequestId;
use super::auth::Caller;
use super::chunks::{ChunkEncoder, Collector, error_json};
use super::error::ApiError;
use super::limits::BodyError;
use super::sse_frame;
use crate::app::App;
use crate::bindings::types::{Event, FinishReason, PipeError, RequestContext, Usage};
use crate::costs::PendingSnapshot;
use crate::instance::GuestFailure;
use crate::logsafe;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

type GuestOutcome = Result<Result<(), PipeError>, GuestFailure>;

/// The two fields the host itself needs; the rest is the guest's business. serde still checks
/// that the whole document is valid JSON (and bounds nesting at 128 levels).
#[derive(Deserialize)]
struct Peek {
    model: Option<serde_json::Value>,
    stream: Option<serde_json::Value>,
}

fn peek(bytes: &[u8]) -> Result<(String, bool), ApiError> {
    // Read only the two fields (serde still checks the whole document is valid JSON) instead of
    // building a tree of a body that may hold megabytes of inline images.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let p: Peek = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ApiError::BadRequest(format!("the request body is not valid JSON: {e}"))
        } else if first != Some(&b'{') {
            ApiError::BadRequest("the request body must be a JSON object".into())
        } else {
            ApiError::BadRequest(format!("invalid request: {e}"))
        }
    })?;
    if first != Some(&b'{') {
        return Err(ApiError::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    }
    let model = match p.model {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s,
        Some(serde_json::Value::String(_)) | None => {
            return Err(ApiError::BadRequest("`model` is required".into()));
        }
        Some(_) => return Err(ApiError::BadRequest("`model` must be a string".into())),
    };
    let stream = match p.stream {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => b,
        Some(_) => return Err(ApiError::BadRequest("`stream` must be a boolean".into())),
    };
    Ok((model, stream))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(super) async fn chat_completions(State(app): State<Arc<App>>, req: Request) -> Response {
    let id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    match run(app, req, &id).await {
        Ok(resp) => resp,
        Err(e) => e.into_response_for(&id),
    }
}

async fn run(app: Arc<App>, req: Request, id: &str) -> Result<Response, ApiError> {
    if app.shutting_down.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(ApiError::ShuttingDown);
    }
    let (parts, body) = req.into_parts();
    // Set by the key check in front of this route; without it nobody vouched for the caller.
    let caller = parts
        .extensions
        .get::<Arc<Caller>>()
        .cloned()
        .ok_or(ApiError::Unauthorized)?;
    let limit = app.config.max_request_body_bytes();
    let (bytes, charge) = app
        .body_budget
        .read(body, limit, app.config.client_body_timeout())
        .await
        .map_err(|e| match e {
            BodyError::TooLarge { limit } => ApiError::TooLarge { limit },
            BodyError::TimedOut(after) => {
                app.metrics.incr("client_timeouts", "body");
                ApiError::BodyTimeout(after)
            }
            BodyError::BudgetExhausted => {
                app.metrics.incr("requests_refused", "body_budget");
                ApiError::BodyBudget
            }
            BodyError::Read(detail) => ApiError::BadRequest(format!(
                "could not read the request body: {}",
                logsafe::escaped(&detail)
            )),
        })?;
    // The body now lives in `bytes`; the budget is for bodies still arriving.
    drop(charge);
    let (model, stream) = peek(&bytes)?;
    tracing::info!(model = %logsafe::escaped(&model), stream, bytes = bytes.len(), "chat request");
    let received_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    // Identity first: a refused user token must not wait in the queue.
    let ctx = super::context::for_chat(&app, &parts.headers, id, received_at_ms, &caller)?;
    let ticket = app
        .admission
        .admit()
        .await
        .map_err(|busy| busy_error(&app, &busy))?;
    let openwebui = ctx.openwebui_caller;
    let cost = app
        .costs
        .as_ref()
        .map(|c| c.pending(ctx.clone(), model.clone()));
    let explainer = openwebui.then(|| Explainer {
        app: app.clone(),
        ctx: ctx.clone(),
    });
    let (sink, mut rx) = crate::emit::channel();
    let guest_app = app.clone();
    let body = bytes.to_vec();
    let span = tracing::Span::current();
    let cap = app.config.request_timeout();
    let mut task = GuestTask::new(
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let _ticket = ticket;
                let run =
                    guest_app
                        .runner
                        .chat(guest_app.config.guest_settings_json(), ctx, body, sink);
                match tokio::time::timeout(cap, run).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        guest_app.metrics.incr("request_timeouts", "wall_clock");
                        Err(GuestFailure::TimedOut(cap))
                    }
                }
            },
            span,
        )),
        app.clone(),
    );

    // Whichever comes first decides the status: an event (stream) or the end of the guest. The
    // guest's sender closes when its instance is dropped, so a closed channel also means "ended";
    // the outcome is then awaited here, once, and the task is not handed on.
    let created = now_secs();
    let ended = tokio::select! {
        biased;
        ev = rx.recv() => match ev {
            Some(ev) => Ok((Some(ev), Some(task))),
            None => finished(task.join().await).map(|()| (None, None)),
        },
        outcome = &mut task.handle => finished(outcome).map(|()| (None, None)),
    };
    let (first, task) = match ended {
        Ok(started) => started,
        Err(e) => return explain_or_fail(explainer.as_ref(), e, stream, id, created, &model).await,
    };
    if stream {
        Ok(stream_response(
            first,
            rx,
            task,
            Meta {
                id: id.to_string(),
                created,
                model,
            },
            explainer,
            cost,
        ))
    } else {
        let out = collect_response(first, rx, task, id, created, &model, explainer.as_ref()).await;
        if let (Some(cost), Ok((_, usage))) = (cost, &out) {
            cost.finish(usage.as_ref());
        }
        out.map(|(resp, _)| resp)
    }
}

/// The admission refusal as an error, counted by reason.
pub(super) fn busy_error(app: &App, busy: &crate::admission::Busy) -> ApiError {
    app.metrics.incr("requests_refused", busy.reason());
    if busy.waited_too_long {
        ApiError::QueueTimeout(app.config.max_queue_wait())
    } else {
        ApiError::Busy
    }
}

/// The task running one request's guest. Dropping it before the guest finished (the client went
/// away, a write to it timed out, the handler was dropped) aborts the task: the instance, its
/// upstream and tool requests and its admission slot are released at once instead of running on
/// for nobody.
struct GuestTask {
    handle: JoinHandle<GuestOutcome>,
    app: Arc<App>,
}

impl GuestTask {
    fn new(handle: JoinHandle<GuestOutcome>, app: Arc<App>) -> Self {
        GuestTask { handle, app }
    }

    /// Wait for the guest to finish.
    async fn join(mut self) -> Result<GuestOutcome, tokio::task::JoinError> {
        (&mut self.handle).await
    }
}

impl Drop for GuestTask {
    fn drop(&mut self) {
        if !self.handle.is_finished() {
            self.handle.abort();
            self.app.metrics.incr("requests_abandoned", "client_gone");
            tracing::info!(
                error.type = "client_gone",
                "the client went away before the answer was complete; its request was stopped"
            );
        }
    }
}

/// Turns a failure of the guest itself (a trap, an exhausted CPU or memory budget) into the
/// `INTERNAL_ERROR_TEMPLATE` answer for an Open WebUI caller, rendered by a fresh instance.
struct Explainer {
    app: Arc<App>,
    ctx: RequestContext,
}

impl Explainer {
    /// The template text for `e`, or `None` when `e` is not a guest failure (or is only a full
    /// instance pool) or the text could not be rendered.
    async fn text(&self, e: &ApiError) -> Option<String> {
        let ApiError::Guest(failure) = e else {
            return None;
        };
        let kind = failure.as_wit()?;
        let error_id = super::error::new_error_id();
        tracing::warn!(error_id = %error_id, code = failure.kind(), detail = %logsafe::escaped_to(&failure.to_string(), 400), "the pipe could not finish the chat; answering with the internal error template");
        let rendered = self
            .app
            .runner
            .internal_error_text(
                self.app.config.guest_settings_json(),
                &self.ctx,
                &error_id,
                kind,
            )
            .await;
        match rendered {
            Ok(text) => Some(text),
            Err(again) => {
                tracing::warn!(error_id = %error_id, detail = %logsafe::escaped_to(&again.to_string(), 400), "the internal error template could not be rendered");
                None
            }
        }
    }
}

/// Before any output: the rendered template as a complete answer, or the error as it is.
async fn explain_or_fail(
    explainer: Option<&Explainer>,
    e: ApiError,
    stream: bool,
    id: &str,
    created: u64,
    model: &str,
) -> Result<Response, ApiError> {
    let text = match explainer {
        Some(x) => x.text(&e).await,
        None => None,
    };
    let Some(text) = text else {
        return Err(e);
    };
    let events = [Event::TextDelta(text), Event::Finish(FinishReason::Stop)];
    if !stream {
        let mut c = Collector::default();
        for ev in events {
            c.push(ev);
        }
        return Ok(axum::Json(c.completion(id, created, model)).into_response());
    }
    let mut enc = ChunkEncoder::new(id, created, model, true);
    let mut out = Vec::new();
    for ev in events {
        for l in enc.encode(ev, id) {
            sse_frame::push(&mut out, &l);
        }
    }
    for l in enc.finish(None) {
        sse_frame::push(&mut out, &l);
    }
    sse_frame::push(&mut out, sse_frame::DONE);
    Ok(sse_response(Body::from(out)))
}

/// What every chunk of one response carries.
struct Meta {
    id: String,
    created: u64,
    model: String,
}

/// Map a finished guest task to `Ok` or the error to answer with.
fn finished(outcome: Result<GuestOutcome, tokio::task::JoinError>) -> Result<(), ApiError> {
    match outcome {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(pipe))) => Err(pipe.into()),
        Ok(Err(failure)) => Err(failure.into()),
        Err(join) => Err(ApiError::Guest(GuestFailure::Trap(format!(
            "the request task failed: {join}"
        )))),
    }
}

fn stream_response(
    first: Option<Event>,
    rx: mpsc::Receiver<Event>,
    task: Option<GuestTask>,
    meta: Meta,
    explainer: Option<Explainer>,
    cost: Option<PendingSnapshot>,
) -> Response {
    let enc = ChunkEncoder::new(&meta.id, meta.created, &meta.model, explainer.is_some());
    struct S {
        first: Option<Event>,
        rx: mpsc::Receiver<Event>,
        task: Option<GuestTask>,
        enc: ChunkEncoder,
        id: String,
        explainer: Option<Explainer>,
        cost: Option<PendingSnapshot>,
        usage: Option<Usage>,
        done: bool,
        errored: bool,
    }
    let state = S {
        first,
        rx,
        task,
        enc,
        id: meta.id,
        explainer,
        cost,
        usage: None,
        done: false,
        errored: false,
    };
    let body = futures::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        loop {
            let next = match s.first.take() {
                Some(ev) => Some(ev),
                None => s.rx.recv().await,
            };
            match next {
                Some(ev) => {
                    s.errored |= matches!(ev, Event::Error(_));
                    if let Event::Usage(u) = &ev {
                        s.usage = Some(*u);
                    }
                    let lines = s.enc.encode(ev, &s.id);
                    if lines.is_empty() {
                        continue;
                    }
                    let mut out = Vec::new();
                    for l in &lines {
                        sse_frame::push(&mut out, l);
                    }
                    return Some((Ok::<Bytes, std::io::Error>(Bytes::from(out)), s));
                }
                None => {
                    // The guest dropped its sender: it has finished. Close the stream properly.
                    let mut out = Vec::new();
                    if let Some(task) = s.task.take()
                        && let Err(e) = finished(task.join().await)
                        && !s.errored
                    {
                        let explained = match &s.explainer {
                            Some(x) => x.text(&e).await,
                            None => None,
                        };
                        if let Some(text) = explained {
                            // Open WebUI shows the partial answer, then what went wrong.
                            let id = s.id.clone();
                            for l in s.enc.encode(Event::TextDelta(format!("\n\n{text}")), &id) {
                                sse_frame::push(&mut out, &l);
                            }
                            for l in s.enc.finish(Some(FinishReason::Stop)) {
                                sse_frame::push(&mut out, &l);
                            }
                        } else {
                            let body = e.to_body();
                            tracing::warn!(error_id = %body.error_id, detail = %logsafe::escaped_to(&e.to_string(), 400), "chat failed after streaming began");
                            sse_frame::push(&mut out, &error_json(&body, &s.id).to_string());
                            for l in s.enc.finish(Some(FinishReason::Error)) {
                                sse_frame::push(&mut out, &l);
                            }
                        }
                    }
                    for l in s.enc.finish(None) {
                        sse_frame::push(&mut out, &l);
                    }
                    sse_frame::push(&mut out, sse_frame::DONE);
                    if let Some(cost) = s.cost.take() {
                        cost.finish(s.usage.as_ref());
                    }
                    s.done = true;
                    return Some((Ok(Bytes::from(out)), s));
                }
            }
        }
    });
    sse_response(Body::from_stream(body))
}

/// A `text/event-stream` response that proxies neither buffer nor cache.
fn sse_response(body: Body) -> Response {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

async fn collect_response(
    first: Option<Event>,
    mut rx: mpsc::Receiver<Event>,
    task: Option<GuestTask>,
    id: &str,
    created: u64,
    model: &str,
    explainer: Option<&Explainer>,
) -> Result<(Response, Option<Usage>), ApiError> {
    let mut c = Collector::default();
    if let Some(ev) = first {
        c.push(ev);
    }
    while let Some(ev) = rx.recv().await {
        c.push(ev);
    }
    if let Some(task) = task
        && let Err(e) = finished(task.join().await)
    {
        let text = match explainer {
            Some(x) => x.text(&e).await,
            None => None,
        };
        let Some(text) = text else {
            return Err(e);
        };
        c.push(Event::TextDelta(format!("\n\n{text}")));
        c.push(Event::Finish(FinishReason::Stop));
    }
    if let Some(err) = c.error.take() {
        return Err(ApiError::Pipe(err));
    }
    let usage = c.usage;
    Ok((
        axum::Json(c.completion(id, created, model)).into_response(),
        usage,
    ))
}
