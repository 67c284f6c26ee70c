//! Wonde connector: reads one school from the Wonde v1.0 API into roster
//! records: pupils on roll, applicants and leavers, staff, contacts,
//! classes, year, registration and house groups, their memberships, and
//! each pupil's contacts with type and priority.
//!
//! A full read pages through every list endpoint. A delta asks the same
//! endpoints for records `updated_after` the cursor and reads the
//! `deletions` feed for explicit removals. The cursor is the newest
//! `updated_at` or `deleted_at` seen, as the `YYYY-MM-DD HH:MM:SS` that
//! `updated_after` takes, so it follows Wonde's clock, not ours.
//!
//! Wonde re-sends a changed group with all its current members and a
//! changed pupil with all its current contacts, but never says who left.
//! A delta therefore infers membership and relationship removals from those
//! complete lists ([`Departures`]) and hands them over after everything
//! else.

mod shapes;

use rostersync_connector_sdk::departures::Departures;
use rostersync_connector_sdk::http::{Request, percent_encode};
use rostersync_connector_sdk::*;
use serde::de::DeserializeOwned;

use shapes::{
    DeletionJson, GroupJson, GroupSource, List, Origin, PersonJson, SchoolJson, WondeDate,
};

const BASE_URL: &str = "base-url";
const SCHOOL_ID: &str = "school-id";
const API_TOKEN: &str = "api-token";
const PAGE_SIZE: &str = "page-size";
/// What third-party clients use; Wonde does not document its ceiling.
const DEFAULT_PAGE_SIZE: u32 = 200;
/// Inferred removals can be many in a large delta; they go over in batches
/// well under the host's per-batch limit.
const REMOVALS_PER_BATCH: usize = 5_000;

struct Wonde;

impl Connector for Wonde {
    type Snapshot = Reader;

    fn describe() -> ConnectorInfo {
        ConnectorInfo::new(
            "Wonde",
            env!("CARGO_PKG_VERSION"),
            "Pupils (on roll, applicants and leavers), staff, contacts, classes and groups of one school from the Wonde v1.0 API.",
        )
        .setting(SettingSpec::base_url(
            BASE_URL,
            "The API root for the school's region: https://api.wonde.com/v1.0 in the UK, https://api-ap-southeast-2.wonde.com/v1.0 in Australia and New Zealand.",
            Some("https://api.wonde.com/v1.0"),
        ))
        .setting(SettingSpec::text(
            SCHOOL_ID,
            "The school's Wonde id, e.g. A1930499544.",
            true,
            None,
        ))
        .setting(SettingSpec::secret(
            API_TOKEN,
            "The Wonde API token that has access to the school.",
        ))
        .setting(SettingSpec::text(
            PAGE_SIZE,
            "Records per page; lower it if Wonde refuses the default.",
            false,
            Some("200"),
        ))
        .capability(Capability::DeltaReads)
        .capability(Capability::Contacts)
    }

    fn check(settings: &Settings) -> Result<SchoolInfo, SyncError> {
        let api = Api::new(settings)?;
        let school: SchoolJson = api.get(&api.school)?;
        Ok(school.data.info())
    }

    fn snapshot(settings: Settings, mode: Mode) -> Reader {
        Reader {
            settings,
            mode,
            run: None,
            latest: None,
        }
    }
}

/// The school's API: `{base-url}/schools/{school-id}` and the token.
struct Api {
    school: String,
    token: String,
    page_size: u32,
}

impl Api {
    fn new(settings: &Settings) -> Result<Api, SyncError> {
        let base = settings.base_url(BASE_URL)?;
        let school_id = settings.require(SCHOOL_ID)?.trim();
        let page_size = settings.number(PAGE_SIZE, DEFAULT_PAGE_SIZE)?;
        if page_size == 0 {
            return Err(SyncError::BadSettings(format!(
                "the setting `{PAGE_SIZE}` must be at least 1"
            )));
        }
        Ok(Api {
            school: format!("{base}/schools/{}", percent_encode(school_id)),
            token: settings.require(API_TOKEN)?.to_string(),
            page_size,
        })
    }

    /// Wonde's own client sends the token as the Basic user.
    fn get<T: DeserializeOwned>(&self, url: &str) -> Result<T, SyncError> {
        Request::get(url).basic(&self.token, "").send()?.json()
    }

    fn first_page(&self, feed: Feed, updated_after: Option<&str>) -> String {
        let mut url = format!(
            "{}/{}?per_page={}&{}",
            self.school,
            feed.path(),
            self.page_size,
            feed.selection()
        );
        if let Some(since) = updated_after {
            url.push_str("&updated_after=");
            url.push_str(&percent_encode(since));
        }
        url
    }
}

