//! The final usage status line shown under an answer: elapsed time, output
//! speed, cost and token counts, as text labels or as a configurable icon set; or, when the
//! upstream reported no usage, how long the model took. Pure: the caller measures the times.

use crate::types::Usage;
use serde::Deserialize;

/// The icons for time, cost, total, input, output, cached and reasoning, in that order (the
/// settings table's default of `USAGE_STATUS_ICON_SET`).
pub use responses_pipe_settings::DEFAULT_ICON_SET;

/// The settings that shape the line (defaults: the settings table).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct UsageStatusSettings {
    pub show_final_usage_status: bool,
    /// `text` or `icons`; anything else reads as `text`.
    pub final_usage_status_style: String,
    /// Seven comma-separated icons or words; a malformed set falls back to [`DEFAULT_ICON_SET`].
    pub usage_status_icon_set: String,
}

/// What goes before each value: the text labels, or an icon and a space.
struct Labels {
    time: String,
    cost: String,
    total: String,
    input: String,
    output: String,
    cached: String,
    reasoning: String,
    icons: bool,
}

impl Labels {
    fn text() -> Labels {
        Labels {
            time: "Time: ".to_string(),
            cost: "Cost $".to_string(),
            total: "Total tokens: ".to_string(),
            input: "Input: ".to_string(),
            output: "Output: ".to_string(),
            cached: "Cached: ".to_string(),
            reasoning: "Reasoning: ".to_string(),
            icons: false,
        }
    }

    fn icons(set: &str) -> Labels {
        let parse = |set: &str| -> Option<Vec<String>> {
            let parts: Vec<String> = set.split(',').map(|p| p.trim().to_string()).collect();
            (parts.len() == 7 && parts.iter().all(|p| !p.is_empty())).then_some(parts)
        };
        let parts = parse(set)
            .or_else(|| parse(DEFAULT_ICON_SET))
            .unwrap_or_default();
        let label = |i: usize| {
            parts
                .get(i)
                .map(|icon| format!("{icon} "))
                .unwrap_or_default()
        };
        Labels {
            time: label(0),
            cost: label(1),
            total: label(2),
            input: label(3),
            output: label(4),
            cached: label(5),
            reasoning: label(6),
            icons: true,
        }
    }
}

/// Dollars with at most 6 decimals and no trailing zeros; `None` when nothing shows (zero,
/// negative, not a number, or below half a millionth).
fn format_cost(cost: f64) -> Option<String> {
    if !cost.is_finite() || cost <= 0.0 {
        return None;
    }
    let fixed = format!("{cost:.6}");
    let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
    (trimmed != "0").then(|| trimmed.to_string())
}

/// Seconds with one decimal, `.0` dropped: `3`, `3.5`.
fn format_seconds_short(ms: u64) -> String {
    let fixed = format!("{:.1}", ms as f64 / 1000.0);
    fixed
        .strip_suffix(".0")
        .map(str::to_string)
        .unwrap_or(fixed)
}

