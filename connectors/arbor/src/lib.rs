//! Arbor connector: reads one school from Arbor's REST API v2 into roster
//! records: pupils on roll, staff, guardians, registration forms and
//! academic units (classes), their memberships and leads, and each pupil's
//! guardians with relationship, priority and legal responsibility.
//!
//! Resources are read one after the other ([`api::Resource::ALL`]), each
//! mapped by [`rows`]. A full read pages through each list with
//! `page-number` and `page-size` (a short page is the last), having first
//! asked the resource's changelog for its current revision, so nothing
//! that changes during the read is missed by the next delta. A delta reads
//! each changelog from the revision the last read reached: a created or
//! updated row is fetched by id and mapped as in a full read, a deleted
//! one becomes an explicit removal, with the links of a deleted person or
//! group. The cursor ([`cursor`]) keeps the revisions and the link rows
//! that removals need.
//!
//! A delta cannot see that a renamed registration form renames its
//! pupils' registration group (only the form changed): the next full read
//! puts that right.

mod api;
mod cursor;
mod rows;

use std::collections::VecDeque;

use rostersync_connector_sdk::*;
use serde_json::Value;

use crate::api::{Api, BASE_URL, ChangeType, PASSWORD, Resource, USERNAME};
use crate::cursor::Cursor;
use crate::rows::Mapper;

const PAGE_SIZE: usize = 500;
/// Changes applied per batch in a delta; most cost a request each.
const CHANGES_PER_BATCH: usize = 100;

struct Arbor;

impl Connector for Arbor {
    type Snapshot = Reader;

    fn describe() -> ConnectorInfo {
        ConnectorInfo::new(
            "Arbor",
            env!("CARGO_PKG_VERSION"),
            "Pupils on roll, staff, guardians, registration forms and classes of one school from Arbor's REST API v2, in full or as the changes since the last read.",
        )
        .setting(SettingSpec::base_url(
            BASE_URL,
            "The school's API root, e.g. https://api-sandbox2.uk.arbor.sc/rest-v2",
            None,
        ))
        .setting(SettingSpec::text(
            USERNAME,
            "The user name of the school's API credential.",
            true,
            None,
        ))
        .setting(SettingSpec::secret(PASSWORD, "The password of that credential."))
        .capability(Capability::DeltaReads)
        .capability(Capability::Contacts)
    }

    fn check(settings: &Settings) -> Result<SchoolInfo, SyncError> {
        let api = Api::new(settings)?;
        let url = api.list_url(Resource::RegistrationForms, 1, 1);
        let forms: Vec<Value> = api.list(Resource::RegistrationForms, &url)?;
        Ok(SchoolInfo {
            id: api.base.clone(),
            name: format!("Arbor school at {}", api.base),
            details: vec![Attribute {
                name: "registration forms readable".into(),
                value: (!forms.is_empty()).to_string(),
            }],
        })
    }

    fn snapshot(settings: Settings, mode: Mode) -> Reader {
        Reader::Ready(settings, mode)
    }
}

/// A snapshot, from its settings to its end.
enum Reader {
    Ready(Settings, Mode),
    Reading(Box<Read>),
    /// Complete, with the cursor the next delta resumes from.
    Done(String),
    /// An error ends the read for good: asked again, the snapshot answers
    /// the same error rather than carrying on short.
    Failed(SyncError),
}

impl Snapshot for Reader {
    fn next_batch(&mut self) -> Result<Option<Vec<RosterRecord>>, SyncError> {
        let outcome = match self {
            Reader::Ready(settings, mode) => Read::start(settings, mode).and_then(|read| {
                *self = Reader::Reading(Box::new(read));
                self.next_batch()
            }),
            Reader::Reading(read) => match read.next_batch() {
                Ok(None) => {
                    *self = Reader::Done(read.cursor.to_text());
                    Ok(None)
                }
                other => other,
            },
            Reader::Done(_) => Ok(None),
            Reader::Failed(error) => Err(error.clone()),
        };
        if let Err(error) = &outcome {
            *self = Reader::Failed(error.clone());
        }
        outcome
    }

