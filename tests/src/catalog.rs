//! The fake model catalogue: what `GET /api/v1/models` and `GET /api/v1/endpoints/zdr` return.
//!
//! Every scenario model (`fake/*`) is listed so a client that validates model ids against the
//! catalogue accepts them, next to a handful of realistic OpenRouter entries whose modalities,
//! prices and supported parameters differ, so capability and filter logic downstream has
//! something to tell apart. The shapes follow the `Model` and `PublicEndpoint` schemas of
//! OpenRouter's OpenAPI document; prices are decimal strings in USD per token, as upstream.
//! The query filters implemented are the ones the reference pipe sends (`output_modalities`,
//! `supported_parameters`, `input_modalities`, `q`, `offset`/`limit`), with upstream's default of
//! listing only models that can output text.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::scenarios::Scenario;

/// USD per prompt token for every `fake/*` model; [`crate::scenarios::fake_cost`] uses the same
/// numbers so the cost in `usage` matches the catalogue.
pub const FAKE_PROMPT_PRICE: &str = "0.000001";
/// USD per completion token for every `fake/*` model.
pub const FAKE_COMPLETION_PRICE: &str = "0.000002";

/// Upstream caps `limit` at 1000 (OpenAPI `getModels`).
const MAX_LIMIT: usize = 1000;

/// The variable part of one catalogue entry; everything else is derived in [`ModelSpec::to_json`].
struct ModelSpec {
    id: &'static str,
    name: &'static str,
    created: u64,
    description: &'static str,
    context_length: u64,
    max_completion_tokens: u64,
    input_modalities: &'static [&'static str],
    output_modalities: &'static [&'static str],
    tokenizer: &'static str,
    instruct_type: Option<&'static str>,
    prompt: &'static str,
    completion: &'static str,
    image: &'static str,
    web_search: &'static str,
    input_cache_read: &'static str,
    is_moderated: bool,
    supported_parameters: &'static [&'static str],
}

impl ModelSpec {
    fn to_json(&self) -> Value {
        let reasons = self.supported_parameters.contains(&"reasoning");
        let modality = format!(
            "{}->{}",
            self.input_modalities.join("+"),
            self.output_modalities.join("+")
        );
        let mut model = json!({
            "id": self.id,
            "canonical_slug": self.id.trim_end_matches(":free"),
            "hugging_face_id": null,
            "name": self.name,
            "created": self.created,
            "description": self.description,
            "context_length": self.context_length,
            "architecture": {
                "modality": modality,
                "input_modalities": self.input_modalities,
                "output_modalities": self.output_modalities,
                "tokenizer": self.tokenizer,
                "instruct_type": self.instruct_type,
            },
            "pricing": {
                "prompt": self.prompt,
                "completion": self.completion,
                "request": "0",
                "image": self.image,
                "web_search": self.web_search,
                "internal_reasoning": "0",
                "input_cache_read": self.input_cache_read,
            },
            "top_provider": {
                "context_length": self.context_length,
                "max_completion_tokens": self.max_completion_tokens,
                "is_moderated": self.is_moderated,
            },
            "per_request_limits": null,
            "supported_parameters": self.supported_parameters,
            "default_parameters": null,
            "supported_voices": null,
            "expiration_date": null,
            "knowledge_cutoff": null,
            "links": { "details": format!("/api/v1/models/{}/endpoints", self.id) },
        });
        // Upstream omits `reasoning` for models that cannot reason (`ModelReasoning` schema).
        if reasons && let Some(object) = model.as_object_mut() {
            object.insert(
                "reasoning".to_owned(),
                json!({
                    "mandatory": false,
                    "default_enabled": false,
                    "default_effort": "medium",
                    "supported_efforts": ["high", "medium", "low", "minimal"],
                }),
            );
        }
        model
    }
}

/// What every scenario model accepts: enough for a client that gates features on
/// `supported_parameters` to send tools and reasoning to any of them.
const FAKE_PARAMETERS: &[&str] = &[
    "tools",
    "tool_choice",
    "reasoning",
    "include_reasoning",
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "response_format",
    "structured_outputs",
];

