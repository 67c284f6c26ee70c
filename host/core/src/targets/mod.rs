//! Provisioning targets, the pure half: what a target should hold (from
//! accounts, groups and memberships, per target mapping), the identity
//! rules that name it, the account lifecycle (suspend, grace period,
//! delete, re-enable), the hold on mass suspensions, and the ordered plan
//! of changes against the ledger of what the target holds. No I/O, no
//! clock: the time comes in as an argument.
//!
//! - [`identity`]: templates, folding, collisions.
//! - [`desired`]: the users and groups a target should hold.
//! - [`plan`]: desired state against the ledger, as keyed changes.

pub mod desired;
pub mod identity;
pub mod plan;

use chrono::{DateTime, Utc};
use rostersync_model::GroupKind;
use rostersync_model::target::{ObjectKind, TargetRole};
use serde::{Deserialize, Serialize};

pub use desired::{Desired, Source, SourceAccount, SourceGroup, WantedUser, desired};
pub use identity::{LoginRules, NameParts, Template, TemplateError, fold};
pub use plan::{
    Action, MassHold, Plan, PlanInput, PlannedItem, Rename, RenameStatus, hold_digest, plan,
};

/// How one target is fed: which connections and roles, which groups, how
/// things are named and placed, and the lifecycle's limits. Every field
/// has a documented default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TargetPolicy {
    /// The connections whose people and groups the target gets; empty
    /// means every connection.
    pub connections: Vec<String>,
    /// The roles whose accounts the target gets.
    pub roles: Vec<TargetRole>,
    /// The kinds of group the target gets.
    pub group_kinds: Vec<GroupKind>,
    /// `{domain}` in templates.
    pub domain: String,
    /// `{prefix}` in group templates.
    pub group_prefix: String,
    pub templates: Templates,
    /// Days a suspended account waits before it is deleted.
    pub grace_days: u32,
    pub hold: LifecycleHold,
}

impl Default for TargetPolicy {
    fn default() -> Self {
        Self {
            connections: Vec::new(),
            roles: vec![TargetRole::Student, TargetRole::Staff],
            group_kinds: vec![GroupKind::Class, GroupKind::Registration],
            domain: String::new(),
            group_prefix: String::new(),
            templates: Templates::default(),
            grace_days: 30,
            hold: LifecycleHold::default(),
        }
    }
}

impl TargetPolicy {
    pub fn serves(&self, connection: &str) -> bool {
        self.connections.is_empty() || self.connections.iter().any(|c| c == connection)
    }
}

/// The templates of one target (see [`identity`] for the placeholders).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Templates {
    pub username: Template,
    /// Without one, the account's own email from the source is sent.
    pub email: Option<Template>,
    /// Where an account is placed (an OU); none when the target has no
    /// such notion.
    pub user_container: Option<Template>,
    pub group_name: Template,
    pub group_container: Option<Template>,
}

impl Default for Templates {
    fn default() -> Self {
        Self {
            username: Template::fixed("{first}.{last}{n}"),
            email: None,
            user_container: None,
            group_name: Template::fixed("{prefix}{name}"),
            group_container: None,
        }
    }
}

/// Hold a plan that would suspend or delete more than `max_share` of the
/// target's accounts, as long as at least `min_count` would go, as the
/// roster's removal holds do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleHold {
    pub max_share: f64,
    pub min_count: usize,
}

impl Default for LifecycleHold {
    fn default() -> Self {
        Self {
            max_share: 0.10,
            min_count: 5,
        }
    }
}

/// Where an object stands in the target, as far as the host delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectState {
    Active,
    Suspended,
    Deleted,
}

impl ObjectState {
    pub const ALL: [Self; 3] = [Self::Active, Self::Suspended, Self::Deleted];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleted => "deleted",
        }
    }

    pub fn parse(state: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == state)
    }
}

/// One object of the ledger: what the host last delivered to a target
/// for one of its users or groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub kind: ObjectKind,
    pub external_id: String,
    pub target_id: Option<String>,
    /// A user's login, or a group's name.
    pub username: Option<String>,
    pub email: Option<String>,
    pub state: ObjectState,
    pub suspended_at: Option<DateTime<Utc>>,
    /// The content last delivered; `None` forces the next plan to send it
    /// again (a drift found by reconcile).
    pub content_hash: Option<String>,
    /// A group's members and owners, by external id, as last delivered.
    pub members: Vec<String>,
    pub owners: Vec<String>,
    /// Counts delivered changes, so a change repeated later (a second
    /// suspension) gets a key of its own.
    pub revision: i64,
}

impl LedgerEntry {
    /// A new entry for an object the target has just made or matched.
    pub fn new(kind: ObjectKind, external_id: &str) -> Self {
        Self {
            kind,
            external_id: external_id.to_string(),
            target_id: None,
            username: None,
            email: None,
            state: ObjectState::Active,
            suspended_at: None,
            content_hash: None,
            members: Vec::new(),
            owners: Vec::new(),
            revision: 0,
        }
    }
}
