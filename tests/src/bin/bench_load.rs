//! `bench-load`: the load driver of `bench/overhead`. It keeps N streaming requests in flight
//! (one HTTP/1.1 keep-alive connection per concurrent stream, closed loop: each worker starts
//! its next stream when the previous one ends) and measures, per stream, the time from sending
//! the request to the first content event and the arrival time of every content event. The same
//! driver runs against the fake upstream directly (`--mode direct`, Responses SSE) and through
//! the host (`--mode host`, chat-completion chunks), so the two runs differ only in what sits
//! between client and fake, and the difference is the host's overhead. `--spread-ms` staggers
//! the workers' first streams so arrivals are steady rather than one burst per round.
//!
//! SSE is parsed incrementally from the body frames as they arrive (an event is timestamped when
//! the frame that completes it is received), never by buffering the whole body. The summary is
//! one JSON line on stdout; `--raw FILE` also writes one JSON line per measured stream.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Uri, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde_json::{Value, json};

/// Closed-loop streaming load against the fake upstream or the host; prints one JSON summary.
#[derive(Debug, Parser)]
#[command(name = "bench-load")]
struct Args {
    /// Full URL to POST to (e.g. http://127.0.0.1:PORT/api/v1/responses).
    #[arg(long)]
    url: Uri,
    /// File holding the request body (JSON, sent as-is).
    #[arg(long)]
    body_file: PathBuf,
    /// Extra request header as `Name:Value`; repeatable.
    #[arg(long = "header", value_name = "NAME:VALUE")]
    headers: Vec<String>,
    /// Streams in flight at once (one connection each).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Measured streams per worker, one after another.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Unmeasured streams per worker before the measured ones (opens the connections and warms
    /// the pools on both sides).
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// Start worker i after i × SPREAD / concurrency ms, so stream starts are spread evenly
    /// over SPREAD (set it to one stream's duration for a steady arrival rate) instead of all
    /// workers starting, and then restarting, together as one burst.
    #[arg(long, default_value_t = 0)]
    spread_ms: u64,
    /// What answers: the fake upstream's Responses SSE, or the host's chat-completion chunks.
    #[arg(long, value_enum)]
    mode: Mode,
    /// Also write one JSON line per measured stream to this file.
    #[arg(long)]
    raw: Option<PathBuf>,
    /// A stream still open after this many seconds counts as an error.
    #[arg(long, default_value_t = 120)]
    timeout_s: u64,
}

