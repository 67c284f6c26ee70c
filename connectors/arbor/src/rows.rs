//! Arbor rows to roster records: the one mapping that full and delta reads
//! share, whether a row came in a list or was fetched by id.
//!
//! People: the embedded `person` gives the names and date of birth;
//! `studentNumber`, `staffNumber` or `legacySystemId` is the MIS id. A
//! pupil's registration group is the name of its `registrationForm`,
//! which the mapper learns from the registration form rows it maps.
//! Guardian links take their contact type from `emergencyContactPriority`.

use std::collections::HashMap;

use rostersync_connector_sdk::*;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::{Reference, Resource};

/// One mapped row.
pub(crate) struct Mapped {
    /// Arbor's id of the row.
    pub id: u64,
    /// `None` for a membership row that names no group or no person.
    pub record: Option<RosterRecord>,
}

/// Maps rows, remembering registration form names for the pupils that
/// follow.
#[derive(Default)]
pub(crate) struct Mapper {
    /// Names by form id; `None` for a form that has none.
    form_names: HashMap<u64, Option<String>>,
}

impl Mapper {
    /// Maps one row of `resource`, read from `url`.
    pub(crate) fn map(
        &mut self,
        resource: Resource,
        url: &str,
        row: Value,
    ) -> Result<Mapped, SyncError> {
        let (id, record) = match resource {
            Resource::RegistrationForms => {
                let form: FormJson = parse(resource, url, row)?;
                self.form_names
                    .insert(form.id, form.registration_form_name.clone());
                let mut group = Group::new(
                    form.id.to_string(),
                    GroupKind::Registration,
                    form.registration_form_name,
                );
                group.code = form.code;
                group.year_group = form.year_group;
                (form.id, Some(RosterRecord::Group(group)))
            }
            Resource::AcademicUnits => {
                let unit: UnitJson = parse(resource, url, row)?;
                let mut group = Group::new(
                    unit.id.to_string(),
                    GroupKind::Class,
                    unit.academic_unit_name,
                );
                group.code = unit.academic_unit_code;
                group.subject = unit.subject.and_then(|s| s.name);
                group.year_group = unit.academic_level;
                (unit.id, Some(RosterRecord::Group(group)))
            }
            Resource::Students | Resource::Staff | Resource::Guardians => {
                let row: PersonRowJson = parse(resource, url, row)?;
                (row.id, Some(self.person(resource, row)?))
            }
            Resource::StudentGuardianRelationships => {
                let link: GuardianLinkJson = parse(resource, url, row)?;
                let priority = link.emergency_contact_priority;
                let mut relationship = Relationship::new(
                    link.student.id.to_string(),
                    link.guardian.id.to_string(),
                    contact_type(priority),
                );
                relationship.relationship = link.guardian_relationship_type.and_then(|t| t.label);
                relationship.priority = priority;
                relationship.parental_responsibility = link.is_legal_guardian;
                (link.id, Some(RosterRecord::Relationship(relationship)))
            }
            Resource::RegistrationFormMemberships
            | Resource::AcademicUnitEnrolments
            | Resource::AcademicUnitLeads => {
                let row: MembershipJson = parse(resource, url, row)?;
                let group = row.registration_form.or(row.academic_unit);
                let person = match (row.student, row.staff) {
                    (Some(student), _) => Some((student, MemberRole::Student)),
                    (None, Some(staff)) => Some((staff, MemberRole::Teacher)),
                    (None, None) => None,
                };
                let record = group.zip(person).map(|(group, (person, role))| {
                    RosterRecord::Membership(Membership::new(
                        group.id.to_string(),
                        person.id.to_string(),
                        role,
                    ))
                });
                (row.id, record)
            }
        };
        Ok(Mapped { id, record })
    }

    /// The registration form a pupil row names, if the mapper has not
    /// mapped it: a delta reads only changed forms, so a changed pupil's
    /// form may have to be fetched to name it.
    pub(crate) fn unknown_form(&self, resource: Resource, row: &Value) -> Option<u64> {
        if resource != Resource::Students {
            return None;
        }
        let id = row.pointer("/registrationForm/id")?.as_u64()?;
        (!self.form_names.contains_key(&id)).then_some(id)
    }

