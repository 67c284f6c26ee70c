//! What one target should hold: the users (accounts of the roles it takes,
//! linked from the connections it serves) and the groups (of the kinds it
//! takes) with their members, worked out from the store's accounts, links
//! and roster records, which the caller reads and passes in.
//!
//! Users are named later, by the plan, because a login depends on what the
//! target already holds; here each user carries the parts its login is
//! made from.

use std::collections::{BTreeMap, BTreeSet};

use rostersync_model::target::{
    ObjectRef, TargetCapability, TargetGroup, TargetGroupKind, TargetRole,
};
use rostersync_model::{Attribute, Group, GroupKind, MemberRole, Person, Role};

use super::TargetPolicy;
use super::identity::NameParts;

/// An account as the store holds it, with its source person when the
/// roster still has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceAccount {
    pub id: String,
    pub role: Role,
    pub mis_id: Option<String>,
    pub email: Option<String>,
    pub display_name: String,
    /// False once removed at the source (deprovisioned) or deleted.
    pub active: bool,
    /// The connection whose link makes it this target's.
    pub connection: String,
    pub person: Option<Person>,
}

/// A roster group with its members by account id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceGroup {
    pub connection: String,
    pub group: Group,
    pub members: Vec<(String, MemberRole)>,
}

/// Everything the desired state is made from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    pub accounts: Vec<SourceAccount>,
    pub groups: Vec<SourceGroup>,
}

/// A user the target should hold, before its login is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedUser {
    pub external_id: String,
    pub role: TargetRole,
    pub parts: NameParts,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: String,
    /// The account's own email, sent when the target has no email template.
    pub source_email: Option<String>,
    pub container: Option<String>,
    pub attributes: Vec<Attribute>,
}

/// The users and groups one target should hold, in external id order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    pub users: BTreeMap<String, WantedUser>,
    pub groups: BTreeMap<String, TargetGroup>,
}

fn target_role(role: Role) -> TargetRole {
    match role {
        Role::Student => TargetRole::Student,
        Role::Staff => TargetRole::Staff,
        Role::Contact => TargetRole::Contact,
    }
}

fn group_kind(kind: GroupKind) -> TargetGroupKind {
    match kind {
        GroupKind::Class => TargetGroupKind::Class,
        GroupKind::Registration => TargetGroupKind::Registration,
        GroupKind::Year => TargetGroupKind::Year,
        GroupKind::House | GroupKind::Intake | GroupKind::Other => TargetGroupKind::Other,
    }
}

fn group_kind_name(kind: GroupKind) -> &'static str {
    match kind {
        GroupKind::Class => "class",
        GroupKind::Registration => "registration",
        GroupKind::Year => "year",
        GroupKind::House => "house",
        GroupKind::Intake => "intake",
        GroupKind::Other => "other",
    }
}

/// A group's id in a target: unique across the connections it serves.
pub fn group_external_id(connection: &str, group: &str) -> String {
    format!("{connection}/{group}")
}

fn attribute(name: &str, value: &Option<String>) -> Option<Attribute> {
    value.as_ref().map(|value| Attribute {
        name: name.into(),
        value: value.clone(),
    })
}