/// Which dialect of SSE the target speaks, and so what counts as content and as the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// OpenRouter Responses events: content is `response.output_text.delta`, the end is
    /// `response.completed`.
    Direct,
    /// OpenAI chat-completion chunks: content is a chunk with a non-empty `delta.content`, the
    /// end is `data: [DONE]`.
    Host,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Direct => "direct",
            Mode::Host => "host",
        }
    }

    /// What one SSE event's `data` means for the measurement.
    fn classify(self, data: &str) -> EventKind {
        if self == Mode::Host && data == "[DONE]" {
            return EventKind::Terminal;
        }
        let Ok(value) = serde_json::from_str::<Value>(data) else {
            return EventKind::Unreadable;
        };
        match self {
            Mode::Direct => match value.get("type").and_then(Value::as_str) {
                Some("response.output_text.delta") => EventKind::Content,
                Some("response.completed") => EventKind::Terminal,
                Some("response.failed" | "response.incomplete" | "error") => EventKind::Failure,
                _ => EventKind::Other,
            },
            Mode::Host => {
                if value.get("error").is_some() {
                    return EventKind::Failure;
                }
                let content = value
                    .get("choices")
                    .and_then(|c| c.get(0))
                    .and_then(|c| c.get("delta"))
                    .and_then(|d| d.get("content"))
                    .and_then(Value::as_str);
                match content {
                    Some(text) if !text.is_empty() => EventKind::Content,
                    _ => EventKind::Other,
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventKind {
    Content,
    Terminal,
    Failure,
    Unreadable,
    Other,
}

/// Incremental SSE parser: feed it body frames, it yields the `data` of each complete event.
/// Comment lines (`: ...`) and the `event:`/`id:`/`retry:` fields are skipped; multi-line data
/// is joined with `\n` as the SSE spec says.
#[derive(Debug, Default)]
struct SseParser {
    pending: Vec<u8>,
    data: String,
    has_data: bool,
}

impl SseParser {
    fn push(&mut self, chunk: &[u8], out: &mut Vec<String>) {
        self.pending.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(pos) = self.pending[start..].iter().position(|b| *b == b'\n') {
            let mut line = &self.pending[start..start + pos];
            start += pos + 1;
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
            if line.is_empty() {
                if self.has_data {
                    out.push(std::mem::take(&mut self.data));
                    self.has_data = false;
                }
                continue;
            }
            if let Some(rest) = line.strip_prefix(b"data:") {
                let rest = rest.strip_prefix(b" ").unwrap_or(rest);
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&String::from_utf8_lossy(rest));
                self.has_data = true;
            }
        }
        self.pending.drain(..start);
    }
}

/// What happened to one stream.
#[derive(Debug)]
struct StreamRecord {
    worker: usize,
    round: usize,
    status: Option<u16>,
    /// Why the stream counts as failed (`None`: it succeeded).
    error: Option<String>,
    /// Time from sending the request to the response head.
    headers_at: Option<Duration>,
    /// Arrival time of each content event, from sending the request.
    content_at: Vec<Duration>,
}

impl StreamRecord {
    fn to_json(&self) -> Value {
        json!({
            "worker": self.worker,
            "round": self.round,
            "status": self.status,
            "error": self.error,
            "headers_ms": self.headers_at.map(ms),
            "content_ms": self.content_at.iter().copied().map(ms).collect::<Vec<_>>(),
        })
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The fixed parts of every request.
struct Target {
    url: Uri,
    headers: Vec<(header::HeaderName, header::HeaderValue)>,
    body: Bytes,
    mode: Mode,
    timeout: Duration,
}

impl Target {
    fn request(&self) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(self.url.clone())
            .header(header::ACCEPT, "text/event-stream");
        let has_content_type = self
            .headers
            .iter()
            .any(|(name, _)| name == header::CONTENT_TYPE);
        if !has_content_type {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        Ok(builder.body(Full::new(self.body.clone()))?)
    }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Send one request and read its stream to the end, timing content events.
async fn one_stream(
    client: &HttpClient,
    target: &Target,
    worker: usize,
    round: usize,
) -> StreamRecord {
    let mut record = StreamRecord {
        worker,
        round,
        status: None,
        error: None,
        headers_at: None,
        content_at: Vec::new(),
    };
    let request = match target.request() {
        Ok(r) => r,
        Err(e) => {
            record.error = Some(format!("request: {e}"));
            return record;
        }
    };
    let start = Instant::now();
    let outcome = tokio::time::timeout(
        target.timeout,
        read_stream(client, request, target.mode, start, &mut record),
    )
    .await;
    record.error = match outcome {
        Err(_) => Some("timeout".to_string()),
        Ok(Err(kind)) => Some(kind),
        Ok(Ok(())) => None,
    };
    record
}

async fn read_stream(
    client: &HttpClient,
    request: Request<Full<Bytes>>,
    mode: Mode,
    start: Instant,
    record: &mut StreamRecord,
) -> Result<(), String> {
    let response = client
        .request(request)
        .await
        .map_err(|_| "transport".to_string())?;
    record.headers_at = Some(start.elapsed());
    let status = response.status().as_u16();
    record.status = Some(status);
    let mut body = response.into_body();
    let mut parser = SseParser::default();
    let mut events = Vec::new();
    let (mut terminal, mut failure, mut unreadable) = (false, false, false);
    // Read to the end even after the terminal event (or an error status) so the connection goes
    // back to the pool and the next stream of this worker reuses it.
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| "transport".to_string())?;
        let at = start.elapsed();
        let Some(data) = frame.data_ref() else {
            continue;
        };
        if status != 200 {
            continue;
        }
        parser.push(data, &mut events);
        for event in events.drain(..) {
            match mode.classify(&event) {
                EventKind::Content => record.content_at.push(at),
                EventKind::Terminal => terminal = true,
                EventKind::Failure => failure = true,
                EventKind::Unreadable => unreadable = true,
                EventKind::Other => {}
            }
        }
    }
    if status != 200 {
        Err(format!("status_{status}"))
    } else if failure {
        Err("error_event".to_string())
    } else if unreadable {
        Err("unreadable_event".to_string())
    } else if !terminal {
        Err("no_terminal".to_string())
    } else if record.content_at.is_empty() {
        Err("no_content".to_string())
    } else {
        Ok(())
    }
}

/// One worker: its own client (so its own single keep-alive connection), streams in sequence.
async fn worker(
    target: Arc<Target>,
    worker: usize,
    start_after: Duration,
    warmup: usize,
    rounds: usize,
) -> (Vec<StreamRecord>, usize) {
    tokio::time::sleep(start_after).await;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_max_idle_per_host(1)
        .build(connector);
    let mut warmup_errors = 0;
    for round in 0..warmup {
        if one_stream(&client, &target, worker, round)
            .await
            .error
            .is_some()
        {
            warmup_errors += 1;
        }
    }
    let mut records = Vec::with_capacity(rounds);
    for round in 0..rounds {
        records.push(one_stream(&client, &target, worker, round).await);
    }
    (records, warmup_errors)
}

/// Nearest-rank percentiles of `values` (sorted here), in the summary's shape.
fn distribution(mut values: Vec<f64>) -> Value {
    if values.is_empty() {
        return json!({"n": 0, "p50": null, "p90": null, "p99": null, "max": null, "mean": null});
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let rank = |p: f64| {
        let index = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
        round3(values[index])
    };
    let mean = values.iter().sum::<f64>() / n as f64;
    json!({
        "n": n,
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "max": round3(values[n - 1]),
        "mean": round3(mean),
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn parse_header(raw: &str) -> anyhow::Result<(header::HeaderName, header::HeaderValue)> {
    let (name, value) = raw
        .split_once(':')
        .with_context(|| format!("--header {raw:?} is not NAME:VALUE"))?;
    Ok((
        header::HeaderName::from_bytes(name.trim().as_bytes())
            .with_context(|| format!("bad header name in {raw:?}"))?,
        header::HeaderValue::from_str(value.trim())
            .with_context(|| format!("bad header value in {raw:?}"))?,
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    let body = std::fs::read(&args.body_file)
        .with_context(|| format!("could not read {}", args.body_file.display()))?;
    let headers = args
        .headers
        .iter()
        .map(|h| parse_header(h))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let target = Arc::new(Target {
        url: args.url.clone(),
        headers,
        body: Bytes::from(body),
        mode: args.mode,
        timeout: Duration::from_secs(args.timeout_s),
    });

    let started = Instant::now();
    let handles: Vec<_> = (0..args.concurrency)
        .map(|w| {
            let start_after =
                Duration::from_millis(args.spread_ms).mul_f64(w as f64 / args.concurrency as f64);
            tokio::spawn(worker(
                target.clone(),
                w,
                start_after,
                args.warmup,
                args.rounds,
            ))
        })
        .collect();
    let mut records = Vec::with_capacity(args.concurrency * args.rounds);
    let mut warmup_errors = 0;
    for handle in handles {
        let (mut r, e) = handle.await.context("a worker task failed")?;
        records.append(&mut r);
        warmup_errors += e;
    }
    let wall = started.elapsed();

    let mut error_kinds = serde_json::Map::new();
    let (mut ttfb, mut gaps, mut heads) = (Vec::new(), Vec::new(), Vec::new());
    let mut content_events = 0;
    for record in &records {
        match &record.error {
            Some(kind) => {
                let count = error_kinds.entry(kind.clone()).or_insert(json!(0));
                *count = json!(count.as_u64().unwrap_or(0) + 1);
            }
            // Latency figures come from successful streams only; failures are counted apart.
            None => {
                content_events += record.content_at.len();
                if let Some(first) = record.content_at.first() {
                    ttfb.push(ms(*first));
                }
                if let Some(h) = record.headers_at {
                    heads.push(ms(h));
                }
                gaps.extend(record.content_at.windows(2).map(|w| ms(w[1] - w[0])));
            }
        }
    }
    let errors = records.iter().filter(|r| r.error.is_some()).count();

    if let Some(path) = &args.raw {
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("could not create {}", path.display()))?,
        );
        for record in &records {
            writeln!(file, "{}", record.to_json())?;
        }
        file.flush()?;
    }

    let summary = json!({
        "mode": args.mode.name(),
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "spread_ms": args.spread_ms,
        "streams": records.len(),
        "errors": errors,
        "error_kinds": error_kinds,
        "warmup_errors": warmup_errors,
        "content_events": content_events,
        "wall_s": round3(wall.as_secs_f64()),
        "ttfb_ms": distribution(ttfb),
        "gap_ms": distribution(gaps),
        "headers_ms": distribution(heads),
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{summary}")?;
    stdout.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(parser: &mut SseParser, chunks: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for chunk in chunks {
            parser.push(chunk.as_bytes(), &mut out);
        }
        out
    }

    #[test]
    fn sse_events_split_across_frames_come_out_whole_and_in_order() {
        let mut p = SseParser::default();
        let out = feed(
            &mut p,
            &[
                ": OPENROUTER PROCESSING\n\nda",
                "ta: {\"a\":1}\n",
                "\ndata: [DONE]\r\n\r\n",
            ],
        );
        assert_eq!(out, vec!["{\"a\":1}".to_string(), "[DONE]".to_string()]);
    }

    #[test]
    fn an_event_is_not_emitted_before_its_blank_line_arrives() {
        let mut p = SseParser::default();
        assert!(feed(&mut p, &["event: x\ndata: one\ndata: two\n"]).is_empty());
        assert_eq!(feed(&mut p, &["\n"]), vec!["one\ntwo".to_string()]);
    }

    #[test]
    fn direct_mode_counts_text_deltas_as_content_and_completed_as_the_end() {
        let m = Mode::Direct;
        assert_eq!(
            m.classify(r#"{"type":"response.output_text.delta","delta":"tok0 "}"#),
            EventKind::Content
        );
        assert_eq!(
            m.classify(r#"{"type":"response.completed"}"#),
            EventKind::Terminal
        );
        assert_eq!(
            m.classify(r#"{"type":"response.failed"}"#),
            EventKind::Failure
        );
        assert_eq!(
            m.classify(r#"{"type":"response.created"}"#),
            EventKind::Other
        );
        assert_eq!(m.classify("[DONE]"), EventKind::Unreadable);
    }

    #[test]
    fn host_mode_counts_only_non_empty_content_deltas_and_done_as_the_end() {
        let m = Mode::Host;
        assert_eq!(
            m.classify(r#"{"choices":[{"delta":{"content":"tok0 "}}]}"#),
            EventKind::Content
        );
        assert_eq!(
            m.classify(r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#),
            EventKind::Other
        );
        assert_eq!(
            m.classify(r#"{"error":{"message":"x"}}"#),
            EventKind::Failure
        );
        assert_eq!(m.classify("[DONE]"), EventKind::Terminal);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let d = distribution((1..=100).map(f64::from).collect());
        assert_eq!(d["p50"], 50.0);
        assert_eq!(d["p90"], 90.0);
        assert_eq!(d["p99"], 99.0);
        assert_eq!(d["max"], 100.0);
        assert_eq!(d["n"], 100);
        assert_eq!(distribution(vec![7.0])["p99"], 7.0);
        assert!(distribution(Vec::new())["p50"].is_null());
    }

    #[test]
    fn headers_must_be_name_colon_value() {
        let (name, value) = parse_header("Authorization: Bearer k").unwrap();
        assert_eq!(name, header::AUTHORIZATION);
        assert_eq!(value, "Bearer k");
        assert!(parse_header("no-colon").is_err());
    }
}
