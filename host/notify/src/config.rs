//! The `[[notifications]]` configuration: the channels as written in the
//! file (secrets named by environment variable, never inline), and their
//! resolution into ready-to-use channels with the secrets read and every
//! address checked, so a typo fails at startup rather than at 3 a.m.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use reqwest::Url;
use rostersync_store::redacted_url;
use serde::Deserialize;

/// How long an SMTP conversation may take before it counts as a failure.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The operator notifications a channel can subscribe to: the store's
/// typed outbox events, under the name this crate has always exported.
pub use rostersync_store::Notification as NotificationEvent;

fn all_events() -> Vec<NotificationEvent> {
    NotificationEvent::ALL.to_vec()
}

/// One `[[notifications]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ChannelConfig {
    Webhook(WebhookConfig),
    Email(EmailConfig),
}

impl ChannelConfig {
    pub fn name(&self) -> &str {
        match self {
            Self::Webhook(webhook) => &webhook.name,
            Self::Email(email) => &email.name,
        }
    }

    pub fn events(&self) -> &[NotificationEvent] {
        match self {
            Self::Webhook(webhook) => &webhook.events,
            Self::Email(email) => &email.events,
        }
    }
}

/// A signed JSON POST to `url`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub name: String,
    #[serde(default = "all_events")]
    pub events: Vec<NotificationEvent>,
    pub url: String,
    /// The environment variable holding the HMAC key.
    pub secret_env: String,
}

/// A plain-text email through an SMTP relay.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub name: String,
    #[serde(default = "all_events")]
    pub events: Vec<NotificationEvent>,
    /// `smtp://` (no TLS), `smtps://` (implicit TLS) or `smtp+starttls://`.
    pub smtp_url: String,
    pub from: String,
    pub to: Vec<String>,
    pub username_env: Option<String>,
    pub password_env: Option<String>,
    /// Lets credentials go over plain `smtp://` (a relay on a trusted
    /// network); off, they are refused there.
    #[serde(default)]
    pub allow_plaintext_auth: bool,
}

/// Why the notification configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("notification channel {channel:?}: {problem}")]
pub struct ConfigError {
    pub channel: String,
    pub problem: String,
}

/// A secret read from the environment; `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A channel ready to deliver.
#[derive(Debug, Clone)]
pub struct Channel {
    pub name: String,
    pub events: Vec<NotificationEvent>,
    pub target: Target,
}

#[derive(Debug, Clone)]
pub enum Target {
    Webhook(WebhookTarget),
    // Boxed: the SMTP transport is several times the size of a webhook.
    Email(Box<EmailTarget>),
}

#[derive(Debug, Clone)]
pub struct WebhookTarget {
    pub url: Url,
    pub secret: Secret,
}

