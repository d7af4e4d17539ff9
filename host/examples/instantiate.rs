//! The fixed per-request cost of the sandbox: instantiate the component in a fresh store and call
//! one export. Every chat pays this once before any byte goes upstream, so it is the floor under
//! the host's added time-to-first-byte. The app is built exactly as the server builds it (same
//! engine, pooling allocator, linker, limits, preopened data directory), and the export is
//! `internal-error-text`, which parses the settings document and renders one template: no
//! network, no storage, so what is timed is instantiation plus one call and its settings parse,
//! nothing else.
//!
//! Run: `cargo run --release --example instantiate -- [--calls N] [--concurrency C]`.
//! Prints sequential per-call p50/p99/mean, then the same calls spread over C concurrent tasks
//! (wall time divided by calls, i.e. throughput cost on this machine's cores, plus per-call
//! latency under that contention).

use anyhow::Context;
use clap::Parser;
use responses_pipe_host::app::{App, AppBuilder};
use responses_pipe_host::bindings::exports::openwebui::responses_pipe::pipe::GuestFailure as WitGuestFailure;
use responses_pipe_host::bindings::types::RequestContext;
use responses_pipe_host::config::Config;
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(name = "instantiate")]
struct Args {
    /// Timed calls in each phase.
    #[arg(long, default_value_t = 2000)]
    calls: usize,
    /// Tasks in the concurrent phase.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Untimed calls first (page in the pooled slots, warm caches).
    #[arg(long, default_value_t = 100)]
    warmup: usize,
}

/// One instantiate + `internal-error-text` call; its duration, or why it failed.
async fn one_call(app: &App, ctx: &RequestContext) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let outcome = app
        .runner
        .internal_error_text(
            app.config.guest_settings_json(),
            ctx,
            "0000000000000000",
            WitGuestFailure::Trap,
        )
        .await;
    let took = start.elapsed();
    match outcome {
        Ok(text) if !text.is_empty() => Ok(took),
        Ok(_) => anyhow::bail!("the export returned no text"),
        Err(e) => anyhow::bail!("the guest failed: {e:?}"),
    }
}

/// p50, p99 (nearest rank) and mean of `samples`, in microseconds.
fn summary(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let n = samples.len();
    let rank = |p: f64| us(samples[((p * n as f64).ceil() as usize).clamp(1, n) - 1]);
    let mean = samples.iter().map(|d| us(*d)).sum::<f64>() / n as f64;
    (rank(0.50), rank(0.99), mean)
}

async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.calls > 0 && args.concurrency > 0,
        "--calls and --concurrency must be at least 1"
    );
    let data = tempfile::tempdir().context("could not create a temporary data directory")?;
    // The same configuration path as the server and the tests; the base URL is never contacted
    // because the export does no I/O.
    let env: HashMap<String, String> = [
        ("BASE_URL", "http://127.0.0.1:9/api/v1"),
        ("OPENROUTER_API_KEY", "bench"),
        ("LOG_LEVEL", "WARNING"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = Config::load(None, &|name| env.get(name).cloned())?;
    let started = Instant::now();
    let app = AppBuilder::new(config, data.path()).build()?;
    let startup = started.elapsed();
    let ctx = RequestContext {
        request_id: "bench".into(),
        user_id: Some("bench-user".into()),
        user_email: None,
        user_name: None,
        user_role: None,
        chat_id: Some("bench-chat".into()),
        message_id: None,
        task: None,
        openwebui_caller: true,
        cache_session_id: None,
        received_at_ms: 0,
        key_name: "bench".into(),
        openwebui_key: true,
    };

    for _ in 0..args.warmup {
        one_call(&app, &ctx).await?;
    }

    let mut sequential = Vec::with_capacity(args.calls);
    for _ in 0..args.calls {
        sequential.push(one_call(&app, &ctx).await?);
    }

    // Concurrent phase: the calls split over the tasks as evenly as possible.
    let per_task = args.calls / args.concurrency;
    let extra = args.calls % args.concurrency;
    let wall_start = Instant::now();
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|t| {
            let app: Arc<App> = app.clone();
            let ctx = ctx.clone();
            let count = per_task + usize::from(t < extra);
            tokio::spawn(async move {
                let mut took = Vec::with_capacity(count);
                for _ in 0..count {
                    took.push(one_call(&app, &ctx).await?);
                }
                anyhow::Ok(took)
            })
        })
        .collect();
    let mut concurrent = Vec::with_capacity(args.calls);
    for task in tasks {
        concurrent.extend(task.await.context("a task panicked")??);
    }
    let wall = wall_start.elapsed();

    let (p50, p99, mean) = summary(sequential);
    let (cp50, cp99, cmean) = summary(concurrent);
    let per_call = wall.as_secs_f64() * 1e6 / args.calls as f64;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "app start (compile or load cached component, build pools): {:.1} ms",
        startup.as_secs_f64() * 1e3
    )?;
    writeln!(
        out,
        "instantiate+call, sequential, {} calls: p50 {p50:.1} us, p99 {p99:.1} us, mean {mean:.1} us",
        args.calls
    )?;
    writeln!(
        out,
        "instantiate+call, {} concurrent tasks, {} calls: wall/n {per_call:.1} us; per call p50 {cp50:.1} us, p99 {cp99:.1} us, mean {cmean:.1} us",
        args.concurrency, args.calls
    )?;
    out.flush()?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The server's runtime: multi-threaded, one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}
