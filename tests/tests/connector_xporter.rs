//! The Groupcall Xporter connector, as a built component: replayed over
//! real responses recorded from Xporter (see
//! `connectors/xporter/tests/recorded/README.md`), where every record is
//! compared field by field with what the recording holds; and against the
//! provider sandbox over real HTTP: a full read is exactly what the
//! generator made, check names the school, a delta after changes reports
//! them with explicit removals, each provider fault ends as its typed
//! error, and a host off the allow-list is never reached.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rostersync_model::{
    EnrolmentStatus, EntityKind, MemberRole, Mode, Person, Record, Removal, Role, Settings,
    SyncError,
};
use rostersync_runtime::{RunError, Violation};
use rostersync_sandbox::{Fault, FaultKind, Provider, expected};
use rostersync_tests::providers::{Bench, Connection, Read, assert_same_records, bench, key};
use rostersync_tests::replay::Replay;

fn connection(bench: &Bench, school: usize) -> Connection {
    Connection::new(bench.sandbox.connector_settings("xporter", school))
}

/// The settings the recording was made with: Groupcall's API root, the STS
/// the recording client posted to, and its establishment and relying party.
fn recorded_settings() -> Settings {
    Settings::new()
        .with("base-url", "https://xporter.groupcall.com/api")
        .with(
            "token-url",
            "https://login.groupcall.com/idaas/sts/STS/GetToken",
        )
        .with("estab", "3281101")
        .with("relying-party", "relying-party.com")
        .with("secret", "redacted-secret")
}

async fn recorded(phase: &str) -> Replay {
    Replay::load(
        "xporter",
        &Path::new("connectors/xporter/tests/recorded").join(format!("{phase}.json")),
        recorded_settings(),
    )
    .await
}

fn date(text: &str) -> Option<NaiveDate> {
    Some(text.parse().expect("a date"))
}

/// A recorded pupil as the cassette holds them: `Id`, `AdmissionNo`,
/// `Forename` (also `LegalForename`), `Surname`, `DateofBirth`,
/// `EntryDate`, `YearGroup` (two spaces there, one here) and `RegGroup`,
/// on roll; no email, middle name or leaving date.
fn recorded_pupil(
    id: &str,
    admission_no: &str,
    (forename, surname): (&str, &str),
    (born, entered): (&str, &str),
    (year, registration): (&str, &str),
) -> Record {
    Record::Person(Person {
        mis_id: Some(admission_no.into()),
        first_name: Some(forename.into()),
        preferred_first_name: Some(forename.into()),
        last_name: Some(surname.into()),
        date_of_birth: date(born),
        start_date: date(entered),
        enrolment: Some(EnrolmentStatus::OnRoll),
        year_group: Some(year.into()),
        registration_group: Some(registration.into()),
        ..Person::new(id, Role::Student)
    })
}

/// A recorded member of staff: `Id`, `StaffCode`, `Title`, `Forename`
/// (also `LegalForename`), `Surname`, `DateOfBirth`, `EmploymentStart`.
fn recorded_staff(
    id: &str,
    staff_code: Option<&str>,
    (forename, surname): (&str, &str),
    (born, started): (&str, &str),
) -> Record {
    Record::Person(Person {
        mis_id: staff_code.map(Into::into),
        salutation: Some("Mrs".into()),
        first_name: Some(forename.into()),
        preferred_first_name: Some(forename.into()),
        last_name: Some(surname.into()),
        date_of_birth: date(born),
        start_date: date(started),
        ..Person::new(id, Role::Staff)
    })
}

#[tokio::test]
async fn recorded_check_accepts_the_singular_scopes_from_the_sts() {
    let replay = recorded("check").await;
    let info = replay.check().await.expect("check passes on the recording");
    assert_eq!(info.id, "3281101");
    assert_eq!(info.name, "DfE establishment 3281101");
    assert!(replay.unused().is_empty(), "{:?}", replay.unused());
}

