//! Roster records: people, groups, memberships, relationships, removals.

use serde::{Deserialize, Serialize};

use crate::Attribute;

/// A calendar date. Connectors send ISO 8601 `YYYY-MM-DD`.
pub type Date = chrono::NaiveDate;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Student,
    Staff,
    Contact,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnrolmentStatus {
    OnRoll,
    Prospective,
    Left,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Admission {
    pub application_active: bool,
    pub admission_date: Option<Date>,
    pub admission_status: Option<String>,
    pub intake_group: Option<String>,
}

/// A student, member of staff or contact, as the provider holds them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Person {
    pub id: String,
    pub mis_id: Option<String>,
    pub role: Role,
    pub salutation: Option<String>,
    pub first_name: Option<String>,
    pub preferred_first_name: Option<String>,
    pub middle_names: Option<String>,
    pub last_name: Option<String>,
    pub pronouns: Option<String>,
    pub email: Option<String>,
    pub username: Option<String>,
    pub date_of_birth: Option<Date>,
    pub start_date: Option<Date>,
    pub leaving_date: Option<Date>,
    pub enrolment: Option<EnrolmentStatus>,
    pub year_group: Option<String>,
    pub registration_group: Option<String>,
    pub admission: Option<Admission>,
    pub attributes: Vec<Attribute>,
}

