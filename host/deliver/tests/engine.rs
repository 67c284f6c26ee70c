//! The delivery engine against an in-memory directory that keeps the
//! target contract (see `directory`), on SQLite and on PostgreSQL: a
//! school's roster goes in, and the tests count what the school would
//! count in the directory: every pupil and teacher has an account, every
//! class its members and owners, leavers suspended and returners
//! re-enabled with the same account.

mod directory;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use directory::{Directory, EVERYTHING};
use rostersync_core::targets::{Action, Template};
use rostersync_deliver::{Backoff, DeliveryReport, Engine, TargetConfig, TargetKind, preview};
use rostersync_model::target::{Target, TargetCapability};
use rostersync_model::{Group, GroupKind, MemberRole, Membership, Person, Role, SyncError};
use rostersync_store::testing::{on_both_backends, roster_writes};
use rostersync_store::{
    AccountStatus, AccountWrite, DeliveryOutcome, HoldStatus, RunMode, RunRecord, Store, WriteSet,
};

const FIRST: [&str; 5] = ["Zoë", "Amir", "Siân", "Oluwaseun", "Chloé"];
const LAST: [&str; 3] = ["O'Neil", "Nguyễn", "Kowalski"];

/// A school: `pupils` pupils, two teachers, two classes (even and odd
/// pupils, each with a teacher) and one registration group of everyone.
struct School {
    people: Vec<Person>,
    groups: Vec<Group>,
    memberships: Vec<Membership>,
}

fn person(id: &str, role: Role, first: &str, last: &str) -> Person {
    let mut person = Person::new(id, role);
    person.first_name = Some(first.into());
    person.last_name = Some(last.into());
    person.mis_id = Some(format!("M{id}"));
    person.year_group = Some("Year 7".into());
    person
}

fn group(id: &str, kind: GroupKind, name: &str) -> Group {
    Group {
        id: id.into(),
        kind,
        name: Some(name.into()),
        code: Some(id.into()),
        subject: None,
        year_group: Some("7".into()),
        active: true,
        parent: None,
    }
}

fn member(group: &str, person: &str, role: MemberRole) -> Membership {
    Membership {
        group: group.into(),
        person: person.into(),
        role,
        start_date: None,
        end_date: None,
    }
}

impl School {
    fn new(pupils: usize) -> Self {
        let mut people: Vec<Person> = (0..pupils)
            .map(|i| {
                person(
                    &format!("S{i:02}"),
                    Role::Student,
                    FIRST[i % 5],
                    LAST[i % 3],
                )
            })
            .collect();
        people.push(person("T1", Role::Staff, "Ada", "Lovelace"));
        people.push(person("T2", Role::Staff, "Alan", "Turing"));
        let groups = vec![
            group("7A-Ma", GroupKind::Class, "7A Maths"),
            group("7B-En", GroupKind::Class, "7B English"),
            group("7A", GroupKind::Registration, "Form 7A"),
        ];
        let mut memberships = Vec::new();
        for (i, p) in people.iter().take(pupils).enumerate() {
            let class = if i % 2 == 0 { "7A-Ma" } else { "7B-En" };
            memberships.push(member(class, &p.id, MemberRole::Student));
            memberships.push(member("7A", &p.id, MemberRole::Student));
        }
        memberships.push(member("7A-Ma", "T1", MemberRole::Teacher));
        memberships.push(member("7B-En", "T2", MemberRole::Teacher));
        memberships.push(member("7A", "T1", MemberRole::Teacher));
        Self {
            people,
            groups,
            memberships,
        }
    }

    fn account(person: &str) -> String {
        format!("acc-{person}")
    }

    async fn store(&self, store: &Store) {
        store.ensure_connection("north", "wonde").await.unwrap();
        let writes = roster_writes("north", &self.people, &self.groups, &self.memberships);
        store.apply("north", &writes).await.unwrap();
    }

    /// Each group's members and owners by external (account) id, as the
    /// roster has them, by group name.
    fn expected_classes(
        &self,
        logins: &BTreeMap<String, String>,
    ) -> BTreeMap<String, (Vec<String>, Vec<String>)> {
        self.groups
            .iter()
            .map(|g| {
                let of = |teachers: bool| {
                    let mut names: Vec<String> = self
                        .memberships
                        .iter()
                        .filter(|m| m.group == g.id && (m.role == MemberRole::Teacher) == teachers)
                        .filter_map(|m| logins.get(&Self::account(&m.person)).cloned())
                        .collect();
                    names.sort();
                    names
                };
                (g.name.clone().unwrap(), (of(false), of(true)))
            })
            .collect()
    }
}

