//! One run of one connection, end to end: read the connector's snapshot,
//! validate, diff against the store, decide which accounts to provision,
//! check the safety holds, then apply everything in one transaction, hold
//! it for an operator, or (a dry run) only report it. Also the operator's
//! side: answering holds, exporting what they would change, accepting a
//! replaced plugin, and the manual account actions, each with an audit
//! record.
//!
//! The decisions are the pure core's; this crate owns the order of the
//! steps and what is written when.

mod accounts;
mod connection;
mod holds;
mod progress;
mod provision;
mod run;
mod source;
mod trust;

pub use accounts::{delete_account, unlink_account};
pub use connection::{ConnectionConfig, LimitsConfig};
pub use holds::{
    AnswerView, Answered, Answering, HoldSummary, answer_hold, confirm_hold, export_hold_csv,
    hold_reasons, hold_summary, reconsider_hold, reject_hold,
};
pub use progress::{Observer, Phase, Progress};
pub use provision::role_name;
pub use run::{DryRunVerdict, RoleCount, RunReport, RunRequest, RunStatus, run, run_observed};
pub use source::{OpenSource, PluginSource, RecordSource};
pub use trust::{
    AcceptError, Accepted, PluginBuild, PluginView, accept_in_service, accept_plugin, plugin_views,
};

use rostersync_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(StoreError),
    #[error("hold {0} does not exist")]
    NoSuchHold(i64),
    #[error(transparent)]
    Refused(#[from] rostersync_core::Refusal),
    #[error("hold {hold} never showed a revision {revision}")]
    NoSuchRevision { hold: i64, revision: String },
    #[error("account {0} does not exist")]
    NoSuchAccount(String),
    #[error("account {account} was not provisioned by connection {connection}")]
    NotThisConnections { account: String, connection: String },
    #[error("the store holds a record it cannot read back ({what}): {error}")]
    Corrupt { what: String, error: String },
}

/// A store error, its refusals told as the host's own: one representation
/// of a refused hold answer, whichever layer found it.
impl From<StoreError> for SyncError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Refused(refusal) => Self::Refused(refusal),
            other => Self::Store(other),
        }
    }
}
