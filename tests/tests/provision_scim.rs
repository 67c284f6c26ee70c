//! The whole path a school relies on, with real parts: the sandbox's Wonde
//! school, read by the Wonde connector into a real store (SQLite, then
//! PostgreSQL), provisioned by the delivery engine through the SCIM target
//! plugin into a real `scim2-server` (PyPI). What is checked is what the
//! server holds, read over its own HTTP API: a user for every pupil and
//! member of staff the school serves that has an account, every class with
//! exactly its members (from the sandbox's own data, not from anything
//! rostersync wrote), and a pupil deleted from the MIS suspended, not
//! deleted, in the server.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::NaiveDate;
use rostersync_core::targets::desired::group_external_id;
use rostersync_deliver::{Engine, TargetConfig, TargetKind};
use rostersync_model::target::Target;
use rostersync_model::{EnrolmentStatus, GroupKind, Record, Role, Settings};
use rostersync_runtime::{Limits, Runtime, Sandbox as TargetSandbox, TargetPlugin};
use rostersync_sandbox::{Mutation, Sandbox, SandboxConfig, expected};
use rostersync_store::testing::on_both_backends;
use rostersync_store::{AccountStatus, RunMode, Store};
use rostersync_sync::{ConnectionConfig, PluginSource, RunRequest, RunStatus, confirm_hold, run};
use rostersync_tests::runtime_with;
use rostersync_tests::scim::{ScimServer, installed};
use serde_json::Value;

const SCHOOL: usize = 0;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 2).unwrap()
}

/// A full read of the connection, with a hold confirmed as an operator
/// would after reviewing it.
async fn sync(store: &Store, runtime: &Runtime, connection: &ConnectionConfig) {
    let plugin = runtime.plugin(&connection.connector).unwrap();
    let source = PluginSource::new(plugin, connection, Limits::default()).unwrap();
    let report = run(
        store,
        connection,
        &source,
        RunRequest::new(RunMode::Full, today()),
    )
    .await
    .unwrap();
    assert_ne!(report.status, RunStatus::Failed, "{report:?}");
    if report.status == RunStatus::Held {
        let hold = store.open_hold(&connection.id).await.unwrap().unwrap();
        confirm_hold(store, connection, hold.id, &hold.digest, "operator")
            .await
            .unwrap();
    }
}

/// Delivers what is due; returns the accounts the engine left out and
/// says so: those it could make no login for, and those whose changes
/// still wait in its queue (a login or email taken in the server).
async fn deliver(store: &Store, config: &TargetConfig, target: &Arc<dyn Target>) -> Vec<String> {
    let report = Engine::new(store, config, Arc::clone(target))
        .deliver()
        .await
        .unwrap();
    assert_eq!(report.refused, 0, "{report:?}");
    assert!(report.hold.is_none(), "{report:?}");
    let waiting = store.target_changes(&config.name).await.unwrap();
    assert_eq!(waiting.len(), report.pending, "{report:?}");
    let mut left_out = report.unnamed;
    left_out.extend(waiting.into_iter().map(|change| change.item.external_id));
    left_out
}

/// The server's users by externalId.
async fn users_by_external_id(server: &ScimServer) -> BTreeMap<String, Value> {
    server
        .users()
        .await
        .into_iter()
        .filter_map(|u| Some((u["externalId"].as_str()?.to_string(), u)))
        .collect()
}