async fn set_status(store: &Store, people: &[&str], status: AccountStatus) {
    let accounts = people
        .iter()
        .map(|p| AccountWrite::SetStatus {
            id: School::account(p),
            status,
        })
        .collect();
    store
        .apply(
            "north",
            &WriteSet {
                accounts,
                ..WriteSet::new(RunRecord::new(RunMode::Full, "succeeded", Utc::now()))
            },
        )
        .await
        .unwrap();
}

fn config() -> TargetConfig {
    let mut config = TargetConfig::new("apps", TargetKind::Ldap);
    config.policy.domain = "school.org".into();
    config.policy.templates.email = Some(Template::fixed("{first}.{last}{n}@{domain}"));
    config.batch_size = 4;
    config.rate_per_second = Some(10_000.0);
    config
}

async fn deliver(
    store: &Store,
    config: &TargetConfig,
    directory: &Arc<Directory>,
) -> DeliveryReport {
    engine(store, config, directory).deliver().await.unwrap()
}

fn engine<'a>(
    store: &'a Store,
    config: &'a TargetConfig,
    directory: &Arc<Directory>,
) -> Engine<'a> {
    let target: Arc<dyn Target> = directory.clone();
    Engine::new(store, config, target).with_pacing(
        Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(50),
        },
        Duration::from_secs(30),
    )
}

/// External (account) id to login, as the directory holds them.
fn logins_by_account(directory: &Directory) -> BTreeMap<String, String> {
    directory.with(|s| {
        s.users
            .values()
            .filter_map(|u| Some((u.external_id.clone()?, u.username.clone())))
            .collect()
    })
}

#[tokio::test]
async fn every_pupil_and_teacher_gets_an_account_and_every_class_its_members() {
    on_both_backends(|store, _| async move {
        let school = School::new(16);
        school.store(&store).await;
        let directory = Arc::new(Directory::new(&EVERYTHING));
        let config = config();
        let report = deliver(&store, &config, &directory).await;

        let logins = logins_by_account(&directory);
        assert_eq!(logins.len(), 18, "sixteen pupils and two teachers");
        assert_eq!(logins["acc-S00"], "zoe.oneil");
        assert_eq!(logins["acc-S01"], "amir.nguyen");
        assert_eq!(logins["acc-S15"], "zoe.oneil2", "the second Zoë O'Neil");
        assert_eq!(directory.classes(), school.expected_classes(&logins));
        assert_eq!(report.count(Action::CreateUser), 18);
        assert_eq!(report.count(Action::CreateGroup), 3);
        assert_eq!(report.pending, 0);

        // Each new account's password was handed over once, and the one
        // the directory got is the one reported.
        assert_eq!(report.passwords.len(), 18);
        let sent = directory.with(|s| s.passwords.clone());
        let zoe = directory.logins()["zoe.oneil"].1.clone();
        let reported = report
            .passwords
            .iter()
            .find(|p| p.username == "zoe.oneil")
            .unwrap();
        assert_eq!(sent[&zoe], reported.password.reveal());
        let log = store.target_deliveries("apps", 1000).await.unwrap();
        let actions: Vec<Action> = log.iter().map(|l| l.action).collect();
        assert_eq!(log.len(), 21, "{actions:?}");
        for line in &log {
            assert_eq!(line.outcome, DeliveryOutcome::Done);
            assert!(
                sent.values().all(|p| !line.sent.contains(p.as_str())),
                "a password in the log"
            );
        }

        // Nothing changed: nothing is sent again.
        let calls = directory.with(|s| s.calls);
        let again = deliver(&store, &config, &directory).await;
        assert!(again.done.is_empty(), "{:?}", again.done);
        assert_eq!(directory.with(|s| s.calls), calls);
    })
    .await;
}

