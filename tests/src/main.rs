//! `fake-openrouter`: the fake OpenRouter API as a process, for bench scripts and manual runs.
//!
//! Prints exactly one line, `listening http://ADDR/api/v1`, on stdout once the socket is bound,
//! so a script can read the base URL, then serves until killed (Ctrl-C stops it cleanly). Logs
//! go to stderr, filtered by `RUST_LOG`.

use std::{io::Write, net::SocketAddr};

use clap::Parser;
use fake_openrouter::{FakeConfig, FakeOpenRouter};
use tracing_subscriber::EnvFilter;

/// Fake OpenRouter Responses API on loopback; the request's model id picks the scenario.
#[derive(Debug, Parser)]
#[command(name = "fake-openrouter", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Require `Authorization: Bearer <KEY>` on every API request.
    #[arg(long, env = "FAKE_OPENROUTER_API_KEY")]
    api_key: Option<String>,
    /// Delay between deltas of the `fake/slow` model, in milliseconds.
    #[arg(long, default_value_t = FakeConfig::default().slow_delay_ms)]
    slow_delay_ms: u64,
    /// Number of deltas of the `fake/slow` model.
    #[arg(long, default_value_t = FakeConfig::default().slow_deltas)]
    slow_deltas: usize,
    /// Do not validate request bodies against OpenRouter's OpenAPI spec (benchmarks: the
    /// validation would otherwise add to every measured request).
    #[arg(long)]
    no_spec_validation: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = FakeConfig {
        expected_api_key: args.api_key,
        slow_delay_ms: args.slow_delay_ms,
        slow_deltas: args.slow_deltas,
        validate_spec: !args.no_spec_validation,
    };
    let fake = FakeOpenRouter::bind(args.listen, config).await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening {}", fake.base_url())?;
    stdout.flush()?;
    drop(stdout);
    tokio::signal::ctrl_c().await?;
    drop(fake);
    Ok(())
}
