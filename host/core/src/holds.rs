//! Safety holds: the checks that stop a run before it applies anything,
//! keep its change set, and ask an operator. A half-read export that would
//! delete a third of a school, a pupil who suddenly has seven contacts, or
//! credentials that keep failing must never be applied unattended.
//!
//! Shares are weighed per population: the students, the staff and the
//! contacts apart, each kind of group apart, then memberships and
//! relationships, as sync tools weigh deletions per data type (Riva's
//! Delete Safety keeps a count and a share per module: "Riva Cloud Delete
//! Safety", support.rivasync.com/hc/en-us/articles/23593845105940). A
//! school with 5,000 contacts still holds a run in which its 100 pupils
//! vanish.
//!
//! Contact holds are answered once: confirming one yields acceptance keys
//! (a relationship with its contact type, a pupil with a digest of their
//! whole contact set) that the store remembers, and a later run is not held
//! again for what was accepted until that data changes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use rostersync_model::{ContactType, GroupKind, Record, Role};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::diff::{ChangeSet, PriorHashes};
use crate::entity::{EntityKey, EntityKind};

/// A connection's hold thresholds; every field has a documented default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HoldPolicy {
    /// Hold when a run would remove more than this share of a population
    /// (Clever holds at 10 %)…
    pub max_removal_share: f64,
    /// …as long as at least this many would go, so one leaver from a class
    /// of five does not stop a sync.
    pub min_removals_for_share: usize,
    /// Hold when a run would remove more than this many of a population,
    /// whatever the share.
    pub max_removals: usize,
    /// Hold when a run would update more than this share of a population
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

/// What a share is computed over: the people of one role, the groups of
/// one kind, or all memberships or all relationships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Population {
    People(Role),
    Groups(GroupKind),
    Memberships,
    Relationships,
}

impl Population {
    /// Every population, in the order holds are reported.
    pub const ALL: [Population; 11] = [
        Self::People(Role::Student),
        Self::People(Role::Staff),
        Self::People(Role::Contact),
        Self::Groups(GroupKind::Class),
        Self::Groups(GroupKind::Registration),
        Self::Groups(GroupKind::Year),
        Self::Groups(GroupKind::House),
        Self::Groups(GroupKind::Intake),
        Self::Groups(GroupKind::Other),
        Self::Memberships,
        Self::Relationships,
    ];

    /// The population a record belongs to.
    pub fn of(record: &Record) -> Option<Population> {
        Some(match record {
            Record::Person(p) => Self::People(p.role),
            Record::Group(g) => Self::Groups(g.kind),
            Record::Membership(_) => Self::Memberships,
            Record::Relationship(_) => Self::Relationships,
            Record::Removed(_) => return None,
        })
    }

    fn kind(self) -> EntityKind {
        match self {
            Self::People(_) => EntityKind::Person,
            Self::Groups(_) => EntityKind::Group,
            Self::Memberships => EntityKind::Membership,
            Self::Relationships => EntityKind::Relationship,
        }
    }

    /// The noun for `count` of this population.
    pub fn noun(self, count: usize) -> &'static str {
        let (one, many) = match self {
            Self::People(Role::Student) => ("student", "students"),
            Self::People(Role::Staff) => ("member of staff", "staff"),
            Self::People(Role::Contact) => ("contact", "contacts"),
            Self::Groups(GroupKind::Class) => ("class", "classes"),
            Self::Groups(GroupKind::Registration) => ("registration group", "registration groups"),
            Self::Groups(GroupKind::Year) => ("year group", "year groups"),
            Self::Groups(GroupKind::House) => ("house", "houses"),
            Self::Groups(GroupKind::Intake) => ("intake group", "intake groups"),
            Self::Groups(GroupKind::Other) => ("other group", "other groups"),
            Self::Memberships => ("group membership", "group memberships"),
            Self::Relationships => (
                "student–contact relationship",
                "student–contact relationships",
            ),
        };
        if count == 1 { one } else { many }
    }
}

/// What the connection holds now, by population, and the population of
/// each person and group a change set removes: the store's side of the
/// shares, since removals carry only keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    pub people: HashMap<Role, usize>,
    pub groups: HashMap<GroupKind, usize>,
    pub removed_people: HashMap<EntityKey, Role>,
    pub removed_groups: HashMap<EntityKey, GroupKind>,
}

