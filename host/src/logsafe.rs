//! Request-controlled text made safe to put in a log line: truncated to a bounded number of
//! characters and escaped, so a caller cannot forge log lines or fill the log.
//!
//! Threat handled: a model id, a chat or message id, a header value, a tool name or an upstream
//! error detail that carries a newline (and a fake `level=ERROR …` line after it), a carriage
//! return, ANSI escape sequences or other control characters, or quotes that would close the
//! field early in a `key="value"` reader. Everything except printable characters is written as
//! a Rust-style escape (`\n`, `\u{1b}`), a backslash as `\\` and a double quote as `\"`. Not
//! handled: what the text says (it is still the caller's text) and secrets, which must never be
//! passed here in the first place.

use std::fmt;

/// The most characters of one request-controlled value kept in a log line by default.
pub const MAX_CHARS: usize = 200;

/// Display wrapper: `%Escaped(value)` in a tracing field writes the escaped, truncated value.
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a> {
    text: &'a str,
    max_chars: usize,
}

/// Wrap `text` for a log line, keeping at most [`MAX_CHARS`] characters.
pub fn escaped(text: &str) -> Escaped<'_> {
    Escaped {
        text,
        max_chars: MAX_CHARS,
    }
}

/// Wrap `text` for a log line, keeping at most `max_chars` characters.
pub fn escaped_to(text: &str, max_chars: usize) -> Escaped<'_> {
    Escaped { text, max_chars }
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.text.chars();
        for c in chars.by_ref().take(self.max_chars) {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                c if c.is_control() || is_invisible(c) => write!(f, "{}", c.escape_default())?,
                c => fmt::Write::write_char(f, c)?,
            }
        }
        if chars.next().is_some() {
            f.write_str("…")?;
        }
        Ok(())
    }
}

/// Characters that are not control characters but move or hide text: line and paragraph
/// separators, bidirectional overrides and isolates, zero-width characters.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{2028}'
            | '\u{2029}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
    )
}

/// The escaped, truncated text as a `String`.
pub fn clean(text: &str) -> String {
    escaped(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_quotes_and_control_characters_are_escaped() {
        let cases = [
            ("gpt-4o", "gpt-4o"),
            (
                "x\n2026-01-01T00:00:00Z ERROR forged",
                "x\\n2026-01-01T00:00:00Z ERROR forged",
            ),
            ("a\r\nb", "a\\r\\nb"),
            ("say \"hi\"", "say \\\"hi\\\""),
            ("back\\slash", "back\\\\slash"),
            ("\u{1b}[31mred", "\\u{1b}[31mred"),
            ("tab\there", "tab\\there"),
            ("nul\0", "nul\\u{0}"),
            ("line\u{2028}sep", "line\\u{2028}sep"),
            ("rtl\u{202e}gnp.exe", "rtl\\u{202e}gnp.exe"),
            ("café ü 日本", "café ü 日本"),
        ];
        for (raw, want) in cases {
            assert_eq!(clean(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn long_values_are_cut_to_the_limit() {
        let long = "a".repeat(MAX_CHARS * 3);
        let out = clean(&long);
        assert_eq!(out.chars().count(), MAX_CHARS + 1);
        assert!(out.ends_with('…'));
        assert_eq!(escaped_to("abcdef", 3).to_string(), "abc…");
        assert_eq!(escaped_to("abc", 3).to_string(), "abc");
    }

    #[test]
    fn no_output_ever_holds_a_line_break() {
        let every: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let out = escaped_to(&every, usize::MAX).to_string();
        assert!(!out.contains(['\n', '\r', '\u{2028}', '\u{2029}', '\u{85}']));
    }
}