#[tokio::test]
async fn a_leaver_is_suspended_and_a_returner_gets_the_same_account_back() {
    on_both_backends(|store, _| async move {
        let school = School::new(12);
        school.store(&store).await;
        let directory = Arc::new(Directory::new(&EVERYTHING));
        let config = config();
        deliver(&store, &config, &directory).await;
        let (active, id) = directory.logins()["zoe.oneil"].clone();
        assert!(active);

        set_status(&store, &["S00"], AccountStatus::Deprovisioned).await;
        let left = deliver(&store, &config, &directory).await;
        assert_eq!(left.count(Action::SuspendUser), 1);
        assert_eq!(directory.logins()["zoe.oneil"], (false, id.clone()));
        let classes = directory.classes();
        assert!(!classes["7A Maths"].0.contains(&"zoe.oneil".to_string()));

        set_status(&store, &["S00"], AccountStatus::Active).await;
        let back = deliver(&store, &config, &directory).await;
        assert_eq!(back.count(Action::EnableUser), 1);
        assert_eq!(back.count(Action::CreateUser), 0, "never a second account");
        assert_eq!(directory.logins()["zoe.oneil"], (true, id));
        assert_eq!(directory.logins().len(), 14);
        assert_eq!(
            directory.classes(),
            school.expected_classes(&logins_by_account(&directory))
        );
    })
    .await;
}

#[tokio::test]
async fn a_mass_suspension_waits_for_a_confirm_of_what_was_reviewed() {
    on_both_backends(|store, _| async move {
        let school = School::new(12);
        school.store(&store).await;
        let directory = Arc::new(Directory::new(&EVERYTHING));
        let config = config();
        deliver(&store, &config, &directory).await;

        let leavers = ["S00", "S01", "S02", "S03", "S04", "S05"];
        set_status(&store, &leavers, AccountStatus::Deprovisioned).await;
        let held = deliver(&store, &config, &directory).await;
        let (id, hold) = held.hold.clone().expect("six of fourteen is over 10 %");
        assert_eq!(hold.suspend.len(), 6);
        assert!(
            directory.logins().values().all(|(active, _)| *active),
            "nobody suspended while held"
        );
        assert_eq!(
            directory.classes(),
            school.expected_classes(&logins_by_account(&directory))
        );
        let preview = engine(&store, &config, &directory).plan().await.unwrap();
        assert!(preview::csv(&preview).contains("suspend-user (held)"));

        assert!(
            store
                .answer_target_hold(id, "not-what-was-shown", HoldStatus::Confirmed, "ops")
                .await
                .is_err()
        );
        store
            .answer_target_hold(id, &hold.digest, HoldStatus::Confirmed, "ops")
            .await
            .unwrap();
        let released = deliver(&store, &config, &directory).await;
        assert!(released.hold.is_none());
        assert_eq!(released.count(Action::SuspendUser), 6);
        let suspended = directory
            .logins()
            .values()
            .filter(|(active, _)| !active)
            .count();
        assert_eq!(suspended, 6);
    })
    .await;
}

#[tokio::test]
async fn an_outage_and_a_retry_after_mid_delivery_lose_nothing() {
    on_both_backends(|store, _| async move {
        let school = School::new(12);
        school.store(&store).await;
        let directory = Arc::new(Directory::new(&EVERYTHING));
        directory.with(|s| {
            s.outages = vec![
                SyncError::Unavailable("503 from the directory".into()),
                SyncError::RateLimited {
                    retry_after_seconds: Some(1),
                    message: "429 from the directory".into(),
                },
                SyncError::Unavailable("503 from the directory".into()),
            ];
            s.retry_once.insert(School::account("S07"));
        });
        let config = config();
        let report = deliver(&store, &config, &directory).await;
        assert_eq!(report.failed_calls, 3);
        assert_eq!(report.retries, 1);
        assert_eq!(report.pending, 0);
        let logins = logins_by_account(&directory);
        assert_eq!(logins.len(), 14);
        assert_eq!(directory.classes(), school.expected_classes(&logins));
        let log = store.target_deliveries("apps", 1000).await.unwrap();
        let failed = log
            .iter()
            .filter(|l| l.outcome == DeliveryOutcome::Failed)
            .count();
        assert_eq!(failed, 12, "three failed calls of four changes each");
        let retried = log
            .iter()
            .find(|l| l.outcome == DeliveryOutcome::Retry)
            .unwrap();
        assert_eq!(retried.external_id, "acc-S07");
        assert_eq!(
            retried.error.as_deref(),
            Some("the directory is replicating")
        );
    })
    .await;
}

