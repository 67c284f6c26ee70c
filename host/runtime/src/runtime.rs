//! The runtime: one engine, one linker, the artifact cache, and the plugin
//! registry kept in step with the plugin folder (hot reload included).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine};

use crate::bindings::{SINK_INTERFACE, target_v0_1, v0_1, v0_2};
use crate::cache::{ArtifactCache, sha256_hex};
use crate::error::LoadError;
use crate::guest;
use crate::plugin::{EPOCH_TICK, Plugin, plugin_name};
use crate::sandbox::RunState;
use crate::target::TargetComponent;

/// Where the runtime finds plugins and keeps compiled code, and what it
/// spends on loading one.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub plugin_dir: PathBuf,
    pub cache_dir: PathBuf,
    /// Size of a plugin file, checked before it is read.
    pub max_plugin_bytes: u64,
    /// Time compiling one plugin may take.
    pub compile_timeout: Duration,
}

/// A plugin file's size limit when nothing says otherwise: the provider
/// connectors build to well under a megabyte.
pub const DEFAULT_MAX_PLUGIN_BYTES: u64 = 64 << 20;
/// Compilation time allowed when nothing says otherwise: a connector
/// compiles in about a second on a debug build.
pub const DEFAULT_COMPILE_TIMEOUT: Duration = Duration::from_secs(60);

impl RuntimeConfig {
    /// `plugins/` with its compiled code cached in the host's state
    /// directory ([`crate::default_state_dir`]).
    pub fn in_folder(plugin_dir: impl Into<PathBuf>) -> Self {
        Self::new(plugin_dir, crate::default_state_dir())
    }

    /// `plugins/` with its compiled code cached in
    /// `state_dir/plugin-cache/`, outside the plugin folder.
    pub fn new(plugin_dir: impl Into<PathBuf>, state_dir: impl AsRef<Path>) -> Self {
        Self {
            plugin_dir: plugin_dir.into(),
            cache_dir: state_dir.as_ref().join("plugin-cache"),
            max_plugin_bytes: DEFAULT_MAX_PLUGIN_BYTES,
            compile_timeout: DEFAULT_COMPILE_TIMEOUT,
        }
    }
}

pub(crate) struct Shared {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<RunState>,
    pub(crate) cache: ArtifactCache,
    pub(crate) compile_timeout: Duration,
}

/// What the registry knows about one plugin file.
#[derive(Debug, Clone)]
pub struct PluginStatus {
    pub name: String,
    /// The version in service, if any.
    pub plugin: Option<Arc<Plugin>>,
    /// Why the file as it is now could not be loaded. With `plugin` set,
    /// the previous good version stays in service.
    pub error: Option<LoadError>,
}

/// One plugin file as the plugin lists show it (command line and
/// dashboard).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PluginSummary {
    pub name: String,
    pub provider: Option<String>,
    pub version: Option<String>,
    pub wit: Option<String>,
    pub sha256: Option<String>,
    pub status: String,
    /// Whether a version of the file is in service.
    pub in_service: bool,
}

impl PluginStatus {
    pub fn summary(&self) -> PluginSummary {
        let plugin = self.plugin.as_deref();
        PluginSummary {
            name: self.name.clone(),
            provider: plugin.map(|p| p.info.provider.clone()),
            version: plugin.map(|p| p.info.version.clone()),
            wit: plugin.map(|p| p.wit_version.to_string()),
            sha256: plugin.map(|p| p.sha256.clone()),
            status: match (plugin, &self.error) {
                (Some(_), None) => "in service".into(),
                (Some(_), Some(error)) => format!("in service; the newer file failed: {error}"),
                (None, Some(error)) => format!("failed: {error}"),
                (None, None) => "not loaded".into(),
            },
            in_service: plugin.is_some(),
        }
    }
}

/// A file of the plugin folder, loaded as whichever kind it exports.
enum Loaded {
    Connector(Plugin),
    Target(TargetComponent),
}

#[derive(Default)]
struct Slot {
    /// The connector in service, or
    plugin: Option<Arc<Plugin>>,
    /// the target in service.
    target: Option<Arc<TargetComponent>>,
    error: Option<LoadError>,
    /// The sha256 of the file content last tried, loaded or not, so an
    /// unchanged broken file is not retried on every scan.
    tried_sha256: Option<String>,
}

/// The plugin host.
#[derive(Clone)]
pub struct Runtime {
    shared: Arc<Shared>,
    config: RuntimeConfig,
    slots: Arc<RwLock<BTreeMap<String, Slot>>>,
    /// Serialises scans so two reloads never race on one slot.
    scanning: Arc<tokio::sync::Mutex<()>>,
}

