//! The Clever connector, as a built component: replayed over responses
//! written from Clever's v3.0 definitions (see
//! `connectors/clever/tests/spec/README.md`), every record compared field
//! by field with what those responses hold; and against the provider
//! sandbox over real HTTP: a full read is exactly what the generator made, check
//! names the school, a delta replays the events feed with explicit and
//! inferred removals, each provider fault ends as its typed error, and a
//! host off the allow-list is never reached.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use rostersync_core::entity::identity;
use rostersync_model::{
    ContactType, EnrolmentStatus, EntityKind, Group, GroupKind, MemberRole, MembershipKey, Mode,
    Person, Record, Relationship, Removal, Role, Settings, SyncError,
};
use rostersync_runtime::{RunError, Violation};
use rostersync_sandbox::{Fault, FaultKind, Provider, expected};
use rostersync_tests::providers::{
    Bench, Connection, Read, assert_same_records, bench, key, member,
};
use rostersync_tests::replay::Replay;

// The ids in the spec-derived responses.
const S1: &str = "5f00000000000000000000a1";
const S2: &str = "5f00000000000000000000a2";
const T1: &str = "5f00000000000000000000b1";
const ST1: &str = "5f00000000000000000000b2";
const C1: &str = "5f00000000000000000000c1";
const HOME: &str = "5f00000000000000000000d1";
const MATH: &str = "5f00000000000000000000d2";

async fn spec_replay(phase: &str) -> Replay {
    Replay::load(
        "clever",
        &Path::new("connectors/clever/tests/spec").join(format!("{phase}.json")),
        Settings::new()
            .with("base-url", "https://api.clever.com/v3.0")
            .with("api-token", "redacted-api-token"),
    )
    .await
}

/// Every record a replayed snapshot yields, to its end.
async fn replay_all(replay: &Replay, mode: Mode) -> (Vec<Record>, Option<String>) {
    let mut snapshot = replay.open(mode).await.expect("the snapshot opens");
    let mut records = Vec::new();
    while let Some(batch) = snapshot.next_batch().await.expect("the replay reads") {
        records.extend(batch);
    }
    let cursor = snapshot.cursor().await.expect("a cursor answer");
    assert!(replay.unused().is_empty(), "{:?}", replay.unused());
    (records, cursor)
}

fn date(text: &str) -> Option<chrono::NaiveDate> {
    Some(text.parse().expect("a date"))
}

/// A `roles.student` user of the spec fixtures: `sis_id`, names,
/// `district_username` (the email's local part there), `dob`, enrollment
/// start, `grade`, and the name of the `homeroom/advisory` section listing
/// them.
fn spec_pupil(
    (id, sis_id, username): (&str, &str, &str),
    (first, last): (&str, &str),
    dob: &str,
    grade: &str,
) -> Person {
    Person {
        mis_id: Some(sis_id.into()),
        first_name: Some(first.into()),
        last_name: Some(last.into()),
        email: Some(format!("{username}@school.example.org")),
        username: Some(username.into()),
        date_of_birth: date(dob),
        start_date: date("2026-09-01"),
        enrolment: Some(EnrolmentStatus::OnRoll),
        year_group: Some(grade.into()),
        registration_group: Some("7A".into()),
        ..Person::new(id, Role::Student)
    }
}

/// A section of the spec fixtures, all of `grade` 6.
fn spec_section(id: &str, kind: GroupKind, name: &str, code: &str, subject: &str) -> Record {
    Record::Group(Group {
        id: id.into(),
        kind,
        name: Some(name.into()),
        code: Some(code.into()),
        subject: Some(subject.into()),
        year_group: Some("6".into()),
        active: true,
        parent: None,
    })
}

