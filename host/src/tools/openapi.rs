//! OpenAPI tool servers: an OpenAPI 3 document (JSON, or YAML) turned into one tool per
//! operation, and a tool call turned back into the HTTP request the operation describes.
//!
//! Each operation's path, query and header parameters and its JSON request body are merged into
//! one JSON Schema object, the shape a model's function call carries: body properties sit beside
//! the parameters when no name collides, otherwise the body is one `body` property. Local `$ref`s
//! (`#/components/...`) are inlined (cycles and very deep nesting become an open schema), so the
//! component gets self-contained schemas. The tool name is the `operationId` (characters a
//! function name cannot carry become `_`), or `<method>_<path>` when there is none.
//!
//! Threat handled: a call's arguments come from a model. They only ever fill the declared
//! parameters: path values are percent-encoded as one segment each (a `../` or `/` in a value
//! cannot change the path), query values are form-encoded, header parameters may not name
//! hop-by-hop, credential or framing headers, and the request always goes to the declared base
//! URL's origin.

use std::collections::BTreeSet;

use http::{HeaderName, HeaderValue, Method};
use serde_json::{Map, Value, json};

/// Longest tool name OpenAI-style function calling accepts.
pub const MAX_TOOL_NAME_CHARS: usize = 64;
/// Longest description kept per tool.
const MAX_DESCRIPTION_CHARS: usize = 1024;
/// How deep `$ref`s are followed while inlining a schema.
const MAX_REF_DEPTH: usize = 12;
/// Most operations taken from one document.
const MAX_OPERATIONS: usize = 512;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Headers a model-filled header parameter may never set.
const FORBIDDEN_PARAM_HEADERS: [&str; 14] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "accept",
    "mcp-session-id",
];

/// Why a document could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("the spec is neither JSON nor YAML: {0}")]
    Parse(String),
    #[error("the spec has no `paths` object")]
    NoPaths,
    #[error("the spec describes no operation")]
    NoOperations,
}

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
    Header,
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub location: Location,
    pub required: bool,
}

/// How the JSON body is carried in the arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyMode {
    /// The body's properties sit beside the parameters.
    Merged,
    /// The body is the `body` argument.
    Wrapped,
}

/// One operation, ready to be offered as a tool and invoked.
#[derive(Debug, Clone)]
pub struct Operation {
    pub name: String,
    pub description: String,
    pub method: Method,
    /// The path template, e.g. `/weather/{city}`.
    pub path: String,
    pub params: Vec<Param>,
    pub body: Option<BodyMode>,
    pub body_required: bool,
    /// The merged JSON Schema of the arguments.
    pub schema: Value,
}

/// Parse a document (JSON first, then YAML).
pub fn parse_document(bytes: &[u8]) -> Result<Value, SpecError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => Ok(v),
        Err(json_err) => serde_yaml_ng::from_slice::<Value>(bytes)
            .map_err(|yaml_err| SpecError::Parse(format!("JSON: {json_err}; YAML: {yaml_err}"))),
    }
}

/// Every operation of a document.
pub fn operations(doc: &Value) -> Result<Vec<Operation>, SpecError> {
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or(SpecError::NoPaths)?;
    let mut out = Vec::new();
    for (path, item) in paths {
        let item = resolve(doc, item);
        let shared = item
            .get("parameters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for method in METHODS {
            let Some(op) = item.get(method) else {
                continue;
            };
            if out.len() >= MAX_OPERATIONS {
                break;
            }
            if let Some(op) = operation(doc, path, method, op, &shared) {
                out.push(op);
            }
        }
    }
    if out.is_empty() {
        return Err(SpecError::NoOperations);
    }
    Ok(out)
}

