//! The store-backed commands: `sync`, `history`, `issues`, `holds` and
//! `accounts`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{Local, Utc};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rostersync_core::HoldAnswer;
use rostersync_core::coverage::people_of;
use rostersync_model::Role;
use rostersync_schedule::Schedule;
use rostersync_service::{run_ask, run_claimed, run_lease, settle_expired_runs};
use rostersync_store::{Enqueued, QueuedRun, RunMode, Store, issues_csv};
use rostersync_sync::{
    Answered, Answering, DryRunVerdict, Phase, Progress, RunReport, RunRequest, RunStatus,
    run_observed,
};

use crate::context::Context;

/// Exit statuses of `sync`, for scripts.
pub mod status {
    pub const SUCCEEDED: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const HELD: u8 = 3;
    pub const CHANGES_PENDING: u8 = 4;
    /// Validation left out too much of a role; nothing destructive applied.
    pub const INCOMPLETE: u8 = 5;
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
    let store = context.store_or_create().await?;
    let mode = if args.full || args.force {
        RunMode::Full
    } else {
        RunMode::Delta
    };
    let shown = Reporter::new(&connection.id, args.json);
    let report = if args.dry_run {
        // A dry run applies nothing, so it need not wait its turn.
        let source = context.source(connection).await?;
        let request = RunRequest {
            dry_run: true,
            forced: args.force,
            ..RunRequest::new(mode, Local::now().date_naive())
        };
        run_observed(&store, connection, &source, request, &|p| shown.show(p)).await?
    } else {
        let schedule = Schedule::compile(&connection.id, &connection.schedule)
            .map_err(|e| anyhow::anyhow!("connection {:?}: schedule.{e}", connection.id))?;
        let store = Arc::new(store);
        let lease = run_lease();
        loop {
            // A run left behind by a process that died must not hold the
            // connection past its lease.
            settle_expired_runs(&store, lease).await?;
            let ask = run_ask(connection, &schedule, mode, "operator", "cli", Utc::now());
            let claimed = match store.enqueue_run(&ask, Utc::now()).await? {
                Enqueued::Queued(run) => store.claim_run(run.id, Utc::now()).await?.ok_or(run),
                Enqueued::Joined(run) => Err(run),
            };
            match claimed {
                Ok(run) => {
                    let source = context.source(connection).await?;
                    break run_claimed(
                        &store,
                        connection,
                        &source,
                        &run,
                        args.force,
                        lease / 4,
                        &|p| shown.show(p),
                    )
                    .await?;
                }
                Err(run) => {
                    shown.finish();
                    if let Some(ended) = follow(&store, run, args.json, lease).await? {
                        return Ok(ended);
                    }
                    // The run it followed was dead and is settled: run now.
                }
            }
        }
    };
    shown.finish();
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(ExitCode::from(exit_status(&report)))
}

