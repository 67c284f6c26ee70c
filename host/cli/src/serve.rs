//! `rostersync serve`, `status` and `config check`: the unattended host
//! (scheduler, run queue, admin API and dashboard) and what an operator
//! asks of it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::Utc;
use clap::{Args, Subcommand};
use rostersync_admin::AdminConfig;
use rostersync_config::check::{Problem, connection_problems};
use rostersync_deliver::TargetConfig;
use rostersync_model::Role;
use rostersync_notify::Channel;
use rostersync_runtime::Runtime;
use rostersync_service::{Service, ServiceOptions};
use rostersync_store::{RunMode, Store};
use rostersync_sync::{ConnectionConfig, RunStatus, role_name};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::context::Context;
use crate::plugins::open_runtime;
use crate::roster::roles_line;

#[derive(Args)]
pub struct ServeArgs {
    /// Listen here instead of the configuration's `[admin] listen`.
    #[arg(long)]
    listen: Option<SocketAddr>,
}

/// What one host serves: its connections, its admin surface and its
/// limits. `serve` reads it from the configuration; `demo` builds one.
pub struct HostPlan {
    pub store: Arc<Store>,
    pub runtime: Runtime,
    pub connections: Vec<ConnectionConfig>,
    pub concurrency: usize,
    pub listener: tokio::net::TcpListener,
    /// Who may use the dashboard and API, sessions, connection limits, TLS.
    pub admin: AdminConfig,
    /// Where operator notifications go.
    pub channels: Vec<Channel>,
    /// The provisioning targets delivered after runs.
    pub targets: Vec<TargetConfig>,
    /// The configuration file to reread on SIGHUP or when it changes;
    /// `None` for a host built in code (the demo).
    pub reload_from: Option<ReloadFrom>,
}

/// Where a reload reads its connections from.
pub struct ReloadFrom {
    pub file: PathBuf,
    pub plugin_dir: PathBuf,
}

/// Binds the admin server's address, naming it if that fails.
pub async fn bind(address: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| {
            format!("cannot listen on {address} (is another rostersync serving there?)")
        })
}

