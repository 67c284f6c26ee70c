//! Runs whose process died: a host that stopped mid-run, or a `sync`
//! command that was killed, leaves its queue row running. Every running
//! run heartbeats; a row whose heartbeat is older than the lease is
//! settled here, by whichever host sees it first, so the connection runs
//! again and the history says what happened. Runs other hosts are running
//! keep their heartbeat fresh and are left alone.

use chrono::Utc;
use tokio::sync::watch;

use crate::{Service, ServiceError, pause};

pub(crate) async fn settle_dead_runs(
    service: Service,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ServiceError> {
    let lease = service.inner.options.run_lease;
    let lease_chrono = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    loop {
        let now = Utc::now();
        for settled in service
            .inner
            .store
            .settle_interrupted_runs(now - lease_chrono, now)
            .await?
        {
            tracing::warn!(
                connection = settled.connection,
                queue_id = settled.id,
                state = settled.state.as_str(),
                "settled a run whose process stopped without finishing it"
            );
            // Its connection is free again: a worker may have a run for it.
            service.inner.queued.notify_waiters();
        }
        if pause(lease / 2, None, &mut shutdown).await {
            return Ok(());
        }
    }
}
