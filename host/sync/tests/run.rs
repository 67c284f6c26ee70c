//! The run pipeline on both store backends, fed by an in-memory source:
//! apply, resync, holds (trip, export, confirm, reject, kept until
//! answered; weighed per role; answered once; confirmed by revision),
//! disconnected, dry runs, link mode and the manual actions.

use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use rostersync_core::{
    ContactsAnswer, DisconnectedAnswer, HoldAnswer, HoldKind, Refusal, RemovalsAnswer,
};
use rostersync_core::{MatchKey, MatchPolicy, ProvisionMode};
use rostersync_model::{
    ContactType, EnrolmentStatus, Group, GroupKind, MemberRole, Membership, Mode, Person, Record,
    Relationship, Role, Settings, SyncError as ConnectorError,
};
use rostersync_runtime::RunError;
use rostersync_store::testing::on_both_backends;
use rostersync_store::{
    AccountRow, AccountStatus, EntityKind, HoldStatus, Notification, RunMode, Store,
};
use rostersync_sync::{
    Answered, Answering, ConnectionConfig, DryRunVerdict, OpenSource, Phase, Progress,
    RecordSource, RunReport, RunRequest, RunStatus, SyncError, answer_hold, confirm_hold,
    delete_account, export_hold_csv, hold_summary, reconsider_hold, reject_hold, run, run_observed,
    unlink_account,
};

/// A source that serves whatever roster the test sets, in batches of
/// three, or fails after some batches.
#[derive(Clone, Default)]
struct Memory {
    state: Arc<Mutex<MemoryState>>,
}

#[derive(Default)]
struct MemoryState {
    records: Vec<Record>,
    fail_after_batches: Option<(usize, RunError)>,
}

struct MemoryRead {
    batches: std::vec::IntoIter<Vec<Record>>,
    fail: Option<(usize, RunError)>,
    served: usize,
}

impl Memory {
    fn serve(&self, records: Vec<Record>) {
        let mut state = self.state.lock().unwrap();
        state.records = records;
        state.fail_after_batches = None;
    }

    fn fail_after(&self, batches: usize, error: RunError) {
        self.state.lock().unwrap().fail_after_batches = Some((batches, error));
    }
}

impl OpenSource for Memory {
    type Source = MemoryRead;

    fn connector(&self) -> &str {
        "memory"
    }

    fn reads_deltas(&self) -> bool {
        false
    }

    async fn open(&self, mode: Mode) -> Result<MemoryRead, RunError> {
        assert_eq!(mode, Mode::Full, "this source only reads in full");
        let state = self.state.lock().unwrap();
        let batches: Vec<Vec<Record>> = state.records.chunks(3).map(<[Record]>::to_vec).collect();
        Ok(MemoryRead {
            batches: batches.into_iter(),
            fail: state.fail_after_batches.clone(),
            served: 0,
        })
    }
}

impl RecordSource for MemoryRead {
    async fn next_batch(&mut self) -> Result<Option<Vec<Record>>, RunError> {
        if let Some((after, error)) = &self.fail
            && self.served == *after
        {
            return Err(error.clone());
        }
        self.served += 1;
        Ok(self.batches.next())
    }

    async fn cursor(&mut self) -> Result<Option<String>, RunError> {
        Ok(Some(format!("read-{}", self.served)))
    }

    /// A provider page per batch, with the page count known up front.
    fn pages(&self) -> Option<(u32, Option<u32>)> {
        let total = self.served + self.batches.len();
        Some((self.served as u32, Some(total as u32)))
    }
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
}

fn staff(n: usize) -> Record {
    let mut person = Person::new(format!("T{n:03}"), Role::Staff);
    person.first_name = Some("Siobhán".into());
    person.last_name = Some(format!("O'Brien-Smith {n}"));
    person.email = Some(format!("t{n}@school.org"));
    person.start_date = NaiveDate::from_ymd_opt(2020, 9, 1);
    Record::Person(person)
}

fn staff_range(range: std::ops::Range<usize>) -> Vec<Record> {
    range.map(staff).collect()
}

fn connection() -> ConnectionConfig {
    ConnectionConfig::new("north", "memory", Settings::new())
}

async fn sync(store: &Store, connection: &ConnectionConfig, source: &Memory) -> RunReport {
    run(
        store,
        connection,
        source,
        RunRequest::new(RunMode::Full, today()),
    )
    .await
    .unwrap()
}

async fn dry(store: &Store, connection: &ConnectionConfig, source: &Memory) -> RunReport {
    let request = RunRequest {
        dry_run: true,
        ..RunRequest::new(RunMode::Full, today())
    };
    run(store, connection, source, request).await.unwrap()
}

async fn stored_people(store: &Store) -> usize {
    store
        .content_hashes("north", EntityKind::Person)
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn a_first_run_provisions_and_an_unchanged_resync_writes_nothing() {
    on_both_backends(|store, _| async move {
        let source = Memory::default();
        source.serve(staff_range(0..10));
        let first = sync(&store, &connection(), &source).await;
        assert_eq!(
            (first.status, first.created, first.records_read),
            (RunStatus::Succeeded, 10, 10)
        );
        let accounts = store.accounts().await.unwrap();
        assert_eq!(accounts.len(), 10);
        assert_eq!(
            accounts
                .iter()
                .filter(|a| a.created_by.as_deref() == Some("north"))
                .count(),
            10
        );
        assert_eq!(store.links("north").await.unwrap().len(), 10);
        let changed_after_first = store.stamps("north").await.unwrap().last_changed;

        let second = sync(&store, &connection(), &source).await;
        assert_eq!((second.created, second.updated, second.removed), (0, 0, 0));
        let stamps = store.stamps("north").await.unwrap();
        assert_eq!(stamps.last_changed, changed_after_first, "nothing changed");
        assert!(
            stamps.last_checked > changed_after_first,
            "but it was checked"
        );
        let history = store.run_history("north", 10).await.unwrap();
        assert_eq!(history.len(), 2);
        // An unchanged resync counts only the people it read, per role.
        assert!(
            history[0]
                .counts
                .iter()
                .all(|c| c.kind == "staff" && c.action == "read" && c.count == 10),
            "{:?}",
            history[0].counts
        );
        assert!(
            history[1]
                .counts
                .iter()
                .any(|c| c.kind == "account" && c.action == "created" && c.count == 10)
        );
    })
    .await;
}

#[tokio::test]
async fn an_edit_is_logged_field_by_field_and_flows_to_the_account() {
    on_both_backends(|store, _| async move {
        let source = Memory::default();
        source.serve(staff_range(0..3));
        sync(&store, &connection(), &source).await;
        let mut roster = staff_range(0..3);
        if let Record::Person(p) = &mut roster[1] {
            p.email = Some("new@school.org".into());
        }
        source.serve(roster);
        let report = sync(&store, &connection(), &source).await;
        assert_eq!(report.updated, 1);
        let log = store.changes_to(EntityKind::Person, "T001").await.unwrap();
        let update = log
            .iter()
            .find(|(_, c)| c.action == "update")
            .expect("an update row");
        assert!(
            update.1.fields.contains("new@school.org") && update.1.fields.contains("t1@school.org")
        );
        let account = store.links("north").await.unwrap()["T001"].clone();
        assert_eq!(
            store
                .account(&account)
                .await
                .unwrap()
                .unwrap()
                .email
                .as_deref(),
            Some("new@school.org")
        );
    })
    .await;
}

#[tokio::test]
async fn mass_removal_is_held_exported_and_applied_only_on_confirmation() {
    on_both_backends(|store, _| async move {
        let source = Memory::default();
        source.serve(staff_range(0..40));
        sync(&store, &connection(), &source).await;
        // A half-read export: 30 of 40 people missing.
        source.serve(staff_range(0..10));
        let held = sync(&store, &connection(), &source).await;
        assert_eq!(held.status, RunStatus::Held);
        assert_eq!(
            held.holds,
            ["this run would remove 30 of 40 staff (75 %)"],
            "weighed over the staff, in words"
        );
        assert_eq!(stored_people(&store).await, 40, "nothing was applied");
        let hold = store
            .open_hold("north")
            .await
            .unwrap()
            .expect("an open hold");
        let events = store.pending_events(10_000).await.unwrap();
        assert!(events.iter().any(|e| e.event.event == "run.held"));

        let csv = export_hold_csv(&store, hold.id, None).await.unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            format!(
                "# hold {} on north revision 1 digest {}",
                hold.id, hold.digest
            )
        );
        assert_eq!(
            lines[1],
            "Action,Entity type,Integration source id,Entity name,MIS id,Changed fields"
        );
        assert_eq!(lines.len(), 32);
        assert!(
            lines[2].starts_with("remove,person,T010,Siobhán O'Brien-Smith 10"),
            "{}",
            lines[2]
        );

        // Later runs keep the hold until it is answered.
        let again = sync(&store, &connection(), &source).await;
        assert_eq!(again.status, RunStatus::Held);
        let still = store.open_hold("north").await.unwrap().unwrap();
        assert_eq!(
            (still.id, still.revision, &still.digest),
            (hold.id, 1, &hold.digest),
            "the same change set again is the same revision"
        );

        confirm_hold(&store, &connection(), hold.id, &hold.digest, "admin@trust")
            .await
            .unwrap();
        assert_eq!(stored_people(&store).await, 10);
        let deprovisioned = store
            .accounts()
            .await
            .unwrap()
            .iter()
            .filter(|a| a.status == AccountStatus::Deprovisioned)
            .count();
        assert_eq!(deprovisioned, 30);
        assert_eq!(
            store.hold(hold.id).await.unwrap().unwrap().status,
            HoldStatus::Confirmed
        );
        assert!(matches!(
            confirm_hold(&store, &connection(), hold.id, &hold.digest, "admin@trust").await,
            Err(SyncError::Refused(Refusal::Answered(_)))
        ));
        let audit = store.audit_log().await.unwrap();
        assert_eq!(
            (audit[0].action.as_str(), audit[0].actor.as_str()),
            ("hold.confirm", "admin@trust")
        );
        let next = sync(&store, &connection(), &source).await;
        assert_eq!((next.status, next.removed), (RunStatus::Succeeded, 0));
    })
    .await;
}

