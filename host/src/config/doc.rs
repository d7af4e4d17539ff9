//! `docs/configuration.md`, generated from the settings table (`responses-pipe config-doc`).
//! Every row of the table becomes one row of the document: name and aliases, default, allowed
//! values, whether it is a secret, which side reads it, whether it is built, and what it does. A
//! test fails when the committed file and the table disagree.

use super::valves::{DefaultValue, Scope, Side, Status, VALVES, ValveKind, ValveSpec};
use std::fmt::Write as _;

/// The command that regenerates the document, from the repository root.
pub const REGENERATE: &str =
    "cargo run --locked -p responses-pipe-host -- config-doc > docs/configuration.md";

/// The whole of `docs/configuration.md`.
pub fn markdown() -> String {
    let mut out = String::new();
    out.push_str(&INTRO.replace("{REGENERATE}", REGENERATE));
    let deviations: Vec<&ValveSpec> = VALVES.iter().filter(|s| s.deviation.is_some()).collect();
    out.push_str("\n## Defaults that differ from the Python pipe\n\n");
    out.push_str(
        "Where the Python pipe's default names a feature this server does not have, the default \
         here is what the server actually does, so a start with default settings never claims \
         more than it does.\n\n",
    );
    out.push_str("| Setting | Default here | Why |\n| --- | --- | --- |\n");
    for spec in &deviations {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            spec.name,
            default_text(spec),
            cell(spec.deviation.unwrap_or_default())
        );
    }
    section(
        &mut out,
        "Settings of the Python pipe that act here",
        "Same names, defaults and ranges as the Python pipe (except the deviations above).",
        |s| s.scope == Scope::Reference && s.status.is_built(),
    );
    section(
        &mut out,
        "Settings of this server",
        "Settings the Python pipe does not have: the front door, the sandbox, egress, the \
         artifact store, identity secrets and logging.",
        |s| s.scope == Scope::Host,
    );
    section(
        &mut out,
        "Settings of features not built yet",
        "Accepted and checked against their range so settings carry over, but what they \
         control does not exist yet. A value other than the default logs one warning at \
         start-up naming the setting; for the few an operator relies on for safety or \
         compliance (marked \"stops the start-up\") such a value stops the start-up instead, \
         naming the setting, until the feature exists.",
        |s| matches!(s.status, Status::NotBuilt | Status::SafetyNotBuilt),
    );
    section(
        &mut out,
        "Settings with no meaning here (ignored)",
        "Internals of the Python pipe, or things only a pipe running inside Open WebUI can do. \
         Accepted and checked against their range so settings carry over; a value other than \
         the default is noted once at start-up (information, not a warning).",
        |s| matches!(s.status, Status::Ignored(_)),
    );
    out
}

const INTRO: &str = "# Configuration

<!-- Generated from the settings table (settings/src/valves.rs) by `responses-pipe config-doc`; do not edit by hand. -->

Every setting Responses Pipe accepts, generated from the one table the host's parser, the
component's defaults and the start-up report are built from. To regenerate this file after
changing the table, run from the repository root:

```sh
{REGENERATE}
```

- **Where values come from**, from lowest to highest priority: the default below, a TOML file
  (`responses-pipe serve --config settings.toml`, one `NAME = value` per line, names in any
  case), environment variables (the name, or one of its aliases; the name wins). An unknown key
  or an invalid value stops the start-up, naming the key, where it came from and what was
  expected.
- **Secrets** come from the environment only; a secret in the config file stops the start-up.
  They are never logged and never enter the component.
- **Read by**: `host` (the value never reaches the component), `component` (handed to it in the
  settings document of every call), `both`, or `-` (nothing reads it: not built or ignored).
- **Status**: `built` (it acts), `not built, warns` (a non-default value logs a warning at
  start-up), `not built, stops the start-up` (a non-default value stops the start-up), or
  `ignored` (no meaning here; the reason is given).
- Tool servers are declared as `[[tool_servers]]` tables in the same file; see the README.
";

fn section(out: &mut String, title: &str, intro: &str, keep: impl Fn(&ValveSpec) -> bool) {
    let _ = write!(out, "\n## {title}\n\n{intro}\n\n");
    out.push_str(
        "| Setting | Default | Allowed values | Secret | Read by | Status | What it does |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for spec in VALVES.iter().filter(|s| keep(s)) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            name_text(spec),
            default_text(spec),
            allowed_text(spec.kind),
            if spec.is_secret() {
                "yes, environment only"
            } else {
                "no"
            },
            side_text(spec.side),
            cell(&status_text(spec.status)),
            cell(spec.doc),
        );
    }
}

