//! Tool calls: the settings, the tools a request offers the model (its
//! own plus those the host serves), and one round of the pipeline loop — normalise and check
//! the model's calls, skip what a breaker or the loop limit says to skip, batch the rest, run
//! them through the host's `tools` capability and turn the results into `function_call_output`
//! items for the next `/responses` call. `chat.rs` drives the rounds and does the talking to the
//! caller (statuses, cards, citations, pass-through `tool_calls`).

pub mod breaker;
pub mod schema;

use crate::caps::{InvokeOptions, Kv, ToolError, ToolSpec, Tools};
use crate::endpoint::Endpoint;
use crate::model::ModelInfo;
use crate::types::{ToolCall, Usage};
use breaker::Breaker;
use serde::Deserialize;
use serde_json::{Value, json};

/// Calls one round may queue (the reference's bounded per-request queue).
pub const MAX_QUEUED_CALLS: usize = 50;
/// The output a call gets when the loop limit is reached.
pub const LOOP_SKIPPED: &str = "TOOL_CALL_SKIPPED: the tool-call limit for this answer was reached, so this call was not run. Answer with what you already have.";
/// The answer shown when the loop ends without any assistant text.
pub const NO_ANSWER_FALLBACK: &str =
    "I ran the requested tools but could not put together an answer. Please try again.";
/// Argument keys that make a call run on its own, after the others.
const DEPENDENCY_KEYS: [&str; 4] = ["depends_on", "_depends_on", "sequential", "no_batch"];
/// URLs harvested as citations from one tool result, at most.
const MAX_CITED_URLS: usize = 10;

/// The tool settings (defaults: the settings table).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct ToolSettings {
    /// `Pipeline` (the component runs host tools) or `Open-WebUI` (every call handed back).
    pub tool_execution_mode: String,
    pub show_tool_cards: bool,
    pub enable_strict_tool_calling: bool,
    pub max_function_call_loops: i64,
    pub max_parallel_tools_per_request: u32,
    pub breaker_max_failures: u32,
    pub breaker_window_seconds: u64,
    pub tool_batch_cap: u32,
    pub tool_timeout_seconds: u64,
    pub tool_batch_timeout_seconds: u64,
    pub tool_idle_timeout_seconds: Option<u64>,
}

impl ToolSettings {
    pub fn pipeline(&self) -> bool {
        self.tool_execution_mode.eq_ignore_ascii_case("pipeline")
    }

    /// Model turns after which pending calls are skipped (at least one turn).
    pub fn max_loops(&self) -> u32 {
        u32::try_from(self.max_function_call_loops.max(1)).unwrap_or(u32::MAX)
    }

    pub fn invoke_options(&self) -> InvokeOptions {
        let call = self.tool_timeout_seconds.max(1);
        InvokeOptions {
            max_parallel: self.max_parallel_tools_per_request.max(1),
            call_timeout_ms: call.saturating_mul(1000),
            batch_timeout_ms: call
                .max(self.tool_batch_timeout_seconds)
                .saturating_mul(1000),
            idle_timeout_ms: self
                .tool_idle_timeout_seconds
                .map(|s| s.saturating_mul(1000)),
        }
    }

    pub fn window_ms(&self) -> u64 {
        self.breaker_window_seconds.max(1).saturating_mul(1000)
    }
}

