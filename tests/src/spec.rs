//! Request bodies checked against OpenRouter's own OpenAPI document.
//!
//! The fake would otherwise accept anything shaped roughly like JSON, so a translation bug (a
//! field OpenRouter rejects, a content block in the wrong shape, a `null` where the API wants
//! the key absent) would only show up against the real service. Here the copy of the spec kept
//! in `tests/spec/` (see its README) is loaded once, and each request schema is compiled as a
//! root document `{"$ref": "#/components/schemas/X", "components": …}` so its internal
//! `$ref`s resolve without any network or file access. The request schema names are looked up
//! from the `POST /responses` and `POST /chat/completions` operations, so a rename in a newer
//! spec does not silently disable the check.

use std::sync::OnceLock;

use jsonschema::{Draft, Validator};
use serde_json::{Value, json};

/// Where the spec lives: a copy kept in this crate.
pub const SPEC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/spec/openrouter-openapi.yaml");

/// Longest message kept per violation: a failed `anyOf` quotes the whole offending value, which
/// for an input item can be a base64 image of several megabytes.
const MAX_MESSAGE_CHARS: usize = 600;

/// Why the validators could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read the OpenAPI document {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the OpenAPI document is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("the OpenAPI document has no `components` object")]
    NoComponents,
    #[error("the OpenAPI document names no request schema for {0}")]
    NoRequestSchema(&'static str),
    #[error("the request schema {schema} does not compile: {message}")]
    Compile { schema: String, message: String },
}

/// The two compiled request validators.
struct Validators {
    responses: Validator,
    chat: Validator,
}

fn validators() -> &'static Result<Validators, SpecError> {
    static VALIDATORS: OnceLock<Result<Validators, SpecError>> = OnceLock::new();
    VALIDATORS.get_or_init(build_validators)
}

fn build_validators() -> Result<Validators, SpecError> {
    let text = std::fs::read_to_string(SPEC_PATH).map_err(|source| SpecError::Read {
        path: SPEC_PATH.to_owned(),
        source,
    })?;
    let spec: Value = serde_yaml_ng::from_str(&text)?;
    let mut components = spec
        .get("components")
        .cloned()
        .ok_or(SpecError::NoComponents)?;
    apply_extend_overrides(&mut components);
    let components = &components;
    let responses = request_schema_name(&spec, "/responses")
        .ok_or(SpecError::NoRequestSchema("POST /responses"))?;
    let chat = request_schema_name(&spec, "/chat/completions")
        .ok_or(SpecError::NoRequestSchema("POST /chat/completions"))?;
    Ok(Validators {
        responses: compile(components, &responses)?,
        chat: compile(components, &chat)?,
    })
}

/// The `components/schemas` name of an operation's JSON request body.
fn request_schema_name(spec: &Value, path: &str) -> Option<String> {
    let pointer = format!(
        "/paths/{}/post/requestBody/content/application~1json/schema/$ref",
        path.replace('~', "~0").replace('/', "~1")
    );
    spec.pointer(&pointer)
        .and_then(Value::as_str)
        .and_then(|reference| reference.strip_prefix("#/components/schemas/"))
        .map(str::to_owned)
}

/// The spec is generated from Zod schemas, and Zod's `.extend()` comes out as
/// `allOf: [{$ref: Base}, {properties: {…}}]`. Read literally, a property the extension
/// redefines must then satisfy both definitions (so `TextExtendedConfig.verbosity`, which adds
/// `xhigh` and `max`, would accept only the three values common to both enums), while the
/// service applies the override. Each such `$ref` is replaced by a copy of the base without the
/// redefined properties; everything else in the base (other properties, `required`,
/// `additionalProperties`) still applies. Returns the names of the schemas rewritten.
fn apply_extend_overrides(components: &mut Value) -> Vec<String> {
    let Some(schemas) = components
        .get("schemas")
        .and_then(Value::as_object)
        .cloned()
    else {
        return Vec::new();
    };
    let mut rewritten = Vec::new();
    for (name, schema) in &schemas {
        let Some(parts) = schema.get("allOf").and_then(Value::as_array) else {
            continue;
        };
        let redefined: Vec<String> = parts
            .iter()
            .filter(|part| part.get("$ref").is_none())
            .filter_map(|part| part.get("properties").and_then(Value::as_object))
            .flat_map(|properties| properties.keys().cloned())
            .collect();
        let mut new_parts = Vec::with_capacity(parts.len());
        let mut changed = false;
        for part in parts {
            let base = part
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                .and_then(|base| schemas.get(base));
            let Some(mut base) = base.cloned() else {
                new_parts.push(part.clone());
                continue;
            };
            let Some(properties) = base.get_mut("properties").and_then(Value::as_object_mut) else {
                new_parts.push(part.clone());
                continue;
            };
            let before = properties.len();
            properties.retain(|key, _| !redefined.contains(key));
            if properties.len() == before {
                new_parts.push(part.clone());
            } else {
                changed = true;
                new_parts.push(base);
            }
        }
        if changed
            && let Some(target) = components
                .pointer_mut(&format!(
                    "/schemas/{}",
                    name.replace('~', "~0").replace('/', "~1")
                ))
                .and_then(Value::as_object_mut)
        {
            target.insert("allOf".to_owned(), Value::Array(new_parts));
            rewritten.push(name.clone());
        }
    }
    rewritten
}

