//! User-facing error messages: a small Markdown template language, the 14 built-in templates
//! (each overridable by an operator valve) and the variables parsed out of an OpenRouter error
//! response. Pure: callers pass in the error id, the timestamp and every other context value.
//!
//! Values come from untrusted places (upstream error bodies, response headers, the user's own
//! flagged text). They are substituted once and never parsed as template text again, so a value
//! such as `{error_id}` or `{{/if}}` shows up literally; control characters in a value (including
//! newlines) become spaces so a value cannot add a Markdown heading or break a list line.
//!
//! # Template language
//!
//! - `{name}` is replaced by the variable `name` (`name` is ASCII letters, digits and `_`). A
//!   single `{` that does not start such a placeholder is ordinary text.
//! - `{{#if name}} … {{/if}}` keeps its content only when `name` is set to a non-blank value.
//!   Blocks nest and may span lines.
//! - Line rule: after substitution, a line that contained a placeholder whose value was missing or
//!   blank is dropped entirely; so is a line whose visible content was all inside false blocks or
//!   that held nothing but block tags. Lines without any tag or placeholder are kept as written
//!   (unless inside a false block). Runs of blank lines are then collapsed to one, and blank lines
//!   at the start and end are removed.
//! - Any other `{{…}}` tag, a tag not closed on its own line, a `{{/if}}` without an opening tag
//!   or a block left open is a [`TemplateError`]; [`render_or_fallback`] then returns a short
//!   generic message that still carries the error id.
//!
//! # Variables
//!
//! "Parser" means [`vars_from_openrouter_error`] sets it; "caller" means the code raising the
//! error knows it and sets it.
//!
//! | Variable | Set by | Meaning |
//! | --- | --- | --- |
//! | `error_id` | caller | 16-hex-char id also written to the host log |
//! | `timestamp` | caller | when the error happened, UTC ISO-8601 with `Z` |
//! | `session_id`, `user_id` | caller | Open WebUI chat session and user, when known |
//! | `support_email`, `support_url` | [`TemplateSettings::render`] | the `SUPPORT_EMAIL` / `SUPPORT_URL` valves |
//! | `heading` | parser | one-line description of the HTTP status (e.g. "Too many requests") |
//! | `detail` | parser | the most specific message available (provider's, else OpenRouter's) |
//! | `status_code`, `reason` | parser | HTTP status and its standard reason phrase |
//! | `openrouter_code`, `openrouter_message` | parser | `error.code` / `error.message` |
//! | `upstream_message`, `upstream_type` | parser | the provider's own error, from `metadata.raw` |
//! | `provider` | parser | `metadata.provider_name` |
//! | `requested_model` | caller | the model id the user picked |
//! | `api_model_id` | parser, caller | the OpenRouter model slug that was called (`metadata.model_slug`) |
//! | `request_id` | parser | `metadata.request_id` (OpenRouter's id for support) |
//! | `retry_after_seconds` | parser | `Retry-After` header, else `error.availability.retry_after` |
//! | `rate_limit_type` | parser | `X-RateLimit-Scope` header |
//! | `rate_limit_limit`, `rate_limit_remaining`, `rate_limit_reset` | parser | `X-RateLimit-Limit/-Remaining/-Reset` |
//! | `timeout_seconds`, `endpoint` | caller | the client-side timeout that fired and the URL path called |
//! | `error_type` | parser, caller | typed error (`error.type`, `error_type`, `metadata.error_type`) or the failure kind |
//! | `availability`, `fallback_models` | parser | `error.availability.code` and its suggested models |
//! | `required_cost`, `account_balance` | caller | dollars, as plain numbers (templates add `$`) |
//! | `context_limit_tokens`, `max_output_tokens` | caller | the model's limits from the catalog |
//! | `moderation_reasons`, `flagged_excerpt` | parser | `metadata.reasons` and `metadata.flagged_input` (≤ 200 chars) |
//! | `restriction_reasons` | caller | why a model is not allowed (allowlist, filters, ZDR) |
//! | `required_endpoint`, `forced_endpoint` | caller | the two sides of an endpoint override conflict |
//! | `reason` (non-HTTP) | caller | for upload failures and interrupted streams: what went wrong |

use crate::errors;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Why a template could not be rendered. Line numbers are 1-based.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("line {line}: unknown template tag `{tag}`")]
    UnknownTag { line: usize, tag: String },
    #[error("line {line}: a `{{{{` tag is not closed with `}}}}` on the same line")]
    UnterminatedTag { line: usize },
    #[error("line {line}: `{{{{/if}}}}` without a matching `{{{{#if …}}}}`")]
    UnexpectedClose { line: usize },
    #[error("the `{{{{#if {name}}}}}` block opened on line {line} is never closed")]
    UnclosedBlock { name: String, line: usize },
}

/// Template variables by name. A variable that is missing and one set to a blank string are
/// treated alike: placeholders for it drop their line and `{{#if}}` blocks on it are false.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vars(BTreeMap<String, String>);

impl Vars {
    pub fn new() -> Vars {
        Vars::default()
    }

    /// Set (or replace) a variable.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Vars {
        self.0.insert(name.into(), value.into());
        self
    }

    /// Set a variable when there is a value; `None` leaves the variable as it was.
    pub fn set_opt<V: Into<String>>(
        &mut self,
        name: impl Into<String>,
        value: Option<V>,
    ) -> &mut Vars {
        if let Some(value) = value {
            self.0.insert(name.into(), value.into());
        }
        self
    }

    /// The value of a variable, if it is set to something non-blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// Whether a variable holds a non-blank value (the `{{#if}}` test).
    pub fn is_set(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Copy every variable of `other` in, replacing same-named ones.
    pub fn extend(&mut self, other: Vars) -> &mut Vars {
        self.0.extend(other.0);
        self
    }
}

