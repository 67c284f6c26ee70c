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
//! schedule = { timezone = "Europe/London", jitter_seconds = 900, runs = [
//!     { cron = "0 7-17 * * MON-FRI" }, { cron = "0 1 * * *" } ] }
//!
//! [admin]
//! listen = "127.0.0.1:8080"
//! tokens = [ { name = "ops", scope = "admin", token_env = "ROSTERSYNC_ADMIN_TOKEN" } ]
//!
//! [[targets]]                           # see rostersync_deliver::config
//! name = "apps"
//! kind = "plugin"
//! plugin = "scim"
//! settings = { base-url = "https://scim.example.org/scim/v2" }
//! secrets = { bearer-token = "APPS_SCIM_TOKEN" }
//! connections = ["north-primary"]
//! enabled = false                       # preview only until switched on
//!
//! [[notifications]]
//! kind = "webhook"
//! name = "ops-chat"
//! url = "https://hooks.example.org/rostersync"
//! secret_env = "ROSTERSYNC_WEBHOOK_SECRET"
//! ```
//!
//! Every secret is named by an environment variable. A `secrets_file`
//! (`NAME=value` lines, readable by its owner only) supplies the
//! variables the environment does not set.

pub mod check;
pub mod reference;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rostersync_admin::AdminConfig;
use rostersync_deliver::TargetConfig;
use rostersync_notify::{Channel, ChannelConfig, resolve_channels};
use rostersync_schedule::Schedule;
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
    /// Runs at once across all connections, under `serve`.
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// The admin API and dashboard: where they listen, who may use them.
    #[serde(default)]
    pub admin: AdminConfig,
    /// `NAME=value` lines for the secrets the environment does not hold;
    /// relative to the configuration file.
    #[serde(default)]
    pub secrets_file: Option<PathBuf>,
    /// Who hears when a run is held or fails, or a connection disconnects
    /// or recovers.
    #[serde(default)]
    pub notifications: Vec<ChannelConfig>,
    /// Where the roster is provisioned: SCIM services, the school network.
    #[serde(default)]
    pub targets: Vec<TargetConfig>,
    /// The notification channels, checked and with their secrets read.
    #[serde(skip)]
    channels: Vec<Channel>,
}

/// An `sqlite:` store URL whose relative path is made relative to
/// `folder`; any other URL (PostgreSQL, an in-memory database) unchanged.
fn sqlite_relative_to(url: &str, folder: &Path) -> String {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return url.to_string();
    };
    let (path, query) = rest.split_at(rest.find('?').unwrap_or(rest.len()));
    if path.is_empty() || path == ":memory:" || Path::new(path).is_absolute() {
        return url.to_string();
    }
    format!("sqlite://{}{query}", folder.join(path).display())
}

