//! Reaching Xporter on Demand: the token exchange, and authorised GETs.
//!
//! The token endpoint is a setting. Groupcall's current documentation
//! (xporterdocs.groupcall.com, "Authentication") names
//! `https://xporter.groupcall.com/api/oauth/GetToken`, the default; the
//! older STS `https://login.groupcall.com/idaas/sts/STS/GetToken` is what
//! the recorded client TeamSatchel/xod_client (`lib/xod_client/config.rb`,
//! `spec/fixtures/vcr_cassettes/valid_token.yml`) and
//! cpoms/xporter_on_demand (`lib/xporter_on_demand.rb`) post to. Both take
//! `{estab, relyingParty, password, thirdpartyid}` and answer with `token`
//! and `expires`: the STS beside `Message` and `ExceptionMessage` only, the
//! documented endpoint with `ExceptionType` too. A failed exchange carries
//! no token and says why in `ExceptionMessage`.
//!
//! A data GET can also answer 200 with only an `ExceptionMessage`
//! (`error_response.yml` in the same fixtures): that is a provider failure,
//! not data.
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

/// Where Groupcall's documentation says to exchange credentials for a token.
pub(crate) const DEFAULT_TOKEN_URL: &str = "https://xporter.groupcall.com/api/oauth/GetToken";

pub(crate) struct Api {
    base: String,
    token_url: String,
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
            token_url: match settings.get("token-url") {
                Some(_) => settings.base_url("token-url")?,
                None => DEFAULT_TOKEN_URL.to_string(),
            },
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
        let url = &self.token_url;
        let body = json!({
            "estab": self.estab,
            "relyingParty": self.relying_party,
            "password": self.secret,
            "thirdpartyid": "XporterOnDemand",
        });
        let reply: TokenReply = Request::post(url)
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
        let body: Value = match sent {
            Err(SyncError::Unauthorized(_)) if !fresh => {
                self.token = None;
                return self.get(url);
            }
            sent => sent?.json()?,
        };
        match body.get("ExceptionMessage").and_then(Value::as_str) {
            Some(message) => Err(SyncError::Unavailable(format!(
                "{url}: Xporter answered with an exception: {message}"
            ))),
            None => Ok(body),
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
        assert_eq!(api.token_url, DEFAULT_TOKEN_URL);
        let sts = Settings::from_pairs([
            ("base-url", DEFAULT_BASE_URL),
            (
                "token-url",
                "https://login.groupcall.com/idaas/sts/STS/GetToken/",
            ),
            ("estab", "3281102"),
            ("relying-party", "app.example.dev"),
            ("secret", "s3cret"),
        ]);
        assert_eq!(
            Api::new(&sts).unwrap().token_url,
            "https://login.groupcall.com/idaas/sts/STS/GetToken"
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