fn fake_spec(id: &'static str) -> ModelSpec {
    ModelSpec {
        id,
        name: fake_name(id),
        created: 1_735_689_600,
        description: "Scripted test model served by the fake OpenRouter; its id selects the behaviour.",
        context_length: 32_768,
        max_completion_tokens: 8_192,
        input_modalities: &["text"],
        // `fake/image` generates images, so it is listed as an image-output model (which the
        // pipe must never offer server tools to) that still takes tools.
        output_modalities: if id == "fake/image" {
            &["image", "text"]
        } else {
            &["text"]
        },
        tokenizer: "Other",
        instruct_type: None,
        prompt: FAKE_PROMPT_PRICE,
        completion: FAKE_COMPLETION_PRICE,
        image: "0",
        web_search: "0",
        input_cache_read: "0",
        is_moderated: false,
        supported_parameters: FAKE_PARAMETERS,
    }
}

/// Display names in OpenRouter's "Author: Model" style.
fn fake_name(id: &str) -> &'static str {
    match id {
        "fake/echo" => "Fake: Echo",
        "fake/reasoning" => "Fake: Reasoning",
        "fake/slow" => "Fake: Slow",
        "fake/drop" => "Fake: Dropped Connection",
        "fake/no-terminal" => "Fake: No Terminal Event",
        "fake/malformed" => "Fake: Malformed Event",
        "fake/failed" => "Fake: Failed Response",
        "fake/mid-failure" => "Fake: Failure Mid-Stream",
        "fake/error-event" => "Fake: Error Event",
        "fake/html" => "Fake: HTML Page",
        "fake/responses-unsupported" => "Fake: Chat Completions Only",
        "fake/effort-picky" => "Fake: Picky Reasoning Effort",
        "fake/signature" => "Fake: Reasoning Signature Check",
        "fake/citations" => "Fake: Citations",
        "fake/incomplete" => "Fake: Incomplete Answer",
        "fake/image" => "Fake: Image Generation",
        "fake/tool-call" => "Fake: Calls a Tool",
        "fake/tool-call-late" => "Fake: Calls a Tool (Late Arguments)",
        "fake/tool-parallel" => "Fake: Calls Tools in Parallel",
        "fake/tool-many" => "Fake: Calls One Tool Many Times",
        "fake/tool-forever" => "Fake: Calls Tools Forever",
        "fake/tool-call-bad" => "Fake: Calls a Tool Badly",
        "fake/no-thoughts" => "Fake: Refuses Thoughts",
        "fake/flaky-start" => "Fake: Flaky Start",
        "fake/cut-start" => "Fake: Cut Before Output",
        "fake/slow-start" => "Fake: Slow Start",
        "fake/typed-error" => "Fake: Typed Error",
        "fake/chat-bridge" => "Fake: Chat Completions Bridge",
        "fake/unsupported-stream" => "Fake: Unsupported Mid-Stream",
        "fake/fusion" => "Fake: Fusion Run",
        "fake/server-tools" => "Fake: Server Tools",
        "fake/no-deltas" => "Fake: No Deltas",
        "fake/refusal" => "Fake: Refusal",
        _ => "Fake: HTTP Error Status",
    }
}

