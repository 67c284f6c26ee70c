//! The store: what each connection last applied (its roster records with
//! content hashes), and its runs, in SQLite (the embedded default: one
//! file, no server) or PostgreSQL (many schools, several hosts), behind one
//! interface.
//!
//! Both dialects share every query (sqlx takes `$N` placeholders on both);
//! only the migrations differ, because column types do. Writes are batched
//! as multi-row statements, and a run's writes commit in one transaction,
//! so a reader sees the roster before or after a run, never half of it.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{QueryBuilder, Row};

pub use rostersync_model::EntityKind;

/// The environment variable that names the store, over the config file.
pub const STORE_ENV: &str = "ROSTERSYNC_STORE";

/// Rows per multi-row statement: well under SQLite's and PostgreSQL's
/// limits on bound parameters (ten per row at most).
pub(crate) const ROWS_PER_STATEMENT: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `url` is redacted ([`redacted_url`]), here and below.
    #[error("{url:?} is not a store URL: write sqlite://PATH or postgres://USER@HOST/DATABASE")]
    BadUrl { url: String },
    #[error(
        "there is no store at {url}: set ROSTERSYNC_STORE or the configuration's store to the one `serve` or `sync` writes"
    )]
    Missing { url: String },
    #[error("cannot open the store at {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("cannot bring the store's schema up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the store failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error(transparent)]
    Refused(#[from] rostersync_core::Refusal),
    #[error(
        "run {0} in the queue is no longer this process's to finish: its lease lapsed and it was settled, so nothing of it was applied"
    )]
    LeaseLost(i64),
}

/// One stored record: its key within its kind, the hash of its content,
/// and the content itself as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub kind: EntityKind,
    pub key: String,
    pub content_hash: Vec<u8>,
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    Full,
    Delta,
}

impl RunMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Delta => "delta",
        }
    }
}

/// The history row a run writes with its changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub mode: RunMode,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Where the next delta resumes; committed with the records it covers.
    pub cursor: Option<String>,
    /// Nothing was meant to be applied: the run only reports.
    pub dry_run: bool,
    pub records_read: i64,
    /// The provider was unreachable or refused the credentials.
    pub unreachable: bool,
    /// Why the run failed or was held, in one sentence.
    pub message: Option<String>,
}

impl RunRecord {
    /// A run row with nothing read yet and no message.
    pub fn new(mode: RunMode, status: &str, started_at: DateTime<Utc>) -> Self {
        Self {
            mode,
            status: status.to_string(),
            started_at,
            finished_at: Utc::now(),
            cursor: None,
            dry_run: false,
            records_read: 0,
            unreachable: false,
            message: None,
        }
    }
}

/// How many records of a kind a run created, updated, removed, ...
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Count {
    pub kind: String,
    pub action: String,
    pub count: i64,
}

/// One issue a run found, in the columns schools know, with the policy
/// that raised it and how to fix it at the source.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IssueRow {
    pub source_id: String,
    pub entity_type: String,
    pub entity_name: String,
    pub mis_id: String,
    pub message: String,
    pub policy: String,
    pub fix: String,
}

/// An issue row (`run_issues` or `standing_issues`) as read back.
fn issue_row<R: Row>(row: &R) -> Result<IssueRow, sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(IssueRow {
        source_id: row.try_get("source_id")?,
        entity_type: row.try_get("entity_type")?,
        entity_name: row.try_get("entity_name")?,
        mis_id: row.try_get("mis_id")?,
        message: row.try_get("message")?,
        policy: row.try_get("policy")?,
        fix: row.try_get("fix")?,
    })
}

/// One applied change to one object; `fields` is JSON
/// (`[{"field", "old", "new"}]`) so the log outlives schema changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRow {
    pub kind: EntityKind,
    pub key: String,
    pub action: String,
    pub fields: String,
}

/// A downstream effect owed by a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// Unique per effect, so a redelivery after a crash is recognisable.
    pub idempotency_key: String,
    pub event: String,
    pub payload: String,
}