    fn cursor(&self) -> Option<String> {
        match self {
            Reader::Done(cursor) => Some(cursor.clone()),
            _ => None,
        }
    }
}

/// What a resource's read has still to do.
enum Step {
    /// A full read: the list's next page number.
    Page(usize),
    /// A delta: the changes still to apply, by row id.
    Changes(VecDeque<(u64, ChangeType)>),
}

/// A read in progress.
struct Read {
    api: Api,
    delta: bool,
    /// Resources still to read; the first is being read.
    resources: VecDeque<Resource>,
    /// Where the first resource's read has got to; `None` before its
    /// changelog is read.
    step: Option<Step>,
    mapper: Mapper,
    /// What the next delta resumes from, kept up as the read goes.
    cursor: Cursor,
}

impl Read {
    fn start(settings: &Settings, mode: &Mode) -> Result<Read, SyncError> {
        let api = Api::new(settings)?;
        let (delta, cursor) = match mode {
            Mode::Full => (false, Cursor::new(&api.base)),
            Mode::Delta(text) => (true, Cursor::parse(text, &api.base)?),
        };
        Ok(Read {
            api,
            delta,
            resources: Resource::ALL.into(),
            step: None,
            mapper: Mapper::default(),
            cursor,
        })
    }

    /// Reads on until there are records to hand over or nothing is left.
    fn next_batch(&mut self) -> Result<Option<Vec<RosterRecord>>, SyncError> {
        while let Some(&resource) = self.resources.front() {
            let step = match self.step.take() {
                Some(step) => step,
                None => self.open(resource)?,
            };
            let (records, rest) = match step {
                Step::Page(number) => self.page(resource, number)?,
                Step::Changes(changes) => self.apply(resource, changes)?,
            };
            match rest {
                Some(step) => self.step = Some(step),
                None => {
                    self.resources.pop_front();
                }
            }
            if !records.is_empty() {
                return Ok(Some(records));
            }
        }
        Ok(None)
    }

    /// Reads the resource's changelog: in a full read only for the revision
    /// the read starts at, in a delta for the changes since the cursor's.
    fn open(&mut self, resource: Resource) -> Result<Step, SyncError> {
        if !self.delta {
            let revision = self.api.current_revision(resource)?;
            self.cursor.set_revision(resource, revision);
            return Ok(Step::Page(1));
        }
        let since = self.cursor.revision(resource);
        let log = self.api.changelog(resource, since)?;
        if log.current_revision < since {
            return Err(SyncError::BadSettings(format!(
                "{}'s changelog is at revision {}, before the delta cursor's {since}: Arbor's history has been reset; run a full read",
                resource.path(),
                log.current_revision
            )));
        }
        self.cursor.set_revision(resource, log.current_revision);
        Ok(Step::Changes(log.latest().into()))
    }

