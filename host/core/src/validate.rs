//! Validation policies: which records a connection syncs. Each rule is a
//! named, documented setting with a default. A record that fails is left
//! out and reported as an issue, never silently dropped, and the version
//! stored earlier is kept: bad data at the source never deletes an account.
//! A record that is simply out of scope (a leaver past the window) becomes
//! a removal.
//!
//! People are checked against the groups known so far (stored ones and
//! those read in this run). A person whose group has not arrived yet waits
//! until [`Validator::finish`], so the order a connector sends things in
//! does not matter.

use std::collections::HashMap;

use rostersync_model::{Date, EnrolmentStatus, Group, GroupKind, Person, Record, Removal, Role};
use serde::{Deserialize, Serialize};

use crate::entity::{EntityKey, EntityKind};

/// A connection's validation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationPolicy {
    /// Every person must have a salutation (Mr, Ms, Dr, ...).
    pub require_salutation: bool,
    /// Roles that log in, and so must have an email address.
    pub require_email_for: Vec<Role>,
    /// Use the preferred forename, when there is one, as the first name.
    pub use_preferred_first_name: bool,
    /// Admission statuses an applicant may have (compared ignoring case).
    pub allowed_admission_statuses: Vec<String>,
    /// Leavers are synced for this many months after their leaving date.
    pub leaver_window_months: u32,
}

impl Default for ValidationPolicy {
    fn default() -> Self {
        Self {
            require_salutation: false,
            require_email_for: Vec::new(),
            use_preferred_first_name: true,
            allowed_admission_statuses: vec!["Offer accepted".into(), "Admitted".into()],
            leaver_window_months: 12,
        }
    }
}

/// One record left out, in the columns schools know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub source_id: String,
    pub entity_type: String,
    pub entity_name: String,
    pub mis_id: String,
    pub message: String,
}

/// What a batch turned into.
#[derive(Debug, Default, PartialEq)]
pub struct Checked {
    /// To diff: valid records, and removals for records out of scope.
    pub records: Vec<Record>,
    /// Read but invalid: keep their stored version.
    pub retained: Vec<(EntityKind, EntityKey)>,
    pub issues: Vec<Issue>,
}

#[derive(Debug, Clone)]
struct GroupFacts {
    kind: GroupKind,
    active: bool,
    year_group: Option<String>,
    parent: Option<String>,
}

enum Verdict {
    Sync(Record),
    OutOfScope(Removal),
    Invalid(EntityKind, Issue),
    /// Its group is not known yet.
    Wait(Person),
}

pub struct Validator {
    policy: ValidationPolicy,
    today: Date,
    groups: HashMap<String, GroupFacts>,
    /// Group ids by name: several providers name a pupil's registration
    /// group and year by name, not by id.
    group_names: HashMap<String, String>,
    waiting: Vec<Person>,
}

impl Validator {
    /// `today` is the school's date; `known_groups` are the groups stored
    /// for the connection.
    pub fn new(
        policy: ValidationPolicy,
        today: Date,
        known_groups: impl IntoIterator<Item = Group>,
    ) -> Self {
        let mut validator = Self {
            policy,
            today,
            groups: HashMap::new(),
            group_names: HashMap::new(),
            waiting: Vec::new(),
        };
        for group in known_groups {
            validator.learn(&group);
        }
        validator
    }

    /// A known group by id, or else by name.
    fn group(&self, id_or_name: &str) -> Option<&GroupFacts> {
        self.groups.get(id_or_name).or_else(|| {
            self.group_names
                .get(id_or_name)
                .and_then(|id| self.groups.get(id))
        })
    }

    fn learn(&mut self, group: &Group) {
        if let Some(name) = &group.name {
            self.group_names.insert(name.clone(), group.id.clone());
        }
        self.groups.insert(
            group.id.clone(),
            GroupFacts {
                kind: group.kind,
                active: group.active,
                year_group: group.year_group.clone(),
                parent: group.parent.clone(),
            },
        );
    }

