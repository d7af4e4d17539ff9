//! The one declaration of every setting Responses Pipe accepts: the valves of the Python pipe it
//! replaces (same names, defaults and ranges, so an operator can carry settings over) and the
//! host's own settings. Each row says how a value is spelled and checked, what it defaults to,
//! which extra environment names feed it, whether it is a secret, which side reads it (the host,
//! the component or both), whether the feature behind it is built, and what it does.
//!
//! Everything else derives from this table: the host's parser and its start-up report, the
//! settings document the host hands to the component, the component's own defaults, and
//! `docs/configuration.md` (`responses-pipe config-doc`). Pure data plus the small types that
//! describe it; no I/O, so the host and the wasm component can both depend on it.

mod valves;

use std::fmt;

pub use valves::{DEFAULT_ICON_SET, VALVES};

/// How the values of one setting are spelled and checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValveKind {
    /// `true`/`false`; strings `1/0`, `true/false`, `yes/no`, `on/off` (any case).
    Bool,
    /// A whole number in `min..=max`.
    Int { min: i64, max: i64 },
    /// A finite number in `min..=max`.
    Float { min: f64, max: f64 },
    /// Like `Int`, but `null` (the strings `null`/`none`, or an empty TOML string) is allowed.
    OptInt { min: i64, max: i64 },
    /// Like `Float`, but `null` is allowed.
    OptFloat { min: f64, max: f64 },
    /// Free text, passed on exactly as given.
    Str,
    /// One of a fixed set of spellings, matched case-insensitively and stored in the canonical
    /// spelling. `synonyms` maps extra accepted spellings onto a canonical one.
    Enum {
        values: &'static [&'static str],
        synonyms: &'static [(&'static str, &'static str)],
    },
    /// A comma-separated list kept as the string given (the config file may also use an array
    /// of strings, which is joined with commas).
    Csv,
    /// An absolute `http://` or `https://` URL without credentials; `allow_empty` lets the empty
    /// string mean "not set".
    Url { allow_empty: bool },
    /// A secret: environment only, held by the host as a secret string, never logged, never sent
    /// to the component.
    Secret,
}

/// Where a setting's name comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A valve of the Python pipe, under the same name and default (unless the row records a
    /// deviation).
    Reference,
    /// A setting of this server only.
    Host,
}

/// Which side reads a setting's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The host alone; the value never reaches the component.
    Host,
    /// The component, through the settings document the host hands to every call.
    Guest,
    /// Both: the host enforces it and the component uses it too.
    Both,
    /// Neither: the feature behind it is not built here, or the setting has no meaning here.
    Neither,
}

impl Side {
    /// Whether the component reads it (and the host therefore puts it in the settings document).
    pub fn guest_reads(self) -> bool {
        matches!(self, Side::Guest | Side::Both)
    }

    /// Whether the host reads it.
    pub fn host_reads(self) -> bool {
        matches!(self, Side::Host | Side::Both)
    }
}

/// Whether what a setting controls exists in this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It acts as documented.
    Built,
    /// The feature behind it is not built yet. Any value is accepted and validated; a value other
    /// than the default logs one warning at start-up naming the setting.
    NotBuilt,
    /// The feature behind it is not built yet, and operators rely on a non-default value for
    /// safety or compliance. A value other than the default stops the start-up, naming the
    /// setting, until the feature exists.
    SafetyNotBuilt,
    /// Accepted so settings of the Python pipe carry over, but it has no meaning here (the
    /// reason says why). A value other than the default is noted once at start-up (info).
    Ignored(&'static str),
}

impl Status {
    /// Whether the setting acts.
    pub fn is_built(self) -> bool {
        matches!(self, Status::Built)
    }
}

/// A setting's default, typed so the table cannot hold a number where a flag belongs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DefaultValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Null,
    Str(&'static str),
}

