//! Arbor REST v2, in the shapes Arbor's public PHP SDK reads and writes
//! (github.com/arbor-education/sis-sdk-php). Served at
//! `/arbor/{school-host}/rest-v2/…`: Arbor gives each school its own host
//! name, the sandbox puts it in the path. Auth is HTTP Basic with the
//! school's credential (`RestGateway::initClient`).
//!
//! What each source settles:
//!
//! - **Paths and resource names** (`src/Arbor/Api/Gateway/RestGateway.php`,
//!   `PsrRestGateway.php`, `src/Arbor/Filter/PluralizeFilter.php`,
//!   `CamelCaseToDash.php`): a resource type (`Student`, `Staff`,
//!   `EmailAddress`, …) is pluralised by the SDK's own rule (`s` → `ses`,
//!   consonant + `y` → `ies`, otherwise `+s`, so `Staff` → `Staffs`,
//!   `Person` → `Persons`). A query lists `GET /rest-v2/{Plural}` (the
//!   SDK's `query`, asserted as `/rest-v2/Students` in
//!   `tests/Unit/Arbor/Api/Gateway/PsrRestGatewayTest.php`); one record
//!   is `GET /rest-v2/{plural-with-dashes}/{id}` (`retrieve`); a change log
//!   is `GET /rest-v2/{plural-with-dashes}/changelog` (`getChanges`). The
//!   list path is served in both spellings, since the dashed one is the
//!   same collection the SDK posts to (`create`, `bulkCreate`).
//! - **Lists are references**: a list answers `{"{plural, first letter
//!   lower}": [{"entityType", "href", "displayName"}, …]}` and a record is
//!   read from its `href`, whose answer is wrapped in the type's name with
//!   its first letter lower (`{"student": {…}}`): `RestGateway::query`,
//!   `refresh`, `retrieve`; `src/Arbor/Model/Hydrator.php` (`entityType`,
//!   `href`, `displayName` are the reference's keys) and `ModelBase.php`
//!   (a property not yet loaded is fetched from `href`; the id is the last
//!   segment of `href`). A property naming another record is such a
//!   reference too.
//! - **Paging and filters** (`src/Arbor/Query/Query.php`,
//!   `getQueryOptions`): `page`, `page-size`, and `filters.{property}.
//!   {operator}`; a filter on a record property compares the record's
//!   `href` (`examples/all-students-enrolled-on-particular-subject-query.
//!   php` filters enrolments with `equals` on an academic unit). Only
//!   `equals` is served. The SDK does not say whether pages count from 0
//!   or 1, nor the default page size: here pages count from 1 and the
//!   default is 100, and a short page is the last.
//! - **Change log** (`getChanges`, `src/Arbor/ChangeLog/Change.php`,
//!   `PsrRestGatewayTest::testGetChangesReturnsArrayOfChangeObjects`):
//!   `{"changes": [{"changedObject": {entityType, href}, "changeType",
//!   "fromRevision", "toRevision"}]}` after `from-revision` (left out when
//!   0) up to `to-revision`; change types are lower case (`update` in the
//!   test; `create` and `delete` here by the same pattern). The SDK shows
//!   no current-revision field: a reader resumes from the highest
//!   `toRevision` it has seen.
//! - **Fields**, each from its model in `src/Arbor/Model/`: `Student`
//!   (`person`, `studentNumber`), `Staff` (`person`, `staffNumber`),
//!   `Guardian` (`person`, `legacySystemId`), `Person` (`title`,
//!   `legalFirstName`, `legalMiddleNames`, `legalLastName`,
//!   `preferredFirstName`, `preferredLastName`, `dateOfBirth`), `Title`
//!   (`code`, `title`), `EmailAddress` (`emailAddressOwner`,
//!   `emailAddress`, `dataOrder`), `SchoolEnrolment` (`student`,
//!   `startDate`, `endDate`), `AcademicLevelMembership` (`student`,
//!   `academicLevel`, `startDate`, `endDate`), `AcademicLevel` (`code`,
//!   `academicLevelName`, `shortName`), `RegistrationForm` (`code`,
//!   `registrationFormName`, `shortName`), `RegistrationFormMembership`
//!   (`registrationForm`, `student`, `startDate`, `endDate`),
//!   `AcademicUnit` (`academicUnitName`, `academicUnitCode`, `shortName`,
//!   `subject`, `academicLevel`), `Subject` (`code`, `subjectName`),
//!   `AcademicUnitEnrolment` (`academicUnit`, `student`, `startDate`,
//!   `endDate`), `AcademicUnitLead` (`academicUnit`, `staff`, `startDate`,
//!   `endDate`), `StudentGuardianRelationship` (`student`, `guardian`,
//!   `guardianRelationshipType`, `isLegalGuardian`, `isPrimaryGuardian`,
//!   `emergencyContactPriority`), `GuardianRelationshipType` (`code`,
//!   `relationshipName`).
//!
//! Where the SDK is silent the fake says so rather than guess: whether a
//! record embeds the records it names (here it names them by reference
//! only, the leanest shape the SDK's lazy loading reads), what owns an
//! email address (here the `Person`), and the values of `code` fields
//! (here the sandbox's own). Dates are `YYYY-MM-DD` strings; the SDK also
//! reads `{"entityType": "date", "date": …}` (`Hydrator.php`), which the
//! fake does not send. A `RegistrationForm` has no year in the SDK's
//! model (years map to forms through `AcademicLevelRegistrationFormMapping`,
//! not served), and its tutors (`RegistrationFormTutor`) are not served.
//! Only pupils on roll are served (Arbor's applicants and leavers are not
//! part of this fake).
//!
//! Every answer is built from the one record or page asked for: a record
//! is found by its id (ids are the generator's uids; a membership's id
//! packs its group's and member's, see [`membership_id`]), so a reader
//! fetching every record one by one costs the sandbox little per request.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rostersync_model::{EnrolmentStatus, GroupKind};
use serde_json::{Map, Value, json};

