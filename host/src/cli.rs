//! The command line: `responses-pipe serve [--listen ADDR] [--data-dir DIR] [--config FILE]`,
//! `responses-pipe maintain [--data-dir DIR] [--config FILE]` (one maintenance pass, then exit)
//! and `responses-pipe config-doc` (print `docs/configuration.md`, generated from the settings
//! table). Only where to listen and where files live are flags; every other setting is a valve
//! (TOML file or environment, see `config`), and secrets are environment-only, so nothing secret
//! ever appears in a process listing or shell history.

use crate::config::VALVES;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Shown under `--help`: where settings and secrets come from (the secrets listed from the
/// settings table), and the variables most deployments set.
fn after_help() -> String {
    let secrets: Vec<String> = VALVES
        .iter()
        .filter(|s| s.is_secret())
        .map(|s| {
            let mut names: Vec<&str> = s.env_aliases.to_vec();
            names.insert(0, s.name);
            names.join(" or ")
        })
        .collect();
    format!(
        "\
Settings: every valve of the Python Open WebUI pipe (same names and defaults), plus the host's
own, can be set in the --config TOML file (NAME = value, names in any case) or as environment
variables of the same name; the environment wins over the file. docs/configuration.md lists
every setting (`responses-pipe config-doc` prints it); a setting of a feature not built yet
warns at start-up, or stops it where operators rely on it.

Secrets come from the environment only (a secret in the config file is a start-up error):
  {}

The main ones:
  OPENROUTER_API_KEY   OpenRouter API key
  PIPE_API_KEYS        comma-separated keys clients must present (empty: no key required)
  DATABASE_URL         PostgreSQL for artifacts (postgres://user:password@host:5432/db);
                       unset: SQLite in <data dir>/artifacts.sqlite3

{MOST_USED}",
        secrets.join("\n  ")
    )
}

const MOST_USED: &str = "\
Most used settings:
  BASE_URL             OpenRouter API root (default https://openrouter.ai/api/v1;
                       also read as OPENROUTER_API_BASE_URL)
  MODEL_ID             comma-separated model allowlist, or `auto` for the whole catalog
  LOG_LEVEL            DEBUG, INFO, WARNING, ERROR or CRITICAL (also GLOBAL_LOG_LEVEL)
  LOG_FORMAT           text or json
  PIPE_ID              names the artifact table (default openrouter_responses)";

/// Responses Pipe: an OpenAI-compatible API in front of OpenRouter's Responses API, with the
/// request logic running in a sandboxed WebAssembly component.
#[derive(Debug, clap::Parser)]
#[command(
    name = "responses-pipe",
    version,
    about = "OpenAI-compatible gateway to OpenRouter's Responses API, with the pipe logic in a sandboxed WebAssembly component",
    after_help = after_help()
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    #[command(after_help = after_help())]
    Serve(ServeArgs),
    /// Run one maintenance pass (artifact retention cleanup) and exit. Safe to run while servers
    /// are up: only one worker runs a pass at a time.
    #[command(after_help = after_help())]
    Maintain(MaintainArgs),
    /// Print docs/configuration.md (every setting, generated from the settings table) to
    /// standard output.
    ConfigDoc,
}

#[derive(Debug, Clone, clap::Args)]
pub struct MaintainArgs {
    /// Directory for the SQLite database and the compiled-component cache.
    #[arg(long, value_name = "DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// TOML file with settings (valve names as keys); environment variables override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory for the SQLite database, the compiled-component cache and session logs.
    #[arg(long, value_name = "DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// TOML file with settings (valve names as keys); environment variables override it.
    /// Secrets are not accepted here: set them in the environment.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[test]
    fn the_clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_uses_the_documented_defaults() {
        let cli = Cli::try_parse_from(["responses-pipe", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(args.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(args.data_dir, PathBuf::from("./data"));
        assert_eq!(args.config, None);
    }

    #[test]
    fn serve_takes_listen_data_dir_and_config() {
        let cli = Cli::try_parse_from([
            "responses-pipe",
            "serve",
            "--listen",
            "0.0.0.0:9000",
            "--data-dir",
            "/var/lib/pipe",
            "--config",
            "pipe.toml",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(args.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(args.data_dir, PathBuf::from("/var/lib/pipe"));
        assert_eq!(args.config, Some(PathBuf::from("pipe.toml")));
    }

    #[test]
    fn maintain_takes_data_dir_and_config() {
        let cli = Cli::try_parse_from([
            "responses-pipe",
            "maintain",
            "--data-dir",
            "/var/lib/pipe",
            "--config",
            "pipe.toml",
        ])
        .unwrap();
        let Command::Maintain(args) = cli.command else {
            panic!("not maintain")
        };
        assert_eq!(args.data_dir, PathBuf::from("/var/lib/pipe"));
        assert_eq!(args.config, Some(PathBuf::from("pipe.toml")));
        assert!(Cli::try_parse_from(["responses-pipe", "maintain", "--listen", "x"]).is_err());
    }

    #[test]
    fn a_bad_listen_address_or_missing_subcommand_is_refused() {
        assert!(
            Cli::try_parse_from(["responses-pipe", "serve", "--listen", "not-an-address"]).is_err()
        );
        assert!(Cli::try_parse_from(["responses-pipe"]).is_err());
    }

    #[test]
    fn config_doc_is_a_subcommand_without_arguments() {
        let cli = Cli::try_parse_from(["responses-pipe", "config-doc"]).unwrap();
        assert!(matches!(cli.command, Command::ConfigDoc));
        assert!(Cli::try_parse_from(["responses-pipe", "config-doc", "--listen", "x"]).is_err());
    }

    #[test]
    fn help_lists_every_secret_of_the_settings_table() {
        let help = Cli::command().render_long_help().to_string();
        for spec in VALVES.iter().filter(|s| s.is_secret()) {
            assert!(
                help.contains(spec.name),
                "--help lacks {}:\n{help}",
                spec.name
            );
        }
        assert!(help.contains("config-doc"), "{help}");
    }

    #[test]
    fn help_explains_where_secrets_come_from() {
        let help = Cli::command().render_long_help().to_string();
        for needle in [
            "OPENROUTER_API_KEY",
            "BASE_URL",
            "PIPE_API_KEYS",
            "MODEL_ID",
            "environment only",
        ] {
            assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
        }
        let mut cmd = Cli::command();
        let serve = cmd.find_subcommand_mut("serve").unwrap();
        let serve_help = serve.render_long_help().to_string();
        assert!(serve_help.contains("OPENROUTER_API_KEY"), "{serve_help}");
        assert!(serve_help.contains("127.0.0.1:8080"), "{serve_help}");
    }
}
