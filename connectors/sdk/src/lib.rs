//! Write a rostersync connector.
//!
//! A connector is a `wasm32-wasip2` component that reads one provider and
//! hands the host roster records in batches. With this crate you implement
//! one trait, [`Connector`], and export it with [`export_connector!`]; the
//! generated WIT bindings stay behind it. Helpers: [`http`] (requests over
//! `wasi:http` with typed errors and retries), [`Pager`] (paginated
//! endpoints read one page per batch), [`departures`] (removals a delta
//! infers from records re-sent whole) and [`log`].
//!
//! ```ignore
//! use rostersync_connector_sdk::*;
//!
//! struct Example;
//!
//! impl Connector for Example {
//!     type Snapshot = ExampleSnapshot;
//!     fn describe() -> ConnectorInfo { /* provider, settings, capabilities */ }
//!     fn check(settings: &Settings) -> Result<SchoolInfo, SyncError> { /* one request */ }
//!     fn snapshot(settings: Settings, mode: Mode) -> ExampleSnapshot { /* no I/O here */ }
//! }
//!
//! export_connector!(Example);
//! ```
//!
//! This SDK targets the contract `rostersync:connector@0.2.0`.
//!
//! The same crate writes provisioning targets (`rostersync:target@0.1.0`):
//! see [`target`], its [`target::Target`] trait and [`export_target!`].
//! Both sides share [`http`] and [`Settings`]. Each export macro embeds
//! only its own world, so a connector never exports a target's functions
//! or the other way round.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "connector",
        path: "../../wit/since_v0.2.0",
        pub_export_macro: true,
        export_macro_name: "__export_connector_world",
        default_bindings_module: "rostersync_connector_sdk::bindings",
    });
}

#[doc(hidden)]
pub mod target_bindings {
    wit_bindgen::generate!({
        world: "target",
        path: "../../wit/target/since_v0.1.0",
        pub_export_macro: true,
        export_macro_name: "__export_target_world",
        default_bindings_module: "rostersync_connector_sdk::target_bindings",
    });
}

pub mod date;
pub mod departures;
pub mod http;
pub mod log;
mod pager;
mod records;
mod settings;
pub mod target;

pub use bindings::rostersync::connector::types::{
    Admission, Attribute, Capability, ConnectorInfo, ContactType, EnrolmentStatus, Group,
    GroupKind, MemberRole, Membership, MembershipKey, Mode, Person, RateLimit, Relationship,
    RelationshipKey, Removal, Role, RosterRecord, SchoolInfo, SettingKind, SettingSpec, SyncError,
};
pub use pager::{MAX_BATCH, Page, Pager};
pub use settings::Settings;

/// The WIT contract version this SDK builds connectors against.
pub const WIT_VERSION: &str = "0.2.0";

/// Where a drop-folder connector finds its connection's files inside the
/// sandbox.
pub const DROP_FOLDER: &str = "/drop";

/// The connection's drop folder: [`DROP_FOLDER`] in the component. A
/// natively built connector (unit tests, the native benchmark) reads the
/// folder named by `ROSTERSYNC_DROP_FOLDER` instead, since it has no
/// sandbox to mount one.
pub fn drop_folder() -> std::path::PathBuf {
    #[cfg(not(target_arch = "wasm32"))]
    if let Some(folder) = std::env::var_os("ROSTERSYNC_DROP_FOLDER") {
        return folder.into();
    }
    DROP_FOLDER.into()
}

/// A connector: who it is, how to test a connection, how to read.
pub trait Connector: 'static {
    type Snapshot: Snapshot;

    /// Who the connector is and what settings it needs. Must not do I/O.
    fn describe() -> ConnectorInfo;

    /// "Test connection": reach the provider and say which school the
    /// settings reach. Map a refused credential to `SyncError::Unauthorized`.
    fn check(settings: &Settings) -> Result<SchoolInfo, SyncError>;

    /// Prepares a read. Must not do I/O: errors belong in the first
    /// [`Snapshot::next_batch`].
    fn snapshot(settings: Settings, mode: Mode) -> Self::Snapshot;
}

