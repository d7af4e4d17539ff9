//! Tool parameter schemas: the strict conversion (`ENABLE_STRICT_TOOL_CALLING`)
//! and validation of a call's arguments against the tool's **original** schema.
//!
//! Validation uses the `jsonschema` crate (built without its HTTP/file resolvers, so it compiles
//! for wasm32-wasip2 and never reaches out).

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

/// Check `value` against `schema` with the `jsonschema` crate (the draft the schema names, else
/// 2020-12; formats are annotations only; no remote `$ref`s are fetched). The error names the
/// first violation and where it is. A schema that does not compile (a broken or remote-only
/// document from a tool server) cannot judge anything: the call goes ahead and the tool server
/// has the last word.
pub fn validate(value: &Value, schema: &Value) -> Result<(), String> {
    let Ok(validator) = jsonschema::options()
        .should_validate_formats(false)
        .build(schema)
    else {
        return Ok(());
    };
    validator.validate(value).map_err(|e| {
        let at = e.instance_path().to_string();
        let place = if at.is_empty() {
            "arguments".to_string()
        } else {
            at
        };
        format!("{place}: {e}")
    })
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
        assert!(e.contains("\"city\" is a required property"), "{e}");
        let e = validate(&json!({"city": "Paris", "units": "kelvin"}), &s).unwrap_err();
        assert!(e.contains("/units"), "{e}");
        let e = validate(&json!({"city": "Paris", "days": 9}), &s).unwrap_err();
        assert!(e.starts_with("/days:") && e.contains('7'), "{e}");
        let e = validate(&json!({"city": "Paris", "days": 1.5}), &s).unwrap_err();
        assert!(e.contains("integer"), "{e}");
        // A schema that cannot compile judges nothing.
        assert!(validate(&json!({"x": 1}), &json!({"type": 12})).is_ok());
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
