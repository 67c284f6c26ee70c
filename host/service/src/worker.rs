//! A worker: takes the oldest queued run off the queue, runs it with live
//! progress, and records how it ended. The service starts as many workers
//! as its concurrency, so no more runs than that are ever in flight.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rostersync_store::{Lease, QueueState, QueuedRun, Store, StoreError};
use rostersync_sync::{
    ConnectionConfig, Observer, OpenSource, PluginSource, RunReport, RunRequest, RunStatus,
    SyncError, run_observed,
};
use tokio::sync::watch;

use crate::lease::Heartbeat;
use crate::{Service, ServiceError, pause};

pub(crate) async fn run(
    service: Service,
    worker: usize,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ServiceError> {
    let health = &service.inner.health;
    let _on_duty = health.worker_started();
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let outcome = match service.inner.store.claim_next_run(Utc::now()).await {
            Ok(Some(queued)) => {
                tracing::info!(
                    worker,
                    connection = queued.connection,
                    queue_id = queued.id,
                    mode = queued.mode,
                    "run started"
                );
                execute(&service, queued).await.map(|()| false)
            }
            Ok(None) => Ok(true),
            Err(error) => Err(ServiceError::from(error)),
        };
        let idle = match outcome {
            Ok(idle) => {
                health.store_answered();
                idle
            }
            // The store failed (out of file descriptors, a lost database):
            // the worker stays, reports the service unhealthy, and tries
            // again after a tick.
            Err(error) => {
                tracing::error!(worker, %error, "the worker cannot use the store; retrying");
                health.store_failed(error.to_string());
                true
            }
        };
        if idle
            && pause(
                service.inner.options.tick,
                Some(&service.inner.queued),
                &mut shutdown,
            )
            .await
        {
            return Ok(());
        }
    }
}

/// Runs one claimed run to its end; only a store failure is an error.
pub(crate) async fn execute(service: &Service, queued: QueuedRun) -> Result<(), ServiceError> {
    let inner = &service.inner;
    let store = &inner.store;
    let queue_id = queued.id;
    let fail = |message: String| async move {
        tracing::warn!(queue_id, message, "run could not start");
        store
            .finish_run(
                queue_id,
                QueueState::Failed,
                None,
                Some(&message),
                Utc::now(),
            )
            .await
    };
    let Some(scheduled) = service.scheduled(&queued.connection) else {
        return Ok(fail(format!(
            "connection {:?} is not in this host's configuration",
            queued.connection
        ))
        .await?);
    };
    let config = &scheduled.config;
    let Some(plugin) = inner.runtime.plugin(&config.connector) else {
        return Ok(fail(format!(
            "connection {:?} uses connector {:?}, but the plugin folder has no {}.wasm that loads",
            config.id, config.connector, config.connector
        ))
        .await?);
    };
    let source = match PluginSource::new(Arc::clone(&plugin), config, inner.options.limits.clone())
    {
        Ok(source) => source,
        Err(message) => return Ok(fail(message).await?),
    };
    let live = &inner.live;
    live.start(queued.id);
    let outcome = run_claimed(
        store,
        config,
        &source,
        &queued,
        false,
        inner.options.run_lease / 4,
        &|progress| live.update(queued.id, progress),
    )
    .await;
    live.finish(queued.id);
    inner.roster_changed.notify_one();
    match outcome {
        Ok(report) => tracing::info!(
            connection = config.id,
            queue_id = queued.id,
            status = report.status.as_str(),
            "run ended"
        ),
        // The worker goes on: the next run may find the store answering.
        Err(error) => {
            tracing::error!(connection = config.id, queue_id = queued.id, %error, "run ended on a store failure")
        }
    }
    Ok(())
}

/// Runs a run this process claimed from the queue, heartbeating every
/// `heartbeat` from a task of its own so no process settles it as dead,
/// and records how it ended on its queue row. Its writes carry its lease:
/// if it was settled anyway (it lost its lease), it stops and commits
/// nothing. `forced` re-offers unlinked people to provisioning (the command
/// line's `--force`).
pub async fn run_claimed<S: OpenSource>(
    store: &Arc<Store>,
    config: &ConnectionConfig,
    source: &S,
    queued: &QueuedRun,
    forced: bool,
    heartbeat: Duration,
    observer: Observer<'_>,
) -> Result<RunReport, SyncError> {
    let today = Utc::now()
        .with_timezone(&config.schedule.timezone)
        .date_naive();
    let request = RunRequest {
        additions_only: queued.additions_only,
        forced,
        lease: Some(Lease {
            queue_id: queued.id,
        }),
        ..RunRequest::new(queued.run_mode(), today)
    };
    let mut beating = Heartbeat::start(Arc::clone(store), queued.id, heartbeat);
    let outcome = tokio::select! {
        biased;
        outcome = run_observed(store, config, source, request, observer) => outcome,
        Ok(_) = beating.lost.wait_for(|lost| *lost) => Err(SyncError::Store(StoreError::LeaseLost(queued.id))),
    };
    drop(beating);
    let (state, run_id, message) = match &outcome {
        Ok(report) => {
            let state = if report.status == RunStatus::Failed {
                QueueState::Failed
            } else {
                QueueState::Finished
            };
            let message = report
                .error
                .clone()
                .or_else(|| (!report.holds.is_empty()).then(|| report.holds.join("; ")));
            (state, Some(report.run_id), message)
        }
        Err(error) => (QueueState::Failed, None, Some(error.to_string())),
    };
    store
        .finish_run(queued.id, state, run_id, message.as_deref(), Utc::now())
        .await?;
    outcome
}
