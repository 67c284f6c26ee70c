//! The whole path a school relies on, with real parts, into each kind of
//! target: the sandbox's Wonde school, read by the Wonde connector into a
//! real store (SQLite, then PostgreSQL), delivered by the engine into
//!
//! - a real SCIM 2.0 service (`scim2-server` from PyPI) through the SCIM
//!   target plugin, and
//! - a real OpenLDAP (Debian's `slapd`) through the host's LDAP target,
//!
//! each behind a TCP front that can fail mid-delivery. What is checked is
//! what the server holds, read over its own protocol, never through the
//! target: a user for every pupil and member of staff with an account (or
//! the account named as left out, with why), every class with exactly its
//! members by the sandbox's own memberships. Then the lifecycle a school
//! lives through, in order:
//!
//! 1. a pupil deleted from the MIS is suspended, not deleted;
//! 2. the pupil comes back within the grace period and is enabled again
//!    under the same id in the target, back in their classes;
//! 3. a member taken out of a class by hand is put back by reconcile,
//!    which reports the repair;
//! 4. the target goes down in the middle of delivering new pupils: the
//!    delivery is retried and nothing is lost or made twice;
//! 5. a mass removal at the source is held by the target's own threshold,
//!    changes nothing until confirmed, then suspends exactly those pupils.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use rostersync_core::targets::desired::group_external_id;
use rostersync_deliver::{Backoff, DeliveryReport, Engine, TargetConfig, TargetKind};
use rostersync_ldap::LdapTarget;
use rostersync_ldap::settings::name;
use rostersync_model::target::Target;
use rostersync_model::{EnrolmentStatus, GroupKind, Record, Role, Settings};
use rostersync_runtime::{Limits, Runtime, Sandbox as TargetSandbox, TargetPlugin};
use rostersync_sandbox::{Mutation, Sandbox, SandboxConfig, SandboxHandle, Size, expected};
use rostersync_store::testing::on_both_backends;
use rostersync_store::{HoldStatus, RunMode, Store};
use rostersync_sync::{ConnectionConfig, PluginSource, RunRequest, RunStatus, confirm_hold, run};
use rostersync_tests::outage::Outage;
use rostersync_tests::scim::{self, ScimServer};
use rostersync_tests::slapd::{ROOT_DN, ROOT_PASSWORD, SUFFIX, Slapd};
use rostersync_tests::{active_accounts, runtime_with};

const SCHOOL: usize = 0;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 3).unwrap()
}

/// What a target holds, read straight from its server, by external id.
#[derive(Debug, Clone, Default, PartialEq)]
struct Holding {
    /// Each user's id in the target, and whether it is active.
    users: BTreeMap<String, (String, bool)>,
    /// Each group's members, by their external ids.
    groups: BTreeMap<String, BTreeSet<String>>,
    /// Users holding an external id another user holds too.
    duplicates: Vec<String>,
}

impl Holding {
    fn active(&self, external_id: &str) -> Option<bool> {
        self.users.get(external_id).map(|(_, active)| *active)
    }
}

/// The server behind a target, read and edited over its own protocol.
enum Server {
    Scim(ScimServer),
    Ldap(Slapd),
}

