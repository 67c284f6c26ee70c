//! Wonde's JSON shapes and how each becomes roster records.
//!
//! Everything but ids and the list envelope is optional, and unknown fields
//! are ignored: Wonde adds fields over time and schools' MIS data is
//! patchy. A value that is present but unusable (a date that is not a date)
//! is a `BadResponse` naming the endpoint, the record and the field.

use rostersync_connector_sdk::date::iso_date;
use rostersync_connector_sdk::*;
use serde::Deserialize;
use serde_json::Value;

/// Every list endpoint: one page of records and where the next one is.
#[derive(Deserialize)]
pub struct List<T> {
    pub data: Vec<T>,
    pub meta: Meta,
}

#[derive(Deserialize)]
pub struct Meta {
    #[serde(default)]
    pub pagination: Pagination,
}

#[derive(Deserialize, Default)]
pub struct Pagination {
    pub next: Option<String>,
    pub more: Option<bool>,
}

impl Pagination {
    /// The next page's URL. Page mode and cursor mode both say `more`;
    /// when it is false a stale `next` is not followed.
    pub fn next_page(self) -> Option<String> {
        if self.more == Some(false) {
            return None;
        }
        self.next.filter(|next| !next.trim().is_empty())
    }
}

/// An include: Wonde wraps related objects as `{"data": …}`.
#[derive(Deserialize)]
pub struct Included<T> {
    pub data: Option<T>,
}

/// A PHP date object, `{"date": "2016-01-28 14:43:29.000000",
/// "timezone_type": 3, "timezone": "UTC"}`; a bare string is accepted too.
#[derive(Deserialize)]
#[serde(transparent)]
pub struct WondeDate(Value);

impl WondeDate {
    fn text(&self) -> Option<&str> {
        match &self.0 {
            Value::String(text) => Some(text),
            Value::Object(object) => object.get("date")?.as_str(),
            _ => None,
        }
    }
}

/// Which record a field belongs to, for error messages.
pub struct Origin<'a> {
    pub endpoint: &'a str,
    pub id: &'a str,
}

impl Origin<'_> {
    fn bad(&self, field: &str, problem: &str) -> SyncError {
        SyncError::BadResponse(format!(
            "Wonde {}: record {}: `{field}` {problem}",
            self.endpoint, self.id
        ))
    }

    /// The calendar date of a date field.
    fn date(&self, field: &str, value: Option<&WondeDate>) -> Result<Option<String>, SyncError> {
        let Some(value) = value else {
            return Ok(None);
        };
        let text = value
            .text()
            .ok_or_else(|| self.bad(field, "is neither a date object nor a string"))?;
        iso_date(text)
            .map(Some)
            .ok_or_else(|| self.bad(field, &format!("is {text:?}, not a date")))
    }

    /// A date-time field as `YYYY-MM-DD HH:MM:SS`, the form `updated_after`
    /// takes. Fractions of a second are dropped, so a delta from it may
    /// read that record again, which is harmless, but never skips one.
    pub fn timestamp(
        &self,
        field: &str,
        value: Option<&WondeDate>,
    ) -> Result<Option<String>, SyncError> {
        let Some(value) = value else {
            return Ok(None);
        };
        let text = value.text().unwrap_or_default();
        timestamp(text)
            .map(Some)
            .ok_or_else(|| self.bad(field, &format!("is {text:?}, not a date and time")))
    }
}

/// `YYYY-MM-DD HH:MM:SS` from the start of a Wonde date-time, if it is one.
pub fn timestamp(text: &str) -> Option<String> {
    let text = text.trim();
    let date = iso_date(text.get(..10)?)?;
    let time = text.get(10..19)?.strip_prefix(' ')?;
    let in_range = |(part, max): (&str, u32)| {
        part.len() == 2
            && part.bytes().all(|b| b.is_ascii_digit())
            && part.parse::<u32>().is_ok_and(|n| n <= max)
    };
    let parts: Vec<&str> = time.split(':').collect();
    let valid = parts.len() == 3 && parts.into_iter().zip([23, 59, 59]).all(in_range);
    valid.then(|| format!("{date} {time}"))
}