impl DefaultValue {
    /// The default as it appears in the component's settings document.
    pub fn to_json(self) -> serde_json::Value {
        match self {
            Self::Bool(b) => serde_json::Value::Bool(b),
            Self::Int(i) => serde_json::Value::from(i),
            Self::Float(f) => serde_json::Number::from_f64(f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Self::Null => serde_json::Value::Null,
            Self::Str(s) => serde_json::Value::String(s.to_owned()),
        }
    }
}

impl fmt::Display for DefaultValue {
    /// The default as an operator would write it (`true`, `300`, `1.0`, `null`, or the text).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) if x.fract() == 0.0 => write!(f, "{x:.1}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Null => f.write_str("null"),
            Self::Str(s) => f.write_str(s),
        }
    }
}

/// One setting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValveSpec {
    /// Canonical name: the TOML key (case-insensitive) and the environment variable.
    pub name: &'static str,
    pub kind: ValveKind,
    pub default: DefaultValue,
    /// Further environment variables that set this value; the canonical name wins over these.
    pub env_aliases: &'static [&'static str],
    pub scope: Scope,
    pub side: Side,
    pub status: Status,
    /// What the setting does, in one or two sentences (`docs/configuration.md`).
    pub doc: &'static str,
    /// When our default differs from the Python pipe's: its default and why ours differs.
    pub deviation: Option<&'static str>,
}

impl ValveSpec {
    /// A setting of the Python pipe, read by nobody until a side is given.
    pub const fn new(name: &'static str, kind: ValveKind, default: DefaultValue) -> ValveSpec {
        ValveSpec {
            name,
            kind,
            default,
            env_aliases: &[],
            scope: Scope::Reference,
            side: Side::Neither,
            status: Status::Built,
            doc: "",
            deviation: None,
        }
    }

    /// What it does (one or two sentences, for `docs/configuration.md`).
    pub const fn doc(mut self, doc: &'static str) -> ValveSpec {
        self.doc = doc;
        self
    }

    /// Further environment variables that set it.
    pub const fn aliases(mut self, env_aliases: &'static [&'static str]) -> ValveSpec {
        self.env_aliases = env_aliases;
        self
    }

    /// The component reads it.
    pub const fn read_by_guest(mut self) -> ValveSpec {
        self.side = Side::Guest;
        self
    }

    /// The host reads it.
    pub const fn read_by_host(mut self) -> ValveSpec {
        self.side = Side::Host;
        self
    }

    /// The host and the component read it.
    pub const fn read_by_both(mut self) -> ValveSpec {
        self.side = Side::Both;
        self
    }

    /// The feature behind it is not built: a non-default value warns at start-up.
    pub const fn not_built(mut self) -> ValveSpec {
        self.status = Status::NotBuilt;
        self
    }

    /// The feature behind it is not built and a non-default value is relied on for safety or
    /// compliance: a non-default value stops the start-up.
    pub const fn safety_not_built(mut self) -> ValveSpec {
        self.status = Status::SafetyNotBuilt;
        self
    }

    /// It has no meaning here, for `reason`.
    pub const fn ignored(mut self, reason: &'static str) -> ValveSpec {
        self.status = Status::Ignored(reason);
        self
    }

    /// Our default differs from the Python pipe's; `why` names its default and the reason.
    pub const fn deviates(mut self, why: &'static str) -> ValveSpec {
        self.deviation = Some(why);
        self
    }

    /// The environment variables read for this setting, in order of precedence.
    pub fn env_names(&self) -> impl Iterator<Item = &'static str> + use<> {
        std::iter::once(self.name).chain(self.env_aliases.iter().copied())
    }

    /// Whether this setting may only come from the environment.
    pub fn is_secret(&self) -> bool {
        matches!(self.kind, ValveKind::Secret)
    }

    /// Whether the host hands it to the component in the settings document: the component reads
    /// it and it is not a secret.
    pub fn sent_to_guest(&self) -> bool {
        self.side.guest_reads() && !self.is_secret()
    }
}

/// The spec named `name` (exact canonical spelling, or any case).
pub fn find(name: &str) -> Option<&'static ValveSpec> {
    VALVES.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

/// The settings the component reads, in table order.
pub fn guest_valves() -> impl Iterator<Item = &'static ValveSpec> {
    VALVES.iter().filter(|s| s.sent_to_guest())
}

