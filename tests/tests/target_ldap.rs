//! The LDAP target against a real OpenLDAP (Debian's slapd on 127.0.0.1),
//! driven only through the `Target` interface the delivery engine uses.
//! Every outcome is checked in the directory itself with independent
//! searches: each pupil, teacher and parent has an entry under their OU
//! with the right attributes, each class exactly its members, and the
//! lifecycle (suspend, enable, a year change, delete, adoption) leaves the
//! entries a school would expect.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ldap3::SearchEntry;
use rostersync_ldap::LdapTarget;
use rostersync_ldap::settings::name;
use rostersync_model::target::{
    ChangeItem, HeldObject, MemberChange, ObjectKind, ObjectRef, Outcome, Target, TargetChange,
    TargetGroup, TargetGroupKind, TargetRole, TargetUser,
};
use rostersync_model::{Settings, SyncError};
use rostersync_tests::slapd::{ROOT_DN, ROOT_PASSWORD, SUFFIX, Slapd};

fn settings(slapd: &Slapd) -> Settings {
    Settings::new()
        .with(name::URL, slapd.url())
        .with(name::BIND_DN, ROOT_DN)
        .with(name::BIND_PASSWORD, ROOT_PASSWORD)
        .with(name::BASE_DN, SUFFIX)
}

fn target(slapd: &Slapd) -> LdapTarget {
    LdapTarget::open(&settings(slapd)).unwrap()
}

fn person(id: &str, first: &str, last: &str, role: TargetRole, container: &str) -> TargetUser {
    let username = format!("{}.{}", first.to_lowercase(), last.to_lowercase());
    TargetUser {
        external_id: id.into(),
        email: Some(format!("{username}@school.test")),
        username,
        given_name: Some(first.into()),
        family_name: Some(last.into()),
        display_name: format!("{first} {last}"),
        role,
        active: true,
        container: Some(container.into()),
        initial_password: Some(format!("Initial-{id}-pw")),
        attributes: Vec::new(),
    }
}

const YEAR_7: &str = "ou=Year 7,ou=Students";
const YEAR_8: &str = "ou=Year 8,ou=Students";
const STAFF: &str = "ou=Staff";
const CONTACTS: &str = "ou=Contacts";

/// A small school: pupils in two years, two teachers, a parent.
fn roster() -> Vec<TargetUser> {
    use TargetRole::*;
    vec![
        person("p1", "Ava", "Smith", Student, YEAR_7),
        person("p2", "Ben", "Jones", Student, YEAR_7),
        person("p3", "Cara", "Patel", Student, YEAR_7),
        person("p4", "Dan", "Brown", Student, YEAR_8),
        person("p5", "Eve", "Khan", Student, YEAR_8),
        person("s1", "Fay", "Green", Staff, STAFF),
        person("s2", "Gus", "White", Staff, STAFF),
        person("c1", "Hal", "Smith", Contact, CONTACTS),
    ]
}

fn reference(id: &str) -> ObjectRef {
    ObjectRef {
        external_id: id.into(),
        target_id: None,
    }
}

fn group(id: &str, name: &str, members: &[&str], owners: &[&str]) -> TargetGroup {
    TargetGroup {
        external_id: id.into(),
        name: name.into(),
        kind: TargetGroupKind::Class,
        description: Some(format!("Class {name}")),
        container: Some("ou=Classes".into()),
        members: members.iter().map(|id| reference(id)).collect(),
        owners: owners.iter().map(|id| reference(id)).collect(),
        attributes: Vec::new(),
    }
}

fn classes() -> Vec<TargetGroup> {
    vec![
        group("g1", "7A-Ma", &["p1", "p2", "p3"], &["s1"]),
        group("g2", "8B-En", &["p4", "p5"], &["s2"]),
        group("g3", "Chess Club", &[], &[]),
    ]
}

fn batch(changes: Vec<TargetChange>) -> Vec<ChangeItem> {
    changes
        .into_iter()
        .enumerate()
        .map(|(at, change)| ChangeItem {
            key: format!("key-{at}-{}", subject(&change)),
            change,
        })
        .collect()
}

/// Whom a change is about, so keys of different changes never collide.
fn subject(change: &TargetChange) -> String {
    match change {
        TargetChange::CreateUser { user } | TargetChange::UpdateUser { user, .. } => {
            user.external_id.clone()
        }
        TargetChange::CreateGroup { group } | TargetChange::UpdateGroup { group, .. } => {
            group.external_id.clone()
        }
        TargetChange::ChangeMembers { members } => members.group.external_id.clone(),
        TargetChange::SuspendUser { object }
        | TargetChange::EnableUser { object }
        | TargetChange::DeleteUser { object }
        | TargetChange::DeleteGroup { object } => object.external_id.clone(),
    }
}

