//! Arbor's REST API v2 as this connector uses it, in the shapes of
//! Arbor's public PHP SDK (github.com/arbor-education/sis-sdk-php):
//!
//! - A list is `GET /rest-v2/{Plural}?page=N&page-size=M`, the plural by
//!   the SDK's own rule (`src/Arbor/Filter/PluralizeFilter.php`: `Staff` →
//!   `Staffs`), answered as `{"{plural, first letter lower}": [references]}`
//!   (`src/Arbor/Api/Gateway/RestGateway.php` and `PsrRestGateway.php`,
//!   `query`; `tests/Unit/Arbor/Api/Gateway/PsrRestGatewayTest.php` asserts
//!   `/rest-v2/Students`). Paging and filters are `page`, `page-size` and
//!   `filters.{property}.equals`, a record-valued filter naming the
//!   record's `href` (`src/Arbor/Query/Query.php`, `getQueryOptions`). The
//!   SDK shows neither where pages start nor a default size: this
//!   connector asks for page 1 first and for a size, and a short page is
//!   the last.
//! - A reference is `{entityType, href, displayName}` and its id is the
//!   last segment of `href` (`src/Arbor/Model/Hydrator.php`,
//!   `ModelBase.php` `getResourceId`). A record is read from its `href`,
//!   answered as `{"{entityType, first letter lower}": {…}}` (`refresh`,
//!   `retrieve`). An `href` is a path from the host (`/rest-v2/…`): it is
//!   read beside the configured API root, whatever precedes `/rest-v2`.
//! - A change log is `GET /rest-v2/{plural-with-dashes}/changelog
//!   [?from-revision=N]`, answered as `{"changes": [{changedObject,
//!   changeType, fromRevision, toRevision}]}` (`getChanges`,
//!   `src/Arbor/ChangeLog/Change.php`); change types are lower case
//!   (`update` in `PsrRestGatewayTest`), read here in any case. No field
//!   gives the log's current revision: a read resumes from the highest
//!   `toRevision` it has seen.
//!
//! Where the SDK reads a missing list key as an empty list, this connector
//! refuses the answer instead: an empty school is better told apart from a
//! wrong answer.

use std::collections::{BTreeMap, HashMap};

use rostersync_connector_sdk::http::{Request, percent_encode, send_all_once};
use rostersync_connector_sdk::{Settings, SyncError, log};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub(crate) const BASE_URL: &str = "base-url";
pub(crate) const USERNAME: &str = "username";
pub(crate) const PASSWORD: &str = "password";
pub(crate) const PAGE_SIZE: &str = "page-size";

/// A resource the connector lists or follows the change log of. The
/// cursor names it in kebab case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Resource {
    RegistrationForm,
    AcademicUnit,
    EmailAddress,
    SchoolEnrolment,
    AcademicLevelMembership,
    RegistrationFormMembership,
    Person,
    Student,
    Staff,
    Guardian,
    StudentGuardianRelationship,
    AcademicUnitEnrolment,
    AcademicUnitLead,
}

impl Resource {
    /// Every resource whose change log a delta reads, in the order a
    /// delta applies them.
    pub(crate) const LOGGED: [Resource; 13] = [
        Self::RegistrationForm,
        Self::AcademicUnit,
        Self::EmailAddress,
        Self::SchoolEnrolment,
        Self::AcademicLevelMembership,
        Self::RegistrationFormMembership,
        Self::Person,
        Self::Student,
        Self::Staff,
        Self::Guardian,
        Self::StudentGuardianRelationship,
        Self::AcademicUnitEnrolment,
        Self::AcademicUnitLead,
    ];

    /// What a full read lists, in order: groups first, then what a
    /// pupil's record is joined from, then people, then the rows linking
    /// them. A `Person` is read from the person that names it.
    pub(crate) fn listed() -> impl Iterator<Item = Resource> {
        Self::LOGGED.into_iter().filter(|r| *r != Self::Person)
    }

