//! The settings table, as the host sees it. The table itself lives in the
//! `responses-pipe-settings` crate (`settings/src/valves.rs`) so the component reads the same
//! declaration; this module re-exports it and adds what only the host needs.

pub use responses_pipe_settings::{
    DefaultValue, Scope, Side, Status, VALVES, ValveKind, ValveSpec, find,
};

/// A default as a TOML value, so it goes through exactly the validation a file value does.
pub(crate) fn default_to_toml(default: DefaultValue) -> toml::Value {
    match default {
        DefaultValue::Bool(b) => toml::Value::Boolean(b),
        DefaultValue::Int(i) => toml::Value::Integer(i),
        DefaultValue::Float(f) => toml::Value::Float(f),
        // TOML has no null; the parser reads an empty string as null for the optional kinds.
        DefaultValue::Null => toml::Value::String(String::new()),
        DefaultValue::Str(s) => toml::Value::String(s.to_owned()),
    }
}