#[tokio::test]
async fn a_recorded_full_read_reads_every_page_and_maps_every_field() {
    let replay = recorded("full").await;
    let mut snapshot = replay.open(Mode::Full).await.expect("the snapshot opens");
    let mut records = Vec::new();
    let error = loop {
        match snapshot.next_batch().await {
            Ok(Some(batch)) => records.extend(batch),
            Ok(None) => panic!("the recording holds staff page 1 of 20 only"),
            Err(error) => break error,
        }
    };
    // Staff page 1 says `"PageCount":20`: the next request is page 2.
    let RunError::Outbound {
        violation: Violation::Unrecorded(request),
        ..
    } = &error
    else {
        panic!("expected the unrecorded staff page 2, got {error}");
    };
    assert_eq!(
        request,
        "GET https://xporter.groupcall.com/api/v1/School/3281101/Staff?changedRows=%2A&pageSize=100&page=2"
    );
    assert!(replay.unused().is_empty(), "{:?}", replay.unused());
    assert_same_records(
        &records,
        &[
            recorded_pupil(
                "3116",
                "001275",
                ("Albus", "Dumbledore"),
                ("2009-01-12", "2012-09-01"),
                ("Year 4", "4ES"),
            ),
            recorded_pupil(
                "3217",
                "001336",
                ("Harry", "Potter"),
                ("2009-11-20", "2013-09-01"),
                ("Year 3", "3TO"),
            ),
            recorded_pupil(
                "3221",
                "001337",
                ("Hermione", "Potter"),
                ("2009-11-20", "2013-09-01"),
                ("Year 3", "3TO"),
            ),
            recorded_pupil(
                "3920",
                "001582",
                ("Draco", "Potter"),
                ("2013-12-17", "2016-09-01"),
                ("Year N2", "AM"),
            ),
            recorded_staff(
                "2",
                Some("RL"),
                ("Rebecca", "Lorrin"),
                ("1956-10-16", "1988-04-01"),
            ),
            recorded_staff(
                "3",
                None,
                ("Valerie", "Cloves"),
                ("1959-07-12", "2011-09-01"),
            ),
        ],
    );
}

#[tokio::test]
async fn a_recorded_changeset_removes_the_deleted_rows() {
    let replay = recorded("delta").await;
    // The cursor a full read leaves: each table's `NextChangedRows`.
    let cursor = serde_json::json!({
        "estab": "3281101",
        "changed_rows": {"Students": "0414025e3f87151229b8964169a480e5", "Staff": "s",
            "Contacts": "c", "Groups": "g"},
        "links": {"groups": {}, "contacts": {}},
    });
    let mut snapshot = replay
        .open(Mode::Delta(cursor.to_string()))
        .await
        .expect("the snapshot opens");
    let batch = snapshot
        .next_batch()
        .await
        .expect("the recorded Students changeset is read")
        .expect("a batch");
    assert_eq!(
        batch,
        [
            Record::Person(Person::new("3116", Role::Student)),
            Record::Person(Person::new("3217", Role::Student)),
            Record::Removed(Removal::Person("3221".into())),
            Record::Removed(Removal::Person("3920".into())),
        ]
    );
    assert!(replay.unused().is_empty(), "{:?}", replay.unused());
}

async fn full_read(bench: &Bench) -> Read {
    bench
        .read(&connection(bench, 0), Mode::Full)
        .await
        .expect("a full read")
}

/// The typed error a full read of school 0 ends with.
async fn failure(bench: &Bench) -> SyncError {
    match bench.read(&connection(bench, 0), Mode::Full).await {
        Err(RunError::Connector { connector, error }) => {
            assert_eq!(connector, "xporter");
            error
        }
        Err(other) => panic!("expected a connector error, got {other}"),
        Ok(read) => panic!("expected a failure, read {} records", read.records.len()),
    }
}

fn person(read: &Read, id: u64) -> &rostersync_model::Person {
    match read.find(EntityKind::Person, &id.to_string()) {
        Some(Record::Person(person)) => person,
        other => panic!("no person {id} in the read: {other:?}"),
    }
}