#[tokio::test]
async fn a_spec_derived_full_read_maps_every_field() {
    let replay = spec_replay("full").await;
    let (records, cursor) = replay_all(&replay, Mode::Full).await;
    assert_eq!(cursor.as_deref(), Some("after:5e0000000000000000000001"));
    let staff = |id: &str,
                 mis_id: &str,
                 title: &str,
                 (first, last): (&str, &str),
                 email: &str,
                 username: &str| {
        Record::Person(Person {
            mis_id: Some(mis_id.into()),
            salutation: Some(title.into()),
            first_name: Some(first.into()),
            last_name: Some(last.into()),
            email: Some(email.into()),
            username: Some(username.into()),
            ..Person::new(id, Role::Staff)
        })
    };
    let relationship = |student: &str, contact_type, relationship: &str| {
        Record::Relationship(Relationship {
            student: student.into(),
            contact: C1.into(),
            contact_type,
            relationship: Some(relationship.into()),
            priority: None,
            parental_responsibility: relationship == "Parent",
        })
    };
    assert_same_records(
        &records,
        &[
            spec_section(
                HOME,
                GroupKind::Registration,
                "7A",
                "7A",
                "homeroom/advisory",
            ),
            member(HOME, T1, MemberRole::Teacher),
            member(HOME, S1, MemberRole::Student),
            member(HOME, S2, MemberRole::Student),
            spec_section(MATH, GroupKind::Class, "7 Maths Set 1", "7Ma1", "math"),
            member(MATH, T1, MemberRole::Teacher),
            member(MATH, S1, MemberRole::Student),
            member(MATH, S2, MemberRole::Student),
            Record::Person(spec_pupil(
                (S1, "1001", "amara.okafor"),
                ("Amara", "Okafor"),
                "2013-09-14",
                "6",
            )),
            Record::Person(spec_pupil(
                (S2, "1002", "jonah.ellis"),
                ("Jonah", "Ellis"),
                "2012-12-02",
                "7",
            )),
            // A teacher's MIS id is the `teacher_number`, not the `sis_id`.
            staff(
                T1,
                "8812345",
                "Mr",
                ("Ravi", "Patel"),
                "r.patel@school.example.org",
                "r.patel",
            ),
            // A staff member's is the `staff_id`.
            staff(
                ST1,
                "S-9",
                "Mrs",
                ("Helen", "Ward"),
                "office@school.example.org",
                "h.ward",
            ),
            Record::Person(Person {
                mis_id: Some("C-5".into()),
                last_name: Some("Jane Doe".into()),
                email: Some("jane.doe@example.net".into()),
                ..Person::new(C1, Role::Contact)
            }),
            relationship(S1, ContactType::Primary, "Parent"),
            relationship(S2, ContactType::Emergency, "Grandparent"),
        ],
    );
}

#[tokio::test]
async fn a_spec_derived_delta_removes_who_left_a_section_by_previous_attributes() {
    let replay = spec_replay("delta").await;
    let (records, cursor) = replay_all(
        &replay,
        Mode::Delta("after:5e0000000000000000000001".into()),
    )
    .await;
    assert_eq!(cursor.as_deref(), Some("after:5e0000000000000000000003"));
    assert_eq!(
        records,
        [
            // `previous_attributes.students` held S1; the section no longer does.
            Record::Removed(Removal::Membership(MembershipKey {
                group: MATH.into(),
                person: S1.into(),
            })),
            spec_section(MATH, GroupKind::Class, "7 Maths Set 1", "7Ma1", "math"),
            member(MATH, T1, MemberRole::Teacher),
            member(MATH, S2, MemberRole::Student),
            Record::Person(Person {
                last_name: Some("Ellis-Brown".into()),
                ..spec_pupil(
                    (S2, "1002", "jonah.ellis"),
                    ("Jonah", "Ellis"),
                    "2012-12-02",
                    "7",
                )
            }),
        ]
    );
}

fn connection(bench: &Bench, school: usize) -> Connection {
    Connection::new(bench.sandbox.connector_settings("clever", school))
}

/// The sandbox's Clever id for a generator uid: 24 hex digits, like a
/// Mongo ObjectId.
fn id(uid: u64) -> String {
    format!("5a{uid:022x}")
}

