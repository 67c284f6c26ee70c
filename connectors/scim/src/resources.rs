//! The SCIM resources this target writes and reads (RFC 7643): the User
//! (§4.1: `userName`, `name.givenName`/`familyName`, `displayName`,
//! `emails` with one `primary`, `active`, the write-only `password`) and
//! the Group (§4.2: `displayName`, `members` with `value`, `$ref`, `type`),
//! both with `externalId` (§3.1), which carries the host's id for the
//! object so it is found again whatever else changes.
//!
//! Updates edit the resource as the service holds it, so attributes this
//! target does not manage (phone numbers, roles set by hand, extensions)
//! survive.

use rostersync_connector_sdk::target::{Group, HeldGroup, HeldUser, User};
use serde_json::{Map, Value, json};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// Whether an update may change the login of an account it adopts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// Set `userName` to the host's.
    Set,
    /// Keep the `userName` the account already has: an adopted account
    /// keeps its login.
    Keep,
}

/// A new User resource for `user`.
pub fn new_user(user: &User) -> Value {
    let mut resource = json!({ "schemas": [USER_SCHEMA] });
    edit_user(&mut resource, user, Login::Set);
    if let Some(password) = &user.initial_password {
        resource["password"] = json!(password);
    }
    resource
}

/// Brings a User resource up to `user`, leaving what this target does not
/// manage as it is.
pub fn edit_user(resource: &mut Value, user: &User, login: Login) {
    let object = object(resource);
    if login == Login::Set || !object.contains_key("userName") {
        object.insert("userName".into(), json!(user.username));
    }
    object.insert("externalId".into(), json!(user.external_id));
    object.insert("displayName".into(), json!(user.display_name));
    object.insert("active".into(), json!(user.active));
    let name = object
        .entry("name")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    if let Some(name) = name {
        for (field, value) in [
            ("givenName", &user.given_name),
            ("familyName", &user.family_name),
        ] {
            match value {
                Some(value) => name.insert(field.into(), json!(value)),
                None => name.remove(field),
            };
        }
    }
    if let Some(email) = &user.email {
        set_primary_email(object, email);
    }
}

/// RFC 7643 §2.4: at most one value of a multi-valued attribute is
/// `primary`. The host's email becomes that one.
fn set_primary_email(user: &mut Map<String, Value>, email: &str) {
    let emails = user.entry("emails").or_insert_with(|| json!([]));
    if !emails.is_array() {
        *emails = json!([]);
    }
    let list = emails.as_array_mut().expect("made an array above");
    match list.iter_mut().find(|e| e["primary"] == json!(true)) {
        Some(primary) => primary["value"] = json!(email),
        None => list.insert(
            0,
            json!({ "value": email, "type": "work", "primary": true }),
        ),
    }
}

/// The `members` value of a group holding the users `ids`.
pub fn members(base: &str, ids: &[String]) -> Value {
    Value::Array(ids.iter().map(|id| member(base, id)).collect())
}

/// RFC 7643 §4.2: a member is its id, its URI and its type.
pub fn member(base: &str, id: &str) -> Value {
    json!({ "value": id, "$ref": format!("{base}/Users/{id}"), "type": "User" })
}

/// A new Group resource for `group` holding the users `member_ids`.
pub fn new_group(base: &str, group: &Group, member_ids: &[String]) -> Value {
    let mut resource = json!({ "schemas": [GROUP_SCHEMA] });
    edit_group(&mut resource, base, group, member_ids);
    resource
}

/// Brings a Group resource up to `group` with exactly the users
/// `member_ids`.
pub fn edit_group(resource: &mut Value, base: &str, group: &Group, member_ids: &[String]) {
    let object = object(resource);
    object.insert("displayName".into(), json!(group.name));
    object.insert("externalId".into(), json!(group.external_id));
    object.insert("members".into(), members(base, member_ids));
}

