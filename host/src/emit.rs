//! The `emit` capability: events from the guest to the caller, live and in order. The channel is
//! bounded, so a guest that produces faster than the client reads waits (its fiber suspends)
//! instead of growing host memory; each event is size-capped; a caller that went away shows up
//! as `closed`, which tells the guest to stop.

use crate::bindings::emit::{self, EmitError};
use crate::bindings::types::Event;
use tokio::sync::mpsc;

/// Largest single event accepted (a text delta is normally a few bytes to a few KiB).
pub const MAX_EVENT_BYTES: usize = 1 << 20;
/// Largest image event accepted: a generated image arrives whole, as a base64 `data:` URL.
pub const MAX_IMAGE_EVENT_BYTES: usize = 16 << 20;
/// Events buffered between the guest and the HTTP writer.
pub const CHANNEL_CAPACITY: usize = 64;

/// Approximate payload size of an event.
pub fn event_bytes(e: &Event) -> usize {
    match e {
        Event::TextDelta(s)
        | Event::ReasoningDelta(s)
        | Event::OpenwebuiEvent(s)
        | Event::Image(s) => s.len(),
        Event::ToolCalls(calls) => calls
            .iter()
            .map(|c| c.call_id.len() + c.name.len() + c.arguments_json.len())
            .sum(),
        Event::Citation(c) => c.url.len() + c.title.len() + c.content.len(),
        Event::Usage(_) | Event::Finish(_) => 64,
        Event::Error(b) => b.message.len() + b.error_type.len() + b.error_id.len() + 64,
    }
}

/// A new event channel for one request.
pub fn channel() -> (EmitSink, mpsc::Receiver<Event>) {
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    (EmitSink { tx: Some(tx) }, rx)
}

/// The sending half, held in the instance's state.
#[derive(Debug)]
pub struct EmitSink {
    tx: Option<mpsc::Sender<Event>>,
}

impl EmitSink {
    /// A sink that drops everything (for calls whose caller reads no events, like `models`).
    pub fn closed() -> Self {
        EmitSink { tx: None }
    }
}

impl emit::Host for EmitSink {
    async fn send(&mut self, e: Event) -> Result<(), EmitError> {
        let cap = if matches!(e, Event::Image(_)) {
            MAX_IMAGE_EVENT_BYTES
        } else {
            MAX_EVENT_BYTES
        };
        if event_bytes(&e) > cap {
            return Err(EmitError::TooLarge);
        }
        let Some(tx) = &self.tx else {
            return Err(EmitError::Closed);
        };
        tx.send(e).await.map_err(|_| EmitError::Closed)
    }
}
