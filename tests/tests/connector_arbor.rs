//! The Arbor connector, as a built component: replayed over responses
//! written from the shapes of Arbor's own PHP SDK (see
//! `connectors/arbor/tests/spec/README.md`), where every page is read and
//! every record is compared field by field with what those responses
//! hold, and a delta applies deletions and changes from the change log;
//! and against the provider sandbox over real HTTP: a full read is exactly
//! what the generator made, a change shows in the next full read, a delta
//! from the cursor a read hands back reports exactly what changed with
//! explicit removals, each provider fault (on the lists, the change log
//! or a changed record) ends as its typed error, and a host off the
//! allow-list is never reached.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::NaiveDate;
use rostersync_core::entity::{EntityKey, identity};
use rostersync_model::{
    ContactType, EnrolmentStatus, EntityKind, Group, GroupKind, MemberRole, Mode, Person, Record,
    Relationship, Removal, Role, Settings, SyncError,
};
use rostersync_runtime::{RunError, Violation};
use rostersync_sandbox::{Fault, FaultKind, Mutation, Provider, Size, expected};
use rostersync_tests::providers::{
    Bench, Connection, Read, assert_same_records, bench_sized, key, member,
};
use rostersync_tests::replay::Replay;

/// The sandbox school size these tests need: every kind of record, and
/// few enough that reading each record from its own URL is quick.
async fn bench() -> Bench {
    bench_sized(
        "arbor",
        Size {
            schools: 2,
            pupils_per_school: 30,
        },
    )
    .await
}

fn connection(bench: &Bench) -> Connection {
    bench.sandbox_connection(0)
}

async fn spec(phase: &str) -> Replay {
    Replay::load(
        "arbor",
        &Path::new("connectors/arbor/tests/spec").join(format!("{phase}.json")),
        Settings::new()
            .with("base-url", "https://api-sandbox2.uk.arbor.sc/rest-v2")
            .with("username", "rostersync")
            .with("password", "redacted-secret")
            .with("page-size", "2"),
    )
    .await
}

/// Every batch of a snapshot, and its cursor.
async fn replayed(replay: &Replay, mode: Mode) -> Read {
    let mut snapshot = replay.open(mode).await.expect("the snapshot opens");
    let mut read = Read::default();
    while let Some(batch) = snapshot.next_batch().await.expect("a batch") {
        read.records.extend(batch);
    }
    read.cursor = snapshot.cursor().await.expect("a cursor call");
    assert!(replay.unused().is_empty(), "{:?}", replay.unused());
    read
}

fn date(text: &str) -> Option<NaiveDate> {
    Some(text.parse().expect("a date"))
}

fn some(text: &str) -> Option<String> {
    Some(text.to_string())
}

/// A pupil as `full.json` holds them: `studentNumber`, the `Person`'s
/// names and birth date, the latest `SchoolEnrolment.startDate`, the
/// `AcademicLevel` of the latest `AcademicLevelMembership`, the form of
/// the `RegistrationFormMembership`, and the email the person owns.
struct Pupil<'a> {
    id: &'a str,
    number: &'a str,
    names: (&'a str, Option<&'a str>, Option<&'a str>, &'a str),
    email: Option<&'a str>,
    born: &'a str,
    started: Option<&'a str>,
    year: &'a str,
    form: Option<&'a str>,
}

fn pupil(p: Pupil) -> Record {
    let (first, preferred, middle, last) = p.names;
    Record::Person(Person {
        mis_id: some(p.number),
        first_name: some(first),
        preferred_first_name: preferred.map(str::to_string),
        middle_names: middle.map(str::to_string),
        last_name: some(last),
        email: p.email.map(str::to_string),
        date_of_birth: date(p.born),
        start_date: p.started.and_then(date),
        enrolment: Some(EnrolmentStatus::OnRoll),
        year_group: some(p.year),
        registration_group: p.form.map(str::to_string),
        ..Person::new(p.id, Role::Student)
    })
}

