//! The demo's six connections, one per provider connector, synced from the
//! provider sandbox into a real store (SQLite, then PostgreSQL) as the demo
//! does (a held first run is confirmed, as the demo's operator does).
//! Counted as a school would count: per connection and role, the active
//! accounts are at least 95 % of the people of that role the provider
//! serves for the school, counted from the sandbox's own synthetic data
//! (`rostersync_sandbox::expected`, built from the generator, not from
//! anything rostersync wrote); and every such person without an account
//! has a standing issue saying why. The only people exempt are leavers
//! past the leaver window (twelve months after their leaving date), whom
//! the sandbox's data marks as gone.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rostersync_model::{EnrolmentStatus, Person, Record, Role};
use rostersync_runtime::Limits;
use rostersync_sandbox::{DropKind, Sandbox, SandboxConfig, expected};
use rostersync_store::testing::on_both_backends;
use rostersync_store::{RunMode, Store};
use rostersync_sync::{
    ConnectionConfig, PluginSource, RunRequest, RunStatus, confirm_hold, role_name, run,
};
use rostersync_tests::runtime_with;

const PROVIDERS: [&str; 6] = [
    "wonde",
    "clever",
    "arbor",
    "xporter",
    "scholarpack",
    "oneroster",
];

const SCHOOL: usize = 0;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 2).unwrap()
}

/// The people the provider serves for the school, by the sandbox's own
/// mapping of its synthetic data.
fn served(provider: &str, world: &rostersync_sandbox::generator::World) -> Vec<Person> {
    let records = match provider {
        "wonde" => expected::wonde(world, SCHOOL),
        "clever" => expected::clever(world, SCHOOL),
        "arbor" => expected::arbor(world, SCHOOL),
        "xporter" => expected::xporter(world, SCHOOL),
        "scholarpack" => expected::scholarpack(world, SCHOOL),
        "oneroster" => expected::oneroster(world, SCHOOL),
        other => panic!("no expectation for {other}"),
    };
    records
        .into_iter()
        .filter_map(|record| match record {
            Record::Person(person) => Some(person),
            _ => None,
        })
        // A leaver past the window is gone, not missing.
        .filter(|p| {
            p.enrolment != Some(EnrolmentStatus::Left)
                || p.leaving_date.is_none_or(|left| {
                    left.checked_add_months(chrono::Months::new(12))
                        .is_none_or(|end| end >= today())
                })
        })
        .collect()
}

async fn six_connections_provision_every_role(store: Store) {
    let (_plugins, runtime) = runtime_with(&PROVIDERS).await;
    let sandbox = Sandbox::start(SandboxConfig::default())
        .await
        .expect("the provider sandbox starts");
    let drop = tempfile::tempdir().unwrap();
    sandbox
        .write_oneroster_drop(drop.path(), SCHOOL, DropKind::Bulk)
        .unwrap();
    let world = sandbox.world();
    let mut shortfalls = Vec::new();
    for provider in PROVIDERS {
        let mut connection = ConnectionConfig::new(
            format!("demo-{provider}"),
            provider,
            sandbox.connector_settings(provider, SCHOOL),
        );
        if provider == "oneroster" {
            connection.drop_folder = Some(drop.path().to_path_buf());
        }
        let plugin = runtime.plugin(provider).expect("the connector loads");
        let source = PluginSource::new(plugin, &connection, Limits::default()).unwrap();
        let report = run(
            &store,
            &connection,
            &source,
            RunRequest::new(RunMode::Full, today()),
        )
        .await
        .unwrap();
        assert_ne!(report.status, RunStatus::Failed, "{provider}: {report:?}");
        if report.status == RunStatus::Held {
            let hold = store.open_hold(&connection.id).await.unwrap().unwrap();
            confirm_hold(&store, &connection, hold.id, &hold.digest, "operator")
                .await
                .unwrap();
        }

        let people = served(provider, &world);
        let links = store.links(&connection.id).await.unwrap();
        let accounts = store
            .accounts_by_role()
            .await
            .unwrap()
            .remove(&connection.id)
            .unwrap_or_default();
        let standing = store.standing_issues(&connection.id).await.unwrap();
        for role in [Role::Student, Role::Staff, Role::Contact] {
            let expected = people.iter().filter(|p| p.role == role).count() as i64;
            let active = accounts.get(role_name(role)).copied().unwrap_or_default();
            if active * 100 < expected * 95 {
                shortfalls.push(format!(
                    "{provider}: {active} of {expected} {} have an account",
                    role_name(role)
                ));
            }
        }
        let mut unexplained: BTreeMap<&str, usize> = BTreeMap::new();
        for person in &people {
            let explained = links.contains_key(&person.id)
                || standing
                    .iter()
                    .any(|s| s.issue.source_id == person.id && !s.issue.message.is_empty());
            if !explained {
                *unexplained.entry(role_name(person.role)).or_default() += 1;
            }
        }
        assert!(
            unexplained.is_empty(),
            "{provider}: people with neither an account nor an issue: {unexplained:?}"
        );
    }
    sandbox.shutdown().await;
    assert!(shortfalls.is_empty(), "{}", shortfalls.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demos_six_connections_provision_at_least_95_percent_of_every_role() {
    on_both_backends(|store, _| six_connections_provision_every_role(store)).await;
}