/// A tool the host serves, with its original schema (for validation) kept.
#[derive(Clone, Debug)]
pub struct HostTool {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

/// The host tools offered to the model in this request (empty in pass-through mode).
#[derive(Clone, Debug, Default)]
pub struct ToolSet {
    pub host: Vec<HostTool>,
}

impl ToolSet {
    pub fn serves(&self, name: &str) -> Option<&HostTool> {
        self.host.iter().find(|t| t.name == name)
    }
}

/// Names of the function tools already in a built body (either shape).
fn tool_names(body: &Value) -> Vec<String> {
    body.get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            t.get("name")
                .or_else(|| t.pointer("/function/name"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect()
}

/// Whether tools may be attached for this model: it must call functions and not be an
/// image-output model (tools are never attached to image or video models).
pub fn model_takes_tools(model: &ModelInfo) -> bool {
    model.capabilities.tools && !model.capabilities.image_output
}

/// Pipeline mode: add the host's tools to a built request body (the request's own tools keep
/// their names; a host tool whose name a request tool already uses is left out). Returns the
/// host tools that were added. `log` receives a line for what was left out and why.
pub fn offer_host_tools(
    settings: &ToolSettings,
    model: &ModelInfo,
    specs: Result<Vec<ToolSpec>, ToolError>,
    endpoint: Endpoint,
    body: &mut Value,
    log: &mut dyn FnMut(&str),
) -> ToolSet {
    if !settings.pipeline() || !model_takes_tools(model) {
        return ToolSet::default();
    }
    let specs = match specs {
        Ok(s) => s,
        Err(e) => {
            log(&format!("host tools unavailable: {e}"));
            return ToolSet::default();
        }
    };
    let taken = tool_names(body);
    let mut set = ToolSet::default();
    let mut added = Vec::new();
    for spec in specs {
        if spec.name.trim().is_empty() || set.serves(&spec.name).is_some() {
            continue;
        }
        if taken.contains(&spec.name) {
            log(&format!(
                "host tool `{}` not offered: the request has a tool of that name",
                spec.name
            ));
            continue;
        }
        let parameters = serde_json::from_str::<Value>(&spec.parameters_json)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        let strict = settings.enable_strict_tool_calling;
        let sent = if strict {
            schema::strictify(&parameters)
        } else {
            parameters.clone()
        };
        let mut tool = json!({"type": "function", "name": spec.name, "parameters": sent});
        if !spec.description.trim().is_empty() {
            tool["description"] = json!(spec.description);
        }
        if strict {
            tool["strict"] = json!(true);
        }
        if endpoint == Endpoint::ChatCompletions {
            tool = json!({"type": "function", "function": tool});
        }
        added.push(tool);
        set.host.push(HostTool {
            name: spec.name,
            description: spec.description,
            parameters,
        });
    }
    if added.is_empty() {
        return set;
    }
    if let Some(o) = body.as_object_mut() {
        let tools = o.entry("tools").or_insert_with(|| json!([]));
        match tools.as_array_mut() {
            Some(list) => list.extend(added),
            None => *tools = Value::Array(added),
        }
    }
    set
}

/// A call with its arguments made whole: never empty (`{}` for a tool without required
/// parameters), as Open WebUI and OpenAI clients expect.
pub fn pass_through_call(call: &ToolCall) -> ToolCall {
    let mut c = call.clone();
    if c.arguments_json.trim().is_empty() {
        c.arguments_json = "{}".into();
    }
    c
}

/// What happened to one call of a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The tool ran and answered.
    Ok,
    /// The tool ran (or was meant to) and failed; counted by its breaker.
    Failed,
    /// The call itself was unusable (no name, bad JSON, schema violation).
    Malformed,
    /// The tool's breaker is open.
    BreakerSkipped,
    /// The loop limit was reached.
    LoopSkipped,
    /// The per-request queue was full.
    QueueFull,
}

/// One call of a round with the output the model will see.
#[derive(Clone, Debug)]
pub struct CallOutcome {
    pub call: ToolCall,
    pub output: String,
    pub outcome: Outcome,
}

impl CallOutcome {
    /// The `function_call_output` input item.
    pub fn item(&self) -> Value {
        json!({
            "type": "function_call_output",
            "call_id": self.call.call_id,
            "output": self.output,
        })
    }
}

/// Everything one round needs besides the calls.
pub struct Executor<'a, K, T> {
    pub settings: &'a ToolSettings,
    pub kv: &'a K,
    pub tools: &'a T,
    pub set: &'a ToolSet,
    /// Whose breakers apply: the request's principal (`RequestContext::principal`, the client
    /// key's name and the user when the key may name one), so tool breakers never span keys.
    pub user: &'a str,
    pub now_ms: u64,
}

/// Check one call: its normalised form, or the error output the model gets instead.
pub fn normalise(call: &ToolCall, tool: &HostTool, strict: bool) -> Result<ToolCall, String> {
    let required = schema::required_params(&tool.parameters);
    let raw = call.arguments_json.trim();
    let mut args = if raw.is_empty() {
        if !required.is_empty() {
            return Err(format!(
                "Error: `{}` needs arguments ({}) but the call had none. Call it again with them.",
                tool.name,
                required.join(", ")
            ));
        }
        json!({})
    } else {
        serde_json::from_str::<Value>(raw).map_err(|e| {
            format!(
                "Error: the arguments for `{}` are not valid JSON ({e}). Call it again with a JSON object.",
                tool.name
            )
        })?
    };
    if !args.is_object() {
        return Err(format!(
            "Error: the arguments for `{}` must be a JSON object.",
            tool.name
        ));
    }
    if strict {
        schema::drop_optional_nulls(&mut args, &tool.parameters);
    }
    schema::validate(&args, &tool.parameters).map_err(|e| {
        format!(
            "Error: the arguments for `{}` do not match its schema: {e}. Call it again with valid arguments.",
            tool.name
        )
    })?;
    Ok(ToolCall {
        call_id: call.call_id.clone(),
        name: call.name.clone(),
        arguments_json: args.to_string(),
    })
}

/// Whether a call asks to run on its own: a dependency key in its arguments, or an argument
/// naming another call of the round by id.
fn declares_dependency(call: &ToolCall, others: &[&ToolCall]) -> bool {
    let Ok(Value::Object(args)) = serde_json::from_str::<Value>(&call.arguments_json) else {
        return false;
    };
    if DEPENDENCY_KEYS.iter().any(|k| {
        args.get(*k)
            .is_some_and(|v| !v.is_null() && *v != Value::Bool(false))
    }) {
        return true;
    }
    args.values().any(|v| {
        let ids: Vec<&str> = match v {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        ids.iter().any(|id| {
            others
                .iter()
                .any(|o| o.call_id != call.call_id && o.call_id == *id)
        })
    })
}

/// Split runnable calls into batches (indexes into `calls`): same-tool calls up to `cap` share a
/// batch; a call that declares a dependency is a batch of its own. Returns the independent
/// batches (run together) and the dependent ones (run one after another, afterwards).
pub fn plan_batches(calls: &[&ToolCall], cap: usize) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
    let cap = cap.max(1);
    let mut independent: Vec<Vec<usize>> = Vec::new();
    let mut dependent = Vec::new();
    for (i, call) in calls.iter().enumerate() {
        if declares_dependency(call, calls) {
            dependent.push(vec![i]);
            continue;
        }
        let open = independent
            .iter_mut()
            .find(|b| b.len() < cap && b.first().is_some_and(|&f| calls[f].name == call.name));
        match open {
            Some(b) => b.push(i),
            None => independent.push(vec![i]),
        }
    }
    (independent, dependent)
}

/// The text a failed call returns to the model.
fn error_output(name: &str, e: &ToolError, timeout_s: u64) -> String {
    match e {
        ToolError::Timeout => {
            format!("Error: `{name}` did not finish within its time limit ({timeout_s} s).")
        }
        ToolError::NotFound => format!("Error: the tool `{name}` is no longer available."),
        other => format!("Error: `{name}` failed: {other}"),
    }
}

impl<K: Kv, T: Tools> Executor<'_, K, T> {
    fn breaker(&self, tool: &str) -> Breaker<'_, K> {
        Breaker {
            kv: self.kv,
            key: breaker::tool_key(self.user, tool),
            max_failures: self.settings.breaker_max_failures,
            window_ms: self.settings.window_ms(),
        }
    }

    /// Run one round's host calls (the caller has already taken out pass-through calls). With
    /// `skip_all` (the loop limit) nothing runs and every call gets [`LOOP_SKIPPED`]. The
    /// outcomes keep the order of `calls`; `on_wave` is told the calls about to run.
    pub fn run(
        &self,
        calls: &[ToolCall],
        skip_all: bool,
        on_wave: &mut dyn FnMut(&[ToolCall]),
    ) -> Vec<CallOutcome> {
        let mut out: Vec<Option<CallOutcome>> = vec![None; calls.len()];
        let mut runnable: Vec<(usize, ToolCall)> = Vec::new();
        let mut breaker_open: Vec<String> = Vec::new();
        for (i, call) in calls.iter().enumerate() {
            let done = |output: String, outcome| {
                Some(CallOutcome {
                    call: call.clone(),
                    output,
                    outcome,
                })
            };
            if skip_all {
                out[i] = done(LOOP_SKIPPED.into(), Outcome::LoopSkipped);
                continue;
            }
            if i >= MAX_QUEUED_CALLS {
                out[i] = done(
                    format!(
                        "TOOL_CALL_SKIPPED: this answer's tool queue is full ({MAX_QUEUED_CALLS} calls per round)."
                    ),
                    Outcome::QueueFull,
                );
                continue;
            }
            let Some(tool) = self.set.serves(&call.name) else {
                let msg = if call.name.trim().is_empty() {
                    "Error: the call has no tool name.".to_string()
                } else {
                    format!("Error: there is no tool named `{}`.", call.name)
                };
                out[i] = done(msg, Outcome::Malformed);
                continue;
            };
            let open = breaker_open.contains(&tool.name) || {
                let o = self.breaker(&tool.name).is_open(self.now_ms);
                if o {
                    breaker_open.push(tool.name.clone());
                }
                o
            };
            if open {
                out[i] = done(
                    format!(
                        "TOOL_CALL_SKIPPED: `{}` was skipped due to repeated failures; it is paused for now. Answer without it.",
                        tool.name
                    ),
                    Outcome::BreakerSkipped,
                );
                continue;
            }
            match normalise(call, tool, self.settings.enable_strict_tool_calling) {
                Ok(c) => runnable.push((i, c)),
                Err(msg) => out[i] = done(msg, Outcome::Malformed),
            }
        }
        let refs: Vec<&ToolCall> = runnable.iter().map(|(_, c)| c).collect();
        let (independent, dependent) = plan_batches(&refs, self.settings.tool_batch_cap as usize);
        // Workers = MAX_PARALLEL_TOOLS_PER_REQUEST: that many batches go to the host at once.
        let workers = self.settings.max_parallel_tools_per_request.max(1) as usize;
        let mut waves: Vec<Vec<usize>> = independent
            .chunks(workers)
            .map(|w| w.iter().flatten().copied().collect())
            .collect();
        waves.extend(dependent);
        let options = self.settings.invoke_options();
        for wave in waves {
            let batch: Vec<ToolCall> = wave.iter().map(|&k| runnable[k].1.clone()).collect();
            on_wave(&batch);
            let results = self.tools.invoke(&batch, &options);
            for (&k, call) in wave.iter().zip(&batch) {
                let result = results
                    .iter()
                    .find(|r| r.call_id == call.call_id)
                    .map(|r| r.output.clone())
                    .unwrap_or_else(|| Err(ToolError::Other("the host returned no result".into())));
                let breaker = self.breaker(&call.name);
                let (output, outcome) = match result {
                    Ok(text) => {
                        breaker.clear();
                        (text, Outcome::Ok)
                    }
                    Err(e) => {
                        // A tool the host stopped serving (the reference's "no longer
                        // available" rule) or arguments it refused are not the tool failing.
                        if !matches!(e, ToolError::NotFound | ToolError::InvalidArgument(_)) {
                            breaker.record_failure(self.now_ms);
                        }
                        let timeout_s = self.settings.tool_timeout_seconds;
                        (error_output(&call.name, &e, timeout_s), Outcome::Failed)
                    }
                };
                let i = runnable[k].0;
                out[i] = Some(CallOutcome {
                    call: call.clone(),
                    output,
                    outcome,
                });
            }
        }
        out.into_iter()
            .zip(calls)
            .map(|(o, call)| {
                o.unwrap_or_else(|| CallOutcome {
                    call: call.clone(),
                    output: "Error: the call was not run.".into(),
                    outcome: Outcome::Failed,
                })
            })
            .collect()
    }
}