impl Census {
    fn population(&self, of: Population, prior: &PriorHashes) -> usize {
        match of {
            Population::People(role) => self.people.get(&role).copied().unwrap_or(0),
            Population::Groups(kind) => self.groups.get(&kind).copied().unwrap_or(0),
            Population::Memberships | Population::Relationships => prior.population(of.kind()),
        }
    }

    fn removed(&self, of: Population, key: &str) -> bool {
        match of {
            Population::People(role) => self.removed_people.get(key) == Some(&role),
            Population::Groups(kind) => self.removed_groups.get(key) == Some(&kind),
            Population::Memberships | Population::Relationships => true,
        }
    }
}

/// A person a hold names: their source id, and their name once known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named {
    pub id: String,
    pub name: Option<String>,
}

impl Named {
    /// Someone to name once the caller has looked them up.
    pub(crate) fn unnamed(id: &str) -> Self {
        Self {
            id: id.to_string(),
            name: None,
        }
    }
}

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) if !name.is_empty() => f.write_str(name),
            _ => write!(f, "{:?}", self.id),
        }
    }
}

/// A contact whose type the connection does not accept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldContact {
    pub student: Named,
    pub contact: Named,
    /// The provider's word for the relationship ("Mother", "Guardian").
    pub relationship: Option<String>,
    pub contact_type: ContactType,
}

impl fmt::Display for HeldContact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let relationship = self
            .relationship
            .as_deref()
            .filter(|r| !r.trim().is_empty())
            .map_or_else(|| "contact".to_string(), str::to_lowercase);
        write!(f, "{}'s {relationship} {}", self.student, self.contact)
    }
}

/// A student who would have more contacts than the connection allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldStudent {
    pub student: Named,
    pub contacts: usize,
    /// A digest of the student's whole contact set after the run: what an
    /// acceptance remembers, so a changed set asks again.
    pub contact_set: String,
}

impl fmt::Display for HeldStudent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.student, self.contacts)
    }
}

/// Why a run is held. Each names what tripped and by how much; contact
/// holds carry every contact or student they are about, and read as one
/// sentence with a count and a few names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "reason")]
pub enum HoldReason {
    TooManyRemovals {
        of: Population,
        removals: usize,
        population: usize,
    },
    TooManyUpdates {
        of: Population,
        updates: usize,
        population: usize,
    },
    TooManyContacts {
        limit: usize,
        students: Vec<HeldStudent>,
    },
    ContactTypesNotAccepted {
        contacts: Vec<HeldContact>,
    },
    Disconnected {
        consecutive_failures: u32,
    },
    /// The connection is in a blackout that lets only additions through.
    RemovalsInBlackout {
        removals: usize,
    },
}

/// How many people a contact hold names in its sentence; the evidence CSV
/// lists the rest.
const EXAMPLES: usize = 3;

impl HoldReason {
    /// Whether this hold is about removals only, so creates and updates
    /// may go ahead when the connection allows it.
    pub fn is_about_removals(&self) -> bool {
        matches!(
            self,
            HoldReason::TooManyRemovals { .. } | HoldReason::RemovalsInBlackout { .. }
        )
    }

