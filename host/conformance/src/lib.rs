//! The conformance suites: the checks every connector must pass before it
//! is trusted with a school's roster, run live, recorded, or replayed
//! offline from fixtures; and the checks every provisioning target must
//! pass before it is trusted with a school's accounts.
//!
//! - [`suite`]: the connector checks and the report both suites write.
//! - [`fixtures`]: record-and-replay of HTTP through the runtime's
//!   interception seam.
//! - [`target`]: the target checks, against a served or a live endpoint.
//! - [`example_app`]: the template target's API, served on 127.0.0.1.

pub mod example_app;
pub mod fixtures;
pub mod suite;
pub mod target;

pub use suite::{Check, Outcome, Report, SuiteOptions, Traffic, run_suite};
pub use target::{TargetEndpoint, TargetSuiteOptions, run_target_suite};
