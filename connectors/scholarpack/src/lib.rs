//! Scholarpack connector: reads one primary school from the Scholarpack
//! REST API v1 (`students`, `staff`, `contacts`, `groups`) into roster
//! records: pupils (current, leavers, applicants), staff, contacts, groups
//! by type, their memberships, and each pupil's contacts with priority.
//!
//! Scholarpack has no change feed, so every read is full; the host's diff
//! finds what changed. Lists page with `page`/`per_page` and say where the
//! next page is in `next_uri`.
//!
//! What public description exists, and what it settles: Scholarpack's
//! support articles "About the ScholarPack API" (360030539152) and "For
//! Data Integrators – About the ScholarPack API" (6173665308189) give the
//! URI form `https://{sandbox|services}.scholarpack.co.uk/api/v1/{resource}/`
//! (`students/` is their only example), bearer tokens from the OAuth 2.0
//! authorisation-code flow, and the page envelope `{has_next, has_prev,
//! next_num, page, pages, per_page, prev_num, next_uri, prev_uri, data}`
//! with `?per_page=`; the two articles disagree on the default page size
//! (50 and 100). "API Configuration" (360001293911) says a school grants
//! access with a user holding both `admin` and `sysadmin`. The Open API
//! document they link (`https://sandbox.scholarpack.co.uk/api/v1/`) is not
//! public without an account, and no public client or recording shows a
//! record's fields or the `staff`, `contacts` and `groups` resources: those
//! names and shapes are unconfirmed, so they are read tolerantly (unknown
//! fields ignored, optional fields optional).

use rostersync_connector_sdk::http::Request;
use rostersync_connector_sdk::*;
use serde::Deserialize;
use serde::de::DeserializeOwned;

const BASE_URL: &str = "base-url";
const API_TOKEN: &str = "api-token";
/// The documented ceiling.
const PER_PAGE: u32 = 100;

struct Scholarpack;

impl Connector for Scholarpack {
    type Snapshot = Reader;

    fn describe() -> ConnectorInfo {
        ConnectorInfo::new(
            "Scholarpack",
            env!("CARGO_PKG_VERSION"),
            "Pupils, staff, contacts and groups of one primary school from the Scholarpack API v1.",
        )
        .setting(SettingSpec::base_url(
            BASE_URL,
            "The API root: https://services.scholarpack.co.uk/api/v1 (https://sandbox.scholarpack.co.uk/api/v1 for testing).",
            Some("https://services.scholarpack.co.uk/api/v1"),
        ))
        .setting(SettingSpec::secret(
            API_TOKEN,
            "The OAuth 2.0 bearer token the school's administrator granted.",
        ))
        .capability(Capability::Contacts)
    }

    fn check(settings: &Settings) -> Result<SchoolInfo, SyncError> {
        let api = Api::new(settings)?;
        let url = format!("{}/students/?per_page=1", api.base);
        let page: List<serde::de::IgnoredAny> = api.get(&url)?;
        Ok(SchoolInfo {
            id: api.base.clone(),
            name: "Scholarpack school".into(),
            details: vec![Attribute {
                name: "pages of pupils".into(),
                value: page.pages.unwrap_or(0).to_string(),
            }],
        })
    }

    fn snapshot(settings: Settings, _mode: Mode) -> Reader {
        Reader {
            settings,
            started: None,
        }
    }
}

struct Api {
    base: String,
    token: String,
}

impl Api {
    fn new(settings: &Settings) -> Result<Api, SyncError> {
        Ok(Api {
            base: settings.base_url(BASE_URL)?,
            token: settings.require(API_TOKEN)?.to_string(),
        })
    }

    fn get<T: DeserializeOwned>(&self, url: &str) -> Result<T, SyncError> {
        Request::get(url).bearer(&self.token).send()?.json()
    }
}

/// A page of any list.
#[derive(Deserialize)]
struct List<T> {
    data: Vec<T>,
    #[serde(default)]
    next_uri: Option<String>,
    #[serde(default)]
    pages: Option<u32>,
}

#[derive(Deserialize)]
struct StudentJson {
    id: u64,
    admission_number: Option<String>,
    forename: Option<String>,
    preferred_forename: Option<String>,
    middle_names: Option<String>,
    surname: Option<String>,
    email: Option<String>,
    date_of_birth: Option<String>,
    year_group: Option<String>,
    class: Option<String>,
    admission_date: Option<String>,
    leaving_date: Option<String>,
    enrolment_status: Option<String>,
    #[serde(default)]
    contacts: Vec<ContactLinkJson>,
}

