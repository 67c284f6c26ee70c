//! The scheduler: queues each connection's run when its schedule comes
//! due, and, after a restart, the one run a connection missed while the
//! host was down (so a nightly sync that could not run is not silently
//! skipped until the next night).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rostersync_store::{Enqueued, RunMode};
use tokio::sync::watch;

use crate::{Service, ServiceError, pause};

pub(crate) async fn run(
    service: Service,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ServiceError> {
    let now = Utc::now();
    let mut next: BTreeMap<String, Option<DateTime<Utc>>> = BTreeMap::new();
    for (id, connection) in &service.inner.connections {
        if let Some(due) = connection.schedule.last_due_at_or_before(now) {
            let last = service.inner.store.last_scheduled_request(id).await?;
            if last.is_some_and(|last| last < due) {
                tracing::info!(
                    connection = id,
                    missed = %due,
                    "queueing the run missed while the host was down"
                );
                queue(&service, id, "catch-up", now).await?;
            }
        }
        next.insert(id.clone(), connection.schedule.next_run_after(now));
    }
    loop {
        let now = Utc::now();
        for (id, due) in next.iter_mut() {
            if due.is_some_and(|due| due <= now) {
                queue(&service, id, "schedule", now).await?;
                *due = service.inner.connections[id].schedule.next_run_after(now);
            }
        }
        if pause(service.inner.options.tick, None, &mut shutdown).await {
            return Ok(());
        }
    }
}

async fn queue(
    service: &Service,
    id: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    match service
        .enqueue(id, RunMode::Delta, reason, "scheduler", now)
        .await?
    {
        Enqueued::Queued(run) => {
            tracing::debug!(connection = id, queue_id = run.id, reason, "run queued")
        }
        Enqueued::Joined(run) => tracing::info!(
            connection = id,
            queue_id = run.id,
            "the schedule came due while a run was still queued or running; it joined that run"
        ),
    }
    Ok(())
}
