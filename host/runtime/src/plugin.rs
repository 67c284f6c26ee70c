//! One loaded connector component: validated against a supported WIT
//! version, compiled (or loaded from the cache), pre-instantiated, and
//! described. Every call gets a fresh store and instance: a trapped
//! instance cannot be entered again, and a fresh one costs ~20 µs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rostersync_model::{Capability, ConnectorInfo, Mode, Record, SchoolInfo, Settings, SyncError};
use tokio::sync::watch;
use wasmtime::Store;
use wasmtime::component::ResourceAny;

use crate::bindings::{SOURCE_INTERFACE, WitVersion, v0_1, v0_2};
use crate::budget::{LedgerError, MAX_QUOTED_BYTES, SnapshotLedger, check_record, clip};
use crate::cache::LoadSource;
use crate::error::{LoadError, RunError};
use crate::guest::{self, Compiled};
use crate::runtime::Shared;
use crate::sandbox::{Limits, Progress, RunState, Sandbox};

/// Ticks of the engine's epoch per second; see `Runtime::new`.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Pre-instantiated bindings, one variant per supported WIT version.
enum Pre {
    V0_1(v0_1::ConnectorPre<RunState>),
    V0_2(v0_2::ConnectorPre<RunState>),
}

/// A live instance's bindings.
enum Bound {
    V0_1(v0_1::Connector),
    V0_2(v0_2::Connector),
}

/// Runs `$body` with `$b` bound to the instance and `$m` to the binding
/// module of its WIT version.
macro_rules! per_version {
    ($bound:expr, |$b:ident, $m:ident| $body:expr) => {
        match $bound {
            Bound::V0_1($b) => {
                #[allow(unused_imports)]
                use crate::bindings::v0_1 as $m;
                $body
            }
            Bound::V0_2($b) => {
                #[allow(unused_imports)]
                use crate::bindings::v0_2 as $m;
                $body
            }
        }
    };
}

/// A connector component in service.
pub struct Plugin {
    /// The file stem: how connections name the connector.
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
    pub wit_version: WitVersion,
    pub info: ConnectorInfo,
    pub loaded_from: LoadSource,
    pre: Pre,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("sha256", &self.sha256)
            .field("wit_version", &self.wit_version)
            .finish_non_exhaustive()
    }
}