impl Server {
    async fn holding(&self) -> Holding {
        let mut holding = Holding::default();
        match self {
            Server::Scim(server) => {
                let mut external_of = BTreeMap::new();
                for user in server.users().await {
                    let (Some(external), Some(id)) =
                        (user["externalId"].as_str(), user["id"].as_str())
                    else {
                        continue;
                    };
                    external_of.insert(id.to_string(), external.to_string());
                    let active = user["active"] != false;
                    if holding
                        .users
                        .insert(external.into(), (id.into(), active))
                        .is_some()
                    {
                        holding.duplicates.push(external.into());
                    }
                }
                for group in server.groups().await {
                    let Some(external) = group["externalId"].as_str() else {
                        continue;
                    };
                    let members = group["members"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|m| external_of.get(m["value"].as_str()?).cloned())
                        .collect();
                    holding.groups.insert(external.into(), members);
                }
            }
            Server::Ldap(slapd) => {
                let mut external_of = BTreeMap::new();
                for entry in slapd.search(SUFFIX, "(objectClass=inetOrgPerson)").await {
                    let Some(external) = entry.attrs.get("employeeNumber").and_then(|v| v.first())
                    else {
                        continue;
                    };
                    external_of.insert(entry.dn.to_lowercase(), external.clone());
                    let suspended = entry
                        .attrs
                        .get("employeeType")
                        .is_some_and(|v| v.iter().any(|t| t == "suspended"));
                    if holding
                        .users
                        .insert(external.clone(), (entry.dn.clone(), !suspended))
                        .is_some()
                    {
                        holding.duplicates.push(external.clone());
                    }
                }
                for entry in slapd.search(SUFFIX, "(objectClass=groupOfNames)").await {
                    let Some(external) =
                        entry.attrs.get("businessCategory").and_then(|v| v.first())
                    else {
                        continue;
                    };
                    // Teachers are the class's owners (RFC 4519 §2.23).
                    let members = ["member", "owner"]
                        .iter()
                        .filter_map(|attribute| entry.attrs.get(*attribute))
                        .flatten()
                        .filter_map(|dn| external_of.get(&dn.to_lowercase()).cloned())
                        .collect();
                    holding.groups.insert(external.clone(), members);
                }
            }
        }
        holding
    }

    /// An administrator's hand-made change: `user` (its target id) taken
    /// out of the group whose external id is `group`.
    async fn drop_member(&self, group: &str, user: &str) {
        match self {
            Server::Scim(server) => {
                let id = server
                    .groups()
                    .await
                    .into_iter()
                    .find(|g| g["externalId"] == group)
                    .and_then(|g| g["id"].as_str().map(str::to_string))
                    .expect("the group is in the service");
                server.remove_member(&id, user).await;
            }
            Server::Ldap(slapd) => {
                let found = slapd
                    .search(SUFFIX, &format!("(businessCategory={group})"))
                    .await;
                let dn = &found.first().expect("the group is in the directory").dn;
                let mut ldap = slapd.admin().await;
                ldap.modify(
                    dn,
                    vec![ldap3::Mod::Delete(
                        "member".to_string(),
                        std::collections::HashSet::from([user.to_string()]),
                    )],
                )
                .await
                .unwrap()
                .success()
                .unwrap();
            }
        }
    }
}

/// One target under test: its server, the front that can fail, and the
/// target as the engine drives it.
struct Provisioned {
    server: Server,
    front: Outage,
    config: TargetConfig,
    target: Arc<dyn Target>,
}

async fn scim_target(runtime: &Runtime) -> Provisioned {
    let server = ScimServer::start().await;
    let front = Outage::start(server.addr()).await;
    let settings = Settings::new().with("base-url", format!("http://{}/v2", front.addr));
    let component = runtime.target("scim").expect("the SCIM target loads");
    let sandbox =
        TargetSandbox::for_target(&component.info, &settings, &[], Limits::default()).unwrap();
    let target: Arc<dyn Target> =
        Arc::new(TargetPlugin::new(component, &settings, sandbox).unwrap());
    let mut config = TargetConfig::new("apps", TargetKind::Plugin);
    config.plugin = Some("scim".into());
    config.settings = settings;
    Provisioned {
        server: Server::Scim(server),
        front,
        config,
        target,
    }
}

async fn ldap_target() -> Provisioned {
    let slapd = Slapd::start().await;
    let upstream = slapd
        .url()
        .trim_start_matches("ldap://")
        .parse()
        .expect("slapd's address");
    let front = Outage::start(upstream).await;
    let settings = Settings::new()
        .with(name::URL, format!("ldap://{}", front.addr))
        .with(name::BIND_DN, ROOT_DN)
        .with(name::BIND_PASSWORD, ROOT_PASSWORD)
        .with(name::BASE_DN, SUFFIX);
    let target: Arc<dyn Target> = Arc::new(LdapTarget::open(&settings).unwrap());
    let mut config = TargetConfig::new("directory", TargetKind::Ldap);
    config.settings = settings;
    Provisioned {
        server: Server::Ldap(slapd),
        front,
        config,
        target,
    }
}