fn non_blank(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.trim().is_empty())
}

/// A student, employee or contact: Wonde gives all three the same core.
#[derive(Deserialize)]
pub struct PersonJson {
    pub id: String,
    mis_id: Option<String>,
    title: Option<String>,
    forename: Option<String>,
    legal_forename: Option<String>,
    middle_names: Option<String>,
    surname: Option<String>,
    legal_surname: Option<String>,
    date_of_birth: Option<WondeDate>,
    pub updated_at: Option<WondeDate>,
    contact_details: Option<Included<ContactDetails>>,
    education_details: Option<Included<EducationDetails>>,
    year: Option<Included<GroupName>>,
    registration: Option<Included<GroupName>>,
    /// A student's contacts, each with its relationship to this student.
    contacts: Option<Included<Vec<LinkedContact>>>,
}

#[derive(Deserialize)]
struct ContactDetails {
    emails: Option<Emails>,
}

#[derive(Deserialize)]
struct Emails {
    email: Option<String>,
}

#[derive(Deserialize)]
struct EducationDetails {
    upn: Option<String>,
    admission_date: Option<WondeDate>,
    leaving_date: Option<WondeDate>,
    application: Option<Application>,
}

#[derive(Deserialize)]
struct Application {
    #[serde(default)]
    active: bool,
    admission_date: Option<WondeDate>,
    status: Option<String>,
    intake_group: Option<String>,
}

#[derive(Deserialize)]
struct GroupName {
    name: Option<String>,
}

#[derive(Deserialize)]
struct LinkedContact {
    id: String,
    relationship: Option<Link>,
}

#[derive(Deserialize)]
struct Link {
    relationship: Option<String>,
    priority: Option<u32>,
    #[serde(default)]
    parental_responsibility: bool,
}

/// Wonde gives a contact's priority, not its type: first to call is the
/// primary contact, second the secondary, the rest are for emergencies.
pub fn contact_type(priority: Option<u32>) -> ContactType {
    match priority {
        Some(1) => ContactType::Primary,
        Some(2) => ContactType::Secondary,
        Some(_) => ContactType::Emergency,
        None => ContactType::Other,
    }
}

impl PersonJson {
    /// The person, legal names first: `forename` is the name the school
    /// uses day to day, so it is the preferred first name.
    pub fn person(&self, role: Role, endpoint: &str) -> Result<Person, SyncError> {
        let origin = Origin {
            endpoint,
            id: &self.id,
        };
        let mut person = Person::new(self.id.clone(), role);
        person.mis_id = non_blank(self.mis_id.clone());
        person.salutation = non_blank(self.title.clone());
        person.first_name = non_blank(self.legal_forename.clone().or(self.forename.clone()));
        person.preferred_first_name = non_blank(self.forename.clone());
        person.middle_names = non_blank(self.middle_names.clone());
        person.last_name = non_blank(self.legal_surname.clone().or(self.surname.clone()));
        person.email = non_blank(
            self.contact_details
                .as_ref()
                .and_then(|details| details.data.as_ref()?.emails.as_ref()?.email.clone()),
        );
        person.date_of_birth = origin.date("date_of_birth", self.date_of_birth.as_ref())?;
        Ok(person)
    }

    /// A pupil: the person plus what the education details and the year and
    /// registration includes say. The enrolment status is the endpoint's.
    pub fn pupil(&self, enrolment: EnrolmentStatus, endpoint: &str) -> Result<Person, SyncError> {
        let origin = Origin {
            endpoint,
            id: &self.id,
        };
        let mut pupil = self.person(Role::Student, endpoint)?;
        pupil.enrolment = Some(enrolment);
        let group_name = |group: &Option<Included<GroupName>>| {
            non_blank(group.as_ref()?.data.as_ref()?.name.clone())
        };
        pupil.year_group = group_name(&self.year);
        pupil.registration_group = group_name(&self.registration);
        let Some(education) = self
            .education_details
            .as_ref()
            .and_then(|e| e.data.as_ref())
        else {
            return Ok(pupil);
        };
        pupil.start_date = origin.date(
            "education_details.admission_date",
            education.admission_date.as_ref(),
        )?;
        pupil.leaving_date = origin.date(
            "education_details.leaving_date",
            education.leaving_date.as_ref(),
        )?;
        if let Some(upn) = non_blank(education.upn.clone()) {
            pupil.attributes.push(Attribute {
                name: "upn".into(),
                value: upn,
            });
        }
        if let Some(application) = &education.application {
            pupil.admission = Some(Admission {
                application_active: application.active,
                admission_date: origin.date(
                    "education_details.application.admission_date",
                    application.admission_date.as_ref(),
                )?,
                admission_status: non_blank(application.status.clone()),
                intake_group: non_blank(application.intake_group.clone()),
            });
        }
        Ok(pupil)
    }

