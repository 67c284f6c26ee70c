//! One binding module per released WIT version, and the conversions from
//! each version's generated types into the host's roster model.
//!
//! Adding a version: freeze its WIT under `wit/since_vX.Y.Z/`, add a module
//! here with `bind_version!`, write the `Person` conversion (the only type
//! that has changed so far), and add a `WitVersion` variant.
//!
//! Targets speak their own contract, `rostersync:target`, released once so
//! far: [`target_v0_1`].

use std::fmt;

use rostersync_model as model;
use rostersync_model::MalformedRecord;

/// A WIT contract version the host can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WitVersion {
    V0_1_0,
    V0_2_0,
}

impl WitVersion {
    pub const ALL: [WitVersion; 2] = [WitVersion::V0_1_0, WitVersion::V0_2_0];

    pub fn as_str(self) -> &'static str {
        match self {
            WitVersion::V0_1_0 => "0.1.0",
            WitVersion::V0_2_0 => "0.2.0",
        }
    }

    pub fn parse(version: &str) -> Option<WitVersion> {
        Self::ALL.into_iter().find(|v| v.as_str() == version)
    }
}

impl fmt::Display for WitVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The exported interface, without its version.
pub const SOURCE_INTERFACE: &str = "rostersync:connector/source";

/// A target's exported interface, without its version.
pub const SINK_INTERFACE: &str = "rostersync:target/sink";

pub mod target_v0_1;

/// Splits a version's generated `Person` into its module's `PersonCommon`
/// (the fields every version shares) and the fields that version adds.
macro_rules! split_person {
    ($p:ident { $($extra:ident),* }) => {{
        let Person {
            id, mis_id, role, salutation, first_name, preferred_first_name,
            last_name, email, username, date_of_birth, start_date, leaving_date,
            enrolment, year_group, registration_group, admission, attributes,
            $($extra),*
        } = $p;
        (
            PersonCommon {
                id, mis_id, role, salutation, first_name, preferred_first_name,
                last_name, email, username, date_of_birth, start_date,
                leaving_date, enrolment, year_group, registration_group,
                admission, attributes,
            },
            ($($extra),*)
        )
    }};
}

