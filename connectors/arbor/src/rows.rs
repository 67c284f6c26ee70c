//! Arbor records to roster records: the one mapping full and delta reads
//! share. Each field is named as in Arbor's public PHP SDK
//! (github.com/arbor-education/sis-sdk-php, `src/Arbor/Model/*.php`):
//!
//! - A person is a `Student` (`studentNumber`), `Staff` (`staffNumber`) or
//!   `Guardian` (`legacySystemId`) naming its `Person` (`Student.php`,
//!   `Staff.php`, `Guardian.php`), whose `legalFirstName`,
//!   `legalMiddleNames`, `legalLastName`, `preferredFirstName` and
//!   `dateOfBirth` give the names and birth date and whose `title` names a
//!   `Title` whose `title` is the salutation (`Person.php`, `Title.php`).
//!   The SDK does not say whether a record embeds the records it names:
//!   a `person` carrying its own names is read as it is, one that is only
//!   a reference is read from its `href`.
//! - A person's email is the `emailAddress` of the `EmailAddress` whose
//!   `emailAddressOwner` names them (`EmailAddress.php`), the lowest
//!   `dataOrder` first. The SDK does not say what owns an address; one
//!   owned by the `Person` or by the `Student`, `Staff` or `Guardian` is
//!   read alike.
//! - A pupil's start date is the latest `startDate` of their
//!   `SchoolEnrolment`s (`SchoolEnrolment.php`); their year is the
//!   `academicLevelName` of the `AcademicLevel` their latest
//!   `AcademicLevelMembership` names, a reference, not a string
//!   (`AcademicLevelMembership.php`, `AcademicLevel.php`); their
//!   registration group is the `registrationFormName` of the form their
//!   latest `RegistrationFormMembership` names
//!   (`RegistrationFormMembership.php`, `RegistrationForm.php`). Pupils
//!   Arbor lists are on roll.
//! - A `RegistrationForm` is a registration group (`code`,
//!   `registrationFormName`; the SDK's model has no year). An
//!   `AcademicUnit` is a class (`academicUnitName`, `academicUnitCode`, its
//!   `Subject`'s `subjectName`, its `AcademicLevel`'s name:
//!   `AcademicUnit.php`, `Subject.php`).
//! - Memberships are `RegistrationFormMembership`s and
//!   `AcademicUnitEnrolment`s (`student`) and `AcademicUnitLead`s
//!   (`staff`, a teacher); a pupil's guardians are
//!   `StudentGuardianRelationship`s (`guardianRelationshipType` naming a
//!   `GuardianRelationshipType` whose `relationshipName` is the
//!   relationship, `emergencyContactPriority` the priority and the contact
//!   type, 1 primary, 2 secondary, later emergency, `isLegalGuardian`
//!   parental responsibility: `StudentGuardianRelationship.php`,
//!   `GuardianRelationshipType.php`).
//! - A date is a `YYYY-MM-DD` string or, as the SDK's `Hydrator.php`
//!   writes one, `{"entityType": "date", "date": "Y-m-d H:i:s"}`.

use std::collections::HashMap;

use rostersync_connector_sdk::*;
use serde_json::Value;

use crate::api::{Api, Reference, Resource};

/// A non-empty text property.
pub(crate) fn text(row: &Value, property: &str) -> Option<String> {
    match row.get(property)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A date property as sent: a string, or the SDK's date object.
fn date_text(row: &Value, property: &str) -> Option<String> {
    match row.get(property)? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("date")?.as_str().map(str::to_string),
        _ => None,
    }
}

/// A date property as `YYYY-MM-DD`; anything else is a bad response
/// naming the resource, the record and the property.
fn date_of(
    resource: &str,
    id: u64,
    row: &Value,
    property: &str,
) -> Result<Option<String>, SyncError> {
    date::date_field(resource, id, property, date_text(row, property))
}

/// The key an owner is known by: the last two segments of its `href`
/// (`persons/12`, `students/3`), whatever path precedes them.
pub(crate) fn owner_key(href: &str) -> String {
    let mut segments = href.trim_end_matches('/').rsplit('/');
    let id = segments.next().unwrap_or_default();
    let resource = segments.next().unwrap_or_default();
    format!("{resource}/{id}")
}

