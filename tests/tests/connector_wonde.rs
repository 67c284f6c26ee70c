//! The Wonde connector, as a built component, against the provider sandbox
//! over real HTTP: a full read is exactly what the generator made, check
//! names the school, a delta after changes reports them with explicit and
//! inferred removals, each provider fault ends as its typed error, and a
//! host off the allow-list is never reached.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rostersync_core::entity::identity;
use rostersync_model::{
    ContactType, EnrolmentStatus, EntityKind, MemberRole, Mode, Person, Record, Role, SyncError,
};
use rostersync_runtime::{RunError, Violation};
use rostersync_sandbox::{Fault, FaultKind, Provider, expected};
use rostersync_tests::providers::{Bench, Connection, Read, assert_same_records, bench, key};

fn connection(bench: &Bench, school: usize) -> Connection {
    Connection::new(bench.sandbox.connector_settings("wonde", school))
}

/// The sandbox's Wonde id for a generator uid: `A` and ten digits.
fn id(uid: u64) -> String {
    format!("A{}", 1_000_000_000 + uid)
}

async fn full_read(bench: &Bench) -> Read {
    bench
        .read(&connection(bench, 0), Mode::Full)
        .await
        .expect("a full read")
}

/// The typed error a full read of school 0 ends with.
async fn failure(bench: &Bench, connection: &Connection) -> SyncError {
    match bench.read(connection, Mode::Full).await {
        Err(RunError::Connector { connector, error }) => {
            assert_eq!(connector, "wonde");
            error
        }
        Err(other) => panic!("expected a connector error, got {other}"),
        Ok(read) => panic!("expected a failure, read {} records", read.records.len()),
    }
}

fn person(read: &Read, uid: u64) -> &Person {
    match read.find(EntityKind::Person, &id(uid)) {
        Some(Record::Person(person)) => person,
        other => panic!("no person {} in the read: {other:?}", id(uid)),
    }
}

/// Free attributes are the connector's own; expected records have none.
fn without_attributes(record: &Record) -> Record {
    match record {
        Record::Person(person) => Record::Person(Person {
            attributes: Vec::new(),
            ..person.clone()
        }),
        other => other.clone(),
    }
}

#[tokio::test]
async fn a_full_read_is_exactly_what_the_school_holds() {
    let bench = bench("wonde").await;
    let read = full_read(&bench).await;
    let world = bench.sandbox.world();
    let expected = expected::wonde(&world, 0);

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
    assert_eq!(
        read.cursor.as_deref(),
        Some("2026-09-01 07:30:00"),
        "the cursor is the newest updated_at, on Wonde's clock"
    );

    let school = &world.schools[0];
    let accented = school
        .live_students()
        .find(|s| !s.surname.is_ascii() && !s.forename.is_ascii())
        .expect("the sandbox has pupils with accented names");
    let got = person(&read, accented.uid);
    assert_eq!(got.first_name.as_deref(), Some(accented.forename.as_str()));
    assert_eq!(got.last_name.as_deref(), Some(accented.surname.as_str()));

    let nicknamed = school
        .live_students()
        .find(|s| s.preferred_forename.is_some())
        .expect("a pupil with a preferred name");
    let got = person(&read, nicknamed.uid);
    assert_eq!(got.first_name.as_deref(), Some(nicknamed.forename.as_str()));
    assert_eq!(got.preferred_first_name, nicknamed.preferred_forename);

    let applicant = school
        .live_students()
        .find(|s| s.status == EnrolmentStatus::Prospective)
        .expect("an applicant");
    let got = person(&read, applicant.uid);
    assert_eq!(got.enrolment, Some(EnrolmentStatus::Prospective));
    assert_eq!(got.year_group, None);
    let admission = got.admission.as_ref().expect("an applicant's admission");
    assert_eq!(admission.intake_group.as_deref(), Some("Year 7 Sept 2027"));

    let leaver = school
        .live_students()
        .find(|s| s.status == EnrolmentStatus::Left)
        .expect("a leaver");
    let got = person(&read, leaver.uid);
    assert_eq!(got.enrolment, Some(EnrolmentStatus::Left));
    assert_eq!(got.leaving_date, leaver.leaving_date);

    let on_roll = school
        .live_students()
        .find(|s| s.status == EnrolmentStatus::OnRoll)
        .expect("a pupil on roll");
    let got = person(&read, on_roll.uid);
    assert_eq!(got.start_date, Some(on_roll.start_date));
    assert_eq!(got.year_group, Some(format!("Year {}", on_roll.year)));
    let form = school.group(on_roll.registration).expect("a form");
    assert_eq!(got.registration_group, form.name);

    let (contact, link) = school.contacts_of(on_roll.uid)[0];
    let Some(Record::Relationship(relationship)) = read.find(
        EntityKind::Relationship,
        &key(&id(on_roll.uid), &id(contact.uid)),
    ) else {
        panic!("the pupil's first contact");
    };
    assert_eq!(relationship.priority, Some(1));
    assert_eq!(relationship.contact_type, ContactType::Primary);
    assert_eq!(
        relationship.relationship.as_deref(),
        Some(link.relationship.as_str())
    );

    let unnamed = school
        .live_groups()
        .find(|g| g.name.is_none())
        .expect("an unnamed class");
    let Some(Record::Group(group)) = read.find(EntityKind::Group, &id(unnamed.uid)) else {
        panic!("the unnamed class is read");
    };
    assert_eq!(group.name, None);
    assert_eq!(group.code.as_deref(), Some(unnamed.code.as_str()));
    assert_eq!(group.subject, unnamed.subject);

    let Some(Record::Group(house)) = read.find(
        EntityKind::Group,
        &id(school
            .live_groups()
            .find(|g| g.name.as_deref() == Some("Brontë"))
            .expect("the Brontë house")
            .uid),
    ) else {
        panic!("the house is read");
    };
    assert_eq!(house.name.as_deref(), Some("Brontë"));
}