fn compile(components: &Value, schema: &str) -> Result<Validator, SpecError> {
    let root = json!({
        "$ref": format!("#/components/schemas/{schema}"),
        "components": components,
    });
    // OpenAPI 3.1 schemas are JSON Schema 2020-12; `format` stays an annotation, as OpenRouter
    // documents `format: double` on plain numbers.
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(false)
        .build(&root)
        .map_err(|error| SpecError::Compile {
            schema: schema.to_owned(),
            message: error.to_string(),
        })
}

fn check(pick: fn(&Validators) -> &Validator, body: &Value) -> Result<(), Vec<String>> {
    let validator = match validators() {
        Ok(validators) => pick(validators),
        Err(error) => return Err(vec![format!("spec unavailable: {error}")]),
    };
    let messages: Vec<String> = validator
        .iter_errors(body)
        .map(|error| {
            let path = error.instance_path().to_string();
            let path = if path.is_empty() {
                "/".to_owned()
            } else {
                path
            };
            shorten(&format!("{path}: {error}"))
        })
        .collect();
    if messages.is_empty() {
        Ok(())
    } else {
        Err(messages)
    }
}

fn shorten(message: &str) -> String {
    if message.chars().count() <= MAX_MESSAGE_CHARS {
        return message.to_owned();
    }
    let mut short: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
    short.push('…');
    short
}

/// Checks a `POST /responses` body against the spec's request schema (`ResponsesRequest`).
///
/// # Errors
/// One message per violation (`<instance path>: <reason>`), or one message saying why the spec
/// could not be loaded.
pub fn validate_responses_request(body: &Value) -> Result<(), Vec<String>> {
    check(|validators| &validators.responses, body)
}

/// Checks a `POST /chat/completions` body against the spec's request schema (`ChatRequest`).
///
/// # Errors
/// As [`validate_responses_request`].
pub fn validate_chat_request(body: &Value) -> Result<(), Vec<String>> {
    check(|validators| &validators.chat, body)
}

/// A request-body check: `Ok`, or one message per violation.
pub type BodyValidator = fn(&Value) -> Result<(), Vec<String>>;