/// The property of a named record that gives its name, by its type.
fn name_property(entity_type: &str) -> Option<&'static str> {
    Some(match entity_type {
        "Title" => "title",
        "Subject" => "subjectName",
        "AcademicLevel" => "academicLevelName",
        "GuardianRelationshipType" => "relationshipName",
        "RegistrationForm" => "registrationFormName",
        _ => return None,
    })
}

/// The names of records named by reference (titles, subjects, academic
/// levels, relationship types, registration forms), each read once.
#[derive(Default)]
pub(crate) struct Names(HashMap<String, Option<String>>);

impl Names {
    pub(crate) fn insert(&mut self, href: &str, name: Option<String>) {
        self.0.insert(owner_key(href), name);
    }

    pub(crate) fn get(&self, reference: Option<&Reference>) -> Option<String> {
        self.0.get(&owner_key(&reference?.href)).cloned().flatten()
    }

    /// Reads the named records not yet known, several at a time.
    pub(crate) fn learn(&mut self, api: &Api, wanted: &[Reference]) -> Result<(), SyncError> {
        let mut unknown: Vec<Reference> = Vec::new();
        for reference in wanted {
            let key = owner_key(&reference.href);
            if !self.0.contains_key(&key) && !unknown.iter().any(|r| owner_key(&r.href) == key) {
                unknown.push(reference.clone());
            }
        }
        let rows = api.fetch(&unknown)?;
        for (reference, row) in unknown.iter().zip(rows) {
            let property = reference.entity_type.as_deref().and_then(name_property);
            let name = row.zip(property).and_then(|(row, p)| text(&row, p));
            self.insert(&reference.href, name);
        }
        Ok(())
    }
}

/// The references of named records a row holds that [`Names`] reads.
pub(crate) fn named(row: &Value) -> Vec<Reference> {
    [
        "title",
        "subject",
        "academicLevel",
        "guardianRelationshipType",
        "registrationForm",
    ]
    .iter()
    .filter_map(|p| Reference::of(row, p))
    .filter(|r| r.entity_type.as_deref().and_then(name_property).is_some())
    .collect()
}

/// What a pupil's record is joined from besides the pupil and person.
#[derive(Debug, Default, Clone)]
pub(crate) struct Parts {
    /// The latest school enrolment's start date.
    start: Option<String>,
    /// The latest academic level membership: its start and level.
    level: Option<(String, Reference)>,
    /// The latest registration form membership: its start and form.
    form: Option<(String, Reference)>,
}

/// Email addresses by owner, and pupils' parts by pupil id, as rows of
/// `EmailAddress`, `SchoolEnrolment`, `AcademicLevelMembership` and
/// `RegistrationFormMembership` come in.
#[derive(Default)]
pub(crate) struct Joins {
    emails: HashMap<String, (i64, String)>,
    pub pupils: HashMap<u64, Parts>,
}

impl Joins {
    /// Takes in one row of a resource a pupil's record is joined from.
    pub(crate) fn note(
        &mut self,
        resource: Resource,
        id: u64,
        row: &Value,
    ) -> Result<(), SyncError> {
        if resource == Resource::EmailAddress {
            let (Some(owner), Some(address)) = (
                Reference::of(row, "emailAddressOwner"),
                text(row, "emailAddress"),
            ) else {
                return Ok(());
            };
            let order = row
                .get("dataOrder")
                .and_then(Value::as_i64)
                .unwrap_or(i64::MAX);
            let key = owner_key(&owner.href);
            if self.emails.get(&key).is_none_or(|(seen, _)| order < *seen) {
                self.emails.insert(key, (order, address));
            }
            return Ok(());
        }
        let Some(pupil) = Reference::of(row, "student").and_then(|r| r.id()) else {
            return Ok(());
        };
        let start = date_of(&resource.plural(), id, row, "startDate")?.unwrap_or_default();
        let parts = self.pupils.entry(pupil).or_default();
        let later =
            |seen: &Option<(String, Reference)>| seen.as_ref().is_none_or(|(at, _)| start >= *at);
        let (slot, property) = match resource {
            Resource::SchoolEnrolment => {
                if parts.start.as_ref().is_none_or(|at| start >= *at) {
                    parts.start = Some(start).filter(|s| !s.is_empty());
                }
                return Ok(());
            }
            Resource::AcademicLevelMembership => (&mut parts.level, "academicLevel"),
            Resource::RegistrationFormMembership => (&mut parts.form, "registrationForm"),
            _ => return Ok(()),
        };
        if let Some(named) = Reference::of(row, property)
            && later(slot)
        {
            *slot = Some((start, named));
        }
        Ok(())
    }

