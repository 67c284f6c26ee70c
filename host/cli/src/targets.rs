//! `rostersync targets`: the provisioning targets of the configuration
//! file: list them with their queues, preview what a delivery would do
//! (a table, a CSV), deliver, reconcile against what a target holds,
//! read its delivery log, and answer its holds and renames.
//!
//! Targets are opened through the service's factories
//! ([`rostersync_service::target_factories`]), the one place where the
//! kinds of target this build can drive are wired in, as `serve` does.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use rostersync_core::targets::RenameStatus;
use rostersync_deliver::{
    DeliveryReport, Engine, IssuedPassword, TargetConfig, TargetFactory, TargetKind, passwords_csv,
    preview, write_passwords,
};
use rostersync_model::target::Target;
use rostersync_runtime::Limits;
use rostersync_service::target_factories;
use rostersync_store::{HoldStatus, Store};

use crate::context::Context;
use crate::plugins::open_runtime;

/// Exit status when a mass suspension waits (or would wait) for a confirm,
/// as `sync` uses for a held run.
const HELD: u8 = 3;

#[derive(Subcommand)]
pub enum TargetsCommand {
    /// Every target: its kind, whether it sends, changes waiting or
    /// refused, its latest delivery, and an open hold.
    List {
        /// A JSON array: one object per target.
        #[arg(long)]
        json: bool,
    },
    /// What a delivery would do now, as a table (and a CSV with --csv);
    /// nothing is sent. Exit status 3 when it would suspend or delete more
    /// accounts than the target's hold allows.
    Preview {
        name: String,
        /// Also write the plan as CSV to this file.
        #[arg(long)]
        csv: Option<PathBuf>,
    },
    /// Plan and send what is due. Exit status 3 when a mass suspension
    /// waits for a confirm.
    Deliver {
        name: String,
        /// Where new accounts' initial passwords are written, once (a new
        /// file, readable by its owner only); without it they are shown.
        #[arg(long)]
        passwords: Option<PathBuf>,
    },
    /// Read everything the target holds, adopt what matches, repair drift
    /// (missing members, accounts changed or enabled by hand), report each
    /// repair, then deliver.
    Reconcile {
        name: String,
        #[arg(long)]
        passwords: Option<PathBuf>,
    },
    /// The target's delivery log, newest first.
    Deliveries {
        name: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// A JSON array of the deliveries.
        #[arg(long)]
        json: bool,
    },
    /// Release a held mass suspension, naming the digest reviewed.
    Confirm {
        name: String,
        hold: i64,
        #[arg(long)]
        digest: String,
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
    /// Approve a change of login the templates proposed.
    ApproveRename {
        name: String,
        external_id: String,
        to: String,
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
    /// Keep the login: the proposed change is not asked about again.
    RejectRename {
        name: String,
        external_id: String,
        to: String,
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
}

/// Approves or rejects a pending rename on a configured target.
async fn answer_rename(
    context: &Context,
    store: &Store,
    name: &str,
    external_id: &str,
    to: &str,
    status: RenameStatus,
    by: &str,
) -> anyhow::Result<ExitCode> {
    target(context, name)?;
    if !store
        .answer_target_rename(name, external_id, to, status, by)
        .await?
    {
        bail!("no rename of {external_id} to {to:?} is waiting on {name}");
    }
    if status == RenameStatus::Approved {
        println!("{external_id} becomes {to} on the next delivery to {name}");
    } else {
        println!(
            "{external_id} keeps its login on {name}; the change to {to} is not asked about again"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens a configured target: a plugin through a runtime over the plugin
/// folder (only when the target is a plugin), LDAP natively.
async fn open(context: &Context, config: &TargetConfig) -> anyhow::Result<Arc<dyn Target>> {
    let runtime = open_runtime(&context.plugin_dir)?;
    if config.kind == TargetKind::Plugin {
        runtime.scan().await?;
    }
    Ok(target_factories(runtime, Limits::default())
        .open(config)
        .await?)
}

fn target<'a>(context: &'a Context, name: &str) -> anyhow::Result<&'a TargetConfig> {
    context.config.target(name).with_context(|| {
        let known: Vec<&str> = context
            .config
            .targets
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        format!(
            "{} has no target named {name:?}; it has: {}",
            context.config_file.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )
    })
}

pub async fn run(context: &Context, command: TargetsCommand) -> anyhow::Result<ExitCode> {
    let reconcile = matches!(command, TargetsCommand::Reconcile { .. });
    let store = context.store().await?;
    match command {
        TargetsCommand::List { json } => {
            let mut listed = Vec::new();
            for config in &context.config.targets {
                let status = store.target_status(&config.name).await?;
                if json {
                    listed.push(serde_json::json!({
                        "name": config.name,
                        "kind": config.kind.as_str(),
                        "enabled": config.enabled,
                        "waiting": status.waiting,
                        "refused": status.refused,
                        "last_delivery": status.last_delivery,
                        "last_pass": status.last_pass,
                        "open_hold": status.open_hold,
                    }));
                    continue;
                }
                println!(
                    "{:<16} {:<6} {:<12} {:>5} waiting {:>4} refused  last {}{}",
                    config.name,
                    config.kind.as_str(),
                    if config.enabled {
                        "delivering"
                    } else {
                        "preview only"
                    },
                    status.waiting,
                    status.refused,
                    status
                        .last_delivery
                        .as_ref()
                        .map_or("never".to_string(), |d| format!(
                            "{} {} ({})",
                            d.at.format("%Y-%m-%d %H:%M UTC"),
                            d.action.as_str(),
                            d.outcome.as_str()
                        )),
                    status.open_hold.as_ref().map_or(String::new(), |h| format!(
                        "  HELD: hold {} ({})",
                        h.id, h.hold.digest
                    )),
                );
                if let Some((at, error)) = status.pass_failure() {
                    println!(
                        "{:<16} the last unattended delivery failed at {}: {}",
                        "",
                        at.format("%Y-%m-%d %H:%M UTC"),
                        error
                    );
                }
            }
            if json {
                println!("{}", serde_json::to_string(&listed)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        TargetsCommand::Preview { name, csv } => {
            let config = target(context, &name)?;
            let opened = open(context, config).await?;
            let plan = Engine::new(&store, config, opened).plan().await?;
            print!("{}", preview::table(&plan));
            let counts: Vec<String> = preview::summary(&plan)
                .iter()
                .map(|(action, n)| format!("{n} {action}"))
                .collect();
            println!(
                "{}",
                if counts.is_empty() {
                    "nothing to do".into()
                } else {
                    counts.join(", ")
                }
            );
            if let Some(path) = csv {
                std::fs::write(&path, preview::csv(&plan))
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            Ok(match &plan.hold {
                Some(hold) => {
                    println!(
                        "a delivery would hold {} suspensions and {} deletions of {} accounts (digest {})",
                        hold.suspend.len(),
                        hold.delete.len(),
                        hold.population,
                        hold.digest
                    );
                    ExitCode::from(HELD)
                }
                None => ExitCode::SUCCESS,
            })
        }
        TargetsCommand::Deliver { name, passwords }
        | TargetsCommand::Reconcile { name, passwords } => {
            let config = target(context, &name)?;
            if let Some(path) = &passwords
                && path.exists()
            {
                bail!(
                    "{} exists; name a new file for the initial passwords",
                    path.display()
                );
            }
            let opened = open(context, config).await?;
            let engine = Engine::new(&store, config, opened);
            let report = if reconcile {
                engine.reconcile().await?
            } else {
                engine.deliver().await?
            };
            show(&report);
            hand_over(&report.passwords, passwords.as_deref())?;
            Ok(if report.hold.is_some() {
                ExitCode::from(HELD)
            } else {
                ExitCode::SUCCESS
            })
        }
        TargetsCommand::Deliveries { name, limit, json } => {
            target(context, &name)?;
            let deliveries = store.target_deliveries(&name, limit).await?;
            if json {
                println!("{}", serde_json::to_string(&deliveries)?);
                return Ok(ExitCode::SUCCESS);
            }
            for line in deliveries {
                println!(
                    "{}  {:<14} {:<8} {:<24} {:<20} {}",
                    line.at.format("%Y-%m-%d %H:%M:%S UTC"),
                    line.action.as_str(),
                    line.outcome.as_str(),
                    line.external_id,
                    line.target_id.as_deref().unwrap_or("-"),
                    line.error.as_deref().unwrap_or("")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        TargetsCommand::Confirm {
            name,
            hold,
            digest,
            by,
        } => {
            target(context, &name)?;
            store
                .answer_target_hold(hold, &digest, HoldStatus::Confirmed, &by)
                .await?;
            println!("hold {hold} confirmed; the next delivery to {name} sends what it held");
            Ok(ExitCode::SUCCESS)
        }
        TargetsCommand::ApproveRename {
            name,
            external_id,
            to,
            by,
        } => {
            let status = RenameStatus::Approved;
            answer_rename(context, &store, &name, &external_id, &to, status, &by).await
        }
        TargetsCommand::RejectRename {
            name,
            external_id,
            to,
            by,
        } => {
            let status = RenameStatus::Rejected;
            answer_rename(context, &store, &name, &external_id, &to, status, &by).await
        }
    }
}

fn show(report: &DeliveryReport) {
    if report.preview_only {
        println!("this target is preview only (enabled = false): nothing was sent");
        return;
    }
    for repair in &report.repairs {
        println!("repaired {}: {}", repair.object, repair.drift);
    }
    for (action, n) in &report.done {
        println!("{n:>6} {action}");
    }
    println!(
        "{} matched, {} conflicts, {} refused, {} retried, {} failed calls, {} still waiting",
        report.matched,
        report.conflicts,
        report.refused,
        report.retries,
        report.failed_calls,
        report.pending
    );
    if let Some(failure) = &report.last_failure {
        println!("the last failed call: {failure}");
    }
    for rename in &report.renames {
        println!(
            "rename awaiting approval: {} from {} to {}",
            rename.external_id, rename.from, rename.to
        );
    }
    if let Some((id, hold)) = &report.hold {
        println!(
            "HELD: hold {id} withholds {} suspensions and {} deletions; review with `targets preview`, then `targets confirm NAME {id} --digest {}`",
            hold.suspend.len(),
            hold.delete.len(),
            hold.digest
        );
    }
}

/// Writes the initial passwords to a new owner-only file, or shows them:
/// the one time they leave the process.
fn hand_over(passwords: &[IssuedPassword], file: Option<&Path>) -> anyhow::Result<()> {
    if passwords.is_empty() {
        return Ok(());
    }
    match file {
        Some(path) => {
            write_passwords(passwords, path).with_context(|| {
                format!("cannot write the initial passwords to {}", path.display())
            })?;
            println!(
                "{} initial passwords written to {}; they are not kept anywhere else",
                passwords.len(),
                path.display()
            );
        }
        None => {
            println!("initial passwords (shown once, kept nowhere):");
            print!("{}", passwords_csv(passwords));
        }
    }
    Ok(())
}