#[tokio::test]
async fn a_rejected_hold_applies_nothing_and_the_next_run_decides_afresh() {
    on_both_backends(|store, _| async move {
        let source = Memory::default();
        source.serve(staff_range(0..40));
        sync(&store, &connection(), &source).await;
        source.serve(staff_range(0..10));
        sync(&store, &connection(), &source).await;
        let hold = store.open_hold("north").await.unwrap().unwrap();
        reject_hold(&store, &connection(), hold.id, "admin@trust")
            .await
            .unwrap();
        assert_eq!(stored_people(&store).await, 40);
        assert_eq!(
            store.hold(hold.id).await.unwrap().unwrap().status,
            HoldStatus::Rejected
        );
        // The export is fixed at the source: the next run is clean.
        source.serve(staff_range(0..40));
        let next = sync(&store, &connection(), &source).await;
        assert_eq!((next.status, next.removed), (RunStatus::Succeeded, 0));
        assert_eq!(store.audit_log().await.unwrap()[0].action, "hold.reject");
    })
    .await;
}

#[tokio::test]
async fn creates_go_ahead_while_removals_wait_when_the_connection_says_so() {
    on_both_backends(|store, _| async move {
        let mut connection = connection();
        connection.holds.apply_while_removals_held = true;
        let source = Memory::default();
        source.serve(staff_range(0..40));
        sync(&store, &connection, &source).await;
        let mut roster = staff_range(30..40);
        roster.push(staff(99));
        source.serve(roster);
        let report = sync(&store, &connection, &source).await;
        assert_eq!(report.status, RunStatus::Held);
        assert_eq!(
            stored_people(&store).await,
            41,
            "the new person is in, no one is out"
        );
        let hold = store.open_hold("north").await.unwrap().unwrap();
        let csv = export_hold_csv(&store, hold.id, None).await.unwrap();
        assert_eq!(csv.lines().count(), 32, "only the removals wait");
        confirm_hold(&store, &connection, hold.id, &hold.digest, "admin")
            .await
            .unwrap();
        assert_eq!(stored_people(&store).await, 11);
    })
    .await;
}

fn contact(n: usize) -> Record {
    let mut person = Person::new(format!("C{n}"), Role::Contact);
    person.first_name = Some("Mary".into());
    person.last_name = Some(format!("Ó Súilleabháin {n}"));
    Record::Person(person)
}

fn contact_of(student: &str, contact: usize, contact_type: ContactType) -> Record {
    Record::Relationship(Relationship {
        student: student.into(),
        contact: format!("C{contact}"),
        contact_type,
        relationship: Some("Parent".into()),
        priority: Some(contact as u32),
        parental_responsibility: true,
    })
}

#[tokio::test]
async fn too_many_contacts_and_unaccepted_types_are_held_and_confirming_accepts_them() {
    on_both_backends(|store, _| async move {
        let source = Memory::default();
        let mut roster = staff_range(0..2);
        roster.extend((1..=6).map(contact));
        roster.extend((1..=6).map(|c| contact_of("T000", c, ContactType::Primary)));
        roster.push(contact_of("T001", 1, ContactType::Emergency));
        source.serve(roster);
        let report = sync(&store, &connection(), &source).await;
        assert_eq!(report.status, RunStatus::Held);
        assert_eq!(
            report.holds,
            [
                "Siobhán O'Brien-Smith 0 would have 6 contacts, more than the 5 this connection allows",
                "an emergency contact, which this connection does not accept: \
                 Siobhán O'Brien-Smith 1's parent Mary Ó Súilleabháin 1",
            ]
        );
        assert!(
            store
                .content_hashes("north", EntityKind::Relationship)
                .await
                .unwrap()
                .is_empty()
        );
        let hold = store.open_hold("north").await.unwrap().unwrap();
        confirm_hold(&store, &connection(), hold.id, &hold.digest, "admin")
            .await
            .unwrap();
        assert_eq!(
            store
                .content_hashes("north", EntityKind::Relationship)
                .await
                .unwrap()
                .len(),
            7
        );
    })
    .await;
}

/// A school as a register-based MIS exports it: a year group, a
/// registration group in it, on-roll pupils with start dates, and contacts
/// with both names (the fields every validation policy asks of them).
fn school(pupils: usize, contacts_per_pupil: usize, staff_count: usize) -> Vec<Record> {
    let group = |id: &str, kind: GroupKind, year: Option<&str>| {
        Record::Group(Group {
            id: id.into(),
            kind,
            name: Some(id.into()),
            code: None,
            subject: None,
            year_group: year.map(Into::into),
            active: true,
            parent: None,
        })
    };
    let mut records = vec![
        group("Y7", GroupKind::Year, None),
        group("7A", GroupKind::Registration, Some("Y7")),
    ];
    for n in 0..pupils {
        records.push(pupil(n, "Ó Súilleabháin"));
        for c in 0..contacts_per_pupil {
            let mut contact = Person::new(format!("C{n:03}-{c}"), Role::Contact);
            contact.first_name = Some("Mary".into());
            contact.last_name = Some(format!("Ó Súilleabháin {n}"));
            records.push(Record::Person(contact));
            records.push(relationship(n, c, ContactType::Primary, 1));
        }
    }
    records.extend(staff_range(0..staff_count));
    records
}

