//! What the pipe knows about one model: its catalog entry (id, limits, pricing, capabilities)
//! and the pure helpers on its id. Filled by `catalog`, read by request translation and the tool
//! loop.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a model can do, from `supported_parameters`, `architecture` and `pricing`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub vision: bool,
    pub file_input: bool,
    pub audio_input: bool,
    pub video_input: bool,
    pub reasoning: bool,
    pub reasoning_summary: bool,
    pub tools: bool,
    pub web_search: bool,
    pub image_output: bool,
}

/// One catalog entry, compact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// OpenRouter's slug, e.g. `openai/gpt-4o-2024-08-06`; what we send upstream and expose.
    pub id: String,
    pub name: String,
    pub created: Option<u64>,
    pub context_length: Option<u64>,
    pub max_completion_tokens: Option<u64>,
    pub capabilities: Capabilities,
    /// OpenRouter's pricing object as given (decimal strings, USD per token).
    pub pricing: Value,
    pub supported_parameters: Vec<String>,
}

/// The id without its `:variant` / `@preset` suffix (variants are judged by their base).
pub fn base_id(id: &str) -> &str {
    let cut = id.find([':', '@']).unwrap_or(id.len());
    &id[..cut]
}

/// The id to send upstream: a `base:preset/slug` variant becomes `base@preset/slug`.
pub fn api_model_id(id: &str) -> String {
    match id.split_once(":preset/") {
        Some((base, slug)) => format!("{base}@preset/{slug}"),
        None => id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_map_to_the_at_form_and_variants_have_a_base() {
        assert_eq!(
            api_model_id("anthropic/claude-sonnet-4.5:preset/my-team"),
            "anthropic/claude-sonnet-4.5@preset/my-team"
        );
        assert_eq!(base_id("openai/gpt-4o:nitro"), "openai/gpt-4o");
    }
}