    /// One page of a full read.
    fn page(
        &mut self,
        resource: Resource,
        number: usize,
    ) -> Result<(Vec<RosterRecord>, Option<Step>), SyncError> {
        let url = self.api.list_url(resource, number, PAGE_SIZE);
        let rows: Vec<Value> = self.api.list(resource, &url)?;
        let last = rows.len() < PAGE_SIZE;
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            let mapped = self.mapper.map(resource, &url, row)?;
            // A full read reports no removals: the host reconciles it.
            self.note_link(resource, mapped.id, mapped.record.as_ref());
            records.extend(mapped.record);
        }
        Ok((records, (!last).then_some(Step::Page(number + 1))))
    }

    /// Up to [`CHANGES_PER_BATCH`] changes of a delta.
    fn apply(
        &mut self,
        resource: Resource,
        mut changes: VecDeque<(u64, ChangeType)>,
    ) -> Result<(Vec<RosterRecord>, Option<Step>), SyncError> {
        let mut records = Vec::new();
        for (id, change) in changes.drain(..CHANGES_PER_BATCH.min(changes.len())) {
            match change {
                ChangeType::Delete => self.deleted(resource, id, &mut records),
                ChangeType::Create | ChangeType::Update => {
                    self.changed(resource, id, &mut records)?;
                }
            }
        }
        Ok((
            records,
            (!changes.is_empty()).then_some(Step::Changes(changes)),
        ))
    }

    /// A created or updated row, fetched and mapped as a full read maps it.
    fn changed(
        &mut self,
        resource: Resource,
        id: u64,
        records: &mut Vec<RosterRecord>,
    ) -> Result<(), SyncError> {
        let url = self.api.record_url(resource, id);
        let Some(row) = self.api.record(resource, &url)? else {
            log::debug(
                "a changed record was deleted before it was read; the next delta removes it",
                &[("url", &url)],
            );
            return Ok(());
        };
        if let Some(form) = self.mapper.unknown_form(resource, &row) {
            self.learn_form(form)?;
        }
        let mapped = self.mapper.map(resource, &url, row)?;
        records.extend(self.note_link(resource, id, mapped.record.as_ref()));
        records.extend(mapped.record);
        Ok(())
    }

    /// Maps a registration form only to learn its name, for a changed pupil
    /// in a form the delta did not change.
    fn learn_form(&mut self, id: u64) -> Result<(), SyncError> {
        let resource = Resource::RegistrationForms;
        let url = self.api.record_url(resource, id);
        if let Some(form) = self.api.record(resource, &url)? {
            self.mapper.map(resource, &url, form)?;
        }
        Ok(())
    }

    /// A deleted row: a person or group goes with its links; a link row
    /// takes away what it linked.
    fn deleted(&mut self, resource: Resource, id: u64, records: &mut Vec<RosterRecord>) {
        if resource.links().is_some() {
            records.extend(self.cursor.links.set(resource, id, None));
            return;
        }
        let key = id.to_string();
        let links = self.cursor.links.forget(resource, &key);
        records.push(RosterRecord::Removed(match resource {
            Resource::RegistrationForms | Resource::AcademicUnits => Removal::Group(key),
            _ => Removal::Person(key),
        }));
        records.extend(links);
    }

    /// Remembers what a link row links now, for a later deletion of it;
    /// returns the removal of what it linked before, if that differs.
    fn note_link(
        &mut self,
        resource: Resource,
        id: u64,
        record: Option<&RosterRecord>,
    ) -> Option<RosterRecord> {
        resource.links()?;
        self.cursor
            .links
            .set(resource, id, record.and_then(cursor::pair))
    }
}

export_connector!(Arbor);

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::from_pairs([
            (
                BASE_URL,
                "http://127.0.0.1:9/arbor/school1.uk.arbor.sc/rest-v2",
            ),
            (USERNAME, "rostersync-1"),
            (PASSWORD, "p"),
        ])
    }

    #[test]
    fn describes_delta_reads_and_contacts() {
        let info = Arbor::describe();
        assert_eq!(info.provider, "Arbor");
        assert_eq!(
            info.capabilities,
            [Capability::DeltaReads, Capability::Contacts]
        );
    }

    #[test]
    fn an_unreadable_cursor_fails_before_any_request_and_stays_failed() {
        let mut reader = Arbor::snapshot(settings(), Mode::Delta("2026-09-01".into()));
        let Err(SyncError::BadSettings(message)) = reader.next_batch() else {
            panic!("expected bad settings");
        };
        assert!(
            message.contains("not written by this connector"),
            "{message}"
        );
        assert!(matches!(reader.next_batch(), Err(SyncError::BadSettings(m)) if m == message));
        assert_eq!(reader.cursor(), None);
    }

    #[test]
    fn a_cursor_from_another_school_is_refused() {
        let mut cursor = Cursor::new("http://127.0.0.1:9/arbor/school2.uk.arbor.sc/rest-v2");
        for resource in Resource::ALL {
            cursor.set_revision(resource, 7);
        }
        let mut reader = Arbor::snapshot(settings(), Mode::Delta(cursor.to_text()));
        let Err(SyncError::BadSettings(message)) = reader.next_batch() else {
            panic!("expected bad settings");
        };
        assert!(message.contains("school2"), "{message}");
    }
}
