//! Constructors for the contracts' records, so a connector or a target
//! names only the fields it has.

use crate::{
    Capability, ConnectorInfo, ContactType, Group, GroupKind, MemberRole, Membership, Person,
    Relationship, Role, SettingKind, SettingSpec,
};

/// `new`, `setting` and `capability` on a contract's info record, and the
/// setting constructors on its `setting-spec`: the connector and target
/// contracts declare the same shapes as separate types.
macro_rules! describing {
    ($info:ty, $spec:ident, $kind:ident, $capability:ty) => {
        impl $info {
            pub fn new(provider: &str, version: &str, description: &str) -> Self {
                Self {
                    provider: provider.into(),
                    version: version.into(),
                    description: description.into(),
                    settings: Vec::new(),
                    capabilities: Vec::new(),
                }
            }

            pub fn setting(mut self, spec: $spec) -> Self {
                self.settings.push(spec);
                self
            }

            pub fn capability(mut self, capability: $capability) -> Self {
                self.capabilities.push(capability);
                self
            }
        }

        impl $spec {
            /// A base URL; the host allows requests to its host.
            pub fn base_url(name: &str, description: &str, default: Option<&str>) -> Self {
                Self::of($kind::BaseUrl, name, description, true, default)
            }

            /// A credential, required, never logged by the host.
            pub fn secret(name: &str, description: &str) -> Self {
                Self::of($kind::Secret, name, description, true, None)
            }

            /// A credential some systems do without.
            pub fn optional_secret(name: &str, description: &str) -> Self {
                Self::of($kind::Secret, name, description, false, None)
            }

            pub fn text(
                name: &str,
                description: &str,
                required: bool,
                default: Option<&str>,
            ) -> Self {
                Self::of($kind::Text, name, description, required, default)
            }

            fn of(
                kind: $kind,
                name: &str,
                description: &str,
                required: bool,
                default: Option<&str>,
            ) -> Self {
                Self {
                    name: name.into(),
                    description: description.into(),
                    kind,
                    required,
                    default_value: default.map(Into::into),
                }
            }
        }
    };
}

describing!(ConnectorInfo, SettingSpec, SettingKind, Capability);

mod target {
    use crate::target::{Capability, SettingKind, SettingSpec, TargetInfo};

    describing!(TargetInfo, SettingSpec, SettingKind, Capability);
}

impl Person {
    /// A person with only an id and a role; set the fields you have.
    pub fn new(id: impl Into<String>, role: Role) -> Self {
        Self {
            id: id.into(),
            mis_id: None,
            role,
            salutation: None,
            first_name: None,
            preferred_first_name: None,
            middle_names: None,
            last_name: None,
            pronouns: None,
            email: None,
            username: None,
            date_of_birth: None,
            start_date: None,
            leaving_date: None,
            enrolment: None,
            year_group: None,
            registration_group: None,
            admission: None,
            attributes: Vec::new(),
        }
    }
}

impl Group {
    pub fn new(id: impl Into<String>, kind: GroupKind, name: Option<String>) -> Self {
        Self {
            id: id.into(),
            kind,
            name,
            code: None,
            subject: None,
            year_group: None,
            active: true,
            parent: None,
        }
    }
}

impl Membership {
    pub fn new(group: impl Into<String>, person: impl Into<String>, role: MemberRole) -> Self {
        Self {
            group: group.into(),
            person: person.into(),
            role,
            start_date: None,
            end_date: None,
        }
    }
}

impl Relationship {
    pub fn new(
        student: impl Into<String>,
        contact: impl Into<String>,
        contact_type: ContactType,
    ) -> Self {
        Self {
            student: student.into(),
            contact: contact.into(),
            contact_type,
            relationship: None,
            priority: None,
            parental_responsibility: false,
        }
    }
}