pub async fn serve(context: &Context, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = &context.config;
    if config.admin.tokens.is_empty() {
        anyhow::bail!(
            "{} declares no admin tokens, so nobody could use the dashboard or API; add [admin] tokens = [{{ name = \"ops\", scope = \"admin\", token_env = \"ROSTERSYNC_ADMIN_TOKEN\" }}]",
            context.config_file.display()
        );
    }
    let runtime = open_runtime(&context.plugin_dir)?;
    runtime.scan().await?;
    let plan = HostPlan {
        store: Arc::new(context.store_or_create().await?),
        runtime,
        connections: config.connections.clone(),
        concurrency: config.concurrency(),
        listener: bind(args.listen.unwrap_or(config.admin.listen)).await?,
        admin: config.admin.clone(),
        channels: config.channels().to_vec(),
        targets: config.targets.clone(),
        reload_from: Some(ReloadFrom {
            file: context.config_file.clone(),
            plugin_dir: context.plugin_dir.clone(),
        }),
    };
    let scheme = if config.admin.tls() { "https" } else { "http" };
    if let Some(warning) = config.admin.exposure_warning(plan.listener.local_addr()?) {
        eprintln!("{warning}");
    }
    run_host(plan, |address| {
        println!(
            "rostersync is serving: dashboard and API on {scheme}://{address}/ (Ctrl-C stops it)"
        );
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the scheduler, the workers, the notifier, plugin hot reload and
/// the admin server until Ctrl-C; runs in progress then finish before it returns.
/// `started` is told the address the server listens on.
pub async fn run_host(plan: HostPlan, started: impl FnOnce(SocketAddr)) -> anyhow::Result<()> {
    let listener = plan.listener;
    let address = listener.local_addr()?;
    let _watch = plan.runtime.watch()?;
    let service = Service::new(
        plan.store,
        plan.runtime,
        plan.connections,
        ServiceOptions {
            concurrency: plan.concurrency,
            notifications: plan.channels,
            targets: plan.targets,
            ..ServiceOptions::default()
        },
    )?;
    let (stop, shutdown) = watch::channel(false);
    let router = rostersync_admin::router(service.clone(), &plan.admin);
    let server = tokio::spawn(rostersync_admin::serve(
        listener,
        router,
        plan.admin,
        shutdown.clone(),
    ));
    let host = tokio::spawn(service.clone().run(shutdown));
    started(address);
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let (changed_tx, mut changed) = tokio::sync::mpsc::channel(1);
    let _file_watch = match &plan.reload_from {
        Some(from) => Some(watch_file(&from.file, changed_tx)?),
        None => None,
    };
    loop {
        tokio::select! {
            stopped = tokio::signal::ctrl_c() => { stopped?; break; }
            _ = terminate.recv() => break,
            _ = hangup.recv() => reload(&service, plan.reload_from.as_ref(), "SIGHUP"),
            Some(()) = changed.recv() => {
                // An editor's save may come as a truncation then a write:
                // wait until the file has been quiet for a moment, so a
                // half-written (even empty) file is never put into service.
                while let Ok(Some(())) = tokio::time::timeout(std::time::Duration::from_millis(500), changed.recv()).await {}
                reload(&service, plan.reload_from.as_ref(), "the file changed")
            }
        }
    }
    eprintln!("Stopping: runs in progress finish first…");
    let _ = stop.send(true);
    host.await??;
    server.await??;
    Ok(())
}

/// Rereads the configuration file and puts its connections into service.
/// A file that does not load is reported and the running configuration
/// stays in service; so is a host with no file to reread.
fn reload(service: &Service, from: Option<&ReloadFrom>, why: &str) {
    let Some(from) = from else {
        eprintln!("Reload asked ({why}), but this host has no configuration file to reread.");
        return;
    };
    let loaded = Context::load(&from.file, true, &from.plugin_dir).and_then(|context| {
        let reload = service.reload(context.config.connections)?;
        service.reload_targets(context.config.targets);
        Ok(reload)
    });
    match loaded {
        Ok(reload) => {
            tracing::info!(file = %from.file.display(), why, added = ?reload.added, removed = ?reload.removed, "configuration reloaded");
            eprintln!(
                "Reloaded {} ({why}): {} connection(s) kept, added: {}, removed: {}; targets as the file now has them. The store, the admin listener, its tokens and notification channels change only at restart.",
                from.file.display(),
                reload.kept,
                list_or_none(&reload.added),
                list_or_none(&reload.removed),
            );
        }
        Err(error) => {
            tracing::error!(file = %from.file.display(), why, %error, "the new configuration does not load; the running one stays");
            eprintln!(
                "Not reloaded ({why}): {error:#}. The running configuration stays in service."
            );
        }
    }
}

fn list_or_none(ids: &[String]) -> String {
    if ids.is_empty() {
        "none".into()
    } else {
        ids.join(", ")
    }
}

/// Tells `changed` when the configuration file is written, renamed into
/// place or removed (editors do any of these), watching its folder so a
/// replaced file is still seen. Bursts of events become one.
fn watch_file(
    file: &Path,
    changed: tokio::sync::mpsc::Sender<()>,
) -> anyhow::Result<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let name = file.file_name().map(ToOwned::to_owned);
    let folder = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let ours = event
            .paths
            .iter()
            .any(|path| path.file_name() == name.as_deref());
        if ours && !event.kind.is_access() {
            // A full channel already has a reload waiting.
            let _ = changed.try_send(());
        }
    })?;
    watcher
        .watch(&folder, notify::RecursiveMode::NonRecursive)
        .with_context(|| format!("cannot watch {} for changes", folder.display()))?;
    Ok(watcher)
}