/// Everything one run writes, applied in one transaction.
#[derive(Debug, Clone)]
pub struct WriteSet {
    pub upserts: Vec<StoredRecord>,
    pub removals: Vec<(EntityKind, String)>,
    pub accounts: Vec<AccountWrite>,
    pub links: Vec<LinkWrite>,
    pub run: RunRecord,
    pub counts: Vec<Count>,
    pub issues: Vec<IssueRow>,
    pub changes: Vec<ChangeRow>,
    pub outbox: Vec<OutboxEvent>,
    /// The change set a held or dry run would have applied, as JSON.
    pub kept_change_set: Option<String>,
    pub hold: Option<HoldWrite>,
    /// What an operator did that caused this write (confirming a hold).
    pub audit: Vec<AuditEntry>,
    /// How the run's issues change the connection's standing issues; none
    /// for a run that did not read the source (failed, dry, a confirm).
    pub standing: Option<StandingWrite>,
    /// The queue run this write finishes, if any: the write commits only
    /// while that run's lease is still held (see [`Lease`]).
    pub lease: Option<Lease>,
}

impl WriteSet {
    /// A run's history row and nothing else yet.
    pub fn new(run: RunRecord) -> Self {
        Self {
            upserts: Vec::new(),
            removals: Vec::new(),
            accounts: Vec::new(),
            links: Vec::new(),
            run,
            counts: Vec::new(),
            issues: Vec::new(),
            changes: Vec::new(),
            outbox: Vec::new(),
            kept_change_set: None,
            hold: None,
            audit: Vec::new(),
            standing: None,
            lease: None,
        }
    }

    fn changes_roster(&self) -> bool {
        !self.upserts.is_empty() || !self.removals.is_empty() || !self.accounts.is_empty()
    }
}

/// A run as the history shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunSummary {
    pub id: i64,
    pub mode: String,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub dry_run: bool,
    pub records_read: i64,
    pub unreachable: bool,
    pub message: Option<String>,
    pub counts: Vec<Count>,
}

const RUN_COLUMNS: &str =
    "id, mode, status, started_at, finished_at, dry_run, records_read, unreachable, message";

/// A [`RUN_COLUMNS`] row, its counts still to come.
fn run_summary<R: Row>(row: &R) -> Result<RunSummary, sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> DateTime<Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<DateTime<Utc>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(RunSummary {
        id: row.try_get("id")?,
        mode: row.try_get("mode")?,
        status: row.try_get("status")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        dry_run: row.try_get("dry_run")?,
        records_read: row.try_get("records_read")?,
        unreachable: row.try_get("unreachable")?,
        message: row.try_get("message")?,
        counts: Vec::new(),
    })
}

/// An outbox event waiting for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    pub id: i64,
    pub connection: String,
    pub event: OutboxEvent,
}

/// Something an operator did by hand.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub connection: Option<String>,
    pub subject: String,
    pub detail: String,
}

/// When a connection's roster last changed, and when it was last checked
/// (a run that found nothing to change still checks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stamps {
    pub last_changed: Option<DateTime<Utc>>,
    pub last_checked: Option<DateTime<Utc>>,
}

/// The header of an issues export.
pub const ISSUES_CSV_HEADER: [&str; 7] = [
    "Integration source id",
    "Entity type",
    "Entity name",
    "MIS id",
    "Error message",
    "Policy",
    "How to fix",
];

/// Issues as CSV, with the columns schools know and the policy and fix,
/// through the one neutralising writer.
pub fn issues_csv(issues: &[IssueRow]) -> String {
    let mut csv = CsvExport::new(&ISSUES_CSV_HEADER);
    for issue in issues {
        csv.row(&[
            &issue.source_id,
            &issue.entity_type,
            &issue.entity_name,
            &issue.mis_id,
            &issue.message,
            &issue.policy,
            &issue.fix,
        ]);
    }
    csv.finish()
}

enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool the store has; the
/// body is the same SQL for both.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite($pool) => $body,
            $crate::Backend::Postgres($pool) => $body,
        }
    };
}

/// Inserts one audit entry through `$executor` (a pool or a transaction).
macro_rules! insert_audit {
    ($executor:expr, $entry:expr) => {
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, connection_id, subject, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind($entry.at)
        .bind(&$entry.actor)
        .bind(&$entry.action)
        .bind(&$entry.connection)
        .bind(&$entry.subject)
        .bind(&$entry.detail)
        .execute($executor)
        .await
        .map(|_| ())?
    };
}

#[macro_use]
mod queue;
#[macro_use]
mod accounts;
mod export;
#[macro_use]
mod holds;
mod metrics;
mod notifications;
mod plugins;
#[macro_use]
mod standing;
mod redact;
mod targets;
#[cfg(feature = "testing")]
pub mod testing;

pub use accounts::{AccountRow, AccountStatus, AccountWrite, LinkWrite};
pub use export::CsvExport;
pub use holds::{Classified, HoldRevision, HoldRow, HoldStatus, HoldWrite};
pub use metrics::StoreMetrics;
pub use notifications::{
    DeliveryStatus, DueNotification, NOTIFICATION_EVENTS, Notification, NotificationDelivery,
};
pub use plugins::AcceptedPlugin;
pub use queue::{Enqueued, Lease, QueueState, QueuedRun, RunAsk};
pub use redact::redacted_url;
pub use standing::{StandingIssue, StandingWrite};
pub use targets::{
    DeliveryOutcome, DeliveryRow, DeliveryWrite, PendingChange, PendingNext, TargetHoldRow,
    TargetPass, TargetStatus,
};

pub struct Store {
    backend: Backend,
}

impl Store {
    /// The store URL: `ROSTERSYNC_STORE` if set, else `configured`.
    pub fn url_from_env_or(configured: &str) -> String {
        std::env::var(STORE_ENV).unwrap_or_else(|_| configured.to_string())
    }

