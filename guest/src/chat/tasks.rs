//! Housekeeping tasks (titles, tags, follow-ups…): recognising them, and answering them with one
//! non-streamed request, retried once, never with an error in the chat.

use super::Pipe;
use super::backoff::Backoff;
use super::entry::identity_of;
use crate::auth_window;
use crate::caps::{Emit, Env, Kv, Upstream, read_body};
use crate::chat_body::{self, ChatRequest};
use crate::endpoint::Endpoint;
use crate::request::{self, Built};
use crate::types::{Event, FinishReason, PipeError, RequestContext, Usage};
use serde_json::Value;

/// Largest non-streamed (task) response we read.
const MAX_TASK_BODY_BYTES: usize = 8 << 20;

/// How one attempt at a task's request went.
enum TaskAttempt {
    /// The model's answer, with its usage.
    Answer(String, Option<Usage>),
    /// OpenRouter refused the key (HTTP 401 or 403).
    KeyRefused,
    /// Nothing usable came back: try again while the backoff allows.
    Again,
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

impl<U: Upstream, K: Kv, E: Emit, V: Env> Pipe<'_, U, K, E, V> {
    /// A housekeeping task (title, tags, follow-ups…): one non-streamed request, two attempts,
    /// never an error in the chat. The model must pass the same allowlist and
    /// filters as a chat: a task naming another model is refused with the chat's error (403
    /// `model_restricted` naming the reasons, or 404), as an HTTP error and not as a task answer,
    /// and OpenRouter is not asked. Open WebUI only logs a failed task, so nothing shows in the
    /// chat; the operator's policy is never bypassed by calling a model "a task".
    pub(super) async fn task(
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
        let model = match self
            .catalog()
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
        let mut backoff = Backoff::task();
        loop {
            let got = self
                .task_attempt(ctx, task, &built, backoff.attempt())
                .await;
            match got {
                TaskAttempt::Answer(text, usage) => return answer(self, text, usage),
                // Auth trouble will not fix itself: give Open WebUI something it can parse.
                TaskAttempt::KeyRefused => {
                    let text = task_stub(task).map(str::to_string).unwrap_or(failed);
                    return answer(self, text, None);
                }
                TaskAttempt::Again => {
                    if !backoff.wait(self.env).await {
                        return answer(self, failed, None);
                    }
                }
            }
        }
    }

    /// One attempt at a task's request.
    async fn task_attempt(
        &mut self,
        ctx: &RequestContext,
        task: &str,
        built: &Built,
        attempt: u32,
    ) -> TaskAttempt {
        let sent = self
            .post(Endpoint::Responses, built, "application/json")
            .await;
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => {
                self.env.log(&format!("task {task} attempt {attempt}: {e}"));
                return TaskAttempt::Again;
            }
        };
        let body = read_body(&mut resp.body, MAX_TASK_BODY_BYTES)
            .await
            .unwrap_or_default();
        if resp.status == 401 {
            self.remember_key_refusal(ctx, &body);
        }
        if matches!(resp.status, 401 | 403) {
            self.env.log(&format!(
                "task {task}: OpenRouter refused the key (HTTP {})",
                resp.status
            ));
            return TaskAttempt::KeyRefused;
        }
        if resp.status >= 400 {
            self.env.log(&format!(
                "task {task} attempt {attempt}: HTTP {}",
                resp.status
            ));
            return TaskAttempt::Again;
        }
        let Ok(v) = serde_json::from_slice::<Value>(&body) else {
            return TaskAttempt::Again;
        };
        let text = response_output_text(&v);
        if text.is_empty() {
            return TaskAttempt::Again;
        }
        let usage = v.get("usage").and_then(crate::stream::usage_from);
        TaskAttempt::Answer(text, usage)
    }
}