/// Runs at once when the file does not say.
pub const DEFAULT_CONCURRENCY: usize = 4;

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
        let mut config: Config =
            toml::from_str(text).map_err(|e| invalid(one_sentence(&e, text)))?;
        config.relative_to(file.parent().unwrap_or(Path::new("")));
        let secrets = match &config.secrets_file {
            Some(path) => SecretsFile::read(path).map_err(|message| {
                invalid(format!(
                    "{}secrets_file: {message}",
                    line_of(text, |line| line.starts_with("secrets_file"))
                ))
            })?,
            None => SecretsFile::default(),
        };
        let env = |name: &str| env(name).or_else(|| secrets.get(name));
        let mut seen = BTreeSet::new();
        for connection in &mut config.connections {
            if !seen.insert(connection.id.clone()) {
                return Err(invalid(format!(
                    "connection id {:?} is used twice; each connection needs its own",
                    connection.id
                )));
            }
            let at = connection_line(text, &connection.id);
            connection.resolve_secrets(env).map_err(|message| {
                invalid(format!("{at}connection {:?}: {message}", connection.id))
            })?;
            Schedule::compile(&connection.id, &connection.schedule).map_err(|error| {
                invalid(format!(
                    "{at}connection {:?}: schedule.{error}",
                    connection.id
                ))
            })?;
            connection.limits.check().map_err(|message| {
                invalid(format!("{at}connection {:?}: {message}", connection.id))
            })?;
        }
        let mut names = BTreeSet::new();
        for target in &mut config.targets {
            let named = format!("{:?}", target.name);
            let at = line_of(text, |line| {
                line.starts_with("name") && line.contains(&named)
            });
            if !names.insert(target.name.clone()) {
                return Err(invalid(format!(
                    "{at}target name {named} is used twice; each target needs its own"
                )));
            }
            target
                .resolve(env)
                .map_err(|message| invalid(format!("{at}target {named}: {message}")))?;
        }
        if config.concurrency == Some(0) {
            return Err(invalid(format!(
                "{}concurrency is 0: at least one run must be able to go at a time",
                line_of(text, |line| line.starts_with("concurrency"))
            )));
        }
        config.admin.resolve(env).map_err(|message| {
            invalid(format!(
                "{}[admin] {message}",
                line_of(text, |line| line.starts_with("[admin"))
            ))
        })?;
        config.channels = resolve_channels(&config.notifications, env).map_err(|error| {
            let named = format!("{:?}", error.channel);
            let at = line_of(text, |line| {
                line.starts_with("name") && line.contains(&named)
            });
            invalid(format!("{at}[[notifications]] {error}"))
        })?;
        Ok(config)
    }

    /// Makes the file's relative paths (the SQLite store, the plugin
    /// folder, drop folders, the admin's TLS files, targets' password
    /// folders) relative to the folder
    /// the file is in, not to wherever the command was started.
    fn relative_to(&mut self, folder: &Path) {
        let beside = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = folder.join(&*path);
            }
        };
        if let Some(store) = &mut self.store {
            *store = sqlite_relative_to(store, folder);
        }
        self.plugin_dir.iter_mut().for_each(beside);
        self.secrets_file.iter_mut().for_each(beside);
        self.admin.tls_cert.iter_mut().for_each(beside);
        self.admin.tls_key.iter_mut().for_each(beside);
        for connection in &mut self.connections {
            connection.drop_folder.iter_mut().for_each(beside);
        }
        for target in &mut self.targets {
            target.password_export.iter_mut().for_each(beside);
        }
    }

    /// The notification channels, ready to deliver.
    pub fn channels(&self) -> &[Channel] {
        &self.channels
    }

    /// The store URL: `ROSTERSYNC_STORE`, else the file's, else the default.
    pub fn store_url(&self) -> String {
        rostersync_store::Store::url_from_env_or(self.store.as_deref().unwrap_or(DEFAULT_STORE))
    }

    pub fn concurrency(&self) -> usize {
        self.concurrency.unwrap_or(DEFAULT_CONCURRENCY)
    }

    pub fn connection(&self, id: &str) -> Option<&ConnectionConfig> {
        self.connections.iter().find(|c| c.id == id)
    }

    pub fn target(&self, name: &str) -> Option<&TargetConfig> {
        self.targets.iter().find(|t| t.name == name)
    }
}

/// The variables a secrets file holds. `Debug` shows only their names.
#[derive(Default)]
struct SecretsFile {
    values: std::collections::HashMap<String, String>,
}

impl SecretsFile {
    /// Reads `NAME=value` lines (blank lines and `#` comments skipped);
    /// the error is one sentence naming the file and line, never a value.
    fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(|error| format!("cannot read {}: {error}", path.display()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(format!(
                    "{} can be read by other users (mode {:o}); make it the owner's only with chmod 600",
                    path.display(),
                    mode & 0o777
                ));
            }
        }
        let mut values = std::collections::HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, value) = line.split_once('=').ok_or_else(|| {
                format!("{} line {}: expected NAME=value", path.display(), index + 1)
            })?;
            let name = name.trim();
            if name.is_empty() {
                return Err(format!(
                    "{} line {}: the name before = is empty",
                    path.display(),
                    index + 1
                ));
            }
            values.insert(name.to_string(), value.trim().to_string());
        }
        Ok(Self { values })
    }

    fn get(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned()
    }
}