fn pupil(n: usize, surname: &str) -> Record {
    let mut person = Person::new(format!("P{n:03}"), Role::Student);
    person.first_name = Some("Ana".into());
    person.last_name = Some(format!("{surname} {n}"));
    person.start_date = NaiveDate::from_ymd_opt(2025, 9, 1);
    person.enrolment = Some(EnrolmentStatus::OnRoll);
    person.year_group = Some("Y7".into());
    person.registration_group = Some("7A".into());
    Record::Person(person)
}

fn relationship(pupil: usize, contact: usize, contact_type: ContactType, priority: u32) -> Record {
    Record::Relationship(Relationship {
        student: format!("P{pupil:03}"),
        contact: format!("C{pupil:03}-{contact}"),
        contact_type,
        relationship: Some("Guardian".into()),
        priority: Some(priority),
        parental_responsibility: true,
    })
}

/// A source serving `roster`, after a first run applied all of it.
async fn synced(store: &Store, roster: Vec<Record>) -> Memory {
    let source = Memory::default();
    source.serve(roster);
    let first = sync(store, &connection(), &source).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.holds);
    source
}

async fn stored(store: &Store, kind: EntityKind) -> usize {
    store.content_hashes("north", kind).await.unwrap().len()
}

#[tokio::test]
async fn an_accepted_contact_type_hold_does_not_come_back_on_the_next_run() {
    on_both_backends(|store, _| async move {
        let source = Memory::default();
        let mut roster = school(1, 1, 0);
        let emergency = |priority| relationship(0, 0, ContactType::Emergency, priority);
        roster[4] = emergency(1);
        source.serve(roster.clone());
        let held = sync(&store, &connection(), &source).await;
        assert_eq!(
            held.holds,
            [
                "an emergency contact, which this connection does not accept: \
              Ana Ó Súilleabháin 0's guardian Mary Ó Súilleabháin 0"
            ]
        );
        let hold = store.open_hold("north").await.unwrap().unwrap();
        confirm_hold(&store, &connection(), hold.id, &hold.digest, "office")
            .await
            .unwrap();
        assert_eq!(stored(&store, EntityKind::Relationship).await, 1);

        let next = sync(&store, &connection(), &source).await;
        assert_eq!((next.status, next.holds.len()), (RunStatus::Succeeded, 0));
        // The provider re-sends the accepted contact with a new priority:
        // the school's answer still stands.
        roster[4] = emergency(2);
        source.serve(roster.clone());
        let reprioritised = sync(&store, &connection(), &source).await;
        assert_eq!(
            (reprioritised.status, reprioritised.updated),
            (RunStatus::Succeeded, 1),
            "{:?}",
            reprioritised.holds
        );
        assert!(store.open_hold("north").await.unwrap().is_none());
        // A different type is a different question.
        roster[4] = relationship(0, 0, ContactType::Secondary, 2);
        source.serve(roster);
        let secondary = sync(&store, &connection(), &source).await;
        assert_eq!(secondary.status, RunStatus::Held);
        assert!(
            secondary.holds[0].starts_with("a secondary contact"),
            "{:?}",
            secondary.holds
        );
    })
    .await;
}

#[tokio::test]
async fn confirming_a_revision_a_later_run_replaced_is_refused_and_applies_nothing() {
    on_both_backends(|store, _| async move {
        let source = Memory::default();
        source.serve(staff_range(0..40));
        sync(&store, &connection(), &source).await;
        // Reviewed: 10 of 40 staff missing.
        source.serve(staff_range(0..30));
        sync(&store, &connection(), &source).await;
        let reviewed = store.open_hold("north").await.unwrap().unwrap();
        let evidence = export_hold_csv(&store, reviewed.id, None).await.unwrap();
        assert_eq!(evidence.lines().count(), 12, "{evidence}");
        assert!(evidence.lines().next().unwrap().ends_with(&reviewed.digest));

        // Before the answer, a worse export arrives: 30 of 40 missing.
        source.serve(staff_range(0..10));
        sync(&store, &connection(), &source).await;
        let current = store.open_hold("north").await.unwrap().unwrap();
        assert_eq!((current.id, current.revision), (reviewed.id, 2));
        assert_ne!(current.digest, reviewed.digest);
        let shown = hold_summary(&store, current.id).await.unwrap();
        assert_eq!(shown.why, ["this run would remove 30 of 40 staff (75 %)"]);
        assert_eq!((shown.creates, shown.updates, shown.removals), (0, 0, 30));
        let exported = export_hold_csv(&store, current.id, None).await.unwrap();
        assert_eq!(exported.lines().count(), 32, "show and export agree");

        let refused = confirm_hold(&store, &connection(), reviewed.id, &reviewed.digest, "ops").await;
        assert!(
            matches!(&refused, Err(SyncError::Refused(Refusal::RevisionNotCurrent { current: c, .. })) if *c == current.digest),
            "{refused:?}"
        );
        assert_eq!(stored_people(&store).await, 40, "nothing was applied");
        let active = store
            .accounts()
            .await
            .unwrap()
            .iter()
            .filter(|a| a.status == AccountStatus::Active)
            .count();
        assert_eq!(active, 40, "no account was deprovisioned");
        assert_eq!(
            store.hold(reviewed.id).await.unwrap().unwrap().status,
            HoldStatus::Open
        );
        // The superseded revision's evidence is kept.
        let revisions = store.hold_revisions(reviewed.id).await.unwrap();
        assert_eq!(revisions.len(), 2);
        assert!(revisions[0].superseded_at.is_some() && revisions[1].superseded_at.is_none());
        let old = export_hold_csv(&store, reviewed.id, Some(&reviewed.digest))
            .await
            .unwrap();
        assert_eq!(old, evidence);

        // The export is fixed at the source: the hold's new revision
        // changes nothing, and says so in both places.
        source.serve(staff_range(0..40));
        sync(&store, &connection(), &source).await;
        let fixed = hold_summary(&store, reviewed.id).await.unwrap();
        assert_eq!(fixed.hold.revision, 3);
        assert!(fixed.why.is_empty(), "{:?}", fixed.why);
        assert_eq!((fixed.creates, fixed.updates, fixed.removals), (0, 0, 0));
        let empty = export_hold_csv(&store, reviewed.id, None).await.unwrap();
        assert_eq!(empty.lines().count(), 2, "{empty}");
        confirm_hold(&store, &connection(), reviewed.id, &fixed.hold.digest, "ops")
            .await
            .unwrap();
        assert_eq!(stored_people(&store).await, 40);
    })
    .await;
}

#[tokio::test]
async fn every_pupils_surname_changing_at_once_is_held() {
    on_both_backends(|store, _| async move {
        // 30 pupils among 95 people: renaming them all is 32 % of everyone.
        let source = synced(&store, school(30, 2, 5)).await;
        let renamed: Vec<Record> = school(30, 2, 5)
            .into_iter()
            .map(|record| match record {
                Record::Person(p) if p.role == Role::Student => {
                    let n: usize = p.id[1..].parse().unwrap();
                    pupil(n, "Renamed")
                }
                other => other,
            })
            .collect();
        source.serve(renamed);
        let held = sync(&store, &connection(), &source).await;
        assert_eq!(held.status, RunStatus::Held);
        assert_eq!(
            held.holds,
            ["this run would change 30 of 30 students (100 %)"]
        );
        let pupil = store
            .load("north", EntityKind::Person, &["P000".into()])
            .await
            .unwrap();
        assert!(
            pupil[0].body.contains("Ó Súilleabháin 0"),
            "nothing was applied"
        );
    })
    .await;
}

