//! The model catalog: OpenRouter's `GET /models` reduced to what the pipe needs, capabilities
//! detected as the reference pipe does, ids normalised, the `MODEL_ID`
//! allowlist applied, and the whole thing cached in `kv` for `MODEL_CATALOG_REFRESH_SECONDS`.
//! A failed refresh serves the stale list and backs off exponentially (5 s doubling, capped at
//! the TTL and at 5·2^5 s).

use crate::caps::{Env, HttpRequest, Kv, Method, Upstream, read_body};
use crate::errors;
use crate::model::{Capabilities, ModelInfo, base_id};
use crate::openrouter::OpenRouterSettings;
use crate::types::{ErrorBody, PipeError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Largest `/models` document we accept (OpenRouter's full catalog is ~1–2 MB).
const MAX_CATALOG_BYTES: usize = 32 << 20;
/// Largest cached value we read back from kv.
const MAX_KV_BYTES: u32 = 32 << 20;
/// How long one refresh may hold the refresh lock.
const REFRESH_LOCK_MS: u64 = 60_000;

const KEY_META: &str = "catalog:v1:meta";
const KEY_LIST: &str = "catalog:v1:list";
const KEY_MODEL_PREFIX: &str = "catalog:v1:model:";
const KEY_ZDR: &str = "catalog:v1:zdr";
const LOCK_REFRESH: &str = "catalog:v1:refresh";

/// The settings the catalog reads (defaults: the settings table).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct CatalogSettings {
    /// `auto`, or a CSV of the model ids this server offers.
    pub model_id: String,
    pub model_catalog_refresh_seconds: u64,
    /// `all` / `only` / `exclude` free models.
    pub free_model_filter: String,
    /// `all` / `only` / `exclude` tool-capable models.
    pub tool_calling_filter: String,
    pub zdr_models_only: bool,
    /// `ZDR_ENFORCE` is shared with request translation, whose settings group owns it for serde;
    /// `Settings::parse` copies it here.
    #[serde(skip)]
    pub zdr_enforce: bool,
    /// CSV of `base:tag` entries exposed as extra models (`base:preset/slug` for presets).
    pub variant_models: String,
}

impl CatalogSettings {
    /// The catalog TTL, never below the reference minimum of 60 s.
    pub fn catalog_ttl_ms(&self) -> u64 {
        self.model_catalog_refresh_seconds
            .max(60)
            .saturating_mul(1000)
    }
}

/// Freshness bookkeeping, stored beside the list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogMeta {
    /// When the list now in kv was fetched (0 = never).
    pub generation_ms: u64,
    pub next_refresh_ms: u64,
    pub consecutive_failures: u32,
}

/// A per-model cache entry, tagged with the generation it belongs to.
#[derive(Serialize, Deserialize)]
struct ModelEntry {
    generation_ms: u64,
    model: ModelInfo,
}

/// Capability detection, the same rules as the Python pipe (so both show the same models as
/// vision-, file- or tool-capable).
pub fn detect_capabilities(raw: &Value) -> Capabilities {
    let params: BTreeSet<&str> = raw
        .get("supported_parameters")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let modalities = |key: &str| -> BTreeSet<String> {
        raw.pointer(&format!("/architecture/{key}"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_ascii_lowercase)
                    .collect()
            })
            .unwrap_or_default()
    };
    let input = modalities("input_modalities");
    let output = modalities("output_modalities");
    Capabilities {
        vision: input.contains("image"),
        // OpenRouter's file-parser plugin reads PDFs for any model, so the reference pipe turns
        // file input on for every model.
        file_input: true,
        audio_input: input.contains("audio"),
        video_input: input.contains("video"),
        reasoning: params.contains("reasoning"),
        reasoning_summary: params.contains("include_reasoning"),
        tools: params.contains("tools") || params.contains("tool_choice"),
        web_search: raw
            .pointer("/pricing/web_search")
            .is_some_and(|v| !v.is_null()),
        image_output: output.contains("image"),
    }
}

fn as_u64(v: Option<&Value>) -> Option<u64> {
    v.and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f as u64)))
}

