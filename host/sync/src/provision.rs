//! What applying a change set writes, worked out without I/O: the roster
//! rows, the accounts and links (create or link mode), the change log, the
//! outbox events owed downstream, and the counts for the history.

use std::collections::{BTreeMap, HashMap};

use rostersync_core::entity::identity;
use rostersync_core::matching::{Account, Provision, RemovalAction, match_people};
use rostersync_core::{ChangeSet, ContentHash, EntityKind, Issue, MatchPolicy};
use rostersync_model::{Person, Record, Role};
use rostersync_store::{
    AccountRow, AccountStatus, AccountWrite, ChangeRow, Count, IssueRow, LinkWrite, OutboxEvent,
    StoredRecord,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// What the plan needs to know beyond the change set.
pub(crate) struct Context<'a> {
    pub connection: &'a str,
    /// Unique per run (or per confirmation), for idempotency keys.
    pub run_token: &'a str,
    pub accounts: &'a [AccountRow],
    /// Source person id to account id, for this connection.
    pub links: &'a HashMap<String, String>,
    pub policy: &'a MatchPolicy,
}

/// Everything an applied change set writes besides the run row.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub upserts: Vec<StoredRecord>,
    pub removals: Vec<(EntityKind, String)>,
    pub accounts: Vec<AccountWrite>,
    pub links: Vec<LinkWrite>,
    pub changes: Vec<ChangeRow>,
    pub outbox: Vec<OutboxEvent>,
    pub counts: Counts,
    pub issues: Vec<Issue>,
}

/// Records per kind and action, in a stable order.
#[derive(Debug, Default)]
pub(crate) struct Counts(BTreeMap<(String, String), i64>);

impl Counts {
    pub fn add(&mut self, kind: &str, action: &str) {
        self.add_n(kind, action, 1);
    }

    pub fn add_n(&mut self, kind: &str, action: &str, n: i64) {
        *self.0.entry((kind.into(), action.into())).or_default() += n;
    }

    pub fn rows(&self) -> Vec<Count> {
        self.0
            .iter()
            .map(|((kind, action), count)| Count {
                kind: kind.clone(),
                action: action.clone(),
                count: *count,
            })
            .collect()
    }
}

/// The plan for applying `changes`. `reconsider` are stored people without
/// an account whom a forced run offers to provisioning again.
pub(crate) fn plan(context: &Context, changes: &ChangeSet, reconsider: &[Person]) -> Plan {
    let mut plan = Plan::default();
    for (record, hash) in &changes.creates {
        let (kind, key) = identity(record).expect("creates are objects");
        // One encoding serves as the stored body and the created fields.
        let value = serde_json::to_value(record).expect("records serialise");
        let body = value.to_string();
        plan.roster_write(
            context,
            kind,
            &key,
            body,
            *hash,
            "create",
            created_fields(value),
        );
    }
    for update in &changes.updates {
        let body = serde_json::to_string(&update.record).expect("records serialise");
        let fields = serde_json::to_value(&update.fields).expect("field changes serialise");
        plan.roster_write(
            context,
            update.kind,
            &update.key,
            body,
            update.hash,
            "update",
            fields,
        );
    }
    for (kind, key) in &changes.removals {
        plan.removals.push((*kind, key.clone()));
        plan.log(context, *kind, key, "delete", json!([]));
    }
    let people: Vec<Person> = changes
        .creates
        .iter()
        .map(|(record, _)| record)
        .chain(changes.updates.iter().map(|u| &u.record))
        .filter_map(|record| match record {
            Record::Person(person) => Some(person.clone()),
            _ => None,
        })
        .chain(reconsider.iter().cloned())
        .collect();
    plan.provision(context, &people);
    for key in changes.removals_of(EntityKind::Person) {
        plan.deprovision(context, key);
    }
    plan
}

