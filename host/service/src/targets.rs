//! Provisioning from the unattended host: the factories that open each
//! kind of target (plugins through the host's own runtime and sandbox,
//! LDAP / Active Directory natively), and the delivery loop.
//!
//! The loop follows the outbox. Runs write their `person.*` and
//! `account.*` events in the run's own transaction; when the outbox has
//! moved past what a target last followed, the target is delivered (its
//! plan is derived from the accounts, groups and memberships those runs
//! wrote), and the mark moves up to where the outbox stood when the pass
//! began. A target is also delivered when retries it was asked to make
//! fall due, and at least every `revisit` even with nothing new, so a
//! suspension whose grace period ended, a confirmed hold or an approved
//! rename goes out unattended.
//!
//! Each target is delivered on its own task: one that fails, hangs on
//! retries or cannot be opened never holds up another, and never a roster
//! run (workers do not wait for deliveries). A failed pass is logged and
//! noted on the target in one sentence; the next pass tries again.
//!
//! Several `serve` processes may share one store: a pass first takes the
//! target's lease in the store, renews it while it delivers and gives it
//! up after, so no two processes ever deliver the same target at once; a
//! process that died leaves a lease that expires and is taken over.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use rostersync_deliver::{
    Backoff, DeliverError, DeliveryReport, Engine, Factories, OpenFuture, TargetConfig,
    TargetFactory, export_file, write_passwords,
};
use rostersync_model::target::{Target, TargetCapability};
use rostersync_runtime::{AllowedHost, Limits, Runtime, Sandbox, TargetPlugin};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::{Service, ServiceError, pause};

/// The kinds of target this host can open: `kind = "plugin"` through
/// `runtime`, under `limits`, and `kind = "ldap"` natively.
pub fn target_factories(runtime: Runtime, limits: Limits) -> Factories {
    Factories {
        plugin: Some(Box::new(PluginTargets { runtime, limits })),
        ldap: Some(Box::new(LdapTargets)),
    }
}

/// Opens `kind = "plugin"` targets: the named component from the plugin
/// folder, in a sandbox allowing its base-url settings and the target's
/// extra hosts.
struct PluginTargets {
    runtime: Runtime,
    limits: Limits,
}

impl TargetFactory for PluginTargets {
    fn open<'a>(&'a self, config: &'a TargetConfig) -> OpenFuture<'a> {
        let refused = |reason: String| DeliverError::Open {
            target: config.name.clone(),
            reason,
        };
        let opened = (|| {
            let name = config
                .plugin
                .as_deref()
                .ok_or_else(|| refused("it names no plugin".into()))?;
            let component = self.runtime.target(name).ok_or_else(|| {
                refused(format!(
                    "the plugin folder has no target plugin {name}.wasm that loads"
                ))
            })?;
            let extra_hosts = config
                .extra_hosts
                .iter()
                .map(|entry| entry.parse::<AllowedHost>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| refused(e.to_string()))?;
            let settings = config
                .settings
                .resolved_by(&component.info.settings)
                .map_err(|missing| refused(format!("the setting {missing:?} has no value")))?;
            let sandbox = Sandbox::for_target(
                &component.info,
                &settings,
                &extra_hosts,
                self.limits.clone(),
            )
            .map_err(|e| refused(e.to_string()))?;
            let target = TargetPlugin::new(component, &settings, sandbox)
                .map_err(|e| refused(e.to_string()))?;
            Ok(Arc::new(target) as Arc<dyn Target>)
        })();
        Box::pin(std::future::ready(opened))
    }
}

/// Opens `kind = "ldap"` targets: the host's own LDAP / Active Directory
/// target, which connects on first use.
struct LdapTargets;

impl TargetFactory for LdapTargets {
    fn open<'a>(&'a self, config: &'a TargetConfig) -> OpenFuture<'a> {
        let opened = rostersync_ldap::LdapTarget::open(&config.settings)
            .map(|target| Arc::new(target) as Arc<dyn Target>)
            .map_err(|e| DeliverError::Open {
                target: config.name.clone(),
                reason: e.to_string(),
            });
        Box::pin(std::future::ready(opened))
    }
}

