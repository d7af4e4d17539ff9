//! Which OpenRouter endpoint serves a request (`/responses` or `/chat/completions`), and whether a
//! failed `/responses` call looks like "this model does not do /responses" so the request may be
//! replayed on `/chat/completions`. Pure functions over the endpoint valves;
//! the caller decides when a fallback is still allowed (only before any visible output).

use crate::errors;
use crate::model_globs::ModelGlobs;
use serde::Deserialize;
use serde_json::Value;

/// The endpoint settings, read from the same settings document the host hands to every call;
/// unknown keys are ignored, missing keys take the settings table's defaults.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct EndpointSettings {
    /// `responses` or `chat_completions`.
    pub default_llm_endpoint: String,
    /// Comma-separated globs of models always sent to `/chat/completions`.
    pub force_chat_completions_models: ModelGlobs,
    /// Comma-separated globs of models always sent to `/responses` (wins over the chat list).
    pub force_responses_models: ModelGlobs,
    /// Replay on `/chat/completions` when `/responses` is unsupported before visible output.
    pub auto_fallback_chat_completions: bool,
}

impl EndpointSettings {
    /// Parse the host's settings document (the same JSON `settings::Settings` reads).
    pub fn parse(json: &str) -> Result<EndpointSettings, serde_json::Error> {
        crate::settings_document::from_document(json)
    }

    /// The configured default. The host validates the value; anything that is not the chat
    /// endpoint's name means `/responses`, the reference default.
    pub fn default_endpoint(&self) -> Endpoint {
        if self
            .default_llm_endpoint
            .trim()
            .eq_ignore_ascii_case("chat_completions")
        {
            Endpoint::ChatCompletions
        } else {
            Endpoint::Responses
        }
    }
}

/// An OpenRouter generation endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Responses,
    ChatCompletions,
}

impl Endpoint {
    /// The path below `BASE_URL`.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Responses => "/responses",
            Endpoint::ChatCompletions => "/chat/completions",
        }
    }
}

/// The outcome of endpoint selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Send the request here.
    Use(Endpoint),
    /// The request needs `required` (a preset, a video upload) but a force-list pins the model
    /// to `forced`; the caller answers with `ENDPOINT_OVERRIDE_CONFLICT_TEMPLATE`.
    Conflict {
        required: Endpoint,
        forced: Endpoint,
    },
}

/// Pick the endpoint for `model_id`. `body_has_preset`: the body carries an OpenRouter `preset`;
/// `needs_chat`: the request has something only `/chat/completions` accepts (e.g. a video).
pub fn choose(
    settings: &EndpointSettings,
    model_id: &str,
    body_has_preset: bool,
    needs_chat: bool,
) -> Choice {
    let pinned_responses = settings.force_responses_models.matches(model_id);
    let pinned_chat = !pinned_responses && settings.force_chat_completions_models.matches(model_id);
    if body_has_preset || needs_chat {
        if pinned_responses {
            return Choice::Conflict {
                required: Endpoint::ChatCompletions,
                forced: Endpoint::Responses,
            };
        }
        return Choice::Use(Endpoint::ChatCompletions);
    }
    if pinned_responses {
        Choice::Use(Endpoint::Responses)
    } else if pinned_chat {
        Choice::Use(Endpoint::ChatCompletions)
    } else {
        Choice::Use(settings.default_endpoint())
    }
}

/// OpenRouter error codes that say the model or provider does not serve `/responses`.
const UNSUPPORTED_CODES: [&str; 4] = [
    "unsupported_endpoint",
    "unsupported_feature",
    "endpoint_not_supported",
    "responses_not_supported",
];