    /// The pupil's relationships from the `contacts` include. The same
    /// contact listed twice for one pupil keeps its first entry.
    pub fn relationships(&self) -> Vec<Relationship> {
        let contacts = self.contacts.as_ref().and_then(|c| c.data.as_deref());
        let mut out: Vec<Relationship> = Vec::new();
        for contact in contacts.unwrap_or_default() {
            if out.iter().any(|r| r.contact == contact.id) {
                continue;
            }
            let link = contact.relationship.as_ref();
            let priority = link.and_then(|l| l.priority);
            let mut relationship =
                Relationship::new(self.id.clone(), contact.id.clone(), contact_type(priority));
            relationship.relationship = link.and_then(|l| non_blank(l.relationship.clone()));
            relationship.priority = priority;
            relationship.parental_responsibility = link.is_some_and(|l| l.parental_responsibility);
            out.push(relationship);
        }
        out
    }
}

/// A class (`classes`) or another group (`groups`).
#[derive(Deserialize)]
pub struct GroupJson {
    pub id: String,
    name: Option<String>,
    code: Option<String>,
    #[serde(rename = "type")]
    group_type: Option<String>,
    /// The subject's id, or with `include=subject` the subject itself.
    subject: Option<Value>,
    /// The NC year ("7"), or a year object.
    year_group: Option<Value>,
    pub updated_at: Option<WondeDate>,
    students: Option<Included<Vec<Member>>>,
    employees: Option<Included<Vec<Member>>>,
}

#[derive(Deserialize)]
struct Member {
    id: String,
}

/// Which endpoint a group came from decides what kind it can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupSource {
    Classes,
    Groups,
}

impl GroupJson {
    pub fn group(&self, source: GroupSource) -> Group {
        let kind = match source {
            GroupSource::Classes => GroupKind::Class,
            GroupSource::Groups => match self.group_type.as_deref().map(str::to_ascii_uppercase) {
                Some(t) if t == "YEAR" => GroupKind::Year,
                Some(t) if t == "REGISTRATION" => GroupKind::Registration,
                Some(t) if t == "HOUSE" => GroupKind::House,
                _ => GroupKind::Other,
            },
        };
        let mut group = Group::new(self.id.clone(), kind, non_blank(self.name.clone()));
        group.code = non_blank(self.code.clone());
        group.subject = self.subject.as_ref().and_then(included_name);
        group.year_group = self.year_group.as_ref().and_then(year_label);
        group
    }

    /// Students and teachers, from the `students` and `employees` includes.
    pub fn memberships(&self) -> Vec<Membership> {
        let members = |list: &Option<Included<Vec<Member>>>, role| {
            list.iter()
                .flat_map(|l| l.data.iter().flatten())
                .map(move |m| Membership::new(self.id.clone(), m.id.clone(), role))
                .collect::<Vec<_>>()
        };
        let mut out = members(&self.employees, MemberRole::Teacher);
        out.extend(members(&self.students, MemberRole::Student));
        out
    }
}

/// The name of an included object; a bare id names nothing.
fn included_name(value: &Value) -> Option<String> {
    non_blank(value.get("data")?.get("name")?.as_str().map(Into::into))
}

/// A year as a pupil's `year` include names it ("Year 7"), from the NC
/// year number classes carry or an included year object.
fn year_label(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => Some(format!("Year {n}")),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Some(format!("Year {s}"))
        }
        Value::String(s) => non_blank(Some(s.clone())),
        other => included_name(other),
    }
}

