//! The SCIM 2.0 target, built as a component and driven through the
//! runtime (the way the delivery engine drives it), against a real
//! `scim2-server` from PyPI. Every test reads what the service holds over
//! plain HTTP, never through the plugin, and counts what a school would:
//! every pupil and teacher has an account, every class its members.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rostersync_model::target::{
    ChangeItem, ChangeResult, HeldObject, MemberChange, ObjectKind, ObjectRef, Outcome, Target,
    TargetChange, TargetGroup, TargetGroupKind, TargetRole, TargetUser,
};
use rostersync_model::{Settings, SyncError};
use rostersync_runtime::{Limits, Sandbox, TargetPlugin};
use rostersync_tests::runtime_with;
use rostersync_tests::scim::{GatewayFront, ScimServer, Trip, installed};
use serde_json::{Value, json};

/// The SCIM target from the plugin folder, bound to `settings`.
async fn scim_target(settings: Settings) -> (tempfile::TempDir, TargetPlugin) {
    let (dir, runtime) = runtime_with(&["scim"]).await;
    let component = runtime
        .target("scim")
        .expect("the SCIM target is in service");
    let sandbox = Sandbox::for_target(&component.info, &settings, &[], Limits::default()).unwrap();
    (
        dir,
        TargetPlugin::new(component, &settings, sandbox).unwrap(),
    )
}

async fn target_for(base: &str) -> (tempfile::TempDir, TargetPlugin) {
    scim_target(Settings::new().with("base-url", base)).await
}

fn user(id: &str, given: &str, family: &str, role: TargetRole) -> TargetUser {
    let username = format!("{}.{}", given.to_lowercase(), family.to_lowercase());
    TargetUser {
        external_id: id.into(),
        email: Some(format!("{username}@school.example")),
        username,
        given_name: Some(given.into()),
        family_name: Some(family.into()),
        display_name: format!("{given} {family}"),
        role,
        active: true,
        container: None,
        initial_password: None,
        attributes: Vec::new(),
    }
}

fn item(key: &str, change: TargetChange) -> ChangeItem {
    ChangeItem {
        key: key.into(),
        change,
    }
}

fn creating(users: &[TargetUser]) -> Vec<ChangeItem> {
    users
        .iter()
        .map(|u| {
            item(
                &format!("create-{}", u.external_id),
                TargetChange::CreateUser { user: u.clone() },
            )
        })
        .collect()
}

fn reference(external_id: &str, target_id: &str) -> ObjectRef {
    ObjectRef {
        external_id: external_id.into(),
        target_id: Some(target_id.into()),
    }
}

/// The target id of every change that was applied, by key.
fn applied(results: &[ChangeResult]) -> BTreeMap<String, String> {
    results
        .iter()
        .map(|r| match &r.outcome {
            Outcome::Done(id) | Outcome::Matched(id) => (r.key.clone(), id.clone()),
            other => panic!("change {} was not applied: {other:?}", r.key),
        })
        .collect()
}

async fn apply(target: &TargetPlugin, batch: Vec<ChangeItem>) -> Vec<ChangeResult> {
    let keys: Vec<String> = batch.iter().map(|c| c.key.clone()).collect();
    let results = target.apply(batch).await.expect("the batch is applied");
    let answered: Vec<String> = results.iter().map(|r| r.key.clone()).collect();
    assert_eq!(answered, keys, "one result per change, in order");
    results
}

/// The service's resource whose externalId is `external_id`.
fn by_external_id<'a>(resources: &'a [Value], external_id: &str) -> &'a Value {
    let found: Vec<&Value> = resources
        .iter()
        .filter(|r| r["externalId"] == external_id)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one resource has externalId {external_id}"
    );
    found[0]
}

