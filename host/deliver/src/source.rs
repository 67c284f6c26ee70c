//! What a target is fed from, read from the store: every account linked
//! from the connections the target serves, with the source person behind
//! it while the roster still has one, and those connections' groups with
//! their members by account.

use std::collections::{HashMap, HashSet};

use rostersync_core::targets::{Source, SourceAccount, SourceGroup, TargetPolicy};
use rostersync_model::{EntityKind, Group, Membership, Person, Record, Role};
use rostersync_store::{AccountStatus, Store, StoredRecord};

use crate::DeliverError;

fn role(role: &str) -> Option<Role> {
    match role {
        "student" => Some(Role::Student),
        "staff" => Some(Role::Staff),
        "contact" => Some(Role::Contact),
        _ => None,
    }
}

/// The stored records of one kind, read back as records.
async fn records(
    store: &Store,
    target: &str,
    connection: &str,
    kind: EntityKind,
) -> Result<Vec<Record>, DeliverError> {
    let stored =
        store
            .records_of(connection, kind)
            .await
            .map_err(|source| DeliverError::Store {
                target: target.into(),
                source,
            })?;
    stored
        .iter()
        .map(|StoredRecord { key, body, .. }| {
            serde_json::from_str(body).map_err(|error| DeliverError::BadRecord {
                target: target.into(),
                what: "roster record",
                key: format!("{connection}/{key}"),
                reason: error.to_string(),
            })
        })
        .collect()
}

/// Everything the target's desired state is made from.
pub async fn read_source(
    store: &Store,
    target: &str,
    policy: &TargetPolicy,
) -> Result<Source, DeliverError> {
    let failed = |source| DeliverError::Store {
        target: target.into(),
        source,
    };
    let accounts: HashMap<String, rostersync_store::AccountRow> = store
        .accounts()
        .await
        .map_err(failed)?
        .into_iter()
        .map(|a| (a.id.clone(), a))
        .collect();
    let mut connections: Vec<String> = store
        .all_stamps()
        .await
        .map_err(failed)?
        .into_keys()
        .filter(|c| policy.serves(c))
        .collect();
    connections.sort();
    let mut source = Source::default();
    let mut seen = HashSet::new();
    for connection in connections {
        let links = store.links(&connection).await.map_err(failed)?;
        let mut people: HashMap<String, Person> = HashMap::new();
        for record in records(store, target, &connection, EntityKind::Person).await? {
            if let Record::Person(person) = record {
                people.insert(person.id.clone(), person);
            }
        }
        let mut linked: Vec<(&String, &String)> = links.iter().collect();
        linked.sort();
        for (person, account) in linked {
            let Some(row) = accounts.get(account) else {
                continue;
            };
            let Some(role) = role(&row.role) else {
                continue;
            };
            if !seen.insert(account.clone()) {
                continue;
            }
            source.accounts.push(SourceAccount {
                id: row.id.clone(),
                role,
                mis_id: row.mis_id.clone(),
                email: row.email.clone(),
                display_name: row.display_name.clone(),
                active: row.status == AccountStatus::Active,
                connection: connection.clone(),
                person: people.remove(person),
            });
        }
        let mut members: HashMap<String, Vec<Membership>> = HashMap::new();
        for record in records(store, target, &connection, EntityKind::Membership).await? {
            if let Record::Membership(membership) = record {
                members
                    .entry(membership.group.clone())
                    .or_default()
                    .push(membership);
            }
        }
        for record in records(store, target, &connection, EntityKind::Group).await? {
            let Record::Group(group) = record else {
                continue;
            };
            let group: Group = group;
            let members = members
                .remove(&group.id)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| {
                    links
                        .get(&m.person)
                        .map(|account| (account.clone(), m.role))
                })
                .collect();
            source.groups.push(SourceGroup {
                connection: connection.clone(),
                group,
                members,
            });
        }
    }
    Ok(source)
}