#[tokio::test]
async fn a_full_read_is_exactly_what_the_school_holds() {
    let bench = bench("xporter").await;
    let read = full_read(&bench).await;
    let world = bench.sandbox.world();
    let expected = expected::xporter(&world, 0);

    let want = expected::counts(&expected);
    assert_eq!(read.counts(), want);
    for kind in EntityKind::ALL {
        assert!(want[&kind] > 0, "the sandbox has {kind} records");
    }
    assert_same_records(&read.records, &expected);
    assert!(
        read.removals().is_empty(),
        "a full read reports no removals"
    );
    assert!(read.cursor.is_some(), "a full read hands back a cursor");

    let school = &world.schools[0];
    let accented = school
        .live_students()
        .find(|s| !s.surname.is_ascii() && !s.forename.is_ascii())
        .expect("the sandbox has pupils with accented names");
    let got = person(&read, accented.uid);
    assert_eq!(got.first_name.as_deref(), Some(accented.forename.as_str()));
    assert_eq!(got.last_name.as_deref(), Some(accented.surname.as_str()));

    let applicant = school
        .live_students()
        .find(|s| s.status == EnrolmentStatus::Prospective)
        .expect("an applicant");
    let got = person(&read, applicant.uid);
    assert_eq!(got.enrolment, Some(EnrolmentStatus::Prospective));
    let admission = got.admission.as_ref().expect("an applicant's admission");
    assert_eq!(
        admission.intake_group.as_deref(),
        Some("Year 7 Sept 2027"),
        "{got:?}"
    );
    let leaver = school
        .live_students()
        .find(|s| s.status == EnrolmentStatus::Left)
        .expect("a leaver");
    assert_eq!(person(&read, leaver.uid).leaving_date, leaver.leaving_date);

    let unnamed = school
        .live_groups()
        .find(|g| g.name.is_none())
        .expect("an unnamed class");
    let Some(Record::Group(group)) = read.find(EntityKind::Group, &unnamed.uid.to_string()) else {
        panic!("the unnamed class is read");
    };
    assert_eq!(group.name, None);
    assert_eq!(group.code.as_deref(), Some(unnamed.code.as_str()));
}

#[tokio::test]
async fn check_names_the_school_and_refuses_a_wrong_secret() {
    let bench = bench("xporter").await;
    let estab = bench.sandbox.credentials(1).xporter_estab;
    let info = bench
        .check(&connection(&bench, 1))
        .await
        .expect("check succeeds");
    assert_eq!(info.id, estab);
    assert_eq!(info.name, format!("DfE establishment {estab}"));

    let mut wrong = connection(&bench, 1);
    wrong.settings.set("secret", "not-the-secret");
    let error = bench.check(&wrong).await.expect_err("a wrong secret");
    let RunError::Connector {
        error: SyncError::Unauthorized(message),
        ..
    } = &error
    else {
        panic!("expected unauthorized, got {error}");
    };
    assert!(
        message.contains("/idaas/sts/STS/GetToken answered HTTP 401"),
        "{message}"
    );

    // Groupcall's documented token endpoint answers the same credentials.
    let mut documented = connection(&bench, 1);
    documented.settings.set(
        "token-url",
        format!(
            "{}/oauth/GetToken",
            bench.sandbox.base_url(Provider::Xporter, 1)
        ),
    );
    let info = bench.check(&documented).await.expect("check succeeds");
    assert_eq!(info.id, estab);
}