#[tokio::test]
async fn check_names_the_school_and_a_wrong_token_is_unauthorized() {
    let bench = bench("wonde").await;
    let world = bench.sandbox.world();
    let info = bench
        .check(&connection(&bench, 1))
        .await
        .expect("check succeeds");
    assert_eq!(info.id, bench.sandbox.credentials(1).wonde_school_id);
    assert_eq!(info.name, world.schools[1].name);
    let urn = info
        .details
        .iter()
        .find(|d| d.name == "urn")
        .expect("a URN");
    assert_eq!(urn.value, world.schools[1].urn);

    let mut wrong = connection(&bench, 1);
    wrong.settings.set("api-token", "not-the-token");
    let error = bench.check(&wrong).await.expect_err("a wrong token");
    let RunError::Connector {
        error: SyncError::Unauthorized(message),
        ..
    } = &error
    else {
        panic!("expected unauthorized, got {error}");
    };
    assert!(
        message.ends_with(&format!("/schools/{} answered HTTP 401", info.id)),
        "{message}"
    );
}

#[tokio::test]
async fn a_delta_reports_added_edited_removed_and_moved_pupils() {
    let bench = bench("wonde").await;
    let full = full_read(&bench).await;
    let stored: BTreeSet<_> = full.records.iter().filter_map(identity).collect();
    let changes = bench.change_pupils(|s| s.status == EnrolmentStatus::OnRoll, 0);

    let cursor = full.cursor.clone().expect("a cursor");
    let delta = bench
        .read(&connection(&bench, 0), Mode::Delta(cursor))
        .await
        .expect("a delta read");
    assert_eq!(
        delta.cursor.as_deref(),
        Some("2026-09-01 07:34:00"),
        "four changes, a minute apart, after the full read"
    );

    // Every record the delta carries is the current truth.
    let now: Vec<Record> = expected::wonde(&changes.after, 0);
    for record in delta
        .records
        .iter()
        .filter(|r| !matches!(r, Record::Removed(_)))
    {
        assert!(
            now.contains(&without_attributes(record)),
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
        .into_iter()
        .map(id)
        .collect();
    want_people.extend(
        changes.after.schools[0]
            .contacts_of(changes.added.pupil)
            .iter()
            .map(|(c, _)| id(c.uid)),
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
                    &key(&id(*group), &id(changes.added.pupil))
                )
                .is_some(),
            "the new pupil's membership of {group}"
        );
    }
    let (new_contact, _) = changes.after.schools[0].contacts_of(changes.added.pupil)[0];
    let Some(Record::Relationship(relationship)) = delta.find(
        EntityKind::Relationship,
        &key(&id(changes.added.pupil), &id(new_contact.uid)),
    ) else {
        panic!("the new pupil's contact relationship");
    };
    assert_eq!(relationship.relationship.as_deref(), Some("Mother"));
    assert_eq!(relationship.contact_type, ContactType::Primary);

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

    // Removals of what the full read stored: the host ignores the rest.
    let removals: BTreeSet<(EntityKind, String)> = delta
        .removals()
        .into_iter()
        .filter(|gone| stored.contains(gone))
        .collect();
    let mut want_removals = BTreeSet::from([(EntityKind::Person, id(changes.removed))]);
    for group in &changes.removal.groups {
        want_removals.insert((
            EntityKind::Membership,
            key(&id(*group), &id(changes.removed)),
        ));
    }
    for contact in &changes.removed_contacts {
        assert!(
            !changes.after.schools[0].contacts[contact].stamp.live(),
            "the removed pupil's contacts had nobody else"
        );
        want_removals.insert((
            EntityKind::Relationship,
            key(&id(changes.removed), &id(*contact)),
        ));
        want_removals.insert((EntityKind::Person, id(*contact)));
    }
    let (from, to) = (changes.move_.groups[0], changes.move_.groups[1]);
    want_removals.insert((EntityKind::Membership, key(&id(from), &id(changes.moved))));
    assert_eq!(removals, want_removals);
    let Some(Record::Membership(joined)) =
        delta.find(EntityKind::Membership, &key(&id(to), &id(changes.moved)))
    else {
        panic!("the moved pupil's new class membership");
    };
    assert_eq!(joined.role, MemberRole::Student);
    assert!(
        delta
            .find(EntityKind::Membership, &key(&id(from), &id(changes.moved)))
            .is_none(),
        "the old class membership is not re-sent"
    );

    // The delta's cursor resumes after these changes: nothing new since.
    let again = bench
        .read(
            &connection(&bench, 0),
            Mode::Delta(delta.cursor.clone().expect("a cursor")),
        )
        .await
        .expect("a second delta");
    assert!(again.records.is_empty(), "{:?}", again.records);
    assert_eq!(again.cursor, delta.cursor);
}

