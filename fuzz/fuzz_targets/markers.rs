//! Artifact marker parsing on any text: never a panic, and the three readers agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use responses_pipe_guest::artifacts::{markers, ulid};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let ids = markers::ids(&text);
    assert!(ids.iter().all(|id| ulid::is_valid(id)));
    let from_split: Vec<String> = markers::split(&text)
        .into_iter()
        .flat_map(|piece| match piece {
            markers::Piece::Markers(ids) => ids,
            markers::Piece::Text(_) => Vec::new(),
        })
        .collect();
    assert_eq!(from_split, ids);
    assert!(markers::ids(&markers::strip(&text)).is_empty());
});