/// Which validator applies to a request path (query string ignored), if any.
#[must_use]
pub fn validator_for_path(path: &str) -> Option<BodyValidator> {
    let path = path.split('?').next().unwrap_or(path);
    match path.strip_prefix(crate::API_PREFIX).unwrap_or(path) {
        "/responses" => Some(validate_responses_request),
        "/chat/completions" => Some(validate_chat_request),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_text(text: &str) -> Value {
        json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
    }

    #[test]
    fn the_spec_loads_and_names_both_request_schemas() {
        let text = std::fs::read_to_string(SPEC_PATH).unwrap();
        let spec: Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(
            request_schema_name(&spec, "/responses").as_deref(),
            Some("ResponsesRequest")
        );
        assert_eq!(
            request_schema_name(&spec, "/chat/completions").as_deref(),
            Some("ChatRequest")
        );
        assert!(validators().is_ok());
    }

    #[test]
    fn a_minimal_responses_body_passes() {
        let body = json!({"model": "openai/gpt-4o", "input": [user_text("hi")], "stream": true});
        assert_eq!(validate_responses_request(&body), Ok(()));
    }

    #[test]
    fn a_full_responses_body_as_the_pipe_builds_it_passes() {
        let body = json!({
            "model": "anthropic/claude-sonnet-4.5",
            "input": [
                {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "be brief"}]},
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "look"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "auto"},
                    {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,AAAA"},
                    {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
                    {"type": "input_video", "video_url": "https://example.com/v.mp4"}
                ]},
                {"type": "message", "role": "assistant", "id": "msg_2", "status": "completed",
                 "content": [{"type": "output_text", "text": "ok", "annotations": []}]},
                {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}
            ],
            "stream": true,
            "max_output_tokens": 1000,
            "temperature": 0.5,
            "top_k": 40,
            "reasoning": {"effort": "medium", "summary": "auto", "enabled": true},
            "tools": [
                {"type": "function", "name": "get_weather", "description": "w", "parameters": {"type": "object", "properties": {}}},
                {"type": "openrouter:web_search"},
                {"type": "openrouter:web_fetch"},
                {"type": "openrouter:datetime"}
            ],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}, "strict": true}, "verbosity": "high"},
            "plugins": [{"id": "context-compression"}],
            "provider": {"zdr": true, "only": ["openai"], "order": ["openai", "azure"]},
            "models": ["openai/gpt-4o-mini"],
            "trace": {"trace_name": "t"},
            "user": "user-1",
            "session_id": "abc",
            "metadata": {"user_id": "user-1", "chat_id": "c"},
            "cache_control": {"type": "ephemeral", "ttl": "5m"}
        });
        assert_eq!(validate_responses_request(&body), Ok(()));
    }

    #[test]
    fn extended_schemas_take_the_extension_s_definition_of_a_redefined_property() {
        // TextExtendedConfig extends TextConfig (high|low|medium) with …|xhigh|max for Claude.
        for verbosity in ["max", "xhigh", "medium"] {
            let body = json!({"model": "a/b", "input": "hi", "text": {"verbosity": verbosity}});
            assert_eq!(validate_responses_request(&body), Ok(()), "{verbosity}");
        }
        // The override replaces the property; it does not switch the check off.
        let body = json!({"model": "a/b", "input": "hi", "text": {"verbosity": "loud"}});
        let errors = validate_responses_request(&body).unwrap_err();
        assert!(
            errors.iter().all(|e| e.starts_with("/text/verbosity:")),
            "{errors:?}"
        );
        // The base's other properties are still checked.
        let body = json!({"model": "a/b", "input": "hi", "text": {"format": {"type": "nonsense"}}});
        assert!(validate_responses_request(&body).is_err());
    }

    #[test]
    fn only_allofs_that_redefine_a_base_property_are_rewritten() {
        let mut components = json!({"schemas": {
            "Base": {"type": "object", "properties": {"a": {"enum": [1]}, "b": {"type": "string"}}, "required": ["b"]},
            "Extended": {"allOf": [{"$ref": "#/components/schemas/Base"}, {"properties": {"a": {"enum": [1, 2]}}}]},
            "Added": {"allOf": [{"$ref": "#/components/schemas/Base"}, {"properties": {"c": {"type": "string"}}}]}
        }});
        assert_eq!(
            apply_extend_overrides(&mut components),
            vec!["Extended".to_owned()]
        );
        assert_eq!(
            components["schemas"]["Extended"]["allOf"][0],
            json!({"type": "object", "properties": {"b": {"type": "string"}}, "required": ["b"]})
        );
        assert_eq!(
            components["schemas"]["Added"]["allOf"][0],
            json!({"$ref": "#/components/schemas/Base"})
        );
    }

    #[test]
    fn a_wrongly_typed_model_fails_and_names_the_field() {
        let errors = validate_responses_request(&json!({"model": 1})).unwrap_err();
        assert!(
            errors.iter().any(|e| e.starts_with("/model:")),
            "{errors:?}"
        );
    }

    #[test]
    fn nulls_and_misshaped_items_are_reported() {
        let body = json!({
            "model": "a/b",
            "user": null,
            "input": [{"type": "message", "role": "user",
                       "content": [{"type": "input_image", "image_url": "https://x/y.png"}]}]
        });
        let errors = validate_responses_request(&body).unwrap_err();
        assert!(errors.iter().any(|e| e.starts_with("/user:")), "{errors:?}");
        // `detail` is required on input_image.
        assert!(errors.iter().any(|e| e.starts_with("/input")), "{errors:?}");
    }

    #[test]
    fn an_unknown_top_level_field_passes_because_the_schema_allows_extra_properties() {
        // ResponsesRequest and ChatRequest set no `additionalProperties: false`, so fields the
        // reference sends that the spec does not list (`thinking_config`, `include_reasoning`,
        // `verbosity`) are not violations; ProviderPreferences does forbid unknown keys.
        let body =
            json!({"model": "a/b", "input": "hi", "thinking_config": {"include_thoughts": true}});
        assert_eq!(validate_responses_request(&body), Ok(()));
        let body = json!({"model": "a/b", "input": "hi", "provider": {"fastest": true}});
        assert!(validate_responses_request(&body).is_err());
    }

    #[test]
    fn a_chat_body_is_checked_against_the_chat_schema() {
        let good = json!({
            "model": "openai/gpt-4o",
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral", "ttl": "5m"}}]},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "done"}
            ],
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": 100,
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
        });
        assert_eq!(validate_chat_request(&good), Ok(()));
        let bad = json!({"model": "openai/gpt-4o", "messages": []});
        let errors = validate_chat_request(&bad).unwrap_err();
        assert!(
            errors.iter().any(|e| e.starts_with("/messages")),
            "{errors:?}"
        );
        let bad = json!({"model": "a/b", "messages": [{"role": "tool", "content": "x"}]});
        assert!(
            validate_chat_request(&bad).is_err(),
            "tool_call_id is required"
        );
    }

    #[test]
    fn request_paths_pick_their_validator() {
        assert!(validator_for_path("/api/v1/responses").is_some());
        assert!(validator_for_path("/api/v1/chat/completions?x=1").is_some());
        assert!(validator_for_path("/api/v1/models").is_none());
    }

    #[test]
    fn long_messages_are_shortened() {
        let long = "x".repeat(5000);
        assert_eq!(shorten(&long).chars().count(), MAX_MESSAGE_CHARS + 1);
        assert_eq!(shorten("short"), "short");
    }
}
