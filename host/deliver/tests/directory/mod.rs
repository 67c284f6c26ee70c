//! An in-memory directory that implements the target contract
//! (`wit/target/since_v0.1.0/target.wit`) the way a real one behaves: a
//! login or email held by another object is a conflict (SCIM's `409
//! uniqueness`, RFC 7644 section 3.3), a create for an external id it
//! already holds is matched to that object, an unknown id is refused, and
//! `read` pages through what it holds. Tests can make it fail whole calls
//! (an outage, or rate limiting with `Retry-After`), ask for a change to
//! be retried, refuse a person, and change things behind the host's back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use rostersync_model::SyncError;
use rostersync_model::target::{
    ChangeItem, ChangeResult, HeldGroup, HeldObject, HeldPage, HeldUser, ObjectKind, ObjectRef,
    Outcome, Target, TargetCapability, TargetChange, TargetFuture, TargetInfo,
};

pub const EVERYTHING: [TargetCapability; 5] = [
    TargetCapability::Groups,
    TargetCapability::GroupOwners,
    TargetCapability::Suspend,
    TargetCapability::ReadBack,
    TargetCapability::Passwords,
];

#[derive(Default)]
pub struct State {
    pub users: BTreeMap<String, HeldUser>,
    pub groups: BTreeMap<String, HeldGroup>,
    pub passwords: HashMap<String, String>,
    next_id: u64,
    /// Whole calls still to fail, and how.
    pub outages: Vec<SyncError>,
    /// External ids answered "retry after 1 s" once.
    pub retry_once: HashSet<String>,
    /// External ids refused every time.
    pub refuse: HashSet<String>,
    /// Every key the directory was sent, in order.
    pub keys: Vec<String>,
    pub calls: usize,
}

pub struct Directory {
    info: TargetInfo,
    pub state: Mutex<State>,
}

impl Directory {
    pub fn new(capabilities: &[TargetCapability]) -> Self {
        Self {
            info: TargetInfo {
                provider: "In-memory directory".into(),
                version: "1.0.0".into(),
                description: "Holds users and groups in memory.".into(),
                settings: Vec::new(),
                capabilities: capabilities.to_vec(),
            },
            state: Mutex::new(State::default()),
        }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Users by login: (active, target id).
    pub fn logins(&self) -> BTreeMap<String, (bool, String)> {
        self.with(|s| {
            s.users
                .values()
                .map(|u| (u.username.clone(), (u.active, u.target_id.clone())))
                .collect()
        })
    }

    /// A group's members and owners by login, by group name.
    pub fn classes(&self) -> BTreeMap<String, (Vec<String>, Vec<String>)> {
        self.with(|s| {
            let login = |id: &String| {
                s.users
                    .get(id)
                    .map(|u| u.username.clone())
                    .unwrap_or_else(|| id.clone())
            };
            s.groups
                .values()
                .map(|g| {
                    let mut members: Vec<String> = g.members.iter().map(login).collect();
                    let mut owners: Vec<String> = g.owners.iter().map(login).collect();
                    members.sort();
                    owners.sort();
                    (g.name.clone(), (members, owners))
                })
                .collect()
        })
    }
}

impl State {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{}", self.next_id)
    }

    fn taken(&self, login: &str, email: &Option<String>, except: Option<&str>) -> bool {
        self.users.values().any(|u| {
            Some(u.target_id.as_str()) != except
                && (u.username.eq_ignore_ascii_case(login)
                    || (email.is_some()
                        && u.email.as_deref().map(str::to_lowercase)
                            == email.as_deref().map(str::to_lowercase)))
        })
    }

    fn ids(refs: &[ObjectRef]) -> Result<Vec<String>, Outcome> {
        refs.iter()
            .map(|r| {
                r.target_id.clone().ok_or_else(|| {
                    Outcome::Refused(format!("member {} has no id here", r.external_id))
                })
            })
            .collect()
    }

