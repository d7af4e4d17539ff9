//! One chat completion, end to end: validate the body, recognise housekeeping tasks, find and
//! check the model, choose the endpoint, build the request, call OpenRouter and relay its SSE
//! stream as caller events, recovering where the reference pipe does (retries before the first
//! event, the `/chat/completions` fallback, the three reasoning recoveries), and running the
//! host's tools round after round in Pipeline mode. This module holds the entry points and the
//! loop over model turns; each step lives in its own module, and every failure is shown to the
//! caller through the one table in `failure`.

mod backoff;
mod chat_turn;
mod endpoint_choice;
mod entry;
mod failure;
mod finish;
mod notices;
mod recover;
mod relay;
mod request_breaker;
mod send;
mod tasks;
mod tool_round;

pub use crate::timefmt::iso8601;
pub use failure::{internal_error_text, request_vars};
pub use recover::downgraded_effort;
pub use tasks::{response_output_text, task_name, task_stub};

use crate::caps::{Emit, Env, Kv, NoTools, Tools, Upstream};
use crate::settings::Settings;
use crate::tool_loop;
use crate::types::{PipeError, RequestContext};
use backoff::Backoff;
use entry::{Admitted, Entry, Outbound};
use failure::{Failure, Moment};
use recover::Recoveries;
use relay::RelayEnd;
use tool_round::{Rounds, Turn};

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

/// Where an answer stands: what is sent, the recoveries and retries used, what the model turns
/// gathered.
struct Exchange {
    out: Outbound,
    recoveries: Recoveries,
    backoff: Backoff,
    rounds: Rounds,
}

impl Exchange {
    /// Whether this is a later tool-loop turn: the caller has seen output already.
    fn later(&self) -> bool {
        self.rounds.turns > 0
    }
}

impl<U: Upstream, K: Kv, E: Emit, V: Env> Pipe<'_, U, K, E, V> {
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
        let (admitted, out) = match self.enter(ctx, body, tools).await {
            Ok(Entry::Chat(admitted, out)) => (admitted, out),
            Ok(Entry::Task { request, task }) => return self.task(ctx, &request, &task).await,
            Err(failure) => return self.fail(ctx, failure, Moment::BeforeOutput),
        };
        let mut ex = Exchange {
            out,
            recoveries: Recoveries::default(),
            backoff: Backoff::before_first_event(),
            rounds: Rounds {
                persist: ctx.chat_id.is_some()
                    && !self.settings.artifacts.artifact_table.is_empty(),
                ..Rounds::default()
            },
        };
        loop {
            match self.turn(ctx, &admitted, tools, &mut ex).await {
                Ok(Step::Again) => {}
                Ok(Step::Done) => return Ok(()),
                Err((failure, moment)) => return self.fail(ctx, failure, moment),
            }
        }
    }

    /// One request to OpenRouter and its stream, up to what comes next.
    async fn turn<T: Tools>(
        &mut self,
        ctx: &RequestContext,
        admitted: &Admitted,
        tools: &T,
        ex: &mut Exchange,
    ) -> Result<Step, (Failure, Moment)> {
        let later = ex.later();
        // A failure before this turn's output: after output only in a later tool-loop turn.
        let early = Moment::of(later);
        let response = match self
            .send(ex.out.endpoint, &ex.out.built, &mut ex.backoff)
            .await
        {
            Ok(r) => r,
            Err(error) => {
                let failure = Failure::Transport {
                    endpoint: ex.out.endpoint,
                    error,
                    timeout_seconds: self.settings.openrouter.http_sock_read_seconds,
                };
                return Err((failure, early));
            }
        };
        if response.status >= 400 {
            self.mend(ctx, admitted, tools, ex, response)
                .await
                .map_err(|f| (f, early))?;
            return Ok(Step::Again);
        }
        let content_type = response
            .header("content-type")
            .unwrap_or("")
            .to_ascii_lowercase();
        if !content_type.starts_with("text/event-stream") {
            return Err((Failure::NotEventStream { content_type }, early));
        }
        match self.relay(ctx, ex.out.endpoint, response, !later).await {
            RelayEnd::CallerGone => Ok(Step::Done),
            RelayEnd::Completed {
                finish,
                usage,
                output,
                text,
                chat,
            } => {
                let rounds = &mut ex.rounds;
                rounds.usage = tool_loop::merge_usage(rounds.usage.take(), usage);
                rounds.text |= text;
                rounds.chat = chat;
                match self.after_turn(ctx, tools, &admitted.user, ex, finish, output) {
                    Turn::Done(finish) => {
                        self.end_answer(ctx, admitted, &mut ex.rounds, finish);
                        Ok(Step::Done)
                    }
                    Turn::Again => {
                        ex.backoff.reset();
                        Ok(Step::Again)
                    }
                }
            }
            RelayEnd::Interrupted {
                visible: false,
                events: 0,
                detail,
            } if ex.backoff.can_retry() => {
                // Nothing at all arrived: safe to retry, as the reference does.
                self.env
                    .log(&format!("retrying after an empty stream: {detail}"));
                ex.backoff.wait(self.env).await;
                Ok(Step::Again)
            }
            RelayEnd::Interrupted {
                visible, detail, ..
            } => Err((
                Failure::Interrupted { detail },
                Moment::of(visible || later),
            )),
            RelayEnd::TooLarge { visible, detail } => {
                Err((Failure::TooLarge { detail }, Moment::of(visible || later)))
            }
            RelayEnd::Failed {
                visible: false,
                error,
            } if !later => {
                let raw =
                    serde_json::json!({"error": {"message": error.message, "code": error.code}})
                        .to_string();
                let moved = self
                    .fall_back(ctx, admitted, tools, ex, 400, raw.as_bytes())
                    .map_err(|f| (f, early))?;
                if moved {
                    return Ok(Step::Again);
                }
                let failure = Failure::Stream {
                    error: Box::new(error),
                    requested_model: admitted.request.model.clone(),
                };
                Err((failure, Moment::BeforeOutput))
            }
            RelayEnd::Failed { error, .. } => {
                let failure = Failure::Stream {
                    error: Box::new(error),
                    requested_model: admitted.request.model.clone(),
                };
                Err((failure, Moment::AfterOutput))
            }
        }
    }

    /// The model list in OpenAI form.
    pub async fn models(&self) -> Result<String, PipeError> {
        let models = self.catalog().list().await?;
        Ok(crate::catalog::to_openai_list(&models).to_string())
    }
}

/// What follows one turn of the chat loop.
enum Step {
    /// Send the (possibly changed) request again: a retry, a recovery, a fallback or the next
    /// tool round.
    Again,
    /// The answer is over (or the caller has gone).
    Done,
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tool_tests;
