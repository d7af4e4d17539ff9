//! Scalar fields, custom params, routing, identifiers and the final allowlist.
//!
//! Open WebUI sends advanced params as typed by a person (`"0.7"`, `""`) and merges per-model
//! `custom_params` into the body; OpenRouter rejects `null`s and wrong types, so values are
//! coerced or dropped here and the pipe-only keys never reach upstream. Identifiers are the
//! anti-spoofing boundary: whatever `user`, `session_id` or `metadata` the client sent is
//! discarded and only values derived from the host-vouched [`Identity`] are sent.

use super::{Identity, RequestSettings};
use crate::chat_body::InvalidBody;
use crate::model::ModelInfo;
use serde_json::{Map, Number, Value};

/// Sampling parameters parsed as numbers (numeric strings accepted).
const FLOAT_FIELDS: &[&str] = &[
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "top_a",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
];

/// Parameters parsed as whole numbers (floats and numeric strings rounded).
const INTEGER_FIELDS: &[&str] = &[
    "max_output_tokens",
    "max_tokens",
    "max_completion_tokens",
    "seed",
    "top_logprobs",
    "max_tool_calls",
];

/// Open WebUI per-model switches that only steer the pipe; never forwarded.
const LOCAL_ONLY_KEYS: &[&str] = &[
    "disable_model_metadata_sync",
    "disable_capability_updates",
    "disable_image_updates",
    "disable_description_updates",
    "disable_web_tools_auto_attach",
    "disable_web_tools_default_on",
    "disable_direct_uploads_auto_attach",
    "disable_image_filter_auto_attach",
    "disable_video_gen_auto_attach",
];

/// OpenRouter's metadata limits (spec `RequestMetadata`).
const MAX_METADATA_PAIRS: usize = 16;
const MAX_METADATA_KEY_CHARS: usize = 64;
const MAX_METADATA_VALUE_CHARS: usize = 512;
/// Longest end-user id the reference sends as `user`.
const MAX_USER_ID_CHARS: usize = 128;
/// OpenRouter's `session_id` limit.
const MAX_SESSION_ID_CHARS: usize = 256;

/// Keys inside which `null`s are dropped too (nested config objects, not user data such as
/// tool parameter schemas, where `null` can be meaningful).
const CONFIG_OBJECTS: &[&str] = &[
    "reasoning",
    "text",
    "provider",
    "trace",
    "thinking_config",
    "stream_options",
    "debug",
    "image_config",
];