    fn external_id(change: &TargetChange) -> Option<&str> {
        Some(match change {
            TargetChange::CreateUser { user } | TargetChange::UpdateUser { user, .. } => {
                &user.external_id
            }
            TargetChange::SuspendUser { object }
            | TargetChange::EnableUser { object }
            | TargetChange::DeleteUser { object }
            | TargetChange::DeleteGroup { object } => &object.external_id,
            TargetChange::CreateGroup { group } | TargetChange::UpdateGroup { group, .. } => {
                &group.external_id
            }
            TargetChange::ChangeMembers { members } => &members.group.external_id,
        })
    }

    fn apply(&mut self, change: TargetChange) -> Outcome {
        if let Some(id) = Self::external_id(&change) {
            if self.refuse.contains(id) {
                return Outcome::Refused(format!("{id} is not allowed in this directory"));
            }
            if self.retry_once.remove(id) {
                return Outcome::RetryAfter {
                    seconds: 1,
                    reason: "the directory is replicating".into(),
                };
            }
        }
        let missing = |id: &str| Outcome::Refused(format!("no object has id {id}"));
        match change {
            TargetChange::CreateUser { user } => {
                if let Some(held) = self
                    .users
                    .values()
                    .find(|u| u.external_id.as_deref() == Some(&user.external_id))
                {
                    return Outcome::Matched(held.target_id.clone());
                }
                if self.taken(&user.username, &user.email, None) {
                    return Outcome::Conflict(format!("{} is taken", user.username));
                }
                let id = self.id("u");
                if let Some(password) = &user.initial_password {
                    self.passwords.insert(id.clone(), password.clone());
                }
                self.users.insert(
                    id.clone(),
                    HeldUser {
                        target_id: id.clone(),
                        external_id: Some(user.external_id),
                        username: user.username,
                        email: user.email,
                        given_name: user.given_name,
                        family_name: user.family_name,
                        display_name: Some(user.display_name),
                        active: user.active,
                        container: user.container,
                    },
                );
                Outcome::Done(id)
            }
            TargetChange::UpdateUser { target_id, user } => {
                if !self.users.contains_key(&target_id) {
                    return missing(&target_id);
                }
                if self.taken(&user.username, &user.email, Some(&target_id)) {
                    return Outcome::Conflict(format!("{} is taken", user.username));
                }
                let held = self.users.get_mut(&target_id).unwrap();
                held.username = user.username;
                held.email = user.email;
                held.given_name = user.given_name;
                held.family_name = user.family_name;
                held.display_name = Some(user.display_name);
                held.container = user.container;
                Outcome::Done(target_id)
            }
            TargetChange::SuspendUser { object } | TargetChange::EnableUser { object }
                if object
                    .target_id
                    .as_ref()
                    .is_none_or(|id| !self.users.contains_key(id)) =>
            {
                missing(&object.external_id)
            }
            TargetChange::SuspendUser { object } => {
                let id = object.target_id.unwrap();
                self.users.get_mut(&id).unwrap().active = false;
                Outcome::Done(id)
            }
            TargetChange::EnableUser { object } => {
                let id = object.target_id.unwrap();
                self.users.get_mut(&id).unwrap().active = true;
                Outcome::Done(id)
            }
            TargetChange::DeleteUser { object } => {
                let id = object.target_id.unwrap_or_default();
                if self.users.remove(&id).is_none() {
                    return missing(&id);
                }
                for group in self.groups.values_mut() {
                    group.members.retain(|m| *m != id);
                    group.owners.retain(|m| *m != id);
                }
                Outcome::Done(id)
            }
            TargetChange::CreateGroup { group } => {
                if let Some(held) = self
                    .groups
                    .values()
                    .find(|g| g.external_id.as_deref() == Some(&group.external_id))
                {
                    return Outcome::Matched(held.target_id.clone());
                }
                let (members, owners) = match (Self::ids(&group.members), Self::ids(&group.owners))
                {
                    (Ok(m), Ok(o)) => (m, o),
                    (Err(e), _) | (_, Err(e)) => return e,
                };
                let id = self.id("g");
                self.groups.insert(
                    id.clone(),
                    HeldGroup {
                        target_id: id.clone(),
                        external_id: Some(group.external_id),
                        name: group.name,
                        members,
                        owners,
                    },
                );
                Outcome::Done(id)
            }
            TargetChange::UpdateGroup { target_id, group } => {
                let (members, owners) = match (Self::ids(&group.members), Self::ids(&group.owners))
                {
                    (Ok(m), Ok(o)) => (m, o),
                    (Err(e), _) | (_, Err(e)) => return e,
                };
                let Some(held) = self.groups.get_mut(&target_id) else {
                    return missing(&target_id);
                };
                held.name = group.name;
                held.members = members;
                held.owners = owners;
                Outcome::Done(target_id)
            }
            TargetChange::ChangeMembers { members: change } => {
                let id = change.group.target_id.clone().unwrap_or_default();
                let lists = [
                    &change.add,
                    &change.remove,
                    &change.add_owners,
                    &change.remove_owners,
                ]
                .map(|r| Self::ids(r));
                let [Ok(add), Ok(remove), Ok(add_owners), Ok(remove_owners)] = lists else {
                    return Outcome::Refused("a member has no id here".into());
                };
                let Some(held) = self.groups.get_mut(&id) else {
                    return missing(&id);
                };
                held.members.retain(|m| !remove.contains(m));
                held.members.extend(
                    add.into_iter()
                        .filter(|m| !held.members.contains(m))
                        .collect::<Vec<_>>(),
                );
                held.owners.retain(|m| !remove_owners.contains(m));
                held.owners.extend(
                    add_owners
                        .into_iter()
                        .filter(|m| !held.owners.contains(m))
                        .collect::<Vec<_>>(),
                );
                Outcome::Done(id)
            }
            TargetChange::DeleteGroup { object } => {
                let id = object.target_id.unwrap_or_default();
                match self.groups.remove(&id) {
                    Some(_) => Outcome::Done(id),
                    None => missing(&id),
                }
            }
        }
    }
}