use super::{not_found, page};
use crate::generator::{self as g, School, Stamp};
use crate::{Req, Shared, json_error};

pub(crate) fn authenticate(shared: &Shared, req: &Req) -> Option<usize> {
    let (user, password) = req.basic()?;
    let host = req
        .path
        .trim_start_matches('/')
        .split('/')
        .next()?
        .to_string();
    shared.school_for(crate::Provider::Arbor, |c| {
        c.arbor_user == user && c.arbor_password == password && c.arbor_host == host
    })
}

/// Arbor's numeric id of a row linking two records (a membership, a
/// pupil–guardian relationship), from theirs.
pub fn membership_id(first: u64, second: u64) -> u64 {
    first * 1_000_000 + second
}

fn unpack(id: u64) -> (u64, u64) {
    (id / 1_000_000, id % 1_000_000)
}

/// The resources the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Student,
    Staff,
    Guardian,
    Person,
    Title,
    EmailAddress,
    SchoolEnrolment,
    AcademicLevel,
    AcademicLevelMembership,
    RegistrationForm,
    RegistrationFormMembership,
    AcademicUnit,
    Subject,
    AcademicUnitEnrolment,
    AcademicUnitLead,
    StudentGuardianRelationship,
    GuardianRelationshipType,
}

impl Resource {
    pub const ALL: [Resource; 17] = [
        Self::Student,
        Self::Staff,
        Self::Guardian,
        Self::Person,
        Self::Title,
        Self::EmailAddress,
        Self::SchoolEnrolment,
        Self::AcademicLevel,
        Self::AcademicLevelMembership,
        Self::RegistrationForm,
        Self::RegistrationFormMembership,
        Self::AcademicUnit,
        Self::Subject,
        Self::AcademicUnitEnrolment,
        Self::AcademicUnitLead,
        Self::StudentGuardianRelationship,
        Self::GuardianRelationshipType,
    ];

