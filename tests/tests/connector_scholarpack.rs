//! The Scholarpack connector, as a built component, against the provider
//! sandbox over real HTTP: a full read is exactly what the generator made
//! (Scholarpack has no change feed, so a change shows in the next full
//! read), check reaches the school, each provider fault ends as its typed
//! error, and a host off the allow-list is never reached.

use rostersync_model::{EntityKind, Record, SyncError};
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
    let bench = bench("scholarpack").await;
    let read = full_read(&bench).await;
    let world = bench.sandbox.world();
    let expected = expected::scholarpack(&world, 0);
    for kind in EntityKind::ALL {
        assert!(
            expected::counts(&expected)[&kind] > 0,
            "the sandbox has {kind} records"
        );
    }
    assert_same_records(&read.records, &expected);
    assert!(read.removals().is_empty());
    let accented = world.schools[0]
        .live_students()
        .find(|s| !s.surname.is_ascii())
        .expect("the sandbox has pupils with accented surnames");
    let Some(Record::Person(pupil)) = read.find(EntityKind::Person, &accented.uid.to_string())
    else {
        panic!("the accented pupil was read");
    };
    assert_eq!(pupil.last_name.as_deref(), Some(accented.surname.as_str()));
}

#[tokio::test]
async fn check_reaches_the_school_and_a_wrong_token_is_unauthorized() {
    let bench = bench("scholarpack").await;
    let school = bench
        .check(&connection(&bench))
        .await
        .expect("check succeeds");
    assert!(school.id.ends_with("/scholarpack/api/v1"), "{}", school.id);
    let mut wrong = connection(&bench);
    wrong.settings = wrong.settings.with("api-token", "not-the-token");
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
    let bench = bench("scholarpack").await;
    let before = full_read(&bench).await;
    let removed = bench
        .sandbox
        .mutate(0, Mutation::RemovePupil { pupil: None })
        .unwrap()
        .pupil;
    let added = bench.sandbox.mutate(0, Mutation::AddPupil).unwrap().pupil;
    bench
        .sandbox
        .mutate(0, Mutation::EditPupil { pupil: None })
        .unwrap();
    bench
        .sandbox
        .mutate(0, Mutation::MovePupil { pupil: None })
        .unwrap();
    let after = full_read(&bench).await;
    assert_same_records(
        &after.records,
        &expected::scholarpack(&bench.sandbox.world(), 0),
    );
    assert!(
        before
            .find(EntityKind::Person, &removed.to_string())
            .is_some()
    );
    assert!(
        after
            .find(EntityKind::Person, &removed.to_string())
            .is_none()
    );
    assert!(after.find(EntityKind::Person, &added.to_string()).is_some());
}

#[tokio::test]
async fn a_provider_that_keeps_failing_is_unavailable() {
    let bench = bench("scholarpack").await;
    bench.sandbox.inject_fault(Fault::new(
        Provider::Scholarpack,
        "/staff",
        FaultKind::ServerError { status: 503 },
    ));
    let SyncError::Unavailable(message) = failure(&bench).await else {
        panic!("expected unavailable");
    };
    assert!(
        message.contains("/staff/") && message.ends_with("answered HTTP 503"),
        "{message}"
    );
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_and_the_read_completes() {
    let bench = bench("scholarpack").await;
    bench.sandbox.inject_fault(
        Fault::new(
            Provider::Scholarpack,
            "/students",
            FaultKind::RateLimited {
                retry_after_secs: 1,
            },
        )
        .times(1),
    );
    let read = full_read(&bench).await;
    assert_same_records(
        &read.records,
        &expected::scholarpack(&bench.sandbox.world(), 0),
    );
}

#[tokio::test]
async fn truncated_and_misshapen_bodies_are_bad_responses_naming_the_endpoint() {
    for fault in [FaultKind::TruncatedBody, FaultKind::WrongJson] {
        let bench = bench("scholarpack").await;
        bench
            .sandbox
            .inject_fault(Fault::new(Provider::Scholarpack, "/groups", fault.clone()));
        let SyncError::BadResponse(message) = failure(&bench).await else {
            panic!("expected a bad response for {fault:?}");
        };
        assert!(message.contains("/groups/"), "{message}");
    }
}

#[tokio::test]
async fn revoked_credentials_mid_read_are_unauthorized() {
    let bench = bench("scholarpack").await;
    bench.sandbox.inject_fault(Fault::new(
        Provider::Scholarpack,
        "/contacts",
        FaultKind::RevokeCredentials,
    ));
    assert!(matches!(failure(&bench).await, SyncError::Unauthorized(_)));
}

#[tokio::test]
async fn a_host_off_the_allow_list_is_refused() {
    let bench = bench("scholarpack").await;
    let error = bench
        .read_outside_allow_list(&connection(&bench))
        .await
        .expect_err("the sandbox base URL is not allowed");
    let RunError::Outbound {
        violation: Violation::HostNotAllowed { url, .. },
        ..
    } = &error
    else {
        panic!("expected a refused host, got {error}");
    };
    assert!(url.contains("/scholarpack/api/v1/students/"), "{url}");
}
