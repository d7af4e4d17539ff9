//! The stream relay: one upstream SSE body (`/responses` or `/chat/completions`) turned into
//! caller events as it arrives. Text and reasoning deltas are coalesced Nagle-style, reasoning
//! can be shown as throttled status lines, "Thinking…" stages fill the wait for the first token,
//! and citations become Open WebUI sources or annotations.

use super::Pipe;
use super::chat_turn::ChatTurn;
use crate::caps::{Emit, Env, HttpResponse, Kv, TransportError, Upstream};
use crate::chat_bridge::ChatStream;
use crate::endpoint::Endpoint;
use crate::errors;
use crate::owui_events;
use crate::stream::{ResponsesStream, Step};
use crate::timefmt::iso8601;
use crate::types::{ErrorBody, Event, FinishReason, RequestContext, Usage};
use futures::{FutureExt, StreamExt};
use responses_pipe_sse::StreamError;
use serde_json::Value;

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

/// How one upstream stream ended.
pub(super) enum RelayEnd {
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

/// Longest status line made from reasoning text, in characters.
const REASONING_STATUS_MAX_CHARS: usize = 160;

/// The status line for a piece of reasoning: its last `**Title**` heading when it has one
/// (reasoning summaries head each step that way), else its last 160 characters.
pub(super) fn reasoning_status_line(piece: &str) -> String {
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

impl<U: Upstream, K: Kv, E: Emit, V: Env> Pipe<'_, U, K, E, V> {
    /// Relay one SSE body: coalesced deltas, citations, thinking statuses; until a terminal
    /// event, a failure, or the end of the body.
    pub(super) async fn relay(
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
    pub(super) fn cite(&mut self, ctx: &RequestContext, c: crate::types::Citation) {
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
}

#[cfg(test)]
mod tests {
    #[test]
    fn reasoning_status_lines_take_the_summary_heading_or_the_tail() {
        assert_eq!(
            super::reasoning_status_line("**Planning the reply**\n\nThe user wants a haiku."),
            "Planning the reply"
        );
        assert_eq!(
            super::reasoning_status_line("**One**\n\ntext **Two** more."),
            "Two"
        );
        assert_eq!(
            super::reasoning_status_line("  just thinking.  "),
            "just thinking."
        );
        let long = format!("{}END", "x".repeat(300));
        let line = super::reasoning_status_line(&long);
        assert_eq!(line.chars().count(), 160);
        assert!(line.ends_with("END"));
        // An unclosed or empty bold run is not a heading.
        assert_eq!(super::reasoning_status_line("**** a **b"), "**** a **b");
    }
}
