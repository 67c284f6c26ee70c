//! `rostersync demo`: what a newcomer runs first. It starts the provider
//! sandbox, builds the six provider connectors into the plugin folder,
//! configures one connection per provider in a fresh store, runs a full
//! sync of each, changes the schools, runs a delta of each, and prints a
//! summary per connection. When `scim2-server` is installed it provisions
//! the Wonde connection's pupils, staff and classes into one it starts.
//! Then, unless told not to, it serves the dashboard over the same store,
//! sandbox and SCIM server until Ctrl-C, so "Refresh now" really reads the
//! sandbox again and delivers what changed.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use rostersync_admin::{AdminConfig, Scope, TokenConfig};
use rostersync_schedule::{RunSpec, ScheduleConfig};

use chrono::Local;
use rostersync_deliver::{Engine, TargetConfig, TargetFactory, export_file, write_passwords};
use rostersync_model::target::ObjectKind;
use rostersync_runtime::{Limits, Runtime};
use rostersync_sandbox::{DropKind, Mutation, Sandbox, SandboxConfig};
use rostersync_service::target_factories;
use rostersync_store::{RunMode, Store};
use rostersync_sync::{
    ConnectionConfig, PluginBuild, PluginSource, RunReport, RunRequest, RunStatus, role_name,
};

use crate::connector::install;
use crate::demo_scim::DemoScim;
use crate::plugins::open_runtime;
use crate::roster::print_report;
use crate::serve::{HostPlan, bind, run_host};

#[derive(Args)]
pub struct DemoArgs {
    /// Stop after the summary instead of serving the dashboard (for
    /// scripts and CI).
    #[arg(long)]
    no_serve: bool,
    /// Where the dashboard listens; a free port if this one is taken.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

/// The provider connectors, by crate folder and plugin name.
const PROVIDERS: [&str; 6] = [
    "wonde",
    "clever",
    "arbor",
    "xporter",
    "scholarpack",
    "oneroster",
];

/// The target plugin the demo provisions through.
const TARGET: &str = "scim";

/// The plugins the demo runs: the provider connectors and the target.
fn plugins() -> impl Iterator<Item = &'static str> {
    PROVIDERS.into_iter().chain([TARGET])
}

/// The connection the demo provisions from.
const PROVISIONED: &str = "demo-wonde";

/// Where the demo writes the initial passwords of the accounts it creates.
const DEMO_PASSWORDS: &str = "rostersync-demo-passwords";

/// Puts the six provider connectors and the SCIM target into `plugin_dir`: built from the
/// source tree when this binary was built from one that is still there and
/// cargo is at hand; otherwise the `.wasm` files already in the plugin
/// folder, or those shipped in a `plugins` folder beside the binary (a
/// release), so an operator without Rust can run the demo.
fn provide_connectors(plugin_dir: &Path) -> anyhow::Result<()> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let has_cargo = std::process::Command::new("cargo")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if workspace.join("connectors").is_dir() && has_cargo {
        let workspace = workspace.canonicalize()?;
        // The folder the test suites build connectors into: each compiles once.
        let shared_target = workspace.join("target").join("connectors");
        println!(
            "Building the provider connectors and the SCIM target into {}…",
            plugin_dir.display()
        );
        for provider in plugins() {
            install(
                &workspace.join("connectors").join(provider),
                plugin_dir,
                Some(&shared_target),
            )?;
        }
        return Ok(());
    }
    let wasm = |folder: &Path, provider: &str| folder.join(format!("{provider}.wasm"));
    let missing = |folder: &Path| {
        plugins()
            .filter(|p| !wasm(folder, p).is_file())
            .collect::<Vec<_>>()
    };
    if missing(plugin_dir).is_empty() {
        println!(
            "Using the provider connectors and the SCIM target in {}.",
            plugin_dir.display()
        );
        return Ok(());
    }
    let beside = std::env::current_exe()?
        .parent()
        .map(|folder| folder.join("plugins"))
        .unwrap_or_default();
    if missing(&beside).is_empty() {
        std::fs::create_dir_all(plugin_dir)?;
        for provider in plugins() {
            std::fs::copy(wasm(&beside, provider), wasm(plugin_dir, provider))?;
        }
        println!(
            "Using the provider connectors and the SCIM target shipped in {}.",
            beside.display()
        );
        return Ok(());
    }
    anyhow::bail!(
        "the demo needs the six provider connectors and the SCIM target, and {} lacks {}: put the release's .wasm files there or in {}, or run the demo from the source tree with Rust installed",
        plugin_dir.display(),
        missing(plugin_dir)
            .iter()
            .map(|p| format!("{p}.wasm"))
            .collect::<Vec<_>>()
            .join(", "),
        beside.display()
    )
}

/// The store the demo writes when `ROSTERSYNC_STORE` names none.
const DEMO_STORE_FILE: &str = "rostersync-demo.db";

/// The school every demo connection reads.
const SCHOOL: usize = 0;