    /// Opens (creating an SQLite file if needed) and migrates the store.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Self::connect(url, true).await
    }

    /// Opens a store that must already exist: an SQLite file that is not
    /// there is an error ([`StoreError::Missing`]), never a new empty store,
    /// so a command reading history from the wrong place says so.
    pub async fn open_existing(url: &str) -> Result<Store, StoreError> {
        Self::connect(url, false).await
    }

    async fn connect(url: &str, create: bool) -> Result<Store, StoreError> {
        let open_error = |source| StoreError::Open {
            url: redacted_url(url),
            source,
        };
        let backend = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url).map_err(open_error)?;
            let file = options.get_filename();
            let in_memory = file.as_os_str().is_empty() || file == std::path::Path::new(":memory:");
            if !create && !in_memory && !file.exists() {
                return Err(StoreError::Missing {
                    url: redacted_url(url),
                });
            }
            let options = options
                .create_if_missing(create)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            // Readers (the dashboard, the API) work beside the runs'
            // writers in WAL mode; a pool as small as the worker count
            // would make every page wait for a run to finish.
            let pool = SqlitePoolOptions::new()
                .max_connections(16)
                .connect_with(options)
                .await
                .map_err(open_error)?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            Backend::Sqlite(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .connect(url)
                .await
                .map_err(open_error)?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Backend::Postgres(pool)
        } else {
            return Err(StoreError::BadUrl {
                url: redacted_url(url),
            });
        };
        Ok(Store { backend })
    }

    pub async fn close(self) {
        on_pool!(self, pool => pool.close().await)
    }

    /// Registers a connection the first time it is seen.
    pub async fn ensure_connection(&self, id: &str, connector: &str) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO connections (id, connector, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(connector)
            .bind(Utc::now())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The content hash of every stored record of one kind, by key: what
    /// the diff compares incoming records against.
    pub async fn content_hashes(
        &self,
        connection: &str,
        kind: EntityKind,
    ) -> Result<HashMap<String, Vec<u8>>, StoreError> {
        // Streamed, so a million rows are never held twice (as rows and
        // as the map).
        let mut hashes = HashMap::new();
        on_pool!(self, pool => {
            let mut rows = sqlx::query(
                "SELECT key, content_hash FROM roster_records WHERE connection_id = $1 AND kind = $2",
            )
            .bind(connection)
            .bind(kind.as_str())
            .fetch(pool);
            while let Some(row) = rows.try_next().await? {
                hashes.insert(row.try_get("key")?, row.try_get("content_hash")?);
            }
        });
        Ok(hashes)
    }

    /// The stored records of one kind with these keys (missing keys are
    /// left out): the old side of field-level updates.
    pub async fn load(
        &self,
        connection: &str,
        kind: EntityKind,
        keys: &[String],
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let mut records = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            on_pool!(self, pool => {
                let mut query = QueryBuilder::new(
                    "SELECT kind, key, content_hash, body FROM roster_records WHERE connection_id = ",
                );
                query.push_bind(connection).push(" AND kind = ").push_bind(kind.as_str()).push(" AND key IN (");
                let mut list = query.separated(", ");
                for key in chunk {
                    list.push_bind(key);
                }
                list.push_unseparated(") ORDER BY key");
                for row in query.build().fetch_all(pool).await? {
                    records.push(stored_record(&row)?);
                }
            });
        }
        Ok(records)
    }

    /// One stored record, if the connection's roster holds it.
    pub async fn record(
        &self,
        connection: &str,
        kind: EntityKind,
        key: &str,
    ) -> Result<Option<StoredRecord>, StoreError> {
        let record = on_pool!(self, pool => {
            sqlx::query(
                "SELECT kind, key, content_hash, body FROM roster_records \
                 WHERE connection_id = $1 AND kind = $2 AND key = $3",
            )
            .bind(connection)
            .bind(kind.as_str())
            .bind(key)
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(stored_record)
            .transpose()?
        });
        Ok(record)
    }

    /// Every stored record of one kind, by key order: the groups the
    /// validator needs to know, or the people a forced run reconsiders.
    pub async fn records_of(
        &self,
        connection: &str,
        kind: EntityKind,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let records = on_pool!(self, pool => {
            sqlx::query(
                "SELECT kind, key, content_hash, body FROM roster_records \
                 WHERE connection_id = $1 AND kind = $2 ORDER BY key",
            )
            .bind(connection)
            .bind(kind.as_str())
            .fetch_all(pool)
            .await?
            .iter()
            .map(stored_record)
            .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(records)
    }

    /// Applies a run's writes and its history row in one transaction;
    /// returns the run's id. Any failure rolls all of it back.
    pub async fn apply(&self, connection: &str, writes: &WriteSet) -> Result<i64, StoreError> {
        let now = Utc::now();
        let run_id = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if let Some(lease) = writes.lease {
                fence!(tx, lease, now);
            }
            for chunk in writes.upserts.chunks(ROWS_PER_STATEMENT) {
                let mut query = QueryBuilder::new(
                    "INSERT INTO roster_records (connection_id, kind, key, content_hash, body, changed_at) ",
                );
                query.push_values(chunk, |mut row, record| {
                    row.push_bind(connection)
                        .push_bind(record.kind.as_str())
                        .push_bind(&record.key)
                        .push_bind(&record.content_hash)
                        .push_bind(&record.body)
                        .push_bind(now);
                });
                query.push(
                    " ON CONFLICT (connection_id, kind, key) DO UPDATE SET \
                     content_hash = excluded.content_hash, body = excluded.body, changed_at = excluded.changed_at",
                );
                query.build().execute(&mut *tx).await?;
            }
            for kind in EntityKind::ALL {
                let keys: Vec<&String> = writes.removals.iter().filter(|(k, _)| *k == kind).map(|(_, key)| key).collect();
                for chunk in keys.chunks(ROWS_PER_STATEMENT) {
                    let mut query = QueryBuilder::new("DELETE FROM roster_records WHERE connection_id = ");
                    query.push_bind(connection).push(" AND kind = ").push_bind(kind.as_str()).push(" AND key IN (");
                    let mut list = query.separated(", ");
                    for key in chunk {
                        list.push_bind(*key);
                    }
                    list.push_unseparated(")");
                    query.build().execute(&mut *tx).await?;
                }
            }
            write_accounts!(tx, connection, writes, now);
            let run = &writes.run;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO sync_runs (connection_id, mode, status, started_at, finished_at, cursor, \
                 dry_run, records_read, unreachable, message) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            )
            .bind(connection)
            .bind(run.mode.as_str())
            .bind(&run.status)
            .bind(run.started_at)
            .bind(run.finished_at)
            .bind(&run.cursor)
            .bind(run.dry_run)
            .bind(run.records_read)
            .bind(run.unreachable)
            .bind(&run.message)
            .fetch_one(&mut *tx)
            .await?;
            write_hold!(tx, connection, id, writes, now);
            for entry in &writes.audit {
                insert_audit!(&mut *tx, entry);
            }
            for chunk in writes.counts.chunks(ROWS_PER_STATEMENT) {
                let mut query = QueryBuilder::new("INSERT INTO run_counts (run_id, kind, action, count) ");
                query.push_values(chunk, |mut row, count| {
                    row.push_bind(id).push_bind(&count.kind).push_bind(&count.action).push_bind(count.count);
                });
                query.build().execute(&mut *tx).await?;
            }
            let numbered_issues: Vec<(i64, &IssueRow)> = (0..).zip(&writes.issues).collect();
            for chunk in numbered_issues.chunks(ROWS_PER_STATEMENT) {
                let mut query = QueryBuilder::new(
                    "INSERT INTO run_issues (run_id, position, source_id, entity_type, entity_name, mis_id, message, policy, fix) ",
                );
                query.push_values(chunk, |mut row, (position, issue)| {
                    row.push_bind(id)
                        .push_bind(*position)
                        .push_bind(&issue.source_id)
                        .push_bind(&issue.entity_type)
                        .push_bind(&issue.entity_name)
                        .push_bind(&issue.mis_id)
                        .push_bind(&issue.message)
                        .push_bind(&issue.policy)
                        .push_bind(&issue.fix);
                });
                query.build().execute(&mut *tx).await?;
            }
            write_standing!(tx, connection, id, writes);
            let numbered_changes: Vec<(i64, &ChangeRow)> = (0..).zip(&writes.changes).collect();
            for chunk in numbered_changes.chunks(ROWS_PER_STATEMENT) {
                let mut query = QueryBuilder::new("INSERT INTO change_log (run_id, position, kind, key, action, fields) ");
                query.push_values(chunk, |mut row, (position, change)| {
                    row.push_bind(id)
                        .push_bind(*position)
                        .push_bind(change.kind.as_str())
                        .push_bind(&change.key)
                        .push_bind(&change.action)
                        .push_bind(&change.fields);
                });
                query.build().execute(&mut *tx).await?;
            }
            for chunk in writes.outbox.chunks(ROWS_PER_STATEMENT) {
                let mut query = QueryBuilder::new(
                    "INSERT INTO outbox (connection_id, run_id, idempotency_key, event, payload, created_at) ",
                );
                query.push_values(chunk, |mut row, event| {
                    row.push_bind(connection)
                        .push_bind(id)
                        .push_bind(&event.idempotency_key)
                        .push_bind(&event.event)
                        .push_bind(&event.payload)
                        .push_bind(now);
                });
                query.build().execute(&mut *tx).await?;
            }
            // A run that could not read checked nothing.
            if !run.unreachable && run.status != "failed" {
                sqlx::query(
                    "UPDATE connections SET last_checked_at = $2, \
                     last_changed_at = CASE WHEN $3 THEN $2 ELSE last_changed_at END WHERE id = $1",
                )
                .bind(connection)
                .bind(run.finished_at)
                .bind(writes.changes_roster())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            id
        });
        Ok(run_id)
    }

    /// How many of the connection's latest real runs in a row found the
    /// provider unreachable or its credentials refused.
    pub async fn consecutive_unreachable(&self, connection: &str) -> Result<u32, StoreError> {
        let recent: Vec<bool> = on_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT unreachable FROM sync_runs WHERE connection_id = $1 AND NOT dry_run \
                 ORDER BY id DESC LIMIT 100",
            )
            .bind(connection)
            .fetch_all(pool)
            .await?
        });
        Ok(recent
            .iter()
            .take_while(|unreachable| **unreachable)
            .count() as u32)
    }

    /// The cursor of the connection's latest run that stored one.
    pub async fn last_cursor(&self, connection: &str) -> Result<Option<String>, StoreError> {
        let cursor = on_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT cursor FROM sync_runs WHERE connection_id = $1 AND cursor IS NOT NULL \
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(connection)
            .fetch_optional(pool)
            .await?
        });
        Ok(cursor)
    }
}

