//! Replaying a provider's recorded responses through a built connector:
//! the conformance suite's [`Replayer`] answers every request from a
//! committed fixture file and refuses any request the file does not hold,
//! so a test reads exactly what the provider once sent.

use std::path::Path;
use std::sync::Arc;

use rostersync_conformance::fixtures::Replayer;
use rostersync_model::{Mode, SchoolInfo, Settings};
use rostersync_runtime::{Interceptor, Limits, Plugin, RunError, Sandbox, Snapshot};

use crate::runtime_with;

/// A workspace connector wired to one fixture file.
pub struct Replay {
    pub plugin: Arc<Plugin>,
    pub settings: Settings,
    replayer: Arc<Replayer>,
    _plugin_dir: tempfile::TempDir,
}

impl Replay {
    /// Loads `connector` and the fixture at `fixture` (a path under the
    /// workspace), to run with `settings`.
    pub async fn load(connector: &str, fixture: &Path, settings: Settings) -> Self {
        crate::init_logs();
        let (dir, runtime) = runtime_with(&[connector]).await;
        let plugin = runtime
            .plugin(connector)
            .unwrap_or_else(|| panic!("the {connector} connector loads"));
        let replayer = Replayer::load(&crate::workspace().join(fixture))
            .unwrap_or_else(|e| panic!("the fixture loads: {e}"));
        Self {
            plugin,
            settings,
            replayer: Arc::new(replayer),
            _plugin_dir: dir,
        }
    }

    fn sandbox(&self) -> Sandbox {
        Sandbox::for_connection(&self.plugin.info, &self.settings, &[], Limits::default())
            .expect("the recorded base URLs are valid")
            .with_interceptor(self.replayer.clone() as Arc<dyn Interceptor>)
    }

    /// Opens a snapshot, to pull batches by hand.
    pub async fn open(&self, mode: Mode) -> Result<Snapshot, RunError> {
        self.plugin
            .snapshot(&self.sandbox(), &self.settings, mode)
            .await
    }

    /// "Test connection" against the recording.
    pub async fn check(&self) -> Result<SchoolInfo, RunError> {
        self.plugin.check(&self.sandbox(), &self.settings).await
    }

    /// The recorded interactions no request asked for.
    pub fn unused(&self) -> Vec<String> {
        self.replayer.unused()
    }
}
