//! The configuration file (TOML): where the store is, where the plugins
//! are, and the connections with their settings and policies. Secrets are
//! never written in it: a connection names, per secret setting, the
//! environment variable that holds the value.
//!
//! ```toml
//! store = "sqlite://rostersync.db"      # or postgres://user@host/db
//! plugin_dir = "plugins"
//!
//! [[connections]]
//! id = "north-primary"
//! connector = "wonde"
//! settings = { base-url = "https://api.wonde.com/v1.0", school-id = "A1930499544" }
//! secrets = { api-token = "NORTH_WONDE_TOKEN" }
//! provisioning = { mode = "link", match_on = ["mis-id", "email"] }
//! holds = { max_removal_share = 0.05 }
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rostersync_sync::ConnectionConfig;
use serde::Deserialize;

/// The store used when neither the file nor the environment names one.
pub const DEFAULT_STORE: &str = "sqlite://rostersync.db";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `sqlite://PATH` or `postgres://…`; `ROSTERSYNC_STORE` overrides it.
    #[serde(default)]
    pub store: Option<String>,
    #[serde(default)]
    pub plugin_dir: Option<PathBuf>,
    #[serde(default)]
    pub connections: Vec<ConnectionConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Invalid { file: PathBuf, message: String },
}

impl Config {
    /// Reads and checks a configuration file, resolving secrets from the
    /// environment.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        Self::parse(file, &text, |name| std::env::var(name).ok())
    }

    /// Parses `text` as the file `file`; `env` looks up secrets.
    pub fn parse(
        file: &Path,
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            file: file.to_path_buf(),
            message,
        };
        let mut config: Config = toml::from_str(text).map_err(|e| invalid(one_sentence(&e)))?;
        let mut seen = BTreeSet::new();
        for connection in &mut config.connections {
            if !seen.insert(connection.id.clone()) {
                return Err(invalid(format!(
                    "connection id {:?} is used twice; each connection needs its own",
                    connection.id
                )));
            }
            connection
                .resolve_secrets(&env)
                .map_err(|message| invalid(format!("connection {:?}: {message}", connection.id)))?;
        }
        Ok(config)
    }

    /// The store URL: `ROSTERSYNC_STORE`, else the file's, else the default.
    pub fn store_url(&self) -> String {
        rostersync_store::Store::url_from_env_or(self.store.as_deref().unwrap_or(DEFAULT_STORE))
    }

    pub fn connection(&self, id: &str) -> Option<&ConnectionConfig> {
        self.connections.iter().find(|c| c.id == id)
    }
}

/// toml's message with its source excerpt folded into one line: "TOML
/// parse error at line 7, column 1: unknown field `shedule`, expected …".
fn one_sentence(error: &toml::de::Error) -> String {
    let message = error.message().trim();
    match error.span() {
        Some(_) => {
            let location = error
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .trim_end_matches(':')
                .to_string();
            format!("{location}: {message}")
        }
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostersync_core::ProvisionMode;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("rostersync.toml"), text, |name| {
            (name == "NORTH_TOKEN").then(|| "s3cret".to_string())
        })
    }

    #[test]
    fn a_good_file_resolves_secrets_from_the_environment() {
        let config = parse(
            r#"
store = "sqlite://x.db"
[[connections]]
id = "north"
connector = "wonde"
settings = { base-url = "https://api.wonde.com/v1.0" }
secrets = { api-token = "NORTH_TOKEN" }
provisioning = { mode = "link" }
"#,
        )
        .unwrap();
        let north = config.connection("north").unwrap();
        assert_eq!(north.settings.get("api-token"), Some("s3cret"));
        assert_eq!(north.provisioning.mode, ProvisionMode::Link);
    }

    #[test]
    fn an_unknown_field_names_the_file_line_and_field() {
        let error =
            parse("[[connections]]\nid = \"north\"\nconnector = \"wonde\"\nshedule = \"hourly\"\n")
                .unwrap_err()
                .to_string();
        assert!(error.starts_with("rostersync.toml: "), "{error}");
        assert!(error.contains("line 4"), "{error}");
        assert!(error.contains("shedule"), "{error}");
    }

    #[test]
    fn a_missing_secret_names_the_connection_setting_and_variable() {
        let error = parse(
            "[[connections]]\nid = \"south\"\nconnector = \"clever\"\nsecrets = { api-token = \"SOUTH_TOKEN\" }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("\"south\""), "{error}");
        assert!(
            error.contains("api-token") && error.contains("SOUTH_TOKEN"),
            "{error}"
        );
    }

    #[test]
    fn duplicate_connection_ids_are_refused() {
        let error = parse(
            "[[connections]]\nid = \"a\"\nconnector = \"x\"\n[[connections]]\nid = \"a\"\nconnector = \"y\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("used twice"), "{error}");
    }
}