#[derive(Clone)]
pub struct EmailTarget {
    /// As configured (it carries no credentials: those are refused).
    pub smtp_url: Url,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub(crate) transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl fmt::Debug for EmailTarget {
    // By hand: the transport holds the SMTP password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailTarget")
            .field("smtp_url", &self.smtp_url.as_str())
            .field("from", &self.from.to_string())
            .field(
                "to",
                &self.to.iter().map(ToString::to_string).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Checks the channels and reads their secrets through `lookup` (give it
/// `|name| std::env::var(name).ok()`).
pub fn resolve_channels(
    configs: &[ChannelConfig],
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Channel>, ConfigError> {
    let mut names = HashSet::new();
    configs
        .iter()
        .map(|config| {
            let name = config.name();
            let problem = |problem: String| ConfigError {
                channel: name.to_string(),
                problem,
            };
            if name.trim().is_empty() {
                return Err(problem(
                    "the name is empty; give every channel a name".into(),
                ));
            }
            if !names.insert(name) {
                return Err(problem(
                    "the name is used by another channel; names must be unique".into(),
                ));
            }
            if config.events().is_empty() {
                return Err(problem(
                    "events is empty; leave it out to get every event".into(),
                ));
            }
            let target = match config {
                ChannelConfig::Webhook(webhook) => {
                    Target::Webhook(resolve_webhook(webhook, &lookup).map_err(problem)?)
                }
                ChannelConfig::Email(email) => {
                    Target::Email(Box::new(resolve_email(email, &lookup).map_err(problem)?))
                }
            };
            Ok(Channel {
                name: name.to_string(),
                events: config.events().to_vec(),
                target,
            })
        })
        .collect()
}

fn read_secret(
    field: &str,
    variable: &str,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Secret, String> {
    match lookup(variable) {
        Some(value) if !value.is_empty() => Ok(Secret(value)),
        Some(_) => Err(format!(
            "{field}: the environment variable {variable} is empty"
        )),
        None => Err(format!(
            "{field}: the environment variable {variable} is not set"
        )),
    }
}

fn resolve_webhook(
    config: &WebhookConfig,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<WebhookTarget, String> {
    let shown = redacted_url(&config.url);
    let url = Url::parse(&config.url)
        .map_err(|error| format!("url: {shown:?} is not a URL ({error})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "url: {shown:?} must start with https:// or http://"
        ));
    }
    Ok(WebhookTarget {
        url,
        secret: read_secret("secret_env", &config.secret_env, lookup)?,
    })
}

fn resolve_email(
    config: &EmailConfig,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<EmailTarget, String> {
    let shown = redacted_url(&config.smtp_url);
    let url = Url::parse(&config.smtp_url)
        .map_err(|error| format!("smtp_url: {shown:?} is not a URL ({error})"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "smtp_url: put the credentials in username_env and password_env, not in the URL".into(),
        );
    }
    let host = url
        .host_str()
        .ok_or_else(|| format!("smtp_url: {shown:?} names no host"))?;
    let tls_error = |error| format!("smtp_url: cannot set up TLS for {host}: {error}");
    let builder = match url.scheme() {
        "smtp" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(url.port().unwrap_or(25)),
        "smtps" => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
            .map_err(tls_error)?
            .port(url.port().unwrap_or(465)),
        "smtp+starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
            .map_err(tls_error)?
            .port(url.port().unwrap_or(587)),
        _ => {
            return Err(format!(
                "smtp_url: {shown:?} must start with smtp://, smtps:// or smtp+starttls://"
            ));
        }
    };
    let builder = match (&config.username_env, &config.password_env) {
        (None, None) => builder,
        (Some(_), Some(_)) if url.scheme() == "smtp" && !config.allow_plaintext_auth => {
            return Err(format!(
                "smtp_url: {shown:?} would send the username and password unencrypted; use smtps:// or smtp+starttls://, or set allow_plaintext_auth = true for a relay on a trusted network"
            ));
        }
        (Some(username), Some(password)) => {
            let username = read_secret("username_env", username, lookup)?;
            let password = read_secret("password_env", password, lookup)?;
            builder.credentials(Credentials::new(username.0, password.0))
        }
        _ => return Err("username_env and password_env go together: give both or neither".into()),
    };
    let from = config
        .from
        .parse::<Mailbox>()
        .map_err(|error| format!("from: {:?} is not an email address ({error})", config.from))?;
    if config.to.is_empty() {
        return Err("to is empty; list at least one address".into());
    }
    let to = config
        .to
        .iter()
        .map(|address| {
            address
                .parse::<Mailbox>()
                .map_err(|error| format!("to: {address:?} is not an email address ({error})"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(EmailTarget {
        smtp_url: url.clone(),
        from,
        to,
        transport: builder.timeout(Some(SMTP_TIMEOUT)).build(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(smtp_url: &str, allow_plaintext_auth: bool) -> ChannelConfig {
        ChannelConfig::Email(EmailConfig {
            name: "it-team".into(),
            events: all_events(),
            smtp_url: smtp_url.into(),
            from: "rostersync@school.example".into(),
            to: vec!["it@school.example".into()],
            username_env: Some("SMTP_USER".into()),
            password_env: Some("SMTP_PASSWORD".into()),
            allow_plaintext_auth,
        })
    }

    fn problem(config: ChannelConfig) -> Option<String> {
        resolve_channels(&[config], |_| Some("pw-Hunter2".into()))
            .err()
            .map(|e| e.to_string())
    }

    #[test]
    fn credentials_over_plain_smtp_are_refused_unless_the_operator_allows_it() {
        let refused = problem(email("smtp://relay.school.example", false)).unwrap();
        assert!(
            refused.contains("unencrypted") && refused.contains("allow_plaintext_auth = true"),
            "{refused}"
        );
        assert!(!refused.contains("pw-Hunter2"), "{refused}");
        assert_eq!(problem(email("smtp://relay.school.example", true)), None);
        assert_eq!(problem(email("smtps://relay.school.example", false)), None);
        assert_eq!(
            problem(email("smtp+starttls://relay.school.example", false)),
            None
        );
    }

    #[test]
    fn a_webhook_url_is_shown_without_its_userinfo_or_query() {
        for url in [
            "ftp://hooks.example.org/services/T0?token=xoxb-SECRET",
            "ftp://bot:xoxb-SECRET@hooks.example.org/services/T0",
            "not a url?token=xoxb-SECRET",
        ] {
            let error = problem(ChannelConfig::Webhook(WebhookConfig {
                name: "ops-chat".into(),
                events: all_events(),
                url: url.into(),
                secret_env: "HOOK_SECRET".into(),
            }))
            .unwrap();
            assert!(error.contains("url: "), "{error}");
            assert!(!error.contains("xoxb-SECRET"), "{error}");
        }
    }
}
