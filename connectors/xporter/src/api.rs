//! Reaching Xporter on Demand: the token exchange, and authorised GETs.
//!
//! A token lives about an hour, less than a large school's read may take,
//! so a GET whose token is refused exchanges the credentials again once
//! and repeats; a second refusal is the answer.

use rostersync_connector_sdk::http::Request;
use rostersync_connector_sdk::{Settings, SyncError};
use serde::Deserialize;
use serde_json::{Value, json};

/// Where Groupcall serves Xporter on Demand.
pub(crate) const DEFAULT_BASE_URL: &str = "https://xporter.groupcall.com/api";

pub(crate) struct Api {
    base: String,
    estab: String,
    relying_party: String,
    secret: String,
    token: Option<String>,
}

#[derive(Deserialize)]
struct TokenReply {
    token: Option<String>,
    #[serde(rename = "ExceptionMessage")]
    exception_message: Option<String>,
    #[serde(rename = "Message")]
    message: Option<String>,
}

impl Api {
    pub(crate) fn new(settings: &Settings) -> Result<Api, SyncError> {
        Ok(Api {
            base: settings.base_url("base-url")?,
            estab: settings.require("estab")?.trim().to_string(),
            relying_party: settings.require("relying-party")?.trim().to_string(),
            secret: settings.require("secret")?.to_string(),
            token: None,
        })
    }

    pub(crate) fn estab(&self) -> &str {
        &self.estab
    }

    pub(crate) fn relying_party(&self) -> &str {
        &self.relying_party
    }

    /// A URL under the API root, e.g. `v1/TokenDetails`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    /// A school endpoint's URL, e.g. `…/v1/School/3281102/Students`.
    pub(crate) fn school_url(&self, endpoint: &str) -> String {
        self.url(&format!(
            "v1/School/{}/{endpoint}",
            query_value(&self.estab)
        ))
    }

    fn exchange(&self) -> Result<String, SyncError> {
        let url = self.url("oauth/GetToken");
        let body = json!({
            "estab": self.estab,
            "relyingParty": self.relying_party,
            "password": self.secret,
            "thirdpartyid": "XporterOnDemand",
        });
        let reply: TokenReply = Request::post(&url)
            .json(&body)
            .send()
            .map_err(|error| match error {
                SyncError::Unauthorized(message) => SyncError::Unauthorized(format!(
                    "{message}: Xporter refused the estab, relying party and secret"
                )),
                other => other,
            })?
            .json()?;
        // Xporter also answers 200 with no token, e.g. while the school
        // has paused the authorisation.
        reply
            .token
            .filter(|token| !token.trim().is_empty())
            .ok_or_else(|| {
                let reason = reply
                    .exception_message
                    .or(reply.message)
                    .unwrap_or_else(|| "no reason given".into());
                SyncError::Unauthorized(format!("{url}: Xporter gave no token: {reason}"))
            })
    }

    /// GETs JSON with `Authorization: Idaas {token}`.
    pub(crate) fn get(&mut self, url: &str) -> Result<Value, SyncError> {
        let (token, fresh) = match &self.token {
            Some(token) => (token.clone(), false),
            None => (self.exchange()?, true),
        };
        self.token = Some(token.clone());
        let sent = Request::get(url)
            .header("authorization", format!("Idaas {token}"))
            .send();
        match sent {
            Err(SyncError::Unauthorized(_)) if !fresh => {
                self.token = None;
                self.get(url)
            }
            sent => sent?.json(),
        }
    }
}

/// Percent-encodes a query value: changeset tokens are opaque, and the
/// `*` that starts a changeset must go as `%2A`.
pub(crate) fn query_value(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_build_urls_under_the_api_root() {
        let settings = Settings::from_pairs([
            ("base-url", "https://xporter.groupcall.com/api/"),
            ("estab", " 3281102 "),
            ("relying-party", "app.example.dev"),
            ("secret", "s3cret"),
        ]);
        let api = Api::new(&settings).unwrap();
        assert_eq!(
            api.school_url("Students"),
            "https://xporter.groupcall.com/api/v1/School/3281102/Students"
        );
        assert_eq!(
            api.url("oauth/GetToken"),
            "https://xporter.groupcall.com/api/oauth/GetToken"
        );
    }

    #[test]
    fn a_missing_secret_is_a_settings_error_naming_it() {
        let settings = Settings::from_pairs([
            ("base-url", DEFAULT_BASE_URL),
            ("estab", "3281102"),
            ("relying-party", "app.example.dev"),
        ]);
        let Err(SyncError::BadSettings(message)) = Api::new(&settings) else {
            panic!("expected bad settings");
        };
        assert!(message.contains("`secret`"), "{message}");
    }

    #[test]
    fn changeset_tokens_are_encoded_for_the_query() {
        assert_eq!(query_value("*"), "%2A");
        assert_eq!(query_value("db69412c-0a"), "db69412c-0a");
        assert_eq!(query_value("a b/c"), "a%20b%2Fc");
    }
}
