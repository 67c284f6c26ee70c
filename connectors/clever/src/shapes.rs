//! Clever's JSON shapes and how each becomes roster records.
//!
//! The shapes are Clever's own Swagger definitions, Clever/swagger-api
//! `v3.0.yml` and `v3.0-events.yml` (`v3.1*.yml` define the same fields
//! used here): `User` with `roles.student` (`sis_id`, `dob` as
//! `m/d/yyyy`, `grade`, `enrollments`, `credentials`), `roles.teacher`
//! (`sis_id`, `teacher_number`, `title`), `roles.staff` (`staff_id`,
//! `title`; no `sis_id`), `roles.contact` (`sis_id`,
//! `student_relationships`); `Section` (`subject`, `grade`, `teacher`,
//! `teachers`, `students`); and an event as `{id, type, created, data:
//! {object}, previous_attributes}`, the previous values of changed fields
//! sitting beside `data`, not in it.
//!
//! Ids and the list envelope are required; everything else is optional and
//! unknown fields are ignored. A value that is present but unusable (a
//! `dob` that is not a date) is a `BadResponse` naming the endpoint, the
//! record and the field.

use rostersync_connector_sdk::date::iso_date;
use rostersync_connector_sdk::*;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Every list endpoint: `{"data": [{"data": {…}, "uri": …}], "links": [{"rel", "uri"}]}`.
#[derive(Deserialize)]
pub struct List<T> {
    pub data: Vec<Item<T>>,
    pub links: Vec<Link>,
}

#[derive(Deserialize)]
pub struct Item<T> {
    pub data: T,
}

#[derive(Deserialize)]
pub struct Link {
    pub rel: String,
    pub uri: String,
}

impl<T> List<T> {
    /// The `next` link, which carries `starting_after=<last id>`.
    pub fn next_link(&self) -> Option<&str> {
        self.links
            .iter()
            .find(|link| link.rel == "next")
            .map(|link| link.uri.as_str())
            .filter(|uri| !uri.trim().is_empty())
    }
}

fn non_blank(text: Option<&String>) -> Option<String> {
    text.filter(|t| !t.trim().is_empty()).cloned()
}

fn bad(endpoint: &str, id: &str, field: &str, problem: &str) -> SyncError {
    SyncError::BadResponse(format!(
        "Clever {endpoint}: record {id}: `{field}` {problem}"
    ))
}