/// An output item as it goes back into `input`: the fields a response carries that an input
/// item does not take are dropped.
fn as_input_item(item: &Value) -> Option<Value> {
    let kind = item.get("type").and_then(Value::as_str)?;
    let mut o = item.as_object()?.clone();
    match kind {
        "message" => {
            let content: Vec<Value> = o
                .get("content")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|p| p.get("type").and_then(Value::as_str) == Some("output_text"))
                .map(|p| {
                    json!({
                        "type": "output_text",
                        "text": p.get("text").and_then(Value::as_str).unwrap_or(""),
                        "annotations": p.get("annotations").cloned().unwrap_or_else(|| json!([])),
                    })
                })
                .collect();
            if content.is_empty() {
                return None;
            }
            o.insert("content".into(), Value::Array(content));
            o.insert("role".into(), json!("assistant"));
            o.insert("status".into(), json!("completed"));
        }
        "reasoning" | "function_call" => {
            if kind == "function_call" {
                let args = o.get("arguments").and_then(Value::as_str).unwrap_or("");
                if args.trim().is_empty() {
                    o.insert("arguments".into(), json!("{}"));
                }
            }
            o.insert("status".into(), json!("completed"));
        }
        // Server-tool items (web search and the like) were handled upstream; not replayed.
        _ => return None,
    }
    Some(Value::Object(o))
}