/// A tombstone from `deletions`.
#[derive(Deserialize)]
pub struct DeletionJson {
    pub id: String,
    pub deleted_at: Option<WondeDate>,
    /// Set when the record came back; it then shows as updated instead.
    restored_at: Option<Value>,
}

impl DeletionJson {
    pub fn restored(&self) -> bool {
        self.restored_at.as_ref().is_some_and(|r| !r.is_null())
    }
}

/// `GET schools/{id}`.
#[derive(Deserialize)]
pub struct SchoolJson {
    pub data: School,
}

#[derive(Deserialize)]
pub struct School {
    pub id: String,
    pub name: String,
    la_code: Option<String>,
    establishment_number: Option<String>,
    urn: Option<Value>,
    mis: Option<String>,
}

impl School {
    pub fn info(self) -> SchoolInfo {
        let urn = self.urn.and_then(|urn| match urn {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        let details = [
            ("la_code", self.la_code),
            ("establishment_number", self.establishment_number),
            ("urn", urn),
            ("mis", self.mis),
        ]
        .into_iter()
        .filter_map(|(name, value)| {
            Some(Attribute {
                name: name.into(),
                value: non_blank(value)?,
            })
        })
        .collect();
        SchoolInfo {
            id: self.id,
            name: self.name,
            details,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Abridged from a real Wonde student with the includes this connector asks for.
    const STUDENT: &str = r#"{
        "id": "A1039521228", "upi": "36e4f5c3", "mis_id": "9919", "initials": "ZN",
        "title": null, "surname": "Nguyễn", "forename": "Zoë", "middle_names": null,
        "legal_surname": "Nguyễn", "legal_forename": "Zoe", "gender": "FEMALE",
        "date_of_birth": {"date": "2012-09-29 00:00:00.000000", "timezone_type": 3, "timezone": "Europe/London"},
        "updated_at": {"date": "2026-09-01 07:31:00.000000", "timezone_type": 3, "timezone": "UTC"},
        "restored_at": null, "some_future_field": {"x": 1},
        "contact_details": {"data": {"emails": {"email": "zoe@example.org", "primary": null}}},
        "education_details": {"data": {"upn": "A380200A", "admission_date": {"date": "2026-09-01 00:00:00.000000"},
            "leaving_date": null, "application": null}},
        "year": {"data": {"id": "A1", "name": "Year 7", "type": "YEAR"}},
        "registration": {"data": {"id": "A2", "name": "7A"}},
        "contacts": {"data": [
            {"id": "A815487167", "forename": "Bethany",
             "relationship": {"bill_payer": false, "priority": 1, "relationship": "Mother", "parental_responsibility": true}},
            {"id": "A251103586", "relationship": {"priority": null, "relationship": "Step Mother"}},
            {"id": "A815487167", "relationship": {"priority": 4, "relationship": "Other Family Member"}},
            {"id": "A9", "relationship": {"priority": 3, "relationship": ""}}
        ]}
    }"#;

    fn student() -> PersonJson {
        serde_json::from_str(STUDENT).unwrap()
    }

    #[test]
    fn a_student_becomes_a_pupil_with_legal_and_preferred_names() {
        let pupil = student()
            .pupil(EnrolmentStatus::OnRoll, "students")
            .unwrap();
        assert_eq!(pupil.id, "A1039521228");
        assert_eq!(pupil.mis_id.as_deref(), Some("9919"));
        assert_eq!(pupil.first_name.as_deref(), Some("Zoe"));
        assert_eq!(pupil.preferred_first_name.as_deref(), Some("Zoë"));
        assert_eq!(pupil.last_name.as_deref(), Some("Nguyễn"));
        assert_eq!(pupil.middle_names, None);
        assert_eq!(pupil.salutation, None);
        assert_eq!(pupil.email.as_deref(), Some("zoe@example.org"));
        assert_eq!(pupil.date_of_birth.as_deref(), Some("2012-09-29"));
        assert_eq!(pupil.start_date.as_deref(), Some("2026-09-01"));
        assert_eq!(pupil.leaving_date, None);
        assert_eq!(pupil.enrolment, Some(EnrolmentStatus::OnRoll));
        assert_eq!(pupil.year_group.as_deref(), Some("Year 7"));
        assert_eq!(pupil.registration_group.as_deref(), Some("7A"));
        assert!(pupil.admission.is_none());
        assert_eq!(pupil.attributes.len(), 1);
        assert_eq!(pupil.attributes[0].value, "A380200A");
    }

    #[test]
    fn an_applicant_carries_its_application() {
        let json = r#"{"id": "A1", "education_details": {"data": {
            "admission_date": {"date": "2027-09-01 00:00:00.000000"},
            "application": {"active": true, "admission_date": {"date": "2027-09-01 00:00:00.000000"},
                            "status": "Offered", "intake_group": "Year 7 Sept 2027"}}}}"#;
        let applicant: PersonJson = serde_json::from_str(json).unwrap();
        let pupil = applicant
            .pupil(EnrolmentStatus::Prospective, "students-pre-admission")
            .unwrap();
        let admission = pupil.admission.unwrap();
        assert!(admission.application_active);
        assert_eq!(admission.admission_date.as_deref(), Some("2027-09-01"));
        assert_eq!(admission.admission_status.as_deref(), Some("Offered"));
        assert_eq!(admission.intake_group.as_deref(), Some("Year 7 Sept 2027"));
        assert_eq!(pupil.year_group, None);
    }

