//! Invisible marker lines that tie an assistant message to its stored artifacts:
//! one Markdown reference definition `[<ULID>]: #` per stored row, appended to the answer. Markdown
//! renders them as nothing; Open WebUI keeps them in the message text and sends them back in later
//! turns. Parsing is line-based and strict (exact length and alphabet), so ordinary text that
//! happens to look similar is left alone.

use super::ulid;

/// The marker line for one row id.
pub fn line(id: &str) -> String {
    format!("[{id}]: #")
}

/// The text to append to an answer for these ids: a blank line, then one marker per line.
pub fn block(ids: &[String]) -> String {
    if ids.is_empty() {
        return String::new();
    }
    let lines: Vec<String> = ids.iter().map(|id| line(id)).collect();
    format!("\n\n{}", lines.join("\n"))
}

/// The id of a marker line, if the line is exactly one (trailing whitespace of any kind
/// allowed: `split` trims it from the end of prose, so a line that is a marker once trimmed
/// must be one here too, or stripping would leave a marker behind).
pub fn parse_line(line: &str) -> Option<&str> {
    let inner = line.trim_end().strip_prefix('[')?.strip_suffix("]: #")?;
    ulid::is_valid(inner).then_some(inner)
}

/// One piece of an assistant text in order: prose, or a run of consecutive marker ids.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Markers(Vec<String>),
}

/// Split a text into prose and marker runs, in order. Marker lines are removed from the prose;
/// blank lines between markers do not break a run.
pub fn split(text: &str) -> Vec<Piece> {
    let mut pieces: Vec<Piece> = Vec::new();
    let mut prose: Vec<&str> = Vec::new();
    for l in text.split('\n') {
        if let Some(id) = parse_line(l) {
            let chunk = prose.join("\n");
            prose.clear();
            if !chunk.trim().is_empty() {
                let chunk = if pieces.is_empty() {
                    chunk.trim_end()
                } else {
                    without_leading_blank_lines(chunk.trim_end())
                };
                pieces.push(Piece::Text(chunk.to_string()));
            }
            match pieces.last_mut() {
                Some(Piece::Markers(ids)) => ids.push(id.to_string()),
                _ => pieces.push(Piece::Markers(vec![id.to_string()])),
            }
        } else {
            prose.push(l);
        }
    }
    let chunk = prose.join("\n");
    if !chunk.trim().is_empty() {
        let chunk = if pieces.is_empty() {
            chunk
        } else {
            without_leading_blank_lines(&chunk).to_string()
        };
        pieces.push(Piece::Text(chunk));
    }
    pieces
}

/// Prose after a marker run starts at its first non-blank line. Whole lines are dropped, never
/// part of one: trimming a leading `\r` off a line could turn it into a marker.
fn without_leading_blank_lines(chunk: &str) -> &str {
    let mut rest = chunk;
    while let Some((line, after)) = rest.split_once('\n') {
        if !line.trim().is_empty() {
            break;
        }
        rest = after;
    }
    rest
}

/// Every marker id in a text, in order.
pub fn ids(text: &str) -> Vec<String> {
    text.split('\n')
        .filter_map(parse_line)
        .map(str::to_string)
        .collect()
}

/// The text with every marker line removed.
pub fn strip(text: &str) -> String {
    split(text)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Text(t) => Some(t),
            Piece::Markers(_) => None,
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "01ARZ3NDEKTSV4RRFFQ6";
    const B: &str = "01ARZ3NDEKTSV4RRFFQ7";

    #[test]
    fn a_block_round_trips_through_split() {
        let text = format!("The answer.{}", block(&[A.into(), B.into()]));
        assert_eq!(text, format!("The answer.\n\n[{A}]: #\n[{B}]: #"));
        assert_eq!(
            split(&text),
            vec![
                Piece::Text("The answer.".into()),
                Piece::Markers(vec![A.into(), B.into()])
            ]
        );
        assert_eq!(ids(&text), vec![A.to_string(), B.to_string()]);
        assert_eq!(strip(&text), "The answer.");
    }

    #[test]
    fn interleaved_runs_keep_their_order() {
        let text = format!("first\n[{A}]: #\r\n\nsecond\n\n[{B}]: #\nthird");
        assert_eq!(
            split(&text),
            vec![
                Piece::Text("first".into()),
                Piece::Markers(vec![A.into()]),
                Piece::Text("second".into()),
                Piece::Markers(vec![B.into()]),
                Piece::Text("third".into()),
            ]
        );
    }

    #[test]
    fn trailing_whitespace_of_any_kind_does_not_hide_a_marker_from_strip() {
        // Found by the `markers` fuzz target: a form feed after a marker made it prose, then
        // trimming the prose turned it back into a marker in the stripped text.
        let text = format!("[{A}]: #\u{c}\n\n\u{c} \n[{B}]: #\u{2003}");
        assert_eq!(ids(&text), vec![A.to_string(), B.to_string()]);
        assert_eq!(strip(&text), "");
        assert!(ids(&strip(&format!("keep\n[{A}]: #\u{c}\n\nmore"))).is_empty());
    }

    #[test]
    fn prose_starting_with_a_carriage_return_after_a_marker_stays_prose() {
        // Found by the `markers` fuzz target: `\r[<id>]: #` is prose, but trimming the `\r` at
        // the start of the prose after a marker made it a marker in the stripped text.
        let text = format!("[{A}]: #\n\r[{B}]: #\nend");
        assert_eq!(ids(&text), vec![A.to_string()]);
        assert!(ids(&strip(&text)).is_empty(), "{:?}", strip(&text));
        let between = format!("[{A}]: #\n\r[{B}]: #\nmid\n[{A}]: #");
        assert!(ids(&strip(&between)).is_empty(), "{:?}", strip(&between));
        assert_eq!(strip(&format!("[{A}]: #\n\r\n  \n\nnext")), "next");
    }

    #[test]
    fn look_alikes_are_not_markers() {
        for l in [
            format!(" [{A}]: #"),
            format!("[{A}]: # x"),
            format!("[{A}]:#"),
            "[01arz3ndektsv4rrffq6]: #".to_string(),
            "[01ARZ3NDEKTSV4RRFFQ]: #".to_string(),
            "[P:final_answer]: #".to_string(),
            format!("see [{A}]: #"),
        ] {
            assert_eq!(parse_line(&l), None, "{l}");
        }
        assert_eq!(split("plain"), vec![Piece::Text("plain".into())]);
        assert!(split("").is_empty());
    }
}
