//! Per-channel delivery bookkeeping for operator notifications: which of
//! the outbox's notification events each channel (a webhook, an email
//! list) still owes, its attempts, when it tries next, and whether it
//! delivered or gave up. Each channel keeps its own row per event, so a
//! failing mail relay never delays or repeats a webhook. The outbox's own
//! `delivered_at` belongs to downstream record events and is never read
//! or written here.

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row};

use crate::{Store, StoreError};

/// An outbox event that is an operator notification; a channel's
/// `events = [...]` in the configuration names them as in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
pub enum Notification {
    #[serde(rename = "run.held")]
    RunHeld,
    #[serde(rename = "run.failed")]
    RunFailed,
    /// Validation left out too much of a role: nothing destructive applied.
    #[serde(rename = "run.incomplete")]
    RunIncomplete,
    #[serde(rename = "connection.disconnected")]
    ConnectionDisconnected,
    #[serde(rename = "connection.recovered")]
    ConnectionRecovered,
}

impl Notification {
    pub const ALL: [Self; 5] = [
        Self::RunHeld,
        Self::RunFailed,
        Self::RunIncomplete,
        Self::ConnectionDisconnected,
        Self::ConnectionRecovered,
    ];

    /// The event's name in the outbox.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RunHeld => "run.held",
            Self::RunFailed => "run.failed",
            Self::RunIncomplete => "run.incomplete",
            Self::ConnectionDisconnected => "connection.disconnected",
            Self::ConnectionRecovered => "connection.recovered",
        }
    }
}

/// The outbox events that are operator notifications.
pub const NOTIFICATION_EVENTS: [&str; 5] = [
    Notification::RunHeld.as_str(),
    Notification::RunFailed.as_str(),
    Notification::RunIncomplete.as_str(),
    Notification::ConnectionDisconnected.as_str(),
    Notification::ConnectionRecovered.as_str(),
];

/// A notification event a channel owes, with what the channel has tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueNotification {
    /// The outbox row's id.
    pub id: i64,
    pub connection: String,
    /// Stable across retries, so receivers can recognise a redelivery.
    pub idempotency_key: String,
    pub event: String,
    /// JSON: `{"connection": ..., "detail": {...}}`.
    pub payload: String,
    pub created_at: DateTime<Utc>,
    /// Attempts this channel has already made.
    pub attempts: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryStatus {
    Delivered,
    /// Failed so far; another attempt is scheduled.
    Retrying,
    GaveUp,
}

/// One channel's delivery of one notification, as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NotificationDelivery {
    pub outbox_id: i64,
    pub event: String,
    pub connection: String,
    pub channel: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    /// The latest failure, kept after a later success so flakiness shows.
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub given_up_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

fn due_notification<R: Row>(row: &R) -> Result<DueNotification, sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> DateTime<Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(DueNotification {
        id: row.try_get("id")?,
        connection: row.try_get("connection_id")?,
        idempotency_key: row.try_get("idempotency_key")?,
        event: row.try_get("event")?,
        payload: row.try_get("payload")?,
        created_at: row.try_get("created_at")?,
        attempts: row.try_get("attempts")?,
    })
}

