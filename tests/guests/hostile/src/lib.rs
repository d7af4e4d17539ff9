//! A hostile guest for the conformance suite. It implements the same `responses-pipe` world as
//! the real component, but its `chat` tries one escape, chosen by the request's `model`, with the
//! target taken from the first message's text. It reports what the sandbox answered as a
//! `pipe-error` whose message names the outcome (e.g. `HttpRequestDenied`), so the test can
//! assert the exact refusal. Modes:
//! - `hostile/fetch`: GET the URL (raw wasi:http, so the exact `error-code` is visible)
//! - `hostile/socket`: open a TCP connection to `host:port` with std (wasi:sockets)
//! - `hostile/read-file`: read the file at that path (wasi:filesystem)
//! - `hostile/spin`: loop forever
//! - `hostile/membomb`: allocate until something gives
//! - `hostile/big-emit`: emit one 2 MiB text delta
//! - `hostile/trap`: panic (abort) outright
//! - `hostile/introspect`: report everything the guest can see (settings, environment, args)
//! - `hostile/healthy`: behave: GET `{BASE_URL}/models` and stream its status as a text delta
//! - `hostile/store`: open the artifact table named by the text, then write an oversized row, a
//!   batch with a bad id and a good row, read it back, clean up; report each answer

#![cfg(target_arch = "wasm32")]
#![allow(unsafe_code, reason = "wit-bindgen generated canonical-ABI glue")]

wit_bindgen::generate!({
    world: "responses-pipe",
    path: "../../../wit",
    with: {
        "wasi:http/types@0.2.12": wasip2::http::types,
        "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
    },
});

use exports::openwebui::responses_pipe::pipe::{Guest, GuestFailure};
use openwebui::responses_pipe::{emit, store, types as wit};
use wasip2::http::types::{Fields, OutgoingRequest, Scheme};

struct Hostile;
export!(Hostile);

fn outcome(message: String) -> wit::PipeError {
    wit::PipeError::InvalidRequest(wit::ErrorBody {
        message,
        error_type: "conformance".into(),
        code: None,
        http_status: 418,
        retry_after_seconds: None,
        error_id: "0000000000000000".into(),
    })
}

fn fetch(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some(("https", r)) => (Scheme::Https, r),
        Some(("http", r)) => (Scheme::Http, r),
        Some((other, r)) => (Scheme::Other(other.to_string()), r),
        None => return "bad url".into(),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let req = OutgoingRequest::new(Fields::new());
    if req.set_scheme(Some(&scheme)).is_err()
        || req.set_authority(Some(authority)).is_err()
        || req.set_path_with_query(Some(path)).is_err()
    {
        return "the request could not be built".into();
    }
    let fut = match wasip2::http::outgoing_handler::handle(req, None) {
        Ok(f) => f,
        Err(code) => return format!("refused at handle: {code:?}"),
    };
    fut.subscribe().block();
    match fut.get() {
        Some(Ok(Ok(resp))) => format!("reached: status {}", resp.status()),
        Some(Ok(Err(code))) => format!("refused at send: {code:?}"),
        other => format!("no response: {other:?}"),
    }
}

fn store_row(id: &str, payload: Vec<u8>) -> store::Row {
    store::Row {
        id: id.into(),
        chat_id: "chat".into(),
        message_id: "msg".into(),
        item_type: "reasoning".into(),
        owner: "owner".into(),
        payload,
        created_at_ms: 1,
    }
}

