//! The plugin runtime: loads connector and target components from the
//! plugin folder and runs them in a sandbox. This is the only crate that touches
//! wasmtime; everything it hands out is in the host's own model types.
//!
//! - [`bindings`]: one binding module per released WIT version.
//! - [`allow`]: the outbound allow-list grammar and address checks.
//! - [`outbound`]: the HTTP hook every request passes through.
//! - [`sandbox`]: limits and the per-run store state.
//! - [`budget`]: the checks on every record a plugin hands over, the
//!   snapshot's size, and the clipping of text a plugin controls.
//! - `clock`: a call's waiting time, not charged for time lost to others.
//! - `cache`: precompiled artifacts in the host's state directory, signed by the host.
//! - `guest`: what connectors and targets share: compiling, the store of
//!   each call, the guard around each call.
//! - [`plugin`]: one loaded connector and its guarded calls.
//! - [`target`]: one loaded provisioning target, and the same with its
//!   settings bound, behind the model's `Target` interface.
//! - [`runtime`]: the engine, the registry and hot reload.

pub mod allow;
pub mod bindings;
pub mod budget;
mod cache;
mod clock;
pub mod error;
mod guest;
pub mod outbound;
pub mod plugin;
pub mod runtime;
pub mod sandbox;
pub mod target;

pub use allow::{AllowList, AllowedHost, AllowedHostError};
pub use bindings::WitVersion;
pub use cache::{LoadSource, STATE_DIR_ENV, default_state_dir};
pub use error::{LoadError, RunError};
pub use outbound::{CannedResponse, Intercept, Interceptor, OutboundRequest, Violation};
pub use plugin::{Plugin, Snapshot};
pub use runtime::{
    DEFAULT_COMPILE_TIMEOUT, DEFAULT_MAX_PLUGIN_BYTES, PluginStatus, PluginSummary, Runtime,
    RuntimeConfig, WatchGuard,
};
pub use sandbox::{DROP_FOLDER_GUEST_PATH, Limits, Progress, Sandbox};
pub use target::{TargetComponent, TargetPlugin};
