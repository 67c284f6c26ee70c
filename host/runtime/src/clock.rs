//! How long a call into a connector has taken, counted so that time the
//! host spends on other runs is never charged to it.
//!
//! A call spends its time three ways: computing (inside a poll, counted in
//! the epoch ticks it runs through: see `Plugin::instantiate`), waiting on
//! the network (between a poll that returned pending and the wake-up that
//! says its I/O is ready: counted here), and waiting for a CPU (between
//! that wake-up and the executor polling it again: not counted, since a
//! busy host is not the connector's fault).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use tokio::time::Sleep;

/// The call waited on the network longer than its limit.
#[derive(Debug)]
pub(crate) struct WaitedTooLong;

/// Runs `call`, failing it once it has waited on I/O for `limit` in all.
pub(crate) fn limit_waiting<F: Future>(limit: Duration, call: F) -> WaitLimit<F> {
    WaitLimit {
        call: Box::pin(call),
        limit,
        waited: Duration::ZERO,
        pending_since: None,
        woken_at: Arc::default(),
        timer: Box::pin(tokio::time::sleep(limit)),
    }
}

pub(crate) struct WaitLimit<F> {
    call: Pin<Box<F>>,
    limit: Duration,
    waited: Duration,
    /// When the last poll returned pending.
    pending_since: Option<Instant>,
    /// When the call's I/O first woke it since then.
    woken_at: Arc<Mutex<Option<Instant>>>,
    timer: Pin<Box<Sleep>>,
}

/// Notes when the call was woken, then wakes the task.
struct NoteWake {
    task: Waker,
    woken_at: Arc<Mutex<Option<Instant>>>,
}

impl Wake for NoteWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken_at
            .lock()
            .expect("wake lock")
            .get_or_insert_with(Instant::now);
        self.task.wake_by_ref();
    }
}

impl<F: Future> Future for WaitLimit<F> {
    type Output = Result<F::Output, WaitedTooLong>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let now = Instant::now();
        let woken_at = self.woken_at.lock().expect("wake lock").take();
        if let Some(since) = self.pending_since.take() {
            let until = woken_at.unwrap_or(now).min(now);
            self.waited += until.saturating_duration_since(since);
        }
        if self.waited >= self.limit {
            return Poll::Ready(Err(WaitedTooLong));
        }
        let waker = Waker::from(Arc::new(NoteWake {
            task: cx.waker().clone(),
            woken_at: Arc::clone(&self.woken_at),
        }));
        if let Poll::Ready(output) = self.call.as_mut().poll(&mut Context::from_waker(&waker)) {
            return Poll::Ready(Ok(output));
        }
        let now = Instant::now();
        self.pending_since = Some(now);
        let left = self.limit - self.waited;
        self.timer.as_mut().reset((now + left).into());
        // The timer wakes the task directly: a poll after it counts the
        // whole wait since `pending_since`, which reaches the limit.
        if self.timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(WaitedTooLong));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_that_waits_past_its_limit_fails() {
        let waited = limit_waiting(
            Duration::from_millis(20),
            tokio::time::sleep(Duration::from_secs(5)),
        )
        .await;
        assert!(waited.is_err());
    }

    #[tokio::test]
    async fn a_call_that_only_computes_is_not_timed_here() {
        let answer = limit_waiting(Duration::from_millis(1), async {
            std::thread::sleep(Duration::from_millis(20));
            42
        })
        .await;
        assert_eq!(answer.unwrap(), 42);
    }
}