pub async fn run(plugin_dir: &Path, args: DemoArgs) -> anyhow::Result<ExitCode> {
    provide_connectors(plugin_dir)?;
    let runtime = open_runtime(plugin_dir)?;
    runtime.scan().await?;

    let sandbox = Sandbox::start(SandboxConfig::default()).await?;
    println!("Provider sandbox on http://{}", sandbox.addr());
    let drop_folder = std::env::current_dir()?.join("rostersync-demo-drop");
    let _ = std::fs::remove_dir_all(&drop_folder);
    std::fs::create_dir_all(&drop_folder)?;
    sandbox.write_oneroster_drop(&drop_folder, SCHOOL, DropKind::Bulk)?;
    let bulk_revision = sandbox.world().revision;

    let store = fresh_store().await?;
    let mut connections = Vec::new();
    for provider in PROVIDERS {
        let mut connection = ConnectionConfig::new(
            format!("demo-{provider}"),
            provider,
            sandbox.connector_settings(provider, SCHOOL),
        );
        if provider == "oneroster" {
            connection.drop_folder = Some(drop_folder.clone());
        }
        connection.schedule = ScheduleConfig {
            runs: vec![RunSpec {
                cron: "0 * * * *".into(),
                between: Some("07:00-18:00".into()),
            }],
            jitter_seconds: 300,
            ..ScheduleConfig::default()
        };
        let plugin = runtime
            .plugin(provider)
            .ok_or_else(|| anyhow::anyhow!("the {provider} connector did not load"))?;
        // The demo put these builds in the folder itself: they are the
        // ones its connections run with, in a store it may be reusing.
        rostersync_sync::accept_plugin(&store, &PluginBuild::of(&plugin), "demo").await?;
        let source = PluginSource::new(plugin, &connection, Limits::default())
            .map_err(anyhow::Error::msg)?;
        connections.push((connection, source));
    }

    println!("\nFull sync of each connection:");
    let mut fulls = Vec::new();
    for (connection, source) in &connections {
        let report = sync(&store, connection, source, RunMode::Full).await?;
        fulls.push(report);
    }

    println!("\nChanging the school: a pupil joins, one is edited, one removed, one moves class.");
    for mutation in [
        Mutation::AddPupil,
        Mutation::EditPupil { pupil: None },
        Mutation::RemovePupil { pupil: None },
        Mutation::MovePupil { pupil: None },
    ] {
        sandbox.mutate(SCHOOL, mutation)?;
    }
    sandbox.write_oneroster_drop(
        &drop_folder,
        SCHOOL,
        DropKind::Delta {
            since_revision: bulk_revision,
        },
    )?;

    println!("\nDelta sync of each connection:");
    let mut deltas = Vec::new();
    for (connection, source) in &connections {
        deltas.push(sync(&store, connection, source, RunMode::Delta).await?);
    }
    summarise(&fulls, &deltas, &store.accounts_by_role().await?);
    let (_scim, targets) = provision(&store, &runtime).await?;
    let all_synced = deltas
        .iter()
        .chain(&fulls)
        .all(|r| r.status != RunStatus::Failed);
    if !args.no_serve {
        let listener = match bind(args.listen).await {
            Ok(listener) => listener,
            Err(_) => bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?,
        };
        let token = hex::encode(rand::random::<[u8; 16]>());
        let plan = HostPlan {
            store: Arc::new(store),
            runtime,
            connections: connections.into_iter().map(|(c, _)| c).collect(),
            concurrency: 2,
            listener,
            admin: AdminConfig {
                tokens: vec![TokenConfig::new("demo", Scope::Admin, &token)],
                ..AdminConfig::default()
            },
            channels: Vec::new(),
            targets,
            reload_from: None,
        };
        run_host(plan, |address| {
            println!("\nThe dashboard is on http://{address}/ — sign in with the token {token}");
            println!("The provider sandbox keeps serving, so \"Refresh now\" reads it again. Ctrl-C stops both.");
        })
        .await?;
    }
    sandbox.shutdown().await;
    Ok(crate::exit_code(all_synced))
}

/// Provisions the Wonde connection into a real SCIM server when
/// `scim2-server` is installed, and says what the server then holds;
/// returns the server (running until dropped) and the target, for the
/// host to keep delivering after runs.
async fn provision(
    store: &Store,
    runtime: &Runtime,
) -> anyhow::Result<(Option<DemoScim>, Vec<TargetConfig>)> {
    println!("\nProvisioning {PROVISIONED} into a SCIM 2.0 server:");
    let Some(server) = DemoScim::start().await? else {
        println!(
            "  scim2-server is not installed, so the demo provisions nowhere; `python3 -m pip install scim2-server` and run the demo again (see \"Provisioning targets\" in the README)."
        );
        return Ok((None, Vec::new()));
    };
    let passwords = std::env::current_dir()?.join(DEMO_PASSWORDS);
    let _ = std::fs::remove_dir_all(&passwords);
    std::fs::create_dir_all(&passwords)?;
    let config = server.target(PROVISIONED, &passwords);
    let target = target_factories(runtime.clone(), Limits::default())
        .open(&config)
        .await?;
    let report = Engine::new(store, &config, target).deliver().await?;
    let done: Vec<String> = report
        .done
        .iter()
        .map(|(action, n)| format!("{n} {action}"))
        .collect();
    println!(
        "  scim2-server on {}: {}",
        server.base,
        if done.is_empty() {
            "nothing to do".into()
        } else {
            done.join(", ")
        },
    );
    explain_waiting(store, &config.name).await?;
    if !report.passwords.is_empty() {
        let file = export_file(&passwords, &config.name);
        write_passwords(&report.passwords, &file)?;
        println!(
            "  {} initial passwords written to {} (owner-only; kept nowhere else)",
            report.passwords.len(),
            file.display()
        );
    }
    Ok((Some(server), vec![config]))
}

