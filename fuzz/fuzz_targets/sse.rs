//! The upstream SSE stream as the component reads it: bytes in chunks (the first byte sets the
//! chunk size) → the shared capped parser (`responses-pipe-sse`) → `ResponsesStream::feed`. Never
//! a panic; a line or event over the cap is a typed error, never unbounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use responses_pipe_guest::stream::{ResponsesStream, Step};
use responses_pipe_sse::Parser;

/// A small cap, so the fuzzer reaches the size refusal often.
const MAX_EVENT_BYTES: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((size, body)) = data.split_first() else {
        return;
    };
    let mut parser = Parser::new(MAX_EVENT_BYTES);
    let mut stream = ResponsesStream::default();
    let mut events = Vec::new();
    for chunk in body.chunks(usize::from(*size).max(1)) {
        if parser.push(chunk, &mut events).is_err() {
            return;
        }
        for event in events.drain(..) {
            let step = stream.feed(&event.data, &mut |_| true, &mut || "0123456789abcdef".into());
            if !matches!(step, Step::Continue) {
                return;
            }
        }
    }
    let _ = parser.finish(&mut events);
    for event in events.drain(..) {
        if !matches!(
            stream.feed(&event.data, &mut |_| true, &mut || "0123456789abcdef".into()),
            Step::Continue
        ) {
            return;
        }
    }
});
