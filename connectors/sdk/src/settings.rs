//! The settings of a connection or a target, as the plugin reads them.

use std::collections::BTreeMap;

use crate::SyncError;
use crate::bindings::rostersync::connector::types::Setting;
use crate::target_bindings::rostersync::target::types::Setting as TargetSetting;

/// Name/value settings, with errors an operator can act on.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Settings(BTreeMap<String, String>);

impl Settings {
    #[doc(hidden)]
    pub fn from_wit(settings: Vec<Setting>) -> Self {
        Self(settings.into_iter().map(|s| (s.name, s.value)).collect())
    }

    #[doc(hidden)]
    pub fn from_target_wit(settings: Vec<TargetSetting>) -> Self {
        Self(settings.into_iter().map(|s| (s.name, s.value)).collect())
    }

    /// For tests: settings from pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The value, if set and not blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// The value, or `SyncError::BadSettings` naming the setting.
    pub fn require(&self, name: &str) -> Result<&str, SyncError> {
        self.get(name).ok_or_else(|| {
            SyncError::BadSettings(format!("the setting `{name}` is required and has no value"))
        })
    }

    /// A base URL without its trailing slash, so paths can be appended.
    pub fn base_url(&self, name: &str) -> Result<String, SyncError> {
        let url = self.require(name)?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(SyncError::BadSettings(format!(
                "the setting `{name}` must be an http:// or https:// URL, not {url:?}"
            )));
        }
        Ok(url.trim_end_matches('/').to_string())
    }

    /// A number, or `SyncError::BadSettings` naming the setting.
    pub fn number(&self, name: &str, default: u32) -> Result<u32, SyncError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                SyncError::BadSettings(format!(
                    "the setting `{name}` must be a whole number, not {v:?}"
                ))
            }),
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets: never show them.
        f.debug_set().entries(self.0.keys()).finish()
    }
}
