//! Arbor connector: reads one school from Arbor's REST API v2 into roster
//! records: pupils on roll, staff, guardians, registration forms and
//! academic units (classes), their memberships and leads, and each pupil's
//! guardians with relationship, priority and legal responsibility.
//!
//! Lists page with `page-number` and `page-size`; a short page is the
//! last. Registration forms are read first, so a pupil's form can be named.
//! Reads are full: the changelog (delta reads) is not used yet.

use std::collections::HashMap;

use rostersync_connector_sdk::http::Request;
use rostersync_connector_sdk::*;
use serde::Deserialize;
use serde::de::DeserializeOwned;

const BASE_URL: &str = "base-url";
const USERNAME: &str = "username";
const PASSWORD: &str = "password";
const PAGE_SIZE: usize = 500;

struct Arbor;

impl Connector for Arbor {
    type Snapshot = Reader;

    fn describe() -> ConnectorInfo {
        ConnectorInfo::new(
            "Arbor",
            env!("CARGO_PKG_VERSION"),
            "Pupils on roll, staff, guardians, registration forms and classes of one school from Arbor's REST API v2.",
        )
        .setting(SettingSpec::base_url(
            BASE_URL,
            "The school's API root, e.g. https://api-sandbox2.uk.arbor.sc/rest-v2",
            None,
        ))
        .setting(SettingSpec::text(
            USERNAME,
            "The user name of the school's API credential.",
            true,
            None,
        ))
        .setting(SettingSpec::secret(PASSWORD, "The password of that credential."))
        .capability(Capability::Contacts)
    }

    fn check(settings: &Settings) -> Result<SchoolInfo, SyncError> {
        let api = Api::new(settings)?;
        let forms: Vec<FormJson> = api.page(Resource::RegistrationForms, 1, 1)?;
        Ok(SchoolInfo {
            id: api.base.clone(),
            name: format!("Arbor school at {}", api.base),
            details: vec![Attribute {
                name: "registration forms readable".into(),
                value: (!forms.is_empty()).to_string(),
            }],
        })
    }

    fn snapshot(settings: Settings, _mode: Mode) -> Reader {
        Reader {
            settings,
            api: None,
            queue: Resource::ALL.to_vec(),
            page: 1,
            form_names: HashMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    RegistrationForms,
    AcademicUnits,
    Students,
    Staff,
    Guardians,
    StudentGuardianRelationships,
    RegistrationFormMemberships,
    AcademicUnitEnrolments,
    AcademicUnitLeads,
}

impl Resource {
    const ALL: [Resource; 9] = [
        Self::RegistrationForms,
        Self::AcademicUnits,
        Self::Students,
        Self::Staff,
        Self::Guardians,
        Self::StudentGuardianRelationships,
        Self::RegistrationFormMemberships,
        Self::AcademicUnitEnrolments,
        Self::AcademicUnitLeads,
    ];

    fn path(self) -> &'static str {
        match self {
            Self::RegistrationForms => "registration-forms",
            Self::AcademicUnits => "academic-units",
            Self::Students => "students",
            Self::Staff => "staff",
            Self::Guardians => "guardians",
            Self::StudentGuardianRelationships => "student-guardian-relationships",
            Self::RegistrationFormMemberships => "registration-form-memberships",
            Self::AcademicUnitEnrolments => "academic-unit-enrolments",
            Self::AcademicUnitLeads => "academic-unit-leads",
        }
    }

    /// The key Arbor wraps a list in: the resource in camel case.
    fn list_key(self) -> String {
        let mut key = String::new();
        let mut upper = false;
        for c in self.path().chars() {
            if c == '-' {
                upper = true;
            } else if upper {
                key.push(c.to_ascii_uppercase());
                upper = false;
            } else {
                key.push(c);
            }
        }
        key
    }
}

struct Api {
    base: String,
    user: String,
    password: String,
}

impl Api {
    fn new(settings: &Settings) -> Result<Api, SyncError> {
        Ok(Api {
            base: settings.base_url(BASE_URL)?,
            user: settings.require(USERNAME)?.to_string(),
            password: settings.require(PASSWORD)?.to_string(),
        })
    }

    /// One page of a resource's list.
    fn page<T: DeserializeOwned>(
        &self,
        resource: Resource,
        number: usize,
        size: usize,
    ) -> Result<Vec<T>, SyncError> {
        let url = format!(
            "{}/{}?page-number={number}&page-size={size}",
            self.base,
            resource.path()
        );
        let mut body: HashMap<String, serde_json::Value> = Request::get(&url)
            .basic(&self.user, &self.password)
            .send()?
            .json()?;
        // Arbor's documentation shows camel-case list keys; some answers
        // use the resource path itself. Either will do.
        let key = resource.list_key();
        let list = body
            .remove(&key)
            .or_else(|| body.remove(resource.path()))
            .ok_or_else(|| {
                SyncError::BadResponse(format!("{url}: the response has no {key:?} list"))
            })?;
        serde_json::from_value(list).map_err(|e| {
            SyncError::BadResponse(format!(
                "{url}: a {key} entry is not what was expected: {e}"
            ))
        })
    }
}

#[derive(Deserialize)]
struct Reference {
    id: u64,
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
    registration_form: Option<Reference>,
    academic_unit: Option<Reference>,
    student: Option<Reference>,
    staff: Option<Reference>,
}

fn iso(
    resource: Resource,
    id: u64,
    field: &str,
    value: Option<String>,
) -> Result<Option<String>, SyncError> {
    match value.filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(text) => date::iso_date(&text).map(Some).ok_or_else(|| {
            SyncError::BadResponse(format!(
                "{}: record {id} has {field} {text:?}, which is not a date",
                resource.path()
            ))
        }),
    }
}

