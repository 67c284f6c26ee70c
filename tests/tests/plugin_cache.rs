//! The compiled-code cache cannot be used to slip native code into the
//! host: it lives in the host's state directory, not the plugin folder; a
//! key or cache folder another user owns or may write makes the host
//! ignore the cache and compile afresh; an artifact signed with another
//! key, or one plugin's artifact renamed to another plugin, is never
//! loaded.

use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};

use rostersync_runtime::{LoadSource, Runtime, RuntimeConfig};
use rostersync_tests::install;

/// A plugin folder and, beside it, the host's state directory.
struct HostDirs {
    _root: tempfile::TempDir,
    plugins: PathBuf,
    state: PathBuf,
}

impl HostDirs {
    fn with(connectors: &[&str]) -> Self {
        let root = tempfile::tempdir().unwrap();
        let plugins = root.path().join("plugins");
        for connector in connectors {
            install(&plugins, connector, connector);
        }
        Self {
            plugins,
            state: root.path().join("state"),
            _root: root,
        }
    }

    fn config(&self) -> RuntimeConfig {
        RuntimeConfig::new(&self.plugins, &self.state)
    }

    fn cache(&self) -> PathBuf {
        self.config().cache_dir
    }

    /// Starts a host over the folders; where each plugin's code came from.
    async fn start(&self) -> Runtime {
        let runtime = Runtime::new(self.config()).unwrap();
        runtime.scan().await.unwrap();
        runtime
    }

    /// The cached artifact of `plugin`.
    fn artifact(&self, plugin: &str) -> PathBuf {
        std::fs::read_dir(self.cache())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.extension().is_some_and(|e| e == "cwasm")
                    && file_name(p).starts_with(&format!("{plugin}-"))
            })
            .unwrap_or_else(|| panic!("no cached artifact for {plugin}"))
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn loaded_from(runtime: &Runtime, plugin: &str) -> LoadSource {
    runtime
        .plugin(plugin)
        .unwrap_or_else(|| panic!("{plugin} is in service"))
        .loaded_from
}

/// What a test does to a warm cache before the host starts again.
type Spoil = fn(&HostDirs);

/// Someone other than the host's user (the suites run as root in CI;
/// as anyone else `chown` is refused and the test says so).
const NOBODY: u32 = 65534;

#[tokio::test]
async fn the_cache_and_its_key_live_in_the_state_directory_not_the_plugin_folder() {
    let dirs = HostDirs::with(&["probe"]);
    let first = dirs.start().await;
    assert_eq!(loaded_from(&first, "probe"), LoadSource::Compiled);
    drop(first);
    assert!(dirs.cache().starts_with(&dirs.state));
    assert!(dirs.cache().join("host.key").exists());
    let key_mode = std::fs::metadata(dirs.cache().join("host.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    let in_plugins: Vec<String> = std::fs::read_dir(&dirs.plugins)
        .unwrap()
        .map(|e| file_name(&e.unwrap().path()))
        .collect();
    assert_eq!(in_plugins, ["probe.wasm"], "nothing but the plugin");
    assert_eq!(loaded_from(&dirs.start().await, "probe"), LoadSource::Cache);
}

#[tokio::test]
async fn a_cache_forged_with_another_key_is_never_loaded() {
    let dirs = HostDirs::with(&["probe"]);
    drop(dirs.start().await);
    // Another host, with its own key, compiles the template: its
    // artifact is put where this host keeps the probe's.
    let attacker = HostDirs::with(&["probe", "template"]);
    drop(attacker.start().await);
    std::fs::copy(attacker.artifact("template"), dirs.artifact("probe")).unwrap();
    let runtime = dirs.start().await;
    assert_eq!(loaded_from(&runtime, "probe"), LoadSource::Compiled);
    assert_eq!(runtime.plugin("probe").unwrap().info.provider, "Probe");

    // A whole cache (key and artifacts) dropped into the plugin folder,
    // where the cache used to live, is never read.
    std::fs::remove_file(dirs.artifact("probe")).unwrap();
    let planted = dirs.plugins.join(".cache");
    std::fs::create_dir_all(&planted).unwrap();
    for entry in std::fs::read_dir(attacker.cache()).unwrap() {
        let path = entry.unwrap().path();
        let name = file_name(&path).replace("template-", "probe-");
        std::fs::copy(&path, planted.join(name)).unwrap();
    }
    let runtime = dirs.start().await;
    assert_eq!(loaded_from(&runtime, "probe"), LoadSource::Compiled);
    assert_eq!(runtime.plugin("probe").unwrap().info.provider, "Probe");
}

#[tokio::test]
async fn one_plugins_artifact_renamed_to_another_plugin_is_rejected() {
    let dirs = HostDirs::with(&["probe", "template"]);
    drop(dirs.start().await);
    // Signed by this host, but for the template: renamed to the probe's
    // name, it must not serve as the probe.
    let template = dirs.artifact("template");
    let probe = dirs.artifact("probe");
    std::fs::rename(&template, &probe).unwrap();
    let runtime = dirs.start().await;
    assert_eq!(loaded_from(&runtime, "probe"), LoadSource::Compiled);
    let summary = runtime
        .statuses()
        .into_iter()
        .find(|s| s.name == "probe")
        .unwrap()
        .summary();
    assert_eq!(summary.provider.as_deref(), Some("Probe"));
}

#[tokio::test]
async fn a_key_or_cache_another_user_owns_or_may_change_is_ignored() {
    let key = |dirs: &HostDirs| dirs.cache().join("host.key");
    let cases: [(&str, Spoil); 4] = [
        ("a key another user owns", |dirs| {
            chown(dirs.cache().join("host.key"), Some(NOBODY), None)
                .expect("the suite runs as root, so it can give a file away");
        }),
        ("a key others may read", |dirs| {
            let key = dirs.cache().join("host.key");
            std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o644)).unwrap();
        }),
        ("a cache folder others may write", |dirs| {
            std::fs::set_permissions(dirs.cache(), std::fs::Permissions::from_mode(0o777)).unwrap();
        }),
        ("a cache folder another user owns", |dirs| {
            chown(dirs.cache(), Some(NOBODY), None).unwrap();
        }),
    ];
    for (case, spoil) in cases {
        let dirs = HostDirs::with(&["probe"]);
        drop(dirs.start().await);
        assert!(key(&dirs).exists());
        spoil(&dirs);
        let runtime = dirs.start().await;
        assert_eq!(
            loaded_from(&runtime, "probe"),
            LoadSource::Compiled,
            "{case}: the cache is ignored"
        );
    }
    // An artifact another user may write is ignored too.
    let dirs = HostDirs::with(&["probe"]);
    drop(dirs.start().await);
    let artifact = dirs.artifact("probe");
    std::fs::set_permissions(&artifact, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert_eq!(
        loaded_from(&dirs.start().await, "probe"),
        LoadSource::Compiled
    );
}
