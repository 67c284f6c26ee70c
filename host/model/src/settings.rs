//! How a connector describes itself, what a connection gives it, and the
//! typed errors it answers with.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A free-form name/value pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Attribute {
    pub name: String,
    pub value: String,
}

/// What a setting holds, which tells the host how to treat its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SettingKind {
    Text,
    /// Never printed or logged.
    Secret,
    /// Its host is allowed for outbound requests.
    BaseUrl,
}

/// One setting a connector needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingSpec {
    pub name: String,
    pub description: String,
    pub kind: SettingKind,
    pub required: bool,
    pub default_value: Option<String>,
}

/// Optional abilities a connector declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    DeltaReads,
    Contacts,
    DropFolder,
}

/// Who a connector is and what it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorInfo {
    pub provider: String,
    pub version: String,
    pub description: String,
    pub settings: Vec<SettingSpec>,
    pub capabilities: Vec<Capability>,
}

impl ConnectorInfo {
    pub fn has(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
    }

    /// The settings an operator must keep out of logs and output.
    pub fn is_secret(&self, setting: &str) -> bool {
        self.settings
            .iter()
            .any(|spec| spec.name == setting && spec.kind == SettingKind::Secret)
    }
}

/// The school a connection's credentials reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolInfo {
    pub id: String,
    pub name: String,
    pub details: Vec<Attribute>,
}

/// A connection's settings by name. Secrets are held in clear here; the
/// `Debug` form hides every value so a stray `{:?}` cannot leak one.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Settings(BTreeMap<String, String>);

impl Settings {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.set(name, value);
        self
    }

    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// These settings completed by the connector's defaults, or the name of
    /// the first required setting that has no value at all.
    pub fn resolved(&self, info: &ConnectorInfo) -> Result<Settings, String> {
        self.resolved_by(&info.settings)
    }

    /// [`Self::resolved`] against any list of setting specs (a target's too).
    pub fn resolved_by(&self, specs: &[SettingSpec]) -> Result<Settings, String> {
        let mut resolved = self.clone();
        for spec in specs {
            if resolved.get(&spec.name).is_some() {
                continue;
            }
            match &spec.default_value {
                Some(default) => resolved.set(spec.name.clone(), default.clone()),
                None if spec.required => return Err(spec.name.clone()),
                None => {}
            }
        }
        Ok(resolved)
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Settings {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// How much a snapshot reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Full,
    /// Changes since the opaque cursor of an earlier snapshot.
    Delta(String),
}

/// An error a connector answers with; the host acts on its kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "detail")]
pub enum SyncError {
    #[error("the provider refused the credentials: {0}")]
    Unauthorized(String),
    #[error("the credentials lack access: {0}")]
    Forbidden(String),
    #[error("the provider is rate limiting{}: {message}", retry_after_seconds.map(|s| format!(" (retry after {s} s)")).unwrap_or_default())]
    RateLimited {
        retry_after_seconds: Option<u32>,
        message: String,
    },
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    #[error("bad settings: {0}")]
    BadSettings(String),
    #[error("bad response from the provider: {0}")]
    BadResponse(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ConnectorInfo {
        ConnectorInfo {
            provider: "Example".into(),
            version: "1.0.0".into(),
            description: String::new(),
            settings: vec![
                SettingSpec {
                    name: "base-url".into(),
                    description: String::new(),
                    kind: SettingKind::BaseUrl,
                    required: true,
                    default_value: Some("https://api.example.com".into()),
                },
                SettingSpec {
                    name: "token".into(),
                    description: String::new(),
                    kind: SettingKind::Secret,
                    required: true,
                    default_value: None,
                },
            ],
            capabilities: vec![Capability::DeltaReads],
        }
    }

    #[test]
    fn resolved_fills_defaults_and_names_the_missing_setting() {
        let missing = Settings::new().resolved(&info());
        assert_eq!(missing, Err("token".to_string()));
        let resolved = Settings::new()
            .with("token", "t")
            .resolved(&info())
            .unwrap();
        assert_eq!(resolved.get("base-url"), Some("https://api.example.com"));
        assert!(info().is_secret("token") && !info().is_secret("base-url"));
    }

    #[test]
    fn debug_never_shows_values() {
        let shown = format!("{:?}", Settings::new().with("token", "hunter2"));
        assert!(
            shown.contains("token") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