/// Applies `changes` and answers each one's outcome, asserting every change
/// got one.
async fn apply(target: &LdapTarget, changes: Vec<TargetChange>) -> Vec<Outcome> {
    let items = batch(changes);
    let count = items.len();
    let results = target.apply(items).await.unwrap();
    assert_eq!(results.len(), count, "{results:?}");
    results.into_iter().map(|result| result.outcome).collect()
}

/// The DN of a done or adopted object.
fn done(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Done(dn) | Outcome::Matched(dn) => dn.clone(),
        other => panic!("expected done, got {other:?}"),
    }
}

fn creates(users: &[TargetUser]) -> Vec<TargetChange> {
    users
        .iter()
        .map(|user| TargetChange::CreateUser { user: user.clone() })
        .collect()
}

fn attr<'a>(entry: &'a SearchEntry, name: &str) -> Vec<&'a str> {
    entry
        .attrs
        .iter()
        .find(|(held, _)| held.eq_ignore_ascii_case(name))
        .map(|(_, values)| values.iter().map(String::as_str).collect())
        .unwrap_or_default()
}

fn dn_of(user: &TargetUser) -> String {
    format!(
        "uid={},{},{SUFFIX}",
        user.username,
        user.container.as_deref().unwrap()
    )
}

/// Member DNs, lower-cased for comparison.
fn dn_set<'a>(values: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    values
        .into_iter()
        .map(|dn| dn.replace(", ", ",").to_lowercase())
        .collect()
}

async fn group_entry(slapd: &Slapd, name: &str) -> SearchEntry {
    slapd
        .entry(&format!("cn={name},ou=Classes,{SUFFIX}"))
        .await
        .unwrap_or_else(|| panic!("no group {name}"))
}

