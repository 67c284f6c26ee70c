//! What a delta read carries from one run to the next.
//!
//! An Xporter changeset returns the rows that changed and the ids that were
//! deleted, but a changed group comes with only its current member ids and
//! a deleted pupil with only its id: nothing names the memberships or
//! contact links that went. So the cursor remembers every group's members
//! and every contact's pupils as last read, and a delta read compares the
//! changes with them to report those removals explicitly.

use std::collections::{BTreeMap, BTreeSet};

use rostersync_connector_sdk::{MembershipKey, RelationshipKey, Removal, RosterRecord, SyncError};
use serde::{Deserialize, Serialize};

use crate::rows::Members;

/// The cursor a snapshot hands back.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// The establishment read, so a cursor is never resumed against
    /// another school's changesets.
    pub estab: String,
    /// Per endpoint, the `NextChangedRows` token the next delta starts from.
    pub changed_rows: BTreeMap<String, String>,
    pub links: Links,
}

impl Cursor {
    pub(crate) fn parse(text: &str) -> Result<Cursor, SyncError> {
        serde_json::from_str(text).map_err(|e| {
            SyncError::BadSettings(format!(
                "the delta cursor was not written by this connector ({e}); run a full read"
            ))
        })
    }

    pub(crate) fn to_text(&self) -> String {
        serde_json::to_string(self).expect("a cursor serialises")
    }
}

/// Group members and contacts' pupils, by Xporter id.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Links {
    groups: BTreeMap<String, Members>,
    contacts: BTreeMap<String, BTreeSet<String>>,
}

impl Links {
    /// Remembers a group's members; returns removals for the memberships
    /// it had before and no longer has.
    pub(crate) fn set_group(&mut self, group: &str, members: Members) -> Vec<RosterRecord> {
        let removals = match self.groups.get(group) {
            Some(before) => before
                .students
                .difference(&members.students)
                .chain(before.staff.difference(&members.staff))
                .map(|person| membership_removal(group, person))
                .collect(),
            None => Vec::new(),
        };
        self.groups.insert(group.to_string(), members);
        removals
    }

    /// Remembers a contact's pupils; returns removals for the links it had
    /// before and no longer has.
    pub(crate) fn set_contact(
        &mut self,
        contact: &str,
        students: BTreeSet<String>,
    ) -> Vec<RosterRecord> {
        let removals = match self.contacts.get(contact) {
            Some(before) => before
                .difference(&students)
                .map(|student| relationship_removal(student, contact))
                .collect(),
            None => Vec::new(),
        };
        self.contacts.insert(contact.to_string(), students);
        removals
    }

    /// A deleted group: it and its memberships go.
    pub(crate) fn remove_group(&mut self, group: &str) -> Vec<RosterRecord> {
        let mut removals = vec![RosterRecord::Removed(Removal::Group(group.into()))];
        if let Some(members) = self.groups.remove(group) {
            removals.extend(
                members
                    .students
                    .iter()
                    .chain(&members.staff)
                    .map(|person| membership_removal(group, person)),
            );
        }
        removals
    }

    /// A deleted pupil: they, their memberships and their contact links go.
    pub(crate) fn remove_student(&mut self, student: &str) -> Vec<RosterRecord> {
        let mut removals = vec![RosterRecord::Removed(Removal::Person(student.into()))];
        for (group, members) in &mut self.groups {
            if members.students.remove(student) {
                removals.push(membership_removal(group, student));
            }
        }
        for (contact, students) in &mut self.contacts {
            if students.remove(student) {
                removals.push(relationship_removal(student, contact));
            }
        }
        removals
    }

    /// A deleted member of staff: they and their memberships go.
    pub(crate) fn remove_staff(&mut self, staff: &str) -> Vec<RosterRecord> {
        let mut removals = vec![RosterRecord::Removed(Removal::Person(staff.into()))];
        for (group, members) in &mut self.groups {
            if members.staff.remove(staff) {
                removals.push(membership_removal(group, staff));
            }
        }
        removals
    }

    /// A deleted contact: they and their links to pupils go.
    pub(crate) fn remove_contact(&mut self, contact: &str) -> Vec<RosterRecord> {
        let mut removals = vec![RosterRecord::Removed(Removal::Person(contact.into()))];
        if let Some(students) = self.contacts.remove(contact) {
            removals.extend(
                students
                    .iter()
                    .map(|student| relationship_removal(student, contact)),
            );
        }
        removals
    }
}

fn membership_removal(group: &str, person: &str) -> RosterRecord {
    RosterRecord::Removed(Removal::Membership(MembershipKey {
        group: group.into(),
        person: person.into(),
    }))
}

fn relationship_removal(student: &str, contact: &str) -> RosterRecord {
    RosterRecord::Removed(Removal::Relationship(RelationshipKey {
        student: student.into(),
        contact: contact.into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|id| id.to_string()).collect()
    }

    fn members(students: &[&str], staff: &[&str]) -> Members {
        Members {
            students: ids(students),
            staff: ids(staff),
        }
    }

    fn named(records: &[RosterRecord]) -> Vec<String> {
        records
            .iter()
            .map(|record| match record {
                RosterRecord::Removed(Removal::Person(id)) => format!("person {id}"),
                RosterRecord::Removed(Removal::Group(id)) => format!("group {id}"),
                RosterRecord::Removed(Removal::Membership(k)) => {
                    format!("membership {}/{}", k.group, k.person)
                }
                RosterRecord::Removed(Removal::Relationship(k)) => {
                    format!("relationship {}/{}", k.student, k.contact)
                }
                other => panic!("not a removal: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_group_read_again_names_the_members_it_lost() {
        let mut links = Links::default();
        assert!(
            links
                .set_group("G", members(&["1", "2"], &["T"]))
                .is_empty()
        );
        let removals = links.set_group("G", members(&["2", "3"], &[]));
        assert_eq!(named(&removals), ["membership G/1", "membership G/T"]);
    }

    #[test]
    fn a_deleted_pupil_takes_their_memberships_and_contact_links() {
        let mut links = Links::default();
        links.set_group("G1", members(&["1", "2"], &[]));
        links.set_group("G2", members(&["2"], &[]));
        links.set_contact("C", ids(&["1", "2"]));
        assert_eq!(
            named(&links.remove_student("2")),
            [
                "person 2",
                "membership G1/2",
                "membership G2/2",
                "relationship 2/C"
            ]
        );
        assert!(
            links.set_group("G1", members(&["1"], &[])).is_empty(),
            "already gone"
        );
        assert_eq!(
            named(&links.remove_contact("C")),
            ["person C", "relationship 1/C"]
        );
        assert_eq!(named(&links.remove_group("G2")), ["group G2"]);
    }

    #[test]
    fn the_cursor_round_trips_and_refuses_foreign_text() {
        let mut cursor = Cursor {
            estab: "3804000".into(),
            changed_rows: BTreeMap::from([("Students".into(), "00ff".into())]),
            links: Links::default(),
        };
        cursor.links.set_group("G", members(&["1"], &["T"]));
        cursor.links.set_contact("C", ids(&["1"]));
        assert_eq!(Cursor::parse(&cursor.to_text()).unwrap(), cursor);
        assert!(matches!(
            Cursor::parse("2026-09-01T07:30:00Z"),
            Err(SyncError::BadSettings(m)) if m.contains("run a full read")
        ));
    }
}
