//! What the store-backed commands share: the configuration file, the store
//! it (or `ROSTERSYNC_STORE`) names, and the plugin folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use rostersync_config::Config;
use rostersync_runtime::{Limits, Plugin};
use rostersync_store::Store;
use rostersync_sync::{ConnectionConfig, PluginSource};

use crate::plugins::open_runtime;

pub struct Context {
    pub config_file: PathBuf,
    pub config: Config,
    pub plugin_dir: PathBuf,
}

impl Context {
    /// Loads `config_file`; a missing file is an empty configuration only
    /// when it is the default name, so a mistyped `--config` is an error.
    pub fn load(config_file: &Path, explicit: bool, plugin_dir: &Path) -> anyhow::Result<Self> {
        let config = if config_file.exists() || explicit {
            Config::load(config_file)?
        } else {
            Config::default()
        };
        let plugin_dir = config
            .plugin_dir
            .clone()
            .filter(|_| plugin_dir == Path::new(crate::DEFAULT_PLUGIN_DIR))
            .unwrap_or_else(|| plugin_dir.to_path_buf());
        Ok(Self {
            config_file: config_file.to_path_buf(),
            config,
            plugin_dir,
        })
    }

    /// The store, which must exist: reading commands never create one.
    pub async fn store(&self) -> anyhow::Result<Store> {
        Ok(Store::open_existing(&self.config.store_url()).await?)
    }

    /// The store, created on first use (`serve` and `sync` write it).
    pub async fn store_or_create(&self) -> anyhow::Result<Store> {
        Ok(Store::open(&self.config.store_url()).await?)
    }

    pub fn connection(&self, id: &str) -> anyhow::Result<&ConnectionConfig> {
        self.config.connection(id).with_context(|| {
            let known: Vec<&str> = self
                .config
                .connections
                .iter()
                .map(|c| c.id.as_str())
                .collect();
            format!(
                "{} has no connection named {id:?}; it has: {}",
                self.config_file.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )
        })
    }

    /// Checks a connection named on the command line: one in the
    /// configuration, or one the store has runs of (a connection since
    /// removed from the file keeps its history). Anything else is an error,
    /// so a typo never reads as "never ran".
    pub async fn known_connection(&self, store: &Store, id: &str) -> anyhow::Result<()> {
        if self.config.connection(id).is_some() || !store.run_history(id, 1).await?.is_empty() {
            return Ok(());
        }
        self.connection(id).map(|_| ())
    }

    /// The connection's connector, loaded from the plugin folder, ready to
    /// read in its sandbox.
    pub async fn source(&self, connection: &ConnectionConfig) -> anyhow::Result<PluginSource> {
        let runtime = open_runtime(&self.plugin_dir)?;
        runtime.scan().await?;
        let plugin: Arc<Plugin> = match runtime.plugin(&connection.connector) {
            Some(plugin) => plugin,
            None => bail!(
                "connection {:?} uses connector {:?}, but {} has no {}.wasm that loads",
                connection.id,
                connection.connector,
                self.plugin_dir.display(),
                connection.connector
            ),
        };
        PluginSource::new(plugin, connection, Limits::default()).map_err(anyhow::Error::msg)
    }
}
