//! What an operator can answer to a hold, by the hold's type, as Remind
//! offers it: a removals hold is confirmed or rejected; a contacts hold
//! creates the held contacts' accounts or does not; a disconnected hold is
//! answered "I fixed it", which closes it and runs the connection again.
//!
//! A hold's type follows the reasons of its current revision. A revision
//! whose reasons are of several types is answered in parts, one type at a
//! time, the most dangerous first ([`HoldKind::parts`]): removals, then
//! contacts, then updates. Each part offers its own type's answers; one
//! that applies nothing ends the hold there, and the last part's answer
//! applies the change set as every part was answered ([`progress`]).
//!
//! Each type's answers are an enum of their own, so an answer that does
//! not belong to a hold cannot be written down; the store keeps them as
//! `type/answer` words and decodes them here, once.

use std::fmt;

use rostersync_model::{Record, Relationship};
use serde::{Deserialize, Serialize};

use crate::diff::ChangeSet;
use crate::entity::identity;
use crate::holds::HoldReason;
use crate::integrity::shown_key;
use crate::policy::Rule;
use crate::validate::{Issue, person_issue};

/// What kind of hold an operator answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HoldKind {
    /// Too many removals, or removals during an additions-only blackout.
    Removals,
    /// Contacts beyond the accepted contact types or the count per pupil.
    Contacts,
    /// Too many updates. (Holds opened before holds were answered in
    /// parts are of this type too when their reasons were mixed.)
    Changes,
    /// The provider was unreachable or refused the credentials too often.
    Disconnected,
}

impl HoldKind {
    pub const ALL: [HoldKind; 4] = [
        Self::Removals,
        Self::Contacts,
        Self::Changes,
        Self::Disconnected,
    ];

    /// The type of one reason.
    pub fn of_reason(reason: &HoldReason) -> HoldKind {
        match reason {
            HoldReason::TooManyRemovals { .. } | HoldReason::RemovalsInBlackout { .. } => {
                Self::Removals
            }
            HoldReason::TooManyContacts { .. } | HoldReason::ContactTypesNotAccepted { .. } => {
                Self::Contacts
            }
            HoldReason::TooManyUpdates { .. } => Self::Changes,
            HoldReason::Disconnected { .. } => Self::Disconnected,
        }
    }

    /// The parts of a hold with these reasons, in the order they are
    /// answered: a lost connection alone (its run read nothing to apply);
    /// otherwise removals, contacts, updates, each once.
    pub fn parts(reasons: &[HoldReason]) -> Vec<HoldKind> {
        let kinds: Vec<HoldKind> = reasons.iter().map(Self::of_reason).collect();
        if kinds.contains(&Self::Disconnected) {
            return vec![Self::Disconnected];
        }
        Self::ALL
            .into_iter()
            .filter(|kind| kinds.contains(kind))
            .collect()
    }

    /// The type of a revision with these reasons, its first part; `None`
    /// when it tripped nothing itself (it waits because the hold was
    /// open), so the hold keeps the type it had.
    pub fn of(reasons: &[HoldReason]) -> Option<HoldKind> {
        Self::parts(reasons).first().copied()
    }

    /// The parts of a stored hold waiting on part `current` after
    /// `answered`: its reasons' parts, or, for a hold whose reasons do not
    /// include the waiting type (typed before holds had parts, or a
    /// revision that waits only because the hold was open), the parts
    /// answered and the one waiting.
    pub fn parts_of_hold(
        current: HoldKind,
        answered: &[HoldAnswer],
        reasons: &str,
    ) -> Vec<HoldKind> {
        let parts =
            Self::parts(&serde_json::from_str::<Vec<HoldReason>>(reasons).unwrap_or_default());
        if parts.get(answered.len()) == Some(&current) {
            parts
        } else {
            answered.iter().map(|a| a.kind()).chain([current]).collect()
        }
    }

