//! Write a rostersync provisioning target.
//!
//! A target is a `wasm32-wasip2` component that takes the host's accounts,
//! groups and memberships to one downstream system over `wasi:http`. With
//! this module you implement one trait, [`Target`], and export it with
//! [`export_target!`](crate::export_target); the generated WIT bindings stay
//! behind it. The host owns identity, lifecycle, retries, rate limits and
//! the delivery log: a target only translates one change at a time into its
//! system's API and says what happened ([`Outcome`]).
//!
//! ```ignore
//! use rostersync_connector_sdk::Settings;
//! use rostersync_connector_sdk::target::*;
//!
//! struct Example;
//!
//! impl Target for Example {
//!     fn describe() -> TargetInfo { /* provider, settings, capabilities */ }
//!     fn check(settings: &Settings) -> Result<String, TargetError> { /* one request */ }
//!     fn apply(settings: &Settings, batch: Vec<ChangeItem>) -> Result<Vec<ChangeResult>, TargetError> {
//!         apply_each(batch, |change| /* one change → Outcome */)
//!     }
//! }
//!
//! rostersync_connector_sdk::export_target!(Example);
//! ```
//!
//! Requests go through [`crate::http`]; its errors convert into
//! [`TargetError`] with `?`. This module targets `rostersync:target@0.1.0`.

use crate::{RateLimit, Settings, SyncError};

pub use crate::log::target as log;
pub use crate::target_bindings::rostersync::target::types::{
    Attribute, Capability, Change, ChangeItem, ChangeResult, Group, GroupKind, GroupUpdate,
    HeldGroup, HeldObject, HeldUser, MemberChange, ObjectKind, ObjectRef, Outcome, Page, Retry,
    Role, SettingKind, SettingSpec, TargetError, TargetInfo, User, UserUpdate,
};

/// The target contract version this SDK builds targets against.
pub const TARGET_WIT_VERSION: &str = "0.1.0";

/// Seconds to wait when a system asks for a pause without saying how long.
pub const DEFAULT_RETRY_SECONDS: u32 = 30;

/// A provisioning target: who it is, how to test its settings, how to
/// apply changes, and (with [`Capability::ReadBack`]) how to list what its
/// system holds.
pub trait Target: 'static {
    /// Who the target is and what settings it needs. Must not do I/O.
    fn describe() -> TargetInfo;

    /// "Test connection": reach the system and say, in one sentence, what
    /// the settings reach. Map a refused credential to
    /// `TargetError::Unauthorized`.
    fn check(settings: &Settings) -> Result<String, TargetError>;

    /// Applies a batch in order, one result per change it got to. A change
    /// left without a result is sent again later under the same key, so
    /// stopping early loses nothing; [`apply_each`] does the bookkeeping.
    fn apply(settings: &Settings, batch: Vec<ChangeItem>)
    -> Result<Vec<ChangeResult>, TargetError>;

    /// One page of what the system holds. Only called when the target
    /// declared [`Capability::ReadBack`].
    fn read(
        _settings: &Settings,
        _kind: ObjectKind,
        _cursor: Option<String>,
    ) -> Result<Page, TargetError> {
        Err(TargetError::BadSettings(
            "this target cannot read back what its system holds".into(),
        ))
    }
}

/// Applies `batch` one change at a time with `apply`, and answers as the
/// contract asks:
///
/// - each outcome is the change's result;
/// - after a [`Outcome::RetryAfter`] the rest of the batch waits too (it is
///   left without results, so the host sends it again after the pause);
/// - an error on the first change is the whole call's error; an error on a
///   later change ends the batch there, with the results so far.
pub fn apply_each(
    batch: Vec<ChangeItem>,
    mut apply: impl FnMut(Change) -> Result<Outcome, TargetError>,
) -> Result<Vec<ChangeResult>, TargetError> {
    let mut results = Vec::with_capacity(batch.len());
    for ChangeItem { key, change } in batch {
        match apply(change) {
            Ok(outcome) => {
                let pause = matches!(outcome, Outcome::RetryAfter(_));
                results.push(ChangeResult { key, outcome });
                if pause {
                    break;
                }
            }
            Err(error) if results.is_empty() => return Err(error),
            Err(error) => {
                crate::log::target::warn(
                    "stopped the batch; the changes left are sent again later",
                    &[("error", &format!("{error:?}"))],
                );
                break;
            }
        }
    }
    Ok(results)
}

