//! GPT-5.x message phases (`commentary` for an intermediate assistant message, `final_answer`
//! for the answer). OpenRouter asks clients to send each assistant message's phase back on later
//! turns. The phase of a streamed message is kept in the answer as an invisible Markdown line
//! `[P:<phase>]: #` right after that message's text; when the history
//! comes back, the text before each such line becomes an assistant message with that phase, and
//! the lines never go upstream.

/// The phases OpenRouter accepts.
const PHASES: [&str; 2] = ["commentary", "final_answer"];

/// The text appended after a message whose phase is `phase` (nothing for unknown phases).
pub fn marker(phase: &str) -> Option<String> {
    PHASES
        .contains(&phase)
        .then(|| format!("\n\n[P:{phase}]: #\n\n"))
}

/// The phase a line names, if the line is exactly a phase marker.
fn parse_line(line: &str) -> Option<&'static str> {
    let inner = line
        .trim_end_matches(['\r', ' ', '\t'])
        .strip_prefix("[P:")?
        .strip_suffix("]: #")?;
    PHASES.iter().copied().find(|p| *p == inner)
}

/// Whether a text holds any phase marker line.
pub fn has_markers(text: &str) -> bool {
    text.split('\n').any(|l| parse_line(l).is_some())
}

/// The text's segments in order, each with the phase of the marker that closes it (`None` for
/// trailing text no marker closes). Marker lines are removed; empty segments are dropped.
pub fn split(text: &str) -> Vec<(String, Option<&'static str>)> {
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.split('\n') {
        if let Some(phase) = parse_line(line) {
            let segment = current.join("\n").trim().to_string();
            current.clear();
            if !segment.is_empty() {
                out.push((segment, Some(phase)));
            }
        } else {
            current.push(line);
        }
    }
    let rest = current.join("\n").trim().to_string();
    if !rest.is_empty() {
        out.push((rest, None));
    }
    out
}

/// The text without its phase marker lines.
pub fn strip(text: &str) -> String {
    if !has_markers(text) {
        return text.to_string();
    }
    split(text)
        .into_iter()
        .map(|(segment, _)| segment)
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_into_phased_segments() {
        let text = format!(
            "Let me check.{}The answer is 4.{}",
            marker("commentary").unwrap(),
            marker("final_answer").unwrap()
        );
        assert_eq!(
            split(&text),
            vec![
                ("Let me check.".to_string(), Some("commentary")),
                ("The answer is 4.".to_string(), Some("final_answer"))
            ]
        );
        assert_eq!(strip(&text), "Let me check.\n\nThe answer is 4.");
    }

    #[test]
    fn unknown_phases_and_look_alikes_are_left_alone() {
        assert_eq!(marker("draft"), None);
        let text = "[P:draft]: #\nsee [P:final_answer]: # inline";
        assert!(!has_markers(text));
        assert_eq!(strip(text), text);
        assert_eq!(split("no markers"), vec![("no markers".to_string(), None)]);
    }
}