#[derive(Args)]
pub struct StatusArgs {
    /// One JSON object per connection, for scripts.
    #[arg(long)]
    json: bool,
}

/// Each connection's last run, stamps, next scheduled run, active run and
/// open hold.
pub async fn status(context: &Context, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    // A run whose process died shows as what it is, not as running.
    rostersync_service::settle_expired_runs(&store, rostersync_service::run_lease()).await?;
    let now = Utc::now();
    let mut healthy = true;
    let mut accounts = store.accounts_by_role().await?;
    let standing = store.standing_issue_counts().await?;
    for connection in &context.config.connections {
        let schedule = rostersync_schedule::Schedule::compile(&connection.id, &connection.schedule)
            .map_err(|e| anyhow::anyhow!("connection {:?}: schedule.{e}", connection.id))?;
        let stamps = store.stamps(&connection.id).await?;
        let last = store
            .run_history(&connection.id, 1)
            .await?
            .into_iter()
            .next();
        let active = store.active_run(&connection.id).await?;
        let hold = store.open_hold(&connection.id).await?;
        let next = schedule.next_run_after(now);
        let last_status = last.as_ref().and_then(|r| RunStatus::parse(&r.status));
        healthy &= hold.is_none()
            && !matches!(last_status, Some(RunStatus::Failed | RunStatus::Incomplete));
        // Per role: active accounts now, beside what the latest full read read.
        let full = store
            .run_history(&connection.id, 20)
            .await?
            .into_iter()
            .find(|r| r.mode == RunMode::Full.as_str() && r.status != RunStatus::Failed.as_str());
        let counted = |role: Role, action: &str| {
            full.as_ref()
                .and_then(|r| {
                    r.counts
                        .iter()
                        .find(|c| c.kind == role_name(role) && c.action == action)
                })
                .map_or(0, |c| c.count)
        };
        let role_accounts = accounts.remove(&connection.id).unwrap_or_default();
        let roles: Vec<(Role, i64, i64, i64)> = [Role::Student, Role::Staff, Role::Contact]
            .into_iter()
            .map(|role| {
                (
                    role,
                    role_accounts
                        .get(role_name(role))
                        .copied()
                        .unwrap_or_default(),
                    counted(role, "read"),
                    counted(role, "left-out"),
                )
            })
            .collect();
        let standing_issues = standing.get(&connection.id).copied().unwrap_or_default();
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "connection": connection.id,
                    "connector": connection.connector,
                    "last_status": last.as_ref().map(|r| &r.status),
                    "last_run": last.as_ref().map(|r| r.id),
                    "last_changed": stamps.last_changed,
                    "last_checked": stamps.last_checked,
                    "next_run": next,
                    "active_run": active,
                    "open_hold": hold.as_ref().map(|h| h.id),
                    "roles": roles.iter().map(|(role, accounts, read, left_out)| serde_json::json!({
                        "role": role, "accounts": accounts, "read": read, "left_out": left_out,
                    })).collect::<Vec<_>>(),
                    "standing_issues": standing_issues,
                })
            );
            continue;
        }
        let show = |at: Option<chrono::DateTime<Utc>>| {
            at.map_or("never".to_string(), |at| {
                at.format("%Y-%m-%d %H:%M UTC").to_string()
            })
        };
        println!(
            "{:<20} {:<12} last {:<22} changed {:<21} checked {:<21} next {}",
            connection.id,
            connection.connector,
            last.as_ref().map_or("not run yet", |r| r.status.as_str()),
            show(stamps.last_changed),
            show(stamps.last_checked),
            show(next),
        );
        println!(
            "{:<20} accounts: {}; {} standing issue(s)",
            "",
            roles_line(roles.into_iter()),
            standing_issues
        );
        if let Some(run) = active {
            println!(
                "{:<20} {} run {} ({})",
                "",
                run.mode,
                run.state.as_str(),
                run.reason
            );
        }
        if let Some(hold) = hold {
            println!(
                "{:<20} hold {} waits for an answer: rostersync holds show {}",
                "", hold.id, hold.id
            );
        }
    }
    Ok(crate::exit_code(healthy))
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Check the configuration file (syntax, fields, schedules, secrets and
    /// tokens present in the environment) and each connection against its
    /// connector (the plugin is there, every setting name is one it has,
    /// required settings are given, secrets are not in plain settings),
    /// reporting every problem in one pass, without starting anything.
    /// Exit status 1 when there is any problem.
    Check {
        /// One JSON document: whether it is valid and every problem.
        #[arg(long)]
        json: bool,
    },
    /// Print the configuration reference (markdown): every key, its
    /// default and an example, generated from the parser's own types.
    /// `docs/configuration.md` is this output.
    Reference,
}

