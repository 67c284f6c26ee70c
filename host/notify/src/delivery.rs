//! The delivery loop: every few seconds, each channel sends the
//! notification events it owes, records each outcome in the store, and
//! backs off exponentially on failures that may pass (network errors,
//! 5xx, 408, 429, transient SMTP replies) while giving up at once on the
//! rest. Delivery is at least once: a crash between sending and recording
//! resends, and receivers dedupe on `X-Rostersync-Delivery`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rostersync_store::{Store, StoreError};
use tokio::sync::watch;

use crate::config::{Channel, Target};
use crate::message::Notification;
use crate::{email, webhook};

/// Events a channel sends per pass, so one pass stays short.
const BATCH: i64 = 20;

/// How the notifier spaces and bounds its retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure; it doubles with each attempt.
    pub base: Duration,
    /// The longest wait between attempts, `Retry-After` included.
    pub cap: Duration,
    /// Attempts before giving up.
    pub max_attempts: u32,
    /// Events older than this that a channel never tried are skipped, so
    /// a newly added channel does not replay old history.
    pub untried_max_age: Duration,
}

impl Default for RetryPolicy {
    /// 30 s, 1 min, 2 min, ... 32 min: about an hour of trying.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(30),
            cap: Duration::from_secs(60 * 60),
            max_attempts: 8,
            untried_max_age: Duration::from_secs(24 * 60 * 60),
        }
    }
}

impl RetryPolicy {
    /// When to try again after attempt number `attempt` (1-based) failed,
    /// or `None` to give up.
    fn next_attempt(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if attempt >= self.max_attempts {
            return None;
        }
        let backoff = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let wait = retry_after.unwrap_or(backoff).min(self.cap);
        Some(now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX))
    }
}

/// Why one attempt failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    Retry {
        reason: String,
        /// The receiver's `Retry-After`, over the backoff.
        retry_after: Option<Duration>,
    },
    GiveUp {
        reason: String,
    },
}

/// What one pass did, over every channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: usize,
    /// Failed this time; another attempt is scheduled.
    pub retrying: usize,
    pub gave_up: usize,
}

/// Sends the outbox's notification events to the configured channels.
/// It takes the store as an `Arc` because [`Notifier::run`] lives in its
/// own task beside the rest of the host.
pub struct Notifier {
    store: Arc<Store>,
    channels: Vec<Channel>,
    policy: RetryPolicy,
    http: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot set up the webhook client: {0}")]
pub struct ClientError(#[from] reqwest::Error);

impl Notifier {
    pub fn new(store: Arc<Store>, channels: Vec<Channel>) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(webhook::TIMEOUT)
            // A signed body goes only where the operator pointed it.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rostersync/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            store,
            channels,
            policy: RetryPolicy::default(),
            http,
        })
    }

    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// One pass: every channel sends what it owes at `now`. Only a store
    /// failure stops the pass; delivery failures are recorded and logged.
    pub async fn deliver_due(&self, now: DateTime<Utc>) -> Result<DeliveryReport, StoreError> {
        let mut report = DeliveryReport::default();
        let untried_since = now
            - chrono::Duration::from_std(self.policy.untried_max_age)
                .unwrap_or(chrono::Duration::MAX);
        for channel in &self.channels {
            let events: Vec<String> = channel
                .events
                .iter()
                .map(|e| e.as_str().to_string())
                .collect();
            let due = self
                .store
                .notifications_due(&channel.name, &events, now, untried_since, BATCH)
                .await?;
            for row in due {
                let notification = Notification::from_outbox(
                    row.id,
                    row.idempotency_key,
                    row.event,
                    row.connection,
                    &row.payload,
                    row.created_at,
                );
                let outcome = match &channel.target {
                    Target::Webhook(target) => {
                        webhook::send(&self.http, target, &notification).await
                    }
                    Target::Email(target) => email::send(target, &notification).await,
                };
                let attempt = u32::try_from(row.attempts)
                    .unwrap_or(u32::MAX)
                    .saturating_add(1);
                self.record(channel, &notification, attempt, outcome, now, &mut report)
                    .await?;
            }
        }
        Ok(report)
    }

    async fn record(
        &self,
        channel: &Channel,
        notification: &Notification,
        attempt: u32,
        outcome: Result<(), Failure>,
        now: DateTime<Utc>,
        report: &mut DeliveryReport,
    ) -> Result<(), StoreError> {
        let (reason, retry_at) = match outcome {
            Ok(()) => {
                report.delivered += 1;
                return self
                    .store
                    .record_notification_delivered(notification.id, &channel.name, now)
                    .await;
            }
            Err(Failure::GiveUp { reason }) => (reason, None),
            Err(Failure::Retry {
                reason,
                retry_after,
            }) => (reason, self.policy.next_attempt(attempt, retry_after, now)),
        };
        match retry_at {
            Some(retry_at) => {
                report.retrying += 1;
                tracing::warn!(
                    channel = %channel.name,
                    event = %notification.event,
                    outbox_id = notification.id,
                    attempt,
                    %retry_at,
                    "notification not delivered, will retry: {reason}"
                );
            }
            None => {
                report.gave_up += 1;
                tracing::warn!(
                    channel = %channel.name,
                    event = %notification.event,
                    outbox_id = notification.id,
                    attempt,
                    "notification not delivered, giving up: {reason}"
                );
            }
        }
        self.store
            .record_notification_failed(notification.id, &channel.name, &reason, now, retry_at)
            .await
    }

    /// Delivers every `every` until `shutdown` turns true or its sender
    /// goes away. A store failure is logged and the next pass tries again.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>, every: Duration) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Err(error) = self.deliver_due(Utc::now()).await {
                tracing::warn!("notifications paused until the next pass: {error}");
            }
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_then_gives_up() {
        let policy = RetryPolicy::default();
        let now = Utc::now();
        let wait = |attempt, retry_after| {
            policy
                .next_attempt(attempt, retry_after, now)
                .map(|at| (at - now).num_seconds())
        };
        assert_eq!(wait(1, None), Some(30));
        assert_eq!(wait(2, None), Some(60));
        assert_eq!(wait(3, None), Some(120));
        assert_eq!(wait(7, None), Some(1920));
        assert_eq!(wait(8, None), None);
        assert_eq!(wait(1, Some(Duration::from_secs(90))), Some(90));
        assert_eq!(wait(1, Some(Duration::from_secs(86_400))), Some(3600));
        let short = RetryPolicy {
            cap: Duration::from_secs(100),
            ..policy
        };
        assert_eq!(
            short
                .next_attempt(6, None, now)
                .map(|at| (at - now).num_seconds()),
            Some(100)
        );
    }
}
