//! The targets' bookkeeping on SQLite and PostgreSQL: the ledger reads
//! back with its typed states, enqueueing a plan again keeps attempts and
//! refusals and drops superseded keys, a delivery settles the ledger, the
//! queue and the log in one go, and holds and renames are answered once.

use chrono::{Duration, Utc};
use rostersync_core::Refusal;
use rostersync_core::targets::{
    Action, LedgerEntry, MassHold, ObjectState, PlannedItem, Rename, RenameStatus,
};
use rostersync_model::target::{
    ChangeItem, ObjectKind, ObjectRef, TargetChange, TargetRole, TargetUser,
};
use rostersync_store::testing::on_both_backends;
use rostersync_store::{DeliveryOutcome, DeliveryWrite, HoldStatus, PendingNext, StoreError};

fn user(id: &str, username: &str) -> TargetUser {
    TargetUser {
        external_id: id.into(),
        username: username.into(),
        email: Some(format!("{username}@school.org")),
        given_name: Some("Zoë".into()),
        family_name: Some("O'Neil".into()),
        display_name: "Zoë O'Neil".into(),
        role: TargetRole::Student,
        active: true,
        container: None,
        initial_password: Some("never-stored".into()),
        attributes: Vec::new(),
    }
}

fn create(id: &str, key: &str) -> PlannedItem {
    let mut after = LedgerEntry::new(ObjectKind::User, id);
    after.username = Some(format!("{id}.login"));
    after.revision = 1;
    PlannedItem {
        item: ChangeItem {
            key: key.into(),
            change: TargetChange::CreateUser {
                user: user(id, &format!("{id}.login")),
            },
        },
        action: Action::CreateUser,
        external_id: id.into(),
        label: format!("{id}.login"),
        after,
    }
}