fn operation(
    doc: &Value,
    path: &str,
    method: &str,
    op: &Value,
    shared: &[Value],
) -> Option<Operation> {
    let op = resolve(doc, op);
    let http_method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).ok()?;
    let name = match op.get("operationId").and_then(Value::as_str) {
        Some(id) if !id.trim().is_empty() => sanitize_name(id),
        _ => sanitize_name(&format!("{method}_{path}")),
    };
    let description = [
        op.get("summary").and_then(Value::as_str),
        op.get("description").and_then(Value::as_str),
    ]
    .into_iter()
    .flatten()
    .map(str::trim)
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join("\n\n");
    let description = description.chars().take(MAX_DESCRIPTION_CHARS).collect();

    // Operation parameters override path-item ones with the same name and location.
    let mut raw_params: Vec<&Value> = Vec::new();
    let own: Vec<&Value> = op
        .get("parameters")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|p| resolve(doc, p)).collect())
        .unwrap_or_default();
    for p in shared.iter().map(|p| resolve(doc, p)) {
        let overridden = own
            .iter()
            .any(|o| o.get("name") == p.get("name") && o.get("in") == p.get("in"));
        if !overridden {
            raw_params.push(p);
        }
    }
    raw_params.extend(own);

    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut params = Vec::new();
    let mut body_schema = None;
    let mut body_required = false;
    for p in raw_params {
        let Some(pname) = p.get("name").and_then(Value::as_str) else {
            continue;
        };
        let location = match p.get("in").and_then(Value::as_str) {
            Some("path") => Location::Path,
            Some("query") => Location::Query,
            Some("header") => {
                if FORBIDDEN_PARAM_HEADERS.contains(&pname.to_ascii_lowercase().as_str()) {
                    continue;
                }
                Location::Header
            }
            // Swagger 2 style body parameter.
            Some("body") => {
                body_schema = p.get("schema").map(|s| inline(doc, s, 0));
                body_required = p.get("required").and_then(Value::as_bool).unwrap_or(false);
                continue;
            }
            _ => continue,
        };
        let is_required = location == Location::Path
            || p.get("required").and_then(Value::as_bool).unwrap_or(false);
        let mut schema = param_schema(doc, p);
        if let (Some(obj), Some(desc)) = (
            schema.as_object_mut(),
            p.get("description").and_then(Value::as_str),
        ) && !obj.contains_key("description")
        {
            obj.insert("description".into(), Value::String(desc.to_owned()));
        }
        properties.insert(pname.to_owned(), schema);
        if is_required {
            required.push(pname.to_owned());
        }
        params.push(Param {
            name: pname.to_owned(),
            location,
            required: is_required,
        });
    }

    if let Some(rb) = op.get("requestBody") {
        let rb = resolve(doc, rb);
        body_required = rb.get("required").and_then(Value::as_bool).unwrap_or(false);
        body_schema = json_media_schema(rb.get("content")).map(|s| inline(doc, s, 0));
    }

    let body = body_schema.map(|schema| {
        let props = schema.get("properties").and_then(Value::as_object);
        let collides = props.is_some_and(|props| props.keys().any(|k| properties.contains_key(k)));
        match props {
            Some(props) if !collides => {
                for (k, v) in props {
                    properties.insert(k.clone(), v.clone());
                }
                if body_required && let Some(req) = schema.get("required").and_then(Value::as_array)
                {
                    required.extend(req.iter().filter_map(Value::as_str).map(str::to_owned));
                }
                BodyMode::Merged
            }
            _ => {
                let mut schema = schema;
                if let Some(obj) = schema.as_object_mut() {
                    obj.entry("description")
                        .or_insert_with(|| Value::String("The JSON request body.".into()));
                }
                properties.insert("body".into(), schema);
                if body_required {
                    required.push("body".into());
                }
                BodyMode::Wrapped
            }
        }
    });

    let mut schema = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        dedup(&mut required);
        schema["required"] = Value::from(required);
    }
    Some(Operation {
        name,
        description,
        method: http_method,
        path: path.to_owned(),
        params,
        body,
        body_required,
        schema,
    })
}

fn dedup(list: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    list.retain(|s| seen.insert(s.clone()));
}

