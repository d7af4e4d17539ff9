//! One Server-Sent Events parser for every event stream Responses Pipe reads: OpenRouter's
//! answers (in the component) and MCP tool servers' answers (in the host).
//!
//! Threat handled: the bytes come from a server we do not control. The parser looks at each byte
//! once (CPU time proportional to the bytes, whatever the line lengths), keeps at most one line
//! and one event's data in memory, and stops with [`SseError::EventTooLarge`] as soon as a line
//! or an event (its data plus the line being read) grows past the cap given to [`Parser::new`]:
//! a server sending one endless line costs at most the cap in memory and is refused while that
//! line arrives. It never panics on any input. Not handled here: the total size of a stream and
//! how long it may take (the caller's transport bounds those).
//!
//! What it understands (the WHATWG event-stream format): lines end in LF, CRLF or a lone CR (a CR
//! at the end of one chunk and an LF at the start of the next are one line end); a UTF-8 byte
//! order mark at the very start is dropped; `data` lines are joined with LF; `event` names the
//! event; comments (`:` lines), `id`, `retry` and unknown fields are ignored; a blank line
//! dispatches an event that has data. Invalid UTF-8 is replaced with U+FFFD. Unlike a browser,
//! the end of the stream also dispatches an event whose blank line never came (a final line
//! without its line end counts as a line): the reader decides whether a truncated event is
//! usable.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// The `event` field, `message` when absent.
    pub event: String,
    /// The `data` lines joined with LF.
    pub data: String,
}

/// Why parsing stopped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A line, or an event's data, grew past the cap.
    #[error("an event-stream line or event is larger than {limit} bytes")]
    EventTooLarge { limit: usize },
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A push parser: feed chunks as they arrive, collect the events they complete.
#[derive(Debug)]
pub struct Parser {
    max_event_bytes: usize,
    /// The line being read (without its line end).
    line: Vec<u8>,
    /// The current event's data lines, joined with LF.
    data: Vec<u8>,
    has_data: bool,
    event_type: String,
    /// The previous chunk ended in CR: an LF starting the next chunk belongs to that line end.
    after_cr: bool,
    /// No line has ended yet (a byte order mark is looked for at the start of the first line).
    at_start: bool,
    failed: bool,
}

impl Parser {
    /// A parser refusing any line or event larger than `max_event_bytes` bytes.
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            max_event_bytes,
            line: Vec::new(),
            data: Vec::new(),
            has_data: false,
            event_type: String::new(),
            after_cr: false,
            at_start: true,
            failed: false,
        }
    }

    /// The cap this parser enforces.
    pub fn max_event_bytes(&self) -> usize {
        self.max_event_bytes
    }

    fn too_large(&mut self) -> SseError {
        self.failed = true;
        self.line = Vec::new();
        self.data = Vec::new();
        SseError::EventTooLarge {
            limit: self.max_event_bytes,
        }
    }

    /// Whether the event would hold more than the cap with `more` further line bytes.
    fn over_cap(&self, more: usize) -> bool {
        self.data
            .len()
            .saturating_add(self.line.len())
            .saturating_add(more)
            > self.max_event_bytes
    }

    /// Feed the next chunk; events it completes are appended to `out` (also when an error is
    /// returned: those came before the oversized line). After an error every call fails.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Event>) -> Result<(), SseError> {
        if self.failed {
            return Err(SseError::EventTooLarge {
                limit: self.max_event_bytes,
            });
        }
        let mut rest = chunk;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        loop {
            match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                None => {
                    if self.over_cap(rest.len()) {
                        return Err(self.too_large());
                    }
                    self.line.extend_from_slice(rest);
                    return Ok(());
                }
                Some(end) => {
                    if self.over_cap(end) {
                        return Err(self.too_large());
                    }
                    self.line.extend_from_slice(&rest[..end]);
                    let mut next = end + 1;
                    if rest[end] == b'\r' {
                        match rest.get(next) {
                            Some(b'\n') => next += 1,
                            Some(_) => {}
                            None => self.after_cr = true,
                        }
                    }
                    self.end_line(out);
                    rest = &rest[next..];
                }
            }
        }
    }

    /// The stream ended: a final line without its line end is taken as a line, and an event
    /// with data that was never dispatched is dispatched.
    pub fn finish(&mut self, out: &mut Vec<Event>) -> Result<(), SseError> {
        if self.failed {
            return Err(SseError::EventTooLarge {
                limit: self.max_event_bytes,
            });
        }
        if !self.line.is_empty() {
            self.end_line(out);
        }
        self.dispatch(out);
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<Event>) {
        let data = std::mem::take(&mut self.data);
        let event_type = std::mem::take(&mut self.event_type);
        if std::mem::take(&mut self.has_data) {
            out.push(Event {
                event: if event_type.is_empty() {
                    "message".to_owned()
                } else {
                    event_type
                },
                data: String::from_utf8(data)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            });
        }
    }

    fn end_line(&mut self, out: &mut Vec<Event>) {
        let line = std::mem::take(&mut self.line);
        let mut line = line.as_slice();
        if std::mem::take(&mut self.at_start) {
            line = line.strip_prefix(BOM).unwrap_or(line);
        }
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => self.event_type = String::from_utf8_lossy(value).into_owned(),
            _ => {}
        }
    }
}

/// Why an [`SseStream`] ended early: its transport failed, or the parser refused the bytes.
#[derive(Debug, thiserror::Error)]
pub enum StreamError<E> {
    #[error("{0}")]
    Transport(E),
    #[error(transparent)]
    Sse(SseError),
}

/// Events parsed from a stream of byte chunks. Events complete before a failure are yielded
/// first; after the failure the stream ends.
pub struct SseStream<S, E> {
    inner: S,
    parser: Parser,
    ready: VecDeque<Event>,
    error: Option<StreamError<E>>,
    done: bool,
}

impl<S, E> SseStream<S, E> {
    /// Parse `inner` with a cap of `max_event_bytes` per line and per event.
    pub fn new(inner: S, max_event_bytes: usize) -> Self {
        Self {
            inner,
            parser: Parser::new(max_event_bytes),
            ready: VecDeque::new(),
            error: None,
            done: false,
        }
    }
}

impl<S, B, E> futures_core::Stream for SseStream<S, E>
where
    S: futures_core::Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: Unpin,
{
    type Item = Result<Event, StreamError<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(event) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            if let Some(error) = this.error.take() {
                this.done = true;
                return Poll::Ready(Some(Err(error)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            let mut out = Vec::new();
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Err(e) = this.parser.push(chunk.as_ref(), &mut out) {
                        this.error = Some(StreamError::Sse(e));
                    }
                }
                Poll::Ready(Some(Err(e))) => this.error = Some(StreamError::Transport(e)),
                Poll::Ready(None) => {
                    if let Err(e) = this.parser.finish(&mut out) {
                        this.error = Some(StreamError::Sse(e));
                    }
                    this.done = true;
                }
            }
            this.ready.extend(out);
        }
    }
}

#[cfg(test)]
mod tests;