    pub fn entity_type(self) -> &'static str {
        match self {
            Self::Student => "Student",
            Self::Staff => "Staff",
            Self::Guardian => "Guardian",
            Self::Person => "Person",
            Self::Title => "Title",
            Self::EmailAddress => "EmailAddress",
            Self::SchoolEnrolment => "SchoolEnrolment",
            Self::AcademicLevel => "AcademicLevel",
            Self::AcademicLevelMembership => "AcademicLevelMembership",
            Self::RegistrationForm => "RegistrationForm",
            Self::RegistrationFormMembership => "RegistrationFormMembership",
            Self::AcademicUnit => "AcademicUnit",
            Self::Subject => "Subject",
            Self::AcademicUnitEnrolment => "AcademicUnitEnrolment",
            Self::AcademicUnitLead => "AcademicUnitLead",
            Self::StudentGuardianRelationship => "StudentGuardianRelationship",
            Self::GuardianRelationshipType => "GuardianRelationshipType",
        }
    }

    /// The plural by the SDK's `PluralizeFilter`.
    pub fn plural(self) -> String {
        let name = self.entity_type();
        if let Some(stem) = name.strip_suffix('s') {
            format!("{stem}ses")
        } else if name.ends_with('y') && !name.ends_with("ay") {
            format!("{}ies", &name[..name.len() - 1])
        } else {
            format!("{name}s")
        }
    }

    /// The record and change-log path segment: the plural with dashes
    /// between words, in lower case (`CamelCaseToDash`, then lower case).
    pub fn segment(self) -> String {
        let mut out = String::new();
        for (i, c) in self.plural().chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    }

    /// The key a list is wrapped in.
    pub fn list_key(self) -> String {
        lower_first(&self.plural())
    }

    /// The key one record is wrapped in.
    pub fn record_key(self) -> String {
        lower_first(self.entity_type())
    }

    fn from_segment(segment: &str) -> Option<Resource> {
        Self::ALL
            .into_iter()
            .find(|r| r.segment() == segment || r.plural() == segment)
    }
}

fn lower_first(name: &str) -> String {
    let mut out = name.to_string();
    out[..1].make_ascii_lowercase();
    out
}

pub fn href(resource: Resource, id: u64) -> String {
    format!("/rest-v2/{}/{id}", resource.segment())
}

fn reference(resource: Resource, id: u64, display: &str) -> Value {
    json!({"entityType": resource.entity_type(), "href": href(resource, id), "displayName": display})
}

pub fn in_arbor(s: &g::Student) -> bool {
    s.status == EnrolmentStatus::OnRoll
}

/// The id of a name in one of the generator's fixed lists (titles,
/// subjects, relationship types): its position, from 1.
fn listed(list: &[&str], name: &str) -> Option<u64> {
    list.iter().position(|n| *n == name).map(|i| i as u64 + 1)
}

fn subjects() -> Vec<&'static str> {
    g::SUBJECTS.iter().map(|(name, _)| *name).collect()
}

fn title_ref(title: &str) -> Value {
    listed(g::STAFF_TITLES, title).map_or(Value::Null, |id| reference(Resource::Title, id, title))
}

fn level_ref(year: u8) -> Value {
    reference(
        Resource::AcademicLevel,
        u64::from(year),
        &format!("Year {year}"),
    )
}

fn student_ref(s: &g::Student) -> Value {
    reference(
        Resource::Student,
        s.uid,
        &format!("{} {}", s.forename, s.surname),
    )
}

fn group_ref(grp: &g::Group) -> Value {
    let resource = match grp.kind {
        GroupKind::Registration => Resource::RegistrationForm,
        _ => Resource::AcademicUnit,
    };
    reference(resource, grp.uid, grp.name.as_deref().unwrap_or(&grp.code))
}

