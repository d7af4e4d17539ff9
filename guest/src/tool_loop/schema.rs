//! Tool parameter schemas: the strict conversion of REFERENCE §2.6 (`ENABLE_STRICT_TOOL_CALLING`)
//! and validation of a call's arguments against the tool's **original** schema.
//!
//! The validator is a documented subset of JSON Schema, enough for tool parameter schemas as
//! OpenAPI and MCP servers publish them: `type` (one or a list, `integer` included), `enum`,
//! `const`, `properties`, `required`, `additionalProperties` (boolean or schema), `items`,
//! `anyOf`/`oneOf` (at least one branch must match), `allOf`, `$ref` to `#/$defs/…` or
//! `#/definitions/…`, `minLength`/`maxLength`, `minimum`/`maximum`, `minItems`/`maxItems`.
//! Keywords it does not know (`pattern`, `format`, …) are accepted without checking: a call is
//! refused only for a definite violation. (A full validator crate was not taken: the guest must
//! stay small and build for wasm32-wasip2 without a regex engine.)

use serde_json::{Map, Value, json};

/// Keywords strict mode does not accept; removed by [`strictify`].
const UNSUPPORTED: [&str; 14] = [
    "default",
    "$schema",
    "pattern",
    "format",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
];

/// How deep schemas are followed (a bound against cyclic `$ref`s and hostile documents).
const MAX_DEPTH: usize = 32;

/// The strict form of a parameters schema: every object closed (`additionalProperties:false`)
/// with all its properties required and the optional ones made nullable, `$ref`/`$defs` kept,
/// a single-`$ref` `allOf` unwrapped, unsupported keywords removed.
pub fn strictify(schema: &Value) -> Value {
    let mut out = strict_node(schema, 0);
    if !out.is_object() {
        out = json!({"type": "object", "properties": {}});
    }
    if let Some(o) = out.as_object_mut()
        && o.get("type").is_none()
        && o.get("$ref").is_none()
        && o.get("anyOf").is_none()
    {
        o.insert("type".into(), json!("object"));
        o.entry("properties").or_insert_with(|| json!({}));
        o.insert("additionalProperties".into(), Value::Bool(false));
        o.entry("required").or_insert_with(|| json!([]));
    }
    out
}

