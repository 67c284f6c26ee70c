//! The store's suite, run against SQLite and against a real PostgreSQL
//! server (a throwaway database per test, dropped afterwards). Set
//! `ROSTERSYNC_TEST_POSTGRES` to the admin URL if the server is not at
//! postgres://postgres@127.0.0.1:5432/postgres.

use chrono::Utc;
use rostersync_store::testing::on_both_backends;
use rostersync_store::{
    AuditEntry, ChangeRow, Count, EntityKind, IssueRow, OutboxEvent, RunMode, RunRecord,
    StandingWrite, Store, StoreError, StoredRecord, WriteSet,
};
use sqlx::Connection;

fn record(kind: EntityKind, key: &str, content: &str) -> StoredRecord {
    StoredRecord {
        kind,
        key: key.to_string(),
        content_hash: content.as_bytes().iter().take(16).copied().collect(),
        body: format!("{{\"id\":{key:?},\"content\":{content:?}}}"),
    }
}

fn run(cursor: Option<&str>) -> RunRecord {
    RunRecord {
        cursor: cursor.map(Into::into),
        ..RunRecord::new(RunMode::Full, "succeeded", Utc::now())
    }
}

fn people(range: std::ops::Range<usize>, content: &str) -> Vec<StoredRecord> {
    range
        .map(|n| record(EntityKind::Person, &format!("P{n:05}"), content))
        .collect()
}

#[tokio::test]
async fn applied_records_read_back_by_hash_and_body() {
    on_both_backends(|store, _| async move {
        store.ensure_connection("school-1", "wonde").await.unwrap();
        store.ensure_connection("school-1", "wonde").await.unwrap();
        // Over two statements' worth, so batching is exercised.
        let mut upserts = people(0..2500, "v1");
        upserts.push(record(EntityKind::Group, "7A", "Zoë's form"));
        store
            .apply(
                "school-1",
                &WriteSet {
                    upserts,
                    removals: vec![],
                    ..WriteSet::new(run(Some("c1")))
                },
            )
            .await
            .unwrap();

        let hashes = store
            .content_hashes("school-1", EntityKind::Person)
            .await
            .unwrap();
        assert_eq!(hashes.len(), 2500);
        assert_eq!(hashes["P00042"], b"v1".to_vec());
        let keys = vec![
            "P00007".to_string(),
            "missing".to_string(),
            "P02499".to_string(),
        ];
        let loaded = store
            .load("school-1", EntityKind::Person, &keys)
            .await
            .unwrap();
        assert_eq!(
            loaded,
            vec![
                record(EntityKind::Person, "P00007", "v1"),
                record(EntityKind::Person, "P02499", "v1")
            ]
        );
        let groups = store
            .load("school-1", EntityKind::Group, &["7A".to_string()])
            .await
            .unwrap();
        assert_eq!(groups[0].body, "{\"id\":\"7A\",\"content\":\"Zoë's form\"}");
        assert_eq!(
            store.last_cursor("school-1").await.unwrap().as_deref(),
            Some("c1")
        );
    })
    .await;
}

#[tokio::test]
async fn a_second_run_updates_and_removes() {
    on_both_backends(|store, _| async move {
        store.ensure_connection("school-1", "wonde").await.unwrap();
        store
            .apply(
                "school-1",
                &WriteSet {
                    upserts: people(0..1200, "v1"),
                    removals: vec![],
                    ..WriteSet::new(run(Some("c1")))
                },
            )
            .await
            .unwrap();
        let removals = (1000..1200)
            .map(|n| (EntityKind::Person, format!("P{n:05}")))
            .collect();
        let second = WriteSet {
            upserts: people(0..10, "v2"),
            removals,
            ..WriteSet::new(run(None))
        };
        store.apply("school-1", &second).await.unwrap();

        let hashes = store
            .content_hashes("school-1", EntityKind::Person)
            .await
            .unwrap();
        assert_eq!(hashes.len(), 1000);
        assert_eq!(hashes["P00003"], b"v2".to_vec());
        assert_eq!(hashes["P00500"], b"v1".to_vec());
        assert!(!hashes.contains_key("P01100"));
        assert_eq!(
            store.last_cursor("school-1").await.unwrap().as_deref(),
            Some("c1"),
            "a run without a cursor keeps the last one"
        );
    })
    .await;
}

