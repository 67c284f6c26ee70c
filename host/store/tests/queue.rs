//! The run queue on both backends: joining, claiming, finishing,
//! heartbeats, and settling what a stopped process left running.

use chrono::{Duration, Utc};
use rostersync_store::testing::on_both_backends;
use rostersync_store::{
    Enqueued, EntityKind, Lease, QueueState, RunAsk, RunMode, RunRecord, Store, StoreError,
    StoredRecord, WriteSet,
};

fn ask(connection: &str, mode: RunMode, reason: &str) -> RunAsk {
    RunAsk {
        connection: connection.into(),
        mode,
        reason: reason.into(),
        requested_by: "test".into(),
        additions_only: false,
    }
}

#[tokio::test]
async fn a_second_request_joins_the_queued_run_and_a_full_one_upgrades_it() {
    on_both_backends(|store: Store, _| async move {
        let now = Utc::now();
        let first = store
            .enqueue_run(&ask("north", RunMode::Delta, "schedule"), now)
            .await
            .unwrap();
        let Enqueued::Queued(first) = first else {
            panic!("the first request should queue a run")
        };
        let second = store
            .enqueue_run(&ask("north", RunMode::Full, "operator"), now)
            .await
            .unwrap();
        let Enqueued::Joined(joined) = second else {
            panic!("the second request should join the first")
        };
        assert_eq!(joined.id, first.id);
        assert_eq!(
            joined.mode, "full",
            "a full request upgrades a queued delta"
        );
        let other = store
            .enqueue_run(&ask("south", RunMode::Delta, "schedule"), now)
            .await
            .unwrap();
        assert!(
            matches!(other, Enqueued::Queued(_)),
            "another connection queues its own run"
        );
        assert_eq!(store.active_runs().await.unwrap().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn runs_are_claimed_once_oldest_first_and_a_finished_one_frees_the_connection() {
    on_both_backends(|store: Store, _| async move {
        let now = Utc::now();
        store
            .enqueue_run(&ask("north", RunMode::Delta, "schedule"), now)
            .await
            .unwrap();
        store
            .enqueue_run(&ask("south", RunMode::Delta, "schedule"), now)
            .await
            .unwrap();
        let claimed = store.claim_next_run(now).await.unwrap().unwrap();
        assert_eq!(
            (claimed.connection.as_str(), claimed.state),
            ("north", QueueState::Running)
        );
        // A request while it runs joins the running run; it does not queue a second.
        let joined = store
            .enqueue_run(&ask("north", RunMode::Full, "operator"), now)
            .await
            .unwrap();
        assert!(
            matches!(&joined, Enqueued::Joined(run) if run.id == claimed.id && run.mode == "delta")
        );
        assert_eq!(
            store.claim_next_run(now).await.unwrap().unwrap().connection,
            "south"
        );
        assert!(
            store.claim_next_run(now).await.unwrap().is_none(),
            "nothing else is queued"
        );
        assert!(
            store.claim_run(claimed.id, now).await.unwrap().is_none(),
            "a running run is not claimed twice"
        );

        store
            .set_run_progress(claimed.id, r#"{"records_read":40}"#)
            .await
            .unwrap();
        assert_eq!(
            store
                .queued_run(claimed.id)
                .await
                .unwrap()
                .unwrap()
                .progress
                .as_deref(),
            Some(r#"{"records_read":40}"#)
        );
        store
            .finish_run(
                claimed.id,
                QueueState::Failed,
                None,
                Some("provider down"),
                now,
            )
            .await
            .unwrap();
        let done = store.queued_run(claimed.id).await.unwrap().unwrap();
        assert_eq!(
            (done.state, done.message.as_deref()),
            (QueueState::Failed, Some("provider down"))
        );
        let again = store
            .enqueue_run(&ask("north", RunMode::Delta, "operator"), now)
            .await
            .unwrap();
        assert!(matches!(again, Enqueued::Queued(run) if run.id != claimed.id));
    })
    .await;
}

#[tokio::test]
async fn stale_runs_are_failed_if_they_recorded_nothing_and_linked_if_they_did_and_live_ones_are_left()
 {
    on_both_backends(|store: Store, _| async move {
        let started = Utc::now() - Duration::minutes(5);
        store.ensure_connection("north", "wonde").await.unwrap();
        for connection in ["north", "south"] {
            store
                .enqueue_run(&ask(connection, RunMode::Delta, "schedule"), started)
                .await
                .unwrap();
            store.claim_next_run(started).await.unwrap().unwrap();
        }
        // North's run committed its history before the host stopped; south's did not.
        let recorded = store
            .apply(
                "north",
                &WriteSet::new(RunRecord::new(
                    RunMode::Delta,
                    "succeeded",
                    started + Duration::seconds(1),
                )),
            )
            .await
            .unwrap();
        // Another host's run, heartbeating: not this host's to settle.
        store
            .enqueue_run(&ask("east", RunMode::Delta, "schedule"), started)
            .await
            .unwrap();
        let east = store.claim_next_run(started).await.unwrap().unwrap();
        store.heartbeat_run(east.id, Utc::now()).await.unwrap();

        let stale_before = Utc::now() - Duration::minutes(1);
        let settled = store
            .settle_interrupted_runs(stale_before, Utc::now())
            .await
            .unwrap();
        assert_eq!(settled.len(), 2, "{settled:?}");
        let north = settled
            .iter()
            .find(|run| run.connection == "north")
            .unwrap();
        let south = settled
            .iter()
            .find(|run| run.connection == "south")
            .unwrap();
        assert_eq!(
            (north.state, north.run_id),
            (QueueState::Finished, Some(recorded))
        );
        assert_eq!((south.state, south.run_id), (QueueState::Failed, None));
        assert!(
            south
                .message
                .as_deref()
                .unwrap()
                .contains("nothing of it was applied")
        );
        let still_running = store.active_runs().await.unwrap();
        assert_eq!(still_running.len(), 1);
        assert_eq!(
            (still_running[0].id, still_running[0].state),
            (east.id, QueueState::Running)
        );
        assert!(still_running[0].heartbeat_at.unwrap() > stale_before);

        // Its heartbeat stops: once stale, it is settled too.
        let later = Utc::now() + Duration::minutes(2);
        let settled = store
            .settle_interrupted_runs(later - Duration::minutes(1), later)
            .await
            .unwrap();
        assert_eq!(
            settled.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![east.id]
        );
        assert!(store.active_runs().await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn the_last_scheduled_request_ignores_operator_runs() {
    on_both_backends(|store: Store, _| async move {
        let nightly = Utc::now() - Duration::hours(20);
        store
            .enqueue_run(&ask("north", RunMode::Delta, "schedule"), nightly)
            .await
            .unwrap();
        let run = store.claim_next_run(nightly).await.unwrap().unwrap();
        store
            .finish_run(run.id, QueueState::Failed, None, None, nightly)
            .await
            .unwrap();
        store
            .enqueue_run(&ask("north", RunMode::Delta, "operator"), Utc::now())
            .await
            .unwrap();
        let last = store
            .last_scheduled_request("north")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(last.timestamp(), nightly.timestamp());
        assert!(
            store
                .last_scheduled_request("south")
                .await
                .unwrap()
                .is_none()
        );
    })
    .await;
}

#[tokio::test]
async fn workers_claiming_at_once_each_start_a_different_run_and_none_comes_away_empty() {
    on_both_backends(|store: Store, _| async move {
        let store = std::sync::Arc::new(store);
        let now = Utc::now();
        for school in 0..10 {
            store
                .enqueue_run(
                    &ask(&format!("school-{school}"), RunMode::Delta, "schedule"),
                    now,
                )
                .await
                .unwrap();
        }
        let claims: Vec<_> = (0..10)
            .map(|_| {
                let store = std::sync::Arc::clone(&store);
                tokio::spawn(async move { store.claim_next_run(Utc::now()).await.unwrap() })
            })
            .collect();
        let mut claimed = Vec::new();
        for claim in claims {
            claimed.push(claim.await.unwrap().expect("ten runs for ten workers").id);
        }
        claimed.sort();
        claimed.dedup();
        assert_eq!(claimed.len(), 10, "no run was started twice");
        assert!(store.claim_next_run(now).await.unwrap().is_none());
    })
    .await;
}

/// A roster of one pupil, as a run would write it.
fn one_pupil(key: &str, run: RunRecord, lease: Lease) -> WriteSet {
    WriteSet {
        upserts: vec![StoredRecord {
            kind: EntityKind::Person,
            key: key.into(),
            content_hash: vec![1; 32],
            body: format!(r#"{{"id":"{key}"}}"#),
        }],
        lease: Some(lease),
        ..WriteSet::new(run)
    }
}

#[tokio::test]
async fn a_runner_settled_while_slow_cannot_commit_once_the_next_run_has_started() {
    on_both_backends(|store: Store, _| async move {
        store.ensure_connection("north", "wonde").await.unwrap();
        let long_ago = Utc::now() - Duration::minutes(5);
        store
            .enqueue_run(&ask("north", RunMode::Full, "schedule"), long_ago)
            .await
            .unwrap();
        let slow = store.claim_next_run(long_ago).await.unwrap().unwrap();
        // Its heartbeat stalled (a starved host): another process settles
        // it and starts the connection's next run.
        let now = Utc::now();
        let settled = store
            .settle_interrupted_runs(now - Duration::minutes(1), now)
            .await
            .unwrap();
        assert_eq!(
            settled.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![slow.id]
        );
        store
            .enqueue_run(&ask("north", RunMode::Full, "operator"), now)
            .await
            .unwrap();
        let next = store.claim_next_run(now).await.unwrap().unwrap();

        // Both runners reach their commit at once.
        let run = || RunRecord::new(RunMode::Full, "succeeded", now);
        let late = one_pupil("from-the-late-runner", run(), Lease { queue_id: slow.id });
        let current = one_pupil(
            "from-the-current-runner",
            run(),
            Lease { queue_id: next.id },
        );
        let (late, current) =
            tokio::join!(store.apply("north", &late), store.apply("north", &current));
        assert!(
            matches!(late, Err(StoreError::LeaseLost(id)) if id == slow.id),
            "{late:?}"
        );
        let current = current.unwrap();
        let pupils: Vec<String> = store
            .records_of("north", EntityKind::Person)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.key)
            .collect();
        assert_eq!(pupils, vec!["from-the-current-runner".to_string()]);
        let history = store.run_history("north", 10).await.unwrap();
        assert_eq!(
            history.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![current]
        );
    })
    .await;
}

#[tokio::test]
async fn a_settler_and_a_committing_runner_racing_never_both_win() {
    on_both_backends(|store: Store, _| async move {
        for round in 0..20 {
            // A connection per round: a settled run is linked to a history
            // row written after it started, so rounds must not share one.
            let north = format!("north-{round}");
            let north = north.as_str();
            store.ensure_connection(north, "wonde").await.unwrap();
            let stale = Utc::now() - Duration::minutes(5);
            store
                .enqueue_run(&ask(north, RunMode::Full, "schedule"), stale)
                .await
                .unwrap();
            let runner = store.claim_next_run(stale).await.unwrap().unwrap();
            let writes = one_pupil(
                &format!("pupil-{round}"),
                RunRecord::new(RunMode::Full, "succeeded", Utc::now()),
                Lease {
                    queue_id: runner.id,
                },
            );
            let now = Utc::now();
            let (committed, settled) = tokio::join!(
                store.apply(north, &writes),
                store.settle_interrupted_runs(now - Duration::minutes(1), now)
            );
            let settled_it = settled.unwrap().iter().any(|r| r.id == runner.id);
            let row = store.queued_run(runner.id).await.unwrap().unwrap();
            match committed {
                // The commit won: the settler left the row to its runner,
                // or saw the recorded run and linked it.
                Ok(run_id) => {
                    assert!(
                        !settled_it || row.run_id == Some(run_id),
                        "round {round}: {row:?}"
                    );
                    store
                        .finish_run(
                            runner.id,
                            QueueState::Finished,
                            Some(run_id),
                            None,
                            Utc::now(),
                        )
                        .await
                        .unwrap();
                }
                // The settler won: nothing of the run reached the store.
                Err(StoreError::LeaseLost(_)) => {
                    assert!(settled_it, "round {round}");
                    assert_eq!(row.state, QueueState::Failed, "round {round}");
                    let keys: Vec<String> = store
                        .records_of(north, EntityKind::Person)
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|r| r.key)
                        .collect();
                    assert!(!keys.contains(&format!("pupil-{round}")), "round {round}");
                }
                Err(other) => panic!("round {round}: {other}"),
            }
        }
    })
    .await;
}