fn zoe(last: &str, email: Option<&str>) -> Record {
    pupil(Pupil {
        id: "102",
        number: "S0102",
        names: ("Zoë", Some("Zoë"), None, last),
        email,
        born: "2013-11-20",
        started: Some("2024-09-02"),
        year: "Year 7",
        form: Some("7 Red"),
    })
}

#[tokio::test]
async fn a_full_read_of_spec_responses_reads_every_page_and_maps_every_field() {
    let replay = spec("full").await;
    let read = replayed(&replay, Mode::Full).await;
    let expected = vec![
        Record::Group(Group {
            id: "11".into(),
            kind: GroupKind::Registration,
            name: some("7 Red"),
            code: some("7R"),
            subject: None,
            year_group: None,
            active: true,
            parent: None,
        }),
        Record::Group(Group {
            id: "21".into(),
            kind: GroupKind::Class,
            name: some("Mathematics 7A"),
            code: some("7A/Ma"),
            subject: some("Mathematics"),
            year_group: some("Year 7"),
            active: true,
            parent: None,
        }),
        // Two school enrolments: the later start wins; two level
        // memberships: the later one's level wins.
        pupil(Pupil {
            id: "101",
            number: "S0101",
            names: ("Amara", Some("Amy"), Some("Grace"), "Okafor"),
            email: Some("amy.okafor@pupils.example"),
            born: "2014-03-02",
            started: Some("2025-09-03"),
            year: "Year 7",
            form: Some("7 Red"),
        }),
        // An embedded person, with the SDK's date object.
        zoe("O'Brien-Smith", None),
        pupil(Pupil {
            id: "103",
            number: "S0103",
            names: ("Oliver", Some("Oliver"), None, "Kowalski"),
            email: None,
            born: "2014-07-15",
            started: Some("2022-09-05"),
            year: "Year 7",
            form: None,
        }),
        Record::Person(Person {
            mis_id: some("T201"),
            salutation: some("Ms"),
            first_name: some("Helen"),
            preferred_first_name: some("Helen"),
            last_name: some("Evans"),
            email: some("h.evans@school.example"),
            date_of_birth: date("1980-05-05"),
            ..Person::new("201", Role::Staff)
        }),
        // An email address owned by the guardian rather than the person.
        Record::Person(Person {
            mis_id: some("G301"),
            salutation: some("Mr"),
            first_name: some("Chidi"),
            preferred_first_name: some("Chidi"),
            last_name: some("Okafor"),
            email: some("chidi@example.com"),
            ..Person::new("301", Role::Contact)
        }),
        member("11", "101", MemberRole::Student),
        member("11", "102", MemberRole::Student),
        member("21", "101", MemberRole::Student),
        member("21", "103", MemberRole::Student),
        member("21", "201", MemberRole::Teacher),
        Record::Relationship(Relationship {
            student: "101".into(),
            contact: "301".into(),
            contact_type: ContactType::Primary,
            relationship: some("Father"),
            priority: Some(1),
            parental_responsibility: true,
        }),
    ];
    assert_same_records(&read.records, &expected);
    assert!(read.removals().is_empty());
    let cursor: serde_json::Value =
        serde_json::from_str(read.cursor.as_deref().expect("a cursor")).unwrap();
    assert_eq!(cursor["version"], 2, "{cursor}");
    // The highest `toRevision` of each change log.
    assert_eq!(cursor["revisions"]["student"], 62, "{cursor}");
    assert_eq!(cursor["revisions"]["academic-unit-lead"], 67, "{cursor}");
}

