//! The Arbor connector, as a built component, against the provider sandbox
//! over real HTTP: a full read is exactly what the generator made, a change
//! shows in the next full read, each provider fault ends as its typed
//! error, and a host off the allow-list is never reached.

use rostersync_model::{EnrolmentStatus, EntityKind, Record, SyncError};
use rostersync_runtime::{RunError, Violation};
use rostersync_sandbox::{Fault, FaultKind, Mutation, Provider, expected};
use rostersync_tests::providers::{Bench, Connection, Read, assert_same_records, bench};

fn connection(bench: &Bench) -> Connection {
    bench.sandbox_connection(0)
}

async fn full_read(bench: &Bench) -> Read {
    bench.full_read(&connection(bench)).await
}

async fn failure(bench: &Bench) -> SyncError {
    bench.failure(&connection(bench)).await
}

#[tokio::test]
async fn a_full_read_is_exactly_what_the_school_holds() {
    let bench = bench("arbor").await;
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
    let bench = bench("arbor").await;
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
    let bench = bench("arbor").await;
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
        let bench = bench("arbor").await;
        bench
            .sandbox
            .inject_fault(Fault::new(Provider::Arbor, "/guardians", fault.clone()));
        let error = failure(&bench).await;
        let got = match &error {
            SyncError::Unavailable(m) | SyncError::BadResponse(m) => {
                assert!(m.contains("/guardians"), "{fault:?}: {m}");
                if matches!(error, SyncError::Unavailable(_)) {
                    "unavailable"
                } else {
                    "bad response"
                }
            }
            SyncError::Unauthorized(_) => "unauthorized",
            other => panic!("{fault:?}: unexpected {other:?}"),
        };
        assert_eq!(got, want, "{fault:?}");
    }
}

#[tokio::test]
async fn a_host_off_the_allow_list_is_refused() {
    let bench = bench("arbor").await;
    let error = bench
        .read_outside_allow_list(&connection(&bench))
        .await
        .expect_err("the sandbox base URL is not allowed");
    assert!(
        matches!(&error, RunError::Outbound { violation: Violation::HostNotAllowed { url, .. }, .. } if url.contains("/rest-v2/registration-forms")),
        "{error}"
    );
}
