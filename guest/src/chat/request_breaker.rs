//! The user's request breaker on the chat path: whose it is, counting a failed request against
//! it, and the breaker itself (`tool_loop::breaker`) with the configured limits.

use super::Pipe;
use crate::caps::{Emit, Env, Kv, Upstream};
use crate::tool_loop::breaker;
use crate::types::RequestContext;

/// Whose request breaker a request counts for: the caller's principal (key name and user).
pub(super) fn breaker_user(ctx: &RequestContext) -> String {
    ctx.principal()
}

impl<U: Upstream, K: Kv, E: Emit, V: Env> Pipe<'_, U, K, E, V> {
    /// A failed request counts against the user's request breaker.
    pub(super) fn count_request_failure(&self, ctx: &RequestContext) {
        self.request_breaker(&breaker_user(ctx))
            .record_failure(self.env.now_ms());
    }

    /// The request breaker of `user`.
    pub(super) fn request_breaker(&self, user: &str) -> breaker::Breaker<'_, K> {
        let t = &self.settings.tools;
        breaker::Breaker {
            kv: self.kv,
            key: breaker::request_key(user),
            max_failures: t.breaker_max_failures,
            window_ms: t.window_ms(),
        }
    }
}
