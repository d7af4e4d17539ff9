//! The `responses-pipe` binary: parse the command line, load and validate the configuration,
//! build the host, bind, serve until SIGTERM/Ctrl-C, then give in-flight streams a bounded grace.
//! `maintain` builds the same host and runs one maintenance pass.

use anyhow::Context;
use clap::Parser;
use responses_pipe_host::app::AppBuilder;
use responses_pipe_host::catalog_warm_up::CatalogWarmUp;
use responses_pipe_host::cli::{Cli, Command, MaintainArgs, ServeArgs};
use responses_pipe_host::config::Config;
use responses_pipe_host::maintenance::{FIRST_RUN_DELAY, MaintenanceTask, PassOutcome};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Maintain(args) => runtime.block_on(maintain(args)),
        Command::ConfigDoc => {
            use std::io::Write as _;
            let doc = responses_pipe_host::config::doc::markdown();
            std::io::stdout()
                .lock()
                .write_all(doc.as_bytes())
                .context("could not write the document")
        }
    }
}

/// One maintenance pass; fails (non-zero exit) when the pass fails.
async fn maintain(args: MaintainArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref(), &|name| std::env::var(name).ok())
        .context("invalid configuration")?;
    init_logging(&config);
    let app = AppBuilder::new(config, &args.data_dir)
        .build()
        .context("could not start")?;
    let outcome = responses_pipe_host::maintenance::run_once(&app).await;
    app.store.close().await;
    match outcome.context("maintenance failed")? {
        PassOutcome::Ran => tracing::info!("maintenance done"),
        PassOutcome::Skipped => {
            tracing::info!("maintenance not run: another worker holds the maintenance lock")
        }
    }
    Ok(())
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(config.log_level_filter().to_string())
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only on a terminal: redirected logs stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if config.log_json() {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Without client keys (neither `PIPE_API_KEYS` nor `OPENWEBUI_API_KEYS`) the host only listens on
/// loopback: anyone who can reach it could spend the OpenRouter key otherwise.
fn effective_listen(requested: SocketAddr, open: bool) -> SocketAddr {
    if open && !requested.ip().is_loopback() {
        let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), requested.port());
        tracing::warn!(
            requested = %requested, listening = %local,
            "no client keys (PIPE_API_KEYS, OPENWEBUI_API_KEYS): listening on loopback only; set them to accept other hosts"
        );
        local
    } else {
        if open {
            tracing::warn!(
                "no client keys (PIPE_API_KEYS, OPENWEBUI_API_KEYS): any local process may use this server and assert any Open WebUI user"
            );
        }
        requested
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref(), &|name| std::env::var(name).ok())
        .context("invalid configuration")?;
    init_logging(&config);
    let grace = config.shutdown_grace();
    let open = config.client_keys().is_empty();
    if config.api_key().is_none() {
        tracing::warn!(
            "OPENROUTER_API_KEY is not set: model listing and chats will fail until it is"
        );
    }
    let app = AppBuilder::new(config, &args.data_dir)
        .build()
        .context("could not start")?;
    let listen = effective_listen(args.listen, open);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("could not listen on {listen}"))?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    // Load the catalog once in the background so `/readyz` turns ready without user traffic.
    let warm_up = CatalogWarmUp::spawn(app.clone());
    let maintenance = MaintenanceTask::spawn(
        app.clone(),
        FIRST_RUN_DELAY,
        app.config.artifact_cleanup_interval(),
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(responses_pipe_host::server::serve(
        app.clone(),
        listener,
        async move {
            let mut rx = stop_rx;
            let _ = rx.wait_for(|stop| *stop).await;
        },
    ));
    shutdown_signal().await;
    warm_up.stop();
    maintenance.stop().await;
    let _ = stop_tx.send(true);
    match tokio::time::timeout(grace, server).await {
        Ok(joined) => joined
            .context("the server task failed")?
            .context("the server failed")?,
        Err(_) => tracing::warn!(
            grace_seconds = grace.as_secs(),
            "in-flight requests did not finish within the grace period"
        ),
    }
    app.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "could not listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown requested");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_client_keys_only_loopback_is_bound() {
        let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(
            effective_listen(public, true),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            effective_listen(public, false),
            public,
            "with keys the requested address is kept"
        );
        let local: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        assert_eq!(effective_listen(local, true), local);
    }

    #[test]
    fn open_webui_keys_alone_make_the_host_keyed() {
        let env = |name: &str| (name == "OPENWEBUI_API_KEYS").then(|| "owui=k".to_string());
        let config = Config::load(None, &env).unwrap();
        let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(
            effective_listen(public, config.client_keys().is_empty()),
            public
        );
    }
}
