//! Create mode and link mode: what to do with each valid person.
//!
//! Create mode provisions an account for every valid person. Link mode
//! never creates: it matches people to accounts that already exist (made by
//! hand, imported, or by another connection) by MIS id, email or username,
//! in the configured order, and reports every person it cannot match with
//! certainty. Matching is within the person's role first: real Wonde
//! contacts can carry their pupil's `mis_id` (a recorded response in
//! `rmcsharry/ep-richard:spec/webmocks/getStudentsFromWonde.json`), so a
//! contact must find the contact account, not collide with the pupil's.
//! Accounts of another role only explain why nobody matched. A removal at
//! the source unlinks in link mode and deprovisions in create mode.

use std::collections::HashMap;

use rostersync_model::{Person, Role};
use serde::{Deserialize, Serialize};

use crate::policy::Rule;
use crate::validate::{Issue, person_issue};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProvisionMode {
    Create,
    Link,
}

/// A field link mode may match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchKey {
    MisId,
    Email,
    Username,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatchPolicy {
    pub mode: ProvisionMode,
    /// Tried in this order; the first key that finds anyone decides.
    pub match_on: Vec<MatchKey>,
    /// Email domains accounts may have; empty allows any.
    pub allowed_email_domains: Vec<String>,
}

impl Default for MatchPolicy {
    fn default() -> Self {
        Self {
            mode: ProvisionMode::Create,
            match_on: vec![MatchKey::MisId, MatchKey::Email, MatchKey::Username],
            allowed_email_domains: Vec::new(),
        }
    }
}

/// An account as the directory holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub role: Role,
    pub mis_id: Option<String>,
    pub email: Option<String>,
    pub username: Option<String>,
    /// The source person this connection linked it to, if any.
    pub linked_to: Option<String>,
}

/// What to do for one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provision {
    /// Create mode: a new account for this source person.
    Create { person: String },
    /// Link mode: tie this source person to this existing account.
    Link { person: String, account: String },
    /// Already linked: updates flow to the linked account.
    Linked { person: String, account: String },
}

/// What a source removal does to the account behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovalAction {
    Unlink,
    Deprovision,
}

impl MatchPolicy {
    pub fn on_removal(&self) -> RemovalAction {
        match self.mode {
            ProvisionMode::Create => RemovalAction::Deprovision,
            ProvisionMode::Link => RemovalAction::Unlink,
        }
    }
}

#[derive(Debug, Default, PartialEq)]
pub struct Matching {
    pub provisions: Vec<Provision>,
    pub issues: Vec<Issue>,
}

fn normalised(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_lowercase)
}

/// Accounts by one field's normalised value.
fn index_by(
    accounts: &[Account],
    field: impl Fn(&Account) -> &Option<String>,
) -> HashMap<String, Vec<&Account>> {
    let mut index: HashMap<String, Vec<&Account>> = HashMap::new();
    for account in accounts {
        if let Some(value) = normalised(field(account)) {
            index.entry(value).or_default().push(account);
        }
    }
    index
}

