//! Live progress of the runs this host is running, kept in memory for the
//! dashboard and written to the queue row about once a second for other
//! hosts and the command line.

use std::collections::HashMap;
use std::sync::Mutex;

use rostersync_sync::Progress;
use tokio::sync::watch;

use crate::{Service, ServiceError, pause};

#[derive(Default)]
pub struct LiveProgress {
    /// Queue id → progress, and whether the store has seen it yet.
    runs: Mutex<HashMap<i64, (Progress, bool)>>,
}

impl LiveProgress {
    pub fn get(&self, queue_id: i64) -> Option<Progress> {
        self.lock()
            .get(&queue_id)
            .map(|(progress, _)| progress.clone())
    }

    pub(crate) fn start(&self, queue_id: i64) {
        self.lock().insert(queue_id, (Progress::default(), false));
    }

    pub(crate) fn update(&self, queue_id: i64, progress: &Progress) {
        self.lock().insert(queue_id, (progress.clone(), false));
    }

    pub(crate) fn finish(&self, queue_id: i64) {
        self.lock().remove(&queue_id);
    }

    /// The progress the store has not seen yet, marked as seen.
    fn unwritten(&self) -> Vec<(i64, Progress)> {
        self.lock()
            .iter_mut()
            .filter(|(_, (_, written))| !*written)
            .map(|(id, (progress, written))| {
                *written = true;
                (*id, progress.clone())
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, (Progress, bool)>> {
        // A panic while holding this lock cannot leave the map half-written.
        self.runs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub(crate) async fn write_to_store(
    service: Service,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ServiceError> {
    loop {
        for (queue_id, progress) in service.inner.live.unwritten() {
            let json = serde_json::to_string(&progress).expect("progress serialises");
            service
                .inner
                .store
                .set_run_progress(queue_id, &json)
                .await?;
        }
        if pause(service.inner.options.tick, None, &mut shutdown).await {
            return Ok(());
        }
    }
}
