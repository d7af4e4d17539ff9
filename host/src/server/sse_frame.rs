//! The one writer of outgoing server-sent events: every `chat.completion.chunk`, error chunk and
//! the closing `[DONE]` reach the client through [`push`]. A payload is one event: each of its
//! lines becomes a `data:` line and a blank line ends the event, so a payload containing a line
//! break (`\n`, `\r\n` or `\r`) still arrives as one event that a client joins back with `\n`.
//! Chunks are single-line JSON, so on the wire this is `data: <payload>\n\n`.

/// The payload that ends an OpenAI-style stream.
pub const DONE: &str = "[DONE]";

/// Append one event carrying `data` to `out`.
pub fn push(out: &mut Vec<u8>, data: &str) {
    let mut rest = data;
    loop {
        let (line, next) = match rest.find(['\r', '\n']) {
            Some(at) => {
                let width = if rest[at..].starts_with("\r\n") { 2 } else { 1 };
                (&rest[..at], Some(&rest[at + width..]))
            }
            None => (rest, None),
        };
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
        match next {
            Some(r) => rest = r,
            None => break,
        }
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(data: &str) -> String {
        let mut out = Vec::new();
        push(&mut out, data);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_single_line_payload_is_one_data_line_and_a_blank_line() {
        assert_eq!(framed(r#"{"a":1}"#), "data: {\"a\":1}\n\n");
        assert_eq!(framed(DONE), "data: [DONE]\n\n");
        assert_eq!(framed(""), "data: \n\n");
    }

    #[test]
    fn line_breaks_in_a_payload_become_more_data_lines_of_the_same_event() {
        assert_eq!(framed("a\nb"), "data: a\ndata: b\n\n");
        assert_eq!(framed("a\r\nb\rc"), "data: a\ndata: b\ndata: c\n\n");
        assert_eq!(framed("a\n"), "data: a\ndata: \n\n");
        assert_eq!(framed("\n\ndata: x"), "data: \ndata: \ndata: data: x\n\n");
    }

    #[test]
    fn events_are_appended_in_order() {
        let mut out = Vec::new();
        push(&mut out, "1");
        push(&mut out, DONE);
        assert_eq!(out, b"data: 1\n\ndata: [DONE]\n\n");
    }
}
