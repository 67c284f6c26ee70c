//! `rostersync`: the command line over the runtime, the run pipeline, the
//! store, the builder, the conformance suite and the provider sandbox. A
//! thin layer: each subcommand parses its arguments, calls a library, and
//! reports in words an operator can act on.

mod connector;
mod context;
mod demo;
mod demo_scim;
mod plugins;
mod roster;
mod sandbox;
mod serve;
mod target;
mod targets;
mod template;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

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
        default_value = DEFAULT_PLUGIN_DIR
    )]
    plugin_dir: PathBuf,

    /// The configuration file: store, plugin folder, connections.
    #[arg(long, global = true, env = "ROSTERSYNC_CONFIG")]
    config: Option<PathBuf>,

    /// How log lines on standard error are written: `text` for people
    /// (coloured only on a terminal), `json` one object a line for a log
    /// collector.
    #[arg(
        long,
        global = true,
        env = "ROSTERSYNC_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    log_format: LogFormat,

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
    /// Write, build and test provisioning targets.
    #[command(subcommand)]
    Target(target::TargetCommand),
    /// Run the host: the scheduler and run queue, the admin API and the
    /// dashboard, until Ctrl-C.
    Serve(serve::ServeArgs),
    /// Every connection at a glance: last run, last changed and checked,
    /// next scheduled run, running jobs, open holds, accounts per role and
    /// standing issues. Exit status 1 when a connection failed its last run,
    /// ended it incomplete or waits on a hold.
    Status(serve::StatusArgs),
    /// Check the configuration file without starting anything.
    #[command(subcommand)]
    Config(serve::ConfigCommand),
    /// Run one connection now. Exit status: 0 succeeded (or a clean dry
    /// run), 1 the run failed, 2 it could not start, 3 held (or would
    /// hold), 4 a dry run found changes, 5 incomplete (validation left out
    /// too much of a role; nothing destructive applied).
    Sync(roster::SyncArgs),
    /// A connection's runs, newest first, with last changed and last
    /// checked times.
    History(roster::HistoryArgs),
    /// What is wrong at a connection's source now (its standing issues,
    /// each with its policy and fix), or one run's issues, as text or CSV.
    Issues(roster::IssuesArgs),
    /// Runs held for an operator: list, show, export, confirm, reject.
    #[command(subcommand)]
    Holds(roster::HoldsCommand),
    /// Provisioned accounts: show, delete, unlink (audited).
    #[command(subcommand)]
    Accounts(roster::AccountsCommand),
    /// Provisioning targets: list, preview, deliver, reconcile, their
    /// delivery logs, holds and renames.
    #[command(subcommand)]
    Targets(targets::TargetsCommand),
    /// Serve the provider sandbox (fake Wonde, Clever, Arbor, Xporter,
    /// Scholarpack) on 127.0.0.1.
    Sandbox(sandbox::SandboxArgs),
    /// Start the sandbox, sync one connection per provider into a fresh
    /// store, change the schools, sync again, summarise, then serve the
    /// dashboard over it until Ctrl-C.
    Demo(demo::DemoArgs),
}

/// The plugin folder when neither flag, environment nor file names one.
pub const DEFAULT_PLUGIN_DIR: &str = "plugins";
/// The configuration file read when `--config` is not given.
const DEFAULT_CONFIG: &str = "rostersync.toml";

/// The shape of the log lines on standard error.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Logs go to standard error, filtered by `RUST_LOG` (default: warnings),
/// as text (colour codes only when standard error is a terminal, so log
/// files stay plain) or as JSON lines.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

/// A closed pipe (`rostersync history x | head`) ends the process quietly,
/// as it does for every other Unix tool, instead of a panic from `println!`.
fn quiet_on_closed_pipe() {
    // SAFETY: restoring the default disposition of SIGPIPE before any other
    // thread exists; the Rust runtime sets it to "ignore" at start-up.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = tokio::runtime::Runtime::new().expect("starting the async runtime");
    let outcome = runtime.block_on(async {
        let file = cli.config.clone().unwrap_or_else(|| DEFAULT_CONFIG.into());
        let context = || context::Context::load(&file, cli.config.is_some(), &cli.plugin_dir);
        match cli.command {
            Command::Plugins(command) => plugins::run(command, &cli.plugin_dir, &context).await,
            Command::Connector(command) => connector::run(command, &cli.plugin_dir).await,
            Command::Target(command) => target::run(command, &cli.plugin_dir).await,
            Command::Serve(args) => serve::serve(&context()?, args).await,
            Command::Status(args) => serve::status(&context()?, args).await,
            // Checking a file that is not there is an error, named or not.
            Command::Config(command) => serve::config(&file, &cli.plugin_dir, command).await,
            Command::Sync(args) => roster::sync(&context()?, args).await,
            Command::History(args) => roster::history(&context()?, args).await,
            Command::Issues(args) => roster::issues(&context()?, args).await,
            Command::Holds(command) => roster::holds(&context()?, command).await,
            Command::Accounts(command) => roster::accounts(&context()?, command).await,
            Command::Targets(command) => targets::run(&context()?, command).await,
            Command::Sandbox(args) => sandbox::run(args).await,
            Command::Demo(args) => demo::run(&cli.plugin_dir, args).await,
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