/// One list endpoint of the school.
#[derive(Debug, Clone, Copy)]
enum Feed {
    Pupils(EnrolmentStatus),
    Staff,
    Contacts,
    Classes,
    Groups,
    Deletions(Deleted),
}

/// The record types `deletions?type=` takes (singular, unlike the paths).
#[derive(Debug, Clone, Copy)]
enum Deleted {
    Student,
    Employee,
    Contact,
    Class,
}

impl Feed {
    const ALL_RECORDS: [Feed; 7] = [
        Feed::Pupils(EnrolmentStatus::OnRoll),
        Feed::Pupils(EnrolmentStatus::Prospective),
        Feed::Pupils(EnrolmentStatus::Left),
        Feed::Staff,
        Feed::Contacts,
        Feed::Classes,
        Feed::Groups,
    ];
    const ALL_DELETIONS: [Feed; 4] = [
        Feed::Deletions(Deleted::Student),
        Feed::Deletions(Deleted::Employee),
        Feed::Deletions(Deleted::Contact),
        Feed::Deletions(Deleted::Class),
    ];

    fn path(self) -> &'static str {
        match self {
            Feed::Pupils(EnrolmentStatus::OnRoll) => "students",
            Feed::Pupils(EnrolmentStatus::Prospective) => "students-pre-admission",
            Feed::Pupils(EnrolmentStatus::Left) => "students/leavers",
            Feed::Staff => "employees",
            Feed::Contacts => "contacts",
            Feed::Classes => "classes",
            Feed::Groups => "groups",
            Feed::Deletions(_) => "deletions",
        }
    }

    /// The includes a feed needs, or which deletions it lists.
    fn selection(self) -> &'static str {
        match self {
            Feed::Pupils(_) => {
                "include=education_details,contact_details,year,registration,contacts"
            }
            Feed::Staff | Feed::Contacts => "include=contact_details",
            Feed::Classes => "include=students,employees,subject",
            Feed::Groups => "include=students,employees",
            Feed::Deletions(Deleted::Student) => "type=student",
            Feed::Deletions(Deleted::Employee) => "type=employee",
            Feed::Deletions(Deleted::Contact) => "type=contact",
            Feed::Deletions(Deleted::Class) => "type=class",
        }
    }
}

pub struct Reader {
    settings: Settings,
    mode: Mode,
    run: Option<Run>,
    /// The newest change seen, or where the delta started: the cursor.
    latest: Option<String>,
}

struct Run {
    api: Api,
    pager: Pager<Feed>,
    /// Delta reads only.
    inferred: Option<Inferred>,
}

impl Reader {
    fn start(&mut self) -> Result<Run, SyncError> {
        let api = Api::new(&self.settings)?;
        let (feeds, since, inferred) = match &self.mode {
            Mode::Full => (Feed::ALL_RECORDS.to_vec(), None, None),
            Mode::Delta(cursor) => {
                if shapes::timestamp(cursor).as_deref() != Some(cursor.as_str()) {
                    return Err(SyncError::BadSettings(format!(
                        "the delta cursor {cursor:?} is not a Wonde time (YYYY-MM-DD HH:MM:SS); a full read starts afresh"
                    )));
                }
                self.latest = Some(cursor.clone());
                let feeds = [&Feed::ALL_RECORDS[..], &Feed::ALL_DELETIONS[..]].concat();
                (feeds, Some(cursor.as_str()), Some(Inferred::default()))
            }
        };
        let pages = feeds
            .into_iter()
            .map(|feed| (feed, api.first_page(feed, since)));
        Ok(Run {
            pager: Pager::new(pages),
            api,
            inferred,
        })
    }
}

impl Snapshot for Reader {
    fn next_batch(&mut self) -> Result<Option<Vec<RosterRecord>>, SyncError> {
        if self.run.is_none() {
            self.run = Some(self.start()?);
        }
        let run = self.run.as_mut().expect("started above");
        let mut page_reader = PageReader {
            api: &run.api,
            inferred: run.inferred.as_mut(),
            latest: &mut self.latest,
        };
        if let Some(batch) = run
            .pager
            .next_batch(|feed, url| page_reader.read(*feed, url))?
        {
            return Ok(Some(batch));
        }
        Ok(run.inferred.as_mut().and_then(Inferred::next_batch))
    }

    fn cursor(&self) -> Option<String> {
        self.latest.clone()
    }
}