#[tokio::test]
async fn a_provider_that_keeps_failing_is_unavailable() {
    let bench = bench("wonde").await;
    bench.sandbox.inject_fault(Fault::new(
        Provider::Wonde,
        "/students",
        FaultKind::ServerError { status: 503 },
    ));
    let SyncError::Unavailable(message) = failure(&bench, &connection(&bench, 0)).await else {
        panic!("expected unavailable");
    };
    assert!(message.contains("/students?"), "{message}");
    assert!(message.ends_with("answered HTTP 503"), "{message}");
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_and_the_read_completes() {
    let bench = bench("wonde").await;
    bench.sandbox.inject_fault(
        Fault::new(
            Provider::Wonde,
            "/employees",
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
    assert_same_records(&read.records, &expected::wonde(&bench.sandbox.world(), 0));
}

#[tokio::test]
async fn a_truncated_body_is_a_bad_response_naming_the_endpoint() {
    let bench = bench("wonde").await;
    bench
        .sandbox
        .inject_fault(Fault::new(Provider::Wonde, "/contacts", FaultKind::TruncatedBody).times(1));
    let SyncError::BadResponse(message) = failure(&bench, &connection(&bench, 0)).await else {
        panic!("expected a bad response");
    };
    assert!(message.contains("/contacts?"), "{message}");
    assert!(
        message.contains("the response is not what was expected"),
        "{message}"
    );
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_a_bad_response_naming_the_field() {
    let bench = bench("wonde").await;
    bench
        .sandbox
        .inject_fault(Fault::new(Provider::Wonde, "/classes", FaultKind::WrongJson).times(1));
    let SyncError::BadResponse(message) = failure(&bench, &connection(&bench, 0)).await else {
        panic!("expected a bad response");
    };
    assert!(message.contains("/classes?"), "{message}");
    assert!(message.contains("missing field `data`"), "{message}");
}

#[tokio::test]
async fn revoked_credentials_mid_read_are_unauthorized() {
    let bench = bench("wonde").await;
    bench.sandbox.inject_fault(
        Fault::new(Provider::Wonde, "/groups", FaultKind::RevokeCredentials).times(1),
    );
    let SyncError::Unauthorized(message) = failure(&bench, &connection(&bench, 0)).await else {
        panic!("expected unauthorized");
    };
    assert!(message.contains("/groups?"), "{message}");
    assert!(message.ends_with("answered HTTP 401"), "{message}");
}

#[tokio::test]
async fn a_failure_on_a_later_page_fails_the_whole_read() {
    let bench = bench("wonde").await;
    let mut connection = connection(&bench, 0);
    connection.settings.set("page-size", "50");
    // The first contacts page is served; every later one fails.
    bench.sandbox.inject_fault(
        Fault::new(Provider::Wonde, "/contacts", FaultKind::Slow { millis: 0 }).times(1),
    );
    bench.sandbox.inject_fault(Fault::new(
        Provider::Wonde,
        "/contacts",
        FaultKind::ServerError { status: 500 },
    ));
    let mut snapshot = bench.open(&connection, Mode::Full).await.unwrap();
    let mut contacts = 0;
    let error = loop {
        match snapshot.next_batch().await {
            Ok(Some(batch)) => {
                assert!(batch.len() <= 50 * 8, "one page per batch");
                contacts += batch
                    .iter()
                    .filter(|r| matches!(r, Record::Person(p) if p.role == Role::Contact))
                    .count();
            }
            Ok(None) => panic!("the read completed despite the failing page"),
            Err(error) => break error,
        }
    };
    assert_eq!(contacts, 50, "the first contacts page was read");
    assert!(
        matches!(&error, RunError::Connector { error: SyncError::Unavailable(m), .. }
            if m.contains("/contacts?") && m.contains("page=2")),
        "{error}"
    );
    assert!(
        matches!(
            failure(&bench, &connection).await,
            SyncError::Unavailable(_)
        ),
        "a whole read ends in the error, not a short snapshot"
    );
}

#[tokio::test]
async fn a_host_off_the_allow_list_is_refused_before_any_request() {
    let bench = bench("wonde").await;
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
    let school = bench.sandbox.credentials(0).wonde_school_id;
    assert!(
        url.contains(&format!("/wonde/v1.0/schools/{school}/students?")),
        "{url}"
    );
    assert_eq!(entry, &format!("http://{}", bench.sandbox.addr()));
}
