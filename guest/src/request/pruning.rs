//! Tool outputs kept within bounds before they go back to the model: outputs
//! from turns older than `TOOL_OUTPUT_RETENTION_TURNS` that are at least 800 characters long are
//! shortened to their first 256 and last 128 characters with a note between; and when the whole
//! conversation would not fit the model's context budget (4 characters per token), the largest
//! tool outputs are replaced by a short "omitted" stub until it does.

use crate::model::ModelInfo;
use serde_json::Value;

/// Outputs shorter than this are never shortened.
const PRUNE_MIN_CHARS: usize = 800;
const KEEP_HEAD_CHARS: usize = 256;
const KEEP_TAIL_CHARS: usize = 128;
/// The reference's token estimate.
const CHARS_PER_TOKEN: usize = 4;
/// Context assumed when the catalog gives none.
const DEFAULT_CONTEXT_TOKENS: u64 = 128_000;
const OMITTED: &str = "[Tool output omitted due to context budget]";

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Shorten a long output to head + note + tail.
pub fn shorten(output: &str) -> String {
    let n = chars(output);
    if n < PRUNE_MIN_CHARS {
        return output.to_string();
    }
    let head: String = output.chars().take(KEEP_HEAD_CHARS).collect();
    let tail: String = output.chars().skip(n - KEEP_TAIL_CHARS).collect();
    let dropped = n - KEEP_HEAD_CHARS - KEEP_TAIL_CHARS;
    format!("{head}\n…[{dropped} characters of an older tool output pruned]…\n{tail}")
}

/// The prompt budget in characters: `max_prompt_tokens` is not in our catalog, so
/// `context_length − max_completion_tokens`, else `context_length`, else 128k tokens.
pub fn budget_chars(model: &ModelInfo) -> usize {
    let tokens = match (model.context_length, model.max_completion_tokens) {
        (Some(ctx), Some(out)) if ctx > out => ctx - out,
        (Some(ctx), _) => ctx,
        _ => DEFAULT_CONTEXT_TOKENS,
    };
    usize::try_from(tokens)
        .unwrap_or(usize::MAX)
        .saturating_mul(CHARS_PER_TOKEN)
}

fn is_tool(m: &Value) -> bool {
    m.get("role").and_then(Value::as_str) == Some("tool")
}

fn content_chars(m: &Value) -> usize {
    match m.get("content") {
        Some(Value::String(s)) => chars(s),
        Some(other) => other.to_string().len(),
        None => 0,
    }
}

/// Apply both rules to chat-shaped messages (`role: "tool"` carries the outputs).
pub fn prune_tool_outputs(messages: &mut [Value], retention_turns: u32, budget_chars: usize) {
    // A turn is one user message; an output is old when `retention_turns` or more user
    // messages follow it.
    let mut users_after = 0u32;
    for m in messages.iter_mut().rev() {
        match m.get("role").and_then(Value::as_str) {
            Some("user") => users_after += 1,
            Some("tool") if users_after >= retention_turns.max(1) => {
                if let Some(Value::String(s)) = m.get("content") {
                    let short = shorten(s);
                    if let Some(o) = m.as_object_mut() {
                        o.insert("content".into(), Value::String(short));
                    }
                }
            }
            _ => {}
        }
    }
    let mut total: usize = messages.iter().map(content_chars).sum();
    while total > budget_chars {
        let Some((idx, size)) = messages
            .iter()
            .enumerate()
            .filter(|(_, m)| is_tool(m))
            .map(|(i, m)| (i, content_chars(m)))
            .filter(|(_, size)| *size > OMITTED.len())
            .max_by_key(|(_, size)| *size)
        else {
            break;
        };
        if let Some(o) = messages[idx].as_object_mut() {
            o.insert("content".into(), Value::String(OMITTED.into()));
        }
        total = total - size + OMITTED.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn convo(turns_after: usize, output: &str) -> Vec<Value> {
        let mut m = vec![
            json!({"role":"user","content":"q"}),
            json!({"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]}),
            json!({"role":"tool","tool_call_id":"c1","content":output}),
        ];
        for _ in 0..turns_after {
            m.push(json!({"role":"user","content":"next"}));
        }
        m
    }

    #[test]
    fn old_long_outputs_are_shortened_and_recent_or_short_ones_kept() {
        let long = "x".repeat(1000);
        let mut old = convo(10, &long);
        prune_tool_outputs(&mut old, 10, usize::MAX);
        let text = old[2]["content"].as_str().unwrap();
        assert!(text.contains("characters of an older tool output pruned"));
        assert!(chars(text) < 500);
        let mut recent = convo(9, &long);
        prune_tool_outputs(&mut recent, 10, usize::MAX);
        assert_eq!(recent[2]["content"], json!(long));
        let mut short = convo(20, "small");
        prune_tool_outputs(&mut short, 10, usize::MAX);
        assert_eq!(short[2]["content"], "small");
    }

    #[test]
    fn over_budget_the_largest_outputs_are_omitted_first() {
        let mut m = convo(0, &"y".repeat(5000));
        m.push(json!({"role":"tool","tool_call_id":"c2","content":"z".repeat(300)}));
        prune_tool_outputs(&mut m, 10, 1000);
        assert_eq!(m[2]["content"], OMITTED);
        assert_eq!(
            m[3]["content"].as_str().unwrap().len(),
            300,
            "the smaller one still fits"
        );
    }

    #[test]
    fn the_budget_follows_the_catalog() {
        let mut model = crate::request::test_support::model("a/b");
        model.context_length = Some(1000);
        model.max_completion_tokens = Some(200);
        assert_eq!(budget_chars(&model), 3200);
        model.context_length = None;
        assert_eq!(budget_chars(&model), 128_000 * 4);
    }
}
