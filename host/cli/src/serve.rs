//! `rostersync serve`, `status` and `config check`: the unattended host
//! (scheduler, run queue, admin API and dashboard) and what an operator
//! asks of it.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::Utc;
use clap::{Args, Subcommand};
use rostersync_admin::AdminConfig;
use rostersync_model::Role;
use rostersync_notify::Channel;
use rostersync_runtime::Runtime;
use rostersync_service::{Service, ServiceOptions};
use rostersync_store::{RunMode, Store};
use rostersync_sync::{ConnectionConfig, RunStatus, role_name};
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
        store: Arc::new(context.store().await?),
        runtime,
        connections: config.connections.clone(),
        concurrency: config.concurrency(),
        listener: bind(args.listen.unwrap_or(config.admin.listen)).await?,
        admin: config.admin.clone(),
        channels: config.channels().to_vec(),
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
    let host = tokio::spawn(service.run(shutdown));
    started(address);
    tokio::signal::ctrl_c().await?;
    eprintln!("Stopping: runs in progress finish first…");
    let _ = stop.send(true);
    host.await??;
    server.await??;
    Ok(())
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
    /// tokens present in the environment) without starting anything.
    Check,
}

pub fn config(context: &Context, command: ConfigCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Check => {
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
    }
}