/// Decides, for every valid person, whether to create, link or report.
pub fn match_people(people: &[Person], accounts: &[Account], policy: &MatchPolicy) -> Matching {
    let by_mis_id = index_by(accounts, |a| &a.mis_id);
    let by_email = index_by(accounts, |a| &a.email);
    let by_username = index_by(accounts, |a| &a.username);
    let linked: HashMap<&str, &Account> = accounts
        .iter()
        .filter_map(|a| Some((a.linked_to.as_deref()?, a)))
        .collect();
    let mut email_count: HashMap<String, usize> = HashMap::new();
    for person in people {
        if let Some(email) = normalised(&person.email) {
            *email_count.entry(email).or_default() += 1;
        }
    }

    let mut matching = Matching::default();
    for person in people {
        let report = |message: String| person_issue(person, Rule::Matching, message);
        if let Some(account) = linked.get(person.id.as_str()) {
            matching.provisions.push(Provision::Linked {
                person: person.id.clone(),
                account: account.id.clone(),
            });
            continue;
        }
        let email = normalised(&person.email);
        if let Some(email) = &email {
            // A family email two pupils share makes a match by email
            // ambiguous; a new account does not depend on it.
            if policy.mode == ProvisionMode::Link && email_count[email] > 1 {
                matching.issues.push(report(format!(
                    "Several people in the source share the email {email}"
                )));
                continue;
            }
            let domain = email.rsplit_once('@').map_or("", |(_, d)| d);
            let allowed = policy.allowed_email_domains.is_empty()
                || policy
                    .allowed_email_domains
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(domain));
            if !allowed {
                matching.issues.push(report(format!(
                    "The email {email} is outside the connection's allowed domains"
                )));
                continue;
            }
        }
        // The first key that finds anyone of the person's role decides;
        // failing that, the first that finds anyone at all explains why.
        let found = |same_role: bool| {
            policy.match_on.iter().find_map(|key| {
                let (index, value) = match key {
                    MatchKey::MisId => (&by_mis_id, normalised(&person.mis_id)),
                    MatchKey::Email => (&by_email, email.clone()),
                    MatchKey::Username => (&by_username, normalised(&person.username)),
                };
                let found: Vec<&Account> = index
                    .get(&value?)?
                    .iter()
                    .filter(|a| !same_role || a.role == person.role)
                    .copied()
                    .collect();
                (!found.is_empty()).then_some(found)
            })
        };
        let candidates = found(true).or_else(|| found(false));
        // A username held by an account this person would not become.
        let username_taken_by = |own: Option<&str>| {
            normalised(&person.username)
                .and_then(|u| by_username.get(&u))
                .and_then(|holders| holders.iter().find(|a| Some(a.id.as_str()) != own))
        };
        match (policy.mode, candidates.as_deref()) {
            (ProvisionMode::Create, _) => match username_taken_by(None) {
                Some(holder) => matching.issues.push(report(format!(
                    "The username {} is already in use by account {}",
                    person.username.as_deref().unwrap_or_default(),
                    holder.id
                ))),
                None => matching.provisions.push(Provision::Create {
                    person: person.id.clone(),
                }),
            },
            (ProvisionMode::Link, None | Some([])) => {
                matching
                    .issues
                    .push(report("No matching account found".into()));
            }
            (ProvisionMode::Link, Some([account])) => {
                if account.role != person.role {
                    matching.issues.push(report(format!(
                        "Matched account {} is {:?} but the source says {:?}",
                        account.id, account.role, person.role
                    )));
                } else if let Some(holder) = username_taken_by(Some(&account.id)) {
                    matching.issues.push(report(format!(
                        "The username {} is already in use by another account, {}",
                        person.username.as_deref().unwrap_or_default(),
                        holder.id
                    )));
                } else if account.linked_to.is_some() {
                    matching.issues.push(report(format!(
                        "Matched account {} is already linked to another source person",
                        account.id
                    )));
                } else {
                    matching.provisions.push(Provision::Link {
                        person: person.id.clone(),
                        account: account.id.clone(),
                    });
                }
            }
            (ProvisionMode::Link, Some(others)) if others.iter().all(|a| a.role != person.role) => {
                matching.issues.push(report(format!(
                    "No {:?} account matches; {} accounts of another role do",
                    person.role,
                    others.len()
                )));
            }
            (ProvisionMode::Link, Some(_)) => {
                matching.issues.push(report(
                    "Found multiple users, couldn't determine correct match".into(),
                ));
            }
        }
    }
    matching
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: &str, mis_id: &str, email: Option<&str>, username: Option<&str>) -> Person {
        let mut p = Person::new(id, Role::Student);
        p.first_name = Some("Zoë".into());
        p.last_name = Some("Nguyễn".into());
        p.mis_id = Some(mis_id.into());
        p.email = email.map(Into::into);
        p.username = username.map(Into::into);
        p
    }

    fn account(
        id: &str,
        role: Role,
        mis_id: Option<&str>,
        email: Option<&str>,
        username: Option<&str>,
    ) -> Account {
        Account {
            id: id.into(),
            role,
            mis_id: mis_id.map(Into::into),
            email: email.map(Into::into),
            username: username.map(Into::into),
            linked_to: None,
        }
    }

    fn link_mode() -> MatchPolicy {
        MatchPolicy {
            mode: ProvisionMode::Link,
            ..MatchPolicy::default()
        }
    }

    fn only_issue(matching: &Matching) -> &str {
        assert!(matching.provisions.is_empty(), "{matching:?}");
        let [issue] = matching.issues.as_slice() else {
            panic!("expected one issue, got {matching:?}");
        };
        &issue.message
    }

    #[test]
    fn create_mode_provisions_every_valid_person_and_link_mode_never_creates() {
        let people = [
            person("S1", "U1", None, None),
            person("S2", "U2", None, None),
        ];
        let created = match_people(&people, &[], &MatchPolicy::default());
        assert_eq!(
            created.provisions,
            vec![
                Provision::Create {
                    person: "S1".into()
                },
                Provision::Create {
                    person: "S2".into()
                }
            ]
        );
        let linked = match_people(&people[..1], &[], &link_mode());
        assert_eq!(only_issue(&linked), "No matching account found");
    }

    #[test]
    fn link_mode_matches_in_the_configured_order() {
        let people = [person("S1", "U1", Some("Zoe@School.example"), None)];
        let accounts = [
            account(
                "by-email",
                Role::Student,
                None,
                Some("zoe@school.example"),
                None,
            ),
            account("by-mis", Role::Student, Some("U1"), None, None),
        ];
        let by_mis_first = match_people(&people, &accounts, &link_mode());
        assert_eq!(
            by_mis_first.provisions,
            vec![Provision::Link {
                person: "S1".into(),
                account: "by-mis".into()
            }]
        );
        let email_first = MatchPolicy {
            match_on: vec![MatchKey::Email, MatchKey::MisId],
            ..link_mode()
        };
        let by_email = match_people(&people, &accounts, &email_first);
        assert_eq!(
            by_email.provisions,
            vec![Provision::Link {
                person: "S1".into(),
                account: "by-email".into()
            }]
        );
    }

    #[test]
    fn several_matches_are_reported_not_guessed() {
        let accounts = [
            account("a1", Role::Student, Some("U1"), None, None),
            account("a2", Role::Student, Some("U1"), None, None),
        ];
        let matching = match_people(&[person("S1", "U1", None, None)], &accounts, &link_mode());
        assert_eq!(
            only_issue(&matching),
            "Found multiple users, couldn't determine correct match"
        );
    }

    #[test]
    fn a_match_with_another_role_is_reported() {
        let accounts = [account("a1", Role::Staff, Some("U1"), None, None)];
        let matching = match_people(&[person("S1", "U1", None, None)], &accounts, &link_mode());
        assert_eq!(
            only_issue(&matching),
            "Matched account a1 is Staff but the source says Student"
        );
    }

    #[test]
    fn a_contact_sharing_a_pupils_mis_id_matches_within_their_role() {
        let mut contact = person("C1", "9919", None, None);
        contact.role = Role::Contact;
        let pupil = person("S1", "9919", None, None);
        let accounts = [
            account("pupil-account", Role::Student, Some("9919"), None, None),
            account("contact-account", Role::Contact, Some("9919"), None, None),
        ];
        let matching = match_people(&[pupil.clone(), contact.clone()], &accounts, &link_mode());
        assert!(matching.issues.is_empty(), "{:?}", matching.issues);
        assert_eq!(
            matching.provisions,
            vec![
                Provision::Link {
                    person: "S1".into(),
                    account: "pupil-account".into()
                },
                Provision::Link {
                    person: "C1".into(),
                    account: "contact-account".into()
                }
            ]
        );
        let only_pupils = [accounts[0].clone(), accounts[0].clone()];
        assert_eq!(
            only_issue(&match_people(&[contact], &only_pupils, &link_mode())),
            "No Contact account matches; 2 accounts of another role do"
        );
    }

    #[test]
    fn a_shared_email_in_the_source_is_reported_in_link_mode_only() {
        let people = [
            person("S1", "U1", Some("family@home.example"), None),
            person("S2", "U2", Some("FAMILY@home.example"), None),
        ];
        let matching = match_people(&people, &[], &link_mode());
        assert!(matching.provisions.is_empty());
        assert_eq!(matching.issues.len(), 2);
        assert!(matching.issues.iter().all(
            |i| i.message == "Several people in the source share the email family@home.example"
        ));
        let created = match_people(&people, &[], &MatchPolicy::default());
        assert_eq!(created.provisions.len(), 2, "{:?}", created.issues);
    }

    #[test]
    fn a_username_held_by_another_account_is_reported() {
        let taken = [account("a9", Role::Staff, None, None, Some("zn1"))];
        let created = match_people(
            &[person("S1", "U1", None, Some("ZN1"))],
            &taken,
            &MatchPolicy::default(),
        );
        assert_eq!(
            only_issue(&created),
            "The username ZN1 is already in use by account a9"
        );
        let accounts = [
            taken[0].clone(),
            account("a1", Role::Student, Some("U1"), None, None),
        ];
        let linked = match_people(
            &[person("S1", "U1", None, Some("zn1"))],
            &accounts,
            &link_mode(),
        );
        assert_eq!(
            only_issue(&linked),
            "The username zn1 is already in use by another account, a9"
        );
    }

    #[test]
    fn an_email_outside_the_allowed_domains_is_reported() {
        let policy = MatchPolicy {
            allowed_email_domains: vec!["school.example".into()],
            ..MatchPolicy::default()
        };
        let matching = match_people(
            &[person("S1", "U1", Some("zoe@gmail.example"), None)],
            &[],
            &policy,
        );
        assert_eq!(
            only_issue(&matching),
            "The email zoe@gmail.example is outside the connection's allowed domains"
        );
        let fine = match_people(
            &[person("S1", "U1", Some("zoe@School.Example"), None)],
            &[],
            &policy,
        );
        assert!(fine.issues.is_empty());
    }

    #[test]
    fn linked_people_stay_linked_and_an_account_is_never_linked_twice() {
        let mut mine = account("a1", Role::Student, Some("U1"), None, None);
        mine.linked_to = Some("S1".into());
        let matching = match_people(
            &[person("S1", "U1", None, None)],
            &[mine.clone()],
            &link_mode(),
        );
        assert_eq!(
            matching.provisions,
            vec![Provision::Linked {
                person: "S1".into(),
                account: "a1".into()
            }]
        );
        let other = match_people(&[person("S7", "U1", None, None)], &[mine], &link_mode());
        assert_eq!(
            only_issue(&other),
            "Matched account a1 is already linked to another source person"
        );
    }

    #[test]
    fn a_source_removal_unlinks_in_link_mode_and_deprovisions_in_create_mode() {
        assert_eq!(link_mode().on_removal(), RemovalAction::Unlink);
        assert_eq!(
            MatchPolicy::default().on_removal(),
            RemovalAction::Deprovision
        );
    }
}
