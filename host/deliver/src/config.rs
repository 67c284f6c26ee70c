//! One `[[targets]]` entry of the configuration file:
//!
//! ```toml
//! [[targets]]
//! name = "apps"
//! kind = "plugin"                 # or "ldap"
//! plugin = "scim"                 # the target plugin's file name, without .wasm
//! settings = { base-url = "https://scim.example.org/scim/v2" }
//! secrets = { bearer-token = "APPS_SCIM_TOKEN" }
//! connections = ["north-primary"] # empty or left out: every connection
//! roles = ["student", "staff"]
//! group_kinds = ["class", "registration"]
//! domain = "north.example.org"
//! group_prefix = "np-"
//! templates = { username = "{first}.{last}{n}", email = "{first}.{last}{n}@{domain}",
//!               user_container = "ou={year},ou=Students", group_name = "{prefix}{name}" }
//! grace_days = 30
//! hold = { max_share = 0.10, min_count = 5 }
//! rate_per_second = 20
//! passwords = { length = 14, classes = 3 }
//! password_export = "/var/lib/rostersync/passwords"  # for `serve`
//! enabled = false                 # preview only until switched on
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use rostersync_core::targets::TargetPolicy;
use rostersync_model::Settings;
use serde::Deserialize;

use crate::password::PasswordPolicy;

/// How the host reaches the target's system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// A WebAssembly target plugin from the plugin folder.
    Plugin,
    /// The host's own LDAP / Active Directory target.
    Ldap,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plugin => "plugin",
            Self::Ldap => "ldap",
        }
    }
}

fn yes() -> bool {
    true
}

fn default_batch() -> usize {
    50
}

// Not `Serialize`: once secrets are resolved, the settings hold them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TargetConfig {
    pub name: String,
    pub kind: TargetKind,
    /// The plugin's file name without `.wasm`, for `kind = "plugin"`.
    #[serde(default)]
    pub plugin: Option<String>,
    #[serde(default)]
    pub settings: Settings,
    /// Secret settings by the environment variable holding each value.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Hosts the plugin may call beyond its base-URL settings.
    #[serde(default)]
    pub extra_hosts: Vec<String>,
    /// False: preview only, nothing is sent.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Changes per second at most; none means as fast as the target answers.
    #[serde(default)]
    pub rate_per_second: Option<f64>,
    /// Changes per `apply` call.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default)]
    pub passwords: PasswordPolicy,
    /// A folder where an unattended delivery (`serve`) writes the initial
    /// passwords of the accounts it creates, one new owner-only CSV per
    /// delivery. Without it, `serve` does not deliver a target that sets
    /// passwords: nobody could hand them out.
    #[serde(default)]
    pub password_export: Option<PathBuf>,
    /// Which people and groups, how they are named, and the lifecycle.
    #[serde(flatten)]
    pub policy: TargetPolicy,
    /// Keys neither this nor the policy knows: a flattened policy cannot
    /// deny them, so [`TargetConfig::resolve`] refuses them by name.
    #[serde(flatten)]
    unknown: BTreeMap<String, serde::de::IgnoredAny>,
}

impl TargetConfig {
    /// The keys written directly in a `[[targets]]` entry, beside its
    /// flattened policy's: the entry cannot name them when refusing one,
    /// so the configuration reference reads them from here (a test keeps
    /// this list and the fields in step).
    pub const KEYS: [&'static str; 11] = [
        "name",
        "kind",
        "plugin",
        "settings",
        "secrets",
        "extra_hosts",
        "enabled",
        "rate_per_second",
        "batch_size",
        "passwords",
        "password_export",
    ];

    /// A target of `kind` with every default.
    pub fn new(name: impl Into<String>, kind: TargetKind) -> Self {
        Self {
            name: name.into(),
            kind,
            plugin: None,
            settings: Settings::new(),
            secrets: BTreeMap::new(),
            extra_hosts: Vec::new(),
            enabled: true,
            rate_per_second: None,
            batch_size: default_batch(),
            passwords: PasswordPolicy::default(),
            password_export: None,
            policy: TargetPolicy::default(),
            unknown: BTreeMap::new(),
        }
    }

    /// Reads each secret setting from the variable it names, and checks
    /// what parsing cannot; the error names the field, never a value.
    pub fn resolve(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        if let Some(key) = self.unknown.keys().next() {
            return Err(format!(
                "{key:?} is not a target setting; see the [[targets]] keys in the README"
            ));
        }
        for (setting, variable) in &self.secrets {
            let value = env(variable).ok_or_else(|| {
                format!("secret setting {setting:?} reads the environment variable {variable}, which is not set")
            })?;
            self.settings.set(setting, value);
        }
        if self.kind == TargetKind::Plugin && self.plugin.is_none() {
            return Err(
                "kind = \"plugin\" needs plugin = \"NAME\", the target plugin's file name".into(),
            );
        }
        if self.batch_size == 0 {
            return Err("batch_size is 0: at least one change must go per call".into());
        }
        if self
            .rate_per_second
            .is_some_and(|rate| rate <= 0.0 || !rate.is_finite())
        {
            return Err("rate_per_second must be a positive number of changes per second".into());
        }
        self.passwords.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listed_keys_are_the_fields() {
        // Destructured field by field: a new field does not compile until
        // it is listed in `KEYS` too.
        let TargetConfig {
            name: _,
            kind: _,
            plugin: _,
            settings: _,
            secrets: _,
            extra_hosts: _,
            enabled: _,
            rate_per_second: _,
            batch_size: _,
            passwords: _,
            password_export: _,
            policy: _,
            unknown: _,
        } = TargetConfig::new("apps", TargetKind::Ldap);
        let parsed: Result<TargetConfig, _> = toml::from_str(
            "name = \"a\"\nkind = \"ldap\"\nplugin = \"p\"\nsettings = {}\nsecrets = {}\n\
             extra_hosts = []\nenabled = true\nrate_per_second = 1.0\nbatch_size = 5\n\
             passwords = { length = 12 }\npassword_export = \"p\"\n",
        );
        let mut parsed = parsed.unwrap();
        assert!(parsed.unknown.is_empty(), "{:?}", parsed.unknown.keys());
        parsed.resolve(|_| None).unwrap();
        assert_eq!(TargetConfig::KEYS.len(), 11);
    }
}