/// "line N: " for the first line `matches`, so an error found after
/// parsing still points into the file.
fn line_of(text: &str, matches: impl Fn(&str) -> bool) -> String {
    text.lines()
        .position(|line| matches(line.trim_start()))
        .map(|index| format!("line {}: ", index + 1))
        .unwrap_or_default()
}

/// The line declaring the connection `id`.
fn connection_line(text: &str, id: &str) -> String {
    let quoted = format!("{id:?}");
    line_of(text, |line| {
        line.starts_with("id") && line.contains(&quoted)
    })
}

/// toml's message with its source excerpt folded into one line: "TOML
/// parse error at line 7, column 1, field `shedule`: unknown field,
/// expected …". The excerpt and any value are left out: a secret pasted
/// inline where a variable's name belongs must not be printed back; the
/// key on the offending line names the field instead.
fn one_sentence(error: &toml::de::Error, text: &str) -> String {
    let message = without_value(error.message().trim());
    let message = message.as_str();
    match error.span() {
        Some(span) => {
            let location = error
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .trim_end_matches(':')
                .to_string();
            match key_at(text, span.start) {
                Some(key) => format!("{location}, field `{key}`: {message}"),
                None => format!("{location}: {message}"),
            }
        }
        None => message.to_string(),
    }
}

/// The key of the `key = value` line holding byte `offset` of `text`.
fn key_at(text: &str, offset: usize) -> Option<&str> {
    let start = text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    (!key.is_empty() && !key.starts_with('#')).then_some(key)
}

