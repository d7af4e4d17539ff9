//! Tools, `tool_choice` and structured-output formats, between the Chat Completions shapes
//! Open WebUI sends and the flat Responses shapes, plus OpenRouter's server tools
//! (`openrouter:web_search`, `openrouter:web_fetch`, `openrouter:datetime`).

use super::RequestSettings;
use crate::chat_body::InvalidBody;
use crate::model::ModelInfo;
use serde_json::{Map, Value, json};

/// The longest function (and structured-output schema) name OpenRouter takes.
const MAX_FUNCTION_NAME_CHARS: usize = 64;

/// The schema a function tool without one gets (the spec requires `parameters`).
fn empty_parameters() -> Value {
    json!({"type": "object", "properties": {}})
}

fn non_empty_str(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// One tool in the Responses shape, or `None` for a tool that cannot be sent (no name).
/// Chat `{"type":"function","function":{…}}` is flattened; a flat one is cleaned; server
/// tools and other types pass unchanged.
fn tool_to_responses(tool: &Value) -> Option<Value> {
    let Value::Object(t) = tool else { return None };
    let kind = t.get("type").and_then(Value::as_str).unwrap_or("function");
    if kind != "function" {
        return Some(tool.clone());
    }
    let function = t.get("function").and_then(Value::as_object);
    let field = |key: &str| t.get(key).or_else(|| function.and_then(|f| f.get(key)));
    let name = non_empty_str(field("name"))?;
    let mut out = Map::new();
    out.insert("type".into(), json!("function"));
    out.insert("name".into(), json!(name));
    if let Some(description) = non_empty_str(field("description")) {
        out.insert("description".into(), json!(description));
    }
    let parameters = field("parameters")
        .filter(|p| p.is_object())
        .cloned()
        .unwrap_or_else(empty_parameters);
    out.insert("parameters".into(), parameters);
    if let Some(strict) = field("strict").filter(|s| s.is_boolean()) {
        out.insert("strict".into(), strict.clone());
    }
    if let Some(cc) = t.get("cache_control").filter(|c| c.is_object()) {
        out.insert("cache_control".into(), cc.clone());
    }
    Some(Value::Object(out))
}

/// Legacy `functions` entries (`{name, description, parameters}`) as function tools.
fn legacy_function(f: &Value) -> Option<Value> {
    let mut wrapped = Map::new();
    wrapped.insert("type".into(), json!("function"));
    wrapped.insert("function".into(), f.clone());
    tool_to_responses(&Value::Object(wrapped))
}

/// A `tool_choice` in the Responses shape; `None` when it names nothing usable.
fn tool_choice_to_responses(choice: &Value) -> Option<Value> {
    match choice {
        Value::String(s) => {
            let s = s.trim().to_ascii_lowercase();
            matches!(s.as_str(), "auto" | "none" | "required").then(|| Value::String(s))
        }
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            let name = non_empty_str(o.get("name"))
                .or_else(|| non_empty_str(o.get("function").and_then(|f| f.get("name"))))?;
            Some(json!({"type": "function", "name": name}))
        }
        // A server-tool choice names its tool in `type`; an object without one names nothing.
        Value::Object(o) if non_empty_str(o.get("type")).is_some() => Some(choice.clone()),
        _ => None,
    }
}

/// Legacy `function_call` → `tool_choice`: `"auto"`/`"none"` or a named function.
fn function_call_to_tool_choice(call: &Value) -> Option<Value> {
    match call {
        Value::String(s) => {
            let s = s.trim().to_ascii_lowercase();
            matches!(s.as_str(), "auto" | "none").then(|| Value::String(s))
        }
        Value::Object(o) => {
            let name = non_empty_str(o.get("name"))
                .or_else(|| non_empty_str(o.get("function").and_then(|f| f.get("name"))))?;
            Some(json!({"type": "function", "name": name}))
        }
        _ => None,
    }
}