/// Generates one version's bindings plus the conversions every version
/// shares. Types that changed between versions (only `person` so far) are
/// converted by hand in the version's module.
macro_rules! bind_version {
    ($module:ident, $path:literal, { $($own:item)* }) => {
        pub mod $module {
            wasmtime::component::bindgen!({
                world: "connector",
                path: $path,
                imports: { default: trappable },
                exports: { default: async },
            });

            pub use exports::rostersync::connector::source::GuestSnapshot;
            pub use rostersync::connector::host::LogLevel;
            pub use rostersync::connector::types::*;

            use super::opt_date;
            use rostersync_model as model;
            use rostersync_model::MalformedRecord;

            pub fn settings(settings: &model::Settings) -> Vec<Setting> {
                settings
                    .iter()
                    .map(|(name, value)| Setting {
                        name: name.to_string(),
                        value: value.to_string(),
                    })
                    .collect()
            }

            pub fn mode(mode: &model::Mode) -> Mode {
                match mode {
                    model::Mode::Full => Mode::Full,
                    model::Mode::Delta(cursor) => Mode::Delta(cursor.clone()),
                }
            }

            pub fn attribute(a: Attribute) -> model::Attribute {
                model::Attribute {
                    name: a.name,
                    value: a.value,
                }
            }

            /// Who the connector says it is, its texts clipped: they reach
            /// every plugin list.
            pub fn connector_info(info: ConnectorInfo) -> model::ConnectorInfo {
                let said = |m: String| super::clip(&m, super::MAX_ERROR_BYTES);
                model::ConnectorInfo {
                    provider: said(info.provider),
                    version: said(info.version),
                    description: said(info.description),
                    settings: info
                        .settings
                        .into_iter()
                        .take(super::MAX_SETTINGS)
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
                            Capability::DeltaReads => model::Capability::DeltaReads,
                            Capability::Contacts => model::Capability::Contacts,
                            Capability::DropFolder => model::Capability::DropFolder,
                        })
                        .collect(),
                }
            }

            pub fn school_info(school: SchoolInfo) -> model::SchoolInfo {
                model::SchoolInfo {
                    id: school.id,
                    name: school.name,
                    details: school.details.into_iter().map(attribute).collect(),
                }
            }

            /// The connector's error, its message clipped: it reaches run
            /// messages, the outbox, webhooks and email.
            pub fn sync_error(error: SyncError) -> model::SyncError {
                let said = |m: String| super::clip(&m, super::MAX_ERROR_BYTES);
                match error {
                    SyncError::Unauthorized(m) => model::SyncError::Unauthorized(said(m)),
                    SyncError::Forbidden(m) => model::SyncError::Forbidden(said(m)),
                    SyncError::RateLimited(r) => model::SyncError::RateLimited {
                        retry_after_seconds: r.retry_after_seconds,
                        message: said(r.message),
                    },
                    SyncError::Unavailable(m) => model::SyncError::Unavailable(said(m)),
                    SyncError::BadSettings(m) => model::SyncError::BadSettings(said(m)),
                    SyncError::BadResponse(m) => model::SyncError::BadResponse(said(m)),
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

            fn role(role: Role) -> model::Role {
                match role {
                    Role::Student => model::Role::Student,
                    Role::Staff => model::Role::Staff,
                    Role::Contact => model::Role::Contact,
                }
            }

            fn enrolment(status: EnrolmentStatus) -> model::EnrolmentStatus {
                match status {
                    EnrolmentStatus::OnRoll => model::EnrolmentStatus::OnRoll,
                    EnrolmentStatus::Prospective => model::EnrolmentStatus::Prospective,
                    EnrolmentStatus::Left => model::EnrolmentStatus::Left,
                }
            }

            fn admission(
                describe: &dyn Fn() -> String,
                a: Admission,
            ) -> Result<model::Admission, MalformedRecord> {
                Ok(model::Admission {
                    application_active: a.application_active,
                    admission_date: opt_date(describe, "admission-date", a.admission_date)?,
                    admission_status: a.admission_status,
                    intake_group: a.intake_group,
                })
            }

            fn group(g: Group) -> model::Group {
                model::Group {
                    id: g.id,
                    kind: match g.kind {
                        GroupKind::Class => model::GroupKind::Class,
                        GroupKind::Registration => model::GroupKind::Registration,
                        GroupKind::Year => model::GroupKind::Year,
                        GroupKind::House => model::GroupKind::House,
                        GroupKind::Intake => model::GroupKind::Intake,
                        GroupKind::Other => model::GroupKind::Other,
                    },
                    name: g.name,
                    code: g.code,
                    subject: g.subject,
                    year_group: g.year_group,
                    active: g.active,
                    parent: g.parent,
                }
            }

            fn membership(m: Membership) -> Result<model::Membership, MalformedRecord> {
                let describe =
                    || format!("membership of {:?} in {:?}", m.person, m.group);
                Ok(model::Membership {
                    role: match m.role {
                        MemberRole::Student => model::MemberRole::Student,
                        MemberRole::Teacher => model::MemberRole::Teacher,
                        MemberRole::Other => model::MemberRole::Other,
                    },
                    start_date: opt_date(&describe, "start-date", m.start_date.clone())?,
                    end_date: opt_date(&describe, "end-date", m.end_date.clone())?,
                    group: m.group,
                    person: m.person,
                })
            }

            fn relationship(r: Relationship) -> model::Relationship {
                model::Relationship {
                    student: r.student,
                    contact: r.contact,
                    contact_type: match r.contact_type {
                        ContactType::Primary => model::ContactType::Primary,
                        ContactType::Secondary => model::ContactType::Secondary,
                        ContactType::Emergency => model::ContactType::Emergency,
                        ContactType::Other => model::ContactType::Other,
                    },
                    relationship: r.relationship,
                    priority: r.priority,
                    parental_responsibility: r.parental_responsibility,
                }
            }

            fn removal(r: Removal) -> model::Removal {
                match r {
                    Removal::Person(id) => model::Removal::Person(id),
                    Removal::Group(id) => model::Removal::Group(id),
                    Removal::Membership(k) => model::Removal::Membership(model::MembershipKey {
                        group: k.group,
                        person: k.person,
                    }),
                    Removal::Relationship(k) => {
                        model::Removal::Relationship(model::RelationshipKey {
                            student: k.student,
                            contact: k.contact,
                        })
                    }
                }
            }

            /// Converts one record, parsing its dates; a record that breaks
            /// the contract is named in the error.
            pub fn record(record: RosterRecord) -> Result<model::Record, MalformedRecord> {
                Ok(match record {
                    RosterRecord::Person(p) => model::Record::Person(person(p)?),
                    RosterRecord::Group(g) => model::Record::Group(group(g)),
                    RosterRecord::Membership(m) => model::Record::Membership(membership(m)?),
                    RosterRecord::Relationship(r) => {
                        model::Record::Relationship(relationship(r))
                    }
                    RosterRecord::Removed(r) => model::Record::Removed(removal(r)),
                })
            }

            /// The person fields every version shares; the version's own
            /// `person` fills in what it adds.
            fn person_common(
                p: PersonCommon,
            ) -> Result<model::Person, MalformedRecord> {
                let id = p.id;
                let describe = || format!("person {id:?}");
                Ok(model::Person {
                    mis_id: p.mis_id,
                    role: role(p.role),
                    salutation: p.salutation,
                    first_name: p.first_name,
                    preferred_first_name: p.preferred_first_name,
                    middle_names: None,
                    last_name: p.last_name,
                    pronouns: None,
                    email: p.email,
                    username: p.username,
                    date_of_birth: opt_date(&describe, "date-of-birth", p.date_of_birth)?,
                    start_date: opt_date(&describe, "start-date", p.start_date)?,
                    leaving_date: opt_date(&describe, "leaving-date", p.leaving_date)?,
                    enrolment: p.enrolment.map(enrolment),
                    year_group: p.year_group,
                    registration_group: p.registration_group,
                    admission: p.admission.map(|a| admission(&describe, a)).transpose()?,
                    attributes: p.attributes.into_iter().map(attribute).collect(),
                    id,
                })
            }

            /// The fields of `person` as released in 0.1.0.
            struct PersonCommon {
                id: String,
                mis_id: Option<String>,
                role: Role,
                salutation: Option<String>,
                first_name: Option<String>,
                preferred_first_name: Option<String>,
                last_name: Option<String>,
                email: Option<String>,
                username: Option<String>,
                date_of_birth: Option<String>,
                start_date: Option<String>,
                leaving_date: Option<String>,
                enrolment: Option<EnrolmentStatus>,
                year_group: Option<String>,
                registration_group: Option<String>,
                admission: Option<Admission>,
                attributes: Vec<Attribute>,
            }


            $($own)*
        }
    };
}