#[tokio::test]
async fn every_pupil_vanishing_is_held_whatever_the_number_of_contacts_and_staff() {
    on_both_backends(|store, _| async move {
        // 20 pupils among 270 people (7 %, under the 10 % removal share
        // over everyone), each with five contacts, and 150 staff.
        let source = synced(&store, school(20, 5, 150)).await;
        assert_eq!(stored_people(&store).await, 270);
        let without_pupils: Vec<Record> = school(20, 5, 150)
            .into_iter()
            .filter(|r| {
                !matches!(r, Record::Person(p) if p.role == Role::Student)
                    && !matches!(r, Record::Relationship(_))
            })
            .collect();
        source.serve(without_pupils);
        let held = sync(&store, &connection(), &source).await;
        assert_eq!(held.status, RunStatus::Held);
        assert_eq!(
            held.holds[0], "this run would remove 20 of 20 students (100 %)",
            "{:?}",
            held.holds
        );
        assert_eq!(stored_people(&store).await, 270, "nothing was applied");
    })
    .await;
}

fn unreachable() -> RunError {
    RunError::Connector {
        connector: "memory".into(),
        error: ConnectorError::Unavailable("connection refused".into()),
    }
}

#[tokio::test]
async fn a_failed_read_removes_nothing_and_repeated_failures_hold_as_disconnected() {
    on_both_backends(|store, _| async move {
        let source = Memory::default();
        source.serve(staff_range(0..9));
        sync(&store, &connection(), &source).await;
        source.fail_after(2, unreachable());
        for attempt in 1..=3 {
            let report = sync(&store, &connection(), &source).await;
            assert_eq!(report.status, RunStatus::Failed);
            assert!(
                report
                    .error
                    .as_deref()
                    .unwrap()
                    .contains("connection refused")
            );
            assert_eq!(
                report.records_read, 6,
                "two batches read before the failure"
            );
            assert_eq!(
                stored_people(&store).await,
                9,
                "attempt {attempt} removed nothing"
            );
            assert_eq!(
                store.open_hold("north").await.unwrap().is_some(),
                attempt == 3
            );
        }
        let events: Vec<String> = store
            .pending_events(100)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event.event)
            .collect();
        assert_eq!(events.iter().filter(|e| *e == "run.failed").count(), 3);
        assert_eq!(
            events
                .iter()
                .filter(|e| *e == "connection.disconnected")
                .count(),
            1
        );
        let history = store.run_history("north", 10).await.unwrap();
        assert!(
            history[0].unreachable
                && history[0]
                    .message
                    .as_deref()
                    .unwrap()
                    .contains("unavailable")
        );
    })
    .await;
}

#[tokio::test]
async fn a_dry_run_reports_and_keeps_its_change_set_but_applies_nothing() {
    on_both_backends(|store, _| async move {
        let source = Memory::default();
        source.serve(staff_range(0..40));
        let first = dry(&store, &connection(), &source).await;
        assert_eq!(
            (first.status, first.dry_run_verdict()),
            (RunStatus::DryRun, DryRunVerdict::ChangesPending)
        );
        assert_eq!(first.created, 40);
        assert_eq!(stored_people(&store).await, 0);
        assert!(store.accounts().await.unwrap().is_empty());
        assert!(
            store
                .kept_change_set(first.run_id)
                .await
                .unwrap()
                .unwrap()
                .contains("T039")
        );
        sync(&store, &connection(), &source).await;
        assert_eq!(
            dry(&store, &connection(), &source).await.dry_run_verdict(),
            DryRunVerdict::Clean
        );
        source.serve(staff_range(0..5));
        let would_hold = dry(&store, &connection(), &source).await;
        assert_eq!(would_hold.dry_run_verdict(), DryRunVerdict::WouldHold);
        assert!(
            store.open_hold("north").await.unwrap().is_none(),
            "a dry run opens no hold"
        );
        assert_eq!(stored_people(&store).await, 40);
        assert!(
            store
                .pending_events(1000)
                .await
                .unwrap()
                .iter()
                .all(|e| e.event.event != "run.held")
        );
    })
    .await;
}

fn account(id: &str, email: &str, role: &str) -> AccountRow {
    AccountRow {
        id: id.into(),
        role: role.into(),
        mis_id: None,
        email: Some(email.into()),
        username: None,
        display_name: id.into(),
        status: AccountStatus::Active,
        created_by: None,
    }
}

#[tokio::test]
async fn link_mode_links_existing_accounts_and_reports_every_mismatch() {
    on_both_backends(|store, _| async move {
        store
            .put_accounts(&[
                account("hand-0", "t0@school.org", "staff"),
                account("hand-1", "t1@school.org", "student"),
            ])
            .await
            .unwrap();
        let mut connection = connection();
        connection.provisioning = MatchPolicy {
            mode: ProvisionMode::Link,
            ..MatchPolicy::default()
        };
        let source = Memory::default();
        source.serve(staff_range(0..3));
        let report = sync(&store, &connection, &source).await;
        assert_eq!(report.status, RunStatus::SucceededWithIssues);
        assert_eq!(
            store.accounts().await.unwrap().len(),
            2,
            "link mode never creates"
        );
        let links = store.links("north").await.unwrap();
        assert_eq!(links.len(), 1);
        assert_eq!(links["T000"], "hand-0");
        let issues = store.run_issues(report.run_id).await.unwrap();
        let messages: Vec<(&str, &str)> = issues
            .iter()
            .map(|i| (i.source_id.as_str(), i.message.as_str()))
            .collect();
        assert!(
            messages.contains(&("T002", "No matching account found")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|(id, m)| *id == "T001" && m.contains("Student")),
            "{messages:?}"
        );
        // A removal at the source unlinks; the account stays.
        source.serve(staff_range(1..3));
        sync(&store, &connection, &source).await;
        assert!(store.links("north").await.unwrap().is_empty());
        assert_eq!(
            store.account("hand-0").await.unwrap().unwrap().status,
            AccountStatus::Active
        );
    })
    .await;
}

#[tokio::test]
async fn manual_delete_and_unlink_are_audited_and_a_forced_rerun_provisions_again() {
    on_both_backends(|store, _| async move {
        let source = Memory::default();
        source.serve(staff_range(0..3));
        sync(&store, &connection(), &source).await;
        let links = store.links("north").await.unwrap();
        let (first, second) = (links["T000"].clone(), links["T001"].clone());
        delete_account(&store, "north", &first, "it@school")
            .await
            .unwrap();
        unlink_account(&store, "north", &second, "it@school")
            .await
            .unwrap();
        assert_eq!(
            store.account(&first).await.unwrap().unwrap().status,
            AccountStatus::Deleted
        );
        assert_eq!(
            store.account(&second).await.unwrap().unwrap().status,
            AccountStatus::Active
        );
        assert_eq!(store.links("north").await.unwrap().len(), 1);
        let audit = store.audit_log().await.unwrap();
        let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(actions, ["account.delete", "account.unlink"]);
        assert!(audit[0].subject.contains(&first) && audit[0].detail.contains("T000"));
        assert!(matches!(
            unlink_account(&store, "north", &second, "it@school").await,
            Err(SyncError::NotThisConnections { .. })
        ));

        // An ordinary run leaves the operator's decision alone...
        sync(&store, &connection(), &source).await;
        assert_eq!(store.links("north").await.unwrap().len(), 1);
        // ...a forced full re-run offers both people to provisioning again.
        let forced = RunRequest {
            forced: true,
            ..RunRequest::new(RunMode::Full, today())
        };
        run(&store, &connection(), &source, forced).await.unwrap();
        let links = store.links("north").await.unwrap();
        assert_eq!(links.len(), 3);
        assert_eq!(links["T001"], second, "the same account, linked again");
    })
    .await;
}