/// The custom params taken out of the body.
#[derive(Debug, Default)]
pub(super) struct CustomParams {
    pub model_fallback: Option<Value>,
    pub trace: Option<Value>,
    /// `ignore`, `only`, `order` → the raw CSV (or list) values.
    pub provider_lists: Vec<(&'static str, Value)>,
    pub disable_native_websearch: bool,
    /// The per-chat `openrouter_web_search` switch: attach the server tools (`Some(true)`), do
    /// not (`Some(false)`), or follow `AUTO_DEFAULT_WEB_TOOLS_FILTER` (`None`).
    pub web_tools: Option<bool>,
    /// The per-chat `zdr` switch.
    pub zdr: bool,
}

fn invalid(msg: String) -> InvalidBody {
    InvalidBody(msg)
}

/// Blank strings dropped, numeric strings parsed, whole-number fields rounded, `models` CSV
/// split into a list.
pub(super) fn coerce_scalars(body: &mut Map<String, Value>) -> Result<(), InvalidBody> {
    body.retain(|key, value| {
        key == "model" || !matches!(value, Value::String(s) if s.trim().is_empty())
    });
    for key in FLOAT_FIELDS {
        if let Some(value) = body.get(*key) {
            let number = parse_number(key, value)?;
            match number {
                Some(n) => body.insert((*key).into(), Value::Number(n)),
                None => body.remove(*key),
            };
        }
    }
    for key in INTEGER_FIELDS {
        if let Some(value) = body.get(*key) {
            let rounded = parse_number(key, value)?
                .and_then(|n| n.as_i64().or_else(|| n.as_f64().map(|f| f.round() as i64)));
            match rounded {
                Some(n) => body.insert((*key).into(), Value::from(n)),
                None => body.remove(*key),
            };
        }
    }
    if let Some(models) = body.remove("models") {
        let list: Vec<Value> = match models {
            Value::Null => Vec::new(),
            Value::String(csv) => split_csv(&csv).into_iter().map(Value::String).collect(),
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
            _ => {
                return Err(invalid(
                    "`models` must be an array of model ids or a comma-separated string".into(),
                ));
            }
        };
        if !list.is_empty() {
            body.insert("models".into(), Value::Array(list));
        }
    }
    Ok(())
}

/// The values OpenRouter takes for `verbosity` (also `text.verbosity`).
const VERBOSITIES: &[&str] = &["low", "medium", "high", "xhigh", "max"];
/// The values OpenRouter takes for `reasoning_effort` (also `reasoning.effort`).
const EFFORTS: &[&str] = &["none", "minimal", "low", "medium", "high", "xhigh", "max"];
/// The values OpenRouter takes for `service_tier`.
const SERVICE_TIERS: &[&str] = &["auto", "default", "fast", "flex", "priority", "scale"];

/// Fields with a fixed set of values: anything else (a typo, a number) is refused here, naming
/// the field, instead of being forwarded for OpenRouter to refuse. Efforts are compared
/// trimmed and lowercased, as they are read.
pub(super) fn check_enums(body: &Map<String, Value>) -> Result<(), InvalidBody> {
    let nested = |outer: &str, inner: &str| body.get(outer).and_then(|o| o.get(inner));
    check_enum("verbosity", body.get("verbosity"), VERBOSITIES, false)?;
    check_enum(
        "text.verbosity",
        nested("text", "verbosity"),
        VERBOSITIES,
        false,
    )?;
    check_enum(
        "reasoning_effort",
        body.get("reasoning_effort"),
        EFFORTS,
        true,
    )?;
    check_enum(
        "reasoning.effort",
        nested("reasoning", "effort"),
        EFFORTS,
        true,
    )?;
    check_enum(
        "service_tier",
        body.get("service_tier"),
        SERVICE_TIERS,
        false,
    )
}

/// One field of [`check_enums`]; `lowercase` compares the value trimmed and lowercased.
fn check_enum(
    key: &str,
    value: Option<&Value>,
    allowed: &[&str],
    lowercase: bool,
) -> Result<(), InvalidBody> {
    match value {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s))
            if allowed.contains(&s.as_str())
                || (lowercase && allowed.contains(&s.trim().to_ascii_lowercase().as_str())) =>
        {
            Ok(())
        }
        Some(_) => Err(invalid(format!(
            "`{key}` must be one of {}",
            allowed.join(", ")
        ))),
    }
}

/// The JSON type a forwarded field must have.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Bool,
    Object,
    Array,
    StrOrArray,
}

/// Fields forwarded (or read) as the caller sent them, with the JSON type OpenRouter takes. A
/// value of another type is refused here, naming the field. What is inside an object or array
/// is OpenRouter's to judge.
const FIELD_KINDS: &[(&str, Kind)] = &[
    ("instructions", Kind::Str),
    ("preset", Kind::Str),
    ("prompt_cache_key", Kind::Str),
    ("safety_identifier", Kind::Str),
    ("previous_response_id", Kind::Str),
    ("store", Kind::Bool),
    ("parallel_tool_calls", Kind::Bool),
    ("logprobs", Kind::Bool),
    ("include_reasoning", Kind::Bool),
    ("background", Kind::Bool),
    ("stream_options", Kind::Object),
    ("provider", Kind::Object),
    ("trace", Kind::Object),
    ("debug", Kind::Object),
    ("image_config", Kind::Object),
    ("prompt", Kind::Object),
    ("logit_bias", Kind::Object),
    ("web_search_options", Kind::Object),
    ("plugins", Kind::Array),
    ("modalities", Kind::Array),
    ("include", Kind::Array),
    ("stop_server_tools_when", Kind::Array),
    ("stop", Kind::StrOrArray),
];

/// Refuses a forwarded field whose value has the wrong JSON type (`null` is always fine: it is
/// dropped before sending).
pub(super) fn check_types(body: &Map<String, Value>) -> Result<(), InvalidBody> {
    for (key, kind) in FIELD_KINDS {
        let Some(value) = body.get(*key).filter(|v| !v.is_null()) else {
            continue;
        };
        let (ok, what) = match kind {
            Kind::Str => (value.is_string(), "a string"),
            Kind::Bool => (value.is_boolean(), "a boolean"),
            Kind::Object => (value.is_object(), "an object"),
            Kind::Array => (value.is_array(), "an array"),
            Kind::StrOrArray => (
                value.is_string() || value.is_array(),
                "a string or an array",
            ),
        };
        if !ok {
            return Err(invalid(format!("`{key}` must be {what}")));
        }
    }
    Ok(())
}

