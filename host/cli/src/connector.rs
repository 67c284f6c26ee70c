//! `rostersync connector new|build|test`: the integrator's loop, and what
//! `rostersync target new|build|test` shares of it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use rostersync_conformance::{SuiteOptions, Traffic, run_suite};
use rostersync_model::Settings;
use rostersync_runtime::Limits;

use crate::plugins::open_runtime;
use crate::template::{CONNECTOR, SdkArgs, Template};

#[derive(Subcommand)]
pub enum ConnectorCommand {
    /// Start a connector crate from the template.
    New(NewArgs),
    /// Build connector crates for wasm32-wasip2 and install them in the
    /// plugin folder.
    Build(BuildPaths),
    /// Run the conformance suite: replayed from the recorded fixtures by
    /// default, or live.
    Test {
        /// A connector crate (built first) or a `.wasm` component.
        path: PathBuf,
        /// Run against the live provider and save new fixtures.
        #[arg(long, conflicts_with = "live")]
        record: bool,
        /// Run against the live provider without recording.
        #[arg(long)]
        live: bool,
        /// A TOML file of settings (`name = "value"`), for live and record
        /// runs.
        #[arg(long)]
        settings: Option<PathBuf>,
        /// Where the fixtures are (default: `PATH/fixtures`).
        #[arg(long)]
        fixtures: Option<PathBuf>,
        #[command(flatten)]
        build: BuildArgs,
    },
}

#[derive(Args)]
pub struct BuildArgs {
    /// Cargo's target folder for the wasm build.
    #[arg(long)]
    pub target_dir: Option<PathBuf>,
}

/// `new`'s arguments, for either kind of plugin.
#[derive(Args)]
pub struct NewArgs {
    /// The name: lower-case letters, digits and `-`.
    name: String,
    /// Where to create it (default: the current folder).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    #[command(flatten)]
    sdk: SdkArgs,
}

impl NewArgs {
    /// Creates the crate from `template` and says what next.
    pub fn create(self, template: &Template, test_does: &str) -> anyhow::Result<ExitCode> {
        let created = crate::template::create(template, &self.name, &self.dir, &self.sdk.sdk())?;
        let kind = template.kind;
        println!("Created {}. Next:", created.display());
        println!(
            "  rostersync {kind} test {}   # {test_does}",
            created.display()
        );
        println!(
            "  rostersync {kind} build {}  # install it in the plugin folder",
            created.display()
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// `build`'s arguments, for either kind of plugin.
#[derive(Args)]
pub struct BuildPaths {
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    build: BuildArgs,
}

impl BuildPaths {
    /// Builds every crate and installs its components.
    pub fn install_all(&self, plugin_dir: &Path) -> anyhow::Result<ExitCode> {
        for path in &self.paths {
            install(path, plugin_dir, self.build.target_dir.as_deref())?;
        }
        Ok(ExitCode::SUCCESS)
    }
}

pub async fn run(command: ConnectorCommand, plugin_dir: &Path) -> anyhow::Result<ExitCode> {
    match command {
        ConnectorCommand::New(args) => args.create(&CONNECTOR, "the conformance suite, offline"),
        ConnectorCommand::Build(args) => args.install_all(plugin_dir),
        ConnectorCommand::Test {
            path,
            record,
            live,
            settings,
            fixtures,
            build,
        } => {
            let traffic = match (record, live) {
                (true, _) => Traffic::Record,
                (_, true) => Traffic::Live,
                _ => Traffic::Replay,
            };
            let passed = test(
                &path,
                traffic,
                settings.as_deref(),
                fixtures,
                build.target_dir.as_deref(),
                plugin_dir,
            )
            .await?;
            Ok(crate::exit_code(passed))
        }
    }
}

/// Builds the crate at `path` and installs its component.
pub fn install(path: &Path, plugin_dir: &Path, target_dir: Option<&Path>) -> anyhow::Result<()> {
    for built in rostersync_builder::build(&path.join("Cargo.toml"), &[], target_dir)? {
        let name = built.plugin_name();
        let before = std::fs::read(plugin_dir.join(format!("{name}.wasm"))).ok();
        let installed = rostersync_builder::install(&built, plugin_dir)?;
        let now = std::fs::read(&installed)?;
        println!(
            "installed {} → {} ({} KB)",
            built.package,
            installed.display(),
            now.len() / 1024
        );
        if before.is_some_and(|before| before != now) {
            println!(
                "  this replaced the plugin {name} that was there: connections that ran the old one wait until it is accepted (rostersync plugins accept {name})"
            );
        }
    }
    Ok(())
}

/// Runs the conformance suite and prints its report; true if it passed.
pub async fn test(
    path: &Path,
    traffic: Traffic,
    settings: Option<&Path>,
    fixtures: Option<PathBuf>,
    target_dir: Option<&Path>,
    plugin_dir: &Path,
) -> anyhow::Result<bool> {
    let (wasm, fixtures_dir) = if is_wasm(path) {
        let fixtures =
            fixtures.ok_or_else(|| anyhow::anyhow!("testing a .wasm file needs --fixtures DIR"))?;
        (path.to_path_buf(), fixtures)
    } else {
        (
            component_of(path, target_dir)?,
            fixtures.unwrap_or_else(|| path.join("fixtures")),
        )
    };
    let settings = settings.map(read_settings).transpose()?;
    let runtime = open_runtime(plugin_dir)?;
    let plugin = Arc::new(runtime.load_file(&wasm).await?);
    println!(
        "Conformance of {} {} (contract {}), {}:",
        plugin.info.provider,
        plugin.info.version,
        plugin.wit_version,
        match traffic {
            Traffic::Replay => format!("replayed from {}", fixtures_dir.display()),
            Traffic::Record => format!("live, recording into {}", fixtures_dir.display()),
            Traffic::Live => "live".to_string(),
        }
    );
    let report = run_suite(
        plugin,
        SuiteOptions {
            settings,
            fixtures_dir,
            traffic,
            limits: Limits::default(),
        },
    )
    .await?;
    println!("{report}");
    Ok(report.passed())
}

pub fn is_wasm(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "wasm")
}

/// The component to test: a `.wasm` file as it is, or the one component a
/// crate builds.
pub fn component_of(path: &Path, target_dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    if is_wasm(path) {
        return Ok(path.to_path_buf());
    }
    let built = rostersync_builder::build(&path.join("Cargo.toml"), &[], target_dir)?;
    let [component] = built.as_slice() else {
        anyhow::bail!(
            "{} built {} components; test one at a time",
            path.display(),
            built.len()
        );
    };
    Ok(component.wasm.clone())
}

pub fn read_settings(path: &Path) -> anyhow::Result<Settings> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read the settings file: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: settings must be `name = \"value\"` lines: {e}",
            path.display()
        )
    })
}
