//! A complete, small provisioning target to start from: it provisions the
//! "Example App" JSON API described in this crate's README (bearer token,
//! users and groups addressed by the host's external id). Replace the
//! endpoint shapes with your system's and keep the structure.

// Natively (for unit tests and clippy) the component's exports are not
// linked, so everything they reach would read as unused.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use rostersync_connector_sdk::Settings;
use rostersync_connector_sdk::http::{Request, Response, percent_encode};
use rostersync_connector_sdk::target::*;
use serde::Deserialize;
use serde_json::json;

struct ExampleApp;

impl Target for ExampleApp {
    fn describe() -> TargetInfo {
        TargetInfo::new(
            "Example App",
            env!("CARGO_PKG_VERSION"),
            "Accounts and groups in the Example App.",
        )
        .setting(SettingSpec::base_url(
            "base-url",
            "The API root, e.g. https://api.example-app.com/v1",
            Some("https://api.example-app.com/v1"),
        ))
        .setting(SettingSpec::secret(
            "api-token",
            "The organisation's API token.",
        ))
        .capability(Capability::Groups)
        .capability(Capability::Suspend)
    }

    fn check(settings: &Settings) -> Result<String, TargetError> {
        let api = Api::new(settings)?;
        let organisation: Organisation = api
            .send(Request::get(api.url("organisation")))?
            .success()?
            .json()?;
        Ok(format!(
            "the Example App organisation {:?}",
            organisation.name
        ))
    }

    fn apply(
        settings: &Settings,
        batch: Vec<ChangeItem>,
    ) -> Result<Vec<ChangeResult>, TargetError> {
        let api = Api::new(settings)?;
        apply_each(batch, |change| apply_change(&api, change))
    }
}

rostersync_connector_sdk::export_target!(ExampleApp);

#[derive(Deserialize)]
struct Organisation {
    name: String,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

/// The API root and token.
struct Api {
    base: String,
    token: String,
}

impl Api {
    fn new(settings: &Settings) -> Result<Api, TargetError> {
        Ok(Api {
            base: settings.base_url("base-url")?,
            token: settings.require("api-token")?.to_string(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    fn object_url(&self, kind: &str, external_id: &str) -> String {
        self.url(&format!("{kind}/{}", percent_encode(external_id)))
    }

    fn send(&self, request: Request) -> Result<Response, TargetError> {
        Ok(request.bearer(&self.token).send_once()?)
    }

    /// The outcome of a request that writes an object: its id, or what
    /// the status means for the change.
    fn write(&self, request: Request, what: &str) -> Result<Outcome, TargetError> {
        let response = self.send(request)?;
        Ok(match response.status {
            409 => Outcome::Conflict(format!("the Example App says {what} is taken")),
            429 => Outcome::RetryAfter(Retry {
                seconds: response
                    .header("retry-after")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(DEFAULT_RETRY_SECONDS),
                reason: "the Example App asked for a pause".into(),
            }),
            400..=499 if !matches!(response.status, 401 | 403) => Outcome::Refused(format!(
                "the Example App refused {what} (HTTP {})",
                response.status
            )),
            // Success, or an error for the whole call (credentials, outage).
            _ => Outcome::Done(response.success()?.json::<Created>()?.id),
        })
    }

    fn delete(&self, kind: &str, object: &ObjectRef) -> Result<Outcome, TargetError> {
        let response = self.send(Request::delete(self.object_url(kind, &object.external_id)))?;
        if response.status != 404 {
            response.success()?;
        }
        Ok(Outcome::Done(
            object
                .target_id
                .clone()
                .unwrap_or_else(|| object.external_id.clone()),
        ))
    }
}

fn external_ids(objects: &[ObjectRef]) -> Vec<&str> {
    objects.iter().map(|o| o.external_id.as_str()).collect()
}

fn put_user(api: &Api, user: &User) -> Result<Outcome, TargetError> {
    let body = json!({
        "username": user.username,
        "email": user.email,
        "display_name": user.display_name,
        "active": user.active,
    });
    let request = Request::put(api.object_url("users", &user.external_id)).json(&body);
    api.write(request, &format!("the username {:?}", user.username))
}

fn put_group(api: &Api, group: &Group) -> Result<Outcome, TargetError> {
    let body = json!({ "name": group.name, "members": external_ids(&group.members) });
    let request = Request::put(api.object_url("groups", &group.external_id)).json(&body);
    api.write(request, &format!("the group {:?}", group.name))
}

fn set_active(api: &Api, object: &ObjectRef, active: bool) -> Result<Outcome, TargetError> {
    let request = Request::patch(api.object_url("users", &object.external_id))
        .json(&json!({ "active": active }));
    api.write(request, &format!("the account {:?}", object.external_id))
}

fn apply_change(api: &Api, change: Change) -> Result<Outcome, TargetError> {
    match change {
        Change::CreateUser(user) | Change::UpdateUser(UserUpdate { user, .. }) => {
            put_user(api, &user)
        }
        Change::SuspendUser(object) => set_active(api, &object, false),
        Change::EnableUser(object) => set_active(api, &object, true),
        Change::DeleteUser(object) => api.delete("users", &object),
        Change::CreateGroup(group) | Change::UpdateGroup(GroupUpdate { group, .. }) => {
            put_group(api, &group)
        }
        Change::ChangeMembers(change) => {
            let body =
                json!({ "add": external_ids(&change.add), "remove": external_ids(&change.remove) });
            let url = format!(
                "{}/members",
                api.object_url("groups", &change.group.external_id)
            );
            api.write(
                Request::post(url).json(&body),
                &format!("the group {:?}", change.group.external_id),
            )
        }
        Change::DeleteGroup(object) => api.delete("groups", &object),
    }
}