    /// What confirming this hold accepts, as keys the store remembers for
    /// the connection; empty for holds that are answered run by run.
    pub fn acceptances(&self) -> Vec<String> {
        match self {
            HoldReason::TooManyContacts { students, .. } => students
                .iter()
                .map(|s| contact_count_key(&s.student.id, &s.contact_set))
                .collect(),
            HoldReason::ContactTypesNotAccepted { contacts } => contacts
                .iter()
                .map(|c| contact_type_key(&c.student.id, &c.contact.id, c.contact_type))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The people this hold names in its sentence and who have no name
    /// yet, for the caller to look up in the change set and the store.
    pub fn unnamed(&self) -> Vec<&str> {
        let named: Vec<&Named> = match self {
            HoldReason::TooManyContacts { students, .. } => {
                students.iter().take(EXAMPLES).map(|s| &s.student).collect()
            }
            HoldReason::ContactTypesNotAccepted { contacts } => contacts
                .iter()
                .take(EXAMPLES)
                .flat_map(|c| [&c.student, &c.contact])
                .collect(),
            _ => Vec::new(),
        };
        named
            .into_iter()
            .filter(|n| n.name.is_none())
            .map(|n| n.id.as_str())
            .collect()
    }

    /// Fills in names the caller looked up for [`HoldReason::unnamed`].
    pub fn name(&mut self, names: &HashMap<String, String>) {
        let fill = |named: &mut Named| {
            if named.name.is_none() {
                named.name = names.get(&named.id).cloned();
            }
        };
        match self {
            HoldReason::TooManyContacts { students, .. } => {
                students.iter_mut().for_each(|s| fill(&mut s.student))
            }
            HoldReason::ContactTypesNotAccepted { contacts } => {
                for c in contacts {
                    fill(&mut c.student);
                    fill(&mut c.contact);
                }
            }
            _ => {}
        }
    }
}

impl fmt::Display for HoldReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HoldReason::TooManyRemovals {
                of,
                removals,
                population,
            } => write!(
                f,
                "this run would remove {} of {} {} ({:.0} %)",
                thousands(*removals),
                thousands(*population),
                of.noun(*population),
                share(*removals, *population) * 100.0
            ),
            HoldReason::TooManyUpdates {
                of,
                updates,
                population,
            } => write!(
                f,
                "this run would change {} of {} {} ({:.0} %)",
                thousands(*updates),
                thousands(*population),
                of.noun(*population),
                share(*updates, *population) * 100.0
            ),
            HoldReason::TooManyContacts { limit, students } => match students.as_slice() {
                [one] => write!(
                    f,
                    "{} would have {} contacts, more than the {limit} this connection allows",
                    one.student, one.contacts
                ),
                _ => write!(
                    f,
                    "{} students would have more than {limit} contacts, e.g. {}",
                    thousands(students.len()),
                    examples(students)
                ),
            },
            HoldReason::ContactTypesNotAccepted { contacts } => {
                let types: Vec<ContactType> = CONTACT_TYPES
                    .into_iter()
                    .filter(|t| contacts.iter().any(|c| c.contact_type == *t))
                    .collect();
                let adjectives: Vec<&str> = types.iter().map(|t| adjective(*t)).collect();
                match contacts.as_slice() {
                    [one] => {
                        let adjective = adjective(one.contact_type);
                        let article = if adjective.starts_with(['a', 'e', 'i', 'o', 'u']) {
                            "an"
                        } else {
                            "a"
                        };
                        write!(
                            f,
                            "{article} {adjective} contact, which this connection does not accept: {one}"
                        )
                    }
                    _ => {
                        write!(
                            f,
                            "{} {} contacts",
                            thousands(contacts.len()),
                            either(&adjectives)
                        )?;
                        if types.len() > 1 {
                            let each: Vec<String> = types
                                .iter()
                                .map(|t| {
                                    let n =
                                        contacts.iter().filter(|c| c.contact_type == *t).count();
                                    format!("{} {}", thousands(n), adjective(*t))
                                })
                                .collect();
                            write!(f, " ({})", each.join(", "))?;
                        }
                        write!(
                            f,
                            ", which this connection does not accept, e.g. {}",
                            examples(contacts)
                        )
                    }
                }
            }
            HoldReason::Disconnected {
                consecutive_failures,
            } => write!(
                f,
                "the provider has been unreachable or refused the credentials on {consecutive_failures} runs in a row"
            ),
            HoldReason::RemovalsInBlackout { removals } => write!(
                f,
                "{} removals wait for an operator: the connection is in a blackout that applies additions only",
                thousands(*removals)
            ),
        }
    }
}

/// The first few items, then how many more the evidence CSV lists.
fn examples<T: fmt::Display>(items: &[T]) -> String {
    let shown: Vec<String> = items
        .iter()
        .take(EXAMPLES)
        .map(ToString::to_string)
        .collect();
    let rest = items.len().saturating_sub(EXAMPLES);
    if rest == 0 {
        either_joined(&shown, "and")
    } else {
        format!(
            "{} and {} more (the evidence CSV lists them all)",
            shown.join(", "),
            thousands(rest)
        )
    }
}

