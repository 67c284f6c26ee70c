//! The run queue: runs asked for by a schedule, an operator or a script,
//! and how far each has got. One queued-or-running run per connection
//! (a unique partial index enforces it, so two hosts sharing a PostgreSQL
//! store cannot both start one); a second request joins the first. The
//! queue outlives the host: whoever runs a run keeps its heartbeat fresh,
//! and a running row whose heartbeat went stale (its process died) is
//! settled by any host, without touching the runs other hosts are running.
//!
//! A settled row is never claimed again (a new run gets a new row), so a
//! running row's id is its fencing token: a run's writes commit only if,
//! inside their transaction, the row is still running with a fresh
//! heartbeat ([`Lease`]). A runner that was settled while it was slow can
//! therefore never commit after the connection's next run started.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{RunMode, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueState {
    Queued,
    Running,
    Finished,
    Failed,
}

impl QueueState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Failed => "failed",
        }
    }

    fn parse(state: &str) -> Option<Self> {
        [Self::Queued, Self::Running, Self::Finished, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == state)
    }

    pub fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }
}

/// The claim a runner holds on its running queue row, checked when the
/// run's writes commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub queue_id: i64,
}

/// Inside a run's transaction `$tx`: refreshes the heartbeat of `$lease`'s
/// row, and rolls the transaction back with [`StoreError::LeaseLost`] if
/// the row is no longer running (a settler took it). The update locks the
/// row, so a settler that runs at the same time sees the fresh heartbeat.
macro_rules! fence {
    ($tx:expr, $lease:expr, $now:expr) => {{
        let held = sqlx::query(
            "UPDATE run_queue SET heartbeat_at = $2 WHERE id = $1 AND state = 'running'",
        )
        .bind($lease.queue_id)
        .bind($now)
        .execute(&mut *$tx)
        .await?
        .rows_affected();
        if held != 1 {
            return Err($crate::StoreError::LeaseLost($lease.queue_id));
        }
    }};
}

/// A request for a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAsk {
    pub connection: String,
    pub mode: RunMode,
    /// Why: `schedule`, `catch-up`, `operator`, ...
    pub reason: String,
    /// Who asked: `scheduler`, a token's name, `cli`.
    pub requested_by: String,
    /// In a blackout that lets additions through: removals wait for an
    /// operator instead of being applied.
    pub additions_only: bool,
}

/// One row of the queue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QueuedRun {
    pub id: i64,
    pub connection: String,
    pub mode: &'static str,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub state: QueueState,
    pub additions_only: bool,
    pub started_at: Option<DateTime<Utc>>,
    /// When whoever runs it last said it is still going.
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The history row the run wrote, once it has.
    pub run_id: Option<i64>,
    /// JSON: the run's phase and what it has read so far.
    pub progress: Option<String>,
    pub message: Option<String>,
}

impl QueuedRun {
    pub fn run_mode(&self) -> RunMode {
        if self.mode == "full" {
            RunMode::Full
        } else {
            RunMode::Delta
        }
    }
}

/// What asking for a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// A new run was queued.
    Queued(QueuedRun),
    /// The connection already had a run queued or running; the request
    /// joined it (a full request turns a still-queued delta into a full run).
    Joined(QueuedRun),
}

impl Enqueued {
    pub fn run(&self) -> &QueuedRun {
        match self {
            Self::Queued(run) | Self::Joined(run) => run,
        }
    }
}

const QUEUE_COLUMNS: &str = "id, connection_id, kind, reason, requested_by, requested_at, state, \
     additions_only, started_at, heartbeat_at, finished_at, run_id, progress, message";

fn queued_run<R: Row>(row: &R) -> Result<QueuedRun, sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> DateTime<Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<DateTime<Utc>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let state: String = row.try_get("state")?;
    let kind: String = row.try_get("kind")?;
    Ok(QueuedRun {
        id: row.try_get("id")?,
        connection: row.try_get("connection_id")?,
        mode: if kind == "full" { "full" } else { "delta" },
        reason: row.try_get("reason")?,
        requested_by: row.try_get("requested_by")?,
        requested_at: row.try_get("requested_at")?,
        state: QueueState::parse(&state)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown queue state {state:?}").into()))?,
        additions_only: row.try_get("additions_only")?,
        started_at: row.try_get("started_at")?,
        heartbeat_at: row.try_get("heartbeat_at")?,
        finished_at: row.try_get("finished_at")?,
        run_id: row.try_get("run_id")?,
        progress: row.try_get("progress")?,
        message: row.try_get("message")?,
    })
}

