//! Arbor connector: reads one school from Arbor's REST API v2 into roster
//! records: pupils on roll, staff, guardians, registration forms and
//! academic units (classes), their memberships and leads, and each pupil's
//! guardians with relationship, priority and legal responsibility. The
//! shapes are those of Arbor's public PHP SDK, arbor-education/
//! sis-sdk-php: see [`api`] for the requests and [`rows`] for the fields,
//! each with the SDK file that settles it.
//!
//! Arbor lists references, not records, so every record is read from its
//! `href`: the connector reads them several at a time
//! ([`http::send_all_once`]), and names shared by many records (titles,
//! subjects, academic levels, relationship types, forms) once each.
//!
//! A full read first reads each resource's change log for the highest
//! revision it holds, so nothing that changes during the read is missed
//! by the next delta, then lists each resource in [`Resource::listed`]
//! order, page by page. A pupil's record is joined from their `Student`,
//! `Person`, `EmailAddress`, `SchoolEnrolment`, `AcademicLevelMembership`
//! and `RegistrationFormMembership`, which is why those are listed before
//! the pupils.
//!
//! A delta reads each change log from the revision the last read reached.
//! A deleted group or person becomes an explicit removal, with its links;
//! a deleted link row removes what it linked. A created or updated group
//! or link row is read and mapped as in a full read. A change to anything
//! a person's record is joined from (the `Student`, `Staff` or `Guardian`,
//! its `Person` or `EmailAddress`, a pupil's enrolment, level or form
//! membership) reads that person again whole, with their parts found by
//! filtered lists (`filters.{property}.equals`). The deletion of an
//! email address, enrolment or level membership alone is not seen until
//! the next full read: the deleted row no longer says whose it was. The
//! cursor ([`cursor`]) keeps the revisions and the link rows removals
//! need.

mod api;
mod cursor;
mod rows;

use std::collections::{BTreeMap, VecDeque};

use rostersync_connector_sdk::*;
use serde_json::Value;

use crate::api::{Api, BASE_URL, PAGE_SIZE, PASSWORD, Reference, Resource, USERNAME};
use crate::cursor::Cursor;
use crate::rows::{Joins, Names};

