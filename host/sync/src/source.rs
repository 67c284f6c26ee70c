//! Where a run's records come from: a connector component in its sandbox,
//! or anything else that yields batches (an in-memory roster in tests).

use std::future::Future;
use std::sync::Arc;

use rostersync_model::{Mode, Record, SyncError};
use rostersync_runtime::{AllowedHost, Limits, Plugin, RunError, Sandbox, Snapshot};

use crate::ConnectionConfig;
use crate::trust::PluginBuild;

/// One read, pulled a batch at a time.
pub trait RecordSource: Send {
    /// The next batch, or `None` once the read is complete.
    fn next_batch(&mut self) -> impl Future<Output = Result<Option<Vec<Record>>, RunError>> + Send;
    /// After a complete read: where the next delta resumes.
    fn cursor(&mut self) -> impl Future<Output = Result<Option<String>, RunError>> + Send;
    /// Pages done, and in all if the provider says, as the source last
    /// reported them.
    fn pages(&self) -> Option<(u32, Option<u32>)> {
        None
    }
}

/// Opens reads of one connection.
pub trait OpenSource: Sync {
    type Source: RecordSource;
    /// Which connector reads, for the store's connection row.
    fn connector(&self) -> &str;
    /// Whether the source can read deltas; without, every run is full.
    fn reads_deltas(&self) -> bool;
    /// The plugin build that reads, when a plugin does: it runs with the
    /// connection's secrets only once accepted.
    fn build(&self) -> Option<PluginBuild> {
        None
    }
    fn open(&self, mode: Mode) -> impl Future<Output = Result<Self::Source, RunError>> + Send;
}

impl RecordSource for Snapshot {
    async fn next_batch(&mut self) -> Result<Option<Vec<Record>>, RunError> {
        Snapshot::next_batch(self).await
    }

    async fn cursor(&mut self) -> Result<Option<String>, RunError> {
        Snapshot::cursor(self).await
    }

    fn pages(&self) -> Option<(u32, Option<u32>)> {
        let reported = *self.progress().borrow();
        (reported.pages_done > 0 || reported.pages_total.is_some())
            .then_some((reported.pages_done, reported.pages_total))
    }
}

/// A connection's connector component, in a sandbox built from the
/// connection's settings, allowed hosts and drop folder.
pub struct PluginSource {
    plugin: Arc<Plugin>,
    sandbox: Sandbox,
    connection: ConnectionConfig,
}

impl PluginSource {
    /// `limits` are the host's; the connection's own limits go over them.
    /// Fails with one sentence naming the bad allowed-host entry.
    pub fn new(
        plugin: Arc<Plugin>,
        connection: &ConnectionConfig,
        limits: Limits,
    ) -> Result<Self, String> {
        let extra_hosts = connection
            .extra_hosts
            .iter()
            .map(|entry| entry.parse::<AllowedHost>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("connection {}: {e}", connection.id))?;
        let mut sandbox = Sandbox::for_connection(
            &plugin.info,
            &connection.settings,
            &extra_hosts,
            connection.limits.over(limits),
        )
        .map_err(|e| format!("connection {}: {e}", connection.id))?;
        if let Some(folder) = &connection.drop_folder {
            sandbox = sandbox.with_drop_folder(folder);
        }
        Ok(Self {
            plugin,
            sandbox,
            connection: connection.clone(),
        })
    }
}

impl OpenSource for PluginSource {
    type Source = Snapshot;

    fn connector(&self) -> &str {
        &self.connection.connector
    }

    fn reads_deltas(&self) -> bool {
        self.plugin
            .info
            .has(rostersync_model::Capability::DeltaReads)
    }

    fn build(&self) -> Option<PluginBuild> {
        Some(PluginBuild::of(&self.plugin))
    }

    async fn open(&self, mode: Mode) -> Result<Snapshot, RunError> {
        self.plugin
            .snapshot(&self.sandbox, &self.connection.settings, mode)
            .await
    }
}

/// Whether a failed read means the provider could not be reached or
/// refused the credentials: what the disconnected hold counts.
pub(crate) fn is_unreachable(error: &RunError) -> bool {
    matches!(
        error,
        RunError::Connector {
            error: SyncError::Unavailable(_)
                | SyncError::Unauthorized(_)
                | SyncError::RateLimited { .. },
            ..
        }
    )
}