    /// The type of a revision whose reasons are stored as JSON; reasons
    /// written before holds were typed read as [`HoldKind::Changes`].
    pub fn of_json(reasons: &str) -> Option<HoldKind> {
        match serde_json::from_str::<Vec<HoldReason>>(reasons) {
            Ok(reasons) => Self::of(&reasons),
            Err(_) => Some(Self::Changes),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Removals => "removals",
            Self::Contacts => "contacts",
            Self::Changes => "changes",
            Self::Disconnected => "disconnected",
        }
    }

    pub fn parse(word: &str) -> Option<HoldKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == word)
    }

    /// The answers an operator can give, the one that goes ahead first.
    pub fn answers(self) -> &'static [HoldAnswer] {
        match self {
            Self::Removals => &[
                HoldAnswer::Removals(RemovalsAnswer::ConfirmRemovals),
                HoldAnswer::Removals(RemovalsAnswer::Reject),
            ],
            Self::Contacts => &[
                HoldAnswer::Contacts(ContactsAnswer::CreateAccounts),
                HoldAnswer::Contacts(ContactsAnswer::DontCreate),
            ],
            Self::Changes => &[
                HoldAnswer::Changes(ChangesAnswer::ApplyChanges),
                HoldAnswer::Changes(ChangesAnswer::Reject),
            ],
            Self::Disconnected => &[HoldAnswer::Disconnected(DisconnectedAnswer::FixedIt)],
        }
    }

    /// The answer that applies what the hold kept.
    pub fn go_ahead(self) -> HoldAnswer {
        self.answers()[0]
    }

    /// The answer that applies nothing.
    pub fn stop(self) -> HoldAnswer {
        *self
            .answers()
            .last()
            .expect("every hold type has an answer")
    }

    /// What to look at before answering, in the order to look.
    pub fn checks(self) -> &'static [&'static str] {
        match self {
            Self::Removals => &[
                "Open the evidence: are these people really leaving, or did the export come back half-read?",
                "If the source is wrong, fix it there and reject; the next run reads it afresh.",
            ],
            Self::Contacts => &[
                "Open the evidence: are these contacts expected (a new intake, a new contact type at the source)?",
                "To stop being asked for a type, add it to holds.accepted_contact_types; for more contacts per pupil, raise holds.max_contacts_per_student.",
            ],
            Self::Changes => &[
                "Open the evidence: is this a real change at the school (a new year, renamed classes) or a fault at the source?",
            ],
            Self::Disconnected => &[
                "Credentials: the connection's secrets (an expired or revoked token, a changed password) — `rostersync config check` names a missing one.",
                "Allow-list: the connection's allowed_hosts must include the provider's host; a refused request is logged with the host it tried.",
                "Provider status: the provider's status page, or whether the school revoked rostersync's access there.",
            ],
        }
    }

    /// A heading for the hold's page and summaries.
    pub fn title(self) -> &'static str {
        match self {
            Self::Removals => "Removals held",
            Self::Contacts => "Contacts held",
            Self::Changes => "Updates held",
            Self::Disconnected => "Connection lost",
        }
    }
}

impl fmt::Display for HoldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RemovalsAnswer {
    ConfirmRemovals,
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContactsAnswer {
    CreateAccounts,
    DontCreate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangesAnswer {
    ApplyChanges,
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DisconnectedAnswer {
    FixedIt,
}

/// An operator's answer to a hold of one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoldAnswer {
    Removals(RemovalsAnswer),
    Contacts(ContactsAnswer),
    Changes(ChangesAnswer),
    Disconnected(DisconnectedAnswer),
}

/// What answering does to the change set the hold kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Apply all of it, and remember what it accepts.
    Apply,
    /// Apply it less the records the hold is about.
    ApplyOthers,
    /// Apply none of it; the next run decides afresh.
    Discard,
    /// Close the hold and run the connection again now.
    Retry,
}

impl HoldAnswer {
    pub fn kind(self) -> HoldKind {
        match self {
            Self::Removals(_) => HoldKind::Removals,
            Self::Contacts(_) => HoldKind::Contacts,
            Self::Changes(_) => HoldKind::Changes,
            Self::Disconnected(_) => HoldKind::Disconnected,
        }
    }