/// serde's message with the offending value taken out: "invalid type:
/// string \"…\", expected a boolean" becomes "invalid type: string,
/// expected a boolean", and "unknown variant `…`, expected one of …"
/// becomes "unknown variant, expected one of …".
fn without_value(message: &str) -> String {
    const KINDS: [&str; 5] = [
        "string",
        "integer",
        "floating point",
        "boolean",
        "character",
    ];
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(at) = message.find(prefix) {
            let rest = &message[at + prefix.len()..];
            if let Some(kind) = KINDS.iter().find(|kind| rest.starts_with(**kind)) {
                let expected = rest.rfind(", expected").map_or("", |i| &rest[i..]);
                return format!("{}{prefix}{kind}{expected}", &message[..at]);
            }
        }
    }
    if let Some(at) = message.find("unknown variant `") {
        let rest = &message[at..];
        let expected = rest.rfind("`, expected").map_or("", |i| &rest[i + 1..]);
        return format!("{}unknown variant{expected}", &message[..at]);
    }
    message.to_string()
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
    fn a_value_of_the_wrong_type_is_named_by_its_field_never_echoed() {
        for (text, field) in [
            ("concurrency = \"Hunter2-pasted-secret\"\n", "concurrency"),
            (
                "[[connections]]\nid = \"north\"\nconnector = \"wonde\"\nsecrets = { api-token = 12345678987654321 }\n",
                "line 4",
            ),
            (
                "[admin]\ntokens = [{ name = \"ops\", scope = \"Hunter2-pasted-secret\", token_env = \"T\" }]\n",
                "unknown variant",
            ),
            (
                "[[connections]]\nid = \"north\"\nconnector = \"wonde\"\nsecrets = { api-token = true }\n",
                "line 4",
            ),
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(field), "{error}");
            for value in ["Hunter2-pasted-secret", "12345678987654321", "`true`"] {
                assert!(!error.contains(value), "{error}");
            }
        }
    }

    #[test]
    fn a_token_shorter_than_32_characters_is_refused_by_the_check() {
        let text = "[admin]\ntokens = [{ name = \"ops\", scope = \"admin\", token_env = \"OPS_TOKEN\" }]\n";
        let with = |token: &'static str| {
            Config::parse(Path::new("rostersync.toml"), text, move |name| {
                (name == "OPS_TOKEN").then(|| token.to_string())
            })
        };
        let error = with("0123456789abcdef0123456789abcde")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("line 1: [admin] admin token \"ops\"")
                && error.contains("shorter than 32"),
            "{error}"
        );
        with("0123456789abcdef0123456789abcdef").unwrap();
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

    #[test]
    fn the_readme_example_is_a_valid_file() {
        let readme = include_str!("../../../README.md");
        let example = readme
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("the README has a TOML example");
        // The example's secrets file is the operator's; here the
        // environment answers every name.
        let example: String = example
            .lines()
            .filter(|line| !line.starts_with("secrets_file"))
            .map(|line| format!("{line}\n"))
            .collect();
        let config = Config::parse(Path::new("README.md"), &example, |_| {
            Some("a-long-random-secret-value-for-the-tests".into())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.concurrency(), 4);
        assert_eq!(config.connections[0].limits.memory_mb, Some(512));
        assert_eq!(config.channels().len(), 2);
        assert_eq!(config.admin.tokens.len(), 2);
    }

    #[test]
    fn a_bad_notification_channel_names_its_line_channel_and_field() {
        let error = parse(
            "[[notifications]]\nkind = \"webhook\"\nname = \"ops-chat\"\nurl = \"ftp://x\"\nsecret_env = \"NORTH_TOKEN\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with(
                "rostersync.toml: line 3: [[notifications]] notification channel \"ops-chat\": url:"
            ),
            "{error}"
        );
        let error = parse(
            "[[notifications]]\nkind = \"email\"\nname = \"it\"\nsmtp_url = \"smtp://127.0.0.1\"\nfrom = \"a@b.example\"\nto = []\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("\"it\": to is empty"), "{error}");
        let error = parse("[[notifications]]\nkind = \"pager\"\nname = \"x\"\n")
            .unwrap_err()
            .to_string();
        // The bad kind is named by its line and field, never echoed: an
        // unknown word may be a secret pasted in the wrong place.
        assert!(
            error.contains("line 2") && error.contains("field `kind`") && !error.contains("pager"),
            "{error}"
        );
    }

    #[test]
    fn a_zero_limit_names_the_connection_and_the_limit() {
        let error = parse(
            "[[connections]]\nid = \"north\"\nconnector = \"wonde\"\nlimits = { max_requests = 0 }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("line 2: connection \"north\": limits.max_requests is 0"),
            "{error}"
        );
    }

    #[test]
    fn relative_paths_are_relative_to_the_configuration_file() {
        let text = "store = \"sqlite://state/roster.db?mode=rwc\"\nplugin_dir = \"plugins\"\n\
                    [[connections]]\nid = \"drop\"\nconnector = \"oneroster\"\ndrop_folder = \"drops/north\"\n\
                    [[connections]]\nid = \"fixed\"\nconnector = \"oneroster\"\ndrop_folder = \"/srv/drop\"\n\
                    [[targets]]\nname = \"apps\"\nkind = \"ldap\"\npassword_export = \"passwords\"\n";
        let config =
            Config::parse(Path::new("/etc/rostersync/rostersync.toml"), text, |_| None).unwrap();
        assert_eq!(
            config.store.as_deref(),
            Some("sqlite:///etc/rostersync/state/roster.db?mode=rwc")
        );
        assert_eq!(
            config.plugin_dir.as_deref(),
            Some(Path::new("/etc/rostersync/plugins"))
        );
        let folder = |id: &str| config.connection(id).unwrap().drop_folder.clone();
        assert_eq!(folder("drop"), Some("/etc/rostersync/drops/north".into()));
        assert_eq!(folder("fixed"), Some("/srv/drop".into()), "absolute stays");
        assert_eq!(
            config.target("apps").unwrap().password_export.as_deref(),
            Some(Path::new("/etc/rostersync/passwords"))
        );
        for unchanged in ["sqlite::memory:", "postgres://u@h/db", "sqlite:///var/x.db"] {
            assert_eq!(sqlite_relative_to(unchanged, Path::new("/etc")), unchanged);
        }
    }

    #[test]
    fn a_target_reads_its_mapping_templates_and_secrets() {
        let text = r#"
[[targets]]
name = "apps"
kind = "plugin"
plugin = "scim"
settings = { base-url = "https://scim.example.org/scim/v2" }
secrets = { bearer-token = "NORTH_TOKEN" }
connections = ["north-primary"]
roles = ["student"]
domain = "north.example.org"
templates = { username = "{initial}{last}{n}", email = "{initial}{last}{n}@{domain}" }
grace_days = 14
hold = { max_share = 0.2, min_count = 10 }
rate_per_second = 5
enabled = false

[[targets]]
name = "network"
kind = "ldap"
"#;
        let config = parse(text).unwrap();
        let apps = config.target("apps").unwrap();
        assert_eq!(apps.settings.get("bearer-token"), Some("s3cret"));
        assert_eq!(apps.policy.connections, ["north-primary"]);
        assert_eq!(apps.policy.grace_days, 14);
        assert_eq!(apps.policy.hold.min_count, 10);
        assert_eq!(
            String::from(apps.policy.templates.username.clone()),
            "{initial}{last}{n}"
        );
        assert!(!apps.enabled);
        let network = config.target("network").unwrap();
        assert!(network.enabled);
        assert_eq!(network.policy.grace_days, 30, "the default grace period");
    }

    #[test]
    fn a_bad_target_is_refused_by_name_and_field() {
        for (text, expected) in [
            (
                "[[targets]]\nname = \"apps\"\nkind = \"plugin\"\n",
                "needs plugin",
            ),
            (
                "[[targets]]\nname = \"apps\"\nkind = \"ldap\"\ngrace_dayz = 3\n",
                "grace_dayz",
            ),
            (
                "[[targets]]\nname = \"apps\"\nkind = \"ldap\"\ntemplates = { username = \"{surname}\" }\n",
                "{surname}",
            ),
            (
                "[[targets]]\nname = \"apps\"\nkind = \"ldap\"\nsecrets = { password = \"UNSET_VARIABLE\" }\n",
                "UNSET_VARIABLE",
            ),
            (
                "[[targets]]\nname = \"a\"\nkind = \"ldap\"\n[[targets]]\nname = \"a\"\nkind = \"ldap\"\n",
                "used twice",
            ),
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn a_secrets_file_supplies_what_the_environment_lacks_and_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rostersync.toml");
        let secrets = dir.path().join("secrets");
        std::fs::write(
            &secrets,
            "# the school's keys\nSOUTH_TOKEN = from-the-file\nNORTH_TOKEN=not-used\n",
        )
        .unwrap();
        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
        let text = "secrets_file = \"secrets\"\n[[connections]]\nid = \"south\"\nconnector = \"clever\"\n\
                    secrets = { api-token = \"SOUTH_TOKEN\", other = \"NORTH_TOKEN\" }\n";
        let env = |name: &str| (name == "NORTH_TOKEN").then(|| "from-the-environment".to_string());
        let config = Config::parse(&file, text, env).unwrap();
        let south = config.connection("south").unwrap();
        assert_eq!(south.settings.get("api-token"), Some("from-the-file"));
        assert_eq!(
            south.settings.get("other"),
            Some("from-the-environment"),
            "the environment wins"
        );

        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = Config::parse(&file, text, env).unwrap_err().to_string();
        assert!(
            error.contains("line 1: secrets_file:") && error.contains("chmod 600"),
            "{error}"
        );
        assert!(
            !error.contains("from-the-file"),
            "no secret in the message: {error}"
        );

        std::fs::write(&secrets, "SOUTH_TOKEN\n").unwrap();
        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
        let error = Config::parse(&file, text, env).unwrap_err().to_string();
        assert!(error.contains("line 1: expected NAME=value"), "{error}");
    }
}
