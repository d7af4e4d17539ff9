//! Reasoning configuration (Gemini 2.5, Claude verbosity, task
//! effort): what to ask for depends on what the catalog says the model supports, and caller
//! values always win over valve defaults.

use super::{RequestSettings, is_claude_opus_or_sonnet, is_gemini_25};
use crate::model::ModelInfo;
use serde_json::{Map, Value, json};

/// `reasoning_effort` (chat shorthand) → `reasoning.effort`, never overwriting a caller value.
pub(super) fn fold_reasoning_effort(body: &mut Map<String, Value>) {
    let shorthand = body
        .remove("reasoning_effort")
        .and_then(|v| v.as_str().map(|s| s.trim().to_ascii_lowercase()))
        .filter(|s| !s.is_empty());
    let mut cfg = match body.remove("reasoning") {
        Some(Value::Object(cfg)) => cfg,
        // Anything but an object is not a reasoning config; dropped.
        _ => Map::new(),
    };
    if let Some(effort) = shorthand
        && cfg.get("effort").is_none_or(Value::is_null)
    {
        cfg.insert("effort".into(), Value::String(effort));
    }
    if !cfg.is_empty() {
        body.insert("reasoning".into(), Value::Object(cfg));
    }
}

fn lower(s: &str) -> String {
    s.trim().to_ascii_lowercase()
}

fn reasoning_effort(body: &Map<String, Value>) -> Option<String> {
    body.get("reasoning")
        .and_then(|r| r.get("effort"))
        .and_then(Value::as_str)
        .map(lower)
        .filter(|s| !s.is_empty())
}

/// How a model takes reasoning requests.
enum Support {
    /// `reasoning` in `supported_parameters`.
    Reasoning,
    /// Only the legacy `include_reasoning` flag.
    LegacyFlag,
    None,
}

fn support(model: &ModelInfo) -> Support {
    if model.capabilities.reasoning {
        Support::Reasoning
    } else if model.capabilities.reasoning_summary {
        Support::LegacyFlag
    } else {
        Support::None
    }
}

/// Everything reasoning-related, in the reference's order: valve preferences, the task
/// override, Gemini's `thinking_config`, Claude's `verbosity`.
pub(super) fn apply(
    body: &mut Map<String, Value>,
    model: &ModelInfo,
    settings: &RequestSettings,
    task: bool,
) {
    if settings.enable_reasoning {
        apply_preferences(body, model, settings);
    }
    if task {
        apply_task_effort(body, model, &lower(&settings.task_model_reasoning_effort));
    }
    apply_gemini_thinking(body, model, settings);
    apply_claude_verbosity(body, model, settings);
}

/// `ENABLE_REASONING`: ask for reasoning (effort, summary, enabled) under caller values, or the
/// legacy flag, or nothing.
fn apply_preferences(body: &mut Map<String, Value>, model: &ModelInfo, settings: &RequestSettings) {
    let valve_effort = lower(&settings.reasoning_effort);
    match support(model) {
        Support::Reasoning => {
            let mut cfg = match body.remove("reasoning") {
                Some(Value::Object(cfg)) => cfg,
                _ => Map::new(),
            };
            if !valve_effort.is_empty() && cfg.get("effort").is_none_or(Value::is_null) {
                cfg.insert("effort".into(), Value::String(valve_effort));
            }
            let summary = lower(&settings.reasoning_summary_mode);
            if !summary.is_empty()
                && summary != "disabled"
                && cfg.get("summary").is_none_or(Value::is_null)
            {
                cfg.insert("summary".into(), Value::String(summary));
            }
            // `enabled: true` next to `effort: "none"` would contradict it.
            let off = cfg.get("effort").and_then(Value::as_str) == Some("none");
            if !off && cfg.get("enabled").is_none_or(Value::is_null) {
                cfg.insert("enabled".into(), Value::Bool(true));
            }
            body.insert("reasoning".into(), Value::Object(cfg));
            body.remove("include_reasoning");
        }
        Support::LegacyFlag => {
            let effort = reasoning_effort(body).unwrap_or(valve_effort);
            body.remove("reasoning");
            body.insert(
                "include_reasoning".into(),
                Value::Bool(!effort.is_empty() && effort != "none"),
            );
        }
        Support::None => {
            body.remove("reasoning");
            body.insert("include_reasoning".into(), Value::Bool(false));
        }
    }
}