    /// The answer's word, unique within its hold type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Removals(RemovalsAnswer::ConfirmRemovals) => "confirm-removals",
            Self::Removals(RemovalsAnswer::Reject) | Self::Changes(ChangesAnswer::Reject) => {
                "reject"
            }
            Self::Contacts(ContactsAnswer::CreateAccounts) => "create-accounts",
            Self::Contacts(ContactsAnswer::DontCreate) => "dont-create",
            Self::Changes(ChangesAnswer::ApplyChanges) => "apply-changes",
            Self::Disconnected(DisconnectedAnswer::FixedIt) => "fixed-it",
        }
    }

    /// The answer of a hold of type `kind` named `word`; `None` when that
    /// type offers no such answer.
    pub fn parse(kind: HoldKind, word: &str) -> Option<HoldAnswer> {
        kind.answers().iter().copied().find(|a| a.as_str() == word)
    }

    /// As the store keeps it: `removals/confirm-removals`.
    pub fn stored(self) -> String {
        format!("{}/{}", self.kind(), self.as_str())
    }

    /// Reads [`HoldAnswer::stored`] back.
    pub fn from_stored(stored: &str) -> Option<HoldAnswer> {
        let (kind, word) = stored.split_once('/')?;
        Self::parse(HoldKind::parse(kind)?, word)
    }

    /// The button's words.
    pub fn label(self) -> &'static str {
        match self {
            Self::Removals(RemovalsAnswer::ConfirmRemovals) => "Confirm removals",
            Self::Removals(RemovalsAnswer::Reject) | Self::Changes(ChangesAnswer::Reject) => {
                "Reject"
            }
            Self::Contacts(ContactsAnswer::CreateAccounts) => "Create accounts",
            Self::Contacts(ContactsAnswer::DontCreate) => "Don't create",
            Self::Changes(ChangesAnswer::ApplyChanges) => "Apply changes",
            Self::Disconnected(DisconnectedAnswer::FixedIt) => "I fixed it",
        }
    }

    /// What happens, in a sentence the confirmation step shows.
    pub fn consequence(self) -> &'static str {
        match self {
            Self::Removals(RemovalsAnswer::ConfirmRemovals) => {
                "Everything the held run would have changed is applied now, removals included."
            }
            Self::Changes(ChangesAnswer::ApplyChanges) => {
                "Everything the held run would have changed is applied now."
            }
            Self::Removals(RemovalsAnswer::Reject) | Self::Changes(ChangesAnswer::Reject) => {
                "Nothing is applied. The next run reads the source afresh and holds again if it still looks wrong."
            }
            Self::Contacts(ContactsAnswer::CreateAccounts) => {
                "The held contacts are created with their accounts, and are not asked about again until their details change."
            }
            Self::Contacts(ContactsAnswer::DontCreate) => {
                "The rest of the run is applied without the held contacts. They are asked about again if the next run still brings them."
            }
            Self::Disconnected(DisconnectedAnswer::FixedIt) => {
                "The hold closes and the connection runs again now; if the provider still refuses, it holds again after the same number of failed runs."
            }
        }
    }

    pub fn effect(self) -> Effect {
        match self {
            Self::Removals(RemovalsAnswer::ConfirmRemovals)
            | Self::Contacts(ContactsAnswer::CreateAccounts)
            | Self::Changes(ChangesAnswer::ApplyChanges) => Effect::Apply,
            Self::Contacts(ContactsAnswer::DontCreate) => Effect::ApplyOthers,
            Self::Removals(RemovalsAnswer::Reject) | Self::Changes(ChangesAnswer::Reject) => {
                Effect::Discard
            }
            Self::Disconnected(DisconnectedAnswer::FixedIt) => Effect::Retry,
        }
    }
}

