//! Provisioning targets as plugins: a component exporting
//! `rostersync:target/sink` ([`TargetComponent`]), and the same component
//! with one target's settings and sandbox bound ([`TargetPlugin`]), which
//! is what the delivery engine drives through
//! [`rostersync_model::target::Target`].
//!
//! A target runs exactly as a connector does: a fresh store and instance
//! per call, wasi:http only, the allow-list from its base-url settings plus
//! the operator's extra hosts, the memory and time limits, the same HTTP
//! budgets. What it hands back is checked ([`crate::budget::check_results`],
//! [`crate::budget::check_page`]) and clipped before the host believes it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rostersync_model::target::{
    ChangeItem, ChangeResult, HeldPage, ObjectKind, Target, TargetCapability, TargetFuture,
    TargetInfo,
};
use rostersync_model::{Settings, SyncError};
use wasmtime::Store;

use crate::bindings::{SINK_INTERFACE, target_v0_1};
use crate::budget::{check_page, check_results};
use crate::cache::LoadSource;
use crate::error::{LoadError, RunError};
use crate::guest::{self, Compiled};
use crate::runtime::Shared;
use crate::sandbox::{RunState, Sandbox};

/// A target component in service. One contract version so far; a second
/// turns `pre` into one variant per version, as connectors have.
pub struct TargetComponent {
    /// The file stem: how `[[targets]]` name the plugin.
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
    /// The `rostersync:target` version it was built against.
    pub wit_version: &'static str,
    pub info: TargetInfo,
    pub loaded_from: LoadSource,
    pre: target_v0_1::TargetPre<RunState>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TargetComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetComponent")
            .field("name", &self.name)
            .field("sha256", &self.sha256)
            .field("wit_version", &self.wit_version)
            .finish_non_exhaustive()
    }
}

impl TargetComponent {
    /// Binds a compiled component to the target contract it exports and
    /// asks it who it is.
    pub(crate) async fn from_compiled(
        shared: Arc<Shared>,
        path: &Path,
        compiled: Compiled,
    ) -> Result<TargetComponent, LoadError> {
        let Some(found) = compiled.version_of(SINK_INTERFACE) else {
            return Err(LoadError::NotATarget {
                path: path.to_path_buf(),
                exports: compiled.exports_listed(),
            });
        };
        if found != target_v0_1::VERSION {
            return Err(LoadError::UnsupportedTargetVersion {
                path: path.to_path_buf(),
                found: found.to_string(),
                supported: target_v0_1::VERSION.to_string(),
            });
        }
        let link_error = guest::link_error(path);
        let instance_pre = shared
            .linker
            .instantiate_pre(&compiled.component)
            .map_err(&link_error)?;
        let pre = target_v0_1::TargetPre::new(instance_pre).map_err(&link_error)?;
        let mut component = TargetComponent {
            name: compiled.name,
            path: path.to_path_buf(),
            sha256: compiled.sha256,
            wit_version: target_v0_1::VERSION,
            info: TargetInfo {
                provider: String::new(),
                version: String::new(),
                description: String::new(),
                settings: Vec::new(),
                capabilities: Vec::new(),
            },
            loaded_from: compiled.loaded_from,
            pre,
            shared,
        };
        let sandbox = guest::describe_sandbox();
        component.info = component
            .call(&sandbox, async |bound, store| {
                Ok(target_v0_1::target_info(
                    bound.rostersync_target_sink().call_describe(store).await?,
                ))
            })
            .await
            .map_err(|error| LoadError::Describe {
                path: path.to_path_buf(),
                error: Box::new(error),
            })?;
        Ok(component)
    }

    /// "Test connection": what these settings reach, in one sentence.
    pub async fn check(&self, sandbox: &Sandbox, settings: &Settings) -> Result<String, RunError> {
        let settings = target_v0_1::settings(&self.resolve(settings)?);
        let answer = self
            .call(sandbox, async |bound, store| {
                bound
                    .rostersync_target_sink()
                    .call_check(store, &settings)
                    .await
            })
            .await?;
        answer.map_err(|error| self.target_error(target_v0_1::target_error(error)))
    }

    /// Applies `batch` in order; one result per change the target got to,
    /// checked against the batch.
    pub async fn apply(
        &self,
        sandbox: &Sandbox,
        settings: &Settings,
        batch: &[ChangeItem],
    ) -> Result<Vec<ChangeResult>, RunError> {
        let settings = target_v0_1::settings(&self.resolve(settings)?);
        let items: Vec<_> = batch.iter().map(target_v0_1::change_item).collect();
        let answer = self
            .call(sandbox, async |bound, store| {
                bound
                    .rostersync_target_sink()
                    .call_apply(store, &settings, &items)
                    .await
            })
            .await?;
        let results: Vec<ChangeResult> = answer
            .map_err(|error| self.target_error(target_v0_1::target_error(error)))?
            .into_iter()
            .map(target_v0_1::change_result)
            .collect();
        check_results(batch, &results).map_err(|error| RunError::Malformed {
            connector: self.name.clone(),
            error,
        })?;
        Ok(results)
    }

