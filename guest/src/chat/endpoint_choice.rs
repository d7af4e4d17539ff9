//! Which endpoint a chat is sent to: the configured choice (Fusion is pinned to `/responses`),
//! and the one-shot fallback to `/chat/completions` when `/responses` turns out not to support
//! the model, before any output.

use super::entry::Admitted;
use super::failure::Failure;
use super::recover::Recoveries;
use super::{Exchange, Pipe};
use crate::caps::{Emit, Env, Kv, Tools, Upstream};
use crate::endpoint::{self, Choice, Endpoint};
use crate::types::RequestContext;

/// The status line shown when a request moves to `/chat/completions`.
const FALLBACK_NOTICE: &str =
    "This model does not support the Responses API here; using Chat Completions instead";

/// The endpoint for `model_id`; `fusion` pins it to `/responses` (Fusion exists only there: no
/// force list, preset or fallback sends it elsewhere). A preset (in the body, or a `:preset/`
/// variant) only works on `/chat/completions`.
pub(super) fn choose(
    settings: &endpoint::EndpointSettings,
    model_id: &str,
    has_preset: bool,
    fusion: bool,
) -> Result<Endpoint, Failure> {
    match endpoint::choose(settings, model_id, has_preset, false) {
        _ if fusion => Ok(Endpoint::Responses),
        Choice::Use(e) => Ok(e),
        Choice::Conflict { required, forced } => Err(Failure::EndpointConflict {
            model_id: model_id.to_string(),
            required,
            forced,
        }),
    }
}

impl<U: Upstream, K: Kv, E: Emit, V: Env> Pipe<'_, U, K, E, V> {
    /// Whether a `/responses` failure (before any output) should be replayed on
    /// `/chat/completions`; marks the one-shot fallback as used when it says yes.
    pub(super) fn may_fall_back(
        &self,
        endpoint: Endpoint,
        rec: &mut Recoveries,
        status: u16,
        body: &[u8],
    ) -> bool {
        let yes = endpoint == Endpoint::Responses
            && self.settings.endpoint.auto_fallback_chat_completions
            && !rec.fallback
            && endpoint::looks_unsupported(status, body);
        rec.fallback |= yes;
        yes
    }

    /// When a failure before any output says `/responses` does not support the model (and the
    /// request is not Fusion), move the request to `/chat/completions` and say so: true when it
    /// moved and should be sent again.
    pub(super) fn fall_back<T: Tools>(
        &mut self,
        ctx: &RequestContext,
        admitted: &Admitted,
        tools: &T,
        ex: &mut Exchange,
        status: u16,
        body: &[u8],
    ) -> Result<bool, Failure> {
        if ex.later()
            || admitted.fusion
            || !self.may_fall_back(ex.out.endpoint, &mut ex.recoveries, status, body)
        {
            return Ok(false);
        }
        ex.out = self.outbound(Endpoint::ChatCompletions, admitted, tools)?;
        self.status(ctx, FALLBACK_NOTICE, false);
        Ok(true)
    }
}