    pub fn check_batch(&mut self, batch: Vec<Record>) -> Checked {
        for record in &batch {
            if let Record::Group(group) = record {
                self.learn(group);
            }
        }
        let mut checked = Checked::default();
        for record in batch {
            let verdict = match record {
                Record::Person(person) => self.check_person(person, false),
                Record::Group(group) => self.check_group(group),
                other => Verdict::Sync(other),
            };
            self.settle(verdict, &mut checked);
        }
        checked
    }

    /// Checks the people who waited for their groups.
    pub fn finish(mut self) -> Checked {
        let mut checked = Checked::default();
        for person in std::mem::take(&mut self.waiting) {
            let verdict = self.check_person(person, true);
            self.settle(verdict, &mut checked);
        }
        checked
    }

    fn settle(&mut self, verdict: Verdict, checked: &mut Checked) {
        match verdict {
            Verdict::Sync(record) => checked.records.push(record),
            Verdict::OutOfScope(removal) => checked.records.push(Record::Removed(removal)),
            Verdict::Invalid(kind, issue) => {
                checked.retained.push((kind, issue.source_id.clone()));
                checked.issues.push(issue);
            }
            Verdict::Wait(person) => self.waiting.push(person),
        }
    }

    fn check_group(&self, group: Group) -> Verdict {
        if group.kind == GroupKind::Class
            && group.name.as_deref().is_none_or(|n| n.trim().is_empty())
        {
            return Verdict::Invalid(
                EntityKind::Group,
                Issue {
                    source_id: group.id.clone(),
                    entity_type: "Class".into(),
                    entity_name: group.code.clone().unwrap_or_default(),
                    mis_id: String::new(),
                    message: "Missing class name".into(),
                },
            );
        }
        Verdict::Sync(Record::Group(group))
    }

    fn check_person(&self, mut person: Person, last_chance: bool) -> Verdict {
        if self.policy.use_preferred_first_name
            && let Some(preferred) = person
                .preferred_first_name
                .clone()
                .filter(|p| !p.trim().is_empty())
        {
            person.first_name = Some(preferred);
        }
        let blank = |value: &Option<String>| value.as_deref().is_none_or(|v| v.trim().is_empty());
        let missing = if blank(&person.first_name) {
            Some("Missing first name")
        } else if blank(&person.last_name) {
            Some("Missing last name")
        } else if person.role != Role::Contact && person.start_date.is_none() {
            Some("Missing start date")
        } else if self.policy.require_salutation && blank(&person.salutation) {
            Some("Missing salutation, which this connection requires")
        } else if self.policy.require_email_for.contains(&person.role) && blank(&person.email) {
            Some("Missing email, which this connection needs for login")
        } else {
            None
        };
        if let Some(message) = missing {
            return invalid_person(&person, message.into());
        }
        if person.role != Role::Student {
            return Verdict::Sync(Record::Person(person));
        }
        match person.enrolment {
            None => invalid_person(&person, "Missing enrolment status".into()),
            Some(EnrolmentStatus::OnRoll) => {
                let group = person.registration_group.clone();
                let link = self.check_group_link(
                    group.as_deref(),
                    GroupKind::Registration,
                    "registration group",
                    last_chance,
                );
                by_group_link(person, link)
            }
            Some(EnrolmentStatus::Prospective) => self.check_applicant(person, last_chance),
            Some(EnrolmentStatus::Left) => self.check_leaver(person),
        }
    }