/// How the host delivers its targets.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// How often the loop looks for work when no run wakes it.
    pub tick: Duration,
    /// A target is delivered at least this often, even with nothing new in
    /// the outbox.
    pub revisit: Duration,
    /// How long one pass waits on a target's retries before leaving them
    /// to the next pass.
    pub patience: Duration,
    pub backoff: Backoff,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(30),
            revisit: Duration::from_secs(15 * 60),
            patience: Duration::from_secs(60),
            backoff: Backoff::default(),
        }
    }
}

/// How long a target's delivery lease lasts without renewal, and how
/// often a pass renews it.
const TARGET_LEASE: Duration = Duration::from_secs(5 * 60);
const TARGET_LEASE_RENEWAL: Duration = Duration::from_secs(60);

/// How one target's pass ended.
#[derive(Debug)]
pub enum Pass {
    /// Nothing new, nothing due: not delivered.
    Idle,
    /// Another host process sharing the store is delivering it now.
    Busy,
    /// `enabled = false`: preview only.
    PreviewOnly,
    Delivered(Box<DeliveryReport>),
    Failed(String),
}

/// What the loop remembers between passes: when each target was last
/// delivered, for `revisit`.
#[derive(Default)]
pub(crate) struct Visits(Mutex<HashMap<String, Instant>>);

impl Visits {
    fn due(&self, target: &str, revisit: Duration) -> bool {
        let visits = self.0.lock().expect("visits lock");
        visits.get(target).is_none_or(|at| at.elapsed() >= revisit)
    }

    fn visited(&self, target: &str) {
        let mut visits = self.0.lock().expect("visits lock");
        visits.insert(target.to_string(), Instant::now());
    }
}

