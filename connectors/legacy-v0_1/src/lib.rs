//! A connector built against the frozen contract 0.1.0 with plain
//! wit-bindgen, as an integrator's connector from that release would be.
//! The host must keep loading and running it after the contract moved on.

wit_bindgen::generate!({
    world: "connector",
    path: "../../wit/since_v0.1.0",
});

use exports::rostersync::connector::source::{Guest, GuestSnapshot};
use rostersync::connector::types::*;
use std::cell::Cell;

struct Legacy;

impl Guest for Legacy {
    type Snapshot = LegacySnapshot;

    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            provider: "Legacy".into(),
            version: "0.1.0".into(),
            description: "Built against rostersync:connector@0.1.0.".into(),
            settings: Vec::new(),
            capabilities: Vec::new(),
        }
    }

    fn check(_settings: Settings) -> Result<SchoolInfo, SyncError> {
        Ok(SchoolInfo {
            id: "legacy".into(),
            name: "Legacy Academy".into(),
            details: Vec::new(),
        })
    }
}

struct LegacySnapshot {
    done: Cell<bool>,
}

impl GuestSnapshot for LegacySnapshot {
    fn new(_settings: Settings, _mode: Mode) -> Self {
        LegacySnapshot {
            done: Cell::new(false),
        }
    }

    fn next(&self) -> Result<Option<Vec<RosterRecord>>, SyncError> {
        if self.done.replace(true) {
            return Ok(None);
        }
        let person = Person {
            id: "L1".into(),
            mis_id: Some("A1234".into()),
            role: Role::Student,
            salutation: None,
            first_name: Some("Siobhán".into()),
            preferred_first_name: Some("Shiv".into()),
            last_name: Some("Nguyễn".into()),
            email: Some("shiv@legacy.example".into()),
            username: None,
            date_of_birth: Some("2012-02-29".into()),
            start_date: Some("2023-09-01".into()),
            leaving_date: None,
            enrolment: Some(EnrolmentStatus::OnRoll),
            year_group: Some("Y7".into()),
            registration_group: Some("7A".into()),
            admission: None,
            attributes: Vec::new(),
        };
        Ok(Some(vec![RosterRecord::Person(person)]))
    }

    fn cursor(&self) -> Option<String> {
        None
    }
}

// Component export names are not native symbols; see the SDK's export macro.
#[cfg(target_arch = "wasm32")]
export!(Legacy);