/// What `config check --json` prints.
#[derive(serde::Serialize)]
struct CheckReport {
    file: String,
    valid: bool,
    problems: Vec<Problem>,
}

pub async fn config(
    file: &Path,
    plugin_dir: &Path,
    command: ConfigCommand,
) -> anyhow::Result<ExitCode> {
    let json = match command {
        ConfigCommand::Check { json } => json,
        ConfigCommand::Reference => {
            let reference = rostersync_config::reference::reference().map_err(|problems| {
                anyhow::anyhow!(
                    "the configuration reference is out of step with the parser: {}",
                    problems.join("; ")
                )
            })?;
            print!("{reference}");
            return Ok(ExitCode::SUCCESS);
        }
    };
    let context = match Context::load(file, true, plugin_dir) {
        Ok(context) => context,
        Err(error) if json => {
            // The file does not load: one problem, and the exit status of
            // any command that could not start.
            let report = CheckReport {
                file: file.display().to_string(),
                valid: false,
                problems: vec![Problem {
                    connection: String::new(),
                    field: String::new(),
                    message: format!("{error:#}"),
                }],
            };
            println!("{}", serde_json::to_string(&report)?);
            return Ok(ExitCode::from(2));
        }
        Err(error) => return Err(error),
    };
    let problems = connector_problems(&context).await?;
    if json {
        let report = CheckReport {
            file: file.display().to_string(),
            valid: problems.is_empty(),
            problems,
        };
        println!("{}", serde_json::to_string(&report)?);
        return Ok(crate::exit_code(report.valid));
    }
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("{}", problem.message);
        }
        eprintln!("{}: {} problem(s)", file.display(), problems.len());
        return Ok(ExitCode::FAILURE);
    }
    let config = &context.config;
    println!(
        "{} is valid: {} connection(s), store {}, admin on {} with {} token(s), concurrency {}, {} notification channel(s).",
        context.config_file.display(),
        config.connections.len(),
        if config.store_url().starts_with("postgres") {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        config.admin.listen,
        config.admin.tokens.len(),
        config.concurrency(),
        config.channels().len(),
    );
    if let Some(warning) = config.admin.exposure_warning(config.admin.listen) {
        eprintln!("{warning}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Each connection checked against its connector's description, loaded
/// from the plugin folder.
async fn connector_problems(context: &Context) -> anyhow::Result<Vec<Problem>> {
    if context.config.connections.is_empty() {
        return Ok(Vec::new());
    }
    let runtime = open_runtime(&context.plugin_dir)?;
    runtime.scan().await?;
    let statuses = runtime.statuses();
    let available: Vec<&str> = statuses
        .iter()
        .filter(|status| status.plugin.is_some())
        .map(|status| status.name.as_str())
        .collect();
    Ok(context
        .config
        .connections
        .iter()
        .flat_map(|connection| {
            let plugin = runtime.plugin(&connection.connector);
            connection_problems(connection, plugin.as_deref().map(|p| &p.info), &available)
        })
        .collect())
}
