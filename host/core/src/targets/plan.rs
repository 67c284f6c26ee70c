//! The plan for one target: its desired state against the ledger of what
//! it holds, as an ordered list of keyed changes. Users come first (made,
//! re-enabled, updated), then groups (made, updated, their members as
//! deltas), then groups that went, then the account lifecycle: removed
//! accounts suspended, and deleted once suspended longer than the grace
//! period. A plan that would suspend or delete too many accounts at once
//! withholds those changes until an operator confirms them.
//!
//! Keys are derived from the target, the object, what is done and the
//! content sent, and from the ledger's revision of the object, so a plan
//! made again after a crash yields the same keys, and a change repeated
//! later (suspended again after a return) gets a new one.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use rostersync_model::target::{
    ChangeItem, MemberChange, ObjectKind, ObjectRef, TargetCapability, TargetChange, TargetGroup,
    TargetUser,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::desired::{Desired, WantedUser};
use super::identity::{Login, LoginRules};
use super::{LedgerEntry, ObjectState, TargetPolicy};

/// What a planned change does, for people reading a preview or a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    CreateUser,
    UpdateUser,
    EnableUser,
    SuspendUser,
    DeleteUser,
    CreateGroup,
    UpdateGroup,
    ChangeMembers,
    DeleteGroup,
}

impl Action {
    pub const ALL: [Self; 9] = [
        Self::CreateUser,
        Self::UpdateUser,
        Self::EnableUser,
        Self::SuspendUser,
        Self::DeleteUser,
        Self::CreateGroup,
        Self::UpdateGroup,
        Self::ChangeMembers,
        Self::DeleteGroup,
    ];

    pub fn parse(action: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == action)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateUser => "create-user",
            Self::UpdateUser => "update-user",
            Self::EnableUser => "enable-user",
            Self::SuspendUser => "suspend-user",
            Self::DeleteUser => "delete-user",
            Self::CreateGroup => "create-group",
            Self::UpdateGroup => "update-group",
            Self::ChangeMembers => "change-members",
            Self::DeleteGroup => "delete-group",
        }
    }

    /// Suspensions and deletions of accounts: what a mass hold weighs.
    pub fn is_removal(self) -> bool {
        matches!(self, Self::SuspendUser | Self::DeleteUser)
    }
}

/// One change of a plan, with the ledger entry it leaves once done (the
/// engine fills in the target's id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedItem {
    pub item: ChangeItem,
    pub action: Action,
    pub external_id: String,
    /// The login or group name.
    pub label: String,
    pub after: LedgerEntry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RenameStatus {
    Pending,
    Approved,
    Rejected,
    Applied,
}

impl RenameStatus {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Approved, Self::Rejected, Self::Applied];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Applied => "applied",
        }
    }

    pub fn parse(status: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == status)
    }
}

/// A change of login the templates ask for, which waits for an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rename {
    pub external_id: String,
    pub from: String,
    pub to: String,
    pub to_email: Option<String>,
    pub status: RenameStatus,
}

/// Suspensions and deletions withheld until an operator confirms them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MassHold {
    /// Names this set of changes; confirming names it.
    pub digest: String,
    /// Accounts the target holds (not deleted).
    pub population: usize,
    /// `login (external id)` of each account that would be suspended…
    pub suspend: Vec<String>,
    /// …or deleted.
    pub delete: Vec<String>,
}

/// Everything a plan is made from.
pub struct PlanInput<'a> {
    pub target: &'a str,
    pub policy: &'a TargetPolicy,
    pub capabilities: &'a [TargetCapability],
    pub desired: &'a Desired,
    pub ledger: &'a [LedgerEntry],
    /// Logins and emails the target said belong to objects the host does
    /// not own.
    pub taken: &'a HashSet<String>,
    pub renames: &'a [Rename],
    /// Digests of mass holds an operator confirmed.
    pub confirmed: &'a HashSet<String>,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub items: Vec<PlannedItem>,
    /// Ledger changes that send nothing: a suspension or return on a
    /// target that cannot suspend.
    pub local: Vec<LedgerEntry>,
    /// Logins the templates would now make differently, for approval.
    pub renames: Vec<Rename>,
    /// Set when suspensions or deletions are withheld.
    pub hold: Option<MassHold>,
    /// External ids of users no free login could be found for.
    pub unnamed: Vec<String>,
}