impl fmt::Display for HoldAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl Serialize for HoldAnswer {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Where a hold of these parts stands once these answers were given to
/// its first parts, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The next part waits for its answer.
    Next(HoldKind),
    /// Every part is answered, or one answer settled it: this is what
    /// answering does to the change set.
    Settled(Effect),
}

/// How a hold of `parts` stands after `answers`. An answer that applies
/// nothing (Reject) or runs again (I fixed it) settles the hold whatever
/// the later parts are; otherwise each part is answered in turn, and the
/// change set is applied less the records of any part answered "Don't
/// create".
pub fn progress(parts: &[HoldKind], answers: &[HoldAnswer]) -> Progress {
    if let Some(settling) = answers
        .iter()
        .map(|a| a.effect())
        .find(|e| matches!(e, Effect::Discard | Effect::Retry))
    {
        return Progress::Settled(settling);
    }
    match parts.get(answers.len()) {
        Some(next) => Progress::Next(*next),
        None if answers.iter().any(|a| a.effect() == Effect::ApplyOthers) => {
            Progress::Settled(Effect::ApplyOthers)
        }
        None => Progress::Settled(Effect::Apply),
    }
}

/// What the answers to a hold's parts mean for each of its reasons: the
/// reasons whose records are left out, and the keys to remember as
/// accepted and as declined.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decided {
    pub withheld: Vec<HoldReason>,
    pub accepts: Vec<String>,
    pub declines: Vec<String>,
}

/// Sorts `reasons` by the answer given to their part; a reason whose part
/// has no answer in `answers` is applied and remembers nothing.
pub fn decide(reasons: &[HoldReason], answers: &[HoldAnswer]) -> Decided {
    let mut decided = Decided::default();
    for reason in reasons {
        let kind = HoldKind::of_reason(reason);
        match answers
            .iter()
            .find(|a| a.kind() == kind)
            .map(|a| a.effect())
        {
            Some(Effect::ApplyOthers) => {
                decided.declines.extend(reason.acceptances());
                decided.withheld.push(reason.clone());
            }
            Some(Effect::Apply) => decided.accepts.extend(reason.acceptances()),
            _ => {}
        }
    }
    decided
}

impl ChangeSet {
    /// This change set less the creates and updates `reasons` are about,
    /// and those records, each with the side it was on.
    pub fn without(&self, reasons: &[HoldReason]) -> (ChangeSet, Vec<(Change, Record)>) {
        let held = |change, record: &Record| reasons.iter().any(|r| r.concerns(change, record));
        let mut left_out = Vec::new();
        let mut creates = Vec::with_capacity(self.creates.len());
        for (record, hash) in &self.creates {
            if held(Change::Create, record) {
                left_out.push((Change::Create, record.clone()));
            } else {
                creates.push((record.clone(), *hash));
            }
        }
        let mut updates = Vec::with_capacity(self.updates.len());
        for update in &self.updates {
            if held(Change::Update, &update.record) {
                left_out.push((Change::Update, update.record.clone()));
            } else {
                updates.push(update.clone());
            }
        }
        let changes = ChangeSet {
            creates,
            updates,
            removals: self.removals.clone(),
        };
        (changes, left_out)
    }
}

/// The issue for a record left out because an operator answered "Don't
/// create" to a hold about it.
pub fn declined_issue(record: &Record) -> Option<Issue> {
    const MESSAGE: &str = "Not created: an operator answered \"Don't create\" to a hold about this contact; it is asked about again when the contact's details change";
    match record {
        Record::Person(person) => Some(person_issue(person, Rule::Declined, MESSAGE.into())),
        Record::Relationship(relationship) => {
            let Relationship {
                student, contact, ..
            } = relationship;
            let (_, key) = identity(record)?;
            Some(Issue {
                source_id: shown_key(&key),
                entity_type: "Relationship".into(),
                entity_name: format!("{contact}, contact of {student}"),
                mis_id: String::new(),
                message: MESSAGE.into(),
                rule: Rule::Declined,
                role: None,
            })
        }
        _ => None,
    }
}