fn either(words: &[&str]) -> String {
    let words: Vec<String> = words.iter().map(ToString::to_string).collect();
    either_joined(&words, "or")
}

/// "a", "a and b", "a, b and c".
fn either_joined(words: &[String], conjunction: &str) -> String {
    match words {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {conjunction} {last}", init.join(", ")),
    }
}

const CONTACT_TYPES: [ContactType; 4] = [
    ContactType::Primary,
    ContactType::Secondary,
    ContactType::Emergency,
    ContactType::Other,
];

fn adjective(contact_type: ContactType) -> &'static str {
    match contact_type {
        ContactType::Primary => "primary",
        ContactType::Secondary => "secondary",
        ContactType::Emergency => "emergency",
        ContactType::Other => "uncategorised",
    }
}

/// 1949 as "1,949".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn contact_type_key(student: &str, contact: &str, contact_type: ContactType) -> String {
    format!(
        "contact-type\u{1f}{student}\u{1f}{contact}\u{1f}{}",
        adjective(contact_type)
    )
}

fn contact_count_key(student: &str, contact_set: &str) -> String {
    format!("contact-count\u{1f}{student}\u{1f}{contact_set}")
}

/// A digest of a student's contacts, in any order.
fn contact_set_digest(contacts: &BTreeSet<&str>) -> String {
    let mut hasher = Sha256::new();
    for contact in contacts {
        hasher.update(contact.as_bytes());
        hasher.update([0x1f]);
    }
    hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What operators answered about contacts on this connection, as the keys
/// of [`HoldReason::acceptances`]: "Create accounts" accepts them, "Don't
/// create" declines them. Either way a later run is not held again for
/// them until the data a key names changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdicts {
    pub accepted: HashSet<String>,
    pub declined: HashSet<String>,
}

/// What the holds need to know about earlier runs and answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunHistory {
    /// Runs in a row, this one included, that could not reach the provider
    /// or whose credentials were refused.
    pub consecutive_connection_failures: u32,
    /// What operators answered to earlier contact holds.
    pub verdicts: Verdicts,
}

/// What a change set trips, and what of it operators already declined.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Screening {
    /// Every reason to hold the change set, in a stable order; empty when
    /// it is safe to apply.
    pub reasons: Vec<HoldReason>,
    /// Contact reasons made only of what an operator answered "Don't
    /// create" to before: the records they concern are left out of the
    /// run (see [`ChangeSet::without`]) and reported, not held again.
    pub declined: Vec<HoldReason>,
}

/// Weighs a change set against the hold policy and the earlier answers.
pub fn check_holds(
    changes: &ChangeSet,
    prior: &PriorHashes,
    census: &Census,
    history: &RunHistory,
    policy: &HoldPolicy,
) -> Screening {
    let mut reasons = Vec::new();
    if history.consecutive_connection_failures >= policy.disconnected_after {
        reasons.push(HoldReason::Disconnected {
            consecutive_failures: history.consecutive_connection_failures,
        });
    }
    let mut updates: HashMap<Population, usize> = HashMap::new();
    for update in &changes.updates {
        if let Some(of) = Population::of(&update.record) {
            *updates.entry(of).or_default() += 1;
        }
    }
    for of in Population::ALL {
        let population = census.population(of, prior);
        let removals = changes
            .removals_of(of.kind())
            .filter(|key| census.removed(of, key))
            .count();
        let share_tripped = removals >= policy.min_removals_for_share
            && share(removals, population) > policy.max_removal_share;
        if removals > policy.max_removals || share_tripped {
            reasons.push(HoldReason::TooManyRemovals {
                of,
                removals,
                population,
            });
        }
        let updates = updates.get(&of).copied().unwrap_or(0);
        if population >= policy.min_population_for_update_share
            && share(updates, population) > policy.max_update_share
        {
            reasons.push(HoldReason::TooManyUpdates {
                of,
                updates,
                population,
            });
        }
    }
    let contacts = check_contacts(changes, prior, &history.verdicts, policy);
    reasons.extend(contacts.reasons);
    Screening {
        reasons,
        declined: contacts.declined,
    }
}

