//! A connection: one connector reading one school, with the policies that
//! decide what its records may do.

use std::path::PathBuf;

use rostersync_core::{HoldPolicy, MatchPolicy, ValidationPolicy};
use rostersync_model::Settings;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// The connection's name in the store, the CLI and the dashboard.
    pub id: String,
    /// The plugin that reads it (its file name without `.wasm`).
    pub connector: String,
    #[serde(default)]
    pub settings: Settings,
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
            extra_hosts: Vec::new(),
            drop_folder: None,
            provisioning: MatchPolicy::default(),
            validation: ValidationPolicy::default(),
            holds: HoldPolicy::default(),
        }
    }
}