#[tokio::test]
async fn a_login_taken_in_the_directory_moves_on_to_the_next_number() {
    on_both_backends(|store, _| async move {
        let school = School::new(1);
        school.store(&store).await;
        let directory = Arc::new(Directory::new(&EVERYTHING));
        // Someone the roster does not know already has the name.
        directory.with(|s| {
            s.users.insert(
                "staff-room".into(),
                rostersync_model::target::HeldUser {
                    target_id: "staff-room".into(),
                    external_id: None,
                    username: "zoe.oneil".into(),
                    email: None,
                    given_name: None,
                    family_name: None,
                    display_name: None,
                    active: true,
                    container: None,
                },
            )
        });
        let config = config();
        let report = deliver(&store, &config, &directory).await;
        assert_eq!(report.conflicts, 1);
        assert_eq!(logins_by_account(&directory)["acc-S00"], "zoe.oneil2");
        let ledger = store.target_ledger("apps").await.unwrap();
        let zoe = ledger.iter().find(|e| e.external_id == "acc-S00").unwrap();
        assert_eq!(zoe.email.as_deref(), Some("zoe.oneil2@school.org"));
    })
    .await;
}

#[tokio::test]
async fn a_refused_change_is_not_sent_again_until_the_person_changes() {
    on_both_backends(|store, _| async move {
        let mut school = School::new(4);
        school.store(&store).await;
        let directory = Arc::new(Directory::new(&[TargetCapability::Suspend]));
        directory.with(|s| s.refuse.insert(School::account("S03")));
        let config = config();
        let report = deliver(&store, &config, &directory).await;
        assert_eq!(report.refused, 1);
        assert_eq!(report.pending, 1);
        let sent = directory.with(|s| s.keys.len());
        deliver(&store, &config, &directory).await;
        assert_eq!(directory.with(|s| s.keys.len()), sent, "not sent again");
        let waiting = store.target_changes("apps").await.unwrap();
        assert!(waiting[0].refused_at.is_some());
        assert_eq!(
            waiting[0].last_error.as_deref(),
            Some("acc-S03 is not allowed in this directory")
        );

        school.people[3].last_name = Some("Okafor".into());
        school.store(&store).await;
        directory.with(|s| s.refuse.clear());
        let again = deliver(&store, &config, &directory).await;
        assert_eq!(again.count(Action::CreateUser), 1);
        assert_eq!(logins_by_account(&directory)["acc-S03"], "oluwaseun.okafor");
    })
    .await;
}

#[tokio::test]
async fn reconcile_repairs_what_was_changed_by_hand_and_reports_it() {
    on_both_backends(|store, _| async move {
        let school = School::new(12);
        school.store(&store).await;
        let directory = Arc::new(Directory::new(&EVERYTHING));
        let config = config();
        deliver(&store, &config, &directory).await;
        set_status(&store, &["S11"], AccountStatus::Deprovisioned).await;
        deliver(&store, &config, &directory).await;

        let ids = directory.logins();
        directory.with(|s| {
            let maths = s
                .groups
                .values_mut()
                .find(|g| g.name == "7A Maths")
                .unwrap();
            maths.members.truncate(2);
            s.users.get_mut(&ids["amir.nguyen"].1).unwrap().display_name =
                Some("Someone Else".into());
            s.users.get_mut(&ids["sian.kowalski"].1).unwrap().active = false;
            s.users.get_mut(&ids["amir.kowalski"].1).unwrap().active = true;
            // Deleting an account in a directory takes it out of its groups.
            let chloe = ids["chloe.nguyen"].1.clone();
            s.users.remove(&chloe);
            for group in s.groups.values_mut() {
                group.members.retain(|m| *m != chloe);
            }
        });
        let report = engine(&store, &config, &directory)
            .reconcile()
            .await
            .unwrap();
        let repairs: BTreeMap<String, String> = report
            .repairs
            .iter()
            .map(|r| (r.object.clone(), r.drift.clone()))
            .collect();
        assert_eq!(
            repairs["7A Maths"], "members drifted: 4 missing, 0 extra",
            "{repairs:?}"
        );
        assert_eq!(repairs["amir.nguyen"], "changed by hand: display name");
        assert_eq!(repairs["sian.kowalski"], "disabled by hand");
        assert!(repairs["amir.kowalski"].starts_with("enabled by hand while suspended"));
        assert!(repairs["chloe.nguyen"].starts_with("missing from the target"));

        let mut logins = logins_by_account(&directory);
        logins.remove("acc-S11");
        assert_eq!(directory.classes(), school.expected_classes(&logins));
        let now = directory.logins();
        assert!(!now["amir.kowalski"].0 && now["sian.kowalski"].0 && now["chloe.nguyen"].0);
        assert_eq!(
            directory.with(|s| s.users[&ids["amir.nguyen"].1].display_name.clone()),
            Some("Amir Nguyễn".into())
        );
    })
    .await;
}