fn members_of(group: &Value) -> BTreeSet<String> {
    group["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["value"].as_str().unwrap().to_string())
        .collect()
}

fn school() -> Vec<TargetUser> {
    vec![
        user("stu-1", "Amara", "Okafor", TargetRole::Student),
        user("stu-2", "Ben", "Carter", TargetRole::Student),
        user("stu-3", "Chloe", "Dubois", TargetRole::Student),
        user("stu-4", "Dev", "Patel", TargetRole::Student),
        user("stf-1", "Helen", "Wright", TargetRole::Staff),
        user("stf-2", "Ian", "Murray", TargetRole::Staff),
        user("con-1", "Grace", "Okafor", TargetRole::Contact),
    ]
}

fn group(id: &str, name: &str, kind: TargetGroupKind, members: Vec<ObjectRef>) -> TargetGroup {
    TargetGroup {
        external_id: id.into(),
        name: name.into(),
        kind,
        description: None,
        container: None,
        members,
        owners: Vec::new(),
        attributes: Vec::new(),
    }
}

#[tokio::test]
async fn every_account_and_class_lands_in_the_service_as_sent() {
    if !installed() {
        return;
    }
    let server = ScimServer::start().await;
    let (_dir, target) = target_for(&server.base).await;
    assert!(target.check().await.unwrap().contains("holds 0 users"));

    let people = school();
    let ids = applied(&apply(&target, creating(&people)).await);
    let id = |ext: &str| ids[&format!("create-{ext}")].clone();
    let class_members = ["stu-1", "stu-2", "stu-3", "stf-1"];
    let form_members = ["stu-1", "stu-2", "stu-3", "stu-4", "stf-2"];
    let refs = |list: &[&str]| {
        list.iter()
            .map(|e| reference(e, &id(e)))
            .collect::<Vec<_>>()
    };
    let groups = vec![
        item(
            "class",
            TargetChange::CreateGroup {
                group: group(
                    "cls-7a-ma",
                    "7A Maths",
                    TargetGroupKind::Class,
                    refs(&class_members),
                ),
            },
        ),
        item(
            "form",
            TargetChange::CreateGroup {
                group: group(
                    "reg-7a",
                    "7A",
                    TargetGroupKind::Registration,
                    refs(&form_members),
                ),
            },
        ),
    ];
    applied(&apply(&target, groups).await);

    let users = server.users().await;
    assert_eq!(users.len(), people.len(), "one account per person, no more");
    for person in &people {
        let held = by_external_id(&users, &person.external_id);
        assert_eq!(held["id"], id(&person.external_id).as_str());
        assert_eq!(held["userName"], person.username.as_str());
        assert_eq!(
            held["name"]["givenName"],
            person.given_name.as_deref().unwrap()
        );
        assert_eq!(
            held["name"]["familyName"],
            person.family_name.as_deref().unwrap()
        );
        assert_eq!(held["displayName"], person.display_name.as_str());
        assert_eq!(held["active"], true);
        let emails = held["emails"].as_array().unwrap();
        assert_eq!(emails.len(), 1);
        assert_eq!(emails[0]["value"], person.email.as_deref().unwrap());
        assert_eq!(emails[0]["primary"], true);
    }
    let held_groups = server.groups().await;
    assert_eq!(held_groups.len(), 2);
    for (external_id, name, members) in [
        ("cls-7a-ma", "7A Maths", &class_members[..]),
        ("reg-7a", "7A", &form_members[..]),
    ] {
        let held = by_external_id(&held_groups, external_id);
        assert_eq!(held["displayName"], name);
        let expected: BTreeSet<String> = members.iter().map(|e| id(e)).collect();
        assert_eq!(members_of(held), expected, "{name} has exactly its members");
    }
}

#[tokio::test]
async fn a_leaver_is_suspended_then_enabled_then_deleted() {
    if !installed() {
        return;
    }
    let server = ScimServer::start().await;
    let (_dir, target) = target_for(&server.base).await;
    let people = school();
    let ids = applied(&apply(&target, creating(&people[..3])).await);
    let (ada, ben) = (ids["create-stu-1"].clone(), ids["create-stu-2"].clone());
    let form = applied(
        &apply(
            &target,
            vec![item(
                "form",
                TargetChange::CreateGroup {
                    group: group(
                        "reg-7a",
                        "7A",
                        TargetGroupKind::Registration,
                        vec![reference("stu-1", &ada), reference("stu-2", &ben)],
                    ),
                },
            )],
        )
        .await,
    )["form"]
        .clone();
    let active = |users: &[Value], ext: &str| by_external_id(users, ext)["active"].clone();

    let amara = ObjectRef {
        external_id: "stu-1".into(),
        target_id: Some(ada.clone()),
    };
    applied(
        &apply(
            &target,
            vec![item(
                "suspend",
                TargetChange::SuspendUser {
                    object: amara.clone(),
                },
            )],
        )
        .await,
    );
    assert_eq!(active(&server.users().await, "stu-1"), false);
    assert_eq!(
        active(&server.users().await, "stu-2"),
        true,
        "only the leaver is suspended"
    );

    let enabled = applied(
        &apply(
            &target,
            vec![item("enable", TargetChange::EnableUser { object: amara })],
        )
        .await,
    );
    assert_eq!(
        enabled["enable"], ada,
        "a returning pupil keeps the same account"
    );
    assert_eq!(active(&server.users().await, "stu-1"), true);

    // A renamed pupil, and a class change by membership delta.
    let mut renamed = people[1].clone();
    renamed.family_name = Some("Carter-Hughes".into());
    renamed.display_name = "Ben Carter-Hughes".into();
    renamed.email = Some("ben.carter-hughes@school.example".into());
    let chloe = ids["create-stu-3"].clone();
    applied(
        &apply(
            &target,
            vec![
                item(
                    "rename",
                    TargetChange::UpdateUser {
                        target_id: ben.clone(),
                        user: renamed,
                    },
                ),
                item(
                    "members",
                    TargetChange::ChangeMembers {
                        members: MemberChange {
                            group: reference("reg-7a", &form),
                            add: vec![reference("stu-3", &chloe)],
                            remove: vec![reference("stu-1", &ada)],
                            add_owners: Vec::new(),
                            remove_owners: Vec::new(),
                        },
                    },
                ),
            ],
        )
        .await,
    );
    let users = server.users().await;
    let held_ben = by_external_id(&users, "stu-2");
    assert_eq!(held_ben["userName"], "ben.carter", "the login is unchanged");
    assert_eq!(held_ben["name"]["familyName"], "Carter-Hughes");
    assert_eq!(
        held_ben["emails"][0]["value"],
        "ben.carter-hughes@school.example"
    );
    let held_form = by_external_id(&server.groups().await, "reg-7a").clone();
    assert_eq!(
        members_of(&held_form),
        BTreeSet::from([ben.clone(), chloe.clone()])
    );

    let deleting = vec![
        item(
            "delete-ben",
            TargetChange::DeleteUser {
                object: reference("stu-2", &ben),
            },
        ),
        item(
            "delete-form",
            TargetChange::DeleteGroup {
                object: reference("reg-7a", &form),
            },
        ),
    ];
    applied(&apply(&target, deleting.clone()).await);
    assert!(
        server
            .users()
            .await
            .iter()
            .all(|u| u["externalId"] != "stu-2")
    );
    assert!(server.groups().await.is_empty());
    // Sent again (a lost acknowledgement), the deletions are harmless.
    applied(&apply(&target, deleting).await);
    assert_eq!(server.users().await.len(), 2);
}

#[tokio::test]
async fn a_taken_username_is_a_conflict_and_nothing_is_overwritten() {
    if !installed() {
        return;
    }
    let server = ScimServer::start().await;
    let theirs = server
        .create_user(json!({ "userName": "amara.okafor", "externalId": "another-system-7" }))
        .await;
    let (_dir, target) = target_for(&server.base).await;
    let results = apply(&target, creating(&school()[..1])).await;
    assert!(
        matches!(&results[0].outcome, Outcome::Conflict(why) if why.contains("amara.okafor")),
        "{results:?}"
    );
    let users = server.users().await;
    assert_eq!(users.len(), 1, "no second account");
    assert_eq!(
        by_external_id(&users, "another-system-7")["id"],
        theirs["id"]
    );
}

#[tokio::test]
async fn existing_accounts_are_adopted_by_external_id_and_by_email() {
    if !installed() {
        return;
    }
    let server = ScimServer::start().await;
    let people = school();
    // One account from an earlier delivery whose answer was lost; one made
    // by hand with the pupil's email and its own login.
    let earlier = server
        .create_user(json!({ "userName": "amara.okafor", "externalId": "stu-1" }))
        .await;
    let by_hand = server
        .create_user(json!({
            "userName": "bcarter",
            "emails": [{ "value": "ben.carter@school.example", "primary": true }]
        }))
        .await;
    let (_dir, target) = target_for(&server.base).await;
    let results = apply(&target, creating(&people[..2])).await;
    assert_eq!(
        results[0].outcome,
        Outcome::Matched(earlier["id"].as_str().unwrap().into())
    );
    assert_eq!(
        results[1].outcome,
        Outcome::Matched(by_hand["id"].as_str().unwrap().into())
    );
    let users = server.users().await;
    assert_eq!(users.len(), 2, "adopted, not duplicated");
    let ben = by_external_id(&users, "stu-2");
    assert_eq!(
        ben["userName"], "bcarter",
        "an adopted account keeps its login"
    );
    assert_eq!(ben["displayName"], "Ben Carter");
    assert_eq!(
        by_external_id(&users, "stu-1")["name"]["familyName"],
        "Okafor"
    );
}

#[tokio::test]
async fn read_back_pages_through_every_user_and_group() {
    if !installed() {
        return;
    }
    let server = ScimServer::start().await;
    let settings = Settings::new()
        .with("base-url", &server.base)
        .with("page-size", "10");
    let (_dir, target) = scim_target(settings).await;
    let pupils: Vec<TargetUser> = (1..=25)
        .map(|n| {
            user(
                &format!("stu-{n}"),
                "Pupil",
                &format!("Number{n}"),
                TargetRole::Student,
            )
        })
        .collect();
    let ids = applied(&apply(&target, creating(&pupils)).await);
    let all: Vec<ObjectRef> = pupils
        .iter()
        .map(|p| reference(&p.external_id, &ids[&format!("create-{}", p.external_id)]))
        .collect();
    applied(
        &apply(
            &target,
            vec![item(
                "year",
                TargetChange::CreateGroup {
                    group: group("year-7", "Year 7", TargetGroupKind::Year, all),
                },
            )],
        )
        .await,
    );

    let mut cursor = None;
    let mut pages = 0;
    let mut seen = BTreeMap::new();
    loop {
        let page = target.read(ObjectKind::User, cursor).await.unwrap();
        pages += 1;
        for object in page.objects {
            let HeldObject::User(user) = object else {
                panic!("a group among users")
            };
            seen.insert(user.external_id.clone().unwrap(), user);
        }
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
        assert!(pages < 10, "the read ends");
    }
    assert_eq!(pages, 3, "25 users in pages of 10");
    assert_eq!(seen.len(), 25);
    for pupil in &pupils {
        let held = &seen[&pupil.external_id];
        assert_eq!(
            held.target_id,
            ids[&format!("create-{}", pupil.external_id)]
        );
        assert_eq!(held.username, pupil.username);
        assert_eq!(held.email, pupil.email);
        assert!(held.active);
    }
    let groups = target.read(ObjectKind::Group, None).await.unwrap();
    assert_eq!(groups.next, None);
    let [HeldObject::Group(year)] = &groups.objects[..] else {
        panic!("one group: {groups:?}")
    };
    assert_eq!(year.members.len(), 25);
}

#[tokio::test]
async fn a_service_down_for_maintenance_mid_batch_loses_no_change() {
    if !installed() {
        return;
    }
    let server = ScimServer::start().await;
    // The front lets the first creations through, then answers 503 with
    // Retry-After.
    let front = GatewayFront::start(&server.base, 9, Trip::Maintenance { retry_after: 7 }).await;
    let (_dir, target) = target_for(&front.base).await;
    let people = school();
    let batch = creating(&people);
    let results = target.apply(batch.clone()).await.unwrap();
    assert!(
        results.len() < batch.len(),
        "the batch stopped at the pause: {results:?}"
    );
    let (last, done) = results.split_last().unwrap();
    assert!(
        matches!(&last.outcome, Outcome::RetryAfter { seconds: 7, .. }),
        "{last:?}"
    );
    let done_ids: BTreeSet<String> = applied(done).into_values().collect();
    let held: BTreeSet<String> = server
        .users()
        .await
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        held, done_ids,
        "what was answered done is exactly what the service holds"
    );

    // After the pause, the changes left are sent again, to the service
    // itself now that maintenance is over: every account exists once.
    let (_dir2, direct) = target_for(&server.base).await;
    let answered: BTreeSet<&str> = done.iter().map(|r| r.key.as_str()).collect();
    let rest: Vec<ChangeItem> = batch
        .into_iter()
        .filter(|c| !answered.contains(c.key.as_str()))
        .collect();
    applied(&apply(&direct, rest).await);
    let users = server.users().await;
    assert_eq!(users.len(), people.len());
    for person in &people {
        by_external_id(&users, &person.external_id);
    }
}