/// What a delta learnt for inferring removals, then the removals.
#[derive(Default)]
struct Inferred {
    /// Groups' current members; pupils and staff the delta touched.
    memberships: Departures,
    /// Pupils' current contacts; contacts the delta touched.
    relationships: Departures,
    /// Worked out once every feed is read.
    removals: Option<Vec<RosterRecord>>,
}

impl Inferred {
    fn next_batch(&mut self) -> Option<Vec<RosterRecord>> {
        let removals = self.removals.get_or_insert_with(|| {
            let memberships = self.memberships.gone().map(|(group, person)| {
                Removal::Membership(MembershipKey {
                    group: group.into(),
                    person: person.into(),
                })
            });
            let relationships = self.relationships.gone().map(|(student, contact)| {
                Removal::Relationship(RelationshipKey {
                    student: student.into(),
                    contact: contact.into(),
                })
            });
            memberships
                .chain(relationships)
                .map(RosterRecord::Removed)
                .collect()
        });
        if removals.is_empty() {
            return None;
        }
        let keep = removals.len().saturating_sub(REMOVALS_PER_BATCH);
        Some(removals.split_off(keep))
    }
}

/// Turns one page of a feed into records, noting changes for the cursor
/// and, in a delta, for inferred removals.
struct PageReader<'a> {
    api: &'a Api,
    inferred: Option<&'a mut Inferred>,
    latest: &'a mut Option<String>,
}

impl PageReader<'_> {
    fn read(&mut self, feed: Feed, url: &str) -> Result<Page, SyncError> {
        let endpoint = feed.path();
        let mut records = Vec::new();
        let next = match feed {
            Feed::Pupils(enrolment) => {
                let page: List<PersonJson> = self.api.get(url)?;
                for json in &page.data {
                    self.note(endpoint, &json.id, "updated_at", json.updated_at.as_ref())?;
                    let relationships = json.relationships();
                    if let Some(inferred) = self.inferred.as_deref_mut() {
                        inferred.memberships.touch(&json.id);
                        let contacts = relationships.iter().map(|r| r.contact.clone());
                        inferred.relationships.list(&json.id, contacts);
                    }
                    records.push(RosterRecord::Person(json.pupil(enrolment, endpoint)?));
                    records.extend(relationships.into_iter().map(RosterRecord::Relationship));
                }
                page.meta.pagination.next_page()
            }
            Feed::Staff | Feed::Contacts => {
                let role = match feed {
                    Feed::Staff => Role::Staff,
                    _ => Role::Contact,
                };
                let page: List<PersonJson> = self.api.get(url)?;
                for json in &page.data {
                    self.note(endpoint, &json.id, "updated_at", json.updated_at.as_ref())?;
                    if let Some(inferred) = self.inferred.as_deref_mut() {
                        // Staff belong to groups; contacts belong to pupils.
                        match role {
                            Role::Staff => inferred.memberships.touch(&json.id),
                            _ => inferred.relationships.touch(&json.id),
                        }
                    }
                    records.push(RosterRecord::Person(json.person(role, endpoint)?));
                }
                page.meta.pagination.next_page()
            }
            Feed::Classes | Feed::Groups => {
                let source = match feed {
                    Feed::Classes => GroupSource::Classes,
                    _ => GroupSource::Groups,
                };
                let page: List<GroupJson> = self.api.get(url)?;
                for json in &page.data {
                    self.note(endpoint, &json.id, "updated_at", json.updated_at.as_ref())?;
                    let memberships = json.memberships();
                    if let Some(inferred) = self.inferred.as_deref_mut() {
                        let members = memberships.iter().map(|m| m.person.clone());
                        inferred.memberships.list(&json.id, members);
                    }
                    records.push(RosterRecord::Group(json.group(source)));
                    records.extend(memberships.into_iter().map(RosterRecord::Membership));
                }
                page.meta.pagination.next_page()
            }
            Feed::Deletions(deleted) => {
                let page: List<DeletionJson> = self.api.get(url)?;
                for json in page.data.iter().filter(|d| !d.restored()) {
                    self.note(endpoint, &json.id, "deleted_at", json.deleted_at.as_ref())?;
                    records.push(RosterRecord::Removed(self.removed(deleted, &json.id)));
                }
                page.meta.pagination.next_page()
            }
        };
        Ok(Page {
            records,
            next,
            total_pages: None,
        })
    }

    /// The explicit removal of a deleted record; a deleted pupil or class
    /// now has nobody, which the inferred removals act on.
    fn removed(&mut self, deleted: Deleted, id: &str) -> Removal {
        if let Some(inferred) = self.inferred.as_deref_mut() {
            match deleted {
                Deleted::Student => {
                    inferred.memberships.touch(id);
                    inferred.relationships.list(id, []);
                }
                Deleted::Employee => inferred.memberships.touch(id),
                Deleted::Contact => inferred.relationships.touch(id),
                Deleted::Class => inferred.memberships.list(id, []),
            }
        }
        match deleted {
            Deleted::Class => Removal::Group(id.into()),
            _ => Removal::Person(id.into()),
        }
    }

    /// Moves the cursor up to this record's change time.
    fn note(
        &mut self,
        endpoint: &str,
        id: &str,
        field: &str,
        at: Option<&WondeDate>,
    ) -> Result<(), SyncError> {
        let origin = Origin { endpoint, id };
        if let Some(at) = origin.timestamp(field, at)?
            && self.latest.as_ref().is_none_or(|latest| at > *latest)
        {
            *self.latest = Some(at);
        }
        Ok(())
    }
}