/// One query returning queue rows, on either backend.
macro_rules! queue_rows {
    ($store:expr, $sql:expr $(, $bind:expr)* ; $fetch:ident) => {
        on_pool!($store, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe($sql))
                $(.bind($bind))*
                .fetch_all(pool)
                .await?;
            rows.iter().map(queued_run).collect::<Result<Vec<_>, sqlx::Error>>()?
        })
    };
}

impl Store {
    /// Queues a run, or joins the connection's queued or running one.
    pub async fn enqueue_run(
        &self,
        ask: &RunAsk,
        now: DateTime<Utc>,
    ) -> Result<Enqueued, StoreError> {
        let inserted = queue_rows!(self, format!(
            "INSERT INTO run_queue (connection_id, kind, reason, requested_by, requested_at, state, additions_only) \
             VALUES ($1, $2, $3, $4, $5, 'queued', $6) \
             ON CONFLICT (connection_id) WHERE state IN ('queued', 'running') DO NOTHING \
             RETURNING {QUEUE_COLUMNS}"
        ), &ask.connection, ask.mode.as_str(), &ask.reason, &ask.requested_by, now, ask.additions_only; fetch_all);
        if let Some(run) = inserted.into_iter().next() {
            return Ok(Enqueued::Queued(run));
        }
        if ask.mode == RunMode::Full {
            // Still waiting: it may as well be the fuller run asked for.
            on_pool!(self, pool => {
                sqlx::query("UPDATE run_queue SET kind = 'full' WHERE connection_id = $1 AND state = 'queued'")
                    .bind(&ask.connection)
                    .execute(pool)
                    .await?;
            });
        }
        match self.active_run(&ask.connection).await? {
            Some(run) => Ok(Enqueued::Joined(run)),
            // The active run finished between the insert and the read.
            None => Box::pin(self.enqueue_run(ask, now)).await,
        }
    }

    /// The connection's queued or running run.
    pub async fn active_run(&self, connection: &str) -> Result<Option<QueuedRun>, StoreError> {
        let rows = queue_rows!(self, format!(
            "SELECT {QUEUE_COLUMNS} FROM run_queue WHERE connection_id = $1 AND state IN ('queued', 'running')"
        ), connection; fetch_all);
        Ok(rows.into_iter().next())
    }

    pub async fn queued_run(&self, id: i64) -> Result<Option<QueuedRun>, StoreError> {
        let rows = queue_rows!(self, format!("SELECT {QUEUE_COLUMNS} FROM run_queue WHERE id = $1"), id; fetch_all);
        Ok(rows.into_iter().next())
    }