/// The change log rows and counts of a change set that was held.
pub(crate) fn held(changes: &ChangeSet) -> (Vec<ChangeRow>, Counts) {
    let mut counts = Counts::default();
    let mut rows = Vec::new();
    let mut hold = |kind: EntityKind, key: &str, action: &str, fields: Value| {
        counts.add(kind.as_str(), &format!("held-{action}"));
        rows.push(ChangeRow {
            kind,
            key: key.to_string(),
            action: "held".into(),
            fields: json!({"would": action, "fields": fields}).to_string(),
        });
    };
    for (record, _) in &changes.creates {
        let (kind, key) = identity(record).expect("creates are objects");
        let value = serde_json::to_value(record).expect("records serialise");
        hold(kind, &key, "create", created_fields(value));
    }
    for update in &changes.updates {
        let fields = serde_json::to_value(&update.fields).expect("field changes serialise");
        hold(update.kind, &update.key, "update", fields);
    }
    for (kind, key) in &changes.removals {
        hold(*kind, key, "delete", json!([]));
    }
    (rows, counts)
}

impl Plan {
    #[allow(clippy::too_many_arguments)]
    fn roster_write(
        &mut self,
        context: &Context,
        kind: EntityKind,
        key: &str,
        body: String,
        hash: ContentHash,
        action: &str,
        fields: Value,
    ) {
        self.upserts.push(StoredRecord {
            kind,
            key: key.to_string(),
            content_hash: hash.0.to_vec(),
            body,
        });
        self.log(context, kind, key, action, fields);
    }

    /// One change log row, one count and one outbox event. The event names
    /// its change log row (`change`, the row's position in the run) rather
    /// than carrying the record again: the row holds the fields, the
    /// roster the record.
    fn log(&mut self, context: &Context, kind: EntityKind, key: &str, action: &str, fields: Value) {
        self.counts.add(kind.as_str(), action);
        let change = self.changes.len();
        self.changes.push(ChangeRow {
            kind,
            key: key.to_string(),
            action: action.into(),
            fields: fields.to_string(),
        });
        self.event(
            context,
            &format!("{}.{action}", kind.as_str()),
            key,
            json!({"connection": context.connection, "kind": kind.as_str(), "key": key, "change": change}),
        );
    }

    fn event(&mut self, context: &Context, event: &str, subject: &str, payload: Value) {
        self.outbox.push(OutboxEvent {
            idempotency_key: format!("{}:{event}:{subject}", context.run_token),
            event: event.into(),
            payload: payload.to_string(),
        });
    }

    fn account_event(&mut self, context: &Context, action: &str, person: &str, account: &str) {
        self.counts.add("account", action);
        self.changes.push(ChangeRow {
            kind: EntityKind::Person,
            key: person.to_string(),
            action: action.into(),
            fields: json!([{"field": "account", "old": Value::Null, "new": account}]).to_string(),
        });
        self.event(
            context,
            &format!("account.{action}"),
            person,
            json!({"connection": context.connection, "person": person, "account": account}),
        );
    }

    fn provision(&mut self, context: &Context, people: &[Person]) {
        if people.is_empty() {
            return;
        }
        let linked_to: HashMap<&str, &str> = context
            .links
            .iter()
            .map(|(person, account)| (account.as_str(), person.as_str()))
            .collect();
        let accounts: Vec<Account> = context
            .accounts
            .iter()
            .filter(|a| a.status != AccountStatus::Deleted)
            .filter_map(|a| {
                Some(Account {
                    id: a.id.clone(),
                    role: parse_role(&a.role)?,
                    mis_id: a.mis_id.clone(),
                    email: a.email.clone(),
                    username: a.username.clone(),
                    linked_to: linked_to.get(a.id.as_str()).map(|p| p.to_string()),
                })
            })
            .collect();
        let matching = match_people(people, &accounts, context.policy);
        self.issues.extend(matching.issues);
        let by_id: HashMap<&str, &Person> = people.iter().map(|p| (p.id.as_str(), p)).collect();
        let existing: HashMap<&str, &AccountRow> = context
            .accounts
            .iter()
            .map(|a| (a.id.as_str(), a))
            .collect();
        for provision in matching.provisions {
            let (person, account, action) = match &provision {
                Provision::Create { person } => {
                    (person, account_id(context.connection, person), "created")
                }
                Provision::Link { person, account } => (person, account.clone(), "linked"),
                Provision::Linked { person, account } => (person, account.clone(), "updated"),
            };
            let source = by_id[person.as_str()];
            let previous = existing.get(account.as_str());
            self.accounts.push(AccountWrite::Upsert(AccountRow {
                id: account.clone(),
                role: role_name(source.role).into(),
                mis_id: source.mis_id.clone(),
                email: source.email.clone(),
                username: source.username.clone(),
                display_name: display_name(source),
                status: AccountStatus::Active,
                created_by: previous.map_or(Some(context.connection.to_string()), |a| {
                    a.created_by.clone()
                }),
            }));
            if !matches!(provision, Provision::Linked { .. }) {
                self.links.push(LinkWrite::Link {
                    source_id: person.clone(),
                    account_id: account.clone(),
                });
            }
            self.account_event(context, action, person, &account);
        }
    }