/// Objects per page of `read`, small so paging is exercised.
const PAGE: usize = 3;

impl Target for Directory {
    fn info(&self) -> &TargetInfo {
        &self.info
    }

    fn check(&self) -> TargetFuture<'_, String> {
        Box::pin(async { Ok("reached the in-memory directory".to_string()) })
    }

    fn apply(&self, batch: Vec<ChangeItem>) -> TargetFuture<'_, Vec<ChangeResult>> {
        let result = self.with(|state| {
            state.calls += 1;
            if !state.outages.is_empty() {
                return Err(state.outages.remove(0));
            }
            Ok(batch
                .into_iter()
                .map(|item| {
                    state.keys.push(item.key.clone());
                    ChangeResult {
                        key: item.key,
                        outcome: state.apply(item.change),
                    }
                })
                .collect())
        });
        Box::pin(async move { result })
    }

    fn read(&self, kind: ObjectKind, cursor: Option<String>) -> TargetFuture<'_, HeldPage> {
        let start: usize = cursor.map_or(0, |c| c.parse().unwrap());
        let page = self.with(|state| {
            let objects: Vec<HeldObject> = match kind {
                ObjectKind::User => state
                    .users
                    .values()
                    .cloned()
                    .map(HeldObject::User)
                    .collect(),
                ObjectKind::Group => state
                    .groups
                    .values()
                    .cloned()
                    .map(HeldObject::Group)
                    .collect(),
            };
            let next = (start + PAGE < objects.len()).then(|| (start + PAGE).to_string());
            HeldPage {
                objects: objects.into_iter().skip(start).take(PAGE).collect(),
                next,
            }
        });
        Box::pin(async move { Ok(page) })
    }
}