#[tokio::test]
async fn the_ledger_reads_back_what_was_written() {
    on_both_backends(|store, _| async move {
        let mut group = LedgerEntry::new(ObjectKind::Group, "north/7A");
        group.target_id = Some("g-1".into());
        group.members = vec!["acc-1".into(), "acc-2".into()];
        group.owners = vec!["acc-9".into()];
        let mut zoe = LedgerEntry::new(ObjectKind::User, "acc-1");
        zoe.target_id = Some("u-1".into());
        zoe.username = Some("zoe.oneil".into());
        zoe.state = ObjectState::Suspended;
        zoe.suspended_at = Some(Utc::now());
        zoe.content_hash = Some("abc".into());
        zoe.revision = 3;
        store
            .put_target_objects("apps", &[group.clone(), zoe.clone()])
            .await
            .unwrap();
        let ledger = store.target_ledger("apps").await.unwrap();
        assert_eq!(ledger.len(), 2);
        let read = ledger.iter().find(|e| e.external_id == "acc-1").unwrap();
        assert_eq!(read.state, ObjectState::Suspended);
        assert_eq!(read.revision, 3);
        assert_eq!(
            ledger
                .iter()
                .find(|e| e.kind == ObjectKind::Group)
                .unwrap()
                .members,
            group.members
        );
        assert!(store.target_ledger("other").await.unwrap().is_empty());
        store
            .drop_target_objects("apps", &[(ObjectKind::User, "acc-1".into())])
            .await
            .unwrap();
        assert_eq!(store.target_ledger("apps").await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_plan_enqueued_again_keeps_refusals_and_drops_what_it_superseded() {
    on_both_backends(|store, _| async move {
        let now = Utc::now();
        let plan = vec![create("a", "k-a"), create("b", "k-b"), create("c", "k-c")];
        assert_eq!(
            store.enqueue_target_changes("apps", &plan).await.unwrap(),
            3
        );
        assert_eq!(
            store.enqueue_target_changes("apps", &plan).await.unwrap(),
            0,
            "idempotent"
        );
        let due = store.due_target_changes("apps", now, 10).await.unwrap();
        let keys: Vec<&str> = due.iter().map(|p| p.item.item.key.as_str()).collect();
        assert_eq!(keys, ["k-a", "k-b", "k-c"]);
        let TargetChange::CreateUser { user } = &due[0].item.item.change else {
            panic!()
        };
        assert_eq!(user.initial_password, None, "a password is never stored");

        let refuse = |item| DeliveryWrite {
            item,
            sent: "{}".into(),
            outcome: DeliveryOutcome::Refused,
            target_id: None,
            error: Some("the directory refused the name".into()),
            at: now,
            ledger: None,
            taken: None,
            next: PendingNext::Refused,
        };
        store
            .record_target_delivery("apps", &refuse(&plan[1]))
            .await
            .unwrap();
        let retry = DeliveryWrite {
            outcome: DeliveryOutcome::Retry,
            next: PendingNext::RetryAt(now + Duration::minutes(5)),
            ..refuse(&plan[2])
        };
        store.record_target_delivery("apps", &retry).await.unwrap();
        let due: Vec<String> = store
            .due_target_changes("apps", now, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.item.item.key)
            .collect();
        assert_eq!(due, ["k-a"]);
        assert!(store.next_target_attempt("apps").await.unwrap().unwrap() > now);

        // The object behind k-a changed: a new key supersedes it; the
        // refused change keeps its refusal.
        let replan = vec![create("a", "k-a2"), create("b", "k-b"), create("c", "k-c")];
        assert_eq!(
            store.enqueue_target_changes("apps", &replan).await.unwrap(),
            1
        );
        let waiting = store.target_changes("apps").await.unwrap();
        let keys: Vec<&str> = waiting.iter().map(|p| p.item.item.key.as_str()).collect();
        assert_eq!(keys, ["k-a2", "k-b", "k-c"]);
        assert!(waiting[1].refused_at.is_some());
        assert_eq!(waiting[2].attempts, 1);

        let mut after = replan[0].after.clone();
        after.target_id = Some("u-7".into());
        let done = DeliveryWrite {
            outcome: DeliveryOutcome::Done,
            target_id: Some("u-7".into()),
            error: None,
            ledger: Some(after),
            next: PendingNext::Remove,
            ..refuse(&replan[0])
        };
        store.record_target_delivery("apps", &done).await.unwrap();
        assert_eq!(store.target_changes("apps").await.unwrap().len(), 2);
        assert_eq!(
            store.target_ledger("apps").await.unwrap()[0]
                .target_id
                .as_deref(),
            Some("u-7")
        );
        let log = store.target_deliveries("apps", 10).await.unwrap();
        let outcomes: Vec<DeliveryOutcome> = log.iter().map(|l| l.outcome).collect();
        assert_eq!(
            outcomes,
            [
                DeliveryOutcome::Done,
                DeliveryOutcome::Retry,
                DeliveryOutcome::Refused
            ]
        );
        assert_eq!(
            log[2].error.as_deref(),
            Some("the directory refused the name")
        );
        assert_eq!(log[0].action, Action::CreateUser);

        // What the targets views read: the status in counts, one object's
        // entry and log lines, and the groups it was delivered into.
        let status = store.target_status("apps").await.unwrap();
        assert_eq!((status.waiting, status.refused), (1, 1));
        assert_eq!(status.last_delivery.as_ref(), Some(&log[0]));
        assert_eq!(status.last_pass, None);
        assert_eq!(status.open_hold, None);
        store
            .note_target_pass_failed("apps", "the target did not answer")
            .await
            .unwrap();
        let status = store.target_status("apps").await.unwrap();
        assert_eq!(
            status.pass_failure().map(|(_, e)| e),
            Some("the target did not answer")
        );
        assert_eq!(
            store
                .target_object("apps", ObjectKind::User, "a")
                .await
                .unwrap()
                .and_then(|e| e.target_id),
            Some("u-7".into())
        );
        assert_eq!(
            store
                .target_object("apps", ObjectKind::Group, "a")
                .await
                .unwrap(),
            None
        );
        let lines = store.target_deliveries_of("apps", "b", 10).await.unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].outcome, DeliveryOutcome::Refused);
        let mut class = LedgerEntry::new(ObjectKind::Group, "north/7A");
        class.username = Some("7A".into());
        class.members = vec!["a".into()];
        let mut other = LedgerEntry::new(ObjectKind::Group, "north/7B");
        other.members = vec!["b".into()];
        store
            .put_target_objects("apps", &[class, other])
            .await
            .unwrap();
        let groups: Vec<String> = store
            .target_groups_of("apps", "a")
            .await
            .unwrap()
            .into_iter()
            .filter_map(|g| g.username)
            .collect();
        assert_eq!(groups, ["7A"]);
    })
    .await;
}

#[tokio::test]
async fn a_target_hold_is_confirmed_once_and_only_for_what_was_reviewed() {
    on_both_backends(|store, _| async move {
        let hold = |digest: &str| MassHold {
            digest: digest.into(),
            population: 40,
            suspend: vec!["zoe.oneil (acc-1)".into()],
            delete: Vec::new(),
        };
        let id = store.open_target_hold("apps", &hold("d1")).await.unwrap();
        assert_eq!(
            store.open_target_hold("apps", &hold("d2")).await.unwrap(),
            id,
            "one open hold moves on"
        );
        assert!(matches!(
            store
                .answer_target_hold(id, "d1", HoldStatus::Confirmed, "ops")
                .await,
            Err(StoreError::Refused(Refusal::RevisionNotCurrent { .. }))
        ));
        store
            .answer_target_hold(id, "d2", HoldStatus::Confirmed, "ops")
            .await
            .unwrap();
        assert!(matches!(
            store
                .answer_target_hold(id, "d2", HoldStatus::Confirmed, "ops")
                .await,
            Err(StoreError::Refused(Refusal::Answered(_)))
        ));
        assert!(
            store
                .confirmed_target_holds("apps")
                .await
                .unwrap()
                .contains("d2")
        );
        let holds = store.target_holds("apps").await.unwrap();
        assert_eq!(
            (holds[0].status, holds[0].answered_by.as_deref()),
            (HoldStatus::Confirmed, Some("ops"))
        );
        assert_eq!(holds[0].hold.suspend, ["zoe.oneil (acc-1)"]);
        let audit = store.audit_log().await.unwrap();
        assert_eq!(audit.len(), 1, "the answer is audited, once");
        assert_eq!(
            (
                audit[0].action.as_str(),
                audit[0].actor.as_str(),
                audit[0].subject.clone()
            ),
            (
                "target-hold.confirmed",
                "ops",
                format!("target apps hold {id}")
            )
        );
        assert!(audit[0].detail.contains("d2"));
    })
    .await;
}

#[tokio::test]
async fn a_rename_waits_is_approved_and_is_marked_applied_by_the_update_that_makes_it() {
    on_both_backends(|store, _| async move {
        let rename = Rename {
            external_id: "acc-1".into(),
            from: "zoe.oneil".into(),
            to: "zoe.smith".into(),
            to_email: None,
            status: RenameStatus::Pending,
        };
        store
            .propose_target_renames("apps", &[rename.clone(), rename.clone()])
            .await
            .unwrap();
        assert_eq!(
            store.target_renames("apps").await.unwrap(),
            std::slice::from_ref(&rename)
        );
        assert!(
            !store
                .answer_target_rename("apps", "acc-1", "zoe.other", RenameStatus::Approved, "ops")
                .await
                .unwrap()
        );
        assert!(
            store
                .answer_target_rename("apps", "acc-1", "zoe.smith", RenameStatus::Approved, "ops")
                .await
                .unwrap()
        );
        let audit = store.audit_log().await.unwrap();
        assert!(
            audit.iter().any(|a| a.action == "target-rename.approved"
                && a.actor == "ops"
                && a.subject == "target apps account acc-1"),
            "{audit:?}"
        );

        let mut after = LedgerEntry::new(ObjectKind::User, "acc-1");
        after.target_id = Some("u-1".into());
        after.username = Some("zoe.smith".into());
        let item = PlannedItem {
            item: ChangeItem {
                key: "k".into(),
                change: TargetChange::SuspendUser {
                    object: ObjectRef {
                        external_id: "acc-1".into(),
                        target_id: Some("u-1".into()),
                    },
                },
            },
            action: Action::UpdateUser,
            external_id: "acc-1".into(),
            label: "zoe.smith".into(),
            after: after.clone(),
        };
        let write = DeliveryWrite {
            item: &item,
            sent: "{}".into(),
            outcome: DeliveryOutcome::Done,
            target_id: Some("u-1".into()),
            error: None,
            at: Utc::now(),
            ledger: Some(after),
            taken: Some("zoe.smith2".into()),
            next: PendingNext::Remove,
        };
        store.record_target_delivery("apps", &write).await.unwrap();
        assert_eq!(
            store.target_renames("apps").await.unwrap()[0].status,
            RenameStatus::Applied
        );
        assert!(
            store
                .target_taken_names("apps")
                .await
                .unwrap()
                .contains("zoe.smith2")
        );
    })
    .await;
}

#[tokio::test]
async fn one_holder_at_a_time_delivers_a_target_until_its_lease_lapses() {
    on_both_backends(|store, _| async move {
        let now = Utc::now();
        let lease = Duration::minutes(5);
        assert!(
            store
                .claim_target("apps", "a", now, now + lease)
                .await
                .unwrap()
        );
        assert!(
            !store
                .claim_target("apps", "b", now, now + lease)
                .await
                .unwrap(),
            "b waits while a's lease runs"
        );
        assert!(
            store
                .claim_target("other", "b", now, now + lease)
                .await
                .unwrap(),
            "leases are per target"
        );
        let later = now + Duration::minutes(1);
        assert!(
            store
                .claim_target("apps", "a", later, later + lease)
                .await
                .unwrap(),
            "a renews its own"
        );
        // a dies without releasing: once its lease lapses, b takes over.
        let lapsed = later + lease + Duration::seconds(1);
        assert!(
            store
                .claim_target("apps", "b", lapsed, lapsed + lease)
                .await
                .unwrap()
        );
        assert!(
            !store
                .claim_target("apps", "a", lapsed, lapsed + lease)
                .await
                .unwrap()
        );
        store.release_target("apps", "a").await.unwrap();
        assert!(
            !store
                .claim_target("apps", "a", lapsed, lapsed + lease)
                .await
                .unwrap(),
            "releasing someone else's lease does nothing"
        );
        store.release_target("apps", "b").await.unwrap();
        assert!(
            store
                .claim_target("apps", "a", lapsed, lapsed + lease)
                .await
                .unwrap()
        );
    })
    .await;
}
