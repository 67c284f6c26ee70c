//! The scheduler: queues each connection's run when its schedule comes
//! due, and, after a restart, the one run a connection missed while the
//! host was down (so a nightly sync that could not run is not silently
//! skipped until the next night).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rostersync_store::{Enqueued, RunMode};
use tokio::sync::watch;

use crate::{Service, ServiceError, pause};

pub(crate) async fn run(
    service: Service,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ServiceError> {
    let now = Utc::now();
    let mut configured = service.configured();
    let mut next: BTreeMap<String, Option<DateTime<Utc>>> = BTreeMap::new();
    for (id, connection) in configured.iter() {
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
        let current = service.configured();
        if !Arc::ptr_eq(&current, &configured) {
            // A reload: new connections are scheduled from now, removed
            // ones dropped, and a changed schedule recomputed.
            next = current
                .iter()
                .map(|(id, connection)| {
                    let unchanged = configured.get(id).is_some_and(|old| {
                        old.schedule.describe() == connection.schedule.describe()
                    });
                    let due = match next.get(id) {
                        Some(due) if unchanged => *due,
                        _ => connection.schedule.next_run_after(now),
                    };
                    (id.clone(), due)
                })
                .collect();
            configured = current;
        }
        for (id, due) in next.iter_mut() {
            if due.is_some_and(|due| due <= now) {
                queue(&service, id, "schedule", now).await?;
                *due = configured[id].schedule.next_run_after(now);
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