/// A person the fake serves: a pupil on roll, a member of staff, or a
/// guardian of a pupil on roll (live or tombstoned).
enum Someone<'a> {
    Pupil(&'a g::Student),
    Staff(&'a g::Staff),
    Guardian(&'a g::Contact),
}

impl Someone<'_> {
    fn stamp(&self) -> Stamp {
        match self {
            Someone::Pupil(s) => s.stamp,
            Someone::Staff(s) => s.stamp,
            Someone::Guardian(c) => c.stamp,
        }
    }

    fn email(&self) -> Option<&str> {
        match self {
            Someone::Pupil(s) => s.email.as_deref(),
            Someone::Staff(s) => s.email.as_deref(),
            Someone::Guardian(c) => c.email.as_deref(),
        }
    }

    fn name(&self) -> String {
        match self {
            Someone::Pupil(s) => format!("{} {}", s.forename, s.surname),
            Someone::Staff(s) => format!("{} {}", s.forename, s.surname),
            Someone::Guardian(c) => format!("{} {}", c.forename, c.surname),
        }
    }
}

fn guardian_served(sch: &School, c: &g::Contact) -> bool {
    !c.stamp.live() || sch.students_of(c.uid).iter().any(|(s, _)| in_arbor(s))
}

fn someone(sch: &School, uid: u64) -> Option<Someone<'_>> {
    if let Some(s) = sch.students.get(&uid) {
        return in_arbor(s).then_some(Someone::Pupil(s));
    }
    if let Some(s) = sch.staff.get(&uid) {
        return Some(Someone::Staff(s));
    }
    let c = sch.contacts.get(&uid)?;
    guardian_served(sch, c).then_some(Someone::Guardian(c))
}

fn everyone(sch: &School) -> Vec<Someone<'_>> {
    let pupils = sch
        .students
        .values()
        .filter(|s| in_arbor(s))
        .map(Someone::Pupil);
    let staff = sch.staff.values().map(Someone::Staff);
    let guardians = sch
        .contacts
        .values()
        .filter(|c| guardian_served(sch, c))
        .map(Someone::Guardian);
    pupils.chain(staff).chain(guardians).collect()
}

/// A pupil–group row's stamp: the pupil's, moved on by a later change of
/// the group.
fn member_stamp(pupil: &g::Student, grp: &g::Group) -> Stamp {
    let mut stamp = pupil.stamp;
    if pupil.stamp.live() && grp.stamp.updated_rev > stamp.updated_rev {
        stamp.touch(grp.stamp.updated_rev, grp.stamp.updated_at);
    }
    stamp
}

fn served_kind(resource: Resource) -> Option<GroupKind> {
    match resource {
        Resource::RegistrationForm | Resource::RegistrationFormMembership => {
            Some(GroupKind::Registration)
        }
        Resource::AcademicUnit | Resource::AcademicUnitEnrolment | Resource::AcademicUnitLead => {
            Some(GroupKind::Class)
        }
        _ => None,
    }
}