/// Parse a `/models` document into compact entries; an empty or malformed list is an error.
pub fn parse_models(bytes: &[u8]) -> Result<Vec<ModelInfo>, String> {
    let doc: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the catalog is not JSON: {e}"))?;
    let data = doc
        .get("data")
        .and_then(Value::as_array)
        .or_else(|| doc.as_array())
        .ok_or("the catalog has no `data` list")?;
    let models: Vec<ModelInfo> = data
        .iter()
        .filter_map(|raw| {
            let id = raw.get("id")?.as_str()?.trim();
            if id.is_empty() {
                return None;
            }
            Some(ModelInfo {
                id: id.to_string(),
                name: raw
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or(id)
                    .to_string(),
                created: as_u64(raw.get("created")),
                context_length: as_u64(raw.get("context_length"))
                    .or_else(|| as_u64(raw.pointer("/top_provider/context_length"))),
                max_completion_tokens: as_u64(raw.pointer("/top_provider/max_completion_tokens")),
                capabilities: detect_capabilities(raw),
                pricing: raw.get("pricing").cloned().unwrap_or(Value::Null),
                supported_parameters: raw
                    .get("supported_parameters")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect();
    if models.is_empty() {
        return Err("the catalog is empty".to_string());
    }
    Ok(models)
}

/// The exact matching key of a model id: lowercase, the dotted Open WebUI form turned back into
/// a slug; a date suffix and a `:variant` suffix are kept as they are.
pub fn exact_key(id: &str) -> String {
    key_of(id, false)
}

/// The canonical matching key of a model id: the [`exact_key`] with a trailing `-YYYY-MM-DD`
/// date removed (a `:variant` suffix is kept as it is).
pub fn canonical_key(id: &str) -> String {
    key_of(id, true)
}

fn key_of(id: &str, without_date: bool) -> String {
    let id = id.trim().to_ascii_lowercase();
    let (base, suffix) = match id.split_once(':') {
        Some((b, s)) => (b.to_string(), Some(s.to_string())),
        None => (id, None),
    };
    let base = if base.contains('/') {
        base
    } else {
        base.replacen('.', "/", 1)
    };
    let base = if without_date {
        strip_date(&base).to_string()
    } else {
        base
    };
    match suffix {
        Some(s) => format!("{base}:{s}"),
        None => base,
    }
}

/// The catalog model a requested id names: the model with exactly that id (any case, slug or
/// dotted form) always wins; only when there is none does the date suffix stop mattering, and
/// then the undated model is preferred over another dated one.
pub fn pick<'a>(models: &'a [ModelInfo], requested: &str) -> Option<&'a ModelInfo> {
    let exact = exact_key(requested);
    if let Some(m) = models.iter().find(|m| exact_key(&m.id) == exact) {
        return Some(m);
    }
    let canonical = canonical_key(requested);
    models
        .iter()
        .find(|m| exact_key(&m.id) == canonical)
        .or_else(|| models.iter().find(|m| canonical_key(&m.id) == canonical))
}

fn strip_date(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() > 11 {
        let tail = &b[b.len() - 11..];
        let digits = |r: std::ops::Range<usize>| tail[r].iter().all(u8::is_ascii_digit);
        if tail[0] == b'-'
            && digits(1..5)
            && tail[5] == b'-'
            && digits(6..8)
            && tail[8] == b'-'
            && digits(9..11)
        {
            return &s[..s.len() - 11];
        }
    }
    s
}

/// Apply the `MODEL_ID` allowlist: `auto` (or empty) keeps everything; otherwise keep the listed
/// models; if none of the listed ids exist the whole catalog is kept (reference behaviour).
pub fn apply_model_filter(models: Vec<ModelInfo>, model_id: &str) -> Vec<ModelInfo> {
    let Some(wanted) = wanted_set(model_id) else {
        return models;
    };
    let kept: Vec<ModelInfo> = models
        .iter()
        .filter(|m| wanted.contains(&canonical_key(&m.id)))
        .cloned()
        .collect();
    if kept.is_empty() { models } else { kept }
}

/// The reference's failure backoff: `max(5, min(ttl, 5·2^(n-1)))` seconds, exponent capped at 5.
pub fn backoff_ms(consecutive_failures: u32, ttl_ms: u64) -> u64 {
    let exp = consecutive_failures.saturating_sub(1).min(5);
    let secs = 5u64 << exp;
    (secs * 1000).min(ttl_ms).max(5000)
}

/// The OpenAI-style `/v1/models` document for a list of models.
pub fn to_openai_list(models: &[ModelInfo]) -> Value {
    let data: Vec<Value> = models
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "object": "model",
                "created": m.created.unwrap_or(0),
                "owned_by": m.id.split('/').next().unwrap_or("openrouter"),
                "name": m.name,
                "context_length": m.context_length,
                "max_output_tokens": m.max_completion_tokens,
                "capabilities": m.capabilities,
                "pricing": m.pricing,
            })
        })
        .collect();
    json!({ "object": "list", "data": data })
}

/// Reads and refreshes the cached catalog through the capabilities.
pub struct Catalog<'a, U, K, V> {
    pub settings: &'a CatalogSettings,
    pub openrouter: &'a OpenRouterSettings,
    pub upstream: &'a U,
    pub kv: &'a K,
    pub env: &'a V,
}