    fn deprovision(&mut self, context: &Context, person: &str) {
        let Some(account) = context.links.get(person) else {
            return;
        };
        match context.policy.on_removal() {
            RemovalAction::Deprovision => {
                self.accounts.push(AccountWrite::SetStatus {
                    id: account.clone(),
                    status: AccountStatus::Deprovisioned,
                });
                self.account_event(context, "deprovisioned", person, account);
            }
            RemovalAction::Unlink => {
                self.links.push(LinkWrite::Unlink {
                    source_id: person.to_string(),
                });
                self.account_event(context, "unlinked", person, account);
            }
        }
    }
}

/// A created object's fields (the record as JSON) as changes from
/// nothing.
fn created_fields(record: Value) -> Value {
    let Value::Object(outer) = record else {
        return json!([]);
    };
    let Some((_, Value::Object(inner))) = outer.into_iter().next() else {
        return json!([]);
    };
    Value::Array(
        inner
            .into_iter()
            .filter(|(_, value)| !value.is_null())
            .map(|(field, value)| json!({"field": field, "old": Value::Null, "new": value}))
            .collect(),
    )
}

/// The account a connection provisions for a source person: derived from
/// both, so provisioning the same person twice finds the same account.
pub(crate) fn account_id(connection: &str, person: &str) -> String {
    let digest = Sha256::digest(format!("{connection}\u{1f}{person}"));
    format!("acc_{}", hex::encode(&digest[..12]))
}

/// A role as accounts store it.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Student => "student",
        Role::Staff => "staff",
        Role::Contact => "contact",
    }
}

fn parse_role(role: &str) -> Option<Role> {
    [Role::Student, Role::Staff, Role::Contact]
        .into_iter()
        .find(|r| role_name(*r) == role)
}