/// `tools` (plus legacy `functions` and filter-supplied `extra_tools`) and `tool_choice` (or
/// legacy `function_call`) in the Responses shape. Function tools are de-duplicated by name,
/// first one kept, since a repeated name is rejected upstream.
pub(super) fn normalise(body: &mut Map<String, Value>) -> Result<(), InvalidBody> {
    let mut list = match body.remove("tools") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list.iter().filter_map(tool_to_responses).collect(),
        Some(_) => return Err(InvalidBody("`tools` must be an array".into())),
    };
    if let Some(Value::Array(extra)) = body.remove("extra_tools") {
        list.extend(extra.iter().filter_map(tool_to_responses));
    }
    if let Some(Value::Array(functions)) = body.remove("functions") {
        list.extend(functions.iter().filter_map(legacy_function));
    }
    if let Some(long) = list.iter().find_map(|tool| {
        tool.get("name")
            .and_then(Value::as_str)
            .filter(|name| name.chars().count() > MAX_FUNCTION_NAME_CHARS)
    }) {
        let shown: String = long.chars().take(40).collect();
        return Err(InvalidBody(format!(
            "the tool name `{shown}…` is longer than {MAX_FUNCTION_NAME_CHARS} characters"
        )));
    }
    let mut seen: Vec<String> = Vec::new();
    list.retain(|tool| {
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            return true;
        }
        let name = tool
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if seen.contains(&name) {
            return false;
        }
        seen.push(name);
        true
    });
    if !list.is_empty() {
        body.insert("tools".into(), Value::Array(list));
    }
    let legacy_choice = body.remove("function_call");
    let choice = match body.remove("tool_choice") {
        Some(choice) if !choice.is_null() => tool_choice_to_responses(&choice),
        _ => legacy_choice
            .as_ref()
            .and_then(function_call_to_tool_choice),
    };
    if let Some(choice) = choice {
        body.insert("tool_choice".into(), choice);
    }
    Ok(())
}

/// A `tool_choice` without tools to choose from is rejected (named function) or meaningless.
pub(super) fn drop_dangling_tool_choice(body: &mut Map<String, Value>) {
    let has_tools = body
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    if !has_tools {
        body.remove("tool_choice");
    }
}

/// A chat `response_format` (or a Responses `text.format`) → the Responses `text.format`;
/// `None` when invalid.
fn format_to_responses(format: &Value) -> Option<Value> {
    let Value::Object(f) = format else {
        return None;
    };
    match f.get("type").and_then(Value::as_str)? {
        kind @ ("text" | "json_object") => Some(json!({"type": kind})),
        "json_schema" => {
            // Chat nests under `json_schema`; Responses is flat. Accept either.
            let spec = f.get("json_schema").and_then(Value::as_object).unwrap_or(f);
            let name = non_empty_str(spec.get("name"))
                .filter(|name| name.chars().count() <= MAX_FUNCTION_NAME_CHARS)?;
            let schema = spec.get("schema").filter(|s| s.is_object())?;
            let mut out = Map::new();
            out.insert("type".into(), json!("json_schema"));
            out.insert("name".into(), json!(name));
            out.insert("schema".into(), schema.clone());
            if let Some(description) = non_empty_str(spec.get("description")) {
                out.insert("description".into(), json!(description));
            }
            if let Some(strict) = spec.get("strict").filter(|s| s.is_boolean()) {
                out.insert("strict".into(), strict.clone());
            }
            Some(Value::Object(out))
        }
        _ => None,
    }
}

/// A Responses `text.format` → the chat `response_format`.
pub(super) fn format_to_chat(format: &Value) -> Option<Value> {
    let flat = format_to_responses(format)?;
    if flat.get("type").and_then(Value::as_str) != Some("json_schema") {
        return Some(flat);
    }
    let mut spec = flat.as_object().cloned().unwrap_or_default();
    spec.remove("type");
    Some(json!({"type": "json_schema", "json_schema": spec}))
}