    #[test]
    fn relationships_are_per_pupil_with_type_by_priority() {
        let relationships = student().relationships();
        let summary: Vec<_> = relationships
            .iter()
            .map(|r| {
                (
                    r.contact.as_str(),
                    r.contact_type,
                    r.relationship.as_deref(),
                    r.priority,
                    r.parental_responsibility,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "A815487167",
                    ContactType::Primary,
                    Some("Mother"),
                    Some(1),
                    true
                ),
                (
                    "A251103586",
                    ContactType::Other,
                    Some("Step Mother"),
                    None,
                    false
                ),
                ("A9", ContactType::Emergency, None, Some(3), false),
            ]
        );
        assert!(relationships.iter().all(|r| r.student == "A1039521228"));
    }

    #[test]
    fn contact_types_follow_priority() {
        assert_eq!(contact_type(Some(1)), ContactType::Primary);
        assert_eq!(contact_type(Some(2)), ContactType::Secondary);
        assert_eq!(contact_type(Some(3)), ContactType::Emergency);
        assert_eq!(contact_type(Some(7)), ContactType::Emergency);
        assert_eq!(contact_type(None), ContactType::Other);
    }

    #[test]
    fn an_impossible_date_names_the_endpoint_record_and_field() {
        let json = r#"{"id": "A7", "date_of_birth": {"date": "2012-02-30 00:00:00.000000"}}"#;
        let employee: PersonJson = serde_json::from_str(json).unwrap();
        let Err(SyncError::BadResponse(message)) = employee.person(Role::Staff, "employees") else {
            panic!("expected a bad response");
        };
        assert_eq!(
            message,
            "Wonde employees: record A7: `date_of_birth` is \"2012-02-30 00:00:00.000000\", not a date"
        );
    }