fn parse_number(key: &str, value: &Value) -> Result<Option<Number>, InvalidBody> {
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(Some(n.clone())),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Some)
            .ok_or_else(|| invalid(format!("`{key}` must be a number, got `{}`", shown(s)))),
        _ => Err(invalid(format!("`{key}` must be a number"))),
    }
}

fn shown(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Comma-separated values, trimmed, empties dropped.
pub(super) fn split_csv(csv: &str) -> Vec<String> {
    csv.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `true`, `1`, `yes`, `on` (any case) or a JSON `true`/non-zero number.
pub(super) fn truthy(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "true" | "1" | "yes" | "on"
        ),
        _ => false,
    }
}

/// Takes the pipe's custom params (and Open WebUI's local switches) out of the body.
pub(super) fn take_custom_params(body: &mut Map<String, Value>) -> CustomParams {
    for key in LOCAL_ONLY_KEYS {
        body.remove(*key);
    }
    let disable_a = body.remove("disable_native_websearch");
    let disable_b = body.remove("disable_native_web_search");
    let mut provider_lists = Vec::new();
    for (field, key) in [
        ("ignore", "openrouter_provider_ignore"),
        ("only", "openrouter_provider_only"),
        ("order", "openrouter_provider_order"),
    ] {
        if let Some(value) = body.remove(key) {
            provider_lists.push((field, value));
        }
    }
    CustomParams {
        model_fallback: body.remove("model_fallback"),
        trace: body.remove("openrouter_trace"),
        provider_lists,
        disable_native_websearch: truthy(disable_a.as_ref()) || truthy(disable_b.as_ref()),
        web_tools: body
            .remove("openrouter_web_search")
            .filter(|v| !v.is_null())
            .map(|v| truthy(Some(&v))),
        zdr: truthy(body.remove("zdr").as_ref()),
    }
}

/// Appends strings to a list, keeping order and dropping repeats (existing entries first).
fn merge_unique(existing: Option<&Value>, extra: Vec<String>) -> Vec<Value> {
    let mut merged: Vec<String> = Vec::new();
    let current = existing
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for candidate in current.into_iter().chain(extra) {
        if !merged.contains(&candidate) {
            merged.push(candidate);
        }
    }
    merged.into_iter().map(Value::String).collect()
}