/// Whether a failed `/responses` answer looks like "use `/chat/completions` instead":
/// an unsupported-endpoint error code, a message saying responses are not
/// supported, a message naming `chat/completions`, or one naming a Responses transport
/// (`openai-responses-v1`, `xai-responses-v1`). Authentication, credit, timeout and rate-limit
/// statuses never qualify: replaying elsewhere cannot fix them, and their messages may quote URLs.
pub fn looks_unsupported(status: u16, body: &[u8]) -> bool {
    if status < 400 || matches!(status, 401 | 402 | 408 | 429) {
        return false;
    }
    let parsed = errors::parse_openrouter_error(body);
    let json = serde_json::from_slice::<Value>(body).ok();
    let err = json.as_ref().map(|v| v.get("error").unwrap_or(v));
    let code_at = |pointer: &str| {
        err.and_then(|e| e.pointer(pointer))
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
    };
    let codes = [
        parsed.code.as_deref().map(str::to_ascii_lowercase),
        code_at("/type"),
        code_at("/metadata/error_type"),
    ];
    if codes
        .iter()
        .flatten()
        .any(|c| UNSUPPORTED_CODES.contains(&c.as_str()))
    {
        return true;
    }
    [parsed.message, parsed.upstream_message]
        .iter()
        .flatten()
        .any(|m| message_says_unsupported(&m.to_ascii_lowercase()))
}