    fn person(&self, resource: Resource, row: PersonRowJson) -> Result<RosterRecord, SyncError> {
        let role = match resource {
            Resource::Students => Role::Student,
            Resource::Staff => Role::Staff,
            _ => Role::Contact,
        };
        let mut person = Person::new(row.id.to_string(), role);
        person.mis_id = row
            .student_number
            .or(row.staff_number)
            .or(row.legacy_system_id);
        person.salutation = row.person.title;
        person.first_name = row.person.legal_first_name;
        person.preferred_first_name = row.person.preferred_first_name;
        person.middle_names = row.person.legal_middle_names;
        person.last_name = row.person.legal_last_name;
        person.email = row.email_address.and_then(|e| e.email_address);
        person.date_of_birth = date::date_field(
            resource.path(),
            row.id,
            "dateOfBirth",
            row.person.date_of_birth,
        )?;
        if role == Role::Student {
            person.start_date =
                date::date_field(resource.path(), row.id, "startDate", row.start_date)?;
            person.enrolment = Some(EnrolmentStatus::OnRoll);
            person.year_group = row.year_group;
            person.registration_group = row
                .registration_form
                .and_then(|form| self.form_names.get(&form.id).cloned().flatten());
        }
        Ok(RosterRecord::Person(person))
    }
}

fn parse<T: DeserializeOwned>(resource: Resource, url: &str, row: Value) -> Result<T, SyncError> {
    serde_json::from_value(row).map_err(|e| {
        SyncError::BadResponse(format!(
            "{url}: a {} entry is not what was expected: {e}",
            resource.list_key()
        ))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PersonJson {
    title: Option<String>,
    legal_first_name: Option<String>,
    preferred_first_name: Option<String>,
    legal_middle_names: Option<String>,
    legal_last_name: Option<String>,
    date_of_birth: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmailJson {
    email_address: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PersonRowJson {
    id: u64,
    student_number: Option<String>,
    staff_number: Option<String>,
    legacy_system_id: Option<String>,
    person: PersonJson,
    email_address: Option<EmailJson>,
    start_date: Option<String>,
    year_group: Option<String>,
    registration_form: Option<Reference>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FormJson {
    id: u64,
    code: Option<String>,
    registration_form_name: Option<String>,
    year_group: Option<String>,
}

#[derive(Deserialize)]
struct SubjectJson {
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UnitJson {
    id: u64,
    academic_unit_name: Option<String>,
    academic_unit_code: Option<String>,
    subject: Option<SubjectJson>,
    academic_level: Option<String>,
}

#[derive(Deserialize)]
struct LabelJson {
    label: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GuardianLinkJson {
    id: u64,
    student: Reference,
    guardian: Reference,
    guardian_relationship_type: Option<LabelJson>,
    #[serde(default)]
    is_legal_guardian: bool,
    emergency_contact_priority: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MembershipJson {
    id: u64,
    registration_form: Option<Reference>,
    academic_unit: Option<Reference>,
    student: Option<Reference>,
    staff: Option<Reference>,
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

    #[test]
    fn guardian_priority_sets_the_contact_type() {
        assert_eq!(contact_type(Some(1)), ContactType::Primary);
        assert_eq!(contact_type(Some(2)), ContactType::Secondary);
        assert_eq!(contact_type(Some(4)), ContactType::Emergency);
    }

    #[test]
    fn a_bad_date_names_the_resource_record_and_field() {
        let Err(SyncError::BadResponse(message)) = date::date_field(
            Resource::Students.path(),
            12,
            "startDate",
            Some("next week".into()),
        ) else {
            panic!("expected a bad response");
        };
        assert_eq!(
            message,
            "students: record 12 has startDate \"next week\", which is not a date"
        );
    }

    #[test]
    fn a_pupil_is_named_by_a_form_mapped_before_and_asks_for_one_not_mapped() {
        let mut mapper = Mapper::default();
        let pupil =
            json!({"id": 7, "person": {"legalLastName": "Okafor"}, "registrationForm": {"id": 3}});
        assert_eq!(mapper.unknown_form(Resource::Students, &pupil), Some(3));
        let membership = json!({"id": 8, "registrationForm": {"id": 3}, "student": {"id": 7}});
        assert_eq!(
            mapper.unknown_form(Resource::RegistrationFormMemberships, &membership),
            None,
            "only a pupil is named by its form"
        );
        mapper
            .map(
                Resource::RegistrationForms,
                "u",
                json!({"id": 3, "registrationFormName": "7R"}),
            )
            .unwrap();
        assert_eq!(mapper.unknown_form(Resource::Students, &pupil), None);
        let Some(RosterRecord::Person(person)) =
            mapper.map(Resource::Students, "u", pupil).unwrap().record
        else {
            panic!("a pupil");
        };
        assert_eq!(person.registration_group.as_deref(), Some("7R"));
    }

    #[test]
    fn a_membership_naming_nobody_maps_to_no_record() {
        let mapped = Mapper::default()
            .map(
                Resource::AcademicUnitEnrolments,
                "u",
                json!({"id": 5, "academicUnit": {"id": 2}}),
            )
            .unwrap();
        assert_eq!(mapped.id, 5);
        assert!(mapped.record.is_none());
    }
}
