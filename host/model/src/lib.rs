//! The roster model: the host's own types for what connectors deliver and
//! how they describe themselves.
//!
//! Every supported WIT version's bindings are converted into these types at
//! the runtime boundary, so the rest of the host (validation, diff, store,
//! CLI) never sees generated bindings and never cares which contract
//! version a connector was built against. These types mirror the newest
//! WIT; fields an older contract lacks are `None`. [`target`] does the same
//! for provisioning targets and holds the interface every target implements.

mod record;
mod settings;
pub mod target;

pub use record::{
    Admission, ContactType, Date, EnrolmentStatus, EntityKind, Group, GroupKind, MalformedRecord,
    MemberRole, Membership, MembershipKey, Person, Record, Relationship, RelationshipKey, Removal,
    Role, parse_date,
};
pub use settings::{
    Attribute, Capability, ConnectorInfo, Mode, SchoolInfo, SettingKind, SettingSpec, Settings,
    SyncError,
};