fn strings_of(value: &Value) -> Vec<String> {
    match value {
        Value::String(csv) => split_csv(csv),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// `model_fallback` (CSV or list) → OpenRouter's `models` fallback list.
pub(super) fn apply_model_fallback(body: &mut Map<String, Value>, fallback: Option<&Value>) {
    let extra = fallback.map(strings_of).unwrap_or_default();
    let merged = merge_unique(body.get("models"), extra);
    if merged.is_empty() {
        body.remove("models");
    } else {
        body.insert("models".into(), Value::Array(merged));
    }
}

/// `openrouter_trace` (an object, or a JSON string of one) merged over the caller's `trace`.
pub(super) fn apply_trace(body: &mut Map<String, Value>, trace: Option<Value>) {
    let parsed = match trace {
        Some(Value::Object(o)) => o,
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s.trim()) {
            Ok(Value::Object(o)) => o,
            // Not a JSON object: ignored, as the reference does.
            _ => return,
        },
        _ => return,
    };
    if parsed.is_empty() {
        return;
    }
    let mut merged = match body.remove("trace") {
        Some(Value::Object(existing)) => existing,
        _ => Map::new(),
    };
    merged.extend(parsed);
    body.insert("trace".into(), Value::Object(merged));
}

/// A provider slug as OpenRouter spells them: `^[a-z0-9-]+(/[a-z0-9-]+)?$`.
fn is_provider_slug(slug: &str) -> bool {
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let mut parts = slug.split('/');
    let first = parts.next().is_some_and(part_ok);
    let second = parts.next().is_none_or(part_ok);
    first && second && parts.next().is_none()
}

/// The provider object to extend (the caller's, when it is an object).
fn provider_object(body: &mut Map<String, Value>) -> Map<String, Value> {
    match body.remove("provider") {
        Some(Value::Object(o)) => o,
        _ => Map::new(),
    }
}

/// `openrouter_provider_ignore/only/order` merged into `provider.ignore/only/order`.
pub(super) fn apply_provider_lists(body: &mut Map<String, Value>, lists: &[(&'static str, Value)]) {
    let parsed: Vec<(&str, Vec<String>)> = lists
        .iter()
        .map(|(field, raw)| {
            let slugs: Vec<String> = strings_of(raw)
                .into_iter()
                .map(|s| s.to_ascii_lowercase())
                .filter(|s| is_provider_slug(s))
                .collect();
            (*field, slugs)
        })
        .filter(|(_, slugs)| !slugs.is_empty())
        .collect();
    if parsed.is_empty() {
        return;
    }
    let mut provider = provider_object(body);
    for (field, slugs) in parsed {
        let merged = merge_unique(provider.get(field), slugs);
        provider.insert(field.into(), Value::Array(merged));
    }
    body.insert("provider".into(), Value::Object(provider));
}

/// `ZDR_ENFORCE`, or the user's per-chat request when allowed → `provider.zdr = true`.
pub(super) fn apply_zdr(body: &mut Map<String, Value>, settings: &RequestSettings, chat_zdr: bool) {
    let user_asks = settings.allow_user_zdr_override && (chat_zdr || settings.request_zdr);
    if !(settings.zdr_enforce || user_asks) {
        return;
    }
    let mut provider = provider_object(body);
    provider.insert("zdr".into(), Value::Bool(true));
    body.insert("provider".into(), Value::Object(provider));
}

/// The caller's explicit limit (`max_output_tokens`, else `max_completion_tokens`, else
/// `max_tokens`), filled from the catalog or cleared per `USE_MODEL_MAX_OUTPUT_TOKENS`.
pub(super) fn resolve_max_output_tokens(
    body: &mut Map<String, Value>,
    model: &ModelInfo,
    settings: &RequestSettings,
) {
    let explicit = ["max_output_tokens", "max_completion_tokens", "max_tokens"]
        .iter()
        .filter_map(|k| body.remove(*k))
        .find(Value::is_number);
    let resolved = if settings.use_model_max_output_tokens {
        explicit.or_else(|| model.max_completion_tokens.map(Value::from))
    } else {
        // The reference clears any limit when the valve is off, so the provider's own maximum
        // applies and long answers are never cut short by a stale client default.
        None
    };
    if let Some(limit) = resolved {
        body.insert("max_output_tokens".into(), limit);
    }
}

/// `AUTO_CONTEXT_TRIMMING`: the context-compression plugin when on, `truncation: "disabled"`
/// (unless set) when off.
pub(super) fn apply_context_trimming(body: &mut Map<String, Value>, settings: &RequestSettings) {
    if !settings.auto_context_trimming {
        if body.get("truncation").is_none_or(Value::is_null) {
            body.insert("truncation".into(), Value::String("disabled".into()));
        }
        return;
    }
    let mut plugins = match body.remove("plugins") {
        Some(Value::Array(p)) => p,
        _ => Vec::new(),
    };
    let present = plugins
        .iter()
        .any(|p| p.get("id").and_then(Value::as_str) == Some("context-compression"));
    if !present {
        plugins.push(serde_json::json!({"id": "context-compression"}));
    }
    body.insert("plugins".into(), Value::Array(plugins));
}

fn truncate_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn non_empty(value: Option<&String>) -> Option<&str> {
    value.map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// Client `user`, `session_id` and `metadata` replaced by values from the identity.
pub(super) fn apply_identifiers(
    body: &mut Map<String, Value>,
    settings: &RequestSettings,
    identity: &Identity,
) {
    body.remove("user");
    body.remove("session_id");
    body.remove("metadata");
    let mut metadata = Map::new();

    if settings.send_end_user_id {
        let guid = non_empty(identity.user_id.as_ref())
            .filter(|id| id.chars().count() <= MAX_USER_ID_CHARS);
        let alternate = match settings
            .end_user_id_source
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "email" => non_empty(identity.user_email.as_ref()),
            "name" => non_empty(identity.user_name.as_ref()),
            _ => None,
        }
        .filter(|v| v.chars().count() <= MAX_USER_ID_CHARS);
        if let Some(user) = alternate.or(guid) {
            body.insert("user".into(), Value::String(user.to_string()));
        }
        if let Some(guid) = guid {
            metadata.insert("user_id".into(), Value::String(guid.to_string()));
        }
    }
    if settings.send_cache_session_id
        && let Some(sticky) = non_empty(identity.cache_session_id.as_ref())
        && sticky.chars().count() <= MAX_SESSION_ID_CHARS
    {
        body.insert("session_id".into(), Value::String(sticky.to_string()));
    }
    for (enabled, key, value) in [
        (settings.send_session_id, "session_id", &identity.session_id),
        (settings.send_chat_id, "chat_id", &identity.chat_id),
        (settings.send_message_id, "message_id", &identity.message_id),
    ] {
        if enabled && let Some(v) = non_empty(value.as_ref()) {
            metadata.insert(
                key.into(),
                Value::String(truncate_chars(v, MAX_METADATA_VALUE_CHARS)),
            );
        }
    }
    if !metadata.is_empty() {
        body.insert("metadata".into(), Value::Object(metadata));
    }
}

/// OpenRouter's metadata rules: at most 16 string pairs, keys ≤ 64 chars without `[`/`]`,
/// values ≤ 512 chars; anything else is dropped. `None` when nothing is left.
pub(super) fn sanitize_metadata(raw: &Value) -> Option<Map<String, Value>> {
    let Value::Object(pairs) = raw else {
        return None;
    };
    let mut out = Map::new();
    for (key, value) in pairs {
        if out.len() >= MAX_METADATA_PAIRS {
            break;
        }
        let Value::String(value) = value else {
            continue;
        };
        if key.chars().count() > MAX_METADATA_KEY_CHARS
            || key.contains('[')
            || key.contains(']')
            || value.chars().count() > MAX_METADATA_VALUE_CHARS
        {
            continue;
        }
        out.insert(key.clone(), Value::String(value.clone()));
    }
    (!out.is_empty()).then_some(out)
}

/// Keeps only `allowed` keys, drops `null`s (top level and inside config objects), reduces
/// `reasoning` to the keys OpenRouter reads, drops an empty `text`/`reasoning`, and
/// sanitises `metadata`.
pub(super) fn allowlist(body: Map<String, Value>, allowed: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, mut value) in body {
        if !allowed.contains(&key.as_str()) || value.is_null() {
            continue;
        }
        if CONFIG_OBJECTS.contains(&key.as_str())
            && let Value::Object(inner) = &mut value
        {
            inner.retain(|_, v| !v.is_null());
        }
        match key.as_str() {
            "reasoning" => {
                let Value::Object(cfg) = value else { continue };
                let reduced: Map<String, Value> = cfg
                    .into_iter()
                    .filter(|(k, _)| {
                        matches!(
                            k.as_str(),
                            "effort" | "max_tokens" | "exclude" | "enabled" | "summary"
                        )
                    })
                    .collect();
                if reduced.is_empty() {
                    continue;
                }
                value = Value::Object(reduced);
            }
            "text" if value.as_object().is_none_or(Map::is_empty) => continue,
            "metadata" => match sanitize_metadata(&value) {
                Some(clean) => value = Value::Object(clean),
                None => continue,
            },
            _ => {}
        }
        out.insert(key, value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::test_support::{model, request};
    use crate::request::{
        Identity, RequestSettings, build_chat_completions_request, build_responses_request,
    };
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(o) => o,
            _ => Map::new(),
        }
    }

    fn responses_with(body: Value, s: &RequestSettings, identity: &Identity) -> Value {
        build_responses_request(&request(body), &model("openai/gpt-4o"), s, identity, false)
            .unwrap()
            .body
    }

    fn base(extra: Value) -> Value {
        let mut b = json!({"model": "x", "messages": [{"role": "user", "content": "hi"}]});
        if let (Some(b), Value::Object(extra)) = (b.as_object_mut(), extra) {
            b.extend(extra);
        }
        b
    }

    #[test]
    fn fields_with_fixed_values_or_a_fixed_type_are_refused_naming_the_field() {
        for (extra, needle) in [
            (json!({"verbosity": "loud"}), "`verbosity` must be one of"),
            (
                json!({"text": {"verbosity": 1}}),
                "`text.verbosity` must be one of",
            ),
            (
                json!({"reasoning_effort": "lots"}),
                "`reasoning_effort` must be one of",
            ),
            (
                json!({"reasoning": {"effort": []}}),
                "`reasoning.effort` must be one of",
            ),
            (
                json!({"service_tier": "gold"}),
                "`service_tier` must be one of",
            ),
            (
                json!({"instructions": []}),
                "`instructions` must be a string",
            ),
            (json!({"store": "no"}), "`store` must be a boolean"),
            (
                json!({"provider": "openai"}),
                "`provider` must be an object",
            ),
            (json!({"plugins": {}}), "`plugins` must be an array"),
            (json!({"stop": 3}), "`stop` must be a string or an array"),
        ] {
            let err = build_responses_request(
                &request(base(extra.clone())),
                &model("openai/gpt-4o"),
                &RequestSettings::default(),
                &Identity::default(),
                false,
            )
            .unwrap_err();
            assert!(err.0.contains(needle), "{extra}: {err}");
        }
        // Accepted spellings, and nulls (dropped before sending).
        let body = responses_with(
            base(
                json!({"verbosity": "max", "reasoning_effort": " HIGH ", "service_tier": null,
                        "instructions": null, "stop": ["x"]}),
            ),
            &RequestSettings::default(),
            &Identity::default(),
        );
        assert_eq!(body["text"]["verbosity"], "max");
    }

    #[test]
    fn numeric_strings_are_coerced_and_blank_strings_dropped() {
        let cases: &[(&str, Value, Option<Value>)] = &[
            ("temperature", json!("0.7"), Some(json!(0.7))),
            ("temperature", json!(" "), None),
            ("top_p", json!(1), Some(json!(1))),
            ("max_tokens", json!("100.4"), Some(json!(100))),
            ("seed", json!(41.6), Some(json!(42))),
            ("seed", json!(""), None),
            ("max_tool_calls", json!("3"), Some(json!(3))),
            ("stop", json!(""), None),
        ];
        for (key, input, expected) in cases {
            let mut body = obj(json!({ *key: input.clone() }));
            coerce_scalars(&mut body).unwrap();
            assert_eq!(body.get(*key), expected.as_ref(), "{key} = {input}");
        }
        let mut bad = obj(json!({"top_k": true}));
        assert!(coerce_scalars(&mut bad).unwrap_err().0.contains("`top_k`"));
        let mut bad = obj(json!({"seed": "many"}));
        assert!(coerce_scalars(&mut bad).unwrap_err().0.contains("`seed`"));
    }

    #[test]
    fn models_accepts_a_csv_or_a_list_and_drops_empties() {
        for (input, expected) in [
            (json!("a/b, c/d ,,"), Some(json!(["a/b", "c/d"]))),
            (json!(["a/b", " ", 3, "c/d"]), Some(json!(["a/b", "c/d"]))),
            (json!([]), None),
        ] {
            let mut body = obj(json!({ "models": input }));
            coerce_scalars(&mut body).unwrap();
            assert_eq!(body.get("models"), expected.as_ref());
        }
        let mut bad = obj(json!({"models": {"a": 1}}));
        assert!(coerce_scalars(&mut bad).is_err());
    }

    #[test]
    fn model_fallback_extends_models_in_order_without_repeats() {
        let body = responses_with(
            base(
                json!({"models": ["x/one", "x/two"], "model_fallback": "x/two, x/three,x/one, x/four"}),
            ),
            &RequestSettings::default(),
            &Identity::default(),
        );
        assert_eq!(
            body["models"],
            json!(["x/one", "x/two", "x/three", "x/four"])
        );
        assert!(body.get("model_fallback").is_none());
        let body = responses_with(
            base(json!({"model_fallback": ""})),
            &RequestSettings::default(),
            &Identity::default(),
        );
        assert!(body.get("models").is_none());
    }

    #[test]
    fn openrouter_trace_merges_over_the_callers_trace_and_bad_values_are_ignored() {
        let s = RequestSettings::default();
        let id = Identity::default();
        let body = responses_with(
            base(json!({"trace": {"trace_id": "t1", "span_name": "s"},
                        "openrouter_trace": {"span_name": "mine", "generation_name": "g"}})),
            &s,
            &id,
        );
        assert_eq!(
            body["trace"],
            json!({"trace_id": "t1", "span_name": "mine", "generation_name": "g"})
        );
        let body = responses_with(
            base(json!({"openrouter_trace": "{\"trace_name\":\"n\"}"})),
            &s,
            &id,
        );
        assert_eq!(body["trace"], json!({"trace_name": "n"}));
        for bad in [json!("not json"), json!("[1]"), json!(5)] {
            let body = responses_with(base(json!({"openrouter_trace": bad})), &s, &id);
            assert!(body.get("trace").is_none());
            assert!(body.get("openrouter_trace").is_none());
        }
    }

    #[test]
    fn provider_custom_params_merge_valid_slugs_after_existing_ones() {
        let body = responses_with(
            base(json!({
                "provider": {"order": ["openai"], "allow_fallbacks": false},
                "openrouter_provider_order": "Azure, openai, together/fp8, bad slug, a/b/c",
                "openrouter_provider_ignore": ["deepinfra"],
                "openrouter_provider_only": ""
            })),
            &RequestSettings::default(),
            &Identity::default(),
        );
        assert_eq!(
            body["provider"],
            json!({"order": ["openai", "azure", "together/fp8"], "allow_fallbacks": false,
                   "ignore": ["deepinfra"]})
        );
        for key in [
            "openrouter_provider_order",
            "openrouter_provider_ignore",
            "openrouter_provider_only",
        ] {
            assert!(body.get(key).is_none());
        }
    }

    #[test]
    fn provider_custom_params_are_not_injected_into_task_requests() {
        let req = request(base(json!({"openrouter_provider_only": "openai"})));
        let built = build_responses_request(
            &req,
            &model("openai/gpt-4o"),
            &RequestSettings::default(),
            &Identity::default(),
            true,
        )
        .unwrap();
        assert!(built.body.get("provider").is_none());
        assert!(built.body.get("openrouter_provider_only").is_none());
    }

    #[test]
    fn zdr_is_set_when_enforced_or_requested_per_chat_if_allowed() {
        let id = Identity::default();
        let cases = [
            (
                RequestSettings {
                    zdr_enforce: true,
                    ..RequestSettings::default()
                },
                json!({}),
                true,
            ),
            (RequestSettings::default(), json!({"zdr": true}), true),
            (RequestSettings::default(), json!({"zdr": "on"}), true),
            (RequestSettings::default(), json!({}), false),
            (
                RequestSettings {
                    request_zdr: true,
                    ..RequestSettings::default()
                },
                json!({}),
                true,
            ),
            (
                RequestSettings {
                    allow_user_zdr_override: false,
                    ..RequestSettings::default()
                },
                json!({"zdr": true}),
                false,
            ),
        ];
        for (settings, extra, expected) in cases {
            let body = responses_with(base(extra.clone()), &settings, &id);
            assert_eq!(
                body.pointer("/provider/zdr") == Some(&json!(true)),
                expected,
                "{extra}"
            );
            assert!(body.get("zdr").is_none());
        }
        let body = responses_with(
            base(json!({"zdr": true, "provider": {"sort": "price"}})),
            &RequestSettings::default(),
            &id,
        );
        assert_eq!(body["provider"], json!({"sort": "price", "zdr": true}));
    }

    #[test]
    fn max_output_tokens_comes_from_the_caller_or_the_catalog_or_is_cleared() {
        let id = Identity::default();
        let on = RequestSettings {
            use_model_max_output_tokens: true,
            ..RequestSettings::default()
        };
        let off = RequestSettings::default();
        let cases = [
            (&on, json!({"max_tokens": 50}), Some(json!(50))),
            (&on, json!({"max_completion_tokens": "60"}), Some(json!(60))),
            (
                &on,
                json!({"max_output_tokens": 70, "max_tokens": 50}),
                Some(json!(70)),
            ),
            (&on, json!({}), Some(json!(4096))),
            (&off, json!({"max_tokens": 50}), None),
            (&off, json!({}), None),
        ];
        for (settings, extra, expected) in cases {
            let body = responses_with(base(extra.clone()), settings, &id);
            assert_eq!(body.get("max_output_tokens"), expected.as_ref(), "{extra}");
            assert!(
                body.get("max_tokens").is_none() && body.get("max_completion_tokens").is_none()
            );
        }
    }

    #[test]
    fn context_trimming_adds_the_compression_plugin_once_or_disables_truncation() {
        let id = Identity::default();
        let on = RequestSettings::default();
        let body = responses_with(base(json!({})), &on, &id);
        assert_eq!(body["plugins"], json!([{"id": "context-compression"}]));
        assert!(body.get("truncation").is_none());
        let body = responses_with(
            base(
                json!({"plugins": [{"id": "context-compression", "enabled": false}, {"id": "file-parser"}]}),
            ),
            &on,
            &id,
        );
        assert_eq!(
            body["plugins"],
            json!([{"id": "context-compression", "enabled": false}, {"id": "file-parser"}])
        );
        let off = RequestSettings {
            auto_context_trimming: false,
            ..RequestSettings::default()
        };
        let body = responses_with(base(json!({})), &off, &id);
        assert_eq!(body["truncation"], "disabled");
        assert!(body.get("plugins").is_none());
        let body = responses_with(base(json!({"truncation": "auto"})), &off, &id);
        assert_eq!(body["truncation"], "auto");
    }

    fn identity() -> Identity {
        Identity {
            user_id: Some("guid-1".into()),
            user_email: Some("a@example.com".into()),
            user_name: Some("Ann".into()),
            chat_id: Some("chat-1".into()),
            message_id: Some("msg-1".into()),
            session_id: Some("sess-1".into()),
            cache_session_id: Some("ab12".into()),
        }
    }

    #[test]
    fn client_identifiers_are_always_replaced_by_the_identity() {
        let spoof = base(json!({"user": "someone-else", "session_id": "theirs",
                                "metadata": {"user_id": "someone-else"}}));
        let quiet = RequestSettings {
            send_cache_session_id: false,
            ..RequestSettings::default()
        };
        let body = responses_with(spoof.clone(), &quiet, &identity());
        for key in ["user", "session_id", "metadata"] {
            assert!(body.get(key).is_none(), "{key} must not be forwarded");
        }
        let body = responses_with(spoof, &RequestSettings::default(), &identity());
        assert_eq!(body["session_id"], "ab12");
        assert!(body.get("user").is_none() && body.get("metadata").is_none());
    }

    #[test]
    fn end_user_id_follows_the_source_and_falls_back_to_the_guid() {
        let all = |source: &str| RequestSettings {
            send_end_user_id: true,
            end_user_id_source: source.into(),
            ..RequestSettings::default()
        };
        let cases = [
            ("id", identity(), "guid-1"),
            ("email", identity(), "a@example.com"),
            ("name", identity(), "Ann"),
            (
                "name",
                Identity {
                    user_name: Some("  ".into()),
                    ..identity()
                },
                "guid-1",
            ),
            (
                "email",
                Identity {
                    user_email: Some("e".repeat(129)),
                    ..identity()
                },
                "guid-1",
            ),
        ];
        for (source, who, expected) in cases {
            let body = responses_with(base(json!({})), &all(source), &who);
            assert_eq!(body["user"], expected, "{source}");
            assert_eq!(body["metadata"]["user_id"], "guid-1");
        }
        let body = responses_with(base(json!({})), &all("id"), &Identity::default());
        assert!(body.get("user").is_none() && body.get("metadata").is_none());
    }

    #[test]
    fn session_chat_and_message_ids_go_to_metadata_when_enabled() {
        let s = RequestSettings {
            send_session_id: true,
            send_chat_id: true,
            send_message_id: true,
            ..RequestSettings::default()
        };
        let long = Identity {
            message_id: Some("m".repeat(600)),
            ..identity()
        };
        let body = responses_with(base(json!({})), &s, &long);
        assert_eq!(body["metadata"]["session_id"], "sess-1");
        assert_eq!(body["metadata"]["chat_id"], "chat-1");
        assert_eq!(body["metadata"]["message_id"].as_str().unwrap().len(), 512);
        let chat = build_chat_completions_request(
            &request(base(json!({}))),
            &model("openai/gpt-4o"),
            &s,
            &identity(),
            false,
        )
        .unwrap();
        assert_eq!(chat.body["metadata"]["chat_id"], "chat-1");
        assert_eq!(chat.body["session_id"], "ab12");
    }

    #[test]
    fn metadata_is_sanitised_to_openrouters_limits() {
        let mut raw = Map::new();
        raw.insert("ok".into(), json!("v"));
        raw.insert("num".into(), json!(1));
        raw.insert("bad[key]".into(), json!("v"));
        raw.insert("k".repeat(65), json!("v"));
        raw.insert("long".into(), json!("v".repeat(513)));
        for i in 0..20 {
            raw.insert(format!("z{i:02}"), json!("v"));
        }
        let clean = sanitize_metadata(&Value::Object(raw)).unwrap();
        assert_eq!(clean.len(), 16);
        assert!(clean.contains_key("ok"));
        assert!(
            !clean.contains_key("num")
                && !clean.contains_key("bad[key]")
                && !clean.contains_key("long")
        );
        assert!(sanitize_metadata(&json!({"n": 1})).is_none());
        assert!(sanitize_metadata(&json!("x")).is_none());
    }

    #[test]
    fn the_allowlist_drops_nulls_inside_config_objects_and_reduces_reasoning() {
        let body = obj(json!({
            "model": "m", "junk": 1, "text": {}, "user": null,
            "reasoning": {"effort": "high", "mode": "x", "summary": null, "exclude": false},
            "provider": {"zdr": true, "sort": null},
            "tools": [{"type": "function", "name": "f", "parameters": {"default": null}}]
        }));
        let out = allowlist(
            body,
            &["model", "text", "user", "reasoning", "provider", "tools"],
        );
        assert_eq!(
            Value::Object(out),
            json!({"model": "m", "reasoning": {"effort": "high", "exclude": false},
                   "provider": {"zdr": true},
                   "tools": [{"type": "function", "name": "f", "parameters": {"default": null}}]})
        );
    }

    #[test]
    fn provider_slugs_follow_openrouters_pattern() {
        for ok in ["openai", "together/fp8", "a-b/c-d", "x1"] {
            assert!(is_provider_slug(ok), "{ok}");
        }
        for bad in ["", "Open", "a/b/c", "a/", "/b", "a b", "a_b"] {
            assert!(!is_provider_slug(bad), "{bad}");
        }
    }
}
