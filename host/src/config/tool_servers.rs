//! Operator-declared tool servers (`[[tool_servers]]` tables in the config file): OpenAPI servers
//! and MCP servers over streamable HTTP, whose tools the host serves to the component through the
//! `tools` import.
//!
//! ```toml
//! [[tool_servers]]
//! name = "weather"                  # [a-z0-9_]+, unique; prefixes tool names on collision
//! kind = "openapi"                  # or "mcp"
//! url = "https://tools.example.com" # OpenAPI base URL, or the MCP endpoint URL
//! spec = "/openapi.json"            # OpenAPI: spec path on the server (or `operations`)
//! auth_header = "Authorization"     # optional
//! auth_env = "WEATHER_TOOL_TOKEN"   # the header value, read from this environment variable
//! ```
//!
//! `operations` (OpenAPI only, instead of `spec`) is an inline OpenAPI `paths` object written in
//! TOML, e.g. `[tool_servers.operations."/weather/{city}".get]` with `operationId`, `parameters`
//! and `requestBody` as in a spec document.
//!
//! Threat handled: secret leakage. The auth header's value comes from the environment only (the
//! file names the variable), is held as a `SecretString`, and is never part of `Debug` output or
//! an error message. Every problem stops start-up naming the server and the key.

use std::collections::BTreeSet;
use std::fmt;

use secrecy::SecretString;
use serde_json::Value;

/// Longest server name; it prefixes tool names, which OpenAI caps at 64 characters.
const MAX_NAME_CHARS: usize = 32;

/// What protocol a tool server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolServerKind {
    /// A plain HTTP API described by an OpenAPI 3 document.
    OpenApi,
    /// A Model Context Protocol server over streamable HTTP.
    Mcp,
}

impl ToolServerKind {
    /// The spelling used in the config file and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenApi => "openapi",
            Self::Mcp => "mcp",
        }
    }
}

/// Where an OpenAPI server's operations come from.
#[derive(Debug, Clone, PartialEq)]
pub enum OperationsSource {
    /// A path on the server (joined to its origin), fetched at start-up.
    SpecPath(String),
    /// An inline OpenAPI `paths` object.
    Inline(Value),
}

/// One validated `[[tool_servers]]` entry.
pub struct ToolServerDecl {
    /// `[a-z0-9_]+`, unique among the servers.
    pub name: String,
    pub kind: ToolServerKind,
    /// The OpenAPI base URL or the MCP endpoint (http/https, no credentials, query or fragment).
    pub url: url::Url,
    /// Canonical `(host, port)` of `url`, as the egress policy compares it.
    pub authority: (String, u16),
    /// OpenAPI only.
    pub operations: Option<OperationsSource>,
    /// Header name and its secret value, added by the host to this server's requests only.
    pub auth: Option<(String, SecretString)>,
}

impl fmt::Debug for ToolServerDecl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolServerDecl")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &self.url.as_str())
            .field(
                "operations",
                &self.operations.as_ref().map(|o| match o {
                    OperationsSource::SpecPath(p) => p.clone(),
                    OperationsSource::Inline(_) => "<inline>".to_owned(),
                }),
            )
            .field(
                "auth_header",
                &self.auth.as_ref().map(|(name, _)| name.as_str()),
            )
            .finish()
    }
}

/// Why a declaration was refused: which entry, which key, what is wrong. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tool_servers[{index}]{}: key `{key}`: {problem}", name_part(.name))]
pub struct ToolServerProblem {
    /// Position in the file, from 0.
    pub index: usize,
    /// The entry's `name`, when it had a usable one.
    pub name: Option<String>,
    pub key: String,
    pub problem: String,
}

fn name_part(name: &Option<String>) -> String {
    name.as_ref().map(|n| format!(" ({n})")).unwrap_or_default()
}

