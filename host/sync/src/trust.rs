//! Which build of a connector plugin runs with a connection's secrets.
//! The first build a connector runs with is accepted on first use (the
//! operator who put it in the folder and configured the connection chose
//! it); a different file under the same name is new code, and its
//! connections' runs are refused, naming both builds, until an operator
//! accepts it (`rostersync plugins accept`, the API, the dashboard).

use chrono::Utc;
use rostersync_runtime::{Plugin, PluginStatus, PluginSummary, RunError, Runtime};
use rostersync_store::{AcceptedPlugin, AuditEntry, Store};

use crate::SyncError;

/// A plugin build as the host identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginBuild {
    pub connector: String,
    pub sha256: String,
    pub version: String,
}

impl PluginBuild {
    pub fn of(plugin: &Plugin) -> Self {
        Self {
            connector: plugin.name.clone(),
            sha256: plugin.sha256.clone(),
            version: plugin.info.version.clone(),
        }
    }

    fn shown(sha256: &str, version: &str) -> String {
        format!(
            "version {version}, sha256 {}…",
            sha256.get(..12).unwrap_or(sha256)
        )
    }
}

/// What accepting a build did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// It was accepted before.
    Already,
    /// It is accepted now, replacing this build (none on first use).
    Now { replaced: Option<AcceptedPlugin> },
}

/// Accepts `build` for its connector, audited as `by`'s.
pub async fn accept_plugin(
    store: &Store,
    build: &PluginBuild,
    by: &str,
) -> Result<Accepted, SyncError> {
    let before = store.accepted_plugin(&build.connector).await?;
    accept_over(store, build, by, before).await
}

/// Accepts `build` over `before`, the build accepted until now.
async fn accept_over(
    store: &Store,
    build: &PluginBuild,
    by: &str,
    before: Option<AcceptedPlugin>,
) -> Result<Accepted, SyncError> {
    if before.as_ref().is_some_and(|b| b.sha256 == build.sha256) {
        return Ok(Accepted::Already);
    }
    let now = Utc::now();
    let shown = PluginBuild::shown(&build.sha256, &build.version);
    let detail = match &before {
        None => format!("accepted {shown} on first use"),
        Some(b) => format!(
            "accepted {shown}, replacing {}",
            PluginBuild::shown(&b.sha256, &b.version)
        ),
    };
    store
        .accept_plugin(
            &AcceptedPlugin {
                connector: build.connector.clone(),
                sha256: build.sha256.clone(),
                version: build.version.clone(),
                accepted_at: now,
                accepted_by: by.to_string(),
            },
            &AuditEntry {
                at: now,
                actor: by.to_string(),
                action: "plugin.accept".into(),
                connection: None,
                subject: format!("plugin {}", build.connector),
                detail,
            },
        )
        .await?;
    Ok(Accepted::Now { replaced: before })
}

/// Whether `build` may run: accepted on first use, refused (as the run's
/// error) when another build of its connector was accepted.
pub async fn vouch(store: &Store, build: &PluginBuild) -> Result<Option<RunError>, SyncError> {
    match store.accepted_plugin(&build.connector).await? {
        None => {
            accept_over(store, build, "first use", None).await?;
            Ok(None)
        }
        Some(accepted) if accepted.sha256 == build.sha256 => Ok(None),
        Some(accepted) => Ok(Some(RunError::NotAccepted {
            connector: build.connector.clone(),
            accepted: PluginBuild::shown(&accepted.sha256, &accepted.version),
            found: PluginBuild::shown(&build.sha256, &build.version),
        })),
    }
}

/// A connector plugin as the dashboard, the API and `plugins list` show
/// it: the file in service, and the build accepted for its connector.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginView {
    #[serde(flatten)]
    pub summary: PluginSummary,
    pub accepted: Option<AcceptedPlugin>,
    /// The file in service is not the accepted build: its connections'
    /// runs are refused until an operator accepts it.
    pub awaiting_acceptance: bool,
}

/// Every connector plugin the runtime knows, with what was accepted.
pub async fn plugin_views(store: &Store, runtime: &Runtime) -> Result<Vec<PluginView>, SyncError> {
    let mut views = Vec::new();
    for status in runtime.statuses() {
        let summary = PluginStatus::summary(&status);
        let accepted = store.accepted_plugin(&summary.name).await?;
        let awaiting_acceptance = match (&accepted, &summary.sha256) {
            (Some(accepted), Some(found)) => &accepted.sha256 != found,
            _ => false,
        };
        views.push(PluginView {
            summary,
            accepted,
            awaiting_acceptance,
        });
    }
    Ok(views)
}

/// Why accepting the plugin in service under a name could not be done.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("there is no connector plugin {0:?} in service")]
    NotInService(String),
    #[error(
        "plugin {name} in service is sha256 {found}, not the {reviewed} reviewed: it changed again; review it and accept it by its sha256"
    )]
    NotReviewed {
        name: String,
        reviewed: String,
        found: String,
    },
    #[error(transparent)]
    Sync(#[from] SyncError),
}

/// Accepts the plugin in service under `name`; when `reviewed` names a
/// sha256, only if that is still the file in service.
pub async fn accept_in_service(
    store: &Store,
    runtime: &Runtime,
    name: &str,
    reviewed: Option<&str>,
    by: &str,
) -> Result<(PluginBuild, Accepted), AcceptError> {
    let plugin = runtime
        .plugin(name)
        .ok_or_else(|| AcceptError::NotInService(name.to_string()))?;
    let build = PluginBuild::of(&plugin);
    if let Some(reviewed) = reviewed
        && reviewed != build.sha256
    {
        return Err(AcceptError::NotReviewed {
            name: name.to_string(),
            reviewed: reviewed.to_string(),
            found: build.sha256,
        });
    }
    let accepted = accept_plugin(store, &build, by).await?;
    Ok((build, accepted))
}