#[derive(Deserialize)]
struct ContactLinkJson {
    contact_id: u64,
    relationship: Option<String>,
    priority: Option<u32>,
    #[serde(default)]
    parental_responsibility: bool,
}

#[derive(Deserialize)]
struct AdultJson {
    id: u64,
    #[serde(alias = "contact_code")]
    staff_code: Option<String>,
    title: Option<String>,
    forename: Option<String>,
    surname: Option<String>,
    email: Option<String>,
    date_of_birth: Option<String>,
}

#[derive(Deserialize)]
struct GroupJson {
    id: u64,
    name: Option<String>,
    code: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    subject: Option<String>,
    year_group: Option<String>,
    #[serde(default)]
    student_ids: Vec<u64>,
    #[serde(default)]
    staff_ids: Vec<u64>,
}

/// Contact type by priority: the first contact is the primary one.
fn contact_type(priority: Option<u32>) -> ContactType {
    match priority {
        Some(1) => ContactType::Primary,
        Some(2) => ContactType::Secondary,
        _ => ContactType::Emergency,
    }
}

fn student(json: StudentJson) -> Result<Vec<RosterRecord>, SyncError> {
    let id = json.id.to_string();
    let mut person = Person::new(id.clone(), Role::Student);
    person.mis_id = json.admission_number;
    person.first_name = json.forename;
    person.preferred_first_name = json.preferred_forename;
    person.middle_names = json.middle_names;
    person.last_name = json.surname;
    person.email = json.email;
    person.date_of_birth =
        date::date_field("students", json.id, "date_of_birth", json.date_of_birth)?;
    person.start_date =
        date::date_field("students", json.id, "admission_date", json.admission_date)?;
    person.leaving_date = date::date_field("students", json.id, "leaving_date", json.leaving_date)?;
    person.year_group = json.year_group;
    person.registration_group = json.class;
    person.enrolment = match json.enrolment_status.as_deref() {
        Some("current") => Some(EnrolmentStatus::OnRoll),
        Some("leaver") => Some(EnrolmentStatus::Left),
        Some("applicant") => Some(EnrolmentStatus::Prospective),
        None => None,
        Some(other) => {
            return Err(SyncError::BadResponse(format!(
                "students: record {} has enrolment_status {other:?}, expected current, leaver or applicant",
                json.id
            )));
        }
    };
    let mut records = vec![RosterRecord::Person(person)];
    for link in json.contacts {
        let mut relationship = Relationship::new(
            id.clone(),
            link.contact_id.to_string(),
            contact_type(link.priority),
        );
        relationship.relationship = link.relationship;
        relationship.priority = link.priority;
        relationship.parental_responsibility = link.parental_responsibility;
        records.push(RosterRecord::Relationship(relationship));
    }
    Ok(records)
}

fn adult(endpoint: &str, role: Role, json: AdultJson) -> Result<RosterRecord, SyncError> {
    let mut person = Person::new(json.id.to_string(), role);
    person.mis_id = json.staff_code;
    person.salutation = json.title;
    person.first_name = json.forename;
    person.last_name = json.surname;
    person.email = json.email;
    person.date_of_birth =
        date::date_field(endpoint, json.id, "date_of_birth", json.date_of_birth)?;
    Ok(RosterRecord::Person(person))
}

fn group(json: GroupJson) -> Vec<RosterRecord> {
    let id = json.id.to_string();
    let kind = match json.kind.as_str() {
        "teaching" => GroupKind::Class,
        "class" => GroupKind::Registration,
        "year" => GroupKind::Year,
        "house" => GroupKind::House,
        _ => GroupKind::Other,
    };
    let mut record = Group::new(id.clone(), kind, json.name);
    record.code = json.code;
    record.subject = json.subject;
    record.year_group = json.year_group;
    let mut records = vec![RosterRecord::Group(record)];
    records.extend(json.staff_ids.into_iter().map(|staff| {
        RosterRecord::Membership(Membership::new(
            id.clone(),
            staff.to_string(),
            MemberRole::Teacher,
        ))
    }));
    records.extend(json.student_ids.into_iter().map(|pupil| {
        RosterRecord::Membership(Membership::new(
            id.clone(),
            pupil.to_string(),
            MemberRole::Student,
        ))
    }));
    records
}

#[derive(Clone, Copy)]
enum Endpoint {
    Students,
    Staff,
    Contacts,
    Groups,
}

