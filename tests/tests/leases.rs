//! The unattended host under load and failure: connectors that burn every
//! CPU they get must not make a good connection fail, nor make any
//! connection run twice at once; a store that stops answering must not
//! stop the workers for good, and `/healthz` must say when they cannot work.

use std::sync::Arc;
use std::time::Duration;

use rostersync_model::Settings;
use rostersync_service::{Service, ServiceOptions};
use rostersync_store::{QueuedRun, RunMode, Store};
use rostersync_sync::ConnectionConfig;
use rostersync_tests::runtime_with;
use tokio::sync::watch;

fn probe(id: &str, behaviour: &str, call_timeout_seconds: u64) -> ConnectionConfig {
    let mut connection = ConnectionConfig::new(
        id,
        "probe",
        Settings::new()
            .with("behaviour", behaviour)
            .with("batch-size", "30"),
    );
    connection.limits.call_timeout_seconds = Some(call_timeout_seconds);
    connection
}

struct Running {
    service: Service,
    store: Arc<Store>,
    store_url: String,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), rostersync_service::ServiceError>>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

async fn start(connections: Vec<ConnectionConfig>, concurrency: usize) -> Running {
    rostersync_tests::init_logs();
    let (plugins, runtime) = runtime_with(&["probe"]).await;
    let store_dir = tempfile::tempdir().unwrap();
    let store_url = format!("sqlite://{}", store_dir.path().join("store.db").display());
    let store = Arc::new(Store::open(&store_url).await.unwrap());
    let service = Service::new(
        Arc::clone(&store),
        runtime,
        connections,
        ServiceOptions {
            concurrency,
            tick: Duration::from_millis(100),
            // Short: a heartbeat starved for two seconds would let the
            // settler call a live run dead.
            run_lease: Duration::from_secs(2),
            ..ServiceOptions::default()
        },
    )
    .unwrap();
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(service.clone().run(shutdown));
    Running {
        service,
        store,
        store_url,
        stop,
        task,
        _dirs: (plugins, store_dir),
    }
}

impl Running {
    /// Asks for a run of `connection` and waits for it to end; returns its
    /// history row's status.
    async fn run_once(&self, connection: &str) -> String {
        let asked = self
            .service
            .request_run(connection, RunMode::Full, "test")
            .await
            .unwrap();
        let id = asked.run().id;
        loop {
            let row = self.store.queued_run(id).await.unwrap().unwrap();
            if !row.state.is_active() {
                let history = self.store.run_history(connection, 50).await.unwrap();
                return row
                    .run_id
                    .and_then(|run| history.iter().find(|r| r.id == run))
                    .map_or_else(
                        || format!("no run recorded: {:?}", row.message),
                        |r| r.status.clone(),
                    );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(self) -> Vec<QueuedRun> {
        let _ = self.stop.send(true);
        self.task.await.unwrap().unwrap();
        self.store.recent_queue(None, 1000).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_cpu_starvation_no_connection_runs_twice_and_the_good_one_is_not_blamed() {
    let host = start(
        vec![
            probe("spin-1", "spin", 6),
            probe("spin-2", "spin", 6),
            probe("sleeper", "sleep", 6),
            // Its calls take a fraction of this; only time charged to it
            // for other runs' computing would reach it.
            probe("good", "roster", 2),
        ],
        4,
    )
    .await;
    for hostile in ["spin-1", "spin-2", "sleeper"] {
        host.service
            .request_run(hostile, RunMode::Full, "test")
            .await
            .unwrap();
    }
    for round in 0..5 {
        let status = host.run_once("good").await;
        assert!(
            status.starts_with("succeeded"),
            "round {round}: the good connection's run ended {status}"
        );
    }
    let queue = host.stop().await;
    for connection in ["spin-1", "spin-2", "sleeper", "good"] {
        let mut runs: Vec<&QueuedRun> = queue
            .iter()
            .filter(|r| r.connection == connection)
            .collect();
        runs.sort_by_key(|r| r.started_at);
        for pair in runs.windows(2) {
            assert!(
                pair[0].finished_at <= pair[1].started_at,
                "{connection} ran twice at once: {:?} and {:?}",
                pair[0],
                pair[1]
            );
        }
        for run in runs {
            assert!(
                !run.message
                    .as_deref()
                    .unwrap_or_default()
                    .contains("process running it stopped"),
                "a live run of {connection} was settled as dead: {run:?}"
            );
        }
    }
    let spinners_failed = queue
        .iter()
        .filter(|r| r.connection.starts_with("spin"))
        .all(|r| {
            r.message
                .as_deref()
                .is_some_and(|m| m.contains("longer than its time limit of 6 s"))
        });
    assert!(spinners_failed, "{queue:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_stops_answering_makes_healthz_unhealthy_and_the_workers_resume_after() {
    let host = start(vec![probe("good", "roster", 30)], 2).await;
    assert!(host.run_once("good").await.starts_with("succeeded"));
    assert!(
        host.service.health().is_healthy(),
        "{:?}",
        host.service.health()
    );

    // The queue becomes unreachable, as when the host ran out of file
    // descriptors: the workers cannot claim.
    let pool = sqlx::SqlitePool::connect(&host.store_url).await.unwrap();
    sqlx::query("ALTER TABLE run_queue RENAME TO run_queue_away")
        .execute(&pool)
        .await
        .unwrap();
    let mut health = host.service.health();
    for _ in 0..100 {
        if health.store_error.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        health = host.service.health();
    }
    assert!(!health.is_healthy(), "{health:?}");
    assert!(
        health
            .store_error
            .as_deref()
            .unwrap_or_default()
            .contains("run_queue"),
        "{health:?}"
    );

    sqlx::query("ALTER TABLE run_queue_away RENAME TO run_queue")
        .execute(&pool)
        .await
        .unwrap();
    // The workers are still there: a run asked for now runs.
    assert!(host.run_once("good").await.starts_with("succeeded"));
    assert!(
        host.service.health().is_healthy(),
        "{:?}",
        host.service.health()
    );
    pool.close().await;
    host.stop().await;
}

#[tokio::test]
async fn a_host_whose_workers_stopped_is_not_healthy() {
    let host = start(vec![probe("good", "roster", 30)], 3).await;
    let _ = host.stop.send(true);
    let Running { service, task, .. } = host;
    task.await.unwrap().unwrap();
    let health = service.health();
    assert_eq!((health.workers_on_duty, health.workers_configured), (0, 3));
    assert!(!health.is_healthy());
}