/// `text` holds the structured-output format and verbosity: the caller's `text.format` wins
/// over `response_format`, an invalid format is dropped, and a top-level `verbosity` moves
/// into `text.verbosity` unless that is set.
pub(super) fn normalise_text_format(body: &mut Map<String, Value>) {
    let response_format = body.remove("response_format");
    let verbosity = body.remove("verbosity");
    let mut text = match body.remove("text") {
        Some(Value::Object(t)) => t,
        _ => Map::new(),
    };
    let existing = text.remove("format");
    let format = existing
        .as_ref()
        .and_then(format_to_responses)
        .or_else(|| response_format.as_ref().and_then(format_to_responses));
    if let Some(format) = format {
        text.insert("format".into(), format);
    }
    if let Some(v) = verbosity.filter(|v| v.is_string())
        && text.get("verbosity").is_none_or(Value::is_null)
    {
        text.insert("verbosity".into(), v);
    }
    if !text.is_empty() {
        body.insert("text".into(), Value::Object(text));
    }
}

fn has_tool_type(tools: &[Value], kind: &str) -> bool {
    tools
        .iter()
        .any(|t| t.get("type").and_then(Value::as_str) == Some(kind))
}

/// `ENABLE_WEB_SEARCH` / `ENABLE_WEB_FETCH` / `ENABLE_DATETIME` → OpenRouter's server tools,
/// for models that call tools and do not output images (image models' providers fail on tool
/// use). Only for chats that asked for them (`openrouter_web_search`, or
/// `AUTO_DEFAULT_WEB_TOOLS_FILTER`), never for tasks: the caller decides.
pub(super) fn add_server_tools(
    body: &mut Map<String, Value>,
    model: &ModelInfo,
    settings: &RequestSettings,
) {
    if !model.capabilities.tools || model.capabilities.image_output {
        return;
    }
    let mut tools = match body.remove("tools") {
        Some(Value::Array(t)) => t,
        _ => Vec::new(),
    };
    let web_plugin = body
        .get("plugins")
        .and_then(Value::as_array)
        .is_some_and(|p| {
            p.iter()
                .any(|p| p.get("id").and_then(Value::as_str) == Some("web"))
        });
    for (enabled, kind) in [
        // The legacy `web` plugin already searches; a second search tool would double it.
        (
            settings.enable_web_search && !web_plugin,
            "openrouter:web_search",
        ),
        (settings.enable_web_fetch, "openrouter:web_fetch"),
        (settings.enable_datetime, "openrouter:datetime"),
    ] {
        if enabled && !has_tool_type(&tools, kind) {
            tools.push(json!({"type": kind}));
        }
    }
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools));
    }
}

/// `disable_native_websearch`: no `openrouter:web_search` tool, no `web` plugin, no
/// `web_search_options`.
pub(super) fn strip_native_web_search(body: &mut Map<String, Value>) {
    body.remove("web_search_options");
    for (key, is_web) in [
        (
            "tools",
            (|v: &Value| v.get("type").and_then(Value::as_str) == Some("openrouter:web_search"))
                as fn(&Value) -> bool,
        ),
        ("plugins", |v: &Value| {
            v.get("id").and_then(Value::as_str) == Some("web")
        }),
    ] {
        if let Some(Value::Array(list)) = body.get_mut(key) {
            list.retain(|v| !is_web(v));
            if list.is_empty() {
                body.remove(key);
            }
        }
    }
}

/// A Responses-shape tool → the chat shape (server tools unchanged).
pub(super) fn tool_to_chat(tool: &Value) -> Value {
    let Some(t) = tool.as_object() else {
        return tool.clone();
    };
    if t.get("type").and_then(Value::as_str) != Some("function") {
        return tool.clone();
    }
    let mut function = Map::new();
    for key in ["name", "description", "parameters", "strict"] {
        if let Some(v) = t.get(key) {
            function.insert(key.into(), v.clone());
        }
    }
    let mut out = Map::new();
    out.insert("type".into(), json!("function"));
    out.insert("function".into(), Value::Object(function));
    if let Some(cc) = t.get("cache_control") {
        out.insert("cache_control".into(), cc.clone());
    }
    Value::Object(out)
}

