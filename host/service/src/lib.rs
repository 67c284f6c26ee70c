//! The unattended host: a scheduler that queues each connection's runs when
//! its schedule says, workers that take runs off the queue with at most the
//! configured concurrency, the live progress of every running run, and the
//! delivery of operator notifications (held, failed, disconnected,
//! recovered) to the configured channels, and the delivery of the roster
//! to the provisioning targets after runs.
//!
//! The queue lives in the store, not here: a request for a connection that
//! is already queued or running joins that run, a restart settles the runs
//! the last host left running, and several hosts on one PostgreSQL store
//! share the work.

mod health;
mod lease;
mod progress;
mod scheduler;
mod targets;
mod worker;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rostersync_deliver::{Factories, TargetConfig};
use rostersync_notify::{Channel, ClientError, Notifier, RetryPolicy};
use rostersync_runtime::{Limits, Runtime};
use rostersync_schedule::{BlackoutMode, Schedule, ScheduleError};
use rostersync_store::{Enqueued, RunAsk, RunMode, Store, StoreError};
use rostersync_sync::{ConnectionConfig, Progress};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

pub use health::Health;
pub use lease::{RUN_LEASE_ENV, run_lease, settle_expired_runs};
pub use progress::LiveProgress;
pub use targets::{DeliveryOptions, Pass, target_factories};
pub use worker::run_claimed;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("there is no connection named {0:?}")]
    NoSuchConnection(String),
    #[error(transparent)]
    Notifications(#[from] ClientError),
    #[error("connection {connection:?}: schedule.{error}")]
    Schedule {
        connection: String,
        error: ScheduleError,
    },
}

/// How the host runs.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Runs at once, across all connections.
    pub concurrency: usize,
    /// How often the scheduler looks at the clock and idle workers at the
    /// queue (a request wakes them at once).
    pub tick: Duration,
    /// The sandbox limits every connector runs under, unless its
    /// connection sets its own.
    pub limits: Limits,
    /// Where operator notifications go; none, and nobody is told.
    pub notifications: Vec<Channel>,
    /// How often the notifier looks for events to deliver.
    pub notify_every: Duration,
    /// How the notifier spaces and bounds its retries.
    pub notify_retry: RetryPolicy,
    /// How long a running run may go without a heartbeat before it counts
    /// as dead and is settled; runs heartbeat four times per lease.
    pub run_lease: Duration,
    /// The provisioning targets delivered after runs.
    pub targets: Vec<TargetConfig>,
    pub delivery: DeliveryOptions,
}

/// A run's lease when nothing says otherwise: long enough that a busy
/// store does not make a live run look dead.
pub const DEFAULT_RUN_LEASE: Duration = Duration::from_secs(60);

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            tick: Duration::from_secs(1),
            limits: Limits::default(),
            notifications: Vec::new(),
            notify_every: Duration::from_secs(5),
            notify_retry: RetryPolicy::default(),
            run_lease: run_lease(),
            targets: Vec::new(),
            delivery: DeliveryOptions::default(),
        }
    }
}

/// The connections by id, as one configuration named them.
pub(crate) type Connections = Arc<BTreeMap<String, Arc<Scheduled>>>;

/// A configured connection and its compiled schedule.
pub(crate) struct Scheduled {
    pub(crate) config: ConnectionConfig,
    pub(crate) schedule: Schedule,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<Store>,
    pub(crate) runtime: Runtime,
    /// The configured connections; a reload swaps in a new map while runs
    /// of the old one finish with the configuration they started with.
    pub(crate) connections: RwLock<Connections>,
    pub(crate) options: ServiceOptions,
    pub(crate) live: LiveProgress,
    /// Wakes idle workers when a run is queued.
    pub(crate) queued: Notify,
    /// Delivers operator notifications, when any channel is configured.
    pub(crate) notifier: Option<Notifier>,
    pub(crate) health: health::WorkerHealth,
    /// The provisioning targets as configured now; a reload swaps them.
    pub(crate) targets: RwLock<Arc<Vec<TargetConfig>>>,
    pub(crate) factories: Factories,
    pub(crate) visits: targets::Visits,
    /// Wakes the delivery loop when a run ends.
    pub(crate) roster_changed: Notify,
    /// This process, as the leases it takes in a shared store name it.
    pub(crate) holder: String,
}

/// This process among others sharing a store: host name, process id and
/// start time, unique across restarts.
fn holder_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!(
        "{host}:{}:{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )
}