/// The school, its connection and its store, with the target.
struct School<'a> {
    store: &'a Store,
    runtime: &'a Runtime,
    sandbox: &'a SandboxHandle,
    connection: ConnectionConfig,
    to: Provisioned,
}

impl School<'_> {
    /// A full read, with a hold confirmed as an operator would after
    /// reviewing it.
    async fn sync(&self) {
        let plugin = self.runtime.plugin(&self.connection.connector).unwrap();
        let source = PluginSource::new(plugin, &self.connection, Limits::default()).unwrap();
        let report = run(
            self.store,
            &self.connection,
            &source,
            RunRequest::new(RunMode::Full, today()),
        )
        .await
        .unwrap();
        assert_ne!(report.status, RunStatus::Failed, "{report:?}");
        if report.status == RunStatus::Held {
            let hold = self.store.open_hold(&self.connection.id).await.unwrap();
            let hold = hold.unwrap();
            confirm_hold(
                self.store,
                &self.connection,
                hold.id,
                &hold.digest,
                "operator",
            )
            .await
            .unwrap();
        }
    }

    /// The engine, with quick backoff, waiting up to `patience` for
    /// retries the target asked for (a directory asks 5 s after a dropped
    /// connection).
    fn engine(&self) -> Engine<'_> {
        let quick = Backoff {
            base: Duration::from_millis(50),
            max: Duration::from_millis(400),
        };
        Engine::new(self.store, &self.to.config, Arc::clone(&self.to.target))
            .with_pacing(quick, Duration::from_secs(8))
    }

    async fn deliver(&self) -> DeliveryReport {
        let report = self.engine().deliver().await.unwrap();
        assert_eq!(report.refused, 0, "{report:?}");
        report
    }

    /// Delivers until nothing planned is left that a delivery could do:
    /// two passes, as two runs' deliveries would (a change planned again
    /// after a conflict in the last round of the first goes in the second).
    async fn deliver_all(&self) -> Vec<String> {
        self.deliver().await;
        let report = self.deliver().await;
        assert!(report.hold.is_none(), "{report:?}");
        let waiting = self.store.target_changes(&self.to.config.name).await;
        let mut left_out = report.unnamed;
        left_out.extend(waiting.unwrap().into_iter().map(|c| c.item.external_id));
        left_out
    }

    /// Checks the target against the roster: every active account is an
    /// active user there or named in `left_out`; nothing else is active
    /// there; every class has exactly its members by the sandbox's own
    /// memberships. Returns what the target holds.
    async fn holds_the_roster(&self, left_out: &[String]) -> Holding {
        let holding = self.to.server.holding().await;
        assert!(holding.duplicates.is_empty(), "{:?}", holding.duplicates);
        let accounts = active_accounts(self.store, &self.connection.id).await;
        let active: BTreeSet<&String> = holding
            .users
            .iter()
            .filter(|(_, (_, active))| *active)
            .map(|(external, _)| external)
            .collect();
        let missing: BTreeSet<&String> = accounts
            .keys()
            .filter(|account| !active.contains(account))
            .collect();
        let named: BTreeSet<&String> = left_out
            .iter()
            .filter(|id| accounts.contains_key(*id))
            .collect();
        assert_eq!(
            missing, named,
            "everyone left out of the target is reported, unnamed or waiting in the queue"
        );
        assert!(
            active.iter().all(|user| accounts.contains_key(*user)),
            "only the school's active pupils and staff are active in the target"
        );
        // Counted against the school itself: at least 95 % of its pupils
        // on roll and all its staff.
        let world = self.sandbox.world();
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
            active
                .iter()
                .filter(|user| accounts.get(**user).is_some_and(|r| r == role))
                .count()
        };
        assert!(held("student") * 100 >= served(Role::Student) * 95);
        assert_eq!(held("staff"), served(Role::Staff));

        let links = self.store.links(&self.connection.id).await.unwrap();
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
                .filter(|account| active.contains(account))
                .collect();
            let external = group_external_id(&self.connection.id, &group.id);
            assert_eq!(
                holding.groups.get(&external),
                Some(&want),
                "class {} ({external}) has exactly its members",
                group.name.as_deref().unwrap_or("?")
            );
        }
        assert!(classes > 0, "the school has classes");
        holding
    }

    /// Pupils on roll (sandbox ids) whose accounts are active users in
    /// the target, with those accounts.
    async fn pupils_in_target(&self, holding: &Holding) -> Vec<(u64, String)> {
        let world = self.sandbox.world();
        let records = expected::wonde(&world, SCHOOL);
        let links = self.store.links(&self.connection.id).await.unwrap();
        world.schools[SCHOOL]
            .live_students()
            .filter(|s| s.status == EnrolmentStatus::OnRoll)
            .filter_map(|student| {
                let person = records.iter().find_map(|r| match r {
                    Record::Person(p)
                        if p.role == Role::Student
                            && p.mis_id.as_deref() == Some(&student.mis_id) =>
                    {
                        Some(p.id.clone())
                    }
                    _ => None,
                })?;
                let account = links.get(&person)?;
                (holding.active(account) == Some(true)).then(|| (student.uid, account.clone()))
            })
            .collect()
    }
}

