//! The upstream SSE stream as the component reads it today: bytes in chunks (the first byte
//! sets the chunk size) → SSE events (`eventsource-stream`) → `ResponsesStream::feed`. Never a
//! panic. Kept small: it follows the component's SSE entry point when that changes.
#![no_main]

use eventsource_stream::Eventsource;
use futures::StreamExt;
use libfuzzer_sys::fuzz_target;
use responses_pipe_guest::stream::{ResponsesStream, Step};

fuzz_target!(|data: &[u8]| {
    let Some((size, body)) = data.split_first() else {
        return;
    };
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body
        .chunks(usize::from(*size).max(1))
        .map(|c| Ok(c.to_vec()))
        .collect();
    let mut events = futures::stream::iter(chunks).eventsource();
    let mut stream = ResponsesStream::default();
    futures::executor::block_on(async {
        while let Some(event) = events.next().await {
            let Ok(event) = event else { continue };
            let step = stream.feed(&event.data, &mut |_| true, &mut || {
                "0123456789abcdef".into()
            });
            if !matches!(step, Step::Continue) {
                break;
            }
        }
    });
});
