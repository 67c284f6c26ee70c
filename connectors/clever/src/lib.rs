//! Clever connector: reads the school a Clever Secure Sync token reaches,
//! from the Clever API v3.0, into roster records: pupils on roll, teachers
//! and staff, contacts with their relationships to pupils, and sections as
//! classes and registration groups with their teachers and pupils.
//!
//! A pupil's registration group is the name of the `homeroom/advisory`
//! section that lists them: Clever's user has no such field, so sections
//! are read before users. A full read first notes where the events feed
//! ends, then pages through `/sections` and `/users`. A delta reads
//! `/sections` for the pupils' homerooms only, then replays the events
//! after that point,
//! in order: created and updated users and sections are read whole from
//! the event, deleted ones become explicit removals. Members a section's
//! `previous_attributes` say it lost are removed exactly; beyond that,
//! Clever sends a changed section or contact whole without saying who left,
//! so the remaining departures are inferred from those complete lists
//! ([`Departures`]) and handed over after the events.
//!
//! The cursor is `after:<event id>`, or `beginning` when the feed was empty
//! at the full read. Events are opt-in per district and cover 30 days:
//! where they are not enabled a full read still completes, without a
//! cursor, so every run reads everything.

mod shapes;

use std::collections::{BTreeMap, BTreeSet};

use rostersync_connector_sdk::departures::Departures;
use rostersync_connector_sdk::http::Request;
use rostersync_connector_sdk::*;
use serde::de::DeserializeOwned;

use shapes::{Change, EventJson, List, SchoolJson, SectionJson, UserJson, Verb};

const BASE_URL: &str = "base-url";
const API_TOKEN: &str = "api-token";
const PAGE_SIZE: &str = "page-size";
/// Clever's default is 100 and its ceiling 10,000; 1,000 keeps requests
/// few and batches small.
const DEFAULT_PAGE_SIZE: u32 = 1_000;
/// Inferred removals can be many in a large delta; they go over in batches
/// well under the host's per-batch limit.
const REMOVALS_PER_BATCH: usize = 5_000;

struct Clever;

impl Connector for Clever {
    type Snapshot = Reader;

    fn describe() -> ConnectorInfo {
        ConnectorInfo::new(
            "Clever",
            env!("CARGO_PKG_VERSION"),
            "Pupils, teachers, staff, contacts and sections of one school from the Clever API v3.0.",
        )
        .setting(SettingSpec::base_url(
            BASE_URL,
            "The API root, https://api.clever.com/v3.0.",
            Some("https://api.clever.com/v3.0"),
        ))
        .setting(SettingSpec::secret(
            API_TOKEN,
            "The Secure Sync bearer token for the school.",
        ))
        .setting(SettingSpec::text(
            PAGE_SIZE,
            "Records per page (Clever's `limit`, at most 10000).",
            false,
            Some("1000"),
        ))
        .capability(Capability::DeltaReads)
        .capability(Capability::Contacts)
    }

    /// Reads are not filtered by school, so a token that reaches several
    /// schools would mix them: check refuses it.
    fn check(settings: &Settings) -> Result<SchoolInfo, SyncError> {
        let api = Api::new(settings)?;
        let url = format!("{}/schools?limit=2", api.base);
        let mut schools: List<SchoolJson> = api.get(&url)?;
        match schools.data.len() {
            1 => Ok(schools.data.remove(0).data.info()),
            0 => Err(SyncError::Forbidden(format!(
                "{url}: the token reaches no school"
            ))),
            _ => Err(SyncError::BadSettings(format!(
                "{url}: the token reaches more than one school; a connection reads one, so use a token for that school"
            ))),
        }
    }

    fn snapshot(settings: Settings, mode: Mode) -> Reader {
        Reader {
            settings,
            mode,
            run: None,
            resume: None,
        }
    }
}

struct Api {
    base: String,
    token: String,
    page_size: u32,
}