#[tokio::test]
async fn a_delta_reports_added_edited_removed_and_moved_pupils() {
    let bench = bench("xporter").await;
    let full = full_read(&bench).await;
    let changes = bench.change_pupils(|s| s.status == EnrolmentStatus::OnRoll, 0);

    let cursor = full.cursor.clone().expect("a cursor");
    let delta = bench
        .read(&connection(&bench, 0), Mode::Delta(cursor))
        .await
        .expect("a delta read");

    // Every record the delta carries is the current truth.
    let now = expected::xporter(&changes.after, 0);
    for record in delta
        .records
        .iter()
        .filter(|r| !matches!(r, Record::Removed(_)))
    {
        assert!(
            now.contains(record),
            "stale or wrong record in the delta: {record:?}"
        );
    }
    let people: BTreeSet<String> = delta
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Person(p) => Some(p.id.clone()),
            _ => None,
        })
        .collect();
    let mut want_people: BTreeSet<String> = [changes.added.pupil, changes.edited, changes.moved]
        .iter()
        .map(u64::to_string)
        .collect();
    want_people.extend(
        changes.after.schools[0]
            .contacts_of(changes.added.pupil)
            .iter()
            .map(|(c, _)| c.uid.to_string()),
    );
    assert_eq!(people, want_people, "only changed people are read again");

    let new_pupil = person(&delta, changes.added.pupil);
    assert_eq!(new_pupil.role, Role::Student);
    assert_eq!(new_pupil.enrolment, Some(EnrolmentStatus::OnRoll));
    assert_eq!(new_pupil.year_group.as_deref(), Some("Year 7"));
    for group in &changes.added.groups {
        assert!(
            delta
                .find(
                    EntityKind::Membership,
                    &key(&group.to_string(), &changes.added.pupil.to_string())
                )
                .is_some(),
            "the new pupil's membership of {group}"
        );
    }

    let renamed = &changes.after.schools[0].students[&changes.edited];
    let got = person(&delta, changes.edited);
    assert_eq!(got.last_name.as_deref(), Some(renamed.surname.as_str()));
    assert_eq!(got.email, renamed.email);
    assert_ne!(
        got.last_name.as_deref(),
        Some(
            changes.before.schools[0].students[&changes.edited]
                .surname
                .as_str()
        )
    );

    let removals: BTreeSet<(EntityKind, String)> = delta.removals().into_iter().collect();
    let mut want_removals = BTreeSet::from([(EntityKind::Person, changes.removed.to_string())]);
    for group in &changes.removal.groups {
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
        if !changes.after.schools[0].contacts[contact].stamp.live() {
            want_removals.insert((EntityKind::Person, contact.to_string()));
        }
    }
    let (from, to) = (changes.move_.groups[0], changes.move_.groups[1]);
    want_removals.insert((
        EntityKind::Membership,
        key(&from.to_string(), &changes.moved.to_string()),
    ));
    assert_eq!(removals, want_removals);
    let Some(Record::Membership(joined)) = delta.find(
        EntityKind::Membership,
        &key(&to.to_string(), &changes.moved.to_string()),
    ) else {
        panic!("the moved pupil's new class membership");
    };
    assert_eq!(joined.role, MemberRole::Student);

    // The delta's cursor resumes after these changes: nothing new since.
    let again = bench
        .read(
            &connection(&bench, 0),
            Mode::Delta(delta.cursor.expect("a cursor")),
        )
        .await
        .expect("a second delta");
    assert!(again.records.is_empty(), "{:?}", again.records);
}

#[tokio::test]
async fn a_provider_that_keeps_failing_is_unavailable() {
    let bench = bench("xporter").await;
    bench.sandbox.inject_fault(Fault::new(
        Provider::Xporter,
        "/Students",
        FaultKind::ServerError { status: 503 },
    ));
    let SyncError::Unavailable(message) = failure(&bench).await else {
        panic!("expected unavailable");
    };
    assert!(message.contains("/Students?"), "{message}");
    assert!(message.ends_with("answered HTTP 503"), "{message}");
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_and_the_read_completes() {
    let bench = bench("xporter").await;
    bench.sandbox.inject_fault(
        Fault::new(
            Provider::Xporter,
            "/Staff",
            FaultKind::RateLimited {
                retry_after_secs: 1,
            },
        )
        .times(1),
    );
    let started = Instant::now();
    let read = full_read(&bench).await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the retry honoured Retry-After"
    );
    assert_same_records(&read.records, &expected::xporter(&bench.sandbox.world(), 0));
}