impl<U: Upstream, K: Kv, V: Env> Catalog<'_, U, K, V> {
    fn meta(&self) -> CatalogMeta {
        self.kv
            .get(KEY_META, 64 * 1024)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// A `GET {BASE_URL}{path}` asking for JSON, with the attribution headers.
    fn get_json(&self, path: &str) -> HttpRequest {
        let mut headers = self.openrouter.attribution_headers();
        headers.push(("Accept".to_string(), "application/json".to_string()));
        HttpRequest {
            method: Method::Get,
            url: format!("{}{path}", self.openrouter.base()),
            headers,
            body: None,
        }
    }

    fn unavailable(&self, detail: &str) -> PipeError {
        let id = errors::error_id(self.env.random_u64());
        PipeError::Unavailable(errors::body(
            &id,
            503,
            "service_unavailable",
            Some("catalog_unavailable"),
            &format!("The model catalog is unavailable: {detail}"),
        ))
    }

    /// Fetch `/models` now and store it; returns the fresh list.
    async fn refresh(&self, meta: &CatalogMeta) -> Result<Vec<ModelInfo>, String> {
        let request = self.get_json("/models");
        let result = async {
            let mut resp = self
                .upstream
                .send(request)
                .await
                .map_err(|e| e.to_string())?;
            let bytes = read_body(&mut resp.body, MAX_CATALOG_BYTES)
                .await
                .map_err(|e| e.to_string())?;
            if resp.status >= 400 {
                let parsed = errors::parse_openrouter_error(&bytes);
                return Err(format!(
                    "OpenRouter answered HTTP {}{}",
                    resp.status,
                    parsed.message.map(|m| format!(": {m}")).unwrap_or_default()
                ));
            }
            let models = parse_models(&bytes)?;
            Ok(with_variants(models, &self.settings.variant_models))
        }
        .await;
        let now = self.env.now_ms();
        let ttl = self.settings.catalog_ttl_ms();
        match result {
            Ok(models) => {
                let generation_ms = now.max(meta.generation_ms + 1);
                // Per-model entries first, so a reader that sees the new meta finds them.
                for m in &models {
                    let entry = ModelEntry {
                        generation_ms,
                        model: m.clone(),
                    };
                    if let Ok(bytes) = serde_json::to_vec(&entry) {
                        let _ = self.kv.set(
                            &format!("{KEY_MODEL_PREFIX}{}", exact_key(&m.id)),
                            &bytes,
                            None,
                        );
                    }
                }
                if let Ok(bytes) = serde_json::to_vec(&models) {
                    let _ = self.kv.set(KEY_LIST, &bytes, None);
                }
                // The ZDR list is advisory: when it cannot be fetched, ZDR status is unknown.
                let zdr = self.fetch_zdr().await;
                if let Ok(bytes) = serde_json::to_vec(&zdr) {
                    let _ = self.kv.set(KEY_ZDR, &bytes, None);
                }
                self.store_meta(&CatalogMeta {
                    generation_ms,
                    next_refresh_ms: now.saturating_add(ttl),
                    consecutive_failures: 0,
                });
                Ok(models)
            }
            Err(e) => {
                let failures = meta.consecutive_failures.saturating_add(1);
                self.store_meta(&CatalogMeta {
                    generation_ms: meta.generation_ms,
                    next_refresh_ms: now.saturating_add(backoff_ms(failures, ttl)),
                    consecutive_failures: failures,
                });
                Err(e)
            }
        }
    }

    /// `GET /endpoints/zdr`: the model ids with a zero-data-retention endpoint; `None` on failure.
    async fn fetch_zdr(&self) -> Option<Vec<String>> {
        let request = self.get_json("/endpoints/zdr");
        let mut resp = self.upstream.send(request).await.ok()?;
        let bytes = read_body(&mut resp.body, MAX_CATALOG_BYTES).await.ok()?;
        if resp.status >= 400 {
            return None;
        }
        parse_zdr(&bytes)
    }

    /// The ZDR set, read only when a ZDR rule applies (it is not needed on the usual path).
    fn zdr_set_if_needed(&self, zdr_requested: bool) -> Option<BTreeSet<String>> {
        let needed = self.settings.zdr_models_only || self.settings.zdr_enforce || zdr_requested;
        if needed { self.zdr_set() } else { None }
    }

    /// The cached ZDR set; `None` when unknown.
    fn zdr_set(&self) -> Option<BTreeSet<String>> {
        self.kv
            .get(KEY_ZDR, MAX_KV_BYTES)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice::<Option<Vec<String>>>(&b).ok())
            .flatten()
            .map(|ids| ids.iter().map(|i| canonical_key(i)).collect())
    }

    fn store_meta(&self, meta: &CatalogMeta) {
        if let Ok(bytes) = serde_json::to_vec(meta) {
            let _ = self.kv.set(KEY_META, &bytes, None);
        }
    }

    fn cached_list(&self) -> Option<Vec<ModelInfo>> {
        self.kv
            .get(KEY_LIST, MAX_KV_BYTES)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok())
    }

    /// Refresh when due. Returns the fresh list when this call refreshed it.
    async fn refresh_if_due(&self) -> Result<(CatalogMeta, Option<Vec<ModelInfo>>), PipeError> {
        let meta = self.meta();
        let now = self.env.now_ms();
        if meta.generation_ms != 0 && now < meta.next_refresh_ms {
            return Ok((meta, None));
        }
        if !self.openrouter.api_key_configured {
            if meta.generation_ms != 0 {
                return Ok((meta, None));
            }
            return Err(self.unavailable("no OpenRouter API key is configured on the host"));
        }
        // One refresh at a time; others serve the stale list. With nothing cached yet there is
        // nothing to serve, so a request that loses the race fetches too.
        let token = self.kv.lock(LOCK_REFRESH, REFRESH_LOCK_MS).ok().flatten();
        if token.is_none() && meta.generation_ms != 0 {
            return Ok((meta, None));
        }
        let result = self.refresh(&meta).await;
        if let Some(token) = token {
            let _ = self.kv.unlock(LOCK_REFRESH, &token);
        }
        match result {
            Ok(models) => Ok((self.meta(), Some(models))),
            // The stale list is served; the failure is counted in meta and backs off.
            Err(_) if meta.generation_ms != 0 => Ok((self.meta(), None)),
            Err(e) => Err(self.unavailable(&e)),
        }
    }

    /// All models after the `MODEL_ID` allowlist.
    pub async fn list(&self) -> Result<Vec<ModelInfo>, PipeError> {
        let (_, fresh) = self.refresh_if_due().await?;
        let models = match fresh {
            Some(m) => m,
            None => self
                .cached_list()
                .ok_or_else(|| self.unavailable("the cached catalog could not be read"))?,
        };
        let zdr = self.zdr_set_if_needed(false);
        let allowed = apply_model_filter(models, &self.settings.model_id);
        Ok(allowed
            .into_iter()
            .filter(|m| filter_reasons(m, self.settings, zdr.as_ref(), false).is_empty())
            .collect())
    }

    /// Find the model a request names and check it against the filters (`MODEL_ID`, free, tool
    /// calling, ZDR). `zdr_requested` is a per-chat ZDR request. Housekeeping tasks are checked
    /// like chats (the reference let them use any catalog model; here the operator's allowlist
    /// and filters hold for every request).
    pub async fn find(&self, requested: &str, zdr_requested: bool) -> Result<ModelInfo, PipeError> {
        let model = self.find_in_catalog(requested).await?;
        let reasons = filter_reasons(
            &model,
            self.settings,
            self.zdr_set_if_needed(zdr_requested).as_ref(),
            zdr_requested,
        );
        if reasons.is_empty() {
            return Ok(model);
        }
        let id = errors::error_id(self.env.random_u64());
        let mut body = errors::body(
            &id,
            403,
            "invalid_request_error",
            Some("model_restricted"),
            &format!(
                "The model `{}` is restricted on this server ({})",
                model.id,
                reasons.join(", ")
            ),
        );
        body.error_type = "permission_error".into();
        Err(PipeError::InvalidRequest(body))
    }

    /// Find the model a request names (slug, dotted form, any case, with or without a date
    /// suffix), honouring the `MODEL_ID` allowlist.
    async fn find_in_catalog(&self, requested: &str) -> Result<ModelInfo, PipeError> {
        let (meta, fresh) = self.refresh_if_due().await?;
        let key = canonical_key(requested);
        let wanted = wanted_set(&self.settings.model_id);
        let found = match fresh {
            Some(models) => {
                let any_listed_exists = wanted
                    .as_ref()
                    .is_none_or(|w| models.iter().any(|m| w.contains(&canonical_key(&m.id))));
                pick(&models, requested).cloned().filter(|_| {
                    !any_listed_exists || wanted.as_ref().is_none_or(|w| w.contains(&key))
                })
            }
            None => self
                .cached_model(requested, &meta)
                .filter(|_| match &wanted {
                    None => true,
                    Some(w) => {
                        w.contains(&key) || !w.iter().any(|k| self.cached_model(k, &meta).is_some())
                    }
                }),
        };
        found.ok_or_else(|| {
            let id = errors::error_id(self.env.random_u64());
            PipeError::InvalidRequest(not_found_body(&id, requested))
        })
    }

    /// The model a requested id names, from the cache: the per-model entry (by exact id) of the
    /// current generation, else a search of the whole list, which is always written as one
    /// consistent value (no model has that exact id, only a dated or undated form; or two
    /// refreshes raced and their entries and meta interleaved).
    fn cached_model(&self, requested: &str, meta: &CatalogMeta) -> Option<ModelInfo> {
        self.kv
            .get(
                &format!("{KEY_MODEL_PREFIX}{}", exact_key(requested)),
                1 << 20,
            )
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice::<ModelEntry>(&b).ok())
            .filter(|e| e.generation_ms == meta.generation_ms)
            .map(|e| e.model)
            .or_else(|| pick(&self.cached_list()?, requested).cloned())
    }
}

