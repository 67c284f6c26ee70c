//! A SCIM 2.0 provisioning target: the host's accounts become SCIM Users
//! and its classes and registration groups SCIM Groups with their members,
//! in any service provider that speaks the protocol.
//!
//! Written from the standards, cited by section where each rule is used:
//!
//! - RFC 7643, *SCIM: Core Schema*: §3.1 common attributes (`id`,
//!   `externalId`, `meta.version`), §2.4 multi-valued attributes and
//!   `primary`, §4.1 the User resource, §4.2 the Group resource and its
//!   `members`, §5 the service provider configuration (`patch`, `filter`,
//!   `etag`). See [`resources`].
//! - RFC 7644, *SCIM: Protocol*: §3.3 creating (201; 409 with `scimType`
//!   `uniqueness`), §3.4.2.2 filters (`eq`, values as JSON strings),
//!   §3.4.2.4 paging (`startIndex`, `count`, `totalResults`), §3.5.1
//!   replacing with PUT, §3.5.2 PATCH (`add`, `remove` with a value filter,
//!   `replace`), §3.6 deleting, §3.12 errors (`status`, `scimType`,
//!   `detail`), §3.14 versioning (`ETag`, `If-Match`, 412). See [`api`].
//! - RFC 6585 §4 (429) and RFC 9110 §10.2.3 (`Retry-After`) for pauses.
//!
//! Per change:
//!
//! - `create-user` first looks the account up by `externalId`, then by
//!   `userName`, then by email (`emails.value`). An account found with no
//!   `externalId` (made by hand) or with the host's is adopted: brought up
//!   to date, keeping its login, and answered `matched`. One that carries
//!   another `externalId` is someone else's: `conflict`. Otherwise POST;
//!   a 409 is a `conflict` too.
//! - `update-user`, `update-group`: read the resource, change what this
//!   target manages, PUT it back with `If-Match` when the service offers
//!   ETags; a 412 reads again once.
//! - `suspend-user`, `enable-user`: PATCH `replace` of `active`.
//! - `change-members`: PATCH `add` of `members` and `remove` of
//!   `members[value eq "…"]`.
//! - deletions: DELETE; an object already gone counts as deleted.
//! - without PATCH support, suspensions and membership changes read and
//!   replace instead.
//!
//! 401 and 403 end the whole call (`unauthorized`, `forbidden`), as do
//! outages (`unavailable`); 429 and 503 answer the change `retry-after`
//! with the service's `Retry-After`; any other 4xx is `refused` with one
//! sentence carrying the service's `detail`.
//!
//! Tested against the real `scim2-server` from PyPI in
//! `tests/tests/target_scim.rs`.

// Natively (for unit tests and clippy) the component's exports are not
// linked, so everything they reach would read as unused.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

pub mod api;
pub mod resources;

use rostersync_connector_sdk::Settings;
use rostersync_connector_sdk::target::*;
use serde_json::json;

use api::{Api, Endpoint, Stop, id_of};
use resources::{Login, edit_group, edit_user, held_group, held_user, member, member_ids};

struct Scim;

impl Target for Scim {
    fn describe() -> TargetInfo {
        TargetInfo::new(
            "SCIM 2.0",
            env!("CARGO_PKG_VERSION"),
            "Accounts as SCIM Users and groups as SCIM Groups with their members (RFC 7643, RFC 7644).",
        )
        .setting(SettingSpec::base_url(
            "base-url",
            "The SCIM service's base URL, under which /Users and /Groups live, e.g. https://scim.example.com/v2",
            None,
        ))
        .setting(SettingSpec::optional_secret(
            "bearer-token",
            "The OAuth bearer token the service issued; leave empty for a service that needs none.",
        ))
        .setting(SettingSpec::text(
            "page-size",
            "How many users or groups one read-back page asks for.",
            false,
            Some("100"),
        ))
        .capability(Capability::Groups)
        .capability(Capability::Suspend)
        .capability(Capability::ReadBack)
        .capability(Capability::Passwords)
    }

    fn check(settings: &Settings) -> Result<String, TargetError> {
        let mut api = Api::new(settings)?;
        let config = api.discover().map_err(whole_call)?;
        let users = api.list(Endpoint::Users, 1).map_err(whole_call)?;
        let yes = |on: bool| if on { "yes" } else { "no" };
        Ok(format!(
            "the SCIM service at {} holds {} users (PATCH: {}, filters: {}, ETags: {})",
            api.base(),
            users.total_results,
            yes(config.patch.supported),
            yes(config.filter.supported),
            yes(config.etag.supported),
        ))
    }

    fn apply(
        settings: &Settings,
        batch: Vec<ChangeItem>,
    ) -> Result<Vec<ChangeResult>, TargetError> {
        let mut api = Api::new(settings)?;
        api.discover().map_err(whole_call)?;
        apply_each(batch, |change| match apply_change(&api, change) {
            Ok(outcome) | Err(Stop::Outcome(outcome)) => Ok(outcome),
            Err(Stop::Error(TargetError::RateLimited(retry))) => Ok(Outcome::RetryAfter(retry)),
            Err(Stop::Error(error)) => Err(error),
        })
    }