fn contact_type(priority: Option<u32>) -> ContactType {
    match priority {
        Some(1) => ContactType::Primary,
        Some(2) => ContactType::Secondary,
        _ => ContactType::Emergency,
    }
}

struct Reader {
    settings: Settings,
    api: Option<Api>,
    queue: Vec<Resource>,
    page: usize,
    /// Registration form names by id, to name a pupil's form.
    form_names: HashMap<u64, String>,
}

impl Reader {
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
        person.date_of_birth = iso(resource, row.id, "dateOfBirth", row.person.date_of_birth)?;
        if role == Role::Student {
            person.start_date = iso(resource, row.id, "startDate", row.start_date)?;
            person.enrolment = Some(EnrolmentStatus::OnRoll);
            person.year_group = row.year_group;
            person.registration_group = row
                .registration_form
                .and_then(|form| self.form_names.get(&form.id).cloned());
        }
        Ok(RosterRecord::Person(person))
    }

    fn read(
        &mut self,
        resource: Resource,
        api: &Api,
    ) -> Result<(Vec<RosterRecord>, usize), SyncError> {
        let page = self.page;
        Ok(match resource {
            Resource::RegistrationForms => {
                let rows: Vec<FormJson> = api.page(resource, page, PAGE_SIZE)?;
                let n = rows.len();
                let records = rows
                    .into_iter()
                    .map(|form| {
                        if let Some(name) = &form.registration_form_name {
                            self.form_names.insert(form.id, name.clone());
                        }
                        let mut group = Group::new(
                            form.id.to_string(),
                            GroupKind::Registration,
                            form.registration_form_name,
                        );
                        group.code = form.code;
                        group.year_group = form.year_group;
                        RosterRecord::Group(group)
                    })
                    .collect();
                (records, n)
            }
            Resource::AcademicUnits => {
                let rows: Vec<UnitJson> = api.page(resource, page, PAGE_SIZE)?;
                let n = rows.len();
                let records = rows
                    .into_iter()
                    .map(|unit| {
                        let mut group = Group::new(
                            unit.id.to_string(),
                            GroupKind::Class,
                            unit.academic_unit_name,
                        );
                        group.code = unit.academic_unit_code;
                        group.subject = unit.subject.and_then(|s| s.name);
                        group.year_group = unit.academic_level;
                        RosterRecord::Group(group)
                    })
                    .collect();
                (records, n)
            }
            Resource::Students | Resource::Staff | Resource::Guardians => {
                let rows: Vec<PersonRowJson> = api.page(resource, page, PAGE_SIZE)?;
                let n = rows.len();
                let records = rows
                    .into_iter()
                    .map(|row| self.person(resource, row))
                    .collect::<Result<_, _>>()?;
                (records, n)
            }
            Resource::StudentGuardianRelationships => {
                let rows: Vec<GuardianLinkJson> = api.page(resource, page, PAGE_SIZE)?;
                let n = rows.len();
                let records = rows
                    .into_iter()
                    .map(|link| {
                        let priority = link.emergency_contact_priority;
                        let mut relationship = Relationship::new(
                            link.student.id.to_string(),
                            link.guardian.id.to_string(),
                            contact_type(priority),
                        );
                        relationship.relationship =
                            link.guardian_relationship_type.and_then(|t| t.label);
                        relationship.priority = priority;
                        relationship.parental_responsibility = link.is_legal_guardian;
                        RosterRecord::Relationship(relationship)
                    })
                    .collect();
                (records, n)
            }
            Resource::RegistrationFormMemberships
            | Resource::AcademicUnitEnrolments
            | Resource::AcademicUnitLeads => {
                let rows: Vec<MembershipJson> = api.page(resource, page, PAGE_SIZE)?;
                let n = rows.len();
                let records = rows
                    .into_iter()
                    .filter_map(|row| {
                        let group = row.registration_form.or(row.academic_unit)?;
                        let (person, role) = match (row.student, row.staff) {
                            (Some(student), _) => (student, MemberRole::Student),
                            (None, Some(staff)) => (staff, MemberRole::Teacher),
                            (None, None) => return None,
                        };
                        Some(RosterRecord::Membership(Membership::new(
                            group.id.to_string(),
                            person.id.to_string(),
                            role,
                        )))
                    })
                    .collect();
                (records, n)
            }
        })
    }
}

impl Snapshot for Reader {
    fn next_batch(&mut self) -> Result<Option<Vec<RosterRecord>>, SyncError> {
        let api = match self.api.take() {
            Some(api) => api,
            None => Api::new(&self.settings)?,
        };
        let Some(&resource) = self.queue.first() else {
            return Ok(None);
        };
        let (records, rows) = self.read(resource, &api)?;
        self.api = Some(api);
        if rows < PAGE_SIZE {
            self.queue.remove(0);
            self.page = 1;
        } else {
            self.page += 1;
        }
        Ok(Some(records))
    }
}

export_connector!(Arbor);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_keys_are_camel_case() {
        assert_eq!(
            Resource::StudentGuardianRelationships.list_key(),
            "studentGuardianRelationships"
        );
        assert_eq!(Resource::Staff.list_key(), "staff");
    }

    #[test]
    fn guardian_priority_sets_the_contact_type() {
        assert_eq!(contact_type(Some(1)), ContactType::Primary);
        assert_eq!(contact_type(Some(2)), ContactType::Secondary);
        assert_eq!(contact_type(Some(4)), ContactType::Emergency);
    }

    #[test]
    fn a_bad_date_names_the_resource_record_and_field() {
        let Err(SyncError::BadResponse(message)) = iso(
            Resource::Students,
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
}