impl Person {
    /// A person with only an id and a role; the rest unknown.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupKind {
    Class,
    Registration,
    Year,
    House,
    Intake,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub kind: GroupKind,
    pub name: Option<String>,
    pub code: Option<String>,
    pub subject: Option<String>,
    pub year_group: Option<String>,
    pub active: bool,
    pub parent: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemberRole {
    Student,
    Teacher,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MembershipKey {
    pub group: String,
    pub person: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    pub group: String,
    pub person: String,
    pub role: MemberRole,
    pub start_date: Option<Date>,
    pub end_date: Option<Date>,
}

impl Membership {
    pub fn key(&self) -> MembershipKey {
        MembershipKey {
            group: self.group.clone(),
            person: self.person.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContactType {
    Primary,
    Secondary,
    Emergency,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RelationshipKey {
    pub student: String,
    pub contact: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Relationship {
    pub student: String,
    pub contact: String,
    pub contact_type: ContactType,
    pub relationship: Option<String>,
    pub priority: Option<u32>,
    pub parental_responsibility: bool,
}

impl Relationship {
    pub fn key(&self) -> RelationshipKey {
        RelationshipKey {
            student: self.student.clone(),
            contact: self.contact.clone(),
        }
    }
}

/// Something a delta run reports as gone at the source.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Removal {
    Person(String),
    Group(String),
    Membership(MembershipKey),
    Relationship(RelationshipKey),
}

/// The four kinds of object a roster holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntityKind {
    Person,
    Group,
    Membership,
    Relationship,
}

impl EntityKind {
    pub const ALL: [EntityKind; 4] = [
        Self::Person,
        Self::Group,
        Self::Membership,
        Self::Relationship,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Group => "group",
            Self::Membership => "membership",
            Self::Relationship => "relationship",
        }
    }

    pub fn parse(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

impl std::fmt::Display for EntityKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One item of a batch.
///
/// People are most of every batch, so boxing the large variant would add
/// an allocation per record and save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Record {
    Person(Person),
    Group(Group),
    Membership(Membership),
    Relationship(Relationship),
    Removed(Removal),
}

/// A record a connector should never have produced: a connector bug, not a
/// data-quality issue at the school.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{record}: field `{field}` {reason}")]
pub struct MalformedRecord {
    /// Which record, e.g. `person "S123"`.
    pub record: String,
    pub field: &'static str,
    pub reason: String,
}

impl Record {
    /// How the record is named in errors and reports, e.g. `person "S123"`.
    pub fn describe(&self) -> String {
        match self {
            Record::Person(p) => format!("person {:?}", p.id),
            Record::Group(g) => format!("group {:?}", g.id),
            Record::Membership(m) => format!("membership of {:?} in {:?}", m.person, m.group),
            Record::Relationship(r) => {
                format!("relationship of {:?} to {:?}", r.contact, r.student)
            }
            Record::Removed(removal) => format!("removal of {removal:?}"),
        }
    }

    /// The identifying fields, which must be non-empty.
    pub fn keys(&self) -> Vec<(&'static str, &str)> {
        match self {
            Record::Person(p) => vec![("id", &p.id)],
            Record::Group(g) => vec![("id", &g.id)],
            Record::Membership(m) => vec![("group", &m.group), ("person", &m.person)],
            Record::Relationship(r) => vec![("student", &r.student), ("contact", &r.contact)],
            Record::Removed(Removal::Person(id) | Removal::Group(id)) => vec![("id", id)],
            Record::Removed(Removal::Membership(k)) => {
                vec![("group", &k.group), ("person", &k.person)]
            }
            Record::Removed(Removal::Relationship(k)) => {
                vec![("student", &k.student), ("contact", &k.contact)]
            }
        }
    }

    /// Checks what the contract promises about every record: identifying
    /// fields are present and free of control characters.
    pub fn check_well_formed(&self) -> Result<(), MalformedRecord> {
        for (field, value) in self.keys() {
            let reason = if value.trim().is_empty() {
                "is empty"
            } else if value.chars().any(char::is_control) {
                "contains control characters"
            } else {
                continue;
            };
            return Err(MalformedRecord {
                record: self.describe(),
                field,
                reason: reason.into(),
            });
        }
        Ok(())
    }

    /// Roughly how many bytes of text the record carries, for size limits.
    pub fn text_size(&self) -> usize {
        fn opt(s: &Option<String>) -> usize {
            s.as_ref().map_or(0, String::len)
        }
        match self {
            Record::Person(p) => {
                p.id.len()
                    + [
                        &p.mis_id,
                        &p.salutation,
                        &p.first_name,
                        &p.preferred_first_name,
                        &p.middle_names,
                        &p.last_name,
                        &p.pronouns,
                        &p.email,
                        &p.username,
                        &p.year_group,
                        &p.registration_group,
                    ]
                    .into_iter()
                    .map(opt)
                    .sum::<usize>()
                    + p.admission
                        .as_ref()
                        .map_or(0, |a| opt(&a.admission_status) + opt(&a.intake_group))
                    + p.attributes
                        .iter()
                        .map(|a| a.name.len() + a.value.len())
                        .sum::<usize>()
            }
            Record::Group(g) => {
                g.id.len()
                    + [&g.name, &g.code, &g.subject, &g.year_group, &g.parent]
                        .into_iter()
                        .map(opt)
                        .sum::<usize>()
            }
            Record::Membership(m) => m.group.len() + m.person.len(),
            Record::Relationship(r) => r.student.len() + r.contact.len() + opt(&r.relationship),
            Record::Removed(_) => self.keys().iter().map(|(_, v)| v.len()).sum(),
        }
    }
}

/// Parses a contract date (`YYYY-MM-DD`), naming the record and field when it
/// does not parse.
pub fn parse_date(
    record: impl FnOnce() -> String,
    field: &'static str,
    value: &str,
) -> Result<Date, MalformedRecord> {
    Date::parse_from_str(value, "%Y-%m-%d").map_err(|_| MalformedRecord {
        record: record(),
        field,
        reason: format!("is {value:?}, not a date in the form YYYY-MM-DD"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_names_the_empty_key() {
        let record = Record::Membership(Membership {
            group: "G1".into(),
            person: " ".into(),
            role: MemberRole::Student,
            start_date: None,
            end_date: None,
        });
        let err = record.check_well_formed().unwrap_err();
        assert_eq!(err.field, "person");
        assert_eq!(
            err.to_string(),
            "membership of \" \" in \"G1\": field `person` is empty"
        );
        assert!(
            Record::Person(Person::new("S1", Role::Student))
                .check_well_formed()
                .is_ok()
        );
    }

    #[test]
    fn dates_must_be_iso() {
        assert_eq!(
            parse_date(|| "person \"S1\"".into(), "date-of-birth", "2012-02-29").unwrap(),
            Date::from_ymd_opt(2012, 2, 29).unwrap()
        );
        let err = parse_date(|| "person \"S1\"".into(), "date-of-birth", "2013-02-29").unwrap_err();
        assert!(
            err.to_string()
                .contains("not a date in the form YYYY-MM-DD")
        );
        assert!(parse_date(String::new, "x", "29/02/2012").is_err());
    }

    #[test]
    fn text_size_counts_every_string() {
        let mut person = Person::new("S1", Role::Student);
        person.first_name = Some("Zoë".into());
        person.attributes.push(Attribute {
            name: "house".into(),
            value: "Red".into(),
        });
        assert_eq!(Record::Person(person).text_size(), 2 + 4 + 5 + 3);
    }
}
