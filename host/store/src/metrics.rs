//! Totals for monitoring: runs by status, records by action, run
//! durations, connector failures and open holds, read straight from the
//! history so a restarted host reports the same figures.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{Store, StoreError};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreMetrics {
    /// (status, runs).
    pub runs_by_status: Vec<(String, i64)>,
    /// (kind, action, records).
    pub records_by_action: Vec<(String, String, i64)>,
    /// (status, finished runs, their total seconds).
    pub run_seconds: Vec<(String, i64, f64)>,
    /// (connector, failed runs).
    pub failures_by_connector: Vec<(String, i64)>,
    pub holds_open: i64,
    pub queued: i64,
    pub running: i64,
}

impl Store {
    pub async fn metrics(&self) -> Result<StoreMetrics, StoreError> {
        let metrics = on_pool!(self, pool => {
            let mut metrics = StoreMetrics::default();
            for row in sqlx::query("SELECT status, COUNT(*) AS n FROM sync_runs GROUP BY status ORDER BY status")
                .fetch_all(pool).await?
            {
                metrics.runs_by_status.push((row.try_get("status")?, row.try_get("n")?));
            }
            for row in sqlx::query(
                "SELECT kind, action, CAST(SUM(count) AS BIGINT) AS n FROM run_counts GROUP BY kind, action ORDER BY kind, action",
            )
            .fetch_all(pool).await?
            {
                metrics.records_by_action.push((row.try_get("kind")?, row.try_get("action")?, row.try_get("n")?));
            }
            let mut seconds: Vec<(String, i64, f64)> = Vec::new();
            for row in sqlx::query(
                "SELECT status, started_at, finished_at FROM sync_runs WHERE finished_at IS NOT NULL ORDER BY status",
            )
            .fetch_all(pool).await?
            {
                let status: String = row.try_get("status")?;
                let started: DateTime<Utc> = row.try_get("started_at")?;
                let finished: DateTime<Utc> = row.try_get("finished_at")?;
                let took = (finished - started).num_milliseconds().max(0) as f64 / 1000.0;
                match seconds.last_mut() {
                    Some((last, runs, total)) if *last == status => {
                        *runs += 1;
                        *total += took;
                    }
                    _ => seconds.push((status, 1, took)),
                }
            }
            metrics.run_seconds = seconds;
            for row in sqlx::query(
                "SELECT c.connector AS connector, COUNT(*) AS n FROM sync_runs r JOIN connections c ON c.id = r.connection_id \
                 WHERE r.status = 'failed' GROUP BY c.connector ORDER BY c.connector",
            )
            .fetch_all(pool).await?
            {
                metrics.failures_by_connector.push((row.try_get("connector")?, row.try_get("n")?));
            }
            metrics.holds_open = sqlx::query("SELECT COUNT(*) AS n FROM holds WHERE status = 'open'")
                .fetch_one(pool).await?.try_get("n")?;
            metrics.queued = sqlx::query("SELECT COUNT(*) AS n FROM run_queue WHERE state = 'queued'")
                .fetch_one(pool).await?.try_get("n")?;
            metrics.running = sqlx::query("SELECT COUNT(*) AS n FROM run_queue WHERE state = 'running'")
                .fetch_one(pool).await?.try_get("n")?;
            metrics
        });
        Ok(metrics)
    }
}