fn strict_node(schema: &Value, depth: usize) -> Value {
    let Value::Object(src) = schema else {
        return schema.clone();
    };
    if depth > MAX_DEPTH {
        return Value::Object(src.clone());
    }
    // `allOf: [{$ref}]` → the ref itself.
    if let Some(Value::Array(all)) = src.get("allOf")
        && all.len() == 1
        && all[0].get("$ref").is_some()
    {
        let mut merged = src.clone();
        merged.remove("allOf");
        if let Some(Value::Object(r)) = all.first() {
            for (k, v) in r {
                merged.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        return strict_node(&Value::Object(merged), depth + 1);
    }
    let mut o = Map::new();
    for (k, v) in src {
        if UNSUPPORTED.contains(&k.as_str()) {
            continue;
        }
        let v = match k.as_str() {
            "properties" => match v {
                Value::Object(props) => Value::Object(
                    props
                        .iter()
                        .map(|(name, p)| (name.clone(), strict_node(p, depth + 1)))
                        .collect(),
                ),
                other => other.clone(),
            },
            "$defs" | "definitions" => match v {
                Value::Object(defs) => Value::Object(
                    defs.iter()
                        .map(|(name, d)| (name.clone(), strict_node(d, depth + 1)))
                        .collect(),
                ),
                other => other.clone(),
            },
            "items" => strict_node(v, depth + 1),
            "anyOf" | "oneOf" | "allOf" => match v {
                Value::Array(branches) => {
                    Value::Array(branches.iter().map(|b| strict_node(b, depth + 1)).collect())
                }
                other => other.clone(),
            },
            _ => v.clone(),
        };
        // Strict mode knows `anyOf`, not `oneOf`.
        let key = if k == "oneOf" { "anyOf" } else { k.as_str() };
        o.insert(key.to_string(), v);
    }
    let is_object = o.get("type").and_then(Value::as_str) == Some("object")
        || (o.get("type").is_none() && o.contains_key("properties"));
    if is_object {
        let props = o
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let required: Vec<String> = o
            .get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let mut new_props = Map::new();
        for (name, p) in props {
            let p = if required.contains(&name) {
                p
            } else {
                nullable(p)
            };
            new_props.insert(name, p);
        }
        let all: Vec<Value> = new_props.keys().map(|k| json!(k)).collect();
        o.insert("type".into(), json!("object"));
        o.insert("properties".into(), Value::Object(new_props));
        o.insert("required".into(), Value::Array(all));
        o.insert("additionalProperties".into(), Value::Bool(false));
    }
    Value::Object(o)
}

/// A schema that also accepts `null`.
fn nullable(schema: Value) -> Value {
    let Value::Object(mut o) = schema else {
        return json!({"anyOf": [schema, {"type": "null"}]});
    };
    match o.get("type").cloned() {
        Some(Value::String(t)) if t != "null" => {
            o.insert("type".into(), json!([t, "null"]));
            if let Some(Value::Array(e)) = o.get_mut("enum")
                && !e.contains(&Value::Null)
            {
                e.push(Value::Null);
            }
            Value::Object(o)
        }
        Some(Value::Array(mut ts)) => {
            if !ts.contains(&json!("null")) {
                ts.push(json!("null"));
            }
            o.insert("type".into(), Value::Array(ts));
            Value::Object(o)
        }
        Some(_) => Value::Object(o),
        None => json!({"anyOf": [Value::Object(o), {"type": "null"}]}),
    }
}

/// Drop `null` values of properties the original schema does not require (strict mode makes the
/// model send them), at the top level of the arguments object.
pub fn drop_optional_nulls(args: &mut Value, original: &Value) {
    let required: Vec<&str> = original
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Value::Object(o) = args {
        o.retain(|k, v| !v.is_null() || required.contains(&k.as_str()));
    }
}

/// Names of the required top-level parameters.
pub fn required_params(schema: &Value) -> Vec<String> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Check `value` against `schema` (the subset described in the module docs). The error names
/// the first violation with its JSON pointer.
pub fn validate(value: &Value, schema: &Value) -> Result<(), String> {
    check(value, schema, schema, "", 0)
}

fn type_matches(value: &Value, t: &str) -> bool {
    match t {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => true,
    }
}

fn resolve<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let path = reference.strip_prefix('#')?;
    root.pointer(path)
}

fn check(
    value: &Value,
    schema: &Value,
    root: &Value,
    at: &str,
    depth: usize,
) -> Result<(), String> {
    let Value::Object(s) = schema else {
        // `true`/`false` schemas.
        return match schema {
            Value::Bool(false) => Err(format!("{at}: no value is allowed here")),
            _ => Ok(()),
        };
    };
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let place = if at.is_empty() { "arguments" } else { at };
    if let Some(r) = s.get("$ref").and_then(Value::as_str)
        && let Some(target) = resolve(root, r)
    {
        check(value, target, root, at, depth + 1)?;
    }
    match s.get("type") {
        Some(Value::String(t)) if !type_matches(value, t) => {
            return Err(format!("{place}: expected {t}"));
        }
        Some(Value::Array(ts)) => {
            let ok = ts
                .iter()
                .filter_map(Value::as_str)
                .any(|t| type_matches(value, t));
            if !ok {
                return Err(format!(
                    "{place}: expected one of {}",
                    Value::Array(ts.clone())
                ));
            }
        }
        _ => {}
    }
    if let Some(Value::Array(e)) = s.get("enum")
        && !e.contains(value)
    {
        return Err(format!(
            "{place}: must be one of {}",
            Value::Array(e.clone())
        ));
    }
    if let Some(c) = s.get("const")
        && c != value
    {
        return Err(format!("{place}: must be {c}"));
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = s.get(key)
            && !branches.is_empty()
            && !branches
                .iter()
                .any(|b| check(value, b, root, at, depth + 1).is_ok())
        {
            return Err(format!("{place}: matches none of the allowed shapes"));
        }
    }
    if let Some(Value::Array(all)) = s.get("allOf") {
        for b in all {
            check(value, b, root, at, depth + 1)?;
        }
    }
    match value {
        Value::Object(o) => {
            for r in s
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !o.contains_key(r) {
                    return Err(format!("{place}: missing required property `{r}`"));
                }
            }
            let props = s.get("properties").and_then(Value::as_object);
            for (k, v) in o {
                let here = format!("{at}/{k}");
                match props.and_then(|p| p.get(k)) {
                    Some(p) => check(v, p, root, &here, depth + 1)?,
                    None => match s.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            return Err(format!("{place}: unknown property `{k}`"));
                        }
                        Some(extra @ Value::Object(_)) => {
                            check(v, extra, root, &here, depth + 1)?;
                        }
                        _ => {}
                    },
                }
            }
        }
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(min) = s.get("minItems").and_then(Value::as_u64)
                && n < min
            {
                return Err(format!("{place}: needs at least {min} items"));
            }
            if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
                && n > max
            {
                return Err(format!("{place}: allows at most {max} items"));
            }
            if let Some(item_schema) = s.get("items").filter(|i| i.is_object()) {
                for (i, v) in items.iter().enumerate() {
                    check(v, item_schema, root, &format!("{at}/{i}"), depth + 1)?;
                }
            }
        }
        Value::String(text) => {
            let n = text.chars().count() as u64;
            if let Some(min) = s.get("minLength").and_then(Value::as_u64)
                && n < min
            {
                return Err(format!("{place}: shorter than {min} characters"));
            }
            if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
                && n > max
            {
                return Err(format!("{place}: longer than {max} characters"));
            }
        }
        Value::Number(num) => {
            if let Some(x) = num.as_f64() {
                if let Some(min) = s.get("minimum").and_then(Value::as_f64)
                    && x < min
                {
                    return Err(format!("{place}: below the minimum {min}"));
                }
                if let Some(max) = s.get("maximum").and_then(Value::as_f64)
                    && x > max
                {
                    return Err(format!("{place}: above the maximum {max}"));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weather() -> Value {
        json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {
                "city": {"type": "string", "minLength": 1, "description": "City name"},
                "units": {"type": "string", "enum": ["c", "f"], "default": "c"},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "where": {"allOf": [{"$ref": "#/$defs/place"}]}
            },
            "required": ["city"],
            "$defs": {"place": {"type": "object", "properties": {"lat": {"type": "number"}}, "required": ["lat"]}}
        })
    }

    #[test]
    fn strict_conversion_closes_objects_requires_all_and_makes_optional_nullable() {
        let s = strictify(&weather());
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["required"], json!(["city", "days", "units", "where"]));
        assert_eq!(s["properties"]["city"]["type"], "string");
        assert_eq!(s["properties"]["units"]["type"], json!(["string", "null"]));
        assert_eq!(s["properties"]["units"]["enum"], json!(["c", "f", null]));
        assert_eq!(s["properties"]["days"]["type"], json!(["integer", "null"]));
        assert!(s["properties"]["days"].get("minimum").is_none());
        assert!(s.get("$schema").is_none());
        assert!(s["properties"]["units"].get("default").is_none());
        // The single-ref allOf is unwrapped, then made nullable around the ref.
        assert_eq!(
            s["properties"]["where"],
            json!({"anyOf": [{"$ref": "#/$defs/place"}, {"type": "null"}]})
        );
        // $defs are kept (and closed too).
        assert_eq!(s["$defs"]["place"]["additionalProperties"], false);
        // A tool without a schema still gets a closed object.
        assert_eq!(
            strictify(&json!({})),
            json!({"type":"object","properties":{},"additionalProperties":false,"required":[]})
        );
    }

    #[test]
    fn validation_uses_the_original_schema() {
        let s = weather();
        assert!(validate(&json!({"city": "Paris"}), &s).is_ok());
        assert!(
            validate(
                &json!({"city": "Paris", "units": "f", "days": 3, "where": {"lat": 1.5}}),
                &s
            )
            .is_ok()
        );
        let e = validate(&json!({"units": "c"}), &s).unwrap_err();
        assert!(e.contains("missing required property `city`"), "{e}");
        let e = validate(&json!({"city": "Paris", "units": "kelvin"}), &s).unwrap_err();
        assert!(e.contains("/units"), "{e}");
        let e = validate(&json!({"city": "Paris", "days": 9}), &s).unwrap_err();
        assert!(e.contains("maximum"), "{e}");
        let e = validate(&json!({"city": "Paris", "days": 1.5}), &s).unwrap_err();
        assert!(e.contains("integer"), "{e}");
        let e = validate(&json!({"city": "Paris", "where": {}}), &s).unwrap_err();
        assert!(e.contains("lat"), "{e}");
        assert!(validate(&json!({"city": ""}), &s).is_err());
        assert!(validate(&json!("Paris"), &s).is_err());
    }

    #[test]
    fn strict_nulls_for_optional_params_are_dropped_before_validation() {
        let s = weather();
        let mut args = json!({"city": "Paris", "units": null, "days": null, "where": null});
        drop_optional_nulls(&mut args, &s);
        assert_eq!(args, json!({"city": "Paris"}));
        assert!(validate(&args, &s).is_ok());
        assert_eq!(required_params(&s), vec!["city".to_string()]);
    }
}
