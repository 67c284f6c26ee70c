//! What a delta read carries from one run to the next: for each resource,
//! the highest change-log revision read (Arbor's change log gives no
//! current revision: `getChanges` in arbor-education/sis-sdk-php's
//! `src/Arbor/Api/Gateway/RestGateway.php`), and the link rows
//! (memberships and pupil–guardian relationships) as the host keys them.
//!
//! A change-log `delete` names only the deleted row, and Arbor no longer
//! serves it, so nothing says which (group, person) or (student, guardian)
//! the host knows it by. The cursor remembers that from when the row was
//! last read. It is JSON with a version, e.g.
//!
//! ```json
//! {"version":2,"school":"https://api.uk.arbor.sc/rest-v2",
//!  "revisions":{"student":42,…},
//!  "links":{"academic-unit-enrolment":{"12000345":["12","345"]},…}}
//! ```

use std::collections::BTreeMap;

use rostersync_connector_sdk::{MembershipKey, RelationshipKey, Removal, RosterRecord, SyncError};
use serde::{Deserialize, Serialize};

use crate::api::Resource;

/// The cursor format this connector writes and reads.
pub(crate) const VERSION: u32 = 2;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Cursor {
    version: u32,
    /// The API root read, so a cursor is never resumed against another
    /// school's changelog.
    school: String,
    /// Per resource, the revision its changelog was read up to.
    revisions: BTreeMap<Resource, u64>,
    pub links: Links,
}

/// Just the version, read first so an older or newer cursor is named as
/// such rather than as unreadable.
#[derive(Deserialize)]
struct Versioned {
    version: u32,
}

impl Cursor {
    /// An empty cursor for a full read of `school`.
    pub(crate) fn new(school: &str) -> Cursor {
        Cursor {
            version: VERSION,
            school: school.to_string(),
            revisions: BTreeMap::new(),
            links: Links::default(),
        }
    }

    /// A cursor this connector wrote for `school`, with a revision for
    /// every resource.
    pub(crate) fn parse(text: &str, school: &str) -> Result<Cursor, SyncError> {
        let unreadable = |e: serde_json::Error| {
            SyncError::BadSettings(format!(
                "the delta cursor was not written by this connector ({e}); run a full read"
            ))
        };
        let Versioned { version } = serde_json::from_str(text).map_err(unreadable)?;
        if version != VERSION {
            return Err(SyncError::BadSettings(format!(
                "the delta cursor has format version {version}, but this connector reads version {VERSION}; run a full read"
            )));
        }
        let cursor: Cursor = serde_json::from_str(text).map_err(unreadable)?;
        if cursor.school != school {
            return Err(SyncError::BadSettings(format!(
                "the delta cursor was taken from {}, but the connection reads {school}; run a full read",
                cursor.school
            )));
        }
        if let Some(missing) = Resource::LOGGED
            .iter()
            .find(|resource| !cursor.revisions.contains_key(resource))
        {
            return Err(SyncError::BadSettings(format!(
                "the delta cursor has no revision for {}; run a full read",
                missing.segment()
            )));
        }
        Ok(cursor)
    }

    pub(crate) fn to_text(&self) -> String {
        serde_json::to_string(self).expect("a cursor serialises")
    }

    /// Where the resource's changelog is read from; 0 if never read.
    pub(crate) fn revision(&self, resource: Resource) -> u64 {
        self.revisions.get(&resource).copied().unwrap_or(0)
    }

    pub(crate) fn set_revision(&mut self, resource: Resource, revision: u64) {
        self.revisions.insert(resource, revision);
    }
}

/// The two ids the host keys a link by: (group, person) for a membership,
/// (student, guardian) for a relationship.
pub(crate) type Pair = (String, String);

/// Link rows by resource and Arbor row id.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub(crate) struct Links(BTreeMap<Resource, BTreeMap<u64, Pair>>);

impl Links {
    /// Remembers what a row of a link resource links now (`None`: nothing,
    /// as when the row is deleted). Returns the removal of what it linked
    /// before, if that was something else.
    pub(crate) fn set(
        &mut self,
        resource: Resource,
        row: u64,
        now: Option<Pair>,
    ) -> Option<RosterRecord> {
        let rows = self.0.entry(resource).or_default();
        let before = match now {
            Some(pair) => rows.insert(row, pair.clone()).filter(|old| *old != pair),
            None => rows.remove(&row),
        };
        before.map(|pair| removal(resource, pair))
    }

    /// What a row of a link resource linked when last read.
    pub(crate) fn get(&self, resource: Resource, row: u64) -> Option<&Pair> {
        self.0.get(&resource)?.get(&row)
    }

    /// A deleted person or group: forgets, and returns the removals of,
    /// every link naming it.
    pub(crate) fn forget(&mut self, deleted: Resource, id: &str) -> Vec<RosterRecord> {
        let mut removals = Vec::new();
        for (&resource, rows) in &mut self.0 {
            let Some((first, second)) = resource.sides() else {
                continue;
            };
            rows.retain(|_, (a, b)| {
                let names = (first == deleted && a == id) || (second == deleted && b == id);
                if names {
                    removals.push(removal(resource, (a.clone(), b.clone())));
                }
                !names
            });
        }
        removals
    }
}

