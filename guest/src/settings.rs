//! All the settings groups of the component, read from the host's settings document in one go.
//! Each module declares the group it reads and receives only that group; this module gathers
//! them for the top (`chat`, `component`), and nothing below imports it. How a document is read
//! (table defaults for what it lacks) is `settings_document`'s job.

use crate::artifacts::ArtifactSettings;
use crate::catalog::CatalogSettings;
use crate::endpoint::EndpointSettings;
use crate::openrouter::OpenRouterSettings;
use crate::request::RequestSettings;
use crate::settings_document::from_document;
use crate::templates::TemplateSettings;
use crate::tool_loop::ToolSettings;
use crate::usage_status::UsageStatusSettings;
use serde::Deserialize;

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

/// The settings the pipe logic reads, under their table names, one group per reader.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct Settings {
    // Flattened groups: serde hands each key to the first struct that names it, so a valve must
    // be a field of exactly one group (a test below checks the shared ones reach their owner).
    #[serde(flatten)]
    pub openrouter: OpenRouterSettings,
    #[serde(flatten)]
    pub catalog: CatalogSettings,
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
    pub tools: ToolSettings,
    #[serde(flatten)]
    pub artifacts: ArtifactSettings,
}

impl Settings {
    /// Parse the host's settings document; keys it lacks take the table's defaults.
    pub fn parse(json: &str) -> Result<Settings, serde_json::Error> {
        let mut settings: Settings = from_document(json)?;
        // The breaker valves belong to two groups; serde's flatten hands them to the tool group.
        settings.artifacts.breaker_max_failures = settings.tools.breaker_max_failures;
        settings.artifacts.breaker_window_seconds = settings.tools.breaker_window_seconds;
        // `ZDR_ENFORCE` belongs to two groups; serde's flatten hands it to the request group.
        settings.catalog.zdr_enforce = settings.request.zdr_enforce;
        Ok(settings)
    }
}

/// The table's defaults, as a document without any key would give them.
#[cfg(test)]
impl Default for Settings {
    fn default() -> Self {
        Settings::parse("").unwrap()
    }
}

/// Each group's test defaults: the table's, as the whole document reads them (shared valves
/// included).
#[cfg(test)]
mod group_defaults {
    use super::*;

    macro_rules! from_the_table {
        ($($group:ty => $field:ident),* $(,)?) => {$(
            impl Default for $group {
                fn default() -> Self {
                    Settings::default().$field
                }
            }
        )*};
    }

    from_the_table! {
        OpenRouterSettings => openrouter,
        CatalogSettings => catalog,
        RequestSettings => request,
        EndpointSettings => endpoint,
        TemplateSettings => templates,
        UsageStatusSettings => usage_status,
        StreamingSettings => streaming,
        ToolSettings => tools,
        ArtifactSettings => artifacts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings_document::default_document;
    use serde_json::Value;

    #[test]
    fn missing_keys_take_reference_defaults_and_unknown_keys_are_ignored() {
        let s = Settings::parse(r#"{"MODEL_ID":"a/b","SOMETHING_NEW":1}"#).unwrap();
        assert_eq!(s.catalog.model_id, "a/b");
        assert_eq!(s.catalog.model_catalog_refresh_seconds, 3600);
        assert_eq!(s.openrouter.base(), "https://openrouter.ai/api/v1");
    }

    #[test]
    fn every_group_receives_its_own_valves() {
        let s = Settings::parse(
            r#"{"ZDR_ENFORCE":true,"SUPPORT_EMAIL":"help@example.com","FORCE_RESPONSES_MODELS":"a/*",
                "SHOW_FINAL_USAGE_STATUS":false,"THINKING_OUTPUT_MODE":"status","MODEL_ID":"x/y"}"#,
        )
        .unwrap();
        assert!(s.request.zdr_enforce);
        assert!(
            s.catalog.zdr_enforce,
            "the shared ZDR valve reaches the catalog too"
        );
        assert_eq!(s.templates.support_email, "help@example.com");
        assert_eq!(s.endpoint.force_responses_models, "a/*");
        assert!(!s.usage_status.show_final_usage_status);
        assert_eq!(s.streaming.thinking_output_mode, "status");
        assert_eq!(s.catalog.model_id, "x/y");
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
        assert!(!s.openrouter.api_key_configured && s.artifacts.artifact_table.is_empty());
        // A document that is not an object is an error, not a default.
        assert!(Settings::parse("[1]").is_err());
        assert!(Settings::parse(r#"{"TOOL_BATCH_CAP":"many"}"#).is_err());
    }
}
