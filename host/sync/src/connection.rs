//! A connection: one connector reading one school, with the policies that
//! decide what its records may do.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use rostersync_core::{HoldPolicy, MatchPolicy, ValidationPolicy};
use rostersync_model::Settings;
use rostersync_runtime::Limits;
use rostersync_schedule::ScheduleConfig;
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
    /// When the host runs it unattended: cron runs, time zone, blackouts.
    #[serde(default)]
    pub schedule: ScheduleConfig,
    /// This connection's own sandbox limits, over the host's.
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// Sandbox limits a connection sets for itself; each one left out keeps
/// the host's value. A large trust's export may need more time or
/// memory than a primary school's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub memory_mb: Option<u64>,
    pub call_timeout_seconds: Option<u64>,
    pub snapshot_timeout_minutes: Option<u64>,
    pub max_requests: Option<u32>,
    pub max_response_mb: Option<u64>,
    pub http_timeout_seconds: Option<u64>,
    pub max_batch_records: Option<usize>,
    pub max_record_kb: Option<usize>,
}

impl LimitsConfig {
    /// `base` with this connection's limits put over it.
    pub fn over(&self, base: Limits) -> Limits {
        Limits {
            memory_bytes: self.memory_mb.map_or(base.memory_bytes, |mb| mb << 20),
            call_timeout: self
                .call_timeout_seconds
                .map_or(base.call_timeout, Duration::from_secs),
            snapshot_timeout: self
                .snapshot_timeout_minutes
                .map_or(base.snapshot_timeout, |m| Duration::from_secs(m * 60)),
            max_requests: self.max_requests.unwrap_or(base.max_requests),
            max_response_bytes: self
                .max_response_mb
                .map_or(base.max_response_bytes, |mb| mb << 20),
            http_timeout: self
                .http_timeout_seconds
                .map_or(base.http_timeout, Duration::from_secs),
            max_batch_records: self.max_batch_records.unwrap_or(base.max_batch_records),
            max_record_bytes: self
                .max_record_kb
                .map_or(base.max_record_bytes, |kb| kb << 10),
            ..base
        }
    }

    /// Refuses a limit of 0, which would stop every run at its first step.
    pub fn check(&self) -> Result<(), String> {
        let named = [
            ("memory_mb", self.memory_mb),
            ("call_timeout_seconds", self.call_timeout_seconds),
            ("snapshot_timeout_minutes", self.snapshot_timeout_minutes),
            ("max_requests", self.max_requests.map(u64::from)),
            ("max_response_mb", self.max_response_mb),
            ("http_timeout_seconds", self.http_timeout_seconds),
            (
                "max_batch_records",
                self.max_batch_records.map(|n| n as u64),
            ),
            ("max_record_kb", self.max_record_kb.map(|n| n as u64)),
        ];
        match named.iter().find(|(_, value)| *value == Some(0)) {
            Some((name, _)) => Err(format!(
                "limits.{name} is 0, which would stop every run at once; leave it out to keep the host's limit"
            )),
            None => Ok(()),
        }
    }
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
            schedule: ScheduleConfig::default(),
            limits: LimitsConfig::default(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_limit_replaces_only_the_host_limit_it_names() {
        let base = Limits::default();
        let limits = LimitsConfig {
            memory_mb: Some(512),
            max_requests: Some(7),
            snapshot_timeout_minutes: Some(3),
            ..LimitsConfig::default()
        }
        .over(base.clone());
        assert_eq!(limits.memory_bytes, 512 << 20);
        assert_eq!(limits.max_requests, 7);
        assert_eq!(limits.snapshot_timeout, Duration::from_secs(180));
        assert_eq!(limits.call_timeout, base.call_timeout);
        assert_eq!(limits.max_record_bytes, base.max_record_bytes);
        assert_eq!(LimitsConfig::default().over(base.clone()), base);
    }

    #[test]
    fn a_zero_limit_is_refused_by_name() {
        let error = LimitsConfig {
            http_timeout_seconds: Some(0),
            ..LimitsConfig::default()
        }
        .check()
        .unwrap_err();
        assert!(
            error.starts_with("limits.http_timeout_seconds is 0"),
            "{error}"
        );
        assert!(LimitsConfig::default().check().is_ok());
    }
}