/// Another process (a `serve` worker, another `sync`) has the
/// connection's run: wait for it, showing its progress, and report how it
/// ended. If its heartbeat goes stale for longer than `lease`, its process
/// died: settle it, say so, and return `None` so the caller runs it.
async fn follow(
    store: &Store,
    run: QueuedRun,
    json: bool,
    lease: Duration,
) -> anyhow::Result<Option<ExitCode>> {
    eprintln!(
        "{} already has a {} run {} (asked for by {}); following it.",
        run.connection,
        run.mode,
        run.state.as_str(),
        run.requested_by
    );
    let shown = Reporter::new(&run.connection, json);
    let ended = loop {
        let settled = settle_expired_runs(store, lease).await?;
        if let Some(dead) = settled.iter().find(|settled| settled.id == run.id) {
            shown.finish();
            eprintln!(
                "{}: no heartbeat from run {} for {} s, so {}: settled it. Starting a new run.",
                run.connection,
                run.id,
                lease.as_secs(),
                dead.message
                    .as_deref()
                    .unwrap_or("the process running it stopped")
            );
            return Ok(None);
        }
        let now = store
            .queued_run(run.id)
            .await?
            .context("the queued run disappeared from the store")?;
        if !now.state.is_active() {
            break now;
        }
        if let Some(progress) = now
            .progress
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
        {
            shown.show(&progress);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    shown.finish();
    let summary = match ended.run_id {
        Some(id) => store
            .run_history(&ended.connection, 50)
            .await?
            .into_iter()
            .find(|r| r.id == id),
        None => None,
    };
    let status = summary.as_ref().map_or("failed", |r| r.status.as_str());
    let parsed = RunStatus::parse(status).unwrap_or(RunStatus::Failed);
    if json {
        println!(
            "{}",
            serde_json::json!({"connection": ended.connection, "queue_id": ended.id, "run_id": ended.run_id, "status": status, "message": ended.message})
        );
    } else {
        println!(
            "{}: {} run {} (run {}){}",
            ended.connection,
            ended.mode,
            status,
            ended.run_id.map_or("-".to_string(), |id| id.to_string()),
            ended.message.map(|m| format!(": {m}")).unwrap_or_default()
        );
    }
    Ok(Some(ExitCode::from(match parsed {
        RunStatus::Failed => status::FAILED,
        RunStatus::Held => status::HELD,
        RunStatus::Incomplete => status::INCOMPLETE,
        _ => status::SUCCEEDED,
    })))
}

/// A run's progress on standard error: a bar on a terminal, a plain line
/// every few seconds otherwise (logs, CI), nothing with `--json`.
enum Reporter {
    Bar(ProgressBar),
    Lines {
        connection: String,
        last: Mutex<Option<(Instant, Phase)>>,
    },
    Quiet,
}

impl Reporter {
    fn new(connection: &str, json: bool) -> Self {
        if json {
            Self::Quiet
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.set_prefix(connection.to_string());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            Self::Bar(bar)
        } else {
            Self::Lines {
                connection: connection.to_string(),
                last: Mutex::new(None),
            }
        }
    }

    fn show(&self, progress: &Progress) {
        match self {
            Self::Bar(bar) => {
                if let Some(done) = progress.fraction() {
                    if bar.length().is_none() {
                        // Once the size is known, the spinner grows a bar.
                        bar.set_length(1000);
                        if let Ok(style) = ProgressStyle::with_template(
                            "{spinner} {prefix}: [{bar:30}] {msg} [{elapsed}]",
                        ) {
                            bar.set_style(style.progress_chars("=> "));
                        }
                    }
                    bar.set_position((done * 1000.0).round() as u64);
                }
                bar.set_message(progress.describe());
            }
            Self::Lines { connection, last } => {
                let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
                let due = last.is_none_or(|(at, phase)| {
                    phase != progress.phase || at.elapsed() >= Duration::from_secs(5)
                });
                if due {
                    eprintln!("{connection}: {}", progress.describe());
                    *last = Some((Instant::now(), progress.phase));
                }
            }
            Self::Quiet => {}
        }
    }

    fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

pub fn exit_status(report: &RunReport) -> u8 {
    match (report.status, report.dry_run_verdict()) {
        (RunStatus::Failed, _) => status::FAILED,
        (RunStatus::Incomplete, _) => status::INCOMPLETE,
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
    println!(
        "  accounts per role: {}",
        roles_line(report.roles.iter().map(|r| (
            r.role,
            r.accounts,
            r.read as i64,
            r.left_out as i64
        )))
    );
    for line in &report.incomplete {
        println!("  incomplete: {line}");
    }
    // One grouped line per kind of change, not one per record or reason.
    if report.held.is_empty() {
        for hold in &report.holds {
            println!("  held: {hold}");
        }
    } else {
        for line in &report.held {
            println!("  {line}");
        }
        match report.hold {
            Some(hold) => println!("  see: rostersync holds show {hold}"),
            None => println!("  see: rostersync holds list"),
        }
    }
    if let Some(error) = &report.error {
        println!("  error: {error}");
    }
}

/// "students 110 (read 120, 10 left out) · staff 0 (read 333, 333 left
/// out) · contacts 250 (read 250)": active accounts per role beside what
/// was read, from (role, accounts, read, left out).
pub fn roles_line(roles: impl Iterator<Item = (Role, i64, i64, i64)>) -> String {
    roles
        .map(|(role, accounts, read, left_out)| {
            let left_out = if left_out > 0 {
                format!(", {left_out} left out")
            } else {
                String::new()
            };
            format!("{} {accounts} (read {read}{left_out})", people_of(role))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

#[derive(Args)]
pub struct HistoryArgs {
    connection: String,
    /// How many runs, newest first.
    #[arg(long, default_value_t = 20)]
    limit: i64,
    /// One JSON document: the connection's stamps and its runs.
    #[arg(long)]
    json: bool,
}

pub async fn history(context: &Context, args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    context.known_connection(&store, &args.connection).await?;
    let stamps = store.stamps(&args.connection).await?;
    let runs = store.run_history(&args.connection, args.limit).await?;
    if args.json {
        let document = serde_json::json!({
            "connection": args.connection,
            "last_changed": stamps.last_changed,
            "last_checked": stamps.last_checked,
            "runs": runs,
        });
        println!("{document}");
        return Ok(ExitCode::SUCCESS);
    }
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
    for run in runs {
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
    /// One run's issues (a run id from `history`); by default the
    /// connection's standing issues: what is wrong at the source now.
    #[arg(long)]
    run: Option<i64>,
    /// CSV with the columns schools know, for a spreadsheet.
    #[arg(long, conflicts_with = "json")]
    csv: bool,
    /// A JSON array of the issues.
    #[arg(long)]
    json: bool,
}

pub async fn issues(context: &Context, args: IssuesArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    context.known_connection(&store, &args.connection).await?;
    let issues = match args.run {
        Some(run) => store.run_issues(run).await?,
        None => {
            if store.run_history(&args.connection, 1).await?.is_empty() {
                anyhow::bail!("connection {:?} has no runs yet", args.connection);
            }
            let standing = store.standing_issues(&args.connection).await?;
            standing.into_iter().map(|s| s.issue).collect()
        }
    };
    if args.csv {
        print!("{}", issues_csv(&issues));
        return Ok(ExitCode::SUCCESS);
    }
    if args.json {
        println!("{}", serde_json::to_string(&issues)?);
        return Ok(ExitCode::SUCCESS);
    }
    if args.run.is_none() {
        println!(
            "{}: {} standing issue(s), what is wrong at the source now",
            args.connection,
            issues.len()
        );
    }
    for issue in issues {
        println!(
            "{} {} ({}): {} [policy {}] Fix: {}",
            issue.entity_type,
            issue.source_id,
            issue.entity_name,
            issue.message,
            issue.policy,
            issue.fix
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum HoldsCommand {
    /// Open holds, newest first (`--all` includes answered ones).
    List {
        #[arg(long)]
        all: bool,
        /// A JSON array of the holds.
        #[arg(long)]
        json: bool,
    },
    /// One hold: its current revision (the digest confirm names), why it
    /// was held, what its change set would do, and every revision shown.
    Show {
        hold: i64,
        /// One JSON document: the hold, its reasons, counts and revisions.
        #[arg(long)]
        json: bool,
    },
    /// The records the hold's current revision would change, as CSV, under
    /// a first line naming the revision's digest.
    Export {
        hold: i64,
        /// An earlier, superseded revision's digest, to see its evidence.
        #[arg(long)]
        revision: Option<String>,
    },
    /// Answer a hold with one of the answers its type offers (`holds show`
    /// lists them): confirm-removals or reject (removals), create-accounts
    /// or dont-create (contacts), apply-changes or reject (changes),
    /// fixed-it (a lost connection: closes the hold and syncs now). Asks
    /// for confirmation first unless `--yes`.
    Answer {
        hold: i64,
        /// The answer's word.
        answer: String,
        /// The digest of the revision reviewed (`holds show`).
        #[arg(long)]
        revision: String,
        /// Why, kept with the hold and in the audit log.
        #[arg(long)]
        comment: Option<String>,
        /// Answer without asking (scripts); the audit says so.
        #[arg(long)]
        yes: bool,
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
    /// Apply the held change set the operator reviewed; refused if a later
    /// run has replaced it since. The same as answering the hold type's
    /// first answer (`confirm-removals`, `create-accounts`, ...).
    Confirm {
        hold: i64,
        /// The digest of the revision reviewed (`holds show`, the export's
        /// first line).
        #[arg(long)]
        revision: String,
        /// Who answers, for the audit log.
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
    /// Answer with the hold type's answer that applies nothing of what it
    /// is about (`reject`, `dont-create`, `fixed-it`).
    Reject {
        hold: i64,
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
    /// Forgets the contacts a hold answered "Don't create" declined, so
    /// the next run asks about them again.
    Reconsider {
        hold: i64,
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
}

pub async fn holds(context: &Context, command: HoldsCommand) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    match command {
        HoldsCommand::List { all, json: true } => {
            println!("{}", serde_json::to_string(&store.holds(all).await?)?);
        }
        HoldsCommand::List { all, json: false } => {
            for hold in store.holds(all).await? {
                let shown = rostersync_sync::hold_summary(&store, hold.id).await?;
                println!(
                    "hold {:>4}  {}  {:<9}  {:<12}  opened {}",
                    hold.id,
                    hold.connection,
                    hold.status.as_str(),
                    hold.kind.as_str(),
                    hold.opened_at.format("%Y-%m-%d %H:%M UTC")
                );
                println!(
                    "           {}",
                    shown.headline(&format!("rostersync holds show {}", hold.id))
                );
            }
        }
        HoldsCommand::Show { hold, json } => {
            let shown = rostersync_sync::hold_summary(&store, hold).await?;
            if json {
                println!("{}", serde_json::to_string(&shown)?);
                return Ok(ExitCode::SUCCESS);
            }
            let row = &shown.hold;
            println!(
                "hold {} on {} ({}), revision {}, digest {}",
                row.id,
                row.connection,
                row.status.as_str(),
                row.revision,
                row.digest
            );
            if row.parts.len() > 1 {
                let parts: Vec<&str> = row.parts.iter().map(|k| k.as_str()).collect();
                println!(
                    "  held in {} parts ({}), answered one at a time",
                    parts.len(),
                    parts.join(", ")
                );
                for (n, answer) in row.answered_parts.iter().enumerate() {
                    println!("  part {}: answered {:?}", n + 1, answer.label());
                }
                if row.status == rostersync_store::HoldStatus::Open {
                    println!(
                        "  part {} waits: {}",
                        row.answered_parts.len() + 1,
                        row.kind.title()
                    );
                }
            } else {
                println!("  {}", row.kind.title());
            }
            for line in &shown.held {
                println!("  {line}");
            }
            println!(
                "  the held run would create {}, update {}, remove {} in all (run {})",
                shown.creates, shown.updates, shown.removals, row.run_id
            );
            if shown.why.is_empty() {
                println!(
                    "  this revision trips no hold itself: it waits because the hold was open"
                );
            }
            for why in &shown.why {
                println!("  {why}");
            }
            for revision in shown.revisions.iter().filter(|r| r.superseded_at.is_some()) {
                println!(
                    "  revision {} ({}, run {}) was superseded; its evidence: rostersync holds export {hold} --revision {}",
                    revision.revision, revision.digest, revision.run_id, revision.digest
                );
            }
            if row.status == rostersync_store::HoldStatus::Open {
                println!("  check:");
                for check in &shown.checks {
                    println!("    - {check}");
                }
                println!("  answers (evidence: rostersync holds export {hold}):");
                for answer in &shown.answers {
                    println!(
                        "    {:<17} rostersync holds answer {hold} {} --revision {}",
                        answer.label,
                        answer.answer.as_str(),
                        row.digest
                    );
                }
            } else if let Some(answer) = row.answer {
                println!(
                    "  answered {:?} by {}{}",
                    answer.label(),
                    row.answered_by.as_deref().unwrap_or("?"),
                    row.comment
                        .as_deref()
                        .map(|c| format!(": {c}"))
                        .unwrap_or_default()
                );
            }
        }
        HoldsCommand::Export { hold, revision } => print!(
            "{}",
            rostersync_sync::export_hold_csv(&store, hold, revision.as_deref()).await?
        ),
        HoldsCommand::Confirm { hold, revision, by } => {
            let row = store
                .hold(hold)
                .await?
                .with_context(|| format!("there is no hold {hold}"))?;
            let connection = context.connection(&row.connection)?;
            let run =
                rostersync_sync::confirm_hold(&store, connection, hold, &revision, &by).await?;
            println!("hold {hold} confirmed: revision {revision} was applied as run {run}");
        }
        HoldsCommand::Reject { hold, by } => {
            let row = store
                .hold(hold)
                .await?
                .with_context(|| format!("there is no hold {hold}"))?;
            let connection = context.connection(&row.connection)?;
            let answered = rostersync_sync::reject_hold(&store, connection, hold, &by).await?;
            return answered_hold(context, &row.connection, hold, row.kind.stop(), answered).await;
        }
        HoldsCommand::Reconsider { hold, by } => {
            let forgotten = rostersync_sync::reconsider_hold(&store, hold, &by).await?;
            println!(
                "hold {hold}: {forgotten} declined contact answers forgotten; the next run asks about them again"
            );
        }
        HoldsCommand::Answer {
            hold,
            answer,
            revision,
            comment,
            yes,
            by,
        } => {
            let row = store
                .hold(hold)
                .await?
                .with_context(|| format!("there is no hold {hold}"))?;
            let offered: Vec<&str> = row.kind.answers().iter().map(|a| a.as_str()).collect();
            let answer = HoldAnswer::parse(row.kind, &answer).with_context(|| {
                format!(
                    "hold {hold} is a {} hold; answer {}",
                    row.kind,
                    offered.join(" or ")
                )
            })?;
            let connection = context.connection(&row.connection)?;
            let how = if yes {
                "confirmed with --yes"
            } else {
                confirm_at_prompt(hold, answer)?;
                "confirmed at the prompt"
            };
            let comment = match comment.as_deref().map(str::trim) {
                Some(comment) if !comment.is_empty() => format!("{comment} ({how})"),
                _ => how.to_string(),
            };
            let answered = rostersync_sync::answer_hold(
                &store,
                connection,
                hold,
                Answering {
                    answer,
                    revision: &revision,
                    by: &by,
                    comment: Some(&comment),
                },
            )
            .await?;
            return answered_hold(context, &row.connection, hold, answer, answered).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The confirmation step at a terminal: what the answer does, then `yes`.
fn confirm_at_prompt(hold: i64, answer: HoldAnswer) -> anyhow::Result<()> {
    use std::io::BufRead;
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "answering hold {hold} {:?} needs confirmation: run it at a terminal, or add --yes",
            answer.label()
        );
    }
    eprintln!("{} {}", answer.label(), answer.consequence());
    eprint!("Type yes to answer hold {hold} {:?}: ", answer.label());
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim().eq_ignore_ascii_case("yes") {
        Ok(())
    } else {
        anyhow::bail!("hold {hold} was not answered")
    }
}

/// Says what answering did; "I fixed it" syncs the connection now.
async fn answered_hold(
    context: &Context,
    connection: &str,
    hold: i64,
    answer: HoldAnswer,
    answered: Answered,
) -> anyhow::Result<ExitCode> {
    match answered {
        Answered::Applied { run_id } => {
            println!(
                "hold {hold} answered {:?}: applied as run {run_id}",
                answer.label()
            );
        }
        Answered::Closed => {
            println!(
                "hold {hold} answered {:?}: nothing was applied",
                answer.label()
            );
        }
        Answered::Next { kind } => {
            println!(
                "hold {hold} answered {:?}; its next part waits: {} (rostersync holds show {hold})",
                answer.label(),
                kind.title()
            );
        }
        Answered::RunAgain => {
            println!(
                "hold {hold} answered {:?}: running {connection} now",
                answer.label()
            );
            return sync(
                context,
                SyncArgs {
                    connection: connection.to_string(),
                    full: false,
                    dry_run: false,
                    force: false,
                    json: false,
                },
            )
            .await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum AccountsCommand {
    /// Every account, or the ones a connection links, one per line.
    List {
        /// Only the accounts this connection links to its source people.
        #[arg(long)]
        connection: Option<String>,
        /// One JSON object per account, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// One account and how it is linked.
    Show {
        account: String,
        /// One JSON object: the account and the source people linked to it.
        #[arg(long)]
        json: bool,
    },
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

/// "acc_… Zoë Nguyễn student zoe@school.org active provisioned by north".
fn account_line(row: &rostersync_store::AccountRow) -> String {
    format!(
        "{}  {}  {}  {}  {}  provisioned by {}",
        row.id,
        row.display_name,
        row.role,
        row.email.as_deref().unwrap_or("(no email)"),
        row.status.as_str(),
        row.created_by
            .as_deref()
            .unwrap_or("(made by hand or imported)")
    )
}

pub async fn accounts(context: &Context, command: AccountsCommand) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    match command {
        AccountsCommand::List { connection, json } => {
            let mut accounts = store.accounts().await?;
            // Account id → the source person it is linked to.
            let linked: std::collections::HashMap<String, String> = match &connection {
                Some(connection) => {
                    context.connection(connection)?;
                    store
                        .links(connection)
                        .await?
                        .into_iter()
                        .map(|(person, account)| (account, person))
                        .collect()
                }
                None => Default::default(),
            };
            if connection.is_some() {
                accounts.retain(|account| linked.contains_key(&account.id));
            }
            for row in &accounts {
                let person = linked.get(&row.id);
                if json {
                    let mut line = serde_json::to_value(row)?;
                    line["source_id"] = serde_json::json!(person);
                    println!("{line}");
                } else {
                    println!(
                        "{}{}",
                        account_line(row),
                        person.map(|p| format!("  source {p}")).unwrap_or_default()
                    );
                }
            }
        }
        AccountsCommand::Show { account, json } => {
            let row = store
                .account(&account)
                .await?
                .with_context(|| format!("there is no account {account}"))?;
            if json {
                // Every connection's source person linked to the account.
                let mut links = serde_json::Map::new();
                for connection in &context.config.connections {
                    for (person, linked) in store.links(&connection.id).await? {
                        if linked == row.id {
                            links.insert(connection.id.clone(), serde_json::json!(person));
                        }
                    }
                }
                let mut shown = serde_json::to_value(&row)?;
                shown["links"] = serde_json::Value::Object(links);
                println!("{shown}");
            } else {
                println!("{}", account_line(&row));
            }
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