async fn lifecycle(store: &Store, to: Provisioned) {
    let (_plugins, runtime) = runtime_with(&["wonde", "scim"]).await;
    let sandbox = Sandbox::start(SandboxConfig {
        size: Size {
            schools: 1,
            pupils_per_school: 80,
        },
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let mut to = to;
    to.config.policy.domain = "north.example.org".into();
    let school = School {
        store,
        runtime: &runtime,
        sandbox: &sandbox,
        connection: ConnectionConfig::new(
            "north-wonde",
            "wonde",
            sandbox.connector_settings("wonde", SCHOOL),
        ),
        to,
    };
    let name = school.to.config.name.clone();
    school.sync().await;
    let left_out = school.deliver_all().await;
    let first = school.holds_the_roster(&left_out).await;

    eprintln!("step: 1. A pupil deleted");
    // 1. A pupil deleted from the MIS is suspended, not deleted.
    let pupils = school.pupils_in_target(&first).await;
    let (leaver, account) = pupils.first().cloned().expect("pupils in the target");
    sandbox
        .mutate(
            SCHOOL,
            Mutation::RemovePupil {
                pupil: Some(leaver),
            },
        )
        .unwrap();
    school.sync().await;
    let left_out = school.deliver_all().await;
    let after = school.to.server.holding().await;
    let suspended: Vec<&String> = after
        .users
        .iter()
        .filter(|(_, (_, active))| !active)
        .map(|(external, _)| external)
        .collect();
    assert_eq!(
        suspended,
        [&account],
        "the leaver is suspended, and nobody else"
    );
    assert_eq!(after.users.len(), first.users.len(), "nobody is deleted");
    assert!(
        first
            .groups
            .values()
            .any(|members| members.contains(&account)),
        "the leaver was in a class"
    );
    let still_in: Vec<&String> = after
        .groups
        .iter()
        .filter(|(_, members)| members.contains(&account))
        .map(|(group, _)| group)
        .collect();
    assert!(
        still_in.is_empty(),
        "a suspended account leaves its groups in the target: {still_in:?}"
    );
    school.holds_the_roster(&left_out).await;

    eprintln!("step: 2. Back within");
    // 2. Back within the grace period: enabled again, same id, same classes.
    sandbox
        .mutate(SCHOOL, Mutation::ReturnPupil { pupil: leaver })
        .unwrap();
    school.sync().await;
    let left_out = school.deliver_all().await;
    let back = school.holds_the_roster(&left_out).await;
    assert_eq!(
        back.users.get(&account),
        first.users.get(&account),
        "the returning pupil is enabled under the same id, not made again"
    );
    assert_eq!(back.users.len(), first.users.len());
    assert_eq!(back.groups, first.groups, "back in the same classes");

    eprintln!("step: 3. Drift made");
    // 3. Drift made by hand is repaired by reconcile, and reported.
    let (class, members) = back
        .groups
        .iter()
        .find(|(_, members)| !members.is_empty())
        .expect("a class with members");
    let member = members.first().unwrap();
    let member_id = back.users[member].0.clone();
    school.to.server.drop_member(class, &member_id).await;
    assert!(!school.to.server.holding().await.groups[class].contains(member));
    let report = school.engine().reconcile().await.unwrap();
    assert_eq!(
        report
            .repairs
            .iter()
            .map(|r| r.drift.as_str())
            .collect::<Vec<_>>(),
        ["members drifted: 1 missing, 0 extra"],
        "the one repair, to {class}, is reported: {:?}",
        report.repairs
    );
    let repaired = school.holds_the_roster(&left_out).await;
    assert_eq!(repaired.groups, back.groups);

    eprintln!("step: 4. The target goes down");
    // 4. The target goes down in the middle of delivering new pupils.
    for _ in 0..4 {
        sandbox.mutate(SCHOOL, Mutation::AddPupil).unwrap();
    }
    school.sync().await;
    school.to.front.fail_after(600);
    let report = school.engine().deliver().await.unwrap();
    assert!(school.to.front.is_down(), "the outage came mid-delivery");
    assert!(report.failed_calls + report.retries > 0, "{report:?}");
    let waiting = store.target_changes(&name).await.unwrap();
    assert!(!waiting.is_empty(), "what was not delivered waits");
    school.to.front.restore();
    let left_out = school.deliver_all().await;
    let recovered = school.holds_the_roster(&left_out).await;
    assert_eq!(
        recovered.users.len(),
        repaired.users.len() + 4,
        "each new pupil is made once"
    );

    eprintln!("step: 5. A mass removal");
    // 5. A mass removal is held by the target's own threshold.
    let pupils = school.pupils_in_target(&recovered).await;
    let active = recovered.users.values().filter(|(_, a)| *a).count();
    let leaving: Vec<(u64, String)> = pupils.into_iter().take(active / 6).collect();
    for (pupil, _) in &leaving {
        sandbox
            .mutate(
                SCHOOL,
                Mutation::RemovePupil {
                    pupil: Some(*pupil),
                },
            )
            .unwrap();
    }
    school.sync().await;
    let report = school.engine().deliver().await.unwrap();
    let (hold, held) = report.hold.clone().expect("the mass suspension is held");
    let expected: BTreeSet<&String> = leaving.iter().map(|(_, a)| a).collect();
    // The evidence names each account as "login (account id)".
    let in_evidence: BTreeSet<&str> = held
        .suspend
        .iter()
        .filter_map(|line| line.rsplit_once(" (")?.1.strip_suffix(')'))
        .collect();
    assert_eq!(
        in_evidence,
        expected.iter().map(|a| a.as_str()).collect::<BTreeSet<_>>()
    );
    let during = school.to.server.holding().await;
    assert!(
        expected.iter().all(|a| during.active(a) == Some(true)),
        "nothing is suspended while the hold waits"
    );
    store
        .answer_target_hold(hold, &held.digest, HoldStatus::Confirmed, "operator")
        .await
        .unwrap();
    let left_out = school.deliver_all().await;
    let after = school.holds_the_roster(&left_out).await;
    let suspended: BTreeSet<&String> = after
        .users
        .iter()
        .filter(|(_, (_, active))| !active)
        .map(|(external, _)| external)
        .collect();
    assert_eq!(suspended, expected, "exactly those pupils are suspended");
    assert_eq!(
        after.users.len(),
        recovered.users.len(),
        "nobody is deleted"
    );
}

#[tokio::test]
async fn a_school_lives_through_its_year_in_a_real_scim_service() {
    if !scim::installed() {
        return;
    }
    on_both_backends(|store, _| async move {
        let (_plugins, runtime) = runtime_with(&["scim"]).await;
        lifecycle(&store, scim_target(&runtime).await).await;
    })
    .await;
}

#[tokio::test]
async fn a_school_lives_through_its_year_in_a_real_openldap() {
    on_both_backends(|store, _| async move {
        lifecycle(&store, ldap_target().await).await;
    })
    .await;
}
