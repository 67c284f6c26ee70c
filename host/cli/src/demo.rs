//! `rostersync demo`: what a newcomer runs first. It builds the bundled
//! connectors into the plugin folder, lists them, and runs the template
//! connector's conformance suite offline from its fixtures.

use std::path::Path;
use std::process::ExitCode;

use rostersync_conformance::Traffic;

use crate::connector::{install, test};
use crate::plugins::{open_runtime, print_list};

const BUNDLED: [&str; 3] = [
    "connectors/template",
    "connectors/probe",
    "connectors/legacy-v0_1",
];

pub async fn run(plugin_dir: &Path) -> anyhow::Result<ExitCode> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()?;
    // The folder the test suites build connectors into: each compiles once.
    let shared_target = workspace.join("target").join("connectors");
    println!(
        "Building the bundled connectors into {}…",
        plugin_dir.display()
    );
    for crate_dir in BUNDLED {
        install(&workspace.join(crate_dir), plugin_dir, Some(&shared_target))?;
    }
    let runtime = open_runtime(plugin_dir)?;
    runtime.scan().await?;
    println!();
    print_list(&runtime, false)?;
    println!();
    let template = workspace.join("connectors/template");
    let passed = test(
        &template,
        Traffic::Replay,
        None,
        None,
        Some(&shared_target),
        plugin_dir,
    )
    .await?;
    Ok(crate::exit_code(passed))
}
