//! Reconcile: read back everything the target holds, then bring the
//! ledger in line with it, so the next plan repairs the drift. Existing
//! accounts and groups are adopted by external id, then email, then
//! login (or group name) before anything is made; objects missing from
//! the target are made again; attributes changed by hand are sent again;
//! an account disabled by hand is re-enabled, and one enabled by hand
//! while suspended is suspended again (keeping its grace period); a class
//! whose members drifted gets the missing members back and loses the
//! extra ones the host put there. Members the host never managed are left
//! alone. Each repair is reported.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use rostersync_core::targets::{Desired, LedgerEntry, LoginRules, ObjectState, TargetPolicy};
use rostersync_model::SyncError;
use rostersync_model::target::{
    HeldGroup, HeldObject, HeldUser, ObjectKind, Target, TargetCapability,
};

use crate::Repair;

#[derive(Debug, Default)]
pub(crate) struct Held {
    users: Vec<HeldUser>,
    groups: Vec<HeldGroup>,
}

/// Every page of what the target holds.
pub(crate) async fn read_all(target: &dyn Target) -> Result<Held, SyncError> {
    let mut held = Held::default();
    let mut kinds = vec![ObjectKind::User];
    if target.info().has(TargetCapability::Groups) {
        kinds.push(ObjectKind::Group);
    }
    for kind in kinds {
        let mut cursor = None;
        loop {
            let page = target.read(kind, cursor).await?;
            for object in page.objects {
                match object {
                    HeldObject::User(user) => held.users.push(user),
                    HeldObject::Group(group) => held.groups.push(group),
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    Ok(held)
}

/// Ledger entries to write and the repairs they make.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub entries: Vec<LedgerEntry>,
    pub repairs: Vec<Repair>,
}

impl Found {
    fn repair(&mut self, entry: LedgerEntry, object: &str, drift: String) {
        self.entries.push(entry);
        self.repairs.push(Repair {
            object: object.to_string(),
            drift,
        });
    }
}

fn lower(text: &Option<String>) -> Option<String> {
    text.as_ref().map(|t| t.to_lowercase())
}

pub(crate) fn compare(
    policy: &TargetPolicy,
    desired: &Desired,
    ledger: &[LedgerEntry],
    held: &Held,
    now: DateTime<Utc>,
) -> Found {
    let mut found = Found::default();
    let users = ledger_of(ledger, ObjectKind::User);
    let by_id: HashMap<&str, &HeldUser> = held
        .users
        .iter()
        .map(|u| (u.target_id.as_str(), u))
        .collect();
    let by_external: HashMap<&str, &HeldUser> = held
        .users
        .iter()
        .filter_map(|u| Some((u.external_id.as_deref()?, u)))
        .collect();
    let by_email: HashMap<String, &HeldUser> = held
        .users
        .iter()
        .filter_map(|u| Some((lower(&u.email)?, u)))
        .collect();
    let by_login: HashMap<String, &HeldUser> = held
        .users
        .iter()
        .map(|u| (u.username.to_lowercase(), u))
        .collect();
    let mut owned: HashSet<String> = ledger.iter().filter_map(|e| e.target_id.clone()).collect();
    // The target's id of each account the host manages, to its external id.
    let mut external_of: HashMap<String, String> = users
        .values()
        .filter_map(|e| Some((e.target_id.clone()?, e.external_id.clone())))
        .collect();
    let rules = LoginRules {
        username: policy.templates.username.clone(),
        email: policy.templates.email.clone(),
    };
    for wanted in desired.users.values() {
        let entry = users.get(wanted.external_id.as_str()).copied();
        let live = entry.filter(|e| e.state != ObjectState::Deleted && e.target_id.is_some());
        let Some(entry) = live else {
            let first_login = rules.allocate(&wanted.parts, &HashSet::new());
            let candidate = by_external
                .get(wanted.external_id.as_str())
                .or_else(|| by_email.get(&lower(&wanted.source_email)?))
                .or_else(|| by_login.get(&first_login.as_ref()?.username))
                .or_else(|| by_email.get(&first_login.as_ref()?.email.clone()?))
                .filter(|h| !owned.contains(&h.target_id));
            if let Some(held) = candidate {
                let mut adopted = entry
                    .cloned()
                    .unwrap_or_else(|| LedgerEntry::new(ObjectKind::User, &wanted.external_id));
                adopted.target_id = Some(held.target_id.clone());
                adopted.username = Some(held.username.clone());
                adopted.email = held.email.clone();
                adopted.state = if held.active {
                    ObjectState::Active
                } else {
                    ObjectState::Suspended
                };
                adopted.suspended_at = (!held.active).then_some(now);
                adopted.content_hash = None;
                owned.insert(held.target_id.clone());
                external_of.insert(held.target_id.clone(), wanted.external_id.clone());
                found.repair(
                    adopted,
                    &held.username,
                    "an existing account was adopted instead of making another".into(),
                );
            }
            continue;
        };
        let target_id = entry.target_id.as_deref().unwrap_or_default();
        let label = entry
            .username
            .clone()
            .unwrap_or_else(|| entry.external_id.clone());
        let Some(held) = by_id.get(target_id) else {
            // Groups that still list the old id do not hold it.
            external_of.remove(target_id);
            let mut missing = entry.clone();
            missing.target_id = None;
            found.repair(
                missing,
                &label,
                "missing from the target: it is made again".into(),
            );
            continue;
        };
        let mut repaired = entry.clone();
        let mut drift = Vec::new();
        if entry.state == ObjectState::Active && !held.active {
            repaired.state = ObjectState::Suspended;
            repaired.suspended_at = Some(now);
            drift.push("disabled by hand".to_string());
        }
        let email = match policy.templates.email {
            Some(_) => entry.email.clone(),
            None => wanted.source_email.clone(),
        };
        let fields = [
            (
                "username",
                entry.username.clone(),
                Some(held.username.clone()),
            ),
            ("email", lower(&email), lower(&held.email)),
            (
                "given name",
                wanted.given_name.clone(),
                held.given_name.clone(),
            ),
            (
                "family name",
                wanted.family_name.clone(),
                held.family_name.clone(),
            ),
            (
                "display name",
                Some(wanted.display_name.clone()),
                held.display_name.clone(),
            ),
            (
                "container",
                wanted.container.clone(),
                held.container.clone(),
            ),
        ];
        let changed: Vec<&str> = fields
            .iter()
            .filter(|(_, want, have)| want != have)
            .map(|(name, _, _)| *name)
            .collect();
        if !changed.is_empty() {
            repaired.content_hash = None;
            drift.push(format!("changed by hand: {}", changed.join(", ")));
        }
        if !drift.is_empty() {
            found.repair(repaired, &label, drift.join("; "));
        }
    }
    for entry in users.values() {
        if desired.users.contains_key(&entry.external_id) || entry.state != ObjectState::Suspended {
            continue;
        }
        let held = entry.target_id.as_deref().and_then(|id| by_id.get(id));
        if held.is_some_and(|h| h.active) {
            let mut again = (*entry).clone();
            again.state = ObjectState::Active;
            let label = entry
                .username
                .clone()
                .unwrap_or_else(|| entry.external_id.clone());
            found.repair(
                again,
                &label,
                "enabled by hand while suspended: it is suspended again".into(),
            );
        }
    }
    groups(&mut found, desired, ledger, held, &external_of, &owned);
    found
}

fn groups(
    found: &mut Found,
    desired: &Desired,
    ledger: &[LedgerEntry],
    held: &Held,
    external_of: &HashMap<String, String>,
    owned: &HashSet<String>,
) {
    let entries = ledger_of(ledger, ObjectKind::Group);
    let by_id: HashMap<&str, &HeldGroup> = held
        .groups
        .iter()
        .map(|g| (g.target_id.as_str(), g))
        .collect();
    let by_external: HashMap<&str, &HeldGroup> = held
        .groups
        .iter()
        .filter_map(|g| Some((g.external_id.as_deref()?, g)))
        .collect();
    let by_name: HashMap<&str, &HeldGroup> =
        held.groups.iter().map(|g| (g.name.as_str(), g)).collect();
    // Accounts the host has made in the target (even those since deleted
    // there by hand, which are made again).
    let in_target: HashSet<&String> = ledger
        .iter()
        .filter(|e| e.kind == ObjectKind::User && e.target_id.is_some())
        .map(|e| &e.external_id)
        .collect();
    // Members by external id, of the accounts the host manages only.
    let ours = |ids: &[String]| -> Vec<String> {
        let set: BTreeSet<String> = ids
            .iter()
            .filter_map(|id| external_of.get(id).cloned())
            .collect();
        set.into_iter().collect()
    };
    for group in desired.groups.values() {
        let entry = entries.get(group.external_id.as_str()).copied();
        let live = entry.filter(|e| e.state != ObjectState::Deleted && e.target_id.is_some());
        let Some(entry) = live else {
            let candidate = by_external
                .get(group.external_id.as_str())
                .or_else(|| by_name.get(group.name.as_str()))
                .filter(|h| !owned.contains(&h.target_id));
            if let Some(held) = candidate {
                let mut adopted = entry
                    .cloned()
                    .unwrap_or_else(|| LedgerEntry::new(ObjectKind::Group, &group.external_id));
                adopted.target_id = Some(held.target_id.clone());
                adopted.username = Some(held.name.clone());
                adopted.state = ObjectState::Active;
                adopted.content_hash = None;
                adopted.members = ours(&held.members);
                adopted.owners = ours(&held.owners);
                found.repair(
                    adopted,
                    &held.name,
                    "an existing group was adopted instead of making another".into(),
                );
            }
            continue;
        };
        let label = entry
            .username
            .clone()
            .unwrap_or_else(|| entry.external_id.clone());
        let Some(held) = by_id.get(entry.target_id.as_deref().unwrap_or_default()) else {
            let mut missing = entry.clone();
            missing.target_id = None;
            found.repair(
                missing,
                &label,
                "missing from the target: it is made again".into(),
            );
            continue;
        };
        let mut repaired = entry.clone();
        let mut drift = Vec::new();
        if Some(&held.name) != entry.username.as_ref() {
            repaired.content_hash = None;
            drift.push("renamed by hand".to_string());
        }
        let members = ours(&held.members);
        let owners = ours(&held.owners);
        let sets = |ids: &[String]| ids.iter().cloned().collect::<BTreeSet<String>>();
        for (what, want, have) in [
            ("members", &group.members, &members),
            ("owners", &group.owners, &owners),
        ] {
            // A member whose account was never made in the target cannot
            // be missing from the group: that account's creation is what
            // waits, and says why.
            let want: BTreeSet<String> = want
                .iter()
                .map(|r| r.external_id.clone())
                .filter(|id| in_target.contains(id))
                .collect();
            let have = sets(have);
            let missing = want.difference(&have).count();
            let extra = have.difference(&want).count();
            if missing + extra > 0 {
                drift.push(format!("{what} drifted: {missing} missing, {extra} extra"));
            }
        }
        if sets(&members) != sets(&entry.members) || sets(&owners) != sets(&entry.owners) {
            repaired.members = members;
            repaired.owners = owners;
        }
        if !drift.is_empty() {
            found.repair(repaired, &label, drift.join("; "));
        }
    }
}

/// The ledger's entries of one kind, by external id.
fn ledger_of(ledger: &[LedgerEntry], kind: ObjectKind) -> HashMap<&str, &LedgerEntry> {
    ledger
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| (e.external_id.as_str(), e))
        .collect()
}