fn wanted_user(policy: &TargetPolicy, account: &SourceAccount) -> WantedUser {
    let person = account.person.as_ref();
    let first = person.and_then(|p| p.preferred_first_name.clone().or(p.first_name.clone()));
    let last = person.and_then(|p| p.last_name.clone());
    let year = person.and_then(|p| p.year_group.clone());
    let role = target_role(account.role);
    let parts = NameParts {
        first: first.clone().unwrap_or_default(),
        last: last.clone().unwrap_or_default(),
        mis_id: account.mis_id.clone().unwrap_or_default(),
        year: year.clone().unwrap_or_default(),
        role: match role {
            TargetRole::Student => "student",
            TargetRole::Staff => "staff",
            TargetRole::Contact => "contact",
        }
        .into(),
        domain: policy.domain.clone(),
    };
    let container = policy
        .templates
        .user_container
        .as_ref()
        .map(|t| t.render(|p| parts.raw(p)));
    let attributes = [
        attribute("mis-id", &account.mis_id),
        attribute("year-group", &year),
        attribute(
            "registration-group",
            &person.and_then(|p| p.registration_group.clone()),
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    WantedUser {
        external_id: account.id.clone(),
        role,
        parts,
        given_name: first,
        family_name: last,
        display_name: account.display_name.clone(),
        source_email: account.email.clone(),
        container,
        attributes,
    }
}

/// What the target should hold. `capabilities` decide whether staff are
/// a group's owners or among its members, and whether it holds groups.
pub fn desired(
    policy: &TargetPolicy,
    capabilities: &[TargetCapability],
    source: &Source,
) -> Desired {
    let mut users = BTreeMap::new();
    for account in &source.accounts {
        if account.active
            && policy.serves(&account.connection)
            && policy.roles.contains(&target_role(account.role))
        {
            users.insert(account.id.clone(), wanted_user(policy, account));
        }
    }
    let mut groups = BTreeMap::new();
    if !capabilities.contains(&TargetCapability::Groups) {
        return Desired { users, groups };
    }
    let owners_apart = capabilities.contains(&TargetCapability::GroupOwners);
    for source_group in &source.groups {
        let group = &source_group.group;
        if !group.active
            || !policy.serves(&source_group.connection)
            || !policy.group_kinds.contains(&group.kind)
        {
            continue;
        }
        let value = |placeholder: &str| match placeholder {
            "kind" => group_kind_name(group.kind).to_string(),
            "name" => group
                .name
                .clone()
                .or(group.code.clone())
                .unwrap_or_else(|| group.id.clone()),
            "code" => group.code.clone().unwrap_or_else(|| group.id.clone()),
            "year" => group.year_group.clone().unwrap_or_default(),
            "prefix" => policy.group_prefix.clone(),
            _ => String::new(),
        };
        let mut members = BTreeSet::new();
        let mut owners = BTreeSet::new();
        for (account, role) in &source_group.members {
            let Some(user) = users.get(account) else {
                continue;
            };
            let teaches = *role == MemberRole::Teacher || user.role == TargetRole::Staff;
            if owners_apart && teaches {
                owners.insert(account.clone());
            } else {
                members.insert(account.clone());
            }
        }
        let external_id = group_external_id(&source_group.connection, &group.id);
        let refs = |ids: BTreeSet<String>| {
            ids.into_iter()
                .map(|external_id| ObjectRef {
                    external_id,
                    target_id: None,
                })
                .collect()
        };
        groups.insert(
            external_id.clone(),
            TargetGroup {
                external_id,
                name: policy.templates.group_name.render(value),
                kind: group_kind(group.kind),
                description: group.subject.clone(),
                container: policy
                    .templates
                    .group_container
                    .as_ref()
                    .map(|t| t.render(value)),
                members: refs(members),
                owners: refs(owners),
                attributes: [
                    attribute("code", &group.code),
                    attribute("year-group", &group.year_group),
                ]
                .into_iter()
                .flatten()
                .collect(),
            },
        );
    }
    Desired { users, groups }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::targets::Template;

    pub fn pupil(id: &str, first: &str, last: &str, connection: &str) -> SourceAccount {
        let mut person = Person::new(format!("P-{id}"), Role::Student);
        person.first_name = Some(first.into());
        person.last_name = Some(last.into());
        person.year_group = Some("Year 7".into());
        SourceAccount {
            id: id.into(),
            role: Role::Student,
            mis_id: Some(format!("M{id}")),
            email: None,
            display_name: format!("{first} {last}"),
            active: true,
            connection: connection.into(),
            person: Some(person),
        }
    }

    pub fn class(id: &str, name: &str, members: &[(&str, MemberRole)]) -> SourceGroup {
        SourceGroup {
            connection: "north".into(),
            group: Group {
                id: id.into(),
                kind: GroupKind::Class,
                name: Some(name.into()),
                code: Some(id.into()),
                subject: Some("Maths".into()),
                year_group: Some("7".into()),
                active: true,
                parent: None,
            },
            members: members.iter().map(|(a, r)| (a.to_string(), *r)).collect(),
        }
    }

    #[test]
    fn a_target_gets_the_served_connections_roles_and_group_kinds() {
        let mut teacher = pupil("T1", "Ada", "Byron", "north");
        teacher.role = Role::Staff;
        let mut parent = pupil("C1", "Pat", "Doe", "north");
        parent.role = Role::Contact;
        let mut leaver = pupil("S3", "Lee", "Gone", "north");
        leaver.active = false;
        let source = Source {
            accounts: vec![
                pupil("S1", "Zoë", "O'Neil", "north"),
                pupil("S2", "Sam", "Other", "south"),
                teacher,
                parent,
                leaver,
            ],
            groups: vec![class(
                "7A-Ma",
                "7A Maths",
                &[
                    ("S1", MemberRole::Student),
                    ("T1", MemberRole::Teacher),
                    ("S3", MemberRole::Student),
                ],
            )],
        };
        let policy = TargetPolicy {
            connections: vec!["north".into()],
            group_prefix: "rs-".into(),
            templates: crate::targets::Templates {
                user_container: Some(Template::fixed("ou={year},ou=Students")),
                group_container: Some(Template::fixed("ou=Classes")),
                ..Default::default()
            },
            ..TargetPolicy::default()
        };
        let with_owners = [TargetCapability::Groups, TargetCapability::GroupOwners];
        let desired = desired(&policy, &with_owners, &source);
        assert_eq!(desired.users.keys().collect::<Vec<_>>(), ["S1", "T1"]);
        assert_eq!(
            desired.users["S1"].container.as_deref(),
            Some("ou=Year 7,ou=Students")
        );
        let group = &desired.groups["north/7A-Ma"];
        assert_eq!(group.name, "rs-7A Maths");
        assert_eq!(group.container.as_deref(), Some("ou=Classes"));
        let ids = |refs: &[ObjectRef]| {
            refs.iter()
                .map(|r| r.external_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&group.members), ["S1"]);
        assert_eq!(ids(&group.owners), ["T1"]);

        let plain = desired_without_owners(&policy, &source);
        assert_eq!(ids(&plain.groups["north/7A-Ma"].members), ["S1", "T1"]);
        assert!(super::desired(&policy, &[], &source).groups.is_empty());
    }

    fn desired_without_owners(policy: &TargetPolicy, source: &Source) -> Desired {
        desired(policy, &[TargetCapability::Groups], source)
    }
}
