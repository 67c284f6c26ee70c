//! Bindings for `rostersync:target@0.1.0` (`wit/target/since_v0.1.0`), and
//! the conversions between its generated types and the host's target model
//! (`rostersync_model::target`). Everything a target hands back passes
//! through here clipped: it reaches the delivery log, errors and logs.

wasmtime::component::bindgen!({
    world: "target",
    path: "../../wit/target/since_v0.1.0",
    imports: { default: trappable },
    exports: { default: async },
});

pub use rostersync::target::host::LogLevel;
pub use rostersync::target::types::*;

use rostersync_model as model;
use rostersync_model::target as t;

use super::{MAX_ERROR_BYTES, MAX_SETTINGS, clip};

/// The contract version these bindings speak.
pub const VERSION: &str = "0.1.0";

fn said(message: String) -> String {
    clip(&message, MAX_ERROR_BYTES)
}

pub fn settings(settings: &model::Settings) -> Vec<Setting> {
    settings
        .iter()
        .map(|(name, value)| Setting {
            name: name.to_string(),
            value: value.to_string(),
        })
        .collect()
}

/// Who the target says it is, its texts clipped: they reach every list.
pub fn target_info(info: TargetInfo) -> t::TargetInfo {
    t::TargetInfo {
        provider: said(info.provider),
        version: said(info.version),
        description: said(info.description),
        settings: info
            .settings
            .into_iter()
            .take(MAX_SETTINGS)
            .map(|s| model::SettingSpec {
                name: said(s.name),
                description: said(s.description),
                kind: match s.kind {
                    SettingKind::Text => model::SettingKind::Text,
                    SettingKind::Secret => model::SettingKind::Secret,
                    SettingKind::BaseUrl => model::SettingKind::BaseUrl,
                },
                required: s.required,
                default_value: s.default_value,
            })
            .collect(),
        capabilities: info
            .capabilities
            .into_iter()
            .map(|c| match c {
                Capability::Groups => t::TargetCapability::Groups,
                Capability::GroupOwners => t::TargetCapability::GroupOwners,
                Capability::Suspend => t::TargetCapability::Suspend,
                Capability::ReadBack => t::TargetCapability::ReadBack,
                Capability::Passwords => t::TargetCapability::Passwords,
            })
            .collect(),
    }
}

/// The target's error for a whole call, its message clipped.
pub fn target_error(error: TargetError) -> model::SyncError {
    match error {
        TargetError::Unauthorized(m) => model::SyncError::Unauthorized(said(m)),
        TargetError::Forbidden(m) => model::SyncError::Forbidden(said(m)),
        TargetError::RateLimited(r) => model::SyncError::RateLimited {
            retry_after_seconds: Some(r.seconds),
            message: said(r.reason),
        },
        TargetError::Unavailable(m) => model::SyncError::Unavailable(said(m)),
        TargetError::BadSettings(m) => model::SyncError::BadSettings(said(m)),
        TargetError::BadResponse(m) => model::SyncError::BadResponse(said(m)),
    }
}

pub fn log_level(level: LogLevel) -> tracing::Level {
    match level {
        LogLevel::Trace => tracing::Level::TRACE,
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Warn => tracing::Level::WARN,
        LogLevel::Error => tracing::Level::ERROR,
    }
}

fn attributes(attributes: &[model::Attribute]) -> Vec<Attribute> {
    attributes
        .iter()
        .map(|a| Attribute {
            name: a.name.clone(),
            value: a.value.clone(),
        })
        .collect()
}

fn object(object: &t::ObjectRef) -> ObjectRef {
    ObjectRef {
        external_id: object.external_id.clone(),
        target_id: object.target_id.clone(),
    }
}

fn objects(list: &[t::ObjectRef]) -> Vec<ObjectRef> {
    list.iter().map(object).collect()
}