/// The host's handle: cheap to clone, shared by the scheduler, the workers
/// and the admin API.
#[derive(Clone)]
pub struct Service {
    pub(crate) inner: Arc<Inner>,
}

/// A connection as the status views show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectionView {
    pub id: String,
    pub connector: String,
    pub schedule: String,
    pub next_run: Option<DateTime<Utc>>,
    /// The blackout the connection is in now, if any.
    pub blackout: Option<String>,
}

impl Service {
    /// Compiles every connection's schedule; the error names the
    /// connection and the schedule field.
    pub fn new(
        store: Arc<Store>,
        runtime: Runtime,
        connections: Vec<ConnectionConfig>,
        options: ServiceOptions,
    ) -> Result<Self, ServiceError> {
        let connections = compile(connections)?;
        let notifier = if options.notifications.is_empty() {
            None
        } else {
            Some(
                Notifier::new(Arc::clone(&store), options.notifications.clone())?
                    .with_retry_policy(options.notify_retry),
            )
        };
        let factories = target_factories(runtime.clone(), options.limits.clone());
        let targets = RwLock::new(Arc::new(options.targets.clone()));
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                runtime,
                targets,
                factories,
                visits: targets::Visits::default(),
                roster_changed: Notify::new(),
                connections: RwLock::new(connections),
                options,
                live: LiveProgress::default(),
                queued: Notify::new(),
                notifier,
                health: health::WorkerHealth::default(),
                holder: holder_name(),
            }),
        })
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    /// Whether the workers are on duty and the store answers them.
    pub fn health(&self) -> Health {
        self.inner
            .health
            .report(self.inner.options.concurrency.max(1))
    }

    /// The connections as configured now.
    pub(crate) fn configured(&self) -> Connections {
        Arc::clone(&self.inner.connections.read().expect("connections lock"))
    }

    pub(crate) fn scheduled(&self, id: &str) -> Option<Arc<Scheduled>> {
        self.configured().get(id).cloned()
    }

    pub fn connection_ids(&self) -> Vec<String> {
        self.configured().keys().cloned().collect()
    }

    pub fn connection(&self, id: &str) -> Option<ConnectionConfig> {
        self.scheduled(id).map(|c| c.config.clone())
    }

    /// Puts a new configuration's connections into service: new ones are
    /// scheduled, removed ones get no new runs, changed ones run with their
    /// new settings from their next run. Runs already going finish with the
    /// configuration they started with. A schedule that does not compile
    /// refuses the whole reload and the running configuration stays.
    pub fn reload(&self, connections: Vec<ConnectionConfig>) -> Result<Reload, ServiceError> {
        let new = compile(connections)?;
        let mut current = self.inner.connections.write().expect("connections lock");
        let reload = Reload {
            added: new
                .keys()
                .filter(|id| !current.contains_key(*id))
                .cloned()
                .collect(),
            removed: current
                .keys()
                .filter(|id| !new.contains_key(*id))
                .cloned()
                .collect(),
            kept: new.keys().filter(|id| current.contains_key(*id)).count(),
        };
        *current = new;
        drop(current);
        self.inner.queued.notify_waiters();
        Ok(reload)
    }

    /// The provisioning targets as configured now.
    pub fn targets(&self) -> Arc<Vec<TargetConfig>> {
        Arc::clone(&self.inner.targets.read().expect("targets lock"))
    }

    /// Puts a new configuration's targets into service from the next
    /// delivery pass; a pass already going finishes with the old ones.
    pub fn reload_targets(&self, targets: Vec<TargetConfig>) {
        *self.inner.targets.write().expect("targets lock") = Arc::new(targets);
        self.inner.roster_changed.notify_one();
    }

    /// Each configured connection with its schedule and next run.
    pub fn connections(&self, now: DateTime<Utc>) -> Vec<ConnectionView> {
        self.configured()
            .values()
            .map(|c| ConnectionView {
                id: c.config.id.clone(),
                connector: c.config.connector.clone(),
                schedule: c.schedule.describe(),
                next_run: c.schedule.next_run_after(now),
                blackout: c.schedule.blackout_at(now).map(|b| {
                    let mode = match b.mode {
                        BlackoutMode::Pause => "paused",
                        BlackoutMode::AdditionsOnly => "additions only",
                    };
                    format!(
                        "{mode} from {} to {}{}",
                        b.from,
                        b.to,
                        b.label
                            .as_deref()
                            .map(|l| format!(" ({l})"))
                            .unwrap_or_default()
                    )
                }),
            })
            .collect()
    }

    /// Queues a run now (an operator's "Refresh now" or "Full resync"), or
    /// joins the connection's queued or running one.
    pub async fn request_run(
        &self,
        connection: &str,
        mode: RunMode,
        requested_by: &str,
    ) -> Result<Enqueued, ServiceError> {
        self.enqueue(connection, mode, "operator", requested_by, Utc::now())
            .await
    }

    pub(crate) async fn enqueue(
        &self,
        connection: &str,
        mode: RunMode,
        reason: &str,
        requested_by: &str,
        now: DateTime<Utc>,
    ) -> Result<Enqueued, ServiceError> {
        let scheduled = self
            .scheduled(connection)
            .ok_or_else(|| ServiceError::NoSuchConnection(connection.to_string()))?;
        let ask = run_ask(
            &scheduled.config,
            &scheduled.schedule,
            mode,
            reason,
            requested_by,
            now,
        );
        let enqueued = self.inner.store.enqueue_run(&ask, now).await?;
        if matches!(enqueued, Enqueued::Queued(_)) {
            self.inner.queued.notify_waiters();
        }
        Ok(enqueued)
    }

    /// A running run's progress as of now: this host's live view, else
    /// what the host running it last wrote to the store.
    pub async fn progress(&self, queue_id: i64) -> Result<Option<Progress>, ServiceError> {
        if let Some(progress) = self.inner.live.get(queue_id) {
            return Ok(Some(progress));
        }
        Ok(self
            .inner
            .store
            .queued_run(queue_id)
            .await?
            .and_then(|run| run.progress)
            .and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// Runs the scheduler, the workers, the progress writer, the settling
    /// of runs whose process died, and the notifier until `shutdown` turns
    /// true. Runs in progress at shutdown finish first.
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> Result<(), ServiceError> {
        let mut tasks = JoinSet::new();
        tasks.spawn(scheduler::run(self.clone(), shutdown.clone()));
        tasks.spawn(progress::write_to_store(self.clone(), shutdown.clone()));
        tasks.spawn(lease::settle_dead_runs(self.clone(), shutdown.clone()));
        if self.inner.notifier.is_some() {
            let service = self.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                if let Some(notifier) = &service.inner.notifier {
                    notifier
                        .run(shutdown, service.inner.options.notify_every)
                        .await;
                }
                Ok(())
            });
        }
        tasks.spawn(targets::run(self.clone(), shutdown.clone()));
        for worker in 0..self.inner.options.concurrency.max(1) {
            tasks.spawn(worker::run(self.clone(), worker, shutdown.clone()));
        }
        while let Some(outcome) = tasks.join_next().await {
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::error!(%error, "the service stopped on a store failure");
                    return Err(error);
                }
                Err(panic) => std::panic::resume_unwind(panic.into_panic()),
            }
        }
        Ok(())
    }
}