#[tokio::test]
async fn connections_do_not_see_each_others_records() {
    on_both_backends(|store, _| async move {
        for id in ["school-1", "school-2"] {
            store.ensure_connection(id, "clever").await.unwrap();
        }
        store
            .apply(
                "school-1",
                &WriteSet {
                    upserts: people(0..5, "a"),
                    removals: vec![],
                    ..WriteSet::new(run(None))
                },
            )
            .await
            .unwrap();
        store
            .apply(
                "school-2",
                &WriteSet {
                    upserts: people(0..3, "b"),
                    removals: vec![(EntityKind::Person, "P00004".into())],
                    ..WriteSet::new(run(None))
                },
            )
            .await
            .unwrap();
        assert_eq!(
            store
                .content_hashes("school-1", EntityKind::Person)
                .await
                .unwrap()
                .len(),
            5
        );
        assert_eq!(
            store
                .content_hashes("school-2", EntityKind::Person)
                .await
                .unwrap()
                .len(),
            3
        );
    })
    .await;
}

#[tokio::test]
async fn a_failure_mid_apply_leaves_the_previous_state_intact() {
    on_both_backends(|store, url| async move {
        store.ensure_connection("school-1", "arbor").await.unwrap();
        store.apply("school-1", &WriteSet { upserts: people(0..100, "before"), removals: vec![], ..WriteSet::new(run(Some("c1"))) }).await.unwrap();

        // A trigger makes the database refuse one row of the third
        // statement, after two statements of the same transaction succeeded.
        let poison = if url.starts_with("sqlite:") {
            vec!["CREATE TRIGGER poison BEFORE INSERT ON roster_records WHEN NEW.key = 'P02500' \
                  BEGIN SELECT RAISE(ABORT, 'injected failure'); END"]
        } else {
            vec![
                "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN \
                 IF NEW.key = 'P02500' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER poison BEFORE INSERT ON roster_records FOR EACH ROW EXECUTE FUNCTION poison()",
            ]
        };
        static DRIVERS: std::sync::Once = std::sync::Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let mut direct = sqlx::AnyConnection::connect(&url).await.unwrap();
        for statement in poison {
            sqlx::query(statement).execute(&mut direct).await.unwrap();
        }

        let writes = WriteSet {
            upserts: people(0..3000, "after"),
            removals: (0..50).map(|n| (EntityKind::Person, format!("P{n:05}"))).collect(),
            ..WriteSet::new(run(Some("c2")))
        };
        let error = store.apply("school-1", &writes).await.unwrap_err();
        assert!(matches!(error, StoreError::Query(_)), "{error}");
        assert!(error.to_string().contains("injected failure"), "{error}");

        let hashes = store.content_hashes("school-1", EntityKind::Person).await.unwrap();
        assert_eq!(hashes.len(), 100, "nothing added, nothing removed");
        assert!(hashes.values().all(|h| h == b"before"), "nothing updated");
        assert_eq!(store.last_cursor("school-1").await.unwrap().as_deref(), Some("c1"), "no history row, no new cursor");
    })
    .await;
}

#[tokio::test]
async fn a_bad_url_is_named_with_the_forms_that_work() {
    let error = Store::open("mysql://root@localhost/roster")
        .await
        .err()
        .unwrap();
    assert_eq!(
        error.to_string(),
        // The URL is named without its userinfo: a password may sit there.
        "\"mysql://localhost/roster\" is not a store URL: write sqlite://PATH or postgres://USER@HOST/DATABASE"
    );
}

