//! `rostersync`: the command line over the runtime, the builder and the
//! conformance suite. A thin layer: each subcommand parses its arguments,
//! calls a library, and reports in words an operator can act on.

mod connector;
mod demo;
mod plugins;
mod template;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "rostersync",
    version,
    about = "Keeps school rosters in step with the systems that hold them."
)]
struct Cli {
    /// The plugin folder: every `*.wasm` in it is a connector.
    #[arg(
        long,
        global = true,
        env = "ROSTERSYNC_PLUGIN_DIR",
        default_value = "plugins"
    )]
    plugin_dir: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect the connectors in the plugin folder.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
    /// Write, build and test connectors.
    #[command(subcommand)]
    Connector(connector::ConnectorCommand),
    /// Build the bundled connectors, list them, and run the template's
    /// conformance suite offline.
    Demo,
}

/// Success when `ok`, else the failure status scripts test for.
pub fn exit_code(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("starting the async runtime");
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Plugins(command) => plugins::run(command, &cli.plugin_dir).await,
            Command::Connector(command) => connector::run(command, &cli.plugin_dir).await,
            Command::Demo => demo::run(&cli.plugin_dir).await,
        }
    });
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
