//! Comma-separated model-id globs (`FORCE_CHAT_COMPLETIONS_MODELS`, `FORCE_RESPONSES_MODELS`),
//! compiled once when the settings are read and matched against a model id in its slash form
//! (`a/b`) or its dotted form (`a.b`, how Open WebUI spells pipe model ids), so operators can
//! paste either.
//!
//! Each glob follows Python `fnmatch.fnmatchcase`, as in the Python pipe: `*` any run (slashes
//! included), `?` one character, `[...]`/`[!...]` sets with ranges (a `]` right after the opening
//! `[` or `[!` is literal, a `-` at either end is literal), case-sensitive. The `glob` crate's
//! `Pattern` does the matching; two fnmatch rules it spells differently are handled while
//! compiling: a run of stars means the same as one (`glob` reserves `**` for directories), and a
//! `[` without a closing `]` is an ordinary character (`glob` refuses it).
//!
//! The globs come from the operator; the model id comes from the request. Matching is polynomial
//! in both (no exponential backtracking on `*a*a*a…`).

use glob::{MatchOptions, Pattern};
use serde::Deserialize;

/// How `fnmatch.fnmatchcase` matches: case-sensitive, `/` and leading dots are ordinary characters.
const FNMATCH: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

/// A parsed comma-separated glob list; blank entries are skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub struct ModelGlobs {
    /// The setting as written.
    text: String,
    patterns: Vec<Pattern>,
}

impl From<String> for ModelGlobs {
    fn from(text: String) -> Self {
        let patterns = text
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .filter_map(compile)
            .collect();
        ModelGlobs { text, patterns }
    }
}

impl From<&str> for ModelGlobs {
    fn from(text: &str) -> Self {
        ModelGlobs::from(text.to_string())
    }
}

impl PartialEq<&str> for ModelGlobs {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl ModelGlobs {
    /// Whether any glob matches the model id in its slash or its dotted form.
    pub fn matches(&self, model_id: &str) -> bool {
        let model_id = model_id.trim();
        if model_id.is_empty() || self.patterns.is_empty() {
            return false;
        }
        let (slash, dotted) = if model_id.contains('/') {
            (model_id.to_string(), model_id.replace('/', "."))
        } else {
            // Only the first dot separates the author; later dots belong to the slug (`gpt-4.1`).
            (model_id.replacen('.', "/", 1), model_id.to_string())
        };
        self.patterns
            .iter()
            .any(|p| p.matches_with(&slash, FNMATCH) || p.matches_with(&dotted, FNMATCH))
    }
}

/// Compile one glob with fnmatch's rules (see the module header); `None` only if `glob`
/// refused something other than an unclosed set, which collapsed stars rule out.
fn compile(glob: &str) -> Option<Pattern> {
    let mut source = collapse_stars(glob);
    // Each round turns the first unclosed `[` into the set `[[]`; a later `[` cannot close
    // with fewer characters after it, so this ends after at most one round per `[`.
    loop {
        match Pattern::new(&source) {
            Ok(pattern) => return Some(pattern),
            Err(e) => {
                let mut chars: Vec<char> = source.chars().collect();
                if chars.get(e.pos) != Some(&'[') {
                    return None;
                }
                chars.splice(e.pos..=e.pos, ['[', '[', ']']);
                source = chars.into_iter().collect();
            }
        }
    }
}

/// The glob with every run of `*` shortened to one.
fn collapse_stars(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len());
    for c in glob.chars() {
        if !(c == '*' && out.ends_with('*')) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob_match(pattern: &str, text: &str) -> bool {
        compile(pattern).is_some_and(|p| p.matches_with(text, FNMATCH))
    }

    #[test]
    fn globs_follow_fnmatch_rules() {
        let table: &[(&str, &str, bool)] = &[
            ("openai/*", "openai/gpt-4o", true),
            ("openai/*", "anthropic/claude", false),
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("*gpt*", "openai/gpt-4o-mini", true),
            ("gpt-?o", "gpt-4o", true),
            ("gpt-?o", "gpt-4", false),
            ("gpt-[45]o", "gpt-4o", true),
            ("gpt-[45]o", "gpt-3o", false),
            ("gpt-[!45]o", "gpt-3o", true),
            ("gpt-[!45]o", "gpt-4o", false),
            ("v[0-9]", "v7", true),
            ("v[0-9]", "vx", false),
            ("[]]x", "]x", true),
            ("[a-]", "-", true),
            ("a[b", "a[b", true),
            ("a[b", "ab", false),
            ("OpenAI/*", "openai/gpt-4o", false),
            ("*.gpt-4.1", "openai.gpt-4.1", true),
            ("a**b", "ab", true),
            ("*a", "bbbbbbbbbbbbbbbbbbbba", true),
            ("*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
        ];
        for (pattern, text, want) in table {
            assert_eq!(glob_match(pattern, text), *want, "{pattern:?} vs {text:?}");
        }
    }

    #[test]
    fn fnmatch_corner_cases_survive_the_translation() {
        let table: &[(&str, &str, bool)] = &[
            // Runs of stars, also around slashes (never `glob`'s directory wildcard).
            ("a/**/b", "a/x/y/b", true),
            ("a/**/b", "a/b", false),
            ("***", "x/y", true),
            ("**/x", "x", false),
            // Unclosed sets are literal, also after a closed one and with `!` or `]` inside.
            ("[!]", "[!]", true),
            ("[]", "[]", true),
            ("[a]x[b", "ax[b", true),
            ("a[[b", "a[[b", true),
            ("[!]]x", "ax", true),
            ("[!]]x", "]x", false),
            // `^` does not negate, braces and backslashes are ordinary characters.
            ("[^a]", "^", true),
            ("[^a]", "b", false),
            ("{a,b}", "{a,b}", true),
            ("{a,b}", "a", false),
            ("a\\*", "a\\bc", true),
            // A reversed range matches nothing.
            ("[z-a]", "m", false),
        ];
        for (pattern, text, want) in table {
            assert_eq!(glob_match(pattern, text), *want, "{pattern:?} vs {text:?}");
        }
    }

    #[test]
    fn a_list_matches_slash_and_dotted_forms_and_skips_blank_entries() {
        let globs = ModelGlobs::from(" , x/y, openai/gpt-4* ,");
        assert!(globs.matches("openai/gpt-4o"));
        assert!(globs.matches("openai.gpt-4.1"));
        assert!(globs.matches(" x.y "));
        assert!(!globs.matches("openai/o3"));
        assert!(!globs.matches(""));
        assert!(!ModelGlobs::from(" , ,").matches("a/b"));
        assert!(ModelGlobs::from("*").matches("a"));
        assert_eq!(globs, " , x/y, openai/gpt-4* ,");
    }
}
