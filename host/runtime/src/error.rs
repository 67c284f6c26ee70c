//! The runtime's typed errors: why a plugin (connector or target) would not
//! load, and why a run or a target call stopped. Each names the plugin or connector and, where one applies, the
//! limit.

use std::path::PathBuf;
use std::time::Duration;

use rostersync_model::{MalformedRecord, SyncError};

use crate::outbound::Violation;

/// Why a plugin file could not be put into service.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    #[error("{}: cannot read the file: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("{}: is {what}, not a regular file; put the plugin file itself in the plugin folder", path.display())]
    NotARegularFile { path: PathBuf, what: &'static str },
    #[error("{}: is {bytes} bytes, over the {limit}-byte limit for a plugin file", path.display())]
    TooLarge {
        path: PathBuf,
        bytes: u64,
        limit: u64,
    },
    #[error("{}: compiling it took longer than the limit of {} s; it was not loaded", path.display(), limit.as_secs_f64())]
    CompileTimeout { path: PathBuf, limit: Duration },
    #[error("{}: the file name must be a connector name (lower-case letters, digits, `-` or `_`) ending in .wasm", path.display())]
    BadName { path: PathBuf },
    #[error("{}: this is a core WebAssembly module, not a component; build connectors with `--target wasm32-wasip2` (`rostersync connector build` does)", path.display())]
    CoreModule { path: PathBuf },
    #[error("{}: not a WebAssembly component ({message})", path.display())]
    NotAComponent { path: PathBuf, message: String },
    #[error("{}: not a rostersync connector: it exports no `rostersync:connector/source` interface (it exports: {exports}); build it with the rostersync connector SDK", path.display())]
    NotAConnector { path: PathBuf, exports: String },
    #[error("{}: built against rostersync:connector@{found}, which this host does not support (it supports {supported}); rebuild it with a supported SDK", path.display())]
    UnsupportedVersion {
        path: PathBuf,
        found: String,
        supported: String,
    },
    #[error("{}: not a rostersync target: it exports no `rostersync:target/sink` interface (it exports: {exports}); build it with the target side of the rostersync SDK", path.display())]
    NotATarget { path: PathBuf, exports: String },
    #[error("{}: built against rostersync:target@{found}, which this host does not support (it supports {supported}); rebuild it with a supported SDK", path.display())]
    UnsupportedTargetVersion {
        path: PathBuf,
        found: String,
        supported: String,
    },
    #[error("{}: needs something this host does not provide: {message}", path.display())]
    Link { path: PathBuf, message: String },
    #[error("{}: `describe` failed: {error}", path.display())]
    Describe { path: PathBuf, error: Box<RunError> },
}

/// Why a call into a connector did not produce its result.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RunError {
    /// The connector answered with a typed error: the provider's fault or
    /// the operator's settings, not a sandbox matter.
    #[error("connector {connector}: {error}")]
    Connector { connector: String, error: SyncError },
    #[error("connector {connector} crashed: {message}")]
    Trap { connector: String, message: String },
    #[error("connector {connector} was stopped: it reached its memory limit of {} MiB", limit_bytes >> 20)]
    MemoryLimit { connector: String, limit_bytes: u64 },
    #[error("connector {connector} was stopped: a call ran longer than its time limit of {} s", limit.as_secs_f64())]
    Timeout { connector: String, limit: Duration },
    #[error("connector {connector} was stopped: it {violation}")]
    Outbound {
        connector: String,
        violation: Violation,
    },
    #[error(
        "connector {connector} was stopped: it returned a batch of {records} records, over the limit of {limit}"
    )]
    BatchTooLarge {
        connector: String,
        records: usize,
        limit: usize,
    },
    #[error(
        "connector {connector} was stopped: it returned {record} carrying {bytes} bytes, over the limit of {limit}"
    )]
    RecordTooLarge {
        connector: String,
        record: String,
        bytes: usize,
        limit: usize,
    },
    #[error("connector {connector} was stopped: it returned a malformed record: {error}")]
    Malformed {
        connector: String,
        error: MalformedRecord,
    },
    #[error("connector {connector}: the snapshot already ended and cannot be read further")]
    Ended { connector: String },
    #[error("connector {connector} was stopped: its snapshot ran longer than its time limit of {} s", limit.as_secs_f64())]
    SnapshotTimeout { connector: String, limit: Duration },
    #[error(
        "connector {connector} was stopped: its snapshot reached {bytes} bytes, over the limit of {limit} for one snapshot"
    )]
    SnapshotTooLarge {
        connector: String,
        bytes: u64,
        limit: u64,
    },
    #[error(
        "connector {connector} was stopped: it returned a cursor of {bytes} bytes, over the limit of {limit}"
    )]
    CursorTooLarge {
        connector: String,
        bytes: usize,
        limit: usize,
    },
    /// The plugin file is not the build an operator accepted: it is not
    /// given the connection's secrets.
    #[error(
        "connector {connector} was not run: its plugin file was replaced since it was accepted ({accepted}, now {found}), and a replaced plugin gets the connection's secrets only once an operator accepts it: rostersync plugins accept {connector}"
    )]
    NotAccepted {
        connector: String,
        accepted: String,
        found: String,
    },
}
