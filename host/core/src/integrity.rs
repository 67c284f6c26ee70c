//! Referential integrity: a membership or relationship is stored only when
//! both of its ends are (stored before, or arriving valid in the same
//! run). One that names someone validation left out, or something the
//! source never sent, becomes an issue naming both ends, never a row that
//! points at nobody; a stored one whose end goes (removed, or left over
//! from before this rule) is removed with it.

use std::collections::{HashMap, HashSet};

use rostersync_model::{Record, Role};

use crate::diff::{ChangeSet, PriorHashes};
use crate::entity::{EntityKey, EntityKind, identity, split_compound};
use crate::policy::Rule;
use crate::validate::{Issue, person_name};

/// What is known about the ends a link may name. It owns what it takes
/// from the change set, which is filtered while it is consulted.
struct Ends<'a> {
    prior: &'a PriorHashes,
    removed: HashSet<(EntityKind, String)>,
    /// People and groups this run creates or updates.
    arriving: HashSet<(EntityKind, String)>,
    /// Names of the people and groups this run read, valid or not.
    names: HashMap<(EntityKind, String), String>,
    /// Why validation left an end out, by its id.
    left_out: HashMap<&'a str, &'a str>,
}

impl<'a> Ends<'a> {
    fn new(changes: &ChangeSet, prior: &'a PriorHashes, issues: &'a [Issue]) -> Self {
        let mut ends = Ends {
            prior,
            removed: changes.removals.iter().cloned().collect(),
            arriving: HashSet::new(),
            names: HashMap::new(),
            left_out: issues
                .iter()
                .filter(|i| i.rule != Rule::ReferentialIntegrity)
                .map(|i| (i.source_id.as_str(), i.message.as_str()))
                .collect(),
        };
        for issue in issues {
            let kind = if issue.role.is_some() {
                EntityKind::Person
            } else {
                EntityKind::Group
            };
            ends.names
                .insert((kind, issue.source_id.clone()), issue.entity_name.clone());
        }
        let records = changes
            .creates
            .iter()
            .map(|(record, _)| record)
            .chain(changes.updates.iter().map(|u| &u.record));
        for record in records {
            let (kind, name) = match record {
                Record::Person(p) => (EntityKind::Person, Some(person_name(p))),
                Record::Group(g) => (EntityKind::Group, g.name.clone()),
                _ => continue,
            };
            let (_, id) = identity(record).expect("people and groups have an identity");
            if let Some(name) = name {
                ends.names.insert((kind, id.clone()), name);
            }
            ends.arriving.insert((kind, id));
        }
        ends
    }

    fn present(&self, kind: EntityKind, id: &str) -> bool {
        let key = (kind, id.to_string());
        self.arriving.contains(&key)
            || (self.prior.get(kind, id).is_some() && !self.removed.contains(&key))
    }

    /// "Ana Smith (S1)", or the id alone when the run did not read a name.
    fn named(&self, kind: EntityKind, id: &str) -> String {
        match self
            .names
            .get(&(kind, id.to_string()))
            .filter(|n| !n.is_empty())
        {
            Some(name) => format!("{name} ({id})"),
            None => id.to_string(),
        }
    }

    /// Why an end that is not present is missing.
    fn why_missing(&self, what: &str, kind: EntityKind, id: &str) -> String {
        match self.left_out.get(id) {
            Some(problem) => format!(
                "the {what} {} was left out ({problem})",
                self.named(kind, id)
            ),
            None => format!(
                "the {what} {} is not stored and the source did not send it",
                self.named(kind, id)
            ),
        }
    }
}

