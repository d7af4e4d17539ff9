//! The settings document the host hands to every call: the settings the component reads, under
//! their table names, already validated by the host. Unknown keys are ignored here (the host owns
//! validation). The defaults are not written here: they come from the one settings table
//! (`responses-pipe-settings`), and a key a document lacks takes the table's default, so the
//! host's document and the component cannot disagree about one.
//!
//! The settings groups therefore have no field defaults of their own: a complete document (what
//! the host sends) is read straight from its text, and only an incomplete one is first merged
//! over the table's defaults. `Default` exists for tests only and builds from the same table.

use crate::artifacts::ArtifactSettings;
use crate::endpoint::EndpointSettings;
use crate::request::RequestSettings;
use crate::templates::TemplateSettings;
use crate::usage_status::UsageStatusSettings;
use serde::Deserialize;
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

/// How the stream is shaped.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct StreamingSettings {
    /// `open_webui` (reasoning box), `status` (status lines) or `both`.
    pub thinking_output_mode: String,
    /// > 0 merges text/reasoning deltas up to this many bytes; 0 relays each delta as it comes.
    pub streaming_delta_char_limit: u64,
    /// Buffered deltas are flushed after this long without new events.
    pub streaming_idle_flush_ms: u64,
    /// At the end of a burst of ready events, flush once at least this much is buffered.
    pub streaming_nagle_min_flush_chars: u64,
    /// Largest line or event of an upstream event stream, in bytes.
    pub sse_max_event_bytes: u64,
}

#[cfg(test)]
impl Default for StreamingSettings {
    fn default() -> Self {
        Settings::default().streaming
    }
}

/// The settings the pipe logic reads, under their table names.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct Settings {
    pub base_url: String,
    pub model_id: String,
    pub model_catalog_refresh_seconds: u64,
    /// Whether the host holds an OpenRouter key (the key itself never enters the guest). A fact
    /// the host adds to the document, not a setting: absent means no key.
    #[serde(default)]
    pub api_key_configured: bool,
    pub http_referer_override: String,
    pub http_connect_timeout_seconds: u64,
    pub http_sock_read_seconds: u64,
    /// `all` / `only` / `exclude` free models.
    pub free_model_filter: String,
    /// `all` / `only` / `exclude` tool-capable models.
    pub tool_calling_filter: String,
    pub zdr_models_only: bool,
    /// CSV of `base:tag` entries exposed as extra models (`base:preset/slug` for presets).
    pub variant_models: String,
    // Flattened groups: serde hands each key to the first struct that names it, so a valve must
    // be a field of exactly one group (a test below checks the shared ones reach their owner).
    #[serde(flatten)]
    pub request: RequestSettings,
    #[serde(flatten)]
    pub endpoint: EndpointSettings,
    #[serde(flatten)]
    pub templates: TemplateSettings,
    #[serde(flatten)]
    pub usage_status: UsageStatusSettings,
    #[serde(flatten)]
    pub streaming: StreamingSettings,
    #[serde(flatten)]
    pub tools: crate::tool_loop::ToolSettings,
    #[serde(flatten)]
    pub artifacts: ArtifactSettings,
}

/// The table's defaults, as a document without any key would give them.
#[cfg(test)]
impl Default for Settings {
    fn default() -> Self {
        Settings::parse("").unwrap()
    }
}

/// The project URL sent as `HTTP-Referer` when no override is set (OpenRouter app attribution).
pub const DEFAULT_REFERER: &str = "https://github.com/openwebui/responses-pipe";
/// The app title sent as `X-OpenRouter-Title`.
pub const APP_TITLE: &str = "Responses Pipe";

impl Settings {
    /// Parse the host's settings document; keys it lacks take the table's defaults.
    pub fn parse(json: &str) -> Result<Settings, serde_json::Error> {
        let mut settings: Settings = from_document(json)?;
        // The breaker valves belong to two groups; serde's flatten hands them to the tool group.
        settings.artifacts.breaker_max_failures = settings.tools.breaker_max_failures;
        settings.artifacts.breaker_window_seconds = settings.tools.breaker_window_seconds;
        Ok(settings)
    }

    /// `BASE_URL` without a trailing slash, ready for `{base}/models`.
    pub fn base(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }

    /// The catalog TTL, never below the reference minimum of 60 s.
    pub fn catalog_ttl_ms(&self) -> u64 {
        self.model_catalog_refresh_seconds
            .max(60)
            .saturating_mul(1000)
    }

    /// `HTTP-Referer` value: the override when it is a full http(s) URL, else the project URL.
    pub fn referer(&self) -> &str {
        let o = self.http_referer_override.trim();
        if o.starts_with("https://") || o.starts_with("http://") {
            o
        } else {
            DEFAULT_REFERER
        }
    }

