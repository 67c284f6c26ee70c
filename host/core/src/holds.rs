//! Safety holds: the checks that stop a run before it applies anything,
//! keep its change set, and ask an operator. A half-read export that would
//! delete a third of a school, a pupil who suddenly has seven contacts, or
//! credentials that keep failing must never be applied unattended.

use std::collections::BTreeMap;

use rostersync_model::{ContactType, Record};
use serde::{Deserialize, Serialize};

use crate::diff::{ChangeSet, PriorHashes};
use crate::entity::EntityKind;

/// A connection's hold thresholds; every field has a documented default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HoldPolicy {
    /// Hold when a run would remove more than this share of a kind
    /// (Clever holds at 10 %)…
    pub max_removal_share: f64,
    /// …as long as at least this many would go, so one leaver from a class
    /// of five does not stop a sync.
    pub min_removals_for_share: usize,
    /// Hold when a run would remove more than this many of a kind,
    /// whatever the share.
    pub max_removals: usize,
    /// Hold when a run would update more than this share of a kind
    /// (Clever holds at 75 %), from this population up.
    pub max_update_share: f64,
    pub min_population_for_update_share: usize,
    /// Hold when a student would have more contacts than this (so 6 or
    /// more holds by default).
    pub max_contacts_per_student: usize,
    /// Contact types the connection accepts; others hold the run.
    pub accepted_contact_types: Vec<ContactType>,
    /// Consecutive runs the provider may be unreachable or refuse the
    /// credentials before the connection counts as disconnected.
    pub disconnected_after: u32,
    /// Apply creates and updates while removals wait for an operator.
    pub apply_while_removals_held: bool,
}

impl Default for HoldPolicy {
    fn default() -> Self {
        Self {
            max_removal_share: 0.10,
            min_removals_for_share: 5,
            max_removals: 500,
            max_update_share: 0.75,
            min_population_for_update_share: 20,
            max_contacts_per_student: 5,
            accepted_contact_types: vec![ContactType::Primary, ContactType::Other],
            disconnected_after: 3,
            apply_while_removals_held: false,
        }
    }
}

/// Why a run is held. Each names what tripped and by how much.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "reason")]
pub enum HoldReason {
    TooManyRemovals {
        kind: EntityKind,
        removals: usize,
        population: usize,
    },
    TooManyUpdates {
        kind: EntityKind,
        updates: usize,
        population: usize,
    },
    TooManyContacts {
        student: String,
        contacts: usize,
    },
    ContactTypeNotAccepted {
        student: String,
        contact: String,
        contact_type: ContactType,
    },
    Disconnected {
        consecutive_failures: u32,
    },
    /// The connection is in a blackout that lets only additions through.
    RemovalsInBlackout {
        removals: usize,
    },
}

impl HoldReason {
    /// Whether this hold is about removals only, so creates and updates
    /// may go ahead when the connection allows it.
    pub fn is_about_removals(&self) -> bool {
        matches!(
            self,
            HoldReason::TooManyRemovals { .. } | HoldReason::RemovalsInBlackout { .. }
        )
    }
}

impl std::fmt::Display for HoldReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HoldReason::TooManyRemovals {
                kind,
                removals,
                population,
            } => write!(
                f,
                "this run would remove {removals} of {population} {kind} records ({:.0} %)",
                share(*removals, *population) * 100.0
            ),
            HoldReason::TooManyUpdates {
                kind,
                updates,
                population,
            } => write!(
                f,
                "this run would change {updates} of {population} {kind} records ({:.0} %)",
                share(*updates, *population) * 100.0
            ),
            HoldReason::TooManyContacts { student, contacts } => {
                write!(f, "student {student:?} would have {contacts} contacts")
            }
            HoldReason::ContactTypeNotAccepted {
                student,
                contact,
                contact_type,
            } => write!(
                f,
                "contact {contact:?} of student {student:?} is a {contact_type:?} contact, which this connection does not accept"
            ),
            HoldReason::Disconnected {
                consecutive_failures,
            } => write!(
                f,
                "the provider has been unreachable or refused the credentials on {consecutive_failures} runs in a row"
            ),
            HoldReason::RemovalsInBlackout { removals } => write!(
                f,
                "{removals} removals wait for an operator: the connection is in a blackout that applies additions only"
            ),
        }
    }
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// What the holds need to know about earlier runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunHistory {
    /// Runs in a row, this one included, that could not reach the provider
    /// or whose credentials were refused.
    pub consecutive_connection_failures: u32,
}

