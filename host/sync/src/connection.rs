//! A connection: one connector reading one school, with the policies that
//! decide what its records may do.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rostersync_core::{HoldPolicy, MatchPolicy, ValidationPolicy};
use rostersync_model::Settings;
use serde::Deserialize;

// Not `Serialize`: once secrets are resolved, the settings hold them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// The connection's name in the store, the CLI and the dashboard.
    pub id: String,
    /// The plugin that reads it (its file name without `.wasm`).
    pub connector: String,
    #[serde(default)]
    pub settings: Settings,
    /// Secret settings by the environment variable holding each value, so
    /// no secret is written in a file.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Hosts the connector may call beyond its base-URL settings, in the
    /// allow-list grammar (`https://*.example.com`).
    #[serde(default)]
    pub extra_hosts: Vec<String>,
    /// The folder a file-based connector reads, mounted read-only.
    #[serde(default)]
    pub drop_folder: Option<PathBuf>,
    /// Create or link mode, and how link mode matches.
    #[serde(default)]
    pub provisioning: MatchPolicy,
    #[serde(default)]
    pub validation: ValidationPolicy,
    #[serde(default)]
    pub holds: HoldPolicy,
}

impl ConnectionConfig {
    pub fn new(id: impl Into<String>, connector: impl Into<String>, settings: Settings) -> Self {
        Self {
            id: id.into(),
            connector: connector.into(),
            settings,
            secrets: BTreeMap::new(),
            extra_hosts: Vec::new(),
            drop_folder: None,
            provisioning: MatchPolicy::default(),
            validation: ValidationPolicy::default(),
            holds: HoldPolicy::default(),
        }
    }
}

impl ConnectionConfig {
    /// Moves each secret's value from its environment variable into the
    /// settings; the error names the setting and the variable.
    pub fn resolve_secrets(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        for (setting, variable) in &self.secrets {
            let value = env(variable).ok_or_else(|| {
                format!("secret setting {setting:?} reads the environment variable {variable}, which is not set")
            })?;
            self.settings = std::mem::take(&mut self.settings).with(setting, value);
        }
        Ok(())
    }
}