/// Every store answer, one `step=answer` per line.
fn store_probe(name: &str) -> String {
    let table = match store::open(name) {
        Ok(t) => t,
        Err(e) => return format!("open={e:?}"),
    };
    let mut report = vec!["open=ok".to_string()];
    let huge = table.put_many(&[store_row("huge", vec![0; 5 << 20])]);
    report.push(format!("huge={huge:?}"));
    let bad = table.put_many(&[
        store_row("fine", vec![1]),
        store_row(&"x".repeat(65), vec![2]),
    ]);
    report.push(format!("bad-id={bad:?}"));
    let put = table.put_many(&[store_row("r1", b"payload-1".to_vec())]);
    report.push(format!("put={put:?}"));
    match table.get_many(&["fine".to_string(), "r1".to_string()], 1 << 20) {
        Ok(rows) => {
            let got: Vec<String> = rows
                .iter()
                .map(|r| format!("{}:{}", r.id, String::from_utf8_lossy(&r.payload)))
                .collect();
            report.push(format!("get={}", got.join(",")));
        }
        Err(e) => report.push(format!("get={e:?}")),
    }
    let deleted = table.delete(&["r1".to_string()]);
    report.push(format!("delete={deleted:?}"));
    report.join("\n")
}

fn first_text(body: &[u8]) -> (String, String) {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let model = v["model"].as_str().unwrap_or("").to_string();
    let text = v["messages"][0]["content"]
        .as_str()
        .unwrap_or("")
        .to_string();
    (model, text)
}

impl Guest for Hostile {
    fn models(_settings: String) -> Result<String, wit::PipeError> {
        Ok(r#"{"object":"list","data":[]}"#.into())
    }

    fn chat(
        settings: String,
        _ctx: wit::RequestContext,
        body: Vec<u8>,
    ) -> Result<(), wit::PipeError> {
        let (model, target) = first_text(&body);
        match model.as_str() {
            "hostile/fetch" => Err(outcome(fetch(&target))),
            "hostile/socket" => match std::net::TcpStream::connect(target.as_str()) {
                Ok(_) => Err(outcome("socket connected".into())),
                Err(e) => Err(outcome(format!("socket refused: {:?}", e.kind()))),
            },
            "hostile/read-file" => match std::fs::read(&target) {
                Ok(bytes) => Err(outcome(format!("read {} bytes", bytes.len()))),
                Err(e) => Err(outcome(format!("file refused: {:?}", e.kind()))),
            },
            "hostile/spin" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "hostile/membomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 8 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "hostile/big-emit" => match emit::send(&wit::Event::TextDelta("x".repeat(2 << 20))) {
                Ok(()) => Err(outcome("big emit accepted".into())),
                Err(e) => Err(outcome(format!("emit refused: {e:?}"))),
            },
            "hostile/trap" => std::process::abort(),
            "hostile/trap-midway" => {
                let _ = emit::send(&wit::Event::TextDelta("partial answer".into()));
                std::process::abort()
            }
            "hostile/introspect" => {
                let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
                let args: Vec<String> = std::env::args().collect();
                Err(outcome(format!(
                    "settings={settings}\nenv={env:?}\nargs={args:?}"
                )))
            }
            "hostile/store" => Err(outcome(store_probe(&target))),
            "hostile/healthy" => {
                let s: serde_json::Value = serde_json::from_str(&settings).unwrap_or_default();
                let base = s["BASE_URL"]
                    .as_str()
                    .unwrap_or("")
                    .trim_end_matches('/')
                    .to_string();
                let report = fetch(&format!("{base}/models"));
                let _ = emit::send(&wit::Event::TextDelta(report));
                let _ = emit::send(&wit::Event::Finish(wit::FinishReason::Stop));
                Ok(())
            }
            _ => Err(outcome(format!("unknown hostile mode {model}"))),
        }
    }

    fn maintain(_settings: String) -> Result<(), wit::PipeError> {
        Ok(())
    }

    fn internal_error_text(
        _settings: String,
        _ctx: wit::RequestContext,
        error_id: String,
        failure: GuestFailure,
    ) -> String {
        let failure = match failure {
            GuestFailure::Trap => "guest_trap",
            GuestFailure::CpuExceeded => "guest_cpu_exceeded",
            GuestFailure::MemoryExceeded => "guest_memory_exceeded",
        };
        format!("hostile guest: {failure} ({error_id})")
    }
}