    /// Whether the group `id` is a usable group of `kind`: it exists, is
    /// active and is linked to a synced year group.
    fn check_group_link(
        &self,
        id: Option<&str>,
        kind: GroupKind,
        what: &str,
        last_chance: bool,
    ) -> GroupLink {
        let Some(id) = id else {
            return GroupLink::Unusable(format!("Not in a {what}"));
        };
        let Some(group) = self.group(id) else {
            return if last_chance {
                GroupLink::Unusable(format!("The {what} {id:?} is not synced"))
            } else {
                GroupLink::NotYetKnown
            };
        };
        if group.kind != kind {
            let article = if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            return GroupLink::Unusable(format!("{id:?} is not {article} {what}"));
        }
        if !group.active {
            return GroupLink::Unusable(format!("The {what} {id:?} is not active"));
        }
        let year = group.year_group.as_deref().or(group.parent.as_deref());
        let linked = year
            .and_then(|y| self.group(y))
            .is_some_and(|y| y.kind == GroupKind::Year);
        if !linked {
            return GroupLink::Unusable(format!(
                "The {what} {id:?} is not linked to a synced year group"
            ));
        }
        GroupLink::Usable
    }

    fn check_applicant(&self, person: Person, last_chance: bool) -> Verdict {
        let Some(admission) = person.admission.clone() else {
            return invalid_person(&person, "Applicant has no admission details".into());
        };
        if !admission.application_active {
            return invalid_person(&person, "Application is not active".into());
        }
        if admission
            .admission_date
            .is_some_and(|date| date <= self.today)
        {
            return invalid_person(
                &person,
                "Admission date has passed but the pupil is not on roll".into(),
            );
        }
        let status = admission.admission_status.unwrap_or_default();
        let allowed = self
            .policy
            .allowed_admission_statuses
            .iter()
            .any(|a| a.eq_ignore_ascii_case(status.trim()));
        if !allowed {
            return invalid_person(
                &person,
                format!("Admission status {status:?} is not one this connection syncs"),
            );
        }
        let link = self.check_group_link(
            admission.intake_group.as_deref(),
            GroupKind::Intake,
            "intake group",
            last_chance,
        );
        by_group_link(person, link)
    }

    fn check_leaver(&self, person: Person) -> Verdict {
        let Some(left) = person.leaving_date else {
            return invalid_person(&person, "Leaver has no leaving date".into());
        };
        let window_ends = left
            .checked_add_months(chrono::Months::new(self.policy.leaver_window_months))
            .unwrap_or(Date::MAX);
        if self.today > window_ends {
            Verdict::OutOfScope(Removal::Person(person.id))
        } else {
            Verdict::Sync(Record::Person(person))
        }
    }
}

/// A student whose group link decides what happens to them.
fn by_group_link(person: Person, link: GroupLink) -> Verdict {
    match link {
        GroupLink::Usable => Verdict::Sync(Record::Person(person)),
        GroupLink::NotYetKnown => Verdict::Wait(person),
        GroupLink::Unusable(problem) => invalid_person(&person, problem),
    }
}

enum GroupLink {
    Usable,
    /// The group may still arrive later in the read.
    NotYetKnown,
    Unusable(String),
}

fn invalid_person(person: &Person, message: String) -> Verdict {
    Verdict::Invalid(EntityKind::Person, person_issue(person, message))
}