impl From<SyncError> for TargetError {
    /// The HTTP helpers' errors, as a target reports them.
    fn from(error: SyncError) -> Self {
        match error {
            SyncError::Unauthorized(m) => TargetError::Unauthorized(m),
            SyncError::Forbidden(m) => TargetError::Forbidden(m),
            SyncError::RateLimited(RateLimit {
                retry_after_seconds,
                message,
            }) => TargetError::RateLimited(Retry {
                seconds: retry_after_seconds.unwrap_or(DEFAULT_RETRY_SECONDS),
                reason: message,
            }),
            SyncError::Unavailable(m) => TargetError::Unavailable(m),
            SyncError::BadSettings(m) => TargetError::BadSettings(m),
            SyncError::BadResponse(m) => TargetError::BadResponse(m),
        }
    }
}

/// Exports a [`Target`] as the component's `rostersync:target/sink`.
#[macro_export]
macro_rules! export_target {
    ($target:ty) => {
        #[doc(hidden)]
        #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
        struct __RostersyncTargetExport;

        impl $crate::target_bindings::exports::rostersync::target::sink::Guest
            for __RostersyncTargetExport
        {
            fn describe() -> $crate::target::TargetInfo {
                <$target as $crate::target::Target>::describe()
            }

            fn check(
                settings: ::std::vec::Vec<
                    $crate::target_bindings::rostersync::target::types::Setting,
                >,
            ) -> ::std::result::Result<::std::string::String, $crate::target::TargetError> {
                <$target as $crate::target::Target>::check(&$crate::Settings::from_target_wit(
                    settings,
                ))
            }

            fn apply(
                settings: ::std::vec::Vec<
                    $crate::target_bindings::rostersync::target::types::Setting,
                >,
                batch: ::std::vec::Vec<$crate::target::ChangeItem>,
            ) -> ::std::result::Result<
                ::std::vec::Vec<$crate::target::ChangeResult>,
                $crate::target::TargetError,
            > {
                <$target as $crate::target::Target>::apply(
                    &$crate::Settings::from_target_wit(settings),
                    batch,
                )
            }

            fn read(
                settings: ::std::vec::Vec<
                    $crate::target_bindings::rostersync::target::types::Setting,
                >,
                kind: $crate::target::ObjectKind,
                cursor: ::std::option::Option<::std::string::String>,
            ) -> ::std::result::Result<$crate::target::Page, $crate::target::TargetError> {
                <$target as $crate::target::Target>::read(
                    &$crate::Settings::from_target_wit(settings),
                    kind,
                    cursor,
                )
            }
        }

        // As for connectors: component exports exist only in the wasm build;
        // natively the crate builds without them, for its unit tests.
        #[cfg(target_arch = "wasm32")]
        $crate::target_bindings::__export_target_world!(
            __RostersyncTargetExport with_types_in $crate::target_bindings
        );
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str) -> ChangeItem {
        ChangeItem {
            key: key.into(),
            change: Change::DeleteUser(ObjectRef {
                external_id: key.into(),
                target_id: Some(key.into()),
            }),
        }
    }

    fn key_of(change: &Change) -> String {
        match change {
            Change::DeleteUser(o) => o.external_id.clone(),
            _ => unreachable!("the tests send deletions"),
        }
    }

    #[test]
    fn a_pause_holds_back_the_rest_of_the_batch() {
        let results = apply_each(vec![item("a"), item("b"), item("c")], |change| {
            Ok(match key_of(&change).as_str() {
                "b" => Outcome::RetryAfter(Retry {
                    seconds: 5,
                    reason: "busy".into(),
                }),
                id => Outcome::Done(id.into()),
            })
        })
        .unwrap();
        let keys: Vec<&str> = results.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
    }

    #[test]
    fn an_error_fails_the_call_only_before_anything_was_applied() {
        let down = || TargetError::Unavailable("the server is down".into());
        assert!(apply_each(vec![item("a")], |_| Err(down())).is_err());
        let results = apply_each(vec![item("a"), item("b")], |change| {
            if key_of(&change) == "b" {
                Err(down())
            } else {
                Ok(Outcome::Done("a".into()))
            }
        })
        .unwrap();
        assert_eq!(results.len(), 1);
    }

    #[test]
    fn http_errors_convert_with_their_pause() {
        let error: TargetError = SyncError::RateLimited(RateLimit {
            retry_after_seconds: None,
            message: "slow down".into(),
        })
        .into();
        assert!(matches!(
            error,
            TargetError::RateLimited(Retry {
                seconds: DEFAULT_RETRY_SECONDS,
                ..
            })
        ));
    }
}