/// The schema of a parameter: `schema`, else the first `content` media type's, else the
/// Swagger 2 inline `type`/`items`/`enum`, else a string.
fn param_schema(doc: &Value, p: &Value) -> Value {
    if let Some(s) = p.get("schema") {
        return inline(doc, s, 0);
    }
    if let Some(s) = p
        .get("content")
        .and_then(Value::as_object)
        .and_then(|c| c.values().next())
        .and_then(|m| m.get("schema"))
    {
        return inline(doc, s, 0);
    }
    let mut out = Map::new();
    for key in ["type", "items", "enum", "format"] {
        if let Some(v) = p.get(key) {
            out.insert(key.to_owned(), inline(doc, v, 0));
        }
    }
    if out.is_empty() {
        out.insert("type".into(), Value::from("string"));
    }
    Value::Object(out)
}

/// The schema of the JSON media type of a `content` map (`application/json`, a `+json` type, or
/// the only one given).
fn json_media_schema(content: Option<&Value>) -> Option<&Value> {
    let content = content?.as_object()?;
    let pick = content
        .iter()
        .find(|(k, _)| k.starts_with("application/json"))
        .or_else(|| content.iter().find(|(k, _)| k.contains("+json")))
        .or_else(|| {
            (content.len() == 1)
                .then(|| content.iter().next())
                .flatten()
        })?;
    pick.1.get("schema")
}

/// Follow `$ref`s of an object (a few hops) to what they name; other values as they are.
fn resolve<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..MAX_REF_DEPTH {
        match v
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
        {
            Some(pointer) => match doc.pointer(pointer) {
                Some(target) => v = target,
                None => return v,
            },
            None => return v,
        }
    }
    v
}

/// A copy of `v` with every local `$ref` replaced by what it names; past [`MAX_REF_DEPTH`] (a
/// cycle) a reference becomes `{}` (any value).
fn inline(doc: &Value, v: &Value, depth: usize) -> Value {
    match v {
        Value::Object(map) => {
            if let Some(r) = map.get("$ref").and_then(Value::as_str) {
                if depth >= MAX_REF_DEPTH {
                    return json!({});
                }
                return match r.strip_prefix('#').and_then(|p| doc.pointer(p)) {
                    Some(target) => inline(doc, target, depth + 1),
                    None => json!({}),
                };
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), inline(doc, v, depth)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| inline(doc, v, depth)).collect()),
        other => other.clone(),
    }
}

/// A function name: `[A-Za-z0-9_-]`, other characters as `_`, runs of `_` collapsed, at most
/// [`MAX_TOOL_NAME_CHARS`].
pub fn sanitize_name(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '_'
        };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    let trimmed: String = out
        .trim_matches('_')
        .chars()
        .take(MAX_TOOL_NAME_CHARS)
        .collect();
    if trimmed.is_empty() {
        "tool".to_owned()
    } else {
        trimmed
    }
}

/// The request a call describes.
#[derive(Debug)]
pub struct BuiltRequest {
    pub method: Method,
    pub url: url::Url,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Option<Vec<u8>>,
}

