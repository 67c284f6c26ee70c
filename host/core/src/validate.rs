//! Validation policies: which records a connection syncs. Each rule is a
//! named, documented setting with a default (the README's "Validation
//! policies" lists them, checked against [`ValidationPolicy`] by a test).
//! A record that fails is left out and reported as an issue naming its
//! [`Rule`], never silently dropped, and the version stored earlier is
//! kept: bad data at the source never deletes an account. A record that
//! is simply out of scope (a leaver past the window) becomes a removal.
//!
//! The defaults fit every provider the host reads: Clever, OneRoster and
//! Xporter staff have no start date (Clever v3.0 `roles.teacher`, OneRoster
//! 1.1 `users.csv`), so none is required unless a connection asks; Clever
//! and OneRoster carry a pupil's year on the pupil (`grade`, `grades`), not
//! as a year-group record, so the pupil's own year (or their registration
//! group's) is enough; and Clever gives a contact's full name in one field
//! (<https://dev.clever.com/docs/student-contacts>: "a contact's full name
//! is stored in the last_name field").
//!
//! People are checked against the groups known so far (stored ones and
//! those read in this run). A person whose group has not arrived yet waits
//! until [`Validator::finish`], so the order a connector sends things in
//! does not matter.

use std::collections::{BTreeMap, HashMap};

use rostersync_model::{Date, EnrolmentStatus, Group, GroupKind, Person, Record, Removal, Role};
use serde::{Deserialize, Serialize};

use crate::entity::{EntityKey, EntityKind};
use crate::policy::Rule;

/// A connection's validation settings. Every field is documented, with
/// its default and why, in the README's "Validation policies".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationPolicy {
    /// Every person must have a salutation (Mr, Ms, Dr, ...).
    pub require_salutation: bool,
    /// Roles that log in, and so must have an email address.
    pub require_email_for: Vec<Role>,
    /// Students and staff must have a start date.
    pub require_start_date: bool,
    /// Pupils on roll must have a year: their own `year-group`, or their
    /// registration group's year.
    pub require_year_group: bool,
    /// Pupils on roll must sit in an active registration group the
    /// connection reads.
    pub require_registration_group: bool,
    /// A contact whose provider gives the whole name in one field (first
    /// or last) is valid when that field holds a full name.
    pub contact_name_in_one_field: bool,
    /// Use the preferred forename, when there is one, as the first name.
    pub use_preferred_first_name: bool,
    /// Applicants must come with admission details. Off: a provider that
    /// sends none (Scholarpack's students list has no application block)
    /// would otherwise leave out every applicant; details that do come are
    /// always checked.
    pub require_admission_details: bool,
    /// Admission statuses an applicant may have (compared ignoring case).
    pub allowed_admission_statuses: Vec<String>,
    /// Leavers are synced for this many months after their leaving date.
    pub leaver_window_months: u32,
    /// A run that leaves out more than this share of one role's people
    /// ends `incomplete`: nothing destructive is applied.
    pub incomplete_share: f64,
    /// ... but only once at least this many people of the role are left
    /// out, so a tiny school's two bad records do not stop it.
    pub incomplete_min_people: usize,
}

impl Default for ValidationPolicy {
    fn default() -> Self {
        Self {
            require_salutation: false,
            require_email_for: Vec::new(),
            require_start_date: false,
            require_year_group: true,
            require_registration_group: false,
            contact_name_in_one_field: true,
            use_preferred_first_name: true,
            require_admission_details: false,
            allowed_admission_statuses: vec![
                "Offer accepted".into(),
                "Accepted".into(),
                "Admitted".into(),
            ],
            leaver_window_months: 12,
            incomplete_share: 0.2,
            incomplete_min_people: 10,
        }
    }
}

/// One record left out, in the columns schools know, with the rule that
/// left it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub source_id: String,
    pub entity_type: String,
    pub entity_name: String,
    pub mis_id: String,
    pub message: String,
    pub rule: Rule,
    /// The person's role, when the issue is about a person.
    pub role: Option<Role>,
}

/// How many people of each role a read held, and how many of them each
/// rule left out: what decides whether a run is complete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub read: BTreeMap<Role, usize>,
    pub left_out: BTreeMap<(Role, Rule), usize>,
}