/// Why an answer to a hold was not taken: decided by the store (which
/// checks in the answer's own transaction) or by the host before it, and
/// told to the operator in these words wherever it is asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("hold {0} was already answered")]
    Answered(i64),
    #[error(
        "hold {hold} changed after revision {reviewed} was reviewed: revision {current} replaced it, so nothing was applied; review that one and confirm it by name"
    )]
    RevisionNotCurrent {
        hold: i64,
        reviewed: String,
        current: String,
    },
    #[error(
        "hold {hold} is a {kind} hold, which does not offer the answer {answer:?}; `rostersync holds show {hold}` lists its answers"
    )]
    NotOffered {
        hold: i64,
        answer: String,
        kind: String,
    },
}

/// Which side of a change set a record is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Create,
    Update,
    Remove,
}

impl HoldReason {
    /// Whether this reason is about `record`, created, updated or removed
    /// (a removal named by the stored record it removes): what the
    /// evidence lists and what "Don't create" leaves out.
    pub fn concerns(&self, change: Change, record: &Record) -> bool {
        use crate::holds::Population;
        match self {
            HoldReason::TooManyRemovals { of, .. } => {
                change == Change::Remove && Population::of(record) == Some(*of)
            }
            HoldReason::RemovalsInBlackout { .. } => change == Change::Remove,
            HoldReason::TooManyUpdates { of, .. } => {
                change == Change::Update && Population::of(record) == Some(*of)
            }
            HoldReason::TooManyContacts { students, .. } => {
                change != Change::Remove
                    && match record {
                        Record::Relationship(r) => {
                            students.iter().any(|s| s.student.id == r.student)
                        }
                        _ => false,
                    }
            }
            HoldReason::ContactTypesNotAccepted { contacts } => {
                change != Change::Remove
                    && match record {
                        Record::Relationship(r) => contacts
                            .iter()
                            .any(|c| c.student.id == r.student && c.contact.id == r.contact),
                        Record::Person(p) => {
                            change == Change::Create
                                && contacts.iter().any(|c| c.contact.id == p.id)
                        }
                        _ => false,
                    }
            }
            HoldReason::Disconnected { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::holds::Population;
    use rostersync_model::Role;

    #[test]
    fn each_type_offers_its_own_answers_and_reads_back_what_it_stored() {
        let labels =
            |kind: HoldKind| -> Vec<&str> { kind.answers().iter().map(|a| a.label()).collect() };
        assert_eq!(labels(HoldKind::Removals), ["Confirm removals", "Reject"]);
        assert_eq!(
            labels(HoldKind::Contacts),
            ["Create accounts", "Don't create"]
        );
        assert_eq!(labels(HoldKind::Disconnected), ["I fixed it"]);
        for kind in HoldKind::ALL {
            for answer in kind.answers() {
                assert_eq!(HoldAnswer::from_stored(&answer.stored()), Some(*answer));
                assert_eq!(answer.kind(), kind);
            }
        }
        assert_eq!(
            HoldAnswer::parse(HoldKind::Contacts, "confirm-removals"),
            None
        );
        assert_eq!(HoldAnswer::parse(HoldKind::Disconnected, "reject"), None);
        assert_eq!(HoldAnswer::from_stored("removals/create-accounts"), None);
    }

    #[test]
    fn a_hold_takes_the_type_of_its_reasons() {
        let removals = HoldReason::TooManyRemovals {
            of: Population::People(Role::Student),
            removals: 3,
            population: 10,
        };
        let updates = HoldReason::TooManyUpdates {
            of: Population::People(Role::Student),
            updates: 9,
            population: 10,
        };
        let lost = HoldReason::Disconnected {
            consecutive_failures: 3,
        };
        assert_eq!(HoldKind::of(&[]), None);
        assert_eq!(
            HoldKind::of(std::slice::from_ref(&removals)),
            Some(HoldKind::Removals)
        );
        assert_eq!(
            HoldKind::of(&[updates.clone(), removals.clone()]),
            Some(HoldKind::Removals),
            "a mixed hold is answered removals first"
        );
        assert_eq!(
            HoldKind::parts(&[updates, removals.clone()]),
            [HoldKind::Removals, HoldKind::Changes]
        );
        assert_eq!(
            HoldKind::of(&[removals, lost]),
            Some(HoldKind::Disconnected)
        );
        assert_eq!(HoldKind::of_json("not json"), Some(HoldKind::Changes));
    }

    #[test]
    fn parts_are_answered_in_turn_and_an_answer_that_applies_nothing_settles_the_hold() {
        use Effect::*;
        let parts = [HoldKind::Removals, HoldKind::Contacts];
        let confirm = HoldAnswer::Removals(RemovalsAnswer::ConfirmRemovals);
        let reject = HoldAnswer::Removals(RemovalsAnswer::Reject);
        let create = HoldAnswer::Contacts(ContactsAnswer::CreateAccounts);
        let decline = HoldAnswer::Contacts(ContactsAnswer::DontCreate);
        assert_eq!(progress(&parts, &[]), Progress::Next(HoldKind::Removals));
        assert_eq!(
            progress(&parts, &[confirm]),
            Progress::Next(HoldKind::Contacts)
        );
        assert_eq!(progress(&parts, &[reject]), Progress::Settled(Discard));
        assert_eq!(
            progress(&parts, &[confirm, create]),
            Progress::Settled(Apply)
        );
        assert_eq!(
            progress(&parts, &[confirm, decline]),
            Progress::Settled(ApplyOthers)
        );
        assert_eq!(
            progress(&[HoldKind::Contacts], &[decline]),
            Progress::Settled(ApplyOthers)
        );
    }

    #[test]
    fn each_reason_follows_the_answer_to_its_part() {
        use crate::holds::{HeldContact, Named};
        use rostersync_model::ContactType;
        let removals = HoldReason::TooManyRemovals {
            of: Population::People(Role::Staff),
            removals: 15,
            population: 20,
        };
        let contacts = HoldReason::ContactTypesNotAccepted {
            contacts: vec![HeldContact {
                student: Named::unnamed("P1"),
                contact: Named::unnamed("C9"),
                relationship: None,
                contact_type: ContactType::Emergency,
            }],
        };
        let reasons = [removals, contacts.clone()];
        let confirm = HoldAnswer::Removals(RemovalsAnswer::ConfirmRemovals);
        let declined = decide(
            &reasons,
            &[confirm, HoldAnswer::Contacts(ContactsAnswer::DontCreate)],
        );
        assert_eq!(declined.withheld, std::slice::from_ref(&contacts));
        assert_eq!(declined.declines, contacts.acceptances());
        assert!(declined.accepts.is_empty());
        let created = decide(
            &reasons,
            &[
                confirm,
                HoldAnswer::Contacts(ContactsAnswer::CreateAccounts),
            ],
        );
        assert!(created.withheld.is_empty() && created.declines.is_empty());
        assert_eq!(created.accepts, contacts.acceptances());
    }

    #[test]
    fn a_stored_hold_whose_reasons_lack_its_type_is_one_part_of_that_type() {
        let mixed = serde_json::to_string(&[
            HoldReason::TooManyRemovals {
                of: Population::People(Role::Staff),
                removals: 15,
                population: 20,
            },
            HoldReason::TooManyUpdates {
                of: Population::People(Role::Staff),
                updates: 19,
                population: 20,
            },
        ])
        .unwrap();
        assert_eq!(
            HoldKind::parts_of_hold(HoldKind::Removals, &[], &mixed),
            [HoldKind::Removals, HoldKind::Changes]
        );
        assert_eq!(
            HoldKind::parts_of_hold(HoldKind::Changes, &[], &mixed),
            [HoldKind::Changes],
            "typed before holds had parts"
        );
        assert_eq!(
            HoldKind::parts_of_hold(HoldKind::Contacts, &[], "[]"),
            [HoldKind::Contacts],
            "a revision that waits only because the hold was open"
        );
    }
}
