//! A completed model turn in the tool loop: the answer ends, the calls go back to the client, or
//! the host's tools run and the model is asked again. The caller is told what each round did,
//! and the items to persist are gathered as the turns go.

use super::chat_turn::ChatTurn;
use super::entry::Outbound;
use super::{Exchange, Pipe};
use crate::caps::{Emit, Env, Kv, Tools, Upstream};
use crate::endpoint::Endpoint;
use crate::owui_events;
use crate::tool_loop::{self, CallOutcome, Executor, Outcome};
use crate::types::{Event, FinishReason, RequestContext, Usage};
use serde_json::Value;

/// What the tool loop carries from one model turn to the next.
#[derive(Default)]
pub(super) struct Rounds {
    /// Model turns completed so far.
    pub turns: u32,
    /// Usage summed over the turns.
    pub usage: Option<Usage>,
    /// Whether any turn produced answer text.
    pub text: bool,
    /// The loop limit was reached: this turn is the synthesis turn.
    pub synthesis: bool,
    /// The items to persist when the answer is over, in order (see `collect_turn`).
    pub items: Vec<Value>,
    /// Whether anything can be persisted for this request (a chat id and a granted table);
    /// without it no item is gathered.
    pub persist: bool,
    /// The last `/chat/completions` turn's text and reasoning details.
    pub chat: ChatTurn,
    /// A turn had every call skipped by tool breakers (counted against the request breaker),
    /// so finishing this answer is not the success that clears it.
    pub degraded: bool,
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
pub(super) enum Turn {
    /// The answer is over, with this finish.
    Done(FinishReason),
    /// The body was extended with tool outputs: call the model again.
    Again,
}

impl<U: Upstream, K: Kv, E: Emit, V: Env> Pipe<'_, U, K, E, V> {
    /// A completed model turn: answer, hand calls back to the client, or run the host's calls and
    /// go again.
    pub(super) fn after_turn<T: Tools>(
        &mut self,
        ctx: &RequestContext,
        tools: &T,
        user: &str,
        ex: &mut Exchange,
        finish: FinishReason,
        output: Vec<Value>,
    ) -> Turn {
        let Exchange {
            out:
                Outbound {
                    endpoint,
                    built,
                    set,
                },
            rounds,
            ..
        } = ex;
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
        match *endpoint {
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
}