/// The two ends a membership or relationship key names, each with its
/// kind and how an issue calls it, in the order the key holds them.
fn ends_of(kind: EntityKind, key: &str) -> Option<[(EntityKind, &'static str, &str); 2]> {
    let (a, b) = split_compound(key)?;
    match kind {
        EntityKind::Membership => Some([
            (EntityKind::Group, "group", a),
            (EntityKind::Person, "member", b),
        ]),
        EntityKind::Relationship => Some([
            (EntityKind::Person, "pupil", a),
            (EntityKind::Person, "contact", b),
        ]),
        _ => None,
    }
}

/// A key as an issue shows it: its ends joined by " / ".
pub fn shown_key(key: &str) -> String {
    match split_compound(key) {
        Some((a, b)) => format!("{a} / {b}"),
        None => key.to_string(),
    }
}

/// `changes` without the memberships and relationships whose ends would
/// not be stored after it, with removals for stored ones whose ends are
/// gone, and an issue for each link left out. `issues` are the run's
/// validation issues, for the names and problems of ends left out.
pub fn check(
    mut changes: ChangeSet,
    prior: &PriorHashes,
    issues: &[Issue],
) -> (ChangeSet, Vec<Issue>) {
    let ends = Ends::new(&changes, prior, issues);
    let mut found = Vec::new();
    let mut dangling = |kind: EntityKind, key: &str| -> bool {
        let Some(pair) = ends_of(kind, key) else {
            return false;
        };
        let missing: Vec<String> = pair
            .iter()
            .filter(|(end, _, id)| !ends.present(*end, id))
            .map(|(end, what, id)| ends.why_missing(what, *end, id))
            .collect();
        if missing.is_empty() {
            return false;
        }
        let [(first_kind, _, first), (second_kind, _, second)] = pair;
        let (entity_type, entity_name) = match kind {
            EntityKind::Membership => (
                "Membership",
                format!(
                    "{} in {}",
                    ends.named(second_kind, second),
                    ends.named(first_kind, first)
                ),
            ),
            _ => (
                "Relationship",
                format!(
                    "{}, contact of {}",
                    ends.named(second_kind, second),
                    ends.named(first_kind, first)
                ),
            ),
        };
        found.push(Issue {
            source_id: shown_key(key),
            entity_type: entity_type.into(),
            entity_name,
            mis_id: String::new(),
            message: format!("Not stored: {}", missing.join("; and ")),
            rule: Rule::ReferentialIntegrity,
            role: None::<Role>,
        });
        true
    };
    let is_link =
        |kind: EntityKind| matches!(kind, EntityKind::Membership | EntityKind::Relationship);
    changes
        .creates
        .retain(|(record, _)| match identity(record) {
            Some((kind, key)) if is_link(kind) => !dangling(kind, &key),
            _ => true,
        });
    let mut removals: Vec<(EntityKind, EntityKey)> = Vec::new();
    changes.updates.retain(|update| {
        if is_link(update.kind) && dangling(update.kind, &update.key) {
            removals.push((update.kind, update.key.clone()));
            false
        } else {
            true
        }
    });
    // Stored links whose end goes in this run, or was never there.
    let already: HashSet<(EntityKind, &EntityKey)> =
        changes.removals.iter().map(|(k, key)| (*k, key)).collect();
    for kind in [EntityKind::Membership, EntityKind::Relationship] {
        for key in prior.keys(kind) {
            let orphaned = ends_of(kind, key)
                .is_some_and(|pair| pair.iter().any(|(end, _, id)| !ends.present(*end, id)));
            if orphaned
                && !already.contains(&(kind, key))
                && !removals.contains(&(kind, key.clone()))
            {
                removals.push((kind, key.clone()));
            }
        }
    }
    changes.removals.extend(removals);
    changes.removals.sort();
    (changes, found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::Roster;
    use rostersync_model::{
        ContactType, Group, GroupKind, MemberRole, Membership, Person, Relationship,
    };

    fn person(id: &str, role: Role) -> Record {
        let mut p = Person::new(id, role);
        p.first_name = Some("Ana".into());
        p.last_name = Some(format!("Ó Súilleabháin {id}"));
        Record::Person(p)
    }

    fn group(id: &str) -> Record {
        Record::Group(Group {
            id: id.into(),
            kind: GroupKind::Class,
            name: Some(format!("Class {id}")),
            code: None,
            subject: None,
            year_group: None,
            active: true,
            parent: None,
        })
    }

    fn member(group: &str, person: &str) -> Record {
        Record::Membership(Membership {
            group: group.into(),
            person: person.into(),
            role: MemberRole::Student,
            start_date: None,
            end_date: None,
        })
    }

    fn contact_of(student: &str, contact: &str) -> Record {
        Record::Relationship(Relationship {
            student: student.into(),
            contact: contact.into(),
            contact_type: ContactType::Primary,
            relationship: Some("Mother".into()),
            priority: Some(1),
            parental_responsibility: true,
        })
    }

    fn left_out(id: &str) -> Issue {
        Issue {
            source_id: id.into(),
            entity_type: "Student".into(),
            entity_name: "Ana Nobody".into(),
            mis_id: String::new(),
            message: "Missing last name".into(),
            rule: Rule::RequiredNames,
            role: Some(Role::Student),
        }
    }

    #[test]
    fn links_to_people_arriving_or_stored_are_kept_and_the_rest_reported() {
        let stored = Roster::from_records([person("S1", Role::Student), group("G1")]);
        let changes = ChangeSet::creating(vec![
            person("C1", Role::Contact),
            member("G1", "S1"),
            member("G1", "S2"),
            contact_of("S1", "C1"),
            contact_of("S2", "C9"),
        ]);
        let (kept, issues) = check(changes, &stored.hashes(), &[left_out("S2")]);
        let kept: Vec<_> = kept.creates.iter().map(|(r, _)| r.clone()).collect();
        assert_eq!(
            kept,
            vec![
                person("C1", Role::Contact),
                member("G1", "S1"),
                contact_of("S1", "C1")
            ]
        );
        assert_eq!(issues.len(), 2);
        assert_eq!(issues[0].entity_type, "Membership");
        assert_eq!(issues[0].source_id, "G1 / S2");
        assert_eq!(issues[0].entity_name, "Ana Nobody (S2) in G1");
        assert_eq!(
            issues[0].message,
            "Not stored: the member Ana Nobody (S2) was left out (Missing last name)"
        );
        assert_eq!(
            issues[1].message,
            "Not stored: the pupil Ana Nobody (S2) was left out (Missing last name); \
             and the contact C9 is not stored and the source did not send it"
        );
        assert!(issues.iter().all(|i| i.rule == Rule::ReferentialIntegrity));
    }

    #[test]
    fn stored_links_go_with_their_ends() {
        let stored = Roster::from_records([
            person("S1", Role::Student),
            person("C1", Role::Contact),
            group("G1"),
            member("G1", "S1"),
            contact_of("S1", "C1"),
            // Left over from before the rule: its contact was never stored.
            contact_of("S1", "C7"),
        ]);
        let changes = ChangeSet {
            removals: vec![(EntityKind::Person, "S1".into())],
            ..ChangeSet::default()
        };
        let (changes, issues) = check(changes, &stored.hashes(), &[]);
        assert!(issues.is_empty());
        let removed: Vec<(EntityKind, String)> = changes
            .removals
            .iter()
            .map(|(k, key)| (*k, shown_key(key)))
            .collect();
        assert_eq!(
            removed,
            vec![
                (EntityKind::Person, "S1".to_string()),
                (EntityKind::Membership, "G1 / S1".to_string()),
                (EntityKind::Relationship, "S1 / C1".to_string()),
                (EntityKind::Relationship, "S1 / C7".to_string()),
            ]
        );
    }
}