/// 32 hex digits of SHA-256 over `parts`, separated.
fn digest(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0x1f]);
    }
    hex(&hasher.finalize()[..16])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn content_hash<T: Serialize>(value: &T) -> String {
    digest(&[&serde_json::to_string(value).expect("target objects serialise")])
}

/// The digest naming a set of withheld changes (`action:external id`).
pub fn hold_digest(changes: &[String]) -> String {
    let mut sorted: Vec<&str> = changes.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    digest(&sorted)
}

struct Planner<'a> {
    input: &'a PlanInput<'a>,
    plan: Plan,
    groups: Vec<PlannedItem>,
    lifecycle: Vec<PlannedItem>,
}

impl Planner<'_> {
    fn can(&self, capability: TargetCapability) -> bool {
        self.input.capabilities.contains(&capability)
    }

    fn push(
        &mut self,
        to: Slot,
        action: Action,
        label: &str,
        change: TargetChange,
        after: LedgerEntry,
        payload: &str,
    ) {
        let kind = match after.kind {
            ObjectKind::User => "user",
            ObjectKind::Group => "group",
        };
        let revision = after.revision.to_string();
        let key = digest(&[
            self.input.target,
            kind,
            &after.external_id,
            action.as_str(),
            &revision,
            payload,
        ]);
        let item = PlannedItem {
            item: ChangeItem { key, change },
            action,
            external_id: after.external_id.clone(),
            label: label.to_string(),
            after,
        };
        match to {
            Slot::Users => self.plan.items.push(item),
            Slot::Groups => self.groups.push(item),
            Slot::Lifecycle => self.lifecycle.push(item),
        }
    }

    fn login(
        &mut self,
        wanted: &WantedUser,
        entry: Option<&LedgerEntry>,
        taken: &mut HashSet<String>,
    ) -> Option<Login> {
        let rules = LoginRules {
            username: self.input.policy.templates.username.clone(),
            email: self.input.policy.templates.email.clone(),
        };
        let held = entry.and_then(|e| e.username.clone().map(|u| (u, e.email.clone())));
        let Some((username, email)) = held else {
            let login = rules.allocate(&wanted.parts, taken)?;
            taken.insert(login.username.clone());
            taken.extend(login.email.clone());
            return Some(login);
        };
        let renames: Vec<&Rename> = self
            .input
            .renames
            .iter()
            .filter(|r| r.external_id == wanted.external_id && r.from == username)
            .collect();
        if let Some(approved) = renames.iter().find(|r| r.status == RenameStatus::Approved) {
            return Some(Login {
                username: approved.to.clone(),
                email: approved.to_email.clone().or(email),
            });
        }
        if !rules.fits(&wanted.parts, &username) {
            let mut others = taken.clone();
            others.remove(&username);
            if let Some(email) = &email {
                others.remove(email);
            }
            if let Some(proposed) = rules.allocate(&wanted.parts, &others)
                && proposed.username != username
                && !renames.iter().any(|r| r.to == proposed.username)
            {
                self.plan.renames.push(Rename {
                    external_id: wanted.external_id.clone(),
                    from: username.clone(),
                    to: proposed.username,
                    to_email: proposed.email,
                    status: RenameStatus::Pending,
                });
            }
        }
        Some(Login { username, email })
    }

    fn user(
        &mut self,
        wanted: &WantedUser,
        entry: Option<&LedgerEntry>,
        taken: &mut HashSet<String>,
    ) {
        let Some(login) = self.login(wanted, entry, taken) else {
            self.plan.unnamed.push(wanted.external_id.clone());
            return;
        };
        let email = match self.input.policy.templates.email {
            Some(_) => login.email.clone(),
            None => wanted.source_email.clone(),
        };
        let user = TargetUser {
            external_id: wanted.external_id.clone(),
            username: login.username.clone(),
            email: email.clone(),
            given_name: wanted.given_name.clone(),
            family_name: wanted.family_name.clone(),
            display_name: wanted.display_name.clone(),
            role: wanted.role,
            active: true,
            container: wanted.container.clone(),
            initial_password: None,
            attributes: wanted.attributes.clone(),
        };
        let hash = content_hash(&user);
        let label = login.username.clone();
        let mut current = match entry {
            Some(entry) if entry.state != ObjectState::Deleted && entry.target_id.is_some() => {
                entry.clone()
            }
            _ => {
                let mut after = entry
                    .cloned()
                    .unwrap_or_else(|| LedgerEntry::new(ObjectKind::User, &wanted.external_id));
                after.state = ObjectState::Active;
                after.suspended_at = None;
                after.username = Some(login.username);
                after.email = email;
                after.content_hash = Some(hash.clone());
                after.revision += 1;
                self.push(
                    Slot::Users,
                    Action::CreateUser,
                    &label,
                    TargetChange::CreateUser { user },
                    after,
                    &hash,
                );
                return;
            }
        };
        if current.state == ObjectState::Suspended {
            current.state = ObjectState::Active;
            current.suspended_at = None;
            if self.can(TargetCapability::Suspend) {
                current.revision += 1;
                let object = object_ref(&current);
                self.push(
                    Slot::Users,
                    Action::EnableUser,
                    &label,
                    TargetChange::EnableUser { object },
                    current.clone(),
                    "",
                );
            } else {
                self.plan.local.push(current.clone());
            }
        }
        if current.content_hash.as_deref() != Some(hash.as_str()) {
            let target_id = current.target_id.clone().expect("checked above");
            current.username = Some(login.username);
            current.email = email;
            current.content_hash = Some(hash.clone());
            current.revision += 1;
            self.push(
                Slot::Users,
                Action::UpdateUser,
                &label,
                TargetChange::UpdateUser { target_id, user },
                current,
                &hash,
            );
        }
    }

    /// The lifecycle of an account the target should no longer hold.
    fn gone(&mut self, entry: &LedgerEntry) {
        let label = entry
            .username
            .clone()
            .unwrap_or_else(|| entry.external_id.clone());
        let mut after = entry.clone();
        match entry.state {
            ObjectState::Active => {
                after.state = ObjectState::Suspended;
                // An account enabled by hand while suspended (found by a
                // reconcile) keeps the grace period it had.
                after.suspended_at = Some(entry.suspended_at.unwrap_or(self.input.now));
                if self.can(TargetCapability::Suspend) {
                    after.revision += 1;
                    let object = object_ref(entry);
                    self.push(
                        Slot::Lifecycle,
                        Action::SuspendUser,
                        &label,
                        TargetChange::SuspendUser { object },
                        after,
                        "",
                    );
                } else {
                    self.plan.local.push(after);
                }
            }
            ObjectState::Suspended => {
                let since = entry.suspended_at.unwrap_or(self.input.now);
                if self.input.now - since >= Duration::days(i64::from(self.input.policy.grace_days))
                {
                    after.state = ObjectState::Deleted;
                    after.revision += 1;
                    let object = object_ref(entry);
                    self.push(
                        Slot::Lifecycle,
                        Action::DeleteUser,
                        &label,
                        TargetChange::DeleteUser { object },
                        after,
                        "",
                    );
                }
            }
            ObjectState::Deleted => {}
        }
    }

    /// Withholds the lifecycle's suspensions and deletions when there are
    /// too many and no operator confirmed this very set; returns the
    /// accounts withheld.
    fn hold(&mut self) -> HashSet<String> {
        let population = self
            .input
            .ledger
            .iter()
            .filter(|e| e.kind == ObjectKind::User && e.state != ObjectState::Deleted)
            .count();
        let local_suspensions: Vec<&LedgerEntry> = self
            .plan
            .local
            .iter()
            .filter(|e| e.state == ObjectState::Suspended)
            .collect();
        let mut changes: Vec<String> = self
            .lifecycle
            .iter()
            .map(|i| format!("{}:{}", i.action.as_str(), i.external_id))
            .collect();
        changes.extend(
            local_suspensions
                .iter()
                .map(|e| format!("suspend-user:{}", e.external_id)),
        );
        let policy = &self.input.policy.hold;
        let count = changes.len();
        if count == 0
            || count < policy.min_count
            || (count as f64) <= policy.max_share * population as f64
        {
            return HashSet::new();
        }
        let digest = hold_digest(&changes);
        if self.input.confirmed.contains(&digest) {
            return HashSet::new();
        }
        let named = |label: &str, id: &str| format!("{label} ({id})");
        let mut suspend: Vec<String> = local_suspensions
            .iter()
            .map(|e| {
                named(
                    e.username.as_deref().unwrap_or(&e.external_id),
                    &e.external_id,
                )
            })
            .collect();
        let mut delete = Vec::new();
        let mut withheld = HashSet::new();
        for item in self.lifecycle.drain(..) {
            let line = named(&item.label, &item.external_id);
            match item.action {
                Action::DeleteUser => delete.push(line),
                _ => suspend.push(line),
            }
            withheld.insert(item.external_id);
        }
        self.plan.local.retain(|e| {
            let held = e.state == ObjectState::Suspended;
            if held {
                withheld.insert(e.external_id.clone());
            }
            !held
        });
        self.plan.hold = Some(MassHold {
            digest,
            population,
            suspend,
            delete,
        });
        withheld
    }

    fn group(
        &mut self,
        group: &TargetGroup,
        entry: Option<&LedgerEntry>,
        withheld: &HashSet<String>,
    ) {
        // Accounts whose suspension waits keep their places meanwhile.
        let keep = |desired: &[ObjectRef], held: Option<&Vec<String>>| -> Vec<String> {
            let mut ids: BTreeSet<String> = desired.iter().map(|r| r.external_id.clone()).collect();
            ids.extend(
                held.into_iter()
                    .flatten()
                    .filter(|id| withheld.contains(*id))
                    .cloned(),
            );
            ids.into_iter().collect()
        };
        let members = keep(&group.members, entry.map(|e| &e.members));
        let owners = keep(&group.owners, entry.map(|e| &e.owners));
        let mut full = group.clone();
        full.members = refs(&members);
        full.owners = refs(&owners);
        let bare = TargetGroup {
            members: Vec::new(),
            owners: Vec::new(),
            ..group.clone()
        };
        let hash = content_hash(&bare);
        let label = group.name.clone();
        let mut after = match entry {
            Some(entry) if entry.state != ObjectState::Deleted && entry.target_id.is_some() => {
                entry.clone()
            }
            _ => {
                let mut after = entry
                    .cloned()
                    .unwrap_or_else(|| LedgerEntry::new(ObjectKind::Group, &group.external_id));
                after.state = ObjectState::Active;
                after.username = Some(group.name.clone());
                after.content_hash = Some(hash.clone());
                after.members = members;
                after.owners = owners;
                after.revision += 1;
                let payload = content_hash(&full);
                self.push(
                    Slot::Groups,
                    Action::CreateGroup,
                    &label,
                    TargetChange::CreateGroup { group: full },
                    after,
                    &payload,
                );
                return;
            }
        };
        let target_id = after.target_id.clone().expect("checked above");
        if after.content_hash.as_deref() != Some(hash.as_str()) {
            after.username = Some(group.name.clone());
            after.content_hash = Some(hash);
            after.members = members;
            after.owners = owners;
            after.revision += 1;
            let payload = content_hash(&full);
            self.push(
                Slot::Groups,
                Action::UpdateGroup,
                &label,
                TargetChange::UpdateGroup {
                    target_id,
                    group: full,
                },
                after,
                &payload,
            );
            return;
        }
        let delta = |want: &[String], have: &[String]| -> (Vec<ObjectRef>, Vec<ObjectRef>) {
            let want: BTreeSet<&String> = want.iter().collect();
            let have: BTreeSet<&String> = have.iter().collect();
            let add: Vec<String> = want.difference(&have).map(|s| s.to_string()).collect();
            let remove: Vec<String> = have.difference(&want).map(|s| s.to_string()).collect();
            (refs(&add), refs(&remove))
        };
        let (add, remove) = delta(&members, &after.members);
        let (add_owners, remove_owners) = delta(&owners, &after.owners);
        if add.is_empty() && remove.is_empty() && add_owners.is_empty() && remove_owners.is_empty()
        {
            return;
        }
        let change = MemberChange {
            group: object_ref(&after),
            add,
            remove,
            add_owners,
            remove_owners,
        };
        after.members = members;
        after.owners = owners;
        after.revision += 1;
        let payload = content_hash(&change);
        self.push(
            Slot::Groups,
            Action::ChangeMembers,
            &label,
            TargetChange::ChangeMembers { members: change },
            after,
            &payload,
        );
    }
}