#[tokio::test]
async fn a_service_stopped_mid_batch_answers_only_what_it_applied() {
    if !installed() {
        return;
    }
    let server = ScimServer::start().await;
    let front = GatewayFront::start(&server.base, 9, Trip::Stop(Arc::new(server.stopper()))).await;
    let (_dir, target) = target_for(&front.base).await;
    let batch = creating(&school());
    let results = target.apply(batch.clone()).await.unwrap();
    assert!(
        !results.is_empty() && results.len() < batch.len(),
        "{results:?}"
    );
    let done: BTreeSet<String> = applied(&results).into_values().collect();
    let created: BTreeSet<String> = front.created().into_iter().collect();
    assert_eq!(
        done, created,
        "every change answered done was created, and no other"
    );
    // The next batch finds the service gone: the whole call is unavailable,
    // so every change of it is sent again later.
    let error = target.apply(batch).await.unwrap_err();
    assert!(matches!(error, SyncError::Unavailable(_)), "{error}");
}

#[tokio::test]
async fn the_bearer_token_is_sent_and_a_wrong_one_is_unauthorized() {
    if !installed() {
        return;
    }
    let server = ScimServer::with_token("s3cret-token").await;
    let settings = |token: &str| {
        Settings::new()
            .with("base-url", &server.base)
            .with("bearer-token", token)
    };
    let (_dir, good) = scim_target(settings("s3cret-token")).await;
    assert!(good.check().await.unwrap().contains("ETags: yes"));
    applied(&apply(&good, creating(&school()[..1])).await);
    assert_eq!(server.users().await.len(), 1);

    let (_dir2, bad) = scim_target(settings("wrong-token")).await;
    let error = bad.check().await.unwrap_err();
    assert!(matches!(error, SyncError::Unauthorized(_)), "{error}");
    assert!(!error.to_string().contains("wrong-token"), "{error}");
    let error = bad.apply(creating(&school()[1..2])).await.unwrap_err();
    assert!(matches!(error, SyncError::Unauthorized(_)), "{error}");
}
