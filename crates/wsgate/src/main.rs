//! `wsgate`: the command line. Wiring only: parse arguments, run the command, turn errors into
//! one line on stderr and a non-zero exit.
//!
//! Modules: `cli` (arguments), `server` (serve, echo), `reload` (SIGHUP and the config
//! file watch), `duties` (the cluster's one-writer jobs), `heartbeat` (this node in the
//! store's node list), `demo`, `client` (commands that talk to a control plane).

mod cli;
mod client;
mod demo;
mod duties;
mod heartbeat;
mod observability;
mod reload;
mod server;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use client::{ControlClient, commands, plans};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Held until main returns: dropping it flushes the lines still buffered.
    let _log_guard = init_logging(log_format(&cli));
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("wsgate: error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve { config, watch_config, common } => {
            runtime()?.block_on(server::serve(config, watch_config, common))
        }
        Command::Demo { common } => runtime()?.block_on(demo::demo(common)),
        Command::Echo { listen, tls_cert, tls_key } => runtime()?.block_on(server::echo(listen, tls_cert.zip(tls_key))),
        // Client commands are a few blocking requests: no async runtime needed.
        Command::Api { command, client } => commands::api(&ControlClient::connect(&client)?, command),
        Command::App { command, client } => commands::app(&ControlClient::connect(&client)?, command),
        Command::Subscribe { app, api, plan, client } => {
            commands::subscribe(&ControlClient::connect(&client)?, &app, &api, &plan)
        }
        Command::Subscription { command, client } => commands::subscription(&ControlClient::connect(&client)?, command),
        Command::Keys { app, client } => commands::keys(&ControlClient::connect(&client)?, &app),
        Command::Token { app, scope, client } => {
            commands::token(&ControlClient::connect(&client)?, &app, scope.as_deref())
        }
        Command::Plan { command, client } => plans::plan(&ControlClient::connect(&client)?, command),
        Command::Nodes { client } => commands::nodes(&ControlClient::connect(&client)?),
        Command::Revoke { token, app, client } => {
            commands::revoke(&ControlClient::connect(&client)?, token.as_deref(), app.as_deref())
        }
        Command::SigningKey { command, client } => commands::signing_key(&ControlClient::connect(&client)?, command),
    }
}

/// The error and its causes on one line, each said once: the libraries' errors often carry
/// their cause's text already ("cannot read X: No such file"), and anyhow's chain would repeat
/// it.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// The log format: `--log-format` (or `WSGATE_LOG_FORMAT`), else `serve`'s config file's
/// `observability.log_format`, else text. A config that does not parse is reported by `serve`.
fn log_format(cli: &Cli) -> wsgate_core::config::LogFormat {
    use wsgate_core::config::LogFormat;
    match (cli.log_format.as_deref(), &cli.command) {
        (Some("json"), _) => LogFormat::Json,
        (Some(_), _) => LogFormat::Text,
        (None, Command::Serve { config: Some(path), .. }) => {
            server::load_config(path).map(|c| c.observability.log_format).unwrap_or_default()
        }
        (None, _) => LogFormat::Text,
    }
}

/// Logs go to stderr through a buffered writer on a thread of its own, so a connection never
/// waits for stderr (lines beyond its buffer are dropped, not waited for); `RUST_LOG` filters
/// them. Text has colour codes only when stderr is a terminal.
fn init_logging(format: wsgate_core::config::LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        wsgate_core::config::LogFormat::Json => builder.json().init(),
        wsgate_core::config::LogFormat::Text => builder.init(),
    }
    guard
}