/// Every reason to hold this change set, in a stable order; empty when it
/// is safe to apply.
pub fn check_holds(
    changes: &ChangeSet,
    prior: &PriorHashes,
    history: RunHistory,
    policy: &HoldPolicy,
) -> Vec<HoldReason> {
    let mut reasons = Vec::new();
    if history.consecutive_connection_failures >= policy.disconnected_after {
        reasons.push(HoldReason::Disconnected {
            consecutive_failures: history.consecutive_connection_failures,
        });
    }
    for kind in EntityKind::ALL {
        let population = prior.population(kind);
        let removals = changes.removals_of(kind).count();
        let share_tripped = removals >= policy.min_removals_for_share
            && share(removals, population) > policy.max_removal_share;
        if removals > policy.max_removals || share_tripped {
            reasons.push(HoldReason::TooManyRemovals {
                kind,
                removals,
                population,
            });
        }
        let updates = changes.updates_of(kind).count();
        if population >= policy.min_population_for_update_share
            && share(updates, population) > policy.max_update_share
        {
            reasons.push(HoldReason::TooManyUpdates {
                kind,
                updates,
                population,
            });
        }
    }
    check_contacts(changes, prior, policy, &mut reasons);
    reasons
}

/// Contacts per student after the change, and the types of contacts that
/// arrive with it.
fn check_contacts(
    changes: &ChangeSet,
    prior: &PriorHashes,
    policy: &HoldPolicy,
    reasons: &mut Vec<HoldReason>,
) {
    let mut contacts: BTreeMap<String, usize> = BTreeMap::new();
    let student_of = |key: &str| key.split('\u{1f}').next().unwrap_or(key).to_string();
    for key in prior.keys(EntityKind::Relationship) {
        *contacts.entry(student_of(key)).or_default() += 1;
    }
    for key in changes.removals_of(EntityKind::Relationship) {
        if let Some(count) = contacts.get_mut(&student_of(key)) {
            *count = count.saturating_sub(1);
        }
    }
    let arriving = changes.creates_of(EntityKind::Relationship).chain(
        changes
            .updates_of(EntityKind::Relationship)
            .map(|u| &u.record),
    );
    for record in arriving {
        let Record::Relationship(relationship) = record else {
            continue;
        };
        if !policy
            .accepted_contact_types
            .contains(&relationship.contact_type)
        {
            reasons.push(HoldReason::ContactTypeNotAccepted {
                student: relationship.student.clone(),
                contact: relationship.contact.clone(),
                contact_type: relationship.contact_type,
            });
        }
    }
    // Only students gaining contacts in this run are checked: a student
    // whose contacts an operator already accepted is not held again.
    let mut gaining = std::collections::BTreeSet::new();
    for record in changes.creates_of(EntityKind::Relationship) {
        if let Record::Relationship(relationship) = record {
            *contacts.entry(relationship.student.clone()).or_default() += 1;
            gaining.insert(relationship.student.clone());
        }
    }
    for (student, count) in contacts {
        if gaining.contains(&student) && count > policy.max_contacts_per_student {
            reasons.push(HoldReason::TooManyContacts {
                student,
                contacts: count,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::Roster;
    use rostersync_model::{Person, Relationship, Role};

    fn pupils(range: std::ops::Range<usize>) -> Vec<Record> {
        range
            .map(|n| Record::Person(Person::new(format!("S{n}"), Role::Student)))
            .collect()
    }

    fn contact(student: &str, contact: &str, contact_type: ContactType) -> Record {
        Record::Relationship(Relationship {
            student: student.into(),
            contact: contact.into(),
            contact_type,
            relationship: Some("Mother".into()),
            priority: Some(1),
            parental_responsibility: true,
        })
    }

    fn holds(before: &Roster, after: Vec<Record>, policy: &HoldPolicy) -> Vec<HoldReason> {
        let changes = before.diff_full([after]);
        check_holds(&changes, &before.hashes(), RunHistory::default(), policy)
    }

    #[test]
    fn removing_more_than_the_share_holds_and_just_under_does_not() {
        let before = Roster::from_records(pupils(0..100));
        let policy = HoldPolicy::default();
        assert!(
            holds(&before, pupils(0..90), &policy).is_empty(),
            "10 % is allowed"
        );
        let reasons = holds(&before, pupils(0..89), &policy);
        assert_eq!(
            reasons,
            vec![HoldReason::TooManyRemovals {
                kind: EntityKind::Person,
                removals: 11,
                population: 100
            }]
        );
        assert_eq!(
            reasons[0].to_string(),
            "this run would remove 11 of 100 person records (11 %)"
        );
        assert!(reasons[0].is_about_removals());
    }

    #[test]
    fn a_few_removals_from_a_tiny_school_do_not_hold() {
        let before = Roster::from_records(pupils(0..10));
        assert!(holds(&before, pupils(0..6), &HoldPolicy::default()).is_empty());
    }

    #[test]
    fn removing_more_than_the_count_holds_whatever_the_share() {
        let before = Roster::from_records(pupils(0..10_000));
        let policy = HoldPolicy {
            max_removals: 300,
            ..HoldPolicy::default()
        };
        let reasons = holds(&before, pupils(0..9_699), &policy);
        assert!(
            matches!(
                reasons.as_slice(),
                [HoldReason::TooManyRemovals { removals: 301, .. }]
            ),
            "{reasons:?}"
        );
    }

    #[test]
    fn updating_most_of_a_kind_holds() {
        let before = Roster::from_records(pupils(0..40));
        let renamed: Vec<Record> = (0..40)
            .map(|n| {
                let mut p = Person::new(format!("S{n}"), Role::Student);
                p.last_name = Some(if n < 31 {
                    "Renamed".into()
                } else {
                    String::new()
                });
                Record::Person(p)
            })
            .collect();
        let reasons = holds(&before, renamed, &HoldPolicy::default());
        assert_eq!(
            reasons,
            vec![HoldReason::TooManyUpdates {
                kind: EntityKind::Person,
                updates: 40,
                population: 40
            }]
        );
        assert!(!reasons[0].is_about_removals());
    }

    #[test]
    fn six_contacts_for_one_student_holds() {
        let before = Roster::from_records([contact("S1", "C1", ContactType::Primary)]);
        let mut after: Vec<Record> = (1..=5)
            .map(|n| contact("S1", &format!("C{n}"), ContactType::Primary))
            .collect();
        assert!(
            holds(&before, after.clone(), &HoldPolicy::default()).is_empty(),
            "five is fine"
        );
        after.push(contact("S1", "C6", ContactType::Primary));
        assert_eq!(
            holds(&before, after, &HoldPolicy::default()),
            vec![HoldReason::TooManyContacts {
                student: "S1".into(),
                contacts: 6
            }]
        );
    }

    #[test]
    fn accepted_contacts_are_not_held_again_until_more_arrive() {
        let six: Vec<Record> = (1..=6)
            .map(|n| contact("S1", &format!("C{n}"), ContactType::Primary))
            .collect();
        let accepted = Roster::from_records(six.clone());
        assert!(
            holds(&accepted, six.clone(), &HoldPolicy::default()).is_empty(),
            "an unchanged, confirmed student is not held again"
        );
        let mut seven = six;
        seven.push(contact("S1", "C7", ContactType::Primary));
        assert_eq!(
            holds(&accepted, seven, &HoldPolicy::default()),
            vec![HoldReason::TooManyContacts {
                student: "S1".into(),
                contacts: 7
            }]
        );
    }

    #[test]
    fn contact_types_the_connection_does_not_accept_hold() {
        let before = Roster::default();
        let after = vec![
            contact("S1", "C1", ContactType::Primary),
            contact("S1", "C2", ContactType::Emergency),
        ];
        let reasons = holds(&before, after.clone(), &HoldPolicy::default());
        assert_eq!(
            reasons,
            vec![HoldReason::ContactTypeNotAccepted {
                student: "S1".into(),
                contact: "C2".into(),
                contact_type: ContactType::Emergency
            }]
        );
        let accepting = HoldPolicy {
            accepted_contact_types: vec![ContactType::Primary, ContactType::Emergency],
            ..HoldPolicy::default()
        };
        assert!(holds(&before, after, &accepting).is_empty());
    }

    #[test]
    fn repeated_connection_failures_hold_as_disconnected() {
        let policy = HoldPolicy::default();
        let nothing = ChangeSet::default();
        let prior = PriorHashes::default();
        let history = |n| RunHistory {
            consecutive_connection_failures: n,
        };
        assert!(check_holds(&nothing, &prior, history(2), &policy).is_empty());
        assert_eq!(
            check_holds(&nothing, &prior, history(3), &policy),
            vec![HoldReason::Disconnected {
                consecutive_failures: 3
            }]
        );
    }

    #[test]
    fn creates_and_updates_can_go_ahead_while_removals_wait() {
        let before = Roster::from_records(pupils(0..100));
        let mut after = pupils(50..100);
        after.extend(pupils(100..103));
        let changes = before.diff_full([after]);
        let reasons = check_holds(
            &changes,
            &before.hashes(),
            RunHistory::default(),
            &HoldPolicy::default(),
        );
        assert!(reasons.iter().all(HoldReason::is_about_removals));
        let now = changes.without_removals();
        assert_eq!((now.creates.len(), now.removals.len()), (3, 0));
    }

    #[test]
    fn the_policy_reads_from_configuration_with_defaults() {
        let policy: HoldPolicy = serde_json::from_str(r#"{"max_removal_share": 0.2}"#).unwrap();
        assert_eq!(policy.max_removal_share, 0.2);
        assert_eq!(policy.max_contacts_per_student, 5);
        assert!(serde_json::from_str::<HoldPolicy>(r#"{"max_removal_shares": 0.2}"#).is_err());
    }
}