/// Contacts per student after the change, and the types of contacts that
/// arrive with it: held unless operators accepted them, declined when they
/// declined them.
fn check_contacts(
    changes: &ChangeSet,
    prior: &PriorHashes,
    verdicts: &Verdicts,
    policy: &HoldPolicy,
) -> Screening {
    let split = |key: &str| -> (String, String) {
        let (student, contact) = key.split_once('\u{1f}').unwrap_or((key, ""));
        (student.to_string(), contact.to_string())
    };
    let mut sets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for key in prior.keys(EntityKind::Relationship) {
        let (student, contact) = split(key);
        sets.entry(student).or_default().insert(contact);
    }
    // Only students whose contact set changes in this run are checked.
    let mut changed = BTreeSet::new();
    for key in changes.removals_of(EntityKind::Relationship) {
        let (student, contact) = split(key);
        if let Some(set) = sets.get_mut(&student) {
            set.remove(&contact);
        }
        changed.insert(student);
    }
    let mut unaccepted = Vec::new();
    let mut declined_types = Vec::new();
    let arriving = changes.creates_of(EntityKind::Relationship).chain(
        changes
            .updates_of(EntityKind::Relationship)
            .map(|u| &u.record),
    );
    for record in arriving {
        let Record::Relationship(relationship) = record else {
            continue;
        };
        let (student, contact) = (&relationship.student, &relationship.contact);
        if sets
            .entry(student.clone())
            .or_default()
            .insert(contact.clone())
        {
            changed.insert(student.clone());
        }
        let key = contact_type_key(student, contact, relationship.contact_type);
        if policy
            .accepted_contact_types
            .contains(&relationship.contact_type)
            || verdicts.accepted.contains(&key)
        {
            continue;
        }
        let held = HeldContact {
            student: Named::unnamed(student),
            contact: Named::unnamed(contact),
            relationship: relationship.relationship.clone(),
            contact_type: relationship.contact_type,
        };
        if verdicts.declined.contains(&key) {
            declined_types.push(held);
        } else {
            unaccepted.push(held);
        }
    }
    let mut crowded = Vec::new();
    let mut declined_crowded = Vec::new();
    for student in changed {
        let Some(set) = sets.get(&student) else {
            continue;
        };
        if set.len() <= policy.max_contacts_per_student {
            continue;
        }
        let contact_set = contact_set_digest(&set.iter().map(String::as_str).collect());
        let key = contact_count_key(&student, &contact_set);
        if verdicts.accepted.contains(&key) {
            continue;
        }
        let held = HeldStudent {
            student: Named::unnamed(&student),
            contacts: set.len(),
            contact_set,
        };
        if verdicts.declined.contains(&key) {
            declined_crowded.push(held);
        } else {
            crowded.push(held);
        }
    }
    let limit = policy.max_contacts_per_student;
    Screening {
        reasons: contact_reasons(limit, crowded, unaccepted),
        declined: contact_reasons(limit, declined_crowded, declined_types),
    }
}

