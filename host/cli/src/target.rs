//! `rostersync target new|build|test`: the integrator's loop for
//! provisioning targets, on the connector loop's template and build
//! machinery, with the target conformance suite.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;
use rostersync_conformance::{TargetEndpoint, TargetSuiteOptions, run_target_suite};
use rostersync_runtime::Limits;

use crate::connector::{BuildArgs, BuildPaths, NewArgs, component_of, read_settings};
use crate::plugins::open_runtime;
use crate::template::TARGET;

#[derive(Subcommand)]
pub enum TargetCommand {
    /// Start a target crate from the template (a target for the Example
    /// App API).
    New(NewArgs),
    /// Build target crates for wasm32-wasip2 and install them in the
    /// plugin folder.
    Build(BuildPaths),
    /// Run the target conformance suite: against the Example App API
    /// served on 127.0.0.1 by default, or against a live system given by
    /// --settings or --base-url. It creates, changes and deletes a few
    /// objects of its own there.
    Test {
        /// A target crate (built first) or a `.wasm` component.
        path: PathBuf,
        /// A TOML file of settings (`name = "value"`) reaching a live
        /// system.
        #[arg(long)]
        settings: Option<PathBuf>,
        /// The live system's base URL (the `base-url` setting), e.g. a
        /// SCIM service's `https://scim.example.com/v2`.
        #[arg(long)]
        base_url: Option<String>,
        #[command(flatten)]
        build: BuildArgs,
    },
}

pub async fn run(command: TargetCommand, plugin_dir: &Path) -> anyhow::Result<ExitCode> {
    match command {
        TargetCommand::New(args) => args.create(
            &TARGET,
            "the conformance suite, against a served Example App",
        ),
        TargetCommand::Build(args) => args.install_all(plugin_dir),
        TargetCommand::Test {
            path,
            settings,
            base_url,
            build,
        } => {
            let endpoint = match (settings, base_url) {
                (None, None) => TargetEndpoint::ExampleApp,
                (file, base_url) => {
                    let mut settings = file.as_deref().map(read_settings).transpose()?;
                    let settings = settings.get_or_insert_default();
                    if let Some(url) = base_url {
                        settings.set("base-url", url);
                    }
                    TargetEndpoint::Live(settings.clone())
                }
            };
            let passed = test(&path, endpoint, build.target_dir.as_deref(), plugin_dir).await?;
            Ok(crate::exit_code(passed))
        }
    }
}

/// Runs the target conformance suite and prints its report; true if it
/// passed.
pub async fn test(
    path: &Path,
    endpoint: TargetEndpoint,
    target_dir: Option<&Path>,
    plugin_dir: &Path,
) -> anyhow::Result<bool> {
    let wasm = component_of(path, target_dir)?;
    let runtime = open_runtime(plugin_dir)?;
    let component = Arc::new(runtime.load_target_file(&wasm).await?);
    println!(
        "Conformance of the target {} {} (contract {}), {}:",
        component.info.provider,
        component.info.version,
        component.wit_version,
        match &endpoint {
            TargetEndpoint::ExampleApp => "against the Example App served on 127.0.0.1".to_string(),
            TargetEndpoint::Live(settings) => format!(
                "live at {}",
                settings.get("base-url").unwrap_or("its default base URL")
            ),
        }
    );
    let report = run_target_suite(
        component,
        TargetSuiteOptions {
            endpoint,
            limits: Limits::default(),
        },
    )
    .await?;
    println!("{report}");
    Ok(report.passed())
}