/// Changed rows of one resource a delta reads per batch.
const CHANGES_PER_BATCH: usize = 200;
/// People a delta reads again per batch; each costs a few requests.
const PEOPLE_PER_BATCH: usize = 50;

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
        .setting(SettingSpec::text(
            PAGE_SIZE,
            "Rows asked for per list page.",
            false,
            Some("500"),
        ))
        .capability(Capability::DeltaReads)
        .capability(Capability::Contacts)
    }

    fn check(settings: &Settings) -> Result<SchoolInfo, SyncError> {
        let api = Api::new(settings)?;
        let url = api.list_url(Resource::RegistrationForm, 1, 1, None);
        let forms = api.list(Resource::RegistrationForm, &url)?;
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

/// What a read has still to do.
enum Work {
    /// A full read: one page of a list.
    Page(Resource, usize),
    /// A delta: every deleted row, by resource.
    Deletions(Vec<(Resource, u64)>),
    /// A delta: created or updated rows of one resource.
    Changed(Resource, Vec<Reference>),
    /// A delta: the people found changed, to read again.
    People,
    /// A delta: some of them.
    Reread(Vec<Reference>),
}

/// A read in progress.
struct Read {
    api: Api,
    work: VecDeque<Work>,
    names: Names,
    /// A full read's join of pupils' parts and everyone's email.
    joins: Joins,
    /// A delta's people to read again, by resource and id, with the
    /// reference to read them from.
    affected: BTreeMap<(Resource, u64), Reference>,
    /// What the next delta resumes from, kept up as the read goes.
    cursor: Cursor,
}

impl Read {
    fn start(settings: &Settings, mode: &Mode) -> Result<Read, SyncError> {
        let api = Api::new(settings)?;
        let mut read = Read {
            cursor: Cursor::new(&api.base),
            api,
            work: VecDeque::new(),
            names: Names::default(),
            joins: Joins::default(),
            affected: BTreeMap::new(),
        };
        match mode {
            Mode::Full => {
                for resource in Resource::LOGGED {
                    let log = read.api.changelog(resource, 0)?;
                    read.cursor
                        .set_revision(resource, log.highest.unwrap_or_default());
                }
                read.work = Resource::listed()
                    .map(|resource| Work::Page(resource, 1))
                    .collect();
            }
            Mode::Delta(text) => {
                read.cursor = Cursor::parse(text, &read.api.base)?;
                read.plan_delta()?;
            }
        }
        Ok(read)
    }

    /// Reads every change log from the cursor and queues what the changes
    /// ask for: deletions first, then changed groups and links, then what
    /// tells whose record changed, then those people.
    fn plan_delta(&mut self) -> Result<(), SyncError> {
        let mut deletions = Vec::new();
        let mut changed = Vec::new();
        for resource in Resource::LOGGED {
            let since = self.cursor.revision(resource);
            let log = self.api.changelog(resource, since)?;
            self.cursor
                .set_revision(resource, log.highest.unwrap_or_default().max(since));
            let (deleted, rows) = log.split();
            deletions.extend(deleted.into_iter().map(|id| (resource, id)));
            changed.push((resource, rows));
        }
        // Groups, then people, then links: a deleted person's links go with
        // the person, so the link rows' own deletions are then no news.
        deletions.sort_by_key(|(resource, _)| match resource {
            Resource::RegistrationForm | Resource::AcademicUnit => 0,
            r if r.links().is_some() => 2,
            _ => 1,
        });
        self.work.push_back(Work::Deletions(deletions));
        changed.sort_by_key(|(resource, _)| match resource {
            Resource::RegistrationForm | Resource::AcademicUnit => 0,
            r if r.links().is_some() => 1,
            _ => 2,
        });
        for (resource, rows) in changed {
            for chunk in rows.chunks(CHANGES_PER_BATCH) {
                self.work.push_back(Work::Changed(resource, chunk.to_vec()));
            }
        }
        self.work.push_back(Work::People);
        Ok(())
    }

    /// Reads on until there are records to hand over or nothing is left.
    fn next_batch(&mut self) -> Result<Option<Vec<RosterRecord>>, SyncError> {
        while let Some(work) = self.work.pop_front() {
            let records = match work {
                Work::Page(resource, number) => self.page(resource, number)?,
                Work::Deletions(deleted) => self.deleted(deleted),
                Work::Changed(resource, rows) => self.changed(resource, &rows)?,
                Work::People => {
                    let people: Vec<Reference> =
                        std::mem::take(&mut self.affected).into_values().collect();
                    for chunk in people.chunks(PEOPLE_PER_BATCH).rev() {
                        self.work.push_front(Work::Reread(chunk.to_vec()));
                    }
                    Vec::new()
                }
                Work::Reread(people) => self.reread(&people)?,
            };
            if !records.is_empty() {
                return Ok(Some(records));
            }
        }
        Ok(None)
    }

    /// One page of a full read.
    fn page(&mut self, resource: Resource, number: usize) -> Result<Vec<RosterRecord>, SyncError> {
        let url = self
            .api
            .list_url(resource, number, self.api.page_size, None);
        let references = self.api.list(resource, &url)?;
        if references.len() >= self.api.page_size {
            self.work.push_front(Work::Page(resource, number + 1));
        }
        let rows = read_rows(&self.api, references)?;
        if matches!(
            resource,
            Resource::Student | Resource::Staff | Resource::Guardian
        ) {
            let people = rows
                .into_iter()
                .map(|(r, row)| (resource, r, row))
                .collect();
            return people_records(&self.api, &mut self.names, &self.joins, people);
        }
        for (reference, row) in &rows {
            if matches!(
                resource,
                Resource::EmailAddress
                    | Resource::SchoolEnrolment
                    | Resource::AcademicLevelMembership
                    | Resource::RegistrationFormMembership
            ) {
                self.joins
                    .note(resource, reference.id().unwrap_or_default(), row)?;
            }
        }
        let mapped = self.mapped(resource, &rows)?;
        // Only a delta reads people again.
        self.affected.clear();
        // A full read reports no removals: the host reconciles it.
        Ok(mapped
            .into_iter()
            .filter(|r| !matches!(r, RosterRecord::Removed(_)))
            .collect())
    }

    /// Groups and link rows as records; a link row that linked something
    /// else before also removes that.
    fn mapped(
        &mut self,
        resource: Resource,
        rows: &[(Reference, Value)],
    ) -> Result<Vec<RosterRecord>, SyncError> {
        let wanted: Vec<Reference> = rows.iter().flat_map(|(_, row)| rows::named(row)).collect();
        self.names.learn(&self.api, &wanted)?;
        let mut records = Vec::new();
        for (reference, row) in rows {
            let id = reference.id().unwrap_or_default();
            match resource {
                Resource::RegistrationForm | Resource::AcademicUnit => {
                    if resource == Resource::RegistrationForm {
                        self.names
                            .insert(&reference.href, rows::text(row, "registrationFormName"));
                    }
                    let group = rows::group(resource, id, row, &self.names);
                    records.push(RosterRecord::Group(group));
                }
                _ if resource.links().is_some() => {
                    let record = rows::link(resource, row, &self.names);
                    let now = record.as_ref().and_then(cursor::pair);
                    if resource == Resource::RegistrationFormMembership
                        && self.cursor.links.get(resource, id) != now.as_ref()
                    {
                        // The pupil's registration group may have changed.
                        for pupil in [Reference::of(row, "student")].into_iter().flatten() {
                            self.affect(Resource::Student, pupil);
                        }
                    }
                    records.extend(self.cursor.links.set(resource, id, now));
                    records.extend(record);
                }
                _ => {}
            }
        }
        Ok(records)
    }

    /// A delta's deletions.
    fn deleted(&mut self, deleted: Vec<(Resource, u64)>) -> Vec<RosterRecord> {
        let mut records = Vec::new();
        for (resource, id) in deleted {
            match resource {
                Resource::RegistrationForm | Resource::AcademicUnit => {
                    records.push(RosterRecord::Removed(Removal::Group(id.to_string())));
                    records.extend(self.cursor.links.forget(resource, &id.to_string()));
                }
                Resource::Student | Resource::Staff | Resource::Guardian => {
                    records.push(RosterRecord::Removed(Removal::Person(id.to_string())));
                    records.extend(self.cursor.links.forget(resource, &id.to_string()));
                    self.affected.remove(&(resource, id));
                }
                _ if resource.links().is_some() => {
                    let before = self.cursor.links.get(resource, id).cloned();
                    records.extend(self.cursor.links.set(resource, id, None));
                    if let (Resource::RegistrationFormMembership, Some((_, pupil))) =
                        (resource, before)
                        && let Ok(pupil) = pupil.parse::<u64>()
                    {
                        let href = format!("/rest-v2/{}/{pupil}", Resource::Student.segment());
                        self.affect(
                            Resource::Student,
                            Reference {
                                entity_type: Some("Student".into()),
                                href,
                            },
                        );
                    }
                }
                // Whose deleted email, enrolment or membership it was, the
                // row no longer says: the next full read puts it right.
                _ => {}
            }
        }
        records
    }

    /// Marks a person to read again, unless deleted in this delta.
    fn affect(&mut self, resource: Resource, reference: Reference) {
        if let Some(id) = reference.id() {
            self.affected.entry((resource, id)).or_insert(reference);
        }
    }

    /// A delta's created or updated rows of one resource.
    fn changed(
        &mut self,
        resource: Resource,
        references: &[Reference],
    ) -> Result<Vec<RosterRecord>, SyncError> {
        if matches!(
            resource,
            Resource::Student | Resource::Staff | Resource::Guardian
        ) {
            for reference in references {
                self.affect(resource, reference.clone());
            }
            return Ok(Vec::new());
        }
        if resource == Resource::Person {
            let hrefs: Vec<String> = references.iter().map(|r| r.href.clone()).collect();
            self.owners_of(&hrefs)?;
            return Ok(Vec::new());
        }
        let rows = read_rows(&self.api, references.to_vec())?;
        match resource {
            Resource::EmailAddress => {
                let mut persons = Vec::new();
                for (_, row) in &rows {
                    let Some(owner) = Reference::of(row, "emailAddressOwner") else {
                        continue;
                    };
                    match owner.entity_type.as_deref().and_then(Resource::of_type) {
                        Some(r @ (Resource::Student | Resource::Staff | Resource::Guardian)) => {
                            self.affect(r, owner);
                        }
                        _ => persons.push(owner.href),
                    }
                }
                self.owners_of(&persons)?;
                Ok(Vec::new())
            }
            Resource::SchoolEnrolment | Resource::AcademicLevelMembership => {
                for (_, row) in &rows {
                    if let Some(pupil) = Reference::of(row, "student") {
                        self.affect(Resource::Student, pupil);
                    }
                }
                Ok(Vec::new())
            }
            _ => self.mapped(resource, &rows),
        }
    }

    /// Marks to read again the `Student`, `Staff` or `Guardian` naming each
    /// of these persons, found by filtered lists.
    fn owners_of(&mut self, persons: &[String]) -> Result<(), SyncError> {
        let kinds = [Resource::Student, Resource::Staff, Resource::Guardian];
        let queries: Vec<(Resource, &str, String)> = persons
            .iter()
            .flat_map(|href| kinds.map(|kind| (kind, "person", href.clone())))
            .collect();
        let found = self.api.list_many(&queries, self.api.page_size)?;
        for ((kind, _, _), owners) in queries.iter().zip(found) {
            for owner in owners {
                self.affect(*kind, owner);
            }
        }
        Ok(())
    }

    /// People read again whole, with the parts of their records found by
    /// filtered lists.
    fn reread(&mut self, people: &[Reference]) -> Result<Vec<RosterRecord>, SyncError> {
        let rows = read_rows(&self.api, people.to_vec())?;
        let mut queries: Vec<(Resource, &str, String)> = Vec::new();
        let mut people = Vec::new();
        for (reference, row) in rows {
            let Some(resource) = reference.entity_type.as_deref().and_then(Resource::of_type)
            else {
                continue;
            };
            if let Some(person) = Reference::of(&row, "person") {
                queries.push((Resource::EmailAddress, "emailAddressOwner", person.href));
            }
            queries.push((
                Resource::EmailAddress,
                "emailAddressOwner",
                reference.href.clone(),
            ));
            if resource == Resource::Student {
                for part in [
                    Resource::SchoolEnrolment,
                    Resource::AcademicLevelMembership,
                    Resource::RegistrationFormMembership,
                ] {
                    queries.push((part, "student", reference.href.clone()));
                }
            }
            people.push((resource, reference, row));
        }
        let found = self.api.list_many(&queries, self.api.page_size)?;
        let mut parts: Vec<(Resource, Reference)> = Vec::new();
        for ((resource, _, _), references) in queries.iter().zip(found) {
            parts.extend(references.into_iter().map(|r| (*resource, r)));
        }
        let part_refs: Vec<Reference> = parts.iter().map(|(_, r)| r.clone()).collect();
        let part_rows = self.api.fetch(&part_refs)?;
        let mut joins = Joins::default();
        for ((resource, reference), row) in parts.iter().zip(part_rows) {
            if let Some(row) = row {
                joins.note(*resource, reference.id().unwrap_or_default(), &row)?;
            }
        }
        people_records(&self.api, &mut self.names, &joins, people)
    }
}

/// The records the references name, without those gone since.
fn read_rows(api: &Api, references: Vec<Reference>) -> Result<Vec<(Reference, Value)>, SyncError> {
    let rows = api.fetch(&references)?;
    Ok(references
        .into_iter()
        .zip(rows)
        .filter_map(|(reference, row)| Some((reference, row?)))
        .collect())
}

/// `Student`, `Staff` and `Guardian` rows as roster people: each person's
/// `Person` read where the row only names it, the names their records
/// need read once each.
fn people_records(
    api: &Api,
    names: &mut Names,
    joins: &Joins,
    people: Vec<(Resource, Reference, Value)>,
) -> Result<Vec<RosterRecord>, SyncError> {
    let named: Vec<Option<Reference>> = people
        .iter()
        .map(|(_, _, row)| {
            let person = row.get("person")?;
            (!rows::embedded(person))
                .then(|| Reference::of(row, "person"))
                .flatten()
        })
        .collect();
    let to_read: Vec<Reference> = named.iter().flatten().cloned().collect();
    let mut read = api.fetch(&to_read)?.into_iter();
    let persons: Vec<Value> = people
        .iter()
        .zip(&named)
        .map(|((_, _, row), named)| match named {
            Some(_) => read.next().flatten().unwrap_or(Value::Null),
            None => row.get("person").cloned().unwrap_or(Value::Null),
        })
        .collect();
    let mut wanted: Vec<Reference> = persons.iter().flat_map(rows::named).collect();
    for (resource, reference, _) in &people {
        if *resource == Resource::Student {
            wanted.extend(joins.named(reference.id().unwrap_or_default()));
        }
    }
    names.learn(api, &wanted)?;
    people
        .iter()
        .zip(&persons)
        .map(|((resource, reference, row), person)| {
            rows::person(*resource, &reference.href, row, person, joins, names)
                .map(RosterRecord::Person)
        })
        .collect()
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
        for resource in Resource::LOGGED {
            cursor.set_revision(resource, 7);
        }
        let mut reader = Arbor::snapshot(settings(), Mode::Delta(cursor.to_text()));
        let Err(SyncError::BadSettings(message)) = reader.next_batch() else {
            panic!("expected bad settings");
        };
        assert!(message.contains("school2"), "{message}");
    }
}