/// The contact reasons for these students and contacts, leaving out a
/// reason with nobody in it.
fn contact_reasons(
    limit: usize,
    students: Vec<HeldStudent>,
    mut contacts: Vec<HeldContact>,
) -> Vec<HoldReason> {
    let mut reasons = Vec::new();
    if !students.is_empty() {
        reasons.push(HoldReason::TooManyContacts { limit, students });
    }
    if !contacts.is_empty() {
        contacts
            .sort_by(|a, b| (&a.student.id, &a.contact.id).cmp(&(&b.student.id, &b.contact.id)));
        reasons.push(HoldReason::ContactTypesNotAccepted { contacts });
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::Roster;
    use crate::entity::identity;
    use rostersync_model::{Group, Person, Relationship};

    fn pupil(n: usize) -> Person {
        let mut p = Person::new(format!("S{n}"), Role::Student);
        p.first_name = Some("Ana".into());
        p.last_name = Some(format!("Ó Súilleabháin {n}"));
        p
    }

    fn pupils(range: std::ops::Range<usize>) -> Vec<Record> {
        range.map(|n| Record::Person(pupil(n))).collect()
    }

    fn people(role: Role, prefix: &str, range: std::ops::Range<usize>) -> Vec<Record> {
        range
            .map(|n| Record::Person(Person::new(format!("{prefix}{n}"), role)))
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

    /// The census the store would take of `before`, for `changes`.
    fn census(before: &Roster, changes: &ChangeSet) -> Census {
        let mut census = Census::default();
        let removed: HashSet<(EntityKind, &EntityKey)> =
            changes.removals.iter().map(|(k, key)| (*k, key)).collect();
        for record in before.records() {
            let (kind, key) = identity(record).unwrap();
            let gone = removed.contains(&(kind, &key));
            match record {
                Record::Person(p) => {
                    *census.people.entry(p.role).or_default() += 1;
                    if gone {
                        census.removed_people.insert(key, p.role);
                    }
                }
                Record::Group(g) => {
                    *census.groups.entry(g.kind).or_default() += 1;
                    if gone {
                        census.removed_groups.insert(key, g.kind);
                    }
                }
                _ => {}
            }
        }
        census
    }

    fn screen(
        before: &Roster,
        after: Vec<Record>,
        history: &RunHistory,
        policy: &HoldPolicy,
    ) -> Screening {
        let changes = before.diff_full([after]);
        check_holds(
            &changes,
            &before.hashes(),
            &census(before, &changes),
            history,
            policy,
        )
    }

    fn holds_with(
        before: &Roster,
        after: Vec<Record>,
        history: &RunHistory,
        policy: &HoldPolicy,
    ) -> Vec<HoldReason> {
        screen(before, after, history, policy).reasons
    }

    fn holds(before: &Roster, after: Vec<Record>, policy: &HoldPolicy) -> Vec<HoldReason> {
        holds_with(before, after, &RunHistory::default(), policy)
    }

    fn remembering(reasons: &[HoldReason], declined: bool) -> RunHistory {
        let keys = reasons.iter().flat_map(HoldReason::acceptances).collect();
        let verdicts = if declined {
            Verdicts {
                declined: keys,
                ..Verdicts::default()
            }
        } else {
            Verdicts {
                accepted: keys,
                ..Verdicts::default()
            }
        };
        RunHistory {
            verdicts,
            ..RunHistory::default()
        }
    }

    #[test]
    fn removing_more_than_the_share_of_a_role_holds_and_just_under_does_not() {
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
                of: Population::People(Role::Student),
                removals: 11,
                population: 100
            }]
        );
        assert_eq!(
            reasons[0].to_string(),
            "this run would remove 11 of 100 students (11 %)"
        );
        assert!(reasons[0].is_about_removals());
    }

    #[test]
    fn every_pupil_vanishing_holds_however_many_contacts_and_staff_stay() {
        // 1,949 pupils among 6,007 people: 32 % of everyone, 100 % of pupils.
        let mut school = pupils(0..1949);
        school.extend(people(Role::Contact, "C", 0..3900));
        school.extend(people(Role::Staff, "T", 0..158));
        let before = Roster::from_records(school);
        let mut after = people(Role::Contact, "C", 0..3900);
        after.extend(people(Role::Staff, "T", 0..158));
        let reasons = holds(
            &before,
            after,
            &HoldPolicy {
                max_removals: 10_000,
                max_removal_share: 0.5,
                ..HoldPolicy::default()
            },
        );
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert_eq!(
            reasons[0].to_string(),
            "this run would remove 1,949 of 1,949 students (100 %)"
        );
    }

    #[test]
    fn every_pupil_renamed_holds_though_most_people_are_contacts() {
        let mut school = pupils(0..40);
        school.extend(people(Role::Contact, "C", 0..100));
        let before = Roster::from_records(school);
        let mut after: Vec<Record> = (0..40)
            .map(|n| {
                let mut p = pupil(n);
                p.last_name = Some("Renamed".into());
                Record::Person(p)
            })
            .collect();
        after.extend(people(Role::Contact, "C", 0..100));
        let reasons = holds(&before, after, &HoldPolicy::default());
        assert_eq!(
            reasons,
            vec![HoldReason::TooManyUpdates {
                of: Population::People(Role::Student),
                updates: 40,
                population: 40
            }]
        );
        assert_eq!(
            reasons[0].to_string(),
            "this run would change 40 of 40 students (100 %)"
        );
        assert!(!reasons[0].is_about_removals());
    }

    #[test]
    fn groups_are_weighed_by_kind() {
        let group = |n: usize, kind: GroupKind| {
            Record::Group(Group {
                id: format!("G{n}"),
                kind,
                name: Some(format!("Group {n}")),
                code: None,
                subject: None,
                year_group: None,
                active: true,
                parent: None,
            })
        };
        let mut school: Vec<Record> = (0..200).map(|n| group(n, GroupKind::Class)).collect();
        school.extend((200..210).map(|n| group(n, GroupKind::Registration)));
        let before = Roster::from_records(school.clone());
        school.truncate(205);
        let reasons = holds(&before, school, &HoldPolicy::default());
        assert_eq!(
            reasons.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["this run would remove 5 of 10 registration groups (50 %)"]
        );
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
        let mut reasons = holds(&before, after, &HoldPolicy::default());
        assert!(
            matches!(&reasons[..], [HoldReason::TooManyContacts { limit: 5, students }]
                if students.len() == 1 && students[0].contacts == 6),
            "{reasons:?}"
        );
        assert_eq!(
            reasons[0].to_string(),
            "\"S1\" would have 6 contacts, more than the 5 this connection allows"
        );
        assert_eq!(reasons[0].unnamed(), ["S1"]);
        reasons[0].name(&HashMap::from([(
            "S1".into(),
            "Ana Ó Súilleabháin 1".into(),
        )]));
        assert_eq!(
            reasons[0].to_string(),
            "Ana Ó Súilleabháin 1 would have 6 contacts, more than the 5 this connection allows"
        );
    }

    #[test]
    fn an_accepted_contact_count_is_not_held_again_until_the_set_changes() {
        let six: Vec<Record> = (1..=6)
            .map(|n| contact("S1", &format!("C{n}"), ContactType::Primary))
            .collect();
        let policy = HoldPolicy::default();
        let before = Roster::default();
        let reasons = holds(&before, six.clone(), &policy);
        let history = remembering(&reasons, false);
        assert!(
            holds_with(&before, six.clone(), &history, &policy).is_empty(),
            "the same six arriving again are not held again"
        );
        let mut replaced = six;
        replaced[5] = contact("S1", "C7", ContactType::Primary);
        assert_eq!(
            holds_with(&before, replaced, &history, &policy).len(),
            1,
            "a changed set asks again"
        );
    }

    #[test]
    fn contact_types_the_connection_does_not_accept_hold_in_one_grammatical_reason() {
        let before = Roster::default();
        let after = vec![
            contact("S1", "C1", ContactType::Primary),
            contact("S1", "C2", ContactType::Emergency),
        ];
        let reasons = holds(&before, after.clone(), &HoldPolicy::default());
        assert_eq!(
            reasons.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["an emergency contact, which this connection does not accept: \"S1\"'s mother \"C2\""]
        );
        let accepting = HoldPolicy {
            accepted_contact_types: vec![ContactType::Primary, ContactType::Emergency],
            ..HoldPolicy::default()
        };
        assert!(holds(&before, after, &accepting).is_empty());
    }

    #[test]
    fn many_unaccepted_contacts_are_counted_and_a_few_named() {
        let after: Vec<Record> = (0..132)
            .map(|n| {
                let t = if n < 40 {
                    ContactType::Secondary
                } else {
                    ContactType::Emergency
                };
                contact(&format!("S{n:03}"), &format!("C{n:03}"), t)
            })
            .collect();
        let mut reasons = holds(&Roster::default(), after, &HoldPolicy::default());
        assert_eq!(reasons.len(), 1);
        assert_eq!(
            reasons[0].unnamed(),
            ["S000", "C000", "S001", "C001", "S002", "C002"],
            "only the people the sentence names are looked up"
        );
        reasons[0].name(&HashMap::from([
            ("S000".into(), "Ana Ó Súilleabháin".into()),
            ("C000".into(), "Mary Ó Súilleabháin".into()),
        ]));
        assert_eq!(
            reasons[0].to_string(),
            "132 secondary or emergency contacts (40 secondary, 92 emergency), which this \
             connection does not accept, e.g. Ana Ó Súilleabháin's mother Mary Ó Súilleabháin, \
             \"S001\"'s mother \"C001\", \"S002\"'s mother \"C002\" and 129 more (the evidence \
             CSV lists them all)"
        );
        assert_eq!(reasons[0].unnamed(), ["S001", "C001", "S002", "C002"]);
        assert_eq!(reasons[0].acceptances().len(), 132);
    }

    #[test]
    fn an_accepted_contact_type_is_not_held_again_until_its_type_changes() {
        let policy = HoldPolicy::default();
        let before = Roster::default();
        let emergency = vec![contact("S1", "C2", ContactType::Emergency)];
        let reasons = holds(&before, emergency.clone(), &policy);
        let history = remembering(&reasons, false);
        assert!(holds_with(&before, emergency, &history, &policy).is_empty());
        let secondary = vec![contact("S1", "C2", ContactType::Secondary)];
        assert_eq!(holds_with(&before, secondary, &history, &policy).len(), 1);
    }

    #[test]
    fn declined_contacts_are_not_held_again_but_screened_out_until_they_change() {
        let policy = HoldPolicy::default();
        let before = Roster::default();
        let mut arriving: Vec<Record> = (1..=6)
            .map(|n| contact("S1", &format!("C{n}"), ContactType::Primary))
            .collect();
        arriving.push(contact("S2", "C9", ContactType::Emergency));
        let first = screen(&before, arriving.clone(), &RunHistory::default(), &policy);
        assert_eq!(first.reasons.len(), 2, "{:?}", first.reasons);
        assert!(first.declined.is_empty());
        let history = remembering(&first.reasons, true);

        let again = screen(&before, arriving.clone(), &history, &policy);
        assert!(again.reasons.is_empty(), "{:?}", again.reasons);
        assert_eq!(
            again.declined, first.reasons,
            "the same contacts are screened out as declined, not held"
        );

        let mut changed = arriving;
        changed[6] = contact("S2", "C9", ContactType::Secondary);
        changed[5] = contact("S1", "C7", ContactType::Primary);
        let changed = screen(&before, changed, &history, &policy);
        assert_eq!(
            changed.reasons.len(),
            2,
            "a new contact type or contact set asks again: {:?}",
            changed.reasons
        );
        assert!(changed.declined.is_empty());
    }

    #[test]
    fn repeated_connection_failures_hold_as_disconnected() {
        let policy = HoldPolicy::default();
        let nothing = ChangeSet::default();
        let prior = PriorHashes::default();
        let history = |n| RunHistory {
            consecutive_connection_failures: n,
            ..RunHistory::default()
        };
        let check =
            |n| check_holds(&nothing, &prior, &Census::default(), &history(n), &policy).reasons;
        assert!(check(2).is_empty());
        assert_eq!(
            check(3),
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
            &census(&before, &changes),
            &RunHistory::default(),
            &HoldPolicy::default(),
        )
        .reasons;
        assert!(!reasons.is_empty());
        assert!(reasons.iter().all(HoldReason::is_about_removals));
        let now = changes.without_removals();
        assert_eq!((now.creates.len(), now.removals.len()), (3, 0));
    }

    #[test]
    fn numbers_read_with_thousands_separators() {
        assert_eq!(
            [0, 999, 1000, 1949, 1_000_000].map(thousands),
            ["0", "999", "1,000", "1,949", "1,000,000"]
        );
    }

    #[test]
    fn the_policy_reads_from_configuration_with_defaults() {
        let policy: HoldPolicy = serde_json::from_str(r#"{"max_removal_share": 0.2}"#).unwrap();
        assert_eq!(policy.max_removal_share, 0.2);
        assert_eq!(policy.max_contacts_per_student, 5);
        assert!(serde_json::from_str::<HoldPolicy>(r#"{"max_removal_shares": 0.2}"#).is_err());
    }
}