bind_version!(v0_1, "../../wit/since_v0.1.0", {
    /// 0.1.0 has no middle names or pronouns.
    fn person(p: Person) -> Result<model::Person, MalformedRecord> {
        let (common, ()) = split_person!(p {});
        person_common(common)
    }
});

bind_version!(v0_2, "../../wit/since_v0.2.0", {
    fn person(p: Person) -> Result<model::Person, MalformedRecord> {
        let (common, (middle_names, pronouns)) = split_person!(p {
            middle_names,
            pronouns
        });
        Ok(model::Person {
            middle_names,
            pronouns,
            ..person_common(common)?
        })
    }
});

use crate::budget::{MAX_QUOTED_BYTES, clip};

/// Bytes kept of an error message or description a connector writes.
const MAX_ERROR_BYTES: usize = 2048;
/// Settings a connector may declare.
const MAX_SETTINGS: usize = 64;

/// The years a roster date may fall in: the oldest staff member's birth to
/// the furthest planned leaving date.
const PLAUSIBLE_YEARS: std::ops::RangeInclusive<i32> = 1900..=2100;

/// A contract date: exactly `YYYY-MM-DD` (four-digit year, so `+12345` and
/// `0000` are refused) in a plausible year.
fn date(
    describe: &dyn Fn() -> String,
    field: &'static str,
    value: String,
) -> Result<model::Date, MalformedRecord> {
    let record = || clip(&describe(), MAX_QUOTED_BYTES);
    let shape = value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shape {
        return Err(MalformedRecord {
            record: record(),
            field,
            reason: format!(
                "is {:?}, not a date in the form YYYY-MM-DD",
                clip(&value, MAX_QUOTED_BYTES)
            ),
        });
    }
    let parsed = model::parse_date(record, field, &value)?;
    if !PLAUSIBLE_YEARS.contains(&chrono::Datelike::year(&parsed)) {
        return Err(MalformedRecord {
            record: record(),
            field,
            reason: format!(
                "is {value:?}, outside the years {} to {} a roster date can fall in",
                PLAUSIBLE_YEARS.start(),
                PLAUSIBLE_YEARS.end()
            ),
        });
    }
    Ok(parsed)
}

fn opt_date(
    describe: &dyn Fn() -> String,
    field: &'static str,
    value: Option<String>,
) -> Result<Option<model::Date>, MalformedRecord> {
    value.map(|v| date(describe, field, v)).transpose()
}