/// Every row of a resource, live or tombstoned, by id, with its stamp.
fn rows(sch: &School, resource: Resource) -> Vec<(u64, Stamp)> {
    let fixed = |n: usize| -> Vec<(u64, Stamp)> {
        (1..=n as u64)
            .map(|id| (id, Stamp::new(1, g::epoch())))
            .collect()
    };
    let pupils = || sch.students.values().filter(|s| in_arbor(s));
    let groups = |kind| sch.groups.values().filter(move |g| g.kind == kind);
    let mut out: Vec<(u64, Stamp)> = match resource {
        Resource::Student | Resource::SchoolEnrolment | Resource::AcademicLevelMembership => {
            pupils().map(|s| (s.uid, s.stamp)).collect()
        }
        Resource::Staff => sch.staff.values().map(|s| (s.uid, s.stamp)).collect(),
        Resource::Guardian => sch
            .contacts
            .values()
            .filter(|c| guardian_served(sch, c))
            .map(|c| (c.uid, c.stamp))
            .collect(),
        Resource::Person => everyone(sch)
            .iter()
            .map(|p| (person_uid(p), p.stamp()))
            .collect(),
        Resource::EmailAddress => everyone(sch)
            .iter()
            .filter(|p| p.email().is_some())
            .map(|p| (person_uid(p), p.stamp()))
            .collect(),
        Resource::Title => fixed(g::STAFF_TITLES.len()),
        Resource::Subject => fixed(g::SUBJECTS.len()),
        Resource::GuardianRelationshipType => fixed(g::RELATIONSHIPS.len()),
        Resource::AcademicLevel => (1..=13).map(|y| (y, Stamp::new(1, g::epoch()))).collect(),
        Resource::RegistrationForm | Resource::AcademicUnit => {
            groups(served_kind(resource).expect("a group resource"))
                .map(|g| (g.uid, g.stamp))
                .collect()
        }
        Resource::RegistrationFormMembership | Resource::AcademicUnitEnrolment => {
            let mut out = vec![];
            for grp in groups(served_kind(resource).expect("a group resource")) {
                for s in &grp.students {
                    if let Some(st) = sch.students.get(s) {
                        out.push((membership_id(grp.uid, *s), member_stamp(st, grp)));
                    }
                }
                for (s, rev) in &grp.departed {
                    let mut stamp = Stamp::new(1, grp.stamp.updated_at);
                    stamp.delete(*rev, grp.stamp.updated_at);
                    out.push((membership_id(grp.uid, *s), stamp));
                }
            }
            out
        }
        Resource::AcademicUnitLead => groups(GroupKind::Class)
            .flat_map(|grp| {
                grp.teachers
                    .iter()
                    .map(|t| (membership_id(grp.uid, *t), grp.stamp))
            })
            .collect(),
        Resource::StudentGuardianRelationship => sch
            .links
            .keys()
            .filter_map(|&(s, c)| {
                let (st, ct) = (sch.students.get(&s)?, sch.contacts.get(&c)?);
                let stamp = if st.stamp.live() { ct.stamp } else { st.stamp };
                in_arbor(st).then_some((membership_id(s, c), stamp))
            })
            .collect(),
    };
    out.sort_by_key(|(id, _)| *id);
    out
}

fn person_uid(p: &Someone) -> u64 {
    match p {
        Someone::Pupil(s) => s.uid,
        Someone::Staff(s) => s.uid,
        Someone::Guardian(c) => c.uid,
    }
}