    pub(crate) fn entity_type(self) -> &'static str {
        match self {
            Self::RegistrationForm => "RegistrationForm",
            Self::AcademicUnit => "AcademicUnit",
            Self::EmailAddress => "EmailAddress",
            Self::SchoolEnrolment => "SchoolEnrolment",
            Self::AcademicLevelMembership => "AcademicLevelMembership",
            Self::RegistrationFormMembership => "RegistrationFormMembership",
            Self::Person => "Person",
            Self::Student => "Student",
            Self::Staff => "Staff",
            Self::Guardian => "Guardian",
            Self::StudentGuardianRelationship => "StudentGuardianRelationship",
            Self::AcademicUnitEnrolment => "AcademicUnitEnrolment",
            Self::AcademicUnitLead => "AcademicUnitLead",
        }
    }

    /// The plural by the SDK's `PluralizeFilter`.
    pub(crate) fn plural(self) -> String {
        plural(self.entity_type())
    }

    /// The change-log path segment: the plural with dashes between words,
    /// in lower case (`CamelCaseToDash`, then lower case).
    pub(crate) fn segment(self) -> String {
        let mut out = String::new();
        for (i, c) in self.plural().chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    }

    pub(crate) fn list_key(self) -> String {
        lower_first(&self.plural())
    }

    /// For a resource whose rows link two records: which of the row's
    /// properties name the first and second record the host keys the
    /// link by.
    pub(crate) fn links(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::StudentGuardianRelationship => Some(("student", "guardian")),
            Self::RegistrationFormMembership => Some(("registrationForm", "student")),
            Self::AcademicUnitEnrolment => Some(("academicUnit", "student")),
            Self::AcademicUnitLead => Some(("academicUnit", "staff")),
            _ => None,
        }
    }

    /// For a resource whose rows link two records: the resources of the
    /// first and second.
    pub(crate) fn sides(self) -> Option<(Resource, Resource)> {
        match self {
            Self::StudentGuardianRelationship => Some((Self::Student, Self::Guardian)),
            Self::RegistrationFormMembership => Some((Self::RegistrationForm, Self::Student)),
            Self::AcademicUnitEnrolment => Some((Self::AcademicUnit, Self::Student)),
            Self::AcademicUnitLead => Some((Self::AcademicUnit, Self::Staff)),
            _ => None,
        }
    }

    /// The resource a reference's `entityType` names, among those a link
    /// or an owner can name.
    pub(crate) fn of_type(entity_type: &str) -> Option<Resource> {
        Self::LOGGED
            .into_iter()
            .find(|r| r.entity_type() == entity_type)
    }
}

fn plural(name: &str) -> String {
    if let Some(stem) = name.strip_suffix('s') {
        format!("{stem}ses")
    } else if name.ends_with('y') && !name.ends_with("ay") {
        format!("{}ies", &name[..name.len() - 1])
    } else {
        format!("{name}s")
    }
}

pub(crate) fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A reference to a record, as Arbor names one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Reference {
    #[serde(default)]
    pub entity_type: Option<String>,
    pub href: String,
}

impl Reference {
    /// The record's id: the last segment of its `href`.
    pub(crate) fn id(&self) -> Option<u64> {
        self.href
            .trim_end_matches('/')
            .rsplit('/')
            .next()?
            .parse()
            .ok()
    }

    /// The key its record is wrapped in.
    fn record_key(&self) -> Option<String> {
        self.entity_type.as_deref().map(lower_first)
    }

    /// The reference a record's property holds, if it holds one.
    pub(crate) fn of(row: &Value, property: &str) -> Option<Reference> {
        serde_json::from_value(row.get(property)?.clone()).ok()
    }
}

/// One row of a change log.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Change {
    changed_object: ChangedObject,
    change_type: String,
    to_revision: u64,
}

/// What a change names: a reference, or (as the SDK's own test mocks it,
/// `['id' => 1]`) just an id.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangedObject {
    entity_type: Option<String>,
    href: Option<String>,
    id: Option<u64>,
}