#[tokio::test]
async fn a_delta_of_spec_responses_applies_deletions_and_changes() {
    let full = replayed(&spec("full").await, Mode::Full).await;
    let cursor = full.cursor.expect("a cursor");
    let delta = replayed(&spec("delta").await, Mode::Delta(cursor)).await;
    // The deleted pupil goes with their class enrolment (whose own
    // deletion is then no news); the renamed pupil is read again whole,
    // with the email address created for them; the new enrolment comes in.
    let removals: BTreeSet<_> = delta.removals().into_iter().collect();
    assert_eq!(
        removals,
        BTreeSet::from([
            (EntityKind::Person, "103".to_string()),
            (EntityKind::Membership, key("21", "103")),
        ])
    );
    assert_eq!(delta.removals().len(), 2, "no removal is sent twice");
    let records: Vec<Record> = delta
        .records
        .iter()
        .filter(|r| !matches!(r, Record::Removed(_)))
        .cloned()
        .collect();
    assert_same_records(
        &records,
        &[
            zoe("O'Brien", Some("zoe@pupils.example")),
            member("21", "102", MemberRole::Student),
        ],
    );
    assert!(matches!(
        delta.records.first(),
        Some(Record::Removed(Removal::Person(id))) if id == "103"
    ));
    let cursor: serde_json::Value =
        serde_json::from_str(delta.cursor.as_deref().expect("a cursor")).unwrap();
    assert_eq!(cursor["revisions"]["student"], 71, "{cursor}");
    assert_eq!(
        cursor["revisions"]["academic-unit-enrolment"], 72,
        "{cursor}"
    );
    assert_eq!(cursor["revisions"]["registration-form"], 40, "{cursor}");
}

async fn full_read(bench: &Bench) -> Read {
    bench.full_read(&connection(bench)).await
}

async fn failure(bench: &Bench) -> SyncError {
    bench.failure(&connection(bench)).await
}

async fn delta_read(bench: &Bench, cursor: &str) -> Read {
    bench
        .read(&connection(bench), Mode::Delta(cursor.to_string()))
        .await
        .expect("a delta read")
}

/// The connector's typed error a delta from `cursor` must end with.
async fn delta_failure(bench: &Bench, cursor: &str) -> SyncError {
    match bench
        .read(&connection(bench), Mode::Delta(cursor.to_string()))
        .await
    {
        Err(RunError::Connector { error, .. }) => error,
        Err(other) => panic!("expected a connector error, got {other}"),
        Ok(read) => panic!("expected a failure, read {} records", read.records.len()),
    }
}

/// The cursor a full read of school 0 hands back.
async fn full_cursor(bench: &Bench) -> String {
    full_read(bench)
        .await
        .cursor
        .expect("a full read hands back a cursor")
}

fn person(read: &Read, uid: u64) -> &rostersync_model::Person {
    match read.find(EntityKind::Person, &uid.to_string()) {
        Some(Record::Person(person)) => person,
        other => panic!("no person {uid} in the read: {other:?}"),
    }
}