/// The user ids a Group resource holds.
pub fn member_ids(resource: &Value) -> Vec<String> {
    resource["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["value"].as_str().map(str::to_string))
        .collect()
}

fn object(resource: &mut Value) -> &mut Map<String, Value> {
    if !resource.is_object() {
        *resource = json!({});
    }
    resource.as_object_mut().expect("made an object above")
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_string)
}

/// A User resource as the host reads it back; `None` without an id.
pub fn held_user(resource: &Value) -> Option<HeldUser> {
    let emails = resource["emails"].as_array();
    let email = emails
        .and_then(|list| {
            list.iter()
                .find(|e| e["primary"] == json!(true))
                .or_else(|| list.first())
        })
        .and_then(|e| text(&e["value"]));
    Some(HeldUser {
        target_id: text(&resource["id"])?,
        external_id: text(&resource["externalId"]),
        username: text(&resource["userName"]).unwrap_or_default(),
        email,
        given_name: text(&resource["name"]["givenName"]),
        family_name: text(&resource["name"]["familyName"]),
        display_name: text(&resource["displayName"]),
        // RFC 7643 §4.1.1: a service that does not say is taken as active.
        active: resource["active"].as_bool().unwrap_or(true),
        container: None,
    })
}

/// A Group resource as the host reads it back; `None` without an id.
pub fn held_group(resource: &Value) -> Option<HeldGroup> {
    Some(HeldGroup {
        target_id: text(&resource["id"])?,
        external_id: text(&resource["externalId"]),
        name: text(&resource["displayName"]).unwrap_or_default(),
        members: member_ids(resource),
        owners: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostersync_connector_sdk::target::Role;

    fn user() -> User {
        User {
            external_id: "acc-1".into(),
            username: "ada.lovelace".into(),
            email: Some("ada@school.example".into()),
            given_name: Some("Ada".into()),
            family_name: Some("Lovelace".into()),
            display_name: "Ada Lovelace".into(),
            role: Role::Student,
            active: true,
            container: None,
            initial_password: None,
            attributes: Vec::new(),
        }
    }

    #[test]
    fn an_update_keeps_what_the_target_does_not_manage() {
        // A resource as RFC 7643 §8.2 shows a full User, trimmed.
        let mut held = json!({
            "schemas": [USER_SCHEMA],
            "id": "2819c223",
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen", "honorificPrefix": "Ms."},
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "phoneNumbers": [{"value": "555-555-5555", "type": "work"}]
        });
        edit_user(&mut held, &user(), Login::Keep);
        assert_eq!(held["userName"], "bjensen", "an adopted login is kept");
        assert_eq!(held["externalId"], "acc-1");
        assert_eq!(held["name"]["givenName"], "Ada");
        assert_eq!(held["name"]["honorificPrefix"], "Ms.");
        assert_eq!(held["emails"][0]["value"], "ada@school.example");
        assert_eq!(held["emails"][1]["value"], "babs@jensen.org");
        assert_eq!(held["phoneNumbers"][0]["value"], "555-555-5555");
        edit_user(&mut held, &user(), Login::Set);
        assert_eq!(held["userName"], "ada.lovelace");
    }

    #[test]
    fn users_and_groups_read_back_as_held() {
        let mut created = new_user(&user());
        created["id"] = json!("u1");
        let held = held_user(&created).unwrap();
        assert_eq!(held.email.as_deref(), Some("ada@school.example"));
        assert!(held.active);
        let group = Group {
            external_id: "grp-7a".into(),
            name: "7A".into(),
            kind: rostersync_connector_sdk::target::GroupKind::Registration,
            description: None,
            container: None,
            members: Vec::new(),
            owners: Vec::new(),
            attributes: Vec::new(),
        };
        let mut resource = new_group("http://scim.test/v2", &group, &["u1".into(), "u2".into()]);
        assert_eq!(
            resource["members"][1]["$ref"],
            "http://scim.test/v2/Users/u2"
        );
        resource["id"] = json!("g1");
        assert_eq!(held_group(&resource).unwrap().members, ["u1", "u2"]);
    }
}
