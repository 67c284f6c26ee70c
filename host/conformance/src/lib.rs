//! The connector conformance suite: the checks every connector must pass
//! before it is trusted with a school's roster, run live, recorded, or
//! replayed offline from fixtures.
//!
//! - [`suite`]: the checks and their report.
//! - [`fixtures`]: record-and-replay of HTTP through the runtime's
//!   interception seam.

pub mod fixtures;
pub mod suite;

pub use suite::{Check, Outcome, Report, SuiteOptions, Traffic, run_suite};