enum Token<'a> {
    Text(&'a str),
    Var(&'a str),
    If(&'a str),
    EndIf,
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn parse_tag(inner: &str, line: usize) -> Result<Token<'_>, TemplateError> {
    let trimmed = inner.trim();
    if trimmed == "/if" {
        return Ok(Token::EndIf);
    }
    if let Some(rest) = trimmed.strip_prefix("#if")
        && rest.starts_with(char::is_whitespace)
        && is_ident(rest.trim())
    {
        return Ok(Token::If(rest.trim()));
    }
    Err(TemplateError::UnknownTag {
        line,
        tag: format!("{{{{{inner}}}}}"),
    })
}

fn tokenize_line(line: &str, line_no: usize) -> Result<Vec<Token<'_>>, TemplateError> {
    let mut tokens = Vec::new();
    let bytes = line.as_bytes();
    let mut literal_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'{' {
            i += 1;
            continue;
        }
        // Every index below sits just after an ASCII byte, so the slices are on char boundaries.
        if bytes.get(i + 1) == Some(&b'{') {
            let after = &line[i + 2..];
            let Some(end) = after.find("}}") else {
                return Err(TemplateError::UnterminatedTag { line: line_no });
            };
            let token = parse_tag(&after[..end], line_no)?;
            if literal_start < i {
                tokens.push(Token::Text(&line[literal_start..i]));
            }
            tokens.push(token);
            i += 2 + end + 2;
            literal_start = i;
            continue;
        }
        let after = &line[i + 1..];
        let name_len = after
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if name_len > 0 && after.as_bytes().get(name_len) == Some(&b'}') {
            if literal_start < i {
                tokens.push(Token::Text(&line[literal_start..i]));
            }
            tokens.push(Token::Var(&after[..name_len]));
            i += 1 + name_len + 1;
            literal_start = i;
            continue;
        }
        // A lone `{` (JSON in a custom template, say) is ordinary text.
        i += 1;
    }
    if literal_start < line.len() {
        tokens.push(Token::Text(&line[literal_start..]));
    }
    Ok(tokens)
}

struct Frame<'a> {
    name: &'a str,
    line: usize,
    /// This block and every enclosing one are true.
    active: bool,
}

/// Append a variable's value; control characters become spaces so one template line stays one
/// output line whatever the value holds.
fn push_value(out: &mut String, value: &str) {
    out.extend(value.chars().map(|c| if c.is_control() { ' ' } else { c }));
}

/// Render a template (see the module doc for the language).
pub fn render(template: &str, vars: &Vars) -> Result<String, TemplateError> {
    let mut stack: Vec<Frame<'_>> = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    for (index, raw_line) in template.split('\n').enumerate() {
        let line_no = index + 1;
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        let tokens = tokenize_line(line, line_no)?;
        let active_at_start = stack.last().is_none_or(|f| f.active);
        if tokens.iter().all(|t| matches!(t, Token::Text(_))) {
            if active_at_start {
                lines.push(line.to_string());
            }
            continue;
        }
        let mut rendered = String::new();
        let mut visible = false;
        let mut missing_value = false;
        for token in tokens {
            let active = stack.last().is_none_or(|f| f.active);
            match token {
                Token::Text(text) => {
                    if active {
                        rendered.push_str(text);
                        visible |= !text.trim().is_empty();
                    }
                }
                Token::Var(name) => {
                    if active {
                        match vars.get(name) {
                            Some(value) => {
                                push_value(&mut rendered, value);
                                visible = true;
                            }
                            None => missing_value = true,
                        }
                    }
                }
                Token::If(name) => stack.push(Frame {
                    name,
                    line: line_no,
                    active: active && vars.is_set(name),
                }),
                Token::EndIf => {
                    if stack.pop().is_none() {
                        return Err(TemplateError::UnexpectedClose { line: line_no });
                    }
                }
            }
        }
        if visible && !missing_value {
            lines.push(rendered);
        }
    }
    if let Some(open) = stack.last() {
        return Err(TemplateError::UnclosedBlock {
            name: open.name.to_string(),
            line: open.line,
        });
    }
    Ok(tidy(lines))
}

/// Collapse blank-line runs left by dropped lines and trim blank lines at both ends.
fn tidy(lines: Vec<String>) -> String {
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    for line in lines {
        let blank = line.trim().is_empty();
        if blank && out.last().is_none_or(|prev| prev.trim().is_empty()) {
            continue;
        }
        out.push(if blank { String::new() } else { line });
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out.join("\n")
}

/// Render, or on a template error return a short generic message naming the error id (only its
/// ASCII letters, digits, `-` and `_` are used, so the fallback itself cannot be malformed).
pub fn render_or_fallback(template: &str, vars: &Vars, error_id: &str) -> String {
    match render(template, vars) {
        Ok(text) => text,
        Err(_) => {
            let id: String = error_id
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            if id.is_empty() {
                "### ⚠️ Request failed\n\nThe request failed, and the error message could not be \
                 displayed."
                    .to_string()
            } else {
                format!(
                    "### ⚠️ Request failed\n\nThe request failed, and the error message could not \
                     be displayed.\n\nError ID: `{id}`"
                )
            }
        }
    }
}

/// The situations that have their own user-facing template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TemplateKind {
    /// OpenRouter rejected the request: HTTP 400 and any 4xx without its own template.
    OpenRouterError,
    /// The model requires one API endpoint but the configuration forces the other.
    EndpointOverrideConflict,
    /// Attachments meant to be sent directly to the model could not be.
    DirectUploadFailure,
    /// HTTP 401.
    Authentication,
    /// HTTP 402.
    InsufficientCredits,
    /// HTTP 429.
    RateLimit,
    /// HTTP 408.
    ServerTimeout,
    /// HTTP 413.
    PayloadTooLarge,
    /// Our own client-side timeout fired.
    NetworkTimeout,
    /// OpenRouter could not be reached.
    ConnectionError,
    /// HTTP 5xx.
    ServiceError,
    /// A failure inside the pipe itself.
    InternalError,
    /// The model is blocked by the allowlist, filters or ZDR policy.
    ModelRestricted,
    /// The stream ended before the model finished.
    StreamInterrupted,
}

impl TemplateKind {
    pub const ALL: [TemplateKind; 14] = [
        TemplateKind::OpenRouterError,
        TemplateKind::EndpointOverrideConflict,
        TemplateKind::DirectUploadFailure,
        TemplateKind::Authentication,
        TemplateKind::InsufficientCredits,
        TemplateKind::RateLimit,
        TemplateKind::ServerTimeout,
        TemplateKind::PayloadTooLarge,
        TemplateKind::NetworkTimeout,
        TemplateKind::ConnectionError,
        TemplateKind::ServiceError,
        TemplateKind::InternalError,
        TemplateKind::ModelRestricted,
        TemplateKind::StreamInterrupted,
    ];

