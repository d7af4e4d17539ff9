//! What a chat tells an Open WebUI caller besides the answer: status lines and warning
//! notifications. Other callers get neither.

use super::Pipe;
use crate::caps::{Emit, Env, Kv, Upstream};
use crate::owui_events;
use crate::types::{Event, RequestContext};

impl<U: Upstream, K: Kv, E: Emit, V: Env> Pipe<'_, U, K, E, V> {
    /// A status line (`done` marks the last one of the answer).
    pub(super) fn status(&mut self, ctx: &RequestContext, text: &str, done: bool) {
        if ctx.openwebui_caller {
            let _ = self.emit.send(Event::OpenWebUiEvent(owui_events::status(
                text, done, false,
            )));
        }
    }

    /// A warning notification.
    pub(super) fn notify(&mut self, ctx: &RequestContext, text: &str) {
        if ctx.openwebui_caller {
            let _ = self
                .emit
                .send(Event::OpenWebUiEvent(owui_events::notification(
                    owui_events::NotificationLevel::Warning,
                    text,
                )));
        }
    }
}