/// An issue about a person, in the columns schools know.
pub(crate) fn person_issue(person: &Person, message: String) -> Issue {
    let entity_type = match person.role {
        Role::Student => "Student",
        Role::Staff => "Staff",
        Role::Contact => "Contact",
    };
    let name = [person.first_name.as_deref(), person.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    Issue {
        source_id: person.id.clone(),
        entity_type: entity_type.into(),
        entity_name: name,
        mis_id: person.mis_id.clone().unwrap_or_default(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::{Diff, Roster};
    use rostersync_model::Admission;

    fn today() -> Date {
        Date::from_ymd_opt(2026, 11, 22).unwrap()
    }

    fn group(id: &str, kind: GroupKind, year: Option<&str>, active: bool) -> Group {
        Group {
            id: id.into(),
            kind,
            name: Some(format!("Group {id}")),
            code: None,
            subject: None,
            year_group: year.map(Into::into),
            active,
            parent: None,
        }
    }

    /// Year 7 with its form 7A and intake group I7.
    fn school() -> Vec<Group> {
        vec![
            group("Y7", GroupKind::Year, None, true),
            group("7A", GroupKind::Registration, Some("Y7"), true),
            group("7B", GroupKind::Registration, Some("Y7"), false),
            group("7Z", GroupKind::Registration, None, true),
            group("I7", GroupKind::Intake, Some("Y7"), true),
        ]
    }

    fn pupil(id: &str) -> Person {
        let mut p = Person::new(id, Role::Student);
        p.first_name = Some("Siobhán".into());
        p.last_name = Some("O'Brien-Smith".into());
        p.mis_id = Some(format!("UPN-{id}"));
        p.start_date = Date::from_ymd_opt(2025, 9, 1);
        p.enrolment = Some(EnrolmentStatus::OnRoll);
        p.registration_group = Some("7A".into());
        p
    }

    fn check(policy: ValidationPolicy, people: Vec<Person>) -> Checked {
        let mut validator = Validator::new(policy, today(), school());
        let mut checked = validator.check_batch(people.into_iter().map(Record::Person).collect());
        let rest = validator.finish();
        checked.records.extend(rest.records);
        checked.retained.extend(rest.retained);
        checked.issues.extend(rest.issues);
        checked
    }

    fn messages(checked: &Checked) -> Vec<&str> {
        checked.issues.iter().map(|i| i.message.as_str()).collect()
    }

    #[test]
    fn a_valid_current_pupil_syncs() {
        let checked = check(ValidationPolicy::default(), vec![pupil("S1")]);
        assert_eq!(checked.records.len(), 1);
        assert!(checked.issues.is_empty() && checked.retained.is_empty());
    }

    #[test]
    fn names_and_start_dates_are_required_and_reported_in_school_columns() {
        let mut no_first = pupil("S1");
        no_first.first_name = Some("  ".into());
        let mut no_last = pupil("S2");
        no_last.last_name = None;
        let mut no_start = Person::new("T1", Role::Staff);
        no_start.first_name = Some("Grace".into());
        no_start.last_name = Some("Hopper".into());
        let mut contact = Person::new("C1", Role::Contact);
        contact.first_name = Some("Bethany".into());
        contact.last_name = Some("Shields".into());
        let checked = check(
            ValidationPolicy::default(),
            vec![no_first, no_last, no_start, contact],
        );
        assert_eq!(
            messages(&checked),
            vec![
                "Missing first name",
                "Missing last name",
                "Missing start date"
            ]
        );
        assert_eq!(
            checked.issues[1],
            Issue {
                source_id: "S2".into(),
                entity_type: "Student".into(),
                entity_name: "Siobhán".into(),
                mis_id: "UPN-S2".into(),
                message: "Missing last name".into(),
            }
        );
        assert_eq!(checked.records.len(), 1, "a contact needs no start date");
        assert_eq!(checked.retained.len(), 3);
    }

    #[test]
    fn salutation_and_login_email_are_required_when_the_connection_says() {
        let policy = ValidationPolicy {
            require_salutation: true,
            require_email_for: vec![Role::Student],
            ..ValidationPolicy::default()
        };
        let mut titled = pupil("S1");
        titled.salutation = Some("Miss".into());
        let checked = check(policy.clone(), vec![pupil("S2"), titled.clone()]);
        assert_eq!(
            messages(&checked),
            vec![
                "Missing salutation, which this connection requires",
                "Missing email, which this connection needs for login"
            ]
        );
        titled.email = Some("s1@school.example".into());
        assert!(check(policy, vec![titled]).issues.is_empty());
    }

    #[test]
    fn the_preferred_forename_becomes_the_first_name_unless_switched_off() {
        let mut shiv = pupil("S1");
        shiv.preferred_first_name = Some("Shiv".into());
        let first_name = |checked: Checked| match &checked.records[0] {
            Record::Person(p) => p.first_name.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            first_name(check(ValidationPolicy::default(), vec![shiv.clone()])).as_deref(),
            Some("Shiv")
        );
        let off = ValidationPolicy {
            use_preferred_first_name: false,
            ..ValidationPolicy::default()
        };
        assert_eq!(
            first_name(check(off, vec![shiv])).as_deref(),
            Some("Siobhán")
        );
    }

    #[test]
    fn groups_may_be_named_by_name_where_a_provider_gives_no_id() {
        let named = |id: &str, name: &str, kind, year: Option<&str>| Group {
            name: Some(name.into()),
            ..group(id, kind, year, true)
        };
        let groups = vec![
            named("A100", "Year 7", GroupKind::Year, None),
            named("A200", "7C", GroupKind::Registration, Some("Year 7")),
        ];
        let mut p = pupil("S1");
        p.registration_group = Some("7C".into());
        let mut validator = Validator::new(ValidationPolicy::default(), today(), groups);
        let checked = validator.check_batch(vec![Record::Person(p)]);
        assert!(checked.issues.is_empty(), "{:?}", checked.issues);
        assert_eq!(checked.records.len(), 1);
    }

    #[test]
    fn current_pupils_need_an_active_registration_group_linked_to_a_year() {
        let with = |group: Option<&str>, status: Option<EnrolmentStatus>| {
            let mut p = pupil("S1");
            p.registration_group = group.map(Into::into);
            p.enrolment = status;
            p
        };
        let cases = [
            (
                with(None, Some(EnrolmentStatus::OnRoll)),
                "Not in a registration group",
            ),
            (
                with(Some("7B"), Some(EnrolmentStatus::OnRoll)),
                "The registration group \"7B\" is not active",
            ),
            (
                with(Some("7Z"), Some(EnrolmentStatus::OnRoll)),
                "The registration group \"7Z\" is not linked to a synced year group",
            ),
            (
                with(Some("Y7"), Some(EnrolmentStatus::OnRoll)),
                "\"Y7\" is not a registration group",
            ),
            (
                with(Some("9Q"), Some(EnrolmentStatus::OnRoll)),
                "The registration group \"9Q\" is not synced",
            ),
            (with(Some("7A"), None), "Missing enrolment status"),
        ];
        for (person, message) in cases {
            assert_eq!(
                messages(&check(ValidationPolicy::default(), vec![person])),
                vec![message]
            );
        }
    }

    #[test]
    fn a_pupil_read_before_their_group_waits_for_it() {
        let mut validator = Validator::new(
            ValidationPolicy::default(),
            today(),
            vec![group("Y8", GroupKind::Year, None, true)],
        );
        let mut early = pupil("S1");
        early.registration_group = Some("8C".into());
        let first = validator.check_batch(vec![Record::Person(early)]);
        assert!(first.records.is_empty() && first.issues.is_empty());
        let second = validator.check_batch(vec![Record::Group(group(
            "8C",
            GroupKind::Registration,
            Some("Y8"),
            true,
        ))]);
        assert_eq!(second.records.len(), 1);
        let last = validator.finish();
        assert_eq!(last.records.len(), 1, "the pupil, once the group arrived");
        assert!(last.issues.is_empty());
    }

    fn applicant(admission: Admission) -> Person {
        let mut p = pupil("A1");
        p.enrolment = Some(EnrolmentStatus::Prospective);
        p.registration_group = None;
        p.admission = Some(admission);
        p
    }

    #[test]
    fn applicants_need_an_active_application_a_future_date_an_allowed_status_and_an_intake_group() {
        let good = Admission {
            application_active: true,
            admission_date: Date::from_ymd_opt(2027, 9, 1),
            admission_status: Some("offer accepted".into()),
            intake_group: Some("I7".into()),
        };
        assert!(
            check(ValidationPolicy::default(), vec![applicant(good.clone())])
                .issues
                .is_empty()
        );
        let cases = [
            (
                Admission {
                    application_active: false,
                    ..good.clone()
                },
                "Application is not active",
            ),
            (
                Admission {
                    admission_date: Some(today()),
                    ..good.clone()
                },
                "Admission date has passed but the pupil is not on roll",
            ),
            (
                Admission {
                    admission_status: Some("Waiting list".into()),
                    ..good.clone()
                },
                "Admission status \"Waiting list\" is not one this connection syncs",
            ),
            (
                Admission {
                    intake_group: Some("7A".into()),
                    ..good.clone()
                },
                "\"7A\" is not an intake group",
            ),
        ];
        for (admission, message) in cases {
            assert_eq!(
                messages(&check(
                    ValidationPolicy::default(),
                    vec![applicant(admission)]
                )),
                vec![message]
            );
        }
        let undated = Admission {
            admission_date: None,
            ..good
        };
        assert!(
            check(ValidationPolicy::default(), vec![applicant(undated)])
                .issues
                .is_empty()
        );
    }

    #[test]
    fn leavers_sync_within_the_window_and_are_removed_after_it() {
        let leaver = |left: Option<Date>| {
            let mut p = pupil("L1");
            p.enrolment = Some(EnrolmentStatus::Left);
            p.leaving_date = left;
            p
        };
        let recent = check(
            ValidationPolicy::default(),
            vec![leaver(Date::from_ymd_opt(2025, 12, 1))],
        );
        assert!(matches!(recent.records.as_slice(), [Record::Person(_)]));
        let long_gone = check(
            ValidationPolicy::default(),
            vec![leaver(Date::from_ymd_opt(2025, 11, 21))],
        );
        assert_eq!(
            long_gone.records,
            vec![Record::Removed(Removal::Person("L1".into()))]
        );
        assert!(long_gone.issues.is_empty());
        let narrow = ValidationPolicy {
            leaver_window_months: 6,
            ..ValidationPolicy::default()
        };
        assert!(matches!(
            check(narrow, vec![leaver(Date::from_ymd_opt(2026, 4, 1))]).records[0],
            Record::Removed(_)
        ));
        assert_eq!(
            messages(&check(ValidationPolicy::default(), vec![leaver(None)])),
            vec!["Leaver has no leaving date"]
        );
    }

    #[test]
    fn a_class_without_a_name_is_reported_not_imported() {
        let mut validator = Validator::new(ValidationPolicy::default(), today(), school());
        let mut unnamed = group("C1", GroupKind::Class, None, true);
        unnamed.name = None;
        unnamed.code = Some("10X/Ma1".into());
        let checked = validator.check_batch(vec![Record::Group(unnamed)]);
        assert!(checked.records.is_empty());
        assert_eq!(
            checked.retained,
            vec![(EntityKind::Group, "C1".to_string())]
        );
        assert_eq!(checked.issues[0].message, "Missing class name");
        assert_eq!(checked.issues[0].entity_name, "10X/Ma1");
    }

    #[test]
    fn bad_data_keeps_the_stored_version_and_out_of_scope_removes() {
        let stored =
            Roster::from_records([Record::Person(pupil("S1")), Record::Person(pupil("L1"))]);
        let mut broken = pupil("S1");
        broken.last_name = None;
        let mut leaver = pupil("L1");
        leaver.enrolment = Some(EnrolmentStatus::Left);
        leaver.leaving_date = Date::from_ymd_opt(2020, 7, 20);

        let mut validator = Validator::new(ValidationPolicy::default(), today(), school());
        let mut diff = Diff::full(stored.hashes());
        let checked = validator.check_batch(vec![Record::Person(broken), Record::Person(leaver)]);
        for (kind, key) in checked.retained {
            diff.retain(kind, key);
        }
        diff.add_batch(checked.records);
        let changes = diff.complete().with_previous(&Default::default());
        assert_eq!(
            changes.removals,
            vec![(EntityKind::Person, "L1".to_string())]
        );
        assert!(changes.updates.is_empty(), "S1 keeps its stored version");
    }
}