    /// Starts the oldest queued run, if any. Two workers (or two hosts)
    /// never start the same one: the update re-checks the state. On
    /// PostgreSQL the pick skips rows another host is claiming, so hosts
    /// sharing the queue take different runs instead of queueing on one.
    pub async fn claim_next_run(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<QueuedRun>, StoreError> {
        let skip_locked = match self.backend {
            crate::Backend::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            // SQLite has one writer at a time: nothing to skip.
            crate::Backend::Sqlite(_) => "",
        };
        let rows = queue_rows!(self, format!(
            "UPDATE run_queue SET state = 'running', started_at = $1, heartbeat_at = $1 \
             WHERE id = (SELECT id FROM run_queue WHERE state = 'queued' ORDER BY id LIMIT 1{skip_locked}) \
             AND state = 'queued' RETURNING {QUEUE_COLUMNS}"
        ), now; fetch_all);
        Ok(rows.into_iter().next())
    }

    /// Starts one queued run; `None` if another worker started it first.
    pub async fn claim_run(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<QueuedRun>, StoreError> {
        let rows = queue_rows!(self, format!(
            "UPDATE run_queue SET state = 'running', started_at = $2, heartbeat_at = $2 \
             WHERE id = $1 AND state = 'queued' \
             RETURNING {QUEUE_COLUMNS}"
        ), id, now; fetch_all);
        Ok(rows.into_iter().next())
    }

    /// Says a running run is still going, so no host settles it; false
    /// when the run is no longer running (it was settled: the lease is lost).
    pub async fn heartbeat_run(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let held = on_pool!(self, pool => {
            sqlx::query("UPDATE run_queue SET heartbeat_at = $2 WHERE id = $1 AND state = 'running'")
                .bind(id)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(held == 1)
    }

    /// Records how far a running run has got (JSON).
    pub async fn set_run_progress(&self, id: i64, progress: &str) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE run_queue SET progress = $2 WHERE id = $1 AND state = 'running'")
                .bind(id)
                .bind(progress)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Ends a running run: `Finished` with the history row it wrote, or
    /// `Failed` with why it wrote none.
    pub async fn finish_run(
        &self,
        id: i64,
        state: QueueState,
        run_id: Option<i64>,
        message: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE run_queue SET state = $2, run_id = $3, message = $4, finished_at = $5 \
                 WHERE id = $1 AND state = 'running'",
            )
            .bind(id)
            .bind(state.as_str())
            .bind(run_id)
            .bind(message)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Settles the runs whose process died: those running with no
    /// heartbeat since `stale_before`. A run applies in one transaction,
    /// so one that wrote no history row after it started applied nothing;
    /// one that did is linked to it. A run whose heartbeat comes back
    /// between the look and the settling is left alone.
    pub async fn settle_interrupted_runs(
        &self,
        stale_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<QueuedRun>, StoreError> {
        let running = queue_rows!(self, format!(
            "SELECT {QUEUE_COLUMNS} FROM run_queue WHERE state = 'running' \
             AND COALESCE(heartbeat_at, started_at, requested_at) < $1 ORDER BY id"
        ), stale_before; fetch_all);
        let mut settled = Vec::new();
        for run in running {
            let started = run.started_at.unwrap_or(run.requested_at);
            let recorded: Option<i64> = on_pool!(self, pool => {
                sqlx::query(
                    "SELECT MAX(id) AS id FROM sync_runs WHERE connection_id = $1 AND started_at >= $2",
                )
                .bind(&run.connection)
                .bind(started)
                .fetch_one(pool)
                .await?
                .try_get("id")?
            });
            let (state, message) = match recorded {
                Some(_) => (
                    QueueState::Finished,
                    "the process running it stopped after the run was recorded",
                ),
                None => (
                    QueueState::Failed,
                    "the process running it stopped while it was in progress; nothing of it was applied",
                ),
            };
            let taken = on_pool!(self, pool => {
                sqlx::query(
                    "UPDATE run_queue SET state = $2, run_id = $3, message = $4, finished_at = $5 \
                     WHERE id = $1 AND state = 'running' \
                     AND COALESCE(heartbeat_at, started_at, requested_at) < $6",
                )
                .bind(run.id)
                .bind(state.as_str())
                .bind(recorded)
                .bind(message)
                .bind(now)
                .bind(stale_before)
                .execute(pool)
                .await?
                .rows_affected()
            });
            if taken == 1
                && let Some(run) = self.queued_run(run.id).await?
            {
                settled.push(run);
            }
        }
        Ok(settled)
    }

    /// Queued and running runs, oldest first.
    pub async fn active_runs(&self) -> Result<Vec<QueuedRun>, StoreError> {
        Ok(queue_rows!(self, format!(
            "SELECT {QUEUE_COLUMNS} FROM run_queue WHERE state IN ('queued', 'running') ORDER BY id"
        ); fetch_all))
    }

    /// The newest runs asked for, of one connection or of all.
    pub async fn recent_queue(
        &self,
        connection: Option<&str>,
        limit: i64,
    ) -> Result<Vec<QueuedRun>, StoreError> {
        Ok(match connection {
            Some(connection) => queue_rows!(self, format!(
                "SELECT {QUEUE_COLUMNS} FROM run_queue WHERE connection_id = $1 ORDER BY id DESC LIMIT $2"
            ), connection, limit; fetch_all),
            None => queue_rows!(self, format!(
                "SELECT {QUEUE_COLUMNS} FROM run_queue ORDER BY id DESC LIMIT $1"
            ), limit; fetch_all),
        })
    }

    /// When the schedule last asked for a run of the connection: what a
    /// restarted scheduler compares with the last due time to catch up.
    pub async fn last_scheduled_request(
        &self,
        connection: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at = on_pool!(self, pool => {
            sqlx::query(
                "SELECT requested_at FROM run_queue WHERE connection_id = $1 \
                 AND reason IN ('schedule', 'catch-up') ORDER BY id DESC LIMIT 1",
            )
            .bind(connection)
            .fetch_optional(pool)
            .await?
            .map(|row| row.try_get("requested_at"))
            .transpose()?
        });
        Ok(at)
    }
}