    /// Attribution headers sent on every OpenRouter call.
    pub fn attribution_headers(&self) -> Vec<(String, String)> {
        vec![
            ("HTTP-Referer".to_string(), self.referer().to_string()),
            ("X-OpenRouter-Title".to_string(), APP_TITLE.to_string()),
            (
                "X-OpenRouter-Categories".to_string(),
                "general-chat".to_string(),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_keys_take_reference_defaults_and_unknown_keys_are_ignored() {
        let s = Settings::parse(r#"{"MODEL_ID":"a/b","SOMETHING_NEW":1}"#).unwrap();
        assert_eq!(s.model_id, "a/b");
        assert_eq!(s.model_catalog_refresh_seconds, 3600);
        assert_eq!(s.base(), "https://openrouter.ai/api/v1");
    }

    #[test]
    fn every_group_receives_its_own_valves() {
        let s = Settings::parse(
            r#"{"ZDR_ENFORCE":true,"SUPPORT_EMAIL":"help@example.com","FORCE_RESPONSES_MODELS":"a/*",
                "SHOW_FINAL_USAGE_STATUS":false,"THINKING_OUTPUT_MODE":"status","MODEL_ID":"x/y"}"#,
        )
        .unwrap();
        assert!(s.request.zdr_enforce);
        assert_eq!(s.templates.support_email, "help@example.com");
        assert_eq!(s.endpoint.force_responses_models, "a/*");
        assert!(!s.usage_status.show_final_usage_status);
        assert_eq!(s.streaming.thinking_output_mode, "status");
        assert_eq!(s.model_id, "x/y");
    }

    #[test]
    fn the_component_reads_every_setting_the_table_gives_it_and_no_other() {
        // The table's defaults for the component's side make a complete document, read on the
        // direct path (no merge).
        let complete = Value::Object(default_document()).to_string();
        assert!(serde_json::from_str::<Settings>(&complete).is_ok());
        // Each setting the table sends is a field of some group: without it, the direct path
        // names it as missing. (An optional one reads as null when absent, its table default.)
        for spec in responses_pipe_settings::guest_valves() {
            let mut doc = default_document();
            doc.remove(spec.name);
            let direct = serde_json::from_value::<Settings>(Value::Object(doc));
            if spec.default == responses_pipe_settings::DefaultValue::Null {
                assert!(direct.is_ok(), "{}", spec.name);
                continue;
            }
            let err = direct.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                err.contains(&format!("missing field `{}`", spec.name)),
                "{}: {err}",
                spec.name
            );
        }
    }

    #[test]
    fn an_incomplete_document_takes_the_table_defaults_for_what_it_lacks() {
        let s = Settings::parse(r#"{"REASONING_EFFORT":"high","TOOL_BATCH_CAP":2}"#).unwrap();
        assert_eq!(s.request.reasoning_effort, "high");
        assert_eq!(s.tools.tool_batch_cap, 2);
        let table = |name: &str| {
            responses_pipe_settings::find(name)
                .map(|spec| spec.default.to_json())
                .unwrap()
        };
        assert_eq!(
            table("MAX_FUNCTION_CALL_LOOPS"),
            s.tools.max_function_call_loops
        );
        assert_eq!(
            table("THINKING_OUTPUT_MODE"),
            s.streaming.thinking_output_mode
        );
        assert_eq!(
            table("BREAKER_HISTORY_SIZE"),
            s.artifacts.breaker_history_size
        );
        // The shared breaker settings reach the artifact group on both paths.
        assert_eq!(
            s.artifacts.breaker_max_failures,
            s.tools.breaker_max_failures
        );
        assert!(s.artifacts.breaker_max_failures > 0);
        // Facts the host adds are absent from a bare document: no key, no table.
        assert!(!s.api_key_configured && s.artifacts.artifact_table.is_empty());
        // A document that is not an object is an error, not a default.
        assert!(Settings::parse("[1]").is_err());
        assert!(Settings::parse(r#"{"TOOL_BATCH_CAP":"many"}"#).is_err());
    }

    #[test]
    fn referer_override_must_be_a_full_url() {
        let mut s = Settings {
            http_referer_override: "example.com".into(),
            ..Settings::default()
        };
        assert_eq!(s.referer(), DEFAULT_REFERER);
        s.http_referer_override = "https://example.com/app".into();
        assert_eq!(s.referer(), "https://example.com/app");
    }

    #[test]
    fn catalog_ttl_is_never_below_sixty_seconds() {
        let s = Settings {
            model_catalog_refresh_seconds: 5,
            ..Settings::default()
        };
        assert_eq!(s.catalog_ttl_ms(), 60_000);
    }
}