/// Housekeeping tasks run at `TASK_MODEL_REASONING_EFFORT`, whatever the chat asked for.
fn apply_task_effort(body: &mut Map<String, Value>, model: &ModelInfo, effort: &str) {
    if effort.is_empty() {
        return;
    }
    match support(model) {
        Support::Reasoning => {
            let mut cfg = match body.remove("reasoning") {
                Some(Value::Object(cfg)) => cfg,
                _ => Map::new(),
            };
            cfg.insert("effort".into(), Value::String(effort.to_string()));
            if effort == "none" {
                cfg.remove("enabled");
            } else if cfg.get("enabled").is_none_or(Value::is_null) {
                cfg.insert("enabled".into(), Value::Bool(true));
            }
            body.insert("reasoning".into(), Value::Object(cfg));
            body.remove("include_reasoning");
        }
        Support::LegacyFlag => {
            body.remove("reasoning");
            body.insert(
                "include_reasoning".into(),
                Value::Bool(!matches!(effort, "none" | "minimal")),
            );
        }
        Support::None => {
            body.remove("reasoning");
            body.insert("include_reasoning".into(), Value::Bool(false));
        }
    }
}

/// Gemini 2.5's thinking budget: the base budget scaled by effort; `None` means thinking off.
fn gemini_budget(effort: &str, base: i64) -> Option<i64> {
    if base <= 0 {
        return None;
    }
    let scale = match effort {
        "none" => return None,
        "minimal" => 0.25,
        "low" => 0.5,
        "high" => 2.0,
        "xhigh" => 4.0,
        _ => 1.0,
    };
    Some(((base as f64 * scale).round() as i64).max(1))
}

/// Gemini 2.5 reads `thinking_config`, not `reasoning`; any other model gets none.
fn apply_gemini_thinking(
    body: &mut Map<String, Value>,
    model: &ModelInfo,
    settings: &RequestSettings,
) {
    if !is_gemini_25(&model.id) {
        body.remove("thinking_config");
        return;
    }
    let cfg = body
        .get("reasoning")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let effort = reasoning_effort(body).unwrap_or_else(|| lower(&settings.reasoning_effort));
    let enabled = cfg.get("enabled").and_then(Value::as_bool).unwrap_or(true) && effort != "none";
    let excluded = cfg.get("exclude").and_then(Value::as_bool).unwrap_or(false);
    let flag = body.get("include_reasoning").and_then(Value::as_bool) == Some(true);
    let requested = flag || (!cfg.is_empty() && enabled && !excluded);
    let budget = gemini_budget(&effort, settings.gemini_thinking_budget);
    match budget.filter(|_| requested) {
        Some(budget) => {
            body.insert(
                "thinking_config".into(),
                json!({"include_thoughts": true, "thinking_budget": budget}),
            );
            body.remove("reasoning");
            body.remove("include_reasoning");
        }
        None => {
            // `include_thoughts` without a budget is rejected by the provider: thinking off.
            body.remove("thinking_config");
            body.insert("include_reasoning".into(), Value::Bool(false));
        }
    }
}