/// Delivers every configured target whose pass is due, until shutdown;
/// woken early when a run ends.
pub(crate) async fn run(
    service: Service,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ServiceError> {
    let tick = service.inner.options.delivery.tick;
    loop {
        service.deliver_targets().await;
        if pause(tick, Some(&service.inner.roster_changed), &mut shutdown).await {
            return Ok(());
        }
    }
}

impl Service {
    /// One pass over the configured targets, each on its own task; returns
    /// how each ended, by name, in configuration order.
    pub async fn deliver_targets(&self) -> Vec<(String, Pass)> {
        let targets = self.targets();
        let mut tasks = JoinSet::new();
        for (position, config) in targets.iter().enumerate() {
            let service = self.clone();
            let config = config.clone();
            tasks.spawn(async move {
                let pass = service.pass(&config).await;
                (position, config.name, pass)
            });
        }
        let mut passes = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(done) => passes.push(done),
                Err(panic) => {
                    tracing::error!(%panic, "a target's delivery stopped unexpectedly");
                }
            }
        }
        passes.sort_by_key(|(position, _, _)| *position);
        passes
            .into_iter()
            .map(|(_, name, pass)| (name, pass))
            .collect()
    }

    async fn pass(&self, config: &TargetConfig) -> Pass {
        let store = &self.inner.store;
        let name = config.name.as_str();
        if !config.enabled {
            return Pass::PreviewOnly;
        }
        let stored = |source| DeliverError::Store {
            target: name.to_string(),
            source,
        };
        let outcome = async {
            let head = store.outbox_head().await.map_err(stored)?;
            let seen = store
                .target_pass(name)
                .await
                .map_err(stored)?
                .filter(|pass| pass.last_error.is_none())
                .map_or(-1, |pass| pass.seen_id);
            let retries_due = !store
                .due_target_changes(name, Utc::now(), 1)
                .await
                .map_err(stored)?
                .is_empty();
            let revisit = self
                .inner
                .visits
                .due(name, self.inner.options.delivery.revisit);
            if head <= seen && !retries_due && !revisit {
                return Ok(Pass::Idle);
            }
            let holder = self.inner.holder.as_str();
            let claim = |now: chrono::DateTime<Utc>| {
                store.claim_target(name, holder, now, now + TARGET_LEASE)
            };
            if !claim(Utc::now()).await.map_err(stored)? {
                tracing::debug!(target_name = name, "another process is delivering the target");
                return Ok(Pass::Busy);
            }
            self.inner.visits.visited(name);
            // Renewed from its own task, so a slow target cannot let it lapse.
            let renewing = async {
                loop {
                    tokio::time::sleep(TARGET_LEASE_RENEWAL).await;
                    if let Err(error) = claim(Utc::now()).await {
                        tracing::warn!(target_name = name, %error, "cannot renew the target's lease");
                    }
                }
            };
            let delivered = tokio::select! {
                delivered = self.deliver_one(config) => delivered,
                () = renewing => unreachable!("renewing never ends"),
            };
            if let Err(error) = store.release_target(name, holder).await {
                tracing::warn!(target_name = name, %error, "cannot release the target's lease; it expires");
            }
            let report = delivered?;
            store
                .mark_target_outbox_seen(name, head)
                .await
                .map_err(stored)?;
            Ok::<_, DeliverError>(Pass::Delivered(Box::new(report)))
        }
        .await;
        match outcome {
            Ok(Pass::Delivered(report)) => {
                if let Some(failure) = &report.last_failure {
                    let sentence = format!(
                        "{} calls to the target failed, the last with: {failure}; {} changes wait for the next delivery",
                        report.failed_calls, report.pending
                    );
                    tracing::warn!(target_name = name, error = %sentence, "target delivered in part");
                    if let Err(store_error) = store.note_target_pass_failed(name, &sentence).await {
                        tracing::error!(target_name = name, %store_error, "cannot note the failed delivery");
                    }
                }
                tracing::info!(
                    target_name = name,
                    done = report.done.values().sum::<usize>(),
                    matched = report.matched,
                    refused = report.refused,
                    pending = report.pending,
                    held = report.hold.is_some(),
                    "target delivered"
                );
                Pass::Delivered(report)
            }
            Ok(not_delivered) => not_delivered,
            Err(error) => {
                let sentence = error.to_string();
                tracing::error!(target_name = name, error = %sentence, "target not delivered");
                if let Err(store_error) = store.note_target_pass_failed(name, &sentence).await {
                    tracing::error!(target_name = name, %store_error, "cannot note the failed delivery");
                }
                Pass::Failed(sentence)
            }
        }
    }

    async fn deliver_one(&self, config: &TargetConfig) -> Result<DeliveryReport, DeliverError> {
        let factories = &self.inner.factories;
        let target = factories.open(config).await?;
        let passwords = target.info().has(TargetCapability::Passwords);
        if passwords && config.password_export.is_none() {
            return Err(DeliverError::Open {
                target: config.name.clone(),
                reason: "it sets initial passwords, but names no password_export folder, so an unattended delivery could hand them to nobody; set password_export, or deliver it with `rostersync targets deliver`".into(),
            });
        }
        if let Some(folder) = config.password_export.as_deref() {
            std::fs::create_dir_all(folder).map_err(|error| DeliverError::Open {
                target: config.name.clone(),
                reason: format!(
                    "its password_export folder {} cannot be made: {error}",
                    folder.display()
                ),
            })?;
        }
        let options = &self.inner.options.delivery;
        let report = Engine::new(&self.inner.store, config, target)
            .with_pacing(options.backoff, options.patience)
            .deliver()
            .await?;
        if let Some(folder) = config.password_export.as_deref() {
            export(config, folder, &report)?;
        }
        Ok(report)
    }
}

/// Writes a delivery's initial passwords to a new file in `folder`.
fn export(
    config: &TargetConfig,
    folder: &Path,
    report: &DeliveryReport,
) -> Result<(), DeliverError> {
    if report.passwords.is_empty() {
        return Ok(());
    }
    let file = export_file(folder, &config.name);
    write_passwords(&report.passwords, &file).map_err(|error| DeliverError::Stopped {
        target: config.name.clone(),
        reason: format!(
            "{} accounts were created, but their initial passwords could not be written to {}: {error}",
            report.passwords.len(),
            file.display()
        ),
    })?;
    tracing::warn!(
        target_name = config.name,
        file = %file.display(),
        accounts = report.passwords.len(),
        "initial passwords written; hand them out, then delete the file"
    );
    Ok(())
}