#[tokio::test]
async fn the_sandbox_school_lands_in_a_real_scim_server_and_a_leaver_is_suspended() {
    if !installed() {
        return;
    }
    on_both_backends(|store, _| async move {
        let (_plugins, runtime) = runtime_with(&["wonde", "scim"]).await;
        let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
        let connection = ConnectionConfig::new(
            "north-wonde",
            "wonde",
            sandbox.connector_settings("wonde", SCHOOL),
        );
        sync(&store, &runtime, &connection).await;

        let server = ScimServer::start().await;
        let settings = Settings::new().with("base-url", server.base.clone());
        let component = runtime.target("scim").expect("the SCIM target loads");
        let limits = Limits::default();
        let target_sandbox =
            TargetSandbox::for_target(&component.info, &settings, &[], limits).unwrap();
        let target: Arc<dyn Target> =
            Arc::new(TargetPlugin::new(component, &settings, target_sandbox).unwrap());
        let mut config = TargetConfig::new("apps", TargetKind::Plugin);
        config.plugin = Some("scim".into());
        config.settings = settings;
        config.policy.domain = "north.example.org".into();
        config.rate_per_second = Some(10_000.0);
        // Two passes, as two runs' deliveries would: a change planned again
        // after a conflict in the last round of the first goes in the second.
        deliver(&store, &config, &target).await;
        let unnamed = deliver(&store, &config, &target).await;

        // Every active pupil and teacher account is a user in the server,
        // or named in the report as one no login could be made for.
        let links = store.links(&connection.id).await.unwrap();
        let linked: BTreeSet<&String> = links.values().collect();
        let accounts: BTreeMap<String, String> = store
            .accounts()
            .await
            .unwrap()
            .into_iter()
            .filter(|a| linked.contains(&a.id) && a.status == AccountStatus::Active)
            .filter(|a| a.role == "student" || a.role == "staff")
            .map(|a| (a.id, a.role))
            .collect();
        let users = users_by_external_id(&server).await;
        let missing: BTreeSet<&String> = accounts
            .keys()
            .filter(|account| !users.contains_key(*account))
            .collect();
        assert_eq!(
            missing,
            unnamed
                .iter()
                .filter(|id| accounts.contains_key(*id))
                .collect::<BTreeSet<_>>(),
            "everyone left out of the server is reported, unnamed or waiting in the queue"
        );
        assert!(
            users.keys().all(|user| accounts.contains_key(user)),
            "the server holds only the pupils' and staff's accounts"
        );
        assert!(users.values().all(|u| u["active"] == true));
        // Counted against the school itself: at least 95 % of its pupils on
        // roll and all its staff, as the provisioning suite holds for accounts.
        let world = sandbox.world();
        let records = expected::wonde(&world, SCHOOL);
        let served = |role: Role| {
            records
                .iter()
                .filter(|r| {
                    matches!(r, Record::Person(p) if p.role == role
                        && matches!(p.enrolment, None | Some(EnrolmentStatus::OnRoll)))
                })
                .count()
        };
        let held = |role: &str| {
            users
                .keys()
                .filter(|user| accounts.get(*user).is_some_and(|r| r == role))
                .count()
        };
        assert!(held("student") * 100 >= served(Role::Student) * 95);
        assert_eq!(held("staff"), served(Role::Staff));

        // Every class is a group with exactly its members, by the
        // sandbox's own memberships.
        let id_of: BTreeMap<String, String> = users
            .iter()
            .map(|(external, u)| (u["id"].as_str().unwrap().to_string(), external.clone()))
            .collect();
        let groups: BTreeMap<String, BTreeSet<String>> = server
            .groups()
            .await
            .into_iter()
            .filter_map(|g| {
                let members = g["members"]
                    .as_array()
                    .map(|m| {
                        m.iter()
                            .filter_map(|m| id_of.get(m["value"].as_str()?).cloned())
                            .collect()
                    })
                    .unwrap_or_default();
                Some((g["externalId"].as_str()?.to_string(), members))
            })
            .collect();
        let mut classes = 0;
        for record in &records {
            let Record::Group(group) = record else {
                continue;
            };
            // A class the MIS sends without a name is left out by
            // validation, with a standing issue saying so.
            if group.kind != GroupKind::Class || !group.active || group.name.is_none() {
                continue;
            }
            classes += 1;
            let want: BTreeSet<String> = records
                .iter()
                .filter_map(|r| match r {
                    Record::Membership(m) if m.group == group.id => links.get(&m.person).cloned(),
                    _ => None,
                })
                .filter(|account| users.contains_key(account))
                .collect();
            let external = group_external_id(&connection.id, &group.id);
            assert_eq!(
                groups.get(&external),
                Some(&want),
                "class {} ({external}) has exactly its members",
                group.name.as_deref().unwrap_or("?")
            );
        }
        assert!(classes > 0, "the school has classes");

        // A pupil deleted from the MIS is suspended in the server, not
        // deleted. (The sandbox picks the pupil: one whose account is not in
        // the server, being left out above, would prove nothing, so another
        // goes until one that is.)
        let mut suspended_account = None;
        for _ in 0..5 {
            sandbox
                .mutate(SCHOOL, Mutation::RemovePupil { pupil: None })
                .unwrap();
            sync(&store, &runtime, &connection).await;
            let deprovisioned: Vec<String> = store
                .accounts()
                .await
                .unwrap()
                .into_iter()
                .filter(|a| a.status == AccountStatus::Deprovisioned && users.contains_key(&a.id))
                .map(|a| a.id)
                .collect();
            if let Some(first) = deprovisioned.into_iter().next() {
                suspended_account = Some(first);
                break;
            }
        }
        let suspended_account =
            suspended_account.expect("a removed pupil had an account in the server");
        deliver(&store, &config, &target).await;
        let after = users_by_external_id(&server).await;
        let suspended: Vec<&String> = after
            .iter()
            .filter(|(_, u)| u["active"] == false)
            .map(|(external, _)| external)
            .collect();
        assert_eq!(
            suspended,
            [&suspended_account],
            "the leaver is suspended, and nobody else"
        );
        assert_eq!(after.len(), users.len(), "nobody is deleted");
    })
    .await;
}