#[tokio::test]
async fn reconcile_finds_no_drift_in_classes_of_an_account_still_waiting() {
    on_both_backends(|store, _| async move {
        let school = School::new(4);
        school.store(&store).await;
        let directory = Arc::new(Directory::new(&EVERYTHING));
        // S03 (in 7B English and Form 7A) is refused, so never made.
        directory.with(|s| s.refuse.insert(School::account("S03")));
        let config = config();
        deliver(&store, &config, &directory).await;
        let report = engine(&store, &config, &directory)
            .reconcile()
            .await
            .unwrap();
        assert!(report.repairs.is_empty(), "{:?}", report.repairs);
        assert_eq!(report.pending, 1, "the refused account still waits");
    })
    .await;
}

#[tokio::test]
async fn reconcile_adopts_accounts_a_directory_already_has() {
    on_both_backends(|store, _| async move {
        let school = School::new(2);
        school.store(&store).await;
        let directory = Arc::new(Directory::new(&EVERYTHING));
        directory.with(|s| {
            s.users.insert(
                "existing".into(),
                rostersync_model::target::HeldUser {
                    target_id: "existing".into(),
                    external_id: None,
                    username: "zoe.oneil".into(),
                    email: Some("zoe.oneil@school.org".into()),
                    given_name: Some("Zoe".into()),
                    family_name: None,
                    display_name: None,
                    active: true,
                    container: None,
                },
            )
        });
        let config = config();
        let report = engine(&store, &config, &directory)
            .reconcile()
            .await
            .unwrap();
        assert_eq!(report.repairs[0].object, "zoe.oneil");
        assert_eq!(report.count(Action::CreateUser), 3, "the others are made");
        assert_eq!(
            report.count(Action::UpdateUser),
            1,
            "the adopted one is brought up to date"
        );
        let logins = directory.logins();
        assert_eq!(logins.len(), 4);
        assert_eq!(logins["zoe.oneil"].1, "existing");
    })
    .await;
}

#[tokio::test]
async fn a_preview_only_target_is_sent_nothing_and_a_failing_one_holds_up_no_other() {
    on_both_backends(|store, _| async move {
        let school = School::new(3);
        school.store(&store).await;
        let quiet = Arc::new(Directory::new(&EVERYTHING));
        let mut off = config();
        off.name = "off".into();
        off.enabled = false;
        let plan = engine(&store, &off, &quiet).plan().await.unwrap();
        let csv = preview::csv(&plan);
        assert_eq!(csv.lines().count(), 1 + 5 + 3);
        assert!(
            csv.contains("create-user,acc-S00,zoe.oneil,zoe.oneil@school.org"),
            "{csv}"
        );
        assert!(preview::table(&plan).starts_with("Action"));

        let broken = Arc::new(Directory::new(&EVERYTHING));
        broken.with(|s| {
            s.outages = vec![SyncError::Unauthorized("401: the token was revoked".into())]
        });
        let good = Arc::new(Directory::new(&EVERYTHING));
        let mut failing = config();
        failing.name = "broken".into();
        let store = Arc::new(store);
        let targets: Vec<(TargetConfig, Arc<dyn Target>)> = vec![
            (off, quiet.clone()),
            (failing, broken.clone()),
            (config(), good.clone()),
        ];
        let reports = rostersync_deliver::deliver_all(store.clone(), targets).await;
        assert!(reports[2].1.is_ok(), "{:?}", reports[2].1);
        assert!(reports[0].1.as_ref().unwrap().preview_only);
        assert_eq!(quiet.with(|s| s.calls), 0);
        let error = reports[1].1.as_ref().unwrap_err().to_string();
        assert!(
            error.contains("\"broken\"") && error.contains("revoked"),
            "{error}"
        );
        assert_eq!(good.logins().len(), 5);
    })
    .await;
}