#[tokio::test]
async fn every_person_gets_an_account_under_their_ou_and_every_class_its_members() {
    let slapd = Slapd::start().await;
    let target = target(&slapd);
    let sentence = target.check().await.unwrap();
    assert!(sentence.contains(SUFFIX), "{sentence}");

    let people = roster();
    let outcomes = apply(&target, creates(&people)).await;
    for (user, outcome) in people.iter().zip(&outcomes) {
        assert_eq!(done(outcome).to_lowercase(), dn_of(user).to_lowercase());
    }
    let groups = classes();
    let changes = groups
        .iter()
        .map(|group| TargetChange::CreateGroup {
            group: group.clone(),
        })
        .collect();
    for outcome in apply(&target, changes).await {
        done(&outcome);
    }

    // Each role's people are under their OU, with the right attributes.
    for (ou, expected) in [(YEAR_7, 3), (YEAR_8, 2), (STAFF, 2), (CONTACTS, 1)] {
        let held = slapd
            .search(&format!("{ou},{SUFFIX}"), "(objectClass=inetOrgPerson)")
            .await;
        assert_eq!(held.len(), expected, "accounts under {ou}");
    }
    for user in &people {
        let entry = slapd.entry(&dn_of(user)).await.expect("account entry");
        assert_eq!(attr(&entry, "uid"), [user.username.as_str()]);
        assert_eq!(attr(&entry, "employeeNumber"), [user.external_id.as_str()]);
        assert_eq!(attr(&entry, "cn"), [user.display_name.as_str()]);
        assert_eq!(attr(&entry, "displayName"), [user.display_name.as_str()]);
        assert_eq!(attr(&entry, "sn"), [user.family_name.as_deref().unwrap()]);
        assert_eq!(
            attr(&entry, "givenName"),
            [user.given_name.as_deref().unwrap()]
        );
        assert_eq!(attr(&entry, "mail"), [user.email.as_deref().unwrap()]);
        assert!(
            attr(&entry, "employeeType").is_empty(),
            "active accounts are unmarked"
        );
        // The initial password is stored hashed, and works: the person can
        // log in.
        assert!(attr(&entry, "userPassword")[0].starts_with("{SSHA}"));
        assert!(
            slapd
                .binds(&dn_of(user), user.initial_password.as_deref().unwrap())
                .await
        );
    }

    // Each class holds exactly its pupils, its teacher owns it, and the
    // empty club holds only the placeholder.
    let by_id: BTreeMap<&str, &TargetUser> =
        people.iter().map(|u| (u.external_id.as_str(), u)).collect();
    for group in &groups {
        let entry = group_entry(&slapd, &group.name).await;
        let members: Vec<String> = group
            .members
            .iter()
            .map(|m| dn_of(by_id[m.external_id.as_str()]))
            .collect();
        let expected = if members.is_empty() {
            dn_set([SUFFIX])
        } else {
            dn_set(members.iter().map(String::as_str))
        };
        assert_eq!(dn_set(attr(&entry, "member")), expected, "{}", group.name);
        let owners: Vec<String> = group
            .owners
            .iter()
            .map(|m| dn_of(by_id[m.external_id.as_str()]))
            .collect();
        assert_eq!(
            dn_set(attr(&entry, "owner")),
            dn_set(owners.iter().map(String::as_str))
        );
        assert_eq!(
            attr(&entry, "businessCategory"),
            [group.external_id.as_str()]
        );
    }

    // A pupil joins the club, another leaves maths; then the club empties.
    let change = |group: &str, add: &[&str], remove: &[&str]| TargetChange::ChangeMembers {
        members: MemberChange {
            group: reference(group),
            add: add.iter().map(|id| reference(id)).collect(),
            remove: remove.iter().map(|id| reference(id)).collect(),
            add_owners: Vec::new(),
            remove_owners: Vec::new(),
        },
    };
    let outcomes = apply(
        &target,
        vec![change("g3", &["p4"], &[]), change("g1", &[], &["p2"])],
    )
    .await;
    for outcome in &outcomes {
        done(outcome);
    }
    let club = group_entry(&slapd, "Chess Club").await;
    assert_eq!(
        dn_set(attr(&club, "member")),
        dn_set([dn_of(&people[3]).as_str()])
    );
    let maths = group_entry(&slapd, "7A-Ma").await;
    assert_eq!(
        dn_set(attr(&maths, "member")),
        dn_set([dn_of(&people[0]).as_str(), dn_of(&people[2]).as_str()])
    );
    // Sending the same changes again changes nothing.
    for outcome in apply(
        &target,
        vec![change("g3", &["p4"], &[]), change("g1", &[], &["p2"])],
    )
    .await
    {
        done(&outcome);
    }
    assert_eq!(
        dn_set(attr(&group_entry(&slapd, "7A-Ma").await, "member")).len(),
        2
    );
    apply(&target, vec![change("g3", &[], &["p4"])]).await;
    let club = group_entry(&slapd, "Chess Club").await;
    assert_eq!(dn_set(attr(&club, "member")), dn_set([SUFFIX]));

    // Reading back, two entries a page, covers everyone and every class.
    let paged = LdapTarget::open(&settings(&slapd).with(name::PAGE_SIZE, "2")).unwrap();
    let (users, groups_held) = read_all(&paged).await;
    let held_ids: BTreeSet<_> = users
        .iter()
        .map(|u| {
            (
                u.external_id.clone().unwrap(),
                u.username.clone(),
                u.container.clone(),
            )
        })
        .collect();
    let roster_ids: BTreeSet<_> = people
        .iter()
        .map(|u| {
            (
                u.external_id.clone(),
                u.username.clone(),
                u.container.clone(),
            )
        })
        .collect();
    assert_eq!(held_ids, roster_ids);
    assert!(users.iter().all(|u| u.active));
    let club = groups_held.iter().find(|g| g.name == "Chess Club").unwrap();
    assert!(club.members.is_empty(), "the placeholder is no member");
    let maths = groups_held.iter().find(|g| g.name == "7A-Ma").unwrap();
    assert_eq!(maths.external_id.as_deref(), Some("g1"));
    assert_eq!(maths.members.len(), 2);
    assert_eq!(maths.owners.len(), 1);
}