#[derive(Clone, Copy)]
enum Slot {
    Users,
    Groups,
    Lifecycle,
}

fn object_ref(entry: &LedgerEntry) -> ObjectRef {
    ObjectRef {
        external_id: entry.external_id.clone(),
        target_id: entry.target_id.clone(),
    }
}

/// References by external id; the engine adds the target's ids when it
/// sends them.
fn refs(ids: &[String]) -> Vec<ObjectRef> {
    ids.iter()
        .map(|id| ObjectRef {
            external_id: id.clone(),
            target_id: None,
        })
        .collect()
}

/// The plan for one target.
pub fn plan(input: &PlanInput) -> Plan {
    let mut planner = Planner {
        input,
        plan: Plan::default(),
        groups: Vec::new(),
        lifecycle: Vec::new(),
    };
    let users: HashMap<&str, &LedgerEntry> = input
        .ledger
        .iter()
        .filter(|e| e.kind == ObjectKind::User)
        .map(|e| (e.external_id.as_str(), e))
        .collect();
    let groups: HashMap<&str, &LedgerEntry> = input
        .ledger
        .iter()
        .filter(|e| e.kind == ObjectKind::Group)
        .map(|e| (e.external_id.as_str(), e))
        .collect();
    let mut taken: HashSet<String> = input.taken.clone();
    for entry in users.values() {
        taken.extend(entry.username.clone());
        taken.extend(entry.email.clone());
    }
    for wanted in input.desired.users.values() {
        planner.user(
            wanted,
            users.get(wanted.external_id.as_str()).copied(),
            &mut taken,
        );
    }
    let mut gone: Vec<&&LedgerEntry> = users
        .values()
        .filter(|e| !input.desired.users.contains_key(&e.external_id))
        .collect();
    gone.sort_by(|a, b| a.external_id.cmp(&b.external_id));
    for entry in gone {
        planner.gone(entry);
    }
    let withheld = planner.hold();
    for group in input.desired.groups.values() {
        planner.group(
            group,
            groups.get(group.external_id.as_str()).copied(),
            &withheld,
        );
    }
    let mut gone_groups: Vec<&&LedgerEntry> = groups
        .values()
        .filter(|e| {
            e.state == ObjectState::Active && !input.desired.groups.contains_key(&e.external_id)
        })
        .collect();
    gone_groups.sort_by(|a, b| a.external_id.cmp(&b.external_id));
    for entry in gone_groups {
        let mut after = (*entry).clone();
        after.state = ObjectState::Deleted;
        after.revision += 1;
        let label = entry.username.clone().unwrap_or_default();
        let object = object_ref(entry);
        planner.push(
            Slot::Groups,
            Action::DeleteGroup,
            &label,
            TargetChange::DeleteGroup { object },
            after,
            "",
        );
    }
    let Planner {
        mut plan,
        groups,
        lifecycle,
        ..
    } = planner;
    plan.items.extend(groups);
    plan.items.extend(lifecycle);
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::desired::tests::{class, pupil};
    use crate::targets::{Source, Templates, desired};
    use rostersync_model::{MemberRole, Role};

    const ALL: [TargetCapability; 4] = [
        TargetCapability::Groups,
        TargetCapability::GroupOwners,
        TargetCapability::Suspend,
        TargetCapability::ReadBack,
    ];

    fn day(n: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000 + n * 86_400, 0).unwrap()
    }

    /// A school of `n` pupils in one class with one teacher.
    fn school(n: usize) -> Source {
        let mut accounts: Vec<_> = (0..n)
            .map(|i| {
                pupil(
                    &format!("S{i:02}"),
                    "Zoë",
                    &format!("O'Neil{}", i % 3),
                    "north",
                )
            })
            .collect();
        let mut teacher = pupil("T1", "Ada", "Byron", "north");
        teacher.role = Role::Staff;
        accounts.push(teacher);
        let mut members: Vec<(String, MemberRole)> = accounts
            .iter()
            .map(|a| (a.id.clone(), MemberRole::Student))
            .collect();
        members.last_mut().unwrap().1 = MemberRole::Teacher;
        let members: Vec<(&str, MemberRole)> =
            members.iter().map(|(a, r)| (a.as_str(), *r)).collect();
        Source {
            accounts,
            groups: vec![class("7A-Ma", "7A Maths", &members)],
        }
    }

    struct Target {
        policy: TargetPolicy,
        capabilities: Vec<TargetCapability>,
        ledger: Vec<LedgerEntry>,
        taken: HashSet<String>,
        renames: Vec<Rename>,
        confirmed: HashSet<String>,
    }

    impl Target {
        fn new(capabilities: &[TargetCapability]) -> Self {
            Self {
                policy: TargetPolicy {
                    templates: Templates {
                        email: Some(crate::targets::Template::fixed(
                            "{first}.{last}{n}@{domain}",
                        )),
                        ..Templates::default()
                    },
                    domain: "school.org".into(),
                    ..TargetPolicy::default()
                },
                capabilities: capabilities.to_vec(),
                ledger: Vec::new(),
                taken: HashSet::new(),
                renames: Vec::new(),
                confirmed: HashSet::new(),
            }
        }

        fn plan(&self, source: &Source, now: DateTime<Utc>) -> Plan {
            let desired = desired(&self.policy, &self.capabilities, source);
            plan(&PlanInput {
                target: "apps",
                policy: &self.policy,
                capabilities: &self.capabilities,
                desired: &desired,
                ledger: &self.ledger,
                taken: &self.taken,
                renames: &self.renames,
                confirmed: &self.confirmed,
                now,
            })
        }

        /// What the engine does once every change is done.
        fn deliver(&mut self, plan: &Plan) {
            let entries = plan
                .items
                .iter()
                .map(|i| i.after.clone())
                .chain(plan.local.iter().cloned());
            for mut entry in entries {
                entry
                    .target_id
                    .get_or_insert_with(|| format!("t-{}", entry.external_id));
                self.ledger.retain(|e| e.external_id != entry.external_id);
                self.ledger.push(entry);
            }
        }

        fn entry(&self, id: &str) -> &LedgerEntry {
            self.ledger.iter().find(|e| e.external_id == id).unwrap()
        }
    }

    fn actions(plan: &Plan) -> Vec<(Action, String)> {
        plan.items
            .iter()
            .map(|i| (i.action, i.label.clone()))
            .collect()
    }

    #[test]
    fn a_first_plan_makes_every_user_then_every_class_with_its_members_and_is_stable() {
        let target = Target::new(&ALL);
        let source = school(3);
        let plan = target.plan(&source, day(0));
        assert_eq!(
            actions(&plan),
            [
                (Action::CreateUser, "zoe.oneil0".to_string()),
                (Action::CreateUser, "zoe.oneil1".into()),
                (Action::CreateUser, "zoe.oneil2".into()),
                (Action::CreateUser, "ada.byron".into()),
                (Action::CreateGroup, "7A Maths".into()),
            ]
        );
        let TargetChange::CreateGroup { group } = &plan.items[4].item.change else {
            panic!("expected a group");
        };
        assert_eq!(group.members.len(), 3);
        assert_eq!(group.owners[0].external_id, "T1");
        let again = target.plan(&source, day(1));
        let keys = |p: &Plan| {
            p.items
                .iter()
                .map(|i| i.item.key.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&plan), keys(&again), "a re-plan yields the same keys");
        let mut target = target;
        target.deliver(&plan);
        assert_eq!(
            target.plan(&source, day(1)),
            Plan::default(),
            "nothing left to do"
        );
    }

    #[test]
    fn the_same_name_twice_gets_2_and_a_conflict_moves_on_to_the_next() {
        let mut target = Target::new(&ALL);
        let mut source = school(0);
        source.accounts.push(pupil("S1", "Zoë", "O'Neil", "north"));
        source.accounts.push(pupil("S2", "Zoe", "ONeil", "north"));
        target.taken.insert("zoe.oneil2".into());
        let plan = target.plan(&source, day(0));
        let labels: Vec<String> = plan.items.iter().map(|i| i.label.clone()).collect();
        assert_eq!(labels[..2], ["zoe.oneil", "zoe.oneil3"]);
        let TargetChange::CreateUser { user } = &plan.items[1].item.change else {
            panic!("expected a create");
        };
        assert_eq!(user.email.as_deref(), Some("zoe.oneil3@school.org"));
    }

    #[test]
    fn a_leaver_is_suspended_deleted_after_the_grace_period_and_a_returner_re_enabled() {
        let mut target = Target::new(&ALL);
        let source = school(20);
        target.deliver(&target.plan(&source, day(0)));
        let mut left = source.clone();
        left.accounts[0].active = false;
        let plan = target.plan(&left, day(1));
        assert_eq!(
            actions(&plan),
            [
                (Action::ChangeMembers, "7A Maths".to_string()),
                (Action::SuspendUser, "zoe.oneil0".into())
            ]
        );
        target.deliver(&plan);
        assert_eq!(target.entry("S00").state, ObjectState::Suspended);
        assert_eq!(
            target.plan(&left, day(30)),
            Plan::default(),
            "within the grace period"
        );

        let back = target.plan(&source, day(20));
        assert_eq!(
            actions(&back)[0],
            (Action::EnableUser, "zoe.oneil0".to_string())
        );
        assert!(
            back.items.iter().all(|i| i.action != Action::CreateUser),
            "never a second account"
        );
        let TargetChange::EnableUser { object } = &back.items[0].item.change else {
            panic!("expected an enable");
        };
        assert_eq!(object.target_id.as_deref(), Some("t-S00"));

        let gone = target.plan(&left, day(31));
        assert_eq!(
            actions(&gone),
            [(Action::DeleteUser, "zoe.oneil0".to_string())]
        );
        target.deliver(&gone);
        assert_eq!(target.entry("S00").state, ObjectState::Deleted);
        assert_eq!(target.plan(&left, day(60)), Plan::default());
    }

    #[test]
    fn a_suspension_repeated_after_a_return_has_a_key_of_its_own() {
        let mut target = Target::new(&ALL);
        let source = school(20);
        target.deliver(&target.plan(&source, day(0)));
        let mut left = source.clone();
        left.accounts[0].active = false;
        let first = target.plan(&left, day(1));
        target.deliver(&first);
        target.deliver(&target.plan(&source, day(2)));
        let second = target.plan(&left, day(3));
        let key = |p: &Plan| {
            p.items
                .iter()
                .find(|i| i.action == Action::SuspendUser)
                .unwrap()
                .item
                .key
                .clone()
        };
        assert_ne!(key(&first), key(&second));
    }

    #[test]
    fn a_target_that_cannot_suspend_is_sent_nothing_until_the_deletion() {
        let mut target = Target::new(&[TargetCapability::Groups]);
        let source = school(20);
        target.deliver(&target.plan(&source, day(0)));
        let mut left = source.clone();
        left.accounts[0].active = false;
        let plan = target.plan(&left, day(1));
        assert_eq!(
            actions(&plan),
            [(Action::ChangeMembers, "7A Maths".to_string())]
        );
        assert_eq!(plan.local[0].state, ObjectState::Suspended);
        target.deliver(&plan);
        assert_eq!(
            actions(&target.plan(&left, day(31))),
            [(Action::DeleteUser, "zoe.oneil0".to_string())]
        );
    }

    #[test]
    fn a_new_name_waits_for_approval_and_then_renames_the_login() {
        let mut target = Target::new(&ALL);
        let source = school(1);
        target.deliver(&target.plan(&source, day(0)));
        let mut married = source.clone();
        married.accounts[0].person.as_mut().unwrap().last_name = Some("Smith".into());
        let plan = target.plan(&married, day(1));
        assert_eq!(plan.renames.len(), 1);
        assert_eq!(
            (plan.renames[0].from.as_str(), plan.renames[0].to.as_str()),
            ("zoe.oneil0", "zoe.smith")
        );
        let TargetChange::UpdateUser { user, .. } = &plan.items[0].item.change else {
            panic!("expected an update of the name");
        };
        assert_eq!(
            user.username, "zoe.oneil0",
            "the login stays until approved"
        );
        assert_eq!(user.family_name.as_deref(), Some("Smith"));
        target.deliver(&plan);
        target.renames = vec![Rename {
            status: RenameStatus::Approved,
            ..plan.renames[0].clone()
        }];
        let renamed = target.plan(&married, day(2));
        assert!(renamed.renames.is_empty());
        let TargetChange::UpdateUser { user, target_id } = &renamed.items[0].item.change else {
            panic!("expected the rename");
        };
        assert_eq!(
            (user.username.as_str(), target_id.as_str()),
            ("zoe.smith", "t-S00")
        );
        assert_eq!(user.email.as_deref(), Some("zoe.smith@school.org"));
    }

    #[test]
    fn a_mass_suspension_is_withheld_with_its_evidence_until_confirmed() {
        let mut target = Target::new(&ALL);
        let source = school(10);
        target.deliver(&target.plan(&source, day(0)));
        let mut emptied = source.clone();
        for account in &mut emptied.accounts[..6] {
            account.active = false;
        }
        let plan = target.plan(&emptied, day(1));
        let hold = plan
            .hold
            .clone()
            .expect("six of eleven is over the threshold");
        assert_eq!(hold.suspend.len(), 6);
        assert!(hold.suspend[0].contains("(S00)"), "{:?}", hold.suspend);
        assert_eq!(hold.population, 11);
        assert!(
            plan.items.is_empty(),
            "nothing leaves while held: {:?}",
            actions(&plan)
        );
        target.confirmed.insert(hold.digest);
        let released = target.plan(&emptied, day(1));
        assert!(released.hold.is_none());
        assert_eq!(
            released
                .items
                .iter()
                .filter(|i| i.action == Action::SuspendUser)
                .count(),
            6
        );
        let TargetChange::ChangeMembers { members } = &released.items[0].item.change else {
            panic!("expected the class to lose them");
        };
        assert_eq!(members.remove.len(), 6);
    }

    #[test]
    fn a_class_change_is_sent_as_a_delta() {
        let mut target = Target::new(&ALL);
        let source = school(3);
        target.deliver(&target.plan(&source, day(0)));
        let mut moved = source.clone();
        moved.groups[0].members.remove(0);
        moved.accounts.push(pupil("S99", "New", "Pupil", "north"));
        moved.groups[0]
            .members
            .push(("S99".into(), MemberRole::Student));
        let plan = target.plan(&moved, day(1));
        assert_eq!(
            actions(&plan),
            [
                (Action::CreateUser, "new.pupil".to_string()),
                (Action::ChangeMembers, "7A Maths".into())
            ]
        );
        let TargetChange::ChangeMembers { members } = &plan.items[1].item.change else {
            panic!("expected a delta");
        };
        let ids = |refs: &[ObjectRef]| {
            refs.iter()
                .map(|r| r.external_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            (ids(&members.add), ids(&members.remove)),
            (vec!["S99".to_string()], vec!["S00".to_string()])
        );
        assert_eq!(members.group.target_id.as_deref(), Some("t-north/7A-Ma"));
    }
}