/// Parse `/endpoints/zdr`: each entry's `model_id` (or `id`).
pub fn parse_zdr(bytes: &[u8]) -> Option<Vec<String>> {
    let doc: Value = serde_json::from_slice(bytes).ok()?;
    let data = doc
        .get("data")
        .and_then(Value::as_array)
        .or_else(|| doc.as_array())?;
    Some(
        data.iter()
            .filter_map(|e| {
                e.get("model_id")
                    .or_else(|| e.get("id"))
                    .and_then(Value::as_str)
            })
            .map(str::to_string)
            .collect(),
    )
}

/// Free = every numeric price sums to zero, with at least one numeric price (nested objects and
/// lists understood, decimal strings parsed).
pub fn is_free(pricing: &Value) -> bool {
    fn walk(v: &Value, sum: &mut f64, seen: &mut bool) {
        match v {
            Value::Number(n) => {
                if let Some(f) = n.as_f64() {
                    *sum += f.abs();
                    *seen = true;
                }
            }
            Value::String(s) => {
                if let Ok(f) = s.trim().parse::<f64>() {
                    *sum += f.abs();
                    *seen = true;
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, sum, seen)),
            Value::Object(o) => o.values().for_each(|x| walk(x, sum, seen)),
            _ => {}
        }
    }
    let (mut sum, mut seen) = (0.0, false);
    walk(pricing, &mut sum, &mut seen);
    seen && sum == 0.0
}

