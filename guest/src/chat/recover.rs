//! Mending a request OpenRouter refused before any event of the turn: the three one-shot
//! reasoning recoveries (a downgraded effort, no reasoning, earlier reasoning stripped), then
//! the `/chat/completions` fallback; whatever cannot be mended is the failure.

use super::failure::Failure;
use super::{Exchange, Pipe, entry::Admitted};
use crate::caps::{Emit, Env, HttpResponse, Kv, Tools, Upstream, read_body};
use crate::endpoint::Endpoint;
use crate::errors;
use crate::request::Built;
use crate::types::RequestContext;
use serde_json::Value;

/// Largest upstream error body we read.
const MAX_ERROR_BODY_BYTES: usize = 1 << 20;

/// The one-shot recoveries, each used at most once per request.
#[derive(Default)]
pub(super) struct Recoveries {
    effort: bool,
    no_reasoning: bool,
    signature: bool,
    /// The `/chat/completions` fallback (`endpoint_choice`).
    pub fallback: bool,
}

/// The effort ladder the downgrade recovery walks.
const EFFORTS: [&str; 6] = ["none", "minimal", "low", "medium", "high", "xhigh"];

/// Parse "Supported values are: 'low', 'medium'" and pick the nearest supported effort: the next
/// higher one if the requested effort is inside the supported range, else the clamp.
pub fn downgraded_effort(message: &str, requested: &str) -> Option<String> {
    let lower = message.to_ascii_lowercase();
    let at = lower.find("supported values are")?;
    let tail = &message[at..];
    let supported: Vec<usize> = EFFORTS
        .iter()
        .enumerate()
        .filter(|(_, e)| tail.contains(&format!("'{e}'")) || tail.contains(&format!("\"{e}\"")))
        .map(|(i, _)| i)
        .collect();
    let (&lo, &hi) = (supported.first()?, supported.last()?);
    let want = EFFORTS.iter().position(|e| *e == requested).unwrap_or(3);
    let pick = if want < lo {
        lo
    } else if want > hi {
        hi
    } else {
        *supported.iter().find(|&&i| i >= want)?
    };
    (EFFORTS[pick] != requested).then(|| EFFORTS[pick].to_string())
}

/// The one-shot reasoning recoveries. Returns the status line to show when
/// the request was changed and should be sent again.
fn recover(
    endpoint: Endpoint,
    status: u16,
    bytes: &[u8],
    rec: &mut Recoveries,
    built: &mut Built,
) -> Option<String> {
    if status != 400 {
        return None;
    }
    let parsed = errors::parse_openrouter_error(bytes);
    let text = format!(
        "{} {} {}",
        parsed.message.unwrap_or_default(),
        parsed.upstream_message.unwrap_or_default(),
        String::from_utf8_lossy(bytes)
    );
    let lower = text.to_ascii_lowercase();
    let body = built.body.as_object_mut()?;
    if !rec.effort && lower.contains("reasoning.effort") && lower.contains("supported values are") {
        rec.effort = true;
        let current = body
            .get("reasoning")
            .and_then(|r| r.get("effort"))
            .or_else(|| body.get("reasoning_effort"))
            .and_then(Value::as_str)
            .unwrap_or("medium")
            .to_string();
        let next = downgraded_effort(&text, &current)?;
        if let Some(Value::Object(r)) = body.get_mut("reasoning") {
            r.insert("effort".into(), Value::String(next.clone()));
        } else if endpoint == Endpoint::ChatCompletions && body.contains_key("reasoning_effort") {
            body.insert("reasoning_effort".into(), Value::String(next.clone()));
        } else {
            return None;
        }
        return Some(format!(
            "This model does not support `{current}` reasoning effort; retrying with `{next}`"
        ));
    }
    if !rec.no_reasoning
        && lower.contains("include_thoughts is only enabled when thinking is enabled")
    {
        rec.no_reasoning = true;
        for k in [
            "reasoning",
            "include_reasoning",
            "thinking_config",
            "reasoning_effort",
        ] {
            body.remove(k);
        }
        return Some("The provider refused reasoning for this request; retrying without it".into());
    }
    let signature = lower.contains("thinking block cannot be modified")
        || (lower.contains("signature")
            && (lower.contains("thinking") || lower.contains("reasoning")));
    if !rec.signature && signature {
        rec.signature = true;
        let mut stripped = false;
        for key in ["input", "messages"] {
            if let Some(Value::Array(items)) = body.get_mut(key) {
                let before = items.len();
                items.retain(|i| i.get("type").and_then(Value::as_str) != Some("reasoning"));
                stripped |= items.len() != before;
                for i in items.iter_mut() {
                    if let Some(o) = i.as_object_mut() {
                        stripped |= o.remove("reasoning_details").is_some();
                    }
                }
            }
        }
        return stripped.then(|| {
            "Earlier reasoning could not be verified by the provider; retrying without it".into()
        });
    }
    None
}

impl<U: Upstream, K: Kv, E: Emit, V: Env> Pipe<'_, U, K, E, V> {
    /// OpenRouter answered the turn's request with an HTTP error: `Ok` when the request was
    /// mended and should be sent again, else the failure (a 401 also opens the caller's
    /// auth-failure window).
    pub(super) async fn mend<T: Tools>(
        &mut self,
        ctx: &RequestContext,
        admitted: &Admitted,
        tools: &T,
        ex: &mut Exchange,
        mut response: HttpResponse<U::Body>,
    ) -> Result<(), Failure> {
        let status = response.status;
        let bytes = read_body(&mut response.body, MAX_ERROR_BODY_BYTES)
            .await
            .unwrap_or_default();
        let out = &mut ex.out;
        if let Some(note) = recover(
            out.endpoint,
            status,
            &bytes,
            &mut ex.recoveries,
            &mut out.built,
        ) {
            self.status(ctx, &note, false);
            return Ok(());
        }
        if self.fall_back(ctx, admitted, tools, ex, status, &bytes)? {
            return Ok(());
        }
        if status == 401 {
            self.remember_key_refusal(ctx, &bytes);
        }
        Err(Failure::Status {
            status,
            body: bytes,
            headers: response.headers,
            requested_model: admitted.request.model.clone(),
            model_id: admitted.model.id.clone(),
            now_ms: self.env.now_ms(),
        })
    }
}
