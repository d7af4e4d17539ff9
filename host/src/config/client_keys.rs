//! The front door's client keys: `PIPE_API_KEYS` (plain API clients) and `OPENWEBUI_API_KEYS`
//! (keys given only to Open WebUI instances, which may assert who the user is). Both are secrets
//! and hold comma-separated entries, each either `name=key` or a bare key; a bare key is named by
//! its 1-based position among the list's entries (`key-N`, `openwebui-N`). A name is the caller's
//! identity in logs, breakers and stored data, so names are short, plain and unique across both
//! lists, and a key may not be in both lists (it would be unclear which powers it has).
//!
//! A bare key that itself contains `=` is read as `name=key`; give such a key a name.
//!
//! Errors name the list and the entry's position (and its name when the name is valid), never
//! the key.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// Longest key name.
pub const MAX_NAME_CHARS: usize = 32;

/// Which list a key came from, and so what it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `PIPE_API_KEYS`: a plain API client; Open WebUI identity headers from it are ignored.
    Api,
    /// `OPENWEBUI_API_KEYS`: an Open WebUI instance; it may assert the user, chat and task.
    OpenWebUi,
}

impl KeyKind {
    /// The setting that lists keys of this kind.
    pub fn setting(self) -> &'static str {
        match self {
            Self::Api => "PIPE_API_KEYS",
            Self::OpenWebUi => "OPENWEBUI_API_KEYS",
        }
    }

    /// The name prefix of a bare key (`key-N`, `openwebui-N`).
    fn bare_prefix(self) -> &'static str {
        match self {
            Self::Api => "key",
            Self::OpenWebUi => "openwebui",
        }
    }
}

/// One configured client key.
pub struct ClientKey {
    /// Its name: the caller's identity wherever the host or the component records one.
    pub name: String,
    pub kind: KeyKind,
    pub key: SecretString,
}

impl fmt::Debug for ClientKey {
    /// The name and kind; never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Where an entry sits: its list and 1-based position, and its name once it has a valid one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRef {
    pub kind: KeyKind,
    pub position: usize,
    pub name: Option<String>,
}

impl fmt::Display for EntryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} entry {}", self.kind.setting(), self.position)?;
        if let Some(name) = &self.name {
            write!(f, " (`{name}`)")?;
        }
        Ok(())
    }
}

/// Why the client keys could not be used. Names entries, never keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientKeyProblem {
    #[error(
        "{0}: the name before `=` must be 1 to {MAX_NAME_CHARS} characters of letters, digits, `_`, `.` and `-`"
    )]
    BadName(EntryRef),
    #[error("{0}: there is no key after `=`")]
    EmptyKey(EntryRef),
    #[error("{entry}: the name is also used by {other} (names must be unique across both lists)")]
    DuplicateName { entry: EntryRef, other: EntryRef },
    #[error(
        "{entry}: the same key is also listed as {other}; a key is either a plain API key or an Open WebUI key, once"
    )]
    DuplicateKey { entry: EntryRef, other: EntryRef },
}

impl ClientKeyProblem {
    /// The setting the offending entry belongs to.
    pub fn setting(&self) -> &'static str {
        match self {
            Self::BadName(e) | Self::EmptyKey(e) => e.kind.setting(),
            Self::DuplicateName { entry, .. } | Self::DuplicateKey { entry, .. } => {
                entry.kind.setting()
            }
        }
    }
}