impl fmt::Display for ValveKind {
    /// The "what was expected" half of a validation error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Bool => f.write_str("must be a boolean (true/false, 1/0, yes/no, on/off)"),
            Self::Int { min, max } => {
                f.write_str("must be an integer")?;
                write_int_range(f, min, max)
            }
            Self::OptInt { min, max } => {
                f.write_str("must be null or an integer")?;
                write_int_range(f, min, max)
            }
            Self::Float { min, max } => {
                f.write_str("must be a number")?;
                write_float_range(f, min, max)
            }
            Self::OptFloat { min, max } => {
                f.write_str("must be null or a number")?;
                write_float_range(f, min, max)
            }
            Self::Str | Self::Secret => f.write_str("must be a string"),
            Self::Enum { values, .. } => write!(f, "must be one of: {}", values.join(", ")),
            Self::Csv => f.write_str(
                "must be a comma-separated string (or, in the config file, an array of strings)",
            ),
            Self::Url { allow_empty } => {
                f.write_str("must be an absolute http:// or https:// URL with a host and without a user name or password")?;
                if allow_empty {
                    f.write_str(", or empty")?;
                }
                Ok(())
            }
        }
    }
}

fn write_int_range(f: &mut fmt::Formatter<'_>, min: i64, max: i64) -> fmt::Result {
    match (min, max) {
        (i64::MIN, i64::MAX) => Ok(()),
        (min, i64::MAX) => write!(f, " >= {min}"),
        (i64::MIN, max) => write!(f, " <= {max}"),
        (min, max) => write!(f, " between {min} and {max}"),
    }
}

fn write_float_range(f: &mut fmt::Formatter<'_>, min: f64, max: f64) -> fmt::Result {
    if max == f64::MAX {
        write!(f, " >= {min}")
    } else {
        write!(f, " between {min} and {max}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectation_text_names_the_range_or_its_open_end() {
        assert_eq!(
            ValveKind::Int {
                min: 60,
                max: i64::MAX
            }
            .to_string(),
            "must be an integer >= 60"
        );
        assert_eq!(
            ValveKind::Int { min: 1, max: 2000 }.to_string(),
            "must be an integer between 1 and 2000"
        );
        assert_eq!(
            ValveKind::Int {
                min: i64::MIN,
                max: i64::MAX
            }
            .to_string(),
            "must be an integer"
        );
        assert_eq!(
            ValveKind::Float {
                min: 0.0,
                max: f64::MAX
            }
            .to_string(),
            "must be a number >= 0"
        );
        assert_eq!(
            ValveKind::Float {
                min: 0.5,
                max: 24.0
            }
            .to_string(),
            "must be a number between 0.5 and 24"
        );
        assert!(
            ValveKind::OptInt { min: 0, max: 9 }
                .to_string()
                .contains("null")
        );
    }

    #[test]
    fn defaults_render_as_an_operator_writes_them() {
        assert_eq!(DefaultValue::Float(1.0).to_string(), "1.0");
        assert_eq!(DefaultValue::Float(1.2).to_string(), "1.2");
        assert_eq!(DefaultValue::Int(300).to_string(), "300");
        assert_eq!(DefaultValue::Null.to_string(), "null");
        assert_eq!(DefaultValue::Bool(false).to_string(), "false");
        assert_eq!(DefaultValue::Str("auto").to_string(), "auto");
        assert_eq!(DefaultValue::Float(1.0).to_json(), serde_json::json!(1.0));
        assert_eq!(DefaultValue::Null.to_json(), serde_json::Value::Null);
    }

    #[test]
    fn sides_say_who_reads_and_secrets_never_reach_the_guest() {
        assert!(Side::Both.guest_reads() && Side::Both.host_reads());
        assert!(!Side::Neither.guest_reads() && !Side::Neither.host_reads());
        let secret = ValveSpec::new("X", ValveKind::Secret, DefaultValue::Str("")).read_by_guest();
        assert!(!secret.sent_to_guest());
    }
}