fn notification_delivery<R: Row>(row: &R) -> Result<NotificationDelivery, sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> DateTime<Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<DateTime<Utc>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let delivered_at: Option<DateTime<Utc>> = row.try_get("delivered_at")?;
    let given_up_at: Option<DateTime<Utc>> = row.try_get("given_up_at")?;
    let status = match (delivered_at, given_up_at) {
        (Some(_), _) => DeliveryStatus::Delivered,
        (None, Some(_)) => DeliveryStatus::GaveUp,
        (None, None) => DeliveryStatus::Retrying,
    };
    Ok(NotificationDelivery {
        outbox_id: row.try_get("outbox_id")?,
        event: row.try_get("event")?,
        connection: row.try_get("connection_id")?,
        channel: row.try_get("channel")?,
        status,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        delivered_at,
        given_up_at,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// The notification events `channel` owes at `now`, oldest first, at
    /// most `limit`: of the `events` it subscribes to (names outside
    /// [`NOTIFICATION_EVENTS`] are ignored), neither delivered nor given
    /// up, and due. Events the channel has never tried count only if
    /// written after `untried_since`, so a channel added today does not
    /// replay last year's history.
    pub async fn notifications_due(
        &self,
        channel: &str,
        events: &[String],
        now: DateTime<Utc>,
        untried_since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DueNotification>, StoreError> {
        let events: Vec<&str> = NOTIFICATION_EVENTS
            .into_iter()
            .filter(|known| events.iter().any(|wanted| wanted == known))
            .collect();
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let due = on_pool!(self, pool => {
            let mut query = QueryBuilder::new(
                "SELECT o.id, o.connection_id, o.idempotency_key, o.event, o.payload, o.created_at, \
                 COALESCE(d.attempts, 0) AS attempts \
                 FROM outbox o LEFT JOIN notification_deliveries d \
                 ON d.outbox_id = o.id AND d.channel = ",
            );
            query.push_bind(channel).push(" WHERE o.event IN (");
            let mut names = query.separated(", ");
            for event in &events {
                names.push_bind(*event);
            }
            names.push_unseparated(
                ") AND d.delivered_at IS NULL AND d.given_up_at IS NULL \
                 AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= ",
            );
            query
                .push_bind(now)
                .push(") AND (d.outbox_id IS NOT NULL OR o.created_at >= ")
                .push_bind(untried_since)
                .push(") ORDER BY o.id LIMIT ")
                .push_bind(limit);
            query
                .build()
                .fetch_all(pool)
                .await?
                .iter()
                .map(due_notification)
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(due)
    }

    /// Records that `channel` delivered outbox event `outbox_id` at `now`.
    pub async fn record_notification_delivered(
        &self,
        outbox_id: i64,
        channel: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO notification_deliveries \
                 (outbox_id, channel, attempts, delivered_at, updated_at) VALUES ($1, $2, 1, $3, $3) \
                 ON CONFLICT (outbox_id, channel) DO UPDATE SET \
                 attempts = notification_deliveries.attempts + 1, next_attempt_at = NULL, \
                 delivered_at = excluded.delivered_at, updated_at = excluded.updated_at",
            )
            .bind(outbox_id)
            .bind(channel)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Records a failed attempt by `channel` at `now`: it tries again at
    /// `retry_at`, or, with `None`, gives up for good.
    pub async fn record_notification_failed(
        &self,
        outbox_id: i64,
        channel: &str,
        error: &str,
        now: DateTime<Utc>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let given_up_at = retry_at.is_none().then_some(now);
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO notification_deliveries \
                 (outbox_id, channel, attempts, next_attempt_at, given_up_at, last_error, updated_at) \
                 VALUES ($1, $2, 1, $3, $4, $5, $6) \
                 ON CONFLICT (outbox_id, channel) DO UPDATE SET \
                 attempts = notification_deliveries.attempts + 1, next_attempt_at = excluded.next_attempt_at, \
                 given_up_at = excluded.given_up_at, last_error = excluded.last_error, \
                 updated_at = excluded.updated_at",
            )
            .bind(outbox_id)
            .bind(channel)
            .bind(retry_at)
            .bind(given_up_at)
            .bind(error)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The latest deliveries across channels, most recently touched first.
    pub async fn recent_notification_deliveries(
        &self,
        limit: i64,
    ) -> Result<Vec<NotificationDelivery>, StoreError> {
        let deliveries = on_pool!(self, pool => {
            sqlx::query(
                "SELECT d.outbox_id, o.event, o.connection_id, d.channel, d.attempts, d.last_error, \
                 d.next_attempt_at, d.delivered_at, d.given_up_at, d.updated_at \
                 FROM notification_deliveries d JOIN outbox o ON o.id = d.outbox_id \
                 ORDER BY d.updated_at DESC, d.outbox_id DESC, d.channel LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(notification_delivery)
            .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(deliveries)
    }
}