/// What a [`Service::reload`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reload {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Connections in both configurations (changed or not).
    pub kept: usize,
}

/// Compiles every connection's schedule; the error names the connection
/// and the schedule field.
fn compile(connections: Vec<ConnectionConfig>) -> Result<Connections, ServiceError> {
    let compiled = connections
        .into_iter()
        .map(|config| {
            let schedule = Schedule::compile(&config.id, &config.schedule).map_err(|error| {
                ServiceError::Schedule {
                    connection: config.id.clone(),
                    error,
                }
            })?;
            Ok((config.id.clone(), Arc::new(Scheduled { config, schedule })))
        })
        .collect::<Result<_, ServiceError>>()?;
    Ok(Arc::new(compiled))
}

/// A request for a run of `config` now: additions only when its schedule
/// has it in such a blackout.
pub fn run_ask(
    config: &ConnectionConfig,
    schedule: &Schedule,
    mode: RunMode,
    reason: &str,
    requested_by: &str,
    now: DateTime<Utc>,
) -> RunAsk {
    RunAsk {
        connection: config.id.clone(),
        mode,
        reason: reason.to_string(),
        requested_by: requested_by.to_string(),
        additions_only: schedule
            .blackout_at(now)
            .is_some_and(|b| b.mode == BlackoutMode::AdditionsOnly),
    }
}

/// Waits for `tick`, a wake-up, or shutdown; true when shutting down.
pub(crate) async fn pause(
    tick: Duration,
    wake: Option<&Notify>,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    let woken = async {
        match wake {
            Some(notify) => notify.notified().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::time::sleep(tick) => {}
        _ = woken => {}
        _ = shutdown.changed() => {}
    }
    *shutdown.borrow()
}