    /// The valve that overrides this template.
    pub fn valve(self) -> &'static str {
        match self {
            TemplateKind::OpenRouterError => "OPENROUTER_ERROR_TEMPLATE",
            TemplateKind::EndpointOverrideConflict => "ENDPOINT_OVERRIDE_CONFLICT_TEMPLATE",
            TemplateKind::DirectUploadFailure => "DIRECT_UPLOAD_FAILURE_TEMPLATE",
            TemplateKind::Authentication => "AUTHENTICATION_ERROR_TEMPLATE",
            TemplateKind::InsufficientCredits => "INSUFFICIENT_CREDITS_TEMPLATE",
            TemplateKind::RateLimit => "RATE_LIMIT_TEMPLATE",
            TemplateKind::ServerTimeout => "SERVER_TIMEOUT_TEMPLATE",
            TemplateKind::PayloadTooLarge => "PAYLOAD_TOO_LARGE_TEMPLATE",
            TemplateKind::NetworkTimeout => "NETWORK_TIMEOUT_TEMPLATE",
            TemplateKind::ConnectionError => "CONNECTION_ERROR_TEMPLATE",
            TemplateKind::ServiceError => "SERVICE_ERROR_TEMPLATE",
            TemplateKind::InternalError => "INTERNAL_ERROR_TEMPLATE",
            TemplateKind::ModelRestricted => "MODEL_RESTRICTED_TEMPLATE",
            TemplateKind::StreamInterrupted => "STREAM_INTERRUPTED_TEMPLATE",
        }
    }

    /// The built-in Markdown text.
    pub fn default_text(self) -> &'static str {
        match self {
            TemplateKind::OpenRouterError => DEFAULT_OPENROUTER_ERROR,
            TemplateKind::EndpointOverrideConflict => DEFAULT_ENDPOINT_OVERRIDE_CONFLICT,
            TemplateKind::DirectUploadFailure => DEFAULT_DIRECT_UPLOAD_FAILURE,
            TemplateKind::Authentication => DEFAULT_AUTHENTICATION,
            TemplateKind::InsufficientCredits => DEFAULT_INSUFFICIENT_CREDITS,
            TemplateKind::RateLimit => DEFAULT_RATE_LIMIT,
            TemplateKind::ServerTimeout => DEFAULT_SERVER_TIMEOUT,
            TemplateKind::PayloadTooLarge => DEFAULT_PAYLOAD_TOO_LARGE,
            TemplateKind::NetworkTimeout => DEFAULT_NETWORK_TIMEOUT,
            TemplateKind::ConnectionError => DEFAULT_CONNECTION_ERROR,
            TemplateKind::ServiceError => DEFAULT_SERVICE_ERROR,
            TemplateKind::InternalError => DEFAULT_INTERNAL_ERROR,
            TemplateKind::ModelRestricted => DEFAULT_MODEL_RESTRICTED,
            TemplateKind::StreamInterrupted => DEFAULT_STREAM_INTERRUPTED,
        }
    }

    /// The template for an upstream HTTP error status.
    pub fn for_status(status: u16) -> TemplateKind {
        match status {
            401 => TemplateKind::Authentication,
            402 => TemplateKind::InsufficientCredits,
            408 => TemplateKind::ServerTimeout,
            413 => TemplateKind::PayloadTooLarge,
            429 => TemplateKind::RateLimit,
            s if s >= 500 => TemplateKind::ServiceError,
            _ => TemplateKind::OpenRouterError,
        }
    }
}

