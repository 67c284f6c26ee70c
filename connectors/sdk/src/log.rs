//! Structured logs into the host's tracing, recorded with the run (or, in
//! [`target`], with the target's deliveries).
//!
//! A natively built connector (unit tests, the native benchmark) has no
//! host to record them, so there they are dropped rather than calling an
//! import that does not exist.

/// The log functions over one contract's `host` import; the invoking
/// module imports that contract's `host`, `LogLevel` and `Attribute`.
macro_rules! levels {
    () => {
        fn emit(level: LogLevel, message: &str, fields: &[(&str, &str)]) {
            if cfg!(not(target_arch = "wasm32")) {
                return;
            }
            let fields: Vec<Attribute> = fields
                .iter()
                .map(|(name, value)| Attribute {
                    name: name.to_string(),
                    value: value.to_string(),
                })
                .collect();
            host::log(level, message, &fields);
        }

        pub fn debug(message: &str, fields: &[(&str, &str)]) {
            emit(LogLevel::Debug, message, fields);
        }

        pub fn info(message: &str, fields: &[(&str, &str)]) {
            emit(LogLevel::Info, message, fields);
        }

        pub fn warn(message: &str, fields: &[(&str, &str)]) {
            emit(LogLevel::Warn, message, fields);
        }

        pub fn error(message: &str, fields: &[(&str, &str)]) {
            emit(LogLevel::Error, message, fields);
        }
    };
}

use crate::Attribute;
use crate::bindings::rostersync::connector::host::{self, LogLevel};

levels!();

/// The same functions for a target, recorded with its deliveries.
pub mod target {
    use crate::target_bindings::rostersync::target::host::{self, LogLevel};
    use crate::target_bindings::rostersync::target::types::Attribute;

    levels!();
}

/// Tells the host how far the read has got.
pub fn progress(pages_done: u32, pages_total: Option<u32>, records_done: u64) {
    if cfg!(target_arch = "wasm32") {
        host::progress(pages_done, pages_total, records_done);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn natively_logs_and_progress_are_dropped() {
        super::info("no host to record this", &[("field", "value")]);
        super::target::warn("nor this", &[]);
        super::progress(1, Some(2), 3);
    }
}
