//! The settings document the host hands to every call: reference valve names, already validated by
//! the host. Unknown keys are ignored here (the host owns validation); missing keys take the
//! reference defaults so the pipe behaves sensibly even with an empty document.

use crate::artifacts::ArtifactSettings;
use crate::endpoint::EndpointSettings;
use crate::request::RequestSettings;
use crate::templates::TemplateSettings;
use crate::usage_status::UsageStatusSettings;
use serde::Deserialize;

/// How the stream is shaped (REFERENCE §2.4 display, §2.5 coalescing).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct StreamingSettings {
    /// `open_webui` (reasoning box), `status` (status lines) or `both`.
    pub thinking_output_mode: String,
    /// > 0 merges text/reasoning deltas up to this many bytes; 0 relays each delta as it comes.
    pub streaming_delta_char_limit: u64,
    /// Buffered deltas are flushed after this long without new events.
    pub streaming_idle_flush_ms: u64,
    /// At the end of a burst of ready events, flush once at least this much is buffered.
    pub streaming_nagle_min_flush_chars: u64,
}

impl Default for StreamingSettings {
    fn default() -> Self {
        StreamingSettings {
            thinking_output_mode: "open_webui".into(),
            streaming_delta_char_limit: 256,
            streaming_idle_flush_ms: 30,
            streaming_nagle_min_flush_chars: 3,
        }
    }
}

/// The valves the pipe logic reads. Names match `REFERENCE.md` §3.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, rename_all = "SCREAMING_SNAKE_CASE")]
pub struct Settings {
    pub base_url: String,
    pub model_id: String,
    pub model_catalog_refresh_seconds: u64,
    /// Whether the host holds an OpenRouter key (the key itself never enters the guest).
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

impl Default for Settings {
    fn default() -> Self {
        Settings {
            base_url: "https://openrouter.ai/api/v1".to_string(),
            model_id: "auto".to_string(),
            model_catalog_refresh_seconds: 3600,
            api_key_configured: false,
            http_referer_override: String::new(),
            http_connect_timeout_seconds: 10,
            http_sock_read_seconds: 300,
            free_model_filter: "all".to_string(),
            tool_calling_filter: "all".to_string(),
            zdr_models_only: false,
            variant_models: String::new(),
            request: RequestSettings::default(),
            endpoint: EndpointSettings::default(),
            templates: TemplateSettings::default(),
            usage_status: UsageStatusSettings::default(),
            streaming: StreamingSettings::default(),
            tools: crate::tool_loop::ToolSettings::default(),
            artifacts: ArtifactSettings::default(),
        }
    }
}

/// The project URL sent as `HTTP-Referer` when no override is set (OpenRouter app attribution).
pub const DEFAULT_REFERER: &str = "https://github.com/openwebui/responses-pipe";
/// The app title sent as `X-OpenRouter-Title`.
pub const APP_TITLE: &str = "Responses Pipe";

impl Settings {
    /// Parse the host's settings document.
    pub fn parse(json: &str) -> Result<Settings, serde_json::Error> {
        if json.trim().is_empty() {
            return Ok(Settings::default());
        }
        // Straight from the text: no intermediate JSON tree (this runs on every request).
        let mut settings: Settings = serde_json::from_str(json)?;
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
