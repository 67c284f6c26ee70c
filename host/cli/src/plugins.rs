//! `rostersync plugins list|check`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use rostersync_runtime::{Plugin, PluginStatus, PluginSummary, Runtime, RuntimeConfig};

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
}

pub fn open_runtime(plugin_dir: &Path) -> anyhow::Result<Runtime> {
    Runtime::new(RuntimeConfig::in_folder(plugin_dir))
}

pub async fn run(command: PluginsCommand, plugin_dir: &Path) -> anyhow::Result<ExitCode> {
    let runtime = open_runtime(plugin_dir)?;
    match command {
        PluginsCommand::List { json } => {
            runtime.scan().await?;
            print_list(&runtime, json)?;
            let all_good = runtime.statuses().iter().all(|s| s.error.is_none());
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

pub fn print_list(runtime: &Runtime, json: bool) -> anyhow::Result<()> {
    let rows: Vec<PluginSummary> = runtime
        .statuses()
        .iter()
        .map(PluginStatus::summary)
        .collect();
    if json {
        for row in &rows {
            println!("{}", serde_json::to_string(row)?);
        }
        return Ok(());
    }
    if rows.is_empty() {
        println!("No plugins in {}.", runtime.plugin_dir().display());
        return Ok(());
    }
    let dash = || "-".to_string();
    println!(
        "{:<16} {:<14} {:<9} {:<6} {:<14} STATUS",
        "NAME", "PROVIDER", "VERSION", "WIT", "SHA256"
    );
    for row in rows {
        println!(
            "{:<16} {:<14} {:<9} {:<6} {:<14} {}",
            row.name,
            row.provider.unwrap_or_else(dash),
            row.version.unwrap_or_else(dash),
            row.wit.unwrap_or_else(dash),
            row.sha256
                .map(|s| format!("{}…", &s[..12]))
                .unwrap_or_else(dash),
            row.status
        );
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