impl Store {
    /// The connection's runs, newest first, with their counts.
    pub async fn run_history(
        &self,
        connection: &str,
        limit: i64,
    ) -> Result<Vec<RunSummary>, StoreError> {
        let runs = on_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {RUN_COLUMNS} FROM sync_runs WHERE connection_id = $1 ORDER BY id DESC LIMIT $2"
            )))
            .bind(connection)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(run_summary)
            .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        self.with_counts(runs).await
    }

    /// Every connection's newest run, with its counts, in two queries:
    /// what the overview of a whole trust shows.
    pub async fn latest_runs(&self) -> Result<HashMap<String, RunSummary>, StoreError> {
        let rows = on_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT connection_id, {RUN_COLUMNS} FROM sync_runs \
                 WHERE id IN (SELECT MAX(id) FROM sync_runs GROUP BY connection_id)"
            )))
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| Ok((row.try_get::<String, _>("connection_id")?, run_summary(row)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        let (connections, runs): (Vec<String>, Vec<RunSummary>) = rows.into_iter().unzip();
        let runs = self.with_counts(runs).await?;
        Ok(connections.into_iter().zip(runs).collect())
    }

    /// `runs` with their counts filled in, in one query.
    async fn with_counts(&self, mut runs: Vec<RunSummary>) -> Result<Vec<RunSummary>, StoreError> {
        if runs.is_empty() {
            return Ok(runs);
        }
        let mut counts: HashMap<i64, Vec<Count>> = HashMap::new();
        on_pool!(self, pool => {
            let mut query = QueryBuilder::new("SELECT run_id, kind, action, count FROM run_counts WHERE run_id IN (");
            let mut ids = query.separated(", ");
            for run in &runs {
                ids.push_bind(run.id);
            }
            ids.push_unseparated(") ORDER BY run_id, kind, action");
            for row in query.build().fetch_all(pool).await? {
                counts.entry(row.try_get("run_id")?).or_default().push(Count {
                    kind: row.try_get("kind")?,
                    action: row.try_get("action")?,
                    count: row.try_get("count")?,
                });
            }
        });
        for run in &mut runs {
            run.counts = counts.remove(&run.id).unwrap_or_default();
        }
        Ok(runs)
    }

    /// The issues a run found, in the order it found them.
    pub async fn run_issues(&self, run_id: i64) -> Result<Vec<IssueRow>, StoreError> {
        let issues = on_pool!(self, pool => {
            sqlx::query(
                "SELECT source_id, entity_type, entity_name, mis_id, message, policy, fix FROM run_issues \
                 WHERE run_id = $1 ORDER BY position",
            )
            .bind(run_id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(issue_row)
            .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(issues)
    }

    /// A run's issues as CSV, with the columns schools know.
    pub async fn issues_csv(&self, run_id: i64) -> Result<String, StoreError> {
        Ok(issues_csv(&self.run_issues(run_id).await?))
    }

    /// Every applied change to one object, oldest first, with its run:
    /// "why did this pupil's account change?"
    pub async fn changes_to(
        &self,
        kind: EntityKind,
        key: &str,
    ) -> Result<Vec<(i64, ChangeRow)>, StoreError> {
        let changes = on_pool!(self, pool => {
            sqlx::query(
                "SELECT run_id, action, fields FROM change_log WHERE kind = $1 AND key = $2 ORDER BY run_id, position",
            )
            .bind(kind.as_str())
            .bind(key)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| {
                Ok((
                    row.try_get("run_id")?,
                    ChangeRow { kind, key: key.to_string(), action: row.try_get("action")?, fields: row.try_get("fields")? },
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(changes)
    }

    /// Outbox events not yet delivered, oldest first.
    pub async fn pending_events(&self, limit: i64) -> Result<Vec<PendingEvent>, StoreError> {
        let events = on_pool!(self, pool => {
            sqlx::query(
                "SELECT id, connection_id, idempotency_key, event, payload FROM outbox \
                 WHERE delivered_at IS NULL ORDER BY id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| {
                Ok(PendingEvent {
                    id: row.try_get("id")?,
                    connection: row.try_get("connection_id")?,
                    event: OutboxEvent {
                        idempotency_key: row.try_get("idempotency_key")?,
                        event: row.try_get("event")?,
                        payload: row.try_get("payload")?,
                    },
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(events)
    }

    pub async fn mark_delivered(&self, event_id: i64) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE outbox SET delivered_at = $2 WHERE id = $1")
                .bind(event_id)
                .bind(Utc::now())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    pub async fn record_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        on_pool!(self, pool => insert_audit!(pool, entry));
        Ok(())
    }

    /// The audit log, oldest first.
    pub async fn audit_log(&self) -> Result<Vec<AuditEntry>, StoreError> {
        let entries = on_pool!(self, pool => {
            sqlx::query("SELECT at, actor, action, connection_id, subject, detail FROM audit_log ORDER BY id")
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| {
                    Ok(AuditEntry {
                        at: row.try_get("at")?,
                        actor: row.try_get("actor")?,
                        action: row.try_get("action")?,
                        connection: row.try_get("connection_id")?,
                        subject: row.try_get("subject")?,
                        detail: row.try_get("detail")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(entries)
    }

    /// Every connection's stamps, in one query.
    pub async fn all_stamps(&self) -> Result<HashMap<String, Stamps>, StoreError> {
        let stamps = on_pool!(self, pool => {
            sqlx::query("SELECT id, last_changed_at, last_checked_at FROM connections")
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| {
                    Ok((
                        row.try_get("id")?,
                        Stamps { last_changed: row.try_get("last_changed_at")?, last_checked: row.try_get("last_checked_at")? },
                    ))
                })
                .collect::<Result<HashMap<String, Stamps>, sqlx::Error>>()?
        });
        Ok(stamps)
    }

    pub async fn stamps(&self, connection: &str) -> Result<Stamps, StoreError> {
        let stamps = on_pool!(self, pool => {
            // A connection that has never run has no row yet: never changed, never checked.
            match sqlx::query("SELECT last_changed_at, last_checked_at FROM connections WHERE id = $1")
                .bind(connection)
                .fetch_optional(pool)
                .await?
            {
                Some(row) => Stamps { last_changed: row.try_get("last_changed_at")?, last_checked: row.try_get("last_checked_at")? },
                None => Stamps::default(),
            }
        });
        Ok(stamps)
    }
}

fn stored_record<R: Row>(row: &R) -> Result<StoredRecord, sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let kind: String = row.try_get("kind")?;
    Ok(StoredRecord {
        kind: EntityKind::parse(&kind)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown record kind {kind:?}").into()))?,
        key: row.try_get("key")?,
        content_hash: row.try_get("content_hash")?,
        body: row.try_get("body")?,
    })
}