    #[test]
    fn dates_may_be_objects_or_strings() {
        let json = r#"{"id": "A7", "title": "Dr", "forename": "Seán", "surname": "Ó Súilleabháin",
            "date_of_birth": "1980-01-31"}"#;
        let employee: PersonJson = serde_json::from_str(json).unwrap();
        let person = employee.person(Role::Staff, "employees").unwrap();
        assert_eq!(person.date_of_birth.as_deref(), Some("1980-01-31"));
        assert_eq!(person.salutation.as_deref(), Some("Dr"));
        assert_eq!(person.first_name.as_deref(), Some("Seán"));
        assert_eq!(person.preferred_first_name.as_deref(), Some("Seán"));
    }

    #[test]
    fn timestamps_keep_seconds_and_drop_fractions() {
        assert_eq!(
            timestamp("2026-09-01 07:31:00.000000").as_deref(),
            Some("2026-09-01 07:31:00")
        );
        assert_eq!(
            timestamp("2026-09-01 23:59:59").as_deref(),
            Some("2026-09-01 23:59:59")
        );
        for bad in [
            "2026-09-01",
            "2026-09-01T07:31:00",
            "2026-09-01 24:00:00",
            "2026-02-30 07:31:00",
            "2026-09-01 7:31:00",
        ] {
            assert_eq!(timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn classes_and_groups_map_with_their_members() {
        let class: GroupJson = serde_json::from_str(
            r#"{"id": "C1", "mis_id": "7Ma1", "type": null, "name": null, "code": "7Ma1",
                "subject": {"data": {"id": "SMa", "name": "Mathematics"}}, "year_group": "7",
                "students": {"data": [{"id": "S1"}, {"id": "S2"}]}, "employees": {"data": [{"id": "T1"}]}}"#,
        )
        .unwrap();
        let group = class.group(GroupSource::Classes);
        assert_eq!(group.kind, GroupKind::Class);
        assert_eq!(group.name, None);
        assert_eq!(group.code.as_deref(), Some("7Ma1"));
        assert_eq!(group.subject.as_deref(), Some("Mathematics"));
        assert_eq!(group.year_group.as_deref(), Some("Year 7"));
        let members: Vec<_> = class
            .memberships()
            .into_iter()
            .map(|m| (m.group, m.person, m.role))
            .collect();
        assert_eq!(
            members,
            [
                ("C1".into(), "T1".into(), MemberRole::Teacher),
                ("C1".into(), "S1".into(), MemberRole::Student),
                ("C1".into(), "S2".into(), MemberRole::Student),
            ]
        );

        let house: GroupJson = serde_json::from_str(
            r#"{"id": "G1", "name": "Brontë", "code": "Br", "type": "HOUSE", "subject": "SBr", "year_group": null}"#,
        )
        .unwrap();
        let group = house.group(GroupSource::Groups);
        assert_eq!(group.kind, GroupKind::House);
        assert_eq!(group.name.as_deref(), Some("Brontë"));
        assert_eq!(group.subject, None, "a bare subject id names no subject");
        assert_eq!(group.year_group, None);
        assert!(house.memberships().is_empty());
        let form: GroupJson =
            serde_json::from_str(r#"{"id": "G2", "type": "registration", "year_group": 8}"#)
                .unwrap();
        assert_eq!(
            form.group(GroupSource::Groups).kind,
            GroupKind::Registration
        );
        assert_eq!(
            form.group(GroupSource::Groups).year_group.as_deref(),
            Some("Year 8")
        );
    }

    #[test]
    fn a_page_without_data_is_refused_and_more_false_ends_paging() {
        assert!(serde_json::from_str::<List<GroupJson>>(r#"{"status": "ok"}"#).is_err());
        let page: List<DeletionJson> = serde_json::from_str(
            r#"{"data": [{"id": "A1", "deleted_at": {"date": "2026-09-01 07:32:00.000000"}, "restored_at": null},
                         {"id": "A2", "restored_at": {"date": "2026-09-02 00:00:00.000000"}}],
                "meta": {"pagination": {"next": "https://api.wonde.com/x?page=2", "more": false, "per_page": "200"}}}"#,
        )
        .unwrap();
        assert_eq!(page.meta.pagination.next_page(), None);
        assert!(!page.data[0].restored());
        assert!(page.data[1].restored());
    }

    #[test]
    fn a_school_names_itself_with_its_identifiers() {
        let school: SchoolJson = serde_json::from_str(
            r#"{"data": {"id": "A1930499544", "name": "Brontë Academy 1", "urn": 137000,
                "la_code": "380", "establishment_number": "4000", "mis": "SIMS", "region": {"code": "GB"}}}"#,
        )
        .unwrap();
        let info = school.data.info();
        assert_eq!(info.id, "A1930499544");
        assert_eq!(info.name, "Brontë Academy 1");
        let urn = info.details.iter().find(|d| d.name == "urn").unwrap();
        assert_eq!(urn.value, "137000");
    }
}