/// A Responses-shape `tool_choice` → the chat shape.
pub(super) fn tool_choice_to_chat(choice: Value) -> Value {
    match &choice {
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            match non_empty_str(o.get("name")) {
                Some(name) => json!({"type": "function", "function": {"name": name}}),
                None => choice,
            }
        }
        _ => choice,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::test_support::{model, request};
    use crate::request::{Identity, build_chat_completions_request, build_responses_request};

    fn quiet() -> RequestSettings {
        RequestSettings {
            enable_web_search: false,
            enable_web_fetch: false,
            enable_datetime: false,
            ..RequestSettings::default()
        }
    }

    fn base(extra: Value) -> Value {
        let mut b = json!({"model": "x", "messages": [{"role": "user", "content": "hi"}]});
        if let (Some(b), Value::Object(extra)) = (b.as_object_mut(), extra) {
            b.extend(extra);
        }
        b
    }

    fn responses(extra: Value, s: &RequestSettings, m: &ModelInfo) -> Value {
        build_responses_request(&request(base(extra)), m, s, &Identity::default(), false)
            .unwrap()
            .body
    }

    fn chat(extra: Value, s: &RequestSettings, m: &ModelInfo) -> Value {
        build_chat_completions_request(&request(base(extra)), m, s, &Identity::default(), false)
            .unwrap()
            .body
    }

    #[test]
    fn a_function_name_over_64_characters_is_refused_and_a_schema_name_dropped() {
        let long = "f".repeat(65);
        let body = json!({"model": "x", "messages": [{"role": "user", "content": "hi"}],
                          "tools": [{"type": "function", "function": {"name": long}}]});
        let err = build_responses_request(
            &request(body),
            &model("openai/gpt-4o"),
            &quiet(),
            &Identity::default(),
            false,
        )
        .unwrap_err();
        assert!(err.0.contains("longer than 64 characters"), "{err}");
        let body = json!({"model": "x", "messages": [{"role": "user", "content": "hi"}],
                          "tools": [{"type": "function", "function": {"name": "f".repeat(64)}}],
                          "response_format": {"type": "json_schema",
                                              "json_schema": {"name": long, "schema": {}}}});
        let built = build_responses_request(
            &request(body),
            &model("openai/gpt-4o"),
            &quiet(),
            &Identity::default(),
            false,
        )
        .unwrap();
        assert_eq!(built.body["tools"][0]["name"], "f".repeat(64));
        assert!(built.body.get("text").is_none(), "{}", built.body);
    }

    #[test]
    fn a_tool_choice_object_without_a_type_is_dropped() {
        for choice in [json!({}), json!({"type": ""}), json!({"type": 3})] {
            let body = json!({"model": "x", "messages": [{"role": "user", "content": "hi"}],
                              "tools": [{"type": "function", "function": {"name": "a"}}],
                              "tool_choice": choice});
            let built = build_responses_request(
                &request(body),
                &model("openai/gpt-4o"),
                &quiet(),
                &Identity::default(),
                false,
            )
            .unwrap();
            assert!(built.body.get("tool_choice").is_none(), "{}", built.body);
        }
    }

    #[test]
    fn chat_tools_are_flattened_and_back() {
        let m = model("openai/gpt-4o");
        let extra = json!({
            "tools": [
                {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                  "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}},
                {"type": "function", "function": {"name": "no_params"}},
                {"type": "function", "function": {"description": "nameless"}},
                {"type": "function", "function": {"name": "get_weather", "parameters": {}}},
                {"type": "openrouter:web_search", "parameters": {"max_results": 3}}
            ],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}}
        });
        let body = responses(extra.clone(), &quiet(), &m);
        assert_eq!(
            body["tools"],
            json!([
                {"type": "function", "name": "get_weather", "description": "Weather",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true},
                {"type": "function", "name": "no_params", "parameters": {"type": "object", "properties": {}}},
                {"type": "openrouter:web_search", "parameters": {"max_results": 3}}
            ])
        );
        assert_eq!(
            body["tool_choice"],
            json!({"type": "function", "name": "get_weather"})
        );
        let body = chat(extra, &quiet(), &m);
        assert_eq!(
            body["tools"][0],
            json!({"type": "function", "function": {"name": "get_weather", "description": "Weather",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}})
        );
        assert_eq!(
            body["tools"][2],
            json!({"type": "openrouter:web_search", "parameters": {"max_results": 3}})
        );
        assert_eq!(
            body["tool_choice"],
            json!({"type": "function", "function": {"name": "get_weather"}})
        );
    }

    #[test]
    fn tool_choice_strings_are_kept_and_junk_dropped() {
        let m = model("openai/gpt-4o");
        let tools = json!([{"type": "function", "function": {"name": "f"}}]);
        for (choice, expected) in [
            (json!("AUTO"), Some(json!("auto"))),
            (json!("required"), Some(json!("required"))),
            (json!("sometimes"), None),
            (json!({"type": "function"}), None),
            (json!(3), None),
        ] {
            let body = responses(json!({"tools": tools, "tool_choice": choice}), &quiet(), &m);
            assert_eq!(body.get("tool_choice"), expected.as_ref());
        }
        let body = responses(json!({"tool_choice": "auto"}), &quiet(), &m);
        assert!(body.get("tool_choice").is_none(), "no tools, no choice");
    }

    #[test]
    fn legacy_functions_and_function_call_become_tools_and_tool_choice() {
        let m = model("openai/gpt-4o");
        let body = responses(
            json!({"functions": [{"name": "lookup", "parameters": {"type": "object"}}],
                   "function_call": {"name": "lookup"}}),
            &quiet(),
            &m,
        );
        assert_eq!(
            body["tools"],
            json!([{"type": "function", "name": "lookup", "parameters": {"type": "object"}}])
        );
        assert_eq!(
            body["tool_choice"],
            json!({"type": "function", "name": "lookup"})
        );
        assert!(body.get("functions").is_none() && body.get("function_call").is_none());
        let body = responses(
            json!({"functions": [{"name": "lookup"}], "function_call": "none", "tool_choice": "required"}),
            &quiet(),
            &m,
        );
        assert_eq!(
            body["tool_choice"], "required",
            "tool_choice wins over function_call"
        );
    }

    #[test]
    fn a_non_array_tools_field_is_refused() {
        let req = request(base(json!({"tools": {"type": "function"}})));
        let err =
            build_responses_request(&req, &model("a/b"), &quiet(), &Identity::default(), false)
                .unwrap_err();
        assert!(err.0.contains("`tools`"));
    }

    #[test]
    fn response_format_moves_to_text_format_and_back() {
        let m = model("openai/gpt-4o");
        let schema = json!({"type": "object", "properties": {"a": {"type": "number"}}});
        let chat_format = json!({"type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema, "strict": true, "description": "d"}});
        let body = responses(json!({"response_format": chat_format}), &quiet(), &m);
        assert_eq!(
            body["text"],
            json!({"format": {"type": "json_schema", "name": "answer", "schema": schema,
                              "strict": true, "description": "d"}})
        );
        assert!(body.get("response_format").is_none());
        let body = chat(json!({"response_format": chat_format}), &quiet(), &m);
        assert_eq!(body["response_format"], chat_format);
        let body = responses(
            json!({"response_format": {"type": "json_object"}, "text": {"format": {"type": "text"}}}),
            &quiet(),
            &m,
        );
        assert_eq!(
            body["text"],
            json!({"format": {"type": "text"}}),
            "text.format wins"
        );
        for invalid in [
            json!({"type": "json_schema", "json_schema": {"schema": {}}}),
            json!({"type": "yaml"}),
            json!("json"),
        ] {
            let body = responses(json!({"response_format": invalid}), &quiet(), &m);
            assert!(body.get("text").is_none(), "{invalid}");
        }
        let body = responses(json!({"verbosity": "low"}), &quiet(), &m);
        assert_eq!(body["text"], json!({"verbosity": "low"}));
    }

    #[test]
    fn server_tools_are_added_for_tool_capable_text_models_only() {
        let s = RequestSettings::default();
        let body = responses(
            json!({"openrouter_web_search": true}),
            &s,
            &model("openai/gpt-4o"),
        );
        assert_eq!(
            body["tools"],
            json!([{"type": "openrouter:web_search"}, {"type": "openrouter:web_fetch"}, {"type": "openrouter:datetime"}])
        );
        let only_fetch = RequestSettings {
            enable_web_search: false,
            enable_datetime: false,
            ..RequestSettings::default()
        };
        let body = responses(
            json!({"openrouter_web_search": true}),
            &only_fetch,
            &model("openai/gpt-4o"),
        );
        assert_eq!(body["tools"], json!([{"type": "openrouter:web_fetch"}]));
        let mut image = model("google/gemini-2.5-flash-image");
        image.capabilities.image_output = true;
        assert!(
            responses(json!({"openrouter_web_search": true}), &s, &image)
                .get("tools")
                .is_none()
        );
        let mut no_tools = model("a/b");
        no_tools.capabilities.tools = false;
        assert!(
            responses(json!({"openrouter_web_search": true}), &s, &no_tools)
                .get("tools")
                .is_none()
        );
        let body = responses(
            json!({"openrouter_web_search": true, "tools": [{"type": "openrouter:web_search", "parameters": {"max_results": 2}}]}),
            &s,
            &model("openai/gpt-4o"),
        );
        assert_eq!(
            body["tools"].as_array().unwrap().len(),
            3,
            "no duplicate web_search"
        );
        let body = responses(
            json!({"openrouter_web_search": true, "plugins": [{"id": "web"}]}),
            &s,
            &model("openai/gpt-4o"),
        );
        assert!(!has_tool_type(
            body["tools"].as_array().unwrap(),
            "openrouter:web_search"
        ));
        let built = build_responses_request(
            &request(base(json!({"openrouter_web_search": true}))),
            &model("openai/gpt-4o"),
            &s,
            &Identity::default(),
            true,
        )
        .unwrap();
        assert!(built.body.get("tools").is_none(), "never for tasks");
    }

    #[test]
    fn disable_native_websearch_strips_every_web_search_path() {
        let s = RequestSettings::default();
        let m = model("openai/gpt-4o");
        let extra = json!({
            "disable_native_websearch": "true",
            "openrouter_web_search": true,
            "tools": [{"type": "openrouter:web_search"}, {"type": "function", "function": {"name": "f"}}],
            "plugins": [{"id": "web"}, {"id": "file-parser"}],
            "web_search_options": {"search_context_size": "high"}
        });
        let body = chat(extra.clone(), &s, &m);
        let tools = body["tools"].as_array().unwrap();
        assert!(!has_tool_type(tools, "openrouter:web_search"));
        assert!(has_tool_type(tools, "openrouter:web_fetch"));
        assert_eq!(
            body["plugins"],
            json!([{"id": "file-parser"}, {"id": "context-compression"}])
        );
        assert!(body.get("web_search_options").is_none());
        assert!(body.get("disable_native_websearch").is_none());
        let body = responses(
            json!({"disable_native_websearch": false, "openrouter_web_search": true}),
            &s,
            &m,
        );
        assert!(has_tool_type(
            body["tools"].as_array().unwrap(),
            "openrouter:web_search"
        ));
    }

    #[test]
    fn server_tools_are_attached_only_when_the_chat_asks_or_the_default_is_on() {
        let m = model("openai/gpt-4o");
        let all = json!([{"type": "openrouter:web_search"}, {"type": "openrouter:web_fetch"}, {"type": "openrouter:datetime"}]);
        let s = RequestSettings::default();
        assert!(!s.auto_default_web_tools_filter, "off by default");
        for asked in [
            json!({}),
            json!({"openrouter_web_search": false}),
            json!({"openrouter_web_search": null}),
        ] {
            let body = responses(asked.clone(), &s, &m);
            assert!(body.get("tools").is_none(), "{asked}: {body}");
            assert!(body.get("openrouter_web_search").is_none());
            let body = chat(asked.clone(), &s, &m);
            assert!(body.get("tools").is_none(), "{asked}: {body}");
        }
        for asked in [
            json!({"openrouter_web_search": true}),
            json!({"openrouter_web_search": "on"}),
        ] {
            let body = responses(asked.clone(), &s, &m);
            assert_eq!(body["tools"], all, "{asked}");
            assert!(
                body.get("openrouter_web_search").is_none(),
                "never sent upstream"
            );
        }
        let default_on = RequestSettings {
            auto_default_web_tools_filter: true,
            ..RequestSettings::default()
        };
        assert_eq!(responses(json!({}), &default_on, &m)["tools"], all);
        let body = responses(json!({"openrouter_web_search": false}), &default_on, &m);
        assert!(
            body.get("tools").is_none(),
            "a chat can switch the default off"
        );
    }
}