/// Claude Opus/Sonnet at effort `xhigh` → `verbosity: "max"` (kept in `text.verbosity`, where
/// the Responses API reads it; the chat body gets it as `verbosity`), unless the caller set it.
fn apply_claude_verbosity(
    body: &mut Map<String, Value>,
    model: &ModelInfo,
    settings: &RequestSettings,
) {
    if !is_claude_opus_or_sonnet(&model.id) {
        return;
    }
    let has_verbosity = body
        .get("text")
        .and_then(|t| t.get("verbosity"))
        .is_some_and(|v| !v.is_null());
    if has_verbosity {
        return;
    }
    let effort = reasoning_effort(body).unwrap_or_else(|| lower(&settings.reasoning_effort));
    if effort != "xhigh" {
        return;
    }
    let mut text = match body.remove("text") {
        Some(Value::Object(t)) => t,
        _ => Map::new(),
    };
    text.insert("verbosity".into(), Value::String("max".into()));
    body.insert("text".into(), Value::Object(text));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::test_support::{model, reasoning_model, request};
    use crate::request::{Identity, build_chat_completions_request, build_responses_request};

    fn responses(body: Value, m: &ModelInfo, s: &RequestSettings, task: bool) -> Value {
        build_responses_request(&request(body), m, s, &Identity::default(), task)
            .unwrap()
            .body
    }

    fn base(extra: Value) -> Value {
        let mut b = json!({"model": "x", "messages": [{"role": "user", "content": "hi"}]});
        if let (Some(b), Value::Object(extra)) = (b.as_object_mut(), extra) {
            b.extend(extra);
        }
        b
    }

    fn legacy_model(id: &str) -> ModelInfo {
        let mut m = model(id);
        m.capabilities.reasoning_summary = true;
        m
    }

    #[test]
    fn reasoning_models_get_effort_summary_and_enabled_under_caller_values() {
        let s = RequestSettings::default();
        let m = reasoning_model("openai/gpt-5");
        let cases = [
            (
                json!({}),
                json!({"effort": "medium", "summary": "auto", "enabled": true}),
            ),
            (
                json!({"reasoning_effort": "HIGH"}),
                json!({"effort": "high", "summary": "auto", "enabled": true}),
            ),
            (
                json!({"reasoning": {"effort": "low", "summary": "detailed"}, "reasoning_effort": "high"}),
                json!({"effort": "low", "summary": "detailed", "enabled": true}),
            ),
            (
                json!({"reasoning": {"enabled": false, "max_tokens": 100, "mode": "x"}}),
                json!({"effort": "medium", "summary": "auto", "enabled": false, "max_tokens": 100}),
            ),
            (
                json!({"reasoning_effort": "none"}),
                json!({"effort": "none", "summary": "auto"}),
            ),
        ];
        for (extra, expected) in cases {
            let body = responses(base(extra.clone()), &m, &s, false);
            assert_eq!(body["reasoning"], expected, "{extra}");
            assert!(body.get("include_reasoning").is_none());
            assert!(body.get("reasoning_effort").is_none());
        }
        let no_summary = RequestSettings {
            reasoning_summary_mode: "disabled".into(),
            ..s
        };
        let body = responses(base(json!({})), &m, &no_summary, false);
        assert_eq!(
            body["reasoning"],
            json!({"effort": "medium", "enabled": true})
        );
    }

    #[test]
    fn legacy_only_models_get_include_reasoning_and_others_none() {
        let s = RequestSettings::default();
        let body = responses(
            base(json!({"reasoning": {"effort": "high"}})),
            &legacy_model("a/b"),
            &s,
            false,
        );
        assert!(body.get("reasoning").is_none());
        assert_eq!(body["include_reasoning"], json!(true));
        let body = responses(
            base(json!({"reasoning_effort": "none"})),
            &legacy_model("a/b"),
            &s,
            false,
        );
        assert_eq!(body["include_reasoning"], json!(false));
        let body = responses(
            base(json!({"reasoning_effort": "high"})),
            &model("a/b"),
            &s,
            false,
        );
        assert!(body.get("reasoning").is_none());
        assert_eq!(body["include_reasoning"], json!(false));
    }

    #[test]
    fn with_reasoning_disabled_caller_values_pass_untouched() {
        let s = RequestSettings {
            enable_reasoning: false,
            ..RequestSettings::default()
        };
        let body = responses(
            base(json!({"reasoning_effort": "high"})),
            &reasoning_model("a/b"),
            &s,
            false,
        );
        assert_eq!(body["reasoning"], json!({"effort": "high"}));
        let body = responses(base(json!({})), &reasoning_model("a/b"), &s, false);
        assert!(body.get("reasoning").is_none() && body.get("include_reasoning").is_none());
    }

    #[test]
    fn task_requests_force_the_task_effort() {
        let s = RequestSettings::default();
        let body = responses(
            base(json!({"reasoning_effort": "xhigh"})),
            &reasoning_model("a/b"),
            &s,
            true,
        );
        assert_eq!(body["reasoning"]["effort"], "low");
        assert_eq!(body["reasoning"]["enabled"], json!(true));
        let none = RequestSettings {
            task_model_reasoning_effort: "minimal".into(),
            ..RequestSettings::default()
        };
        let body = responses(base(json!({})), &legacy_model("a/b"), &none, true);
        assert_eq!(body["include_reasoning"], json!(false));
    }

    #[test]
    fn gemini_budget_scales_with_effort() {
        let cases = [
            ("minimal", 1024, Some(256)),
            ("low", 1024, Some(512)),
            ("medium", 1024, Some(1024)),
            ("high", 1024, Some(2048)),
            ("xhigh", 1024, Some(4096)),
            ("unknown", 1000, Some(1000)),
            ("minimal", 2, Some(1)),
            ("none", 1024, None),
            ("high", 0, None),
        ];
        for (effort, base_budget, expected) in cases {
            assert_eq!(
                gemini_budget(effort, base_budget),
                expected,
                "{effort} {base_budget}"
            );
        }
    }

    #[test]
    fn gemini_25_gets_thinking_config_instead_of_reasoning() {
        let s = RequestSettings::default();
        let m = reasoning_model("google/gemini-2.5-pro");
        let body = responses(base(json!({"reasoning_effort": "high"})), &m, &s, false);
        assert_eq!(
            body["thinking_config"],
            json!({"include_thoughts": true, "thinking_budget": 2048})
        );
        assert!(body.get("reasoning").is_none() && body.get("include_reasoning").is_none());
        let body = responses(base(json!({"reasoning_effort": "none"})), &m, &s, false);
        assert!(body.get("thinking_config").is_none());
        assert_eq!(body["include_reasoning"], json!(false));
        let zero = RequestSettings {
            gemini_thinking_budget: 0,
            ..RequestSettings::default()
        };
        let body = responses(base(json!({})), &m, &zero, false);
        assert!(body.get("thinking_config").is_none());
        let chat = build_chat_completions_request(
            &request(base(json!({}))),
            &m,
            &s,
            &Identity::default(),
            false,
        )
        .unwrap();
        assert_eq!(chat.body["thinking_config"]["thinking_budget"], json!(1024));
    }

    #[test]
    fn other_models_never_carry_a_thinking_config() {
        let body = responses(
            base(json!({"thinking_config": {"include_thoughts": true}})),
            &reasoning_model("google/gemini-2.0-flash"),
            &RequestSettings::default(),
            false,
        );
        assert!(body.get("thinking_config").is_none());
    }

    #[test]
    fn claude_opus_and_sonnet_at_xhigh_ask_for_max_verbosity_unless_set() {
        let s = RequestSettings::default();
        let m = reasoning_model("anthropic/claude-opus-4.1");
        let body = responses(base(json!({"reasoning_effort": "xhigh"})), &m, &s, false);
        assert_eq!(body["text"]["verbosity"], "max");
        let chat = build_chat_completions_request(
            &request(base(json!({"reasoning_effort": "xhigh"}))),
            &m,
            &s,
            &Identity::default(),
            false,
        )
        .unwrap();
        assert_eq!(chat.body["verbosity"], "max");
        assert!(chat.body.get("text").is_none());
        let body = responses(
            base(json!({"reasoning_effort": "xhigh", "verbosity": "low"})),
            &m,
            &s,
            false,
        );
        assert_eq!(body["text"]["verbosity"], "low");
        let body = responses(base(json!({"reasoning_effort": "high"})), &m, &s, false);
        assert!(body.get("text").is_none());
        let haiku = reasoning_model("anthropic/claude-3.5-haiku");
        let body = responses(
            base(json!({"reasoning_effort": "xhigh"})),
            &haiku,
            &s,
            false,
        );
        assert!(body.get("text").is_none());
        let valve = RequestSettings {
            reasoning_effort: "xhigh".into(),
            ..RequestSettings::default()
        };
        let body = responses(base(json!({})), &m, &valve, false);
        assert_eq!(body["text"]["verbosity"], "max");
    }
}