#[tokio::test]
async fn progress_moves_through_the_phases_with_each_batch_and_estimates_from_the_last_full_read() {
    on_both_backends(|store, _| async move {
        let source = Memory::default();
        source.serve(staff_range(0..10));
        let seen = Mutex::new(Vec::new());
        let observe = |progress: &Progress| seen.lock().unwrap().push(progress.clone());
        let request = RunRequest::new(RunMode::Full, today());
        run_observed(&store, &connection(), &source, request, &observe)
            .await
            .unwrap();
        let first: Vec<Progress> = std::mem::take(&mut *seen.lock().unwrap());
        let phases: Vec<Phase> = first.iter().map(|p| p.phase).collect();
        let mut distinct = phases.clone();
        distinct.dedup();
        assert_eq!(
            distinct,
            [
                Phase::Starting,
                Phase::Reading,
                Phase::Checking,
                Phase::Applying
            ]
        );
        let reading: Vec<(u64, u64)> = first
            .iter()
            .filter(|p| p.phase == Phase::Reading && p.batches > 0)
            .map(|p| (p.batches, p.records_read))
            .collect();
        // Batches of three: 3, 6, 9, 10.
        assert_eq!(reading, [(1, 3), (2, 6), (3, 9), (4, 10)]);
        let pages: Vec<(u32, Option<u32>)> = first
            .iter()
            .filter(|p| p.phase == Phase::Reading && p.batches > 0)
            .map(|p| (p.pages_done, p.pages_total))
            .collect();
        assert_eq!(
            pages,
            [(1, Some(4)), (2, Some(4)), (3, Some(4)), (4, Some(4))],
            "the source's own page count"
        );
        assert_eq!(
            first[0].estimated_total, None,
            "no full read to estimate from yet"
        );

        run_observed(&store, &connection(), &source, request, &observe)
            .await
            .unwrap();
        let second = seen.lock().unwrap();
        assert!(
            second.iter().all(|p| p.estimated_total == Some(10)),
            "{second:?}"
        );
        assert_eq!(
            second.last().unwrap().describe(),
            "applying: page 4 of 4, 10 of about 10 records"
        );
    })
    .await;
}

#[tokio::test]
async fn in_an_additions_only_blackout_creates_apply_and_removals_wait_for_an_operator() {
    on_both_backends(|store, _| async move {
        let source = Memory::default();
        source.serve(staff_range(0..10));
        sync(&store, &connection(), &source).await;
        // Two leave, one joins: only the join applies.
        source.serve(staff_range(2..11));
        let request = RunRequest {
            additions_only: true,
            ..RunRequest::new(RunMode::Full, today())
        };
        let report = run(&store, &connection(), &source, request).await.unwrap();
        assert_eq!(report.status, RunStatus::Held);
        assert!(
            report.holds[0].contains("2 removals wait"),
            "{:?}",
            report.holds
        );
        assert_eq!(
            stored_people(&store).await,
            11,
            "the new one is in, the leavers stay"
        );
        let hold = store.open_hold("north").await.unwrap().unwrap();
        confirm_hold(&store, &connection(), hold.id, &hold.digest, "ops")
            .await
            .unwrap();
        assert_eq!(
            stored_people(&store).await,
            9,
            "confirmed, the removals apply"
        );
    })
    .await;
}

fn staff_without_start_date(n: usize) -> Record {
    let Record::Person(mut person) = staff(n) else {
        unreachable!("staff are people")
    };
    person.start_date = None;
    Record::Person(person)
}

async fn active_accounts(store: &Store) -> usize {
    store
        .accounts()
        .await
        .unwrap()
        .iter()
        .filter(|a| a.status == AccountStatus::Active)
        .count()
}

#[tokio::test]
async fn a_run_dropping_most_of_a_role_ends_incomplete_and_removes_nothing() {
    on_both_backends(|store, _| async move {
        let mut connection = connection();
        connection.validation.require_start_date = true;
        let source = Memory::default();
        source.serve(staff_range(0..20));
        assert_eq!(
            sync(&store, &connection, &source).await.status,
            RunStatus::Succeeded
        );
        let cursor = store.last_cursor("north").await.unwrap();

        // The export loses 15 start dates and 2 people (too few to hold);
        // one joins.
        let mut roster: Vec<Record> = (0..15).map(staff_without_start_date).collect();
        roster.extend(staff_range(15..18));
        roster.push(staff(20));
        source.serve(roster);
        let report = sync(&store, &connection, &source).await;
        assert_eq!(report.status, RunStatus::Incomplete);
        assert_eq!(
            report.incomplete,
            vec!["4 of 19 staff provisioned: 15 have no start date (policy require_start_date)"]
        );
        assert_eq!((report.created, report.removed), (1, 0));
        assert_eq!(
            stored_people(&store).await,
            21,
            "nobody removed, the joiner added"
        );
        assert_eq!(active_accounts(&store).await, 21, "nobody deprovisioned");
        assert_eq!(
            store.last_cursor("north").await.unwrap(),
            cursor,
            "the next delta reads the same changes again"
        );
        let staff_count = report
            .roles
            .iter()
            .find(|r| r.role == Role::Staff)
            .copied()
            .unwrap();
        assert_eq!(
            (staff_count.read, staff_count.left_out, staff_count.accounts),
            (19, 15, 21)
        );
        let events = store.pending_events(1000).await.unwrap();
        let incomplete: Vec<_> = events
            .iter()
            .filter(|e| e.event.event == Notification::RunIncomplete.as_str())
            .collect();
        assert_eq!(incomplete.len(), 1);
        assert!(
            incomplete[0]
                .event
                .payload
                .contains("15 have no start date")
        );
        let history = store.run_history("north", 1).await.unwrap();
        assert_eq!(history[0].status, "incomplete");
        assert!(
            history[0]
                .counts
                .iter()
                .any(|c| c.kind == "staff" && c.action == "left-out" && c.count == 15)
        );

        // Fixed at the source: the next run completes and reconciles.
        source.serve(staff_range(0..18).into_iter().chain([staff(20)]).collect());
        let fixed = sync(&store, &connection, &source).await;
        assert_eq!((fixed.status, fixed.removed), (RunStatus::Succeeded, 2));
        assert_eq!(active_accounts(&store).await, 19);
    })
    .await;
}

#[tokio::test]
async fn a_few_left_out_of_a_tiny_school_is_not_incomplete() {
    on_both_backends(|store, _| async move {
        let mut connection = connection();
        connection.validation.require_start_date = true;
        let source = Memory::default();
        source.serve((0..4).map(staff_without_start_date).collect());
        let report = sync(&store, &connection, &source).await;
        assert_eq!(report.status, RunStatus::SucceededWithIssues);
        assert!(report.incomplete.is_empty());
    })
    .await;
}

fn named_contact(id: &str, last_name: Option<&str>) -> Record {
    let mut person = Person::new(id, Role::Contact);
    person.first_name = Some("Mary".into());
    person.last_name = last_name.map(Into::into);
    Record::Person(person)
}

fn class(id: &str) -> Record {
    Record::Group(Group {
        id: id.into(),
        kind: GroupKind::Class,
        name: Some(format!("Class {id}")),
        code: None,
        subject: None,
        year_group: None,
        active: true,
        parent: None,
    })
}

fn member(group: &str, person: &str) -> Record {
    Record::Membership(Membership {
        group: group.into(),
        person: person.into(),
        role: MemberRole::Teacher,
        start_date: None,
        end_date: None,
    })
}

