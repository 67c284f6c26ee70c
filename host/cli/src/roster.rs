//! The store-backed commands: `sync`, `history`, `issues`, `holds` and
//! `accounts`.

use std::process::ExitCode;

use anyhow::Context as _;
use chrono::Local;
use clap::{Args, Subcommand};
use rostersync_store::RunMode;
use rostersync_sync::{DryRunVerdict, RunReport, RunRequest, RunStatus};

use crate::context::Context;

/// Exit statuses of `sync`, for scripts.
pub mod status {
    pub const SUCCEEDED: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const HELD: u8 = 3;
    pub const CHANGES_PENDING: u8 = 4;
}

#[derive(Args)]
pub struct SyncArgs {
    /// The connection's id in the configuration file.
    connection: String,
    /// Read everything, not only what changed since the last run.
    #[arg(long)]
    full: bool,
    /// Run the whole pipeline and report; apply nothing. Exit status 0:
    /// clean, 4: changes pending, 3: would hold.
    #[arg(long)]
    dry_run: bool,
    /// A full re-run that also provisions again every source person who
    /// has no account (after a manual delete or unlink).
    #[arg(long)]
    force: bool,
    #[arg(long)]
    json: bool,
}

pub async fn sync(context: &Context, args: SyncArgs) -> anyhow::Result<ExitCode> {
    let connection = context.connection(&args.connection)?;
    let source = context.source(connection).await?;
    let store = context.store().await?;
    let request = RunRequest {
        dry_run: args.dry_run,
        forced: args.force,
        ..RunRequest::new(
            if args.full || args.force {
                RunMode::Full
            } else {
                RunMode::Delta
            },
            Local::now().date_naive(),
        )
    };
    let report = rostersync_sync::run(&store, connection, &source, request).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(ExitCode::from(exit_status(&report)))
}

pub fn exit_status(report: &RunReport) -> u8 {
    match (report.status, report.dry_run_verdict()) {
        (RunStatus::Failed, _) => status::FAILED,
        (RunStatus::Held, _) | (RunStatus::DryRun, DryRunVerdict::WouldHold) => status::HELD,
        (RunStatus::DryRun, DryRunVerdict::ChangesPending) => status::CHANGES_PENDING,
        _ => status::SUCCEEDED,
    }
}

pub fn print_report(report: &RunReport) {
    println!(
        "{}: {} run {} in {:.1} s (run {}): read {}, created {}, updated {}, removed {}, issues {}",
        report.connection,
        report.mode,
        report.status.as_str(),
        report.elapsed.as_secs_f64(),
        report.run_id,
        report.records_read,
        report.created,
        report.updated,
        report.removed,
        report.issues
    );
    for hold in &report.holds {
        println!("  held: {hold}");
    }
    if let Some(error) = &report.error {
        println!("  error: {error}");
    }
}

#[derive(Args)]
pub struct HistoryArgs {
    connection: String,
    /// How many runs, newest first.
    #[arg(long, default_value_t = 20)]
    limit: i64,
}