export_connector!(Wonde);

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        Settings::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn describes_its_settings_and_capabilities() {
        let info = Wonde::describe();
        assert_eq!(info.provider, "Wonde");
        let names: Vec<_> = info.settings.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, [BASE_URL, SCHOOL_ID, API_TOKEN, PAGE_SIZE]);
        assert_eq!(info.settings[0].kind, SettingKind::BaseUrl);
        assert_eq!(
            info.settings[0].default_value.as_deref(),
            Some("https://api.wonde.com/v1.0")
        );
        assert_eq!(info.settings[2].kind, SettingKind::Secret);
        assert!(info.capabilities.contains(&Capability::DeltaReads));
    }

    #[test]
    fn first_pages_carry_includes_and_an_encoded_updated_after() {
        let api = Api::new(&settings(&[
            (BASE_URL, "https://api.wonde.com/v1.0/"),
            (SCHOOL_ID, "A1930499544"),
            (API_TOKEN, "t"),
        ]))
        .unwrap();
        assert_eq!(
            api.first_page(Feed::Pupils(EnrolmentStatus::Left), None),
            "https://api.wonde.com/v1.0/schools/A1930499544/students/leavers?per_page=200&include=education_details,contact_details,year,registration,contacts"
        );
        assert_eq!(
            api.first_page(
                Feed::Deletions(Deleted::Contact),
                Some("2026-09-01 07:31:00")
            ),
            "https://api.wonde.com/v1.0/schools/A1930499544/deletions?per_page=200&type=contact&updated_after=2026-09-01%2007%3A31%3A00"
        );
    }

    #[test]
    fn settings_errors_name_the_setting() {
        let missing = Api::new(&settings(&[(BASE_URL, "https://api.wonde.com/v1.0")]));
        assert!(matches!(missing, Err(SyncError::BadSettings(m)) if m.contains("`school-id`")));
        let zero = Api::new(&settings(&[
            (BASE_URL, "https://api.wonde.com/v1.0"),
            (SCHOOL_ID, "A1"),
            (API_TOKEN, "t"),
            (PAGE_SIZE, "0"),
        ]));
        assert!(matches!(zero, Err(SyncError::BadSettings(m)) if m.contains("`page-size`")));
    }

    #[test]
    fn a_cursor_that_is_not_a_wonde_time_is_refused_before_any_request() {
        let mut reader = Wonde::snapshot(
            settings(&[
                (BASE_URL, "https://api.wonde.com/v1.0"),
                (SCHOOL_ID, "A1"),
                (API_TOKEN, "t"),
            ]),
            Mode::Delta("2026-09-01T07:31:00Z".into()),
        );
        let Err(SyncError::BadSettings(message)) = reader.next_batch() else {
            panic!("expected bad settings");
        };
        assert!(message.contains("\"2026-09-01T07:31:00Z\""), "{message}");
    }

    #[test]
    fn inferred_removals_cover_departed_members_and_contacts() {
        let mut inferred = Inferred::default();
        inferred.memberships.list("class", ["stays".to_string()]);
        inferred.memberships.touch("stays");
        inferred.memberships.touch("moved");
        inferred.relationships.list("deleted-pupil", []);
        inferred.relationships.touch("deleted-contact");
        let batch = inferred.next_batch().expect("removals");
        assert_eq!(batch.len(), 2);
        assert!(batch.iter().any(|r| matches!(r,
            RosterRecord::Removed(Removal::Membership(k)) if k.group == "class" && k.person == "moved")));
        assert!(batch.iter().any(|r| matches!(r,
            RosterRecord::Removed(Removal::Relationship(k)) if k.student == "deleted-pupil" && k.contact == "deleted-contact")));
        assert!(inferred.next_batch().is_none());
    }
}
