//! `fake-tools`: the fake OpenAPI and MCP tool servers as a process, for manual runs.
//!
//! Prints two lines on stdout once both sockets are bound, `openapi http://ADDR` and
//! `mcp http://ADDR/mcp`, ready to paste into `[[tool_servers]]` declarations, then serves until
//! killed (Ctrl-C stops it). Logs go to stderr, filtered by `RUST_LOG`.

use std::io::Write;

use clap::Parser;
use fake_openrouter::fake_tools::mcp::FakeMcp;
use fake_openrouter::fake_tools::openapi::FakeOpenApi;
use tracing_subscriber::EnvFilter;

/// Fake tool servers on loopback.
#[derive(Debug, Parser)]
#[command(name = "fake-tools", version)]
struct Args {
    /// Port of the OpenAPI server (0: a free one).
    #[arg(long, default_value_t = 0)]
    openapi_port: u16,
    /// Answer MCP requests as SSE streams instead of JSON.
    #[arg(long)]
    mcp_sse: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let openapi = FakeOpenApi::start_on(args.openapi_port).await?;
    let mcp = FakeMcp::start(args.mcp_sse).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "openapi {}", openapi.url())?;
    writeln!(out, "mcp {}", mcp.url())?;
    out.flush()?;
    drop(out);
    tokio::signal::ctrl_c().await?;
    Ok(())
}