impl ChangedObject {
    fn reference(self, resource: Resource) -> Option<(u64, Reference)> {
        let entity_type = self
            .entity_type
            .or_else(|| Some(resource.entity_type().to_string()));
        let reference = match (self.href, self.id) {
            (Some(href), _) => Reference { entity_type, href },
            (None, Some(id)) => Reference {
                entity_type,
                href: format!("/rest-v2/{}/{id}", resource.segment()),
            },
            (None, None) => return None,
        };
        Some((reference.id()?, reference))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeType {
    Create,
    Update,
    Delete,
}

impl ChangeType {
    fn parse(text: &str) -> Option<ChangeType> {
        match text.to_ascii_lowercase().as_str() {
            "create" => Some(Self::Create),
            "update" => Some(Self::Update),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }
}

/// A resource's change log from one revision on.
#[derive(Debug, Default)]
pub(crate) struct Changelog {
    /// Each changed record's latest change, by id: a later row wins, and
    /// a tie goes to the row read later.
    latest: BTreeMap<u64, (u64, ChangeType, Reference)>,
    /// The highest revision a row runs to.
    pub highest: Option<u64>,
}

impl Changelog {
    fn read(resource: Resource, url: &str, body: &Value) -> Result<Changelog, SyncError> {
        let bad = |what: String| SyncError::BadResponse(format!("{url}: {what}"));
        let rows = match body.get("changes") {
            None => return Err(bad("the response has no \"changes\" list".into())),
            Some(rows) => rows,
        };
        let rows: Vec<Change> = serde_json::from_value(rows.clone())
            .map_err(|e| bad(format!("a change is not what was expected: {e}")))?;
        let mut log = Changelog::default();
        for row in rows {
            let change = ChangeType::parse(&row.change_type)
                .ok_or_else(|| bad(format!("unknown change type {:?}", row.change_type)))?;
            let (id, reference) = row
                .changed_object
                .reference(resource)
                .ok_or_else(|| bad("a changed object names no record".into()))?;
            log.highest = log.highest.max(Some(row.to_revision));
            let seen = log
                .latest
                .entry(id)
                .or_insert((row.to_revision, change, reference.clone()));
            if row.to_revision >= seen.0 {
                *seen = (row.to_revision, change, reference);
            }
        }
        Ok(log)
    }

    /// The deleted ids, then the created or updated records, each part in
    /// id order.
    pub(crate) fn split(self) -> (Vec<u64>, Vec<Reference>) {
        let mut deleted = Vec::new();
        let mut changed = Vec::new();
        for (id, (_, change, reference)) in self.latest {
            match change {
                ChangeType::Delete => deleted.push(id),
                ChangeType::Create | ChangeType::Update => changed.push(reference),
            }
        }
        (deleted, changed)
    }
}

/// The references a list answer holds.
fn references(resource: Resource, url: &str, body: &Value) -> Result<Vec<Reference>, SyncError> {
    let key = resource.list_key();
    let list = body.get(&key).ok_or_else(|| {
        SyncError::BadResponse(format!("{url}: the response has no {key:?} list"))
    })?;
    serde_json::from_value(list.clone()).map_err(|e| {
        SyncError::BadResponse(format!("{url}: a {key} entry is not a reference: {e}"))
    })
}

/// The school's API root and credential.
pub(crate) struct Api {
    /// The configured root, ending in `/rest-v2`.
    pub base: String,
    /// What an `href` (`/rest-v2/…`) is read beside.
    root: String,
    user: String,
    password: String,
    /// Rows asked for per list page.
    pub page_size: usize,
}

impl Api {
    pub(crate) fn new(settings: &Settings) -> Result<Api, SyncError> {
        let base = settings
            .base_url(BASE_URL)?
            .trim_end_matches('/')
            .to_string();
        let root = base.strip_suffix("/rest-v2").unwrap_or(&base).to_string();
        Ok(Api {
            base,
            root,
            user: settings.require(USERNAME)?.to_string(),
            password: settings.require(PASSWORD)?.to_string(),
            page_size: settings.number(PAGE_SIZE, 500)?.max(1) as usize,
        })
    }

    fn request(&self, url: &str) -> Request {
        Request::get(url).basic(&self.user, &self.password)
    }

    /// The URL of a record's `href`.
    pub(crate) fn url_of(&self, href: &str) -> String {
        if href.starts_with("http://") || href.starts_with("https://") {
            href.to_string()
        } else if href.starts_with("/rest-v2/") {
            format!("{}{href}", self.root)
        } else {
            format!("{}/{}", self.base, href.trim_start_matches('/'))
        }
    }

    /// Page `number` of a list, optionally only the rows whose `property`
    /// names the record at `href`.
    pub(crate) fn list_url(
        &self,
        resource: Resource,
        number: usize,
        size: usize,
        filter: Option<(&str, &str)>,
    ) -> String {
        let mut url = format!(
            "{}/{}?page={number}&page-size={size}",
            self.base,
            resource.plural()
        );
        if let Some((property, href)) = filter {
            url.push_str(&format!(
                "&filters.{property}.equals={}",
                percent_encode(href)
            ));
        }
        url
    }

    /// One page of a list: the references it holds.
    pub(crate) fn list(&self, resource: Resource, url: &str) -> Result<Vec<Reference>, SyncError> {
        let body: Value = self.request(url).send()?.json()?;
        references(resource, url, &body)
    }

    /// Every reference of a list filtered on one property, page by page.
    pub(crate) fn list_all(
        &self,
        resource: Resource,
        property: &str,
        href: &str,
        size: usize,
    ) -> Result<Vec<Reference>, SyncError> {
        let mut all = Vec::new();
        for number in 1.. {
            let url = self.list_url(resource, number, size, Some((property, href)));
            let page = self.list(resource, &url)?;
            let last = page.len() < size;
            all.extend(page);
            if last {
                break;
            }
        }
        Ok(all)
    }

    /// Several filtered lists, each `(resource, property, href)`: the
    /// first pages read several at a time, any further page after.
    pub(crate) fn list_many(
        &self,
        queries: &[(Resource, &str, String)],
        size: usize,
    ) -> Result<Vec<Vec<Reference>>, SyncError> {
        let urls: Vec<String> = queries
            .iter()
            .map(|(resource, property, href)| {
                self.list_url(*resource, 1, size, Some((property, href)))
            })
            .collect();
        let requests: Vec<Request> = urls.iter().map(|url| self.request(url)).collect();
        let outcomes = send_all_once(&requests);
        let mut lists = Vec::with_capacity(queries.len());
        for (((resource, property, href), request), outcome) in
            queries.iter().zip(&requests).zip(outcomes)
        {
            let response = match outcome.and_then(|r| r.success()) {
                Ok(response) => response,
                Err(_) => request.send()?,
            };
            let first = references(*resource, request.url(), &response.json()?)?;
            if first.len() < size {
                lists.push(first);
            } else {
                lists.push(self.list_all(*resource, property, href, size)?);
            }
        }
        Ok(lists)
    }

    /// The records the references name, read several at a time, in the
    /// same order; `None` for one Arbor no longer has. A record named in a
    /// list or a change log may have gone since: that 404 is an answer
    /// (the next delta reports the deletion). Any other answer but a
    /// success is asked again with the usual retries.
    pub(crate) fn fetch(&self, references: &[Reference]) -> Result<Vec<Option<Value>>, SyncError> {
        let requests: Vec<Request> = references
            .iter()
            .map(|r| self.request(&self.url_of(&r.href)))
            .collect();
        let outcomes = send_all_once(&requests);
        let mut rows = Vec::with_capacity(references.len());
        for ((reference, request), outcome) in references.iter().zip(&requests).zip(outcomes) {
            let response = match outcome {
                Ok(response) if response.status == 404 => {
                    log::debug(
                        "a record was deleted before it was read",
                        &[("url", request.url())],
                    );
                    rows.push(None);
                    continue;
                }
                Ok(response) if (200..300).contains(&response.status) => response,
                _ => request.send()?,
            };
            let mut body: HashMap<String, Value> = response.json()?;
            let key = reference.record_key().unwrap_or_default();
            let row = body.remove(&key).ok_or_else(|| {
                SyncError::BadResponse(format!(
                    "{}: the response has no {key:?} record",
                    request.url()
                ))
            })?;
            rows.push(Some(row));
        }
        Ok(rows)
    }

    /// The resource's change log after revision `from` (all of it from 0).
    pub(crate) fn changelog(&self, resource: Resource, from: u64) -> Result<Changelog, SyncError> {
        let mut url = format!("{}/{}/changelog", self.base, resource.segment());
        if from > 0 {
            url.push_str(&format!("?from-revision={from}"));
        }
        let body: Value = self.request(&url).send()?.json()?;
        Changelog::read(resource, &url, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_follow_the_sdks_pluralising() {
        assert_eq!(Resource::Student.plural(), "Students");
        assert_eq!(Resource::Staff.plural(), "Staffs");
        assert_eq!(Resource::EmailAddress.plural(), "EmailAddresses");
        assert_eq!(
            Resource::StudentGuardianRelationship.segment(),
            "student-guardian-relationships"
        );
        assert_eq!(
            Resource::AcademicLevelMembership.list_key(),
            "academicLevelMemberships"
        );
    }

    #[test]
    fn an_id_is_the_last_segment_of_the_href() {
        let r = Reference {
            entity_type: Some("Student".into()),
            href: "/rest-v2/students/123".into(),
        };
        assert_eq!(r.id(), Some(123));
        assert_eq!(r.record_key().as_deref(), Some("student"));
    }

    #[test]
    fn a_records_latest_change_wins_and_deletions_come_first() {
        let change = |kind: &str, to: u64, id: u64| {
            json!({"changedObject": {"entityType": "Student", "href": format!("/rest-v2/students/{id}")},
                "changeType": kind, "fromRevision": 4, "toRevision": to})
        };
        let body = json!({"changes": [
            change("create", 5, 9), change("update", 6, 3), change("delete", 7, 9),
            change("delete", 5, 1), change("CREATE", 6, 1)
        ]});
        let log = Changelog::read(Resource::Student, "u", &body).unwrap();
        assert_eq!(log.highest, Some(7));
        let (deleted, changed) = log.split();
        assert_eq!(deleted, [9]);
        let ids: Vec<_> = changed.iter().filter_map(Reference::id).collect();
        assert_eq!(ids, [1, 3]);
    }

    #[test]
    fn an_unknown_change_type_is_a_bad_response() {
        let body = json!({"changes": [{"changedObject": {"id": 1},
            "changeType": "merge", "fromRevision": 1, "toRevision": 2}]});
        assert!(matches!(
            Changelog::read(Resource::Student, "u", &body),
            Err(SyncError::BadResponse(m)) if m.contains("merge")
        ));
    }

    #[test]
    fn hrefs_are_read_beside_the_configured_root() {
        let api = Api::new(&Settings::from_pairs([
            (
                BASE_URL,
                "http://127.0.0.1:9/arbor/school1.uk.arbor.sc/rest-v2",
            ),
            (USERNAME, "u"),
            (PASSWORD, "p"),
        ]))
        .unwrap();
        assert_eq!(
            api.url_of("/rest-v2/students/7"),
            "http://127.0.0.1:9/arbor/school1.uk.arbor.sc/rest-v2/students/7"
        );
        assert_eq!(
            api.list_url(
                Resource::SchoolEnrolment,
                2,
                50,
                Some(("student", "/rest-v2/students/7"))
            ),
            "http://127.0.0.1:9/arbor/school1.uk.arbor.sc/rest-v2/SchoolEnrolments?page=2&page-size=50&filters.student.equals=%2Frest-v2%2Fstudents%2F7"
        );
    }
}