impl Endpoint {
    const ALL: [Endpoint; 4] = [Self::Students, Self::Staff, Self::Contacts, Self::Groups];

    fn path(self) -> &'static str {
        match self {
            Self::Students => "students",
            Self::Staff => "staff",
            Self::Contacts => "contacts",
            Self::Groups => "groups",
        }
    }
}

struct Reader {
    settings: Settings,
    started: Option<(Api, Pager<Endpoint>)>,
}

/// One page of `endpoint` as records, with where its next page is.
fn read_page<T: DeserializeOwned>(
    api: &Api,
    url: &str,
    mut map: impl FnMut(T) -> Result<Vec<RosterRecord>, SyncError>,
) -> Result<Page, SyncError> {
    let list: List<T> = api.get(url)?;
    let mut records = Vec::new();
    for item in list.data {
        records.extend(map(item)?);
    }
    Ok(Page {
        records,
        next: list.next_uri,
        total_pages: list.pages,
    })
}

impl Snapshot for Reader {
    fn next_batch(&mut self) -> Result<Option<Vec<RosterRecord>>, SyncError> {
        if self.started.is_none() {
            let api = Api::new(&self.settings)?;
            let endpoints = Endpoint::ALL.map(|endpoint| {
                let url = format!("{}/{}/?per_page={PER_PAGE}", api.base, endpoint.path());
                (endpoint, url)
            });
            self.started = Some((api, Pager::new(endpoints)));
        }
        let (api, pager) = self.started.as_mut().expect("started above");
        pager.next_batch(|endpoint, url| match endpoint {
            Endpoint::Students => read_page(api, url, student),
            Endpoint::Staff => read_page(api, url, |json| {
                Ok(vec![adult("staff", Role::Staff, json)?])
            }),
            Endpoint::Contacts => read_page(api, url, |json| {
                Ok(vec![adult("contacts", Role::Contact, json)?])
            }),
            Endpoint::Groups => read_page(api, url, |json| Ok(group(json))),
        })
    }
}

export_connector!(Scholarpack);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pupil_maps_with_contacts_typed_by_priority() {
        let json: StudentJson = serde_json::from_str(
            r#"{"id": 7, "admission_number": "A007", "forename": "Siobhán", "surname": "Nguyễn",
                "date_of_birth": "2016-03-01", "admission_date": "2021-09-01T00:00:00",
                "class": "Robins", "year_group": "Year 4", "enrolment_status": "current",
                "unknown": true,
                "contacts": [{"contact_id": 9, "relationship": "Mother", "priority": 1, "parental_responsibility": true},
                             {"contact_id": 10, "priority": 3}]}"#,
        )
        .unwrap();
        let records = student(json).unwrap();
        let RosterRecord::Person(pupil) = &records[0] else {
            panic!("a person first");
        };
        assert_eq!(pupil.first_name.as_deref(), Some("Siobhán"));
        assert_eq!(pupil.start_date.as_deref(), Some("2021-09-01"));
        assert_eq!(pupil.enrolment, Some(EnrolmentStatus::OnRoll));
        let types: Vec<ContactType> = records[1..]
            .iter()
            .map(|r| match r {
                RosterRecord::Relationship(r) => r.contact_type,
                _ => panic!("relationships after the person"),
            })
            .collect();
        assert_eq!(types, [ContactType::Primary, ContactType::Emergency]);
    }

    #[test]
    fn a_bad_date_or_status_names_the_endpoint_record_and_field() {
        let bad = |field: &str, value: &str| {
            let text = format!(r#"{{"id": 3, "{field}": "{value}"}}"#);
            match student(serde_json::from_str(&text).unwrap()) {
                Err(SyncError::BadResponse(message)) => message,
                other => panic!("expected a bad response, got {other:?}"),
            }
        };
        assert_eq!(
            bad("date_of_birth", "31/02/2016"),
            "students: record 3 has date_of_birth \"31/02/2016\", which is not a date"
        );
        assert!(bad("enrolment_status", "visitor").contains("enrolment_status \"visitor\""));
    }

    #[test]
    fn groups_map_by_type_with_members() {
        let json: GroupJson = serde_json::from_str(
            r#"{"id": 4, "name": "Robins", "type": "class", "student_ids": [7], "staff_ids": [2]}"#,
        )
        .unwrap();
        let records = group(json);
        assert!(matches!(&records[0], RosterRecord::Group(g) if g.kind == GroupKind::Registration));
        assert_eq!(records.len(), 3);
    }
}