fn user(user: &t::TargetUser) -> User {
    User {
        external_id: user.external_id.clone(),
        username: user.username.clone(),
        email: user.email.clone(),
        given_name: user.given_name.clone(),
        family_name: user.family_name.clone(),
        display_name: user.display_name.clone(),
        role: match user.role {
            t::TargetRole::Student => Role::Student,
            t::TargetRole::Staff => Role::Staff,
            t::TargetRole::Contact => Role::Contact,
        },
        active: user.active,
        container: user.container.clone(),
        initial_password: user.initial_password.clone(),
        attributes: attributes(&user.attributes),
    }
}

fn group(group: &t::TargetGroup) -> Group {
    Group {
        external_id: group.external_id.clone(),
        name: group.name.clone(),
        kind: match group.kind {
            t::TargetGroupKind::Class => GroupKind::Class,
            t::TargetGroupKind::Registration => GroupKind::Registration,
            t::TargetGroupKind::Year => GroupKind::Year,
            t::TargetGroupKind::Other => GroupKind::Other,
        },
        description: group.description.clone(),
        container: group.container.clone(),
        members: objects(&group.members),
        owners: objects(&group.owners),
        attributes: attributes(&group.attributes),
    }
}

/// One change of a batch, as the target receives it.
pub fn change_item(item: &t::ChangeItem) -> ChangeItem {
    let change = match &item.change {
        t::TargetChange::CreateUser { user: u } => Change::CreateUser(user(u)),
        t::TargetChange::UpdateUser { target_id, user: u } => Change::UpdateUser(UserUpdate {
            target_id: target_id.clone(),
            user: user(u),
        }),
        t::TargetChange::SuspendUser { object: o } => Change::SuspendUser(object(o)),
        t::TargetChange::EnableUser { object: o } => Change::EnableUser(object(o)),
        t::TargetChange::DeleteUser { object: o } => Change::DeleteUser(object(o)),
        t::TargetChange::CreateGroup { group: g } => Change::CreateGroup(group(g)),
        t::TargetChange::UpdateGroup {
            target_id,
            group: g,
        } => Change::UpdateGroup(GroupUpdate {
            target_id: target_id.clone(),
            group: group(g),
        }),
        t::TargetChange::ChangeMembers { members } => Change::ChangeMembers(MemberChange {
            group: object(&members.group),
            add: objects(&members.add),
            remove: objects(&members.remove),
            add_owners: objects(&members.add_owners),
            remove_owners: objects(&members.remove_owners),
        }),
        t::TargetChange::DeleteGroup { object: o } => Change::DeleteGroup(object(o)),
    };
    ChangeItem {
        key: item.key.clone(),
        change,
    }
}

/// The answer to one change, its messages clipped (its ids are checked by
/// the budget, not cut).
pub fn change_result(result: ChangeResult) -> t::ChangeResult {
    t::ChangeResult {
        key: result.key,
        outcome: match result.outcome {
            Outcome::Done(id) => t::Outcome::Done(id),
            Outcome::Matched(id) => t::Outcome::Matched(id),
            Outcome::Conflict(m) => t::Outcome::Conflict(said(m)),
            Outcome::RetryAfter(r) => t::Outcome::RetryAfter {
                seconds: r.seconds,
                reason: said(r.reason),
            },
            Outcome::Refused(m) => t::Outcome::Refused(said(m)),
        },
    }
}

pub fn object_kind(kind: t::ObjectKind) -> ObjectKind {
    match kind {
        t::ObjectKind::User => ObjectKind::User,
        t::ObjectKind::Group => ObjectKind::Group,
    }
}

pub fn page(page: Page) -> t::HeldPage {
    t::HeldPage {
        objects: page
            .objects
            .into_iter()
            .map(|object| match object {
                HeldObject::User(u) => t::HeldObject::User(t::HeldUser {
                    target_id: u.target_id,
                    external_id: u.external_id,
                    username: u.username,
                    email: u.email,
                    given_name: u.given_name,
                    family_name: u.family_name,
                    display_name: u.display_name,
                    active: u.active,
                    container: u.container,
                }),
                HeldObject::Group(g) => t::HeldObject::Group(t::HeldGroup {
                    target_id: g.target_id,
                    external_id: g.external_id,
                    name: g.name,
                    members: g.members,
                    owners: g.owners,
                }),
            })
            .collect(),
        next: page.next,
    }
}