impl Api {
    fn new(settings: &Settings) -> Result<Api, SyncError> {
        let page_size = settings.number(PAGE_SIZE, DEFAULT_PAGE_SIZE)?;
        if !(1..=10_000).contains(&page_size) {
            return Err(SyncError::BadSettings(format!(
                "the setting `{PAGE_SIZE}` must be between 1 and 10000, not {page_size}"
            )));
        }
        Ok(Api {
            base: settings.base_url(BASE_URL)?,
            token: settings.require(API_TOKEN)?.to_string(),
            page_size,
        })
    }

    fn get<T: DeserializeOwned>(&self, url: &str) -> Result<T, SyncError> {
        Request::get(url).bearer(&self.token).send()?.json()
    }

    fn first_page(&self, path: &str) -> String {
        format!("{}/{path}?limit={}", self.base, self.page_size)
    }

    /// Clever's links are paths from the API root (`/v3.0/users?…`): they
    /// replace the version that ends the base URL, which keeps any prefix
    /// a proxy puts before it.
    fn resolve(&self, link: &str) -> String {
        if link.starts_with("http://") || link.starts_with("https://") {
            return link.to_string();
        }
        let version = link.trim_start_matches('/').split(['/', '?']).next();
        let root = version
            .and_then(|v| self.base.strip_suffix(v))
            .and_then(|root| root.strip_suffix('/'))
            .unwrap_or_else(|| origin(&self.base));
        format!("{root}/{}", link.trim_start_matches('/'))
    }
}

/// `scheme://authority` of a URL.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

/// Where a delta resumes in the events feed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resume {
    Beginning,
    After(String),
}

impl Resume {
    fn parse(cursor: &str) -> Option<Resume> {
        match cursor.strip_prefix("after:") {
            Some(id) if !id.is_empty() => Some(Resume::After(id.to_string())),
            Some(_) => None,
            None => (cursor == "beginning").then_some(Resume::Beginning),
        }
    }

    fn cursor(&self) -> String {
        match self {
            Resume::Beginning => "beginning".into(),
            Resume::After(id) => format!("after:{id}"),
        }
    }

