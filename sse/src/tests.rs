use super::*;
use futures::StreamExt as _;
use proptest::prelude::*;

const CAP: usize = 1 << 16;

/// Parse `chunks` in order with `cap`: the events, and whether the cap stopped it.
fn parse(chunks: &[&[u8]], cap: usize) -> (Vec<Event>, Option<SseError>) {
    let mut parser = Parser::new(cap);
    let mut out = Vec::new();
    for chunk in chunks {
        if let Err(e) = parser.push(chunk, &mut out) {
            return (out, Some(e));
        }
    }
    let err = parser.finish(&mut out).err();
    (out, err)
}

fn data(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.data.as_str()).collect()
}

#[test]
fn events_are_dispatched_by_blank_lines_with_their_type() {
    let (events, err) = parse(
        &[b": comment\nevent: ping\ndata: a\ndata:b\n\ndata: {\"x\":1}\nid: 7\nretry: 5\n\n"],
        CAP,
    );
    assert_eq!(err, None);
    assert_eq!(
        events,
        vec![
            Event {
                event: "ping".into(),
                data: "a\nb".into()
            },
            Event {
                event: "message".into(),
                data: "{\"x\":1}".into()
            },
        ]
    );
}

#[test]
fn lf_crlf_and_cr_only_line_ends_give_the_same_events() {
    let lf = parse(&[b"data: one\n\ndata: two\n\n"], CAP);
    let crlf = parse(&[b"data: one\r\n\r\ndata: two\r\n\r\n"], CAP);
    let cr = parse(&[b"data: one\r\rdata: two\r\r"], CAP);
    assert_eq!(data(&lf.0), ["one", "two"]);
    assert_eq!(lf, crlf);
    assert_eq!(lf, cr);
}

#[test]
fn a_cr_at_the_end_of_a_chunk_and_an_lf_starting_the_next_are_one_line_end() {
    let (events, _) = parse(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"], CAP);
    assert_eq!(data(&events), ["a\nb"]);
}

#[test]
fn a_byte_order_mark_at_the_start_is_dropped_even_when_split() {
    let (events, err) = parse(&[b"\xEF", b"\xBB", b"\xBFdata: x\n\n"], CAP);
    assert_eq!(err, None);
    assert_eq!(data(&events), ["x"]);
    // Only at the very start: later it is part of the field name, which is unknown.
    let (events, _) = parse(&[b"data: x\n\n\xEF\xBB\xBFdata: y\n\n"], CAP);
    assert_eq!(data(&events), ["x"]);
}

#[test]
fn the_last_event_is_kept_when_the_stream_ends_without_its_blank_line() {
    let (events, _) = parse(&[b"data: a\r\rdata: last\r"], CAP);
    assert_eq!(data(&events), ["a", "last"]);
    let (events, _) = parse(&[b"data: a\n\ndata: last"], CAP);
    assert_eq!(data(&events), ["a", "last"]);
}

#[test]
fn an_endless_line_is_refused_as_soon_as_it_passes_the_cap() {
    let mut parser = Parser::new(1000);
    let mut out = Vec::new();
    assert!(parser.push(b"data: ok\n\ndata: ", &mut out).is_ok());
    let mut fed = 0usize;
    let err = loop {
        match parser.push(&[b'x'; 100], &mut out) {
            Ok(()) => fed += 100,
            Err(e) => break e,
        }
        assert!(fed <= 1000, "still reading after the cap");
    };
    assert_eq!(err, SseError::EventTooLarge { limit: 1000 });
    assert_eq!(data(&out), ["ok"]);
    assert!(parser.push(b"\n\n", &mut out).is_err());
    assert!(parser.finish(&mut out).is_err());
}

#[test]
fn many_small_data_lines_count_against_the_cap_of_one_event() {
    let line = b"data: 0123456789\n";
    let chunks: Vec<&[u8]> = std::iter::repeat_n(&line[..], 20).collect();
    assert!(parse(&chunks, 150).1.is_some());
    // The same lines split into events fit.
    let chunks: Vec<&[u8]> = std::iter::repeat_n(&b"data: 0123456789\n\n"[..], 20).collect();
    let (events, err) = parse(&chunks, 150);
    assert_eq!((events.len(), err), (20, None));
}

#[test]
fn invalid_utf8_is_replaced_not_refused() {
    let (events, err) = parse(&[b"data: \xFF\xFEok\n\n"], CAP);
    assert_eq!(err, None);
    assert_eq!(data(&events), ["\u{FFFD}\u{FFFD}ok"]);
}

#[test]
fn the_stream_adapter_yields_events_then_the_transport_error() {
    let chunks: Vec<Result<&[u8], &str>> = vec![Ok(b"data: a\n\ndata: b\n"), Err("reset")];
    let stream = SseStream::new(futures::stream::iter(chunks), CAP);
    let got: Vec<_> = futures::executor::block_on(stream.collect());
    assert_eq!(got.len(), 2);
    assert!(matches!(&got[0], Ok(e) if e.data == "a"));
    assert!(matches!(got[1], Err(StreamError::Transport("reset"))));
}

#[test]
fn the_stream_adapter_reports_the_cap_after_the_events_before_it() {
    let chunks: Vec<Result<Vec<u8>, ()>> = vec![
        Ok(b"data: a\n\ndata: ".to_vec()),
        Ok(vec![b'y'; 200]),
        Ok(b"\n\n".to_vec()),
    ];
    let stream = SseStream::new(futures::stream::iter(chunks), 100);
    let got: Vec<_> = futures::executor::block_on(stream.collect());
    assert_eq!(got.len(), 2);
    assert!(matches!(&got[0], Ok(e) if e.data == "a"));
    assert!(matches!(
        got[1],
        Err(StreamError::Sse(SseError::EventTooLarge { limit: 100 }))
    ));
}

/// Cut `bytes` at the given fractions (sorted, deduplicated positions).
fn split<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut positions: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    positions.sort_unstable();
    positions.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for p in positions {
        out.push(&bytes[start..p]);
        start = p;
    }
    out.push(&bytes[start..]);
    out
}