/// Continue a Responses body after a round: the prior output items (reasoning with its
/// encrypted content, messages, calls) and then the calls' outputs go to the end of `input`.
pub fn continue_responses(body: &mut Value, output: &[Value], outcomes: &[CallOutcome]) {
    let Some(o) = body.as_object_mut() else {
        return;
    };
    let input = o.entry("input").or_insert_with(|| json!([]));
    if let Value::String(text) = input {
        *input = json!([{"type": "message", "role": "user", "content": text.clone()}]);
    }
    if let Some(list) = input.as_array_mut() {
        list.extend(output.iter().filter_map(as_input_item));
        list.extend(outcomes.iter().map(CallOutcome::item));
    }
}

/// Continue a `/chat/completions` body after a round: the assistant turn with its calls, then one
/// `tool` message per call.
pub fn continue_chat(body: &mut Value, text: &str, outcomes: &[CallOutcome]) {
    let Some(o) = body.as_object_mut() else {
        return;
    };
    let messages = o.entry("messages").or_insert_with(|| json!([]));
    let Some(list) = messages.as_array_mut() else {
        return;
    };
    let calls: Vec<Value> = outcomes
        .iter()
        .map(|c| {
            json!({"id": c.call.call_id, "type": "function",
                   "function": {"name": c.call.name, "arguments": pass_through_call(&c.call).arguments_json}})
        })
        .collect();
    let content = if text.is_empty() {
        Value::Null
    } else {
        json!(text)
    };
    list.push(json!({"role": "assistant", "content": content, "tool_calls": calls}));
    for c in outcomes {
        list.push(json!({"role": "tool", "tool_call_id": c.call.call_id, "content": c.output}));
    }
}