    fn first_page(&self, api: &Api) -> String {
        let first = api.first_page("events");
        match self {
            Resume::Beginning => first,
            Resume::After(id) => format!("{first}&starting_after={id}"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Feed {
    Events,
    Users,
    Sections,
    /// Sections read for their homerooms only (a delta's first pages).
    Homerooms,
}

/// Each pupil's registration group: the name of the first
/// `homeroom/advisory` section listing them.
#[derive(Default)]
struct Homerooms(BTreeMap<String, String>);

impl Homerooms {
    fn note(&mut self, section: &SectionJson) {
        if let (true, Some(name)) = (section.is_homeroom(), section.name()) {
            for student in section.students() {
                self.0
                    .entry(student.clone())
                    .or_insert_with(|| name.clone());
            }
        }
    }

    fn of(&self, pupil: &str) -> Option<String> {
        self.0.get(pupil).cloned()
    }
}

pub struct Reader {
    settings: Settings,
    mode: Mode,
    run: Option<Run>,
    /// After the last event seen: the cursor.
    resume: Option<Resume>,
}

struct Run {
    api: Api,
    pager: Pager<Feed>,
    homerooms: Homerooms,
    /// Delta reads only.
    replay: Option<Replay>,
}

impl Reader {
    fn start(&mut self) -> Result<Run, SyncError> {
        let api = Api::new(&self.settings)?;
        let (resume, pages, replay) = match &self.mode {
            Mode::Full => {
                let pages = vec![
                    (Feed::Events, Resume::Beginning.first_page(&api)),
                    (Feed::Sections, api.first_page("sections")),
                    (Feed::Users, api.first_page("users")),
                ];
                (Resume::Beginning, pages, None)
            }
            Mode::Delta(cursor) => {
                let resume = Resume::parse(cursor).ok_or_else(|| {
                    SyncError::BadSettings(format!(
                        "the delta cursor {cursor:?} is not a Clever events position; a full read starts afresh"
                    ))
                })?;
                let pages = vec![
                    (Feed::Homerooms, api.first_page("sections")),
                    (Feed::Events, resume.first_page(&api)),
                ];
                (resume, pages, Some(Replay::default()))
            }
        };
        self.resume = Some(resume);
        Ok(Run {
            api,
            pager: Pager::new(pages),
            homerooms: Homerooms::default(),
            replay,
        })
    }
}

impl Snapshot for Reader {
    fn next_batch(&mut self) -> Result<Option<Vec<RosterRecord>>, SyncError> {
        if self.run.is_none() {
            self.run = Some(self.start()?);
        }
        let run = self.run.as_mut().expect("started above");
        let (api, replay, resume) = (&run.api, &mut run.replay, &mut self.resume);
        let homerooms = &mut run.homerooms;
        let batch = run.pager.next_batch(|feed, url| match feed {
            Feed::Events => read_events(api, url, replay.as_mut(), homerooms, resume),
            Feed::Users => read_list(api, url, |user| user_records(user, "users", homerooms)),
            Feed::Sections => read_list(api, url, |section| {
                homerooms.note(section);
                Ok(section_records(section))
            }),
            Feed::Homerooms => read_list(api, url, |section| {
                homerooms.note(section);
                Ok(Vec::new())
            }),
        })?;
        match batch {
            Some(batch) => Ok(Some(batch)),
            None => Ok(run.replay.as_mut().and_then(Replay::next_inferred)),
        }
    }

    fn cursor(&self) -> Option<String> {
        self.resume.as_ref().map(Resume::cursor)
    }
}

/// One page of `/users` or `/sections`.
fn read_list<T: DeserializeOwned>(
    api: &Api,
    url: &str,
    mut records: impl FnMut(&T) -> Result<Vec<RosterRecord>, SyncError>,
) -> Result<Page, SyncError> {
    let page: List<T> = api.get(url)?;
    let mut out = Vec::new();
    for item in &page.data {
        out.extend(records(&item.data)?);
    }
    Ok(Page {
        records: out,
        next: page.next_link().map(|link| api.resolve(link)),
        total_pages: None,
    })
}

fn user_records(
    user: &UserJson,
    endpoint: &str,
    homerooms: &Homerooms,
) -> Result<Vec<RosterRecord>, SyncError> {
    let person = user.person(endpoint)?.map(|mut person| {
        if user.is_student() {
            person.registration_group = homerooms.of(&user.id);
        }
        RosterRecord::Person(person)
    });
    let relationships = user.relationships().into_iter();
    Ok(person
        .into_iter()
        .chain(relationships.map(RosterRecord::Relationship))
        .collect())
}

fn section_records(section: &SectionJson) -> Vec<RosterRecord> {
    let memberships = section.memberships().into_iter();
    std::iter::once(RosterRecord::Group(section.group()))
        .chain(memberships.map(RosterRecord::Membership))
        .collect()
}

/// One page of events. A full read only notes where the feed ends; a
/// delta replays each event.
fn read_events(
    api: &Api,
    url: &str,
    mut replay: Option<&mut Replay>,
    homerooms: &Homerooms,
    resume: &mut Option<Resume>,
) -> Result<Page, SyncError> {
    let page: List<EventJson> = match api.get(url) {
        Err(SyncError::Forbidden(message)) if replay.is_none() => {
            log::warn(
                "Clever events are not enabled for this district: the read goes on without a cursor, so the next one reads everything again",
                &[("error", &message)],
            );
            *resume = None;
            return Ok(Page {
                records: Vec::new(),
                next: None,
                total_pages: None,
            });
        }
        other => other?,
    };
    let mut records = Vec::new();
    for item in &page.data {
        if let Some(replay) = replay.as_deref_mut() {
            records.extend(replay.apply(item.data.change()?, homerooms)?);
        }
        *resume = Some(Resume::After(item.data.id.clone()));
    }
    Ok(Page {
        records,
        next: page.next_link().map(|link| api.resolve(link)),
        total_pages: None,
    })
}

/// A delta's replay of events, and what it learnt for inferring removals.
#[derive(Default)]
struct Replay {
    /// Sections' current members; users the events touched.
    memberships: Departures,
    /// Contacts' current pupils; users the events touched.
    relationships: Departures,
    /// (section, member) departures the events stated, so none is
    /// inferred again.
    stated: BTreeSet<(String, String)>,
    /// Worked out once every event is replayed, handed over in batches.
    inferred: Option<std::vec::IntoIter<RosterRecord>>,
}

impl Replay {
    fn apply(
        &mut self,
        change: Change,
        homerooms: &Homerooms,
    ) -> Result<Vec<RosterRecord>, SyncError> {
        let mut records = Vec::new();
        match change {
            Change::User(verb, user) => {
                self.memberships.touch(&user.id);
                self.relationships.touch(&user.id);
                let relationships = user.relationships();
                if verb == Verb::Deleted {
                    // A deleted contact has nobody; one it still names is removed outright.
                    self.relationships.list(&user.id, []);
                    records.push(RosterRecord::Removed(Removal::Person(user.id.clone())));
                    records.extend(relationships.iter().map(|r| {
                        RosterRecord::Removed(Removal::Relationship(RelationshipKey {
                            student: r.student.clone(),
                            contact: r.contact.clone(),
                        }))
                    }));
                } else {
                    if user.is_contact() {
                        let students = relationships.iter().map(|r| r.student.clone());
                        self.relationships.list(&user.id, students);
                    }
                    records.extend(user_records(&user, "events", homerooms)?);
                }
            }
            Change::Section(verb, section, previous) => {
                let memberships = section.memberships();
                let left = |person: &String| {
                    RosterRecord::Removed(Removal::Membership(MembershipKey {
                        group: section.id.clone(),
                        person: person.clone(),
                    }))
                };
                if verb == Verb::Deleted {
                    self.memberships.list(&section.id, []);
                    records.push(RosterRecord::Removed(Removal::Group(section.id.clone())));
                    records.extend(memberships.iter().map(|m| left(&m.person)));
                } else {
                    let members = memberships.iter().map(|m| m.person.clone());
                    self.memberships.list(&section.id, members);
                    for person in previous.departed(&section) {
                        self.stated.insert((section.id.clone(), person.clone()));
                        records.push(left(person));
                    }
                    records.extend(section_records(&section));
                }
            }
            Change::Other => {}
        }
        Ok(records)
    }

    fn next_inferred(&mut self) -> Option<Vec<RosterRecord>> {
        let inferred = self.inferred.get_or_insert_with(|| {
            let left_sections = self
                .memberships
                .gone()
                .filter(|(section, user)| {
                    !self
                        .stated
                        .contains(&(section.to_string(), user.to_string()))
                })
                .map(|(section, user)| {
                    Removal::Membership(MembershipKey {
                        group: section.into(),
                        person: user.into(),
                    })
                });
            let lost_pupils = self.relationships.gone().map(|(contact, student)| {
                Removal::Relationship(RelationshipKey {
                    student: student.into(),
                    contact: contact.into(),
                })
            });
            let all: Vec<RosterRecord> = left_sections
                .chain(lost_pupils)
                .map(RosterRecord::Removed)
                .collect();
            all.into_iter()
        });
        let batch: Vec<RosterRecord> = inferred.by_ref().take(REMOVALS_PER_BATCH).collect();
        (!batch.is_empty()).then_some(batch)
    }
}

export_connector!(Clever);

#[cfg(test)]
mod tests {
    use super::*;

    fn api(base: &str) -> Api {
        Api::new(&Settings::from_pairs([(BASE_URL, base), (API_TOKEN, "t")])).unwrap()
    }

    #[test]
    fn describes_its_settings_and_capabilities() {
        let info = Clever::describe();
        assert_eq!(info.provider, "Clever");
        let names: Vec<_> = info.settings.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, [BASE_URL, API_TOKEN, PAGE_SIZE]);
        assert_eq!(
            info.settings[0].default_value.as_deref(),
            Some("https://api.clever.com/v3.0")
        );
        assert_eq!(info.settings[1].kind, SettingKind::Secret);
        assert!(info.capabilities.contains(&Capability::DeltaReads));
    }

    #[test]
    fn links_resolve_against_the_api_root() {
        let link = "/v3.0/users?limit=2&starting_after=5a01";
        assert_eq!(
            api("https://api.clever.com/v3.0").resolve(link),
            "https://api.clever.com/v3.0/users?limit=2&starting_after=5a01"
        );
        assert_eq!(
            api("http://127.0.0.1:9/clever/v3.0/").resolve(link),
            "http://127.0.0.1:9/clever/v3.0/users?limit=2&starting_after=5a01"
        );
        assert_eq!(
            api("https://proxy.example/clever").resolve(link),
            "https://proxy.example/v3.0/users?limit=2&starting_after=5a01"
        );
        assert_eq!(
            api("https://api.clever.com/v3.0").resolve("https://elsewhere/v3.0/x"),
            "https://elsewhere/v3.0/x"
        );
    }

    #[test]
    fn cursors_name_a_place_in_the_events_feed() {
        for resume in [Resume::Beginning, Resume::After("5e0000000002".into())] {
            assert_eq!(Resume::parse(&resume.cursor()), Some(resume));
        }
        for bad in ["", "after:", "2026-09-01", "5e0000000002"] {
            assert_eq!(Resume::parse(bad), None, "{bad:?}");
        }
        let api = api("https://api.clever.com/v3.0");
        assert_eq!(
            Resume::After("5e02".into()).first_page(&api),
            "https://api.clever.com/v3.0/events?limit=1000&starting_after=5e02"
        );
    }

    #[test]
    fn a_page_size_out_of_range_is_a_settings_error() {
        let settings = Settings::from_pairs([
            (BASE_URL, "https://api.clever.com/v3.0"),
            (API_TOKEN, "t"),
            (PAGE_SIZE, "20000"),
        ]);
        assert!(
            matches!(Api::new(&settings), Err(SyncError::BadSettings(m)) if m.contains("`page-size`"))
        );
    }

    fn event(json: &str) -> Change {
        serde_json::from_str::<EventJson>(json)
            .unwrap()
            .change()
            .unwrap()
    }

    #[test]
    fn a_replay_removes_a_deleted_pupil_its_sections_and_its_contacts() {
        let mut replay = Replay::default();
        let mut records = Vec::new();
        for json in [
            r#"{"id": "e1", "type": "users.deleted", "data": {"object": {"id": "gone",
                "roles": {"student": {"sis_id": "1"}}}}}"#,
            r#"{"id": "e2", "type": "users.deleted", "data": {"object": {"id": "mum",
                "roles": {"contact": {"student_relationships": []}}}}}"#,
            r#"{"id": "e3", "type": "sections.updated", "data": {"object": {"id": "maths",
                "teachers": ["sir"], "students": ["stays"]}}, "previous_attributes": {}}"#,
            r#"{"id": "e4", "type": "users.updated", "data": {"object": {"id": "moved",
                "roles": {"student": {"sis_id": "2"}}}}}"#,
        ] {
            records.extend(replay.apply(event(json), &Homerooms::default()).unwrap());
        }
        assert!(matches!(&records[0], RosterRecord::Removed(Removal::Person(id)) if id == "gone"));
        assert!(matches!(&records[1], RosterRecord::Removed(Removal::Person(id)) if id == "mum"));
        assert!(matches!(&records[2], RosterRecord::Group(g) if g.id == "maths"));
        let inferred = replay.next_inferred().expect("inferred removals");
        let has = |wanted: &dyn Fn(&Removal) -> bool| {
            inferred
                .iter()
                .any(|r| matches!(r, RosterRecord::Removed(removal) if wanted(removal)))
        };
        assert!(has(
            &|r| matches!(r, Removal::Membership(k) if k.group == "maths" && k.person == "gone")
        ));
        assert!(has(
            &|r| matches!(r, Removal::Membership(k) if k.group == "maths" && k.person == "moved")
        ));
        assert!(has(
            &|r| matches!(r, Removal::Relationship(k) if k.student == "gone" && k.contact == "mum")
        ));
        assert!(!has(
            &|r| matches!(r, Removal::Membership(k) if k.person == "stays" || k.person == "sir")
        ));
        assert!(replay.next_inferred().is_none());
    }
}
