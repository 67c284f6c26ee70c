//! How fast a target is sent changes: exponential backoff with jitter
//! after a failed call (or exactly the wait a target asked for, as HTTP's
//! `Retry-After` does, RFC 9110 section 10.2.3), and a per-target rate
//! limit in changes per second.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// Exponential backoff with "equal jitter": after the `n`th failure in a
/// row the wait is between half and all of `base · 2ⁿ`, capped at `max`,
/// so many hosts retrying one target spread out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            max: Duration::from_secs(600),
        }
    }
}

impl Backoff {
    /// The wait before attempt `failures + 1`; a wait the target asked
    /// for is honoured as it is.
    pub fn delay(&self, failures: u32, retry_after: Option<u32>) -> Duration {
        if let Some(seconds) = retry_after {
            return Duration::from_secs(u64::from(seconds));
        }
        let full = self
            .base
            .saturating_mul(1u32.checked_shl(failures.min(30)).unwrap_or(u32::MAX))
            .min(self.max);
        let half = full / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }
}

/// At most `per_second` changes a second, over the whole delivery.
#[derive(Debug)]
pub struct RateLimit {
    per_second: Option<f64>,
    next: Option<Instant>,
}

impl RateLimit {
    pub fn new(per_second: Option<f64>) -> Self {
        Self {
            per_second,
            next: None,
        }
    }

    /// Waits until `changes` more may go.
    pub async fn take(&mut self, changes: usize) {
        let Some(rate) = self.per_second else {
            return;
        };
        let now = Instant::now();
        let at = self.next.unwrap_or(now).max(now);
        tokio::time::sleep_until(at).await;
        self.next = Some(at + Duration::from_secs_f64(changes as f64 / rate));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_its_jitter_and_stops_at_the_cap() {
        let backoff = Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
        };
        for failures in 0..10 {
            let full = (Duration::from_secs(2) * 2u32.pow(failures)).min(Duration::from_secs(60));
            let delay = backoff.delay(failures, None);
            assert!(delay >= full / 2 && delay <= full, "{failures}: {delay:?}");
        }
        assert_eq!(backoff.delay(3, Some(120)), Duration::from_secs(120));
        assert!(backoff.delay(u32::MAX, None) <= Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_limit_spaces_batches_by_their_size() {
        let mut limit = RateLimit::new(Some(10.0));
        let start = Instant::now();
        limit.take(20).await;
        limit.take(20).await;
        limit.take(1).await;
        assert_eq!(start.elapsed(), Duration::from_secs(4));
    }
}
