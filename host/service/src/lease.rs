//! Runs whose process died: a host that stopped mid-run, or a `sync`
//! command that was killed, leaves its queue row running. Every running
//! run heartbeats from its own task (so a busy connector cannot starve
//! it); a row whose heartbeat is older than the lease is settled by
//! whichever process sees it first (`serve` on a timer, `sync` and
//! `status` before they look at the queue, a `sync` following another's
//! run while it waits), so the connection runs again and the history says
//! what happened. Runs other processes are running keep their heartbeat
//! fresh and are left alone; one settled while merely slow cannot commit
//! (its writes carry its lease, see `rostersync_store::Lease`).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rostersync_store::{QueuedRun, Store, StoreError};
use tokio::sync::watch;

use crate::{DEFAULT_RUN_LEASE, Service, ServiceError, pause};

/// Overrides the run lease, in seconds.
pub const RUN_LEASE_ENV: &str = "ROSTERSYNC_RUN_LEASE_SECONDS";

/// How long a running run may go without a heartbeat before it counts as
/// dead: [`RUN_LEASE_ENV`] if it holds a whole number of seconds, else
/// [`DEFAULT_RUN_LEASE`].
pub fn run_lease() -> Duration {
    std::env::var(RUN_LEASE_ENV)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map_or(DEFAULT_RUN_LEASE, Duration::from_secs)
}

/// Settles every running run whose heartbeat is older than `lease`, and
/// says so in the log; returns the runs it settled.
pub async fn settle_expired_runs(
    store: &Store,
    lease: Duration,
) -> Result<Vec<QueuedRun>, StoreError> {
    let now = Utc::now();
    let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    let settled = store.settle_interrupted_runs(now - lease, now).await?;
    for run in &settled {
        tracing::warn!(
            connection = run.connection,
            queue_id = run.id,
            state = run.state.as_str(),
            "settled a run whose process stopped without finishing it"
        );
    }
    Ok(settled)
}

pub(crate) async fn settle_dead_runs(
    service: Service,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ServiceError> {
    let lease = service.inner.options.run_lease;
    loop {
        match settle_expired_runs(&service.inner.store, lease).await {
            // Their connections are free again: a worker may have a run.
            Ok(settled) if !settled.is_empty() => service.inner.queued.notify_waiters(),
            Ok(_) => {}
            // The next round may find the store answering again.
            Err(error) => tracing::error!(%error, "cannot settle runs whose lease ran out"),
        }
        if pause(lease / 2, None, &mut shutdown).await {
            return Ok(());
        }
    }
}

/// Heartbeats a claimed run every `every` from a task of its own until
/// dropped. The receiver turns true if the run's lease was lost (another
/// process settled it), so the run can stop early.
pub(crate) struct Heartbeat {
    task: tokio::task::JoinHandle<()>,
    pub(crate) lost: watch::Receiver<bool>,
}

impl Heartbeat {
    pub(crate) fn start(store: Arc<Store>, queue_id: i64, every: Duration) -> Self {
        let (tell, lost) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match store.heartbeat_run(queue_id, Utc::now()).await {
                    Ok(true) => {}
                    Ok(false) => {
                        let _ = tell.send(true);
                        return;
                    }
                    // The next beat may get through; a run that misses
                    // enough of them is settled, which is what the lease
                    // is for.
                    Err(error) => {
                        tracing::warn!(queue_id, %error, "cannot record the run's heartbeat")
                    }
                }
            }
        });
        Self { task, lost }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}