/// Bytes that look like an event stream: field names, values, every kind of line end, BOMs.
fn streamish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"data".to_vec()),
        Just(b"event".to_vec()),
        Just(b"id".to_vec()),
        Just(b":".to_vec()),
        Just(b": ".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(BOM.to_vec()),
        proptest::collection::vec(any::<u8>(), 0..12),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|p| p.concat())
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048), cap in 0usize..512) {
        let _ = parse(&[&bytes], cap);
    }

    #[test]
    fn any_split_into_chunks_gives_the_same_events(
        bytes in streamish(),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
        cap in 16usize..256,
    ) {
        let whole = parse(&[&bytes], cap);
        let pieces = split(&bytes, &cuts);
        prop_assert_eq!(parse(&pieces, cap), whole.clone());
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(parse(&bytewise, cap), whole);
    }

    #[test]
    fn no_event_is_ever_larger_than_the_cap_and_a_longer_line_is_refused(
        bytes in streamish(),
        long in 0usize..600,
        cap in 1usize..300,
    ) {
        let (events, err) = parse(&[&bytes], cap);
        for e in &events {
            prop_assert!(e.data.len() <= cap);
        }
        let mut endless = b"data: ".to_vec();
        endless.extend(std::iter::repeat_n(b'z', long));
        let (_, err_long) = parse(&[&endless], cap);
        prop_assert_eq!(err_long.is_some(), endless.len() > cap);
        let _ = err;
    }

    #[test]
    fn line_ends_do_not_change_the_events(
        values in proptest::collection::vec("[a-z0-9 {}:\"]{0,20}", 1..8),
        bom in any::<bool>(),
    ) {
        let render = |end: &str| {
            let mut s = String::new();
            if bom {
                s.push('\u{FEFF}');
            }
            for v in &values {
                s.push_str(&format!("data:{v}{end}{end}"));
            }
            s
        };
        let lf = parse(&[render("\n").as_bytes()], CAP);
        prop_assert_eq!(lf.0.len(), values.len());
        for (e, v) in lf.0.iter().zip(&values) {
            prop_assert_eq!(&e.data, v.strip_prefix(' ').unwrap_or(v));
        }
        prop_assert_eq!(parse(&[render("\r\n").as_bytes()], CAP), lf.clone());
        prop_assert_eq!(parse(&[render("\r").as_bytes()], CAP), lf);
    }
}