fn realistic_specs() -> [ModelSpec; 7] {
    [
        ModelSpec {
            id: "openai/gpt-4o-2024-08-06",
            name: "OpenAI: GPT-4o (2024-08-06)",
            created: 1_722_902_400,
            description: "The 2024-08-06 version of GPT-4o, with structured outputs and image and file input.",
            context_length: 128_000,
            max_completion_tokens: 16_384,
            input_modalities: &["text", "image", "file"],
            output_modalities: &["text"],
            tokenizer: "GPT",
            instruct_type: None,
            prompt: "0.0000025",
            completion: "0.00001",
            image: "0.003613",
            web_search: "0.01",
            input_cache_read: "0.00000125",
            is_moderated: true,
            supported_parameters: &[
                "frequency_penalty",
                "logit_bias",
                "logprobs",
                "max_tokens",
                "presence_penalty",
                "response_format",
                "seed",
                "stop",
                "structured_outputs",
                "temperature",
                "tool_choice",
                "tools",
                "top_logprobs",
                "top_p",
                "web_search_options",
            ],
        },
        ModelSpec {
            id: "anthropic/claude-sonnet-4.5",
            name: "Anthropic: Claude Sonnet 4.5",
            created: 1_759_161_676,
            description: "Anthropic's Sonnet 4.5, tuned for agents and coding, with extended thinking.",
            context_length: 1_000_000,
            max_completion_tokens: 64_000,
            input_modalities: &["text", "image"],
            output_modalities: &["text"],
            tokenizer: "Claude",
            instruct_type: None,
            prompt: "0.000003",
            completion: "0.000015",
            image: "0.0048",
            web_search: "0.01",
            input_cache_read: "0.0000003",
            is_moderated: false,
            supported_parameters: &[
                "include_reasoning",
                "max_tokens",
                "reasoning",
                "response_format",
                "stop",
                "structured_outputs",
                "temperature",
                "tool_choice",
                "tools",
                "top_k",
                "top_p",
            ],
        },
        ModelSpec {
            id: "google/gemini-2.5-flash",
            name: "Google: Gemini 2.5 Flash",
            created: 1_750_172_488,
            description: "Google's workhorse model with built-in thinking and image, audio and video input.",
            context_length: 1_048_576,
            max_completion_tokens: 65_535,
            input_modalities: &["text", "image", "audio", "video", "file"],
            output_modalities: &["text"],
            tokenizer: "Gemini",
            instruct_type: None,
            prompt: "0.0000003",
            completion: "0.0000025",
            image: "0.001238",
            web_search: "0",
            input_cache_read: "0.000000075",
            is_moderated: false,
            supported_parameters: &[
                "include_reasoning",
                "max_tokens",
                "reasoning",
                "response_format",
                "seed",
                "stop",
                "structured_outputs",
                "temperature",
                "tool_choice",
                "tools",
                "top_p",
            ],
        },
        ModelSpec {
            id: "meta-llama/llama-3.3-70b-instruct:free",
            name: "Meta: Llama 3.3 70B Instruct (free)",
            created: 1_733_506_137,
            description: "Multilingual 70B instruction-tuned model; the free variant has rate limits and no tool use.",
            context_length: 131_072,
            max_completion_tokens: 4_096,
            input_modalities: &["text"],
            output_modalities: &["text"],
            tokenizer: "Llama3",
            instruct_type: Some("llama3"),
            prompt: "0",
            completion: "0",
            image: "0",
            web_search: "0",
            input_cache_read: "0",
            is_moderated: false,
            supported_parameters: &[
                "frequency_penalty",
                "max_tokens",
                "presence_penalty",
                "repetition_penalty",
                "stop",
                "temperature",
                "top_k",
                "top_p",
            ],
        },
        ModelSpec {
            id: "openai/gpt-image-1",
            name: "OpenAI: GPT Image 1",
            created: 1_745_366_400,
            description: "Image generation model that answers with images and text.",
            context_length: 32_000,
            max_completion_tokens: 8_192,
            input_modalities: &["text", "image"],
            output_modalities: &["image", "text"],
            tokenizer: "GPT",
            instruct_type: None,
            prompt: "0.000005",
            completion: "0.00004",
            image: "0.00001",
            web_search: "0",
            input_cache_read: "0.00000125",
            is_moderated: true,
            supported_parameters: &["max_tokens", "response_format", "seed", "temperature"],
        },
        ModelSpec {
            id: "mistralai/mistral-small-2024-09-18",
            name: "Mistral: Mistral Small (2024-09-18)",
            created: 1_704_844_800,
            description: "The 2024-09-18 version of Mistral Small, listed before the undated id as upstream lists dated versions beside their alias.",
            context_length: 32_768,
            max_completion_tokens: 8_192,
            input_modalities: &["text"],
            output_modalities: &["text"],
            tokenizer: "Mistral",
            instruct_type: None,
            prompt: "0.0000002",
            completion: "0.0000006",
            image: "0",
            web_search: "0",
            input_cache_read: "0",
            is_moderated: false,
            supported_parameters: &[
                "frequency_penalty",
                "max_tokens",
                "presence_penalty",
                "response_format",
                "seed",
                "stop",
                "structured_outputs",
                "temperature",
                "tool_choice",
                "tools",
                "top_p",
            ],
        },
        ModelSpec {
            id: "mistralai/mistral-small",
            name: "Mistral: Mistral Small",
            created: 1_704_844_800,
            description: "Mistral's efficient small model with function calling and no reasoning mode.",
            context_length: 32_768,
            max_completion_tokens: 8_192,
            input_modalities: &["text"],
            output_modalities: &["text"],
            tokenizer: "Mistral",
            instruct_type: None,
            prompt: "0.0000002",
            completion: "0.0000006",
            image: "0",
            web_search: "0",
            input_cache_read: "0",
            is_moderated: false,
            supported_parameters: &[
                "frequency_penalty",
                "max_tokens",
                "presence_penalty",
                "response_format",
                "seed",
                "stop",
                "structured_outputs",
                "temperature",
                "tool_choice",
                "tools",
                "top_p",
            ],
        },
    ]
}