// The closing lines every default shares: error id, time and the operator's support contacts.
// Kept as a macro so each default stays one `&'static str` built by `concat!`.
macro_rules! footer {
    () => {
        r#"{{#if error_id}}- Error ID: `{error_id}`{{/if}}
{{#if timestamp}}- Time: {timestamp}{{/if}}
{{#if support_email}}- Need help? Email {support_email}{{#if error_id}} and quote the error ID{{/if}}{{/if}}
{{#if support_url}}- Help page: {support_url}{{/if}}
"#
    };
}

const DEFAULT_OPENROUTER_ERROR: &str = concat!(
    r#"### ⚠️ OpenRouter could not handle this request

{{#if heading}}{heading}{{#if status_code}} (HTTP {status_code}){{/if}}. {{/if}}Check the details below, change the request if needed, and try again.

{{#if requested_model}}- Model: `{requested_model}`{{#if provider}} via {provider}{{/if}}{{/if}}
- Message: {detail}
{{#if moderation_reasons}}- Flagged for: {moderation_reasons}{{#if flagged_excerpt}} (“{flagged_excerpt}”){{/if}}{{/if}}
- OpenRouter request: `{request_id}`
"#,
    footer!()
);

const DEFAULT_ENDPOINT_OVERRIDE_CONFLICT: &str = concat!(
    r#"### ⚠️ Endpoint settings conflict

The model{{#if requested_model}} `{requested_model}`{{/if}} only works with one OpenRouter endpoint, but this service is set to force another one, so nothing was sent. An administrator needs to change the endpoint override settings for this model.

- The model needs: `{required_endpoint}`
- The settings force: `{forced_endpoint}`
"#,
    footer!()
);

const DEFAULT_DIRECT_UPLOAD_FAILURE: &str = concat!(
    r#"### ⚠️ Attachment could not be sent

A file in this message was meant to go straight to the model{{#if requested_model}} `{requested_model}`{{/if}}, but that did not work, so the request was stopped. Remove the file or turn off direct uploads for this chat, then try again.

- What went wrong: {reason}
- More detail: {detail}
"#,
    footer!()
);

const DEFAULT_AUTHENTICATION: &str = concat!(
    r#"### ⚠️ API key not accepted

OpenRouter refused the API key this service uses, so no model was called. An administrator needs to check that the key is set, correct and still enabled.

- OpenRouter said: {openrouter_message}
- OpenRouter request: `{request_id}`
"#,
    footer!()
);

const DEFAULT_INSUFFICIENT_CREDITS: &str = concat!(
    r#"### ⚠️ Out of OpenRouter credits

The OpenRouter account behind this service cannot pay for this request. Add credits, raise the key's spending limit, or pick a cheaper model or a shorter reply.

- This request needs about: ${required_cost}
- Current balance: ${account_balance}
- OpenRouter said: {openrouter_message}
"#,
    footer!()
);

const DEFAULT_RATE_LIMIT: &str = concat!(
    r#"### ⚠️ Rate limited

Too many requests reached {{#if provider}}{provider} through {{/if}}OpenRouter in a short time{{#if rate_limit_type}} (limit scope: {rate_limit_type}){{/if}}. Wait a moment, then send the message again.

- Try again in: {retry_after_seconds} s
- Requests left: {rate_limit_remaining} of {rate_limit_limit}
- OpenRouter said: {detail}
"#,
    footer!()
);

const DEFAULT_SERVER_TIMEOUT: &str = concat!(
    r#"### ⚠️ The model took too long

OpenRouter stopped waiting for the model{{#if requested_model}} `{requested_model}`{{/if}}{{#if provider}} at {provider}{{/if}}. Trying again often works; if it keeps happening, shorten the prompt or pick another model.

- OpenRouter said: {detail}
"#,
    footer!()
);

const DEFAULT_PAYLOAD_TOO_LARGE: &str = concat!(
    r#"### ⚠️ Request too large

This conversation and its attachments are more than the model{{#if requested_model}} `{requested_model}`{{/if}} accepts. Start a new chat, remove large files, or choose a model with a larger context window.

- Context window: {context_limit_tokens} tokens
- Longest reply: {max_output_tokens} tokens
- OpenRouter said: {detail}
"#,
    footer!()
);

const DEFAULT_NETWORK_TIMEOUT: &str = concat!(
    r#"### ⚠️ No reply in time

OpenRouter did not answer{{#if timeout_seconds}} within {timeout_seconds} seconds{{/if}}. The service or the network may be slow right now; please try again.

- Waiting for: `{endpoint}`
"#,
    footer!()
);

const DEFAULT_CONNECTION_ERROR: &str = concat!(
    r#"### ⚠️ Could not reach OpenRouter

The connection to OpenRouter failed before any reply arrived. This is usually brief; try again in a moment.

- Connecting to: `{endpoint}`
- Failure: {error_type}
"#,
    footer!()
);

const DEFAULT_SERVICE_ERROR: &str = concat!(
    r#"### ⚠️ OpenRouter service problem

OpenRouter or the model provider failed{{#if status_code}} (HTTP {status_code}{{#if reason}} {reason}{{/if}}){{/if}}. Your message is not the cause; try again shortly or pick another model.

- Provider: {provider}
- OpenRouter said: {detail}
"#,
    footer!()
);

const DEFAULT_INTERNAL_ERROR: &str = concat!(
    r#"### ⚠️ Unexpected error

Something went wrong inside this service while handling the request. Please try again; if it keeps happening, report the error ID to the administrator.

- Failure: `{error_type}`
"#,
    footer!()
);

const DEFAULT_MODEL_RESTRICTED: &str = concat!(
    r#"### ⚠️ Model not available

The model{{#if requested_model}} `{requested_model}`{{/if}} is not allowed on this service. Choose another model from the list.

- Why: {restriction_reasons}
"#,
    footer!()
);

const DEFAULT_STREAM_INTERRUPTED: &str = concat!(
    r#"### ⚠️ Reply cut short

The answer above stopped before the model finished, so it may be incomplete. Send the message again for a full reply.

- What happened: {reason}
- Provider: {provider}
"#,
    footer!()
);

/// The template settings plus the support contacts inserted into every template (defaults: the
/// settings table, where every template is blank, meaning its built-in text).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct TemplateSettings {
    pub openrouter_error_template: String,
    pub endpoint_override_conflict_template: String,
    pub direct_upload_failure_template: String,
    pub authentication_error_template: String,
    pub insufficient_credits_template: String,
    pub rate_limit_template: String,
    pub server_timeout_template: String,
    pub payload_too_large_template: String,
    pub network_timeout_template: String,
    pub connection_error_template: String,
    pub service_error_template: String,
    pub internal_error_template: String,
    pub model_restricted_template: String,
    pub stream_interrupted_template: String,
    pub support_email: String,
    pub support_url: String,
}

impl TemplateSettings {
    /// Every template blank, so each renders its built-in text, and no support contacts: what
    /// the pipe falls back to when it cannot read the host's settings document at all.
    pub fn built_in() -> TemplateSettings {
        TemplateSettings {
            openrouter_error_template: String::new(),
            endpoint_override_conflict_template: String::new(),
            direct_upload_failure_template: String::new(),
            authentication_error_template: String::new(),
            insufficient_credits_template: String::new(),
            rate_limit_template: String::new(),
            server_timeout_template: String::new(),
            payload_too_large_template: String::new(),
            network_timeout_template: String::new(),
            connection_error_template: String::new(),
            service_error_template: String::new(),
            internal_error_template: String::new(),
            model_restricted_template: String::new(),
            stream_interrupted_template: String::new(),
            support_email: String::new(),
            support_url: String::new(),
        }
    }

    /// The operator's override for `kind`, or the built-in text when the valve is blank.
    pub fn template(&self, kind: TemplateKind) -> &str {
        let configured = match kind {
            TemplateKind::OpenRouterError => &self.openrouter_error_template,
            TemplateKind::EndpointOverrideConflict => &self.endpoint_override_conflict_template,
            TemplateKind::DirectUploadFailure => &self.direct_upload_failure_template,
            TemplateKind::Authentication => &self.authentication_error_template,
            TemplateKind::InsufficientCredits => &self.insufficient_credits_template,
            TemplateKind::RateLimit => &self.rate_limit_template,
            TemplateKind::ServerTimeout => &self.server_timeout_template,
            TemplateKind::PayloadTooLarge => &self.payload_too_large_template,
            TemplateKind::NetworkTimeout => &self.network_timeout_template,
            TemplateKind::ConnectionError => &self.connection_error_template,
            TemplateKind::ServiceError => &self.service_error_template,
            TemplateKind::InternalError => &self.internal_error_template,
            TemplateKind::ModelRestricted => &self.model_restricted_template,
            TemplateKind::StreamInterrupted => &self.stream_interrupted_template,
        };
        if configured.trim().is_empty() {
            kind.default_text()
        } else {
            configured
        }
    }

    /// Render the template for `kind`: adds `support_email` / `support_url` from the settings
    /// (unless `vars` already has them) and falls back to the generic text, with `vars`'
    /// `error_id`, if an operator's template is malformed.
    pub fn render(&self, kind: TemplateKind, vars: &Vars) -> String {
        let mut all = vars.clone();
        if !all.is_set("support_email") {
            all.set("support_email", self.support_email.trim());
        }
        if !all.is_set("support_url") {
            all.set("support_url", self.support_url.trim());
        }
        render_or_fallback(
            self.template(kind),
            &all,
            vars.get("error_id").unwrap_or_default(),
        )
    }
}

/// The standard reason phrase of an HTTP status OpenRouter is known to return.
fn reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        524 => "Origin Timeout",
        529 => "Overloaded",
        _ => return None,
    })
}

/// A one-line, plain-language description of what an error status means for the user.
fn heading_for(status: u16, flagged: bool) -> &'static str {
    match status {
        400 => "The request was rejected as invalid",
        401 => "The API key was not accepted",
        402 => "The account does not have enough credits",
        403 if flagged => "The input was flagged by moderation",
        403 => "The request was refused",
        404 => "The model or endpoint was not found",
        408 => "The model provider timed out",
        413 => "The request is too large",
        422 => "The request could not be processed",
        429 => "Too many requests",
        502 => "The model provider returned an error",
        503 => "No provider could serve the request right now",
        s if s >= 500 => "OpenRouter had a server error",
        _ => "OpenRouter returned an error",
    }
}

/// Upstream text is bounded before it reaches a message: header values and excerpts can be
/// arbitrarily long.
fn truncate_chars(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max_chars.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

fn non_empty_str(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A string, or a number written out (ids and codes come both ways).
fn scalar_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A list of strings (or one string) joined with ", ".
fn string_list(v: Option<&Value>) -> Option<String> {
    let joined = match v? {
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::trim).filter(|s| !s.is_empty()))
            .collect::<Vec<_>>()
            .join(", "),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    (!joined.is_empty()).then(|| truncate_chars(&joined, 300))
}

/// The provider's error type out of `metadata.raw` (an object, or JSON inside a string).
fn upstream_type(raw: Option<&Value>) -> Option<String> {
    let inner = match raw? {
        Value::String(s) => serde_json::from_str::<Value>(s).ok()?,
        other => other.clone(),
    };
    non_empty_str(inner.pointer("/error/type").or_else(|| inner.get("type")))
        .map(|s| truncate_chars(s, 100))
}

/// Template variables from an OpenRouter error response: its body (either error shape, or
/// plain text), HTTP status and response headers; `now_ms` is the guest's clock, which an
/// HTTP-date `Retry-After` is counted from. Caller context (`error_id`, `timestamp`,
/// `requested_model`, …) is added by the caller.
pub fn vars_from_openrouter_error(
    body: &[u8],
    status: u16,
    headers: &[(String, String)],
    now_ms: u64,
) -> Vars {
    vars_with_retry_after(body, status, headers, |v| {
        errors::parse_retry_after(v, now_ms)
    })
}

fn vars_with_retry_after(
    body: &[u8],
    status: u16,
    headers: &[(String, String)],
    retry_after_seconds: impl Fn(&str) -> Option<u32>,
) -> Vars {
    let parsed = errors::parse_openrouter_error(body);
    // Only OpenRouter's error shape is read field by field; any other body (an HTML page, JSON
    // of another shape) reaches the caller only as the parser's plain-text excerpt.
    let doc = serde_json::from_slice::<Value>(body)
        .ok()
        .filter(errors::is_openrouter_shape);
    let err = doc
        .as_ref()
        .map(|d| d.get("error").filter(|e| e.is_object()).unwrap_or(d));
    let metadata = err.and_then(|e| e.get("metadata"));
    let meta = |key: &str| metadata.and_then(|m| m.get(key));

    let mut vars = Vars::new();
    vars.set("status_code", status.to_string())
        .set_opt("reason", reason_phrase(status))
        .set_opt("openrouter_code", parsed.code.clone())
        .set_opt("provider", parsed.provider.clone())
        .set_opt("upstream_message", parsed.upstream_message.clone())
        .set_opt("upstream_type", upstream_type(meta("raw")))
        .set_opt("api_model_id", non_empty_str(meta("model_slug")))
        .set_opt("request_id", scalar_text(meta("request_id")));

    // `{"error": "text"}` is not the documented shape but is cheap to understand.
    let message = parsed.message.clone().or_else(|| {
        non_empty_str(doc.as_ref().and_then(|d| d.get("error"))).map(|s| truncate_chars(s, 500))
    });
    vars.set_opt("openrouter_message", message.clone());

    let error_type = non_empty_str(err.and_then(|e| e.get("type")))
        .or_else(|| non_empty_str(doc.as_ref().and_then(|d| d.get("error_type"))))
        .or_else(|| non_empty_str(meta("error_type")));
    vars.set_opt("error_type", error_type.map(|s| truncate_chars(s, 100)));

    let availability = err.and_then(|e| e.get("availability"));
    vars.set_opt(
        "availability",
        non_empty_str(availability.and_then(|a| a.get("code"))),
    )
    .set_opt(
        "fallback_models",
        string_list(availability.and_then(|a| a.get("fallback_models"))),
    );

    let reasons = string_list(meta("reasons"));
    let flagged = non_empty_str(meta("flagged_input")).map(|s| {
        let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
        truncate_chars(&one_line, 200)
    });
    vars.set(
        "heading",
        heading_for(status, reasons.is_some() || flagged.is_some()),
    )
    .set_opt("moderation_reasons", reasons)
    .set_opt("flagged_excerpt", flagged);

    // The provider's words are the most specific, unless they only repeat OpenRouter's.
    let detail = match (&parsed.upstream_message, &message) {
        (Some(up), Some(msg)) if up == msg => Some(msg.clone()),
        (Some(up), _) => Some(up.clone()),
        (None, msg) => msg.clone(),
    };
    vars.set_opt("detail", detail);

    let mut retry_after = None;
    for (name, value) in headers {
        let value = value.trim();
        let var = match name.to_ascii_lowercase().as_str() {
            "retry-after" => {
                retry_after = retry_after_seconds(value);
                continue;
            }
            "x-ratelimit-scope" => "rate_limit_type",
            "x-ratelimit-limit" => "rate_limit_limit",
            "x-ratelimit-remaining" => "rate_limit_remaining",
            "x-ratelimit-reset" => "rate_limit_reset",
            _ => continue,
        };
        if !value.is_empty() {
            vars.set(var, truncate_chars(value, 100));
        }
    }
    let retry_after = retry_after.or_else(|| {
        availability
            .and_then(|a| a.get("retry_after"))
            .and_then(Value::as_f64)
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f.ceil() as u32)
    });
    vars.set_opt("retry_after_seconds", retry_after.map(|s| s.to_string()));
    // Every value is bounded, including those no rule above shortens (ids, codes, provider
    // names): an error body can put megabytes in any field.
    for value in vars.0.values_mut() {
        if value.chars().count() > MAX_PARSED_VALUE_CHARS {
            *value = truncate_chars(value, MAX_PARSED_VALUE_CHARS);
        }
    }
    vars
}

/// Longest value [`vars_from_openrouter_error`] sets, in characters.
pub const MAX_PARSED_VALUE_CHARS: usize = 500;

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        let mut v = Vars::new();
        for (k, val) in pairs {
            v.set(*k, *val);
        }
        v
    }

    /// Every variable the module doc lists, with a plausible value.
    fn full_vars() -> Vars {
        vars(&[
            ("error_id", "0123456789abcdef"),
            ("timestamp", "2025-01-02T03:04:05Z"),
            ("session_id", "sess-1"),
            ("user_id", "user-1"),
            ("support_email", "help@example.com"),
            ("support_url", "https://example.com/help"),
            ("heading", "Too many requests"),
            ("detail", "Provider is overloaded"),
            ("status_code", "429"),
            ("openrouter_code", "429"),
            ("openrouter_message", "Rate limit exceeded"),
            ("upstream_message", "Provider is overloaded"),
            ("upstream_type", "rate_limit_error"),
            ("provider", "Anthropic"),
            ("requested_model", "anthropic/claude-sonnet-4"),
            ("api_model_id", "anthropic/claude-4-sonnet-20250522"),
            ("reason", "Too Many Requests"),
            ("request_id", "req-42"),
            ("retry_after_seconds", "7"),
            ("rate_limit_type", "key"),
            ("rate_limit_limit", "20"),
            ("rate_limit_remaining", "0"),
            ("rate_limit_reset", "1735787045000"),
            ("timeout_seconds", "300"),
            ("endpoint", "/api/v1/responses"),
            ("error_type", "connect"),
            ("availability", "capacity_exhausted"),
            ("fallback_models", "a/b, c/d"),
            ("required_cost", "0.42"),
            ("account_balance", "0.10"),
            ("context_limit_tokens", "200000"),
            ("max_output_tokens", "64000"),
            ("moderation_reasons", "violence, harassment"),
            ("flagged_excerpt", "some flagged words"),
            ("restriction_reasons", "not in the MODEL_ID allowlist"),
            ("required_endpoint", "responses"),
            ("forced_endpoint", "chat_completions"),
        ])
    }

    /// A line that names something and then shows nothing after it.
    fn has_empty_label(line: &str) -> bool {
        let t = line.trim();
        t.ends_with(':')
            || t.ends_with(":**")
            || t.ends_with(": $")
            || t.contains("``")
            || t.contains("()")
            || t.contains(": ·")
            || t == "-"
    }

    #[test]
    fn placeholders_are_replaced_by_their_values() {
        let out = render(
            "Hello {name}, id `{id}`.",
            &vars(&[("name", "Ada"), ("id", "7")]),
        );
        assert_eq!(out.unwrap(), "Hello Ada, id `7`.");
    }

    #[test]
    fn a_line_with_an_empty_or_missing_placeholder_disappears() {
        let t = "top\n- Provider: {provider}\n- Model: {model}\nbottom";
        let out = render(t, &vars(&[("provider", "  "), ("other", "x")])).unwrap();
        assert_eq!(out, "top\nbottom");
    }

    #[test]
    fn lines_without_placeholders_are_kept_as_written() {
        let out = render("  indented {not a placeholder}\n\nnext", &Vars::new()).unwrap();
        assert_eq!(out, "  indented {not a placeholder}\n\nnext");
    }

    #[test]
    fn nested_if_blocks_keep_content_only_when_every_condition_holds() {
        let t = "{{#if a}}A{{#if b}} and B{{/if}}{{/if}} end";
        assert_eq!(
            render(t, &vars(&[("a", "1"), ("b", "1")])).unwrap(),
            "A and B end"
        );
        assert_eq!(render(t, &vars(&[("a", "1")])).unwrap(), "A end");
        assert_eq!(render(t, &vars(&[("b", "1")])).unwrap(), " end");
    }

    #[test]
    fn a_block_spanning_lines_removes_those_lines_when_false() {
        let t = "first\n{{#if x}}\nhidden {x}\n\nalso hidden\n{{/if}}\nlast";
        assert_eq!(render(t, &Vars::new()).unwrap(), "first\nlast");
        assert_eq!(
            render(t, &vars(&[("x", "X")])).unwrap(),
            "first\nhidden X\n\nalso hidden\nlast"
        );
    }

    #[test]
    fn a_placeholder_inside_a_false_block_does_not_drop_the_line() {
        let t = "Model{{#if m}} `{m}`{{/if}} failed";
        assert_eq!(render(t, &Vars::new()).unwrap(), "Model failed");
    }

    #[test]
    fn values_are_not_reparsed_and_cannot_add_lines() {
        let v = vars(&[("a", "{b} {{/if}}\n### injected"), ("b", "B")]);
        assert_eq!(render("x {a}", &v).unwrap(), "x {b} {{/if}} ### injected");
    }

    #[test]
    fn blank_lines_left_by_dropped_lines_collapse() {
        let t = "\nhead\n\n{gone}\n\n{also_gone}\n\ntail\n\n{gone}\n";
        assert_eq!(render(t, &Vars::new()).unwrap(), "head\n\ntail");
    }

    #[test]
    fn malformed_templates_are_errors() {
        let cases = [
            ("{{#if a}} never closed", "UnclosedBlock"),
            ("text {{/if}}", "UnexpectedClose"),
            ("{{#each a}}{{/each}}", "UnknownTag"),
            ("{{#if}}x{{/if}}", "UnknownTag"),
            ("{{#if a b}}x{{/if}}", "UnknownTag"),
            ("{{#if a}\nx{{/if}}", "UnterminatedTag"),
        ];
        for (template, expected) in cases {
            let err = render(template, &vars(&[("a", "1")])).unwrap_err();
            assert!(
                format!("{err:?}").starts_with(expected),
                "{template:?} gave {err:?}"
            );
        }
    }

    #[test]
    fn an_unbalanced_block_falls_back_to_a_generic_text_with_the_error_id() {
        let out = render_or_fallback("{{#if a}}oops", &vars(&[("a", "1")]), "00000000deadbeef");
        assert!(out.contains("`00000000deadbeef`"), "{out}");
        assert!(!out.contains("oops"));
        let odd = render_or_fallback("{{/if}}", &Vars::new(), "id`\n# x");
        assert!(odd.contains("`idx`"), "{odd}");
    }

    #[test]
    fn every_default_renders_with_every_variable_set() {
        let v = full_vars();
        for kind in TemplateKind::ALL {
            let out = render(kind.default_text(), &v).unwrap();
            assert!(out.starts_with("### "), "{kind:?}: {out}");
            assert!(!out.contains('{') && !out.contains('}'), "{kind:?}: {out}");
            assert!(out.contains("0123456789abcdef"), "{kind:?}");
            assert!(out.contains("2025-01-02T03:04:05Z"), "{kind:?}");
            assert!(out.contains("help@example.com"), "{kind:?}");
            assert!(out.contains("https://example.com/help"), "{kind:?}");
            let lines = out.lines().filter(|l| !l.trim().is_empty()).count();
            assert!((3..=12).contains(&lines), "{kind:?} has {lines} lines");
            for line in out.lines() {
                assert!(!has_empty_label(line), "{kind:?}: {line:?}");
            }
        }
    }

    #[test]
    fn every_default_renders_cleanly_with_only_the_error_id_and_time() {
        let v = vars(&[
            ("error_id", "0123456789abcdef"),
            ("timestamp", "2025-01-02T03:04:05Z"),
        ]);
        for kind in TemplateKind::ALL {
            let out = render(kind.default_text(), &v).unwrap();
            assert!(out.starts_with("### ⚠️ "), "{kind:?}: {out}");
            assert!(!out.contains('{') && !out.contains('}'), "{kind:?}: {out}");
            assert!(out.contains("Error ID: `0123456789abcdef`"), "{kind:?}");
            assert!(out.contains("2025-01-02T03:04:05Z"), "{kind:?}");
            assert!(!out.contains("help"), "{kind:?}: {out}");
            assert!(!out.contains("\n\n\n"), "{kind:?}: {out}");
            for line in out.lines() {
                assert!(!has_empty_label(line), "{kind:?}: {line:?}");
            }
        }
    }

    #[test]
    fn statuses_map_to_their_templates() {
        let table = [
            (400, TemplateKind::OpenRouterError),
            (401, TemplateKind::Authentication),
            (402, TemplateKind::InsufficientCredits),
            (403, TemplateKind::OpenRouterError),
            (404, TemplateKind::OpenRouterError),
            (408, TemplateKind::ServerTimeout),
            (413, TemplateKind::PayloadTooLarge),
            (422, TemplateKind::OpenRouterError),
            (429, TemplateKind::RateLimit),
            (500, TemplateKind::ServiceError),
            (502, TemplateKind::ServiceError),
            (503, TemplateKind::ServiceError),
            (529, TemplateKind::ServiceError),
        ];
        for (status, kind) in table {
            assert_eq!(TemplateKind::for_status(status), kind, "{status}");
        }
    }

    #[test]
    fn valve_names_are_distinct_and_match_the_settings_keys() {
        let mut names: Vec<_> = TemplateKind::ALL.iter().map(|k| k.valve()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 14);
        for kind in TemplateKind::ALL {
            let json = serde_json::json!({ kind.valve(): format!("custom {}", kind.valve()) });
            let settings: TemplateSettings =
                crate::settings_document::from_document(&json.to_string()).unwrap();
            assert_eq!(settings.template(kind), format!("custom {}", kind.valve()));
        }
    }

    #[test]
    fn an_override_valve_replaces_the_default_and_a_blank_one_does_not() {
        let settings: TemplateSettings = crate::settings_document::from_document(
            r#"{"RATE_LIMIT_TEMPLATE":"Slow down, retry in {retry_after_seconds}s ({error_id})",
                "SERVER_TIMEOUT_TEMPLATE":"  ",
                "SUPPORT_EMAIL":"ops@example.com"}"#,
        )
        .unwrap();
        let v = vars(&[("retry_after_seconds", "3"), ("error_id", "abc")]);
        assert_eq!(
            settings.render(TemplateKind::RateLimit, &v),
            "Slow down, retry in 3s (abc)"
        );
        assert_eq!(
            settings.template(TemplateKind::ServerTimeout),
            TemplateKind::ServerTimeout.default_text()
        );
        let timeout = settings.render(TemplateKind::ServerTimeout, &v);
        assert!(timeout.contains("ops@example.com"), "{timeout}");
    }

    #[test]
    fn a_broken_override_falls_back_with_the_error_id() {
        let settings = TemplateSettings {
            internal_error_template: "{{#if error_id}}never closed".to_string(),
            ..TemplateSettings::default()
        };
        let out = settings.render(
            TemplateKind::InternalError,
            &vars(&[("error_id", "feedfacefeedface")]),
        );
        assert!(out.contains("feedfacefeedface"), "{out}");
        assert!(!out.contains("never closed"));
    }

    #[test]
    fn error_vars_come_from_metadata_raw_given_as_a_json_string() {
        let body = br#"{"error":{"code":400,"message":"Provider returned error","metadata":{
            "provider_name":"Anthropic","model_slug":"anthropic/claude-sonnet-4","request_id":"req-9",
            "raw":"{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"thinking block cannot be modified\"}}"}}}"#;
        let v = vars_from_openrouter_error(body, 400, &[], 0);
        assert_eq!(v.get("status_code"), Some("400"));
        assert_eq!(v.get("reason"), Some("Bad Request"));
        assert_eq!(v.get("openrouter_code"), Some("400"));
        assert_eq!(v.get("openrouter_message"), Some("Provider returned error"));
        assert_eq!(
            v.get("upstream_message"),
            Some("thinking block cannot be modified")
        );
        assert_eq!(v.get("upstream_type"), Some("invalid_request_error"));
        assert_eq!(v.get("detail"), Some("thinking block cannot be modified"));
        assert_eq!(v.get("provider"), Some("Anthropic"));
        assert_eq!(v.get("api_model_id"), Some("anthropic/claude-sonnet-4"));
        assert_eq!(v.get("request_id"), Some("req-9"));
        assert_eq!(
            v.get("heading"),
            Some("The request was rejected as invalid")
        );
        assert_eq!(v.get("moderation_reasons"), None);
    }

    #[test]
    fn error_vars_come_from_metadata_raw_given_as_an_object() {
        let body = br#"{"error":{"code":502,"message":"Upstream failed","metadata":{
            "provider_name":"OpenAI","raw":{"error":{"message":"server overloaded","type":"server_error"}}}}}"#;
        let v = vars_from_openrouter_error(body, 502, &[], 0);
        assert_eq!(v.get("upstream_message"), Some("server overloaded"));
        assert_eq!(v.get("upstream_type"), Some("server_error"));
        assert_eq!(v.get("detail"), Some("server overloaded"));
        assert_eq!(v.get("reason"), Some("Bad Gateway"));
    }

    #[test]
    fn the_typed_shape_gives_error_type_and_availability() {
        let body = br#"{"error":{"code":"rate_limit_exceeded","message":"No capacity","type":"rate_limit_exceeded",
            "availability":{"code":"capacity_exhausted","retry_after":2.5,"fallback_models":["a/b","c/d"]}}}"#;
        let v = vars_from_openrouter_error(body, 429, &[], 0);
        assert_eq!(v.get("openrouter_code"), Some("rate_limit_exceeded"));
        assert_eq!(v.get("error_type"), Some("rate_limit_exceeded"));
        assert_eq!(v.get("availability"), Some("capacity_exhausted"));
        assert_eq!(v.get("fallback_models"), Some("a/b, c/d"));
        assert_eq!(v.get("retry_after_seconds"), Some("3"));
        assert_eq!(v.get("detail"), Some("No capacity"));

        let skin = br#"{"error":{"code":"server_error","message":"masked"},"error_type":"provider_unavailable"}"#;
        let v = vars_from_openrouter_error(skin, 503, &[], 0);
        assert_eq!(v.get("error_type"), Some("provider_unavailable"));
    }

    #[test]
    fn an_http_date_retry_after_becomes_seconds_from_the_guest_clock() {
        let headers = [(
            "Retry-After".to_string(),
            "Wed, 21 Oct 2015 07:28:00 GMT".to_string(),
        )];
        let body = br#"{"error":{"code":429,"message":"slow down"}}"#;
        let now_ms = 1_445_412_480_000 - 45_000;
        let v = vars_from_openrouter_error(body, 429, &headers, now_ms);
        assert_eq!(v.get("retry_after_seconds"), Some("45"));
    }

    #[test]
    fn rate_limit_headers_become_variables_whatever_their_case() {
        let headers = [
            ("retry-after".to_string(), "12".to_string()),
            ("X-RateLimit-Scope".to_string(), "user".to_string()),
            ("x-ratelimit-limit".to_string(), "20".to_string()),
            ("X-RATELIMIT-REMAINING".to_string(), "0".to_string()),
            ("X-RateLimit-Reset".to_string(), "1735787045000".to_string()),
            ("Content-Type".to_string(), "application/json".to_string()),
        ];
        let body =
            br#"{"error":{"code":429,"message":"slow down","availability":{"retry_after":99}}}"#;
        let v = vars_from_openrouter_error(body, 429, &headers, 0);
        assert_eq!(v.get("retry_after_seconds"), Some("12"));
        assert_eq!(v.get("rate_limit_type"), Some("user"));
        assert_eq!(v.get("rate_limit_limit"), Some("20"));
        assert_eq!(v.get("rate_limit_remaining"), Some("0"));
        assert_eq!(v.get("rate_limit_reset"), Some("1735787045000"));
        let text = render(TemplateKind::RateLimit.default_text(), &v).unwrap();
        assert!(text.contains("Try again in: 12 s"), "{text}");
        assert!(text.contains("limit scope: user"), "{text}");
        assert!(text.contains("Requests left: 0 of 20"), "{text}");
    }

    #[test]
    fn moderation_reasons_and_a_short_flagged_excerpt_are_extracted() {
        let flagged = format!("line one\nline two {}", "x".repeat(500));
        let body = serde_json::json!({"error":{"code":403,"message":"Input flagged","metadata":{
            "reasons":["violence","harassment"],"flagged_input":flagged,
            "provider_name":"OpenAI","model_slug":"openai/gpt-4o"}}});
        let v = vars_from_openrouter_error(body.to_string().as_bytes(), 403, &[], 0);
        assert_eq!(v.get("moderation_reasons"), Some("violence, harassment"));
        let excerpt = v.get("flagged_excerpt").unwrap();
        assert!(excerpt.chars().count() <= 200);
        assert!(excerpt.starts_with("line one line two x"));
        assert!(excerpt.ends_with('…'));
        assert_eq!(
            v.get("heading"),
            Some("The input was flagged by moderation")
        );
        let text = render(TemplateKind::OpenRouterError.default_text(), &v).unwrap();
        assert!(text.contains("Flagged for: violence, harassment"), "{text}");
    }

    #[test]
    fn non_json_and_odd_bodies_still_give_a_message() {
        let v = vars_from_openrouter_error(b"<html>Bad gateway</html>", 502, &[], 0);
        assert_eq!(v.get("openrouter_message"), Some("Bad gateway"));
        assert_eq!(v.get("detail"), Some("Bad gateway"));
        let v = vars_from_openrouter_error(br#"{"error":"key revoked"}"#, 401, &[], 0);
        assert_eq!(v.get("openrouter_message"), Some("key revoked"));
        let v = vars_from_openrouter_error(b"", 500, &[], 0);
        assert_eq!(v.get("detail"), None);
        assert_eq!(v.get("status_code"), Some("500"));
    }

    #[test]
    fn every_variable_from_an_error_body_is_bounded() {
        let huge = "m".repeat(5000);
        let body = serde_json::json!({"error": {"message": "x", "code": huge,
            "metadata": {"provider_name": huge, "model_slug": huge, "request_id": huge},
            "availability": {"code": huge}}});
        let vars = vars_from_openrouter_error(body.to_string().as_bytes(), 503, &[], 0);
        for name in [
            "openrouter_code",
            "provider",
            "api_model_id",
            "request_id",
            "availability",
        ] {
            let value = vars.get(name).unwrap();
            assert_eq!(value.chars().count(), MAX_PARSED_VALUE_CHARS, "{name}");
            assert!(value.ends_with('…'), "{name}");
        }
    }
}
