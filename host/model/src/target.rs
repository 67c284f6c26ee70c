//! The target model: the host's own types for what a provisioning target
//! is sent and answers, mirroring `wit/target/since_v0.1.0/target.wit`, and
//! the [`Target`] interface every target implements, whether it is a
//! WebAssembly plugin (SCIM, an app's API) or native to the host (LDAP).
//!
//! The delivery engine only ever sees a `dyn Target`: it never knows which
//! kind it drives.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::{Attribute, SettingSpec, SyncError};

/// What a target's system can do; the host never sends a change the target
/// did not declare it can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetCapability {
    Groups,
    /// Staff of a class become its owners.
    GroupOwners,
    /// Disables an account without deleting it.
    Suspend,
    /// `read` lists what the system holds.
    ReadBack,
    /// Accepts an initial password on create.
    Passwords,
}

/// Who a target is and what it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfo {
    pub provider: String,
    pub version: String,
    pub description: String,
    pub settings: Vec<SettingSpec>,
    pub capabilities: Vec<TargetCapability>,
}

impl TargetInfo {
    pub fn has(&self, capability: TargetCapability) -> bool {
        self.capabilities.contains(&capability)
    }
}

/// The role of an account's person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetRole {
    Student,
    Staff,
    Contact,
}

/// An account as the host wants a target to hold it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetUser {
    /// The host's stable id for the account.
    pub external_id: String,
    pub username: String,
    pub email: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: String,
    pub role: TargetRole,
    pub active: bool,
    /// Placement (an OU, an org unit path), from the target's template.
    pub container: Option<String>,
    /// Only on the create that first makes the account; never stored.
    #[serde(skip)]
    pub initial_password: Option<String>,
    /// `mis-id`, `year-group`, `registration-group` and the like.
    pub attributes: Vec<Attribute>,
}

impl std::fmt::Debug for TargetUser {
    /// Like the derived form, but never shows an initial password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetUser")
            .field("external_id", &self.external_id)
            .field("username", &self.username)
            .field("email", &self.email)
            .field("given_name", &self.given_name)
            .field("family_name", &self.family_name)
            .field("display_name", &self.display_name)
            .field("role", &self.role)
            .field("active", &self.active)
            .field("container", &self.container)
            .field(
                "initial_password",
                &self.initial_password.as_ref().map(|_| "<hidden>"),
            )
            .field("attributes", &self.attributes)
            .finish()
    }
}

/// An object the host refers to: its own id, and the target's once known.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    pub external_id: String,
    pub target_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetGroupKind {
    Class,
    Registration,
    Year,
    Other,
}

/// A group as the host wants a target to hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetGroup {
    pub external_id: String,
    pub name: String,
    pub kind: TargetGroupKind,
    pub description: Option<String>,
    pub container: Option<String>,
    pub members: Vec<ObjectRef>,
    pub owners: Vec<ObjectRef>,
    pub attributes: Vec<Attribute>,
}

/// Membership changes to one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberChange {
    pub group: ObjectRef,
    pub add: Vec<ObjectRef>,
    pub remove: Vec<ObjectRef>,
    pub add_owners: Vec<ObjectRef>,
    pub remove_owners: Vec<ObjectRef>,
}

/// One change a target is asked to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "change")]
pub enum TargetChange {
    CreateUser {
        user: TargetUser,
    },
    UpdateUser {
        target_id: String,
        user: TargetUser,
    },
    SuspendUser {
        object: ObjectRef,
    },
    EnableUser {
        object: ObjectRef,
    },
    DeleteUser {
        object: ObjectRef,
    },
    CreateGroup {
        group: TargetGroup,
    },
    UpdateGroup {
        target_id: String,
        group: TargetGroup,
    },
    ChangeMembers {
        members: MemberChange,
    },
    DeleteGroup {
        object: ObjectRef,
    },
}

/// One change of a batch, under its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeItem {
    pub key: String,
    pub change: TargetChange,
}

/// What became of one change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "outcome", content = "detail")]
pub enum Outcome {
    /// Applied; the target's id for the object.
    Done(String),
    /// An existing object was adopted; the target's id for it.
    Matched(String),
    /// The username or email is taken by an object the host does not own.
    Conflict(String),
    /// Send it again after this many seconds.
    RetryAfter { seconds: u32, reason: String },
    /// Refused for good, with one sentence why.
    Refused(String),
}

/// The answer to one change, by its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeResult {
    pub key: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectKind {
    User,
    Group,
}

/// An account as the target's system holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldUser {
    pub target_id: String,
    pub external_id: Option<String>,
    pub username: String,
    pub email: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
    pub active: bool,
    pub container: Option<String>,
}

/// A group as the target's system holds it; members by the target's ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldGroup {
    pub target_id: String,
    pub external_id: Option<String>,
    pub name: String,
    pub members: Vec<String>,
    pub owners: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum HeldObject {
    User(HeldUser),
    Group(HeldGroup),
}

/// One page of what a target's system holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HeldPage {
    pub objects: Vec<HeldObject>,
    pub next: Option<String>,
}

/// A boxed future, so [`Target`] can be used as a trait object.
pub type TargetFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SyncError>> + Send + 'a>>;

/// A provisioning target with its settings bound: a WebAssembly target
/// plugin, or one native to the host (LDAP). Errors for a whole call use
/// the same kinds as a connector's ([`SyncError`]); per-change outcomes
/// come back in [`ChangeResult`]s.
pub trait Target: Send + Sync {
    fn info(&self) -> &TargetInfo;

    /// Reaches the system and says, in one sentence, what it reached.
    fn check(&self) -> TargetFuture<'_, String>;

    /// Applies a batch in order; one result per change it got to.
    fn apply(&self, batch: Vec<ChangeItem>) -> TargetFuture<'_, Vec<ChangeResult>>;

    /// One page of what the system holds (only when it declared
    /// [`TargetCapability::ReadBack`]).
    fn read(&self, kind: ObjectKind, cursor: Option<String>) -> TargetFuture<'_, HeldPage>;
}