pub(crate) fn display_name(person: &Person) -> String {
    let first = person
        .preferred_first_name
        .as_deref()
        .or(person.first_name.as_deref());
    [first, person.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
}

/// An issue in the store's columns.
pub(crate) fn issue_row(issue: &Issue) -> IssueRow {
    IssueRow {
        source_id: issue.source_id.clone(),
        entity_type: issue.entity_type.clone(),
        entity_name: issue.entity_name.clone(),
        mis_id: issue.mis_id.clone(),
        message: issue.message.clone(),
        policy: issue.rule.name().into(),
        fix: issue.rule.fix().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostersync_core::ProvisionMode;

    fn pupil(id: &str, email: &str) -> Person {
        let mut person = Person::new(id, Role::Student);
        person.first_name = Some("Zoë".into());
        person.last_name = Some("Nguyễn".into());
        person.email = Some(email.into());
        person
    }

    fn context<'a>(
        accounts: &'a [AccountRow],
        links: &'a HashMap<String, String>,
        policy: &'a MatchPolicy,
    ) -> Context<'a> {
        Context {
            connection: "north",
            run_token: "run-1",
            accounts,
            links,
            policy,
        }
    }

    #[test]
    fn create_mode_provisions_a_stable_account_per_person() {
        let policy = MatchPolicy::default();
        let links = HashMap::new();
        let changes = ChangeSet::creating(vec![Record::Person(pupil("S1", "zoe@school.org"))]);
        let plan = plan(&context(&[], &links, &policy), &changes, &[]);
        let id = account_id("north", "S1");
        assert_eq!(id, account_id("north", "S1"));
        assert_ne!(id, account_id("south", "S1"));
        let [AccountWrite::Upsert(account)] = plan.accounts.as_slice() else {
            panic!("expected one account, got {:?}", plan.accounts);
        };
        assert_eq!(
            (
                account.id.as_str(),
                account.display_name.as_str(),
                account.created_by.as_deref()
            ),
            (id.as_str(), "Zoë Nguyễn", Some("north"))
        );
        assert_eq!(
            plan.links,
            vec![LinkWrite::Link {
                source_id: "S1".into(),
                account_id: id
            }]
        );
        let events: Vec<&str> = plan.outbox.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(events, ["person.create", "account.created"]);
        assert_eq!(plan.upserts.len(), 1);
    }

    #[test]
    fn a_removal_deprovisions_in_create_mode_and_unlinks_in_link_mode() {
        let links = HashMap::from([("S1".to_string(), "acc_1".to_string())]);
        let changes = ChangeSet {
            removals: vec![(EntityKind::Person, "S1".into())],
            ..ChangeSet::default()
        };
        let create = MatchPolicy::default();
        let plan_create = plan(&context(&[], &links, &create), &changes, &[]);
        assert_eq!(
            plan_create.accounts,
            vec![AccountWrite::SetStatus {
                id: "acc_1".into(),
                status: AccountStatus::Deprovisioned
            }]
        );
        let link = MatchPolicy {
            mode: ProvisionMode::Link,
            ..MatchPolicy::default()
        };
        let plan_link = plan(&context(&[], &links, &link), &changes, &[]);
        assert!(plan_link.accounts.is_empty());
        assert_eq!(
            plan_link.links,
            vec![LinkWrite::Unlink {
                source_id: "S1".into()
            }]
        );
    }

    #[test]
    fn link_mode_links_a_match_and_reports_the_rest() {
        let existing = AccountRow {
            id: "manual-7".into(),
            role: "student".into(),
            mis_id: None,
            email: Some("zoe@school.org".into()),
            username: None,
            display_name: "Zoe N".into(),
            status: AccountStatus::Active,
            created_by: None,
        };
        let policy = MatchPolicy {
            mode: ProvisionMode::Link,
            ..MatchPolicy::default()
        };
        let links = HashMap::new();
        let changes = ChangeSet::creating(vec![
            Record::Person(pupil("S1", "zoe@school.org")),
            Record::Person(pupil("S2", "nobody@school.org")),
        ]);
        let plan = plan(&context(&[existing], &links, &policy), &changes, &[]);
        assert_eq!(
            plan.links,
            vec![LinkWrite::Link {
                source_id: "S1".into(),
                account_id: "manual-7".into()
            }]
        );
        let AccountWrite::Upsert(linked) = &plan.accounts[0] else {
            panic!("expected the linked account brought up to date");
        };
        assert_eq!(linked.created_by, None, "a linked account keeps its origin");
        assert_eq!(plan.issues.len(), 1);
        assert_eq!(
            (
                plan.issues[0].source_id.as_str(),
                plan.issues[0].message.as_str()
            ),
            ("S2", "No matching account found")
        );
    }

    #[test]
    fn held_changes_are_logged_as_held_and_counted_apart() {
        let changes = ChangeSet::creating(vec![Record::Person(pupil("S1", "zoe@school.org"))]);
        let (rows, counts) = held(&changes);
        assert_eq!(rows[0].action, "held");
        assert!(rows[0].fields.contains("\"would\":\"create\""));
        assert_eq!(counts.rows()[0].action, "held-create");
    }
}
