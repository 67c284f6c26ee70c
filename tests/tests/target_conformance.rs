//! The target conformance suite over the workspace's targets: the
//! template's against the Example App it serves, the SCIM target against a
//! real `scim2-server` (with a bearer token, and read-back pages of two so
//! paging is exercised), which must be left as the suite found it.

use rostersync_conformance::{
    Outcome, Report, TargetEndpoint, TargetSuiteOptions, run_target_suite,
};
use rostersync_model::Settings;
use rostersync_runtime::Limits;
use rostersync_tests::runtime_with;
use rostersync_tests::scim::{ScimServer, installed};

async fn suite(name: &str, endpoint: TargetEndpoint) -> Report {
    let (_dir, runtime) = runtime_with(&[name]).await;
    let component = runtime.target(name).expect("the target is in service");
    let report = run_target_suite(
        component,
        TargetSuiteOptions {
            endpoint,
            limits: Limits::default(),
        },
    )
    .await
    .unwrap();
    println!("{report}");
    report
}

#[tokio::test]
async fn the_template_target_passes_against_the_example_app_it_serves() {
    let report = suite("example-app", TargetEndpoint::ExampleApp).await;
    assert!(report.passed(), "{report}");
    assert_eq!(
        report.outcome("check refuses bad credentials"),
        Some(&Outcome::Passed)
    );
    assert_eq!(
        report.outcome("the endpoint holds what was sent"),
        Some(&Outcome::Passed)
    );
    assert!(matches!(
        report.outcome("read pages through what the system holds"),
        Some(Outcome::Skipped(_))
    ));
}

#[tokio::test]
async fn the_scim_target_passes_against_a_real_scim_server() {
    if !installed() {
        return;
    }
    let server = ScimServer::with_token("conformance-token").await;
    let settings = Settings::new()
        .with("base-url", &server.base)
        .with("bearer-token", "conformance-token")
        .with("page-size", "2");
    let report = suite("scim", TargetEndpoint::Live(settings)).await;
    assert!(report.passed(), "{report}");
    let skipped: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Skipped(_)))
        .map(|c| c.name)
        .collect();
    assert!(skipped.is_empty(), "every check ran: {skipped:?}\n{report}");
    assert!(
        server.users().await.is_empty(),
        "the suite's users are gone"
    );
    assert!(
        server.groups().await.is_empty(),
        "the suite's group is gone"
    );
}