/// A Clever `dob`: `m/d/yyyy` as the API defines it, or an ISO date.
pub fn birth_date(text: &str) -> Option<String> {
    let text = text.trim();
    let parts: Vec<&str> = text.split('/').collect();
    let [month, day, year] = parts.as_slice() else {
        return iso_date(text);
    };
    let digits = |s: &str, lengths: std::ops::RangeInclusive<usize>| {
        lengths.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !(digits(month, 1..=2) && digits(day, 1..=2) && digits(year, 4..=4)) {
        return None;
    }
    iso_date(&format!("{year}-{month:0>2}-{day:0>2}"))
}

/// Clever's relationship `type`; `Parent/Guardian`, `Family` and the like
/// say nothing about who to call first.
pub fn contact_type(kind: Option<&str>) -> ContactType {
    match kind {
        Some("Primary") => ContactType::Primary,
        Some("Secondary") => ContactType::Secondary,
        Some("Emergency") => ContactType::Emergency,
        _ => ContactType::Other,
    }
}

/// A user: a student, teacher, staff member or contact (or several).
#[derive(Deserialize)]
pub struct UserJson {
    pub id: String,
    email: Option<String>,
    name: Option<Name>,
    #[serde(default)]
    roles: Roles,
}

#[derive(Deserialize)]
struct Name {
    first: Option<String>,
    middle: Option<String>,
    last: Option<String>,
}

#[derive(Deserialize, Default)]
struct Roles {
    student: Option<StudentRole>,
    teacher: Option<TeacherRole>,
    staff: Option<StaffRole>,
    contact: Option<ContactRole>,
}

#[derive(Deserialize)]
struct StudentRole {
    sis_id: Option<String>,
    dob: Option<String>,
    grade: Option<String>,
    credentials: Option<Credentials>,
    school: Option<String>,
    #[serde(default)]
    enrollments: Vec<Enrollment>,
}

#[derive(Deserialize)]
struct TeacherRole {
    sis_id: Option<String>,
    teacher_number: Option<String>,
    title: Option<String>,
    credentials: Option<Credentials>,
}

#[derive(Deserialize)]
struct StaffRole {
    staff_id: Option<String>,
    title: Option<String>,
    credentials: Option<Credentials>,
}

#[derive(Deserialize)]
struct ContactRole {
    sis_id: Option<String>,
    #[serde(default)]
    student_relationships: Vec<StudentRelationship>,
}

#[derive(Deserialize)]
struct Credentials {
    district_username: Option<String>,
}

#[derive(Deserialize)]
struct Enrollment {
    school: Option<String>,
    start_date: Option<String>,
}

#[derive(Deserialize)]
struct StudentRelationship {
    student: String,
    relationship: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

impl UserJson {
    /// The person under the user's first role of student, teacher, staff
    /// and contact; `None` for a district admin and nothing else. Clever
    /// v3.0 has no preferred names, and keeps a contact's whole name in
    /// `last`. A teacher's MIS id is the `teacher_number` (else the
    /// `sis_id`), a staff member's the `staff_id`.
    pub fn person(&self, endpoint: &str) -> Result<Option<Person>, SyncError> {
        let roles = &self.roles;
        let mut person = if let Some(student) = &roles.student {
            self.pupil(student, endpoint)?
        } else if let Some(teacher) = &roles.teacher {
            let mis_id =
                non_blank(teacher.teacher_number.as_ref()).or(non_blank(teacher.sis_id.as_ref()));
            self.staff(mis_id, &teacher.title, teacher.credentials.as_ref())
        } else if let Some(staff) = &roles.staff {
            let mis_id = non_blank(staff.staff_id.as_ref());
            self.staff(mis_id, &staff.title, staff.credentials.as_ref())
        } else if let Some(contact) = &roles.contact {
            let mut person = Person::new(self.id.clone(), Role::Contact);
            person.mis_id = non_blank(contact.sis_id.as_ref());
            person
        } else {
            return Ok(None);
        };
        if let Some(name) = &self.name {
            person.first_name = non_blank(name.first.as_ref());
            person.middle_names = non_blank(name.middle.as_ref());
            person.last_name = non_blank(name.last.as_ref());
        }
        person.email = non_blank(self.email.as_ref());
        Ok(Some(person))
    }

    /// A teacher or staff member: both are staff to a school.
    fn staff(
        &self,
        mis_id: Option<String>,
        title: &Option<String>,
        credentials: Option<&Credentials>,
    ) -> Person {
        let mut person = Person::new(self.id.clone(), Role::Staff);
        person.mis_id = mis_id;
        person.salutation = non_blank(title.as_ref());
        person.username = username(credentials);
        person
    }

    /// Clever carries pupils on roll only.
    fn pupil(&self, student: &StudentRole, endpoint: &str) -> Result<Person, SyncError> {
        let mut pupil = Person::new(self.id.clone(), Role::Student);
        pupil.mis_id = non_blank(student.sis_id.as_ref());
        pupil.username = username(student.credentials.as_ref());
        pupil.enrolment = Some(EnrolmentStatus::OnRoll);
        pupil.year_group = non_blank(student.grade.as_ref());
        if let Some(dob) = non_blank(student.dob.as_ref()) {
            let date = birth_date(&dob).ok_or_else(|| {
                bad(
                    endpoint,
                    &self.id,
                    "roles.student.dob",
                    &format!("is {dob:?}, not a date"),
                )
            })?;
            pupil.date_of_birth = Some(date);
        }
        // The enrollment at the pupil's own school, when Clever says which.
        let enrollment = student
            .enrollments
            .iter()
            .find(|e| e.school.is_some() && e.school == student.school)
            .or(student.enrollments.first());
        if let Some(start) = enrollment.and_then(|e| non_blank(e.start_date.as_ref())) {
            let date = iso_date(&start).ok_or_else(|| {
                bad(
                    endpoint,
                    &self.id,
                    "roles.student.enrollments.start_date",
                    &format!("is {start:?}, not a date"),
                )
            })?;
            pupil.start_date = Some(date);
        }
        Ok(pupil)
    }

    pub fn is_student(&self) -> bool {
        self.roles.student.is_some()
    }

    pub fn is_contact(&self) -> bool {
        self.roles.contact.is_some()
    }

    /// The contact's relationships, one per student; parental
    /// responsibility is all Clever's `Parent` can tell.
    pub fn relationships(&self) -> Vec<Relationship> {
        let links = self
            .roles
            .contact
            .iter()
            .flat_map(|c| &c.student_relationships);
        links
            .map(|link| {
                let mut relationship = Relationship::new(
                    link.student.clone(),
                    self.id.clone(),
                    contact_type(link.kind.as_deref()),
                );
                relationship.relationship = non_blank(link.relationship.as_ref());
                relationship.parental_responsibility =
                    link.relationship.as_deref() == Some("Parent");
                relationship
            })
            .collect()
    }
}

fn username(credentials: Option<&Credentials>) -> Option<String> {
    non_blank(credentials?.district_username.as_ref())
}

/// A section: a class, or a registration group when its subject is
/// `homeroom/advisory`.
#[derive(Deserialize)]
pub struct SectionJson {
    pub id: String,
    name: Option<String>,
    section_number: Option<String>,
    sis_id: Option<String>,
    subject: Option<String>,
    grade: Option<String>,
    /// The primary teacher, normally also in `teachers`.
    teacher: Option<String>,
    #[serde(default)]
    teachers: Vec<String>,
    #[serde(default)]
    students: Vec<String>,
}

impl SectionJson {
    /// A registration group: Clever's `homeroom/advisory` subject.
    pub fn is_homeroom(&self) -> bool {
        self.subject.as_deref() == Some("homeroom/advisory")
    }

    /// The section's name, as a pupil's registration group.
    pub fn name(&self) -> Option<String> {
        non_blank(self.name.as_ref())
    }

    /// The pupils in the section.
    pub fn students(&self) -> &[String] {
        &self.students
    }

    pub fn group(&self) -> Group {
        let subject = non_blank(self.subject.as_ref());
        let kind = match subject.as_deref() {
            Some("homeroom/advisory") => GroupKind::Registration,
            _ => GroupKind::Class,
        };
        let mut group = Group::new(self.id.clone(), kind, non_blank(self.name.as_ref()));
        group.code = non_blank(self.section_number.as_ref()).or(non_blank(self.sis_id.as_ref()));
        group.subject = subject;
        group.year_group = non_blank(self.grade.as_ref());
        group
    }

    pub fn memberships(&self) -> Vec<Membership> {
        let primary = self
            .teacher
            .iter()
            .filter(|teacher| !self.teachers.contains(teacher));
        let teachers = self.teachers.iter().chain(primary);
        let member = |person: &String, role| Membership::new(self.id.clone(), person.clone(), role);
        teachers
            .map(|teacher| member(teacher, MemberRole::Teacher))
            .chain(
                self.students
                    .iter()
                    .map(|student| member(student, MemberRole::Student)),
            )
            .collect()
    }
}

/// What an event's `previous_attributes` say about a section's members.
#[derive(Deserialize, Default)]
pub struct PreviousMembers {
    students: Option<Vec<String>>,
    teachers: Option<Vec<String>>,
}

impl PreviousMembers {
    /// Members the section had before the event and has no longer.
    pub fn departed<'a>(&'a self, now: &'a SectionJson) -> impl Iterator<Item = &'a String> {
        let students = self
            .students
            .iter()
            .flatten()
            .filter(|s| !now.students.contains(s));
        let teachers = self
            .teachers
            .iter()
            .flatten()
            .filter(|t| !now.teachers.contains(t) && now.teacher.as_ref() != Some(*t));
        students.chain(teachers)
    }
}

/// One entry of the events feed: `previous_attributes` (on `*.updated`
/// events) sits beside `data`, as `v3.0-events.yml` defines
/// `sections.updated` and `users.updated`.
#[derive(Deserialize)]
pub struct EventJson {
    pub id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
    previous_attributes: Option<Value>,
}

#[derive(Deserialize)]
struct EventData {
    object: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Created,
    Updated,
    Deleted,
}

/// What an event means to a roster.
pub enum Change {
    User(Verb, Box<UserJson>),
    Section(Verb, Box<SectionJson>, PreviousMembers),
    /// Districts, schools, terms, courses, resources: not roster records.
    Other,
}

impl EventJson {
    pub fn change(&self) -> Result<Change, SyncError> {
        let (record_type, verb) = self.kind.split_once('.').unwrap_or((&self.kind, ""));
        let verb = match verb {
            "created" => Verb::Created,
            "updated" => Verb::Updated,
            "deleted" => Verb::Deleted,
            _ => return Ok(Change::Other),
        };
        Ok(match record_type {
            "users" => Change::User(verb, Box::new(self.object()?)),
            "sections" => {
                let previous = match &self.previous_attributes {
                    Some(previous) => serde_json::from_value(previous.clone())
                        .map_err(|e| self.bad("previous_attributes", &e))?,
                    None => PreviousMembers::default(),
                };
                Change::Section(verb, Box::new(self.object()?), previous)
            }
            _ => Change::Other,
        })
    }

    fn object<T: DeserializeOwned>(&self) -> Result<T, SyncError> {
        serde_json::from_value(self.data.object.clone()).map_err(|e| self.bad("data.object", &e))
    }

    fn bad(&self, field: &str, error: &serde_json::Error) -> SyncError {
        bad(
            "events",
            &self.id,
            field,
            &format!("of a {} event does not fit: {error}", self.kind),
        )
    }
}

/// `GET /schools`.
#[derive(Deserialize)]
pub struct SchoolJson {
    pub id: String,
    pub name: String,
    sis_id: Option<String>,
    school_number: Option<String>,
    state_id: Option<String>,
    district: Option<String>,
}

impl SchoolJson {
    pub fn info(self) -> SchoolInfo {
        let details = [
            ("sis_id", self.sis_id),
            ("school_number", self.school_number),
            ("state_id", self.state_id),
            ("district", self.district),
        ]
        .into_iter()
        .filter_map(|(name, value)| {
            Some(Attribute {
                name: name.into(),
                value: non_blank(value.as_ref())?,
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

    /// A page of `/users` shaped like Clever's v3.0 responses.
    const USERS: &str = r#"{
        "data": [
            {"data": {"id": "5a01", "district": "5a00", "email": "zoe.nguyen1@school1.example.org",
                "created": "2026-09-01T07:30:00.000Z", "last_modified": "2026-09-01T07:30:00.000Z",
                "name": {"first": "Zoë", "middle": null, "last": "Nguyễn"},
                "roles": {"student": {"credentials": {"district_username": "zoe.nguyen1"},
                    "dob": "10/1/2014", "gender": "F", "grade": "6", "ell_status": "",
                    "enrollments": [{"school": "5aother", "start_date": "2020-09-01"},
                                    {"school": "5a99", "start_date": "2026-09-01", "end_date": null}],
                    "school": "5a99", "schools": ["5a99"], "sis_id": "10001", "state_id": "A3802001A",
                    "location": {}, "ext": {}, "hispanic_ethnicity": ""}},
                "unknown_top_level": true}, "uri": "/v3.0/users/5a01"},
            {"data": {"id": "5a02", "email": "t@school1.example.org",
                "name": {"first": "Seán", "middle": null, "last": "Ó Súilleabháin"},
                "roles": {"teacher": {"sis_id": "5a02-sis", "title": "Dr", "teacher_number": "5000",
                    "credentials": {"district_username": "t"}}}}, "uri": "/v3.0/users/5a02"},
            {"data": {"id": "5a03", "email": null, "name": {"first": null, "middle": null, "last": "Chloé Müller"},
                "roles": {"contact": {"phone": "07700 900001", "phone_type": "Cell", "sis_id": "51003",
                    "student_relationships": [
                        {"student": "5a01", "relationship": "Parent", "type": "Primary"},
                        {"student": "5a04", "relationship": "Aunt/Uncle", "type": "Parent/Guardian"}]}}},
             "uri": "/v3.0/users/5a03"},
            {"data": {"id": "5a06", "email": "office@school1.example.org",
                "name": {"first": "Priya", "middle": null, "last": "Shah"},
                "roles": {"staff": {"staff_id": "S77", "title": "Ms", "department": "Office",
                    "roles": ["Administrator"], "credentials": {"district_username": "office"}}}},
             "uri": "/v3.0/users/5a06"},
            {"data": {"id": "5a05", "name": {"first": "Ava", "last": "Admin"},
                "roles": {"district_admin": {}}}, "uri": "/v3.0/users/5a05"}
        ],
        "links": [{"rel": "self", "uri": "/v3.0/users?limit=4"},
                  {"rel": "next", "uri": "/v3.0/users?limit=4&starting_after=5a05"}]
    }"#;

    fn users() -> List<UserJson> {
        serde_json::from_str(USERS).unwrap()
    }

    #[test]
    fn a_student_becomes_a_pupil_on_roll() {
        let page = users();
        let pupil = page.data[0].data.person("users").unwrap().unwrap();
        assert_eq!(pupil.role, Role::Student);
        assert_eq!(pupil.mis_id.as_deref(), Some("10001"));
        assert_eq!(pupil.first_name.as_deref(), Some("Zoë"));
        assert_eq!(pupil.preferred_first_name, None);
        assert_eq!(pupil.middle_names, None);
        assert_eq!(pupil.last_name.as_deref(), Some("Nguyễn"));
        assert_eq!(pupil.username.as_deref(), Some("zoe.nguyen1"));
        assert_eq!(pupil.date_of_birth.as_deref(), Some("2014-10-01"));
        assert_eq!(
            pupil.start_date.as_deref(),
            Some("2026-09-01"),
            "the enrollment at the pupil's own school"
        );
        assert_eq!(pupil.enrolment, Some(EnrolmentStatus::OnRoll));
        assert_eq!(pupil.year_group.as_deref(), Some("6"));
        assert!(page.data[0].data.relationships().is_empty());
    }

    #[test]
    fn a_teacher_is_staff_with_a_title() {
        let page = users();
        let teacher = page.data[1].data.person("users").unwrap().unwrap();
        assert_eq!(teacher.role, Role::Staff);
        assert_eq!(teacher.salutation.as_deref(), Some("Dr"));
        assert_eq!(teacher.mis_id.as_deref(), Some("5000"));
        assert_eq!(teacher.first_name.as_deref(), Some("Seán"));
        assert_eq!(teacher.username.as_deref(), Some("t"));
        assert_eq!(teacher.date_of_birth, None);

        let staff = page.data[3].data.person("users").unwrap().unwrap();
        assert_eq!(staff.role, Role::Staff);
        assert_eq!(staff.mis_id.as_deref(), Some("S77"), "the staff_id");
        assert_eq!(staff.salutation.as_deref(), Some("Ms"));
        assert_eq!(staff.username.as_deref(), Some("office"));
    }

    #[test]
    fn a_contact_keeps_its_whole_name_last_and_relates_per_pupil() {
        let page = users();
        let user = &page.data[2].data;
        let contact = user.person("users").unwrap().unwrap();
        assert_eq!(contact.role, Role::Contact);
        assert_eq!(contact.first_name, None);
        assert_eq!(contact.last_name.as_deref(), Some("Chloé Müller"));
        assert_eq!(contact.mis_id.as_deref(), Some("51003"));
        assert_eq!(contact.email, None);
        let summary: Vec<_> = user
            .relationships()
            .into_iter()
            .map(|r| {
                (
                    r.student,
                    r.contact,
                    r.contact_type,
                    r.relationship,
                    r.priority,
                    r.parental_responsibility,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "5a01".into(),
                    "5a03".into(),
                    ContactType::Primary,
                    Some("Parent".into()),
                    None,
                    true
                ),
                (
                    "5a04".into(),
                    "5a03".into(),
                    ContactType::Other,
                    Some("Aunt/Uncle".into()),
                    None,
                    false
                ),
            ]
        );
    }

    #[test]
    fn a_district_admin_is_no_roster_person_and_links_lead_on() {
        let page = users();
        assert!(page.data[4].data.person("users").unwrap().is_none());
        assert_eq!(
            page.next_link(),
            Some("/v3.0/users?limit=4&starting_after=5a05")
        );
    }

    #[test]
    fn contact_types_map_and_the_rest_are_other() {
        assert_eq!(contact_type(Some("Primary")), ContactType::Primary);
        assert_eq!(contact_type(Some("Secondary")), ContactType::Secondary);
        assert_eq!(contact_type(Some("Emergency")), ContactType::Emergency);
        for other in ["Parent/Guardian", "Family", "Other", ""] {
            assert_eq!(contact_type(Some(other)), ContactType::Other, "{other}");
        }
        assert_eq!(contact_type(None), ContactType::Other);
    }

    #[test]
    fn birth_dates_are_us_dates_or_iso() {
        assert_eq!(birth_date("10/1/2014").as_deref(), Some("2014-10-01"));
        assert_eq!(birth_date("02/29/2012").as_deref(), Some("2012-02-29"));
        assert_eq!(birth_date("2014-10-01").as_deref(), Some("2014-10-01"));
        for bad in [
            "2/30/2012",
            "13/1/2014",
            "1/1/14",
            "1/1/2014/1",
            "10-1-2014",
            "",
        ] {
            assert_eq!(birth_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_impossible_dob_names_the_endpoint_record_and_field() {
        let user: UserJson =
            serde_json::from_str(r#"{"id": "5a09", "roles": {"student": {"dob": "2/30/2012"}}}"#)
                .unwrap();
        let Err(SyncError::BadResponse(message)) = user.person("users") else {
            panic!("expected a bad response");
        };
        assert_eq!(
            message,
            "Clever users: record 5a09: `roles.student.dob` is \"2/30/2012\", not a date"
        );
    }

    #[test]
    fn sections_are_classes_or_registration_groups_with_members() {
        let class: SectionJson = serde_json::from_str(
            r#"{"id": "5a10", "name": null, "sis_id": "7Ma1", "section_number": "7Ma1", "subject": "math",
                "grade": "6", "teacher": "5a02", "teachers": ["5a02"], "students": ["5a01", "5a04"]}"#,
        )
        .unwrap();
        let group = class.group();
        assert_eq!(group.kind, GroupKind::Class);
        assert_eq!(group.name, None);
        assert_eq!(group.code.as_deref(), Some("7Ma1"));
        assert_eq!(group.subject.as_deref(), Some("math"));
        assert_eq!(group.year_group.as_deref(), Some("6"));
        let members: Vec<_> = class
            .memberships()
            .into_iter()
            .map(|m| (m.person, m.role))
            .collect();
        assert_eq!(
            members,
            [
                ("5a02".into(), MemberRole::Teacher),
                ("5a01".into(), MemberRole::Student),
                ("5a04".into(), MemberRole::Student),
            ]
        );

        let form: SectionJson = serde_json::from_str(
            r#"{"id": "5a11", "name": "7A", "sis_id": "7A", "subject": "homeroom/advisory",
                "teacher": "5a06", "students": []}"#,
        )
        .unwrap();
        assert_eq!(form.group().kind, GroupKind::Registration);
        assert_eq!(form.memberships().len(), 1, "the primary teacher alone");
    }

    #[test]
    fn events_become_changes_and_previous_members_departures() {
        let event: EventJson = serde_json::from_str(
            r#"{"id": "5e01", "created": "2026-09-01T07:31:00.000Z", "type": "sections.updated",
                "data": {"object": {"id": "5a10", "teachers": ["5a02"], "students": ["5a01"]}},
                "previous_attributes": {"students": ["5a01", "5a04"], "teachers": ["5a02"]}}"#,
        )
        .unwrap();
        let Change::Section(Verb::Updated, section, previous) = event.change().unwrap() else {
            panic!("expected a section update");
        };
        let departed: Vec<_> = previous.departed(&section).collect();
        assert_eq!(departed, ["5a04"]);

        let deleted: EventJson = serde_json::from_str(
            r#"{"id": "5e02", "type": "users.deleted", "data": {"object": {"id": "5a01"}}}"#,
        )
        .unwrap();
        assert!(matches!(
            deleted.change().unwrap(),
            Change::User(Verb::Deleted, user) if user.id == "5a01"
        ));
        let term: EventJson = serde_json::from_str(
            r#"{"id": "5e03", "type": "terms.created", "data": {"object": {"id": "t"}}}"#,
        )
        .unwrap();
        assert!(matches!(term.change().unwrap(), Change::Other));

        let broken: EventJson = serde_json::from_str(
            r#"{"id": "5e04", "type": "users.updated", "data": {"object": {"email": "no-id@example.org"}}}"#,
        )
        .unwrap();
        let Err(SyncError::BadResponse(message)) = broken.change() else {
            panic!("expected a bad response");
        };
        assert!(
            message.starts_with("Clever events: record 5e04: `data.object` of a users.updated event does not fit: missing field `id`"),
            "{message}"
        );
    }

    #[test]
    fn a_page_without_data_or_links_is_refused() {
        assert!(
            serde_json::from_str::<List<SectionJson>>(r#"{"status": "ok", "result": []}"#).is_err()
        );
        assert!(serde_json::from_str::<List<SectionJson>>(r#"{"data": []}"#).is_err());
    }
}