    fn read(
        settings: &Settings,
        kind: ObjectKind,
        cursor: Option<String>,
    ) -> Result<Page, TargetError> {
        let api = Api::new(settings)?;
        let start = match cursor {
            None => 1,
            Some(cursor) => cursor.parse().map_err(|_| {
                TargetError::BadSettings(format!(
                    "the read-back cursor {cursor:?} is not a SCIM startIndex"
                ))
            })?,
        };
        let (endpoint, held): (_, fn(&serde_json::Value) -> Option<HeldObject>) = match kind {
            ObjectKind::User => (Endpoint::Users, |r| held_user(r).map(HeldObject::User)),
            ObjectKind::Group => (Endpoint::Groups, |r| held_group(r).map(HeldObject::Group)),
        };
        let list = api.list(endpoint, start).map_err(whole_call)?;
        let returned = list.resources.len() as u32;
        // RFC 7644 §3.4.2.4: the next page starts after this one, until
        // the total is reached or a page comes back empty.
        let first = list.start_index.unwrap_or(start);
        let next = (returned > 0 && first + returned <= list.total_results)
            .then(|| (first + returned).to_string());
        Ok(Page {
            objects: list.resources.iter().filter_map(held).collect(),
            next,
        })
    }
}

rostersync_connector_sdk::export_target!(Scim);

/// A stop outside any one change: an outcome there means the service
/// answered something a call cannot go on from.
fn whole_call(stop: Stop) -> TargetError {
    match stop {
        Stop::Error(error) => error,
        Stop::Outcome(outcome) => TargetError::BadResponse(match outcome {
            Outcome::Refused(m) | Outcome::Conflict(m) => m,
            other => format!("{other:?}"),
        }),
    }
}

fn apply_change(api: &Api, change: Change) -> Result<Outcome, Stop> {
    match change {
        Change::CreateUser(user) => create_user(api, &user),
        Change::UpdateUser(UserUpdate { target_id, user }) => {
            let what = format!("update the account {:?}", user.username);
            api.update(Endpoint::Users, &target_id, &what, |r| {
                edit_user(r, &user, Login::Set)
            })?;
            Ok(Outcome::Done(target_id))
        }
        Change::SuspendUser(object) => set_active(api, &object, false),
        Change::EnableUser(object) => set_active(api, &object, true),
        Change::DeleteUser(object) => delete(api, Endpoint::Users, &object),
        Change::CreateGroup(group) => create_group(api, &group),
        Change::UpdateGroup(GroupUpdate { target_id, group }) => {
            let ids = member_targets(api, &group.members)?;
            let what = format!("update the group {:?}", group.name);
            api.update(Endpoint::Groups, &target_id, &what, |r| {
                edit_group(r, api.base(), &group, &ids)
            })?;
            Ok(Outcome::Done(target_id))
        }
        Change::ChangeMembers(change) => change_members(api, &change),
        Change::DeleteGroup(object) => delete(api, Endpoint::Groups, &object),
    }
}

/// The first resource of `endpoint` whose `attribute` is `value`.
fn find_one(
    api: &Api,
    endpoint: Endpoint,
    attribute: &str,
    value: &str,
) -> Result<Option<serde_json::Value>, Stop> {
    Ok(api.find(endpoint, attribute, value)?.into_iter().next())
}

/// The service's id for an object the host refers to: the one it was told,
/// else the one found by `externalId`.
fn target_id(api: &Api, endpoint: Endpoint, object: &ObjectRef) -> Result<Option<String>, Stop> {
    if let Some(id) = &object.target_id {
        return Ok(Some(id.clone()));
    }
    let what = format!("find the {} {:?}", endpoint.noun(), object.external_id);
    find_one(api, endpoint, "externalId", &object.external_id)?
        .map(|r| id_of(&r, &what))
        .transpose()
}

fn create_user(api: &Api, user: &User) -> Result<Outcome, Stop> {
    if let Some(id) = adoptable_user(api, user)? {
        let what = format!("adopt the account {:?}", user.username);
        api.update(Endpoint::Users, &id, &what, |r| {
            edit_user(r, user, Login::Keep)
        })?;
        return Ok(Outcome::Matched(id));
    }
    let what = format!("create the account {:?}", user.username);
    let id = api.create(Endpoint::Users, &resources::new_user(user), &what)?;
    Ok(Outcome::Done(id))
}

/// An existing account this user should be: by `externalId`, then by
/// `userName`, then by email. One found by name or email that carries
/// another `externalId` belongs to another owner: a conflict.
fn adoptable_user(api: &Api, user: &User) -> Result<Option<String>, Stop> {
    let what = format!("look up the account {:?}", user.username);
    if let Some(found) = find_one(api, Endpoint::Users, "externalId", &user.external_id)? {
        return id_of(&found, &what).map(Some);
    }
    let by_name = ("userName", Some(&user.username));
    let by_email = ("emails.value", user.email.as_ref());
    for (attribute, value) in [by_name, by_email] {
        let Some(value) = value else { continue };
        let Some(found) = find_one(api, Endpoint::Users, attribute, value)? else {
            continue;
        };
        return match found["externalId"].as_str() {
            None | Some("") => id_of(&found, &what).map(Some),
            Some(holder) => Err(Stop::Outcome(Outcome::Conflict(format!(
                "the {attribute} {value:?} is taken in the SCIM service by the account with external id {holder:?}"
            )))),
        };
    }
    Ok(None)
}