/// Says which accounts still wait to be made in the target and why (the
/// sandbox gives two people one email, as real schools do), and how many
/// groups wait to add them.
async fn explain_waiting(store: &Store, target: &str) -> anyhow::Result<()> {
    let waiting = store.target_changes(target).await?;
    if waiting.is_empty() {
        return Ok(());
    }
    let log = store.target_deliveries(target, 1000).await?;
    let (users, groups): (Vec<_>, Vec<_>) = waiting
        .iter()
        .partition(|change| change.item.after.kind == ObjectKind::User);
    println!(
        "  {} accounts wait, each for its reason (`rostersync targets deliveries {target}`), and {} groups wait to add them:",
        users.len(),
        groups.len()
    );
    for change in users {
        let id = &change.item.external_id;
        let why = log
            .iter()
            .find(|line| &line.external_id == id && line.error.is_some())
            .and_then(|line| line.error.as_deref())
            .or(change.last_error.as_deref())
            .unwrap_or("not sent yet");
        println!("    {id}: {why}");
    }
    Ok(())
}

/// The store `ROSTERSYNC_STORE` names, else a fresh SQLite file.
async fn fresh_store() -> anyhow::Result<Store> {
    let url = Store::url_from_env_or(&format!("sqlite://{DEMO_STORE_FILE}"));
    if url.ends_with(DEMO_STORE_FILE) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{DEMO_STORE_FILE}{suffix}"));
        }
    }
    println!("Store: ROSTERSYNC_STORE={}", redact_url(&url));
    Ok(Store::open(&url).await?)
}

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// One run; a held run is shown, then confirmed, as an operator would
/// after reading the evidence.
async fn sync(
    store: &Store,
    connection: &ConnectionConfig,
    source: &PluginSource,
    mode: RunMode,
) -> anyhow::Result<RunReport> {
    let request = RunRequest::new(mode, Local::now().date_naive());
    let report = rostersync_sync::run(store, connection, source, request).await?;
    print_report(&report);
    if report.status == RunStatus::Held
        && let Some(hold) = store.open_hold(&connection.id).await?
    {
        let run =
            rostersync_sync::confirm_hold(store, connection, hold.id, &hold.digest, "demo").await?;
        println!(
            "  the demo confirms hold {} as an operator would: applied as run {run}",
            hold.id
        );
    }
    Ok(report)
}

/// The runs, then each connection's active accounts per role (`accounts`,
/// as the store counts them after every run and confirmation) beside the
/// people of that role its full run read.
fn summarise(
    fulls: &[RunReport],
    deltas: &[RunReport],
    accounts: &HashMap<String, BTreeMap<String, i64>>,
) {
    println!(
        "\n{:<18} {:>6} {:>8} {:>8} {:>8} {:>8} {:>7} {:>6} {:>8}",
        "connection", "run", "read", "created", "updated", "removed", "issues", "holds", "time"
    );
    for report in fulls.iter().zip(deltas).flat_map(|(f, d)| [f, d]) {
        println!(
            "{:<18} {:>6} {:>8} {:>8} {:>8} {:>8} {:>7} {:>6} {:>6.1} s{}",
            report.connection,
            report.mode,
            report.records_read,
            report.created,
            report.updated,
            report.removed,
            report.issues,
            report.holds.len(),
            report.elapsed.as_secs_f64(),
            if report.status == RunStatus::Failed {
                format!("  FAILED: {}", report.error.as_deref().unwrap_or_default())
            } else {
                String::new()
            }
        );
    }
    println!(
        "\nAccounts per role after both runs, beside the people the full run read:\n{:<18} {:>18} {:>18} {:>18}",
        "connection", "students", "staff", "contacts"
    );
    for full in fulls {
        let now = accounts.get(&full.connection);
        let cells: Vec<String> = full
            .roles
            .iter()
            .map(|read| {
                let active = now
                    .and_then(|by_role| by_role.get(role_name(read.role)))
                    .copied()
                    .unwrap_or_default();
                format!("{active} of {}", read.read)
            })
            .collect();
        println!(
            "{:<18} {:>18} {:>18} {:>18}",
            full.connection,
            cells.first().map_or("-", String::as_str),
            cells.get(1).map_or("-", String::as_str),
            cells.get(2).map_or("-", String::as_str)
        );
    }
    println!(
        "\nLook closer (with ROSTERSYNC_STORE set as above): rostersync history demo-wonde; \
         rostersync issues demo-clever (what is wrong now) --csv; rostersync holds list --all"
    );
}