/// Every model the fake knows, scenario models first, as `/models` items.
#[must_use]
pub fn all_models() -> Vec<Value> {
    Scenario::MODEL_IDS
        .iter()
        .map(|id| fake_spec(id).to_json())
        .chain(realistic_specs().iter().map(ModelSpec::to_json))
        .collect()
}

/// The `/models` body for the given query parameters: `{"data":[...]}`.
#[must_use]
pub fn models_body(query: &HashMap<String, String>) -> Value {
    let output = list_param(query, "output_modalities").unwrap_or_else(|| vec!["text".to_owned()]);
    let input = list_param(query, "input_modalities").unwrap_or_default();
    let parameters = list_param(query, "supported_parameters").unwrap_or_default();
    let needle = query.get("q").map(|q| q.to_lowercase());
    let offset = query
        .get("offset")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let limit = query
        .get("limit")
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(usize::MAX, |l| l.clamp(1, MAX_LIMIT));

    let data: Vec<Value> = all_models()
        .into_iter()
        .filter(|model| {
            // "all" lists everything; otherwise a model matches if it outputs any listed modality.
            output.iter().any(|m| m == "all")
                || output
                    .iter()
                    .any(|m| has(model, "/architecture/output_modalities", m))
        })
        .filter(|model| {
            input
                .iter()
                .all(|m| has(model, "/architecture/input_modalities", m))
        })
        .filter(|model| {
            parameters
                .iter()
                .all(|p| has(model, "/supported_parameters", p))
        })
        .filter(|model| {
            needle.as_deref().is_none_or(|needle| {
                ["/id", "/name"].iter().any(|pointer| {
                    model
                        .pointer(pointer)
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.to_lowercase().contains(needle))
                })
            })
        })
        .skip(offset)
        .take(limit)
        .collect();
    json!({ "data": data })
}

/// Models with a zero-data-retention endpoint: one realistic, one scenario model, so ZDR
/// filtering downstream both keeps and drops something.
const ZDR_MODELS: [&str; 2] = ["openai/gpt-4o-2024-08-06", "fake/echo"];

/// The `/endpoints/zdr` body: the endpoints that promise zero data retention.
#[must_use]
pub fn zdr_body() -> Value {
    let models = all_models();
    let data: Vec<Value> = ZDR_MODELS
        .iter()
        .filter_map(|wanted| {
            models
                .iter()
                .find(|model| model.get("id").and_then(Value::as_str) == Some(*wanted))
        })
        .map(|model| {
            let id = model.get("id").and_then(Value::as_str).unwrap_or_default();
            let provider = if id.starts_with("openai/") {
                "OpenAI"
            } else {
                "FakeProvider"
            };
            json!({
                "model_id": id,
                "model_name": model.get("name"),
                "name": format!("{provider} | {id}"),
                "provider_name": provider,
                "tag": provider.to_lowercase(),
                "context_length": model.get("context_length"),
                "max_completion_tokens": model.pointer("/top_provider/max_completion_tokens"),
                "max_prompt_tokens": model.get("context_length"),
                "pricing": model.get("pricing"),
                "quantization": "unknown",
                "status": 0,
                "supported_parameters": model.get("supported_parameters"),
                "supports_implicit_caching": false,
                "uptime_last_30m": 100.0,
            })
        })
        .collect();
    json!({ "data": data })
}