/// Wraps `wasi:filesystem/preopens.get-directories`, which a guest's C
/// library calls on its first path operation, so that a connector that
/// tries to use files it was not given is reported (the answer is the
/// same: the folders granted, if any).
fn report_file_lookups(linker: &mut Linker<RunState>) -> anyhow::Result<()> {
    use wasmtime_wasi::filesystem::WasiFilesystemView;
    use wasmtime_wasi::p2::bindings::filesystem::preopens::Host;
    linker.allow_shadowing(true);
    linker
        .instance("wasi:filesystem/preopens@0.2.12")?
        .func_wrap(
            "get-directories",
            |mut store: wasmtime::StoreContextMut<'_, RunState>, (): ()| {
                let state = store.data_mut();
                state.looked_for_files();
                Ok((state.filesystem().get_directories()?,))
            },
        )?;
    linker.allow_shadowing(false);
    Ok(())
}

impl Runtime {
    /// Creates the engine (epoch interruption on, a ticker thread driving
    /// it) and opens the cache. Loads nothing until [`Runtime::scan`].
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Self> {
        let mut engine_config = Config::new();
        engine_config.wasm_component_model(true);
        engine_config.epoch_interruption(true);
        let engine = Engine::new(&engine_config)?;
        spawn_epoch_ticker(&engine);

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        report_file_lookups(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        v0_1::Connector::add_to_linker::<_, HasSelf<RunState>>(&mut linker, |s| s)?;
        v0_2::Connector::add_to_linker::<_, HasSelf<RunState>>(&mut linker, |s| s)?;
        target_v0_1::Target::add_to_linker::<_, HasSelf<RunState>>(&mut linker, |s| s)?;

        let cache = ArtifactCache::open(&config.cache_dir, &engine).map_err(|e| {
            anyhow::anyhow!(
                "cannot use {} as the plugin cache: {e}",
                config.cache_dir.display()
            )
        })?;
        Ok(Self {
            shared: Arc::new(Shared {
                engine,
                linker,
                cache,
                compile_timeout: config.compile_timeout,
            }),
            config,
            slots: Arc::default(),
            scanning: Arc::default(),
        })
    }

    pub fn plugin_dir(&self) -> &Path {
        &self.config.plugin_dir
    }

    /// Loads one file without putting it into service (`plugins check`).
    pub async fn load_file(&self, path: &Path) -> Result<Plugin, LoadError> {
        let wasm = read_plugin_file(path, self.config.max_plugin_bytes)?;
        Plugin::load(self.shared.clone(), path, wasm).await
    }

    /// Loads one target component without putting it into service
    /// (`target test`).
    pub async fn load_target_file(&self, path: &Path) -> Result<TargetComponent, LoadError> {
        let wasm = read_plugin_file(path, self.config.max_plugin_bytes)?;
        let compiled = guest::compile(&self.shared, path, wasm).await?;
        TargetComponent::from_compiled(self.shared.clone(), path, compiled).await
    }

    /// The target component in service under `name`.
    pub fn target(&self, name: &str) -> Option<Arc<TargetComponent>> {
        self.slots
            .read()
            .expect("slots lock")
            .get(name)?
            .target
            .clone()
    }

    /// Every target component in service.
    pub fn targets(&self) -> Vec<Arc<TargetComponent>> {
        self.slots
            .read()
            .expect("slots lock")
            .values()
            .filter_map(|slot| slot.target.clone())
            .collect()
    }

    /// The plugin in service under `name`.
    pub fn plugin(&self, name: &str) -> Option<Arc<Plugin>> {
        self.slots
            .read()
            .expect("slots lock")
            .get(name)?
            .plugin
            .clone()
    }

    /// Every connector file the registry knows, by name (targets are
    /// listed by [`Runtime::targets`]).
    pub fn statuses(&self) -> Vec<PluginStatus> {
        self.slots
            .read()
            .expect("slots lock")
            .iter()
            .filter(|(_, slot)| slot.target.is_none())
            .map(|(name, slot)| PluginStatus {
                name: name.clone(),
                plugin: slot.plugin.clone(),
                error: slot.error.clone(),
            })
            .collect()
    }

    /// Brings the registry in step with the plugin folder: loads new and
    /// changed files, drops removed ones. A file that fails to load leaves
    /// the previous good version in service. Runs in progress hold their
    /// own `Arc<Plugin>`, so they finish on the version they started with.
    pub async fn scan(&self) -> anyhow::Result<()> {
        let _one_at_a_time = self.scanning.lock().await;
        std::fs::create_dir_all(&self.config.plugin_dir)?;
        let mut present = BTreeMap::new();
        for entry in std::fs::read_dir(&self.config.plugin_dir)? {
            let entry = entry?;
            let path = entry.path();
            // Not following links: a link named *.wasm is listed, and
            // refused when it is read.
            let listed = entry.file_type()?;
            if path.extension().is_some_and(|e| e == "wasm") && !listed.is_dir() {
                let name = plugin_name(&path).unwrap_or_else(|| path.display().to_string());
                present.insert(name, path);
            }
        }
        self.slots
            .write()
            .expect("slots lock")
            .retain(|name, _| present.contains_key(name));
        for (name, path) in present {
            self.refresh(&name, &path).await;
        }
        Ok(())
    }

    async fn refresh(&self, name: &str, path: &Path) {
        let wasm = match read_plugin_file(path, self.config.max_plugin_bytes) {
            Ok(wasm) => wasm,
            Err(error) => {
                self.slots
                    .write()
                    .expect("slots lock")
                    .entry(name.into())
                    .or_default()
                    .error = Some(error);
                return;
            }
        };
        let sha256 = sha256_hex(&wasm);
        let unchanged = self
            .slots
            .read()
            .expect("slots lock")
            .get(name)
            .is_some_and(|slot| slot.tried_sha256.as_deref() == Some(sha256.as_str()));
        if unchanged {
            return;
        }
        let loaded = self.load_any(path, wasm).await;
        let mut slots = self.slots.write().expect("slots lock");
        let slot = slots.entry(name.into()).or_default();
        slot.tried_sha256 = Some(sha256);
        match loaded {
            Ok(Loaded::Connector(plugin)) => {
                tracing::info!(plugin = name, version = %plugin.info.version, wit = %plugin.wit_version, source = ?plugin.loaded_from, "plugin in service");
                slot.plugin = Some(Arc::new(plugin));
                slot.target = None;
                slot.error = None;
            }
            Ok(Loaded::Target(target)) => {
                tracing::info!(plugin = name, version = %target.info.version, wit = %target.wit_version, source = ?target.loaded_from, "target plugin in service");
                slot.target = Some(Arc::new(target));
                slot.plugin = None;
                slot.error = None;
            }
            Err(error) => {
                tracing::error!(plugin = name, %error, kept_previous = slot.plugin.is_some(), "plugin failed to load");
                slot.error = Some(error);
            }
        }
    }

    /// Compiles a file once and binds it to the contract it exports: a
    /// target's sink, else a connector's source (whose errors name what a
    /// connector lacks).
    async fn load_any(&self, path: &Path, wasm: Vec<u8>) -> Result<Loaded, LoadError> {
        let compiled = guest::compile(&self.shared, path, wasm).await?;
        if compiled.version_of(SINK_INTERFACE).is_some() {
            TargetComponent::from_compiled(self.shared.clone(), path, compiled)
                .await
                .map(Loaded::Target)
        } else {
            Plugin::from_compiled(self.shared.clone(), path, compiled)
                .await
                .map(Loaded::Connector)
        }
    }

    /// Watches the plugin folder and rescans on every change until the
    /// returned guard is dropped.
    pub fn watch(&self) -> anyhow::Result<WatchGuard> {
        std::fs::create_dir_all(&self.config.plugin_dir)?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok() {
                    let _ = tx.send(());
                }
            })?;
        watcher.watch(&self.config.plugin_dir, RecursiveMode::NonRecursive)?;
        let runtime = self.clone();
        let task = tokio::spawn(async move {
            while rx.recv().await.is_some() {
                // A copy into the folder arrives as several events; let it
                // settle, then scan once for all of them.
                tokio::time::sleep(Duration::from_millis(150)).await;
                while rx.try_recv().is_ok() {}
                if let Err(error) = runtime.scan().await {
                    tracing::error!(%error, "plugin folder scan failed");
                }
            }
        });
        Ok(WatchGuard {
            _watcher: watcher,
            task,
        })
    }
}