async fn full_read(bench: &Bench) -> Read {
    bench
        .read(&connection(bench, 0), Mode::Full)
        .await
        .expect("a full read")
}

/// The typed error a full read ends with.
async fn failure(bench: &Bench, connection: &Connection) -> SyncError {
    match bench.read(connection, Mode::Full).await {
        Err(RunError::Connector { connector, error }) => {
            assert_eq!(connector, "clever");
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

#[tokio::test]
async fn a_full_read_is_exactly_what_the_school_holds() {
    let bench = bench("clever").await;
    let read = full_read(&bench).await;
    let world = bench.sandbox.world();
    let expected = expected::clever(&world, 0);

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
        Some("beginning"),
        "no events yet: a delta replays the feed from its start"
    );

    let school = &world.schools[0];
    let accented = school
        .live_students()
        .find(|s| {
            s.status == EnrolmentStatus::OnRoll && !s.surname.is_ascii() && !s.forename.is_ascii()
        })
        .expect("the sandbox has pupils on roll with accented names");
    let got = person(&read, accented.uid);
    assert_eq!(got.first_name.as_deref(), Some(accented.forename.as_str()));
    assert_eq!(got.last_name.as_deref(), Some(accented.surname.as_str()));
    assert_eq!(got.preferred_first_name, None, "Clever v3.0 has none");
    assert_eq!(got.date_of_birth, Some(accented.date_of_birth));
    assert_eq!(got.start_date, Some(accented.start_date));
    assert_eq!(got.year_group, Some((accented.year - 1).to_string()));

    for applicant_or_leaver in school
        .live_students()
        .filter(|s| s.status != EnrolmentStatus::OnRoll)
    {
        assert!(
            read.find(EntityKind::Person, &id(applicant_or_leaver.uid))
                .is_none(),
            "Clever carries pupils on roll only"
        );
    }

    let (contact, _) = school
        .live_students()
        .filter(|s| s.status == EnrolmentStatus::OnRoll)
        .flat_map(|s| school.contacts_of(s.uid))
        .find(|(c, link)| link.relationship == "Mother" && !c.forename.is_ascii())
        .expect("a mother with an accented name");
    let got = person(&read, contact.uid);
    assert_eq!(got.role, Role::Contact);
    assert_eq!(got.first_name, None);
    assert_eq!(
        got.last_name,
        Some(format!("{} {}", contact.forename, contact.surname))
    );
    let (pupil, link) = school.students_of(contact.uid)[0];
    let Some(Record::Relationship(relationship)) = read.find(
        EntityKind::Relationship,
        &key(&id(pupil.uid), &id(contact.uid)),
    ) else {
        panic!("the mother's relationship");
    };
    assert_eq!(relationship.relationship.as_deref(), Some("Parent"));
    assert_eq!(relationship.contact_type, link.contact_type);
    assert_eq!(relationship.priority, None);
    assert!(relationship.parental_responsibility);

    let form = school
        .live_groups()
        .find(|g| g.kind == GroupKind::Registration)
        .expect("a registration group");
    let Some(Record::Group(group)) = read.find(EntityKind::Group, &id(form.uid)) else {
        panic!("the registration group is read");
    };
    assert_eq!(group.kind, GroupKind::Registration);
    assert_eq!(group.subject.as_deref(), Some("homeroom/advisory"));
    let unnamed = school
        .live_groups()
        .find(|g| g.name.is_none())
        .expect("an unnamed class");
    let Some(Record::Group(group)) = read.find(EntityKind::Group, &id(unnamed.uid)) else {
        panic!("the unnamed class is read");
    };
    assert_eq!(group.name, None);
    assert_eq!(group.code.as_deref(), Some(unnamed.code.as_str()));
}

#[tokio::test]
async fn check_names_the_school_and_a_wrong_token_is_unauthorized() {
    let bench = bench("clever").await;
    let world = bench.sandbox.world();
    let info = bench
        .check(&connection(&bench, 1))
        .await
        .expect("check succeeds");
    assert_eq!(info.id, id(world.schools[1].uid));
    assert_eq!(info.name, world.schools[1].name);
    let sis_id = info
        .details
        .iter()
        .find(|d| d.name == "sis_id")
        .expect("the school's SIS id");
    assert_eq!(sis_id.value, world.schools[1].estab);

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
        message.ends_with("/clever/v3.0/schools?limit=2 answered HTTP 401"),
        "{message}"
    );
}

#[tokio::test]
async fn a_delta_replays_added_edited_removed_and_moved_pupils() {
    let bench = bench("clever").await;
    let full = full_read(&bench).await;
    let stored: BTreeSet<_> = full.records.iter().filter_map(identity).collect();
    let changes = bench.change_pupils(|s| s.status == EnrolmentStatus::OnRoll, 0);
    let (from, to) = (changes.move_.groups[0], changes.move_.groups[1]);

    let cursor = full.cursor.clone().expect("a cursor");
    let delta = bench
        .read(&connection(&bench, 0), Mode::Delta(cursor))
        .await
        .expect("a delta read");
    // The last event is the move's: the pupil and both sections changed at
    // revision 5, and events run in (revision, record) order.
    let last = [changes.moved, from, to].into_iter().max().unwrap();
    assert_eq!(
        delta.cursor,
        Some(format!(
            "after:5e{:010x}{last:012x}",
            changes.move_.revision
        ))
    );

    // Every record the delta carries is the current truth.
    let now = expected::clever(&changes.after, 0);
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
        .into_iter()
        .map(id)
        .collect();
    let new_contacts = changes.after.schools[0].contacts_of(changes.added.pupil);
    want_people.extend(new_contacts.iter().map(|(c, _)| id(c.uid)));
    assert_eq!(people, want_people, "only changed people are read again");

    let new_pupil = person(&delta, changes.added.pupil);
    assert_eq!(new_pupil.role, Role::Student);
    assert_eq!(new_pupil.enrolment, Some(EnrolmentStatus::OnRoll));
    assert_eq!(new_pupil.year_group.as_deref(), Some("6"), "UK year 7");
    let sections: Vec<u64> = changes
        .added
        .groups
        .iter()
        .copied()
        .filter(|g| {
            matches!(
                changes.after.schools[0].groups[g].kind,
                GroupKind::Class | GroupKind::Registration
            )
        })
        .collect();
    assert!(!sections.is_empty());
    for section in &sections {
        assert!(
            delta
                .find(
                    EntityKind::Membership,
                    &key(&id(*section), &id(changes.added.pupil))
                )
                .is_some(),
            "the new pupil's membership of {section}"
        );
    }
    let Some(Record::Relationship(relationship)) = delta.find(
        EntityKind::Relationship,
        &key(&id(changes.added.pupil), &id(new_contacts[0].0.uid)),
    ) else {
        panic!("the new pupil's contact relationship");
    };
    assert_eq!(relationship.relationship.as_deref(), Some("Parent"));
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
    for group in changes.removal.groups.iter().filter(|g| {
        matches!(
            changes.after.schools[0].groups[g].kind,
            GroupKind::Class | GroupKind::Registration
        )
    }) {
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
    want_removals.insert((EntityKind::Membership, key(&id(from), &id(changes.moved))));
    assert_eq!(removals, want_removals);
    let Some(Record::Membership(joined)) =
        delta.find(EntityKind::Membership, &key(&id(to), &id(changes.moved)))
    else {
        panic!("the moved pupil's new class membership");
    };
    assert_eq!(joined.role, MemberRole::Student);

    // The delta's cursor resumes after these events: nothing new since.
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
async fn without_events_a_full_read_completes_with_no_cursor() {
    let bench = bench("clever").await;
    // Events are opt-in: a district without them is refused the feed.
    bench.sandbox.inject_fault(Fault::new(
        Provider::Clever,
        "/events",
        FaultKind::ServerError { status: 403 },
    ));
    let read = full_read(&bench).await;
    assert_same_records(&read.records, &expected::clever(&bench.sandbox.world(), 0));
    assert_eq!(
        read.cursor, None,
        "no cursor, so the next run reads in full"
    );
}

#[tokio::test]
async fn a_provider_that_keeps_failing_is_unavailable() {
    let bench = bench("clever").await;
    bench.sandbox.inject_fault(Fault::new(
        Provider::Clever,
        "/users",
        FaultKind::ServerError { status: 503 },
    ));
    let SyncError::Unavailable(message) = failure(&bench, &connection(&bench, 0)).await else {
        panic!("expected unavailable");
    };
    assert!(message.contains("/users?"), "{message}");
    assert!(message.ends_with("answered HTTP 503"), "{message}");
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_and_the_read_completes() {
    let bench = bench("clever").await;
    bench.sandbox.inject_fault(
        Fault::new(
            Provider::Clever,
            "/sections",
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
    assert_same_records(&read.records, &expected::clever(&bench.sandbox.world(), 0));
}

#[tokio::test]
async fn a_truncated_body_is_a_bad_response_naming_the_endpoint() {
    let bench = bench("clever").await;
    bench
        .sandbox
        .inject_fault(Fault::new(Provider::Clever, "/users", FaultKind::TruncatedBody).times(1));
    let SyncError::BadResponse(message) = failure(&bench, &connection(&bench, 0)).await else {
        panic!("expected a bad response");
    };
    assert!(message.contains("/users?"), "{message}");
    assert!(
        message.contains("the response is not what was expected"),
        "{message}"
    );
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_a_bad_response_naming_the_field() {
    let bench = bench("clever").await;
    bench
        .sandbox
        .inject_fault(Fault::new(Provider::Clever, "/sections", FaultKind::WrongJson).times(1));
    let SyncError::BadResponse(message) = failure(&bench, &connection(&bench, 0)).await else {
        panic!("expected a bad response");
    };
    assert!(message.contains("/sections?"), "{message}");
    assert!(message.contains("missing field `data`"), "{message}");
}

#[tokio::test]
async fn revoked_credentials_mid_read_are_unauthorized() {
    let bench = bench("clever").await;
    bench.sandbox.inject_fault(
        Fault::new(Provider::Clever, "/sections", FaultKind::RevokeCredentials).times(1),
    );
    let SyncError::Unauthorized(message) = failure(&bench, &connection(&bench, 0)).await else {
        panic!("expected unauthorized");
    };
    assert!(message.contains("/sections?"), "{message}");
    assert!(message.ends_with("answered HTTP 401"), "{message}");
}

#[tokio::test]
async fn a_failure_on_a_later_page_fails_the_whole_read() {
    let bench = bench("clever").await;
    let mut connection = connection(&bench, 0);
    connection.settings.set("page-size", "50");
    // The first users page is served; every later one fails.
    bench.sandbox.inject_fault(
        Fault::new(Provider::Clever, "/users", FaultKind::Slow { millis: 0 }).times(1),
    );
    bench.sandbox.inject_fault(Fault::new(
        Provider::Clever,
        "/users",
        FaultKind::ServerError { status: 500 },
    ));
    let mut snapshot = bench.open(&connection, Mode::Full).await.unwrap();
    let mut people = 0;
    let error = loop {
        match snapshot.next_batch().await {
            Ok(Some(batch)) => {
                people += batch
                    .iter()
                    .filter(|r| matches!(r, Record::Person(_)))
                    .count();
            }
            Ok(None) => panic!("the read completed despite the failing page"),
            Err(error) => break error,
        }
    };
    assert_eq!(people, 50, "the first users page was read");
    assert!(
        matches!(&error, RunError::Connector { error: SyncError::Unavailable(m), .. }
            if m.contains("/users?") && m.contains("starting_after=")),
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
    let bench = bench("clever").await;
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
    assert!(url.contains("/clever/v3.0/events?limit=1000"), "{url}");
    assert_eq!(entry, &format!("http://{}", bench.sandbox.addr()));
}