/// Forbid further calls (the synthesis turn after the loop limit).
pub fn forbid_calls(body: &mut Value) {
    if let Some(o) = body.as_object_mut()
        && o.get("tools")
            .and_then(Value::as_array)
            .is_some_and(|t| !t.is_empty())
    {
        o.insert("tool_choice".into(), json!("none"));
    }
}

/// Sum two rounds' usage (tokens and cost).
pub fn merge_usage(total: Option<Usage>, round: Option<Usage>) -> Option<Usage> {
    match (total, round) {
        (None, r) => r,
        (t, None) => t,
        (Some(a), Some(b)) => Some(Usage {
            prompt_tokens: a.prompt_tokens + b.prompt_tokens,
            completion_tokens: a.completion_tokens + b.completion_tokens,
            total_tokens: a.total_tokens + b.total_tokens,
            cached_tokens: a.cached_tokens + b.cached_tokens,
            reasoning_tokens: a.reasoning_tokens + b.reasoning_tokens,
            cost_usd: match (a.cost_usd, b.cost_usd) {
                (None, None) => None,
                (x, y) => Some(x.unwrap_or(0.0) + y.unwrap_or(0.0)),
            },
        }),
    }
}

/// The http(s) URLs in a tool result, de-duplicated, in order (at most 10); a candidate counts
/// when the `url` crate finds a host in it, and is kept as written.
pub fn urls_in(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("http") {
        let tail = &rest[at..];
        let is_url = tail.starts_with("https://") || tail.starts_with("http://");
        let end = tail
            .find(|c: char| c.is_whitespace() || "\"'<>()[]{}`|\\^".contains(c))
            .unwrap_or(tail.len());
        if is_url {
            let url = tail[..end].trim_end_matches(['.', ',', ';', ':', '!', '?']);
            let has_host =
                url::Url::parse(url).is_ok_and(|u| u.host_str().is_some_and(|h| !h.is_empty()));
            if has_host && !out.iter().any(|u| u == url) {
                out.push(url.to_string());
                if out.len() >= MAX_CITED_URLS {
                    break;
                }
            }
        }
        rest = &tail[end.max(4)..];
    }
    out
}

/// An attribute value on one line: HTML-escaped, newlines as character references.
fn attr_escape(s: &str) -> String {
    crate::owui_events::escape_html(s).replace('\n', "&#10;")
}

/// Open WebUI's collapsible card for an executed call (the `<details type="tool_calls">` block
/// its chat renderer shows as a tool call with arguments and result).
pub fn card(outcome: &CallOutcome) -> String {
    details_card(
        &outcome.call.call_id,
        &outcome.call.name,
        &outcome.call.arguments_json,
        &outcome.output,
    )
}

/// The `<details type="tool_calls">` block for one finished call: `arguments_json` as the
/// model sent it, `result` the text it got back (JSON-quoted, as Open WebUI stores results).
pub fn details_card(id: &str, name: &str, arguments_json: &str, result: &str) -> String {
    let result = Value::String(result.to_string()).to_string();
    format!(
        "\n<details type=\"tool_calls\" done=\"true\" id=\"{}\" name=\"{}\" arguments=\"{}\" result=\"{}\" files=\"\" embeds=\"\">\n<summary>Tool Executed</summary>\n</details>\n",
        attr_escape(id),
        attr_escape(name),
        attr_escape(arguments_json),
        attr_escape(&result),
    )
}

#[cfg(test)]
mod tests;
