//! Whether the host is doing its job: how many workers are on duty, and
//! whether the store answered them last time they asked. What `/healthz`
//! reports, so a host whose workers stopped (or cannot reach the store,
//! e.g. out of file descriptors) is not reported healthy.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The workers' state, shared by the workers and the admin API.
#[derive(Debug, Default)]
pub(crate) struct WorkerHealth {
    on_duty: AtomicUsize,
    /// The store failure the workers last met, until it answers again.
    store_error: Mutex<Option<String>>,
}

/// What `/healthz` shows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Health {
    /// Workers taking runs off the queue now.
    pub workers_on_duty: usize,
    /// Workers the host was configured with.
    pub workers_configured: usize,
    /// Why the workers cannot use the store, while they cannot.
    pub store_error: Option<String>,
}

impl Health {
    /// Every worker on duty and the store answering them.
    pub fn is_healthy(&self) -> bool {
        self.workers_on_duty == self.workers_configured && self.store_error.is_none()
    }
}

/// Counts a worker on duty while it lives.
pub(crate) struct OnDuty<'a>(&'a WorkerHealth);

impl Drop for OnDuty<'_> {
    fn drop(&mut self) {
        self.0.on_duty.fetch_sub(1, Ordering::SeqCst);
    }
}

impl WorkerHealth {
    pub(crate) fn worker_started(&self) -> OnDuty<'_> {
        self.on_duty.fetch_add(1, Ordering::SeqCst);
        OnDuty(self)
    }

    pub(crate) fn store_answered(&self) {
        *self.store_error.lock().expect("health lock") = None;
    }

    pub(crate) fn store_failed(&self, error: String) {
        *self.store_error.lock().expect("health lock") = Some(error);
    }

    pub(crate) fn report(&self, workers_configured: usize) -> Health {
        Health {
            workers_on_duty: self.on_duty.load(Ordering::SeqCst),
            workers_configured,
            store_error: self.store_error.lock().expect("health lock").clone(),
        }
    }
}
