//! The SCIM protocol as this target speaks it (RFC 7644): the service's
//! features (§4, `/ServiceProviderConfig`), lookups with `eq` filters
//! (§3.4.2.2) and paging (§3.4.2.4), create (§3.3), replace with
//! `If-Match` when the service versions resources (§3.5.1, §3.14), PATCH
//! (§3.5.2), delete (§3.6), and what each status means for one change
//! (§3.12): whole-call errors for credentials and outages, outcomes for
//! the rest.

use rostersync_connector_sdk::Settings;
use rostersync_connector_sdk::http::{Request, Response, percent_encode};
use rostersync_connector_sdk::target::{DEFAULT_RETRY_SECONDS, Outcome, Retry, TargetError};
use serde::Deserialize;
use serde_json::{Value, json};

/// RFC 7644 §3.1: the media type of SCIM bodies.
pub const SCIM_JSON: &str = "application/scim+json";
/// RFC 7644 §3.5.2: the schema of a PATCH body.
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Bytes of a service's error detail kept in an outcome's sentence.
const MAX_DETAIL: usize = 300;

/// What ended one change early: an error for the whole call, or an outcome
/// that answers the change.
pub enum Stop {
    Error(TargetError),
    Outcome(Outcome),
}

impl From<TargetError> for Stop {
    fn from(error: TargetError) -> Self {
        Stop::Error(error)
    }
}

impl From<rostersync_connector_sdk::SyncError> for Stop {
    fn from(error: rostersync_connector_sdk::SyncError) -> Self {
        Stop::Error(error.into())
    }
}

/// The two resource endpoints this target writes (RFC 7644 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Users,
    Groups,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Users => "Users",
            Endpoint::Groups => "Groups",
        }
    }

    /// How an operator calls one of its resources.
    pub fn noun(self) -> &'static str {
        match self {
            Endpoint::Users => "account",
            Endpoint::Groups => "group",
        }
    }
}

/// RFC 7643 §5: the parts of `/ServiceProviderConfig` this target reads.
#[derive(Debug, Default, Deserialize)]
pub struct ServiceProviderConfig {
    #[serde(default)]
    pub patch: Supported,
    #[serde(default)]
    pub filter: Supported,
    #[serde(default)]
    pub etag: Supported,
}

#[derive(Debug, Default, Deserialize)]
pub struct Supported {
    #[serde(default)]
    pub supported: bool,
}

/// RFC 7644 §3.4.2: a page of a query's results.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse {
    #[serde(default)]
    pub total_results: u32,
    #[serde(default)]
    pub start_index: Option<u32>,
    #[serde(default, rename = "Resources")]
    pub resources: Vec<Value>,
}

/// RFC 7644 §3.12: an error body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScimError {
    scim_type: Option<String>,
    detail: Option<String>,
}

/// One SCIM service, as the settings reach it.
pub struct Api {
    base: String,
    token: Option<String>,
    pub page_size: u32,
    /// Whether updates carry `If-Match` (the service versions resources).
    pub etags: bool,
    /// Whether changes may use PATCH; else they read and replace.
    pub patch: bool,
}