    /// One page of what the target's system holds.
    pub async fn read(
        &self,
        sandbox: &Sandbox,
        settings: &Settings,
        kind: ObjectKind,
        cursor: Option<&str>,
    ) -> Result<HeldPage, RunError> {
        if !self.info.has(TargetCapability::ReadBack) {
            return Err(self.target_error(SyncError::BadSettings(
                "this target cannot read back what its system holds".into(),
            )));
        }
        let settings = target_v0_1::settings(&self.resolve(settings)?);
        let answer = self
            .call(sandbox, async |bound, store| {
                bound
                    .rostersync_target_sink()
                    .call_read(store, &settings, target_v0_1::object_kind(kind), cursor)
                    .await
            })
            .await?;
        let page = target_v0_1::page(
            answer.map_err(|error| self.target_error(target_v0_1::target_error(error)))?,
        );
        let limits = &sandbox.limits;
        if page.objects.len() > limits.max_batch_records {
            return Err(RunError::BatchTooLarge {
                connector: self.name.clone(),
                records: page.objects.len(),
                limit: limits.max_batch_records,
            });
        }
        if let Some(next) = &page.next
            && next.len() > limits.max_cursor_bytes
        {
            return Err(RunError::CursorTooLarge {
                connector: self.name.clone(),
                bytes: next.len(),
                limit: limits.max_cursor_bytes,
            });
        }
        check_page(&page, cursor).map_err(|error| RunError::Malformed {
            connector: self.name.clone(),
            error,
        })?;
        Ok(page)
    }

    fn resolve(&self, settings: &Settings) -> Result<Settings, RunError> {
        settings
            .resolved_by(&self.info.settings)
            .map_err(|missing| {
                self.target_error(SyncError::BadSettings(format!(
                    "the setting `{missing}` is required and has no value"
                )))
            })
    }

    fn target_error(&self, error: SyncError) -> RunError {
        RunError::Connector {
            connector: self.name.clone(),
            error,
        }
    }

    /// One guarded call on a fresh instance.
    async fn call<T>(
        &self,
        sandbox: &Sandbox,
        call: impl AsyncFnOnce(&target_v0_1::Target, &mut Store<RunState>) -> wasmtime::Result<T>,
    ) -> Result<T, RunError> {
        let limit = sandbox.limits.call_timeout;
        // Targets are never granted a folder; a store without one cannot
        // fail to open it.
        let mut store = guest::new_store(&self.shared, &self.name, sandbox, false)
            .expect("a store without a drop folder always opens");
        let bound = match self.pre.instantiate_async(&mut store).await {
            Ok(bound) => bound,
            Err(error) => return Err(guest::classify(&self.name, &store, error, limit)),
        };
        guest::guarded(&self.name, &mut store, limit, async |store| {
            call(&bound, store).await
        })
        .await
    }
}

/// A target component with one target's settings and sandbox bound: the
/// [`Target`] the delivery engine drives. Cheap to clone.
#[derive(Clone)]
pub struct TargetPlugin {
    component: Arc<TargetComponent>,
    settings: Settings,
    sandbox: Sandbox,
}

impl std::fmt::Debug for TargetPlugin {
    /// Never shows the settings: they hold secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetPlugin")
            .field("component", &self.component)
            .finish_non_exhaustive()
    }
}

impl TargetPlugin {
    /// Binds `settings` (completed by the target's defaults) and `sandbox`
    /// (usually [`Sandbox::for_target`]). Fails, naming the setting, when a
    /// required one has no value.
    pub fn new(
        component: Arc<TargetComponent>,
        settings: &Settings,
        sandbox: Sandbox,
    ) -> Result<TargetPlugin, SyncError> {
        let settings = settings
            .resolved_by(&component.info.settings)
            .map_err(|missing| {
                SyncError::BadSettings(format!(
                    "target {}: the setting `{missing}` is required and has no value",
                    component.name
                ))
            })?;
        Ok(TargetPlugin {
            component,
            settings,
            sandbox,
        })
    }

    pub fn component(&self) -> &Arc<TargetComponent> {
        &self.component
    }
}

/// A target call's failure as the delivery engine sees it: the target's own
/// typed error as it is; a call that ran out of time as `unavailable`, to
/// be sent again later; anything else the target did wrong (a crash, its
/// memory limit, a request outside its allowed hosts, an answer that breaks
/// the contract) as `bad-response`. The sentence names the target.
fn delivery_error(error: RunError) -> SyncError {
    // The runtime's messages begin with the plugin's kind and name.
    let said = |e: &RunError| e.to_string().replacen("connector ", "target ", 1);
    match error {
        RunError::Connector { error, .. } => error,
        RunError::Timeout { .. } => SyncError::Unavailable(said(&error)),
        other => SyncError::BadResponse(said(&other)),
    }
}

impl Target for TargetPlugin {
    fn info(&self) -> &TargetInfo {
        &self.component.info
    }

    fn check(&self) -> TargetFuture<'_, String> {
        Box::pin(async move {
            self.component
                .check(&self.sandbox, &self.settings)
                .await
                .map_err(delivery_error)
        })
    }

    fn apply(&self, batch: Vec<ChangeItem>) -> TargetFuture<'_, Vec<ChangeResult>> {
        Box::pin(async move {
            self.component
                .apply(&self.sandbox, &self.settings, &batch)
                .await
                .map_err(delivery_error)
        })
    }

    fn read(&self, kind: ObjectKind, cursor: Option<String>) -> TargetFuture<'_, HeldPage> {
        Box::pin(async move {
            self.component
                .read(&self.sandbox, &self.settings, kind, cursor.as_deref())
                .await
                .map_err(delivery_error)
        })
    }
}
