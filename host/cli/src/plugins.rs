//! `rostersync plugins list|check|accept`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use rostersync_runtime::{Plugin, Runtime, RuntimeConfig};
use rostersync_sync::{Accepted, PluginView, accept_in_service, plugin_views};

use crate::context::Context;

#[derive(Subcommand)]
pub enum PluginsCommand {
    /// Every plugin with its provider, version, contract version, sha256
    /// and status.
    List {
        /// One JSON object per plugin, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Validate one file as a connector without putting it into service.
    Check { file: PathBuf },
    /// Accept the file now in the plugin folder under NAME as the build
    /// its connections run with. A replaced plugin is new code: its
    /// connections' runs are refused until it is accepted.
    Accept {
        name: String,
        /// The sha256 reviewed (`plugins list`); refused if the file in
        /// the folder is another.
        #[arg(long)]
        sha256: Option<String>,
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
}

pub fn open_runtime(plugin_dir: &Path) -> anyhow::Result<Runtime> {
    Runtime::new(RuntimeConfig::in_folder(plugin_dir))
}

/// Accepts the plugin in the folder under `name` for `context`'s store.
pub async fn accept(
    context: &Context,
    name: &str,
    sha256: Option<&str>,
    by: &str,
) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let runtime = open_runtime(&context.plugin_dir)?;
    runtime.scan().await?;
    let (build, accepted) = accept_in_service(&store, &runtime, name, sha256, by).await?;
    match accepted {
        Accepted::Already => println!(
            "plugin {name} (version {}, sha256 {}) was already accepted",
            build.version, build.sha256
        ),
        Accepted::Now { replaced } => {
            let was = replaced
                .map(|r| format!(", replacing version {} (sha256 {})", r.version, r.sha256))
                .unwrap_or_default();
            println!(
                "plugin {name} accepted: version {}, sha256 {}{was}; its connections run with it from now on",
                build.version, build.sha256
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `context` loads the configuration, for the subcommands that need the
/// store.
pub async fn run(
    command: PluginsCommand,
    plugin_dir: &Path,
    context: &dyn Fn() -> anyhow::Result<Context>,
) -> anyhow::Result<ExitCode> {
    let runtime = open_runtime(plugin_dir)?;
    match command {
        PluginsCommand::Accept { name, sha256, by } => {
            accept(&context()?, &name, sha256.as_deref(), &by).await
        }
        PluginsCommand::List { json } => {
            runtime.scan().await?;
            // What was accepted lives in the store, when there is one.
            let store = match context() {
                Ok(context) => context.store().await.ok(),
                Err(_) => None,
            };
            let views = match &store {
                Some(store) => plugin_views(store, &runtime).await?,
                None => runtime
                    .statuses()
                    .iter()
                    .map(|status| PluginView {
                        summary: status.summary(),
                        accepted: None,
                        awaiting_acceptance: false,
                    })
                    .collect(),
            };
            print_list(&runtime, &views, json)?;
            let all_good = views
                .iter()
                .all(|v| v.summary.in_service && !v.awaiting_acceptance)
                && runtime.statuses().iter().all(|s| s.error.is_none());
            Ok(crate::exit_code(all_good))
        }
        PluginsCommand::Check { file } => match runtime.load_file(&file).await {
            Ok(plugin) => {
                print_plugin(&plugin);
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => {
                eprintln!("{error}");
                Ok(ExitCode::FAILURE)
            }
        },
    }
}

pub fn print_list(runtime: &Runtime, views: &[PluginView], json: bool) -> anyhow::Result<()> {
    if json {
        for view in views {
            println!("{}", serde_json::to_string(view)?);
        }
        return Ok(());
    }
    if views.is_empty() {
        println!("No plugins in {}.", runtime.plugin_dir().display());
        return Ok(());
    }
    let dash = || "-".to_string();
    println!(
        "{:<16} {:<14} {:<9} {:<6} {:<14} STATUS",
        "NAME", "PROVIDER", "VERSION", "WIT", "SHA256"
    );
    for view in views {
        let row = &view.summary;
        println!(
            "{:<16} {:<14} {:<9} {:<6} {:<14} {}",
            row.name,
            row.provider.clone().unwrap_or_else(dash),
            row.version.clone().unwrap_or_else(dash),
            row.wit.clone().unwrap_or_else(dash),
            row.sha256
                .as_ref()
                .map(|s| format!("{}…", &s[..12]))
                .unwrap_or_else(dash),
            row.status
        );
        if let (true, Some(accepted), Some(found)) =
            (view.awaiting_acceptance, &view.accepted, &row.sha256)
        {
            println!(
                "  replaced since version {} (sha256 {}…) was accepted: its connections' runs are refused until `rostersync plugins accept {} --sha256 {found}`",
                accepted.version,
                &accepted.sha256[..12.min(accepted.sha256.len())],
                row.name
            );
        }
    }
    Ok(())
}

fn print_plugin(plugin: &Plugin) {
    let info = &plugin.info;
    println!("{}: a valid connector", plugin.path.display());
    println!("  provider      {} {}", info.provider, info.version);
    println!("  description   {}", info.description);
    println!(
        "  contract      rostersync:connector@{}",
        plugin.wit_version
    );
    println!("  sha256        {}", plugin.sha256);
    let capabilities: Vec<String> = info.capabilities.iter().map(|c| format!("{c:?}")).collect();
    println!(
        "  capabilities  {}",
        if capabilities.is_empty() {
            "none".into()
        } else {
            capabilities.join(", ")
        }
    );
    for spec in &info.settings {
        let default = spec
            .default_value
            .as_deref()
            .map(|d| format!(" (default {d})"))
            .unwrap_or_default();
        let required = if spec.required {
            "required"
        } else {
            "optional"
        };
        println!(
            "  setting       {} [{:?}, {required}]{default}: {}",
            spec.name, spec.kind, spec.description
        );
    }
}