/// Add the `VARIANT_MODELS` entries (`base:tag`), inheriting their base's metadata.
pub fn with_variants(mut models: Vec<ModelInfo>, variants: &str) -> Vec<ModelInfo> {
    let mut extra = Vec::new();
    for entry in variants.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        // `base@preset/slug` is the API spelling of the `base:preset/slug` variant.
        let (base, tag) = match entry.split_once("@preset/") {
            Some((base, slug)) => (base, format!("preset/{slug}")),
            None => match entry.split_once(':') {
                Some((base, tag)) => (base, tag.to_string()),
                None => continue,
            },
        };
        let tag = tag.as_str();
        let Some(m) = pick(&models, base) else {
            continue;
        };
        let mut v = m.clone();
        v.id = format!("{}:{}", m.id, tag.trim());
        v.name = format!("{} ({})", m.name, tag.trim());
        if !models
            .iter()
            .chain(extra.iter())
            .any(|x: &ModelInfo| x.id == v.id)
        {
            extra.push(v);
        }
    }
    models.extend(extra);
    models
}

/// Why a model is hidden or refused under the current filters (empty = allowed).
pub fn filter_reasons(
    m: &ModelInfo,
    s: &CatalogSettings,
    zdr: Option<&BTreeSet<String>>,
    zdr_requested: bool,
) -> Vec<String> {
    let mut reasons = Vec::new();
    let free = is_free(&m.pricing) || m.id.ends_with(":free");
    match s.free_model_filter.to_ascii_lowercase().as_str() {
        "only" if !free => reasons.push("FREE_MODEL_FILTER=only".to_string()),
        "exclude" if free => reasons.push("FREE_MODEL_FILTER=exclude".to_string()),
        _ => {}
    }
    match s.tool_calling_filter.to_ascii_lowercase().as_str() {
        "only" if !m.capabilities.tools => reasons.push("TOOL_CALLING_FILTER=only".to_string()),
        "exclude" if m.capabilities.tools => {
            reasons.push("TOOL_CALLING_FILTER=exclude".to_string())
        }
        _ => {}
    }
    let zdr_capable = zdr.map(|set| set.contains(&canonical_key(base_id(&m.id))));
    // A ZDR list that could not be fetched skips the list filter (the reference warns and shows all).
    if s.zdr_models_only && zdr_capable == Some(false) {
        reasons.push("ZDR_MODELS_ONLY".to_string());
    }
    if s.zdr_enforce || zdr_requested {
        match zdr_capable {
            Some(false) => reasons.push("ZDR_ENFORCE".to_string()),
            None => reasons.push("ZDR_ENFORCE_UNAVAILABLE".to_string()),
            Some(true) => {}
        }
    }
    reasons
}

/// The canonical keys `MODEL_ID` lists; `None` means `auto` (everything).
fn wanted_set(model_id: &str) -> Option<BTreeSet<String>> {
    let wanted: BTreeSet<String> = model_id
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(canonical_key)
        .collect();
    (!wanted.is_empty() && !wanted.contains("auto")).then_some(wanted)
}

