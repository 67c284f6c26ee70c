//! What an operator can answer to a hold, by the hold's type, as Remind
//! offers it: a removals hold is confirmed or rejected; a contacts hold
//! creates the held contacts' accounts or does not; a disconnected hold is
//! answered "I fixed it", which closes it and runs the connection again.
//!
//! A hold's type follows the reasons of its current revision. Each type's
//! answers are an enum of their own, so an answer that does not belong to
//! a hold cannot be written down; the store keeps them as `type/answer`
//! words and decodes them here, once.

use std::fmt;

use rostersync_model::Record;
use serde::{Deserialize, Serialize};

use crate::holds::HoldReason;

/// What kind of hold an operator answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HoldKind {
    /// Too many removals, or removals during an additions-only blackout.
    Removals,
    /// Contacts beyond the accepted contact types or the count per pupil.
    Contacts,
    /// Too many updates, or reasons of more than one type together.
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

    /// The type of a revision with these reasons; `None` when it tripped
    /// nothing itself (it waits because the hold was open), so the hold
    /// keeps the type it had.
    pub fn of(reasons: &[HoldReason]) -> Option<HoldKind> {
        if reasons.is_empty() {
            return None;
        }
        if reasons
            .iter()
            .any(|r| matches!(r, HoldReason::Disconnected { .. }))
        {
            return Some(Self::Disconnected);
        }
        let kind = |reason: &HoldReason| match reason {
            HoldReason::TooManyRemovals { .. } | HoldReason::RemovalsInBlackout { .. } => {
                Self::Removals
            }
            HoldReason::TooManyContacts { .. } | HoldReason::ContactTypesNotAccepted { .. } => {
                Self::Contacts
            }
            HoldReason::TooManyUpdates { .. } | HoldReason::Disconnected { .. } => Self::Changes,
        };
        let first = kind(&reasons[0]);
        Some(if reasons.iter().all(|r| kind(r) == first) {
            first
        } else {
            Self::Changes
        })
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
            Self::Changes => "Changes held",
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
            HoldKind::of(&[removals.clone(), updates]),
            Some(HoldKind::Changes)
        );
        assert_eq!(
            HoldKind::of(&[removals, lost]),
            Some(HoldKind::Disconnected)
        );
        assert_eq!(HoldKind::of_json("not json"), Some(HoldKind::Changes));
    }
}