/// Whether `name` is a valid key name.
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Split both lists into named keys, checking names and duplicates. Every problem is reported.
pub fn parse(
    api: Option<&SecretString>,
    openwebui: Option<&SecretString>,
) -> Result<Vec<ClientKey>, Vec<ClientKeyProblem>> {
    let mut keys: Vec<(ClientKey, usize)> = Vec::new();
    let mut problems = Vec::new();
    for (kind, joined) in [(KeyKind::Api, api), (KeyKind::OpenWebUi, openwebui)] {
        let Some(joined) = joined else { continue };
        let entries = joined
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty());
        for (index, entry) in entries.enumerate() {
            let position = index + 1;
            let at = |name: Option<&str>| EntryRef {
                kind,
                position,
                name: name.map(str::to_owned),
            };
            let (name, key) = match entry.split_once('=') {
                Some((name, key)) => {
                    let (name, key) = (name.trim(), key.trim());
                    if !valid_name(name) {
                        problems.push(ClientKeyProblem::BadName(at(None)));
                        continue;
                    }
                    if key.is_empty() {
                        problems.push(ClientKeyProblem::EmptyKey(at(Some(name))));
                        continue;
                    }
                    (name.to_owned(), key)
                }
                None => (format!("{}-{position}", kind.bare_prefix()), entry),
            };
            let entry_ref = at(Some(&name));
            let seen = |(k, p): &(ClientKey, usize)| EntryRef {
                kind: k.kind,
                position: *p,
                name: Some(k.name.clone()),
            };
            if let Some(other) = keys.iter().find(|(k, _)| k.name == name) {
                problems.push(ClientKeyProblem::DuplicateName {
                    entry: entry_ref.clone(),
                    other: seen(other),
                });
            }
            if let Some(other) = keys.iter().find(|(k, _)| k.key.expose_secret() == key) {
                problems.push(ClientKeyProblem::DuplicateKey {
                    entry: entry_ref,
                    other: seen(other),
                });
            }
            keys.push((
                ClientKey {
                    name,
                    kind,
                    key: SecretString::from(key.to_owned()),
                },
                position,
            ));
        }
    }
    if problems.is_empty() {
        Ok(keys.into_iter().map(|(k, _)| k).collect())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    fn names(keys: &[ClientKey]) -> Vec<(&str, KeyKind, &str)> {
        keys.iter()
            .map(|k| (k.name.as_str(), k.kind, k.key.expose_secret()))
            .collect()
    }

    #[test]
    fn bare_keys_are_named_by_position_and_named_entries_keep_their_name() {
        let keys = parse(
            Some(&secret(" k-one , ,alice = k-two ,k-three,")),
            Some(&secret("owui-a,prod.owui_1=k-four")),
        )
        .unwrap();
        assert_eq!(
            names(&keys),
            [
                ("key-1", KeyKind::Api, "k-one"),
                ("alice", KeyKind::Api, "k-two"),
                ("key-3", KeyKind::Api, "k-three"),
                ("openwebui-1", KeyKind::OpenWebUi, "owui-a"),
                ("prod.owui_1", KeyKind::OpenWebUi, "k-four"),
            ]
        );
        assert!(parse(None, None).unwrap().is_empty());
        // Only the first `=` splits: the key may contain more.
        let keys = parse(Some(&secret("b64=abc==")), None).unwrap();
        assert_eq!(names(&keys), [("b64", KeyKind::Api, "abc==")]);
    }

    #[test]
    fn names_are_short_plain_and_checked() {
        assert!(valid_name("a"));
        assert!(valid_name("Team-A_1.prod"));
        assert!(valid_name(&"x".repeat(32)));
        assert!(!valid_name(&"x".repeat(33)));
        assert!(!valid_name(""));
        assert!(!valid_name("has space"));
        assert!(!valid_name("ünicode"));
        assert!(!valid_name("a:b"));
        let problems = parse(Some(&secret("ok=k1,bad name=k2,=k3,empty=")), None).unwrap_err();
        assert_eq!(
            problems,
            [
                ClientKeyProblem::BadName(EntryRef {
                    kind: KeyKind::Api,
                    position: 2,
                    name: None
                }),
                ClientKeyProblem::BadName(EntryRef {
                    kind: KeyKind::Api,
                    position: 3,
                    name: None
                }),
                ClientKeyProblem::EmptyKey(EntryRef {
                    kind: KeyKind::Api,
                    position: 4,
                    name: Some("empty".into())
                }),
            ]
        );
    }

    #[test]
    fn a_key_in_both_lists_or_a_name_used_twice_is_refused_without_showing_the_key() {
        let problems = parse(
            Some(&secret("alice=shared-secret-1,bob=k2")),
            Some(&secret("owui=shared-secret-1,bob=k3")),
        )
        .unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        let texts: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            texts[0].starts_with("OPENWEBUI_API_KEYS entry 1 (`owui`): the same key is also listed as PIPE_API_KEYS entry 1 (`alice`)"),
            "{texts:?}"
        );
        assert!(
            texts[1].starts_with("OPENWEBUI_API_KEYS entry 2 (`bob`): the name is also used by PIPE_API_KEYS entry 2 (`bob`)"),
            "{texts:?}"
        );
        assert_eq!(problems[0].setting(), "OPENWEBUI_API_KEYS");
        for t in &texts {
            assert!(!t.contains("shared-secret-1"), "{t}");
        }
        // A bare key in both lists, and an explicit name that collides with a position name.
        let problems = parse(
            Some(&secret("dup-xyz,key-1=other")),
            Some(&secret("dup-xyz")),
        )
        .unwrap_err();
        let texts: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(texts[0].contains("PIPE_API_KEYS entry 2 (`key-1`): the name is also used by PIPE_API_KEYS entry 1 (`key-1`)"), "{texts:?}");
        assert!(texts[1].contains("OPENWEBUI_API_KEYS entry 1 (`openwebui-1`): the same key is also listed as PIPE_API_KEYS entry 1 (`key-1`)"), "{texts:?}");
        assert!(texts.iter().all(|t| !t.contains("dup-xyz")), "{texts:?}");
    }

    #[test]
    fn debug_shows_names_not_keys() {
        let keys = parse(Some(&secret("alice=very-secret")), None).unwrap();
        let debug = format!("{keys:?}");
        assert!(debug.contains("alice"), "{debug}");
        assert!(!debug.contains("very-secret"), "{debug}");
    }
}
