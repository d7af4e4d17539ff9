//! The error-message templates: any template and any values render without a panic, the output
//! is bounded by its inputs, values are substituted once and cannot add lines, and the
//! variables read from an upstream error body are bounded whatever the body holds.

use proptest::prelude::*;
use responses_pipe_guest::templates::{
    self, MAX_PARSED_VALUE_CHARS, TemplateKind, TemplateSettings, Vars, vars_from_openrouter_error,
};

/// Values as hostile as upstream bodies and headers can make them.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        1 => prop::sample::select(vec![
            "{error_id}", "{{#if detail}}", "{{/if}}", "{{", "}}", "# Heading", "- item",
            "line\nbreak", "tab\tand\r", "\u{0}\u{7}\u{1b}[31m", "\u{85}\u{2028}", "   ",
            "<b>bold</b>", "`code`",
        ])
        .prop_map(str::to_string),
        1 => (1usize..20).prop_map(|n| "x".repeat(n * 1000)),
    ]
}

/// Variable names: the documented ones and a few others.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "error_id",
            "timestamp",
            "heading",
            "detail",
            "status_code",
            "reason",
            "provider",
            "openrouter_message",
            "upstream_message",
            "requested_model",
            "api_model_id",
            "request_id",
            "retry_after_seconds",
            "flagged_excerpt",
            "moderation_reasons",
            "fallback_models",
            "support_email",
            "support_url",
            "error_type",
            "endpoint",
        ])
        .prop_map(str::to_string),
        "[a-z_]{1,8}",
    ]
}

fn vars() -> impl Strategy<Value = Vars> {
    prop::collection::vec((name(), value()), 0..12).prop_map(|pairs| {
        let mut vars = Vars::new();
        for (k, v) in pairs {
            vars.set(k, v);
        }
        vars
    })
}

/// Template text: the language's pieces mixed with arbitrary text.
fn template() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => "[a-zA-Z .:*#`-]{0,12}",
        2 => name().prop_map(|n| format!("{{{n}}}")),
        1 => name().prop_map(|n| format!("{{{{#if {n}}}}}")),
        1 => Just("{{/if}}".to_string()),
        1 => Just("\n".to_string()),
        1 => Just("\r\n".to_string()),
        1 => prop::sample::select(vec!["{", "}", "{{", "}}", "{ x }", "{{else}}"]).prop_map(str::to_string),
        1 => any::<String>(),
    ];
    prop::collection::vec(piece, 0..30).prop_map(|pieces| pieces.concat())
}

fn longest_value(vars: &[(String, String)]) -> usize {
    vars.iter().map(|(_, v)| v.len()).max().unwrap_or(0)
}

fn no_control_but_newlines(text: &str) -> bool {
    text.chars().all(|c| c == '\n' || !c.is_control())
}

proptest! {
    #![proptest_config(crate::config())]

    #[test]
    fn any_template_renders_or_errs_with_bounded_output_and_no_extra_lines(
        template in template(),
        pairs in prop::collection::vec((name(), value()), 0..8),
    ) {
        let mut vars = Vars::new();
        for (k, v) in &pairs {
            vars.set(k.clone(), v.clone());
        }
        if let Ok(out) = templates::render(&template, &vars) {
            // Every placeholder is at least three bytes (`{a}`) and becomes at most one value.
            let bound = template.len() + (template.len() / 3) * longest_value(&pairs);
            prop_assert!(out.len() <= bound, "{} > {bound}", out.len());
            prop_assert!(
                out.split('\n').count() <= template.split('\n').count(),
                "a value added a line: {out:?}"
            );
        }
        let fallback = templates::render_or_fallback(&template, &vars, "ab\n#12");
        prop_assert!(!fallback.is_empty() || templates::render(&template, &vars).is_ok());
    }

    #[test]
    fn a_value_is_substituted_once_as_text(
        prefix in "[^{}\r\n]{0,10}",
        suffix in "[^{}\r\n]{0,10}",
        value in value(),
        other in value(),
    ) {
        let mut vars = Vars::new();
        vars.set("a", value.clone()).set("b", other);
        let out = templates::render(&format!("{prefix}{{a}}{suffix}"), &vars)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let line = if value.trim().is_empty() {
            String::new()
        } else {
            let shown: String = value.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
            format!("{prefix}{shown}{suffix}")
        };
        let expected = if line.trim().is_empty() { String::new() } else { line };
        prop_assert_eq!(out, expected);
    }

    #[test]
    fn built_in_templates_always_render_with_any_values(vars in vars(), kind in prop::sample::select(TemplateKind::ALL.to_vec())) {
        let settings = TemplateSettings::built_in();
        let out = settings.render(kind, &vars);
        prop_assert!(!out.contains("could not be displayed"), "{kind:?} fell back: {out}");
        prop_assert!(no_control_but_newlines(&out), "{out:?}");
        prop_assert!(out.split('\n').count() <= kind.default_text().split('\n').count());
    }

    #[test]
    fn variables_from_any_upstream_error_are_bounded(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            error_body(),
        ],
        status in 100u16..600,
        headers in prop::collection::vec(
            (prop::sample::select(vec![
                "retry-after", "x-ratelimit-scope", "x-ratelimit-limit",
                "x-ratelimit-remaining", "x-ratelimit-reset", "x-other",
            ]).prop_map(str::to_string), value()),
            0..4,
        ),
    ) {
        let vars = vars_from_openrouter_error(&body, status, &headers, 0);
        let rendered = TemplateSettings::built_in().render(TemplateKind::for_status(status), &vars);
        prop_assert!(!rendered.contains("could not be displayed"));
        for name in [
            "status_code", "reason", "openrouter_code", "provider", "upstream_message",
            "upstream_type", "api_model_id", "request_id", "openrouter_message", "error_type",
            "availability", "fallback_models", "heading", "moderation_reasons",
            "flagged_excerpt", "detail", "rate_limit_type", "rate_limit_limit",
            "rate_limit_remaining", "rate_limit_reset", "retry_after_seconds",
        ] {
            if let Some(v) = vars.get(name) {
                prop_assert!(
                    v.chars().count() <= MAX_PARSED_VALUE_CHARS,
                    "`{name}` holds {} characters", v.chars().count()
                );
            }
        }
    }
}

/// An OpenRouter-style error body with arbitrary (sometimes huge) values in every field the
/// parser reads.
fn error_body() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        value().prop_map(serde_json::Value::String),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        prop::collection::vec(value(), 0..3).prop_map(|v| serde_json::json!(v)),
    ];
    prop::collection::vec(field, 12).prop_map(|f| {
        serde_json::to_vec(&serde_json::json!({"error": {
            "message": f[0], "code": f[1], "type": f[2],
            "metadata": {
                "provider_name": f[3], "raw": f[4], "model_slug": f[5], "request_id": f[6],
                "reasons": f[7], "flagged_input": f[8], "error_type": f[9],
            },
            "availability": {"code": f[10], "fallback_models": f[11], "retry_after": 3.5},
        }}))
        .unwrap_or_default()
    })
}
