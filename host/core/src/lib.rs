//! The diff-and-provision core: what changed between the roster a
//! connection last applied and what its connector reads now, and whether
//! that change is safe to apply. Pure: no I/O, no clock, no database, no
//! wasmtime, so it can be tested and benchmarked alone.
//!
//! - [`entity`]: which kind of object a record is, its key, its content hash.
//! - [`diff`]: the streaming diff and the change set it produces.
//! - [`validate`]: which records a connection syncs, and the issues it reports.
//! - [`matching`]: create mode and link mode.
//! - [`holds`]: the safety checks that stop a dangerous change set.

pub mod diff;
pub mod entity;
pub mod holds;
pub mod matching;
pub mod synthetic;
pub mod validate;

pub use diff::{ChangeSet, Diff, FieldChange, PendingChanges, PriorHashes, Roster, Update};
pub use entity::{ContentHash, EntityKey, EntityKind};
pub use holds::{Census, HoldPolicy, HoldReason, Population, RunHistory, check_holds};
pub use matching::{
    Account, MatchKey, MatchPolicy, Matching, Provision, ProvisionMode, RemovalAction, match_people,
};
pub use validate::{Checked, Issue, ValidationPolicy, Validator};