/// Names an error by its kind, after checking its message names `path`.
fn kind_naming(error: &SyncError, path: &str) -> &'static str {
    match error {
        SyncError::Unavailable(m) | SyncError::BadResponse(m) => {
            assert!(m.contains(path), "{error:?} does not name {path}");
            if matches!(error, SyncError::Unavailable(_)) {
                "unavailable"
            } else {
                "bad response"
            }
        }
        SyncError::Unauthorized(_) => "unauthorized",
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_full_read_is_exactly_what_the_school_holds() {
    let bench = bench().await;
    let read = full_read(&bench).await;
    let world = bench.sandbox.world();
    let expected = expected::arbor(&world, 0);
    for kind in EntityKind::ALL {
        assert!(
            expected::counts(&expected)[&kind] > 0,
            "the sandbox has {kind} records"
        );
    }
    assert_same_records(&read.records, &expected);
    assert!(
        read.removals().is_empty(),
        "a full read reports no removals"
    );
    let cursor: serde_json::Value = serde_json::from_str(
        read.cursor
            .as_deref()
            .expect("a full read hands back a cursor"),
    )
    .expect("the cursor is JSON");
    assert_eq!(cursor["version"], 2, "{cursor}");
    let students = world.schools[0]
        .students
        .values()
        .map(|s| s.stamp.updated_rev)
        .max();
    assert_eq!(
        cursor["revisions"]["student"].as_u64(),
        students,
        "{cursor}"
    );
    let accented = world.schools[0]
        .live_students()
        .find(|s| !s.surname.is_ascii() && s.status == EnrolmentStatus::OnRoll)
        .expect("an accented pupil on roll");
    let Some(Record::Person(pupil)) = read.find(EntityKind::Person, &accented.uid.to_string())
    else {
        panic!("the accented pupil was read");
    };
    assert_eq!(pupil.last_name.as_deref(), Some(accented.surname.as_str()));
}

#[tokio::test]
async fn check_reaches_the_school_and_a_wrong_password_is_unauthorized() {
    let bench = bench().await;
    let school = bench
        .check(&connection(&bench))
        .await
        .expect("check succeeds");
    assert!(school.id.ends_with("/rest-v2"), "{}", school.id);
    let mut wrong = connection(&bench);
    wrong.settings = wrong.settings.with("password", "wrong");
    assert!(matches!(
        bench.check(&wrong).await,
        Err(RunError::Connector {
            error: SyncError::Unauthorized(_),
            ..
        })
    ));
}

#[tokio::test]
async fn changes_show_in_the_next_full_read() {
    let bench = bench().await;
    let removed = bench
        .sandbox
        .mutate(0, Mutation::RemovePupil { pupil: None })
        .unwrap()
        .pupil;
    bench.sandbox.mutate(0, Mutation::AddPupil).unwrap();
    bench
        .sandbox
        .mutate(0, Mutation::MovePupil { pupil: None })
        .unwrap();
    let after = full_read(&bench).await;
    assert_same_records(&after.records, &expected::arbor(&bench.sandbox.world(), 0));
    assert!(
        after
            .find(EntityKind::Person, &removed.to_string())
            .is_none()
    );
}

#[tokio::test]
async fn provider_faults_end_as_typed_errors() {
    let cases = [
        (FaultKind::ServerError { status: 503 }, "unavailable"),
        (FaultKind::WrongJson, "bad response"),
        (FaultKind::TruncatedBody, "bad response"),
        (FaultKind::RevokeCredentials, "unauthorized"),
    ];
    for (fault, want) in cases {
        let bench = bench().await;
        bench
            .sandbox
            .inject_fault(Fault::new(Provider::Arbor, "/Guardians", fault.clone()));
        let error = failure(&bench).await;
        let got = kind_naming(&error, "/Guardians");
        assert_eq!(got, want, "{fault:?}");
    }
}

#[tokio::test]
async fn a_host_off_the_allow_list_is_refused() {
    let bench = bench().await;
    let error = bench
        .read_outside_allow_list(&connection(&bench))
        .await
        .expect_err("the sandbox base URL is not allowed");
    assert!(
        matches!(&error, RunError::Outbound { violation: Violation::HostNotAllowed { url, .. }, .. } if url.contains("/rest-v2/registration-forms/changelog")),
        "{error}"
    );
}

#[tokio::test]
async fn a_delta_reports_added_edited_removed_and_moved_pupils() {
    let bench = bench().await;
    let cursor = full_cursor(&bench).await;
    let changes = bench.change_pupils(|s| s.status == EnrolmentStatus::OnRoll, 0);
    let school = &changes.after.schools[0];
    let delta = delta_read(&bench, &cursor).await;

    // What Arbor's changelog lists for these changes: the pupils changed
    // (a move touches the pupil too), the new pupil's contact and link,
    // every group whose members changed, and each membership row of a
    // changed pupil or group. Groups Arbor does not serve (year, house)
    // are no part of it.
    let pupils: BTreeSet<String> = [changes.added.pupil, changes.edited, changes.moved]
        .iter()
        .map(u64::to_string)
        .collect();
    let mut people = pupils.clone();
    people.extend(
        school
            .contacts_of(changes.added.pupil)
            .iter()
            .map(|(c, _)| c.uid.to_string()),
    );
    let in_arbor = |group: &u64| {
        matches!(
            school.groups[group].kind,
            GroupKind::Class | GroupKind::Registration
        )
    };
    let groups: BTreeSet<String> = [
        &changes.added.groups,
        &changes.removal.groups,
        &changes.move_.groups,
    ]
    .into_iter()
    .flatten()
    .filter(|g| in_arbor(g))
    .map(u64::to_string)
    .collect();
    let changed = |record: &Record| match record {
        Record::Person(p) => people.contains(&p.id),
        Record::Group(g) => groups.contains(&g.id),
        Record::Membership(m) => groups.contains(&m.group) || pupils.contains(&m.person),
        Record::Relationship(r) => r.student == changes.added.pupil.to_string(),
        Record::Removed(_) => false,
    };
    let now = expected::arbor(&changes.after, 0);
    let want: BTreeSet<(EntityKind, EntityKey)> = now
        .iter()
        .filter(|r| changed(r))
        .filter_map(identity)
        .collect();
    let records: Vec<&Record> = delta
        .records
        .iter()
        .filter(|r| !matches!(r, Record::Removed(_)))
        .collect();
    let got: BTreeSet<(EntityKind, EntityKey)> =
        records.iter().filter_map(|r| identity(r)).collect();
    assert_eq!(got.len(), records.len(), "no record is sent twice");
    assert_eq!(got, want, "exactly the changed records are read again");
    for record in records {
        assert!(now.contains(record), "stale or wrong: {record:?}");
    }

    let new_pupil = person(&delta, changes.added.pupil);
    assert_eq!(new_pupil.role, Role::Student);
    assert_eq!(new_pupil.enrolment, Some(EnrolmentStatus::OnRoll));
    assert!(new_pupil.registration_group.is_some(), "{new_pupil:?}");
    let renamed = &school.students[&changes.edited];
    let got = person(&delta, changes.edited);
    assert_eq!(got.last_name.as_deref(), Some(renamed.surname.as_str()));
    assert_ne!(
        got.last_name.as_deref(),
        Some(
            changes.before.schools[0].students[&changes.edited]
                .surname
                .as_str()
        )
    );
    assert_eq!(
        got.registration_group,
        school
            .group(renamed.registration)
            .and_then(|g| g.name.clone()),
        "a changed pupil in an unchanged form still has its form's name"
    );
    let (from, to) = (changes.move_.groups[0], changes.move_.groups[1]);
    assert!(
        delta
            .find(
                EntityKind::Membership,
                &key(&to.to_string(), &changes.moved.to_string())
            )
            .is_some(),
        "the moved pupil's new class"
    );

    let removals: BTreeSet<(EntityKind, EntityKey)> = delta.removals().into_iter().collect();
    let mut want_removals = BTreeSet::from([
        (EntityKind::Person, changes.removed.to_string()),
        (
            EntityKind::Membership,
            key(&from.to_string(), &changes.moved.to_string()),
        ),
    ]);
    for group in changes.removal.groups.iter().filter(|g| in_arbor(g)) {
        want_removals.insert((
            EntityKind::Membership,
            key(&group.to_string(), &changes.removed.to_string()),
        ));
    }
    for contact in &changes.removed_contacts {
        want_removals.insert((
            EntityKind::Relationship,
            key(&changes.removed.to_string(), &contact.to_string()),
        ));
        if !school.contacts[contact].stamp.live() {
            want_removals.insert((EntityKind::Person, contact.to_string()));
        }
    }
    assert_eq!(removals, want_removals);
    assert_eq!(
        removals.len(),
        delta.removals().len(),
        "no removal is sent twice"
    );

    // The delta's cursor resumes after these changes: nothing new since.
    let again = delta_read(&bench, &delta.cursor.expect("a delta hands back a cursor")).await;
    assert!(again.records.is_empty(), "{:?}", again.records);
}

#[tokio::test]
async fn a_delta_with_nothing_changed_yields_no_records() {
    let bench = bench().await;
    let cursor = full_cursor(&bench).await;
    let read = delta_read(&bench, &cursor).await;
    assert!(read.records.is_empty(), "{:?}", read.records);
    assert_eq!(read.cursor.as_deref(), Some(cursor.as_str()));
}

#[tokio::test]
async fn a_change_made_during_a_full_read_is_in_the_next_delta() {
    let bench = bench().await;
    let connection = connection(&bench);
    let mut snapshot = bench.open(&connection, Mode::Full).await.unwrap();
    let pupil = |record: &Record| matches!(record, Record::Person(p) if p.role == Role::Student);
    // Read until the pupils are in, then change one already read.
    while !snapshot
        .next_batch()
        .await
        .unwrap()
        .expect("the pupils come before the end")
        .iter()
        .any(pupil)
    {}
    let edited = bench
        .sandbox
        .mutate(0, Mutation::EditPupil { pupil: None })
        .unwrap()
        .pupil;
    while snapshot.next_batch().await.unwrap().is_some() {}
    let cursor = snapshot.cursor().await.unwrap().expect("a cursor");

    let read = delta_read(&bench, &cursor).await;
    let surname = &bench.sandbox.world().schools[0].students[&edited].surname;
    assert_eq!(
        person(&read, edited).last_name.as_deref(),
        Some(surname.as_str())
    );
}

#[tokio::test]
async fn changelog_faults_end_a_read_as_typed_errors() {
    let bench = bench().await;
    let cursor = full_cursor(&bench).await;
    bench
        .sandbox
        .mutate(0, Mutation::EditPupil { pupil: None })
        .unwrap();
    let cases = [
        (FaultKind::ServerError { status: 503 }, "unavailable"),
        (FaultKind::WrongJson, "bad response"),
        (FaultKind::TruncatedBody, "bad response"),
        (FaultKind::RevokeCredentials, "unauthorized"),
    ];
    for (fault, want) in cases {
        bench
            .sandbox
            .inject_fault(Fault::new(Provider::Arbor, "/changelog", fault.clone()));
        let error = delta_failure(&bench, &cursor).await;
        assert_eq!(kind_naming(&error, "/changelog"), want, "{fault:?}");
        bench.sandbox.clear_faults();
        bench.sandbox.restore_credentials(Provider::Arbor, 0);
    }
    // A full read asks the change log for its revision before it starts.
    bench.sandbox.inject_fault(Fault::new(
        Provider::Arbor,
        "/students/changelog",
        FaultKind::ServerError { status: 503 },
    ));
    assert_eq!(
        kind_naming(&failure(&bench).await, "/students/changelog"),
        "unavailable"
    );
}

#[tokio::test]
async fn a_changed_record_that_cannot_be_read_fails_the_whole_delta() {
    let bench = bench().await;
    let cursor = full_cursor(&bench).await;
    let edited = bench
        .sandbox
        .mutate(0, Mutation::EditPupil { pupil: None })
        .unwrap()
        .pupil;
    let path = format!("/students/{edited}");
    bench.sandbox.inject_fault(Fault::new(
        Provider::Arbor,
        &path,
        FaultKind::ServerError { status: 503 },
    ));
    assert_eq!(
        kind_naming(&delta_failure(&bench, &cursor).await, &path),
        "unavailable"
    );
    bench.sandbox.clear_faults();
    bench
        .sandbox
        .inject_fault(Fault::new(Provider::Arbor, &path, FaultKind::WrongJson));
    let error = delta_failure(&bench, &cursor).await;
    assert!(
        matches!(&error, SyncError::BadResponse(m) if m.ends_with("the response has no \"student\" record")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_cursor_not_for_this_school_or_connector_is_bad_settings() {
    let bench = bench().await;
    let other = bench
        .read(&bench.sandbox_connection(1), Mode::Full)
        .await
        .expect("a full read of school 1")
        .cursor
        .expect("a cursor");
    for (cursor, says) in [
        (other.as_str(), "was taken from"),
        ("2026-09-01T07:31:00Z", "not written by this connector"),
        (r#"{"version":1}"#, "format version 1"),
    ] {
        let SyncError::BadSettings(message) = delta_failure(&bench, cursor).await else {
            panic!("expected bad settings for {cursor:?}");
        };
        assert!(message.contains(says), "{message}");
        assert!(message.ends_with("run a full read"), "{message}");
    }
}
