//! Arbor's REST API v2 as this connector uses it: the resources it reads,
//! their paged lists, one record by id, and each resource's changelog.

use std::collections::{BTreeMap, HashMap};

use rostersync_connector_sdk::http::Request;
use rostersync_connector_sdk::{Settings, SyncError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub(crate) const BASE_URL: &str = "base-url";
pub(crate) const USERNAME: &str = "username";
pub(crate) const PASSWORD: &str = "password";

/// A resource the connector reads. The cursor names it by its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Resource {
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
    /// In reading order. Registration forms come first, so a pupil's form
    /// can be named. People and groups come before the rows linking them,
    /// so in a delta a deleted pupil's links are removed with the pupil
    /// before the link rows' own deletions arrive (and are then no news).
    pub(crate) const ALL: [Resource; 9] = [
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

    pub(crate) fn path(self) -> &'static str {
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
    pub(crate) fn list_key(self) -> String {
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

    /// The key Arbor wraps one record in: its entity type in camel case.
    pub(crate) fn record_key(self) -> &'static str {
        match self {
            Self::RegistrationForms => "registrationForm",
            Self::AcademicUnits => "academicUnit",
            Self::Students => "student",
            Self::Staff => "staff",
            Self::Guardians => "guardian",
            Self::StudentGuardianRelationships => "studentGuardianRelationship",
            Self::RegistrationFormMemberships => "registrationFormMembership",
            Self::AcademicUnitEnrolments => "academicUnitEnrolment",
            Self::AcademicUnitLeads => "academicUnitLead",
        }
    }

    /// For a resource whose rows link two records (a membership, a
    /// pupil–guardian relationship): the resources of the first and
    /// second record, in the order the host keys the link by. Arbor's
    /// enrolments name pupils and its leads name staff.
    pub(crate) fn links(self) -> Option<(Resource, Resource)> {
        match self {
            Self::StudentGuardianRelationships => Some((Self::Students, Self::Guardians)),
            Self::RegistrationFormMemberships => Some((Self::RegistrationForms, Self::Students)),
            Self::AcademicUnitEnrolments => Some((Self::AcademicUnits, Self::Students)),
            Self::AcademicUnitLeads => Some((Self::AcademicUnits, Self::Staff)),
            _ => None,
        }
    }
}

/// A reference to another record, as Arbor embeds one.
#[derive(Debug, Deserialize)]
pub(crate) struct Reference {
    pub id: u64,
}

/// One resource's answer from `/{resource}/changelog`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Changelog {
    changes: Vec<Change>,
    /// The revision the changes run to: where the next read starts.
    pub current_revision: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Change {
    change_type: ChangeType,
    to_revision: u64,
    resource: Reference,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub(crate) enum ChangeType {
    Create,
    Update,
    Delete,
}

impl Changelog {
    /// Each changed record's latest change (a later row wins a tie),
    /// deletions first, each part in id order. Deletions go first so that
    /// a link that one row drops and another row takes up ends as taken
    /// up.
    pub(crate) fn latest(self) -> Vec<(u64, ChangeType)> {
        let mut latest: BTreeMap<u64, (u64, ChangeType)> = BTreeMap::new();
        for change in self.changes {
            let seen = latest
                .entry(change.resource.id)
                .or_insert((change.to_revision, change.change_type));
            if change.to_revision >= seen.0 {
                *seen = (change.to_revision, change.change_type);
            }
        }
        let (deletions, others): (Vec<_>, Vec<_>) = latest
            .into_iter()
            .map(|(id, (_, change))| (id, change))
            .partition(|(_, change)| *change == ChangeType::Delete);
        deletions.into_iter().chain(others).collect()
    }
}

/// The school's API root and credential.
pub(crate) struct Api {
    pub base: String,
    user: String,
    password: String,
}

impl Api {
    pub(crate) fn new(settings: &Settings) -> Result<Api, SyncError> {
        Ok(Api {
            base: settings.base_url(BASE_URL)?,
            user: settings.require(USERNAME)?.to_string(),
            password: settings.require(PASSWORD)?.to_string(),
        })
    }

    fn request(&self, url: &str) -> Request {
        Request::get(url).basic(&self.user, &self.password)
    }

    pub(crate) fn list_url(&self, resource: Resource, number: usize, size: usize) -> String {
        format!(
            "{}/{}?page-number={number}&page-size={size}",
            self.base,
            resource.path()
        )
    }

    /// One page of a resource's list, from [`Api::list_url`].
    pub(crate) fn list<T: DeserializeOwned>(
        &self,
        resource: Resource,
        url: &str,
    ) -> Result<Vec<T>, SyncError> {
        let mut body: HashMap<String, Value> = self.request(url).send()?.json()?;
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

    pub(crate) fn record_url(&self, resource: Resource, id: u64) -> String {
        format!("{}/{}/{id}", self.base, resource.path())
    }

    /// One record, from [`Api::record_url`], or `None` if Arbor no longer
    /// has it.
    pub(crate) fn record(&self, resource: Resource, url: &str) -> Result<Option<Value>, SyncError> {
        let request = self.request(url);
        // A record the changelog named may have been deleted since. That
        // 404 is an answer, not a failure: the deletion is later than the
        // revision this read runs to, so the next delta reports it. Any
        // other answer but a success is asked again with the usual retries.
        let response = match request.send_once() {
            Ok(response) if response.status == 404 => return Ok(None),
            Ok(response) if (200..300).contains(&response.status) => response,
            _ => request.send()?,
        };
        let mut body: HashMap<String, Value> = response.json()?;
        let key = resource.record_key();
        body.remove(key).map(Some).ok_or_else(|| {
            SyncError::BadResponse(format!("{url}: the response has no {key:?} record"))
        })
    }

    /// The resource's changes after revision `from`.
    pub(crate) fn changelog(&self, resource: Resource, from: u64) -> Result<Changelog, SyncError> {
        self.request(&self.changelog_url(resource, from, None))
            .send()?
            .json()
    }

    /// The revision the resource's changelog has reached, asked for with
    /// an empty range so no changes come back.
    pub(crate) fn current_revision(&self, resource: Resource) -> Result<u64, SyncError> {
        let log: Changelog = self
            .request(&self.changelog_url(resource, 0, Some(0)))
            .send()?
            .json()?;
        Ok(log.current_revision)
    }

    fn changelog_url(&self, resource: Resource, from: u64, to: Option<u64>) -> String {
        let mut url = format!(
            "{}/{}/changelog?from-revision={from}",
            self.base,
            resource.path()
        );
        if let Some(to) = to {
            url.push_str(&format!("&to-revision={to}"));
        }
        url
    }
}

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
    fn the_cursor_names_a_resource_by_its_path() {
        for resource in Resource::ALL {
            assert_eq!(
                serde_json::to_value(resource).unwrap(),
                resource.path(),
                "{resource:?}"
            );
        }
    }

    #[test]
    fn a_records_latest_change_wins_and_deletions_come_first() {
        let log: Changelog = serde_json::from_value(serde_json::json!({
            "changes": [
                {"changeType": "CREATE", "fromRevision": 4, "toRevision": 5, "resource": {"entityType": "Student", "id": 9, "href": "/rest-v2/students/9"}},
                {"changeType": "UPDATE", "fromRevision": 4, "toRevision": 6, "resource": {"entityType": "Student", "id": 3, "href": "/rest-v2/students/3"}},
                {"changeType": "DELETE", "fromRevision": 4, "toRevision": 7, "resource": {"entityType": "Student", "id": 9, "href": "/rest-v2/students/9"}},
                {"changeType": "DELETE", "fromRevision": 4, "toRevision": 5, "resource": {"entityType": "Student", "id": 1, "href": "/rest-v2/students/1"}},
                {"changeType": "CREATE", "fromRevision": 4, "toRevision": 6, "resource": {"entityType": "Student", "id": 1, "href": "/rest-v2/students/1"}}
            ],
            "currentRevision": 7
        }))
        .unwrap();
        assert_eq!(log.current_revision, 7);
        assert_eq!(
            log.latest(),
            [
                (9, ChangeType::Delete),
                (1, ChangeType::Create),
                (3, ChangeType::Update)
            ]
        );
    }

    #[test]
    fn an_unknown_change_type_does_not_parse() {
        let log = serde_json::from_str::<Changelog>(
            r#"{"changes":[{"changeType":"MERGE","toRevision":2,"resource":{"id":1}}],"currentRevision":2}"#,
        );
        assert!(log.is_err());
    }
}