/// One live row's properties (without `entityType` and `href`), and its
/// display name.
fn render(sch: &School, resource: Resource, id: u64) -> Option<(Value, String)> {
    let start = g::academic_year_start().to_string();
    let live_pupil = |uid: u64| {
        sch.students
            .get(&uid)
            .filter(|s| s.stamp.live() && in_arbor(s))
    };
    let live_group = |uid: u64| {
        sch.groups
            .get(&uid)
            .filter(|g| g.stamp.live() && Some(g.kind) == served_kind(resource))
    };
    let person_ref = |p: &Someone| reference(Resource::Person, person_uid(p), &p.name());
    let live_someone = |uid: u64| someone(sch, uid).filter(|p| p.stamp().live());
    let row = match resource {
        Resource::Student => {
            let s = live_pupil(id)?;
            let p = Someone::Pupil(s);
            (
                json!({"studentNumber": s.mis_id, "person": person_ref(&p)}),
                p.name(),
            )
        }
        Resource::Staff => {
            let s = sch.staff.get(&id).filter(|s| s.stamp.live())?;
            let p = Someone::Staff(s);
            (
                json!({"staffNumber": s.mis_id, "person": person_ref(&p)}),
                p.name(),
            )
        }
        Resource::Guardian => {
            let p = live_someone(id).filter(|p| matches!(p, Someone::Guardian(_)))?;
            let Someone::Guardian(c) = p else {
                return None;
            };
            (
                json!({"legacySystemId": c.mis_id, "person": person_ref(&p)}),
                p.name(),
            )
        }
        Resource::Person => {
            let p = live_someone(id)?;
            let v = match &p {
                Someone::Pupil(s) => json!({"title": null, "legalFirstName": s.forename,
                    "legalMiddleNames": s.middle_names, "legalLastName": s.surname,
                    "preferredFirstName": s.preferred_forename.as_deref().unwrap_or(&s.forename),
                    "preferredLastName": s.surname, "dateOfBirth": s.date_of_birth.to_string()}),
                Someone::Staff(s) => {
                    json!({"title": title_ref(&s.title), "legalFirstName": s.forename,
                    "legalMiddleNames": null, "legalLastName": s.surname, "preferredFirstName": s.forename,
                    "preferredLastName": s.surname, "dateOfBirth": s.date_of_birth.to_string()})
                }
                Someone::Guardian(c) => {
                    json!({"title": title_ref(&c.title), "legalFirstName": c.forename,
                    "legalMiddleNames": null, "legalLastName": c.surname, "preferredFirstName": c.forename,
                    "preferredLastName": c.surname, "dateOfBirth": null})
                }
            };
            (v, p.name())
        }
        Resource::EmailAddress => {
            let p = live_someone(id)?;
            let address = p.email()?;
            (
                json!({"emailAddressOwner": person_ref(&p), "emailAddress": address, "dataOrder": 1}),
                address.to_string(),
            )
        }
        Resource::SchoolEnrolment => {
            let s = live_pupil(id)?;
            (
                json!({"student": student_ref(s), "startDate": s.start_date.to_string(), "endDate": null}),
                format!("{} {}", s.forename, s.surname),
            )
        }
        Resource::AcademicLevelMembership => {
            let s = live_pupil(id)?;
            (
                json!({"student": student_ref(s), "academicLevel": level_ref(s.year), "startDate": start, "endDate": null}),
                format!("{} {}", s.forename, s.surname),
            )
        }
        Resource::AcademicLevel => {
            let year = u8::try_from(id).ok().filter(|y| (1..=13).contains(y))?;
            let name = format!("Year {year}");
            (
                json!({"code": format!("Y{year}"), "academicLevelName": name, "shortName": format!("Y{year}")}),
                name,
            )
        }
        Resource::Title => {
            let title = g::STAFF_TITLES.get(usize::try_from(id).ok()?.checked_sub(1)?)?;
            (
                json!({"code": title.to_uppercase(), "title": title}),
                title.to_string(),
            )
        }
        Resource::Subject => {
            let (name, code) = g::SUBJECTS.get(usize::try_from(id).ok()?.checked_sub(1)?)?;
            (json!({"code": code, "subjectName": name}), name.to_string())
        }
        Resource::GuardianRelationshipType => {
            let name = g::RELATIONSHIPS.get(usize::try_from(id).ok()?.checked_sub(1)?)?;
            (
                json!({"code": name.to_uppercase().replace(' ', "_"), "relationshipName": name}),
                name.to_string(),
            )
        }
        Resource::RegistrationForm => {
            let grp = live_group(id)?;
            let name = grp.name.clone().unwrap_or_default();
            (
                json!({"code": grp.code, "registrationFormName": grp.name, "shortName": grp.code}),
                name,
            )
        }
        Resource::AcademicUnit => {
            let grp = live_group(id)?;
            let subject = grp.subject.as_deref().and_then(|name| {
                Some(reference(
                    Resource::Subject,
                    listed(&subjects(), name)?,
                    name,
                ))
            });
            (
                json!({"academicUnitName": grp.name, "academicUnitCode": grp.code, "shortName": grp.code,
                    "subject": subject, "academicLevel": grp.year.map(level_ref)}),
                grp.name.clone().unwrap_or_default(),
            )
        }
        Resource::RegistrationFormMembership | Resource::AcademicUnitEnrolment => {
            let (group, pupil) = unpack(id);
            let grp = live_group(group).filter(|g| g.students.contains(&pupil))?;
            let s = live_pupil(pupil)?;
            let key = if resource == Resource::RegistrationFormMembership {
                "registrationForm"
            } else {
                "academicUnit"
            };
            let mut v = json!({"student": student_ref(s), "startDate": start, "endDate": null});
            v[key] = group_ref(grp);
            (v, format!("{} {}", s.forename, s.surname))
        }
        Resource::AcademicUnitLead => {
            let (group, teacher) = unpack(id);
            let grp = live_group(group).filter(|g| g.teachers.contains(&teacher))?;
            let p = Someone::Staff(sch.staff.get(&teacher).filter(|s| s.stamp.live())?);
            let staff = reference(Resource::Staff, teacher, &p.name());
            (
                json!({"academicUnit": group_ref(grp), "staff": staff, "startDate": start, "endDate": null}),
                p.name(),
            )
        }
        Resource::StudentGuardianRelationship => {
            let (pupil, contact) = unpack(id);
            let link = sch.links.get(&(pupil, contact))?;
            let s = live_pupil(pupil)?;
            let c = sch.contacts.get(&contact).filter(|c| c.stamp.live())?;
            let kind = listed(g::RELATIONSHIPS, &link.relationship).map_or(Value::Null, |id| {
                reference(Resource::GuardianRelationshipType, id, &link.relationship)
            });
            let guardian = reference(
                Resource::Guardian,
                contact,
                &format!("{} {}", c.forename, c.surname),
            );
            (
                json!({"student": student_ref(s), "guardian": guardian, "guardianRelationshipType": kind,
                    "isLegalGuardian": link.parental_responsibility, "isPrimaryGuardian": link.priority == 1,
                    "emergencyContactPriority": link.priority}),
                link.relationship.clone(),
            )
        }
    };
    Some(row)
}