/// Every user and group the target reads back, page by page; asserts the
/// reading took more than one page when there are more entries than a page.
async fn read_all(
    target: &LdapTarget,
) -> (
    Vec<rostersync_model::target::HeldUser>,
    Vec<rostersync_model::target::HeldGroup>,
) {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    for kind in [ObjectKind::User, ObjectKind::Group] {
        let mut cursor = None;
        loop {
            let page = target.read(kind, cursor).await.unwrap();
            for object in page.objects {
                match object {
                    HeldObject::User(user) => users.push(user),
                    HeldObject::Group(group) => groups.push(group),
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    (users, groups)
}

#[tokio::test]
async fn suspend_enable_year_change_and_delete_keep_the_directory_right() {
    let slapd = Slapd::start().await;
    let target = target(&slapd);
    let mut pupil = person("p1", "Ava", "Smith", TargetRole::Student, YEAR_7);
    let first_dn = done(&apply(&target, creates(std::slice::from_ref(&pupil))).await[0]);
    done(
        &apply(
            &target,
            vec![TargetChange::CreateGroup {
                group: group("g1", "7A-Ma", &["p1"], &[]),
            }],
        )
        .await[0],
    );
    let uuid = attr(&slapd.entry(&first_dn).await.unwrap(), "entryUUID")[0].to_string();
    let object = ObjectRef {
        external_id: "p1".into(),
        target_id: Some(first_dn.clone()),
    };

    // Suspended: marked, and read back as inactive; enabled: unmarked.
    apply(
        &target,
        vec![TargetChange::SuspendUser {
            object: object.clone(),
        }],
    )
    .await;
    assert_eq!(
        attr(&slapd.entry(&first_dn).await.unwrap(), "employeeType"),
        ["suspended"]
    );
    let (users, _) = read_all(&target).await;
    assert!(!users[0].active);
    // Suspending twice is harmless.
    done(
        &apply(
            &target,
            vec![TargetChange::SuspendUser {
                object: object.clone(),
            }],
        )
        .await[0],
    );
    apply(
        &target,
        vec![TargetChange::EnableUser {
            object: object.clone(),
        }],
    )
    .await;
    assert!(attr(&slapd.entry(&first_dn).await.unwrap(), "employeeType").is_empty());

    // The year changes: the same entry moves to Year 8, and the class
    // names it at its new DN.
    pupil.container = Some(YEAR_8.into());
    let moved = done(
        &apply(
            &target,
            vec![TargetChange::UpdateUser {
                target_id: first_dn.clone(),
                user: pupil.clone(),
            }],
        )
        .await[0],
    );
    assert_eq!(moved.to_lowercase(), dn_of(&pupil).to_lowercase());
    assert!(
        slapd.entry(&first_dn).await.is_none(),
        "the Year 7 DN is gone"
    );
    let entry = slapd.entry(&moved).await.expect("the Year 8 entry");
    assert_eq!(attr(&entry, "entryUUID"), [uuid.as_str()], "the same entry");
    assert_eq!(attr(&entry, "employeeNumber"), ["p1"]);
    let class = group_entry(&slapd, "7A-Ma").await;
    assert_eq!(dn_set(attr(&class, "member")), dn_set([moved.as_str()]));

    // An update by a stale target id still finds the entry by external id.
    pupil.family_name = Some("Smith-Jones".into());
    let again = done(
        &apply(
            &target,
            vec![TargetChange::UpdateUser {
                target_id: first_dn.clone(),
                user: pupil.clone(),
            }],
        )
        .await[0],
    );
    assert_eq!(again.to_lowercase(), moved.to_lowercase());
    assert_eq!(
        attr(&slapd.entry(&moved).await.unwrap(), "sn"),
        ["Smith-Jones"]
    );

    // Deleted: the entry is gone and no class names it; the class keeps
    // its placeholder. A second delete is done too.
    let delete = TargetChange::DeleteUser {
        object: ObjectRef {
            external_id: "p1".into(),
            target_id: Some(moved.clone()),
        },
    };
    apply(&target, vec![delete.clone()]).await;
    assert!(slapd.entry(&moved).await.is_none());
    let class = group_entry(&slapd, "7A-Ma").await;
    assert_eq!(dn_set(attr(&class, "member")), dn_set([SUFFIX]));
    done(&apply(&target, vec![delete]).await[0]);
    assert!(slapd.search(SUFFIX, "(employeeNumber=p1)").await.is_empty());
}

async fn add_by_hand(slapd: &Slapd, dn: &str, attrs: &[(&str, &str)]) {
    let mut ldap = slapd.admin().await;
    let mut grouped: BTreeMap<&str, std::collections::HashSet<&str>> = BTreeMap::new();
    for (name, value) in attrs {
        grouped.entry(name).or_default().insert(value);
    }
    ldap.add(dn, grouped.into_iter().collect())
        .await
        .unwrap()
        .success()
        .unwrap();
}

#[tokio::test]
async fn existing_accounts_are_adopted_and_a_taken_login_is_a_conflict() {
    let slapd = Slapd::start().await;
    for ou in ["Legacy", "Students"] {
        add_by_hand(
            &slapd,
            &format!("ou={ou},{SUFFIX}"),
            &[("objectClass", "organizationalUnit"), ("ou", ou)],
        )
        .await;
    }
    let person_entry = |uid: &'static str, mail: &'static str| {
        vec![
            ("objectClass", "inetOrgPerson"),
            ("uid", uid),
            ("cn", uid),
            ("sn", uid),
            ("mail", mail),
        ]
    };
    // Made by hand before rostersync: one with our external id, one with
    // only the mail, one whose login belongs to someone else.
    let mut by_id = person_entry("asmith", "old@school.test");
    by_id.push(("employeeNumber", "p1"));
    let by_id_dn = format!("uid=asmith,ou=Legacy,{SUFFIX}");
    add_by_hand(&slapd, &by_id_dn, &by_id).await;
    let by_mail_dn = format!("uid=bjones,ou=Legacy,{SUFFIX}");
    add_by_hand(
        &slapd,
        &by_mail_dn,
        &person_entry("bjones", "ben.jones@school.test"),
    )
    .await;
    let mut taken = person_entry("cara.patel", "someone@school.test");
    taken.push(("employeeNumber", "other-7"));
    let taken_dn = format!("uid=cara.patel,ou=Legacy,{SUFFIX}");
    add_by_hand(&slapd, &taken_dn, &taken).await;
    let uuid_of = |entry: &SearchEntry| attr(entry, "entryUUID")[0].to_string();
    let by_id_uuid = uuid_of(&slapd.entry(&by_id_dn).await.unwrap());
    let by_mail_uuid = uuid_of(&slapd.entry(&by_mail_dn).await.unwrap());

    let target = target(&slapd);
    let people = &roster()[..3];
    let outcomes = apply(&target, creates(people)).await;

    // Adopted by external id: moved under Year 7, brought up to date.
    let Outcome::Matched(dn) = &outcomes[0] else {
        panic!("{:?}", outcomes[0])
    };
    let entry = slapd.entry(dn).await.unwrap();
    assert_eq!(uuid_of(&entry), by_id_uuid);
    assert_eq!(dn.to_lowercase(), dn_of(&people[0]).to_lowercase());
    assert_eq!(attr(&entry, "mail"), ["ava.smith@school.test"]);
    // Adopted by mail: it now carries our external id.
    let Outcome::Matched(dn) = &outcomes[1] else {
        panic!("{:?}", outcomes[1])
    };
    let entry = slapd.entry(dn).await.unwrap();
    assert_eq!(uuid_of(&entry), by_mail_uuid);
    assert_eq!(attr(&entry, "employeeNumber"), ["p2"]);
    // The taken login is a conflict, and the other person's entry is untouched.
    let Outcome::Conflict(why) = &outcomes[2] else {
        panic!("{:?}", outcomes[2])
    };
    assert!(why.contains("cara.patel"), "{why}");
    let entry = slapd.entry(&taken_dn).await.unwrap();
    assert_eq!(attr(&entry, "employeeNumber"), ["other-7"]);
    assert_eq!(attr(&entry, "mail"), ["someone@school.test"]);

    // The same batch again adopts, never duplicates.
    let again = apply(&target, creates(&people[..2])).await;
    assert!(again.iter().all(|o| matches!(o, Outcome::Matched(_))));
    for id in ["p1", "p2"] {
        let held = slapd
            .search(SUFFIX, &format!("(employeeNumber={id})"))
            .await;
        assert_eq!(held.len(), 1, "{id}");
    }
}

#[tokio::test]
async fn bad_credentials_unreachable_servers_and_refused_entries() {
    let slapd = Slapd::start().await;
    let wrong =
        LdapTarget::open(&settings(&slapd).with(name::BIND_PASSWORD, "not-the-password")).unwrap();
    let err = wrong.check().await.unwrap_err();
    assert!(matches!(err, SyncError::Unauthorized(_)), "{err:?}");
    assert!(err.to_string().contains(ROOT_DN) && !err.to_string().contains("not-the-password"));
    let err = wrong
        .apply(batch(creates(&roster()[..1])))
        .await
        .unwrap_err();
    assert!(matches!(err, SyncError::Unauthorized(_)), "{err:?}");

    let nowhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = nowhere.local_addr().unwrap().port();
    drop(nowhere);
    let unreachable =
        LdapTarget::open(&settings(&slapd).with(name::URL, format!("ldap://127.0.0.1:{port}")))
            .unwrap();
    assert!(matches!(
        unreachable.check().await.unwrap_err(),
        SyncError::Unavailable(_)
    ));

    // The directory refuses a mail that is not IA5 (RFC 4524 §2.16): the
    // change is refused in one sentence naming the DN, the next goes on.
    let target = target(&slapd);
    let mut bad = person("p9", "Zoe", "Ng", TargetRole::Student, YEAR_7);
    bad.email = Some("zoë.ng@school.test".into());
    let good = person("p1", "Ava", "Smith", TargetRole::Student, YEAR_7);
    let outcomes = apply(&target, creates(&[bad.clone(), good.clone()])).await;
    let Outcome::Refused(why) = &outcomes[0] else {
        panic!("{:?}", outcomes[0])
    };
    assert!(why.contains(&dn_of(&bad)), "{why}");
    assert!(
        !why.contains(bad.initial_password.as_deref().unwrap()),
        "{why}"
    );
    done(&outcomes[1]);
    assert!(slapd.entry(&dn_of(&good)).await.is_some());
}

#[tokio::test]
async fn a_server_that_stops_answering_is_given_up_on_after_the_timeout() {
    let slapd = Slapd::start().await;
    // Accepts connections, then never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let target = LdapTarget::open(
        &settings(&slapd)
            .with(name::URL, format!("ldap://{addr}"))
            .with(name::TIMEOUT_SECONDS, "1"),
    )
    .unwrap();
    // Without the timeout these would wait for good; the guard only turns
    // such a hang into a failure.
    let guard = std::time::Duration::from_secs(300);
    let err = tokio::time::timeout(guard, target.check())
        .await
        .expect("the check gave up on the silent server")
        .unwrap_err();
    assert!(matches!(err, SyncError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    let err = tokio::time::timeout(guard, target.apply(batch(creates(&roster()[..1]))))
        .await
        .expect("the delivery gave up on the silent server")
        .unwrap_err();
    assert!(matches!(err, SyncError::Unavailable(_)), "{err:?}");
    held.abort();
}

#[tokio::test]
async fn a_server_stopped_mid_batch_loses_nothing() {
    let mut slapd = Slapd::start().await;
    let target = Arc::new(target(&slapd));
    let people: Vec<TargetUser> = (0..1000)
        .map(|n| {
            let year = if n % 2 == 0 { YEAR_7 } else { YEAR_8 };
            person(
                &format!("p{n}"),
                "Pupil",
                &format!("N{n}"),
                TargetRole::Student,
                year,
            )
        })
        .collect();
    let items = batch(creates(&people));
    let running = tokio::spawn({
        let target = target.clone();
        let items = items.clone();
        async move { target.apply(items).await }
    });
    // Stop the server once some of the batch is in.
    loop {
        let held = slapd.search(SUFFIX, "(objectClass=inetOrgPerson)").await;
        if held.len() >= 20 {
            break;
        }
        tokio::task::yield_now().await;
    }
    slapd.stop().await;
    let results = running.await.unwrap().unwrap();
    assert!(
        results.len() < items.len(),
        "the batch was cut short, not finished"
    );
    let last = results.last().unwrap();
    assert!(
        matches!(last.outcome, Outcome::RetryAfter { .. }),
        "the change in flight is to be sent again: {last:?}"
    );
    // While the server is down a whole call is unavailable.
    assert!(matches!(
        target.apply(items[..1].to_vec()).await.unwrap_err(),
        SyncError::Unavailable(_)
    ));

    // Back up: everything reported done is there, and sending the rest
    // again under the same keys completes the school without duplicates.
    slapd.resume().await;
    let mut finished: BTreeSet<String> = BTreeSet::new();
    for result in &results {
        if let Outcome::Done(dn) = &result.outcome {
            assert!(slapd.entry(dn).await.is_some(), "{dn} was reported done");
            finished.insert(result.key.clone());
        }
    }
    let rest: Vec<ChangeItem> = items
        .iter()
        .filter(|item| !finished.contains(&item.key))
        .cloned()
        .collect();
    for result in target.apply(rest).await.unwrap() {
        assert!(
            matches!(result.outcome, Outcome::Done(_) | Outcome::Matched(_)),
            "{result:?}"
        );
    }
    let held = slapd.search(SUFFIX, "(objectClass=inetOrgPerson)").await;
    assert_eq!(held.len(), people.len());
    let ids: BTreeSet<&str> = held.iter().map(|e| attr(e, "employeeNumber")[0]).collect();
    assert_eq!(ids.len(), people.len(), "each pupil once");

    // Read-back pages (500 a page) cover all of them.
    let (users, _) = read_all(&target).await;
    assert_eq!(users.len(), people.len());
}