/// Every stored membership and relationship names two stored ends.
async fn assert_no_dangling_rows(store: &Store) {
    let keys = |kind| async move {
        store
            .content_hashes("north", kind)
            .await
            .unwrap()
            .into_keys()
            .collect::<std::collections::HashSet<String>>()
    };
    let people = keys(EntityKind::Person).await;
    let groups = keys(EntityKind::Group).await;
    for key in keys(EntityKind::Membership).await {
        let (group, person) = key.split_once('\u{1f}').unwrap();
        assert!(
            groups.contains(group) && people.contains(person),
            "membership {key:?} dangles"
        );
    }
    for key in keys(EntityKind::Relationship).await {
        let (student, contact) = key.split_once('\u{1f}').unwrap();
        assert!(
            people.contains(student) && people.contains(contact),
            "relationship {key:?} dangles"
        );
    }
}

#[tokio::test]
async fn no_dangling_membership_or_relationship_is_ever_stored() {
    on_both_backends(|store, _| async move {
        let source = Memory::default();
        let roster = vec![
            staff(0),
            named_contact("C1", None),
            named_contact("C2", Some("Ó Súilleabháin")),
            class("G2"),
            contact_of("T000", 1, ContactType::Primary),
            contact_of("T000", 2, ContactType::Primary),
            contact_of("T000", 9, ContactType::Primary),
            member("G1", "T000"),
            member("G2", "T000"),
        ];
        source.serve(roster.clone());
        let report = sync(&store, &connection(), &source).await;
        assert_no_dangling_rows(&store).await;
        let relationships = store
            .content_hashes("north", EntityKind::Relationship)
            .await
            .unwrap();
        assert_eq!(relationships.len(), 1, "only T000 and C2 are both stored");
        let issues = store.run_issues(report.run_id).await.unwrap();
        let dangling: Vec<(&str, &str, &str)> = issues
            .iter()
            .filter(|i| i.policy == "referential_integrity")
            .map(|i| {
                (
                    i.source_id.as_str(),
                    i.entity_name.as_str(),
                    i.message.as_str(),
                )
            })
            .collect();
        assert_eq!(
            dangling,
            vec![
                (
                    "G1 / T000",
                    "Siobhán O'Brien-Smith 0 (T000) in G1",
                    "Not stored: the group G1 is not stored and the source did not send it"
                ),
                (
                    "T000 / C1",
                    "Mary (C1), contact of Siobhán O'Brien-Smith 0 (T000)",
                    "Not stored: the contact Mary (C1) was left out (Missing last name)"
                ),
                (
                    "T000 / C9",
                    "C9, contact of Siobhán O'Brien-Smith 0 (T000)",
                    "Not stored: the contact C9 is not stored and the source did not send it"
                ),
            ]
        );
        let standing = store.standing_issues("north").await.unwrap();
        assert_eq!(standing.len(), 4, "C1's own issue and three links");

        // C1 gets a name at the source: the link follows; T000 leaves and
        // takes their links along.
        let mut fixed = roster.clone();
        fixed[1] = named_contact("C1", Some("Nguyễn"));
        source.serve(fixed);
        sync(&store, &connection(), &source).await;
        assert_eq!(
            store
                .content_hashes("north", EntityKind::Relationship)
                .await
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            store.standing_issues("north").await.unwrap().len(),
            2,
            "C9 and G1 still dangle"
        );
        source.serve(roster[1..4].to_vec());
        sync(&store, &connection(), &source).await;
        assert_no_dangling_rows(&store).await;
        assert!(
            store
                .content_hashes("north", EntityKind::Membership)
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn link_mode_matches_contacts_sharing_a_pupils_mis_id_within_their_role() {
    on_both_backends(|store, _| async move {
        let with_mis_id = |id: &str, role: &str| AccountRow {
            mis_id: Some("9919".into()),
            ..account(id, &format!("{id}@school.org"), role)
        };
        store
            .put_accounts(&[
                with_mis_id("hand-pupil", "student"),
                with_mis_id("hand-mother", "contact"),
            ])
            .await
            .unwrap();
        let mut connection = connection();
        connection.provisioning = MatchPolicy {
            mode: ProvisionMode::Link,
            match_on: vec![MatchKey::MisId],
            ..MatchPolicy::default()
        };
        // A real Wonde contact carries the pupil's mis_id.
        let mut pupil = Person::new("S1", Role::Student);
        pupil.first_name = Some("Manuel".into());
        pupil.last_name = Some("Shields".into());
        pupil.mis_id = Some("9919".into());
        pupil.enrolment = Some(EnrolmentStatus::OnRoll);
        pupil.year_group = Some("Year 7".into());
        let mut mother = Person::new("C1", Role::Contact);
        mother.first_name = Some("Bethany".into());
        mother.last_name = Some("Shields".into());
        mother.mis_id = Some("9919".into());
        let source = Memory::default();
        source.serve(vec![Record::Person(pupil), Record::Person(mother)]);
        let report = sync(&store, &connection, &source).await;
        assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
        let links = store.links("north").await.unwrap();
        assert_eq!(links["S1"], "hand-pupil");
        assert_eq!(links["C1"], "hand-mother");
    })
    .await;
}

/// The evidence CSV's rows below its two header lines.
fn evidence_rows(csv: &str) -> Vec<String> {
    csv.lines().skip(2).map(str::to_string).collect()
}

fn answering<'a>(answer: HoldAnswer, revision: &'a str, comment: Option<&'a str>) -> Answering<'a> {
    Answering {
        answer,
        revision,
        by: "office",
        comment,
    }
}

#[tokio::test]
async fn a_removals_hold_offers_confirm_or_reject_and_its_evidence_is_only_the_removals() {
    on_both_backends(|store, _| async move {
        let source = Memory::default();
        let mut first = staff_range(0..40);
        first.push(pupil(0, "Ó Súilleabháin"));
        source.serve(first);
        sync(&store, &connection(), &source).await;
        // 30 staff leave, and an unrelated pupil arrives and is renamed.
        let mut roster = staff_range(0..10);
        roster.push(pupil(0, "Renamed"));
        roster.push(pupil(1, "=cmd|' /C calc'!A0"));
        source.serve(roster);
        let held = sync(&store, &connection(), &source).await;
        assert_eq!(held.status, RunStatus::Held);
        assert_eq!(held.held, ["30 removals held: 30 staff"], "grouped, not listed");
        let hold = store.open_hold("north").await.unwrap().unwrap();
        assert_eq!(held.hold, Some(hold.id));
        assert_eq!(hold.kind, HoldKind::Removals);
        let shown = hold_summary(&store, hold.id).await.unwrap();
        let labels: Vec<&str> = shown.answers.iter().map(|a| a.label).collect();
        assert_eq!(labels, ["Confirm removals", "Reject"]);
        assert_eq!(
            shown.headline("rostersync holds show 1"),
            "30 removals held: 30 staff — see rostersync holds show 1"
        );
        let events = store.pending_events(100).await.unwrap();
        let held_event = events.iter().find(|e| e.event.event == "run.held").unwrap();
        assert!(
            held_event.event.payload.contains("30 removals held: 30 staff"),
            "{}",
            held_event.event.payload
        );

        // Only the 30 removed staff: not the new pupil, not the rename.
        let rows = evidence_rows(&export_hold_csv(&store, hold.id, None).await.unwrap());
        assert_eq!(rows.len(), 30, "{rows:?}");
        assert!(rows.iter().all(|r| r.starts_with("remove,person,T0")), "{rows:?}");

        // A contacts answer does not belong to a removals hold.
        let wrong = answer_hold(
            &store,
            &connection(),
            hold.id,
            answering(
                HoldAnswer::Contacts(ContactsAnswer::CreateAccounts),
                &hold.digest,
                None,
            ),
        )
        .await;
        assert!(matches!(wrong, Err(SyncError::Refused(Refusal::NotOffered { .. }))), "{wrong:?}");

        let answered = answer_hold(
            &store,
            &connection(),
            hold.id,
            answering(
                HoldAnswer::Removals(RemovalsAnswer::Reject),
                &hold.digest,
                Some("  the MIS export was cut short; re-run after the fix  "),
            ),
        )
        .await
        .unwrap();
        assert_eq!(answered, Answered::Closed);
        assert_eq!(stored_people(&store).await, 41, "nothing applied");
        let row = store.hold(hold.id).await.unwrap().unwrap();
        assert_eq!(row.status, HoldStatus::Rejected);
        assert_eq!(row.answer, Some(HoldAnswer::Removals(RemovalsAnswer::Reject)));
        assert_eq!(
            row.comment.as_deref(),
            Some("the MIS export was cut short; re-run after the fix")
        );
        let audit = store.audit_log().await.unwrap();
        let last = audit.last().unwrap();
        assert_eq!((last.action.as_str(), last.actor.as_str()), ("hold.reject", "office"));
        assert!(
            last.detail.contains("answered \"Reject\" with the comment \"the MIS export was cut short; re-run after the fix\", confirmed"),
            "{}",
            last.detail
        );

        // The next hold, confirmed: the removals are applied.
        sync(&store, &connection(), &source).await;
        let again = store.open_hold("north").await.unwrap().unwrap();
        let applied = answer_hold(
            &store,
            &connection(),
            again.id,
            answering(
                HoldAnswer::Removals(RemovalsAnswer::ConfirmRemovals),
                &again.digest,
                None,
            ),
        )
        .await
        .unwrap();
        assert!(matches!(applied, Answered::Applied { .. }));
        assert_eq!(stored_people(&store).await, 12);
        let row = store.hold(again.id).await.unwrap().unwrap();
        assert_eq!(
            (row.status, row.answer),
            (
                HoldStatus::Confirmed,
                Some(HoldAnswer::Removals(RemovalsAnswer::ConfirmRemovals))
            )
        );
        assert!(
            store.audit_log().await.unwrap().last().unwrap().detail.contains("answered \"Confirm removals\" without a comment, confirmed")
        );
    })
    .await;
}

/// Two pupils with contacts, and a first run that stores them; then an
/// emergency contact arrives for the second pupil with a new person.
async fn contacts_held(store: &Store) -> (Memory, rostersync_store::HoldRow) {
    let mut roster = school(2, 1, 0);
    let source = synced(store, roster.clone()).await;
    let mut extra = Person::new("C001-9", Role::Contact);
    extra.first_name = Some("=Eve".into());
    extra.last_name = Some("Ó Súilleabháin".into());
    roster.push(Record::Person(extra));
    roster.push(relationship(1, 9, ContactType::Emergency, 2));
    // And an unrelated change that goes ahead either way.
    roster.push(staff(0));
    source.serve(roster);
    let report = sync(store, &connection(), &source).await;
    assert_eq!(report.status, RunStatus::Held, "{:?}", report.holds);
    assert_eq!(
        report.held,
        ["2 new records held: 1 contact, 1 student–contact relationship"]
    );
    (source, store.open_hold("north").await.unwrap().unwrap())
}

#[tokio::test]
async fn a_contacts_hold_creates_the_accounts_or_leaves_the_contacts_out() {
    on_both_backends(|store, _| async move {
        let (source, hold) = contacts_held(&store).await;
        assert_eq!(hold.kind, HoldKind::Contacts);
        let shown = hold_summary(&store, hold.id).await.unwrap();
        let labels: Vec<&str> = shown.answers.iter().map(|a| a.label).collect();
        assert_eq!(labels, ["Create accounts", "Don't create"]);

        // The evidence is the held contact and relationship, not the
        // member of staff, and a leading = is neutralised.
        let rows = evidence_rows(&export_hold_csv(&store, hold.id, None).await.unwrap());
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(
            rows[0].starts_with("create,person,C001-9,'=Eve"),
            "{rows:?}"
        );
        assert!(
            rows[1].starts_with("create,relationship,P001 / C001-9,"),
            "{rows:?}"
        );

        let answered = answer_hold(
            &store,
            &connection(),
            hold.id,
            answering(
                HoldAnswer::Contacts(ContactsAnswer::DontCreate),
                &hold.digest,
                Some("not a contact we keep"),
            ),
        )
        .await
        .unwrap();
        assert!(matches!(answered, Answered::Applied { .. }));
        assert_eq!(
            stored(&store, EntityKind::Relationship).await,
            2,
            "left out"
        );
        assert_eq!(
            stored_people(&store).await,
            5,
            "the member of staff went ahead, the contact did not"
        );
        let row = store.hold(hold.id).await.unwrap().unwrap();
        assert_eq!(
            row.answer,
            Some(HoldAnswer::Contacts(ContactsAnswer::DontCreate))
        );
        let audit = store.audit_log().await.unwrap();
        assert!(
            audit
                .last()
                .unwrap()
                .detail
                .contains("2 held records left out"),
            "{}",
            audit.last().unwrap().detail
        );

        // Still arriving, but declined: left out again, each with the
        // reason, and not held again.
        let declined = sync(&store, &connection(), &source).await;
        assert_eq!(
            declined.status,
            RunStatus::SucceededWithIssues,
            "{:?}",
            declined.holds
        );
        assert!(store.open_hold("north").await.unwrap().is_none());
        assert_eq!(stored(&store, EntityKind::Relationship).await, 2);
        assert_eq!(stored_people(&store).await, 5);
        let issues = store.run_issues(declined.run_id).await.unwrap();
        let mut left_out: Vec<(&str, &str)> = issues
            .iter()
            .map(|i| (i.source_id.as_str(), i.policy.as_str()))
            .collect();
        left_out.sort();
        assert_eq!(
            left_out,
            [("C001-9", "declined"), ("P001 / C001-9", "declined")]
        );
        assert!(issues[0].message.contains("Don't create"), "{issues:?}");

        // Reconsidered, the contacts are asked about again; this time the
        // accounts are made.
        assert_eq!(reconsider_hold(&store, hold.id, "office").await.unwrap(), 1);
        let report = sync(&store, &connection(), &source).await;
        assert_eq!(report.status, RunStatus::Held);
        let again = store.open_hold("north").await.unwrap().unwrap();
        assert_eq!(again.kind, HoldKind::Contacts);
        answer_hold(
            &store,
            &connection(),
            again.id,
            answering(
                HoldAnswer::Contacts(ContactsAnswer::CreateAccounts),
                &again.digest,
                None,
            ),
        )
        .await
        .unwrap();
        assert_eq!(stored(&store, EntityKind::Relationship).await, 3);
        assert_eq!(stored_people(&store).await, 6);
        let next = sync(&store, &connection(), &source).await;
        assert_eq!(
            next.status,
            RunStatus::Succeeded,
            "accepted: {:?}",
            next.holds
        );
        let actions: Vec<String> = store
            .audit_log()
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.action)
            .collect();
        assert!(
            actions.contains(&"hold.reconsider".to_string()),
            "{actions:?}"
        );
    })
    .await;
}

/// Answers hold `hold` on the test connection, as the office.
async fn answer(
    store: &Store,
    hold: i64,
    answer: HoldAnswer,
    revision: &str,
    comment: Option<&str>,
) -> Result<Answered, SyncError> {
    answer_hold(
        store,
        &connection(),
        hold,
        answering(answer, revision, comment),
    )
    .await
}

/// A run that removes most of the staff and brings an emergency contact:
/// a hold of two parts, removals first.
async fn removals_and_contacts_held(store: &Store) -> (Memory, rostersync_store::HoldRow) {
    let mut roster = school(2, 1, 20);
    let source = synced(store, roster.clone()).await;
    roster.retain(
        |r| !matches!(r, Record::Person(p) if p.role == Role::Staff && p.id.as_str() >= "T005"),
    );
    let mut extra = Person::new("C001-9", Role::Contact);
    extra.first_name = Some("Eve".into());
    extra.last_name = Some("Ó Súilleabháin".into());
    roster.push(Record::Person(extra));
    roster.push(relationship(1, 9, ContactType::Emergency, 2));
    source.serve(roster);
    let report = sync(store, &connection(), &source).await;
    assert_eq!(report.status, RunStatus::Held, "{:?}", report.holds);
    let hold = store.open_hold("north").await.unwrap().unwrap();
    assert_eq!(hold.parts, [HoldKind::Removals, HoldKind::Contacts]);
    assert_eq!(
        hold.kind,
        HoldKind::Removals,
        "the most dangerous part first"
    );
    (source, hold)
}

#[tokio::test]
async fn a_hold_of_removals_and_contacts_is_answered_in_parts_each_with_its_own_answers() {
    on_both_backends(|store, _| async move {
        let (_source, hold) = removals_and_contacts_held(&store).await;
        let shown = hold_summary(&store, hold.id).await.unwrap();
        let labels: Vec<&str> = shown.answers.iter().map(|a| a.label).collect();
        assert_eq!(labels, ["Confirm removals", "Reject"]);
        assert!(matches!(
            answer(&store, hold.id, HoldAnswer::Contacts(ContactsAnswer::DontCreate), &hold.digest, None).await,
            Err(SyncError::Refused(Refusal::NotOffered { .. }))
        ), "the contacts part waits its turn");

        let first = answer(&store, hold.id, HoldAnswer::Removals(RemovalsAnswer::ConfirmRemovals), &hold.digest, Some("staff left at Easter")).await
        .unwrap();
        assert_eq!(first, Answered::Next { kind: HoldKind::Contacts });
        assert_eq!(stored_people(&store).await, 24, "nothing applied yet");
        let waiting = store.hold(hold.id).await.unwrap().unwrap();
        assert_eq!(
            (waiting.status, waiting.kind, waiting.answered_parts.as_slice()),
            (
                HoldStatus::Open,
                HoldKind::Contacts,
                &[HoldAnswer::Removals(RemovalsAnswer::ConfirmRemovals)][..]
            )
        );
        let labels: Vec<&str> = hold_summary(&store, hold.id)
            .await
            .unwrap()
            .answers
            .iter()
            .map(|a| a.label)
            .collect();
        assert_eq!(labels, ["Create accounts", "Don't create"]);

        let last = answer(&store, hold.id, HoldAnswer::Contacts(ContactsAnswer::DontCreate), &hold.digest, None).await
        .unwrap();
        assert!(matches!(last, Answered::Applied { .. }), "{last:?}");
        assert_eq!(
            stored_people(&store).await,
            2 + 2 + 5,
            "the 15 staff removed, the declined contact not created"
        );
        assert_eq!(stored(&store, EntityKind::Relationship).await, 2);
        let audit = store.audit_log().await.unwrap();
        let details: Vec<(&str, &str)> = audit
            .iter()
            .map(|a| (a.action.as_str(), a.detail.as_str()))
            .collect();
        assert!(
            details.iter().any(|(action, detail)| *action == "hold.part"
                && detail.contains("answered \"Confirm removals\" to part 1 of 2 with the comment \"staff left at Easter\"")),
            "{details:?}"
        );
        assert!(
            details.iter().any(|(action, detail)| *action == "hold.confirm"
                && detail.contains("answered \"Don't create\" to part 2 of 2")),
            "{details:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn rejecting_the_first_part_of_a_hold_applies_nothing_and_a_new_revision_starts_the_parts_again()
 {
    on_both_backends(|store, _| async move {
        let (source, hold) = removals_and_contacts_held(&store).await;
        answer(
            &store,
            hold.id,
            HoldAnswer::Removals(RemovalsAnswer::ConfirmRemovals),
            &hold.digest,
            None,
        )
        .await
        .unwrap();
        // A later run with another change set: the parts start again.
        let mut roster = source.state.lock().unwrap().records.clone();
        roster.push(staff(99));
        source.serve(roster);
        sync(&store, &connection(), &source).await;
        let revised = store.open_hold("north").await.unwrap().unwrap();
        assert_eq!(revised.revision, 2);
        assert_eq!(
            (revised.kind, revised.answered_parts.len()),
            (HoldKind::Removals, 0)
        );
        let rejected = answer(
            &store,
            hold.id,
            HoldAnswer::Removals(RemovalsAnswer::Reject),
            &revised.digest,
            None,
        )
        .await
        .unwrap();
        assert_eq!(rejected, Answered::Closed);
        assert_eq!(stored_people(&store).await, 24, "nothing applied");
        assert_eq!(
            store.hold(hold.id).await.unwrap().unwrap().status,
            HoldStatus::Rejected
        );
    })
    .await;
}

#[tokio::test]
async fn a_disconnected_hold_is_answered_i_fixed_it_and_the_next_run_goes_ahead() {
    on_both_backends(|store, _| async move {
        let source = Memory::default();
        source.serve(staff_range(0..9));
        sync(&store, &connection(), &source).await;
        source.fail_after(0, unreachable());
        for _ in 0..3 {
            sync(&store, &connection(), &source).await;
        }
        let hold = store.open_hold("north").await.unwrap().unwrap();
        assert_eq!(hold.kind, HoldKind::Disconnected);
        let shown = hold_summary(&store, hold.id).await.unwrap();
        let labels: Vec<&str> = shown.answers.iter().map(|a| a.label).collect();
        assert_eq!(labels, ["I fixed it"]);
        let checks = shown.checks.join(" ");
        for what in ["Credentials", "Allow-list", "Provider status"] {
            assert!(checks.contains(what), "{checks}");
        }
        assert!(evidence_rows(&export_hold_csv(&store, hold.id, None).await.unwrap()).is_empty());

        // The credentials work again, but the open hold still holds.
        source.serve(staff_range(0..10));
        let waiting = sync(&store, &connection(), &source).await;
        assert_eq!(waiting.status, RunStatus::Held);
        let current = store.open_hold("north").await.unwrap().unwrap();
        assert_eq!(
            current.kind,
            HoldKind::Disconnected,
            "a revision with no reason of its own keeps the type"
        );
        let wrong = answer_hold(
            &store,
            &connection(),
            hold.id,
            answering(
                HoldAnswer::Removals(RemovalsAnswer::ConfirmRemovals),
                &current.digest,
                None,
            ),
        )
        .await;
        assert!(
            matches!(wrong, Err(SyncError::Refused(Refusal::NotOffered { .. }))),
            "{wrong:?}"
        );

        let answered = answer_hold(
            &store,
            &connection(),
            hold.id,
            answering(
                HoldAnswer::Disconnected(DisconnectedAnswer::FixedIt),
                &current.digest,
                Some("rotated the API token"),
            ),
        )
        .await
        .unwrap();
        assert_eq!(answered, Answered::RunAgain);
        let row = store.hold(hold.id).await.unwrap().unwrap();
        assert_eq!(
            row.answer,
            Some(HoldAnswer::Disconnected(DisconnectedAnswer::FixedIt))
        );
        assert_eq!(row.comment.as_deref(), Some("rotated the API token"));
        let audit = store.audit_log().await.unwrap();
        assert_eq!(audit.last().unwrap().action, "hold.retry");
        let next = sync(&store, &connection(), &source).await;
        assert_eq!((next.status, next.created), (RunStatus::Succeeded, 1));
        assert!(store.open_hold("north").await.unwrap().is_none());
    })
    .await;
}
