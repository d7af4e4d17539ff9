//! The end of an answer: the finish notices, the usage status line, the usage and finish
//! events, the user's request breaker cleared by a success; and the artifacts that go with the
//! conversation: replayed in from the markers of earlier answers, persisted out with a marker line
//! per stored row.

use super::Pipe;
use super::entry::Admitted;
use super::tool_round::Rounds;
use crate::caps::{Emit, Env, Kv, Upstream};
use crate::chat_body::ChatRequest;
use crate::types::{Event, FinishReason, RequestContext, Usage};
use crate::usage_status;
use serde_json::Value;

impl<U: Upstream, K: Kv, E: Emit, V: Env> Pipe<'_, U, K, E, V> {
    /// The answer is over with `finish`: persist what the turns gathered, settle the replayed
    /// rows, send usage and finish, and clear the user's request breaker after a real success.
    pub(super) fn end_answer(
        &mut self,
        ctx: &RequestContext,
        admitted: &Admitted,
        rounds: &mut Rounds,
        finish: FinishReason,
    ) {
        let items = std::mem::take(&mut rounds.items);
        self.persist_artifacts(ctx, &admitted.request, &items);
        crate::artifacts::replay::after_reply(
            self.artifacts,
            &self.settings.artifacts,
            self.env,
            &admitted.replayed,
        );
        self.finish_ok(ctx, finish, rounds.usage.take());
        // A successful answer clears the user's request breaker; read once on entry, so a user
        // without failures costs no write.
        if admitted.recent_failures > 0 && !rounds.degraded {
            self.request_breaker(&admitted.user).clear();
        }
    }

    /// The last events: a notice when the finish cut the answer short, the usage status line
    /// (Open WebUI), usage, finish.
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
    pub(super) fn replay_artifacts(
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
    pub(super) fn artifact_notice(&mut self, ctx: &RequestContext, text: &str) {
        self.env.log(&format!("artifacts notice: {text}"));
        self.notify(ctx, text);
    }
}