fn not_found_body(error_id: &str, requested: &str) -> ErrorBody {
    let shown: String = requested.chars().take(200).collect();
    errors::body(
        error_id,
        404,
        "invalid_request_error",
        Some("model_not_found"),
        &format!("The model `{shown}` does not exist or is not available on this server"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::TransportError;
    use crate::testing::{Canned, FixedEnv, MemKv, ScriptedUpstream, block_on};
    use std::sync::LazyLock;

    const MODELS: &str = r#"{"data":[
        {"id":"openai/gpt-4o-2024-08-06","name":"GPT-4o","context_length":128000,
         "architecture":{"input_modalities":["text","image","file"],"output_modalities":["text"]},
         "pricing":{"prompt":"0.0000025","completion":"0.00001","web_search":"0.01"},
         "top_provider":{"max_completion_tokens":16384},
         "supported_parameters":["tools","tool_choice","max_tokens"]},
        {"id":"anthropic/claude-sonnet-4.5","name":"Claude",
         "architecture":{"input_modalities":["text","image"],"output_modalities":["text"]},
         "pricing":{"prompt":"0.000003","completion":"0.000015"},
         "supported_parameters":["reasoning","include_reasoning","tools"]},
        {"id":"google/gemini-2.5-flash-image","architecture":{"input_modalities":["text","audio","video"],"output_modalities":["image","text"]},
         "pricing":{"prompt":"0","completion":"0"},"supported_parameters":[]}
    ]}"#;

    /// OpenRouter with a key configured.
    static KEYED: LazyLock<OpenRouterSettings> = LazyLock::new(|| OpenRouterSettings {
        api_key_configured: true,
        ..OpenRouterSettings::default()
    });

    fn settings(model_id: &str) -> CatalogSettings {
        CatalogSettings {
            model_id: model_id.into(),
            ..CatalogSettings::default()
        }
    }

    #[test]
    fn capabilities_follow_the_reference_rules() {
        let models = parse_models(MODELS.as_bytes()).unwrap();
        let gpt = &models[0].capabilities;
        assert!(gpt.vision && gpt.tools && gpt.web_search && gpt.file_input);
        assert!(!gpt.reasoning && !gpt.image_output);
        let claude = &models[1].capabilities;
        assert!(claude.reasoning && claude.reasoning_summary && !claude.web_search);
        let gem = &models[2].capabilities;
        assert!(gem.image_output && gem.audio_input && gem.video_input && !gem.vision);
        assert_eq!(models[0].max_completion_tokens, Some(16384));
        assert!(
            parse_models(br#"{"data":[]}"#).is_err(),
            "an empty catalog is an error"
        );
    }

    #[test]
    fn ids_normalise_across_dots_case_and_dates() {
        assert_eq!(canonical_key("openai/gpt-4o-2024-08-06"), "openai/gpt-4o");
        assert_eq!(canonical_key("OpenAI.GPT-4o"), "openai/gpt-4o");
        assert_eq!(canonical_key("openai/gpt-4.1"), "openai/gpt-4.1");
        assert_eq!(
            canonical_key("meta-llama/llama-3.3-70b-instruct:free"),
            "meta-llama/llama-3.3-70b-instruct:free"
        );
    }

    #[test]
    fn the_model_id_allowlist_keeps_listed_models_or_everything_when_none_match() {
        let models = parse_models(MODELS.as_bytes()).unwrap();
        assert_eq!(apply_model_filter(models.clone(), "auto").len(), 3);
        let kept = apply_model_filter(models.clone(), "openai.gpt-4o, anthropic/claude-sonnet-4.5");
        assert_eq!(kept.len(), 2);
        assert_eq!(apply_model_filter(models, "nope/nothing").len(), 3);
    }

    #[test]
    fn catalog_ttl_is_never_below_sixty_seconds() {
        let s = CatalogSettings {
            model_catalog_refresh_seconds: 5,
            ..CatalogSettings::default()
        };
        assert_eq!(s.catalog_ttl_ms(), 60_000);
    }

    #[test]
    fn backoff_doubles_from_five_seconds_and_is_capped() {
        let ttl = 3_600_000;
        assert_eq!(backoff_ms(1, ttl), 5_000);
        assert_eq!(backoff_ms(2, ttl), 10_000);
        assert_eq!(backoff_ms(6, ttl), 160_000);
        assert_eq!(backoff_ms(20, ttl), 160_000);
        assert_eq!(backoff_ms(20, 60_000), 60_000);
    }

    #[test]
    fn the_catalog_is_cached_for_its_ttl_then_refreshed() {
        let up = ScriptedUpstream::default().on("/models", Ok(Canned::json(200, MODELS)));
        let (kv, env, s) = (MemKv::default(), FixedEnv::default(), settings("auto"));
        let cat = Catalog {
            settings: &s,
            openrouter: &KEYED,
            upstream: &up,
            kv: &kv,
            env: &env,
        };
        assert_eq!(block_on(cat.list()).unwrap().len(), 3);
        assert_eq!(
            block_on(cat.find("OPENAI.gpt-4o", false)).unwrap().id,
            "openai/gpt-4o-2024-08-06"
        );
        assert_eq!(up.count("/models"), 1, "served from the cache");
        env.now.set(env.now.get() + s.catalog_ttl_ms());
        block_on(cat.list()).unwrap();
        assert_eq!(up.count("/models"), 2, "refreshed after the TTL");
    }

    #[test]
    fn a_failed_refresh_serves_the_stale_list_and_backs_off() {
        let up = ScriptedUpstream::default()
            .on("/models", Ok(Canned::json(200, MODELS)))
            .on("/models", Err(TransportError::Connect("refused".into())));
        let (kv, env, s) = (MemKv::default(), FixedEnv::default(), settings("auto"));
        let cat = Catalog {
            settings: &s,
            openrouter: &KEYED,
            upstream: &up,
            kv: &kv,
            env: &env,
        };
        block_on(cat.list()).unwrap();
        env.now.set(env.now.get() + s.catalog_ttl_ms());
        assert_eq!(block_on(cat.list()).unwrap().len(), 3, "stale list served");
        assert_eq!(up.count("/models"), 2);
        env.now.set(env.now.get() + 4_000);
        block_on(cat.list()).unwrap();
        assert_eq!(up.count("/models"), 2, "no retry within the 5 s backoff");
        env.now.set(env.now.get() + 2_000);
        block_on(cat.list()).unwrap();
        assert_eq!(up.count("/models"), 3, "retried after the backoff");
    }

    #[test]
    fn without_a_catalog_or_a_key_the_catalog_is_unavailable() {
        let up = ScriptedUpstream::default()
            .on("/models", Err(TransportError::Connect("refused".into())));
        let (kv, env) = (MemKv::default(), FixedEnv::default());
        let s = settings("auto");
        let cat = Catalog {
            settings: &s,
            openrouter: &KEYED,
            upstream: &up,
            kv: &kv,
            env: &env,
        };
        assert!(matches!(
            block_on(cat.list()),
            Err(PipeError::Unavailable(_))
        ));
        let no_key = OpenRouterSettings::default();
        let cat = Catalog {
            settings: &s,
            openrouter: &no_key,
            upstream: &up,
            kv: &kv,
            env: &env,
        };
        let err = block_on(cat.list()).unwrap_err();
        assert!(err.body().message.contains("API key"));
    }

    #[test]
    fn free_tool_and_zdr_filters_hide_models_with_named_reasons() {
        let models = parse_models(MODELS.as_bytes()).unwrap();
        let zdr: BTreeSet<String> = ["openai/gpt-4o".to_string()].into();
        let mut s = settings("auto");
        s.free_model_filter = "only".into();
        assert_eq!(
            filter_reasons(&models[0], &s, None, false),
            vec!["FREE_MODEL_FILTER=only"]
        );
        assert!(
            filter_reasons(&models[2], &s, None, false).is_empty(),
            "all-zero pricing is free"
        );
        s.free_model_filter = "exclude".into();
        assert_eq!(
            filter_reasons(&models[2], &s, None, false),
            vec!["FREE_MODEL_FILTER=exclude"]
        );
        s.free_model_filter = "all".into();
        s.tool_calling_filter = "only".into();
        assert_eq!(
            filter_reasons(&models[2], &s, None, false),
            vec!["TOOL_CALLING_FILTER=only"]
        );
        s.tool_calling_filter = "all".into();
        s.zdr_models_only = true;
        assert!(filter_reasons(&models[0], &s, Some(&zdr), false).is_empty());
        assert_eq!(
            filter_reasons(&models[1], &s, Some(&zdr), false),
            vec!["ZDR_MODELS_ONLY"]
        );
        assert!(
            filter_reasons(&models[1], &s, None, false).is_empty(),
            "unknown list: not filtered"
        );
        s.zdr_models_only = false;
        assert_eq!(
            filter_reasons(&models[1], &s, Some(&zdr), true),
            vec!["ZDR_ENFORCE"]
        );
        assert_eq!(
            filter_reasons(&models[1], &s, None, true),
            vec!["ZDR_ENFORCE_UNAVAILABLE"]
        );
    }

    #[test]
    fn variants_inherit_their_base_and_presets_map_to_the_at_form() {
        let models = with_variants(
            parse_models(MODELS.as_bytes()).unwrap(),
            "openai/gpt-4o:nitro, anthropic/claude-sonnet-4.5:preset/my-team, nope/none:x, openai/gpt-4o@preset/ops",
        );
        assert_eq!(models.len(), 6);
        assert!(
            models
                .iter()
                .any(|m| m.id == "openai/gpt-4o-2024-08-06:preset/ops")
        );
        let nitro = models
            .iter()
            .find(|m| m.id == "openai/gpt-4o-2024-08-06:nitro")
            .unwrap();
        assert!(nitro.capabilities.vision);
        assert_eq!(nitro.name, "GPT-4o (nitro)");
        let zdr: BTreeSet<String> = ["openai/gpt-4o".to_string()].into();
        let mut s = settings("auto");
        s.zdr_enforce = true;
        assert!(
            filter_reasons(nitro, &s, Some(&zdr), false).is_empty(),
            "variants are judged by their base"
        );
    }

    #[test]
    fn a_restricted_model_names_its_reasons() {
        let up = ScriptedUpstream::default()
            .on("/models", Ok(Canned::json(200, MODELS)))
            .on(
                "/endpoints/zdr",
                Ok(Canned::json(
                    200,
                    r#"{"data":[{"model_id":"openai/gpt-4o-2024-08-06"}]}"#,
                )),
            );
        let (kv, env) = (MemKv::default(), FixedEnv::default());
        let mut s = settings("auto");
        s.zdr_enforce = true;
        let cat = Catalog {
            settings: &s,
            openrouter: &KEYED,
            upstream: &up,
            kv: &kv,
            env: &env,
        };
        assert!(block_on(cat.find("openai/gpt-4o", false)).is_ok());
        let err = block_on(cat.find("anthropic/claude-sonnet-4.5", false)).unwrap_err();
        assert_eq!(err.body().code.as_deref(), Some("model_restricted"));
        assert!(err.body().message.contains("ZDR_ENFORCE"));
        let listed = block_on(cat.list()).unwrap();
        assert_eq!(listed.len(), 1, "ZDR_ENFORCE also limits the list");
    }

    const DATED_AND_UNDATED: &str = r#"{"data":[
        {"id":"vendor/model-2024-08-06","name":"Dated","context_length":1000,
         "architecture":{"input_modalities":["text"],"output_modalities":["text"]},
         "pricing":{"prompt":"0.000001","completion":"0.000001"}},
        {"id":"vendor/model","name":"Undated","context_length":2000,
         "architecture":{"input_modalities":["text"],"output_modalities":["text"]},
         "pricing":{"prompt":"0.000001","completion":"0.000001"}},
        {"id":"other/thing-2025-01-01","name":"Only dated","context_length":3000,
         "architecture":{"input_modalities":["text"],"output_modalities":["text"]},
         "pricing":{"prompt":"0.000001","completion":"0.000001"}}]}"#;

    #[test]
    fn an_exact_catalog_id_always_wins_over_the_dated_suffix_fallback() {
        let up =
            ScriptedUpstream::default().on("/models", Ok(Canned::json(200, DATED_AND_UNDATED)));
        let (kv, env, s) = (MemKv::default(), FixedEnv::default(), settings(""));
        let cat = Catalog {
            settings: &s,
            openrouter: &KEYED,
            upstream: &up,
            kv: &kv,
            env: &env,
        };
        // The first lookup refreshes the catalog; the later ones read the cache.
        for _ in 0..2 {
            for (requested, found) in [
                ("vendor/model", "vendor/model"),
                ("vendor/model-2024-08-06", "vendor/model-2024-08-06"),
                ("VENDOR.model-2024-08-06", "vendor/model-2024-08-06"),
                ("vendor.model", "vendor/model"),
                // No exact id: the date stops mattering, and the undated model is preferred.
                ("vendor/model-2023-01-01", "vendor/model"),
                ("other/thing", "other/thing-2025-01-01"),
                ("other/thing-2024-02-02", "other/thing-2025-01-01"),
            ] {
                let m = block_on(cat.find(requested, false)).unwrap();
                assert_eq!(m.id, found, "{requested}");
            }
        }
        let models = parse_models(DATED_AND_UNDATED.as_bytes()).unwrap();
        assert_eq!(pick(&models, "vendor/model").unwrap().name, "Undated");
        assert!(pick(&models, "vendor/other").is_none());
    }

    #[test]
    fn racing_refreshes_never_make_a_listed_model_unfindable() {
        let up = ScriptedUpstream::default().on("/models", Ok(Canned::json(200, MODELS)));
        let (kv, env, s) = (MemKv::default(), FixedEnv::default(), settings("auto"));
        let cat = Catalog {
            settings: &s,
            openrouter: &KEYED,
            upstream: &up,
            kv: &kv,
            env: &env,
        };
        block_on(cat.list()).unwrap();
        // Another worker's refresh rewrote the per-model entry with its own generation after
        // this meta was written.
        let key = format!("{KEY_MODEL_PREFIX}openai/gpt-4o-2024-08-06");
        let mut entry: serde_json::Value =
            serde_json::from_slice(&kv.get(&key, 1 << 20).unwrap().unwrap()).unwrap();
        entry["generation_ms"] = serde_json::json!(1);
        kv.set(&key, entry.to_string().as_bytes(), None).unwrap();
        assert!(block_on(cat.find("openai/gpt-4o", false)).is_ok());
    }

    #[test]
    fn models_outside_the_allowlist_are_not_found() {
        let up = ScriptedUpstream::default().on("/models", Ok(Canned::json(200, MODELS)));
        let (kv, env, s) = (
            MemKv::default(),
            FixedEnv::default(),
            settings("openai/gpt-4o"),
        );
        let cat = Catalog {
            settings: &s,
            openrouter: &KEYED,
            upstream: &up,
            kv: &kv,
            env: &env,
        };
        assert!(block_on(cat.find("openai/gpt-4o", false)).is_ok());
        let err = block_on(cat.find("anthropic/claude-sonnet-4.5", false)).unwrap_err();
        assert_eq!(err.body().http_status, 404);
        // The same answers from the per-model cache (no fresh list in hand).
        assert!(block_on(cat.find("openai/gpt-4o-2024-08-06", false)).is_ok());
        assert!(block_on(cat.find("anthropic/claude-sonnet-4.5", false)).is_err());
        assert!(block_on(cat.find("nope/none", false)).is_err());
        assert_eq!(up.count("/models"), 1);
    }
}