impl Operation {
    /// Build the request for `args` against `base` (the declared URL; its path prefixes the
    /// operation's). Errors are for the model: which argument is missing or unusable.
    pub fn build(
        &self,
        base: &url::Url,
        args: &Map<String, Value>,
    ) -> Result<BuiltRequest, String> {
        let mut url = base.clone();
        url.set_query(None);
        url.set_fragment(None);
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| "the tool server URL cannot carry a path".to_owned())?;
            segments.pop_if_empty();
            for template in self.path.split('/').filter(|s| !s.is_empty()) {
                let segment = self.fill_segment(template, args)?;
                segments.push(&segment);
            }
        }
        let mut headers = Vec::new();
        {
            let mut query = Vec::new();
            for p in &self.params {
                let value = args.get(&p.name).filter(|v| !v.is_null());
                match (p.location, value) {
                    (_, None) if p.required => {
                        return Err(format!("missing required argument `{}`", p.name));
                    }
                    (Location::Query, Some(Value::Array(items))) => {
                        for item in items {
                            query.push((p.name.clone(), scalar_text(item)));
                        }
                    }
                    (Location::Query, Some(v)) => query.push((p.name.clone(), scalar_text(v))),
                    (Location::Header, Some(v)) => {
                        let name = HeaderName::from_bytes(p.name.as_bytes())
                            .map_err(|_| format!("`{}` is not a usable header name", p.name))?;
                        let value = HeaderValue::from_str(&scalar_text(v)).map_err(|_| {
                            format!("argument `{}` cannot be sent as a header", p.name)
                        })?;
                        headers.push((name, value));
                    }
                    _ => {}
                }
            }
            if !query.is_empty() {
                let mut pairs = url.query_pairs_mut();
                for (k, v) in &query {
                    pairs.append_pair(k, v);
                }
            }
        }
        let body = match &self.body {
            None => None,
            Some(BodyMode::Wrapped) => match args.get("body").filter(|v| !v.is_null()) {
                Some(v) => Some(serde_json::to_vec(v).map_err(|e| e.to_string())?),
                None if self.body_required => {
                    return Err("missing required argument `body`".to_owned());
                }
                None => None,
            },
            Some(BodyMode::Merged) => {
                let rest: Map<String, Value> = args
                    .iter()
                    .filter(|(k, _)| !self.params.iter().any(|p| &p.name == *k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if rest.is_empty() && !self.body_required {
                    None
                } else {
                    Some(serde_json::to_vec(&Value::Object(rest)).map_err(|e| e.to_string())?)
                }
            }
        };
        Ok(BuiltRequest {
            method: self.method.clone(),
            url,
            headers,
            body,
        })
    }

    /// One path segment with its `{name}` placeholders filled (percent-encoding happens when the
    /// segment is pushed, so a value can never add a segment).
    fn fill_segment(&self, template: &str, args: &Map<String, Value>) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                return Ok(out);
            };
            let name = &after[..end];
            let value = args
                .get(name)
                .filter(|v| !v.is_null())
                .ok_or_else(|| format!("missing required argument `{name}`"))?;
            let text = scalar_text(value);
            if text.is_empty() {
                return Err(format!("argument `{name}` must not be empty"));
            }
            out.push_str(&text);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        // The URL parser drops `.` and `..` segments; refuse them rather than shorten the path.
        if out == "." || out == ".." {
            return Err(format!("`{out}` is not a usable path value"));
        }
        Ok(out)
    }
}