/// The connector name a plugin file gives, if it is a valid one.
pub(crate) fn plugin_name(path: &Path) -> Option<String> {
    if path.extension()? != "wasm" {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    let valid = !stem.is_empty()
        && stem
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    valid.then(|| stem.to_string())
}

impl Plugin {
    /// Loads `wasm` (the content of `path`) into service.
    pub(crate) async fn load(
        shared: Arc<Shared>,
        path: &Path,
        wasm: Vec<u8>,
    ) -> Result<Plugin, LoadError> {
        let compiled = guest::compile(&shared, path, wasm).await?;
        Plugin::from_compiled(shared, path, compiled).await
    }

    /// Binds a compiled component to the connector contract it exports and
    /// asks it who it is.
    pub(crate) async fn from_compiled(
        shared: Arc<Shared>,
        path: &Path,
        compiled: Compiled,
    ) -> Result<Plugin, LoadError> {
        let wit_version = detect_version(&compiled, path)?;
        let link_error = guest::link_error(path);
        let instance_pre = shared
            .linker
            .instantiate_pre(&compiled.component)
            .map_err(&link_error)?;
        let pre = match wit_version {
            WitVersion::V0_1_0 => {
                Pre::V0_1(v0_1::ConnectorPre::new(instance_pre).map_err(&link_error)?)
            }
            WitVersion::V0_2_0 => {
                Pre::V0_2(v0_2::ConnectorPre::new(instance_pre).map_err(&link_error)?)
            }
        };
        let Compiled {
            name,
            sha256,
            loaded_from,
            ..
        } = compiled;
        let mut plugin = Plugin {
            name,
            path: path.to_path_buf(),
            sha256,
            wit_version,
            info: ConnectorInfo {
                provider: String::new(),
                version: String::new(),
                description: String::new(),
                settings: Vec::new(),
                capabilities: Vec::new(),
            },
            loaded_from,
            pre,
            shared,
        };
        plugin.info = plugin
            .describe()
            .await
            .map_err(|error| LoadError::Describe {
                path: path.to_path_buf(),
                error: Box::new(error),
            })?;
        Ok(plugin)
    }

    /// Asks the component who it is. Runs with default limits and no
    /// network.
    async fn describe(&self) -> Result<ConnectorInfo, RunError> {
        let sandbox = guest::describe_sandbox();
        let (mut store, bound) = self.instantiate(&sandbox).await?;
        self.guarded(&mut store, sandbox.limits.call_timeout, async |store| {
            Ok(per_version!(&bound, |b, m| m::connector_info(
                b.rostersync_connector_source().call_describe(store).await?
            )))
        })
        .await
    }

    /// "Test connection": which school these settings reach.
    pub async fn check(
        &self,
        sandbox: &Sandbox,
        settings: &Settings,
    ) -> Result<SchoolInfo, RunError> {
        let settings = self.resolve(settings)?;
        let (mut store, bound) = self.instantiate(sandbox).await?;
        let answer = self
            .guarded(&mut store, sandbox.limits.call_timeout, async |store| {
                Ok(per_version!(&bound, |b, m| b
                    .rostersync_connector_source()
                    .call_check(store, &m::settings(&settings))
                    .await?
                    .map(m::school_info)
                    .map_err(m::sync_error)))
            })
            .await?;
        answer.map_err(|error| self.connector_error(error))
    }

    /// Opens a snapshot; batches are pulled with [`Snapshot::next_batch`].
    /// The snapshot holds this plugin, so a hot reload never changes the
    /// code under a run in progress.
    pub async fn snapshot(
        self: &Arc<Self>,
        sandbox: &Sandbox,
        settings: &Settings,
        mode: Mode,
    ) -> Result<Snapshot, RunError> {
        let settings = self.resolve(settings)?;
        if matches!(mode, Mode::Delta(_)) && !self.info.has(Capability::DeltaReads) {
            return Err(self.connector_error(SyncError::BadSettings(
                "this connector does not support delta reads; run a full sync".into(),
            )));
        }
        let started = Instant::now();
        let (mut store, bound) = self.instantiate(sandbox).await?;
        let handle = self
            .guarded(&mut store, sandbox.limits.call_timeout, async |store| {
                Ok(per_version!(&bound, |b, m| b
                    .rostersync_connector_source()
                    .snapshot()
                    .call_constructor(store, &m::settings(&settings), &m::mode(&mode))
                    .await?))
            })
            .await?;
        let progress = store.data().progress();
        Ok(Snapshot {
            plugin: self.clone(),
            limits: sandbox.limits.clone(),
            deadline: started + sandbox.limits.snapshot_timeout,
            full: mode == Mode::Full,
            store,
            bound,
            handle,
            progress,
            records_read: 0,
            ledger: SnapshotLedger::default(),
            state: SnapshotState::Reading,
        })
    }

    fn resolve(&self, settings: &Settings) -> Result<Settings, RunError> {
        settings.resolved(&self.info).map_err(|missing| {
            self.connector_error(SyncError::BadSettings(format!(
                "the setting `{missing}` is required and has no value"
            )))
        })
    }

    fn connector_error(&self, error: SyncError) -> RunError {
        RunError::Connector {
            connector: self.name.clone(),
            error,
        }
    }

    async fn instantiate(&self, sandbox: &Sandbox) -> Result<(Store<RunState>, Bound), RunError> {
        let grant_drop_folder = self.info.has(Capability::DropFolder);
        // The only way preparing a sandbox fails is a drop folder that
        // cannot be opened: the operator's setting to fix.
        let mut store = guest::new_store(&self.shared, &self.name, sandbox, grant_drop_folder)
            .map_err(|e| {
                self.connector_error(SyncError::BadSettings(format!(
                    "the drop folder cannot be opened: {e:#}"
                )))
            })?;
        let bound = match &self.pre {
            Pre::V0_1(pre) => pre.instantiate_async(&mut store).await.map(Bound::V0_1),
            Pre::V0_2(pre) => pre.instantiate_async(&mut store).await.map(Bound::V0_2),
        };
        match bound {
            Ok(bound) => Ok((store, bound)),
            Err(error) => Err(guest::classify(
                &self.name,
                &store,
                error,
                sandbox.limits.call_timeout,
            )),
        }
    }

    /// Runs one call into the guest under its time limit; see
    /// [`guest::guarded`].
    async fn guarded<T>(
        &self,
        store: &mut Store<RunState>,
        limit: Duration,
        call: impl AsyncFnOnce(&mut Store<RunState>) -> wasmtime::Result<T>,
    ) -> Result<T, RunError> {
        guest::guarded(&self.name, store, limit, call).await
    }
}

/// The WIT version a component targets, read from its exports before it is
/// ever instantiated.
fn detect_version(compiled: &Compiled, path: &Path) -> Result<WitVersion, LoadError> {
    let Some(found) = compiled.version_of(SOURCE_INTERFACE) else {
        return Err(LoadError::NotAConnector {
            path: path.to_path_buf(),
            exports: compiled.exports_listed(),
        });
    };
    WitVersion::parse(found).ok_or_else(|| LoadError::UnsupportedVersion {
        path: path.to_path_buf(),
        found: found.to_string(),
        supported: WitVersion::ALL
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

enum SnapshotState {
    Reading,
    Complete,
    Failed,
}

/// One read of a provider in progress. Dropping it abandons the read.
pub struct Snapshot {
    plugin: Arc<Plugin>,
    limits: Limits,
    deadline: Instant,
    full: bool,
    store: Store<RunState>,
    bound: Bound,
    handle: ResourceAny,
    progress: watch::Receiver<Progress>,
    records_read: u64,
    ledger: SnapshotLedger,
    state: SnapshotState,
}

impl Snapshot {
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// Progress as the connector last reported it.
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.clone()
    }

    pub fn records_read(&self) -> u64 {
        self.records_read
    }

    /// The next batch, checked against the contract and the limits; `None`
    /// once the read is complete. After any error the snapshot is over.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<Record>>, RunError> {
        if !matches!(self.state, SnapshotState::Reading) {
            return Err(RunError::Ended {
                connector: self.plugin.name.clone(),
            });
        }
        let result = self.pull().await;
        self.state = match &result {
            Ok(Some(_)) => SnapshotState::Reading,
            Ok(None) => SnapshotState::Complete,
            Err(_) => SnapshotState::Failed,
        };
        result
    }

    /// The time the next call may take: its own limit, or what is left of
    /// the snapshot's, which is enforced here before every call however
    /// fast the calls are.
    fn next_call_limit(&self) -> Result<Duration, RunError> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(RunError::SnapshotTimeout {
                connector: self.plugin.name.clone(),
                limit: self.limits.snapshot_timeout,
            });
        }
        Ok(self.limits.call_timeout.min(remaining))
    }

    async fn pull(&mut self) -> Result<Option<Vec<Record>>, RunError> {
        // A connector that answers instantly still lets the executor run
        // the heartbeats and other runs between its batches.
        tokio::task::consume_budget().await;
        let limit = self.next_call_limit()?;
        let (bound, handle) = (&self.bound, self.handle);
        let answer = self
            .plugin
            .guarded(&mut self.store, limit, async |store| {
                Ok(per_version!(bound, |b, m| b
                    .rostersync_connector_source()
                    .snapshot()
                    .call_next(store, handle)
                    .await?
                    .map(|batch| batch
                        .map(|records| records.into_iter().map(m::record).collect::<Vec<_>>()))
                    .map_err(m::sync_error)))
            })
            .await?;
        let Some(converted) = answer.map_err(|error| self.plugin.connector_error(error))? else {
            return Ok(None);
        };
        self.check_batch(converted).map(Some)
    }

    fn check_batch(
        &mut self,
        converted: Vec<Result<Record, rostersync_model::MalformedRecord>>,
    ) -> Result<Vec<Record>, RunError> {
        let connector = || self.plugin.name.clone();
        if converted.len() > self.limits.max_batch_records {
            return Err(RunError::BatchTooLarge {
                connector: connector(),
                records: converted.len(),
                limit: self.limits.max_batch_records,
            });
        }
        let mut records = Vec::with_capacity(converted.len());
        for record in converted {
            let record = record
                .and_then(|r| check_record(&r).map(|()| r))
                .map_err(|error| RunError::Malformed {
                    connector: connector(),
                    error,
                })?;
            if self.full && matches!(record, Record::Removed(_)) {
                return Err(RunError::Malformed {
                    connector: connector(),
                    error: rostersync_model::MalformedRecord {
                        record: record.describe(),
                        field: "removed",
                        reason: "is only allowed in delta mode; a full read reports what exists"
                            .into(),
                    },
                });
            }
            let bytes = record.text_size();
            if bytes > self.limits.max_record_bytes {
                return Err(RunError::RecordTooLarge {
                    connector: connector(),
                    record: clip(&record.describe(), MAX_QUOTED_BYTES),
                    bytes,
                    limit: self.limits.max_record_bytes,
                });
            }
            let limit = self.limits.max_snapshot_bytes;
            self.ledger
                .admit(&record, limit)
                .map_err(|error| match error {
                    LedgerError::Duplicate(error) => RunError::Malformed {
                        connector: connector(),
                        error,
                    },
                    LedgerError::OverBudget { bytes } => RunError::SnapshotTooLarge {
                        connector: connector(),
                        bytes,
                        limit,
                    },
                })?;
            records.push(record);
        }
        self.records_read += records.len() as u64;
        Ok(records)
    }

    /// The cursor a later delta resumes from. Only a complete snapshot has
    /// one.
    pub async fn cursor(&mut self) -> Result<Option<String>, RunError> {
        if !matches!(self.state, SnapshotState::Complete) {
            return Err(RunError::Ended {
                connector: self.plugin.name.clone(),
            });
        }
        let limit = self.next_call_limit()?;
        let (bound, handle) = (&self.bound, self.handle);
        let cursor = self
            .plugin
            .guarded(&mut self.store, limit, async |store| {
                Ok(per_version!(bound, |b, m| b
                    .rostersync_connector_source()
                    .snapshot()
                    .call_cursor(store, handle)
                    .await?))
            })
            .await?;
        match cursor {
            Some(cursor) if cursor.len() > self.limits.max_cursor_bytes => {
                Err(RunError::CursorTooLarge {
                    connector: self.plugin.name.clone(),
                    bytes: cursor.len(),
                    limit: self.limits.max_cursor_bytes,
                })
            }
            cursor => Ok(cursor),
        }
    }
}