    /// The email of the person `owner` (a `Student`, `Staff` or
    /// `Guardian`) naming `person`.
    fn email(&self, owner: &str, person: Option<&str>) -> Option<String> {
        let by = |href: &str| self.emails.get(&owner_key(href)).map(|(_, a)| a.clone());
        person.and_then(by).or_else(|| by(owner))
    }

    /// The level and form references a pupil's record needs named.
    pub(crate) fn named(&self, pupil: u64) -> Vec<Reference> {
        self.pupils.get(&pupil).map_or_else(Vec::new, |parts| {
            [&parts.level, &parts.form]
                .into_iter()
                .flatten()
                .map(|(_, r)| r.clone())
                .collect()
        })
    }
}

/// Whether a `person` property carries the person rather than only
/// naming them.
pub(crate) fn embedded(person: &Value) -> bool {
    ["legalFirstName", "legalLastName", "preferredFirstName"]
        .iter()
        .any(|p| person.get(p).is_some())
}

/// A `Student`, `Staff` or `Guardian` row, with its person's record,
/// as a roster person.
pub(crate) fn person(
    resource: Resource,
    href: &str,
    row: &Value,
    person: &Value,
    joins: &Joins,
    names: &Names,
) -> Result<Person, SyncError> {
    let id = crate::api::Reference {
        entity_type: None,
        href: href.to_string(),
    }
    .id()
    .unwrap_or_default();
    let role = match resource {
        Resource::Student => Role::Student,
        Resource::Staff => Role::Staff,
        _ => Role::Contact,
    };
    let mut out = Person::new(id.to_string(), role);
    out.mis_id = match resource {
        Resource::Student => text(row, "studentNumber"),
        Resource::Staff => text(row, "staffNumber"),
        _ => None,
    }
    .or_else(|| text(row, "legacySystemId"));
    out.salutation = names.get(Reference::of(person, "title").as_ref());
    out.first_name = text(person, "legalFirstName");
    out.preferred_first_name = text(person, "preferredFirstName");
    out.middle_names = text(person, "legalMiddleNames");
    out.last_name = text(person, "legalLastName");
    let person_href = Reference::of(row, "person").map(|r| r.href);
    out.email = joins.email(href, person_href.as_deref());
    out.date_of_birth = date_of("persons", id, person, "dateOfBirth")?;
    if role == Role::Student {
        let parts = joins.pupils.get(&id).cloned().unwrap_or_default();
        out.start_date = parts.start;
        out.enrolment = Some(EnrolmentStatus::OnRoll);
        out.year_group = names.get(parts.level.as_ref().map(|(_, r)| r));
        out.registration_group = names.get(parts.form.as_ref().map(|(_, r)| r));
    }
    Ok(out)
}

/// A `RegistrationForm` or `AcademicUnit` row as a group.
pub(crate) fn group(resource: Resource, id: u64, row: &Value, names: &Names) -> Group {
    if resource == Resource::RegistrationForm {
        let mut group = Group::new(
            id.to_string(),
            GroupKind::Registration,
            text(row, "registrationFormName"),
        );
        group.code = text(row, "code");
        return group;
    }
    let mut group = Group::new(
        id.to_string(),
        GroupKind::Class,
        text(row, "academicUnitName"),
    );
    group.code = text(row, "academicUnitCode");
    group.subject = names.get(Reference::of(row, "subject").as_ref());
    group.year_group = names.get(Reference::of(row, "academicLevel").as_ref());
    group
}

/// A row linking two records as a membership or relationship; `None` for
/// one that names no group or no person.
pub(crate) fn link(resource: Resource, row: &Value, names: &Names) -> Option<RosterRecord> {
    let (first, second) = resource.links()?;
    let first = Reference::of(row, first)?.id()?.to_string();
    let second = Reference::of(row, second)?.id()?.to_string();
    Some(match resource {
        Resource::StudentGuardianRelationship => {
            let priority = row
                .get("emergencyContactPriority")
                .and_then(Value::as_u64)
                .and_then(|p| u32::try_from(p).ok());
            let mut relationship = Relationship::new(first, second, contact_type(priority));
            relationship.relationship =
                names.get(Reference::of(row, "guardianRelationshipType").as_ref());
            relationship.priority = priority;
            relationship.parental_responsibility = row
                .get("isLegalGuardian")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            RosterRecord::Relationship(relationship)
        }
        Resource::AcademicUnitLead => {
            RosterRecord::Membership(Membership::new(first, second, MemberRole::Teacher))
        }
        _ => RosterRecord::Membership(Membership::new(first, second, MemberRole::Student)),
    })
}

