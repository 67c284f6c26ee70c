//! Scholarpack connector: reads the Scholarpack API v1 into roster records.

use rostersync_connector_sdk::*;

struct Provider;

impl Connector for Provider {
    type Snapshot = Reader;

    fn describe() -> ConnectorInfo {
        ConnectorInfo::new(
            "Scholarpack",
            env!("CARGO_PKG_VERSION"),
            "Reads the Scholarpack API v1.",
        )
    }

    fn check(_settings: &Settings) -> Result<SchoolInfo, SyncError> {
        Err(SyncError::Unavailable("not written yet".into()))
    }

    fn snapshot(_settings: Settings, _mode: Mode) -> Reader {
        Reader
    }
}

struct Reader;

impl Snapshot for Reader {
    fn next_batch(&mut self) -> Result<Option<Vec<RosterRecord>>, SyncError> {
        Err(SyncError::Unavailable("not written yet".into()))
    }
}

export_connector!(Provider);