#[tokio::test]
async fn a_truncated_body_is_a_bad_response_naming_the_endpoint() {
    let bench = bench("xporter").await;
    bench.sandbox.inject_fault(
        Fault::new(Provider::Xporter, "/Contacts", FaultKind::TruncatedBody).times(1),
    );
    let SyncError::BadResponse(message) = failure(&bench).await else {
        panic!("expected a bad response");
    };
    assert!(message.contains("/Contacts?"), "{message}");
    assert!(
        message.contains("the response is not what was expected"),
        "{message}"
    );
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_a_bad_response_naming_the_table() {
    let bench = bench("xporter").await;
    bench
        .sandbox
        .inject_fault(Fault::new(Provider::Xporter, "/Groups", FaultKind::WrongJson).times(1));
    let SyncError::BadResponse(message) = failure(&bench).await else {
        panic!("expected a bad response");
    };
    assert!(message.contains("/Groups?"), "{message}");
    assert!(
        message.ends_with("the response has no `Group` table"),
        "{message}"
    );
}

#[tokio::test]
async fn revoked_credentials_mid_read_are_unauthorized_after_one_fresh_token() {
    let bench = bench("xporter").await;
    bench.sandbox.inject_fault(
        Fault::new(Provider::Xporter, "/Staff", FaultKind::RevokeCredentials).times(1),
    );
    let SyncError::Unauthorized(message) = failure(&bench).await else {
        panic!("expected unauthorized");
    };
    assert!(
        message.contains("/STS/GetToken answered HTTP 401"),
        "the connector asked for a new token before giving up: {message}"
    );
}

#[tokio::test]
async fn a_token_refused_mid_read_is_exchanged_again_and_the_read_goes_on() {
    let bench = bench("xporter").await;
    // One 401 on the first Staff page, as when a token expires mid-read.
    bench.sandbox.inject_fault(
        Fault::new(
            Provider::Xporter,
            "/Staff",
            FaultKind::ServerError { status: 401 },
        )
        .times(1),
    );
    let read = full_read(&bench).await;
    assert_same_records(&read.records, &expected::xporter(&bench.sandbox.world(), 0));
}

#[tokio::test]
async fn a_failure_on_a_later_page_fails_the_whole_read() {
    let bench = bench("xporter").await;
    // The first Students page is served; every later one fails.
    bench.sandbox.inject_fault(
        Fault::new(
            Provider::Xporter,
            "/Students",
            FaultKind::Slow { millis: 0 },
        )
        .times(1),
    );
    bench.sandbox.inject_fault(Fault::new(
        Provider::Xporter,
        "/Students",
        FaultKind::ServerError { status: 500 },
    ));
    let connection = connection(&bench, 0);
    let mut snapshot = bench.open(&connection, Mode::Full).await.unwrap();
    let first = snapshot
        .next_batch()
        .await
        .expect("the first page is read")
        .expect("a batch");
    assert_eq!(first.len(), 100, "one page of pupils per batch");
    let error = snapshot
        .next_batch()
        .await
        .expect_err("the second page fails the read");
    assert!(
        matches!(&error, RunError::Connector { error: SyncError::Unavailable(m), .. } if m.contains("page=2")),
        "{error}"
    );
    assert!(
        matches!(failure(&bench).await, SyncError::Unavailable(_)),
        "a whole read ends in the error, not a short snapshot"
    );
}

#[tokio::test]
async fn a_host_off_the_allow_list_is_refused_before_any_request() {
    let bench = bench("xporter").await;
    let error = bench
        .read_outside_allow_list(&connection(&bench, 0))
        .await
        .expect_err("the sandbox base URL is not allowed");
    let RunError::Outbound {
        violation: Violation::HostNotAllowed { url, entry },
        ..
    } = &error
    else {
        panic!("expected a refused host, got {error}");
    };
    assert!(url.ends_with("/xporter/idaas/sts/STS/GetToken"), "{url}");
    assert_eq!(entry, &format!("http://{}", bench.sandbox.addr()));
}