fn name_text(spec: &ValveSpec) -> String {
    let mut text = format!("`{}`", spec.name);
    if !spec.env_aliases.is_empty() {
        let aliases: Vec<String> = spec.env_aliases.iter().map(|a| format!("`{a}`")).collect();
        let _ = write!(text, " (also {})", aliases.join(", "));
    }
    text
}

fn default_text(spec: &ValveSpec) -> String {
    match spec.default {
        _ if spec.is_secret() => "unset".to_owned(),
        DefaultValue::Str("") => "empty".to_owned(),
        DefaultValue::Int(i) if byte_count(spec.name) && i >= 1024 && i % 1024 == 0 => {
            let (value, unit) = if i % (1024 * 1024) == 0 {
                (i / (1024 * 1024), "MiB")
            } else {
                (i / 1024, "KiB")
            };
            format!("`{i}` ({value} {unit})")
        }
        other => format!("`{}`", cell(&other.to_string())),
    }
}

/// Whether an integer setting counts bytes (its default is shown in KiB or MiB as well).
fn byte_count(name: &str) -> bool {
    name.ends_with("_BYTES") || name.ends_with("CHUNK_SIZE")
}

fn allowed_text(kind: ValveKind) -> String {
    let int_range = |min: i64, max: i64| match (min, max) {
        (i64::MIN, i64::MAX) => "integer".to_owned(),
        (min, i64::MAX) => format!("integer ≥ {min}"),
        (i64::MIN, max) => format!("integer ≤ {max}"),
        (min, max) => format!("integer {min} to {max}"),
    };
    let float_range = |min: f64, max: f64| {
        if max == f64::MAX {
            format!("number ≥ {min}")
        } else {
            format!("number {min} to {max}")
        }
    };
    match kind {
        ValveKind::Bool => "`true` or `false`".to_owned(),
        ValveKind::Int { min, max } => int_range(min, max),
        ValveKind::OptInt { min, max } => format!("null or {}", int_range(min, max)),
        ValveKind::Float { min, max } => float_range(min, max),
        ValveKind::OptFloat { min, max } => format!("null or {}", float_range(min, max)),
        ValveKind::Str | ValveKind::Secret => "text".to_owned(),
        ValveKind::Enum { values, synonyms } => {
            let mut text = values
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ");
            if !synonyms.is_empty() {
                let extra: Vec<String> = synonyms
                    .iter()
                    .map(|(alias, canonical)| format!("`{alias}` for `{canonical}`"))
                    .collect();
                let _ = write!(text, " (also {})", extra.join(", "));
            }
            text
        }
        ValveKind::Csv => "comma-separated list".to_owned(),
        ValveKind::Url { allow_empty: false } => "http(s) URL".to_owned(),
        ValveKind::Url { allow_empty: true } => "http(s) URL, or empty".to_owned(),
    }
}

fn side_text(side: Side) -> &'static str {
    match side {
        Side::Host => "host",
        Side::Guest => "component",
        Side::Both => "both",
        Side::Neither => "-",
    }
}

fn status_text(status: Status) -> String {
    match status {
        Status::Built => "built".to_owned(),
        Status::NotBuilt => "not built, warns".to_owned(),
        Status::SafetyNotBuilt => "not built, stops the start-up".to_owned(),
        Status::Ignored(reason) => format!("ignored: {reason}"),
    }
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn docs_configuration_md_matches_the_settings_table() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == markdown(),
            "docs/configuration.md does not match the settings table; regenerate it with:\n  {REGENERATE}"
        );
    }

    #[test]
    fn every_setting_has_one_row_with_its_status_and_side() {
        let doc = markdown();
        for spec in VALVES {
            let rows: Vec<&str> = doc
                .lines()
                .filter(|l| l.starts_with(&format!("| `{}`", spec.name)))
                .collect();
            // One row in its section, plus one in the deviation table when it has one.
            let expected = 1 + usize::from(spec.deviation.is_some());
            assert_eq!(rows.len(), expected, "{}", spec.name);
            let row = rows
                .iter()
                .find(|r| r.contains(&status_text(spec.status).replace('|', "\\|")))
                .unwrap_or_else(|| panic!("{}: no row with its status", spec.name));
            assert!(row.contains(side_text(spec.side)), "{row}");
            if spec.is_secret() {
                assert!(row.contains("environment only"), "{row}");
            }
        }
    }

    #[test]
    fn cells_escape_pipes_and_defaults_show_their_unit() {
        assert_eq!(cell("a|b"), "a\\|b");
        let body = VALVES
            .iter()
            .find(|s| s.name == "MAX_REQUEST_BODY_BYTES")
            .unwrap();
        assert_eq!(default_text(body), "`33554432` (32 MiB)");
        assert_eq!(
            allowed_text(ValveKind::Int {
                min: 1,
                max: i64::MAX
            }),
            "integer ≥ 1"
        );
    }
}