/// Whether a rendered row passes every `filters.{property}.equals` of the
/// query: a property naming a record matches its `href`, any other its
/// value as text.
fn passes(row: &Value, filters: &[(&str, &str)]) -> bool {
    filters
        .iter()
        .all(|(property, wanted)| match &row[*property] {
            Value::Object(named) => named.get("href").and_then(Value::as_str) == Some(*wanted),
            Value::String(text) => text == wanted,
            Value::Null => *wanted == "NULL",
            other => serde_json::from_str::<Value>(wanted).is_ok_and(|w| w == *other),
        })
}

pub(crate) fn route(shared: &Shared, school: usize, req: &Req) -> Response {
    let sch = &shared.world.schools[school];
    let segments: Vec<&str> = req.path.trim_matches('/').split('/').skip(1).collect();
    match segments.as_slice() {
        ["rest-v2", segment] => match Resource::from_segment(segment) {
            Some(resource) => list(sch, resource, req),
            None => not_found(),
        },
        ["rest-v2", segment, "changelog"] => match Resource::from_segment(segment) {
            Some(resource) if resource.segment() == *segment => {
                changelog(sch, resource, req, shared.world.revision)
            }
            _ => not_found(),
        },
        ["rest-v2", segment, id] => {
            let resource = Resource::from_segment(segment).filter(|r| r.segment() == *segment);
            match (resource, id.parse::<u64>()) {
                (Some(resource), Ok(id)) => match render(sch, resource, id) {
                    Some((row, _)) => {
                        let mut one = Map::new();
                        one.insert(resource.record_key(), with_identity(resource, id, row));
                        Json(Value::Object(one)).into_response()
                    }
                    None => not_found(),
                },
                _ => not_found(),
            }
        }
        _ => not_found(),
    }
}

fn with_identity(resource: Resource, id: u64, mut row: Value) -> Value {
    row["entityType"] = json!(resource.entity_type());
    row["href"] = json!(href(resource, id));
    row
}