/// A value as text for a path, query or header: strings as they are, other scalars in JSON form,
/// arrays and objects as JSON.
fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        json!({
            "openapi": "3.1.0",
            "paths": {
                "/weather/{city}": {
                    "parameters": [{"name": "city", "in": "path", "required": true, "schema": {"type": "string"}}],
                    "get": {
                        "operationId": "get_weather",
                        "summary": "Current weather",
                        "parameters": [
                            {"$ref": "#/components/parameters/Units"},
                            {"name": "Authorization", "in": "header", "schema": {"type": "string"}},
                            {"name": "X-Trace", "in": "header", "schema": {"type": "string"}}
                        ]
                    }
                },
                "/notes": {
                    "post": {
                        "operationId": "notes.create",
                        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Note"}}}}
                    }
                },
                "/items/{id}": {
                    "put": {
                        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
                        "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {"id": {"type": "string"}}}}}}
                    }
                }
            },
            "components": {
                "parameters": {"Units": {"name": "units", "in": "query", "description": "metric or imperial", "schema": {"type": "string", "enum": ["metric", "imperial"]}}},
                "schemas": {
                    "Note": {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}, "tags": {"type": "array", "items": {"$ref": "#/components/schemas/Tag"}}, "parent": {"$ref": "#/components/schemas/Note"}}},
                    "Tag": {"type": "string"}
                }
            }
        })
    }

    /// Operations sorted by name (the document's map order depends on serde_json features).
    fn by_name(mut ops: Vec<Operation>) -> Vec<Operation> {
        ops.sort_by(|a, b| a.name.cmp(&b.name));
        ops
    }

    #[test]
    fn operations_become_tools_with_merged_schemas() {
        let ops = by_name(operations(&doc()).unwrap());
        let mut names: Vec<_> = ops.iter().map(|o| o.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["get_weather", "notes_create", "put_items_id"]);
        let weather = &ops[0];
        assert_eq!(weather.description, "Current weather");
        assert_eq!(weather.schema["required"], json!(["city"]));
        assert_eq!(
            weather.schema["properties"]["units"]["enum"],
            json!(["metric", "imperial"])
        );
        assert_eq!(
            weather.schema["properties"]["units"]["description"],
            "metric or imperial"
        );
        // A credential header can never be a model-filled parameter.
        assert!(weather.schema["properties"].get("Authorization").is_none());
        assert!(weather.schema["properties"].get("X-Trace").is_some());

        let notes = &ops[1];
        assert_eq!(notes.body, Some(BodyMode::Merged));
        assert_eq!(notes.schema["required"], json!(["title"]));
        assert_eq!(
            notes.schema["properties"]["tags"]["items"],
            json!({"type": "string"})
        );
        // The recursive reference is inlined to a bounded depth and ends in an open schema.
        let text = notes.schema.to_string();
        assert!(!text.contains("$ref"), "{text}");

        let put = &ops[2];
        assert_eq!(put.body, Some(BodyMode::Wrapped));
        assert!(put.schema["properties"]["body"].is_object());
        assert_eq!(put.schema["required"], json!(["id"]));
    }

    #[test]
    fn a_call_builds_its_request_and_values_cannot_escape_their_segment() {
        let ops = by_name(operations(&doc()).unwrap());
        let base = url::Url::parse("http://tools.example:8080/api/").unwrap();
        let args = json!({"city": "../admin/x?y#z", "units": "metric", "X-Trace": "t1"});
        let built = ops[0].build(&base, args.as_object().unwrap()).unwrap();
        assert_eq!(built.method, Method::GET);
        assert_eq!(
            built.url.as_str(),
            "http://tools.example:8080/api/weather/..%2Fadmin%2Fx%3Fy%23z?units=metric"
        );
        assert_eq!(built.headers.len(), 1);
        assert!(built.body.is_none());

        let err = ops[0]
            .build(&base, json!({}).as_object().unwrap())
            .unwrap_err();
        assert!(err.contains("`city`"), "{err}");

        let err = ops[0]
            .build(&base, json!({"city": ".."}).as_object().unwrap())
            .unwrap_err();
        assert!(err.contains("not a usable path value"), "{err}");

        let built = ops[1]
            .build(
                &base,
                json!({"title": "t", "tags": ["a"]}).as_object().unwrap(),
            )
            .unwrap();
        assert_eq!(built.method, Method::POST);
        let body: Value = serde_json::from_slice(&built.body.unwrap()).unwrap();
        assert_eq!(body, json!({"title": "t", "tags": ["a"]}));

        let built = ops[2]
            .build(
                &base,
                json!({"id": 7, "body": {"id": "x"}}).as_object().unwrap(),
            )
            .unwrap();
        assert_eq!(built.url.path(), "/api/items/7");
        let body: Value = serde_json::from_slice(&built.body.unwrap()).unwrap();
        assert_eq!(body, json!({"id": "x"}));
    }

    #[test]
    fn yaml_documents_parse_and_names_are_sanitized() {
        let yaml =
            b"openapi: 3.0.0\npaths:\n  /a/b:\n    get:\n      operationId: 'weird name.v2!'\n";
        let ops = operations(&parse_document(yaml).unwrap()).unwrap();
        assert_eq!(ops[0].name, "weird_name_v2");
        assert!(matches!(
            operations(&json!({"paths": {}})),
            Err(SpecError::NoOperations)
        ));
        assert!(matches!(operations(&json!({})), Err(SpecError::NoPaths)));
    }
}
