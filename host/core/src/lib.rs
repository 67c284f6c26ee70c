//! The diff-and-provision core: what changed between the roster a
//! connection last applied and what its connector reads now, and whether
//! that change is safe to apply. Pure: no I/O, no clock, no database, no
//! wasmtime, so it can be tested and benchmarked alone.
//!
//! - [`entity`]: which kind of object a record is, its key, its content hash.
//! - [`diff`]: the streaming diff and the change set it produces.
//! - [`policy`]: the rules that can leave a record out, and how to fix each.
//! - [`validate`]: which records a connection syncs, and the issues it reports.
//! - [`integrity`]: memberships and relationships only between stored ends.
//! - [`coverage`]: whether a run left out too much of a role to count as complete.
//! - [`matching`]: create mode and link mode, within a role first.
//! - [`holds`]: the safety checks that stop a dangerous change set.
//! - [`targets`]: what each provisioning target should hold, and the plan
//!   that takes it there.

pub mod answers;
pub mod coverage;
pub mod diff;
pub mod entity;
pub mod holds;
pub mod integrity;
pub mod matching;
pub mod policy;
pub mod synthetic;
pub mod targets;
pub mod validate;

pub use answers::{
    Change, ChangesAnswer, ContactsAnswer, DisconnectedAnswer, Effect, HoldAnswer, HoldKind,
    Refusal, RemovalsAnswer,
};
pub use coverage::{Shortfall, shortfalls};
pub use diff::{ChangeSet, Diff, FieldChange, PendingChanges, PriorHashes, Roster, Update};
pub use entity::{ContentHash, EntityKey, EntityKind};
pub use holds::{
    Census, HoldPolicy, HoldReason, Population, RunHistory, Screening, Verdicts, check_holds,
};
pub use matching::{
    Account, MatchKey, MatchPolicy, Matching, Provision, ProvisionMode, RemovalAction, match_people,
};
pub use policy::Rule;
pub use validate::{Checked, Issue, Tally, ValidationPolicy, Validator};