impl Api {
    pub fn new(settings: &Settings) -> Result<Api, TargetError> {
        let page_size = settings.number("page-size", 100)?;
        if page_size == 0 {
            return Err(TargetError::BadSettings(
                "the setting `page-size` must be at least 1".into(),
            ));
        }
        Ok(Api {
            base: settings.base_url("base-url")?,
            token: settings.get("bearer-token").map(str::to_string),
            page_size,
            etags: false,
            patch: true,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Reads the service's features and adopts them.
    pub fn discover(&mut self) -> Result<ServiceProviderConfig, Stop> {
        let url = format!("{}/ServiceProviderConfig", self.base);
        let reply = self.send(Request::get(&url))?;
        let config: ServiceProviderConfig = reply.success()?.json()?;
        self.etags = config.etag.supported;
        self.patch = config.patch.supported;
        Ok(config)
    }

    pub fn url(&self, endpoint: Endpoint, id: &str) -> String {
        format!("{}/{}/{}", self.base, endpoint.path(), percent_encode(id))
    }

    /// Sends one request. Refused credentials and outages end the whole
    /// call; a pause the service asks for (429, 503) is a `rate-limited`
    /// error the change turns into `retry-after`; any other status is the
    /// caller's to read.
    pub fn send(&self, request: Request) -> Result<Response, Stop> {
        let request = match &self.token {
            Some(token) => request.bearer(token),
            None => request,
        };
        let reply = request.send_once()?;
        let what = format!("{} answered HTTP {}", reply.url, reply.status);
        Err(Stop::Error(match reply.status {
            401 => TargetError::Unauthorized(format!(
                "{what}: the SCIM service refused the bearer token"
            )),
            403 => TargetError::Forbidden(format!("{what}: the bearer token may not do this")),
            429 | 503 => TargetError::RateLimited(Retry {
                seconds: reply
                    .header("retry-after")
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(DEFAULT_RETRY_SECONDS),
                reason: format!("{what}: the SCIM service asked for a pause"),
            }),
            500..=599 => TargetError::Unavailable(what),
            _ => return Ok(reply),
        }))
    }

    /// The resource `id`, or `None` when the service no longer has it.
    pub fn get(&self, endpoint: Endpoint, id: &str) -> Result<Option<Value>, Stop> {
        let reply = self.send(Request::get(self.url(endpoint, id)))?;
        if reply.status == 404 {
            return Ok(None);
        }
        let what = format!("read the {} {id:?}", endpoint.noun());
        Ok(Some(json_of(succeeded(reply, &what)?)?))
    }

    /// The resources whose `attribute` equals `value` (at most two: one is
    /// an answer, two a doubt).
    pub fn find(
        &self,
        endpoint: Endpoint,
        attribute: &str,
        value: &str,
    ) -> Result<Vec<Value>, Stop> {
        let filter = format!(
            "{attribute} eq {}",
            serde_json::to_string(value).expect("a string serialises")
        );
        let url = format!(
            "{}/{}?filter={}&startIndex=1&count=2",
            self.base,
            endpoint.path(),
            percent_encode(&filter)
        );
        let what = format!("look up {}s by {attribute}", endpoint.noun());
        let list: ListResponse = json_of(succeeded(self.send(Request::get(url))?, &what)?)?;
        Ok(list.resources)
    }

    /// One page of an endpoint, from `start` (1-based).
    pub fn list(&self, endpoint: Endpoint, start: u32) -> Result<ListResponse, Stop> {
        let url = format!(
            "{}/{}?startIndex={start}&count={}",
            self.base,
            endpoint.path(),
            self.page_size
        );
        let what = format!("list {}s", endpoint.noun());
        json_of(succeeded(self.send(Request::get(url))?, &what)?)
    }

    /// Creates a resource and returns its id.
    pub fn create(&self, endpoint: Endpoint, body: &Value, what: &str) -> Result<String, Stop> {
        let url = format!("{}/{}", self.base, endpoint.path());
        let reply = self.send(Request::post(url).json_as(SCIM_JSON, body))?;
        id_of(&json_of(succeeded(reply, what)?)?, what)
    }

    /// Reads the resource, lets `edit` change it, and replaces it; with
    /// `If-Match` when the service versions resources, reading again once
    /// should someone else change it in between.
    pub fn update(
        &self,
        endpoint: Endpoint,
        id: &str,
        what: &str,
        mut edit: impl FnMut(&mut Value),
    ) -> Result<(), Stop> {
        for attempt in 1..=2 {
            let Some(mut resource) = self.get(endpoint, id)? else {
                return Err(gone(endpoint, id));
            };
            let version = resource["meta"]["version"].as_str().map(str::to_string);
            if let Some(object) = resource.as_object_mut() {
                object.remove("meta");
            }
            edit(&mut resource);
            let mut request = Request::put(self.url(endpoint, id)).json_as(SCIM_JSON, &resource);
            if let (true, Some(version)) = (self.etags, version) {
                request = request.header("if-match", version);
            }
            let reply = self.send(request)?;
            match reply.status {
                404 => return Err(gone(endpoint, id)),
                412 if attempt == 1 => continue,
                412 => {
                    return Err(Stop::Outcome(Outcome::RetryAfter(Retry {
                        seconds: 1,
                        reason: format!(
                            "the {} {id:?} kept changing in the SCIM service while it was updated",
                            endpoint.noun()
                        ),
                    })));
                }
                _ => {
                    succeeded(reply, what)?;
                    return Ok(());
                }
            }
        }
        unreachable!("the second attempt always returns")
    }

    /// Applies PATCH operations (RFC 7644 §3.5.2).
    pub fn patch(
        &self,
        endpoint: Endpoint,
        id: &str,
        operations: Vec<Value>,
        what: &str,
    ) -> Result<(), Stop> {
        let body = json!({ "schemas": [PATCH_OP], "Operations": operations });
        let reply = self.send(Request::patch(self.url(endpoint, id)).json_as(SCIM_JSON, &body))?;
        if reply.status == 404 {
            return Err(gone(endpoint, id));
        }
        succeeded(reply, what).map(drop)
    }

    /// Deletes a resource; one already gone counts as deleted.
    pub fn delete(&self, endpoint: Endpoint, id: &str, what: &str) -> Result<(), Stop> {
        let reply = self.send(Request::delete(self.url(endpoint, id)))?;
        if reply.status == 404 {
            return Ok(());
        }
        succeeded(reply, what).map(drop)
    }
}

/// The outcome for a change to a resource the service no longer has.
fn gone(endpoint: Endpoint, id: &str) -> Stop {
    Stop::Outcome(Outcome::Refused(format!(
        "the {} {id:?} no longer exists in the SCIM service",
        endpoint.noun()
    )))
}

/// A 2xx reply, or the change's outcome: 409 is a uniqueness `conflict`
/// (RFC 7644 §3.3, §3.12 `uniqueness`), any other status a refusal in one
/// sentence with the service's own detail.
fn succeeded(reply: Response, what: &str) -> Result<Response, Stop> {
    if (200..300).contains(&reply.status) {
        return Ok(reply);
    }
    let error: ScimError = serde_json::from_slice(&reply.body).unwrap_or_default();
    let detail = error
        .detail
        .map(|d| format!(": {}", clip(&d)))
        .unwrap_or_default();
    let kind = error
        .scim_type
        .map(|t| format!(", {}", clip(&t)))
        .unwrap_or_default();
    let sentence = format!(
        "the SCIM service would not {what} (HTTP {}{kind}){detail}",
        reply.status
    );
    Err(Stop::Outcome(if reply.status == 409 {
        Outcome::Conflict(sentence)
    } else {
        Outcome::Refused(sentence)
    }))
}

fn clip(text: &str) -> &str {
    let mut end = text.len().min(MAX_DETAIL);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn json_of<T: serde::de::DeserializeOwned>(reply: Response) -> Result<T, Stop> {
    Ok(reply.json()?)
}

/// RFC 7643 §3.1: every resource carries its `id`.
pub fn id_of(resource: &Value, what: &str) -> Result<String, Stop> {
    match resource["id"].as_str() {
        Some(id) if !id.trim().is_empty() => Ok(id.to_string()),
        _ => Err(Stop::Error(TargetError::BadResponse(format!(
            "the SCIM service answered the request to {what} without the resource's id"
        )))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Response {
        Response {
            url: "http://scim.test/v2/Users".into(),
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_taken_name_is_a_conflict_and_other_refusals_say_why() {
        let taken = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"409","scimType":"uniqueness","detail":"One or more of the attribute values are already in use or are reserved"}"#;
        let Err(Stop::Outcome(Outcome::Conflict(sentence))) =
            succeeded(reply(409, taken), "create the account \"ada\"")
        else {
            panic!("a 409 is a conflict");
        };
        assert!(
            sentence.contains("uniqueness") && sentence.contains("already in use"),
            "{sentence}"
        );
        let Err(Stop::Outcome(Outcome::Refused(sentence))) =
            succeeded(reply(400, "not json"), "create the account \"ada\"")
        else {
            panic!("a 400 is a refusal");
        };
        assert_eq!(
            sentence,
            "the SCIM service would not create the account \"ada\" (HTTP 400)"
        );
    }
}