pub async fn history(context: &Context, args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let stamps = store.stamps(&args.connection).await.ok();
    if let Some(stamps) = stamps {
        let show = |at: Option<chrono::DateTime<chrono::Utc>>| {
            at.map_or("never".to_string(), |at| {
                at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
            })
        };
        println!(
            "{}: last changed {}, last checked {}",
            args.connection,
            show(stamps.last_changed),
            show(stamps.last_checked)
        );
    }
    for run in store.run_history(&args.connection, args.limit).await? {
        let counts: Vec<String> = run
            .counts
            .iter()
            .map(|c| format!("{} {} {}", c.count, c.kind, c.action))
            .collect();
        println!(
            "run {:>5}  {}  {:<5} {:<22} read {:>7}  {}{}",
            run.id,
            run.started_at.format("%Y-%m-%d %H:%M:%S"),
            run.mode,
            run.status,
            run.records_read,
            counts.join(", "),
            run.message.map(|m| format!("  ({m})")).unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct IssuesArgs {
    connection: String,
    /// A run id from `history`; the latest run by default.
    #[arg(long)]
    run: Option<i64>,
    /// CSV with the columns schools know, for a spreadsheet.
    #[arg(long)]
    csv: bool,
}

pub async fn issues(context: &Context, args: IssuesArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let run = match args.run {
        Some(run) => run,
        None => store
            .run_history(&args.connection, 1)
            .await?
            .first()
            .map(|r| r.id)
            .with_context(|| format!("connection {:?} has no runs yet", args.connection))?,
    };
    if args.csv {
        print!("{}", store.issues_csv(run).await?);
    } else {
        for issue in store.run_issues(run).await? {
            println!(
                "{} {} ({}): {}",
                issue.entity_type, issue.source_id, issue.entity_name, issue.message
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum HoldsCommand {
    /// Open holds, newest first (`--all` includes answered ones).
    List {
        #[arg(long)]
        all: bool,
    },
    /// One hold's reasons.
    Show { hold: i64 },
    /// The records the hold would change, as CSV.
    Export { hold: i64 },
    /// Apply the held change set.
    Confirm {
        hold: i64,
        /// Who answers, for the audit log.
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
    /// Discard the held change set; the next run decides afresh.
    Reject {
        hold: i64,
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
}

pub async fn holds(context: &Context, command: HoldsCommand) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    match command {
        HoldsCommand::List { all } => {
            for hold in store.holds(all).await? {
                println!(
                    "hold {:>4}  {}  {:<9}  run {}  opened {}",
                    hold.id,
                    hold.connection,
                    hold.status.as_str(),
                    hold.run_id,
                    hold.opened_at.format("%Y-%m-%d %H:%M UTC")
                );
            }
        }
        HoldsCommand::Show { hold } => {
            let row = store
                .hold(hold)
                .await?
                .with_context(|| format!("there is no hold {hold}"))?;
            let reasons: Vec<rostersync_core::HoldReason> =
                serde_json::from_str(&row.reasons).unwrap_or_default();
            println!(
                "hold {} on {} ({})",
                row.id,
                row.connection,
                row.status.as_str()
            );
            for reason in reasons {
                println!("  {reason}");
            }
        }
        HoldsCommand::Export { hold } => {
            print!("{}", rostersync_sync::export_hold_csv(&store, hold).await?)
        }
        HoldsCommand::Confirm { hold, by } => {
            let row = store
                .hold(hold)
                .await?
                .with_context(|| format!("there is no hold {hold}"))?;
            let connection = context.connection(&row.connection)?;
            let run = rostersync_sync::confirm_hold(&store, connection, hold, &by).await?;
            println!("hold {hold} confirmed: its change set was applied as run {run}");
        }
        HoldsCommand::Reject { hold, by } => {
            rostersync_sync::reject_hold(&store, hold, &by).await?;
            println!("hold {hold} rejected: nothing was applied");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum AccountsCommand {
    /// One account and how it is linked.
    Show { account: String },
    /// Delete an account a connection provisioned (audited).
    Delete {
        account: String,
        #[arg(long)]
        connection: String,
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
    /// Untie an account from its source person (audited).
    Unlink {
        account: String,
        #[arg(long)]
        connection: String,
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
}

pub async fn accounts(context: &Context, command: AccountsCommand) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    match command {
        AccountsCommand::Show { account } => {
            let row = store
                .account(&account)
                .await?
                .with_context(|| format!("there is no account {account}"))?;
            println!(
                "{}  {}  {}  {}  {}  provisioned by {}",
                row.id,
                row.display_name,
                row.role,
                row.email.as_deref().unwrap_or("(no email)"),
                row.status.as_str(),
                row.created_by
                    .as_deref()
                    .unwrap_or("(made by hand or imported)")
            );
        }
        AccountsCommand::Delete {
            account,
            connection,
            by,
        } => {
            rostersync_sync::delete_account(&store, &connection, &account, &by).await?;
            println!("account {account} deleted and unlinked");
        }
        AccountsCommand::Unlink {
            account,
            connection,
            by,
        } => {
            rostersync_sync::unlink_account(&store, &connection, &account, &by).await?;
            println!("account {account} unlinked");
        }
    }
    Ok(ExitCode::SUCCESS)
}