#[tokio::test]
async fn reopening_a_store_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    let store = Store::open(&url).await.unwrap();
    store.ensure_connection("s", "wonde").await.unwrap();
    store
        .apply(
            "s",
            &WriteSet {
                upserts: people(0..3, "x"),
                removals: vec![],
                ..WriteSet::new(run(None))
            },
        )
        .await
        .unwrap();
    store.close().await;
    let store = Store::open(&url).await.unwrap();
    assert_eq!(
        store
            .content_hashes("s", EntityKind::Person)
            .await
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn history_issues_changes_and_outbox_commit_with_the_run() {
    on_both_backends(|store, _| async move {
        store.ensure_connection("school-1", "wonde").await.unwrap();
        let before = store.stamps("school-1").await.unwrap();
        assert_eq!((before.last_changed, before.last_checked), (None, None));

        let mut first = WriteSet::new(run(Some("c1")));
        first.upserts = people(0..2, "v1");
        first.counts = vec![Count { kind: "person".into(), action: "create".into(), count: 2 }];
        first.issues = vec![IssueRow {
            source_id: "A1039521228".into(),
            entity_type: "Student".into(),
            entity_name: "Manuel Shields".into(),
            mis_id: "9919".into(),
            message: "Missing email, which this connection needs for login".into(),
            policy: "require_email_for".into(),
            fix: "Enter the email address in the MIS.".into(),
        }];
        first.changes = vec![ChangeRow {
            kind: EntityKind::Person,
            key: "P00001".into(),
            action: "create".into(),
            fields: r#"[{"field":"first_name","old":null,"new":"Zoë"}]"#.into(),
        }];
        first.outbox = vec![OutboxEvent { idempotency_key: "school-1/1/P00001/create".into(), event: "user.created".into(), payload: "{}".into() }];
        let run_id = store.apply("school-1", &first).await.unwrap();
        let after_first = store.stamps("school-1").await.unwrap();
        assert!(after_first.last_changed.is_some() && after_first.last_changed == after_first.last_checked);

        // A run that changes nothing still counts as a check.
        let unchanged = WriteSet::new(RunRecord { finished_at: Utc::now() + chrono::Duration::seconds(5), ..run(None) });
        store.apply("school-1", &unchanged).await.unwrap();
        let after_second = store.stamps("school-1").await.unwrap();
        assert_eq!(after_second.last_changed, after_first.last_changed);
        assert!(after_second.last_checked > after_first.last_checked);

        let history = store.run_history("school-1", 10).await.unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[1].id, run_id);
        assert_eq!(history[1].counts, vec![Count { kind: "person".into(), action: "create".into(), count: 2 }]);

        assert_eq!(
            store.issues_csv(run_id).await.unwrap(),
            "Integration source id,Entity type,Entity name,MIS id,Error message,Policy,How to fix\n\
             A1039521228,Student,Manuel Shields,9919,\"Missing email, which this connection needs for login\",require_email_for,Enter the email address in the MIS.\n"
        );
        let changes = store.changes_to(EntityKind::Person, "P00001").await.unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!((changes[0].0, changes[0].1.action.as_str()), (run_id, "create"));

        let pending = store.pending_events(10).await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].event.event, "user.created");
        store.mark_delivered(pending[0].id).await.unwrap();
        assert!(store.pending_events(10).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn an_outbox_event_is_recorded_once_whatever_retries_happen() {
    on_both_backends(|store, _| async move {
        store.ensure_connection("school-1", "wonde").await.unwrap();
        let event = OutboxEvent {
            idempotency_key: "k1".into(),
            event: "user.created".into(),
            payload: "{}".into(),
        };
        let mut first = WriteSet::new(run(None));
        first.outbox = vec![event.clone()];
        store.apply("school-1", &first).await.unwrap();
        // Replaying the same run (say, after a crash before it was marked
        // applied) cannot duplicate the effect: the whole run is refused.
        let mut replay = WriteSet::new(run(None));
        replay.upserts = people(0..1, "x");
        replay.outbox = vec![event];
        assert!(store.apply("school-1", &replay).await.is_err());
        assert_eq!(store.pending_events(10).await.unwrap().len(), 1);
        assert!(
            store
                .content_hashes("school-1", EntityKind::Person)
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn manual_actions_are_audited() {
    on_both_backends(|store, _| async move {
        let entry = AuditEntry {
            at: chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap(),
            actor: "admin@trust.example".into(),
            action: "unlink".into(),
            connection: Some("school-1".into()),
            subject: "account 42".into(),
            detail: "unlinked from source id A1039521228".into(),
        };
        store.record_audit(&entry).await.unwrap();
        assert_eq!(store.audit_log().await.unwrap(), vec![entry]);
    })
    .await;
}

#[tokio::test]
async fn the_overview_has_each_connections_newest_run_with_its_counts_and_stamps() {
    on_both_backends(|store: Store, _| async move {
        let run = |status: &str, created: i64| {
            let mut writes = WriteSet::new(RunRecord::new(RunMode::Delta, status, Utc::now()));
            writes.counts.push(Count {
                kind: "person".into(),
                action: "create".into(),
                count: created,
            });
            writes
        };
        for (connection, status, created) in [
            ("north", "succeeded", 5),
            ("north", "failed", 0),
            ("south", "held", 2),
        ] {
            store.ensure_connection(connection, "wonde").await.unwrap();
            store
                .apply(connection, &run(status, created))
                .await
                .unwrap();
        }
        let latest = store.latest_runs().await.unwrap();
        assert_eq!(latest.len(), 2);
        assert_eq!(
            latest["north"],
            store.run_history("north", 1).await.unwrap()[0]
        );
        assert_eq!(latest["north"].status, "failed");
        assert_eq!(latest["south"].status, "held");
        assert_eq!(latest["south"].counts[0].count, 2);
        let stamps = store.all_stamps().await.unwrap();
        assert_eq!(stamps["north"], store.stamps("north").await.unwrap());
        assert!(
            stamps.values().all(|s| s.last_checked.is_some()),
            "{stamps:?}"
        );
        assert!(!stamps.contains_key("east"));
    })
    .await;
}

fn issue(source_id: &str, message: &str) -> IssueRow {
    IssueRow {
        source_id: source_id.into(),
        entity_type: "Staff".into(),
        entity_name: format!("Siobhán {source_id}"),
        mis_id: String::new(),
        message: message.into(),
        policy: "required_names".into(),
        fix: "Enter the first and last name in the MIS.".into(),
    }
}

async fn standing(store: &Store) -> Vec<(String, String)> {
    store
        .standing_issues("north")
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.issue.source_id, s.issue.message))
        .collect()
}

#[tokio::test]
async fn standing_issues_are_replaced_by_a_full_read_and_amended_by_a_delta() {
    on_both_backends(|store, _| async move {
        store.ensure_connection("north", "wonde").await.unwrap();
        let mut full = WriteSet::new(run(None));
        full.issues = vec![
            issue("T1", "Missing last name"),
            issue("T2", "Missing first name"),
        ];
        full.standing = Some(StandingWrite::Replace);
        store.apply("north", &full).await.unwrap();
        assert_eq!(
            standing(&store).await,
            vec![
                ("T1".to_string(), "Missing last name".to_string()),
                ("T2".to_string(), "Missing first name".to_string())
            ]
        );
        // A delta read T1 (now fixed) and T3 (now broken); T2 stands.
        let mut delta = WriteSet::new(run(None));
        delta.issues = vec![issue("T3", "Missing last name")];
        delta.standing = Some(StandingWrite::Amend {
            settled: vec!["T1".into(), "T3".into()],
        });
        store.apply("north", &delta).await.unwrap();
        assert_eq!(
            standing(&store).await,
            vec![
                ("T2".to_string(), "Missing first name".to_string()),
                ("T3".to_string(), "Missing last name".to_string())
            ]
        );
        // A run that did not read (a failed one) leaves them standing.
        store
            .apply("north", &WriteSet::new(run(None)))
            .await
            .unwrap();
        assert_eq!(standing(&store).await.len(), 2);
        assert_eq!(store.standing_issue_counts().await.unwrap()["north"], 2);
        let mut clean = WriteSet::new(run(None));
        clean.standing = Some(StandingWrite::Replace);
        store.apply("north", &clean).await.unwrap();
        assert!(standing(&store).await.is_empty());
    })
    .await;
}