/// A comma-separated query parameter, trimmed, empty entries dropped; `None` when absent.
fn list_param(query: &HashMap<String, String>, name: &str) -> Option<Vec<String>> {
    query.get(name).map(|raw| {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

fn has(model: &Value, pointer: &str, wanted: &str) -> bool {
    model
        .pointer(pointer)
        .and_then(Value::as_array)
        .is_some_and(|list| list.iter().any(|v| v.as_str() == Some(wanted)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(body: &Value) -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    }

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_default_list_holds_every_scenario_model_and_the_realistic_ones() {
        let listed = ids(&models_body(&HashMap::new()));
        for id in Scenario::MODEL_IDS {
            assert!(listed.iter().any(|l| l == id), "{id} missing");
        }
        for id in [
            "openai/gpt-4o-2024-08-06",
            "anthropic/claude-sonnet-4.5",
            "google/gemini-2.5-flash",
            "meta-llama/llama-3.3-70b-instruct:free",
            "openai/gpt-image-1",
            "mistralai/mistral-small",
        ] {
            assert!(listed.iter().any(|l| l == id), "{id} missing");
        }
    }

    #[test]
    fn every_model_carries_the_fields_clients_read() {
        for model in all_models() {
            for pointer in [
                "/id",
                "/canonical_slug",
                "/name",
                "/created",
                "/description",
                "/context_length",
                "/architecture/modality",
                "/architecture/input_modalities",
                "/architecture/output_modalities",
                "/architecture/tokenizer",
                "/architecture/instruct_type",
                "/pricing/prompt",
                "/pricing/completion",
                "/pricing/request",
                "/pricing/image",
                "/pricing/web_search",
                "/pricing/internal_reasoning",
                "/pricing/input_cache_read",
                "/top_provider/context_length",
                "/top_provider/max_completion_tokens",
                "/top_provider/is_moderated",
                "/per_request_limits",
                "/supported_parameters",
            ] {
                assert!(
                    model.pointer(pointer).is_some(),
                    "{} lacks {pointer}",
                    model["id"]
                );
            }
            for price in model["pricing"].as_object().unwrap().values() {
                let text = price.as_str().expect("prices are decimal strings");
                assert!(text.parse::<f64>().is_ok(), "{text} is not a decimal");
            }
        }
    }

    #[test]
    fn supported_parameters_filter_drops_models_without_tools() {
        let listed = ids(&models_body(&query(&[("supported_parameters", "tools")])));
        assert!(listed.iter().any(|id| id == "fake/echo"));
        assert!(listed.iter().any(|id| id == "mistralai/mistral-small"));
        assert!(
            !listed
                .iter()
                .any(|id| id == "meta-llama/llama-3.3-70b-instruct:free")
        );
        assert!(!listed.iter().any(|id| id == "openai/gpt-image-1"));
    }

    #[test]
    fn output_modality_image_lists_only_image_models() {
        let listed = ids(&models_body(&query(&[("output_modalities", "image")])));
        assert_eq!(
            listed,
            vec!["fake/image".to_owned(), "openai/gpt-image-1".to_owned()]
        );
    }

    #[test]
    fn limit_one_returns_a_single_model() {
        assert_eq!(ids(&models_body(&query(&[("limit", "1")]))).len(), 1);
    }

    #[test]
    fn zdr_lists_gpt_4o_and_the_echo_model() {
        let body = zdr_body();
        let ids: Vec<&str> = body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["model_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec!["openai/gpt-4o-2024-08-06", "fake/echo"]);
    }

    #[test]
    fn free_models_cost_nothing_and_image_models_output_images() {
        let models = all_models();
        let free = models
            .iter()
            .find(|m| m["id"] == "meta-llama/llama-3.3-70b-instruct:free")
            .unwrap();
        for price in free["pricing"].as_object().unwrap().values() {
            assert_eq!(price, "0");
        }
        let image = models
            .iter()
            .find(|m| m["id"] == "openai/gpt-image-1")
            .unwrap();
        assert_eq!(
            image["architecture"]["output_modalities"],
            json!(["image", "text"])
        );
    }
}