fn contact_type(priority: Option<u32>) -> ContactType {
    match priority {
        Some(1) => ContactType::Primary,
        Some(2) => ContactType::Secondary,
        _ => ContactType::Emergency,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reference(entity_type: &str, href: &str) -> Value {
        json!({"entityType": entity_type, "href": href, "displayName": "x"})
    }

    #[test]
    fn guardian_priority_sets_the_contact_type() {
        assert_eq!(contact_type(Some(1)), ContactType::Primary);
        assert_eq!(contact_type(Some(2)), ContactType::Secondary);
        assert_eq!(contact_type(Some(4)), ContactType::Emergency);
    }

    #[test]
    fn the_latest_enrolment_membership_and_form_win() {
        let mut joins = Joins::default();
        let student = reference("Student", "/rest-v2/students/7");
        let rows = [
            (
                Resource::SchoolEnrolment,
                json!({"student": student, "startDate": "2019-09-01"}),
            ),
            (
                Resource::SchoolEnrolment,
                json!({"student": student, "startDate": {"entityType": "date", "date": "2024-09-02 00:00:00"}}),
            ),
            (
                Resource::AcademicLevelMembership,
                json!({"student": student, "startDate": "2025-09-01",
                "academicLevel": reference("AcademicLevel", "/rest-v2/academic-levels/9")}),
            ),
            (
                Resource::AcademicLevelMembership,
                json!({"student": student, "startDate": "2024-09-01",
                "academicLevel": reference("AcademicLevel", "/rest-v2/academic-levels/8")}),
            ),
        ];
        for (n, (resource, row)) in rows.iter().enumerate() {
            joins.note(*resource, n as u64, row).unwrap();
        }
        let parts = &joins.pupils[&7];
        assert_eq!(parts.start.as_deref(), Some("2024-09-02"));
        assert_eq!(parts.level.as_ref().unwrap().1.id(), Some(9));
    }

    #[test]
    fn an_email_owned_by_the_person_or_the_student_is_read() {
        let mut joins = Joins::default();
        let row = |owner: Value, address: &str, order: i64| json!({"emailAddressOwner": owner, "emailAddress": address, "dataOrder": order});
        for (n, r) in [
            row(reference("Person", "/rest-v2/persons/70"), "b@x", 2),
            row(reference("Person", "/rest-v2/persons/70"), "a@x", 1),
            row(reference("Staff", "/rest-v2/staffs/8"), "s@x", 1),
        ]
        .iter()
        .enumerate()
        {
            joins.note(Resource::EmailAddress, n as u64, r).unwrap();
        }
        assert_eq!(
            joins
                .email("/rest-v2/students/7", Some("/rest-v2/persons/70"))
                .as_deref(),
            Some("a@x")
        );
        assert_eq!(
            joins
                .email("/rest-v2/staffs/8", Some("/rest-v2/persons/80"))
                .as_deref(),
            Some("s@x")
        );
    }

    #[test]
    fn a_bad_date_names_the_resource_record_and_field() {
        let Err(SyncError::BadResponse(message)) = date_of(
            "persons",
            12,
            &json!({"dateOfBirth": "next week"}),
            "dateOfBirth",
        ) else {
            panic!("expected a bad response");
        };
        assert_eq!(
            message,
            "persons: record 12 has dateOfBirth \"next week\", which is not a date"
        );
    }

    #[test]
    fn a_membership_naming_nobody_maps_to_no_record() {
        let row = json!({"academicUnit": reference("AcademicUnit", "/rest-v2/academic-units/2")});
        assert!(link(Resource::AcademicUnitEnrolment, &row, &Names::default()).is_none());
        let row = json!({"academicUnit": reference("AcademicUnit", "/rest-v2/academic-units/2"),
            "staff": reference("Staff", "/rest-v2/staffs/5")});
        let Some(RosterRecord::Membership(m)) =
            link(Resource::AcademicUnitLead, &row, &Names::default())
        else {
            panic!("a membership");
        };
        assert_eq!((m.group.as_str(), m.person.as_str()), ("2", "5"));
        assert_eq!(m.role, MemberRole::Teacher);
    }
}