fn create_group(api: &Api, group: &Group) -> Result<Outcome, Stop> {
    let ids = member_targets(api, &group.members)?;
    let what = format!("look up the group {:?}", group.name);
    let mut adopt = find_one(api, Endpoint::Groups, "externalId", &group.external_id)?;
    if adopt.is_none() {
        // A group of that name made by hand is adopted; one that carries
        // another externalId is left alone (names need not be unique).
        adopt = find_one(api, Endpoint::Groups, "displayName", &group.name)?
            .filter(|g| g["externalId"].as_str().is_none_or(str::is_empty));
    }
    if let Some(found) = adopt {
        let id = id_of(&found, &what)?;
        let what = format!("adopt the group {:?}", group.name);
        api.update(Endpoint::Groups, &id, &what, |r| {
            edit_group(r, api.base(), group, &ids)
        })?;
        return Ok(Outcome::Matched(id));
    }
    let what = format!("create the group {:?}", group.name);
    let body = resources::new_group(api.base(), group, &ids);
    Ok(Outcome::Done(api.create(Endpoint::Groups, &body, &what)?))
}

/// The service's ids for the users `members`. A member with no account in
/// the service yet is most likely still on its way: the change waits.
fn member_targets(api: &Api, members: &[ObjectRef]) -> Result<Vec<String>, Stop> {
    members
        .iter()
        .map(|m| {
            target_id(api, Endpoint::Users, m)?.ok_or_else(|| {
                Stop::Outcome(Outcome::RetryAfter(Retry {
                    seconds: DEFAULT_RETRY_SECONDS,
                    reason: format!(
                        "the member {:?} has no account in the SCIM service yet",
                        m.external_id
                    ),
                }))
            })
        })
        .collect()
}

/// The outcome for a change to an object the service does not have.
fn missing(endpoint: Endpoint, object: &ObjectRef) -> Stop {
    Stop::Outcome(Outcome::Refused(format!(
        "the {} {:?} has no resource in the SCIM service",
        endpoint.noun(),
        object.external_id
    )))
}

fn set_active(api: &Api, object: &ObjectRef, active: bool) -> Result<Outcome, Stop> {
    let id =
        target_id(api, Endpoint::Users, object)?.ok_or_else(|| missing(Endpoint::Users, object))?;
    let what = format!(
        "{} the account {:?}",
        if active { "enable" } else { "suspend" },
        object.external_id
    );
    if api.patch {
        let operation = json!({ "op": "replace", "path": "active", "value": active });
        api.patch(Endpoint::Users, &id, vec![operation], &what)?;
    } else {
        api.update(Endpoint::Users, &id, &what, |r| r["active"] = json!(active))?;
    }
    Ok(Outcome::Done(id))
}

fn change_members(api: &Api, change: &MemberChange) -> Result<Outcome, Stop> {
    let id = target_id(api, Endpoint::Groups, &change.group)?
        .ok_or_else(|| missing(Endpoint::Groups, &change.group))?;
    let add = member_targets(api, &change.add)?;
    // A member to remove that has no account is no member either.
    let mut remove = Vec::new();
    for m in &change.remove {
        remove.extend(target_id(api, Endpoint::Users, m)?);
    }
    if add.is_empty() && remove.is_empty() {
        return Ok(Outcome::Done(id));
    }
    let what = format!(
        "change the members of the group {:?}",
        change.group.external_id
    );
    if api.patch {
        let mut operations = Vec::new();
        if !add.is_empty() {
            let value: Vec<_> = add.iter().map(|m| member(api.base(), m)).collect();
            operations.push(json!({ "op": "add", "path": "members", "value": value }));
        }
        for m in &remove {
            let filter = serde_json::to_string(m).expect("a string serialises");
            operations
                .push(json!({ "op": "remove", "path": format!("members[value eq {filter}]") }));
        }
        api.patch(Endpoint::Groups, &id, operations, &what)?;
    } else {
        api.update(Endpoint::Groups, &id, &what, |r| {
            let mut ids = member_ids(r);
            ids.retain(|m| !remove.contains(m));
            ids.extend(
                add.iter()
                    .filter(|m| !ids.contains(m))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            r["members"] = resources::members(api.base(), &ids);
        })?;
    }
    Ok(Outcome::Done(id))
}

fn delete(api: &Api, endpoint: Endpoint, object: &ObjectRef) -> Result<Outcome, Stop> {
    let id = target_id(api, endpoint, object)?.ok_or_else(|| missing(endpoint, object))?;
    let what = format!("delete the {} {:?}", endpoint.noun(), object.external_id);
    api.delete(endpoint, &id, &what)?;
    Ok(Outcome::Done(id))
}