fn list(sch: &School, resource: Resource, req: &Req) -> Response {
    let mut filters = vec![];
    for (key, value) in &req.query {
        let Some(rest) = key.strip_prefix("filters.") else {
            continue;
        };
        match rest.strip_suffix(".equals") {
            Some(property) => filters.push((property, value.as_str())),
            None => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    &format!("the sandbox serves only `equals` filters, not {key}"),
                );
            }
        }
    }
    let size = req
        .param("page-size")
        .and_then(|p| p.parse().ok())
        .unwrap_or(100usize)
        .clamp(1, 1000);
    let number = req
        .param("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1usize);
    let live: Vec<u64> = rows(sch, resource)
        .into_iter()
        .filter(|(_, stamp)| stamp.live())
        .map(|(id, _)| id)
        .collect();
    let references: Vec<Value> = if filters.is_empty() {
        let (ids, _) = page(&live, number, size);
        ids.into_iter()
            .filter_map(|id| Some(reference(resource, id, &render(sch, resource, id)?.1)))
            .collect()
    } else {
        let matching: Vec<Value> = live
            .into_iter()
            .filter_map(|id| {
                let (row, display) = render(sch, resource, id)?;
                passes(&row, &filters).then(|| reference(resource, id, &display))
            })
            .collect();
        page(&matching, number, size).0
    };
    let mut body = Map::new();
    body.insert(resource.list_key(), Value::Array(references));
    Json(Value::Object(body)).into_response()
}

fn changelog(sch: &School, resource: Resource, req: &Req, current: u64) -> Response {
    let from = req
        .param("from-revision")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0u64);
    let to = req
        .param("to-revision")
        .and_then(|p| p.parse().ok())
        .unwrap_or(current)
        .min(current);
    let changes: Vec<Value> = rows(sch, resource)
        .into_iter()
        .filter(|(_, s)| s.updated_rev > from && s.updated_rev <= to)
        .map(|(id, s)| {
            let change = if s.deleted.is_some() {
                "delete"
            } else if s.created_rev > from {
                "create"
            } else {
                "update"
            };
            json!({"changedObject": {"entityType": resource.entity_type(), "href": href(resource, id)},
                "changeType": change, "fromRevision": from, "toRevision": s.updated_rev})
        })
        .collect();
    Json(json!({"changes": changes})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_sdks_pluralising_and_dashes() {
        let cases = [
            (
                Resource::Student,
                "Students",
                "students",
                "students",
                "student",
            ),
            (Resource::Staff, "Staffs", "staffs", "staffs", "staff"),
            (Resource::Person, "Persons", "persons", "persons", "person"),
            (
                Resource::EmailAddress,
                "EmailAddresses",
                "email-addresses",
                "emailAddresses",
                "emailAddress",
            ),
            (
                Resource::StudentGuardianRelationship,
                "StudentGuardianRelationships",
                "student-guardian-relationships",
                "studentGuardianRelationships",
                "studentGuardianRelationship",
            ),
        ];
        for (resource, plural, segment, list, record) in cases {
            assert_eq!(resource.plural(), plural);
            assert_eq!(resource.segment(), segment);
            assert_eq!(resource.list_key(), list);
            assert_eq!(resource.record_key(), record);
            assert_eq!(Resource::from_segment(plural), Some(resource));
            assert_eq!(Resource::from_segment(segment), Some(resource));
        }
    }

    #[test]
    fn a_filter_on_a_record_compares_its_href() {
        let row = json!({"student": {"entityType": "Student", "href": "/rest-v2/students/7"}, "startDate": "2026-09-01"});
        assert!(passes(&row, &[("student", "/rest-v2/students/7")]));
        assert!(!passes(&row, &[("student", "/rest-v2/students/8")]));
        assert!(passes(&row, &[("startDate", "2026-09-01")]));
    }
}