/// The status line for a finished answer, or `None` when the valve is off or nothing was
/// measured (no usage and no elapsed time).
///
/// `elapsed_ms` is the whole request; `streaming_ms` is the time spent receiving output, used for
/// tokens per second (the rate is left out when it is 0 or no output tokens were counted).
pub fn final_status_line(
    settings: &UsageStatusSettings,
    usage: Option<&Usage>,
    elapsed_ms: u64,
    streaming_ms: u64,
) -> Option<String> {
    if !settings.show_final_usage_status {
        return None;
    }
    let labels = if settings
        .final_usage_status_style
        .trim()
        .eq_ignore_ascii_case("icons")
    {
        Labels::icons(&settings.usage_status_icon_set)
    } else {
        Labels::text()
    };
    let Some(usage) = usage else {
        if elapsed_ms == 0 {
            return None;
        }
        let secs = format_seconds_short(elapsed_ms);
        return Some(if labels.icons {
            format!("{}{secs}s", labels.time)
        } else if secs == "1" {
            "Thought for 1 second".to_string()
        } else {
            format!("Thought for {secs} seconds")
        });
    };

    let mut time = format!("{}{:.2}s", labels.time, elapsed_ms as f64 / 1000.0);
    if streaming_ms > 0 && usage.completion_tokens > 0 {
        let tps = usage.completion_tokens as f64 / (streaming_ms as f64 / 1000.0);
        time.push_str(&format!("  {tps:.1} tps"));
    }
    let mut sections = vec![time];
    if let Some(cost) = usage.cost_usd.and_then(format_cost) {
        sections.push(format!("{}{cost}", labels.cost));
    }
    // Some providers leave `total_tokens` out; the sum is what it would have said.
    let total = if usage.total_tokens > 0 {
        usage.total_tokens
    } else {
        usage.prompt_tokens.saturating_add(usage.completion_tokens)
    };
    let mut parts = vec![
        format!("{}{}", labels.input, usage.prompt_tokens),
        format!("{}{}", labels.output, usage.completion_tokens),
    ];
    if usage.cached_tokens > 0 {
        parts.push(format!("{}{}", labels.cached, usage.cached_tokens));
    }
    if usage.reasoning_tokens > 0 {
        parts.push(format!("{}{}", labels.reasoning, usage.reasoning_tokens));
    }
    sections.push(format!("{}{total} ({})", labels.total, parts.join(", ")));
    Some(sections.join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage() -> Usage {
        Usage {
            prompt_tokens: 1000,
            completion_tokens: 567,
            total_tokens: 1567,
            cached_tokens: 200,
            reasoning_tokens: 120,
            cost_usd: Some(0.00123),
        }
    }

    fn icons() -> UsageStatusSettings {
        UsageStatusSettings {
            final_usage_status_style: "icons".to_string(),
            ..UsageStatusSettings::default()
        }
    }

    #[test]
    fn the_text_line_has_time_speed_cost_and_every_token_count() {
        let line = final_status_line(
            &UsageStatusSettings::default(),
            Some(&usage()),
            12_340,
            10_000,
        );
        assert_eq!(
            line.as_deref(),
            Some(
                "Time: 12.34s  56.7 tps | Cost $0.00123 | Total tokens: 1567 \
                 (Input: 1000, Output: 567, Cached: 200, Reasoning: 120)"
            )
        );
    }

    #[test]
    fn zero_cached_and_reasoning_counts_and_zero_cost_are_left_out() {
        let u = Usage {
            cached_tokens: 0,
            reasoning_tokens: 0,
            cost_usd: Some(0.0),
            ..usage()
        };
        let line = final_status_line(&UsageStatusSettings::default(), Some(&u), 2_000, 1_000);
        assert_eq!(
            line.as_deref(),
            Some("Time: 2.00s  567.0 tps | Total tokens: 1567 (Input: 1000, Output: 567)")
        );
        let no_cost = Usage {
            cost_usd: None,
            ..u
        };
        let line = final_status_line(
            &UsageStatusSettings::default(),
            Some(&no_cost),
            2_000,
            1_000,
        );
        assert!(!line.unwrap().contains("Cost"));
    }

    #[test]
    fn cost_has_at_most_six_decimals_without_trailing_zeros() {
        assert_eq!(format_cost(0.00123).as_deref(), Some("0.00123"));
        assert_eq!(format_cost(1.5).as_deref(), Some("1.5"));
        assert_eq!(format_cost(2.0).as_deref(), Some("2"));
        assert_eq!(format_cost(0.123_456_789).as_deref(), Some("0.123457"));
        assert_eq!(format_cost(0.000_000_1), None);
        assert_eq!(format_cost(-1.0), None);
        assert_eq!(format_cost(f64::NAN), None);
    }

    #[test]
    fn tokens_per_second_is_omitted_without_streaming_time() {
        let line = final_status_line(&UsageStatusSettings::default(), Some(&usage()), 5_000, 0);
        let line = line.unwrap();
        assert!(line.starts_with("Time: 5.00s | Cost"), "{line}");
        assert!(!line.contains("tps"));
    }

    #[test]
    fn a_missing_total_is_the_sum_of_input_and_output() {
        let u = Usage {
            total_tokens: 0,
            ..usage()
        };
        let line = final_status_line(&UsageStatusSettings::default(), Some(&u), 1_000, 0);
        assert!(line.unwrap().contains("Total tokens: 1567 "));
    }

    #[test]
    fn the_icon_style_swaps_labels_for_the_default_icons() {
        let line = final_status_line(&icons(), Some(&usage()), 12_340, 10_000);
        assert_eq!(
            line.as_deref(),
            Some("⧗ 12.34s  56.7 tps | $ 0.00123 | ⇅ 1567 (▲ 1000, ▼ 567, ↺ 200, ▽ 120)")
        );
    }

    #[test]
    fn any_seven_words_work_as_an_icon_set() {
        let settings = UsageStatusSettings {
            usage_status_icon_set: "time, usd, all, in, out, cache, think".to_string(),
            ..icons()
        };
        let line = final_status_line(&settings, Some(&usage()), 1_000, 0);
        assert_eq!(
            line.as_deref(),
            Some("time 1.00s | usd 0.00123 | all 1567 (in 1000, out 567, cache 200, think 120)")
        );
    }

    #[test]
    fn a_malformed_icon_set_falls_back_to_the_default_icons() {
        for bad in ["a,b,c", "a,b,c,d,e,f,g,h", "a,,c,d,e,f,g", ""] {
            let settings = UsageStatusSettings {
                usage_status_icon_set: bad.to_string(),
                ..icons()
            };
            let line = final_status_line(&settings, Some(&usage()), 1_000, 0).unwrap();
            assert!(
                line.starts_with("⧗ 1.00s | $ 0.00123 | ⇅ 1567"),
                "{bad:?}: {line}"
            );
        }
    }

    #[test]
    fn without_usage_the_line_says_how_long_the_model_thought() {
        let s = UsageStatusSettings::default();
        assert_eq!(
            final_status_line(&s, None, 12_340, 0).as_deref(),
            Some("Thought for 12.3 seconds")
        );
        assert_eq!(
            final_status_line(&s, None, 3_000, 0).as_deref(),
            Some("Thought for 3 seconds")
        );
        assert_eq!(
            final_status_line(&s, None, 1_000, 0).as_deref(),
            Some("Thought for 1 second")
        );
        assert_eq!(
            final_status_line(&icons(), None, 3_500, 0).as_deref(),
            Some("⧗ 3.5s")
        );
        assert_eq!(final_status_line(&s, None, 0, 0), None);
    }

    #[test]
    fn nothing_is_shown_when_the_valve_is_off() {
        let s = UsageStatusSettings {
            show_final_usage_status: false,
            ..UsageStatusSettings::default()
        };
        assert_eq!(final_status_line(&s, Some(&usage()), 1_000, 1_000), None);
        assert_eq!(final_status_line(&s, None, 1_000, 0), None);
    }

    #[test]
    fn settings_parse_from_valve_names_with_reference_defaults() {
        let s: UsageStatusSettings = crate::settings_document::from_document("{}").unwrap();
        assert_eq!(s, UsageStatusSettings::default());
        assert!(s.show_final_usage_status);
        let s: UsageStatusSettings = crate::settings_document::from_document(
            r#"{"SHOW_FINAL_USAGE_STATUS":false,"FINAL_USAGE_STATUS_STYLE":"icons","USAGE_STATUS_ICON_SET":"a,b,c,d,e,f,g"}"#,
        )
        .unwrap();
        assert!(!s.show_final_usage_status);
        assert_eq!(s.final_usage_status_style, "icons");
        assert_eq!(s.usage_status_icon_set, "a,b,c,d,e,f,g");
    }
}