/// Reads a plugin file after checking, without following links, that it
/// is a regular file within `max_bytes`; the read itself stops there too,
/// should the file grow in between.
fn read_plugin_file(path: &Path, max_bytes: u64) -> Result<Vec<u8>, LoadError> {
    let read_error = |e: std::io::Error| LoadError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let kind = std::fs::symlink_metadata(path).map_err(read_error)?;
    let what = if kind.file_type().is_symlink() {
        Some("a symbolic link")
    } else if !kind.is_file() {
        Some("a device, socket or folder")
    } else {
        None
    };
    if let Some(what) = what {
        return Err(LoadError::NotARegularFile {
            path: path.to_path_buf(),
            what,
        });
    }
    let too_large = |bytes| LoadError::TooLarge {
        path: path.to_path_buf(),
        bytes,
        limit: max_bytes,
    };
    if kind.len() > max_bytes {
        return Err(too_large(kind.len()));
    }
    let mut wasm = Vec::with_capacity(kind.len() as usize);
    std::fs::File::open(path)
        .map_err(read_error)?
        .take(max_bytes + 1)
        .read_to_end(&mut wasm)
        .map_err(read_error)?;
    if wasm.len() as u64 > max_bytes {
        return Err(too_large(wasm.len() as u64));
    }
    Ok(wasm)
}

/// Keeps the plugin folder watched while it lives.
pub struct WatchGuard {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Advances the engine's epoch every tick, so a guest stuck computing hits
/// its deadline. Stops when the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("rostersync-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}