/// The pair a membership or relationship record is keyed by.
pub(crate) fn pair(record: &RosterRecord) -> Option<Pair> {
    match record {
        RosterRecord::Membership(m) => Some((m.group.clone(), m.person.clone())),
        RosterRecord::Relationship(r) => Some((r.student.clone(), r.contact.clone())),
        _ => None,
    }
}

fn removal(resource: Resource, (first, second): Pair) -> RosterRecord {
    RosterRecord::Removed(match resource {
        Resource::StudentGuardianRelationship => Removal::Relationship(RelationshipKey {
            student: first,
            contact: second,
        }),
        _ => Removal::Membership(MembershipKey {
            group: first,
            person: second,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHOOL: &str = "https://school1.uk.arbor.sc/rest-v2";

    fn pair(a: &str, b: &str) -> Option<Pair> {
        Some((a.into(), b.into()))
    }

    fn named(records: &[RosterRecord]) -> Vec<String> {
        records
            .iter()
            .map(|record| match record {
                RosterRecord::Removed(Removal::Membership(k)) => {
                    format!("membership {}/{}", k.group, k.person)
                }
                RosterRecord::Removed(Removal::Relationship(k)) => {
                    format!("relationship {}/{}", k.student, k.contact)
                }
                other => panic!("not a link removal: {other:?}"),
            })
            .collect()
    }

    fn full_cursor() -> Cursor {
        let mut cursor = Cursor::new(SCHOOL);
        for (n, resource) in Resource::LOGGED.into_iter().enumerate() {
            cursor.set_revision(resource, 40 + n as u64);
        }
        cursor
    }

    #[test]
    fn a_row_that_changes_or_goes_removes_what_it_linked() {
        let mut links = Links::default();
        let enrolments = Resource::AcademicUnitEnrolment;
        assert!(links.set(enrolments, 1, pair("maths", "ann")).is_none());
        assert!(
            links.set(enrolments, 1, pair("maths", "ann")).is_none(),
            "the same link again is no news"
        );
        let moved = links.set(enrolments, 1, pair("art", "ann"));
        assert_eq!(named(&[moved.unwrap()]), ["membership maths/ann"]);
        let gone = links.set(enrolments, 1, None);
        assert_eq!(named(&[gone.unwrap()]), ["membership art/ann"]);
        assert!(
            links.set(enrolments, 1, None).is_none(),
            "an unknown row is no news"
        );
    }

    #[test]
    fn a_deleted_pupil_takes_their_memberships_and_guardian_links() {
        let mut links = Links::default();
        links.set(Resource::RegistrationFormMembership, 1, pair("7R", "ann"));
        links.set(Resource::AcademicUnitEnrolment, 2, pair("maths", "ann"));
        links.set(Resource::AcademicUnitEnrolment, 3, pair("maths", "bob"));
        links.set(Resource::AcademicUnitLead, 4, pair("maths", "ann"));
        links.set(Resource::StudentGuardianRelationship, 5, pair("ann", "mum"));
        assert_eq!(
            named(&links.forget(Resource::Student, "ann")),
            [
                "membership 7R/ann",
                "relationship ann/mum",
                "membership maths/ann"
            ],
            "a lead named \"ann\" is a member of staff, not the pupil"
        );
        assert!(links.forget(Resource::Student, "ann").is_empty());
        assert_eq!(
            named(&links.forget(Resource::AcademicUnit, "maths")),
            ["membership maths/bob", "membership maths/ann"]
        );
    }

    #[test]
    fn the_cursor_round_trips() {
        let mut cursor = full_cursor();
        cursor.links.set(
            Resource::AcademicUnitEnrolment,
            12_000_345,
            pair("12", "345"),
        );
        let text = cursor.to_text();
        assert!(
            text.contains(r#""academic-unit-enrolment":{"12000345":["12","345"]}"#),
            "{text}"
        );
        assert_eq!(Cursor::parse(&text, SCHOOL).unwrap(), cursor);
    }

    #[test]
    fn a_foreign_old_or_partial_cursor_is_refused() {
        let refused = |text: &str| match Cursor::parse(text, SCHOOL) {
            Err(SyncError::BadSettings(message)) => {
                assert!(message.ends_with("run a full read"), "{message}");
                message
            }
            other => panic!("expected bad settings, got {other:?}"),
        };
        assert!(refused("2026-09-01 07:31:00").contains("not written by this connector"));
        assert!(refused(r#"{"revision":42}"#).contains("not written by this connector"));
        assert!(refused(r#"{"version":1,"revision":42}"#).contains("format version 1"));
        let mut other = full_cursor();
        other.school = "https://school2.uk.arbor.sc/rest-v2".into();
        assert!(refused(&other.to_text()).contains("taken from https://school2"));
        let mut partial = full_cursor();
        partial.revisions.remove(&Resource::AcademicUnitLead);
        assert!(refused(&partial.to_text()).contains("no revision for academic-unit-leads"));
    }
}