/// One read of the provider, pulled a batch at a time.
pub trait Snapshot: 'static {
    /// The next batch, or `None` when the read is complete. Return an error
    /// rather than a short read: the host then applies nothing destructive.
    fn next_batch(&mut self) -> Result<Option<Vec<RosterRecord>>, SyncError>;

    /// After the read completed: where a later delta should resume. The
    /// default suits connectors without delta reads.
    fn cursor(&self) -> Option<String> {
        None
    }
}

/// Exports a [`Connector`] as the component's `rostersync:connector/source`.
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        #[doc(hidden)]
        struct __RostersyncExport;

        impl $crate::bindings::exports::rostersync::connector::source::Guest for __RostersyncExport {
            type Snapshot = $crate::__private::SnapshotAdapter<$connector>;

            fn describe() -> $crate::ConnectorInfo {
                <$connector as $crate::Connector>::describe()
            }

            fn check(
                settings: ::std::vec::Vec<$crate::bindings::rostersync::connector::types::Setting>,
            ) -> ::std::result::Result<$crate::SchoolInfo, $crate::SyncError> {
                <$connector as $crate::Connector>::check(&$crate::Settings::from_wit(settings))
            }
        }

        // Component exports are named like `rostersync:connector/source@0.2.0#next`,
        // which no native linker accepts; natively the crate builds without
        // them, so its logic can be unit tested.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_connector_world!(
            __RostersyncExport with_types_in $crate::bindings
        );
        #[cfg(not(target_arch = "wasm32"))]
        #[doc(hidden)]
        pub static __ROSTERSYNC_ENTRY_POINTS: $crate::__private::EntryPoints =
            $crate::__private::EntryPoints::of::<__RostersyncExport>();
    };
}

#[doc(hidden)]
pub mod __private {
    use std::cell::RefCell;

    use crate::bindings::exports::rostersync::connector::source::GuestSnapshot;
    use crate::bindings::rostersync::connector::types::{Mode, RosterRecord, Setting, SyncError};
    use crate::{Connector, Settings, Snapshot};

    use crate::bindings::exports::rostersync::connector::source::Guest;
    use crate::{ConnectorInfo, SchoolInfo};

    /// What one `next` call answers.
    pub type Batch = Result<Option<Vec<RosterRecord>>, SyncError>;

    /// What a connector exports, as plain function pointers: natively this
    /// table stands in for the component exports.
    pub struct EntryPoints {
        pub describe: fn() -> ConnectorInfo,
        pub check: fn(Vec<Setting>) -> Result<SchoolInfo, SyncError>,
        pub open: fn(Vec<Setting>, Mode) -> Box<dyn std::any::Any>,
        pub next: fn(&dyn std::any::Any) -> Option<Batch>,
    }

    impl EntryPoints {
        pub const fn of<G: Guest>() -> Self
        where
            G::Snapshot: 'static,
        {
            Self {
                describe: G::describe,
                check: G::check,
                open: |settings, mode| Box::new(G::Snapshot::new(settings, mode)),
                next: |snapshot| {
                    snapshot
                        .downcast_ref::<G::Snapshot>()
                        .map(GuestSnapshot::next)
                },
            }
        }
    }

    /// The exported resource: the connector's snapshot behind a `RefCell`,
    /// because the host calls it through `&self`.
    pub struct SnapshotAdapter<C: Connector>(RefCell<C::Snapshot>);

    impl<C: Connector> GuestSnapshot for SnapshotAdapter<C> {
        fn new(settings: Vec<Setting>, mode: Mode) -> Self {
            Self(RefCell::new(C::snapshot(
                Settings::from_wit(settings),
                mode,
            )))
        }

        fn next(&self) -> Result<Option<Vec<RosterRecord>>, SyncError> {
            self.0.borrow_mut().next_batch()
        }

        fn cursor(&self) -> Option<String> {
            self.0.borrow().cursor()
        }
    }
}