/// Parse and validate the `tool_servers` value of the config file. `env` reads the variables
/// named by `auth_env`. Every problem is collected.
pub(crate) fn parse(
    value: &toml::Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<ToolServerDecl>, Vec<ToolServerProblem>> {
    let Some(entries) = value.as_array() else {
        return Err(vec![ToolServerProblem {
            index: 0,
            name: None,
            key: "tool_servers".to_owned(),
            problem: "must be an array of tables ([[tool_servers]])".to_owned(),
        }]);
    };
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    for (index, entry) in entries.iter().enumerate() {
        match parse_one(index, entry, env) {
            Ok(decl) => {
                if !names.insert(decl.name.clone()) {
                    problems.push(ToolServerProblem {
                        index,
                        name: Some(decl.name.clone()),
                        key: "name".to_owned(),
                        problem: "is used by another tool server".to_owned(),
                    });
                } else {
                    out.push(decl);
                }
            }
            Err(mut p) => problems.append(&mut p),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

const KEYS: [&str; 7] = [
    "name",
    "kind",
    "url",
    "spec",
    "operations",
    "auth_header",
    "auth_env",
];

fn parse_one(
    index: usize,
    entry: &toml::Value,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ToolServerDecl, Vec<ToolServerProblem>> {
    let mut problems = Vec::new();
    let Some(table) = entry.as_table() else {
        return Err(vec![ToolServerProblem {
            index,
            name: None,
            key: "tool_servers".to_owned(),
            problem: "each entry must be a table".to_owned(),
        }]);
    };
    let shown_name = table
        .get("name")
        .and_then(toml::Value::as_str)
        .filter(|n| valid_name(n))
        .map(str::to_owned);
    let mut problem = |key: &str, text: &str| {
        problems.push(ToolServerProblem {
            index,
            name: shown_name.clone(),
            key: key.to_owned(),
            problem: text.to_owned(),
        });
    };
    for key in table.keys() {
        if !KEYS.contains(&key.as_str()) {
            problem(
                key,
                &format!("is not a tool server setting (known: {})", KEYS.join(", ")),
            );
        }
    }
    let text = |key: &'static str| table.get(key).map(|v| v.as_str().ok_or(key));

    let name = match text("name") {
        None => {
            problem("name", "is required");
            None
        }
        Some(Err(_)) => {
            problem("name", "must be a string");
            None
        }
        Some(Ok(n)) if !valid_name(n) => {
            problem(
                "name",
                &format!("must match [a-z0-9_]+ and have at most {MAX_NAME_CHARS} characters"),
            );
            None
        }
        Some(Ok(n)) => Some(n.to_owned()),
    };
    let kind = match text("kind") {
        None => {
            problem("kind", "is required (\"openapi\" or \"mcp\")");
            None
        }
        Some(Ok(k)) if k.eq_ignore_ascii_case("openapi") => Some(ToolServerKind::OpenApi),
        Some(Ok(k)) if k.eq_ignore_ascii_case("mcp") => Some(ToolServerKind::Mcp),
        Some(_) => {
            problem("kind", "must be \"openapi\" or \"mcp\"");
            None
        }
    };
    let url = match text("url") {
        None => {
            problem("url", "is required");
            None
        }
        Some(Err(_)) => {
            problem("url", "must be a string");
            None
        }
        Some(Ok(raw)) => match super::parse::http_url(raw) {
            Some(url) if url.query().is_none() && url.fragment().is_none() => Some(url),
            Some(_) => {
                problem("url", "must not contain a query (?...) or fragment (#...)");
                None
            }
            None => {
                problem(
                    "url",
                    "must be an absolute http:// or https:// URL without credentials",
                );
                None
            }
        },
    };
    let authority = url.as_ref().and_then(|u| {
        let found = crate::egress::policy::Authority::from_url(u);
        if found.is_none() {
            problem("url", "has no host or port the egress gate can check");
        }
        found.map(|a| (a.host, a.port))
    });

    let spec = text("spec");
    let inline = table.get("operations");
    let operations = match (kind, spec, inline) {
        (Some(ToolServerKind::Mcp), s, i) => {
            if s.is_some() {
                problem("spec", "is only for kind = \"openapi\"");
            }
            if i.is_some() {
                problem("operations", "is only for kind = \"openapi\"");
            }
            None
        }
        (Some(ToolServerKind::OpenApi), Some(_), Some(_)) => {
            problem("spec", "give either `spec` or `operations`, not both");
            None
        }
        (Some(ToolServerKind::OpenApi), None, None) => {
            problem(
                "spec",
                "an OpenAPI server needs `spec` (a path such as \"/openapi.json\") or `operations`",
            );
            None
        }
        (Some(ToolServerKind::OpenApi), Some(Ok(path)), None) => {
            if path.starts_with('/') && !path.starts_with("//") {
                Some(OperationsSource::SpecPath(path.to_owned()))
            } else {
                problem(
                    "spec",
                    "must be a path on the server starting with `/` (e.g. \"/openapi.json\")",
                );
                None
            }
        }
        (Some(ToolServerKind::OpenApi), Some(Err(_)), None) => {
            problem("spec", "must be a string");
            None
        }
        (Some(ToolServerKind::OpenApi), None, Some(ops)) => match toml_to_json(ops) {
            Value::Object(map) if !map.is_empty() => {
                Some(OperationsSource::Inline(Value::Object(map)))
            }
            _ => {
                problem(
                    "operations",
                    "must be a non-empty OpenAPI `paths` table ([tool_servers.operations.\"/path\".get])",
                );
                None
            }
        },
        (None, _, _) => None,
    };

    let auth = match (text("auth_header"), text("auth_env")) {
        (None, None) => None,
        (Some(_), None) => {
            problem("auth_env", "is required with `auth_header`");
            None
        }
        (None, Some(_)) => {
            problem("auth_header", "is required with `auth_env`");
            None
        }
        (Some(Ok(header)), Some(Ok(var))) => {
            let header_ok = http::HeaderName::from_bytes(header.as_bytes())
                .ok()
                .filter(|h| !RESERVED_HEADERS.contains(&h.as_str()));
            match header_ok {
                None => {
                    problem(
                        "auth_header",
                        "must be a valid HTTP header name other than host, content-type, content-length, transfer-encoding, connection, accept or mcp-session-id",
                    );
                    None
                }
                Some(h) => match env(var).filter(|v| !v.trim().is_empty()) {
                    None => {
                        problem(
                            "auth_env",
                            &format!("environment variable {var} is not set"),
                        );
                        None
                    }
                    Some(value) if http::HeaderValue::from_str(&value).is_err() => {
                        problem(
                            "auth_env",
                            &format!(
                                "environment variable {var} holds characters a header value cannot carry"
                            ),
                        );
                        None
                    }
                    Some(value) => Some((h.as_str().to_owned(), SecretString::from(value))),
                },
            }
        }
        _ => {
            problem(
                "auth_header",
                "`auth_header` and `auth_env` must be strings",
            );
            None
        }
    };

    match (name, kind, url, authority) {
        (Some(name), Some(kind), Some(url), Some(authority)) if problems.is_empty() => {
            Ok(ToolServerDecl {
                name,
                kind,
                url,
                authority,
                operations,
                auth,
            })
        }
        _ => Err(problems),
    }
}

/// Headers the host sets itself on tool-server requests; an auth header may not replace them.
const RESERVED_HEADERS: [&str; 7] = [
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "accept",
    "mcp-session-id",
];

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// TOML to JSON (datetimes become strings).
fn toml_to_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn parse_text(
        text: &str,
        env: &[(&str, &str)],
    ) -> Result<Vec<ToolServerDecl>, Vec<ToolServerProblem>> {
        let table: toml::Table = toml::from_str(text).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        parse(&table["tool_servers"], &move |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn a_full_declaration_parses_with_its_secret_from_the_environment() {
        let decls = parse_text(
            r#"
            [[tool_servers]]
            name = "weather"
            kind = "openapi"
            url = "https://Tools.Example.com:8443/api"
            spec = "/openapi.json"
            auth_header = "Authorization"
            auth_env = "WEATHER_TOOL_TOKEN"

            [[tool_servers]]
            name = "files"
            kind = "mcp"
            url = "http://10.0.0.5:9000/mcp"
            "#,
            &[("WEATHER_TOOL_TOKEN", "Bearer tool-secret-123")],
        )
        .unwrap();
        assert_eq!(decls.len(), 2);
        assert_eq!(decls[0].name, "weather");
        assert_eq!(decls[0].kind, ToolServerKind::OpenApi);
        assert_eq!(decls[0].authority, ("tools.example.com".to_owned(), 8443));
        assert_eq!(
            decls[0].operations,
            Some(OperationsSource::SpecPath("/openapi.json".into()))
        );
        let (header, value) = decls[0].auth.as_ref().unwrap();
        assert_eq!(header, "authorization");
        assert_eq!(value.expose_secret(), "Bearer tool-secret-123");
        assert!(!format!("{:?}", decls[0]).contains("tool-secret"));
        assert_eq!(decls[1].kind, ToolServerKind::Mcp);
        assert_eq!(decls[1].authority, ("10.0.0.5".to_owned(), 9000));
        assert!(decls[1].auth.is_none());
    }

    #[test]
    fn a_declaration_allowlists_its_authority_for_the_host_only_never_as_private_and_errors_stop_loading()
     {
        use std::io::Write as _;
        let load = |text: &str, env: &[(&str, &str)]| {
            let mut f = tempfile::NamedTempFile::new().unwrap();
            f.write_all(text.as_bytes()).unwrap();
            let env: Vec<(String, String)> = env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            crate::config::Config::load(Some(f.path()), &move |k| {
                env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
            })
        };
        let decl = "MODEL_ID = \"auto\"\n[[TOOL_SERVERS]]\nname = \"local\"\nkind = \"mcp\"\nurl = \"http://127.0.0.1:7001/mcp\"\nauth_header = \"X-Key\"\nauth_env = \"LOCAL_KEY\"\n";
        let config = load(decl, &[("LOCAL_KEY", "k-SECRET")]).unwrap();
        assert_eq!(config.tool_servers().len(), 1);
        assert!(
            config
                .host_egress_allowed()
                .contains(&("127.0.0.1".to_owned(), 7001))
        );
        // The component reaches a tool server only through the host's tool transport.
        assert!(
            !config
                .egress_allowed()
                .contains(&("127.0.0.1".to_owned(), 7001))
        );
        assert!(
            !config
                .egress_private_ok()
                .contains(&("127.0.0.1".to_owned(), 7001))
        );
        assert!(!format!("{config:?}").contains("k-SECRET"));

        let err = load(decl, &[]).err().unwrap().to_string();
        assert!(
            err.contains("tool_servers[0] (local): key `auth_env`"),
            "{err}"
        );
        assert!(!config.guest_settings_json().contains("tool_servers"));
    }

    #[test]
    fn the_readme_example_declares_three_working_servers() {
        let readme = include_str!("../../../README.md");
        let section = readme.split("## Tool servers").nth(1).unwrap();
        let block = section
            .split("```toml\n")
            .nth(1)
            .unwrap()
            .split("```")
            .next()
            .unwrap();
        let decls = parse_text(block, &[("WEATHER_TOOL_TOKEN", "t")]).unwrap();
        let names: Vec<_> = decls.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["weather", "calc", "files"]);
        let Some(OperationsSource::Inline(paths)) = &decls[1].operations else {
            panic!("inline operations expected");
        };
        let ops =
            crate::tools::openapi::operations(&serde_json::json!({ "paths": paths })).unwrap();
        assert_eq!(ops[0].name, "add");
        assert_eq!(ops[0].schema["properties"]["a"]["type"], "number");
    }

    #[test]
    fn inline_operations_are_kept_as_a_paths_object() {
        let decls = parse_text(
            r#"
            [[tool_servers]]
            name = "calc"
            kind = "openapi"
            url = "http://calc.example"
            [tool_servers.operations."/add".post]
            operationId = "add"
            "#,
            &[],
        )
        .unwrap();
        match &decls[0].operations {
            Some(OperationsSource::Inline(v)) => {
                assert_eq!(v["/add"]["post"]["operationId"], "add");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_problem_names_the_entry_and_the_key_and_never_the_secret() {
        let problems = parse_text(
            r#"
            [[tool_servers]]
            name = "Bad-Name"
            kind = "soap"
            url = "ftp://x"
            colour = "blue"

            [[tool_servers]]
            name = "weather"
            kind = "openapi"
            url = "https://tools.example.com"
            auth_header = "Authorization"
            auth_env = "MISSING_TOKEN"

            [[tool_servers]]
            name = "dup"
            kind = "mcp"
            url = "https://a.example/mcp"
            spec = "/x"

            [[tool_servers]]
            name = "ok"
            kind = "mcp"
            url = "https://a.example/mcp"

            [[tool_servers]]
            name = "ok"
            kind = "mcp"
            url = "https://b.example/mcp"
            "#,
            &[],
        )
        .unwrap_err();
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let all = text.join("\n");
        for expected in [
            "tool_servers[0]: key `colour`",
            "tool_servers[0]: key `name`",
            "tool_servers[0]: key `kind`",
            "tool_servers[0]: key `url`",
            "tool_servers[1] (weather): key `spec`",
            "tool_servers[1] (weather): key `auth_env`: environment variable MISSING_TOKEN is not set",
            "tool_servers[2] (dup): key `spec`: is only for kind = \"openapi\"",
            "tool_servers[4] (ok): key `name`: is used by another tool server",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }

    #[test]
    fn a_header_value_the_environment_cannot_carry_is_refused_without_showing_it() {
        let problems = parse_text(
            r#"
            [[tool_servers]]
            name = "w"
            kind = "mcp"
            url = "https://a.example/mcp"
            auth_header = "X-Api-Key"
            auth_env = "TOKEN"
            "#,
            &[("TOKEN", "secret\nvalue")],
        )
        .unwrap_err();
        let all = problems[0].to_string();
        assert!(all.contains("TOKEN"), "{all}");
        assert!(!all.contains("secret"), "{all}");
    }
}
