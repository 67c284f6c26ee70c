//! The conformance suite on real components: the template's committed
//! fixtures replay offline; recording captures what replay needs and no
//! secret; and each check fails when its rule is broken.
//!
//! `UPDATE_TEMPLATE_FIXTURES=1 cargo test -p rostersync-tests --test
//! conformance` re-records the template's fixtures against the Example SIS.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rostersync_conformance::fixtures::PhaseFixture;
use rostersync_conformance::{Outcome, Report, SuiteOptions, Traffic, run_suite};
use rostersync_model::Settings;
use rostersync_runtime::{Limits, Plugin};
use rostersync_tests::{example_sis, runtime_with, workspace};

async fn plugin(name: &str) -> (tempfile::TempDir, Arc<Plugin>) {
    let (dir, runtime) = runtime_with(&[name]).await;
    let plugin = runtime.plugin(name).unwrap();
    (dir, plugin)
}

async fn suite(
    plugin: Arc<Plugin>,
    fixtures_dir: &Path,
    traffic: Traffic,
    settings: Option<Settings>,
) -> Report {
    run_suite(
        plugin,
        SuiteOptions {
            settings,
            fixtures_dir: fixtures_dir.to_path_buf(),
            traffic,
            limits: Limits::default(),
        },
    )
    .await
    .unwrap()
}

fn template_fixtures() -> PathBuf {
    workspace().join("connectors/template/fixtures")
}

/// A copy of the template's fixtures to tamper with.
fn fixtures_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(template_fixtures()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    dir
}

fn edit_fixture(dir: &Path, phase: &str, edit: impl FnOnce(&mut PhaseFixture)) {
    let path = dir.join(format!("{phase}.json"));
    let mut fixture: PhaseFixture =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut fixture);
    std::fs::write(path, serde_json::to_string(&fixture).unwrap()).unwrap();
}

fn failure<'a>(report: &'a Report, check: &str) -> &'a str {
    match report.outcome(check) {
        Some(Outcome::Failed(why)) => why,
        other => panic!("expected {check:?} to fail, got {other:?}\n{report}"),
    }
}

async fn example_settings() -> Settings {
    let (_addr, base) = example_sis::start().await;
    Settings::new()
        .with("base-url", base)
        .with("api-token", example_sis::TOKEN)
}

#[tokio::test]
async fn the_template_passes_from_its_committed_fixtures() {
    let (_dir, template) = plugin("template").await;
    if std::env::var_os("UPDATE_TEMPLATE_FIXTURES").is_some() {
        let report = suite(
            template.clone(),
            &template_fixtures(),
            Traffic::Record,
            Some(example_settings().await),
        )
        .await;
        assert!(report.passed(), "{report}");
    }
    let report = suite(template, &template_fixtures(), Traffic::Replay, None).await;
    assert!(report.passed(), "{report}");
    assert_eq!(report.checks.len(), 7);
    assert!(
        report.checks.iter().all(|c| c.outcome == Outcome::Passed),
        "{report}"
    );
}

#[tokio::test]
async fn recording_then_replaying_passes_and_keeps_the_token_out() {
    let (_dir, template) = plugin("template").await;
    let fixtures = tempfile::tempdir().unwrap();
    let recorded = suite(
        template.clone(),
        fixtures.path(),
        Traffic::Record,
        Some(example_settings().await),
    )
    .await;
    assert!(recorded.passed(), "{recorded}");
    for entry in std::fs::read_dir(fixtures.path()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(
            !text.contains(example_sis::TOKEN),
            "the token leaked into a fixture"
        );
    }
    let full: PhaseFixture = serde_json::from_str(
        &std::fs::read_to_string(fixtures.path().join("full-1.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(full.interactions.len(), 3, "three pages of people");
    let replayed = suite(template, fixtures.path(), Traffic::Replay, None).await;
    assert!(replayed.passed(), "{replayed}");
}

#[tokio::test]
async fn a_fixture_no_request_used_fails_the_suite() {
    let (_dir, template) = plugin("template").await;
    let fixtures = fixtures_copy();
    edit_fixture(fixtures.path(), "full-2", |f| {
        let mut extra = f.interactions[0].clone();
        extra.url = format!("{}&unused=1", extra.url);
        f.interactions.push(extra);
    });
    let report = suite(template, fixtures.path(), Traffic::Replay, None).await;
    let why = failure(&report, "a second full snapshot yields the same records");
    assert!(
        why.starts_with("fixtures never requested: GET ") && why.ends_with("&unused=1"),
        "{why}"
    );
}

#[tokio::test]
async fn a_request_no_fixture_covers_fails_the_suite() {
    let (_dir, template) = plugin("template").await;
    let fixtures = fixtures_copy();
    edit_fixture(fixtures.path(), "full-1", |f| {
        f.interactions.pop();
    });
    let report = suite(template, fixtures.path(), Traffic::Replay, None).await;
    let why = failure(&report, "a full snapshot completes");
    assert!(
        why.contains("no fixture for GET ") && why.contains("page=3"),
        "{why}"
    );
}

#[tokio::test]
async fn accepting_bad_credentials_fails_the_suite() {
    let (_dir, template) = plugin("template").await;
    let fixtures = fixtures_copy();
    let good_answer = {
        let check: PhaseFixture = serde_json::from_str(
            &std::fs::read_to_string(fixtures.path().join("check.json")).unwrap(),
        )
        .unwrap();
        check.interactions[0].clone()
    };
    edit_fixture(fixtures.path(), "check-unauthorized", |f| {
        f.interactions[0].status = good_answer.status;
        f.interactions[0].body = good_answer.body.clone();
    });
    let report = suite(template, fixtures.path(), Traffic::Replay, None).await;
    let why = failure(&report, "check refuses bad credentials");
    assert!(
        why.contains("succeeded") && why.contains("Example Community School"),
        "{why}"
    );
}

#[tokio::test]
async fn a_request_outside_the_allowed_hosts_fails_the_suite() {
    let (_dir, probe) = plugin("probe").await;
    let fixtures = tempfile::tempdir().unwrap();
    let settings = Settings::new()
        .with("behaviour", "fetch")
        .with("base-url", "http://127.0.0.1:9")
        .with("url", "http://127.0.0.2:9/elsewhere");
    let report = suite(probe, fixtures.path(), Traffic::Live, Some(settings)).await;
    let why = failure(&report, "no request left the allowed hosts");
    assert!(
        why.contains("http://127.0.0.2:9 is not an allowed host"),
        "{why}"
    );
}
