//! The settings document the host hands to every call, read into one settings group. The
//! document holds the settings the component reads, under their table names, already validated
//! by the host; unknown keys are ignored here (the host owns validation). The defaults are not
//! written here: they come from the one settings table (`responses-pipe-settings`), and a key a
//! document lacks takes the table's default, so the host's document and the component cannot
//! disagree about one.
//!
//! The settings groups therefore have no field defaults of their own: a complete document (what
//! the host sends) is read straight from its text, and only an incomplete one is first merged
//! over the table's defaults.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The component's defaults: every setting it reads, with the table's default value.
pub fn default_document() -> Map<String, Value> {
    responses_pipe_settings::guest_valves()
        .map(|spec| (spec.name.to_owned(), spec.default.to_json()))
        .collect()
}

/// Read a settings group from a settings document. A complete document is read straight from
/// its text (this runs on every request); keys an incomplete one lacks take the table's defaults.
pub fn from_document<T: DeserializeOwned>(json: &str) -> Result<T, serde_json::Error> {
    let blank = json.trim().is_empty();
    if !blank && let Ok(complete) = serde_json::from_str(json) {
        return Ok(complete);
    }
    let mut doc: Map<String, Value> = if blank {
        Map::new()
    } else {
        serde_json::from_str(json)?
    };
    for (key, value) in default_document() {
        doc.entry(key).or_insert(value);
    }
    serde_json::from_value(Value::Object(doc))
}