impl Tally {
    pub fn read(&mut self, role: Role) {
        *self.read.entry(role).or_default() += 1;
    }

    pub fn leave_out(&mut self, role: Role, rule: Rule) {
        *self.left_out.entry((role, rule)).or_default() += 1;
    }

    /// People of `role` left out, by any rule.
    pub fn left_out_of(&self, role: Role) -> usize {
        self.left_out
            .iter()
            .filter(|((r, _), _)| *r == role)
            .map(|(_, n)| n)
            .sum()
    }
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
    tally: Tally,
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
            tally: Tally::default(),
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
                Record::Person(person) => {
                    self.tally.read(person.role);
                    self.check_person(person, false)
                }
                Record::Group(group) => self.check_group(group),
                other => Verdict::Sync(other),
            };
            self.settle(verdict, &mut checked);
        }
        checked
    }

    /// Checks the people who waited for their groups; with them, how many
    /// people of each role the read held and left out.
    pub fn finish(mut self) -> (Checked, Tally) {
        let mut checked = Checked::default();
        for person in std::mem::take(&mut self.waiting) {
            let verdict = self.check_person(person, true);
            self.settle(verdict, &mut checked);
        }
        (checked, self.tally)
    }

    fn settle(&mut self, verdict: Verdict, checked: &mut Checked) {
        match verdict {
            Verdict::Sync(record) => checked.records.push(record),
            Verdict::OutOfScope(removal) => checked.records.push(Record::Removed(removal)),
            Verdict::Invalid(kind, issue) => {
                if let Some(role) = issue.role {
                    self.tally.leave_out(role, issue.rule);
                }
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
                    rule: Rule::ClassName,
                    role: None,
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
        if let Some((rule, message)) = self.missing(&person) {
            return invalid_person(&person, rule, message.into());
        }
        if person.role != Role::Student {
            return Verdict::Sync(Record::Person(person));
        }
        match person.enrolment {
            None => invalid_person(
                &person,
                Rule::EnrolmentStatus,
                "Missing enrolment status".into(),
            ),
            Some(EnrolmentStatus::OnRoll) => self.check_current_pupil(person, last_chance),
            Some(EnrolmentStatus::Prospective) => self.check_applicant(person, last_chance),
            Some(EnrolmentStatus::Left) => self.check_leaver(person),
        }
    }

    /// The first required field a person lacks, with the rule requiring it.
    fn missing(&self, person: &Person) -> Option<(Rule, &'static str)> {
        let has_first = !blank(&person.first_name);
        let has_last = !blank(&person.last_name);
        let full_name_in_one = |field: &Option<String>| {
            field
                .as_deref()
                .is_some_and(|name| name.split_whitespace().count() >= 2)
        };
        let one_field_will_do = person.role == Role::Contact
            && self.policy.contact_name_in_one_field
            && (full_name_in_one(&person.first_name) || full_name_in_one(&person.last_name));
        if !has_first && !one_field_will_do {
            Some((Rule::RequiredNames, "Missing first name"))
        } else if !has_last && !one_field_will_do {
            Some((Rule::RequiredNames, "Missing last name"))
        } else if self.policy.require_start_date
            && person.role != Role::Contact
            && person.start_date.is_none()
        {
            Some((
                Rule::RequireStartDate,
                "Missing start date, which this connection requires",
            ))
        } else if self.policy.require_salutation && blank(&person.salutation) {
            Some((
                Rule::RequireSalutation,
                "Missing salutation, which this connection requires",
            ))
        } else if self.policy.require_email_for.contains(&person.role) && blank(&person.email) {
            Some((
                Rule::RequireEmailFor,
                "Missing email, which this connection needs for login",
            ))
        } else {
            None
        }
    }

    /// A pupil on roll: in a year (their own, or their registration
    /// group's), and in an active registration group where the connection
    /// requires one.
    fn check_current_pupil(&self, person: Person, last_chance: bool) -> Verdict {
        let registration = person.registration_group.as_deref();
        let own_year = !blank(&person.year_group);
        let group = registration.and_then(|id| self.group(id));
        let group_matters =
            self.policy.require_registration_group || (self.policy.require_year_group && !own_year);
        if group_matters && registration.is_some() && group.is_none() && !last_chance {
            return Verdict::Wait(person);
        }
        if self.policy.require_registration_group
            && let Err(problem) = usable_group(registration, group, GroupKind::Registration)
        {
            return invalid_person(&person, Rule::RequireRegistrationGroup, problem);
        }
        if self.policy.require_year_group && !own_year {
            let group_year = group.is_some_and(|g| {
                g.year_group.is_some()
                    || g.parent
                        .as_deref()
                        .and_then(|p| self.group(p))
                        .is_some_and(|p| p.kind == GroupKind::Year)
            });
            if !group_year {
                let problem = match (registration, group) {
                    (None, _) => "Not in a year group or a registration group".to_string(),
                    (Some(id), None) => format!(
                        "Not in a year group, and the registration group {id:?} is not synced"
                    ),
                    (Some(id), Some(_)) => {
                        format!(
                            "Not in a year group, and the registration group {id:?} has no year"
                        )
                    }
                };
                return invalid_person(&person, Rule::RequireYearGroup, problem);
            }
        }
        Verdict::Sync(Record::Person(person))
    }

    fn check_applicant(&self, person: Person, last_chance: bool) -> Verdict {
        let rule = Rule::AllowedAdmissionStatuses;
        let Some(admission) = person.admission.clone() else {
            if !self.policy.require_admission_details {
                return Verdict::Sync(Record::Person(person));
            }
            return invalid_person(
                &person,
                Rule::RequireAdmissionDetails,
                "Applicant has no admission details".into(),
            );
        };
        if !admission.application_active {
            return invalid_person(&person, rule, "Application is not active".into());
        }
        if admission
            .admission_date
            .is_some_and(|date| date <= self.today)
        {
            return invalid_person(
                &person,
                rule,
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
                rule,
                format!("Admission status {status:?} is not one this connection syncs"),
            );
        }
        // An intake group named by a provider that sends no intake group
        // records is enough; one it does send must be an active intake group.
        let intake = admission.intake_group.as_deref();
        let group = intake.and_then(|id| self.group(id));
        match (intake, group) {
            (None, _) => invalid_person(&person, rule, "Not in an intake group".into()),
            (Some(_), None) if !last_chance => Verdict::Wait(person),
            (Some(_), None) => Verdict::Sync(Record::Person(person)),
            (Some(_), Some(_)) => match usable_group(intake, group, GroupKind::Intake) {
                Ok(()) => Verdict::Sync(Record::Person(person)),
                Err(problem) => invalid_person(&person, rule, problem),
            },
        }
    }

    fn check_leaver(&self, person: Person) -> Verdict {
        let Some(left) = person.leaving_date else {
            return invalid_person(
                &person,
                Rule::LeaverWindowMonths,
                "Leaver has no leaving date".into(),
            );
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

fn blank(value: &Option<String>) -> bool {
    value.as_deref().is_none_or(|v| v.trim().is_empty())
}

/// Whether the group `id` names (found as `group`) is an active group of
/// `kind`; else the problem in words.
fn usable_group(
    id: Option<&str>,
    group: Option<&GroupFacts>,
    kind: GroupKind,
) -> Result<(), String> {
    let what = match kind {
        GroupKind::Intake => "intake group",
        _ => "registration group",
    };
    let Some(id) = id else {
        return Err(format!("Not in a {what}"));
    };
    let Some(group) = group else {
        return Err(format!("The {what} {id:?} is not synced"));
    };
    if group.kind != kind {
        let article = if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        return Err(format!("{id:?} is not {article} {what}"));
    }
    if !group.active {
        return Err(format!("The {what} {id:?} is not active"));
    }
    Ok(())
}

fn invalid_person(person: &Person, rule: Rule, message: String) -> Verdict {
    Verdict::Invalid(EntityKind::Person, person_issue(person, rule, message))
}

/// A person's role as the columns schools know name it.
pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::Student => "Student",
        Role::Staff => "Staff",
        Role::Contact => "Contact",
    }
}

/// A person's name as an issue shows it.
pub fn person_name(person: &Person) -> String {
    [person.first_name.as_deref(), person.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
}

/// An issue about a person, in the columns schools know.
pub(crate) fn person_issue(person: &Person, rule: Rule, message: String) -> Issue {
    Issue {
        source_id: person.id.clone(),
        entity_type: role_label(person.role).into(),
        entity_name: person_name(person),
        mis_id: person.mis_id.clone().unwrap_or_default(),
        message,
        rule,
        role: Some(person.role),
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
        let (rest, _) = validator.finish();
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
    fn names_are_required_and_reported_in_school_columns() {
        let mut no_first = pupil("S1");
        no_first.first_name = Some("  ".into());
        let mut no_last = pupil("S2");
        no_last.last_name = None;
        let mut contact = Person::new("C1", Role::Contact);
        contact.first_name = Some("Bethany".into());
        contact.last_name = Some("Shields".into());
        let checked = check(
            ValidationPolicy::default(),
            vec![no_first, no_last, contact],
        );
        assert_eq!(
            messages(&checked),
            vec!["Missing first name", "Missing last name"]
        );
        assert_eq!(
            checked.issues[1],
            Issue {
                source_id: "S2".into(),
                entity_type: "Student".into(),
                entity_name: "Siobhán".into(),
                mis_id: "UPN-S2".into(),
                message: "Missing last name".into(),
                rule: Rule::RequiredNames,
                role: Some(Role::Student),
            }
        );
        assert_eq!(checked.records.len(), 1);
        assert_eq!(checked.retained.len(), 2);
    }

    fn staff_member(id: &str) -> Person {
        let mut person = Person::new(id, Role::Staff);
        person.first_name = Some("Grace".into());
        person.last_name = Some("Hopper".into());
        person
    }

    #[test]
    fn a_start_date_is_required_only_where_the_connection_asks() {
        let mut no_start = pupil("S1");
        no_start.start_date = None;
        let people = vec![no_start, staff_member("T1")];
        let relaxed = check(ValidationPolicy::default(), people.clone());
        assert!(relaxed.issues.is_empty(), "{:?}", relaxed.issues);
        assert_eq!(relaxed.records.len(), 2);
        let strict = ValidationPolicy {
            require_start_date: true,
            ..ValidationPolicy::default()
        };
        let checked = check(strict, people);
        assert_eq!(checked.issues.len(), 2);
        assert!(
            checked
                .issues
                .iter()
                .all(|i| i.rule == Rule::RequireStartDate
                    && i.message == "Missing start date, which this connection requires")
        );
    }

    #[test]
    fn a_contact_with_the_full_name_in_one_field_is_valid() {
        // Clever v3.0 gives a contact's full name in `name.last` only.
        let mut clever = Person::new("C1", Role::Contact);
        clever.last_name = Some("Mary Ó Súilleabháin".into());
        let mut one_word = Person::new("C2", Role::Contact);
        one_word.last_name = Some("Mary".into());
        let mut pupil_one_field = pupil("S1");
        pupil_one_field.first_name = None;
        pupil_one_field.last_name = Some("Siobhán O'Brien".into());
        let checked = check(
            ValidationPolicy::default(),
            vec![clever.clone(), one_word, pupil_one_field],
        );
        assert_eq!(checked.records, vec![Record::Person(clever.clone())]);
        assert_eq!(
            messages(&checked),
            vec!["Missing first name", "Missing first name"]
        );
        let strict = ValidationPolicy {
            contact_name_in_one_field: false,
            ..ValidationPolicy::default()
        };
        assert_eq!(
            messages(&check(strict, vec![clever])),
            vec!["Missing first name"]
        );
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
    fn a_pupils_own_year_or_their_registration_groups_year_will_do() {
        let with = |group: Option<&str>, year: Option<&str>| {
            let mut p = pupil("S1");
            p.registration_group = group.map(Into::into);
            p.year_group = year.map(Into::into);
            p
        };
        // Clever and OneRoster: the year on the pupil, no year-group records.
        let mut validator = Validator::new(ValidationPolicy::default(), today(), Vec::new());
        let checked = validator.check_batch(vec![Record::Person(with(None, Some("7")))]);
        assert_eq!(checked.records.len(), 1, "{:?}", checked.issues);
        for good in [
            with(Some("7A"), None),
            with(Some("7Z"), Some("Year 7")),
            with(Some("9Q"), Some("Year 9")),
        ] {
            assert!(
                check(ValidationPolicy::default(), vec![good.clone()])
                    .issues
                    .is_empty(),
                "{good:?}"
            );
        }
        let cases = [
            (
                with(None, None),
                "Not in a year group or a registration group",
            ),
            (
                with(Some("7Z"), None),
                "Not in a year group, and the registration group \"7Z\" has no year",
            ),
            (
                with(Some("9Q"), None),
                "Not in a year group, and the registration group \"9Q\" is not synced",
            ),
        ];
        for (person, message) in cases {
            let checked = check(ValidationPolicy::default(), vec![person]);
            assert_eq!(messages(&checked), vec![message]);
            assert_eq!(checked.issues[0].rule, Rule::RequireYearGroup);
        }
        let mut no_status = pupil("S1");
        no_status.enrolment = None;
        assert_eq!(
            messages(&check(ValidationPolicy::default(), vec![no_status])),
            vec!["Missing enrolment status"]
        );
    }

    #[test]
    fn an_active_registration_group_is_required_where_the_connection_asks() {
        let policy = ValidationPolicy {
            require_registration_group: true,
            ..ValidationPolicy::default()
        };
        let with = |group: Option<&str>| {
            let mut p = pupil("S1");
            p.registration_group = group.map(Into::into);
            p.year_group = Some("Year 7".into());
            p
        };
        assert!(
            check(policy.clone(), vec![with(Some("7A"))])
                .issues
                .is_empty()
        );
        let cases = [
            (with(None), "Not in a registration group"),
            (
                with(Some("7B")),
                "The registration group \"7B\" is not active",
            ),
            (with(Some("Y7")), "\"Y7\" is not a registration group"),
            (
                with(Some("9Q")),
                "The registration group \"9Q\" is not synced",
            ),
        ];
        for (person, message) in cases {
            let checked = check(policy.clone(), vec![person]);
            assert_eq!(messages(&checked), vec![message]);
            assert_eq!(checked.issues[0].rule, Rule::RequireRegistrationGroup);
        }
    }

    #[test]
    fn the_tally_counts_people_read_and_left_out_per_role_and_rule() {
        let mut no_year = pupil("S2");
        no_year.registration_group = None;
        let mut validator = Validator::new(ValidationPolicy::default(), today(), school());
        validator.check_batch(vec![
            Record::Person(pupil("S1")),
            Record::Person(no_year),
            Record::Person(staff_member("T1")),
        ]);
        let (_, tally) = validator.finish();
        assert_eq!(
            tally.read,
            BTreeMap::from([(Role::Student, 2), (Role::Staff, 1)])
        );
        assert_eq!(
            tally.left_out,
            BTreeMap::from([((Role::Student, Rule::RequireYearGroup), 1)])
        );
        assert_eq!(tally.left_out_of(Role::Student), 1);
        assert_eq!(tally.left_out_of(Role::Staff), 0);
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
        let (last, _) = validator.finish();
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
            ..good.clone()
        };
        // An intake group by name only, as Wonde's application details give it.
        let named_only = Admission {
            intake_group: Some("Year 7 Sept 2027".into()),
            ..good.clone()
        };
        assert!(
            check(
                ValidationPolicy::default(),
                vec![applicant(undated), applicant(named_only)]
            )
            .issues
            .is_empty()
        );
        let none = Admission {
            intake_group: None,
            ..good
        };
        assert_eq!(
            messages(&check(ValidationPolicy::default(), vec![applicant(none)])),
            vec!["Not in an intake group"]
        );
    }

    #[test]
    fn an_applicant_without_admission_details_syncs_unless_the_connection_requires_them() {
        // Scholarpack's students list marks applicants but carries no
        // application block.
        let mut bare = pupil("A2");
        bare.enrolment = Some(EnrolmentStatus::Prospective);
        bare.registration_group = None;
        let synced = check(ValidationPolicy::default(), vec![bare.clone()]);
        assert!(synced.issues.is_empty());
        assert_eq!(synced.records.len(), 1);
        let strict = ValidationPolicy {
            require_admission_details: true,
            ..ValidationPolicy::default()
        };
        let left_out = check(strict, vec![bare]);
        assert_eq!(
            messages(&left_out),
            vec!["Applicant has no admission details"]
        );
        assert_eq!(left_out.issues[0].rule, Rule::RequireAdmissionDetails);
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
