//! The delivery engine: for each provisioning target, the plan of changes
//! (from the pure planner in `rostersync_core::targets`), delivered at
//! least once through a `dyn Target` under idempotency keys, with backoff
//! that honours `Retry-After`, a per-target rate limit and a log line per
//! object; preview (the plan as a table and a CSV, nothing sent); and
//! reconcile (read the target back, adopt what matches, repair drift).
//!
//! The engine never knows which kind of target it drives: a
//! [`TargetFactory`] opens one from its configuration, so the WebAssembly
//! plugin runtime and the host's LDAP target plug in at one seam.
//!
//! - [`config`]: a `[[targets]]` entry.
//! - [`source`]: the accounts, links and roster a target is fed from.
//! - [`engine`]: plan, enqueue, deliver, reconcile, for one target.
//! - [`pace`]: backoff with jitter and the rate limit.
//! - [`password`]: initial passwords to a policy, never stored.
//! - [`preview`]: a plan as a table and a CSV.

pub mod config;
pub mod engine;
pub mod pace;
pub mod password;
pub mod preview;
mod reconcile;
pub mod source;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rostersync_model::SyncError;
use rostersync_model::target::Target;
use rostersync_store::{Store, StoreError};

pub use config::{TargetConfig, TargetKind};
pub use engine::{DeliveryReport, Engine, IssuedPassword, Repair};
pub use pace::{Backoff, RateLimit};
pub use password::{PasswordPolicy, export_file, passwords_csv, write_passwords};

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("target {target:?}: {source}")]
    Store { target: String, source: StoreError },
    #[error("target {target:?} failed the delivery: {source}")]
    Target { target: String, source: SyncError },
    #[error(
        "target {target:?} cannot list what it holds (it does not declare read-back), so it cannot be reconciled"
    )]
    NoReadBack { target: String },
    #[error(
        "target {target:?}: stored {what} {key:?} is not a record this host can read: {reason}"
    )]
    BadRecord {
        target: String,
        what: &'static str,
        key: String,
        reason: String,
    },
    #[error("target {target:?} cannot be opened: {reason}")]
    Open { target: String, reason: String },
    #[error("target {target:?}: its delivery stopped unexpectedly: {reason}")]
    Stopped { target: String, reason: String },
}

/// A boxed future, so [`TargetFactory`] can be used as a trait object.
pub type OpenFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Arc<dyn Target>, DeliverError>> + Send + 'a>>;

/// Opens a target from its configuration: the seam where the WebAssembly
/// plugin runtime and the host's LDAP target are wired in.
pub trait TargetFactory: Send + Sync {
    fn open<'a>(&'a self, config: &'a TargetConfig) -> OpenFuture<'a>;
}

/// The factories this build has, one per [`TargetKind`]; a kind without
/// one is refused by name.
#[derive(Default)]
pub struct Factories {
    pub plugin: Option<Box<dyn TargetFactory>>,
    pub ldap: Option<Box<dyn TargetFactory>>,
}

impl TargetFactory for Factories {
    fn open<'a>(&'a self, config: &'a TargetConfig) -> OpenFuture<'a> {
        let factory = match config.kind {
            TargetKind::Plugin => &self.plugin,
            TargetKind::Ldap => &self.ldap,
        };
        match factory {
            Some(factory) => factory.open(config),
            None => Box::pin(std::future::ready(Err(DeliverError::Open {
                target: config.name.clone(),
                reason: format!(
                    "this build of rostersync has no {} targets",
                    config.kind.as_str()
                ),
            }))),
        }
    }
}

/// Delivers to every target at once, each on its own task: a target that
/// fails or hangs on retries never holds up another. Returns each
/// target's report or error, by name, in the order given.
pub async fn deliver_all(
    store: Arc<Store>,
    targets: Vec<(TargetConfig, Arc<dyn Target>)>,
) -> Vec<(String, Result<DeliveryReport, DeliverError>)> {
    let tasks: Vec<(String, tokio::task::JoinHandle<_>)> = targets
        .into_iter()
        .map(|(config, target)| {
            let store = store.clone();
            let name = config.name.clone();
            let task =
                tokio::spawn(async move { Engine::new(&store, &config, target).deliver().await });
            (name, task)
        })
        .collect();
    let mut reports = Vec::new();
    for (name, task) in tasks {
        let report = task.await.unwrap_or_else(|panic| {
            Err(DeliverError::Stopped {
                target: name.clone(),
                reason: panic.to_string(),
            })
        });
        reports.push((name, report));
    }
    reports
}