fn message_says_unsupported(message: &str) -> bool {
    let denies = ["not supported", "unsupported", "does not support"]
        .iter()
        .any(|d| message.contains(d));
    (message.contains("response") && denies)
        || message.contains("chat/completions")
        || message.contains("openai-responses-v1")
        || message.contains("xai-responses-v1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(chat: &str, responses: &str) -> EndpointSettings {
        EndpointSettings {
            force_chat_completions_models: chat.into(),
            force_responses_models: responses.into(),
            ..EndpointSettings::default()
        }
    }

    #[test]
    fn the_default_endpoint_applies_when_no_list_matches() {
        let s = EndpointSettings::default();
        assert_eq!(
            choose(&s, "openai/gpt-4o", false, false),
            Choice::Use(Endpoint::Responses)
        );
        let s = EndpointSettings {
            default_llm_endpoint: "chat_completions".into(),
            ..EndpointSettings::default()
        };
        assert_eq!(
            choose(&s, "openai/gpt-4o", false, false),
            Choice::Use(Endpoint::ChatCompletions)
        );
    }

    #[test]
    fn force_lists_match_slash_and_dotted_forms_and_responses_wins() {
        let table: &[(&str, &str, &str, Endpoint)] = &[
            // (chat list, responses list, model id, expected)
            ("openai/*", "", "openai/gpt-4o", Endpoint::ChatCompletions),
            ("openai.*", "", "openai/gpt-4o", Endpoint::ChatCompletions),
            ("openai/*", "", "openai.gpt-4.1", Endpoint::ChatCompletions),
            (
                "x/y, openai/gpt-4*",
                "",
                "openai/gpt-4o",
                Endpoint::ChatCompletions,
            ),
            (
                "openai/*",
                "openai/gpt-4o",
                "openai/gpt-4o",
                Endpoint::Responses,
            ),
            ("*", "*", "openai/gpt-4o", Endpoint::Responses),
            ("OpenAI/*", "", "openai/gpt-4o", Endpoint::Responses),
            // Router aliases start with `~`, so an author glob does not catch them.
            (
                "anthropic/*",
                "",
                "~anthropic/claude-sonnet-latest",
                Endpoint::Responses,
            ),
            (
                "~anthropic/*",
                "",
                "~anthropic/claude-sonnet-latest",
                Endpoint::ChatCompletions,
            ),
            (" , ,", "", "openai/gpt-4o", Endpoint::Responses),
        ];
        for (chat, responses, model, want) in table {
            assert_eq!(
                choose(&settings(chat, responses), model, false, false),
                Choice::Use(*want),
                "chat={chat:?} responses={responses:?} model={model:?}"
            );
        }
    }

    #[test]
    fn presets_and_chat_only_inputs_force_chat_unless_pinned_to_responses() {
        let s = settings("", "");
        assert_eq!(
            choose(&s, "openai/gpt-4o", true, false),
            Choice::Use(Endpoint::ChatCompletions)
        );
        assert_eq!(
            choose(&s, "openai/gpt-4o", false, true),
            Choice::Use(Endpoint::ChatCompletions)
        );
        let pinned = settings("", "openai/*");
        let conflict = Choice::Conflict {
            required: Endpoint::ChatCompletions,
            forced: Endpoint::Responses,
        };
        assert_eq!(choose(&pinned, "openai/gpt-4o", true, false), conflict);
        assert_eq!(choose(&pinned, "openai/gpt-4o", false, true), conflict);
        assert_eq!(
            choose(&pinned, "google/gemini", false, true),
            Choice::Use(Endpoint::ChatCompletions)
        );
    }

    #[test]
    fn settings_parse_with_reference_defaults() {
        let s = EndpointSettings::parse(r#"{"FORCE_RESPONSES_MODELS":"a/*","OTHER":1}"#).unwrap();
        assert_eq!(s.force_responses_models, "a/*");
        assert!(s.auto_fallback_chat_completions);
        assert_eq!(s.default_endpoint(), Endpoint::Responses);
        assert_eq!(
            EndpointSettings::parse("").unwrap(),
            EndpointSettings::default()
        );
        let s = EndpointSettings::parse(
            r#"{"DEFAULT_LLM_ENDPOINT":"chat_completions","AUTO_FALLBACK_CHAT_COMPLETIONS":false}"#,
        )
        .unwrap();
        assert_eq!(s.default_endpoint(), Endpoint::ChatCompletions);
        assert!(!s.auto_fallback_chat_completions);
        assert_eq!(Endpoint::ChatCompletions.path(), "/chat/completions");
    }

    #[test]
    fn unsupported_endpoint_errors_are_recognised() {
        let table: &[(u16, &str, bool)] = &[
            (400, r#"{"error":{"code":"unsupported_endpoint"}}"#, true),
            (
                400,
                r#"{"error":{"code":"unsupported_feature","message":"x"}}"#,
                true,
            ),
            (404, r#"{"error":{"code":"endpoint_not_supported"}}"#, true),
            (400, r#"{"error":{"code":"RESPONSES_NOT_SUPPORTED"}}"#, true),
            (
                400,
                r#"{"error":{"code":400,"message":"x","metadata":{"error_type":"unsupported_endpoint"}}}"#,
                true,
            ),
            (
                400,
                r#"{"error":{"code":400,"message":"The Responses API is not supported for this model"}}"#,
                true,
            ),
            (
                400,
                r#"{"error":{"code":400,"message":"This provider does not support responses"}}"#,
                true,
            ),
            (
                404,
                r#"{"error":{"code":404,"message":"Response format unsupported here"}}"#,
                true,
            ),
            (
                400,
                r#"{"error":{"code":400,"message":"Use /chat/completions for this model"}}"#,
                true,
            ),
            (
                404,
                r#"{"error":{"code":404,"message":"No endpoints found for transport openai-responses-v1"}}"#,
                true,
            ),
            (
                400,
                r#"{"error":{"message":"xai-responses-v1 failed"}}"#,
                true,
            ),
            // The provider's own message inside `metadata.raw` counts too.
            (
                400,
                r#"{"error":{"code":400,"message":"Provider returned error","metadata":{"raw":"{\"error\":{\"message\":\"responses endpoint not supported\"}}"}}}"#,
                true,
            ),
            (500, "Responses are not supported by this upstream", true),
            // Not about the endpoint.
            (
                400,
                r#"{"error":{"code":400,"message":"Invalid input"}}"#,
                false,
            ),
            (
                400,
                r#"{"error":{"code":400,"message":"Image input is not supported"}}"#,
                false,
            ),
            (
                400,
                r#"{"error":{"code":400,"message":"response too long"}}"#,
                false,
            ),
            (
                502,
                r#"{"error":{"code":502,"message":"Provider returned error"}}"#,
                false,
            ),
            (400, "", false),
            // Statuses a different endpoint cannot fix.
            (429, r#"{"error":{"code":"unsupported_endpoint"}}"#, false),
            (
                401,
                r#"{"error":{"message":"bad key for /chat/completions"}}"#,
                false,
            ),
            (200, r#"{"error":{"code":"unsupported_endpoint"}}"#, false),
        ];
        for (status, body, want) in table {
            assert_eq!(
                looks_unsupported(*status, body.as_bytes()),
                *want,
                "{status} {body}"
            );
        }
    }
}
